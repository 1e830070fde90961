using Messaging.Cluster.Tests.Harness;
using Xunit;

namespace Messaging.Cluster.Tests;

/// <summary>
/// Three node processes on loopback over a throwaway PostgreSQL, 50 users sending throughout (and, in the rolling
/// restart and the kill, three groups of five), and the verifier at the end: nothing acknowledged is lost, duplicated
/// or reordered whatever happens to the nodes or the database.
/// </summary>
public sealed class ClusterFailoverSpecs(ITestOutputHelper output)
{
    private static readonly TimeSpan Progress = TimeSpan.FromSeconds(60);

    [Fact]
    public async Task Should_lose_duplicate_or_reorder_nothing_acknowledged_through_a_rolling_restart_with_SIGTERM()
    {
        // Live clients hold their streams on the node restarted last, and reconnect with their last id when it goes.
        await using var scenario = await Scenario.StartAsync("rolling-restart", output.WriteLine, ClusterSettings.ForTests, liveUsers: 10, streamSlot: 2, groups: true);
        await scenario.LoadProgressesAsync(200, Progress);
        for (var slot = 0; slot < scenario.Cluster.Nodes.Count; slot++)
        {
            await scenario.Cluster.RestartGracefullyAsync(slot);
            await scenario.LoadProgressesAsync(200, Progress);
        }
        await scenario.EveryMailboxServesAsync(Progress);

        var (load, verifier) = await scenario.FinishAsync();
        Assert.True(verifier.Ok, verifier.ToString());
        Scenario.AssertWithin(load, FaultBounds.GracefulRestart);
    }

    /// <summary>
    /// On two database servers (the journal's partitions split between them, snapshots every 100 events), so the
    /// verifier also checks that every mailbox's and group's events, snapshots and writer claims are on the server its
    /// partition names and on no other, while mailboxes move between nodes.
    /// </summary>
    [Fact]
    public async Task Should_lose_duplicate_or_reorder_nothing_acknowledged_when_a_node_is_killed_and_replaced()
    {
        // Live clients hold their streams on slot 1, which stays up while the mailboxes of slot 0 move under them.
        var settings = ClusterSettings.ForTests with
        {
            DatabaseServers = 2,
            Environment = new Dictionary<string, string>(ClusterSettings.ForTests.Environment) { ["Messaging__Mailbox__SnapshotEvery"] = "100" },
        };
        await using var scenario = await Scenario.StartAsync("sigkill", output.WriteLine, settings, liveUsers: 10, streamSlot: 1, groups: true);
        await scenario.LoadProgressesAsync(300, Progress);

        // Slot 0 is the oldest node: it also hosts the shard coordinator, which must move too.
        var killed = scenario.Load.Elapsed;
        await scenario.Cluster.KillAsync(0);
        await scenario.EveryMailboxServesAsync(Progress);
        var served = scenario.Load.Elapsed;
        await scenario.Cluster.ReplaceAsync(0);
        await scenario.LoadProgressesAsync(200, Progress);

        var (load, verifier) = await scenario.FinishAsync();
        scenario.Log($"windows around the kill: {UserWindows.Of(scenario.Load, killed, served)}");
        Assert.True(verifier.Ok, verifier.ToString());
        Scenario.AssertWithin(load, FaultBounds.Crash);
    }

