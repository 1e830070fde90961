using System.Collections.Immutable;
using System.Data.Common;
using System.Diagnostics;
using System.Runtime;
using System.Text.Json;
using Akka.Actor;
using Akka.Cluster.Hosting;
using Akka.Hosting;
using Akka.Persistence;
using Akka.Remote.Hosting;
using Messaging.Actors.Delivery;
using Messaging.Actors.Groups;
using Messaging.Actors;
using Messaging.Messages;
using Messaging.Messages.Serialization;
using Messaging.Node;
using Microsoft.Data.Sqlite;
using Npgsql;

namespace Messaging.LoadGenerator;

/// <summary>
/// Benchmarks of the parts, in-process, with the production hosting extensions (serializer, SQL persistence,
/// mailbox shards) on a throwaway PostgreSQL (or a SQLite file): journal write rate of the mailbox path, cold
/// recovery of a 100,000-message mailbox, memory per live mailbox, and a thread page 10,000 messages deep.
/// </summary>
public static class Parts
{
    private static readonly JsonSerializerOptions JsonOut = new() { WriteIndented = true };

    public static async Task<int> RunAsync(Args a)
    {
        var sqlite = a.Flag("sqlite");
        var fsync = a.Str("pg-fsync", "on") != "off";
        var only = (a.Str("only") ?? "journal,recovery,deep,memory").Split(',', StringSplitOptions.RemoveEmptyEntries).ToHashSet();
        var mailboxes = a.Int("mailboxes", 100_000);
        var deepMessages = a.Int("deep-messages", 100_000);
        // The state and memory parts' mailboxes: 50 messages over 5 contacts by default (the target's mailbox);
        // e.g. --messages 360 --contacts 6 is a soak user after 30 minutes (full windows, 180 sends to dedup).
        var historyMessages = a.Int("messages", 50);
        var historyContacts = a.Int("contacts", 5);
        var journalSeconds = a.Double("journal-seconds", 20);
        var journalUsers = a.Int("journal-users", 2_000);
        var journalConcurrency = a.Int("journal-concurrency", 500);
        var wakeMailboxes = a.Int("wake-mailboxes", 2_500);
        var wakeRounds = a.Int("wake-rounds", 3);
        var wakeWarmup = a.Int("wake-warmup", 0);
        var coldSenders = a.Int("cold-senders", 100_000); // parts --only cold: distinct senders to one user, in the state alone
        var coldLiveSenders = a.Int("cold-live-senders", 3_000); // and through real mailboxes
        var coldGroups = a.Int("cold-groups", 10_000); // and a user in this many groups (0: none), in the state alone
        var coldGroupMembers = a.Int("cold-group-members", 32); // of this many members each
        var hocon = a.Str("hocon");
        var connectionExtra = a.Str("pg-connection-extra") ?? "";
        var jsonPath = a.Str("json");
        var hold = a.Flag("hold"); // after the parts, print the pid and wait for Enter (for dotnet-gcdump)
        var fenceActors = a.Int("fence-actors", 1_000);
        var fenceDepth = a.Int("fence-depth", 1);
        var fenceRate = a.Double("fence-rate", 0);
        var fenceRounds = a.Int("fence-rounds", 3);
        var fenceWarmup = a.Double("fence-warmup", 4);
        var fenceSeconds = a.Double("fence-seconds", 12);
        var fencePad = a.Int("fence-pad-writers", 100_000);
        var fenceVariants = (a.Str("fence-variants") ?? "off,current").Split(',', StringSplitOptions.RemoveEmptyEntries);
        a.RejectUnknown();

        Console.WriteLine($"machine: {Environment.ProcessorCount} cores, {Bench.CpuModel()}, {Bench.MemoryGiB():0} GiB; load average {ProcStats.LoadAverage1():0.00}; GC server={GCSettings.IsServerGC}");
        if (only.SetEquals(["fence"]))
        {
            // Its own throwaway PostgreSQL and actor system (no sharding): only the journal and the trigger.
            var fence = await FenceBench.RunAsync(fsync, fenceActors, fenceDepth, fenceRate, fenceRounds, fenceWarmup, fenceSeconds,
                fencePad, fenceVariants, hocon);
            if (jsonPath is not null)
                await File.WriteAllTextAsync(jsonPath, JsonSerializer.Serialize(new Dictionary<string, object> { ["fence"] = fence }, JsonOut));
            return 0;
        }
        PostgresServer? pg = null;
        string connectionString;
        PersistenceProvider provider;
        var dir = Path.Combine(Path.GetTempPath(), $"messaging-parts-{Guid.NewGuid().ToString("N")[..8]}");
        Directory.CreateDirectory(dir);
        if (sqlite)
        {
            provider = PersistenceProvider.Sqlite;
            connectionString = $"Data Source={Path.Combine(dir, "parts.db")}";
        }
        else
        {
            pg = await PostgresServer.StartAsync(durable: fsync);
            provider = PersistenceProvider.PostgreSql;
            // --pg-connection-extra ";Max Auto Prepare=0": a client setting the node would otherwise choose (A/B).
            connectionString = pg.ConnectionStringFor("messaging") + connectionExtra;
        }
        Console.WriteLine($"journal: {provider}{(sqlite ? "" : $" (fsync {(fsync ? "on" : "off")})")}");

        var results = new Dictionary<string, object>();
        try
        {
            var settings = new MailboxSettings();
            using var host = await StartHostAsync(provider, connectionString, settings, hocon);
            var system = host.Services.GetRequiredService<ActorSystem>();
            var region = host.Services.GetRequiredService<ActorRegistry>().Get<MailboxRegion>();

            if (only.Contains("recovery") || only.Contains("deep"))
                results["recovery"] = await Recovery(system, settings, deepMessages, only.Contains("deep"), results);
            if (only.Contains("state"))
                results["state"] = StateOnly(system, Math.Min(mailboxes, 20_000), historyMessages, historyContacts);
            if (only.Contains("memory"))
                results["memory"] = await Memory(system, region, mailboxes, historyMessages, historyContacts);
            if (only.Contains("wake"))
                results["wake"] = await Wake(system, host.Services.GetRequiredService<ActorRegistry>(), settings, wakeMailboxes, historyMessages, historyContacts, wakeRounds, wakeWarmup, pg?.PostmasterPid);
            if (only.Contains("cold"))
                results["cold"] = await ColdPart.RunAsync(system, region, coldSenders, coldLiveSenders, coldGroups, coldGroupMembers, ManagedBytesAfterFullGc);
            if (only.Contains("journal"))
                results["journal"] = await JournalThroughput(region, provider, connectionString, journalUsers, journalConcurrency, journalSeconds);
            if (hold)
            {
                Console.WriteLine($"holding: pid {Environment.ProcessId} (dotnet-gcdump collect -p {Environment.ProcessId}); Enter to stop");
                Console.ReadLine();
            }
            await host.StopAsync();
        }
        finally
        {
            if (pg is not null)
                await pg.DisposeAsync();
            try { Directory.Delete(dir, recursive: true); } catch (IOException) { }
        }
        if (jsonPath is not null)
            await File.WriteAllTextAsync(jsonPath, JsonSerializer.Serialize(results, JsonOut));
        return 0;
    }

