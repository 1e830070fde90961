using Messaging.Messages;

namespace Messaging.Actors;

/// <summary>
/// What one recovery learns about the journal, event by event. Two things matter to the single writer:
/// <list type="bullet">
/// <item>Events that do not continue the entity where it stands ("stale"): a write decided on a state the journal
/// does not have. Two ways lead there. A write rejected (or failed) in the middle of a pipeline leaves a hole, and
/// the writes after it, decided as if it were there, land after the hole (<see cref="SingleWriterActor{TState,TEvent}"/>
/// answered their writers as failed and carried out nothing of them). And in journals written before writes were
/// fenced, a paused node's old incarnation could journal writes after the mailbox had moved on. So every send,
/// received copy or receipt must continue the entity as replayed so far (<see cref="MailboxState.Continues"/>): if
/// not, it is kept aside. The newest incarnation resolves those after recovery (<see cref="MailboxState.ResolveStale"/>
/// decides them again, <see cref="StaleWritesResolved"/> marks them done for every later recovery). Confirmations
/// and claims are applied wherever they stand: confirmations only ever go up.</item>
/// <item>A missing sequence number above the newest <see cref="WriterClaimed"/> ("unsettled gap"): a previous
/// incarnation's write may still be in flight and land there, below this incarnation's first write. Once this
/// incarnation's claim is durable no other writer can write, so a recovery after the claim sees the final journal.
/// Gaps below a claim are settled: the claim was refused unless it was the newest event once every write in
/// flight had finished.</item>
/// </list>
/// Pure and allocated only for the length of a recovery. Groups use it too, with their own test of what continues.
/// </summary>
public sealed class ReplayAudit<TEvent> where TEvent : class
{
    private List<(long Seq, TEvent Event)>? _stale;
    private long _expected = 1;
    private long _highestGap;
    private long _lastClaim;

    /// <summary>The journal position of the snapshot the recovery started from; 0 without one.</summary>
    public long SnapshotSeq { get; private set; }

    /// <summary>Replay continues after a snapshot at <paramref name="snapshotSeq"/>.</summary>
    public void SnapshotOffered(long snapshotSeq) => _expected = (SnapshotSeq = snapshotSeq) + 1;

    /// <summary>One replayed event; true when it is to be applied now, false when it is stale and kept aside.</summary>
    /// <param name="continues">Whether the event continues the entity as replayed so far.</param>
    public bool Replayed(long seq, TEvent evt, Func<TEvent, bool> continues)
    {
        if (seq > _expected)
            _highestGap = seq - 1;
        _expected = Math.Max(_expected, seq + 1);

        switch (evt)
        {
            case WriterClaimed:
                _lastClaim = seq;
                return true;
            case StaleWritesResolved resolved:
                _stale?.RemoveAll(s => s.Seq <= resolved.UpToJournalSeq);
                return true;
            case DeliveriesConfirmed:
                return true; // harmless wherever it stands: confirmations only ever go up
        }
        if (continues(evt))
            return true;
        (_stale ??= []).Add((seq, evt)); // decided on a state the journal does not have
        return false;
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
