using Akka.Actor;
using Akka.Hosting;
using Messaging.Actors;
using Messaging.Node;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace Messaging.EndToEnd.Tests;

/// <summary>
/// <c>Messaging:Persistence:Servers</c> and <c>Messaging:Persistence:Partitions</c>: the map is checked at start (each
/// partition once, each server named exists), entities get the plugins of their partition's server, and one server
/// stays what it was.
/// </summary>
public sealed class PartitionSettingsSpecs
{
    private static NodeSettings Load(params (string Key, string? Value)[] values) =>
        NodeSettings.Load(new ConfigurationBuilder()
            .AddInMemoryCollection(values.Select(v => new KeyValuePair<string, string?>(v.Key, v.Value)))
            .Build());

    private static (string, string?)[] TwoServers(string? partitions) =>
    [
        ("Messaging:Persistence:Provider", "PostgreSql"),
        ("Messaging:Persistence:Servers:a:ConnectionString", "Host=db-a;Username=messaging"),
        ("Messaging:Persistence:Servers:b:ConnectionString", "Host=db-b;Username=messaging"),
        ("Messaging:Persistence:Partitions", partitions),
    ];

    [Fact]
    public void Should_give_each_mailbox_and_group_the_plugins_of_the_server_its_partition_names()
    {
        var settings = Load(TwoServers("0-99=a, 100-199=B ,200-255=a"));

        var a = new PersistencePlugins("akka.persistence.journal.sql-a", "akka.persistence.snapshot-store.sql-a");
        var b = new PersistencePlugins("akka.persistence.journal.sql-b", "akka.persistence.snapshot-store.sql-b");
        var partitions = settings.JournalPartitions;
        Assert.Equal(b, partitions.For(MailboxActor.PersistenceIdFor("alice")));  // partition 179
        Assert.Equal(a, partitions.For(MailboxActor.PersistenceIdFor("bob")));    // 201
        Assert.Equal(b, partitions.For(MailboxActor.PersistenceIdFor("carol")));  // 139
        Assert.Equal(a, partitions.For(MailboxActor.PersistenceIdFor("zoë")));    // 51
        Assert.Equal(a, partitions.For(Messaging.Actors.Groups.GroupActor.PersistenceIdFor("grp~bwlwbrrlu7l2rtgfgt3jasgmit"))); // 234
        Assert.Equal(
            [new JournalServer("a", "Host=db-a;Username=messaging") { IsDefault = true }, new JournalServer("b", "Host=db-b;Username=messaging")],
            settings.JournalServers);
        Assert.Equal("0-99=a,100-199=b,200-255=a",
            PartitionMap.Format([.. Enumerable.Range(0, JournalPartitions.Count).Select(p => partitions.ForPartition(p) == a ? "a" : "b")]));
    }

    [Fact]
    public void Should_keep_one_server_on_todays_keys_and_Akkas_default_plugins()
    {
        var postgres = Load(("Messaging:Persistence:Provider", "PostgreSql"), ("Messaging:Persistence:ConnectionString", "Host=db"));
        var sqlite = Load();

        var server = Assert.Single(postgres.JournalServers);
        Assert.Equal(new JournalServer(null, "Host=db"), server);
        Assert.Equal(new PersistencePlugins("akka.persistence.journal.sql", "akka.persistence.snapshot-store.sql"),
            Assert.Single(postgres.JournalPartitions.Plugins));
        Assert.Equal(sqlite.ConnectionString, Assert.Single(sqlite.JournalServers).ConnectionString);
        Assert.EndsWith("messaging.db", sqlite.ConnectionString);
    }

