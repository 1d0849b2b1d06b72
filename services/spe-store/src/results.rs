//! Results access: with whom a run's owner shared its released results (users as (issuer,
//! sub), LS-Login groups as (issuer, entitlement URN)), and every presigned download link issued.

use spe_core::time::Timestamp;
use spe_core::{Actor, Group, RunId, Subject};
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::audit::{self, AuditEntry, AuditKind};
use crate::runs::{RUN_COLUMNS, run_from_row};
use crate::{RunRecord, ShareKind, Store, StoreError};

/// With whom a run is shared: one user, or everyone an issuer puts in a group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SharePrincipal {
    User(Subject),
    Group(Group),
}

impl SharePrincipal {
    pub fn kind(&self) -> ShareKind {
        match self {
            SharePrincipal::User(_) => ShareKind::Subject,
            SharePrincipal::Group(_) => ShareKind::Group,
        }
    }

    fn key(&self) -> String {
        match self {
            SharePrincipal::User(s) => s.key(),
            SharePrincipal::Group(g) => g.key(),
        }
    }

    /// As the audit chain names it: `{"issuer", "sub"}` or `{"issuer", "group"}`.
    fn audit_json(&self) -> serde_json::Value {
        match self {
            SharePrincipal::User(s) => serde_json::json!({"issuer": s.issuer(), "sub": s.sub()}),
            SharePrincipal::Group(g) => {
                serde_json::json!({"issuer": g.issuer(), "group": g.urn()})
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunShare {
    pub run_id: RunId,
    pub principal: SharePrincipal,
    pub created_by: Subject,
    pub created_at: Timestamp,
}

/// A presigned download link, as recorded when issued (never the URL or its signature).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResultLink {
    pub id: String,
    pub run_id: RunId,
    pub path: String,
    pub object_key: String,
    pub issued_to: Subject,
    pub issued_at: Timestamp,
    pub expires_at: Timestamp,
}

impl Store {
    /// Shares the run with a principal; `false` if it was shared with them already.
    pub async fn add_share(
        &self,
        run: RunId,
        principal: &SharePrincipal,
        by: &Subject,
        at: Timestamp,
    ) -> Result<bool, StoreError> {
        let _turn = self.write_turn().await;
        let mut tx = self.pool.begin().await?;
        let inserted = sqlx::query(
            "INSERT INTO run_shares (run_id, kind, principal, created_by, created_at) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (run_id, kind, principal) DO NOTHING",
        )
        .bind(run.to_string())
        .bind(principal.kind().as_str())
        .bind(principal.key())
        .bind(by.key())
        .bind(at.micros())
        .execute(&mut *tx)
        .await?;
        let created = inserted.rows_affected() == 1;
        if created {
            let entry = AuditEntry::new(AuditKind::ShareAdded, Actor::Person(by.clone()))
                .run(run)
                .with("principal", principal.audit_json());
            audit::append(&mut tx, &entry, at).await?;
        }
        tx.commit().await?;
        Ok(created)
    }

    /// Ends a share; `false` if there was none.
    pub async fn remove_share(
        &self,
        run: RunId,
        principal: &SharePrincipal,
        by: &Subject,
        at: Timestamp,
    ) -> Result<bool, StoreError> {
        let _turn = self.write_turn().await;
        let mut tx = self.pool.begin().await?;
        let deleted = sqlx::query(
            "DELETE FROM run_shares WHERE run_id = $1 AND kind = $2 AND principal = $3",
        )
        .bind(run.to_string())
        .bind(principal.kind().as_str())
        .bind(principal.key())
        .execute(&mut *tx)
        .await?;
        let removed = deleted.rows_affected() == 1;
        if removed {
            let entry = AuditEntry::new(AuditKind::ShareRemoved, Actor::Person(by.clone()))
                .run(run)
                .with("principal", principal.audit_json());
            audit::append(&mut tx, &entry, at).await?;
        }
        tx.commit().await?;
        Ok(removed)
    }

    /// The run's shares, oldest first.
    pub async fn shares(&self, run: RunId) -> Result<Vec<RunShare>, StoreError> {
        let rows = sqlx::query(
            "SELECT run_id, kind, principal, created_by, created_at FROM run_shares \
             WHERE run_id = $1 ORDER BY created_at, kind, principal",
        )
        .bind(run.to_string())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(share_from_row).collect()
    }

    /// Whether the run is shared with this subject or with one of these groups.
    pub async fn is_shared_with(
        &self,
        run: RunId,
        subject: &Subject,
        groups: &[Group],
    ) -> Result<bool, StoreError> {
        let (clause, params) = principal_clause(2, subject, groups);
        let sql = format!("SELECT COUNT(*) AS n FROM run_shares WHERE run_id = $1 AND ({clause})");
        let mut query = sqlx::query(&sql).bind(run.to_string());
        for p in params {
            query = query.bind(p);
        }
        let row = query.fetch_one(&self.pool).await?;
        let n: i64 = row.try_get("n")?;
        Ok(n > 0)
    }

    /// Runs whose results this caller may see: their own and those shared with them (by
    /// subject or one of their groups), newest first, at most `limit`.
    pub async fn result_runs(
        &self,
        subject: &Subject,
        groups: &[Group],
        limit: i64,
    ) -> Result<Vec<RunRecord>, StoreError> {
        let (clause, params) = principal_clause(3, subject, groups);
        // Two index reads, not one scan: the owner's newest `limit` runs off the
        // (owner, created_at) index, and the runs shared with them; then the newest of both.
        let sql = format!(
            "SELECT {RUN_COLUMNS} FROM (\
             SELECT * FROM (SELECT {RUN_COLUMNS} FROM runs WHERE owner = $1 \
             ORDER BY created_at DESC, id LIMIT $2) AS owned \
             UNION \
             SELECT {RUN_COLUMNS} FROM runs WHERE id IN \
             (SELECT run_id FROM run_shares WHERE {clause})) AS visible \
             ORDER BY created_at DESC, id LIMIT $2"
        );
        let mut query = sqlx::query(&sql).bind(subject.key()).bind(limit);
        for p in params {
            query = query.bind(p);
        }
        let rows = query.fetch_all(&self.pool).await?;
        rows.iter().map(run_from_row).collect()
    }

    /// Records a presigned link as issued.
    pub async fn record_result_link(&self, link: &ResultLink) -> Result<(), StoreError> {
        let _turn = self.write_turn().await;
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO result_links (id, run_id, path, object_key, issued_to, issued_at, \
             expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&link.id)
        .bind(link.run_id.to_string())
        .bind(&link.path)
        .bind(&link.object_key)
        .bind(link.issued_to.key())
        .bind(link.issued_at.micros())
        .bind(link.expires_at.micros())
        .execute(&mut *tx)
        .await?;
        // The link's id and the file, never the URL (it carries a signature).
        let entry = AuditEntry::new(AuditKind::LinkIssued, Actor::Person(link.issued_to.clone()))
            .run(link.run_id)
            .with("link_id", &link.id)
            .with("path", &link.path)
            .with("expires_at", link.expires_at.to_rfc3339_micros());
        audit::append(&mut tx, &entry, link.issued_at).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Links issued for the run's files, oldest first.
    pub async fn result_links(&self, run: RunId) -> Result<Vec<ResultLink>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, run_id, path, object_key, issued_to, issued_at, expires_at \
             FROM result_links WHERE run_id = $1 ORDER BY issued_at, id",
        )
        .bind(run.to_string())
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let run_id: String = r.try_get("run_id")?;
                Ok(ResultLink {
                    id: r.try_get("id")?,
                    run_id: parse_run_id(&run_id)?,
                    path: r.try_get("path")?,
                    object_key: r.try_get("object_key")?,
                    issued_to: crate::people::subject(r, "issued_to")?,
                    issued_at: Timestamp::from_micros(r.try_get("issued_at")?),
                    expires_at: Timestamp::from_micros(r.try_get("expires_at")?),
                })
            })
            .collect()
    }
}

