using Akka;
using Akka.Actor;
using Akka.Event;
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

    /// <summary>
    /// Warms the path of a wake from a snapshot as the node starts (<see cref="WakeWarmup"/>), beside the rest of the
    /// start: the node joins and serves meanwhile, and a failure is only logged. A shutdown calls it off and gives it a
    /// few seconds to delete its snapshot.
    /// </summary>
    public static AkkaConfigurationBuilder WithWakeWarmup(this AkkaConfigurationBuilder builder, MailboxSettings settings, int shardCount) =>
        settings.WarmupWakes <= 0
            ? builder
            : builder.AddStartup((system, registry) =>
            {
                var index = new Delivery.DeliveryIndexRef(registry.Get<Delivery.DeliveryIndexRegion>(),
                    Delivery.DeliveryIndexRef.IndexIdFor(TypeName, new MailboxMessageExtractor(shardCount), "warmup"));
                var (mailboxes, groups) = (registry.Get<MailboxRegion>(), registry.Get<Groups.GroupRegion>());
                var stop = new CancellationTokenSource(); // lives as long as the actor system
                var warmup = WakeWarmup.Start(system, () => WakeWarmup.RunAsync(system, settings, mailboxes, groups, index,
                    PersistencePlugins.Default, settings.WarmupWakes, stop.Token));
                CoordinatedShutdown.Get(system).AddTask(CoordinatedShutdown.PhaseBeforeServiceUnbind, "wake-warmup-stop", async () =>
                {
                    await stop.CancelAsync();
                    await Task.WhenAny(warmup, Task.Delay(TimeSpan.FromSeconds(3)));
                    return Done.Instance;
                });
                warmup.ContinueWith(t =>
                {
                    var error = t.Exception; // read in every case, so that no failure goes unobserved
                    if (t.IsCompletedSuccessfully)
                        system.Log.Info("Wake path warmed: {0} wakes from a snapshot in {1:0.0} s, {2} methods compiled{3}",
                            t.Result.Wakes, t.Result.Took.TotalSeconds, t.Result.MethodsCompiled, t.Result.Settled ? "" : " (not settled)");
                    else if (t.IsCanceled || stop.IsCancellationRequested)
                        system.Log.Info("Wake path warm-up called off (the node is stopping)");
                    else
                        system.Log.Warning(error!.GetBaseException(),
                            "Wake path warm-up failed (the node serves all the same; its first wakes compile as they go)");
                }, TaskScheduler.Default);
            });
}
