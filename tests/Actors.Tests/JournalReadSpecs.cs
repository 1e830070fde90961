using Akka.Actor;
using Messaging.Messages;

namespace Messaging.Actors.Tests;

/// <summary>Older thread pages read from the journal: what one read goes through, and how many run at once.</summary>
public sealed class JournalReadSpecs(ITestOutputHelper output)
    : ShardedMailboxTestKit(nameof(JournalReadSpecs), output, new MailboxSettings
    {
        Limits = new MailboxLimits(RecentPerConversation: 5),
        JournalReadMaxRange = 20,
        MaxConcurrentJournalReads = 2,
        JournalReadTimeout = TimeSpan.FromSeconds(30),
    })
{
    private string Alice => $"alice-{Run}";

    private string Bob => $"bob-{Run}";

    private string Carol => $"carol-{Run}";

    [Fact]
    public async Task Should_read_a_page_spread_over_other_conversations_without_going_through_its_whole_range()
    {
        for (var i = 1; i <= 12; i++)
        {
            await Sent(Alice, Bob, $"m{i}");
            // Ten messages of another conversation between each two of this one's, in alice's journal.
            await Task.WhenAll(Enumerable.Range(1, 10).Select(j => Sent(Alice, Carol, $"x{i}.{j}")));
        }
        var journalEntries = 0;

        var reply = await CountingReads(Alice, () => Interlocked.Increment(ref journalEntries),
            () => Region.Ask<object>(new GetThread(Alice, Ids.ConversationFor(Alice, Bob), 5, 5, null, null), Ask, Ct));

        var page = Assert.IsType<ThreadPage>(reply);
        Assert.Equal(["m3", "m4", "m5", "m6", "m7"], page.Messages.Select(m => m.Message.Text));
        // m3..m7 lie 45 journal entries apart; a range read would go through all of them (and keep them). The walk reads
        // at most JournalReadMaxRange entries in blocks, one per message of the page, and a few skip-list lookups.
        Assert.InRange(journalEntries, 1, Settings.JournalReadMaxRange + 5 + 8);
    }

    [Fact]
    public async Task Should_read_a_dense_page_wider_than_the_range_limit_whole_and_in_order()
    {
        // Two conversations taking turns: bob's messages two or three entries apart, 60 of them over ~150 entries.
        for (var i = 1; i <= 60; i++)
        {
            await Sent(Alice, Bob, $"m{i}");
            await Sent(Alice, Carol, $"x{i}");
        }
        var journalEntries = 0;

        var reply = await CountingReads(Alice, () => Interlocked.Increment(ref journalEntries),
            () => Region.Ask<object>(new GetThread(Alice, Ids.ConversationFor(Alice, Bob), 5, 50, null, null), Ask, Ct));

        var page = Assert.IsType<ThreadPage>(reply);
        Assert.Equal(Enumerable.Range(6, 50).Select(i => $"m{i}"), page.Messages.Select(m => m.Message.Text));
        Assert.Equal(Enumerable.Range(6, 50).Select(i => (long)i), page.Messages.Select(m => m.Seq));
        // Blocks up to the range limit, then one entry per message still missing, and the lookups.
        Assert.InRange(journalEntries, 50, Settings.JournalReadMaxRange + 50 + 8);
    }

    [Fact]
    public async Task Should_refuse_a_journal_read_beyond_the_mailboxs_limit_while_the_others_run()
    {
        for (var i = 1; i <= 12; i++)
            await Sent(Alice, Bob, $"m{i}");
        var conversation = Ids.ConversationFor(Alice, Bob);
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        Task<object> Older(int offset) => Region.Ask<object>(new GetThread(Alice, conversation, offset, 2, null, null), Ask, Ct);

        await WithJournalRecovery(recovery => recovery.FailIf(async p =>
        {
            if (p.PersistenceId == MailboxActor.PersistenceIdFor(Alice))
                await release.Task; // every read of alice's journal waits
            return false;
        }), async () =>
        {
            var first = Older(5);
            var second = Older(7);
            // The mailbox answers in order: once its status is back, both readers are running (held by the journal).
            await Region.Ask<MailboxStatus>(new GetMailboxStatus(Alice), Ask, Ct);

            var third = await Older(9).WaitAsync(TimeSpan.FromSeconds(5), Ct);

            var refused = Assert.IsType<MailboxUnavailable>(third);
            Assert.Contains("the limit is 2", refused.Reason);
            Assert.False(first.IsCompleted || second.IsCompleted);
            release.SetResult();
            Assert.Equal(["m6", "m7"], Assert.IsType<ThreadPage>(await first).Messages.Select(m => m.Message.Text));
            Assert.Equal(["m4", "m5"], Assert.IsType<ThreadPage>(await second).Messages.Select(m => m.Message.Text));
        });
        // Readers that answered give their places back.
        await AwaitAssertAsync(async () => Assert.IsType<ThreadPage>(await Older(9)), Ask, cancellationToken: Ct);
    }

    private async Task Sent(string from, string to, string text) =>
        Assert.Equal(SendOutcome.Sent, (await Region.Ask<SendResult>(new SendMessage(from, [to], text, text), Ask, Ct)).Outcome);

    /// <summary>Runs <paramref name="read"/> with every entry of <paramref name="user"/>'s journal read counted.</summary>
    private async Task<object> CountingReads(string user, Action count, Func<Task<object>> read)
    {
        object reply = null!;
        await WithJournalRecovery(recovery => recovery.FailIf(p =>
        {
            if (p.PersistenceId == MailboxActor.PersistenceIdFor(user))
                count();
            return Task.FromResult(false);
        }), async () => reply = await read());
        return reply;
    }
}

