using System.Collections.Immutable;
using Messaging.Messages;

namespace Messaging.Actors.Tests;

/// <summary>
/// The channels with people met only in groups (receipts to and from co-members this user has no 1:1 conversation
/// with) are bounded like conversations since 1.10.0: past twice <see cref="MailboxLimits.MaxConversationsInMemory"/>
/// positions in either direction, the least recently needed go cold as entries of their own under the 1:1 id
/// (<see cref="ColdEntry.ChannelOnly"/>), and a receipt, message or marker to or from that person brings them back
/// where they were. Pure: a list of events stands in for the journal, as the actor drives the state.
/// </summary>
public sealed class ColdChannelStateSpecs
{
    private const long T0 = 1_764_300_000_000;
    private const string Owner = "owner";
    private const string Group = "grp~g";

    private sealed class Mailbox(MailboxLimits limits)
    {
        public MailboxState State { get; private set; } = MailboxState.Empty(Owner, limits);

        public List<IMailboxEvent> Journal { get; } = [];

        public long Now { get; set; } = T0;

        /// <summary>The ColdChannels gate.</summary>
        public bool Channels { get; set; } = true;

        /// <summary>The most channels alone memory held once a command's writes were settled.</summary>
        public int MostLone { get; private set; }

        public void Write(IMailboxEvent evt)
        {
            Assert.True(State.Continues(evt), $"{evt.GetType().Name} was not decided on this state");
            Journal.Add(evt);
            State = State.Apply(evt, Journal.Count);
        }

        private ImmutableArray<ColdPage> ReadPage(long journalSeq) =>
            Assert.IsType<ConversationsArchived>(Journal[(int)journalSeq - 1]).Pages;

        private ColdPage? PageFor(string id) =>
            State.Cold.PageOf(id) is var seq and > 0 ? ColdIndex.PageFor(ReadPage(seq), ColdIndex.Digest(id)) : null;

        /// <summary>What the actor does before a command: bring back whatever it needs from cold.</summary>
        public void Before(object command)
        {
            var notCold = new HashSet<string>(StringComparer.Ordinal);
            while (State.ColdNeededFor(command, notCold) is { } cold)
            {
                if (State.Restore(cold, ReadPage(State.Cold.PageOf(cold))) is { } restored)
                    Write(restored);
                else if (!notCold.Add(cold))
                    return;
            }
        }

        /// <summary>What the actor does once a write is durable: conversations over the bound first, then channels alone.</summary>
        public void Settle()
        {
            while (State.PlanArchive() is [var id, ..])
                Write(State.Archive(id, PageFor(id)));
            // Planned down to the bound at once, as the mailbox does.
            foreach (var peer in Channels ? State.PlanChannelArchive(most: int.MaxValue) : [])
            {
                if (State.IsChannelArchivable(peer))
                    Write(State.ArchiveChannel(peer, PageFor(Ids.ConversationFor(Owner, peer))));
            }
            MostLone = Math.Max(MostLone, State.LoneChannels().Count);
        }

        public DeliveryDecision Receipt(string from, long channelSeq, long readUpTo)
        {
            var copy = new DeliverReceipt(Owner, channelSeq, from, Group, new Receipt(readUpTo, readUpTo));
            Before(copy);
            var decision = State.DecideDelivery(copy, Now++);
            if (decision is DeliveryDecision.Store store)
            {
                Write(store.Event);
                Settle();
            }
            return decision;
        }

        public void GroupCopy(long channelSeq, string sender, string text, GroupChange? change = null, ImmutableArray<string> members = default)
        {
            var message = new ChatMessage($"{channelSeq}-g", Group, sender, [], text, $"g-{channelSeq}", T0 + channelSeq, change);
            var copy = new DeliverGroupMessage(Owner, channelSeq, channelSeq - 1, message, "G", members.IsDefault ? [] : members);
            Before(copy);
            Write(Assert.IsType<DeliveryDecision.Store>(State.DecideDelivery(copy, Now++)).Event);
            Settle();
        }

