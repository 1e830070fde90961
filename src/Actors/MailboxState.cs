using System.Collections.Immutable;
using System.Text;
using Messaging.Actors.Groups;
using Messaging.Messages;

namespace Messaging.Actors;

/// <summary>
/// Bounds that keep a live mailbox's memory independent of its history: recent messages per conversation and the
/// characters of all of them together, remembered clientMessageIds, copies (and their characters) not yet confirmed
/// per recipient, and the conversation list's snippet length in characters. Part of <see cref="MailboxSettings"/>;
/// configured as <c>Messaging:Mailbox</c> keys.
/// </summary>
/// <param name="MaxNewConversations">Conversations one user may open (a first message to someone they have no
/// conversation with) within <see cref="NewConversationWindow"/>; past it such a send is refused with 429 (anti-spam).
/// Replies, and messages in existing conversations, are never limited.</param>
/// <param name="MaxRecentChars">The text of every conversation's recent messages together, in characters: past it the
/// windows of the conversations written longest ago leave memory (their pages are read from the journal). At least
/// one message of the largest size, which the conversation just written always keeps.</param>
/// <param name="MaxConversationsInMemory">Conversations a live mailbox (and its snapshot) holds; past it the
/// conversations changed longest ago go cold: they leave memory and the conversation list, and come back when a message,
/// receipt or marker needs them (<see cref="ColdIndex"/>). 0: no bound. Cold conversations are written only once every
/// node runs 1.8.0 (the ColdConversations feature), cold groups once every node runs 1.9.0 (ColdGroups).</param>
public sealed record MailboxLimits(
    int RecentPerConversation = 50,
    int DedupWindow = 4096,
    int MaxPendingPerRecipient = 1_000,
    long MaxPendingCharsPerRecipient = 4 * 1024 * 1024,
    int SnippetLength = 100,
    long MaxRecentChars = 256 * 1024,
    int MaxNewConversations = 200,
    int MaxConversationsInMemory = 1_000)
{
    public TimeSpan NewConversationWindow { get; init; } = TimeSpan.FromHours(1);
}

public abstract record SendDecision
{
    /// <summary>Answer now, write nothing.</summary>
    public sealed record Reply(SendResult Result) : SendDecision;

    /// <summary>Same clientMessageId and content as an earlier send; its record says what to answer.</summary>
    public sealed record Duplicate(SentRecord Original) : SendDecision;

    public sealed record Store(MessageSent Event) : SendDecision;
}

public abstract record DeliveryDecision
{
    /// <summary>Already stored (or being stored): nothing to write.</summary>
    public sealed record AlreadyStored(long LastSeq) : DeliveryDecision;

    /// <summary>An earlier copy from this sender is missing; drop this one, the sender resends in order.</summary>
    public sealed record OutOfOrder(long Expected) : DeliveryDecision;

    /// <summary>A <see cref="MessageReceived"/> or a <see cref="ReceiptReceived"/>.</summary>
    public sealed record Store(IMailboxEvent Event) : DeliveryDecision;
}

public abstract record ReceiptDecision
{
    public sealed record NotFound : ReceiptDecision;

    /// <summary>400: nothing stored.</summary>
    public sealed record Refused(string Detail) : ReceiptDecision;

    /// <summary>The markers are already there (or past it): answer the conversation as it is.</summary>
    public sealed record Unchanged(ConversationSummary Conversation) : ReceiptDecision;

    /// <summary>A marker lands before the in-memory window: read the tally of <see cref="Seq"/> from the journal, then decide again.</summary>
    public sealed record ReadTally(ThreadPlan.FromJournal Plan, long Seq) : ReceiptDecision;

    /// <summary>The receipt's copy would pass the outbox's bound for the other participant: 503, retry later.</summary>
    public sealed record Full(string Detail) : ReceiptDecision;

    public sealed record Store(ReceiptsMarked Event) : ReceiptDecision;
}

public abstract record ThreadPlan
{
    public sealed record NotFound : ThreadPlan;

    public sealed record InMemory(ThreadPage Page) : ThreadPlan;

    /// <summary>The page lies before the in-memory window: messages <see cref="FromSeq"/>..<see cref="ToSeq"/> are read from the journal.</summary>
    /// <param name="StaleUpTo"><see cref="MailboxState.StaleUpTo"/>: events found by position at or below it are not trusted.</param>
    public sealed record FromJournal(
        string ConversationId, long FromSeq, long ToSeq, long LastSeq, ImmutableArray<long> Anchors, long StaleUpTo,
        ImmutableArray<ParticipantReceipt> Receipts = default)
        : ThreadPlan;
}

