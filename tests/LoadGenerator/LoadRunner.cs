using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;

namespace Messaging.LoadGenerator;

public sealed record LoadOptions
{
    public required string Url { get; init; }
    public required byte[] SigningKey { get; init; }
    public string Label { get; init; } = "load";
    public int Users { get; init; } = 10_000;
    public int Contacts { get; init; } = 3;
    /// <summary>Share of operations that resend an earlier clientMessageId (answer must be Duplicate).</summary>
    public double RetryShare { get; init; } = 0.05;
    /// <summary>Share of operations that read: half conversation lists, half thread pages.</summary>
    public double ReadShare { get; init; }
    /// <summary>Open loop at this many operations per second; null = closed loop at <see cref="Concurrency"/>.</summary>
    public double? Rate { get; init; }
    public int Concurrency { get; init; } = 64;
    public int MaxOutstanding { get; init; } = 5_000;
    public TimeSpan Warmup { get; init; } = TimeSpan.FromSeconds(5);
    public TimeSpan Duration { get; init; } = TimeSpan.FromSeconds(20);
    public int TextLength { get; init; } = 40;
    public string RunId { get; init; } = Guid.NewGuid().ToString("N")[..8];
    public Dictionary<string, Func<double>> CpuSources { get; init; } = [];
    public int? ServerPid { get; init; }
    /// <summary>Read every user's conversation list once before the warmup, so each mailbox is live (recovered) as an active user's is.</summary>
    public bool Prime { get; init; } = true;
}

public sealed record LoadResult(
    string Label,
    string Mode,
    double Seconds,
    double SendsPerSecond,
    double ReadsPerSecond,
    List<OpSummary> Ops,
    Dictionary<string, long> Statuses,
    Dictionary<string, long> Errors,
    long Dropped,
    Dictionary<string, double> CpuCores,
    double ServerCpuCores,
    long ServerPeakBytes,
    long ServerRssBytes);

/// <summary>
/// Drives the v1 API like many clients: each user sends to a few contacts (unique clientMessageIds), some sends are
/// retried (expect Duplicate), some operations read. Latency of an open-loop operation is measured from when it was
/// due, not when it went out, so a stalled server is not hidden (no coordinated omission).
/// </summary>
public sealed class LoadRunner
{
    private readonly LoadOptions _o;
    private readonly HttpClient _http;
    private readonly string[] _users;
    private readonly AuthenticationHeaderValue[] _auth;
    private readonly UserState[] _state;
    private readonly OpRecorder _send = new("send");
    private readonly OpRecorder _retry = new("retry");
    private readonly OpRecorder _list = new("conversations");
    private readonly OpRecorder _thread = new("thread page");
    private readonly ConcurrentDictionary<string, long> _statuses = new();
    private readonly ConcurrentDictionary<string, long> _errors = new();
    private long _dropped;
    private long _completed;
    private long _completedReads;
    private readonly InFlight _inFlight = new();
    private long _measureStart;
    private long _measureEnd = long.MaxValue;
    private static readonly double TickMs = 1000.0 / Stopwatch.Frequency;

    public LoadRunner(LoadOptions options)
    {
        _o = options;
        _http = new HttpClient(new SocketsHttpHandler
        {
            MaxConnectionsPerServer = options.Rate is null ? options.Concurrency : 512,
            PooledConnectionLifetime = Timeout.InfiniteTimeSpan,
            UseProxy = false,
        })
        {
            BaseAddress = new Uri(options.Url),
            Timeout = TimeSpan.FromSeconds(30),
        };
        _users = [.. Enumerable.Range(0, options.Users).Select(i => $"u{i:D6}")];
        _auth = [.. _users.Select(u => new AuthenticationHeaderValue("Bearer", Jwt.Mint(u, options.SigningKey, TimeSpan.FromHours(6))))];
        _state = [.. _users.Select(_ => new UserState())];
    }

