-- Runs, their tags and their append-only history. Times are microseconds since the epoch (UTC).
CREATE TABLE runs (
    id                    TEXT PRIMARY KEY NOT NULL,
    state                 TEXT NOT NULL,
    owner                 TEXT NOT NULL,
    workflow_type         TEXT NOT NULL,
    workflow_type_version TEXT NOT NULL,
    workflow_url          TEXT NOT NULL,
    request_json          TEXT NOT NULL,
    run_dir               TEXT NOT NULL,
    created_at            INTEGER NOT NULL,
    updated_at            INTEGER NOT NULL,
    start_time            INTEGER,
    end_time              INTEGER,
    exit_code             INTEGER,
    slurm_job_id          TEXT,
    reason                TEXT
);
CREATE INDEX runs_by_created ON runs (created_at DESC, id DESC);
CREATE INDEX runs_by_state ON runs (state);

CREATE TABLE run_tags (
    run_id TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    key    TEXT NOT NULL,
    value  TEXT NOT NULL,
    PRIMARY KEY (run_id, key)
);
CREATE INDEX run_tags_by_pair ON run_tags (key, value);

CREATE TABLE run_events (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id     TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    at         INTEGER NOT NULL,
    from_state TEXT,
    to_state   TEXT NOT NULL,
    actor      TEXT NOT NULL,
    reason     TEXT
);
CREATE INDEX run_events_by_run ON run_events (run_id, seq);

-- Append-only: history is never rewritten.
CREATE TRIGGER run_events_no_update BEFORE UPDATE ON run_events
BEGIN SELECT RAISE(ABORT, 'run_events is append-only'); END;
CREATE TRIGGER run_events_no_delete BEFORE DELETE ON run_events
BEGIN SELECT RAISE(ABORT, 'run_events is append-only'); END;
