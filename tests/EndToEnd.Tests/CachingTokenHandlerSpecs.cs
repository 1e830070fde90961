using System.Text;
using Messaging.Http;
using Xunit;

namespace Messaging.EndToEnd.Tests;

public sealed class CachingTokenHandlerSpecs
{
    private sealed class ManualClock(DateTimeOffset now) : TimeProvider
    {
        public DateTimeOffset Now { get; set; } = now;

        public override DateTimeOffset GetUtcNow() => Now;
    }

    [Fact]
    public async Task Should_reuse_a_validated_token_until_it_expires_and_never_cache_an_invalid_one()
    {
        var clock = new ManualClock(DateTimeOffset.UtcNow);
        var parameters = MessagingAuth.ValidationParameters(TestNode.SigningKeyBytes);
        var handler = new CachingTokenHandler(parameters.ClockSkew, clock: clock);
        var token = Jwt.Mint("alice", TestNode.SigningKeyBytes, clock.Now.AddMinutes(5));

        var first = await handler.ValidateTokenAsync(token, parameters);
        var second = await handler.ValidateTokenAsync(token, parameters);
        Assert.True(first.IsValid);
        Assert.Same(first, second);
        Assert.Equal(1, handler.Count);

        // Past exp + 30 s of skew by the cache's clock: the hit is dropped and the token validated again
        // (by the real clock, for which it is still valid: a fresh result, not the cached one).
        clock.Now += TimeSpan.FromMinutes(6);
        var third = await handler.ValidateTokenAsync(token, parameters);
        Assert.NotSame(first, third);
        Assert.True(third.IsValid);

        var forged = Jwt.Mint("alice", Encoding.UTF8.GetBytes(new string('x', 40)), TimeSpan.FromMinutes(10));
        Assert.False((await handler.ValidateTokenAsync(forged, parameters)).IsValid);
        Assert.Equal(1, handler.Count);
    }
}
