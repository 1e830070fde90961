using Akka.Actor;
using Akka.Event;
using Messaging.Messages.Serialization;
using Npgsql;

namespace Messaging.Node;

/// <summary>
/// The single writer, enforced by PostgreSQL rather than by timing. Every mailbox incarnation's first write is a
/// <c>WriterClaimed</c> event (manifest <see cref="MessagingSerializer.WriterClaimedManifest"/>). A statement trigger on
/// the journal makes that claim the fence:
/// <list type="bullet">
/// <item>a claim is refused unless no other writer holds a newer event of the mailbox; once taken it records its
/// writer uuid in <c>journal_writer</c>;</item>
/// <item>every other event is refused unless its writer uuid is the mailbox's claimed writer;</item>
/// <item>a claim takes the mailbox's advisory lock exclusively and every write shares it, so a claim waits for the
/// writes already in flight (they land below it, or are refused) and every later write sees the new writer.</item>
/// </list>
/// A node that was paused, cut off or slow, and carries on with an old incarnation, gets its writes refused: the
/// journal never holds an older writer's event after a newer writer's claim. docs/architecture.md tells why this
/// closes the window and what it costs. Mailboxes never claimed (written before the fence) accept any writer until
/// their next incarnation claims them. SQLite has one node and one process, so it needs no fence.
/// <para>
/// Versions: the trigger's name carries its version (<see cref="TriggerName"/>). There is one trigger per database for
/// all nodes, so installing a version drops every other version's trigger in the same transaction; each version fences
/// by the same rule, the same <c>journal_writer</c> and the same lock keys, so nodes of two releases can write during a
/// rolling upgrade whichever trigger is in place. Its cost in PostgreSQL, and why the journal's connections are not
/// reset when pooled (<see cref="PersistenceHosting"/>): docs/benchmarks.md, "The writer fence's cost in PostgreSQL".
/// </para>
/// </summary>
public static class JournalFence
{
    public const string TriggerName = "messaging_writer_fence_v2";
    public const string WriterTable = "journal_writer";

    /// <summary>Every version's trigger is named so; installing this one drops the others (see <see cref="InstallIfMissingAsync"/>).</summary>
    private const string TriggerNamePrefix = "messaging_writer_fence_v";

    private const string LockKey = "1836409716";

    /// <summary>
    /// Creates <c>journal_writer</c> and the trigger (the benchmark installs it by itself). It fences exactly as v1 did
    /// (same table, same lock keys, same refusals, same error codes), with less work for the statement a node writes
    /// most: the rows of one mailbox and no claim (at a few thousand events a second most journal statements hold one
    /// row). That one reads the statement's rows once, takes the mailbox's shared lock in the same query, and looks up
    /// the mailbox's writer in the next (a new snapshot, taken after the lock: it sees every claim that committed before
    /// the lock was granted). Any other statement takes v1's way, with its locks taken in one query instead of one per
    /// mailbox, in the same order (by id), and the claims' loop only when a row claims.
    /// </summary>
    public const string InstallSql = $$"""
        CREATE TABLE IF NOT EXISTS {{WriterTable}} (
            persistence_id text PRIMARY KEY,
            writer_uuid text NOT NULL,
            claimed_at_sequence_number bigint NOT NULL,
            claimed_on timestamptz NOT NULL DEFAULT now()
        );

        CREATE OR REPLACE FUNCTION {{TriggerName}}() RETURNS trigger LANGUAGE plpgsql AS $fn$
        DECLARE
            s record;
            r record;
            owner text;
        BEGIN
            -- One pass over the statement's rows. A row claims iff its manifest is the claim's (NULL is no claim).
            -- One mailbox and no claim: its shared lock, taken here (the CASE runs once, after the aggregate).
            SELECT a.*, CASE WHEN a.first_id = a.last_id AND NOT a.claims
                             THEN pg_advisory_xact_lock_shared(hashtextextended(a.first_id, {{LockKey}})) END AS locked
              INTO s
              FROM (SELECT min(n.persistence_id) AS first_id, max(n.persistence_id) AS last_id,
                           COALESCE(bool_or(n.manifest = '{{MessagingSerializer.WriterClaimedManifest}}'), false) AS claims,
                           min(n.writer_uuid) AS first_writer, max(n.writer_uuid) AS last_writer,
                           COALESCE(bool_or(n.writer_uuid IS NULL), false) AS unnamed
                      FROM fence_new_rows n) a;
            IF s.first_id IS NULL THEN
                RETURN NULL; -- no rows
            END IF;

            IF s.first_id = s.last_id AND NOT s.claims THEN
                -- A new statement, so a new snapshot: read after the lock was granted.
                SELECT w.writer_uuid INTO owner FROM {{WriterTable}} w WHERE w.persistence_id = s.first_id;
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
            PERFORM CASE WHEN m.claims THEN pg_advisory_xact_lock(hashtextextended(m.persistence_id, {{LockKey}}))
                         ELSE pg_advisory_xact_lock_shared(hashtextextended(m.persistence_id, {{LockKey}})) END
               FROM (SELECT n.persistence_id, bool_or(n.manifest = '{{MessagingSerializer.WriterClaimedManifest}}') AS claims
                       FROM fence_new_rows n GROUP BY n.persistence_id ORDER BY n.persistence_id) m;

            -- Each statement below reads what is committed now, after the locks: the writes that were in flight.
            IF s.claims THEN
                FOR r IN SELECT n.persistence_id, n.sequence_number, n.writer_uuid FROM fence_new_rows n
                          WHERE n.manifest = '{{MessagingSerializer.WriterClaimedManifest}}'
                          ORDER BY n.persistence_id, n.sequence_number
                LOOP
                    IF EXISTS (SELECT 1 FROM journal j
                                WHERE j.persistence_id = r.persistence_id AND j.sequence_number > r.sequence_number
                                  AND j.writer_uuid IS DISTINCT FROM r.writer_uuid) THEN
                        RAISE EXCEPTION 'writer fence: claim of % at sequence number % refused: another writer holds a newer event',
                            r.persistence_id, r.sequence_number USING ERRCODE = 'MF001';
                    END IF;
                    INSERT INTO {{WriterTable}} (persistence_id, writer_uuid, claimed_at_sequence_number, claimed_on)
                    VALUES (r.persistence_id, r.writer_uuid, r.sequence_number, now())
                    ON CONFLICT (persistence_id) DO UPDATE
                       SET writer_uuid = EXCLUDED.writer_uuid,
                           claimed_at_sequence_number = EXCLUDED.claimed_at_sequence_number,
                           claimed_on = EXCLUDED.claimed_on;
                END LOOP;
            END IF;

            SELECT n.persistence_id, n.sequence_number, n.writer_uuid, w.writer_uuid AS owner INTO r
              FROM fence_new_rows n JOIN {{WriterTable}} w ON w.persistence_id = n.persistence_id
             WHERE n.manifest IS DISTINCT FROM '{{MessagingSerializer.WriterClaimedManifest}}'
               AND n.writer_uuid IS DISTINCT FROM w.writer_uuid
             LIMIT 1;
            IF FOUND THEN
                RAISE EXCEPTION 'writer fence: event % of % refused: its writer % is no longer the writer (% claimed it)',
                    r.sequence_number, r.persistence_id, r.writer_uuid, r.owner USING ERRCODE = 'MF002';
            END IF;
            RETURN NULL;
        END
        $fn$;

        -- One trigger for every node: this version's replaces the earlier ones, in this transaction.
        DO $drop$
        DECLARE t text;
        BEGIN
            FOR t IN SELECT tgname FROM pg_trigger
                      WHERE tgrelid = 'journal'::regclass AND NOT tgisinternal AND starts_with(tgname, '{{TriggerNamePrefix}}')
            LOOP
                EXECUTE format('DROP TRIGGER %I ON journal', t);
            END LOOP;
        END
        $drop$;
        CREATE TRIGGER {{TriggerName}} AFTER INSERT ON journal
            REFERENCING NEW TABLE AS fence_new_rows
            FOR EACH STATEMENT EXECUTE FUNCTION {{TriggerName}}();
        """;

