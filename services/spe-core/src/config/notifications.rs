//! `notifications`: who hears of a run ending and of each review step (docs/notifications.md),
//! and `receipts`: the key that signs a released package's RO-Crate. Secrets are named here
//! (a file or an environment variable), never written here.

use std::path::PathBuf;

use serde::Deserialize;

use super::ConfigError;
use super::values::HttpUrl;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotificationsConfig {
    /// The base of the links in messages (the web UI or API a person opens), e.g.
    /// `https://spe.example.org`; a message links `<public_url>/ga4gh/wes/v1/runs/<id>`.
    #[serde(default)]
    pub public_url: Option<HttpUrl>,
    /// JSON POSTs signed with HMAC-SHA256; each receives every notification.
    #[serde(default)]
    pub webhooks: Vec<WebhookConfig>,
    /// Optional e-mail to the data controllers (and to owners whose address is known).
    #[serde(default)]
    pub email: Option<EmailConfig>,
    /// How often the delivery loop looks for work.
    #[serde(default = "default_poll_every_millis")]
    pub poll_every_millis: u64,
    /// How long a claimed delivery is this instance's alone before another may retry it.
    #[serde(default = "default_lease_seconds")]
    pub lease_seconds: u64,
    /// The first retry's delay; each further one doubles it, up to `retry_max_millis`.
    #[serde(default = "default_retry_initial_millis")]
    pub retry_initial_millis: u64,
    #[serde(default = "default_retry_max_millis")]
    pub retry_max_millis: u64,
    /// Attempts before a delivery is given up (and logged as failed).
    #[serde(default = "default_max_attempts")]
    pub max_attempts: u32,
}

impl Default for NotificationsConfig {
    fn default() -> Self {
        NotificationsConfig {
            public_url: None,
            webhooks: Vec::new(),
            email: None,
            poll_every_millis: default_poll_every_millis(),
            lease_seconds: default_lease_seconds(),
            retry_initial_millis: default_retry_initial_millis(),
            retry_max_millis: default_retry_max_millis(),
            max_attempts: default_max_attempts(),
        }
    }
}

/// Where a secret comes from: exactly one of a file (its first line) or an environment variable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    File(PathBuf),
    Env(String),
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// A short name, unique among the webhooks: a delivery's target is `webhook:<name>`.
    pub name: String,
    pub url: HttpUrl,
    /// A file whose first line is the HMAC secret (mode 0600) ...
    #[serde(default)]
    pub secret_file: Option<PathBuf>,
    /// ... or the name of an environment variable holding it.
    #[serde(default)]
    pub secret_env: Option<String>,
}

