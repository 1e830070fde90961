using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;

namespace Messaging.LoadGenerator;

/// <summary>
/// The soak (issue 13, docs/benchmarks.md): a throwaway PostgreSQL (fsync on) and one node (Release); the peak from one
/// short closed-loop phase (or <c>--rate</c>), then an open loop at a fraction of it with reads and retries for
/// <c>--minutes</c>, one row per <c>--interval</c> (rates, errors by kind, latency, node memory and live mailboxes,
/// CPU), users idle in turns so that mailboxes passivate and come back during the run, and at the end a read-back of
/// every acknowledged send (or a sample of senders): each exactly once in both copies, in the order acknowledged.
/// </summary>
public static class Soak
{
    private static readonly JsonSerializerOptions JsonOut = new() { WriteIndented = true };

    public static async Task<int> RunAsync(Args a)
    {
        var o = new SoakOptions
        {
            Minutes = a.Double("minutes", 30),
            Interval = a.Seconds("interval", 60),
            Users = a.Int("users", 10_000),
            Contacts = a.Int("contacts", 3),
            RetryShare = a.Double("retry", 0.05),
            ReadShare = a.Double("read", 0.3),
            Fraction = a.Double("fraction", 0.5),
            Rate = a.OptionalDouble("rate"),
            Concurrency = a.Int("concurrency", 64),
            PeakWarmup = a.Seconds("peak-warmup", 10),
            PeakDuration = a.Seconds("peak-duration", 20),
            PassivateAfter = a.OptionalDouble("passivate-after") is { } p ? TimeSpan.FromSeconds(p) : null,
            Cohorts = a.Int("cohorts", 4),
            IdleFor = a.OptionalDouble("idle-for") is { } i ? TimeSpan.FromSeconds(i) : null,
            WarmupMinutes = a.Double("warmup-minutes", 5),
            Prefill = a.Int("prefill", 0),
            VerifyUsers = a.Int("verify-users", 0),
            Timeout = a.Seconds("timeout", 30),
            ClientRetries = a.Str("client-retries", "on") != "off",
        };
        var fsync = a.Str("pg-fsync", "on") != "off";
        var jsonPath = a.Str("json");
        var keepDir = a.Flag("keep-dir");
        // Extra node environment, "K=V;K=V": e.g. DOTNET_GCHeapHardLimit=0x30000000 for the heap limit a 1 GiB pod gives.
        var nodeEnv = a.Str("node-env");
        a.RejectUnknown();
        if (o.Minutes <= 0 || o.Interval <= TimeSpan.Zero || o.Users < o.Contacts + 2 || o.ReadShare + o.RetryShare >= 1)
            throw new ArgumentException("--minutes and --interval must be positive, --users above --contacts + 1, --read + --retry below 1");

        ThreadPool.GetMinThreads(out var workers, out var io);
        ThreadPool.SetMinThreads(Math.Max(workers, 64), Math.Max(io, 64));
        var runDir = Path.Combine(Path.GetTempPath(), $"messaging-soak-{DateTime.UtcNow:yyyyMMdd-HHmmss}");
        Directory.CreateDirectory(runDir);
        var key = Convert.ToBase64String(System.Security.Cryptography.RandomNumberGenerator.GetBytes(48));
        var keyBytes = Encoding.UTF8.GetBytes(key);
        Console.WriteLine($"machine: {Environment.ProcessorCount} cores, {Bench.CpuModel()}, {Bench.MemoryGiB():0} GiB; load average {ProcStats.LoadAverage1():0.00}");
        Console.WriteLine($"run dir: {runDir}");

        Console.WriteLine($"starting PostgreSQL (fsync {(fsync ? "on" : "off")}) ...");
        await using var pg = await PostgresServer.StartAsync(durable: fsync);
        var postmaster = pg.PostmasterPid ?? throw new InvalidOperationException("postmaster.pid missing");
        var env = Bench.NodeEnvironment(pg, key, runDir);
        if (o.PassivateAfter is { } passivate)
            env["Messaging__Mailbox__PassivateIdleAfter"] = passivate.ToString("c", CultureInfo.InvariantCulture);
        foreach (var pair in (nodeEnv ?? "").Split(';', StringSplitOptions.RemoveEmptyEntries))
            env[pair[..pair.IndexOf('=')]] = pair[(pair.IndexOf('=') + 1)..];
        var adminPort = int.Parse(env["Messaging__Admin__Port"], CultureInfo.InvariantCulture);
        Console.WriteLine($"starting the node ({Repository.NodeDll}) ...");
        await using var node = new NodeProcess("messaging", FreePorts.Next(), runDir, env);
        await node.StartAsync(TimeSpan.FromSeconds(90));

        var selfPid = Environment.ProcessId;
        var cpuSources = new Dictionary<string, Func<double>>
        {
            ["server"] = () => ProcStats.CpuSeconds(node.Pid),
            ["postgres"] = () => ProcStats.TreeCpuSeconds(postmaster),
            ["loadgen"] = () => ProcStats.CpuSeconds(selfPid),
        };

        double? peak = null;
        double sendRate;
        if (o.Rate is { } fixedRate)
            sendRate = fixedRate;
        else
        {
            Console.WriteLine($"peak: closed loop, c={o.Concurrency}, sends only, {o.PeakWarmup.TotalSeconds:0} s warm-up, {o.PeakDuration.TotalSeconds:0} s measured; load average {ProcStats.LoadAverage1():0.00}");
            var result = await new LoadRunner(new LoadOptions
            {
                Url = node.HttpUri.ToString(), SigningKey = keyBytes, Label = "peak", Users = o.Users, Contacts = o.Contacts,
                RetryShare = o.RetryShare, ReadShare = 0, Rate = null, Concurrency = o.Concurrency, Warmup = o.PeakWarmup,
                Duration = o.PeakDuration, CpuSources = cpuSources, ServerPid = node.Pid,
            }).RunAsync();
            peak = result.SendsPerSecond;
            sendRate = peak.Value * o.Fraction;
            Console.WriteLine($"peak {peak:0} sends/s ({result.Errors.Values.Sum()} errors); soak at {o.Fraction:0.##} of it");
        }

        var soak = new SoakLoad(o, node.HttpUri, keyBytes, node.Pid, adminPort, cpuSources);
        var rows = await soak.RunAsync(sendRate);
        var verification = await soak.VerifyAsync();
        var summary = Summarize(o, peak, sendRate, rows, soak.ErrorsTotal(), verification, fsync);
        Print(rows, summary);
        if (jsonPath is not null)
            await File.WriteAllTextAsync(jsonPath, JsonSerializer.Serialize(new SoakReport(summary, rows), JsonOut));
        if (!keepDir)
        {
            try { Directory.Delete(runDir, recursive: true); }
            catch (IOException) { }
        }
        return summary.BarMet ? 0 : 1;
    }

