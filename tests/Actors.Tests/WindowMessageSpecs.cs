using System.Collections.Immutable;
using Messaging.Messages;
using Messaging.Messages.Tests;

namespace Messaging.Actors.Tests;

/// <summary>
/// A window message is kept compact (<see cref="WindowMessage"/>) and built back on every read, page and snapshot:
/// what comes back must be exactly what was stored, whatever the text and whatever is unusual about the message.
/// </summary>
public sealed class WindowMessageSpecs
{
    private const long T0 = 1_764_300_000_000;
    private static readonly ImmutableArray<string> Direct = ["alice", "bob"];
    private const string DirectId = "dm~alice~bob";
    private static readonly ImmutableArray<string> Members = ["alice", "bob", "carol"];
    private const string GroupId = "grp~g1";

    private static ChatMessage Message(string sender, string text, string clientMessageId = "c-1", ImmutableArray<string>? to = null) =>
        new(Ids.MessageId(sender, T0), DirectId, sender, to ?? [sender == "alice" ? "bob" : "alice"], text, clientMessageId, T0);

    // Not theory data: its serialization would turn a lone surrogate into U+FFFD before the test sees it.
    private static readonly string[] Texts =
    [
        "plain ASCII, forty characters of it ....",
        "héllo wörld, ça va? ñ ß ø",
        "emoji 👋🏽 and a family 👨‍👩‍👧 and flags 🇫🇷",
        "\ud83d\ude00 a surrogate pair written as escapes",
        "a lone high surrogate \ud800 in the middle",
        "a lone low surrogate at the end \udc00",
        "مرحبا بالعالم — שלום — 你好，世界",
        "\0 nul and \u0001 control characters\r\n",
        new string('x', 65_535),
    ];

    [Fact]
    public void Should_give_back_exactly_the_text_and_clientMessageId()
    {
        foreach (var text in Texts)
        foreach (var stored in new[]
        {
            new StoredMessage(7, Message("alice", text, clientMessageId: text), new Tally(3, T0 - 5)),
            new StoredMessage(8, Message("bob", text), new Tally(4, T0)),
        })
        {
            var window = WindowMessage.From(stored, Direct, direct: true);
            DeepEquality.AssertEqual(stored, window.ToStored(DirectId, Direct));
            Assert.Equal(text.Length, window.TextLength);
        }
    }

    [Fact]
    public void Should_give_back_exactly_what_is_unusual()
    {
        var cases = new[]
        {
            // an explicit message id (not sender + stamp), as an event may carry
            new StoredMessage(1, Message("alice", "hi") with { MessageId = "legacy-id-1" }, new Tally(0, 0)),
            // written before v1.1: no tally
            new StoredMessage(2, Message("bob", "no tally"), null),
            // large and negative numbers survive the varints
            new StoredMessage(long.MaxValue, Message("alice", "big") with { ServerTimestamp = long.MaxValue }, new Tally(long.MaxValue, long.MinValue)),
            new StoredMessage(-3, Message("alice", "negative") with { ServerTimestamp = -1 }, new Tally(-1, -2)),
            // recipients that are not the other participant, several, none, default
            new StoredMessage(3, Message("alice", "to carol", to: ["carol"]), new Tally(0, 0)),
            new StoredMessage(4, Message("alice", "to two", to: ["bob", "carol"]), new Tally(0, 0)),
            new StoredMessage(5, Message("alice", "to none", to: []), new Tally(0, 0)),
            new StoredMessage(6, Message("alice", "default") with { RecipientIds = default }, new Tally(0, 0)),
            // a sender who is not a participant
            new StoredMessage(7, Message("mallory", "who?", to: ["bob"]), new Tally(1, T0)),
            // an empty text and an empty clientMessageId
            new StoredMessage(8, Message("bob", "", clientMessageId: ""), new Tally(2, T0)),
        };
        foreach (var stored in cases)
        {
            var window = WindowMessage.From(stored, Direct, direct: true);
            DeepEquality.AssertEqual(stored, window.ToStored(DirectId, Direct));
            Assert.Equal(stored.Seq, window.Seq);
            Assert.Equal(stored.Tally, window.Tally);
            Assert.Equal(stored.Message.SenderId, window.SenderId);
        }
    }

