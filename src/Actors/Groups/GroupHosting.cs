using Akka.Actor;
using Akka.Cluster.Hosting;
using Akka.Cluster.Sharding;
using Akka.Hosting;
using Messaging.Messages;

namespace Messaging.Actors.Groups;

/// <summary>Registry key for the group shard region.</summary>
public sealed class GroupRegion;

/// <summary>Routes every <see cref="IGroupCommand"/> to its group; the shard count never changes.</summary>
public sealed class GroupMessageExtractor(int shardCount) : HashCodeMessageExtractor(shardCount)
{
    public override string? EntityId(object message) => message switch
    {
        IGroupCommand command => command.GroupId,
        _ => null,
    };
}

public static class GroupHosting
{
    public const string TypeName = "group";

    /// <summary>
    /// Groups as a sharded entity type beside the mailboxes, placed and passivated the same way: a fixed shard count,
    /// remember-entities off, idle passivation carried out by the group itself (<see cref="GoIdle"/>), every stop through
    /// <see cref="StopGroup"/>, so a group drains its writes first.
    /// Delivery timings come from the mailbox settings: both deliver the same way.
    /// </summary>
    /// <param name="partitions">Which journal each group writes (its partition's server); Akka's default one if null.</param>
    public static AkkaConfigurationBuilder WithGroupShards(
        this AkkaConfigurationBuilder builder, MailboxSettings settings, GroupLimits limits, int shardCount, string? role = null,
        JournalPartitions? partitions = null)
    {
        var extractor = new GroupMessageExtractor(shardCount);
        return builder
            .AddStartup((system, _) => MemoryGovernor.Get(system).StartIdleSweep(system, settings.PassivateIdleAfter / 2))
            .WithShardRegion<GroupRegion>(
                TypeName,
                (_, registry, _) => groupId =>
                {
                    var plugins = partitions?.For(GroupActor.PersistenceIdFor(groupId));
                    return FactoryProps.Of(() => new GroupActor(groupId, settings, limits, registry.Get<MailboxRegion>(), registry.Get<GroupRegion>(),
                        new Delivery.DeliveryIndexRef(registry.Get<Delivery.DeliveryIndexRegion>(),
                            Delivery.DeliveryIndexRef.IndexIdFor(TypeName, extractor, groupId)),
                        plugins));
                },
                extractor,
                new ShardOptions
                {
                    RememberEntities = false,
                    StateStoreMode = StateStoreMode.DData,
                    // The entities passivate themselves when idle (MemoryGovernor.StartIdleSweep), so that a snapshot
                    // waits its turn while the entity still serves, not while the shard holds its messages.
                    ShouldPassivateIdleEntities = false,
                    HandOffStopMessage = StopGroup.Instance,
                    Role = role,
                });
    }
}
