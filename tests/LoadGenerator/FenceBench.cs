using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Akka.Actor;
using Akka.Hosting;
using Akka.Persistence;
using Messaging.Actors;
using Messaging.Messages;
using Messaging.Messages.Serialization;
using Messaging.Node;
using Npgsql;

namespace Messaging.LoadGenerator;

/// <summary>
/// The writer fence's cost in PostgreSQL, apart from everything else (<c>parts --only fence</c>): a throwaway
/// PostgreSQL, an actor system with the node's journal configuration (<see cref="PersistenceHosting"/>: the SQL
/// journal, 6 writers, writer uuid column, the fence installed at start) and no sharding, and many persistent actors
/// that each claim their journal (<see cref="WriterClaimed"/>, as every mailbox incarnation does) and then write
/// small mailbox events with PersistAsync, so the journal batches them as it batches a node's. Rounds alternate the
/// trigger variants on the same journal (one trigger at a time on <c>journal</c>); each round measures PostgreSQL's CPU
/// (postmaster and every backend, from /proc) per journal event, and rows per INSERT (rows inserted / transactions
/// committed: the journal writes a batch in one transaction with one INSERT).
/// </summary>
public static class FenceBench
{
    private const string Counter = "fence_bench_statements";

    /// <summary>
    /// Client variants by suffix: a trigger variant's name with one of these runs its writes through a journal whose
    /// connection string adds the value to the node's (<see cref="PersistenceHosting.WithServerTimeouts"/>).
    /// </summary>
    public static readonly IReadOnlyDictionary<string, (string ConnectionString, string Description)> ClientVariants =
        new Dictionary<string, (string, string)>
        {
            ["+reset"] = (";No Reset On Close=false", "Npgsql's reset on close (DISCARD ALL), as 1.5.x had it"),
            ["+noprepare"] = (";Max Auto Prepare=0", "no automatic preparation of statements, as 1.6.0 had it"),
        };

