using System.Collections.Immutable;

namespace Messaging.Messages;

/// <summary>One message as every participant's copy stores it; identical in each copy.</summary>
public sealed record ChatMessage(
    string MessageId,
    string ConversationId,
    string SenderId,
    ImmutableArray<string> RecipientIds,
    string Text,
    string ClientMessageId,
    long ServerTimestamp)
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
public sealed record StoredMessage(long Seq, ChatMessage Message);

public sealed record ConversationSummary(
    string ConversationId,
    ImmutableArray<string> ParticipantIds,
    string Snippet,
    long LastUpdatedTimestamp);

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

/// <summary>Where a mailbox lives and how far its journal goes (for operators).</summary>
public sealed record GetMailboxStatus(string UserId) : IMailboxCommand
{
    public string MailboxId => UserId;
}

// ---- delivery between mailboxes ----

/// <summary>
/// The recipient's copy, handed on by the sender's mailbox. <see cref="ChannelSeq"/> numbers the messages of one
/// sender to one recipient 1, 2, 3...; the recipient stores only the next one in line, so delivery is ordered and
/// stored once however often it is resent.
/// </summary>
public sealed record DeliverMessage(string RecipientId, long ChannelSeq, ChatMessage Message) : IMailboxCommand
{
    public string MailboxId => RecipientId;
}

/// <summary>The recipient has durably stored everything from the sender up to <see cref="UpToSeq"/>.</summary>
public sealed record ConfirmDelivery(string SenderId, string RecipientId, long UpToSeq) : IMailboxCommand
{
    public string MailboxId => SenderId;
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
}

public sealed record SendResult(
    SendOutcome Outcome,
    string MessageId,
    string ConversationId,
    long ServerTimestamp,
    string Detail) : IMessagingProtocol
{
    public static SendResult Failure(SendOutcome outcome, string detail) => new(outcome, "", "", 0, detail);
}

public sealed record ConversationsPage(ImmutableArray<ConversationSummary> Conversations, bool HasChanges)
    : IMessagingProtocol;

public sealed record ThreadPage(ImmutableArray<StoredMessage> Messages) : IMessagingProtocol;

public sealed record ConversationNotFound(string ConversationId) : IMessagingProtocol;

/// <summary>The mailbox could not answer now (journal unavailable, read timed out); the caller may retry.</summary>
public sealed record MailboxUnavailable(string Reason) : IMessagingProtocol;

public sealed record MailboxStatus(
    string UserId,
    string PersistenceId,
    long LastSequenceNr,
    int Conversations,
    int PendingDeliveries,
    string NodeAddress) : IMessagingProtocol;

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
public sealed record MessageSent(
    ChatMessage Message,
    long Seq,
    ThreadLinks Links,
    long ChannelSeq) : IMailboxEvent;

/// <summary>A recipient's copy is stored; <see cref="ChannelSeq"/> is the sender's number for it.</summary>
public sealed record MessageReceived(
    ChatMessage Message,
    long Seq,
    long Stamp,
    ThreadLinks Links,
    long ChannelSeq) : IMailboxEvent;

/// <summary>The recipient confirmed everything up to <see cref="UpToSeq"/>; those copies leave the outbox.</summary>
public sealed record DeliveriesConfirmed(string RecipientId, long UpToSeq) : IMailboxEvent;

/// <summary>
/// The first write of every mailbox incarnation that writes: it makes this incarnation the journal's only writer of
/// the mailbox. The journal refuses a claim unless it is the newest event, and from then on refuses every event of any
/// other writer (a paused node's old incarnation included). <see cref="Node"/> and <see cref="ClaimedAt"/> are for
/// operators reading the journal.
/// </summary>
public sealed record WriterClaimed(string Node, long ClaimedAt) : IMailboxEvent;

/// <summary>
/// Events an older writer wrote after a newer one had taken over (journals written before writes were fenced) are
/// resolved up to this journal sequence number: what they stored was stored again by the current writer, so a later
/// recovery skips them.
/// </summary>
public sealed record StaleWritesResolved(long UpToJournalSeq) : IMailboxEvent;
