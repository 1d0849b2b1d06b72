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
