using System.Collections.Immutable;
using Akka.Actor;
using Messaging.Actors.Groups;
using Messaging.Messages;

namespace Messaging.Actors.Tests;

/// <summary>
/// A write the journal rejects in the middle of a pipeline: the writes decided behind it were decided as if it were
/// there, and the journal takes them. Each spec holds one write until the next ones are decided behind it, rejects
/// the middle one, and checks that nothing stalls, nothing acknowledged is lost and every copy stays in order.
/// </summary>
public sealed class RejectedWriteSpecs(ITestOutputHelper output)
    : ShardedMailboxTestKit(nameof(RejectedWriteSpecs), output, new MailboxSettings
    {
        DeliveryWait = TimeSpan.FromSeconds(3),
        RedeliveryInterval = TimeSpan.FromMilliseconds(200),
    })
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(15);

    private string Alice => $"alice-{Run}";

    private string Bob => $"bob-{Run}";

    private string Carol => $"carol-{Run}";

    private IActorRef Groups => ActorRegistry.Get<GroupRegion>();

    private Task<SendResult> SendAsync(string from, string to, string text, string clientId) =>
        Region.Ask<SendResult>(new SendMessage(from, [to], text, clientId), Ask, Ct);

    private async Task<ImmutableArray<StoredMessage>> ThreadAsync(string user, string conversation) =>
        Assert.IsType<ThreadPage>(await Region.Ask<object>(new GetThread(user, conversation, 0, 100, null, null), Ask, Ct)).Messages;

    /// <summary>A client's send: a 503 is retried (the first retry may meet the mailbox recovering again).</summary>
    private async Task<SendResult> RetryAsync(string from, string to, string text, string clientId)
    {
        for (var attempt = 1; ; attempt++)
        {
            var result = await SendAsync(from, to, text, clientId);
            if (result.Outcome != SendOutcome.Unavailable || attempt == 5)
                return result;
            await Task.Delay(200, Ct);
        }
    }

    private static TaskCompletionSource Signal() => new(TaskCreationOptions.RunContinuationsAsynchronously);

    private async Task AssertThreadAsync(string user, string conversation, params string[] texts) =>
        await AwaitAssertAsync(async () =>
        {
            var thread = await ThreadAsync(user, conversation);
            Assert.Equal(texts, thread.Where(m => m.Message.System is null).Select(m => m.Message.Text));
            Assert.Equal(Enumerable.Range(1, thread.Length).Select(i => (long)i), thread.Select(m => m.Seq));
        }, Patience, TimeSpan.FromMilliseconds(200), Ct);

    [Fact]
    public async Task Should_close_the_hole_a_rejected_send_leaves_in_the_senders_pipeline()
    {
        // m1's write is held until m2 and m3 are decided behind it; then the journal rejects m2 and takes m3, which
        // was decided with the channel number and thread seq after m2's.
        var holding = Signal();
        var release = Signal();
        SendResult first = null!, second = null!, third = null!;
        await WithJournalWrite(write => write.RejectIf(async p =>
        {
            switch (p.Payload)
            {
                case MessageSent { Message.ClientMessageId: "c1" }:
                    holding.TrySetResult();
                    await release.Task;
                    return false;
                case MessageSent { Message.ClientMessageId: "c2" }:
                    return true;
                default:
                    return false;
            }
        }), async () =>
        {
            var sends = new List<Task<SendResult>> { SendAsync(Alice, Bob, "m1", "c1") };
            await holding.Task.WaitAsync(Ask, Ct);
            sends.Add(SendAsync(Alice, Bob, "m2", "c2"));
            sends.Add(SendAsync(Alice, Bob, "m3", "c3"));
            await Region.Ask<MailboxStatus>(new GetMailboxStatus(Alice), Ask, Ct); // both decided behind m1
            release.SetResult();
            (first, second, third) = (await sends[0], await sends[1], await sends[2]);
        });

        // m1 is durable; its waiter for bob's confirmation was answered when the incarnation stopped (Accepted),
        // unless bob confirmed first.
        Assert.Contains(first.Outcome, new[] { SendOutcome.Sent, SendOutcome.Accepted });
        // m3 is in the journal, but it was decided on a state that never came to be: not acknowledged either.
        Assert.Equal((SendOutcome.Unavailable, SendOutcome.Unavailable), (second.Outcome, third.Outcome));

        // The client retries both, as a 503 tells it to. m3 was stored again in its place when the mailbox
        // recovered (the retry finds it); m2 goes after it. Without closing the hole, bob would wait for the
        // missing channel number forever and every later copy would pile up behind it.
        var m2 = await RetryAsync(Alice, Bob, "m2", "c2");
        var m3 = await RetryAsync(Alice, Bob, "m3", "c3");
        Assert.Equal((SendOutcome.Sent, SendOutcome.Duplicate), (m2.Outcome, m3.Outcome));
        Assert.Equal(SendOutcome.Sent, (await SendAsync(Alice, Bob, "m4", "c4")).Outcome);

        await AssertThreadAsync(Alice, first.ConversationId, "m1", "m3", "m2", "m4");
        await AssertThreadAsync(Bob, first.ConversationId, "m1", "m3", "m2", "m4");
        var (alices, bobs) = (await ThreadAsync(Alice, first.ConversationId), await ThreadAsync(Bob, first.ConversationId));
        Assert.Equal(alices.Select(m => m.Message.MessageId), bobs.Select(m => m.Message.MessageId));
        Assert.Equal(m3.MessageId, alices[1].Message.MessageId);
    }

    [Fact]
    public async Task Should_not_confirm_or_keep_a_copy_stored_behind_a_rejected_one()
    {
        // First bob cannot store anything while alice sends three messages: all three wait in her outbox. Then her
        // next redelivery hands bob all three at once. His write of the first is held until the other two are
        // decided behind it; the journal rejects the second and takes the third. Had bob confirmed the third, alice
        // would drop both from her outbox, and bob's copy would lack m2 for good. (One interceptor for both phases:
        // switching interceptors goes through the journal's queue, and bob's writes could slip between.)
        var holding = Signal();
        var release = Signal();
        var bob = MailboxActor.PersistenceIdFor(Bob);
        var phase = 1;
        SendResult[] sent = [];
        await WithJournalWrite(write => write.RejectIf(async p =>
        {
            if (p.Payload is not MessageReceived received || p.PersistenceId != bob)
                return false;
            if (Volatile.Read(ref phase) == 1)
                return true;
            switch (received.ChannelSeq)
            {
                case 1:
                    holding.TrySetResult();
                    await release.Task;
                    return false;
                case 2:
                    return true;
                default:
                    return false;
            }
        }), async () =>
        {
            sent = await Task.WhenAll(
                SendAsync(Alice, Bob, "m1", "c1"), SendAsync(Alice, Bob, "m2", "c2"), SendAsync(Alice, Bob, "m3", "c3"));
            Assert.All(sent, s => Assert.Equal(SendOutcome.Accepted, s.Outcome));
            Volatile.Write(ref phase, 2);

            await holding.Task.WaitAsync(Ask, Ct);
            // The batch reached the shard region before this question did: bob has decided all three.
            await Region.Ask<MailboxStatus>(new GetMailboxStatus(Bob), Ask, Ct);
            release.SetResult();
            await AwaitAssertAsync(async () =>
                Assert.NotEmpty(await ThreadAsync(Bob, sent[0].ConversationId)), Patience, TimeSpan.FromMilliseconds(100), Ct);
        });

        // Nobody retries: alice keeps redelivering what bob has not confirmed, and bob stores it in line.
        await AssertThreadAsync(Bob, sent[0].ConversationId, "m1", "m2", "m3");
        Assert.Equal(SendOutcome.Sent, (await SendAsync(Alice, Bob, "m4", "c4")).Outcome);
        await AssertThreadAsync(Bob, sent[0].ConversationId, "m1", "m2", "m3", "m4");
        await AssertThreadAsync(Alice, sent[0].ConversationId, "m1", "m2", "m3", "m4");
    }

    [Fact]
    public async Task Should_not_keep_a_group_copy_stored_behind_a_rejected_one()
    {
        // This spec plays the group: it hands bob three copies in the group's order. His write of the first is held
        // until the others are decided behind it; the journal rejects the second and takes the third.
        var group = $"grp~test{Run}";
        var holding = Signal();
        var release = Signal();
        const long T0 = 1_764_300_000_000;
        DeliverGroupMessage Copy(long seq) => new(Bob, seq, seq - 1,
            new ChatMessage(Ids.GroupMessageId(group, T0 + seq), group, Alice, [], $"m{seq}", $"c{seq}", T0 + seq),
            "test group", seq == 1 ? [Alice, Bob] : []);
        await WithJournalWrite(write => write.RejectIf(async p =>
        {
            switch (p.Payload)
            {
                case MessageReceived { ChannelSeq: 1 }:
                    holding.TrySetResult();
                    await release.Task;
                    return false;
                case MessageReceived { ChannelSeq: 2 }:
                    return true;
                default:
                    return false;
            }
        }), async () =>
        {
            Region.Tell(Copy(1));
            await holding.Task.WaitAsync(Ask, Ct);
            Region.Tell(Copy(2));
            Region.Tell(Copy(3));
            await Region.Ask<MailboxStatus>(new GetMailboxStatus(Bob), Ask, Ct);
            release.SetResult();
            // The incarnation stops after the rejection; the next one recovers on the next message.
            await AwaitAssertAsync(async () =>
                Assert.Single(await ThreadAsync(Bob, group)), Patience, TimeSpan.FromMilliseconds(100), Ct);
        });

        // The group resends what bob has not confirmed, in its order.
        await AwaitAssertAsync(async () =>
        {
            foreach (var seq in new[] { 1L, 2, 3 })
                Region.Tell(Copy(seq));
            Assert.Equal(["m1", "m2", "m3"], (await ThreadAsync(Bob, group)).Select(m => m.Message.Text));
        }, Patience, TimeSpan.FromMilliseconds(300), Ct);
    }

    [Fact]
    public async Task Should_skip_a_group_write_decided_behind_a_rejected_membership_change()
    {
        var group = Ids.GroupFor(Alice, $"r-{Run}");
        Assert.IsType<GroupAnswer>(await Groups.Ask<object>(new CreateGroup(group, Alice, "team", [Bob], $"r-{Run}"), Ask, Ct));

        // alice's post is held until "add carol" and carol's first post are decided behind it (carol a member as
        // far as the group decides); then the journal rejects the change and takes carol's post.
        var holding = Signal();
        var release = Signal();
        object added = null!, carols = null!;
        SendResult alices = null!;
        await WithJournalWrite(write => write.RejectIf(async p =>
        {
            switch (p.Payload)
            {
                case GroupPosted { Message.ClientMessageId: "a1" }:
                    holding.TrySetResult();
                    await release.Task;
                    return false;
                case GroupPosted { Message.System.Action: GroupChange.Added }:
                    return true;
                default:
                    return false;
            }
        }), async () =>
        {
            var post = Groups.Ask<SendResult>(new PostToGroup(group, Alice, "from alice", "a1"), Ask, Ct);
            await holding.Task.WaitAsync(Ask, Ct);
            var add = Groups.Ask<object>(new ChangeMembers(group, Alice, [Carol], []), Ask, Ct);
            var carol = Groups.Ask<object>(new PostToGroup(group, Carol, "from carol", "k1"), Ask, Ct);
            await Groups.Ask<object>(new GetGroupStatus(group), Ask, Ct);
            release.SetResult();
            (alices, added, carols) = (await post, await add, await carol);
        });

        Assert.Contains(alices.Outcome, new[] { SendOutcome.Sent, SendOutcome.Accepted }); // durable either way
        Assert.IsType<MailboxUnavailable>(added);
        Assert.Equal(SendOutcome.Unavailable, Assert.IsType<SendResult>(carols).Outcome);

        // carol never became a member, so her post is not the group's: her retry is refused, and no copy has it.
        var view = Assert.IsType<GroupAnswer>(await Groups.Ask<object>(new GetGroup(group, Alice), Ask, Ct)).Group;
        Assert.Equal([Alice, Bob], view.Members.Order(StringComparer.Ordinal));
        var retry = Assert.IsType<SendResult>(await Groups.Ask<object>(new PostToGroup(group, Carol, "from carol", "k1"), Ask, Ct));
        Assert.Equal(SendOutcome.Forbidden, retry.Outcome);
        Assert.Equal(SendOutcome.Sent, (await Groups.Ask<SendResult>(new PostToGroup(group, Alice, "after", "a2"), Ask, Ct)).Outcome);
        foreach (var member in new[] { Alice, Bob })
        {
            await AssertThreadAsync(member, group, "from alice", "after");
            Assert.DoesNotContain(await ThreadAsync(member, group), m => m.Message.Text == "from carol");
        }
    }

    [Fact]
    public async Task Should_answer_a_rejected_receipt_or_membership_change_at_once()
    {
        var sent = await SendAsync(Alice, Bob, "m1", "c1");
        var group = Ids.GroupFor(Alice, $"r-{Run}");
        var quickly = TimeSpan.FromSeconds(3); // well under the edge's ask timeout: the answer is the refusal, not a timeout
        await WithJournalWrite(write => write.RejectIf(p => Task.FromResult(p.Payload is ReceiptsMarked or GroupCreated)), async () =>
        {
            var receipt = await Region.Ask<object>(new MarkReceipts(Bob, sent.ConversationId, null, 1), quickly, Ct);
            Assert.IsType<MailboxUnavailable>(receipt);
            var created = await Groups.Ask<object>(new CreateGroup(group, Alice, "team", [Bob], $"r-{Run}"), quickly, Ct);
            Assert.IsType<MailboxUnavailable>(created);
        });

        // Nothing was stored: both succeed when tried again.
        Assert.IsType<ConversationAnswer>(await Region.Ask<object>(new MarkReceipts(Bob, sent.ConversationId, null, 1), Ask, Ct));
        Assert.True(Assert.IsType<GroupAnswer>(
            await Groups.Ask<object>(new CreateGroup(group, Alice, "team", [Bob], $"r-{Run}"), Ask, Ct)).Created);
    }
}
