using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;

namespace Messaging.Cluster.Tests.Harness;

public sealed record VerifierResult(bool Ok, int Users, int Conversations, long MessagesRead, int AcknowledgedChecked,
    TimeSpan Took, IReadOnlyList<string> Violations)
{
    /// <summary>Every user's threads as read (by conversation id, oldest first): what the live clients are checked against.</summary>
    public IReadOnlyDictionary<string, Dictionary<string, List<MessageDto>>> Copies { get; init; } =
        new Dictionary<string, Dictionary<string, List<MessageDto>>>();

    public override string ToString() => Ok
        ? $"OK: {AcknowledgedChecked} acknowledged sends each found once in the sender's and the recipient's copy, in order, " +
          $"seq 1..n without gaps ({Users} users, {Conversations} conversation copies, {MessagesRead} messages read in {Took.TotalSeconds:0.0} s)"
        : $"FAILED with {Violations.Count} violation(s) ({Users} users, {Conversations} conversation copies, {MessagesRead} messages read):\n  " +
          string.Join("\n  ", Violations.Take(30));
}

/// <summary>
/// Reads every user's conversations and whole threads back through the public API (paging backwards with
/// <c>beforeSeq</c>) and checks the contract's guarantees against what the load client saw acknowledged:
/// each acknowledged send exactly once in the sender's and in the recipient's copy (recipient copies may follow, so
/// those are awaited up to a deadline), no duplicates by clientMessageId, each sender's messages in send order in every
/// copy, seq numbers 1..n without gaps, the same messageId and serverTimestamp in both copies as acknowledged, each
/// conversation list agreeing with its threads, and nothing stored that was not acknowledged.
/// </summary>
/// <param name="oneClock">The nodes' clocks agree: a recipient's copy, stamped by its own mailbox when stored, is then
/// never stamped before the sender stamped the message. Off where a node's clock is wrong on purpose: each mailbox
/// stamps with its own node's clock, and API.md promises only that a mailbox's own stamps increase.</param>
public sealed class Verifier(Func<IReadOnlyList<Uri>> endpoints, string signingKey, Action<string> log, bool oneClock = true)
{
    private readonly HttpClient _http = new(new SocketsHttpHandler { ConnectTimeout = TimeSpan.FromSeconds(2) })
    { Timeout = TimeSpan.FromSeconds(15) };

    public async Task<VerifierResult> VerifyAsync(LoadClient load, TimeSpan deliveryWithin)
    {
        var clock = Stopwatch.StartNew();
        var acks = load.Acks.ToList();
        while (true)
        {
            var (copies, lists, readFailures) = await ReadAllAsync(load.UserIds, ReadWithin);
            var violations = Check(load, acks, copies, out var onlyRecipientCopiesMissing);
            var listViolations = CheckLists(lists, copies, oneClock);
            violations.AddRange(listViolations);
            // A copy landing between a list and its threads makes both disagree for a moment: read again when the
            // threads lack only recipient copies (or nothing), whatever the lists say.
            if (listViolations.Count > 0 && violations.Count == listViolations.Count)
                onlyRecipientCopiesMissing = true;
            if (readFailures.Count > 0)
            {
                violations.InsertRange(0, readFailures);
                onlyRecipientCopiesMissing = false;
            }
            var result = new VerifierResult(violations.Count == 0, load.UserIds.Count,
                copies.Values.Sum(c => c.Count), copies.Values.Sum(c => c.Values.Sum(t => (long)t.Count)),
                acks.Count, clock.Elapsed, violations) { Copies = copies };
            if (result.Ok || !onlyRecipientCopiesMissing || clock.Elapsed > deliveryWithin)
                return result;
            log($"verifier: {violations.Count} recipient copies not there yet; reading again");
            await Task.Delay(TimeSpan.FromSeconds(1));
        }
    }

