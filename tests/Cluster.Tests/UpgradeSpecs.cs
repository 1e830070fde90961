using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Messaging.Cluster.Tests.Harness;
using Xunit;

namespace Messaging.Cluster.Tests;

/// <summary>
/// A rolling upgrade from the previous release to this build and a rollback of one node, under the 1:1 load
/// (docs/operations.md, "Upgrades and rollbacks"). Opt-in, MESSAGING_UPGRADE_TEST=1: it builds the previous release
/// from git first and runs for minutes. MESSAGING_UPGRADE_FROM names the previous release's commit.
/// </summary>
public sealed class UpgradeSpecs(ITestOutputHelper output)
{
    public const string OptIn = "MESSAGING_UPGRADE_TEST";
    private static readonly TimeSpan Progress = TimeSpan.FromSeconds(60);
    private static readonly HttpClient Http = new() { Timeout = TimeSpan.FromSeconds(15) };
    private string _signingKey = "";

    [Fact]
    public async Task Should_lose_duplicate_or_reorder_nothing_acknowledged_through_a_rolling_upgrade_and_a_rollback_of_one_node()
    {
        Assert.SkipUnless(Environment.GetEnvironmentVariable(OptIn) == "1",
            $"opt-in: {OptIn}=1 builds the previous release from git and rolls a cluster to this one (docs/operations.md)");

        var previous = await PreviousRelease.BuildAsync(output.WriteLine);
        var current = new NodeBuild("current", null, CurrentRelease());
        // Groups came with 1.2.0: from an older release they are gated (off while an old node is a member); from 1.2.0
        // on they run all along, in the group load beside the 1:1 load and on the way back too.
        var groupsGated = ReleaseOf(previous.AppVersion!) < new Version(1, 2, 0);
        // Live clients (with their receipts) on each node in turn, from a release that has them (1.1.0 and later).
        await using var scenario = await Scenario.StartAsync("upgrade", output.WriteLine, ClusterSettings.ForTests with { Build = previous },
            liveUsers: 10, streamSlot: 0, groups: !groupsGated);
        var cluster = scenario.Cluster;
        _signingKey = cluster.SigningKey;
        scenario.Log($"from {previous.Label} (app-version {previous.AppVersion}) to the current build (app-version {current.AppVersion})");
        var started = new List<NodeProcess>(cluster.Nodes);
        var oldNodes = cluster.Nodes.ToList();
        await scenario.LoadProgressesAsync(200, Progress);

        // The roll, as a Deployment with maxSurge 1 and maxUnavailable 0 does it: a new node is Up before an old one leaves.
        var newNodes = new List<NodeProcess>();
        foreach (var old in oldNodes)
        {
            var next = await cluster.AddAsync(current);
            started.Add(next);
            newNodes.Add(next);
            if (groupsGated)
            {
                // Old nodes are still members: groups stay off on every new node, and nothing of them is stored.
                foreach (var node in newNodes)
                    await ExpectStatusAsync(scenario, node, "alice", HttpMethod.Post, "/v1/groups", NewGroup("alice", "mixed"), HttpStatusCode.ServiceUnavailable);
                await ExpectStatusAsync(scenario, old, "alice", HttpMethod.Post, "/v1/groups", NewGroup("alice", "old"), HttpStatusCode.NotFound);
            }
            else
            {
                // Both releases have groups: a mixed cluster creates them on either.
                await UntilStatusAsync(scenario, next, "alice", HttpMethod.Post, "/v1/groups", NewGroup("alice", "mixed"), HttpStatusCode.Created, Progress);
                await UntilStatusAsync(scenario, old, "alice", HttpMethod.Post, "/v1/groups", NewGroup("alice", "old"), HttpStatusCode.Created, Progress);
            }
            await StaysUpUntilReplacedAsync(cluster, old);
            await scenario.LoadProgressesAsync(200, Progress);
        }

        // Every member runs the current release: groups turn on once the last old node's removal has been gossiped.
        string? groupId = null;
        string[] members = ["gm0-upg", "gm1-upg", "gm2-upg", "gm3-upg"];
        foreach (var node in newNodes)
        {
            var body = new { name = $"upgrade {node.Name}", memberIds = members[1..], clientRequestId = $"upgrade-{node.Name}" };
            var created = await UntilStatusAsync(scenario, node, members[0], HttpMethod.Post, "/v1/groups", body, HttpStatusCode.Created, Progress);
            groupId ??= created.GetProperty("conversationId").GetString();
            scenario.Log($"{node.Name}: POST /v1/groups 201 ({created.GetProperty("conversationId").GetString()})");
        }
        var groupSends = new List<(string Sender, string Text)>();
        for (var n = 0; n < 12; n++)
        {
            var sender = members[n % members.Length];
            var text = $"{sender} upgrade #{n}";
            var body = new { conversationId = groupId, message = text, clientMessageId = $"upg-{n}" };
            await UntilStatusAsync(scenario, newNodes[n % newNodes.Count], sender, HttpMethod.Post, "/v1/messages", body, HttpStatusCode.Created, Progress);
            groupSends.Add((sender, text));
        }
        scenario.Log($"group {groupId}: {groupSends.Count} sends acknowledged");
        await scenario.LoadProgressesAsync(200, Progress);

        // Roll back one node: an old node joins, then a new one leaves. Groups are off again, as soon as its join is seen.
        var back = await cluster.AddAsync(previous);
        started.Add(back);
        oldNodes.Add(back);
        if (groupsGated)
        {
            foreach (var node in newNodes)
            {
                await UntilStatusAsync(scenario, node, members[0], HttpMethod.Post, "/v1/groups", NewGroup(members[0], "rollback"), HttpStatusCode.ServiceUnavailable, TimeSpan.FromSeconds(30));
                scenario.Log($"{node.Name}: POST /v1/groups 503 with {back.Name} of the previous release a member");
            }
        }
        await StaysUpUntilReplacedAsync(cluster, newNodes[0]);
        newNodes.RemoveAt(0);
        foreach (var node in newNodes)
        {
            var body = new { conversationId = groupId, message = "after the rollback", clientMessageId = "upg-rollback" };
            if (groupsGated)
            {
                await ExpectStatusAsync(scenario, node, members[1], HttpMethod.Post, "/v1/messages", body, HttpStatusCode.ServiceUnavailable);
                await ExpectStatusAsync(scenario, node, members[1], HttpMethod.Get, $"/v1/groups/{groupId}", null, HttpStatusCode.ServiceUnavailable);
            }
        }
        if (!groupsGated)
        {
            // The group goes on through the node of the previous release and the current ones alike.
            for (var n = 12; n < 18; n++)
            {
                var sender = members[n % members.Length];
                var text = $"{sender} upgrade #{n}";
                var node = n % 2 == 0 ? back : newNodes[n % newNodes.Count];
                await UntilStatusAsync(scenario, node, sender, HttpMethod.Post, "/v1/messages",
                    new { conversationId = groupId, message = text, clientMessageId = $"upg-{n}" }, HttpStatusCode.Created, Progress);
                groupSends.Add((sender, text));
            }
            scenario.Log($"group {groupId}: {groupSends.Count} sends acknowledged, 6 of them after the rollback (3 through {back.Name})");
        }
        await scenario.LoadProgressesAsync(200, Progress);
        await scenario.EveryMailboxServesAsync(Progress);

        // What was stored while groups were on is all still there: every member's copy, once and in one order.
        await GroupCopiesAreWholeAsync(scenario, newNodes[0], groupId!, members, groupSends);

        var (load, verifier) = await scenario.FinishAsync();
        var exits = string.Join(", ", started.Where(n => !n.IsRunning).Select(n => $"{n.Name} ({cluster.BuildOf(n).Label}) {n.ExitCode}"));
        scenario.Log($"exits: {exits}");
        var findings = started.Select(node => (node, Findings: LogFindings(node))).ToList();
        foreach (var (node, found) in findings)
            scenario.Log($"{node.Name} ({cluster.BuildOf(node).Label}): {found.Text}");
        Assert.True(verifier.Ok, verifier.ToString());
        Assert.All(findings, f => Assert.True(f.Findings.Unrecovered == 0, $"{f.node.Name}: {f.Findings.Text}"));
        Scenario.AssertWithin(load, FaultBounds.RollingUpgrade);
    }

