using System.Collections.Immutable;
using Akka.Actor;
using Messaging.Actors.Delivery;
using Messaging.Messages;
using Microsoft.Extensions.Time.Testing;

namespace Messaging.Actors.Tests;

/// <summary>
/// The sender side of delivery as pure state: every rule on a fake clock, no actor system, no waiting.
/// <see cref="Sender"/> plays the actor: it keeps the journaled state the way <see cref="MailboxActor"/> does (each
/// write durable at once) and records the effects of every step.
/// </summary>
public sealed class DeliveryTrackerSpecs
{
    private static readonly TimeSpan Interval = TimeSpan.FromSeconds(1);

    [Fact]
    public void Should_hand_each_copy_on_once_and_resend_unconfirmed_copies_in_order_only_after_an_interval()
    {
        var alice = new Sender();
        for (var i = 1; i <= 3; i++)
            Assert.Equal([("bob", (long)i)], Copies(alice.Send("bob", $"m{i}")));

        alice.Clock.Advance(Interval - TimeSpan.FromMilliseconds(1));
        Assert.Empty(Copies(alice.Tick(DeliveryTimer.Redelivery)));
        alice.Clock.Advance(TimeSpan.FromMilliseconds(1));
        Assert.Equal([("bob", 1L), ("bob", 2L), ("bob", 3L)], Copies(alice.Tick(DeliveryTimer.Redelivery)));
        // The resend restarts the channel's clock: the next tick within the interval resends nothing.
        alice.Clock.Advance(Interval / 2);
        Assert.Empty(Copies(alice.Tick(DeliveryTimer.Redelivery)));
    }

    private static IEnumerable<bool> Marks(IEnumerable<DeliveryEffect> effects) =>
        effects.OfType<DeliveryEffect.MarkPending>().Select(m => m.Pending);

    [Fact]
    public void Should_never_tell_the_delivery_index_about_a_channel_its_recipient_confirms_in_time()
    {
        var alice = new Sender();
        var effects = new List<DeliveryEffect>();
        for (var i = 1; i <= 20; i++)
        {
            effects.AddRange(alice.Send("bob", $"m{i}").Effects);
            alice.Clock.Advance(Interval / 2);
            effects.AddRange(alice.Tick(DeliveryTimer.Redelivery));
            effects.AddRange(alice.Confirm("bob", i));
        }
        alice.Clock.Advance(Interval * 2);
        effects.AddRange(alice.Tick(DeliveryTimer.Redelivery));

        Assert.Empty(Marks(effects)); // the index is written only for recipients in trouble
        Assert.False(alice.Tracker.MarkedPending);
    }

    [Fact]
    public void Should_mark_pending_when_a_recipient_makes_no_progress_and_clear_it_once_everything_is_confirmed()
    {
        var alice = new Sender();
        alice.Send("bob", "m1");
        alice.Clock.Advance(Interval);

        Assert.Equal([true], Marks(alice.Tick(DeliveryTimer.Redelivery))); // resent: the index keeps alice awake
        alice.Clock.Advance(Interval);
        Assert.Equal([true], Marks(alice.Tick(DeliveryTimer.Redelivery))); // said again with every resend
        Assert.Empty(Marks(alice.Confirm("bob", 1)));
        Assert.Equal([false], Marks(alice.Tick(DeliveryTimer.Redelivery))); // nothing left: the index lets go
        Assert.False(alice.Tracker.MarkedPending);
    }

    [Fact]
    public void Should_mark_pending_when_stopping_with_copies_unconfirmed_and_answer_a_wake_with_what_is_left()
    {
        var alice = new Sender();
        alice.Send("bob", "m1");
        Assert.Equal([true], Marks(alice.Stop())); // a lost copy would otherwise wait for alice's next send

        var woken = alice.Woken();
        Assert.Equal([("bob", 1L)], Copies(woken));
        Assert.Equal([true], Marks(woken));
        alice.Confirm("bob", 1);
        Assert.Equal([false], Marks(alice.Woken())); // an index that woke an entity with nothing pending forgets it
    }

