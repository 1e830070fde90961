using System.Collections.Immutable;
using Akka.Actor;
using Messaging.Messages;
using Messaging.Messages.Serialization;

namespace Messaging.Actors.Tests;

/// <summary>Receipts, read markers and unread counts in <see cref="MailboxState"/>: decided and applied, pure.</summary>
public sealed class ReceiptStateSpecs
{
    private const long T0 = 1_764_300_000_000;
    private static readonly string Conversation = Ids.ConversationFor("alice", "bob");
    private long _journal;

    private static ChatMessage FromAlice(int n) =>
        new(Ids.MessageId("alice", T0 + n), Conversation, "alice", ["bob"], $"a{n}", $"a-{n}", T0 + n);

    /// <summary>bob's copy: alice's messages arrive over her channel, bob's own are sent (window of <paramref name="window"/>).</summary>
    private MailboxState Bob(string pattern, int window = 50)
    {
        var bob = MailboxState.Empty("bob", new MailboxLimits(RecentPerConversation: window));
        var fromAlice = 0;
        for (var i = 0; i < pattern.Length; i++)
        {
            IMailboxEvent evt = pattern[i] == 'a'
                ? ((DeliveryDecision.Store)bob.DecideDelivery(new DeliverMessage("bob", ++fromAlice, FromAlice(i + 1)), T0 + 100 + i)).Event
                : ((SendDecision.Store)bob.DecideSend(new SendMessage("bob", ["alice"], $"b{i + 1}", $"b-{i + 1}"), T0 + 100 + i)).Event;
            bob = bob.Apply(evt, ++_journal);
        }
        return bob;
    }

    private MailboxState Apply(MailboxState state, IMailboxEvent evt) => state.Apply(evt, ++_journal);

    [Fact]
    public void Should_count_only_other_participants_messages_above_the_read_marker_as_unread()
    {
        var bob = Bob("aabaa");

        var conversation = bob.Conversations[Conversation];
        Assert.Equal(4, conversation.UnreadCount);
        Assert.Equal(new Tally(4, T0 + 5), conversation.Tally);
        Assert.Equal([new Tally(1, T0 + 1), new Tally(2, T0 + 2), new Tally(2, T0 + 2), new Tally(3, T0 + 4), new Tally(4, T0 + 5)],
            conversation.Recent().Select(m => m.Tally!.Value));
        var summary = Assert.Single(bob.ListConversations(new GetConversations("bob", 0, 10, 0)).Conversations);
        Assert.Equal((5L, 0L, 4L, "direct"), (summary.LastSeq, summary.ReadUpToSeq, summary.UnreadCount, summary.Kind));
    }

    [Fact]
    public void Should_store_the_markers_and_queue_the_receipt_for_the_sender_in_her_timestamps()
    {
        var bob = Bob("aabaa");

        var marked = Assert.IsType<ReceiptDecision.Store>(bob.DecideReceipts(new MarkReceipts("bob", Conversation, null, 3), T0 + 500)).Event;
        bob = Apply(bob, marked);

        var conversation = bob.Conversations[Conversation];
        Assert.Equal((3L, 3L, 2L), (conversation.ReadUpToSeq, conversation.DeliveredUpToSeq, conversation.UnreadCount)); // read implies delivered
        Assert.Equal(T0 + 500, conversation.LastUpdatedTimestamp); // a change of the conversation: stamped
        var copy = Assert.IsType<DeliverReceipt>(Assert.Single(bob.Outbound["alice"].Pending, c => c is DeliverReceipt));
        Assert.Equal(new Receipt(T0 + 2, T0 + 2), copy.Receipt); // a2, the newest of alice's at or below seq 3
        Assert.Equal(bob.Outbound["alice"].LastSeq, copy.ChannelSeq); // after bob's own message b3 on the same channel
        Assert.Equal(("alice", "bob"), (copy.RecipientId, copy.SenderId));
    }

    [Fact]
    public void Should_never_move_a_marker_back_and_store_nothing_for_a_repeat()
    {
        var bob = Bob("aaaa");
        bob = Apply(bob, ((ReceiptDecision.Store)bob.DecideReceipts(new MarkReceipts("bob", Conversation, 4, 2), T0 + 500)).Event);

        Assert.IsType<ReceiptDecision.Unchanged>(bob.DecideReceipts(new MarkReceipts("bob", Conversation, 4, 2), T0 + 600));
        Assert.IsType<ReceiptDecision.Unchanged>(bob.DecideReceipts(new MarkReceipts("bob", Conversation, 1, 1), T0 + 600));
        var readMore = Assert.IsType<ReceiptDecision.Store>(bob.DecideReceipts(new MarkReceipts("bob", Conversation, 1, 3), T0 + 600)).Event;
        Assert.Equal((4L, 3L), (readMore.DeliveredUpToSeq, readMore.ReadUpToSeq)); // delivered stays at 4
    }

