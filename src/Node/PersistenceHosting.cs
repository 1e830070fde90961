using Akka.Hosting;
using Akka.Persistence.Sql.Config;
using Akka.Persistence.Sql.Hosting;
using LinqToDB;
using Messaging.Actors;
using Microsoft.Data.Sqlite;

namespace Messaging.Node;

/// <summary>
/// One database server of the journal, with its own journal and snapshot store plugin. Unnamed: the only server,
/// configured by today's keys, on Akka's default plugin ids (<c>akka.persistence.journal.sql</c>), as before servers
/// had names; named: <c>akka.persistence.journal.sql-NAME</c>. One server is also Akka's default journal and snapshot
/// store (<see cref="IsDefault"/>): the home of whatever persists and is no mailbox or group (the delivery indexes,
/// sharding's remembered entities of their region), so nothing falls back to Akka's in-memory plugins.
/// </summary>
public sealed record JournalServer(string? Name, string ConnectionString)
{
    /// <summary>Akka's default plugins: the only server, or with several the one that holds partition 0.</summary>
    public bool IsDefault { get; init; } = Name is null;

    public string PluginIdentifier => Name is null ? "sql" : $"sql-{Name}";

    public PersistencePlugins Plugins =>
        new($"akka.persistence.journal.{PluginIdentifier}", $"akka.persistence.snapshot-store.{PluginIdentifier}");
}

public static class PersistenceHosting
{
    /// <summary>One server: the SQLite file, or one PostgreSQL.</summary>
    public static AkkaConfigurationBuilder WithMessagingPersistence(
        this AkkaConfigurationBuilder builder, PersistenceProvider provider, string connectionString) =>
        builder.WithMessagingPersistence(provider, [new JournalServer(null, connectionString)]);

    /// <summary>
    /// Journal and snapshots in SQL (SQLite file or PostgreSQL), tables created on first start, one journal and one
    /// snapshot store plugin per server, each with the same settings; mailboxes and groups pick theirs by partition
    /// (<see cref="JournalPartitions"/>), everything else persistent uses the default server's (<see cref="JournalServer.IsDefault"/>).
    /// Sharding keeps its coordinator state in DData; only the delivery index region remembers its entities here. Each event carries its writer's uuid; on PostgreSQL every server's journal refuses every
    /// writer but an entity's newest claimant (<see cref="JournalFence"/>). Akka's replay filter is off: the mailbox
    /// itself sorts out journals written before that fence (<c>ReplayAudit</c>), where the filter would either fail
    /// recovery for good or silently drop acknowledged messages.
    /// </summary>
    public static AkkaConfigurationBuilder WithMessagingPersistence(
        this AkkaConfigurationBuilder builder, PersistenceProvider provider, IReadOnlyList<JournalServer> servers)
    {
        var providerName = provider switch
        {
            PersistenceProvider.Sqlite => ProviderName.SQLiteMS,
            PersistenceProvider.PostgreSql => ProviderName.PostgreSQL15,
            _ => throw new ArgumentOutOfRangeException(nameof(provider), provider, null),
        };
        if (servers.Count(server => server.IsDefault) != 1)
            throw new ArgumentException("exactly one server holds Akka's default plugins", nameof(servers));
        var fenced = new List<(string Journal, string ConnectionString)>();
        foreach (var server in servers)
        {
            var connectionString = server.ConnectionString;
            if (provider == PersistenceProvider.Sqlite)
                PrepareSqlite(connectionString);
            if (provider == PersistenceProvider.PostgreSql)
            {
                connectionString = WithServerTimeouts(connectionString);
                fenced.Add((server.Plugins.Journal, connectionString));
            }
            builder
                .WithSqlPersistence(
                    connectionString,
                    providerName,
                    autoInitialize: true,
                    pluginIdentifier: server.PluginIdentifier,
                    isDefaultPlugin: server.IsDefault,
                    databaseMapping: DatabaseMapping.Default,
                    useWriterUuidColumn: true)
                .AddHocon(PluginSettings(server.Plugins), HoconAddMode.Prepend);
        }
        builder.AddStartup(async (system, _) =>
        {
            // Every server's tables exist from the start, also on a server that holds no partition yet (one being
            // added: docs/operations.md), so partitions can be copied to it; the journal makes its tables as it starts.
            var persistence = Akka.Persistence.Persistence.Instance.Apply(system);
            foreach (var server in servers)
            {
                persistence.JournalFor(server.Plugins.Journal);
                persistence.SnapshotStoreFor(server.Plugins.SnapshotStore);
            }
            await Task.WhenAll(fenced.Select(server =>
                JournalFence.InstallAsync(system, server.ConnectionString, TimeSpan.FromSeconds(60), server.Journal)));
        });
        return builder;
    }

