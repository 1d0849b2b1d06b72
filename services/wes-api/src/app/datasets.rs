//! The dataset registry's changes: registering a dataset and retiring it, each with its
//! registry event (in the store's transaction) and an audit line.

use spe_core::time::Timestamp;
use spe_store::{Dataset, NewDataset};

use crate::auth::Caller;
use crate::error::{ApiError, refusal};
use crate::startup::AppState;

/// A change a data controller makes to the dataset registry.
pub enum DatasetChange<'a> {
    /// 409 when the id is taken.
    Register(NewDataset),
    /// Runs can no longer name it: 404 unknown, 409 already retired.
    Retire {
        id: &'a str,
        reason: Option<&'a str>,
    },
}

/// Applies `change` as `caller`; returns the dataset as it now is.
pub async fn apply(
    state: &AppState,
    caller: &Caller,
    change: DatasetChange<'_>,
) -> Result<Dataset, ApiError> {
    let store = &state.store;
    let (outcome, id, action) = match &change {
        DatasetChange::Register(new) => (
            store.insert_dataset(new).await?,
            new.id.as_str(),
            "registered",
        ),
        DatasetChange::Retire { id, reason } => {
            let now = Timestamp::from_datetime(chrono::Utc::now());
            let retired = store.retire_dataset(id, &caller.subject, *reason, now);
            (retired.await?, *id, "retired")
        }
    };
    let d = outcome.map_err(|r| refusal(r, &format!("dataset {id}")))?;
    tracing::info!(dataset = %d.id, by = %caller.subject, action, "dataset changed");
    Ok(d)
}
