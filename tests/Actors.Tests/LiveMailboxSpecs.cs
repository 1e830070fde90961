using Akka.Actor;
using Akka.TestKit;
using Messaging.Messages;

namespace Messaging.Actors.Tests;

/// <summary>Receipts and live subscriptions through real mailboxes behind sharding, on the test journal.</summary>
public sealed class LiveMailboxSpecs(ITestOutputHelper output)
    : ShardedMailboxTestKit(nameof(LiveMailboxSpecs), output, new MailboxSettings
    {
        SnapshotEvery = 4,
        DeliveryWait = TimeSpan.FromSeconds(3),
        RedeliveryInterval = TimeSpan.FromMilliseconds(200),
        MaxStreamsPerUser = 2,
        Limits = new MailboxLimits(RecentPerConversation: 3),
    })
{
    private string Alice => $"alice-{Run}";

    private string Bob => $"bob-{Run}";

    private string Conversation => Ids.ConversationFor(Alice, Bob);

    private async Task<SendResult> SendAsync(string from, string to, string text) =>
        await Region.Ask<SendResult>(new SendMessage(from, [to], text, Guid.NewGuid().ToString("N")), Ask, Ct);

    private async Task<ConversationSummary> ConversationOf(string user) =>
        Assert.Single((await Region.Ask<ConversationsPage>(new GetConversations(user, 0, 10, 0), Ask, Ct)).Conversations);

    [Fact]
    public async Task Should_keep_markers_and_receipts_through_crashes_of_both_mailboxes()
    {
        var sent = new List<SendResult>();
        for (var i = 0; i < 3; i++)
            sent.Add(await SendAsync(Alice, Bob, $"m{i}"));

        var answer = await Region.Ask<ConversationAnswer>(new MarkReceipts(Bob, Conversation, null, 2), Ask, Ct);
        Assert.Equal((2L, 1L), (answer.Conversation.ReadUpToSeq, answer.Conversation.UnreadCount));
        await AwaitAssertAsync(async () =>
            Assert.Equal(new Receipt(sent[1].ServerTimestamp, sent[1].ServerTimestamp),
                Assert.Single((await ConversationOf(Alice)).Receipts).Receipt), Ask, cancellationToken: Ct);

        await KillMailboxAsync(Bob);
        await KillMailboxAsync(Alice);

        var bob = await ConversationOf(Bob);
        Assert.Equal((2L, 1L, 3L), (bob.ReadUpToSeq, bob.UnreadCount, bob.LastSeq));
        var alice = await ConversationOf(Alice);
        Assert.Equal(sent[1].ServerTimestamp, Assert.Single(alice.Receipts).Receipt.ReadUpTo);
        var page = Assert.IsType<ThreadPage>(await Region.Ask<object>(new GetThread(Alice, Conversation, 0, 10, null, null), Ask, Ct));
        Assert.Equal([MessageStatus.Read, MessageStatus.Read, MessageStatus.Sent],
            page.Messages.Select(m => Receipts.StatusOf(m.Message, Alice, page.Receipts)!.Value));
    }

    [Fact]
    public async Task Should_read_both_markers_from_the_journal_when_both_lie_before_the_window()
    {
        var sent = new List<SendResult>();
        for (var i = 0; i < 8; i++)
            sent.Add(await SendAsync(Alice, Bob, $"m{i}")); // bob's window holds seqs 6..8

        var answer = await Region.Ask<ConversationAnswer>(new MarkReceipts(Bob, Conversation, 4, 2), Ask, Ct);

        Assert.Equal((8L, 2L, 6L), (answer.Conversation.LastSeq, answer.Conversation.ReadUpToSeq, answer.Conversation.UnreadCount));
        await AwaitAssertAsync(async () =>
            Assert.Equal(new Receipt(sent[3].ServerTimestamp, sent[1].ServerTimestamp),
                Assert.Single((await ConversationOf(Alice)).Receipts).Receipt), Ask, cancellationToken: Ct);
    }

    [Fact]
    public async Task Should_redeliver_a_receipt_the_senders_journal_refused_once()
    {
        var sent = await SendAsync(Alice, Bob, "hi");
        var refused = 0;
        await WithJournalWrite(write => write.RejectIf(p => Task.FromResult(
            p.Payload is ReceiptReceived && Interlocked.Increment(ref refused) == 1)), async () =>
        {
            await Region.Ask<ConversationAnswer>(new MarkReceipts(Bob, Conversation, 1, null), Ask, Ct);
            await AwaitConditionAsync(() => Task.FromResult(Volatile.Read(ref refused) >= 1), Ask, cancellationToken: Ct);
        });

        await AwaitAssertAsync(async () =>
            Assert.Equal(new Receipt(sent.ServerTimestamp, 0), Assert.Single((await ConversationOf(Alice)).Receipts).Receipt),
            Ask, cancellationToken: Ct);
    }

    [Fact]
    public async Task Should_catch_a_stream_up_push_every_change_and_serve_it_again_after_the_mailbox_restarts()
    {
        await SendAsync(Alice, Bob, "before");
        var stream = CreateTestProbe();

        Region.Tell(new Subscribe(Bob, 0), stream.Ref);
        var catchUp = await stream.ExpectMsgAsync<LiveChanges>(Ask, cancellationToken: Ct);
        var mailbox = stream.LastSender;
        var first = Assert.Single(catchUp.Changes);
        Assert.True(catchUp.CaughtUp);
        Assert.Empty(first.Messages); // catching up: the conversation as it is, the client reads what it lacks

        await SendAsync(Alice, Bob, "live");
        var pushed = await stream.ExpectMsgAsync<LiveChanges>(Ask, cancellationToken: Ct);
        Assert.Equal("live", Assert.Single(Assert.Single(pushed.Changes).Messages).Message.Text);
        var lastId = pushed.Changes[0].Conversation.LastUpdatedTimestamp;
        Assert.True(lastId > first.Conversation.LastUpdatedTimestamp);

        // The mailbox stops: the stream sees it go, and asks the next incarnation from its own last id.
        stream.Watch(mailbox);
        await KillMailboxAsync(Bob);
        await stream.ExpectTerminatedAsync(mailbox, Ask, cancellationToken: Ct);
        await SendAsync(Alice, Bob, "while away");
        Region.Tell(new Subscribe(Bob, lastId), stream.Ref);
        var resumed = await stream.ExpectMsgAsync<LiveChanges>(Ask, cancellationToken: Ct);
        Assert.Equal(3, Assert.Single(resumed.Changes).Conversation.LastSeq);
        Assert.NotEqual(mailbox, stream.LastSender);
        await SendAsync(Alice, Bob, "live again");
        var again = await stream.ExpectMsgAsync<LiveChanges>(Ask, cancellationToken: Ct);
        Assert.Equal("live again", Assert.Single(Assert.Single(again.Changes).Messages).Message.Text);
    }

    [Fact]
    public async Task Should_hold_at_most_the_configured_streams_per_user_and_free_a_place_when_one_stops()
    {
        var streams = Enumerable.Range(0, 3).Select(_ => CreateTestProbe()).ToArray();
        foreach (var stream in streams[..2])
        {
            Region.Tell(new Subscribe(Bob, long.MaxValue), stream.Ref);
            await stream.ExpectMsgAsync<LiveChanges>(Ask, cancellationToken: Ct);
        }

        Region.Tell(new Subscribe(Bob, long.MaxValue), streams[2].Ref);
        await streams[2].ExpectMsgAsync<SubscriptionRefused>(Ask, cancellationToken: Ct);

        Sys.Stop(streams[0].Ref);
        await AwaitAssertAsync(async () =>
        {
            Region.Tell(new Subscribe(Bob, long.MaxValue), streams[2].Ref);
            await streams[2].ExpectMsgAsync<LiveChanges>(TimeSpan.FromMilliseconds(500), cancellationToken: Ct);
        }, Ask, cancellationToken: Ct);
    }
}
