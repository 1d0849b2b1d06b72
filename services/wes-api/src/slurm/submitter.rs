//! The submitter: drains QUEUED runs from the store into Slurm jobs.
//!
//! It keeps no state of its own: what to submit next is read from the store every pass, so a
//! restart of wes-api picks up exactly where the last process stopped. A job that was created
//! but not yet recorded when the process died is found again by its name (`spe-<run_id>`)
//! instead of being submitted twice, if scontrol shows it is the service's (its user, and the
//! configured account): another account's job of that name is never adopted.
//!
//! Just before sbatch, `prepare` checks again that the run's datasets are active and its visas
//! valid; a run that lost them ends SYSTEM_ERROR naming the dataset.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use spe_core::RunState;
use spe_core::config::Config;
use spe_core::slurm::SlurmJobId;
use spe_core::time::Timestamp;
use spe_store::{RunRecord, Store, Transition, UnreadableRun};

use crate::slurm::prepare::{PrepareError, prepare};
use crate::slurm::{SlurmClient, SlurmError, Stop};

const BATCH: u32 = 50;

pub struct Submitter {
    pub store: Store,
    pub config: Arc<Config>,
    pub slurm: Arc<SlurmClient>,
    /// This instance's name on the runs it claims (several wes-api may share a database).
    pub holder: String,
    /// Where sbatch latencies and outcomes are counted.
    pub metrics: Arc<crate::metrics::ApiMetrics>,
    /// Set when the instance stops: the run being submitted is finished, no other is, and the
    /// claims left are given back (`run_forever`).
    pub stop: Stop,
}

/// How long a claim on a run lasts: renewed right before its sbatch, so it only has to cover
/// one run's preparation and submission.
const CLAIM: Duration = Duration::from_secs(60);

impl Submitter {
    pub fn new(store: Store, config: Arc<Config>, slurm: Arc<SlurmClient>) -> Self {
        Submitter {
            store,
            config,
            slurm,
            holder: format!("submitter-{}", uuid::Uuid::new_v4()),
            metrics: Arc::default(),
            stop: Stop::default(),
        }
    }

    /// Stops when `stop` is set (the instance's shutdown).
    pub fn with_stop(mut self, stop: Stop) -> Self {
        self.stop = stop;
        self
    }

    /// Counts into `metrics` (the ones `/metrics` serves) instead of its own.
    pub fn with_metrics(mut self, metrics: Arc<crate::metrics::ApiMetrics>) -> Self {
        self.metrics = metrics;
        self
    }

