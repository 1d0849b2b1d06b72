//! Ingress (docs/crypt4gh.md): upload grants for Crypt4GH datasets and the files uploaded
//! under them. A grant names its dataset, its files and when it expires; its token is kept as
//! a SHA-256 only. Each file is claimed for one upload at a time and ends accepted (with its
//! checksum) or refused (with why); every step is an audit record in its transaction.

use spe_core::time::Timestamp;
use spe_core::{Actor, Subject};
use sqlx::Row;

use crate::audit::{self, AuditEntry, AuditKind};
use crate::{Store, StoreError};

/// Where one file of a grant stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UploadState {
    Expected,
    Uploading,
    Accepted,
    Refused,
}

impl UploadState {
    pub fn as_str(self) -> &'static str {
        match self {
            UploadState::Expected => "expected",
            UploadState::Uploading => "uploading",
            UploadState::Accepted => "accepted",
            UploadState::Refused => "refused",
        }
    }

    fn parse(text: &str) -> Result<UploadState, StoreError> {
        Ok(match text {
            "expected" => UploadState::Expected,
            "uploading" => UploadState::Uploading,
            "accepted" => UploadState::Accepted,
            "refused" => UploadState::Refused,
            other => {
                return Err(StoreError::Corrupt(format!(
                    "upload_files.state: unknown state {other:?}"
                )));
            }
        })
    }
}

