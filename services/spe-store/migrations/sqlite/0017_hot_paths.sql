-- The hot read paths (docs/ARCHITECTURE.md, "Hot paths"). A researcher's page of runs is read
-- off one index in the page's own order, however many runs they have; and service-info's state
-- counts are kept as runs are stored and change state, so reading them costs a row per state,
-- not a scan of every run.
CREATE INDEX runs_by_owner_page ON runs (owner, created_at DESC, id DESC);
-- It serves the quotas' per-owner time ranges too (0013), so that index goes.
DROP INDEX runs_by_owner_created;

CREATE TABLE run_state_counts (
    state TEXT PRIMARY KEY NOT NULL,
    n     INTEGER NOT NULL
);
INSERT INTO run_state_counts (state, n)
    SELECT s.state, (SELECT COUNT(*) FROM runs WHERE runs.state = s.state)
    FROM (SELECT 'UNKNOWN' AS state UNION ALL SELECT 'QUEUED' UNION ALL SELECT 'INITIALIZING'
          UNION ALL SELECT 'RUNNING' UNION ALL SELECT 'PAUSED' UNION ALL SELECT 'COMPLETE'
          UNION ALL SELECT 'EXECUTOR_ERROR' UNION ALL SELECT 'SYSTEM_ERROR'
          UNION ALL SELECT 'CANCELED' UNION ALL SELECT 'CANCELING' UNION ALL SELECT 'PREEMPTED') AS s;

CREATE TRIGGER run_state_counts_on_insert AFTER INSERT ON runs
BEGIN
    UPDATE run_state_counts SET n = n + 1 WHERE state = NEW.state;
END;
CREATE TRIGGER run_state_counts_on_update AFTER UPDATE OF state ON runs
    WHEN OLD.state <> NEW.state
BEGIN
    UPDATE run_state_counts SET n = n - 1 WHERE state = OLD.state;
    UPDATE run_state_counts SET n = n + 1 WHERE state = NEW.state;
END;
CREATE TRIGGER run_state_counts_on_delete AFTER DELETE ON runs
BEGIN
    UPDATE run_state_counts SET n = n - 1 WHERE state = OLD.state;
END;

-- What each owner has live (QUEUED, INITIALIZING, RUNNING, PAUSED, PREEMPTED, CANCELING: the
-- store's LIVE_STATES), kept like the counts above, so that the quota check in a submission's
-- transaction reads one row instead of every live run of the owner.
CREATE TABLE owner_live_usage (
    owner     TEXT PRIMARY KEY NOT NULL,
    runs      INTEGER NOT NULL,
    cores     INTEGER NOT NULL,
    memory_mb INTEGER NOT NULL
);
INSERT INTO owner_live_usage (owner, runs, cores, memory_mb)
    SELECT owner, COUNT(*), COALESCE(SUM(cores), 0), COALESCE(SUM(memory_mb), 0) FROM runs
    WHERE state IN ('QUEUED', 'INITIALIZING', 'RUNNING', 'PAUSED', 'PREEMPTED', 'CANCELING')
    GROUP BY owner;

CREATE TRIGGER owner_live_usage_on_insert AFTER INSERT ON runs
    WHEN NEW.state IN ('QUEUED', 'INITIALIZING', 'RUNNING', 'PAUSED', 'PREEMPTED', 'CANCELING')
BEGIN
    INSERT INTO owner_live_usage (owner, runs, cores, memory_mb)
        VALUES (NEW.owner, 1, NEW.cores, NEW.memory_mb)
        ON CONFLICT (owner) DO UPDATE SET runs = runs + 1, cores = cores + excluded.cores,
            memory_mb = memory_mb + excluded.memory_mb;
END;
CREATE TRIGGER owner_live_usage_on_leaving AFTER UPDATE OF state ON runs
    WHEN OLD.state IN ('QUEUED', 'INITIALIZING', 'RUNNING', 'PAUSED', 'PREEMPTED', 'CANCELING')
     AND NEW.state NOT IN ('QUEUED', 'INITIALIZING', 'RUNNING', 'PAUSED', 'PREEMPTED', 'CANCELING')
BEGIN
    UPDATE owner_live_usage SET runs = runs - 1, cores = cores - OLD.cores,
        memory_mb = memory_mb - OLD.memory_mb WHERE owner = OLD.owner;
END;
CREATE TRIGGER owner_live_usage_on_entering AFTER UPDATE OF state ON runs
    WHEN OLD.state NOT IN ('QUEUED', 'INITIALIZING', 'RUNNING', 'PAUSED', 'PREEMPTED', 'CANCELING')
     AND NEW.state IN ('QUEUED', 'INITIALIZING', 'RUNNING', 'PAUSED', 'PREEMPTED', 'CANCELING')
BEGIN
    INSERT INTO owner_live_usage (owner, runs, cores, memory_mb)
        VALUES (NEW.owner, 1, NEW.cores, NEW.memory_mb)
        ON CONFLICT (owner) DO UPDATE SET runs = runs + 1, cores = cores + excluded.cores,
            memory_mb = memory_mb + excluded.memory_mb;
END;
CREATE TRIGGER owner_live_usage_on_delete AFTER DELETE ON runs
    WHEN OLD.state IN ('QUEUED', 'INITIALIZING', 'RUNNING', 'PAUSED', 'PREEMPTED', 'CANCELING')
BEGIN
    UPDATE owner_live_usage SET runs = runs - 1, cores = cores - OLD.cores,
        memory_mb = memory_mb - OLD.memory_mb WHERE owner = OLD.owner;
END;
