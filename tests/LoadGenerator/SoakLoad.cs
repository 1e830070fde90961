using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;

namespace Messaging.LoadGenerator;

/// <summary>
/// The soak's open loop and its read-back. Like <see cref="LoadRunner"/> (user i writes to users i+1..i+contacts, a
/// share of operations resend an acknowledged clientMessageId, a share read, latency from when each operation was due),
/// but reported per interval, with every acknowledged send remembered (when it went out, when it was acknowledged) for
/// <see cref="VerifyAsync"/>, and with users in contiguous cohorts of which one at a time is idle.
/// </summary>
public sealed class SoakLoad
{
    private static readonly double TickMs = 1000.0 / Stopwatch.Frequency;

    private readonly SoakOptions _o;
    private readonly HttpClient _http;
    private readonly HttpClient _admin;
    private readonly string[] _users;
    private readonly AuthenticationHeaderValue[] _auth;
    private readonly Sender[] _senders;
    private readonly int _nodePid;
    private readonly Dictionary<string, Func<double>> _cpuSources;
    private readonly string _runId = Guid.NewGuid().ToString("N")[..8];
    private readonly Lock _recordLock = new();
    private readonly Dictionary<string, long> _errorsTotal = [];
    private Window _window = new();
    private long _origin;
    private readonly InFlight _inFlight = new();

    public SoakLoad(SoakOptions options, Uri node, byte[] signingKey, int nodePid, int adminPort, Dictionary<string, Func<double>> cpuSources)
    {
        _o = options;
        _nodePid = nodePid;
        _cpuSources = cpuSources;
        _http = new HttpClient(new SocketsHttpHandler
        {
            MaxConnectionsPerServer = 512,
            PooledConnectionLifetime = Timeout.InfiniteTimeSpan,
            UseProxy = false,
        })
        { BaseAddress = node, Timeout = options.Timeout };
        _admin = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{adminPort}"), Timeout = TimeSpan.FromSeconds(5) };
        _users = [.. Enumerable.Range(0, options.Users).Select(i => $"u{i:D6}")];
        _auth = [.. _users.Select(u => new AuthenticationHeaderValue("Bearer", Jwt.Mint(u, signingKey, TimeSpan.FromDays(2))))];
        _senders = [.. _users.Select(_ => new Sender(options.Contacts))];
    }

    public Dictionary<string, long> ErrorsTotal()
    {
        lock (_recordLock)
            return new Dictionary<string, long>(_errorsTotal);
    }

    public async Task<List<SoakRow>> RunAsync(double sendRate)
    {
        await PrimeAsync();
        if (_o.Prefill > 0)
            await PrefillAsync();
        var opsRate = sendRate / (1 - _o.ReadShare);
        var total = TimeSpan.FromMinutes(_o.Minutes);
        Console.WriteLine($"soak: {sendRate:0} sends/s ({_o.RetryShare:P0} of operations retries) + reads ({_o.ReadShare:P0} of operations) = {opsRate:0} operations/s, " +
                          $"open loop, {_o.Users} users, {total.TotalMinutes:0.#} min, a row every {_o.Interval.TotalSeconds:0} s");
        Console.WriteLine(_o.Cohorts > 1
            ? $"idle users: {_o.Cohorts} cohorts of ~{_o.Users / _o.Cohorts} users, each idle in turn for {_o.EffectiveIdleFor.TotalSeconds:0} s " +
              $"(passivation after {(_o.PassivateAfter ?? TimeSpan.FromMinutes(2)).TotalSeconds:0} s idle)"
            : "idle users: none (--cohorts 1)");
        Console.WriteLine("managed heap: the node's /metrics (System.Runtime's heap size after the last GC, all generations)");

        var rows = new List<SoakRow>();
        _origin = Stopwatch.GetTimestamp();
        var end = _origin + (long)(total.TotalSeconds * Stopwatch.Frequency);
        var cpu = new CpuWindow(_cpuSources);
        cpu.Start();
        var lastRow = _origin;
        using var stopReporting = new CancellationTokenSource();
        var reporter = Task.Run(async () =>
        {
            for (var k = 1; ; k++)
            {
                var at = _origin + (long)(k * _o.Interval.TotalSeconds * Stopwatch.Frequency);
                if (at >= end)
                    return;
                var wait = TimeSpan.FromSeconds((at - Stopwatch.GetTimestamp()) / (double)Stopwatch.Frequency);
                if (wait > TimeSpan.Zero)
                    await Task.Delay(wait, stopReporting.Token);
                rows.Add(await RowAsync(lastRow, cpu));
                lastRow = Stopwatch.GetTimestamp();
                cpu = new CpuWindow(_cpuSources);
                cpu.Start();
                Console.WriteLine(Line(rows[^1]));
            }
        });

        await OpenLoop(opsRate, end);
        await reporter;
        // What is still outstanding ends in the last row (a request has at most the client timeout).
        var drain = Stopwatch.StartNew();
        while (_inFlight.Current > 0 && drain.Elapsed < _o.Timeout + TimeSpan.FromSeconds(5))
            await Task.Delay(50);
        if (_inFlight.Current > 0)
            Error(ErrorKind.Timeout, $"still outstanding {drain.Elapsed.TotalSeconds:0} s after the end");
        rows.Add(await RowAsync(lastRow, cpu));
        Console.WriteLine(Line(rows[^1]));
        await stopReporting.CancelAsync();
        return rows;
    }