    [Theory]
    [InlineData("0-127=a", "partitions 128-255 are on no server")]
    [InlineData("0-127=a,100-255=b", "partition 100 is on 'a' and again on 'b'")]
    [InlineData("0-127=a,128-255=c", "names server 'c', which is not in Messaging:Persistence:Servers")]
    [InlineData("0-127=a,128-256=b", "'128-256=b' is not within 0-255")]
    [InlineData("0-127=a,255-128=b", "'255-128=b' is not within 0-255, low to high")]
    [InlineData("0-127=a;128-255=b", "is not a range of partitions and a server")]
    [InlineData("0-127,128-255=b", "'0-127' is not a range of partitions and a server")]
    [InlineData("", "Messaging:Persistence:Partitions is required with Messaging:Persistence:Servers")]
    public void Should_refuse_a_partition_map_that_does_not_name_each_partition_once_on_a_server(string map, string problem)
    {
        var error = Assert.Throws<NodeConfigurationException>(() => Load(TwoServers(map)));

        Assert.Contains(problem, error.Message);
        Assert.Contains("Messaging:Persistence:Partitions", error.Message);
    }

    [Theory]
    [InlineData("Messaging:Persistence:Provider", "Sqlite", "Messaging:Persistence:Servers needs Messaging:Persistence:Provider PostgreSql")]
    [InlineData("Messaging:Persistence:ConnectionString", "Host=db", "Messaging:Persistence:ConnectionString and Messaging:Persistence:Servers exclude each other")]
    [InlineData("Messaging:Persistence:Servers:b:ConnectionString", " ", "Messaging:Persistence:Servers:b:ConnectionString is required")]
    [InlineData("Messaging:Persistence:Servers:b:ConnectionString", "Host=db;Password=change-me", "Messaging:Persistence:Servers:b:ConnectionString still holds the placeholder")]
    [InlineData("Messaging:Persistence:Servers:b.c:ConnectionString", "Host=db", "Messaging:Persistence:Servers:b.c: 'b.c' is not a server name")]
    [InlineData("Messaging:Persistence:Servers:b:ConectionString", "Host=db", "Messaging:Persistence:Servers:b:ConectionString is not a setting")]
    public void Should_refuse_servers_that_cannot_hold_the_journal_naming_the_key(string key, string value, string problem)
    {
        var values = TwoServers("0-127=a,128-255=b").Where(v => v.Item1 != key).Append((key, value)).ToArray();

        var error = Assert.Throws<NodeConfigurationException>(() => Load(values));

        Assert.Contains(problem, error.Message);
    }

    [Fact]
    public void Should_refuse_a_partition_map_without_servers()
    {
        var error = Assert.Throws<NodeConfigurationException>(() => Load(("Messaging:Persistence:Partitions", "0-255=a")));

        Assert.Contains("Messaging:Persistence:Partitions places partitions on Messaging:Persistence:Servers, and there are none", error.Message);
    }

