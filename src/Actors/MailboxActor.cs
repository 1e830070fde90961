using Akka.Actor;
using Akka.Cluster;
using Akka.Event;
using Akka.Persistence;
using Messaging.Actors.Delivery;
using Messaging.Messages;
using KnownTallies = System.Collections.Immutable.ImmutableDictionary<long, Messaging.Messages.Tally>;

namespace Messaging.Actors;

/// <summary>
/// One user's mailbox: the only writer of the user's messages and conversations. Glue: commands are decided by
/// <see cref="MailboxState"/>, delivery to other mailboxes by <see cref="DeliveryTracker"/>, and written the way
/// <see cref="SingleWriterActor{TState,TEvent}"/> writes; this class carries out what they decide.
/// </summary>
public sealed class MailboxActor : SingleWriterActor<MailboxState, IMailboxEvent>, IWithTimers, IDeliveryHost
{
    private readonly string _userId;
    private readonly MailboxSettings _settings;
    private readonly IActorRef _mailboxes;
    private readonly IActorRef _groups;
    private readonly DeliveryIndexRef _index;
    private DeliveryTracker _delivery;
    // Live event streams of this user (on any node), watched: true once caught up, from then on every change is pushed.
    // Both allocated on first use: most live mailboxes never have either.
    private Dictionary<IActorRef, bool>? _streams;
    // Thread-page readers still running (watched), at most MaxConcurrentJournalReads.
    private HashSet<IActorRef>? _readers;
    // Cold conversations (MailboxState.Cold.cs). The step in flight: every command waits in the stash until it is done.
    private ColdStep? _cold;
    // Conversations whose slot has a page they are not in (new ones), good until one of them is archived itself; and
    // one cold conversation read for a page of its thread or typing without being brought back, good until the next
    // archive changes the pages.
    private HashSet<string>? _notCold;
    private (string Id, ConversationState? State)? _looked;
    // A cold step that failed, for the command that waited for it (answered 503 once).
    private (string Id, string Reason)? _coldFailed;
    // The command that came round again being handled now (ReceiptsAgain, ThreadAgain, TallyRead), owed again if it is
    // stashed.
    private Owed? _again;
    // No archive before this (Environment.TickCount64): after a failed one, or when nothing could go.
    private long _archiveNotBefore;
    private const string ArchiveLaterTimer = "archive-later";
    // The conversations to archive next, oldest first, with the stamp they had (one walk of the list for many), and
    // whether an ArchiveNext is on its way (each archive waits behind the commands that waited for the last one).
    private Queue<(string Id, long Stamp)>? _archiveQueue;
    // The channels alone to archive next (MailboxState.PlanChannelArchive), as the people they are with.
    private Queue<string>? _channelQueue;
    private bool _archiveNextSent;
    // An ArchiveNext found writes in flight: it had its turn behind the queue, so the next settle archives at once
    // (under steady writes, waiting for a turn with nothing in flight could wait for ever).
    private bool _archiveOwed;
    // Conversations brought back lately and not changed since (a resend of a copy already stored, a group's receipt to
    // a member), with their stamp: not taken out again at once, at most RecentlyRestored of them, so memory holds at
    // most the bound plus these. One that changed is ordered by its new stamp like any other.
    // Both allocated on the first restore: most mailboxes never have one.
    private Queue<string>? _restoredOrder;
    private Dictionary<string, long>? _restored;
    private const int RecentlyRestored = 256;

    /// <summary>Conversations per catch-up page of a live stream (it asks for the next page from the last one's stamp).</summary>
    public const int CatchUpPage = 100;

    /// <summary>How long a typing notice lasts (API.md: 5 seconds).</summary>
    public static readonly TimeSpan TypingLasts = TimeSpan.FromSeconds(5);

    /// <param name="mailboxes">The mailbox shard region (copies, confirmations, typing).</param>
    /// <param name="groups">The group shard region (confirmations of group copies).</param>
    /// <param name="index">The delivery index that keeps this mailbox awake while its recipients do not confirm.</param>
    /// <param name="persistenceId">The user's (<see cref="PersistenceIdFor"/>) unless another is given: the wake warm-up's.</param>
    public MailboxActor(string userId, MailboxSettings settings, IActorRef mailboxes, IActorRef groups, DeliveryIndexRef index,
        PersistencePlugins? plugins = null, string? persistenceId = null)
        : base(persistenceId ?? PersistenceIdFor(userId), MailboxState.Empty(userId, settings.Limits), plugins)
    {
        _userId = userId;
        _settings = settings;
        _mailboxes = mailboxes;
        _groups = groups;
        _index = index;
        _delivery = DeliveryTracker.Create(settings);
    }

    protected override MailboxState FromSnapshot(object snapshot, long snapshotSeq) =>
        MailboxState.FromSnapshot(_userId, _settings.Limits, (MailboxSnapshot)snapshot, snapshotSeq);

    protected override bool Continues(MailboxState state, IMailboxEvent evt) => state.Continues(evt);

    // What the journal holds, resolved or not: pages trust events found by position only above it.
    protected override MailboxState StaleFound(MailboxState state, long upToJournalSeq) => state.StaleFound(upToJournalSeq);