    private static List<string> Check(LoadClient load, List<AckedSend> acks,
        Dictionary<string, Dictionary<string, List<MessageDto>>> copies, out bool onlyRecipientCopiesMissing)
    {
        var violations = new List<string>();
        var missingRecipientCopies = 0;
        var runPrefix = load.Options.RunId + "-";

        // Per copy: seq 1..n, one conversation, no duplicate clientMessageId per sender, sender order kept.
        var byUserAndKey = new Dictionary<string, Dictionary<(string Sender, string Cmid), MessageDto>>();
        foreach (var (user, conversations) in copies)
        {
            var index = byUserAndKey[user] = [];
            foreach (var (conversationId, thread) in conversations)
            {
                for (var i = 0; i < thread.Count; i++)
                    if (thread[i].Seq != i + 1)
                    {
                        violations.Add($"{user}/{conversationId}: seq {thread[i].Seq} at position {i + 1} (gap or duplicate seq)");
                        break;
                    }
                foreach (var message in thread)
                {
                    if (message.ConversationId != conversationId)
                        violations.Add($"{user}/{conversationId}: message {message.MessageId} says conversation {message.ConversationId}");
                    if (!index.TryAdd((message.SenderId, message.ClientMessageId), message))
                        violations.Add($"{user}: {message.SenderId}'s {message.ClientMessageId} stored twice (seq {index[(message.SenderId, message.ClientMessageId)].Seq} and {message.Seq} in {conversationId})");
                }
                foreach (var bySender in thread.Where(m => m.ClientMessageId.StartsWith(runPrefix, StringComparison.Ordinal)).GroupBy(m => m.SenderId))
                {
                    var previous = 0;
                    foreach (var message in bySender)
                    {
                        var sendIndex = IndexOf(message.ClientMessageId);
                        if (sendIndex <= previous)
                            violations.Add($"{user}/{conversationId}: {bySender.Key}'s #{sendIndex} (seq {message.Seq}) after #{previous}: out of send order");
                        previous = sendIndex;
                    }
                }
            }
        }

        // Every acknowledged send: once in both copies, as acknowledged.
        var acked = new HashSet<(string, string)>();
        foreach (var ack in acks)
        {
            acked.Add((ack.SenderId, ack.ClientMessageId));
            foreach (var (owner, isRecipient) in new[] { (ack.SenderId, false), (ack.RecipientId, true) })
            {
                if (!byUserAndKey.TryGetValue(owner, out var index) || !index.TryGetValue((ack.SenderId, ack.ClientMessageId), out var stored))
                {
                    if (isRecipient)
                        missingRecipientCopies++;
                    violations.Add($"{ack.ClientMessageId} ({ack.SendStatus} after {ack.Attempts} attempt(s)) missing from {(isRecipient ? "recipient" : "sender")} {owner}'s copy");
                    continue;
                }
                if (stored.MessageId != ack.MessageId || stored.ConversationId != ack.ConversationId || stored.Message != ack.Text
                    || stored.ServerTimestamp != ack.ServerTimestamp)
                    violations.Add($"{ack.ClientMessageId} in {owner}'s copy is {stored.MessageId}/{stored.ConversationId}/{stored.ServerTimestamp}, " +
                        $"acknowledged as {ack.MessageId}/{ack.ConversationId}/{ack.ServerTimestamp}");
            }
        }

        // Nothing stored that was not acknowledged, except a send the client gave up on at the drain deadline (counted,
        // and asserted by the scenarios).
        var aborted = load.Aborted.ToHashSet();
        foreach (var (user, index) in byUserAndKey)
        foreach (var ((sender, cmid), message) in index)
        {
            if (!cmid.StartsWith(runPrefix, StringComparison.Ordinal) || acked.Contains((sender, cmid)) || aborted.Contains((sender, cmid)))
                continue;
            violations.Add($"{user}: {sender}'s {cmid} (seq {message.Seq}) stored but never acknowledged");
        }

        onlyRecipientCopiesMissing = violations.Count > 0 && violations.Count == missingRecipientCopies;
        return violations;
    }

    /// <summary>
    /// Each conversation list against its threads: newest first with strictly decreasing stamps, the two participants,
    /// the snippet of the last message, and a stamp no earlier than the last message's (the sender's copy is stamped
    /// with the message's own timestamp, the recipient's when stored, and either again by a receipt).
    /// </summary>
    private static List<string> CheckLists(Dictionary<string, List<ConversationDto>> lists,
        Dictionary<string, Dictionary<string, List<MessageDto>>> copies, bool oneClock)
    {
        var violations = new List<string>();
        foreach (var (user, list) in lists)
        {
            for (var i = 1; i < list.Count; i++)
                if (list[i].LastUpdatedTimestamp >= list[i - 1].LastUpdatedTimestamp)
                    violations.Add($"{user}'s conversation list: {list[i].ConversationId} ({list[i].LastUpdatedTimestamp}) after {list[i - 1].ConversationId} ({list[i - 1].LastUpdatedTimestamp}): not newest first");
            foreach (var conversation in list)
            {
                if (!copies.TryGetValue(user, out var threads) || !threads.TryGetValue(conversation.ConversationId, out var thread) || thread.Count == 0)
                {
                    violations.Add($"{user}'s conversation list names {conversation.ConversationId}, whose thread is empty");
                    continue;
                }
                var last = thread[^1];
                var participants = new[] { last.SenderId, last.RecipientIds[0] }.Order(StringComparer.Ordinal);
                if (!conversation.ParticipantIds.SequenceEqual(participants) || !conversation.ParticipantIds.Contains(user))
                    violations.Add($"{user}/{conversation.ConversationId}: participants [{string.Join(",", conversation.ParticipantIds)}]");
                var snippet = last.Message.Length > 100 ? last.Message[..100] : last.Message;
                if (conversation.Snippet != snippet)
                    violations.Add($"{user}/{conversation.ConversationId}: snippet '{conversation.Snippet}' but the last message is '{last.Message}'");
                if (oneClock && conversation.LastUpdatedTimestamp < last.ServerTimestamp)
                    violations.Add($"{user}/{conversation.ConversationId}: lastUpdatedTimestamp {conversation.LastUpdatedTimestamp}, last message {last.MessageId} at {last.ServerTimestamp}");
            }
        }
        return violations;
    }

