using System.Net.Http.Json;
using Messaging.Actors;

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

    /// <summary>
    /// A user in more groups than memory holds (1.9.0): each group's copy, a member's receipt about the user's message,
    /// and the user's own marker bring a cold group back; every group's thread is whole and in order, the receipts are
    /// where they were, and all of it the same after a restart.
    /// </summary>
    [Fact]
    public async Task Should_serve_every_group_of_a_user_in_many_groups_whole_across_a_restart()
    {
        const int groups = 8;
        var database = await SharedPostgres.NodeArgumentsAsync();
        var member = Users.Unique("joiner");
        var creators = Enumerable.Range(0, groups).Select(i => Users.Unique($"host{i}")).ToArray();
        var ids = new string[groups];

        await using (var node = await TestNode.StartAsync([.. database, .. Limits]))
        {
            for (var i = 0; i < groups; i++)
            {
                var response = await node.ClientFor(creators[i]).PostAsJsonAsync("/v1/groups",
                    new { name = $"G{i}", memberIds = new[] { member }, clientRequestId = $"create-{i}" }, Ct);
                Assert.Equal(System.Net.HttpStatusCode.Created, response.StatusCode);
                ids[i] = (await response.Json()).GetProperty("conversationId").GetString()!;
                await PostAsync(node, creators[i], ids[i], $"a{i}");
            }
            // Every group has gone cold by now but the newest three: the member's own message goes through each.
            for (var i = 0; i < groups; i++)
                await PostAsync(node, member, ids[i], $"m{i}");
            await EventuallyAsync(async () =>
            {
                for (var i = 0; i < groups; i++)
                    Assert.Equal(["a" + i, "m" + i], await GroupTextsAsync(node, member, ids[i]));
            });
            // Each creator reads the member's message (seq 3): the receipt comes to the member's copy of a cold group.
            for (var i = 0; i < groups; i++)
                (await node.ClientFor(creators[i]).PostAsJsonAsync($"/v1/users/{creators[i]}/conversations/{ids[i]}/receipts",
                    new { readUpToSeq = 3 }, Ct)).EnsureSuccessStatusCode();
            await EventuallyAsync(async () =>
            {
                for (var i = 0; i < groups; i++)
                    Assert.Equal("read", await StatusOfLastAsync(node, member, ids[i]));
            });
            // The member reads each group: the marker finds the cold group; the creator's copy shows it.
            for (var i = 0; i < groups; i++)
                (await node.ClientFor(member).PostAsJsonAsync($"/v1/users/{member}/conversations/{ids[i]}/receipts",
                    new { readUpToSeq = 3 }, Ct)).EnsureSuccessStatusCode();
            await EventuallyAsync(async () =>
            {
                for (var i = 0; i < groups; i++)
                    Assert.Equal("read", await StatusOfLastAsync(node, creators[i], ids[i], "a"));
            });
            // Memory holds the bound once the last archive after those writes is done.
            await EventuallyAsync(async () =>
            {
                var list = await node.ClientFor(member).Conversations(member).Ok();
                Assert.InRange(list.GetProperty("conversations").GetArrayLength(), 1, 3);
            });
        }

        await using (var node = await TestNode.StartAsync([.. database, .. Limits]))
        {
            for (var i = 0; i < groups; i++)
            {
                Assert.Equal(["a" + i, "m" + i], await GroupTextsAsync(node, member, ids[i]));
                Assert.Equal("read", await StatusOfLastAsync(node, member, ids[i]));
            }
            for (var i = 0; i < groups; i++)
            {
                await PostAsync(node, creators[i], ids[i], $"b{i}");
                await PostAsync(node, creators[i], ids[i], $"c{i}");
            }
            await EventuallyAsync(async () =>
            {
                for (var i = 0; i < groups; i++)
                {
                    var page = await node.ClientFor(member).Thread(member, ids[i], "?count=50").Ok();
                    Assert.Equal(["a" + i, "m" + i, "b" + i, "c" + i], page.Texts().Where(t => t.Length > 0));
                    Assert.Equal([1L, 2, 3, 4, 5], page.Seqs()); // the creation, then the four messages
                }
            });
            // The member marks "b" (seq 4, below the newest) delivered in each: the group comes back with its unread
            // messages (4 and 5), and the receipt goes to the creator.
            for (var i = 0; i < groups; i++)
            {
                var marked = await node.ClientFor(member).PostAsJsonAsync($"/v1/users/{member}/conversations/{ids[i]}/receipts",
                    new { deliveredUpToSeq = 4 }, Ct);
                Assert.True(marked.IsSuccessStatusCode, $"group {i}: {(int)marked.StatusCode} {await marked.Content.ReadAsStringAsync(Ct)}");
            }
            await EventuallyAsync(async () =>
            {
                for (var i = 0; i < groups; i++)
                    Assert.Equal("delivered", await StatusOfLastAsync(node, creators[i], ids[i], "b"));
            });

            // More unread than a cold entry keeps (16): a group comes back without a window, so a marker below its newest
            // message reads that message's tally from the journal, once the group's return is durable (the creator is
            // known by now to have no 1:1 conversation, so nothing else is read in between).
            const int many = MailboxState.ColdUnreadTailMessages + 2;
            for (var i = 0; i < groups; i++)
            {
                for (var k = 0; k < many; k++)
                    await PostAsync(node, creators[i], ids[i], $"d{i}x{k}");
            }
            await EventuallyAsync(async () =>
            {
                for (var i = 0; i < groups; i++)
                    Assert.Equal(5 + many, (await node.ClientFor(member).Thread(member, ids[i], "?count=50").Ok()).Seqs().Length);
                var list = await node.ClientFor(member).Conversations(member).Ok();
                Assert.InRange(list.GetProperty("conversations").GetArrayLength(), 1, 3);
            });
            for (var i = 0; i < groups; i++)
            {
                var marked = await node.ClientFor(member).PostAsJsonAsync($"/v1/users/{member}/conversations/{ids[i]}/receipts",
                    new { deliveredUpToSeq = 4 + many }, Ct);
                Assert.True(marked.IsSuccessStatusCode, $"group {i}: {(int)marked.StatusCode} {await marked.Content.ReadAsStringAsync(Ct)}");
            }
            await EventuallyAsync(async () =>
            {
                for (var i = 0; i < groups; i++)
                    Assert.Equal("delivered", await StatusOfLastAsync(node, creators[i], ids[i], $"d{i}x{many - 2}"));
            });
        }
    }

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static async Task PostAsync(TestNode node, string user, string groupId, string text) =>
        await node.ClientFor(user).Send(new { conversationId = groupId, message = text, clientMessageId = $"{groupId[4..]}-{text}" }).Ok();

    private static async Task<string[]> GroupTextsAsync(TestNode node, string user, string groupId) =>
        [.. (await node.ClientFor(user).Thread(user, groupId, "?count=50").Ok()).Texts().Where(t => t.Length > 0)];

    /// <summary>The status of the user's last message in the group (or the last one starting with <paramref name="prefix"/>).</summary>
    private static async Task<string?> StatusOfLastAsync(TestNode node, string user, string groupId, string? prefix = null)
    {
        var page = await node.ClientFor(user).Thread(user, groupId, "?count=50").Ok();
        return page.GetProperty("messages").EnumerateArray()
            .Last(m => m.GetProperty("senderId").GetString() == user && (prefix is null || m.GetProperty("message").GetString()!.StartsWith(prefix)))
            .GetProperty("status").GetString();
    }

    private static async Task EventuallyAsync(Func<Task> assertion)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(15);
        while (true)
        {
            try
            {
                await assertion();
                return;
            }
            catch (Exception) when (DateTime.UtcNow < deadline)
            {
                await Task.Delay(100, Ct);
            }
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
