using Akka.Actor;
using Akka.Event;
using Akka.Persistence;
using Messaging.Messages;

namespace Messaging.Actors;

/// <summary>
/// Reads a thread page that lies before the mailbox's in-memory window straight from the journal, through the
/// journal protocol every plugin implements (no SQL).
/// <list type="number">
/// <item>It finds the journal position of the page's last message, narrowing a bracket between the nearest message
/// of the history known above it (an anchor at first) and the nearest known below. First by a guess: it interpolates
/// where the message would lie if the conversation's share of the journal were even across the bracket, and reads the
/// block of up to <see cref="Chunk"/> entries ending just past that; in a steady history that block holds the message
/// and much of the page. Every message of the conversation a block holds, and every message their links name, narrows
/// the bracket. Then, since a journal request costs far more than its rows, the next block is chosen to need no
/// request after it where it can: the whole bracket when it fits in one block; after a block with nothing of the
/// conversation (it fell into another conversation's burst, which says nothing of which way to go), the block above
/// it, twice as wide each time up to <see cref="MaxBlock"/>; after a block whose messages all lie on one side of the
/// message, near it, the block next to it on the message's side, nothing skipped (it holds the page too); else a new
/// guess. When guesses, after <see cref="MaxGuesses"/>, or the budget run out, it takes steps of the skip list that
/// <see cref="ThreadLinks"/> make (point reads, none for entries it has read already) from the nearest message above.
/// Finding the message may spend three quarters of the budget, and the quarter kept for the page only on a block next
/// to the message or around it.</item>
/// <item>From there it follows the page's <see cref="ThreadLinks.Previous"/> links down to its first message,
/// reading the block of entries ending at the next message it lacks, sized by the conversation's density there,
/// until blocks have cost <c>maxRange</c> entries; a page that is both wide (more than <c>maxRange</c> entries)
/// and sparse (fewer than four of its messages per <see cref="Chunk"/> entries) is read one message per read.</item>
/// </list>
/// Guesses and blocks together read at most <c>maxRange</c> entries. Exact: an event found by position is taken as the
/// conversation's only above <see cref="ThreadPlan.FromJournal.StaleUpTo"/> and at or below the newest anchor, where
/// nothing but the mailbox's own history lies; below that, only what the history's links lead to. The reply is the chain of links from the last message down, whatever else was read.
/// History is immutable, so this runs beside the mailbox without touching its state. Bounded: it keeps only this
/// conversation's entries (whatever else a block holds is dropped as it arrives), asks the journal for at most
/// <see cref="MaxBlock"/> entries at a time, and answers by one deadline from its start; once it has answered it stops,
/// so at most one block is still on its way to nobody.
/// </summary>
public sealed class ThreadPageReader : ReceiveActor, IWithTimers
{
    /// <summary>Journal entries a guess asks for; also the density below which a wide page is read message by message (a quarter of it).</summary>
    public const int Chunk = 100;

    /// <summary>Journal entries asked for at once: the most a reader can have coming after it gave up.</summary>
    public const int MaxBlock = 400;

    /// <summary>Blocks read to narrow the bracket around a message before the skip list is walked.</summary>
    public const int MaxGuesses = 4;

    private readonly ILoggingAdapter _log = Context.GetLogger();
    private readonly string _persistenceId;
    private readonly IActorRef _journal;
    private readonly ThreadPlan.FromJournal _plan;
    private readonly IActorRef _replyTo;
    private readonly JournalReadGate? _gate;
    private bool _answered;
    private readonly TimeSpan _deadline;
    private readonly int _maxRange;
    private readonly bool _guess;
    private readonly Func<object, object> _wrap;
    // This conversation's entries read so far, by journal position: the page's whole, the others' seq and links.
    private readonly Dictionary<long, (StoredMessage? Message, long Seq, ThreadLinks Links)> _seen = [];
    // The positions of this conversation's entries in the latest read.
    private readonly List<long> _lastRead = [];
    private Action? _onRead;

    // Skip-list walk position: conversation seq and its journal sequence number.
    private long _seq;
    private long _journalSeq;
    private long _target;
    private long _highJournalSeq;
    // Entries the walk may still read in blocks (beyond its one-message reads).
    private long _blockBudget;

    public ITimerScheduler Timers { get; set; } = null!;

