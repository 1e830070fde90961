using System.Collections.Concurrent;
using System.Net;
using System.Net.Http.Json;
using System.Text.Json;

namespace Messaging.Cluster.Tests.Harness;

/// <summary>
/// Groups under the same faults as the 1:1 load: a few groups whose members each send sequentially numbered messages,
/// retrying with the SAME clientMessageId (on the next node) until acknowledged. The check at the end, as API.md
/// states the contract: every member's copy holds the group's messages in one and the same order, seqs 1..n without
/// gaps, every acknowledged send exactly once, and each sender's messages in the order they were acknowledged.
/// The group entities and the members' mailboxes are spread over the nodes by sharding, so copies cross nodes.
/// </summary>
public sealed class GroupLoad : IAsyncDisposable
{
    private const int Groups = 3;
    private const int MembersPerGroup = 5;
    private static readonly TimeSpan Pause = TimeSpan.FromMilliseconds(150);
    private static readonly TimeSpan AttemptTimeout = TimeSpan.FromSeconds(10);

    private readonly Func<IReadOnlyList<Uri>> _endpoints;
    private readonly string _signingKey;
    private readonly Action<string> _log;
    private readonly HttpClient _http = new(new SocketsHttpHandler
    {
        ConnectTimeout = TimeSpan.FromSeconds(2),
        PooledConnectionLifetime = TimeSpan.FromSeconds(5),
    })
    { Timeout = Timeout.InfiniteTimeSpan };
    private readonly CancellationTokenSource _stop = new();
    private readonly ConcurrentDictionary<string, List<string>> _acked = new(); // group/sender -> messageIds in ack order
    private readonly List<(string GroupId, string[] Members)> _groups = [];
    private readonly string _runId = Guid.NewGuid().ToString("N")[..6];
    private Task[] _senders = [];
    private long _attempts, _failures;

    public GroupLoad(Func<IReadOnlyList<Uri>> endpoints, string signingKey, Action<string> log)
    {
        _endpoints = endpoints;
        _signingKey = signingKey;
        _log = log;
    }

    public int Acknowledged => _acked.Values.Sum(l => l.Count);