    [Fact]
    public void Should_refuse_markers_above_lastSeq_negative_or_missing_and_not_find_another_conversation()
    {
        var bob = Bob("aa");

        Assert.IsType<ReceiptDecision.Refused>(bob.DecideReceipts(new MarkReceipts("bob", Conversation, null, 3), T0));
        Assert.IsType<ReceiptDecision.Refused>(bob.DecideReceipts(new MarkReceipts("bob", Conversation, -1, null), T0));
        Assert.IsType<ReceiptDecision.Refused>(bob.DecideReceipts(new MarkReceipts("bob", Conversation, null, null), T0));
        Assert.IsType<ReceiptDecision.NotFound>(bob.DecideReceipts(new MarkReceipts("bob", Ids.ConversationFor("bob", "carol"), 1, 1), T0));
    }

    [Fact]
    public void Should_send_no_receipt_when_the_marker_passes_only_the_readers_own_messages()
    {
        var bob = Bob("abb");
        bob = Apply(bob, ((ReceiptDecision.Store)bob.DecideReceipts(new MarkReceipts("bob", Conversation, null, 1), T0 + 500)).Event);
        var pendingBefore = bob.Outbound["alice"].PendingCount;

        var marked = Assert.IsType<ReceiptDecision.Store>(bob.DecideReceipts(new MarkReceipts("bob", Conversation, null, 3), T0 + 600)).Event;

        Assert.Equal(0, marked.ChannelSeq); // alice's receipt would not move
        Assert.Equal(pendingBefore, Apply(bob, marked).Outbound["alice"].PendingCount);
    }

    [Fact]
    public void Should_read_the_tally_of_a_marker_before_the_window_from_the_journal_then_decide_again()
    {
        var bob = Bob("aabaaaaa", window: 3); // the window holds seqs 6..8

        var read = Assert.IsType<ReceiptDecision.ReadTally>(bob.DecideReceipts(new MarkReceipts("bob", Conversation, null, 4), T0 + 500));
        Assert.Equal((4L, 4L, 4L), (read.Seq, read.Plan.FromSeq, read.Plan.ToSeq));

        // What the journal's event at seq 4 says (MessageReceived carries its tally): a4 is alice's third.
        var marked = Assert.IsType<ReceiptDecision.Store>(
            bob.DecideReceipts(new MarkReceipts("bob", Conversation, null, 4), T0 + 500, seq => seq == 4 ? new Tally(3, T0 + 4) : null)).Event;
        bob = Apply(bob, marked);
        Assert.Equal(4, bob.Conversations[Conversation].UnreadCount); // a5..a8
    }

    [Fact]
    public void Should_merge_receipts_on_the_senders_side_so_that_none_moves_back()
    {
        var alice = MailboxState.Empty("alice", new MailboxLimits());
        alice = Apply(alice, ((SendDecision.Store)alice.DecideSend(new SendMessage("alice", ["bob"], "hi", "c1"), T0)).Event);
        IMailboxEvent Receipt(long channelSeq, long delivered, long read) =>
            ((DeliveryDecision.Store)alice.DecideDelivery(
                new DeliverReceipt("alice", channelSeq, "bob", Conversation, new Receipt(delivered, read)), T0 + 10 * channelSeq)).Event;

        alice = Apply(alice, Receipt(1, T0 + 5, T0 + 3));
        var stamp = alice.Conversations[Conversation].LastUpdatedTimestamp;
        alice = Apply(alice, Receipt(2, T0 + 4, T0 + 1)); // a receipt for less, later: changes nothing backwards

        var receipt = Assert.Single(alice.Conversations[Conversation].Receipts);
        Assert.Equal(("bob", new Receipt(T0 + 5, T0 + 3)), (receipt.UserId, receipt.Receipt));
        Assert.True(stamp > T0, "a receipt stamps the conversation");
        Assert.Equal(2, alice.Inbound["bob"]);
        Assert.IsType<DeliveryDecision.AlreadyStored>(alice.DecideDelivery(new DeliverReceipt("alice", 2, "bob", Conversation, new Receipt(9, 9)), T0));
        Assert.IsType<DeliveryDecision.OutOfOrder>(alice.DecideDelivery(new DeliverReceipt("alice", 4, "bob", Conversation, new Receipt(9, 9)), T0));
    }

