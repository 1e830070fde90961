using System.Net;
using System.Net.Http.Json;
using System.Text.Json;

namespace Messaging.EndToEnd.Tests;

/// <summary>Groups over Kestrel: API.md's v1.1 "Groups" section (create, read, members, leave, send, order, receipts).</summary>
public sealed class GroupSpecs(NodeFixture fixture) : IClassFixture<NodeFixture>
{
    private static readonly TimeSpan Soon = TimeSpan.FromSeconds(10);
    private readonly TestNode _node = fixture.Node;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private async Task<(string Id, JsonElement Group)> Create(string creator, string name, params string[] members)
    {
        var response = await _node.ClientFor(creator).PostAsJsonAsync("/v1/groups",
            new { name, memberIds = members, clientRequestId = Guid.NewGuid().ToString() }, Ct);
        var body = await response.Content.ReadAsStringAsync(Ct);
        Assert.True(response.StatusCode == HttpStatusCode.Created, $"expected 201, got {(int)response.StatusCode}: {body}");
        var group = JsonDocument.Parse(body).RootElement.Clone();
        return (group.GetProperty("conversationId").GetString()!, group);
    }

    private Task<HttpResponseMessage> Post(string user, string groupId, string text, string? clientMessageId = null) =>
        _node.ClientFor(user).Send(new { conversationId = groupId, message = text, clientMessageId = clientMessageId ?? Guid.NewGuid().ToString() });

    /// <summary>The user's whole copy of the conversation, once it holds <paramref name="count"/> messages.</summary>
    private async Task<JsonElement[]> CopyOf(string user, string groupId, int count)
    {
        var deadline = DateTime.UtcNow + Soon;
        while (true)
        {
            var response = await _node.ClientFor(user).Thread(user, groupId, "?count=200");
            if (response.StatusCode == HttpStatusCode.OK)
            {
                var messages = (await response.Json()).GetProperty("messages").EnumerateArray().ToArray();
                if (messages.Length >= count || DateTime.UtcNow > deadline)
                    return messages;
            }
            else if (DateTime.UtcNow > deadline)
                Assert.Fail($"{user} has no copy of {groupId}: {(int)response.StatusCode}");
            await Task.Delay(50, Ct);
        }
    }

    [Fact]
    public async Task Should_create_a_group_once_per_client_request_id()
    {
        var (alice, bob, carol) = (Users.Unique("alice"), Users.Unique("bob"), Users.Unique("carol"));
        var body = new { name = "Family", memberIds = new[] { carol, bob }, clientRequestId = "req-1" };

        var first = await _node.ClientFor(alice).PostAsJsonAsync("/v1/groups", body, Ct);
        var retry = await _node.ClientFor(alice).PostAsJsonAsync("/v1/groups", body, Ct);

        Assert.Equal(HttpStatusCode.Created, first.StatusCode);
        Assert.Equal(HttpStatusCode.OK, retry.StatusCode);
        var group = await first.Json();
        Assert.StartsWith("grp~", group.GetProperty("conversationId").GetString());
        Assert.Equal(group.GetProperty("conversationId").GetString(), (await retry.Json()).GetProperty("conversationId").GetString());
        Assert.Equal("Family", group.GetProperty("name").GetString());
        Assert.Equal(new[] { alice, bob, carol }.Order(StringComparer.Ordinal),
            group.GetProperty("participantIds").EnumerateArray().Select(p => p.GetString()));
        Assert.Equal([alice], group.GetProperty("admins").EnumerateArray().Select(p => p.GetString()));

        // Every member's copy starts with one "created" message, and the list shows the group.
        var id = group.GetProperty("conversationId").GetString()!;
        var created = Assert.Single(await CopyOf(carol, id, 1));
        Assert.Equal(alice, created.GetProperty("senderId").GetString());
        Assert.Equal("", created.GetProperty("message").GetString());
        Assert.Equal("created", created.GetProperty("system").GetProperty("action").GetString());
        var list = await _node.ClientFor(carol).Conversations(carol).Ok();
        var conversation = Assert.Single(list.GetProperty("conversations").EnumerateArray());
        Assert.Equal("group", conversation.GetProperty("kind").GetString());
        Assert.Equal("Family", conversation.GetProperty("name").GetString());
        Assert.Equal(3, conversation.GetProperty("participantIds").GetArrayLength());
    }

