using System.Net;
using System.Net.Http.Json;
using System.Text.Json;

namespace Messaging.EndToEnd.Tests;

/// <summary>A node with a short keep-alive, a small stream limit and a small window of recent messages.</summary>
public sealed class LiveNodeFixture : IAsyncLifetime
{
    public const int MaxStreams = 3;

    public TestNode Node { get; private set; } = null!;

    public async ValueTask InitializeAsync() => Node = await TestNode.StartAsync(
        "--Messaging:Mailbox:RecentPerConversation=4",
        "--Messaging:Http:LiveKeepAlive=00:00:01",
        $"--Messaging:Mailbox:MaxStreamsPerUser={MaxStreams}");

    public async ValueTask DisposeAsync() => await Node.DisposeAsync();
}

/// <summary>Live events (SSE), receipts, unread counts and typing over Kestrel: API.md's v1.1 sections.</summary>
public sealed class LiveEventsSpecs(LiveNodeFixture fixture) : IClassFixture<LiveNodeFixture>
{
    private static readonly TimeSpan Soon = TimeSpan.FromSeconds(10);
    private readonly TestNode _node = fixture.Node;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    // ---------------- live events ----------------

    [Fact]
    public async Task Should_push_a_stored_message_to_the_recipients_open_stream()
    {
        var (alice, bob) = (Users.Unique("alice"), Users.Unique("bob"));
        await using var stream = await SseClient.ConnectAsync(_node.ClientFor(bob), bob, cancellationToken: Ct);
        Assert.Equal(HttpStatusCode.OK, stream.Status);

        var sent = await _node.ClientFor(alice).Send(bob, "hi bob").Ok();

        var evt = await stream.NextAsync("conversation", Soon);
        var conversation = evt.Data.GetProperty("conversation");
        Assert.Equal(sent.GetProperty("conversationId").GetString(), conversation.GetProperty("conversationId").GetString());
        Assert.Equal(conversation.GetProperty("lastUpdatedTimestamp").GetInt64(), evt.Id);
        Assert.Equal("direct", conversation.GetProperty("kind").GetString());
        Assert.Equal(JsonValueKind.Null, conversation.GetProperty("name").ValueKind);
        Assert.Equal(1, conversation.GetProperty("lastSeq").GetInt64());
        Assert.Equal(1, conversation.GetProperty("unreadCount").GetInt64());
        var message = Assert.Single(evt.Data.GetProperty("messages").EnumerateArray());
        Assert.Equal("hi bob", message.GetProperty("message").GetString());
        Assert.Equal(sent.GetProperty("messageId").GetString(), message.GetProperty("messageId").GetString());
        Assert.False(message.TryGetProperty("status", out _)); // not bob's own message
    }

    [Fact]
    public async Task Should_push_the_senders_own_message_to_their_other_devices_with_its_status()
    {
        var (alice, bob) = (Users.Unique("alice"), Users.Unique("bob"));
        await using var otherDevice = await SseClient.ConnectAsync(_node.ClientFor(alice), alice, cancellationToken: Ct);

        await _node.ClientFor(alice).Send(bob, "from my phone").Ok();

        var evt = await otherDevice.NextAsync("conversation", Soon);
        var message = Assert.Single(evt.Data.GetProperty("messages").EnumerateArray());
        Assert.Equal("sent", message.GetProperty("status").GetString());
        Assert.Equal(0, evt.Data.GetProperty("conversation").GetProperty("unreadCount").GetInt64());
    }