    private static async Task<IHost> StartHostAsync(PersistenceProvider provider, string connectionString, MailboxSettings settings, string? hocon)
    {
        var builder = Host.CreateApplicationBuilder();
        builder.Logging.SetMinimumLevel(LogLevel.Warning);
        builder.Services.AddAkka("messaging", akka =>
        {
            akka.ConfigureLoggers(loggers => loggers.AddLoggerFactory())
                .WithMessagingSerialization()
                .WithRemoting("127.0.0.1", 0)
                .WithClustering(new ClusterOptions())
                .WithMessagingPersistence(provider, connectionString)
                .WithMailboxShards(settings with { PassivateIdleAfter = TimeSpan.FromHours(1) }, 100)
                .WithGroupShards(settings with { PassivateIdleAfter = TimeSpan.FromHours(1) }, new GroupLimits(), 100)
                .WithDeliveryIndex(settings)
                .AddStartup((system, _) => Akka.Cluster.Cluster.Get(system).Join(Akka.Cluster.Cluster.Get(system).SelfAddress));
            if (!string.IsNullOrWhiteSpace(hocon))
                akka.AddHocon(hocon, HoconAddMode.Prepend);
        });
        var host = builder.Build();
        await host.StartAsync();
        var cluster = Akka.Cluster.Cluster.Get(host.Services.GetRequiredService<ActorSystem>());
        await Eventually.AssertAsync(() => Task.FromResult(cluster.SelfMember.Status == Akka.Cluster.MemberStatus.Up),
            TimeSpan.FromSeconds(30), "the in-process node did not join its one-node cluster within 30 s");
        return host;
    }

    // ---------------- a cohort waking at once ----------------