    protected override void Recovered(IReadOnlyList<(long Seq, IMailboxEvent Event)> stale)
    {
        if (stale.Count > 0)
            ResolveStaleWrites(stale);
        Run(_delivery.Recovered(Durable));
        if (stale.Count == 0)
            OnSettled(); // a bound lowered since the last incarnation
    }

    protected override bool OnCommand(object message)
    {
        if (_cold is not null)
        {
            switch (message)
            {
                case ColdPageRead read:
                    ColdRead(read);
                    return true;
                case Terminated terminated when terminated.ActorRef.Equals(_cold.Reader):
                    ColdRead(new ColdPageRead(0, [], "the read of a cold page stopped"));
                    return true;
                default:
                    Stash.Stash(); // in order, after the step
                    return true;
            }
        }
        switch (message)
        {
            case ColdPageRead:
                return true; // a reader's late answer (its step failed when it stopped)
            case ArchiveNext:
                _archiveNextSent = false;
                ArchiveNextIfOver();
                return true;
            case SendMessage send:
                HandleSend(send);
                return true;
            case DeliverMessage delivery:
                HandleDelivery(delivery);
                return true;
            case DeliverReceipt receipt:
                HandleDelivery(receipt);
                return true;
            case DeliverGroupMessage group:
                HandleDelivery(group);
                return true;
            case MarkReceipts cmd:
                HandleReceipts(cmd, Sender, KnownTallies.Empty);
                return true;
            case ReceiptsAgain again:
                if (Settle(again.Owed))
                    Again(again.Owed, () => HandleReceipts(again.Command, again.Owed.ReplyTo, again.Known, deferred: true));
                return true;
            case ThreadAgain again:
                if (Settle(again.Owed))
                    Again(again.Owed, () => HandleThread(again.Query, again.Owed.ReplyTo));
                return true;
            case TallyRead read:
                // An event written before v1.1 has no tally: the marker moves, its counts stay where they were (0 never
                // lowers them). A failed read answers the caller, who may retry; it is not tried again here.
                if (!Settle(read.Owed))
                    return true;
                if (read.Reply is not ThreadPage { Messages: [var stored] })
                    read.Owed.ReplyTo.Tell(read.Reply as MailboxUnavailable ?? new MailboxUnavailable("the marker's message was not read"));
                else
                    Again(read.Owed, () => HandleReceipts(read.Command, read.Owed.ReplyTo, read.Known.SetItem(read.Seq, stored.Tally ?? default)));
                return true;
            case Subscribe subscribe:
                HandleSubscribe(subscribe);
                return true;
            case Terminated terminated:
                if (_readers?.Remove(terminated.ActorRef) != true)
                    _streams?.Remove(terminated.ActorRef);
                return true;
            case SendTyping typing:
                HandleTyping(typing);
                return true;
            case TypingNotice notice:
                TellLiveStreams(notice);
                return true;
            case ConfirmDelivery confirmation:
                Run(_delivery.Confirmation(confirmation, Durable, Decided));
                return true;
            case DeliveryTimer timer:
                // Redelivery goes round through the shard region, which counts it as activity: a mailbox with copies
                // still to deliver is not passivated, and keeps delivering with no action of its user.
                if (timer == DeliveryTimer.Redelivery)
                    _mailboxes.Tell(new KeepDelivering(_userId));
                else
                    Run(_delivery.Tick(timer, Durable, Decided));
                return true;
            case KeepDelivering:
                Run(_delivery.Tick(DeliveryTimer.Redelivery, Durable, Decided));
                return true;
            case WakeForDelivery:
                Run(_delivery.Woken(Durable));
                return true;
            case GetConversations query:
                Sender.Tell(Durable.ListConversations(query));
                return true;
            case GetThread query:
                HandleThread(query, Sender);
                return true;
            case GetMailboxStatus status:
                Sender.Tell(new MailboxStatus(
                    _userId, PersistenceId, LastSequenceNr, Durable.Conversations.Count, Durable.PendingDeliveries,
                    Cluster.Get(Context.System).SelfAddress.ToString(), Durable.OpeningWaitMs(status.OpeningConversationId, Now),
                    Durable.Cold.Count, Durable.LoneChannels().Count));
                return true;
            case StopMailbox:
                Run(_delivery.Stop(Decided));
                StopWhenSettled();
                return true;
            default:
                return false;
        }
    }

    void IDeliveryHost.PersistConfirmed(DeliveriesConfirmed confirmed) => Write(confirmed, _ => { });

    void IDeliveryHost.MarkPending(bool pending) => _index.Mark(_userId, pending);

    public static string PersistenceIdFor(string userId) => $"mailbox-{userId}";

    public ITimerScheduler Timers { get; set; } = null!;

    protected override int SnapshotEvery => _settings.SnapshotEvery;

    protected override int SnapshotBeforeStopAfter => _settings.SnapshotOnPassivationAfter;

    protected override TimeSpan SnapshotBeforeStopTimeout => _settings.SnapshotOnPassivationTimeout;

    protected override int SnapshotsBeforeStopPerNode => _settings.MaxPassivationSnapshotsPerNode;

    protected override TimeSpan PassivateIdleAfter => _settings.PassivateIdleAfter;

