//! The reconciler: makes each submitted run's WES state follow its Slurm job.
//!
//! One scheduler query per tick covers every live run (`scontrol show -o job` lists all jobs
//! slurmctld holds). Jobs it no longer holds are looked up together in one `sacct` call; a job
//! neither knows of ends SYSTEM_ERROR after `slurm.vanished_after_seconds`. The run's log.json is
//! written by the job, so it never decides a run's end (it only names spe-runner's own refusal
//! in a failure the scheduler reported). While a run is CANCELING only the job's end counts, and
//! the cancel is repeated until Slurm confirms it.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use spe_core::RunState;
use spe_core::config::Config;
use spe_core::slurm::{JobReport, SlurmJobId, wes_state};
use spe_core::time::Timestamp;
use spe_store::{RunRecord, Store, Transition, UnreadableRun};
use tokio::sync::Mutex;

use crate::slurm::{SlurmClient, Stop};

pub struct Reconciler {
    pub store: Store,
    pub config: Arc<Config>,
    pub slurm: Arc<SlurmClient>,
    /// When each job was first found missing from every source (kept in memory: after a
    /// restart the grace period simply starts again).
    missing_since: Mutex<HashMap<SlurmJobId, Instant>>,
    /// This instance's name on the reconciler's leader lease: one instance reconciles per tick.
    holder: String,
    /// Where tick latencies are observed.
    metrics: Arc<crate::metrics::ApiMetrics>,
    /// Set when the instance stops: the tick under way ends and the lease is given up.
    stop: Stop,
}

/// What one tick did, for logs, tests and benchmarks.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct TickReport {
    pub live_runs: usize,
    pub changed: usize,
    pub scheduler_calls: u64,
}

impl Reconciler {
    pub fn new(store: Store, config: Arc<Config>, slurm: Arc<SlurmClient>) -> Self {
        Reconciler {
            store,
            config,
            slurm,
            missing_since: Mutex::new(HashMap::new()),
            holder: format!("reconciler-{}", uuid::Uuid::new_v4()),
            metrics: Arc::default(),
            stop: Stop::default(),
        }
    }

    /// Stops when `stop` is set (the instance's shutdown), giving up the leader lease.
    pub fn with_stop(mut self, stop: Stop) -> Self {
        self.stop = stop;
        self
    }

    /// Observes into `metrics` (the ones `/metrics` serves) instead of its own.
    pub fn with_metrics(mut self, metrics: Arc<crate::metrics::ApiMetrics>) -> Self {
        self.metrics = metrics;
        self
    }

