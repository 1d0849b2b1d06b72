//! The one configuration file every service reads (YAML), with single keys overridable from the
//! environment.
//!
//! Loading is split so that this crate stays free of I/O: the binary reads the file and hands
//! the text and its environment to [`Config::parse`].

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::request::WorkflowType;
use crate::secret::{DatabaseUrl, Secret};

mod auth;
pub use auth::*;

/// Environment variables that start with this prefix override one config key each:
/// `SPE__DATABASE__URL=...` sets `database.url`, `SPE__DATA_DIR=...` sets `data_dir`.
pub const ENV_PREFIX: &str = "SPE__";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub service: ServiceConfig,
    #[serde(default)]
    pub server: ServerConfig,
    pub database: DatabaseConfig,
    /// Where run directories live: on a cluster, the shared file system that compute nodes and
    /// the results crawler also see.
    pub data_dir: PathBuf,
    /// Required, with no default, so that switching authentication off is always a visible,
    /// deliberate line in the file.
    pub auth: AuthConfig,
    #[serde(default)]
    pub logging: LoggingConfig,
    pub workflows: WorkflowsConfig,
    #[serde(default)]
    pub slurm: SlurmConfig,
    /// The results crawler; required by that service only.
    #[serde(default)]
    pub crawler: Option<CrawlerConfig>,
}

/// The results crawler: where released outputs go (an S3 bucket) and how it finds finished runs.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CrawlerConfig {
    /// The results bucket; objects are `<run_id>/<relative path>` and `<run_id>/manifest.json`.
    pub bucket: String,
    /// The S3 endpoint, e.g. `https://s3.example.eu`; the AWS default endpoint when absent.
    #[serde(default)]
    pub endpoint: Option<String>,
    #[serde(default = "default_s3_region")]
    pub region: String,
    /// Path-style addressing (`endpoint/bucket/key`), as most self-hosted S3 servers want.
    #[serde(default)]
    pub path_style: bool,
    /// Static credentials (set both, e.g. through `SPE__CRAWLER__ACCESS_KEY` and
    /// `SPE__CRAWLER__SECRET_KEY`); without them the standard AWS chain is used (environment,
    /// profile, web identity, instance metadata).
    #[serde(default)]
    pub access_key: Option<Secret>,
    #[serde(default)]
    pub secret_key: Option<Secret>,
    /// Files larger than this are uploaded in parts.
    #[serde(default = "default_multipart_threshold")]
    pub multipart_threshold_bytes: u64,
    /// Part size of multipart uploads (S3 wants at least 5 MiB).
    #[serde(default = "default_multipart_part")]
    pub multipart_part_bytes: u64,
    /// Full rescans, as a cron expression with seconds (`sec min hour day month weekday`);
    /// every minute by default. One also runs at start.
    #[serde(default = "default_rescan_cron")]
    pub rescan_cron: String,
    /// `notify`: file-system events (inotify); `poll`: stat the tree every
    /// `poll_interval_seconds`, for file systems that give no events (NFS, Lustre, ...).
    #[serde(default)]
    pub watch: CrawlerWatch,
    #[serde(default = "default_crawler_poll_interval")]
    pub poll_interval_seconds: u64,
    /// Where `/metrics` (Prometheus text) is served.
    #[serde(default = "default_metrics_listen")]
    pub metrics_listen: String,
    /// Files uploaded at the same time.
    #[serde(default = "default_upload_concurrency")]
    pub upload_concurrency: usize,
    /// Failed uploads (S3 unavailable) are retried with exponential backoff up to this.
    #[serde(default = "default_retry_max_backoff")]
    pub retry_max_backoff_seconds: u64,
    /// How long one crawler holds a file it uploads before another may take it over; renewed
    /// while the upload goes on.
    #[serde(default = "default_lease_seconds")]
    pub lease_seconds: u64,
    /// wes-api: how long a presigned download link of a released file stays valid
    /// (1 to 3600 seconds).
    #[serde(default = "default_presign_ttl")]
    pub presign_ttl_seconds: u64,
}

#[derive(Debug, Deserialize, Default, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum CrawlerWatch {
    #[default]
    Notify,
    Poll,
}

