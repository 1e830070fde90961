using Akka.Actor;
using Akka.Cluster.Hosting;
using Akka.Cluster.Sharding;
using Akka.Hosting;
using Messaging.Messages;

namespace Messaging.Actors;

/// <summary>Registry key for the mailbox shard region.</summary>
public sealed class MailboxRegion;

public static class MailboxHosting
{
    public const string TypeName = "mailbox";

    /// <summary>
    /// Mailboxes as a sharded entity type: a fixed shard count (about 10x the largest node count, never changed),
    /// remember-entities off, each entity on a <see cref="CompactMailbox"/> (a message queue that allocates small and
    /// shrinks back), idle passivation (<see cref="MailboxSettings.PassivateIdleAfter"/>) carried out by the mailbox
    /// itself (<see cref="GoIdle"/>: its snapshot first, while it still serves), and every stop through
    /// <see cref="Messaging.Messages.StopMailbox"/>, so a mailbox drains its writes before it stops or moves.
    /// </summary>
    /// <param name="partitions">Which journal each mailbox writes (its partition's server); Akka's default one if null.</param>
    public static AkkaConfigurationBuilder WithMailboxShards(
        this AkkaConfigurationBuilder builder, MailboxSettings settings, int shardCount, string? role = null,
        JournalPartitions? partitions = null)
    {
        var extractor = new MailboxMessageExtractor(shardCount);
        return builder
            .AddStartup((system, _) => MemoryGovernor.Get(system).StartIdleSweep(system, settings.PassivateIdleAfter / 2))
            .AddHocon(CompactMailbox.Hocon, HoconAddMode.Append)
            .WithShardRegion<MailboxRegion>(
                TypeName,
                (_, registry, _) => userId =>
                {
                    var plugins = partitions?.For(MailboxActor.PersistenceIdFor(userId));
                    return FactoryProps.Of(() => new MailboxActor(userId, settings, registry.Get<MailboxRegion>(), registry.Get<Groups.GroupRegion>(),
                        new Delivery.DeliveryIndexRef(registry.Get<Delivery.DeliveryIndexRegion>(),
                            Delivery.DeliveryIndexRef.IndexIdFor(TypeName, extractor, userId)),
                        plugins)).WithMailbox(CompactMailbox.Id);
                },
                extractor,
                new ShardOptions
                {
                    RememberEntities = false,
                    StateStoreMode = StateStoreMode.DData,
                    // The entities passivate themselves when idle (MemoryGovernor.StartIdleSweep), so that a snapshot
                    // waits its turn while the entity still serves, not while the shard holds its messages.
                    ShouldPassivateIdleEntities = false,
                    HandOffStopMessage = Messaging.Messages.StopMailbox.Instance,
                    Role = role,
                });
    }
}
