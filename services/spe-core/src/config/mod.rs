//! The one configuration file every service reads (YAML), with single keys overridable from the
//! environment, one module per section. Every value is deserialised into the type its users
//! need (`SocketAddr`, [`CronSchedule`], [`HttpUrl`], ...) and checked here, at load: a bad
//! value stops the service at start naming its key (and the file, through [`Config::load`]),
//! and no later code parses a config value again or falls back to a default.
//!
//! The only I/O is [`Config::load`] reading the file it is given; [`Config::parse`] takes the
//! text and an environment map, so every rule is tested without files.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::runspec::Sandbox;

mod audit;
mod auth;
mod crawler;
mod crypt4gh;
mod database;
mod env;
mod logging;
mod notifications;
mod quotas;
mod review;
mod server;
mod service;
mod slurm;
mod values;
mod workflows;

pub use audit::{AuditConfig, RetentionConfig};
pub use auth::*;
pub use crawler::{CrawlerConfig, CrawlerWatch, ServerSideEncryption};
pub use crypt4gh::Crypt4ghConfig;
pub use database::DatabaseConfig;
pub use logging::{LogFormat, LoggingConfig};
pub use notifications::{
    EmailConfig, NotificationsConfig, ReceiptsConfig, SecretSource, WebhookConfig,
};
pub use quotas::{GroupQuota, QuotaLimits, QuotasConfig};
pub use review::ReviewConfig;
pub use server::{RateLimitConfig, ServerConfig};
pub use service::{Organization, ServiceConfig};
pub use slurm::{SlurmAccounting, SlurmConfig};
pub use values::{CronSchedule, HttpUrl, LinkUrl};
pub use workflows::{EngineConfig, EngineParameterKind, EngineParameterSpec, WorkflowsConfig};

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
    /// The egress review of held outputs.
    #[serde(default)]
    pub review: ReviewConfig,
    /// How much one user may run.
    #[serde(default)]
    pub quotas: QuotasConfig,
    /// The service's Crypt4GH keys (encrypted datasets, docs/crypt4gh.md).
    #[serde(default)]
    pub crypt4gh: Crypt4ghConfig,
    /// Webhooks and e-mail on run end and review steps (docs/notifications.md).
    #[serde(default)]
    pub notifications: NotificationsConfig,
    /// The key that signs released packages' RO-Crates (egress receipts).
    #[serde(default)]
    pub receipts: ReceiptsConfig,
    /// The audit chain's anchors and the recording of refused tokens.
    #[serde(default)]
    pub audit: AuditConfig,
    /// How long an ended run's data is kept.
    #[serde(default)]
    pub retention: RetentionConfig,
}

pub(crate) fn default_true() -> bool {
    true
}

/// A configuration that cannot be used; the message names the key.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid configuration: {0}")]
pub struct ConfigError(pub String);

impl ConfigError {
    /// An error of one key, e.g. `server.listen: not a socket address`.
    pub fn at(key: &str, msg: impl std::fmt::Display) -> Self {
        ConfigError(format!("{key}: {msg}"))
    }

    /// `Ok` when `value` is at least `min`, else the error `<key>: must be at least <min>`.
    pub fn at_least<T: PartialOrd + std::fmt::Display>(
        key: &str,
        value: T,
        min: T,
    ) -> Result<(), Self> {
        if value < min {
            return Err(ConfigError::at(key, format!("must be at least {min}")));
        }
        Ok(())
    }
}