    [Fact]
    public void Should_answer_Sent_on_confirmation_and_then_resend_nothing_and_stop_the_redelivery_timer()
    {
        var alice = new Sender();
        var callers = Enumerable.Range(1, 3).Select(i => alice.Send("bob", $"m{i}").Caller).ToList();

        var confirmed = alice.Confirm("bob", 3);

        Assert.Equal(callers.Select(c => (c, SendOutcome.Sent)), Answers(confirmed));
        alice.Clock.Advance(Interval * 5);
        var tick = alice.Tick(DeliveryTimer.Redelivery);
        Assert.Empty(Copies(tick));
        Assert.Contains(new DeliveryEffect.CancelTimer(DeliveryTimer.Redelivery), tick);
        Assert.DoesNotContain(DeliveryTimer.Redelivery, alice.Tracker.Timers);
    }

    [Fact]
    public void Should_answer_only_the_sends_a_confirmation_covers()
    {
        var alice = new Sender();
        var first = alice.Send("bob", "m1").Caller;
        var second = alice.Send("bob", "m2").Caller;
        var toCarol = alice.Send("carol", "m3").Caller;

        Assert.Equal([(first, SendOutcome.Sent)], Answers(alice.Confirm("bob", 1)));
        Assert.Equal([(toCarol, SendOutcome.Sent)], Answers(alice.Confirm("carol", 1)));
        Assert.Equal([(second, SendOutcome.Sent)], Answers(alice.Confirm("bob", 2)));
    }

    [Fact]
    public void Should_resend_a_lost_copy_on_time_while_new_sends_keep_coming()
    {
        var alice = new Sender();
        alice.Send("bob", "lost"); // copy 1 never confirmed
        var resentAt = TimeSpan.Zero;
        for (var i = 2; resentAt == TimeSpan.Zero && i < 100; i++)
        {
            alice.Clock.Advance(TimeSpan.FromMilliseconds(50)); // a new send every 50 ms, far inside the interval
            alice.Send("bob", $"m{i}");
            if (Copies(alice.Tick(DeliveryTimer.Redelivery)) is [("bob", 1), ..] resent)
            {
                resentAt = TimeSpan.FromMilliseconds(50 * (i - 1));
                Assert.Equal(Enumerable.Range(1, i).Select(s => ("bob", (long)s)), resent); // in order from 1
            }
        }
        Assert.Equal(Interval, resentAt);
    }

    [Fact]
    public void Should_answer_Accepted_at_the_delivery_deadline_and_not_before()
    {
        var alice = new Sender(new MailboxSettings { DeliveryWait = TimeSpan.FromSeconds(2) });
        var (start, caller) = alice.Send("bob", "hi");
        var timer = Assert.Single(start.OfType<DeliveryEffect.StartTimer>(), t => t.Timer == DeliveryTimer.DeliveryWait);
        Assert.Equal(TimeSpan.FromMilliseconds(100), timer.Period); // a twentieth of the wait

        alice.Clock.Advance(TimeSpan.FromMilliseconds(1999));
        Assert.Empty(Answers(alice.Tick(DeliveryTimer.DeliveryWait)));
        alice.Clock.Advance(TimeSpan.FromMilliseconds(1));
        var expired = alice.Tick(DeliveryTimer.DeliveryWait);

        Assert.Equal([(caller, SendOutcome.Accepted)], Answers(expired));
        Assert.Contains(new DeliveryEffect.CancelTimer(DeliveryTimer.DeliveryWait), expired);
        Assert.Empty(Answers(alice.Confirm("bob", 1))); // answered once only
    }