    /// <summary>The release at the head of an app-version (1.3.0 of 1.3.0-rc1 or 1.3.0+3-abc).</summary>
    private static Version ReleaseOf(string appVersion) => Version.Parse(appVersion.Split('-', '+')[0]);

    /// <summary>The release of the node built beside these tests (Version in src/Node/Node.csproj).</summary>
    private static string CurrentRelease() =>
        FileVersionInfo.GetVersionInfo(Repository.NodeDll).ProductVersion?.Split('+')[0]
        ?? throw new InvalidOperationException("the node has no product version");

    private static object NewGroup(string creator, string label) =>
        new { name = $"{label} {creator}", memberIds = new[] { "gx1-upg", "gx2-upg" }, clientRequestId = $"{label}-{Guid.NewGuid():N}" };

    /// <summary>The node was running until now (it never exited on its own), and exits 0 on SIGTERM.</summary>
    private static async Task StaysUpUntilReplacedAsync(TestCluster cluster, NodeProcess node)
    {
        Assert.True(node.IsRunning, $"{node.Name} exited ({node.ExitCode}) before it was replaced.\n{node.Tail()}");
        await cluster.RetireAsync(node);
        Assert.True(node.ExitCode == 0, $"{node.Name} exited with {node.ExitCode} on SIGTERM.\n{node.Tail()}");
    }

