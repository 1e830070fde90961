using Microsoft.Extensions.DependencyInjection;

namespace Messaging.Node.Admin;

public static class AdminHosting
{
    /// <summary>The admin HTTP server on its own port; registered after Akka so it starts once the actor system is up.</summary>
    public static IServiceCollection AddMessagingAdmin(this IServiceCollection services, AdminOptions options)
    {
        services.AddSingleton(options);
        services.AddSingleton<AdminServer>();
        services.AddHostedService(sp => sp.GetRequiredService<AdminServer>());
        return services;
    }
}
