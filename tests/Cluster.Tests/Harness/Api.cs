using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;

namespace Messaging.Cluster.Tests.Harness;

// The v1 contract as ../shared/API.md states it, nothing from the server's own code.
public sealed record SendRequest(string SenderId, string[] RecipientIds, string Message, string ClientMessageId);

public sealed record SendResponse(string? SendStatus, string? MessageId, string? ConversationId, long ServerTimestamp,
    string? Title, string? Detail);

public sealed record ConversationDto(string ConversationId, string[] ParticipantIds, string Snippet, long LastUpdatedTimestamp);

public sealed record ConversationsResponse(ConversationDto[] Conversations, bool IsDBupdate);

public sealed record MessageDto(string MessageId, string ConversationId, long Seq, string SenderId, string[] RecipientIds,
    string Message, string ClientMessageId, long ServerTimestamp);

public sealed record ThreadResponse(MessageDto[] Messages);

public static class Api
{
    public static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);

    /// <summary>A day's token for <paramref name="userId"/>, signed with the key's bytes as the node reads them (UTF-8).</summary>
    public static string Token(string signingKey, string userId) =>
        Jwt.Mint(userId, Encoding.UTF8.GetBytes(signingKey), TimeSpan.FromDays(1));

    public static HttpRequestMessage Authorized(HttpMethod method, Uri uri, string token, object? body = null)
    {
        var request = new HttpRequestMessage(method, uri);
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        if (body is not null)
            request.Content = JsonContent(body);
        return request;
    }

    private static HttpContent JsonContent(object body) =>
        new StringContent(JsonSerializer.Serialize(body, Json), Encoding.UTF8, "application/json");
}
