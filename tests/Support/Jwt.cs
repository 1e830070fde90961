using System.Buffers.Text;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;

namespace Messaging.Testing;

/// <summary>
/// HS256 tokens as API.md describes them (iss and aud <c>messaging</c>, sub = the user id, exp), minted by hand from
/// the signing key's bytes as any client holding the key could: the contract, nothing from the node's own code.
/// </summary>
public static class Jwt
{
    public const string Messaging = "messaging";

    public static string Mint(string userId, byte[] key, TimeSpan lifetime) =>
        Mint(userId, key, DateTimeOffset.UtcNow + lifetime);

    /// <summary>Any token, also those the node must refuse: expired, or for another issuer or audience.</summary>
    /// <param name="notBefore">Its iat and nbf; by default now, or an hour before it expires if that is earlier.</param>
    public static string Mint(string userId, byte[] key, DateTimeOffset expires, string issuer = Messaging,
        string audience = Messaging, DateTimeOffset? notBefore = null)
    {
        // Valid from now, or from an hour before it expires if that is earlier: a token minted already expired was
        // valid once, so the node refuses it for its expiry and nothing else.
        var exp = expires.ToUnixTimeSeconds();
        var from = notBefore?.ToUnixTimeSeconds() ?? Math.Min(DateTimeOffset.UtcNow.ToUnixTimeSeconds(), exp - 3600);
        var header = Base64Url.EncodeToString("""{"alg":"HS256","typ":"JWT"}"""u8);
        var payload = Base64Url.EncodeToString(JsonSerializer.SerializeToUtf8Bytes(new
        {
            iss = issuer, aud = audience, sub = userId, iat = from, nbf = from, exp,
        }));
        var signature = HMACSHA256.HashData(key, Encoding.ASCII.GetBytes($"{header}.{payload}"));
        return $"{header}.{payload}.{Base64Url.EncodeToString(signature)}";
    }
}