        /// <summary>The owner reads the group to its end: a receipt to each sender of what it covers, each confirmed at once.</summary>
        public ReceiptsMarked ReadGroup()
        {
            var marks = new MarkReceipts(Owner, Group, null, State.Conversations[Group].LastSeq);
            Before(marks);
            var marked = Assert.IsType<ReceiptDecision.Store>(State.DecideReceipts(marks, Now++)).Event;
            Write(marked);
            foreach (var target in marked.Targets)
                Write(new DeliveriesConfirmed(target.RecipientId, target.ChannelSeq));
            Settle();
            return marked;
        }

        /// <summary>A first 1:1 message from <paramref name="sender"/>, number <paramref name="channelSeq"/> on their channel.</summary>
        public DeliveryDecision Direct(string sender, long channelSeq)
        {
            var message = new ChatMessage(Ids.MessageId(sender, Now), Ids.ConversationFor(sender, Owner), sender, [Owner], "hi", $"d-{sender}-{channelSeq}", Now);
            var copy = new DeliverMessage(Owner, channelSeq, message);
            Before(copy);
            var decision = State.DecideDelivery(copy, Now++);
            if (decision is DeliveryDecision.Store store)
            {
                Write(store.Event);
                Settle();
            }
            return decision;
        }

        /// <summary>
        /// Replay after a rejected restore: the marker was decided with <paramref name="peer"/>'s channel brought back,
        /// but the journal holds the marker and not the restore, so replay applies it to the state without it.
        /// </summary>
        public ReceiptsMarked MarkWithoutItsRestore(string peer)
        {
            var marks = new MarkReceipts(Owner, Group, null, State.Conversations[Group].LastSeq);
            var id = Ids.ConversationFor(Owner, peer);
            var restored = State.Restore(id, ReadPage(State.Cold.PageOf(id)))!;
            var live = State.Apply(restored, Journal.Count + 1);
            var marked = Assert.IsType<ReceiptDecision.Store>(live.DecideReceipts(marks, Now++)).Event;
            Write(marked); // Continues: the copy to them is number 1 either way
            foreach (var target in marked.Targets)
                Write(new DeliveriesConfirmed(target.RecipientId, target.ChannelSeq));
            return marked;
        }

        public MessageSent Send(string to, string text)
        {
            var send = new SendMessage(Owner, [to], text, $"c-{to}-{Now}");
            Before(send);
            var sent = (MessageSent)Assert.IsType<SendDecision.Store>(State.DecideSend(send, Now++)).Event;
            Write(sent);
            Write(new DeliveriesConfirmed(to, sent.ChannelSeq));
            Settle();
            return sent;
        }

        /// <summary>A group of <paramref name="members"/> (created by the first) with a message from each after its creation.</summary>
        public void JoinGroup(IReadOnlyList<string> members)
        {
            GroupCopy(1, members[0], "", new GroupChange(GroupChange.Created, [Owner, .. members.Skip(1)]), [Owner, .. members]);
            for (var i = 0; i < members.Count; i++)
                GroupCopy(i + 2, members[i], $"hello from {members[i]}");
        }
    }

    private static string Member(int i) => $"m{i:000}";

    private static string[] Members(int count) => [.. Enumerable.Range(0, count).Select(Member)];