    /// <summary>The groups made, each with its members (the creator first).</summary>
    public IReadOnlyList<(string GroupId, string[] Members)> Made => _groups;

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        for (var g = 0; g < Groups; g++)
        {
            var members = Enumerable.Range(0, MembersPerGroup).Select(i => $"g{g}m{i}-{_runId}").ToArray();
            var body = new { name = $"group {g}", memberIds = members[1..], clientRequestId = $"create-{g}" };
            var answer = await UntilAnswered(members[0], HttpMethod.Post, "/v1/groups", body, cancellationToken);
            _groups.Add((answer.GetProperty("conversationId").GetString()!, members));
        }
        _senders = [.. _groups.SelectMany(group => group.Members.Select(member => Task.Run(() => SendLoop(group.GroupId, member))))];
        _log($"group load: {Groups} groups of {MembersPerGroup} members sending");
    }

    private async Task SendLoop(string groupId, string member)
    {
        var acked = _acked.GetOrAdd($"{groupId}/{member}", _ => []);
        for (var n = 0; !_stop.IsCancellationRequested; n++)
        {
            var body = new { conversationId = groupId, message = $"{member} #{n}", clientMessageId = $"{member}-{n}" };
            // Once started, a send is retried until acknowledged, also after the stop (the drain).
            var answer = await UntilAnswered(member, HttpMethod.Post, "/v1/messages", body, CancellationToken.None);
            lock (acked)
                acked.Add(answer.GetProperty("messageId").GetString()!);
            try { await Task.Delay(Pause, _stop.Token); }
            catch (OperationCanceledException) { }
        }
    }

    /// <summary>Retries on 503, timeouts and connection errors (any node); any other failure is a contract violation.</summary>
    private async Task<JsonElement> UntilAnswered(string user, HttpMethod method, string path, object body, CancellationToken cancellationToken)
    {
        var token = Api.Token(_signingKey, user);
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(120);
        for (var attempt = 0; ; attempt++)
        {
            var endpoints = _endpoints();
            if (endpoints.Count > 0)
            {
                var uri = new Uri(endpoints[(attempt + user.GetHashCode() & 0x7fffffff) % endpoints.Count], path);
                Interlocked.Increment(ref _attempts);
                try
                {
                    using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
                    timeout.CancelAfter(AttemptTimeout);
                    using var request = Api.Authorized(method, uri, token, body);
                    using var response = await _http.SendAsync(request, timeout.Token);
                    if (response.IsSuccessStatusCode)
                        return await response.Content.ReadFromJsonAsync<JsonElement>(timeout.Token);
                    if (response.StatusCode != HttpStatusCode.ServiceUnavailable)
                        throw new InvalidOperationException($"{method} {path} as {user} answered {(int)response.StatusCode}: {await response.Content.ReadAsStringAsync(CancellationToken.None)}");
                }
                catch (Exception e) when (e is HttpRequestException or OperationCanceledException && !cancellationToken.IsCancellationRequested)
                {
                }
                Interlocked.Increment(ref _failures);
            }
            if (DateTime.UtcNow > deadline)
                throw new TimeoutException($"{method} {path} as {user} was not answered within 120 s");
            await Task.Delay(200, cancellationToken);
        }
    }

    public async Task StopAsync()
    {
        await _stop.CancelAsync();
        await Task.WhenAll(_senders);
        _log($"group load stopped: {Acknowledged} group sends acknowledged, {_attempts} requests, {_failures} retried");
    }

    /// <summary>Every member's copy, once it holds every acknowledged send, checked against the contract.</summary>
    public async Task<IReadOnlyList<string>> VerifyAsync(TimeSpan within)
    {
        var violations = new List<string>();
        foreach (var (groupId, members) in _groups)
        {
            var acked = members.SelectMany(m => _acked.GetValueOrDefault($"{groupId}/{m}") ?? []).ToHashSet(StringComparer.Ordinal);
            string[]? reference = null;
            foreach (var member in members)
            {
                var copy = await CopyWhenComplete(member, groupId, acked, within);
                var ids = copy.Select(m => m.GetProperty("messageId").GetString()!).ToArray();
                var seqs = copy.Select(m => m.GetProperty("seq").GetInt64()).ToArray();
                if (!seqs.SequenceEqual(Enumerable.Range(1, seqs.Length).Select(i => (long)i)))
                    violations.Add($"{member}'s copy of {groupId}: seqs are not 1..{seqs.Length}");
                if (ids.Distinct().Count() != ids.Length)
                    violations.Add($"{member}'s copy of {groupId} holds a message twice");
                var missing = acked.Except(ids).ToList();
                if (missing.Count > 0)
                    violations.Add($"{member}'s copy of {groupId} lacks {missing.Count} acknowledged sends, e.g. {missing[0]}");
                reference ??= ids;
                if (!ids.SequenceEqual(reference))
                    violations.Add($"{member}'s copy of {groupId} is not in the same order as {members[0]}'s");
                foreach (var sender in members)
                {
                    var order = (_acked.GetValueOrDefault($"{groupId}/{sender}") ?? []).Select(id => Array.IndexOf(ids, id)).ToArray();
                    if (!order.SequenceEqual(order.Order()))
                        violations.Add($"{member}'s copy of {groupId} has {sender}'s messages out of their acknowledged order");
                }
            }
        }
        _log(violations.Count == 0
            ? $"groups: every member's copy of {_groups.Count} groups holds all {Acknowledged} acknowledged group sends once, in one order"
            : $"groups: {violations.Count} violation(s)");
        return violations;
    }

    private async Task<List<JsonElement>> CopyWhenComplete(string member, string groupId, HashSet<string> acked, TimeSpan within)
    {
        var deadline = DateTime.UtcNow + within;
        while (true)
        {
            var copy = await ReadCopy(member, groupId);
            if (copy is not null && acked.IsSubsetOf(copy.Select(m => m.GetProperty("messageId").GetString()!)) || DateTime.UtcNow > deadline)
                return copy ?? [];
            await Task.Delay(500);
        }
    }

    /// <summary>The whole copy, oldest first, read newest page first with beforeSeq; null when a page could not be read now.</summary>
    private async Task<List<JsonElement>?> ReadCopy(string member, string groupId)
    {
        var pages = new List<List<JsonElement>>();
        var token = Api.Token(_signingKey, member);
        long? before = null;
        while (true)
        {
            var endpoints = _endpoints();
            if (endpoints.Count == 0)
                return null;
            var query = before is { } b ? $"?count=200&beforeSeq={b}" : "?count=200";
            var uri = new Uri(endpoints[0], $"/v1/users/{member}/conversations/{Uri.EscapeDataString(groupId)}/messages{query}");
            try
            {
                using var request = Api.Authorized(HttpMethod.Get, uri, token);
                using var response = await _http.SendAsync(request);
                if (!response.IsSuccessStatusCode)
                    return null;
                var page = await response.Content.ReadFromJsonAsync<JsonElement>();
                var messages = page.GetProperty("messages").EnumerateArray().ToList();
                pages.Add(messages);
                if (messages.Count == 0 || messages[0].GetProperty("seq").GetInt64() <= 1)
                    return [.. Enumerable.Reverse(pages).SelectMany(p => p)];
                before = messages[0].GetProperty("seq").GetInt64();
            }
            catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
            {
                return null;
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (!_stop.IsCancellationRequested)
            await _stop.CancelAsync();
        _http.Dispose();
    }
}