    [Theory]
    [InlineData("""{"name":"","memberIds":["bob"],"clientRequestId":"r1"}""")]
    [InlineData("""{"name":"Family","memberIds":[],"clientRequestId":"r1"}""")]
    [InlineData("""{"name":"Family","memberIds":["bob","bob"],"clientRequestId":"r1"}""")]
    [InlineData("""{"name":"Family","memberIds":["bad id"],"clientRequestId":"r1"}""")]
    [InlineData("""{"name":"Family","memberIds":["creator"],"clientRequestId":"r1"}""")]
    [InlineData("""{"name":"Family","memberIds":["bob"]}""")]
    [InlineData("""{"name":"Family","memberIds":["bob"],"clientRequestId":"r1","extra":1}""")]
    [InlineData("""{"name":"Family",""")]
    public async Task Should_refuse_a_bad_create_and_store_nothing(string json)
    {
        var creator = Users.Unique("creator");
        var response = await _node.ClientFor(creator).PostAsync("/v1/groups",
            new StringContent(json.Replace("\"creator\"", $"\"{creator}\""), System.Text.Encoding.UTF8, "application/json"), Ct);

        await response.AssertProblem(HttpStatusCode.BadRequest);
        var list = await _node.ClientFor(creator).Conversations(creator).Ok();
        Assert.Empty(list.GetProperty("conversations").EnumerateArray());
    }

    [Fact]
    public async Task Should_give_every_member_the_same_order_under_concurrent_senders()
    {
        var members = Enumerable.Range(0, 4).Select(i => Users.Unique($"m{i}")).ToArray();
        var (id, _) = await Create(members[0], "Busy", members[1..]);

        var sends = members.SelectMany(m => Enumerable.Range(0, 10).Select(i => (Sender: m, Text: $"{m}-{i}"))).ToArray();
        var results = await Task.WhenAll(members.Select(async m =>
        {
            var statuses = new List<string>();
            foreach (var (_, text) in sends.Where(s => s.Sender == m))
                statuses.Add((await Post(m, id, text).Ok()).GetProperty("sendStatus").GetString()!);
            return statuses;
        }));
        Assert.All(results.SelectMany(r => r), status => Assert.Contains(status, new[] { "Sent", "Accepted" }));

        var copies = await Task.WhenAll(members.Select(m => CopyOf(m, id, sends.Length + 1)));
        var orders = copies.Select(c => c.Select(m => m.GetProperty("messageId").GetString()).ToArray()).ToArray();
        Assert.All(orders, order => Assert.Equal(orders[0], order));
        Assert.All(copies, copy => Assert.Equal(Enumerable.Range(1, sends.Length + 1).Select(i => (long)i), copy.Select(m => m.GetProperty("seq").GetInt64())));
        // Each sender's messages in the order they were acknowledged, once each.
        var texts = copies[0].Skip(1).Select(m => m.GetProperty("message").GetString()!).ToArray();
        Assert.Equal(sends.Length, texts.Distinct().Count());
        foreach (var member in members)
            Assert.Equal(Enumerable.Range(0, 10).Select(i => $"{member}-{i}"), texts.Where(t => t.StartsWith(member + "-", StringComparison.Ordinal)));
    }

