using System.Diagnostics.Metrics;
using Akka.Actor;
using Akka.Event;
using Akka.Hosting;

namespace Messaging.Actors;

/// <summary>
/// Keeps a node's heap below its limit by passivating its least recently used mailboxes and groups. Every part of a
/// live mailbox is bounded (<see cref="MailboxLimits"/>), but nothing else bounds how many are live: every user active
/// within <see cref="MailboxSettings.PassivateIdleAfter"/> has one. A node that holds more than its heap fits would
/// otherwise run out of memory and lose every mailbox at once (the soak's node did at minute 24, docs/benchmarks.md).
/// <para>
/// Every <see cref="SingleWriterActor{TState,TEvent}"/> enters this node-local registry when it starts and leaves it
/// when it stops, and notes when it last got a message. Once a second the governor reads the heap as the last full
/// garbage collection left it (<see cref="HeapReading"/>, nearly all live): above
/// <see cref="MailboxSettings.HeapHighWater"/> of the memory the runtime may use (the container's limit, or
/// <c>DOTNET_GCHeapHardLimit</c>), it asks the least recently used entities to passivate, as many as would bring the
/// heap to <see cref="MailboxSettings.HeapLowWater"/> (at most a quarter of them per round). It acts once per full
/// collection that began after the last round's victims stopped (what a round freed shows only then), and spares
/// entities that got a request within the last <see cref="MailboxSettings.HeapShedMinIdle"/> (they would only come
/// back). When the heap is above the mark only as the last young collection left it (garbage, perhaps), it starts a
/// background full collection to know, at most every 15 s (every minute while the last full one found it low).
/// A shed is a stop through the shard, as a rebalance's: the entity drains its writes, snapshots if it wrote enough
/// (within the stop's timeout, ahead of idle entities in line), and stops; the next message wakes it from the
/// journal. Nothing is lost, and a user shed while active pays one recovery.
/// </para>
/// </summary>
public sealed class MemoryGovernor : IExtension
{
    private readonly object _lock = new();
    private readonly HashSet<IGoverned> _live = new(ReferenceEqualityComparer.Instance);

    public static MemoryGovernor Get(ActorSystem system) => system.WithExtension<MemoryGovernor, MemoryGovernorProvider>();

    /// <summary>Entities live on this node (mailboxes and groups).</summary>
    public int LiveCount
    {
        get
        {
            lock (_lock)
                return _live.Count;
        }
    }

    internal void Enter(IGoverned entity)
    {
        lock (_lock)
            _live.Add(entity);
    }

    internal void Leave(IGoverned entity)
    {
        lock (_lock)
            _live.Remove(entity);
    }

    private ICancelable? _idleSweep;
    private TimeSpan _idleSweepEvery = TimeSpan.MaxValue;

    /// <summary>
    /// Idle passivation for the node's entities, in place of the shard's (which stops an entity straight away, holding
    /// its messages meanwhile, and so leaves a snapshot only its stop's timeout): every <paramref name="every"/> (half
    /// the shortest idle time, as the shard's own timer did), each entity idle for its own idle time is told
    /// <see cref="GoIdle"/>, and carries it out itself. Started by each entity type's hosting; the shortest interval asked wins.
    /// </summary>
    public void StartIdleSweep(ActorSystem system, TimeSpan every)
    {
        if (every <= TimeSpan.Zero)
            return;
        lock (_lock)
        {
            if (every >= _idleSweepEvery)
                return;
            _idleSweep?.Cancel();
            _idleSweepEvery = every;
            _idleSweep = system.Scheduler.Advanced.ScheduleRepeatedlyCancelable(every, every, SweepIdle);
        }
    }

    /// <summary>Tells each entity idle for its idle time so (it checks again itself: a message may be on its way).</summary>
    private void SweepIdle()
    {
        foreach (var entity in IdleAt(Environment.TickCount64))
            entity.Tell(GoIdle.Instance, ActorRefs.NoSender);
    }

    /// <summary>The live entities that have had no message through their shard for their idle time at <paramref name="now"/>.</summary>
    internal List<IActorRef> IdleAt(long now)
    {
        var idle = new List<IActorRef>();
        lock (_lock)
        {
            foreach (var entity in _live)
            {
                var after = entity.IdleAfterMs;
                if (after > 0 && now - entity.LastTouched >= after)
                    idle.Add(entity.GovernedRef);
            }
        }
        return idle;
    }

    internal bool Contains(IGoverned entity)
    {
        lock (_lock)
            return _live.Contains(entity);
    }

