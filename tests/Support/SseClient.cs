using System.Net;
using System.Net.Http.Headers;
using System.Text.Json;
using System.Threading.Channels;

namespace Messaging.Testing;

/// <summary>One Server-Sent Event as a client parses it: its type, id (null when it has none) and JSON data.</summary>
public sealed record SseEvent(string Type, long? Id, JsonElement Data);

/// <summary>
/// A live-events client, parsing text/event-stream the way a browser's EventSource does (event, id, data lines; a blank
/// line ends an event; lines starting with ':' are comments). Events and comments are read in the background into
/// channels; <see cref="Ended"/> completes when the server closes the stream.
/// </summary>
public sealed class SseClient : IAsyncDisposable
{
    private readonly HttpResponseMessage _response;
    private readonly CancellationTokenSource _stop = new();
    private readonly Channel<SseEvent> _events = Channel.CreateUnbounded<SseEvent>();
    private readonly Task _reading;
    private int _comments;
    private long _lastEventId = -1;

    private SseClient(HttpResponseMessage response)
    {
        _response = response;
        _reading = Task.Run(ReadAsync);
    }

    public HttpStatusCode Status => _response.StatusCode;

    /// <summary>The last id the server gave, in an event or an id-only block, as EventSource keeps it (null: none yet).</summary>
    public long? LastEventId => Interlocked.Read(ref _lastEventId) is var id and >= 0 ? id : null;

    /// <summary>Comment lines (keep-alives) seen so far.</summary>
    public int Comments => Volatile.Read(ref _comments);

    /// <summary>Completes when the server ends the stream (or the connection breaks).</summary>
    public Task Ended => _reading;

    /// <summary>
    /// Opens the stream. A non-200 answer is returned as it is (read it with <see cref="ProblemAsync"/>), so a test can
    /// assert 401/403/429.
    /// </summary>
    public static async Task<SseClient> ConnectAsync(
        HttpClient client, string userId, long? lastEventId = null, string query = "", CancellationToken cancellationToken = default)
    {
        var request = new HttpRequestMessage(HttpMethod.Get, $"/v1/users/{userId}/events{query}");
        request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue("text/event-stream"));
        if (lastEventId is { } id)
            request.Headers.Add("Last-Event-ID", id.ToString(System.Globalization.CultureInfo.InvariantCulture));
        var response = await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cancellationToken);
        return new SseClient(response);
    }

    public async Task<JsonElement> ProblemAsync() =>
        JsonDocument.Parse(await _response.Content.ReadAsStringAsync()).RootElement.Clone();

    /// <summary>The next event, or an exception naming what was expected when none comes within <paramref name="within"/>.</summary>
    public async Task<SseEvent> NextAsync(TimeSpan within, string? expecting = null)
    {
        using var timeout = new CancellationTokenSource(within);
        try
        {
            return await _events.Reader.ReadAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            throw new TimeoutException($"no event within {within.TotalSeconds:0.#} s{(expecting is null ? "" : $" (expected {expecting})")}");
        }
        catch (ChannelClosedException)
        {
            throw new InvalidOperationException($"the stream ended{(expecting is null ? "" : $" (expected {expecting})")}");
        }
    }

    /// <summary>The next event of <paramref name="type"/>, skipping others.</summary>
    public async Task<SseEvent> NextAsync(string type, TimeSpan within)
    {
        var deadline = DateTime.UtcNow + within;
        while (true)
        {
            var left = deadline - DateTime.UtcNow;
            var next = await NextAsync(left > TimeSpan.Zero ? left : TimeSpan.FromMilliseconds(1), $"a {type} event");
            if (next.Type == type)
                return next;
        }
    }

    /// <summary>Every event that arrives within <paramref name="quiet"/> of the previous one.</summary>
    public async Task<List<SseEvent>> DrainAsync(TimeSpan quiet)
    {
        var all = new List<SseEvent>();
        while (true)
        {
            try
            {
                all.Add(await NextAsync(quiet));
            }
            catch (Exception e) when (e is TimeoutException or InvalidOperationException)
            {
                return all;
            }
        }
    }

    private async Task ReadAsync()
    {
        try
        {
            if (_response.StatusCode != HttpStatusCode.OK)
                return;
            using var reader = new StreamReader(await _response.Content.ReadAsStreamAsync(_stop.Token));
            string? type = null, id = null;
            var data = new List<string>();
            while (await reader.ReadLineAsync(_stop.Token) is { } line)
            {
                if (line.Length == 0)
                {
                    if (data.Count > 0)
                    {
                        var json = JsonDocument.Parse(string.Join('\n', data)).RootElement.Clone();
                        await _events.Writer.WriteAsync(new SseEvent(type ?? "message", id is null ? null : long.Parse(id), json));
                    }
                    type = id = null;
                    data.Clear();
                }
                else if (line[0] == ':')
                    Interlocked.Increment(ref _comments);
                else if (line.StartsWith("event: ", StringComparison.Ordinal))
                    type = line[7..];
                else if (line.StartsWith("id: ", StringComparison.Ordinal))
                {
                    id = line[4..];
                    Interlocked.Exchange(ref _lastEventId, long.Parse(id, System.Globalization.CultureInfo.InvariantCulture));
                }
                else if (line.StartsWith("data: ", StringComparison.Ordinal))
                    data.Add(line[6..]);
            }
        }
        catch (Exception e) when (e is OperationCanceledException or IOException or HttpRequestException)
        {
            // closed by us or by the server
        }
        finally
        {
            _events.Writer.TryComplete();
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        _response.Dispose();
        try
        {
            await _reading;
        }
        catch (OperationCanceledException)
        {
        }
        _stop.Dispose();
    }
}
