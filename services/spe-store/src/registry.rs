//! The workflow registry (versions: draft -> approved -> retired), the dataset registry, and
//! the append-only history of every change to either.

use std::fmt;

use serde_json::Value;
use spe_core::digest::WorkflowDigest;
use spe_core::request::WorkflowType;
use spe_core::time::Timestamp;
use spe_core::{Actor, Subject};
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::audit::{self, AuditEntry, AuditKind};
use crate::{DatasetState, Store, StoreError, WorkflowState};

/// One registered workflow version. What was registered never changes; only its lifecycle does.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkflowVersion {
    pub name: String,
    pub version: String,
    pub workflow_type: WorkflowType,
    pub state: WorkflowState,
    /// The workflow's folder on the cluster's shared file system.
    pub source_dir: String,
    /// Relative to `source_dir`.
    pub entry_point: String,
    /// Every file the digest covers, relative to `source_dir`, sorted (includes `workflow.yaml`).
    pub files: Vec<String>,
    /// The digest of `files` when registered.
    pub registered_digest: WorkflowDigest,
    /// The digest fixed at approval; `None` while a draft (and for a draft retired unapproved).
    pub digest: Option<WorkflowDigest>,
    /// The manifest as registered (`spe_core::manifest::Manifest::to_json`).
    pub manifest: Value,
    pub description: String,
    pub registered_by: Subject,
    pub registered_at: Timestamp,
    pub approved_by: Option<Subject>,
    pub approved_at: Option<Timestamp>,
    pub retired_by: Option<Subject>,
    pub retired_at: Option<Timestamp>,
    pub retire_reason: Option<String>,
}

impl WorkflowVersion {
    /// `name@version`, as `workflow_url` names it.
    pub fn workflow_url(&self) -> String {
        format!("{}@{}", self.name, self.version)
    }
}

/// A workflow version about to be registered as a draft.
#[derive(Debug, Clone)]
pub struct NewWorkflowVersion {
    pub name: String,
    pub version: String,
    pub workflow_type: WorkflowType,
    pub source_dir: String,
    pub entry_point: String,
    pub files: Vec<String>,
    pub registered_digest: WorkflowDigest,
    pub manifest: Value,
    pub description: String,
    pub registered_by: Subject,
    pub at: Timestamp,
}

/// A registered dataset: what researchers name by id, and where it really is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dataset {
    pub id: String,
    pub description: String,
    /// Its location on the cluster (absolute path). Never shown to researchers.
    pub location: String,
    /// Whether the files are Crypt4GH-encrypted (the runner decrypts into job-local scratch).
    pub crypt4gh: bool,
    /// The GA4GH visa value (`ControlledAccessGrants`) that grants access; `None`: no visa needed.
    pub visa: Option<String>,
    pub state: DatasetState,
    pub created_by: Subject,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

#[derive(Debug, Clone)]
pub struct NewDataset {
    pub id: String,
    pub description: String,
    pub location: String,
    pub crypt4gh: bool,
    pub visa: Option<String>,
    pub created_by: Subject,
    pub at: Timestamp,
}

/// One change to the registry: who, when, what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryEvent {
    pub seq: i64,
    pub at: Timestamp,
    pub actor: Subject,
    /// `workflow` or `dataset`.
    pub subject_kind: String,
    /// `name@version` or the dataset id.
    pub subject: String,
    /// `registered`, `approved`, `retired`, `created`, ...
    pub action: String,
    pub detail: Option<String>,
}

/// Why the registry refused a change (nothing changed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegistryRefusal {
    NotFound,
    AlreadyExists,
    /// The change is not allowed from the current state.
    WrongState(String),
    /// Four eyes: the registrar may not approve their own registration.
    SameApprover,
}

impl fmt::Display for RegistryRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RegistryRefusal::NotFound => f.write_str("not found"),
            RegistryRefusal::AlreadyExists => f.write_str("already registered"),
            RegistryRefusal::WrongState(s) => write!(f, "not allowed in state {s}"),
            RegistryRefusal::SameApprover => f.write_str(
                "the data controller who registered a version may not approve it; another must",
            ),
        }
    }
}

pub type Refusable<T> = Result<Result<T, RegistryRefusal>, StoreError>;