    private async Task PrimeAsync()
    {
        var clock = Stopwatch.StartNew();
        var failed = 0;
        await Parallel.ForEachAsync(Enumerable.Range(0, _users.Length), new ParallelOptions { MaxDegreeOfParallelism = 32 }, async (u, _) =>
        {
            if ((await Exchange(() => Get(u, $"/v1/users/{_users[u]}/conversations?count=1"))).Status != 200)
                Interlocked.Increment(ref failed);
        });
        Console.WriteLine($"primed {_users.Length} mailboxes in {clock.Elapsed.TotalSeconds:0.0} s ({failed} failed)");
    }

    /// <summary>
    /// Before the soak, every user sends <see cref="SoakOptions.Prefill"/> messages, round-robin over its contacts, in
    /// a closed loop (64 in flight): the soak then starts with users whose windows (and, with a dedup window that small,
    /// dedup windows) are already at their bounds, so what its memory does is the load's, not state still filling. The
    /// sends are remembered and read back like the soak's; their errors count; their latency is not in the rows.
    /// </summary>
    private async Task PrefillAsync()
    {
        var clock = Stopwatch.StartNew();
        var total = (long)_o.Prefill * _users.Length;
        var next = -1L;
        await Parallel.ForEachAsync(Enumerable.Range(0, 64), new ParallelOptions { MaxDegreeOfParallelism = 64 }, async (_, _) =>
        {
            for (var i = Interlocked.Increment(ref next); i < total; i = Interlocked.Increment(ref next))
            {
                var (round, u) = ((int)(i / _users.Length), (int)(i % _users.Length));
                await Send(u, round % _o.Contacts, _senders[u].Next(), Stopwatch.GetTimestamp());
            }
        });
        long errors;
        lock (_recordLock)
        {
            errors = _window.Errors.Values.Sum();
            _window = new Window();
        }
        Console.WriteLine($"prefilled: {total} sends ({_o.Prefill} per user) in {clock.Elapsed.TotalSeconds:0} s " +
                          $"({total / clock.Elapsed.TotalSeconds:0} sends/s), {errors} errors");
    }

    private Task OpenLoop(double rate, long end) =>
        Pacing.OpenLoop(rate, _origin, end, _inFlight, _o.MaxOutstanding,
            _ => Error(ErrorKind.Dropped, $"dropped ({_o.MaxOutstanding} outstanding)"), One);

    /// <summary>The cohort idle at this moment, or -1.</summary>
    private int IdleCohort(long ticks) => _o.Cohorts <= 1
        ? -1
        : (int)((ticks - _origin) / (double)Stopwatch.Frequency / _o.EffectiveIdleFor.TotalSeconds) % _o.Cohorts;

