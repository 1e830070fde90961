using System.Collections.Immutable;
using Akka.Actor;
using Akka.Persistence;
using Messaging.Messages;

namespace Messaging.Actors.Tests;

/// <summary>
/// The mailbox's side of the single writer: it claims before its first write, and recovers journals that two
/// writers wrote into at once before writes were fenced (events written here with the writer uuids a paused node
/// and its successor would have left).
/// </summary>
public sealed class WriterFencingSpecs(ITestOutputHelper output)
    : ShardedMailboxTestKit(nameof(WriterFencingSpecs), output, new MailboxSettings { RedeliveryInterval = TimeSpan.FromMilliseconds(200) })
{
    private const long T0 = 1_764_300_000_000;
    private const string OldNode = "old-node-journal-uuid";
    private const string NewNode = "new-node-journal-uuid";

    private string Alice => $"alice-{Run}";

    private string Bob => $"bob-{Run}";

    private async Task<ThreadPage> ThreadAsync(string user, int count = 50) =>
        Assert.IsType<ThreadPage>(await Region.Ask<object>(
            new GetThread(user, Ids.ConversationFor(Alice, Bob), 0, count, null, null), Ask, Ct));

    private async Task<IReadOnlyList<IPersistentRepresentation>> JournalOfAsync(string user)
    {
        var probe = CreateTestProbe();
        JournalActorRef.Tell(new ReplayMessages(1, long.MaxValue, long.MaxValue, MailboxActor.PersistenceIdFor(user), probe.Ref));
        var events = new List<IPersistentRepresentation>();
        while (await probe.ReceiveOneAsync(Ask, Ct) is ReplayedMessage replayed)
            events.Add(replayed.Persistent);
        return events;
    }

    private async Task WriteAsync(string user, params (long Seq, string Writer, IMailboxEvent Event)[] events)
    {
        var probe = CreateTestProbe();
        var writes = events
            .Select(e => (IPersistentEnvelope)new AtomicWrite(new Persistent(
                e.Event, e.Seq, MailboxActor.PersistenceIdFor(user), "", false, ActorRefs.NoSender, e.Writer)))
            .ToImmutableList();
        JournalActorRef.Tell(new WriteMessages(writes, probe.Ref, 1));
        await probe.ExpectMsgAsync<WriteMessagesSuccessful>(Ask, cancellationToken: Ct);
    }

    private MessageSent Decide(MailboxState state, string text, long now) =>
        Assert.IsType<SendDecision.Store>(state.DecideSend(new SendMessage(Alice, [Bob], text, $"cid-{text}"), now)).Event;

    [Fact]
    public async Task Should_claim_the_journal_before_the_first_write_of_each_incarnation()
    {
        var sent = await Region.Ask<SendResult>(new SendMessage(Alice, [Bob], "hi", "c1"), Ask, Ct);
        Assert.Equal(SendOutcome.Sent, sent.Outcome);

        var journal = await JournalOfAsync(Alice);
        Assert.IsType<WriterClaimed>(journal[0].Payload);
        Assert.IsType<MessageSent>(journal[1].Payload);
        Assert.Equal(1, journal.Count(e => e.Payload is WriterClaimed));
        // A mailbox that only reads writes nothing, not even a claim.
        Assert.IsType<ConversationNotFound>(await Region.Ask<object>(
            new GetThread($"reader-{Run}", Ids.ConversationFor($"reader-{Run}", Bob), 0, 10, null, null), Ask, Ct));
        Assert.Empty(await JournalOfAsync($"reader-{Run}"));
    }

    [Fact]
    public async Task Should_store_again_once_what_a_paused_nodes_stale_writes_stored_when_recovering_an_interleaved_journal()
    {
        // The old node wrote m1; the new node took over and wrote m2; the old node, resumed, wrote m3 decided on its
        // stale state (the same seq and channel number as m2): the journal today's code left behind.
        var empty = MailboxState.Empty(Alice, Settings.Limits);
        var m1 = Decide(empty, "m1", T0);
        var afterM1 = empty.Apply(m1, 1);
        var m2 = Decide(afterM1, "m2", T0 + 10);
        var m3 = Decide(afterM1, "m3", T0 + 20);
        await WriteAsync(Alice, (1, OldNode, m1), (2, NewNode, m2), (3, OldNode, m3));

        // The first read starts the mailbox; m3 is readable once its second write is durable.
        await AwaitAssertAsync(async () =>
            Assert.Equal(["m1", "m2", "m3"], (await ThreadAsync(Alice)).Messages.Select(m => m.Message.Text)),
            Ask, cancellationToken: Ct);
        var thread = await ThreadAsync(Alice);
        Assert.Equal([1L, 2, 3], thread.Messages.Select(m => m.Seq));
        Assert.Equal(m3.Message.ClientMessageId, thread.Messages[2].Message.ClientMessageId);
        // A retry of the paused node's send is a Duplicate naming the message as stored now.
        var retry = await Region.Ask<SendResult>(new SendMessage(Alice, [Bob], "m3", m3.Message.ClientMessageId), Ask, Ct);
        Assert.Equal((SendOutcome.Duplicate, thread.Messages[2].Message.MessageId), (retry.Outcome, retry.MessageId));
        // Bob gets every copy once and in order (m3 under a channel number of its own).
        await AwaitAssertAsync(async () =>
            Assert.Equal(["m1", "m2", "m3"], (await ThreadAsync(Bob)).Messages.Select(m => m.Message.Text)),
            Ask, cancellationToken: Ct);

        // Resolved for good: the next incarnation replays the same journal and stores nothing again.
        await KillMailboxAsync(Alice);
        Assert.Equal(["m1", "m2", "m3"], (await ThreadAsync(Alice)).Messages.Select(m => m.Message.Text));
        var journal = await JournalOfAsync(Alice);
        Assert.Single(journal, e => e.Payload is StaleWritesResolved { UpToJournalSeq: 3 });
        Assert.Single(journal, e => e.Payload is MessageSent { Message.Text: "m3" } && e.SequenceNr > 3);
    }

    [Fact]
    public async Task Should_claim_and_recover_again_when_a_write_in_flight_could_still_land_below_its_first_write()
    {
        var empty = MailboxState.Empty(Alice, Settings.Limits);
        var m1 = Decide(empty, "m1", T0);
        var m3 = Decide(empty.Apply(m1, 1), "m2", T0 + 10);
        await WriteAsync(Alice, (1, OldNode, new WriterClaimed("old", T0)), (2, OldNode, m1), (4, OldNode, m3)); // 3 missing

        Assert.Equal(["m1", "m2"], (await ThreadAsync(Alice)).Messages.Select(m => m.Message.Text));
        var sent = await Region.Ask<SendResult>(new SendMessage(Alice, [Bob], "m3", "cid-m3"), Ask, Ct);
        if (sent.Outcome == SendOutcome.Unavailable) // answered by the incarnation that claimed and stepped down
            sent = await Region.Ask<SendResult>(new SendMessage(Alice, [Bob], "m3", "cid-m3"), Ask, Ct);

        Assert.Equal(SendOutcome.Sent, sent.Outcome);
        var journal = await JournalOfAsync(Alice);
        // The first incarnation claimed at 5 and stopped; the next claimed again before its send.
        Assert.Equal([1L, 2, 4, 5, 6, 7], journal.Select(e => e.SequenceNr));
        Assert.IsType<WriterClaimed>(journal[3].Payload);
        Assert.IsType<WriterClaimed>(journal[4].Payload);
        Assert.Equal(["m1", "m2", "m3"], (await ThreadAsync(Alice)).Messages.Select(m => m.Message.Text));
    }
}
