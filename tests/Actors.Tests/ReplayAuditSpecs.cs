using Messaging.Messages;

namespace Messaging.Actors.Tests;

/// <summary>
/// Journals as recovery sees them: who wrote each event, and which sequence numbers are missing. Events are built by
/// deciding real sends, so "stale" means exactly what a paused node's old incarnation would have written.
/// </summary>
public sealed class ReplayAuditSpecs
{
    private const long T0 = 1_764_300_000_000;
    private const string A = "writer-a";
    private const string B = "writer-b";

    private static MailboxState Empty => MailboxState.Empty("alice", new MailboxLimits());

    private static MessageSent Decide(MailboxState state, string to, string clientId, long now = T0) =>
        Assert.IsType<SendDecision.Store>(state.DecideSend(new SendMessage("alice", [to], $"text {clientId}", clientId), now)).Event;

    /// <summary>Feeds events to an audit as recovery would, applying what it lets through.</summary>
    private sealed class Replay
    {
        public ReplayAudit<IMailboxEvent> Audit { get; } = new();
        public MailboxState State { get; private set; } = Empty;
        public List<long> Applied { get; } = [];

        /// <param name="writer">Who wrote it: the story each test tells. The audit does not need it: an event that
        /// continues the mailbox is applied whoever wrote it, one that does not is kept aside.</param>
        public Replay Event(long seq, string writer, IMailboxEvent evt)
        {
            if (Audit.Replayed(seq, evt, State.Continues))
            {
                State = State.Apply(evt, seq);
                Applied.Add(seq);
            }
            return this;
        }
    }

    /// <summary>
    /// A wrote c1; B took over and wrote c2; A, paused meanwhile, decided c3 on what it still believed: the same seq
    /// and channel number as c2 (returned, not yet replayed).
    /// </summary>
    private static (Replay Replay, MessageSent Stale) TakenOver()
    {
        var replay = new Replay();
        replay.Event(1, A, Decide(replay.State, "bob", "c1"));
        var staleState = replay.State;
        replay.Event(2, B, Decide(replay.State, "bob", "c2", T0 + 1));
        return (replay, Decide(staleState, "bob", "c3", T0 + 2));
    }

    [Fact]
    public void Should_apply_every_event_of_one_writer_and_of_each_newer_one()
    {
        var replay = new Replay();
        replay.Event(1, A, Decide(replay.State, "bob", "c1"));
        replay.Event(2, B, new WriterClaimed("node-b", T0));
        replay.Event(3, B, Decide(replay.State, "bob", "c2", T0 + 1));

        var outcome = replay.Audit.Complete(3);

        Assert.Equal([1L, 2, 3], replay.Applied);
        Assert.Empty(outcome.Stale);
        Assert.Equal(0, outcome.UnsettledGap);
    }

    [Fact]
    public void Should_keep_aside_an_older_writers_event_decided_on_a_state_the_newer_writer_moved_past()
    {
        var (replay, stale) = TakenOver();
        replay.Event(3, A, stale);
        replay.Event(4, B, Decide(replay.State, "carol", "c4", T0 + 3));

        var outcome = replay.Audit.Complete(4);

        Assert.Equal([1L, 2, 4], replay.Applied);
        var (seq, evt) = Assert.Single(outcome.Stale);
        Assert.Equal((3L, (IMailboxEvent)stale), (seq, evt));
    }

    [Fact]
    public void Should_keep_aside_an_event_one_writer_decided_behind_a_write_the_journal_rejected()
    {
        // One pipeline: c2 was decided at journal entry 2 and rejected; c3, decided after it (thread seq 3, channel
        // number 3), was stored at entry 3. Another conversation's send after it continues the mailbox as it is.
        var replay = new Replay();
        replay.Event(1, A, Decide(replay.State, "bob", "c1"));
        var asIfStored = replay.State.Apply(Decide(replay.State, "bob", "c2", T0 + 1), 2);
        var c3 = Decide(asIfStored, "bob", "c3", T0 + 2);
        replay.Event(3, A, c3);
        replay.Event(4, A, Decide(replay.State, "carol", "c4", T0 + 3));

        var outcome = replay.Audit.Complete(4);

        Assert.Equal([1L, 4], replay.Applied);
        Assert.Equal((3L, (IMailboxEvent)c3), Assert.Single(outcome.Stale));
        var again = Assert.IsType<MessageSent>(replay.State.ResolveStale(c3, T0 + 10));
        Assert.Equal((2L, 2L), (again.Seq, again.ChannelSeq)); // the hole closes: bob's channel goes on at 2
    }

    [Fact]
    public void Should_apply_an_older_writers_event_that_continues_the_mailbox_after_it_moved_back()
    {
        // A mailbox moved from node A to B and back to A (same process, same journal uuid), in a journal written
        // before claims existed: A's later events continue where B left off, so they are not stale.
        var replay = new Replay();
        replay.Event(1, A, Decide(replay.State, "bob", "c1"));
        replay.Event(2, B, Decide(replay.State, "bob", "c2", T0 + 1));
        replay.Event(3, A, Decide(replay.State, "bob", "c3", T0 + 2));
        replay.Event(4, B, new DeliveriesConfirmed("bob", 3));

        Assert.Equal([1L, 2, 3, 4], replay.Applied);
        Assert.Empty(replay.Audit.Complete(4).Stale);
    }