/// <summary>
/// A user's mailbox: conversation index, recent messages, dedup window and delivery channels. Pure: the actor feeds
/// it commands (<c>Decide...</c>) and journaled events (<see cref="Apply"/>).
/// </summary>
public sealed partial record MailboxState(
    string UserId,
    MailboxLimits Limits,
    long LastStamp,
    SmallMap<ConversationState> Conversations,
    ImmutableSortedDictionary<long, string> ByStamp,
    DedupWindow Dedup,
    SmallMap<OutboundChannel> Outbound,
    SmallMap<long> Inbound) : Delivery.IOutbox
{
    private static readonly IComparer<long> Descending = Comparer<long>.Create((a, b) => b.CompareTo(a));

    // Shared: WithComparers allocates the comparer pair anew on every call, and every dictionary of a state keeps it.
    private static readonly MailboxState Blank = new(
        "",
        new MailboxLimits(),
        0,
        SmallMap<ConversationState>.Empty,
        ImmutableSortedDictionary<long, string>.Empty.WithComparers(Descending),
        DedupWindow.Empty,
        SmallMap<OutboundChannel>.Empty,
        SmallMap<long>.Empty);

    public static MailboxState Empty(string userId, MailboxLimits limits) => Blank with { UserId = userId, Limits = limits };

    /// <summary>Characters of text in every conversation's <see cref="ConversationState.Window"/> together.</summary>
    public long RecentChars { get; init; }

    /// <summary>
    /// The conversations that hold a window, by the journal position of their newest message (their
    /// <c>Anchors[0]</c>), oldest first: who leaves memory first when <see cref="RecentChars"/> passes the bound.
    /// </summary>
    public ImmutableSortedDictionary<long, string> Windows { get; init; } = ImmutableSortedDictionary<long, string>.Empty;

    /// <summary>
    /// Stamps of the newest conversations this user opened, oldest first: at most
    /// <see cref="MailboxLimits.MaxNewConversations"/>, so the oldest says when the next may be opened. An array (64
    /// bytes for 5 stamps; a queue was a node per stamp).
    /// </summary>
    public ImmutableArray<long> Openings { get; init; } = ImmutableArray<long>.Empty;

    /// <summary>
    /// The highest journal sequence number that may hold a stale event (<see cref="ReplayAudit{TEvent}"/>): an event
    /// of a conversation that is not on its history. A thread page read trusts an event it finds by position only
    /// above this (<see cref="ThreadPageReader"/>); below it, only what the history's own links lead to.
    /// </summary>
    public long StaleUpTo { get; init; }

    /// <summary>Stamps strictly increase within a mailbox, whatever the clock does (restarts, node moves).</summary>
    public long NextStamp(long now) => Math.Max(now, LastStamp + 1);

    public int PendingDeliveries => Outbound.Values.Sum(c => c.PendingCount);

    // ---------------- the outbox, as delivery sees it ----------------

    bool Delivery.IOutbox.HasPending => Outbound.Values.Any(c => c.PendingCount > 0);

    IEnumerable<Delivery.ChannelPosition> Delivery.IOutbox.Channels => Outbound.Values.Select(c => c.Position);

    Delivery.ChannelPosition? Delivery.IOutbox.Channel(string recipientId) =>
        Outbound.TryGetValue(recipientId, out var channel) ? channel.Position : null;

    IEnumerable<IChannelCopy> Delivery.IOutbox.Unconfirmed(string recipientId, long afterSeq) =>
        Outbound.TryGetValue(recipientId, out var channel) ? channel.Pending.SkipWhile(c => c.ChannelSeq <= afterSeq) : [];

    // ---------------- decisions ----------------

    public SendDecision DecideSend(SendMessage cmd, long now)
    {
        if (cmd.SenderId != UserId)
            return Fail(SendOutcome.Invalid, "the command was routed to another user's mailbox");
        if (cmd.RecipientIds.Length != 1)
            return Fail(SendOutcome.Invalid, "v1 conversations are 1:1: give exactly one recipient");
        var recipient = cmd.RecipientIds[0];
        if (recipient == UserId)
            return Fail(SendOutcome.Invalid, "a user cannot send a message to themselves");
        if (string.IsNullOrEmpty(cmd.Text))
            return Fail(SendOutcome.Invalid, "the message text is empty");

        if (Dedup.TryGetValue(cmd.ClientMessageId, out var earlier))
        {
            return earlier.RecipientId == recipient && earlier.TextHash == Ids.TextHash(cmd.Text)
                ? new SendDecision.Duplicate(Record(cmd.ClientMessageId, earlier))
                : Fail(SendOutcome.Conflict,
                    $"clientMessageId '{cmd.ClientMessageId}' was already used by this sender for another message");
        }

        var channel = Outbound.GetValueOrDefault(recipient) ?? OutboundChannel.Empty(recipient);
        if (channel.IsFullFor(cmd.Text, Limits))
            return Fail(SendOutcome.Unavailable,
                $"{channel.PendingCount} messages to '{recipient}' are still awaiting delivery; retry later");

        if (!Conversations.ContainsKey(Ids.ConversationFor(UserId, recipient)) && OpeningAllowedIn(now) is { } wait)
            return new SendDecision.Reply(SendResult.Failure(SendOutcome.RateLimited,
                $"{UserId} opened {Limits.MaxNewConversations} new conversations within {Limits.NewConversationWindow}; " +
                "messages in existing conversations are not limited; retry later") with { RetryAfterMs = wait });

        return new SendDecision.Store(NewSent(recipient, cmd.Text, cmd.ClientMessageId, now));
    }

    /// <summary>
    /// Milliseconds until this user may open <paramref name="conversationId"/> (a group they create), 0 if now or if
    /// they have it already. The group's copy to its creator counts as the opening (<see cref="ApplyReceived"/>).
    /// </summary>
    public long OpeningWaitMs(string? conversationId, long now) =>
        conversationId is not null && Conversations.ContainsKey(conversationId) ? 0 : OpeningAllowedIn(now) ?? 0;

    /// <summary>
    /// Null if this user may open a conversation at <paramref name="now"/>, else the milliseconds until they may: when
    /// the oldest of their last <see cref="MailboxLimits.MaxNewConversations"/> openings leaves the window.
    /// </summary>
    private long? OpeningAllowedIn(long now)
    {
        if (Openings.Length < Limits.MaxNewConversations)
            return null;
        var freeAt = Openings[0] + (long)Limits.NewConversationWindow.TotalMilliseconds;
        return freeAt <= now ? null : freeAt - now;
    }

    /// <summary>A new message from this user at the end of its conversation and of its delivery channel.</summary>
    private MessageSent NewSent(string recipient, string text, string clientMessageId, long now)
    {
        var channel = Outbound.GetValueOrDefault(recipient) ?? OutboundChannel.Empty(recipient);
        var conversationId = Ids.ConversationFor(UserId, recipient);
        var conversation = Conversations.GetValueOrDefault(conversationId);
        var seq = (conversation?.LastSeq ?? 0) + 1;
        var stamp = NextStamp(now);
        var message = new ChatMessage(Ids.MessageId(UserId, stamp), conversationId, UserId, [recipient], text, clientMessageId, stamp);
        return new MessageSent(message, seq, LinksFor(conversation, seq), channel.LastSeq + 1, conversation?.Tally ?? default);
    }

    public DeliveryDecision DecideDelivery(IChannelCopy copy, long now)
    {
        var last = Inbound.GetValueOrDefault(copy.SenderId);
        if (copy.ChannelSeq <= last)
            return new DeliveryDecision.AlreadyStored(last);
        if (copy.PreviousSeq > last)
            return new DeliveryDecision.OutOfOrder(last + 1);

        switch (copy)
        {
            case DeliverGroupMessage group:
                var thread = Conversations.GetValueOrDefault(group.Message.ConversationId);
                var next = (thread?.LastSeq ?? 0) + 1;
                return new DeliveryDecision.Store(new MessageReceived(
                    group.Message, next, NextStamp(now), LinksFor(thread, next), group.ChannelSeq,
                    (thread?.Tally ?? default).After(group.Message, UserId), group.Name, group.Members));
            case DeliverMessage delivery:
                var conversation = Conversations.GetValueOrDefault(delivery.Message.ConversationId);
                var seq = (conversation?.LastSeq ?? 0) + 1;
                return new DeliveryDecision.Store(new MessageReceived(
                    delivery.Message, seq, NextStamp(now), LinksFor(conversation, seq), delivery.ChannelSeq,
                    (conversation?.Tally ?? default).After(delivery.Message, UserId)));
            case DeliverReceipt receipt:
                return new DeliveryDecision.Store(new ReceiptReceived(
                    receipt.ConversationId, receipt.SenderId, receipt.Receipt, NextStamp(now), receipt.ChannelSeq));
            default:
                throw new ArgumentException($"unknown channel copy {copy.GetType().Name}", nameof(copy));
        }
    }

    /// <summary>
    /// Move the owner's markers. A marker whose tally is not in memory (before the window of recent messages) is
    /// read from the journal first: <paramref name="known"/> then holds it, and the command is decided again.
    /// </summary>
    public ReceiptDecision DecideReceipts(MarkReceipts cmd, long now, Func<long, Tally?>? known = null)
    {
        if (!Conversations.TryGetValue(cmd.ConversationId, out var conversation))
            return new ReceiptDecision.NotFound();
        if (cmd.DeliveredUpToSeq is null && cmd.ReadUpToSeq is null)
            return new ReceiptDecision.Refused("give deliveredUpToSeq, readUpToSeq or both");
        if (cmd.DeliveredUpToSeq < 0 || cmd.ReadUpToSeq < 0)
            return new ReceiptDecision.Refused("deliveredUpToSeq and readUpToSeq must be >= 0");
        if (cmd.DeliveredUpToSeq > conversation.LastSeq || cmd.ReadUpToSeq > conversation.LastSeq)
            return new ReceiptDecision.Refused(
                $"a marker above the conversation's lastSeq ({conversation.LastSeq}): only stored messages can be delivered or read");

        // Read implies delivered; markers only move forward.
        var read = Math.Max(conversation.ReadUpToSeq, cmd.ReadUpToSeq ?? 0);
        var delivered = Math.Max(Math.Max(conversation.DeliveredUpToSeq, cmd.DeliveredUpToSeq ?? 0), read);
        if (read == conversation.ReadUpToSeq && delivered == conversation.DeliveredUpToSeq)
            return new ReceiptDecision.Unchanged(conversation.ToSummary(UserId));

        Tally? TallyAt(long seq) => conversation.TallyAt(seq) ?? known?.Invoke(seq);
        if (TallyAt(delivered) is not { } deliveredTally)
            return ReadTally(conversation, delivered);
        if (TallyAt(read) is not { } readTally)
            return ReadTally(conversation, read);

        var receipt = Receipt.Of(deliveredTally.LastFromOthersAt, readTally.LastFromOthersAt);
        var before = Receipt.Of(conversation.Delivered.LastFromOthersAt, conversation.Read.LastFromOthersAt);
        var targets = receipt.Merge(before) == before ? [] : ReceiptTargets(conversation, delivered);
        var copies = ImmutableArray.CreateBuilder<ChannelTarget>(targets.Count);
        foreach (var target in targets)
        {
            var channel = Outbound.GetValueOrDefault(target) ?? OutboundChannel.Empty(target);
            if (channel.PendingCount >= Limits.MaxPendingPerRecipient)
                return new ReceiptDecision.Full(
                    $"{channel.PendingCount} copies to '{target}' are still awaiting delivery; retry later");
            copies.Add(new ChannelTarget(target, channel.LastSeq + 1));
        }
        var id = conversation.ConversationId;
        var marked = new ReceiptsMarked(id, delivered, read, deliveredTally, readTally, NextStamp(now), "", 0);
        // A group's copies are listed; a 1:1 conversation names its other participant, with the copy's number if any.
        return new ReceiptDecision.Store(Ids.IsGroup(id)
            ? marked with { Copies = copies.ToImmutable() }
            : marked with
            {
                OtherId = conversation.ParticipantIds.FirstOrDefault(p => p != UserId) ?? "",
                ChannelSeq = copies.Count == 0 ? 0 : copies[0].ChannelSeq,
            });
    }

    /// <summary>Distinct senders a group's conversation keeps of its unread messages (past this: not known).</summary>
    public const int UnreadSendersKept = 32;

    /// <summary>
    /// Who gets the receipt when the markers move up to <paramref name="delivered"/>: the other participant of a 1:1
    /// conversation; in a group, the senders of the messages the markers newly cover (a receipt only ever tells a
    /// sender about their own messages). When some of those messages are before the window: the senders of every
    /// message after the read marker (<see cref="ConversationState.UnreadSenders"/>, at most 32), or every other member
    /// if they are not known.
    /// </summary>
    private IReadOnlyCollection<string> ReceiptTargets(ConversationState conversation, long delivered)
    {
        if (!Ids.IsGroup(conversation.ConversationId))
            return conversation.ParticipantIds.Where(p => p != UserId).Take(1).ToArray();
        var from = conversation.ReadUpToSeq + 1; // read <= delivered: everything above the read marker is news to someone
        if (conversation.Window.IsEmpty || from < conversation.Window[0].Seq)
            return !conversation.UnreadSenders.IsDefault
                ? conversation.UnreadSenders.Order(StringComparer.Ordinal).ToArray()
                : conversation.ParticipantIds.Where(p => p != UserId).ToArray();
        var senders = new SortedSet<string>(StringComparer.Ordinal);
        foreach (var stored in conversation.Window)
        {
            if (stored.Seq >= from && stored.Seq <= delivered && stored.SenderId != UserId && !stored.IsSystem)
                senders.Add(stored.SenderId);
        }
        return senders;
    }

    private ReceiptDecision.ReadTally ReadTally(ConversationState conversation, long seq) =>
        new(new ThreadPlan.FromJournal(conversation.ConversationId, seq, seq, conversation.LastSeq, conversation.Anchors, StaleUpTo), seq);

    /// <summary>
    /// Whether <paramref name="evt"/> was decided on this very state: the next message of its conversation and
    /// channel, a stamp after every earlier one, a clientMessageId not yet used. (Confirmations always fit.)
    /// </summary>
    public bool Continues(IMailboxEvent evt) => evt switch
    {
        MessageSent s => NextSeqOf(s.Message.ConversationId) == s.Seq
            && (Outbound.GetValueOrDefault(s.Message.RecipientIds[0])?.LastSeq ?? 0) + 1 == s.ChannelSeq
            && s.Message.ServerTimestamp > LastStamp
            && !Dedup.ContainsKey(s.Message.ClientMessageId),
        MessageReceived r => NextSeqOf(r.Message.ConversationId) == r.Seq
            && (Ids.IsGroup(r.Message.ConversationId)
                ? Inbound.GetValueOrDefault(r.Message.ConversationId) < r.ChannelSeq // a group's copies skip where this user was not a member
                : Inbound.GetValueOrDefault(r.Message.SenderId) + 1 == r.ChannelSeq)
            && r.Stamp > LastStamp,
        ReceiptReceived r => Inbound.GetValueOrDefault(r.FromUserId) + 1 == r.ChannelSeq && r.Stamp > LastStamp,
        ReceiptsMarked m => m.Stamp > LastStamp
            && m.Targets.All(t => (Outbound.GetValueOrDefault(t.RecipientId)?.LastSeq ?? 0) + 1 == t.ChannelSeq),
        ConversationRestored r => ContinuesRestore(r),
        ConversationsArchived a => ContinuesArchive(a),
        _ => true,
    };

    private long NextSeqOf(string conversationId) => (Conversations.GetValueOrDefault(conversationId)?.LastSeq ?? 0) + 1;

    /// <summary>
    /// What to journal again for an event decided on a state the journal does not have (see
    /// <see cref="ReplayAudit{TEvent}"/>): an older writer's after a newer one had taken over (its writer was told it was
    /// stored), or one written after a rejected write (its writer was answered as failed and may retry: the retry
    /// then finds it stored). It is decided again against today's state: a send is stored again at the end of its conversation (same text and clientMessageId; new seq, stamp, messageId
    /// and channel number) unless its clientMessageId is known; a received copy is stored if it is its sender's next
    /// in line; confirmations are dropped (recipients confirm again when the sender resends). Null: nothing to write.
    /// </summary>
    public IMailboxEvent? ResolveStale(IMailboxEvent stale, long now)
    {
        // A conversation that is cold now: it is brought back first, if that is what the stale event did; anything
        // else that needs it is dropped (deciding it without its state would start its thread and channel over).
        if (stale is ConversationRestored restored)
            return ContinuesRestore(restored) ? restored : null;
        if (ColdNeededFor(stale switch
            {
                MessageSent sent => new SendMessage(UserId, sent.Message.RecipientIds, sent.Message.Text, sent.Message.ClientMessageId),
                MessageReceived received => new DeliverMessage(UserId, received.ChannelSeq, received.Message),
                ReceiptReceived receipt => new DeliverReceipt(UserId, receipt.ChannelSeq, receipt.FromUserId, receipt.ConversationId, receipt.Receipt),
                ReceiptsMarked marked => new MarkReceipts(UserId, marked.ConversationId, marked.DeliveredUpToSeq, marked.ReadUpToSeq),
                _ => stale,
            }) is not null)
            return null;
        switch (stale)
        {
            // A new stamp (stamps are unique per mailbox) and so a new messageId: the dedup window keeps the stamp and
            // answers a retry of this clientMessageId with the ids the thread shows. No backlog bound: it was accepted.
            case MessageSent sent when !Dedup.ContainsKey(sent.Message.ClientMessageId):
                return NewSent(sent.Message.RecipientIds[0], sent.Message.Text, sent.Message.ClientMessageId, now);
            // A group's copy: its group resends it (it was never confirmed: the incarnation that wrote it stopped, or
            // carried out nothing after a rejected write, before confirming it), and this mailbox stores it in line.
            case MessageReceived received when Ids.IsGroup(received.Message.ConversationId):
                return null;
            case MessageReceived received:
                return DecideDelivery(new DeliverMessage(UserId, received.ChannelSeq, received.Message), now)
                    is DeliveryDecision.Store store ? store.Event : null;
            case ReceiptReceived receipt:
                return DecideDelivery(new DeliverReceipt(UserId, receipt.ChannelSeq, receipt.FromUserId, receipt.ConversationId, receipt.Receipt), now)
                    is DeliveryDecision.Store stored ? stored.Event : null;
            // Its tallies are in the event: the markers are decided again without reading the journal.
            case ReceiptsMarked marked:
                var again = new MarkReceipts(UserId, marked.ConversationId, marked.DeliveredUpToSeq, marked.ReadUpToSeq);
                Tally? Known(long seq) =>
                    seq == marked.ReadUpToSeq ? marked.Read : seq == marked.DeliveredUpToSeq ? marked.Delivered : null;
                return DecideReceipts(again, now, Known) is ReceiptDecision.Store mark ? mark.Event : null;
            default:
                return null;
        }
    }

    /// <summary>The previous message and the one at seq - lowbit(seq): the newest multiple of 2^(k+1) before seq.</summary>
    private static ThreadLinks LinksFor(ConversationState? conversation, long seq)
    {
        if (conversation is null)
            return ThreadLinks.None;
        var level = System.Numerics.BitOperations.TrailingZeroCount(seq) + 1;
        var skip = level < conversation.Anchors.Length && seq - (seq & -seq) > 0 ? conversation.Anchors[level] : 0;
        return new ThreadLinks(conversation.Anchors[0], skip);
    }

    private static SendDecision.Reply Fail(SendOutcome outcome, string detail) =>
        new(SendResult.Failure(outcome, detail));

    // ---------------- events ----------------

    /// <param name="journalSeq">The event's own journal sequence number (kept as the thread's newest anchor).</param>
    public MailboxState Apply(IMailboxEvent evt, long journalSeq) => evt switch
    {
        MessageSent sent => ApplySent(sent, journalSeq).WithinRecentBound(),
        MessageReceived received => ApplyReceived(received, journalSeq).WithinRecentBound(),
        DeliveriesConfirmed confirmed => ApplyConfirmed(confirmed),
        ReceiptsMarked marked => ApplyMarked(marked),
        ReceiptReceived receipt => ApplyReceipt(receipt),
        StaleWritesResolved resolved => StaleFound(resolved.UpToJournalSeq),
        ConversationsArchived archived => ApplyArchived(archived, journalSeq),
        ConversationRestored restored => ApplyRestored(restored),
        WriterClaimed => this, // about the journal's writers, not the user's data
        _ => throw new ArgumentException($"unknown mailbox event {evt.GetType().Name}", nameof(evt)),
    };

    /// <summary>The journal holds stale events up to <paramref name="journalSeq"/> (a recovery found them).</summary>
    public MailboxState StaleFound(long journalSeq) =>
        journalSeq > StaleUpTo ? this with { StaleUpTo = journalSeq } : this;

    private MailboxState ApplySent(MessageSent sent, long journalSeq)
    {
        var opens = !Conversations.ContainsKey(sent.Message.ConversationId);
        // The message with the conversation's shared id strings: the dedup record and the outbox use them too.
        var (next, message) = WithMessage(sent.Message, sent.Seq, sent.Message.ServerTimestamp, journalSeq);
        if (opens)
            next = next with { Openings = Opened(next.Openings, sent.Message.ServerTimestamp) };
        var recipient = message.RecipientIds[0];

        var dedup = next.Dedup.Add(
            message.ClientMessageId, new SentEntry(recipient, message.ServerTimestamp, Ids.TextHash(message.Text)), Limits.DedupWindow);

        var channel = next.Outbound.GetValueOrDefault(recipient) ?? OutboundChannel.Empty(recipient);
        var delivery = new DeliverMessage(recipient, sent.ChannelSeq, message);
        return next with
        {
            Dedup = dedup,
            Outbound = next.Outbound.SetItem(recipient, channel.Enqueue(delivery)),
        };
    }

    private MailboxState ApplyReceived(MessageReceived received, long journalSeq)
    {
        // A group this user created: opening it counts toward the new-conversation limit, as a first message does.
        var opens = received.Message is { System.Action: GroupChange.Created } created && created.SenderId == UserId &&
            !Conversations.ContainsKey(created.ConversationId);
        var (next, message) = WithMessage(received.Message, received.Seq, received.Stamp, journalSeq, received.GroupName, received.GroupMembers);
        if (opens)
            next = next with { Openings = Opened(next.Openings, received.Stamp) }; // this mailbox's clock, as the limit's
        // The channel is the group's in a group, the sender's otherwise (shared string instances either way).
        var channel = Ids.IsGroup(message.ConversationId) ? message.ConversationId : message.SenderId;
        return next with { Inbound = next.Inbound.SetItem(channel, received.ChannelSeq) };
    }

    private MailboxState ApplyMarked(ReceiptsMarked marked)
    {
        if (!Conversations.TryGetValue(marked.ConversationId, out var conversation))
            return this;
        var read = Math.Max(conversation.ReadUpToSeq, marked.ReadUpToSeq);
        var next = Restamp(conversation with
        {
            DeliveredUpToSeq = Math.Max(conversation.DeliveredUpToSeq, marked.DeliveredUpToSeq),
            ReadUpToSeq = read,
            Delivered = Later(conversation.Delivered, marked.Delivered),
            Read = Later(conversation.Read, marked.Read),
            // Read to the end: nobody's messages are unread (known from now on). Short of it: still a superset.
            UnreadSenders = Ids.IsGroup(conversation.ConversationId) && read >= conversation.LastSeq ? [] : conversation.UnreadSenders,
        }, marked.Stamp);
        var outbound = next.Outbound;
        foreach (var copy in CopiesOf(marked))
        {
            var channel = outbound.GetValueOrDefault(copy.RecipientId) ?? OutboundChannel.Empty(copy.RecipientId);
            outbound = outbound.SetItem(copy.RecipientId, channel.Enqueue(copy));
        }
        return next with { Outbound = outbound };
    }

    /// <summary>The receipt copies a <see cref="ReceiptsMarked"/> queued: for the other participant, or a group's members.</summary>
    public IEnumerable<DeliverReceipt> CopiesOf(ReceiptsMarked marked)
    {
        var receipt = Receipt.Of(marked.Delivered.LastFromOthersAt, marked.Read.LastFromOthersAt);
        return marked.Targets.Select(t => new DeliverReceipt(t.RecipientId, t.ChannelSeq, UserId, marked.ConversationId, receipt));
    }

    /// <summary>Markers never move back, and neither does what they stand for.</summary>
    private static Tally Later(Tally a, Tally b) =>
        new(Math.Max(a.FromOthers, b.FromOthers), Math.Max(a.LastFromOthersAt, b.LastFromOthersAt));

    private MailboxState ApplyReceipt(ReceiptReceived receipt)
    {
        var next = this with { Inbound = Inbound.SetItem(receipt.FromUserId, receipt.ChannelSeq) };
        if (!Conversations.TryGetValue(receipt.ConversationId, out var conversation))
            return next with { LastStamp = Math.Max(LastStamp, receipt.Stamp) };
        var receipts = conversation.Receipts.IsDefault ? [] : conversation.Receipts;
        var index = -1;
        for (var i = 0; i < receipts.Length && index < 0; i++)
        {
            if (receipts[i].UserId == receipt.FromUserId)
                index = i;
        }
        var user = conversation.ParticipantIds.FirstOrDefault(p => p == receipt.FromUserId) ?? receipt.FromUserId;
        receipts = index < 0
            ? receipts.Add(new ParticipantReceipt(user, receipt.Receipt))
            : receipts.SetItem(index, receipts[index] with { Receipt = receipts[index].Receipt.Merge(receipt.Receipt) });
        return next.Restamp(conversation with { Receipts = receipts }, receipt.Stamp);
    }

    /// <summary>The conversation changed at <paramref name="stamp"/>: it moves to the top of the list.</summary>
    private MailboxState Restamp(ConversationState conversation, long stamp)
    {
        var byStamp = ByStamp.Remove(conversation.LastUpdatedTimestamp).SetItem(stamp, conversation.ConversationId);
        return this with
        {
            LastStamp = Math.Max(LastStamp, stamp),
            Conversations = Conversations.SetItem(conversation.ConversationId, conversation with { LastUpdatedTimestamp = stamp }),
            ByStamp = byStamp,
        };
    }

    private MailboxState ApplyConfirmed(DeliveriesConfirmed confirmed)
    {
        if (!Outbound.TryGetValue(confirmed.RecipientId, out var channel))
            return this;
        return this with { Outbound = Outbound.SetItem(confirmed.RecipientId, channel.ConfirmUpTo(confirmed.UpToSeq)) };
    }

    private (MailboxState State, ChatMessage Shared) WithMessage(
        ChatMessage message, long seq, long stamp, long journalSeq, string? groupName = null, ImmutableArray<string> groupMembers = default)
    {
        var id = message.ConversationId;
        var existing = Conversations.GetValueOrDefault(id);
        var participants = !groupMembers.IsDefaultOrEmpty
            ? [.. groupMembers.Order(StringComparer.Ordinal)]
            : existing?.ParticipantIds ?? [.. message.RecipientIds.Append(message.SenderId).Order(StringComparer.Ordinal)];
        var receipts = existing?.Receipts ?? [];
        if (message.System is { } change)
            (participants, receipts) = Membership.After(change, message, participants, receipts, UserId, groupMembers);

        // Share the conversation's strings so a window of messages does not hold a copy of each id per message.
        var compact = message with
        {
            ConversationId = existing?.ConversationId ?? id,
            SenderId = participants.FirstOrDefault(p => p == message.SenderId) ?? message.SenderId,
            RecipientIds = message.RecipientIds is [var only]
                ? [participants.FirstOrDefault(p => p == only) ?? only]
                : message.RecipientIds,
        };

        var tally = (existing?.Tally ?? default).After(compact, UserId);
        var stored = WindowMessage.From(new StoredMessage(seq, compact, tally), participants, !Ids.IsGroup(id));
        var recent = existing?.Window ?? [];
        var recentChars = RecentChars + compact.Text.Length;
        if (recent.Length >= Limits.RecentPerConversation)
        {
            var dropped = recent.Length - Limits.RecentPerConversation + 1;
            recentChars -= CharsOf(recent, 0, dropped);
            recent = recent.RemoveRange(0, dropped);
        }
        recent = recent.Add(stored);

        var snippet = Snippet(message.System is { } system ? Membership.Describe(message.SenderId, system) : message.Text);
        // A group's unread senders: known from its first message on, a new one added while they are few.
        // Not known (a snapshot before 1.9.1) but read to the end: none unread, known from now on.
        var unreadSenders = !Ids.IsGroup(id) ? default
            : existing is null || (existing.UnreadSenders.IsDefault && existing.ReadUpToSeq >= existing.LastSeq) ? []
            : existing.UnreadSenders;
        if (!unreadSenders.IsDefault && message.System is null && compact.SenderId != UserId && !unreadSenders.Contains(compact.SenderId))
            unreadSenders = unreadSenders.Length < UnreadSendersKept ? unreadSenders.Add(compact.SenderId) : default;
        var conversation = existing is null
            ? new ConversationState(compact.ConversationId, participants, snippet, stamp, seq,
                UpdateAnchors([], seq, journalSeq), recent, Tally: tally, Receipts: receipts,
                Kind: Ids.IsGroup(id) ? ConversationSummary.GroupKind : ConversationSummary.DirectKind, Name: groupName,
                UnreadSenders: unreadSenders)
            : existing with
            {
                ParticipantIds = participants,
                Name = groupName ?? existing.Name,
                Snippet = snippet,
                LastUpdatedTimestamp = stamp,
                LastSeq = seq,
                Anchors = UpdateAnchors(existing.Anchors, seq, journalSeq),
                Window = recent,
                Tally = tally,
                Receipts = receipts,
                UnreadSenders = unreadSenders,
            };

        var byStamp = ByStamp;
        var windows = Windows;
        if (existing is not null)
        {
            byStamp = byStamp.Remove(existing.LastUpdatedTimestamp);
            if (!existing.Window.IsDefaultOrEmpty)
                windows = windows.Remove(existing.Anchors[0]);
        }
        return (this with
        {
            LastStamp = Math.Max(LastStamp, stamp),
            Conversations = Conversations.SetItem(conversation.ConversationId, conversation),
            ByStamp = byStamp.SetItem(stamp, conversation.ConversationId),
            RecentChars = recentChars,
            Windows = windows.SetItem(journalSeq, conversation.ConversationId),
        }, compact);
    }

    /// <summary>One more opening; the oldest goes once there are as many as the limit (never more: replay and snapshots keep that).</summary>
    private ImmutableArray<long> Opened(ImmutableArray<long> openings, long stamp) =>
        (openings.Length < Limits.MaxNewConversations ? openings : openings.RemoveAt(0)).Add(stamp);

    private static long CharsOf(ImmutableArray<WindowMessage> messages, int start, int count)
    {
        long chars = 0;
        for (var i = start; i < start + count; i++)
            chars += messages[i].TextLength;
        return chars;
    }

    /// <summary>
    /// Keeps <see cref="RecentChars"/> within <see cref="MailboxLimits.MaxRecentChars"/>: the windows of the
    /// conversations whose newest message is oldest leave memory whole, and the newest conversation (the one just
    /// written) last, oldest messages first, down to its newest message, which stays: what was just written is what
    /// live events and the next page show. Nothing is lost: pages before a window are read from the journal.
    /// </summary>
    private MailboxState WithinRecentBound()
    {
        if (RecentChars <= Limits.MaxRecentChars)
            return this;
        var conversations = Conversations;
        var windows = Windows;
        var chars = RecentChars;
        while (chars > Limits.MaxRecentChars && !windows.IsEmpty)
        {
            var (position, id) = windows.First();
            var conversation = conversations[id];
            if (windows.Count > 1)
            {
                chars -= CharsOf(conversation.Window, 0, conversation.Window.Length);
                conversations = conversations.SetItem(id, conversation with { Window = [] });
                windows = windows.Remove(position);
                continue;
            }
            // The last window left: keep its newest message, however large (the bound is at least one message).
            var keep = conversation.Window.Length;
            var kept = chars;
            while (keep > 1 && kept > Limits.MaxRecentChars)
                kept -= conversation.Window[conversation.Window.Length - keep--].TextLength;
            conversations = conversations.SetItem(id, conversation with { Window = conversation.Window[^keep..] });
            chars = kept;
            break;
        }
        return this with { Conversations = conversations, Windows = windows, RecentChars = chars };
    }

    /// <summary>Message <paramref name="seq"/> becomes the newest multiple of 2^k for every k up to its trailing zeros.</summary>
    private static ImmutableArray<long> UpdateAnchors(ImmutableArray<long> anchors, long seq, long journalSeq)
    {
        var levels = System.Numerics.BitOperations.TrailingZeroCount(seq) + 1;
        var builder = anchors.ToBuilder();
        while (builder.Count < levels)
            builder.Add(0);
        for (var k = 0; k < levels; k++)
            builder[k] = journalSeq;
        return builder.ToImmutable();
    }

    private string Snippet(string text)
    {
        var max = Limits.SnippetLength;
        var runes = 0;
        var index = 0;
        foreach (var rune in text.EnumerateRunes())
        {
            if (runes == max)
                return text[..index];
            runes++;
            index += rune.Utf16SequenceLength;
        }
        return text;
    }

    // ---------------- queries ----------------

    public ConversationsPage ListConversations(GetConversations query)
    {
        var changed = ByStamp.TakeWhile(e => e.Key > query.AfterTimestamp);
        var page = changed
            .Skip(query.Offset)
            .Take(query.Count)
            .Select(e => Conversations[e.Value].ToSummary(UserId))
            .ToImmutableArray();
        var hasChanges = !ByStamp.IsEmpty && ByStamp.Keys.First() > query.AfterTimestamp;
        return new ConversationsPage(page, hasChanges);
    }

    /// <summary>
    /// Live events: each conversation changed after <paramref name="afterStamp"/>, oldest change first, as it is now,
    /// at most <paramref name="max"/> (then <c>CaughtUp</c> is false and the caller asks again from the last stamp).
    /// </summary>
    public LiveChanges ChangesAfter(long afterStamp, int max)
    {
        // ByStamp is newest first: walk the changed ones, then turn them around.
        var changed = ByStamp.TakeWhile(e => e.Key > afterStamp).Select(e => e.Value).ToList();
        changed.Reverse();
        var page = changed.Take(max)
            .Select(id => new ConversationChange(Conversations[id].ToSummary(UserId), []))
            .ToImmutableArray();
        return new LiveChanges(page, changed.Count <= max, LastStamp);
    }

    /// <summary>The live event for a durable event of this state (null: not a change of a conversation).</summary>
    public ConversationChange? ChangeFor(IMailboxEvent evt)
    {
        var id = evt switch
        {
            MessageSent s => s.Message.ConversationId,
            MessageReceived r => r.Message.ConversationId,
            ReceiptsMarked m => m.ConversationId,
            ReceiptReceived r => r.ConversationId,
            _ => null,
        };
        if (id is null || !Conversations.TryGetValue(id, out var conversation))
            return null;
        ImmutableArray<StoredMessage> messages = evt is MessageSent or MessageReceived && conversation.Window.Length > 0
            ? [conversation.Stored(conversation.Window.Length - 1)]
            : [];
        return new ConversationChange(conversation.ToSummary(UserId), messages);
    }

    /// <param name="cold">The conversation as its cold page holds it, when it is not in memory.</param>
    public ThreadPlan PlanThread(GetThread query, ConversationState? cold = null)
    {
        if (!Conversations.TryGetValue(query.ConversationId, out var conversation))
        {
            if (cold?.ConversationId != query.ConversationId)
                return new ThreadPlan.NotFound();
            conversation = cold;
        }

        // afterSeq = long.MaxValue has nothing after it (and + 1 would wrap to the start of the thread).
        var low = query.AfterSeq is { } after ? (after == long.MaxValue ? long.MaxValue : Math.Max(1, after + 1)) : 1;
        var high = Math.Min(conversation.LastSeq, (query.BeforeSeq ?? long.MaxValue) - 1) - query.Offset;
        var from = Math.Max(low, high - query.Count + 1);
        if (high < from || query.Count <= 0)
            return new ThreadPlan.InMemory(new ThreadPage([], conversation.Receipts));

        var window = conversation.Window;
        if (window.Length > 0 && from >= window[0].Seq)
        {
            var start = (int)(from - window[0].Seq);
            var length = (int)(high - from + 1);
            return new ThreadPlan.InMemory(new ThreadPage(conversation.Recent(start, length), conversation.Receipts));
        }
        return new ThreadPlan.FromJournal(
            conversation.ConversationId, from, high, conversation.LastSeq, conversation.Anchors, StaleUpTo, conversation.Receipts);
    }

    // ---------------- snapshots ----------------

    public MailboxSnapshot ToSnapshot() => new(
        LastStamp,
        [.. ByStamp.Values.Reverse().Select(id => Conversations[id].ToSnapshot())],
        [.. Dedup.Select(e => Record(e.Key, e.Value))],
        [.. Outbound.Values.Select(c => new OutboundSnapshot(c.RecipientId, c.LastSeq, [.. c.Pending]))],
        [.. Inbound.Select(e => new InboundSnapshot(e.Key, e.Value))],
        [.. Openings],
        StaleUpTo,
        Cold.Directory, // a default array is stored as none (MailboxSnapshot.ColdPages)
        Cold.Count,
        Cold.HasGroups,
        Cold.HasChannels);

    /// <param name="snapshotJournalSeq">
    /// Where the snapshot was taken: a snapshot from before 1.5.0 does not say where stale events may be, so anywhere
    /// up to there (by default: anywhere).
    /// </param>
    public static MailboxState FromSnapshot(string userId, MailboxLimits limits, MailboxSnapshot snapshot, long snapshotJournalSeq = long.MaxValue)
    {
        var state = Empty(userId, limits);
        var conversations = snapshot.Conversations
            .Select(c => ConversationState.FromSnapshot(WithTallies(userId, c, snapshot)))
            .ToImmutableArray();
        var byId = conversations.ToDictionary(c => c.ConversationId, StringComparer.Ordinal);
        return (state with
        {
            LastStamp = snapshot.LastStamp,
            Conversations = state.Conversations.SetItems(
                conversations.Select(c => KeyValuePair.Create(c.ConversationId, c))),
            ByStamp = state.ByStamp.SetItems(
                snapshot.Conversations.Select(c => KeyValuePair.Create(c.LastUpdatedTimestamp, c.ConversationId))),
            Dedup = DedupWindow.Create(
                snapshot.Dedup.Skip(Math.Max(0, snapshot.Dedup.Length - limits.DedupWindow))
                    .Select(r => KeyValuePair.Create(r.ClientMessageId, new SentEntry(
                        byId.TryGetValue(r.ConversationId, out var c)
                            ? c.ParticipantIds.FirstOrDefault(p => p == r.RecipientId) ?? r.RecipientId
                            : r.RecipientId,
                        r.ServerTimestamp, r.TextHash))),
                limits.DedupWindow),
            Outbound = state.Outbound.SetItems(snapshot.Outbound.Select(o =>
                KeyValuePair.Create(o.RecipientId, OutboundChannel.Restore(o.RecipientId, o.LastSeq, o.Pending)))),
            Inbound = state.Inbound.SetItems(snapshot.Inbound.Select(i => KeyValuePair.Create(i.SenderId, i.LastSeq))),
            Openings = [.. snapshot.Openings.Skip(Math.Max(0, snapshot.Openings.Length - limits.MaxNewConversations))],
            StaleUpTo = snapshot.StaleUpTo ?? snapshotJournalSeq,
            Cold = snapshot.ColdPages.IsDefaultOrEmpty ? ColdIndex.Empty : ValidCold(snapshot.ColdPages, snapshot.ColdCount, snapshot.ColdGroups, snapshot.ColdChannels),
            RecentChars = conversations.Sum(c => CharsOf(c.Window, 0, c.Window.Length)),
            Windows = state.Windows.SetItems(conversations
                .Where(c => !c.Window.IsDefaultOrEmpty)
                .Select(c => KeyValuePair.Create(c.Anchors[0], c.ConversationId))),
        }).WithinRecentBound(); // a snapshot taken before the bound, or under a larger one
    }
}