fn default_s3_region() -> String {
    "us-east-1".into()
}
fn default_multipart_threshold() -> u64 {
    64 * 1024 * 1024
}
fn default_multipart_part() -> u64 {
    16 * 1024 * 1024
}
fn default_rescan_cron() -> String {
    "0 * * * * *".into()
}
fn default_crawler_poll_interval() -> u64 {
    10
}
fn default_metrics_listen() -> String {
    "127.0.0.1:9464".into()
}
fn default_upload_concurrency() -> usize {
    4
}
fn default_retry_max_backoff() -> u64 {
    300
}
fn default_lease_seconds() -> u64 {
    300
}
fn default_presign_ttl() -> u64 {
    300
}

impl CrawlerConfig {
    fn check(&self) -> Result<(), ConfigError> {
        let ok_bucket = (3..=63).contains(&self.bucket.len())
            && self
                .bucket
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.');
        if !ok_bucket {
            return Err(ConfigError::at(
                "crawler.bucket",
                "an S3 bucket name: 3 to 63 lowercase letters, digits, - and .",
            ));
        }
        if let Some(endpoint) = &self.endpoint
            && !(endpoint.starts_with("https://") || endpoint.starts_with("http://"))
        {
            return Err(ConfigError::at(
                "crawler.endpoint",
                "must be an http(s):// URL",
            ));
        }
        if self.region.trim().is_empty() {
            return Err(ConfigError::at("crawler.region", "must not be empty"));
        }
        if self.access_key.is_some() != self.secret_key.is_some() {
            return Err(ConfigError::at(
                "crawler.secret_key",
                "set both access_key and secret_key, or neither (then the AWS chain is used)",
            ));
        }
        if self.multipart_part_bytes < 5 * 1024 * 1024 {
            return Err(ConfigError::at(
                "crawler.multipart_part_bytes",
                "must be at least 5 MiB (5242880)",
            ));
        }
        if self.multipart_threshold_bytes == 0 {
            return Err(ConfigError::at(
                "crawler.multipart_threshold_bytes",
                "must be at least 1",
            ));
        }
        let fields = self.rescan_cron.split_whitespace().count();
        if !(6..=7).contains(&fields) {
            return Err(ConfigError::at(
                "crawler.rescan_cron",
                "a cron expression with seconds, e.g. `0 * * * * *` (every minute)",
            ));
        }
        if self.poll_interval_seconds == 0 {
            return Err(ConfigError::at(
                "crawler.poll_interval_seconds",
                "must be at least 1",
            ));
        }
        if self.metrics_listen.parse::<SocketAddr>().is_err() {
            return Err(ConfigError::at(
                "crawler.metrics_listen",
                "not a socket address such as 127.0.0.1:9464",
            ));
        }
        if self.upload_concurrency == 0 || self.lease_seconds < 10 {
            return Err(ConfigError::at(
                "crawler.upload_concurrency",
                "upload_concurrency must be at least 1 and lease_seconds at least 10",
            ));
        }
        if !(1..=3600).contains(&self.presign_ttl_seconds) {
            return Err(ConfigError::at(
                "crawler.presign_ttl_seconds",
                "from 1 to 3600 (download links are meant to be short-lived)",
            ));
        }
        Ok(())
    }
}

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

/// What `/service-info` says about this deployment.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceConfig {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    pub organization: Organization,
    #[serde(default)]
    pub contact_url: Option<String>,
    #[serde(default)]
    pub documentation_url: Option<String>,
    #[serde(default)]
    pub environment: Option<String>,
    pub auth_instructions_url: String,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Organization {
    pub name: String,
    pub url: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    #[serde(default = "default_listen")]
    pub listen: String,
    /// Largest request body accepted; larger ones get 413.
    #[serde(default = "default_max_body_bytes")]
    pub max_body_bytes: usize,
    #[serde(default = "default_page_size")]
    pub default_page_size: u32,
    #[serde(default = "default_max_page_size")]
    pub max_page_size: u32,
    #[serde(default)]
    pub workers: Option<usize>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: default_listen(),
            max_body_bytes: default_max_body_bytes(),
            default_page_size: default_page_size(),
            max_page_size: default_max_page_size(),
            workers: None,
        }
    }
}

