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
    registered_at     BIGINT NOT NULL,
    approved_by       TEXT,
    approved_at       BIGINT,
    retired_by        TEXT,
    retired_at        BIGINT,
    retire_reason     TEXT,
    PRIMARY KEY (name, version)
);
CREATE INDEX workflow_versions_by_state ON workflow_versions (state);

-- What was registered is never edited: a changed file is a new version. Only the lifecycle
-- columns may change, and a fixed digest never changes again.
CREATE FUNCTION workflow_versions_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION 'workflow versions are never deleted: retire them';
    END IF;
    IF NEW.name IS DISTINCT FROM OLD.name OR NEW.version IS DISTINCT FROM OLD.version
       OR NEW.workflow_type IS DISTINCT FROM OLD.workflow_type
       OR NEW.source_dir IS DISTINCT FROM OLD.source_dir
       OR NEW.entry_point IS DISTINCT FROM OLD.entry_point
       OR NEW.files_json IS DISTINCT FROM OLD.files_json
       OR NEW.registered_digest IS DISTINCT FROM OLD.registered_digest
       OR NEW.manifest_json IS DISTINCT FROM OLD.manifest_json
       OR (OLD.digest IS NOT NULL AND NEW.digest IS DISTINCT FROM OLD.digest) THEN
        RAISE EXCEPTION 'workflow versions are immutable: register a new version';
    END IF;
    RETURN NEW;
END;
$$;
CREATE TRIGGER workflow_versions_content_fixed BEFORE UPDATE OR DELETE ON workflow_versions
    FOR EACH ROW EXECUTE FUNCTION workflow_versions_guard();

CREATE TABLE datasets (
    id          TEXT PRIMARY KEY NOT NULL,
    description TEXT NOT NULL,
    location    TEXT NOT NULL,
    crypt4gh    BIGINT NOT NULL,
    visa        TEXT,
    state       TEXT NOT NULL CHECK (state IN ('active', 'retired')),
    created_by  TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);
CREATE FUNCTION datasets_no_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'datasets are never deleted: retire them';
END;
$$;
CREATE TRIGGER datasets_no_delete BEFORE DELETE ON datasets
    FOR EACH ROW EXECUTE FUNCTION datasets_no_delete();

CREATE TABLE registry_events (
    seq          BIGSERIAL PRIMARY KEY,
    at           BIGINT NOT NULL,
    actor        TEXT NOT NULL,
    subject_kind TEXT NOT NULL,
    subject      TEXT NOT NULL,
    action       TEXT NOT NULL,
    detail       TEXT
);
CREATE INDEX registry_events_by_subject ON registry_events (subject_kind, subject, seq);

CREATE FUNCTION registry_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'registry_events is append-only';
END;
$$;
CREATE TRIGGER registry_events_no_change BEFORE UPDATE OR DELETE ON registry_events
    FOR EACH ROW EXECUTE FUNCTION registry_events_append_only();
