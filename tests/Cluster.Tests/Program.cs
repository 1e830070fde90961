namespace Messaging.Cluster.Tests;

public static class Program
{
    private static readonly string[] ManualVerbs = ["postgres", "cluster", "load", "help"];

    // An xunit v3 test project is its own test host: the runners (dotnet test, the IDE) start this executable with
    // their own switches, so only a bare verb (or nothing) means the harness by hand. The rest is what xunit would
    // generate as the entry point.
    public static int Main(string[] args)
    {
        if (args.Length == 0 || ManualVerbs.Contains(args[0]))
            return Harness.ManualRun.RunAsync(args).GetAwaiter().GetResult();
        if (args.Any(arg => arg is "--server" or "--internal-msbuild-node"))
            return Xunit.MicrosoftTestingPlatform.TestPlatformTestFramework
                .RunAsync(args, SelfRegisteredExtensions.AddSelfRegisteredExtensions).GetAwaiter().GetResult();
        return Xunit.Runner.InProc.SystemConsole.ConsoleRunner.Run(args).GetAwaiter().GetResult();
    }
}