    [Fact]
    public void Should_run_one_delivery_wait_timer_for_many_waiting_sends_and_expire_them_oldest_first()
    {
        var alice = new Sender(new MailboxSettings { DeliveryWait = TimeSpan.FromSeconds(2) });
        var starts = new List<DeliveryEffect>();
        var callers = new List<IActorRef>();
        for (var i = 0; i < 4; i++)
        {
            var (effects, caller) = alice.Send("bob", $"m{i}");
            starts.AddRange(effects.OfType<DeliveryEffect.StartTimer>().Where(t => t.Timer == DeliveryTimer.DeliveryWait));
            callers.Add(caller);
            alice.Clock.Advance(TimeSpan.FromSeconds(1));
        }
        Assert.Single(starts);

        // Now 4 s after the first send (sent at 0, 1, 2 and 3 s, each waiting 2 s): three are due, the last is not.
        Assert.Equal(callers.Take(3).Select(c => (c, SendOutcome.Accepted)), Answers(alice.Tick(DeliveryTimer.DeliveryWait)));
        Assert.Equal([(callers[3], SendOutcome.Sent)], Answers(alice.Confirm("bob", 4)));
    }

    [Fact]
    public void Should_answer_Accepted_at_once_when_there_is_no_delivery_wait_or_the_mailbox_is_stopping()
    {
        var noWait = new Sender(new MailboxSettings { DeliveryWait = TimeSpan.Zero });
        var (effects, caller) = noWait.Send("bob", "hi");
        Assert.Equal([(caller, SendOutcome.Accepted)], Answers(effects));
        Assert.DoesNotContain(DeliveryTimer.DeliveryWait, noWait.Tracker.Timers);

        var stopping = new Sender();
        var (late, lateCaller) = stopping.Send("bob", "hi", stopping: true);
        Assert.Equal([(lateCaller, SendOutcome.Accepted)], Answers(late));
        Assert.Equal([("bob", 1L)], Copies(late)); // handed on all the same
    }

    [Fact]
    public void Should_answer_a_retry_that_arrived_during_the_write_with_the_first_writes_answer()
    {
        var alice = new Sender();
        var retry = new Caller("retry");
        var (_, first) = alice.Send("bob", "hi", beforeDurable: tracker =>
        {
            Assert.True(tracker.IsWriting("c1"));
            return tracker.Writing("c1", retry);
        });

        Assert.False(alice.Tracker.IsWriting("c1"));
        Assert.Equal([(first, SendOutcome.Sent), (retry, SendOutcome.Sent)], Answers(alice.Confirm("bob", 1)));
    }

    [Fact]
    public void Should_ignore_a_confirmation_that_confirms_nothing_new()
    {
        var alice = new Sender();
        alice.Send("bob", "m1");
        alice.Send("bob", "m2");
        alice.Confirm("bob", 2);

        Assert.Empty(alice.Confirm("bob", 1));
        Assert.Empty(alice.Confirm("bob", 2));
    }

    [Fact]
    public void Should_journal_confirmations_in_batches_or_after_the_flush_interval()
    {
        var alice = new Sender(new MailboxSettings { ConfirmationBatch = 3, ConfirmationFlushInterval = TimeSpan.FromSeconds(30) });
        for (var i = 1; i <= 5; i++)
            alice.Send("bob", $"m{i}");

        var first = alice.Confirm("bob", 1); // below the batch: remembered, and a flush is due in 30 s
        Assert.Empty(Persisted(first));
        Assert.Contains(new DeliveryEffect.StartTimer(DeliveryTimer.ConfirmationFlush, TimeSpan.FromSeconds(30), null), first);
        var second = alice.Confirm("bob", 2); // still below: the flush already due covers it
        Assert.Empty(Persisted(second));
        Assert.DoesNotContain(second, e => e is DeliveryEffect.StartTimer);

        var batch = alice.Confirm("bob", 3); // 3 past the journaled 0: a batch
        Assert.Equal([new DeliveriesConfirmed("bob", 3)], Persisted(batch));
        Assert.Contains(new DeliveryEffect.CancelTimer(DeliveryTimer.ConfirmationFlush), batch);

        var fourth = alice.Confirm("bob", 4); // one past the journaled 3
        Assert.Empty(Persisted(fourth));
        Assert.Contains(fourth, e => e is DeliveryEffect.StartTimer { Timer: DeliveryTimer.ConfirmationFlush });
        Assert.Equal([new DeliveriesConfirmed("bob", 4)], Persisted(alice.Tick(DeliveryTimer.ConfirmationFlush)));
        Assert.DoesNotContain(DeliveryTimer.ConfirmationFlush, alice.Tracker.Timers);
    }

