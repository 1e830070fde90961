using Akka.Actor;
using Messaging.Actors;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.DependencyInjection;

namespace Messaging.EndToEnd.Tests;

/// <summary>The node's wake warm-up as the node starts it (WakeWarmupSpecs test the warm-up itself).</summary>
public sealed class WakeWarmupNodeSpecs
{
    [Fact]
    public async Task Should_warm_the_wake_path_as_it_starts_and_leave_nothing_in_the_journal_or_snapshots()
    {
        await using var node = await TestNode.StartAsync("--Messaging:Mailbox:WarmupWakes=40");

        var warmup = WakeWarmup.Of(node.Services.GetRequiredService<ActorSystem>());
        Assert.NotNull(warmup);
        var report = await warmup.WaitAsync(TimeSpan.FromSeconds(60), TestContext.Current.CancellationToken);
        Assert.InRange(report.Wakes, 1, 40);
        Assert.StartsWith("warmup-", report.PersistenceId);
        Assert.Equal((0L, 0L), (RowsOf(node, "snapshot"), RowsOf(node, "journal")));
        var alice = node.ClientFor("alice");
        await alice.Send("bob", "after the warm-up").Ok();
    }

    [Fact]
    public async Task Should_not_warm_up_when_turned_off()
    {
        await using var node = await TestNode.StartAsync("--Messaging:Mailbox:WarmupWakes=0");

        Assert.Null(WakeWarmup.Of(node.Services.GetRequiredService<ActorSystem>()));
    }

    private static long RowsOf(TestNode node, string table)
    {
        using var connection = new SqliteConnection($"Data Source={Path.Combine(node.DataDirectory, "messaging.db")}");
        connection.Open();
        using var command = connection.CreateCommand();
        command.CommandText = $"SELECT COUNT(*) FROM {table} WHERE persistence_id LIKE 'warmup-%'";
        return (long)command.ExecuteScalar()!;
    }
}
