//! `slurm`: how wes-api reaches Slurm and what every job gets.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::{ConfigError, default_true};
use crate::runspec::Sandbox;

/// How wes-api reaches Slurm and what every job gets.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlurmConfig {
    /// Off only for API-only test set-ups: runs then stay QUEUED.
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// A command put before every Slurm command, for clusters reached through a login node,
    /// e.g. `[ssh, -o, BatchMode=yes, svc@login-node]`. Arguments after it are shell-quoted.
    #[serde(default)]
    pub command_prefix: Vec<String>,
    /// `--account` for every job.
    #[serde(default)]
    pub account: Option<String>,
    /// `--partition` when the run has no `partition` engine parameter.
    #[serde(default)]
    pub partition: Option<String>,
    /// Path of `spe-runner` on the compute nodes (default: beside the wes-api executable).
    #[serde(default)]
    pub runner: Option<String>,
    /// PATH inside jobs; jobs start with `--export=NONE` and get only what is set here.
    #[serde(default = "default_job_path")]
    pub job_path: String,
    /// Further variables every job gets (an explicit allowlist; never secrets).
    #[serde(default)]
    pub job_env: BTreeMap<String, String>,
    #[serde(default = "default_poll_interval")]
    pub poll_interval_seconds: u64,
    #[serde(default = "default_submit_interval")]
    pub submit_interval_seconds: u64,
    /// Transient sbatch failures are retried this often before the run is a SYSTEM_ERROR.
    #[serde(default = "default_submit_attempts")]
    pub submit_max_attempts: u32,
    #[serde(default = "default_max_backoff")]
    pub submit_max_backoff_seconds: u64,
    #[serde(default = "default_command_timeout")]
    pub command_timeout_seconds: u64,
    /// Where finished jobs are looked up once slurmctld forgets them.
    #[serde(default)]
    pub accounting: SlurmAccounting,
    /// A submitted job that no source knows of for this long ends its run as SYSTEM_ERROR.
    #[serde(default = "default_vanished_after")]
    pub vanished_after_seconds: u64,
    /// How spe-runner isolates the engine: `bubblewrap` (default) or `none`, which is allowed
    /// only where `service.environment` is `dev` (see docs/security.md).
    #[serde(default)]
    pub sandbox: Sandbox,
}

impl Default for SlurmConfig {
    fn default() -> Self {
        SlurmConfig {
            enabled: true,
            command_prefix: Vec::new(),
            account: None,
            partition: None,
            runner: None,
            job_path: default_job_path(),
            job_env: BTreeMap::new(),
            poll_interval_seconds: default_poll_interval(),
            submit_interval_seconds: default_submit_interval(),
            submit_max_attempts: default_submit_attempts(),
            submit_max_backoff_seconds: default_max_backoff(),
            command_timeout_seconds: default_command_timeout(),
            accounting: SlurmAccounting::default(),
            vanished_after_seconds: default_vanished_after(),
            sandbox: Sandbox::default(),
        }
    }
}

/// `sacct` with slurmdbd, `sacct -c` on the job-completion file without it, or `auto`: try
/// the first and fall back to the second.
#[derive(Debug, Deserialize, Default, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum SlurmAccounting {
    #[default]
    Auto,
    Slurmdbd,
    Jobcomp,
}

fn default_job_path() -> String {
    "/usr/local/bin:/usr/bin:/bin".into()
}
fn default_poll_interval() -> u64 {
    2
}
fn default_submit_interval() -> u64 {
    1
}
fn default_submit_attempts() -> u32 {
    20
}
fn default_max_backoff() -> u64 {
    30
}
fn default_command_timeout() -> u64 {
    30
}
fn default_vanished_after() -> u64 {
    300
}

/// Names of job variables that suggest a secret: jobs must never receive one.
const SECRET_HINTS: [&str; 6] = [
    "TOKEN",
    "SECRET",
    "PASSWORD",
    "PASSPHRASE",
    "KEY",
    "CREDENTIAL",
];

impl SlurmConfig {
    pub(super) fn check(&self) -> Result<(), ConfigError> {
        for (name, value) in &self.job_env {
            let key = format!("slurm.job_env.{name}");
            let well_formed = name
                .chars()
                .enumerate()
                .all(|(i, c)| c.is_ascii_uppercase() || c == '_' || (i > 0 && c.is_ascii_digit()));
            if name.is_empty() || !well_formed {
                return Err(ConfigError::at(&key, "variable names are A-Z, 0-9 and _"));
            }
            let upper = name.to_ascii_uppercase();
            if SECRET_HINTS.iter().any(|s| upper.contains(s)) {
                return Err(ConfigError::at(&key, "jobs must not receive secrets"));
            }
            if value.contains(['\n', '\0']) {
                return Err(ConfigError::at(&key, "values must be one line"));
            }
        }
        if self.poll_interval_seconds == 0 || self.submit_interval_seconds == 0 {
            return Err(ConfigError::at(
                "slurm.poll_interval_seconds",
                "intervals must be at least 1",
            ));
        }
        Ok(())
    }
}
