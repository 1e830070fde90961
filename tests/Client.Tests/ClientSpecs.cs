using System.Text;
using Messaging.Client.Models;

namespace Messaging.Client.Tests;

/// <summary>The API through the generated client alone: sends, retries, the conversation list, thread pages, typed errors.</summary>
public sealed class ClientSpecs(ClientNode node)
{
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

    private static void AssertProblem(SendProblemDetails problem, int status, SendProblemDetails_sendStatus sendStatus)
    {
        Assert.Equal(status, problem.ResponseStatusCode);
        Assert.Equal(status, problem.Status);
        Assert.False(string.IsNullOrEmpty(problem.Title));
        Assert.False(string.IsNullOrEmpty(problem.Detail));
        Assert.Equal(sendStatus, problem.SendStatus);
    }
}
