using System.Collections.Immutable;
using Messaging.Messages;

namespace Messaging.Actors.Tests;

/// <summary>
/// Past <see cref="MailboxLimits.MaxConversationsInMemory"/>, the 1:1 conversations changed longest ago go cold: out of
/// memory and the snapshot, with their channel positions, into pages of the mailbox's own journal
/// (<see cref="ColdIndex"/>), and back when a message, receipt or marker needs them. Pure: a list of events stands in
/// for the journal, and <see cref="Mailbox"/> does what the actor does around each decision.
/// </summary>
public sealed class ColdConversationStateSpecs
{
    private const long T0 = 1_764_300_000_000;
    private const string Owner = "popular";

    /// <summary>A mailbox and its journal, driven as the actor drives it: restore before a decision that needs it, archive after a write.</summary>
    private sealed class Mailbox(MailboxLimits limits)
    {
        public MailboxState State { get; private set; } = MailboxState.Empty(Owner, limits);

        public List<IMailboxEvent> Journal { get; } = [];

        public long Now { get; set; } = T0;

        public int PageReads { get; private set; }

        /// <summary>The ColdGroups gate: whether groups go cold too.</summary>
        public bool Groups { get; init; } = true;

        public void Write(IMailboxEvent evt)
        {
            Journal.Add(evt);
            State = State.Apply(evt, Journal.Count);
        }

        private ImmutableArray<ColdPage> ReadPage(long journalSeq)
        {
            PageReads++;
            return Assert.IsType<ConversationsArchived>(Journal[(int)journalSeq - 1]).Pages;
        }

        private readonly HashSet<string> _notCold = [];

        /// <summary>What the actor does before a command: bring back every cold conversation it needs.</summary>
        public void Before(object command)
        {
            _notCold.Clear();
            while (State.ColdNeededFor(command, _notCold) is { } cold)
            {
                if (State.Restore(cold, ReadPage(State.Cold.PageOf(cold))) is { } restored)
                    Write(restored);
                else if (!_notCold.Add(cold)) // not cold: a new conversation whose slot has a page
                    return; // asked for again: the state did not pass over what it was told
            }
        }

        /// <summary>What the actor does once a write is durable: archive while past the bound.</summary>
        public void Settle()
        {
            while (State.PlanArchive(groups: Groups) is [var id, ..])
            {
                var seq = State.Cold.PageOf(id);
                Write(State.Archive(id, seq == 0 ? null : ColdIndex.PageFor(ReadPage(seq), ColdIndex.Digest(id))));
            }
        }

        public void Receive(string sender, long channelSeq, string text)
        {
            var message = new ChatMessage(Ids.MessageId(sender, Now), Ids.ConversationFor(sender, Owner), sender, [Owner], text, $"c-{sender}-{channelSeq}", Now);
            var copy = new DeliverMessage(Owner, channelSeq, message);
            Before(copy);
            Write(Assert.IsType<DeliveryDecision.Store>(State.DecideDelivery(copy, Now++)).Event);
            Settle();
        }

        public MessageSent Send(string to, string text, string clientMessageId)
        {
            var send = new SendMessage(Owner, [to], text, clientMessageId);
            Before(send);
            var sent = (MessageSent)Assert.IsType<SendDecision.Store>(State.DecideSend(send, Now++)).Event;
            Write(sent);
            Write(new DeliveriesConfirmed(to, sent.ChannelSeq)); // the recipient confirms at once
            Settle();
            return sent;
        }

        /// <summary>
        /// The owner's markers, decided as the actor decides them: what they need brought back first, and a marked
        /// message's tally read from the journal when the conversation holds no window (as one brought back).
        /// </summary>
        public ReceiptDecision Mark(MarkReceipts marks)
        {
            Before(marks);
            Tally? Known(long seq) => Journal.OfType<MessageReceived>()
                .LastOrDefault(r => r.Message.ConversationId == marks.ConversationId && r.Seq == seq)?.Tally;
            return State.DecideReceipts(marks, Now++, Known);
        }

        /// <summary>A copy from group <paramref name="groupId"/>, brought back first if it is cold, as the actor does.</summary>
        public DeliveryDecision GroupCopy(string groupId, long channelSeq, string sender, string text, GroupChange? change = null,
            ImmutableArray<string> members = default)
        {
            var message = new ChatMessage($"{channelSeq}-{groupId}", groupId, sender, [], text, $"{groupId}-{channelSeq}", T0 + channelSeq, change);
            var copy = new DeliverGroupMessage(Owner, channelSeq, channelSeq - 1, message, "G", members.IsDefault ? [] : members);
            Before(copy);
            var decision = State.DecideDelivery(copy, Now++);
            if (decision is DeliveryDecision.Store store)
            {
                Write(store.Event);
                Settle();
            }
            return decision;
        }

        /// <summary>A group created by <paramref name="creator"/> with the owner in it, and a first message from the creator.</summary>
        public void JoinGroup(string groupId, string creator, params string[] others)
        {
            GroupCopy(groupId, 1, creator, "", new GroupChange(GroupChange.Created, [Owner, .. others]), [creator, Owner, .. others]);
            GroupCopy(groupId, 2, creator, $"welcome to {groupId}");
        }

        /// <summary>The conversation as memory or its page holds it.</summary>
        public ConversationSnapshot? Find(string conversationId) =>
            State.Conversations.TryGetValue(conversationId, out var hot) ? hot.ToSnapshot()
            : State.Cold.PageOf(conversationId) is var seq and > 0 ? State.FindCold(conversationId, ReadPage(seq))?.Conversation
            : null;
    }