/// <summary>
/// What a snapshot needs before it becomes state. Its strings are shared as replaying events shares them: each
/// window message's sender is the conversation's instance (<see cref="WindowMessage.From"/>).
/// </summary>
public sealed partial record MailboxState
{
    /// <summary>
    /// A snapshot taken before v1.1 has no tallies: in a 1:1 copy the messages from the other participant are exactly
    /// what their channel delivered (it carried nothing else then), and the window's tallies follow from that.
    /// </summary>
    private static ConversationSnapshot WithTallies(string userId, ConversationSnapshot c, MailboxSnapshot snapshot)
    {
        if (c.Tally is not null)
            return c;
        var other = c.ParticipantIds.FirstOrDefault(p => p != userId);
        var total = snapshot.Inbound.FirstOrDefault(i => i.SenderId == other)?.LastSeq ?? 0;
        var inWindow = c.Recent.Count(m => m.Message.SenderId != userId);
        var tally = new Tally(Math.Max(0, total - inWindow), 0);
        var recent = c.Recent.Select(m =>
        {
            tally = tally.After(m.Message, userId);
            return m with { Tally = tally };
        }).ToImmutableArray();
        return c with { Recent = recent, Tally = tally with { FromOthers = total } };
    }

    /// <summary>A snapshot's cold directory: a power of two of slots, or the recovery fails (not a later lookup).</summary>
    private static ColdIndex ValidCold(ImmutableArray<long> directory, long count, bool groups, bool channels) =>
        System.Numerics.BitOperations.IsPow2(directory.Length) && directory.Length <= 1 << ColdIndex.MaxDepth
            ? new ColdIndex(directory, count, groups, channels)
            : throw new InvalidDataException($"a cold directory of {directory.Length} slots (a power of two expected)");

