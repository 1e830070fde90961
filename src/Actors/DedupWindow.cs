using System.Buffers;
using System.Collections;
using System.Runtime.InteropServices;
using System.Text;

namespace Messaging.Actors;

/// <summary>
/// The dedup window of a mailbox: the clientMessageIds of the user's newest sends, oldest first, each with what a
/// retry is checked against (<see cref="SentEntry"/>). Immutable, and flat: the entries sit in chunks of
/// <see cref="ChunkSize"/>, the newest fewer than that in a tail chunk that is copied on each add. A chunk keeps its
/// ids as UTF-8, back to back in one array, beside their entries and their hash codes, which a lookup scans
/// (vectorized, 32 per chunk: ~130 chunks at the default bound of 4,096) before it compares bytes.
/// </summary>
/// <remarks>
/// An id as a string cost 20 + 2 bytes per character (a UUID: 96 bytes) on top of its entry; as UTF-8 it costs one
/// byte per character (the API's ids are ASCII) and four for its end. A window of 4,096 UUIDs is ~260 KiB lighter. An
/// id that UTF-8 cannot carry unchanged (a lone surrogate; the API refuses them, so only a test writes one) is kept as
/// a marker byte that UTF-8 never uses followed by its UTF-16 code units, so two such ids never look alike.
/// </remarks>
public sealed class DedupWindow : IEnumerable<KeyValuePair<string, SentEntry>>
{
    /// <summary>Entries per full chunk.</summary>
    public const int ChunkSize = 32;

    public static readonly DedupWindow Empty = new([], Chunk.Empty, 0);

    private const byte Utf16Marker = 0xFF; // never a byte of UTF-8

    private readonly Chunk[] _chunks; // full chunks of exactly ChunkSize entries, oldest first
    private readonly Chunk _tail;     // the newest entries, fewer than ChunkSize
    private readonly int _skip;       // entries at the start of _chunks[0] that have left the window

    private DedupWindow(Chunk[] chunks, Chunk tail, int skip)
    {
        _chunks = chunks;
        _tail = tail;
        _skip = skip;
    }

    public int Count => _chunks.Length * ChunkSize - _skip + _tail.Count;

    /// <summary>The window of these entries, oldest first (at most the last <paramref name="bound"/> of them).</summary>
    /// <remarks>
    /// A recovery builds its window from the snapshot's: distinct ids, so each chunk is built once with its arrays
    /// sized, not by an add per entry (a lookup and a copy of the tail each: a fifth of what a wake spent building its
    /// state). Ids that repeat take the adds' way, whose result they define.
    /// </remarks>
    public static DedupWindow Create(IEnumerable<KeyValuePair<string, SentEntry>> entries, int bound)
    {
        var all = entries as KeyValuePair<string, SentEntry>[] ?? [.. entries]; // enumerated once
        var distinct = new HashSet<string>(all.Length, StringComparer.Ordinal);
        foreach (var (id, _) in all)
        {
            if (!distinct.Add(id))
                return OneByOne(all, bound);
        }
        var kept = all.AsSpan(Math.Max(0, all.Length - Math.Max(0, bound)));
        var chunks = new Chunk[kept.Length / ChunkSize];
        for (var c = 0; c < chunks.Length; c++)
            chunks[c] = Chunk.Of(kept.Slice(c * ChunkSize, ChunkSize));
        return new DedupWindow(chunks, Chunk.Of(kept[(chunks.Length * ChunkSize)..]), 0);
    }