/// <summary>Older pages read at once on one node, over all its mailboxes.</summary>
public sealed class JournalReadNodeLimitSpecs(ITestOutputHelper output)
    : ShardedMailboxTestKit(nameof(JournalReadNodeLimitSpecs), output, new MailboxSettings
    {
        Limits = new MailboxLimits(RecentPerConversation: 5),
        MaxConcurrentJournalReads = 4,
        MaxJournalReadersPerNode = 2,
        JournalReadTimeout = TimeSpan.FromSeconds(30),
    })
{
    private string User(string name) => $"{name}-{Run}";

    [Fact]
    public async Task Should_refuse_a_journal_read_beyond_the_nodes_limit_whoever_reads_and_give_places_back()
    {
        var (alice, bob, carol) = (User("alice"), User("bob"), User("carol"));
        foreach (var from in new[] { alice, carol })
            for (var i = 1; i <= 12; i++)
                Assert.Equal(SendOutcome.Sent,
                    (await Region.Ask<SendResult>(new SendMessage(from, [bob], $"{from}:{i}", $"{from}-{i}"), Ask, Ct)).Outcome);
        Task<object> Older(string user) =>
            Region.Ask<object>(new GetThread(user, Ids.ConversationFor(user, bob), 5, 2, null, null), Ask, Ct);
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);

        await WithJournalRecovery(recovery => recovery.FailIf(async p =>
        {
            if (p.PersistenceId != MailboxActor.PersistenceIdFor(bob))
                await release.Task; // every read of alice's and carol's journals waits
            return false;
        }), async () =>
        {
            var first = Older(alice);
            var second = Older(carol);
            await AwaitConditionAsync(() => Task.FromResult(JournalReadGate.For(Sys).Running == 2), Ask, cancellationToken: Ct);

            // A third reader, of another mailbox that has none running: the node's limit, not the mailbox's.
            var refused = Assert.IsType<MailboxUnavailable>(await Older(alice).WaitAsync(TimeSpan.FromSeconds(5), Ct));
            Assert.Contains("this node reads 2 older pages already (the limit is 2)", refused.Reason);
            Assert.False(first.IsCompleted || second.IsCompleted);

            release.SetResult();
            Assert.Equal([$"{alice}:6", $"{alice}:7"], Assert.IsType<ThreadPage>(await first).Messages.Select(m => m.Message.Text));
            Assert.Equal([$"{carol}:6", $"{carol}:7"], Assert.IsType<ThreadPage>(await second).Messages.Select(m => m.Message.Text));
        });
        // Readers that answered give their places back.
        await AwaitConditionAsync(() => Task.FromResult(JournalReadGate.For(Sys).Running == 0), Ask, cancellationToken: Ct);
        Assert.IsType<ThreadPage>(await Older(carol));
    }
}

/// <summary>A thread page read from the journal answers by its deadline, however slowly the journal gives entries.</summary>
public sealed class JournalReadDeadlineSpecs(ITestOutputHelper output)
    : ShardedMailboxTestKit(nameof(JournalReadDeadlineSpecs), output, new MailboxSettings
    {
        Limits = new MailboxLimits(RecentPerConversation: 5),
        JournalReadTimeout = TimeSpan.FromSeconds(1),
        MaxConcurrentJournalReads = 1,
    })
{
    private string Alice => $"alice-{Run}";

    private string Bob => $"bob-{Run}";

    [Fact]
    public async Task Should_answer_unavailable_at_the_deadline_from_the_start_and_stop_reading()
    {
        for (var i = 1; i <= 12; i++)
            Assert.Equal(SendOutcome.Sent, (await Region.Ask<SendResult>(new SendMessage(Alice, [Bob], $"m{i}", $"c{i}"), Ask, Ct)).Outcome);
        var older = new GetThread(Alice, Ids.ConversationFor(Alice, Bob), 5, 5, null, null);
        object reply = null!;

        // Each entry comes well within the deadline of the one before, and the ten or so the page needs take 4 s.
        await WithJournalRecovery(recovery => recovery.FailIf(async p =>
        {
            if (p.PersistenceId == MailboxActor.PersistenceIdFor(Alice))
                await Task.Delay(TimeSpan.FromMilliseconds(400), Ct);
            return false;
        }), async () => reply = await Region.Ask<object>(older, Ask, Ct));

        var unavailable = Assert.IsType<MailboxUnavailable>(reply);
        Assert.Contains("within 1 s", unavailable.Reason);
        // The reader stopped when it answered: the mailbox's one place for a reader is free again.
        await AwaitAssertAsync(async () => Assert.IsType<ThreadPage>(await Region.Ask<object>(older, Ask, Ct)), Ask, cancellationToken: Ct);
    }
}
