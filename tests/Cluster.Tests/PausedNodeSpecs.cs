using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Messaging.Cluster.Tests.Harness;
using Npgsql;
using Xunit;

namespace Messaging.Cluster.Tests;

/// <summary>
/// The zombie write, made on purpose rather than by timing luck: the node holding a mailbox is paused (SIGSTOP) with
/// sends to that mailbox waiting in its sockets, the majority takes the mailbox over and writes to it, and only then is
/// the paused node resumed. Its pause guard finds it was paused longer than the limit: it must acknowledge none of the
/// sends it had waiting and write nothing, neither from the old incarnation nor from a new one the shard would start for
/// a message that came during a passivation (which would claim the journal and write beside the majority's incarnation,
/// whose cache would then miss acknowledged messages), and it must leave. Nothing acknowledged may be lost, and the
/// journal must never hold the old writer's events after the new writer's. (The journal's own fence, which refuses an
/// old incarnation's writes whatever the guard does, is checked row by row in JournalFenceSpecs.)
/// </summary>
public sealed class PausedNodeSpecs(ITestOutputHelper output)
{
    private const int Paused = 2;
    private const int Waiting = 12;
    private static readonly TimeSpan Within = TimeSpan.FromSeconds(90);

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Should_refuse_every_write_a_paused_node_makes_after_its_mailbox_moved_and_lose_nothing_acknowledged()
    {
        var directory = Paths.NewRunDirectory("paused-node");
        void Log(string line)
        {
            try { output.WriteLine($"[{DateTime.UtcNow:HH:mm:ss.fff}] {line}"); }
            catch (InvalidOperationException) { }
        }
        await using var postgres = await PostgresServer.StartAsync(directory);
        await using var cluster = await TestCluster.StartAsync(postgres, directory, Log, ClusterSettings.ForTests);
        using var http = new HttpClient { Timeout = TimeSpan.FromMinutes(3) };
        var paused = cluster.Nodes[Paused];
        var majority = cluster.Nodes[0];

        // A user whose mailbox lives on the node to pause, with one acknowledged message.
        var acknowledged = new List<string>();
        string? user = null;
        for (var i = 0; user is null; i++)
        {
            Assert.True(i < 60, "no mailbox landed on the node to pause");
            var candidate = $"zombie{i}";
            Assert.Equal(HttpStatusCode.OK, (await SendAsync(http, cluster, majority, candidate, $"{candidate}-first", "first")).StatusCode);
            if (await MailboxNodeAsync(http, cluster, majority, candidate) == paused.AkkaAddress)
                user = candidate;
        }
        acknowledged.Add($"{user}-first");
        Log($"{user}'s mailbox lives on {paused.Name}");

        cluster.Freeze(Paused);
        // Sends to the paused node: its kernel takes the connections and the requests; the process reads them on resume.
        var waiting = Enumerable.Range(1, Waiting)
            .Select(k => SendAsync(http, cluster, paused, user, $"{user}-waiting-{k}", $"waiting {k}"))
            .ToList();

        // The majority downs the paused node and starts the mailbox again; its new incarnation claims and writes.
        await Eventually.AssertAsync(async () =>
            (await SendAsync(http, cluster, majority, user, $"{user}-after", "after the takeover")).StatusCode == HttpStatusCode.OK,
            Within, () => $"{user}'s mailbox never served again on the majority", TimeSpan.FromMilliseconds(500));
        acknowledged.Add($"{user}-after");
        Assert.NotEqual(paused.AkkaAddress, await MailboxNodeAsync(http, cluster, majority, user));
        Log("the majority took the mailbox over and wrote to it");

        cluster.Thaw(Paused);
        // A read there right after the resume would come from the old incarnation's cache, which misses "after": the
        // node answers 503 (or has already gone), never a stale thread.
        HttpStatusCode? staleRead;
        try
        {
            staleRead = (await http.SendAsync(Api.Authorized(HttpMethod.Get, new Uri(paused.HttpUri, $"/v1/users/{user}/conversations"),
                Api.Token(cluster.SigningKey, user)), Ct)).StatusCode;
        }
        catch (HttpRequestException)
        {
            staleRead = null;
        }
        Log($"a read on the resumed node: {staleRead?.ToString() ?? "no answer"}");
        Assert.NotEqual(HttpStatusCode.OK, staleRead);
        var answers = new List<HttpStatusCode?>();
        foreach (var (send, k) in waiting.Select((s, k) => (s, k + 1)))
        {
            try
            {
                var response = await send;
                answers.Add(response.StatusCode);
                if (response.StatusCode == HttpStatusCode.OK)
                    acknowledged.Add($"{user}-waiting-{k}");
            }
            catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
            {
                answers.Add(null); // the resumed node closed the connection: not acknowledged, nothing promised
            }
        }
        Log($"answers to the sends that waited in the paused node: {string.Join(", ", answers.Select(a => a?.ToString() ?? "no answer"))}");
        Assert.True(await paused.WaitForExitAsync(Within), $"{paused.Name} did not shut down after it was downed");

        // The resumed node knew it had been paused too long, and acknowledged nothing it had waiting.
        var pausedLog = await File.ReadAllTextAsync(paused.StdoutPath, Ct) + await File.ReadAllTextAsync(paused.StderrPath, Ct);
        Assert.Contains("This node was paused for", pausedLog);
        Assert.DoesNotContain(HttpStatusCode.OK, answers);

        // The journal: the writer changes only where a claim is, so no event of an older writer after a newer one's,
        // and no claim of the paused node after the majority's: it started no new incarnation that wrote.
        var rows = await JournalAsync(postgres, $"mailbox-{user}", paused.AkkaAddress!);
        Assert.True(rows[0].Claim);
        Assert.Contains(rows, r => r.Claim && r.Writer != rows[0].Writer);
        for (var i = 1; i < rows.Count; i++)
            Assert.True(rows[i].Writer == rows[i - 1].Writer || rows[i].Claim,
                $"journal entry {rows[i].Seq} of {rows[i].Writer} follows {rows[i - 1].Writer}'s without a claim:\n" +
                string.Join("\n", rows.Select(r => $"{r.Seq} {r.Writer} {(r.Claim ? "claim" : "")}")));
        var takeover = rows.FindIndex(r => r.Claim && !r.ByPaused);
        Assert.True(takeover > 0, "the majority never claimed the mailbox");
        Assert.DoesNotContain(rows.Skip(takeover), r => r.ByPaused);

        // Every acknowledged message is there once, whichever node reads it.
        foreach (var node in cluster.Nodes.Where(n => n.IsRunning))
        {
            var thread = await ThreadAsync(http, cluster, node, user);
            var ids = thread.Select(m => m.ClientMessageId).ToList();
            Assert.All(acknowledged, id => Assert.Single(ids, id));
            Assert.Equal(ids.Count, ids.Distinct().Count());
            Assert.Equal(Enumerable.Range(1, thread.Count).Select(i => (long)i), thread.Select(m => m.Seq));
        }
    }