    [Fact]
    public void Should_hold_the_channels_with_people_met_only_in_a_group_within_the_bound_and_bring_each_back_where_it_was()
    {
        var mailbox = new Mailbox(new MailboxLimits(MaxConversationsInMemory: 5));
        var members = Members(40);
        mailbox.JoinGroup(members);
        var marked = mailbox.ReadGroup(); // a receipt to each of the 40: our channel to each at 1
        Assert.Equal(40, marked.Targets.Count());
        Assert.All(marked.Targets, t => Assert.Equal(1, t.ChannelSeq));
        foreach (var member in members)
            Assert.IsType<DeliveryDecision.Store>(mailbox.Receipt(member, 1, 2)); // their channel to us at 1

        // One conversation in memory (the group): once settled, at most twice the bound of positions either way, so
        // at most 10 channels alone; the others went cold, each in its own entry, and no conversation went with them.
        Assert.Equal([Group], mailbox.State.Conversations.Keys);
        Assert.InRange(mailbox.MostLone, 6, 10);
        Assert.InRange(mailbox.State.Inbound.Count, 1, 11);
        Assert.InRange(mailbox.State.Outbound.Count, 0, 10);
        Assert.Equal(0, mailbox.State.Cold.Count);
        Assert.True(mailbox.State.Cold.HasChannels);
        var cold = members.Where(m => !mailbox.State.Inbound.ContainsKey(m)).ToArray();
        Assert.InRange(cold.Length, 30, 39);

        // Their next receipt is stored (its channel came back at 1), a resent one is not stored twice.
        Assert.IsType<DeliveryDecision.Store>(mailbox.Receipt(cold[0], 2, 3));
        Assert.Equal(new DeliveryDecision.AlreadyStored(1), mailbox.Receipt(cold[1], 1, 2));
        Assert.Equal(new DeliveryDecision.OutOfOrder(2), mailbox.Receipt(cold[2], 3, 3));
        // A first 1:1 message to one of them is number 2 on our channel, after the receipt.
        Assert.Equal(2, mailbox.Send(cold[3], "hi").ChannelSeq);
        Assert.True(mailbox.State.Conversations.ContainsKey(Ids.ConversationFor(Owner, cold[3])));

        // The next read of the group: a receipt to each sender of its new messages, on each channel after the last.
        for (var i = 0; i < 12; i++)
            mailbox.GroupCopy(42 + i, cold[i], $"again {i}");
        var again = mailbox.ReadGroup();
        Assert.Equal(cold.Take(12).Order(StringComparer.Ordinal), again.Targets.Select(t => t.RecipientId));
        Assert.All(again.Targets, t => Assert.Equal(t.RecipientId == cold[3] ? 3 : 2, t.ChannelSeq));
        Assert.InRange(mailbox.State.LoneChannels().Count, 0, 10);
    }

    [Fact]
    public void Should_bring_back_the_side_of_a_channel_a_rejected_restore_left_cold()
    {
        // p000 only ever sent the owner receipts: their channel alone went cold with inbound 1, outbound 0.
        var mailbox = new Mailbox(new MailboxLimits(MaxConversationsInMemory: 2));
        var members = Members(12);
        mailbox.JoinGroup(members);
        foreach (var member in members)
            mailbox.Receipt(member, 1, 2);
        var peer = members.First(m => !mailbox.State.Inbound.ContainsKey(m));
        mailbox.GroupCopy(14, peer, "a new message of theirs");
        var marked = mailbox.MarkWithoutItsRestore(peer);
        Assert.Contains(marked.Targets, t => t.RecipientId == peer && t.ChannelSeq == 1);
        Assert.False(mailbox.State.Inbound.ContainsKey(peer)); // one side in memory, the other still in the page

        // Their next receipt finds the rest in the page (the channel in memory does not stop the lookup) and is stored.
        Assert.IsType<DeliveryDecision.Store>(mailbox.Receipt(peer, 2, 14));
        Assert.IsType<DeliveryDecision.Store>(mailbox.Receipt(peer, 3, 14)); // and on from there, in memory or cold again
    }

