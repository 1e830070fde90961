using System.Collections.Immutable;
using Messaging.Messages;

namespace Messaging.Actors;

/// <summary>
/// Cold conversations (1.8.0): past <see cref="MailboxLimits.MaxConversationsInMemory"/>, the 1:1 conversations changed
/// longest ago leave memory and the snapshot, with the channel positions shared with their other participant, into
/// pages of the mailbox's own journal (<see cref="ColdIndex"/>). Anything that needs one again (a message or receipt
/// from or to that participant, a marker, a page of its thread) finds it by one read of one event, and a write brings
/// it back (<see cref="ConversationRestored"/>). Groups go cold the same way since 1.9.0 (the ColdGroups feature), with
/// their group's channel position; their entries are written under manifests 1.8.0 refuses.
/// </summary>
public sealed partial record MailboxState
{
    /// <summary>Where the cold conversations are.</summary>
    public ColdIndex Cold { get; init; } = ColdIndex.Empty;

    /// <summary>Whether <paramref name="conversationId"/> may be cold: not in memory, and its slot of the cold index has a page.</summary>
    public bool MayBeCold(string conversationId) => !Conversations.ContainsKey(conversationId) && Cold.PageOf(conversationId) != 0;

    /// <summary>
    /// The cold conversation a write needs in memory before it is decided, if any: the other participant's 1:1
    /// conversation carries their channel's positions, so every copy to or from them needs it (a group's receipt copies
    /// go to its members one by one); a group's copy, a receipt about a group message and a marker in a group need the
    /// group's own conversation too. Called again once that one is back, it names the next (or none).
    /// </summary>
    /// <param name="notCold">Conversations the caller knows are not cold (their slot's page was read, and they are not
    /// in it): passed over, so that a later one of several (a group receipt's targets) is still found.</param>
    public string? ColdNeededFor(object command, IReadOnlySet<string>? notCold = null)
    {
        if (Cold.Directory.IsDefaultOrEmpty)
            return null; // nothing ever went cold: the path of nearly every mailbox, with no id built or hashed
        string? Dm(string? other) =>
            other is null || other == UserId || !Ids.IsValidUserId(other) ? null : Ids.ConversationFor(UserId, other);
        string? IfCold(string? id) => id is not null && MayBeCold(id) && notCold?.Contains(id) != true ? id : null;
        switch (command)
        {
            case SendMessage send when send.RecipientIds.Length == 1:
                return IfCold(Dm(send.RecipientIds[0]));
            case DeliverGroupMessage copy:
                return IfCold(copy.Message.ConversationId);
            case DeliverMessage delivery when Ids.IsGroup(delivery.Message.ConversationId):
                return IfCold(delivery.Message.ConversationId); // a stale group copy (ResolveStale)
            case DeliverMessage delivery:
                return IfCold(Dm(delivery.Message.SenderId));
            case DeliverReceipt receipt:
                // The channel's position rides the 1:1 conversation; the receipt itself lands on its conversation.
                return IfCold(Dm(receipt.SenderId)) ?? (Ids.IsGroup(receipt.ConversationId) ? IfCold(receipt.ConversationId) : null);
            case MarkReceipts marks when IfCold(marks.ConversationId) is { } cold:
                return cold; // the conversation first (a group's), then the receipt's targets
            case MarkReceipts marks when !Ids.IsGroup(marks.ConversationId):
                return null;
            case MarkReceipts marks when Conversations.TryGetValue(marks.ConversationId, out var group):
                // Exactly whom the receipt may go to (DecideReceipts' targets): the senders of the messages the markers
                // newly cover, members or not any more; when those messages are before the window, the senders of every
                // unread message if known, else every member.
                var read = Math.Max(group.ReadUpToSeq, marks.ReadUpToSeq ?? 0);
                var delivered = Math.Min(group.LastSeq, Math.Max(Math.Max(group.DeliveredUpToSeq, marks.DeliveredUpToSeq ?? 0), read));
                foreach (var target in ReceiptTargets(group, delivered))
                {
                    if (IfCold(Dm(target)) is { } dm)
                        return dm;
                }
                return null;
            default:
                return null;
        }
    }

