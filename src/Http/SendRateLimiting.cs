using System.Globalization;
using System.Threading.RateLimiting;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.RateLimiting;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.IdentityModel.JsonWebTokens;

namespace Messaging.Http;

/// <summary>
/// The per-user token buckets of the API; the node binds them from <c>Messaging:RateLimit</c> (sends and typing
/// share the first pair of settings, each with a bucket of its own; reads have theirs).
/// </summary>
public sealed record SendRateLimitOptions
{
    /// <summary>Sustained sends per second per user, on each node.</summary>
    public int SendsPerSecond { get; init; } = 200;

    /// <summary>Sends a user may make at once (the bucket's size).</summary>
    public int Burst { get; init; } = 400;

    /// <summary>Sustained reads (conversation lists and thread pages) per second per user, on each node.</summary>
    public int ReadsPerSecond { get; init; } = 100;

    /// <summary>Reads a user may make at once.</summary>
    public int ReadBurst { get; init; } = 200;
}

/// <summary>
/// A token bucket per user on the send route (<c>SendsPerSecond</c> sustained, <c>Burst</c> at once), one like it for
/// typing, and one for the read routes (<c>ReadsPerSecond</c>, <c>ReadBurst</c>).
/// </summary>
public static class SendRateLimiting
{
    public const string Policy = "sends-per-user";

    /// <summary>Typing notices: a bucket of their own per user, sized like the send bucket.</summary>
    public const string TypingPolicy = "typing-per-user";

    /// <summary>Conversation lists and thread pages: a bucket of their own per user (an older page reads the journal).</summary>
    public const string ReadPolicy = "reads-per-user";

    /// <summary>
    /// Tokens per refill and the refill period that give exactly <paramref name="sendsPerSecond"/>: refilled in small
    /// steps (10 ms or more) rather than once a second, so a second's allowance does not arrive at once, and never
    /// rounded (130/s is 13 every 100 ms, not 1 every 10 ms, which would be 100/s).
    /// </summary>
    public static (int Tokens, TimeSpan Period) Refill(int sendsPerSecond)
    {
        if (sendsPerSecond < 1)
            throw new ArgumentOutOfRangeException(nameof(sendsPerSecond), sendsPerSecond, "at least 1");
        var common = (int)System.Numerics.BigInteger.GreatestCommonDivisor(sendsPerSecond, 1000);
        var (tokens, milliseconds) = (sendsPerSecond / common, 1000 / common);
        var scale = (10 + milliseconds - 1) / milliseconds; // the smallest multiple of the period that is >= 10 ms
        return (tokens * scale, TimeSpan.FromMilliseconds(milliseconds * scale));
    }

    public static IServiceCollection AddSendRateLimiting(this IServiceCollection services, SendRateLimitOptions options)
    {
        var buckets = new Dictionary<string, (string What, int PerSecond, int Burst)>
        {
            [Policy] = ("sends", options.SendsPerSecond, options.Burst),
            [TypingPolicy] = ("typing notices", options.SendsPerSecond, options.Burst),
            [ReadPolicy] = ("reads", options.ReadsPerSecond, options.ReadBurst),
        };

        return services.AddRateLimiter(limiter =>
        {
            limiter.RejectionStatusCode = StatusCodes.Status429TooManyRequests;
            foreach (var (policy, (_, perSecond, burst)) in buckets)
            {
                var (perPeriod, period) = Refill(perSecond);
                limiter.AddPolicy(policy, http => RateLimitPartition.GetTokenBucketLimiter(
                    http.User.FindFirst(JwtRegisteredClaimNames.Sub)?.Value ?? "",
                    _ => new TokenBucketRateLimiterOptions
                    {
                        TokenLimit = burst,
                        TokensPerPeriod = perPeriod,
                        ReplenishmentPeriod = period,
                        QueueLimit = 0,
                        AutoReplenishment = true,
                    }));
            }
            limiter.OnRejected = async (context, _) =>
            {
                var policy = context.HttpContext.GetEndpoint()?.Metadata.GetMetadata<EnableRateLimitingAttribute>()?.PolicyName;
                if (policy is null or Policy)
                    HttpMetrics.RecordRateLimited(); // a send's outcome
                var (what, perSecond, burst) = buckets.GetValueOrDefault(policy ?? Policy, buckets[Policy]);
                var retryAfter = context.Lease.TryGetMetadata(MetadataName.RetryAfter, out var wait) ? wait : Refill(perSecond).Period;
                var seconds = Math.Max(1, (int)Math.Ceiling(retryAfter.TotalSeconds));
                context.HttpContext.Response.Headers.RetryAfter = seconds.ToString(CultureInfo.InvariantCulture);
                await Problems.Of(StatusCodes.Status429TooManyRequests,
                        $"more than {perSecond} {what} per second (burst {burst}) for this user; retry after {seconds} s",
                        SendStatus.For(context.HttpContext, SendStatus.RateLimited))
                    .ExecuteAsync(context.HttpContext);
            };
        });
    }
}
