using System.Net;
using System.Net.Http.Headers;
using System.Text.Json;
using Messaging.Node;

namespace Messaging.EndToEnd.Tests;

/// <summary>
/// Remoting over TLS (<c>Messaging:Cluster:Tls</c>) between node processes on loopback, configured through the
/// environment as k8s/deployment.yaml does: nodes holding the cluster's certificate form a cluster and serve each
/// other's mailboxes; a node without TLS, or with a certificate the cluster does not accept, stays out; a node
/// refuses to start with a certificate it cannot use. Certificates are made in the test (tests/Support/Certificates.cs).
/// </summary>
public sealed class RemotingTlsSpecs : IAsyncDisposable
{
    private static readonly TimeSpan ReadyWithin = TimeSpan.FromSeconds(60);
    private const string AdminToken = "remoting-tls-specs-admin-token";

    private readonly string _directory = Directory.CreateTempSubdirectory("messaging-tls-").FullName;
    private readonly List<NodeProcess> _nodes = [];

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Should_form_a_cluster_over_TLS_whose_nodes_serve_each_others_mailboxes()
    {
        var certificate = Certificates.SelfSigned(_directory, "cluster");
        var a = Node("a", certificate);
        var b = Node("b", certificate, seed: a.AkkaAddress);
        a.Start();
        b.Start();
        await Task.WhenAll(a.WaitReadyAsync(ReadyWithin), b.WaitReadyAsync(ReadyWithin)); // b ready: an Up member, joined through a

        Assert.Equal(new[] { a.AkkaAddress, b.AkkaAddress }.Order(), (await MembersOf(a)).Order());
        Assert.StartsWith("akka.ssl.tcp://", a.AkkaAddress);
        Assert.Contains("Remoting TLS on: certificate CN=cluster", Output(a));

        // Sends go through a and reads through b. Once b's mailbox region has registered (over TLS) new shards go to
        // both nodes, so every mailbox on b is written through a and every one on a read through b.
        await Eventually.AssertAsync(async () => (await MailboxRegions(a)).Length == 2, TimeSpan.FromSeconds(20),
            "b's mailbox region registered with the coordinator");
        var pairs = Enumerable.Range(0, 8).Select(i => (Sender: Users.Unique($"s{i}"), Recipient: Users.Unique($"r{i}"))).ToList();
        foreach (var (sender, recipient) in pairs)
        {
            using var writer = Client(a, sender);
            await writer.Send(recipient, $"to {recipient} over TLS").Ok();
        }
        foreach (var (sender, recipient) in pairs)
        {
            using var reader = Client(b, recipient);
            string[] texts = [];
            await Eventually.AssertAsync(async () =>
            {
                using var response = await reader.Thread(recipient, Conversation(sender, recipient));
                texts = response.StatusCode == HttpStatusCode.OK ? (await response.Json()).Texts() : [];
                return texts.Length > 0;
            }, TimeSpan.FromSeconds(20), () => $"{recipient}'s copy read through b: [{string.Join(", ", texts)}]");
            Assert.Equal([$"to {recipient} over TLS"], texts);
        }
        var hosts = await Task.WhenAll(pairs.SelectMany(p => new[] { p.Sender, p.Recipient }).Select(user => HostOf(a, user)));
        Assert.Equal(new[] { a.AkkaAddress, b.AkkaAddress }.Order(), hosts.Distinct().Order());
    }

    [Fact]
    public async Task Should_keep_a_node_without_TLS_out_of_a_TLS_cluster()
    {
        var a = Node("a", Certificates.SelfSigned(_directory, "cluster"));
        await a.StartAsync(ReadyWithin);
        var plain = Node("plain", certificate: null, seed: $"akka.tcp://messaging@127.0.0.1:{a.RemotingPort}");
        plain.Start();

        // The plain node's first bytes are an Akka frame, not a TLS hello: a's handshake fails before Akka sees them.
        await Eventually.AssertAsync(() => Task.FromResult(Output(a).Contains("not an SSL/TLS record")), ReadyWithin,
            () => $"a logged no failed handshake\n{a.Tail()}\n{plain.Tail()}");
        Assert.Equal([a.AkkaAddress], await MembersOf(a));
        Assert.True(plain.IsRunning, plain.Tail());
        Assert.False(await plain.IsReadyAsync(), "the plain node is a cluster member");
    }

