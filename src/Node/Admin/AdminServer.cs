using System.Net;
using Akka.Actor;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using OpenTelemetry.Metrics;

namespace Messaging.Node.Admin;

/// <summary>
/// A second, small Kestrel server for operators: /admin (admin token) and /metrics (Prometheus). It has its own
/// pipeline, so nothing of the public API (JWT, rate limits) applies to it and none of its routes exist on the
/// public port, whatever Host header a client sends. It shares the node's actor system and meter provider.
/// </summary>
/// <param name="token">The admin token, configured or kept in the data directory (<see cref="AdminTokens"/>).</param>
/// <param name="shardCount">The mailbox shard count, for <see cref="ClusterAdmin"/>.</param>
public sealed class AdminServer(
    IServiceProvider services, AdminOptions options, string token, int shardCount, ILoggerFactory loggerFactory) : IHostedService
{
    private WebApplication? _app;

    /// <summary>Where it listens once started (its real port when <see cref="AdminOptions.Port"/> is 0).</summary>
    public Uri? Address { get; private set; }

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        // Resolved now, not in the constructor: Akka's hosted service (registered first) has started the system.
        var system = services.GetRequiredService<ActorSystem>();
        var meterProvider = services.GetRequiredService<MeterProvider>();
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.Services.AddSingleton(loggerFactory);
        builder.Services.AddSingleton(system);
        builder.Services.AddSingleton(new ClusterAdmin(system, options, shardCount));
        builder.Services.AddProblemDetails();
        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            switch (options.Hostname)
            {
                case "localhost":
                    kestrel.ListenLocalhost(options.Port);
                    break;
                case "*" or "0.0.0.0":
                    kestrel.ListenAnyIP(options.Port);
                    break;
                default:
                    kestrel.Listen(IPAddress.Parse(options.Hostname), options.Port);
                    break;
            }
        });

        var app = builder.Build();
        app.MapAdminApi(token);
        // Scraped unauthenticated, as Prometheus expects; it carries counts, never ids or message text.
        app.MapPrometheusScrapingEndpoint("/metrics", meterProvider, configureBranchedPipeline: null, optionsName: null);
        app.MapGet("/", () => TypedResults.Text("messaging admin: /admin/... (admin token), /metrics\n"));
        await app.StartAsync(cancellationToken);
        _app = app;
        var bound = app.Services.GetRequiredService<Microsoft.AspNetCore.Hosting.Server.IServer>()
            .Features.Get<IServerAddressesFeature>()!.Addresses.First();
        Address = new Uri(bound.Replace("[::]", "127.0.0.1", StringComparison.Ordinal)
            .Replace("0.0.0.0", "127.0.0.1", StringComparison.Ordinal));
        loggerFactory.CreateLogger<AdminServer>().LogInformation("Admin and metrics listening on {AdminAddress}", Address);
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        if (_app is not null)
        {
            await _app.StopAsync(cancellationToken);
            await _app.DisposeAsync();
        }
    }
}
