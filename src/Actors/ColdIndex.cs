using System.Collections.Immutable;
using Messaging.Messages;

namespace Messaging.Actors;

/// <summary>
/// Where a mailbox's cold conversations are (those that left its memory, <see cref="ConversationsArchived"/>):
/// extendible hashing over a 64-bit digest of the conversation id. Pages live in the mailbox's own journal, each
/// written whole in the event that last changed it; the mailbox keeps only the directory: for each of its 2^depth slots
/// the journal sequence number of that event (0: no page). Finding a conversation is one read of one event; adding one
/// is one read and one write (of the page, or of its two halves when it grows past <see cref="MaxPageEntries"/>). The
/// directory costs 8 bytes per slot, about one slot per 32 to 64 cold conversations: a mailbox written to by a million
/// senders keeps a directory of at most 256 KiB, where their entries in memory took hundreds of MiB.
/// Pure and immutable, as the state that holds it.
/// </summary>
/// <param name="Directory">Empty until the first page (one slot, no page).</param>
/// <param name="Count">Conversations that are cold (archived and not restored since).</param>
/// <param name="HasGroups">A group conversation was archived once (1.9.0): the snapshot says so under a manifest 1.8.0
/// refuses, since 1.8.0 would take a cold group for a new one. Never unset.</param>
/// <param name="HasChannels">A channel with someone met only in groups went cold once (1.10.0), as an entry of its own
/// (<see cref="ColdEntry.ChannelOnly"/>): the snapshot says so under a manifest 1.9 refuses. Never unset. Such entries
/// are not counted in <paramref name="Count"/>, which counts conversations.</param>
public sealed record ColdIndex(ImmutableArray<long> Directory, long Count, bool HasGroups = false, bool HasChannels = false)
{
    public static readonly ColdIndex Empty = new([], 0);

    /// <summary>A page past this many entries splits in two (the event that adds to it carries both halves).</summary>
    public const int MaxPageEntries = 64;

    /// <summary>
    /// A page of more than <see cref="MinPageEntries"/> entries past this many bytes (estimated,
    /// <see cref="EstimatedBytes"/>) splits too, since every archive into a page writes it whole: a group's entry
    /// carries its members and their receipts (~2.4 KB for 32 members, up to ~40 KB for 1,024), where a 1:1 entry is
    /// ~150 bytes, so 64 entries of 1:1 conversations never reach it.
    /// </summary>
    public const int MaxPageBytes = 32 * 1024;

    /// <summary>
    /// Pages this small never split for their bytes: entries alone in their pages would deepen the directory by the
    /// bits it takes to tell any two of them apart (a directory of about n^2 slots for n entries; n^1.25 with four).
    /// </summary>
    public const int MinPageEntries = 4;

    /// <summary>
    /// How deep a page may split for its bytes (<see cref="MaxPageBytes"/>): to about one directory slot per 8 cold
    /// conversations, never deeper. Past it a page of large entries stays large (its archives cost more journal) rather
    /// than double a directory every mailbox snapshot carries: one group of 1,024 members among a million cold 1:1
    /// conversations would otherwise split its page until it stood alone, at a depth ~16 times the directory's slots.
    /// </summary>
    public static int ByteSplitDepth(long count) => Math.Min(MaxDepth, System.Numerics.BitOperations.Log2((ulong)Math.Max(1, count / 8)) + 1);

    /// <summary>Deeper than this a page does not split (its entries share 24 bits of a SHA-256 digest): it only grows.</summary>
    public const int MaxDepth = 24;

    /// <summary>The directory's depth: it has 2^Depth slots.</summary>
    public int Depth => Directory.IsDefaultOrEmpty ? 0 : System.Numerics.BitOperations.Log2((uint)Directory.Length);

    /// <summary>Stable across processes and releases (a string's hash code is not).</summary>
    public static ulong Digest(string conversationId) => Ids.TextHash(conversationId);

    private static ulong Mask(int depth) => depth >= 64 ? ulong.MaxValue : (1UL << depth) - 1;

    /// <summary>The journal sequence number of the event holding the page <paramref name="conversationId"/> would be in; 0: none.</summary>
    public long PageOf(string conversationId) =>
        Directory.IsDefaultOrEmpty ? 0 : Directory[(int)(Digest(conversationId) & Mask(Depth))];

    /// <summary>A first page for a digest whose slot has none: exactly that slot.</summary>
    public ColdPage NewPage(ulong digest) => new(Depth, digest & Mask(Depth), []);

    /// <summary>The page of <paramref name="pages"/> (an event's) that a conversation with <paramref name="digest"/> is in, if any.</summary>
    public static ColdPage? PageFor(ImmutableArray<ColdPage> pages, ulong digest)
    {
        foreach (var page in pages)
        {
            if ((digest & Mask(page.Depth)) == page.Bits)
                return page;
        }
        return null;
    }

