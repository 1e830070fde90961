using Akka.Actor;
using Akka.Event;
using Akka.Persistence;
using Messaging.Messages;

namespace Messaging.Actors;

/// <summary>
/// Reads a thread page that lies before the mailbox's in-memory window straight from the journal, through the
/// journal protocol every plugin implements (no SQL). It walks the skip list that <see cref="ThreadLinks"/> make
/// (O(log depth) point reads) to the journal positions of the page's last and first message, then reads the range
/// between them if it is at most <c>maxRange</c> entries, else walks the page along its
/// <see cref="ThreadLinks.Previous"/> links: where the page is dense (at least four of its messages per
/// <see cref="Chunk"/> entries, on average over its range) it reads the block of entries ending at the next message it
/// lacks, which brings the messages below it too, until blocks have cost <c>maxRange</c> entries; then, and where the
/// page is sparse, one message per read. History is immutable, so this runs beside the mailbox without touching
/// its state. Bounded: it keeps only the page's own messages (whatever else the range holds is dropped as it
/// arrives), asks the journal for at most <see cref="Chunk"/> entries at a time, and answers by one deadline from its
/// start; once it has answered it stops, so at most one chunk is still on its way to nobody.
/// </summary>
public sealed class ThreadPageReader : ReceiveActor, IWithTimers
{
    /// <summary>Journal entries asked for at once: the most a reader can have coming after it gave up.</summary>
    public const int Chunk = 100;

    private readonly ILoggingAdapter _log = Context.GetLogger();
    private readonly string _persistenceId;
    private readonly IActorRef _journal;
    private readonly ThreadPlan.FromJournal _plan;
    private readonly IActorRef _replyTo;
    private readonly TimeSpan _deadline;
    private readonly int _maxRange;
    private readonly Func<object, object> _wrap;
    // The page's messages read so far, by journal position: only this conversation's, only seqs of the page.
    private readonly Dictionary<long, (StoredMessage Message, ThreadLinks Links)> _page = [];
    private IPersistentRepresentation? _entry;
    private Action? _onRead;

    // Skip-list walk position: conversation seq and its journal sequence number.
    private long _seq;
    private long _journalSeq;
    private long _target;
    private long _highJournalSeq;
    private long _lowJournalSeq;
    // Entries the walk may still read in blocks (beyond its one-message reads).
    private long _blockBudget;

    public ITimerScheduler Timers { get; set; } = null!;

    /// <param name="deadline">The read answers within this from its start (a 503 past it), however the journal paces it.</param>
    /// <param name="maxRange">The widest journal range read at once; a page spread wider is read message by message.</param>
    /// <param name="wrap">What <paramref name="replyTo"/> gets for the page (or the failure): the page itself by default.</param>
    /// <param name="blocks">Walk a wide page in blocks where it is dense (see the class); off: one message per read.</param>
    public static Props Props(
        string persistenceId, IActorRef journal, ThreadPlan.FromJournal plan, IActorRef replyTo, TimeSpan deadline,
        int maxRange, Func<object, object>? wrap = null, bool blocks = true) =>
        Akka.Actor.Props.Create(() => new ThreadPageReader(persistenceId, journal, plan, replyTo, deadline, maxRange, wrap, blocks));

    public ThreadPageReader(
        string persistenceId, IActorRef journal, ThreadPlan.FromJournal plan, IActorRef replyTo, TimeSpan deadline,
        int maxRange, Func<object, object>? wrap = null, bool blocks = true)
    {
        _blockBudget = blocks ? maxRange : 0;
        _persistenceId = persistenceId;
        _journal = journal;
        _plan = plan;
        _replyTo = replyTo;
        _deadline = deadline;
        _maxRange = maxRange;
        _wrap = wrap ?? (reply => reply);

        Receive<ReplayedMessage>(m =>
        {
            _entry = m.Persistent;
            if (Entry(m.Persistent.Payload) is { } entry && entry.Message.Seq >= _plan.FromSeq && entry.Message.Seq <= _plan.ToSeq)
                _page[m.Persistent.SequenceNr] = entry;
        });
        Receive<RecoverySuccess>(_ => _onRead!());
        Receive<ReplayMessagesFailure>(f => Fail($"journal read failed: {f.Cause.Message}"));
        Receive<DeadlinePassed>(_ => Fail($"journal read did not finish within {_deadline.TotalSeconds:0.###} s"));
    }

    protected override void PreStart()
    {
        // One timer from the start: a journal that trickles entries does not move it.
        Timers.StartSingleTimer(DeadlinePassed.Instance, DeadlinePassed.Instance, _deadline);
        Locate(_plan.ToSeq, _plan.LastSeq, _plan.Anchors[0], high =>
        {
            _highJournalSeq = high;
            Locate(_plan.FromSeq, _plan.ToSeq, high, low =>
            {
                if (high - low < _maxRange)
                    ReadRange(low, high, Reply);
                else
                {
                    _lowJournalSeq = low;
                    Walk(_plan.ToSeq, high);
                }
            });
        });
    }

