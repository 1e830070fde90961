using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;

namespace Messaging.LoadGenerator;

/// <summary>
/// Live events under load (docs/benchmarks.md, "Live events"): a throwaway PostgreSQL and one node (Release); the
/// node holds <c>--streams</c> open SSE streams (one user each) and the node's memory is read before and after they
/// open; then a closed-loop peak of sends to those users, and an open loop at half that peak during which every
/// send's acknowledgement is matched with the event on its recipient's stream (by clientMessageId).
/// </summary>
public static class LiveBench
{
    private static readonly double TickMs = 1000.0 / Stopwatch.Frequency;

    public static async Task<int> RunAsync(Args a)
    {
        var streams = a.Int("streams", 10_000);
        var senders = a.Int("senders", 1_000);
        var concurrency = a.Int("concurrency", 64);
        var peakSeconds = a.Seconds("peak", 15);
        var warmup = a.Seconds("warmup", 5);
        var duration = a.Seconds("duration", 20);
        var rounds = a.Int("rounds", 3);
        var jsonPath = a.Str("json");
        a.RejectUnknown();

        ThreadPool.GetMinThreads(out var workers, out var io);
        ThreadPool.SetMinThreads(Math.Max(workers, 64), Math.Max(io, 64));
        var runDir = Path.Combine(Path.GetTempPath(), $"messaging-live-{DateTime.UtcNow:yyyyMMdd-HHmmss}");
        Directory.CreateDirectory(runDir);
        var key = Convert.ToBase64String(System.Security.Cryptography.RandomNumberGenerator.GetBytes(48));
        var keyBytes = Encoding.UTF8.GetBytes(key);
        Console.WriteLine($"machine: {Environment.ProcessorCount} cores, {Bench.CpuModel()}, {Bench.MemoryGiB():0} GiB; load average {ProcStats.LoadAverage1():0.00}");
        await using var pg = await PostgresServer.StartAsync(durable: true);
        var env = Bench.NodeEnvironment(pg, key, runDir);
        env["Messaging__Mailbox__MaxStreamsPerUser"] = "2";
        Console.WriteLine($"starting the node ({Repository.NodeDll}) ...");
        await using var node = new NodeProcess("messaging", FreePorts.Next(), runDir, env);
        await node.StartAsync(TimeSpan.FromSeconds(90));

        using var http = new HttpClient(new SocketsHttpHandler
        {
            MaxConnectionsPerServer = int.MaxValue,
            PooledConnectionLifetime = Timeout.InfiniteTimeSpan,
            UseProxy = false,
        })
        { BaseAddress = node.HttpUri, Timeout = Timeout.InfiniteTimeSpan };
        var listeners = Enumerable.Range(0, streams).Select(i => $"l{i:D6}").ToArray();
        var talkers = Enumerable.Range(0, senders).Select(i => $"s{i:D5}").ToArray();
        var tokens = listeners.Concat(talkers).ToDictionary(u => u, u => new AuthenticationHeaderValue("Bearer", Jwt.Mint(u, keyBytes, TimeSpan.FromHours(6))));

        // Every mailbox live first (as an active user's is), so the streams' own memory is what grows next.
        Console.WriteLine($"priming {listeners.Length + talkers.Length} mailboxes ...");
        await Parallel.ForEachAsync(listeners.Concat(talkers), new ParallelOptions { MaxDegreeOfParallelism = 32 }, async (user, ct) =>
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, $"/v1/users/{user}/conversations");
            request.Headers.Authorization = tokens[user];
            using var response = await http.SendAsync(request, ct);
            response.EnsureSuccessStatusCode();
        });
        var before = await SettledRss(node.Pid);

        Console.WriteLine($"opening {streams} streams ...");
        var events = new ConcurrentDictionary<string, long>(StringComparer.Ordinal);
        using var stop = new CancellationTokenSource();
        var opened = 0;
        var readers = new List<Task>(streams);
        foreach (var chunk in listeners.Chunk(200))
        {
            var opening = chunk.Select(user => OpenAsync(http, user, tokens[user], events, stop.Token)).ToArray();
            foreach (var reader in await Task.WhenAll(opening))
            {
                readers.Add(reader);
                opened++;
            }
        }
        var after = await SettledRss(node.Pid);
        var perStream = (after - before) / (double)streams;
        Console.WriteLine($"{opened} streams open: node RSS {before / 1048576.0:0} MiB -> {after / 1048576.0:0} MiB, {perStream / 1024:0.0} KiB per stream");

        // Peak: closed loop, then the latency at half of it.
        var peaks = new List<double>();
        for (var round = 1; round <= rounds; round++)
        {
            var peak = await SendLoop(http, talkers, listeners, tokens, concurrency, null, TimeSpan.Zero, peakSeconds, null);
            peaks.Add(peak.SendsPerSecond);
            Console.WriteLine($"round {round}/{rounds}: peak {peak.SendsPerSecond:0} sends/s (closed loop, c={concurrency}), load average {ProcStats.LoadAverage1():0.00}");
        }
        var half = Bench.Median(peaks) / 2;
        Console.WriteLine($"half peak: {half:0} sends/s for {duration.TotalSeconds:0} s after {warmup.TotalSeconds:0} s warmup ...");
        var acks = new ConcurrentDictionary<string, long>(StringComparer.Ordinal);
        var run = await SendLoop(http, talkers, listeners, tokens, concurrency, half, warmup, duration, acks);
        await Task.Delay(TimeSpan.FromSeconds(5)); // events still in flight

        var deltas = new List<double>();
        var missing = 0;
        foreach (var (cmid, ackTicks) in acks)
        {
            if (events.TryGetValue(cmid, out var eventTicks))
                deltas.Add((eventTicks - ackTicks) * TickMs);
            else
                missing++;
        }
        deltas.Sort();
        double P(double q) => deltas.Count == 0 ? double.NaN : deltas[Math.Min(deltas.Count - 1, (int)(q * deltas.Count))];
        var beforeAck = deltas.Count(d => d < 0) / (double)Math.Max(1, deltas.Count);
        var summary = new LiveSummary(DateTime.UtcNow, Environment.ProcessorCount, Bench.CpuModel(), ProcStats.LoadAverage1(),
            streams, opened, before, after, perStream, peaks, half, run.SendsPerSecond, acks.Count, missing,
            P(0.5), P(0.9), P(0.99), deltas.Count == 0 ? double.NaN : deltas[^1], beforeAck, run.SendP50, run.SendP99);
        Console.WriteLine(Table.Format(
            ["streams", "KiB/stream", "peak sends/s", "half-peak sends/s", "matched", "missing", "ack->event p50 ms", "p90 ms", "p99 ms", "max ms", "event before ack", "send p50 ms", "send p99 ms"],
            [[
                opened.ToString(CultureInfo.InvariantCulture), (perStream / 1024).ToString("0.0", CultureInfo.InvariantCulture),
                Bench.Median(peaks).ToString("0", CultureInfo.InvariantCulture), run.SendsPerSecond.ToString("0", CultureInfo.InvariantCulture),
                deltas.Count.ToString(CultureInfo.InvariantCulture), missing.ToString(CultureInfo.InvariantCulture),
                Table.Ms(summary.P50), Table.Ms(summary.P90), Table.Ms(summary.P99), Table.Ms(summary.Max),
                beforeAck.ToString("P0", CultureInfo.InvariantCulture), Table.Ms(run.SendP50), Table.Ms(run.SendP99),
            ]]));
        if (jsonPath is not null)
            await File.WriteAllTextAsync(jsonPath, JsonSerializer.Serialize(summary, new JsonSerializerOptions { WriteIndented = true }));
        await stop.CancelAsync();
        return missing == 0 ? 0 : 1;
    }

    public sealed record LiveSummary(
        DateTime At, int Cores, string CpuModel, double LoadAverageAtEnd, int Streams, int Opened, long RssBefore, long RssAfter,
        double BytesPerStream, List<double> PeakSendsPerSecond, double HalfPeakTarget, double HalfPeakSendsPerSecond,
        int Acknowledged, int Missing, double P50, double P90, double P99, double Max, double EventBeforeAckShare,
        double SendP50, double SendP99);

    private sealed record LoopResult(double SendsPerSecond, double SendP50, double SendP99);

    /// <summary>Node RSS once it has settled: a full GC through the runtime's own trigger is not ours to call, so wait and take the lowest of a few reads.</summary>
    private static async Task<long> SettledRss(int pid)
    {
        var lowest = long.MaxValue;
        for (var i = 0; i < 5; i++)
        {
            await Task.Delay(TimeSpan.FromSeconds(1));
            lowest = Math.Min(lowest, ProcStats.StatusBytes(pid, "VmRSS"));
        }
        return lowest;
    }

    /// <summary>Opens one stream and returns its reader, which records when each message event arrives (by clientMessageId).</summary>
    private static async Task<Task> OpenAsync(HttpClient http, string user, AuthenticationHeaderValue token,
        ConcurrentDictionary<string, long> events, CancellationToken stop)
    {
        var request = new HttpRequestMessage(HttpMethod.Get, $"/v1/users/{user}/events");
        request.Headers.Authorization = token;
        var response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, stop);
        response.EnsureSuccessStatusCode();
        var body = await response.Content.ReadAsStreamAsync(stop);
        return Task.Run(async () =>
        {
            using var _ = response;
            using var reader = new StreamReader(body);
            try
            {
                while (await reader.ReadLineAsync(stop) is { } line)
                {
                    if (!line.StartsWith("data: ", StringComparison.Ordinal))
                        continue;
                    var at = Stopwatch.GetTimestamp();
                    const string Field = "\"clientMessageId\":\"";
                    var i = line.IndexOf(Field, StringComparison.Ordinal);
                    if (i < 0)
                        continue;
                    var start = i + Field.Length;
                    var end = line.IndexOf('"', start);
                    events.TryAdd(line[start..end], at);
                }
            }
            catch (Exception e) when (e is OperationCanceledException or IOException)
            {
            }
        }, stop);
    }

    /// <summary>Sends from random talkers to random listeners; open loop at <paramref name="rate"/> or closed at <paramref name="concurrency"/>.</summary>
    private static async Task<LoopResult> SendLoop(HttpClient http, string[] talkers, string[] listeners,
        Dictionary<string, AuthenticationHeaderValue> tokens, int concurrency, double? rate, TimeSpan warmup, TimeSpan duration,
        ConcurrentDictionary<string, long>? acks)
    {
        var run = Guid.NewGuid().ToString("N")[..6];
        var origin = Stopwatch.GetTimestamp();
        var measureFrom = origin + (long)(warmup.TotalSeconds * Stopwatch.Frequency);
        var end = measureFrom + (long)(duration.TotalSeconds * Stopwatch.Frequency);
        var latencies = new ConcurrentBag<double>();
        long counter = 0, measured = 0;

        async Task SendOne(long due)
        {
            var n = Interlocked.Increment(ref counter);
            var from = talkers[Random.Shared.Next(talkers.Length)];
            var to = listeners[Random.Shared.Next(listeners.Length)];
            var cmid = $"{run}-{n}";
            using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/messages")
            {
                Content = new StringContent(
                    $"{{\"recipientIds\":[\"{to}\"],\"message\":\"live benchmark message {n}\",\"clientMessageId\":\"{cmid}\"}}",
                    Encoding.UTF8, "application/json"),
            };
            request.Headers.Authorization = tokens[from];
            using var response = await http.SendAsync(request);
            var done = Stopwatch.GetTimestamp();
            if (!response.IsSuccessStatusCode || due < measureFrom || due >= end)
                return;
            Interlocked.Increment(ref measured);
            latencies.Add((done - due) * TickMs);
            acks?.TryAdd(cmid, done);
        }

        if (rate is { } perSecond)
        {
            var sends = new List<Task>();
            var interval = Stopwatch.Frequency / perSecond;
            for (long i = 0; ; i++)
            {
                var due = origin + (long)(i * interval);
                if (due >= end)
                    break;
                var wait = (due - Stopwatch.GetTimestamp()) * TickMs;
                if (wait > 1)
                    await Task.Delay(TimeSpan.FromMilliseconds(wait));
                sends.Add(SendOne(due));
            }
            await Task.WhenAll(sends);
        }
        else
        {
            await Task.WhenAll(Enumerable.Range(0, concurrency).Select(async _ =>
            {
                while (Stopwatch.GetTimestamp() < end)
                    await SendOne(Stopwatch.GetTimestamp());
            }));
        }
        var sorted = latencies.Order().ToArray();
        double Q(double q) => sorted.Length == 0 ? double.NaN : sorted[Math.Min(sorted.Length - 1, (int)(q * sorted.Length))];
        return new LoopResult(measured / duration.TotalSeconds, Q(0.5), Q(0.99));
    }
}