    /// <summary>
    /// The conversations to take out of memory next, oldest first, if more than
    /// <see cref="MailboxLimits.MaxConversationsInMemory"/> are in it: the 1:1 conversations changed longest ago with
    /// nothing pending on their channel and not <paramref name="keep"/> (brought back lately), as many as are over the
    /// bound, at most <paramref name="most"/> (one walk of the list for many archives). Each is archived in its own step
    /// (<see cref="IsArchivable"/> again first). Groups go too, unless <paramref name="groups"/> is false (the ColdGroups
    /// gate closed): then they stay, and do not stop the 1:1 conversations after them from going.
    /// </summary>
    public IReadOnlyList<string> PlanArchive(Func<string, bool>? keep = null, int most = 64, bool groups = true)
    {
        var max = Limits.MaxConversationsInMemory;
        if (max <= 0 || Conversations.Count <= max)
            return [];
        var over = Math.Min(most, Conversations.Count - max);
        var plan = new List<string>(over);
        // ByStamp is newest first: walk it from the end (one copy of its ids, as long as the list is).
        var ids = ByStamp.Values.ToArray();
        for (var i = ids.Length - 1; i >= 0 && plan.Count < over; i--)
        {
            if (IsArchivable(ids[i], groups) && keep?.Invoke(ids[i]) != true)
                plan.Add(ids[i]);
        }
        return plan;
    }

    /// <summary>
    /// A conversation in memory that may go cold: a 1:1 one with nothing pending on its channel to the other
    /// participant, or a group (its copies come from the group, which resends what is not confirmed), if
    /// <paramref name="groups"/>.
    /// </summary>
    public bool IsArchivable(string conversationId, bool groups = true) =>
        Conversations.TryGetValue(conversationId, out var conversation)
        && (Ids.IsGroup(conversationId)
            ? groups
            : OtherOf(conversation) is { } other && !(Outbound.TryGetValue(other, out var channel) && channel.PendingCount > 0));

    /// <summary>
    /// The event that takes <paramref name="conversationId"/> out of memory into its page: <paramref name="current"/>
    /// (the page's latest version, read from the journal) or a new one.
    /// </summary>
    public ConversationsArchived Archive(string conversationId, ColdPage? current)
    {
        var conversation = Conversations[conversationId];
        // A group's channel is the group's own (its copies, numbered by the group); this user sends to it through the group.
        var other = Ids.IsGroup(conversationId)
            ? conversationId
            : OtherOf(conversation) ?? throw new ArgumentException($"{conversationId} is not a conversation of {UserId}");
        OutboundChannel? channel = null;
        if (!Ids.IsGroup(conversationId) && Outbound.TryGetValue(other, out channel) && channel.PendingCount > 0)
            throw new ArgumentException($"{conversationId} has copies to {other} awaiting delivery");
        var entry = new ColdEntry(
            (conversation with { Window = Ids.IsGroup(conversationId) ? UnreadTail(conversation) : [] }).ToSnapshot(),
            Inbound.GetValueOrDefault(other),
            channel?.LastSeq ?? 0);
        var digest = ColdIndex.Digest(conversationId);
        if (current is not null && (digest & ((1UL << current.Depth) - 1)) != current.Bits)
            throw new ArgumentException($"{conversationId} does not belong on the page of depth {current.Depth} with bits {current.Bits:x}");
        var pages = ColdIndex.Put(current ?? Cold.NewPage(digest), [entry], Conversations.ContainsKey, ColdIndex.ByteSplitDepth(Cold.Count + 1));
        return new ConversationsArchived(pages, [conversationId]);
    }

    /// <summary>
    /// What brings <paramref name="conversationId"/> back from its page, as <paramref name="pages"/> (the event its slot
    /// names) hold it; null if it is not there (it never was cold: a new conversation).
    /// </summary>
    public ConversationRestored? Restore(string conversationId, ImmutableArray<ColdPage> pages) =>
        FindCold(conversationId, pages) is { } entry ? new ConversationRestored(entry) : null;

    /// <summary>The cold entry of <paramref name="conversationId"/> in <paramref name="pages"/>, if it is cold and there.</summary>
    public ColdEntry? FindCold(string conversationId, ImmutableArray<ColdPage> pages)
    {
        if (Conversations.ContainsKey(conversationId))
            return null;
        var page = ColdIndex.PageFor(pages, ColdIndex.Digest(conversationId));
        foreach (var entry in page?.Entries ?? [])
        {
            if (entry.Conversation.ConversationId == conversationId)
                return entry;
        }
        return null;
    }

    /// <summary>A group's unread messages that its cold entry keeps (at most this many, of at most this many characters).</summary>
    public const int ColdUnreadTailMessages = 16;

