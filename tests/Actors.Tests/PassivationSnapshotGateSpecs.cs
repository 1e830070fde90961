using Akka.Actor;
using Akka.Persistence;
using Akka.Persistence.TestKit;
using Messaging.Messages;

namespace Messaging.Actors.Tests;

/// <summary>Seven mailboxes with enough events for a snapshot each, and a store that can hold their saves.</summary>
public abstract class SnapshotGateTestKit(string name, ITestOutputHelper output, TimeSpan passivateIdleAfter)
    : ShardedMailboxTestKit(name, output, new MailboxSettings
    {
        PassivateIdleAfter = passivateIdleAfter,
        SnapshotEvery = 1000,
        SnapshotOnPassivationAfter = 5,
        SnapshotOnPassivationTimeout = TimeSpan.FromSeconds(3),
        MaxPassivationSnapshotsPerNode = 2,
    })
{
    /// <summary>Holds each save of the watched mailboxes for a while, counting how many are held at once.</summary>
    internal sealed class HeldSaves(IReadOnlySet<string> watched, TimeSpan hold, bool thenFail) : ISnapshotStoreInterceptor
    {
        private readonly object _lock = new();
        private int _now;

        public int Max { get; private set; }

        public int Count { get; private set; }

        /// <summary>When each save reached the store, in order.</summary>
        public List<DateTime> Started { get; } = [];

        /// <summary>Whose save each was, in the same order.</summary>
        public List<string> Pids { get; } = [];

        public async Task InterceptAsync(string persistenceId, SnapshotSelectionCriteria criteria)
        {
            if (!watched.Contains(persistenceId))
                return;
            lock (_lock)
            {
                Count++;
                Started.Add(DateTime.UtcNow);
                Pids.Add(persistenceId);
                Max = Math.Max(Max, ++_now);
            }
            try
            {
                await Task.Delay(hold);
            }
            finally
            {
                lock (_lock)
                    _now--;
            }
            if (thenFail)
                throw new InvalidOperationException("the snapshot store gave up");
        }
    }

    protected string Bob => $"bob-{Run}";

    protected string[] Senders => [.. Enumerable.Range(0, 6).Select(i => $"u{i}-{Run}")];

    /// <summary>The six senders and their one recipient: seven mailboxes with enough events to take a snapshot.</summary>
    protected string[] Users => [.. Senders, Bob];

    /// <summary>Six senders write 6 messages each to one recipient, all at once.</summary>
    protected async Task<Dictionary<string, List<SendResult>>> SendTogetherAsync()
    {
        var sent = Senders.ToDictionary(s => s, _ => new List<SendResult>());
        await Task.WhenAll(Senders.Select(async s =>
        {
            for (var i = 1; i <= 6; i++)
                sent[s].Add(await Region.Ask<SendResult>(new SendMessage(s, [Bob], $"{s} m{i}", $"c{i}"), Ask, Ct));
        }));
        Assert.All(sent.Values.SelectMany(r => r), r => Assert.Equal(SendOutcome.Sent, r.Outcome));
        return sent;
    }

    protected async Task WaitUntilAllStoppedAsync(string[] users, TimeSpan within)
    {
        var watched = 0;
        foreach (var user in users)
        {
            try
            {
                Watch(await EntityAsync(user));
                watched++;
            }
            catch (ActorNotFoundException)
            {
                // Stopped already: a sender that finished early can pass its idle timeout before the others are done.
            }
        }
        var deadline = DateTime.UtcNow + within;
        for (var i = 0; i < watched; i++)
            ExpectMsg<Terminated>(Max(deadline - DateTime.UtcNow), cancellationToken: Ct);
    }

    private static TimeSpan Max(TimeSpan left) => left < TimeSpan.FromMilliseconds(100) ? TimeSpan.FromMilliseconds(100) : left;

    protected async Task<SelectedSnapshot?> LatestSnapshotAsync(string userId) =>
        (await SnapshotsActorRef.Ask<LoadSnapshotResult>(
            new LoadSnapshot(MailboxActor.PersistenceIdFor(userId), SnapshotSelectionCriteria.Latest, long.MaxValue), Ask, Ct)).Snapshot;

    protected async Task AssertThreadsAsync(Dictionary<string, List<SendResult>> sent)
    {
        foreach (var (sender, results) in sent)
        {
            var expected = Enumerable.Range(1, 6).Select(i => $"{sender} m{i}").ToArray();
            foreach (var owner in new[] { sender, Bob })
            {
                var page = Assert.IsType<ThreadPage>(await Region.Ask<object>(
                    new GetThread(owner, results[0].ConversationId, 0, 50, null, null), Ask, Ct));
                Assert.Equal(expected, page.Messages.Select(m => m.Message.Text));
            }
        }
    }

}

