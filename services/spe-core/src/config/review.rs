//! `review`: how data controllers decide on held outputs (the egress review).

use serde::Deserialize;

use super::ConfigError;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReviewConfig {
    /// Approvals by distinct data controllers a held file needs before it is released: 1, or 2
    /// for two-person review (as OpenSAFELY's Airlock). With 2, two controllers who disagree
    /// leave the file conflicted until a third decides.
    #[serde(default = "default_approvals")]
    pub approvals_required: u32,
    /// A review request with a file still undecided this long after it was held is reported to
    /// the controllers (an audit line and `overdue` in the listing), once.
    #[serde(default = "default_overdue_after_seconds")]
    pub overdue_after_seconds: u64,
    /// How often wes-api looks for overdue requests.
    #[serde(default = "default_check_every_seconds")]
    pub overdue_check_every_seconds: u64,
    /// Largest held file a reviewer's preview reads (the rest is cut, and said so).
    #[serde(default = "default_preview_bytes")]
    pub preview_max_bytes: u64,
}

impl Default for ReviewConfig {
    fn default() -> Self {
        ReviewConfig {
            approvals_required: default_approvals(),
            overdue_after_seconds: default_overdue_after_seconds(),
            overdue_check_every_seconds: default_check_every_seconds(),
            preview_max_bytes: default_preview_bytes(),
        }
    }
}

fn default_approvals() -> u32 {
    1
}
fn default_overdue_after_seconds() -> u64 {
    3 * 24 * 3600
}
fn default_check_every_seconds() -> u64 {
    600
}
fn default_preview_bytes() -> u64 {
    1024 * 1024
}

impl ReviewConfig {
    pub(super) fn check(&self) -> Result<(), ConfigError> {
        if !(1..=2).contains(&self.approvals_required) {
            return Err(ConfigError::at(
                "review.approvals_required",
                "must be 1 or 2",
            ));
        }
        ConfigError::at_least(
            "review.overdue_after_seconds",
            self.overdue_after_seconds,
            1,
        )?;
        ConfigError::at_least(
            "review.overdue_check_every_seconds",
            self.overdue_check_every_seconds,
            1,
        )?;
        ConfigError::at_least("review.preview_max_bytes", self.preview_max_bytes, 1024)
    }
}
