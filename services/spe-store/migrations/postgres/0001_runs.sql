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
    created_at            BIGINT NOT NULL,
    updated_at            BIGINT NOT NULL,
    start_time            BIGINT,
    end_time              BIGINT,
    exit_code             BIGINT,
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
    seq        BIGSERIAL PRIMARY KEY,
    run_id     TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    at         BIGINT NOT NULL,
    from_state TEXT,
    to_state   TEXT NOT NULL,
    actor      TEXT NOT NULL,
    reason     TEXT
);
CREATE INDEX run_events_by_run ON run_events (run_id, seq);

-- Append-only: history is never rewritten.
CREATE FUNCTION run_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'run_events is append-only';
END;
$$;
CREATE TRIGGER run_events_no_change BEFORE UPDATE OR DELETE ON run_events
    FOR EACH ROW EXECUTE FUNCTION run_events_append_only();
