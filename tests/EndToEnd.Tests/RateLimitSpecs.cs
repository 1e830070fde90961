using System.Net;

namespace Messaging.EndToEnd.Tests;

public sealed class RateLimitSpecs
{
    [Theory]
    [InlineData(1, 1, 1000)]
    [InlineData(7, 7, 1000)]
    [InlineData(100, 1, 10)]
    [InlineData(130, 13, 100)]
    [InlineData(200, 2, 10)]
    [InlineData(333, 333, 1000)]
    [InlineData(1000, 10, 10)]
    [InlineData(5000, 50, 10)]
    public void Should_refill_at_exactly_the_configured_rate_in_steps_of_10_ms_or_more(int rate, int tokens, int milliseconds)
    {
        var (perPeriod, period) = Messaging.Http.SendRateLimiting.Refill(rate);

        Assert.Equal((tokens, TimeSpan.FromMilliseconds(milliseconds)), (perPeriod, period));
        Assert.Equal(rate, perPeriod * 1000 / period.TotalMilliseconds, precision: 9);
    }

    [Fact]
    public async Task Should_answer_429_with_Retry_After_past_a_users_burst_and_spare_other_users()
    {
        await using var node = await TestNode.StartAsync("--Messaging:RateLimit:SendsPerSecond=1", "--Messaging:RateLimit:Burst=3");
        var (alice, bob, carol) = (Users.Unique("alice"), Users.Unique("bob"), Users.Unique("carol"));
        var client = node.ClientFor(alice);

        var statuses = new List<HttpStatusCode>();
        HttpResponseMessage? limited = null;
        for (var i = 0; i < 6 && limited is null; i++)
        {
            var response = await client.Send(bob, $"m{i}");
            statuses.Add(response.StatusCode);
            if (response.StatusCode == HttpStatusCode.TooManyRequests)
                limited = response;
        }

        Assert.NotNull(limited);
        Assert.True(statuses.Count(s => s == HttpStatusCode.OK) >= 3, string.Join(",", statuses));
        var retryAfter = limited.Headers.RetryAfter?.Delta;
        Assert.NotNull(retryAfter);
        Assert.True(retryAfter >= TimeSpan.FromSeconds(1));
        await limited.AssertProblem(HttpStatusCode.TooManyRequests, "RateLimited");
        // Another user's bucket is untouched.
        await node.ClientFor(carol).Send(bob, "hi").Ok();
    }

    [Fact]
    public async Task Should_rate_limit_typing_in_a_bucket_of_its_own()
    {
        await using var node = await TestNode.StartAsync("--Messaging:RateLimit:SendsPerSecond=1", "--Messaging:RateLimit:Burst=2");
        var (alice, bob) = (Users.Unique("alice"), Users.Unique("bob"));
        var client = node.ClientFor(alice);
        await client.Send(bob, "hi").Ok(); // one of the two sends in the bucket
        var conversation = Messaging.Messages.Ids.ConversationFor(alice, bob);

        var statuses = new List<HttpStatusCode>();
        HttpResponseMessage? limited = null;
        for (var i = 0; i < 5 && limited is null; i++)
        {
            var response = await client.PostAsync($"/v1/users/{alice}/conversations/{conversation}/typing", null, TestContext.Current.CancellationToken);
            statuses.Add(response.StatusCode);
            if (response.StatusCode == HttpStatusCode.TooManyRequests)
                limited = response;
        }

        Assert.NotNull(limited);
        Assert.True(statuses.Count(s => s == HttpStatusCode.NoContent) >= 2, string.Join(",", statuses));
        Assert.NotNull(limited.Headers.RetryAfter?.Delta);
        var problem = await limited.AssertProblem(HttpStatusCode.TooManyRequests);
        Assert.Contains("typing", problem.GetProperty("detail").GetString());
        Assert.False(problem.TryGetProperty("sendStatus", out _)); // not the send route
        await client.Send(bob, "typing did not use up my sends").Ok();
    }

    [Fact]
    public async Task Should_rate_limit_reads_per_user_in_a_bucket_of_their_own()
    {
        await using var node = await TestNode.StartAsync("--Messaging:RateLimit:ReadsPerSecond=1", "--Messaging:RateLimit:ReadBurst=3");
        var (alice, bob) = (Users.Unique("alice"), Users.Unique("bob"));
        var client = node.ClientFor(alice);
        await client.Send(bob, "hi").Ok();
        var conversation = Messaging.Messages.Ids.ConversationFor(alice, bob);

        // Conversation lists and thread pages draw on the same bucket.
        var statuses = new List<HttpStatusCode>();
        HttpResponseMessage? limited = null;
        for (var i = 0; i < 8 && limited is null; i++)
        {
            var response = i % 2 == 0 ? await client.Conversations(alice) : await client.Thread(alice, conversation);
            statuses.Add(response.StatusCode);
            if (response.StatusCode == HttpStatusCode.TooManyRequests)
                limited = response;
        }

        Assert.NotNull(limited);
        Assert.True(statuses.Count(s => s == HttpStatusCode.OK) >= 3, string.Join(",", statuses));
        Assert.True(limited.Headers.RetryAfter?.Delta >= TimeSpan.FromSeconds(1));
        var problem = await limited.AssertProblem(HttpStatusCode.TooManyRequests);
        Assert.Contains("reads", problem.GetProperty("detail").GetString());
        Assert.False(problem.TryGetProperty("sendStatus", out _));
        // Sends and other users' reads have buckets of their own.
        await client.Send(bob, "reading did not use up my sends").Ok();
        Assert.Equal(HttpStatusCode.OK, (await node.ClientFor(bob).Thread(bob, conversation)).StatusCode);
    }
}