    /// <summary>
    /// Up to <paramref name="count"/> entities that got a message longest ago (none within <paramref name="minIdleMs"/>,
    /// none already asked to passivate), oldest first, marked as asked; and how many were candidates.
    /// </summary>
    internal (IReadOnlyList<IGoverned> Chosen, int Candidates) LeastRecentlyUsed(Func<int, int> count, long now, long minIdleMs)
    {
        List<IGoverned> candidates;
        lock (_lock)
        {
            candidates = new List<IGoverned>(_live.Count);
            foreach (var entity in _live)
            {
                if (!entity.ShedAsked && now - entity.LastActive >= minIdleMs)
                    candidates.Add(entity);
            }
        }
        var lastActive = candidates.Select(e => e.LastActive).ToArray();
        var ordered = candidates.ToArray();
        Array.Sort(lastActive, ordered);
        var chosen = ordered.Take(count(ordered.Length)).ToList();
        foreach (var entity in chosen)
            entity.ShedAsked = true;
        return (chosen, ordered.Length);
    }

    /// <summary>
    /// How many of <paramref name="live"/> entities to passivate: none at or below the high water mark, else the share
    /// of the heap above the low water mark (as if the entities were all of it, which they nearly are on a loaded
    /// node), at least one and at most <paramref name="maxShare"/> of them.
    /// </summary>
    public static int HowManyToShed(HeapReading heap, double highWater, double lowWater, int live, double maxShare)
    {
        if (highWater <= 0 || heap.LimitBytes <= 0 || live == 0 || heap.UsedBytes <= highWater * heap.LimitBytes)
            return 0;
        var excess = (heap.UsedBytes - lowWater * heap.LimitBytes) / heap.UsedBytes;
        var most = Math.Max(1, (int)(live * maxShare));
        return Math.Clamp((int)Math.Ceiling(live * excess), 1, most);
    }
}

/// <summary>An entity the governor may passivate (<see cref="SingleWriterActor{TState,TEvent}"/>).</summary>
internal interface IGoverned
{
    /// <summary>Captured at start: another thread cannot ask an actor for its Self.</summary>
    IActorRef GovernedRef { get; }

    /// <summary><see cref="Environment.TickCount64"/> when it last got a request (not its own timers).</summary>
    long LastActive { get; }

    /// <summary>The governor asked it to passivate: it is not chosen again. The governor's mark, not the actor's state.</summary>
    bool ShedAsked { get; set; }

    /// <summary><see cref="Environment.TickCount64"/> when it last got any message through its shard (not its own timers).</summary>
    long LastTouched { get; }

    /// <summary>Idle this long (ms), it passivates itself (<see cref="GoIdle"/>); 0: never.</summary>
    long IdleAfterMs { get; }
}

/// <summary>
/// Tells a live entity it has had no message through its shard for its idle time: it passivates itself, after a
/// snapshot if it wrote enough (<see cref="SingleWriterActor{TState,TEvent}"/>). Node-local, never crosses the network.
/// </summary>
public sealed class GoIdle : IDeadLetterSuppression
{
    public static readonly GoIdle Instance = new();

    private GoIdle()
    {
    }
}

/// <summary>Asks a live entity to passivate (node-local, never crosses the network; one that stopped meanwhile drops it quietly).</summary>
public sealed class ShedMemory : IDeadLetterSuppression
{
    public static readonly ShedMemory Instance = new();

    private ShedMemory()
    {
    }
}

/// <summary>What the governor reads of the heap.</summary>
/// <param name="UsedBytes">The heap as the last full collection left it, fragmentation left out: what was live then.</param>
/// <param name="CurrentBytes">The heap as the last collection of any generation left it: with whatever garbage the
/// older generations hold, so it only says a full collection may be due.</param>
/// <param name="LimitBytes">What the runtime may use: the container's limit or <c>DOTNET_GCHeapHardLimit</c>, else the machine's memory.</param>
/// <param name="FullIndex">The index (<see cref="GCMemoryInfo.Index"/>) of the last full collection, 0 if none yet.</param>
/// <param name="LatestIndex">The index of the last collection of any generation.</param>
public readonly record struct HeapReading(long UsedBytes, long CurrentBytes, long LimitBytes, long FullIndex, long LatestIndex)
{
    public static HeapReading Now()
    {
        var any = GC.GetGCMemoryInfo(GCKind.Any);
        var blocking = GC.GetGCMemoryInfo(GCKind.FullBlocking);
        var background = GC.GetGCMemoryInfo(GCKind.Background);
        var full = blocking.Index >= background.Index ? blocking : background;
        return new(full.HeapSizeBytes - full.FragmentedBytes, any.HeapSizeBytes, any.TotalAvailableMemoryBytes, full.Index, any.Index);
    }

    /// <summary>A background full collection (the application keeps running), for a reading of what is live.</summary>
    public static void CollectInBackground() => GC.Collect(2, GCCollectionMode.Forced, blocking: false);
}

public sealed class MemoryGovernorProvider : ExtensionIdProvider<MemoryGovernor>
{
    public override MemoryGovernor CreateExtension(ExtendedActorSystem system) => new();
}

