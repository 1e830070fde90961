using System.Collections.Immutable;

namespace Messaging.Messages;

// ---- live events: a stream on any node follows one mailbox ----

/// <summary>
/// A live stream (the sender) asks the user's mailbox for what changed after <see cref="AfterStamp"/>. The mailbox
/// answers with one page of <see cref="LiveChanges"/>; once a page is the last one (<c>CaughtUp</c>), the stream is
/// registered and every later change is pushed to it. The stream sends this again as a heartbeat, and again to a
/// new incarnation after the mailbox moved: it resumes from its own last id, so nothing falls between the two.
/// </summary>
public sealed record Subscribe(string UserId, long AfterStamp) : IMailboxCommand
{
    public string MailboxId => UserId;
}

/// <summary>Changes of a mailbox, oldest first; each conversation's <c>LastUpdatedTimestamp</c> is its event id.</summary>
/// <param name="CaughtUp">False: more changes follow after the last one here; ask again from its stamp.</param>
/// <param name="UpTo">The mailbox's newest stamp when it answered: where a stream that starts live starts.</param>
public sealed record LiveChanges(ImmutableArray<ConversationChange> Changes, bool CaughtUp, long UpTo = 0) : IMessagingProtocol;

/// <summary>One change: the conversation as it is now, and the messages this change stored (none when catching up).</summary>
public sealed record ConversationChange(ConversationSummary Conversation, ImmutableArray<StoredMessage> Messages);

/// <summary>The mailbox takes no more streams for this user (the per-user limit).</summary>
public sealed record SubscriptionRefused(string Reason) : IMessagingProtocol;

/// <summary><see cref="UserId"/> is typing in a conversation: handled by their own mailbox, which knows the others.</summary>
public sealed record SendTyping(string UserId, string ConversationId) : IMailboxCommand
{
    public string MailboxId => UserId;
}

/// <summary>The typing notice went to the other participants' mailboxes (best effort, never stored).</summary>
public sealed record TypingSent(long Until) : IMessagingProtocol;

/// <summary>
/// <see cref="FromUserId"/> is typing in <see cref="ConversationId"/> until <see cref="Until"/>: handed to the other
/// participant's mailbox, which passes it to its live streams only. Never stored.
/// </summary>
public sealed record TypingNotice(string RecipientId, string ConversationId, string FromUserId, long Until) : IMailboxCommand
{
    public string MailboxId => RecipientId;
}
