using System.Net.Http.Json;
namespace Messaging.EndToEnd.Tests;

/// <summary>
/// A node with tight mailbox limits: at most one largest message of text in memory per mailbox, and three new
/// conversations per user within 20 minutes.
/// </summary>
public sealed class LimitedNodeFixture : IAsyncLifetime
{
    public const int MaxNewConversations = 3;

    public TestNode Node { get; private set; } = null!;

    public async ValueTask InitializeAsync() => Node = await TestNode.StartAsync(
        "--Messaging:Mailbox:MaxRecentChars=65535", "--Messaging:Mailbox:SnapshotEvery=5",
        $"--Messaging:Mailbox:MaxNewConversations={MaxNewConversations}", "--Messaging:Mailbox:NewConversationWindow=00:20:00");

    public async ValueTask DisposeAsync() => await Node.DisposeAsync();
}

/// <summary>
/// The text a mailbox holds in memory is bounded; what leaves memory is read back from the journal, so a client sees
/// every message of every conversation whole, in order, whichever of them are still in memory.
/// </summary>
public sealed class RecentBoundSpecs(LimitedNodeFixture fixture) : IClassFixture<LimitedNodeFixture>
{
    private readonly TestNode _node = fixture.Node;

    [Fact]
    public async Task Should_serve_every_message_whole_after_the_bound_pushed_conversations_out_of_memory()
    {
        var alice = Users.Unique("alice");
        var others = Enumerable.Range(0, 3).Select(i => Users.Unique($"other{i}")).ToArray();
        var client = _node.ClientFor(alice);
        var sent = new Dictionary<string, List<string>>();
        for (var round = 0; round < 4; round++)
        {
            foreach (var other in others)
            {
                // 30,000 characters each: two messages fill the bound, so nearly every page below is read from the journal.
                var text = $"{round}:{other}:" + new string((char)('a' + round), 30_000);
                var answer = await client.Send(other, text).Ok();
                sent.TryAdd(answer.GetProperty("conversationId").GetString()!, []);
                sent[answer.GetProperty("conversationId").GetString()!].Add(text);
            }
        }

        Assert.Equal(3, (await client.Conversations(alice).Ok()).GetProperty("conversations").GetArrayLength());
        foreach (var (conversation, texts) in sent)
        {
            var whole = await client.Thread(alice, conversation, "?count=200").Ok();
            Assert.Equal([1L, 2, 3, 4], whole.Seqs());
            Assert.Equal(texts, whole.Texts());
            // A page that straddles memory and the journal.
            var older = await client.Thread(alice, conversation, "?count=2&offset=1").Ok();
            Assert.Equal([2L, 3], older.Seqs());
            Assert.Equal(texts[1..3], older.Texts());
        }
        // The recipients' copies too (each received four large messages from alice, one conversation each).
        foreach (var other in others)
        {
            var conversation = sent.Keys.Single(id => id.Contains(other, StringComparison.Ordinal));
            Assert.Equal(sent[conversation], (await _node.ClientFor(other).Thread(other, conversation, "?count=200").Ok()).Texts());
        }
    }
}

/// <summary>Anti-spam over HTTP: a user who opened too many conversations lately gets 429 for the next, and nothing is stored.</summary>
public sealed class NewConversationLimitSpecs(LimitedNodeFixture fixture) : IClassFixture<LimitedNodeFixture>
{
    private readonly TestNode _node = fixture.Node;

