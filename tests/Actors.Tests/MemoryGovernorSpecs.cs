using System.Runtime.CompilerServices;
using Akka.Actor;
using Akka.Hosting;
using Messaging.Messages;

namespace Messaging.Actors.Tests;

/// <summary>
/// The node's memory governor: above the heap's high water mark the least recently used mailboxes passivate (and wake
/// intact), a round waits for a full collection before the next, and below the mark nothing is shed. The heap is a
/// reading the test sets.
/// </summary>
public sealed class MemoryGovernorSpecs(ITestOutputHelper output)
    : ShardedMailboxTestKit(nameof(MemoryGovernorSpecs), output, new MailboxSettings
    {
        HeapHighWater = 0.7,
        HeapLowWater = 0.6,
        HeapCheckInterval = TimeSpan.FromMilliseconds(100),
        HeapCollectInterval = TimeSpan.FromSeconds(1),
        HeapShedSettle = TimeSpan.FromSeconds(3),
        HeapShedMinIdle = TimeSpan.Zero,
    })
{
    private const long Limit = 1L << 30;
    private volatile StrongBox<HeapReading> _heap = new(new(0, 0, Limit, 0, 0));
    private int _collections;

    /// <param name="live">The heap after the last full collection.</param>
    /// <param name="current">After the last collection of any generation.</param>
    private void Heap(double live, int fullCollections, double? current = null) =>
        _heap = new(new((long)(live * Limit), (long)((current ?? live) * Limit), Limit, fullCollections, fullCollections));

    protected override void ConfigureAkka(AkkaConfigurationBuilder builder, IServiceProvider provider)
    {
        base.ConfigureAkka(builder, provider);
        builder.WithMemoryGovernor(Settings, () => _heap.Value, () => Interlocked.Increment(ref _collections));
    }

    [Fact]
    public async Task Should_passivate_the_least_recently_used_mailboxes_above_the_high_water_mark_and_wake_them_intact()
    {
        var senders = Enumerable.Range(0, 10).Select(i => $"s{i}-{Run}").ToArray();
        var recipients = Enumerable.Range(0, 10).Select(i => $"r{i}-{Run}").ToArray();
        var sent = new SendResult[10];
        // Recipients r0..r9 get their last message in that order; then every sender is used after all of them.
        for (var i = 0; i < 10; i++)
        {
            sent[i] = await Region.Ask<SendResult>(new SendMessage(senders[i], [recipients[i]], $"hello {i}", $"c{i}"), Ask, Ct);
            Assert.Equal(SendOutcome.Sent, sent[i].Outcome);
            await Task.Delay(20, Ct);
        }
        // Then each is asked something, in this order (and nothing else reaches them): r0 is the least recently used.
        foreach (var user in recipients.Concat(senders))
        {
            await Region.Ask<MailboxStatus>(new GetMailboxStatus(user), Ask, Ct);
            await Task.Delay(20, Ct);
        }
        var refs = new Dictionary<string, IActorRef>();
        foreach (var user in senders.Concat(recipients))
        {
            refs[user] = await EntityAsync(user);
            Watch(refs[user]);
        }

        // 90 % of the limit, aiming at 60 %: a third of the 20 live mailboxes, capped at a quarter per round: 5.
        Heap(0.9, fullCollections: 1);
        var firstRound = Enumerable.Range(0, 5).Select(_ => ExpectMsg<Terminated>(TimeSpan.FromSeconds(5), cancellationToken: Ct).ActorRef).ToHashSet();
        Assert.Equal(recipients[..5].Select(u => refs[u]).ToHashSet(), firstRound);

        // Once they are gone, a full collection is asked for; until one that began after it reports, nothing more,
        // although the last reading is still above the mark.
        var collections = Volatile.Read(ref _collections);
        ExpectNoMsg(TimeSpan.FromSeconds(1.5), Ct);
        Assert.True(Volatile.Read(ref _collections) > collections);

        // A full collection: the heap is still high, so the next least recently used go.
        Heap(0.9, fullCollections: 2);
        var secondRound = Enumerable.Range(0, 3).Select(_ => ExpectMsg<Terminated>(TimeSpan.FromSeconds(5), cancellationToken: Ct).ActorRef).ToHashSet();
        Assert.Equal(recipients[5..8].Select(u => refs[u]).ToHashSet(), secondRound); // 15 live: a quarter is 3

        // Above the mark only with garbage: a full collection is asked for, nobody stops; below it, not even that.
        Heap(0.65, fullCollections: 3, current: 0.95);
        ExpectNoMsg(TimeSpan.FromSeconds(1.5), Ct);
        Heap(0.65, fullCollections: 4, current: 0.65);
        await Task.Delay(300, Ct);
        collections = Volatile.Read(ref _collections);
        ExpectNoMsg(TimeSpan.FromSeconds(1.5), Ct);
        Assert.Equal(collections, Volatile.Read(ref _collections));
        Assert.Equal(12, MemoryGovernor.Get(Sys).LiveCount);

        // A shed mailbox wakes from its journal with everything.
        for (var i = 0; i < 8; i++)
        {
            var page = Assert.IsType<ThreadPage>(await Region.Ask<object>(
                new GetThread(recipients[i], sent[i].ConversationId, 0, 50, null, null), Ask, Ct));
            Assert.Equal([$"hello {i}"], page.Messages.Select(m => m.Message.Text));
        }
    }

    [Theory]
    [InlineData(0.70, 100, 0)]   // at the mark: nothing
    [InlineData(0.71, 100, 16)]  // (0.71 - 0.6) / 0.71 of 100, rounded up
    [InlineData(0.90, 100, 25)]  // a third, capped at a quarter
    [InlineData(0.90, 2, 1)]     // at least one
    [InlineData(0.90, 0, 0)]     // nobody live
    public void Should_shed_the_share_of_the_heap_above_the_low_water_mark(double used, int live, int expected)
    {
        var heap = new HeapReading((long)(used * Limit), (long)(used * Limit), Limit, 1, 1);

        Assert.Equal(expected, MemoryGovernor.HowManyToShed(heap, 0.7, 0.6, live, 0.25));
    }

    [Fact]
    public void Should_shed_nothing_when_off_or_before_any_collection()
    {
        Assert.Equal(0, MemoryGovernor.HowManyToShed(new((long)(0.95 * Limit), (long)(0.95 * Limit), Limit, 1, 1), 0, 0.6, 100, 0.25));
        Assert.Equal(0, MemoryGovernor.HowManyToShed(new(0, 0, 0, 0, 0), 0.7, 0.6, 100, 0.25));
    }

    private sealed class Entity(long lastActive, long lastTouched = 0, long idleAfterMs = 0, IActorRef? self = null) : IGoverned
    {
        public IActorRef GovernedRef { get; } = self ?? ActorRefs.Nobody;

        public long LastActive { get; } = lastActive;

        public bool ShedAsked { get; set; }

        public long LastTouched { get; } = lastTouched;

        public long IdleAfterMs { get; } = idleAfterMs;
    }

    [Fact]
    public void Should_find_idle_those_untouched_for_their_own_idle_time_and_never_those_without_one()
    {
        var registry = new MemoryGovernor();
        var refs = Enumerable.Range(0, 5).Select(_ => CreateTestProbe().Ref).ToArray();
        registry.Enter(new Entity(0, lastTouched: 8_000, idleAfterMs: 2_000, refs[0])); // idle exactly 2 s: due
        registry.Enter(new Entity(0, lastTouched: 8_001, idleAfterMs: 2_000, refs[1])); // 1 ms short
        registry.Enter(new Entity(0, lastTouched: 1_000, idleAfterMs: 0, refs[2])); // never passivates itself
        registry.Enter(new Entity(9_999, lastTouched: 4_000, idleAfterMs: 5_000, refs[3])); // a request lately, but touched 6 s ago: due
        registry.Enter(new Entity(0, lastTouched: 9_000, idleAfterMs: 5_000, refs[4]));

        Assert.Equal(new[] { refs[0], refs[3] }.ToHashSet(), registry.IdleAt(10_000).ToHashSet());
    }

    [Fact]
    public void Should_choose_the_least_recently_used_once_each_sparing_those_used_lately()
    {
        var registry = new MemoryGovernor();
        var entities = new[] { new Entity(5_000), new Entity(1_000), new Entity(9_500), new Entity(3_000), new Entity(2_000) };
        foreach (var entity in entities)
            registry.Enter(entity);

        // now 10,000, sparing the last second: 9,500 is no candidate.
        var (first, candidates) = registry.LeastRecentlyUsed(_ => 2, 10_000, 1_000);
        Assert.Equal(4, candidates);
        Assert.Equal([entities[1], entities[4]], first);
        var (second, left) = registry.LeastRecentlyUsed(_ => 2, 10_000, 1_000);
        Assert.Equal(2, left); // the first round's are asked already
        Assert.Equal([entities[3], entities[0]], second);
        Assert.Empty(registry.LeastRecentlyUsed(_ => 2, 10_000, 1_000).Chosen);

        registry.Leave(entities[1]);
        Assert.False(registry.Contains(entities[1]));
        Assert.Equal(4, registry.LiveCount);
    }

    [Fact]
    public void Should_read_the_last_full_collection_as_the_live_heap()
    {
        var before = HeapReading.Now();
        GC.Collect(2, GCCollectionMode.Forced, blocking: true, compacting: true);
        var after = HeapReading.Now();

        Assert.True(after.FullIndex > before.LatestIndex, $"full collection {after.FullIndex} after {before.LatestIndex}");
        Assert.Equal(after.LatestIndex, after.FullIndex);
        Assert.InRange(after.UsedBytes, 1, after.CurrentBytes);
        Assert.True(after.LimitBytes > after.CurrentBytes);
    }
}
