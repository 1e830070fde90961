using Akka.Actor;
using Akka.Cluster;
using Akka.Cluster.Sharding;
using Akka.Event;
using Akka.Persistence;
using Messaging.Actors.Delivery;
using Messaging.Messages;

namespace Messaging.Actors;

/// <summary>
/// One user's mailbox: the only writer of the user's messages and conversations. Commands are decided against
/// <see cref="_decided"/> (which already includes writes in flight, so PersistAsync can pipeline without reusing a
/// seq or a stamp); reads and replies use <see cref="_durable"/>, which changes only once the journal has the write.
/// </summary>
public sealed class MailboxActor : ReceivePersistentActor, IWithTimers
{
    private readonly string _userId;
    private readonly MailboxSettings _settings;
    private readonly IActorRef _mailboxes;

    private MailboxState _durable;
    private MailboxState _decided;
    private DeliveryTracker _delivery;
    private int _inFlight;
    // Journal position the next event will get. Akka assigns positions when the batch is flushed but advances
    // LastSequenceNr only when a write is confirmed, so with writes in flight we count ourselves.
    private long _nextJournalSeq = 1;
    private int _eventsSinceSnapshot;
    private bool _snapshotInProgress;
    private bool _stopping;
    // This incarnation's WriterClaimed is written (or on its way) ahead of its first event.
    private bool _claimed;
    // Only while recovering: the writers seen in the journal and the writer uuid of the event being replayed.
    private ReplayAudit? _audit = new();
    private string? _replayedWriter;

    public MailboxActor(string userId, MailboxSettings settings, IActorRef mailboxes)
    {
        _userId = userId;
        _settings = settings;
        _mailboxes = mailboxes;
        _durable = _decided = MailboxState.Empty(userId, settings.Limits);
        _delivery = DeliveryTracker.Create(settings);
        PersistenceId = PersistenceIdFor(userId);

        Recover<SnapshotOffer>(offer =>
        {
            _durable = MailboxState.FromSnapshot(_userId, _settings.Limits, (MailboxSnapshot)offer.Snapshot);
            _audit!.SnapshotOffered(offer.Metadata.SequenceNr);
        });
        Recover<IMailboxEvent>(evt =>
        {
            if (_audit!.Replayed(LastSequenceNr, _replayedWriter, evt, _durable))
                _durable = _durable.Apply(evt, LastSequenceNr);
        });
        Recover<RecoveryCompleted>(_ =>
        {
            var outcome = _audit!.Complete(LastSequenceNr);
            _audit = null;
            _decided = _durable;
            _nextJournalSeq = LastSequenceNr + 1;
            if (outcome.UnsettledGap > 0)
            {
                ClaimThenRecoverAgain(outcome.UnsettledGap);
                return;
            }
            if (outcome.Stale.Count > 0)
                ResolveStaleWrites(outcome.Stale);
            Run(_delivery.Recovered(_durable));
        });

        Command<SendMessage>(HandleSend);
        Command<DeliverMessage>(HandleDelivery);
        Command<ConfirmDelivery>(confirmation => Run(_delivery.Confirmation(confirmation, _durable, _decided)));
        Command<DeliveryTimer>(timer => Run(_delivery.Tick(timer, _durable, _decided)));
        Command<GetConversations>(query => Sender.Tell(_durable.ListConversations(query)));
        Command<GetThread>(HandleThread);
        Command<GetMailboxStatus>(_ => Sender.Tell(new MailboxStatus(
            _userId, PersistenceId, LastSequenceNr, _durable.Conversations.Count, _durable.PendingDeliveries,
            Cluster.Get(Context.System).SelfAddress.ToString())));
        Command<StopMailbox>(_ => BeginStop());
        Command<SaveSnapshotSuccess>(success =>
        {
            _snapshotInProgress = false;
            DeleteSnapshots(new SnapshotSelectionCriteria(success.Metadata.SequenceNr - 1));
        });
        Command<SaveSnapshotFailure>(failure =>
        {
            _snapshotInProgress = false;
            Log.Warning(failure.Cause, "Snapshot of {PersistenceId} failed; will try again", PersistenceId);
        });
        Command<DeleteSnapshotsSuccess>(_ => { });
        Command<DeleteSnapshotsFailure>(failure =>
            Log.Warning(failure.Cause, "Old snapshots of {PersistenceId} not deleted", PersistenceId));
    }

    public static string PersistenceIdFor(string userId) => $"mailbox-{userId}";

    /// <summary>Recovery hands each event to the handlers without its writer: note it on the way in.</summary>
    protected override bool AroundReceive(Receive receive, object message)
    {
        if (message is ReplayedMessage replayed)
            _replayedWriter = replayed.Persistent.WriterGuid;
        return base.AroundReceive(receive, message);
    }

    protected override void PreStart()
    {
        MessagingMetrics.MailboxStarted();
        base.PreStart();
    }

    protected override void PostStop()
    {
        MessagingMetrics.MailboxStopped();
        base.PostStop();
    }

