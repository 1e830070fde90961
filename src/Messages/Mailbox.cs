using System.Collections.Immutable;

namespace Messaging.Messages;

/// <summary>One message as every participant's copy stores it; identical in each copy.</summary>
/// <param name="RecipientIds">The other participant of a 1:1 message; empty in a group, whose members change (the
/// members a group message went to are those of the group at its <paramref name="ServerTimestamp"/>).</param>
/// <param name="System">A group's membership change (<paramref name="Text"/> is then empty); null for what users write.</param>
public sealed record ChatMessage(
    string MessageId,
    string ConversationId,
    string SenderId,
    ImmutableArray<string> RecipientIds,
    string Text,
    string ClientMessageId,
    long ServerTimestamp,
    GroupChange? System = null)
{
    // A message id is sender + stamp (Ids.MessageId): kept only when it is not that, so a window of messages in
    // memory does not hold one more string per message. Events still carry it, and read it back unchanged.
    private readonly string? _explicitMessageId = Ids.IsDerivedMessageId(MessageId, SenderId, ServerTimestamp) ? null : MessageId;

    public string MessageId
    {
        get => _explicitMessageId ?? Ids.MessageId(SenderId, ServerTimestamp);
        init => _explicitMessageId = Ids.IsDerivedMessageId(value, SenderId, ServerTimestamp) ? null : value;
    }
}

/// <summary>A message at its place in one user's copy of a conversation.</summary>
/// <param name="Tally">The messages from others at or below this seq; null when read from an event written before
/// v1.1 (a live mailbox always knows it).</param>
public sealed record StoredMessage(long Seq, ChatMessage Message, Tally? Tally = null);

/// <summary>A conversation as the user's list (and live events) show it.</summary>
/// <param name="Kind"><see cref="DirectKind"/> or <c>group</c>.</param>
/// <param name="LastSeq">The seq of the newest message of this user's copy.</param>
/// <param name="ReadUpToSeq">This user's own read marker.</param>
/// <param name="UnreadCount">Messages from others above <paramref name="ReadUpToSeq"/>.</param>
/// <param name="Receipts">One per other participant: how far they have got with this user's messages.</param>
public sealed record ConversationSummary(
    string ConversationId,
    ImmutableArray<string> ParticipantIds,
    string Snippet,
    long LastUpdatedTimestamp,
    string Kind = ConversationSummary.DirectKind,
    string? Name = null,
    long LastSeq = 0,
    long ReadUpToSeq = 0,
    long UnreadCount = 0,
    ImmutableArray<ParticipantReceipt> Receipts = default)
{
    /// <summary>Never a default array (protobuf reads "absent" as empty, and so does everyone else).</summary>
    public ImmutableArray<ParticipantReceipt> Receipts { get; init; } = Receipts.IsDefault ? [] : Receipts;

    public const string DirectKind = "direct";
    public const string GroupKind = "group";
}

// ---- commands (HTTP edge -> mailbox) ----

/// <summary>Send a 1:1 message; handled by the sender's mailbox.</summary>
public sealed record SendMessage(
    string SenderId,
    ImmutableArray<string> RecipientIds,
    string Text,
    string ClientMessageId) : IMailboxCommand
{
    public string MailboxId => SenderId;
}

public sealed record GetConversations(string UserId, int Offset, int Count, long AfterTimestamp) : IMailboxCommand
{
    public string MailboxId => UserId;
}

/// <summary>A page of one conversation: newest-first <see cref="Offset"/>, returned oldest first.</summary>
public sealed record GetThread(
    string UserId,
    string ConversationId,
    int Offset,
    int Count,
    long? BeforeSeq,
    long? AfterSeq) : IMailboxCommand
{
    public string MailboxId => UserId;
}

/// <summary>
/// Where a mailbox lives and how far its journal goes (for operators), and whether its user may open a conversation
/// now (<see cref="MailboxStatus.OpeningWaitMs"/>): before a group is created, its creator's mailbox is asked with the
/// group's id as <paramref name="OpeningConversationId"/> (a conversation it has already opened costs nothing).
/// </summary>
public sealed record GetMailboxStatus(string UserId, string? OpeningConversationId = null) : IMailboxCommand
{
    public string MailboxId => UserId;
}

// ---- delivery between mailboxes ----

/// <summary>
/// What one mailbox hands to another over their delivery channel. <see cref="ChannelSeq"/> numbers the copies of one
/// sender to one recipient 1, 2, 3...; the recipient stores only the next one in line, so delivery is ordered and
/// stored once however often a copy is resent.
/// </summary>
public interface IChannelCopy : IMailboxCommand
{
    string RecipientId { get; }

    long ChannelSeq { get; }

    /// <summary>The mailbox whose channel this is (the one that resends until confirmed).</summary>
    string SenderId { get; }

    /// <summary>Characters of text this copy holds (the outbox's size bound counts them).</summary>
    int TextLength { get; }

