namespace Messaging.Cluster.Tests.Harness;

/// <summary>Node settings the scenarios use (see docs/operations.md for what each one means).</summary>
public static class ClusterSettings
{
    public static ClusterOptions ForTests => new()
    {
        Nodes = 3,
        Environment = new Dictionary<string, string>(),
    };
}
