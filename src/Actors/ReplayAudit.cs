using Messaging.Messages;

namespace Messaging.Actors;

/// <summary>
/// What one recovery learns about the journal's writers, event by event. Two things matter to the single writer:
/// <list type="bullet">
/// <item>Events an older writer journaled after a newer writer had taken over ("stale": a paused node's writes in
/// journals written before writes were fenced). A writer is a node process (the journal records its own uuid), and
/// before claims a writer's turn could begin without a mark: a mailbox that moved, or moved away from a node and
/// back. So a send or a received copy of any writer but the current one must continue the mailbox where it stands
/// (<see cref="MailboxState.Continues"/>): then it starts that writer's turn; if not, it was decided on a state the
/// mailbox had moved past and is kept aside. The newest writer resolves those after recovery
/// (<see cref="MailboxState.ResolveStale"/>) and journals <see cref="StaleWritesResolved"/>, after which they are
/// skipped. Confirmations are applied wherever they stand and start no turn. A <see cref="WriterClaimed"/> always
/// starts its writer's turn: with the fence, nothing is stale.</item>
/// <item>A missing sequence number above the newest <see cref="WriterClaimed"/> ("unsettled gap"): a previous
/// incarnation's write may still be in flight and land there, below this incarnation's first write. Once this
/// incarnation's claim is durable no other writer can write, so a recovery after the claim sees the final journal.
/// Gaps below a claim are settled: the claim was refused unless it was the newest event once every write in
/// flight had finished.</item>
/// </list>
/// Pure and allocated only for the length of a recovery. Groups use it too: their journals were fenced from the
/// first write, so nothing of theirs is stale, but the unsettled gap is the same.
/// </summary>
public sealed class ReplayAudit<TEvent> where TEvent : class
{
    private List<(long Seq, TEvent Event)>? _stale;
    private string? _writer;
    private long _expected = 1;
    private long _highestGap;
    private long _lastClaim;

    /// <summary>Replay continues after a snapshot at <paramref name="snapshotSeq"/>.</summary>
    public void SnapshotOffered(long snapshotSeq) => _expected = snapshotSeq + 1;

    /// <summary>One replayed event; true when it is to be applied now, false when it is stale and kept aside.</summary>
    /// <param name="writer">The journal's writer uuid of the event (empty when the journal keeps none).</param>
    /// <param name="continues">Whether the event continues the entity as replayed so far.</param>
    public bool Replayed(long seq, string? writer, TEvent evt, Func<TEvent, bool> continues)
    {
        if (seq > _expected)
            _highestGap = seq - 1;
        _expected = Math.Max(_expected, seq + 1);

        if (!string.IsNullOrEmpty(writer) && writer != _writer)
        {
            if (evt is WriterClaimed || _writer is null)
                _writer = writer;
            else if (evt is DeliveriesConfirmed or StaleWritesResolved)
                return true; // harmless wherever it stands (confirmations only ever go up), and no proof of a turn
            else if (continues(evt))
                _writer = writer; // a writer that saw everything: one that took over, or came back, before claims
            else
            {
                (_stale ??= []).Add((seq, evt)); // decided on a state the mailbox had moved past
                return false;
            }
        }

        switch (evt)
        {
            case WriterClaimed:
                _lastClaim = seq;
                break;
            case StaleWritesResolved resolved:
                _stale?.RemoveAll(s => s.Seq <= resolved.UpToJournalSeq);
                break;
        }
        return true;
    }

    /// <param name="highestSeq">The journal's highest sequence number as recovery reported it.</param>
    public ReplayOutcome<TEvent> Complete(long highestSeq)
    {
        if (highestSeq >= _expected)
            _highestGap = highestSeq; // the tail was not replayed: a write committed after the read, or one lost
        return new ReplayOutcome<TEvent>(
            UnsettledGap: _highestGap > _lastClaim ? _highestGap : 0,
            Stale: _stale is { Count: > 0 } ? [.. _stale] : []);
    }
}

/// <param name="UnsettledGap">The highest missing sequence number above the newest claim, 0 if none.</param>
/// <param name="Stale">Stale events, in journal order.</param>
public sealed record ReplayOutcome<TEvent>(long UnsettledGap, IReadOnlyList<(long Seq, TEvent Event)> Stale);