    pub async fn run_forever(self) {
        let interval = Duration::from_secs(self.config.slurm.poll_interval_seconds);
        loop {
            // Several instances on one database: the lease's holder reconciles, the others wait
            // to take it over when it stops renewing (three ticks).
            let now = spe_core::time::Timestamp::now();
            let until = now.plus(3 * interval.max(Duration::from_secs(1)));
            match self
                .store
                .hold_leader_lease("reconciler", &self.holder, now, until)
                .await
            {
                Ok(true) => {
                    let started = std::time::Instant::now();
                    if let Err(e) = self.tick().await {
                        tracing::warn!(error = %e, "reconcile tick failed; will retry");
                    }
                    self.metrics
                        .reconcile_seconds
                        .observe(started.elapsed().as_secs_f64());
                }
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "cannot take the reconciler's lease; will retry")
                }
            }
            self.stop.sleep(interval).await;
            if self.stop.is_set() {
                if let Err(e) = self
                    .store
                    .release_leader_lease("reconciler", &self.holder)
                    .await
                {
                    tracing::warn!(error = %e, "cannot give up the reconciler's lease; it runs out");
                }
                return;
            }
        }
    }

    pub async fn tick(&self) -> Result<TickReport, TickError> {
        let calls_before = self.slurm.processes_spawned();
        let listed = self.store.runs_with_live_jobs().await?;
        let mut report = TickReport {
            live_runs: listed.len(),
            ..TickReport::default()
        };
        let mut runs = Vec::with_capacity(listed.len());
        for item in listed {
            match item {
                Ok(run) => runs.push(run),
                Err(bad) => report.changed += usize::from(self.end_unreadable(&bad).await?),
            }
        }
        if runs.is_empty() {
            return Ok(report);
        }
        let held: HashMap<SlurmJobId, JobReport> = self
            .slurm
            .jobs()
            .await
            .map_err(|e| TickError::Scheduler(e.to_string()))?
            .into_iter()
            .map(|j| (j.job_id.clone(), j))
            .collect();

        let mut gone: Vec<(&RunRecord, &SlurmJobId)> = Vec::new();
        let mut to_cancel: Vec<SlurmJobId> = Vec::new();
        for run in &runs {
            // The store lists only runs with a job.
            let Some(job) = &run.slurm_job_id else {
                continue;
            };
            match held.get(job) {
                Some(found) => {
                    if run.state == RunState::Canceling && !wes_state(found).0.is_terminal() {
                        to_cancel.push(job.clone());
                    }
                    report.changed += usize::from(self.apply(run, found).await?);
                }
                None => gone.push((run, job)),
            }
        }
        if !to_cancel.is_empty()
            && let Err(e) = self.slurm.scancel(&to_cancel).await
        {
            tracing::warn!(error = %e, "repeating scancel for CANCELING runs failed");
        }

        if !gone.is_empty() {
            let ids: Vec<SlurmJobId> = gone.iter().map(|(_, job)| (*job).clone()).collect();
            let records: HashMap<SlurmJobId, JobReport> = match self.slurm.sacct(&ids).await {
                Ok(found) => found.into_iter().map(|j| (j.job_id.clone(), j)).collect(),
                Err(e) => {
                    tracing::warn!(error = %e, "sacct failed; asking again next tick");
                    HashMap::new()
                }
            };
            let mut missing = self.missing_since.lock().await;
            let mut still_missing = HashSet::new();
            let limit = Duration::from_secs(self.config.slurm.vanished_after_seconds);
            for (run, job) in gone {
                let since = *missing.entry(job.clone()).or_insert_with(Instant::now);
                match decide_gone(job, records.get(job), since.elapsed(), limit) {
                    Gone::Ended(record) => {
                        report.changed += usize::from(self.apply(run, record).await?);
                    }
                    Gone::Wait => {
                        still_missing.insert(job.clone());
                    }
                    Gone::Vanished(reason) => {
                        still_missing.insert(job.clone());
                        report.changed += usize::from(
                            self.set_state(run, RunState::SystemError, Some(&reason), None)
                                .await?,
                        );
                    }
                }
            }
            missing.retain(|job, _| still_missing.contains(job));
        }
        report.scheduler_calls = self.slurm.processes_spawned() - calls_before;
        Ok(report)
    }

    /// A run whose row does not parse cannot be followed (e.g. its job id is not a number):
    /// it ends as SYSTEM_ERROR naming the column, and the others go on. Returns whether it
    /// changed.
    async fn end_unreadable(&self, run: &UnreadableRun) -> Result<bool, TickError> {
        tracing::error!(run_id = %run.id, state = %run.state, reason = %run.reason, "stored run is unreadable; ending it");
        let now = Timestamp::from_datetime(Utc::now());
        Ok(self
            .store
            .end_unreadable_run(
                run,
                &spe_core::Actor::Service(spe_core::ServiceActor::Reconciler),
                now,
            )
            .await?)
    }

    /// Applies what the scheduler reports to one run. Returns whether its state changed.
    async fn apply(&self, run: &RunRecord, job: &JobReport) -> Result<bool, TickError> {
        let (mut target, mut reason) = wes_state(job);
        if run.state == RunState::Canceling && !target.is_terminal() {
            // Cancel asked; the job has not ended yet.
            return Ok(false);
        }
        if target == RunState::Unknown {
            tracing::warn!(run_id = %run.id, state = %job.state, "unknown Slurm state; keeping the run's state");
            return Ok(false);
        }
        // spe-runner refused to start the engine (e.g. the workflow files no longer match the
        // approved digest): not the workflow's failure but the system's.
        if target == RunState::ExecutorError
            && let Some(error) = crate::run_files::log_json(run).await.and_then(|l| l.error)
        {
            target = RunState::SystemError;
            reason = Some(format!("spe-runner: {error}"));
        }
        let exit_code = job.exit.map(|e| {
            if e.signal != 0 && e.code == 0 {
                128 + i64::from(e.signal)
            } else {
                i64::from(e.code)
            }
        });
        let exit_code = if target.is_terminal() {
            exit_code
        } else {
            None
        };
        self.set_state(run, target, reason.as_deref(), exit_code)
            .await
    }

    async fn set_state(
        &self,
        run: &RunRecord,
        to: RunState,
        reason: Option<&str>,
        exit_code: Option<i64>,
    ) -> Result<bool, TickError> {
        if run.state == to {
            return Ok(false);
        }
        let change = Transition {
            run: run.id,
            from: &[run.state],
            to,
            actor: &spe_core::Actor::Service(spe_core::ServiceActor::Reconciler),
            reason,
            exit_code,
            at: Timestamp::from_datetime(Utc::now()),
        };
        let changed = self.store.transition(&change).await?.is_ok();
        if changed {
            tracing::info!(run_id = %run.id, from = %run.state, to = %to, reason, "run state changed");
        }
        Ok(changed)
    }
}

