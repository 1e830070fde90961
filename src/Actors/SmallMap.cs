using System.Collections;
using System.Collections.Immutable;
using System.Runtime.CompilerServices;

namespace Messaging.Actors;

/// <summary>
/// An immutable map from ordinal strings to values, for a mailbox's per-conversation and per-peer tables (its
/// conversations, delivery channels, inbound positions). Most users have a handful of each: up to
/// <see cref="FlatMax"/> entries it is one flat array (24 bytes plus 16 to 32 per entry, copied on each update),
/// beyond that an <see cref="ImmutableDictionary{TKey,TValue}"/> (a 64-byte trie node per entry, updated by path
/// copying). A struct holding one reference, so an empty map costs the field alone.
/// <para>
/// Enumeration order is insertion order while flat and the dictionary's (hash) order beyond; callers must not depend
/// on it. Entries are removed only when a conversation goes cold (<see cref="Remove"/>).
/// </para>
/// </summary>
public readonly struct SmallMap<TValue> : IReadOnlyDictionary<string, TValue>, IEquatable<SmallMap<TValue>>
{
    /// <summary>Entries kept flat; the ninth moves the map to a dictionary for good.</summary>
    internal const int FlatMax = 8;

    // null: empty; KeyValuePair<string, TValue>[]: 1 to FlatMax entries; ImmutableDictionary<string, TValue>: more.
    private readonly object? _items;

    private SmallMap(object? items) => _items = items;

    public static SmallMap<TValue> Empty => default;

    public int Count => _items switch
    {
        null => 0,
        KeyValuePair<string, TValue>[] flat => flat.Length,
        _ => Tree.Count,
    };

    public bool IsEmpty => _items is null;

    /// <summary>True while the map is one flat array (or empty): for tests of the switch.</summary>
    internal bool IsFlat => _items is null or KeyValuePair<string, TValue>[];

    private ImmutableDictionary<string, TValue> Tree => Unsafe.As<ImmutableDictionary<string, TValue>>(_items)!;

    public TValue this[string key] =>
        TryGetValue(key, out var value) ? value : throw new KeyNotFoundException($"'{key}' is not in the map");

    public bool ContainsKey(string key) => TryGetValue(key, out _);

    public bool TryGetValue(string key, out TValue value)
    {
        switch (_items)
        {
            case null:
                break;
            case KeyValuePair<string, TValue>[] flat:
                var i = IndexOf(flat, key);
                if (i >= 0)
                {
                    value = flat[i].Value;
                    return true;
                }
                break;
            default:
                return Tree.TryGetValue(key, out value!);
        }
        value = default!;
        return false;
    }

    public TValue? GetValueOrDefault(string key) => TryGetValue(key, out var value) ? value : default;

    public TValue GetValueOrDefault(string key, TValue defaultValue) => TryGetValue(key, out var value) ? value : defaultValue;

    /// <summary>This map with <paramref name="key"/> set to <paramref name="value"/> (added, or replaced in place).</summary>
    public SmallMap<TValue> SetItem(string key, TValue value)
    {
        ArgumentNullException.ThrowIfNull(key);
        switch (_items)
        {
            case null:
                return new SmallMap<TValue>(new[] { KeyValuePair.Create(key, value) });
            case KeyValuePair<string, TValue>[] flat:
                var i = IndexOf(flat, key);
                if (i >= 0)
                {
                    var replaced = (KeyValuePair<string, TValue>[])flat.Clone();
                    replaced[i] = KeyValuePair.Create(key, value);
                    return new SmallMap<TValue>(replaced);
                }
                if (flat.Length < FlatMax)
                {
                    var grown = new KeyValuePair<string, TValue>[flat.Length + 1];
                    flat.CopyTo(grown, 0);
                    grown[^1] = KeyValuePair.Create(key, value);
                    return new SmallMap<TValue>(grown);
                }
                var builder = ToBuilder();
                builder[key] = value;
                return new SmallMap<TValue>(builder.ToImmutable());
            default:
                return new SmallMap<TValue>(Tree.SetItem(key, value));
        }
    }

    /// <summary>Without <paramref name="key"/> (the same map if it is not there); a tree that shrinks to the flat size stays a tree.</summary>
    public SmallMap<TValue> Remove(string key)
    {
        switch (_items)
        {
            case null:
                return this;
            case KeyValuePair<string, TValue>[] flat:
                var i = IndexOf(flat, key);
                if (i < 0)
                    return this;
                if (flat.Length == 1)
                    return default;
                var shrunk = new KeyValuePair<string, TValue>[flat.Length - 1];
                Array.Copy(flat, 0, shrunk, 0, i);
                Array.Copy(flat, i + 1, shrunk, i, flat.Length - i - 1);
                return new SmallMap<TValue>(shrunk);
            default:
                var tree = Tree.Remove(key);
                return ReferenceEquals(tree, _items) ? this : new SmallMap<TValue>(tree.IsEmpty ? null : tree);
        }
    }

    /// <summary>This map with every one of <paramref name="items"/> set, in order (a later one wins).</summary>
    public SmallMap<TValue> SetItems(IEnumerable<KeyValuePair<string, TValue>> items)
    {
        var map = this;
        ImmutableDictionary<string, TValue>.Builder? builder = null;
        foreach (var (key, value) in items)
        {
            if (builder is not null)
                builder[key] = value;
            else if (map.IsFlat && (map.Count < FlatMax || map.ContainsKey(key)))
                map = map.SetItem(key, value);
            else
            {
                // Many at once (a snapshot's tables): one builder instead of a new dictionary per entry.
                builder = map.ToBuilder();
                builder[key] = value;
            }
        }
        return builder is null ? map : new SmallMap<TValue>(builder.ToImmutable());
    }

    public IEnumerable<string> Keys
    {
        get
        {
            foreach (var entry in this)
                yield return entry.Key;
        }
    }

    public IEnumerable<TValue> Values
    {
        get
        {
            foreach (var entry in this)
                yield return entry.Value;
        }
    }

    public Enumerator GetEnumerator() => new(_items);

    IEnumerator<KeyValuePair<string, TValue>> IEnumerable<KeyValuePair<string, TValue>>.GetEnumerator() => GetEnumerator();

    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();

    public bool Equals(SmallMap<TValue> other) => ReferenceEquals(_items, other._items);

    public override bool Equals(object? obj) => obj is SmallMap<TValue> other && Equals(other);

    public override int GetHashCode() => _items is null ? 0 : RuntimeHelpers.GetHashCode(_items);

    public static bool operator ==(SmallMap<TValue> left, SmallMap<TValue> right) => left.Equals(right);

    public static bool operator !=(SmallMap<TValue> left, SmallMap<TValue> right) => !left.Equals(right);

    private ImmutableDictionary<string, TValue>.Builder ToBuilder()
    {
        if (_items is ImmutableDictionary<string, TValue> tree)
            return tree.ToBuilder();
        var builder = ImmutableDictionary.CreateBuilder<string, TValue>(StringComparer.Ordinal);
        if (_items is KeyValuePair<string, TValue>[] flat)
            builder.AddRange(flat);
        return builder;
    }

    private static int IndexOf(KeyValuePair<string, TValue>[] flat, string key)
    {
        for (var i = 0; i < flat.Length; i++)
        {
            if (string.Equals(flat[i].Key, key, StringComparison.Ordinal))
                return i;
        }
        return -1;
    }

    /// <summary>Walks the flat array without allocating, or the dictionary through its own enumerator.</summary>
    public struct Enumerator : IEnumerator<KeyValuePair<string, TValue>>
    {
        private readonly KeyValuePair<string, TValue>[]? _flat;
        private ImmutableDictionary<string, TValue>.Enumerator _tree;
        private readonly bool _isTree;
        private int _index;

        internal Enumerator(object? items)
        {
            _flat = items as KeyValuePair<string, TValue>[];
            _isTree = items is ImmutableDictionary<string, TValue>;
            _tree = _isTree ? ((ImmutableDictionary<string, TValue>)items!).GetEnumerator() : default;
            _index = -1;
        }

        public readonly KeyValuePair<string, TValue> Current => _isTree ? _tree.Current : _flat![_index];

        readonly object IEnumerator.Current => Current;

        public bool MoveNext() => _isTree ? _tree.MoveNext() : _flat is not null && ++_index < _flat.Length;

        public void Reset() => throw new NotSupportedException();

        public void Dispose()
        {
            if (_isTree)
                _tree.Dispose();
        }
    }
}
