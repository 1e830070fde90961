using System.Diagnostics;
using System.Text.Json;
using Messaging.Cluster.Tests.Harness;
using Xunit;

namespace Messaging.Cluster.Tests;

/// <summary>
/// Every admin command, run as an operator would (`dotnet Messaging.Node.dll admin ...`, a separate process), against
/// three node processes on loopback over a throwaway PostgreSQL; each answer is checked against the cluster's state.
/// </summary>
public sealed class AdminCommandSpecs(ITestOutputHelper output)
{
    private static readonly TimeSpan Within = TimeSpan.FromSeconds(45);
    private readonly Stopwatch _clock = Stopwatch.StartNew();

    private sealed record Run(int Exit, string Out, string Err)
    {
        public JsonElement Json => JsonDocument.Parse(Out).RootElement.Clone();
    }

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Should_show_and_steer_a_three_node_cluster_with_every_admin_command()
    {
        var directory = Paths.NewRunDirectory("admin");
        await using var postgres = await PostgresServer.StartAsync(directory);
        await using var cluster = await TestCluster.StartAsync(postgres, directory, output.WriteLine, new ClusterOptions
        {
            Nodes = 3,
            Environment = new Dictionary<string, string>
            {
                ["Messaging__Cluster__UnreachableAfter"] = "00:00:03",
                // Long enough that the split brain resolver leaves the frozen node to down-unreachable below;
                // also the down-removal margin before a downed node's mailboxes start elsewhere.
                ["Messaging__Cluster__StableAfter"] = "00:00:20",
            },
        });
        var (n1, n2, n3) = (cluster.Nodes[0], cluster.Nodes[1], cluster.Nodes[2]);

        async Task<Run> Admin(NodeProcess node, params string[] args) =>
            await RunAdmin([.. args, "--node", node.AdminUri.ToString(), "--token", cluster.AdminToken]);

        // ---- cluster show: three members Up, one leader, the same view from every node ----
        string[] addresses = [n1.AkkaAddress, n2.AkkaAddress, n3.AkkaAddress];
        foreach (var node in cluster.Nodes)
        {
            await Until(async () =>
            {
                var view = (await Ok(Admin(node, "cluster", "show", "--json"))).Json;
                var members = view.GetProperty("members").EnumerateArray().ToList();
                return members.Count == 3
                       && members.All(m => m.GetProperty("status").GetString() == "Up" && m.GetProperty("reachable").GetBoolean())
                       && members.Select(m => m.GetProperty("address").GetString()).Order().SequenceEqual(addresses.Order())
                       && view.GetProperty("self").GetString() == node.AkkaAddress;
            }, $"{node.Name} never saw three reachable members Up");
        }
        var leaders = new HashSet<string?>();
        foreach (var node in cluster.Nodes)
            leaders.Add((await Ok(Admin(node, "cluster", "show", "--json"))).Json.GetProperty("leader").GetString());
        Assert.Single(leaders);
        Assert.Contains(leaders.Single(), addresses);
        var table = await Ok(Admin(n2, "cluster", "show"));
        Assert.Contains("3 members, 3 Up, 0 unreachable", table.Out);
        Assert.Contains($"leader {leaders.Single()}", table.Out);

        // ---- mailboxes: 12 users in a ring, each sends to the next: exactly 12 mailboxes exist ----
        var users = Enumerable.Range(0, 12).Select(i => $"ring{i}").ToArray();
        using (var http = new HttpClient { Timeout = TimeSpan.FromSeconds(30) })
        {
            for (var i = 0; i < users.Length; i++)
            {
                var node = cluster.Nodes[i % 3];
                var request = Api.Authorized(HttpMethod.Post, new Uri(node.HttpUri, "/v1/messages"),
                    Api.Token(cluster.SigningKey, users[i]),
                    new { recipientIds = new[] { users[(i + 1) % users.Length] }, message = $"hello {i}", clientMessageId = $"ring-{i}" });
                using var response = await http.SendAsync(request, Ct);
                Assert.True(response.IsSuccessStatusCode, await response.Content.ReadAsStringAsync(Ct));
            }
        }

        // ---- sharding stats: sums to the mailboxes created, from any node ----
        JsonElement stats = default;
        await Until(async () =>
        {
            stats = (await Ok(Admin(n3, "sharding", "stats", "--json"))).Json;
            return stats.GetProperty("entities").GetInt32() == users.Length;
        }, "sharding stats never counted the 12 mailboxes");
        var perNode = stats.GetProperty("nodes").EnumerateArray().ToList();
        Assert.Equal(users.Length, perNode.Sum(n => n.GetProperty("entities").GetInt32()));
        Assert.Equal(stats.GetProperty("hostedShards").GetInt32(), perNode.Sum(n => n.GetProperty("shards").GetInt32()));
        Assert.All(perNode, n => Assert.Contains(n.GetProperty("address").GetString(), addresses));
        Assert.Contains("12 active mailboxes", (await Ok(Admin(n1, "sharding", "stats"))).Out);

        var regions = (await Ok(Admin(n1, "sharding", "regions", "--json"))).Json;
        Assert.Equal(["delivery-index", "group", "mailbox"], regions.EnumerateArray().Select(r => r.GetProperty("typeName").GetString()).Order());
        foreach (var region in regions.EnumerateArray())
            Assert.Equal(addresses.Order(), region.GetProperty("nodes").EnumerateArray().Select(a => a.GetString()).Order());

        // ---- mailbox and shard agree, asked from different nodes; every user is where its shard is ----
        // Every other user (each admin call is a process start): asked from each node in turn.
        foreach (var (user, i) in users.Select((u, i) => (u, i)).Where(x => x.i % 2 == 0))
        {
            var mailbox = (await Ok(Admin(cluster.Nodes[i % 3], "mailbox", user, "--no-start", "--json"))).Json;
            Assert.True(mailbox.GetProperty("active").GetBoolean(), $"{user} should be active");
            var shard = (await Ok(Admin(cluster.Nodes[(i + 1) % 3], "sharding", "shard", mailbox.GetProperty("shardId").GetString()!, "--json"))).Json;
            Assert.Equal(mailbox.GetProperty("node").GetString(), shard.GetProperty("node").GetString());
            Assert.Contains(user, shard.GetProperty("entities").EnumerateArray().Select(e => e.GetString()));
            var hostStats = perNode.Single(n => n.GetProperty("address").GetString() == shard.GetProperty("node").GetString());
            Assert.True(hostStats.GetProperty("entities").GetInt32() >= shard.GetProperty("entityCount").GetInt32());
        }
        var status = (await Ok(Admin(n2, "mailbox", users[0], "--json"))).Json;
        Assert.False(status.GetProperty("startedByQuery").GetBoolean());
        Assert.True(status.GetProperty("sequenceNr").GetInt64() >= 2, "one message sent and one received: at least two events");
        Assert.Equal(2, status.GetProperty("conversations").GetInt32()); // it wrote to ring1 and heard from ring11
        var mailboxTable = await Ok(Admin(n1, "mailbox", users[0]));
        Assert.Matches($@"node\s+{System.Text.RegularExpressions.Regex.Escape(status.GetProperty("node").GetString()!)}", mailboxTable.Out);

        // ---- errors: bad token, unreachable node, unknown address, usage ----
        var badToken = await RunAdmin(["cluster", "show", "--node", n1.AdminUri.ToString(), "--token", "wrong-token-wrong-token"]);
        Assert.Equal(4, badToken.Exit);
        Assert.Contains("refused the admin token", badToken.Err);
        var unreachable = await RunAdmin(["cluster", "show", "--node", $"http://127.0.0.1:{FreePorts.Next()}", "--token", cluster.AdminToken]);
        Assert.Equal(3, unreachable.Exit);
        Assert.Contains("cannot reach", unreachable.Err);
        var unknown = await Admin(n1, "cluster", "down", "akka.tcp://messaging@127.0.0.1:1");
        Assert.Equal(1, unknown.Exit);
        Assert.Contains("no cluster member has the address akka.tcp://messaging@127.0.0.1:1", unknown.Err);
        Assert.Equal(2, (await Admin(n1, "cluster", "frobnicate")).Exit);

        // ---- down-unreachable: a frozen node becomes unreachable and is downed and removed ----
        cluster.Freeze(2);
        await Until(async () => (await Ok(Admin(n1, "cluster", "show", "--json"))).Json.GetProperty("members").EnumerateArray()
            .Any(m => m.GetProperty("address").GetString() == n3.AkkaAddress && !m.GetProperty("reachable").GetBoolean()),
            "node3 never became unreachable");
        Assert.Contains("1 unreachable", (await Ok(Admin(n1, "cluster", "show"))).Out);
        var downed = (await Ok(Admin(n1, "cluster", "down-unreachable", "--json"))).Json;
        Assert.Equal(n3.AkkaAddress, Assert.Single(downed.EnumerateArray()).GetProperty("address").GetString());
        await Until(async () => Members(await Ok(Admin(n1, "cluster", "show", "--json"))).SequenceEqual(new[] { n1.AkkaAddress, n2.AkkaAddress }.Order()),
            "node3 was never removed after down-unreachable");
        await cluster.KillAsync(2); // removed from the cluster; a frozen process would only hold up the teardown

        // ---- down: a running member is downed and removed; its process exits ----
        var down = await Ok(Admin(n1, "cluster", "down", n2.AkkaAddress));
        Assert.Contains(n2.AkkaAddress, down.Out);
        await Until(async () => Members(await Ok(Admin(n1, "cluster", "show", "--json"))).SequenceEqual([n1.AkkaAddress]),
            "node2 was never removed after cluster down");
        Assert.True(await n2.WaitForExitAsync(Within), "a downed node's process should exit");

        // The mailboxes move to the one node left (after the down-removal margin): asking for one starts it there.
        await Until(async () =>
        {
            var moved = await Admin(n1, "mailbox", users[1], "--json");
            return moved.Exit == 0 && moved.Json.GetProperty("node").GetString() == n1.AkkaAddress;
        }, "ring1's mailbox never answered from the last node");

        // ---- leave: the last node leaves; the command answers, then the process exits ----
        var leave = await Ok(Admin(n1, "cluster", "leave"));
        Assert.Contains("Leaving", leave.Out);
        Assert.True(await n1.WaitForExitAsync(Within), "a node that left should exit");
    }

