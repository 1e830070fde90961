using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;

namespace Messaging.LoadGenerator;

/// <summary>The whole benchmark in one invocation: throwaway PostgreSQL, the node and the baseline, loads back to back.</summary>
public static class Bench
{
    private static readonly JsonSerializerOptions JsonOut = new() { WriteIndented = true };

    /// <summary>
    /// Runtime settings of both servers, as docs/operations.md deploys the node: a 64 MiB gen0 budget (only the
    /// environment variable sets it; runtimeconfig.json does not). With the default budget on 2 cores the node
    /// collected gen0 every few MiB of garbage and each collection walked the cards of a large live heap of mailboxes.
    /// </summary>
    private static readonly Dictionary<string, string> RuntimeSettings = new() { ["DOTNET_GCgen0size"] = "0x4000000" };

    private static readonly TimeSpan ReadyWithin = TimeSpan.FromSeconds(90);

    public static async Task<int> RunAsync(Args a)
    {
        var users = a.Int("users", 10_000);
        var contacts = a.Int("contacts", 3);
        var retry = a.Double("retry", 0.05);
        var read = a.Double("read", 0.3);
        var concurrency = a.Int("concurrency", 64);
        var warmup = a.Seconds("warmup", 10);
        var duration = a.Seconds("duration", 20);
        var rounds = a.Int("rounds", 3);
        var fsync = a.Str("pg-fsync", "on") != "off";
        var jsonPath = a.Str("json");
        var keepDir = a.Flag("keep-dir");
        var nodeEnv = a.Str("node-env"); // extra KEY=VALUE;KEY=VALUE for the node (tuning experiments)
        var hold = a.Flag("hold"); // start everything, print where it is, wait for Enter (for manual loads)
        // A third load per round: the baseline's HTTP edge (Kestrel, JWT, JSON, checks) with sends kept in memory, no
        // database: what a send costs any server of this API here before it stores anything.
        var floor = a.Flag("floor");
        a.RejectUnknown();

        var runDir = Path.Combine(Path.GetTempPath(), $"messaging-bench-{DateTime.UtcNow:yyyyMMdd-HHmmss}");
        Directory.CreateDirectory(runDir);
        var key = Convert.ToBase64String(System.Security.Cryptography.RandomNumberGenerator.GetBytes(48));
        var keyBytes = Encoding.UTF8.GetBytes(key);
        Console.WriteLine($"machine: {Environment.ProcessorCount} cores, {CpuModel()}, {MemoryGiB():0} GiB; load average {ProcStats.LoadAverage1():0.00}");
        Console.WriteLine($"run dir: {runDir}");

        Console.WriteLine($"starting PostgreSQL (fsync {(fsync ? "on" : "off")}) ...");
        await using var pg = await PostgresServer.StartAsync(durable: fsync);
        await pg.CreateDatabaseAsync("baseline");
        var postmaster = pg.PostmasterPid ?? throw new InvalidOperationException("postmaster.pid missing");

        Console.WriteLine("starting the baseline ...");
        await using var baseline = new NodeProcess("baseline", FreePorts.Next(), runDir, RuntimeSettings,
            ["baseline-server", "--connection", pg.ConnectionStringFor("baseline"), "--key", key])
        {
            Dll = typeof(Bench).Assembly.Location,
        };
        await baseline.StartAsync(ReadyWithin);
        await using var edge = floor
            ? new NodeProcess("floor", FreePorts.Next(), runDir, RuntimeSettings, ["baseline-server", "--floor", "--key", key])
            {
                Dll = typeof(Bench).Assembly.Location,
            }
            : null;
        if (edge is not null)
            await edge.StartAsync(ReadyWithin);

        var env = NodeEnvironment(pg, key, runDir);
        foreach (var pair in (nodeEnv ?? "").Split(';', StringSplitOptions.RemoveEmptyEntries))
            env[pair[..pair.IndexOf('=')]] = pair[(pair.IndexOf('=') + 1)..];
        Console.WriteLine($"starting the node ({Repository.NodeDll}) ...");
        await using var node = new NodeProcess("messaging", FreePorts.Next(), runDir, env);
        await node.StartAsync(ReadyWithin);

        if (hold)
        {
            Console.WriteLine($"node {node.HttpUri} pid {node.Pid}; baseline {baseline.HttpUri} pid {baseline.Pid}; postgres {pg.ConnectionStringFor("messaging")}; key {key} postmaster {postmaster}");
            Console.WriteLine("press Enter (or close stdin) to stop");
            await Console.In.ReadLineAsync();
            return 0;
        }
        var selfPid = Environment.ProcessId;
        Dictionary<string, Func<double>> Sources(NodeProcess server, NodeProcess idle) => new()
        {
            ["server"] = () => ProcStats.CpuSeconds(server.Pid),
            ["postgres"] = () => ProcStats.TreeCpuSeconds(postmaster),
            ["loadgen"] = () => ProcStats.CpuSeconds(selfPid),
            ["idle server"] = () => ProcStats.CpuSeconds(idle.Pid),
        };
        LoadOptions Options(NodeProcess server, NodeProcess idle, string label, double? rate, double readShare) => new()
        {
            Url = server.HttpUri.ToString(), SigningKey = keyBytes, Label = label, Users = users, Contacts = contacts, RetryShare = retry,
            ReadShare = readShare, Rate = rate, Concurrency = concurrency, Warmup = warmup, Duration = duration,
            CpuSources = Sources(server, idle), ServerPid = server.Pid,
        };

        var results = new List<LoadResult>();
        var ratios = new List<double>();
        double baselinePeak = 0, messagingPeak = 0;
        for (var round = 1; round <= rounds; round++)
        {
            Console.WriteLine($"round {round}/{rounds}: peak (closed loop, c={concurrency}, sends only), load average {ProcStats.LoadAverage1():0.00}");
            var b = await new LoadRunner(Options(baseline, node, $"baseline peak r{round}", null, 0)).RunAsync();
            var m = await new LoadRunner(Options(node, baseline, $"messaging peak r{round}", null, 0)).RunAsync();
            results.Add(b);
            results.Add(m);
            ratios.Add(m.SendsPerSecond / b.SendsPerSecond);
            Console.WriteLine($"  baseline {b.SendsPerSecond:0} sends/s, messaging {m.SendsPerSecond:0} sends/s, ratio {ratios[^1]:0.00}");
            if (edge is not null)
            {
                var f = await new LoadRunner(Options(edge, node, $"floor peak r{round}", null, 0)).RunAsync();
                results.Add(f);
                Console.WriteLine($"  floor (the edge, no database) {f.SendsPerSecond:0} sends/s");
            }
        }
        baselinePeak = Median(results.Where(r => r.Label.StartsWith("baseline peak", StringComparison.Ordinal)).Select(r => r.SendsPerSecond));
        messagingPeak = Median(results.Where(r => r.Label.StartsWith("messaging peak", StringComparison.Ordinal)).Select(r => r.SendsPerSecond));

        // Half of each system's own peak as sends, with reads on top in the given share of all operations.
        Console.WriteLine($"half peak (open loop, sends at half the median peak, {read:P0} of operations reads), load average {ProcStats.LoadAverage1():0.00}");
        var bHalf = await new LoadRunner(Options(baseline, node, "baseline half", baselinePeak / 2 / (1 - read), read)).RunAsync();
        var mHalf = await new LoadRunner(Options(node, baseline, "messaging half", messagingPeak / 2 / (1 - read), read)).RunAsync();
        results.Add(bHalf);
        results.Add(mHalf);

        var summary = new BenchSummary(
            DateTime.UtcNow, Environment.ProcessorCount, CpuModel(), MemoryGiB(), ProcStats.LoadAverage1(), fsync,
            users, contacts, retry, read, concurrency, warmup.TotalSeconds, duration.TotalSeconds,
            baselinePeak, messagingPeak, Median(ratios), ratios, results);
        Print(summary);
        if (jsonPath is not null)
            await File.WriteAllTextAsync(jsonPath, JsonSerializer.Serialize(summary, JsonOut));
        if (!keepDir)
            TryDelete(runDir);
        return 0;
    }