    /// <param name="deadline">The read answers within this from its start (a 503 past it), however the journal paces it.</param>
    /// <param name="maxRange">The most entries read in blocks; a page spread wider and sparse is read message by message.</param>
    /// <param name="wrap">What <paramref name="replyTo"/> gets for the page (or the failure): the page itself by default.</param>
    /// <param name="blocks">Read in blocks (see the class); off: one message per read (a baseline).</param>
    /// <param name="guess">Guess the last message's position first (see the class); off: the skip list only (a baseline).</param>
    public static Props Props(
        string persistenceId, IActorRef journal, ThreadPlan.FromJournal plan, IActorRef replyTo, TimeSpan deadline,
        int maxRange, Func<object, object>? wrap = null, bool blocks = true, bool guess = true, JournalReadGate? gate = null) =>
        FactoryProps.Of(() => new ThreadPageReader(persistenceId, journal, plan, replyTo, deadline, maxRange, wrap, blocks, guess, gate));

    /// <param name="gate">The node's count of readers, whose place this reader holds until it stops.</param>
    public ThreadPageReader(
        string persistenceId, IActorRef journal, ThreadPlan.FromJournal plan, IActorRef replyTo, TimeSpan deadline,
        int maxRange, Func<object, object>? wrap = null, bool blocks = true, bool guess = true, JournalReadGate? gate = null)
    {
        _gate = gate;
        _blockBudget = blocks ? maxRange : 0;
        _guess = guess;
        _persistenceId = persistenceId;
        _journal = journal;
        _plan = plan;
        _replyTo = replyTo;
        _deadline = deadline;
        _maxRange = maxRange;
        _wrap = wrap ?? (reply => reply);

        Receive<ReplayedMessage>(m =>
        {
            var position = m.Persistent.SequenceNr;
            switch (m.Persistent.Payload)
            {
                case MessageSent s when s.Message.ConversationId == _plan.ConversationId:
                    Seen(position, s.Seq, s.Links, InPage(s.Seq) ? new StoredMessage(s.Seq, s.Message, s.Tally) : null);
                    break;
                case MessageReceived r when r.Message.ConversationId == _plan.ConversationId:
                    Seen(position, r.Seq, r.Links, InPage(r.Seq) ? new StoredMessage(r.Seq, r.Message, r.Tally) : null);
                    break;
            }
        });
        Receive<RecoverySuccess>(_ => _onRead!());
        Receive<ReplayMessagesFailure>(f => Fail($"journal read failed: {f.Cause.Message}"));
        Receive<DeadlinePassed>(_ => Fail($"journal read did not finish within {_deadline.TotalSeconds:0.###} s"));
    }

    private bool InPage(long seq) => seq >= _plan.FromSeq && seq <= _plan.ToSeq;

    /// <summary>A message of the conversation at <paramref name="position"/>; <paramref name="message"/> only if it is on the page.</summary>
    private void Seen(long position, long seq, ThreadLinks links, StoredMessage? message)
    {
        _seen[position] = (message, seq, links);
        _lastRead.Add(position);
    }

    protected override void PreStart()
    {
        // One timer from the start: a journal that trickles entries does not move it.
        Timers.StartSingleTimer(DeadlinePassed.Instance, DeadlinePassed.Instance, _deadline);
        Locate(_plan.ToSeq, high =>
        {
            _highJournalSeq = high;
            Walk(_plan.ToSeq, high);
        });
    }

    /// <summary>Find the journal position of conversation message <paramref name="target"/>.</summary>
    private void Locate(long target, Action<long> found)
    {
        // The nearest anchor at or above the target (anchor k holds the newest multiple of 2^k).
        var (seq, journalSeq) = (_plan.LastSeq, _plan.Anchors[0]);
        for (var k = 1; k < _plan.Anchors.Length; k++)
        {
            var anchorSeq = (_plan.LastSeq >> k) << k;
            if (anchorSeq >= target && anchorSeq > 0 && anchorSeq < seq && _plan.Anchors[k] != 0)
                (seq, journalSeq) = (anchorSeq, _plan.Anchors[k]);
        }
        if (_guess)
            Narrow(target, seq, journalSeq, 0, 0, MaxGuesses, long.MaxValue, found);
        else
            WalkSkipList(target, seq, journalSeq, found);
    }

