using System.Collections.Immutable;
using Messaging.Messages;

namespace Messaging.Actors;

/// <summary>
/// One conversation as a live mailbox holds it: the index entry, the owner's markers and the others' receipts, and a
/// bounded window of recent messages. Free to change shape; what a snapshot keeps of it is
/// <see cref="ConversationSnapshot"/>.
/// </summary>
/// <param name="Anchors">
/// <c>Anchors[k]</c> is the journal sequence number of the newest message whose seq is a multiple of 2^k
/// (<c>Anchors[0]</c> is the newest message). Entry points into the journal skip list; log2(LastSeq)+1 longs.
/// </param>
/// <param name="Window">The recent messages, oldest first, with consecutive seqs, compact (<see cref="WindowMessage"/>):
/// <see cref="Stored"/> and <see cref="Recent"/> build them into the contract's messages.</param>
/// <param name="Tally">Messages from others in the whole copy, and the newest one's timestamp.</param>
/// <param name="Delivered">The tally at <paramref name="DeliveredUpToSeq"/>.</param>
/// <param name="Read">The tally at <paramref name="ReadUpToSeq"/>.</param>
/// <param name="UnreadSenders">A group's: the senders of the messages after <paramref name="ReadUpToSeq"/> (a superset
/// once a marker stopped short of the last message), at most <see cref="MailboxState.UnreadSendersKept"/>; default if
/// not known (more than that, or a snapshot from before 1.9.1). Whom a marker's receipt goes to when the messages it
/// covers are before the window (<see cref="MailboxState"/>'s ReceiptTargets), instead of every member.</param>
public sealed record ConversationState(
    string ConversationId,
    ImmutableArray<string> ParticipantIds,
    string Snippet,
    long LastUpdatedTimestamp,
    long LastSeq,
    ImmutableArray<long> Anchors,
    ImmutableArray<WindowMessage> Window,
    string Kind = ConversationSummary.DirectKind,
    string? Name = null,
    long DeliveredUpToSeq = 0,
    long ReadUpToSeq = 0,
    Tally Tally = default,
    Tally Delivered = default,
    Tally Read = default,
    ImmutableArray<ParticipantReceipt> Receipts = default,
    ImmutableArray<string> UnreadSenders = default)
{
    /// <summary>Never a default array (protobuf reads "absent" as empty, and so does everyone else).</summary>
    public ImmutableArray<ParticipantReceipt> Receipts { get; init; } = Receipts.IsDefault ? [] : Receipts;

    public long UnreadCount => Tally.FromOthers - Read.FromOthers;

    /// <summary>Message <paramref name="index"/> of the window as stored.</summary>
    public StoredMessage Stored(int index) => Window[index].ToStored(ConversationId, ParticipantIds);

    /// <summary>Messages <paramref name="start"/>.. of the window as stored (a page, a snapshot).</summary>
    public ImmutableArray<StoredMessage> Recent(int start = 0, int count = -1)
    {
        count = count < 0 ? Window.Length - start : count;
        var messages = new StoredMessage[count];
        for (var i = 0; i < count; i++)
            messages[i] = Stored(start + i);
        return ImmutableArray.Create(messages);
    }

    /// <summary>The window as it is held (<see cref="CompactWindow"/>) when every message of it can be, else as messages.</summary>
    public ConversationSnapshot ToSnapshot()
    {
        var compact = WindowAsHeld();
        return new(ConversationId, ParticipantIds, Snippet, LastUpdatedTimestamp, LastSeq, Anchors, compact is null ? Recent() : [],
            Kind, Name, DeliveredUpToSeq, ReadUpToSeq, Tally, Delivered, Read, Receipts, compact, UnreadSenders);
    }

    /// <summary>
    /// The window's own bytes, or null if it is empty or holds a message they do not carry whole (a group's membership
    /// change, a message of someone no longer in the group, an explicit message id, a text with a lone surrogate):
    /// then it is written as messages.
    /// </summary>
    private CompactWindow? WindowAsHeld()
    {
        if (Window.IsDefaultOrEmpty)
            return null;
        var bytes = new byte[Window.Length][];
        var senders = new int[Window.Length];
        for (var i = 0; i < Window.Length; i++)
        {
            var sender = ParticipantIds.IndexOf(Window[i].SenderId);
            if (Window[i].CompactBytes is not { } data || sender < 0)
                return null;
            (bytes[i], senders[i]) = (data, sender);
        }
        return new CompactWindow(ImmutableArray.Create(bytes), ImmutableArray.Create(senders));
    }

    public static ConversationState FromSnapshot(ConversationSnapshot c)
    {
        var direct = !Ids.IsGroup(c.ConversationId);
        ImmutableArray<WindowMessage>.Builder window;
        if (c.Window is { } compact)
        {
            window = ImmutableArray.CreateBuilder<WindowMessage>(compact.Messages.Length);
            for (var i = 0; i < compact.Messages.Length; i++)
                window.Add(WindowMessage.FromCompact(compact.Messages[i], c.ParticipantIds, compact.Senders[i], direct));
            // What pages and tallies index by: consecutive seqs that end at the conversation's last one.
            for (var i = 0; i < window.Count; i++)
            {
                if (window[i].Seq != c.LastSeq - window.Count + 1 + i)
                    throw new InvalidDataException(
                        $"the window of {c.ConversationId} has message {window[i].Seq} at {i} of {window.Count}, up to {c.LastSeq}");
            }
        }
        else
        {
            window = ImmutableArray.CreateBuilder<WindowMessage>(c.Recent.Length);
            foreach (var stored in c.Recent)
                window.Add(WindowMessage.From(stored, c.ParticipantIds, direct));
        }
        return new(c.ConversationId, c.ParticipantIds, c.Snippet, c.LastUpdatedTimestamp, c.LastSeq, c.Anchors, window.MoveToImmutable(),
            c.Kind, c.Name, c.DeliveredUpToSeq, c.ReadUpToSeq, c.Tally ?? default, c.Delivered, c.Read,
            c.Receipts, Shared(c.UnreadSenders, c.ParticipantIds));
    }

    /// <summary>
    /// The members' own string instances where the senders are members (one copy of each id in memory). Participants
    /// are kept in ordinal order: a binary search (a former member, or an order it missed, keeps its own string).
    /// </summary>
    private static ImmutableArray<string> Shared(ImmutableArray<string> senders, ImmutableArray<string> participants)
    {
        if (senders.IsDefaultOrEmpty)
            return senders;
        var shared = new string[senders.Length];
        for (var i = 0; i < shared.Length; i++)
        {
            var index = participants.BinarySearch(senders[i], StringComparer.Ordinal);
            shared[i] = index >= 0 ? participants[index] : senders[i];
        }
        return ImmutableArray.Create(shared);
    }

    /// <summary>
    /// What the list and live events show of it, as <paramref name="ownerId"/>'s copy: a receipt for every other
    /// participant, (0, 0) until theirs arrives (API.md: one entry per other participant).
    /// </summary>
    public ConversationSummary ToSummary(string ownerId)
    {
        var receipts = Receipts;
        if (Kind == ConversationSummary.GroupKind)
        {
            // Only the current members: former members' receipts stay for the status of what was sent to them.
            var members = ParticipantIds.ToHashSet(StringComparer.Ordinal);
            receipts = [.. receipts.Where(r => r.LeftAt == 0 && members.Contains(r.UserId))];
            var known = receipts.Select(r => r.UserId).ToHashSet(StringComparer.Ordinal);
            receipts = receipts.AddRange(ParticipantIds
                .Where(p => p != ownerId && !known.Contains(p))
                .Select(p => new ParticipantReceipt(p, default)));
        }
        else
        {
            foreach (var participant in ParticipantIds)
            {
                if (participant != ownerId && !receipts.Any(r => r.UserId == participant))
                    receipts = receipts.Add(new ParticipantReceipt(participant, default));
            }
        }
        return new(ConversationId, ParticipantIds, Snippet, LastUpdatedTimestamp, Kind, Name, LastSeq, ReadUpToSeq, UnreadCount,
            receipts);
    }

    /// <summary>The tally at <paramref name="seq"/> if this copy knows it without reading the journal.</summary>
    public Tally? TallyAt(long seq)
    {
        if (seq <= 0)
            return default(Tally);
        if (seq >= LastSeq)
            return Tally;
        if (seq == DeliveredUpToSeq)
            return Delivered;
        if (seq == ReadUpToSeq)
            return Read;
        if (Window.Length > 0 && seq >= Window[0].Seq)
            return Window[(int)(seq - Window[0].Seq)].Tally;
        return null;
    }
}