    /// <summary>A dedup entry as the contract's record: ids are derived from the owner, so they are not kept.</summary>
    private SentRecord Record(string clientMessageId, SentEntry entry) => new(
        clientMessageId, Ids.MessageId(UserId, entry.ServerTimestamp), Ids.ConversationFor(UserId, entry.RecipientId),
        entry.RecipientId, entry.ServerTimestamp, entry.TextHash);
}

/// <summary>
/// What the dedup window keeps of one send, stored inline in its arrays (<see cref="DedupWindow"/>): the message id and conversation id are
/// derived from the mailbox owner, the recipient and the stamp (the recipient string is the conversation's instance).
/// </summary>
public readonly record struct SentEntry(string RecipientId, long ServerTimestamp, ulong TextHash);

/// <summary>
/// One sender-to-recipient delivery channel: the numbered copies not yet confirmed, oldest first. Bounded by count
/// and by text size (<see cref="MailboxLimits"/>): past either, new sends to that recipient are refused with 503.
/// </summary>
public sealed record OutboundChannel(
    string RecipientId, long LastSeq, ImmutableQueue<IChannelCopy> Pending, int PendingCount, long PendingChars)
{
    public static OutboundChannel Empty(string recipientId) => new(recipientId, 0, ImmutableQueue<IChannelCopy>.Empty, 0, 0);

    public static OutboundChannel Restore(string recipientId, long lastSeq, IReadOnlyCollection<IChannelCopy> pending) =>
        new(recipientId, lastSeq, ImmutableQueue.CreateRange(pending), pending.Count, pending.Sum(d => (long)d.TextLength));

    public long ConfirmedSeq => LastSeq - PendingCount;

    public Delivery.ChannelPosition Position => new(RecipientId, LastSeq, ConfirmedSeq);

    /// <summary>Whether one more copy of <paramref name="text"/> would pass the outbox's bound for this recipient.</summary>
    public bool IsFullFor(string text, MailboxLimits limits) =>
        PendingCount >= limits.MaxPendingPerRecipient || PendingChars + text.Length > limits.MaxPendingCharsPerRecipient;

    public OutboundChannel Enqueue(IChannelCopy copy) => this with
    {
        LastSeq = copy.ChannelSeq,
        Pending = Pending.Enqueue(copy),
        PendingCount = PendingCount + 1,
        PendingChars = PendingChars + copy.TextLength,
    };

    public OutboundChannel ConfirmUpTo(long upToSeq)
    {
        var pending = Pending;
        var count = PendingCount;
        var chars = PendingChars;
        while (!pending.IsEmpty && pending.Peek().ChannelSeq <= upToSeq)
        {
            pending = pending.Dequeue(out var confirmed);
            count--;
            chars -= confirmed.TextLength;
        }
        return this with { Pending = pending, PendingCount = count, PendingChars = chars };
    }
}
