using Akka.Actor;
using Messaging.Messages;
using Messaging.Actors.Groups;

namespace Messaging.Actors.Tests;

/// <summary>
/// A mailbox written to by many more senders than it holds in memory (<see cref="MailboxLimits.MaxConversationsInMemory"/>
/// of 4 here): every message arrives once and in order, every thread reads back whole, replies and receipts find their
/// conversation, across a restart too; a read of a cold thread writes nothing; with the feature gate closed nothing
/// goes cold. Real mailboxes behind sharding on the test journal.
/// </summary>
public sealed class ColdConversationSpecs(ITestOutputHelper output)
    : ShardedMailboxTestKit(nameof(ColdConversationSpecs), output, new MailboxSettings
    {
        SnapshotEvery = 25,
        DeliveryWait = TimeSpan.FromSeconds(3),
        RedeliveryInterval = TimeSpan.FromMilliseconds(200),
        Limits = new MailboxLimits(RecentPerConversation: 2, MaxConversationsInMemory: 4),
    })
{
    private const int Senders = 24;

    private string Popular => $"popular-{Run}";

    private string Sender(int i) => $"s{i}-{Run}";

    private string Dm(int i) => Ids.ConversationFor(Popular, Sender(i));

    private Task<SendResult> SendAsync(string from, string to, string text, string clientId) =>
        Region.Ask<SendResult>(new SendMessage(from, [to], text, clientId), Ask, Ct);

    private async Task<ThreadPage> ThreadAsync(string user, string conversation) =>
        Assert.IsType<ThreadPage>(await Region.Ask<object>(new GetThread(user, conversation, 0, 50, null, null), Ask, Ct));

    private Task<MailboxStatus> StatusAsync(string user) => Region.Ask<MailboxStatus>(new GetMailboxStatus(user), Ask, Ct);

    private async Task AssertHoldsAtMostAsync(int conversations, int total = Senders) =>
        await AwaitAssertAsync(async () =>
        {
            var status = await StatusAsync(Popular);
            Assert.InRange(status.Conversations, 1, conversations);
            Assert.Equal(total, status.Conversations + status.ColdConversations); // every one in memory or cold, once
        }, TimeSpan.FromSeconds(10), cancellationToken: Ct);

    /// <summary>Every sender wrote "a", "b" (and "c" if <paramref name="third"/>), and the owner replied "re" after them.</summary>
    private async Task AssertThreadsAsync(bool third, bool replied)
    {
        for (var i = 0; i < Senders; i++)
        {
            var expected = new List<string> { $"a{i}", $"b{i}" };
            if (third)
                expected.Add($"c{i}");
            if (replied)
                expected.Add($"re{i}");
            foreach (var user in new[] { Popular, Sender(i) })
            {
                var page = await ThreadAsync(user, Dm(i));
                Assert.Equal(expected, page.Messages.Select(m => m.Message.Text));
                Assert.Equal(Enumerable.Range(1, expected.Count).Select(s => (long)s), page.Messages.Select(m => m.Seq));
            }
        }
    }

    [Fact]
    public async Task Should_serve_many_more_senders_than_it_holds_once_and_in_order_across_a_restart()
    {
        for (var i = 0; i < Senders; i++)
        {
            Assert.Equal(SendOutcome.Sent, (await SendAsync(Sender(i), Popular, $"a{i}", "a")).Outcome);
            Assert.Equal(SendOutcome.Sent, (await SendAsync(Sender(i), Popular, $"b{i}", "b")).Outcome);
        }
        await AssertHoldsAtMostAsync(4);
        await AssertThreadsAsync(third: false, replied: false);

        // Each sender writes again (their conversation comes back), and the owner replies to each (it comes back again).
        for (var i = 0; i < Senders; i++)
            Assert.Equal(SendOutcome.Sent, (await SendAsync(Sender(i), Popular, $"c{i}", "c")).Outcome);
        for (var i = 0; i < Senders; i++)
            Assert.Equal(SendOutcome.Sent, (await SendAsync(Popular, Sender(i), $"re{i}", $"re{i}")).Outcome);
        await AssertHoldsAtMostAsync(4);
        await AssertThreadsAsync(third: true, replied: true);

        // A retry of a send whose conversation went cold since: the same message, not a second one.
        var retry = await SendAsync(Popular, Sender(0), "re0", "re0");
        Assert.Equal(SendOutcome.Duplicate, retry.Outcome);

        // A new incarnation from the journal (snapshots and cold pages): the same.
        await KillMailboxAsync(Popular);
        await AssertThreadsAsync(third: true, replied: true);
        Assert.Equal(SendOutcome.Sent, (await SendAsync(Sender(3), Popular, "d3", "d")).Outcome);
        var page = await ThreadAsync(Popular, Dm(3));
        Assert.Equal(["a3", "b3", "c3", "re3", "d3"], page.Messages.Select(m => m.Message.Text));
        await AssertHoldsAtMostAsync(4);
    }

    [Fact]
    public async Task Should_read_a_cold_thread_and_send_typing_to_it_without_writing()
    {
        for (var i = 0; i < 8; i++)
            Assert.Equal(SendOutcome.Sent, (await SendAsync(Sender(i), Popular, $"a{i}", "a")).Outcome);
        await AssertHoldsAtMostAsync(4, total: 8);
        var list = await Region.Ask<ConversationsPage>(new GetConversations(Popular, 0, 50, 0), Ask, Ct);
        Assert.DoesNotContain(Dm(0), list.Conversations.Select(c => c.ConversationId));

        var before = await StatusAsync(Popular);
        var page = await ThreadAsync(Popular, Dm(0));
        Assert.Equal(["a0"], page.Messages.Select(m => m.Message.Text));
        Assert.IsType<TypingSent>(await Region.Ask<object>(new SendTyping(Popular, Dm(0)), Ask, Ct));
        Assert.IsType<ConversationNotFound>(await Region.Ask<object>(
            new GetThread(Popular, Ids.ConversationFor(Popular, $"nobody-{Run}"), 0, 10, null, null), Ask, Ct));
        var after = await StatusAsync(Popular);
        Assert.Equal(before.LastSequenceNr, after.LastSequenceNr);
    }

    [Fact]
    public async Task Should_mark_a_cold_conversation_read_and_tell_its_sender()
    {
        for (var i = 0; i < 8; i++)
        {
            Assert.Equal(SendOutcome.Sent, (await SendAsync(Sender(i), Popular, $"a{i}", "a")).Outcome);
            Assert.Equal(SendOutcome.Sent, (await SendAsync(Sender(i), Popular, $"b{i}", "b")).Outcome);
        }
        await AssertHoldsAtMostAsync(4, total: 8);

        var answer = Assert.IsType<ConversationAnswer>(await Region.Ask<object>(new MarkReceipts(Popular, Dm(0), null, 2), Ask, Ct));
        Assert.Equal((2L, 0L), (answer.Conversation.ReadUpToSeq, answer.Conversation.UnreadCount));
        await AwaitAssertAsync(async () =>
        {
            var senders = await Region.Ask<ConversationsPage>(new GetConversations(Sender(0), 0, 10, 0), Ask, Ct);
            var receipt = Assert.Single(Assert.Single(senders.Conversations).Receipts);
            Assert.True(receipt.Receipt.ReadUpTo > 0);
        }, TimeSpan.FromSeconds(10), cancellationToken: Ct);
    }
}