    private static string Dm(string other) => Ids.ConversationFor(Owner, other);

    [Fact]
    public void Should_hold_at_most_the_bound_in_memory_while_thousands_of_senders_write_and_find_every_one_in_its_page()
    {
        var mailbox = new Mailbox(new MailboxLimits(MaxConversationsInMemory: 50));
        for (var i = 0; i < 3_000; i++)
            mailbox.Receive($"sender{i}", 1, $"hello {i}");

        Assert.Equal(50, mailbox.State.Conversations.Count);
        Assert.Equal(2_950, mailbox.State.Cold.Count);
        // The positions of a cold conversation's channel left with it.
        Assert.InRange(mailbox.State.Inbound.Count, 0, 50);
        // The newest 50 stay; the rest are in pages of at most 64, found in one read each.
        Assert.Equal(Enumerable.Range(2_950, 50).Select(i => Dm($"sender{i}")).Order(), mailbox.State.Conversations.Keys.Order());
        Assert.InRange(mailbox.State.Cold.Directory.Length, 32, 256);
        for (var i = 0; i < 3_000; i++)
        {
            var found = mailbox.Find(Dm($"sender{i}"));
            Assert.NotNull(found);
            Assert.Equal(1, found.LastSeq);
            Assert.Equal($"hello {i}", found.Snippet);
        }
        var pages = mailbox.Journal.OfType<ConversationsArchived>().SelectMany(a => a.Pages);
        Assert.All(pages, p => Assert.InRange(p.Entries.Length, 0, ColdIndex.MaxPageEntries));

        // The snapshot holds the bound and the directory, not the cold ones.
        var snapshot = mailbox.State.ToSnapshot();
        Assert.Equal(50, snapshot.Conversations.Length);
        Assert.Equal(mailbox.State.Cold.Directory, snapshot.ColdPages);
        var restored = MailboxState.FromSnapshot(Owner, mailbox.State.Limits, snapshot);
        Assert.Equal(mailbox.State.Cold, restored.Cold);
    }

    [Fact]
    public void Should_bring_a_cold_conversation_back_with_its_thread_and_channels_where_they_were()
    {
        var mailbox = new Mailbox(new MailboxLimits(MaxConversationsInMemory: 3));
        mailbox.Receive("bob", 1, "one");
        mailbox.Receive("bob", 2, "two");
        var reply = mailbox.Send("bob", "yes", "r1");
        Assert.Equal(1, reply.ChannelSeq);
        for (var i = 0; i < 10; i++)
            mailbox.Receive($"other{i}", 1, "hi");
        Assert.False(mailbox.State.Conversations.ContainsKey(Dm("bob")));
        Assert.False(mailbox.State.Inbound.ContainsKey("bob"));
        Assert.False(mailbox.State.Outbound.ContainsKey("bob"));

        // Bob's third copy: his channel goes on at 3, the thread at 4, the unread count counts the first two.
        var reads = mailbox.PageReads;
        mailbox.Receive("bob", 3, "three");
        Assert.Equal(reads + 2, mailbox.PageReads); // his page, then the page of the one archived in his place
        var bob = mailbox.State.Conversations[Dm("bob")];
        Assert.Equal(4, bob.LastSeq);
        Assert.Equal(3, bob.UnreadCount);
        Assert.Equal(3, mailbox.State.Inbound["bob"]);
        // A copy already stored (a resend) is known as such.
        Assert.IsType<DeliveryDecision.AlreadyStored>(mailbox.State.DecideDelivery(
            new DeliverMessage(Owner, 2, new ChatMessage("x", Dm("bob"), "bob", [Owner], "two", "c-bob-2", T0)), T0));

        // Cold again, then a send to bob: his channel numbers on from 1.
        for (var i = 10; i < 20; i++)
            mailbox.Receive($"other{i}", 1, "hi");
        Assert.False(mailbox.State.Conversations.ContainsKey(Dm("bob")));
        var next = mailbox.Send("bob", "again", "r2");
        Assert.Equal(2, next.ChannelSeq);
        Assert.Equal(5, next.Seq);
        // The thread's newest anchor still leads back through the journal: the previous message is bob's third.
        Assert.Equal(mailbox.Journal.FindIndex(e => e is MessageReceived { ChannelSeq: 3, Message.SenderId: "bob" }) + 1, next.Links.Previous);
    }

    [Fact]
    public void Should_replay_to_the_same_state_as_the_live_mailbox()
    {
        var mailbox = new Mailbox(new MailboxLimits(MaxConversationsInMemory: 5));
        for (var i = 0; i < 200; i++)
        {
            mailbox.Receive($"s{i % 40}", i / 40 + 1, $"m{i}");
            if (i % 7 == 0)
                mailbox.Send($"s{(i * 3) % 40}", "r", $"r{i}");
        }
        var replayed = MailboxState.Empty(Owner, mailbox.State.Limits);
        for (var j = 0; j < mailbox.Journal.Count; j++)
        {
            Assert.True(replayed.Continues(mailbox.Journal[j]), $"event {j + 1} ({mailbox.Journal[j].GetType().Name}) continues the replay");
            replayed = replayed.Apply(mailbox.Journal[j], j + 1);
        }
        Assert.Equal(mailbox.State.Cold.Directory.AsEnumerable(), replayed.Cold.Directory.AsEnumerable());
        Assert.Equal(mailbox.State.Cold.Count, replayed.Cold.Count);
        Assert.Equal(mailbox.State.Conversations.Keys.Order(), replayed.Conversations.Keys.Order());
        Assert.Equal(mailbox.State.Inbound.OrderBy(e => e.Key), replayed.Inbound.OrderBy(e => e.Key));
        Assert.Equal(mailbox.State.ByStamp, replayed.ByStamp);
        // Every one of the 40 is where it should be, with its five messages.
        for (var s = 0; s < 40; s++)
            Assert.Equal(5 + mailbox.Journal.OfType<MessageSent>().Count(m => m.Message.RecipientIds[0] == $"s{s}"), mailbox.Find(Dm($"s{s}"))!.LastSeq);
    }

