using Akka.Discovery.KubernetesApi;
using Akka.Hosting;
using Akka.Management;
using Akka.Management.Cluster.Bootstrap;

namespace Messaging.Node;

public static class DiscoveryHosting
{
    /// <summary>
    /// In Kubernetes mode: Akka.Management's HTTP endpoint (the bootstrap contact point, container port
    /// <c>management</c>), Cluster Bootstrap, and pod discovery through the Kubernetes API with the configured label
    /// selector. Bootstrap joins an existing cluster it finds, or lets the lowest-addressed pod form one once
    /// <c>RequiredContactPoints</c> pods agree; there are no seed nodes. In Seeds mode nothing is added.
    /// </summary>
    public static AkkaConfigurationBuilder WithMessagingDiscovery(this AkkaConfigurationBuilder builder, NodeSettings settings)
    {
        if (settings.Discovery.Method != DiscoveryMethod.Kubernetes)
            return builder;
        var discovery = settings.Discovery;
        return builder
            .WithAkkaManagement(management =>
            {
                management.HostName = settings.Cluster.Hostname;
                management.Port = discovery.ManagementPort;
                management.BindHostName = "0.0.0.0";
                management.BindPort = discovery.ManagementPort;
            })
            .WithClusterBootstrap(bootstrap =>
            {
                var contactPoints = bootstrap.ContactPointDiscovery;
                contactPoints.ServiceName = discovery.ServiceName;
                contactPoints.PortName = "management";
                contactPoints.RequiredContactPointsNr = discovery.RequiredContactPoints;
                // A pod that dies during a roll must not block forming or joining.
                contactPoints.ContactWithAllContactPoints = false;
                contactPoints.StableMargin = TimeSpan.FromSeconds(5);
            }, autoStart: true)
            .WithKubernetesDiscovery(kubernetes =>
            {
                kubernetes.PodLabelSelector = discovery.PodLabelSelector;
                if (discovery.PodNamespace is { Length: > 0 } ns)
                    kubernetes.PodNamespace = ns;
            });
    }
}