    private static DedupWindow OneByOne(IEnumerable<KeyValuePair<string, SentEntry>> entries, int bound)
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
        entry = (chunk < 0 ? _tail : _chunks[chunk]).Sent[index];
        return true;
    }

    /// <summary>
    /// The window with <paramref name="clientMessageId"/> as its newest send, then its oldest sends removed until it
    /// holds at most <paramref name="bound"/>. An id already in the window keeps its place and takes the new entry.
    /// </summary>
    public DedupWindow Add(string clientMessageId, SentEntry entry, int bound)
    {
        DedupWindow next;
        if (Find(clientMessageId).Index >= 0)
        {
            next = Replaced(clientMessageId, entry);
        }
        else
        {
            var tail = _tail.With(clientMessageId, Hash(clientMessageId), entry);
            next = tail.Count < ChunkSize
                ? new DedupWindow(_chunks, tail, _skip)
                : new DedupWindow([.. _chunks, tail], Chunk.Empty, _skip);
        }
        while (next.Count > bound)
            next = next.WithoutOldest();
        return next;
    }

    private DedupWindow WithoutOldest()
    {
        if (_chunks.Length == 0)
            return new DedupWindow(_chunks, _tail.WithoutFirst(), 0);
        return _skip + 1 < ChunkSize
            ? new DedupWindow(_chunks, _tail, _skip + 1)
            : new DedupWindow(_chunks[1..], _tail, 0);
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
        var probe = new Probe(clientMessageId);
        try
        {
            var index = _tail.IndexOf(ref probe, 0);
            if (index >= 0)
                return (-1, index);
            for (var c = _chunks.Length - 1; c >= 0; c--)
            {
                index = _chunks[c].IndexOf(ref probe, c == 0 ? _skip : 0);
                if (index >= 0)
                    return (c, index);
            }
            return (-1, -1);
        }
        finally
        {
            probe.Dispose();
        }
    }

    private static int Hash(string clientMessageId) => StringComparer.Ordinal.GetHashCode(clientMessageId);

    /// <summary>Bytes of the id's form: its UTF-8 if that carries it unchanged (ASCII: one per character), else the
    /// marker and its UTF-16 code units.</summary>
    private static int EncodedLength(string id) =>
        Ascii.IsValid(id) ? id.Length : WindowMessage.RoundTrips(id) ? Encoding.UTF8.GetByteCount(id) : 1 + 2 * id.Length;

    /// <summary>Writes the id's form, <see cref="EncodedLength"/> bytes.</summary>
    private static void Encode(string id, Span<byte> into)
    {
        if (Ascii.IsValid(id))
        {
            Ascii.FromUtf16(id, into, out _);
        }
        else if (WindowMessage.RoundTrips(id))
        {
            Encoding.UTF8.GetBytes(id, into);
        }
        else
        {
            into[0] = Utf16Marker;
            MemoryMarshal.AsBytes(id.AsSpan()).CopyTo(into[1..]);
        }
    }

    private static string Decode(ReadOnlySpan<byte> bytes) =>
        bytes is [Utf16Marker, .. var units]
            ? new string(MemoryMarshal.Cast<byte, char>(units))
            : Encoding.UTF8.GetString(bytes);

    /// <summary>The entries, oldest first.</summary>
    public IEnumerator<KeyValuePair<string, SentEntry>> GetEnumerator()
    {
        for (var c = 0; c < _chunks.Length; c++)
        {
            for (var i = c == 0 ? _skip : 0; i < ChunkSize; i++)
                yield return KeyValuePair.Create(_chunks[c].Id(i), _chunks[c].Sent[i]);
        }
        for (var i = 0; i < _tail.Count; i++)
            yield return KeyValuePair.Create(_tail.Id(i), _tail.Sent[i]);
    }

    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();

    /// <summary>The id looked up: its hash code, and its bytes once a hash code matches (most lookups find none).</summary>
    private struct Probe(string id) : IDisposable
    {
        public readonly int Hash = DedupWindow.Hash(id);
        private byte[]? _rented;
        private int _length = -1;

        public ReadOnlySpan<byte> Bytes
        {
            get
            {
                if (_length < 0)
                {
                    _length = EncodedLength(id);
                    _rented = ArrayPool<byte>.Shared.Rent(Math.Max(_length, 1));
                    Encode(id, _rented.AsSpan(0, _length));
                }
                return _rented.AsSpan(0, _length);
            }
        }

        public void Dispose()
        {
            if (_rented is not null)
                ArrayPool<byte>.Shared.Return(_rented);
            _rented = null;
        }
    }

    /// <summary>Up to <see cref="ChunkSize"/> entries: their ids' bytes back to back, where each ends, hash codes, entries.</summary>
    private sealed class Chunk(byte[] ids, int[] ends, int[] hashes, SentEntry[] sent)
    {
        public static readonly Chunk Empty = new([], [], [], []);

        public SentEntry[] Sent => sent;

        public int Count => sent.Length;

        public string Id(int i) => Decode(Bytes(i));

        private ReadOnlySpan<byte> Bytes(int i) => ids.AsSpan(i == 0 ? 0 : ends[i - 1], ends[i] - (i == 0 ? 0 : ends[i - 1]));

        /// <summary>A chunk of these entries (distinct ids), each array allocated once at its size.</summary>
        public static Chunk Of(ReadOnlySpan<KeyValuePair<string, SentEntry>> entries)
        {
            if (entries.IsEmpty)
                return Empty;
            var ends = new int[entries.Length];
            var hashes = new int[entries.Length];
            var sent = new SentEntry[entries.Length];
            var length = 0;
            for (var i = 0; i < entries.Length; i++)
            {
                length += EncodedLength(entries[i].Key);
                ends[i] = length;
                hashes[i] = Hash(entries[i].Key);
                sent[i] = entries[i].Value;
            }
            var ids = new byte[length];
            for (var i = 0; i < entries.Length; i++)
                Encode(entries[i].Key, ids.AsSpan(i == 0 ? 0 : ends[i - 1], ends[i] - (i == 0 ? 0 : ends[i - 1])));
            return new Chunk(ids, ends, hashes, sent);
        }

        /// <summary>This chunk and one more entry: every array copied once.</summary>
        public Chunk With(string id, int hash, SentEntry entry)
        {
            var length = EncodedLength(id);
            var start = ids.Length;
            var nextIds = new byte[start + length];
            ids.CopyTo(nextIds, 0);
            Encode(id, nextIds.AsSpan(start));
            return new Chunk(nextIds, [.. ends, start + length], [.. hashes, hash], [.. sent, entry]);
        }

        /// <summary>This chunk without its first entry (only the tail loses entries one by one, below ChunkSize).</summary>
        public Chunk WithoutFirst()
        {
            var cut = ends[0];
            var nextEnds = new int[ends.Length - 1];
            for (var i = 1; i < ends.Length; i++)
                nextEnds[i - 1] = ends[i] - cut;
            return new Chunk(ids[cut..], nextEnds, hashes[1..], sent[1..]);
        }

        public int IndexOf(ref Probe probe, int from)
        {
            var at = from;
            while (at < hashes.Length)
            {
                var found = hashes.AsSpan(at).IndexOf(probe.Hash);
                if (found < 0)
                    return -1;
                at += found;
                if (Bytes(at).SequenceEqual(probe.Bytes))
                    return at;
                at++;
            }
            return -1;
        }
    }
}
