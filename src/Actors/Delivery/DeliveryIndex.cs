using System.Collections.Immutable;
using Akka.Actor;
using Akka.Cluster.Hosting;
using Akka.Cluster.Sharding;
using Akka.Event;
using Akka.Hosting;
using Akka.Persistence;
using Messaging.Messages;

namespace Messaging.Actors.Delivery;

/// <summary>Registry key for the delivery index shard region.</summary>
public sealed class DeliveryIndexRegion;

/// <summary>Where an entity reports its pending copies: the index region and the one index that covers the entity.</summary>
public sealed record DeliveryIndexRef(IActorRef Region, string IndexId)
{
    /// <summary>The index of an entity: one per shard of the entity's type (the shard count never changes).</summary>
    public static string IndexIdFor(string typeName, IMessageExtractor extractor, string entityId) =>
        $"{typeName}-{extractor.ShardId(entityId, new WakeForDelivery(entityId))}";

    public void Mark(string entityId, bool pending) => Region.Tell(new MarkPending(IndexId, entityId, pending));
}

/// <summary>
/// Keeps awake the entities (mailboxes, groups) of one shard that have copies their recipients did not confirm in
/// time. Nothing else restarts a stopped entity but a message to it, so without this a sender whose node crashed (or
/// that was handed off) with a lost copy would deliver it only when its user acted again. The entities report
/// themselves (<see cref="DeliveryEffect.MarkPending"/>) only when a recipient made no progress for a redelivery
/// interval, and again when nothing is pending: in normal operation the index is never written.
/// <para>
/// The index is persistent, and its region remembers its entities (a fixed, small set: one per shard of each type),
/// so after a crash sharding starts it again on another node by itself, and it wakes each entity it keeps
/// (<see cref="WakeForDelivery"/>) at once and then every <see cref="MailboxSettings.PendingWakeInterval"/> until the
/// entity reports that nothing is pending.
/// </para>
/// </summary>
public sealed class DeliveryIndexActor : ReceivePersistentActor, IWithTimers
{
    private const int SnapshotEvery = 100;
    private readonly ILoggingAdapter _log = Context.GetLogger();
    private readonly string _indexId;
    private readonly IActorRef _entities;
    private ImmutableSortedSet<string> _pending = ImmutableSortedSet.Create<string>(StringComparer.Ordinal);
    private int _sinceSnapshot;

    public DeliveryIndexActor(string indexId, IActorRef entities, TimeSpan wakeInterval)
    {
        _indexId = indexId;
        _entities = entities;
        PersistenceId = PersistenceIdFor(indexId);

        Recover<SnapshotOffer>(offer =>
            _pending = ((DeliveryIndexSnapshot)offer.Snapshot).EntityIds.ToImmutableSortedSet(StringComparer.Ordinal));
        Recover<PendingChanged>(Apply);
        Recover<RecoveryCompleted>(_ =>
        {
            if (!_pending.IsEmpty)
                _log.Info("Delivery index {IndexId} wakes {Count} entities with copies pending", _indexId, _pending.Count);
            Timers.StartPeriodicTimer(Wake.Instance, Wake.Instance, TimeSpan.Zero, wakeInterval);
        });

        Command<MarkPending>(mark =>
        {
            if (mark.Pending == _pending.Contains(mark.EntityId))
                return; // nothing changes: nothing is written
            if (PauseGuard.Get(Context.System).Refusal is { } paused)
            {
                // The index may run elsewhere now: an entry written here could land after that one's.
                _log.Warning("Delivery index {IndexId} does not mark {EntityId}: {Reason}", _indexId, mark.EntityId, paused);
                return;
            }
            Persist(new PendingChanged(mark.EntityId, mark.Pending), changed =>
            {
                Apply(changed);
                if (++_sinceSnapshot >= SnapshotEvery)
                {
                    _sinceSnapshot = 0;
                    SaveSnapshot(new DeliveryIndexSnapshot([.. _pending]));
                }
            });
        });
        Command<GetPendingDeliveries>(_ => Sender.Tell(new PendingDeliveries(_indexId, [.. _pending])));
        Command<Wake>(_ =>
        {
            foreach (var entityId in _pending)
                _entities.Tell(new WakeForDelivery(entityId));
        });
        Command<SaveSnapshotSuccess>(success => DeleteSnapshots(new SnapshotSelectionCriteria(success.Metadata.SequenceNr - 1)));
        Command<SaveSnapshotFailure>(failure => _log.Warning(failure.Cause, "Snapshot of {PersistenceId} failed", PersistenceId));
        Command<DeleteSnapshotsSuccess>(_ => { });
        Command<DeleteSnapshotsFailure>(_ => { });
    }

    public static string PersistenceIdFor(string indexId) => $"delivery-index-{indexId}";

    public override string PersistenceId { get; }

    public ITimerScheduler Timers { get; set; } = null!;

    private void Apply(PendingChanged changed) =>
        _pending = changed.Pending ? _pending.Add(changed.EntityId) : _pending.Remove(changed.EntityId);

    private sealed class Wake
    {
        public static readonly Wake Instance = new();
    }
}

/// <summary>Routes every <see cref="IDeliveryIndexCommand"/> to its index.</summary>
public sealed class DeliveryIndexMessageExtractor(int shardCount) : HashCodeMessageExtractor(shardCount)
{
    public override string? EntityId(object message) => message switch
    {
        IDeliveryIndexCommand command => command.IndexId,
        _ => null,
    };
}

public static class DeliveryIndexHosting
{
    public const string TypeName = "delivery-index";

    /// <summary>
    /// The delivery indexes as a sharded entity type whose entities are remembered (stored in the journal by
    /// sharding's event-sourced store, a write per index start, not per message): after a node crash they start
    /// again elsewhere without being asked, and wake what they keep. Never passivated.
    /// </summary>
    public static AkkaConfigurationBuilder WithDeliveryIndex(
        this AkkaConfigurationBuilder builder, MailboxSettings settings, int shardCount = 10, string? role = null)
    {
        return builder.WithShardRegion<DeliveryIndexRegion>(
            TypeName,
            (_, registry, _) => indexId =>
                FactoryProps.Of(() => new DeliveryIndexActor(
                    indexId,
                    indexId.StartsWith(Groups.GroupHosting.TypeName + "-", StringComparison.Ordinal)
                        ? registry.Get<Groups.GroupRegion>()
                        : registry.Get<MailboxRegion>(),
                    settings.PendingWakeInterval)),
            new DeliveryIndexMessageExtractor(shardCount),
            new ShardOptions
            {
                RememberEntities = true,
                RememberEntitiesStore = RememberEntitiesStore.Eventsourced,
                StateStoreMode = StateStoreMode.DData,
                Role = role,
            });
    }
}
