//! The snapshot of the visas that authorised a run's datasets, stored with the run: who
//! asserted what, from where, until when. Never the visa JWT itself.

use serde::Serialize;
use serde_json::Value;

use crate::auth::Visa;

/// One visa that authorised one dataset of a run, as the run keeps it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VisaSnapshot {
    pub dataset: String,
    pub iss: String,
    #[serde(rename = "type")]
    pub visa_type: String,
    pub value: String,
    pub source: String,
    pub by: Option<String>,
    pub asserted: i64,
    pub exp: i64,
}

impl VisaSnapshot {
    pub fn of(dataset: &str, v: &Visa) -> Self {
        VisaSnapshot {
            dataset: dataset.to_owned(),
            iss: v.issuer.clone(),
            visa_type: v.visa_type.clone(),
            value: v.value.clone(),
            source: v.source.clone(),
            by: v.by.clone(),
            asserted: v.asserted,
            exp: v.expires_at,
        }
    }
}

/// The stored form of a run's snapshots: a JSON array, or nothing when no dataset needed a visa.
pub fn stored(snapshots: &[VisaSnapshot]) -> Result<Option<Value>, serde_json::Error> {
    if snapshots.is_empty() {
        return Ok(None);
    }
    serde_json::to_value(snapshots).map(Some)
}