    /// <summary>
    /// What the hosting extension makes of two servers: a journal and a snapshot store plugin each, with today's
    /// settings on every one (replay filter off, 6 writers, the circuit breakers, the writer uuid column), and the
    /// default plugins on the default server's.
    /// </summary>
    [Fact]
    public async Task Should_register_a_journal_and_snapshot_store_with_the_same_settings_for_each_server()
    {
        var directory = Directory.CreateTempSubdirectory("messaging-plugins-").FullName;
        JournalServer[] servers = [new("a", $"Data Source={directory}/a.db"), new("b", $"Data Source={directory}/b.db") { IsDefault = true }];
        var builder = Host.CreateApplicationBuilder();
        builder.Services.AddAkka("plugins", akka => akka.WithMessagingPersistence(PersistenceProvider.Sqlite, servers));
        using var host = builder.Build();
        await host.StartAsync(TestContext.Current.CancellationToken);
        try
        {
            var config = host.Services.GetRequiredService<ActorSystem>().Settings.Config;

            // What is no mailbox or group (the delivery indexes, sharding's remembered entities) goes to the default
            // server, never to Akka's in-memory fallback plugins.
            Assert.Equal("akka.persistence.journal.sql-b", config.GetString("akka.persistence.journal.plugin"));
            Assert.Equal("akka.persistence.snapshot-store.sql-b", config.GetString("akka.persistence.snapshot-store.plugin"));
            foreach (var server in servers)
            {
                var journal = config.GetConfig(server.Plugins.Journal);
                var snapshots = config.GetConfig(server.Plugins.SnapshotStore);
                Assert.Equal(server.ConnectionString, journal.GetString("connection-string"));
                Assert.Equal(server.ConnectionString, snapshots.GetString("connection-string"));
                Assert.StartsWith("Akka.Persistence.Sql.Journal.SqlWriteJournal", journal.GetString("class"));
                Assert.StartsWith("Akka.Persistence.Sql.Snapshot.SqlSnapshotStore", snapshots.GetString("class"));
                Assert.Equal("off", journal.GetString("replay-filter.mode"));
                Assert.Equal(6, journal.GetInt("parallelism"));
                Assert.Equal(10, journal.GetInt("circuit-breaker.max-failures"));
                Assert.Equal(TimeSpan.FromSeconds(3), journal.GetTimeSpan("circuit-breaker.reset-timeout"));
                Assert.Equal(5, snapshots.GetInt("circuit-breaker.max-failures"));
                Assert.Equal(TimeSpan.FromSeconds(3), snapshots.GetTimeSpan("circuit-breaker.reset-timeout"));
                Assert.True(journal.GetBoolean("auto-initialize"));
                Assert.True(journal.GetBoolean("default.journal.use-writer-uuid-column"));
                Assert.Equal("default", journal.GetString("table-mapping"));
            }
            // Each server's tables are made at start, also where nothing was written yet (a server being added).
            foreach (var server in servers)
                await Eventually.AssertAsync(() => Task.FromResult(TablesOf(server).IsSupersetOf(["journal", "snapshot"])),
                    TimeSpan.FromSeconds(10), () => $"{server.Name} has only [{string.Join(", ", TablesOf(server))}]");
        }
        finally
        {
            await host.StopAsync(TestContext.Current.CancellationToken);
        }
    }

    private static HashSet<string> TablesOf(JournalServer server)
    {
        using var connection = new Microsoft.Data.Sqlite.SqliteConnection(server.ConnectionString);
        connection.Open();
        using var command = connection.CreateCommand();
        command.CommandText = "SELECT name FROM sqlite_master WHERE type = 'table'";
        using var reader = command.ExecuteReader();
        var tables = new HashSet<string>();
        while (reader.Read())
            tables.Add(reader.GetString(0));
        return tables;
    }

    [Fact]
    public void Should_give_the_journals_connections_server_timeouts_no_reset_and_prepared_statements_unless_the_operator_chose()
    {
        var given = new Npgsql.NpgsqlConnectionStringBuilder(PersistenceHosting.WithServerTimeouts("Host=db;Username=messaging"));
        // No reset: a reset (DISCARD ALL) drops the session's cached plans, and the fence's trigger was planned anew
        // in every journal transaction (docs/benchmarks.md, "The writer fence's cost in PostgreSQL").
        Assert.True(given.NoResetOnClose);
        // The journal's statements prepared once per connection instead of parsed and planned on every call.
        Assert.Equal(PersistenceHosting.MaxAutoPrepare, given.MaxAutoPrepare);
        Assert.True(given.MaxAutoPrepare > 0);
        Assert.Contains("idle_in_transaction_session_timeout=5000", given.Options, StringComparison.Ordinal);
        Assert.Contains("statement_timeout=10000", given.Options, StringComparison.Ordinal);

        var chosen = new Npgsql.NpgsqlConnectionStringBuilder(PersistenceHosting.WithServerTimeouts(
            "Host=db;Username=messaging;No Reset On Close=false;Max Auto Prepare=0;Options=-c statement_timeout=60000"));
        Assert.False(chosen.NoResetOnClose);
        Assert.Equal(0, chosen.MaxAutoPrepare);
        Assert.Contains("statement_timeout=60000", chosen.Options, StringComparison.Ordinal);
        Assert.DoesNotContain("statement_timeout=10000", chosen.Options, StringComparison.Ordinal);
    }
}