    [Fact]
    public void Should_give_back_group_messages_and_membership_changes()
    {
        var change = new GroupChange(GroupChange.Added, ["carol", "dave"]);
        var cases = new[]
        {
            new StoredMessage(1, new ChatMessage(Ids.MessageId("alice", T0), GroupId, "alice", [], "", "", T0, change), new Tally(0, 0)),
            new StoredMessage(2, new ChatMessage(Ids.MessageId("bob", T0 + 1), GroupId, "bob", [], "hello all 👋", "b-1", T0 + 1), new Tally(1, T0 + 1)),
            // a former member's message: its sender is no longer a participant
            new StoredMessage(3, new ChatMessage(Ids.MessageId("eve", T0 + 2), GroupId, "eve", [], "bye", "e-1", T0 + 2), new Tally(2, T0 + 2)),
        };
        foreach (var stored in cases)
        {
            var window = WindowMessage.From(stored, Members, direct: false);
            DeepEquality.AssertEqual(stored, window.ToStored(GroupId, Members));
            Assert.Equal(stored.Message.System is not null, window.IsSystem);
        }
    }

    [Fact]
    public void Should_keep_a_groups_messages_whole_in_their_bytes_and_a_group_window_so_in_its_snapshot()
    {
        // A group's messages carry the group's ids (Ids.GroupMessageId), as GroupState makes them.
        var said = new StoredMessage(4, new ChatMessage(Ids.GroupMessageId(GroupId, T0 + 3), GroupId, "bob", [], "hello all 👋", "b-2", T0 + 3), new Tally(1, T0 + 3));
        var again = new StoredMessage(5, new ChatMessage(Ids.GroupMessageId(GroupId, T0 + 4), GroupId, "carol", [], "hi", "c-1", T0 + 4), new Tally(2, T0 + 4));
        var added = new StoredMessage(6, new ChatMessage(Ids.GroupMessageId(GroupId, T0 + 5), GroupId, "alice", [], "", "", T0 + 5,
            new GroupChange(GroupChange.Added, ["dave"])), new Tally(2, T0 + 4));
        foreach (var stored in new[] { said, again, added })
        {
            var window = WindowMessage.From(stored, Members, direct: false);
            DeepEquality.AssertEqual(stored, window.ToStored(GroupId, Members));
            Assert.Equal(stored.Message.System is null, window.CompactBytes is not null);
        }

        var conversation = new ConversationState(GroupId, Members, "hi", T0 + 4, 5, [5, 4, 4],
            [WindowMessage.From(said, Members, false), WindowMessage.From(again, Members, false)],
            ConversationSummary.GroupKind, "Family", Tally: new Tally(2, T0 + 4));
        var snapshot = conversation.ToSnapshot();
        Assert.Empty(snapshot.Recent);
        Assert.Equal([1, 2], snapshot.Window!.Senders);
        DeepEquality.AssertEqual(conversation.Recent(), ConversationState.FromSnapshot(snapshot).Recent());
        // With a membership change in it, the window is written as messages.
        var changed = conversation with { LastSeq = 6, Window = conversation.Window.Add(WindowMessage.From(added, Members, false)) };
        Assert.Null(changed.ToSnapshot().Window);
        Assert.Equal(3, changed.ToSnapshot().Recent.Length);
    }

    [Fact]
    public void Should_share_the_conversations_sender_and_keep_the_clientMessageId_as_bytes()
    {
        var sender = new string("alice".ToCharArray());
        var stored = new StoredMessage(9, Message(sender, "shared") with { ClientMessageId = "c-42" }, new Tally(0, 0));
        var back = WindowMessage.From(stored, Direct, direct: true).ToStored(DirectId, Direct);
        DeepEquality.AssertEqual(stored, back);
        Assert.Same(Direct[0], back.Message.SenderId);
        // A lone surrogate cannot travel as UTF-8: kept as the string, and still given back exactly.
        var odd = stored with { Message = stored.Message with { ClientMessageId = "c-\ud800" } };
        DeepEquality.AssertEqual(odd, WindowMessage.From(odd, Direct, direct: true).ToStored(DirectId, Direct));
    }

