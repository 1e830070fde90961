using System.Diagnostics;
using Akka.Actor;
using Akka.Hosting;
using Akka.Persistence;
using Messaging.Messages;

namespace Messaging.Actors.Tests;

/// <summary>
/// The pause guard on a clock the test moves: a jump longer than the limit is what a node sees when it resumes after
/// a SIGSTOP or a frozen VM (PausedNodeSpecs does the real thing on a cluster). From the jump on, the guard refuses,
/// even before its watchdog has noticed, and mailboxes answer without writing anything, whether the incarnation was
/// running before the pause or starts after it.
/// </summary>
public sealed class PauseGuardSpecs(ITestOutputHelper output)
    : ShardedMailboxTestKit(nameof(PauseGuardSpecs), output, new MailboxSettings())
{
    private static readonly TimeSpan Limit = TimeSpan.FromSeconds(1);
    private long _now = 1_000 * Stopwatch.Frequency;
    private int _tripped;

    private long Clock() => Volatile.Read(ref _now);

    private void Pause(TimeSpan pause) => Interlocked.Add(ref _now, (long)(pause.TotalSeconds * Stopwatch.Frequency));

    private PauseGuard Guard => PauseGuard.Get(Sys);

    protected override void ConfigureAkka(AkkaConfigurationBuilder builder, IServiceProvider provider)
    {
        base.ConfigureAkka(builder, provider);
        // Before any entity asks for it: the mailboxes get this guard rather than the configured one (off).
        builder.AddStartup((system, _) =>
        {
            system.RegisterExtension(new ManualGuard(() => new PauseGuard(system, Limit, Clock, () => Interlocked.Increment(ref _tripped))));
            PauseGuard.Get(system).Start();
        });
    }

    private sealed class ManualGuard(Func<PauseGuard> create) : ExtensionIdProvider<PauseGuard>
    {
        public override PauseGuard CreateExtension(ExtendedActorSystem system) => create();
    }

    private async Task<IReadOnlyList<object>> JournalOfAsync(string user)
    {
        var probe = CreateTestProbe();
        JournalActorRef.Tell(new ReplayMessages(1, long.MaxValue, long.MaxValue, MailboxActor.PersistenceIdFor(user), probe.Ref));
        var events = new List<object>();
        while (await probe.ReceiveOneAsync(Ask, Ct) is ReplayedMessage replayed)
            events.Add(replayed.Persistent.Payload);
        return events;
    }

    [Fact]
    public async Task Should_let_a_pause_shorter_than_the_limit_pass_and_refuse_from_the_instant_a_longer_one_ends()
    {
        Assert.Equal(Limit, Guard.Limit);
        Assert.Null(Guard.Refusal);

        Pause(Limit * 0.8);
        await Task.Delay(Limit / 5, Ct); // several watchdog ticks
        Assert.Null(Guard.Refusal);
        Assert.False(Guard.Tripped);

        Pause(Limit * 2);
        // Refused at once, whether or not the watchdog has run since the clock jumped.
        Assert.NotNull(Guard.Refusal);
        await AwaitConditionAsync(() => Task.FromResult(Guard.Tripped), Ask, cancellationToken: Ct);
        Assert.Contains("was paused for 2.0 s", Guard.Refusal);
        await Task.Delay(Limit / 5, Ct);
        Assert.NotNull(Guard.Refusal); // for good: the node is leaving
        Assert.Equal(1, Volatile.Read(ref _tripped));
    }

    [Fact]
    public async Task Should_make_mailboxes_running_or_started_after_a_long_pause_answer_unavailable_and_write_nothing()
    {
        var (alice, bob, carol) = ($"alice-{Run}", $"bob-{Run}", $"carol-{Run}");
        var first = await Region.Ask<SendResult>(new SendMessage(alice, [bob], "before", "c1"), Ask, Ct);
        Assert.Equal(SendOutcome.Sent, first.Outcome);
        await AwaitAssertAsync(async () => Assert.Single(Assert.IsType<ThreadPage>(await Region.Ask<object>(
            new GetThread(bob, first.ConversationId, 0, 10, null, null), Ask, Ct)).Messages), Ask, cancellationToken: Ct);

        Pause(Limit * 3);

        // The incarnation that ran before the pause.
        var after = await Region.Ask<SendResult>(new SendMessage(alice, [bob], "after", "c2"), Ask, Ct);
        Assert.Equal(SendOutcome.Unavailable, after.Outcome);
        Assert.Matches("this node (was paused for|has just resumed after) 3.0 s", after.Detail);
        // Bob's, which stored alice's copy before the pause, takes no receipt.
        Assert.IsType<MailboxUnavailable>(await Region.Ask<object>(new MarkReceipts(bob, first.ConversationId, null, 1), Ask, Ct));
        // One the shard starts after it: it recovers, then claims nothing and writes nothing.
        var fresh = await Region.Ask<SendResult>(new SendMessage(carol, [bob], "fresh", "c3"), Ask, Ct);
        Assert.Equal(SendOutcome.Unavailable, fresh.Outcome);

        var journal = await JournalOfAsync(alice);
        Assert.Collection(journal, e => Assert.IsType<WriterClaimed>(e), e => Assert.Equal("before", Assert.IsType<MessageSent>(e).Message.Text));
        Assert.Empty(await JournalOfAsync(carol));
    }
}
