using System.Collections.Immutable;

namespace Messaging.Messages;

/// <summary>A message addressed to one group entity; <see cref="GroupId"/> (its conversation id) routes it through sharding.</summary>
public interface IGroupCommand : IMessagingProtocol
{
    string GroupId { get; }
}

/// <summary>An event in a group's journal.</summary>
public interface IGroupEvent : IMessagingProtocol;

/// <summary>A membership change as the thread shows it: who acted is the message's sender.</summary>
/// <param name="Action"><see cref="Created"/>, <see cref="Added"/>, <see cref="Removed"/> or <see cref="Left"/>.</param>
/// <param name="UserIds">Who joined or went (for <see cref="Created"/>: the members besides the creator).</param>
public sealed record GroupChange(string Action, ImmutableArray<string> UserIds)
{
    public const string Created = "created";
    public const string Added = "added";
    public const string Removed = "removed";
    public const string Left = "left";
}

/// <summary>A group as the API shows it: members and admins sorted.</summary>
public sealed record GroupView(string GroupId, string Name, ImmutableArray<string> Members, ImmutableArray<string> Admins);

// ---- commands (HTTP edge -> group) ----

/// <summary>Create the group <see cref="GroupId"/> (<see cref="Ids.GroupFor"/> of creator and request id): idempotent.</summary>
public sealed record CreateGroup(string GroupId, string CreatorId, string Name, ImmutableArray<string> MemberIds, string ClientRequestId)
    : IGroupCommand;

/// <summary>The group as <see cref="UserId"/> may see it (members only).</summary>
public sealed record GetGroup(string GroupId, string UserId) : IGroupCommand;

/// <summary>An admin adds or removes members (one of the two lists is empty).</summary>
public sealed record ChangeMembers(string GroupId, string UserId, ImmutableArray<string> Add, ImmutableArray<string> Remove)
    : IGroupCommand;

public sealed record LeaveGroup(string GroupId, string UserId) : IGroupCommand;

/// <summary>Send a message to the group; answered with a <see cref="SendResult"/> like a 1:1 send.</summary>
public sealed record PostToGroup(string GroupId, string SenderId, string Text, string ClientMessageId) : IGroupCommand;

/// <summary>A member's mailbox has stored every copy of the group up to <see cref="UpToSeq"/> (the group's order).</summary>
public sealed record ConfirmGroupDelivery(string GroupId, string MemberId, long UpToSeq) : IGroupCommand;

/// <summary>The group's redelivery tick, sent through the shard region so a group with copies to deliver stays up.</summary>
public sealed record KeepGroupDelivering(string GroupId) : IGroupCommand;

/// <summary>For operators: members, admins, where the group lives and what it still has to deliver.</summary>
public sealed record GetGroupStatus(string GroupId) : IGroupCommand;

/// <summary>Sharding's hand-off / passivation stop message for groups: drain the writes, then stop.</summary>
public sealed record StopGroup : IMessagingProtocol
{
    public static readonly StopGroup Instance = new();
}

// ---- delivery: group -> member mailbox ----

/// <summary>
/// A member's copy of one group message, handed on by the group. <see cref="ChannelSeq"/> is the message's place in
/// the group's order and <see cref="PreviousSeq"/> the place of this member's previous copy (or less): the mailbox
/// stores it only once it has that one, so a member's copies arrive once and in the group's order.
/// </summary>
/// <param name="Members">The members after this message when it starts the recipient's membership; empty otherwise.</param>
public sealed record DeliverGroupMessage(
    string RecipientId, long ChannelSeq, long PreviousSeq, ChatMessage Message, string Name, ImmutableArray<string> Members)
    : IChannelCopy
{
    /// <summary>Never a default array (protobuf reads "absent" as empty, and so does everyone else).</summary>
    public ImmutableArray<string> Members { get; init; } = Members.IsDefault ? [] : Members;

    public string MailboxId => RecipientId;

    /// <summary>The channel is the group's.</summary>
    public string SenderId => Message.ConversationId;

    public int TextLength => Message.Text.Length;
}

// ---- replies ----

/// <param name="Created">True only for the create that made the group (201); a retried create answers false (200).</param>
public sealed record GroupAnswer(GroupView Group, bool Created = false) : IMessagingProtocol;

public enum GroupRefusal
{
    NotFound = 0,
    Forbidden = 1,
    Invalid = 2,
}

/// <summary>The group refused the command (404, 403, 400); nothing was stored.</summary>
public sealed record GroupRefused(GroupRefusal Reason, string Detail) : IMessagingProtocol;

/// <summary>One member's delivery: the group's order up to which their mailbox has confirmed, and what is waiting.</summary>
public sealed record MemberDelivery(string UserId, long ConfirmedSeq, int Pending);

public sealed record GroupStatus(
    GroupView Group,
    long LastSeq,
    long LastSequenceNr,
    string NodeAddress,
    int PendingMessages,
    ImmutableArray<MemberDelivery> Deliveries) : IMessagingProtocol;

// ---- events ----

/// <summary>The group exists: its first message (<c>created</c>, by the creator) at seq 1, its name and the request that made it.</summary>
public sealed record GroupCreated(ChatMessage Message, string Name, string ClientRequestId) : IGroupEvent;

/// <summary>A message (or a membership change, <see cref="ChatMessage.System"/>) takes its place <see cref="Seq"/> in the group's order.</summary>
public sealed record GroupPosted(long Seq, ChatMessage Message) : IGroupEvent;

// ---- snapshot ----

/// <summary>What the group remembers of one send: a retry with the same clientMessageId answers the same.</summary>
public sealed record GroupSentRecord(string SenderId, string ClientMessageId, long Seq, long ServerTimestamp, ulong TextHash);

/// <summary>A group's whole live state: membership, the dedup window, and the messages not yet confirmed by every member.</summary>
public sealed record GroupSnapshot(
    string Name,
    string CreatorId,
    string ClientRequestId,
    long LastSeq,
    long LastStamp,
    ImmutableArray<string> Members,
    ImmutableArray<string> Admins,
    ImmutableArray<GroupSentRecord> Dedup,
    ImmutableArray<GroupPosted> Window,
    ImmutableArray<DeliveriesConfirmed> Confirmed) : IMessagingProtocol;