    [Fact]
    public void Should_keep_a_conversation_with_copies_pending_in_memory()
    {
        var mailbox = new Mailbox(new MailboxLimits(MaxConversationsInMemory: 2));
        var send = new SendMessage(Owner, ["slow"], "waiting", "w1");
        mailbox.Write(Assert.IsType<SendDecision.Store>(mailbox.State.DecideSend(send, mailbox.Now++)).Event); // never confirmed
        for (var i = 0; i < 5; i++)
            mailbox.Receive($"fast{i}", 1, "hi");
        Assert.True(mailbox.State.Conversations.ContainsKey(Dm("slow")));
        Assert.Equal(1, mailbox.State.Outbound["slow"].PendingCount);
        Assert.Equal(2, mailbox.State.Conversations.Count);
        Assert.Throws<ArgumentException>(() => mailbox.State.Archive(Dm("slow"), null));
    }

    [Fact]
    public void Should_keep_groups_in_memory_while_the_gate_is_closed_and_bring_back_every_member_a_groups_receipt_goes_to()
    {
        var mailbox = new Mailbox(new MailboxLimits(MaxConversationsInMemory: 2)) { Groups = false };
        // A group with bob and carol, a message from each, then both of their 1:1 conversations, then enough others
        // that those go cold.
        var created = new ChatMessage("1-g", "grp~g", "bob", [], "", "r1", T0, new GroupChange(GroupChange.Created, [Owner, "carol"]));
        mailbox.Write(Assert.IsType<DeliveryDecision.Store>(mailbox.State.DecideDelivery(
            new DeliverGroupMessage(Owner, 1, 0, created, "G", ["bob", "carol", Owner]), mailbox.Now++)).Event);
        foreach (var (sender, seq) in new[] { ("bob", 2L), ("carol", 3L) })
            mailbox.Write(Assert.IsType<DeliveryDecision.Store>(mailbox.State.DecideDelivery(new DeliverGroupMessage(Owner, seq, seq - 1,
                new ChatMessage($"{seq}-g", "grp~g", sender, [], "hello all", $"g{seq}", T0 + seq), "G", []), mailbox.Now++)).Event);
        mailbox.Receive("bob", 1, "hi");
        mailbox.Receive("carol", 1, "hi");
        for (var i = 0; i < 4; i++)
            mailbox.Receive($"x{i}", 1, "hi");
        Assert.True(mailbox.State.Conversations.ContainsKey("grp~g"));
        Assert.False(mailbox.State.Conversations.ContainsKey(Dm("bob")));

        var marks = new MarkReceipts(Owner, "grp~g", 3, 3);
        Assert.NotNull(mailbox.State.ColdNeededFor(marks));
        mailbox.Before(marks);
        Assert.Null(mailbox.State.ColdNeededFor(marks));
        Assert.True(mailbox.State.Conversations.ContainsKey(Dm("bob")));
        Assert.True(mailbox.State.Conversations.ContainsKey(Dm("carol")));
    }

    [Fact]
    public void Should_bring_back_a_former_members_conversation_before_a_groups_receipt_goes_to_them()
    {
        // The group stays in memory with its window (the gate closed; or it is among the newest): the receipt goes to
        // the senders of what it covers, bob too. (A group brought back from cold with no window sends it to the
        // senders of its unread messages, up to 32 of them, else to every current member.)
        var mailbox = new Mailbox(new MailboxLimits(MaxConversationsInMemory: 2)) { Groups = false };
        mailbox.Receive("bob", 1, "hi"); // the 1:1 conversation with bob: his channel and ours
        mailbox.Send("bob", "hello", "r1");
        var created = new ChatMessage("1-g", "grp~g", "carol", [], "", "r1", T0, new GroupChange(GroupChange.Created, [Owner, "bob"]));
        var said = new ChatMessage("2-g", "grp~g", "bob", [], "bob says", "c2", T0 + 1);
        var left = new ChatMessage("3-g", "grp~g", "bob", [], "", "c3", T0 + 2, new GroupChange(GroupChange.Left, ["bob"]));
        foreach (var (groupCopy, seq) in new[] { (created, 1L), (said, 2L), (left, 3L) })
            mailbox.Write(Assert.IsType<DeliveryDecision.Store>(mailbox.State.DecideDelivery(
                new DeliverGroupMessage(Owner, seq, seq - 1, groupCopy, "G", seq == 1 ? ["bob", "carol", Owner] : []), mailbox.Now++)).Event);
        for (var i = 0; i < 3; i++)
            mailbox.Receive($"x{i}", 1, "hi");
        Assert.False(mailbox.State.Conversations.ContainsKey(Dm("bob")));
        Assert.DoesNotContain("bob", mailbox.State.Conversations["grp~g"].ParticipantIds);

        // Reading bob's message in the group sends him a receipt on our channel to him: it needs that channel back.
        var marks = new MarkReceipts(Owner, "grp~g", null, 3);
        Assert.Equal(Dm("bob"), mailbox.State.ColdNeededFor(marks));
        var decided = Assert.IsType<ReceiptDecision.Store>(mailbox.Mark(marks));
        Assert.True(mailbox.State.Conversations.ContainsKey(Dm("bob")));
        var copy = Assert.Single(decided.Event.Targets, t => t.RecipientId == "bob");
        Assert.Equal(2, copy.ChannelSeq); // after our "hello", number 1
    }

