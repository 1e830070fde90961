using System.Collections.Immutable;
using Akka.Actor;
using Messaging.Messages;

namespace Messaging.Actors.Delivery;

/// <summary>The timers the sender side of delivery asks its actor to run.</summary>
public enum DeliveryTimer
{
    /// <summary>Periodic while sends wait for their recipient: answers those past their deadline.</summary>
    DeliveryWait,

    /// <summary>Periodic while any copy is unconfirmed: resends channels that made no progress for an interval.</summary>
    Redelivery,

    /// <summary>Once, after a confirmation that was not journaled at once: journals what is confirmed so far.</summary>
    ConfirmationFlush,
}

/// <summary>A channel as the tracker sees it: the newest copy's number and how far the journal says it is confirmed.</summary>
public readonly record struct ChannelPosition(string RecipientId, long LastSeq, long ConfirmedSeq);

/// <summary>
/// The journaled side of delivery, as an entity that delivers keeps it: a mailbox's outbound channels, or a group's
/// messages not yet confirmed by every member. The <see cref="DeliveryTracker"/> decides over it.
/// </summary>
public interface IOutbox
{
    /// <summary>Whether any copy is still unconfirmed (as journaled).</summary>
    bool HasPending { get; }

    /// <summary>Every channel with a copy still unconfirmed (as journaled).</summary>
    IEnumerable<ChannelPosition> Channels { get; }

    ChannelPosition? Channel(string recipientId);

    /// <summary>The copies to <paramref name="recipientId"/> after <paramref name="afterSeq"/>, oldest first.</summary>
    IEnumerable<IChannelCopy> Unconfirmed(string recipientId, long afterSeq);
}

/// <summary>The tracker after an input, and what to carry out.</summary>
public readonly record struct DeliveryStep(DeliveryTracker Tracker, ImmutableArray<DeliveryEffect> Effects);

/// <summary>
/// The sender side of delivery that is not journaled: who waits for a write or for the recipient's confirmation,
/// how far each recipient has confirmed in memory, when each channel last made progress, which timers run.
/// Pure: every input returns the next tracker and the effects to carry out; time comes from the injected clock.
/// The outbox itself (the copies and their numbers) is journaled state and comes in as an <see cref="IOutbox"/> (a
/// mailbox's or a group's): <c>durable</c> is what the journal has, <c>decided</c> includes writes in flight.
/// A restart loses this tracker on purpose: recovery resends what the journal says is unconfirmed.
/// </summary>
public sealed record DeliveryTracker
{
    private readonly MailboxSettings _settings;

    private DeliveryTracker(MailboxSettings settings) => _settings = settings;

    public static DeliveryTracker Create(MailboxSettings settings) => new(settings);

    /// <summary>Callers of a send whose write is in flight, by its dedup key: a retry joins the first caller.</summary>
    public ImmutableDictionary<string, ImmutableArray<IActorRef>> AwaitingWrite { get; private init; } =
        ImmutableDictionary<string, ImmutableArray<IActorRef>>.Empty;

    /// <summary>Durable sends waiting (up to DeliveryWait) for the recipient's confirmation, oldest first.</summary>
    public ImmutableList<DeliveryWaiter> AwaitingDelivery { get; private init; } = ImmutableList<DeliveryWaiter>.Empty;

    /// <summary>Highest channel seq each recipient has confirmed, known in memory before it is journaled.</summary>
    public SmallMap<long> Confirmed { get; private init; }

    public SmallMap<ChannelProgress> Progress { get; private init; }

    public ImmutableHashSet<DeliveryTimer> Timers { get; private init; } = ImmutableHashSet<DeliveryTimer>.Empty;

    /// <summary>This incarnation told its delivery index it has copies pending (and has not taken that back).</summary>
    public bool MarkedPending { get; private init; }

    private DateTimeOffset Now => _settings.Clock.GetUtcNow();

    public bool IsWriting(string clientMessageId) => AwaitingWrite.ContainsKey(clientMessageId);

    // ---------------- inputs ----------------

    /// <summary>A send's write is on its way to the journal; <paramref name="caller"/> waits for it.</summary>
    public DeliveryTracker Writing(string clientMessageId, IActorRef caller) =>
        this with
        {
            AwaitingWrite = AwaitingWrite.SetItem(clientMessageId,
                AwaitingWrite.TryGetValue(clientMessageId, out var callers) ? callers.Add(caller) : [caller]),
        };

