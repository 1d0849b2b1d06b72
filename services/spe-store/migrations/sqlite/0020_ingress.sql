-- Ingress (docs/crypt4gh.md): a data controller's time-limited, write-only grant to upload named
-- files into a Crypt4GH dataset. The grant's token is kept only as its SHA-256. Each file of a
-- grant is uploaded at most once: expected -> uploading -> accepted | refused (an upload cut off
-- by the network goes back to expected).
CREATE TABLE upload_grants (
    id           TEXT PRIMARY KEY NOT NULL,
    dataset_id   TEXT NOT NULL,
    token_sha256 TEXT NOT NULL,
    granted_to   TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL
);

CREATE TABLE upload_files (
    grant_id   TEXT NOT NULL,
    name       TEXT NOT NULL,
    state      TEXT NOT NULL,
    sha256     TEXT,
    size       BIGINT,
    reason     TEXT,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (grant_id, name)
);
CREATE INDEX upload_grants_by_dataset ON upload_grants (dataset_id);
