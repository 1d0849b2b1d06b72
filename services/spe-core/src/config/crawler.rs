//! `crawler`: the results crawler, and the results bucket that wes-api presigns links to.

use std::net::SocketAddr;

use serde::Deserialize;

use super::ConfigError;
use super::values::{CronSchedule, HttpUrl};
use crate::secret::Secret;

/// Server-side encryption of the objects the crawler writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum ServerSideEncryption {
    /// SSE-S3: keys managed by the S3 server.
    #[serde(rename = "aes256")]
    Aes256,
    /// SSE-KMS: the key named by `sse_kms_key_id`.
    #[serde(rename = "aws:kms")]
    Kms,
}

/// The results crawler: where released outputs go (an S3 bucket) and how it finds finished runs.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CrawlerConfig {
    /// The results bucket; objects are `<run_id>/<relative path>` and `<run_id>/manifest.json`.
    pub bucket: String,
    /// The S3 endpoint, e.g. `https://s3.example.eu`; the AWS default endpoint when absent.
    #[serde(default)]
    pub endpoint: Option<HttpUrl>,
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
    /// A file holding the keys instead (`access_key=...` and `secret_key=...` lines, mode
    /// 0600): read again whenever it changes, so keys are rotated without a restart.
    #[serde(default)]
    pub credentials_file: Option<std::path::PathBuf>,
    /// Objects written encrypted at rest by the S3 server: `aes256` (SSE-S3) or `aws:kms`
    /// (SSE-KMS, with `sse_kms_key_id`). Unset: the bucket's default.
    #[serde(default)]
    pub server_side_encryption: Option<ServerSideEncryption>,
    /// The KMS key of `server_side_encryption: aws:kms` (its id or ARN).
    #[serde(default)]
    pub sse_kms_key_id: Option<String>,
    /// Files larger than this are uploaded in parts.
    #[serde(default = "default_multipart_threshold")]
    pub multipart_threshold_bytes: u64,
    /// Part size of multipart uploads (S3 wants at least 5 MiB).
    #[serde(default = "default_multipart_part")]
    pub multipart_part_bytes: u64,
    /// Full rescans, as a cron expression with seconds (`sec min hour day month weekday`);
    /// every minute by default. One also runs at start.
    #[serde(default = "default_rescan_cron")]
    pub rescan_cron: CronSchedule,
    /// `notify`: file-system events (inotify); `poll`: stat the tree every
    /// `poll_interval_seconds`, for file systems that give no events (NFS, Lustre, ...).
    #[serde(default)]
    pub watch: CrawlerWatch,
    #[serde(default = "default_crawler_poll_interval")]
    pub poll_interval_seconds: u64,
    /// Where `/metrics` (Prometheus text) is served.
    #[serde(default = "default_metrics_listen")]
    pub metrics_listen: SocketAddr,
    /// Files uploaded at the same time.
    #[serde(default = "default_upload_concurrency")]
    pub upload_concurrency: usize,
    /// Failed uploads (S3 unavailable) are retried with exponential backoff up to this.
    #[serde(default = "default_retry_max_backoff")]
    pub retry_max_backoff_seconds: u64,
    /// How long one crawler holds a file it uploads before another may take it over. Renewed
    /// every third of it while the transfer goes on (a single multi-GiB upload included), so
    /// it can be short: a crashed crawler's files are taken over within it.
    #[serde(default = "default_lease_seconds")]
    pub lease_seconds: u64,
    /// On SIGTERM the crawler claims nothing new and lets transfers under way finish for at
    /// most this long; what is still under way then is handed back (its leases end at once,
    /// for another crawler to take over).
    #[serde(default = "default_stop_grace_seconds")]
    pub stop_grace_seconds: u64,
    /// A run whose directory cannot be walked is tried this many times (with backoff up to
    /// `retry_max_backoff_seconds`), then settled as "egress failed" with the reason.
    #[serde(default = "default_walk_max_attempts")]
    pub walk_max_attempts: u32,
    /// Most entries one walk of a run directory looks at; a run with more is an egress failure.
    #[serde(default = "default_walk_max_entries")]
    pub walk_max_entries: usize,
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
fn default_rescan_cron() -> CronSchedule {
    CronSchedule::every_minute()
}
fn default_crawler_poll_interval() -> u64 {
    10
}
fn default_metrics_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 9464))
}
fn default_upload_concurrency() -> usize {
    4
}
fn default_retry_max_backoff() -> u64 {
    300
}
fn default_lease_seconds() -> u64 {
    15
}
fn default_stop_grace_seconds() -> u64 {
    20
}
fn default_walk_max_attempts() -> u32 {
    5
}
fn default_walk_max_entries() -> usize {
    1_000_000
}
fn default_presign_ttl() -> u64 {
    300
}

impl CrawlerConfig {
    pub(super) fn check(&self) -> Result<(), ConfigError> {
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
        if self.region.trim().is_empty() {
            return Err(ConfigError::at("crawler.region", "must not be empty"));
        }
        if self.credentials_file.is_some() && self.access_key.is_some() {
            return Err(ConfigError::at(
                "crawler.credentials_file",
                "set either credentials_file or access_key and secret_key, not both",
            ));
        }
        match (&self.server_side_encryption, &self.sse_kms_key_id) {
            (Some(ServerSideEncryption::Kms), None) => {
                return Err(ConfigError::at(
                    "crawler.sse_kms_key_id",
                    "server_side_encryption: aws:kms needs the key's id or ARN",
                ));
            }
            (Some(ServerSideEncryption::Aes256) | None, Some(_)) => {
                return Err(ConfigError::at(
                    "crawler.sse_kms_key_id",
                    "only with server_side_encryption: aws:kms",
                ));
            }
            _ => {}
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
        ConfigError::at_least(
            "crawler.multipart_threshold_bytes",
            self.multipart_threshold_bytes,
            1,
        )?;
        ConfigError::at_least(
            "crawler.poll_interval_seconds",
            self.poll_interval_seconds,
            1,
        )?;
        ConfigError::at_least("crawler.upload_concurrency", self.upload_concurrency, 1)?;
        ConfigError::at_least("crawler.lease_seconds", self.lease_seconds, 10)?;
        ConfigError::at_least("crawler.walk_max_attempts", self.walk_max_attempts, 1)?;
        ConfigError::at_least("crawler.walk_max_entries", self.walk_max_entries, 1)?;
        if !(1..=3600).contains(&self.presign_ttl_seconds) {
            return Err(ConfigError::at(
                "crawler.presign_ttl_seconds",
                "from 1 to 3600 (download links are meant to be short-lived)",
            ));
        }
        Ok(())
    }
}
