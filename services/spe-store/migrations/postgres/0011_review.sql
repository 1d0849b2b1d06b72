-- Egress review (data controllers decide on held outputs); see the SQLite migration of the same
-- number for what each column means.
ALTER TABLE egress_files DROP CONSTRAINT IF EXISTS egress_files_state_check;
ALTER TABLE egress_files ADD CONSTRAINT egress_files_state_check
    CHECK (state IN ('pending', 'uploading', 'released', 'held', 'refused', 'rejected',
                     'revoked'));
ALTER TABLE egress_files ADD COLUMN checks TEXT;
ALTER TABLE egress_files ADD COLUMN approved_sha256 TEXT;
ALTER TABLE egress_files ADD COLUMN review_round BIGINT NOT NULL DEFAULT 0;
ALTER TABLE egress_files ADD COLUMN held_at BIGINT;
UPDATE egress_files SET held_at = updated_at WHERE state = 'held';
CREATE INDEX egress_files_under_review ON egress_files (state, held_at);

CREATE TABLE review_events (
    seq      BIGSERIAL PRIMARY KEY,
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
CREATE UNIQUE INDEX review_votes_once ON review_events (run_id, path, round, actor)
    WHERE kind = 'vote';
CREATE FUNCTION review_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'review_events is append-only';
END;
$$;
CREATE TRIGGER review_events_no_change BEFORE UPDATE OR DELETE ON review_events
    FOR EACH ROW EXECUTE FUNCTION review_events_append_only();
