using System.Net;
using Messaging.Node.Admin;

namespace Messaging.Node;

public enum DiscoveryMethod
{
    /// <summary>Join <c>Messaging:Cluster:SeedNodes</c> (or itself when there are none).</summary>
    Seeds,

    /// <summary>Akka.Management Cluster Bootstrap finds the other pods through the Kubernetes API; no seed nodes.</summary>
    Kubernetes,
}

/// <summary>The operations sections: <c>Messaging:Admin</c> (admin HTTP surface) and <c>Messaging:Discovery</c>.</summary>
public sealed partial class NodeSettings
{
    public AdminOptions Admin { get; set; } = new();
    public DiscoverySettings Discovery { get; set; } = new();

    public sealed class DiscoverySettings
    {
        public DiscoveryMethod Method { get; set; } = DiscoveryMethod.Seeds;
        /// <summary>Pods of this cluster, as a Kubernetes label selector.</summary>
        public string PodLabelSelector { get; set; } = "app.kubernetes.io/name=messaging";
        /// <summary>Namespace to look for pods in; empty = the pod's own (from its service account).</summary>
        public string? PodNamespace { get; set; }
        /// <summary>Akka.Management's HTTP port (bootstrap contact point), the container port named <c>management</c>.</summary>
        public int ManagementPort { get; set; } = 8558;
        public string ServiceName { get; set; } = "messaging";
        /// <summary>Pods that must be found before the lowest-addressed one may form a new cluster.</summary>
        public int RequiredContactPoints { get; set; } = 2;
    }

    private IEnumerable<string> ValidateOperations()
    {
        if (Admin.Hostname is not ("localhost" or "*") && !IPAddress.TryParse(Admin.Hostname, out _))
            yield return $"Messaging:Admin:Hostname must be an IP address, localhost or *, not '{Admin.Hostname}'";
        if (Admin.Port is < 0 or > 65535)
            yield return $"Messaging:Admin:Port must be 0-65535, not {Admin.Port}";
        if (Admin.Token is { } token && token.Trim().Length < AdminTokens.MinimumLength)
            yield return $"Messaging:Admin:Token must be at least {AdminTokens.MinimumLength} characters";
        if (Admin.OperationTimeout <= TimeSpan.Zero)
            yield return "Messaging:Admin:OperationTimeout must be positive";
        if (Discovery.Method == DiscoveryMethod.Kubernetes)
        {
            if (Cluster.SeedNodeList.Length > 0)
                yield return "Messaging:Cluster:SeedNodes must be empty when Messaging:Discovery:Method is Kubernetes (Cluster Bootstrap forms the cluster)";
            if (string.IsNullOrWhiteSpace(Discovery.PodLabelSelector))
                yield return "Messaging:Discovery:PodLabelSelector is required when Messaging:Discovery:Method is Kubernetes";
            if (string.IsNullOrWhiteSpace(Discovery.ServiceName))
                yield return "Messaging:Discovery:ServiceName must not be empty";
        }
        if (Discovery.ManagementPort is < 1 or > 65535)
            yield return $"Messaging:Discovery:ManagementPort must be 1-65535, not {Discovery.ManagementPort}";
        if (Discovery.RequiredContactPoints < 1)
            yield return "Messaging:Discovery:RequiredContactPoints must be at least 1";
    }
}
