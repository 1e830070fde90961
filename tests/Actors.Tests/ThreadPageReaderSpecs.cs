using System.Collections.Immutable;
using System.Diagnostics;
using System.Runtime.CompilerServices;
using Akka.Actor;
using Akka.Persistence;
using Messaging.Messages;

namespace Messaging.Actors.Tests;

/// <summary>
/// The reader of pages before the in-memory window, on journals written here event by event (decided by
/// <see cref="MailboxState"/>, so links and anchors are the production ones), reading through a journal that counts
/// its requests; and by mailboxes that keep 5 messages per conversation in memory.
/// </summary>
public sealed class ThreadPageReaderSpecs(ITestOutputHelper output)
    : ShardedMailboxTestKit(nameof(ThreadPageReaderSpecs), output, new MailboxSettings { Limits = Limits })
{
    private const long T0 = 1_764_400_000_000;

    private static readonly MailboxLimits Limits = new(
        RecentPerConversation: 5, MaxPendingPerRecipient: 1_000_000, MaxPendingCharsPerRecipient: long.MaxValue);

    private string Owner => $"owner-{Run}";

    /// <summary>A history of <paramref name="turns"/> messages of the owner, to the given recipient at each turn, written to the journal.</summary>
    private async Task<(MailboxState State, Dictionary<string, List<string>> Texts)> WriteHistoryAsync(
        IEnumerable<string> turns, params (long Position, IMailboxEvent Event)[] extra)
    {
        var (state, texts, events) = History(turns, extra);
        foreach (var batch in events.Chunk(500))
        {
            var probe = CreateTestProbe(); // each write is answered once for all, then once per event
            JournalActorRef.Tell(new WriteMessages(
                batch.Select(e => (IPersistentEnvelope)new AtomicWrite(new Persistent(
                    e.Event, e.Position, MailboxActor.PersistenceIdFor(Owner), "", false, ActorRefs.NoSender, "writer")))
                    .ToImmutableList(),
                probe.Ref, 1));
            await probe.ExpectMsgAsync<WriteMessagesSuccessful>(Ask, cancellationToken: Ct);
        }
        return (state, texts);
    }

    /// <summary>The events of <paramref name="turns"/> messages of the owner, as the mailbox decides them.</summary>
    private (MailboxState State, Dictionary<string, List<string>> Texts, List<(long Position, IMailboxEvent Event)> Events) History(
        IEnumerable<string> turns, params (long Position, IMailboxEvent Event)[] extra)
    {
        var state = MailboxState.Empty(Owner, Limits);
        var texts = new Dictionary<string, List<string>>();
        var events = new List<(long Position, IMailboxEvent Event)>();
        var position = 0L;
        var extras = extra.ToDictionary(e => e.Position, e => e.Event);
        foreach (var recipient in turns)
        {
            while (extras.TryGetValue(++position, out var stale))
                events.Add((position, stale));
            var list = texts.TryGetValue(recipient, out var l) ? l : texts[recipient] = [];
            var text = $"{recipient}:{list.Count + 1}";
            var sent = Assert.IsType<SendDecision.Store>(
                state.DecideSend(new SendMessage(Owner, [recipient], text, $"cid-{position}"), T0 + position)).Event;
            state = state.Apply(sent, position);
            events.Add((position, sent));
            list.Add(text);
        }
        return (state, texts, events);
    }

    /// <summary>Reads one page through a journal that counts the requests it is asked (and, given a list, records their ranges).</summary>
    private async Task<(object Reply, int Requests)> ReadAsync(
        ThreadPlan.FromJournal plan, bool guess = true, bool blocks = true, List<(long From, long To)>? ranges = null, IActorRef? from = null)
    {
        var counter = new StrongBox<int>();
        var journal = Sys.ActorOf(Props.Create(() => new CountingJournal(from ?? JournalActorRef, counter, ranges)));
        var probe = CreateTestProbe();
        Sys.ActorOf(ThreadPageReader.Props(
            MailboxActor.PersistenceIdFor(Owner), journal, plan, probe.Ref, TimeSpan.FromSeconds(10), new MailboxSettings().JournalReadMaxRange,
            blocks: blocks, guess: guess));
        var reply = await probe.ReceiveOneAsync(Ask, Ct);
        return (reply, counter.Value);
    }

    private static ThreadPlan.FromJournal Plan(MailboxState state, string recipient, long fromSeq, long toSeq) =>
        Assert.IsType<ThreadPlan.FromJournal>(state.PlanThread(new GetThread(
            state.UserId, Ids.ConversationFor(state.UserId, recipient), 0, (int)(toSeq - fromSeq + 1), toSeq + 1, null)));

    private static void AssertPage(object reply, List<string> texts, long fromSeq, long toSeq)
    {
        var page = Assert.IsType<ThreadPage>(reply);
        Assert.Equal(
            Enumerable.Range((int)fromSeq, (int)(toSeq - fromSeq + 1)).Select(seq => texts[seq - 1]),
            page.Messages.Select(m => m.Message.Text));
        Assert.Equal(Enumerable.Range((int)fromSeq, (int)(toSeq - fromSeq + 1)).Select(seq => (long)seq), page.Messages.Select(m => m.Seq));
    }

    [Fact]
    public async Task Should_read_every_page_exactly_where_conversations_come_in_bursts_of_any_length()
    {
        // Six conversations in bursts of 1 to 80 messages: the target's share of the journal swings, which is what
        // makes a guess by interpolation miss.
        var random = new Random(12);
        var turns = new List<string>();
        while (turns.Count < 6_000)
            turns.AddRange(Enumerable.Repeat($"r{random.Next(6)}-{Run}", random.Next(1, 80)));
        var (state, texts) = await WriteHistoryAsync(turns);
        var recipient = $"r0-{Run}";
        var last = texts[recipient].Count;

        foreach (var (count, i) in new[] { 1, 1, 7, 50, 50, 200 }.SelectMany(count => Enumerable.Range(0, 6).Select(i => (count, i))))
        {
            var toSeq = random.NextInt64(count, last - Limits.RecentPerConversation + 1);
            var fromSeq = toSeq - count + 1;
            var (guessed, _) = await ReadAsync(Plan(state, recipient, fromSeq, toSeq));
            AssertPage(guessed, texts[recipient], fromSeq, toSeq);
            var (walked, _) = await ReadAsync(Plan(state, recipient, fromSeq, toSeq), guess: false);
            AssertPage(walked, texts[recipient], fromSeq, toSeq);
        }
    }

    [Fact]
    public async Task Should_find_a_deep_page_in_a_few_journal_requests_where_conversations_take_turns()
    {
        var recipients = Enumerable.Range(0, 5).Select(i => $"t{i}-{Run}").ToArray();
        var (state, texts) = await WriteHistoryAsync(Enumerable.Range(0, 10_000).Select(i => recipients[i % 5]));
        var recipient = recipients[0]; // 2,000 messages; the page is 1,500 deep

        var plan = Plan(state, recipient, 451, 500);
        var (guessed, guesses) = await ReadAsync(plan);
        AssertPage(guessed, texts[recipient], 451, 500);
        var (walked, walks) = await ReadAsync(plan, guess: false);
        AssertPage(walked, texts[recipient], 451, 500);

        Output?.WriteLine($"journal requests: {guesses} with the guess, {walks} along the skip list");
        // The guess lands on the page: one block for it and the messages below, then blocks down to the first.
        Assert.InRange(guesses, 1, 4);
        Assert.True(walks > 10, $"the skip list alone took {walks} requests");
    }

    [Fact]
    public async Task Should_find_deep_pages_in_few_journal_requests_where_conversations_come_in_long_bursts()
    {
        // Five conversations in bursts of 2 to 160 messages: a guess often falls into another conversation's burst,
        // and a block of 100 entries there holds nothing of the page's conversation.
        var random = new Random(7);
        var recipients = Enumerable.Range(0, 5).Select(i => $"b{i}-{Run}").ToArray();
        var turns = new List<string>();
        while (turns.Count < 20_000)
            turns.AddRange(Enumerable.Repeat(recipients[random.Next(5)], random.Next(2, 161)));
        var (state, texts) = await WriteHistoryAsync(turns.Take(20_000));
        var recipient = recipients[0];
        var last = texts[recipient].Count;

        var (guessed, walked) = (new List<int>(), new List<int>());
        for (var i = 0; i < 15; i++)
        {
            var toSeq = last - 2_000 - i * 37;
            var plan = Plan(state, recipient, toSeq - 49, toSeq);
            var (page, requests) = await ReadAsync(plan);
            AssertPage(page, texts[recipient], toSeq - 49, toSeq);
            guessed.Add(requests);
            walked.Add((await ReadAsync(plan, guess: false)).Requests);
        }
        guessed.Sort();
        walked.Sort();

        Output?.WriteLine($"journal requests per page: with the guess {string.Join(", ", guessed)}; along the skip list {string.Join(", ", walked)}");
        // Reading the block above a missed one: a median of 6 here (15 when a miss went to the skip list at once).
        Assert.True(guessed[7] <= 10, $"median {guessed[7]} journal requests with the guess");
        Assert.True(walked[7] >= 2 * guessed[7], $"median {walked[7]} along the skip list, {guessed[7]} with the guess");
    }

    /// <summary>
    /// Journal requests for 200 pages of 50 messages, 10,000 deep (<c>10,000 + 11 i</c> messages above the page), in a
    /// seeded history of 100,000 messages in five conversations shaped like <c>parts --only deep</c>'s: the
    /// conversations take turns (steady), or come in bursts of 1 to 80 pairs of messages (bursty). Sorted; every page
    /// is checked.
    /// </summary>
    private async Task<(List<int> Requests, List<long> Entries)> RequestsPerDeepPageAsync(bool bursty, int seed = 7)
    {
        var random = new Random(seed);
        var recipients = Enumerable.Range(0, 5).Select(i => $"d{i}-{Run}").ToArray();
        var turns = new List<string>();
        if (bursty)
            while (turns.Count < 100_000)
                turns.AddRange(Enumerable.Repeat(recipients[random.Next(5)], 2 * random.Next(1, 81)));
        else
            turns.AddRange(Enumerable.Range(0, 100_000).Select(i => recipients[i / 2 % 5]));
        var started = Stopwatch.GetTimestamp();
        var (state, texts, events) = History(turns.Take(100_000));
        Output?.WriteLine($"history of {events.Count} events decided in {Stopwatch.GetElapsedTime(started).TotalSeconds:0.0} s");
        // The test kit's in-memory journal takes minutes to write and replay 100,000 events; this one holds them in an array.
        var persistenceId = MailboxActor.PersistenceIdFor(Owner);
        var stored = events.Select(e => (IPersistentRepresentation)new Persistent(e.Event, e.Position, persistenceId, "", false, ActorRefs.NoSender, "writer")).ToArray();
        var array = Sys.ActorOf(Props.Create(() => new ArrayJournal(stored)));
        var recipient = recipients[0];
        var last = texts[recipient].Count;

        var (requests, entries) = (new List<int>(), new List<long>());
        for (var i = 0; i < 200; i++)
        {
            var toSeq = last - 10_000 - i * 11;
            var ranges = new List<(long From, long To)>();
            var (page, count) = await ReadAsync(Plan(state, recipient, toSeq - 49, toSeq), ranges: ranges, from: array);
            AssertPage(page, texts[recipient], toSeq - 49, toSeq);
            requests.Add(count);
            entries.Add(ranges.Sum(r => r.To - r.From + 1));
            Output?.WriteLine($"page {toSeq - 49}..{toSeq}: {count} requests, {ranges.Sum(r => r.To - r.From + 1)} entries: " +
                              string.Join(" ", ranges.Select(r => r.From == r.To ? $"{r.From}" : $"{r.From}-{r.To}")));
        }
        requests.Sort();
        entries.Sort();
        Output?.WriteLine($"{(bursty ? "bursty" : "steady")}: journal entries read per page: median {entries[99]}, max {entries[^1]}");
        Output?.WriteLine($"{(bursty ? "bursty" : "steady")}: journal requests per page: median {requests[99]}, p90 {requests[179]}, " +
                          $"p99 {requests[197]}, max {requests[^1]} ({string.Join(", ", requests)})");
        return (requests, entries);
    }

    [Fact]
    public async Task Should_read_deep_pages_of_a_bursty_history_without_a_tail_of_journal_requests()
    {
        var (requests, entries) = await RequestsPerDeepPageAsync(bursty: true);
        // Before the reads next to a near message and the doubling blocks (JournalReadMaxRange 2,000): median 17, p90
        // 71, p99 96; the rest of the page was read one message per request once the guesses had spent the budget.
        Assert.True(requests[99] <= 10, $"median {requests[99]} journal requests per page");
        Assert.True(requests[179] <= 15, $"p90 {requests[179]} journal requests per page");
        Assert.True(requests[197] <= 25, $"p99 {requests[197]} journal requests per page");
        // Bounded: blocks, then one entry per message of the page and per skip-list step.
        Assert.True(entries[^1] <= new MailboxSettings().JournalReadMaxRange + 50 + 60, $"max {entries[^1]} entries read for a page");
    }

    [Fact]
    public async Task Should_read_deep_pages_of_a_steady_history_in_a_few_journal_requests()
    {
        var (requests, _) = await RequestsPerDeepPageAsync(bursty: false);
        Assert.True(requests[^1] <= 3, $"max {requests[^1]} journal requests per page");
    }

    [Fact]
    public async Task Should_read_every_page_of_a_conversation_with_few_messages_among_many_others()
    {
        // 40 messages of one conversation among 12,000 of four others in bursts: blocks around a guess mostly miss,
        // the scans above them double, and a gap can be wider than the largest block.
        var random = new Random(3);
        var rare = $"rare-{Run}";
        var others = Enumerable.Range(0, 4).Select(i => $"o{i}-{Run}").ToArray();
        var turns = new List<string>();
        for (var i = 0; i < 40; i++)
        {
            turns.AddRange(Enumerable.Repeat(others[random.Next(4)], random.Next(1, i % 7 == 0 ? 1_500 : 400)));
            turns.AddRange(Enumerable.Repeat(rare, i % 10 == 0 ? 3 : 1));
            i += i % 10 == 0 ? 2 : 0;
        }
        turns.AddRange(Enumerable.Repeat(others[0], 50));
        var (state, texts) = await WriteHistoryAsync(turns);
        var last = texts[rare].Count;

        foreach (var (fromSeq, toSeq) in new (long, long)[] { (1, 1), (1, 3), (3, 4), (2, 12), (1, last - 5), (last - 5, last - 5), (last - 10, last - 5) })
        {
            var (reply, requests) = await ReadAsync(Plan(state, rare, fromSeq, toSeq));
            AssertPage(reply, texts[rare], fromSeq, toSeq);
            Output?.WriteLine($"page {fromSeq}..{toSeq} of {last}: {requests} journal requests");
        }
    }

    [Fact]
    public async Task Should_not_take_a_stale_event_found_by_position_for_the_history()
    {
        // Two conversations taking turns; a stale copy of message 300 of the first (an event of an older writer, or
        // one stored after a rejected write) sits just below where the guess for it lands. Only the history's own
        // links may lead to the page: the stale event lies at or below the mailbox's StaleUpTo.
        var a = $"a-{Run}";
        var b = $"b-{Run}";
        var staleAt = 599L; // where a:300 would be; it lands at 600, after the stale entry
        var conversation = Ids.ConversationFor(Owner, a);
        var stale = new MessageSent(
            new ChatMessage(Ids.MessageId(Owner, T0), conversation, Owner, [a], "stale", "cid-stale", T0), 300,
            new ThreadLinks(597, 591), 300); // a:299 and a:296, as the real one links
        var (state, texts) = await WriteHistoryAsync(
            Enumerable.Range(0, 1_000).Select(i => i % 2 == 0 ? a : b), (staleAt, stale));

        var plan = Plan(state.StaleFound(staleAt), a, 291, 300);
        var (reply, _) = await ReadAsync(plan);
        AssertPage(reply, texts[a], 291, 300);
        var (tally, _) = await ReadAsync(plan with { FromSeq = 300 });
        AssertPage(tally, texts[a], 300, 300);
    }

    [Theory]
    [InlineData(601)]
    [InlineData(640)]
    [InlineData(700)]
    [InlineData(1_000)]
    [InlineData(3_000)]
    public async Task Should_read_a_page_below_the_stale_mark_along_the_history_in_few_requests(long staleUpTo)
    {
        // A mailbox restored from a snapshot taken before 1.5.0 trusts no entry found by position below the snapshot
        // (StaleUpTo): a page down there is found along the history's links. The guesses above the mark find only
        // messages above the page; once they have read all that lies between the mark and the nearest message above,
        // reading it again cannot find the page (a review found the reader doing so until its budget was spent).
        var a = $"a-{Run}";
        var b = $"b-{Run}";
        var (state, texts) = await WriteHistoryAsync(Enumerable.Range(0, 4_000).Select(i => i % 2 == 0 ? a : b));

        var plan = Plan(state.StaleFound(staleUpTo), a, 291, 300); // a:300 lies at 599, below the mark
        var ranges = new List<(long From, long To)>();
        var (reply, requests) = await ReadAsync(plan, ranges: ranges);
        AssertPage(reply, texts[a], 291, 300);
        Output?.WriteLine($"journal requests: {requests}: {string.Join(", ", ranges.Select(r => $"{r.From}-{r.To}"))}");
        // The skip list from the nearest anchor: about two steps per level (34 from 2,047 down to 599).
        Assert.InRange(requests, 1, 40);
        Assert.All(ranges, range => Assert.True(range.From <= range.To, $"an empty request: {range.From}-{range.To}"));
    }

    [Fact]
    public async Task Should_read_a_mailbox_whose_journal_holds_a_write_stored_after_a_rejected_one_from_its_history()
    {
        // The old incarnation decided m2 (rejected: journal entry 3 missing) and then m3 as message 3 (stored at 4, a
        // stale event): the mailbox stores m3 again as message 2 when it recovers. Message 3 is then the first sent
        // afterwards, elsewhere in the journal; the stale one lies where a guess for it looks first.
        var a = $"a-{Run}";
        var empty = MailboxState.Empty(Owner, Limits);
        SendMessage Send(string text) => new(Owner, [a], text, $"cid-{text}");
        var m1 = Assert.IsType<SendDecision.Store>(empty.DecideSend(Send("m1"), T0)).Event;
        var afterM1 = empty.Apply(m1, 2);
        var m2 = Assert.IsType<SendDecision.Store>(afterM1.DecideSend(Send("m2"), T0 + 10)).Event;
        var m3 = Assert.IsType<SendDecision.Store>(afterM1.Apply(m2, 3).DecideSend(Send("m3"), T0 + 20)).Event;
        var probe = CreateTestProbe();
        JournalActorRef.Tell(new WriteMessages(
            new (long Seq, IMailboxEvent Event)[] { (1, new WriterClaimed("old", T0)), (2, m1), (4, m3) }
                .Select(e => (IPersistentEnvelope)new AtomicWrite(new Persistent(
                    e.Event, e.Seq, MailboxActor.PersistenceIdFor(Owner), "", false, ActorRefs.NoSender, "old")))
                .ToImmutableList(),
            probe.Ref, 1));
        await probe.ExpectMsgAsync<WriteMessagesSuccessful>(Ask, cancellationToken: Ct);

        var conversation = Ids.ConversationFor(Owner, a);
        async Task<ThreadPage> Page(long before, int count) => Assert.IsType<ThreadPage>(
            await Region.Ask<object>(new GetThread(Owner, conversation, 0, count, before, null), Ask, Ct));
        await AwaitAssertAsync(async () => Assert.Equal(["m1", "m3"], (await Page(100, 10)).Messages.Select(m => m.Message.Text)),
            Ask, cancellationToken: Ct);
        for (var i = 1; i <= 12; i++)
            Assert.Equal(SendOutcome.Sent, (await Region.Ask<SendResult>(Send($"n{i}"), Ask, Ct)).Outcome);

        string[] expected = ["m1", "m3", "n1"];
        Assert.Equal(expected, (await Page(4, 3)).Messages.Select(m => m.Message.Text)); // from the journal
        await KillMailboxAsync(Owner); // recovered again: the resolution is in the journal now
        Assert.Equal(expected, (await Page(4, 3)).Messages.Select(m => m.Message.Text));
    }

    /// <summary>A journal of one persistence id, positions 1 to n in an array, that answers reads only.</summary>
    private sealed class ArrayJournal : ReceiveActor
    {
        public ArrayJournal(IPersistentRepresentation[] events) =>
            Receive<ReplayMessages>(r =>
            {
                var to = Math.Min(r.ToSequenceNr, events.Length);
                for (long position = Math.Max(1, r.FromSequenceNr), n = 0; position <= to && n < r.Max; position++, n++)
                    r.PersistentActor.Tell(new ReplayedMessage(events[position - 1]));
                r.PersistentActor.Tell(new RecoverySuccess(events.Length));
            });
    }

    /// <summary>Forwards to the journal, counting the reads.</summary>
    private sealed class CountingJournal : ReceiveActor
    {
        public CountingJournal(IActorRef journal, StrongBox<int> requests, List<(long From, long To)>? ranges = null) =>
            ReceiveAny(message =>
            {
                if (message is ReplayMessages replay)
                {
                    requests.Value++;
                    ranges?.Add((replay.FromSequenceNr, replay.ToSequenceNr));
                }
                journal.Forward(message);
            });
    }
}
