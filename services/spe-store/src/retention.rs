//! Retention: ended runs whose data is due for deletion, and the record that it was deleted
//! (the run's `data_deleted_at` and a `run.data_deleted` record of the audit chain, naming what
//! was deleted and when, in one transaction: SATRE's proof of deletion).

use spe_core::time::Timestamp;
use spe_core::{Actor, RunId, RunState};

use crate::audit::{self, AuditEntry, AuditKind};
use crate::runs::{RUN_COLUMNS, run_from_row};
use crate::{EgressState, RunRecord, Store, StoreError};

/// What was deleted of one run.
#[derive(Debug, Clone)]
pub struct DeletedRunData<'a> {
    pub run: RunId,
    pub actor: &'a Actor,
    /// The run directory removed (`None`: it was already gone).
    pub run_dir: Option<&'a str>,
    /// Files and bytes removed with it.
    pub files: u64,
    pub bytes: u64,
    /// The released files (their paths in the run) whose objects were removed from the
    /// results bucket; they are `revoked` from now on (no listing, no link).
    pub released_objects: &'a [String],
    /// `retention` (the configured period) or `request` (`DELETE /runs/{id}`).
    pub cause: &'a str,
    pub at: Timestamp,
}

impl Store {
    /// Ended runs that ended at or before `ended_before` and whose data was not deleted yet,
    /// oldest first (by end time, then id), at most `limit`, after the run `after` (a page's
    /// last run: so that runs whose deletion fails do not hold up the others).
    pub async fn runs_due_for_deletion(
        &self,
        ended_before: Timestamp,
        after: Option<(Timestamp, RunId)>,
        limit: i64,
    ) -> Result<Vec<RunRecord>, StoreError> {
        let (after_end, after_id) = match after {
            Some((t, id)) => (t.micros(), id.to_string()),
            None => (i64::MIN, String::new()),
        };
        let terminal: Vec<&str> = [
            RunState::Complete,
            RunState::ExecutorError,
            RunState::SystemError,
            RunState::Canceled,
        ]
        .iter()
        .map(|s| s.as_str())
        .collect();
        let rows = sqlx::query(&format!(
            "SELECT {RUN_COLUMNS} FROM runs WHERE data_deleted_at IS NULL \
             AND end_time IS NOT NULL AND end_time <= $1 AND state IN ($2, $3, $4, $5) \
             AND (end_time > $6 OR (end_time = $6 AND id > $7)) \
             ORDER BY end_time, id LIMIT $8"
        ))
        .bind(ended_before.micros())
        .bind(terminal[0])
        .bind(terminal[1])
        .bind(terminal[2])
        .bind(terminal[3])
        .bind(after_end)
        .bind(after_id)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(run_from_row).collect()
    }

    /// When the run's data was deleted, if it was.
    pub async fn data_deleted_at(&self, run: RunId) -> Result<Option<Timestamp>, StoreError> {
        let at: Option<Option<i64>> =
            sqlx::query_scalar("SELECT data_deleted_at FROM runs WHERE id = $1")
                .bind(run.to_string())
                .fetch_optional(&self.pool)
                .await?;
        Ok(at.flatten().map(Timestamp::from_micros))
    }

    /// Records the deletion: the run's `data_deleted_at`, its removed objects `revoked`, and the
    /// audit record, in one transaction. `false` if it was recorded before (nothing written).
    pub async fn record_run_data_deleted(
        &self,
        d: &DeletedRunData<'_>,
    ) -> Result<bool, StoreError> {
        let _turn = self.write_turn().await;
        let mut tx = self.pool.begin().await?;
        let updated = sqlx::query(
            "UPDATE runs SET data_deleted_at = $1 WHERE id = $2 AND data_deleted_at IS NULL",
        )
        .bind(d.at.micros())
        .bind(d.run.to_string())
        .execute(&mut *tx)
        .await?;
        if updated.rows_affected() != 1 {
            return Ok(false);
        }
        for path in d.released_objects {
            sqlx::query(
                "UPDATE egress_files SET state = $1, reason = $2, updated_at = $3 \
                 WHERE run_id = $4 AND path = $5 AND state = $6",
            )
            .bind(EgressState::Revoked.as_str())
            .bind(format!("deleted ({})", d.cause))
            .bind(d.at.micros())
            .bind(d.run.to_string())
            .bind(path)
            .bind(EgressState::Released.as_str())
            .execute(&mut *tx)
            .await?;
        }
        let entry = AuditEntry::new(AuditKind::RunDataDeleted, d.actor.clone())
            .run(d.run)
            .with("cause", d.cause)
            .with("run_directory", d.run_dir)
            .with("files", d.files)
            .with("bytes", d.bytes)
            .with("released_objects", d.released_objects)
            .with("deleted_at", d.at.to_rfc3339_micros());
        audit::append(&mut tx, &entry, d.at).await?;
        tx.commit().await?;
        Ok(true)
    }
}
