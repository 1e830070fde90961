using Npgsql;

namespace Messaging.Testing;

/// <summary>
/// A throwaway PostgreSQL from Debian's binaries (/usr/lib/postgresql/*/bin; MESSAGING_PG_BIN overrides): initdb into a
/// temp dir, pg_ctl start on a free loopback port, one database. PostgreSQL refuses to run as root, so as root the
/// server runs as the `postgres` user (runuser) in a directory owned by it. Dispose stops it and deletes the dir.
/// </summary>
public sealed class PostgresServer : IAsyncDisposable
{
    private const string ServiceUser = "postgres";
    private static readonly TimeSpan CommandTimeout = TimeSpan.FromSeconds(90);

    private readonly string _bin;
    private readonly bool _asServiceUser;
    private bool _disposed;

    private readonly bool _durable;
    private readonly IReadOnlyList<string> _launcher;

    private PostgresServer(string bin, string directory, int port, bool asServiceUser, bool durable, string host,
        IReadOnlyList<string> launcher)
    {
        Host = host;
        _launcher = launcher;
        _durable = durable;
        _bin = bin;
        Directory = directory;
        Port = port;
        _asServiceUser = asServiceUser;
    }

    public string Directory { get; }
    public string DataDirectory => Path.Combine(Directory, "data");
    public string LogFile => Path.Combine(Directory, "postgres.log");
    public int Port { get; }
    /// <summary>The one address it listens on: loopback unless it runs in a network namespace of its own.</summary>
    public string Host { get; }
    public string Database => "messaging";

    /// <summary>Connection string for the database the nodes share (trust auth on loopback, no password).</summary>
    public string ConnectionString => ConnectionStringFor(Database);

    public string ConnectionStringFor(string database) => new NpgsqlConnectionStringBuilder
    {
        Host = Host,
        Port = Port,
        Username = ServiceUser,
        Database = database,
        Pooling = true,
        Timeout = 5,
        CommandTimeout = 15,
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

    /// <param name="durable">
    /// fsync and synchronous commit on, as in production: a benchmark of acknowledged writes must pay for them.
    /// Off for tests: safe for the process crashes they cause (the OS keeps the WAL), and faster.
    /// </param>
    /// <param name="host">The address to listen on (default loopback); any other is trusted from its own subnet.</param>
    /// <param name="launcher">A command its tools run under, e.g. `ip netns exec NS` to run it in a network namespace.</param>
    public static async Task<PostgresServer> StartAsync(string? parentDirectory = null, bool durable = false,
        string host = "127.0.0.1", IReadOnlyList<string>? launcher = null)
    {
        var bin = FindBinDirectory();
        var asServiceUser = Environment.UserName == "root" || geteuid() == 0;
        var parent = parentDirectory ?? Path.GetTempPath();
        var directory = Path.Combine(parent, $"pg-{Guid.NewGuid().ToString("N")[..8]}");
        System.IO.Directory.CreateDirectory(directory);
        var server = new PostgresServer(bin, directory, FreePorts.Next(), asServiceUser, durable, host, launcher ?? []);
        try
        {
            if (asServiceUser)
            {
                // The server's user must reach the dir: make every parent traversable, the dir its own.
                for (var d = new DirectoryInfo(parent); d is not null && d.FullName != "/"; d = d.Parent)
                    if (!d.UnixFileMode.HasFlag(UnixFileMode.OtherExecute))
                        d.UnixFileMode |= UnixFileMode.OtherExecute;
                await Command.RunAsync("chown", [$"{ServiceUser}:", directory], CommandTimeout);
            }
            await server.RunAsync("initdb", "-D", server.DataDirectory, "-U", ServiceUser, "--auth=trust",
                "--encoding=UTF8", "--no-sync", "--no-instructions");
            if (host != "127.0.0.1")
                await File.AppendAllTextAsync(Path.Combine(server.DataDirectory, "pg_hba.conf"), "host all all samenet trust\n");
            await server.PgCtlAsync("start", "-o", server.ServerOptions);
            await server.CreateDatabaseAsync(server.Database);
            return server;
        }
        catch
        {
            await server.DisposeAsync();
            throw;
        }
    }

    // One address (loopback unless given); the socket in our own dir.
    private string ServerOptions =>
        $"-p {Port} -c listen_addresses={Host} -c unix_socket_directories='{Directory}' -c max_connections=400 " +
        (_durable
            ? "-c fsync=on -c synchronous_commit=on -c shared_buffers=256MB -c max_wal_size=4GB -c checkpoint_timeout=30min"
            : "-c fsync=off -c full_page_writes=off -c shared_buffers=64MB");

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

    /// <summary>`pg_ctl restart -m immediate`: no checkpoint, crash recovery on start.</summary>
    public async Task RestartAsync()
    {
        await PgCtlAsync("restart", "-m", "immediate", "-o", ServerOptions);
        NpgsqlConnection.ClearAllPools();
    }

    /// <summary>`pg_ctl stop -m immediate`: as a crash.</summary>
    public Task StopAsync() => PgCtlAsync("stop", "-m", "immediate");

    public Task StartAgainAsync() => PgCtlAsync("start", "-o", ServerOptions);

    private Task PgCtlAsync(string action, params string[] args) =>
        RunAsync("pg_ctl", [action, "-D", DataDirectory, "-l", LogFile, "-w", "-t", "60", .. args]);

    private Task<string> RunAsync(string tool, params string[] args)
    {
        var path = Path.Combine(_bin, tool);
        string[] command = _asServiceUser ? ["runuser", "-u", ServiceUser, "--", path, .. args] : [path, .. args];
        command = [.. _launcher, .. command];
        return Command.RunAsync(command[0], command[1..], CommandTimeout);
    }

    public async ValueTask DisposeAsync()
    {
        if (_disposed)
            return;
        _disposed = true;
        NpgsqlConnection.ClearAllPools();
        if (File.Exists(Path.Combine(DataDirectory, "postmaster.pid")))
        {
            try { await StopAsync(); }
            catch (Exception) { /* already stopped, or it will die with its dir */ }
        }
        try { if (File.Exists(LogFile)) File.Copy(LogFile, Directory + ".log", overwrite: true); }
        catch (IOException) { }
        try { System.IO.Directory.Delete(Directory, recursive: true); }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
    }

    [System.Runtime.InteropServices.DllImport("libc")]
    private static extern uint geteuid();
}
