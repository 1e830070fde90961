using Akka.Cluster;
using Akka.Hosting;
using Messaging.Actors.Delivery;
using Messaging.Actors;
using Messaging.Actors.Groups;
using Messaging.Actors.Upgrades;
using Messaging.Http;
using Messaging.Node.Admin;
using Messaging.Messages.Serialization;
using Microsoft.AspNetCore.Hosting;

namespace Messaging.Node;

/// <summary>The whole node as a WebApplication: Akka (remoting, cluster, persistence, mailboxes) behind the HTTP API.</summary>
public static class NodeApp
{
    public const string ActorSystemName = "messaging";
    public const string DefaultUrl = "http://localhost:8080";

    public static WebApplication Build(string[] args)
    {
        var builder = CreateBuilder(args);
        var settings = NodeSettings.Load(builder.Configuration);
        Directory.CreateDirectory(settings.DataDirectoryPath);
        if (!UrlsConfigured(builder.Configuration))
            builder.WebHost.UseUrls(DefaultUrl);

        var tls = RemotingTls.Load(settings.Cluster.Tls);
        var features = new ClusterFeatures(settings.Upgrade);
        settings.Mailbox = settings.Mailbox with
        {
            ColdAllowed = () => features.IsEnabled(Feature.ColdConversations),
            ColdGroupsAllowed = () => features.IsEnabled(Feature.ColdGroups),
            ColdChannelsAllowed = () => features.IsEnabled(Feature.ColdChannels),
        };
        var partitions = settings.JournalPartitions;
        builder.Services.AddSingleton(partitions); // readiness asks every journal
        builder.Services.AddMessagingHttp(settings.Http, settings.RateLimit, SigningKeys.Resolve(settings), features);
        builder.Services.AddMessagingMetrics();
        builder.Services.AddAkka(ActorSystemName, akka => akka
            .ConfigureLoggers(loggers => loggers.AddLoggerFactory())
            .WithMessagingSerialization()
            .WithMessagingCluster(settings.Cluster, tls)
            .WithPauseGuard(settings.PauseGuardLimit)
            .WithMessagingDiscovery(settings)
            .WithMessagingPersistence(settings.Persistence.Provider, settings.JournalServers)
            .WithMailboxShards(settings.Mailbox, settings.Cluster.ShardCount, partitions: partitions)
            .WithGroupShards(settings.Mailbox, settings.Groups, settings.Cluster.ShardCount, partitions: partitions)
            .WithDeliveryIndex(settings.Mailbox)
            .WithMemoryGovernor(settings.Mailbox)
            .WithWakeWarmup(settings.Mailbox, settings.Cluster.ShardCount)
            .AddStartup((system, _) =>
            {
                features.Start(system);
                // No seed nodes: this node is a cluster of one (it also picks its real port when Port is 0).
                // Under Kubernetes discovery there are none either, and Cluster Bootstrap decides.
                if (settings.Cluster.SeedNodeList.Length == 0 && settings.Discovery.Method == DiscoveryMethod.Seeds)
                    Cluster.Get(system).Join(Cluster.Get(system).SelfAddress);
            }));
        builder.Services.AddMessagingAdmin(settings);

        var app = builder.Build();
        app.StopWhenActorSystemTerminates();
        app.UseWebClient(); // static files only, before authentication: they need no token and shadow no route
        app.UseMessagingHttp();
        app.MapMessagingEndpoints();
        return app;
    }

    /// <summary>appsettings.json is read from beside the binary, so it applies whatever the working directory.</summary>
    internal static WebApplicationBuilder CreateBuilder(string[] args) =>
        WebApplication.CreateBuilder(new WebApplicationOptions { Args = args, ContentRootPath = AppContext.BaseDirectory });

    private static bool UrlsConfigured(IConfiguration configuration) =>
        !string.IsNullOrEmpty(configuration[WebHostDefaults.ServerUrlsKey])
        || !string.IsNullOrEmpty(configuration[WebHostDefaults.HttpPortsKey])
        || !string.IsNullOrEmpty(configuration[WebHostDefaults.HttpsPortsKey]);
}