    private static SoakSummary Summarize(SoakOptions o, double? peak, double sendRate, List<SoakRow> rows,
        Dictionary<string, long> errors, Verification verification, bool fsync)
    {
        // Memory after the warm-up (at most the first third): the end of its first third against the end of its last,
        // and the least-squares slope of RSS over elapsed time.
        var warmup = Math.Min(o.WarmupMinutes, o.Minutes / 3) * 60;
        var steady = rows.Where(r => r.ElapsedSeconds > warmup).ToList();
        double? firstThird = null, lastThird = null, slope = null;
        if (steady.Count >= 3)
        {
            var span = steady[^1].ElapsedSeconds - steady[0].ElapsedSeconds;
            firstThird = steady.Last(r => r.ElapsedSeconds <= steady[0].ElapsedSeconds + span / 3).RssMiB;
            lastThird = steady[^1].RssMiB;
            var mx = steady.Average(r => r.ElapsedSeconds);
            var my = steady.Average(r => r.RssMiB);
            var sxx = steady.Sum(r => (r.ElapsedSeconds - mx) * (r.ElapsedSeconds - mx));
            slope = sxx > 0 ? steady.Sum(r => (r.ElapsedSeconds - mx) * (r.RssMiB - my)) / sxx * 600 : null;
        }
        var total = errors.Values.Sum();
        return new SoakSummary(
            DateTime.UtcNow, Environment.ProcessorCount, Bench.CpuModel(), ProcStats.LoadAverage1(), fsync, o.Users,
            o.Contacts, o.RetryShare, o.ReadShare, o.Minutes, o.Interval.TotalSeconds, peak, o.Fraction, sendRate,
            o.PassivateAfter?.TotalSeconds, o.Cohorts, o.EffectiveIdleFor.TotalSeconds, total, errors, warmup, firstThird, lastThird,
            slope, rows.Count > 0 ? rows.Max(r => r.HwmMiB) : 0, verification,
            total == 0 && verification.Passed);
    }

