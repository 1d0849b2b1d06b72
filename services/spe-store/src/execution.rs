//! Bookkeeping for execution on Slurm: which runs wait for submission, which jobs are live.

use spe_core::slurm::SlurmJobId;
use spe_core::time::Timestamp;
use spe_core::{RunId, RunState};

use crate::runs::{RUN_COLUMNS, work_list};
use crate::{RunRecord, Store, StoreError, UnreadableRun};

/// States in which a run has not ended (a submitted run's job may still be alive); quotas
/// count runs in these.
pub(crate) const LIVE_STATES: [RunState; 6] = [
    RunState::Queued,
    RunState::Initializing,
    RunState::Running,
    RunState::Paused,
    RunState::Preempted,
    RunState::Canceling,
];

impl Store {
    /// Claims up to `limit` due runs — QUEUED, never handed to Slurm, their retry time (if any)
    /// come — for `holder` until `until`; a run whose row does not parse is an `Err` item, for
    /// the submitter to end: runs claimed by another holder whose claim has not run out are skipped,
    /// so instances sharing the database never take the same run (on PostgreSQL the rows are
    /// picked with `FOR UPDATE SKIP LOCKED`). Oldest first.
    pub async fn claim_runs_to_submit(
        &self,
        holder: &str,
        now: Timestamp,
        until: Timestamp,
        limit: u32,
    ) -> Result<Vec<Result<RunRecord, UnreadableRun>>, StoreError> {
        let lock = match self.backend() {
            crate::Backend::Postgres => " FOR UPDATE SKIP LOCKED",
            crate::Backend::Sqlite => "",
        };
        let _turn = self.write_turn().await;
        let rows = sqlx::query(&format!(
            "UPDATE runs SET submit_claim = $1, submit_claim_until = $2 WHERE id IN (\
             SELECT id FROM runs WHERE state = $3 AND slurm_job_id IS NULL \
             AND (next_submit_at IS NULL OR next_submit_at <= $4) \
             AND (submit_claim_until IS NULL OR submit_claim_until <= $4 OR submit_claim = $1) \
             ORDER BY created_at, id LIMIT $5{lock}) RETURNING {RUN_COLUMNS}"
        ))
        .bind(holder)
        .bind(until.micros())
        .bind(RunState::Queued.as_str())
        .bind(now.micros())
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        let mut claimed = work_list(&rows)?;
        // RETURNING keeps no order: oldest first, as listed; unreadable rows first.
        claimed.sort_by_key(|item| match item {
            Ok(run) => (1, run.created_at.micros(), run.id.to_string()),
            Err(bad) => (0, 0, bad.id.to_string()),
        });
        Ok(claimed)
    }