    public override string PersistenceId { get; }

    public ITimerScheduler Timers { get; set; } = null!;

    private long Now => _settings.Clock.GetUtcNow().ToUnixTimeMilliseconds();

    // ---------------- send ----------------

    private void HandleSend(SendMessage cmd)
    {
        if (_stopping)
        {
            Sender.Tell(SendResult.Failure(SendOutcome.Unavailable, "the mailbox is moving or restarting; retry"));
            return;
        }
        Run(_delivery.BeforeSend(cmd, _decided));
        switch (_decided.DecideSend(cmd, Now, _nextJournalSeq))
        {
            case SendDecision.Reply reply:
                Sender.Tell(reply.Result);
                break;
            case SendDecision.Duplicate when _delivery.IsWriting(cmd.ClientMessageId):
                _delivery = _delivery.Writing(cmd.ClientMessageId, Sender); // this retry gets the first write's answer
                break;
            case SendDecision.Duplicate duplicate:
                Sender.Tell(Result(SendOutcome.Duplicate, duplicate.Original));
                break;
            case SendDecision.Store store:
                _delivery = _delivery.Writing(cmd.ClientMessageId, Sender);
                Write(store.Event, (evt, _) => Run(_delivery.Sent((MessageSent)evt, _durable, _stopping)));
                break;
        }
    }

    /// <summary>Carry out what the delivery bookkeeping decided.</summary>
    private void Run(DeliveryStep step)
    {
        _delivery = step.Tracker;
        foreach (var effect in step.Effects)
        {
            switch (effect)
            {
                case DeliveryEffect.Send send:
                    _mailboxes.Tell(send.Copy);
                    break;
                case DeliveryEffect.Reply reply:
                    foreach (var caller in reply.Callers)
                        caller.Tell(reply.Result);
                    break;
                case DeliveryEffect.Persist persist:
                    Write(persist.Event, (_, _) => { });
                    break;
                case DeliveryEffect.StartTimer { Period: { } period } start:
                    Timers.StartPeriodicTimer(start.Timer, start.Timer, start.InitialDelay, period);
                    break;
                case DeliveryEffect.StartTimer start:
                    Timers.StartSingleTimer(start.Timer, start.Timer, start.InitialDelay);
                    break;
                case DeliveryEffect.CancelTimer cancel:
                    Timers.Cancel(cancel.Timer);
                    break;
            }
        }
    }

    // ---------------- delivery (recipient side) ----------------

    private void HandleDelivery(DeliverMessage delivery)
    {
        if (_stopping || delivery.RecipientId != _userId)
            return; // the sender resends until the next incarnation confirms
        var sender = delivery.Message.SenderId;
        var decision = _decided.DecideDelivery(delivery, Now);
        switch (decision)
        {
            case DeliveryDecision.AlreadyStored or DeliveryDecision.OutOfOrder:
                if (decision is DeliveryDecision.AlreadyStored)
                    MessagingMetrics.DuplicateDeliveries.Add(1);
                // Confirm what is durable; a copy still in flight is confirmed by its own write.
                var durable = _durable.Inbound.GetValueOrDefault(sender);
                if (durable > 0)
                    _mailboxes.Tell(new ConfirmDelivery(sender, _userId, durable));
                break;
            case DeliveryDecision.Store store:
                Write(store.Event, (evt, _) =>
                {
                    var received = (MessageReceived)evt;
                    _mailboxes.Tell(new ConfirmDelivery(received.Message.SenderId, _userId, received.ChannelSeq));
                });
                break;
        }
    }

    // ---------------- reads ----------------

    private void HandleThread(GetThread query)
    {
        switch (_durable.PlanThread(query))
        {
            case ThreadPlan.NotFound:
                Sender.Tell(new ConversationNotFound(query.ConversationId));
                break;
            case ThreadPlan.InMemory memory:
                Sender.Tell(memory.Page);
                break;
            case ThreadPlan.FromJournal plan:
                var journal = Akka.Persistence.Persistence.Instance.Apply(Context.System).JournalFor(JournalPluginId);
                Context.ActorOf(ThreadPageReader.Props(PersistenceId, journal, plan, Sender, _settings.JournalReadTimeout));
                break;
        }
    }

    // ---------------- writing ----------------

    /// <summary>
    /// The one place events are written: decided now, durable (and answered) only in the handler.
    /// PersistAsync keeps order and lets the journal batch writes of many commands.
    /// </summary>
    private void Write(IMailboxEvent evt, Action<IMailboxEvent, long> onDurable)
    {
        if (!_claimed)
        {
            // The fence: the journal takes the claim only as its newest event, and then no other writer's events.
            // Pipelined with the event, so it costs one row in the same batch, once per incarnation that writes.
            _claimed = true;
            Append(Claim(), (_, _) => { });
        }
        Append(evt, onDurable);
    }

