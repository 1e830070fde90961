using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Messaging.EndToEnd.Tests;

/// <summary>The node as its own OS process, killed with SIGKILL mid-traffic and restarted on the same data directory.</summary>
public sealed class CrashRecoverySpecs : IDisposable
{
    private readonly string _dataDirectory = Directory.CreateTempSubdirectory("messaging-crash-").FullName;
    private readonly StringBuilder _output = new();

    [Fact]
    public async Task Should_keep_every_acknowledged_message_once_and_in_order_after_a_SIGKILL()
    {
        var recipient = Users.Unique("rcpt");
        var senders = Enumerable.Range(0, 4).Select(i => Users.Unique($"k{i}")).ToArray();
        var acknowledged = senders.ToDictionary(s => s, _ => new List<string>());
        var attempted = senders.ToDictionary(s => s, _ => new List<string>());
        var unexpected = new List<string>();

        var node = await StartNodeAsync();
        var tokens = new Messaging.Http.TokenIssuer(Encoding.UTF8.GetBytes(TestNode.SigningKey), TimeSpan.FromHours(1));
        using var stop = new CancellationTokenSource();
        var traffic = senders.Select(sender => Task.Run(async () =>
        {
            using var client = new HttpClient { BaseAddress = node.BaseAddress, Timeout = TimeSpan.FromSeconds(10) };
            client.DefaultRequestHeaders.Authorization = new("Bearer", tokens.Issue(sender));
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

        await Eventually.Until(() => Task.FromResult(Acknowledged() >= 60), TimeSpan.FromSeconds(30), "60 acknowledged sends");
        node.Process.Kill(entireProcessTree: true); // SIGKILL: no shutdown, no flush
        await node.Process.WaitForExitAsync();
        stop.Cancel();
        await Task.WhenAll(traffic);
        Assert.True(Acknowledged() >= 60);
        Assert.Empty(unexpected);

        var restarted = await StartNodeAsync();
        try
        {
            foreach (var sender in senders)
            {
                using var client = Client(restarted, tokens.Issue(sender));
                var thread = await client.Thread(sender, ConversationOf(sender, recipient), "?count=200").Ok();
                AssertKept(acknowledged[sender], attempted[sender], thread.Texts());
            }

            // The recipient's copies follow: delivery resumes once the senders' mailboxes are back.
            using var reader = Client(restarted, tokens.Issue(recipient));
            foreach (var sender in senders)
            {
                string[] texts = [];
                await Eventually.Until(async () =>
                {
                    var response = await reader.Thread(recipient, ConversationOf(sender, recipient), "?count=200");
                    if (response.StatusCode != HttpStatusCode.OK)
                        return false;
                    texts = (await response.Json()).Texts();
                    return acknowledged[sender].All(texts.Contains);
                }, TimeSpan.FromSeconds(20), $"{recipient}'s copies of {sender}'s acknowledged messages");
                AssertKept(acknowledged[sender], attempted[sender], texts);
            }
        }
        finally
        {
            restarted.Process.Kill(entireProcessTree: true);
            await restarted.Process.WaitForExitAsync();
        }

        int Acknowledged()
        {
            lock (acknowledged)
                return acknowledged.Values.Sum(v => v.Count);
        }
    }

    /// <summary>Every acknowledged message once, in send order; anything else only a send whose answer was lost.</summary>
    private void AssertKept(List<string> acknowledged, List<string> attempted, string[] stored)
    {
        Assert.True(stored.Length == stored.Distinct().Count(), $"a message stored twice: {string.Join(", ", stored)}");
        Assert.True(stored.All(attempted.Contains), "a message nobody sent");
        Assert.Equal(acknowledged, stored.Where(acknowledged.Contains));
        Assert.Equal(stored.OrderBy(attempted.IndexOf), stored);
        Assert.True(stored.Length <= acknowledged.Count + 1, $"{_output}");
    }

    private static string ConversationOf(string a, string b) =>
        string.CompareOrdinal(a, b) <= 0 ? $"dm~{a}~{b}" : $"dm~{b}~{a}";

    private static HttpClient Client(RunningNode node, string token)
    {
        var client = new HttpClient { BaseAddress = node.BaseAddress, Timeout = TimeSpan.FromSeconds(30) };
        client.DefaultRequestHeaders.Authorization = new("Bearer", token);
        return client;
    }

    private sealed record RunningNode(Process Process, Uri BaseAddress);

    private async Task<RunningNode> StartNodeAsync()
    {
        var port = FreePort();
        var dll = Path.Combine(AppContext.BaseDirectory, "Messaging.Node.dll");
        var start = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var arg in new[]
                 {
                     dll, $"--urls=http://127.0.0.1:{port}", $"--Messaging:DataDirectory={_dataDirectory}",
                     "--Messaging:Cluster:Hostname=127.0.0.1", "--Messaging:Cluster:Port=0", "--Messaging:Admin:Port=0",
                     $"--Messaging:Auth:SigningKey={TestNode.SigningKey}", "--Logging:LogLevel:Default=Warning",
                 })
            start.ArgumentList.Add(arg);
        var process = Process.Start(start)!;
        process.OutputDataReceived += (_, e) => Log(e.Data);
        process.ErrorDataReceived += (_, e) => Log(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();

        var baseAddress = new Uri($"http://127.0.0.1:{port}");
        using var probe = new HttpClient { BaseAddress = baseAddress, Timeout = TimeSpan.FromSeconds(5) };
        await Eventually.Until(async () =>
        {
            if (process.HasExited)
                throw new InvalidOperationException($"the node exited with {process.ExitCode}: {_output}");
            try
            {
                return (await probe.GetAsync("/healthz/ready")).StatusCode == HttpStatusCode.OK;
            }
            catch (Exception ex) when (ex is HttpRequestException or TaskCanceledException)
            {
                return false;
            }
        }, TimeSpan.FromSeconds(60), "the node process never became ready");
        return new RunningNode(process, baseAddress);
    }

    private void Log(string? line)
    {
        if (line is null)
            return;
        lock (_output)
        {
            if (_output.Length < 64 * 1024)
                _output.AppendLine(line);
        }
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    public void Dispose()
    {
        try
        {
            Directory.Delete(_dataDirectory, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
