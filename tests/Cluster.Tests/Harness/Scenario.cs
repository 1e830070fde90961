using Xunit;
using System.Diagnostics;
using System.Net.Http.Json;
using System.Text.Json;
using Messaging.Testing;

namespace Messaging.Cluster.Tests.Harness;

/// <summary>Bounds on what the load client sees during one fault (docs/operations.md, "The fault scenarios").</summary>
public sealed record FaultBounds(TimeSpan MaxNoAckWindow, TimeSpan LongestSend, double Max503PerAcknowledged, long MaxTimeouts)
{
    // With the tests' settings (UnreachableAfter 3 s, StableAfter 5 s): failover 13 s; a client's attempt times out
    // after 10 s and the edge's ask after 5 s, so a send caught by a crash waits at most about 13 + 10 + 5 s, and the runs on 2 cores took up to 26 s: 35 s.
    private static readonly TimeSpan Failover = TimeSpan.FromSeconds(3 + 2 * 5);
    private static readonly TimeSpan AttemptTimeout = TimeSpan.FromSeconds(10);
    private static readonly TimeSpan AskTimeout = TimeSpan.FromSeconds(5);

    /// <summary>SIGTERM, one node at a time: shards are handed off, nobody waits long, nothing hangs.</summary>
    public static FaultBounds GracefulRestart => new(TimeSpan.FromSeconds(5), TimeSpan.FromSeconds(15), 0.01, 0);

    /// <summary>
    /// A roll to another release (UpgradeSpecs): as a rolling restart, but a surge node makes four nodes beside the load
    /// on 2 cores, and the first run's longest send was 15.3 s (heartbeats 2-3.6 s late, the shard coordinator waiting
    /// for its state as it moved): 20 s.
    /// </summary>
    public static FaultBounds RollingUpgrade => GracefulRestart with { LongestSend = TimeSpan.FromSeconds(20) };

    /// <summary>A node dies (SIGKILL): its users wait out the failover; the others carry on.</summary>
    public static FaultBounds Crash => new(TimeSpan.FromSeconds(8), Failover + AttemptTimeout + AskTimeout + TimeSpan.FromSeconds(7), 0.05, 0);

    /// <summary>
    /// A node is killed (SIGKILL) and restarted at once at its address (a container restart in the same pod): the new
    /// incarnation's first join attempt downs the old one, so its users wait for the restart (4-6 s here), the removal
    /// and the down-removal margin (StableAfter) instead of the failure detector and the resolver: on 2 cores 13.8 and
    /// 16.1 s against a crash's 18.5 s, and 21.4 and 40.9 s when the restarted node joined in time to be given the
    /// shards cold (docs/operations.md, "Failover after kill -9"); too close to a crash for tighter bounds.
    /// </summary>
    public static FaultBounds CrashRestartedInPlace => Crash;

    /// <summary>A node is paused (SIGSTOP): as a crash, and requests sent to it hang until the attempt timeout.</summary>
    public static FaultBounds Pause => Crash with { MaxTimeouts = 50 };

    /// <summary>
    /// PostgreSQL restarts: every write fails until it is back and the journal's breaker half-opens (3 s). A mailbox
    /// whose recovery started in that moment can wait out Akka's 30 s recovery timeout (seen once in 16 runs: a
    /// snapshot load that never answered), so one send may take that long.
    /// </summary>
    public static FaultBounds DatabaseRestart => new(TimeSpan.FromSeconds(15), TimeSpan.FromSeconds(45), 0.30, 0);
}

/// <summary>
/// One fault scenario: a throwaway PostgreSQL, a cluster on it, a load running throughout, and at the end the load's
/// figures plus the verifier's verdict, logged and written to summary.txt in the run directory.
/// </summary>
public sealed class Scenario : IAsyncDisposable
{
    private readonly Action<string> _output;
    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private readonly StreamWriter _logFile;

    private Scenario(string name, string directory, Action<string> output)
    {
        Name = name;
        Directory = directory;
        _output = output;
        _logFile = new StreamWriter(Path.Combine(directory, "scenario.log")) { AutoFlush = true };
    }

