using System.Numerics;
using Akka.Actor;
using Akka.Event;
using Akka.Persistence;
using Messaging.Messages;

namespace Messaging.Actors;

/// <summary>
/// Reads a thread page that lies before the mailbox's in-memory window straight from the journal, through the
/// journal protocol every plugin implements (no SQL). It walks the skip list that <see cref="ThreadLinks"/> make
/// (O(log depth) point reads) to the journal positions of the page's first and last message, then reads that range
/// once. History is immutable, so this runs beside the mailbox without touching its state.
/// </summary>
public sealed class ThreadPageReader : ReceiveActor
{
    private readonly ILoggingAdapter _log = Context.GetLogger();
    private readonly string _persistenceId;
    private readonly IActorRef _journal;
    private readonly ThreadPlan.FromJournal _plan;
    private readonly IActorRef _replyTo;
    private readonly Func<object, object> _wrap;
    private readonly List<IPersistentRepresentation> _batch = [];
    private Action<List<IPersistentRepresentation>>? _onBatch;

    // Skip-list walk position: conversation seq and its journal sequence number.
    private long _seq;
    private long _journalSeq;
    private long _target;
    private long _highJournalSeq;

    /// <param name="wrap">What <paramref name="replyTo"/> gets for the page (or the failure): the page itself by default.</param>
    public static Props Props(
        string persistenceId, IActorRef journal, ThreadPlan.FromJournal plan, IActorRef replyTo, TimeSpan timeout,
        Func<object, object>? wrap = null) =>
        Akka.Actor.Props.Create(() => new ThreadPageReader(persistenceId, journal, plan, replyTo, timeout, wrap));

    public ThreadPageReader(
        string persistenceId, IActorRef journal, ThreadPlan.FromJournal plan, IActorRef replyTo, TimeSpan timeout,
        Func<object, object>? wrap = null)
    {
        _persistenceId = persistenceId;
        _journal = journal;
        _plan = plan;
        _replyTo = replyTo;
        _wrap = wrap ?? (reply => reply);
        Context.SetReceiveTimeout(timeout);

        Receive<ReplayedMessage>(m => _batch.Add(m.Persistent));
        Receive<RecoverySuccess>(_ =>
        {
            var batch = new List<IPersistentRepresentation>(_batch);
            _batch.Clear();
            _onBatch!(batch);
        });
        Receive<ReplayMessagesFailure>(f => Fail($"journal read failed: {f.Cause.Message}"));
        Receive<ReceiveTimeout>(_ => Fail("journal read timed out"));

        Locate(_plan.ToSeq, high =>
        {
            _highJournalSeq = high;
            Locate(_plan.FromSeq, low => Read(low, _highJournalSeq, ReplyWithRange));
        });
    }

    /// <summary>Find the journal position of conversation message <paramref name="target"/>.</summary>
    private void Locate(long target, Action<long> found)
    {
        _target = target;
        // Start from the anchor nearest above the target: anchor k holds the newest multiple of 2^k.
        _seq = _plan.LastSeq;
        _journalSeq = _plan.Anchors[0];
        for (var k = 1; k < _plan.Anchors.Length; k++)
        {
            var anchorSeq = (_plan.LastSeq >> k) << k;
            if (anchorSeq >= target && anchorSeq > 0 && _plan.Anchors[k] != 0)
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
        Read(_journalSeq, _journalSeq, batch =>
        {
            if (batch.Count != 1 || Links(batch[0].Payload) is not { } links)
            {
                Fail($"journal entry {_journalSeq} of {_persistenceId} is not a message of {_plan.ConversationId}");
                return;
            }
            var lowBit = _seq & -_seq;
            if (_seq - lowBit >= _target && links.Skip != 0)
            {
                _seq -= lowBit;
                _journalSeq = links.Skip;
            }
            else
            {
                _seq -= 1;
                _journalSeq = links.Previous;
            }
            Step(found);
        });
    }

    private void Read(long from, long to, Action<List<IPersistentRepresentation>> onBatch)
    {
        _onBatch = onBatch;
        _journal.Tell(new ReplayMessages(from, to, to - from + 1, _persistenceId, Self));
    }

    /// <summary>
    /// The page is the chain of <see cref="ThreadLinks.Previous"/> links from its last message down to its first, all
    /// inside the range just read: exactly this mailbox's copy, whatever else the range holds (other conversations,
    /// and in journals written before writes were fenced, a paused node's stale events).
    /// </summary>
    private void ReplyWithRange(List<IPersistentRepresentation> batch)
    {
        var byJournalSeq = batch.ToDictionary(p => p.SequenceNr, p => p.Payload);
        var page = new StoredMessage[_plan.ToSeq - _plan.FromSeq + 1];
        var journalSeq = _highJournalSeq;
        for (var seq = _plan.ToSeq; seq >= _plan.FromSeq; seq--)
        {
            (StoredMessage Message, ThreadLinks Links)? entry = byJournalSeq.GetValueOrDefault(journalSeq) switch
            {
                MessageSent s when s.Message.ConversationId == _plan.ConversationId && s.Seq == seq => (new StoredMessage(s.Seq, s.Message, s.Tally), s.Links),
                MessageReceived r when r.Message.ConversationId == _plan.ConversationId && r.Seq == seq => (new StoredMessage(r.Seq, r.Message, r.Tally), r.Links),
                _ => null,
            };
            if (entry is not { } found)
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

    private ThreadLinks? Links(object payload) => payload switch
    {
        MessageSent s when s.Message.ConversationId == _plan.ConversationId && s.Seq == _seq => s.Links,
        MessageReceived r when r.Message.ConversationId == _plan.ConversationId && r.Seq == _seq => r.Links,
        _ => null,
    };

    private void Fail(string reason)
    {
        _log.Warning("Thread page of {PersistenceId} not read: {Reason}", _persistenceId, reason);
        _replyTo.Tell(_wrap(new MailboxUnavailable(reason)));
        Context.Stop(Self);
    }
}