    /// <summary>
    /// Trigger variants by name. "off": no trigger. "current": the fence (<see cref="JournalFence"/>). "empty" to
    /// "v1-check" take it apart to see where its time goes (v1: the function's version, messaging_writer_fence_v1).
    /// </summary>
    public static readonly IReadOnlyDictionary<string, string?> Variants = new Dictionary<string, string?>
    {
        ["off"] = null,
        ["current"] = JournalFence.InstallSql,
        // Tried in place of the current function, and not kept (they cost no less): fences as the current one does,
        // with a path for a statement of one mailbox's rows and no claim (one pass over the rows, its one shared lock
        // in the same query, one lookup in the next) ...
        ["fastpath"] = """
        CREATE OR REPLACE FUNCTION fence_bench_fastpath() RETURNS trigger LANGUAGE plpgsql AS $fn$
        DECLARE
            s record;
            r record;
            owner text;
        BEGIN
            -- One pass over the statement's rows. A row claims iff its manifest is the claim's (NULL is no claim).
            -- One mailbox and no claim: its shared lock, taken here (the CASE runs once, after the aggregate).
            SELECT a.*, CASE WHEN a.first_id = a.last_id AND NOT a.claims
                             THEN pg_advisory_xact_lock_shared(hashtextextended(a.first_id, 1836409716)) END AS locked
              INTO s
              FROM (SELECT min(n.persistence_id) AS first_id, max(n.persistence_id) AS last_id,
                           COALESCE(bool_or(n.manifest = 'WCl'), false) AS claims,
                           min(n.writer_uuid) AS first_writer, max(n.writer_uuid) AS last_writer,
                           COALESCE(bool_or(n.writer_uuid IS NULL), false) AS unnamed
                      FROM fence_new_rows n) a;
            IF s.first_id IS NULL THEN
                RETURN NULL; -- no rows
            END IF;

            IF s.first_id = s.last_id AND NOT s.claims THEN
                -- A new statement, so a new snapshot: read after the lock was granted.
                SELECT w.writer_uuid INTO owner FROM journal_writer w WHERE w.persistence_id = s.first_id;
                -- Refused iff the mailbox was claimed and some row's writer is not its writer (v1's join, row by row).
                IF FOUND AND (s.unnamed OR s.first_writer <> owner OR s.last_writer <> owner) THEN
                    SELECT n.sequence_number, n.writer_uuid INTO r FROM fence_new_rows n
                     WHERE n.writer_uuid IS DISTINCT FROM owner ORDER BY n.sequence_number LIMIT 1;
                    RAISE EXCEPTION 'writer fence: event % of % refused: its writer % is no longer the writer (% claimed it)',
                        r.sequence_number, s.first_id, r.writer_uuid, owner USING ERRCODE = 'MF002';
                END IF;
                RETURN NULL;
            END IF;

            -- Per mailbox: a claim locks exclusively (waiting for every write in flight), a write shares the lock.
            -- One order (by id) in every statement, so two batches never wait on each other in a cycle.
            PERFORM CASE WHEN m.claims THEN pg_advisory_xact_lock(hashtextextended(m.persistence_id, 1836409716))
                         ELSE pg_advisory_xact_lock_shared(hashtextextended(m.persistence_id, 1836409716)) END
               FROM (SELECT n.persistence_id, bool_or(n.manifest = 'WCl') AS claims
                       FROM fence_new_rows n GROUP BY n.persistence_id ORDER BY n.persistence_id) m;

            -- Each statement below reads what is committed now, after the locks: the writes that were in flight.
            IF s.claims THEN
                FOR r IN SELECT n.persistence_id, n.sequence_number, n.writer_uuid FROM fence_new_rows n
                          WHERE n.manifest = 'WCl'
                          ORDER BY n.persistence_id, n.sequence_number
                LOOP
                    IF EXISTS (SELECT 1 FROM journal j
                                WHERE j.persistence_id = r.persistence_id AND j.sequence_number > r.sequence_number
                                  AND j.writer_uuid IS DISTINCT FROM r.writer_uuid) THEN
                        RAISE EXCEPTION 'writer fence: claim of % at sequence number % refused: another writer holds a newer event',
                            r.persistence_id, r.sequence_number USING ERRCODE = 'MF001';
                    END IF;
                    INSERT INTO journal_writer (persistence_id, writer_uuid, claimed_at_sequence_number, claimed_on)
                    VALUES (r.persistence_id, r.writer_uuid, r.sequence_number, now())
                    ON CONFLICT (persistence_id) DO UPDATE
                       SET writer_uuid = EXCLUDED.writer_uuid,
                           claimed_at_sequence_number = EXCLUDED.claimed_at_sequence_number,
                           claimed_on = EXCLUDED.claimed_on;
                END LOOP;
            END IF;

            SELECT n.persistence_id, n.sequence_number, n.writer_uuid, w.writer_uuid AS owner INTO r
              FROM fence_new_rows n JOIN journal_writer w ON w.persistence_id = n.persistence_id
             WHERE n.manifest IS DISTINCT FROM 'WCl'
               AND n.writer_uuid IS DISTINCT FROM w.writer_uuid
             LIMIT 1;
            IF FOUND THEN
                RAISE EXCEPTION 'writer fence: event % of % refused: its writer % is no longer the writer (% claimed it)',
                    r.sequence_number, r.persistence_id, r.writer_uuid, r.owner USING ERRCODE = 'MF002';
            END IF;
            RETURN NULL;
        END
        $fn$;

        CREATE TRIGGER fence_bench_fastpath AFTER INSERT ON journal
            REFERENCING NEW TABLE AS fence_new_rows
            FOR EACH STATEMENT EXECUTE FUNCTION fence_bench_fastpath();
        """,
        // ... and every statement's locks in one query (instead of a loop with one PERFORM per mailbox), the claims'
        // loop only when a row claims.
        ["onequery"] = """
        CREATE OR REPLACE FUNCTION fence_bench_onequery() RETURNS trigger LANGUAGE plpgsql AS $fn$
        DECLARE
            s record;
            r record;
        BEGIN
            SELECT count(*) AS mailboxes, COALESCE(bool_or(l.claims), false) AS claims INTO s
              FROM (SELECT m.claims,
                           CASE WHEN m.claims THEN pg_advisory_xact_lock(hashtextextended(m.persistence_id, 1836409716))
                                ELSE pg_advisory_xact_lock_shared(hashtextextended(m.persistence_id, 1836409716)) END AS locked
                      FROM (SELECT n.persistence_id, COALESCE(bool_or(n.manifest = 'WCl'), false) AS claims
                              FROM fence_new_rows n GROUP BY n.persistence_id ORDER BY n.persistence_id) m) l;
            IF s.claims THEN
                FOR r IN SELECT n.persistence_id, n.sequence_number, n.writer_uuid FROM fence_new_rows n
                          WHERE n.manifest = 'WCl'
                          ORDER BY n.persistence_id, n.sequence_number
                LOOP
                    IF EXISTS (SELECT 1 FROM journal j
                                WHERE j.persistence_id = r.persistence_id AND j.sequence_number > r.sequence_number
                                  AND j.writer_uuid IS DISTINCT FROM r.writer_uuid) THEN
                        RAISE EXCEPTION 'writer fence: claim of % at sequence number % refused: another writer holds a newer event',
                            r.persistence_id, r.sequence_number USING ERRCODE = 'MF001';
                    END IF;
                    INSERT INTO journal_writer (persistence_id, writer_uuid, claimed_at_sequence_number, claimed_on)
                    VALUES (r.persistence_id, r.writer_uuid, r.sequence_number, now())
                    ON CONFLICT (persistence_id) DO UPDATE
                       SET writer_uuid = EXCLUDED.writer_uuid,
                           claimed_at_sequence_number = EXCLUDED.claimed_at_sequence_number,
                           claimed_on = EXCLUDED.claimed_on;
                END LOOP;
            END IF;
            SELECT n.persistence_id, n.sequence_number, n.writer_uuid, w.writer_uuid AS owner INTO r
              FROM fence_new_rows n JOIN journal_writer w ON w.persistence_id = n.persistence_id
             WHERE n.manifest IS DISTINCT FROM 'WCl'
               AND n.writer_uuid IS DISTINCT FROM w.writer_uuid
             LIMIT 1;
            IF FOUND THEN
                RAISE EXCEPTION 'writer fence: event % of % refused: its writer % is no longer the writer (% claimed it)',
                    r.sequence_number, r.persistence_id, r.writer_uuid, r.owner USING ERRCODE = 'MF002';
            END IF;
            RETURN NULL;
        END
        $fn$;
        CREATE TRIGGER fence_bench_onequery AFTER INSERT ON journal
            REFERENCING NEW TABLE AS fence_new_rows
            FOR EACH STATEMENT EXECUTE FUNCTION fence_bench_onequery();
        """,
        // plpgsql called once per statement, no transition table (counts statements: an exact rows-per-statement).
        ["empty"] = $"""
            CREATE OR REPLACE FUNCTION fence_bench_empty() RETURNS trigger LANGUAGE plpgsql AS $fn$
            BEGIN PERFORM nextval('{Counter}'); RETURN NULL; END $fn$;
            CREATE TRIGGER fence_bench_empty AFTER INSERT ON journal FOR EACH STATEMENT EXECUTE FUNCTION fence_bench_empty();
            """,
        // The same with the transition table captured (its rows copied into a tuplestore) and never read.
        ["empty-tt"] = """
            CREATE OR REPLACE FUNCTION fence_bench_empty_tt() RETURNS trigger LANGUAGE plpgsql AS $fn$
            BEGIN RETURN NULL; END $fn$;
            CREATE TRIGGER fence_bench_empty_tt AFTER INSERT ON journal REFERENCING NEW TABLE AS fence_new_rows
                FOR EACH STATEMENT EXECUTE FUNCTION fence_bench_empty_tt();
            """,
        // The transition table read once (one aggregate over it), nothing else.
        ["scan"] = """
            CREATE OR REPLACE FUNCTION fence_bench_scan() RETURNS trigger LANGUAGE plpgsql AS $fn$
            DECLARE n bigint;
            BEGIN SELECT count(*) INTO n FROM fence_new_rows; RETURN NULL; END $fn$;
            CREATE TRIGGER fence_bench_scan AFTER INSERT ON journal REFERENCING NEW TABLE AS fence_new_rows
                FOR EACH STATEMENT EXECUTE FUNCTION fence_bench_scan();
            """,
        // v1's lock loop alone (GROUP BY, ORDER BY, one PERFORM per mailbox).
        ["v1-locks"] = """
            CREATE OR REPLACE FUNCTION fence_bench_v1_locks() RETURNS trigger LANGUAGE plpgsql AS $fn$
            DECLARE r record;
            BEGIN
                FOR r IN SELECT n.persistence_id, bool_or(n.manifest = 'WCl') AS claims
                           FROM fence_new_rows n GROUP BY n.persistence_id ORDER BY n.persistence_id
                LOOP
                    IF r.claims THEN
                        PERFORM pg_advisory_xact_lock(hashtextextended(r.persistence_id, 1836409716));
                    ELSE
                        PERFORM pg_advisory_xact_lock_shared(hashtextextended(r.persistence_id, 1836409716));
                    END IF;
                END LOOP;
                RETURN NULL;
            END $fn$;
            CREATE TRIGGER fence_bench_v1_locks AFTER INSERT ON journal REFERENCING NEW TABLE AS fence_new_rows
                FOR EACH STATEMENT EXECUTE FUNCTION fence_bench_v1_locks();
            """,
        // v1's check join alone (the non-claim rows against journal_writer).
        ["v1-check"] = """
            CREATE OR REPLACE FUNCTION fence_bench_v1_check() RETURNS trigger LANGUAGE plpgsql AS $fn$
            DECLARE r record;
            BEGIN
                SELECT n.persistence_id, n.sequence_number, n.writer_uuid, w.writer_uuid AS owner INTO r
                  FROM fence_new_rows n JOIN journal_writer w ON w.persistence_id = n.persistence_id
                 WHERE n.manifest IS DISTINCT FROM 'WCl' AND n.writer_uuid IS DISTINCT FROM w.writer_uuid
                 LIMIT 1;
                IF FOUND THEN RAISE EXCEPTION 'refused' USING ERRCODE = 'MF002'; END IF;
                RETURN NULL;
            END $fn$;
            CREATE TRIGGER fence_bench_v1_check AFTER INSERT ON journal REFERENCING NEW TABLE AS fence_new_rows
                FOR EACH STATEMENT EXECUTE FUNCTION fence_bench_v1_check();
            """,
    };

