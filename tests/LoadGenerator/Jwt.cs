using System.Security.Cryptography;
using System.Text;

namespace Messaging.LoadGenerator;

/// <summary>HS256 tokens minted from the signing key, as any client with the key could: iss/aud <c>messaging</c>, sub, exp.</summary>
public static class Jwt
{
    public static string Mint(string userId, byte[] key, TimeSpan lifetime)
    {
        var now = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        var header = B64("{\"alg\":\"HS256\",\"typ\":\"JWT\"}"u8.ToArray());
        var payload = B64(Encoding.UTF8.GetBytes(
            $"{{\"iss\":\"messaging\",\"aud\":\"messaging\",\"sub\":\"{userId}\",\"iat\":{now},\"nbf\":{now - 60},\"exp\":{now + (long)lifetime.TotalSeconds}}}"));
        var signature = B64(HMACSHA256.HashData(key, Encoding.ASCII.GetBytes($"{header}.{payload}")));
        return $"{header}.{payload}.{signature}";
    }

    private static string B64(byte[] bytes) => Convert.ToBase64String(bytes).TrimEnd('=').Replace('+', '-').Replace('/', '_');
}
