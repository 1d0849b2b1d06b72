-- The hot read paths (docs/ARCHITECTURE.md, "Hot paths"). A researcher's page of runs is read
-- off one index in the page's own order, however many runs they have; and service-info's state
-- counts are kept as runs are stored and change state, so reading them costs a row per state,
-- not a scan of every run.
CREATE INDEX runs_by_owner_page ON runs (owner, created_at DESC, id DESC);
-- It serves the quotas' per-owner time ranges too (0013), so that index goes.
DROP INDEX runs_by_owner_created;

-- One row per state, all present from the start: a change of state updates both of its rows
-- in one statement, so concurrent transactions take the row locks in one order.
CREATE TABLE run_state_counts (
    state TEXT PRIMARY KEY NOT NULL,
    n     BIGINT NOT NULL
);
INSERT INTO run_state_counts (state, n)
    SELECT s.state, (SELECT COUNT(*) FROM runs WHERE runs.state = s.state)
    FROM unnest(ARRAY['UNKNOWN', 'QUEUED', 'INITIALIZING', 'RUNNING', 'PAUSED', 'COMPLETE',
                      'EXECUTOR_ERROR', 'SYSTEM_ERROR', 'CANCELED', 'CANCELING', 'PREEMPTED'])
         AS s(state);

CREATE FUNCTION run_state_counts_keep() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        UPDATE run_state_counts SET n = n + 1 WHERE state = NEW.state;
    ELSIF TG_OP = 'DELETE' THEN
        UPDATE run_state_counts SET n = n - 1 WHERE state = OLD.state;
    ELSE
        UPDATE run_state_counts
            SET n = n + CASE WHEN state = NEW.state THEN 1 ELSE -1 END
            WHERE state IN (OLD.state, NEW.state);
    END IF;
    RETURN NULL;
END;
$$;
CREATE TRIGGER run_state_counts_on_insert_or_delete AFTER INSERT OR DELETE ON runs
    FOR EACH ROW EXECUTE FUNCTION run_state_counts_keep();
CREATE TRIGGER run_state_counts_on_update AFTER UPDATE OF state ON runs
    FOR EACH ROW WHEN (OLD.state IS DISTINCT FROM NEW.state)
    EXECUTE FUNCTION run_state_counts_keep();

-- What each owner has live (QUEUED, INITIALIZING, RUNNING, PAUSED, PREEMPTED, CANCELING: the
-- store's LIVE_STATES), kept like the counts above, so that the quota check in a submission's
-- transaction reads one row instead of every live run of the owner. Submissions of one owner
-- already queue on the owner's advisory lock there, so the owner's row adds no contention.
CREATE TABLE owner_live_usage (
    owner     TEXT PRIMARY KEY NOT NULL,
    runs      BIGINT NOT NULL,
    cores     BIGINT NOT NULL,
    memory_mb BIGINT NOT NULL
);
INSERT INTO owner_live_usage (owner, runs, cores, memory_mb)
    SELECT owner, COUNT(*), COALESCE(SUM(cores), 0), COALESCE(SUM(memory_mb), 0) FROM runs
    WHERE state IN ('QUEUED', 'INITIALIZING', 'RUNNING', 'PAUSED', 'PREEMPTED', 'CANCELING')
    GROUP BY owner;

CREATE FUNCTION owner_live_usage_keep() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    live TEXT[] := ARRAY['QUEUED', 'INITIALIZING', 'RUNNING', 'PAUSED', 'PREEMPTED', 'CANCELING'];
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') AND OLD.state = ANY (live) THEN
        UPDATE owner_live_usage SET runs = runs - 1, cores = cores - OLD.cores,
            memory_mb = memory_mb - OLD.memory_mb WHERE owner = OLD.owner;
    END IF;
    IF TG_OP IN ('UPDATE', 'INSERT') AND NEW.state = ANY (live) THEN
        INSERT INTO owner_live_usage AS u (owner, runs, cores, memory_mb)
            VALUES (NEW.owner, 1, NEW.cores, NEW.memory_mb)
            ON CONFLICT (owner) DO UPDATE SET runs = u.runs + 1, cores = u.cores + excluded.cores,
                memory_mb = u.memory_mb + excluded.memory_mb;
    END IF;
    RETURN NULL;
END;
$$;
CREATE TRIGGER owner_live_usage_on_insert_or_delete AFTER INSERT OR DELETE ON runs
    FOR EACH ROW EXECUTE FUNCTION owner_live_usage_keep();
CREATE TRIGGER owner_live_usage_on_update AFTER UPDATE OF state, cores, memory_mb ON runs
    FOR EACH ROW EXECUTE FUNCTION owner_live_usage_keep();
