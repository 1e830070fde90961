using Messaging.Cluster.Tests.Harness;
using Xunit;

namespace Messaging.Cluster.Tests;

/// <summary>
/// Real network partitions (docs/operations.md, "The partition scenarios"): three nodes and PostgreSQL each in a
/// network namespace of its own on a private bridge (<see cref="NetworkLab"/>), the 1:1 load of the fault scenarios
/// sent to every node, the isolated one included, and nftables rules that drop traffic (no RST) between chosen hosts.
/// Whatever the cut, nothing acknowledged is lost, duplicated or reordered, the majority keeps serving, and every 200
/// a client got from the cut-off node is for a message that is stored. Opt-in, MESSAGING_PARTITION_TEST=1: each runs
/// for a few minutes and needs root, iproute2 and nftables.
/// </summary>
public sealed class PartitionSpecs(ITestOutputHelper output)
{
    public const string OptIn = "MESSAGING_PARTITION_TEST";
    private const int Cut = 2; // the youngest node: the oldest hosts the shard coordinator, which the majority keeps
    private const string CutHost = "node3";
    private static readonly string[] Hosts = ["node1", "node2", "node3", ITestNetwork.DatabaseHost(0)];
    private static readonly TimeSpan Progress = TimeSpan.FromSeconds(60);

    [Fact]
    public async Task Should_down_a_node_cut_off_from_the_others_answer_its_clients_only_503_and_lose_nothing_acknowledged()
    {
        SkipUnlessPartitionsCanBeMade();
        Action<string> log = output.WriteLine;
        await using var lab = await NetworkLab.CreateAsync(Hosts, line => log(line));
        await using var scenario = await Scenario.StartAsync("partition-isolated", output.WriteLine, ClusterSettings.ForTests with { Network = lab });
        log = scenario.Log;
        var isolated = scenario.Cluster.Nodes[Cut];
        await scenario.LoadProgressesAsync(300, Progress);
        // It holds mailboxes of the load, so the majority has some to take over.
        await scenario.MailboxesLiveOnAsync(isolated, scenario.Cluster.Nodes[0], atLeast: 5, Progress);

        // node3 loses node1 and node2, nothing else: it still reaches PostgreSQL, and clients still reach it.
        var cutAt = scenario.Load.Elapsed;
        await lab.CutAsync(CutHost, "node1", "node2");
        // Both sides decide after StableAfter: node3, alone, downs itself (keep-majority) and stops being ready.
        await Eventually.AssertAsync(async () => !isolated.IsRunning || !await isolated.IsReadyAsync(), Progress,
            () => $"{isolated.Name} still ready while cut off from the majority");
        var unreadyAt = scenario.Load.Elapsed;
        scenario.Log($"{isolated.Name} not ready {Seconds(unreadyAt - cutAt)} after the cut");
        // The majority downs node3 and starts its mailboxes: every user is served again, through node1 or node2.
        await scenario.EveryMailboxServesAsync(Progress);
        var servedAt = scenario.Load.Elapsed;
        await scenario.LoadProgressesAsync(200, Progress);

        var healAt = scenario.Load.Elapsed;
        await lab.HealAsync();
        // Downed is final: healed or not, it must not come back as the same member; it exits and is started again.
        Assert.True(await isolated.WaitForExitAsync(Progress), $"{isolated.Name} did not exit after it was downed.\n{isolated.Tail()}");
        scenario.Log($"{isolated.Name} exited with {isolated.ExitCode}, {Seconds(scenario.Load.Elapsed - cutAt)} after the cut");
        var restartAt = scenario.Load.Elapsed;
        await scenario.Cluster.RestartGracefullyAsync(Cut);
        await scenario.LoadProgressesAsync(200, Progress);

        var (load, verifier) = await scenario.FinishAsync();
        var side = IsolatedSide.Of(scenario.Load, isolated.HttpUri, cutAt, restartAt, verifier);
        var windows = Windows.Of(scenario.Load, cutAt, healAt);
        scenario.Log($"cut at {Seconds(cutAt)}: {isolated.Name} unready after {Seconds(unreadyAt - cutAt)}, every user served again " +
            $"by {Seconds(servedAt - cutAt)}, healed at {Seconds(healAt - cutAt)}; {side}; {windows}");
        side.AssertNoFalseSuccess();
        Assert.True(verifier.Ok, verifier.ToString());
        Assert.True(side.Refused > 0, $"the isolated node refused nothing while cut off ({side}): the load did not reach it");
        Scenario.AssertWithin(load, PartitionBounds.Isolated);
    }