/// <summary>
/// The governor's loop: one actor per node (see <see cref="MemoryGovernor"/>). A round asks its victims to passivate,
/// waits until they have left (at most <see cref="MailboxSettings.HeapShedSettle"/>), then starts a full collection
/// and acts again only on a full collection that began after that: never twice on one reading, nor on one that cannot
/// show what the round freed.
/// </summary>
internal sealed class MemoryGovernorActor : ReceiveActor, IWithTimers
{
    private readonly ILoggingAdapter _log = Context.GetLogger();
    private readonly MemoryGovernor _registry;
    private readonly MailboxSettings _settings;
    private readonly Func<HeapReading> _probe;
    private readonly Action _collect;
    // Act only on a full collection with a higher index: one that started after the last round's victims left.
    private long _actAbove = -1;
    // The last round's victims while they stop, and when it began.
    private IReadOnlyList<IGoverned>? _victims;
    private long _roundAt;
    private long? _collectedAt;

    public ITimerScheduler Timers { get; set; } = null!;

    public MemoryGovernorActor(MailboxSettings settings, Func<HeapReading> probe, Action collect)
    {
        _registry = MemoryGovernor.Get(Context.System);
        _settings = settings;
        _probe = probe;
        _collect = collect;
        Receive<Check>(_ => CheckHeap());
    }

    protected override void PreStart() =>
        Timers.StartPeriodicTimer("check", Check.Instance, _settings.HeapCheckInterval);

    private void CheckHeap()
    {
        var heap = _probe();
        var now = Environment.TickCount64;
        if (_victims is { } victims)
        {
            // A passivation drains writes and may take a snapshot first: wait until they are gone (or long enough),
            // then see what is live without them.
            if (now - _roundAt < _settings.HeapShedSettle.TotalMilliseconds && victims.Any(_registry.Contains))
                return;
            _victims = null;
            _actAbove = heap.LatestIndex;
            Collect(now);
            return;
        }
        var high = _settings.HeapHighWater * heap.LimitBytes;
        if (heap.FullIndex > _actAbove && high > 0 && heap.UsedBytes > high)
        {
            _actAbove = heap.FullIndex;
            var (chosen, candidates) = _registry.LeastRecentlyUsed(
                live => MemoryGovernor.HowManyToShed(heap, _settings.HeapHighWater, _settings.HeapLowWater, live, 0.25),
                now, (long)_settings.HeapShedMinIdle.TotalMilliseconds);
            foreach (var victim in chosen)
                victim.GovernedRef.Tell(ShedMemory.Instance);
            _log.Warning("Heap {Used:0} MiB live of {Limit:0} MiB after the last full collection is above the high water " +
                "mark ({High:P0}): passivating the {Count} least recently used of {Candidates} mailboxes and groups idle for " +
                "{MinIdle} s or more ({Live} live)", [heap.UsedBytes / 1048576.0, heap.LimitBytes / 1048576.0,
                _settings.HeapHighWater, chosen.Count, candidates, _settings.HeapShedMinIdle.TotalSeconds, _registry.LiveCount]);
            if (chosen.Count > 0)
            {
                _victims = chosen;
                _roundAt = now;
            }
            return;
        }
        // Above the mark as the last young collection left it (its older generations' garbage counted): a full
        // collection tells what is live. Often while the last full one found the heap near the mark, rarely otherwise
        // (the runtime's own full collections come as the heap grows).
        var every = heap.UsedBytes > _settings.HeapLowWater * heap.LimitBytes
            ? _settings.HeapCollectInterval
            : _settings.HeapCollectInterval * 4;
        if (high > 0 && heap.CurrentBytes > high && (_collectedAt is not { } at || now - at >= every.TotalMilliseconds))
            Collect(now);
    }

    private void Collect(long now)
    {
        _collectedAt = now;
        _collect();
    }

    private sealed class Check
    {
        public static readonly Check Instance = new();
    }
}

public static class MemoryGovernorHosting
{
    /// <summary>
    /// Starts the node's memory governor (<see cref="MemoryGovernor"/>) unless <see cref="MailboxSettings.HeapHighWater"/>
    /// is 0. <paramref name="probe"/> reads the heap and <paramref name="collect"/> starts a full collection
    /// (<see cref="HeapReading.Now"/> and <see cref="HeapReading.CollectInBackground"/> unless a test gives its own).
    /// </summary>
    public static AkkaConfigurationBuilder WithMemoryGovernor(
        this AkkaConfigurationBuilder builder, MailboxSettings settings, Func<HeapReading>? probe = null, Action? collect = null) =>
        settings.HeapHighWater <= 0
            ? builder
            : builder.AddStartup((system, _) => system.ActorOf(FactoryProps.Of(() => new MemoryGovernorActor(
                settings, probe ?? HeapReading.Now, collect ?? HeapReading.CollectInBackground)), "memory-governor"));
}
