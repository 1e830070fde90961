using Akka.Actor;
using Akka.Cluster;
using Akka.Event;
using Akka.Persistence;
using Messaging.Actors.Delivery;
using Messaging.Messages;

namespace Messaging.Actors;

/// <summary>
/// One user's mailbox: the only writer of the user's messages and conversations. Glue: commands are decided by
/// <see cref="MailboxState"/>, delivery to other mailboxes by <see cref="DeliveryTracker"/>, and written the way
/// <see cref="SingleWriterActor{TState,TEvent}"/> writes; this class carries out what they decide.
/// </summary>
public sealed class MailboxActor : SingleWriterActor<MailboxState, IMailboxEvent>, IWithTimers
{
    private readonly string _userId;
    private readonly MailboxSettings _settings;
    private readonly IActorRef _mailboxes;
    private DeliveryTracker _delivery;
    // Allocated once: Run is on every send's path.
    private readonly Action<DeliveriesConfirmed> _persistConfirmed;
    // Only while recovering: what the replay learns about the journal's writers.
    private ReplayAudit? _audit = new();

    public MailboxActor(string userId, MailboxSettings settings, IActorRef mailboxes)
        : base(PersistenceIdFor(userId), MailboxState.Empty(userId, settings.Limits))
    {
        _userId = userId;
        _settings = settings;
        _mailboxes = mailboxes;
        _delivery = DeliveryTracker.Create(settings);
        _persistConfirmed = confirmed => Write(confirmed, _ => { });

        Recover<SnapshotOffer>(offer =>
        {
            Durable = MailboxState.FromSnapshot(_userId, _settings.Limits, (MailboxSnapshot)offer.Snapshot);
            _audit!.SnapshotOffered(offer.Metadata.SequenceNr);
        });
        Recover<IMailboxEvent>(evt =>
        {
            if (_audit!.Replayed(LastSequenceNr, ReplayedWriter, evt, Durable))
                Durable = Durable.Apply(evt, LastSequenceNr);
        });
        Recover<RecoveryCompleted>(_ =>
        {
            var outcome = _audit!.Complete(LastSequenceNr);
            _audit = null;
            RecoveryDone();
            if (outcome.UnsettledGap > 0)
            {
                ClaimThenRecoverAgain(outcome.UnsettledGap);
                return;
            }
            if (outcome.Stale.Count > 0)
                ResolveStaleWrites(outcome.Stale);
            Run(_delivery.Recovered(Durable));
        });

        Command<SendMessage>(HandleSend);
        Command<DeliverMessage>(HandleDelivery);
        Command<ConfirmDelivery>(confirmation => Run(_delivery.Confirmation(confirmation, Durable, Decided)));
        Command<DeliveryTimer>(timer => Run(_delivery.Tick(timer, Durable, Decided)));
        Command<GetConversations>(query => Sender.Tell(Durable.ListConversations(query)));
        Command<GetThread>(HandleThread);
        Command<GetMailboxStatus>(_ => Sender.Tell(new MailboxStatus(
            _userId, PersistenceId, LastSequenceNr, Durable.Conversations.Count, Durable.PendingDeliveries,
            Cluster.Get(Context.System).SelfAddress.ToString())));
        Command<StopMailbox>(_ =>
        {
            Run(_delivery.Stop(Decided));
            StopWhenSettled();
        });
    }

    public static string PersistenceIdFor(string userId) => $"mailbox-{userId}";

    public ITimerScheduler Timers { get; set; } = null!;

    protected override int SnapshotEvery => _settings.SnapshotEvery;

    protected override object StopMessage => StopMailbox.Instance;

    private long Now => _settings.Clock.GetUtcNow().ToUnixTimeMilliseconds();

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

    protected override MailboxState Apply(MailboxState state, IMailboxEvent evt, long journalSeq) => state.Apply(evt, journalSeq);

    protected override IMailboxEvent Claim() =>
        new WriterClaimed(((ExtendedActorSystem)Context.System).Provider.DefaultAddress.ToString(), Now);

    protected override object ToSnapshot(MailboxState state) => state.ToSnapshot();

