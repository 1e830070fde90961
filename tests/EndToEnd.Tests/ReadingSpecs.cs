using System.Net;

namespace Messaging.EndToEnd.Tests;

/// <summary>Runs every spec below on the embedded SQLite journal.</summary>
public sealed class ReadingOnSqliteSpecs(NodeFixture fixture) : ReadingSpecs(fixture.Node), IClassFixture<NodeFixture>;

/// <summary>Runs every spec below on PostgreSQL, the clusters' journal.</summary>
public sealed class ReadingOnPostgreSqlSpecs(PostgresNodeFixture fixture) : ReadingSpecs(fixture.Node), IClassFixture<PostgresNodeFixture>;

public abstract class ReadingSpecs(TestNode node)
{
    private readonly TestNode _node = node;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Should_page_conversations_newest_first()
    {
        var alice = Users.Unique("alice");
        var client = _node.ClientFor(alice);
        var friends = Enumerable.Range(1, 5).Select(i => Users.Unique($"f{i}")).ToArray();
        foreach (var friend in friends)
            await client.Send(friend, $"hello {friend}").Ok();

        var pages = new List<string>();
        foreach (var offset in new[] { 0, 2, 4 })
        {
            var page = await client.Conversations(alice, $"?offset={offset}&count=2").Ok();
            pages.AddRange(page.GetProperty("conversations").EnumerateArray()
                .Select(c => c.GetProperty("participantIds").EnumerateArray().Single(p => p.GetString() != alice).GetString()!));
        }

        Assert.Equal(friends.Reverse(), pages);
        var all = await client.Conversations(alice).Ok();
        var stamps = all.GetProperty("conversations").EnumerateArray().Select(c => c.GetProperty("lastUpdatedTimestamp").GetInt64()).ToArray();
        Assert.Equal(stamps.OrderDescending(), stamps);
        Assert.Equal(stamps.Length, stamps.Distinct().Count());
    }

    [Fact]
    public async Task Should_report_only_changes_after_lastUpdatedTimestamp()
    {
        var (alice, bob, carol) = (Users.Unique("alice"), Users.Unique("bob"), Users.Unique("carol"));
        var client = _node.ClientFor(bob);
        await _node.ClientFor(alice).Send(bob, "one").Ok();
        await _node.ClientFor(carol).Send(bob, "two").Ok();

        var first = await client.Conversations(bob).Ok();
        var seen = first.GetProperty("conversations").EnumerateArray().Max(c => c.GetProperty("lastUpdatedTimestamp").GetInt64());
        Assert.True(first.GetProperty("isDBupdate").GetBoolean());
        Assert.Equal(2, first.GetProperty("conversations").GetArrayLength());

        var current = await client.Conversations(bob, $"?lastUpdatedTimestamp={seen}").Ok();
        Assert.False(current.GetProperty("isDBupdate").GetBoolean());
        Assert.Empty(current.GetProperty("conversations").EnumerateArray());

        await client.Send(alice, "three").Ok();
        var update = await client.Conversations(bob, $"?lastUpdatedTimestamp={seen}").Ok();
        Assert.True(update.GetProperty("isDBupdate").GetBoolean());
        var changed = Assert.Single(update.GetProperty("conversations").EnumerateArray());
        Assert.Equal("three", changed.GetProperty("snippet").GetString());
        Assert.True(changed.GetProperty("lastUpdatedTimestamp").GetInt64() > seen);
    }

    [Fact]
    public async Task Should_cut_the_snippet_to_100_characters()
    {
        var (alice, bob) = (Users.Unique("alice"), Users.Unique("bob"));
        var text = string.Concat(Enumerable.Repeat("0123456789", 15));
        await _node.ClientFor(alice).Send(bob, text).Ok();

        var list = await _node.ClientFor(alice).Conversations(alice).Ok();

        Assert.Equal(text[..100], list.GetProperty("conversations")[0].GetProperty("snippet").GetString());
    }