    [Fact]
    public async Task Should_answer_a_retried_group_send_as_duplicate_and_store_it_once()
    {
        var (alice, bob) = (Users.Unique("alice"), Users.Unique("bob"));
        var (id, _) = await Create(alice, "Pair", bob);

        var first = await Post(alice, id, "once", "cmid-1").Ok();
        var again = await Post(alice, id, "once", "cmid-1").Ok();
        var conflict = await Post(alice, id, "other text", "cmid-1");

        Assert.Equal("Duplicate", again.GetProperty("sendStatus").GetString());
        Assert.Equal(first.GetProperty("messageId").GetString(), again.GetProperty("messageId").GetString());
        await conflict.AssertProblem(HttpStatusCode.Conflict, "Conflict");
        var copy = await CopyOf(bob, id, 2);
        Assert.Equal(2, copy.Length);
        Assert.Single(copy, m => m.GetProperty("message").GetString() == "once");
    }

    [Fact]
    public async Task Should_order_membership_changes_with_the_messages()
    {
        var (alice, bob, carol, dave) = (Users.Unique("alice"), Users.Unique("bob"), Users.Unique("carol"), Users.Unique("dave"));
        var (id, _) = await Create(alice, "Club", bob, carol);
        await Post(alice, id, "before dave").Ok();

        var added = await _node.ClientFor(alice).PostAsJsonAsync($"/v1/groups/{id}/members", new { add = new[] { dave } }, Ct);
        Assert.Equal(HttpStatusCode.OK, added.StatusCode);
        await Post(dave, id, "hi, dave here").Ok();
        var removed = await _node.ClientFor(alice).PostAsJsonAsync($"/v1/groups/{id}/members", new { remove = new[] { bob } }, Ct);
        Assert.Equal(HttpStatusCode.OK, removed.StatusCode);
        await Post(alice, id, "after bob").Ok();
        var left = await _node.ClientFor(carol).PostAsync($"/v1/groups/{id}/leave", null, Ct);
        Assert.Equal(HttpStatusCode.OK, left.StatusCode);
        await Post(alice, id, "just us").Ok();

        string Describe(JsonElement m) => m.TryGetProperty("system", out var s)
            ? $"{m.GetProperty("senderId").GetString()} {s.GetProperty("action").GetString()} {string.Join(",", s.GetProperty("userIds").EnumerateArray().Select(u => u.GetString()))}"
            : m.GetProperty("message").GetString()!;

        // Dave's copy starts at the message that added him; bob's ends at the one that removed him; carol's where she left.
        var daves = (await CopyOf(dave, id, 6)).Select(Describe).ToArray();
        Assert.Equal([$"{alice} added {dave}", "hi, dave here", $"{alice} removed {bob}", "after bob", $"{carol} left {carol}", "just us"], daves);
        var bobs = (await CopyOf(bob, id, 5)).Select(Describe).ToArray();
        Assert.Equal(["before dave", $"{alice} added {dave}", "hi, dave here", $"{alice} removed {bob}"], bobs[1..]);
        var carols = (await CopyOf(carol, id, 7)).Select(Describe).ToArray();
        Assert.Equal($"{carol} left {carol}", carols[^1]);
        Assert.Equal(7, carols.Length);

        // A removed member may not send or read the group, and keeps their history in their list.
        await (await Post(bob, id, "let me back")).AssertProblem(HttpStatusCode.Forbidden, "Forbidden");
        await (await _node.ClientFor(bob).GetAsync($"/v1/groups/{id}", Ct)).AssertProblem(HttpStatusCode.Forbidden);
        await (await _node.ClientFor(bob).PostAsync($"/v1/users/{bob}/conversations/{id}/typing", null, Ct)).AssertProblem(HttpStatusCode.Forbidden);
        var bobsList = await _node.ClientFor(bob).Conversations(bob).Ok();
        var bobsGroup = Assert.Single(bobsList.GetProperty("conversations").EnumerateArray());
        Assert.DoesNotContain(bob, bobsGroup.GetProperty("participantIds").EnumerateArray().Select(p => p.GetString()));
        Assert.Equal(5, (await CopyOf(bob, id, 5)).Length);

        var group = await _node.ClientFor(dave).GetFromJsonAsync<JsonElement>($"/v1/groups/{id}", Ct);
        Assert.Equal(new[] { alice, dave }.Order(StringComparer.Ordinal), group.GetProperty("participantIds").EnumerateArray().Select(p => p.GetString()));
    }

