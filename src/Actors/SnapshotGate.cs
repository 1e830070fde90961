using Akka.Actor;

namespace Messaging.Actors;

/// <summary>
/// The node's turns for snapshots taken on the way out (<see cref="SingleWriterActor{TState,TEvent}"/>: a passivation,
/// a rebalance, the memory governor's shed). Mailboxes that went idle together passivate together: a cohort of 2,500
/// asked for 2,500 snapshots, and their deletions, within a second, which took the journal's connections from the
/// sends for seconds (a soak's send p99 of ~2 s at each such minute, docs/benchmarks.md). At most a limit of them run
/// at once (<see cref="MailboxSettings.MaxPassivationSnapshotsPerNode"/>); the others wait their turn, first come first
/// served, within their stop's snapshot timeout, past which they stop without one (it is only a shortcut for the
/// next wake). It bounds turns, not the store: a holder that gives up at its timeout gives its turn back while its save
/// may still be in the store, so a store that does not answer sees more saves than the limit (the snapshot store's
/// circuit breaker ends each within its call timeout). Stops the node makes (a rebalance, the memory governor's) have
/// a deadline and the shard holds their messages meanwhile: they go ahead of idle entities, which wait as long as the
/// line takes, still serving. One per actor system.
/// </summary>
public sealed class SnapshotGate : IExtension
{
    private readonly object _lock = new();
    private readonly HashSet<IActorRef> _holders = [];
    // In line: stops with a deadline first, then idle entities; each first come first served.
    private readonly LinkedList<IActorRef> _urgent = new();
    private readonly LinkedList<IActorRef> _waiting = new();
    private readonly Dictionary<IActorRef, LinkedListNode<IActorRef>> _queued = [];
    private int _limit = int.MaxValue;

    public static SnapshotGate For(ActorSystem system) => system.WithExtension<SnapshotGate, Provider>();

    /// <summary>Turns taken now.</summary>
    public int Holding
    {
        get
        {
            lock (_lock)
                return _holders.Count;
        }
    }

    /// <summary>Entities waiting for a turn.</summary>
    public int Waiting
    {
        get
        {
            lock (_lock)
                return _urgent.Count + _waiting.Count;
        }
    }

    /// <summary>Whether <paramref name="who"/> holds a turn now (a <see cref="SnapshotTurn"/> it gets may be stale).</summary>
    public bool Holds(IActorRef who)
    {
        lock (_lock)
            return _holders.Contains(who);
    }

    /// <summary>
    /// A turn for <paramref name="who"/> now (true) if fewer than <paramref name="limit"/> are taken and nobody waits;
    /// else it waits in line and gets <see cref="SnapshotTurn"/> when its turn comes: behind the other
    /// <paramref name="urgent"/> ones (a stop with a deadline), or behind everyone (an idle entity). An idle one already
    /// in line that is stopped meanwhile moves up among the urgent. Either way it gives the turn (or its place in line)
    /// back with <see cref="Leave"/>.
    /// </summary>
    public bool Enter(IActorRef who, int limit, bool urgent = false)
    {
        lock (_lock)
        {
            _limit = limit;
            if (_holders.Contains(who))
                return true;
            if (_holders.Count < limit && _urgent.Count == 0 && _waiting.Count == 0)
            {
                _holders.Add(who);
                return true;
            }
            if (_queued.TryGetValue(who, out var node))
            {
                if (urgent && node.List == _waiting)
                {
                    _waiting.Remove(node);
                    _urgent.AddLast(node);
                }
                return false;
            }
            _queued[who] = urgent ? _urgent.AddLast(who) : _waiting.AddLast(who);
            MessagingMetrics.SnapshotLineChanged(1);
            return false;
        }
    }

    /// <summary>Gives back <paramref name="who"/>'s turn or its place in line (nothing if it has neither).</summary>
    public void Leave(IActorRef who)
    {
        List<IActorRef>? granted = null;
        lock (_lock)
        {
            if (_queued.Remove(who, out var node))
            {
                node.List!.Remove(node);
                MessagingMetrics.SnapshotLineChanged(-1);
            }
            if (!_holders.Remove(who))
                return;
            while (_holders.Count < _limit && (_urgent.First ?? _waiting.First) is { } first)
            {
                first.List!.Remove(first);
                _queued.Remove(first.Value);
                MessagingMetrics.SnapshotLineChanged(-1);
                _holders.Add(first.Value);
                (granted ??= []).Add(first.Value);
            }
        }
        // Outside the lock: a tell to a local actor runs no code of the receiver, but it need not hold the gate.
        if (granted is not null)
        {
            foreach (var next in granted)
                next.Tell(SnapshotTurn.Instance, ActorRefs.NoSender);
        }
    }

    private sealed class Provider : ExtensionIdProvider<SnapshotGate>
    {
        public override SnapshotGate CreateExtension(ExtendedActorSystem system) => new();
    }
}

/// <summary>An entity's turn to take its snapshot before it stops (<see cref="SnapshotGate"/>).</summary>
public sealed class SnapshotTurn : Akka.Event.IDeadLetterSuppression
{
    public static readonly SnapshotTurn Instance = new();

    private SnapshotTurn()
    {
    }
}
