using Akka.Actor;
using Messaging.Actors;
using Messaging.Actors.Upgrades;
using Messaging.Http.OpenApi;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Json;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;

namespace Messaging.Http;

/// <summary>Everything the HTTP edge needs, in the order a request meets it.</summary>
public static class HttpHosting
{
    /// <param name="signingKey">UTF-8 bytes of the HS256 key (at least <see cref="MessagingAuth.MinimumKeyBytes"/>).</param>
    /// <param name="features">Which features the cluster may use now (started with the actor system).</param>
    public static IServiceCollection AddMessagingHttp(
        this IServiceCollection services, MessagingApiOptions options, SendRateLimitOptions rateLimit, byte[] signingKey,
        ClusterFeatures features)
    {
        services.AddSingleton(options);
        services.AddSingleton(features);
        services.AddSingleton<MailboxClient>();
        services.AddProblemDetails();
        services.ConfigureHttpJsonOptions(json => json.SerializerOptions.TypeInfoResolverChain.Insert(0, MessagingJsonContext.Default));
        // A query value that does not parse (count=abc) throws, so the middleware below answers with problem details.
        services.Configure<RouteHandlerOptions>(routes => routes.ThrowOnBadRequest = true);
        services.AddMessagingAuthentication(signingKey);
        services.AddSendRateLimiting(rateLimit);
        services.AddMessagingHealthChecks();
        services.AddMessagingOpenApi();
        return services;
    }

    public static WebApplication UseMessagingHttp(this WebApplication app)
    {
        app.Use(async (http, next) =>
        {
            try
            {
                await next(http);
            }
            catch (BadHttpRequestException ex) when (!http.Response.HasStarted)
            {
                var sendStatus = ex.StatusCode == StatusCodes.Status413PayloadTooLarge ? SendStatus.TooLarge : SendStatus.Invalid;
                await Problems.Of(ex.StatusCode, ex.Message, SendStatus.For(http, sendStatus)).ExecuteAsync(http);
            }
        });
        // A node back from a pause longer than the pause guard's limit serves nothing: its mailboxes may run elsewhere,
        // so its answers could be stale and its writes are refused. The health endpoints still answer (not ready).
        var guard = PauseGuard.Get(app.Services.GetRequiredService<ActorSystem>());
        app.Use(async (http, next) =>
        {
            if (guard.Refusal is { } paused && !http.Request.Path.StartsWithSegments(MessagingHealth.PathBase))
            {
                HttpMetrics.RecordUnavailable(UnavailableReason.NodePaused);
                http.Response.Headers.RetryAfter = "1";
                await Problems.Of(StatusCodes.Status503ServiceUnavailable, $"this node cannot answer now, nothing was stored: {paused}",
                    SendStatus.For(http, SendStatus.Unavailable)).ExecuteAsync(http);
                return;
            }
            await next(http);
        });
        app.UseAuthentication();
        app.UseAuthorization();
        app.UseRateLimiter();
        return app;
    }

    public static IEndpointRouteBuilder MapMessagingEndpoints(this IEndpointRouteBuilder endpoints)
    {
        endpoints.MapMessagingApi();
        endpoints.MapGroupsApi();
        endpoints.MapLiveEvents();
        endpoints.MapMessagingHealth();
        endpoints.MapMessagingOpenApi();
        return endpoints;
    }
}