    /// <summary>
    /// Installs the fence once the journal's table exists (the journal plugin creates it when it starts). Idempotent;
    /// nodes starting together take turns. A node that cannot install it does not start: it would write unfenced.
    /// </summary>
    /// <param name="journalPluginId">The plugin of the journal on this server (Akka's default one if null).</param>
    public static async Task InstallAsync(ActorSystem system, string connectionString, TimeSpan timeout, string? journalPluginId = null)
    {
        var log = Logging.GetLogger(system, typeof(JournalFence));
        // Starting the journal makes it create its tables.
        Akka.Persistence.Persistence.Instance.Apply(system).JournalFor(journalPluginId);
        await using var dataSource = NpgsqlDataSource.Create(connectionString);
        var deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            try
            {
                if (await InstallIfMissingAsync(dataSource))
                    log.Info("Journal writer fence installed ({Trigger}) for {Journal}", TriggerName, journalPluginId ?? "the default journal");
                return;
            }
            catch (Exception e) when (DateTime.UtcNow < deadline && e is NpgsqlException or JournalNotReady)
            {
                await Task.Delay(TimeSpan.FromMilliseconds(250));
            }
        }
    }

    /// <returns>True if it was installed now, false if it was already there.</returns>
    public static async Task<bool> InstallIfMissingAsync(NpgsqlDataSource dataSource)
    {
        await using var connection = await dataSource.OpenConnectionAsync();
        if (await InstalledAsync(connection))
            return false;
        await using var transaction = await connection.BeginTransactionAsync();
        await using (var lockCommand = new NpgsqlCommand("SELECT pg_advisory_xact_lock(1836409716)", connection, transaction))
            await lockCommand.ExecuteNonQueryAsync();
        if (await InstalledAsync(connection, transaction))
            return false;
        await using (var exists = new NpgsqlCommand("SELECT to_regclass('journal') IS NOT NULL", connection, transaction))
            if (await exists.ExecuteScalarAsync() is not true)
                throw new JournalNotReady();
        await using (var install = new NpgsqlCommand(InstallSql, connection, transaction))
            await install.ExecuteNonQueryAsync();
        await transaction.CommitAsync();
        return true;
    }

    /// <summary>
    /// This version's trigger, and no other version's. During a rolling upgrade a node of the previous release that
    /// starts puts its trigger back beside this one (it looks for its own name only): both then fence, by the same rule
    /// and the same locks, at the cost of both; the next node of this release to start drops it again.
    /// </summary>
    private static async Task<bool> InstalledAsync(NpgsqlConnection connection, NpgsqlTransaction? transaction = null)
    {
        await using var command = new NpgsqlCommand(
            """
            SELECT COALESCE(bool_and(tgname = @name), false)
              FROM pg_trigger WHERE tgrelid = to_regclass('journal') AND NOT tgisinternal AND starts_with(tgname, @prefix)
            """,
            connection, transaction);
        command.Parameters.AddWithValue("name", TriggerName);
        command.Parameters.AddWithValue("prefix", TriggerNamePrefix);
        return await command.ExecuteScalarAsync() is true;
    }

    private sealed class JournalNotReady() : Exception("the journal's table does not exist yet");
}