    [Fact]
    public async Task Should_resume_with_exactly_the_changes_after_the_last_event_id()
    {
        var (alice, bob, carol) = (Users.Unique("alice"), Users.Unique("bob"), Users.Unique("carol"));
        var bobClient = _node.ClientFor(bob);
        long lastId;
        await using (var first = await SseClient.ConnectAsync(bobClient, bob, cancellationToken: Ct))
        {
            await _node.ClientFor(alice).Send(bob, "one").Ok();
            lastId = (await first.NextAsync("conversation", Soon)).Id!.Value;
        }

        // Missed while disconnected: two more from alice, one from carol, then alice again.
        await _node.ClientFor(alice).Send(bob, "two").Ok();
        await _node.ClientFor(carol).Send(bob, "from carol").Ok();
        await _node.ClientFor(alice).Send(bob, "three").Ok();

        await using var resumed = await SseClient.ConnectAsync(bobClient, bob, lastId, cancellationToken: Ct);
        var catchUp = await resumed.DrainAsync(TimeSpan.FromSeconds(2));

        // One event per conversation changed after lastId, oldest change first, with the conversation as it is now.
        Assert.Equal(2, catchUp.Count);
        Assert.All(catchUp, e => Assert.Equal("conversation", e.Type));
        Assert.All(catchUp, e => Assert.True(e.Id > lastId, $"event {e.Id} is not after {lastId}"));
        Assert.True(catchUp[0].Id < catchUp[1].Id);
        Assert.Contains(carol, catchUp[0].Data.GetProperty("conversation").GetProperty("participantIds").EnumerateArray().Select(p => p.GetString()));
        var withAlice = catchUp[1].Data.GetProperty("conversation");
        Assert.Equal(3, withAlice.GetProperty("lastSeq").GetInt64());
        Assert.Equal("three", withAlice.GetProperty("snippet").GetString());
        Assert.Equal(3, withAlice.GetProperty("unreadCount").GetInt64());

        // Then live.
        await _node.ClientFor(alice).Send(bob, "four").Ok();
        var live = await resumed.NextAsync("conversation", Soon);
        Assert.True(live.Id > catchUp[1].Id);
        Assert.Equal("four", Assert.Single(live.Data.GetProperty("messages").EnumerateArray()).GetProperty("message").GetString());
    }

    [Fact]
    public async Task Should_resume_from_the_lastEventId_query_parameter_and_page_a_long_catch_up()
    {
        var bob = Users.Unique("bob");
        var senders = Enumerable.Range(0, 130).Select(i => Users.Unique($"s{i}")).ToArray(); // more than one catch-up page (100)
        foreach (var sender in senders)
            await _node.ClientFor(sender).Send(bob, $"hi from {sender}").Ok();

        await using var stream = await SseClient.ConnectAsync(_node.ClientFor(bob), bob, query: "?lastEventId=0", cancellationToken: Ct);
        var events = await stream.DrainAsync(TimeSpan.FromSeconds(2));

        Assert.Equal(senders.Length, events.Count);
        Assert.Equal(events.Select(e => e.Id).Order(), events.Select(e => e.Id)); // strictly increasing ids
        Assert.Equal(events.Count, events.Select(e => e.Id).Distinct().Count());
        Assert.Equal(senders, events.Select(e => e.Data.GetProperty("conversation").GetProperty("participantIds")
            .EnumerateArray().Select(p => p.GetString()).Single(p => p != bob)));
    }

    [Fact]
    public async Task Should_start_live_without_an_id_and_keep_the_stream_alive_with_comments()
    {
        var (alice, bob) = (Users.Unique("alice"), Users.Unique("bob"));
        await _node.ClientFor(alice).Send(bob, "before the stream").Ok();

        var before = (await _node.ClientFor(bob).Conversations(bob).Ok()).GetProperty("conversations")[0].GetProperty("lastUpdatedTimestamp").GetInt64();
        await using var stream = await SseClient.ConnectAsync(_node.ClientFor(bob), bob, cancellationToken: Ct);
        await Eventually.AssertAsync(() => Task.FromResult(stream.Comments >= 2), Soon, "two keep-alive comments (1 s apart)");
        // Before any event the stream said where it starts, so a reconnect at once would resume, not start live again.
        Assert.Equal(before, stream.LastEventId);
        await _node.ClientFor(alice).Send(bob, "after").Ok();

        var evt = await stream.NextAsync(Soon, "the live message");
        Assert.Equal("after", Assert.Single(evt.Data.GetProperty("messages").EnumerateArray()).GetProperty("message").GetString());
    }

    [Fact]
    public async Task Should_take_the_token_as_access_token_on_the_events_route_only()
    {
        var bob = Users.Unique("bob");
        var token = _node.Tokens.Issue(bob);

        await using var stream = await SseClient.ConnectAsync(_node.Anonymous, bob, query: $"?access_token={token}", cancellationToken: Ct);
        Assert.Equal(HttpStatusCode.OK, stream.Status);

        var list = await _node.Anonymous.GetAsync($"/v1/users/{bob}/conversations?access_token={token}", Ct);
        Assert.Equal(HttpStatusCode.Unauthorized, list.StatusCode);
        await using var bad = await SseClient.ConnectAsync(_node.Anonymous, bob, query: "?access_token=not.a.token", cancellationToken: Ct);
        Assert.Equal(HttpStatusCode.Unauthorized, bad.Status);
    }

