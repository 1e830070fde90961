using Messaging.Messages;

namespace Messaging.Actors;

/// <summary>
/// Events of one mailbox's history as the actor would journal them: messages round-robin over the contacts,
/// alternately sent and received, each decided by <see cref="MailboxState"/>, with delivery confirmations journaled
/// every <c>confirmEvery</c> messages per contact (so the outbox stays small, as it does when recipients are up).
/// </summary>
/// <param name="contactOfPair">Which contact each pair of messages (one sent, one received) is with; by default they take turns.</param>
public sealed class HistoryGenerator(string user, string[] contacts, MailboxLimits limits, long startMs, int confirmEvery = 50, int[]? contactOfPair = null)
{
    private int ContactOf(int i) => contactOfPair is null ? i / 2 % contacts.Length : contactOfPair[i / 2];

    private const string Filler = "the quick brown fox jumps over the lazy dog 0123456789";

    public long EventCount(int messages)
    {
        long confirmations = 0;
        var sentPerContact = new int[contacts.Length];
        for (var i = 0; i < messages; i++)
        {
            if (i % 2 != 0)
                continue;
            var c = ContactOf(i);
            if (++sentPerContact[c] % confirmEvery == 0)
                confirmations++;
        }
        confirmations += sentPerContact.Count(s => s % confirmEvery != 0 && s > 0);
        return messages + confirmations;
    }

    public IEnumerable<(IMailboxEvent Event, long Seq, MailboxState State)> Events(int messages)
    {
        var state = MailboxState.Empty(user, limits);
        var seq = 0L;
        var now = startMs;
        var sentPerContact = new int[contacts.Length];
        for (var i = 0; i < messages; i++)
        {
            var sent = i % 2 == 0;
            var c = ContactOf(i);
            var contact = contacts[c];
            var text = $"{i:D8} {Filler}"[..40];
            IMailboxEvent evt;
            if (sent)
            {
                var decision = state.DecideSend(new SendMessage(user, [contact], text, $"{user}-{i}"), now++);
                evt = ((SendDecision.Store)decision).Event;
            }
            else
            {
                var stamp = now++;
                var message = new ChatMessage(Ids.MessageId(contact, stamp), Ids.ConversationFor(user, contact), contact, [user], text, $"{contact}-{i}", stamp);
                var delivery = new DeliverMessage(user, state.Inbound.GetValueOrDefault(contact) + 1, message);
                evt = ((DeliveryDecision.Store)state.DecideDelivery(delivery, now++)).Event;
            }
            state = state.Apply(evt, ++seq);
            yield return (evt, seq, state);

            if (sent && ++sentPerContact[c] % confirmEvery == 0)
            {
                var confirm = new DeliveriesConfirmed(contact, state.Outbound[contact].LastSeq);
                state = state.Apply(confirm, ++seq);
                yield return (confirm, seq, state);
            }
        }
        for (var c = 0; c < contacts.Length; c++)
        {
            if (sentPerContact[c] % confirmEvery != 0 && state.Outbound.TryGetValue(contacts[c], out var channel) && channel.PendingCount > 0)
            {
                var confirm = new DeliveriesConfirmed(contacts[c], channel.LastSeq);
                state = state.Apply(confirm, ++seq);
                yield return (confirm, seq, state);
            }
        }
    }
}