    /// <summary>Alice sends each text to bob, and bob answers each with the text and " back".</summary>
    private static MailboxState Exchanged(MailboxState state, string[] texts, ref long journalSeq)
    {
        foreach (var (text, i) in texts.Select((t, i) => (t, i)))
        {
            var sent = (SendDecision.Store)state.DecideSend(new SendMessage("alice", ["bob"], text, $"a-{i}"), T0 + i * 10);
            state = state.Apply(sent.Event, ++journalSeq);
            var reply = new ChatMessage(Ids.MessageId("bob", T0 + i * 10 + 5), DirectId, "bob", ["alice"], text + " back", $"b-{i}", T0 + i * 10 + 5);
            var delivered = (DeliveryDecision.Store)state.DecideDelivery(new DeliverMessage("alice", i + 1, reply), T0 + i * 10 + 6);
            state = state.Apply(delivered.Event, ++journalSeq);
        }
        return state;
    }

    [Fact]
    public void Should_survive_a_snapshot_of_the_state_unchanged()
    {
        var limits = new MailboxLimits();
        var state = MailboxState.Empty("alice", limits);
        long journalSeq = 0;
        var texts = new[] { "first", "emoji 👨‍👩‍👧", "lone \ud800 surrogate", "مرحبا", "" + new string('y', 300) };
        state = Exchanged(state, texts, ref journalSeq);
        var snapshot = state.ToSnapshot();
        var recovered = MailboxState.FromSnapshot("alice", limits, snapshot);
        DeepEquality.AssertEqual(snapshot, recovered.ToSnapshot());
        Assert.Equal(state.RecentChars, recovered.RecentChars);
        var page = (ThreadPlan.InMemory)recovered.PlanThread(new GetThread("alice", DirectId, 0, 50, null, null));
        Assert.Equal(texts.SelectMany(t => new[] { t, t + " back" }), page.Page.Messages.Select(m => m.Message.Text));
    }

    private static MailboxState TwoConversations(out long journalSeq)
    {
        var state = MailboxState.Empty("alice", new MailboxLimits());
        journalSeq = 0;
        var texts = new[] { "first", "emoji 👨‍👩‍👧", "héllo wörld", "مرحبا", new string('y', 300) };
        state = Exchanged(state, texts, ref journalSeq);
        // With carol, one message whose text UTF-8 cannot carry (a lone surrogate): that window is kept as messages.
        var odd = (SendDecision.Store)state.DecideSend(new SendMessage("alice", ["carol"], "lone \ud800 surrogate", "c-0"), T0 + 100);
        state = state.Apply(odd.Event, ++journalSeq);
        var plain = (SendDecision.Store)state.DecideSend(new SendMessage("alice", ["carol"], "plain", "c-1"), T0 + 110);
        return state.Apply(plain.Event, ++journalSeq);
    }

    [Fact]
    public void Should_keep_a_window_in_the_snapshot_as_it_is_held_unless_a_message_of_it_cannot_be()
    {
        var state = TwoConversations(out _);

        var snapshot = state.ToSnapshot();

        var bob = snapshot.Conversations.Single(c => c.ConversationId == DirectId);
        Assert.Empty(bob.Recent);
        Assert.Equal(10, bob.Window!.Messages.Length);
        Assert.Equal([0, 1, 0, 1, 0, 1, 0, 1, 0, 1], bob.Window.Senders); // alice, then bob, in turn
        var carol = snapshot.Conversations.Single(c => c.ConversationId == Ids.ConversationFor("alice", "carol"));
        Assert.Null(carol.Window);
        Assert.Equal(["lone \ud800 surrogate", "plain"], carol.Recent.Select(m => m.Message.Text));

        var recovered = MailboxState.FromSnapshot("alice", state.Limits, snapshot);
        DeepEquality.AssertEqual(snapshot, recovered.ToSnapshot());
        Assert.Equal(state.RecentChars, recovered.RecentChars);
        foreach (var id in new[] { DirectId, carol.ConversationId })
        {
            DeepEquality.AssertEqual(
                ((ThreadPlan.InMemory)state.PlanThread(new GetThread("alice", id, 0, 50, null, null))).Page,
                ((ThreadPlan.InMemory)recovered.PlanThread(new GetThread("alice", id, 0, 50, null, null))).Page);
        }
        // The sender is the conversation's own string, as when the window is built from events.
        Assert.Same(recovered.Conversations[DirectId].ParticipantIds[1], recovered.Conversations[DirectId].Window[1].SenderId);
    }

