using System.Globalization;
using System.Net;
using System.Text.RegularExpressions;
using Messaging.Node;
using Messaging.Testing;
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
    [InlineData("Messaging:RateLimit:ReadBurst", "0")]
    [InlineData("Messaging:Mailbox:JournalReadTimeout", "00:00:05")]
    [InlineData("Messaging:Mailbox:MaxConcurrentJournalReads", "0")]
    [InlineData("Messaging:Mailbox:HeapHighWater", "1.5")]
    [InlineData("Messaging:Mailbox:HeapLowWater", "0.8")] // above the default high water mark
    [InlineData("Messaging:Mailbox:HeapHighWater", "NaN")]
    [InlineData("Messaging:Mailbox:HeapLowWater", "NaN")]
    [InlineData("Messaging:Mailbox:WarmupWakes", "-1")]
    [InlineData("Messaging:Mailbox:MaxConversationsInMemory", "-1")]
    [InlineData("Messaging:Groups:MaxMembers", "4097")]
    [InlineData("Messaging:Mailbox:RecentPerConversation", "4097")]
    [InlineData("Messaging:Admin:Port", "-1")]
    [InlineData("Messaging:Admin:Hostname", "admin.example")]
    [InlineData("Messaging:Admin:Token", "short")]
    [InlineData("Messaging:Discovery:Method", "Consul")]
    [InlineData("Messaging:Discovery:ManagementPort", "0")]
    [InlineData("Messaging:Cluster:AppVersion", "1.0.0")] // below this build's release: its features would stay off
    [InlineData("Messaging:Upgrade:Receipts", "Maybe")]
    public void Should_refuse_to_start_naming_the_bad_key(string key, string value)
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection([new(key, value)]).Build();

        var error = Assert.Throws<NodeConfigurationException>(() => NodeSettings.Load(configuration));

        Assert.Contains(key, error.Message);
    }

    /// <summary>The example Secret's values pass every length rule, so they would start a cluster anyone can forge tokens for.</summary>
    [Theory]
    [InlineData("jwt-signing-key", "Messaging:Auth:SigningKey")]
    [InlineData("admin-token", "Messaging:Admin:Token")]
    [InlineData("postgres-connection", "Messaging:Persistence:ConnectionString")]
    [InlineData("remoting-tls-password", "Messaging:Cluster:Tls:CertificatePassword")]
    public void Should_refuse_to_start_with_a_placeholder_of_the_example_secret(string secretKey, string key)
    {
        var example = File.ReadAllLines(Path.Combine(Repository.Root, "k8s", "secret.example.yaml"));
        var value = example.Select(line => line.Trim()).Single(line => line.StartsWith(secretKey + ":"))
            [(secretKey.Length + 1)..].Trim().Trim('"');

        var settings = new Dictionary<string, string>
        {
            ["Messaging:Persistence:Provider"] = "PostgreSql",
            ["Messaging:Persistence:ConnectionString"] = "Host=db;Username=messaging;Password=s3cret",
            [key] = value,
        };

        var error = Assert.Throws<NodeConfigurationException>(() =>
            Load([.. settings.Select(s => (s.Key, s.Value))]));

        Assert.Contains($"{key} still holds the placeholder", error.Message);
        Assert.DoesNotContain("still holds", error.Message.Replace($"{key} still holds", ""));
    }

    private static NodeSettings Load(params (string Key, string Value)[] values) =>
        NodeSettings.Load(new ConfigurationBuilder()
            .AddInMemoryCollection(values.Select(v => new KeyValuePair<string, string?>(v.Key, v.Value)))
            .Build());

    /// <summary>The numbers and durations among the settings: each has a range, so each has a check.</summary>
    public static TheoryData<string> NumericKeys() =>
        [.. NodeSettings.Keys.Where(k => k.Type == typeof(int) || k.Type == typeof(long) || k.Type == typeof(TimeSpan)).Select(k => k.Key)];

    private static string Text(object value) => value switch
    {
        TimeSpan time => time.ToString("c", CultureInfo.InvariantCulture),
        bool flag => flag ? "true" : "false",
        IFormattable formattable => formattable.ToString(null, CultureInfo.InvariantCulture),
        _ => value.ToString() ?? "",
    };

    [Theory]
    [MemberData(nameof(NumericKeys))]
    public void Should_bind_each_numeric_setting_from_its_key(string key)
    {
        var setting = NodeSettings.Keys.Single(k => k.Key == key);
        // One more than the default: valid for every setting, and seen only if this key reached its property.
        var changed = setting.Value switch
        {
            TimeSpan time => time + TimeSpan.FromSeconds(1),
            int number => number + 1,
            long number => (object)(number + 1),
            var other => throw new InvalidOperationException($"{key}: {other}"),
        };

        var settings = Load((key, Text(changed)));

        Assert.Equal(changed, settings.Describe().Single(k => k.Key == key).Value);
        Assert.All(settings.Describe().Where(k => k.Key != key),
            other => Assert.Equal(NodeSettings.Keys.Single(k => k.Key == other.Key).Value, other.Value));
    }

    [Theory]
    [MemberData(nameof(NumericKeys))]
    public void Should_refuse_a_negative_value_for_each_numeric_setting_naming_its_key(string key)
    {
        var type = NodeSettings.Keys.Single(k => k.Key == key).Type;

        var error = Assert.Throws<NodeConfigurationException>(() => Load((key, type == typeof(TimeSpan) ? "-00:00:01" : "-1")));

        Assert.Contains(key + " ", error.Message);
    }

    [Fact]
    public void Should_refuse_a_key_that_is_not_a_setting()
    {
        var error = Assert.Throws<NodeConfigurationException>(() => Load(("Messaging:Mailbox:ResendBatchSize", "10")));
        Assert.Contains("Messaging:Mailbox:ResendBatchSize is not a setting", error.Message);

        // The clock and the limits' record are no keys: the limits sit beside the other mailbox keys.
        Assert.Throws<NodeConfigurationException>(() => Load(("Messaging:Mailbox:Clock", "x")));
        Assert.Throws<NodeConfigurationException>(() => Load(("Messaging:Mailbox:Limits:DedupWindow", "10")));
    }

    [Fact]
    public void Should_list_every_setting_with_its_default_in_the_README()
    {
        var rows = File.ReadAllLines(Path.Combine(Repository.Root, "README.md"))
            .Select(line => Regex.Match(line, @"^\| `(Messaging:[^`]+)` \| ([^|]+) \|"))
            .Where(match => match.Success)
            .ToDictionary(match => match.Groups[1].Value, match => match.Groups[2].Value.Trim());

        Assert.Equal(NodeSettings.Keys.Select(k => k.Key).Order(), rows.Keys.Order());
        Assert.All(NodeSettings.Keys.Where(k => k.Value is not null),
            setting => Assert.Equal($"{setting.Key} `{Text(setting.Value!)}`", $"{setting.Key} {rows[setting.Key]}"));
    }
}