const WORKFLOW_COLUMNS: &str = "name, version, workflow_type, state, source_dir, entry_point, \
     files_json, registered_digest, digest, manifest_json, description, registered_by, \
     registered_at, approved_by, approved_at, retired_by, retired_at, retire_reason";

const DATASET_COLUMNS: &str =
    "id, description, location, crypt4gh, visa, state, created_by, created_at, updated_at";

fn is_unique_violation(e: &sqlx::Error) -> bool {
    e.as_database_error()
        .is_some_and(|d| d.is_unique_violation())
}

impl Store {
    /// Registers a new draft version with its event. A version that exists already, in any
    /// state, is refused: a changed workflow is a new version.
    pub async fn register_workflow(&self, new: &NewWorkflowVersion) -> Refusable<WorkflowVersion> {
        if self
            .workflow_version(&new.name, &new.version)
            .await?
            .is_some()
        {
            return Ok(Err(RegistryRefusal::AlreadyExists));
        }
        let files = serde_json::to_string(&new.files)
            .map_err(|e| StoreError::Corrupt(format!("files: {e}")))?;
        let _turn = self.write_turn().await;
        let mut tx = self.pool.begin().await?;
        let inserted = sqlx::query(
            "INSERT INTO workflow_versions (name, version, workflow_type, state, source_dir, \
             entry_point, files_json, registered_digest, digest, manifest_json, description, \
             registered_by, registered_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, NULL, $9, $10, $11, $12)",
        )
        .bind(&new.name)
        .bind(&new.version)
        .bind(new.workflow_type.as_str())
        .bind(WorkflowState::Draft.as_str())
        .bind(&new.source_dir)
        .bind(&new.entry_point)
        .bind(files)
        .bind(new.registered_digest.as_str())
        .bind(new.manifest.to_string())
        .bind(&new.description)
        .bind(new.registered_by.key())
        .bind(new.at.micros())
        .execute(&mut *tx)
        .await;
        match inserted {
            Ok(_) => {}
            Err(e) if is_unique_violation(&e) => return Ok(Err(RegistryRefusal::AlreadyExists)),
            Err(e) => return Err(e.into()),
        }
        insert_event(
            &mut tx,
            new.at,
            &new.registered_by,
            "workflow",
            &format!("{}@{}", new.name, new.version),
            "registered",
            Some(&format!(
                "source_dir={} digest={}",
                new.source_dir, new.registered_digest
            )),
        )
        .await?;
        let entry = AuditEntry::new(
            AuditKind::WorkflowRegistered,
            Actor::Person(new.registered_by.clone()),
        )
        .with("workflow", format!("{}@{}", new.name, new.version))
        .with("workflow_type", new.workflow_type.as_str())
        .with("digest", new.registered_digest.as_str());
        audit::append(&mut tx, &entry, new.at).await?;
        tx.commit().await?;
        self.workflow_version(&new.name, &new.version)
            .await?
            .map(Ok)
            .ok_or(StoreError::Corrupt("registered version vanished".into()))
    }

