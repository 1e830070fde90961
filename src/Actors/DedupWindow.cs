using System.Collections;

namespace Messaging.Actors;

/// <summary>
/// The dedup window of a mailbox: the clientMessageIds of the user's newest sends, oldest first, each with what a
/// retry is checked against (<see cref="SentEntry"/>). Immutable, and flat: the entries sit in arrays of
/// <see cref="ChunkSize"/> (32 bytes each, with their ids' hash codes beside them in an int array that a lookup scans),
/// the newest fewer than that in a tail array that is copied on each add. A window of 25 sends is two arrays (~1 KiB);
/// a hash-trie dictionary plus a queue held ~112 bytes per send on top of the entries. A lookup scans the hash codes
/// (vectorized, 32 per chunk): ~130 chunks at the default bound of 4,096.
/// </summary>
public sealed class DedupWindow : IEnumerable<KeyValuePair<string, SentEntry>>
{
    /// <summary>Entries per full chunk.</summary>
    public const int ChunkSize = 32;

    public static readonly DedupWindow Empty = new([], [], [], [], 0);

    private readonly Entry[][] _chunks;   // full chunks of exactly ChunkSize entries, oldest first
    private readonly int[][] _chunkHashes;
    private readonly Entry[] _tail;       // the newest entries, fewer than ChunkSize
    private readonly int[] _tailHashes;
    private readonly int _skip;           // entries at the start of _chunks[0] that have left the window

    private DedupWindow(Entry[][] chunks, int[][] chunkHashes, Entry[] tail, int[] tailHashes, int skip)
    {
        _chunks = chunks;
        _chunkHashes = chunkHashes;
        _tail = tail;
        _tailHashes = tailHashes;
        _skip = skip;
    }

    public int Count => _chunks.Length * ChunkSize - _skip + _tail.Length;

    /// <summary>The window of these entries, oldest first (at most the last <paramref name="bound"/> of them).</summary>
    public static DedupWindow Create(IEnumerable<KeyValuePair<string, SentEntry>> entries, int bound)
    {
        var window = Empty;
        foreach (var (id, entry) in entries)
            window = window.Add(id, entry, bound);
        return window;
    }

    public bool ContainsKey(string clientMessageId) => TryGetValue(clientMessageId, out _);

    public bool TryGetValue(string clientMessageId, out SentEntry entry)
    {
        var (chunk, index) = Find(clientMessageId);
        if (index < 0)
        {
            entry = default;
            return false;
        }
        entry = (chunk < 0 ? _tail : _chunks[chunk])[index].Sent;
        return true;
    }

    /// <summary>
    /// The window with <paramref name="clientMessageId"/> as its newest send, then its oldest sends removed until it
    /// holds at most <paramref name="bound"/>. An id already in the window keeps its place and takes the new entry.
    /// </summary>
    public DedupWindow Add(string clientMessageId, SentEntry entry, int bound)
    {
        var hash = Hash(clientMessageId);
        DedupWindow next;
        if (Find(clientMessageId).Index >= 0)
            next = Replaced(clientMessageId, entry);
        else if (_tail.Length + 1 < ChunkSize)
            next = new DedupWindow(_chunks, _chunkHashes, [.. _tail, new Entry(clientMessageId, entry)], [.. _tailHashes, hash], _skip);
        else
            next = new DedupWindow([.. _chunks, [.. _tail, new Entry(clientMessageId, entry)]], [.. _chunkHashes, [.. _tailHashes, hash]], [], [], _skip);
        while (next.Count > bound)
            next = next.WithoutOldest();
        return next;
    }

    private DedupWindow WithoutOldest()
    {
        if (_chunks.Length == 0)
            return new DedupWindow(_chunks, _chunkHashes, _tail[1..], _tailHashes[1..], 0);
        return _skip + 1 < ChunkSize
            ? new DedupWindow(_chunks, _chunkHashes, _tail, _tailHashes, _skip + 1)
            : new DedupWindow(_chunks[1..], _chunkHashes[1..], _tail, _tailHashes, 0);
    }

    // Never on the mailbox's paths (a send is applied only with an id the window does not hold): rebuilt in full.
    private DedupWindow Replaced(string clientMessageId, SentEntry entry)
    {
        var window = Empty;
        foreach (var (id, kept) in this)
            window = window.Add(id, id == clientMessageId ? entry : kept, int.MaxValue);
        return window;
    }

    /// <summary>Where the id is: (-1, index) in the tail, (chunk, index) in a full chunk, index -1 if not held.</summary>
    private (int Chunk, int Index) Find(string clientMessageId)
    {
        var hash = Hash(clientMessageId);
        var index = IndexIn(_tail, _tailHashes, 0, hash, clientMessageId);
        if (index >= 0)
            return (-1, index);
        for (var c = _chunks.Length - 1; c >= 0; c--)
        {
            index = IndexIn(_chunks[c], _chunkHashes[c], c == 0 ? _skip : 0, hash, clientMessageId);
            if (index >= 0)
                return (c, index);
        }
        return (-1, -1);
    }

    private static int IndexIn(Entry[] entries, int[] hashes, int from, int hash, string clientMessageId)
    {
        var at = from;
        while (at < hashes.Length)
        {
            var found = hashes.AsSpan(at).IndexOf(hash);
            if (found < 0)
                return -1;
            at += found;
            if (string.Equals(entries[at].Id, clientMessageId, StringComparison.Ordinal))
                return at;
            at++;
        }
        return -1;
    }

    private static int Hash(string clientMessageId) => StringComparer.Ordinal.GetHashCode(clientMessageId);

    /// <summary>The entries, oldest first.</summary>
    public IEnumerator<KeyValuePair<string, SentEntry>> GetEnumerator()
    {
        for (var c = 0; c < _chunks.Length; c++)
        {
            for (var i = c == 0 ? _skip : 0; i < ChunkSize; i++)
                yield return KeyValuePair.Create(_chunks[c][i].Id, _chunks[c][i].Sent);
        }
        foreach (var e in _tail)
            yield return KeyValuePair.Create(e.Id, e.Sent);
    }

    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();

    private readonly record struct Entry(string Id, SentEntry Sent);
}