    [Fact]
    public async Task Should_keep_a_node_with_another_certificate_out_of_the_cluster()
    {
        var a = Node("a", Certificates.SelfSigned(_directory, "cluster"));
        await a.StartAsync(ReadyWithin);
        var intruder = Node("intruder", Certificates.SelfSigned(_directory, "intruder"), seed: a.AkkaAddress);
        intruder.Start();

        // Whichever end validates first refuses: a the intruder's certificate, or the intruder a's (TLS 1.3 has the
        // client check the server's certificate before it sends its own).
        await Eventually.AssertAsync(() => Task.FromResult(
                Output(a).Contains("Remoting TLS: refused a connection") || Output(intruder).Contains("Remoting TLS: refused a connection")),
            ReadyWithin, () => $"neither end refused a connection\n{a.Tail()}\n{intruder.Tail()}");
        Assert.True(Output(a).Contains("its certificate CN=intruder") || Output(intruder).Contains("its certificate CN=cluster"),
            $"no refusal names the other's certificate\n{a.Tail()}\n{intruder.Tail()}");
        // Akka.Remote 1.5.73 stops a node whose outbound handshake fails (CoordinatedShutdown, TlsHandshakeFailureReason).
        Assert.True(await intruder.WaitForExitAsync(TimeSpan.FromSeconds(30)), $"the intruder still runs\n{intruder.Tail()}");
        Assert.Equal([a.AkkaAddress], await MembersOf(a));
    }

    [Fact]
    public async Task Should_admit_nodes_with_certificates_of_the_clusters_CA_and_keep_out_those_of_another_CA()
    {
        using var authority = new Certificates.Authority("messaging-ca");
        using var other = new Certificates.Authority("other-ca");
        var a = Node("a", authority.Issue(_directory, "node-a"), PeerValidation.CertificateAuthority);
        var b = Node("b", authority.Issue(_directory, "node-b"), PeerValidation.CertificateAuthority, seed: a.AkkaAddress);
        var intruder = Node("intruder", other.Issue(_directory, "intruder"), PeerValidation.CertificateAuthority, seed: a.AkkaAddress);
        a.Start();
        b.Start();
        intruder.Start();
        await Task.WhenAll(a.WaitReadyAsync(ReadyWithin), b.WaitReadyAsync(ReadyWithin)); // b: its own certificate, of the same CA

        // Whichever end validates first refuses (see above): a the intruder's certificate, or the intruder a's.
        await Eventually.AssertAsync(() => Task.FromResult(
                Output(a).Contains("its certificate CN=intruder does not chain to this cluster's CA")
                || Output(intruder).Contains("its certificate CN=node-a does not chain to this cluster's CA")),
            ReadyWithin, () => $"neither a nor the intruder refused the other\n{a.Tail()}\n{intruder.Tail()}");
        Assert.True(await intruder.WaitForExitAsync(TimeSpan.FromSeconds(30)), $"the intruder still runs\n{intruder.Tail()}");
        Assert.Equal(new[] { a.AkkaAddress, b.AkkaAddress }.Order(), (await MembersOf(a)).Order());
        Assert.Contains("peers checked by CertificateAuthority", Output(b));
    }

    [Theory]
    [InlineData("no certificate", "Messaging:Cluster:Tls:CertificatePath is required when Messaging:Cluster:Tls:Enabled is true")]
    [InlineData("a missing file", "Messaging:Cluster:Tls:CertificatePath: cannot read")]
    [InlineData("a wrong password", "Messaging:Cluster:Tls:CertificatePassword does not open")]
    [InlineData("no private key", "holds no private key")]
    [InlineData("an expired certificate", "expired on")]
    [InlineData("a certificate not valid yet", "is not valid before")]
    [InlineData("no CA in the file", "Messaging:Cluster:Tls:PeerValidation is CertificateAuthority, but")]
    [InlineData("a plain seed", "Messaging:Cluster:SeedNodes: 'akka.tcp://messaging@127.0.0.1:4053' is an akka.tcp address")]
    public void Should_refuse_to_start_with_remoting_TLS_it_cannot_use(string problem, string expected)
    {
        var settings = new Dictionary<string, string>
        {
            ["Messaging:Cluster:Tls:Enabled"] = "true",
            ["Messaging:Cluster:Tls:CertificatePath"] = Certificates.SelfSigned(_directory, "good"),
            ["Messaging:Cluster:Tls:CertificatePassword"] = Certificates.Password,
        };
        switch (problem)
        {
            case "no certificate": settings.Remove("Messaging:Cluster:Tls:CertificatePath"); break;
            case "a missing file": settings["Messaging:Cluster:Tls:CertificatePath"] = Path.Combine(_directory, "absent.pfx"); break;
            case "a wrong password": settings["Messaging:Cluster:Tls:CertificatePassword"] = "not-the-password"; break;
            case "no private key": settings["Messaging:Cluster:Tls:CertificatePath"] = Certificates.WithoutKey(_directory, "public-only"); break;
            case "an expired certificate":
                settings["Messaging:Cluster:Tls:CertificatePath"] = Certificates.SelfSigned(_directory, "expired",
                    DateTimeOffset.UtcNow.AddDays(-30), DateTimeOffset.UtcNow.AddDays(-1));
                break;
            case "a certificate not valid yet":
                settings["Messaging:Cluster:Tls:CertificatePath"] = Certificates.SelfSigned(_directory, "future",
                    DateTimeOffset.UtcNow.AddDays(1), DateTimeOffset.UtcNow.AddDays(30));
                break;
            case "no CA in the file": settings["Messaging:Cluster:Tls:PeerValidation"] = "CertificateAuthority"; break;
            case "a plain seed": settings["Messaging:Cluster:SeedNodes"] = "akka.tcp://messaging@127.0.0.1:4053"; break;
            default: throw new ArgumentException(problem);
        }

        var error = Assert.Throws<NodeConfigurationException>(() => NodeApp.Build(
            [.. TestNode.LoopbackArguments(Path.Combine(_directory, "data")), .. settings.Select(s => $"--{s.Key}={s.Value}")]));

        Assert.Contains(expected, error.Message);
    }