fn default_listen() -> String {
    "127.0.0.1:8080".into()
}
fn default_max_body_bytes() -> usize {
    1024 * 1024
}
fn default_page_size() -> u32 {
    50
}
fn default_max_page_size() -> u32 {
    500
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseConfig {
    /// `sqlite://path/to/file.db` (created on first start) or `postgres://user:pass@host/db`.
    pub url: DatabaseUrl,
    #[serde(default = "default_max_connections")]
    pub max_connections: u32,
    /// How long start-up and requests wait for a database connection.
    #[serde(default = "default_connect_timeout")]
    pub connect_timeout_seconds: u64,
}

fn default_max_connections() -> u32 {
    8
}

fn default_connect_timeout() -> u64 {
    10
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct LoggingConfig {
    #[serde(default)]
    pub format: LogFormat,
    /// A `tracing` filter such as `info` or `wes_api=debug,info`.
    #[serde(default = "default_log_level")]
    pub level: Option<String>,
}

fn default_log_level() -> Option<String> {
    Some("info".into())
}

#[derive(Debug, Deserialize, Default, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    #[default]
    Human,
    Json,
}

/// Which workflow languages and engines this deployment runs, and which engine parameters a
/// researcher may set.
#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct WorkflowsConfig {
    /// Accepted `workflow_type_version`s per `workflow_type`.
    pub types: BTreeMap<WorkflowType, Vec<String>>,
    /// Engines by the name used in `workflow_engine`.
    pub engines: BTreeMap<String, EngineConfig>,
    #[serde(default)]
    pub engine_parameters: Vec<EngineParameterSpec>,
    /// Whether approving a workflow version needs a data controller other than the one who
    /// registered it (four eyes). On by default.
    #[serde(default = "default_true")]
    pub require_distinct_approver: bool,
    /// Where workflows uploaded as tar.gz are unpacked, one read-only folder per version
    /// (default: `<data_dir>/.registry`; see [`Config::upload_dir`]). On a cluster it must be on
    /// the shared file system, like `data_dir`.
    #[serde(default)]
    pub upload_dir: Option<PathBuf>,
    /// Most bytes an uploaded workflow may unpack to (the sum of its files' sizes).
    #[serde(default = "default_upload_max_bytes")]
    pub upload_max_bytes: u64,
}

fn default_upload_max_bytes() -> u64 {
    64 * 1024 * 1024
}

pub(crate) fn default_true() -> bool {
    true
}

#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct EngineConfig {
    pub workflow_type: WorkflowType,
    pub versions: Vec<String>,
    /// The engine executable on compute nodes: a path, or a name found on `slurm.job_path`.
    #[serde(default)]
    pub executable: Option<String>,
}

/// One engine parameter a researcher may set in `workflow_engine_parameters`.
#[derive(Debug, Deserialize, Serialize, Clone, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct EngineParameterSpec {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: EngineParameterKind,
    pub default: String,
    #[serde(default)]
    pub min: Option<i64>,
    #[serde(default)]
    pub max: Option<i64>,
    /// For string parameters: the only values allowed.
    #[serde(default)]
    pub allowed: Option<Vec<String>>,
}

#[derive(Debug, Deserialize, Serialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum EngineParameterKind {
    Integer,
    String,
}

impl EngineParameterKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EngineParameterKind::Integer => "integer",
            EngineParameterKind::String => "string",
        }
    }
}

/// A configuration that cannot be used; the message names the key.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid configuration: {0}")]
pub struct ConfigError(pub String);

impl ConfigError {
    pub(crate) fn at(key: &str, msg: impl std::fmt::Display) -> Self {
        ConfigError(format!("{key}: {msg}"))
    }
}