/// <summary>With the ColdConversations feature gate closed (a node of an older release in the cluster), nothing goes cold.</summary>
public sealed class ColdConversationGateSpecs(ITestOutputHelper output)
    : ShardedMailboxTestKit(nameof(ColdConversationGateSpecs), output, new MailboxSettings
    {
        Limits = new MailboxLimits(MaxConversationsInMemory: 4),
        ColdAllowed = () => false,
    })
{
    [Fact]
    public async Task Should_hold_every_conversation_while_the_gate_is_closed()
    {
        var popular = $"popular-{Run}";
        for (var i = 0; i < 8; i++)
            Assert.Equal(SendOutcome.Sent, (await Region.Ask<SendResult>(new SendMessage($"s{i}-{Run}", [popular], "hi", "c"), Ask, Ct)).Outcome);
        var status = await Region.Ask<MailboxStatus>(new GetMailboxStatus(popular), Ask, Ct);
        Assert.Equal(8, status.Conversations);
    }
}

/// <summary>
/// Groups go cold only with the ColdGroups gate open (every node runs 1.9.0): real groups (their actors behind sharding)
/// write to one member over a bound of 4, closed then open. Closed, the groups stay and only the 1:1 conversations go;
/// open, the groups go too (one the member is alone in among them), and a later group message brings its group back with
/// its thread going on.
/// </summary>
public sealed class ColdGroupGateSpecs(ITestOutputHelper output)
    : ShardedMailboxTestKit(nameof(ColdGroupGateSpecs), output, new MailboxSettings
    {
        Limits = new MailboxLimits(MaxConversationsInMemory: 4),
        ColdGroupsAllowed = () => Open,
    })
{
    private static volatile bool Open;

    private IActorRef Groups => ActorRegistry.Get<GroupRegion>();

    [Fact]
    public async Task Should_keep_groups_in_memory_until_the_gate_opens_then_bring_one_back_where_its_thread_was()
    {
        Open = false;
        var member = $"member-{Run}";
        // A group the member created and is alone in now (the other left): its copy lists the member only.
        var alone = Ids.GroupFor(member, "alone");
        Assert.IsType<GroupAnswer>(await Groups.Ask<object>(new CreateGroup(alone, member, "Alone", [$"leaver-{Run}"], "alone"), Ask, Ct));
        Assert.IsType<GroupAnswer>(await Groups.Ask<object>(new LeaveGroup(alone, $"leaver-{Run}"), Ask, Ct));
        var groups = Enumerable.Range(0, 6).Select(i => Ids.GroupFor($"host{i}-{Run}", $"r{i}")).ToArray();
        for (var i = 0; i < groups.Length; i++)
        {
            Assert.IsType<GroupAnswer>(await Groups.Ask<object>(new CreateGroup(groups[i], $"host{i}-{Run}", $"G{i}", [member], $"r{i}"), Ask, Ct));
            Assert.Equal(SendOutcome.Sent, (await Groups.Ask<SendResult>(new PostToGroup(groups[i], $"host{i}-{Run}", $"hello {i}", "c1"), Ask, Ct)).Outcome);
        }
        for (var i = 0; i < 3; i++)
            Assert.Equal(SendOutcome.Sent, (await Region.Ask<SendResult>(new SendMessage($"s{i}-{Run}", [member], "hi", "c"), Ask, Ct)).Outcome);
        // Every group's two copies are stored, and the 1:1 conversations went cold (the groups are over the bound alone).
        await AwaitAssertAsync(async () =>
        {
            var status = await Region.Ask<MailboxStatus>(new GetMailboxStatus(member), Ask, Ct);
            Assert.Equal((7, 3L), (status.Conversations, status.ColdConversations));
        }, TimeSpan.FromSeconds(15), TimeSpan.FromMilliseconds(100), Ct);
        var list = await Region.Ask<ConversationsPage>(new GetConversations(member, 0, 50, 0), Ask, Ct);
        Assert.All(groups, g => Assert.Contains(list.Conversations, c => c.ConversationId == g));

        Open = true;
        Assert.Equal(SendOutcome.Sent, (await Region.Ask<SendResult>(new SendMessage($"s9-{Run}", [member], "hi", "c"), Ask, Ct)).Outcome);
        await AwaitAssertAsync(async () =>
        {
            var status = await Region.Ask<MailboxStatus>(new GetMailboxStatus(member), Ask, Ct);
            Assert.Equal((4, 7L), (status.Conversations, status.ColdConversations));
        }, TimeSpan.FromSeconds(15), TimeSpan.FromMilliseconds(100), Ct);

        // The oldest group is cold; its next message comes to the member's copy as its third, after the two it had.
        Assert.Equal(SendOutcome.Sent, (await Groups.Ask<SendResult>(new PostToGroup(groups[0], $"host0-{Run}", "again", "c2"), Ask, Ct)).Outcome);
        await AwaitAssertAsync(async () =>
        {
            var page = Assert.IsType<ThreadPage>(await Region.Ask<object>(new GetThread(member, groups[0], 0, 50, null, null), Ask, Ct));
            Assert.Equal(new[] { "", "hello 0", "again" }, page.Messages.Select(m => m.Message.Text));
            Assert.Equal(new long[] { 1, 2, 3 }, page.Messages.Select(m => m.Seq));
        }, TimeSpan.FromSeconds(15), TimeSpan.FromMilliseconds(100), Ct);
    }
}

