use spe_core::{RunId, RunState};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database configuration: {0}")]
    Config(String),
    #[error("database unavailable: {0}")]
    Unavailable(String),
    #[error("database migration failed: {0}")]
    Migration(String),
    #[error("run {0} not found")]
    RunNotFound(RunId),
    /// A row that does not parse into its record (not transient: reading it again fails again).
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    #[error(transparent)]
    UnreadableRun(#[from] UnreadableRun),
    #[error("database error: {0}")]
    Query(#[from] sqlx::Error),
}

/// A run whose row does not parse (a column holds what no accepted run could have, e.g. a job
/// id that is not a number or a stored submission of another shape). Its id and state did
/// parse, so it can still be ended: [`crate::Store::end_unreadable_run`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("stored run {id} is unreadable: {reason}")]
pub struct UnreadableRun {
    pub id: RunId,
    pub state: RunState,
    /// Which column, and what is wrong with it.
    pub reason: String,
}