    [Fact]
    public async Task Should_let_only_admins_change_members_and_only_members_send()
    {
        var (alice, bob, eve) = (Users.Unique("alice"), Users.Unique("bob"), Users.Unique("eve"));
        var (id, _) = await Create(alice, "Admins", bob);

        await (await _node.ClientFor(bob).PostAsJsonAsync($"/v1/groups/{id}/members", new { add = new[] { eve } }, Ct))
            .AssertProblem(HttpStatusCode.Forbidden);
        await (await Post(eve, id, "let me in")).AssertProblem(HttpStatusCode.Forbidden, "Forbidden");
        await (await _node.ClientFor(eve).GetAsync($"/v1/groups/{id}", Ct)).AssertProblem(HttpStatusCode.Forbidden);
        // Adding a member again (a retry after a lost answer) changes nothing and answers the group.
        Assert.Equal(HttpStatusCode.OK, (await _node.ClientFor(alice).PostAsJsonAsync($"/v1/groups/{id}/members", new { add = new[] { bob } }, Ct)).StatusCode);
        await (await _node.ClientFor(alice).PostAsJsonAsync($"/v1/groups/{id}/members", new { add = new[] { eve }, remove = new[] { bob } }, Ct))
            .AssertProblem(HttpStatusCode.BadRequest);
        await (await _node.ClientFor(alice).PostAsJsonAsync($"/v1/groups/{id}/members", new { remove = new[] { alice } }, Ct))
            .AssertProblem(HttpStatusCode.BadRequest);

        // Nothing of that was stored: bob's copy holds the creation only.
        Assert.Single(await CopyOf(bob, id, 1));

        // The last admin leaving makes the first remaining member an admin.
        Assert.Equal(HttpStatusCode.OK, (await _node.ClientFor(alice).PostAsync($"/v1/groups/{id}/leave", null, Ct)).StatusCode);
        var group = await _node.ClientFor(bob).GetFromJsonAsync<JsonElement>($"/v1/groups/{id}", Ct);
        Assert.Equal([bob], group.GetProperty("admins").EnumerateArray().Select(p => p.GetString()));
    }

    [Fact]
    public async Task Should_answer_404_for_an_unknown_group_and_400_for_a_bad_group_send()
    {
        var alice = Users.Unique("alice");
        var unknown = Messaging.Messages.Ids.GroupFor(alice, "never-created");

        await (await Post(alice, unknown, "anyone?")).AssertProblem(HttpStatusCode.NotFound, "NotFound");
        await (await _node.ClientFor(alice).GetAsync($"/v1/groups/{unknown}", Ct)).AssertProblem(HttpStatusCode.NotFound);
        await (await _node.ClientFor(alice).PostAsync($"/v1/groups/{unknown}/leave", null, Ct)).AssertProblem(HttpStatusCode.NotFound);
        await (await _node.ClientFor(alice).GetAsync("/v1/groups/dm~a~b", Ct)).AssertProblem(HttpStatusCode.BadRequest);
        await (await _node.ClientFor(alice).Send(new { conversationId = unknown, recipientIds = new[] { "bob" }, message = "x", clientMessageId = "c1" }))
            .AssertProblem(HttpStatusCode.BadRequest, "Invalid");
        await (await _node.ClientFor(alice).Send(new { conversationId = "dm~a~b", message = "x", clientMessageId = "c2" }))
            .AssertProblem(HttpStatusCode.BadRequest, "Invalid");
    }

