using System.Net;
using Npgsql;

namespace Messaging.EndToEnd.Tests;

/// <summary>A node on a PostgreSQL server of its own, which the specs stop, freeze and corrupt.</summary>
public sealed class OwnPostgresNodeFixture : IAsyncLifetime
{
    public PostgresServer Postgres { get; private set; } = null!;
    public TestNode Node { get; private set; } = null!;

    public async ValueTask InitializeAsync()
    {
        Postgres = await PostgresServer.StartAsync();
        Node = await TestNode.StartAsync(
            "--Messaging:Persistence:Provider=PostgreSql",
            $"--Messaging:Persistence:ConnectionString={Postgres.ConnectionString}",
            "--Messaging:Http:AskTimeout=00:00:03",
            "--Messaging:Mailbox:JournalReadTimeout=00:00:02",
            "--Messaging:Mailbox:DeliveryWait=00:00:01",
            "--Messaging:Mailbox:MaxPendingPerRecipient=2");
    }

    public async ValueTask DisposeAsync()
    {
        await Node.DisposeAsync();
        await Postgres.DisposeAsync();
    }
}

/// <summary>
/// The three ways a send meets a cluster that cannot take it (the journal is down, the mailbox does not answer in
/// time, the recipient's backlog is full), each through real HTTP: a 503 problem with `sendStatus: Unavailable` and
/// `Retry-After`, never a 500 and never a false success; and the client's retry with the same clientMessageId, once
/// the trouble is over, stores the message exactly once.
/// </summary>
public sealed class UnavailableSpecs(OwnPostgresNodeFixture fixture) : IClassFixture<OwnPostgresNodeFixture>
{
    private static readonly TimeSpan Recovery = TimeSpan.FromSeconds(60);

    [Fact]
    public async Task Should_answer_503_while_the_journal_is_down_and_store_a_retry_once_when_it_is_back()
    {
        var (alice, bob) = (Users.Unique("alice"), Users.Unique("bob"));
        var client = fixture.Node.ClientFor(alice);
        await client.Send(bob, "before").Ok();

        await fixture.Postgres.StopAsync();
        HttpResponseMessage refused;
        try
        {
            refused = await client.Send(bob, "during", "during-1");
        }
        finally
        {
            await fixture.Postgres.StartAgainAsync();
        }

        var problem = await AssertUnavailableAsync(refused);
        Assert.Contains("journal", problem.GetProperty("detail").GetString());
        var stored = await RetryUntilAcknowledgedAsync(client, bob, "during", "during-1");
        Assert.NotEqual("Duplicate", stored.GetProperty("sendStatus").GetString()); // the refused write stored nothing
        await AssertStoredOnceAsync(client, alice, bob, "during");
    }

    [Fact]
    public async Task Should_answer_503_when_the_mailbox_does_not_answer_in_time_and_store_a_retry_once()
    {
        var (alice, bob) = (Users.Unique("alice"), Users.Unique("bob"));
        var client = fixture.Node.ClientFor(alice);
        await client.Send(bob, "before").Ok();

        // The database hangs (every PostgreSQL process stopped): the write is in flight past the ask timeout.
        var frozen = PostgresProcesses();
        Signal(frozen, Signals.SigStop);
        HttpResponseMessage late;
        try
        {
            late = await client.Send(bob, "slow", "slow-1");
        }
        finally
        {
            Signal(frozen, Signals.SigCont);
        }

        var problem = await AssertUnavailableAsync(late);
        Assert.Contains("did not answer", problem.GetProperty("detail").GetString());
        // The write went on after the 503: the retry finds it (Duplicate) or joins it; either way it is stored once.
        await RetryUntilAcknowledgedAsync(client, bob, "slow", "slow-1");
        await AssertStoredOnceAsync(client, alice, bob, "slow");
    }

