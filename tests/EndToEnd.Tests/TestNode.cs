using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;
using Messaging.Http;
using Messaging.Node;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;

namespace Messaging.EndToEnd.Tests;

/// <summary>A whole node in this process: real Kestrel on 127.0.0.1, a one-node cluster, SQLite in a temp folder.</summary>
public sealed class TestNode : IAsyncDisposable
{
    public const string SigningKey = "end-to-end-tests-signing-key-0123456789-abcdef";
    public static readonly byte[] SigningKeyBytes = System.Text.Encoding.UTF8.GetBytes(SigningKey);

    private readonly WebApplication _app;
    private readonly HttpClient _anonymous;

    private TestNode(WebApplication app, string dataDirectory, Uri baseAddress)
    {
        _app = app;
        DataDirectory = dataDirectory;
        BaseAddress = baseAddress;
        _anonymous = new HttpClient { BaseAddress = baseAddress };
    }

    public string DataDirectory { get; }
    public Uri BaseAddress { get; }
    public TokenIssuer Tokens { get; } = new(SigningKeyBytes, TimeSpan.FromHours(1));

    public static Task<TestNode> StartAsync(params string[] extraArgs) =>
        StartAsync(Directory.CreateTempSubdirectory("messaging-e2e-").FullName, [$"--Messaging:Auth:SigningKey={SigningKey}", .. extraArgs]);

    public static async Task<TestNode> StartAsync(string dataDirectory, string[] extraArgs)
    {
        var app = NodeApp.Build(["--urls=http://127.0.0.1:0", .. LoopbackArguments(dataDirectory), .. extraArgs]);
        await app.StartAsync();
        var node = new TestNode(app, dataDirectory, new Uri(app.Urls.First()));
        await Readiness.WaitAsync("the node", node.BaseAddress, TimeSpan.FromSeconds(30));
        return node;
    }

    /// <summary>A cluster of one on loopback, every port picked by the OS but HTTP's, with quiet logs.</summary>
    public static string[] LoopbackArguments(string dataDirectory) =>
    [
        $"--Messaging:DataDirectory={dataDirectory}",
        "--Messaging:Cluster:Hostname=127.0.0.1",
        "--Messaging:Cluster:Port=0",
        "--Messaging:Admin:Port=0",
        "--Logging:LogLevel:Default=Warning",
        // The wake warm-up compiles the path of a wake from a snapshot at every start: seconds of CPU per node in a
        // Debug build, for nothing a test checks (WakeWarmupSpecs do; the cluster suite's nodes run it as shipped).
        "--Messaging:Mailbox:WarmupWakes=0",
    ];

    public HttpClient Anonymous => _anonymous;

    /// <summary>The admin listener (its own port, picked by the OS).</summary>
    public Uri AdminAddress => _app.Services.GetRequiredService<Messaging.Node.Admin.AdminServer>().Address!;

    public IServiceProvider Services => _app.Services;

    public HttpClient ClientFor(string userId) => ClientWithToken(Tokens.Issue(userId));

    public HttpClient ClientWithToken(string? token)
    {
        var client = new HttpClient { BaseAddress = BaseAddress, Timeout = TimeSpan.FromSeconds(30) };
        if (token is not null)
            client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
        return client;
    }

    public async ValueTask DisposeAsync()
    {
        _anonymous.Dispose();
        await _app.StopAsync();
        await _app.DisposeAsync();
        try
        {
            Directory.Delete(DataDirectory, recursive: true);
        }
        catch (IOException)
        {
            // a SQLite handle still closing; the temp folder is cleaned by the OS eventually
        }
    }
}

/// <summary>One node shared by the specs of a class: each spec uses its own user ids.</summary>
public sealed class NodeFixture : IAsyncLifetime
{
    public TestNode Node { get; private set; } = null!;

    // A small in-memory window, so thread pages deeper than 4 messages are read back from the journal.
    public async ValueTask InitializeAsync() => Node = await TestNode.StartAsync("--Messaging:Mailbox:RecentPerConversation=4");

    public async ValueTask DisposeAsync() => await Node.DisposeAsync();
}

/// <summary>A node with the default settings (every page of a short thread is served from memory).</summary>
public sealed class DefaultNodeFixture : IAsyncLifetime
{
    public TestNode Node { get; private set; } = null!;

    public async ValueTask InitializeAsync() => Node = await TestNode.StartAsync();

    public async ValueTask DisposeAsync() => await Node.DisposeAsync();
}