    private static IEnumerable<string?> Members(Run show) =>
        show.Json.GetProperty("members").EnumerateArray().Select(m => m.GetProperty("address").GetString()).Order();

    private async Task<Run> Ok(Task<Run> command)
    {
        var run = await command;
        Assert.True(run.Exit == 0, $"admin exited {run.Exit}: {run.Err}");
        return run;
    }

    private static async Task Until(Func<Task<bool>> condition, string failure) =>
        await Eventually.AssertAsync(condition, Within, () => failure, TimeSpan.FromMilliseconds(500));

    /// <summary>The node binary's admin command as its own process, as an operator runs it.</summary>
    private async Task<Run> RunAdmin(string[] args)
    {
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        start.ArgumentList.Add(Repository.NodeDll);
        start.ArgumentList.Add("admin");
        foreach (var arg in args)
            start.ArgumentList.Add(arg);
        start.Environment["Messaging__DataDirectory"] = Path.Combine(Path.GetTempPath(), "messaging-admin-cli"); // no token file there
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        await process.WaitForExitAsync(deadline.Token);
        var run = new Run(process.ExitCode, await stdout, await stderr);
        output.WriteLine($"[{_clock.Elapsed.TotalSeconds,6:0.0}s] $ admin {string.Join(' ', args.TakeWhile(a => a != "--node"))} -> {run.Exit}{(run.Err.Length > 0 ? " " + run.Err.Trim() : "")}");
        return run;
    }
}