    /// <summary>Contiguous ranges: user i's contacts (i+1..i+3) are in its own cohort except at the edges, so an idle cohort receives next to nothing.</summary>
    private int Cohort(int u) => (int)((long)u * _o.Cohorts / _users.Length);

    private int Contact(int u, int k) => (u + 1 + k) % _users.Length;

    private async Task One(Random random, long dueAt)
    {
        var idle = IdleCohort(dueAt);
        int u;
        do
            u = random.Next(_users.Length);
        while (Cohort(u) == idle);
        var sender = _senders[u];
        var roll = random.NextDouble();
        if (roll < _o.ReadShare)
        {
            var k = sender.AnyContactSentTo(random);
            if (k >= 0 && roll < _o.ReadShare / 2)
                await Read(u, $"/v1/users/{_users[u]}/conversations/{ConversationId(u, Contact(u, k))}/messages?count=50", "thread", dueAt);
            else
                await Read(u, $"/v1/users/{_users[u]}/conversations?count=20", "list", dueAt);
        }
        else if (roll < _o.ReadShare + _o.RetryShare && sender.LastAcked() is { } earlier)
            await Retry(u, earlier);
        else
        {
            var k = random.Next(_o.Contacts);
            await Send(u, k, sender.Next(), dueAt);
        }
    }

    private string ConversationId(int a, int b) =>
        string.CompareOrdinal(_users[a], _users[b]) < 0 ? $"dm~{_users[a]}~{_users[b]}" : $"dm~{_users[b]}~{_users[a]}";

    /// <summary>The n-th send of user u (its clientMessageId and text follow from u, k and n, so only n is remembered).</summary>
    private string ClientMessageId(int u, long n) => $"{_runId}-{_users[u]}-{n}";

    private async Task Send(int u, int k, long n, long dueAt)
    {
        var issuedAt = Stopwatch.GetTimestamp();
        var (status, body, failure, attempts) = await Exchange(() => Post(u, k, n));
        var done = Stopwatch.GetTimestamp();
        // A send answered 503 and tried again may have been stored the first time: then the retry says Duplicate.
        var (outcome, messageId) = status == 200 ? Parse(body) : (null, null);
        if (messageId is not null && (outcome is "Sent" or "Accepted" || (outcome is "Duplicate" && attempts > 1)))
        {
            _senders[u].Acked(k, new AckedSend(n, issuedAt, done), messageId);
            Done(send: true, (done - dueAt) * TickMs);
            return;
        }
        _senders[u].Unknown(k, n);
        if (status == 200)
            Error(ErrorKind.Mismatch, $"send: {Parse(body).Status} for a new clientMessageId");
        else
            HttpError("send", status, failure);
    }

    private async Task Retry(int u, LastSend earlier)
    {
        var (status, body, failure, _) = await Exchange(() => Post(u, earlier.K, earlier.N));
        if (status != 200)
            HttpError("retry", status, failure);
        else if (Parse(body) is not ("Duplicate", { } messageId) || messageId != earlier.MessageId)
            Error(ErrorKind.Mismatch, $"retry: {Parse(body).Status} {(Parse(body).MessageId == earlier.MessageId ? "same" : "another")} messageId");
        else
            Done(send: true, null);
    }

    private async Task Read(int u, string path, string what, long dueAt)
    {
        var (status, _, failure, _) = await Exchange(() => Get(u, path));
        if (status == 200)
            Done(send: false, (Stopwatch.GetTimestamp() - dueAt) * TickMs);
        else
            HttpError(what, status, failure);
    }

    private HttpRequestMessage Get(int u, string path)
    {
        var request = new HttpRequestMessage(HttpMethod.Get, path);
        request.Headers.Authorization = _auth[u];
        return request;
    }