    private async Task ExpectStatusAsync(Scenario scenario, NodeProcess node, string user, HttpMethod method, string path,
        object? body, HttpStatusCode expected)
    {
        var (status, text) = await SendAsync(node, user, method, path, body);
        scenario.Log($"{node.Name}: {method} {path} {(int)status}");
        Assert.True(status == expected, $"{node.Name}: {method} {path} answered {(int)status}, expected {(int)expected}: {text}");
    }

    /// <summary>Retries (same body: creates and sends are idempotent) until the node answers <paramref name="expected"/>.</summary>
    private async Task<JsonElement> UntilStatusAsync(Scenario scenario, NodeProcess node, string user, HttpMethod method, string path,
        object? body, HttpStatusCode expected, TimeSpan within)
    {
        var clock = Stopwatch.StartNew();
        for (var attempt = 1; ; attempt++)
        {
            var (status, text) = await SendAsync(node, user, method, path, body);
            if (status == expected || (expected == HttpStatusCode.Created && status == HttpStatusCode.OK))
            {
                if (attempt > 1)
                    scenario.Log($"{node.Name}: {method} {path} {(int)status} after {attempt} attempts, {clock.Elapsed.TotalSeconds:0.0} s");
                return text.Length == 0 ? default : JsonDocument.Parse(text).RootElement.Clone();
            }
            if (clock.Elapsed > within)
                throw new TimeoutException($"{node.Name}: {method} {path} still {(int)status} after {within.TotalSeconds:0} s, expected {(int)expected}: {text}");
            await Task.Delay(TimeSpan.FromSeconds(1));
        }
    }

    private async Task<(HttpStatusCode Status, string Text)> SendAsync(NodeProcess node, string user, HttpMethod method, string path, object? body)
    {
        var token = Api.Token(_signingKey, user);
        using var request = Api.Authorized(method, new Uri(node.HttpUri, path), token, body);
        try
        {
            using var response = await Http.SendAsync(request);
            return (response.StatusCode, await response.Content.ReadAsStringAsync());
        }
        catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
        {
            return (HttpStatusCode.RequestTimeout, e.Message);
        }
    }

    private async Task GroupCopiesAreWholeAsync(Scenario scenario, NodeProcess node, string groupId, string[] members,
        IReadOnlyList<(string Sender, string Text)> sends)
    {
        List<string>? first = null;
        foreach (var member in members)
        {
            var page = await UntilStatusAsync(scenario, node, member, HttpMethod.Get, $"/v1/users/{member}/conversations/{groupId}/messages?count=200",
                null, HttpStatusCode.OK, Progress);
            var texts = page.GetProperty("messages").EnumerateArray().Select(m => m.GetProperty("message").GetString()!)
                .Where(t => t.Contains(" upgrade #", StringComparison.Ordinal)).ToList();
            Assert.True(texts.Count == sends.Count && texts.ToHashSet().SetEquals(sends.Select(s => s.Text)),
                $"{member}'s copy of {groupId} holds {texts.Count} of {sends.Count} group sends: {string.Join(" | ", texts)}");
            first ??= texts;
            Assert.Equal(first, texts);
        }
        scenario.Log($"group {groupId}: each of {members.Length} members' copies holds all {sends.Count} sends once, in one order, after the rollback");
    }

    /// <summary>What a node logged that an upgrade cares about: mailboxes that could not recover, messages it could not read.</summary>
    private static (int Unrecovered, string Text) LogFindings(NodeProcess node)
    {
        var lines = Directory.GetFiles(node.Directory, $"{node.Name}.*.out").SelectMany(File.ReadLines).ToList();
        var unrecovered = lines.Count(l => l.Contains("cannot recover", StringComparison.Ordinal)
                                           || l.Contains("Persistence failure when replaying", StringComparison.Ordinal));
        var manifests = lines.Select(l => System.Text.RegularExpressions.Regex.Match(l, @"Deserialization failed for message with serializer id \[\d+\] and manifest \[(\w+)\]"))
            .Where(m => m.Success).GroupBy(m => m.Groups[1].Value).Select(g => $"{g.Key} x{g.Count()}");
        return (unrecovered, $"{unrecovered} log lines of a mailbox that could not recover; " +
                             $"messages dropped undeserialized (manifest x count): {string.Join(", ", manifests.DefaultIfEmpty("none"))}");
    }
}
