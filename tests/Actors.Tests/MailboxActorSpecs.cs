using Akka.Actor;
using Akka.Persistence;
using Messaging.Messages;

namespace Messaging.Actors.Tests;

/// <summary>Mailboxes behind the production sharding extension, on the test journal (which can fail on demand).</summary>
public sealed class MailboxActorSpecs(ITestOutputHelper output)
    : ShardedMailboxTestKit(nameof(MailboxActorSpecs), output, new MailboxSettings
    {
        SnapshotEvery = 5,
        DeliveryWait = TimeSpan.FromSeconds(3),
        RedeliveryInterval = TimeSpan.FromMilliseconds(200),
        Limits = new MailboxLimits(RecentPerConversation: 5),
    })
{
    private string Alice => $"alice-{Run}";

    private string Bob => $"bob-{Run}";

    private string Carol => $"carol-{Run}";

    private Task<SendResult> SendAsync(string from, string to, string text, string clientId) =>
        Region.Ask<SendResult>(new SendMessage(from, [to], text, clientId), Ask, Ct);

    private async Task<ThreadPage> ThreadAsync(string user, string conversation, int offset = 0, int count = 200) =>
        Assert.IsType<ThreadPage>(await Region.Ask<object>(new GetThread(user, conversation, offset, count, null, null), Ask, Ct));

    [Fact]
    public async Task Should_answer_Sent_once_the_recipients_copy_is_stored()
    {
        var result = await SendAsync(Alice, Bob, "hello bob", "c1");

        Assert.Equal(SendOutcome.Sent, result.Outcome);
        var bobs = await Region.Ask<ConversationsPage>(new GetConversations(Bob, 0, 20, 0), Ask, Ct);
        var conversation = Assert.Single(bobs.Conversations);
        Assert.Equal(result.ConversationId, conversation.ConversationId);
        var copy = Assert.Single((await ThreadAsync(Bob, result.ConversationId)).Messages);
        Assert.Equal((1L, result.MessageId, result.ServerTimestamp, "hello bob"),
            (copy.Seq, copy.Message.MessageId, copy.Message.ServerTimestamp, copy.Message.Text));
    }

    [Fact]
    public async Task Should_run_each_mailbox_entity_on_the_compact_message_queue()
    {
        Assert.Equal(SendOutcome.Sent, (await SendAsync(Alice, Bob, "hello bob", "c1")).Outcome);
        foreach (var user in new[] { Alice, Bob })
        {
            var entity = await EntityAsync(user);
            var cell = Assert.IsType<ActorCell>(((ActorRefWithCell)entity).Underlying, exactMatch: false);
            Assert.IsType<CompactDequeMessageQueue>(cell.Mailbox!.MessageQueue);
        }
    }

    [Fact]
    public async Task Should_give_a_retry_in_flight_the_first_writes_answer_and_store_once()
    {
        // The journal holds the first write until the retry has reached the mailbox: the retry provably comes while
        // the write is in flight.
        var writing = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        Task<SendResult> first = null!, retry = null!;
        await WithJournalWrite(write => write.RejectIf(async p =>
        {
            if (p.Payload is MessageSent { Message.ClientMessageId: "same-id" })
            {
                writing.TrySetResult();
                await release.Task;
            }
            return false;
        }), async () =>
        {
            first = SendAsync(Alice, Bob, "once", "same-id");
            await writing.Task.WaitAsync(Ask, Ct);
            retry = SendAsync(Alice, Bob, "once", "same-id");
            // The mailbox answers in order: once this status is back, the retry has been handled (and is waiting).
            await Region.Ask<MailboxStatus>(new GetMailboxStatus(Alice), Ask, Ct);
            Assert.False(first.IsCompleted || retry.IsCompleted);
            release.SetResult();
            await Task.WhenAll(first, retry);
        });
        var (a, b) = (await first, await retry);

        Assert.Equal((SendOutcome.Sent, SendOutcome.Sent), (a.Outcome, b.Outcome)); // the retry shares the first's answer
        Assert.Equal(a.MessageId, b.MessageId);
        Assert.Equal(a.ServerTimestamp, b.ServerTimestamp);
        Assert.Single((await ThreadAsync(Alice, a.ConversationId)).Messages);
        Assert.Equal(SendOutcome.Duplicate, (await SendAsync(Alice, Bob, "once", "same-id")).Outcome);
        Assert.Equal(SendOutcome.Conflict, (await SendAsync(Alice, Bob, "changed", "same-id")).Outcome);
    }

    [Fact]
    public async Task Should_recover_messages_dedup_and_stamps_from_snapshot_plus_journal_after_a_crash()
    {
        var results = new List<SendResult>();
        for (var i = 1; i <= 12; i++)
            results.Add(await SendAsync(Alice, Bob, $"m{i}", $"c{i}"));
        var snapshot = await SnapshotsActorRef.Ask<LoadSnapshotResult>(
            new LoadSnapshot(MailboxActor.PersistenceIdFor(Alice), SnapshotSelectionCriteria.Latest, long.MaxValue), Ask, Ct);
        Assert.NotNull(snapshot.Snapshot); // recovery below starts from a snapshot and replays the rest

        await KillMailboxAsync(Alice);

        var thread = await ThreadAsync(Alice, results[0].ConversationId);
        Assert.Equal(Enumerable.Range(1, 12).Select(i => $"m{i}"), thread.Messages.Select(m => m.Message.Text));
        Assert.Equal(Enumerable.Range(1, 12).Select(i => (long)i), thread.Messages.Select(m => m.Seq));
        var retry = await SendAsync(Alice, Bob, "m3", "c3");
        Assert.Equal((SendOutcome.Duplicate, results[2].MessageId), (retry.Outcome, retry.MessageId));
        var next = await SendAsync(Alice, Bob, "m13", "c13");
        Assert.True(next.ServerTimestamp > results[^1].ServerTimestamp);
        var deep = await ThreadAsync(Alice, results[0].ConversationId, offset: 5, count: 20);
        Assert.Equal(Enumerable.Range(1, 8).Select(i => $"m{i}"), deep.Messages.Select(m => m.Message.Text));
    }

    [Fact]
    public async Task Should_never_acknowledge_a_write_the_journal_failed()
    {
        await WithJournalWrite(write => write.Fail(), async () =>
        {
            var failed = await SendAsync(Alice, Bob, "lost?", "c1");
            Assert.Equal(SendOutcome.Unavailable, failed.Outcome);
        });

        var retried = await SendAsync(Alice, Bob, "lost?", "c1");

        Assert.Equal(SendOutcome.Sent, retried.Outcome); // not Duplicate: the failed write stored nothing
        var copy = Assert.Single((await ThreadAsync(Alice, retried.ConversationId)).Messages);
        Assert.Equal(retried.MessageId, copy.Message.MessageId);
    }

    [Fact]
    public async Task Should_never_acknowledge_a_write_the_journal_rejected()
    {
        await WithJournalWrite(write => write.Reject(), async () =>
        {
            var rejected = await SendAsync(Alice, Bob, "rejected", "c1");
            Assert.Equal(SendOutcome.Unavailable, rejected.Outcome);
        });

        var retried = await SendAsync(Alice, Bob, "rejected", "c1");
        Assert.Equal(SendOutcome.Sent, retried.Outcome);
        Assert.Single((await ThreadAsync(Alice, retried.ConversationId)).Messages);
    }

    [Fact]
    public async Task Should_read_pages_deep_in_a_long_thread_from_the_journal_in_both_copies()
    {
        for (var i = 1; i <= 120; i++)
        {
            // Interleave another conversation so journal positions and seqs differ.
            Assert.Equal(SendOutcome.Sent, (await SendAsync(Alice, Carol, $"x{i}", $"x{i}")).Outcome);
            Assert.Equal(SendOutcome.Sent, (await SendAsync(Alice, Bob, $"m{i}", $"c{i}")).Outcome);
        }
        var conversation = Ids.ConversationFor(Alice, Bob);

        var page = await ThreadAsync(Alice, conversation, offset: 77, count: 20);
        Assert.Equal(Enumerable.Range(24, 20).Select(i => (long)i), page.Messages.Select(m => m.Seq));
        Assert.Equal(Enumerable.Range(24, 20).Select(i => $"m{i}"), page.Messages.Select(m => m.Message.Text));

        var first = await ThreadAsync(Bob, conversation, offset: 117, count: 10);
        Assert.Equal(["m1", "m2", "m3"], first.Messages.Select(m => m.Message.Text));

        var before = Assert.IsType<ThreadPage>(await Region.Ask<object>(new GetThread(Bob, conversation, 0, 4, 64, null), Ask, Ct));
        Assert.Equal([60L, 61, 62, 63], before.Messages.Select(m => m.Seq));
    }

    [Fact]
    public async Task Should_link_pipelined_writes_to_their_own_journal_positions()
    {
        // Many writes in flight at once in both mailboxes: every event must point at the right earlier ones.
        var sends = Enumerable.Range(1, 60)
            .Select(i => i % 2 == 0 ? SendAsync(Alice, Bob, $"m{i}", $"c{i}") : SendAsync(Alice, Carol, $"x{i}", $"x{i}"))
            .ToList();
        await Task.WhenAll(sends);
        var conversation = Ids.ConversationFor(Alice, Bob);

        var mine = await ThreadAsync(Alice, conversation, offset: 5, count: 25);
        Assert.Equal(Enumerable.Range(1, 25).Select(i => $"m{2 * i}"), mine.Messages.Select(m => m.Message.Text));
        var theirs = await ThreadAsync(Bob, conversation, offset: 10, count: 20);
        Assert.Equal(Enumerable.Range(1, 20).Select(i => (long)i), theirs.Messages.Select(m => m.Seq));
    }

    [Fact]
    public async Task Should_answer_not_found_for_an_unknown_conversation()
    {
        Assert.IsType<ConversationNotFound>(
            await Region.Ask<object>(new GetThread(Alice, Ids.ConversationFor(Alice, "nobody"), 0, 10, null, null), Ask, Ct));
    }
}
