namespace Messaging.Cluster.Tests.Harness;

/// <summary>Node settings the scenarios use (see docs/operations.md for what each one means).</summary>
public static class ClusterSettings
{
    public static ClusterOptions ForTests => new()
    {
        Nodes = 3,
        Environment = new Dictionary<string, string>
        {
            // Failover in seconds rather than tens of seconds: unreachable after 3 s, downed 5 s later.
            ["Messaging__Cluster__UnreachableAfter"] = "00:00:03",
            ["Messaging__Cluster__StableAfter"] = "00:00:05",
        },
    };
}
