using System.Net;
using System.Text;
using System.Text.Json;

namespace Messaging.EndToEnd.Tests;

/// <summary>Runs every spec below on the embedded SQLite journal.</summary>
public sealed class SendMessageOnSqliteSpecs(NodeFixture fixture) : SendMessageSpecs(fixture.Node), IClassFixture<NodeFixture>;

/// <summary>Runs every spec below on PostgreSQL, the clusters' journal.</summary>
public sealed class SendMessageOnPostgreSqlSpecs(PostgresNodeFixture fixture) : SendMessageSpecs(fixture.Node), IClassFixture<PostgresNodeFixture>;

public abstract class SendMessageSpecs(TestNode node)
{
    private readonly TestNode _node = node;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Should_store_a_sent_message_in_both_mailboxes()
    {
        var (alice, bob) = (Users.Unique("alice"), Users.Unique("bob"));
        var clientMessageId = Guid.NewGuid().ToString();

        var sent = await _node.ClientFor(alice).Send(new { senderId = alice, recipientIds = new[] { bob }, message = "hi", clientMessageId }).Ok();

        Assert.Equal("Sent", sent.GetProperty("sendStatus").GetString());
        var conversationId = sent.GetProperty("conversationId").GetString()!;
        var messageId = sent.GetProperty("messageId").GetString()!;
        var timestamp = sent.GetProperty("serverTimestamp").GetInt64();
        Assert.True(timestamp > DateTimeOffset.UtcNow.AddMinutes(-5).ToUnixTimeMilliseconds());

        foreach (var user in new[] { alice, bob })
        {
            var client = _node.ClientFor(user);
            var list = await client.Conversations(user).Ok();
            Assert.True(list.GetProperty("isDBupdate").GetBoolean());
            var conversation = Assert.Single(list.GetProperty("conversations").EnumerateArray());
            Assert.Equal(conversationId, conversation.GetProperty("conversationId").GetString());
            Assert.Equal(new[] { alice, bob }.Order(StringComparer.Ordinal),
                conversation.GetProperty("participantIds").EnumerateArray().Select(p => p.GetString()));
            Assert.Equal("hi", conversation.GetProperty("snippet").GetString());

            var thread = await client.Thread(user, conversationId).Ok();
            var message = Assert.Single(thread.GetProperty("messages").EnumerateArray());
            Assert.Equal(messageId, message.GetProperty("messageId").GetString());
            Assert.Equal(conversationId, message.GetProperty("conversationId").GetString());
            Assert.Equal(1, message.GetProperty("seq").GetInt64());
            Assert.Equal(alice, message.GetProperty("senderId").GetString());
            Assert.Equal([bob], message.GetProperty("recipientIds").EnumerateArray().Select(r => r.GetString()));
            Assert.Equal("hi", message.GetProperty("message").GetString());
            Assert.Equal(clientMessageId, message.GetProperty("clientMessageId").GetString());
            Assert.Equal(timestamp, message.GetProperty("serverTimestamp").GetInt64());
        }
    }

    [Fact]
    public async Task Should_answer_a_retry_with_Duplicate_and_the_original_ids()
    {
        var (alice, bob) = (Users.Unique("alice"), Users.Unique("bob"));
        var client = _node.ClientFor(alice);
        var first = await client.Send(bob, "once", "retry-1").Ok();

        var retry = await client.Send(bob, "once", "retry-1").Ok();

        Assert.Equal("Duplicate", retry.GetProperty("sendStatus").GetString());
        Assert.Equal(first.GetProperty("messageId").GetString(), retry.GetProperty("messageId").GetString());
        Assert.Equal(first.GetProperty("conversationId").GetString(), retry.GetProperty("conversationId").GetString());
        Assert.Equal(first.GetProperty("serverTimestamp").GetInt64(), retry.GetProperty("serverTimestamp").GetInt64());
        var thread = await client.Thread(alice, first.GetProperty("conversationId").GetString()!).Ok();
        Assert.Equal(["once"], thread.Texts());
    }

    [Fact]
    public async Task Should_answer_409_when_a_clientMessageId_is_reused_for_other_text_or_recipients()
    {
        var (alice, bob, carol) = (Users.Unique("alice"), Users.Unique("bob"), Users.Unique("carol"));
        var client = _node.ClientFor(alice);
        await client.Send(bob, "first", "reused").Ok();

        await (await client.Send(bob, "other text", "reused")).AssertProblem(HttpStatusCode.Conflict, "Conflict");
        await (await client.Send(carol, "first", "reused")).AssertProblem(HttpStatusCode.Conflict, "Conflict");
    }