    private HttpRequestMessage Post(int u, int k, long n)
    {
        var recipient = _users[Contact(u, k)];
        var text = $"hi {recipient} #{n} ".PadRight(_o.TextLength, 'x')[.._o.TextLength];
        var body = $"{{\"recipientIds\":[\"{recipient}\"],\"message\":\"{text}\",\"clientMessageId\":\"{ClientMessageId(u, n)}\"}}";
        var request = new HttpRequestMessage(HttpMethod.Post, "/v1/messages")
        {
            Content = new StringContent(body, Encoding.UTF8, "application/json"),
        };
        request.Headers.Authorization = _auth[u];
        return request;
    }

    private static (string? Status, string? MessageId) Parse(byte[] body)
    {
        try
        {
            using var json = JsonDocument.Parse(body);
            return (json.RootElement.GetProperty("sendStatus").GetString(), json.RootElement.GetProperty("messageId").GetString());
        }
        catch (Exception ex) when (ex is JsonException or KeyNotFoundException or InvalidOperationException)
        {
            return (null, null);
        }
    }

    /// <summary>
    /// One request as a client following the API would make it: a 503 or 429 with <c>Retry-After</c> is tried again
    /// after that long (the same request: a send keeps its clientMessageId, so a retry is safe), as long as the answer
    /// can still come within <see cref="SoakOptions.Timeout"/> of the first try. Each such answer counts as retried
    /// (<c>--client-retries off</c>: none is tried again, each is an error).
    /// </summary>
    private async Task<(int Status, byte[] Body, ErrorKind Failure, int Attempts)> Exchange(Func<HttpRequestMessage> make)
    {
        var started = Stopwatch.GetTimestamp();
        for (var attempt = 1; ; attempt++)
        {
            using var request = make();
            // Every attempt within what is left of the operation's budget, so one operation never outlasts it.
            using var budget = new CancellationTokenSource(_o.Timeout - Stopwatch.GetElapsedTime(started));
            try
            {
                using var response = await _http.SendAsync(request, budget.Token);
                var status = (int)response.StatusCode;
                var body = await response.Content.ReadAsByteArrayAsync(budget.Token);
                if (_o.ClientRetries && status is 503 or 429 && response.Headers.RetryAfter?.Delta is { } delay &&
                    Stopwatch.GetElapsedTime(started) + delay + TimeSpan.FromSeconds(1) < _o.Timeout)
                {
                    lock (_recordLock)
                        _window.Retried++;
                    await Task.Delay(delay, CancellationToken.None);
                    continue;
                }
                return (status, body, ErrorKind.Status, attempt);
            }
            catch (OperationCanceledException)
            {
                return (0, [], ErrorKind.Timeout, attempt); // the operation's budget (--timeout)
            }
            catch (HttpRequestException)
            {
                return (0, [], ErrorKind.Transport, attempt);
            }
        }
    }

    // ---------------- per-interval figures ----------------

    private enum ErrorKind { Status, Timeout, Transport, Mismatch, Dropped }

    private sealed class Window
    {
        public readonly List<double> SendMs = new(1 << 14);
        public readonly List<double> ReadMs = new(1 << 14);
        public long Sends;
        public long Reads;
        public readonly Dictionary<string, long> Errors = [];
        public long Status5xx, Status4xx, Timeouts, Transport, Mismatches, Dropped;
        // Answers 503 or 429 with Retry-After that the client tried again (not errors unless the last try fails).
        public long Retried;
    }

    /// <summary>A send or retry (latency only for new sends) or a read, answered 200, in the current window.</summary>
    private void Done(bool send, double? ms)
    {
        lock (_recordLock)
        {
            if (send)
            {
                _window.Sends++;
                if (ms is { } s)
                    _window.SendMs.Add(s);
            }
            else
            {
                _window.Reads++;
                _window.ReadMs.Add(ms ?? 0);
            }
        }
    }

    private void HttpError(string op, int status, ErrorKind failure)
    {
        if (failure == ErrorKind.Timeout)
            Error(failure, $"{op}: timeout ({_o.Timeout.TotalSeconds:0} s)");
        else if (failure == ErrorKind.Transport)
            Error(failure, $"{op}: transport error");
        else
            Error(ErrorKind.Status, $"{op}: HTTP {status}", status);
    }

