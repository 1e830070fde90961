using System.Collections.Immutable;

namespace Messaging.Messages;

/// <summary>
/// A 1:1 conversation that left a mailbox's memory and snapshot, as its cold page keeps it: the index entry (no
/// window: its pages are read from the journal) and the two channel positions with the other participant, which
/// leave memory with it (a conversation leaves only with nothing pending on its outbound channel).
/// </summary>
/// <param name="InboundSeq">The last copy stored from the other participant (their channel's number).</param>
/// <param name="OutboundSeq">The last copy numbered on the channel to them, every one of them confirmed.</param>
/// <param name="ChannelOnly">1.10.0: only the channel positions with someone this user met in groups and has no 1:1
/// conversation with (receipts to and from co-members); <paramref name="Conversation"/> then holds the 1:1 id (which
/// every lookup of the channel uses) and the two participants, nothing else, and is no conversation.</param>
public sealed record ColdEntry(ConversationSnapshot Conversation, long InboundSeq, long OutboundSeq, bool ChannelOnly = false);

/// <summary>
/// One page of a mailbox's cold index (extendible hashing over a digest of the conversation id): the entries whose
/// digest ends in the <paramref name="Depth"/> bits <paramref name="Bits"/>. A page is written whole in the event that
/// changes it; the mailbox keeps only where each page's latest version is.
/// </summary>
public sealed record ColdPage(int Depth, ulong Bits, ImmutableArray<ColdEntry> Entries)
{
    /// <summary>Never a default array (protobuf reads "absent" as empty, and so does everyone else).</summary>
    public ImmutableArray<ColdEntry> Entries { get; init; } = Entries.IsDefault ? [] : Entries;
}

/// <summary>
/// Conversations left the mailbox's memory (the least recently changed, past MaxConversationsInMemory): they leave
/// the index, the list and the snapshot, and <see cref="Pages"/> (one, or two when it split) hold them from now on,
/// in this event. Release 1.8.0.
/// </summary>
public sealed record ConversationsArchived(ImmutableArray<ColdPage> Pages, ImmutableArray<string> ConversationIds) : IMailboxEvent
{
    public ImmutableArray<ColdPage> Pages { get; init; } = Pages.IsDefault ? [] : Pages;

    public ImmutableArray<string> ConversationIds { get; init; } = ConversationIds.IsDefault ? [] : ConversationIds;
}

/// <summary>A cold conversation is back in memory as its page kept it, before a message, a receipt or a marker changes it. Release 1.8.0.</summary>
public sealed record ConversationRestored(ColdEntry Entry) : IMailboxEvent;
