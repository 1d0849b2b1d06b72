//! Deleting an ended run's data: its run directory and, with
//! `retention.delete_released_objects`, its released objects in the results bucket (then
//! `revoked`: no listing, no link). Done by the retention loop for runs that ended more than
//! `retention.run_directories_after_seconds` ago, and at once by `DELETE /runs/{id}` (the
//! owner or an operator). Each deletion is recorded with the run's `data_deleted_at` and a
//! `run.data_deleted` record of the audit chain naming what was deleted and when.
//!
//! Order: the objects first, then the directory, then the record, so that the record never
//! claims more than was deleted; a failure leaves the rest for the next attempt.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use actix_web::http::StatusCode;
use spe_core::time::Timestamp;
use spe_core::{Actor, ServiceActor};
use spe_store::{DeletedRunData, RunRecord};

use crate::error::ApiError;
use crate::startup::AppState;

/// What one deletion removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deleted {
    /// The run directory, when it was still there.
    pub run_dir: Option<String>,
    pub files: u64,
    pub bytes: u64,
    /// Released files whose objects were removed.
    pub released_objects: Vec<String>,
    /// `false` when the deletion had been recorded before (nothing new recorded).
    pub recorded: bool,
}

/// Deletes an ended run's data; 409 for a run that has not ended.
pub async fn delete_run_data(
    state: &AppState,
    run: &RunRecord,
    actor: &Actor,
    cause: &str,
) -> Result<Deleted, ApiError> {
    if !run.state.is_terminal() {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            format!(
                "run {} is {}: only an ended run's data can be deleted; cancel it first",
                run.id, run.state
            ),
        ));
    }
    let dir = PathBuf::from(&run.run_dir);
    // Only ever below data_dir: a stored path is data, never trusted to name what to delete.
    if !dir.is_absolute()
        || !dir.starts_with(&state.config.data_dir)
        || dir == state.config.data_dir
        || dir
            .components()
            .any(|c| c == std::path::Component::ParentDir)
    {
        return Err(ApiError::internal(format!(
            "run {}'s directory is not below data_dir: nothing deleted",
            run.id
        )));
    }
    let mut released_objects = Vec::new();
    if state.config.retention.delete_released_objects {
        let released = state.store.released_files(run.id).await?;
        match &state.results {
            Some(bucket) => {
                for f in &released {
                    bucket
                        .delete(&spe_core::bucket::object_key(run.id, &f.path))
                        .await
                        .map_err(|e| {
                            ApiError::new(
                                StatusCode::SERVICE_UNAVAILABLE,
                                format!("cannot delete a released object; try again: {e}"),
                            )
                        })?;
                    released_objects.push(f.path.clone());
                }
                // The run's own listing and disclosure record go with its objects.
                for key in [
                    spe_core::bucket::manifest_key(run.id),
                    spe_core::bucket::disclosure_key(run.id),
                    // The package's RO-Crate and its receipt too.
                    spe_core::bucket::object_key(run.id, spe_core::bucket::RO_CRATE_FILE),
                    spe_core::bucket::object_key(run.id, spe_core::bucket::RECEIPT_FILE),
                ] {
                    bucket.delete(&key).await.map_err(|e| {
                        ApiError::new(
                            StatusCode::SERVICE_UNAVAILABLE,
                            format!("cannot delete a released object; try again: {e}"),
                        )
                    })?;
                }
            }
            None if !released.is_empty() => {
                tracing::warn!(run_id = %run.id, "retention.delete_released_objects is set but no results bucket is configured: released objects kept");
            }
            None => {}
        }
    }
    let (run_dir, files, bytes) = tokio::task::spawn_blocking(move || remove_tree(&dir))
        .await
        .map_err(ApiError::internal)?
        .map_err(|e| {
            ApiError::internal(format!("cannot delete run {}'s directory: {e}", run.id))
        })?;
    let at = Timestamp::from_datetime(chrono::Utc::now());
    let recorded = state
        .store
        .record_run_data_deleted(&DeletedRunData {
            run: run.id,
            actor,
            run_dir: run_dir.as_deref(),
            files,
            bytes,
            released_objects: &released_objects,
            cause,
            at,
        })
        .await?;
    tracing::info!(target: "spe_audit", run_id = %run.id, by = %actor, cause, files, bytes, objects = released_objects.len(), "run data deleted");
    Ok(Deleted {
        run_dir,
        files,
        bytes,
        released_objects,
        recorded,
    })
}

/// Counts the regular files and bytes below `dir` (links are counted, never followed), then
/// removes it. `None` when it was already gone.
fn remove_tree(dir: &Path) -> std::io::Result<(Option<String>, u64, u64)> {
    fn count(dir: &Path, files: &mut u64, bytes: &mut u64) -> std::io::Result<()> {
        for entry in std::fs::read_dir(dir)? {
            let entry = entry?;
            let meta = entry.path().symlink_metadata()?;
            if meta.is_dir() {
                count(&entry.path(), files, bytes)?;
            } else {
                *files += 1;
                *bytes += meta.len();
            }
        }
        Ok(())
    }
    match dir.symlink_metadata() {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((None, 0, 0)),
        Err(e) => return Err(e),
        Ok(meta) if !meta.is_dir() => {
            return Err(std::io::Error::other(
                "the run directory is not a directory",
            ));
        }
        Ok(_) => {}
    }
    let (mut files, mut bytes) = (0, 0);
    count(dir, &mut files, &mut bytes)?;
    // remove_dir_all removes links themselves, never what they point to.
    std::fs::remove_dir_all(dir)?;
    Ok((Some(dir.display().to_string()), files, bytes))
}

/// The retention loop: every `retention.check_every_seconds`, the data of runs that ended more
/// than `retention.run_directories_after_seconds` ago is deleted.
pub async fn retain_forever(state: Arc<AppState>, after: Duration, every: Duration) {
    let actor = Actor::Service(ServiceActor::Retention);
    let mut tick = tokio::time::interval(every);
    loop {
        tick.tick().await;
        let cutoff = Timestamp::from_datetime(
            chrono::Utc::now() - chrono::Duration::from_std(after).unwrap_or(chrono::Duration::MAX),
        );
        // Page by page, so that a run whose deletion fails does not hold up the ones after it.
        let mut cursor = None;
        loop {
            let due = match state.store.runs_due_for_deletion(cutoff, cursor, 100).await {
                Ok(due) => due,
                Err(e) => {
                    tracing::error!(error = %e, "retention: cannot list runs due for deletion");
                    break;
                }
            };
            let Some(last) = due.last() else {
                break;
            };
            cursor = last.end_time.map(|t| (t, last.id));
            for run in &due {
                if let Err(e) = delete_run_data(&state, run, &actor, "retention").await {
                    tracing::error!(run_id = %run.id, error = %e, "retention: run data not deleted; retried next round");
                }
            }
            if cursor.is_none() {
                break;
            }
        }
    }
}
