using Akka.Actor;
using Akka.Cluster;
using Akka.Cluster.Hosting;
using Akka.Hosting;
using Akka.Persistence;
using Akka.Remote.Hosting;
using Messaging.Actors.Delivery;
using Messaging.Actors.Groups;
using Messaging.Messages;
using Messaging.Messages.Serialization;

namespace Messaging.Actors.Tests;

/// <summary>The hash that places an entity in a partition, pinned: changing it would strand every entity's history.</summary>
public sealed class JournalPartitionOfSpecs
{
    [Theory]
    // The first byte of SHA-256 of the UTF-8 (Python: hashlib.sha256(id.encode()).digest()[0]).
    [InlineData("mailbox-alice", 179)]
    [InlineData("mailbox-bob", 201)]
    [InlineData("mailbox-carol", 139)]
    [InlineData("group-grp~bwlwbrrlu7l2rtgfgt3jasgmit", 234)]
    [InlineData("mailbox-zoë", 51)]
    [InlineData("mailbox-用户", 17)]
    [InlineData("", 227)]
    public void Should_place_a_persistence_id_in_the_partition_it_has_always_had(string persistenceId, int partition) =>
        Assert.Equal(partition, JournalPartitions.PartitionOf(persistenceId));

    [Fact]
    public void Should_spread_entities_over_every_partition()
    {
        var counts = new int[JournalPartitions.Count];
        for (var i = 0; i < 100_000; i++)
            counts[JournalPartitions.PartitionOf(MailboxActor.PersistenceIdFor($"user{i}"))]++;

        // 390 expected per partition; a hash that ignored part of the id or lost bits would leave some nearly empty.
        Assert.All(counts, count => Assert.InRange(count, 290, 490));
    }

    [Fact]
    public void Should_give_each_entity_the_plugins_of_its_partition()
    {
        var a = new PersistencePlugins("journal-a", "snapshots-a");
        var b = new PersistencePlugins("journal-b", "snapshots-b");
        var partitions = new JournalPartitions([.. Enumerable.Range(0, JournalPartitions.Count).Select(p => p < 180 ? a : b)]);

        Assert.Equal(a, partitions.For("mailbox-alice")); // 179
        Assert.Equal(b, partitions.For("mailbox-bob"));   // 201
        Assert.Equal([a, b], partitions.Plugins);
        Assert.Equal([a], JournalPartitions.AllOn(a).Plugins);
        Assert.Throws<ArgumentException>(() => new JournalPartitions([a, b]));
    }
}

/// <summary>
/// Mailboxes and groups behind the production sharding extensions with two journals (and two snapshot stores) as two
/// database servers would give them: each entity's events and snapshots go to its partition's, never the other.
/// </summary>
public sealed class PartitionedJournalSpecs(ITestOutputHelper output) : Akka.Hosting.TestKit.TestKit(nameof(PartitionedJournalSpecs), output)
{
    private static readonly TimeSpan Ask = TimeSpan.FromSeconds(10);
    private static readonly PersistencePlugins A = Plugins("a");
    private static readonly PersistencePlugins B = Plugins("b");

    // Uneven, as a map is while partitions move: 0-99 on a, 100-255 on b.
    private static readonly JournalPartitions Partitions =
        new([.. Enumerable.Range(0, JournalPartitions.Count).Select(p => p < 100 ? A : B)]);

    private static readonly MailboxSettings Settings = new() { SnapshotEvery = 2, RedeliveryInterval = TimeSpan.FromMilliseconds(200) };

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static PersistencePlugins Plugins(string server) =>
        new($"akka.persistence.journal.mem-{server}", $"akka.persistence.snapshot-store.mem-{server}");

    private static string Hocon(PersistencePlugins plugins) => $$"""
        {{plugins.Journal}} {
            class = "Akka.Persistence.Journal.MemoryJournal, Akka.Persistence"
            plugin-dispatcher = "akka.actor.default-dispatcher"
            replay-filter.mode = off
        }
        {{plugins.SnapshotStore}} {
            class = "Akka.Persistence.Snapshot.MemorySnapshotStore, Akka.Persistence"
            plugin-dispatcher = "akka.actor.default-dispatcher"
        }
        """;

