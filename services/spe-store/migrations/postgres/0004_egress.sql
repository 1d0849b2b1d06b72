-- Results egress (results-crawler). Times are microseconds since the epoch (UTC).
-- runs.egress_done: 1 once every output of the run is settled (released, held or refused) and
-- its manifest object written, so that rescans skip it: a rescan reads only COMPLETE runs with
-- egress_done = 0, through runs_by_egress. egress_scanned_at: when the run directory was walked
-- and its eligible files recorded.
ALTER TABLE runs ADD COLUMN egress_done BIGINT NOT NULL DEFAULT 0;
ALTER TABLE runs ADD COLUMN egress_scanned_at BIGINT;
ALTER TABLE runs ADD COLUMN egress_done_at BIGINT;
CREATE INDEX runs_by_egress ON runs (egress_done, state);

-- One row per output file the egress rules name (released, held for review, or refused because
-- it is not a plain file strictly inside the run directory, or changed while uploaded).
-- state: pending -> uploading (owner + lease_until: one crawler at a time) -> released | refused,
--        or pending -> held (review); an expired lease makes an uploading row claimable again.
CREATE TABLE egress_files (
    run_id          TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    path            TEXT NOT NULL,
    state           TEXT NOT NULL
                    CHECK (state IN ('pending', 'uploading', 'released', 'held', 'refused')),
    size            BIGINT NOT NULL,
    sha256          TEXT,
    reason          TEXT,
    owner           TEXT,
    lease_until     BIGINT,
    upload_id       TEXT,
    attempts        BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL DEFAULT 0,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    released_at     BIGINT,
    PRIMARY KEY (run_id, path)
);
CREATE INDEX egress_files_by_state ON egress_files (run_id, state);