    [Fact]
    public void Should_bring_back_a_later_target_of_a_groups_receipt_when_an_earlier_one_was_never_cold()
    {
        var mailbox = new Mailbox(new MailboxLimits(MaxConversationsInMemory: 2));
        mailbox.Receive("bob", 1, "hi");
        mailbox.Send("bob", "hello", "r1"); // our channel to bob: number 1
        var created = new ChatMessage("1-g", "grp~g", "carol", [], "", "r1", T0, new GroupChange(GroupChange.Created, [Owner, "alice", "bob"]));
        mailbox.Write(Assert.IsType<DeliveryDecision.Store>(mailbox.State.DecideDelivery(
            new DeliverGroupMessage(Owner, 1, 0, created, "G", ["alice", "bob", "carol", Owner]), mailbox.Now++)).Event);
        foreach (var (sender, seq) in new[] { ("alice", 2L), ("bob", 3L) })
            mailbox.Write(Assert.IsType<DeliveryDecision.Store>(mailbox.State.DecideDelivery(new DeliverGroupMessage(Owner, seq, seq - 1,
                new ChatMessage($"{seq}-g", "grp~g", sender, [], "hello all", $"g{seq}", T0 + seq), "G", []), mailbox.Now++)).Event);
        for (var i = 0; i < 200; i++)
            mailbox.Receive($"x{i}", 1, "hi"); // enough cold pages that every slot has one: alice's slot too
        Assert.False(mailbox.State.Conversations.ContainsKey(Dm("bob")));
        Assert.True(mailbox.State.MayBeCold(Dm("alice"))); // her slot has a page; she never wrote 1:1, so it is not in it

        // alice comes first among the targets and is not cold; bob after her is.
        var marks = new MarkReceipts(Owner, "grp~g", 3, 3);
        mailbox.Before(marks);
        Assert.True(mailbox.State.Conversations.ContainsKey(Dm("bob")));
        var decided = Assert.IsType<ReceiptDecision.Store>(mailbox.State.DecideReceipts(marks, mailbox.Now++));
        Assert.Equal(2, Assert.Single(decided.Event.Targets, t => t.RecipientId == "bob").ChannelSeq);
        Assert.Equal(1, Assert.Single(decided.Event.Targets, t => t.RecipientId == "alice").ChannelSeq);
    }

    [Fact]
    public void Should_archive_past_any_number_of_groups_changed_longer_ago_while_groups_may_not_go_cold()
    {
        var mailbox = new Mailbox(new MailboxLimits(MaxConversationsInMemory: 70)) { Groups = false };
        for (var g = 0; g < 80; g++)
        {
            var created = new ChatMessage($"{g}-g", $"grp~g{g}", "carol", [], "", $"r{g}", T0 + g, new GroupChange(GroupChange.Created, [Owner]));
            mailbox.Write(Assert.IsType<DeliveryDecision.Store>(mailbox.State.DecideDelivery(
                new DeliverGroupMessage(Owner, 1, 0, created, "G", ["carol", Owner]), mailbox.Now++)).Event);
        }
        for (var i = 0; i < 10; i++)
            mailbox.Receive($"x{i}", 1, "hi");
        // The 80 groups stay (the gate is closed), and every 1:1 conversation over the bound went.
        Assert.Equal(80, mailbox.State.Conversations.Count);
        Assert.Equal(10, mailbox.State.Cold.Count);
    }