/// <summary>
/// Mailboxes that go idle together take their snapshots a few at a time (<see cref="SnapshotGate"/>) while they still
/// serve, however long the line, then passivate.
/// </summary>
public sealed class PassivationSnapshotGateSpecs(ITestOutputHelper output)
    : SnapshotGateTestKit(nameof(PassivationSnapshotGateSpecs), output, TimeSpan.FromSeconds(1))
{
    [Fact]
    public async Task Should_take_the_snapshots_of_mailboxes_that_passivate_together_a_few_at_a_time()
    {
        var held = new HeldSaves(Users.Select(MailboxActor.PersistenceIdFor).ToHashSet(), TimeSpan.FromMilliseconds(200), thenFail: false);
        Dictionary<string, List<SendResult>> sent = null!;

        await WithSnapshotSave(save => save.SetInterceptorAsync(held), async () =>
        {
            sent = await SendTogetherAsync();
            await WaitUntilAllStoppedAsync(Users, TimeSpan.FromSeconds(15));
        });

        // Seven snapshots of 200 ms each: two at a time, the last one's turn well within the 3 s timeout.
        Assert.Equal(7, held.Count);
        Assert.InRange(held.Max, 1, 2);
        foreach (var user in Users)
        {
            var snapshot = await LatestSnapshotAsync(user);
            Assert.NotNull(snapshot);
        }
        var gate = SnapshotGate.For(Sys);
        Assert.Equal((0, 0), (gate.Holding, gate.Waiting));
        await AssertThreadsAsync(sent);
    }

    [Fact]
    public async Task Should_wait_in_line_past_the_stop_timeout_while_it_serves_then_take_every_snapshot()
    {
        // Both turns held here for 5 s, past the 3 s a stop waits for its snapshot: idle mailboxes wait in line, still
        // serving, and take their snapshots once turns come. (As the shard's stop they would have given them up at 3 s,
        // with their messages held by the shard meanwhile.)
        var (sender, recipient) = ($"s-{Run}", $"r-{Run}");
        var held = new HeldSaves(new[] { sender, recipient }.Select(MailboxActor.PersistenceIdFor).ToHashSet(),
            TimeSpan.FromMilliseconds(100), thenFail: false);
        var gate = SnapshotGate.For(Sys);
        var (holderA, holderB) = (CreateTestProbe(), CreateTestProbe());
        Assert.True(gate.Enter(holderA, 2));
        Assert.True(gate.Enter(holderB, 2));

        await WithSnapshotSave(save => save.SetInterceptorAsync(held), async () =>
        {
            await SendThenWatchAsync(sender, recipient, 6);
            await AwaitConditionAsync(() => Task.FromResult(gate.Waiting == 2), Ask, TimeSpan.FromMilliseconds(5), cancellationToken: Ct);
            ExpectNoMsg(TimeSpan.FromSeconds(4), Ct); // past the stop's 3 s: neither stops
            // In line and answering: a read is served at once (not held for a stop), and calls that one's idling off.
            var page = Assert.IsType<ThreadPage>(await Region.Ask<object>(
                new GetThread(sender, Ids.ConversationFor(sender, recipient), 0, 50, null, null), TimeSpan.FromSeconds(1), Ct));
            Assert.Equal(6, page.Messages.Length);
            Assert.Equal(0, held.Count);
            gate.Leave(holderA);
            gate.Leave(holderB);
            ExpectMsg<Terminated>(TimeSpan.FromSeconds(8), cancellationToken: Ct);
            ExpectMsg<Terminated>(TimeSpan.FromSeconds(8), cancellationToken: Ct);
        });

        Assert.Equal(2, held.Count);
        foreach (var user in new[] { sender, recipient })
        {
            var snapshot = await LatestSnapshotAsync(user);
            Assert.NotNull(snapshot);
            Assert.Equal((await Region.Ask<MailboxStatus>(new GetMailboxStatus(user), Ask, Ct)).LastSequenceNr, snapshot.Metadata.SequenceNr);
        }
        Assert.Equal((0, 0), (gate.Holding, gate.Waiting));
    }

    [Fact]
    public async Task Should_let_stops_of_the_node_go_ahead_of_idle_mailboxes_in_line()
    {
        // Two idle mailboxes wait in line (both turns held here); then the node stops two others (as the memory governor
        // does). Those have a deadline and the shard holds their messages: they take the next turns, then the idle ones.
        var (idleA, idleB, stopC, stopD) = ($"a-{Run}", $"b-{Run}", $"c-{Run}", $"d-{Run}");
        var users = new[] { idleA, idleB, stopC, stopD };
        var held = new HeldSaves(users.Select(MailboxActor.PersistenceIdFor).ToHashSet(), TimeSpan.FromMilliseconds(100), thenFail: false);
        var gate = SnapshotGate.For(Sys);
        var (holderA, holderB) = (CreateTestProbe(), CreateTestProbe());
        Assert.True(gate.Enter(holderA, 2));
        Assert.True(gate.Enter(holderB, 2));

        await WithSnapshotSave(save => save.SetInterceptorAsync(held), async () =>
        {
            await SendThenWatchAsync(idleA, idleB, 6);
            await AwaitConditionAsync(() => Task.FromResult(gate.Waiting == 2), Ask, TimeSpan.FromMilliseconds(5), cancellationToken: Ct);
            await SendThenWatchAsync(stopC, stopD, 6);
            await ShedAsync(stopC);
            await ShedAsync(stopD);
            await AwaitConditionAsync(() => Task.FromResult(gate.Waiting == 4), Ask, TimeSpan.FromMilliseconds(5), cancellationToken: Ct);
            gate.Leave(holderA);
            gate.Leave(holderB);
            for (var i = 0; i < 4; i++)
                ExpectMsg<Terminated>(TimeSpan.FromSeconds(8), cancellationToken: Ct);
        });

        Assert.Equal(4, held.Count);
        Assert.Equal(new[] { stopC, stopD }.Select(MailboxActor.PersistenceIdFor).ToHashSet(), held.Pids.Take(2).ToHashSet());
        Assert.Equal(new[] { idleA, idleB }.Select(MailboxActor.PersistenceIdFor).ToHashSet(), held.Pids.Skip(2).ToHashSet());
        Assert.Equal((0, 0), (gate.Holding, gate.Waiting));
    }
}

