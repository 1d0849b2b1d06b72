//! Identifiers.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The id of one workflow run: a random UUID, always shown in its lowercase hyphenated form.
///
/// Parsing accepts only that canonical form, so that one run has exactly one spelling in URLs,
/// run directories and the store.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct RunId(Uuid);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("not a run id (expected a lowercase UUID such as 0b5e4f7c-3c1d-4a47-9d1e-2f5e0c7d8a11)")]
pub struct InvalidRunId;

impl RunId {
    pub fn new_random() -> Self {
        RunId(Uuid::new_v4())
    }

    /// The first four characters, used to spread run directories over sub-folders
    /// (WESkit's `<run_id[0:4]>/<run_id>` layout).
    pub fn shard(&self) -> String {
        self.to_string()[..4].to_owned()
    }
}

impl FromStr for RunId {
    type Err = InvalidRunId;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.len() != 36 {
            return Err(InvalidRunId);
        }
        let uuid = Uuid::parse_str(s).map_err(|_| InvalidRunId)?;
        // Reject upper case and other spellings so that the canonical form is the only one.
        if uuid.hyphenated().to_string() != s {
            return Err(InvalidRunId);
        }
        Ok(RunId(uuid))
    }
}

impl TryFrom<String> for RunId {
    type Error = InvalidRunId;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        value.parse()
    }
}

impl From<RunId> for String {
    fn from(value: RunId) -> Self {
        value.to_string()
    }
}

impl fmt::Display for RunId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0.hyphenated())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_form_round_trips() {
        let id = RunId::new_random();
        let again: RunId = id.to_string().parse().unwrap();
        assert_eq!(id, again);
        assert_eq!(id.shard().len(), 4);
        assert!(id.to_string().starts_with(&id.shard()));
    }

    #[test]
    fn other_spellings_are_refused() {
        let id = RunId::new_random().to_string();
        assert_eq!(id.to_uppercase().parse::<RunId>(), Err(InvalidRunId));
        assert_eq!(id.replace('-', "").parse::<RunId>(), Err(InvalidRunId));
        assert_eq!(format!("{{{id}}}").parse::<RunId>(), Err(InvalidRunId));
        assert_eq!("../../etc/passwd".parse::<RunId>(), Err(InvalidRunId));
        assert_eq!("".parse::<RunId>(), Err(InvalidRunId));
    }
}