    public string Name { get; }
    public string Directory { get; }
    /// <summary>The (first) PostgreSQL server.</summary>
    public PostgresServer Postgres => Databases.Servers[0];
    /// <summary>Every PostgreSQL server and how the journal is spread over them (<see cref="ClusterOptions.DatabaseServers"/>).</summary>
    public DatabaseLayout Databases { get; private set; } = new([]);
    public TestCluster Cluster { get; private set; } = null!;
    public LoadClient Load { get; private set; } = null!;

    /// <summary>Live-event clients of some users, when the scenario has them.</summary>
    public LiveWatchers? Live { get; private set; }

    /// <summary>Groups sending throughout, when the scenario has them.</summary>
    public GroupLoad? Groups { get; private set; }

    /// <param name="liveUsers">How many of the load's users hold a live event stream throughout.</param>
    /// <param name="streamSlot">The node those streams are held on while it serves.</param>
    /// <param name="groups">Whether groups send throughout as well (<see cref="GroupLoad"/>).</param>
    public static async Task<Scenario> StartAsync(
        string name, Action<string> output, ClusterOptions cluster, int liveUsers = 0, int streamSlot = 0, bool groups = false)
    {
        var scenario = new Scenario(name, Paths.NewRunDirectory(name), output);
        try
        {
            scenario.Log($"run directory {scenario.Directory}");
            var servers = new List<PostgresServer>();
            scenario.Databases = new DatabaseLayout(servers);
            for (var i = 0; i < cluster.DatabaseServers; i++)
                servers.Add(cluster.Network is { } network
                    ? await PostgresServer.StartAsync(scenario.Directory, host: network.AddressOf(ITestNetwork.DatabaseHost(i)),
                        launcher: network.LauncherOf(ITestNetwork.DatabaseHost(i)))
                    : await PostgresServer.StartAsync(scenario.Directory));
            scenario.Log(servers.Count == 1
                ? $"PostgreSQL on port {scenario.Postgres.Port}"
                : $"{servers.Count} PostgreSQL servers on ports {string.Join(", ", servers.Select(s => s.Port))}, partitions {scenario.Databases.PartitionMap}");
            scenario.Cluster = await TestCluster.StartAsync(scenario.Databases, scenario.Directory, scenario.Log, cluster);
            scenario.Load = new LoadClient(() => scenario.Cluster.ServingEndpoints, scenario.Cluster.SigningKey);
            if (liveUsers > 0)
            {
                var nodes = scenario.Cluster;
                scenario.Live = new LiveWatchers(scenario.Load.UserIds.Take(liveUsers).ToList(), () => nodes.ServingEndpoints,
                    () =>
                    {
                        var preferred = nodes.Nodes[streamSlot].HttpUri;
                        return nodes.ServingEndpoints.Contains(preferred) ? preferred : null;
                    },
                    nodes.SigningKey, scenario.Log);
                scenario.Live.Start();
                scenario.Log($"{liveUsers} live clients streaming from slot {streamSlot}");
            }
            scenario.Load.Start();
            if (groups)
            {
                scenario.Groups = new GroupLoad(() => scenario.Cluster.ServingEndpoints, scenario.Cluster.SigningKey, scenario.Log);
                await scenario.Groups.StartAsync(CancellationToken.None);
            }
            scenario.Log($"load started: {scenario.Load.Options.Users} users, {scenario.Load.Options.ContactsPerUser} contacts each");
            return scenario;
        }
        catch
        {
            await scenario.DisposeAsync();
            throw;
        }
    }

    public void Log(string line)
    {
        var stamped = $"[{_clock.Elapsed.TotalSeconds,7:0.0}s] {line}";
        lock (_logFile)
            _logFile.WriteLine(stamped);
        try { _output(stamped); }
        catch (InvalidOperationException) { /* the test's output helper is gone */ }
    }

    /// <summary>Wait until the load has acknowledged <paramref name="more"/> sends beyond what it had.</summary>
    public async Task LoadProgressesAsync(int more, TimeSpan within)
    {
        var start = Load.AcknowledgedCount;
        await Load.WaitForAcksAsync(start + more - 1, within);
        Log($"load: {Load.Report()}");
    }