/// <summary>
/// Mailboxes the node stops (here as the memory governor does; a rebalance alike) take their snapshots a few at a time,
/// each within its stop's snapshot timeout, and one whose turn does not come in time stops without one.
/// </summary>
public sealed class StopSnapshotGateSpecs(ITestOutputHelper output)
    : SnapshotGateTestKit(nameof(StopSnapshotGateSpecs), output, TimeSpan.FromHours(1))
{
    [Fact]
    public async Task Should_give_the_turn_on_once_the_save_is_done_not_after_the_deletion_of_older_snapshots()
    {
        // Each deletion of older snapshots takes a second. Two turns held for save and deletion would take seven
        // snapshots ~4 s, past the 3 s timeout; turns given on after the save take them all, the deletions beside.
        var deletions = new HeldSaves(Users.Select(MailboxActor.PersistenceIdFor).ToHashSet(), TimeSpan.FromSeconds(1), thenFail: false);
        var saves = new HeldSaves(Users.Select(MailboxActor.PersistenceIdFor).ToHashSet(), TimeSpan.FromMilliseconds(50), thenFail: false);
        Dictionary<string, List<SendResult>> sent = null!;

        await WithSnapshotDelete(delete => delete.SetInterceptorAsync(deletions), () =>
            WithSnapshotSave(save => save.SetInterceptorAsync(saves), async () =>
            {
                sent = await SendTogetherAsync();
                await ShedAsync(Users);
                await WaitUntilAllStoppedAsync(Users, TimeSpan.FromSeconds(15));
            }));

        Assert.Equal(7, saves.Count);
        Assert.InRange(saves.Max, 1, 2);
        Output?.WriteLine($"at most {deletions.Max} deletions at once");
        foreach (var user in Users)
            Assert.NotNull(await LatestSnapshotAsync(user)); // none given up: these users had none before
        var gate = SnapshotGate.For(Sys);
        Assert.Equal((0, 0), (gate.Holding, gate.Waiting));
        await AssertThreadsAsync(sent);
    }

    [Fact]
    public async Task Should_stop_without_its_snapshot_when_its_turn_does_not_come_within_the_timeout()
    {
        // The store hangs for 30 s and then fails: the two that get a turn wait 3 s for it; when they give up, those in
        // line have less than a fifth of their 3 s left and pass the turns on unused. All stop within a few seconds
        // of passivating, not after 30.
        var held = new HeldSaves(Users.Select(MailboxActor.PersistenceIdFor).ToHashSet(), TimeSpan.FromSeconds(30), thenFail: true);
        Dictionary<string, List<SendResult>> sent = null!;
        var givenUpBefore = MessagingMetrics.StopSnapshotsGivenUpCount;

        await WithSnapshotSave(save => save.SetInterceptorAsync(held), async () =>
        {
            sent = await SendTogetherAsync();
            await ShedAsync(Users);
            await WaitUntilAllStoppedAsync(Users, TimeSpan.FromSeconds(12));
        });

        // While the two holders waited for the store, nobody else sent it a save. (After they gave up, their saves
        // still hang in the store while later stops get turns: the gate bounds turns, not a store that does not
        // answer; docs/architecture.md.)
        Assert.True(held.Count >= 2);
        Assert.True(held.Started.Count(t => t < held.Started[0] + TimeSpan.FromSeconds(2.5)) <= 2,
            string.Join(", ", held.Started.Select(t => $"{(t - held.Started[0]).TotalMilliseconds:0} ms")));
        // Each of the seven gave its snapshot up at the timeout, waiting for a turn or for the store (other tests can
        // only add to the process-wide count).
        Assert.True(MessagingMetrics.StopSnapshotsGivenUpCount - givenUpBefore >= 7);
        // Every turn and place in line given back (mailboxes woken again meanwhile by their deliveries' confirmations
        // are live, not in line).
        var gate = SnapshotGate.For(Sys);
        await AwaitAssertAsync(() => Assert.Equal((0, 0), (gate.Holding, gate.Waiting)), TimeSpan.FromSeconds(15),
            cancellationToken: Ct);
        await AssertThreadsAsync(sent);
    }
}