    protected override void WritesFailed(string reason) => Run(_delivery.Failed(reason));

    private void HandleSend(SendMessage cmd)
    {
        if (Stopping)
        {
            Sender.Tell(SendResult.Failure(SendOutcome.Unavailable, "the mailbox is moving or restarting; retry"));
            return;
        }
        Run(_delivery.BeforeSend(cmd, Decided));
        switch (Decided.DecideSend(cmd, Now))
        {
            case SendDecision.Reply reply:
                Sender.Tell(reply.Result);
                break;
            case SendDecision.Duplicate when _delivery.IsWriting(cmd.ClientMessageId):
                _delivery = _delivery.Writing(cmd.ClientMessageId, Sender); // this retry gets the first write's answer
                break;
            case SendDecision.Duplicate duplicate:
                var original = duplicate.Original;
                Sender.Tell(new SendResult(SendOutcome.Duplicate, original.MessageId, original.ConversationId, original.ServerTimestamp, ""));
                break;
            case SendDecision.Store store:
                _delivery = _delivery.Writing(cmd.ClientMessageId, Sender);
                Write(store.Event, evt => Run(_delivery.Sent((MessageSent)evt, Durable, Stopping)));
                break;
        }
    }

    /// <summary>A copy from another mailbox: store it if it is next in line, and confirm what is durable.</summary>
    private void HandleDelivery(DeliverMessage delivery)
    {
        if (Stopping || delivery.RecipientId != _userId)
            return; // the sender resends until the next incarnation confirms
        var sender = delivery.Message.SenderId;
        var decision = Decided.DecideDelivery(delivery, Now);
        switch (decision)
        {
            case DeliveryDecision.AlreadyStored or DeliveryDecision.OutOfOrder:
                if (decision is DeliveryDecision.AlreadyStored)
                    MessagingMetrics.DuplicateDeliveries.Add(1);
                // Confirm what is durable; a copy still in flight is confirmed by its own write.
                var durable = Durable.Inbound.GetValueOrDefault(sender);
                if (durable > 0)
                    _mailboxes.Tell(new ConfirmDelivery(sender, _userId, durable));
                break;
            case DeliveryDecision.Store store:
                Write(store.Event, evt => Confirm((MessageReceived)evt));
                break;
        }
    }

    private void Confirm(MessageReceived received) =>
        _mailboxes.Tell(new ConfirmDelivery(received.Message.SenderId, _userId, received.ChannelSeq));

    private void HandleThread(GetThread query)
    {
        switch (Durable.PlanThread(query))
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

    /// <summary>Carry out what the delivery bookkeeping decided.</summary>
    private void Run(DeliveryStep step)
    {
        _delivery = step.Tracker;
        DeliveryEffects.CarryOut(step.Effects, _mailboxes, Timers, _persistConfirmed);
    }

    /// <summary>
    /// A journal written before writes were fenced holds events a paused node's old incarnation wrote after this
    /// mailbox had moved. Their writers answered as if stored, so what they stored is stored again now, in order,
    /// and <see cref="StaleWritesResolved"/> marks them done for every later recovery.
    /// </summary>
    private void ResolveStaleWrites(IReadOnlyList<(long Seq, IMailboxEvent Event)> stale)
    {
        var restored = 0;
        foreach (var (_, evt) in stale)
        {
            if (Decided.ResolveStale(evt, Now) is not { } again)
                continue;
            restored++;
            Write(again, e =>
            {
                if (e is MessageSent sent)
                    Run(_delivery.Restored(new DeliverMessage(sent.Message.RecipientIds[0], sent.ChannelSeq, sent.Message), Durable));
                else if (e is MessageReceived received)
                    Confirm(received);
            });
        }
        Write(new StaleWritesResolved(stale[^1].Seq), _ => { });
        Log.Warning("Journal of {PersistenceId} held {Count} events of an older writer after a newer one (journal " +
            "entries {First}..{Last}, written before writes were fenced); stored {Restored} of them again",
            PersistenceId, stale.Count, stale[0].Seq, stale[^1].Seq, restored);
    }
}
