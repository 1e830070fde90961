using System.Collections.Immutable;
using Messaging.Messages;

namespace Messaging.Actors.Tests;

public sealed class MailboxStateSpecs
{
    private const long T0 = 1_764_300_000_000;

    private static MailboxState Alice(MailboxLimits? limits = null) => MailboxState.Empty("alice", limits ?? new MailboxLimits());

    private static SendMessage Send(string to, string text, string clientId, string from = "alice") =>
        new(from, [to], text, clientId);

    /// <summary>Decide and apply a send, giving it the next journal sequence number.</summary>
    private static (MailboxState State, MessageSent Event) Sent(MailboxState state, SendMessage cmd, long now, ref long journalSeq)
    {
        var decision = Assert.IsType<SendDecision.Store>(state.DecideSend(cmd, now));
        journalSeq++;
        return (state.Apply(decision.Event, journalSeq), decision.Event);
    }

    [Fact]
    public void Should_stamp_strictly_increasing_even_when_the_clock_goes_back_or_stands_still()
    {
        var state = Alice();
        long j = 0;
        var stamps = new List<long>();
        foreach (var (now, i) in new[] { T0, T0, T0 - 5_000, T0 + 1, T0 + 1 }.Select((t, i) => (t, i)))
        {
            (state, var evt) = Sent(state, Send(i % 2 == 0 ? "bob" : "carol", $"m{i}", $"c{i}"), now, ref j);
            stamps.Add(evt.Message.ServerTimestamp);
        }

        Assert.Equal(stamps.Order(), stamps);
        Assert.Equal(stamps.Count, stamps.Distinct().Count());
        Assert.Equal(T0, stamps[0]);
        Assert.Equal(stamps[^1], state.LastStamp);
    }

    [Fact]
    public void Should_know_where_stale_events_may_lie_across_resolutions_and_snapshots()
    {
        long j = 0;
        var (state, _) = Sent(Alice(), Send("bob", "hi", "c1"), T0, ref j);
        Assert.Equal(0, state.StaleUpTo);
        Assert.Equal(0, MailboxState.FromSnapshot("alice", new MailboxLimits(), state.ToSnapshot(), 40).StaleUpTo);

        state = state.Apply(new StaleWritesResolved(9), 12).Apply(new StaleWritesResolved(5), 13); // only ever up
        Assert.Equal(9, state.StaleUpTo);
        Assert.Equal(9, MailboxState.FromSnapshot("alice", new MailboxLimits(), state.ToSnapshot(), 40).StaleUpTo);
        // A snapshot from before 1.5.0 does not say: stale events may lie anywhere up to where it was taken.
        Assert.Equal(40, MailboxState.FromSnapshot("alice", new MailboxLimits(), state.ToSnapshot() with { StaleUpTo = null }, 40).StaleUpTo);
    }

    [Fact]
    public void Should_stamp_after_the_last_stamp_recovered_from_a_snapshot()
    {
        long j = 0;
        var (state, _) = Sent(Alice(), Send("bob", "hi", "c1"), T0 + 10_000, ref j);
        var restored = MailboxState.FromSnapshot("alice", new MailboxLimits(), state.ToSnapshot());

        var (_, next) = Sent(restored, Send("bob", "again", "c2"), T0, ref j);

        Assert.Equal(T0 + 10_001, next.Message.ServerTimestamp);
    }

    [Fact]
    public void Should_name_the_conversation_the_same_in_both_copies_with_sorted_participants()
    {
        long j = 0;
        var (alice, sent) = Sent(Alice(), Send("Bob", "hi", "c1"), T0, ref j);
        var bob = MailboxState.Empty("Bob", new MailboxLimits());
        var received = Assert.IsType<DeliveryDecision.Store>(
            bob.DecideDelivery(new DeliverMessage("Bob", sent.ChannelSeq, sent.Message), T0 + 3));
        bob = bob.Apply(received.Event, 1);

        var mine = Assert.Single(alice.ListConversations(new GetConversations("alice", 0, 20, 0)).Conversations);
        var theirs = Assert.Single(bob.ListConversations(new GetConversations("Bob", 0, 20, 0)).Conversations);
        Assert.Equal(mine.ConversationId, theirs.ConversationId);
        Assert.Equal(["Bob", "alice"], mine.ParticipantIds); // ordinal sort
        Assert.Equal(mine.ParticipantIds, theirs.ParticipantIds);
        Assert.Equal(T0 + 3, theirs.LastUpdatedTimestamp); // stamped by bob's own mailbox
        Assert.Equal(T0, ((MessageReceived)received.Event).Message.ServerTimestamp); // the sender's acceptance time, in every copy
    }