    /// <summary>Recovered from the journal: resend at once whatever is unconfirmed, then every interval.</summary>
    public DeliveryStep Recovered(IOutbox durable)
    {
        if (!durable.HasPending)
            return new(this, []);
        return new(this with { Timers = Timers.Add(DeliveryTimer.Redelivery) },
            [new DeliveryEffect.StartTimer(DeliveryTimer.Redelivery, TimeSpan.Zero, _settings.RedeliveryInterval)]);
    }

    /// <summary>A 1:1 send is durable: its one copy goes to the recipient.</summary>
    public DeliveryStep Sent(MessageSent sent, MailboxState durable, bool stopping) =>
        Sent(sent.Message.ClientMessageId, [new DeliverMessage(sent.Message.RecipientIds[0], sent.ChannelSeq, sent.Message)],
            sent.Message, durable, stopping);

    /// <summary>
    /// A send is durable: hand its <paramref name="copies"/> on (one per recipient, all with the same number), and
    /// answer its callers (waiting under <paramref name="key"/>) when every recipient has confirmed it, or
    /// <c>Accepted</c> after DeliveryWait (at once when the wait is zero or the entity is stopping).
    /// </summary>
    public DeliveryStep Sent(string key, IReadOnlyList<IChannelCopy> copies, ChatMessage message, IOutbox durable, bool stopping)
    {
        var effects = ImmutableArray.CreateBuilder<DeliveryEffect>();
        var next = this with { AwaitingWrite = AwaitingWrite.Remove(key) };
        var callers = AwaitingWrite.GetValueOrDefault(key, []);
        var recipients = ImmutableHashSet.CreateBuilder<string>(StringComparer.Ordinal);
        foreach (var copy in copies)
        {
            next = next.Deliver(copy, durable, effects);
            recipients.Add(copy.RecipientId);
        }
        var waiter = new DeliveryWaiter(recipients.ToImmutable(), copies.Count > 0 ? copies[0].ChannelSeq : 0, message, callers,
            Now + _settings.DeliveryWait);
        if (callers.IsEmpty)
            return new(next, effects.DrainToImmutable());
        if (recipients.Count == 0)
            effects.Add(waiter.Answer(SendOutcome.Sent));
        else if (_settings.DeliveryWait <= TimeSpan.Zero || stopping)
            effects.Add(waiter.Answer(SendOutcome.Accepted));
        else
        {
            next = next with { AwaitingDelivery = next.AwaitingDelivery.Add(waiter) };
            if (!next.Timers.Contains(DeliveryTimer.DeliveryWait))
            {
                var tick = TimeSpan.FromTicks(Math.Max(TimeSpan.TicksPerMillisecond * 10, _settings.DeliveryWait.Ticks / 20));
                next = next with { Timers = next.Timers.Add(DeliveryTimer.DeliveryWait) };
                effects.Add(new DeliveryEffect.StartTimer(DeliveryTimer.DeliveryWait, tick, tick));
            }
        }
        return new(next, effects.DrainToImmutable());
    }

    /// <summary>
    /// A copy nobody waits for (a receipt, or a message stored again after recovery) goes out and is redelivered
    /// like any other.
    /// </summary>
    public DeliveryStep Restored(IChannelCopy copy, IOutbox durable)
    {
        var effects = ImmutableArray.CreateBuilder<DeliveryEffect>();
        var next = Deliver(copy, durable, effects);
        return new(next, effects.DrainToImmutable());
    }

    /// <summary>The recipient has stored every copy up to <c>UpToSeq</c>.</summary>
    public DeliveryStep Confirmation(ConfirmDelivery confirmation, IOutbox durable, IOutbox decided) =>
        Confirmation(confirmation.RecipientId, confirmation.UpToSeq, durable, decided);

