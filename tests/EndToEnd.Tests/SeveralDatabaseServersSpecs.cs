using System.Net;
using System.Net.Http.Json;
using Messaging.Actors;
using Messaging.Actors.Groups;
using Messaging.Messages;
using Npgsql;

namespace Messaging.EndToEnd.Tests;

/// <summary>A node with its journal on two PostgreSQL servers of its own: partitions 0-127 on a, 128-255 on b.</summary>
public class TwoServersNodeFixture : IAsyncLifetime
{
    public const string Map = "0-127=a,128-255=b";

    public PostgresServer A { get; private set; } = null!;
    public PostgresServer B { get; private set; } = null!;
    public TestNode Node { get; private set; } = null!;

    /// <summary>The server an entity's partition is on, worked out as an operator would: from the map.</summary>
    public PostgresServer ServerOf(string persistenceId) => JournalPartitions.PartitionOf(persistenceId) < 128 ? A : B;

    public async ValueTask InitializeAsync()
    {
        var servers = await Task.WhenAll(PostgresServer.StartAsync(), PostgresServer.StartAsync());
        (A, B) = (servers[0], servers[1]);
        Node = await TestNode.StartAsync(
        [
            "--Messaging:Persistence:Provider=PostgreSql",
            $"--Messaging:Persistence:Servers:a:ConnectionString={A.ConnectionString}",
            $"--Messaging:Persistence:Servers:b:ConnectionString={B.ConnectionString}",
            $"--Messaging:Persistence:Partitions={Map}",
            "--Messaging:Http:AskTimeout=00:00:03",
            "--Messaging:Mailbox:JournalReadTimeout=00:00:02",
            "--Messaging:Mailbox:DeliveryWait=00:00:01",
            "--Messaging:Mailbox:SnapshotEvery=3",
            .. MoreArguments,
        ]);
    }

    /// <summary>More node arguments, for a fixture of another spec that needs the two servers.</summary>
    protected virtual string[] MoreArguments => [];

    public async ValueTask DisposeAsync()
    {
        await Node.DisposeAsync();
        await A.DisposeAsync();
        await B.DisposeAsync();
    }
}

/// <summary>
/// The journal over two database servers, through real HTTP: each user's and group's events and snapshots land on the
/// server of their partition and nowhere else, each server fences its writers, and while one server is down only the
/// users whose partitions it holds get 503s; the node stays ready and the others are served as before.
/// </summary>
public sealed class SeveralDatabaseServersSpecs(TwoServersNodeFixture fixture) : IClassFixture<TwoServersNodeFixture>
{
    private static readonly TimeSpan Recovery = TimeSpan.FromSeconds(60);

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    /// <summary>A user id no other spec uses, whose mailbox is on <paramref name="server"/>.</summary>
    private string UserOn(PostgresServer server, string name)
    {
        while (true)
        {
            var user = Users.Unique(name);
            if (fixture.ServerOf(MailboxActor.PersistenceIdFor(user)) == server)
                return user;
        }
    }

    [Fact]
    public async Task Should_keep_each_mailbox_and_group_on_the_server_of_its_partition_and_nowhere_else()
    {
        var (alice, bob) = (UserOn(fixture.A, "alice"), UserOn(fixture.B, "bob"));
        for (var i = 0; i < 4; i++)
            Assert.Equal("Sent", (await fixture.Node.ClientFor(alice).Send(bob, $"m{i}").Ok()).GetProperty("sendStatus").GetString());
        await fixture.Node.ClientFor(bob).Send(alice, "reply").Ok();
        var created = await fixture.Node.ClientFor(bob).PostAsJsonAsync("/v1/groups",
            new { name = "g", memberIds = new[] { alice }, clientRequestId = Guid.NewGuid().ToString() }, Ct);
        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        var group = (await created.Json()).GetProperty("conversationId").GetString()!;
        for (var i = 0; i < 3; i++)
            await fixture.Node.ClientFor(alice).Send(new { conversationId = group, message = $"g{i}", clientMessageId = $"g{i}" }).Ok();

        string[] entities = [MailboxActor.PersistenceIdFor(alice), MailboxActor.PersistenceIdFor(bob), GroupActor.PersistenceIdFor(group)];
        Assert.Contains(fixture.A, entities.Select(fixture.ServerOf));
        Assert.Contains(fixture.B, entities.Select(fixture.ServerOf));
        // Each entity's events, snapshot (every 3 events) and writer claim, on its server (a snapshot may still be on its way).
        await Eventually.AssertAsync(async () =>
        {
            foreach (var entity in entities)
            {
                var rows = await RowsAsync(fixture.ServerOf(entity));
                if (!new[] { "journal", "snapshot", "claim" }.All(table => rows.Any(r => r.Table == table && r.PersistenceId == entity)))
                    return false;
            }
            return true;
        }, TimeSpan.FromSeconds(10), "an entity's journal, snapshot or claim is missing on its server");

        foreach (var (server, name) in new[] { (fixture.A, "a"), (fixture.B, "b") })
        {
            var rows = await RowsAsync(server);
            // Partitions computed by PostgreSQL itself from the stored ids: the node's hash, and the map's server.
            // What is no mailbox or group (a delivery index, sharding's remembered entities) is on a, which holds partition 0.
            Assert.All(rows, row => Assert.True(
                (IsEntity(row.PersistenceId) ? row.Partition < 128 ? "a" : "b" : "a") == name,
                $"{row.Table} row of {row.PersistenceId} (partition {row.Partition}) on server {name}"));
            foreach (var entity in entities.Where(e => fixture.ServerOf(e) == server))
                Assert.Equal(JournalPartitions.PartitionOf(entity), rows.First(r => r.PersistenceId == entity).Partition);
            Assert.Single(await QueryAsync(server, $"SELECT 'trigger', tgname, 0 FROM pg_trigger WHERE tgname = '{Node.JournalFence.TriggerName}'"));
        }
    }