    private static void Print(List<SoakRow> rows, SoakSummary s)
    {
        Console.WriteLine();
        Console.WriteLine(Table.Format(SoakRow.Header, rows.Select(r => r.Cells())));
        foreach (var r in rows.Where(r => r.Errors.Count > 0))
            Console.WriteLine($"  {r.ElapsedSeconds:0} s: {string.Join(", ", r.Errors.Select(e => $"{e.Key} x{e.Value}"))}");
        Console.WriteLine($"errors: {s.ErrorsTotal}" + (s.ErrorsTotal > 0 ? $" ({string.Join(", ", s.Errors.Select(e => $"{e.Key} x{e.Value}"))})" : ""));
        Console.WriteLine(s.MemorySlopeMiBPer10Min is { } slope
            ? $"memory: RSS {s.RssEndOfFirstThirdMiB:0} MiB at the end of the first third after the {s.WarmupSeconds:0} s warm-up, {s.RssEndMiB:0} MiB at the end; " +
              $"slope {slope:+0.0;-0.0} MiB per 10 min (least squares over {rows.Count(r => r.ElapsedSeconds > s.WarmupSeconds)} rows); peak VmHWM {s.PeakHwmMiB:0} MiB"
            : "memory: too few rows after the warm-up for a slope (run longer or use a shorter --interval)");
        var v = s.Verification;
        Console.WriteLine($"verification ({v.Scope}): {v.Senders} senders, {v.Pairs} sender->recipient pairs, {v.Acknowledged} acknowledged sends " +
                          $"read back in {v.ThreadReads} thread pages over {v.Seconds:0} s: missing {v.Missing}, duplicated {v.Duplicated}, " +
                          $"reordered {v.Reordered}, unknown outcome stored twice {v.UnknownTwice}, unreadable threads {v.Unreadable} " +
                          $"-> {(v.Passed ? "PASS" : "FAIL")}");
        foreach (var example in v.Examples)
            Console.WriteLine($"  {example}");
        Console.WriteLine($"bar (zero errors, nothing acknowledged lost, duplicated or reordered): {(s.BarMet ? "met" : "NOT met")}");
    }

    public sealed record SoakReport(SoakSummary Summary, List<SoakRow> Rows);

    public sealed record SoakSummary(
        DateTime At, int Cores, string CpuModel, double LoadAverageAtEnd, bool PgFsync, int Users, int Contacts,
        double RetryShare, double ReadShare, double Minutes, double IntervalSeconds, double? PeakSendsPerSecond,
        double Fraction, double TargetSendsPerSecond, double? PassivateAfterSeconds, int Cohorts, double IdleForSeconds,
        long ErrorsTotal, Dictionary<string, long> Errors, double WarmupSeconds, double? RssEndOfFirstThirdMiB,
        double? RssEndMiB, double? MemorySlopeMiBPer10Min, double PeakHwmMiB, Verification Verification, bool BarMet);
}

public sealed record SoakOptions
{
    public double Minutes { get; init; } = 30;
    public TimeSpan Interval { get; init; } = TimeSpan.FromSeconds(60);
    public int Users { get; init; } = 10_000;
    public int Contacts { get; init; } = 3;
    public double RetryShare { get; init; } = 0.05;
    public double ReadShare { get; init; } = 0.3;
    public double Fraction { get; init; } = 0.5;
    /// <summary>Sends per second of the soak (no peak phase); retries count as sends, reads come on top.</summary>
    public double? Rate { get; init; }
    public int Concurrency { get; init; } = 64;
    public TimeSpan PeakWarmup { get; init; } = TimeSpan.FromSeconds(10);
    public TimeSpan PeakDuration { get; init; } = TimeSpan.FromSeconds(20);
    /// <summary>The node's Messaging:Mailbox:PassivateIdleAfter; null leaves the node's default (2 min).</summary>
    public TimeSpan? PassivateAfter { get; init; }
    /// <summary>Users split into this many contiguous cohorts; one at a time is idle (neither sends nor reads). 1 = none.</summary>
    public int Cohorts { get; init; } = 4;
    public TimeSpan? IdleFor { get; init; }
    public double WarmupMinutes { get; init; } = 5;
    /// <summary>Sends per user before the soak (closed loop), so that it starts with users at their bounds.</summary>
    public int Prefill { get; init; }
    /// <summary>Senders whose acknowledged sends are read back at the end; 0 = all.</summary>
    public int VerifyUsers { get; init; }
    public TimeSpan Timeout { get; init; } = TimeSpan.FromSeconds(30);
    public int MaxOutstanding { get; init; } = 5_000;
    public int TextLength { get; init; } = 40;
    /// <summary>Whether a 503 or 429 with Retry-After is tried again, as the API asks of clients (see SoakLoad.Exchange).</summary>
    public bool ClientRetries { get; init; } = true;

