using System.Collections.Immutable;

namespace Messaging.Actors.Tests;

/// <summary>
/// <see cref="DedupWindow"/> against what it replaced (a dictionary plus a queue of ids, oldest evicted first): the
/// same ids held, the same entries, the same order, at bounds around its chunk size; and earlier windows unchanged.
/// </summary>
public sealed class DedupWindowSpecs
{
    private static SentEntry Entry(int i) => new($"r{i % 7}", 1_700_000_000_000 + i, (ulong)i * 31);

    /// <summary>The structure <see cref="MailboxState"/> kept before, as it applied a send.</summary>
    private sealed record Model(ImmutableDictionary<string, SentEntry> Dedup, ImmutableQueue<string> Order)
    {
        public static readonly Model Empty = new(ImmutableDictionary<string, SentEntry>.Empty.WithComparers(StringComparer.Ordinal), ImmutableQueue<string>.Empty);

        public Model Add(string id, SentEntry entry, int bound)
        {
            var dedup = Dedup.SetItem(id, entry);
            var order = Order.Enqueue(id);
            while (dedup.Count > bound)
            {
                order = order.Dequeue(out var oldest);
                dedup = dedup.Remove(oldest);
            }
            return new Model(dedup, order);
        }

        public List<KeyValuePair<string, SentEntry>> InOrder() => [.. Order.Select(id => KeyValuePair.Create(id, Dedup[id]))];
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(5)]
    [InlineData(31)]
    [InlineData(32)]
    [InlineData(33)]
    [InlineData(64)]
    [InlineData(100)]
    [InlineData(4096)]
    public void Should_hold_exactly_what_the_dictionary_and_queue_held_send_after_send(int bound)
    {
        var random = new Random(bound);
        var window = DedupWindow.Empty;
        var model = Model.Empty;
        var history = new List<DedupWindow>();
        var sends = Math.Max(3 * bound, 200);
        for (var i = 0; i < sends; i++)
        {
            var id = $"c{i}";
            window = window.Add(id, Entry(i), bound);
            model = model.Add(id, Entry(i), bound);
            history.Add(window);

            Assert.Equal(model.Dedup.Count, window.Count);
            // Lookups of ids in the window, just evicted, long gone, never used, and of a colliding-looking one.
            foreach (var probe in new[] { id, $"c{i - bound}", $"c{i - bound + 1}", $"c{random.Next(i + 1)}", "never", $"c{i}x" })
            {
                Assert.Equal(model.Dedup.TryGetValue(probe, out var expected), window.TryGetValue(probe, out var actual));
                Assert.Equal(expected, actual);
                Assert.Equal(model.Dedup.ContainsKey(probe), window.ContainsKey(probe));
            }
            if (i % 17 == 0 || i == sends - 1)
                Assert.Equal(model.InOrder(), window.ToList());
        }
        // Immutable: an earlier window still holds what it held.
        var earlier = history[sends / 2];
        Assert.Equal(Math.Min(bound, sends / 2 + 1), earlier.Count);
        Assert.Equal(earlier.Count > 0, earlier.ContainsKey($"c{sends / 2}"));
    }

    [Fact]
    public void Should_be_rebuilt_from_its_entries_in_the_same_order_and_cut_to_the_bound()
    {
        var window = DedupWindow.Empty;
        for (var i = 0; i < 100; i++)
            window = window.Add($"c{i}", Entry(i), 70);

        Assert.Equal(window.ToList(), DedupWindow.Create(window, 70).ToList());
        var cut = DedupWindow.Create(window, 40);
        Assert.Equal(window.Skip(30).ToList(), cut.ToList());
        Assert.False(cut.ContainsKey("c59"));
        Assert.True(cut.ContainsKey("c60"));
    }

    [Theory]
    [InlineData(0, 10)]
    [InlineData(31, 100)]
    [InlineData(32, 100)]
    [InlineData(33, 100)]
    [InlineData(100, 64)]
    [InlineData(200, 70)]
    [InlineData(20, 0)]
    public void Should_build_from_entries_given_at_once_the_window_their_adds_build(int count, int bound)
    {
        var entries = Enumerable.Range(0, count).Select(i => KeyValuePair.Create($"c{i}", Entry(i))).ToList();
        var model = Model.Empty;
        foreach (var (id, entry) in entries)
            model = model.Add(id, entry, bound);

        var window = DedupWindow.Create(entries, bound);

        Assert.Equal(model.InOrder(), window.ToList());
        foreach (var (id, entry) in model.InOrder())
        {
            Assert.True(window.TryGetValue(id, out var held), id);
            Assert.Equal(entry, held);
        }
        for (var i = 0; i < count - bound; i++)
            Assert.False(window.ContainsKey($"c{i}"));
        // It then goes on as any window.
        for (var i = count; i < count + 40; i++)
        {
            model = model.Add($"c{i}", Entry(i), bound);
            window = window.Add($"c{i}", Entry(i), bound);
        }
        Assert.Equal(model.InOrder(), window.ToList());
    }

