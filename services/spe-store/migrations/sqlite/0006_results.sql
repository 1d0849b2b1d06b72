-- Results access (wes-api). Times are microseconds since the epoch (UTC).
-- run_shares: the run's owner shares its released results with a user (kind 'subject',
-- principal = the OIDC `sub`) or an LS-Login group (kind 'group', principal = the exact
-- eduperson_entitlement URN, authority included).
CREATE TABLE run_shares (
    run_id     TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    kind       TEXT NOT NULL CHECK (kind IN ('subject', 'group')),
    principal  TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (run_id, kind, principal)
);
CREATE INDEX run_shares_by_principal ON run_shares (kind, principal);

-- result_links: every presigned download link issued (who, when, which object, until when).
-- Append-only.
CREATE TABLE result_links (
    id         TEXT PRIMARY KEY,
    run_id     TEXT NOT NULL REFERENCES runs (id),
    path       TEXT NOT NULL,
    object_key TEXT NOT NULL,
    issued_to  TEXT NOT NULL,
    issued_at  BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX result_links_by_run ON result_links (run_id, issued_at);
CREATE TRIGGER result_links_no_update BEFORE UPDATE ON result_links
BEGIN SELECT RAISE(ABORT, 'result_links is append-only'); END;
CREATE TRIGGER result_links_no_delete BEFORE DELETE ON result_links
BEGIN SELECT RAISE(ABORT, 'result_links is append-only'); END;
