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
/// collection (what a round freed shows only in the next one), and when the heap is above the mark only as the last
/// young collection left it (garbage, perhaps), it starts a background full collection to know, at most every 5 s.
/// A passivation is the ordinary idle one: the entity drains its writes, snapshots if it wrote enough, and stops; the
/// next message wakes it from the journal. Nothing is lost, and a user shed while active pays one recovery.
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

    /// <summary>The <paramref name="count"/> entities that got a message longest ago, oldest first.</summary>
    internal IReadOnlyList<IActorRef> LeastRecentlyUsed(int count)
    {
        (long LastActive, IActorRef Ref)[] all;
        lock (_lock)
        {
            all = new (long, IActorRef)[_live.Count];
            var i = 0;
            foreach (var entity in _live)
                all[i++] = (entity.LastActive, entity.GovernedRef);
        }
        Array.Sort(all, static (a, b) => a.LastActive.CompareTo(b.LastActive));
        return [.. all.Take(count).Select(e => e.Ref)];
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

    /// <summary><see cref="Environment.TickCount64"/> when it last got a message.</summary>
    long LastActive { get; }
}

/// <summary>Asks a live entity to passivate (node-local, never crosses the network).</summary>
public sealed class ShedMemory
{
    public static readonly ShedMemory Instance = new();

    private ShedMemory()
    {
    }
}

/// <summary>What the governor reads of the heap.</summary>
/// <param name="UsedBytes">The heap as the last full collection left it: nearly all of it live.</param>
/// <param name="CurrentBytes">The heap as the last collection of any generation left it: with whatever garbage the
/// older generations hold, so it only says a full collection is due.</param>
/// <param name="LimitBytes">What the runtime may use: the container's limit or <c>DOTNET_GCHeapHardLimit</c>, else the machine's memory.</param>
/// <param name="FullCollections">Full collections so far.</param>
public readonly record struct HeapReading(long UsedBytes, long CurrentBytes, long LimitBytes, int FullCollections)
{
    public static HeapReading Now()
    {
        var any = GC.GetGCMemoryInfo(GCKind.Any);
        var blocking = GC.GetGCMemoryInfo(GCKind.FullBlocking);
        var background = GC.GetGCMemoryInfo(GCKind.Background);
        var full = blocking.Index >= background.Index ? blocking : background;
        return new(full.HeapSizeBytes, any.HeapSizeBytes, any.TotalAvailableMemoryBytes, GC.CollectionCount(2));
    }

    /// <summary>A background full collection (the application keeps running), for a reading of what is live.</summary>
    public static void CollectInBackground() => GC.Collect(2, GCCollectionMode.Forced, blocking: false);
}

public sealed class MemoryGovernorProvider : ExtensionIdProvider<MemoryGovernor>
{
    public override MemoryGovernor CreateExtension(ExtendedActorSystem system) => new();
}

/// <summary>The governor's loop: one actor per node (see <see cref="MemoryGovernor"/>).</summary>
internal sealed class MemoryGovernorActor : ReceiveActor, IWithTimers
{
    private static readonly Counter<long> Shed = MessagingMetrics.Meter.CreateCounter<long>(
        "messaging.mailboxes.shed", unit: "{mailbox}",
        description: "Mailboxes and groups passivated because the heap was above its high water mark");

    private readonly ILoggingAdapter _log = Context.GetLogger();
    private readonly MemoryGovernor _registry;
    private readonly MailboxSettings _settings;
    private readonly Func<HeapReading> _probe;
    private readonly Action _collect;
    // The full collection whose reading the last round acted on: each reading is acted on once.
    private int _actedOn = -1;
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
        var high = _settings.HeapHighWater * heap.LimitBytes;
        var live = _registry.LiveCount;
        // Shed on what the last full collection found live, once per collection: what a round sheds shows only in
        // the next one (entities live in generation 2).
        if (heap.FullCollections != _actedOn &&
            MemoryGovernor.HowManyToShed(heap, _settings.HeapHighWater, _settings.HeapLowWater, live, 0.25) is var count and > 0)
        {
            _actedOn = heap.FullCollections;
            var victims = _registry.LeastRecentlyUsed(count);
            foreach (var victim in victims)
                victim.Tell(ShedMemory.Instance);
            Shed.Add(victims.Count);
            _log.Warning("Heap {Used:0} MiB of {Limit:0} MiB after the last full collection is above the high water mark " +
                "({High:P0}): passivating the {Count} least recently used of {Live} live mailboxes and groups",
                heap.UsedBytes / 1048576.0, heap.LimitBytes / 1048576.0, _settings.HeapHighWater, victims.Count, live);
            return;
        }
        // Above the mark only with garbage, perhaps: a full collection tells (in the background, now and then).
        var now = Environment.TickCount64;
        if (high > 0 && heap.CurrentBytes > high && (_collectedAt is not { } at || now - at >= _settings.HeapCollectInterval.TotalMilliseconds))
        {
            _collectedAt = now;
            _collect();
        }
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
            : builder.AddStartup((system, _) => system.ActorOf(Props.Create(() => new MemoryGovernorActor(
                settings, probe ?? HeapReading.Now, collect ?? HeapReading.CollectInBackground)), "memory-governor"));
}