    [Fact]
    public async Task Should_answer_503_for_the_mailboxes_of_a_node_cut_off_from_PostgreSQL_and_serve_them_again_once_healed()
    {
        SkipUnlessPartitionsCanBeMade();
        Action<string> log = output.WriteLine;
        await using var lab = await NetworkLab.CreateAsync(Hosts, line => log(line));
        await using var scenario = await Scenario.StartAsync("partition-database", output.WriteLine, ClusterSettings.ForTests with { Network = lab });
        log = scenario.Log;
        var cut = scenario.Cluster.Nodes[Cut];
        await scenario.LoadProgressesAsync(300, Progress);
        // It holds mailboxes of the load, so their users meet the cut.
        await scenario.MailboxesLiveOnAsync(cut, scenario.Cluster.Nodes[0], atLeast: 5, Progress);

        // node3 loses PostgreSQL only: it stays a member, so its mailboxes stay on it and cannot write.
        var cutAt = scenario.Load.Elapsed;
        await lab.CutAsync(CutHost, ITestNetwork.DatabaseHost(0));
        // Its one journal does not answer: not ready (docs/operations.md, "the database is down").
        await Eventually.AssertAsync(async () => !await cut.IsReadyAsync(), Progress,
            () => $"{cut.Name} still ready while cut off from PostgreSQL");
        var unreadyAt = scenario.Load.Elapsed;
        scenario.Log($"{cut.Name} not ready {Seconds(unreadyAt - cutAt)} after the cut");
        // The others keep serving throughout, for longer than the journal's breaker and the downing time together.
        await scenario.LoadProgressesAsync(300, Progress);
        var holdUntil = cutAt + TimeSpan.FromSeconds(25);
        if (scenario.Load.Elapsed < holdUntil)
            await Task.Delay(holdUntil - scenario.Load.Elapsed, TestContext.Current.CancellationToken); // the cut's length, not a wait for anything
        Assert.True(cut.IsRunning, $"{cut.Name} exited while only PostgreSQL was out of its reach.\n{cut.Tail()}");
        Assert.False(await cut.IsReadyAsync(), $"{cut.Name} ready again while still cut off from PostgreSQL");

        var healAt = scenario.Load.Elapsed;
        await lab.HealAsync();
        await Readiness.WaitAsync(cut.Name, cut.HttpUri, Progress, () => cut.IsRunning ? null : $"exited with {cut.ExitCode}", cut.Tail);
        var readyAt = scenario.Load.Elapsed;
        scenario.Log($"{cut.Name} ready again {Seconds(readyAt - healAt)} after the heal (same process, pid {cut.Pid})");
        await scenario.EveryMailboxServesAsync(Progress);
        await scenario.LoadProgressesAsync(200, Progress);

        var (load, verifier) = await scenario.FinishAsync();
        var side = IsolatedSide.Of(scenario.Load, cut.HttpUri, cutAt, healAt, verifier);
        var windows = Windows.Of(scenario.Load, cutAt, healAt);
        scenario.Log($"cut at {Seconds(cutAt)}: {cut.Name} unready after {Seconds(unreadyAt - cutAt)}, healed at {Seconds(healAt - cutAt)}, " +
            $"ready again {Seconds(readyAt - healAt)} after the heal; {side}; {windows}");
        side.AssertNoFalseSuccess();
        Assert.True(verifier.Ok, verifier.ToString());
        Assert.True(windows.Unavailable > 0, $"no client got a 503 while {cut.Name} could not reach PostgreSQL ({windows})");
        Assert.Same(cut, scenario.Cluster.Nodes[Cut]); // served again by the same incarnation: nobody downed it
        Scenario.AssertWithin(load, PartitionBounds.DatabaseCut);
    }

