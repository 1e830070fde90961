namespace Messaging.Cluster.Tests.Harness;

public static class Paths
{
    /// <summary>A fresh directory for one test run's logs, data and summary; kept afterwards for diagnosis.</summary>
    public static string NewRunDirectory(string name)
    {
        var root = Environment.GetEnvironmentVariable("MESSAGING_TEST_DIR") ?? Path.Combine(Path.GetTempPath(), "messaging-cluster-tests");
        var dir = Path.Combine(root, $"{DateTime.UtcNow:yyyyMMdd-HHmmss}-{name}-{Guid.NewGuid().ToString("N")[..6]}");
        Directory.CreateDirectory(dir);
        return dir;
    }
}