    public async Task<LoadResult> RunAsync()
    {
        ThreadPool.GetMinThreads(out var workers, out var io);
        ThreadPool.SetMinThreads(Math.Max(workers, 64), Math.Max(io, 64));
        if (_o.Prime)
            await PrimeAsync();
        var cpu = new CpuWindow(_o.CpuSources);
        var clock = Stopwatch.StartNew();
        var origin = Stopwatch.GetTimestamp();
        _measureStart = origin + (long)(_o.Warmup.TotalSeconds * Stopwatch.Frequency);
        _measureEnd = _measureStart + (long)(_o.Duration.TotalSeconds * Stopwatch.Frequency);
        var total = _o.Warmup + _o.Duration;

        using var progressStop = new CancellationTokenSource();
        var progress = Task.Run(() => Progress(clock, progressStop.Token));
        var measuring = Task.Run(async () =>
        {
            await Task.Delay(_o.Warmup);
            cpu.Start();
            await Task.Delay(_o.Duration);
            return cpu.Stop();
        });

        if (_o.Rate is { } rate)
            await OpenLoop(rate, origin, total);
        else
            await ClosedLoop(total);

        var cores = await measuring;
        var drain = Stopwatch.StartNew();
        while (_inFlight.Current > 0 && drain.Elapsed < TimeSpan.FromSeconds(30))
            await Task.Delay(50);
        await progressStop.CancelAsync();
        await progress;
        Console.Error.WriteLine();

        var seconds = _o.Duration.TotalSeconds;
        var ops = new List<OpSummary> { _send.Summary(seconds), _retry.Summary(seconds), _list.Summary(seconds), _thread.Summary(seconds) };
        var sends = ops[0].Count + ops[1].Count;
        var reads = ops[2].Count + ops[3].Count;
        var pid = _o.ServerPid;
        return new LoadResult(
            _o.Label,
            _o.Rate is { } r ? $"open {r:0}/s" : $"closed c={_o.Concurrency}",
            seconds,
            sends / seconds,
            reads / seconds,
            ops,
            new Dictionary<string, long>(_statuses),
            new Dictionary<string, long>(_errors),
            _dropped,
            cores,
            cores.GetValueOrDefault("server"),
            pid is { } p ? ProcStats.StatusBytes(p, "VmHWM") : 0,
            pid is { } q ? ProcStats.StatusBytes(q, "VmRSS") : 0);
    }

    private async Task PrimeAsync()
    {
        var clock = Stopwatch.StartNew();
        var next = -1;
        var failed = 0;
        await Task.WhenAll(Enumerable.Range(0, Math.Min(_o.Concurrency, 64)).Select(_ => Task.Run(async () =>
        {
            for (var u = Interlocked.Increment(ref next); u < _users.Length; u = Interlocked.Increment(ref next))
            {
                using var request = new HttpRequestMessage(HttpMethod.Get, $"/v1/users/{_users[u]}/conversations?count=1");
                request.Headers.Authorization = _auth[u];
                if ((await Exchange(request)).Status != 200)
                    Interlocked.Increment(ref failed);
            }
        })));
        Console.Error.WriteLine($"[{_o.Label}] primed {_users.Length} users in {clock.Elapsed.TotalSeconds:0.0} s ({_users.Length / clock.Elapsed.TotalSeconds:0}/s, {failed} failed)");
    }

    private Task OpenLoop(double rate, long origin, TimeSpan total) =>
        Pacing.OpenLoop(rate, origin, origin + (long)(total.TotalSeconds * Stopwatch.Frequency), _inFlight, _o.MaxOutstanding,
            dueAt =>
            {
                if (dueAt >= _measureStart && dueAt < _measureEnd)
                    Interlocked.Increment(ref _dropped);
            },
            One);

    private async Task ClosedLoop(TimeSpan total)
    {
        var deadline = Stopwatch.StartNew();
        var workers = Enumerable.Range(0, _o.Concurrency).Select(w => Task.Run(async () =>
        {
            var random = new Random(w * 7919 + 1);
            while (deadline.Elapsed < total)
            {
                Interlocked.Increment(ref _inFlight.Count);
                try { await One(random, Stopwatch.GetTimestamp()); }
                finally { Interlocked.Decrement(ref _inFlight.Count); }
            }
        })).ToArray();
        await Task.WhenAll(workers);
    }

    private async Task One(Random random, long dueAt)
    {
        var u = random.Next(_users.Length);
        var roll = random.NextDouble();
        if (roll < _o.ReadShare)
        {
            var contact = _state[u].AnyConversationContact(random, _o.Contacts);
            if (contact >= 0 && roll < _o.ReadShare / 2)
                await Thread(u, Contact(u, contact), dueAt);
            else
                await List(u, dueAt);
        }
        else if (roll < _o.ReadShare + _o.RetryShare && _state[u].LastSend() is { } earlier)
        {
            await Send(u, earlier, dueAt, _retry, expect: "Duplicate");
        }
        else
        {
            var k = random.Next(_o.Contacts);
            var recipient = Contact(u, k);
            var n = _state[u].Next();
            var text = $"hi {_users[recipient]} #{n} ".PadRight(_o.TextLength, 'x')[.._o.TextLength];
            var send = new PendingSend(_users[recipient], text, $"{_o.RunId}-{_users[u]}-{n}", k);
            await Send(u, send, dueAt, _send, expect: null);
        }
    }

    private int Contact(int u, int k) => (u + 1 + k) % _users.Length;