    [Fact]
    public void Should_bring_back_a_cold_conversation_whose_channel_a_rejected_restore_left_in_memory_never_write_over_it()
    {
        // The owner's 1:1 conversation with m000 went cold (the group is newer), with m000's channel at 1.
        var mailbox = new Mailbox(new MailboxLimits(MaxConversationsInMemory: 1));
        var members = Members(3);
        Assert.IsType<DeliveryDecision.Store>(mailbox.Direct(members[0], 1));
        mailbox.JoinGroup(members);
        var dm = Ids.ConversationFor(Owner, members[0]);
        Assert.False(mailbox.State.Conversations.ContainsKey(dm));
        mailbox.MarkWithoutItsRestore(members[0]);
        Assert.True(mailbox.State.IsChannelArchivable(members[0])); // a channel alone, as memory sees it
        var page = ColdIndex.PageFor(Assert.IsType<ConversationsArchived>(mailbox.Journal[(int)mailbox.State.Cold.PageOf(dm) - 1]).Pages, ColdIndex.Digest(dm));
        Assert.Throws<ArgumentException>(() => mailbox.State.ArchiveChannel(members[0], page));

        // Their next message brings the conversation back and goes on after the first.
        Assert.IsType<DeliveryDecision.Store>(mailbox.Direct(members[0], 2));
        Assert.Equal(2, mailbox.State.Conversations[dm].LastSeq);
        Assert.Equal(2, mailbox.State.Inbound[members[0]]);
        Assert.Equal(1, mailbox.State.Outbound[members[0]].LastSeq); // the receipt the marker numbered 1
    }

    [Fact]
    public void Should_take_out_first_the_channels_no_group_in_memory_lists_then_those_of_the_group_changed_longest_ago()
    {
        var state = MailboxState.Empty(Owner, new MailboxLimits(MaxConversationsInMemory: 2));
        long journal = 0;
        long stamp = T0;
        MailboxState Store(MailboxState s, IMailboxEvent e) => s.Apply(e, ++journal);
        foreach (var (group, members) in new[] { ("grp~old", new[] { "a", "b" }), ("grp~new", new[] { "c", "d" }) })
        {
            var created = new ChatMessage($"1-{group}", group, members[0], [], "", "r", stamp, new GroupChange(GroupChange.Created, [Owner, members[1]]));
            state = Store(state, Assert.IsType<DeliveryDecision.Store>(
                state.DecideDelivery(new DeliverGroupMessage(Owner, 1, 0, created, "G", [Owner, .. members]), stamp++)).Event);
        }
        // Receipts from the four members and from e, who is in no group in memory (left, or in a group gone cold),
        // about a group this mailbox does not hold (they change no group's stamp).
        foreach (var from in new[] { "c", "a", "e", "d", "b" })
        {
            var copy = new DeliverReceipt(Owner, 1, from, "grp~gone", new Receipt(1, 1));
            state = Store(state, Assert.IsType<DeliveryDecision.Store>(state.DecideDelivery(copy, stamp++)).Event);
        }
        // 2 groups and 5 people: 7 positions in, over twice the bound (4); 3 over the bound of 2 alone.
        Assert.True(state.LoneChannelsOver);
        Assert.Equal(["e", "a", "b"], state.PlanChannelArchive());
        Assert.Equal(["e"], state.PlanChannelArchive(most: 1));
        // Brought back lately: after every other, not never.
        Assert.Equal(["a", "b", "c"], state.PlanChannelArchive(later: peer => peer == "e"));
        Assert.Equal(["b", "c", "e"], state.PlanChannelArchive(later: peer => peer is "a" or "e" or "d"));

        // Under the bound (a larger one), nothing is planned.
        Assert.Empty((state with { Limits = new MailboxLimits(MaxConversationsInMemory: 4) }).PlanChannelArchive());
    }

    [Fact]
    public void Should_keep_a_channel_with_copies_pending_in_memory_and_keep_every_channel_while_the_gate_is_closed()
    {
        var mailbox = new Mailbox(new MailboxLimits(MaxConversationsInMemory: 2)) { Channels = false };
        var members = Members(12);
        mailbox.JoinGroup(members);
        var marks = new MarkReceipts(Owner, Group, null, mailbox.State.Conversations[Group].LastSeq);
        var marked = Assert.IsType<ReceiptDecision.Store>(mailbox.State.DecideReceipts(marks, mailbox.Now++)).Event;
        mailbox.Write(marked); // none confirmed yet
        mailbox.Settle();
        Assert.Equal(12, mailbox.State.LoneChannels().Count); // the gate is closed

        mailbox.Channels = true;
        Assert.Empty(mailbox.State.PlanChannelArchive()); // every one has its receipt pending
        foreach (var target in marked.Targets.Take(6))
            mailbox.Write(new DeliveriesConfirmed(target.RecipientId, target.ChannelSeq));
        Assert.Equal(marked.Targets.Take(6).Select(t => t.RecipientId), mailbox.State.PlanChannelArchive().Order(StringComparer.Ordinal));
        Assert.Throws<ArgumentException>(() => mailbox.State.ArchiveChannel(marked.Targets.Last().RecipientId, null));
    }