    private static Task<HttpResponseMessage> SendAsync(HttpClient http, TestCluster cluster, NodeProcess node, string user,
        string clientMessageId, string text) =>
        http.SendAsync(Api.Authorized(HttpMethod.Post, new Uri(node.HttpUri, "/v1/messages"), Api.Token(cluster.SigningKey, user),
            new { recipientIds = new[] { $"{user}-peer" }, message = text, clientMessageId }));

    private static async Task<string?> MailboxNodeAsync(HttpClient http, TestCluster cluster, NodeProcess node, string user)
    {
        var response = await http.SendAsync(Api.Authorized(HttpMethod.Get,
            new Uri(node.AdminUri, $"/admin/mailboxes/{user}?status=false"), cluster.AdminToken));
        response.EnsureSuccessStatusCode();
        var view = await response.Content.ReadFromJsonAsync<JsonElement>();
        return view.GetProperty("node").GetString();
    }

    private static async Task<List<MessageDto>> ThreadAsync(HttpClient http, TestCluster cluster, NodeProcess node, string user)
    {
        var conversation = string.CompareOrdinal(user, $"{user}-peer") < 0 ? $"dm~{user}~{user}-peer" : $"dm~{user}-peer~{user}";
        var response = await http.SendAsync(Api.Authorized(HttpMethod.Get,
            new Uri(node.HttpUri, $"/v1/users/{user}/conversations/{Uri.EscapeDataString(conversation)}/messages?count=200"),
            Api.Token(cluster.SigningKey, user)));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        return [.. (await response.Content.ReadFromJsonAsync<ThreadResponse>(Api.Json))!.Messages];
    }

    /// <summary>The mailbox's journal rows; a claim names its node, so <c>ByPaused</c> marks the paused node's claims.</summary>
    private static async Task<List<(long Seq, string Writer, bool Claim, bool ByPaused)>> JournalAsync(
        PostgresServer postgres, string persistenceId, string pausedAddress)
    {
        await using var connection = new NpgsqlConnection(postgres.ConnectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(
            "SELECT sequence_number, writer_uuid, manifest = 'WCl', manifest = 'WCl' AND position(convert_to(@node, 'UTF8') in message) > 0 " +
            "FROM journal WHERE persistence_id = @p ORDER BY sequence_number",
            connection);
        command.Parameters.AddWithValue("p", persistenceId);
        command.Parameters.AddWithValue("node", pausedAddress);
        var rows = new List<(long, string, bool, bool)>();
        await using var reader = await command.ExecuteReaderAsync();
        while (await reader.ReadAsync())
            rows.Add((reader.GetInt64(0), reader.GetString(1), reader.GetBoolean(2), reader.GetBoolean(3)));
        return rows;
    }
}
