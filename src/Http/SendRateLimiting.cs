using System.Globalization;
using System.Threading.RateLimiting;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.RateLimiting;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.IdentityModel.JsonWebTokens;

namespace Messaging.Http;

/// <summary>A token bucket per user on the send route: <c>SendsPerSecond</c> sustained, <c>SendBurst</c> at once.</summary>
public static class SendRateLimiting
{
    public const string Policy = "sends-per-user";

    public static IServiceCollection AddSendRateLimiting(this IServiceCollection services, MessagingApiOptions options)
    {
        // Refill in small steps rather than once a second, so a full second's allowance does not arrive in one burst.
        var period = TimeSpan.FromMilliseconds(Math.Max(10, 1000.0 / options.SendsPerSecond));
        var perPeriod = Math.Max(1, (int)Math.Round(options.SendsPerSecond * period.TotalSeconds));

        return services.AddRateLimiter(limiter =>
        {
            limiter.RejectionStatusCode = StatusCodes.Status429TooManyRequests;
            limiter.AddPolicy(Policy, http => RateLimitPartition.GetTokenBucketLimiter(
                http.User.FindFirst(JwtRegisteredClaimNames.Sub)?.Value ?? "",
                _ => new TokenBucketRateLimiterOptions
                {
                    TokenLimit = options.SendBurst,
                    TokensPerPeriod = perPeriod,
                    ReplenishmentPeriod = period,
                    QueueLimit = 0,
                    AutoReplenishment = true,
                }));
            limiter.OnRejected = async (context, _) =>
            {
                HttpMetrics.RecordRateLimited();
                var retryAfter = context.Lease.TryGetMetadata(MetadataName.RetryAfter, out var wait) ? wait : period;
                var seconds = Math.Max(1, (int)Math.Ceiling(retryAfter.TotalSeconds));
                context.HttpContext.Response.Headers.RetryAfter = seconds.ToString(CultureInfo.InvariantCulture);
                await Problems.Send(StatusCodes.Status429TooManyRequests, SendStatus.RateLimited,
                        $"more than {options.SendsPerSecond} sends per second (burst {options.SendBurst}) for this user; retry after {seconds} s")
                    .ExecuteAsync(context.HttpContext);
            };
        });
    }
}