impl Config {
    /// Parses YAML text, applies `SPE__...` overrides from `env`, and checks the values.
    pub fn parse<I>(yaml: &str, env: I) -> Result<Config, ConfigError>
    where
        I: IntoIterator<Item = (String, String)>,
    {
        let mut doc: serde_yaml::Value =
            serde_yaml::from_str(yaml).map_err(|e| ConfigError(format!("not valid YAML: {e}")))?;
        if doc.is_null() {
            doc = serde_yaml::Value::Mapping(Default::default());
        }
        apply_env_overrides(&mut doc, env)?;
        let config: Config = serde_path_to_error::deserialize(doc).map_err(|e| {
            let path = e.path().to_string();
            ConfigError::at(&path, e.into_inner())
        })?;
        config.check()?;
        Ok(config)
    }

    fn check(&self) -> Result<(), ConfigError> {
        self.server.listen.parse::<SocketAddr>().map_err(|_| {
            ConfigError::at(
                "server.listen",
                "not a socket address such as 127.0.0.1:8080",
            )
        })?;
        if self.server.max_body_bytes < 1024 {
            return Err(ConfigError::at(
                "server.max_body_bytes",
                "must be at least 1024",
            ));
        }
        if self.server.max_page_size == 0 || self.server.default_page_size == 0 {
            return Err(ConfigError::at(
                "server.max_page_size",
                "page sizes must be at least 1",
            ));
        }
        if !(self.database.url.is_sqlite() || self.database.url.is_postgres()) {
            return Err(ConfigError::at(
                "database.url",
                "must start with sqlite: or postgres:// (the value is not shown: it may hold a password)",
            ));
        }
        if self.database.max_connections == 0 {
            return Err(ConfigError::at(
                "database.max_connections",
                "must be at least 1",
            ));
        }
        if self.data_dir.as_os_str().is_empty() {
            return Err(ConfigError::at("data_dir", "must not be empty"));
        }
        for key in [
            ("service.id", &self.service.id),
            ("service.name", &self.service.name),
            ("service.organization.name", &self.service.organization.name),
        ] {
            if key.1.trim().is_empty() {
                return Err(ConfigError::at(key.0, "must not be empty"));
            }
        }
        for (key, url) in [
            (
                "service.organization.url",
                Some(&self.service.organization.url),
            ),
            (
                "service.auth_instructions_url",
                Some(&self.service.auth_instructions_url),
            ),
            ("service.contact_url", self.service.contact_url.as_ref()),
            (
                "service.documentation_url",
                self.service.documentation_url.as_ref(),
            ),
        ] {
            if let Some(url) = url
                && !(url.starts_with("https://")
                    || url.starts_with("http://")
                    || url.starts_with("mailto:"))
            {
                return Err(ConfigError::at(key, "must be an http(s):// or mailto: URL"));
            }
        }
        if let Some(crawler) = &self.crawler {
            crawler.check()?;
        }
        for (name, value) in &self.slurm.job_env {
            let key = format!("slurm.job_env.{name}");
            let well_formed = name
                .chars()
                .enumerate()
                .all(|(i, c)| c.is_ascii_uppercase() || c == '_' || (i > 0 && c.is_ascii_digit()));
            if name.is_empty() || !well_formed {
                return Err(ConfigError::at(&key, "variable names are A-Z, 0-9 and _"));
            }
            let upper = name.to_ascii_uppercase();
            if [
                "TOKEN",
                "SECRET",
                "PASSWORD",
                "PASSPHRASE",
                "KEY",
                "CREDENTIAL",
            ]
            .iter()
            .any(|s| upper.contains(s))
            {
                return Err(ConfigError::at(&key, "jobs must not receive secrets"));
            }
            if value.contains(['\n', '\0']) {
                return Err(ConfigError::at(&key, "values must be one line"));
            }
        }
        if self.slurm.poll_interval_seconds == 0 || self.slurm.submit_interval_seconds == 0 {
            return Err(ConfigError::at(
                "slurm.poll_interval_seconds",
                "intervals must be at least 1",
            ));
        }
        if let AuthConfig::Oidc(oidc) = &self.auth {
            oidc.check()?;
        }
        if self.workflows.types.is_empty() {
            return Err(ConfigError::at(
                "workflows.types",
                "name at least one workflow type",
            ));
        }
        for (ty, versions) in &self.workflows.types {
            if versions.is_empty() {
                return Err(ConfigError::at(
                    &format!("workflows.types.{ty}"),
                    "list at least one version",
                ));
            }
        }
        for (name, engine) in &self.workflows.engines {
            if !self.workflows.types.contains_key(&engine.workflow_type) {
                return Err(ConfigError::at(
                    &format!("workflows.engines.{name}.workflow_type"),
                    format!("{} is not listed in workflows.types", engine.workflow_type),
                ));
            }
            if engine.versions.is_empty() {
                return Err(ConfigError::at(
                    &format!("workflows.engines.{name}.versions"),
                    "list at least one version",
                ));
            }
        }
        if self
            .workflows
            .upload_dir
            .as_ref()
            .is_some_and(|d| d.as_os_str().is_empty())
        {
            return Err(ConfigError::at("workflows.upload_dir", "must not be empty"));
        }
        if self.workflows.upload_max_bytes == 0 {
            return Err(ConfigError::at(
                "workflows.upload_max_bytes",
                "must be at least 1",
            ));
        }
        for (i, spec) in self.workflows.engine_parameters.iter().enumerate() {
            let key = format!("workflows.engine_parameters[{i}]");
            if spec.name.is_empty()
                || !spec
                    .name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_')
            {
                return Err(ConfigError::at(
                    &format!("{key}.name"),
                    "use letters, digits and _ only",
                ));
            }
            spec.check_value(&spec.default)
                .map_err(|e| ConfigError::at(&format!("{key}.default"), e))?;
        }
        Ok(())
    }

