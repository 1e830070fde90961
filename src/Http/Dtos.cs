using System.Text.Json;
using System.Text.Json.Serialization;

namespace Messaging.Http;

/// <summary>Body of POST /v1/messages, as the client sends it (nullable: missing fields are the edge's 400, not a crash).</summary>
public sealed record SendMessageRequest(
    string? SenderId,
    IReadOnlyList<string?>? RecipientIds,
    string? Message,
    string? ClientMessageId);

public sealed record SendMessageResponse(string SendStatus, string MessageId, string ConversationId, long ServerTimestamp);

public sealed record ConversationDto(
    string ConversationId,
    IReadOnlyList<string> ParticipantIds,
    string Snippet,
    long LastUpdatedTimestamp);

public sealed record ConversationListResponse(
    IReadOnlyList<ConversationDto> Conversations,
    [property: JsonPropertyName("isDBupdate")] bool IsDBupdate);

public sealed record ThreadMessageDto(
    string MessageId,
    string ConversationId,
    long Seq,
    string SenderId,
    IReadOnlyList<string> RecipientIds,
    string Message,
    string ClientMessageId,
    long ServerTimestamp);

public sealed record ThreadMessagesResponse(IReadOnlyList<ThreadMessageDto> Messages);

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