    // The confirmations known only in memory, so the idle snapshot holds them (a stop journals them too).
    protected override void JournalBeforeIdle() => Run(_delivery.MakeRoom(Decided));

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

    protected override object StoppedBeforeAnswer(string reason) => new MailboxUnavailable($"the mailbox of {_userId}: {reason}");

    /// <summary>Every durable change of a conversation goes to the streams that are caught up, in journal order.</summary>
    protected override void Written(IMailboxEvent evt)
    {
        if (_streams is { Count: > 0 } && Durable.ChangeFor(evt) is { } change)
            TellLiveStreams(new LiveChanges([change], CaughtUp: true, Durable.LastStamp));
    }

    private void TellLiveStreams(object message)
    {
        if (_streams is null)
            return;
        foreach (var (stream, live) in _streams)
        {
            if (live)
                stream.Tell(message);
        }
    }

    /// <summary>
    /// A stream asks for what changed after its last id. A new one is counted against the per-user limit and
    /// watched; it gets a page of catch-up, and once a page is the last it is live (pushed every change from then
    /// on, with nothing between the page and the first push: this actor does one thing at a time). A live stream
    /// asking again is its heartbeat: everything after its id is already on its way to it.
    /// </summary>
    private void HandleSubscribe(Subscribe subscribe)
    {
        var stream = Sender;
        _streams ??= [];
        if (!_streams.TryGetValue(stream, out var live))
        {
            if (_streams.Count >= _settings.MaxStreamsPerUser)
            {
                stream.Tell(new SubscriptionRefused(
                    $"{_userId} already has {_streams.Count} live event streams open (the limit is {_settings.MaxStreamsPerUser})"));
                return;
            }
            Context.Watch(stream);
        }
        if (live)
        {
            stream.Tell(new LiveChanges([], CaughtUp: true, Durable.LastStamp));
            return;
        }
        var page = Durable.ChangesAfter(subscribe.AfterStamp, CatchUpPage);
        _streams[stream] = page.CaughtUp;
        stream.Tell(page);
    }

    /// <summary>
    /// Move the owner's markers: stored like a message (the receipt's copy rides the channel to the other
    /// participant), answered with the conversation once durable. A marker before the in-memory window has its
    /// tally read from the journal first, then the command is decided again.
    /// </summary>
    /// <param name="known">Tallies read from the journal for this command so far (a command has two markers at most,
    /// so at most two reads).</param>
    private void HandleReceipts(MarkReceipts cmd, IActorRef replyTo, KnownTallies known, bool deferred = false)
    {
        if (Stopping)
        {
            replyTo.Tell(new MailboxUnavailable("the mailbox is moving or restarting; retry"));
            return;
        }
        switch (BeforeCold(Decided.ColdNeededFor(cmd, _notCold), restore: true))
        {
            case ColdGate.Wait:
                return;
            case ColdGate.Failed failed:
                replyTo.Tell(new MailboxUnavailable(failed.Reason));
                return;
        }
        switch (Decided.DecideReceipts(cmd, Now, seq => known.TryGetValue(seq, out var tally) ? tally : null))
        {
            case ReceiptDecision.NotFound:
                replyTo.Tell(new ConversationNotFound(cmd.ConversationId));
                break;
            case ReceiptDecision.Refused refused:
                replyTo.Tell(new ReceiptRefused(refused.Detail));
                break;
            case ReceiptDecision.Full full:
                replyTo.Tell(new MailboxUnavailable(full.Detail));
                break;
            case ReceiptDecision.Unchanged:
                // Decided may hold the markers thanks to a write still in flight: answer once that is durable, and
                // only if it became durable (a rejected write runs this too, and stored nothing).
                DeferAnswer(replyTo, _ =>
                {
                    var durable = Durable.Conversations.GetValueOrDefault(cmd.ConversationId);
                    replyTo.Tell(durable is not null
                        && durable.ReadUpToSeq >= (cmd.ReadUpToSeq ?? 0)
                        && durable.DeliveredUpToSeq >= Math.Max(cmd.DeliveredUpToSeq ?? 0, cmd.ReadUpToSeq ?? 0)
                            ? new ConversationAnswer(durable.ToSummary(_userId))
                            : new MailboxUnavailable("the receipt's write did not complete; retry"));
                });
                break;
            case ReceiptDecision.ReadTally read:
                // Read through the durable view's skip list: the decided one may point at writes still in flight.
                var conversation = Durable.Conversations.GetValueOrDefault(cmd.ConversationId);
                if (conversation?.TallyAt(read.Seq) is { } inMemory)
                    HandleReceipts(cmd, replyTo, known.SetItem(read.Seq, inMemory));
                else if (conversation is null && !deferred && Decided.Conversations.ContainsKey(cmd.ConversationId))
                    // Back from cold in a write still in flight (a conversation back from cold may hold no window, so
                    // its markers read their tallies): decided again once that write is durable, as a command of its
                    // own, so that it waits behind a cold step started meanwhile like any other. Owed from now on: a
                    // stop meanwhile ends the incarnation before either runs.
                {
                    var owed = Owe(replyTo);
                    DeferAsync(cmd, _ => Self.Tell(new ReceiptsAgain(cmd, owed, known)));
                }
                else if (conversation is null || read.Seq > conversation.LastSeq)
                    replyTo.Tell(new MailboxUnavailable("the marked message is still being written; retry"));
                else
                {
                    var plan = new ThreadPlan.FromJournal(conversation.ConversationId, read.Seq, read.Seq, conversation.LastSeq, conversation.Anchors, Durable.StaleUpTo);
                    // Owed until the read comes back: a stop meanwhile ends the incarnation before it does.
                    var owed = Owe(replyTo);
                    ReadFromJournal(plan, Self, reply => new TallyRead(cmd, owed, read.Seq, known, reply));
                }
                break;
            case ReceiptDecision.Store store:
                Write(store.Event, evt =>
                {
                    var marked = (ReceiptsMarked)evt;
                    replyTo.Tell(new ConversationAnswer(Durable.Conversations[marked.ConversationId].ToSummary(_userId)));
                    foreach (var copy in Durable.CopiesOf(marked))
                        Run(_delivery.Restored(copy, Durable));
                }, () => replyTo.Tell(new MailboxUnavailable("the receipt's write did not complete; retry")));
                break;
        }
    }