    /// Runs until stopped, one pass per `slurm.submit_interval_seconds`; then gives back the
    /// claims on runs it did not submit, for another instance to take at once.
    pub async fn run_forever(self) {
        let interval = Duration::from_secs(self.config.slurm.submit_interval_seconds);
        while !self.stop.is_set() {
            match self.pass().await {
                // A full batch means more may be waiting: go on at once.
                Ok(n) if n == BATCH as usize => continue,
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "submitter pass failed; will retry"),
            }
            self.stop.sleep(interval).await;
        }
        match self.store.release_submit_claims(&self.holder).await {
            Ok(n) => tracing::info!(claims = n, "submitter stopped; claims given back"),
            Err(e) => {
                tracing::warn!(error = %e, "cannot give back submission claims; they run out")
            }
        }
    }

    /// One pass: submits every run that is due. Returns how many runs it looked at.
    pub async fn pass(&self) -> Result<usize, spe_store::StoreError> {
        let now = Timestamp::from_datetime(Utc::now());
        // Claimed, not just listed: another instance's submitter skips these runs.
        let listed = self
            .store
            .claim_runs_to_submit(&self.holder, now, now.plus(CLAIM), BATCH)
            .await?;
        let listed_count = listed.len();
        let mut due = Vec::with_capacity(listed_count);
        for item in listed {
            match item {
                Ok(run) => due.push(run),
                Err(bad) => self.end_unreadable(&bad).await?,
            }
        }
        if due.is_empty() {
            return Ok(listed_count);
        }
        // Jobs created by an earlier process that died before recording them. Only the
        // service's own jobs count: a job another account named `spe-<run_id>` must not decide
        // a run's fate.
        let me = match self.slurm.service_user().await {
            Ok(user) => Some(user),
            Err(e) => {
                tracing::warn!(error = %e, "cannot tell the service's Slurm user; adopting no job");
                None
            }
        };
        let account = self.config.slurm.account.as_deref();
        let existing: HashMap<String, SlurmJobId> = match self.slurm.owned_jobs().await {
            Ok(jobs) => jobs
                .into_iter()
                .filter(|(j, _)| !j.state.starts_with("CANCELLED"))
                .filter(|(j, owner)| {
                    let ours = me.as_deref().is_some_and(|u| owner.is(u, account));
                    if !ours && j.name.as_deref().is_some_and(|n| n.starts_with("spe-")) {
                        tracing::warn!(
                            job = %j.job_id,
                            user = owner.user.as_deref().unwrap_or("?"),
                            account = owner.account.as_deref().unwrap_or("?"),
                            "a job with a run's name belongs to another account; not adopting it"
                        );
                    }
                    ours
                })
                .filter_map(|(j, _)| j.name.map(|n| (n, j.job_id)))
                .collect(),
            // The controller is unreachable: sbatch would fail the same way, once per run.
            Err(SlurmError::Transient(reason)) => {
                for run in &due {
                    self.retry_later(run, &reason).await?;
                }
                return Ok(listed_count);
            }
            Err(SlurmError::Permanent(_)) => HashMap::new(),
        };
        for run in &due {
            // Stopping: the run under way was finished; the rest is given back.
            if self.stop.is_set() {
                break;
            }
            if let Some(job) = existing.get(&format!("spe-{}", run.id)) {
                tracing::info!(run_id = %run.id, job = %job, "adopting a job submitted before a restart");
                let log_dir = newest_log_dir(&run.run_dir).await.unwrap_or_default();
                self.record(run, job, &log_dir).await?;
                continue;
            }
            // The claim may have run out during a slow pass and the run gone to another instance.
            let now = Timestamp::from_datetime(Utc::now());
            if !self
                .store
                .renew_submit_claim(run.id, &self.holder, now.plus(CLAIM))
                .await?
            {
                tracing::info!(run_id = %run.id, "claimed by another instance meanwhile; not submitted here");
                continue;
            }
            self.submit(run).await?;
        }
        Ok(listed_count)
    }

    /// A run whose row does not parse can never be submitted: it ends as SYSTEM_ERROR naming
    /// the column, and the others go on.
    async fn end_unreadable(&self, run: &UnreadableRun) -> Result<(), spe_store::StoreError> {
        tracing::error!(run_id = %run.id, reason = %run.reason, "stored run is unreadable; it cannot be submitted");
        let now = Timestamp::from_datetime(Utc::now());
        // A run that left QUEUED meanwhile (cancelled) keeps its new state.
        self.store
            .end_unreadable_run(
                run,
                &spe_core::Actor::Service(spe_core::ServiceActor::Submitter),
                now,
            )
            .await
            .map(drop)
    }

    async fn submit(&self, run: &RunRecord) -> Result<(), spe_store::StoreError> {
        let job = match prepare(&self.store, &self.config, run, Utc::now()).await {
            Ok(job) => job,
            Err(PrepareError::Refused(reason)) => return self.fail(run, &reason).await,
            Err(PrepareError::Io(reason)) => {
                return self
                    .retry_later(run, &format!("preparing the run directory: {reason}"))
                    .await;
            }
            Err(PrepareError::Store(e)) => return Err(e),
        };
        let started = std::time::Instant::now();
        let submitted = self.slurm.sbatch(&job.sbatch_args).await;
        self.metrics
            .submit_seconds
            .observe(started.elapsed().as_secs_f64());
        match &submitted {
            Ok(_) => self.metrics.submitted.inc(),
            Err(_) => self.metrics.submit_failed.inc(),
        };
        match submitted {
            Ok(job_id) => {
                tracing::info!(run_id = %run.id, job = %job_id, "submitted to Slurm");
                self.record(run, &job_id, &job.log_dir.display().to_string())
                    .await
            }
            Err(SlurmError::Transient(reason)) => self.retry_later(run, &reason).await,
            Err(SlurmError::Permanent(reason)) => self.fail(run, &reason).await,
        }
    }

    async fn record(
        &self,
        run: &RunRecord,
        job: &SlurmJobId,
        log_dir: &str,
    ) -> Result<(), spe_store::StoreError> {
        let now = Timestamp::from_datetime(Utc::now());
        if !self
            .store
            .record_submission(run.id, job, log_dir, now)
            .await?
        {
            // Cancelled while it was being submitted: the job must not run.
            tracing::info!(run_id = %run.id, job = %job, "run cancelled during submission; cancelling its job");
            if let Err(e) = self.slurm.scancel(std::slice::from_ref(job)).await {
                tracing::warn!(run_id = %run.id, job = %job, error = %e, "scancel failed");
            }
        }
        Ok(())
    }

    async fn retry_later(
        &self,
        run: &RunRecord,
        reason: &str,
    ) -> Result<(), spe_store::StoreError> {
        let attempts = run.submit_attempts + 1;
        let max = i64::from(self.config.slurm.submit_max_attempts);
        if attempts >= max {
            return self
                .fail(
                    run,
                    &format!("could not submit to Slurm after {attempts} attempts: {reason}"),
                )
                .await;
        }
        let backoff = (1u64 << attempts.clamp(0, 16) as u32)
            .min(self.config.slurm.submit_max_backoff_seconds.max(1));
        let retry_at =
            Timestamp::from_datetime(Utc::now() + chrono::Duration::seconds(backoff as i64));
        tracing::warn!(run_id = %run.id, attempts, retry_in_s = backoff, reason, "submission failed; the run stays QUEUED");
        self.store
            .defer_submission(
                run.id,
                attempts,
                retry_at,
                &format!("submission attempt {attempts} failed: {reason}"),
            )
            .await
    }

    async fn fail(&self, run: &RunRecord, reason: &str) -> Result<(), spe_store::StoreError> {
        tracing::error!(run_id = %run.id, reason, "run cannot be submitted");
        let change = Transition {
            run: run.id,
            from: &[RunState::Queued],
            to: RunState::SystemError,
            actor: &spe_core::Actor::Service(spe_core::ServiceActor::Submitter),
            reason: Some(reason),
            exit_code: None,
            at: Timestamp::from_datetime(Utc::now()),
        };
        // A run that left QUEUED meanwhile (cancelled) keeps its new state.
        self.store.transition(&change).await?.ok();
        Ok(())
    }
}

/// The newest `.weskit/<timestamp>` folder of a run directory (timestamps sort as text).
async fn newest_log_dir(run_dir: &str) -> Option<String> {
    let mut entries = tokio::fs::read_dir(std::path::Path::new(run_dir).join(".weskit"))
        .await
        .ok()?;
    let mut newest: Option<std::path::PathBuf> = None;
    while let Ok(Some(entry)) = entries.next_entry().await {
        let path = entry.path();
        if newest.as_ref().is_none_or(|n| path > *n) {
            newest = Some(path);
        }
    }
    newest.map(|p| p.display().to_string())
}
