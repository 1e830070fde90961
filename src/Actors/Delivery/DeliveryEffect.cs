using System.Collections.Immutable;
using Akka.Actor;
using Messaging.Messages;

namespace Messaging.Actors.Delivery;

/// <summary>What the actor carries out for the <see cref="DeliveryTracker"/>, in the order given.</summary>
public abstract record DeliveryEffect
{
    private DeliveryEffect() { }

    /// <summary>Hand a copy to the recipient's mailbox.</summary>
    public sealed record Send(IChannelCopy Copy) : DeliveryEffect;

    /// <summary>Answer the callers of one send.</summary>
    public sealed record Reply(ImmutableArray<IActorRef> Callers, SendResult Result) : DeliveryEffect;

    /// <summary>Journal how far a recipient has confirmed (a restart then need not resend that far).</summary>
    public sealed record Persist(DeliveriesConfirmed Event) : DeliveryEffect;

    public sealed record StartTimer(DeliveryTimer Timer, TimeSpan InitialDelay, TimeSpan? Period) : DeliveryEffect;

    public sealed record CancelTimer(DeliveryTimer Timer) : DeliveryEffect;

    /// <summary>
    /// Tell the entity's delivery index that it has copies its recipients did not confirm in time (so the index
    /// wakes it if it stops, a node crash included), or that it has none any more.
    /// </summary>
    public sealed record MarkPending(bool Pending) : DeliveryEffect;
}

/// <summary>What an entity that delivers does for <see cref="DeliveryEffects.CarryOut"/> (the entity itself: no delegates per instance).</summary>
public interface IDeliveryHost
{
    /// <summary>Writes an event the way the entity writes.</summary>
    void PersistConfirmed(DeliveriesConfirmed confirmed);

    /// <summary>Tells the entity's delivery index (see <see cref="DeliveryEffect.MarkPending"/>).</summary>
    void MarkPending(bool pending);
}

/// <summary>The one way an entity carries out delivery effects, so every entity that delivers does it alike.</summary>
public static class DeliveryEffects
{
    /// <param name="mailboxes">Where copies go (the mailbox shard region).</param>
    /// <param name="timers">The entity's timers; a timer's message is its <see cref="DeliveryTimer"/>, to hand back
    /// to <see cref="DeliveryTracker.Tick"/>.</param>
    /// <param name="host">The entity: writes confirmations and tells its delivery index.</param>
    public static void CarryOut(ImmutableArray<DeliveryEffect> effects, IActorRef mailboxes, ITimerScheduler timers, IDeliveryHost host)
    {
        foreach (var effect in effects)
        {
            switch (effect)
            {
                case DeliveryEffect.Send send:
                    mailboxes.Tell(send.Copy);
                    break;
                case DeliveryEffect.Reply reply:
                    foreach (var caller in reply.Callers)
                        caller.Tell(reply.Result);
                    break;
                case DeliveryEffect.Persist write:
                    host.PersistConfirmed(write.Event);
                    break;
                case DeliveryEffect.StartTimer { Period: { } period } start:
                    timers.StartPeriodicTimer(start.Timer, start.Timer, start.InitialDelay, period);
                    break;
                case DeliveryEffect.StartTimer start:
                    timers.StartSingleTimer(start.Timer, start.Timer, start.InitialDelay);
                    break;
                case DeliveryEffect.CancelTimer cancel:
                    timers.Cancel(cancel.Timer);
                    break;
                case DeliveryEffect.MarkPending mark:
                    host.MarkPending(mark.Pending);
                    break;
            }
        }
    }
}
