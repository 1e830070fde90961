using System.Diagnostics;
using Akka.Actor;
using Akka.Configuration;
using Akka.Event;
using Akka.Hosting;

namespace Messaging.Actors;

/// <summary>
/// A node that did not run for a while (SIGSTOP, a frozen VM or container, a stall, a debugger) cannot tell whether
/// the majority downed it meanwhile and started its mailboxes elsewhere. If it did, the incarnations this node still
/// holds are not the only writers any more, and a mailbox the shard starts here again (for a message that arrived
/// during its passivation, before the node hears it was downed) would claim the journal and write beside the
/// majority's incarnation, whose cache then misses acknowledged messages. The journal's fence keeps the journal in
/// order whatever happens; this guard keeps a paused node from writing or serving at all.
/// <para>
/// A watchdog thread ticks every <c>limit / 20</c>. A gap between ticks longer than the limit means the node was
/// paused: from then on every write is refused and the node leaves the cluster (CoordinatedShutdown, so the process
/// exits and its orchestrator starts it again). A write checks the last tick too, so a write decided in the instant
/// after a resume, before the watchdog has woken up, is refused as well. The limit is set below the shortest time in
/// which the majority can take a node's mailboxes over, so a pause the guard lets pass is one no takeover fits in.
/// </para>
/// Off unless configured (<c>messaging.pause-guard.limit</c>): one node on an embedded journal has nobody to
/// take its mailboxes over.
/// </summary>
public sealed class PauseGuard : IExtension
{
    public const string LimitKey = "messaging.pause-guard.limit";

    private readonly ActorSystem _system;
    private readonly Func<long> _clock;
    private readonly Action _onTripped;
    private readonly object _start = new();
    private Thread? _watchdog;
    private long _lastTick;
    private long _pausedForTicks; // 0 until tripped; then how long the pause was (Stopwatch ticks)
    private bool _stopped;

    public PauseGuard(ExtendedActorSystem system)
        : this(system, LimitOf(system.Settings.Config), Stopwatch.GetTimestamp,
            () => _ = CoordinatedShutdown.Get(system).Run(PausedTooLong.Instance))
    {
    }

    /// <param name="clock">Now, in <see cref="Stopwatch"/> ticks (a monotonic clock).</param>
    /// <param name="onTripped">What the node does once paused too long (leave the cluster).</param>
    internal PauseGuard(ActorSystem system, TimeSpan? limit, Func<long> clock, Action onTripped)
    {
        _system = system;
        _clock = clock;
        _onTripped = onTripped;
        _lastTick = clock();
        Limit = limit;
        system.RegisterOnTermination(() => Volatile.Write(ref _stopped, true));
    }

    private static TimeSpan? LimitOf(Config config) =>
        config.GetString(LimitKey, "off") is "off" or "false" or "" ? null : config.GetTimeSpan(LimitKey);

    public static PauseGuard Get(ActorSystem system) => system.WithExtension<PauseGuard, PauseGuardProvider>();

    /// <summary>The longest pause this node survives; null: the guard is off.</summary>
    public TimeSpan? Limit { get; }

    /// <summary>The watchdog found a pause longer than the limit: this node writes nothing more and is leaving.</summary>
    public bool Tripped => Volatile.Read(ref _pausedForTicks) != 0;

    /// <summary>Why this node may not write or serve now, or null if it may.</summary>
    public string? Refusal
    {
        get
        {
            if (Limit is not { } limit)
                return null;
            // The tick first: the watchdog trips before it moves the tick on, so a fresh tick read here means a trip
            // (if there was one) is seen below, and a stale one refuses by itself.
            var lastTick = Volatile.Read(ref _lastTick);
            var pausedFor = Volatile.Read(ref _pausedForTicks);
            if (pausedFor != 0)
                return $"this node was paused for {Seconds(pausedFor)}, long enough for its mailboxes to have moved; it is leaving the cluster";
            var sinceTick = _clock() - lastTick;
            return sinceTick > limit.TotalSeconds * Stopwatch.Frequency
                ? $"this node has just resumed after {Seconds(sinceTick)} without running; it is leaving the cluster"
                : null;
        }
    }

    /// <summary>Starts the watchdog (once; nothing if the guard is off). Call at start, before any entity writes.</summary>
    public void Start()
    {
        if (Limit is not { } limit)
            return;
        lock (_start)
        {
            if (_watchdog is not null)
                return;
            var tick = TimeSpan.FromTicks(Math.Clamp(limit.Ticks / 20, TimeSpan.FromMilliseconds(20).Ticks, TimeSpan.FromMilliseconds(500).Ticks));
            Volatile.Write(ref _lastTick, _clock());
            _watchdog = new Thread(() => Watch(limit, tick))
            {
                IsBackground = true,
                Name = "messaging-pause-guard",
                Priority = ThreadPriority.AboveNormal,
            };
            _watchdog.Start();
        }
        _system.Log.Info("Pause guard on: a pause of this node longer than {0} makes it refuse writes and leave the cluster", limit);
    }

    private void Watch(TimeSpan limit, TimeSpan tick)
    {
        var limitTicks = (long)(limit.TotalSeconds * Stopwatch.Frequency);
        while (!Volatile.Read(ref _stopped))
        {
            Thread.Sleep(tick);
            var now = _clock();
            var gap = now - Volatile.Read(ref _lastTick);
            // Tripped before the tick moves on, so a writer reading both never sees a fresh tick and no trip.
            if (gap > limitTicks && Interlocked.CompareExchange(ref _pausedForTicks, gap, 0) == 0)
                Trip(gap, limit);
            Volatile.Write(ref _lastTick, now);
        }
    }

    private void Trip(long gap, TimeSpan limit)
    {
        _system.Log.Error("This node was paused for {0} (the limit is {1}): the majority may have downed it and started " +
            "its mailboxes elsewhere. It refuses every write and every request from now on, and leaves the cluster.",
            Seconds(gap), limit);
        _onTripped();
    }

    private static string Seconds(long stopwatchTicks) =>
        FormattableString.Invariant($"{(double)stopwatchTicks / Stopwatch.Frequency:0.0} s");

    /// <summary>The reason CoordinatedShutdown gives when the guard trips.</summary>
    public sealed class PausedTooLong : CoordinatedShutdown.Reason
    {
        public static readonly PausedTooLong Instance = new();

        private PausedTooLong()
        {
        }

        public override int ExitCode => 1;

        public override string ToString() => "the node was paused longer than the pause guard's limit";
    }
}

public sealed class PauseGuardProvider : ExtensionIdProvider<PauseGuard>
{
    public override PauseGuard CreateExtension(ExtendedActorSystem system) => new(system);
}

public static class PauseGuardHosting
{
    /// <summary>Turns the guard on with <paramref name="limit"/> (null: off) and starts its watchdog with the node.</summary>
    public static AkkaConfigurationBuilder WithPauseGuard(this AkkaConfigurationBuilder builder, TimeSpan? limit)
    {
        if (limit is not { } on)
            return builder;
        return builder
            .AddHocon($"{PauseGuard.LimitKey} = {(long)on.TotalMilliseconds}ms", HoconAddMode.Prepend)
            .AddStartup((system, _) => PauseGuard.Get(system).Start());
    }
}