    [Fact]
    public async Task Should_answer_503_when_the_recipients_backlog_is_full_and_store_a_retry_once_it_drains()
    {
        // The recipient's mailbox cannot start (an unreadable event in its journal): it confirms nothing.
        var (alice, stuck) = (Users.Unique("alice"), Users.Unique("stuck"));
        await ExecuteAsync(
            "INSERT INTO journal (created, deleted, persistence_id, sequence_number, message, manifest, identifier, writer_uuid) " +
            "VALUES (0, false, @p, 1, '\\xdeadbeef'::bytea, 'MSt', 771, 'corrupt')", ("p", $"mailbox-{stuck}"));
        var client = fixture.Node.ClientFor(alice);
        for (var i = 1; i <= 2; i++) // MaxPendingPerRecipient = 2
            Assert.Equal("Accepted", (await client.Send(stuck, $"queued {i}").Ok()).GetProperty("sendStatus").GetString());

        var refused = await client.Send(stuck, "one too many", "third-1");

        var problem = await AssertUnavailableAsync(refused);
        Assert.Contains("awaiting delivery", problem.GetProperty("detail").GetString());
        await ExecuteAsync("DELETE FROM journal WHERE persistence_id = @p AND writer_uuid = 'corrupt'", ("p", $"mailbox-{stuck}"));
        await RetryUntilAcknowledgedAsync(client, stuck, "one too many", "third-1");
        await AssertStoredOnceAsync(client, alice, stuck, "one too many");
        await Eventually.AssertAsync(async () =>
            (await fixture.Node.ClientFor(stuck).Thread(stuck, Messages.Ids.ConversationFor(alice, stuck))).StatusCode == HttpStatusCode.OK
            && (await fixture.Node.ClientFor(stuck).Thread(stuck, Messages.Ids.ConversationFor(alice, stuck)).Ok()).Texts()
                .SequenceEqual(["queued 1", "queued 2", "one too many"]),
            Recovery, "the recipient never got the three messages in order");
    }

    private static async Task<System.Text.Json.JsonElement> AssertUnavailableAsync(HttpResponseMessage response)
    {
        var problem = await response.AssertProblem(HttpStatusCode.ServiceUnavailable, "Unavailable");
        Assert.True(response.Headers.RetryAfter?.Delta is { TotalSeconds: > 0 }, "a 503 must say when to retry (Retry-After)");
        return problem;
    }

    private static async Task<System.Text.Json.JsonElement> RetryUntilAcknowledgedAsync(
        HttpClient client, string recipient, string text, string clientMessageId)
    {
        System.Text.Json.JsonElement acknowledged = default;
        await Eventually.AssertAsync(async () =>
        {
            var response = await client.Send(recipient, text, clientMessageId);
            if (response.StatusCode == HttpStatusCode.ServiceUnavailable)
                return false; // still recovering (the journal's circuit breaker half-opens after 3 s)
            acknowledged = await Task.FromResult(response).Ok();
            return true;
        }, Recovery, $"the retry of {clientMessageId} was never acknowledged");
        return acknowledged;
    }

    private static async Task AssertStoredOnceAsync(HttpClient client, string sender, string recipient, string text)
    {
        var thread = await client.Thread(sender, Messages.Ids.ConversationFor(sender, recipient)).Ok();
        Assert.Single(thread.Texts(), t => t == text);
        Assert.Equal(Enumerable.Range(1, thread.Seqs().Length).Select(i => (long)i), thread.Seqs());
    }

    private async Task ExecuteAsync(string sql, params (string Name, object Value)[] parameters)
    {
        await using var connection = new NpgsqlConnection(fixture.Postgres.ConnectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(sql, connection);
        foreach (var (name, value) in parameters)
            command.Parameters.AddWithValue(name, value);
        await command.ExecuteNonQueryAsync();
    }

    /// <summary>The postmaster and its children (backends and background workers).</summary>
    private int[] PostgresProcesses()
    {
        var postmaster = fixture.Postgres.PostmasterPid ?? throw new InvalidOperationException("PostgreSQL is not running");
        var children = Directory.GetDirectories("/proc")
            .Select(d => int.TryParse(Path.GetFileName(d), out var pid) ? pid : 0)
            .Where(pid => pid > 0 && ParentOf(pid) == postmaster);
        return [postmaster, .. children];
    }

    private static int ParentOf(int pid)
    {
        try
        {
            var stat = File.ReadAllText($"/proc/{pid}/stat");
            var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
            return int.Parse(fields[1]);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException)
        {
            return 0;
        }
    }

    private static void Signal(IEnumerable<int> pids, int signal)
    {
        foreach (var pid in pids)
            Signals.Send(pid, signal);
    }
}