    public static TheoryData<string, string, string> InvalidBodies => new()
    {
        { "malformed JSON", """{"recipientIds":["bob"],"message":"hi","clientMessageId":""", "malformed JSON body at $.clientMessageId" },
        { "not an object", """["bob"]""", "malformed JSON body" },
        { "empty body", "", "malformed JSON body" },
        { "unknown member", """{"recipientIds":["bob"],"message":"hi","clientMessageId":"c1","priority":1}""", "unknown member at $.priority" },
        { "missing recipientIds", """{"message":"hi","clientMessageId":"c1"}""", "recipientIds is required" },
        { "missing message", """{"recipientIds":["bob"],"clientMessageId":"c1"}""", "message is required" },
        { "missing clientMessageId", """{"recipientIds":["bob"],"message":"hi"}""", "clientMessageId is required" },
        { "wrong type", """{"recipientIds":"bob","message":"hi","clientMessageId":"c1"}""", "malformed JSON body at $.recipientIds" },
        { "empty text", """{"recipientIds":["bob"],"message":"","clientMessageId":"c1"}""", "message must not be empty" },
        { "no recipient", """{"recipientIds":[],"message":"hi","clientMessageId":"c1"}""", "recipientIds must name exactly one recipient" },
        { "bad recipient id", """{"recipientIds":["bob smith"],"message":"hi","clientMessageId":"c1"}""", "recipientIds[0] must be 1-64 characters" },
        { "null recipient id", """{"recipientIds":[null],"message":"hi","clientMessageId":"c1"}""", "recipientIds[0] must be 1-64 characters" },
        { "too long recipient id", $$"""{"recipientIds":["{{new string('b', 65)}}"],"message":"hi","clientMessageId":"c1"}""", "recipientIds[0] must be 1-64 characters" },
        { "bad clientMessageId", """{"recipientIds":["bob"],"message":"hi","clientMessageId":"c/1"}""", "clientMessageId must be 1-128 characters" },
        { "recipient id with a trailing newline", """{"recipientIds":["bob\n"],"message":"hi","clientMessageId":"c1"}""", "recipientIds[0] must be 1-64 characters" },
        { "clientMessageId with a trailing newline", """{"recipientIds":["bob"],"message":"hi","clientMessageId":"c1\n"}""", "clientMessageId must be 1-128 characters" },
        { "member given twice", """{"recipientIds":["bob"],"recipientIds":["carol"],"message":"hi","clientMessageId":"c1"}""", "member given twice at $.recipientIds" },
        { "member given twice in another case", """{"recipientIds":["bob"],"RecipientIds":["carol"],"message":"hi","clientMessageId":"c1"}""", "member given twice" },
        { "too long clientMessageId", $$"""{"recipientIds":["bob"],"message":"hi","clientMessageId":"{{new string('c', 129)}}"}""", "clientMessageId must be 1-128 characters" },
    };

    [Theory]
    [MemberData(nameof(InvalidBodies))]
    public async Task Should_answer_400_Invalid_for(string why, string body, string detail)
    {
        var response = await _node.ClientFor(Users.Unique("alice")).SendRaw(body);

        var problem = await response.AssertProblem(HttpStatusCode.BadRequest, "Invalid");
        Assert.True(problem.GetProperty("detail").GetString()!.Contains(detail, StringComparison.Ordinal),
            $"{why}: the detail should say '{detail}', it says '{problem.GetProperty("detail").GetString()}'");
    }

    [Fact]
    public async Task Should_refuse_a_user_id_with_a_trailing_newline_in_the_route()
    {
        var alice = Users.Unique("alice");
        var response = await _node.ClientFor(alice).Conversations($"{alice}%0A");
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
    }

    [Fact]
    public async Task Should_name_an_unknown_member_in_client_terms()
    {
        var response = await _node.ClientFor(Users.Unique("alice"))
            .SendRaw("""{"recipientIds":["bob"],"message":"hi","clientMessageId":"c1","priority":1}""");

        var detail = (await response.AssertProblem(HttpStatusCode.BadRequest, "Invalid")).GetProperty("detail").GetString()!;
        Assert.Contains("priority", detail);
        Assert.DoesNotContain("Messaging.", detail);
    }

    [Fact]
    public async Task Should_answer_400_for_a_message_to_oneself()
    {
        var alice = Users.Unique("alice");

        var response = await _node.ClientFor(alice).Send(alice, "note to self");

        await response.AssertProblem(HttpStatusCode.BadRequest, "Invalid");
    }