/// `(kind = 'subject' AND principal = $n) OR (kind = 'group' AND principal IN ($n+1, ...))`,
/// with its parameters in order, placeholders numbered from `first`.
fn principal_clause(first: usize, subject: &Subject, groups: &[Group]) -> (String, Vec<String>) {
    let subject_kind = ShareKind::Subject.as_str();
    let mut clause = format!("(kind = '{subject_kind}' AND principal = ${first})");
    let mut params = vec![subject.key()];
    if !groups.is_empty() {
        let placeholders: Vec<String> = (0..groups.len())
            .map(|i| format!("${}", first + 1 + i))
            .collect();
        clause.push_str(&format!(
            " OR (kind = '{}' AND principal IN ({}))",
            ShareKind::Group.as_str(),
            placeholders.join(", ")
        ));
        params.extend(groups.iter().map(Group::key));
    }
    (clause, params)
}

fn parse_run_id(id: &str) -> Result<RunId, StoreError> {
    id.parse()
        .map_err(|_| StoreError::Corrupt(format!("run id {id:?}")))
}

fn share_from_row(row: &AnyRow) -> Result<RunShare, StoreError> {
    let run_id: String = row.try_get("run_id")?;
    let kind: String = row.try_get("kind")?;
    let principal: String = row.try_get("principal")?;
    let kind: ShareKind = kind
        .parse()
        .map_err(|e| StoreError::Corrupt(format!("share of run {run_id}: {e}")))?;
    let principal = match kind {
        ShareKind::Subject => SharePrincipal::User(
            Subject::from_key(&principal)
                .map_err(|e| StoreError::Corrupt(format!("share principal: {e}")))?,
        ),
        ShareKind::Group => SharePrincipal::Group(crate::people::group(&principal)?),
    };
    Ok(RunShare {
        run_id: parse_run_id(&run_id)?,
        principal,
        created_by: crate::people::subject(row, "created_by")?,
        created_at: Timestamp::from_micros(row.try_get("created_at")?),
    })
}
