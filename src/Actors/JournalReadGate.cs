using Akka.Actor;

namespace Messaging.Actors;

/// <summary>
/// The node's count of thread-page readers running (<see cref="ThreadPageReader"/>), across all its mailboxes: each
/// holds up to one journal request of at most 400 entries in memory, up to ~26 MB with the longest messages, so the
/// node bounds how many run at once (<see cref="MailboxSettings.MaxJournalReadersPerNode"/>) beside each mailbox's own
/// bound. One per actor system.
/// </summary>
public sealed class JournalReadGate : IExtension
{
    private int _running;

    public static JournalReadGate For(ActorSystem system) => system.WithExtension<JournalReadGate, Provider>();

    /// <summary>Readers running on this node now.</summary>
    public int Running => Volatile.Read(ref _running);

    /// <summary>A place for one more reader, if fewer than <paramref name="limit"/> run; give it back with <see cref="Leave"/>.</summary>
    public bool TryEnter(int limit)
    {
        while (true)
        {
            var running = Volatile.Read(ref _running);
            if (running >= limit)
                return false;
            if (Interlocked.CompareExchange(ref _running, running + 1, running) == running)
                return true;
        }
    }

    public void Leave() => Interlocked.Decrement(ref _running);

    private sealed class Provider : ExtensionIdProvider<JournalReadGate>
    {
        public override JournalReadGate CreateExtension(ExtendedActorSystem system) => new();
    }
}