    /// Extends `holder`'s claim on a run it is about to submit; `false` when the claim is no
    /// longer its own (it ran out and another instance took the run) or the run left QUEUED.
    pub async fn renew_submit_claim(
        &self,
        run: RunId,
        holder: &str,
        until: Timestamp,
    ) -> Result<bool, StoreError> {
        let _turn = self.write_turn().await;
        let done = sqlx::query(
            "UPDATE runs SET submit_claim_until = $1 WHERE id = $2 AND submit_claim = $3 \
             AND state = $4 AND slurm_job_id IS NULL",
        )
        .bind(until.micros())
        .bind(run.to_string())
        .bind(holder)
        .bind(RunState::Queued.as_str())
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Gives back every claim `holder` has on runs it has not submitted (an instance stopping
    /// after its submitter loop ended): the next pass of any instance takes them at once.
    /// Returns how many.
    pub async fn release_submit_claims(&self, holder: &str) -> Result<u64, StoreError> {
        let _turn = self.write_turn().await;
        let done = sqlx::query(
            "UPDATE runs SET submit_claim = NULL, submit_claim_until = NULL \
             WHERE submit_claim = $1 AND slurm_job_id IS NULL",
        )
        .bind(holder)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }

    /// Gives up the lease `name` if `holder` has it (an instance stopping), so another takes
    /// it at its next tick.
    pub async fn release_leader_lease(&self, name: &str, holder: &str) -> Result<bool, StoreError> {
        let _turn = self.write_turn().await;
        let done = sqlx::query("DELETE FROM leader_leases WHERE name = $1 AND holder = $2")
            .bind(name)
            .bind(holder)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Holds (or renews) the lease `name` for `holder` until `until`: `true` when `holder` has
    /// it now, `false` while another holder's lease runs. One instance runs a singleton loop's
    /// tick; when it dies, another takes the lease once it runs out.
    pub async fn hold_leader_lease(
        &self,
        name: &str,
        holder: &str,
        now: Timestamp,
        until: Timestamp,
    ) -> Result<bool, StoreError> {
        let _turn = self.write_turn().await;
        let done = sqlx::query(
            "INSERT INTO leader_leases (name, holder, until) VALUES ($1, $2, $3) \
             ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, until = excluded.until \
             WHERE leader_leases.holder = excluded.holder OR leader_leases.until <= $4",
        )
        .bind(name)
        .bind(holder)
        .bind(until.micros())
        .bind(now.micros())
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Records that the run is now Slurm job `job`. Returns `false` (and changes nothing) if the
    /// run is no longer a QUEUED run without a job, e.g. because it was cancelled meanwhile;
    /// the caller must then cancel the job it just created.
    pub async fn record_submission(
        &self,
        run: RunId,
        job: &SlurmJobId,
        log_dir: &str,
        at: Timestamp,
    ) -> Result<bool, StoreError> {
        let _turn = self.write_turn().await;
        let mut tx = self.pool.begin().await?;
        let updated = sqlx::query(
            "UPDATE runs SET slurm_job_id = $1, log_dir = $2, updated_at = $3, next_submit_at = NULL, reason = NULL \
             WHERE id = $4 AND state = $5 AND slurm_job_id IS NULL",
        )
        .bind(job.as_str())
        .bind(log_dir)
        .bind(at.micros())
        .bind(run.to_string())
        .bind(RunState::Queued.as_str())
        .execute(&mut *tx)
        .await?;
        if updated.rows_affected() == 0 {
            tx.rollback().await?;
            return Ok(false);
        }
        sqlx::query(
            "INSERT INTO run_events (run_id, at, from_state, to_state, actor, reason) \
             VALUES ($1, $2, $3, $3, $4, $5)",
        )
        .bind(run.to_string())
        .bind(at.micros())
        .bind(RunState::Queued.as_str())
        .bind(spe_core::ServiceActor::Submitter.as_str())
        .bind(format!("submitted to Slurm as job {job}"))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Notes a transient submission failure: the run stays QUEUED and is tried again at `retry_at`.
    pub async fn defer_submission(
        &self,
        run: RunId,
        attempts: i64,
        retry_at: Timestamp,
        reason: &str,
    ) -> Result<(), StoreError> {
        let _turn = self.write_turn().await;
        sqlx::query(
            "UPDATE runs SET submit_attempts = $1, next_submit_at = $2, reason = $3 \
             WHERE id = $4 AND state = $5 AND slurm_job_id IS NULL",
        )
        .bind(attempts)
        .bind(retry_at.micros())
        .bind(reason)
        .bind(run.to_string())
        .bind(RunState::Queued.as_str())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Runs whose Slurm job may still be alive: the reconciler's work list. A run whose row
    /// does not parse is an `Err` item, for the reconciler to end.
    pub async fn runs_with_live_jobs(
        &self,
    ) -> Result<Vec<Result<RunRecord, UnreadableRun>>, StoreError> {
        let placeholders: Vec<String> = (1..=LIVE_STATES.len()).map(|i| format!("${i}")).collect();
        let sql = format!(
            "SELECT {RUN_COLUMNS} FROM runs WHERE slurm_job_id IS NOT NULL AND state IN ({})",
            placeholders.join(", ")
        );
        let mut query = sqlx::query(&sql);
        for state in LIVE_STATES {
            query = query.bind(state.as_str());
        }
        let rows = query.fetch_all(&self.pool).await?;
        work_list(&rows)
    }
}
