using System.Collections.Immutable;
using Messaging.Actors.Delivery;
using Messaging.Actors.Groups;
using Messaging.Messages;

namespace Messaging.Actors.Tests;

/// <summary>The group entity's rules without an actor system: membership, one order, dedup, delivery bookkeeping.</summary>
public sealed class GroupStateSpecs
{
    private const long T0 = 1_764_000_000_000;
    private static readonly string Group = Ids.GroupFor("alice", "r1");

    private static GroupState Created(GroupLimits? limits = null, params string[] others)
    {
        var state = GroupState.Empty(Group, limits ?? new GroupLimits());
        return Store(state, state.DecideCreate(new CreateGroup(Group, "alice", "Family", others.Length == 0 ? ["bob", "carol"] : [.. others], "r1"), T0));
    }

    private static GroupState Store(GroupState state, GroupDecision decision) =>
        state.Apply(Assert.IsType<GroupDecision.Store>(decision).Event);

    private static GroupState Post(GroupState state, string sender, string text, string? cmid = null) =>
        Store(state, state.DecidePost(new PostToGroup(Group, sender, text, cmid ?? Guid.NewGuid().ToString()), T0));

    private static SendResult Refused(GroupDecision decision) =>
        Assert.IsType<SendResult>(Assert.IsType<GroupDecision.Reply>(decision).Answer);

    [Fact]
    public void Should_make_the_creator_the_admin_and_give_every_member_a_copy_that_carries_the_members()
    {
        var state = Created();

        Assert.Equal(["alice", "bob", "carol"], state.Members);
        Assert.Equal(["alice"], state.Admins);
        var copies = state.CopiesOf(1).Cast<DeliverGroupMessage>().ToArray();
        Assert.Equal(["alice", "bob", "carol"], copies.Select(c => c.RecipientId));
        Assert.All(copies, c => Assert.Equal(["alice", "bob", "carol"], c.Members));
        Assert.All(copies, c => Assert.Equal((1L, 0L), (c.ChannelSeq, c.PreviousSeq)));
        Assert.Equal(GroupChange.Created, copies[0].Message.System!.Action);
    }

    [Fact]
    public void Should_order_sends_and_refuse_non_members_unknown_groups_and_reused_client_message_ids()
    {
        var state = Post(Post(Created(), "bob", "one", "b-1"), "carol", "two");

        Assert.Equal(3, state.LastSeq);
        Assert.Equal(["one", "two"], state.Window.Skip(1).Select(e => e.Message.Text));
        Assert.True(state.Window[1].Message.ServerTimestamp < state.Window[2].Message.ServerTimestamp);
        var duplicate = Assert.IsType<GroupDecision.Duplicate>(state.DecidePost(new PostToGroup(Group, "bob", "one", "b-1"), T0));
        Assert.Equal(state.Window[1].Message.MessageId, duplicate.Original.MessageId);
        Assert.Equal(SendOutcome.Conflict, Refused(state.DecidePost(new PostToGroup(Group, "bob", "changed", "b-1"), T0)).Outcome);
        // The same clientMessageId from another sender is another message.
        Assert.IsType<GroupDecision.Store>(state.DecidePost(new PostToGroup(Group, "carol", "one", "b-1"), T0));
        Assert.Equal(SendOutcome.Forbidden, Refused(state.DecidePost(new PostToGroup(Group, "eve", "hi", "e-1"), T0)).Outcome);
        var unknown = GroupState.Empty(Ids.GroupFor("x", "y"), new GroupLimits());
        Assert.Equal(SendOutcome.NotFound, Refused(unknown.DecidePost(new PostToGroup(unknown.GroupId, "x", "hi", "c"), T0)).Outcome);
    }

    [Fact]
    public void Should_start_an_added_members_copies_at_their_addition_and_end_a_removed_members_at_their_removal()
    {
        var state = Post(Created(), "bob", "before dave");
        state = Store(state, state.DecideMembers(new ChangeMembers(Group, "alice", ["dave"], []), T0));
        state = Store(state, state.DecideMembers(new ChangeMembers(Group, "alice", [], ["bob"]), T0));
        state = Post(state, "dave", "after bob");

        var added = state.CopiesOf(3).Cast<DeliverGroupMessage>().ToDictionary(c => c.RecipientId);
        Assert.Equal(["alice", "bob", "carol", "dave"], added.Keys.Order());
        Assert.Equal((3L, 0L), (added["dave"].ChannelSeq, added["dave"].PreviousSeq)); // dave's first
        Assert.Equal(["alice", "bob", "carol", "dave"], added["dave"].Members);
        Assert.Equal(2, added["bob"].PreviousSeq);
        Assert.Empty(added["bob"].Members); // bob follows the change the message carries
        Assert.Contains("bob", state.CopiesOf(4).Select(c => c.RecipientId)); // the removal is bob's last copy
        Assert.DoesNotContain("bob", state.CopiesOf(5).Select(c => c.RecipientId));
        Assert.Equal(["alice", "carol", "dave"], state.Members);
    }