    [Fact]
    public void Should_build_from_entries_that_repeat_an_id_what_their_adds_build()
    {
        var entries = Enumerable.Range(0, 50).Select(i => KeyValuePair.Create($"c{i}", Entry(i)))
            .Append(KeyValuePair.Create("c3", Entry(997)))
            .Append(KeyValuePair.Create("c45", Entry(998)))
            .ToList();
        foreach (var bound in new[] { 100, 40 })
        {
            var added = DedupWindow.Empty;
            foreach (var (id, entry) in entries)
                added = added.Add(id, entry, bound);

            var window = DedupWindow.Create(entries, bound);

            Assert.Equal(added.ToList(), window.ToList());
            // Held in its place (bound 100), or added again as the newest after it left (bound 40), with its new entry.
            Assert.True(window.TryGetValue("c3", out var again));
            Assert.Equal(Entry(997), again);
            Assert.Equal(bound == 100 ? 3 : 39, window.Select(e => e.Key).ToList().IndexOf("c3"));
            Assert.True(window.TryGetValue("c45", out var replaced));
            Assert.Equal(Entry(998), replaced);
        }
    }

    [Fact]
    public void Should_give_an_id_it_holds_the_new_entry_in_its_place()
    {
        var window = DedupWindow.Empty;
        for (var i = 0; i < 40; i++)
            window = window.Add($"c{i}", Entry(i), 100);

        var again = window.Add("c3", Entry(999), 100);

        Assert.Equal(40, again.Count);
        Assert.True(again.TryGetValue("c3", out var entry));
        Assert.Equal(Entry(999), entry);
        Assert.Equal(window.Select(e => e.Key), again.Select(e => e.Key));
        Assert.True(window.TryGetValue("c3", out var before));
        Assert.Equal(Entry(3), before);
    }

    /// <summary>
    /// Ids are kept as bytes: UTF-8, or (for what UTF-8 cannot carry unchanged, a lone surrogate) their UTF-16 code
    /// units behind a marker. Ids that would encode alike under plain UTF-8 (a lone surrogate becomes U+FFFD) stay apart,
    /// and every id comes back as it was given.
    /// </summary>
    [Fact]
    public void Should_keep_every_id_exactly_whatever_its_characters()
    {
        string[] ids =
        [
            "plain-ascii", "é-accent", "\uFFFD", "\uD800", "\uDC00", "a\uD800b", "a\uFFFDb", "日本語", "\U0001F600", "",
            new string('x', 5000), new string('é', 3000), "\uD800\uD800",
        ];
        var window = DedupWindow.Empty;
        for (var i = 0; i < ids.Length; i++)
            window = window.Add(ids[i], Entry(i), 100);
        // More than a chunk, so some of them sit in a full chunk and the rest in the tail.
        for (var i = 0; i < DedupWindow.ChunkSize; i++)
            window = window.Add($"fill{i}", Entry(100 + i), 100);

        for (var i = 0; i < ids.Length; i++)
        {
            Assert.True(window.TryGetValue(ids[i], out var entry), $"id {i}");
            Assert.Equal(Entry(i), entry);
        }
        Assert.Equal(ids, window.Take(ids.Length).Select(e => e.Key));
        Assert.False(window.ContainsKey("\uDBFF"));
        Assert.False(window.ContainsKey("a\uDC00b"));
        Assert.False(window.ContainsKey("plain-asci"));
        Assert.False(window.ContainsKey(new string('x', 4999)));

        // Evicted from the front of a chunk one by one, the rest still found.
        var cut = DedupWindow.Create(window, window.Count - 5);
        Assert.Equal(ids.Skip(5), cut.Take(ids.Length - 5).Select(e => e.Key));
        Assert.False(cut.ContainsKey("\uD800"));
        Assert.True(cut.ContainsKey("a\uD800b"));

        // Below a chunk, the oldest leave the tail one by one (its ends shifted each time).
        var small = DedupWindow.Empty;
        for (var i = 0; i < ids.Length; i++)
        {
            small = small.Add(ids[i], Entry(i), 4);
            var expected = ids.Take(i + 1).TakeLast(4).ToArray();
            Assert.Equal(expected, small.Select(e => e.Key));
            foreach (var id in expected)
                Assert.True(small.ContainsKey(id));
        }
    }
}