    [Fact]
    public void Should_keep_markers_receipts_and_pending_receipts_through_a_snapshot()
    {
        var bob = Bob("aabaa", window: 2);
        bob = Apply(bob, ((ReceiptDecision.Store)bob.DecideReceipts(new MarkReceipts("bob", Conversation, 5, 4), T0 + 500)).Event);
        bob = Apply(bob, ((DeliveryDecision.Store)bob.DecideDelivery(
            new DeliverReceipt("bob", 5, "alice", Conversation, new Receipt(T0 + 103, T0 + 103)), T0 + 600)).Event); // after her four messages

        var restored = MailboxState.FromSnapshot("bob", bob.Limits, bob.ToSnapshot());

        DeepEqual(bob.Conversations[Conversation], restored.Conversations[Conversation]);
        Assert.Equal(bob.Outbound["alice"].Pending, restored.Outbound["alice"].Pending);
        Assert.Equal(1, restored.Conversations[Conversation].UnreadCount);
    }

    // ---------------- journals written before v1.1 ----------------

    // Written by the serializer before receipts existed (the same bytes today's writes for these values: no v1.1
    // field is set). bob's snapshot after a1 b2 a3 with a window of two, then a4 received and b5 sent.
    private const string OldSnapshot =
        "08e696e6c3ac3312af010a0c646d7e616c6963657e626f621205616c6963651203626f621a02613320e696e6c3ac332803320203023a" +
        "3f0802123b0a0f31396163383739386236352d626f62120c646d7e616c6963657e626f621a03626f622205616c6963652a0262323203" +
        "622d3238e596e6c3ac333a410803123d0a1131396163383739386230332d616c696365120c646d7e616c6963657e626f621a05616c69" +
        "63652203626f622a0261333203612d33388396e6c3ac331a3b0a03622d32120f31396163383739386236352d626f621a0c646d7e616c" +
        "6963657e626f622205616c69636528e596e6c3ac33314814d92093ac8a0f22510a05616c69636510011a460a05616c69636510011a3b" +
        "0a0f31396163383739386236352d626f62120c646d7e616c6963657e626f621a03626f622205616c6963652a0262323203622d3238e5" +
        "96e6c3ac332a090a05616c6963651002";

    private const string OldReceived =
        "0a3d0a1131396163383739386230342d616c696365120c646d7e616c6963657e626f621a05616c6963652203626f622a026134320361" +
        "2d34388496e6c3ac33100418e796e6c3ac33220208032803";

    private const string OldSent =
        "0a3b0a0f31396163383739386236382d626f62120c646d7e616c6963657e626f621a03626f622205616c6963652a0262353203622d35" +
        "38e896e6c3ac3310051a04080410042002";

    [Fact]
    public void Should_recover_a_snapshot_and_events_written_before_receipts_and_count_unread_from_them()
    {
        using var system = ActorSystem.Create("old-journal");
        var serializer = new MessagingSerializer((ExtendedActorSystem)system);
        var snapshot = (MailboxSnapshot)serializer.FromBinary(Convert.FromHexString(OldSnapshot), "MSn");
        var bob = MailboxState.FromSnapshot("bob", new MailboxLimits(RecentPerConversation: 2), snapshot);
        bob = Apply(bob, (IMailboxEvent)serializer.FromBinary(Convert.FromHexString(OldReceived), "MRc"));
        bob = Apply(bob, (IMailboxEvent)serializer.FromBinary(Convert.FromHexString(OldSent), "MSt"));

        var conversation = bob.Conversations[Conversation];
        Assert.Equal(5, conversation.LastSeq);
        Assert.Equal(3, conversation.UnreadCount); // a1, a3, a4: nothing was ever marked read
        var marked = Assert.IsType<ReceiptDecision.Store>(bob.DecideReceipts(new MarkReceipts("bob", Conversation, null, 5), T0 + 900)).Event;
        bob = Apply(bob, marked);
        Assert.Equal(0, bob.Conversations[Conversation].UnreadCount);
        Assert.Equal(T0 + 4, marked.Read.LastFromOthersAt); // a4's timestamp: alice's receipt covers all she sent
        Assert.Null(snapshot.Conversations[0].Tally); // it was a snapshot from before v1.1
    }

    private static void DeepEqual(ConversationState expected, ConversationState actual)
    {
        Assert.Equal(expected with { Window = [], Anchors = [], Receipts = [], ParticipantIds = [] },
            actual with { Window = [], Anchors = [], Receipts = [], ParticipantIds = [] });
        Assert.Equal(expected.Recent().Select(m => (m.Seq, m.Message.MessageId, m.Message.Text, m.Tally)),
            actual.Recent().Select(m => (m.Seq, m.Message.MessageId, m.Message.Text, m.Tally)));
        Assert.Equal(expected.Anchors, actual.Anchors);
        Assert.Equal(expected.Receipts, actual.Receipts);
        Assert.Equal(expected.ParticipantIds, actual.ParticipantIds);
    }
}
