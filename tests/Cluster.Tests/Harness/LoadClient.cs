using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;

namespace Messaging.Cluster.Tests.Harness;

public sealed record LoadOptions
{
    public int Users { get; init; } = 50;
    public int ContactsPerUser { get; init; } = 3;
    /// <summary>Each user's pause after an acknowledged send; bounds the offered load (50 users x 10/s at most).</summary>
    public TimeSpan PauseBetweenSends { get; init; } = TimeSpan.FromMilliseconds(100);
    public TimeSpan AttemptTimeout { get; init; } = TimeSpan.FromSeconds(10);
    /// <summary>After StopAsync each user still retries its unacknowledged send this long.</summary>
    public TimeSpan DrainWithin { get; init; } = TimeSpan.FromSeconds(60);
    public string RunId { get; init; } = Guid.NewGuid().ToString("N")[..6];
}

/// <summary>An acknowledged send: Sent, Accepted or Duplicate, with what the server answered.</summary>
public sealed record AckedSend(string SenderId, string RecipientId, int Index, string ClientMessageId, string Text,
    string MessageId, string ConversationId, long ServerTimestamp, string SendStatus, int Attempts, TimeSpan Took)
{
    /// <summary>The node that answered with the acknowledgement, and when (since the load started).</summary>
    public Uri? Endpoint { get; init; }
    public TimeSpan At { get; init; }
}

/// <summary>
/// One attempt as the client saw it: the node asked, when (since the load started) and what came back: the HTTP
/// status, or "timeout" or "connection error". What clients on each side of a partition were told.
/// </summary>
public sealed record Answer(TimeSpan At, Uri Endpoint, string SenderId, string ClientMessageId, string Outcome);

public sealed record LoadReport(
    long Attempts, long Acknowledged, long Unavailable503, long Timeouts, long ConnectionErrors, long RateLimited,
    long OtherFailures, long AcceptedNotSent, long DuplicateAnswers, TimeSpan MaxNoAckWindow, TimeSpan LongestSend,
    TimeSpan Duration, IReadOnlyList<string> Problems, int AbortedAtDrain)
{
    public override string ToString() =>
        $"attempted {Attempts} requests, acknowledged {Acknowledged} sends ({AcceptedNotSent} Accepted, {DuplicateAnswers} Duplicate), " +
        $"{AbortedAtDrain} still unacknowledged at the drain deadline, " +
        $"503s {Unavailable503}, timeouts {Timeouts}, connection errors {ConnectionErrors}, 429s {RateLimited}, other failures {OtherFailures}, " +
        $"max window with no acknowledged send {MaxNoAckWindow.TotalSeconds:0.00} s, longest single send {LongestSend.TotalSeconds:0.00} s, " +
        $"over {Duration.TotalSeconds:0} s ({(Duration.TotalSeconds > 0 ? Acknowledged / Duration.TotalSeconds : 0):0} sends/s)";
}

/// <summary>
/// Many users, each sending sequentially numbered messages round-robin to a few contacts with unique clientMessageIds.
/// A send is retried with the SAME clientMessageId (on the next node) after a 503, a timeout or a connection error
/// until it is acknowledged; only then does the user send the next one, so each sender's order is well defined.
/// </summary>
public sealed class LoadClient : IAsyncDisposable
{
    private readonly LoadOptions _options = new();
    private readonly Func<IReadOnlyList<Uri>> _endpoints;
    private readonly string _signingKey;
    private readonly HttpClient _http;
    private readonly CancellationTokenSource _stop = new();
    private readonly CancellationTokenSource _abort = new();
    private readonly ConcurrentQueue<AckedSend> _acks = new();
    private readonly ConcurrentQueue<Answer> _answers = new();
    private readonly ConcurrentQueue<string> _problems = new();
    private readonly ConcurrentQueue<(string SenderId, string ClientMessageId)> _aborted = new();
    private readonly Stopwatch _clock = new();
    private readonly object _gapGate = new();
    private Task[] _users = [];
    private long _attempts, _unavailable, _timeouts, _connectionErrors, _rateLimited, _other, _accepted, _duplicates;
    private long _lastAckTicks = -1, _maxGapTicks, _longestSendTicks;
    private bool _gapClosed;
    private TimeSpan _duration;

    public LoadClient(Func<IReadOnlyList<Uri>> endpoints, string signingKey)
    {
        _endpoints = endpoints;
        _signingKey = signingKey;
        _http = new HttpClient(new SocketsHttpHandler
        {
            ConnectTimeout = TimeSpan.FromSeconds(2),
            // Connections to a node that went away are dropped soon, not reused for minutes.
            PooledConnectionLifetime = TimeSpan.FromSeconds(5),
            PooledConnectionIdleTimeout = TimeSpan.FromSeconds(5),
        })
        { Timeout = Timeout.InfiniteTimeSpan };
        UserIds = [.. Enumerable.Range(0, _options.Users).Select(i => $"user{i:00}-{_options.RunId}")];
    }