    [Fact]
    public void Should_answer_the_waiting_sends_Accepted_and_journal_confirmations_when_the_mailbox_stops()
    {
        var alice = new Sender();
        var confirmedOne = alice.Send("bob", "m1").Caller;
        var waiting = alice.Send("bob", "m2").Caller;
        Assert.Equal([(confirmedOne, SendOutcome.Sent)], Answers(alice.Confirm("bob", 1)));

        var stop = alice.Stop();

        Assert.Equal([(waiting, SendOutcome.Accepted)], Answers(stop));
        Assert.Equal([new DeliveriesConfirmed("bob", 1)], Persisted(stop));
        Assert.Empty(alice.Tracker.AwaitingDelivery);
    }

    [Fact]
    public void Should_answer_Unavailable_to_sends_not_yet_durable_and_Accepted_to_durable_ones_when_the_journal_fails()
    {
        var alice = new Sender();
        var durable = alice.Send("bob", "m1").Caller;
        var inFlight = new Caller("in-flight");
        alice.Tracker = alice.Tracker.Writing("c-next", inFlight);

        var failed = alice.Tracker.Failed("the journal did not take the write: boom");

        var answers = failed.Effects.OfType<DeliveryEffect.Reply>()
            .SelectMany(r => r.Callers.Select(c => (c, r.Result.Outcome, r.Result.Detail))).ToList();
        Assert.Equal([(inFlight, SendOutcome.Unavailable, "the journal did not take the write: boom"),
            (durable, SendOutcome.Accepted, "")], answers);
        Assert.Empty(failed.Tracker.AwaitingWrite);
        Assert.Empty(failed.Tracker.AwaitingDelivery);
    }

    [Fact]
    public void Should_catch_up_after_a_gap_in_batches_each_sent_as_soon_as_the_last_is_confirmed()
    {
        var alice = new Sender(new MailboxSettings { ResendBatch = 2, ConfirmationBatch = 1000 });
        for (var i = 1; i <= 5; i++)
            alice.Send("bob", $"m{i}");
        alice.Clock.Advance(Interval);

        Assert.Equal([("bob", 1L), ("bob", 2L)], Copies(alice.Tick(DeliveryTimer.Redelivery)));
        Assert.Empty(Copies(alice.Confirm("bob", 1))); // the batch is not confirmed yet
        Assert.Equal([("bob", 3L), ("bob", 4L)], Copies(alice.Confirm("bob", 2)));
        Assert.Equal([("bob", 5L)], Copies(alice.Confirm("bob", 4)));
        Assert.Empty(Copies(alice.Confirm("bob", 5)));
    }

    [Fact]
    public void Should_resend_at_once_after_recovery_only_when_copies_are_unconfirmed()
    {
        var alice = new Sender();
        Assert.Empty(alice.Tracker.Recovered(alice.Durable).Effects);

        alice.Send("bob", "m1");
        var restarted = DeliveryTracker.Create(alice.Settings).Recovered(alice.Durable);

        Assert.Equal([new DeliveryEffect.StartTimer(DeliveryTimer.Redelivery, TimeSpan.Zero, Interval)], restarted.Effects);
        var tick = restarted.Tracker.Tick(DeliveryTimer.Redelivery, alice.Durable, alice.Durable);
        Assert.Equal([("bob", 1L)], Copies(tick.Effects));
    }

    [Fact]
    public void Should_journal_confirmations_held_in_memory_before_a_send_that_would_pass_the_outbox_bound()
    {
        var limits = new MailboxLimits(MaxPendingPerRecipient: 2);
        var alice = new Sender(new MailboxSettings { Limits = limits });
        alice.Send("bob", "m1");
        alice.Send("bob", "m2");
        alice.Confirm("bob", 2); // in memory only: the journaled outbox is still full

        var before = alice.Tracker.BeforeSend(new SendMessage("alice", ["bob"], "m3", "c3"), alice.Durable);
        Assert.Equal([new DeliveriesConfirmed("bob", 2)], Persisted(before.Effects));

        var roomLeft = new Sender(new MailboxSettings { Limits = limits });
        roomLeft.Send("bob", "m1");
        roomLeft.Confirm("bob", 1);
        Assert.Empty(roomLeft.Tracker.BeforeSend(new SendMessage("alice", ["bob"], "m2", "c2"), roomLeft.Durable).Effects);
    }

