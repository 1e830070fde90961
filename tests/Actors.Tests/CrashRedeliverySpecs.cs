using Akka.Actor;
using Messaging.Actors.Delivery;
using Messaging.Actors.Groups;
using Messaging.Messages;

namespace Messaging.Actors.Tests;

/// <summary>
/// A sender that stops without being asked (its node crashed) while a copy of it is undeliverable: nothing but a
/// message restarts a sharded entity, so its delivery index must. The senders here are killed the way a crash ends
/// them (no stop message, no hand-off), and do nothing after their send.
/// </summary>
public sealed class CrashRedeliverySpecs(ITestOutputHelper output)
    : ShardedMailboxTestKit(nameof(CrashRedeliverySpecs), output, new MailboxSettings
    {
        DeliveryWait = TimeSpan.FromMilliseconds(300),
        RedeliveryInterval = TimeSpan.FromMilliseconds(200),
        PendingWakeInterval = TimeSpan.FromSeconds(1),
    })
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(15);

    private IActorRef Index => ActorRegistry.Get<DeliveryIndexRegion>();

    private async Task<PendingDeliveries> PendingAsync(string indexId) =>
        await Index.Ask<PendingDeliveries>(new GetPendingDeliveries(indexId), Ask, Ct);

    private static string MailboxIndex(string userId) =>
        DeliveryIndexRef.IndexIdFor(MailboxHosting.TypeName, new MailboxMessageExtractor(10), userId);

    private static string GroupIndex(string groupId) =>
        DeliveryIndexRef.IndexIdFor(GroupHosting.TypeName, new GroupMessageExtractor(10), groupId);

    private async Task KillGroupAsync(string groupId)
    {
        var entity = await GroupEntityAsync(groupId);
        Watch(entity);
        entity.Tell(PoisonPill.Instance);
        ExpectTerminated(entity, Ask, cancellationToken: Ct);
        await ShardForgotAsync(ActorRegistry.Get<GroupRegion>(), groupId, entity, () => GroupEntityAsync(groupId));
    }

    private async Task<IActorRef> GroupEntityAsync(string groupId)
    {
        var shard = new GroupMessageExtractor(10).ShardId(groupId, new GetGroupStatus(groupId));
        return await Sys.ActorSelection($"/system/sharding/{GroupHosting.TypeName}/{shard}/{Uri.EscapeDataString(groupId)}")
            .ResolveOne(Ask, Ct);
    }

    private async Task AssertStoredAsync(string user, string conversation, string text) =>
        await AwaitAssertAsync(async () =>
        {
            var page = Assert.IsType<ThreadPage>(await Region.Ask<object>(new GetThread(user, conversation, 0, 10, null, null), Ask, Ct));
            Assert.Contains(page.Messages, m => m.Message.Text == text);
        }, Patience, TimeSpan.FromMilliseconds(200), Ct);

    [Fact]
    public async Task Should_deliver_an_accepted_copy_after_its_senders_mailbox_crashed_with_no_action_of_the_sender()
    {
        var (alice, bob) = ($"alice-{Run}", $"bob-{Run}");
        SendResult sent = null!;
        await WithJournalWrite(write => write.RejectIf(p => Task.FromResult(p.Payload is MessageReceived)), async () =>
        {
            sent = await Region.Ask<SendResult>(new SendMessage(alice, [bob], "still there?", "c1"), Ask, Ct);
            Assert.Equal(SendOutcome.Accepted, sent.Outcome);
            // bob made no progress for a redelivery interval: alice's index keeps her from now on.
            await AwaitAssertAsync(async () => Assert.Contains(alice, (await PendingAsync(MailboxIndex(alice))).EntityIds),
                Patience, TimeSpan.FromMilliseconds(100), Ct);
            await KillMailboxAsync(alice);
        });

        // bob can store again; alice is not running, and nobody sends her anything.
        await AssertStoredAsync(bob, sent.ConversationId, "still there?");
        // Delivered: alice tells her index, which forgets her.
        await AwaitAssertAsync(async () => Assert.DoesNotContain(alice, (await PendingAsync(MailboxIndex(alice))).EntityIds),
            Patience, TimeSpan.FromMilliseconds(200), Ct);
    }

    [Fact]
    public async Task Should_deliver_a_groups_accepted_copy_after_the_group_crashed()
    {
        var (alice, bob) = ($"alice-{Run}", $"bob-{Run}");
        var groups = ActorRegistry.Get<GroupRegion>();
        var group = Ids.GroupFor(alice, $"r-{Run}");
        Assert.IsType<GroupAnswer>(await groups.Ask<object>(new CreateGroup(group, alice, "team", [bob], $"r-{Run}"), Ask, Ct));
        await AssertStoredAsync(bob, group, "");

        await WithJournalWrite(write => write.RejectIf(p => Task.FromResult(
            p.Payload is MessageReceived && p.PersistenceId == MailboxActor.PersistenceIdFor(bob))), async () =>
        {
            var sent = await groups.Ask<SendResult>(new PostToGroup(group, alice, "anyone?", "c1"), Ask, Ct);
            Assert.Equal(SendOutcome.Accepted, sent.Outcome);
            await AwaitAssertAsync(async () => Assert.Contains(group, (await PendingAsync(GroupIndex(group))).EntityIds),
                Patience, TimeSpan.FromMilliseconds(100), Ct);
            await KillGroupAsync(group);
        });

        await AssertStoredAsync(bob, group, "anyone?");
        await AwaitAssertAsync(async () => Assert.DoesNotContain(group, (await PendingAsync(GroupIndex(group))).EntityIds),
            Patience, TimeSpan.FromMilliseconds(200), Ct);
    }
}
