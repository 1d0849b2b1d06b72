-- Crypt4GH results (docs/crypt4gh.md). A released output stored encrypted to the service's key
-- says so (`encryption`, NULL for one stored as it is); its `sha256` and `size` stay those of
-- the plaintext, the bytes reviewers voted on and the receipt names.
ALTER TABLE egress_files ADD COLUMN encryption TEXT;

-- The Crypt4GH public key a person registered for encrypted downloads (one per person; a new
-- one replaces it). A public key: nothing secret.
CREATE TABLE reader_keys (
    person        TEXT PRIMARY KEY NOT NULL,
    public_key    TEXT NOT NULL,
    fingerprint   TEXT NOT NULL,
    registered_at BIGINT NOT NULL
);
