using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Npgsql;

namespace Messaging.LoadGenerator;

/// <summary>
/// Group fan-out (docs/benchmarks.md, "Groups"): a throwaway PostgreSQL and one node (Release). For each group size, a
/// group of that many members, then a closed loop of sends from random members. The node's DeliveryWait is raised
/// to 25 s so that every send is answered <c>Sent</c> exactly when the last member's copy is stored: the answer's
/// latency is the time until the last copy. Journal rows per send are counted in the journal table; CPU per send is
/// the node's and PostgreSQL's.
/// </summary>
public static class GroupBench
{
    private static readonly double TickMs = 1000.0 / Stopwatch.Frequency;

    public static async Task<int> RunAsync(Args a)
    {
        var sizes = (a.Str("sizes") ?? "8,256,1024").Split(',').Select(s => int.Parse(s, CultureInfo.InvariantCulture)).ToArray();
        var concurrency = a.Int("concurrency", 16);
        var warmup = a.Seconds("warmup", 3);
        var duration = a.Seconds("duration", 15);
        var rounds = a.Int("rounds", 3);
        var jsonPath = a.Str("json");
        a.RejectUnknown();

        ThreadPool.GetMinThreads(out var workers, out var io);
        ThreadPool.SetMinThreads(Math.Max(workers, 64), Math.Max(io, 64));
        var runDir = Path.Combine(Path.GetTempPath(), $"messaging-groups-{DateTime.UtcNow:yyyyMMdd-HHmmss}");
        Directory.CreateDirectory(runDir);
        var key = Convert.ToBase64String(System.Security.Cryptography.RandomNumberGenerator.GetBytes(48));
        var keyBytes = Encoding.UTF8.GetBytes(key);
        Console.WriteLine($"machine: {Environment.ProcessorCount} cores, {Bench.CpuModel()}, {Bench.MemoryGiB():0} GiB; load average {ProcStats.LoadAverage1():0.00}");
        await using var pg = await PostgresServer.StartAsync(durable: true);
        var postmaster = pg.PostmasterPid ?? throw new InvalidOperationException("postmaster.pid missing");
        var env = Bench.NodeEnvironment(pg, key, runDir);
        env["Messaging__Mailbox__DeliveryWait"] = "00:00:25";
        env["Messaging__Http__AskTimeout"] = "00:00:30";
        env["Messaging__RateLimit__SendsPerSecond"] = "100000";
        env["Messaging__RateLimit__Burst"] = "100000";
        Console.WriteLine($"starting the node ({Repository.NodeDll}) ...");
        await using var node = new NodeProcess("messaging", FreePorts.Next(), runDir, env);
        await node.StartAsync(TimeSpan.FromSeconds(90));

        using var http = new HttpClient(new SocketsHttpHandler { MaxConnectionsPerServer = int.MaxValue, UseProxy = false })
        { BaseAddress = node.HttpUri, Timeout = TimeSpan.FromSeconds(60) };
        await using var journal = NpgsqlDataSource.Create(pg.ConnectionStringFor("messaging"));

        var results = new List<GroupResult>();
        foreach (var size in sizes)
        {
            var members = Enumerable.Range(0, size).Select(i => $"g{size}m{i:D4}").ToArray();
            var tokens = members.ToDictionary(m => m, m => new AuthenticationHeaderValue("Bearer", Jwt.Mint(m, keyBytes, TimeSpan.FromHours(6))));
            using (var create = new HttpRequestMessage(HttpMethod.Post, "/v1/groups"))
            {
                create.Headers.Authorization = tokens[members[0]];
                create.Content = JsonContent.Create(new { name = $"bench {size}", memberIds = members[1..], clientRequestId = $"bench-{size}" });
                using var response = await http.SendAsync(create);
                response.EnsureSuccessStatusCode();
                var groupId = (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("conversationId").GetString()!;
                Console.WriteLine($"group of {size}: {groupId}; warming up {warmup.TotalSeconds:0} s ...");
                await Loop(http, groupId, members, tokens, concurrency, warmup);
                for (var round = 1; round <= rounds; round++)
                {
                    await Task.Delay(TimeSpan.FromSeconds(2)); // confirmations of the warmup settle
                    var rowsBefore = await JournalRows(journal);
                    var nodeCpu = ProcStats.CpuSeconds(node.Pid);
                    var pgCpu = ProcStats.TreeCpuSeconds(postmaster);
                    var loop = await Loop(http, groupId, members, tokens, concurrency, duration);
                    var nodeCpuMs = (ProcStats.CpuSeconds(node.Pid) - nodeCpu) * 1000 / Math.Max(1, loop.Sends);
                    var pgCpuMs = (ProcStats.TreeCpuSeconds(postmaster) - pgCpu) * 1000 / Math.Max(1, loop.Sends);
                    var rows = await JournalRows(journal) - rowsBefore;
                    var result = new GroupResult(size, round, loop.Sends, loop.Sends / duration.TotalSeconds, rows / (double)Math.Max(1, loop.Sends),
                        nodeCpuMs, pgCpuMs, loop.P50, loop.P99, loop.Max, loop.SentShare, ProcStats.LoadAverage1());
                    results.Add(result);
                    Console.WriteLine($"  round {round}/{rounds}: {result.SendsPerSecond:0} sends/s, {result.JournalRowsPerSend:0.0} journal rows/send, " +
                        $"node {nodeCpuMs:0.00} + postgres {pgCpuMs:0.00} CPU ms/send, last copy stored p50 {Table.Ms(loop.P50)} ms p99 {Table.Ms(loop.P99)} ms, " +
                        $"Sent {loop.SentShare:P0}, load average {result.LoadAverage:0.00}");
                }
            }
        }

        Console.WriteLine(Table.Format(
            ["members", "sends/s (median)", "journal rows/send", "node CPU ms/send", "postgres CPU ms/send", "last copy p50 ms", "last copy p99 ms", "Sent"],
            sizes.Select(size =>
            {
                var of = results.Where(r => r.Members == size).ToList();
                double Median(Func<GroupResult, double> f) => Bench.Median(of.Select(f));
                return (IReadOnlyList<string>)
                [
                    size.ToString(CultureInfo.InvariantCulture), Median(r => r.SendsPerSecond).ToString("0", CultureInfo.InvariantCulture),
                    Median(r => r.JournalRowsPerSend).ToString("0.0", CultureInfo.InvariantCulture),
                    Median(r => r.NodeCpuMsPerSend).ToString("0.00", CultureInfo.InvariantCulture),
                    Median(r => r.PostgresCpuMsPerSend).ToString("0.00", CultureInfo.InvariantCulture),
                    Table.Ms(Median(r => r.P50)), Table.Ms(Median(r => r.P99)), Median(r => r.SentShare).ToString("P0", CultureInfo.InvariantCulture),
                ];
            })));
        if (jsonPath is not null)
            await File.WriteAllTextAsync(jsonPath, JsonSerializer.Serialize(results, new JsonSerializerOptions { WriteIndented = true }));
        return 0;
    }

    public sealed record GroupResult(
        int Members, int Round, int Sends, double SendsPerSecond, double JournalRowsPerSend, double NodeCpuMsPerSend,
        double PostgresCpuMsPerSend, double P50, double P99, double Max, double SentShare, double LoadAverage);

    private sealed record LoopResult(int Sends, double P50, double P99, double Max, double SentShare);

    private static async Task<long> JournalRows(NpgsqlDataSource journal)
    {
        await using var command = journal.CreateCommand("SELECT count(*) FROM journal");
        return (long)(await command.ExecuteScalarAsync())!;
    }

    /// <summary><paramref name="concurrency"/> workers, each sending as a random member and waiting for the answer.</summary>
    private static async Task<LoopResult> Loop(HttpClient http, string groupId, string[] members,
        Dictionary<string, AuthenticationHeaderValue> tokens, int concurrency, TimeSpan duration)
    {
        var end = Stopwatch.GetTimestamp() + (long)(duration.TotalSeconds * Stopwatch.Frequency);
        var latencies = new ConcurrentBag<double>();
        var sent = 0;
        var other = 0;
        await Task.WhenAll(Enumerable.Range(0, concurrency).Select(async _ =>
        {
            while (Stopwatch.GetTimestamp() < end)
            {
                var from = members[Random.Shared.Next(members.Length)];
                using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/messages");
                request.Headers.Authorization = tokens[from];
                request.Content = JsonContent.Create(new { conversationId = groupId, message = "dinner at 8? bring the good bread", clientMessageId = Guid.NewGuid().ToString() });
                var started = Stopwatch.GetTimestamp();
                using var response = await http.SendAsync(request);
                var body = await response.Content.ReadAsStringAsync();
                if (!response.IsSuccessStatusCode)
                    throw new InvalidOperationException($"send to {groupId} answered {(int)response.StatusCode}: {body}");
                latencies.Add((Stopwatch.GetTimestamp() - started) * TickMs);
                if (body.Contains("\"Sent\"", StringComparison.Ordinal))
                    Interlocked.Increment(ref sent);
                else
                    Interlocked.Increment(ref other);
            }
        }));
        var sorted = latencies.Order().ToArray();
        double P(double q) => sorted.Length == 0 ? double.NaN : sorted[Math.Min(sorted.Length - 1, (int)(q * sorted.Length))];
        return new LoopResult(sorted.Length, P(0.5), P(0.99), sorted.Length == 0 ? double.NaN : sorted[^1], sent / (double)Math.Max(1, sent + other));
    }
}