    /// <summary>
    /// A cohort of mailboxes that went idle together waking together, as in the soak: each has its history in the
    /// journal and the snapshot its idle passivation took at its last event, so a wake is a snapshot load and a
    /// highest-sequence-number query, with nothing to replay. Every mailbox of a cohort is asked at once; each round is
    /// a new cohort (a first wake), after 2,500 empty mailboxes were woken (as a soak node has by then); round 0, the
    /// first snapshots read, is reported and not counted (it costs ~1.5x the next rounds). What one wake costs the
    /// node's process and PostgreSQL in CPU, and how long the cohort takes.
    /// </summary>
    private static async Task<object> Wake(ActorSystem system, ActorRegistry registry, MailboxSettings settings, int count, int messages,
        int contactCount, int rounds, int warmup, int? postmaster)
    {
        var region = registry.Get<MailboxRegion>();
        Console.WriteLine($"wake: {rounds + 1} cohorts of {count} mailboxes x {contactCount} conversations, {messages} messages of 40 characters, each with its idle snapshot ...");
        var write = Stopwatch.StartNew();
        var persistence = Persistence.Instance.Apply(system);
        var journal = persistence.JournalFor(null);
        var snapshots = persistence.SnapshotStoreFor(null);
        var serialization = system.Serialization;
        var limits = new MailboxLimits();
        var cohorts = Enumerable.Range(0, rounds + 1)
            .Select(r => Enumerable.Range(0, count).Select(i => $"w{r}-{i:D6}").ToArray()).ToArray();
        long snapshotBytes = 0;
        foreach (var ids in cohorts)
        {
            await ForAll(count, 6, async i =>
            {
                var user = ids[i];
                var contacts = Enumerable.Range(1, contactCount).Select(c => ids[(i + c * 7) % count]).ToArray();
                var generator = new HistoryGenerator(user, contacts, limits, 1_700_000_000_000 + i * 1000L, confirmEvery: 10);
                var writer = Guid.NewGuid().ToString();
                var pid = MailboxActor.PersistenceIdFor(user);
                var events = new List<IPersistentRepresentation>();
                MailboxState? last = null;
                long lastSeq = 0;
                foreach (var (evt, seq, state) in generator.Events(messages))
                {
                    events.Add(new Persistent(evt, seq, pid, "", false, ActorRefs.NoSender, writer));
                    (last, lastSeq) = (state, seq);
                }
                await Relay.Send(system, journal, r => new WriteMessages([new AtomicWrite(events.ToImmutableList())], r, 1));
                var snapshot = last!.ToSnapshot();
                Interlocked.Add(ref snapshotBytes, serialization.FindSerializerFor(snapshot).ToBinary(snapshot).Length);
                await Relay.Send(system, snapshots, _ => new SaveSnapshot(new SnapshotMetadata(pid, lastSeq, DateTime.UtcNow), snapshot));
            });
        }
        Console.WriteLine($"  written in {write.Elapsed.TotalSeconds:0} s; snapshots {snapshotBytes / (double)cohorts.Length / count / 1024:0.0} KiB on average");

        // As the soak's node has by its first wake: every shard started and thousands of empty mailboxes recovered (no
        // snapshot, nothing to replay), so the journal's read paths have run; the snapshot's path has not.
        var primed = Stopwatch.StartNew();
        await ForAll(count, 256, i => region.Ask<MailboxStatus>(new GetMailboxStatus($"prime-{i:D6}"), TimeSpan.FromSeconds(120)));
        Console.WriteLine($"  primed {count} empty mailboxes in {primed.Elapsed.TotalSeconds:0.0} s");
        if (warmup > 0)
        {
            // What the node runs as it starts (MailboxHosting.WithWakeWarmup), here after the priming: its CPU is not counted.
            var index = new DeliveryIndexRef(registry.Get<DeliveryIndexRegion>(), "warmup-index");
            var report = await WakeWarmup.RunAsync(system, settings, region, registry.Get<GroupRegion>(), index, PersistencePlugins.Default, warmup);
            Console.WriteLine($"  warm-up: {report.Wakes} wakes in {report.Took.TotalSeconds:0.0} s, {report.MethodsCompiled} methods compiled, settled {report.Settled}");
        }
        var results = new List<object>();
        for (var round = 0; round <= rounds; round++)
        {
            var ids = cohorts[round];
            await Task.Delay(1000);
            var recorder = new OpRecorder("wake");
            var bad = 0;
            var load = ProcStats.LoadAverage1();
            var self0 = ProcStats.CpuSeconds(Environment.ProcessId);
            var pg0 = postmaster is { } p0 ? ProcStats.TreeCpuSeconds(p0) : 0;
            var clock = Stopwatch.StartNew();
            await ForAll(count, count, async i =>
            {
                var started = Stopwatch.GetTimestamp();
                var status = await region.Ask<MailboxStatus>(new GetMailboxStatus(ids[i]), TimeSpan.FromSeconds(120));
                recorder.Add(Stopwatch.GetElapsedTime(started).TotalMilliseconds);
                if (status.Conversations != contactCount || status.PendingDeliveries != 0)
                    Interlocked.Increment(ref bad);
            });
            var wall = clock.Elapsed.TotalSeconds;
            var selfMs = (ProcStats.CpuSeconds(Environment.ProcessId) - self0) * 1000 / count;
            var pgMs = postmaster is { } p1 ? (ProcStats.TreeCpuSeconds(p1) - pg0) * 1000 / count : 0;
            var s = recorder.Summary(wall);
            var label = round == 0 ? "warm-up" : $"round {round}";
            Console.WriteLine($"  {label}: {count} woken in {wall:0.00} s ({count / wall:0}/s), wake p50 {s.P50Ms:0} ms p99 {s.P99Ms:0} ms max {s.MaxMs:0}; " +
                              $"CPU per wake: node {selfMs:0.00} ms, PostgreSQL {pgMs:0.00} ms; load {load:0.00}; {bad} not as expected");
            if (round > 0)
                results.Add(new { Round = round, Seconds = wall, Wake = s, NodeCpuMsPerWake = selfMs, PostgresCpuMsPerWake = pgMs, LoadAverage = load, NotAsExpected = bad });
        }
        return new { Mailboxes = count, Messages = messages, Contacts = contactCount, SnapshotBytes = snapshotBytes / cohorts.Length / count, Rounds = results };
    }

