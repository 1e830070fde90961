using Akka.Actor;
using Akka.Persistence;
using Akka.Persistence.TestKit;
using Messaging.Actors.Delivery;
using Messaging.Actors.Groups;
using Messaging.Messages;

namespace Messaging.Actors.Tests;

/// <summary>
/// The node's warm-up of a wake from a snapshot (<see cref="WakeWarmup"/>): real wakes of the sample mailbox from its
/// snapshot, no event written, the snapshot deleted at the end whatever happened, and nobody's mailbox touched.
/// </summary>
public sealed class WakeWarmupSpecs(ITestOutputHelper output)
    : ShardedMailboxTestKit(nameof(WakeWarmupSpecs), output, new MailboxSettings())
{
    private Task<WakeWarmup.Report> WarmUp(int maxWakes, CancellationToken cancel) =>
        WakeWarmup.RunAsync(Sys, Settings, Region, ActorRegistry.Get<GroupRegion>(),
            new DeliveryIndexRef(ActorRegistry.Get<DeliveryIndexRegion>(), "warmup-index"), PersistencePlugins.Default, maxWakes, cancel);

    [Fact]
    public async Task Should_wake_the_sample_from_its_snapshot_and_leave_nothing_behind()
    {
        var report = await WarmUp(maxWakes: 12, Ct);

        // Each wake checked that the mailbox came back whole from the snapshot (six conversations, nothing pending):
        // had it woken empty, the warm-up would have thrown.
        Assert.Equal(12, report.Wakes);
        var persistenceId = report.PersistenceId;
        Assert.StartsWith("warmup-", persistenceId);
        Assert.Null(await LoadSnapshot(persistenceId));
        Assert.Equal(0, await HighestSequenceNr(persistenceId));
        // The user whose id the sample borrows has no mailbox yet, and none of the sample's history.
        var user = await Region.Ask<MailboxStatus>(new GetMailboxStatus("warmup"), Ask, Ct);
        Assert.Equal((0, 0L), (user.Conversations, user.LastSequenceNr));
        Assert.Null(await LoadSnapshot(MailboxActor.PersistenceIdFor("warmup")));
    }

    [Fact]
    public async Task Should_take_the_sample_as_a_real_idle_snapshot_holds_it()
    {
        var (state, seq) = WakeWarmup.SampleState(Settings.Limits);

        Assert.Equal(WakeWarmup.Contacts, state.Conversations.Count);
        Assert.Equal(0, state.PendingDeliveries);
        Assert.True(seq > WakeWarmup.Messages, "confirmations are journaled as well");
        // Every window is full and kept compact in the snapshot, as a soak user's after half an hour.
        var snapshot = state.ToSnapshot();
        Assert.All(snapshot.Conversations, c =>
        {
            Assert.NotNull(c.Window);
            Assert.Equal(Settings.Limits.RecentPerConversation, c.Window!.Messages.Length);
        });
    }

    [Fact]
    public async Task Should_delete_its_snapshot_when_a_wake_fails()
    {
        var loads = new WarmupLoads(_ => true);
        var error = await Assert.ThrowsAsync<InvalidOperationException>(() =>
            WithSnapshotLoad(load => load.SetInterceptorAsync(loads), () => WarmUp(maxWakes: 12, Ct)));

        // The first wake's recovery failed: the warm-up stops at once and says so, and deletes its snapshot.
        Assert.Contains("stopped before it answered", error.Message);
        Assert.Single(loads.PersistenceIds); // the one wake alone: the others were never tried
        Assert.Null(await LoadSnapshot(loads.PersistenceIds[0]));
    }

    [Fact]
    public async Task Should_call_off_the_rest_of_a_round_at_its_first_failure_and_still_delete_its_snapshot()
    {
        // The wake alone and three of the first round's pass, the fifth fails, and the ones after it take 300 ms: time
        // for the failure to call off the others, which in memory would otherwise all be done before it arrives.
        var loads = new WarmupLoads(n => n == 5, slowFrom: 6);

        var error = await Assert.ThrowsAsync<InvalidOperationException>(() =>
            WithSnapshotLoad(load => load.SetInterceptorAsync(loads), () => WarmUp(maxWakes: 400, Ct)));

        Assert.Contains("stopped before it answered", error.Message);
        // After the fifth, at most the wakes already in flight (8 at once) or starting then, not the rest of the round's 40.
        Assert.InRange(loads.PersistenceIds.Count, 5, 5 + 8);
        Assert.Null(await LoadSnapshot(loads.PersistenceIds[0]));
    }

    [Fact]
    public async Task Should_say_why_when_its_snapshot_is_not_saved()
    {
        var error = await Assert.ThrowsAsync<InvalidOperationException>(() => WithSnapshotSave(save => save.Fail(), () => WarmUp(maxWakes: 12, Ct)));

        Assert.Contains("the warm-up's snapshot was not saved", error.Message);
    }

    [Fact]
    public async Task Should_stop_when_cancelled_and_still_delete_its_snapshot()
    {
        using var cancel = new CancellationTokenSource();
        var loads = new WarmupLoads(_ => false);
        await WithSnapshotLoad(load => load.SetInterceptorAsync(loads), async () =>
        {
            var warmUp = WarmUp(maxWakes: 100_000, cancel.Token);
            await loads.First.Task.WaitAsync(Ask, Ct);
            cancel.Cancel();
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => warmUp.WaitAsync(Ask, Ct));
            Assert.True(loads.PersistenceIds.Count < 100, $"{loads.PersistenceIds.Count} wakes after the cancellation");
        });

        Assert.Null(await LoadSnapshot(loads.PersistenceIds.Distinct().Single()));
    }

    /// <summary>Sees every snapshot load of the warm-up's mailboxes, and fails those whose number (from 1) <c>fails</c> picks.</summary>
    private sealed class WarmupLoads(Func<int, bool> fails, int slowFrom = int.MaxValue) : ISnapshotStoreInterceptor
    {
        private readonly List<string> _persistenceIds = [];

        public TaskCompletionSource First { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public IReadOnlyList<string> PersistenceIds
        {
            get
            {
                lock (_persistenceIds)
                    return [.. _persistenceIds];
            }
        }

        public async Task InterceptAsync(string persistenceId, SnapshotSelectionCriteria criteria)
        {
            if (!persistenceId.StartsWith("warmup-", StringComparison.Ordinal))
                return;
            int count;
            lock (_persistenceIds)
            {
                _persistenceIds.Add(persistenceId);
                count = _persistenceIds.Count;
            }
            First.TrySetResult();
            if (count >= slowFrom)
                await Task.Delay(300);
            if (fails(count))
                throw new InvalidOperationException("the test fails this load");
        }
    }

    private async Task<object?> LoadSnapshot(string persistenceId) =>
        (await SnapshotsActorRef.Ask<LoadSnapshotResult>(
            new LoadSnapshot(persistenceId, SnapshotSelectionCriteria.Latest, long.MaxValue), Ask, Ct)).Snapshot?.Snapshot;

    private async Task<long> HighestSequenceNr(string persistenceId)
    {
        var probe = CreateTestProbe();
        JournalActorRef.Tell(new ReplayMessages(1, long.MaxValue, long.MaxValue, persistenceId, probe.Ref));
        return (await probe.ExpectMsgAsync<RecoverySuccess>(cancellationToken: Ct)).HighestSequenceNr;
    }
}
