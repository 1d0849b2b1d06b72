//! The dataset registry's changes: registering a dataset and retiring it, each with its
//! registry event (in the store's transaction) and an audit line.

use spe_core::time::Timestamp;
use spe_store::{Dataset, NewDataset};

use crate::auth::Caller;
use crate::error::{ApiError, refusal};
use crate::startup::AppState;

/// Registers a dataset (409 when its id is taken).
pub async fn register(
    state: &AppState,
    caller: &Caller,
    new: &NewDataset,
) -> Result<Dataset, ApiError> {
    let d = state
        .store
        .insert_dataset(new)
        .await?
        .map_err(|r| refusal(r, &format!("dataset {}", new.id)))?;
    tracing::info!(dataset = %d.id, by = %caller.subject, "dataset registered");
    Ok(d)
}

/// Retires a dataset: runs can no longer name it (404 unknown, 409 already retired).
pub async fn retire(
    state: &AppState,
    caller: &Caller,
    id: &str,
    reason: Option<&str>,
) -> Result<Dataset, ApiError> {
    let d = state
        .store
        .retire_dataset(
            id,
            &caller.subject,
            reason,
            Timestamp::from_datetime(chrono::Utc::now()),
        )
        .await?
        .map_err(|r| refusal(r, &format!("dataset {id}")))?;
    tracing::info!(dataset = %d.id, by = %caller.subject, "dataset retired");
    Ok(d)
}