/// A grant as created.
#[derive(Debug, Clone)]
pub struct NewUploadGrant {
    pub id: String,
    pub dataset_id: String,
    pub token_sha256: String,
    pub granted_to: Subject,
    pub files: Vec<String>,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadFile {
    pub grant_id: String,
    pub name: String,
    pub state: UploadState,
    pub sha256: Option<String>,
    pub size: Option<i64>,
    pub reason: Option<String>,
    pub updated_at: Timestamp,
}

#[derive(Debug, Clone)]
pub struct UploadGrant {
    pub id: String,
    pub dataset_id: String,
    pub token_sha256: String,
    pub granted_to: Subject,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
    pub files: Vec<UploadFile>,
}

/// How one upload ended.
#[derive(Debug, Clone, Copy)]
pub enum UploadOutcome<'a> {
    /// Its header opened with the service's key; now in the dataset with this checksum.
    Accepted { sha256: &'a str, size: i64 },
    /// Not a Crypt4GH file the service can open: deleted, never part of the dataset.
    Refused { reason: &'a str },
    /// Cut off before its end (the network): the file may be uploaded again.
    Interrupted,
}

const FILE_COLUMNS: &str = "grant_id, name, state, sha256, size, reason, updated_at";

fn file_from_row(r: &sqlx::any::AnyRow) -> Result<UploadFile, StoreError> {
    Ok(UploadFile {
        grant_id: r.try_get("grant_id")?,
        name: r.try_get("name")?,
        state: UploadState::parse(&r.try_get::<String, _>("state")?)?,
        sha256: r.try_get("sha256")?,
        size: r.try_get("size")?,
        reason: r.try_get("reason")?,
        updated_at: Timestamp::from_micros(r.try_get("updated_at")?),
    })
}

impl Store {
    /// Stores a grant and its expected files; audited.
    pub async fn create_upload_grant(&self, grant: &NewUploadGrant) -> Result<(), StoreError> {
        let _turn = self.write_turn().await;
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO upload_grants (id, dataset_id, token_sha256, granted_to, created_at, \
             expires_at) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&grant.id)
        .bind(&grant.dataset_id)
        .bind(&grant.token_sha256)
        .bind(grant.granted_to.key())
        .bind(grant.created_at.micros())
        .bind(grant.expires_at.micros())
        .execute(&mut *tx)
        .await?;
        for name in &grant.files {
            sqlx::query(
                "INSERT INTO upload_files (grant_id, name, state, updated_at) \
                 VALUES ($1, $2, $3, $4)",
            )
            .bind(&grant.id)
            .bind(name)
            .bind(UploadState::Expected.as_str())
            .bind(grant.created_at.micros())
            .execute(&mut *tx)
            .await?;
        }
        let entry = AuditEntry::new(
            AuditKind::UploadGranted,
            Actor::Person(grant.granted_to.clone()),
        )
        .with("grant_id", &grant.id)
        .with("dataset_id", &grant.dataset_id)
        .with("files", &grant.files)
        .with("expires_at", grant.expires_at.to_rfc3339_micros());
        audit::append(&mut tx, &entry, grant.created_at).await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn upload_grant(&self, id: &str) -> Result<Option<UploadGrant>, StoreError> {
        let Some(row) = sqlx::query(
            "SELECT id, dataset_id, token_sha256, granted_to, created_at, expires_at \
             FROM upload_grants WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?
        else {
            return Ok(None);
        };
        let files = sqlx::query(&format!(
            "SELECT {FILE_COLUMNS} FROM upload_files WHERE grant_id = $1 ORDER BY name"
        ))
        .bind(id)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(file_from_row)
        .collect::<Result<Vec<_>, _>>()?;
        Ok(Some(UploadGrant {
            id: row.try_get("id")?,
            dataset_id: row.try_get("dataset_id")?,
            token_sha256: row.try_get("token_sha256")?,
            granted_to: crate::people::subject(&row, "granted_to")?,
            created_at: Timestamp::from_micros(row.try_get("created_at")?),
            expires_at: Timestamp::from_micros(row.try_get("expires_at")?),
            files,
        }))
    }

    /// Claims `name` of the grant for one upload: `false` when it is not expected (being
    /// uploaded, already accepted or refused, or not in the grant).
    pub async fn claim_upload(
        &self,
        grant: &str,
        name: &str,
        at: Timestamp,
    ) -> Result<bool, StoreError> {
        let _turn = self.write_turn().await;
        let done = sqlx::query(
            "UPDATE upload_files SET state = $1, updated_at = $2 \
             WHERE grant_id = $3 AND name = $4 AND state = $5",
        )
        .bind(UploadState::Uploading.as_str())
        .bind(at.micros())
        .bind(grant)
        .bind(name)
        .bind(UploadState::Expected.as_str())
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Ends a claimed upload; accepted and refused files are audited.
    pub async fn finish_upload(
        &self,
        grant: &UploadGrant,
        name: &str,
        outcome: UploadOutcome<'_>,
        at: Timestamp,
    ) -> Result<(), StoreError> {
        let (state, sha256, size, reason) = match outcome {
            UploadOutcome::Accepted { sha256, size } => {
                (UploadState::Accepted, Some(sha256), Some(size), None)
            }
            UploadOutcome::Refused { reason } => (UploadState::Refused, None, None, Some(reason)),
            UploadOutcome::Interrupted => (UploadState::Expected, None, None, None),
        };
        let _turn = self.write_turn().await;
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "UPDATE upload_files SET state = $1, sha256 = $2, size = $3, reason = $4, \
             updated_at = $5 WHERE grant_id = $6 AND name = $7 AND state = $8",
        )
        .bind(state.as_str())
        .bind(sha256)
        .bind(size)
        .bind(reason)
        .bind(at.micros())
        .bind(&grant.id)
        .bind(name)
        .bind(UploadState::Uploading.as_str())
        .execute(&mut *tx)
        .await?;
        let kind = match state {
            UploadState::Accepted => Some(AuditKind::UploadAccepted),
            UploadState::Refused => Some(AuditKind::UploadRefused),
            _ => None,
        };
        if let Some(kind) = kind {
            let mut entry = AuditEntry::new(kind, Actor::Person(grant.granted_to.clone()))
                .with("grant_id", &grant.id)
                .with("dataset_id", &grant.dataset_id)
                .with("name", name);
            if let (Some(sha256), Some(size)) = (sha256, size) {
                entry = entry.with("sha256", sha256).with("size", size);
            }
            if let Some(reason) = reason {
                entry = entry.with("reason", reason);
            }
            audit::append(&mut tx, &entry, at).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// The files uploaded into `dataset` and accepted, by name.
    pub async fn dataset_uploads(&self, dataset: &str) -> Result<Vec<UploadFile>, StoreError> {
        let rows = sqlx::query(
            "SELECT f.grant_id, f.name, f.state, f.sha256, f.size, f.reason, f.updated_at \
             FROM upload_files f JOIN upload_grants g ON g.id = f.grant_id \
             WHERE g.dataset_id = $1 AND f.state = $2 ORDER BY f.name, f.updated_at",
        )
        .bind(dataset)
        .bind(UploadState::Accepted.as_str())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(file_from_row).collect()
    }
}
