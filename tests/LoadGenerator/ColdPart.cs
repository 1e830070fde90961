using System.Diagnostics;
using System.Collections.Immutable;
using Akka.Actor;
using Messaging.Actors;
using Messaging.Messages;

namespace Messaging.LoadGenerator;

/// <summary>
/// parts --only cold: one user written to by many distinct senders. In the state alone (an in-memory list as the
/// journal, so no I/O), without a bound and with MaxConversationsInMemory 1,000: the memory the state keeps, its
/// snapshot's size and the CPU per first message (with the restore check and the archiving it causes). Then through
/// real mailboxes on the benchmark's journal: the time a first message from a new sender takes to be Sent while the
/// recipient holds fewer conversations than the bound, and once it holds the bound (each then costs a page read and a
/// page write in the recipient's journal). Also, in the state alone, one user in many groups (1.9.0: groups go cold too):
/// each group's creation (with its members) and a first message.
/// </summary>
internal static class ColdPart
{
    private const long T0 = 1_764_300_000_000;

    public static async Task<object> RunAsync(ActorSystem system, IActorRef region, int senders, int liveSenders, int groups, int members,
        Func<long> managedBytes)
    {
        var results = new Dictionary<string, object>();
        foreach (var bound in new[] { 0, 1_000 })
            results[$"state, bound {bound}"] = StateAlone(system, "senders", senders, FirstMessage, bound, managedBytes);
        // 1.10.0: receipts from as many co-members of a group, none of whom this user has a 1:1 conversation with.
        foreach (var bound in new[] { 0, 1_000 })
            results[$"co-members, bound {bound}"] = StateAlone(system, "co-members' receipts", senders, CoMemberReceipt, bound, managedBytes);
        if (groups > 0)
        {
            foreach (var bound in new[] { 0, 1_000 })
                results[$"groups, bound {bound}"] = StateAlone(system, $"groups of {members}", groups, i => GroupStart(i, members), bound, managedBytes);
        }
        results["mailboxes"] = await Live(region, liveSenders);
        return results;
    }

    /// <summary>A first message from sender <paramref name="i"/>.</summary>
    private static IChannelCopy[] FirstMessage(int i)
    {
        var sender = $"sender{i:D7}";
        return [new DeliverMessage("popular", 1, new ChatMessage(Ids.MessageId(sender, T0 + i), Ids.ConversationFor(sender, "popular"), sender,
            ["popular"], "hello there, how are you doing today?", $"c{i}", T0 + i))];
    }

    /// <summary>A first receipt from co-member <paramref name="i"/> about a group message of this user's (the group is not in this state).</summary>
    private static IChannelCopy[] CoMemberReceipt(int i) =>
        [new DeliverReceipt("popular", 1, $"member{i:D7}", "grp~big", new Receipt(T0, T0))];

    /// <summary>Group <paramref name="i"/>'s creation with <paramref name="members"/> members, and its creator's first message.</summary>
    private static IChannelCopy[] GroupStart(int i, int members)
    {
        var group = $"grp~g{i:D7}";
        var creator = $"host{i:D7}";
        var everyone = Enumerable.Range(0, members - 2).Select(m => $"member{i:D7}x{m:D4}").Append(creator).Append("popular").ToImmutableArray();
        var created = new ChatMessage($"{i}-c", group, creator, [], "", $"r{i}", T0 + i, new GroupChange(GroupChange.Created, [.. everyone.Where(m => m != creator)]));
        var hello = new ChatMessage($"{i}-h", group, creator, [], "hello there, how are you doing today?", $"h{i}", T0 + i);
        return [new DeliverGroupMessage("popular", 1, 0, created, $"Group {i}", everyone), new DeliverGroupMessage("popular", 2, 1, hello, $"Group {i}", [])];
    }

    private static object StateAlone(ActorSystem system, string what, int senders, Func<int, IChannelCopy[]> copiesOf, int bound, Func<long> managedBytes)
    {
        var before = managedBytes();
        var state = MailboxState.Empty("popular", new MailboxLimits(MaxConversationsInMemory: bound));
        var journal = new List<IMailboxEvent>();
        long pageReads = 0, archives = 0, restores = 0;
        ColdPage? PageAt(long seq, string id)
        {
            if (seq == 0)
                return null;
            pageReads++;
            return ColdIndex.PageFor(((ConversationsArchived)journal[(int)seq - 1]).Pages, ColdIndex.Digest(id));
        }
        void Write(IMailboxEvent evt)
        {
            journal.Add(evt);
            state = state.Apply(evt, journal.Count);
        }

