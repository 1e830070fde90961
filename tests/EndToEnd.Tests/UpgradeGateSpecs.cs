using System.Net;
using Akka.Actor;
using Akka.Cluster;
using Akka.Configuration;
using Akka.Hosting;
using Messaging.Actors;
using Messaging.Messages;
using Microsoft.Extensions.DependencyInjection;

namespace Messaging.EndToEnd.Tests;

/// <summary>
/// Receipts and groups while a node of a release before them is in the cluster (a rolling update): refused with 503
/// and nothing stored, so no event or message exists that the older node cannot read; back once it has left.
/// </summary>
public sealed class UpgradeGateSpecs(DefaultNodeFixture fixture) : IClassFixture<DefaultNodeFixture>
{
    private static readonly TimeSpan Soon = TimeSpan.FromSeconds(20);
    private readonly TestNode _node = fixture.Node;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Should_refuse_receipts_and_store_nothing_while_a_member_runs_the_release_before_them()
    {
        var (alice, bob) = (Users.Unique("alice"), Users.Unique("bob"));
        var bobClient = _node.ClientFor(bob);
        await _node.ClientFor(alice).Send(bob, "hi bob").Ok();
        var conversationId = Messaging.Messages.Ids.ConversationFor(alice, bob);
        var before = await StatusAsync(bob);

        await using (var older = await OlderMember.JoinAsync(_node, appVersion: "1.0.0"))
        {
            HttpResponseMessage refused = null!;
            await Eventually.AssertAsync(async () =>
                (refused = await bobClient.Receipts(bob, conversationId, new { readUpToSeq = 1 })).StatusCode
                    == HttpStatusCode.ServiceUnavailable, Soon, "receipts refused once the older member is seen");

            var problem = await refused.AssertProblem(HttpStatusCode.ServiceUnavailable);
            var detail = problem.GetProperty("detail").GetString()!;
            Assert.Contains($"{older.Address} (1.0.0)", detail);
            Assert.Contains("nothing was stored", detail);
            Assert.Equal(TimeSpan.FromSeconds(30), refused.Headers.RetryAfter?.Delta);
            Assert.Equal(before.LastSequenceNr, (await StatusAsync(bob)).LastSequenceNr);
            var bobs = (await bobClient.Conversations(bob).Ok()).GetProperty("conversations")[0];
            Assert.Equal((0L, 1L), (bobs.GetProperty("readUpToSeq").GetInt64(), bobs.GetProperty("unreadCount").GetInt64()));
        }

        // Left the cluster: every member runs this release again.
        await Eventually.AssertAsync(async () =>
            (await bobClient.Receipts(bob, conversationId, new { readUpToSeq = 1 })).StatusCode == HttpStatusCode.OK,
            Soon, "receipts back once the older member has left");
        var after = (await bobClient.Conversations(bob).Ok()).GetProperty("conversations")[0];
        Assert.Equal((1L, 0L), (after.GetProperty("readUpToSeq").GetInt64(), after.GetProperty("unreadCount").GetInt64()));
    }

    [Fact]
    public async Task Should_refuse_group_routes_and_group_sends_while_a_member_runs_a_release_without_groups()
    {
        var (alice, bob) = (Users.Unique("alice"), Users.Unique("bob"));
        var client = _node.ClientFor(alice);
        var created = await client.PostAsync("/v1/groups", Json($$"""{"name":"Before","memberIds":["{{bob}}"],"clientRequestId":"g-1"}"""), Ct);
        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        var groupId = (await created.Json()).GetProperty("conversationId").GetString()!;

        await using (var older = await OlderMember.JoinAsync(_node, appVersion: "1.1.0"))
        {
            HttpResponseMessage refused = null!;
            await Eventually.AssertAsync(async () =>
                (refused = await client.PostAsync("/v1/groups", Json($$"""{"name":"During","memberIds":["{{bob}}"],"clientRequestId":"g-2"}"""), Ct)).StatusCode
                    == HttpStatusCode.ServiceUnavailable, Soon, "groups refused once the older member is seen");
            Assert.Contains($"{older.Address} (1.1.0)", (await refused.AssertProblem(HttpStatusCode.ServiceUnavailable)).GetProperty("detail").GetString());
            await (await client.Send(new { conversationId = groupId, message = "during", clientMessageId = "m-1" }))
                .AssertProblem(HttpStatusCode.ServiceUnavailable, "Unavailable");
            await (await client.GetAsync($"/v1/groups/{groupId}", Ct)).AssertProblem(HttpStatusCode.ServiceUnavailable);
            // Receipts came with 1.1.0: that member reads them.
            await client.Send(bob, "1:1 still works").Ok();
            Assert.Equal(HttpStatusCode.OK, (await _node.ClientFor(bob).Receipts(bob, Ids.ConversationFor(alice, bob), new { readUpToSeq = 1 })).StatusCode);
        }

        await Eventually.AssertAsync(async () =>
            (await client.Send(new { conversationId = groupId, message = "after", clientMessageId = "m-2" })).StatusCode == HttpStatusCode.OK,
            Soon, "group sends back once the older member has left");
        // Nothing was stored while it was refused: bob's copy holds the creation and "after".
        var thread = await _node.ClientFor(bob).Thread(bob, groupId).Ok();
        Assert.Equal(["", "after"], thread.Texts());
    }

    private static StringContent Json(string json) => new(json, System.Text.Encoding.UTF8, "application/json");

    private Task<MailboxStatus> StatusAsync(string userId) =>
        _node.Services.GetRequiredService<ActorRegistry>().Get<MailboxRegion>()
            .Ask<MailboxStatus>(new GetMailboxStatus(userId), TimeSpan.FromSeconds(10), Ct);

    /// <summary>
    /// A member that says it runs an older release: an actor system that joins the node's cluster with that
    /// app-version and hosts nothing, as an old node does for the moment it is a member before taking shards.
    /// </summary>
    private sealed class OlderMember : IAsyncDisposable
    {
        private readonly ActorSystem _system;

        private OlderMember(ActorSystem system) => _system = system;

        public Address Address => Cluster.Get(_system).SelfAddress;

        public static async Task<OlderMember> JoinAsync(TestNode node, string appVersion)
        {
            var nodeAddress = Cluster.Get(node.Services.GetRequiredService<ActorSystem>()).SelfAddress;
            var system = ActorSystem.Create(nodeAddress.System, ConfigurationFactory.ParseString($$"""
                akka.loglevel = WARNING
                akka.actor.provider = cluster
                akka.remote.dot-netty.tcp { hostname = 127.0.0.1, port = 0 }
                akka.cluster.app-version = "{{appVersion}}"
                """));
            await Cluster.Get(system).JoinAsync(nodeAddress, TestContext.Current.CancellationToken);
            return new OlderMember(system);
        }

        public async ValueTask DisposeAsync()
        {
            // Leaves (not just vanishes), as a replaced pod does: a vanished member would be downed only after
            // StableAfter, and with two members the resolver might pick the wrong side.
            await CoordinatedShutdown.Get(_system).Run(CoordinatedShutdown.ClusterLeavingReason.Instance);
            await _system.WhenTerminated;
        }
    }
}
