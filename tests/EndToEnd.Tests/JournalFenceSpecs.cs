using Akka.Actor;
using Messaging.Actors;
using Messaging.Messages;
using Messaging.Node;
using Microsoft.Extensions.DependencyInjection;
using Npgsql;

namespace Messaging.EndToEnd.Tests;

/// <summary>A node on its own PostgreSQL database: the journal tables its plugin made, and the fence it installed.</summary>
public sealed class FencedJournalFixture : IAsyncLifetime
{
    public TestNode Node { get; private set; } = null!;
    public string ConnectionString { get; private set; } = null!;

    public async ValueTask InitializeAsync()
    {
        var args = await SharedPostgres.NodeArgumentsAsync();
        ConnectionString = args.Single(a => a.StartsWith("--Messaging:Persistence:ConnectionString=", StringComparison.Ordinal))
            .Split('=', 2)[1];
        Node = await TestNode.StartAsync(args);
    }

    public async ValueTask DisposeAsync() => await Node.DisposeAsync();
}

/// <summary>
/// The journal's writer fence, row by row as the journal plugin writes them (writer uuid, manifest), with the
/// interleavings a paused node produces made on purpose: a write held open in a transaction stands for a node frozen
/// mid-write. No timing: where a statement must wait, the spec waits until PostgreSQL shows it waiting.
/// </summary>
public sealed class JournalFenceSpecs(FencedJournalFixture fixture) : IClassFixture<FencedJournalFixture>
{
    private const string OldNode = "old-node-journal-uuid";
    private const string NewNode = "new-node-journal-uuid";
    private readonly string _mailbox = $"mailbox-fence-{Guid.NewGuid():N}";

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Should_be_installed_by_a_node_on_PostgreSQL_and_fence_the_mailboxes_it_writes()
    {
        var user = Users.Unique("fenced");
        await fixture.Node.ClientFor(user).Send(Users.Unique("other"), "hello").Ok();

        await using var connection = await OpenAsync();
        await using var command = new NpgsqlCommand(
            $"SELECT writer_uuid FROM {JournalFence.WriterTable} WHERE persistence_id = @p", connection);
        command.Parameters.AddWithValue("p", $"mailbox-{user}");
        Assert.NotNull(await command.ExecuteScalarAsync(Ct));
        await using var sameUuid = new NpgsqlCommand(
            $"SELECT count(DISTINCT writer_uuid) FROM journal WHERE persistence_id = @p", connection);
        sameUuid.Parameters.AddWithValue("p", $"mailbox-{user}");
        Assert.Equal(1L, await sameUuid.ExecuteScalarAsync(Ct));
        Assert.False(await JournalFence.InstallIfMissingAsync(NpgsqlDataSource.Create(fixture.ConnectionString)));
    }

    [Fact]
    public async Task Should_refuse_every_write_of_an_older_writer_once_a_newer_one_has_claimed_the_mailbox()
    {
        await using var connection = await OpenAsync();
        await InsertAsync(connection, 1, OldNode, claim: true);
        await InsertAsync(connection, 2, OldNode);
        await InsertAsync(connection, 3, NewNode, claim: true);
        await InsertAsync(connection, 4, NewNode);

        var refused = await Assert.ThrowsAsync<PostgresException>(() => InsertAsync(connection, 5, OldNode));

        Assert.Equal("MF002", refused.SqlState);
        Assert.Contains(OldNode, refused.MessageText);
        await InsertAsync(connection, 5, NewNode);
        Assert.Equal([OldNode, OldNode, NewNode, NewNode, NewNode], await WritersAsync(connection));
    }

    [Fact]
    public async Task Should_refuse_a_claim_below_a_newer_event_of_another_writer()
    {
        await using var connection = await OpenAsync();
        await InsertAsync(connection, 1, OldNode, claim: true);
        await InsertAsync(connection, 3, OldNode); // 2 missing: a write that failed

        var refused = await Assert.ThrowsAsync<PostgresException>(() => InsertAsync(connection, 2, NewNode, claim: true));

        Assert.Equal("MF001", refused.SqlState);
        await InsertAsync(connection, 4, OldNode); // the old writer keeps the mailbox
    }

    [Fact]
    public async Task Should_make_a_claim_wait_for_a_write_in_flight_then_refuse_the_old_writer()
    {
        // The old node has a write open in a transaction (frozen mid-write) when the new node claims.
        await using var frozen = await OpenAsync();
        await InsertAsync(frozen, 1, OldNode, claim: true);
        await using var transaction = await frozen.BeginTransactionAsync(Ct);
        await InsertAsync(frozen, 2, OldNode, transaction: transaction);

        await using var successor = await OpenAsync();
        var claim = InsertAsync(successor, 3, NewNode, claim: true);
        await WaitUntilWaitingOnAdvisoryLockAsync();
        Assert.False(claim.IsCompleted);

        await transaction.CommitAsync(Ct); // the write in flight lands below the claim
        await claim;

        var refused = await Assert.ThrowsAsync<PostgresException>(() => InsertAsync(frozen, 4, OldNode));
        Assert.Equal("MF002", refused.SqlState);
        Assert.Equal([OldNode, OldNode, NewNode], await WritersAsync(successor));
    }