    [Fact]
    public void Should_keep_messages_until_every_member_they_went_to_confirmed_and_refuse_sends_when_full()
    {
        var state = Created(new GroupLimits(MaxPendingMessages: 3));
        state = Post(Post(state, "alice", "a"), "bob", "b");

        Assert.Equal(SendOutcome.Unavailable, Refused(state.DecidePost(new PostToGroup(Group, "carol", "c", "c-1"), T0)).Outcome);
        state = state.Apply(new DeliveriesConfirmed("alice", 3)).Apply(new DeliveriesConfirmed("bob", 3));
        Assert.Equal(3, state.Window.Count); // carol has confirmed nothing
        state = state.Apply(new DeliveriesConfirmed("carol", 2));
        Assert.Equal([3L], state.Window.Select(e => e.Seq));
        IOutbox outbox = state;
        Assert.Equal([new ChannelPosition("carol", 3, 2)], outbox.Channels);
        var resend = Assert.IsType<DeliverGroupMessage>(Assert.Single(outbox.Unconfirmed("carol", 2)));
        Assert.Equal((3L, 2L), (resend.ChannelSeq, resend.PreviousSeq));
        Assert.IsType<GroupDecision.Store>(state.DecidePost(new PostToGroup(Group, "carol", "c", "c-1"), T0));
    }

    [Fact]
    public void Should_rebuild_who_each_message_went_to_from_a_snapshot()
    {
        var state = Post(Created(), "bob", "hello");
        state = Store(state, state.DecideMembers(new ChangeMembers(Group, "alice", ["dave"], []), T0));
        state = Store(state, state.DecideLeave(new LeaveGroup(Group, "bob"), T0));
        state = Post(state, "carol", "bye bob");

        var restored = GroupState.FromSnapshot(Group, new GroupLimits(), state.ToSnapshot());

        Assert.Equal(state.Window.Select(e => (e.Seq, string.Join(",", e.Audience))), restored.Window.Select(e => (e.Seq, string.Join(",", e.Audience))));
        Assert.Equal(state.Members, restored.Members);
        Assert.Equal(state.Admins, restored.Admins);
        Assert.IsType<GroupDecision.Duplicate>(restored.DecidePost(new PostToGroup(Group, "carol", "bye bob", state.Window[^1].Message.ClientMessageId), T0));
        Assert.True(restored.LastStamp >= state.Window[^1].Message.ServerTimestamp);
    }

    [Fact]
    public void Should_let_only_admins_change_members_and_hand_the_admin_on_when_the_last_one_leaves()
    {
        var state = Created();

        Assert.Equal(GroupRefusal.Forbidden, Assert.IsType<GroupRefused>(Assert.IsType<GroupDecision.Reply>(
            state.DecideMembers(new ChangeMembers(Group, "bob", ["dave"], []), T0)).Answer).Reason);
        // Idempotent: who is already in (out) stays so, and nothing is stored when nothing is left to change.
        Assert.IsType<GroupAnswer>(Assert.IsType<GroupDecision.Reply>(
            state.DecideMembers(new ChangeMembers(Group, "alice", ["bob"], []), T0)).Answer);
        Assert.IsType<GroupAnswer>(Assert.IsType<GroupDecision.Reply>(
            state.DecideMembers(new ChangeMembers(Group, "alice", [], ["eve"]), T0)).Answer);
        var added = Assert.IsType<GroupPosted>(Assert.IsType<GroupDecision.Store>(
            state.DecideMembers(new ChangeMembers(Group, "alice", ["bob", "dave"], []), T0)).Event);
        Assert.Equal(["dave"], added.Message.System!.UserIds);
        Assert.Equal(GroupRefusal.Invalid, Assert.IsType<GroupRefused>(Assert.IsType<GroupDecision.Reply>(
            state.DecideMembers(new ChangeMembers(Group, "alice", [], ["alice"]), T0)).Answer).Reason);
        var full = Created(new GroupLimits(MaxMembers: 3));
        Assert.Equal(GroupRefusal.Invalid, Assert.IsType<GroupRefused>(Assert.IsType<GroupDecision.Reply>(
            full.DecideMembers(new ChangeMembers(Group, "alice", ["dave"], []), T0)).Answer).Reason);

        state = Store(state, state.DecideLeave(new LeaveGroup(Group, "alice"), T0));
        Assert.Equal(["bob"], state.Admins);
        Assert.Equal(["bob", "carol"], state.Members);
    }