    /// <summary><paramref name="recipient"/> has stored every copy up to <paramref name="upTo"/>.</summary>
    public DeliveryStep Confirmation(string recipient, long upTo, IOutbox durable, IOutbox decided)
    {
        if (upTo <= Confirmed.GetValueOrDefault(recipient))
            return new(this, []);
        var effects = ImmutableArray.CreateBuilder<DeliveryEffect>();
        var progress = ProgressOf(recipient) with { Since = Now };
        var next = this with { Confirmed = Confirmed.SetItem(recipient, upTo) };
        next = next with { Progress = next.Progress.SetItem(recipient, progress) };
        // Catching up after a gap: once a resent batch is confirmed, send the next one without waiting for the timer.
        if (progress.ResentUpTo > 0 && upTo >= progress.ResentUpTo)
        {
            next = next with { Progress = next.Progress.SetItem(recipient, progress with { ResentUpTo = 0 }) };
            if (durable.Channel(recipient) is { } channel && channel.LastSeq > upTo)
                next = next.ResendBatch(channel, durable, effects);
        }

        // Every waiter this confirmation covers loses the recipient; one with nobody left is answered Sent.
        var waiters = next.AwaitingDelivery;
        for (var i = 0; i < waiters.Count; i++)
        {
            var waiter = waiters[i];
            if (waiter.ChannelSeq > upTo || !waiter.Recipients.Contains(recipient))
                continue;
            var remaining = waiter.Recipients.Remove(recipient);
            if (remaining.IsEmpty)
            {
                effects.Add(waiter.Answer(SendOutcome.Sent));
                waiters = waiters.RemoveAt(i--);
            }
            else
                waiters = waiters.SetItem(i, waiter with { Recipients = remaining });
        }
        next = next with { AwaitingDelivery = waiters };

        if (decided.Channel(recipient) is { } journaled && upTo - journaled.ConfirmedSeq >= _settings.ConfirmationBatch)
            next = next.PersistConfirmations(decided, effects);
        else if (!next.Timers.Contains(DeliveryTimer.ConfirmationFlush))
        {
            next = next with { Timers = next.Timers.Add(DeliveryTimer.ConfirmationFlush) };
            effects.Add(new DeliveryEffect.StartTimer(DeliveryTimer.ConfirmationFlush, _settings.ConfirmationFlushInterval, null));
        }
        return new(next, effects.DrainToImmutable());
    }

    /// <summary>A timer of this tracker fired.</summary>
    public DeliveryStep Tick(DeliveryTimer timer, IOutbox durable, IOutbox decided)
    {
        var effects = ImmutableArray.CreateBuilder<DeliveryEffect>();
        var next = timer switch
        {
            DeliveryTimer.DeliveryWait => ExpireWaits(effects),
            DeliveryTimer.Redelivery => Redeliver(durable, effects),
            _ => (this with { Timers = Timers.Remove(DeliveryTimer.ConfirmationFlush) }).PersistConfirmations(decided, effects),
        };
        return new(next, effects.DrainToImmutable());
    }

    /// <summary>
    /// The outbox's bound counts copies until their confirmation is journaled, which is batched. A send that would
    /// pass the bound for a recipient that has confirmed more in memory journals those confirmations now (the decided
    /// view drops the copies at once), rather than be refused for a backlog that is already delivered.
    /// </summary>
    public DeliveryStep BeforeSend(SendMessage send, MailboxState decided)
    {
        if (send.RecipientIds.Length != 1
            || !decided.Outbound.TryGetValue(send.RecipientIds[0], out var channel)
            || !channel.IsFullFor(send.Text, decided.Limits))
            return new(this, []);
        return MakeRoom(decided);
    }

    /// <summary>
    /// The outbox is full: journal what recipients confirmed in memory beyond the journal, if anything, so the decided
    /// view drops those copies.
    /// </summary>
    public DeliveryStep MakeRoom(IOutbox decided)
    {
        if (!Confirmed.Any(c => decided.Channel(c.Key) is { } channel && channel.ConfirmedSeq < Math.Min(c.Value, channel.LastSeq)))
            return new(this, []);
        var effects = ImmutableArray.CreateBuilder<DeliveryEffect>();
        var next = PersistConfirmations(decided, effects);
        return new(next, effects.DrainToImmutable());
    }

    /// <summary>
    /// The channel to <paramref name="recipientId"/> left memory with its conversation (every copy confirmed, and that
    /// journaled): what this tracker knew of it goes too, or a mailbox that answers a million people would keep it all.
    /// </summary>
    public DeliveryTracker Forget(string recipientId) =>
        Confirmed.ContainsKey(recipientId) || Progress.ContainsKey(recipientId)
            ? this with { Confirmed = Confirmed.Remove(recipientId), Progress = Progress.Remove(recipientId) }
            : this;

