//! Delivers the notifications outbox (`spe_store` `notifications`, docs/notifications.md):
//! signed webhooks and SMTP e-mail.
//!
//! The rows are written by whoever makes the change (wes-api for run ends and review steps,
//! the results crawler for files held); only wes-api runs this loop, on every instance. Each
//! tick expands new notifications into one delivery per target, claims due deliveries under a
//! lease (so instances sharing a PostgreSQL database never send one at the same time), sends
//! them, and marks each delivered, or due again after an exponential backoff capped at
//! `retry_max_millis`, or failed after `max_attempts`. A crate of its own so that its network
//! clients (HTTP, SMTP) stay out of the store and out of the route code.

mod email;
mod message;
mod webhook;

use std::time::Duration;

use spe_core::config::{NotificationsConfig, SecretSource};
use spe_core::secret::Secret;
use spe_core::time::Timestamp;
use spe_store::{Delivery, DeliveryOutcome, Store};

pub use message::Message;
pub use webhook::{SIGNATURE_HEADER, sign, verify_signature};

/// A configured target that cannot be used (the message names the config key, never a secret).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct NotifyError(pub String);

/// Where one delivery goes.
enum Target {
    Webhook(webhook::Webhook),
    Email(String),
}

/// The delivery loop of one instance.
pub struct Notifier {
    store: Store,
    config: NotificationsConfig,
    /// `(key, target)`; the key is stored with each delivery (`webhook:<name>`, `email:<addr>`).
    targets: Vec<(String, Target)>,
    mailer: Option<email::Mailer>,
    /// This instance's lease owner name.
    instance: String,
}

impl Notifier {
    /// Reads the webhook secrets (a file's first line, or an environment variable) and builds
    /// the clients. `Ok(None)` when no target is configured: rows are kept for later.
    pub fn from_config(
        store: Store,
        config: &NotificationsConfig,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Option<Notifier>, NotifyError> {
        if !config.has_targets() {
            return Ok(None);
        }
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| NotifyError(format!("notifications: HTTP client: {e}")))?;
        let mut targets = Vec::new();
        for (i, hook) in config.webhooks.iter().enumerate() {
            let key = format!("notifications.webhooks[{i}]");
            let secret = read_secret(&hook.secret(), &key, &env)?;
            targets.push((
                format!("webhook:{}", hook.name),
                Target::Webhook(webhook::Webhook {
                    url: hook.url.as_str().to_owned(),
                    secret,
                    client: http.clone(),
                }),
            ));
        }
        let mut mailer = None;
        if let Some(mail) = &config.email {
            mailer = Some(email::Mailer::new(mail)?);
            for address in &mail.controllers {
                targets.push((format!("email:{address}"), Target::Email(address.clone())));
            }
        }
        Ok(Some(Notifier {
            store,
            config: config.clone(),
            targets,
            mailer,
            instance: format!("notify-{}", uuid::Uuid::new_v4().simple()),
        }))
    }

    /// Runs ticks until the process ends; a failing store is logged and retried next tick.
    pub async fn run_forever(self) {
        let every = Duration::from_millis(self.config.poll_every_millis);
        loop {
            if let Err(e) = self.tick(now()).await {
                tracing::warn!(error = %e, "notification delivery tick failed");
            }
            tokio::time::sleep(every).await;
        }
    }