    private void Error(ErrorKind kind, string what, int status = 0)
    {
        lock (_recordLock)
        {
            _window.Errors[what] = _window.Errors.GetValueOrDefault(what) + 1;
            _errorsTotal[what] = _errorsTotal.GetValueOrDefault(what) + 1;
            switch (kind)
            {
                case ErrorKind.Status when status >= 500: _window.Status5xx++; break;
                case ErrorKind.Status: _window.Status4xx++; break;
                case ErrorKind.Timeout: _window.Timeouts++; break;
                case ErrorKind.Transport: _window.Transport++; break;
                case ErrorKind.Mismatch: _window.Mismatches++; break;
                case ErrorKind.Dropped: _window.Dropped++; break;
            }
        }
    }

    private async Task<SoakRow> RowAsync(long since, CpuWindow cpu)
    {
        Window w;
        lock (_recordLock)
        {
            w = _window;
            _window = new Window();
        }
        var now = Stopwatch.GetTimestamp();
        var seconds = Math.Max(1e-3, (now - since) / (double)Stopwatch.Frequency);
        var cores = cpu.Stop();
        var metrics = await ScrapeAsync();
        w.SendMs.Sort();
        w.ReadMs.Sort();
        return new SoakRow(
            (now - _origin) / (double)Stopwatch.Frequency, IdleCohort(since), w.Sends / seconds, w.Reads / seconds,
            w.Status5xx, w.Status4xx, w.Timeouts, w.Transport, w.Mismatches, w.Dropped, w.Errors, w.Retried,
            Percentile(w.SendMs, 0.50), Percentile(w.SendMs, 0.99), w.SendMs.Count > 0 ? w.SendMs[^1] : 0,
            Percentile(w.ReadMs, 0.50), Percentile(w.ReadMs, 0.99),
            ProcStats.StatusBytes(_nodePid, "VmRSS") / 1048576.0, ProcStats.StatusBytes(_nodePid, "VmHWM") / 1048576.0,
            metrics.HeapBytes / 1048576.0, metrics.Mailboxes, metrics.Shed, cores.GetValueOrDefault("server"),
            cores.GetValueOrDefault("postgres"), cores.GetValueOrDefault("loadgen"), cores.GetValueOrDefault("machine"),
            ProcStats.LoadAverage1());
    }

    private static double Percentile(List<double> sorted, double p) =>
        sorted.Count == 0 ? 0 : sorted[Math.Min(sorted.Count - 1, (int)Math.Ceiling(p * sorted.Count) - 1)];

    /// <summary>
    /// From the node's Prometheus endpoint (admin port): messaging.mailboxes.active, the managed heap after the last
    /// GC summed over the generations (System.Runtime's dotnet.gc.last_collection.heap.size) and messaging.mailboxes.shed;
    /// each null if the node does not answer or does not export it (a release without the memory governor has no shed
    /// count: its rows show "-", not 0).
    /// </summary>
    private async Task<(long? Mailboxes, double? HeapBytes, long? Shed)> ScrapeAsync()
    {
        try
        {
            var text = await _admin.GetStringAsync("/metrics");
            long? mailboxes = null, shed = null;
            double? heap = null;
            foreach (var line in text.Split('\n'))
            {
                var mailbox = line.StartsWith("messaging_mailboxes_active", StringComparison.Ordinal);
                var shedLine = line.StartsWith("messaging_mailboxes_shed", StringComparison.Ordinal);
                if (!mailbox && !shedLine && !line.StartsWith("dotnet_gc_last_collection_heap_size_bytes", StringComparison.Ordinal))
                    continue;
                var value = line[(line.LastIndexOf(' ') + 1)..];
                if (!double.TryParse(value, NumberStyles.Float, CultureInfo.InvariantCulture, out var v))
                    continue;
                if (mailbox)
                    mailboxes = (mailboxes ?? 0) + (long)v;
                else if (shedLine)
                    shed = (shed ?? 0) + (long)v;
                else
                    heap = (heap ?? 0) + v;
            }
            return (mailboxes, heap, shed);
        }
        catch (Exception ex) when (ex is HttpRequestException or TaskCanceledException)
        {
            return (null, null, null);
        }
    }