    [Fact]
    public async Task Should_answer_429_with_retry_after_for_one_conversation_too_many_and_store_nothing()
    {
        var spammer = Users.Unique("spammer");
        var client = _node.ClientFor(spammer);
        var targets = Enumerable.Range(0, LimitedNodeFixture.MaxNewConversations + 1).Select(i => Users.Unique($"target{i}")).ToArray();
        for (var i = 0; i < LimitedNodeFixture.MaxNewConversations; i++)
            await client.Send(targets[i], "buy now").Ok();

        var refused = await client.Send(targets[^1], "buy now", "one-too-many");
        var problem = await refused.AssertProblem(System.Net.HttpStatusCode.TooManyRequests, "RateLimited");
        Assert.Contains("new conversations", problem.GetProperty("detail").GetString(), StringComparison.Ordinal);
        var retryAfter = refused.Headers.RetryAfter?.Delta ?? TimeSpan.Zero;
        Assert.InRange(retryAfter.TotalSeconds, 20 * 60 - 60, 20 * 60); // the configured window, from the first opening
        Assert.Equal(LimitedNodeFixture.MaxNewConversations,
            (await client.Conversations(spammer).Ok()).GetProperty("conversations").GetArrayLength());
        Assert.Equal(0, (await _node.ClientFor(targets[^1]).Conversations(targets[^1]).Ok()).GetProperty("conversations").GetArrayLength());

        // Existing conversations are not limited, in either direction; and a reply opens nothing for the replier.
        await client.Send(targets[0], "still here").Ok();
        var stranger = Users.Unique("stranger");
        await _node.ClientFor(stranger).Send(spammer, "who are you?").Ok();
        await client.Send(stranger, "a reply").Ok();
        // The same clientMessageId, retried later, is refused the same way (nothing was stored under it).
        await (await client.Send(targets[^1], "buy now", "one-too-many")).AssertProblem(System.Net.HttpStatusCode.TooManyRequests, "RateLimited");
    }

    [Fact]
    public async Task Should_count_the_groups_a_user_creates_as_new_conversations()
    {
        var spammer = Users.Unique("groupspammer");
        var client = _node.ClientFor(spammer);
        var created = new List<(string Id, string RequestId)>();
        for (var i = 0; i < LimitedNodeFixture.MaxNewConversations; i++)
        {
            var requestId = $"g{i}";
            var response = await client.PostAsJsonAsync("/v1/groups",
                new { name = $"offers {i}", memberIds = new[] { Users.Unique("victim") }, clientRequestId = requestId }, Ct);
            Assert.Equal(System.Net.HttpStatusCode.Created, response.StatusCode);
            var id = (await response.Json()).GetProperty("conversationId").GetString()!;
            created.Add((id, requestId));
            // The creator's copy records the opening: wait until it is in the creator's mailbox.
            await Eventually(async () => Assert.Equal(i + 1,
                (await client.Conversations(spammer).Ok()).GetProperty("conversations").GetArrayLength()));
        }

        var victim = Users.Unique("victim");
        var refused = await client.PostAsJsonAsync("/v1/groups",
            new { name = "one too many", memberIds = new[] { victim }, clientRequestId = "g-too-many" }, Ct);
        var problem = await refused.AssertProblem(System.Net.HttpStatusCode.TooManyRequests);
        Assert.Contains("new conversations", problem.GetProperty("detail").GetString(), StringComparison.Ordinal);
        Assert.InRange((refused.Headers.RetryAfter?.Delta ?? TimeSpan.Zero).TotalSeconds, 20 * 60 - 60, 20 * 60);
        Assert.Equal(0, (await _node.ClientFor(victim).Conversations(victim).Ok()).GetProperty("conversations").GetArrayLength());
        // A first message to someone new is refused the same way: groups and first messages share the limit.
        await (await client.Send(Users.Unique("target"), "buy now")).AssertProblem(System.Net.HttpStatusCode.TooManyRequests, "RateLimited");

        // A retried creation of a group that exists is answered as before (200, the group), not counted again.
        var (firstId, firstRequest) = created[0];
        var again = await client.PostAsJsonAsync("/v1/groups",
            new { name = "offers 0", memberIds = new[] { Users.Unique("victim") }, clientRequestId = firstRequest }, Ct);
        Assert.Equal(System.Net.HttpStatusCode.OK, again.StatusCode);
        Assert.Equal(firstId, (await again.Json()).GetProperty("conversationId").GetString());
    }

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static async Task Eventually(Func<Task> assertion)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        while (true)
        {
            try
            {
                await assertion();
                return;
            }
            catch (Xunit.Sdk.XunitException) when (DateTime.UtcNow < deadline)
            {
                await Task.Delay(100, Ct);
            }
        }
    }
}
