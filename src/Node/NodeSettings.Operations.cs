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
    public AdminSettings Admin { get; set; } = new();
    public DiscoverySettings Discovery { get; set; } = new();

    public sealed class AdminSettings
    {
        /// <summary>Interface of the admin and metrics listener: an IP, <c>localhost</c>, or <c>*</c> / <c>0.0.0.0</c> for all.</summary>
        public string Hostname { get; set; } = "127.0.0.1";
        public int Port { get; set; } = 9090;
        /// <summary>Shared secret of the admin routes; generated into the data directory (file admin-token) when unset.</summary>
        public string? Token { get; set; }
        public TimeSpan OperationTimeout { get; set; } = TimeSpan.FromSeconds(10);
    }

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

    public const int MinimumAdminTokenLength = 16;

    private IEnumerable<string> ValidateOperations()
    {
        if (Admin.Hostname is not ("localhost" or "*") && !IPAddress.TryParse(Admin.Hostname, out _))
            yield return $"Messaging:Admin:Hostname must be an IP address, localhost or *, not '{Admin.Hostname}'";
        if (Admin.Port is < 0 or > 65535)
            yield return $"Messaging:Admin:Port must be 0-65535, not {Admin.Port}";
        if (Admin.Token is { } token && token.Trim().Length < MinimumAdminTokenLength)
            yield return $"Messaging:Admin:Token must be at least {MinimumAdminTokenLength} characters";
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

    public AdminOptions ToAdminOptions(string token) => new()
    {
        Hostname = Admin.Hostname,
        Port = Admin.Port,
        Token = token,
        OperationTimeout = Admin.OperationTimeout,
        ShardCount = Cluster.ShardCount,
    };
}