    private static string Line(SoakRow r) =>
        $"[soak] {r.ElapsedSeconds / 60,5:0.0} min idle {(r.IdleCohort < 0 ? "-" : r.IdleCohort.ToString(CultureInfo.InvariantCulture))} " +
        $"sends/s {r.SendsPerSecond,5:0} reads/s {r.ReadsPerSecond,5:0} errors {r.Errors.Values.Sum(),4} retried {r.Retried,4} " +
        $"send p50/p99/max {Table.Ms(r.SendP50Ms)}/{Table.Ms(r.SendP99Ms)}/{Table.Ms(r.SendMaxMs)} ms read p50/p99 {Table.Ms(r.ReadP50Ms)}/{Table.Ms(r.ReadP99Ms)} ms " +
        $"RSS {r.RssMiB:0} HWM {r.HwmMiB:0} heap {(r.ManagedHeapMiB is { } h ? h.ToString("0", CultureInfo.InvariantCulture) : "-")} MiB " +
        $"mailboxes {r.MailboxesActive?.ToString(CultureInfo.InvariantCulture) ?? "-"} shed {r.MailboxesShed?.ToString(CultureInfo.InvariantCulture) ?? "-"} CPU node {r.NodeCores:0.00} pg {r.PostgresCores:0.00} load {r.LoadAverage1:0.0}";

    // ---------------- the read-back ----------------

    /// <summary>
    /// Reads back, for every sender (or <see cref="SoakOptions.VerifyUsers"/> of them at random), both copies of each
    /// conversation it sent in (its own mailbox's and the recipient's), every page, and checks each acknowledged
    /// clientMessageId of this run is there exactly once, and that a send acknowledged before another went out is
    /// stored before it; a send whose outcome is unknown (error, timeout) may be there at most once. A pair that fails
    /// is read again up to 3 times, 10 s apart, since an Accepted send's recipient copy follows asynchronously.
    /// </summary>
    public async Task<Verification> VerifyAsync()
    {
        var clock = Stopwatch.StartNew();
        var all = Enumerable.Range(0, _users.Length).Where(u => _senders[u].HasAny).ToList();
        var senders = _o.VerifyUsers > 0 && _o.VerifyUsers < all.Count
            ? [.. all.OrderBy(_ => Random.Shared.Next()).Take(_o.VerifyUsers).Order()]
            : all;
        var scope = senders.Count == all.Count ? $"all {all.Count} senders" : $"a random sample of {senders.Count} of {all.Count} senders";
        var pairs = senders.SelectMany(u => Enumerable.Range(0, _o.Contacts).Where(k => _senders[u].HasAnyTo(k)).Select(k => (U: u, K: k))).ToList();
        var acknowledged = pairs.Sum(p => (long)_senders[p.U].AckedTo(p.K).Count);
        Console.WriteLine($"verifying {scope}: {pairs.Count} pairs, {acknowledged} acknowledged sends, both copies ...");
        await Task.Delay(TimeSpan.FromSeconds(5)); // recipient copies of the last Accepted sends

        var reads = 0L;
        var results = new PairResult[pairs.Count];
        var pending = Enumerable.Range(0, pairs.Count).ToList();
        for (var attempt = 0; attempt < 4 && pending.Count > 0; attempt++)
        {
            if (attempt > 0)
            {
                Console.WriteLine($"  {pending.Count} pairs not right yet; reading them again in 10 s");
                await Task.Delay(TimeSpan.FromSeconds(10));
            }
            await Parallel.ForEachAsync(pending, new ParallelOptions { MaxDegreeOfParallelism = 16 }, async (i, _) =>
            {
                var (u, k) = pairs[i];
                var (result, pages) = await CheckPairAsync(u, k);
                results[i] = result;
                Interlocked.Add(ref reads, pages);
            });
            pending = [.. pending.Where(i => !results[i].Ok)];
        }
        var examples = results.Where(r => !r.Ok).SelectMany(r => r.Examples).Take(10).ToList();
        return new Verification(scope, senders.Count, pairs.Count, acknowledged, reads, clock.Elapsed.TotalSeconds,
            results.Sum(r => r.Missing), results.Sum(r => r.Duplicated), results.Sum(r => r.Reordered),
            results.Sum(r => r.UnknownTwice), results.Sum(r => r.Unreadable), examples);
    }