/// <summary>The same node as <see cref="NodeFixture"/>, journaling to PostgreSQL.</summary>
public sealed class PostgresNodeFixture : IAsyncLifetime
{
    public TestNode Node { get; private set; } = null!;

    public async ValueTask InitializeAsync() => Node = await TestNode.StartAsync(
        [.. await SharedPostgres.NodeArgumentsAsync(), "--Messaging:Mailbox:RecentPerConversation=4"]);

    public async ValueTask DisposeAsync() => await Node.DisposeAsync();
}

/// <summary>The same node as <see cref="DefaultNodeFixture"/>, journaling to PostgreSQL.</summary>
public sealed class DefaultPostgresNodeFixture : IAsyncLifetime
{
    public TestNode Node { get; private set; } = null!;

    public async ValueTask InitializeAsync() => Node = await TestNode.StartAsync(await SharedPostgres.NodeArgumentsAsync());

    public async ValueTask DisposeAsync() => await Node.DisposeAsync();
}

/// <summary>One throwaway PostgreSQL server for the whole test run (started on first use), one database per node.</summary>
public static class SharedPostgres
{
    private static readonly Lazy<Task<PostgresServer>> Server = new(async () =>
    {
        var server = await PostgresServer.StartAsync();
        AppDomain.CurrentDomain.ProcessExit += (_, _) => server.DisposeAsync().AsTask().GetAwaiter().GetResult();
        return server;
    });

    public static async Task<string[]> NodeArgumentsAsync()
    {
        var server = await Server.Value;
        var database = $"e2e_{Guid.NewGuid():N}"[..16];
        await server.CreateDatabaseAsync(database);
        return
        [
            "--Messaging:Persistence:Provider=PostgreSql",
            $"--Messaging:Persistence:ConnectionString={server.ConnectionStringFor(database)}",
        ];
    }
}

/// <summary>The API as a client sees it: JSON in, JSON or problem details out.</summary>
public static class Api
{
    public static Task<HttpResponseMessage> Send(this HttpClient client, object body) =>
        client.PostAsJsonAsync("/v1/messages", body);

    public static Task<HttpResponseMessage> Send(this HttpClient client, string recipient, string message, string? clientMessageId = null) =>
        client.Send(new { recipientIds = new[] { recipient }, message, clientMessageId = clientMessageId ?? Guid.NewGuid().ToString() });

    public static Task<HttpResponseMessage> SendRaw(this HttpClient client, string json) =>
        client.PostAsync("/v1/messages", new StringContent(json, System.Text.Encoding.UTF8, "application/json"));

    public static async Task<JsonElement> Json(this HttpResponseMessage response)
    {
        var text = await response.Content.ReadAsStringAsync();
        return JsonDocument.Parse(text).RootElement.Clone();
    }

    public static async Task<JsonElement> Ok(this Task<HttpResponseMessage> request)
    {
        var response = await request;
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.OK, $"expected 200, got {(int)response.StatusCode}: {body}");
        return JsonDocument.Parse(body).RootElement.Clone();
    }

    public static Task<HttpResponseMessage> Conversations(this HttpClient client, string userId, string query = "") =>
        client.GetAsync($"/v1/users/{userId}/conversations{query}");

    public static Task<HttpResponseMessage> Thread(this HttpClient client, string userId, string conversationId, string query = "") =>
        client.GetAsync($"/v1/users/{userId}/conversations/{Uri.EscapeDataString(conversationId)}/messages{query}");

    public static long[] Seqs(this JsonElement threadPage) =>
        [.. threadPage.GetProperty("messages").EnumerateArray().Select(m => m.GetProperty("seq").GetInt64())];

    public static string[] Texts(this JsonElement threadPage) =>
        [.. threadPage.GetProperty("messages").EnumerateArray().Select(m => m.GetProperty("message").GetString()!)];

    /// <summary>Asserts a problem details body with the given status and, on the send path, sendStatus.</summary>
    public static async Task<JsonElement> AssertProblem(this HttpResponseMessage response, HttpStatusCode status, string? sendStatus = null)
    {
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == status, $"expected {(int)status}, got {(int)response.StatusCode}: {body}");
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        var problem = JsonDocument.Parse(body).RootElement.Clone();
        Assert.Equal((int)status, problem.GetProperty("status").GetInt32());
        Assert.False(string.IsNullOrEmpty(problem.GetProperty("title").GetString()));
        Assert.False(string.IsNullOrEmpty(problem.GetProperty("detail").GetString()));
        if (sendStatus is not null)
            Assert.Equal(sendStatus, problem.GetProperty("sendStatus").GetString());
        return problem;
    }
}