    [Fact]
    public async Task Should_answer_400_for_two_recipients_pointing_to_groups()
    {
        var client = _node.ClientFor(Users.Unique("alice"));

        var response = await client.Send(new { recipientIds = new[] { "bob", "carol" }, message = "hi all", clientMessageId = "g1" });

        var problem = await response.AssertProblem(HttpStatusCode.BadRequest, "Invalid");
        Assert.Contains("group", problem.GetProperty("detail").GetString(), StringComparison.OrdinalIgnoreCase);
        Assert.Contains("conversationId", problem.GetProperty("detail").GetString());
    }

    [Fact]
    public async Task Should_answer_403_when_senderId_is_not_the_token_user()
    {
        var (alice, bob) = (Users.Unique("alice"), Users.Unique("bob"));

        var response = await _node.ClientFor(alice).Send(new { senderId = bob, recipientIds = new[] { alice }, message = "hi", clientMessageId = "f1" });

        await response.AssertProblem(HttpStatusCode.Forbidden, "Forbidden");
        var list = await _node.ClientFor(bob).Conversations(bob).Ok();
        Assert.Empty(list.GetProperty("conversations").EnumerateArray());
    }

    [Fact]
    public async Task Should_accept_65535_bytes_of_text_and_answer_413_from_65536()
    {
        var (alice, bob) = (Users.Unique("alice"), Users.Unique("bob"));
        var client = _node.ClientFor(alice);
        // 'é' is two UTF-8 bytes: the limit is on bytes, not characters.
        var largest = new string('é', 32_767) + "x";
        Assert.Equal(65_535, Encoding.UTF8.GetByteCount(largest));

        var ok = await client.Send(bob, largest).Ok();
        var tooLarge = await client.Send(bob, largest + "x");

        Assert.Equal("Sent", ok.GetProperty("sendStatus").GetString());
        await tooLarge.AssertProblem(HttpStatusCode.RequestEntityTooLarge, "TooLarge");
        var thread = await client.Thread(alice, ok.GetProperty("conversationId").GetString()!).Ok();
        Assert.Equal([largest], thread.Texts());
    }

    [Fact]
    public async Task Should_refuse_a_10_MB_body_from_its_length_without_reading_it()
    {
        using var tcp = new System.Net.Sockets.TcpClient();
        var stream = await StartRawSendAsync(tcp, Users.Unique("alice"), "Content-Length: 10485760");
        await stream.WriteAsync(Encoding.ASCII.GetBytes("{\"message\":\"" + new string('x', 1000)), Ct);

        // Only the head and 1 KB of a 10 MB body were sent: an answer proves the server did not wait for the rest.
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        var response = await ReadResponse(stream, timeout.Token);

        Assert.StartsWith("HTTP/1.1 413", response);
        Assert.Contains("\"sendStatus\":\"TooLarge\"", response);
    }

    [Fact]
    public async Task Should_refuse_a_chunked_body_once_it_passes_the_limit()
    {
        // A raw socket, so the client stops writing where the spec says and always reads the answer (a client
        // library still writing when the server answers and closes may report only a broken connection).
        var alice = Users.Unique("alice");
        using var tcp = new System.Net.Sockets.TcpClient();
        var stream = await StartRawSendAsync(tcp, alice, "Transfer-Encoding: chunked");
        // Just past the 1 MiB limit, written at once and never ended: small enough that the server's transport takes
        // it all off the socket before it answers, so it closes cleanly (a close with unread bytes would reset the
        // connection and could lose the answer). The body never ends: only the limit can end the request.
        var body = new StringBuilder("{\"message\":\"").Append('x', 1024 * 1024 + 16 * 1024).ToString();
        var chunked = Encoding.ASCII.GetBytes($"{body.Length:x}\r\n{body}\r\n");
        await stream.WriteAsync(chunked, Ct);

        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        var response = await ReadResponse(stream, timeout.Token);

        Assert.StartsWith("HTTP/1.1 413", response);
        Assert.Contains("\"sendStatus\":\"TooLarge\"", response);
        Assert.Equal(HttpStatusCode.OK, (await _node.ClientFor(alice).Conversations(alice)).StatusCode); // still serves
    }

