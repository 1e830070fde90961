using System.Net;
using Messaging.Node;
using Microsoft.Extensions.Configuration;

namespace Messaging.EndToEnd.Tests;

public sealed class ConfigurationSpecs
{
    [Fact]
    public async Task Should_print_tokens_signed_with_the_key_the_node_keeps_in_its_data_directory()
    {
        var dataDirectory = Directory.CreateTempSubdirectory("messaging-token-").FullName;
        var output = new StringWriter();

        var exit = TokenCommand.Run(["alice", "bob", $"--Messaging:DataDirectory={dataDirectory}"], output, TextWriter.Null);

        Assert.Equal(0, exit);
        var tokens = output.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        Assert.Equal(2, tokens.Length);
        var keyFile = Path.Combine(dataDirectory, SigningKeys.FileName);
        if (!OperatingSystem.IsWindows())
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(keyFile));

        await using var node = await TestNode.StartAsync(dataDirectory, []); // no configured key: the file's
        var alice = node.ClientWithToken(tokens[0]);
        var bob = node.ClientWithToken(tokens[1]);
        await alice.Send("bob", "signed by the kept key").Ok();
        Assert.Equal(HttpStatusCode.OK, (await bob.Conversations("bob")).StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, (await bob.Conversations("alice")).StatusCode);
    }

    [Theory]
    [InlineData("Messaging:Auth:SigningKey", "too-short")]
    [InlineData("Messaging:Cluster:Port", "70000")]
    [InlineData("Messaging:Cluster:SeedNodes", "not-an-address")]
    [InlineData("Messaging:Http:AskTimeout", "00:00:01")]
    [InlineData("Messaging:Persistence:Provider", "Oracle")]
    [InlineData("Messaging:RateLimit:Burst", "0")]
    [InlineData("Messaging:Admin:Port", "-1")]
    [InlineData("Messaging:Admin:Hostname", "admin.example")]
    [InlineData("Messaging:Admin:Token", "short")]
    [InlineData("Messaging:Discovery:Method", "Consul")]
    [InlineData("Messaging:Discovery:ManagementPort", "0")]
    public void Should_refuse_to_start_naming_the_bad_key(string key, string value)
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection([new(key, value)]).Build();

        var error = Assert.Throws<NodeConfigurationException>(() => NodeSettings.Load(configuration));

        Assert.Contains(key, error.Message);
    }
}
