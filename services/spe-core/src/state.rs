//! The WES run states and the rules for moving between them.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A run's state, exactly as GA4GH WES 1.1 names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RunState {
    Unknown,
    Queued,
    Initializing,
    Running,
    Paused,
    Complete,
    ExecutorError,
    SystemError,
    Canceled,
    Canceling,
    Preempted,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("unknown state {0:?}: expected one of {ALL_NAMES}")]
pub struct InvalidRunState(pub String);

const ALL_NAMES: &str = "UNKNOWN, QUEUED, INITIALIZING, RUNNING, PAUSED, COMPLETE, EXECUTOR_ERROR, SYSTEM_ERROR, CANCELED, CANCELING, PREEMPTED";

impl RunState {
    pub const ALL: [RunState; 11] = [
        RunState::Unknown,
        RunState::Queued,
        RunState::Initializing,
        RunState::Running,
        RunState::Paused,
        RunState::Complete,
        RunState::ExecutorError,
        RunState::SystemError,
        RunState::Canceled,
        RunState::Canceling,
        RunState::Preempted,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RunState::Unknown => "UNKNOWN",
            RunState::Queued => "QUEUED",
            RunState::Initializing => "INITIALIZING",
            RunState::Running => "RUNNING",
            RunState::Paused => "PAUSED",
            RunState::Complete => "COMPLETE",
            RunState::ExecutorError => "EXECUTOR_ERROR",
            RunState::SystemError => "SYSTEM_ERROR",
            RunState::Canceled => "CANCELED",
            RunState::Canceling => "CANCELING",
            RunState::Preempted => "PREEMPTED",
        }
    }

    /// A terminal state never changes again: the run has ended and its history is closed.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            RunState::Complete
                | RunState::ExecutorError
                | RunState::SystemError
                | RunState::Canceled
        )
    }

    /// Whether a cancel request makes sense in this state.
    pub fn is_cancelable(self) -> bool {
        !self.is_terminal() && self != RunState::Canceling
    }

    /// Whether the run has begun executing (used to stamp `start_time`).
    pub fn has_started(self) -> bool {
        matches!(
            self,
            RunState::Initializing | RunState::Running | RunState::Paused
        )
    }
}

impl fmt::Display for RunState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for RunState {
    type Err = InvalidRunState;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        RunState::ALL
            .into_iter()
            .find(|state| state.as_str() == s)
            .ok_or_else(|| InvalidRunState(s.chars().take(40).collect()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_match_serde() {
        for state in RunState::ALL {
            assert_eq!(state.as_str().parse::<RunState>(), Ok(state));
            let json = serde_json::to_string(&state).unwrap();
            assert_eq!(json, format!("\"{}\"", state.as_str()));
        }
    }

    #[test]
    fn unknown_names_are_refused_with_the_list() {
        let err = "running".parse::<RunState>().unwrap_err();
        assert!(err.to_string().contains("EXECUTOR_ERROR"));
    }

    #[test]
    fn terminal_states_cannot_be_canceled() {
        assert!(RunState::Queued.is_cancelable());
        assert!(RunState::Running.is_cancelable());
        assert!(!RunState::Canceling.is_cancelable());
        for s in [
            RunState::Complete,
            RunState::ExecutorError,
            RunState::SystemError,
            RunState::Canceled,
        ] {
            assert!(s.is_terminal());
            assert!(!s.is_cancelable());
        }
    }
}
