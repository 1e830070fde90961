using System.Globalization;
using System.Text;
using System.Text.Json;
using Npgsql;

namespace Messaging.LoadGenerator;

/// <summary>
/// The journal over several database servers (docs/benchmarks.md, "The journal over several servers"): for each server
/// count (1, then 2 unless <c>--servers</c> says otherwise), fresh throwaway PostgreSQL servers (fsync on) and a fresh
/// node (Release) whose journal is spread over them by logical partition (partitions split evenly), then closed-loop
/// peak rounds of sends. Per configuration: sends/s, CPU per send of the node and of each PostgreSQL server (its
/// postmaster and backends), and how the mailboxes' and groups' journal rows came out on each server (the few rows of
/// what is no mailbox or group, on partition 0's server, are left out).
/// </summary>
public static class ServersBench
{
    private static readonly JsonSerializerOptions JsonOut = new() { WriteIndented = true };

    public static async Task<int> RunAsync(Args a)
    {
        var counts = (a.Str("servers") ?? "1,2").Split(',').Select(s => int.Parse(s, CultureInfo.InvariantCulture)).ToArray();
        var users = a.Int("users", 10_000);
        var contacts = a.Int("contacts", 3);
        var retry = a.Double("retry", 0.05);
        var concurrency = a.Int("concurrency", 64);
        var warmup = a.Seconds("warmup", 10);
        var duration = a.Seconds("duration", 20);
        var rounds = a.Int("rounds", 3);
        var fsync = a.Str("pg-fsync", "on") != "off";
        var jsonPath = a.Str("json");
        a.RejectUnknown();
        if (counts.Any(c => c is < 1 or > 256))
            throw new ArgumentException("--servers: counts of 1 to 256 servers, e.g. 1,2");

        var key = Convert.ToBase64String(System.Security.Cryptography.RandomNumberGenerator.GetBytes(48));
        Console.WriteLine($"machine: {Environment.ProcessorCount} cores, {Bench.CpuModel()}, {Bench.MemoryGiB():0} GiB; load average {ProcStats.LoadAverage1():0.00}");
        var results = new List<ServersResult>();
        foreach (var count in counts)
            results.Add(await RunOneAsync(count, key, users, contacts, retry, concurrency, warmup, duration, rounds, fsync));

        Console.WriteLine();
        Console.WriteLine(Table.Format(
            ["servers", "round", "sends/s", "p50 ms", "p99 ms", "node ms/send", .. Enumerable.Range(1, counts.Max()).Select(i => $"db{i} ms/send"), "all db ms/send", "loadgen cores", "other cores"],
            results.SelectMany(r => r.Rounds.Select((round, i) => (IReadOnlyList<string>)
            [
                r.Servers.ToString(CultureInfo.InvariantCulture), $"{i + 1}", round.SendsPerSecond.ToString("0", CultureInfo.InvariantCulture),
                Table.Ms(round.Ops.FirstOrDefault(o => o.Count > 0)?.P50Ms ?? 0), Table.Ms(round.Ops.FirstOrDefault(o => o.Count > 0)?.P99Ms ?? 0),
                MsPerSend(round, "node"),
                .. Enumerable.Range(1, counts.Max()).Select(db => db <= r.Servers ? MsPerSend(round, $"db{db}") : ""),
                MsPerSend(round, [.. Enumerable.Range(1, r.Servers).Select(db => $"db{db}")]),
                round.CpuCores.GetValueOrDefault("loadgen").ToString("0.00", CultureInfo.InvariantCulture),
                round.CpuCores.GetValueOrDefault("other").ToString("0.00", CultureInfo.InvariantCulture),
            ]))));
        Console.WriteLine(Table.Format(["servers", "server", "partitions", "entities", "share of entities", "journal rows", "share of rows"],
            results.SelectMany(r => r.Placement.Select(p => (IReadOnlyList<string>)
            [
                r.Servers.ToString(CultureInfo.InvariantCulture), p.Server, p.Partitions, p.Entities.ToString(CultureInfo.InvariantCulture),
                Share(p.Entities, r.Placement.Sum(q => q.Entities)), p.JournalRows.ToString(CultureInfo.InvariantCulture),
                Share(p.JournalRows, r.Placement.Sum(q => q.JournalRows)),
            ]))));
        if (jsonPath is not null)
            await File.WriteAllTextAsync(jsonPath, JsonSerializer.Serialize(results, JsonOut));
        return 0;
    }