    /// Where uploaded workflows are unpacked: `workflows.upload_dir`, else `<data_dir>/.registry`.
    pub fn upload_dir(&self) -> PathBuf {
        self.workflows
            .upload_dir
            .clone()
            .unwrap_or_else(|| self.data_dir.join(".registry"))
    }

    pub fn listen_addr(&self) -> SocketAddr {
        // `check` has verified that it parses.
        self.server
            .listen
            .parse()
            .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 8080)))
    }
}

impl EngineParameterSpec {
    /// Checks one value against this parameter's type and bounds; the message is fit for a
    /// client (it never echoes more than a short prefix of the value).
    pub fn check_value(&self, value: &str) -> Result<(), String> {
        match self.kind {
            EngineParameterKind::Integer => {
                let n: i64 = value.parse().map_err(|_| "must be an integer".to_owned())?;
                if let Some(min) = self.min
                    && n < min
                {
                    return Err(format!("must be at least {min}"));
                }
                if let Some(max) = self.max
                    && n > max
                {
                    return Err(format!("must be at most {max}"));
                }
                Ok(())
            }
            EngineParameterKind::String => match &self.allowed {
                Some(allowed) if !allowed.iter().any(|a| a == value) => {
                    Err(format!("must be one of: {}", allowed.join(", ")))
                }
                _ if value.len() > 256 => Err("must be at most 256 characters".into()),
                _ if value.chars().any(|c| c.is_control()) => {
                    Err("must not contain control characters".into())
                }
                _ => Ok(()),
            },
        }
    }
}

