using Akka.Actor;
using Akka.Configuration;
using Akka.Dispatch;
using Akka.Dispatch.MessageQueues;

namespace Messaging.Actors;

/// <summary>
/// The mailbox type of the mailbox entities: an unbounded deque (what a persistent actor's stash requires) whose
/// queue holds no buffer until a message arrives and gives a grown one back once drained
/// (<see cref="CompactDequeMessageQueue"/>). Akka's default for stashing actors keeps a <c>ConcurrentQueue</c> segment
/// of 32 slots or more per actor (~1.8 KiB, more once recovery's replay grew it) for the actor's life.
/// </summary>
public sealed class CompactMailbox : MailboxType, IProducesMessageQueue<CompactDequeMessageQueue>
{
    /// <summary>The configuration path that names this mailbox type (<see cref="Props.WithMailbox"/>).</summary>
    public const string Id = "messaging.compact-mailbox";

    /// <summary>The HOCON that declares it: added by <see cref="MailboxHosting.WithMailboxShards"/>.</summary>
    public static readonly string Hocon =
        $"{Id} {{ mailbox-type = \"{typeof(CompactMailbox).FullName}, {typeof(CompactMailbox).Assembly.GetName().Name}\" }}";

    public CompactMailbox(Settings settings, Config config) : base(settings, config)
    {
    }

    public override IMessageQueue Create(IActorRef owner, ActorSystem system) => new CompactDequeMessageQueue();
}

/// <summary>
/// A FIFO message queue with <see cref="EnqueueFirst"/> (deque semantics for the stash), for many producers and the
/// one consumer Akka runs at a time: a ring buffer under a lock. It holds no array while it has never had a message,
/// starts at <see cref="MinCapacity"/> slots, doubles when full and, when a dequeue empties it, drops an array that
/// had grown past <see cref="MinCapacity"/> (the next message starts small again). Dequeued slots are cleared, so it
/// keeps no message alive. The lock is uncontended but for a sender racing the actor's own dequeue; Akka's default
/// queue is lock-free, this one trades that for ~120 bytes (itself and 4 slots) instead of ~1.8 KiB per idle actor.
/// </summary>
public sealed class CompactDequeMessageQueue : IMessageQueue, IUnboundedDequeBasedMessageQueueSemantics
{
    /// <summary>Slots of the first array, and of the one a drained queue keeps.</summary>
    public const int MinCapacity = 4;

    private Envelope[]? _items;
    private int _head;
    private volatile int _count;

    /// <summary>The slots currently allocated (0 when the queue holds no array): for tests.</summary>
    internal int Capacity
    {
        get
        {
            lock (this)
                return _items?.Length ?? 0;
        }
    }

    public bool HasMessages => _count > 0;

    public int Count => _count;

    public void Enqueue(IActorRef receiver, Envelope envelope)
    {
        lock (this)
        {
            var items = _items;
            var count = _count;
            if (items is null || count == items.Length)
                items = Grow(count);
            items[(_head + count) % items.Length] = envelope;
            _count = count + 1;
        }
    }

    /// <summary>Puts <paramref name="envelope"/> before every queued message (the stash's unstash, in reverse order).</summary>
    public void EnqueueFirst(Envelope envelope)
    {
        lock (this)
        {
            var items = _items;
            var count = _count;
            if (items is null || count == items.Length)
                items = Grow(count);
            _head = _head == 0 ? items.Length - 1 : _head - 1;
            items[_head] = envelope;
            _count = count + 1;
        }
    }

    public bool TryDequeue(out Envelope envelope)
    {
        if (_count == 0)
        {
            envelope = default;
            return false;
        }
        lock (this)
        {
            var count = _count;
            if (count == 0)
            {
                envelope = default;
                return false;
            }
            var items = _items!;
            envelope = items[_head];
            count--;
            if (count == 0 && items.Length > MinCapacity)
            {
                _items = null;
                _head = 0;
            }
            else
            {
                items[_head] = default;
                _head = _head + 1 == items.Length ? 0 : _head + 1;
            }
            _count = count;
            return true;
        }
    }

    public void CleanUp(IActorRef owner, IMessageQueue deadletters)
    {
        while (TryDequeue(out var envelope))
            deadletters.Enqueue(owner, envelope);
    }

    // Under the lock: a larger array (or the first), the queued messages moved to its start in order.
    private Envelope[] Grow(int count)
    {
        var old = _items;
        var items = new Envelope[old is null ? MinCapacity : old.Length * 2];
        if (old is not null)
        {
            for (var i = 0; i < count; i++)
                items[i] = old[(_head + i) % old.Length];
        }
        _items = items;
        _head = 0;
        return items;
    }
}