    [Fact]
    public void Should_hold_at_most_the_bound_of_a_user_in_hundreds_of_groups_and_bring_one_back_where_its_thread_and_channel_were()
    {
        var mailbox = new Mailbox(new MailboxLimits(MaxConversationsInMemory: 20));
        for (var g = 0; g < 300; g++)
            mailbox.JoinGroup($"grp~g{g}", $"creator{g}", $"m{g}");

        Assert.Equal(20, mailbox.State.Conversations.Count);
        Assert.Equal(280, mailbox.State.Cold.Count);
        Assert.True(mailbox.State.Cold.HasGroups);
        Assert.Equal(mailbox.State.Conversations.Keys.Order(), mailbox.State.Inbound.Keys.Order()); // each cold group's channel position left with it
        for (var g = 0; g < 300; g++)
        {
            var found = mailbox.Find($"grp~g{g}");
            Assert.NotNull(found);
            Assert.Equal((2L, $"welcome to grp~g{g}", "G"), (found.LastSeq, found.Snippet, found.Name));
            Assert.Equal(new[] { $"creator{g}", Owner, $"m{g}" }.Order(), found.ParticipantIds.Order());
        }

        // A resend of the group's second copy is known as stored (its channel came back with it); its third goes on.
        Assert.False(mailbox.State.Conversations.ContainsKey("grp~g0"));
        Assert.IsType<DeliveryDecision.AlreadyStored>(mailbox.GroupCopy("grp~g0", 2, "creator0", "welcome to grp~g0"));
        Assert.True(mailbox.State.Conversations.ContainsKey("grp~g0"));
        for (var g = 300; g < 330; g++)
            mailbox.JoinGroup($"grp~g{g}", $"creator{g}", $"m{g}"); // g0 cold again
        Assert.False(mailbox.State.Conversations.ContainsKey("grp~g0"));
        var third = Assert.IsType<DeliveryDecision.Store>(mailbox.GroupCopy("grp~g0", 3, "m0", "third"));
        var received = Assert.IsType<MessageReceived>(third.Event);
        Assert.Equal(3, received.Seq);
        var g0 = mailbox.State.Conversations["grp~g0"];
        Assert.Equal((3L, 3L), (g0.LastSeq, mailbox.State.Inbound["grp~g0"]));
        Assert.Equal(2, g0.UnreadCount); // the welcome and the third; the creation is not a message to read
        // The thread's newest anchor leads back through the journal to the second copy.
        Assert.Equal(mailbox.Journal.FindIndex(e => e is MessageReceived { ChannelSeq: 2, Message.ConversationId: "grp~g0" }) + 1, received.Links.Previous);

        // A copy out of order waits for the one before it, cold or not.
        for (var g = 330; g < 360; g++)
            mailbox.JoinGroup($"grp~g{g}", $"creator{g}", $"m{g}");
        Assert.IsType<DeliveryDecision.OutOfOrder>(mailbox.GroupCopy("grp~g0", 5, "m0", "fifth"));

        // The snapshot holds the bound and says groups went cold; the replay reaches the same state.
        var snapshot = mailbox.State.ToSnapshot();
        Assert.True(snapshot.ColdGroups);
        Assert.Equal(mailbox.State.Conversations.Count, snapshot.Conversations.Length);
        Assert.True(MailboxState.FromSnapshot(Owner, mailbox.State.Limits, snapshot).Cold.HasGroups);
        var replayed = MailboxState.Empty(Owner, mailbox.State.Limits);
        for (var j = 0; j < mailbox.Journal.Count; j++)
        {
            Assert.True(replayed.Continues(mailbox.Journal[j]), $"event {j + 1} ({mailbox.Journal[j].GetType().Name}) continues the replay");
            replayed = replayed.Apply(mailbox.Journal[j], j + 1);
        }
        Assert.Equal(mailbox.State.Conversations.Keys.Order(), replayed.Conversations.Keys.Order());
        Assert.Equal(mailbox.State.Inbound.OrderBy(e => e.Key), replayed.Inbound.OrderBy(e => e.Key));
        Assert.Equal(mailbox.State.Cold.Directory.AsEnumerable(), replayed.Cold.Directory.AsEnumerable());
        Assert.True(replayed.Cold.HasGroups);
    }

    [Fact]
    public void Should_bring_back_a_cold_group_before_a_receipt_about_its_message_or_a_marker_in_it()
    {
        var mailbox = new Mailbox(new MailboxLimits(MaxConversationsInMemory: 2));
        mailbox.JoinGroup("grp~g", "carol", "bob");
        mailbox.GroupCopy("grp~g", 3, Owner, "mine"); // the owner's own message, through the group
        for (var i = 0; i < 4; i++)
            mailbox.Receive($"x{i}", 1, "hi");
        Assert.False(mailbox.State.Conversations.ContainsKey("grp~g"));

        // bob read the owner's message: his receipt lands on the group's conversation, so both come back first (the
        // 1:1 conversation with bob never existed, so only the group is cold).
        var receipt = new DeliverReceipt(Owner, 1, "bob", "grp~g", new Receipt(3, 3));
        Assert.NotNull(mailbox.State.ColdNeededFor(receipt));
        mailbox.Before(receipt);
        Assert.True(mailbox.State.Conversations.ContainsKey("grp~g"));
        mailbox.Write(Assert.IsType<DeliveryDecision.Store>(mailbox.State.DecideDelivery(receipt, mailbox.Now++)).Event);
        Assert.Equal(3, Assert.Single(mailbox.State.Conversations["grp~g"].Receipts, r => r.UserId == "bob").Receipt.ReadUpTo);
        mailbox.Settle();

        // Cold again; the owner reads the group: the group comes back, then carol's channel is decided (new, number 1).
        for (var i = 4; i < 8; i++)
            mailbox.Receive($"x{i}", 1, "hi");
        Assert.False(mailbox.State.Conversations.ContainsKey("grp~g"));
        var marks = new MarkReceipts(Owner, "grp~g", null, 2);
        Assert.Equal("grp~g", mailbox.State.ColdNeededFor(marks));
        var decided = Assert.IsType<ReceiptDecision.Store>(mailbox.Mark(marks));
        Assert.Equal(1, Assert.Single(decided.Event.Targets, t => t.RecipientId == "carol").ChannelSeq);
        Assert.Equal(3, Assert.Single(mailbox.State.Conversations["grp~g"].Receipts, r => r.UserId == "bob").Receipt.ReadUpTo);
    }

