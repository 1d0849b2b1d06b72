-- Browser sessions and logins in progress, shared by every wes-api instance on this database
-- (they survive a restart and work on any instance). Rows are keyed by the SHA-256 of what the
-- browser holds (the session cookie; the login's `state`), and their secrets (the tokens; the
-- PKCE verifier and nonce) are sealed with a key derived from the browser's cookie: the
-- database alone opens none of them.
CREATE TABLE browser_sessions (
    id_sha256  TEXT PRIMARY KEY NOT NULL,
    sealed     TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX browser_sessions_expiry ON browser_sessions (expires_at);

CREATE TABLE browser_logins (
    state_sha256 TEXT PRIMARY KEY NOT NULL,
    sealed       TEXT NOT NULL,
    address      TEXT,
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL
);
CREATE INDEX browser_logins_address ON browser_logins (address);
CREATE INDEX browser_logins_expiry ON browser_logins (expires_at);