    [Fact]
    public void Should_not_let_an_older_writers_confirmation_start_its_turn()
    {
        var (replay, stale) = TakenOver();
        replay.Event(3, A, new DeliveriesConfirmed("bob", 1)); // the paused node's confirmation timer fired
        replay.Event(4, A, stale);

        Assert.Equal([1L, 2, 3], replay.Applied);
        Assert.Equal((4L, (IMailboxEvent)stale), Assert.Single(replay.Audit.Complete(4).Stale));
    }

    [Fact]
    public void Should_check_a_writer_never_seen_before_as_well()
    {
        // An incarnation that had only read before it was paused writes for the first time after the takeover.
        var (replay, stale) = TakenOver();
        replay.Event(3, "writer-c", stale);

        Assert.Equal([1L, 2], replay.Applied);
        Assert.Single(replay.Audit.Complete(3).Stale);
    }

    [Fact]
    public void Should_let_a_claim_start_its_writers_turn_again()
    {
        var replay = new Replay();
        replay.Event(1, A, new WriterClaimed("node-a", T0));
        replay.Event(2, B, new WriterClaimed("node-b", T0 + 1));
        replay.Event(3, A, new WriterClaimed("node-a", T0 + 2));

        Assert.Equal([1L, 2, 3], replay.Applied);
        Assert.Empty(replay.Audit.Complete(3).Stale);
    }

    [Fact]
    public void Should_skip_stale_events_once_resolved()
    {
        var (replay, stale) = TakenOver();
        replay.Event(3, A, stale);
        replay.Event(4, B, new StaleWritesResolved(3));

        Assert.Empty(replay.Audit.Complete(4).Stale);
        Assert.Equal([1L, 2, 4], replay.Applied);
    }

    [Theory]
    [InlineData(new long[] { 1, 2, 4 }, 4, 3)] // a hole a write in flight could still fill
    [InlineData(new long[] { 1, 2, 3 }, 5, 5)] // the journal's head was not replayed: committed after the read
    [InlineData(new long[] { 1, 2, 3 }, 3, 0)]
    public void Should_report_a_hole_above_the_newest_claim_as_unsettled(long[] replayed, long highest, long unsettled)
    {
        var audit = new ReplayAudit<IMailboxEvent>();
        foreach (var seq in replayed)
            audit.Replayed(seq, new DeliveriesConfirmed("bob", 0), Empty.Continues);

        Assert.Equal(unsettled, audit.Complete(highest).UnsettledGap);
    }

    [Fact]
    public void Should_treat_a_hole_below_a_claim_as_settled()
    {
        var audit = new ReplayAudit<IMailboxEvent>();
        audit.SnapshotOffered(10);
        audit.Replayed(11, new DeliveriesConfirmed("bob", 0), Empty.Continues);
        audit.Replayed(13, new DeliveriesConfirmed("bob", 0), Empty.Continues); // 12 was never committed
        audit.Replayed(14, new WriterClaimed("node-b", T0), Empty.Continues);
        audit.Replayed(15, new DeliveriesConfirmed("bob", 0), Empty.Continues);

        Assert.Equal(0, audit.Complete(15).UnsettledGap);
    }

    [Fact]
    public void Should_resolve_a_stale_send_by_storing_it_again_as_a_new_message_with_its_clientMessageId()
    {
        var (replay, stale) = TakenOver();

        var again = Assert.IsType<MessageSent>(replay.State.ResolveStale(stale, T0 + 10));

        Assert.Equal((3L, 3L), (again.Seq, again.ChannelSeq));
        Assert.Equal((stale.Message.Text, stale.Message.ClientMessageId), (again.Message.Text, again.Message.ClientMessageId));
        Assert.Equal(T0 + 10, again.Message.ServerTimestamp);
        Assert.Equal(Ids.MessageId("alice", T0 + 10), again.Message.MessageId); // what a retry's Duplicate will say
        Assert.True(replay.State.Continues(again));
        // Stored once: the send is now known by its clientMessageId.
        Assert.Null(replay.State.Apply(again, 3).ResolveStale(stale, T0 + 11));
    }

    [Fact]
    public void Should_resolve_a_stale_received_copy_only_if_it_is_its_senders_next()
    {
        var bobState = MailboxState.Empty("bob", new MailboxLimits());
        var fromAlice = Decide(Empty, "bob", "c1").Message;
        var received = Assert.IsType<DeliveryDecision.Store>(bobState.DecideDelivery(new DeliverMessage("bob", 1, fromAlice), T0)).Event;

        Assert.IsType<MessageReceived>(bobState.ResolveStale(received, T0 + 5));
        Assert.Null(bobState.Apply(received, 1).ResolveStale(received, T0 + 5));
        Assert.Null(bobState.ResolveStale(new DeliveriesConfirmed("carol", 4), T0));
    }
}
