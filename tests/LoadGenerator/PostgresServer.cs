using Npgsql;

namespace Messaging.LoadGenerator;

/// <summary>
/// A throwaway PostgreSQL: initdb into a temp dir, pg_ctl on a free loopback port, as the `postgres` user when root.
/// Adapted from tests/Cluster.Tests/Harness/PostgresServer.cs (branch `cluster`); the difference is that durability
/// is on by default here (fsync, synchronous_commit), because a benchmark of acknowledged writes must pay for them.
/// </summary>
public sealed class PostgresServer : IAsyncDisposable
{
    private const string ServiceUser = "postgres";
    private static readonly TimeSpan CommandTimeout = TimeSpan.FromSeconds(90);

    private readonly string _bin;
    private readonly bool _asServiceUser;
    private readonly bool _durable;
    private bool _disposed;

    private PostgresServer(string bin, string directory, int port, bool asServiceUser, bool durable)
    {
        _bin = bin;
        Directory = directory;
        Port = port;
        _asServiceUser = asServiceUser;
        _durable = durable;
    }

    public string Directory { get; }
    public string DataDirectory => Path.Combine(Directory, "data");
    public string LogFile => Path.Combine(Directory, "postgres.log");
    public int Port { get; }

    public string ConnectionStringFor(string database, int maxPool = 100) => new NpgsqlConnectionStringBuilder
    {
        Host = "127.0.0.1",
        Port = Port,
        Username = ServiceUser,
        Database = database,
        Pooling = true,
        MaxPoolSize = maxPool,
        Timeout = 15,
        CommandTimeout = 30,
    }.ConnectionString;

    public static string FindBinDirectory()
    {
        var overridden = Environment.GetEnvironmentVariable("MESSAGING_PG_BIN");
        if (!string.IsNullOrEmpty(overridden))
            return overridden;
        const string root = "/usr/lib/postgresql";
        var found = System.IO.Directory.Exists(root)
            ? System.IO.Directory.GetDirectories(root)
                .Select(d => Path.Combine(d, "bin"))
                .Where(d => File.Exists(Path.Combine(d, "initdb")) && File.Exists(Path.Combine(d, "pg_ctl")))
                .OrderByDescending(d => int.TryParse(Path.GetFileName(Path.GetDirectoryName(d)), out var v) ? v : 0)
                .FirstOrDefault()
            : null;
        return found ?? throw new InvalidOperationException(
            "PostgreSQL is not installed: no /usr/lib/postgresql/*/bin/initdb (apt-get install postgresql, or set MESSAGING_PG_BIN).");
    }

    public static async Task<PostgresServer> StartAsync(bool durable, params string[] databases)
    {
        var bin = FindBinDirectory();
        var asServiceUser = Environment.UserName == "root" || geteuid() == 0;
        var parent = Path.GetTempPath();
        var directory = Path.Combine(parent, $"pg-bench-{Guid.NewGuid().ToString("N")[..8]}");
        System.IO.Directory.CreateDirectory(directory);
        var server = new PostgresServer(bin, directory, FreePorts.Next(), asServiceUser, durable);
        try
        {
            if (asServiceUser)
            {
                for (var d = new DirectoryInfo(parent); d is not null && d.FullName != "/"; d = d.Parent)
                    if (!d.UnixFileMode.HasFlag(UnixFileMode.OtherExecute))
                        d.UnixFileMode |= UnixFileMode.OtherExecute;
                await Command.RunAsync("chown", [$"{ServiceUser}:", directory], CommandTimeout);
            }
            await server.RunAsync("initdb", "-D", server.DataDirectory, "-U", ServiceUser, "--auth=trust",
                "--encoding=UTF8", "--no-sync", "--no-instructions");
            await server.RunAsync("pg_ctl", "start", "-D", server.DataDirectory, "-l", server.LogFile, "-w", "-t", "60", "-o", server.ServerOptions);
            foreach (var database in databases)
                await server.CreateDatabaseAsync(database);
            return server;
        }
        catch
        {
            await server.DisposeAsync();
            throw;
        }
    }

    private string ServerOptions =>
        $"-p {Port} -c listen_addresses=127.0.0.1 -c unix_socket_directories='{Directory}' -c max_connections=400 " +
        "-c shared_buffers=256MB -c max_wal_size=4GB -c checkpoint_timeout=30min " +
        (_durable ? "-c fsync=on -c synchronous_commit=on" : "-c fsync=off -c synchronous_commit=off -c full_page_writes=off");

    /// <summary>The postmaster's pid (its children are the backends), for CPU accounting.</summary>
    public int? PostmasterPid
    {
        get
        {
            var pidFile = Path.Combine(DataDirectory, "postmaster.pid");
            return File.Exists(pidFile) && int.TryParse(File.ReadLines(pidFile).First(), out var pid) ? pid : null;
        }
    }

    public async Task CreateDatabaseAsync(string database)
    {
        await using var connection = new NpgsqlConnection(ConnectionStringFor("postgres"));
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand($"CREATE DATABASE \"{database}\"", connection);
        await command.ExecuteNonQueryAsync();
    }

    private Task<string> RunAsync(string tool, params string[] args)
    {
        var path = Path.Combine(_bin, tool);
        return _asServiceUser
            ? Command.RunAsync("runuser", ["-u", ServiceUser, "--", path, .. args], CommandTimeout)
            : Command.RunAsync(path, args, CommandTimeout);
    }

    public async ValueTask DisposeAsync()
    {
        if (_disposed)
            return;
        _disposed = true;
        NpgsqlConnection.ClearAllPools();
        if (File.Exists(Path.Combine(DataDirectory, "postmaster.pid")))
        {
            try { await RunAsync("pg_ctl", "stop", "-D", DataDirectory, "-m", "immediate", "-w", "-t", "60"); }
            catch (Exception) { /* already stopped */ }
        }
        try { System.IO.Directory.Delete(Directory, recursive: true); }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
    }

    [System.Runtime.InteropServices.DllImport("libc")]
    private static extern uint geteuid();
}
