using System.Net;
using System.Net.Http.Json;
using Messaging.Cluster.Tests.Harness;
using Xunit;

namespace Messaging.Cluster.Tests;

/// <summary>
/// The biggest answer the contract allows crosses nodes: a thread page of 200 messages (the largest count) of 65,535
/// bytes each (the largest text), about 13 MB, far above remoting's default frame size. Read from every node, so at
/// least one read is remote; 150 of the 200 come from the journal (50 are kept in memory).
/// </summary>
public sealed class LargePageSpecs(ITestOutputHelper output)
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Should_serve_a_page_of_large_messages_through_any_node()
    {
        var directory = Paths.NewRunDirectory("large-page");
        await using var postgres = await PostgresServer.StartAsync(directory);
        await using var cluster = await TestCluster.StartAsync(postgres, directory, output.WriteLine, new ClusterOptions { Nodes = 2 });
        var (alice, bob) = ($"alice-{Guid.NewGuid():N}"[..14], $"bob-{Guid.NewGuid():N}"[..12]);
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(60) };
        var text = new string('x', 65_535 - 3); // with its 3-digit prefix: 65,535 bytes, one under the limit
        const int count = 200;

        var retried = 0;
        for (var i = 0; i < count; i++)
        {
            var node = cluster.Nodes[i % 2];
            // As a client does: a 503 is retried with the same clientMessageId (safe by contract). On a machine as
            // busy as CI's (browsers and other suites beside this one), a 64 KiB send may now and then outlast the
            // edge's 5 s ask; what this spec is about is the page read below.
            for (var attempt = 1; ; attempt++)
            {
                using var request = Api.Authorized(HttpMethod.Post, new Uri(node.HttpUri, "/v1/messages"),
                    Api.Token(cluster.SigningKey, alice),
                    new SendRequest(alice, [bob], $"{i:D3}{text}", $"big-{i}"));
                using var response = await http.SendAsync(request, Ct);
                if (response.StatusCode == HttpStatusCode.ServiceUnavailable && attempt < 5)
                {
                    retried++;
                    await Task.Delay(TimeSpan.FromSeconds(1), Ct);
                    continue;
                }
                Assert.True(response.StatusCode == HttpStatusCode.OK, $"send {i}, attempt {attempt}: {(int)response.StatusCode} {await response.Content.ReadAsStringAsync(Ct)}");
                break;
            }
        }
        output.WriteLine($"{count} sends of 64 KiB stored; {retried} attempts answered 503 and retried");

        foreach (var node in cluster.Nodes)
        foreach (var user in new[] { alice, bob })
        {
            var conversation = string.CompareOrdinal(alice, bob) < 0 ? $"dm~{alice}~{bob}" : $"dm~{bob}~{alice}";
            var uri = new Uri(node.HttpUri, $"/v1/users/{user}/conversations/{conversation}/messages?count={count}");
            ThreadResponse? page = null;
            await Eventually.AssertAsync(async () =>
            {
                using var request = Api.Authorized(HttpMethod.Get, uri, Api.Token(cluster.SigningKey, user));
                using var response = await http.SendAsync(request);
                if (response.StatusCode != HttpStatusCode.OK)
                    return false;
                page = await response.Content.ReadFromJsonAsync<ThreadResponse>(Api.Json);
                return page!.Messages.Length == count; // the recipient's copies may still be arriving
            }, TimeSpan.FromSeconds(90), () => $"{user}'s page of {count} large messages through {node.Name}");
            Assert.Equal(Enumerable.Range(0, count).Select(i => $"{i:D3}"), page!.Messages.Select(m => m.Message[..3]));
            Assert.All(page.Messages, m => Assert.Equal(65_535, m.Message.Length));
        }
    }
}