    [Fact]
    public async Task Should_answer_401_with_a_challenge_for_missing_forged_expired_or_wrong_audience_tokens()
    {
        var alice = Users.Unique("alice");
        string?[] tokens =
        [
            null,
            Jwt.Mint(alice, "some-other-key-that-is-long-enough-0123456789"u8.ToArray(), TimeSpan.FromMinutes(10)),
            Jwt.Mint(alice, TestNode.SigningKeyBytes, DateTimeOffset.UtcNow.AddMinutes(-10)),
            Jwt.Mint(alice, TestNode.SigningKeyBytes, DateTimeOffset.UtcNow.AddMinutes(10), audience: "someone-else"),
            Jwt.Mint(alice, TestNode.SigningKeyBytes, DateTimeOffset.UtcNow.AddMinutes(10), issuer: "someone-else"),
            "not-a-jwt",
        ];

        foreach (var token in tokens)
        {
            var client = _node.ClientWithToken(token);
            var send = await client.Send("bob", "hi");
            Assert.Contains(send.Headers.WwwAuthenticate, h => h.Scheme == "Bearer");
            await send.AssertProblem(HttpStatusCode.Unauthorized, "Unauthorized");

            var list = await client.Conversations(alice);
            Assert.Equal(HttpStatusCode.Unauthorized, list.StatusCode);
            Assert.Contains(list.Headers.WwwAuthenticate, h => h.Scheme == "Bearer");
        }
        // The same key and claims with a valid lifetime pass, so the rejections above are about the token alone.
        Assert.Equal(HttpStatusCode.OK, (await _node.ClientWithToken(Jwt.Mint(alice, TestNode.SigningKeyBytes, TimeSpan.FromMinutes(10))).Conversations(alice)).StatusCode);
    }

    [Fact]
    public async Task Should_answer_403_for_another_users_mailbox()
    {
        var (alice, bob) = (Users.Unique("alice"), Users.Unique("bob"));
        var client = _node.ClientFor(alice);
        var sent = await client.Send(bob, "hi").Ok();

        await (await client.Conversations(bob)).AssertProblem(HttpStatusCode.Forbidden);
        await (await client.Thread(bob, sent.GetProperty("conversationId").GetString()!)).AssertProblem(HttpStatusCode.Forbidden);
    }

    [Fact]
    public async Task Should_answer_404_for_an_unknown_conversation_and_400_for_a_malformed_one()
    {
        var alice = Users.Unique("alice");
        var client = _node.ClientFor(alice);

        await (await client.Thread(alice, "dm~alice~nobody")).AssertProblem(HttpStatusCode.NotFound);
        await (await client.Thread(alice, "bad id!")).AssertProblem(HttpStatusCode.BadRequest);
        await (await client.Thread(alice, new string('c', 201))).AssertProblem(HttpStatusCode.BadRequest);
    }

    [Fact]
    public async Task Should_serve_health_and_an_OpenAPI_document_without_a_token()
    {
        Assert.Equal(HttpStatusCode.OK, (await _node.Anonymous.GetAsync("/healthz/live", Ct)).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await _node.Anonymous.GetAsync("/healthz/ready", Ct)).StatusCode);

        var document = await _node.Anonymous.GetAsync("/openapi/v1.json", Ct).Ok();

        var operations = document.GetProperty("paths").EnumerateObject()
            .SelectMany(p => p.Value.EnumerateObject())
            .Where(o => o.Value.ValueKind == JsonValueKind.Object && o.Value.TryGetProperty("operationId", out _))
            .Select(o => o.Value.GetProperty("operationId").GetString())
            .ToHashSet();
        Assert.Superset(new HashSet<string?> { "sendMessage", "fetchConversation", "getThreadMessages" }, operations);
    }

    /// <summary>A send's request head over a raw socket, so a spec decides exactly which body bytes follow, and when.</summary>
    private async Task<Stream> StartRawSendAsync(System.Net.Sockets.TcpClient tcp, string userId, string framingHeader)
    {
        await tcp.ConnectAsync(_node.BaseAddress.Host, _node.BaseAddress.Port);
        var stream = tcp.GetStream();
        var head = $"POST /v1/messages HTTP/1.1\r\nHost: {_node.BaseAddress.Authority}\r\n" +
                   $"Authorization: Bearer {_node.Tokens.Issue(userId)}\r\nContent-Type: application/json\r\n{framingHeader}\r\n\r\n";
        await stream.WriteAsync(Encoding.ASCII.GetBytes(head));
        return stream;
    }

    private static async Task<string> ReadResponse(Stream stream, CancellationToken cancellationToken)
    {
        var buffer = new byte[64 * 1024];
        var text = new StringBuilder();
        while (true)
        {
            int read;
            try
            {
                read = await stream.ReadAsync(buffer, cancellationToken);
            }
            catch (IOException)
            {
                break; // the server closed the connection after answering
            }
            if (read == 0)
                break;
            text.Append(Encoding.UTF8.GetString(buffer, 0, read));
            var s = text.ToString();
            var end = s.IndexOf("\r\n\r\n", StringComparison.Ordinal);
            if (end >= 0 && s.Contains("}", StringComparison.Ordinal))
                break;
        }
        return text.ToString();
    }
}