    [Fact]
    public void Should_send_a_marker_in_a_group_back_from_cold_to_the_senders_of_its_unread_messages_only()
    {
        var mailbox = new Mailbox(new MailboxLimits(MaxConversationsInMemory: 2));
        var members = Enumerable.Range(0, 10).Select(i => $"m{i}").ToArray();
        mailbox.JoinGroup("grp~g", "host", members);
        mailbox.Write(Assert.IsType<ReceiptDecision.Store>(mailbox.Mark(new MarkReceipts(Owner, "grp~g", null, 2))).Event); // the welcome read
        mailbox.GroupCopy("grp~g", 3, "m1", "one");
        mailbox.GroupCopy("grp~g", 4, "m2", "two");
        for (var i = 0; i < 4; i++)
            mailbox.Receive($"x{i}", 1, "hi");
        Assert.False(mailbox.State.Conversations.ContainsKey("grp~g"));

        // The two unread messages came back with the group: the receipt goes to their senders, not to all 11.
        var decided = Assert.IsType<ReceiptDecision.Store>(mailbox.Mark(new MarkReceipts(Owner, "grp~g", null, 4)));
        Assert.Equal(["m1", "m2"], decided.Event.Targets.Select(t => t.RecipientId).Order());
        Assert.Equal([3L, 4L], mailbox.State.Conversations["grp~g"].Window.Select(m => m.Seq));
        Assert.Contains("grp~g", mailbox.State.Windows.Values);
        Assert.Equal(mailbox.State.Conversations.Values.Sum(c => c.Window.Sum(m => (long)m.TextLength)), mailbox.State.RecentChars);

        // Too many unread to keep: the group comes back without them, and the marker goes to the senders of every
        // unread message (1.9.1; before, to every member, as for any message before the window).
        for (var seq = 5; seq < 5 + MailboxState.ColdUnreadTailMessages + 1; seq++)
            mailbox.GroupCopy("grp~g", seq, seq % 2 == 0 ? "m3" : "m4", $"many {seq}");
        for (var i = 4; i < 8; i++)
            mailbox.Receive($"x{i}", 1, "hi");
        Assert.False(mailbox.State.Conversations.ContainsKey("grp~g"));
        var senders = Assert.IsType<ReceiptDecision.Store>(mailbox.Mark(new MarkReceipts(Owner, "grp~g", null, 5)));
        Assert.True(mailbox.State.Conversations["grp~g"].Window.IsEmpty);
        // The senders after the read marker (still at 2: the marker above was not written), not the 11 members.
        Assert.Equal(["m1", "m2", "m3", "m4"], senders.Event.Targets.Select(t => t.RecipientId));

        // The windows that came back count toward the bound on recent text, in the live state and in a replay alike.
        var replayed = MailboxState.Empty(Owner, mailbox.State.Limits);
        for (var j = 0; j < mailbox.Journal.Count; j++)
            replayed = replayed.Apply(mailbox.Journal[j], j + 1);
        Assert.Equal(mailbox.State.Conversations.Values.Sum(c => c.Window.Sum(m => (long)m.TextLength)), mailbox.State.RecentChars);
        Assert.Equal(mailbox.State.RecentChars, replayed.RecentChars);
        Assert.Equal(mailbox.State.Windows, replayed.Windows);
    }

