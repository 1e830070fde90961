using System.Diagnostics;
using System.Runtime.CompilerServices;
using Akka.Actor;
using Akka.Event;
using Akka.Persistence;
using Messaging.Actors.Delivery;
using Messaging.Messages;

namespace Messaging.Actors;

/// <summary>
/// Runs a mailbox's wake from its snapshot a few hundred times as the node starts, so the first cohort of real wakes
/// finds that code compiled. The runtime compiles a method quickly at its first calls and again, optimized, once it
/// is hot (tiered compilation); a node that wakes 2,500 mailboxes from their snapshots for the first time does both
/// for the whole path at once (the journal plugin's queries, the database driver, the serializer, the state), and a
/// profile of that first cohort had 30 % of its CPU on the runtime's compilation thread (docs/benchmarks.md, "A
/// cohort's wake, part by part").
/// <para>
/// The wakes are real: a <see cref="MailboxActor"/> of a sample user (six conversations at their bounds, as a soak
/// user's after half an hour) recovers from a snapshot saved through the same snapshot store, under a persistence id
/// of its own (<c>warmup-</c> and a uuid, which no mailbox or group has), answers its status and stops. It writes no
/// event (the journal and its writer fence are only read), and the snapshot is deleted at the end. The sample is on
/// Akka's default plugins: the server that keeps what is no mailbox or group (with several servers, partition 0's);
/// the code compiled is the same for every server's plugins. Rounds go on until a round compiles next to nothing more,
/// or up to the most wakes.
/// </para>
/// </summary>
public static class WakeWarmup
{
    /// <summary>The sample mailbox's conversations and messages (sent and received in turn).</summary>
    public const int Contacts = 6;

    public const int Messages = 360;

    /// <summary>Wakes per round, and at once within a round.</summary>
    private const int RoundWakes = 40;

    private const int Parallel = 8;

    /// <summary>
    /// The pause between rounds: the runtime counts calls towards the optimized compile only once no new method was
    /// compiled for 100 ms, and compiles in the background.
    /// </summary>
    private static readonly TimeSpan Pause = TimeSpan.FromMilliseconds(250);

    /// <summary>A round (and its pause) that compiles fewer methods than this ends the warm-up.</summary>
    private const long SettledBelow = 8;

    private static readonly TimeSpan AskTimeout = TimeSpan.FromSeconds(30);

    /// <param name="PersistenceId">The sample's, deleted again by now.</param>
    public sealed record Report(int Wakes, TimeSpan Took, long MethodsCompiled, bool Settled, string PersistenceId);

    private static readonly ConditionalWeakTable<ActorSystem, Task<Report>> Started = new();

    /// <summary>The warm-up the node started as it started (<see cref="MailboxHosting.WithWakeWarmup"/>); null if none.</summary>
    public static Task<Report>? Of(ActorSystem system) => Started.TryGetValue(system, out var warmup) ? warmup : null;

    /// <summary>Starts the warm-up beside whatever runs (it never throws here), for <see cref="Of"/> to find.</summary>
    internal static Task<Report> Start(ActorSystem system, Func<Task<Report>> run)
    {
        var warmup = Task.Run(run);
        Started.AddOrUpdate(system, warmup);
        return warmup;
    }

    /// <summary>Warms the wake path with up to <paramref name="maxWakes"/> wakes of the sample on <paramref name="plugins"/>.</summary>
    public static async Task<Report> RunAsync(ActorSystem system, MailboxSettings settings, IActorRef mailboxes, IActorRef groups,
        DeliveryIndexRef index, PersistencePlugins plugins, int maxWakes, CancellationToken cancel = default)
    {
        var clock = Stopwatch.StartNew();
        var methods0 = System.Runtime.JitInfo.GetCompiledMethodCount();
        var sample = SampleState(settings.Limits);
        var store = Persistence.Instance.Apply(system).SnapshotStoreFor(plugins.SnapshotStore);
        var persistenceId = $"warmup-{Guid.NewGuid():N}";
        var wakes = 0;
        var settled = false;
        try
        {
            // Deleted in any case (finally): a save whose answer is lost (a timeout, a call-off) may still be stored.
            // The snapshot sits above the journal's (empty) end: recovery takes LastSequenceNr from it and replays nothing.
            var reply = await store.Ask<object>(
                new SaveSnapshot(new SnapshotMetadata(persistenceId, sample.Seq, DateTime.UtcNow), sample.State.ToSnapshot()), AskTimeout, cancel);
            if (reply is SaveSnapshotFailure failure)
                throw new InvalidOperationException($"the warm-up's snapshot was not saved: {failure.Cause.Message}", failure.Cause);

            // One wake alone first: a path that fails (the store refuses, a snapshot it cannot read) fails once, not in
            // eight loads at once that would open the store's circuit breaker for the deletion below.
            Task Wake(CancellationToken token) => WakeOnce(system, settings, mailboxes, groups, index, persistenceId, plugins, token);
            await Wake(cancel);
            wakes = 1;
            while (wakes < maxWakes && !cancel.IsCancellationRequested)
            {
                var before = System.Runtime.JitInfo.GetCompiledMethodCount();
                var round = Math.Min(RoundWakes, maxWakes - wakes);
                var next = -1;
                // The first failure ends the round: the other wakes in flight are called off.
                using var failed = CancellationTokenSource.CreateLinkedTokenSource(cancel);
                await Task.WhenAll(Enumerable.Range(0, Math.Min(Parallel, round)).Select(async _ =>
                {
                    for (var i = Interlocked.Increment(ref next); i < round && !failed.IsCancellationRequested; i = Interlocked.Increment(ref next))
                    {
                        try
                        {
                            await Wake(failed.Token);
                        }
                        catch (Exception e) when (e is not OperationCanceledException)
                        {
                            await failed.CancelAsync();
                            throw;
                        }
                    }
                }));
                cancel.ThrowIfCancellationRequested();
                wakes += round;
                await Task.Delay(Pause, cancel);
                if (System.Runtime.JitInfo.GetCompiledMethodCount() - before < SettledBelow)
                {
                    settled = true;
                    break;
                }
            }
            cancel.ThrowIfCancellationRequested(); // called off between two steps: said the same way as during one
        }
        finally
        {
            await DeleteAsync(system, store, persistenceId);
        }
        return new Report(wakes, clock.Elapsed, System.Runtime.JitInfo.GetCompiledMethodCount() - methods0, settled, persistenceId);
    }