    public IReadOnlyList<string> UserIds { get; }
    public LoadOptions Options => _options;
    public IReadOnlyCollection<AckedSend> Acks => _acks;
    public long AcknowledgedCount => _acks.Count;
    /// <summary>Time since the load started: the clock of <see cref="Answer.At"/> and <see cref="AckedSend.At"/>.</summary>
    public TimeSpan Elapsed => _clock.Elapsed;
    /// <summary>Every attempt's answer, by node, in the order they came.</summary>
    public IReadOnlyCollection<Answer> Answers => _answers;
    /// <summary>Sends still unacknowledged when the drain deadline passed: their fate is unknown (stored or not).</summary>
    public IReadOnlyCollection<(string SenderId, string ClientMessageId)> Aborted => _aborted;

    public IReadOnlyList<string> ContactsOf(int user)
    {
        var n = _options.Users;
        var step = Math.Max(1, (n - 1) / Math.Max(1, _options.ContactsPerUser));
        return [.. Enumerable.Range(0, _options.ContactsPerUser)
            .Select(k => (user + 1 + k * step) % n)
            .Where(c => c != user)
            .Distinct()
            .Select(c => UserIds[c])];
    }

    public void Start()
    {
        _clock.Start();
        _users = [.. Enumerable.Range(0, _options.Users).Select(u => Task.Run(() => RunUserAsync(u)))];
    }

    public Task WaitForAcksAsync(long moreThan, TimeSpan within) =>
        Eventually.AssertAsync(() => Task.FromResult(AcknowledgedCount > moreThan), within,
            () => $"the load got no more than {moreThan} acknowledgements ({Report()})");

    /// <summary>Stop starting new sends; let each user finish (retry until acknowledged) the one it has started.</summary>
    public async Task<LoadReport> StopAsync()
    {
        lock (_gapGate)
        {
            // The window with no acknowledgement is measured while everyone sends: close it at the stop (during the
            // drain only a few users have a send left, so silence there says nothing about the service).
            var now = _clock.Elapsed.Ticks;
            if (_lastAckTicks >= 0 && !_stop.IsCancellationRequested && now - _lastAckTicks > _maxGapTicks)
                _maxGapTicks = now - _lastAckTicks;
            _gapClosed = true;
        }
        _stop.Cancel();
        _abort.CancelAfter(_options.DrainWithin);
        await Task.WhenAll(_users);
        _clock.Stop();
        _duration = _clock.Elapsed;
        return Report();
    }

    public LoadReport Report()
    {
        var gapTicks = Interlocked.Read(ref _maxGapTicks);
        return new LoadReport(
            Interlocked.Read(ref _attempts), _acks.Count, Interlocked.Read(ref _unavailable), Interlocked.Read(ref _timeouts),
            Interlocked.Read(ref _connectionErrors), Interlocked.Read(ref _rateLimited), Interlocked.Read(ref _other),
            Interlocked.Read(ref _accepted), Interlocked.Read(ref _duplicates),
            TimeSpan.FromTicks(gapTicks), TimeSpan.FromTicks(Interlocked.Read(ref _longestSendTicks)),
            _duration == default ? _clock.Elapsed : _duration, [.. _problems], _aborted.Count);
    }

    private async Task RunUserAsync(int user)
    {
        var sender = UserIds[user];
        var contacts = ContactsOf(user);
        var token = Api.Token(_signingKey, sender);
        for (var index = 1; !_stop.IsCancellationRequested; index++)
        {
            var recipient = contacts[(index - 1) % contacts.Count];
            var request = new SendRequest(sender, [recipient], $"{sender} to {recipient} #{index}", $"{_options.RunId}-{sender}-{index}");
            var acked = await SendUntilAcknowledgedAsync(user, index, token, request);
            if (!acked)
            {
                _aborted.Enqueue((sender, request.ClientMessageId)); // counted; the verifier allows it to be stored or not
                return;
            }
            try { await Task.Delay(_options.PauseBetweenSends, _stop.Token); }
            catch (OperationCanceledException) { return; }
        }
    }

