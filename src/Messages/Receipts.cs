using System.Collections.Immutable;

namespace Messaging.Messages;

/// <summary>
/// How far one other participant has got with this user's messages, as the sender's <c>serverTimestamp</c>s: every
/// message of this user stamped at or below <see cref="DeliveredUpTo"/> / <see cref="ReadUpTo"/> has been delivered
/// to / read by them (0: none yet). Read implies delivered; neither ever moves backwards.
/// </summary>
public readonly record struct Receipt(long DeliveredUpTo, long ReadUpTo)
{
    public static Receipt Of(long deliveredUpTo, long readUpTo) => new(Math.Max(deliveredUpTo, readUpTo), readUpTo);

    /// <summary>The later of two receipts, marker by marker: what a receipt arriving late or twice cannot undo.</summary>
    public Receipt Merge(Receipt other) => Of(Math.Max(DeliveredUpTo, other.DeliveredUpTo), Math.Max(ReadUpTo, other.ReadUpTo));
}

/// <summary>One other participant's receipt for this user's messages.</summary>
/// <param name="JoinedAt">In a group: the serverTimestamp of the message that made them a member (0 in 1:1).</param>
/// <param name="LeftAt">In a group: the serverTimestamp of the message that removed them (0: still a member).</param>
public sealed record ParticipantReceipt(string UserId, Receipt Receipt, long JoinedAt = 0, long LeftAt = 0)
{
    /// <summary>Whether a message stamped <paramref name="serverTimestamp"/> went to them.</summary>
    public bool WasSent(long serverTimestamp) => JoinedAt <= serverTimestamp && (LeftAt == 0 || serverTimestamp <= LeftAt);
}

/// <summary>
/// Where the messages from others (not a group's membership changes) stand at one seq of a user's copy: how many there are at or below it, and the
/// serverTimestamp of the newest of them (0: none). A read marker at that seq turns into an unread count
/// (<c>FromOthers</c> of the newest minus this) and into the receipt the senders get (<c>LastFromOthersAt</c>).
/// </summary>
public readonly record struct Tally(long FromOthers, long LastFromOthersAt)
{
    /// <summary>The tally after one more message: from another participant, or the user's own.</summary>
    public Tally After(ChatMessage message, string ownerId) =>
        message.SenderId == ownerId || message.System is not null ? this : new(FromOthers + 1, message.ServerTimestamp);
}

/// <summary>What the user's own message has reached (thread pages): every other participant's receipt covers it.</summary>
public enum MessageStatus
{
    Sent = 0,
    Delivered = 1,
    Read = 2,
}

public static class Receipts
{
    /// <summary>
    /// The status of one of <paramref name="ownerId"/>'s own messages, null for anyone else's: read (delivered) when
    /// every other participant's receipt covers its serverTimestamp.
    /// </summary>
    public static MessageStatus? StatusOf(ChatMessage message, string ownerId, ImmutableArray<ParticipantReceipt> receipts)
    {
        if (message.SenderId != ownerId || message.System is not null)
            return null;
        var status = MessageStatus.Read;
        var anyone = false;
        if (Ids.IsGroup(message.ConversationId))
        {
            // A group message went to the members of the moment: their receipts say when they joined and left.
            foreach (var r in receipts.IsDefault ? [] : receipts)
            {
                if (r.UserId == ownerId || !r.WasSent(message.ServerTimestamp))
                    continue;
                anyone = true;
                status = Lower(status, Reached(r.Receipt, message.ServerTimestamp));
            }
        }
        else
        {
            foreach (var other in message.RecipientIds.IsDefault ? [] : message.RecipientIds)
            {
                anyone = true;
                status = Lower(status, Reached(Find(receipts, other), message.ServerTimestamp));
            }
        }
        return anyone ? status : MessageStatus.Sent;
    }

    private static MessageStatus Reached(Receipt receipt, long serverTimestamp) =>
        receipt.ReadUpTo >= serverTimestamp ? MessageStatus.Read
        : receipt.DeliveredUpTo >= serverTimestamp ? MessageStatus.Delivered
        : MessageStatus.Sent;

    private static MessageStatus Lower(MessageStatus a, MessageStatus b) => a < b ? a : b;

    public static Receipt Find(ImmutableArray<ParticipantReceipt> receipts, string userId)
    {
        if (receipts.IsDefaultOrEmpty)
            return default;
        foreach (var r in receipts)
        {
            if (r.UserId == userId)
                return r.Receipt;
        }
        return default;
    }
}