    /// <summary>Wait until every user has had a send acknowledged after now: every mailbox is served again.</summary>
    public async Task EveryMailboxServesAsync(TimeSpan within)
    {
        var since = Load.Acks.Count;
        await Eventually.AssertAsync(() =>
        {
            var recent = Load.Acks.Skip(since).Select(a => a.SenderId).ToHashSet();
            return Task.FromResult(recent.Count == Load.UserIds.Count);
        }, within, () =>
        {
            var recent = Load.Acks.Skip(since).Select(a => a.SenderId).ToHashSet();
            return $"{Load.UserIds.Count - recent.Count} users had no send acknowledged, e.g. {string.Join(", ", Load.UserIds.Except(recent).Take(5))}";
        });
        Log($"every user had a send acknowledged; load: {Load.Report()}");
    }

    private static readonly HttpClient Admin = new() { Timeout = TimeSpan.FromSeconds(30) };

    /// <summary>
    /// Wait until at least <paramref name="atLeast"/> of the load's users have their mailbox on <paramref name="node"/>,
    /// as <paramref name="via"/> sees it (without starting any): a fault on that node then has users to affect. Shards
    /// allocated before the youngest node's region registered stay elsewhere until a rebalance moves some.
    /// </summary>
    public async Task<int> MailboxesLiveOnAsync(NodeProcess node, NodeProcess via, int atLeast, TimeSpan within)
    {
        var on = 0;
        await Eventually.AssertAsync(async () =>
        {
            on = 0;
            foreach (var user in Load.UserIds)
            {
                var response = await Admin.SendAsync(Api.Authorized(HttpMethod.Get,
                    new Uri(via.AdminUri, $"/admin/mailboxes/{Uri.EscapeDataString(user)}?status=false"), Cluster.AdminToken));
                if (!response.IsSuccessStatusCode)
                    return false;
                var view = await response.Content.ReadFromJsonAsync<JsonElement>();
                if (view.GetProperty("node").GetString() == node.AkkaAddress)
                    on++;
            }
            return on >= atLeast;
        }, within, () => $"only {on} of {Load.UserIds.Count} users' mailboxes on {node.Name}, wanted {atLeast}", TimeSpan.FromSeconds(1));
        Log($"{on} of {Load.UserIds.Count} users' mailboxes live on {node.Name}");
        return on;
    }

    /// <summary>Wait until <paramref name="via"/> no longer counts <paramref name="gone"/> as a member: downed and removed.</summary>
    public async Task MemberRemovedAsync(NodeProcess gone, NodeProcess via, TimeSpan within)
    {
        var status = "?";
        await Eventually.AssertAsync(async () =>
        {
            var response = await Admin.SendAsync(Api.Authorized(HttpMethod.Get, new Uri(via.AdminUri, "/admin/cluster"), Cluster.AdminToken));
            if (!response.IsSuccessStatusCode)
                return false;
            var view = await response.Content.ReadFromJsonAsync<JsonElement>();
            var member = view.GetProperty("members").EnumerateArray()
                .Where(m => m.GetProperty("address").GetString() == gone.AkkaAddress)
                .Select(m => m.GetProperty("status").GetString())
                .FirstOrDefault();
            status = member ?? "removed";
            return member is null;
        }, within, () => $"{via.Name} still counts {gone.Name} as a member ({status})", TimeSpan.FromMilliseconds(500));
        Log($"{via.Name} removed {gone.Name} from the cluster");
    }

