namespace Messaging.Cluster.Tests.Harness;

/// <summary>The harness by hand: `dotnet run --project tests/Cluster.Tests -- postgres` (more in docs/operations.md).</summary>
public static class ManualRun
{
    public static async Task<int> RunAsync(string[] args)
    {
        var verb = args.FirstOrDefault() ?? "help";
        switch (verb)
        {
            case "postgres":
            {
                await using var server = await PostgresServer.StartAsync();
                Console.WriteLine($"PostgreSQL up in {server.Directory}");
                Console.WriteLine($"Messaging__Persistence__ConnectionString=\"{server.ConnectionString}\"");
                await WaitForCtrlC();
                return 0;
            }
            default:
                Console.WriteLine("usage: postgres");
                return verb == "help" ? 0 : 2;
        }
    }

    private static Task WaitForCtrlC()
    {
        var done = new TaskCompletionSource();
        Console.CancelKeyPress += (_, e) => { e.Cancel = true; done.TrySetResult(); };
        Console.WriteLine("Ctrl+C stops it and deletes its files.");
        return done.Task;
    }
}