/// <summary>
/// Archiving many conversations in a row (the gate opening on a mailbox far over the bound, or a lowered bound) lets
/// the commands that waited for one step run before the next step starts, so the mailbox keeps serving meanwhile.
/// </summary>
public sealed class ColdConversationPacingSpecs(ITestOutputHelper output)
    : ShardedMailboxTestKit(nameof(ColdConversationPacingSpecs), output, new MailboxSettings
    {
        Limits = new MailboxLimits(MaxConversationsInMemory: 2),
        ColdAllowed = () => Open,
    })
{
    private static volatile bool Open;

    [Fact]
    public async Task Should_answer_what_waited_for_one_archive_before_the_next_starts()
    {
        var popular = $"popular-{Run}";
        for (var i = 0; i < 8; i++)
            Assert.Equal(SendOutcome.Sent, (await Region.Ask<SendResult>(new SendMessage($"s{i}-{Run}", [popular], "hi", "c"), Ask, Ct)).Outcome);
        Assert.Equal(8, (await Region.Ask<MailboxStatus>(new GetMailboxStatus(popular), Ask, Ct)).Conversations);

        var archives = 0;
        var firstHeld = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var releaseFirst = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var secondHeld = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var releaseSecond = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        Open = true;
        await WithJournalWrite(write => write.RejectIf(async p =>
        {
            if (p.Payload is ConversationsArchived)
            {
                switch (Interlocked.Increment(ref archives))
                {
                    case 1:
                        firstHeld.TrySetResult();
                        await releaseFirst.Task;
                        break;
                    case 2:
                        secondHeld.TrySetResult();
                        await releaseSecond.Task;
                        break;
                }
            }
            return false;
        }), async () =>
        {
            // A ninth sender's message settles the mailbox over the bound: the first archive's write is held.
            var ninth = Region.Ask<SendResult>(new SendMessage($"s8-{Run}", [popular], "hi", "c"), Ask, Ct);
            await firstHeld.Task.WaitAsync(Ask, Ct);
            var status = Region.Ask<MailboxStatus>(new GetMailboxStatus(popular), Ask, Ct); // waits in the stash
            // Nothing says when it is in the stash: give it a second to get there (it takes milliseconds). Released
            // before it arrives, it would come after the next step's start, and this test would fail without a bug.
            await Task.Delay(TimeSpan.FromSeconds(1), Ct);
            Assert.False(status.IsCompleted);
            releaseFirst.SetResult();
            // Answered before the second archive's write comes back: it ran between the two steps.
            await secondHeld.Task.WaitAsync(Ask, Ct);
            var answered = await status.WaitAsync(TimeSpan.FromSeconds(5), Ct);
            Assert.Equal(8, answered.Conversations); // the ninth in, the first one out
            releaseSecond.SetResult();
            Assert.Equal(SendOutcome.Sent, (await ninth).Outcome);
        });
        await AwaitAssertAsync(async () => Assert.Equal(2, (await Region.Ask<MailboxStatus>(new GetMailboxStatus(popular), Ask, Ct)).Conversations),
            TimeSpan.FromSeconds(10), cancellationToken: Ct);
    }
}

