//! Crypt4GH keys of readers (docs/crypt4gh.md): the public key a person registered for
//! encrypted downloads, and the record of each encrypted download with the key(s) its header
//! was re-wrapped to.

use spe_core::time::Timestamp;
use spe_core::{Actor, RunId, Subject};
use sqlx::Row;

use crate::audit::{self, AuditEntry, AuditKind};
use crate::{Store, StoreError};

/// A person's registered Crypt4GH public key (the key file's text) and its fingerprint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReaderKey {
    pub public_key: String,
    pub fingerprint: String,
    pub registered_at: Timestamp,
}

/// Where the key(s) an encrypted download was bound to came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReaderKeySource {
    /// The token's `crypt4ghPublicKeys` claim (LS-Login).
    TokenClaim,
    /// The key the person registered through the API.
    Registered,
}

impl ReaderKeySource {
    pub fn as_str(self) -> &'static str {
        match self {
            ReaderKeySource::TokenClaim => "token_claim",
            ReaderKeySource::Registered => "registered",
        }
    }
}

impl Store {
    /// Registers `person`'s public key, replacing any earlier one; audited in the same
    /// transaction.
    pub async fn set_reader_key(
        &self,
        person: &Subject,
        public_key: &str,
        fingerprint: &str,
        at: Timestamp,
    ) -> Result<(), StoreError> {
        let _turn = self.write_turn().await;
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO reader_keys (person, public_key, fingerprint, registered_at) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (person) DO UPDATE SET \
             public_key = excluded.public_key, fingerprint = excluded.fingerprint, \
             registered_at = excluded.registered_at",
        )
        .bind(person.key())
        .bind(public_key)
        .bind(fingerprint)
        .bind(at.micros())
        .execute(&mut *tx)
        .await?;
        let entry = AuditEntry::new(
            AuditKind::ReaderKeyRegistered,
            Actor::Person(person.clone()),
        )
        .with("fingerprint", fingerprint);
        audit::append(&mut tx, &entry, at).await?;
        tx.commit().await?;
        Ok(())
    }

    /// `person`'s registered public key, if any.
    pub async fn reader_key(&self, person: &Subject) -> Result<Option<ReaderKey>, StoreError> {
        let row = sqlx::query(
            "SELECT public_key, fingerprint, registered_at FROM reader_keys WHERE person = $1",
        )
        .bind(person.key())
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            Ok(ReaderKey {
                public_key: r.try_get("public_key")?,
                fingerprint: r.try_get("fingerprint")?,
                registered_at: Timestamp::from_micros(r.try_get("registered_at")?),
            })
        })
        .transpose()
    }

    /// Records that `to` downloaded `path` of `run` with its header re-wrapped to the keys of
    /// `fingerprints` (from `source`). Written before the first byte is sent.
    pub async fn record_encrypted_download(
        &self,
        run: RunId,
        path: &str,
        to: &Subject,
        fingerprints: &[String],
        source: ReaderKeySource,
        at: Timestamp,
    ) -> Result<(), StoreError> {
        let _turn = self.write_turn().await;
        let mut tx = self.pool.begin().await?;
        let entry = AuditEntry::new(AuditKind::EncryptedDownload, Actor::Person(to.clone()))
            .run(run)
            .with("path", path)
            .with("recipient_fingerprints", fingerprints)
            .with("key_source", source.as_str());
        audit::append(&mut tx, &entry, at).await?;
        tx.commit().await?;
        Ok(())
    }
}