impl WebhookConfig {
    /// The secret's source (checked at load: exactly one is set).
    pub fn secret(&self) -> SecretSource {
        match (&self.secret_file, &self.secret_env) {
            (Some(file), _) => SecretSource::File(file.clone()),
            (None, Some(var)) => SecretSource::Env(var.clone()),
            (None, None) => SecretSource::Env(String::new()),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmailConfig {
    /// The SMTP relay, e.g. `mail.example.org`.
    pub smtp_host: String,
    #[serde(default = "default_smtp_port")]
    pub smtp_port: u16,
    /// Upgrade the connection with STARTTLS (required when set).
    #[serde(default)]
    pub starttls: bool,
    /// The sender address, e.g. `spe@example.org`.
    pub from: String,
    /// The data controllers' addresses: each receives every notification.
    #[serde(default)]
    pub controllers: Vec<String>,
}

/// `receipts`: the Ed25519 key that signs each released package's RO-Crate (an egress receipt).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReceiptsConfig {
    /// A PKCS#8 Ed25519 key file (mode 0600), as `spectl keys generate --signing` writes it.
    /// Without it, packages carry an unsigned RO-Crate.
    #[serde(default)]
    pub signing_key: Option<PathBuf>,
    /// The matching public key (`ed25519 <base64>`, as spectl writes it), which wes-api
    /// publishes at `GET /ga4gh/wes/v1/keys/receipt.pub` and in service-info's
    /// `tags.receipt_public_key`. The API never needs the signing key.
    #[serde(default)]
    pub public_key: Option<PathBuf>,
}

fn default_poll_every_millis() -> u64 {
    2_000
}
fn default_lease_seconds() -> u64 {
    60
}
fn default_retry_initial_millis() -> u64 {
    5_000
}
fn default_retry_max_millis() -> u64 {
    3_600_000
}
fn default_max_attempts() -> u32 {
    25
}
fn default_smtp_port() -> u16 {
    25
}

impl NotificationsConfig {
    /// Whether any target is configured (otherwise nothing is delivered, rows are kept).
    pub fn has_targets(&self) -> bool {
        !self.webhooks.is_empty() || self.email.is_some()
    }

    pub(super) fn check(&self) -> Result<(), ConfigError> {
        ConfigError::at_least(
            "notifications.poll_every_millis",
            self.poll_every_millis,
            10,
        )?;
        ConfigError::at_least("notifications.lease_seconds", self.lease_seconds, 1)?;
        ConfigError::at_least(
            "notifications.retry_initial_millis",
            self.retry_initial_millis,
            1,
        )?;
        if self.retry_max_millis < self.retry_initial_millis {
            return Err(ConfigError::at(
                "notifications.retry_max_millis",
                "must be at least notifications.retry_initial_millis",
            ));
        }
        ConfigError::at_least("notifications.max_attempts", self.max_attempts, 1)?;
        let mut names = std::collections::BTreeSet::new();
        for (i, hook) in self.webhooks.iter().enumerate() {
            let key = format!("notifications.webhooks[{i}]");
            if hook.name.trim().is_empty()
                || !hook
                    .name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            {
                return Err(ConfigError::at(
                    &format!("{key}.name"),
                    "must be letters, digits, - or _",
                ));
            }
            if !names.insert(hook.name.as_str()) {
                return Err(ConfigError::at(
                    &format!("{key}.name"),
                    format!("{} is used twice", hook.name),
                ));
            }
            match (&hook.secret_file, &hook.secret_env) {
                (Some(_), None) => {}
                (None, Some(var)) if !var.trim().is_empty() => {}
                _ => {
                    return Err(ConfigError::at(
                        &key,
                        "set exactly one of secret_file or secret_env",
                    ));
                }
            }
        }
        if let Some(email) = &self.email {
            if email.smtp_host.trim().is_empty() {
                return Err(ConfigError::at(
                    "notifications.email.smtp_host",
                    "must not be empty",
                ));
            }
            for (key, address) in std::iter::once(("notifications.email.from", &email.from)).chain(
                email
                    .controllers
                    .iter()
                    .map(|a| ("notifications.email.controllers", a)),
            ) {
                if !plausible_address(address) {
                    return Err(ConfigError::at(
                        key,
                        format!("{address:?} is not an e-mail address"),
                    ));
                }
            }
        }
        Ok(())
    }
}

/// `local@domain`, one `@`, no spaces or angle brackets (which would break SMTP commands).
fn plausible_address(a: &str) -> bool {
    let Some((local, domain)) = a.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && !domain.is_empty()
        && !domain.contains('@')
        && !a
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == '<' || c == '>')
}

#[cfg(test)]
mod tests {
    use crate::config::Config;
    use crate::config::tests::MINIMAL;

    fn parse(extra: &str) -> Result<Config, String> {
        Config::parse(&format!("{MINIMAL}{extra}"), Vec::new()).map_err(|e| e.0)
    }

    #[test]
    fn webhooks_need_exactly_one_secret_source() {
        let err = parse(
            "notifications:\n  webhooks:\n    - { name: ops, url: \"http://127.0.0.1:9/h\" }\n",
        )
        .unwrap_err();
        assert!(
            err.contains("notifications.webhooks[0]: set exactly one of secret_file or secret_env"),
            "{err}"
        );
        let ok = parse(
            "notifications:\n  webhooks:\n    - { name: ops, url: \"http://127.0.0.1:9/h\", secret_env: HOOK }\n",
        )
        .unwrap();
        assert!(ok.notifications.has_targets());
    }

    #[test]
    fn bad_addresses_and_retry_caps_are_refused_by_key() {
        let err = parse(
            "notifications:\n  email: { smtp_host: localhost, from: \"spe@example.org\", controllers: [\"a b@x\"] }\n",
        )
        .unwrap_err();
        assert!(err.contains("notifications.email.controllers"), "{err}");
        let err = parse("notifications: { retry_initial_millis: 10, retry_max_millis: 5 }\n")
            .unwrap_err();
        assert!(err.contains("notifications.retry_max_millis"), "{err}");
    }
}
