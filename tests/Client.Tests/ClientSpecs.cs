using System.Net;
using System.Text;
using Messaging.Client.Models;
using Microsoft.Kiota.Abstractions;
using Microsoft.Kiota.Abstractions.Serialization;

namespace Messaging.Client.Tests;

/// <summary>
/// The API through the generated client alone: sends, retries, the conversation list, thread pages, receipts, typing,
/// typed errors.
/// </summary>
public sealed class ClientSpecs(ClientNode node)
{
    private static readonly TimeSpan Soon = TimeSpan.FromSeconds(10);

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Should_send_retry_list_and_page_a_thread()
    {
        string alice = Users.Unique("alice"), bob = Users.Unique("bob");
        var (client, adapter) = node.ClientFor(alice);
        using var _ = adapter;

        var first = new SendMessageRequest { RecipientIds = [bob], Message = "hi bob 1", ClientMessageId = Guid.NewGuid().ToString() };
        var sent = await client.V1.Messages.PostAsync(first, cancellationToken: Ct);
        Assert.NotNull(sent);
        Assert.Contains(sent.SendStatus, new SendMessageResponse_sendStatus?[] { SendMessageResponse_sendStatus.Sent, SendMessageResponse_sendStatus.Accepted });

        var retried = await client.V1.Messages.PostAsync(first, cancellationToken: Ct);
        Assert.NotNull(retried);
        Assert.Equal(SendMessageResponse_sendStatus.Duplicate, retried.SendStatus);
        Assert.Equal((sent.MessageId, sent.ConversationId, sent.ServerTimestamp),
            (retried.MessageId, retried.ConversationId, retried.ServerTimestamp));

        for (var i = 2; i <= 5; i++)
            await client.V1.Messages.PostAsync(
                new SendMessageRequest { RecipientIds = [bob], Message = $"hi bob {i}", ClientMessageId = Guid.NewGuid().ToString() },
                cancellationToken: Ct);

        var list = await client.V1.Users[alice].Conversations.GetAsync(cancellationToken: Ct);
        Assert.NotNull(list);
        Assert.True(list.IsDBupdate);
        var conversation = Assert.Single(list.Conversations!);
        Assert.Equal(sent.ConversationId, conversation.ConversationId);
        Assert.Equal(new[] { alice, bob }.Order(StringComparer.Ordinal), conversation.ParticipantIds);
        Assert.Equal("hi bob 5", conversation.Snippet);

        var thread = client.V1.Users[alice].Conversations[sent.ConversationId].Messages;
        var newest = await thread.GetAsync(r => r.QueryParameters.Count = 2, Ct);
        Assert.Equal([4L, 5L], newest!.Messages!.Select(m => m.Seq!.Value));
        Assert.Equal(["hi bob 4", "hi bob 5"], newest.Messages!.Select(m => m.Message!));

        var older = await thread.GetAsync(r =>
        {
            r.QueryParameters.Count = 2;
            r.QueryParameters.BeforeSeq = 4;
        }, Ct);
        Assert.Equal([2L, 3L], older!.Messages!.Select(m => m.Seq!.Value));
        Assert.All(older.Messages!, m => Assert.Equal(alice, m.SenderId));
    }

    [Fact]
    public async Task Should_get_a_409_as_a_typed_error_for_a_reused_clientMessageId()
    {
        string alice = Users.Unique("alice"), bob = Users.Unique("bob");
        var (client, adapter) = node.ClientFor(alice);
        using var _ = adapter;
        var clientMessageId = Guid.NewGuid().ToString();
        await client.V1.Messages.PostAsync(
            new SendMessageRequest { RecipientIds = [bob], Message = "first text", ClientMessageId = clientMessageId }, cancellationToken: Ct);

        var problem = await Assert.ThrowsAsync<SendProblemDetails>(() => client.V1.Messages.PostAsync(
            new SendMessageRequest { RecipientIds = [bob], Message = "other text", ClientMessageId = clientMessageId }, cancellationToken: Ct));

        AssertProblem(problem, 409, SendProblemDetails_sendStatus.Conflict);
    }

    [Fact]
    public async Task Should_get_a_413_as_a_typed_error_for_text_over_65535_bytes()
    {
        string alice = Users.Unique("alice"), bob = Users.Unique("bob");
        var (client, adapter) = node.ClientFor(alice);
        using var _ = adapter;
        var text = new string('x', 65_535) + "é"; // 65,537 UTF-8 bytes
        Assert.True(Encoding.UTF8.GetByteCount(text) > 65_535);

        var problem = await Assert.ThrowsAsync<SendProblemDetails>(() => client.V1.Messages.PostAsync(
            new SendMessageRequest { RecipientIds = [bob], Message = text, ClientMessageId = Guid.NewGuid().ToString() }, cancellationToken: Ct));

        AssertProblem(problem, 413, SendProblemDetails_sendStatus.TooLarge);
    }