    /// <summary>
    /// A kill -9 as Kubernetes meets it when the pod stays: the container restarts at once at the same address (pod IP,
    /// port 4053) with a new uid. The members down the old incarnation when the new one asks to join, without waiting
    /// for the failure detector or the Split Brain Resolver; its mailboxes start elsewhere after the down-removal margin.
    /// The oldest node is killed, so the shard coordinator moves too.
    /// </summary>
    [Fact]
    public async Task Should_serve_a_killed_nodes_users_again_soon_when_it_restarts_at_the_same_address()
    {
        await using var scenario = await Scenario.StartAsync("sigkill-restart", output.WriteLine, ClusterSettings.ForTests, groups: true);
        await scenario.LoadProgressesAsync(300, Progress);

        var killed = scenario.Load.Elapsed;
        var restarted = await scenario.Cluster.KillAndRestartAsync(0);
        await scenario.EveryMailboxServesAsync(Progress);
        var served = scenario.Load.Elapsed;
        await restarted.WaitReadyAsync(scenario.Cluster.Options.ReadyWithin);
        scenario.Log($"{restarted.Name} #{restarted.Incarnation} ready {(scenario.Load.Elapsed - killed).TotalSeconds:0.0} s after the kill");
        await scenario.LoadProgressesAsync(200, Progress);

        var (load, verifier) = await scenario.FinishAsync();
        var windows = UserWindows.Of(scenario.Load, killed, served);
        scenario.Log($"windows around the kill: {windows}");
        Assert.True(verifier.Ok, verifier.ToString());
        Scenario.AssertWithin(load, FaultBounds.CrashRestartedInPlace);
        Assert.True(windows.Longest <= FaultBounds.CrashRestartedInPlace.LongestSend,
            $"a user went {windows.Longest.TotalSeconds:0.0} s without an acknowledgement (bound {FaultBounds.CrashRestartedInPlace.LongestSend.TotalSeconds} s): {windows}");
    }

    [Fact]
    public async Task Should_lose_duplicate_or_reorder_nothing_acknowledged_when_PostgreSQL_restarts_immediately()
    {
        await using var scenario = await Scenario.StartAsync("postgres-restart", output.WriteLine, ClusterSettings.ForTests);
        await scenario.LoadProgressesAsync(300, Progress);

        scenario.Log("pg_ctl restart -m immediate");
        await scenario.Postgres.RestartAsync();
        scenario.Log("PostgreSQL back");
        await scenario.EveryMailboxServesAsync(Progress);
        await scenario.LoadProgressesAsync(200, Progress);

        var (load, verifier) = await scenario.FinishAsync();
        Assert.True(verifier.Ok, verifier.ToString());
        Scenario.AssertWithin(load, FaultBounds.DatabaseRestart);
    }

    [Fact]
    public async Task Should_never_let_a_frozen_minority_node_write_once_the_majority_has_taken_over()
    {
        await using var scenario = await Scenario.StartAsync("sigstop", output.WriteLine, ClusterSettings.ForTests);
        await scenario.LoadProgressesAsync(300, Progress);

        // The youngest node is frozen: the load goes to the two others, which must down it and take its mailboxes.
        // It must hold mailboxes of the load (or the majority has nothing to take over), and it is thawed only once the
        // majority has downed and removed it (a thaw before the failure detector noticed tests nothing).
        const int minority = 2;
        var frozen = scenario.Cluster.Nodes[minority];
        var majority = scenario.Cluster.Nodes[0];
        await scenario.MailboxesLiveOnAsync(frozen, majority, atLeast: 5, Progress);
        scenario.Cluster.Freeze(minority);
        await scenario.EveryMailboxServesAsync(Progress);
        await scenario.MemberRemovedAsync(frozen, majority, Progress);
        await scenario.LoadProgressesAsync(200, Progress);

        scenario.Cluster.Thaw(minority);
        // Woken up, it finds itself downed and must stop serving (it shuts down) rather than write beside the majority.
        await Eventually.AssertAsync(async () => !frozen.IsRunning || !await frozen.IsReadyAsync(), TimeSpan.FromSeconds(60),
            () => $"{frozen.Name} still ready after it was downed");
        Assert.True(await frozen.WaitForExitAsync(TimeSpan.FromSeconds(60)), $"{frozen.Name} did not shut down after it was downed.\n{frozen.Tail()}");
        scenario.Log($"{frozen.Name} shut itself down (exit code {frozen.ExitCode})");

        await scenario.Cluster.RestartGracefullyAsync(minority);
        await scenario.LoadProgressesAsync(200, Progress);

        var (load, verifier) = await scenario.FinishAsync();
        Assert.True(verifier.Ok, verifier.ToString());
        Scenario.AssertWithin(load, FaultBounds.Pause);
    }
}