    [Fact]
    public void Should_send_a_receipt_about_messages_before_the_window_to_their_senders_and_to_every_member_only_when_they_are_not_known()
    {
        var mailbox = new Mailbox(new MailboxLimits(RecentPerConversation: 4));
        var members = Enumerable.Range(0, 40).Select(i => $"m{i:D2}").ToArray();
        mailbox.JoinGroup("grp~g", "host", members);
        var seq = 3L;
        IReadOnlyList<string> Mark(long read)
        {
            var decided = Assert.IsType<ReceiptDecision.Store>(mailbox.Mark(new MarkReceipts(Owner, "grp~g", null, read)));
            mailbox.Write(decided.Event);
            return [.. decided.Event.Targets.Select(t => t.RecipientId)];
        }
        void Copies(params string[] senders)
        {
            foreach (var sender in senders)
                Assert.IsType<DeliveryDecision.Store>(mailbox.GroupCopy("grp~g", seq++, sender, $"from {sender}"));
        }

        // Twelve unread, the owner's own among them: the window holds the last 4, the marker covers all twelve.
        Copies("m01", "m02", "m03", Owner, "m01", "m02", "m03", "m01", "m02", "m03", "m01", "m02");
        Assert.Equal(4, mailbox.State.Conversations["grp~g"].Window.Length);
        Assert.Equal(["host", "m01", "m02", "m03"], Mark(seq - 1)); // the welcome's sender too; before 1.9.1, all 41

        // A marker short of the last message keeps the senders after it (a superset: m05's are not covered yet).
        Copies("m04", "m04", "m04", "m05", "m05");
        Assert.Equal(["m04", "m05"], Mark(seq - 4));
        Assert.Equal(["m04", "m05"], mailbox.State.Conversations["grp~g"].UnreadSenders); // m05's are still unread
        Assert.Equal(["m04", "m05"], Mark(seq - 1)); // within the window: the exact senders
        Assert.True(mailbox.State.Conversations["grp~g"].UnreadSenders.IsEmpty); // read to the end: known, none

        // Kept by a snapshot (and a cold entry, which is one); unknown in one taken before 1.9.1: then every member.
        Copies("m06", "m06", "m06", "m06", "m06", "m06");
        var marks = new MarkReceipts(Owner, "grp~g", null, seq - 1);
        var snapshot = mailbox.State.ToSnapshot();
        var restored = MailboxState.FromSnapshot(Owner, mailbox.State.Limits, snapshot);
        Assert.Equal(["m06"], Assert.IsType<ReceiptDecision.Store>(restored.DecideReceipts(marks, mailbox.Now, _ => null)).Event.Targets.Select(t => t.RecipientId));
        var old = snapshot with { Conversations = [.. snapshot.Conversations.Select(c => c with { UnreadSenders = default })] };
        var fromOld = MailboxState.FromSnapshot(Owner, mailbox.State.Limits, old);
        Assert.Equal(41, Assert.IsType<ReceiptDecision.Store>(fromOld.DecideReceipts(marks, mailbox.Now, _ => null)).Event.Targets.Count());
        // A replay of the journal gives what the live state has.
        var replayed = MailboxState.Empty(Owner, mailbox.State.Limits);
        for (var j = 0; j < mailbox.Journal.Count; j++)
            replayed = replayed.Apply(mailbox.Journal[j], j + 1);
        Assert.Equal(["m06"], replayed.Conversations["grp~g"].UnreadSenders);
        Assert.Equal(["m06"], Mark(seq - 1));

        // A membership change is nobody's unread message: its author (who says nothing) gets no receipt.
        Assert.IsType<DeliveryDecision.Store>(mailbox.GroupCopy("grp~g", seq++, "m39", "", new GroupChange(GroupChange.Added, ["newcomer"])));
        Copies("m07", "m07", "m07", "m07", "m07");
        Assert.Equal(["m07"], Mark(seq - 1));

        // As many distinct senders as are kept: still known; one more: not known, every member.
        Copies([.. members.Take(MailboxState.UnreadSendersKept)]);
        Assert.Equal(MailboxState.UnreadSendersKept, mailbox.State.Conversations["grp~g"].UnreadSenders.Length);
        Copies("m38");
        Assert.True(mailbox.State.Conversations["grp~g"].UnreadSenders.IsDefault);
        Assert.Equal(42, Mark(seq - 1).Count); // the newcomer too

        // Unknown, then read to the end: known again from the next message on.
        Copies("m08", "m08", "m08", "m08", "m08");
        Assert.Equal(["m08"], Mark(seq - 1));
        // Not known in a snapshot from before 1.9.1, but read to the end there: known from the next message on.
        var readOld = mailbox.State.ToSnapshot();
        readOld = readOld with { Conversations = [.. readOld.Conversations.Select(c => c with { UnreadSenders = default })] };
        var state = MailboxState.FromSnapshot(Owner, mailbox.State.Limits, readOld);
        Assert.True(state.Conversations["grp~g"].UnreadSenders.IsDefault);
        var next = new DeliverGroupMessage(Owner, seq, seq - 1,
            new ChatMessage($"{seq}-grp~g", "grp~g", "m09", [], "late", $"grp~g-{seq}", T0 + seq), "G", []);
        state = state.Apply(Assert.IsType<DeliveryDecision.Store>(state.DecideDelivery(next, mailbox.Now)).Event, mailbox.Journal.Count + 1);
        Assert.Equal(["m09"], state.Conversations["grp~g"].UnreadSenders);
    }

    [Fact]
    public void Should_split_pages_of_large_groups_by_bytes_as_well_as_by_entries()
    {
        var members = Enumerable.Range(0, 1_024).Select(i => $"member-number-{i:D5}").ToImmutableArray();
        var receipts = members.Select(m => new ParticipantReceipt(m, new Receipt(5, 4))).ToImmutableArray();
        var entries = Enumerable.Range(0, 12)
            .Select(g => new ColdEntry(new ConversationSnapshot($"grp~big{g}", members, "hello", g, 5, [1, 2, 3], [], ConversationSummary.GroupKind, "Big",
                Receipts: receipts), 5, 0))
            .ToList();
        Assert.InRange(ColdIndex.EstimatedBytes(entries[0]), 40_000, 120_000);
        var pages = ColdIndex.Put(new ColdPage(0, 0, []), entries, _ => false, ColdIndex.MaxDepth);
        Assert.Equal(entries.Count, pages.Sum(p => p.Entries.Length));
        Assert.All(pages, p => Assert.All(p.Entries, e =>
            Assert.Equal(p.Bits, ColdIndex.Digest(e.Conversation.ConversationId) & ((1UL << p.Depth) - 1))));
        Assert.True(pages.Length >= 3, $"{pages.Length} pages");
        Assert.All(pages, p => Assert.True(p.Entries.Length <= ColdIndex.MinPageEntries || p.Entries.Sum(ColdIndex.EstimatedBytes) <= ColdIndex.MaxPageBytes,
            $"a page of {p.Entries.Length} entries, {p.Entries.Sum(ColdIndex.EstimatedBytes)} bytes"));
        // 1:1 entries are small: 64 of them fit in one page.
        var small = Enumerable.Range(0, ColdIndex.MaxPageEntries)
            .Select(i => new ColdEntry(new ConversationSnapshot(Dm($"u{i}"), [Owner, $"u{i}"], new string('x', 100), i, 1, [1], []), 1, 0))
            .ToList();
        Assert.Single(ColdIndex.Put(new ColdPage(0, 0, []), small, _ => false, ColdIndex.MaxDepth));
        // Never deeper than the depth given for bytes: a page of large entries then stays whole.
        Assert.Single(ColdIndex.Put(new ColdPage(0, 0, []), entries, _ => false, 0));
    }