    private void Append(IMailboxEvent evt, Action<IMailboxEvent, long> onDurable)
    {
        var journalSeq = _nextJournalSeq++;
        _decided = _decided.Apply(evt, journalSeq);
        _inFlight++;
        var startedAt = System.Diagnostics.Stopwatch.GetTimestamp();
        PersistAsync(evt, e =>
        {
            MessagingMetrics.RecordJournalWrite(startedAt);
            _inFlight--;
            if (LastSequenceNr != journalSeq)
                Log.Error("Journal position of an event of {PersistenceId} is {Actual}, expected {Expected}",
                    PersistenceId, LastSequenceNr, journalSeq);
            _durable = _durable.Apply(e, journalSeq);
            _eventsSinceSnapshot++;
            onDurable(e, journalSeq);
            // In a handler LastSequenceNr is this event's position and _durable holds everything up to it,
            // so the snapshot matches its sequence number even with later writes in flight.
            if (_eventsSinceSnapshot >= _settings.SnapshotEvery && !_snapshotInProgress)
            {
                _snapshotInProgress = true;
                _eventsSinceSnapshot = 0;
                SaveSnapshot(_durable.ToSnapshot());
            }
            if (_inFlight == 0)
                Settled();
        });
    }

    /// <summary>No write in flight: the two views are equal, so share one (half the memory), or stop if asked to.</summary>
    private void Settled()
    {
        _decided = _durable;
        if (_stopping)
            Context.Stop(Self);
    }

    private WriterClaimed Claim() =>
        new(((ExtendedActorSystem)Context.System).Provider.DefaultAddress.ToString(), Now);

    /// <summary>
    /// The journal has a hole above the newest claim that a previous incarnation's write still in flight could fill
    /// (see <see cref="ReplayAudit"/>). Claim first (after which nobody else can write), then recover again, from
    /// the journal as it is final below the claim. Commands wait for the claim and are then answered as for a move.
    /// </summary>
    private void ClaimThenRecoverAgain(long gap)
    {
        Log.Info("Journal of {PersistenceId} is missing entry {Gap} above its newest claim: claiming, then recovering again",
            PersistenceId, gap);
        _claimed = _stopping = true;
        _nextJournalSeq++;
        Persist(Claim(), _ => Context.Parent.Tell(new Passivate(StopMailbox.Instance)));
    }

    /// <summary>
    /// A journal written before writes were fenced holds events a paused node's old incarnation wrote after this
    /// mailbox had moved. Their writers answered as if stored, so what they stored is stored again now, in order,
    /// and <see cref="StaleWritesResolved"/> marks them done for every later recovery.
    /// </summary>
    private void ResolveStaleWrites(IReadOnlyList<(long Seq, IMailboxEvent Event)> stale)
    {
        var now = Now;
        var restored = 0;
        foreach (var (_, evt) in stale)
        {
            if (_decided.ResolveStale(evt, now) is not { } again)
                continue;
            restored++;
            Write(again, (e, _) =>
            {
                if (e is MessageSent sent)
                    Run(_delivery.Restored(new DeliverMessage(sent.Message.RecipientIds[0], sent.ChannelSeq, sent.Message), _durable));
                else if (e is MessageReceived received)
                    _mailboxes.Tell(new ConfirmDelivery(received.Message.SenderId, _userId, received.ChannelSeq));
            });
        }
        Write(new StaleWritesResolved(stale[^1].Seq), (_, _) => { });
        Log.Warning("Journal of {PersistenceId} held {Count} events of an older writer after a newer one (journal " +
            "entries {First}..{Last}, written before writes were fenced); stored {Restored} of them again",
            PersistenceId, stale.Count, stale[0].Seq, stale[^1].Seq, restored);
    }

    private void BeginStop()
    {
        _stopping = true;
        Run(_delivery.Stop(_decided));
        if (_inFlight == 0)
            Context.Stop(Self);
    }

    protected override void OnPersistFailure(Exception cause, object @event, long sequenceNr)
    {
        // Passivate first, so the shard buffers a retry sent after our answer for the next incarnation
        // instead of handing it to this one, which Akka stops after a failed write.
        Context.Parent.Tell(new Passivate(StopMailbox.Instance));
        Run(_delivery.Failed($"the journal did not take the write: {cause.Message}"));
        base.OnPersistFailure(cause, @event, sequenceNr); // logs and stops; the next message recovers from the journal
    }

    protected override void OnPersistRejected(Exception cause, object @event, long sequenceNr)
    {
        _inFlight--; // its handler will never run (its journal position stays unused)
        // _decided already counts the rejected event: take no more commands and start again from the journal.
        // Passivate (not Stop) so the shard buffers what arrives meanwhile for the next incarnation.
        _stopping = true;
        Context.Parent.Tell(new Passivate(StopMailbox.Instance));
        Run(_delivery.Failed($"the journal rejected the write: {cause.Message}"));
        base.OnPersistRejected(cause, @event, sequenceNr);
    }

    private static SendResult Result(SendOutcome outcome, SentRecord record) =>
        new(outcome, record.MessageId, record.ConversationId, record.ServerTimestamp, "");
}
