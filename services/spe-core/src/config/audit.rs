//! `audit`: anchoring the audit chain's head outside the database, and how refused tokens and
//! failed logins (events an unauthenticated caller can repeat at will) are recorded.
//! `retention`: how long an ended run's data is kept.

use serde::Deserialize;

use super::ConfigError;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditConfig {
    /// How often wes-api prints the chain's head (seq and SHA-256) to the log (target
    /// `spe_audit`), so that a rewrite of the whole chain is found against it; it is printed on
    /// shutdown too.
    #[serde(default = "default_anchor_every_seconds")]
    pub anchor_every_seconds: u64,
    /// Also write each anchor to the results bucket (the `crawler:` section's) under this
    /// prefix, as `<prefix>/<seq>-<sha256>.json`. Use a bucket with S3 Object Lock
    /// (compliance mode) so that the anchors themselves cannot be rewritten.
    #[serde(default)]
    pub anchor_s3_prefix: Option<String>,
    /// Refused tokens and failed logins are counted per client address and written as one
    /// record per address per window.
    #[serde(default = "default_refusal_window_seconds")]
    pub refusal_window_seconds: u64,
    /// At most this many addresses are counted apart in one window; the rest are counted
    /// together as `other`. Bounds the records a flood can cause.
    #[serde(default = "default_refusal_max_addresses")]
    pub refusal_max_addresses: usize,
}

impl Default for AuditConfig {
    fn default() -> Self {
        AuditConfig {
            anchor_every_seconds: default_anchor_every_seconds(),
            anchor_s3_prefix: None,
            refusal_window_seconds: default_refusal_window_seconds(),
            refusal_max_addresses: default_refusal_max_addresses(),
        }
    }
}

fn default_anchor_every_seconds() -> u64 {
    3600
}
fn default_refusal_window_seconds() -> u64 {
    60
}
fn default_refusal_max_addresses() -> usize {
    256
}

impl AuditConfig {
    pub(super) fn check(&self) -> Result<(), ConfigError> {
        ConfigError::at_least("audit.anchor_every_seconds", self.anchor_every_seconds, 1)?;
        ConfigError::at_least(
            "audit.refusal_window_seconds",
            self.refusal_window_seconds,
            1,
        )?;
        ConfigError::at_least("audit.refusal_max_addresses", self.refusal_max_addresses, 1)?;
        if let Some(prefix) = &self.anchor_s3_prefix
            && (prefix.is_empty() || prefix.starts_with('/') || prefix.contains(".."))
        {
            return Err(ConfigError::at(
                "audit.anchor_s3_prefix",
                "must be a relative object key prefix, e.g. audit-anchors",
            ));
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionConfig {
    /// An ended run's directory is deleted this long after it ended; unset keeps run data
    /// until `DELETE /runs/{id}`.
    #[serde(default)]
    pub run_directories_after_seconds: Option<u64>,
    /// With the directory, also delete the run's released objects from the results bucket
    /// (they are `revoked` from then on: no listing, no link).
    #[serde(default)]
    pub delete_released_objects: bool,
    /// How often wes-api looks for runs due for deletion.
    #[serde(default = "default_retention_check_every_seconds")]
    pub check_every_seconds: u64,
}

fn default_retention_check_every_seconds() -> u64 {
    3600
}

impl Default for RetentionConfig {
    fn default() -> Self {
        RetentionConfig {
            run_directories_after_seconds: None,
            delete_released_objects: false,
            check_every_seconds: default_retention_check_every_seconds(),
        }
    }
}

impl RetentionConfig {
    pub(super) fn check(&self) -> Result<(), ConfigError> {
        if let Some(after) = self.run_directories_after_seconds {
            ConfigError::at_least("retention.run_directories_after_seconds", after, 1)?;
        }
        ConfigError::at_least("retention.check_every_seconds", self.check_every_seconds, 1)
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Config;
    use crate::config::tests::MINIMAL;

    #[test]
    fn defaults_keep_run_data_and_anchor_hourly() {
        let c = Config::parse(MINIMAL, Vec::new()).unwrap();
        assert_eq!(c.audit.anchor_every_seconds, 3600);
        assert_eq!(c.audit.anchor_s3_prefix, None);
        assert_eq!(c.audit.refusal_window_seconds, 60);
        assert_eq!(c.retention.run_directories_after_seconds, None);
        assert!(!c.retention.delete_released_objects);
        assert_eq!(c.retention.check_every_seconds, 3600);
    }

    #[test]
    fn bad_values_are_refused_naming_the_key() {
        for (extra, message) in [
            (
                "audit: { anchor_every_seconds: 0 }",
                "audit.anchor_every_seconds: must be at least 1",
            ),
            (
                "audit: { refusal_max_addresses: 0 }",
                "audit.refusal_max_addresses: must be at least 1",
            ),
            (
                "audit: { anchor_s3_prefix: /abs }",
                "audit.anchor_s3_prefix: must be a relative object key prefix",
            ),
            (
                "retention: { run_directories_after_seconds: 0 }",
                "retention.run_directories_after_seconds: must be at least 1",
            ),
            (
                "retention: { check_every_seconds: 0 }",
                "retention.check_every_seconds: must be at least 1",
            ),
            (
                "retention: { keep_forever: true }",
                "retention.keep_forever: unknown field",
            ),
        ] {
            let err = Config::parse(&format!("{MINIMAL}{extra}\n"), Vec::new()).unwrap_err();
            assert!(err.0.starts_with(message), "{extra}: {err}");
        }
        let c = Config::parse(
            &format!("{MINIMAL}retention: {{ run_directories_after_seconds: 86400, delete_released_objects: true }}\n"),
            vec![("SPE__AUDIT__ANCHOR_S3_PREFIX".to_owned(), "audit-anchors".to_owned())],
        )
        .unwrap();
        assert_eq!(c.retention.run_directories_after_seconds, Some(86400));
        assert!(c.retention.delete_released_objects);
        assert_eq!(c.audit.anchor_s3_prefix.as_deref(), Some("audit-anchors"));
    }
}
