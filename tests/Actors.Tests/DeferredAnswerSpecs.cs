using Akka.Actor;
using Akka.Persistence;
using Akka.Persistence.TestKit;
using Messaging.Messages;

namespace Messaging.Actors.Tests;

/// <summary>
/// A command answered only once the writes in flight are durable (a retried marker, a thread whose conversation is
/// still being written) gets its answer even when the mailbox is stopped meanwhile: the stop ends the incarnation as
/// soon as the writes are durable, before the deferred answer would run, and the caller's ask would time out.
/// </summary>
public sealed class DeferredAnswerSpecs(ITestOutputHelper output)
    : ShardedMailboxTestKit(nameof(DeferredAnswerSpecs), output, new MailboxSettings { Limits = new MailboxLimits(RecentPerConversation: 2) })
{
    private static readonly TimeSpan ShortAsk = TimeSpan.FromSeconds(3);

    private string Alice => $"alice-{Run}";

    private string Bob => $"bob-{Run}";

    /// <summary>
    /// Holds the first write <paramref name="held"/> matches until the test has done <paramref name="meanwhile"/> and
    /// stopped the writer's mailbox (the stop handled, so the mailbox only waits for the write), then lets it go.
    /// </summary>
    private async Task HoldStopReleaseAsync(string writer, Func<object, bool> held, Func<Task> meanwhile)
    {
        var writing = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await WithJournalWrite(write => write.RejectIf(async p =>
        {
            if (held(p.Payload) && writing.TrySetResult())
                await release.Task;
            return false;
        }), async () =>
        {
            await Region.Ask<MailboxStatus>(new GetMailboxStatus(writer), Ask, Ct); // started
            var entity = await EntityAsync(writer);
            Watch(entity);
            await meanwhile();
            await writing.Task.WaitAsync(Ask, Ct);
            entity.Tell(StopMailbox.Instance);
            // Answered in order: once this status is back, the stop has been handled and waits for the write.
            await entity.Ask<MailboxStatus>(new GetMailboxStatus(writer), Ask, Ct);
            release.SetResult();
            ExpectTerminated(entity, Ask, cancellationToken: Ct);
            await ShardForgotAsync(writer, entity); // stopped behind the shard's back: the next command must not meet the dead one
        });
    }

    [Fact]
    public async Task Should_answer_a_retried_marker_that_waits_for_its_write_when_the_mailbox_stops_meanwhile()
    {
        var sent = await Region.Ask<SendResult>(new SendMessage(Alice, [Bob], "hello", "c1"), Ask, Ct);
        Assert.Equal(SendOutcome.Sent, sent.Outcome);
        var mark = new MarkReceipts(Bob, sent.ConversationId, null, 1);
        Task<object> first = null!, retry = null!;

        await HoldStopReleaseAsync(Bob, e => e is ReceiptsMarked, async () =>
        {
            first = Region.Ask<object>(mark, Ask, Ct);
            retry = Region.Ask<object>(mark, ShortAsk, Ct); // nothing to change in Decided: answered after the write
            await Region.Ask<MailboxStatus>(new GetMailboxStatus(Bob), Ask, Ct);
            Assert.False(retry.IsCompleted);
        });

        Assert.IsType<ConversationAnswer>(await first);
        var answer = await retry; // without the owed answer: the ask times out
        Assert.Contains("before it could answer", Assert.IsType<MailboxUnavailable>(answer).Reason);
        // The marker is durable, and the next incarnation has it.
        var conversations = await Region.Ask<ConversationsPage>(new GetConversations(Bob, 0, 20, 0), Ask, Ct);
        Assert.Equal(1, Assert.Single(conversations.Conversations).ReadUpToSeq);
    }

    [Fact]
    public async Task Should_answer_a_thread_query_that_waits_for_its_conversations_write_when_the_mailbox_stops_meanwhile()
    {
        var conversation = Ids.ConversationFor(Alice, Bob);
        Task<SendResult> send = null!;
        Task<object> thread = null!;

        await HoldStopReleaseAsync(Alice, e => e is MessageSent, async () =>
        {
            send = Region.Ask<SendResult>(new SendMessage(Alice, [Bob], "hello", "c1"), Ask, Ct);
            // The conversation is in Decided only: the page waits for the write.
            thread = Region.Ask<object>(new GetThread(Alice, conversation, 0, 20, null, null), ShortAsk, Ct);
            await Region.Ask<MailboxStatus>(new GetMailboxStatus(Alice), Ask, Ct);
            Assert.False(thread.IsCompleted);
        });

        Assert.Contains("before it could answer", Assert.IsType<MailboxUnavailable>(await thread).Reason);
        // The send itself was durable: its retry finds it stored.
        var retried = await Region.Ask<SendResult>(new SendMessage(Alice, [Bob], "hello", "c1"), Ask, Ct);
        Assert.Equal(SendOutcome.Duplicate, retried.Outcome);
        Assert.Single(Assert.IsType<ThreadPage>(await Region.Ask<object>(new GetThread(Alice, conversation, 0, 20, null, null), Ask, Ct)).Messages);
        _ = send;
    }

    [Fact]
    public async Task Should_answer_a_marker_that_waits_for_its_messages_tally_from_the_journal_when_the_mailbox_stops_meanwhile()
    {
        SendResult sent = null!;
        for (var i = 1; i <= 5; i++)
            sent = await Region.Ask<SendResult>(new SendMessage(Alice, [Bob], $"m{i}", $"c{i}"), Ask, Ct);
        await Region.Ask<MailboxStatus>(new GetMailboxStatus(Bob), Ask, Ct); // recovered before the read is held
        var entity = await EntityAsync(Bob);
        Watch(entity);
        var hold = new HoldReads(MailboxActor.PersistenceIdFor(Bob));

        await WithJournalRecovery(recovery => recovery.SetInterceptorAsync(hold), async () =>
        {
            // Message 2 is before the window of 2: its tally is read from the journal before the marker is decided.
            var marker = Region.Ask<object>(new MarkReceipts(Bob, sent.ConversationId, null, 2), ShortAsk, Ct);
            await hold.Reading.WaitAsync(Ask, Ct);
            try
            {
                entity.Tell(StopMailbox.Instance); // nothing in flight: it stops at once, the read with it
                ExpectTerminated(entity, Ask, cancellationToken: Ct);
                // The mailbox's own answer (not its reader's), at once; without it, the ask times out.
                Assert.Contains("before it could answer", Assert.IsType<MailboxUnavailable>(await marker).Reason);
            }
            finally
            {
                hold.Release();
            }
        });

        await ShardForgotAsync(Bob, entity);
        var retried = await Region.Ask<object>(new MarkReceipts(Bob, sent.ConversationId, null, 2), Ask, Ct);
        Assert.Equal(2, Assert.IsType<ConversationAnswer>(retried).Conversation.ReadUpToSeq);
    }

    /// <summary>Holds the journal's reads of one persistence id until released (the first one read tells <see cref="Reading"/>).</summary>
    private sealed class HoldReads(string persistenceId) : IJournalInterceptor
    {
        private readonly TaskCompletionSource _reading = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private readonly TaskCompletionSource _release = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public Task Reading => _reading.Task;

        public void Release() => _release.TrySetResult();

        public async Task InterceptAsync(IPersistentRepresentation message)
        {
            if (message.PersistenceId != persistenceId)
                return;
            _reading.TrySetResult();
            await _release.Task;
        }
    }
}