    /// <summary>Deletes a sample's snapshot, again after the store's circuit breaker has had time to close (3 s here).</summary>
    private static async Task DeleteAsync(ActorSystem system, IActorRef store, string persistenceId)
    {
        for (var attempt = 1; ; attempt++)
        {
            object reply;
            try
            {
                reply = await store.Ask<object>(new DeleteSnapshots(persistenceId, SnapshotSelectionCriteria.Latest), AskTimeout);
            }
            catch (Exception e)
            {
                reply = new DeleteSnapshotsFailure(SnapshotSelectionCriteria.Latest, e); // a timeout, a system shutting down
            }
            if (reply is not DeleteSnapshotsFailure failure)
                return;
            if (attempt == DeleteAttempts)
            {
                system.Log.Warning(failure.Cause, "The wake warm-up's snapshot {0} was not deleted (nothing reads it; docs/operations.md, \"A node's start\")", persistenceId);
                return;
            }
            await Task.Delay(DeleteRetryAfter);
        }
    }

    private const int DeleteAttempts = 3;

    private static readonly TimeSpan DeleteRetryAfter = TimeSpan.FromSeconds(5);

    private static async Task WakeOnce(ActorSystem system, MailboxSettings settings, IActorRef mailboxes, IActorRef groups,
        DeliveryIndexRef index, string persistenceId, PersistencePlugins plugins, CancellationToken cancel)
    {
        var mailbox = system.ActorOf(FactoryProps.Of(() => new MailboxActor(SampleUser, settings, mailboxes, groups, index, plugins, persistenceId))
            .WithMailbox(CompactMailbox.Id));
        try
        {
            // A recovery that fails stops the actor and leaves the ask unanswered: its end says so at once.
            var stopped = mailbox.WatchAsync(cancel);
            var asked = mailbox.Ask<MailboxStatus>(new GetMailboxStatus(SampleUser), AskTimeout, cancel);
            if (await Task.WhenAny(asked, stopped) != asked)
            {
                cancel.ThrowIfCancellationRequested();
                throw new InvalidOperationException("the warm-up's mailbox stopped before it answered (its recovery failed; the log says why)");
            }
            var status = await asked;
            if (status.Conversations != Contacts || status.PendingDeliveries != 0)
                throw new InvalidOperationException(
                    $"the warm-up's mailbox woke with {status.Conversations} conversations and {status.PendingDeliveries} pending deliveries, not {Contacts} and 0");
        }
        finally
        {
            await mailbox.GracefulStop(AskTimeout);
        }
    }

    private const string SampleUser = "warmup";

    /// <summary>
    /// The sample mailbox as its idle snapshot would hold it, and that snapshot's journal position. Its windows, texts
    /// and dedup window follow the node's <paramref name="limits"/>; its history may pass the node's limits on
    /// openings and on copies pending per recipient (settings smaller than its six contacts and ten copies would
    /// refuse its sends), which recovery takes as it comes.
    /// </summary>
    internal static (MailboxState State, long Seq) SampleState(MailboxLimits limits)
    {
        var contacts = Enumerable.Range(1, Contacts).Select(c => $"{SampleUser}-{c}").ToArray();
        var generous = limits with
        {
            MaxNewConversations = Math.Max(limits.MaxNewConversations, Contacts),
            MaxPendingPerRecipient = Math.Max(limits.MaxPendingPerRecipient, ConfirmEvery),
        };
        var history = new HistoryGenerator(SampleUser, contacts, generous, 1_700_000_000_000, confirmEvery: ConfirmEvery);
        var (state, seq) = (MailboxState.Empty(SampleUser, generous), 0L);
        foreach (var (_, s, st) in history.Events(Messages))
            (state, seq) = (st, s);
        // Nothing may be pending: a wake with copies to deliver would start delivering them to made-up users.
        if (state.PendingDeliveries != 0)
            throw new InvalidOperationException($"the warm-up's sample has {state.PendingDeliveries} copies pending");
        return (state with { Limits = limits }, seq);
    }

    /// <summary>The sample's sends are confirmed every this many per contact, as its recipients would.</summary>
    private const int ConfirmEvery = 10;
}
