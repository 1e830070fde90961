using System.Collections.Immutable;
using Messaging.Messages;

namespace Messaging.Actors;

/// <summary>
/// Cold conversations (1.8.0): past <see cref="MailboxLimits.MaxConversationsInMemory"/>, the 1:1 conversations changed
/// longest ago leave memory and the snapshot, with the channel positions shared with their other participant, into
/// pages of the mailbox's own journal (<see cref="ColdIndex"/>). Anything that needs one again (a message or receipt
/// from or to that participant, a marker, a page of its thread) finds it by one read of one event, and a write brings
/// it back (<see cref="ConversationRestored"/>). Groups go cold the same way since 1.9.0 (the ColdGroups feature), with
/// their group's channel position; their entries are written under manifests 1.8.0 refuses. Since 1.10.0 (ColdChannels)
/// the channel positions with people met only in groups, which have no 1:1 conversation to leave with, go cold too past
/// their own bound, as entries of their own under the 1:1 id (<see cref="ColdEntry.ChannelOnly"/>), found the same way.
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
        // Looked for even with a channel in memory: a write decided on a restore the journal then rejected can have
        // brought one side of a channel back without the other (replay takes a copy numbered 1 after a cold side of
        // 0 as new); the page still holds the rest, and a restore merges it (ApplyRestored).
        string? IfColdWith(string? other) => IfCold(Dm(other));
        switch (command)
        {
            case SendMessage send when send.RecipientIds.Length == 1:
                return IfColdWith(send.RecipientIds[0]);
            case DeliverGroupMessage copy:
                return IfCold(copy.Message.ConversationId);
            case DeliverMessage delivery when Ids.IsGroup(delivery.Message.ConversationId):
                return IfCold(delivery.Message.ConversationId); // a stale group copy (ResolveStale)
            case DeliverMessage delivery:
                return IfColdWith(delivery.Message.SenderId);
            case DeliverReceipt receipt:
                // The channel's position rides the 1:1 conversation; the receipt itself lands on its conversation.
                return IfColdWith(receipt.SenderId) ?? (Ids.IsGroup(receipt.ConversationId) ? IfCold(receipt.ConversationId) : null);
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
                    if (IfColdWith(target) is { } dm)
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
        return new ConversationsArchived(Into(entry, current), [conversationId]);
    }

    /// <summary>The pages once <paramref name="entry"/> is put into <paramref name="current"/> (its slot's page) or a new one.</summary>
    private ImmutableArray<ColdPage> Into(ColdEntry entry, ColdPage? current)
    {
        var id = entry.Conversation.ConversationId;
        var digest = ColdIndex.Digest(id);
        if (current is not null && (digest & ((1UL << current.Depth) - 1)) != current.Bits)
            throw new ArgumentException($"{id} does not belong on the page of depth {current.Depth} with bits {current.Bits:x}");
        return ColdIndex.Put(current ?? Cold.NewPage(digest), [entry], IsStale, ColdIndex.ByteSplitDepth(Cold.Count + 1));
    }

    /// <summary>
    /// A page's entry that is read no more: its conversation is back in memory, or (a channel alone) memory holds
    /// both of its positions as far as it does, or further (a 1:1 conversation with that person in memory carries
    /// the channel from then on).
    /// </summary>
    private bool IsStale(ColdEntry entry) =>
        Conversations.ContainsKey(entry.Conversation.ConversationId)
        || entry.ChannelOnly && PeerOf(entry.Conversation) is { } peer && AddsNothing(entry, peer);

    /// <summary>
    /// Whether memory holds both positions of <paramref name="entry"/> with <paramref name="peer"/>: the inbound one as
    /// far as the entry or further, and an outbound channel if the entry numbered any copy (a channel in memory, with
    /// its copies, is never renumbered from a page).
    /// </summary>
    private bool AddsNothing(ColdEntry entry, string peer) =>
        HasChannelWith(peer)
        && Inbound.GetValueOrDefault(peer) >= entry.InboundSeq
        && (entry.OutboundSeq == 0 || Outbound.ContainsKey(peer));

    // ---------------- channels alone (1.10.0) ----------------

    /// <summary>
    /// Whether the channels with people met only in groups are over their bound: the receipts this user sends to and
    /// gets from co-members it has no 1:1 conversation with each keep a channel position (~100 bytes) with nothing to
    /// leave memory with. Each conversation in memory holds at most one position in each direction, so with at most
    /// <see cref="MailboxLimits.MaxConversationsInMemory"/> conversations, more than twice that many positions in
    /// either direction means more than that many channels alone: then the least recently needed leave
    /// (<see cref="PlanChannelArchive"/>). One comparison: nothing is counted until then.
    /// </summary>
    public bool LoneChannelsOver =>
        Limits.MaxConversationsInMemory > 0 && Math.Max(Inbound.Count, Outbound.Count) > 2L * Limits.MaxConversationsInMemory;

    /// <summary>
    /// The channels alone to take out of memory next, as the ids of the people they are with, first those with
    /// people no group in memory lists (they left, or their groups went cold), then those whose groups in memory
    /// changed longest ago, and those <paramref name="later"/> names (brought back lately) only after all others: as
    /// many as there are over <see cref="MailboxLimits.MaxConversationsInMemory"/>, at most <paramref name="most"/>,
    /// none with copies pending. Empty unless <see cref="LoneChannelsOver"/>. One walk of the channels and of the
    /// groups' member lists. (Unlike conversations, whose stamps say when each changed, a channel brought back is not
    /// kept out of the plan: that would let them pass the bound by as many as are remembered.)
    /// </summary>
    public IReadOnlyList<string> PlanChannelArchive(Func<string, bool>? later = null, int most = 64)
    {
        if (!LoneChannelsOver)
            return [];
        var lone = LoneChannels();
        var over = Math.Min(most, lone.Count - Limits.MaxConversationsInMemory);
        if (over <= 0)
            return [];
        var listedAt = new Dictionary<string, long>(StringComparer.Ordinal);
        foreach (var conversation in Conversations.Values)
        {
            if (!Ids.IsGroup(conversation.ConversationId))
                continue;
            foreach (var member in conversation.ParticipantIds)
            {
                if (lone.Contains(member) && listedAt.GetValueOrDefault(member) < conversation.LastUpdatedTimestamp)
                    listedAt[member] = conversation.LastUpdatedTimestamp;
            }
        }
        return lone
            .Where(IsChannelArchivable)
            .OrderBy(peer => later?.Invoke(peer) == true)
            .ThenBy(peer => listedAt.GetValueOrDefault(peer))
            .ThenBy(peer => peer, StringComparer.Ordinal)
            .Take(over)
            .ToList();
    }

    /// <summary>The people this user has a channel position with in memory and no 1:1 conversation in memory.</summary>
    public HashSet<string> LoneChannels()
    {
        var lone = new HashSet<string>(StringComparer.Ordinal);
        foreach (var peer in Inbound.Keys)
        {
            if (IsLone(peer))
                lone.Add(peer);
        }
        foreach (var peer in Outbound.Keys)
        {
            if (IsLone(peer))
                lone.Add(peer);
        }
        return lone;
    }

    private bool IsLone(string peer) => !Ids.IsGroup(peer) && !Conversations.ContainsKey(Ids.ConversationFor(UserId, peer));

    private bool HasChannelWith(string peer) => Inbound.ContainsKey(peer) || Outbound.ContainsKey(peer);

    /// <summary>A channel alone in memory with nothing pending on it: it may go cold (<see cref="ArchiveChannel"/>).</summary>
    public bool IsChannelArchivable(string peer) =>
        IsLone(peer) && HasChannelWith(peer) && !(Outbound.TryGetValue(peer, out var channel) && channel.PendingCount > 0);

    /// <summary>
    /// The event that takes the channel alone with <paramref name="peer"/> out of memory into the page of their 1:1
    /// id (where every lookup of the channel looks: a message, receipt or marker to or from them brings it back first,
    /// as for a cold 1:1 conversation). The entry keeps the two positions and no conversation
    /// (<see cref="ColdEntry.ChannelOnly"/>).
    /// </summary>
    public ConversationsArchived ArchiveChannel(string peer, ColdPage? current)
    {
        if (!IsChannelArchivable(peer))
            throw new ArgumentException($"{UserId} has no channel alone with {peer} that may go cold");
        var id = Ids.ConversationFor(UserId, peer);
        var earlier = current is null ? null : FindCold(id, [current]);
        if (earlier is { ChannelOnly: false })
            throw new ArgumentException($"{id} is a cold conversation: bring it back (its channel goes with it), do not write over it");
        var participants = string.CompareOrdinal(UserId, peer) <= 0 ? ImmutableArray.Create(UserId, peer) : ImmutableArray.Create(peer, UserId);
        // Positions only move forward: an earlier entry the memory does not hold all of (see ColdNeededFor) is merged.
        var entry = new ColdEntry(
            new ConversationSnapshot(id, participants, "", 0, 0, [], []),
            Math.Max(Inbound.GetValueOrDefault(peer), earlier?.InboundSeq ?? 0),
            Math.Max(Outbound.GetValueOrDefault(peer)?.LastSeq ?? 0, earlier?.OutboundSeq ?? 0),
            ChannelOnly: true);
        return new ConversationsArchived(Into(entry, current), [id]);
    }

    /// <summary>The entry <paramref name="archived"/> wrote for <paramref name="conversationId"/>, if that is a channel alone.</summary>
    private static ColdEntry? ChannelAloneIn(ConversationsArchived archived, string conversationId)
    {
        if (Ids.IsGroup(conversationId))
            return null;
        foreach (var entry in ColdIndex.PageFor(archived.Pages, ColdIndex.Digest(conversationId))?.Entries ?? [])
        {
            if (entry.ChannelOnly && entry.Conversation.ConversationId == conversationId)
                return entry;
        }
        return null;
    }

    /// <summary>Whether an archive was decided on this state: each conversation in memory with nothing pending, or each channel alone.</summary>
    private bool ContinuesArchive(ConversationsArchived archived) => archived.ConversationIds.All(id =>
        ChannelAloneIn(archived, id) is { } entry
            ? PeerOf(entry.Conversation) is { } peer && IsChannelArchivable(peer) // not in memory as a conversation, either
            : Conversations.TryGetValue(id, out var c)
              && (OtherOf(c) is not { } other || Outbound.GetValueOrDefault(other)?.PendingCount is null or 0));

    /// <summary>Whether a restore was decided on this state: its entry is cold (and, a channel alone, its channel not back).</summary>
    private bool ContinuesRestore(ConversationRestored restored) =>
        MayBeCold(restored.Entry.Conversation.ConversationId)
        && !(restored.Entry.ChannelOnly && PeerOf(restored.Entry.Conversation) is { } peer && AddsNothing(restored.Entry, peer));

    private string? PeerOf(ConversationSnapshot conversation)
    {
        foreach (var participant in conversation.ParticipantIds)
        {
            if (participant != UserId)
                return participant;
        }
        return null;
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
                return IsStale(entry) ? null : entry;
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
        var channels = false;
        foreach (var id in archived.ConversationIds)
        {
            if (ChannelAloneIn(archived, id) is { } entry)
            {
                // A channel alone: its positions leave memory, and no conversation does (none is in memory: Continues).
                if (!conversations.ContainsKey(id) && PeerOf(entry.Conversation) is { } peer)
                {
                    inbound = inbound.Remove(peer);
                    outbound = outbound.Remove(peer);
                    channels = true;
                }
                continue;
            }
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
            Cold = Cold.With(archived.Pages, journalSeq, moved, groups, channels),
        };
    }

    private MailboxState ApplyRestored(ConversationRestored restored)
    {
        if (restored.Entry.ChannelOnly)
        {
            // The positions alone: a conversation with them, if one comes, starts from these. Merged with what memory
            // holds (positions only move forward; memory may hold one side already, see ColdNeededFor). The inbound
            // one is set even at 0, so the channel is in memory once back and the entry stale: what needed it is
            // decided now, not sent to look for it again.
            if (PeerOf(restored.Entry.Conversation) is not { } peer || AddsNothing(restored.Entry, peer)
                || Conversations.ContainsKey(restored.Entry.Conversation.ConversationId))
                return this;
            var inbound = Inbound.SetItem(peer, Math.Max(Inbound.GetValueOrDefault(peer), restored.Entry.InboundSeq));
            var outbound = !Outbound.ContainsKey(peer) && restored.Entry.OutboundSeq > 0
                ? Outbound.SetItem(peer, OutboundChannel.Restore(peer, restored.Entry.OutboundSeq, []))
                : Outbound;
            return this with { Inbound = inbound, Outbound = outbound };
        }
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
