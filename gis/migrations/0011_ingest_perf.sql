-- 0011: the run references of the two big cadastral tables checked once per statement, not per row.
--
-- cadastral.parcels.run_id and private.parcel_owners.run_id referenced ingest.runs through foreign
-- keys, whose checks run one query per inserted row (a million parcels: two million queries, about
-- 7 us each, the largest cost of a first load). The same guarantee is kept by triggers that check
-- a whole statement at once:
--   * an INSERT or UPDATE of these tables fails with foreign_key_violation when a run_id is not in
--     ingest.runs, and the runs it references are locked FOR KEY SHARE until the transaction ends
--     (as the foreign key's check does), so no concurrent transaction can delete them meanwhile;
--   * a DELETE of a referenced run, an UPDATE of its run_id, or a TRUNCATE of ingest.runs while
--     runs are referenced, fails with foreign_key_violation.
-- Foreign keys to ingest.runs could not simply be dropped for a bulk load: dropping one locks
-- ingest.runs (ACCESS EXCLUSIVE) until the commit, blocking every other job's run record.

CREATE FUNCTION ingest.check_run_refs() RETURNS trigger LANGUAGE plpgsql AS $fn$
DECLARE
    missing bigint;
BEGIN
    WITH ids AS (SELECT DISTINCT run_id FROM new_rows WHERE run_id IS NOT NULL),
         held AS (SELECT r.run_id FROM ingest.runs r WHERE r.run_id IN (SELECT run_id FROM ids)
                  FOR KEY SHARE OF r)
    SELECT i.run_id INTO missing FROM ids i
    WHERE NOT EXISTS (SELECT 1 FROM held h WHERE h.run_id = i.run_id) LIMIT 1;
    IF missing IS NOT NULL THEN
        RAISE foreign_key_violation USING
            MESSAGE = format('insert or update on table "%s.%s" violates its reference to ingest.runs',
                             TG_TABLE_SCHEMA, TG_TABLE_NAME),
            DETAIL = format('Key (run_id)=(%s) is not present in table "runs".', missing),
            SCHEMA = TG_TABLE_SCHEMA, TABLE = TG_TABLE_NAME;
    END IF;
    RETURN NULL;
END
$fn$;

CREATE FUNCTION ingest.protect_referenced_runs() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        IF EXISTS (SELECT 1 FROM cadastral.parcels WHERE run_id IS NOT NULL)
           OR EXISTS (SELECT 1 FROM private.parcel_owners WHERE run_id IS NOT NULL) THEN
            RAISE foreign_key_violation USING
                MESSAGE = 'cannot truncate ingest.runs: cadastral.parcels or private.parcel_owners reference it';
        END IF;
        RETURN NULL;
    END IF;
    IF TG_OP = 'UPDATE' AND NEW.run_id = OLD.run_id THEN
        RETURN NEW;
    END IF;
    IF EXISTS (SELECT 1 FROM cadastral.parcels WHERE run_id = OLD.run_id)
       OR EXISTS (SELECT 1 FROM private.parcel_owners WHERE run_id = OLD.run_id) THEN
        RAISE foreign_key_violation USING
            MESSAGE = format('update or delete on table "runs" violates the references of the cadastral tables'),
            DETAIL = format('Key (run_id)=(%s) is still referenced.', OLD.run_id),
            SCHEMA = 'ingest', TABLE = 'runs';
    END IF;
    RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
END
$fn$;

DO $do$
DECLARE
    fk record;
BEGIN
    FOR fk IN
        SELECT c.conrelid::regclass AS rel, c.conname
        FROM pg_constraint c
        WHERE c.contype = 'f' AND c.confrelid = 'ingest.runs'::regclass
          AND c.conrelid IN ('cadastral.parcels'::regclass, 'private.parcel_owners'::regclass)
    LOOP
        EXECUTE format('ALTER TABLE %s DROP CONSTRAINT %I', fk.rel, fk.conname);
    END LOOP;
END
$do$;

CREATE TRIGGER run_refs_ins AFTER INSERT ON cadastral.parcels REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION ingest.check_run_refs();
CREATE TRIGGER run_refs_upd AFTER UPDATE ON cadastral.parcels REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION ingest.check_run_refs();
CREATE TRIGGER run_refs_ins AFTER INSERT ON private.parcel_owners REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION ingest.check_run_refs();
CREATE TRIGGER run_refs_upd AFTER UPDATE ON private.parcel_owners REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION ingest.check_run_refs();
CREATE TRIGGER cadastral_refs BEFORE DELETE OR UPDATE OF run_id ON ingest.runs
    FOR EACH ROW EXECUTE FUNCTION ingest.protect_referenced_runs();
CREATE TRIGGER cadastral_refs_truncate BEFORE TRUNCATE ON ingest.runs
    FOR EACH STATEMENT EXECUTE FUNCTION ingest.protect_referenced_runs();