    /// <summary>
    /// Narrow the bracket around <paramref name="target"/>: between the nearest message of the history known above it
    /// and the nearest known below (seq 0 at position 0 at first). While guesses last and the bracket is no wider than
    /// <paramref name="guessWithin"/> entries, guess (<see cref="Guess"/>); else take one step of the skip-list walk
    /// from the message above, which also names a message below the target whenever its skip link passes it.
    /// </summary>
    private void Narrow(long target, long highSeq, long highJournalSeq, long lowSeq, long lowJournalSeq, int guesses, long guessWithin, Action<long> found)
    {
        if (highSeq == target)
        {
            found(highJournalSeq);
            return;
        }
        // Positions at or below a message known to lie below the target cannot hold it; nor, as far as trusting an
        // entry by its position goes, can those that may hold stale events.
        var width = highJournalSeq - Math.Max(lowJournalSeq, _plan.StaleUpTo);
        if (guesses > 0 && width > 1 && width <= guessWithin && GuessSize >= 2)
        {
            Guess(target, highSeq, highJournalSeq, lowSeq, lowJournalSeq, guesses, found);
            return;
        }
        if (!_seen.TryGetValue(highJournalSeq, out var entry))
        {
            Read(highJournalSeq, highJournalSeq, () =>
            {
                if (_seen.ContainsKey(highJournalSeq))
                    Narrow(target, highSeq, highJournalSeq, lowSeq, lowJournalSeq, guesses, guessWithin, found);
                else
                    Fail($"journal entry {highJournalSeq} of {_persistenceId} is not a message of {_plan.ConversationId}");
            });
            return;
        }
        if (entry.Seq != highSeq)
        {
            Fail($"journal entry {highJournalSeq} of {_persistenceId} is not message {highSeq} of {_plan.ConversationId}");
            return;
        }
        var (nextSeq, next) = (highSeq - 1, entry.Links.Previous);
        var skipSeq = highSeq - (highSeq & -highSeq);
        if (skipSeq > 0 && entry.Links.Skip != 0)
        {
            if (skipSeq >= target)
                (nextSeq, next) = (skipSeq, entry.Links.Skip);
            else if (skipSeq > lowSeq)
                (lowSeq, lowJournalSeq) = (skipSeq, entry.Links.Skip);
        }
        Narrow(target, nextSeq, next, lowSeq, lowJournalSeq, guesses, guessWithin, found);
    }

