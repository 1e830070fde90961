using System.Collections.Immutable;
using Messaging.Actors.Delivery;
using Messaging.Messages;

namespace Messaging.Actors.Groups;

/// <summary>
/// Bounds that keep a group's live state independent of its history: members, the sends remembered for dedup, and
/// the messages (and their characters) not yet confirmed by every member. Configured as <c>Messaging:Groups</c> keys.
/// </summary>
public sealed record GroupLimits(
    int MaxMembers = 1024,
    int DedupWindow = 4096,
    int MaxPendingMessages = 1000,
    long MaxPendingChars = 4 * 1024 * 1024);

/// <summary>A message in the group's order and the members it went to (one set instance shared while membership stands).</summary>
public sealed record GroupEntry(long Seq, ChatMessage Message, ImmutableSortedSet<string> Audience);

public abstract record GroupDecision
{
    /// <summary>Answer now (a refusal, the group as it is, or a send's failure), write nothing.</summary>
    public sealed record Reply(IMessagingProtocol Answer) : GroupDecision;

    /// <summary>The same send again (same sender, clientMessageId and text): answer what the first one was.</summary>
    public sealed record Duplicate(SendResult Original) : GroupDecision;

    public sealed record Store(IGroupEvent Event) : GroupDecision;
}

/// <summary>
/// A group: the only writer of its membership and of the order of its messages. Pure: the actor feeds it commands
/// (<c>Decide...</c>) and journaled events (<see cref="Apply"/>). As the sender side of delivery it keeps only what
/// some member has not confirmed (the <see cref="Window"/>), so its memory is bounded by <see cref="GroupLimits"/>,
/// whatever the group's history; the history itself is in every member's mailbox.
/// </summary>
public sealed record GroupState(
    string GroupId,
    GroupLimits Limits,
    string Name,
    string CreatorId,
    string ClientRequestId,
    long LastSeq,
    long LastStamp,
    ImmutableSortedSet<string> Members,
    ImmutableSortedSet<string> Admins,
    ImmutableDictionary<string, GroupSentRecord> Dedup,
    ImmutableQueue<string> DedupOrder,
    ImmutableList<GroupEntry> Window,
    long WindowChars,
    ImmutableDictionary<string, long> Confirmed) : IOutbox
{
    public static GroupState Empty(string groupId, GroupLimits limits) => new(
        groupId, limits, "", "", "", 0, 0,
        ImmutableSortedSet.Create<string>(StringComparer.Ordinal),
        ImmutableSortedSet.Create<string>(StringComparer.Ordinal),
        ImmutableDictionary.Create<string, GroupSentRecord>(StringComparer.Ordinal),
        ImmutableQueue<string>.Empty,
        ImmutableList<GroupEntry>.Empty,
        0,
        ImmutableDictionary.Create<string, long>(StringComparer.Ordinal));

    /// <summary>API.md: a group's name is 1-100 characters.</summary>
    public const int MaxNameLength = 100;

    public bool Exists => LastSeq > 0;

    public GroupView View => new(GroupId, Name, [.. Members], [.. Admins]);

    private long NextStamp(long now) => Math.Max(now, LastStamp + 1);

    /// <summary>What a send is remembered (and a retry in flight waits) under: one sender's clientMessageId.</summary>
    public static string DedupKey(string senderId, string clientMessageId) => $"{senderId}\n{clientMessageId}";

    // ---------------- decisions ----------------

    public GroupDecision DecideCreate(CreateGroup cmd, long now)
    {
        if (Exists)
        {
            // The id comes from the creator and the request id: this is the creator retrying.
            return cmd.CreatorId == CreatorId
                ? Answer(new GroupAnswer(View, Created: false))
                : Refuse(GroupRefusal.Invalid, "this group id belongs to another request");
        }
        if (ValidateName(cmd.Name) is { } badName)
            return Refuse(GroupRefusal.Invalid, badName);
        var others = cmd.MemberIds;
        if (others.IsDefaultOrEmpty)
            return Refuse(GroupRefusal.Invalid, "memberIds must name at least one other user");
        if (others.Length > Limits.MaxMembers - 1)
            return Refuse(GroupRefusal.Invalid, $"a group has at most {Limits.MaxMembers} members, its creator included");
        if (ValidateIds(others, "memberIds") is { } badIds)
            return Refuse(GroupRefusal.Invalid, badIds);
        if (others.Contains(cmd.CreatorId))
            return Refuse(GroupRefusal.Invalid, "memberIds must not include the creator, who is a member anyway");

        var stamp = NextStamp(now);
        var change = new GroupChange(GroupChange.Created, [.. others.Order(StringComparer.Ordinal)]);
        var message = new ChatMessage(
            Ids.GroupMessageId(GroupId, stamp), GroupId, cmd.CreatorId, [], "", cmd.ClientRequestId, stamp, change);
        return new GroupDecision.Store(new GroupCreated(message, cmd.Name, cmd.ClientRequestId));
    }

    /// <summary>The group for a member; a refusal for anyone else, or when there is no group.</summary>
    public IMessagingProtocol Get(GetGroup query)
    {
        if (!Exists)
            return NotFound().Answer;
        return Members.Contains(query.UserId)
            ? new GroupAnswer(View)
            : new GroupRefused(GroupRefusal.Forbidden, $"{query.UserId} is not a member of this group");
    }

    public GroupDecision DecideMembers(ChangeMembers cmd, long now)
    {
        if (!Exists)
            return NotFound();
        if (!Admins.Contains(cmd.UserId))
            return Refuse(GroupRefusal.Forbidden, Members.Contains(cmd.UserId)
                ? "only the group's admins add or remove members"
                : $"{cmd.UserId} is not a member of this group");
        var add = cmd.Add.IsDefault ? [] : cmd.Add;
        var remove = cmd.Remove.IsDefault ? [] : cmd.Remove;
        if (add.IsEmpty == remove.IsEmpty)
            return Refuse(GroupRefusal.Invalid, "give exactly one of add or remove, with at least one user id");
        var ids = add.IsEmpty ? remove : add;
        if (ValidateIds(ids, add.IsEmpty ? "remove" : "add") is { } badIds)
            return Refuse(GroupRefusal.Invalid, badIds);
        if (remove.Contains(cmd.UserId))
            return Refuse(GroupRefusal.Invalid, "to remove yourself, leave the group");
        // Idempotent: who is already in (or already out) is left as is, so a retry after a lost answer is safe. A
        // change with nothing left to do stores nothing and answers the group as it is.
        var change = add.IsEmpty ? remove.Where(Members.Contains).ToArray() : add.Where(id => !Members.Contains(id)).ToArray();
        if (change.Length == 0)
            return Answer(new GroupAnswer(View));
        if (!add.IsEmpty && Members.Count + change.Length > Limits.MaxMembers)
            return Refuse(GroupRefusal.Invalid, $"a group has at most {Limits.MaxMembers} members");
        var action = add.IsEmpty ? GroupChange.Removed : GroupChange.Added;
        return Post(cmd.UserId, "", "", new GroupChange(action, [.. change.Order(StringComparer.Ordinal)]), now);
    }

    public GroupDecision DecideLeave(LeaveGroup cmd, long now)
    {
        if (!Exists)
            return NotFound();
        if (!Members.Contains(cmd.UserId))
            return Refuse(GroupRefusal.Forbidden, $"{cmd.UserId} is not a member of this group");
        return Post(cmd.UserId, "", "", new GroupChange(GroupChange.Left, [cmd.UserId]), now);
    }

    public GroupDecision DecidePost(PostToGroup cmd, long now)
    {
        if (!Exists)
            return Fail(SendOutcome.NotFound, $"there is no group '{GroupId}'");
        if (string.IsNullOrEmpty(cmd.Text))
            return Fail(SendOutcome.Invalid, "the message text is empty");
        // A retry of a stored send is answered as such even if its sender has left since: retrying is always safe.
        if (Dedup.TryGetValue(DedupKey(cmd.SenderId, cmd.ClientMessageId), out var earlier))
        {
            return earlier.TextHash == Ids.TextHash(cmd.Text)
                ? new GroupDecision.Duplicate(new SendResult(SendOutcome.Duplicate,
                    Ids.GroupMessageId(GroupId, earlier.ServerTimestamp), GroupId, earlier.ServerTimestamp, ""))
                : Fail(SendOutcome.Conflict,
                    $"clientMessageId '{cmd.ClientMessageId}' was already used by this sender for another message");
        }
        if (!Members.Contains(cmd.SenderId))
            return Fail(SendOutcome.Forbidden, $"{cmd.SenderId} is not a member of this group");
        return Post(cmd.SenderId, cmd.Text, cmd.ClientMessageId, null, now);
    }

    /// <summary>A message (or membership change) at the end of the group's order, unless the window is full.</summary>
    private GroupDecision Post(string senderId, string text, string clientMessageId, GroupChange? change, long now)
    {
        if (IsFullFor(text))
        {
            var detail = $"{Window.Count} messages of this group are still awaiting delivery to its members; retry later";
            return change is null ? Fail(SendOutcome.Unavailable, detail) : Answer(new MailboxUnavailable(detail));
        }
        var stamp = NextStamp(now);
        var message = new ChatMessage(Ids.GroupMessageId(GroupId, stamp), GroupId, senderId, [], text, clientMessageId, stamp, change);
        return new GroupDecision.Store(new GroupPosted(LastSeq + 1, message));
    }

    /// <summary>Whether the window has no room for one more message of <paramref name="text"/> (503 until members confirm).</summary>
    public bool IsFullFor(string text) =>
        Window.Count >= Limits.MaxPendingMessages || WindowChars + text.Length > Limits.MaxPendingChars;

    private static string? ValidateName(string? name) =>
        name is null || name.Trim().Length == 0 || name.Length > MaxNameLength
            ? $"name must be 1-{MaxNameLength} characters, not only spaces"
            : null;

    private static string? ValidateIds(ImmutableArray<string> ids, string field)
    {
        if (ids.FirstOrDefault(id => !Ids.IsValidUserId(id)) is { } bad)
            return $"{field} holds '{bad}': each must be {Ids.UserIdRule}";
        if (ids.Distinct(StringComparer.Ordinal).Count() != ids.Length)
            return $"{field} names a user twice";
        return null;
    }

    private static GroupDecision.Reply Answer(IMessagingProtocol answer) => new(answer);

    private static GroupDecision.Reply Refuse(GroupRefusal reason, string detail) => new(new GroupRefused(reason, detail));

    private GroupDecision.Reply NotFound() => Refuse(GroupRefusal.NotFound, $"there is no group '{GroupId}'");

    private static GroupDecision.Reply Fail(SendOutcome outcome, string detail) => new(SendResult.Failure(outcome, detail));

    // ---------------- events ----------------

    /// <summary>
    /// Whether <paramref name="evt"/> was decided on this very state: the next place in the group's order with a stamp
    /// after every earlier one, or the creation of a group that does not exist yet. (Confirmations always fit.)
    /// </summary>
    public bool Continues(IGroupEvent evt) => evt switch
    {
        GroupCreated => !Exists,
        GroupPosted posted => Exists && posted.Seq == LastSeq + 1 && posted.Message.ServerTimestamp > LastStamp,
        _ => true,
    };

    public GroupState Apply(IGroupEvent evt) => evt switch
    {
        GroupPosted posted => ApplyPosted(posted.Seq, posted.Message),
        DeliveriesConfirmed confirmed => ApplyConfirmed(confirmed),
        GroupCreated created => (this with
        {
            Name = created.Name,
            CreatorId = created.Message.SenderId,
            ClientRequestId = created.ClientRequestId,
        }).ApplyPosted(1, created.Message),
        WriterClaimed => this,
        _ => throw new ArgumentException($"unknown group event {evt.GetType().Name}", nameof(evt)),
    };

    private GroupState ApplyPosted(long seq, ChatMessage message)
    {
        var members = Members;
        var admins = Admins;
        var confirmed = Confirmed;
        ImmutableSortedSet<string> audience;
        switch (message.System)
        {
            case { Action: GroupChange.Created } created:
                members = members.Union(created.UserIds).Add(message.SenderId);
                admins = admins.Add(message.SenderId);
                audience = members;
                break;
            case { Action: GroupChange.Added } added:
                members = members.Union(added.UserIds);
                audience = members;
                break;
            case { Action: GroupChange.Removed or GroupChange.Left } gone:
                audience = members; // the ones who go get the message that says so, as their last
                members = members.Except(gone.UserIds);
                // Their channel outlives their membership until they have confirmed that last copy.
                foreach (var id in gone.UserIds)
                    confirmed = confirmed.SetItem(id, confirmed.GetValueOrDefault(id));
                admins = admins.Except(gone.UserIds);
                // A group keeps an admin while it has members: the first remaining member (by id) becomes one.
                if (admins.IsEmpty && !members.IsEmpty)
                    admins = admins.Add(members.Min!);
                break;
            default:
                audience = members;
                break;
        }

        var dedup = Dedup;
        var order = DedupOrder;
        if (message.System is null)
        {
            var key = DedupKey(message.SenderId, message.ClientMessageId);
            dedup = dedup.SetItem(key, new GroupSentRecord(
                message.SenderId, message.ClientMessageId, seq, message.ServerTimestamp, Ids.TextHash(message.Text)));
            order = order.Enqueue(key);
            while (dedup.Count > Limits.DedupWindow)
            {
                order = order.Dequeue(out var oldest);
                dedup = dedup.Remove(oldest);
            }
        }

        // Share the membership's strings: the sender's id is the member set's instance.
        var sender = audience.TryGetValue(message.SenderId, out var shared) ? shared : message.SenderId;
        var entry = new GroupEntry(seq, message with { SenderId = sender, ConversationId = GroupId }, audience);
        return this with
        {
            LastSeq = seq,
            LastStamp = Math.Max(LastStamp, message.ServerTimestamp),
            Members = members,
            Admins = admins,
            Dedup = dedup,
            DedupOrder = order,
            Window = Window.Add(entry),
            WindowChars = WindowChars + message.Text.Length,
            Confirmed = confirmed,
        };
    }

    private GroupState ApplyConfirmed(DeliveriesConfirmed confirmed)
    {
        if (confirmed.UpToSeq <= Confirmed.GetValueOrDefault(confirmed.RecipientId))
            return this;
        return (this with { Confirmed = Confirmed.SetItem(confirmed.RecipientId, confirmed.UpToSeq) }).Evict();
    }

    /// <summary>Messages every member they went to has confirmed leave the window; so do former members who have everything.</summary>
    private GroupState Evict()
    {
        var window = Window;
        var chars = WindowChars;
        while (!window.IsEmpty && window[0].Audience.All(m => Confirmed.GetValueOrDefault(m) >= window[0].Seq))
        {
            chars -= window[0].Message.Text.Length;
            window = window.RemoveAt(0);
        }
        var confirmed = Confirmed;
        foreach (var former in Confirmed.Keys)
        {
            if (!Members.Contains(former) && !window.Any(e => e.Audience.Contains(former)))
                confirmed = confirmed.Remove(former);
        }
        return this with { Window = window, WindowChars = chars, Confirmed = confirmed };
    }

    // ---------------- delivery ----------------

    /// <summary>The copies of the message at <paramref name="seq"/>, one per member it went to (the sender included).</summary>
    public ImmutableArray<IChannelCopy> CopiesOf(long seq)
    {
        var index = IndexOf(seq);
        if (index < 0)
            return [];
        var entry = Window[index];
        var copies = ImmutableArray.CreateBuilder<IChannelCopy>(entry.Audience.Count);
        var previous = index > 0 ? Window[index - 1] : null;
        foreach (var member in entry.Audience)
        {
            var before = previous is not null && previous.Audience.Contains(member)
                ? previous.Seq
                : PreviousFor(member, index);
            copies.Add(CopyFor(entry, member, before));
        }
        return copies.MoveToImmutable();
    }

    /// <summary>The seq of <paramref name="member"/>'s copy before the entry at <paramref name="index"/>: in the window, or confirmed.</summary>
    private long PreviousFor(string member, int index)
    {
        for (var i = index - 1; i >= 0; i--)
        {
            if (Window[i].Audience.Contains(member))
                return Window[i].Seq;
        }
        // Whatever went to them before the window left it once they had confirmed it.
        return Confirmed.GetValueOrDefault(member);
    }

    private DeliverGroupMessage CopyFor(GroupEntry entry, string member, long previousSeq)
    {
        // A copy that makes them a member carries the membership; later ones carry only its changes.
        var starts = entry.Message.System is { Action: GroupChange.Created }
            || (entry.Message.System is { Action: GroupChange.Added } added && added.UserIds.Contains(member));
        return new DeliverGroupMessage(member, entry.Seq, previousSeq, entry.Message, Name, starts ? [.. entry.Audience] : []);
    }

    private int IndexOf(long seq)
    {
        if (Window.IsEmpty)
            return -1;
        var index = (int)(seq - Window[0].Seq);
        return index >= 0 && index < Window.Count && Window[index].Seq == seq ? index : -1;
    }

    /// <summary>The newest message in the window that went to <paramref name="member"/> (0: none).</summary>
    private long LastFor(string member)
    {
        for (var i = Window.Count - 1; i >= 0; i--)
        {
            if (Window[i].Audience.Contains(member))
                return Window[i].Seq;
        }
        return 0;
    }

    bool IOutbox.HasPending => !Window.IsEmpty;

    IEnumerable<ChannelPosition> IOutbox.Channels
    {
        get
        {
            foreach (var member in Members.Union(Confirmed.Keys))
            {
                var last = LastFor(member);
                var confirmed = Confirmed.GetValueOrDefault(member);
                if (last > confirmed)
                    yield return new ChannelPosition(member, last, confirmed);
            }
        }
    }

    ChannelPosition? IOutbox.Channel(string recipientId)
    {
        if (!Members.Contains(recipientId) && !Confirmed.ContainsKey(recipientId))
            return null;
        var confirmed = Confirmed.GetValueOrDefault(recipientId);
        return new ChannelPosition(recipientId, Math.Max(LastFor(recipientId), confirmed), confirmed);
    }

    /// <summary>The copies after <paramref name="afterSeq"/>, which the member has confirmed: the first one follows it.</summary>
    IEnumerable<IChannelCopy> IOutbox.Unconfirmed(string recipientId, long afterSeq)
    {
        var previous = afterSeq;
        foreach (var entry in Window)
        {
            if (entry.Seq <= afterSeq || !entry.Audience.Contains(recipientId))
                continue;
            yield return CopyFor(entry, recipientId, previous);
            previous = entry.Seq;
        }
    }

    /// <summary>For operators: each member's (and former member's) confirmed place and what waits for them.</summary>
    public GroupStatus Status(long lastSequenceNr, string nodeAddress) => new(
        View, LastSeq, lastSequenceNr, nodeAddress, Window.Count,
        [.. Members.Union(Confirmed.Keys).Select(m =>
        {
            var confirmed = Confirmed.GetValueOrDefault(m);
            return new MemberDelivery(m, confirmed, Window.Count(e => e.Seq > confirmed && e.Audience.Contains(m)));
        })]);

    // ---------------- snapshots ----------------

    public GroupSnapshot ToSnapshot() => new(
        Name, CreatorId, ClientRequestId, LastSeq, LastStamp, [.. Members], [.. Admins],
        [.. DedupOrder.Select(key => Dedup[key])],
        [.. Window.Select(e => new GroupPosted(e.Seq, e.Message))],
        [.. Confirmed.Select(c => new DeliveriesConfirmed(c.Key, c.Value))]);

    public static GroupState FromSnapshot(string groupId, GroupLimits limits, GroupSnapshot snapshot)
    {
        var empty = Empty(groupId, limits);
        var members = empty.Members.Union(snapshot.Members);
        // Who each message in the window went to follows from today's members, undoing the changes back in time.
        var window = new GroupEntry[snapshot.Window.Length];
        var at = members;
        for (var i = window.Length - 1; i >= 0; i--)
        {
            var message = snapshot.Window[i].Message;
            switch (message.System)
            {
                case { Action: GroupChange.Added } added:
                    window[i] = new GroupEntry(snapshot.Window[i].Seq, message, at);
                    at = at.Except(added.UserIds);
                    break;
                case { Action: GroupChange.Removed or GroupChange.Left } gone:
                    at = at.Union(gone.UserIds);
                    window[i] = new GroupEntry(snapshot.Window[i].Seq, message, at);
                    break;
                default:
                    window[i] = new GroupEntry(snapshot.Window[i].Seq, message, at);
                    break;
            }
        }
        var dedup = snapshot.Dedup.Skip(Math.Max(0, snapshot.Dedup.Length - limits.DedupWindow)).ToArray();
        return empty with
        {
            Name = snapshot.Name,
            CreatorId = snapshot.CreatorId,
            ClientRequestId = snapshot.ClientRequestId,
            LastSeq = snapshot.LastSeq,
            LastStamp = snapshot.LastStamp,
            Members = members,
            Admins = empty.Admins.Union(snapshot.Admins),
            Dedup = empty.Dedup.SetItems(dedup.Select(r => KeyValuePair.Create(DedupKey(r.SenderId, r.ClientMessageId), r))),
            DedupOrder = ImmutableQueue.CreateRange(dedup.Select(r => DedupKey(r.SenderId, r.ClientMessageId))),
            Window = [.. window],
            WindowChars = window.Sum(e => (long)e.Message.Text.Length),
            Confirmed = empty.Confirmed.SetItems(snapshot.Confirmed.Select(c => KeyValuePair.Create(c.RecipientId, c.UpToSeq))),
        };
    }
}
