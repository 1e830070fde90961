using Messaging.Client;
using Microsoft.Kiota.Abstractions.Authentication;
using Microsoft.Kiota.Http.HttpClientLibrary;

[assembly: System.Runtime.Versioning.SupportedOSPlatform("linux")]
[assembly: AssemblyFixture(typeof(Messaging.Client.Tests.ClientNode))]

namespace Messaging.Client.Tests;

/// <summary>
/// One node for these specs, as its own process on 127.0.0.1 (a one-node cluster, SQLite in a temp folder), with a
/// signing key the specs mint tokens from as any client holding the key could.
/// </summary>
public sealed class ClientNode : IAsyncLifetime
{
    private static readonly byte[] SigningKey = "client-tests-signing-key-0123456789-abcdefgh"u8.ToArray();
    private readonly string _directory = Directory.CreateTempSubdirectory("messaging-client-").FullName;
    private NodeProcess _node = null!;

    public Uri BaseAddress => _node.HttpUri;
    public Uri DocumentAddress => new(_node.HttpUri, "/openapi/v1.json");

    public async ValueTask InitializeAsync()
    {
        _node = new NodeProcess("client-node", FreePorts.Next(), _directory, arguments:
        [
            $"--Messaging:Auth:SigningKey={System.Text.Encoding.UTF8.GetString(SigningKey)}",
            $"--Messaging:DataDirectory={Path.Combine(_directory, "data")}",
            "--Messaging:Cluster:Hostname=127.0.0.1",
            "--Messaging:Cluster:Port=0",
            "--Messaging:Admin:Port=0",
            "--Logging:LogLevel:Default=Warning",
        ]);
        await _node.StartAsync(TimeSpan.FromSeconds(60));
    }

    /// <summary>The generated client, acting for <paramref name="userId"/> with a Bearer token; dispose the adapter.</summary>
    public (MessagingClient Client, IDisposable Adapter) ClientFor(string userId)
    {
        var token = Jwt.Mint(userId, SigningKey, TimeSpan.FromHours(1));
        var adapter = new HttpClientRequestAdapter(new BaseBearerTokenAuthenticationProvider(new StaticToken(token)))
        {
            BaseUrl = BaseAddress.ToString().TrimEnd('/'),
        };
        return (new MessagingClient(adapter), adapter);
    }

    public async ValueTask DisposeAsync()
    {
        await _node.DisposeAsync();
        try
        {
            Directory.Delete(_directory, recursive: true);
        }
        catch (IOException)
        {
            // a SQLite handle still closing; the temp folder is cleaned by the OS eventually
        }
    }

    private sealed class StaticToken(string token) : IAccessTokenProvider
    {
        public AllowedHostsValidator AllowedHostsValidator { get; } = new();

        public Task<string> GetAuthorizationTokenAsync(Uri uri, Dictionary<string, object>? additionalAuthenticationContext = null,
            CancellationToken cancellationToken = default) => Task.FromResult(token);
    }
}