    [Fact]
    public void Should_number_each_conversation_from_one_without_gaps_in_send_order()
    {
        var state = Alice();
        long j = 0;
        var seqs = new Dictionary<string, List<long>> { ["bob"] = [], ["carol"] = [] };
        for (var i = 0; i < 10; i++)
        {
            var to = i % 3 == 0 ? "carol" : "bob";
            (state, var evt) = Sent(state, Send(to, $"m{i}", $"c{i}"), T0 + i, ref j);
            seqs[to].Add(evt.Seq);
        }

        Assert.Equal(Enumerable.Range(1, 6).Select(i => (long)i), seqs["bob"]);
        Assert.Equal(Enumerable.Range(1, 4).Select(i => (long)i), seqs["carol"]);
        var page = Assert.IsType<ThreadPlan.InMemory>(state.PlanThread(new GetThread("alice", Ids.ConversationFor("alice", "bob"), 0, 50, null, null))).Page;
        Assert.Equal(["m1", "m2", "m4", "m5", "m7", "m8"], page.Messages.Select(m => m.Message.Text));
    }

    [Fact]
    public void Should_answer_a_repeated_send_as_duplicate_with_the_original_ids()
    {
        long j = 0;
        var (state, first) = Sent(Alice(), Send("bob", "hi", "c1"), T0, ref j);

        var again = Assert.IsType<SendDecision.Duplicate>(state.DecideSend(Send("bob", "hi", "c1"), T0 + 100));

        Assert.Equal(first.Message.MessageId, again.Original.MessageId);
        Assert.Equal(first.Message.ServerTimestamp, again.Original.ServerTimestamp);
        Assert.Equal(first.Message.ConversationId, again.Original.ConversationId);
    }

    [Theory]
    [InlineData("bob", "other text")]
    [InlineData("carol", "hi")]
    public void Should_refuse_a_reused_clientMessageId_with_other_content(string recipient, string text)
    {
        long j = 0;
        var (state, _) = Sent(Alice(), Send("bob", "hi", "c1"), T0, ref j);

        var reply = Assert.IsType<SendDecision.Reply>(state.DecideSend(Send(recipient, text, "c1"), T0 + 1));

        Assert.Equal(SendOutcome.Conflict, reply.Result.Outcome);
    }

    [Fact]
    public void Should_treat_a_retry_of_an_in_flight_send_as_a_duplicate_of_it()
    {
        // The actor decides against the state that already includes writes in flight.
        var state = Alice();
        var decision = Assert.IsType<SendDecision.Store>(state.DecideSend(Send("bob", "hi", "c1"), T0));
        var decided = state.Apply(decision.Event, 1);

        var retry = decided.DecideSend(Send("bob", "hi", "c1"), T0 + 1);

        Assert.Equal(decision.Event.Message.MessageId, Assert.IsType<SendDecision.Duplicate>(retry).Original.MessageId);
    }

    [Theory]
    [InlineData("alice", "hi", "self")]
    [InlineData("bob", "", "empty")]
    public void Should_refuse_invalid_sends(string to, string text, string _)
    {
        var reply = Assert.IsType<SendDecision.Reply>(Alice().DecideSend(Send(to, text, "c1"), T0));
        Assert.Equal(SendOutcome.Invalid, reply.Result.Outcome);
    }

    [Fact]
    public void Should_refuse_more_than_one_recipient()
    {
        var reply = Assert.IsType<SendDecision.Reply>(
            Alice().DecideSend(new SendMessage("alice", ["bob", "carol"], "hi", "c1"), T0));
        Assert.Equal(SendOutcome.Invalid, reply.Result.Outcome);
    }

    [Fact]
    public void Should_remember_the_most_recent_clientMessageIds_up_to_the_window_also_after_a_snapshot()
    {
        var limits = new MailboxLimits(DedupWindow: 4096, MaxPendingPerRecipient: 10_000);
        var state = Alice(limits);
        long j = 0;
        for (var i = 0; i < 4100; i++)
            (state, _) = Sent(state, Send("bob", $"m{i}", $"c{i}"), T0 + i, ref j);

        state = MailboxState.FromSnapshot("alice", limits, state.ToSnapshot());

        Assert.Equal(4096, state.Dedup.Count);
        Assert.IsType<SendDecision.Duplicate>(state.DecideSend(Send("bob", "m4", "c4"), T0 + 9999));
        Assert.IsType<SendDecision.Duplicate>(state.DecideSend(Send("bob", "m4099", "c4099"), T0 + 9999));
        Assert.IsType<SendDecision.Store>(state.DecideSend(Send("bob", "m3", "c3"), T0 + 9999));
    }

