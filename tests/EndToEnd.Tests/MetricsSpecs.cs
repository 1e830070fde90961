using System.Globalization;
using System.Text.RegularExpressions;
using Microsoft.Extensions.DependencyInjection;

namespace Messaging.EndToEnd.Tests;

/// <summary>/metrics on the admin port of a loaded node: the listed metrics move.</summary>
public sealed class MetricsSpecs(DefaultNodeFixture fixture) : IClassFixture<DefaultNodeFixture>
{
    private TestNode Node => fixture.Node;

    [Fact]
    public async Task Should_show_sends_latency_journal_writes_mailboxes_and_shards_moving_under_load()
    {
        var before = await Scrape();
        var senders = Enumerable.Range(0, 5).Select(i => Users.Unique($"m{i}")).ToArray();
        var recipient = Users.Unique("sink");
        const int perSender = 20;
        await Task.WhenAll(senders.Select(async sender =>
        {
            var client = Node.ClientFor(sender);
            for (var i = 0; i < perSender; i++)
            {
                var id = $"{sender}-{i}";
                await client.Send(recipient, $"load {i}", id).Ok();
                if (i % 10 == 0)
                    await client.Send(recipient, $"load {i}", id).Ok(); // a retry: Duplicate
            }
        }));
        var sends = senders.Length * perSender;
        var duplicates = senders.Length * 2;

        var self = $"node=\"{Akka.Cluster.Cluster.Get(Node.Services.GetRequiredService<Akka.Actor.ActorSystem>()).SelfAddress}\"";

        // Recipients' copies may still be in flight after an Accepted answer, and the shard gauges refresh every
        // 5 s: poll until every metric has moved, then report whichever did not.
        List<string> missing = [];
        try
        {
            await Eventually.AssertAsync(async () =>
            {
                missing = Missing(before, await Scrape(), self, sends, duplicates, senders.Length + 1);
                return missing.Count == 0;
            }, TimeSpan.FromSeconds(20), "the metrics did not all move");
        }
        catch (TimeoutException)
        {
            Assert.Fail("metrics that did not move: " + string.Join("; ", missing));
        }
    }

    [Theory]
    [InlineData("messaging_mailboxes_shed_total")]
    [InlineData("messaging_deliveries_duplicate_total")]
    [InlineData("messaging_passivation_snapshots_skipped_total")]
    [InlineData("messaging_passivation_snapshots_waiting")]
    [InlineData("messaging_conversations_archived_total")]
    [InlineData("messaging_conversations_restored_total")]
    [InlineData("messaging_conversations_cold_reads_failed_total")]
    [InlineData("messaging_channels_archived_total")]
    public async Task Should_export_the_counts_of_rare_events_from_the_start(string metric)
    {
        // Exported before the first (as 0): a scrape without the governor's count means a node without the governor
        // (the soak's rows show "-" for that, not 0), and a dashboard's rate has a series to start from.
        var lines = (await Scrape()).Split('\n').Where(line => line.StartsWith(metric + " ", StringComparison.Ordinal) || line.StartsWith(metric + "{", StringComparison.Ordinal)).ToList();
        var value = Assert.Single(lines)[(lines[0].LastIndexOf(' ') + 1)..];
        Assert.True(double.TryParse(value, NumberStyles.Float, CultureInfo.InvariantCulture, out var count) && count >= 0, lines[0]);
    }

    [Fact]
    public async Task Should_count_the_live_streams_open_on_the_node()
    {
        var users = Enumerable.Range(0, 3).Select(i => Users.Unique($"live{i}")).ToArray();
        var streams = new List<SseClient>();
        try
        {
            foreach (var user in users)
                streams.Add(await SseClient.ConnectAsync(Node.ClientFor(user), user, cancellationToken: TestContext.Current.CancellationToken));
            Assert.All(streams, s => Assert.Equal(System.Net.HttpStatusCode.OK, s.Status));

            // Process-wide meter: other specs' streams only add to ours.
            await Eventually.AssertAsync(async () => Value(await Scrape(), "messaging_live_streams") >= users.Length,
                TimeSpan.FromSeconds(10), $"messaging_live_streams below the {users.Length} streams open");
        }
        finally
        {
            foreach (var stream in streams)
                await stream.DisposeAsync();
        }
    }

    private static List<string> Missing(string before, string now, string self, int sends, int duplicates, int mailboxes)
    {
        var missing = new List<string>();
        void Expect(bool condition, string what)
        {
            if (!condition)
                missing.Add(what);
        }

        // The meter is process-wide and other spec classes send in parallel: at least ours moved it.
        var sentOrAccepted = Delta(before, now, "messaging_sends_total", "outcome=\"Sent\"")
                             + Delta(before, now, "messaging_sends_total", "outcome=\"Accepted\"");
        Expect(sentOrAccepted >= sends, $"sends counted {sentOrAccepted}, expected at least {sends}");
        var duplicateSends = Delta(before, now, "messaging_sends_total", "outcome=\"Duplicate\"");
        Expect(duplicateSends >= duplicates, $"duplicates counted {duplicateSends}, expected at least {duplicates}");
        var timed = Delta(before, now, "messaging_send_duration_milliseconds_count", "outcome=\"Sent\"")
                    + Delta(before, now, "messaging_send_duration_milliseconds_count", "outcome=\"Accepted\"");
        Expect(timed >= sends, $"send latencies recorded {timed}, expected at least {sends}");
        // Each send is written twice: the sender's copy and the recipient's.
        var writes = Delta(before, now, "messaging_journal_write_duration_milliseconds_count");
        Expect(writes >= 2 * sends, $"journal writes timed {writes}, expected at least {2 * sends}");
        Expect(Delta(before, now, "messaging_journal_write_duration_milliseconds_sum") > 0, "journal write time did not grow");
        var active = Value(now, "messaging_mailboxes_active");
        Expect(active >= mailboxes, $"active mailboxes {active}, expected at least {mailboxes}");
        var entities = Value(now, "messaging_shards_entities", self);
        Expect(entities >= mailboxes, $"mailboxes in this node's shards {entities}, expected at least {mailboxes}");
        Expect(Value(now, "messaging_shards_hosted", self) >= 1, "no shard hosted by this node");
        // The runtime's own meter: the managed heap and the working set, for memory over time.
        Expect(Value(now, "dotnet_gc_last_collection_heap_size_bytes") > 0, "no managed heap size (System.Runtime meter)");
        Expect(Value(now, "dotnet_process_memory_working_set_bytes") > 0, "no working set (System.Runtime meter)");
        return missing;
    }

    private async Task<string> Scrape()
    {
        using var http = new HttpClient { BaseAddress = Node.AdminAddress };
        return await http.GetStringAsync("/metrics");
    }

    private static double Delta(string before, string after, string name, string? label = null) =>
        Value(after, name, label) - Value(before, name, label);

    /// <summary>Sum of the samples of <paramref name="name"/> whose labels contain <paramref name="label"/>.</summary>
    private static double Value(string scrape, string name, string? label = null) =>
        Regex.Matches(scrape, $@"^{Regex.Escape(name)}(\{{[^}}]*\}})? (\S+)", RegexOptions.Multiline)
            .Where(m => label is null || m.Groups[1].Value.Contains(label, StringComparison.Ordinal))
            .Sum(m => double.Parse(m.Groups[2].Value, CultureInfo.InvariantCulture));
}