/// <summary>
/// A turn that comes with less than a fifth of the stop's snapshot timeout left is passed on unused: with a store that
/// hangs, each mailbox in line would otherwise get a turn just before it gives up (as the holders before it give
/// theirs up) and send the store a save it cannot answer.
/// </summary>
public sealed class SnapshotTurnDeadlineSpecs(ITestOutputHelper output)
    : ShardedMailboxTestKit(nameof(SnapshotTurnDeadlineSpecs), output, new MailboxSettings
    {
        PassivateIdleAfter = TimeSpan.FromHours(1), // stopped as the memory governor does: ShedAsync
        SnapshotEvery = 1000,
        SnapshotOnPassivationAfter = 5,
        SnapshotOnPassivationTimeout = TimeSpan.FromSeconds(5),
        MaxPassivationSnapshotsPerNode = 2,
    })
{
    [Theory]
    [InlineData(1.0, true)] // 4 s of the 5 s left: the first in line takes its snapshot, then the second
    [InlineData(4.25, false)] // 0.75 s left, under a fifth: the first passes the turn to the second, which passes it on
    public async Task Should_use_a_turn_only_while_a_fifth_of_the_timeout_is_left(double turnAfterSeconds, bool saved)
    {
        var (sender, recipient) = ($"s-{Run}", $"r-{Run}");
        var held = new PassivationSnapshotGateSpecs.HeldSaves(
            new[] { sender, recipient }.Select(MailboxActor.PersistenceIdFor).ToHashSet(), TimeSpan.FromMilliseconds(100), thenFail: false);
        var gate = SnapshotGate.For(Sys);
        var (holderA, holderB) = (CreateTestProbe(), CreateTestProbe());
        Assert.True(gate.Enter(holderA, 2));
        Assert.True(gate.Enter(holderB, 2));
        var givenUpBefore = MessagingMetrics.StopSnapshotsGivenUpCount;

        await WithSnapshotSave(save => save.SetInterceptorAsync(held), async () =>
        {
            await SendThenWatchAsync(sender, recipient, 6);
            await ShedAsync(sender, recipient);
            // Both stop and wait in line behind the two turns held here.
            await AwaitConditionAsync(() => Task.FromResult(gate.Waiting == 2), Ask, TimeSpan.FromMilliseconds(5), cancellationToken: Ct);
            Assert.Equal(0, held.Count);
            await Task.Delay(TimeSpan.FromSeconds(turnAfterSeconds), Ct);
            gate.Leave(holderA); // one turn for both: the first in line, then the second
            ExpectMsg<Terminated>(TimeSpan.FromSeconds(5), cancellationToken: Ct);
            ExpectMsg<Terminated>(TimeSpan.FromSeconds(5), cancellationToken: Ct);
        });

        Assert.Equal(saved ? 2 : 0, held.Count);
        if (!saved)
            Assert.True(MessagingMetrics.StopSnapshotsGivenUpCount - givenUpBefore >= 2);
        Assert.Equal((1, 0), (gate.Holding, gate.Waiting)); // holderB's turn, and nobody in line
        gate.Leave(holderB);
        Assert.Equal((0, 0), (gate.Holding, gate.Waiting));
    }
}