    private static async Task<ServersResult> RunOneAsync(int count, string key, int users, int contacts, double retry, int concurrency,
        TimeSpan warmup, TimeSpan duration, int rounds, bool fsync)
    {
        var runDir = Path.Combine(Path.GetTempPath(), $"messaging-servers-{count}-{DateTime.UtcNow:yyyyMMdd-HHmmss}");
        Directory.CreateDirectory(runDir);
        Console.WriteLine($"{count} server(s): starting PostgreSQL (fsync {(fsync ? "on" : "off")}) ...");
        var servers = new List<PostgresServer>();
        try
        {
            for (var i = 0; i < count; i++)
                servers.Add(await PostgresServer.StartAsync(durable: fsync));
            var names = Enumerable.Range(1, count).Select(i => $"db{i}").ToArray();
            var map = Enumerable.Range(0, 256).Select(p => names[p * count / 256]).ToArray();
            var env = Bench.NodeEnvironment(servers[0], key, runDir);
            if (count > 1)
            {
                env.Remove("Messaging__Persistence__ConnectionString");
                for (var i = 0; i < count; i++)
                    env[$"Messaging__Persistence__Servers__{names[i]}__ConnectionString"] = servers[i].ConnectionStringFor("messaging");
                env["Messaging__Persistence__Partitions"] = Messaging.Node.PartitionMap.Format(map);
            }
            Console.WriteLine(count > 1 ? $"  partitions {env["Messaging__Persistence__Partitions"]}; starting the node ..." : "  starting the node ...");
            await using var node = new NodeProcess("messaging", FreePorts.Next(), runDir, env);
            await node.StartAsync(TimeSpan.FromSeconds(90));

            var selfPid = Environment.ProcessId;
            var sources = new Dictionary<string, Func<double>>
            {
                ["node"] = () => ProcStats.CpuSeconds(node.Pid),
                ["loadgen"] = () => ProcStats.CpuSeconds(selfPid),
            };
            for (var i = 0; i < count; i++)
            {
                var postmaster = servers[i].PostmasterPid ?? throw new InvalidOperationException("postmaster.pid missing");
                sources[names[i]] = () => ProcStats.TreeCpuSeconds(postmaster);
            }
            var results = new List<LoadResult>();
            for (var round = 1; round <= rounds; round++)
            {
                var result = await new LoadRunner(new LoadOptions
                {
                    Url = node.HttpUri.ToString(), SigningKey = Encoding.UTF8.GetBytes(key), Label = $"{count} server(s) r{round}",
                    Users = users, Contacts = contacts, RetryShare = retry, ReadShare = 0, Concurrency = concurrency,
                    Warmup = warmup, Duration = duration, CpuSources = sources, ServerPid = node.Pid,
                }).RunAsync();
                results.Add(result);
                Console.WriteLine($"  round {round}/{rounds}: {result.SendsPerSecond:0} sends/s, node {MsPerSend(result, "node")} ms/send, " +
                    $"databases {MsPerSend(result, names)} ms/send ({string.Join(", ", names.Select(n => $"{n} {MsPerSend(result, n)}"))}), load average {ProcStats.LoadAverage1():0.00}");
            }

            var placement = new List<ServerPlacement>();
            for (var i = 0; i < count; i++)
            {
                await using var connection = new NpgsqlConnection(servers[i].ConnectionStringFor("messaging"));
                await connection.OpenAsync();
                await using var command = new NpgsqlCommand("SELECT count(DISTINCT persistence_id), count(*) FROM journal WHERE persistence_id LIKE 'mailbox-%' OR persistence_id LIKE 'group-%'", connection);
                await using var reader = await command.ExecuteReaderAsync();
                await reader.ReadAsync();
                var partitions = Messaging.Node.PartitionMap.Format(map).Split(',').Where(r => r.EndsWith($"={names[i]}", StringComparison.Ordinal));
                placement.Add(new ServerPlacement(names[i], string.Join(",", partitions.Select(r => r[..r.IndexOf('=')])),
                    reader.GetInt64(0), reader.GetInt64(1)));
            }
            return new ServersResult(count, results, placement);
        }
        finally
        {
            foreach (var server in servers)
                await server.DisposeAsync();
            try { Directory.Delete(runDir, recursive: true); }
            catch (IOException) { }
        }
    }

    /// <summary>CPU milliseconds per acknowledged send of one party (or several together) over a round.</summary>
    private static string MsPerSend(LoadResult result, params string[] parties) => result.SendsPerSecond <= 0
        ? "-"
        : (parties.Sum(p => result.CpuCores.GetValueOrDefault(p)) / result.SendsPerSecond * 1000).ToString("0.000", CultureInfo.InvariantCulture);

    private static string Share(long part, long whole) => whole == 0 ? "-" : (100.0 * part / whole).ToString("0.0", CultureInfo.InvariantCulture) + " %";

    public sealed record ServerPlacement(string Server, string Partitions, long Entities, long JournalRows);

    public sealed record ServersResult(int Servers, List<LoadResult> Rounds, List<ServerPlacement> Placement);
}
