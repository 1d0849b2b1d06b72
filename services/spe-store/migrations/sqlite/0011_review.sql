-- Egress review (data controllers decide on held outputs). Times are microseconds since the
-- epoch (UTC).
--
-- egress_files gains:
--   state 'rejected' (a reviewer's decision: never leaves) and 'revoked' (released, then its
--   objects removed from the bucket and its links refused);
--   checks: the automatic disclosure checks' report on the bytes looked at (JSON);
--   approved_sha256: set when the votes approve a held file; the crawler releases it only while
--   its bytes still have this digest;
--   review_round: votes count only in the current round; a file whose content changed after a
--   vote starts a new round (its old votes reset);
--   held_at: when the file was first held (the age of its review request).
-- SQLite cannot change a CHECK constraint in place: the table is rebuilt.
CREATE TABLE egress_files_next (
    run_id          TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    path            TEXT NOT NULL,
    state           TEXT NOT NULL
                    CHECK (state IN ('pending', 'uploading', 'released', 'held', 'refused',
                                     'rejected', 'revoked')),
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
    checks          TEXT,
    approved_sha256 TEXT,
    review_round    BIGINT NOT NULL DEFAULT 0,
    held_at         BIGINT,
    PRIMARY KEY (run_id, path)
);
INSERT INTO egress_files_next (run_id, path, state, size, sha256, reason, owner, lease_until,
    upload_id, attempts, next_attempt_at, created_at, updated_at, released_at, held_at)
SELECT run_id, path, state, size, sha256, reason, owner, lease_until, upload_id, attempts,
    next_attempt_at, created_at, updated_at, released_at,
    CASE WHEN state = 'held' THEN updated_at END
FROM egress_files;
DROP TABLE egress_files;
ALTER TABLE egress_files_next RENAME TO egress_files;
CREATE INDEX egress_files_by_state ON egress_files (run_id, state);
CREATE INDEX egress_files_under_review ON egress_files (state, held_at);

-- Everything said in a review, append-only: votes (per file, in a round), a request returned
-- to the researcher (comment required), the researcher's resubmission, a revoked release, a
-- round reset because the content changed, an undecided request reported as overdue.
CREATE TABLE review_events (
    seq      INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id   TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    path     TEXT,
    kind     TEXT NOT NULL
             CHECK (kind IN ('vote', 'return', 'resubmit', 'revoke', 'reset', 'overdue')),
    decision TEXT CHECK (decision IN ('approve', 'reject')),
    actor    TEXT NOT NULL,
    comment  TEXT,
    sha256   TEXT,
    round    BIGINT,
    at       BIGINT NOT NULL
);
CREATE INDEX review_events_by_run ON review_events (run_id, seq);
-- One vote per reviewer per file per round.
CREATE UNIQUE INDEX review_votes_once ON review_events (run_id, path, round, actor)
    WHERE kind = 'vote';
CREATE TRIGGER review_events_no_update BEFORE UPDATE ON review_events
BEGIN SELECT RAISE(ABORT, 'review_events is append-only'); END;
CREATE TRIGGER review_events_no_delete BEFORE DELETE ON review_events
BEGIN SELECT RAISE(ABORT, 'review_events is append-only'); END;
