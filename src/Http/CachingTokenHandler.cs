using System.Collections.Concurrent;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;

namespace Messaging.Http;

/// <summary>
/// The JWT bearer handler's token validation, remembered per token string until the token expires: a client sends
/// the same token on every request, and checking its HMAC and parsing its JSON each time was a large part of the
/// node's CPU per send. Only valid results are kept; a hit is rechecked against the token's expiry (with the same
/// clock skew), so an expired token is refused exactly as without the cache. The validation parameters are fixed for
/// the handler's lifetime (one signing key), so the token string alone is the key.
/// </summary>
public sealed class CachingTokenHandler(TimeSpan clockSkew, int capacity = 16_384, TimeProvider? clock = null)
    : JsonWebTokenHandler
{
    private readonly ConcurrentDictionary<string, Entry> _valid = new(StringComparer.Ordinal);
    private readonly TimeProvider _clock = clock ?? TimeProvider.System;

    public int Count => _valid.Count;

    public override async Task<TokenValidationResult> ValidateTokenAsync(string token, TokenValidationParameters validationParameters)
    {
        var now = _clock.GetUtcNow().UtcDateTime;
        if (_valid.TryGetValue(token, out var cached))
        {
            if (now < cached.NotAfter)
                return cached.Result;
            _valid.TryRemove(token, out _);
        }

        var result = await base.ValidateTokenAsync(token, validationParameters);
        if (result.IsValid && result.SecurityToken is { ValidTo: var validTo } && validTo > DateTime.MinValue)
        {
            if (_valid.Count >= capacity)
                Evict(now);
            _valid[token] = new Entry(result, validTo + clockSkew);
        }
        return result;
    }

    /// <summary>Drop expired entries; if that frees too little, start over (tokens are revalidated on their next use).</summary>
    private void Evict(DateTime now)
    {
        foreach (var (token, entry) in _valid)
        {
            if (now >= entry.NotAfter)
                _valid.TryRemove(token, out _);
        }
        if (_valid.Count >= capacity * 3 / 4)
            _valid.Clear();
    }

    private sealed record Entry(TokenValidationResult Result, DateTime NotAfter);
}