    public static async Task<object> RunAsync(bool durable, int actors, int depth, double rate, int rounds, double warmupSeconds,
        double seconds, int padWriters, string[] variants, string? hocon)
    {
        static string? ClientOf(string variant) => ClientVariants.Keys.FirstOrDefault(suffix => variant.EndsWith(suffix, StringComparison.Ordinal));
        static string TriggerOf(string variant) => ClientOf(variant) is { } suffix ? variant[..^suffix.Length] : variant;
        foreach (var v in variants)
            if (!Variants.ContainsKey(TriggerOf(v)))
                throw new ArgumentException($"unknown fence variant '{v}' (known: {string.Join(", ", Variants.Keys)}, each also with one of {string.Join(", ", ClientVariants.Keys)})");
        var clients = variants.Select(ClientOf).OfType<string>().Distinct().ToList();
        if (clients.Count > 0 && rate <= 0)
            throw new ArgumentException($"variants with {string.Join(", ", clients)} need --fence-rate (paced load)");
        await using var pg = await PostgresServer.StartAsync(durable: durable);
        var connectionString = pg.ConnectionStringFor("messaging");
        // The node turns Npgsql's reset of a pooled connection off and its automatic preparation on (PersistenceHosting).
        // A variant NAME+reset puts the reset back, as 1.5.x had it, and NAME+noprepare turns the preparation off, as
        // 1.6.0 had it: its writes come from another actor system with that connection string, to its own mailboxes; the
        // paced load goes to one system at a time.
        var load = rate > 0 ? $"paced at {rate:0} events/s" : $"closed loop, {depth} event(s) in flight per actor";
        Console.WriteLine($"fence: PostgreSQL fsync {(durable ? "on" : "off")}, {actors} persistent actors, {load}; " +
                          $"{rounds} rounds of {string.Join(", ", variants)} ({warmupSeconds:0} s warm-up + {seconds:0} s each); " +
                          $"journal_writer padded with {padWriters} other mailboxes' claims; " +
                          string.Join("; ", ClientVariants.Select(c => $"{c.Key}: {c.Value.Description}")));

        async Task<IHost> StartSystemAsync(string journalConnectionString)
        {
            var builder = Host.CreateApplicationBuilder();
            builder.Logging.SetMinimumLevel(LogLevel.Warning);
            builder.Services.AddAkka("fence", akka =>
            {
                akka.ConfigureLoggers(loggers => loggers.AddLoggerFactory())
                    .WithMessagingSerialization()
                    .WithMessagingPersistence(PersistenceProvider.PostgreSql, journalConnectionString);
                if (!string.IsNullOrWhiteSpace(hocon))
                    akka.AddHocon(hocon, HoconAddMode.Prepend);
            });
            var started = builder.Build();
            await started.StartAsync(); // the fence is installed by then
            return started;
        }
        using var host = await StartSystemAsync(connectionString);
        var clientHosts = new Dictionary<string, IHost>();
        foreach (var client in clients)
            clientHosts[client] = await StartSystemAsync(connectionString + ClientVariants[client].ConnectionString);
        await using var dataSource = NpgsqlDataSource.Create(connectionString);
        // A node's journal_writer holds a row per mailbox that ever wrote: make the lookups find theirs among many.
        await ExecuteAsync(dataSource, $"""
            INSERT INTO {JournalFence.WriterTable} (persistence_id, writer_uuid, claimed_at_sequence_number)
            SELECT 'mailbox-pad-' || g, 'pad-writer', 1 FROM generate_series(1, {padWriters}) g ON CONFLICT DO NOTHING;
            ANALYZE {JournalFence.WriterTable};
            CREATE SEQUENCE {Counter};
            """);

        var control = new Control { Paced = rate > 0 };
        // 100 at a time (each recovers, then claims), so a start-up on a busy machine stays far from the journal's
        // timeouts; a writer whose start failed anyway is started again.
        async Task<IActorRef[]> WritersAsync(IHost h, string prefix)
        {
            var system = h.Services.GetRequiredService<ActorSystem>();
            var writers = new IActorRef[actors];
            for (var from = 0; from < actors; from += 100)
            {
                var chunk = Enumerable.Range(from, Math.Min(100, actors - from)).ToArray();
                await Eventually.AssertAsync(async () =>
                {
                    foreach (var i in chunk)
                    {
                        if (writers[i] is null || await IsTerminatedAsync(writers[i]))
                        {
                            var persistenceId = MailboxActor.PersistenceIdFor($"{prefix}{i:D6}");
                            writers[i] = system.ActorOf(Props.Create(() => new Writer(persistenceId, control, depth)));
                            writers[i].Tell(Writer.Start.Instance);
                        }
                    }
                    await Task.Delay(TimeSpan.FromSeconds(1));
                    var last = MailboxActor.PersistenceIdFor($"{prefix}{chunk[^1]:D6}");
                    var first = MailboxActor.PersistenceIdFor($"{prefix}{chunk[0]:D6}");
                    return await ScalarAsync(dataSource, $"SELECT count(*) FROM {JournalFence.WriterTable} WHERE persistence_id BETWEEN '{first}' AND '{last}'") == chunk.Length;
                }, TimeSpan.FromSeconds(180), $"writers {prefix}{chunk[0]}.. did not all claim their journals");
            }
            return writers;
        }
        var refs = await WritersAsync(host, "fence-");
        var clientRefs = new Dictionary<string, IActorRef[]>();
        foreach (var (client, clientHost) in clientHosts)
            clientRefs[client] = await WritersAsync(clientHost, $"fence-{client.TrimStart('+')}-");
        var target = new Target { Writers = refs };
        using var pacing = new CancellationTokenSource();
        var pacer = rate > 0 ? Task.Run(() => Pace(target, rate, pacing.Token)) : Task.CompletedTask;

        var postmaster = pg.PostmasterPid ?? throw new InvalidOperationException("no postmaster pid");
        var results = new List<Round>();
        Console.WriteLine("| round | variant | load average | events/s | rows per INSERT | PostgreSQL cores | PostgreSQL CPU per event (us) | other CPU (cores) |");
        Console.WriteLine("| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |");
        for (var round = 1; round <= rounds; round++)
        {
            // ABBA: the order flips every round, so a drift over the run (a growing journal) falls on every variant alike.
            var order = round % 2 == 1 ? variants : [.. variants.Reverse()];
            foreach (var variant in order)
            {
                target.Writers = ClientOf(variant) is { } client ? clientRefs[client] : refs;
                await InstallAsync(dataSource, TriggerOf(variant));
                await Task.Delay(TimeSpan.FromSeconds(warmupSeconds));
                var load1 = ProcStats.LoadAverage1();
                var before = await SampleAsync(dataSource);
                var cpu0 = ProcStats.TreeCpuSeconds(postmaster);
                var machine0 = ProcStats.MachineCpuSeconds();
                var self0 = ProcStats.CpuSeconds(Environment.ProcessId);
                var clock = Stopwatch.StartNew();
                await Task.Delay(TimeSpan.FromSeconds(seconds));
                var wall = clock.Elapsed.TotalSeconds;
                var cpu = ProcStats.TreeCpuSeconds(postmaster) - cpu0;
                var machine = ProcStats.MachineCpuSeconds();
                var self = ProcStats.CpuSeconds(Environment.ProcessId) - self0;
                var after = await SampleAsync(dataSource);
                var events = after.MaxOrdering - before.MaxOrdering;
                var statements = variant == "empty" && after.Statements > before.Statements
                    ? after.Statements - before.Statements
                    : Math.Max(1, after.Commits - before.Commits);
                var rowsPerInsert = (double)(variant == "empty" ? events : after.Inserted - before.Inserted) / statements;
                var other = (machine.Busy - machine0.Busy - cpu - self) / wall;
                var result = new Round(round, variant, load1, events / wall, rowsPerInsert, cpu / wall, cpu / events * 1e6, other);
                results.Add(result);
                Console.WriteLine($"| {round} | {variant} | {load1:0.00} | {result.EventsPerSecond:0} | {rowsPerInsert:0.0} | {result.PostgresCores:0.00} | {result.PostgresUsPerEvent:0.0} | {other:0.00} |");
            }
        }
        control.Running = false;
        await pacing.CancelAsync();
        await pacer;

        Console.WriteLine();
        Console.WriteLine("| variant | PostgreSQL CPU per event, median (us) | per round (us) | against off | events/s (median) | rows per INSERT (median) |");
        Console.WriteLine("| --- | ---: | --- | ---: | ---: | ---: |");
        var offMedian = results.Any(r => r.Variant == "off") ? Median(results.Where(r => r.Variant == "off").Select(r => r.PostgresUsPerEvent)) : double.NaN;
        var summary = new Dictionary<string, object>();
        foreach (var variant in variants)
        {
            var mine = results.Where(r => r.Variant == variant).ToList();
            var median = Median(mine.Select(r => r.PostgresUsPerEvent));
            Console.WriteLine($"| {variant} | {median:0.0} | {string.Join(", ", mine.Select(r => r.PostgresUsPerEvent.ToString("0.0", CultureInfo.InvariantCulture)))} | " +
                              $"{median / offMedian:0.00}x | {Median(mine.Select(r => r.EventsPerSecond)):0} | {Median(mine.Select(r => r.RowsPerInsert)):0.0} |");
            summary[variant] = new { MedianUsPerEvent = median, AgainstOff = median / offMedian, Rounds = mine };
        }
        await host.StopAsync();
        foreach (var clientHost in clientHosts.Values)
        {
            await clientHost.StopAsync();
            clientHost.Dispose();
        }
        return summary;
    }

