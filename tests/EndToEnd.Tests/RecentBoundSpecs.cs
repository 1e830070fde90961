namespace Messaging.EndToEnd.Tests;

/// <summary>A node whose mailboxes keep at most one largest message of text in memory.</summary>
public sealed class SmallMemoryNodeFixture : IAsyncLifetime
{
    public TestNode Node { get; private set; } = null!;

    public async ValueTask InitializeAsync() => Node = await TestNode.StartAsync(
        "--Messaging:Mailbox:MaxRecentChars=65535", "--Messaging:Mailbox:SnapshotEvery=5");

    public async ValueTask DisposeAsync() => await Node.DisposeAsync();
}

/// <summary>
/// The text a mailbox holds in memory is bounded; what leaves memory is read back from the journal, so a client sees
/// every message of every conversation whole, in order, whichever of them are still in memory.
/// </summary>
public sealed class RecentBoundSpecs(SmallMemoryNodeFixture fixture) : IClassFixture<SmallMemoryNodeFixture>
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
