using System.ComponentModel;
using System.ComponentModel.DataAnnotations;
using System.Text.Json;
using System.Text.Json.Serialization;
using Messaging.Http.OpenApi;
using Messaging.Messages;

namespace Messaging.Http;

// The attributes below describe the contract in the OpenAPI document; the handlers check it themselves.

/// <summary>Body of POST /v1/messages, as the client sends it (nullable: missing fields are the edge's 400, not a crash).</summary>
[EdgeValidated]
public sealed record SendMessageRequest(
    [property: Id(IdKind.User), Description("Optional; when present it must be the token's user (else 403).")]
    string? SenderId,
    [property: Id(IdKind.User), MinLength(1), MaxLength(1),
               Description("Exactly one user id, not the sender (1:1). Give either recipientIds or conversationId.")]
    IReadOnlyList<string?>? RecipientIds,
    [property: Required, MinLength(1), MaxLength(MessagingApi.MaxMessageBytes),
               Description("Plain text, not empty, at most 65,535 bytes of UTF-8 (more is 413).")]
    string? Message,
    [property: Required, Id(IdKind.ClientMessage),
               Description("Made by the client (a UUID or ULID), unique per sender: a retry with the same one is answered Duplicate.")]
    string? ClientMessageId,
    [property: Id(IdKind.Conversation),
               Description("A group's conversationId (grp~...), to send to the group instead of recipientIds.")]
    string? ConversationId = null);

public sealed record SendMessageResponse(
    [property: AllowedValues(nameof(SendOutcome.Sent), nameof(SendOutcome.Accepted), nameof(SendOutcome.Duplicate)),
               Description("Sent: durable in both mailboxes. Accepted: durable in the sender's, the recipient's copy will follow. " +
                           "Duplicate: this clientMessageId was already sent; the ids and timestamp are the original's.")]
    string SendStatus,
    string MessageId,
    [property: Id(IdKind.Conversation)] string ConversationId,
    [property: Description("Unix epoch milliseconds, assigned by the sender's mailbox.")] long ServerTimestamp);

public sealed record ConversationDto(
    [property: Id(IdKind.Conversation)] string ConversationId,
    [property: Id(IdKind.User), Description("Sorted.")] IReadOnlyList<string> ParticipantIds,
    [property: Description("The start of the latest message.")] string Snippet,
    [property: Description("Stamped by this user's mailbox at every change; strictly increasing within the mailbox.")]
    long LastUpdatedTimestamp,
    [property: AllowedValues(ConversationSummary.DirectKind, ConversationSummary.GroupKind)] string Kind,
    [property: Description("The group's name; null for direct conversations.")] string? Name,
    [property: Description("The seq of the newest message in this user's copy (0 when there is none yet).")] long LastSeq,
    [property: Description("This user's own read marker in their copy.")] long ReadUpToSeq,
    [property: Description("Messages from others with a seq above readUpToSeq.")] long UnreadCount,
    [property: Description("One entry per other participant: this user's messages stamped at or below deliveredUpTo / " +
                           "readUpTo have been delivered to / read by them (0 = none yet).")]
    IReadOnlyDictionary<string, ReceiptDto> Receipts);

public sealed record ReceiptDto(
    [property: Description("serverTimestamp of this user's newest message delivered to the participant (0 = none).")] long DeliveredUpTo,
    [property: Description("serverTimestamp of this user's newest message read by the participant (0 = none).")] long ReadUpTo);

/// <summary>Body of POST .../receipts (nullable: a missing marker is not moved; one of the two is needed).</summary>
[EdgeValidated(MinProperties = 1)]
public sealed record ReceiptsRequest(
    [property: Range(typeof(long), "0", "9223372036854775807"),
               Description("Mark this user's copy delivered up to this seq (at most the conversation's lastSeq).")]
    long? DeliveredUpToSeq,
    [property: Range(typeof(long), "0", "9223372036854775807"),
               Description("Mark this user's copy read up to this seq (implies delivered; at most lastSeq).")]
    long? ReadUpToSeq);

/// <summary>The data of a live <c>conversation</c> event.</summary>
public sealed record ConversationEventDto(
    ConversationDto Conversation,
    [property: Description("The messages stored by this change, as thread pages show them (may be empty).")]
    IReadOnlyList<ThreadMessageDto> Messages);

/// <summary>The data of a live <c>typing</c> event.</summary>
public sealed record TypingEventDto(
    [property: Id(IdKind.Conversation)] string ConversationId,
    [property: Id(IdKind.User)] string UserId,
    [property: Description("Unix epoch milliseconds until which the user counts as typing.")] long Until);

public sealed record ConversationListResponse(
    [property: Description("Conversations changed after the query's lastUpdatedTimestamp, newest first.")]
    IReadOnlyList<ConversationDto> Conversations,
    [property: JsonPropertyName("isDBupdate"), Description("False: nothing changed after lastUpdatedTimestamp and conversations is empty.")]
    bool IsDBupdate);