    private sealed record Round(int Number, string Variant, double LoadAverage, double EventsPerSecond, double RowsPerInsert,
        double PostgresCores, double PostgresUsPerEvent, double OtherCores);

    private sealed record Sample(long MaxOrdering, long Inserted, long Commits, long Statements);

    private static double Median(IEnumerable<double> values)
    {
        var sorted = values.Order().ToArray();
        return sorted.Length == 0 ? double.NaN
            : sorted.Length % 2 == 1 ? sorted[sorted.Length / 2] : (sorted[sorted.Length / 2 - 1] + sorted[sorted.Length / 2]) / 2;
    }

    /// <summary>Replaces whatever trigger is on the journal with the variant's (none for "off").</summary>
    private static async Task InstallAsync(NpgsqlDataSource dataSource, string variant)
    {
        await using var connection = await dataSource.OpenConnectionAsync();
        await using var transaction = await connection.BeginTransactionAsync();
        var triggers = new List<string>();
        await using (var list = new NpgsqlCommand("SELECT tgname FROM pg_trigger WHERE tgrelid = 'journal'::regclass AND NOT tgisinternal", connection, transaction))
        await using (var reader = await list.ExecuteReaderAsync())
            while (await reader.ReadAsync())
                triggers.Add(reader.GetString(0));
        foreach (var trigger in triggers)
        {
            await using var drop = new NpgsqlCommand($"DROP TRIGGER \"{trigger}\" ON journal", connection, transaction);
            await drop.ExecuteNonQueryAsync();
        }
        if (Variants[variant] is { } sql)
        {
            await using var install = new NpgsqlCommand(sql, connection, transaction);
            await install.ExecuteNonQueryAsync();
        }
        await transaction.CommitAsync();
    }

