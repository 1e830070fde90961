using System.Net;
using System.Net.Http.Headers;
using System.Text.Json;
using Messaging.Node.Admin;

namespace Messaging.EndToEnd.Tests;

/// <summary>A node of its own (the token is generated into its data directory), so stats count only these specs' mailboxes.</summary>
public sealed class AdminNodeFixture : IAsyncLifetime
{
    public TestNode Node { get; private set; } = null!;

    public async ValueTask InitializeAsync() => Node = await TestNode.StartAsync();

    public async ValueTask DisposeAsync() => await Node.DisposeAsync();
}

/// <summary>Every admin route and CLI path against one in-process node (the three-node run is in Cluster.Tests).</summary>
public sealed class AdminSpecs(AdminNodeFixture fixture) : IClassFixture<AdminNodeFixture>
{
    private TestNode Node => fixture.Node;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private async Task<(int Exit, string Out, string Err)> Admin(params string[] args)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        var exit = await AdminCommand.RunAsync(
            [.. args, "--node", Node.AdminAddress.ToString(), $"--Messaging:DataDirectory={Node.DataDirectory}"], output, error);
        return (exit, output.ToString(), error.ToString());
    }

    private async Task<JsonElement> AdminJson(params string[] args)
    {
        var (exit, output, error) = await Admin([.. args, "--json"]);
        Assert.True(exit == 0, $"admin {string.Join(' ', args)} exited {exit}: {error}");
        return JsonDocument.Parse(output).RootElement.Clone();
    }

    [Fact]
    public async Task Should_show_the_node_as_the_only_member_Up_and_leader()
    {
        var json = await AdminJson("cluster", "show");
        var member = Assert.Single(json.GetProperty("members").EnumerateArray());
        Assert.Equal("Up", member.GetProperty("status").GetString());
        Assert.True(member.GetProperty("reachable").GetBoolean());
        Assert.True(member.GetProperty("isLeader").GetBoolean());
        Assert.Equal(json.GetProperty("self").GetString(), json.GetProperty("leader").GetString());

        var (exit, table, _) = await Admin("cluster", "show");
        Assert.Equal(0, exit);
        Assert.Contains("1 members, 1 Up, 0 unreachable", table);
        Assert.Matches(@"akka\.tcp://messaging@127\.0\.0\.1:\d+\s+Up\s+yes\s+\S+\s+-\s+leader\s+\*", table);
    }

    [Fact]
    public async Task Should_locate_a_mailbox_without_starting_it_unless_its_sequence_number_is_asked()
    {
        var user = Users.Unique("carol");
        var before = await AdminJson("mailbox", user, "--no-start");
        Assert.False(before.GetProperty("active").GetBoolean());
        Assert.Equal(JsonValueKind.Null, before.GetProperty("sequenceNr").ValueKind);
        var shard = before.GetProperty("shardId").GetString()!;
        Assert.DoesNotContain(user, await ShardEntities(shard));

        var started = await AdminJson("mailbox", user);
        Assert.True(started.GetProperty("startedByQuery").GetBoolean());
        Assert.Equal(0, started.GetProperty("sequenceNr").GetInt64());
        Assert.Contains(user, await ShardEntities(shard));

        await Node.ClientFor(user).Send(Users.Unique("dave"), "one message in carol's journal").Ok();
        var after = await AdminJson("mailbox", user);
        Assert.True(after.GetProperty("active").GetBoolean());
        Assert.False(after.GetProperty("startedByQuery").GetBoolean());
        Assert.Equal(2, after.GetProperty("sequenceNr").GetInt64()); // the mailbox's claim, then the message
        Assert.Equal(shard, after.GetProperty("shardId").GetString());
        Assert.Equal((await AdminJson("cluster", "show")).GetProperty("self").GetString(), after.GetProperty("node").GetString());

        var (exit, table, _) = await Admin("mailbox", user);
        Assert.Equal(0, exit);
        Assert.Matches(@"sequence-nr\s+2", table);
        Assert.Matches(@"active\s+yes", table);
    }

    [Fact]
    public async Task Should_show_a_groups_members_admins_and_what_it_still_has_to_deliver()
    {
        var (alice, bob) = (Users.Unique("alice"), Users.Unique("bob"));
        var created = await Node.ClientFor(alice).PostAsync("/v1/groups", new StringContent(
            $$"""{"name":"Ops","memberIds":["{{bob}}"],"clientRequestId":"admin-1"}""", System.Text.Encoding.UTF8, "application/json"), Ct);
        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        var id = JsonDocument.Parse(await created.Content.ReadAsStringAsync(Ct)).RootElement.GetProperty("conversationId").GetString()!;

        var group = await AdminJson("group", id);

        Assert.Equal("Ops", group.GetProperty("name").GetString());
        Assert.Equal(new[] { alice, bob }.Order(StringComparer.Ordinal), group.GetProperty("members").EnumerateArray().Select(m => m.GetString()));
        Assert.Equal([alice], group.GetProperty("admins").EnumerateArray().Select(m => m.GetString()));
        Assert.Equal(1, group.GetProperty("lastSeq").GetInt64());
        Assert.Equal((await AdminJson("cluster", "show")).GetProperty("self").GetString(), group.GetProperty("node").GetString());
        var (exit, table, _) = await Admin("group", id);
        Assert.Equal(0, exit);
        Assert.Matches(@"members\s+2: ", table);
        Assert.Matches(@"pending-messages\s+\d+", table);
    }

    private async Task<string[]> ShardEntities(string shard)
    {
        var (exit, output, _) = await Admin("sharding", "shard", shard, "--json");
        return exit == 0
            ? [.. JsonDocument.Parse(output).RootElement.GetProperty("entities").EnumerateArray().Select(e => e.GetString()!)]
            : []; // 404: the shard is not allocated, so it has no mailbox
    }

    [Fact]
    public async Task Should_count_in_sharding_stats_the_mailboxes_a_send_started()
    {
        var stats = await AdminJson("sharding", "stats");
        var before = stats.GetProperty("entities").GetInt32();

        var (alice, bob) = (Users.Unique("alice"), Users.Unique("bob"));
        await Node.ClientFor(alice).Send(bob, "hi").Ok();

        // bob's copy is delivered asynchronously after alice's answer may have been Accepted: poll.
        await Eventually.AssertAsync(async () =>
            (await AdminJson("sharding", "stats")).GetProperty("entities").GetInt32() >= before + 2,
            TimeSpan.FromSeconds(10), "sender and recipient mailboxes never showed in the stats");
        stats = await AdminJson("sharding", "stats");
        var node = Assert.Single(stats.GetProperty("nodes").EnumerateArray());
        Assert.Equal(stats.GetProperty("entities").GetInt32(), node.GetProperty("entities").GetInt32());
        Assert.Equal(100, stats.GetProperty("shardCount").GetInt32());

        foreach (var user in new[] { alice, bob })
        {
            var mailbox = await AdminJson("mailbox", user, "--no-start");
            Assert.True(mailbox.GetProperty("active").GetBoolean(), $"{user} should be active");
            Assert.Contains(user, await ShardEntities(mailbox.GetProperty("shardId").GetString()!));
        }

        var (exit, table, _) = await Admin("sharding", "stats");
        Assert.Equal(0, exit);
        Assert.Contains("NODE", table);
        Assert.Contains("MAILBOXES", table);
    }

    [Fact]
    public async Task Should_list_the_mailbox_group_and_delivery_index_regions_on_this_node()
    {
        // The region registers with the coordinator on its own time after the node is ready: until then the
        // (accurate) answer lists no node, so wait for the registration rather than race it.
        JsonElement regions = default;
        await Eventually.AssertAsync(async () =>
        {
            regions = await AdminJson("sharding", "regions");
            return regions.EnumerateArray().Any(r => r.GetProperty("typeName").GetString() == "mailbox" && r.GetProperty("nodes").GetArrayLength() > 0);
        }, TimeSpan.FromSeconds(20), () => $"the mailbox region lists no node: {regions}");
        Assert.Equal(["delivery-index", "group", "mailbox"], regions.EnumerateArray().Select(r => r.GetProperty("typeName").GetString()).Order());
        var region = regions.EnumerateArray().Single(r => r.GetProperty("typeName").GetString() == "mailbox");
        Assert.Equal((await AdminJson("cluster", "show")).GetProperty("self").GetString(),
            Assert.Single(region.GetProperty("nodes").EnumerateArray()).GetString());
    }

    [Theory]
    [InlineData("cluster down akka.tcp://messaging@127.0.0.1:1", "no cluster member has the address akka.tcp://messaging@127.0.0.1:1")]
    [InlineData("cluster leave akka.tcp://messaging@10.9.9.9:4053", "no cluster member has the address")]
    [InlineData("cluster down not-an-address", "is not a cluster address")]
    [InlineData("sharding shard 100", "shard ids are 0 to 99")]
    [InlineData("sharding shard abc", "no shard 'abc'")]
    [InlineData("mailbox no/such", "userId must be 1-64 characters of [A-Za-z0-9._-]")]
    [InlineData("group dm~a~b", "a group's conversation id starts with grp~")]
    [InlineData("group grp~nosuchgroup", "there is no group 'grp~nosuchgroup'")]
    public async Task Should_fail_with_a_clear_message_and_exit_code_1_for_what_does_not_exist(string command, string message)
    {
        var (exit, output, error) = await Admin(command.Split(' '));
        Assert.Equal(AdminCommand.Failed, exit);
        Assert.Equal("", output);
        Assert.StartsWith("admin: ", error);
        Assert.Contains(message, error);
    }

    [Fact]
    public async Task Should_down_nothing_when_no_member_is_unreachable()
    {
        var (exit, output, _) = await Admin("cluster", "down-unreachable");
        Assert.Equal(0, exit);
        Assert.Contains("nothing downed", output);
        Assert.Equal(1, (await AdminJson("cluster", "show")).GetProperty("members").GetArrayLength());
    }

    [Fact]
    public async Task Should_refuse_a_wrong_or_missing_token_with_exit_code_4()
    {
        var (exit, _, error) = await Admin("cluster", "show", "--token", "not-the-admin-token");
        Assert.Equal(AdminCommand.Unauthorized, exit);
        Assert.Contains("refused the admin token", error);

        var elsewhere = Directory.CreateTempSubdirectory("messaging-admin-").FullName;
        var output = new StringWriter();
        var noToken = new StringWriter();
        exit = await AdminCommand.RunAsync(
            ["cluster", "show", "--node", Node.AdminAddress.ToString(), $"--Messaging:DataDirectory={elsewhere}"], output, noToken);
        Assert.Equal(AdminCommand.Unauthorized, exit);
        Assert.Contains("no admin token", noToken.ToString());

        using var anonymous = new HttpClient { BaseAddress = Node.AdminAddress };
        Assert.Equal(HttpStatusCode.Unauthorized, (await anonymous.GetAsync("/admin/cluster", Ct)).StatusCode);
        anonymous.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", "x");
        Assert.Equal(HttpStatusCode.Unauthorized, (await anonymous.PostAsync("/admin/cluster/down-unreachable", null, Ct)).StatusCode);
    }

    [Fact]
    public async Task Should_keep_the_generated_admin_token_in_the_data_directory_with_mode_0600()
    {
        var file = Path.Combine(Node.DataDirectory, AdminTokens.FileName);
        Assert.True(File.Exists(file));
        if (!OperatingSystem.IsWindows())
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(file));
        var (exit, _, _) = await Admin("cluster", "show", "--token", (await File.ReadAllTextAsync(file, Ct)).Trim());
        Assert.Equal(0, exit);
    }

    [Fact]
    public async Task Should_fail_with_exit_code_3_when_the_node_is_unreachable()
    {
        var port = FreePorts.Next();
        var error = new StringWriter();
        var exit = await AdminCommand.RunAsync(
            ["cluster", "show", "--node", $"http://127.0.0.1:{port}", "--token", "whatever-token-0123"], TextWriter.Null, error);
        Assert.Equal(AdminCommand.Unreachable, exit);
        Assert.Contains("cannot reach", error.ToString());
    }

    [Fact]
    public async Task Should_answer_usage_errors_with_exit_code_2()
    {
        var error = new StringWriter();
        Assert.Equal(AdminCommand.Usage, await AdminCommand.RunAsync(["cluster", "explode"], TextWriter.Null, error));
        Assert.Contains("unknown command 'cluster explode'", error.ToString());
        Assert.Equal(AdminCommand.Usage, await AdminCommand.RunAsync(["cluster", "show", "--node", "nota url", "--token", "t"], TextWriter.Null, TextWriter.Null));
    }

    [Fact]
    public async Task Should_serve_admin_routes_and_metrics_only_on_the_admin_port()
    {
        var token = (await File.ReadAllTextAsync(Path.Combine(Node.DataDirectory, AdminTokens.FileName), Ct)).Trim();
        var onPublic = Node.ClientWithToken(token);
        Assert.Equal(HttpStatusCode.NotFound, (await onPublic.GetAsync("/admin/cluster", Ct)).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await onPublic.GetAsync("/metrics", Ct)).StatusCode);
        // A Host header naming the admin port changes nothing: routing is by listener, not by Host.
        var spoofed = new HttpRequestMessage(HttpMethod.Get, "/admin/cluster");
        spoofed.Headers.Host = $"127.0.0.1:{Node.AdminAddress.Port}";
        Assert.Equal(HttpStatusCode.NotFound, (await onPublic.SendAsync(spoofed, Ct)).StatusCode);
        Assert.NotEqual(Node.BaseAddress.Port, Node.AdminAddress.Port);
    }
}