    [Fact]
    public void Should_store_deliveries_only_in_channel_order_and_once()
    {
        var bob = MailboxState.Empty("bob", new MailboxLimits());
        ChatMessage Msg(int i) => new($"id{i}", Ids.ConversationFor("alice", "bob"), "alice", ["bob"], $"m{i}", $"c{i}", T0 + i);

        Assert.IsType<DeliveryDecision.OutOfOrder>(bob.DecideDelivery(new DeliverMessage("bob", 2, Msg(2)), T0));
        var first = Assert.IsType<DeliveryDecision.Store>(bob.DecideDelivery(new DeliverMessage("bob", 1, Msg(1)), T0));
        bob = bob.Apply(first.Event, 1);
        Assert.IsType<DeliveryDecision.AlreadyStored>(bob.DecideDelivery(new DeliverMessage("bob", 1, Msg(1)), T0));
        var second = Assert.IsType<DeliveryDecision.Store>(bob.DecideDelivery(new DeliverMessage("bob", 2, Msg(2)), T0));
        bob = bob.Apply(second.Event, 2);

        Assert.Equal([1L, 2L], [((MessageReceived)first.Event).Seq, ((MessageReceived)second.Event).Seq]);
        Assert.Equal(2, bob.Inbound["alice"]);
    }

    [Fact]
    public void Should_keep_unconfirmed_copies_in_the_outbox_until_confirmed()
    {
        var state = Alice();
        long j = 0;
        for (var i = 0; i < 3; i++)
            (state, _) = Sent(state, Send("bob", $"m{i}", $"c{i}"), T0 + i, ref j);
        Assert.Equal(3, state.PendingDeliveries);

        state = state.Apply(new DeliveriesConfirmed("bob", 2), ++j);

        var channel = state.Outbound["bob"];
        Assert.Equal(1, state.PendingDeliveries);
        Assert.Equal(3, channel.Pending.Peek().ChannelSeq);
        Assert.Equal(2, channel.ConfirmedSeq);
        Assert.Equal(1, MailboxState.FromSnapshot("alice", new MailboxLimits(), state.ToSnapshot()).PendingDeliveries);
    }

    [Fact]
    public void Should_cut_the_snippet_at_100_characters_without_splitting_a_surrogate_pair()
    {
        long j = 0;
        var text = new string('a', 99) + "😀" + "tail";
        var (state, _) = Sent(Alice(), Send("bob", text, "c1"), T0, ref j);

        var snippet = Assert.Single(state.ListConversations(new GetConversations("alice", 0, 20, 0)).Conversations).Snippet;

        Assert.Equal(new string('a', 99) + "😀", snippet);
    }

    [Fact]
    public void Should_list_conversations_newest_first_after_the_given_stamp_with_offset_and_count()
    {
        var state = Alice();
        long j = 0;
        foreach (var (to, i) in new[] { "bob", "carol", "dave", "bob" }.Select((t, i) => (t, i)))
            (state, _) = Sent(state, Send(to, $"m{i}", $"c{i}"), T0 + i, ref j);

        var all = state.ListConversations(new GetConversations("alice", 0, 20, 0));
        Assert.Equal(["bob", "dave", "carol"], all.Conversations.Select(c => c.ParticipantIds.Single(p => p != "alice")));
        Assert.Equal("m3", all.Conversations[0].Snippet);
        Assert.True(all.HasChanges);

        var paged = state.ListConversations(new GetConversations("alice", 1, 1, 0));
        Assert.Equal("dave", Assert.Single(paged.Conversations).ParticipantIds.Single(p => p != "alice"));

        var since = state.ListConversations(new GetConversations("alice", 0, 20, T0 + 1));
        Assert.Equal(2, since.Conversations.Length);

        var current = state.ListConversations(new GetConversations("alice", 0, 20, state.LastStamp));
        Assert.Empty(current.Conversations);
        Assert.False(current.HasChanges);
    }