    private static async Task<Sample> SampleAsync(NpgsqlDataSource dataSource)
    {
        await using var connection = await dataSource.OpenConnectionAsync();
        await using var command = new NpgsqlCommand($"""
            SELECT (SELECT COALESCE(max(ordering), 0) FROM journal),
                   (SELECT n_tup_ins FROM pg_stat_user_tables WHERE relname = 'journal'),
                   (SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()),
                   (SELECT last_value FROM {Counter})
            """, connection);
        await using var reader = await command.ExecuteReaderAsync();
        await reader.ReadAsync();
        return new Sample(reader.GetInt64(0), reader.GetInt64(1), reader.GetInt64(2), reader.GetInt64(3));
    }

    private static async Task<bool> IsTerminatedAsync(IActorRef actor)
    {
        try
        {
            return (await actor.Ask<ActorIdentity>(new Identify(null), TimeSpan.FromSeconds(5))).Subject is null;
        }
        catch (Exception)
        {
            return false; // busy: not known to be dead
        }
    }

    private static async Task ExecuteAsync(NpgsqlDataSource dataSource, string sql)
    {
        await using var command = dataSource.CreateCommand(sql);
        command.CommandTimeout = 120;
        await command.ExecuteNonQueryAsync();
    }

    private static async Task<long> ScalarAsync(NpgsqlDataSource dataSource, string sql)
    {
        await using var command = dataSource.CreateCommand(sql);
        return Convert.ToInt64(await command.ExecuteScalarAsync());
    }

