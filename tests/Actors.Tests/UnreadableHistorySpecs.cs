using Akka.Actor;
using Akka.Persistence;
using Akka.Persistence.TestKit;
using Akka.Serialization;
using Messaging.Messages;
using Messaging.Messages.Serialization;

namespace Messaging.Actors.Tests;

/// <summary>
/// A journal event this release cannot read (a newer release wrote it, then the cluster was rolled back): the mailbox
/// refuses to recover and says why, and nothing of its history is skipped.
/// </summary>
public sealed class UnreadableHistorySpecs(ITestOutputHelper output)
    : ShardedMailboxTestKit(nameof(UnreadableHistorySpecs), output, new MailboxSettings())
{
    private string Alice => $"alice-{Run}";

    private string Bob => $"bob-{Run}";

    [Fact]
    public async Task Should_refuse_to_recover_with_a_clear_error_and_skip_nothing_when_the_journal_holds_an_unknown_manifest()
    {
        var sent = await Region.Ask<SendResult>(new SendMessage(Alice, [Bob], "before the rollback", "c1"), Ask, Ct);
        Assert.Equal(SendOutcome.Sent, sent.Outcome);
        var before = await Region.Ask<MailboxStatus>(new GetMailboxStatus(Alice), Ask, Ct);
        await KillMailboxAsync(Alice);

        await WithJournalRecovery(recovery => recovery.SetInterceptorAsync(new NewerReleaseWrote(Sys)), async () =>
        {
            await EventFilter.Error(contains: "cannot recover").ExpectOneAsync(Ask, () =>
            {
                Region.Tell(new GetMailboxStatus(Alice), TestActor);
                return Task.CompletedTask;
            }, Ct);
            await ExpectNoMsgAsync(TimeSpan.FromMilliseconds(500), Ct); // stopped, not answering from a partial history
        });

        // A release that reads it again (here: the journal without the unknown event) finds everything there.
        var after = await AwaitAssertReplyAsync();
        Assert.Equal(before.LastSequenceNr, after.LastSequenceNr);
    }

    private async Task<MailboxStatus> AwaitAssertReplyAsync()
    {
        MailboxStatus? status = null;
        await AwaitAssertAsync(async () =>
            status = await Region.Ask<MailboxStatus>(new GetMailboxStatus(Alice), TimeSpan.FromSeconds(2), Ct), Ask,
            cancellationToken: Ct);
        return status!;
    }

    /// <summary>What the journal's read does with an event whose manifest this release's serializer does not know.</summary>
    private sealed class NewerReleaseWrote(ActorSystem system) : IJournalInterceptor
    {
        public Task InterceptAsync(IPersistentRepresentation message)
        {
            var serializer = (SerializerWithStringManifest)system.Serialization.FindSerializerForType(typeof(MessageSent));
            Assert.Equal(MessagingSerializer.SerializerId, serializer.Identifier);
            serializer.FromBinary([], "Grp9"); // throws: no type for this manifest
            return Task.CompletedTask;
        }
    }
}