    [Fact]
    public async Task Should_refuse_streams_of_another_user_without_a_token_or_with_a_bad_id()
    {
        var (alice, bob) = (Users.Unique("alice"), Users.Unique("bob"));

        await using var other = await SseClient.ConnectAsync(_node.ClientFor(alice), bob, cancellationToken: Ct);
        Assert.Equal(HttpStatusCode.Forbidden, other.Status);
        await using var anonymous = await SseClient.ConnectAsync(_node.Anonymous, bob, cancellationToken: Ct);
        Assert.Equal(HttpStatusCode.Unauthorized, anonymous.Status);
        await using var badId = await SseClient.ConnectAsync(_node.ClientFor(bob), bob, query: "?lastEventId=yesterday", cancellationToken: Ct);
        Assert.Equal(HttpStatusCode.BadRequest, badId.Status);
        Assert.Contains("Last-Event-ID", (await badId.ProblemAsync()).GetProperty("detail").GetString());
    }

    [Fact]
    public async Task Should_refuse_a_stream_past_the_per_user_limit_and_take_one_again_once_one_closes()
    {
        var bob = Users.Unique("bob");
        var client = _node.ClientFor(bob);
        var open = new List<SseClient>();
        try
        {
            for (var i = 0; i < LiveNodeFixture.MaxStreams; i++)
            {
                open.Add(await SseClient.ConnectAsync(client, bob, cancellationToken: Ct));
                Assert.Equal(HttpStatusCode.OK, open[^1].Status);
            }

            await using (var tooMany = await SseClient.ConnectAsync(client, bob, cancellationToken: Ct))
            {
                Assert.Equal(HttpStatusCode.TooManyRequests, tooMany.Status);
                Assert.Contains($"limit is {LiveNodeFixture.MaxStreams}", (await tooMany.ProblemAsync()).GetProperty("detail").GetString());
            }

            await open[0].DisposeAsync();
            open.RemoveAt(0);
            await Eventually.AssertAsync(async () =>
            {
                var again = await SseClient.ConnectAsync(client, bob, cancellationToken: Ct);
                if (again.Status == HttpStatusCode.OK)
                {
                    open.Add(again);
                    return true;
                }
                await again.DisposeAsync();
                return false;
            }, Soon, "a stream once one of the open ones closed");
        }
        finally
        {
            foreach (var stream in open)
                await stream.DisposeAsync();
        }
    }

    // ---------------- receipts and unread ----------------

    [Fact]
    public async Task Should_move_the_readers_unread_count_and_the_senders_receipts_and_statuses()
    {
        var (alice, bob) = (Users.Unique("alice"), Users.Unique("bob"));
        var (aliceClient, bobClient) = (_node.ClientFor(alice), _node.ClientFor(bob));
        var stamps = new List<long>();
        foreach (var text in new[] { "one", "two", "three" })
            stamps.Add((await aliceClient.Send(bob, text).Ok()).GetProperty("serverTimestamp").GetInt64());
        var conversationId = Ids(alice, bob);
        var before = (await aliceClient.Conversations(alice).Ok()).GetProperty("conversations")[0];
        Assert.Equal(3, (await bobClient.Conversations(bob).Ok()).GetProperty("conversations")[0].GetProperty("unreadCount").GetInt64());
        await using var aliceStream = await SseClient.ConnectAsync(aliceClient, alice, cancellationToken: Ct);

        var read = await bobClient.Receipts(bob, conversationId, new { readUpToSeq = 2 }).Ok();

        Assert.Equal(2, read.GetProperty("readUpToSeq").GetInt64());
        Assert.Equal(1, read.GetProperty("unreadCount").GetInt64());
        Assert.Equal(3, read.GetProperty("lastSeq").GetInt64());

        // Alice's copy follows over the channel: receipts in her timestamps, a new stamp, a live event.
        var pushed = await aliceStream.NextAsync("conversation", Soon);
        var receipt = pushed.Data.GetProperty("conversation").GetProperty("receipts").GetProperty(bob);
        Assert.Equal(stamps[1], receipt.GetProperty("readUpTo").GetInt64());
        Assert.Equal(stamps[1], receipt.GetProperty("deliveredUpTo").GetInt64()); // read implies delivered
        Assert.Empty(pushed.Data.GetProperty("messages").EnumerateArray());
        var after = (await aliceClient.Conversations(alice).Ok()).GetProperty("conversations")[0];
        Assert.True(after.GetProperty("lastUpdatedTimestamp").GetInt64() > before.GetProperty("lastUpdatedTimestamp").GetInt64());
        Assert.Equal(["read", "read", "sent"], await Statuses(aliceClient, alice, conversationId));

        await bobClient.Receipts(bob, conversationId, new { deliveredUpToSeq = 3 }).Ok();
        await Eventually.AssertAsync(async () => (await Statuses(aliceClient, alice, conversationId)).SequenceEqual(["read", "read", "delivered"]),
            Soon, "the third message delivered");
    }

