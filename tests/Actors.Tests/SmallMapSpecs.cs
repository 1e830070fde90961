namespace Messaging.Actors.Tests;

/// <summary>
/// <see cref="SmallMap{TValue}"/> against a <see cref="Dictionary{TKey,TValue}"/>: the same entries after every
/// update, flat up to its bound and a dictionary beyond, earlier maps unchanged by later updates.
/// </summary>
public sealed class SmallMapSpecs
{
    [Theory]
    [InlineData(1)]
    [InlineData(7)]
    [InlineData(42)]
    public void Holds_what_a_dictionary_holds_through_random_updates(int seed)
    {
        var random = new Random(seed);
        var map = SmallMap<long>.Empty;
        var model = new Dictionary<string, long>(StringComparer.Ordinal);
        var history = new List<(SmallMap<long> Map, Dictionary<string, long> Model)>();
        for (var step = 0; step < 600; step++)
        {
            // Keys from a pool that grows with the step, so the map passes its flat bound part way through.
            var key = $"user-{random.Next(0, 2 + step / 20)}";
            var value = random.NextInt64(0, 1_000_000);
            if (random.Next(10) == 0)
            {
                var batch = Enumerable.Range(0, random.Next(0, 12))
                    .Select(_ => KeyValuePair.Create($"user-{random.Next(0, 2 + step / 10)}", random.NextInt64(0, 1_000_000)))
                    .ToList();
                map = map.SetItems(batch);
                foreach (var (k, v) in batch)
                    model[k] = v;
            }
            else
            {
                map = map.SetItem(key, value);
                model[key] = value;
            }
            AssertSame(model, map);
            history.Add((map, new Dictionary<string, long>(model, StringComparer.Ordinal)));
        }
        // Immutable: every earlier map still holds what it held.
        foreach (var (earlier, held) in history)
            AssertSame(held, earlier);
    }

    [Fact]
    public void Is_flat_up_to_its_bound_and_a_dictionary_beyond()
    {
        var map = SmallMap<string>.Empty;
        Assert.True(map.IsEmpty);
        Assert.Empty(map);
        for (var i = 0; i < SmallMap<string>.FlatMax; i++)
        {
            map = map.SetItem($"k{i}", $"v{i}");
            Assert.True(map.IsFlat);
        }
        Assert.Equal(["k0", "k1", "k2", "k3", "k4", "k5", "k6", "k7"], map.Keys); // insertion order while flat

        var replaced = map.SetItem("k3", "again");
        Assert.True(replaced.IsFlat);
        Assert.Equal(SmallMap<string>.FlatMax, replaced.Count);
        Assert.Equal("again", replaced["k3"]);
        Assert.Equal("v3", map["k3"]);

        var grown = map.SetItem("k8", "v8");
        Assert.False(grown.IsFlat);
        Assert.Equal(9, grown.Count);
        Assert.Equal("v0", grown["k0"]);
        Assert.Equal("v8", grown["k8"]);
        Assert.True(map.IsFlat);
        Assert.False(map.ContainsKey("k8"));
    }

    [Fact]
    public void Compares_keys_ordinally_and_answers_what_it_lacks()
    {
        var map = SmallMap<long>.Empty.SetItem("bob", 1).SetItem("Bob", 2).SetItem("bob\n", 3);
        Assert.Equal(3, map.Count);
        Assert.Equal(1, map["bob"]);
        Assert.Equal(2, map["Bob"]);
        Assert.Equal(3, map["bob\n"]);
        Assert.False(map.TryGetValue("BOB", out _));
        Assert.Equal(0, map.GetValueOrDefault("carol"));
        Assert.Equal(-1, map.GetValueOrDefault("carol", -1));
        Assert.Throws<KeyNotFoundException>(() => map["carol"]);
        Assert.Throws<ArgumentNullException>(() => map.SetItem(null!, 1));
        Assert.Equal(0, SmallMap<long>.Empty.GetValueOrDefault("bob"));
        Assert.Empty(SmallMap<long>.Empty);
    }

    [Fact]
    public void Many_set_at_once_from_empty_come_out_whole()
    {
        var items = Enumerable.Range(0, 5_000).Select(i => KeyValuePair.Create($"u{i}", (long)i)).ToList();
        var map = SmallMap<long>.Empty.SetItems(items);
        Assert.Equal(5_000, map.Count);
        Assert.All(items, item => Assert.Equal(item.Value, map[item.Key]));
        var small = SmallMap<long>.Empty.SetItems(items.Take(3));
        Assert.True(small.IsFlat);
        Assert.Equal([0L, 1L, 2L], small.Values);
    }

    private static void AssertSame(Dictionary<string, long> model, SmallMap<long> map)
    {
        Assert.Equal(model.Count, map.Count);
        Assert.Equal(map.Count <= SmallMap<long>.FlatMax, map.IsFlat);
        foreach (var (key, value) in model)
        {
            Assert.True(map.TryGetValue(key, out var found), key);
            Assert.Equal(value, found);
        }
        var enumerated = new Dictionary<string, long>(StringComparer.Ordinal);
        foreach (var (key, value) in map)
            Assert.True(enumerated.TryAdd(key, value), $"{key} enumerated twice");
        Assert.Equal(model.OrderBy(e => e.Key, StringComparer.Ordinal), enumerated.OrderBy(e => e.Key, StringComparer.Ordinal));
        Assert.Equal(model.Values.Order(), map.Values.Order());
    }
}
