using Messaging.Actors.Delivery;
using Akka.Actor;
using Akka.Cluster.Hosting;
using Akka.Hosting;
using Akka.Remote.Hosting;
using Akka.TestKit;
using Messaging.Messages;

namespace Messaging.Actors.Tests;

/// <summary>
/// The delivery protocol between two mailboxes, with a probe standing in for the shard region so every copy and
/// confirmation on the wire can be seen, dropped or reordered. The sender's rules themselves (when to resend, whom
/// to answer and how) are specified on a fake clock in <see cref="DeliveryTrackerSpecs"/>; these check that the actor
/// carries them out over real timers and a journal.
/// </summary>
public sealed class DeliverySpecs(ITestOutputHelper output)
    : Akka.Hosting.TestKit.PersistenceTestKit(nameof(DeliverySpecs), output)
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(5);
    private readonly string _run = Guid.NewGuid().ToString("N")[..8];

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    protected override void ConfigureAkka(AkkaConfigurationBuilder builder, IServiceProvider provider)
    {
        base.ConfigureAkka(builder, provider);
        builder.WithRemoting("127.0.0.1", 0).WithClustering();
    }

    /// <summary>
    /// A mailbox whose region is a probe: the probe sees everything the mailbox sends out, except the mailbox's own
    /// <see cref="KeepDelivering"/>, which goes straight back to it as the real region would route it.
    /// </summary>
    private (IActorRef Mailbox, TestProbe Region) Start(string user, MailboxSettings settings)
    {
        var region = CreateTestProbe();
        var router = Sys.ActorOf(Props.Create(() => new RegionStub(region.Ref)));
        var mailbox = Sys.ActorOf(Props.Create(() => new MailboxActor(user, settings, router, router, new DeliveryIndexRef(ActorRefs.Nobody, "unused"))));
        router.Tell(mailbox);
        return (mailbox, region);
    }

    private sealed class RegionStub : ReceiveActor
    {
        public RegionStub(IActorRef probe)
        {
            IActorRef? mailbox = null;
            Receive<IActorRef>(target => mailbox = target);
            Receive<KeepDelivering>(keep => mailbox?.Tell(keep));
            ReceiveAny(message => probe.Forward(message));
        }
    }

    [Fact]
    public async Task Should_resend_unconfirmed_copies_in_order_until_the_recipient_confirms()
    {
        var (alice, region) = Start($"alice-{_run}", new MailboxSettings
        {
            DeliveryWait = TimeSpan.FromSeconds(30),
            RedeliveryInterval = TimeSpan.FromMilliseconds(300),
        });
        var bob = $"bob-{_run}";
        for (var i = 1; i <= 3; i++)
            alice.Tell(new SendMessage($"alice-{_run}", [bob], $"m{i}", $"c{i}"), TestActor);

        for (var round = 0; round < 2; round++) // first hand-off, then a resend of the same copies, in order
        for (var seq = 1; seq <= 3; seq++)
        {
            var copy = await region.ExpectMsgAsync<DeliverMessage>(Wait, cancellationToken: Ct);
            Assert.Equal((bob, (long)seq, $"m{seq}"), (copy.RecipientId, copy.ChannelSeq, copy.Message.Text));
        }

        // That nothing is resent after this confirmation is DeliveryTrackerSpecs' rule, on a fake clock: here it
        // would cost a wait of a few redelivery intervals.
        alice.Tell(new ConfirmDelivery($"alice-{_run}", bob, 3));

        for (var i = 0; i < 3; i++)
            Assert.Equal(SendOutcome.Sent, (await ExpectMsgAsync<SendResult>(Wait, cancellationToken: Ct)).Outcome);
    }

    [Fact]
    public async Task Should_answer_Accepted_when_the_recipient_does_not_confirm_in_time()
    {
        var (alice, region) = Start($"alice-{_run}", new MailboxSettings { DeliveryWait = TimeSpan.FromMilliseconds(300) });

        alice.Tell(new SendMessage($"alice-{_run}", [$"bob-{_run}"], "hi", "c1"), TestActor);

        var result = await ExpectMsgAsync<SendResult>(Wait, cancellationToken: Ct);
        Assert.Equal(SendOutcome.Accepted, result.Outcome);
        Assert.NotEmpty(result.MessageId);
        await region.ExpectMsgAsync<DeliverMessage>(Wait, cancellationToken: Ct);
    }

    [Fact]
    public async Task Should_store_a_senders_copies_once_and_in_order_whatever_arrives()
    {
        var bob = $"bob-{_run}";
        var alice = $"alice-{_run}";
        var (mailbox, region) = Start(bob, new MailboxSettings());
        var conversation = Ids.ConversationFor(alice, bob);
        DeliverMessage Copy(long seq) =>
            new(bob, seq, new ChatMessage($"id{seq}", conversation, alice, [bob], $"m{seq}", $"c{seq}", 1000 + seq));

        mailbox.Tell(Copy(2)); // ahead of its turn: not stored, nothing to confirm yet
        mailbox.Tell(Copy(1));
        // The first thing on the wire confirms 1: copy 2 was neither stored nor confirmed ahead of it.
        Assert.Equal(1, (await region.ExpectMsgAsync<ConfirmDelivery>(Wait, cancellationToken: Ct)).UpToSeq);
        mailbox.Tell(Copy(2));
        Assert.Equal(2, (await region.ExpectMsgAsync<ConfirmDelivery>(Wait, cancellationToken: Ct)).UpToSeq);
        mailbox.Tell(Copy(1)); // a resend of something stored: confirmed again, not stored again
        Assert.Equal(2, (await region.ExpectMsgAsync<ConfirmDelivery>(Wait, cancellationToken: Ct)).UpToSeq);

        mailbox.Tell(new GetThread(bob, conversation, 0, 50, null, null), TestActor);
        var page = await ExpectMsgAsync<ThreadPage>(Wait, cancellationToken: Ct);
        Assert.Equal(["m1", "m2"], page.Messages.Select(m => m.Message.Text));
        Assert.Equal([1L, 2L], page.Messages.Select(m => m.Seq));
    }

    [Fact]
    public async Task Should_resend_unconfirmed_copies_after_a_restart_from_the_journal()
    {
        var user = $"alice-{_run}";
        var settings = new MailboxSettings { DeliveryWait = TimeSpan.Zero, RedeliveryInterval = TimeSpan.FromMilliseconds(200) };
        var (first, region) = Start(user, settings);
        first.Tell(new SendMessage(user, [$"bob-{_run}"], "m1", "c1"), TestActor);
        first.Tell(new SendMessage(user, [$"bob-{_run}"], "m2", "c2"), TestActor);
        await ExpectMsgAsync<SendResult>(Wait, cancellationToken: Ct);
        await ExpectMsgAsync<SendResult>(Wait, cancellationToken: Ct);
        first.Tell(new ConfirmDelivery(user, $"bob-{_run}", 1));
        first.Tell(StopMailbox.Instance); // journals the confirmation of 1 before it stops
        Watch(first);
        await ExpectTerminatedAsync(first, Wait, cancellationToken: Ct);

        var (_, region2) = Start(user, settings);

        var copy = await region2.ExpectMsgAsync<DeliverMessage>(Wait, cancellationToken: Ct);
        Assert.Equal((2L, "m2"), (copy.ChannelSeq, copy.Message.Text));
    }

    [Fact]
    public async Task Should_journal_confirmations_in_batches_so_a_crash_resends_only_past_the_last_batch()
    {
        var user = $"alice-{_run}";
        var bob = $"bob-{_run}";
        var settings = new MailboxSettings
        {
            DeliveryWait = TimeSpan.Zero,
            RedeliveryInterval = TimeSpan.FromMilliseconds(200),
            ConfirmationBatch = 2,
        };
        var (first, _) = Start(user, settings);
        for (var i = 1; i <= 3; i++)
        {
            first.Tell(new SendMessage(user, [bob], $"m{i}", $"c{i}"), TestActor);
            await ExpectMsgAsync<SendResult>(Wait, cancellationToken: Ct);
        }
        first.Tell(new ConfirmDelivery(user, bob, 1)); // below the batch: stays in memory
        first.Tell(new ConfirmDelivery(user, bob, 2)); // a batch of 2: journaled
        first.Tell(new GetMailboxStatus(user), TestActor); // answered after both confirmations were handled
        await ExpectMsgAsync<MailboxStatus>(Wait, cancellationToken: Ct);
        Watch(first);
        first.Tell(PoisonPill.Instance); // a crash: no orderly flush
        await ExpectTerminatedAsync(first, Wait, cancellationToken: Ct);

        var (_, region) = Start(user, settings);

        var copy = await region.ExpectMsgAsync<DeliverMessage>(Wait, cancellationToken: Ct);
        Assert.Equal(3L, copy.ChannelSeq);
    }
}
