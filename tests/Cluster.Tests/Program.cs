namespace Messaging.Cluster.Tests;

public static class Program
{
    public static int Main(string[] args) => Harness.ManualRun.RunAsync(args).GetAwaiter().GetResult();
}
