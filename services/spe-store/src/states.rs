//! The lifecycle states the store keeps for registry entries, egress files and shares.
//!
//! Each is an enum whose text form is what the database holds (and what the CHECK constraints
//! of the migrations allow); the text exists only here. Reading a row turns the text into the
//! enum once, and a text that names no state makes the row unreadable instead of being passed on.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A text that names no state of the expected kind.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {kind} {text:?}: expected one of {expected}")]
pub struct UnknownState {
    pub kind: &'static str,
    pub text: String,
    pub expected: String,
}

/// Defines a state enum with its stored text, `FromStr`, `Display` and serde in that text.
macro_rules! stored_states {
    (
        $(#[$doc:meta])*
        $name:ident, $kind:literal { $($(#[$vdoc:meta])* $variant:ident => $text:literal),+ $(,)? }
    ) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        pub enum $name {
            $($(#[$vdoc])* #[serde(rename = $text)] $variant),+
        }

        impl $name {
            pub const ALL: &[$name] = &[$($name::$variant),+];

            /// The text the database holds.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = UnknownState;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($text => Ok($name::$variant),)+
                    _ => Err(UnknownState {
                        kind: $kind,
                        text: s.chars().take(40).collect(),
                        expected: $name::ALL
                            .iter()
                            .map(|s| s.as_str())
                            .collect::<Vec<_>>()
                            .join(", "),
                    }),
                }
            }
        }
    };
}

stored_states! {
    /// A registered workflow version: draft -> approved -> retired (or draft -> retired).
    WorkflowState, "workflow state" {
        Draft => "draft",
        /// May run, pinned by its digest.
        Approved => "approved",
        Retired => "retired",
    }
}

stored_states! {
    /// A registered dataset: active (runs may name it) or retired.
    DatasetState, "dataset state" {
        Active => "active",
        Retired => "retired",
    }
}

stored_states! {
    /// One output file of a run on its way out: pending -> uploading -> released | refused,
    /// or held (review) -> pending (approved) | rejected; released -> revoked. The diagram is
    /// in docs/egress-review.md.
    EgressState, "egress state" {
        Pending => "pending",
        /// Claimed by one crawler under a lease.
        Uploading => "uploading",
        Released => "released",
        Held => "held",
        Refused => "refused",
        /// A reviewer's decision: it never leaves.
        Rejected => "rejected",
        /// Released, then withdrawn: its objects removed, its links refused.
        Revoked => "revoked",
    }
}

stored_states! {
    /// A reviewer's vote on one held file.
    Vote, "vote" {
        Approve => "approve",
        Reject => "reject",
    }
}

stored_states! {
    /// What an entry of a run's review history records.
    ReviewEventKind, "review event" {
        /// A reviewer's vote on one file, in the file's current round.
        Vote => "vote",
        /// A reviewer sent the request back to the researcher, with a comment.
        Return => "return",
        /// The researcher answered a returned request (an explanation, or a new run named).
        Resubmit => "resubmit",
        /// A released file was withdrawn.
        Revoke => "revoke",
        /// The file's content changed after a vote: its votes no longer count.
        Reset => "reset",
        /// The request stayed undecided past `review.overdue_after_seconds`.
        Overdue => "overdue",
    }
}

stored_states! {
    /// With whom a run's results are shared: a user by `sub`, or a group by its exact
    /// entitlement URN.
    ShareKind, "share kind" {
        Subject => "subject",
        Group => "group",
    }
}

impl EgressState {
    /// Still work for a crawler: the run's egress is not done while a file is in this state.
    pub fn is_unsettled(self) -> bool {
        matches!(self, EgressState::Pending | EgressState::Uploading)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts_round_trip_and_match_serde() {
        for state in WorkflowState::ALL {
            assert_eq!(state.as_str().parse::<WorkflowState>(), Ok(*state));
            assert_eq!(
                serde_json::to_value(state).unwrap(),
                serde_json::Value::from(state.as_str())
            );
        }
        for state in EgressState::ALL {
            assert_eq!(state.as_str().parse::<EgressState>(), Ok(*state));
        }
        for state in DatasetState::ALL {
            assert_eq!(state.as_str().parse::<DatasetState>(), Ok(*state));
        }
        for kind in ShareKind::ALL {
            assert_eq!(kind.as_str().parse::<ShareKind>(), Ok(*kind));
        }
    }

    #[test]
    fn unknown_texts_name_the_kind_and_the_choices() {
        let err = "Approved".parse::<WorkflowState>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown workflow state \"Approved\": expected one of draft, approved, retired"
        );
    }
}
