using System.Net.Http.Headers;
using System.Security.Cryptography;
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

    /// <summary>An HS256 JWT as API.md describes it: iss/aud `messaging`, sub = user id, exp required.</summary>
    public static string Token(string signingKey, string userId, TimeSpan? lifetime = null)
    {
        static string B64(byte[] bytes) => Convert.ToBase64String(bytes).TrimEnd('=').Replace('+', '-').Replace('/', '_');
        var now = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        var header = B64(JsonSerializer.SerializeToUtf8Bytes(new { alg = "HS256", typ = "JWT" }));
        var payload = B64(JsonSerializer.SerializeToUtf8Bytes(new
        {
            iss = "messaging", aud = "messaging", sub = userId, iat = now, nbf = now,
            exp = now + (long)(lifetime ?? TimeSpan.FromDays(1)).TotalSeconds,
        }));
        var signature = HMACSHA256.HashData(KeyBytes(signingKey), Encoding.ASCII.GetBytes($"{header}.{payload}"));
        return $"{header}.{payload}.{B64(signature)}";
    }

    /// <summary>The key's bytes as the node reads them (UTF-8 of the configured string).</summary>
    public static Func<string, byte[]> KeyBytes { get; set; } = key => Encoding.UTF8.GetBytes(key);

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
