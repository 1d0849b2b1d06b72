-- The workflow and dataset registry, and its append-only history. Times are microseconds since
-- the epoch (UTC).
CREATE TABLE workflow_versions (
    name              TEXT NOT NULL,
    version           TEXT NOT NULL,
    workflow_type     TEXT NOT NULL,
    state             TEXT NOT NULL CHECK (state IN ('draft', 'approved', 'retired')),
    source_dir        TEXT NOT NULL,
    entry_point       TEXT NOT NULL,
    files_json        TEXT NOT NULL,
    -- The digest of the files when registered; approval fixes `digest` only if they still match.
    registered_digest TEXT NOT NULL,
    digest            TEXT,
    manifest_json     TEXT NOT NULL,
    description       TEXT NOT NULL,
    registered_by     TEXT NOT NULL,
    registered_at     INTEGER NOT NULL,
    approved_by       TEXT,
    approved_at       INTEGER,
    retired_by        TEXT,
    retired_at        INTEGER,
    retire_reason     TEXT,
    PRIMARY KEY (name, version)
);
CREATE INDEX workflow_versions_by_state ON workflow_versions (state);

-- What was registered is never edited: a changed file is a new version. Only the lifecycle
-- columns may change, and a fixed digest never changes again.
CREATE TRIGGER workflow_versions_content_fixed BEFORE UPDATE ON workflow_versions
WHEN NEW.name IS NOT OLD.name OR NEW.version IS NOT OLD.version
  OR NEW.workflow_type IS NOT OLD.workflow_type OR NEW.source_dir IS NOT OLD.source_dir
  OR NEW.entry_point IS NOT OLD.entry_point OR NEW.files_json IS NOT OLD.files_json
  OR NEW.registered_digest IS NOT OLD.registered_digest
  OR NEW.manifest_json IS NOT OLD.manifest_json
  OR (OLD.digest IS NOT NULL AND NEW.digest IS NOT OLD.digest)
BEGIN SELECT RAISE(ABORT, 'workflow versions are immutable: register a new version'); END;
CREATE TRIGGER workflow_versions_no_delete BEFORE DELETE ON workflow_versions
BEGIN SELECT RAISE(ABORT, 'workflow versions are never deleted: retire them'); END;

CREATE TABLE datasets (
    id          TEXT PRIMARY KEY NOT NULL,
    description TEXT NOT NULL,
    location    TEXT NOT NULL,
    crypt4gh    INTEGER NOT NULL,
    visa        TEXT,
    state       TEXT NOT NULL CHECK (state IN ('active', 'retired')),
    created_by  TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
);
CREATE TRIGGER datasets_no_delete BEFORE DELETE ON datasets
BEGIN SELECT RAISE(ABORT, 'datasets are never deleted: retire them'); END;

CREATE TABLE registry_events (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    at           INTEGER NOT NULL,
    actor        TEXT NOT NULL,
    subject_kind TEXT NOT NULL,
    subject      TEXT NOT NULL,
    action       TEXT NOT NULL,
    detail       TEXT
);
CREATE INDEX registry_events_by_subject ON registry_events (subject_kind, subject, seq);

CREATE TRIGGER registry_events_no_update BEFORE UPDATE ON registry_events
BEGIN SELECT RAISE(ABORT, 'registry_events is append-only'); END;
CREATE TRIGGER registry_events_no_delete BEFORE DELETE ON registry_events
BEGIN SELECT RAISE(ABORT, 'registry_events is append-only'); END;