    private static List<(string, long)> Copies(IEnumerable<DeliveryEffect> effects) =>
        effects.OfType<DeliveryEffect.Send>().Select(s => (s.Copy.RecipientId, s.Copy.ChannelSeq)).ToList();

    private static List<(string, long)> Copies((ImmutableArray<DeliveryEffect> Effects, IActorRef _) send) => Copies(send.Effects);

    private static List<(IActorRef, SendOutcome)> Answers(IEnumerable<DeliveryEffect> effects) =>
        effects.OfType<DeliveryEffect.Reply>().SelectMany(r => r.Callers.Select(c => (c, r.Result.Outcome))).ToList();

    private static List<DeliveriesConfirmed> Persisted(IEnumerable<DeliveryEffect> effects) =>
        effects.OfType<DeliveryEffect.Persist>().Select(p => p.Event).ToList();

    /// <summary>Alice's mailbox as the actor keeps it, with every write durable at once.</summary>
    private sealed class Sender
    {
        private long _journalSeq;
        private int _sends;

        public Sender(MailboxSettings? settings = null)
        {
            Settings = (settings ?? new MailboxSettings()) with { Clock = Clock, RedeliveryInterval = Interval };
            Durable = MailboxState.Empty("alice", Settings.Limits);
            Tracker = DeliveryTracker.Create(Settings);
        }

        public FakeTimeProvider Clock { get; } = new(DateTimeOffset.Parse("2026-11-30T12:00:00Z"));
        public MailboxSettings Settings { get; }
        public MailboxState Durable { get; private set; }
        public DeliveryTracker Tracker { get; set; }

        public (ImmutableArray<DeliveryEffect> Effects, IActorRef Caller) Send(
            string to, string text, bool stopping = false, Func<DeliveryTracker, DeliveryTracker>? beforeDurable = null)
        {
            var clientId = $"c{++_sends}";
            var caller = new Caller($"caller-{clientId}");
            var cmd = new SendMessage("alice", [to], text, clientId);
            var decision = Assert.IsType<SendDecision.Store>(Durable.DecideSend(cmd, Clock.GetUtcNow().ToUnixTimeMilliseconds()));
            Tracker = Tracker.Writing(clientId, caller);
            Tracker = beforeDurable?.Invoke(Tracker) ?? Tracker;
            Durable = Durable.Apply(decision.Event, ++_journalSeq);
            return (Run(Tracker.Sent(decision.Event, Durable, stopping)), caller);
        }

        public ImmutableArray<DeliveryEffect> Confirm(string recipient, long upTo) =>
            Run(Tracker.Confirmation(new ConfirmDelivery("alice", recipient, upTo), Durable, Durable));

        public ImmutableArray<DeliveryEffect> Tick(DeliveryTimer timer) => Run(Tracker.Tick(timer, Durable, Durable));

        public ImmutableArray<DeliveryEffect> Stop() => Run(Tracker.Stop(Durable));

        public ImmutableArray<DeliveryEffect> Woken() => Run(Tracker.Woken(Durable));

        /// <summary>Take the step, and journal what it persists.</summary>
        private ImmutableArray<DeliveryEffect> Run(DeliveryStep step)
        {
            Tracker = step.Tracker;
            foreach (var persist in step.Effects.OfType<DeliveryEffect.Persist>())
                Durable = Durable.Apply(persist.Event, ++_journalSeq);
            return step.Effects;
        }
    }

    /// <summary>A caller to answer; only its identity matters here.</summary>
    private sealed class Caller(string name) : MinimalActorRef
    {
        public override ActorPath Path { get; } = new RootActorPath(new Address("akka", "specs")) / name;
        public override IActorRefProvider Provider => throw new NotSupportedException();
    }
}