    [Fact]
    public async Task Should_get_a_404_as_a_typed_error_for_an_unknown_conversation()
    {
        var alice = Users.Unique("alice");
        var (client, adapter) = node.ClientFor(alice);
        using var _ = adapter;

        var problem = await Assert.ThrowsAsync<ProblemDetails>(() =>
            client.V1.Users[alice].Conversations["dm~nobody~else"].Messages.GetAsync(cancellationToken: Ct));

        Assert.Equal((404, 404), (problem.ResponseStatusCode, problem.Status));
        Assert.Contains("dm~nobody~else", problem.Detail);
    }

    [Fact]
    public async Task Should_post_a_read_receipt_and_get_the_conversation_back()
    {
        string alice = Users.Unique("alice"), bob = Users.Unique("bob");
        var (aliceClient, aliceAdapter) = node.ClientFor(alice);
        var (bobClient, bobAdapter) = node.ClientFor(bob);
        using var _ = aliceAdapter;
        using var __ = bobAdapter;
        var sent = await aliceClient.V1.Messages.PostAsync(
            new SendMessageRequest { RecipientIds = [bob], Message = "hi bob", ClientMessageId = Guid.NewGuid().ToString() },
            cancellationToken: Ct);
        Assert.NotNull(sent);
        // Sent: bob's copy is stored; Accepted: it is guaranteed and follows.
        await Eventually.AssertAsync(async () =>
                (await bobClient.V1.Users[bob].Conversations.GetAsync(cancellationToken: Ct))?.Conversations?
                .SingleOrDefault(c => c.ConversationId == sent.ConversationId) is { LastSeq: 1, UnreadCount: 1 },
            Soon, "bob's copy of the message, unread");

        var read = await bobClient.V1.Users[bob].Conversations[sent.ConversationId].Receipts.PostAsync(
            new ReceiptsRequest { ReadUpToSeq = 1 }, cancellationToken: Ct);

        Assert.NotNull(read);
        Assert.Equal(sent.ConversationId, read.ConversationId);
        Assert.Equal((1L, 1L, 0L), (read.LastSeq, read.ReadUpToSeq, read.UnreadCount));
        Assert.Equal(ConversationDto_kind.Direct, read.Kind);
        Assert.Null(read.Name);
        // alice's copy follows: her message shows as read, and her receipts (a map Kiota leaves untyped) say so.
        await Eventually.AssertAsync(async () =>
                (await aliceClient.V1.Users[alice].Conversations[sent.ConversationId].Messages.GetAsync(cancellationToken: Ct))?
                .Messages?.SingleOrDefault() is { Seq: 1, Status: ThreadMessageDto_status.Read },
            Soon, "alice's message read");
        var mine = Assert.Single((await aliceClient.V1.Users[alice].Conversations.GetAsync(cancellationToken: Ct))!.Conversations!);
        var receipt = Assert.IsType<UntypedObject>(mine.Receipts!.AdditionalData[bob]).GetValue();
        Assert.Equal(sent.ServerTimestamp, Assert.IsType<UntypedLong>(receipt["readUpTo"]).GetValue());
    }

    [Fact]
    public async Task Should_post_typing_and_get_a_204()
    {
        string alice = Users.Unique("alice"), bob = Users.Unique("bob");
        var (client, adapter) = node.ClientFor(alice);
        using var _ = adapter;
        var sent = await client.V1.Messages.PostAsync(
            new SendMessageRequest { RecipientIds = [bob], Message = "hi bob", ClientMessageId = Guid.NewGuid().ToString() },
            cancellationToken: Ct);
        var response = new NativeResponseHandler();

        await client.V1.Users[alice].Conversations[sent!.ConversationId].Typing.PostAsync(
            r => r.Options.Add(new ResponseHandlerOption { ResponseHandler = response }), Ct);

        using var answer = Assert.IsType<HttpResponseMessage>(response.Value);
        Assert.Equal(HttpStatusCode.NoContent, answer.StatusCode);
    }

    private static void AssertProblem(SendProblemDetails problem, int status, SendProblemDetails_sendStatus sendStatus)
    {
        Assert.Equal(status, problem.ResponseStatusCode);
        Assert.Equal(status, problem.Status);
        Assert.False(string.IsNullOrEmpty(problem.Title));
        Assert.False(string.IsNullOrEmpty(problem.Detail));
        Assert.Equal(sendStatus, problem.SendStatus);
    }
}
