using System.Text;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;

namespace Messaging.EndToEnd.Tests;

/// <summary>Tokens made with a plain JWT library, as any client could: the contract, not the node's own issuer.</summary>
public static class Tokens
{
    public static string Make(
        string userId, string key = TestNode.SigningKey, string issuer = "messaging", string audience = "messaging",
        DateTime? expires = null)
    {
        var exp = expires ?? DateTime.UtcNow.AddMinutes(10);
        return new JsonWebTokenHandler().CreateToken(new SecurityTokenDescriptor
        {
            Issuer = issuer,
            Audience = audience,
            Claims = new Dictionary<string, object> { ["sub"] = userId },
            IssuedAt = exp.AddHours(-1),
            NotBefore = exp.AddHours(-1),
            Expires = exp,
            SigningCredentials = new SigningCredentials(new SymmetricSecurityKey(Encoding.UTF8.GetBytes(key)), SecurityAlgorithms.HmacSha256),
        });
    }
}