    // ---------------- journal write rate ----------------

    private static async Task<object> JournalThroughput(IActorRef region, PersistenceProvider provider, string connectionString,
        int users, int concurrency, double seconds)
    {
        Console.WriteLine($"journal: {users} mailboxes, {concurrency} sends in flight, {seconds:0} s (Sent = both copies durable)");
        var ids = Enumerable.Range(0, users).Select(i => $"j{i:D6}").ToArray();
        await ForAll(ids.Length, 200, i => region.Ask<object>(new GetMailboxStatus(ids[i]), TimeSpan.FromSeconds(60)));

        var recorder = new OpRecorder("send (actor ask)");
        var outcomes = new System.Collections.Concurrent.ConcurrentDictionary<SendOutcome, int>();
        var warmup = TimeSpan.FromSeconds(5);
        var clock = Stopwatch.StartNew();
        long sent = 0;
        var end = warmup + TimeSpan.FromSeconds(seconds);
        long startOrdering = 0;
        var cpuStart = 0.0;
        var measuring = Task.Run(async () =>
        {
            await Task.Delay(warmup);
            startOrdering = await MaxOrdering(provider, connectionString);
            cpuStart = ProcStats.CpuSeconds(Environment.ProcessId);
        });
        await Task.WhenAll(Enumerable.Range(0, concurrency).Select(w => Task.Run(async () =>
        {
            var random = new Random(w);
            while (clock.Elapsed < end)
            {
                var u = random.Next(users);
                var n = Interlocked.Increment(ref sent);
                var started = Stopwatch.GetTimestamp();
                var reply = await region.Ask<SendResult>(
                    new SendMessage(ids[u], [ids[(u + 1 + random.Next(3)) % users]], "0123456789012345678901234567890123456789", $"c{n}"),
                    TimeSpan.FromSeconds(30));
                var inWindow = clock.Elapsed > warmup && clock.Elapsed < end;
                if (inWindow)
                {
                    recorder.Add(Stopwatch.GetElapsedTime(started).TotalMilliseconds);
                    outcomes.AddOrUpdate(reply.Outcome, 1, (_, c) => c + 1);
                }
            }
        })));
        await measuring;
        var cpu = ProcStats.CpuSeconds(Environment.ProcessId) - cpuStart;
        var events = await MaxOrdering(provider, connectionString) - startOrdering;
        var summary = recorder.Summary(seconds);
        var eventsPerSecond = events / seconds;
        Console.WriteLine($"  sends/s {summary.PerSecond:0} ({string.Join(", ", outcomes.Select(o => $"{o.Key} {o.Value}"))}), journal events/s {eventsPerSecond:0}, " +
                          $"ask p50 {summary.P50Ms:0.0} ms p99 {summary.P99Ms:0.0} ms max {summary.MaxMs:0}; process CPU {cpu / seconds:0.00} cores; " +
                          $"{cpu / seconds / summary.PerSecond * 1e6:0} us CPU per send (actor + journal client, no HTTP)");
        return new { SendsPerSecond = summary.PerSecond, EventsPerSecond = eventsPerSecond, Ask = summary, ProcessCpuCores = cpu / seconds, Outcomes = outcomes };
    }

    private static async Task<long> MaxOrdering(PersistenceProvider provider, string connectionString)
    {
        await using DbConnection connection = provider == PersistenceProvider.Sqlite
            ? new SqliteConnection(connectionString)
            : new NpgsqlConnection(connectionString);
        await connection.OpenAsync();
        await using var command = connection.CreateCommand();
        command.CommandText = "SELECT COALESCE(MAX(ordering), 0) FROM journal";
        return Convert.ToInt64(await command.ExecuteScalarAsync());
    }

    // ---------------- recovery and deep page ----------------