    /// <summary>How both benchmarks run the node: on the throwaway PostgreSQL, on free ports, quiet logs.</summary>
    internal static Dictionary<string, string> NodeEnvironment(PostgresServer pg, string key, string runDir) => new(RuntimeSettings)
    {
        ["Messaging__Persistence__Provider"] = "PostgreSql",
        ["Messaging__Persistence__ConnectionString"] = pg.ConnectionStringFor("messaging"),
        ["Messaging__Auth__SigningKey"] = key,
        ["Messaging__DataDirectory"] = Path.Combine(runDir, "node-data"),
        ["Messaging__Cluster__Port"] = FreePorts.Next().ToString(CultureInfo.InvariantCulture),
        ["Messaging__Cluster__Hostname"] = "127.0.0.1",
        ["Messaging__Admin__Port"] = FreePorts.Next().ToString(CultureInfo.InvariantCulture), // 9090 may be taken
        ["Logging__LogLevel__Default"] = "Warning",
    };

    public static async Task<int> LoadAsync(Args a)
    {
        var url = a.Str("url") ?? throw new ArgumentException("--url is required");
        var key = a.Str("key") ?? throw new ArgumentException("--key is required");
        var pid = a.Str("pid") is { } p ? int.Parse(p, CultureInfo.InvariantCulture) : (int?)null;
        var selfPid = Environment.ProcessId;
        var sources = new Dictionary<string, Func<double>> { ["loadgen"] = () => ProcStats.CpuSeconds(selfPid) };
        if (pid is { } serverPid)
            sources["server"] = () => ProcStats.CpuSeconds(serverPid);
        if (a.Str("postmaster") is { } postmaster) // PostgreSQL's postmaster: its whole tree (every backend)
            sources["postgres"] = () => ProcStats.TreeCpuSeconds(int.Parse(postmaster, CultureInfo.InvariantCulture));
        var options = new LoadOptions
        {
            Url = url, SigningKey = Encoding.UTF8.GetBytes(key), Label = a.Str("label", "load")!,
            Users = a.Int("users", 10_000), Contacts = a.Int("contacts", 3), RetryShare = a.Double("retry", 0.05),
            ReadShare = a.Double("read", 0), Rate = a.OptionalDouble("rate"), Concurrency = a.Int("concurrency", 64),
            Warmup = a.Seconds("warmup", 5), Duration = a.Seconds("duration", 20), CpuSources = sources, ServerPid = pid,
        };
        var jsonPath = a.Str("json");
        a.RejectUnknown();
        var result = await new LoadRunner(options).RunAsync();
        Console.WriteLine(ResultTable([result]));
        if (jsonPath is not null)
            await File.WriteAllTextAsync(jsonPath, JsonSerializer.Serialize(result, JsonOut));
        return 0;
    }

