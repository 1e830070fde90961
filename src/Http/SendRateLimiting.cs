using System.Globalization;
using System.Threading.RateLimiting;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.RateLimiting;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.IdentityModel.JsonWebTokens;

namespace Messaging.Http;

/// <summary>The send route's per-user token bucket; the node binds it from <c>Messaging:RateLimit</c>.</summary>
public sealed record SendRateLimitOptions
{
    /// <summary>Sustained sends per second per user, on each node.</summary>
    public int SendsPerSecond { get; init; } = 200;

    /// <summary>Sends a user may make at once (the bucket's size).</summary>
    public int Burst { get; init; } = 400;
}

/// <summary>A token bucket per user on the send route: <c>SendsPerSecond</c> sustained, <c>Burst</c> at once.</summary>
public static class SendRateLimiting
{
    public const string Policy = "sends-per-user";

    /// <summary>Typing notices: a bucket of their own per user, sized like the send bucket.</summary>
    public const string TypingPolicy = "typing-per-user";

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
        var (perPeriod, period) = Refill(options.SendsPerSecond);

        return services.AddRateLimiter(limiter =>
        {
            limiter.RejectionStatusCode = StatusCodes.Status429TooManyRequests;
            foreach (var policy in new[] { Policy, TypingPolicy })
            {
                limiter.AddPolicy(policy, http => RateLimitPartition.GetTokenBucketLimiter(
                    http.User.FindFirst(JwtRegisteredClaimNames.Sub)?.Value ?? "",
                    _ => new TokenBucketRateLimiterOptions
                    {
                        TokenLimit = options.Burst,
                        TokensPerPeriod = perPeriod,
                        ReplenishmentPeriod = period,
                        QueueLimit = 0,
                        AutoReplenishment = true,
                    }));
            }
            limiter.OnRejected = async (context, _) =>
            {
                HttpMetrics.RecordRateLimited();
                var retryAfter = context.Lease.TryGetMetadata(MetadataName.RetryAfter, out var wait) ? wait : period;
                var seconds = Math.Max(1, (int)Math.Ceiling(retryAfter.TotalSeconds));
                context.HttpContext.Response.Headers.RetryAfter = seconds.ToString(CultureInfo.InvariantCulture);
                await Problems.Of(StatusCodes.Status429TooManyRequests,
                        $"more than {options.SendsPerSecond} {(context.HttpContext.Request.Path.Value?.EndsWith("/typing", StringComparison.Ordinal) == true ? "typing notices" : "sends")} per second (burst {options.Burst}) for this user; retry after {seconds} s",
                        SendStatus.For(context.HttpContext, SendStatus.RateLimited))
                    .ExecuteAsync(context.HttpContext);
            };
        });
    }
}