    [Fact]
    public void Should_replay_and_recover_from_a_snapshot_to_the_same_channels_and_find_a_cold_one_as_no_conversation()
    {
        var mailbox = new Mailbox(new MailboxLimits(MaxConversationsInMemory: 3));
        var members = Members(20);
        mailbox.JoinGroup(members);
        mailbox.ReadGroup();
        foreach (var member in members)
            mailbox.Receipt(member, 1, 2);
        var cold = members.First(m => !mailbox.State.Inbound.ContainsKey(m));
        var dm = Ids.ConversationFor(Owner, cold);

        var replayed = MailboxState.Empty(Owner, mailbox.State.Limits);
        for (var i = 0; i < mailbox.Journal.Count; i++)
            replayed = replayed.Apply(mailbox.Journal[i], i + 1);
        Assert.Equal(mailbox.State.Inbound.OrderBy(e => e.Key, StringComparer.Ordinal), replayed.Inbound.OrderBy(e => e.Key, StringComparer.Ordinal));
        Assert.Equal(mailbox.State.Outbound.Keys.Order(), replayed.Outbound.Keys.Order());
        Assert.Equal(mailbox.State.Cold.Directory, replayed.Cold.Directory);
        Assert.Equal((mailbox.State.Cold.Count, true), (replayed.Cold.Count, replayed.Cold.HasChannels));

        var snapshot = mailbox.State.ToSnapshot();
        Assert.True(snapshot.ColdChannels);
        Assert.DoesNotContain(snapshot.Inbound, i => i.SenderId == cold);
        var recovered = MailboxState.FromSnapshot(Owner, mailbox.State.Limits, snapshot);
        Assert.Equal(mailbox.State.Cold, recovered.Cold);
        Assert.Equal(mailbox.State.LoneChannels().Order(), recovered.LoneChannels().Order());

        // Its page holds the positions alone: no conversation with that person (MayBeCold, so a write looks first).
        Assert.False(mailbox.State.Conversations.ContainsKey(dm));
        Assert.True(mailbox.State.MayBeCold(dm));
        var pages = Assert.IsType<ConversationsArchived>(mailbox.Journal[(int)mailbox.State.Cold.PageOf(dm) - 1]).Pages;
        var entry = mailbox.State.FindCold(dm, pages)!;
        Assert.True(entry.ChannelOnly);
        Assert.Equal((1L, 1L), (entry.InboundSeq, entry.OutboundSeq));

        // Brought back once, then the entry is read no more, and a second restore is not decided on this state.
        var restored = mailbox.State.Restore(dm, pages)!;
        Assert.True(mailbox.State.Continues(restored));
        var back = mailbox.State.Apply(restored, mailbox.Journal.Count + 1);
        Assert.Equal(1, back.Inbound[cold]);
        Assert.Equal(1, back.Outbound[cold].LastSeq);
        Assert.Null(back.FindCold(dm, pages));
        Assert.False(back.Continues(restored));
        Assert.Null(back.ResolveStale(restored, T0 + 10_000));
        Assert.Equal(0, back.Cold.Count);
        // An archive decided before it came back is not decided on the state after it went (its channel is not in memory).
        var archivedAgain = back.ArchiveChannel(cold, null);
        Assert.True(back.Continues(archivedAgain));
        Assert.False(mailbox.State.Continues(archivedAgain));
    }
}