    [Fact]
    public async Task Should_refuse_a_claim_when_a_write_in_flight_lands_above_it()
    {
        // The old incarnation had pipelined writes: 2 failed, 3 was still open when the new one read the journal
        // (it saw 1) and claimed at 2.
        await using var frozen = await OpenAsync();
        await InsertAsync(frozen, 1, OldNode, claim: true);
        await using var transaction = await frozen.BeginTransactionAsync(Ct);
        await InsertAsync(frozen, 3, OldNode, transaction: transaction);

        await using var successor = await OpenAsync();
        var claim = InsertAsync(successor, 2, NewNode, claim: true);
        await WaitUntilWaitingOnAdvisoryLockAsync();
        await transaction.CommitAsync(Ct);

        var refused = await Assert.ThrowsAsync<PostgresException>(() => claim);
        Assert.Equal("MF001", refused.SqlState);
        Assert.Equal([OldNode, OldNode], await WritersAsync(successor));
    }

    [Fact]
    public async Task Should_refuse_the_old_writers_transaction_that_writes_only_after_the_claim()
    {
        await using var frozen = await OpenAsync();
        await InsertAsync(frozen, 1, OldNode, claim: true);
        await using var transaction = await frozen.BeginTransactionAsync(Ct); // began before the claim, writes after

        await using var successor = await OpenAsync();
        await InsertAsync(successor, 2, NewNode, claim: true);

        var refused = await Assert.ThrowsAsync<PostgresException>(() => InsertAsync(frozen, 3, OldNode, transaction: transaction));
        Assert.Equal("MF002", refused.SqlState);
    }

    [Fact]
    public async Task Should_accept_any_writer_of_a_mailbox_never_claimed()
    {
        // Journals written before the fence: their mailboxes are fenced from their next incarnation's claim on.
        await using var connection = await OpenAsync();
        await InsertAsync(connection, 1, OldNode);
        await InsertAsync(connection, 2, NewNode);
        await InsertAsync(connection, 3, OldNode);
        Assert.Equal(3, (await WritersAsync(connection)).Length);
    }

    [Fact]
    public async Task Should_recover_a_journal_a_paused_node_wrote_into_before_the_fence_losing_nothing_it_acknowledged()
    {
        // Rows as the previous release left them: the old node wrote m1, the new node m2, the old node (resumed) m3
        // decided on its stale state: the same seq and channel number as m2. Akka's replay filter refused this
        // mailbox for good.
        var (alice, bob) = (Users.Unique("alice"), Users.Unique("bob"));
        var empty = MailboxState.Empty(alice, new MailboxLimits());
        MessageSent Decide(MailboxState state, string text, long now) => Assert.IsType<SendDecision.Store>(
            state.DecideSend(new SendMessage(alice, [bob], text, $"cid-{text}"), now)).Event;
        var t0 = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() - 60_000;
        var m1 = Decide(empty, "m1", t0);
        var m2 = Decide(empty.Apply(m1, 1), "m2", t0 + 10);
        var m3 = Decide(empty.Apply(m1, 1), "m3", t0 + 20);
        await using (var connection = await OpenAsync())
        {
            await InsertEventAsync(connection, $"mailbox-{alice}", 1, OldNode, m1);
            await InsertEventAsync(connection, $"mailbox-{alice}", 2, NewNode, m2);
            await InsertEventAsync(connection, $"mailbox-{alice}", 3, OldNode, m3);
        }

        var client = fixture.Node.ClientFor(alice);
        var conversation = Ids.ConversationFor(alice, bob);
        await Eventually.AssertAsync(async () => (await client.Thread(alice, conversation).Ok()).Texts().Length == 3,
            TimeSpan.FromSeconds(20), "m3 was not stored again");
        var thread = await client.Thread(alice, conversation).Ok();
        Assert.Equal(["m1", "m2", "m3"], thread.Texts());
        Assert.Equal([1L, 2, 3], thread.Seqs());
        Assert.Equal(m3.Message.ClientMessageId, thread.GetProperty("messages")[2].GetProperty("clientMessageId").GetString());
        var bobClient = fixture.Node.ClientFor(bob);
        await Eventually.AssertAsync(async () =>
                (await bobClient.Thread(bob, conversation)).IsSuccessStatusCode
                && (await bobClient.Thread(bob, conversation).Ok()).Texts().SequenceEqual(["m1", "m2", "m3"]),
            TimeSpan.FromSeconds(20), "bob did not get m1, m2, m3 in order");
    }