    [Fact]
    public async Task Should_exit_with_code_2_naming_the_key_when_the_certificate_password_is_wrong()
    {
        var node = Node("refused", Certificates.SelfSigned(_directory, "cluster"), password: "not-the-password");
        node.Start();

        Assert.True(await node.WaitForExitAsync(ReadyWithin), node.Tail());
        Assert.Equal(2, node.ExitCode);
        Assert.Contains("Messaging:Cluster:Tls:CertificatePassword does not open", await File.ReadAllTextAsync(node.StderrPath, Ct));
    }

    /// <summary>A node as its own process, configured through the environment; TLS on when given a certificate.</summary>
    private NodeProcess Node(string name, string? certificate, PeerValidation validation = PeerValidation.SameCertificate,
        string? seed = null, string password = Certificates.Password)
    {
        var remotingPort = FreePorts.Next();
        var adminPort = FreePorts.Next();
        var environment = new Dictionary<string, string>
        {
            ["Messaging__DataDirectory"] = Path.Combine(_directory, name, "data"),
            ["Messaging__Cluster__Hostname"] = "127.0.0.1",
            ["Messaging__Cluster__Port"] = remotingPort.ToString(),
            ["Messaging__Admin__Port"] = adminPort.ToString(),
            ["Messaging__Admin__Token"] = AdminToken,
            ["Messaging__Auth__SigningKey"] = TestNode.SigningKey,
            ["DOTNET_gcServer"] = "0",
        };
        if (certificate is not null)
        {
            environment["Messaging__Cluster__Tls__Enabled"] = "true";
            environment["Messaging__Cluster__Tls__CertificatePath"] = certificate;
            environment["Messaging__Cluster__Tls__CertificatePassword"] = password;
            environment["Messaging__Cluster__Tls__PeerValidation"] = validation.ToString();
        }
        if (seed is not null)
            environment["Messaging__Cluster__SeedNodes"] = seed;
        var node = new NodeProcess(name, FreePorts.Next(), Path.Combine(_directory, name), environment)
        {
            RemotingPort = remotingPort,
            AdminPort = adminPort,
            RemotingProtocol = certificate is null ? "akka.tcp" : "akka.ssl.tcp",
        };
        _nodes.Add(node);
        return node;
    }

    private static string Output(NodeProcess node) =>
        File.Exists(node.StdoutPath) ? File.ReadAllText(node.StdoutPath) : "";

    private static HttpClient Client(NodeProcess node, string userId)
    {
        var client = new HttpClient { BaseAddress = node.HttpUri, Timeout = TimeSpan.FromSeconds(30) };
        client.DefaultRequestHeaders.Authorization = new("Bearer", Jwt.Mint(userId, TestNode.SigningKeyBytes, TimeSpan.FromHours(1)));
        return client;
    }

    private static async Task<JsonElement> Admin(NodeProcess node, string path)
    {
        using var client = new HttpClient { BaseAddress = node.AdminUri, Timeout = TimeSpan.FromSeconds(30) };
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", AdminToken);
        return await client.GetAsync(path, Ct).Ok();
    }

    private static async Task<string[]> MembersOf(NodeProcess node) =>
        [.. (await Admin(node, "/admin/cluster")).GetProperty("members").EnumerateArray().Select(m => m.GetProperty("address").GetString()!)];

    private static async Task<string[]> MailboxRegions(NodeProcess node) =>
        [.. (await Admin(node, "/admin/sharding/regions")).EnumerateArray()
            .Single(r => r.GetProperty("typeName").GetString() == "mailbox").GetProperty("nodes").EnumerateArray().Select(n => n.GetString()!)];

    private static async Task<string> HostOf(NodeProcess node, string userId) =>
        (await Admin(node, $"/admin/mailboxes/{userId}?status=false")).GetProperty("node").GetString()!;

    private static string Conversation(string a, string b) =>
        string.CompareOrdinal(a, b) <= 0 ? $"dm~{a}~{b}" : $"dm~{b}~{a}";

    public async ValueTask DisposeAsync()
    {
        foreach (var node in _nodes)
            await node.DisposeAsync();
        try
        {
            Directory.Delete(_directory, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
