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

/// The active datasets `caller` may name in a run (the submit form's pickers): those without a
/// visa value, and those whose value one of the caller's unexpired ControlledAccessGrants visas
/// holds — the rule admission applies (`app::admission`); with `auth: disabled`, every active one.
pub async fn usable_by(state: &AppState, caller: &Caller) -> Result<Vec<Dataset>, ApiError> {
    let check_visas = !matches!(state.config.auth, spe_core::config::AuthConfig::Disabled);
    let now = chrono::Utc::now().timestamp();
    let mut all = state.store.list_datasets().await?;
    all.retain(|d| {
        d.state == spe_store::DatasetState::Active
            && (!check_visas
                || d.visa
                    .as_deref()
                    .is_none_or(|value| caller.grants(value).any(|v| v.expires_at > now)))
    });
    Ok(all)
}