/// <summary>
/// A group's members who have no 1:1 conversation with each other still exchange receipts, each on a channel of its
/// own. Past the bound (twice <see cref="MailboxLimits.MaxConversationsInMemory"/> positions either way, with the
/// ColdChannels gate open: every node runs 1.10.0) those channels go cold, and every later receipt, read marker and
/// first 1:1 message goes on where its channel was, across a restart too. Real mailboxes and a real group behind
/// sharding: a channel that started over would have its copies taken for ones already stored and dropped.
/// </summary>
public sealed class ColdChannelSpecs(ITestOutputHelper output)
    : ShardedMailboxTestKit(nameof(ColdChannelSpecs), output, new MailboxSettings
    {
        SnapshotEvery = 25,
        DeliveryWait = TimeSpan.FromSeconds(3),
        RedeliveryInterval = TimeSpan.FromMilliseconds(200),
        Limits = new MailboxLimits(MaxConversationsInMemory: 2),
        ColdChannelsAllowed = () => Open,
    })
{
    private const int Members = 10;

    private static volatile bool Open;

    private IActorRef Groups => ActorRegistry.Get<GroupRegion>();

    private string Owner => $"owner-{Run}";

    private string Member(int i) => $"m{i}-{Run}";

    private string Group => Ids.GroupFor(Owner, "g");

    private Task<MailboxStatus> StatusAsync(string user) => Region.Ask<MailboxStatus>(new GetMailboxStatus(user), Ask, Ct);

    private async Task<ConversationSummary> GroupOfAsync(string user) =>
        (await Region.Ask<ConversationsPage>(new GetConversations(user, 0, 50, 0), Ask, Ct)).Conversations.Single(c => c.ConversationId == Group);

    private async Task PostAsync(string sender, string text) =>
        Assert.Equal(SendOutcome.Sent, (await Groups.Ask<SendResult>(new PostToGroup(Group, sender, text, text), Ask, Ct)).Outcome);

    /// <summary>Once <paramref name="user"/> has every copy up to <paramref name="lastSeq"/>, they read the group to its end.</summary>
    private async Task ReadAllAsync(string user, long lastSeq)
    {
        await AwaitAssertAsync(async () => Assert.Equal(lastSeq, (await GroupOfAsync(user)).LastSeq), TimeSpan.FromSeconds(15), cancellationToken: Ct);
        Assert.IsType<ConversationAnswer>(await Region.Ask<object>(new MarkReceipts(user, Group, null, lastSeq), Ask, Ct));
    }

    /// <summary>What <paramref name="user"/>'s copy of the group says <paramref name="reader"/> has read up to (a stamp).</summary>
    private async Task<long> ReadUpToAsync(string user, string reader) =>
        (await GroupOfAsync(user)).Receipts.SingleOrDefault(r => r.UserId == reader)?.Receipt.ReadUpTo ?? 0;

    /// <summary>
    /// A round: the owner and the first <paramref name="active"/> members post, then read: every receipt arrives, each on
    /// its channel. Returns the group's last seq after it.
    /// </summary>
    private async Task<long> RoundAsync(int round, long lastSeq, int active = Members)
    {
        await PostAsync(Owner, $"owner {round}");
        for (var i = 0; i < active; i++)
            await PostAsync(Member(i), $"m{i} {round}");
        lastSeq += active + 1;
        var before = new long[active];
        var ownerBefore = new long[active];
        for (var i = 0; i < active; i++)
        {
            before[i] = await ReadUpToAsync(Member(i), Owner);
            ownerBefore[i] = await ReadUpToAsync(Owner, Member(i));
        }
        await ReadAllAsync(Owner, lastSeq);
        for (var i = 0; i < active; i++)
            await ReadAllAsync(Member(i), lastSeq);
        await AwaitAssertAsync(async () =>
        {
            for (var i = 0; i < active; i++)
            {
                // The owner's receipt reached each member, and each member's reached the owner.
                Assert.True(await ReadUpToAsync(Member(i), Owner) > before[i], $"{Member(i)} did not get the owner's receipt of round {round}");
                Assert.True(await ReadUpToAsync(Owner, Member(i)) > ownerBefore[i], $"the owner did not get {Member(i)}'s receipt of round {round}");
            }
        }, TimeSpan.FromSeconds(20), TimeSpan.FromMilliseconds(200), Ct);
        return lastSeq;
    }

    private async Task SendDirectAsync(string to, string text)
    {
        Assert.Equal(SendOutcome.Sent, (await Region.Ask<SendResult>(new SendMessage(Owner, [to], text, text), Ask, Ct)).Outcome);
        var thread = Assert.IsType<ThreadPage>(await Region.Ask<object>(
            new GetThread(to, Ids.ConversationFor(Owner, to), 0, 50, null, null), Ask, Ct));
        Assert.Equal(text, Assert.Single(thread.Messages).Message.Text); // stored, not taken for a copy already there
    }

    [Fact]
    public async Task Should_hold_the_channels_with_people_met_only_in_a_group_within_the_bound_and_go_on_where_each_was()
    {
        Open = false;
        Assert.IsType<GroupAnswer>(await Groups.Ask<object>(
            new CreateGroup(Group, Owner, "G", [.. Enumerable.Range(0, Members).Select(Member)], "g"), Ask, Ct));
        // Half the members talk first: with the gate closed, a channel with each of them either way stays in memory.
        var lastSeq = await RoundAsync(1, 1, active: Members / 2);
        Assert.Equal(Members / 2, (await StatusAsync(Owner)).LoneChannels);

        // The gate opens: the next write settles the owner's mailbox over the bound (5 > 2 x 2), and the channels
        // needed longest ago go cold.
        Open = true;
        await PostAsync(Member(0), "settle");
        lastSeq++;
        await AwaitAssertAsync(async () =>
        {
            var status = await StatusAsync(Owner);
            Assert.InRange(status.LoneChannels, 2, 2 * 2);
            Assert.Equal((1, 0L), (status.Conversations, status.ColdConversations)); // channels are no conversations
        }, TimeSpan.FromSeconds(15), TimeSpan.FromMilliseconds(100), Ct);

        // Everyone talks: the other half's channels start while pages exist (each looked for first, and not found
        // there), then many of them go cold too; the round after that finds every one where it was.
        lastSeq = await RoundAsync(2, lastSeq);
        await WithinBoundAsync();
        lastSeq = await RoundAsync(3, lastSeq);
        await SendDirectAsync(Member(1), "a first 1:1 message after the receipts");
        await WithinBoundAsync();
        // No conversation with the others, whether their channel is in memory or cold (most are: its entry is no thread).
        foreach (var i in Enumerable.Range(0, Members).Where(i => i != 1))
        {
            Assert.IsType<ConversationNotFound>(await Region.Ask<object>(
                new GetThread(Owner, Ids.ConversationFor(Owner, Member(i)), 0, 10, null, null), Ask, Ct));
        }

        await KillMailboxAsync(Owner);
        lastSeq = await RoundAsync(4, lastSeq);
        await SendDirectAsync(Member(2), "and another, after a restart");
        await WithinBoundAsync();
    }

    /// <summary>Once settled, the owner holds no more than twice the bound of channels alone (the others went cold).</summary>
    private async Task WithinBoundAsync() =>
        await AwaitAssertAsync(async () => Assert.InRange((await StatusAsync(Owner)).LoneChannels, 0, 2 * 2),
            TimeSpan.FromSeconds(15), TimeSpan.FromMilliseconds(100), Ct);
}
