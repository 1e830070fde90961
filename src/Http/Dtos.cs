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
    [property: Required, Id(IdKind.User), MinLength(1), MaxLength(1), Description("Exactly one user id, not the sender.")]
    IReadOnlyList<string?>? RecipientIds,
    [property: Required, MinLength(1), MaxLength(MessagingApi.MaxMessageBytes),
               Description("Plain text, not empty, at most 65,535 bytes of UTF-8 (more is 413).")]
    string? Message,
    [property: Required, Id(IdKind.ClientMessage),
               Description("Made by the client (a UUID or ULID), unique per sender: a retry with the same one is answered Duplicate.")]
    string? ClientMessageId);

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
    long LastUpdatedTimestamp);

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
    [property: Id(IdKind.User)] IReadOnlyList<string> RecipientIds,
    string Message,
    [property: Id(IdKind.ClientMessage)] string ClientMessageId,
    [property: Description("When the sender's mailbox accepted the message: the same in every copy.")] long ServerTimestamp);

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
public sealed partial class MessagingJsonContext : JsonSerializerContext;
