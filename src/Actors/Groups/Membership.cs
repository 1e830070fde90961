using System.Collections.Immutable;
using Messaging.Messages;

namespace Messaging.Actors.Groups;

/// <summary>How a member's copy of a group follows the group's membership changes, message by message.</summary>
public static class Membership
{
    /// <summary>
    /// The members and receipts of <paramref name="ownerId"/>'s copy after a membership change. Each other member's
    /// receipt records when they joined and left, so the status of a message counts exactly the members it went to.
    /// </summary>
    /// <param name="participants">The members before the change, or after it when the copy carried them (its first).</param>
    public static (ImmutableArray<string> Participants, ImmutableArray<ParticipantReceipt> Receipts) After(
        GroupChange change, ChatMessage message, ImmutableArray<string> participants,
        ImmutableArray<ParticipantReceipt> receipts, string ownerId, ImmutableArray<string> carried)
    {
        var at = message.ServerTimestamp;
        switch (change.Action)
        {
            case GroupChange.Created:
                foreach (var member in participants)
                    receipts = Set(receipts, member, ownerId, r => r with { JoinedAt = at, LeftAt = 0 });
                break;
            case GroupChange.Added:
                participants = [.. participants.Union(change.UserIds, StringComparer.Ordinal).Order(StringComparer.Ordinal)];
                if (!carried.IsDefaultOrEmpty)
                {
                    // The owner's first copy (of this membership): everyone there joined before anything in it, and
                    // whoever left while the owner was away is gone.
                    var present = participants.ToHashSet(StringComparer.Ordinal);
                    foreach (var member in participants)
                        receipts = Set(receipts, member, ownerId, r => r);
                    foreach (var gone in receipts.Where(r => r.LeftAt == 0 && !present.Contains(r.UserId)).Select(r => r.UserId).ToList())
                        receipts = Set(receipts, gone, ownerId, r => r with { LeftAt = at });
                }
                foreach (var member in change.UserIds)
                    receipts = Set(receipts, member, ownerId, r => r with { JoinedAt = at, LeftAt = 0 });
                break;
            case GroupChange.Removed or GroupChange.Left:
                participants = [.. participants.Except(change.UserIds, StringComparer.Ordinal)];
                foreach (var member in change.UserIds)
                    receipts = Set(receipts, member, ownerId, r => r with { LeftAt = at });
                break;
        }
        return (participants, receipts);
    }

    /// <summary>What the conversation list shows as the snippet of a membership change.</summary>
    public static string Describe(string actorId, GroupChange change) => change.Action switch
    {
        GroupChange.Created => $"{actorId} created the group",
        GroupChange.Added => $"{actorId} added {string.Join(", ", change.UserIds)}",
        GroupChange.Removed => $"{actorId} removed {string.Join(", ", change.UserIds)}",
        GroupChange.Left => $"{actorId} left",
        _ => $"{actorId} changed the group",
    };

    private static ImmutableArray<ParticipantReceipt> Set(
        ImmutableArray<ParticipantReceipt> receipts, string userId, string ownerId, Func<ParticipantReceipt, ParticipantReceipt> change)
    {
        if (userId == ownerId)
            return receipts;
        for (var i = 0; i < receipts.Length; i++)
        {
            if (receipts[i].UserId == userId)
                return receipts.SetItem(i, change(receipts[i]));
        }
        return receipts.Add(change(new ParticipantReceipt(userId, default)));
    }
}
