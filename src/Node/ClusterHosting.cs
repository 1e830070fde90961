using Akka.Actor;
using Akka.Cluster.Hosting;
using Akka.Cluster.Hosting.SBR;
using Akka.Hosting;
using Akka.Remote.Hosting;

namespace Messaging.Node;

public static class ClusterHosting
{
    public const int MaxFrameBytes = 16 * 1024 * 1024;

    /// <summary>
    /// Remoting and cluster membership for a node among several: seed nodes (none = join itself), the Split Brain
    /// Resolver keeping the majority, an app-version so a rolling update moves shards to the newest nodes, and
    /// CoordinatedShutdown on SIGTERM (the host's stop) that hands shards off and leaves before the process exits.
    /// How the timeouts relate is in docs/operations.md. With <paramref name="tls"/>, remoting runs over TLS
    /// (addresses akka.ssl.tcp://...) and talks only to nodes that pass its peer check.
    /// </summary>
    public static AkkaConfigurationBuilder WithMessagingCluster(
        this AkkaConfigurationBuilder builder, NodeSettings.ClusterSettings cluster, RemotingTls? tls = null)
    {
        var stableAfter = Hocon(cluster.StableAfter);
        var remote = new RemoteOptions
        {
            HostName = cluster.Hostname,
            Port = cluster.Port,
            // The largest answer the contract allows crosses nodes whole: a thread page of 200 messages of up to
            // 65,535 bytes is ~13 MB, far above the 128 KB default frame (which would drop it: a 503 for the
            // client). Socket buffers must hold a whole frame.
            MaxFrameSize = MaxFrameBytes,
            SendBufferSize = MaxFrameBytes,
            ReceiveBufferSize = MaxFrameBytes,
        };
        if (tls is not null)
        {
            remote.EnableSsl = true;
            remote.Ssl = tls.SslOptions;
            builder.AddStartup((system, _) => tls.LogStart(system.Log));
        }
        return builder
            .WithRemoting(remote)
            .WithClustering(new ClusterOptions
            {
                SeedNodes = cluster.SeedNodeList,
                SplitBrainResolver = new KeepMajorityOption(),
                AppVersion = cluster.AppVersion ?? AppVersionOfThisBuild(),
            })
            .AddHocon($$"""
                akka.cluster {
                  failure-detector.acceptable-heartbeat-pause = {{Hocon(cluster.UnreachableAfter)}}
                  split-brain-resolver {
                    stable-after = {{stableAfter}}
                    # An unstable membership for stable-after + 3/4 of it downs everyone rather than guess.
                    down-all-when-unstable = on
                  }
                  # A downed node's shards start elsewhere only after this margin, by when the minority side
                  # (which decides at the same stable-after) has downed itself and stopped writing.
                  down-removal-margin = {{stableAfter}}
                  # Downed (by the majority or by itself): run CoordinatedShutdown and so stop the process.
                  run-coordinated-shutdown-when-down = on
                }
                akka.coordinated-shutdown {
                  run-by-clr-shutdown-hook = on
                  phases.cluster-sharding-shutdown-region.timeout = {{Hocon(cluster.ShutdownTimeout / 2)}}
                  phases.actor-system-terminate.timeout = {{Hocon(cluster.ShutdownTimeout / 3)}}
                }
                """, HoconAddMode.Prepend);
    }

    /// <summary>
    /// A downed node's ActorSystem terminates; the process must then exit (not linger as a web server with no
    /// cluster), so its orchestrator starts a fresh incarnation that joins again.
    /// </summary>
    public static WebApplication StopWhenActorSystemTerminates(this WebApplication app)
    {
        app.Lifetime.ApplicationStarted.Register(() =>
            app.Services.GetRequiredService<ActorSystem>().WhenTerminated
                .ContinueWith(_ => app.Lifetime.StopApplication(), TaskScheduler.Default));
        return app;
    }

    /// <summary>
    /// major.minor.build of the node assembly: <c>Version</c> in src/Node/Node.csproj, raised by every release (a
    /// release that brings a gated feature raises it to at least the feature's, see FeatureGate.IntroducedIn).
    /// </summary>
    public static Version ReleaseOfThisBuild { get; } = ReleaseOf(typeof(ClusterHosting).Assembly.GetName().Version);

    private static Version ReleaseOf(Version? version) =>
        version is null ? new Version(1, 0, 0) : new Version(version.Major, version.Minor, Math.Max(0, version.Build));

    private static string AppVersionOfThisBuild() => ReleaseOfThisBuild.ToString(3);

    private static string Hocon(TimeSpan value) => $"{(long)value.TotalMilliseconds}ms";
}
