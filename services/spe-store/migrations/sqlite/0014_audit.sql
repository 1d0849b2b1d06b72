-- The audit log: one hash chain of security-relevant records (docs/security.md, "Audit
-- chain"). Each record holds the SHA-256 of the one before it (`prev_sha256`; 64 zeros for
-- the first) and its own (`sha256`, over the canonical JSON of every column but `sha256`), so
-- a changed, deleted, inserted or reordered record is found by walking the chain
-- (`spectl audit verify`). Times are microseconds since the epoch (UTC).
--
-- `seq` is given by the writer (the head's seq + 1), never by the database: with the
-- primary key, two writers that both read the same head cannot both append (no fork).
-- Appends are serialised by writing `audit_chain_lock` first in the appending transaction:
-- SQLite has one writer at a time, so the head read after it is the newest.
CREATE TABLE audit_log (
    seq         INTEGER PRIMARY KEY NOT NULL CHECK (seq >= 1),
    at          BIGINT NOT NULL,
    kind        TEXT NOT NULL,
    actor       TEXT NOT NULL,
    run_id      TEXT,
    details     TEXT NOT NULL,
    prev_sha256 TEXT NOT NULL,
    sha256      TEXT NOT NULL UNIQUE
);
CREATE INDEX audit_log_by_time ON audit_log (at);
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;

-- One row, written first by every append so that appends queue one behind the other.
CREATE TABLE audit_chain_lock (
    id    INTEGER PRIMARY KEY NOT NULL CHECK (id = 1),
    taken BIGINT NOT NULL
);
INSERT INTO audit_chain_lock (id, taken) VALUES (1, 0);

-- Retention: when a run's directory (and, if configured, its released objects) was deleted,
-- by the retention period or by DELETE /runs/{id}. Set once; the audit chain holds what was
-- deleted.
ALTER TABLE runs ADD COLUMN data_deleted_at BIGINT;