    [Fact]
    public void Should_serve_recent_pages_from_memory_and_send_older_ones_to_the_journal()
    {
        var limits = new MailboxLimits(RecentPerConversation: 10);
        var state = Alice(limits);
        long j = 0;
        for (var i = 1; i <= 30; i++)
            (state, _) = Sent(state, Send("bob", $"m{i}", $"c{i}"), T0 + i, ref j);
        var id = Ids.ConversationFor("alice", "bob");

        var recent = Assert.IsType<ThreadPlan.InMemory>(state.PlanThread(new GetThread("alice", id, 2, 5, null, null))).Page;
        Assert.Equal([24L, 25, 26, 27, 28], recent.Messages.Select(m => m.Seq));

        var after = Assert.IsType<ThreadPlan.InMemory>(state.PlanThread(new GetThread("alice", id, 0, 50, null, 27))).Page;
        Assert.Equal([28L, 29, 30], after.Messages.Select(m => m.Seq));

        var old = Assert.IsType<ThreadPlan.FromJournal>(state.PlanThread(new GetThread("alice", id, 0, 5, 10, null)));
        Assert.Equal((5L, 9L), (old.FromSeq, old.ToSeq));

        var beyond = Assert.IsType<ThreadPlan.InMemory>(state.PlanThread(new GetThread("alice", id, 40, 5, null, null))).Page;
        Assert.Empty(beyond.Messages);

        Assert.IsType<ThreadPlan.NotFound>(state.PlanThread(new GetThread("alice", "dm~alice~zed", 0, 5, null, null)));
    }

    [Fact]
    public void Should_link_each_message_to_its_predecessor_and_skip_target_in_the_journal()
    {
        // Two interleaved conversations, so journal positions and conversation seqs differ.
        var state = Alice();
        long j = 0;
        var journalOf = new Dictionary<long, long>();
        var links = new Dictionary<long, ThreadLinks>();
        for (var i = 1; i <= 40; i++)
        {
            (state, _) = Sent(state, Send("carol", $"x{i}", $"x{i}"), T0 + 2 * i, ref j);
            (state, var evt) = Sent(state, Send("bob", $"m{i}", $"c{i}"), T0 + 2 * i + 1, ref j);
            journalOf[evt.Seq] = j;
            links[evt.Seq] = evt.Links;
        }

        foreach (var (seq, link) in links)
        {
            Assert.Equal(seq == 1 ? 0 : journalOf[seq - 1], link.Previous);
            var skipTarget = seq - (seq & -seq);
            Assert.Equal(skipTarget == 0 ? 0 : journalOf[skipTarget], link.Skip);
        }
        var anchors = state.Conversations[Ids.ConversationFor("alice", "bob")].Anchors;
        Assert.Equal(journalOf[40], anchors[0]);
        Assert.Equal(journalOf[40], anchors[3]); // 40 = 8 * 5
        Assert.Equal(journalOf[32], anchors[4]);
        Assert.Equal(journalOf[32], anchors[5]);
    }

    [Fact]
    public void Should_refuse_sends_to_a_recipient_whose_undelivered_backlog_is_full_until_it_drains()
    {
        var state = Alice(new MailboxLimits(MaxPendingPerRecipient: 3, MaxPendingCharsPerRecipient: 1_000));
        long j = 0;
        for (var i = 0; i < 3; i++)
            (state, _) = Sent(state, Send("bob", $"m{i}", $"c{i}"), T0 + i, ref j);

        var full = Assert.IsType<SendDecision.Reply>(state.DecideSend(Send("bob", "m3", "c3"), T0 + 5));
        Assert.Equal(SendOutcome.Unavailable, full.Result.Outcome);
        Assert.IsType<SendDecision.Store>(state.DecideSend(Send("carol", "m3", "c3"), T0 + 5));
        var tooBig = Assert.IsType<SendDecision.Reply>(
            state.Apply(new DeliveriesConfirmed("bob", 3), ++j).DecideSend(Send("bob", new string('x', 1_001), "c4"), T0 + 6));
        Assert.Equal(SendOutcome.Unavailable, tooBig.Result.Outcome);

        state = state.Apply(new DeliveriesConfirmed("bob", 2), ++j);
        Assert.IsType<SendDecision.Store>(state.DecideSend(Send("bob", "m3", "c3"), T0 + 7));
    }

    [Fact]
    public void Should_give_nothing_after_the_largest_seq_rather_than_wrap_around()
    {
        var state = Alice();
        long j = 0;
        for (var i = 1; i <= 3; i++)
            (state, _) = Sent(state, Send("bob", $"m{i}", $"c{i}"), T0 + i, ref j);
        var conversation = Ids.ConversationFor("alice", "bob");

        var page = Assert.IsType<ThreadPlan.InMemory>(state.PlanThread(new GetThread("alice", conversation, 0, 50, null, long.MaxValue))).Page;
        var afterFirst = Assert.IsType<ThreadPlan.InMemory>(state.PlanThread(new GetThread("alice", conversation, 0, 50, null, 1))).Page;

        Assert.Empty(page.Messages);
        Assert.Equal([2L, 3], afterFirst.Messages.Select(m => m.Seq));
    }
}