    public sealed record BenchSummary(
        DateTime At, int Cores, string CpuModel, double MemoryGiB, double LoadAverageAtEnd, bool PgFsync,
        int Users, int Contacts, double RetryShare, double ReadShare, int Concurrency, double WarmupSeconds,
        double DurationSeconds, double BaselinePeakSendsPerSecond, double MessagingPeakSendsPerSecond,
        double MedianRatio, List<double> Ratios, List<LoadResult> Runs);

    private static void Print(BenchSummary s)
    {
        Console.WriteLine();
        Console.WriteLine(ResultTable(s.Runs));
        Console.WriteLine(Table.Format(
            ["phase", "server", "postgres", "loadgen", "idle server", "other", "machine"],
            s.Runs.Select(r => (IReadOnlyList<string>)[r.Label, .. new[] { "server", "postgres", "loadgen", "idle server", "other", "machine" }
                .Select(k => r.CpuCores.GetValueOrDefault(k).ToString("0.00", CultureInfo.InvariantCulture))])));
        Console.WriteLine(Table.Format(
            ["phase", "CPU ms per send: server", "postgres", "loadgen", "server + postgres + loadgen"],
            s.Runs.Where(r => r.SendsPerSecond > 0).Select(r =>
            {
                string PerSend(double cores) => (cores / r.SendsPerSecond * 1000).ToString("0.000", CultureInfo.InvariantCulture);
                var (server, postgres, loadgen) = (r.CpuCores.GetValueOrDefault("server"), r.CpuCores.GetValueOrDefault("postgres"), r.CpuCores.GetValueOrDefault("loadgen"));
                return (IReadOnlyList<string>)[r.Label, PerSend(server), PerSend(postgres), PerSend(loadgen), PerSend(server + postgres + loadgen)];
            })));
        foreach (var r in s.Runs.Where(r => r.Errors.Count > 0 || r.Dropped > 0))
            Console.WriteLine($"{r.Label}: errors {string.Join(", ", r.Errors.Select(e => $"{e.Key} x{e.Value}"))}; dropped {r.Dropped}");
        Console.WriteLine($"peak sends/s (median of {s.Ratios.Count}): baseline {s.BaselinePeakSendsPerSecond:0}, messaging {s.MessagingPeakSendsPerSecond:0}");
        Console.WriteLine($"ratio messaging/baseline per round: {string.Join(", ", s.Ratios.Select(r => r.ToString("0.00", CultureInfo.InvariantCulture)))}; median {s.MedianRatio:0.00}");
    }

    public static string ResultTable(IEnumerable<LoadResult> results) => Table.Format(
        ["phase", "mode", "sends/s", "reads/s", "op", "p50 ms", "p90 ms", "p99 ms", "max ms", "server CPU", "server peak MiB"],
        results.SelectMany(r => r.Ops.Where(o => o.Count > 0).Select((o, i) => (IReadOnlyList<string>)
        [
            i == 0 ? r.Label : "", i == 0 ? r.Mode : "", i == 0 ? r.SendsPerSecond.ToString("0") : "",
            i == 0 ? r.ReadsPerSecond.ToString("0") : "", $"{o.Op} ({o.Count})", Table.Ms(o.P50Ms), Table.Ms(o.P90Ms),
            Table.Ms(o.P99Ms), Table.Ms(o.MaxMs), i == 0 ? r.ServerCpuCores.ToString("0.00") : "",
            i == 0 ? (r.ServerPeakBytes / 1048576.0).ToString("0") : "",
        ])));

    public static double Median(IEnumerable<double> values)
    {
        var sorted = values.Order().ToArray();
        return sorted.Length == 0 ? 0 : sorted.Length % 2 == 1 ? sorted[sorted.Length / 2] : (sorted[sorted.Length / 2 - 1] + sorted[sorted.Length / 2]) / 2;
    }

    public static string CpuModel() =>
        File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("model name", StringComparison.Ordinal))?.Split(':', 2)[1].Trim() ?? "unknown CPU";

    public static double MemoryGiB() => ProcStats.StatusBytes(Environment.ProcessId, "VmRSS") >= 0
        ? long.Parse(File.ReadLines("/proc/meminfo").First().Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture) / 1048576.0
        : 0;

    private static void TryDelete(string dir)
    {
        try { Directory.Delete(dir, recursive: true); }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
    }
}