        var copies = Enumerable.Range(0, senders).Select(copiesOf).ToArray(); // made before the clock (counted in memory: the state keeps their strings)
        var clock = Stopwatch.StartNew();
        for (var i = 0; i < senders; i++)
        {
            foreach (var copy in copies[i])
            {
                if (state.ColdNeededFor(copy) is { } cold && PageAt(state.Cold.PageOf(cold), cold) is { } page
                    && state.Restore(cold, [page]) is { } restored)
                {
                    restores++;
                    Write(restored);
                }
                Write(((DeliveryDecision.Store)state.DecideDelivery(copy, T0 + i)).Event);
                while (state.PlanArchive() is [var id, ..])
                {
                    archives++;
                    Write(state.Archive(id, PageAt(state.Cold.PageOf(id), id)));
                }
                // Planned down to the bound at once, as the mailbox does (one walk of the channels per plan).
                for (var plan = state.PlanChannelArchive(most: int.MaxValue); plan.Count > 0; plan = state.PlanChannelArchive(most: int.MaxValue))
                {
                    foreach (var peer in plan)
                    {
                        var id = Ids.ConversationFor("popular", peer);
                        archives++;
                        Write(state.ArchiveChannel(peer, PageAt(state.Cold.PageOf(id), id)));
                    }
                }
            }
            copies[i] = [];
        }
        var elapsed = clock.Elapsed;
        var journalBytes = journal.Sum(e => (long)Serialized(system, e).Length);
        journal = null;
        var after = managedBytes();
        var snapshot = Serialized(system, state.ToSnapshot()).Length;
        GC.KeepAlive(state);
        var retained = (after - before) / 1024.0 / 1024.0;
        var perMessageUs = elapsed.TotalMilliseconds * 1000 / senders;
        Console.WriteLine($"cold, state alone, bound {bound}: {senders:N0} {what} -> {state.Conversations.Count:N0} in memory, " +
            $"{state.Cold.Count:N0} cold, {state.LoneChannels().Count:N0} channels alone, directory {state.Cold.Directory.Length:N0} slots; state {retained:0.0} MiB, snapshot " +
            $"{snapshot / 1024.0:0.0} KiB; {perMessageUs:0.0} us CPU per {(what switch { "senders" => "first message", "co-members' receipts" => "receipt", _ => "group's start" })} ({archives:N0} archives, {pageReads:N0} page reads, " +
            $"{restores:N0} restores); journal {journalBytes / 1024.0 / 1024.0:0.0} MiB serialized");
        return new
        {
            what, bound, senders, inMemory = state.Conversations.Count, cold = state.Cold.Count, lone = state.LoneChannels().Count, directorySlots = state.Cold.Directory.Length,
            stateMiB = retained, snapshotKiB = snapshot / 1024.0, perMessageUs, archives, pageReads, journalMiB = journalBytes / 1024.0 / 1024.0,
        };
    }

    private static byte[] Serialized(ActorSystem system, object value) => system.Serialization.FindSerializerFor(value).ToBinary(value);

    /// <summary>First messages from distinct senders to one user through sharded mailboxes, each awaited (Sent: the recipient stored it).</summary>
    private static async Task<object> Live(IActorRef region, int senders)
    {
        var popular = $"popular-{Guid.NewGuid():N}"[..16];
        var below = new List<double>();
        var above = new List<double>();
        for (var i = 0; i < senders; i++)
        {
            var started = Stopwatch.GetTimestamp();
            var result = await region.Ask<SendResult>(new SendMessage($"{popular}-s{i}", [popular], "hello there", "c1"), TimeSpan.FromSeconds(30));
            if (result.Outcome != SendOutcome.Sent)
                throw new InvalidOperationException($"send {i}: {result.Outcome} {result.Detail}");
            (i < 1_000 ? below : above).Add(Stopwatch.GetElapsedTime(started).TotalMilliseconds);
        }
        var status = await region.Ask<MailboxStatus>(new GetMailboxStatus(popular), TimeSpan.FromSeconds(10));
        below.Sort();
        above.Sort();
        double P(List<double> sorted, double p) => sorted.Count == 0 ? 0 : sorted[(int)Math.Min(sorted.Count - 1, Math.Round(p * (sorted.Count - 1)))];
        Console.WriteLine($"cold, mailboxes: {senders:N0} first messages to one user, each awaited: below the bound p50 {P(below, 0.5):0.00} ms " +
            $"p99 {P(below, 0.99):0.00} ms; at the bound (a page read and write each) p50 {P(above, 0.5):0.00} ms p99 {P(above, 0.99):0.00} ms; " +
            $"{status.Conversations:N0} conversations in memory at the end");
        return new
        {
            senders, belowP50 = P(below, 0.5), belowP99 = P(below, 0.99), atBoundP50 = P(above, 0.5), atBoundP99 = P(above, 0.99),
            inMemory = status.Conversations,
        };
    }
}