impl Config {
    /// Reads the file at `path`, applies `SPE__...` overrides from `env` and checks the values;
    /// every error names the file.
    pub fn load<I>(path: &Path, env: I) -> Result<Config, ConfigError>
    where
        I: IntoIterator<Item = (String, String)>,
    {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError(format!("cannot read {}: {e}", path.display())))?;
        Config::parse(&text, env).map_err(|e| ConfigError(format!("{}: {}", path.display(), e.0)))
    }

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
        env::apply_env_overrides(&mut doc, env)?;
        let config: Config = serde_path_to_error::deserialize(doc).map_err(|e| {
            let path = e.path().to_string();
            ConfigError::at(&path, e.into_inner())
        })?;
        config.check()?;
        Ok(config)
    }

    fn check(&self) -> Result<(), ConfigError> {
        self.server.check()?;
        self.database.check()?;
        if self.data_dir.as_os_str().is_empty() {
            return Err(ConfigError::at("data_dir", "must not be empty"));
        }
        self.service.check()?;
        if let Some(crawler) = &self.crawler {
            crawler.check()?;
        }
        self.slurm.check()?;
        self.review.check()?;
        self.quotas.check()?;
        self.crypt4gh.check()?;
        self.notifications.check()?;
        self.audit.check()?;
        self.retention.check()?;
        if self.slurm.sandbox == Sandbox::None && !self.is_dev() {
            return Err(ConfigError::at(
                "slurm.sandbox",
                "none is allowed only where service.environment is dev",
            ));
        }
        if let AuthConfig::Oidc(oidc) = &self.auth {
            oidc.check()?;
        }
        self.workflows.check()
    }

    /// Whether this is a development deployment (`service.environment: dev`), the only kind
    /// that may run jobs without a sandbox.
    pub fn is_dev(&self) -> bool {
        self.service.environment.as_deref() == Some("dev")
    }

    /// Where uploaded workflows are unpacked: `workflows.upload_dir`, else `<data_dir>/.registry`.
    pub fn upload_dir(&self) -> PathBuf {
        self.workflows
            .upload_dir
            .clone()
            .unwrap_or_else(|| self.data_dir.join(".registry"))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::net::SocketAddr;

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

    /// One `SPE__...` override.
    fn env_of(key: &str, value: &str) -> Vec<(String, String)> {
        vec![(key.to_owned(), value.to_owned())]
    }

    /// The config text is refused with an error starting with `key`.
    fn assert_refused(yaml: &str, key: &str) {
        let err = Config::parse(yaml, no_env()).unwrap_err();
        assert!(err.0.starts_with(key), "{err}");
    }

    #[test]
    fn minimal_config_parses_with_defaults() {
        let config = Config::parse(MINIMAL, no_env()).unwrap();
        assert_eq!(
            config.server.listen,
            SocketAddr::from(([127, 0, 0, 1], 8080))
        );
        assert_eq!(config.auth, AuthConfig::Disabled);
        assert_eq!(config.logging.format, LogFormat::Human);
        assert_eq!(config.workflows.types.len(), 2);
        assert!(config.workflows.require_distinct_approver);
        assert_eq!(config.upload_dir(), PathBuf::from("/tmp/runs/.registry"));
        assert_eq!(config.workflows.upload_max_bytes, 64 * 1024 * 1024);
        let env = env_of("SPE__WORKFLOWS__UPLOAD_DIR", "/srv/registry");
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
        assert_eq!(config.server.listen, SocketAddr::from(([127, 0, 0, 1], 0)));
        assert_eq!(config.database.max_connections, 3);
        assert_eq!(config.data_dir, PathBuf::from("/srv/runs"));
    }

    #[test]
    fn errors_name_the_bad_key() {
        let env = env_of("SPE__DATABASE__MAX_CONNECTIONS", "many");
        let err = Config::parse(MINIMAL, env).unwrap_err();
        assert!(err.0.starts_with("database.max_connections:"), "{err}");

        let bad_listen = env_of("SPE__SERVER__LISTEN", "everywhere");
        let err = Config::parse(MINIMAL, bad_listen).unwrap_err();
        assert!(err.0.starts_with("server.listen:"), "{err}");

        let typo = MINIMAL.replace("data_dir:", "datadir:");
        let err = Config::parse(&typo, no_env()).unwrap_err();
        assert!(err.0.contains("datadir"), "{err}");

        let bad_default = MINIMAL.replace("default: \"1\"", "default: \"99\"");
        assert_refused(&bad_default, "workflows.engine_parameters[0].default:");
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
            assert_refused(&text, key);
        }
        let text = oidc.replace("\"https://other.example\"", "ftp://x");
        assert_refused(&text, "auth.oidc.more_issuers[0].issuer");
        // A URL that only looks like one fails at load, not at the first token.
        let text = oidc.replace("\"https://other.example\"", "\"https://\"");
        assert_refused(&text, "auth.oidc.more_issuers[0].issuer");
        let text = oidc.replace("jku: \"https://visa.example/jwks\"", "jku: \"http://[::1\"");
        assert_refused(&text, "auth.oidc.passports.trusted_issuers[0].jku");

        // Roles are per issuer: the main mapping is the first issuer's only; a further issuer
        // maps nothing unless it says so itself.
        assert_eq!(issuers[0].roles, o.roles);
        assert_eq!(issuers[1].roles, RoleMapping::default());
        let own = oidc.replace(
            "leeway_seconds: 5 }",
            "leeway_seconds: 5, roles: { subjects: { \"x@other\": [researcher] } } }",
        );
        let config = Config::parse(&own, no_env()).unwrap();
        let AuthConfig::Oidc(o) = &config.auth else {
            panic!("not oidc")
        };
        assert_eq!(
            o.issuers()[1].roles.subjects["x@other"],
            vec![Role::Researcher]
        );
        assert!(!o.roles.subjects.contains_key("x@other"));
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
            assert_refused(&with(bad), key);
        }
    }

    #[test]
    fn sandbox_defaults_to_bubblewrap_and_none_needs_a_dev_environment() {
        let config = Config::parse(MINIMAL, no_env()).unwrap();
        assert_eq!(config.slurm.sandbox, Sandbox::Bubblewrap);
        let off = env_of("SPE__SLURM__SANDBOX", "none");
        let err = Config::parse(MINIMAL, off.clone()).unwrap_err();
        assert_eq!(
            err.0,
            "slurm.sandbox: none is allowed only where service.environment is dev"
        );
        let dev = MINIMAL.replace("name: SPE\n", "name: SPE\n  environment: dev\n");
        let config = Config::parse(&dev, off).unwrap();
        assert_eq!(config.slurm.sandbox, Sandbox::None);
        assert!(config.is_dev());
        let typo = env_of("SPE__SLURM__SANDBOX", "firejail");
        let err = Config::parse(MINIMAL, typo).unwrap_err();
        assert!(err.0.starts_with("slurm.sandbox:"), "{err}");
    }

    #[test]
    fn database_password_is_never_in_errors() {
        let env = env_of("SPE__DATABASE__URL", "mysql://u:topsecret@h/db");
        let err = Config::parse(MINIMAL, env).unwrap_err();
        assert!(err.0.starts_with("database.url:"));
        assert!(!err.0.contains("topsecret"));
        let config = Config::parse(
            MINIMAL,
            env_of("SPE__DATABASE__URL", "postgres://u:topsecret@h/db"),
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
        assert_eq!(crawler.rescan_cron.as_str(), "0 * * * * *");
        assert_eq!(
            crawler.metrics_listen,
            SocketAddr::from(([127, 0, 0, 1], 9464))
        );
        assert_eq!(
            crawler.endpoint.as_ref().unwrap().as_str(),
            "http://127.0.0.1:59000"
        );
        assert_eq!(crawler.multipart_threshold_bytes, 64 * 1024 * 1024);
        assert_eq!(crawler.presign_ttl_seconds, 300);
        assert_eq!(crawler.secret_key.as_ref().unwrap().expose(), "s3cr3t-key");
        assert!(!format!("{config:?}").contains("s3cr3t-key"));
        let one_key = env_of("SPE__CRAWLER__ACCESS_KEY", "AKID");
        let err = Config::parse(&with, one_key).unwrap_err();
        assert!(err.0.starts_with("crawler.secret_key"), "{err}");
        let bad_cron = env_of("SPE__CRAWLER__RESCAN_CRON", "* * *");
        let err = Config::parse(&with, bad_cron).unwrap_err();
        assert!(err.0.starts_with("crawler.rescan_cron"), "{err}");
        let small_part = env_of("SPE__CRAWLER__MULTIPART_PART_BYTES", "1024");
        assert!(Config::parse(&with, small_part).is_err());
        let long_links = env_of("SPE__CRAWLER__PRESIGN_TTL_SECONDS", "86400");
        let err = Config::parse(&with, long_links).unwrap_err();
        assert!(err.0.starts_with("crawler.presign_ttl_seconds"), "{err}");
    }

    /// Typed values fail at load, each naming its key; the value itself is not echoed.
    #[test]
    fn typed_values_fail_at_load_naming_their_key() {
        let with_crawler = format!("{MINIMAL}crawler:\n  bucket: spe-results\n");
        for (name, value, key) in [
            ("SPE__SERVER__LISTEN", "localhost", "server.listen"),
            ("SPE__SERVER__LISTEN", "127.0.0.1:99999", "server.listen"),
            ("SPE__SERVER__WORKERS", "0", "server.workers"),
            (
                "SPE__CRAWLER__METRICS_LISTEN",
                "9464",
                "crawler.metrics_listen",
            ),
            (
                "SPE__CRAWLER__RESCAN_CRON",
                "* * * * *",
                "crawler.rescan_cron",
            ),
            (
                "SPE__CRAWLER__RESCAN_CRON",
                "0 61 * * * *",
                "crawler.rescan_cron",
            ),
            (
                "SPE__CRAWLER__ENDPOINT",
                "s3.example.eu",
                "crawler.endpoint",
            ),
            (
                "SPE__CRAWLER__ENDPOINT",
                "ftp://s3.example.eu",
                "crawler.endpoint",
            ),
            ("SPE__CRAWLER__LEASE_SECONDS", "5", "crawler.lease_seconds"),
            (
                "SPE__SERVICE__CONTACT_URL",
                "support desk",
                "service.contact_url",
            ),
            (
                "SPE__SERVICE__ORGANIZATION__URL",
                "example.org",
                "service.organization.url",
            ),
            ("SPE__LOGGING__LEVEL", "[info]", "logging.level"),
            (
                "SPE__WORKFLOWS__ENGINES__SNAKEMAKE__VERSIONS",
                "[\"9.27\", latest]",
                "workflows.engines.snakemake.versions[1]",
            ),
        ] {
            let env = vec![(name.to_owned(), value.to_owned())];
            let err = Config::parse(&with_crawler, env).unwrap_err();
            assert!(
                err.0.starts_with(&format!("{key}:")),
                "{name}={value}: {err}"
            );
        }
        let err = Config::parse(&with_crawler, env_of("SPE__CRAWLER__RESCAN_CRON", "hourly"))
            .unwrap_err();
        assert!(
            err.0
                .starts_with("crawler.rescan_cron: not a cron expression with seconds"),
            "{err}"
        );
        let err = Config::parse(
            &with_crawler,
            env_of("SPE__CRAWLER__ENDPOINT", "s3.internal:9000"),
        )
        .unwrap_err();
        assert_eq!(
            err.0,
            "crawler.endpoint: must be an http(s):// URL with a host"
        );
    }

    #[test]
    fn load_names_the_file_in_every_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("spe.yaml");
        std::fs::write(&path, MINIMAL).unwrap();
        let env = env_of("SPE__SERVER__LISTEN", "everywhere");
        let err = Config::load(&path, env).unwrap_err();
        assert!(
            err.0
                .starts_with(&format!("{}: server.listen:", path.display())),
            "{err}"
        );
        assert!(Config::load(&path, no_env()).is_ok());
        let missing = dir.path().join("missing.yaml");
        let err = Config::load(&missing, no_env()).unwrap_err();
        assert!(
            err.0
                .starts_with(&format!("cannot read {}", missing.display())),
            "{err}"
        );
    }
}