    pub async fn workflow_version(
        &self,
        name: &str,
        version: &str,
    ) -> Result<Option<WorkflowVersion>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {WORKFLOW_COLUMNS} FROM workflow_versions WHERE name = $1 AND version = $2"
        ))
        .bind(name)
        .bind(version)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| workflow_from_row(&r)).transpose()
    }

    /// Every version, or those in one state, by name then registration time.
    pub async fn list_workflow_versions(
        &self,
        state: Option<WorkflowState>,
    ) -> Result<Vec<WorkflowVersion>, StoreError> {
        let rows = match state {
            Some(state) => {
                sqlx::query(&format!(
                    "SELECT {WORKFLOW_COLUMNS} FROM workflow_versions WHERE state = $1 \
                     ORDER BY name, registered_at, version"
                ))
                .bind(state.as_str())
                .fetch_all(&self.pool)
                .await?
            }
            None => {
                sqlx::query(&format!(
                    "SELECT {WORKFLOW_COLUMNS} FROM workflow_versions \
                     ORDER BY name, registered_at, version"
                ))
                .fetch_all(&self.pool)
                .await?
            }
        };
        rows.iter().map(workflow_from_row).collect()
    }

    /// Approves a draft, fixing `digest` (which the caller has just computed from the files and
    /// compared with the registered one). With `require_distinct`, the registrar cannot approve.
    pub async fn approve_workflow(
        &self,
        name: &str,
        version: &str,
        approver: &Subject,
        digest: &WorkflowDigest,
        require_distinct: bool,
        at: Timestamp,
    ) -> Refusable<WorkflowVersion> {
        let Some(current) = self.workflow_version(name, version).await? else {
            return Ok(Err(RegistryRefusal::NotFound));
        };
        if current.state != WorkflowState::Draft {
            return Ok(Err(RegistryRefusal::WrongState(current.state.to_string())));
        }
        if require_distinct && current.registered_by == *approver {
            return Ok(Err(RegistryRefusal::SameApprover));
        }
        let _turn = self.write_turn().await;
        let mut tx = self.pool.begin().await?;
        let updated = sqlx::query(
            "UPDATE workflow_versions SET state = $1, digest = $2, approved_by = $3, \
             approved_at = $4 WHERE name = $5 AND version = $6 AND state = $7",
        )
        .bind(WorkflowState::Approved.as_str())
        .bind(digest.as_str())
        .bind(approver.key())
        .bind(at.micros())
        .bind(name)
        .bind(version)
        .bind(WorkflowState::Draft.as_str())
        .execute(&mut *tx)
        .await?;
        if updated.rows_affected() == 0 {
            tx.rollback().await?;
            let state = self
                .workflow_version(name, version)
                .await?
                .map(|v| v.state.to_string())
                .unwrap_or_default();
            return Ok(Err(RegistryRefusal::WrongState(state)));
        }
        insert_event(
            &mut tx,
            at,
            approver,
            "workflow",
            &format!("{name}@{version}"),
            "approved",
            Some(&format!("digest={digest}")),
        )
        .await?;
        let entry = AuditEntry::new(AuditKind::WorkflowApproved, Actor::Person(approver.clone()))
            .with("workflow", format!("{name}@{version}"))
            .with("digest", digest.as_str())
            .with("registered_by", &current.registered_by);
        audit::append(&mut tx, &entry, at).await?;
        tx.commit().await?;
        self.workflow_version(name, version)
            .await?
            .map(Ok)
            .ok_or(StoreError::Corrupt("approved version vanished".into()))
    }

    /// Retires a draft or approved version: it can no longer be run.
    pub async fn retire_workflow(
        &self,
        name: &str,
        version: &str,
        actor: &Subject,
        reason: Option<&str>,
        at: Timestamp,
    ) -> Refusable<WorkflowVersion> {
        let Some(current) = self.workflow_version(name, version).await? else {
            return Ok(Err(RegistryRefusal::NotFound));
        };
        if current.state == WorkflowState::Retired {
            return Ok(Err(RegistryRefusal::WrongState(current.state.to_string())));
        }
        let _turn = self.write_turn().await;
        let mut tx = self.pool.begin().await?;
        let updated = sqlx::query(
            "UPDATE workflow_versions SET state = $1, retired_by = $2, retired_at = $3, \
             retire_reason = $4 WHERE name = $5 AND version = $6 AND state = $7",
        )
        .bind(WorkflowState::Retired.as_str())
        .bind(actor.key())
        .bind(at.micros())
        .bind(reason.map(str::to_owned))
        .bind(name)
        .bind(version)
        .bind(current.state.as_str())
        .execute(&mut *tx)
        .await?;
        if updated.rows_affected() == 0 {
            tx.rollback().await?;
            return Ok(Err(RegistryRefusal::WrongState("changed meanwhile".into())));
        }
        insert_event(
            &mut tx,
            at,
            actor,
            "workflow",
            &format!("{name}@{version}"),
            "retired",
            reason,
        )
        .await?;
        let entry = AuditEntry::new(AuditKind::WorkflowRetired, Actor::Person(actor.clone()))
            .with("workflow", format!("{name}@{version}"))
            .with("reason", reason);
        audit::append(&mut tx, &entry, at).await?;
        tx.commit().await?;
        self.workflow_version(name, version)
            .await?
            .map(Ok)
            .ok_or(StoreError::Corrupt("retired version vanished".into()))
    }

    /// Registers a dataset with its event; an id in use (even retired) is refused.
    pub async fn insert_dataset(&self, new: &NewDataset) -> Refusable<Dataset> {
        if self.dataset(&new.id).await?.is_some() {
            return Ok(Err(RegistryRefusal::AlreadyExists));
        }
        let _turn = self.write_turn().await;
        let mut tx = self.pool.begin().await?;
        let inserted = sqlx::query(
            "INSERT INTO datasets (id, description, location, crypt4gh, visa, state, \
             created_by, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(&new.id)
        .bind(&new.description)
        .bind(&new.location)
        .bind(i64::from(new.crypt4gh))
        .bind(new.visa.clone())
        .bind(DatasetState::Active.as_str())
        .bind(new.created_by.key())
        .bind(new.at.micros())
        .bind(new.at.micros())
        .execute(&mut *tx)
        .await;
        match inserted {
            Ok(_) => {}
            Err(e) if is_unique_violation(&e) => return Ok(Err(RegistryRefusal::AlreadyExists)),
            Err(e) => return Err(e.into()),
        }
        insert_event(
            &mut tx,
            new.at,
            &new.created_by,
            "dataset",
            &new.id,
            "created",
            Some(&format!(
                "location={} crypt4gh={} visa={}",
                new.location,
                new.crypt4gh,
                new.visa.as_deref().unwrap_or("(none)")
            )),
        )
        .await?;
        // Never its location: the chain is exported to a SIEM.
        let entry = AuditEntry::new(
            AuditKind::DatasetRegistered,
            Actor::Person(new.created_by.clone()),
        )
        .with("dataset", &new.id)
        .with("crypt4gh", new.crypt4gh)
        .with("visa_required", new.visa.is_some());
        audit::append(&mut tx, &entry, new.at).await?;
        tx.commit().await?;
        self.dataset(&new.id)
            .await?
            .map(Ok)
            .ok_or(StoreError::Corrupt("dataset vanished".into()))
    }

    pub async fn dataset(&self, id: &str) -> Result<Option<Dataset>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {DATASET_COLUMNS} FROM datasets WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| dataset_from_row(&r)).transpose()
    }

    pub async fn list_datasets(&self) -> Result<Vec<Dataset>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {DATASET_COLUMNS} FROM datasets ORDER BY id"
        ))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(dataset_from_row).collect()
    }

    /// Retires a dataset: runs can no longer name it.
    pub async fn retire_dataset(
        &self,
        id: &str,
        actor: &Subject,
        reason: Option<&str>,
        at: Timestamp,
    ) -> Refusable<Dataset> {
        let Some(current) = self.dataset(id).await? else {
            return Ok(Err(RegistryRefusal::NotFound));
        };
        if current.state != DatasetState::Active {
            return Ok(Err(RegistryRefusal::WrongState(current.state.to_string())));
        }
        let _turn = self.write_turn().await;
        let mut tx = self.pool.begin().await?;
        let updated = sqlx::query(
            "UPDATE datasets SET state = $1, updated_at = $2 WHERE id = $3 AND state = $4",
        )
        .bind(DatasetState::Retired.as_str())
        .bind(at.micros())
        .bind(id)
        .bind(DatasetState::Active.as_str())
        .execute(&mut *tx)
        .await?;
        if updated.rows_affected() == 0 {
            tx.rollback().await?;
            return Ok(Err(RegistryRefusal::WrongState("changed meanwhile".into())));
        }
        insert_event(&mut tx, at, actor, "dataset", id, "retired", reason).await?;
        let entry = AuditEntry::new(AuditKind::DatasetRetired, Actor::Person(actor.clone()))
            .with("dataset", id)
            .with("reason", reason);
        audit::append(&mut tx, &entry, at).await?;
        tx.commit().await?;
        self.dataset(id)
            .await?
            .map(Ok)
            .ok_or(StoreError::Corrupt("dataset vanished".into()))
    }

    /// Registry history, newest first, at most `limit` events; only one subject's when given
    /// (`subject_kind` `workflow` with `name@version`, or `dataset` with an id).
    pub async fn registry_events(
        &self,
        subject: Option<(&str, &str)>,
        limit: i64,
    ) -> Result<Vec<RegistryEvent>, StoreError> {
        let cols = "seq, at, actor, subject_kind, subject, action, detail";
        let rows =
            match subject {
                Some((kind, subject)) => sqlx::query(&format!(
                    "SELECT {cols} FROM registry_events WHERE subject_kind = $1 AND subject = $2 \
                     ORDER BY seq DESC LIMIT $3"
                ))
                .bind(kind)
                .bind(subject)
                .bind(limit)
                .fetch_all(&self.pool)
                .await?,
                None => {
                    sqlx::query(&format!(
                        "SELECT {cols} FROM registry_events ORDER BY seq DESC LIMIT $1"
                    ))
                    .bind(limit)
                    .fetch_all(&self.pool)
                    .await?
                }
            };
        rows.iter()
            .map(|row| {
                Ok(RegistryEvent {
                    seq: row.try_get("seq")?,
                    at: Timestamp::from_micros(row.try_get("at")?),
                    actor: crate::people::subject(row, "actor")?,
                    subject_kind: row.try_get("subject_kind")?,
                    subject: row.try_get("subject")?,
                    action: row.try_get("action")?,
                    detail: row.try_get("detail")?,
                })
            })
            .collect()
    }
}