    /// <summary>What every journal and snapshot store plugin gets, whichever server it is for.</summary>
    private static string PluginSettings(PersistencePlugins plugins) => $$"""
        {{plugins.Journal}}.replay-filter.mode = off
        # Each journal batch is a transaction that waits for its commit (fsync); with the default 3 in flight the
        # write rate is capped by commit latency. 6 writers kept the mailbox path at ~7,000 sends/s (~19,000
        # events/s) where 3 fell to 1,400-2,800 whenever the disk was shared (docs/benchmarks.md).
        {{plugins.Journal}}.parallelism = 6
        # A batch of several events is one multi-row INSERT. By default linq2db writes their values into the statement
        # as literals (each payload hex-encoded in the SQL text), so every batch is a new statement that PostgreSQL
        # parses and plans in full. As parameters, a batch is sent in binary and its text depends only on its row
        # count, so Npgsql prepares the frequent ones (Max Auto Prepare, WithServerTimeouts).
        {{plugins.Journal}}.prefer-parameters-on-multirow-insert = true
        # A lost database (PostgreSQL restarting) opens the breaker: writes fail fast (503s, never a false
        # success) and it half-opens again within seconds, not the default 30 s, so service returns by itself.
        {{plugins.Journal}}.circuit-breaker { max-failures = 10, call-timeout = 10s, reset-timeout = 3s }
        {{plugins.SnapshotStore}}.circuit-breaker { max-failures = 5, call-timeout = 10s, reset-timeout = 3s }
        """;

    /// <summary>
    /// A node frozen or cut off in the middle of a journal write leaves its transaction open, with its unique-key entries
    /// and its share of the mailbox's fence lock (<see cref="JournalFence"/>): the mailbox's next incarnation on the
    /// majority would wait on them for as long as the zombie lives. The server ends such a transaction after this limit
    /// (its late COMMIT then fails: no false success). It must stay well under the failover time
    /// (UnreachableAfter + 2 x StableAfter), and far above a real journal transaction (milliseconds).
    /// </summary>
    public static readonly TimeSpan IdleInTransactionLimit = TimeSpan.FromSeconds(5);

    /// <summary>
    /// The same for a node frozen in the middle of a statement (a large batch sent as COPY waits for the rest of its
    /// rows, and is not idle). Equal to the journal's call timeout: by then the writer has given the write up anyway.
    /// </summary>
    public static readonly TimeSpan StatementLimit = TimeSpan.FromSeconds(10);

    /// <summary>
    /// Statements Npgsql prepares per pooled connection (<c>Max Auto Prepare</c>), unless the operator set the key: a
    /// statement run 5 times on a connection is prepared there and then only bound and executed, not parsed and
    /// planned again on every call. The journal's statements: a multi-row INSERT per batch size (2 to
    /// <c>max-row-by-row-size</c>, 100; the frequent sizes stay prepared, the rare ones come and go), the one-row
    /// INSERT, the replay, the highest sequence number, the snapshot's load and save, each with its values as
    /// parameters (<c>prefer-parameters-on-multirow-insert</c>, <see cref="PluginSettings"/>). Behind PgBouncer in
    /// transaction mode this needs PgBouncer 1.21 or later with <c>max_prepared_statements</c> set, else set
    /// <c>Max Auto Prepare=0</c> (docs/operations.md).
    /// </summary>
    internal const int MaxAutoPrepare = 64;

    /// <summary>
    /// The journal's connection string with the server timeouts above and two client settings, each unless the
    /// operator's string names it. No reset of a pooled connection when the plugin closes it (<c>No Reset On
    /// Close</c>): the plugin opens and closes a connection per transaction, and Npgsql's reset (<c>DISCARD ALL</c>,
    /// sent ahead of the next use) drops every cached plan and prepared statement of the session, so the writer
    /// fence's trigger was planned anew in every journal transaction: about 80 % of its cost, some 0.28 ms of
    /// PostgreSQL CPU per one-row statement (docs/benchmarks.md, "The writer fence's cost in PostgreSQL"). The plugin
    /// keeps no other session state (no SET, no temporary tables, no session locks; the fence's locks end with the
    /// transaction); the statements Npgsql prepares (<see cref="MaxAutoPrepare"/>) are meant to outlive the
    /// transaction, and Npgsql still rolls back a transaction left open before the connection goes back to the pool.
    /// </summary>
    internal static string WithServerTimeouts(string connectionString)
    {
        var builder = new Npgsql.NpgsqlConnectionStringBuilder(connectionString);
        var options = builder.Options ?? "";
        if (!options.Contains("idle_in_transaction_session_timeout", StringComparison.Ordinal))
            options += $" -c idle_in_transaction_session_timeout={(long)IdleInTransactionLimit.TotalMilliseconds}";
        if (!options.Contains("statement_timeout", StringComparison.Ordinal))
            options += $" -c statement_timeout={(long)StatementLimit.TotalMilliseconds}";
        builder.Options = options.Trim(); // an operator's own choice of either stands
        var given = new System.Data.Common.DbConnectionStringBuilder { ConnectionString = connectionString };
        bool Chosen(string key) =>
            given.Keys.Cast<string>().Any(k => k.Replace(" ", "").Equals(key, StringComparison.OrdinalIgnoreCase));
        if (!Chosen("NoResetOnClose"))
            builder.NoResetOnClose = true; // likewise
        if (!Chosen("MaxAutoPrepare"))
            builder.MaxAutoPrepare = MaxAutoPrepare;
        return builder.ConnectionString;
    }

    /// <summary>Creates the database's folder and switches the file to WAL (it sticks to the file): about 2.5x the write rate.</summary>
    private static void PrepareSqlite(string connectionString)
    {
        var dataSource = new SqliteConnectionStringBuilder(connectionString).DataSource;
        if (Path.GetDirectoryName(Path.GetFullPath(dataSource)) is { Length: > 0 } directory)
            Directory.CreateDirectory(directory);
        using var connection = new SqliteConnection(connectionString);
        connection.Open();
        using var command = connection.CreateCommand();
        command.CommandText = "PRAGMA journal_mode=WAL;";
        command.ExecuteNonQuery();
    }
}
