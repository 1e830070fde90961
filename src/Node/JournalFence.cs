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
/// Cost: PostgreSQL plans the trigger's queries once per session and keeps the plans, unless the session is reset
/// (<c>DISCARD ALL</c>); so the journal's pooled connections are not reset (<see cref="PersistenceHosting"/>), which
/// took most of the fence's cost away. Restructured versions of this function (a path for one mailbox's rows, the
/// locks in one query) were measured and cost no less: docs/benchmarks.md, "The writer fence's cost in PostgreSQL".
/// </para>
/// </summary>
public static class JournalFence
{
    public const string TriggerName = "messaging_writer_fence_v1";
    public const string WriterTable = "journal_writer";

    /// <summary>Creates <c>journal_writer</c> and the trigger (the fence benchmark installs it by itself).</summary>
    public const string InstallSql = $$"""
        CREATE TABLE IF NOT EXISTS {{WriterTable}} (
            persistence_id text PRIMARY KEY,
            writer_uuid text NOT NULL,
            claimed_at_sequence_number bigint NOT NULL,
            claimed_on timestamptz NOT NULL DEFAULT now()
        );

        CREATE OR REPLACE FUNCTION {{TriggerName}}() RETURNS trigger LANGUAGE plpgsql AS $fn$
        DECLARE
            r record;
        BEGIN
            -- Per mailbox: a claim locks exclusively (waiting for every write in flight), a write shares the lock.
            -- One order (by id) in every statement, so two batches never wait on each other in a cycle.
            FOR r IN SELECT n.persistence_id, bool_or(n.manifest = '{{MessagingSerializer.WriterClaimedManifest}}') AS claims
                       FROM fence_new_rows n GROUP BY n.persistence_id ORDER BY n.persistence_id
            LOOP
                IF r.claims THEN
                    PERFORM pg_advisory_xact_lock(hashtextextended(r.persistence_id, 1836409716));
                ELSE
                    PERFORM pg_advisory_xact_lock_shared(hashtextextended(r.persistence_id, 1836409716));
                END IF;
            END LOOP;

            -- Each statement below reads what is committed now, after the locks: the writes that were in flight.
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

        DROP TRIGGER IF EXISTS {{TriggerName}} ON journal;
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

    private static async Task<bool> InstalledAsync(NpgsqlConnection connection, NpgsqlTransaction? transaction = null)
    {
        await using var command = new NpgsqlCommand(
            "SELECT EXISTS (SELECT 1 FROM pg_trigger WHERE tgname = @name AND tgrelid = to_regclass('journal'))",
            connection, transaction);
        command.Parameters.AddWithValue("name", TriggerName);
        return await command.ExecuteScalarAsync() is true;
    }

    private sealed class JournalNotReady() : Exception("the journal's table does not exist yet");
}