    /// <summary>Open loop: one write at a time to a random actor, at the rate, in ticks of 5 ms.</summary>
    private sealed class Target
    {
        public volatile IActorRef[] Writers = [];
    }

    private static async Task Pace(Target target, double rate, CancellationToken ct)
    {
        var random = new Random(1);
        var clock = Stopwatch.StartNew();
        long sent = 0;
        using var timer = new PeriodicTimer(TimeSpan.FromMilliseconds(5));
        try
        {
            while (await timer.WaitForNextTickAsync(ct))
            {
                var due = (long)(clock.Elapsed.TotalSeconds * rate);
                var refs = target.Writers;
                for (; sent < due; sent++)
                    refs[random.Next(refs.Length)].Tell(Writer.WriteOne.Instance);
            }
        }
        catch (OperationCanceledException) { }
    }

    private sealed class Control
    {
        public volatile bool Running = true;
        public bool Paced;
    }

    /// <summary>
    /// A persistent actor that journals as a mailbox does: its claim first, then small events with PersistAsync
    /// (which the journal batches with other actors' writes), closed loop (a new write as each becomes durable) or
    /// one per <see cref="WriteOne"/>.
    /// </summary>
    private sealed class Writer(string persistenceId, Control control, int depth) : UntypedPersistentActor
    {
        public sealed class Start { public static readonly Start Instance = new(); }

        public sealed class WriteOne { public static readonly WriteOne Instance = new(); }

        private long _n;

        public override string PersistenceId => persistenceId;

        protected override void OnRecover(object message) { }

        protected override void OnCommand(object message)
        {
            switch (message)
            {
                case Start:
                    PersistAsync(new WriterClaimed(Self.Path.ToString(), DateTimeOffset.UtcNow.ToUnixTimeMilliseconds()), _ => { });
                    if (!control.Paced)
                        for (var i = 0; i < depth; i++)
                            Write();
                    break;
                case WriteOne:
                    Write();
                    break;
            }
        }

        private void Write() =>
            PersistAsync(new DeliveriesConfirmed("fence-recipient", ++_n), _ =>
            {
                if (!control.Paced && control.Running)
                    Write();
            });

        protected override void OnPersistFailure(Exception cause, object @event, long sequenceNr)
        {
            Console.Error.WriteLine($"{PersistenceId}: write failed: {cause.Message}");
            base.OnPersistFailure(cause, @event, sequenceNr);
        }
    }
}
