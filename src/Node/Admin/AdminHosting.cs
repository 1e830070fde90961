using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Messaging.Node.Admin;

public static class AdminHosting
{
    /// <summary>
    /// The admin HTTP server on its own port; registered after Akka so it starts once the actor system is up. The
    /// token is resolved now, so a bad kept token file stops the node before it starts.
    /// </summary>
    public static IServiceCollection AddMessagingAdmin(this IServiceCollection services, NodeSettings settings)
    {
        var token = AdminTokens.Resolve(settings);
        services.AddSingleton(sp => new AdminServer(
            sp, settings.Admin, token, settings.Cluster.ShardCount, sp.GetRequiredService<ILoggerFactory>()));
        services.AddHostedService(sp => sp.GetRequiredService<AdminServer>());
        return services;
    }
}
