//! Webhooks: a JSON POST whose body is signed with HMAC-SHA256 under the webhook's secret.
//!
//! The signature covers the exact body bytes, which carry the delivery id (stable across
//! retries) and the time of sending: a receiver checks the signature, refuses a `sent_at` older
//! than a few minutes and drops a delivery id it has seen, so a captured request cannot be
//! replayed. The headers repeat the id and time for receivers that route on headers.

use ring::hmac;
use spe_core::secret::Secret;
use spe_store::Delivery;

use crate::Message;

/// `sha256=<hex of HMAC-SHA256(secret, body)>`.
pub const SIGNATURE_HEADER: &str = "X-SPE-Signature";
pub const DELIVERY_HEADER: &str = "X-SPE-Delivery";
pub const TIMESTAMP_HEADER: &str = "X-SPE-Timestamp";

pub(crate) struct Webhook {
    pub url: String,
    pub secret: Secret,
    pub client: reqwest::Client,
}

/// The header value for `body` under `secret`.
pub fn sign(secret: &[u8], body: &[u8]) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
    format!("sha256={}", hex::encode(hmac::sign(&key, body).as_ref()))
}

/// Whether `header` is the signature of `body` under `secret` (compared in constant time).
pub fn verify_signature(secret: &[u8], body: &[u8], header: &str) -> bool {
    let Some(hex_sig) = header.strip_prefix("sha256=") else {
        return false;
    };
    let Ok(sig) = hex::decode(hex_sig) else {
        return false;
    };
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
    hmac::verify(&key, body, &sig).is_ok()
}

impl Webhook {
    pub(crate) async fn post(&self, d: &Delivery, message: &Message) -> Result<(), String> {
        let sent_at = chrono::Utc::now();
        let delivery_id = d.id.to_string();
        let body = message
            .webhook_body(
                &d.notification,
                &delivery_id,
                &sent_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            )
            .to_string();
        let signature = sign(self.secret.expose().as_bytes(), body.as_bytes());
        let response = self
            .client
            .post(&self.url)
            .header("Content-Type", "application/json")
            .header(SIGNATURE_HEADER, signature)
            .header(DELIVERY_HEADER, &delivery_id)
            .header(TIMESTAMP_HEADER, sent_at.timestamp().to_string())
            .body(body)
            .send()
            .await
            // Without the URL: it may carry a token of the receiver's.
            .map_err(|e| format!("POST failed: {}", e.without_url()))?;
        let status = response.status();
        if status.is_success() {
            Ok(())
        } else {
            Err(format!("the receiver answered {status}"))
        }
    }
}
