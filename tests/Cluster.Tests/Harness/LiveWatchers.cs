using System.Collections.Concurrent;
using System.Net.Http.Headers;
using System.Text.Json;

namespace Messaging.Cluster.Tests.Harness;

/// <summary>
/// Live-event clients for some of the load's users, held open on one chosen node for as long as it serves (so the
/// mailboxes they follow live on other nodes and move under them), and reconnecting, like a real client, with the id
/// of the last event they processed whenever a stream ends. They mark what they see as read, so receipts travel too.
/// At the end, <see cref="Check"/> compares what they saw with the threads the verifier read: every change reached
/// each client as an event or in a catch-up, ids never went backwards, and no receipt or marker ever moved back.
/// </summary>
public sealed class LiveWatchers : IAsyncDisposable
{
    private readonly IReadOnlyList<string> _users;
    private readonly Func<IReadOnlyList<Uri>> _endpoints;
    private readonly Func<Uri?> _preferred;
    private readonly string _signingKey;
    private readonly Action<string> _log;
    private readonly CancellationTokenSource _stop = new();
    private readonly ConcurrentDictionary<string, Watcher> _watchers = new();
    private readonly List<Task> _loops = [];

    private sealed class Watcher(string user)
    {
        public string User { get; } = user;
        public long LastId;
        public int Connections;
        public int Events;
        public int LiveMessages;
        public DateTime LastReceiptPost = DateTime.MinValue;
        // Per conversation: the highest lastSeq an event showed, and the messages events carried (seq -> sender, cmid).
        public readonly Dictionary<string, long> LastSeq = [];
        public readonly Dictionary<string, long> ReadUpToSeq = [];
        public readonly Dictionary<(string Conversation, string Other), (long Delivered, long Read)> Receipts = [];
        public readonly Dictionary<(string Conversation, long Seq), (string Sender, string ClientMessageId)> Messages = [];
        public readonly List<string> Violations = [];
    }

    public LiveWatchers(IReadOnlyList<string> users, Func<IReadOnlyList<Uri>> endpoints, Func<Uri?> preferred, string signingKey, Action<string> log)
    {
        _users = users;
        _endpoints = endpoints;
        _preferred = preferred;
        _signingKey = signingKey;
        _log = log;
    }

    public IReadOnlyList<string> Users => _users;

    public void Start()
    {
        foreach (var user in _users)
        {
            var watcher = _watchers[user] = new Watcher(user);
            _loops.Add(Task.Run(() => WatchAsync(watcher)));
        }
    }

    public int Reconnections => _watchers.Values.Sum(w => w.Connections - 1);

    public string Report()
    {
        lock (_watchers)
            return $"{_users.Count} live clients: {_watchers.Values.Sum(w => w.Events)} events ({_watchers.Values.Sum(w => w.LiveMessages)} messages live), " +
                   $"{Reconnections} reconnections";
    }

    private async Task WatchAsync(Watcher watcher)
    {
        var token = Api.Token(_signingKey, watcher.User);
        while (!_stop.IsCancellationRequested)
        {
            var endpoints = _endpoints();
            var endpoint = _preferred() ?? (endpoints.Count > 0 ? endpoints[Random.Shared.Next(endpoints.Count)] : null);
            if (endpoint is null)
            {
                await Delay(200);
                continue;
            }
            using var http = new HttpClient { BaseAddress = endpoint, Timeout = Timeout.InfiniteTimeSpan };
            http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
            try
            {
                // The first connection resumes from 0 too: the client has seen nothing yet.
                await using var stream = await SseClient.ConnectAsync(http, watcher.User, Volatile.Read(ref watcher.LastId), cancellationToken: _stop.Token);
                lock (_watchers)
                    watcher.Connections++;
                if (stream.Status != System.Net.HttpStatusCode.OK)
                {
                    await Delay(300);
                    continue;
                }
                var comments = 0;
                var silentSince = DateTime.UtcNow;
                while (!_stop.IsCancellationRequested)
                {
                    SseEvent evt;
                    try
                    {
                        evt = await stream.NextAsync(TimeSpan.FromSeconds(5));
                    }
                    catch (TimeoutException)
                    {
                        // No event: fine while keep-alives come (at least every 15 s, API.md); silent for 25 s is not.
                        if (stream.Comments != comments)
                        {
                            comments = stream.Comments;
                            silentSince = DateTime.UtcNow;
                        }
                        else if (DateTime.UtcNow - silentSince > TimeSpan.FromSeconds(25))
                        {
                            lock (_watchers)
                                watcher.Violations.Add($"{watcher.User}: a stream on {endpoint} gave no event, keep-alive or end for 25 s");
                            break;
                        }
                        continue;
                    }
                    catch (InvalidOperationException)
                    {
                        break; // the stream ended: reconnect with the last id
                    }
                    silentSince = DateTime.UtcNow;
                    if (evt.Type == "conversation")
                        await HandleAsync(watcher, evt, http);
                }
            }
            catch (Exception e) when (e is HttpRequestException or OperationCanceledException or IOException)
            {
                // node gone or stopping: reconnect
            }
            await Delay(100);
        }
    }