    /// <summary>The mailbox stops or moves: answer everyone waiting for delivery, and journal what is confirmed.</summary>
    public DeliveryStep Stop(IOutbox decided)
    {
        var effects = ImmutableArray.CreateBuilder<DeliveryEffect>();
        foreach (var waiter in AwaitingDelivery)
            effects.Add(waiter.Answer(SendOutcome.Accepted));
        var next = (this with { AwaitingDelivery = [] }).PersistConfirmations(decided, effects);
        // Nobody restarts a stopped entity but a message to it: if a copy of it was lost, its index must.
        if (decided.HasPending)
            next = next.Mark(true, effects);
        return new(next, effects.DrainToImmutable());
    }

    /// <summary>
    /// Woken by the delivery index (the entity may have just started for it): resend what is unconfirmed and keep
    /// resending, or tell the index there is nothing left, which then forgets the entity.
    /// </summary>
    public DeliveryStep Woken(IOutbox durable)
    {
        var effects = ImmutableArray.CreateBuilder<DeliveryEffect>();
        // Confirmed in memory counts: the journal learns of confirmations in batches.
        if (!durable.Channels.Any(channel => channel.LastSeq > ConfirmedSeq(channel)))
            return new(Mark(false, effects), effects.DrainToImmutable());
        var next = WithRedeliveryTimer(effects);
        foreach (var channel in durable.Channels)
        {
            if (channel.LastSeq > next.ConfirmedSeq(channel))
                next = next.ResendBatch(channel, durable, effects);
        }
        return new(next.Mark(true, effects), effects.DrainToImmutable());
    }

    /// <summary>The redelivery timer, started (first tick after an interval) unless it runs already.</summary>
    private DeliveryTracker WithRedeliveryTimer(ImmutableArray<DeliveryEffect>.Builder effects)
    {
        if (Timers.Contains(DeliveryTimer.Redelivery))
            return this;
        effects.Add(new DeliveryEffect.StartTimer(DeliveryTimer.Redelivery, _settings.RedeliveryInterval, _settings.RedeliveryInterval));
        return this with { Timers = Timers.Add(DeliveryTimer.Redelivery) };
    }

    private DeliveryTracker Mark(bool pending, ImmutableArray<DeliveryEffect>.Builder effects)
    {
        effects.Add(new DeliveryEffect.MarkPending(pending));
        return this with { MarkedPending = pending };
    }

    /// <summary>
    /// The journal failed or rejected a write, and the mailbox stops: sends whose write is in flight may not be
    /// stored, so their callers hear <c>Unavailable</c> (a retry is safe); durable sends are <c>Accepted</c>.
    /// </summary>
    public DeliveryStep Failed(string reason)
    {
        var effects = ImmutableArray.CreateBuilder<DeliveryEffect>();
        var failure = SendResult.Failure(SendOutcome.Unavailable, reason);
        foreach (var callers in AwaitingWrite.Values)
            effects.Add(new DeliveryEffect.Reply(callers, failure));
        foreach (var waiter in AwaitingDelivery)
            effects.Add(waiter.Answer(SendOutcome.Accepted));
        return new(this with { AwaitingWrite = AwaitingWrite.Clear(), AwaitingDelivery = [] }, effects.DrainToImmutable());
    }

    // ---------------- rules ----------------

    private DeliveryTracker Deliver(IChannelCopy copy, IOutbox durable, ImmutableArray<DeliveryEffect>.Builder effects)
    {
        effects.Add(new DeliveryEffect.Send(copy));
        var next = this;
        // The redelivery clock of a channel starts when its oldest unconfirmed copy goes out, and restarts only
        // when the recipient makes progress: a steady stream of new sends must not postpone resending a lost copy.
        if (copy.PreviousSeq <= ConfirmedSeq(copy.RecipientId, durable))
            next = next with { Progress = Progress.SetItem(copy.RecipientId, ProgressOf(copy.RecipientId) with { Since = Now }) };
        return next.WithRedeliveryTimer(effects);
    }

    private DeliveryTracker ExpireWaits(ImmutableArray<DeliveryEffect>.Builder effects)
    {
        var now = Now;
        var expired = 0;
        while (expired < AwaitingDelivery.Count && AwaitingDelivery[expired].Deadline <= now)
            effects.Add(AwaitingDelivery[expired++].Answer(SendOutcome.Accepted));
        var next = this with { AwaitingDelivery = AwaitingDelivery.RemoveRange(0, expired) };
        if (!next.AwaitingDelivery.IsEmpty)
            return next;
        effects.Add(new DeliveryEffect.CancelTimer(DeliveryTimer.DeliveryWait));
        return next with { Timers = next.Timers.Remove(DeliveryTimer.DeliveryWait) };
    }

