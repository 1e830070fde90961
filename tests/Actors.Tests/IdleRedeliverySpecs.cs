using Akka.Actor;
using Messaging.Messages;

namespace Messaging.Actors.Tests;

/// <summary>A copy that cannot be stored for longer than the passivation timeout still arrives, with no action of its sender.</summary>
public sealed class IdleRedeliverySpecs(ITestOutputHelper output)
    : ShardedMailboxTestKit(nameof(IdleRedeliverySpecs), output, new MailboxSettings
    {
        DeliveryWait = TimeSpan.FromMilliseconds(300),
        RedeliveryInterval = TimeSpan.FromMilliseconds(200),
        PassivateIdleAfter = TimeSpan.FromSeconds(1),
    })
{
    [Fact]
    public async Task Should_keep_redelivering_past_the_passivation_timeout_until_the_recipient_stores_the_copy()
    {
        var (alice, bob) = ($"alice-{Run}", $"bob-{Run}");
        SendResult sent = null!;

        // bob's journal refuses his copy for three passivation timeouts; alice does nothing after her send.
        await WithJournalWrite(write => write.RejectIf(p => Task.FromResult(p.Payload is MessageReceived)), async () =>
        {
            sent = await Region.Ask<SendResult>(new SendMessage(alice, [bob], "are you there?", "c1"), Ask, Ct);
            Assert.Equal(SendOutcome.Accepted, sent.Outcome);
            await Task.Delay(TimeSpan.FromSeconds(3), Ct);
        });

        await AwaitAssertAsync(async () =>
        {
            var page = Assert.IsType<ThreadPage>(await Region.Ask<object>(new GetThread(bob, sent.ConversationId, 0, 10, null, null), Ask, Ct));
            Assert.Equal(sent.MessageId, Assert.Single(page.Messages).Message.MessageId);
        }, TimeSpan.FromSeconds(10), TimeSpan.FromMilliseconds(500), Ct);
    }
}
