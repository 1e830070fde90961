using System.Collections.Immutable;

namespace Messaging.Messages;

/// <summary>One conversation as a snapshot keeps it: the index entry plus the window of recent messages.</summary>
/// <param name="Anchors">
/// <c>Anchors[k]</c> is the journal sequence number of the newest message whose seq is a multiple of 2^k
/// (<c>Anchors[0]</c> is the newest message). Entry points into the journal skip list; log2(LastSeq)+1 longs.
/// </param>
/// <param name="Tally">Messages from others in the whole copy; null in a snapshot taken before v1.1.</param>
/// <param name="Delivered">What <paramref name="DeliveredUpToSeq"/> stands for (see <see cref="Messaging.Messages.Tally"/>).</param>
/// <param name="Read">What <paramref name="ReadUpToSeq"/> stands for.</param>
/// <param name="Window">Since 1.7.0, the recent messages as the live mailbox holds them, when each of them can be
/// held that way (<see cref="Recent"/> is then empty); else null, and <see cref="Recent"/> has them.</param>
public sealed record ConversationSnapshot(
    string ConversationId,
    ImmutableArray<string> ParticipantIds,
    string Snippet,
    long LastUpdatedTimestamp,
    long LastSeq,
    ImmutableArray<long> Anchors,
    ImmutableArray<StoredMessage> Recent,
    string Kind = ConversationSummary.DirectKind,
    string? Name = null,
    long DeliveredUpToSeq = 0,
    long ReadUpToSeq = 0,
    Tally? Tally = null,
    Tally Delivered = default,
    Tally Read = default,
    ImmutableArray<ParticipantReceipt> Receipts = default,
    CompactWindow? Window = null,
    ImmutableArray<string> UnreadSenders = default)
{
    /// <summary>Never a default array (protobuf reads "absent" as empty, and so does everyone else).</summary>
    public ImmutableArray<ParticipantReceipt> Receipts { get; init; } = Receipts.IsDefault ? [] : Receipts;
}

/// <summary>
/// A conversation's recent messages as the live mailbox encodes them, oldest first: each message's bytes, opaque
/// here (<c>Messaging.Actors.WindowMessage</c>), and its sender as an index into the conversation's participants.
/// A snapshot keeps them so, and recovery takes them back without decoding a message: a wake of a mailbox with full
/// windows parsed ~300 messages into three shapes in turn (docs/benchmarks.md, "A cohort's wake, part by part").
/// </summary>
public sealed record CompactWindow(ImmutableArray<byte[]> Messages, ImmutableArray<int> Senders);

/// <summary>What the dedup window remembers of one send.</summary>
public sealed record SentRecord(
    string ClientMessageId,
    string MessageId,
    string ConversationId,
    string RecipientId,
    long ServerTimestamp,
    ulong TextHash);

/// <summary>Copies handed to one recipient and not yet confirmed, oldest first (messages and receipts).</summary>
public sealed record OutboundSnapshot(string RecipientId, long LastSeq, ImmutableArray<IChannelCopy> Pending);

public sealed record InboundSnapshot(string SenderId, long LastSeq);

/// <summary>A mailbox's whole state; taken every N events so recovery replays at most N events.</summary>
/// <param name="Openings">Stamps of the newest conversations this user opened (the new-conversation rate limit), oldest first.</param>
/// <param name="StaleUpTo">
/// The highest journal sequence number that may hold a stale event (one not on the mailbox's own history: see
/// ReplayAudit), 0 if none; null in snapshots taken before 1.5.0, which did not track it.
/// </param>
/// <param name="ColdPages">Where each slot of the cold index's directory has its page: the journal sequence number of
/// the event that last wrote it, 0 for none (1.8.0; see ConversationsArchived).</param>
/// <param name="ColdCount">Conversations that are cold (archived and not restored since).</param>
/// <param name="ColdGroups">A group conversation went cold once (1.9.0): written under a manifest 1.8.0 refuses.</param>
/// <param name="ColdChannels">A channel with someone met only in groups went cold once (1.10.0): written under a
/// manifest 1.9 refuses.</param>
public sealed record MailboxSnapshot(
    long LastStamp,
    ImmutableArray<ConversationSnapshot> Conversations,
    ImmutableArray<SentRecord> Dedup,
    ImmutableArray<OutboundSnapshot> Outbound,
    ImmutableArray<InboundSnapshot> Inbound,
    ImmutableArray<long> Openings = default,
    long? StaleUpTo = null,
    ImmutableArray<long> ColdPages = default,
    long ColdCount = 0,
    bool ColdGroups = false,
    bool ColdChannels = false) : IMessagingProtocol
{
    /// <summary>Never a default array (absent in snapshots taken before the limit).</summary>
    public ImmutableArray<long> Openings { get; init; } = Openings.IsDefault ? [] : Openings;

    /// <summary>The cold index's directory (1.8.0): empty when no conversation ever left memory.</summary>
    public ImmutableArray<long> ColdPages { get; init; } = ColdPages.IsDefault ? [] : ColdPages;
}