/// <summary>The gate alone: at most the limit at once, first come first served, places given back.</summary>
public sealed class SnapshotGateSpecs(ITestOutputHelper output) : Akka.Hosting.TestKit.TestKit(nameof(SnapshotGateSpecs), output)
{
    protected override void ConfigureAkka(Akka.Hosting.AkkaConfigurationBuilder builder, IServiceProvider provider)
    {
    }

    [Fact]
    public void Should_give_turns_up_to_the_limit_then_in_order_of_arrival()
    {
        var gate = new SnapshotGate();
        var probes = Enumerable.Range(0, 5).Select(_ => CreateTestProbe()).ToArray();

        Assert.True(gate.Enter(probes[0], 2));
        Assert.True(gate.Enter(probes[1], 2));
        Assert.False(gate.Enter(probes[2], 2));
        Assert.False(gate.Enter(probes[3], 2));
        Assert.False(gate.Enter(probes[4], 2));
        Assert.True(gate.Enter(probes[0], 2)); // holding already
        Assert.Equal((2, 3), (gate.Holding, gate.Waiting));

        gate.Leave(probes[3]); // gives up its place in line: never gets a turn
        Assert.Equal((2, 2), (gate.Holding, gate.Waiting));
        gate.Leave(probes[1]);
        probes[2].ExpectMsg<SnapshotTurn>(cancellationToken: TestContext.Current.CancellationToken);
        gate.Leave(probes[0]);
        probes[4].ExpectMsg<SnapshotTurn>(cancellationToken: TestContext.Current.CancellationToken);
        Assert.Equal((2, 0), (gate.Holding, gate.Waiting));
        probes[3].ExpectNoMsg(TimeSpan.FromMilliseconds(100), TestContext.Current.CancellationToken);

        gate.Leave(probes[0]); // no longer holding: nothing changes
        Assert.Equal((2, 0), (gate.Holding, gate.Waiting));
        gate.Leave(probes[2]);
        gate.Leave(probes[4]);
        Assert.Equal((0, 0), (gate.Holding, gate.Waiting));
        Assert.True(gate.Enter(probes[3], 2));
    }