    [Fact]
    public async Task Should_page_a_thread_with_offset_count_beforeSeq_and_afterSeq()
    {
        var (alice, bob) = (Users.Unique("alice"), Users.Unique("bob"));
        var client = _node.ClientFor(alice);
        string conversationId = "";
        for (var i = 1; i <= 12; i++)
            conversationId = (await client.Send(bob, $"m{i}").Ok()).GetProperty("conversationId").GetString()!;

        // The fixture keeps 4 recent messages per conversation in memory: most of these pages come from the journal.
        foreach (var user in new[] { alice, bob })
        {
            var reader = _node.ClientFor(user);
            async Task<long[]> Page(string query) => (await reader.Thread(user, conversationId, query).Ok()).Seqs();

            if (user == bob) // the recipient's copy may still be on its way when the sender got Accepted
                await Eventually.AssertAsync(async () => (await Page("?count=1")).SequenceEqual([12L]), TimeSpan.FromSeconds(10), "bob's copy");

            Assert.Equal(Enumerable.Range(1, 12).Select(i => (long)i), await Page(""));
            Assert.Equal(Seqs(10, 11, 12), await Page("?count=3"));
            Assert.Equal(Seqs(6, 7, 8), await Page("?offset=4&count=3"));
            Assert.Equal(Seqs(3, 4), await Page("?beforeSeq=5&count=2"));
            Assert.Equal(Seqs(9, 10, 11, 12), await Page("?afterSeq=8"));
            Assert.Equal(Seqs(4, 5), await Page("?afterSeq=3&beforeSeq=6"));
            Assert.Equal(Seqs(1, 2), await Page("?offset=10"));
            Assert.Empty(await Page("?offset=12"));
            Assert.Empty(await Page("?afterSeq=12"));
            var texts = (await reader.Thread(user, conversationId, "?beforeSeq=4").Ok()).Texts();
            Assert.Equal(["m1", "m2", "m3"], texts);
        }
    }

    [Fact]
    public async Task Should_read_deep_pages_of_interleaved_conversations_from_the_journal()
    {
        var (alice, bob, carol) = (Users.Unique("alice"), Users.Unique("bob"), Users.Unique("carol"));
        for (var i = 1; i <= 8; i++)
        {
            await _node.ClientFor(bob).Send(alice, $"b{i}").Ok();
            await _node.ClientFor(carol).Send(alice, $"c{i}").Ok();
        }
        var reader = _node.ClientFor(alice);
        var fromBob = string.CompareOrdinal(alice, bob) < 0 ? $"dm~{alice}~{bob}" : $"dm~{bob}~{alice}";
        await Eventually.AssertAsync(async () => (await reader.Thread(alice, fromBob, "?count=1").Ok()).Seqs().SequenceEqual([8L]),
            TimeSpan.FromSeconds(10), "bob's 8 messages in alice's mailbox");

        var thread = await reader.Thread(alice, fromBob, "?count=200").Ok();

        Assert.Equal(Enumerable.Range(1, 8).Select(i => $"b{i}"), thread.Texts());
    }

    [Fact]
    public async Task Should_read_deep_pages_written_by_concurrent_deliveries()
    {
        var alice = Users.Unique("alice");
        var senders = Enumerable.Range(1, 6).Select(i => Users.Unique($"p{i}")).ToArray();
        await Task.WhenAll(senders.Select(sender => Task.Run(async () =>
        {
            for (var i = 1; i <= 8; i++)
                await _node.ClientFor(sender).Send(alice, $"{sender} {i}").Ok();
        })));
        var reader = _node.ClientFor(alice);

        foreach (var sender in senders)
        {
            var conversationId = string.CompareOrdinal(alice, sender) < 0 ? $"dm~{alice}~{sender}" : $"dm~{sender}~{alice}";
            await Eventually.AssertAsync(async () => (await reader.Thread(alice, conversationId, "?count=1").Ok()).Seqs().SequenceEqual([8L]),
                TimeSpan.FromSeconds(10), $"{sender}'s 8 messages in alice's mailbox");
            var thread = await reader.Thread(alice, conversationId, "?count=200").Ok();
            Assert.Equal(Enumerable.Range(1, 8).Select(i => $"{sender} {i}"), thread.Texts());
        }
    }

    private static long[] Seqs(params long[] seqs) => seqs;

    [Theory]
    [InlineData("/conversations?count=0")]
    [InlineData("/conversations?count=101")]
    [InlineData("/conversations?offset=-1")]
    [InlineData("/conversations?count=abc")]
    [InlineData("/conversations?lastUpdatedTimestamp=yesterday")]
    [InlineData("/conversations/dm~a~b/messages?count=0")]
    [InlineData("/conversations/dm~a~b/messages?count=201")]
    [InlineData("/conversations/dm~a~b/messages?offset=-1")]
    [InlineData("/conversations/dm~a~b/messages?beforeSeq=x")]
    public async Task Should_answer_400_for_a_query_out_of_range(string path)
    {
        var alice = Users.Unique("alice");

        var response = await _node.ClientFor(alice).GetAsync($"/v1/users/{alice}{path}", Ct);

        await response.AssertProblem(HttpStatusCode.BadRequest);
    }

    [Fact]
    public async Task Should_accept_the_largest_counts()
    {
        var alice = Users.Unique("alice");
        var client = _node.ClientFor(alice);

        await client.Conversations(alice, "?count=100&offset=0&lastUpdatedTimestamp=0").Ok();
        await (await client.Thread(alice, "dm~a~b", "?count=200")).AssertProblem(HttpStatusCode.NotFound);
    }
}