    /// <summary>
    /// The channel number of the copy before this one for this recipient: the recipient stores a copy only when it
    /// has everything up to here. A 1:1 channel numbers its copies without gaps; a group's copies carry the group's
    /// order, in which a member's copies have gaps where they were not a member.
    /// </summary>
    long PreviousSeq => ChannelSeq - 1;
}

/// <summary>The recipient's copy of a message, handed on by the sender's mailbox.</summary>
public sealed record DeliverMessage(string RecipientId, long ChannelSeq, ChatMessage Message) : IChannelCopy
{
    public string MailboxId => RecipientId;

    public string SenderId => Message.SenderId;

    public int TextLength => Message.Text.Length;
}

/// <summary>
/// A receipt for the recipient's messages in <see cref="ConversationId"/>, handed on by the reader's mailbox over the
/// same channel as messages (so it is ordered after the messages it covers, and never lost).
/// </summary>
public sealed record DeliverReceipt(string RecipientId, long ChannelSeq, string SenderId, string ConversationId, Receipt Receipt)
    : IChannelCopy
{
    public string MailboxId => RecipientId;

    public int TextLength => 0;
}

/// <summary>
/// Move this user's own delivered / read markers in a conversation (seqs of their copy). Markers only move forward;
/// read implies delivered. Answered with the conversation (<see cref="ConversationSummary"/>) once durable.
/// </summary>
public sealed record MarkReceipts(string UserId, string ConversationId, long? DeliveredUpToSeq, long? ReadUpToSeq) : IMailboxCommand
{
    public string MailboxId => UserId;
}

/// <summary>The conversation as it is after a command that changed it (or found it already so).</summary>
public sealed record ConversationAnswer(ConversationSummary Conversation) : IMessagingProtocol;

/// <summary>A receipt that cannot be taken as asked (above lastSeq, negative): nothing is stored.</summary>
public sealed record ReceiptRefused(string Detail) : IMessagingProtocol;

/// <summary>The recipient has durably stored everything from the sender up to <see cref="UpToSeq"/>.</summary>
public sealed record ConfirmDelivery(string SenderId, string RecipientId, long UpToSeq) : IMailboxCommand
{
    public string MailboxId => SenderId;
}

/// <summary>
/// A mailbox with copies still unconfirmed sends itself this through the shard region at every redelivery tick: the
/// shard counts it as activity, so the mailbox is not passivated while it has copies to deliver, and redelivery goes
/// on without any action of its user (a local timer alone does not count as activity).
/// </summary>
public sealed record KeepDelivering(string UserId) : IMailboxCommand
{
    public string MailboxId => UserId;
}

/// <summary>Sharding's hand-off / passivation stop message: the mailbox drains its writes, then stops.</summary>
public sealed record StopMailbox : IMessagingProtocol
{
    public static readonly StopMailbox Instance = new();
}

// ---- replies ----

public enum SendOutcome
{
    Sent = 0,
    Accepted = 1,
    Duplicate = 2,
    Conflict = 3,
    Invalid = 4,
    Unavailable = 5,
    /// <summary>A group send from someone who is not (or no longer) a member.</summary>
    Forbidden = 6,
    /// <summary>A group send to a group that does not exist.</summary>
    NotFound = 7,
    /// <summary>The sender opened too many new conversations lately; <see cref="SendResult.RetryAfterMs"/> says when to retry.</summary>
    RateLimited = 8,
}

/// <param name="RetryAfterMs">With <see cref="SendOutcome.RateLimited"/>: how long until a retry can succeed.</param>
public sealed record SendResult(
    SendOutcome Outcome,
    string MessageId,
    string ConversationId,
    long ServerTimestamp,
    string Detail,
    long RetryAfterMs = 0) : IMessagingProtocol
{
    public static SendResult Failure(SendOutcome outcome, string detail) => new(outcome, "", "", 0, detail);
}

public sealed record ConversationsPage(ImmutableArray<ConversationSummary> Conversations, bool HasChanges)
    : IMessagingProtocol;

/// <param name="Receipts">The conversation's receipts, so the owner's messages show their status.</param>
public sealed record ThreadPage(ImmutableArray<StoredMessage> Messages, ImmutableArray<ParticipantReceipt> Receipts = default)
    : IMessagingProtocol
{
    /// <summary>Never a default array (protobuf reads "absent" as empty, and so does everyone else).</summary>
    public ImmutableArray<ParticipantReceipt> Receipts { get; init; } = Receipts.IsDefault ? [] : Receipts;
}

public sealed record ConversationNotFound(string ConversationId) : IMessagingProtocol;

/// <summary>The mailbox could not answer now (journal unavailable, read timed out); the caller may retry.</summary>
public sealed record MailboxUnavailable(string Reason) : IMessagingProtocol;