/// What becomes of a run whose job slurmctld no longer holds.
#[derive(Debug, PartialEq, Eq)]
enum Gone<'a> {
    /// Slurm's accounting knows how the job ended.
    Ended(&'a JobReport),
    /// No record yet (sacct may lag, or failed this tick): ask again next tick.
    Wait,
    /// No scheduler record for longer than the grace period: the run ends SYSTEM_ERROR.
    Vanished(String),
}

/// Decides the end of a job that left slurmctld. Only the scheduler decides: the run's
/// log.json is written by the job itself (workflow code can forge `exit_code: 0` and kill its
/// runner), so it is never read here and never makes a run COMPLETE.
fn decide_gone<'a>(
    job: &SlurmJobId,
    record: Option<&'a JobReport>,
    missing_for: Duration,
    limit: Duration,
) -> Gone<'a> {
    match record {
        Some(record) => Gone::Ended(record),
        None if missing_for < limit => Gone::Wait,
        None => Gone::Vanished(format!(
            "Slurm job {job} vanished without any scheduler record: neither slurmctld nor its accounting (sacct) know how it ended"
        )),
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TickError {
    #[error("scheduler query failed: {0}")]
    Scheduler(String),
    #[error(transparent)]
    Store(#[from] spe_store::StoreError),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job() -> SlurmJobId {
        "42".parse().unwrap()
    }

    fn report(state: &str, code: i32) -> JobReport {
        JobReport {
            job_id: job(),
            name: None,
            state: state.into(),
            exit: Some(spe_core::slurm::JobExit { code, signal: 0 }),
            reason: None,
        }
    }

    #[test]
    fn only_the_scheduler_ends_a_vanished_job() {
        let limit = Duration::from_secs(60);
        // sacct's record decides, whatever the job wrote.
        let failed = report("FAILED", 1);
        assert_eq!(
            decide_gone(&job(), Some(&failed), Duration::ZERO, limit),
            Gone::Ended(&failed)
        );
        assert_eq!(wes_state(&failed).0, RunState::ExecutorError);
        // No record: wait for the grace period, then SYSTEM_ERROR, never COMPLETE.
        assert_eq!(
            decide_gone(&job(), None, Duration::from_secs(59), limit),
            Gone::Wait
        );
        assert_eq!(
            decide_gone(&job(), None, limit, limit),
            Gone::Vanished(
                "Slurm job 42 vanished without any scheduler record: neither slurmctld nor its accounting (sacct) know how it ended".into()
            )
        );
    }
}
