namespace Messaging.Cluster.Tests.Harness;

/// <summary>
/// The harness by hand (`dotnet run --project tests/Cluster.Tests -- VERB`):
///   postgres            a throwaway PostgreSQL; prints its connection string
///   cluster [N] [S]     S PostgreSQL servers (default 1; the journal's partitions split between them) plus N nodes
///                       (default 3); prints their URLs and a token per demo user
///   load [N] [SECONDS]  the same, with the load client running for SECONDS (default 30), then the verifier
/// Everything stops and is cleaned up on Ctrl+C (or at the end of `load`); logs stay in the printed run directory.
/// </summary>
public static class ManualRun
{
    public static async Task<int> RunAsync(string[] args)
    {
        var verb = args.FirstOrDefault() ?? "help";
        var nodes = args.Length > 1 && int.TryParse(args[1], out var n) ? n : 3;
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
            case "cluster":
            {
                var dir = Paths.NewRunDirectory("manual");
                var count = args.Length > 2 && int.TryParse(args[2], out var c) ? c : 1;
                var servers = new List<PostgresServer>();
                try
                {
                    for (var i = 0; i < count; i++)
                        servers.Add(await PostgresServer.StartAsync(dir));
                    var databases = new DatabaseLayout(servers);
                    foreach (var (key, value) in databases.Environment())
                        Console.WriteLine($"{key}=\"{value}\"");
                    await using var cluster = await TestCluster.StartAsync(databases, dir, Console.WriteLine,
                        ClusterSettings.ForTests with { Nodes = nodes, DatabaseServers = count });
                    foreach (var node in cluster.Nodes)
                        Console.WriteLine($"{node.Name}: {node.HttpUri} ({node.AkkaAddress}, pid {node.Pid}, logs {node.StdoutPath})");
                    foreach (var user in new[] { "alice", "bob" })
                        Console.WriteLine($"token {user}: {Api.Token(cluster.SigningKey, user)}");
                    await WaitForCtrlC();
                    return 0;
                }
                finally
                {
                    foreach (var server in servers)
                        await server.DisposeAsync();
                }
            }
            case "load":
            {
                var seconds = args.Length > 2 && int.TryParse(args[2], out var s) ? s : 30;
                await using var scenario = await Scenario.StartAsync("manual-load", Console.WriteLine,
                    ClusterSettings.ForTests with { Nodes = nodes });
                await Task.Delay(TimeSpan.FromSeconds(seconds));
                var (_, verifier) = await scenario.FinishAsync();
                return verifier.Ok ? 0 : 1;
            }
            default:
                Console.WriteLine("usage: postgres | cluster [N] [DATABASE_SERVERS] | load [N] [SECONDS]");
                return verb == "help" ? 0 : 2;
        }
    }

    private static readonly List<System.Runtime.InteropServices.PosixSignalRegistration> Registrations = [];

    private static Task WaitForCtrlC()
    {
        var done = new TaskCompletionSource();
        foreach (var signal in new[] { System.Runtime.InteropServices.PosixSignal.SIGINT, System.Runtime.InteropServices.PosixSignal.SIGTERM })
            Registrations.Add(System.Runtime.InteropServices.PosixSignalRegistration.Create(signal, context =>
            {
                context.Cancel = true; // clean up first: stop the nodes and the database
                done.TrySetResult();
            }));
        Console.WriteLine("Ctrl+C (or SIGTERM) stops everything and deletes the database.");
        return done.Task;
    }
}
