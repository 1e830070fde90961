using System.Collections.Concurrent;
using System.Net;
using System.Text.Json;

namespace Messaging.EndToEnd.Tests;

/// <summary>Runs every spec below on the embedded SQLite journal.</summary>
public sealed class ConcurrentSendOnSqliteSpecs(DefaultNodeFixture fixture) : ConcurrentSendSpecs(fixture.Node), IClassFixture<DefaultNodeFixture>;

/// <summary>Runs every spec below on PostgreSQL, the clusters' journal.</summary>
public sealed class ConcurrentSendOnPostgreSqlSpecs(DefaultPostgresNodeFixture fixture) : ConcurrentSendSpecs(fixture.Node), IClassFixture<DefaultPostgresNodeFixture>;

public abstract class ConcurrentSendSpecs(TestNode node)
{
    private const int Senders = 8;
    private const int MessagesPerSender = 24;
    private readonly TestNode _node = node;

    [Fact]
    public async Task Should_lose_nothing_store_nothing_twice_and_keep_each_senders_order_under_concurrent_retried_sends()
    {
        var hubs = new[] { Users.Unique("hub-a"), Users.Unique("hub-b") };
        var senders = Enumerable.Range(0, Senders).Select(i => Users.Unique($"s{i}")).ToArray();
        var sent = new ConcurrentDictionary<(string Sender, string Hub), List<(string Text, string MessageId)>>();

        await Task.WhenAll(senders.Select(sender => Task.Run(async () =>
        {
            var client = _node.ClientFor(sender);
            for (var i = 0; i < MessagesPerSender; i++)
            {
                var hub = hubs[i % 2];
                var text = $"{sender} #{i}";
                var clientMessageId = Guid.NewGuid().ToString();
                string messageId;
                if (i % 6 == 3)
                {
                    // The same send twice at once (a client retrying before the first answer): one message, one id.
                    var both = await Task.WhenAll(SendWithRetries(client, hub, text, clientMessageId), SendWithRetries(client, hub, text, clientMessageId));
                    Assert.Equal(both[0].GetProperty("messageId").GetString(), both[1].GetProperty("messageId").GetString());
                    messageId = both[0].GetProperty("messageId").GetString()!;
                }
                else
                {
                    messageId = (await SendWithRetries(client, hub, text, clientMessageId)).GetProperty("messageId").GetString()!;
                }
                if (i % 5 == 0)
                {
                    // A retry after the answer was lost: Duplicate, same message.
                    var again = await SendWithRetries(client, hub, text, clientMessageId);
                    Assert.Equal("Duplicate", again.GetProperty("sendStatus").GetString());
                    Assert.Equal(messageId, again.GetProperty("messageId").GetString());
                }
                sent.GetOrAdd((sender, hub), _ => []).Add((text, messageId));
            }
        })));

        // The senders' copies: exactly what each sent, in order.
        foreach (var ((sender, hub), messages) in sent)
        {
            var thread = await _node.ClientFor(sender).Thread(sender, ConversationOf(sender, hub), "?count=200").Ok();
            Assert.Equal(messages.Select(m => m.Text), thread.Texts());
            Assert.Equal(Enumerable.Range(1, messages.Count).Select(i => (long)i), thread.Seqs());
        }

        // The hubs' copies: every message once, each sender's in its order, seqs without gaps.
        foreach (var hub in hubs)
        {
            var expected = sent.Where(e => e.Key.Hub == hub).ToDictionary(e => e.Key.Sender, e => e.Value);
            var client = _node.ClientFor(hub);
            await Eventually.AssertAsync(async () =>
            {
                var list = await client.Conversations(hub, "?count=100").Ok();
                var total = 0;
                foreach (var conversation in list.GetProperty("conversations").EnumerateArray())
                {
                    var id = conversation.GetProperty("conversationId").GetString()!;
                    // The newest message's seq is the number of messages in the conversation.
                    total += (int)Assert.Single((await client.Thread(hub, id, "?count=1").Ok()).Seqs());
                }
                return total == expected.Values.Sum(v => v.Count);
            }, TimeSpan.FromSeconds(20), $"every copy delivered to {hub}");

            foreach (var (sender, messages) in expected)
            {
                var thread = await client.Thread(hub, ConversationOf(sender, hub), "?count=200").Ok();
                var ids = thread.GetProperty("messages").EnumerateArray().Select(m => m.GetProperty("messageId").GetString()).ToArray();
                Assert.Equal(messages.Select(m => m.MessageId), ids);
                Assert.Equal(Enumerable.Range(1, messages.Count).Select(i => (long)i), thread.Seqs());
            }
        }
    }

    private static string ConversationOf(string a, string b) =>
        string.CompareOrdinal(a, b) <= 0 ? $"dm~{a}~{b}" : $"dm~{b}~{a}";

    /// <summary>What a careful client does: retry 503 and lost connections with the same clientMessageId.</summary>
    internal static async Task<JsonElement> SendWithRetries(HttpClient client, string recipient, string text, string clientMessageId)
    {
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                var response = await client.Send(recipient, text, clientMessageId);
                if (response.StatusCode == HttpStatusCode.OK)
                    return await response.Json();
                if (response.StatusCode is not (HttpStatusCode.ServiceUnavailable or HttpStatusCode.TooManyRequests) || attempt >= 20)
                    Assert.Fail($"send failed with {(int)response.StatusCode}: {await response.Content.ReadAsStringAsync()}");
            }
            catch (HttpRequestException) when (attempt < 20)
            {
            }
            await Task.Delay(TimeSpan.FromMilliseconds(50 * attempt));
        }
    }
}