fn apply_env_overrides<I>(doc: &mut serde_yaml::Value, env: I) -> Result<(), ConfigError>
where
    I: IntoIterator<Item = (String, String)>,
{
    let mut overrides: Vec<(String, String)> = env
        .into_iter()
        .filter(|(k, _)| k.starts_with(ENV_PREFIX))
        .collect();
    // Deterministic order, so that a conflicting pair always resolves the same way.
    overrides.sort();
    for (name, raw) in overrides {
        let path: Vec<String> = name[ENV_PREFIX.len()..]
            .split("__")
            .map(|part| part.to_ascii_lowercase())
            .collect();
        if path.iter().any(|p| p.is_empty()) {
            return Err(ConfigError(format!(
                "environment variable {name}: expected {ENV_PREFIX}SECTION__KEY"
            )));
        }
        // Numbers, booleans and flow lists (`[ssh, -o, BatchMode=yes]`) keep their YAML type;
        // anything else is taken as text.
        let value = match serde_yaml::from_str::<serde_yaml::Value>(&raw) {
            Ok(
                v @ (serde_yaml::Value::Bool(_)
                | serde_yaml::Value::Number(_)
                | serde_yaml::Value::Sequence(_)),
            ) => v,
            _ => serde_yaml::Value::String(raw),
        };
        let mut node = &mut *doc;
        for (i, part) in path.iter().enumerate() {
            let map = match node {
                serde_yaml::Value::Mapping(map) => map,
                other => {
                    *other = serde_yaml::Value::Mapping(Default::default());
                    match other {
                        serde_yaml::Value::Mapping(map) => map,
                        _ => unreachable!("just replaced by a mapping"),
                    }
                }
            };
            let key = serde_yaml::Value::String(part.clone());
            if i + 1 == path.len() {
                map.insert(key, value.clone());
                break;
            }
            node = map
                .entry(key)
                .or_insert_with(|| serde_yaml::Value::Mapping(Default::default()));
        }
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) const MINIMAL: &str = r#"
service:
  id: org.example.spe
  name: SPE
  organization: { name: Example, url: "https://example.org" }
  auth_instructions_url: "https://example.org/login"
database:
  url: "sqlite://spe.db"
data_dir: /tmp/runs
auth: disabled
workflows:
  types: { SMK: ["9"], NFL: ["DSL2"] }
  engines:
    snakemake: { workflow_type: SMK, versions: ["9.27"] }
  engine_parameters:
    - { name: cores, type: integer, default: "1", min: 1, max: 8 }
    - { name: partition, type: string, default: debug, allowed: [debug, long] }
"#;

    fn no_env() -> Vec<(String, String)> {
        Vec::new()
    }

    #[test]
    fn minimal_config_parses_with_defaults() {
        let config = Config::parse(MINIMAL, no_env()).unwrap();
        assert_eq!(config.server.listen, "127.0.0.1:8080");
        assert_eq!(config.auth, AuthConfig::Disabled);
        assert_eq!(config.logging.format, LogFormat::Human);
        assert_eq!(config.workflows.types.len(), 2);
        assert!(config.workflows.require_distinct_approver);
        assert_eq!(config.upload_dir(), PathBuf::from("/tmp/runs/.registry"));
        assert_eq!(config.workflows.upload_max_bytes, 64 * 1024 * 1024);
        let env = vec![(
            "SPE__WORKFLOWS__UPLOAD_DIR".to_owned(),
            "/srv/registry".to_owned(),
        )];
        let config = Config::parse(MINIMAL, env).unwrap();
        assert_eq!(config.upload_dir(), PathBuf::from("/srv/registry"));
    }

    #[test]
    fn environment_overrides_single_keys() {
        let env = vec![
            ("SPE__SERVER__LISTEN".to_owned(), "127.0.0.1:0".to_owned()),
            ("SPE__DATABASE__MAX_CONNECTIONS".to_owned(), "3".to_owned()),
            ("SPE__DATA_DIR".to_owned(), "/srv/runs".to_owned()),
            ("UNRELATED".to_owned(), "x".to_owned()),
        ];
        let mut env = env;
        env.push((
            "SPE__SLURM__COMMAND_PREFIX".to_owned(),
            "[ssh, -o, BatchMode=yes, svc@login]".to_owned(),
        ));
        let config = Config::parse(MINIMAL, env).unwrap();
        assert_eq!(config.slurm.command_prefix.len(), 4);
        assert_eq!(config.server.listen, "127.0.0.1:0");
        assert_eq!(config.database.max_connections, 3);
        assert_eq!(config.data_dir, PathBuf::from("/srv/runs"));
    }

    #[test]
    fn errors_name_the_bad_key() {
        let env = vec![(
            "SPE__DATABASE__MAX_CONNECTIONS".to_owned(),
            "many".to_owned(),
        )];
        let err = Config::parse(MINIMAL, env).unwrap_err();
        assert!(err.0.starts_with("database.max_connections:"), "{err}");

        let bad_listen = vec![("SPE__SERVER__LISTEN".to_owned(), "everywhere".to_owned())];
        let err = Config::parse(MINIMAL, bad_listen).unwrap_err();
        assert!(err.0.starts_with("server.listen:"), "{err}");

        let typo = MINIMAL.replace("data_dir:", "datadir:");
        let err = Config::parse(&typo, no_env()).unwrap_err();
        assert!(err.0.contains("datadir"), "{err}");

        let bad_default = MINIMAL.replace("default: \"1\"", "default: \"99\"");
        let err = Config::parse(&bad_default, no_env()).unwrap_err();
        assert!(
            err.0.starts_with("workflows.engine_parameters[0].default:"),
            "{err}"
        );
    }

    #[test]
    fn auth_must_be_stated() {
        let without = MINIMAL.replace("auth: disabled", "");
        let err = Config::parse(&without, no_env()).unwrap_err();
        assert!(err.0.contains("auth"), "{err}");
        let oidc = MINIMAL.replace(
            "auth: disabled",
            "auth:\n  oidc: { issuer: \"https://login.example\", audience: spe }",
        );
        let config = Config::parse(&oidc, no_env()).unwrap();
        assert!(matches!(config.auth, AuthConfig::Oidc(_)));
    }

    #[test]
    fn oidc_settings_per_issuer_roles_and_visa_issuers() {
        let oidc = MINIMAL.replace(
            "auth: disabled",
            r#"auth:
  oidc:
    issuer: "https://login.example/oidc/"
    audience: spe
    algorithms: [RS256, ES256]
    userinfo: { enabled: true }
    introspection: { client_id: spe, client_secret: s3cr3t-value }
    more_issuers:
      - { issuer: "https://other.example", audience: spe2, leeway_seconds: 5 }
    roles:
      entitlements:
        "urn:geant:lifescience-ri.eu:group:spe:researchers#login.example": [researcher]
      subjects:
        "abc@lifescience-ri.eu": [operator, data_controller]
    passports:
      trusted_issuers: [{ iss: "https://visa.example", jku: "https://visa.example/jwks" }]
      accepted_by: [dac]
"#,
        );
        let config = Config::parse(&oidc, no_env()).unwrap();
        let AuthConfig::Oidc(o) = &config.auth else {
            panic!("not oidc")
        };
        let issuers = o.issuers();
        assert_eq!(issuers.len(), 2);
        assert_eq!(issuers[0].leeway_seconds, 30);
        assert_eq!(issuers[1].leeway_seconds, 5);
        assert!(issuers[0].userinfo.enabled);
        assert_eq!(
            o.roles.subjects["abc@lifescience-ri.eu"],
            vec![Role::Operator, Role::DataController]
        );
        assert!(o.passports.require_by);
        assert!(!format!("{config:?}").contains("s3cr3t-value"));

        for (bad, key) in [
            ("algorithms: [HS256]", "auth.oidc.algorithms"),
            ("algorithms: [none]", "auth.oidc.algorithms"),
        ] {
            let text = oidc.replace("algorithms: [RS256, ES256]", bad);
            let err = Config::parse(&text, no_env()).unwrap_err();
            assert!(err.0.starts_with(key), "{err}");
        }
        let text = oidc.replace("\"https://other.example\"", "ftp://x");
        let err = Config::parse(&text, no_env()).unwrap_err();
        assert!(
            err.0.starts_with("auth.oidc.more_issuers[0].issuer"),
            "{err}"
        );
    }

    #[test]
    fn browser_login_settings_and_the_secure_cookie_rule() {
        let with = |browser: &str| {
            MINIMAL.replace(
                "auth: disabled",
                &format!(
                    "auth:\n  oidc:\n    issuer: \"https://login.example\"\n    audience: spe\n    browser: {browser}\n"
                ),
            )
        };
        let config = Config::parse(
            &with(r#"{ client_id: spe-web, client_secret: w3b-s3cret, redirect_url: "https://spe.example/auth/callback" }"#),
            no_env(),
        )
        .unwrap();
        let AuthConfig::Oidc(o) = &config.auth else {
            panic!("not oidc")
        };
        let b = o.browser.as_ref().unwrap();
        assert!(b.cookie_secure);
        assert_eq!(b.after_login_path, "/");
        assert_eq!(b.session_seconds, 8 * 3600);
        assert!(b.scopes.contains(&"ga4gh_passport_v1".to_owned()));
        assert!(!format!("{config:?}").contains("w3b-s3cret"));
        // Secure off: only for a local http redirect.
        assert!(Config::parse(
            &with(r#"{ client_id: w, redirect_url: "http://127.0.0.1:8080/auth/callback", cookie_secure: false }"#),
            no_env()
        )
        .is_ok());
        for (bad, key) in [
            (
                r#"{ client_id: w, redirect_url: "https://spe.example/auth/callback", cookie_secure: false }"#,
                "auth.oidc.browser.cookie_secure",
            ),
            (
                r#"{ client_id: w, redirect_url: "http://spe.example/auth/callback" }"#,
                "auth.oidc.browser.redirect_url",
            ),
            (
                r#"{ client_id: w, redirect_url: "https://spe.example/cb", after_login_path: "//evil.example" }"#,
                "auth.oidc.browser.after_login_path",
            ),
        ] {
            let err = Config::parse(&with(bad), no_env()).unwrap_err();
            assert!(err.0.starts_with(key), "{err}");
        }
    }

    #[test]
    fn database_password_is_never_in_errors() {
        let env = vec![(
            "SPE__DATABASE__URL".to_owned(),
            "mysql://u:topsecret@h/db".to_owned(),
        )];
        let err = Config::parse(MINIMAL, env).unwrap_err();
        assert!(err.0.starts_with("database.url:"));
        assert!(!err.0.contains("topsecret"));
        let config = Config::parse(
            MINIMAL,
            vec![(
                "SPE__DATABASE__URL".to_owned(),
                "postgres://u:topsecret@h/db".to_owned(),
            )],
        )
        .unwrap();
        assert!(!format!("{config:?}").contains("topsecret"));
    }

    #[test]
    fn crawler_section_parses_checks_and_hides_keys() {
        assert!(Config::parse(MINIMAL, no_env()).unwrap().crawler.is_none());
        let with = format!(
            "{MINIMAL}crawler:\n  bucket: spe-results\n  endpoint: http://127.0.0.1:59000\n  path_style: true\n"
        );
        let env = vec![
            ("SPE__CRAWLER__ACCESS_KEY".to_owned(), "AKID".to_owned()),
            (
                "SPE__CRAWLER__SECRET_KEY".to_owned(),
                "s3cr3t-key".to_owned(),
            ),
            ("SPE__CRAWLER__WATCH".to_owned(), "poll".to_owned()),
        ];
        let config = Config::parse(&with, env).unwrap();
        let crawler = config.crawler.as_ref().unwrap();
        assert_eq!(crawler.bucket, "spe-results");
        assert_eq!(crawler.watch, CrawlerWatch::Poll);
        assert_eq!(crawler.rescan_cron, "0 * * * * *");
        assert_eq!(crawler.multipart_threshold_bytes, 64 * 1024 * 1024);
        assert_eq!(crawler.presign_ttl_seconds, 300);
        assert_eq!(crawler.secret_key.as_ref().unwrap().expose(), "s3cr3t-key");
        assert!(!format!("{config:?}").contains("s3cr3t-key"));
        let one_key = vec![("SPE__CRAWLER__ACCESS_KEY".to_owned(), "AKID".to_owned())];
        let err = Config::parse(&with, one_key).unwrap_err();
        assert!(err.0.starts_with("crawler.secret_key"), "{err}");
        let bad_cron = vec![("SPE__CRAWLER__RESCAN_CRON".to_owned(), "* * *".to_owned())];
        let err = Config::parse(&with, bad_cron).unwrap_err();
        assert!(err.0.starts_with("crawler.rescan_cron"), "{err}");
        let small_part = vec![(
            "SPE__CRAWLER__MULTIPART_PART_BYTES".to_owned(),
            "1024".to_owned(),
        )];
        assert!(Config::parse(&with, small_part).is_err());
        let long_links = vec![(
            "SPE__CRAWLER__PRESIGN_TTL_SECONDS".to_owned(),
            "86400".to_owned(),
        )];
        let err = Config::parse(&with, long_links).unwrap_err();
        assert!(err.0.starts_with("crawler.presign_ttl_seconds"), "{err}");
    }
}