    private sealed record PairResult(long Missing, long Duplicated, long Reordered, long UnknownTwice, long Unreadable, List<string> Examples)
    {
        public bool Ok => Missing == 0 && Duplicated == 0 && Reordered == 0 && UnknownTwice == 0 && Unreadable == 0;
    }

    private async Task<(PairResult Result, long Pages)> CheckPairAsync(int u, int k)
    {
        var recipient = Contact(u, k);
        var conversation = ConversationId(u, recipient);
        var acked = _senders[u].AckedTo(k);
        var unknown = _senders[u].UnknownTo(k);
        long missing = 0, duplicated = 0, reordered = 0, unknownTwice = 0, unreadable = 0, pages = 0;
        var examples = new List<string>();
        foreach (var owner in new[] { u, recipient })
        {
            var copy = owner == u ? "sender's copy" : "recipient's copy";
            var (thread, read) = await ReadThreadAsync(owner, conversation);
            pages += read;
            if (thread is null)
            {
                unreadable++;
                examples.Add($"{_users[owner]} {conversation}: unreadable");
                continue;
            }
            var seqs = new Dictionary<string, List<long>>(StringComparer.Ordinal);
            foreach (var (seq, senderId, clientMessageId) in thread)
            {
                if (senderId == _users[u] && clientMessageId is not null)
                    (seqs.TryGetValue(clientMessageId, out var list) ? list : seqs[clientMessageId] = []).Add(seq);
            }
            var placed = new List<(AckedSend Send, long Seq)>(acked.Count);
            foreach (var send in acked)
            {
                var id = ClientMessageId(u, send.N);
                var found = seqs.GetValueOrDefault(id);
                if (found is null)
                {
                    missing++;
                    examples.Add($"{copy} {_users[owner]} {conversation}: {id} acknowledged, not stored");
                }
                else if (found.Count > 1)
                {
                    duplicated++;
                    examples.Add($"{copy} {_users[owner]} {conversation}: {id} stored {found.Count} times (seq {string.Join(", ", found)})");
                }
                else
                    placed.Add((send, found[0]));
            }
            foreach (var id in unknown.Select(n => ClientMessageId(u, n)).Where(id => seqs.GetValueOrDefault(id) is { Count: > 1 }))
            {
                unknownTwice++;
                examples.Add($"{copy} {_users[owner]} {conversation}: {id} (outcome unknown to the client) stored {seqs[id].Count} times");
            }
            // Order: a send acknowledged before another went out must be stored before it. Sweep the sends in the
            // order they went out, keeping the highest seq among those acknowledged before that moment.
            var byAck = placed.OrderBy(p => p.Send.AckedAt).ToList();
            var highest = (Seq: long.MinValue, N: 0L);
            var j = 0;
            foreach (var (send, seq) in placed.OrderBy(p => p.Send.IssuedAt))
            {
                for (; j < byAck.Count && byAck[j].Send.AckedAt < send.IssuedAt; j++)
                {
                    if (byAck[j].Seq > highest.Seq)
                        highest = (byAck[j].Seq, byAck[j].Send.N);
                }
                if (highest.Seq >= seq)
                {
                    reordered++;
                    examples.Add($"{copy} {_users[owner]} {conversation}: {ClientMessageId(u, send.N)} (seq {seq}) went out after {ClientMessageId(u, highest.N)} (seq {highest.Seq}) was acknowledged");
                }
            }
        }
        return (new PairResult(missing, duplicated, reordered, unknownTwice, unreadable, examples), pages);
    }