    /// <summary>
    /// Read the block ending just past where <paramref name="target"/> would lie if the conversation's share of the
    /// journal were even across the bracket. Every message of the conversation in it, and every message their links
    /// name, narrows the bracket. A block with nothing of the conversation (another's burst) says nothing of which way
    /// to go: the block above it follows (<paramref name="missedUpTo"/>: the missed block's top; <paramref name="missed"/>:
    /// entries read in a row without any), until a block holds some of the conversation, reaches the message above,
    /// or half the budget has gone on misses in a row; past that, the next guess waits until the walk has halved the
    /// bracket.
    /// </summary>
    private void Guess(long target, long highSeq, long highJournalSeq, long lowSeq, long lowJournalSeq, int guesses, Action<long> found,
        long from = 0, long to = 0)
    {
        var floor = Math.Max(lowJournalSeq, _plan.StaleUpTo);
        if (from == 0)
        {
            var size = GuessSize; // guesses are blocks too: they draw on the same budget
            to = Math.Min(highJournalSeq - 1, Math.Max(floor + 1, Estimate(target, highSeq, highJournalSeq, lowSeq, lowJournalSeq)) + size / 10);
            from = Math.Max(floor + 1, to - size + 1);
        }
        if (to < from)
        {
            // Nothing left to read on that side of the last block (it reached the bracket's edge): no request for an
            // empty range (the journal would still look up the highest sequence number for it).
            Narrow(target, highSeq, highJournalSeq, lowSeq, lowJournalSeq, guesses - 1, long.MaxValue, found);
            return;
        }
        _blockBudget -= to - from + 1;
        var (lowBefore, highBefore) = (lowJournalSeq, highJournalSeq);
        Read(from, to, () =>
        {
            var at = 0L;
            void Consider(long seq, long position)
            {
                if (seq == target)
                    at = position;
                else if (seq > target && seq < highSeq)
                    (highSeq, highJournalSeq) = (seq, position);
                else if (seq < target && seq > lowSeq)
                    (lowSeq, lowJournalSeq) = (seq, position);
            }
            // The block lies above StaleUpTo and below the newest anchor: what it holds of the conversation is history.
            foreach (var position in _lastRead)
            {
                var (_, seq, links) = _seen[position];
                Consider(seq, position);
                if (seq > 1 && links.Previous != 0)
                    Consider(seq - 1, links.Previous);
                if (seq - (seq & -seq) > 0 && links.Skip != 0)
                    Consider(seq - (seq & -seq), links.Skip);
            }
            if (at != 0)
            {
                found(at);
                return;
            }
            // Where to read next. A request costs far more than its rows, so a block next to one that came close is
            // twice as wide, up to MaxBlock, and reads on from where the last one stopped: nothing between is skipped.
            var floor = Math.Max(lowJournalSeq, _plan.StaleUpTo);
            var wider = Math.Min(Math.Min(2 * (to - from + 1), MaxBlock), LocateBudget);
            // Reading on from a message near the target reads the page too: it may draw on what is kept for the page.
            var closer = Math.Min(Math.Min(2 * (to - from + 1), MaxBlock), _blockBudget);
            var between = highJournalSeq - floor - 1; // entries where the message can lie
            var estimate = Estimate(target, highSeq, highJournalSeq, lowSeq, lowJournalSeq);
            // The whole bracket is read once: read again it would find nothing new (the message then lies at or
            // below the floor, which only the skip list reaches: a page below StaleUpTo).
            var bracketRead = floor + 1 >= from && highJournalSeq - 1 <= to;
            if (between >= 1 && between <= Math.Min(MaxBlock, _blockBudget) && !bracketRead)
                // All of the bracket in one block: it holds the message and the page above the bracket's floor, so it
                // may draw on what is kept for the page.
                Guess(target, highSeq, highJournalSeq, lowSeq, lowJournalSeq, guesses, found, floor + 1, highJournalSeq - 1);
            else if (wider >= 2 && _lastRead.Count == 0 && to + 1 < highJournalSeq)
                // Nothing of the conversation here (another's burst): the block above, until one holds some of it.
                Guess(target, highSeq, highJournalSeq, lowSeq, lowJournalSeq, guesses, found, to + 1, Math.Min(highJournalSeq - 1, to + wider));
            else if (closer >= 2 && lowJournalSeq > lowBefore && highJournalSeq == highBefore && estimate - floor <= 2 * MaxBlock)
            {
                // Only messages below it, and the message near above them: read on upwards from the highest (from the
                // block's end when the block covers what lies between).
                var start = floor + 1 >= from ? Math.Max(floor, to) + 1 : floor + 1;
                Guess(target, highSeq, highJournalSeq, lowSeq, lowJournalSeq, guesses, found, start, Math.Min(highJournalSeq - 1, start + closer - 1));
            }
            else if (closer >= 2 && highJournalSeq < highBefore && lowJournalSeq == lowBefore && highJournalSeq - estimate <= 2 * MaxBlock)
            {
                // Only messages above it, and the message near below them: read on downwards from the lowest (from
                // the block's start when the block covers what lies between).
                var end = highJournalSeq - 1 <= to ? Math.Min(highJournalSeq, from) - 1 : highJournalSeq - 1;
                Guess(target, highSeq, highJournalSeq, lowSeq, lowJournalSeq, guesses, found, Math.Max(floor + 1, end - closer + 1), end);
            }
            else
                Narrow(target, highSeq, highJournalSeq, lowSeq, lowJournalSeq, guesses - 1,
                    _lastRead.Count > 0 ? long.MaxValue : (to - floor) / 2, found);
        });
    }

    /// <summary>Where <paramref name="target"/> would lie if the conversation's share of the journal were even across the bracket.</summary>
    private static long Estimate(long target, long highSeq, long highJournalSeq, long lowSeq, long lowJournalSeq) =>
        lowJournalSeq + (long)((double)(target - lowSeq) / (highSeq - lowSeq) * (highJournalSeq - lowJournalSeq));

    private long GuessSize => Math.Min(Chunk, LocateBudget);

    // What finding the page's last message may still read in blocks: a quarter of the budget is kept for the page.
    private long LocateBudget => _blockBudget - _maxRange / 4;

    /// <summary>
    /// Walk the skip list from a message of the history (<paramref name="fromSeq"/> at <paramref name="fromJournalSeq"/>)
    /// down to <paramref name="target"/>: jump to <c>seq - lowbit(seq)</c> when that does not pass the target, else
    /// step to <c>seq - 1</c>.
    /// </summary>
    private void WalkSkipList(long target, long fromSeq, long fromJournalSeq, Action<long> found)
    {
        _target = target;
        _seq = fromSeq;
        _journalSeq = fromJournalSeq;
        Step(found);
    }

    private void Step(Action<long> found)
    {
        if (_seq == _target)
        {
            found(_journalSeq);
            return;
        }
        if (!_seen.TryGetValue(_journalSeq, out var entry))
        {
            Read(_journalSeq, _journalSeq, () =>
            {
                if (!_seen.ContainsKey(_journalSeq))
                    Fail($"journal entry {_journalSeq} of {_persistenceId} is not a message of {_plan.ConversationId}");
                else
                    Step(found);
            });
            return;
        }
        if (entry.Seq != _seq)
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
    }