    private static async Task<object> Recovery(ActorSystem system, MailboxSettings settings, int messages, bool deepPage, Dictionary<string, object> results)
    {
        const string user = "deep";
        Console.WriteLine($"recovery: writing {messages} messages (5 conversations, half sent, half received) to {user}'s journal ...");
        var write = Stopwatch.StartNew();
        var (events, snapshotSeq) = await WriteHistory(system, settings, user, messages);
        Console.WriteLine($"  {events} events written in {write.Elapsed.TotalSeconds:0.0} s; snapshot at {snapshotSeq}, so recovery replays {events - snapshotSeq} events (the worst case for SnapshotEvery={settings.SnapshotEvery})");

        // A smaller mailbox first, so JIT and connection set-up are not counted.
        await WriteHistory(system, settings, "warm", 3_000);
        await RecoverOnce(system, settings, "warm");

        var times = new List<double>();
        var memory = new List<long>();
        IActorRef? live = null;
        for (var run = 0; run < 5; run++)
        {
            var (ms, bytes, actor) = await RecoverOnce(system, settings, user, keep: run == 4);
            times.Add(ms);
            memory.Add(bytes);
            live = actor;
        }
        times.Sort();
        memory.Sort();
        Console.WriteLine($"  cold recovery of {messages} messages: median {times[2]:0.0} ms (min {times[0]:0.0}, max {times[4]:0.0}); live state {memory[2] / 1024.0:0} KiB");
        if (deepPage && live is not null)
        {
            // The same mailbox again, finding pages along the skip list only: the baseline of the guess.
            var (_, _, skipList) = await RecoverOnce(system, settings with { GuessPositions = false }, user, keep: true);
            results["deepPage"] = await DeepPage(live, skipList!, user);
            // A history where the five conversations come in bursts of 1 to 80 pairs of messages: the share of the
            // journal a conversation takes swings, which is what makes a guess miss.
            const string bursty = "bursty";
            var random = new Random(7);
            var pairs = new List<int>();
            while (pairs.Count < messages / 2)
                pairs.AddRange(Enumerable.Repeat(random.Next(5), random.Next(1, 81)));
            await WriteHistory(system, settings, bursty, messages, [.. pairs.Take(messages / 2)]);
            var (_, _, burstyLive) = await RecoverOnce(system, settings, bursty, keep: true);
            var (_, _, burstySkipList) = await RecoverOnce(system, settings with { GuessPositions = false }, bursty, keep: true);
            results["deepPageBursty"] = await DeepPage(burstyLive!, burstySkipList!, bursty);
            // The same mailbox again, reading wide pages one message per read: the baseline of the walk in blocks.
            var (_, _, pointReads) = await RecoverOnce(system, settings with { WalkInBlocks = false }, user, keep: true);
            results["widePage"] = await WidePage(live, pointReads!, user);
        }
        return new { Messages = messages, Events = events, ReplayedEvents = events - snapshotSeq, MedianMs = times[2], TimesMs = times, StateBytes = memory[2] };
    }

    private static async Task<(double Ms, long Bytes, IActorRef? Actor)> RecoverOnce(ActorSystem system, MailboxSettings settings, string user, bool keep = false)
    {
        var before = ManagedBytesAfterFullGc();
        var started = Stopwatch.GetTimestamp();
        var actor = system.ActorOf(Props.Create(() => new MailboxActor(user, settings, system.DeadLetters, system.DeadLetters, new DeliveryIndexRef(system.DeadLetters, "unused"))));
        var status = await actor.Ask<MailboxStatus>(new GetMailboxStatus(user), TimeSpan.FromSeconds(60));
        var ms = Stopwatch.GetElapsedTime(started).TotalMilliseconds;
        var bytes = ManagedBytesAfterFullGc() - before;
        if (status.Conversations == 0)
            throw new InvalidOperationException($"{user} recovered empty");
        if (keep)
            return (ms, bytes, actor);
        await actor.GracefulStop(TimeSpan.FromSeconds(10), StopMailbox.Instance);
        return (ms, bytes, null);
    }

    /// <summary>
    /// Pages of 50 messages 10,000 deep: by the mailbox as it is (a guess, then blocks) and by one that finds the page
    /// along the skip list only, alternating which goes first, in the same process against the same journal.
    /// </summary>
    private static async Task<object> DeepPage(IActorRef actor, IActorRef skipList, string user)
    {
        var conversation = Ids.ConversationFor(user, $"{user}-c0");
        var guessed = new OpRecorder("thread page 10,000 deep, guessed");
        var walked = new OpRecorder("thread page 10,000 deep, skip list");
        async Task<double> Read(IActorRef reader, int i)
        {
            var started = Stopwatch.GetTimestamp();
            var page = await reader.Ask<object>(new GetThread(user, conversation, 10_000 + i * 37, 50, null, null), TimeSpan.FromSeconds(30));
            var ms = Stopwatch.GetElapsedTime(started).TotalMilliseconds;
            if (page is not ThreadPage { Messages.Length: 50 })
                throw new InvalidOperationException($"deep page {i}: {page}");
            return ms;
        }
        for (var i = 0; i < 70; i++)
        {
            var (first, second) = i % 2 == 0 ? (actor, skipList) : (skipList, actor);
            var a = await Read(first, i);
            var b = await Read(second, i);
            if (i < 10)
                continue; // the first ten warm the reader's code paths
            (first == actor ? guessed : walked).Add(a);
            (second == actor ? guessed : walked).Add(b);
        }
        var shallow = new OpRecorder("thread page (recent, in memory)");
        for (var i = 0; i < 200; i++)
        {
            var started = Stopwatch.GetTimestamp();
            await actor.Ask<ThreadPage>(new GetThread(user, conversation, 0, 50, null, null), TimeSpan.FromSeconds(30));
            shallow.Add(Stopwatch.GetElapsedTime(started).TotalMilliseconds);
        }
        var deep = guessed.Summary(1);
        var baseline = walked.Summary(1);
        var recent = shallow.Summary(1);
        Console.WriteLine($"  {user}: thread page 10,000 deep (50 messages, journal): guessed p50 {deep.P50Ms:0.0} ms p90 {deep.P90Ms:0.0} p99 {deep.P99Ms:0.0} max {deep.MaxMs:0.0}; " +
                          $"skip list p50 {baseline.P50Ms:0.0} ms p90 {baseline.P90Ms:0.0} p99 {baseline.P99Ms:0.0}; median ratio {baseline.P50Ms / deep.P50Ms:0.0}x; " +
                          $"recent page from memory: p50 {recent.P50Ms:0.00} ms p99 {recent.P99Ms:0.00}");
        return new { Deep = deep, SkipList = baseline, Recent = recent };
    }