    public const int ColdUnreadTailChars = 4_096;

    /// <summary>
    /// What a group's cold entry keeps of its window: the messages after the owner's read marker, when the window holds
    /// all of them and they are few and short. A marker in the group once it is back then sends its receipt to the
    /// senders of the messages it covers, as before it went cold; without them, to the senders of every unread message
    /// (<see cref="ConversationState.UnreadSenders"/>), or every member if those are not known
    /// (<see cref="ReceiptTargets"/>): each a copy on a channel of its own, each target's 1:1 conversation looked for
    /// in the cold pages first.
    /// </summary>
    private static ImmutableArray<WindowMessage> UnreadTail(ConversationState conversation)
    {
        var window = conversation.Window;
        if (window.IsDefaultOrEmpty || conversation.ReadUpToSeq >= conversation.LastSeq || window[0].Seq > conversation.ReadUpToSeq + 1)
            return [];
        var start = (int)(conversation.ReadUpToSeq + 1 - window[0].Seq);
        var count = window.Length - start;
        return count > ColdUnreadTailMessages || CharsOf(window, start, count) > ColdUnreadTailChars ? [] : window[start..];
    }

    /// <summary>The channel a conversation's positions are kept under: the other participant's, or the group's own.</summary>
    private string? ChannelOf(ConversationState conversation) =>
        Ids.IsGroup(conversation.ConversationId) ? conversation.ConversationId : OtherOf(conversation);

    private string? OtherOf(ConversationState conversation)
    {
        if (Ids.IsGroup(conversation.ConversationId))
            return null;
        foreach (var participant in conversation.ParticipantIds)
        {
            if (participant != UserId)
                return participant;
        }
        return null;
    }

    private MailboxState ApplyArchived(ConversationsArchived archived, long journalSeq)
    {
        var conversations = Conversations;
        var byStamp = ByStamp;
        var windows = Windows;
        var chars = RecentChars;
        var inbound = Inbound;
        var outbound = Outbound;
        var moved = 0;
        var groups = false;
        foreach (var id in archived.ConversationIds)
        {
            if (!conversations.TryGetValue(id, out var conversation))
                continue;
            moved++;
            conversations = conversations.Remove(id);
            byStamp = byStamp.Remove(conversation.LastUpdatedTimestamp);
            if (!conversation.Window.IsDefaultOrEmpty)
            {
                windows = windows.Remove(conversation.Anchors[0]);
                chars -= CharsOf(conversation.Window, 0, conversation.Window.Length);
            }
            if (ChannelOf(conversation) is { } channel)
            {
                inbound = inbound.Remove(channel);
                outbound = outbound.Remove(channel);
            }
            groups |= Ids.IsGroup(id);
        }
        return this with
        {
            Conversations = conversations,
            ByStamp = byStamp,
            Windows = windows,
            RecentChars = chars,
            Inbound = inbound,
            Outbound = outbound,
            Cold = Cold.With(archived.Pages, journalSeq, moved, groups),
        };
    }

    private MailboxState ApplyRestored(ConversationRestored restored)
    {
        var conversation = ConversationState.FromSnapshot(restored.Entry.Conversation);
        if (Conversations.ContainsKey(conversation.ConversationId))
            return this;
        var next = this with
        {
            Conversations = Conversations.SetItem(conversation.ConversationId, conversation),
            ByStamp = ByStamp.SetItem(conversation.LastUpdatedTimestamp, conversation.ConversationId),
            Cold = Cold with { Count = Math.Max(0, Cold.Count - 1) },
        };
        if (!conversation.Window.IsDefaultOrEmpty)
        {
            // A group's unread messages came back with it: they count toward the bound on recent text like any window.
            next = (next with
            {
                Windows = next.Windows.SetItem(conversation.Anchors[0], conversation.ConversationId),
                RecentChars = next.RecentChars + CharsOf(conversation.Window, 0, conversation.Window.Length),
            }).WithinRecentBound();
        }
        if (ChannelOf(conversation) is not { } other)
            return next;
        if (restored.Entry.InboundSeq > 0)
            next = next with { Inbound = next.Inbound.SetItem(other, restored.Entry.InboundSeq) };
        if (restored.Entry.OutboundSeq > 0 && !Ids.IsGroup(conversation.ConversationId))
            next = next with { Outbound = next.Outbound.SetItem(other, OutboundChannel.Restore(other, restored.Entry.OutboundSeq, [])) };
        return next;
    }
}