public sealed record ThreadMessageDto(
    string MessageId,
    [property: Id(IdKind.Conversation)] string ConversationId,
    [property: Description("1, 2, 3, ... without gaps in this user's copy of the conversation.")] long Seq,
    [property: Id(IdKind.User)] string SenderId,
    [property: Id(IdKind.User), Description("The other participant of a 1:1 message; empty in a group.")]
    IReadOnlyList<string> RecipientIds,
    [property: Description("The text; empty for a group's membership change (see system).")] string Message,
    [property: Id(IdKind.ClientMessage), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull),
               Description("The sender's clientMessageId; absent on a group's membership changes.")]
    string? ClientMessageId,
    [property: Description("When the sender's mailbox (or the group) accepted the message: the same in every copy.")] long ServerTimestamp,
    [property: AllowedValues("sent", "delivered", "read"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull),
               Description("Only on this user's own messages: delivered / read by every other participant it was sent to.")]
    string? Status = null,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull),
               Description("Only on a group's membership changes: what happened; senderId is who did it.")]
    SystemDto? System = null);

/// <summary>A group's membership change in its thread.</summary>
public sealed record SystemDto(
    [property: AllowedValues(GroupChange.Created, GroupChange.Added, GroupChange.Removed, GroupChange.Left)] string Action,
    [property: Id(IdKind.User), Description("Who joined or went (created: the members besides the creator).")]
    IReadOnlyList<string> UserIds);

/// <summary>Body of POST /v1/groups.</summary>
[EdgeValidated]
public sealed record CreateGroupRequest(
    [property: Required, MinLength(1), MaxLength(100), Description("1-100 characters.")] string? Name,
    [property: Required, Id(IdKind.User), MinLength(1),
               Description("The other members (1 to Messaging:Groups:MaxMembers - 1), valid user ids, not the creator.")]
    IReadOnlyList<string?>? MemberIds,
    [property: Required, Id(IdKind.ClientMessage),
               Description("Made by the client: a retried create with the same one answers the same group (200).")]
    string? ClientRequestId);

/// <summary>Body of POST /v1/groups/{conversationId}/members: exactly one of the two lists.</summary>
[EdgeValidated(MinProperties = 1)]
public sealed record MembersRequest(
    [property: Id(IdKind.User), Description("Users to add (admins only).")] IReadOnlyList<string?>? Add,
    [property: Id(IdKind.User), Description("Members to remove (admins only).")] IReadOnlyList<string?>? Remove);

public sealed record GroupDto(
    [property: Id(IdKind.Conversation)] string ConversationId,
    string Name,
    [property: Id(IdKind.User), Description("The members, sorted, the creator included.")] IReadOnlyList<string> ParticipantIds,
    [property: Id(IdKind.User), Description("Who may add and remove members, sorted.")] IReadOnlyList<string> Admins);

public sealed record ThreadMessagesResponse(
    [property: Description("Oldest first.")] IReadOnlyList<ThreadMessageDto> Messages);

/// <summary>
/// Unknown members are rejected, not ignored (API.md conventions); so is a member given twice (also when the two names
/// differ only in case), rather than letting the last one win.
/// </summary>
[JsonSourceGenerationOptions(
    JsonSerializerDefaults.Web,
    UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow,
    AllowDuplicateProperties = false)]
[JsonSerializable(typeof(SendMessageRequest))]
[JsonSerializable(typeof(SendMessageResponse))]
[JsonSerializable(typeof(ConversationListResponse))]
[JsonSerializable(typeof(ThreadMessagesResponse))]
[JsonSerializable(typeof(ReceiptsRequest))]
[JsonSerializable(typeof(ConversationDto))]
[JsonSerializable(typeof(ConversationEventDto))]
[JsonSerializable(typeof(TypingEventDto))]
[JsonSerializable(typeof(CreateGroupRequest))]
[JsonSerializable(typeof(MembersRequest))]
[JsonSerializable(typeof(GroupDto))]
public sealed partial class MessagingJsonContext : JsonSerializerContext;

/// <summary>How the mailbox's records look in the API (the list, thread pages, live events).</summary>
public static class Views
{
    public static ConversationDto Conversation(ConversationSummary c) => new(
        c.ConversationId, c.ParticipantIds, c.Snippet, c.LastUpdatedTimestamp, c.Kind, c.Name, c.LastSeq, c.ReadUpToSeq,
        c.UnreadCount,
        c.Receipts.IsDefaultOrEmpty
            ? Empty
            : c.Receipts.ToDictionary(r => r.UserId, r => new ReceiptDto(r.Receipt.DeliveredUpTo, r.Receipt.ReadUpTo), StringComparer.Ordinal));

    private static readonly IReadOnlyDictionary<string, ReceiptDto> Empty = new Dictionary<string, ReceiptDto>();

    /// <param name="ownerId">Whose copy this is: their own messages carry a status.</param>
    public static ThreadMessageDto Message(StoredMessage m, string ownerId, System.Collections.Immutable.ImmutableArray<ParticipantReceipt> receipts) => new(
        m.Message.MessageId, m.Message.ConversationId, m.Seq, m.Message.SenderId, m.Message.RecipientIds,
        m.Message.Text, m.Message.System is null ? m.Message.ClientMessageId : null, m.Message.ServerTimestamp,
        Receipts.StatusOf(m.Message, ownerId, receipts) switch
        {
            MessageStatus.Read => "read",
            MessageStatus.Delivered => "delivered",
            MessageStatus.Sent => "sent",
            _ => null,
        },
        m.Message.System is { } change ? new SystemDto(change.Action, change.UserIds) : null);

    public static GroupDto Group(GroupView g) => new(g.GroupId, g.Name, g.Members, g.Admins);
}