    private DeliveryTracker Redeliver(IOutbox durable, ImmutableArray<DeliveryEffect>.Builder effects)
    {
        var now = Now;
        var next = this;
        var anyPending = false;
        var resent = false;
        foreach (var channel in durable.Channels)
        {
            if (channel.LastSeq <= ConfirmedSeq(channel))
                continue;
            anyPending = true;
            if (now - ProgressOf(channel.RecipientId).Since >= _settings.RedeliveryInterval)
            {
                next = next.ResendBatch(channel, durable, effects);
                resent = true;
            }
        }
        // A recipient that made no progress for an interval: from now on the index keeps this entity awake (every
        // resend says so again, in case the index missed it; it writes only what changes). A healthy channel is
        // confirmed within the interval and never gets here: delivery costs the index nothing.
        if (resent)
            return next.Mark(true, effects);
        if (anyPending)
            return next;
        effects.Add(new DeliveryEffect.CancelTimer(DeliveryTimer.Redelivery));
        next = next with { Timers = next.Timers.Remove(DeliveryTimer.Redelivery) };
        return next.MarkedPending ? next.Mark(false, effects) : next;
    }

    /// <summary>Resend in order from the first unconfirmed copy; the recipient stores only the next one in line.</summary>
    private DeliveryTracker ResendBatch(ChannelPosition channel, IOutbox durable, ImmutableArray<DeliveryEffect>.Builder effects)
    {
        var confirmed = ConfirmedSeq(channel);
        var progress = ProgressOf(channel.RecipientId);
        foreach (var copy in durable.Unconfirmed(channel.RecipientId, confirmed).Take(_settings.ResendBatch))
        {
            effects.Add(new DeliveryEffect.Send(copy));
            progress = progress with { ResentUpTo = copy.ChannelSeq };
        }
        return this with { Progress = Progress.SetItem(channel.RecipientId, progress with { Since = Now }) };
    }

    /// <summary>Journal what recipients confirmed, so a restart does not resend it (a resend would be harmless).</summary>
    private DeliveryTracker PersistConfirmations(IOutbox decided, ImmutableArray<DeliveryEffect>.Builder effects)
    {
        var next = this;
        if (Timers.Contains(DeliveryTimer.ConfirmationFlush))
        {
            effects.Add(new DeliveryEffect.CancelTimer(DeliveryTimer.ConfirmationFlush));
            next = this with { Timers = Timers.Remove(DeliveryTimer.ConfirmationFlush) };
        }
        foreach (var (recipient, upTo) in Confirmed)
        {
            if (decided.Channel(recipient) is { } channel && channel.ConfirmedSeq < Math.Min(upTo, channel.LastSeq))
                effects.Add(new DeliveryEffect.Persist(new DeliveriesConfirmed(recipient, Math.Min(upTo, channel.LastSeq))));
        }
        return next;
    }

    /// <summary>How far a recipient has confirmed: journaled (in <paramref name="durable"/>) or known in memory.</summary>
    private long ConfirmedSeq(string recipientId, IOutbox durable) =>
        durable.Channel(recipientId) is { } channel ? ConfirmedSeq(channel) : Confirmed.GetValueOrDefault(recipientId);

    private long ConfirmedSeq(ChannelPosition channel) =>
        Math.Max(channel.ConfirmedSeq, Confirmed.GetValueOrDefault(channel.RecipientId));

    private ChannelProgress ProgressOf(string recipientId) => Progress.GetValueOrDefault(recipientId);
}

/// <summary>
/// Redelivery progress of one outbound channel: when it last moved (a copy went out first in line, the recipient
/// confirmed, or a batch was resent), and the last copy of the batch resent then, if any.
/// </summary>
public readonly record struct ChannelProgress(DateTimeOffset Since, long ResentUpTo);

/// <summary>
/// A durable send whose callers wait until <see cref="Deadline"/> for the confirmation of every recipient in
/// <see cref="Recipients"/> (those that have not confirmed yet) of copy number <see cref="ChannelSeq"/>.
/// </summary>
public sealed record DeliveryWaiter(
    ImmutableHashSet<string> Recipients, long ChannelSeq, ChatMessage Message, ImmutableArray<IActorRef> Callers, DateTimeOffset Deadline)
{
    public DeliveryEffect.Reply Answer(SendOutcome outcome) =>
        new(Callers, new SendResult(outcome, Message.MessageId, Message.ConversationId, Message.ServerTimestamp, ""));
}