    /// <summary>Every message of one mailbox's copy of a conversation, newest page first, 200 at a time; null if a page could not be read.</summary>
    private async Task<(List<(long Seq, string SenderId, string? ClientMessageId)>? Thread, long Pages)> ReadThreadAsync(int owner, string conversation)
    {
        var messages = new List<(long, string, string?)>();
        long? before = null;
        long pages = 0;
        while (true)
        {
            var path = $"/v1/users/{_users[owner]}/conversations/{conversation}/messages?count=200" + (before is { } b ? $"&beforeSeq={b}" : "");
            byte[]? body = null;
            for (var attempt = 0; attempt < 6 && body is null; attempt++)
            {
                if (attempt > 0)
                    await Task.Delay(TimeSpan.FromSeconds(attempt));
                var (status, payload, _, _) = await Exchange(() => Get(owner, path));
                pages++;
                if (status == 200)
                    body = payload;
                else if (status == 404)
                    return (messages, pages); // no such conversation in this mailbox: every acknowledged send is missing
            }
            if (body is null)
                return (null, pages);
            using var json = JsonDocument.Parse(body);
            var page = json.RootElement.GetProperty("messages");
            if (page.GetArrayLength() == 0)
                return (messages, pages);
            var lowest = long.MaxValue;
            foreach (var m in page.EnumerateArray())
            {
                var seq = m.GetProperty("seq").GetInt64();
                lowest = Math.Min(lowest, seq);
                messages.Add((seq, m.GetProperty("senderId").GetString() ?? "",
                    m.TryGetProperty("clientMessageId", out var id) && id.ValueKind == JsonValueKind.String ? id.GetString() : null));
            }
            if (lowest <= 1)
                return (messages, pages);
            before = lowest;
        }
    }

    // ---------------- what each sender remembers ----------------

    /// <summary>An acknowledged send: its number, when it went out and when it was acknowledged (Stopwatch ticks). 24 bytes, for millions.</summary>
    private readonly record struct AckedSend(long N, long IssuedAt, long AckedAt);

    /// <summary>The send a retry repeats, with the messageId its Duplicate must carry.</summary>
    private sealed record LastSend(int K, long N, string MessageId);

    private sealed class Sender(int contacts)
    {
        private readonly Lock _lock = new();
        private readonly List<AckedSend>[] _acked = [.. Enumerable.Range(0, contacts).Select(_ => new List<AckedSend>())];
        private readonly List<long>[] _unknown = [.. Enumerable.Range(0, contacts).Select(_ => new List<long>())];
        private long _counter;
        private LastSend? _last;

        public long Next()
        {
            lock (_lock)
                return ++_counter;
        }

        public void Acked(int k, AckedSend send, string messageId)
        {
            lock (_lock)
            {
                _acked[k].Add(send);
                _last = new LastSend(k, send.N, messageId);
            }
        }

        public void Unknown(int k, long n)
        {
            lock (_lock)
                _unknown[k].Add(n);
        }

        public LastSend? LastAcked()
        {
            lock (_lock)
                return _last;
        }

        public bool HasAny
        {
            get { lock (_lock) return _acked.Any(l => l.Count > 0) || _unknown.Any(l => l.Count > 0); }
        }

        public bool HasAnyTo(int k)
        {
            lock (_lock)
                return _acked[k].Count > 0 || _unknown[k].Count > 0;
        }

        public List<AckedSend> AckedTo(int k)
        {
            lock (_lock)
                return [.. _acked[k]];
        }

        public List<long> UnknownTo(int k)
        {
            lock (_lock)
                return [.. _unknown[k]];
        }

        /// <summary>A contact this user has an acknowledged send to (so the conversation exists), or -1.</summary>
        public int AnyContactSentTo(Random random)
        {
            lock (_lock)
            {
                var start = random.Next(_acked.Length);
                for (var i = 0; i < _acked.Length; i++)
                {
                    var k = (start + i) % _acked.Length;
                    if (_acked[k].Count > 0)
                        return k;
                }
                return -1;
            }
        }
    }
}