    private async Task Send(int u, PendingSend send, long dueAt, OpRecorder recorder, string? expect)
    {
        var body = $"{{\"recipientIds\":[\"{send.Recipient}\"],\"message\":\"{send.Text}\",\"clientMessageId\":\"{send.ClientMessageId}\"}}";
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/messages")
        {
            Content = new StringContent(body, Encoding.UTF8, "application/json"),
        };
        request.Headers.Authorization = _auth[u];
        var (status, payload) = await Exchange(request);
        var done = Stopwatch.GetTimestamp();
        Interlocked.Increment(ref _completed);
        string? sendStatus = null;
        if (status == 200)
        {
            using var json = JsonDocument.Parse(payload);
            sendStatus = json.RootElement.GetProperty("sendStatus").GetString();
            _statuses.AddOrUpdate($"{recorder.Name}:{sendStatus}", 1, (_, c) => c + 1);
            if (expect is null)
                _state[u].Completed(send);
            if (expect is not null && sendStatus != expect && sendStatus is not ("Sent" or "Accepted"))
                _errors.AddOrUpdate($"{recorder.Name}: {sendStatus} (expected {expect})", 1, (_, c) => c + 1);
        }
        else
        {
            _errors.AddOrUpdate($"{recorder.Name}: HTTP {status}", 1, (_, c) => c + 1);
        }
        if (status == 200 && dueAt >= _measureStart && dueAt < _measureEnd)
            recorder.Add((done - dueAt) * TickMs);
    }

    private async Task List(int u, long dueAt)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, $"/v1/users/{_users[u]}/conversations?count=20");
        request.Headers.Authorization = _auth[u];
        await Read(request, dueAt, _list);
    }

    private async Task Thread(int u, int contact, long dueAt)
    {
        var a = _users[u];
        var b = _users[contact];
        var conversation = string.CompareOrdinal(a, b) < 0 ? $"dm~{a}~{b}" : $"dm~{b}~{a}";
        using var request = new HttpRequestMessage(HttpMethod.Get, $"/v1/users/{a}/conversations/{conversation}/messages?count=50");
        request.Headers.Authorization = _auth[u];
        await Read(request, dueAt, _thread);
    }

    private async Task Read(HttpRequestMessage request, long dueAt, OpRecorder recorder)
    {
        var (status, _) = await Exchange(request);
        var done = Stopwatch.GetTimestamp();
        Interlocked.Increment(ref _completedReads);
        if (status != 200)
            _errors.AddOrUpdate($"{recorder.Name}: HTTP {status}", 1, (_, c) => c + 1);
        else if (dueAt >= _measureStart && dueAt < _measureEnd)
            recorder.Add((done - dueAt) * TickMs);
    }

    private async Task<(int Status, byte[] Body)> Exchange(HttpRequestMessage request)
    {
        try
        {
            using var response = await _http.SendAsync(request);
            return ((int)response.StatusCode, await response.Content.ReadAsByteArrayAsync());
        }
        catch (Exception ex) when (ex is HttpRequestException or TaskCanceledException)
        {
            return (0, []);
        }
    }

    private async Task Progress(Stopwatch clock, CancellationToken stop)
    {
        long lastSends = 0, lastReads = 0;
        var interactive = !Console.IsErrorRedirected;
        var lastPrint = TimeSpan.Zero;
        try
        {
            while (!stop.IsCancellationRequested)
            {
                await Task.Delay(1000, stop);
                var sends = Interlocked.Read(ref _completed);
                var reads = Interlocked.Read(ref _completedReads);
                var phase = Stopwatch.GetTimestamp() < _measureStart ? "warmup" : "measure";
                var recent = _send.Summary(1, Math.Max(0, _send.Count - 2000));
                var line = $"[{_o.Label}] {clock.Elapsed.TotalSeconds,5:0}s {phase,-7} sends/s {sends - lastSends,6} reads/s {reads - lastReads,6} " +
                           $"send p99 {Table.Ms(recent.P99Ms),6} ms  outstanding {_inFlight.Current,5} errors {_errors.Values.Sum(),5} dropped {_dropped}";
                lastSends = sends;
                lastReads = reads;
                if (interactive)
                    Console.Error.Write("\r" + line + "   ");
                else if (clock.Elapsed - lastPrint >= TimeSpan.FromSeconds(5))
                {
                    Console.Error.WriteLine(line);
                    lastPrint = clock.Elapsed;
                }
            }
        }
        catch (OperationCanceledException) { }
    }

    private sealed record PendingSend(string Recipient, string Text, string ClientMessageId, int ContactIndex);

    private sealed class UserState
    {
        private readonly Lock _lock = new();
        private long _counter;
        private PendingSend? _last;
        private int _sentTo;

        public long Next()
        {
            lock (_lock)
                return ++_counter;
        }

        public void Completed(PendingSend send)
        {
            lock (_lock)
            {
                _last = send;
                _sentTo |= 1 << Math.Min(send.ContactIndex, 30);
            }
        }

        public PendingSend? LastSend()
        {
            lock (_lock)
                return _last;
        }

        /// <summary>A contact index this user has a conversation with (from its own sends), or -1.</summary>
        public int AnyConversationContact(Random random, int contacts)
        {
            int mask;
            lock (_lock)
                mask = _sentTo;
            if (mask == 0)
                return -1;
            for (var attempt = 0; attempt < 8; attempt++)
            {
                var k = random.Next(Math.Min(contacts, 31));
                if ((mask & (1 << k)) != 0)
                    return k;
            }
            return System.Numerics.BitOperations.TrailingZeroCount(mask);
        }
    }
}
