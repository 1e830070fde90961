using Akka.Hosting;
using Akka.Persistence.Sql.Config;
using Akka.Persistence.Sql.Hosting;
using LinqToDB;
using Microsoft.Data.Sqlite;

namespace Messaging.Node;

public static class PersistenceHosting
{
    /// <summary>
    /// Mailbox journal and snapshots in SQL (SQLite file or PostgreSQL), tables created on first start. Sharding keeps
    /// its own state in DData, so nothing but mailboxes lives in these tables. Each event carries its writer's uuid and
    /// recovery fails loudly if two incarnations ever wrote the same mailbox, instead of silently picking one.
    /// </summary>
    public static AkkaConfigurationBuilder WithMessagingPersistence(
        this AkkaConfigurationBuilder builder, PersistenceProvider provider, string connectionString)
    {
        var providerName = provider switch
        {
            PersistenceProvider.Sqlite => ProviderName.SQLiteMS,
            PersistenceProvider.PostgreSql => ProviderName.PostgreSQL15,
            _ => throw new ArgumentOutOfRangeException(nameof(provider), provider, null),
        };
        if (provider == PersistenceProvider.Sqlite)
            PrepareSqlite(connectionString);

        return builder
            .WithSqlPersistence(
                connectionString,
                providerName,
                autoInitialize: true,
                databaseMapping: DatabaseMapping.Default,
                useWriterUuidColumn: true)
            .AddHocon("akka.persistence.journal.sql.replay-filter.mode = fail", HoconAddMode.Prepend)
            // A lost database (PostgreSQL restarting) opens the breaker: writes fail fast (503s, never a false
            // success) and it half-opens again within seconds, not the default 30 s, so service returns by itself.
            .AddHocon("""
                akka.persistence.journal.sql.circuit-breaker { max-failures = 10, call-timeout = 10s, reset-timeout = 3s }
                akka.persistence.snapshot-store.sql.circuit-breaker { max-failures = 5, call-timeout = 10s, reset-timeout = 3s }
                """, HoconAddMode.Prepend);
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
