using Messaging.Actors.Delivery;
using Messaging.Actors.Groups;
using Akka.Actor;
using Akka.Cluster;
using Akka.Cluster.Hosting;
using Akka.Cluster.Sharding;
using Akka.Hosting;
using Akka.Remote.Hosting;
using Messaging.Messages;
using Messaging.Messages.Serialization;

namespace Messaging.Actors.Tests;

/// <summary>
/// Mailboxes behind the production sharding extension in a one-node cluster, on the test journal (which can fail on
/// demand). The journal's storage outlives one test's actor system, so each test uses user ids of its own.
/// </summary>
public abstract class ShardedMailboxTestKit(string name, ITestOutputHelper output, MailboxSettings settings)
    : Akka.Hosting.TestKit.PersistenceTestKit(name, output)
{
    protected static readonly TimeSpan Ask = TimeSpan.FromSeconds(10);

    protected static CancellationToken Ct => TestContext.Current.CancellationToken;

    protected MailboxSettings Settings { get; } = settings;

    protected string Run { get; } = Guid.NewGuid().ToString("N")[..8];

    protected IActorRef Region => ActorRegistry.Get<MailboxRegion>();

    protected override void ConfigureAkka(AkkaConfigurationBuilder builder, IServiceProvider provider)
    {
        base.ConfigureAkka(builder, provider); // the test journal and snapshot store
        builder
            // As in production (PersistenceHosting): the mailbox sorts out the journal's writers itself.
            .AddHocon("akka.persistence.journal.test.replay-filter.mode = off", HoconAddMode.Prepend)
            .WithMessagingSerialization()
            .WithRemoting("127.0.0.1", 0)
            .WithClustering()
            .WithMailboxShards(Settings, shardCount: 10)
            .WithGroupShards(Settings, new GroupLimits(), shardCount: 10)
            .WithDeliveryIndex(Settings);
    }

    protected override async Task BeforeTestStart()
    {
        await base.BeforeTestStart();
        var cluster = Cluster.Get(Sys);
        await cluster.JoinAsync(cluster.SelfAddress);
    }

    /// <summary>The live mailbox entity of <paramref name="userId"/> (fails if it is not running).</summary>
    protected async Task<IActorRef> EntityAsync(string userId)
    {
        var shard = new MailboxMessageExtractor(10).ShardId(userId, new GetMailboxStatus(userId));
        return await Sys.ActorSelection($"/system/sharding/{MailboxHosting.TypeName}/{shard}/{userId}").ResolveOne(Ask, Ct);
    }

    /// <summary><paramref name="count"/> messages from one user to another, each Sent; then both mailboxes watched.</summary>
    protected async Task SendThenWatchAsync(string sender, string recipient, int count)
    {
        for (var i = 1; i <= count; i++)
        {
            var result = await Region.Ask<SendResult>(new SendMessage(sender, [recipient], $"m{i}", $"c{i}"), Ask, Ct);
            Assert.Equal(SendOutcome.Sent, result.Outcome);
        }
        Watch(await EntityAsync(sender));
        Watch(await EntityAsync(recipient));
    }

    /// <summary>
    /// Asks each user's mailbox to passivate as the memory governor does (<see cref="ShedMemory"/>): a stop through the
    /// shard, with the stop's snapshot timeout, rather than the mailbox's own idle passivation.
    /// </summary>
    protected async Task ShedAsync(params string[] userIds)
    {
        foreach (var userId in userIds)
            (await EntityAsync(userId)).Tell(ShedMemory.Instance);
    }

    protected async Task KillMailboxAsync(string userId)
    {
        var entity = await EntityAsync(userId);
        Watch(entity);
        entity.Tell(PoisonPill.Instance);
        ExpectTerminated(entity, Ask, cancellationToken: Ct);
        await ShardForgotAsync(userId, entity);
    }

    /// <summary>
    /// The shard hears of a stopped entity on its own (it watches it): until then it hands the next command to the dead
    /// one (dead letters, an ask timing out). Wait until it no longer counts it, or counts a new incarnation (something
    /// woke the mailbox again meanwhile), without starting it.
    /// </summary>
    protected Task ShardForgotAsync(string userId, IActorRef stopped) => ShardForgotAsync(Region, userId, stopped, () => EntityAsync(userId));

    /// <summary>The same for an entity of <paramref name="region"/> (a group's), found by <paramref name="resolve"/>.</summary>
    protected async Task ShardForgotAsync(IActorRef region, string entityId, IActorRef stopped, Func<Task<IActorRef>> resolve)
    {
        await AwaitAssertAsync(async () =>
        {
            var state = await region.Ask<CurrentShardRegionState>(GetShardRegionState.Instance, Ask, Ct);
            Assert.Empty(state.Failed); // a shard that did not answer in time is not listed: nothing said about it
            if (!state.Shards.Any(s => s.EntityIds.Contains(entityId)))
                return;
            Assert.NotEqual(stopped, await resolve());
        }, Ask, TimeSpan.FromMilliseconds(20), Ct);
    }
}