    [Fact]
    public void Should_store_a_members_group_copies_once_and_in_the_groups_order_in_their_mailbox()
    {
        var group = Post(Created(), "alice", "hi");
        group = Store(group, group.DecideMembers(new ChangeMembers(Group, "alice", ["dave"], []), T0));
        var copies = Enumerable.Range(1, 3).Select(seq => group.CopiesOf(seq).Cast<DeliverGroupMessage>().Single(c => c.RecipientId == "bob")).ToArray();
        var bob = MailboxState.Empty("bob", new MailboxLimits());

        Assert.IsType<DeliveryDecision.OutOfOrder>(bob.DecideDelivery(copies[1], T0));
        foreach (var copy in copies)
            bob = bob.Apply(Assert.IsType<DeliveryDecision.Store>(bob.DecideDelivery(copy, T0)).Event, 1);
        Assert.IsType<DeliveryDecision.AlreadyStored>(bob.DecideDelivery(copies[1], T0));

        var conversation = bob.Conversations[Group];
        Assert.Equal(ConversationSummary.GroupKind, conversation.Kind);
        Assert.Equal("Family", conversation.Name);
        Assert.Equal(["alice", "bob", "carol", "dave"], conversation.ParticipantIds);
        Assert.Equal([1L, 2L, 3L], conversation.Recent().Select(m => m.Seq));
        Assert.Equal(1, conversation.UnreadCount); // membership changes are not unread messages

        // Dave's first copy is the one that added him; it carries the members, and he has nothing before it.
        var daves = group.CopiesOf(3).Cast<DeliverGroupMessage>().Single(c => c.RecipientId == "dave");
        var dave = MailboxState.Empty("dave", new MailboxLimits());
        dave = dave.Apply(Assert.IsType<DeliveryDecision.Store>(dave.DecideDelivery(daves, T0)).Event, 1);
        Assert.Equal(["alice", "bob", "carol", "dave"], dave.Conversations[Group].ParticipantIds);
        Assert.Equal(1, dave.Conversations[Group].LastSeq);
    }

    [Fact]
    public void Should_keep_delivering_to_a_member_removed_before_any_confirmation_and_then_let_the_window_go()
    {
        var state = Created();
        state = Store(state, state.DecideLeave(new LeaveGroup(Group, "bob"), T0));
        state = state.Apply(new DeliveriesConfirmed("alice", 2)).Apply(new DeliveriesConfirmed("carol", 2));

        IOutbox outbox = state;
        Assert.Equal([new ChannelPosition("bob", 2, 0)], outbox.Channels);
        Assert.Equal([1L, 2L], outbox.Unconfirmed("bob", 0).Select(c => c.ChannelSeq));
        Assert.Equal(2, state.Window.Count); // bob has both copies to confirm

        state = state.Apply(new DeliveriesConfirmed("bob", 2));
        Assert.Empty(state.Window);
        Assert.Empty(((IOutbox)state).Channels);
        Assert.False(state.Confirmed.ContainsKey("bob")); // a former member is forgotten once they have everything
    }

    [Fact]
    public void Should_answer_a_retry_of_a_stored_send_as_duplicate_even_after_its_sender_left()
    {
        var state = Post(Created(), "bob", "bye soon", "b-1");
        state = Store(state, state.DecideLeave(new LeaveGroup(Group, "bob"), T0));

        Assert.IsType<GroupDecision.Duplicate>(state.DecidePost(new PostToGroup(Group, "bob", "bye soon", "b-1"), T0));
        Assert.Equal(SendOutcome.Forbidden, Refused(state.DecidePost(new PostToGroup(Group, "bob", "again", "b-2"), T0)).Outcome);
    }

    [Fact]
    public void Should_not_count_members_who_left_while_a_member_was_away_for_the_status_of_their_new_messages()
    {
        var group = Created(null, "bob", "carol", "dave");
        group = Store(group, group.DecideMembers(new ChangeMembers(Group, "alice", [], ["bob"]), T0));
        group = Store(group, group.DecideLeave(new LeaveGroup(Group, "carol"), T0));
        group = Store(group, group.DecideMembers(new ChangeMembers(Group, "alice", ["bob"], []), T0));
        var bob = MailboxState.Empty("bob", new MailboxLimits());
        foreach (var seq in new long[] { 1, 2, 4 })
        {
            var copy = group.CopiesOf(seq).Single(c => c.RecipientId == "bob");
            bob = bob.Apply(Assert.IsType<DeliveryDecision.Store>(bob.DecideDelivery(copy, T0)).Event, seq);
        }

        var receipts = bob.Conversations[Group].Receipts;
        Assert.NotEqual(0, receipts.Single(r => r.UserId == "carol").LeftAt);
        Assert.Equal(["alice", "dave"], bob.Conversations[Group].ToSummary("bob").Receipts.Select(r => r.UserId).Order());
        var later = new ChatMessage("x", Group, "bob", [], "back", "b-9", T0 + 10_000);
        var readByBoth = receipts.Select(r => r with { Receipt = new Receipt(T0 + 10_000, r.UserId == "carol" ? 0 : T0 + 10_000) })
            .ToImmutableArray();
        Assert.Equal(MessageStatus.Read, Receipts.StatusOf(later, "bob", readByBoth));
    }
}
