using System.Net;

namespace Messaging.EndToEnd.Tests;

/// <summary>The node as its own OS process, killed with SIGKILL mid-traffic and restarted on the same data directory.</summary>
public sealed class CrashRecoverySpecs : IDisposable
{
    private static readonly TimeSpan ReadyWithin = TimeSpan.FromSeconds(60);

    private readonly string _directory = Directory.CreateTempSubdirectory("messaging-crash-").FullName;

    [Fact]
    public async Task Should_keep_every_acknowledged_message_once_and_in_order_after_a_SIGKILL()
    {
        var recipient = Users.Unique("rcpt");
        var senders = Enumerable.Range(0, 4).Select(i => Users.Unique($"k{i}")).ToArray();
        var acknowledged = senders.ToDictionary(s => s, _ => new List<string>());
        var attempted = senders.ToDictionary(s => s, _ => new List<string>());
        var unexpected = new List<string>();

        await using var node = Node(incarnation: 1);
        await node.StartAsync(ReadyWithin);
        using var stop = new CancellationTokenSource();
        var traffic = senders.Select(sender => Task.Run(async () =>
        {
            using var client = new HttpClient { BaseAddress = node.HttpUri, Timeout = TimeSpan.FromSeconds(10) };
            client.DefaultRequestHeaders.Authorization = new("Bearer", Token(sender));
            for (var i = 0; !stop.IsCancellationRequested; i++)
            {
                var text = $"{sender} #{i}";
                attempted[sender].Add(text);
                try
                {
                    var response = await client.Send(recipient, text, $"{sender}-{i}");
                    if (response.StatusCode != HttpStatusCode.OK)
                    {
                        // The node is healthy until the kill, which ends connections rather than answering.
                        var problem = $"{text}: {(int)response.StatusCode} {await response.Content.ReadAsStringAsync()}";
                        lock (unexpected)
                            unexpected.Add(problem);
                        return;
                    }
                    lock (acknowledged)
                        acknowledged[sender].Add(text);
                }
                catch (Exception ex) when (ex is HttpRequestException or TaskCanceledException)
                {
                    return; // the node is gone: this send's fate is unknown
                }
            }
        })).ToArray();

        await Eventually.AssertAsync(() => Task.FromResult(Acknowledged() >= 60), TimeSpan.FromSeconds(30), "60 acknowledged sends");
        node.Kill();
        Assert.True(await node.WaitForExitAsync(TimeSpan.FromSeconds(10)), "the node outlived SIGKILL");
        stop.Cancel();
        await Task.WhenAll(traffic);
        Assert.True(Acknowledged() >= 60);
        Assert.Empty(unexpected);

        await using var restarted = Node(incarnation: 2);
        await restarted.StartAsync(ReadyWithin);
        foreach (var sender in senders)
        {
            using var client = Client(restarted, Token(sender));
            var thread = await client.Thread(sender, ConversationOf(sender, recipient), "?count=200").Ok();
            AssertKept(acknowledged[sender], attempted[sender], thread.Texts(), node, restarted);
        }

        // The recipient's copies follow: delivery resumes once the senders' mailboxes are back.
        using var reader = Client(restarted, Token(recipient));
        foreach (var sender in senders)
        {
            string[] texts = [];
            await Eventually.AssertAsync(async () =>
            {
                var response = await reader.Thread(recipient, ConversationOf(sender, recipient), "?count=200");
                if (response.StatusCode != HttpStatusCode.OK)
                    return false;
                texts = (await response.Json()).Texts();
                return acknowledged[sender].All(texts.Contains);
            }, TimeSpan.FromSeconds(20), $"{recipient}'s copies of {sender}'s acknowledged messages");
            AssertKept(acknowledged[sender], attempted[sender], texts, node, restarted);
        }

        int Acknowledged()
        {
            lock (acknowledged)
                return acknowledged.Values.Sum(v => v.Count);
        }
    }

    /// <summary>Every acknowledged message once, in send order; anything else only a send whose answer was lost.</summary>
    private static void AssertKept(List<string> acknowledged, List<string> attempted, string[] stored,
        params NodeProcess[] nodes)
    {
        Assert.True(stored.Length == stored.Distinct().Count(), $"a message stored twice: {string.Join(", ", stored)}");
        Assert.True(stored.All(attempted.Contains), "a message nobody sent");
        Assert.Equal(acknowledged, stored.Where(acknowledged.Contains));
        Assert.Equal(stored.OrderBy(attempted.IndexOf), stored);
        Assert.True(stored.Length <= acknowledged.Count + 1, string.Join('\n', nodes.Select(n => n.Tail())));
    }

    private static string ConversationOf(string a, string b) =>
        string.CompareOrdinal(a, b) <= 0 ? $"dm~{a}~{b}" : $"dm~{b}~{a}";

    private static string Token(string userId) => Jwt.Mint(userId, TestNode.SigningKeyBytes, TimeSpan.FromHours(1));

    private static HttpClient Client(NodeProcess node, string token)
    {
        var client = new HttpClient { BaseAddress = node.HttpUri, Timeout = TimeSpan.FromSeconds(30) };
        client.DefaultRequestHeaders.Authorization = new("Bearer", token);
        return client;
    }

    /// <summary>The node as its own process, on a new port but the same data directory each time.</summary>
    private NodeProcess Node(int incarnation) => new("node", FreePorts.Next(), _directory,
        arguments: [.. TestNode.LoopbackArguments(Path.Combine(_directory, "data")), $"--Messaging:Auth:SigningKey={TestNode.SigningKey}"],
        incarnation: incarnation);

    public void Dispose()
    {
        try
        {
            Directory.Delete(_directory, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