    private async Task HandleAsync(Watcher watcher, SseEvent evt, HttpClient http)
    {
        var conversation = evt.Data.GetProperty("conversation");
        var id = conversation.GetProperty("conversationId").GetString()!;
        var lastSeq = conversation.GetProperty("lastSeq").GetInt64();
        var unread = conversation.GetProperty("unreadCount").GetInt64();
        lock (_watchers)
        {
            watcher.Events++;
            if (evt.Id is not { } eventId || eventId <= watcher.LastId)
                watcher.Violations.Add($"{watcher.User}: event id {evt.Id} after {watcher.LastId} (ids must strictly increase)");
            else
                Volatile.Write(ref watcher.LastId, eventId);
            if (lastSeq < watcher.LastSeq.GetValueOrDefault(id))
                watcher.Violations.Add($"{watcher.User}/{id}: lastSeq {lastSeq} after {watcher.LastSeq[id]}");
            watcher.LastSeq[id] = Math.Max(lastSeq, watcher.LastSeq.GetValueOrDefault(id));
            var read = conversation.GetProperty("readUpToSeq").GetInt64();
            if (read < watcher.ReadUpToSeq.GetValueOrDefault(id))
                watcher.Violations.Add($"{watcher.User}/{id}: readUpToSeq {read} after {watcher.ReadUpToSeq[id]} (moved back)");
            watcher.ReadUpToSeq[id] = Math.Max(read, watcher.ReadUpToSeq.GetValueOrDefault(id));
            foreach (var receipt in conversation.GetProperty("receipts").EnumerateObject())
            {
                var now = (receipt.Value.GetProperty("deliveredUpTo").GetInt64(), receipt.Value.GetProperty("readUpTo").GetInt64());
                var key = (id, receipt.Name);
                if (watcher.Receipts.TryGetValue(key, out var before) && (now.Item1 < before.Delivered || now.Item2 < before.Read))
                    watcher.Violations.Add($"{watcher.User}/{id}: {receipt.Name}'s receipt moved back from {before} to {now}");
                if (now.Item2 > now.Item1)
                    watcher.Violations.Add($"{watcher.User}/{id}: {receipt.Name} read up to {now.Item2} but delivered only up to {now.Item1}");
                watcher.Receipts[key] = now;
            }
            foreach (var message in evt.Data.GetProperty("messages").EnumerateArray())
            {
                watcher.LiveMessages++;
                watcher.Messages[(id, message.GetProperty("seq").GetInt64())] =
                    (message.GetProperty("senderId").GetString()!, message.GetProperty("clientMessageId").GetString()!);
            }
        }
        // Read what arrived, now and then, as a client showing the conversation would.
        if (unread > 0 && DateTime.UtcNow - watcher.LastReceiptPost > TimeSpan.FromSeconds(1))
        {
            watcher.LastReceiptPost = DateTime.UtcNow;
            try
            {
                using var response = await http.PostAsync(
                    $"/v1/users/{watcher.User}/conversations/{id}/receipts",
                    new StringContent(JsonSerializer.Serialize(new { readUpToSeq = lastSeq }), System.Text.Encoding.UTF8, "application/json"),
                    _stop.Token);
                if ((int)response.StatusCode is not (200 or 503))
                {
                    var body = await response.Content.ReadAsStringAsync();
                    lock (_watchers)
                        watcher.Violations.Add($"{watcher.User}/{id}: receipt answered {(int)response.StatusCode}: {body}");
                }
            }
            catch (Exception e) when (e is HttpRequestException or OperationCanceledException)
            {
                // the node went away: a later event posts again
            }
        }
    }

    /// <summary>Wait until every client's events reached the end of each of its threads (the verifier's read).</summary>
    public async Task<List<string>> CheckAsync(IReadOnlyDictionary<string, Dictionary<string, List<MessageDto>>> copies, TimeSpan within)
    {
        var deadline = DateTime.UtcNow + within;
        while (true)
        {
            var violations = Check(copies, out var behind);
            if (behind == 0 || DateTime.UtcNow > deadline)
                return violations;
            _log($"live clients: {behind} conversations not caught up yet; waiting");
            await Task.Delay(TimeSpan.FromSeconds(1));
        }
    }

    private List<string> Check(IReadOnlyDictionary<string, Dictionary<string, List<MessageDto>>> copies, out int behind)
    {
        var violations = new List<string>();
        behind = 0;
        lock (_watchers)
        {
            foreach (var watcher in _watchers.Values)
            {
                violations.AddRange(watcher.Violations);
                var threads = copies.GetValueOrDefault(watcher.User) ?? [];
                foreach (var (conversation, thread) in threads)
                {
                    var seen = watcher.LastSeq.GetValueOrDefault(conversation);
                    if (seen != thread.Count)
                    {
                        behind++;
                        violations.Add($"{watcher.User}/{conversation}: events reached lastSeq {seen}, the thread has {thread.Count} messages");
                    }
                }
                foreach (var ((conversation, seq), (sender, cmid)) in watcher.Messages)
                {
                    if (!threads.TryGetValue(conversation, out var thread) || seq > thread.Count
                        || thread[(int)seq - 1].SenderId != sender || thread[(int)seq - 1].ClientMessageId != cmid)
                        violations.Add($"{watcher.User}/{conversation}: an event carried seq {seq} = {sender}'s {cmid}, the thread says otherwise");
                }
                foreach (var conversation in watcher.LastSeq.Keys.Where(c => !threads.ContainsKey(c)))
                    violations.Add($"{watcher.User}: an event named {conversation}, which is not in the user's list");
            }
        }
        return violations;
    }

    private async Task Delay(int milliseconds)
    {
        try
        {
            await Task.Delay(milliseconds, _stop.Token);
        }
        catch (OperationCanceledException)
        {
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        try
        {
            await Task.WhenAll(_loops);
        }
        catch (OperationCanceledException)
        {
        }
        _stop.Dispose();
    }
}