    // One statement of several rows, as the journal writes a batch: of one mailbox, of several, with a claim.

    [Fact]
    public async Task Should_refuse_a_stale_writers_batch_of_one_mailbox()
    {
        await using var connection = await OpenAsync();
        await InsertAsync(connection, 1, OldNode, claim: true);
        await InsertAsync(connection, 2, NewNode, claim: true);

        var refused = await Assert.ThrowsAsync<PostgresException>(() => InsertRowsAsync(connection, (_mailbox, 3, OldNode, false), (_mailbox, 4, OldNode, false)));
        Assert.Equal("MF002", refused.SqlState);
        Assert.Contains(OldNode, refused.MessageText);
        // One stale row among the writer's own is enough, wherever it stands in the statement.
        refused = await Assert.ThrowsAsync<PostgresException>(() => InsertRowsAsync(connection, (_mailbox, 3, NewNode, false), (_mailbox, 4, OldNode, false)));
        Assert.Equal("MF002", refused.SqlState);
        refused = await Assert.ThrowsAsync<PostgresException>(() => InsertRowsAsync(connection, (_mailbox, 3, OldNode, false), (_mailbox, 4, NewNode, false)));
        Assert.Equal("MF002", refused.SqlState);

        await InsertRowsAsync(connection, (_mailbox, 3, NewNode, false), (_mailbox, 4, NewNode, false));
        Assert.Equal([OldNode, NewNode, NewNode, NewNode], await WritersAsync(connection));
    }

    [Fact]
    public async Task Should_refuse_a_batch_of_several_mailboxes_with_one_stale_write_in_it()
    {
        var other = $"{_mailbox}-other";
        await using var connection = await OpenAsync();
        await InsertRowsAsync(connection, (_mailbox, 1, OldNode, true), (other, 1, NewNode, true));
        await InsertAsync(connection, 2, NewNode, claim: true);

        var refused = await Assert.ThrowsAsync<PostgresException>(() => InsertRowsAsync(connection, (other, 2, NewNode, false), (_mailbox, 3, OldNode, false)));

        Assert.Equal("MF002", refused.SqlState);
        await InsertRowsAsync(connection, (other, 2, NewNode, false), (_mailbox, 3, NewNode, false));
        Assert.Equal([OldNode, NewNode, NewNode], await WritersAsync(connection));
    }

    [Fact]
    public async Task Should_take_a_claim_and_its_writers_events_in_one_statement_and_refuse_the_old_writers_in_it()
    {
        await using var connection = await OpenAsync();
        await InsertRowsAsync(connection, (_mailbox, 1, OldNode, true), (_mailbox, 2, OldNode, false));

        // The old writer's event in the statement that carries the new writer's claim, above it: the claim sees another
        // writer's newer event (its own statement's), as v1 did.
        var refused = await Assert.ThrowsAsync<PostgresException>(() => InsertRowsAsync(connection, (_mailbox, 3, NewNode, true), (_mailbox, 4, OldNode, false)));
        Assert.Equal("MF001", refused.SqlState);
        // Below it: the claim is taken, and then the event is not its writer's.
        refused = await Assert.ThrowsAsync<PostgresException>(() => InsertRowsAsync(connection, (_mailbox, 3, OldNode, false), (_mailbox, 4, NewNode, true)));
        Assert.Equal("MF002", refused.SqlState);

        await InsertRowsAsync(connection, (_mailbox, 3, NewNode, true), (_mailbox, 4, NewNode, false));
        await Assert.ThrowsAsync<PostgresException>(() => InsertRowsAsync(connection, (_mailbox, 5, OldNode, false), (_mailbox, 6, OldNode, false)));
        Assert.Equal([OldNode, OldNode, NewNode, NewNode], await WritersAsync(connection));
    }

    [Fact]
    public async Task Should_make_a_one_mailbox_write_wait_for_a_claim_in_flight_then_refuse_it()
    {
        // The new writer's claim is open in a transaction when the old writer writes: the write waits for the lock,
        // and then reads the claim (a snapshot taken after the lock was granted) and is refused.
        await using var connection = await OpenAsync();
        await InsertAsync(connection, 1, OldNode, claim: true);
        await using var successor = await OpenAsync();
        await using var transaction = await successor.BeginTransactionAsync(Ct);
        await InsertAsync(successor, 2, NewNode, claim: true, transaction: transaction);

        var write = InsertRowsAsync(connection, (_mailbox, 3, OldNode, false), (_mailbox, 4, OldNode, false));
        await WaitUntilWaitingOnAdvisoryLockAsync();
        Assert.False(write.IsCompleted);
        await transaction.CommitAsync(Ct);

        var refused = await Assert.ThrowsAsync<PostgresException>(() => write);
        Assert.Equal("MF002", refused.SqlState);
        Assert.Equal([OldNode, NewNode], await WritersAsync(connection));
    }

