using Akka.Actor;
using Akka.Cluster;
using Akka.Cluster.Sharding;
using Akka.Event;
using Akka.Persistence;

namespace Messaging.Actors;

/// <summary>
/// A message an entity gets from itself or its own children (its own work, like a timer): not use, for idle
/// passivation or the memory governor (<see cref="SingleWriterActor{TState,TEvent}"/>).
/// </summary>
public interface IEntityOwnMessage;

/// <summary>
/// How an entity that is the only writer of its journal writes, whatever it keeps. Commands are decided against
/// <see cref="Decided"/> (which already includes writes in flight, so PersistAsync can pipeline without reusing a
/// seq or a stamp); reads and replies use <see cref="Durable"/>, which changes only once the journal has the write.
/// Every incarnation's first write is preceded by its claim (<see cref="Claim"/>), which the journal takes only as
/// its newest event, and after which it takes no other writer's events: the fence against a paused old incarnation.
/// A failed or rejected write stops the incarnation (the next one recovers from the journal); so does a stop
/// request, once every write in flight is durable.
/// <para>
/// A rejected write can leave a hole in the middle of the pipeline: the journal took the writes decided after it,
/// which were decided on a state that never came to be (a channel number or thread seq after the missing one). From
/// the rejection on, nothing of this incarnation counts: its later writes are answered as failed (the writers'
/// clients retry) and carried out no further, so no copy, confirmation, snapshot or live event leaves with them. The
/// next incarnation finds them in the journal, sees they do not continue the state (<see cref="ReplayAudit{TEvent}"/>)
/// and decides them again, or drops them. A failed write leaves the same hole (a later batch may still land), and the
/// incarnation stops at once.
/// </para>
/// </summary>
public abstract class SingleWriterActor<TState, TEvent> : PersistentActor, IGoverned
    where TState : class
    where TEvent : class
{
    // For the node's memory governor: when this entity last got a message (Environment.TickCount64), and its ref.
    private long _lastActive = Environment.TickCount64;
    // When it last got any message through its shard (its own timers aside): what idle passivation measures.
    private long _lastTouched = Environment.TickCount64;
    private IActorRef _governedRef = ActorRefs.Nobody;
    private volatile bool _shedAsked;
    private int _inFlight;
    // Callers a deferred answer is owed to (Owe), answered at PostStop if still owed then.
    private HashSet<Owed>? _owed;
    // What to do, per write in flight (oldest first), if it turns out not to count: null where WritesFailed answers.
    private readonly Queue<Action?> _onFailed = new();
    // Journal position the next event will get. Akka assigns positions when the batch is flushed but advances
    // LastSequenceNr only when a write is confirmed, so with writes in flight we count ourselves.
    private long _nextJournalSeq = 1;
    private int _eventsSinceSnapshot;
    private bool _snapshotInProgress;
    // Stopping once the snapshot in progress is saved (or failed, or took too long): see StopWhenSettled.
    private bool _stopAfterSnapshot;
    // That snapshot is saved and the older ones deleted, or it failed, or it took too long.
    private bool _stopSnapshotDone;
    // The deletion a stop waits for (older snapshots than the one it took); another's answer does not count.
    private long _stopDeletesUpTo = -1;
    private ICancelable? _snapshotTimeout;
    // Stopping, waiting for a turn at the node's SnapshotGate to take that snapshot.
    private bool _awaitingTurn;
    // Past this (Environment.TickCount64) a turn is too late to be worth a save.
    private long _turnUsefulUntil;
    // Durable may lack events of the journal (a hole being settled: ClaimThenRecoverAgain): no snapshot may be taken.
    private bool _incomplete;
    // This incarnation's claim is written (or on its way) ahead of its first event.
    private bool _claimed;
    // A write was rejected: the writes after it were decided on a state the journal does not have.
    private bool _rejected;
    // The shard sent its stop message (passivation or hand-off).
    private bool _stopAsked;
    private readonly PauseGuard _pauseGuard = PauseGuard.Get(Context.System);
    // Idle (GoIdle): where it is on its way to passivate itself, still serving; any message through its shard calls
    // it off (back to None).
    private IdleStep _idleStep;
    // It holds a turn at the SnapshotGate (for a stop's snapshot or an idle one's): a SnapshotTurn that comes now is
    // stale (one granted while it was in line, which it has taken since).
    private bool _holdsTurn;
    // Its idle snapshot is saved: it passivates once the older ones' deletion (up to here) has answered.
    private long _idleDeletesUpTo = -1;
    // Only while recovering: what the replay learns about the journal's writers, and the entity's test of what
    // continues it (one delegate per recovery rather than a field per entity).
    private ReplayAudit<TEvent>? _audit = new();
    private Func<TEvent, bool>? _continues;

    /// <param name="plugins">The journal and snapshot store of this entity (its partition's server); Akka's defaults if null.</param>
    protected SingleWriterActor(string persistenceId, TState empty, PersistencePlugins? plugins = null)
    {
        PersistenceId = persistenceId;
        if (plugins is not null)
            (JournalPluginId, SnapshotPluginId) = (plugins.Journal, plugins.SnapshotStore);
        Durable = Decided = empty;
    }

    /// <summary>
    /// Snapshot bookkeeping here, everything else to <see cref="OnCommand"/>. One method rather than a registration per
    /// message type (<c>ReceivePersistentActor</c>): those are delegates and matcher state in every instance, about
    /// 1 KiB of each live mailbox.
    /// </summary>
    protected sealed override bool ReceiveCommand(object message)
    {
        switch (message)
        {
            case ShedMemory:
                // The node's heap is above its high water mark and this entity is among the least recently used.
                if (!Stopping)
                {
                    MessagingMetrics.MailboxShed();
                    Context.Parent.Tell(new Passivate(StopMessage));
                }
                return true;
            case SaveSnapshotSuccess success:
                _snapshotInProgress = false;
                // Stopping waits for the older snapshots' deletion too, so its answer does not end up in dead letters;
                // but the turn goes to the next in line now: the turns bound the saves, and a turn held through the
                // deletion too would let fewer of a burst's snapshots in within the stop's timeout.
                if (_stopAfterSnapshot)
                {
                    _stopDeletesUpTo = success.Metadata.SequenceNr - 1;
                    // A periodic snapshot that was saved while this stop waited in line is the stop's: a turn that
                    // comes later is passed on, not used for a second save.
                    _awaitingTurn = false;
                    if (SnapshotsBeforeStopPerNode > 0)
                        LeaveGate();
                }
                else
                {
                    _snapshotTimeout?.Cancel();
                    if (_holdsTurn)
                        LeaveGate(); // the idle one's turn, idle or not by now
                    // Its own, or a periodic one saved while it waited in line: either will do. (One saved while its
                    // journaling writes are in flight lacks them: it goes on once they are durable.)
                    if (_idleStep is IdleStep.Line or IdleStep.Save)
                    {
                        LeaveIdleLine();
                        _idleStep = IdleStep.Delete;
                        _idleDeletesUpTo = success.Metadata.SequenceNr - 1;
                    }
                }
                DeleteSnapshots(new SnapshotSelectionCriteria(success.Metadata.SequenceNr - 1));
                return true;
            case SaveSnapshotFailure failure:
                _snapshotInProgress = false;
                Log.Warning(failure.Cause, "Snapshot of {PersistenceId} failed; will try again", PersistenceId);
                if (_stopAfterSnapshot)
                {
                    if (!_stopSnapshotDone)
                        MessagingMetrics.StopSnapshotGivenUp();
                    StopSnapshotDone();
                }
                else
                {
                    _snapshotTimeout?.Cancel();
                    if (_holdsTurn)
                        LeaveGate();
                    if (_idleStep == IdleStep.Save)
                    {
                        // Passivating without it, as a stop whose store does not answer: the next wake replays more.
                        MessagingMetrics.StopSnapshotGivenUp();
                        PassivateIdle();
                    }
                }
                return true;
            case DeleteSnapshotsSuccess deleted:
                if (_stopAfterSnapshot && deleted.Criteria.MaxSequenceNr == _stopDeletesUpTo)
                    StopSnapshotDone();
                else if (_idleStep == IdleStep.Delete && deleted.Criteria.MaxSequenceNr == _idleDeletesUpTo)
                    PassivateIdle();
                return true;
            case DeleteSnapshotsFailure failure:
                Log.Warning(failure.Cause, "Old snapshots of {PersistenceId} not deleted", PersistenceId);
                if (_stopAfterSnapshot && failure.Criteria.MaxSequenceNr == _stopDeletesUpTo)
                    StopSnapshotDone();
                else if (_idleStep == IdleStep.Delete && failure.Criteria.MaxSequenceNr == _idleDeletesUpTo)
                    PassivateIdle();
                return true;
            case GoIdle:
                GoIdleIfStillIdle();
                return true;
            case IdleSnapshotTimedOut:
                if (_idleStep == IdleStep.Save && _snapshotInProgress)
                {
                    // The store's circuit breaker ends a save within its call timeout (10 s): an answer this late is
                    // lost. Passivate without it: the stop waits for the save as any stop does, and counts it skipped.
                    Log.Warning("Snapshot of {PersistenceId} before it passivates got no answer within {Timeout}; passivating without it",
                        PersistenceId, IdleSnapshotTimeout);
                    if (_holdsTurn)
                        LeaveGate();
                    PassivateIdle();
                }
                return true;
            case SnapshotTurn when _holdsTurn || !SnapshotGate.For(Context.System).Holds(Self):
                // Stale: granted while it was in line, and since then taken (a stop that entered again got it at once),
                // or given back (it left the line, and may be in line again).
                return true;
            case SnapshotTurn when _idleStep == IdleStep.Line:
                _holdsTurn = true;
                _idleStep = IdleStep.Save;
                if (_snapshotInProgress)
                {
                    LeaveGate(); // a periodic snapshot started meanwhile: it is the one
                }
                else if (SnapshotAllowed)
                {
                    StartIdleSnapshot(); // holding the turn until the save answers
                }
                else
                {
                    LeaveGate();
                    PassivateIdle();
                }
                return true;
            case SnapshotTurn:
                _holdsTurn = true;
                if (_awaitingTurn && !_stopSnapshotDone)
                {
                    _awaitingTurn = false;
                    if (Environment.TickCount64 > _turnUsefulUntil)
                    {
                        // Too late to be worth a save: a store that hangs would otherwise get one from each in line
                        // as the holders before them give up. The turn goes to the next in line.
                        MessagingMetrics.StopSnapshotGivenUp();
                        StopSnapshotDone();
                    }
                    else if (_snapshotInProgress)
                    {
                        // A periodic snapshot that started meanwhile (a timer's write crossed SnapshotEvery) is the
                        // stop's snapshot: its answer stops the entity, and the turn goes to the next in line.
                        LeaveGate();
                    }
                    else if (SnapshotAllowed)
                    {
                        StartSnapshot();
                    }
                    else
                    {
                        StopSnapshotDone();
                    }
                }
                else
                {
                    LeaveGate(); // a turn it no longer needs
                }
                return true;
            case SnapshotBeforeStopTimedOut:
                if (_stopSnapshotDone)
                    return true;
                if (_stopDeletesUpTo >= 0)
                {
                    // The snapshot is saved; only the deletion of older ones has not answered (it goes on in the store).
                    Log.Debug("Older snapshots of {PersistenceId} not deleted within {Timeout}; stopping", PersistenceId, SnapshotBeforeStopTimeout);
                    StopSnapshotDone();
                    return true;
                }
                MessagingMetrics.StopSnapshotGivenUp();
                // Many wait in line at once (messaging_passivation_snapshots_skipped_total counts them): no warning each.
                if (_awaitingTurn)
                    Log.Debug("{PersistenceId} got no turn to take its snapshot within {Timeout}; stopping without it",
                        PersistenceId, SnapshotBeforeStopTimeout);
                else
                    Log.Warning("Snapshot of {PersistenceId} before it stops took longer than {Timeout}; stopping without it",
                        PersistenceId, SnapshotBeforeStopTimeout);
                StopSnapshotDone();
                return true;
            default:
                // Requests count as use for the memory governor; the entity's own timers (the redelivery tick comes
                // back round through the shard region as a Keep...Delivering) and the delivery index's wakes do not.
                // For idle passivation, whatever comes through the shard counts (as the shard's own idle timer
                // counted it): a mailbox with copies to deliver keeps delivering until they are confirmed.
                if (message is not (Delivery.DeliveryTimer or Terminated or IEntityOwnMessage))
                {
                    var now = Environment.TickCount64;
                    Volatile.Write(ref _lastTouched, now);
                    if (message is not (Messaging.Messages.WakeForDelivery or Messaging.Messages.KeepDelivering
                        or Messaging.Messages.KeepGroupDelivering))
                        Volatile.Write(ref _lastActive, now);
                    // The shard's stop keeps an idle one's place in line: the stop takes it over (StopWhenSettled).
                    if (_idleStep != IdleStep.None && message.GetType() != StopMessage.GetType())
                        NoLongerIdle();
                }
                return OnCommand(message);
        }
    }

    /// <summary>The entity's own commands: true when handled (else Akka's unhandled-message path).</summary>
    protected abstract bool OnCommand(object message);

    /// <summary>
    /// Recovery, the same for every entity: the snapshot, then each event applied if it continues the state (else kept
    /// aside as stale, <see cref="ReplayAudit{TEvent}"/>), then <see cref="Recovered"/>, unless the journal has a hole
    /// above the newest claim (<see cref="ClaimThenRecoverAgain"/>).
    /// </summary>
    protected sealed override bool ReceiveRecover(object message)
    {
        switch (message)
        {
            case SnapshotOffer offer:
                Durable = FromSnapshot(offer.Snapshot, offer.Metadata.SequenceNr);
                _audit!.SnapshotOffered(offer.Metadata.SequenceNr);
                return true;
            case TEvent evt:
                if (_audit!.Replayed(LastSequenceNr, evt, _continues ??= e => Continues(Durable, e)))
                    Durable = Apply(Durable, evt, LastSequenceNr);
                return true;
            case RecoveryCompleted:
                CompleteRecovery();
                return true;
            default:
                return false;
        }
    }

    private void CompleteRecovery()
    {
        var outcome = _audit!.Complete(LastSequenceNr);
        var snapshotSeq = _audit.SnapshotSeq;
        _audit = null;
        _continues = null;
        if (outcome.Stale.Count > 0)
            Durable = StaleFound(Durable, outcome.Stale[^1].Seq);
        RecoveryDone(snapshotSeq, countReplayed: outcome.Stale.Count == 0);
        if (outcome.UnsettledGap > 0)
        {
            ClaimThenRecoverAgain(outcome.UnsettledGap);
            return;
        }
        Recovered(outcome.Stale);
    }

    /// <summary>The state a snapshot holds (taken at journal position <paramref name="snapshotSeq"/>).</summary>
    protected abstract TState FromSnapshot(object snapshot, long snapshotSeq);

    /// <summary>Whether a replayed event continues the state as replayed so far (else it is stale).</summary>
    protected abstract bool Continues(TState state, TEvent evt);

    /// <summary>The journal holds stale events up to <paramref name="upToJournalSeq"/>; the state may note it.</summary>
    protected virtual TState StaleFound(TState state, long upToJournalSeq) => state;

    /// <summary>Recovered and ready to write: resolve <paramref name="stale"/> events (journal order), resume delivery.</summary>
    protected abstract void Recovered(IReadOnlyList<(long Seq, TEvent Event)> stale);

    public override string PersistenceId { get; }

    /// <summary>
    /// An event or snapshot this release cannot read (written by a newer release, then rolled back) fails the
    /// recovery, and Akka.Persistence then stops the entity: it stays down (its requests answer 503) rather than skip
    /// history. Skipping would rebuild a state other than the acknowledged one, and would hand out the skipped event's
    /// channel seq again, so its recipient would drop the next copy as a duplicate. Said plainly here, since the cure
    /// is an operator's: run a release that reads it (docs/operations.md, "Upgrades and rollbacks").
    /// </summary>
    protected override void OnRecoveryFailure(Exception reason, object? message = null)
    {
        if (UnreadableHistory(reason) is { } unreadable)
            Log.Error(unreadable, "{PersistenceId} cannot recover: its journal holds an event or snapshot this release " +
                "cannot read, written by a newer release. It stays stopped rather than skip it (that would lose or " +
                "reorder history); run a release that reads it. {Detail}", PersistenceId, unreadable.Message);
        else
            base.OnRecoveryFailure(reason, message);
    }

    /// <summary>The deserialization failure behind a recovery failure, if that is what it was.</summary>
    internal static System.Runtime.Serialization.SerializationException? UnreadableHistory(Exception? reason) => reason switch
    {
        null => null,
        System.Runtime.Serialization.SerializationException unreadable => unreadable,
        AggregateException many => many.InnerExceptions.Select(UnreadableHistory).FirstOrDefault(e => e is not null),
        _ => UnreadableHistory(reason.InnerException),
    };

    /// <summary>What the journal has. Recovery builds it; afterwards only durable writes change it.</summary>
    protected TState Durable { get; set; }

    /// <summary><see cref="Durable"/> plus the writes in flight: what commands are decided against.</summary>
    protected TState Decided { get; private set; }

    /// <summary>Writes of this incarnation are on their way to the journal (<see cref="Decided"/> is ahead of <see cref="Durable"/>).</summary>
    protected bool WritesInFlight => _inFlight > 0;

    /// <summary>Stopping (asked to, or after a failed write): take no more commands that write.</summary>
    protected bool Stopping { get; private set; }

    protected abstract int SnapshotEvery { get; }

    /// <summary>
    /// When the shard stops this entity (see <see cref="StopWhenSettled"/>) and at least this many events were written
    /// since its last snapshot, it takes one first, so its next incarnation reads a snapshot and few events instead
    /// of replaying up to <see cref="SnapshotEvery"/>. 0: never.
    /// </summary>
    protected virtual int SnapshotBeforeStopAfter => 0;

    /// <summary>How long a stop waits for its snapshot (its turn included); past it the entity stops without (it is only a shortcut).</summary>
    protected virtual TimeSpan SnapshotBeforeStopTimeout => TimeSpan.FromSeconds(5);

    /// <summary>Such snapshots of the node's entities running at once (<see cref="SnapshotGate"/>); 0: no limit.</summary>
    protected virtual int SnapshotsBeforeStopPerNode => 0;

    /// <summary>
    /// A stop of a node that is up and not shutting down: a passivation or a rebalance. A shutdown's hand-off (which
    /// runs while the member is still Up, before it leaves) stops every entity at once within the shutdown's time, so
    /// it takes no snapshots (the next node replays instead).
    /// </summary>
    private bool NodeIsUp =>
        CoordinatedShutdown.Get(Context.System).ShutdownReason is null &&
        Cluster.Get(Context.System).SelfMember.Status is MemberStatus.Up or MemberStatus.WeaklyUp;

    /// <summary>The message the shard sends back to stop this entity after it asked to passivate.</summary>
    protected abstract object StopMessage { get; }

    protected abstract TState Apply(TState state, TEvent evt, long journalSeq);

    /// <summary>This incarnation's claim to be the journal's only writer.</summary>
    protected abstract TEvent Claim();

    protected abstract object ToSnapshot(TState state);

    /// <summary>An event of this incarnation is durable and in <see cref="Durable"/> (after its own callback).</summary>
    protected virtual void Written(TEvent evt)
    {
    }

    /// <summary>
    /// Writes of this incarnation may not be durable, or do not count, and it stops: answer whoever waits (the
    /// writes given their own failure answer in <see cref="Write"/> have had it already).
    /// </summary>
    protected abstract void WritesFailed(string reason);

    /// <summary>The answer a caller owed one (<see cref="Owe"/>) gets when this incarnation stops first: retry.</summary>
    protected abstract object StoppedBeforeAnswer(string reason);

    /// <summary>A caller this incarnation owes an answer after the writes in flight (<see cref="DeferAnswer"/>).</summary>
    protected sealed class Owed(IActorRef replyTo)
    {
        public IActorRef ReplyTo { get; } = replyTo;
    }

    /// <summary>
    /// Owe <paramref name="replyTo"/> an answer: if this incarnation stops before <see cref="Settle"/> (a stop, a
    /// failed write), its PostStop answers <see cref="StoppedBeforeAnswer"/>, instead of the caller's ask timing out.
    /// A stop ends the incarnation as soon as its writes are durable: the handlers deferred behind them, and what they
    /// tell the actor itself, come too late.
    /// </summary>
    protected Owed Owe(IActorRef replyTo) => Owe(new Owed(replyTo));

    /// <summary>Owe it again (settled, then put off once more).</summary>
    protected Owed Owe(Owed owed)
    {
        (_owed ??= []).Add(owed);
        return owed;
    }

    /// <summary>The owed answer is given now (true), or was given already at a stop (false: give none).</summary>
    protected bool Settle(Owed owed)
    {
        if (_owed?.Remove(owed) != true)
            return false;
        if (_owed.Count == 0)
            _owed = null; // nothing held in a mailbox that owes nothing
        return true;
    }

    /// <summary>Answer <paramref name="replyTo"/> once every write in flight is durable (or not), or at a stop before that.</summary>
    protected void DeferAnswer(IActorRef replyTo, Action<IActorRef> answer)
    {
        var owed = Owe(replyTo);
        DeferAsync(owed, _ =>
        {
            if (Settle(owed))
                answer(replyTo);
        });
    }

    /// <summary>
    /// Recovery is complete: writing starts after the journal's highest entry, and the events replayed since
    /// the snapshot at <paramref name="snapshotSeq"/> (0: none) count toward the next one, so a recovery never replays
    /// much more than <see cref="SnapshotEvery"/>, however little each incarnation writes.
    /// </summary>
    /// <param name="countReplayed">False when the recovery found stale events: then no snapshot may come before the
    /// writes that resolve them are durable (a snapshot above them would keep them from ever being decided again), so
    /// only this incarnation's own writes count, as they always did.</param>
    private void RecoveryDone(long snapshotSeq, bool countReplayed)
    {
        Decided = Durable;
        _nextJournalSeq = LastSequenceNr + 1;
        _eventsSinceSnapshot = countReplayed ? (int)Math.Min(int.MaxValue, LastSequenceNr - snapshotSeq) : 0;
    }

    /// <summary>
    /// The one place events are written: decided now, durable (and answered) only in <paramref name="onDurable"/>.
    /// PersistAsync keeps order and lets the journal batch writes of many commands.
    /// </summary>
    /// <param name="onFailed">Answers the writer if the write fails, is rejected, or comes after a rejected one
    /// (then it does not count); without it, <see cref="WritesFailed"/> must answer.</param>
    protected void Write(TEvent evt, Action<TEvent> onDurable, Action? onFailed = null)
    {
        if (_pauseGuard.Refusal is { } paused)
        {
            RefuseAfterPause(paused, onFailed);
            return;
        }
        if (!_claimed)
        {
            // The fence: the journal takes the claim only as its newest event, and then no other writer's events.
            // Pipelined with the event, so it costs one row in the same batch, once per incarnation that writes.
            _claimed = true;
            Append(Claim(), _ => { }, null);
        }
        Append(evt, onDurable, onFailed);
    }

    private void Append(TEvent evt, Action<TEvent> onDurable, Action? onFailed)
    {
        var journalSeq = _nextJournalSeq++;
        Decided = Apply(Decided, evt, journalSeq);
        _inFlight++;
        _onFailed.Enqueue(onFailed);
        var startedAt = System.Diagnostics.Stopwatch.GetTimestamp();
        PersistAsync(evt, e =>
        {
            MessagingMetrics.RecordJournalWrite(startedAt);
            _inFlight--;
            _onFailed.TryDequeue(out var onFailedInstead);
            if (_rejected)
            {
                // Durable, but after a hole: the next incarnation decides it again. Its writer was answered at the
                // rejection, or is now (a write appended since: nothing after the rejection counts).
                onFailedInstead?.Invoke();
                if (_inFlight == 0)
                    Settled();
                return;
            }
            if (LastSequenceNr != journalSeq)
                Log.Error("Journal position of an event of {PersistenceId} is {Actual}, expected {Expected}",
                    PersistenceId, LastSequenceNr, journalSeq);
            Durable = Apply(Durable, e, journalSeq);
            _eventsSinceSnapshot++;
            onDurable(e);
            Written(e);
            // In a handler LastSequenceNr is this event's position and Durable holds everything up to it,
            // so the snapshot matches its sequence number even with later writes in flight.
            if (_eventsSinceSnapshot >= SnapshotEvery && !_snapshotInProgress && !_incomplete)
            {
                _snapshotInProgress = true;
                _eventsSinceSnapshot = 0;
                SaveSnapshot(ToSnapshot(Durable));
            }
            if (_inFlight == 0)
                Settled();
        });
    }

    /// <summary>No write in flight: the two views are equal, so share one (half the memory), or stop if asked to.</summary>
    private void Settled()
    {
        Decided = Durable;
        if (_stopAsked)
            StopNowOrAfterSnapshot();
        else if (_idleStep == IdleStep.Writes)
            IdleWritesDone();
        else if (!Stopping)
            OnSettled();
    }

    /// <summary>Every write of this incarnation is durable (<see cref="Decided"/> is <see cref="Durable"/>), and it is not stopping.</summary>
    protected virtual void OnSettled()
    {
    }

    /// <summary>The snapshot a stop waited for is done (or given up): stop once no write is in flight.</summary>
    private void StopSnapshotDone()
    {
        _stopSnapshotDone = true;
        _awaitingTurn = false;
        if (SnapshotsBeforeStopPerNode > 0)
            LeaveGate(); // the next in line takes its turn now
        if (_inFlight == 0)
            Context.Stop(Self);
    }

    /// <summary>
    /// Stop once every write in flight is durable or refused (at once if none is in flight), after a snapshot if
    /// enough was written since the last one (<see cref="SnapshotBeforeStopAfter"/>). Only the shard's stop message
    /// asks this: an incarnation that wants to stop (a refused write) asks the shard to passivate it, so the shard
    /// buffers what arrives meanwhile instead of handing it to a stopped actor.
    /// </summary>
    protected void StopWhenSettled()
    {
        if (_stopAsked)
            return; // a second stop message (the shard's, after a passivation this incarnation asked for)
        Stopping = _stopAsked = true;
        // Idle and on its way out (or stopped by a rebalance or the governor meanwhile): the stop takes over. A place
        // in line stays the stop's (it enters again below, and moves up among the stops); a snapshot on its way, and
        // the turn it holds, are the stop's.
        _idleStep = IdleStep.None;
        if (_inFlight == 0)
            StopNowOrAfterSnapshot();
    }

    private void StopNowOrAfterSnapshot()
    {
        if (_stopAfterSnapshot)
        {
            // A write (a timer's) went out while the snapshot was on its way: stop once both are done.
            if (_stopSnapshotDone)
                Context.Stop(Self);
            return;
        }
        var worthIt = SnapshotBeforeStopAfter > 0 && _eventsSinceSnapshot >= SnapshotBeforeStopAfter;
        if (_snapshotInProgress || (worthIt && SnapshotAllowed))
        {
            _stopAfterSnapshot = true;
            _snapshotTimeout?.Cancel(); // an idle snapshot's: the stop's own deadline replaces it
            _snapshotTimeout = Context.System.Scheduler.ScheduleTellOnceCancelable(
                SnapshotBeforeStopTimeout, Self, SnapshotBeforeStopTimedOut.Instance, Self);
            // Stops come in bursts too (a rebalance, the governor's shed): they take their snapshots a few at a time,
            // each within its stop's timeout, ahead of idle ones in line (those have no deadline). A turn that comes
            // with less than a fifth of it left is passed on unused.
            if (!_snapshotInProgress && SnapshotsBeforeStopPerNode > 0 &&
                !EnterGate(urgent: true))
            {
                _awaitingTurn = true; // SnapshotTurn starts it, unless the timeout comes first
                _turnUsefulUntil = Environment.TickCount64 + (long)(SnapshotBeforeStopTimeout.TotalMilliseconds * 0.8);
                return;
            }
            if (!_snapshotInProgress)
                StartSnapshot();
            return;
        }
        Context.Stop(Self);
    }

    /// <summary>
    /// Whether a snapshot may be taken on the way out: nothing after a rejection counts, a paused node's incarnations
    /// may already run elsewhere, a recovery that is settling a hole does not hold the whole journal, and a shutdown's
    /// hand-off has no time for it.
    /// </summary>
    private bool SnapshotAllowed => !_rejected && !_incomplete && _pauseGuard.Refusal is null && NodeIsUp;

    /// <summary>
    /// The snapshot of <see cref="Durable"/>, at LastSequenceNr: what the journal holds, whatever is still in flight
    /// (a timer's write after the stop; the periodic snapshot relies on the same).
    /// </summary>
    private void StartSnapshot()
    {
        _snapshotInProgress = true;
        _eventsSinceSnapshot = 0;
        SaveSnapshot(ToSnapshot(Durable));
    }

    /// <summary>
    /// How long without a message through its shard before the entity passivates itself (<see cref="GoIdle"/>); zero:
    /// never (only the shard's stop, a rebalance or the memory governor stop it).
    /// </summary>
    protected virtual TimeSpan PassivateIdleAfter => TimeSpan.Zero;

    /// <summary>
    /// Idle passivation, which the entity carries out itself while it still serves: it journals what it keeps in memory
    /// only (<see cref="JournalBeforeIdle"/>), and once that is durable, if it wrote enough for a snapshot (as a stop
    /// would take one, <see cref="SnapshotBeforeStopAfter"/>), it waits for a turn at the node's
    /// <see cref="SnapshotGate"/> with no deadline, saves, waits for the older snapshots' deletion, and asks the shard
    /// to passivate it; else it asks at once. The shard's stop message then finds nothing worth a snapshot and stops it
    /// at once. So a cohort that went idle together takes every snapshot, however long the line: as a stop it had
    /// only its snapshot timeout (the shard holds the entity's messages meanwhile), and a soak's cohort of 2,500
    /// users skipped half of theirs and replayed their journals on the next wake (docs/benchmarks.md). A store that
    /// hangs holds the line for its circuit breaker's call timeout, then fails the save: the entity passivates without
    /// it. Any message through the shard calls the whole off.
    /// </summary>
    private void GoIdleIfStillIdle()
    {
        var idleAfter = (long)PassivateIdleAfter.TotalMilliseconds;
        if (idleAfter <= 0 || _idleStep != IdleStep.None || Stopping || Environment.TickCount64 - _lastTouched < idleAfter)
            return;
        _idleStep = IdleStep.Writes;
        JournalBeforeIdle();
        if (_inFlight == 0)
            IdleWritesDone();
    }

    /// <summary>What an idle entity keeps only in memory, journaled before its snapshot (confirmations, say).</summary>
    protected virtual void JournalBeforeIdle()
    {
    }

    /// <summary>Idle, and every write durable: take the snapshot (in line for a turn) or passivate.</summary>
    private void IdleWritesDone()
    {
        if (_snapshotInProgress)
        {
            _idleStep = IdleStep.Save; // a periodic snapshot on its way: its answer goes on from here
            return;
        }
        if (SnapshotBeforeStopAfter <= 0 || _eventsSinceSnapshot < SnapshotBeforeStopAfter || !SnapshotAllowed)
        {
            PassivateIdle();
            return;
        }
        if (SnapshotsBeforeStopPerNode > 0 && !EnterGate(urgent: false))
        {
            _idleStep = IdleStep.Line; // SnapshotTurn starts it
            return;
        }
        _idleStep = IdleStep.Save;
        StartIdleSnapshot();
    }

    /// <summary>How long an idle snapshot waits for the store's answer: three times the call timeout that ends a save.</summary>
    private static readonly TimeSpan IdleSnapshotTimeout = TimeSpan.FromSeconds(30);

    private void StartIdleSnapshot()
    {
        StartSnapshot();
        _snapshotTimeout?.Cancel();
        _snapshotTimeout = Context.System.Scheduler.ScheduleTellOnceCancelable(
            IdleSnapshotTimeout, Self, IdleSnapshotTimedOut.Instance, Self);
    }

    /// <summary>A turn now (true), or a place in line: among the stops with a deadline (<paramref name="urgent"/>), or behind everyone.</summary>
    private bool EnterGate(bool urgent)
    {
        if (!SnapshotGate.For(Context.System).Enter(Self, SnapshotsBeforeStopPerNode, urgent))
            return false;
        _holdsTurn = true;
        return true;
    }

    /// <summary>Gives back the turn it holds, or its place in line.</summary>
    private void LeaveGate()
    {
        _holdsTurn = false;
        SnapshotGate.For(Context.System).Leave(Self);
    }

    /// <summary>A message came through the shard: the entity is in use again, and gives its place in line back.</summary>
    private void NoLongerIdle()
    {
        LeaveIdleLine();
        _idleStep = IdleStep.None;
        _idleDeletesUpTo = -1;
        // A snapshot already on its way is saved as a periodic one would be (its answer gives the turn back).
    }

    private void PassivateIdle()
    {
        LeaveIdleLine();
        _idleStep = IdleStep.None;
        _idleDeletesUpTo = -1;
        if (!Stopping)
            Context.Parent.Tell(new Passivate(StopMessage));
    }

    private void LeaveIdleLine()
    {
        if (_idleStep == IdleStep.Line)
            LeaveGate();
    }

    /// <summary>Where an idle entity is on its way to passivate itself (<see cref="GoIdleIfStillIdle"/>).</summary>
    private enum IdleStep : byte
    {
        None,
        Writes,
        Line,
        Save,
        Delete,
    }

    IActorRef IGoverned.GovernedRef => _governedRef;

    long IGoverned.LastTouched => Volatile.Read(ref _lastTouched);

    long IGoverned.IdleAfterMs => (long)PassivateIdleAfter.TotalMilliseconds;

    long IGoverned.LastActive => Volatile.Read(ref _lastActive);

    bool IGoverned.ShedAsked
    {
        get => _shedAsked;
        set => _shedAsked = value;
    }

    protected override void PreStart()
    {
        _governedRef = Self;
        MemoryGovernor.Get(Context.System).Enter(this);
        base.PreStart();
    }

    protected override void PostStop()
    {
        if (_owed is { Count: > 0 })
        {
            var stopped = StoppedBeforeAnswer("it stopped (moving, restarting or after a failed write) before it could answer; retry");
            foreach (var owed in _owed)
                owed.ReplyTo.Tell(stopped);
            _owed = null;
        }
        _snapshotTimeout?.Cancel();
        MemoryGovernor.Get(Context.System).Leave(this);
        if (SnapshotsBeforeStopPerNode > 0)
            SnapshotGate.For(Context.System).Leave(Self);
        base.PostStop();
    }

    private sealed class SnapshotBeforeStopTimedOut
    {
        public static readonly SnapshotBeforeStopTimedOut Instance = new();
    }

    private sealed class IdleSnapshotTimedOut
    {
        public static readonly IdleSnapshotTimedOut Instance = new();
    }

    /// <summary>
    /// The journal has a hole above the newest claim that a previous incarnation's write still in flight could fill
    /// (see <see cref="ReplayAudit{TEvent}"/>). Claim first (after which nobody else can write), then recover again, from
    /// the journal as it is final below the claim. Commands wait for the claim and are then answered as for a move.
    /// </summary>
    private void ClaimThenRecoverAgain(long gap)
    {
        Log.Info("Journal of {PersistenceId} is missing entry {Gap} above its newest claim: claiming, then recovering again",
            PersistenceId, gap);
        if (_pauseGuard.Refusal is { } paused)
        {
            RefuseAfterPause(paused, null);
            return;
        }
        _claimed = Stopping = _incomplete = true;
        _nextJournalSeq++;
        Persist(Claim(), _ => Context.Parent.Tell(new Passivate(StopMessage)));
    }

    protected override void OnPersistFailure(Exception cause, object @event, long sequenceNr)
    {
        // Passivate first, so the shard buffers a retry sent after our answer for the next incarnation
        // instead of handing it to this one, which Akka stops after a failed write.
        Context.Parent.Tell(new Passivate(StopMessage));
        NoneCount($"the journal did not take the write: {cause.Message}");
        base.OnPersistFailure(cause, @event, sequenceNr); // logs and stops; the next message recovers from the journal
    }

    protected override void OnPersistRejected(Exception cause, object @event, long sequenceNr)
    {
        _inFlight--; // its handler will never run (its journal position stays unused)
        _onFailed.TryDequeue(out var onFailed);
        onFailed?.Invoke();
        // Decided already counts the rejected event, and so did every write decided after it: those are answered
        // as failed now, and not carried out when the journal takes them. Take no more commands and start again
        // from the journal. Passivate (not Stop) so the shard buffers what arrives meanwhile for the next incarnation.
        _rejected = true;
        // Once: a batch can have several rejected writes, and one passivation is enough.
        if (!Stopping)
            Context.Parent.Tell(new Passivate(StopMessage));
        Stopping = true;
        NoneCount($"the journal rejected the write: {cause.Message}");
        base.OnPersistRejected(cause, @event, sequenceNr);
        if (_inFlight == 0 && _stopAsked)
            Context.Stop(Self); // the stop message came while this write was in flight
    }

    /// <summary>
    /// This node was paused long enough for the majority to have started the entity elsewhere (<see cref="PauseGuard"/>):
    /// nothing of this incarnation counts from now on, as after a rejection, and it writes nothing more. It does not
    /// passivate: a next incarnation here would refuse too, and the node is leaving, whose hand-off stops this one.
    /// </summary>
    private void RefuseAfterPause(string reason, Action? onFailed)
    {
        if (!_rejected)
            Log.Warning("{PersistenceId} refuses to write: {Reason}", PersistenceId, reason);
        _rejected = Stopping = true;
        onFailed?.Invoke();
        NoneCount(reason);
    }

    /// <summary>No write still in flight counts: answer every writer as failed.</summary>
    private void NoneCount(string reason)
    {
        while (_onFailed.TryDequeue(out var onFailed))
            onFailed?.Invoke();
        WritesFailed(reason);
    }
}