    /// <summary>
    /// From the page's last message down its links, newest first: the message at <paramref name="journalSeq"/> is
    /// read in a block with the entries below it while the block budget lasts, else on its own.
    /// </summary>
    private void Walk(long seq, long journalSeq)
    {
        if (!_seen.TryGetValue(journalSeq, out var entry))
        {
            var block = BlockBelow(seq, journalSeq);
            _blockBudget -= block - 1;
            Read(journalSeq - block + 1, journalSeq, () =>
            {
                if (_seen.ContainsKey(journalSeq))
                    Walk(seq, journalSeq);
                else
                    Fail($"expected message {seq} of {_plan.ConversationId} at journal entry {journalSeq}");
            });
            return;
        }
        if (entry.Seq != seq || (seq > _plan.FromSeq && entry.Links.Previous >= journalSeq))
            Fail($"expected message {seq} of {_plan.ConversationId} at journal entry {journalSeq}");
        else if (seq == _plan.FromSeq)
            Reply();
        else
            Walk(seq - 1, entry.Links.Previous);
    }

    /// <summary>How many entries to read ending at message <paramref name="seq"/> (1: just it).</summary>
    private long BlockBelow(long seq, long journalSeq)
    {
        // Entries per message of the conversation, on average between this message and the lowest one read so far
        // (or the newest, if none lies below it).
        var (otherSeq, otherJournalSeq) = (_plan.LastSeq, _plan.Anchors[0]);
        foreach (var (position, e) in _seen)
        {
            if (e.Seq < seq && (otherSeq > seq || e.Seq < otherSeq))
                (otherSeq, otherJournalSeq) = (e.Seq, position);
        }
        var perMessage = otherSeq == seq ? 1.0 : Math.Max(1.0, (double)(otherJournalSeq - journalSeq) / (otherSeq - seq));
        var entries = (seq - _plan.FromSeq) * perMessage; // from the page's first message up to this one, about
        if (entries > _maxRange && perMessage > Chunk / 4)
            return 1; // wide and sparse: blocks would be mostly other conversations
        var wanted = (long)Math.Ceiling(entries * 1.1) + 1;
        return Math.Max(1, Math.Min(Math.Min(wanted, MaxBlock), Math.Min(_blockBudget, journalSeq)));
    }

    private void Read(long from, long to, Action done)
    {
        _lastRead.Clear();
        _onRead = done;
        _journal.Tell(new ReplayMessages(from, to, to - from + 1, _persistenceId, Self));
    }

    /// <summary>
    /// The page is the chain of <see cref="ThreadLinks.Previous"/> links from its last message down to its first:
    /// exactly this mailbox's copy, whatever else was read (stale events of the same conversation: see
    /// <see cref="ReplayAudit{TEvent}"/>).
    /// </summary>
    private void Reply()
    {
        var page = new StoredMessage[_plan.ToSeq - _plan.FromSeq + 1];
        var journalSeq = _highJournalSeq;
        for (var seq = _plan.ToSeq; seq >= _plan.FromSeq; seq--)
        {
            if (!_seen.TryGetValue(journalSeq, out var found) || found.Seq != seq || found.Message is null)
            {
                Fail($"expected message {seq} of {_plan.ConversationId} at journal entry {journalSeq}");
                return;
            }
            page[seq - _plan.FromSeq] = found.Message;
            journalSeq = found.Links.Previous;
        }
        _answered = true;
        _replyTo.Tell(_wrap(new ThreadPage([.. page], _plan.Receipts.IsDefault ? [] : _plan.Receipts)));
        Context.Stop(Self);
    }

    private void Fail(string reason)
    {
        _log.Warning("Thread page of {PersistenceId} not read: {Reason}", _persistenceId, reason);
        _answered = true;
        _replyTo.Tell(_wrap(new MailboxUnavailable(reason)));
        Context.Stop(Self);
    }

    /// <summary>
    /// Stopped however (answered, failed, or its mailbox stopping): the place at the node's gate goes back, and a
    /// requester not answered yet hears 503 now rather than at the edge's timeout.
    /// </summary>
    protected override void PostStop()
    {
        _gate?.Leave();
        if (!_answered)
            _replyTo.Tell(_wrap(new MailboxUnavailable($"the read of an older page of {_plan.ConversationId} stopped")));
        base.PostStop();
    }

    private sealed class DeadlinePassed
    {
        public static readonly DeadlinePassed Instance = new();
    }
}