    /// <summary>
    /// <paramref name="page"/> with <paramref name="entries"/> in it (replacing an entry of the same conversation), without
    /// the entries <paramref name="stale"/> says are read no more (conversations, or channels alone, back in memory since
    /// they were written: a page's entry is read only while it is cold), split until no page passes <see cref="MaxPageEntries"/>, nor
    /// <see cref="MaxPageBytes"/> above <see cref="MinPageEntries"/> entries while shallower than
    /// <paramref name="byteSplitDepth"/> (<see cref="ByteSplitDepth"/> of the cold count).
    /// </summary>
    public static ImmutableArray<ColdPage> Put(ColdPage page, IReadOnlyCollection<ColdEntry> entries, Func<ColdEntry, bool> stale, int byteSplitDepth)
    {
        var added = entries.Select(e => e.Conversation.ConversationId).ToHashSet(StringComparer.Ordinal);
        var kept = page.Entries
            .Where(e => !added.Contains(e.Conversation.ConversationId) && !stale(e))
            .Concat(entries)
            .ToImmutableArray();
        var done = ImmutableArray.CreateBuilder<ColdPage>();
        var todo = new Stack<ColdPage>();
        todo.Push(page with { Entries = kept });
        while (todo.TryPop(out var next))
        {
            var tooMany = next.Entries.Length > MaxPageEntries;
            var tooLarge = next.Entries.Length > MinPageEntries && next.Depth < byteSplitDepth && next.Entries.Sum(EstimatedBytes) > MaxPageBytes;
            if (next.Depth >= MaxDepth || !tooMany && !tooLarge)
            {
                done.Add(next);
                continue;
            }
            // Split on the next bit of the digest: both halves are written, an empty one too (its slots then say "none here").
            var bit = 1UL << next.Depth;
            var high = next.Entries.Where(e => (Digest(e.Conversation.ConversationId) & bit) != 0).ToImmutableArray();
            var low = next.Entries.Where(e => (Digest(e.Conversation.ConversationId) & bit) == 0).ToImmutableArray();
            todo.Push(new ColdPage(next.Depth + 1, next.Bits, low));
            todo.Push(new ColdPage(next.Depth + 1, next.Bits | bit, high));
        }
        return done.ToImmutable();
    }

    /// <summary>
    /// About how many bytes an entry takes in its page's event (protobuf: UTF-8 text, varints): what it holds, counted
    /// generously. Only where pages split depends on it, and that is carried in the events, never computed again.
    /// </summary>
    public static long EstimatedBytes(ColdEntry entry)
    {
        var c = entry.Conversation;
        long bytes = 64 + 3L * (c.ConversationId.Length + c.Snippet.Length + (c.Name?.Length ?? 0)) + 10L * c.Anchors.Length;
        foreach (var participant in c.ParticipantIds)
            bytes += participant.Length + 3;
        foreach (var receipt in c.Receipts)
            bytes += receipt.UserId.Length + 40;
        foreach (var sender in c.UnreadSenders.IsDefault ? [] : c.UnreadSenders)
            bytes += sender.Length + 3;
        foreach (var message in c.Window?.Messages ?? [])
            bytes += message.Length + 8;
        foreach (var message in c.Recent)
            bytes += 3L * message.Message.Text.Length + 64;
        return bytes;
    }

    /// <summary>
    /// The index once the event at <paramref name="journalSeq"/> wrote <paramref name="pages"/>: their slots point at it.
    /// <paramref name="groups"/>: the event took a group out (<see cref="HasGroups"/> from then on); <paramref name="channels"/>:
    /// a channel alone (<see cref="HasChannels"/> from then on).
    /// </summary>
    public ColdIndex With(ImmutableArray<ColdPage> pages, long journalSeq, long countDelta, bool groups = false, bool channels = false)
    {
        if (pages.IsDefaultOrEmpty)
            return this with { Count = Count + countDelta, HasGroups = HasGroups || groups, HasChannels = HasChannels || channels };
        var directory = Directory.IsDefaultOrEmpty ? new long[] { 0 } : Directory.ToArray();
        foreach (var page in pages)
        {
            if (page.Depth is < 0 or > MaxDepth || page.Bits > Mask(page.Depth))
                throw new InvalidDataException($"a cold page of depth {page.Depth} with bits {page.Bits:x}");
            while (directory.Length < 1 << page.Depth)
            {
                // One bit deeper: each slot's twin (the same low bits, the new bit set) points where it did.
                var doubled = new long[directory.Length * 2];
                directory.CopyTo(doubled, 0);
                directory.CopyTo(doubled, directory.Length);
                directory = doubled;
            }
            for (var slot = (long)page.Bits; slot < directory.Length; slot += 1L << page.Depth)
                directory[slot] = journalSeq;
        }
        return new ColdIndex(ImmutableArray.Create(directory), Count + countDelta, HasGroups || groups, HasChannels || channels);
    }
}