    [Fact]
    public async Task Should_never_move_markers_backwards_and_answer_a_repeat_with_the_same_conversation()
    {
        var (alice, bob) = (Users.Unique("alice"), Users.Unique("bob"));
        var bobClient = _node.ClientFor(bob);
        for (var i = 0; i < 3; i++)
            await _node.ClientFor(alice).Send(bob, $"m{i}").Ok();
        var conversationId = Ids(alice, bob);

        var first = await bobClient.Receipts(bob, conversationId, new { readUpToSeq = 3 }).Ok();
        var repeat = await bobClient.Receipts(bob, conversationId, new { readUpToSeq = 3 }).Ok();
        var backwards = await bobClient.Receipts(bob, conversationId, new { readUpToSeq = 1, deliveredUpToSeq = 2 }).Ok();

        Assert.Equal(first.GetRawText(), repeat.GetRawText()); // nothing stored: not even a new stamp
        Assert.Equal(first.GetRawText(), backwards.GetRawText());
        Assert.Equal(0, backwards.GetProperty("unreadCount").GetInt64());
    }

    [Fact]
    public async Task Should_count_only_others_messages_as_unread_and_read_markers_below_the_window_from_the_journal()
    {
        var (alice, bob) = (Users.Unique("alice"), Users.Unique("bob"));
        var (aliceClient, bobClient) = (_node.ClientFor(alice), _node.ClientFor(bob));
        var aliceStamps = new List<long>();
        // bob's copy: a1 a2 b3 a4 a5 a6 a7 a8 a9 a10 (the window holds 4)
        aliceStamps.Add((await aliceClient.Send(bob, "a1").Ok()).GetProperty("serverTimestamp").GetInt64());
        aliceStamps.Add((await aliceClient.Send(bob, "a2").Ok()).GetProperty("serverTimestamp").GetInt64());
        await bobClient.Send(alice, "b3").Ok();
        for (var i = 4; i <= 10; i++)
            aliceStamps.Add((await aliceClient.Send(bob, $"a{i}").Ok()).GetProperty("serverTimestamp").GetInt64());
        var conversationId = Ids(alice, bob);
        Assert.Equal(9, (await bobClient.Conversations(bob).Ok()).GetProperty("conversations")[0].GetProperty("unreadCount").GetInt64());

        var read = await bobClient.Receipts(bob, conversationId, new { readUpToSeq = 4 }).Ok(); // a4: before the window

        Assert.Equal(6, read.GetProperty("unreadCount").GetInt64()); // a5..a10; b3 was never unread
        await Eventually.AssertAsync(async () =>
            {
                var mine = (await aliceClient.Conversations(alice).Ok()).GetProperty("conversations")[0];
                return mine.GetProperty("receipts").TryGetProperty(bob, out var r) && r.GetProperty("readUpTo").GetInt64() == aliceStamps[2];
            }, Soon, "alice's receipt: read up to a4's timestamp");
    }

