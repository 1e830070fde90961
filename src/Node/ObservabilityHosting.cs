using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using Akka.Actor;
using Akka.Cluster.Sharding;
using Messaging.Actors;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;

namespace Messaging.Node;

public static class ObservabilityHosting
{
    /// <summary>
    /// OpenTelemetry metrics of the "Messaging" meter (and ASP.NET Core's request metrics, and the runtime's: GC heap,
    /// collections, working set, thread pool) for Prometheus, scraped at
    /// /metrics on the admin port (the node's admin server), plus the shard gauges.
    /// </summary>
    public static IServiceCollection AddMessagingMetrics(this IServiceCollection services)
    {
        services.AddOpenTelemetry()
            .ConfigureResource(resource => resource.AddService("messaging"))
            .WithMetrics(metrics => metrics
            .AddMeter(MessagingMetrics.MeterName, "Microsoft.AspNetCore.Hosting", "System.Runtime")
            .AddPrometheusExporter());
        services.AddHostedService<ShardGauges>();
        return services;
    }
}

/// <summary>
/// Shards and mailboxes this node hosts, as observable gauges tagged with the node's address. A scrape reads cached
/// numbers, which a background loop refreshes from the local shard region every <see cref="RefreshEvery"/>, so
/// scrapes cost sharding nothing. The gauges are process-wide (several nodes in one test process each add a series).
/// </summary>
public sealed class ShardGauges(IServiceProvider services) : BackgroundService
{
    public static readonly TimeSpan RefreshEvery = TimeSpan.FromSeconds(5);

    private static readonly ConcurrentDictionary<ShardGauges, string> Live = new();

    static ShardGauges()
    {
        MessagingMetrics.Meter.CreateObservableGauge("messaging.shards.hosted",
            () => Live.Select(g => new Measurement<long>(Interlocked.Read(ref g.Key._shards), new KeyValuePair<string, object?>("node", g.Value))),
            unit: "{shard}", description: "Mailbox shards hosted by this node's shard region (refreshed every 5 s)");
        MessagingMetrics.Meter.CreateObservableGauge("messaging.shards.entities",
            () => Live.Select(g => new Measurement<long>(Interlocked.Read(ref g.Key._entities), new KeyValuePair<string, object?>("node", g.Value))),
            unit: "{mailbox}", description: "Mailboxes in the shards this node hosts, as its region counts them (refreshed every 5 s)");
    }

    private long _shards;
    private long _entities;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var system = services.GetRequiredService<ActorSystem>();
        Live[this] = Akka.Cluster.Cluster.Get(system).SelfAddress.ToString();
        try
        {
            using var timer = new PeriodicTimer(RefreshEvery);
            do
            {
                try
                {
                    var region = ClusterSharding.Get(system).ShardRegion(MailboxHosting.TypeName);
                    var stats = await region.Ask<ShardRegionStats>(GetShardRegionStats.Instance, TimeSpan.FromSeconds(3), stoppingToken);
                    Interlocked.Exchange(ref _shards, stats.Stats.Count);
                    Interlocked.Exchange(ref _entities, stats.Stats.Values.Sum());
                }
                catch (Exception ex) when (ex is AskTimeoutException or ArgumentException or InvalidOperationException)
                {
                    // the region is not started yet or is shutting down: keep the last numbers
                }
            } while (await timer.WaitForNextTickAsync(stoppingToken).ConfigureAwait(false));
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
        finally
        {
            Live.TryRemove(this, out _);
        }
    }
}
