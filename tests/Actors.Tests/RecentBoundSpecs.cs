using System.Collections.Immutable;
using Messaging.Messages;

namespace Messaging.Actors.Tests;

/// <summary>
/// A live mailbox's memory for message text is bounded in characters, not only in messages per conversation: one
/// user writing large messages into many conversations (or written to by many senders) keeps at most
/// <see cref="MailboxLimits.MaxRecentChars"/> of text in memory, and in its snapshots; the rest is read from the journal.
/// </summary>
public sealed class RecentBoundSpecs
{
    private const long T0 = 1_764_300_000_000;
    private const long Bound = 100_000;

    private static readonly MailboxLimits Limits = new(MaxRecentChars: Bound);

    private static string Text(int chars, char c = 'x') => new(c, chars);

    private static MailboxState SendTo(MailboxState state, string to, string text, ref long journalSeq)
    {
        var decision = Assert.IsType<SendDecision.Store>(state.DecideSend(
            new SendMessage(state.UserId, [to], text, $"c{journalSeq}"), T0 + journalSeq));
        return state.Apply(decision.Event, ++journalSeq);
    }

    /// <summary>The bookkeeping agrees with the windows themselves, and stays within the bound.</summary>
    private static void AssertAccounted(MailboxState state)
    {
        var windowed = state.Conversations.Values.Where(c => !c.Recent().IsEmpty).ToList();
        Assert.Equal(windowed.Sum(c => c.Recent().Sum(m => (long)m.Message.Text.Length)), state.RecentChars);
        Assert.Equal(windowed.Select(c => (c.Anchors[0], c.ConversationId)).OrderBy(w => w.Item1),
            state.Windows.Select(w => (w.Key, w.Value)));
        Assert.True(state.RecentChars <= state.Limits.MaxRecentChars, $"{state.RecentChars} chars in memory");
    }

    [Fact]
    public void Should_keep_the_text_of_many_conversations_within_the_bound_and_read_the_rest_from_the_journal()
    {
        var state = MailboxState.Empty("alice", Limits);
        long j = 0;
        for (var i = 0; i < 40; i++)
        {
            state = SendTo(state, $"stranger{i}", Text(20_000), ref j);
            AssertAccounted(state);
        }

        // 800,000 characters written; at most the bound held, the newest conversations whole.
        Assert.Equal(5, state.Windows.Count);
        Assert.Equal(Enumerable.Range(35, 5).Select(i => Ids.ConversationFor("alice", $"stranger{i}")), state.Windows.Values);
        // Every conversation is still listed and readable: the evicted ones from the journal.
        Assert.Equal(40, state.Conversations.Count);
        var evicted = Ids.ConversationFor("alice", "stranger0");
        Assert.Equal(1, state.Conversations[evicted].LastSeq);
        Assert.IsType<ThreadPlan.FromJournal>(state.PlanThread(new GetThread("alice", evicted, 0, 10, null, null)));
        var newest = Ids.ConversationFor("alice", "stranger39");
        Assert.Single(Assert.IsType<ThreadPlan.InMemory>(state.PlanThread(new GetThread("alice", newest, 0, 10, null, null))).Page.Messages);
    }

    [Fact]
    public void Should_evict_the_conversation_written_longest_ago_first()
    {
        var state = MailboxState.Empty("alice", Limits);
        long j = 0;
        state = SendTo(state, "bob", Text(40_000), ref j);
        state = SendTo(state, "carol", Text(40_000), ref j);
        state = SendTo(state, "bob", Text(10, 'b'), ref j); // bob's is now the more recent conversation
        state = SendTo(state, "dave", Text(40_000), ref j);  // over the bound: carol's window goes, not bob's

        Assert.Empty(state.Conversations[Ids.ConversationFor("alice", "carol")].Recent());
        Assert.Equal(2, state.Conversations[Ids.ConversationFor("alice", "bob")].Recent().Length);
        Assert.Single(state.Conversations[Ids.ConversationFor("alice", "dave")].Recent());
        AssertAccounted(state);

        // A conversation that lost its window gets one again with its next message.
        state = SendTo(state, "carol", Text(10, 'c'), ref j);
        var carol = state.Conversations[Ids.ConversationFor("alice", "carol")];
        Assert.Equal([2L], carol.Recent().Select(m => m.Seq));
        AssertAccounted(state);
    }

    [Fact]
    public void Should_trim_one_conversation_oldest_first_and_always_keep_the_message_just_written()
    {
        var state = MailboxState.Empty("alice", Limits with { MaxRecentChars = 65_535 });
        long j = 0;
        for (var i = 0; i < 5; i++)
            state = SendTo(state, "bob", Text(30_000), ref j);
        var bob = Ids.ConversationFor("alice", "bob");
        Assert.Equal([4L, 5], state.Conversations[bob].Recent().Select(m => m.Seq));
        AssertAccounted(state);

        state = SendTo(state, "bob", Text(65_535), ref j);
        Assert.Equal([6L], state.Conversations[bob].Recent().Select(m => m.Seq));
        AssertAccounted(state);
    }

    [Fact]
    public void Should_hold_to_the_bound_when_recovering_from_a_snapshot_taken_under_a_larger_one_and_after_it()
    {
        var state = MailboxState.Empty("alice", new MailboxLimits(MaxRecentChars: 1_000_000));
        long j = 0;
        for (var i = 0; i < 20; i++)
            state = SendTo(state, $"stranger{i}", Text(20_000), ref j);
        Assert.Equal(400_000, state.RecentChars);

        var recovered = MailboxState.FromSnapshot("alice", Limits, state.ToSnapshot());
        AssertAccounted(recovered);
        Assert.Equal(5, recovered.Windows.Count);
        Assert.Equal(20, recovered.Conversations.Count);
        // The snapshot it takes now is bounded too.
        Assert.True(recovered.ToSnapshot().Conversations
            .Sum(c => ConversationState.FromSnapshot(c).Recent().Sum(m => (long)m.Message.Text.Length)) <= Bound);

        for (var i = 20; i < 30; i++)
        {
            recovered = SendTo(recovered, $"stranger{i % 25}", Text(20_000), ref j);
            AssertAccounted(recovered);
        }
    }

    [Fact]
    public void Should_bound_a_mailbox_written_to_by_many_senders()
    {
        var state = MailboxState.Empty("bob", Limits);
        for (var i = 0; i < 30; i++)
        {
            var sender = $"sender{i}";
            var message = new ChatMessage(Ids.MessageId(sender, T0 + i), Ids.ConversationFor(sender, "bob"), sender, ["bob"],
                Text(20_000), $"c{i}", T0 + i);
            var store = Assert.IsType<DeliveryDecision.Store>(state.DecideDelivery(new DeliverMessage("bob", 1, message), T0 + i));
            state = state.Apply(store.Event, i + 1);
            AssertAccounted(state);
        }
        Assert.Equal(30, state.Conversations.Count);
        Assert.Equal(5, state.Windows.Count);
    }
}