    /// <summary>
    /// Handle a command that came round again (owed, and settled just now): if it waits in the stash for a cold step
    /// (<see cref="BeforeCold"/>), it is owed again until it comes out.
    /// </summary>
    private void Again(Owed owed, Action handle)
    {
        _again = owed;
        try
        {
            handle();
        }
        finally
        {
            _again = null;
        }
    }

    /// <summary>A marker decided again once the conversation it needs is durable (see <see cref="HandleReceipts"/>).</summary>
    private sealed record ReceiptsAgain(MarkReceipts Command, Owed Owed, KnownTallies Known);

    /// <summary>A thread query answered again once the conversation it needs is durable (see <see cref="HandleThread"/>).</summary>
    private sealed record ThreadAgain(GetThread Query, Owed Owed);

    /// <summary>The tally of one message read from the journal for a receipt (<see cref="Reply"/> is the page or the failure).</summary>
    private sealed record TallyRead(MarkReceipts Command, Owed Owed, long Seq, KnownTallies Known, object Reply);

    /// <summary>Typing goes to the other participants' mailboxes, which pass it to their live streams. Never stored.</summary>
    private void HandleTyping(SendTyping typing)
    {
        var conversation = Durable.Conversations.GetValueOrDefault(typing.ConversationId);
        if (conversation is null)
        {
            switch (BeforeCold(typing.ConversationId, restore: false))
            {
                case ColdGate.Wait:
                    return;
                case ColdGate.Failed failed:
                    Sender.Tell(new MailboxUnavailable(failed.Reason));
                    return;
            }
            conversation = Looked(typing.ConversationId);
        }
        if (conversation is null)
        {
            Sender.Tell(new ConversationNotFound(typing.ConversationId));
            return;
        }
        if (!conversation.ParticipantIds.Contains(_userId))
        {
            // A group this user left or was removed from: their copy stays, their voice in it does not.
            Sender.Tell(new GroupRefused(GroupRefusal.Forbidden, $"{_userId} is no longer a member of {typing.ConversationId}"));
            return;
        }
        var until = Now + (long)TypingLasts.TotalMilliseconds;
        foreach (var other in conversation.ParticipantIds)
        {
            if (other != _userId)
                _mailboxes.Tell(new TypingNotice(other, conversation.ConversationId, _userId, until));
        }
        Sender.Tell(new TypingSent(until));
    }