    private static void SkipUnlessPartitionsCanBeMade()
    {
        Assert.SkipUnless(Environment.GetEnvironmentVariable(OptIn) == "1",
            $"opt-in: {OptIn}=1 runs nodes and PostgreSQL in network namespaces and cuts them apart with nftables (docs/operations.md)");
        if (NetworkLab.Unavailable() is { } why)
            Assert.Skip(why);
    }

    private static string Seconds(TimeSpan t) => $"{t.TotalSeconds:0.0} s";
}

/// <summary>
/// What clients of the cut-off node were told between the cut and <c>until</c>, by outcome, and the 200s among them
/// whose message the verifier did not find in both copies (there must be none: a false success).
/// </summary>
internal sealed record IsolatedSide(int Asked, int Ok, int Refused, int Timeouts, int ConnectionErrors, IReadOnlyList<string> FalseSuccesses)
{
    public static IsolatedSide Of(LoadClient load, Uri node, TimeSpan from, TimeSpan until, VerifierResult verifier)
    {
        var answers = load.Answers.Where(a => a.Endpoint == node && a.At >= from && a.At < until).ToList();
        var acks = load.Acks.Where(a => a.Endpoint == node && a.At >= from && a.At < until).ToList();
        var missing = acks.Where(a => !Stored(verifier, a.SenderId, a) || !Stored(verifier, a.RecipientId, a))
            .Select(a => $"{a.ClientMessageId} ({a.SendStatus}, {a.MessageId}) answered 200 by {node} at {a.At.TotalSeconds:0.0} s but not stored in both copies")
            .ToList();
        return new(answers.Count, answers.Count(a => a.Outcome == "200"), answers.Count(a => a.Outcome == "503"),
            answers.Count(a => a.Outcome == "timeout"), answers.Count(a => a.Outcome == "connection error"), missing);
    }

    private static bool Stored(VerifierResult verifier, string owner, AckedSend ack) =>
        verifier.Copies.TryGetValue(owner, out var conversations)
        && conversations.TryGetValue(ack.ConversationId, out var thread)
        && thread.Any(m => m.MessageId == ack.MessageId && m.ClientMessageId == ack.ClientMessageId);

    public void AssertNoFalseSuccess() =>
        Assert.True(FalseSuccesses.Count == 0, string.Join("\n", FalseSuccesses.Take(20)));

    public override string ToString() =>
        $"the cut-off node was asked {Asked} times: {Ok} x 200 (each stored), {Refused} x 503, {Timeouts} timeouts, {ConnectionErrors} connection errors";
}

/// <summary>The users' windows around the cut (<see cref="UserWindows"/>), and the 503s between the cut and the heal.</summary>
internal sealed record Windows(UserWindows Users, long Unavailable)
{
    public static Windows Of(LoadClient load, TimeSpan cut, TimeSpan heal) =>
        new(UserWindows.Of(load, cut, heal), load.Answers.Count(a => a.Outcome == "503" && a.At >= cut && a.At < heal));

    public override string ToString() => $"{Users}; {Unavailable} 503s between the cut and the heal";
}

/// <summary>Bounds on what the load sees in the partition scenarios (docs/operations.md, "The partition scenarios").</summary>
internal static class PartitionBounds
{
    /// <summary>
    /// A node cut off from the other two: for the majority's clients a crash (its mailboxes move after the downing
    /// time); the isolated node answers 503 (or nothing, once it exits) until it is gone from the load balancer.
    /// Seen in two runs: windows of 0.3 and 1.7 s, longest sends 18.4 and 21.6 s, 503s 1.2 and 1.6 %, no timeouts.
    /// </summary>
    public static FaultBounds Isolated => FaultBounds.Crash;

    /// <summary>
    /// A node cut off from PostgreSQL for 25 s: its mailboxes answer 503 throughout (nothing moves them), and a mailbox
    /// whose recovery began during the cut may wait out Akka's 30 s recovery timeout after the heal (seen: one send
    /// 55 and 56 s in two runs), so 25 + 30 s and headroom. The others are served throughout (seen: windows of 0.8 s).
    /// The 503s are the cut-off node's users retrying for the whole cut, so their share grows as the machine slows
    /// (seen: 1.1 and 2.9 %): 10 %.
    /// </summary>
    public static FaultBounds DatabaseCut => new(TimeSpan.FromSeconds(8), TimeSpan.FromSeconds(70), 0.10, 0);
}
