using Akka.Actor;
using Messaging.Messages;

namespace Messaging.Actors.Tests;

/// <summary>The outbox's bound (copies to one recipient not yet confirmed) against confirmations not yet journaled.</summary>
public sealed class OutboxBoundSpecs(ITestOutputHelper output)
    : ShardedMailboxTestKit(nameof(OutboxBoundSpecs), output, new MailboxSettings
    {
        ConfirmationBatch = 100, // confirmations stay in memory for a while
        ConfirmationFlushInterval = TimeSpan.FromMinutes(5),
        Limits = new MailboxLimits(MaxPendingPerRecipient: 3, MaxPendingCharsPerRecipient: 1_000),
    })
{
    private Task<SendResult> SendAsync(string to, string text, string clientId) =>
        Region.Ask<SendResult>(new SendMessage($"alice-{Run}", [to], text, clientId), Ask, Ct);

    [Fact]
    public async Task Should_not_count_copies_the_recipient_has_confirmed_as_a_backlog()
    {
        var bob = $"bob-{Run}";
        // Each copy is confirmed (Sent) before the next send, but no confirmation is journaled yet: 3 copies (or
        // 1,000 characters) would already be "pending" in the journaled view.
        for (var i = 1; i <= 10; i++)
            Assert.Equal(SendOutcome.Sent, (await SendAsync(bob, new string('x', 300), $"c{i}")).Outcome);
    }
}