    [Fact]
    public void Should_read_a_window_that_a_release_before_1_7_0_cannot_see_as_one_that_left_memory()
    {
        // A release before 1.7.0 skips the snapshot's window fields (unknown to it): the conversation comes back
        // whole but for its window, as one whose window left memory, and its pages are read from the journal.
        var state = TwoConversations(out var journalSeq);
        var snapshot = state.ToSnapshot();
        var unseen = snapshot with { Conversations = [.. snapshot.Conversations.Select(c => c with { Window = null })] };

        var recovered = MailboxState.FromSnapshot("alice", state.Limits, unseen);

        Assert.Empty(recovered.Conversations[DirectId].Window);
        DeepEquality.AssertEqual(state.Conversations[DirectId].ToSummary("alice"), recovered.Conversations[DirectId].ToSummary("alice"));
        var plan = Assert.IsType<ThreadPlan.FromJournal>(recovered.PlanThread(new GetThread("alice", DirectId, 0, 4, null, null)));
        Assert.Equal((7L, 10L, 10L), (plan.FromSeq, plan.ToSeq, plan.LastSeq));
        // The next message starts the window again.
        var next = (SendDecision.Store)recovered.DecideSend(new SendMessage("alice", ["bob"], "again", "a-9"), T0 + 200);
        recovered = recovered.Apply(next.Event, ++journalSeq);
        var page = Assert.IsType<ThreadPlan.InMemory>(recovered.PlanThread(new GetThread("alice", DirectId, 0, 1, null, null)));
        Assert.Equal(["again"], page.Page.Messages.Select(m => m.Message.Text));
    }

    [Fact]
    public void Should_refuse_a_damaged_window_when_it_recovers()
    {
        var snapshot = TwoConversations(out _).ToSnapshot();
        var bob = snapshot.Conversations.Single(c => c.ConversationId == DirectId);
        var bytes = bob.Window!.Messages[0]; // "first" and "a-0"

        Assert.Throws<InvalidDataException>(() => ConversationState.FromSnapshot(
            bob with { Window = bob.Window with { Messages = bob.Window.Messages.SetItem(0, bytes[..^5]) } }));
        Assert.Throws<InvalidDataException>(() => ConversationState.FromSnapshot(
            bob with { Window = bob.Window with { Messages = bob.Window.Messages.SetItem(0, bytes[..2]) } }));
        Assert.Throws<InvalidDataException>(() => ConversationState.FromSnapshot(
            bob with { Window = bob.Window with { Senders = bob.Window.Senders.SetItem(3, 2) } }));
        // A text length past the end, however large (no sum may wrap). Seq 1, stamp 5, no tally: one byte each, so
        // the text's UTF-8 length is byte 4.
        var plain = WindowMessage.From(new StoredMessage(1, new ChatMessage(Ids.MessageId("alice", 5), DirectId, "alice", ["bob"], "first", "a-0", 5), null),
            Direct, direct: true).CompactBytes!;
        Assert.Equal(10, plain[4]); // zigzag 5
        WindowMessage.FromCompact(plain, Direct, 0, direct: true);
        Assert.Throws<InvalidDataException>(() => WindowMessage.FromCompact(
            [.. plain[..4], 0xFE, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F, .. plain[5..]], Direct, 0, direct: true));
        // "The other participant" as the recipient of a message in a group.
        Assert.Throws<InvalidDataException>(() => WindowMessage.FromCompact(bytes, Members, 0, direct: false));
        // Seqs that do not end at the conversation's last.
        Assert.Throws<InvalidDataException>(() => ConversationState.FromSnapshot(bob with { LastSeq = bob.LastSeq + 1 }));
    }
}