    private static int IndexOf(string clientMessageId) =>
        int.Parse(clientMessageId[(clientMessageId.LastIndexOf('-') + 1)..]);

    /// <summary>How long one read may keep failing (503s, connection errors) before the verifier reports it.</summary>
    private static readonly TimeSpan ReadWithin = TimeSpan.FromSeconds(20);

    private async Task<(Dictionary<string, Dictionary<string, List<MessageDto>>>, Dictionary<string, List<ConversationDto>>, List<string>)>
        ReadAllAsync(IReadOnlyList<string> users, TimeSpan within)
    {
        var result = new Dictionary<string, Dictionary<string, List<MessageDto>>>();
        var lists = new Dictionary<string, List<ConversationDto>>();
        var failures = new List<string>();
        using var throttle = new SemaphoreSlim(4);
        var reads = users.Select(async user =>
        {
            await throttle.WaitAsync();
            try
            {
                var (list, threads) = await ReadUserAsync(user, within);
                return (user, list, threads, (string?)null);
            }
            catch (Exception e) when (e is TimeoutException or InvalidOperationException or HttpRequestException)
            {
                return (user, new List<ConversationDto>(), new Dictionary<string, List<MessageDto>>(), $"{user}'s mailbox could not be read: {e.Message}");
            }
            finally { throttle.Release(); }
        });
        foreach (var (user, list, conversations, failure) in await Task.WhenAll(reads))
        {
            result[user] = conversations;
            lists[user] = list;
            if (failure is not null)
                failures.Add(failure);
        }
        return (result, lists, failures);
    }

    private async Task<(List<ConversationDto>, Dictionary<string, List<MessageDto>>)> ReadUserAsync(string user, TimeSpan within)
    {
        var token = Api.Token(signingKey, user);
        var conversations = new List<ConversationDto>();
        for (var offset = 0; ; offset += 100)
        {
            var page = await GetAsync<ConversationsResponse>($"/v1/users/{user}/conversations?offset={offset}&count=100", token, within);
            conversations.AddRange(page.Conversations);
            if (page.Conversations.Length < 100)
                break;
        }
        var threads = new Dictionary<string, List<MessageDto>>();
        foreach (var conversation in conversations)
        {
            var messages = new List<MessageDto>();
            long? before = null;
            while (true)
            {
                var query = $"/v1/users/{user}/conversations/{conversation.ConversationId}/messages?count=200"
                    + (before is { } b ? $"&beforeSeq={b}" : "");
                var page = await GetAsync<ThreadResponse>(query, token, within);
                messages.InsertRange(0, page.Messages);
                if (page.Messages.Length == 0 || page.Messages[0].Seq <= 1)
                    break;
                before = page.Messages[0].Seq;
            }
            threads[conversation.ConversationId] = messages;
        }
        return (conversations, threads);
    }

    /// <summary>GET from any serving node, retrying 503s and connection failures until <paramref name="within"/>.</summary>
    private async Task<T> GetAsync<T>(string pathAndQuery, string token, TimeSpan within)
    {
        var clock = Stopwatch.StartNew();
        for (var attempt = 0; ; attempt++)
        {
            var nodes = endpoints();
            string failure;
            if (nodes.Count == 0)
                failure = "no serving node";
            else
            {
                try
                {
                    using var request = Api.Authorized(HttpMethod.Get, new Uri(nodes[attempt % nodes.Count], pathAndQuery), token);
                    using var response = await _http.SendAsync(request);
                    if (response.StatusCode == HttpStatusCode.OK)
                        return (await response.Content.ReadFromJsonAsync<T>(Api.Json))!;
                    failure = $"{(int)response.StatusCode} {await response.Content.ReadAsStringAsync()}";
                    if (response.StatusCode != HttpStatusCode.ServiceUnavailable)
                        throw new InvalidOperationException($"GET {pathAndQuery}: {failure}");
                }
                catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
                {
                    failure = e.Message;
                }
            }
            if (clock.Elapsed > within)
                throw new TimeoutException($"GET {pathAndQuery} failed for {within.TotalSeconds:0} s: {failure}");
            await Task.Delay(TimeSpan.FromMilliseconds(250));
        }
    }
}
