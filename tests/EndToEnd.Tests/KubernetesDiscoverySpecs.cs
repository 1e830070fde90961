using Akka.Hosting;
using Messaging.Node;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;

namespace Messaging.EndToEnd.Tests;

/// <summary>
/// The node's Kubernetes path, from the configuration keys the manifests set (k8s/deployment.yaml) to the Akka
/// configuration it produces, without a Kubernetes API: Akka.Management, Cluster Bootstrap, Kubernetes discovery.
/// </summary>
public sealed class KubernetesDiscoverySpecs
{
    private static NodeSettings Settings(params (string Key, string Value)[] values) =>
        NodeSettings.Load(new ConfigurationBuilder()
            .AddInMemoryCollection(values.Select(v => new KeyValuePair<string, string?>(v.Key, v.Value)))
            .Build());

    private static Akka.Configuration.Config AkkaConfigOf(NodeSettings settings)
    {
        var builder = new AkkaConfigurationBuilder(new ServiceCollection(), NodeApp.ActorSystemName);
        builder.WithMessagingDiscovery(settings);
        return builder.Configuration.Value;
    }

    [Fact]
    public void Should_configure_bootstrap_through_the_Kubernetes_API_with_the_manifests_settings()
    {
        // The same keys and values as the Deployment's environment (Messaging__Discovery__...).
        var settings = Settings(
            ("Messaging:Discovery:Method", "Kubernetes"),
            ("Messaging:Discovery:PodLabelSelector", "app.kubernetes.io/name=messaging"),
            ("Messaging:Discovery:ManagementPort", "8558"),
            ("Messaging:Discovery:RequiredContactPoints", "2"),
            ("Messaging:Cluster:Hostname", "10.1.2.3"));

        var config = AkkaConfigOf(settings);

        Assert.Equal("kubernetes-api", config.GetString("akka.discovery.method"));
        Assert.Equal("app.kubernetes.io/name=messaging", config.GetString("akka.discovery.kubernetes-api.pod-label-selector"));
        Assert.Contains("KubernetesApiServiceDiscovery", config.GetString("akka.discovery.kubernetes-api.class"));
        Assert.Equal(8558, config.GetInt("akka.management.http.port"));
        Assert.Equal("10.1.2.3", config.GetString("akka.management.http.hostname"));
        Assert.Equal("0.0.0.0", config.GetString("akka.management.http.bind-hostname"));
        Assert.Equal("management", config.GetString("akka.management.cluster.bootstrap.contact-point-discovery.port-name"));
        Assert.Equal("messaging", config.GetString("akka.management.cluster.bootstrap.contact-point-discovery.service-name"));
        Assert.Equal(2, config.GetInt("akka.management.cluster.bootstrap.contact-point-discovery.required-contact-point-nr"));
        Assert.False(config.GetBoolean("akka.management.cluster.bootstrap.contact-point-discovery.contact-with-all-contact-points"));
    }

    [Fact]
    public void Should_add_nothing_of_bootstrap_in_seed_node_mode()
    {
        var builder = new AkkaConfigurationBuilder(new ServiceCollection(), NodeApp.ActorSystemName);
        builder.WithMessagingDiscovery(Settings());
        Assert.False(builder.Configuration.HasValue && builder.Configuration.Value.HasPath("akka.management.cluster.bootstrap"));
    }

    [Fact]
    public void Should_refuse_seed_nodes_in_Kubernetes_mode()
    {
        var error = Assert.Throws<NodeConfigurationException>(() => Settings(
            ("Messaging:Discovery:Method", "Kubernetes"),
            ("Messaging:Cluster:SeedNodes", "akka.tcp://messaging@10.0.0.1:4053")));
        Assert.Contains("Messaging:Cluster:SeedNodes must be empty", error.Message);
    }
}
