using System.Collections.Immutable;
using Akka.Actor;
using Akka.Persistence;
using Messaging.Messages;

namespace Messaging.Actors.Tests;

/// <summary>
/// A mailbox that passivates with enough events since its last snapshot takes one first, so it wakes from a snapshot
/// and few events; a snapshot store that fails or hangs never keeps it from stopping.
/// </summary>
public sealed class PassivationSnapshotSpecs(ITestOutputHelper output)
    : ShardedMailboxTestKit(nameof(PassivationSnapshotSpecs), output, new MailboxSettings
    {
        PassivateIdleAfter = TimeSpan.FromSeconds(1),
        SnapshotEvery = 1000,
        SnapshotOnPassivationAfter = 5,
        SnapshotOnPassivationTimeout = TimeSpan.FromSeconds(1),
    })
{
    private async Task<LoadSnapshotResult> LatestSnapshotAsync(string userId) =>
        await SnapshotsActorRef.Ask<LoadSnapshotResult>(
            new LoadSnapshot(MailboxActor.PersistenceIdFor(userId), SnapshotSelectionCriteria.Latest, long.MaxValue), Ask, Ct);

    /// <summary>Sends <paramref name="count"/> messages and waits for the sender's mailbox to passivate.</summary>
    private async Task<List<SendResult>> SendThenPassivateAsync(string from, string to, int count, TimeSpan within)
    {
        var results = new List<SendResult>();
        for (var i = 1; i <= count; i++)
            results.Add(await Region.Ask<SendResult>(new SendMessage(from, [to], $"m{i}", $"c{i}"), Ask, Ct));
        Assert.All(results, r => Assert.Equal(SendOutcome.Sent, r.Outcome));
        var entity = await EntityAsync(from);
        Watch(entity);
        ExpectTerminated(entity, within, cancellationToken: Ct);
        return results;
    }

    private async Task AssertThreadAsync(string userId, SendResult first, int count)
    {
        var page = Assert.IsType<ThreadPage>(await Region.Ask<object>(new GetThread(userId, first.ConversationId, 0, 50, null, null), Ask, Ct));
        Assert.Equal(Enumerable.Range(1, count).Select(i => $"m{i}"), page.Messages.Select(m => m.Message.Text));
    }

    [Fact]
    public async Task Should_take_a_snapshot_of_everything_when_a_mailbox_with_enough_events_passivates()
    {
        var (alice, bob) = ($"alice-{Run}", $"bob-{Run}");

        var sent = await SendThenPassivateAsync(alice, bob, 6, TimeSpan.FromSeconds(10));

        var snapshot = await LatestSnapshotAsync(alice);
        Assert.NotNull(snapshot.Snapshot);
        // The snapshot is the whole journal: waking reads it and replays nothing.
        var status = await Region.Ask<MailboxStatus>(new GetMailboxStatus(alice), Ask, Ct);
        Assert.Equal(status.LastSequenceNr, snapshot.Snapshot.Metadata.SequenceNr);
        await AssertThreadAsync(alice, sent[0], 6);
        var retry = await Region.Ask<SendResult>(new SendMessage(alice, [bob], "m2", "c2"), Ask, Ct);
        Assert.Equal((SendOutcome.Duplicate, sent[1].MessageId), (retry.Outcome, retry.MessageId));
    }

    [Fact]
    public async Task Should_take_a_snapshot_of_everything_when_the_node_stops_a_mailbox_with_enough_events()
    {
        // Stopped by the node (as the memory governor does) rather than idle: the stop journals the confirmations it
        // holds in memory, then takes the snapshot, which is the whole journal.
        var (alice, bob) = ($"alice-{Run}", $"bob-{Run}");
        var sent = new List<SendResult>();
        for (var i = 1; i <= 6; i++)
            sent.Add(await Region.Ask<SendResult>(new SendMessage(alice, [bob], $"m{i}", $"c{i}"), Ask, Ct));
        Assert.All(sent, r => Assert.Equal(SendOutcome.Sent, r.Outcome));
        var entity = await EntityAsync(alice);
        Watch(entity);
        await ShedAsync(alice);
        ExpectTerminated(entity, TimeSpan.FromSeconds(5), cancellationToken: Ct);

        var snapshot = await LatestSnapshotAsync(alice);
        Assert.NotNull(snapshot.Snapshot);
        var status = await Region.Ask<MailboxStatus>(new GetMailboxStatus(alice), Ask, Ct);
        Assert.Equal(status.LastSequenceNr, snapshot.Snapshot.Metadata.SequenceNr);
        await AssertThreadAsync(alice, sent[0], 6);
    }

    [Fact]
    public async Task Should_take_no_snapshot_when_the_node_shuts_down_and_hands_its_mailboxes_off()
    {
        // A shutdown's hand-off stops every mailbox of the node at once, while the member is still Up: none may spend
        // the shutdown's time on a snapshot, however much it wrote (the next node replays instead).
        var (alice, bob) = ($"alice-{Run}", $"bob-{Run}");
        for (var i = 1; i <= 100; i++)
            Assert.Equal(SendOutcome.Sent, (await Region.Ask<SendResult>(new SendMessage(alice, [bob], $"m{i}", $"c{i}"), Ask, Ct)).Outcome);
        // Well over SnapshotOnPassivationAfter (5), under SnapshotEvery (1000): an ordinary passivation would take one.
        Assert.InRange((await Region.Ask<MailboxStatus>(new GetMailboxStatus(alice), Ask, Ct)).LastSequenceNr, 101, 999);
        var mailboxes = new[] { alice, bob };
        var stops = new List<Task<bool>>();
        foreach (var user in mailboxes)
            stops.Add((await EntityAsync(user)).WatchAsync(Ct));

        // Once the hand-off is done (its phase comes before this one) and while the snapshot store is still up: what
        // it holds, and whether the mailboxes have stopped.
        var afterHandOff = new TaskCompletionSource<(bool Stopped, LoadSnapshotResult[] Snapshots)>();
        var shutdown = CoordinatedShutdown.Get(Sys);
        shutdown.AddTask(CoordinatedShutdown.PhaseBeforeActorSystemTerminate, "read-snapshots", async () =>
        {
            var snapshots = await Task.WhenAll(mailboxes.Select(LatestSnapshotAsync));
            afterHandOff.SetResult((stops.All(stop => stop.IsCompletedSuccessfully && stop.Result), snapshots));
            return Akka.Done.Instance;
        });
        await shutdown.Run(CoordinatedShutdown.ClrExitReason.Instance);

        var (stopped, saved) = await afterHandOff.Task.WaitAsync(Ask, Ct);
        Assert.True(stopped, "the hand-off did not stop the mailboxes");
        Assert.All(saved, snapshot => Assert.Null(snapshot.Snapshot));
    }

    [Fact]
    public async Task Should_take_no_snapshot_when_few_events_were_written_since_the_last()
    {
        var (carol, dave) = ($"carol-{Run}", $"dave-{Run}");

        await SendThenPassivateAsync(carol, dave, 1, TimeSpan.FromSeconds(10)); // claim, send, confirmation: 3 < 5

        Assert.Null((await LatestSnapshotAsync(carol)).Snapshot);
    }

    [Fact]
    public async Task Should_count_the_events_a_recovery_replayed_toward_the_next_snapshot()
    {
        var (carol, dave) = ($"carol-{Run}", $"dave-{Run}");
        await SendThenPassivateAsync(carol, dave, 1, TimeSpan.FromSeconds(10)); // 3 events: no snapshot yet
        Assert.Null((await LatestSnapshotAsync(carol)).Snapshot);

        // The next incarnation replays those 3 and writes 3 more: 6 since the last snapshot (none), so it takes one.
        // Counting only its own writes, no incarnation that writes fewer than the bound would ever take one, and
        // every wake would replay the whole history.
        var next = await Region.Ask<SendResult>(new SendMessage(carol, [dave], "m2", "c2"), Ask, Ct);
        Assert.Equal(SendOutcome.Sent, next.Outcome);
        var entity = await EntityAsync(carol);
        Watch(entity);
        ExpectTerminated(entity, TimeSpan.FromSeconds(10), cancellationToken: Ct);

        var snapshot = await LatestSnapshotAsync(carol);
        Assert.NotNull(snapshot.Snapshot);
        Assert.Equal((await Region.Ask<MailboxStatus>(new GetMailboxStatus(carol), Ask, Ct)).LastSequenceNr,
            snapshot.Snapshot.Metadata.SequenceNr);
        await AssertThreadAsync(carol, next, 2);
    }

    [Fact]
    public async Task Should_take_no_snapshot_when_a_recovery_claims_to_settle_a_hole()
    {
        // The journal holds a hole above its newest claim that an old writer's write still in flight could fill: the
        // incarnation that finds it claims and passivates to recover again. Its state lacks whatever the hole may
        // turn out to hold, so it must not leave a snapshot, though 8 events (over the 5 of this test) were replayed.
        var (alice, bob) = ($"alice-{Run}", $"bob-{Run}");
        const long t0 = 1_764_500_000_000;
        var state = MailboxState.Empty(alice, Settings.Limits);
        var events = new List<(long Seq, IMailboxEvent Event)> { (1, new WriterClaimed("old", t0)) };
        for (var i = 1; i <= 6; i++)
        {
            var sent = Assert.IsType<SendDecision.Store>(state.DecideSend(new SendMessage(alice, [bob], $"m{i}", $"c{i}"), t0 + i)).Event;
            var seq = i <= 5 ? i + 1 : 8; // 7 missing
            state = state.Apply(sent, seq);
            events.Add((seq, sent));
        }
        var writer = CreateTestProbe();
        JournalActorRef.Tell(new WriteMessages(
            events.Select(e => (IPersistentEnvelope)new AtomicWrite(new Persistent(
                e.Event, e.Seq, MailboxActor.PersistenceIdFor(alice), "", false, ActorRefs.NoSender, "old"))).ToImmutableList(),
            writer.Ref, 1));
        await writer.ExpectMsgAsync<WriteMessagesSuccessful>(Ask, cancellationToken: Ct);

        // Every snapshot alice's incarnations save, by position. The one that claims at 9 must save none; a later one
        // (woken to deliver, say) recovers the whole journal and may.
        var saved = new List<long>();
        await WithSnapshotSave(save => save.FailIf((pid, criteria) =>
        {
            if (pid == MailboxActor.PersistenceIdFor(alice))
                lock (saved)
                    saved.Add(criteria.MaxSequenceNr);
            return false;
        }), async () =>
        {
            await Region.Ask<object>(new GetMailboxStatus(alice), Ask, Ct); // wakes it: it claims (9) and passivates
            await AwaitAssertAsync(async () =>
            {
                var probe = CreateTestProbe();
                JournalActorRef.Tell(new ReplayMessages(9, 9, 1, MailboxActor.PersistenceIdFor(alice), probe.Ref));
                Assert.IsType<WriterClaimed>(Assert.IsType<ReplayedMessage>(await probe.ReceiveOneAsync(Ask, Ct)).Persistent.Payload);
            }, Ask, cancellationToken: Ct);
            await Task.Delay(TimeSpan.FromSeconds(2), Ct); // its stop, and a snapshot if it took one, come within ms
        });

        lock (saved)
            Assert.DoesNotContain(9L, saved);
        var page = Assert.IsType<ThreadPage>(await Region.Ask<object>(
            new GetThread(alice, Ids.ConversationFor(alice, bob), 0, 50, null, null), Ask, Ct));
        Assert.Equal(["m1", "m2", "m3", "m4", "m5", "m6"], page.Messages.Select(m => m.Message.Text));
    }

    [Fact]
    public async Task Should_stop_and_wake_intact_when_the_snapshot_store_fails()
    {
        var (alice, bob) = ($"alice-{Run}", $"bob-{Run}");
        List<SendResult> sent = null!;

        var attempts = 0;
        await WithSnapshotSave(save => save.FailIf((pid, _) =>
        {
            if (pid == MailboxActor.PersistenceIdFor(alice))
                Interlocked.Increment(ref attempts);
            return true;
        }), async () => sent = await SendThenPassivateAsync(alice, bob, 6, TimeSpan.FromSeconds(10)));

        Assert.Equal(1, attempts); // it tried, the store failed, and it stopped all the same
        Assert.Null((await LatestSnapshotAsync(alice)).Snapshot);
        await AssertThreadAsync(alice, sent[0], 6);
    }

    [Fact]
    public async Task Should_stop_without_the_snapshot_when_the_snapshot_store_hangs()
    {
        var (alice, bob) = ($"alice-{Run}", $"bob-{Run}");
        var sent = new List<SendResult>();

        // The store answers only after 30 s; stopped by the node (as the memory governor does), the mailbox waits 1 s
        // for it (SnapshotOnPassivationTimeout), so it stops within about that, not after 30 s.
        var attempts = 0;
        await WithSnapshotSave(save => save.FailIfWithDelay(TimeSpan.FromSeconds(30), (pid, _) =>
        {
            if (pid == MailboxActor.PersistenceIdFor(alice))
                Interlocked.Increment(ref attempts);
            return true;
        }), async () =>
        {
            for (var i = 1; i <= 6; i++)
                sent.Add(await Region.Ask<SendResult>(new SendMessage(alice, [bob], $"m{i}", $"c{i}"), Ask, Ct));
            var entity = await EntityAsync(alice);
            Watch(entity);
            await ShedAsync(alice);
            ExpectTerminated(entity, TimeSpan.FromSeconds(4), cancellationToken: Ct);
        });

        Assert.Equal(1, attempts); // it waited for a snapshot that did not come, then stopped without it
        await AssertThreadAsync(alice, sent[0], 6);
    }

    [Fact]
    public async Task Should_wait_past_the_stop_timeout_for_its_idle_snapshot_then_passivate_without_it_when_the_store_fails()
    {
        var (alice, bob) = ($"alice-{Run}", $"bob-{Run}");
        List<SendResult> sent = null!;

        // Idle after 1 s, the mailbox asks for its snapshot and the store answers (a failure) only 4 s later. It stays
        // up meanwhile (a stop would have given up after 1 s, its messages held by the shard), then passivates without.
        // (That it serves while it waits: PassivationSnapshotGateSpecs.)
        var attempts = 0;
        await WithSnapshotSave(save => save.FailIfWithDelay(TimeSpan.FromSeconds(4), (pid, _) =>
        {
            if (pid == MailboxActor.PersistenceIdFor(alice))
                Interlocked.Increment(ref attempts);
            return true;
        }), async () =>
        {
            sent = [];
            for (var i = 1; i <= 6; i++)
                sent.Add(await Region.Ask<SendResult>(new SendMessage(alice, [bob], $"m{i}", $"c{i}"), Ask, Ct));
            var entity = await EntityAsync(alice);
            Watch(entity);
            ExpectNoMsg(TimeSpan.FromSeconds(4), Ct);
            Assert.Equal(1, attempts);
            ExpectTerminated(entity, TimeSpan.FromSeconds(6), cancellationToken: Ct);
        });

        Assert.Equal(1, attempts);
        Assert.Null((await LatestSnapshotAsync(alice)).Snapshot);
        await AssertThreadAsync(alice, sent[0], 6);
    }
}
