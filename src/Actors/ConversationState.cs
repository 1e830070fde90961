using System.Collections.Immutable;
using Messaging.Messages;

namespace Messaging.Actors;

/// <summary>
/// One conversation as a live mailbox holds it: the index entry plus a bounded window of recent messages. Free to
/// change shape; what a snapshot keeps of it is <see cref="ConversationSnapshot"/>.
/// </summary>
/// <param name="Anchors">
/// <c>Anchors[k]</c> is the journal sequence number of the newest message whose seq is a multiple of 2^k
/// (<c>Anchors[0]</c> is the newest message). Entry points into the journal skip list; log2(LastSeq)+1 longs.
/// </param>
public sealed record ConversationState(
    string ConversationId,
    ImmutableArray<string> ParticipantIds,
    string Snippet,
    long LastUpdatedTimestamp,
    long LastSeq,
    ImmutableArray<long> Anchors,
    ImmutableArray<StoredMessage> Recent)
{
    public ConversationSnapshot ToSnapshot() =>
        new(ConversationId, ParticipantIds, Snippet, LastUpdatedTimestamp, LastSeq, Anchors, Recent);

    public static ConversationState FromSnapshot(ConversationSnapshot c) =>
        new(c.ConversationId, c.ParticipantIds, c.Snippet, c.LastUpdatedTimestamp, c.LastSeq, c.Anchors, c.Recent);
}