    protected override void ConfigureAkka(AkkaConfigurationBuilder builder, IServiceProvider provider)
    {
        builder
            .AddHocon(Hocon(A) + Hocon(B), HoconAddMode.Prepend)
            .WithMessagingSerialization()
            .WithRemoting("127.0.0.1", 0)
            .WithClustering()
            .WithMailboxShards(Settings, shardCount: 10, partitions: Partitions)
            .WithGroupShards(Settings, new GroupLimits(), shardCount: 10, partitions: Partitions)
            .WithDeliveryIndex(Settings);
    }

    protected override async Task BeforeTestStart()
    {
        await base.BeforeTestStart();
        var cluster = Cluster.Get(Sys);
        await cluster.JoinAsync(cluster.SelfAddress);
    }

    /// <summary>The first id the pattern makes whose persistence id is on <paramref name="server"/>'s plugins.</summary>
    private static string On(PersistencePlugins server, Func<int, string> id, Func<string, string> persistenceId) =>
        Enumerable.Range(0, 1000).Select(id).First(candidate => Partitions.For(persistenceId(candidate)) == server);

    private async Task<IReadOnlyList<object>> EventsAsync(PersistencePlugins server, string persistenceId)
    {
        var probe = CreateTestProbe();
        Akka.Persistence.Persistence.Instance.Apply(Sys).JournalFor(server.Journal)
            .Tell(new ReplayMessages(1, long.MaxValue, long.MaxValue, persistenceId, probe.Ref));
        var events = new List<object>();
        while (await probe.ReceiveOneAsync(Ask, Ct) is ReplayedMessage replayed)
            events.Add(replayed.Persistent.Payload);
        return events;
    }

    private async Task<bool> HasSnapshotAsync(PersistencePlugins server, string persistenceId)
    {
        var store = Akka.Persistence.Persistence.Instance.Apply(Sys).SnapshotStoreFor(server.SnapshotStore);
        var result = await store.Ask<LoadSnapshotResult>(
            new LoadSnapshot(persistenceId, SnapshotSelectionCriteria.Latest, long.MaxValue), Ask, Ct);
        return result.Snapshot is not null;
    }

    [Fact]
    public async Task Should_write_each_mailbox_and_group_to_the_journal_and_snapshot_store_of_its_partition()
    {
        var run = Guid.NewGuid().ToString("N")[..6];
        var alice = On(A, i => $"alice{i}-{run}", MailboxActor.PersistenceIdFor);
        var bob = On(B, i => $"bob{i}-{run}", MailboxActor.PersistenceIdFor);
        var mailboxes = ActorRegistry.Get<MailboxRegion>();
        var groups = ActorRegistry.Get<GroupRegion>();

        for (var i = 0; i < 3; i++)
            Assert.Equal(SendOutcome.Sent, (await mailboxes.Ask<SendResult>(new SendMessage(alice, [bob], $"m{i}", $"c{i}"), Ask, Ct)).Outcome);
        // A group on the server its creator is not on (bob's), so a group is placed by its own id.
        var request = On(A, i => $"r{i}", r => GroupActor.PersistenceIdFor(Ids.GroupFor(bob, r)));
        var group = Ids.GroupFor(bob, request);
        await groups.Ask<object>(new CreateGroup(group, bob, "g", [alice], request), Ask, Ct);
        for (var i = 0; i < 3; i++)
            Assert.Equal(SendOutcome.Sent, (await groups.Ask<SendResult>(new PostToGroup(group, bob, $"g{i}", $"gc{i}"), Ask, Ct)).Outcome);

        foreach (var (persistenceId, home, other) in new[]
                 {
                     (MailboxActor.PersistenceIdFor(alice), A, B),
                     (MailboxActor.PersistenceIdFor(bob), B, A),
                     (GroupActor.PersistenceIdFor(group), A, B),
                 })
        {
            await AwaitAssertAsync(async () =>
            {
                Assert.NotEmpty(await EventsAsync(home, persistenceId));
                Assert.True(await HasSnapshotAsync(home, persistenceId), $"no snapshot of {persistenceId} on {home.SnapshotStore}");
            }, Ask, cancellationToken: Ct);
            Assert.Empty(await EventsAsync(other, persistenceId));
            Assert.False(await HasSnapshotAsync(other, persistenceId), $"a snapshot of {persistenceId} on {other.SnapshotStore}");
        }
        Assert.Contains(await EventsAsync(A, GroupActor.PersistenceIdFor(group)), e => e is GroupPosted);
    }
}
