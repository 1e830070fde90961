using System.Collections.Immutable;
using Messaging.Messages;

namespace Messaging.Actors.Tests;

/// <summary>
/// Anti-spam: one user may open at most <see cref="MailboxLimits.MaxNewConversations"/> conversations (first messages to
/// users they have no conversation with) within <see cref="MailboxLimits.NewConversationWindow"/>. Replies and messages
/// in conversations that exist are never limited, and the limit survives restarts (events and snapshots).
/// </summary>
public sealed class NewConversationLimitSpecs
{
    private const long T0 = 1_764_300_000_000;
    private static readonly MailboxLimits Limits = new(MaxNewConversations: 3) { NewConversationWindow = TimeSpan.FromMinutes(10) };
    private static readonly long Window = (long)Limits.NewConversationWindow.TotalMilliseconds;

    private static SendDecision Decide(MailboxState state, string to, long now, string text = "hi") =>
        state.DecideSend(new SendMessage(state.UserId, [to], text, $"c-{to}-{now}"), now);

    private static MailboxState Apply(MailboxState state, SendDecision decision, ref long journalSeq) =>
        state.Apply(Assert.IsType<SendDecision.Store>(decision).Event, ++journalSeq);

    [Fact]
    public void Should_refuse_a_new_conversation_past_the_limit_until_the_oldest_opening_leaves_the_window()
    {
        var state = MailboxState.Empty("spammer", Limits);
        long j = 0;
        for (var i = 0; i < 3; i++)
            state = Apply(state, Decide(state, $"target{i}", T0 + i * 1_000), ref j);

        var refused = Assert.IsType<SendDecision.Reply>(Decide(state, "target3", T0 + 5_000)).Result;
        Assert.Equal(SendOutcome.RateLimited, refused.Outcome);
        Assert.Equal(Window - 5_000, refused.RetryAfterMs); // when the first opening (at T0) leaves the window
        Assert.Contains("3 new conversations", refused.Detail, StringComparison.Ordinal);

        // Existing conversations are not limited.
        state = Apply(state, Decide(state, "target0", T0 + 6_000), ref j);
        // Once the oldest opening is a window old, one more may be opened, and then the next waits for the second.
        Assert.IsType<SendDecision.Reply>(Decide(state, "target3", T0 + Window - 1));
        state = Apply(state, Decide(state, "target3", T0 + Window), ref j);
        var next = Assert.IsType<SendDecision.Reply>(Decide(state, "target4", T0 + Window + 1)).Result;
        Assert.Equal(1_000 - 1, next.RetryAfterMs);
    }

    [Fact]
    public void Should_never_limit_replying_to_someone_who_wrote_first()
    {
        var state = MailboxState.Empty("popular", Limits);
        for (var i = 0; i < 10; i++)
        {
            var sender = $"fan{i}";
            var message = new ChatMessage(Ids.MessageId(sender, T0 + i), Ids.ConversationFor(sender, "popular"), sender,
                ["popular"], "hello", $"c{i}", T0 + i);
            var store = Assert.IsType<DeliveryDecision.Store>(state.DecideDelivery(new DeliverMessage("popular", 1, message), T0 + i));
            state = state.Apply(store.Event, i + 1);
        }
        long j = 10;
        for (var i = 0; i < 10; i++)
            state = Apply(state, Decide(state, $"fan{i}", T0 + 100 + i), ref j);
        Assert.Empty(state.Openings);
    }

    [Fact]
    public void Should_keep_the_limit_across_a_snapshot_and_a_replay()
    {
        var state = MailboxState.Empty("spammer", Limits);
        long j = 0;
        var events = new List<IMailboxEvent>();
        for (var i = 0; i < 3; i++)
        {
            var decision = Assert.IsType<SendDecision.Store>(Decide(state, $"target{i}", T0 + i));
            events.Add(decision.Event);
            state = state.Apply(decision.Event, ++j);
        }

        var fromSnapshot = MailboxState.FromSnapshot("spammer", Limits, state.ToSnapshot());
        Assert.Equal(SendOutcome.RateLimited, Assert.IsType<SendDecision.Reply>(Decide(fromSnapshot, "target9", T0 + 10)).Result.Outcome);

        var replayed = MailboxState.Empty("spammer", Limits);
        long r = 0;
        foreach (var evt in events)
            replayed = replayed.Apply(evt, ++r);
        Assert.Equal(SendOutcome.RateLimited, Assert.IsType<SendDecision.Reply>(Decide(replayed, "target9", T0 + 10)).Result.Outcome);

        // A snapshot taken before the limit existed has no openings: the limit starts counting from there.
        var old = state.ToSnapshot() with { Openings = [] };
        Assert.IsType<SendDecision.Store>(Decide(MailboxState.FromSnapshot("spammer", Limits, old), "target9", T0 + 10));
    }

    [Fact]
    public void Should_remember_no_more_openings_than_the_limit()
    {
        var state = MailboxState.Empty("busy", Limits);
        long j = 0;
        for (var i = 0; i < 12; i++)
            state = Apply(state, Decide(state, $"target{i}", T0 + i * Window), ref j); // one per window: never refused
        Assert.Equal(3, state.Openings.Count());
        Assert.Equal(T0 + 11 * Window, state.Openings.Last());
    }

    /// <summary>A group's first copy to <paramref name="member"/>, created by <paramref name="creator"/>.</summary>
    private static MailboxState ReceiveCreated(MailboxState state, string creator, string member, string groupId, long now, long journalSeq)
    {
        var members = ImmutableArray.Create(creator, member);
        var message = new ChatMessage(Ids.MessageId(creator, now), groupId, creator, [member], "", $"r-{groupId}", now)
        {
            System = new GroupChange(GroupChange.Created, [member]),
        };
        var copy = new DeliverGroupMessage(state.UserId, 1, 0, message, "a group", members);
        var store = Assert.IsType<DeliveryDecision.Store>(state.DecideDelivery(copy, now));
        return state.Apply(store.Event, journalSeq);
    }

    [Fact]
    public void Should_count_a_group_its_creator_opens_and_not_one_they_are_added_to()
    {
        var state = MailboxState.Empty("creator", Limits);
        long j = 0;
        state = ReceiveCreated(state, "creator", "x", Ids.GroupFor("creator", "1"), T0, ++j);
        state = ReceiveCreated(state, "someone", "creator", Ids.GroupFor("someone", "1"), T0 + 1, ++j);
        Assert.Equal([T0], state.Openings);
        Assert.Equal(0, state.OpeningWaitMs(Ids.GroupFor("creator", "2"), T0 + 2));

        state = ReceiveCreated(state, "creator", "x", Ids.GroupFor("creator", "2"), T0 + 2_000, ++j);
        state = Apply(state, Decide(state, "target", T0 + 3_000), ref j);
        // Two groups and a first message: the limit of 3 is reached, for groups and first messages alike.
        Assert.Equal(Window - 4_000, state.OpeningWaitMs(Ids.GroupFor("creator", "3"), T0 + 4_000));
        Assert.Equal(SendOutcome.RateLimited, Assert.IsType<SendDecision.Reply>(Decide(state, "another", T0 + 4_000)).Result.Outcome);
        // A group it has already opened (a retried creation) costs nothing.
        Assert.Equal(0, state.OpeningWaitMs(Ids.GroupFor("creator", "1"), T0 + 4_000));
    }
}