    private void HandleSend(SendMessage cmd)
    {
        if (Stopping)
        {
            Sender.Tell(SendResult.Failure(SendOutcome.Unavailable, "the mailbox is moving or restarting; retry"));
            return;
        }
        switch (BeforeCold(Decided.ColdNeededFor(cmd, _notCold), restore: true))
        {
            case ColdGate.Wait:
                return;
            case ColdGate.Failed failed:
                Sender.Tell(SendResult.Failure(SendOutcome.Unavailable, failed.Reason));
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
    private void HandleDelivery(IChannelCopy delivery)
    {
        if (Stopping || delivery.RecipientId != _userId)
            return; // the sender resends until the next incarnation confirms
        if (BeforeCold(Decided.ColdNeededFor(delivery, _notCold), restore: true) is not ColdGate.Go)
            return; // it waits for its conversation, or the sender resends it
        var sender = delivery.SenderId;
        var decision = Decided.DecideDelivery(delivery, Now);
        switch (decision)
        {
            case DeliveryDecision.AlreadyStored or DeliveryDecision.OutOfOrder:
                if (decision is DeliveryDecision.AlreadyStored)
                    MessagingMetrics.DuplicateDelivery();
                // Confirm what is durable; a copy still in flight is confirmed by its own write. A channel whose position
                // is on its way back from cold (its restore in flight) is confirmed once that is durable.
                var durable = Durable.Inbound.GetValueOrDefault(sender);
                if (durable > 0)
                    ConfirmUpTo(sender, durable);
                else if (Decided.Inbound.GetValueOrDefault(sender) > 0)
                    DeferAsync(sender, s =>
                    {
                        if (Durable.Inbound.GetValueOrDefault(s) is var known and > 0)
                            ConfirmUpTo(s, known);
                    });
                break;
            case DeliveryDecision.Store store:
                Write(store.Event, Confirm);
                break;
        }
    }

    /// <summary>A copy from another mailbox is durable here: its sender may stop resending it.</summary>
    private void Confirm(IMailboxEvent stored)
    {
        switch (stored)
        {
            case MessageReceived received when Ids.IsGroup(received.Message.ConversationId):
                ConfirmUpTo(received.Message.ConversationId, received.ChannelSeq);
                break;
            case MessageReceived received:
                ConfirmUpTo(received.Message.SenderId, received.ChannelSeq);
                break;
            case ReceiptReceived receipt:
                ConfirmUpTo(receipt.FromUserId, receipt.ChannelSeq);
                break;
        }
    }

    /// <summary>Tell the channel's sender (a mailbox, or a group) that everything up to <paramref name="upTo"/> is stored here.</summary>
    private void ConfirmUpTo(string channel, long upTo)
    {
        if (Ids.IsGroup(channel))
            _groups.Tell(new ConfirmGroupDelivery(channel, _userId, upTo));
        else
            _mailboxes.Tell(new ConfirmDelivery(channel, _userId, upTo));
    }

    /// <param name="deferred">Called again once the writes in flight at the first call were durable (or not).</param>
    private void HandleThread(GetThread query, IActorRef replyTo, bool deferred = false)
    {
        ConversationState? cold = null;
        if (!Durable.Conversations.ContainsKey(query.ConversationId))
        {
            if (!deferred && Decided.Conversations.ContainsKey(query.ConversationId))
            {
                // Back from cold, or new, in a write still in flight: answer once it is durable.
                DeferAnswer(replyTo, r => HandleThread(query, r, deferred: true));
                return;
            }
            if (deferred && Decided.MayBeCold(query.ConversationId) && Looked(query.ConversationId) is null)
            {
                // In a deferred handler the message being processed is the journal's answer, not this query: it
                // cannot be stashed, so the query comes round again (owed: a stop meanwhile answers it).
                Self.Tell(new ThreadAgain(query, Owe(replyTo)));
                return;
            }
            switch (BeforeCold(query.ConversationId, restore: false))
            {
                case ColdGate.Wait:
                    return;
                case ColdGate.Failed failed:
                    replyTo.Tell(new MailboxUnavailable(failed.Reason));
                    return;
            }
            cold = Looked(query.ConversationId);
        }
        switch (Durable.PlanThread(query, cold))
        {
            case ThreadPlan.NotFound:
                replyTo.Tell(new ConversationNotFound(query.ConversationId));
                break;
            case ThreadPlan.InMemory memory:
                replyTo.Tell(memory.Page);
                break;
            case ThreadPlan.FromJournal plan:
                ReadFromJournal(plan, replyTo);
                break;
        }
    }

    /// <summary>
    /// Messages before the in-memory window, read beside the mailbox (history does not change), by at most
    /// MaxConcurrentJournalReads readers at once: one more is refused (503, the client retries later).
    /// </summary>
    private void ReadFromJournal(ThreadPlan.FromJournal plan, IActorRef replyTo, Func<object, object>? wrap = null)
    {
        void Refuse(string reason)
        {
            var refused = new MailboxUnavailable(reason);
            replyTo.Tell(wrap is null ? refused : wrap(refused));
        }

        _readers ??= [];
        if (_readers.Count >= _settings.MaxConcurrentJournalReads)
        {
            Refuse($"{_readers.Count} older pages of {_userId} are being read already (the limit is {_settings.MaxConcurrentJournalReads}); retry");
            return;
        }
        var gate = JournalReadGate.For(Context.System);
        if (!gate.TryEnter(_settings.MaxJournalReadersPerNode))
        {
            Refuse($"this node reads {gate.Running} older pages already (the limit is {_settings.MaxJournalReadersPerNode}); retry");
            return;
        }
        var journal = Akka.Persistence.Persistence.Instance.Apply(Context.System).JournalFor(JournalPluginId);
        var reader = Context.ActorOf(ThreadPageReader.Props(
            PersistenceId, journal, plan, replyTo, _settings.JournalReadTimeout, _settings.JournalReadMaxRange, wrap,
            _settings.WalkInBlocks, _settings.GuessPositions, gate));
        _readers.Add(Context.Watch(reader));
    }

    /// <summary>
    /// A reader that fails stops (its requester gets 503 from its PostStop): restarted, it would read again from the
    /// start with a new deadline, and give its place at the node's gate back twice.
    /// </summary>
    protected override SupervisorStrategy SupervisorStrategy() => StopReaders;

    private static readonly SupervisorStrategy StopReaders = new OneForOneStrategy(Decider.From(Directive.Stop));

    // ---------------- cold conversations ----------------

    /// <summary>What a command that needs a conversation does about it being cold.</summary>
    private abstract record ColdGate
    {
        /// <summary>In memory, or not cold (new): decide it now.</summary>
        public sealed record Go : ColdGate;

        /// <summary>Stashed: its page is being read, and it comes back after that.</summary>
        public sealed record Wait : ColdGate;

        /// <summary>Its page could not be read: 503, retry.</summary>
        public sealed record Failed(string Reason) : ColdGate;

        public static readonly ColdGate Proceed = new Go();
        public static readonly ColdGate Waiting = new Wait();
    }

    private enum ColdStepKind : byte
    {
        /// <summary>Bring it back (a write needs it).</summary>
        Restore,

        /// <summary>Read it for a page of its thread or a typing notice, leaving it cold.</summary>
        Look,

        /// <summary>Take it out of memory into its page.</summary>
        Archive,

        /// <summary>Take the channel alone with <see cref="ColdStep.Peer"/> out of memory into the page of their 1:1 id.</summary>
        ArchiveChannel,
    }

    /// <summary>A step in flight: its page being read by <see cref="Reader"/>, then (an archive) its write (Reader null).</summary>
    private sealed class ColdStep(string conversationId, ColdStepKind kind, IActorRef? reader, string? peer)
    {
        public string ConversationId { get; } = conversationId;
        public ColdStepKind Kind { get; } = kind;
        public IActorRef? Reader { get; set; } = reader;

        /// <summary>For <see cref="ColdStepKind.ArchiveChannel"/>: whom the channel is with.</summary>
        public string? Peer { get; } = peer;
    }

    /// <summary>
    /// Before a command that needs <paramref name="conversationId"/>: go on if it is in memory or cannot be cold; else
    /// the command waits in the stash while its page is read (and it is brought back, for <paramref name="restore"/>),
    /// and comes back after that, in order. A read that failed answers the command that waited for it once.
    /// </summary>
    private ColdGate BeforeCold(string? conversationId, bool restore)
    {
        if (conversationId is null || !Decided.MayBeCold(conversationId) || _notCold?.Contains(conversationId) == true)
            return ColdGate.Proceed;
        if (!restore && _looked?.Id == conversationId)
            return ColdGate.Proceed;
        if (_coldFailed is { } failed && failed.Id == conversationId)
        {
            _coldFailed = null;
            return new ColdGate.Failed(failed.Reason);
        }
        Stash.Stash();
        if (_again is not null)
            Owe(_again); // a stop before it comes out of the stash answers it
        StartColdStep(conversationId, restore ? ColdStepKind.Restore : ColdStepKind.Look, Decided.Cold.PageOf(conversationId));
        return ColdGate.Waiting;
    }

    /// <summary>A cold conversation read without bringing it back (null: it is not cold, it does not exist).</summary>
    private ConversationState? Looked(string conversationId) =>
        _looked is { } looked && looked.Id == conversationId ? looked.State : null;

    private void StartColdStep(string conversationId, ColdStepKind kind, long pageSeq, string? peer = null)
    {
        IActorRef? reader = null;
        if (pageSeq > 0)
        {
            var journal = Akka.Persistence.Persistence.Instance.Apply(Context.System).JournalFor(JournalPluginId);
            reader = Context.Watch(Context.ActorOf(ColdPageReader.Props(PersistenceId, journal, pageSeq, Self, _settings.JournalReadTimeout)));
        }
        _cold = new ColdStep(conversationId, kind, reader, peer);
        if (reader is null)
            ColdRead(new ColdPageRead(0, [], null)); // an archive into a slot with no page yet: nothing to read
    }

    /// <summary>The page of the step in flight is read (or not): carry the step out, and let the stash go.</summary>
    private void ColdRead(ColdPageRead read)
    {
        var step = _cold!;
        if (step.Reader is { } reader)
        {
            Context.Unwatch(reader);
            step.Reader = null;
        }
        if (read.Failure is { } failure)
        {
            Log.Warning("Cold page {PageSeq} of {PersistenceId} not read for {ConversationId}: {Failure}",
                read.PageSeq, PersistenceId, step.ConversationId, failure);
            MessagingMetrics.ColdReadFailed();
            if (step.Kind is ColdStepKind.Archive or ColdStepKind.ArchiveChannel)
                _archiveNotBefore = Environment.TickCount64 + 5_000;
            else
                _coldFailed = (step.ConversationId, $"the conversation's page could not be read ({failure}); retry");
            ColdStepDone();
            return;
        }
        switch (step.Kind)
        {
            case ColdStepKind.Restore when Decided.Restore(step.ConversationId, read.Pages) is { } restored:
                // Decided has it at once: the command that waited is decided on it, pipelined behind this write.
                Write(restored, _ => MessagingMetrics.ConversationRestored());
                KeptAsRestored(step.ConversationId, restored.Entry.Conversation.LastUpdatedTimestamp);
                break;
            case ColdStepKind.Restore:
                NotCold(step.ConversationId);
                break;
            case ColdStepKind.Look:
                // A channel alone is no conversation (its thread is not found), but it is cold: a write brings it back.
                var entry = Decided.FindCold(step.ConversationId, read.Pages);
                _looked = (step.ConversationId, entry is null || entry.ChannelOnly ? null : ConversationState.FromSnapshot(entry.Conversation));
                if (entry is null)
                    NotCold(step.ConversationId);
                break;
            case ColdStepKind.ArchiveChannel when !Stopping && Decided.IsChannelArchivable(step.Peer!):
                if (!TryPageToArchiveInto(read, step.ConversationId, out var into))
                    break;
                var peer = step.Peer!;
                if (Decided.FindCold(step.ConversationId, read.Pages) is { ChannelOnly: false } conversation)
                {
                    // Their 1:1 conversation is cold while part of its channel is in memory (a write decided on its
                    // restore, which the journal then rejected): bring it back, whole, instead.
                    Write(new ConversationRestored(conversation), _ => MessagingMetrics.ConversationRestored());
                    break;
                }
                Write(Decided.ArchiveChannel(peer, into), _ =>
                {
                    MessagingMetrics.ChannelArchived();
                    _delivery = _delivery.Forget(peer);
                    ColdStepDone();
                }, ColdStepDone);
                return;
            case ColdStepKind.Archive when !Stopping && Decided.Conversations.ContainsKey(step.ConversationId):
                if (!TryPageToArchiveInto(read, step.ConversationId, out var page))
                    break;
                // The commands wait until the pages are written: a lookup meanwhile would read the page before it.
                // A 1:1 conversation's channel leaves with it, and delivery forgets it; a group's channel is the group's.
                var other = Ids.IsGroup(step.ConversationId)
                    ? null
                    : Decided.Conversations[step.ConversationId].ParticipantIds.FirstOrDefault(p => p != _userId);
                Write(Decided.Archive(step.ConversationId, page), _ =>
                {
                    MessagingMetrics.ConversationArchived();
                    if (other is not null)
                        _delivery = _delivery.Forget(other);
                    ColdStepDone();
                }, ColdStepDone);
                return;
        }
        ColdStepDone();
    }

    /// <summary>
    /// The page an archive of <paramref name="conversationId"/> goes into: its slot's page, as read, or none (a new
    /// page); false if the event read holds no page for it (logged, archives paused for a minute).
    /// </summary>
    private bool TryPageToArchiveInto(ColdPageRead read, string conversationId, out ColdPage? page)
    {
        page = read.PageSeq == 0 ? null : ColdIndex.PageFor(read.Pages, ColdIndex.Digest(conversationId));
        if (read.PageSeq == 0 || page is not null)
            return true;
        Log.Error("Cold page {PageSeq} of {PersistenceId} has no page for {ConversationId}", read.PageSeq, PersistenceId, conversationId);
        _archiveNotBefore = Environment.TickCount64 + 60_000;
        return false;
    }

    /// <summary>
    /// Its slot's page was read and it is not there: a new conversation, until it is archived itself (nothing else
    /// makes a conversation cold). At most <see cref="NotColdKept"/> are remembered: more than a group's receipt has
    /// targets (its members, or the senders in its window: Messaging:Groups:MaxMembers and
    /// Messaging:Mailbox:RecentPerConversation are at most as many), so one command's lookups, forgotten once midway, end.
    /// </summary>
    private void NotCold(string conversationId)
    {
        _notCold ??= new HashSet<string>(StringComparer.Ordinal);
        if (_notCold.Count >= NotColdKept)
            _notCold.Clear();
        _notCold.Add(conversationId);
    }

    public const int NotColdKept = 4_096;

    /// <summary>Brought back at <paramref name="stamp"/>: kept from going cold again at once (the newest RecentlyRestored).</summary>
    private void KeptAsRestored(string conversationId, long stamp)
    {
        _restored ??= new Dictionary<string, long>(StringComparer.Ordinal);
        _restoredOrder ??= new Queue<string>();
        if (!_restored.ContainsKey(conversationId))
        {
            _restoredOrder.Enqueue(conversationId);
            if (_restoredOrder.Count > RecentlyRestored)
                _restored.Remove(_restoredOrder.Dequeue());
        }
        _restored[conversationId] = stamp;
    }

    private void ColdStepDone()
    {
        if (_cold?.Kind is ColdStepKind.Archive or ColdStepKind.ArchiveChannel)
        {
            // Only the conversation archived became cold: what else was found absent from its page still is (a
            // group's receipt to every member would otherwise read their pages again after every archive).
            _notCold?.Remove(_cold.ConversationId);
            _looked = null;
        }
        _cold = null;
        Stash.UnstashAll();
    }

    /// <summary>
    /// Every write is durable: with more conversations in memory than the bound, the next archive goes behind whatever
    /// waits in the mailbox (the commands the last step held back first), so archiving many never starves them.
    /// </summary>
    protected override void OnSettled()
    {
        if (_archiveNextSent || !OverBound())
            return;
        if (_archiveOwed)
        {
            _archiveOwed = false;
            ArchiveNextIfOver();
            return;
        }
        _archiveNextSent = true;
        Self.Tell(ArchiveNext.Instance);
    }

    /// <summary>Take the conversation changed longest ago out of memory (one at a time, each once the last is durable).</summary>
    private void ArchiveNextIfOver()
    {
        if (_cold is not null || Stopping || !OverBound() || !_settings.ColdAllowed())
            return;
        if (_archiveNotBefore - Environment.TickCount64 is var wait and > 0)
        {
            // Tried lately (nothing could go then, or a step failed): what came since is looked at then, not only at
            // the mailbox's next write (it may have none).
            Timers.StartSingleTimer(ArchiveLaterTimer, ArchiveNext.Instance, TimeSpan.FromMilliseconds(wait));
            return;
        }
        if (WritesInFlight)
        {
            _archiveOwed = true; // they settle into OnSettled, which archives then
            return;
        }
        // Confirmations are journaled in batches: a channel its recipient has confirmed in memory only still counts as
        // pending. Journal them first (the next settle goes on from here).
        var confirmed = _delivery.MakeRoom(Decided);
        Run(confirmed);
        if (confirmed.Effects.Any(e => e is DeliveryEffect.Persist))
            return;
        if (Durable.Conversations.Count <= _settings.Limits.MaxConversationsInMemory)
        {
            ArchiveNextChannel();
            return;
        }
        string? next = null;
        var channels = LoneChannelsToGo();
        var groups = _settings.ColdGroupsAllowed(); // the ColdGroups gate: every node runs 1.9.0
        while (next is null && _archiveQueue is { Count: > 0 } queue)
        {
            // Still as it was planned: not changed since (then it is no longer among the oldest), nor brought back.
            var (id, stamp) = queue.Dequeue();
            if (Durable.IsArchivable(id, groups) && Durable.Conversations[id].LastUpdatedTimestamp == stamp && !RestoredLately(id))
                next = id;
        }
        if (next is null)
        {
            var plan = Durable.PlanArchive(RestoredLately, groups: groups);
            if (plan.Count == 0)
            {
                if (channels)
                {
                    ArchiveNextChannel(); // no conversation can go now (groups gated, say): the channels alone still can
                    return;
                }
                _archiveNotBefore = Environment.TickCount64 + 1_000; // copies pending, brought back lately, groups gated: later
                return;
            }
            _archiveQueue = new Queue<(string, long)>(plan.Select(id => (id, Durable.Conversations[id].LastUpdatedTimestamp)));
            next = _archiveQueue.Dequeue().Id;
        }
        StartColdStep(next, ColdStepKind.Archive, Durable.Cold.PageOf(next));
    }

    /// <summary>
    /// Over the bound in memory: more conversations than <see cref="MailboxLimits.MaxConversationsInMemory"/>, or (with
    /// the ColdChannels gate open: every node runs 1.10.0) too many channels alone (<see cref="MailboxState.LoneChannelsOver"/>).
    /// </summary>
    private bool OverBound()
    {
        var max = _settings.Limits.MaxConversationsInMemory;
        return max > 0 && (Durable.Conversations.Count > max || LoneChannelsToGo());
    }

    /// <summary>Channels alone over their bound, or still planned to go, with the ColdChannels gate open.</summary>
    private bool LoneChannelsToGo() =>
        (Durable.LoneChannelsOver || _channelQueue is { Count: > 0 }) && _settings.ColdChannelsAllowed();

    /// <summary>Take the channel alone needed longest ago out of memory (the conversations are within their bound).</summary>
    private void ArchiveNextChannel()
    {
        string? next = null;
        while (next is null && _channelQueue is { Count: > 0 } queue)
        {
            var peer = queue.Dequeue();
            if (Durable.IsChannelArchivable(peer)) // those brought back lately are planned last already
                next = peer;
        }
        if (next is null)
        {
            // Those brought back lately go last, not never: the bound holds (a command never loses what it brought
            // back before it is decided: an archive waits in the stash behind it).
            // Down to the bound in one plan (a walk of the channels), not just under the threshold: the next plan waits
            // until twice the bound is passed again.
            var plan = Durable.PlanChannelArchive(later: peer => RestoredLately(Ids.ConversationFor(_userId, peer)), most: int.MaxValue);
            if (plan.Count == 0)
            {
                _archiveNotBefore = Environment.TickCount64 + 1_000; // copies pending: later
                return;
            }
            _channelQueue = new Queue<string>(plan);
            next = _channelQueue.Dequeue();
        }
        var id = Ids.ConversationFor(_userId, next);
        StartColdStep(id, ColdStepKind.ArchiveChannel, Durable.Cold.PageOf(id), next);
    }

    /// <summary>Brought back lately and not changed since.</summary>
    private bool RestoredLately(string conversationId) =>
        _restored?.TryGetValue(conversationId, out var stamp) == true
        && (Durable.Conversations.TryGetValue(conversationId, out var conversation)
            ? conversation.LastUpdatedTimestamp == stamp
            : stamp == 0); // a channel alone (its entry has no stamp), while it is still alone

    /// <summary>Archive the next conversation, if memory still holds more than the bound.</summary>
    private sealed class ArchiveNext : IEntityOwnMessage
    {
        public static readonly ArchiveNext Instance = new();
    }

    /// <summary>Carry out what the delivery bookkeeping decided.</summary>
    private void Run(DeliveryStep step)
    {
        _delivery = step.Tracker;
        DeliveryEffects.CarryOut(step.Effects, _mailboxes, Timers, this);
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
                else if (e is ReceiptsMarked marked)
                {
                    foreach (var copy in Durable.CopiesOf(marked))
                        Run(_delivery.Restored(copy, Durable));
                }
                else
                    Confirm(e);
            });
        }
        Write(new StaleWritesResolved(stale[^1].Seq), _ => { });
        Log.Warning("Journal of {PersistenceId} held {Count} events of an older writer after a newer one (journal " +
            "entries {First}..{Last}, written before writes were fenced); stored {Restored} of them again",
            PersistenceId, stale.Count, stale[0].Seq, stale[^1].Seq, restored);
    }
}
