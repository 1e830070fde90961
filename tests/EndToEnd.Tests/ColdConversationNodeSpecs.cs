namespace Messaging.EndToEnd.Tests;

/// <summary>
/// A user written to by many more people than the node keeps in a mailbox's memory
/// (<c>Messaging:Mailbox:MaxConversationsInMemory</c> of 3 here), on PostgreSQL with the writer fence: the list holds the
/// newest three, every thread reads back whole and in order, replies and new messages find their conversation, and all
/// of it the same after the node restarts from the journal (its cold pages included).
/// </summary>
public sealed class ColdConversationNodeSpecs
{
    private const int Senders = 10;

    private static readonly string[] Limits = ["--Messaging:Mailbox:MaxConversationsInMemory=3", "--Messaging:Mailbox:SnapshotEvery=7"];

    [Fact]
    public async Task Should_serve_every_conversation_of_a_popular_user_whole_across_a_restart()
    {
        var database = await SharedPostgres.NodeArgumentsAsync();
        var popular = Users.Unique("popular");
        var senders = Enumerable.Range(0, Senders).Select(i => Users.Unique($"fan{i}")).ToArray();
        var conversations = new string[Senders];

        await using (var node = await TestNode.StartAsync([.. database, .. Limits]))
        {
            for (var i = 0; i < Senders; i++)
            {
                var answer = await node.ClientFor(senders[i]).Send(popular, $"a{i}").Ok();
                conversations[i] = answer.GetProperty("conversationId").GetString()!;
                await node.ClientFor(senders[i]).Send(popular, $"b{i}").Ok();
            }
            for (var i = 0; i < Senders; i++)
                await node.ClientFor(popular).Send(senders[i], $"re{i}").Ok();
            await AssertAsync(node, popular, senders, conversations, ["a", "b", "re"]);
        }

        await using (var node = await TestNode.StartAsync([.. database, .. Limits]))
        {
            await AssertAsync(node, popular, senders, conversations, ["a", "b", "re"]);
            for (var i = 0; i < Senders; i++)
                await node.ClientFor(senders[i]).Send(popular, $"c{i}").Ok();
            await AssertAsync(node, popular, senders, conversations, ["a", "b", "re", "c"]);
        }
    }

    private static async Task AssertAsync(TestNode node, string popular, string[] senders, string[] conversations, string[] prefixes)
    {
        var client = node.ClientFor(popular);
        // The list holds what memory holds: the newest three (the last one written to first).
        var list = await client.Conversations(popular).Ok();
        var listed = list.GetProperty("conversations").EnumerateArray().Select(c => c.GetProperty("conversationId").GetString()).ToArray();
        Assert.InRange(listed.Length, 1, 3);
        Assert.Equal(conversations[^1], listed[0]);
        for (var i = 0; i < Senders; i++)
        {
            var expected = prefixes.Select(p => $"{p}{i}").ToArray();
            foreach (var (user, reader) in new[] { (popular, client), (senders[i], node.ClientFor(senders[i])) })
            {
                var page = await reader.Thread(user, conversations[i], "?count=50").Ok();
                Assert.Equal(expected, page.Texts());
                Assert.Equal(Enumerable.Range(1, expected.Length).Select(s => (long)s), page.Seqs());
            }
        }
    }
}