    [Fact]
    public async Task Should_refuse_bad_receipts_and_store_nothing()
    {
        var (alice, bob, mallory) = (Users.Unique("alice"), Users.Unique("bob"), Users.Unique("mallory"));
        var bobClient = _node.ClientFor(bob);
        await _node.ClientFor(alice).Send(bob, "one").Ok();
        var conversationId = Ids(alice, bob);
        var before = (await bobClient.Conversations(bob).Ok()).GetRawText();

        await (await bobClient.Receipts(bob, conversationId, new { readUpToSeq = 2 })).AssertProblem(HttpStatusCode.BadRequest);
        await (await bobClient.Receipts(bob, conversationId, new { deliveredUpToSeq = -1 })).AssertProblem(HttpStatusCode.BadRequest);
        await (await bobClient.Receipts(bob, conversationId, new { })).AssertProblem(HttpStatusCode.BadRequest);
        await (await bobClient.Receipts(bob, conversationId, new { readUpToSeq = 1, seen = true })).AssertProblem(HttpStatusCode.BadRequest);
        await (await bobClient.PostAsync($"/v1/users/{bob}/conversations/{conversationId}/receipts",
            new StringContent("{\"readUpToSeq\":", System.Text.Encoding.UTF8, "application/json"), Ct)).AssertProblem(HttpStatusCode.BadRequest);
        await (await _node.ClientFor(mallory).Receipts(bob, conversationId, new { readUpToSeq = 1 })).AssertProblem(HttpStatusCode.Forbidden);
        await (await _node.ClientFor(mallory).Receipts(mallory, conversationId, new { readUpToSeq = 1 })).AssertProblem(HttpStatusCode.NotFound);
        await (await bobClient.Receipts(bob, Ids(bob, mallory), new { readUpToSeq = 1 })).AssertProblem(HttpStatusCode.NotFound);

        Assert.Equal(before, (await bobClient.Conversations(bob).Ok()).GetRawText());
        var aliceSide = (await _node.ClientFor(alice).Conversations(alice).Ok()).GetProperty("conversations")[0];
        var none = Assert.Single(aliceSide.GetProperty("receipts").EnumerateObject()); // one entry per other participant
        Assert.Equal((bob, 0L, 0L), (none.Name, none.Value.GetProperty("deliveredUpTo").GetInt64(), none.Value.GetProperty("readUpTo").GetInt64()));
    }

    // ---------------- typing ----------------

    [Fact]
    public async Task Should_push_typing_to_the_other_participants_streams_only()
    {
        var (alice, bob) = (Users.Unique("alice"), Users.Unique("bob"));
        await _node.ClientFor(alice).Send(bob, "hi").Ok();
        var conversationId = Ids(alice, bob);
        await using var bobStream = await SseClient.ConnectAsync(_node.ClientFor(bob), bob, cancellationToken: Ct);
        await using var aliceStream = await SseClient.ConnectAsync(_node.ClientFor(alice), alice, cancellationToken: Ct);
        var now = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();

        var typing = await _node.ClientFor(alice).PostAsync($"/v1/users/{alice}/conversations/{conversationId}/typing", null, Ct);
        Assert.Equal(HttpStatusCode.NoContent, typing.StatusCode);

        var evt = await bobStream.NextAsync("typing", Soon);
        Assert.Null(evt.Id);
        Assert.Equal(alice, evt.Data.GetProperty("userId").GetString());
        Assert.Equal(conversationId, evt.Data.GetProperty("conversationId").GetString());
        Assert.InRange(evt.Data.GetProperty("until").GetInt64(), now + 4_000, now + 15_000);
        Assert.Empty(await aliceStream.DrainAsync(TimeSpan.FromSeconds(1))); // not to the typist's own streams
        Assert.False(aliceStream.Ended.IsCompleted, "the typist's own stream must still be open (else the line above proves nothing)");
        var list = (await _node.ClientFor(bob).Conversations(bob).Ok()).GetProperty("conversations")[0];
        Assert.Equal(1, list.GetProperty("lastSeq").GetInt64()); // never stored

        var unknown = await _node.ClientFor(alice).PostAsync($"/v1/users/{alice}/conversations/{Ids(alice, Users.Unique("zed"))}/typing", null, Ct);
        await unknown.AssertProblem(HttpStatusCode.NotFound);
        var forbidden = await _node.ClientFor(bob).PostAsync($"/v1/users/{alice}/conversations/{conversationId}/typing", null, Ct);
        await forbidden.AssertProblem(HttpStatusCode.Forbidden);
    }

    private static string Ids(string a, string b) => Messaging.Messages.Ids.ConversationFor(a, b);

    private static async Task<string[]> Statuses(HttpClient client, string userId, string conversationId) =>
        [.. (await client.Thread(userId, conversationId).Ok()).GetProperty("messages").EnumerateArray()
            .Select(m => m.GetProperty("status").GetString()!)];
}

public static class ReceiptsApi
{
    public static Task<HttpResponseMessage> Receipts(this HttpClient client, string userId, string conversationId, object body) =>
        client.PostAsJsonAsync($"/v1/users/{userId}/conversations/{Uri.EscapeDataString(conversationId)}/receipts", body);
}