    /// <summary>Rows in one INSERT statement, as the journal writes a batch.</summary>
    private static async Task InsertRowsAsync(NpgsqlConnection connection, params (string Mailbox, long Seq, string Writer, bool Claim)[] rows)
    {
        var values = string.Join(", ", rows.Select((_, i) => $"(0, false, @p{i}, @s{i}, '\\x00'::bytea, @m{i}, 771, @w{i})"));
        await using var command = new NpgsqlCommand(
            $"INSERT INTO journal (created, deleted, persistence_id, sequence_number, message, manifest, identifier, writer_uuid) VALUES {values}",
            connection);
        for (var i = 0; i < rows.Length; i++)
        {
            command.Parameters.AddWithValue($"p{i}", rows[i].Mailbox);
            command.Parameters.AddWithValue($"s{i}", rows[i].Seq);
            command.Parameters.AddWithValue($"m{i}", rows[i].Claim ? Messages.Serialization.MessagingSerializer.WriterClaimedManifest : "MSt");
            command.Parameters.AddWithValue($"w{i}", rows[i].Writer);
        }
        await command.ExecuteNonQueryAsync();
    }

    private async Task InsertEventAsync(NpgsqlConnection connection, string persistenceId, long seq, string writer, IMailboxEvent evt)
    {
        var serializer = (Akka.Serialization.SerializerWithStringManifest)fixture.Node.Services.GetRequiredService<ActorSystem>()
            .Serialization.FindSerializerFor(evt);
        await using var command = new NpgsqlCommand(
            """
            INSERT INTO journal (created, deleted, persistence_id, sequence_number, message, manifest, identifier, writer_uuid)
            VALUES (0, false, @p, @s, @message, @m, @id, @w)
            """, connection);
        command.Parameters.AddWithValue("p", persistenceId);
        command.Parameters.AddWithValue("s", seq);
        command.Parameters.AddWithValue("message", serializer.ToBinary(evt));
        command.Parameters.AddWithValue("m", serializer.Manifest(evt));
        command.Parameters.AddWithValue("id", serializer.Identifier);
        command.Parameters.AddWithValue("w", writer);
        await command.ExecuteNonQueryAsync();
    }

    private async Task<NpgsqlConnection> OpenAsync()
    {
        var connection = new NpgsqlConnection(fixture.ConnectionString);
        await connection.OpenAsync();
        return connection;
    }

    /// <summary>A journal row as Akka.Persistence.Sql writes it (the payload does not matter to the fence).</summary>
    private async Task InsertAsync(NpgsqlConnection connection, long seq, string writer, bool claim = false,
        NpgsqlTransaction? transaction = null)
    {
        await using var command = new NpgsqlCommand(
            """
            INSERT INTO journal (created, deleted, persistence_id, sequence_number, message, manifest, identifier, writer_uuid)
            VALUES (0, false, @p, @s, '\x00'::bytea, @m, 771, @w)
            """, connection, transaction);
        command.Parameters.AddWithValue("p", _mailbox);
        command.Parameters.AddWithValue("s", seq);
        command.Parameters.AddWithValue("m", claim ? Messages.Serialization.MessagingSerializer.WriterClaimedManifest : "MSt");
        command.Parameters.AddWithValue("w", writer);
        await command.ExecuteNonQueryAsync();
    }

    private async Task<string[]> WritersAsync(NpgsqlConnection connection)
    {
        await using var command = new NpgsqlCommand(
            "SELECT writer_uuid FROM journal WHERE persistence_id = @p ORDER BY sequence_number", connection);
        command.Parameters.AddWithValue("p", _mailbox);
        var writers = new List<string>();
        await using var reader = await command.ExecuteReaderAsync();
        while (await reader.ReadAsync())
            writers.Add(reader.GetString(0));
        return [.. writers];
    }

    private async Task WaitUntilWaitingOnAdvisoryLockAsync()
    {
        await using var observer = await OpenAsync();
        await Eventually.AssertAsync(async () =>
        {
            await using var command = new NpgsqlCommand(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock' AND wait_event = 'advisory' AND query LIKE '%' || @p || '%'",
                observer);
            command.Parameters.AddWithValue("p", "INSERT INTO journal");
            return (long)(await command.ExecuteScalarAsync())! > 0;
        }, TimeSpan.FromSeconds(20), "the claim did not wait for the write in flight");
    }
}