    /// <param name="oneClock">False where a node's clock is wrong on purpose (see <see cref="Verifier"/>).</param>
    public async Task<(LoadReport Load, VerifierResult Verifier)> FinishAsync(bool oneClock = true)
    {
        var report = await Load.StopAsync();
        Log($"load stopped: {report}");
        if (Groups is not null)
            await Groups.StopAsync();
        var verifier = new Verifier(() => Cluster.ServingEndpoints, Cluster.SigningKey, Log, oneClock);
        var result = await verifier.VerifyAsync(Load, deliveryWithin: TimeSpan.FromSeconds(60));
        if (Groups is not null && await Groups.VerifyAsync(TimeSpan.FromSeconds(60)) is { Count: > 0 } groupViolations)
            result = result with { Ok = false, Violations = [.. result.Violations, .. groupViolations] };
        if (Live is not null)
        {
            Log($"live: {Live.Report()}");
            var live = await Live.CheckAsync(result.Copies, TimeSpan.FromSeconds(30));
            if (live.Count > 0)
                result = result with { Ok = false, Violations = [.. result.Violations, .. live] };
            Log(live.Count == 0
                ? $"live: every change reached each of {Live.Users.Count} live clients as an event or in a catch-up; no id, marker or receipt moved back"
                : $"live: {live.Count} violation(s)");
        }
        string? placement = null;
        if (Databases.Servers.Count > 1)
        {
            IEnumerable<string> users = [.. Load.UserIds, .. Groups?.Made.SelectMany(g => g.Members) ?? []];
            var entities = users.Select(u => $"mailbox-{u}").Concat(Groups?.Made.Select(g => $"group-{g.GroupId}") ?? []).ToList();
            var placed = await Placement.CheckAsync(Databases, entities);
            if (placed.Violations.Count > 0)
                result = result with { Ok = false, Violations = [.. result.Violations, .. placed.Violations] };
            placement = $"placement ({entities.Count} entities, partitions {Databases.PartitionMap}): " +
                (placed.Violations.Count == 0 ? "each on the server of its partition only; " : $"{placed.Violations.Count} violation(s); ") + placed.Summary;
            Log(placement);
        }
        Log($"verifier: {result}");

        var summary = string.Join('\n',
            $"scenario: {Name}",
            $"sends attempted (requests): {report.Attempts}",
            $"sends acknowledged: {report.Acknowledged}",
            $"503s: {report.Unavailable503}",
            $"timeouts: {report.Timeouts}, connection errors: {report.ConnectionErrors}, 429s: {report.RateLimited}, other failures: {report.OtherFailures}",
            $"max window with no acknowledged send: {report.MaxNoAckWindow.TotalSeconds:0.00} s",
            $"longest single send (first attempt to acknowledgement): {report.LongestSend.TotalSeconds:0.00} s",
            $"load duration: {report.Duration.TotalSeconds:0} s",
            $"verifier: {result}",
            placement ?? "placement: one database server",
            report.Problems.Count == 0 ? "client problems: none" : $"client problems:\n  {string.Join("\n  ", report.Problems.Take(30))}");
        await File.WriteAllTextAsync(Path.Combine(Directory, "summary.txt"), summary + "\n");
        Log($"SUMMARY\n{summary}");
        return (report, result);
    }

    /// <summary>
    /// What the client may see during a scenario, as docs/operations.md states it: every send acknowledged by the drain
    /// deadline, no contract violation, and the windows and counts of trouble within the scenario's bounds.
    /// </summary>
    public static void AssertWithin(LoadReport load, FaultBounds bounds)
    {
        Assert.Empty(load.Problems);
        Assert.True(load.AbortedAtDrain == 0, $"{load.AbortedAtDrain} sends still unacknowledged at the drain deadline");
        Assert.True(load.MaxNoAckWindow <= bounds.MaxNoAckWindow,
            $"no send was acknowledged for {load.MaxNoAckWindow.TotalSeconds:0.00} s (bound {bounds.MaxNoAckWindow.TotalSeconds} s)");
        Assert.True(load.LongestSend <= bounds.LongestSend,
            $"one send took {load.LongestSend.TotalSeconds:0.00} s to be acknowledged (bound {bounds.LongestSend.TotalSeconds} s)");
        Assert.True(load.Unavailable503 <= load.Acknowledged * bounds.Max503PerAcknowledged,
            $"{load.Unavailable503} 503s for {load.Acknowledged} acknowledged sends (bound {bounds.Max503PerAcknowledged:P0})");
        Assert.True(load.Timeouts <= bounds.MaxTimeouts, $"{load.Timeouts} requests got no answer in time (bound {bounds.MaxTimeouts})");
    }

    public async ValueTask DisposeAsync()
    {
        if (Live is not null)
            await Live.DisposeAsync();
        if (Groups is not null)
            await Groups.DisposeAsync();
        if (Load is not null)
            await Load.DisposeAsync();
        if (Cluster is not null)
            await Cluster.DisposeAsync();
        foreach (var server in Databases.Servers)
            await server.DisposeAsync();
        Log("cleaned up");
        await _logFile.DisposeAsync();
    }
}