    /// <summary>
    /// Pages of 200 messages 10,000 deep: wider than JournalReadMaxRange (the conversation takes turns with four others),
    /// so they are walked; by the mailbox as it is (in blocks) and by one that reads one message per read, alternating
    /// which goes first, in the same process against the same journal.
    /// </summary>
    private static async Task<object> WidePage(IActorRef blocks, IActorRef pointReads, string user)
    {
        var conversation = Ids.ConversationFor(user, "deep-c0");
        var inBlocks = new OpRecorder("page of 200, 10,000 deep, in blocks");
        var onePerRead = new OpRecorder("page of 200, 10,000 deep, one message per read");
        async Task<double> Read(IActorRef actor, int i)
        {
            var started = Stopwatch.GetTimestamp();
            var page = await actor.Ask<object>(new GetThread(user, conversation, 10_000 + i * 37, 200, null, null), TimeSpan.FromSeconds(30));
            var ms = Stopwatch.GetElapsedTime(started).TotalMilliseconds;
            if (page is not ThreadPage { Messages.Length: 200 })
                throw new InvalidOperationException($"wide page {i}: {page}");
            return ms;
        }
        for (var i = 0; i < 50; i++)
        {
            var (first, second) = i % 2 == 0 ? (blocks, pointReads) : (pointReads, blocks);
            var a = await Read(first, i);
            var b = await Read(second, i);
            if (i < 10)
                continue; // warm-up
            (first == blocks ? inBlocks : onePerRead).Add(a);
            (second == blocks ? inBlocks : onePerRead).Add(b);
        }
        var withBlocks = inBlocks.Summary(1);
        var baseline = onePerRead.Summary(1);
        Console.WriteLine($"  page of 200, 10,000 deep (walked): in blocks p50 {withBlocks.P50Ms:0.0} ms p90 {withBlocks.P90Ms:0.0} p99 {withBlocks.P99Ms:0.0}; " +
                          $"one message per read p50 {baseline.P50Ms:0.0} ms p90 {baseline.P90Ms:0.0} p99 {baseline.P99Ms:0.0}; " +
                          $"median ratio {baseline.P50Ms / withBlocks.P50Ms:0.0}x");
        return new { InBlocks = withBlocks, OneMessagePerRead = baseline };
    }

    /// <summary>
    /// A mailbox history made by the pure state (the same decisions the actor makes), written through the journal
    /// protocol in large atomic writes, with the snapshot the actor would have taken last before the end.
    /// </summary>
    private static async Task<(long Events, long SnapshotSeq)> WriteHistory(ActorSystem system, MailboxSettings settings, string user, int messages, int[]? contactOfPair = null)
    {
        var persistence = Persistence.Instance.Apply(system);
        var journal = persistence.JournalFor(null);
        var snapshots = persistence.SnapshotStoreFor(null);
        var persistenceId = MailboxActor.PersistenceIdFor(user);
        var writer = Guid.NewGuid().ToString();
        var contacts = Enumerable.Range(0, 5).Select(c => $"{user}-c{c}").ToArray();
        var generator = new HistoryGenerator(user, contacts, settings.Limits, 1_700_000_000_000, contactOfPair: contactOfPair);

        // The actor snapshots every SnapshotEvery events; take the last one SnapshotEvery - 1 events before the end.
        var total = generator.EventCount(messages);
        var snapshotSeq = Math.Max(0, total - (settings.SnapshotEvery - 1));
        MailboxSnapshot? snapshot = null;
        var batch = new List<IPersistentRepresentation>(1000);
        foreach (var (evt, seq, state) in generator.Events(messages))
        {
            batch.Add(new Persistent(evt, seq, persistenceId, "", false, ActorRefs.NoSender, writer));
            if (seq == snapshotSeq)
                snapshot = state.ToSnapshot();
            if (batch.Count == 1000)
            {
                await Relay.Send(system, journal, r => new WriteMessages([new AtomicWrite(batch.ToImmutableList())], r, 1));
                batch.Clear();
            }
        }
        if (batch.Count > 0)
            await Relay.Send(system, journal, r => new WriteMessages([new AtomicWrite(batch.ToImmutableList())], r, 1));
        if (snapshot is not null)
            await Relay.Send(system, snapshots, _ => new SaveSnapshot(new SnapshotMetadata(persistenceId, snapshotSeq, DateTime.UtcNow), snapshot));
        return (total, snapshotSeq);
    }

