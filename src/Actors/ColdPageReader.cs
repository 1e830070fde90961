using System.Collections.Immutable;
using Akka.Actor;
using Akka.Persistence;
using Messaging.Messages;

namespace Messaging.Actors;

/// <summary>What a <see cref="ColdPageReader"/> found: the pages of the event at <see cref="PageSeq"/>, or why not.</summary>
/// <remarks>The mailbox's own work (<see cref="IEntityOwnMessage"/>): an archive's read while the user is idle is not use.</remarks>
public sealed record ColdPageRead(long PageSeq, ImmutableArray<ColdPage> Pages, string? Failure) : IEntityOwnMessage;

/// <summary>
/// Reads one page event of a mailbox's cold index (<see cref="ConversationsArchived"/> at a journal sequence number) for
/// its mailbox, which waits for it: it answers once, within its deadline, and stops. Any event plugin does: it asks the
/// journal to replay exactly that entry.
/// </summary>
public sealed class ColdPageReader : ReceiveActor, IWithTimers
{
    private readonly IActorRef _replyTo;
    private readonly long _pageSeq;
    private ImmutableArray<ColdPage>? _pages;
    private bool _answered;
    private readonly Action _start;

    public ITimerScheduler Timers { get; set; } = null!;

    public static Props Props(string persistenceId, IActorRef journal, long pageSeq, IActorRef replyTo, TimeSpan deadline) =>
        FactoryProps.Of(() => new ColdPageReader(persistenceId, journal, pageSeq, replyTo, deadline));

    public ColdPageReader(string persistenceId, IActorRef journal, long pageSeq, IActorRef replyTo, TimeSpan deadline)
    {
        _replyTo = replyTo;
        _pageSeq = pageSeq;
        Receive<ReplayedMessage>(m =>
        {
            if (m.Persistent.SequenceNr == pageSeq && m.Persistent.Payload is ConversationsArchived archived)
                _pages = archived.Pages;
        });
        Receive<RecoverySuccess>(_ => Answer(_pages is { } pages
            ? new ColdPageRead(pageSeq, pages, null)
            : new ColdPageRead(pageSeq, [], $"journal entry {pageSeq} of {persistenceId} is not a cold page")));
        Receive<ReplayMessagesFailure>(f => Answer(new ColdPageRead(pageSeq, [], $"journal read failed: {f.Cause.Message}")));
        Receive<DeadlinePassed>(_ => Answer(new ColdPageRead(pageSeq, [], $"journal read did not finish within {deadline.TotalSeconds:0.###} s")));
        _start = () =>
        {
            Timers.StartSingleTimer(DeadlinePassed.Instance, DeadlinePassed.Instance, deadline);
            journal.Tell(new ReplayMessages(pageSeq, pageSeq, 1, persistenceId, Self));
        };
    }

    protected override void PreStart() => _start();

    private void Answer(ColdPageRead read)
    {
        if (_answered)
            return;
        _answered = true;
        _replyTo.Tell(read);
        Context.Stop(Self);
    }

    protected override void PostStop()
    {
        if (!_answered)
            _replyTo.Tell(new ColdPageRead(_pageSeq, [], "the read of a cold page stopped"));
        base.PostStop();
    }

    private sealed class DeadlinePassed
    {
        public static readonly DeadlinePassed Instance = new();
    }
}