public sealed record MailboxStatus(
    string UserId,
    string PersistenceId,
    long LastSequenceNr,
    int Conversations,
    int PendingDeliveries,
    string NodeAddress,
    long OpeningWaitMs = 0,
    long ColdConversations = 0,
    int LoneChannels = 0) : IMessagingProtocol;

// ---- events ----

/// <summary>
/// Journal sequence numbers of earlier messages of the same conversation in this journal: the message just before
/// and the one at <c>seq - lowbit(seq)</c>. Together they make a skip list through the journal, so a page deep in a
/// long thread is found in O(log n) point reads without keeping the thread in memory. 0 means none.
/// </summary>
public sealed record ThreadLinks(long Previous, long Skip)
{
    public static readonly ThreadLinks None = new(0, 0);
}

/// <summary>The sender's copy is stored and the recipient's copy queued for delivery (one atomic event).</summary>
/// <param name="Tally">The messages from others at or below <paramref name="Seq"/>, for readers of the journal
/// (a read marker deep in history); null in events written before v1.1. Replay computes it again.</param>
public sealed record MessageSent(
    ChatMessage Message,
    long Seq,
    ThreadLinks Links,
    long ChannelSeq,
    Tally? Tally = null) : IMailboxEvent;

/// <summary>A recipient's copy is stored; <see cref="ChannelSeq"/> is the sender's number for it.</summary>
/// <param name="GroupName">A group's name (null for 1:1 messages).</param>
/// <param name="GroupMembers">A group's members after this message, when this copy starts the recipient's membership
/// (empty otherwise: the recipient follows the membership changes the messages carry).</param>
public sealed record MessageReceived(
    ChatMessage Message,
    long Seq,
    long Stamp,
    ThreadLinks Links,
    long ChannelSeq,
    Tally? Tally = null,
    string? GroupName = null,
    ImmutableArray<string> GroupMembers = default) : IMailboxEvent
{
    /// <summary>Never a default array (protobuf reads "absent" as empty, and so does everyone else).</summary>
    public ImmutableArray<string> GroupMembers { get; init; } = GroupMembers.IsDefault ? [] : GroupMembers;
}

/// <summary>
/// This user moved their own markers in a conversation (one atomic event): the markers and what they stand for, the
/// conversation's new stamp, and, when the senders' receipt moved, its copy queued on the channel to
/// <paramref name="OtherId"/> as number <paramref name="ChannelSeq"/> (0: no copy). In a group the copies go to the
/// members in <paramref name="Copies"/> (and <paramref name="OtherId"/> is empty).
/// </summary>
public sealed record ReceiptsMarked(
    string ConversationId,
    long DeliveredUpToSeq,
    long ReadUpToSeq,
    Tally Delivered,
    Tally Read,
    long Stamp,
    string OtherId,
    long ChannelSeq,
    ImmutableArray<ChannelTarget> Copies = default) : IMailboxEvent
{
    /// <summary>Never a default array (protobuf reads "absent" as empty, and so does everyone else).</summary>
    public ImmutableArray<ChannelTarget> Copies { get; init; } = Copies.IsDefault ? [] : Copies;

    /// <summary>Every copy this event queues: the one to <see cref="OtherId"/>, or a group's.</summary>
    public IEnumerable<ChannelTarget> Targets =>
        ChannelSeq > 0 ? Copies.Prepend(new ChannelTarget(OtherId, ChannelSeq)) : Copies;
}

/// <summary>A copy's place: the recipient and its number on the channel to them.</summary>
public sealed record ChannelTarget(string RecipientId, long ChannelSeq);

/// <summary>Another participant's receipt for this user's messages is stored (the channel's copy number <paramref name="ChannelSeq"/>).</summary>
public sealed record ReceiptReceived(
    string ConversationId,
    string FromUserId,
    Receipt Receipt,
    long Stamp,
    long ChannelSeq) : IMailboxEvent;

/// <summary>The recipient confirmed everything up to <see cref="UpToSeq"/>; those copies leave the outbox (a mailbox's or a group's).</summary>
public sealed record DeliveriesConfirmed(string RecipientId, long UpToSeq) : IMailboxEvent, IGroupEvent;

/// <summary>
/// The first write of every mailbox incarnation that writes: it makes this incarnation the journal's only writer of
/// the mailbox. The journal refuses a claim unless it is the newest event, and from then on refuses every event of any
/// other writer (a paused node's old incarnation included). <see cref="Node"/> and <see cref="ClaimedAt"/> are for
/// operators reading the journal.
/// </summary>
public sealed record WriterClaimed(string Node, long ClaimedAt) : IMailboxEvent, IGroupEvent;

/// <summary>
/// Events an older writer wrote after a newer one had taken over (journals written before writes were fenced) are
/// resolved up to this journal sequence number: what they stored was stored again by the current writer, so a later
/// recovery skips them.
/// </summary>
public sealed record StaleWritesResolved(long UpToJournalSeq) : IMailboxEvent;
