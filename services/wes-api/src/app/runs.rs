//! Accepting a run (after admission) and cancelling one: the changes a run's owner makes.

use spe_core::request::RunRequestFields;
use spe_core::time::Timestamp;
use spe_core::{Actor, RunId, RunState};
use spe_store::audit::{AuditEntry, AuditKind};
use spe_store::{NewRun, RunRecord, Transition};

use crate::app::admission::{self, Admitted};
use crate::app::visas;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::startup::AppState;

/// Admits a request and stores the run QUEUED with its visa snapshot, first event, audit records
/// and the owner's e-mail address (where they hear about it), in one transaction, if its owner stays within their quotas (`quotas:`; 429 naming the quota
/// otherwise, and nothing is stored): once this returns the run is tracked.
pub async fn accept(
    state: &AppState,
    caller: &Caller,
    fields: RunRequestFields,
) -> Result<RunId, ApiError> {
    let Admitted {
        submission,
        visas: granted,
        digest,
        datasets,
    } = admission::admit(state, caller, fields).await?;
    let access_visas = visas::stored(&granted).map_err(ApiError::internal)?;
    let id = RunId::new_random();
    let run_dir = state.config.data_dir.join(id.shard()).join(id.to_string());
    let workflow_url = submission.workflow_url.clone();
    let new_run = NewRun {
        id,
        owner: caller.subject.clone(),
        submission,
        run_dir: run_dir.display().to_string(),
        created_at: Timestamp::from_datetime(chrono::Utc::now()),
    };
    let limits = state
        .config
        .quotas
        .limits_for(caller.groups.iter().map(|g| g.urn()));
    let audit = submission_records(caller, &new_run, &digest, &datasets);
    if let Err(exceeded) = state
        .store
        .insert_run_audited(
            &new_run,
            access_visas.as_ref(),
            Some(&limits),
            &audit,
            caller.email.as_deref(),
        )
        .await?
    {
        tracing::info!(target: "spe_audit", owner = %caller.subject, quota = exceeded.quota, limit = exceeded.limit, "submission refused: quota exceeded");
        return Err(ApiError::too_many(
            exceeded.to_string(),
            exceeded.retry_after_seconds,
        ));
    }
    tracing::info!(run_id = %id, owner = %caller.subject, workflow = %workflow_url, "run accepted");
    Ok(id)
}

/// The audit chain's records of an accepted run, stored with it: the submission (workflow,
/// approved digest, datasets by id) and, when a dataset is Crypt4GH-encrypted, the service key
/// handed to the run (its job decrypts with it).
fn submission_records(
    caller: &Caller,
    run: &NewRun,
    digest: &str,
    datasets: &[(String, bool)],
) -> Vec<AuditEntry> {
    let person = Actor::Person(caller.subject.clone());
    let ids: Vec<&str> = datasets.iter().map(|(id, _)| id.as_str()).collect();
    let mut records = vec![
        AuditEntry::new(AuditKind::RunSubmitted, person.clone())
            .run(run.id)
            .with("workflow", &run.submission.workflow_url)
            .with("digest", digest)
            .with("datasets", &ids),
    ];
    let encrypted: Vec<&str> = datasets
        .iter()
        .filter(|(_, encrypted)| *encrypted)
        .map(|(id, _)| id.as_str())
        .collect();
    if !encrypted.is_empty() {
        records.push(
            AuditEntry::new(AuditKind::KeyUsed, person)
                .run(run.id)
                .with("key", "crypt4gh.service")
                .with("purpose", "decrypt datasets in the run's job")
                .with("datasets", &encrypted),
        );
    }
    records
}

/// Cancels a run. A run never handed to the scheduler is cancelled at once; one that was goes
/// to CANCELING until the scheduler confirms. A run that has ended cannot be cancelled: that is
/// a 409 Conflict naming its state. Cancelling a run already CANCELING is accepted again.
pub async fn cancel(
    state: &AppState,
    caller: &Caller,
    mut run: RunRecord,
) -> Result<RunId, ApiError> {
    let now = || Timestamp::from_datetime(chrono::Utc::now());
    loop {
        if run.state == RunState::Canceling {
            break;
        }
        if !run.state.is_cancelable() {
            return Err(ApiError::conflict(format!(
                "run {} has already ended ({}); there is nothing to cancel",
                run.id, run.state
            )));
        }
        let (to, reason) = if run.slurm_job_id.is_none() && run.state == RunState::Queued {
            (
                RunState::Canceled,
                "canceled before it was submitted to the scheduler",
            )
        } else {
            (RunState::Canceling, "cancel requested")
        };
        let change = Transition {
            run: run.id,
            from: &[run.state],
            to,
            actor: &Actor::Person(caller.subject.clone()),
            reason: Some(reason),
            exit_code: None,
            at: now(),
        };
        match state.store.transition(&change).await? {
            Ok(_) => {
                tracing::info!(run_id = %run.id, by = %caller.subject, to = %to, "cancel requested");
                if to == RunState::Canceling {
                    request_scancel(state, &run).await;
                }
                break;
            }
            // Someone else moved the run meanwhile: decide again on its new state.
            Err(_) => {
                run = state
                    .store
                    .get_run(run.id)
                    .await?
                    .ok_or_else(|| ApiError::not_found(format!("run {} not found", run.id)))?;
            }
        }
    }
    Ok(run.id)
}

/// Asks Slurm to stop the run's job. A failure is only logged: the reconciler repeats the
/// cancel every tick until the job has ended.
async fn request_scancel(state: &AppState, run: &RunRecord) {
    let (Some(slurm), Some(job)) = (state.slurm.as_ref(), run.slurm_job_id.as_ref()) else {
        return;
    };
    if let Err(e) = slurm.scancel(std::slice::from_ref(job)).await {
        tracing::warn!(run_id = %run.id, job = %job, error = %e, "scancel failed; the reconciler will retry");
    }
}