    private static bool IsEntity(string persistenceId) =>
        persistenceId.StartsWith("mailbox-", StringComparison.Ordinal) || persistenceId.StartsWith("group-", StringComparison.Ordinal);

    /// <summary>Every journal, snapshot and claim row's persistence id and partition (as PostgreSQL computes it) on a server.</summary>
    private static async Task<List<(string Table, string PersistenceId, int Partition)>> RowsAsync(PostgresServer server)
    {
        var tables = new[] { ("journal", "journal"), ("snapshot", "snapshot"), ("claim", "journal_writer") };
        var present = new List<string>();
        foreach (var (label, table) in tables)
            if ((await QueryAsync(server, $"SELECT '{label}', '', 0 WHERE to_regclass('{table}') IS NOT NULL")).Count == 1)
                present.Add($"SELECT '{label}', persistence_id, get_byte(sha256(convert_to(persistence_id, 'UTF8')), 0) FROM {table}");
        return present.Count == 0 ? [] : await QueryAsync(server, string.Join(" UNION ALL ", present));
    }

    [Fact]
    public async Task Should_serve_every_user_whose_partition_is_on_the_server_that_is_up_while_the_other_is_down()
    {
        var (alice, carol, bob) = (UserOn(fixture.A, "alice"), UserOn(fixture.A, "carol"), UserOn(fixture.B, "bob"));
        await fixture.Node.ClientFor(bob).Send(alice, "before").Ok(); // bob's mailbox is up before its server goes

        await fixture.B.StopAsync();
        try
        {
            // alice and carol are on a: served as if nothing happened.
            Assert.Equal("Sent", (await fixture.Node.ClientFor(alice).Send(carol, "a to a").Ok()).GetProperty("sendStatus").GetString());
            // alice's copy of a message to bob is stored; bob's waits for b (Accepted, delivered later).
            Assert.Equal("Accepted", (await fixture.Node.ClientFor(alice).Send(bob, "a to b", "a-to-b").Ok()).GetProperty("sendStatus").GetString());
            // bob is on b: 503, to retry.
            var refused = await fixture.Node.ClientFor(bob).Send(alice, "b to a", "b-to-a");
            await refused.AssertProblem(HttpStatusCode.ServiceUnavailable, "Unavailable");
            // The node stays ready: it serves every partition on a.
            var ready = await fixture.Node.Anonymous.GetAsync("/healthz/ready", Ct);
            Assert.Equal(HttpStatusCode.OK, ready.StatusCode);
            Assert.Equal("Degraded", await ready.Content.ReadAsStringAsync(Ct));
        }
        finally
        {
            await fixture.B.StartAgainAsync();
        }

        await Eventually.AssertAsync(async () =>
            (await fixture.Node.ClientFor(bob).Send(alice, "b to a", "b-to-a")).StatusCode == HttpStatusCode.OK,
            Recovery, "bob's retry was never acknowledged once b was back");
        // Both copies hold each message once (bob's own retry and alice's redelivered copy may land in either order).
        string[] all = ["a to b", "b to a", "before"];
        await Eventually.AssertAsync(async () =>
            await fixture.Node.ClientFor(bob).Thread(bob, Ids.ConversationFor(alice, bob)) is { StatusCode: HttpStatusCode.OK } page
            && (await Task.FromResult(page).Ok()).Texts().Order().SequenceEqual(all),
            Recovery, "bob's copy of the conversation never held before, a to b and b to a once each");
        Assert.Equal(all, (await fixture.Node.ClientFor(alice).Thread(alice, Ids.ConversationFor(alice, bob)).Ok()).Texts().Order());
    }

    private static async Task<List<(string Table, string PersistenceId, int Partition)>> QueryAsync(PostgresServer server, string sql)
    {
        await using var connection = new NpgsqlConnection(server.ConnectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(sql, connection);
        await using var reader = await command.ExecuteReaderAsync();
        var rows = new List<(string, string, int)>();
        while (await reader.ReadAsync())
            rows.Add((reader.GetString(0), reader.GetString(1), Convert.ToInt32(reader.GetValue(2))));
        return rows;
    }
}
