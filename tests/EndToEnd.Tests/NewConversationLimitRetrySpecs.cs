using System.Net;
using System.Net.Http.Json;
using Akka.Actor;
using Messaging.Actors;
using Messaging.Actors.Groups;
using Messaging.Messages;
using Microsoft.Extensions.DependencyInjection;
using Npgsql;

namespace Messaging.EndToEnd.Tests;

/// <summary>The two-server node with three new conversations per user within 20 minutes.</summary>
public sealed class LimitedTwoServersNodeFixture : TwoServersNodeFixture
{
    public const int MaxNewConversations = 3;

    protected override string[] MoreArguments =>
        [
            $"--Messaging:Mailbox:MaxNewConversations={MaxNewConversations}", "--Messaging:Mailbox:NewConversationWindow=00:20:00",
            // The creation waits on a held server while the test takes its next steps: room for a slow machine.
            "--Messaging:Http:AskTimeout=00:00:10",
        ];
}

/// <summary>
/// A retried group creation is answered with the group even when its creator has reached the new-conversation limit
/// and the group's "created" copy has not reached the creator's mailbox yet (which is what would let it through
/// otherwise). The copy is held back by holding the writes of the creator's journal server, the group being on the other.
/// </summary>
public sealed class NewConversationLimitRetrySpecs(LimitedTwoServersNodeFixture fixture) : IClassFixture<LimitedTwoServersNodeFixture>
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Should_answer_a_retried_creation_with_the_group_at_the_limit_before_the_creators_copy_arrives()
    {
        var (a, b) = (fixture.A, fixture.B);
        var creator = UserOn(b, "creator");
        var requestId = Enumerable.Range(0, 1000).Select(i => $"offers-{i}")
            .First(r => fixture.ServerOf(GroupActor.PersistenceIdFor(Ids.GroupFor(creator, r))) == a);
        var groupId = Ids.GroupFor(creator, requestId);
        var client = fixture.Node.ClientFor(creator);
        var body = new { name = "offers", memberIds = new[] { UserOn(a, "member") }, clientRequestId = requestId };

        // One opening short of the limit; the recipients' copies stored on a (so its journal is there to hold).
        for (var i = 0; i < LimitedTwoServersNodeFixture.MaxNewConversations - 1; i++)
        {
            var target = UserOn(a, $"target{i}");
            await client.Send(target, "hi").Ok();
            await Eventually.AssertAsync(async () => await ConversationIdsAsync(target) is [_], TimeSpan.FromSeconds(10),
                $"{target} never got its copy");
        }

        var heldA = await HoldWritesAsync(a);
        IAsyncDisposable? heldB = null;
        try
        {
            // The creation passes the limit check and waits for a, the group's server; meanwhile the creator opens the
            // last conversation the limit allows, durably (on b).
            var creating = client.PostAsJsonAsync("/v1/groups", body, Ct);
            await Eventually.AssertAsync(() => GroupIsRunningAsync(groupId, creator), TimeSpan.FromSeconds(2),
                "the creation never reached the group");
            await client.Send(UserOn(b, "last"), "hi").Ok();
            // Then b holds its writes and a takes them: the group is created, its copy to the creator waits on b.
            heldB = await HoldWritesAsync(b);
            await heldA.DisposeAsync();
            heldA = null;
            Assert.Equal(HttpStatusCode.Created, (await creating).StatusCode);

            var retry = await client.PostAsJsonAsync("/v1/groups", body, Ct);
            Assert.True(retry.StatusCode == HttpStatusCode.OK, $"expected 200, got {(int)retry.StatusCode}: {await retry.Content.ReadAsStringAsync(Ct)}");
            Assert.Equal(groupId, (await retry.Json()).GetProperty("conversationId").GetString());
            // The creator's mailbox did not have the group when the retry was asked, nor has it now; it is at the limit.
            var held = await ConversationIdsAsync(creator);
            Assert.Equal(LimitedTwoServersNodeFixture.MaxNewConversations, held.Length);
            Assert.DoesNotContain(groupId, held);
            // A group it has not created is refused as before.
            var another = await client.PostAsJsonAsync("/v1/groups", body with { clientRequestId = $"{requestId}-another" }, Ct);
            await another.AssertProblem(HttpStatusCode.TooManyRequests);
        }
        finally
        {
            if (heldA is not null)
                await heldA.DisposeAsync();
            if (heldB is not null)
                await heldB.DisposeAsync();
        }

        // Once b takes writes again, the copy arrives.
        await Eventually.AssertAsync(async () => (await ConversationIdsAsync(creator)).Contains(groupId), TimeSpan.FromSeconds(30),
            "the creator's copy of the group never arrived");
    }

    private async Task<string[]> ConversationIdsAsync(string userId) =>
        [.. (await fixture.Node.ClientFor(userId).Conversations(userId).Ok()).GetProperty("conversations").EnumerateArray()
            .Select(c => c.GetProperty("conversationId").GetString()!)];

    /// <summary>A user id no other spec uses, whose mailbox is on <paramref name="server"/>.</summary>
    private string UserOn(PostgresServer server, string name)
    {
        while (true)
        {
            var user = Users.Unique(name);
            if (fixture.ServerOf(MailboxActor.PersistenceIdFor(user)) == server)
                return user;
        }
    }

    private async Task<bool> GroupIsRunningAsync(string groupId, string userId)
    {
        var system = fixture.Node.Services.GetRequiredService<ActorSystem>();
        var shard = new GroupMessageExtractor(100).ShardId(groupId, new GetGroup(groupId, userId));
        try
        {
            await system.ActorSelection($"/system/sharding/{GroupHosting.TypeName}/{shard}/{groupId}")
                .ResolveOne(TimeSpan.FromMilliseconds(200), Ct);
            return true;
        }
        catch (ActorNotFoundException)
        {
            return false;
        }
    }

    /// <summary>
    /// Holds every insert into <paramref name="server"/>'s journal until disposed (a SHARE lock in an open transaction:
    /// reads go on, so an entity on it recovers and answers, but none of its writes becomes durable).
    /// </summary>
    private static async Task<IAsyncDisposable> HoldWritesAsync(PostgresServer server)
    {
        var connection = new NpgsqlConnection(server.ConnectionString);
        await connection.OpenAsync(Ct);
        var transaction = await connection.BeginTransactionAsync(Ct);
        await using (var command = new NpgsqlCommand("LOCK TABLE journal IN SHARE MODE", connection, transaction))
            await command.ExecuteNonQueryAsync(Ct);
        return new HeldWrites(connection, transaction);
    }

    private sealed class HeldWrites(NpgsqlConnection connection, NpgsqlTransaction transaction) : IAsyncDisposable
    {
        public async ValueTask DisposeAsync()
        {
            await transaction.RollbackAsync();
            await connection.DisposeAsync();
        }
    }
}
