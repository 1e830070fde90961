namespace Messaging.Testing;

/// <summary>
/// The writer fence as the previous release installs it (<c>messaging_writer_fence_v1</c>, verbatim): nodes of that
/// release may still run, and reinstall it, during a rolling upgrade. The specs install it to check that today's fence
/// replaces it and fences exactly as it did; the fence benchmark measures it beside today's.
/// </summary>
public static class WriterFenceV1
{
    public const string TriggerName = "messaging_writer_fence_v1";

    public const string InstallSql = """
        CREATE TABLE IF NOT EXISTS journal_writer (
            persistence_id text PRIMARY KEY,
            writer_uuid text NOT NULL,
            claimed_at_sequence_number bigint NOT NULL,
            claimed_on timestamptz NOT NULL DEFAULT now()
        );

        CREATE OR REPLACE FUNCTION messaging_writer_fence_v1() RETURNS trigger LANGUAGE plpgsql AS $fn$
        DECLARE
            r record;
        BEGIN
            -- Per mailbox: a claim locks exclusively (waiting for every write in flight), a write shares the lock.
            -- One order (by id) in every statement, so two batches never wait on each other in a cycle.
            FOR r IN SELECT n.persistence_id, bool_or(n.manifest = 'WCl') AS claims
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

        DROP TRIGGER IF EXISTS messaging_writer_fence_v1 ON journal;
        CREATE TRIGGER messaging_writer_fence_v1 AFTER INSERT ON journal
            REFERENCING NEW TABLE AS fence_new_rows
            FOR EACH STATEMENT EXECUTE FUNCTION messaging_writer_fence_v1();
        """;
}