    /// <summary>Long enough for a cohort's mailboxes to pass the idle timeout and stay passivated a while: 2.5x it.</summary>
    public TimeSpan EffectiveIdleFor => IdleFor ?? (PassivateAfter ?? TimeSpan.FromMinutes(2)) * 2.5;
}

public sealed record SoakRow(
    double ElapsedSeconds, int IdleCohort, double SendsPerSecond, double ReadsPerSecond, long Errors5xx, long Errors4xx,
    long Timeouts, long Transport, long RetryMismatches, long Dropped, Dictionary<string, long> Errors, long Retried,
    double SendP50Ms, double SendP99Ms, double SendMaxMs, double ReadP50Ms, double ReadP99Ms, double RssMiB,
    double HwmMiB, double? ManagedHeapMiB, long? MailboxesActive, long? MailboxesShed, double NodeCores, double PostgresCores,
    double LoadgenCores, double MachineCores, double LoadAverage1)
{
    public static readonly string[] Header =
    [
        "elapsed", "idle cohort", "sends/s", "reads/s", "errors 5xx/4xx/timeout/transport/retry/dropped", "retried (503/429)", "send p50 ms",
        "p99", "max", "read p50 ms", "p99", "RSS MiB", "HWM MiB", "heap MiB", "mailboxes", "shed (total)", "node CPU", "pg CPU",
        "loadgen", "machine", "load avg",
    ];

    public IReadOnlyList<string> Cells() =>
    [
        $"{ElapsedSeconds / 60:0.0} min", IdleCohort < 0 ? "-" : IdleCohort.ToString(CultureInfo.InvariantCulture),
        SendsPerSecond.ToString("0", CultureInfo.InvariantCulture), ReadsPerSecond.ToString("0", CultureInfo.InvariantCulture),
        $"{Errors5xx}/{Errors4xx}/{Timeouts}/{Transport}/{RetryMismatches}/{Dropped}", Retried.ToString(CultureInfo.InvariantCulture), Table.Ms(SendP50Ms), Table.Ms(SendP99Ms),
        Table.Ms(SendMaxMs), Table.Ms(ReadP50Ms), Table.Ms(ReadP99Ms), RssMiB.ToString("0", CultureInfo.InvariantCulture),
        HwmMiB.ToString("0", CultureInfo.InvariantCulture), ManagedHeapMiB is { } h ? h.ToString("0", CultureInfo.InvariantCulture) : "-",
        MailboxesActive?.ToString(CultureInfo.InvariantCulture) ?? "-", MailboxesShed?.ToString(CultureInfo.InvariantCulture) ?? "-", NodeCores.ToString("0.00", CultureInfo.InvariantCulture),
        PostgresCores.ToString("0.00", CultureInfo.InvariantCulture), LoadgenCores.ToString("0.00", CultureInfo.InvariantCulture),
        MachineCores.ToString("0.00", CultureInfo.InvariantCulture), LoadAverage1.ToString("0.00", CultureInfo.InvariantCulture),
    ];
}

public sealed record Verification(
    string Scope, int Senders, int Pairs, long Acknowledged, long ThreadReads, double Seconds, long Missing,
    long Duplicated, long Reordered, long UnknownTwice, long Unreadable, List<string> Examples)
{
    public bool Passed => Missing == 0 && Duplicated == 0 && Reordered == 0 && UnknownTwice == 0 && Unreadable == 0;
}