async fn insert_event(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    at: Timestamp,
    actor: &Subject,
    kind: &str,
    subject: &str,
    action: &str,
    detail: Option<&str>,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO registry_events (at, actor, subject_kind, subject, action, detail) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(at.micros())
    .bind(actor.key())
    .bind(kind)
    .bind(subject)
    .bind(action)
    .bind(detail.map(str::to_owned))
    .execute(&mut **tx)
    .await?;
    Ok(())
}

fn workflow_from_row(row: &AnyRow) -> Result<WorkflowVersion, StoreError> {
    let name: String = row.try_get("name")?;
    let version: String = row.try_get("version")?;
    let corrupt = |what: &str, e: &dyn fmt::Display| {
        StoreError::Corrupt(format!("{what} of workflow {name}@{version}: {e}"))
    };
    let files: String = row.try_get("files_json")?;
    let manifest: String = row.try_get("manifest_json")?;
    let opt_time = |col: &str| -> Result<Option<Timestamp>, StoreError> {
        let v: Option<i64> = row.try_get(col)?;
        Ok(v.map(Timestamp::from_micros))
    };
    let digest = |col: &str, text: String| {
        WorkflowDigest::parse(&text).ok_or_else(|| corrupt(col, &format!("not a digest: {text:?}")))
    };
    let workflow_type: String = row.try_get("workflow_type")?;
    let state: String = row.try_get("state")?;
    Ok(WorkflowVersion {
        workflow_type: workflow_type
            .parse()
            .map_err(|()| corrupt("workflow_type", &format!("unknown type {workflow_type:?}")))?,
        state: state.parse().map_err(|e| corrupt("state", &e))?,
        source_dir: row.try_get("source_dir")?,
        entry_point: row.try_get("entry_point")?,
        files: serde_json::from_str(&files).map_err(|e| corrupt("files", &e))?,
        registered_digest: digest("registered_digest", row.try_get("registered_digest")?)?,
        digest: row
            .try_get::<Option<String>, _>("digest")?
            .map(|d| digest("digest", d))
            .transpose()?,
        manifest: serde_json::from_str(&manifest).map_err(|e| corrupt("manifest", &e))?,
        description: row.try_get("description")?,
        registered_by: crate::people::subject(row, "registered_by")?,
        registered_at: Timestamp::from_micros(row.try_get("registered_at")?),
        approved_by: crate::people::opt_subject(row, "approved_by")?,
        approved_at: opt_time("approved_at")?,
        retired_by: crate::people::opt_subject(row, "retired_by")?,
        retired_at: opt_time("retired_at")?,
        retire_reason: row.try_get("retire_reason")?,
        name,
        version,
    })
}

fn dataset_from_row(row: &AnyRow) -> Result<Dataset, StoreError> {
    let id: String = row.try_get("id")?;
    let crypt4gh: i64 = row.try_get("crypt4gh")?;
    let state: String = row.try_get("state")?;
    Ok(Dataset {
        state: state
            .parse()
            .map_err(|e| StoreError::Corrupt(format!("state of dataset {id}: {e}")))?,
        description: row.try_get("description")?,
        location: row.try_get("location")?,
        crypt4gh: crypt4gh != 0,
        visa: row.try_get("visa")?,
        created_by: crate::people::subject(row, "created_by")?,
        created_at: Timestamp::from_micros(row.try_get("created_at")?),
        updated_at: Timestamp::from_micros(row.try_get("updated_at")?),
        id,
    })
}