    // ---------------- memory per live mailbox ----------------

    private static async Task<object> Memory(ActorSystem system, IActorRef region, int count, int messages, int contactCount)
    {
        Console.WriteLine($"memory: writing {count} mailboxes x {contactCount} conversations, {messages} messages of 40 characters ...");
        var write = Stopwatch.StartNew();
        var persistence = Persistence.Instance.Apply(system);
        var journal = persistence.JournalFor(null);
        var limits = new MailboxLimits();
        var ids = Enumerable.Range(0, count).Select(i => $"m{i:D6}").ToArray();
        const int perWrite = 40;
        await ForAll((count + perWrite - 1) / perWrite, 6, async chunk =>
        {
            var writes = new List<IPersistentEnvelope>();
            for (var i = chunk * perWrite; i < Math.Min(count, (chunk + 1) * perWrite); i++)
            {
                var user = ids[i];
                var contacts = Enumerable.Range(1, contactCount).Select(c => ids[(i + c * 7) % count]).ToArray();
                var generator = new HistoryGenerator(user, contacts, limits, 1_700_000_000_000 + i * 1000L, confirmEvery: 10);
                var writer = Guid.NewGuid().ToString();
                var pid = MailboxActor.PersistenceIdFor(user);
                writes.Add(new AtomicWrite(generator.Events(messages)
                    .Select(e => (IPersistentRepresentation)new Persistent(e.Event, e.Seq, pid, "", false, ActorRefs.NoSender, writer))
                    .ToImmutableList()));
            }
            await Relay.Send(system, journal, r => new WriteMessages(writes, r, 1));
            if (chunk % 250 == 0)
                Console.Error.Write($"\r  {chunk * perWrite} written ({write.Elapsed.TotalSeconds:0} s)   ");
        });
        Console.Error.WriteLine();
        Console.WriteLine($"  written in {write.Elapsed.TotalSeconds:0} s");

        var before = ManagedBytesAfterFullGc();
        var rssBefore = ProcStats.StatusBytes(Environment.ProcessId, "VmRSS");
        var start = Stopwatch.StartNew();
        var bad = 0;
        await ForAll(count, 256, async i =>
        {
            var status = await region.Ask<MailboxStatus>(new GetMailboxStatus(ids[i]), TimeSpan.FromSeconds(120));
            if (status.Conversations != contactCount || status.PendingDeliveries != 0)
                Interlocked.Increment(ref bad);
            if (i % 5000 == 0)
                Console.Error.Write($"\r  {i} live ({start.Elapsed.TotalSeconds:0} s)   ");
        });
        Console.Error.WriteLine();
        var recoverySeconds = start.Elapsed.TotalSeconds;
        await Task.Delay(2000); // let recovery buffers and temporary actors go
        var after = ManagedBytesAfterFullGc();
        var rssAfter = ProcStats.StatusBytes(Environment.ProcessId, "VmRSS");
        var perMailbox = (after - before) / (double)count;
        var rssPerMailbox = (rssAfter - rssBefore) / (double)count;
        Console.WriteLine($"  {count} mailboxes live in {recoverySeconds:0.0} s ({count / recoverySeconds:0}/s recovered; {bad} not as expected)");
        Console.WriteLine($"  managed heap after full GC: +{(after - before) / 1048576.0:0} MiB = {perMailbox / 1024:0.0} KiB per mailbox; " +
                          $"RSS +{(rssAfter - rssBefore) / 1048576.0:0} MiB = {rssPerMailbox / 1024:0.0} KiB per mailbox");
        return new { Mailboxes = count, RecoveredPerSecond = count / recoverySeconds, ManagedBytesPerMailbox = perMailbox, RssBytesPerMailbox = rssPerMailbox, NotAsExpected = bad };
    }