    [Fact]
    public void Should_give_turns_to_stops_with_a_deadline_before_idle_ones_and_move_an_idle_one_up_when_it_is_stopped()
    {
        var gate = new SnapshotGate();
        var (holder, idle1, idle2, stop1) = (CreateTestProbe(), CreateTestProbe(), CreateTestProbe(), CreateTestProbe());

        Assert.True(gate.Enter(holder, 1));
        Assert.False(gate.Enter(idle1, 1));
        Assert.False(gate.Enter(idle2, 1));
        Assert.False(gate.Enter(stop1, 1, urgent: true));
        Assert.False(gate.Enter(idle2, 1, urgent: true)); // idle2 is stopped meanwhile: behind stop1, ahead of idle1
        Assert.Equal((1, 3), (gate.Holding, gate.Waiting));
        Assert.True(gate.Holds(holder));
        Assert.False(gate.Holds(stop1));

        gate.Leave(holder);
        stop1.ExpectMsg<SnapshotTurn>(cancellationToken: TestContext.Current.CancellationToken);
        Assert.True(gate.Holds(stop1));
        gate.Leave(stop1);
        idle2.ExpectMsg<SnapshotTurn>(cancellationToken: TestContext.Current.CancellationToken);
        gate.Leave(idle2);
        idle1.ExpectMsg<SnapshotTurn>(cancellationToken: TestContext.Current.CancellationToken);
        gate.Leave(idle1);
        Assert.Equal((0, 0), (gate.Holding, gate.Waiting));
    }

    [Fact]
    public void Should_not_jump_the_line_when_a_turn_is_free_but_others_wait()
    {
        var gate = new SnapshotGate();
        var (a, b, c) = (CreateTestProbe(), CreateTestProbe(), CreateTestProbe());

        Assert.True(gate.Enter(a, 1));
        Assert.False(gate.Enter(b, 1));
        gate.Leave(a); // b's turn, told
        b.ExpectMsg<SnapshotTurn>(cancellationToken: TestContext.Current.CancellationToken);
        Assert.False(gate.Enter(c, 1));
        Assert.Equal((1, 1), (gate.Holding, gate.Waiting));
    }
}

/// <summary>Tests that read the process-wide metrics exactly: run alone, not beside other test classes.</summary>
[CollectionDefinition(nameof(ExactMetrics), DisableParallelization = true)]
public sealed class ExactMetrics;

/// <summary>
/// A stop whose snapshot is saved but whose deletion of the older snapshots does not answer in time stops at its
/// timeout like any other, and is not counted as a snapshot given up: the snapshot is there for the next wake.
/// </summary>
[Collection(nameof(ExactMetrics))]
public sealed class SavedSnapshotSlowDeletionSpecs(ITestOutputHelper output)
    : ShardedMailboxTestKit(nameof(SavedSnapshotSlowDeletionSpecs), output, new MailboxSettings
    {
        PassivateIdleAfter = TimeSpan.FromHours(1), // stopped as the memory governor does: ShedAsync
        SnapshotEvery = 1000,
        SnapshotOnPassivationAfter = 5,
        SnapshotOnPassivationTimeout = TimeSpan.FromSeconds(2),
        MaxPassivationSnapshotsPerNode = 2,
    })
{
    [Fact]
    public async Task Should_not_count_a_saved_snapshot_as_given_up_when_only_its_deletion_is_late()
    {
        var (sender, recipient) = ($"s-{Run}", $"r-{Run}");
        var users = new[] { sender, recipient };
        var deletions = new PassivationSnapshotGateSpecs.HeldSaves(
            users.Select(MailboxActor.PersistenceIdFor).ToHashSet(), TimeSpan.FromSeconds(8), thenFail: false);
        var givenUpBefore = MessagingMetrics.StopSnapshotsGivenUpCount;

        await WithSnapshotDelete(delete => delete.SetInterceptorAsync(deletions), async () =>
        {
            await SendThenWatchAsync(sender, recipient, 6);
            await ShedAsync(sender, recipient);
            // Both stop at their 2 s timeout, their deletions still held.
            ExpectMsg<Terminated>(TimeSpan.FromSeconds(6), cancellationToken: Ct);
            ExpectMsg<Terminated>(TimeSpan.FromSeconds(6), cancellationToken: Ct);
        });

        Assert.Equal(2, deletions.Count);
        foreach (var user in users)
        {
            var snapshot = await SnapshotsActorRef.Ask<LoadSnapshotResult>(
                new LoadSnapshot(MailboxActor.PersistenceIdFor(user), SnapshotSelectionCriteria.Latest, long.MaxValue), Ask, Ct);
            Assert.NotNull(snapshot.Snapshot);
        }
        Assert.Equal(givenUpBefore, MessagingMetrics.StopSnapshotsGivenUpCount);
    }
}