    [Fact]
    public void Should_keep_the_directory_at_most_a_slot_per_four_cold_conversations_with_a_huge_group_among_them()
    {
        (int Slots, long Cold) DirectoryAfter(bool withGroup)
        {
            var mailbox = new Mailbox(new MailboxLimits(MaxConversationsInMemory: 20));
            if (withGroup)
            {
                // 1,024 members with long ids: an entry of ~100 KB estimated, larger than a page may be.
                var members = Enumerable.Range(0, 1_022).Select(i => $"a-member-with-a-rather-long-user-id-number-{i:D6}").ToArray();
                mailbox.JoinGroup("grp~huge", "host", members);
            }
            for (var i = 0; i < 10_000; i++)
                mailbox.Receive($"sender{i}", 1, "hi");
            if (withGroup)
                Assert.Equal("grp~huge", mailbox.Find("grp~huge")!.ConversationId);
            return (mailbox.State.Cold.Directory.Length, mailbox.State.Cold.Count);
        }

        // Its page splits for its bytes only down to about a slot per 8 cold conversations (then it stays large): the
        // directory may grow past what the 1:1 entries alone need, within that bound, not to one slot per entry.
        var without = DirectoryAfter(withGroup: false);
        var with = DirectoryAfter(withGroup: true);
        Assert.True(with.Slots <= Math.Max(without.Slots, with.Cold / 4),
            $"a directory of {with.Slots} slots for {with.Cold} cold with the group, {without.Slots} for {without.Cold} without");
    }

    [Fact]
    public void Should_not_decide_again_a_stale_event_whose_conversation_is_cold()
    {
        var mailbox = new Mailbox(new MailboxLimits(MaxConversationsInMemory: 1));
        mailbox.Receive("bob", 1, "one");
        mailbox.Receive("carol", 1, "one");
        Assert.False(mailbox.State.Conversations.ContainsKey(Dm("bob")));
        var stale = new MessageReceived(new ChatMessage("m", Dm("bob"), "bob", [Owner], "two", "c", T0), 2, T0 + 100, ThreadLinks.None, 2);
        Assert.Null(mailbox.State.ResolveStale(stale, T0 + 100));
        var sent = new MessageSent(new ChatMessage("n", Dm("bob"), Owner, ["bob"], "x", "c9", T0), 2, ThreadLinks.None, 1);
        Assert.Null(mailbox.State.ResolveStale(sent, T0 + 100));
        // Bringing it back is decided again as it was, while it is still cold.
        var page = mailbox.Journal.OfType<ConversationsArchived>().Last(a => a.ConversationIds.Contains(Dm("bob"))).Pages;
        var restored = mailbox.State.Restore(Dm("bob"), page)!;
        Assert.Same(restored, mailbox.State.ResolveStale(restored, T0 + 100));
        Assert.True(mailbox.State.Continues(restored));
        Assert.False(mailbox.State.Apply(restored, 99).Continues(restored)); // once back, not again
    }

    [Fact]
    public void Should_forget_what_delivery_knew_of_a_channel_that_left_memory()
    {
        var state = MailboxState.Empty(Owner, new MailboxLimits());
        var tracker = Delivery.DeliveryTracker.Create(new MailboxSettings()).Confirmation("bob", 3, state, state).Tracker;
        Assert.True(tracker.Confirmed.ContainsKey("bob"));
        Assert.True(tracker.Progress.ContainsKey("bob"));
        var forgotten = tracker.Forget("bob");
        Assert.False(forgotten.Confirmed.ContainsKey("bob"));
        Assert.False(forgotten.Progress.ContainsKey("bob"));
        Assert.Same(forgotten, forgotten.Forget("bob"));
    }

    [Fact]
    public void Should_split_a_full_page_by_the_next_bit_and_point_every_slot_at_its_half()
    {
        var entries = Enumerable.Range(0, ColdIndex.MaxPageEntries + 1)
            .Select(i => new ColdEntry(new ConversationSnapshot(Dm($"u{i}"), [Owner, $"u{i}"], "", i, 1, [1], []), 1, 0))
            .ToList();
        var pages = ColdIndex.Put(new ColdPage(0, 0, [.. entries.Take(ColdIndex.MaxPageEntries)]), [entries[^1]], _ => false, 0);
        Assert.True(pages.Length >= 2);
        Assert.Equal(entries.Count, pages.Sum(p => p.Entries.Length));
        Assert.All(pages, p => Assert.All(p.Entries, e =>
            Assert.Equal(p.Bits, ColdIndex.Digest(e.Conversation.ConversationId) & ((1UL << p.Depth) - 1))));

        var index = ColdIndex.Empty.With(pages, 7, entries.Count);
        Assert.Equal(1 << pages.Max(p => p.Depth), index.Directory.Length);
        Assert.All(entries, e => Assert.Equal(7, index.PageOf(e.Conversation.ConversationId)));
        // A later page of one half points its slots elsewhere; the other half's stay.
        var half = pages[0];
        var next = index.With([half], 9, 0);
        Assert.All(entries, e => Assert.Equal(
            (ColdIndex.Digest(e.Conversation.ConversationId) & ((1UL << half.Depth) - 1)) == half.Bits ? 9 : 7,
            next.PageOf(e.Conversation.ConversationId)));
    }
}