    /// <summary>The pure state alone, rebuilt from events that went through the serializer (as recovery does).</summary>
    private static object StateOnly(ActorSystem system, int count, int messages, int contactCount)
    {
        var serialization = system.Serialization;
        var limits = new MailboxLimits();
        var before = ManagedBytesAfterFullGc();
        var states = new MailboxState[count];
        for (var i = 0; i < count; i++)
        {
            var user = $"s{i:D6}";
            var contacts = Enumerable.Range(1, contactCount).Select(c => $"s{(i + c * 7) % count:D6}").ToArray();
            var state = MailboxState.Empty(user, limits);
            foreach (var (evt, seq, _) in new HistoryGenerator(user, contacts, limits, 1_700_000_000_000 + i * 1000L, confirmEvery: 10).Events(messages))
            {
                var serializer = (Akka.Serialization.SerializerWithStringManifest)serialization.FindSerializerFor(evt);
                var copy = (IMailboxEvent)serializer.FromBinary(serializer.ToBinary(evt), serializer.Manifest(evt));
                state = state.Apply(copy, seq);
            }
            states[i] = state;
        }
        var after = ManagedBytesAfterFullGc();
        GC.KeepAlive(states);
        var perState = (after - before) / (double)count;
        Console.WriteLine($"state only: {count} states of {messages} messages over {contactCount} conversations rebuilt from serialized events: {perState / 1024:0.0} KiB per mailbox state");

        // What a wake costs in CPU beyond the journal: the snapshot of such a state serialized, then read back into
        // state (the snapshot store's SQL and the events after it not included). Each state in turn, 3 passes.
        var snapshotSerializer = (Akka.Serialization.SerializerWithStringManifest)serialization.FindSerializerFor(states[0].ToSnapshot());
        var sample = Math.Min(count, 2000);
        var blobs = new byte[sample][];
        var manifest = snapshotSerializer.Manifest(states[0].ToSnapshot());
        var writeMs = new List<double>();
        var readMs = new List<double>();
        for (var pass = 0; pass < 3; pass++)
        {
            var clock = System.Diagnostics.Stopwatch.StartNew();
            for (var i = 0; i < sample; i++)
                blobs[i] = snapshotSerializer.ToBinary(states[i].ToSnapshot());
            writeMs.Add(clock.Elapsed.TotalMilliseconds / sample);
            clock.Restart();
            for (var i = 0; i < sample; i++)
                GC.KeepAlive(MailboxState.FromSnapshot(states[i].UserId, limits, (MailboxSnapshot)snapshotSerializer.FromBinary(blobs[i], manifest)));
            readMs.Add(clock.Elapsed.TotalMilliseconds / sample);
        }
        var snapshotBytes = blobs.Average(b => (double)b.Length);
        Console.WriteLine($"  snapshot of such a state: {snapshotBytes / 1024:0.0} KiB serialized; taking it {Bench.Median(writeMs) * 1000:0} us, " +
                          $"reading it back into state (a wake's CPU beyond the journal) {Bench.Median(readMs) * 1000:0} us (medians of 3 passes over {sample} states)");
        return new { States = count, BytesPerState = perState, SnapshotBytes = snapshotBytes, SnapshotWriteUs = Bench.Median(writeMs) * 1000, SnapshotReadUs = Bench.Median(readMs) * 1000 };
    }

    private static long ManagedBytesAfterFullGc()
    {
        for (var i = 0; i < 3; i++)
        {
            GC.Collect(2, GCCollectionMode.Forced, blocking: true, compacting: true);
            GC.WaitForPendingFinalizers();
        }
        return GC.GetTotalMemory(false);
    }

    private static async Task ForAll(int count, int concurrency, Func<int, Task> body)
    {
        var next = -1;
        await Task.WhenAll(Enumerable.Range(0, concurrency).Select(_ => Task.Run(async () =>
        {
            for (var i = Interlocked.Increment(ref next); i < count; i = Interlocked.Increment(ref next))
                await body(i);
        })));
    }

    /// <summary>Talks the journal / snapshot-store protocol for one request and completes when it is acknowledged.</summary>
    private static class Relay
    {
        public static Task Send(ActorSystem system, IActorRef target, Func<IActorRef, object> message)
        {
            var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            var relay = system.ActorOf(Props.Create(() => new RelayActor(done)));
            target.Tell(message(relay), relay);
            return done.Task;
        }
    }

    private sealed class RelayActor : ReceiveActor
    {
        public RelayActor(TaskCompletionSource done)
        {
            Receive<WriteMessagesSuccessful>(_ => Finish(() => done.TrySetResult()));
            Receive<SaveSnapshotSuccess>(_ => Finish(() => done.TrySetResult()));
            Receive<WriteMessagesFailed>(f => Finish(() => done.TrySetException(f.Cause)));
            Receive<WriteMessageRejected>(r => Finish(() => done.TrySetException(r.Cause)));
            Receive<WriteMessageFailure>(f => Finish(() => done.TrySetException(f.Cause)));
            Receive<SaveSnapshotFailure>(f => Finish(() => done.TrySetException(f.Cause)));
            ReceiveAny(_ => { });
        }

        private void Finish(Action complete)
        {
            complete();
            Context.Stop(Self);
        }
    }
}