    /// One round: expand, claim, send, record. Returns the deliveries sent successfully.
    pub async fn tick(&self, now: Timestamp) -> Result<usize, spe_store::StoreError> {
        let keys: Vec<String> = self.targets.iter().map(|(k, _)| k.clone()).collect();
        // With e-mail configured, each run's owner is also written to, where their token gave
        // an address when they submitted the run.
        self.store
            .expand_notifications(&keys, self.mailer.is_some(), 100, now)
            .await?;
        let lease = Duration::from_secs(self.config.lease_seconds);
        let claimed = self
            .store
            .claim_deliveries(&self.instance, now, now.plus(lease), 50)
            .await?;
        let mut sent = 0;
        for delivery in claimed {
            let result = self.send(&delivery).await;
            let at = crate::now();
            let outcome = match &result {
                Ok(()) => DeliveryOutcome::Delivered,
                Err(error) if delivery.attempts >= i64::from(self.config.max_attempts) => {
                    DeliveryOutcome::Failed { error }
                }
                Err(error) => DeliveryOutcome::Retry {
                    error,
                    next_attempt_at: at.plus(self.backoff(delivery.attempts)),
                },
            };
            match &outcome {
                DeliveryOutcome::Delivered => {
                    sent += 1;
                    tracing::info!(delivery = delivery.id, target = shown(&delivery.target),
                        event = delivery.notification.event.as_str(),
                        run_id = %delivery.notification.run_id, "notification delivered");
                }
                DeliveryOutcome::Retry { error, .. } => {
                    tracing::warn!(delivery = delivery.id, target = shown(&delivery.target),
                        attempts = delivery.attempts, error = %error,
                        "notification not delivered; will retry");
                }
                DeliveryOutcome::Failed { error } => {
                    tracing::error!(delivery = delivery.id, target = shown(&delivery.target),
                        attempts = delivery.attempts, error = %error,
                        "notification given up after the configured attempts");
                }
            }
            self.store
                .finish_delivery(delivery.id, &self.instance, outcome, at)
                .await?;
        }
        Ok(sent)
    }

    /// The delay before attempt `attempts + 1`: the initial delay doubled per earlier attempt,
    /// capped.
    fn backoff(&self, attempts: i64) -> Duration {
        let doublings = u32::try_from(attempts.saturating_sub(1))
            .unwrap_or(u32::MAX)
            .min(40);
        let millis = self
            .config
            .retry_initial_millis
            .saturating_mul(1u64 << doublings)
            .min(self.config.retry_max_millis);
        Duration::from_millis(millis)
    }

    async fn send(&self, d: &Delivery) -> Result<(), String> {
        let message = Message::of(&d.notification, self.config.public_url.as_ref());
        if let Some(owner) = d.target.strip_prefix(spe_store::OWNER_EMAIL) {
            return match &self.mailer {
                Some(mailer) => mailer.send(owner, &message).await,
                None => Err("e-mail is not configured".to_owned()),
            };
        }
        let Some((_, target)) = self.targets.iter().find(|(k, _)| *k == d.target) else {
            return Err(format!("target {} is no longer configured", d.target));
        };
        match target {
            Target::Webhook(hook) => hook.post(d, &message).await,
            Target::Email(to) => match &self.mailer {
                Some(mailer) => mailer.send(to, &message).await,
                None => Err("e-mail is not configured".to_owned()),
            },
        }
    }
}

/// A delivery's target as logs show it: an owner's address is personal data, so it is not.
fn shown(target: &str) -> &str {
    if target.starts_with(spe_store::OWNER_EMAIL) {
        "owner-email"
    } else {
        target
    }
}

fn read_secret(
    source: &SecretSource,
    key: &str,
    env: &impl Fn(&str) -> Option<String>,
) -> Result<Secret, NotifyError> {
    let value = match source {
        SecretSource::File(path) => std::fs::read_to_string(path)
            .map_err(|e| NotifyError(format!("{key}.secret_file {}: {e}", path.display())))?
            .lines()
            .next()
            .unwrap_or_default()
            .to_owned(),
        SecretSource::Env(var) => {
            env(var).ok_or_else(|| NotifyError(format!("{key}.secret_env: {var} is not set")))?
        }
    };
    if value.trim().is_empty() {
        return Err(NotifyError(format!("{key}: the secret is empty")));
    }
    Ok(Secret::new(value))
}

fn now() -> Timestamp {
    Timestamp::from_datetime(chrono::Utc::now())
}