    private async Task<bool> SendUntilAcknowledgedAsync(int user, int index, string token, SendRequest request)
    {
        var started = _clock.Elapsed;
        for (var attempt = 1; ; attempt++)
        {
            if (_abort.IsCancellationRequested)
                return false;
            var endpoints = _endpoints();
            if (endpoints.Count == 0)
            {
                await PauseAsync(TimeSpan.FromMilliseconds(200));
                continue;
            }
            var endpoint = endpoints[(user + attempt - 1) % endpoints.Count];
            Interlocked.Increment(ref _attempts);
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(_abort.Token);
            timeout.CancelAfter(_options.AttemptTimeout);
            try
            {
                using var message = Api.Authorized(HttpMethod.Post, new Uri(endpoint, "/v1/messages"), token, request);
                using var response = await _http.SendAsync(message, timeout.Token);
                var body = await ReadAsync(response, timeout.Token);
                _answers.Enqueue(new Answer(_clock.Elapsed, endpoint, request.SenderId, request.ClientMessageId, ((int)response.StatusCode).ToString()));
                switch (response.StatusCode)
                {
                    case HttpStatusCode.OK when body is { MessageId: not null, ConversationId: not null }:
                        RecordAck(request, index, body, attempt, _clock.Elapsed - started, endpoint);
                        return true;
                    case HttpStatusCode.ServiceUnavailable:
                        Interlocked.Increment(ref _unavailable);
                        await PauseAsync(RetryAfter(response, TimeSpan.FromMilliseconds(200)));
                        break;
                    case HttpStatusCode.TooManyRequests:
                        Interlocked.Increment(ref _rateLimited);
                        await PauseAsync(RetryAfter(response, TimeSpan.FromSeconds(1)));
                        break;
                    case >= HttpStatusCode.InternalServerError:
                        // A 500/502/504 is a bug by the contract (timeouts must be 503); count it, and the retry stays safe.
                        Interlocked.Increment(ref _other);
                        Problem($"{request.ClientMessageId} attempt {attempt} at {endpoint}: {(int)response.StatusCode} {body?.Title} {body?.Detail}");
                        await PauseAsync(TimeSpan.FromMilliseconds(200));
                        break;
                    default:
                        // 4xx other than 429 will not change by retrying: the send is lost to the client, which is a failure.
                        Interlocked.Increment(ref _other);
                        Problem($"{request.ClientMessageId} attempt {attempt} at {endpoint}: {(int)response.StatusCode} {body?.SendStatus} {body?.Title} {body?.Detail}; giving up on it");
                        return true;
                }
            }
            catch (OperationCanceledException) when (!_abort.IsCancellationRequested)
            {
                _answers.Enqueue(new Answer(_clock.Elapsed, endpoint, request.SenderId, request.ClientMessageId, "timeout"));
                Interlocked.Increment(ref _timeouts);
            }
            catch (OperationCanceledException)
            {
                return false;
            }
            catch (HttpRequestException)
            {
                _answers.Enqueue(new Answer(_clock.Elapsed, endpoint, request.SenderId, request.ClientMessageId, "connection error"));
                Interlocked.Increment(ref _connectionErrors);
                await PauseAsync(TimeSpan.FromMilliseconds(100));
            }
        }
    }

    private void RecordAck(SendRequest request, int index, SendResponse body, int attempts, TimeSpan took, Uri endpoint)
    {
        var status = body.SendStatus ?? "?";
        if (status == "Accepted")
            Interlocked.Increment(ref _accepted);
        if (status == "Duplicate")
        {
            Interlocked.Increment(ref _duplicates);
            if (attempts == 1)
                Problem($"{request.ClientMessageId}: Duplicate on its first attempt");
        }
        else if (status != "Sent" && status != "Accepted")
            Problem($"{request.ClientMessageId}: unexpected sendStatus {status} with 200");

        _acks.Enqueue(new AckedSend(request.SenderId, request.RecipientIds[0], index, request.ClientMessageId, request.Message,
            body.MessageId!, body.ConversationId!, body.ServerTimestamp, status, attempts, took)
        { Endpoint = endpoint, At = _clock.Elapsed });
        lock (_gapGate)
        {
            var now = _clock.Elapsed.Ticks;
            if (!_gapClosed && _lastAckTicks >= 0 && now - _lastAckTicks > _maxGapTicks)
                _maxGapTicks = now - _lastAckTicks;
            _lastAckTicks = now;
            if (took.Ticks > _longestSendTicks)
                _longestSendTicks = took.Ticks;
        }
    }

    private void Problem(string text)
    {
        if (_problems.Count < 200)
            _problems.Enqueue(text);
    }

    private static async Task<SendResponse?> ReadAsync(HttpResponseMessage response, CancellationToken cancel)
    {
        try
        {
            return response.Content.Headers.ContentLength == 0
                ? null
                : await response.Content.ReadFromJsonAsync<SendResponse>(Api.Json, cancel);
        }
        catch (System.Text.Json.JsonException)
        {
            return null;
        }
    }

    private static TimeSpan RetryAfter(HttpResponseMessage response, TimeSpan fallback)
    {
        var delta = response.Headers.RetryAfter?.Delta;
        // Honour the hint but keep probing: a long Retry-After would only widen the measured window.
        return delta is { } d && d > TimeSpan.Zero ? TimeSpan.FromTicks(Math.Min(d.Ticks, TimeSpan.FromSeconds(1).Ticks)) : fallback;
    }

    private async Task PauseAsync(TimeSpan delay)
    {
        try { await Task.Delay(delay, _abort.Token); }
        catch (OperationCanceledException) { }
    }

    public async ValueTask DisposeAsync()
    {
        if (!_stop.IsCancellationRequested)
        {
            _abort.Cancel();
            await StopAsync();
        }
        _http.Dispose();
        _stop.Dispose();
        _abort.Dispose();
    }
}