    [Fact]
    public async Task Should_show_read_only_when_every_member_it_went_to_has_read_it()
    {
        var (alice, bob, carol) = (Users.Unique("alice"), Users.Unique("bob"), Users.Unique("carol"));
        var (id, _) = await Create(alice, "Readers", bob, carol);
        await Post(alice, id, "did you read this?").Ok();
        await CopyOf(bob, id, 2);
        await CopyOf(carol, id, 2);

        async Task<string?> Status()
        {
            var copy = await CopyOf(alice, id, 2);
            return copy[^1].GetProperty("status").GetString();
        }

        Assert.Equal("sent", await Status());
        (await _node.ClientFor(bob).PostAsJsonAsync($"/v1/users/{bob}/conversations/{id}/receipts", new { readUpToSeq = 2 }, Ct)).EnsureSuccessStatusCode();
        await Eventually(async () => Assert.Equal(bob, (await Receipts(alice, id)).Single(r => r.Value.GetProperty("readUpTo").GetInt64() > 0).Key));
        Assert.Equal("sent", await Status()); // carol has not even got it marked
        (await _node.ClientFor(carol).PostAsJsonAsync($"/v1/users/{carol}/conversations/{id}/receipts", new { readUpToSeq = 2 }, Ct)).EnsureSuccessStatusCode();
        await Eventually(async () => Assert.Equal("read", await Status()));
        var bobsList = await _node.ClientFor(bob).Conversations(bob).Ok();
        Assert.Equal(0, bobsList.GetProperty("conversations")[0].GetProperty("unreadCount").GetInt64());
    }

    [Fact]
    public async Task Should_push_group_messages_and_typing_to_every_other_members_open_stream()
    {
        var (alice, bob, carol) = (Users.Unique("alice"), Users.Unique("bob"), Users.Unique("carol"));
        var (id, _) = await Create(alice, "Live", bob, carol);
        await CopyOf(bob, id, 1);
        await using var stream = await SseClient.ConnectAsync(_node.ClientFor(bob), bob, cancellationToken: Ct);

        var sent = await Post(carol, id, "live in the group").Ok();

        var evt = await stream.NextAsync("conversation", Soon);
        var conversation = evt.Data.GetProperty("conversation");
        Assert.Equal(id, conversation.GetProperty("conversationId").GetString());
        Assert.Equal("group", conversation.GetProperty("kind").GetString());
        Assert.Equal("Live", conversation.GetProperty("name").GetString());
        Assert.Equal(1, conversation.GetProperty("unreadCount").GetInt64());
        var message = Assert.Single(evt.Data.GetProperty("messages").EnumerateArray());
        Assert.Equal(sent.GetProperty("messageId").GetString(), message.GetProperty("messageId").GetString());
        Assert.Equal(carol, message.GetProperty("senderId").GetString());

        Assert.Equal(HttpStatusCode.NoContent,
            (await _node.ClientFor(alice).PostAsync($"/v1/users/{alice}/conversations/{id}/typing", null, Ct)).StatusCode);
        var typing = await stream.NextAsync("typing", Soon);
        Assert.Equal((id, alice), (typing.Data.GetProperty("conversationId").GetString(), typing.Data.GetProperty("userId").GetString()));
    }

    private async Task<Dictionary<string, JsonElement>> Receipts(string user, string groupId)
    {
        var list = await _node.ClientFor(user).Conversations(user).Ok();
        var conversation = list.GetProperty("conversations").EnumerateArray().Single(c => c.GetProperty("conversationId").GetString() == groupId);
        return conversation.GetProperty("receipts").EnumerateObject().ToDictionary(p => p.Name, p => p.Value);
    }

    private static async Task Eventually(Func<Task> assertion)
    {
        var deadline = DateTime.UtcNow + Soon;
        while (true)
        {
            try
            {
                await assertion();
                return;
            }
            catch (Exception) when (DateTime.UtcNow < deadline)
            {
                await Task.Delay(50, Ct);
            }
        }
    }
}