    /// <summary>
    /// Find the journal position of conversation message <paramref name="target"/>, starting from a known message
    /// (<paramref name="fromSeq"/> at <paramref name="fromJournalSeq"/>) or an anchor nearer above the target.
    /// </summary>
    private void Locate(long target, long fromSeq, long fromJournalSeq, Action<long> found)
    {
        _target = target;
        _seq = fromSeq;
        _journalSeq = fromJournalSeq;
        // Anchor k holds the newest multiple of 2^k.
        for (var k = 1; k < _plan.Anchors.Length; k++)
        {
            var anchorSeq = (_plan.LastSeq >> k) << k;
            if (anchorSeq >= target && anchorSeq > 0 && anchorSeq < _seq && _plan.Anchors[k] != 0)
            {
                _seq = anchorSeq;
                _journalSeq = _plan.Anchors[k];
            }
        }
        Step(found);
    }

    private void Step(Action<long> found)
    {
        if (_seq == _target)
        {
            found(_journalSeq);
            return;
        }
        Read(_journalSeq, _journalSeq, () =>
        {
            if (_entry is null || Entry(_entry.Payload) is not { } entry || entry.Message.Seq != _seq)
            {
                Fail($"journal entry {_journalSeq} of {_persistenceId} is not message {_seq} of {_plan.ConversationId}");
                return;
            }
            var lowBit = _seq & -_seq;
            if (_seq - lowBit >= _target && entry.Links.Skip != 0)
            {
                _seq -= lowBit;
                _journalSeq = entry.Links.Skip;
            }
            else
            {
                _seq -= 1;
                _journalSeq = entry.Links.Previous;
            }
            Step(found);
        });
    }

    /// <summary>
    /// A page spread over more than maxRange entries, newest first: the message at <paramref name="journalSeq"/> is read
    /// in a block with the entries below it while the page is dense and the block budget lasts, else on its own.
    /// </summary>
    private void Walk(long seq, long journalSeq)
    {
        if (!_page.TryGetValue(journalSeq, out var entry))
        {
            var block = BlockBelow(seq, journalSeq);
            _blockBudget -= block - 1;
            Read(journalSeq - block + 1, journalSeq, () =>
            {
                if (_page.ContainsKey(journalSeq))
                    Walk(seq, journalSeq);
                else
                    Fail($"expected message {seq} of {_plan.ConversationId} at journal entry {journalSeq}");
            });
            return;
        }
        if (entry.Message.Seq != seq || (seq > _plan.FromSeq && entry.Links.Previous >= journalSeq))
            Fail($"expected message {seq} of {_plan.ConversationId} at journal entry {journalSeq}");
        else if (seq == _plan.FromSeq)
            Reply();
        else
            Walk(seq - 1, entry.Links.Previous);
    }

    /// <summary>How many entries to read ending at message <paramref name="seq"/> (1: just it).</summary>
    private long BlockBelow(long seq, long journalSeq)
    {
        var messages = _plan.ToSeq - _plan.FromSeq;
        var perMessage = messages == 0 ? long.MaxValue : (_highJournalSeq - _lowJournalSeq) / messages; // average entries apart
        if (perMessage > Chunk / 4)
            return 1;
        var wanted = (seq - _plan.FromSeq + 1) * perMessage; // down to the page's first message, on average
        return Math.Max(1, Math.Min(Math.Min(wanted, Chunk), Math.Min(_blockBudget, journalSeq - _lowJournalSeq + 1)));
    }

    private void ReadRange(long from, long to, Action done)
    {
        var end = Math.Min(to, from + Chunk - 1);
        Read(from, end, end < to ? () => ReadRange(end + 1, to, done) : done);
    }

    private void Read(long from, long to, Action done)
    {
        _entry = null;
        _onRead = done;
        _journal.Tell(new ReplayMessages(from, to, to - from + 1, _persistenceId, Self));
    }

    /// <summary>
    /// The page is the chain of <see cref="ThreadLinks.Previous"/> links from its last message down to its first:
    /// exactly this mailbox's copy, whatever else was read (in journals written before writes were fenced, a paused
    /// node's stale events of the same conversation).
    /// </summary>
    private void Reply()
    {
        var page = new StoredMessage[_plan.ToSeq - _plan.FromSeq + 1];
        var journalSeq = _highJournalSeq;
        for (var seq = _plan.ToSeq; seq >= _plan.FromSeq; seq--)
        {
            if (!_page.TryGetValue(journalSeq, out var found) || found.Message.Seq != seq)
            {
                Fail($"expected message {seq} of {_plan.ConversationId} at journal entry {journalSeq}");
                return;
            }
            page[seq - _plan.FromSeq] = found.Message;
            journalSeq = found.Links.Previous;
        }
        _replyTo.Tell(_wrap(new ThreadPage([.. page], _plan.Receipts.IsDefault ? [] : _plan.Receipts)));
        Context.Stop(Self);
    }

    /// <summary>A message of this page's conversation, with its links; null for anything else.</summary>
    private (StoredMessage Message, ThreadLinks Links)? Entry(object payload) => payload switch
    {
        MessageSent s when s.Message.ConversationId == _plan.ConversationId => (new StoredMessage(s.Seq, s.Message, s.Tally), s.Links),
        MessageReceived r when r.Message.ConversationId == _plan.ConversationId => (new StoredMessage(r.Seq, r.Message, r.Tally), r.Links),
        _ => null,
    };

    private void Fail(string reason)
    {
        _log.Warning("Thread page of {PersistenceId} not read: {Reason}", _persistenceId, reason);
        _replyTo.Tell(_wrap(new MailboxUnavailable(reason)));
        Context.Stop(Self);
    }

    private sealed class DeadlinePassed
    {
        public static readonly DeadlinePassed Instance = new();
    }
}
