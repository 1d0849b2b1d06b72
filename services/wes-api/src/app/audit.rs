//! The audit chain from wes-api's side (the chain itself is `spe_store::audit`):
//!
//! - refused bearer tokens and failed browser logins, which change nothing and which anyone can
//!   cause at will, are counted per client address and written as one record per address per
//!   window (`audit.refusal_window_seconds`), at most `audit.refusal_max_addresses` addresses
//!   apart (the rest as `other`): a flood grows the chain by a bounded number of records;
//! - the chain's head is anchored outside the database: printed to the log (target
//!   `spe_audit`) every `audit.anchor_every_seconds` and on shutdown, and optionally written to
//!   the results bucket (`audit.anchor_s3_prefix`);
//! - the records as the admin listing serves them.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;
use spe_core::config::AuditConfig;
use spe_core::time::Timestamp;
use spe_core::{Actor, ServiceActor};
use spe_store::audit::{self, AuditEntry, AuditKind, ChainHead};
use spe_store::{Store, StoreError};

use crate::results_bucket::ResultsBucket;

/// Counts of refusals in the current window, by (kind, address).
#[derive(Debug)]
pub struct RefusalRecorder {
    counts: Mutex<HashMap<(AuditKind, String), Tally>>,
    max_addresses: usize,
}

#[derive(Debug)]
struct Tally {
    count: u64,
    /// The last reason given (bounded): why tokens from this address were refused.
    reason: String,
}

const OTHER: &str = "other";

impl RefusalRecorder {
    pub fn new(config: &AuditConfig) -> RefusalRecorder {
        RefusalRecorder {
            counts: Mutex::new(HashMap::new()),
            max_addresses: config.refusal_max_addresses,
        }
    }

    /// Counts one refusal (cheap, in memory; written at the end of the window).
    pub fn note(&self, kind: AuditKind, address: Option<IpAddr>, reason: &str) {
        let Ok(mut counts) = self.counts.lock() else {
            return;
        };
        let mut key = (
            kind,
            address.map_or_else(|| "unknown".to_owned(), |a| a.to_string()),
        );
        if !counts.contains_key(&key) && counts.len() >= self.max_addresses {
            key.1 = OTHER.to_owned();
        }
        let tally = counts.entry(key).or_insert(Tally {
            count: 0,
            reason: String::new(),
        });
        tally.count += 1;
        tally.reason = reason.chars().take(200).collect();
    }

    /// Writes one record per (kind, address) counted since the last flush.
    pub async fn flush(&self, store: &Store, window: Duration) -> Result<usize, StoreError> {
        let taken: Vec<((AuditKind, String), Tally)> = match self.counts.lock() {
            Ok(mut counts) => counts.drain().collect(),
            Err(_) => return Ok(0),
        };
        let now = Timestamp::from_datetime(chrono::Utc::now());
        let mut written = 0;
        for ((kind, address), tally) in taken {
            let entry = AuditEntry::new(kind, Actor::Service(ServiceActor::Api))
                .with("address", &address)
                .with("count", tally.count)
                .with("last_reason", &tally.reason)
                .with("window_seconds", window.as_secs());
            audit::record(store, &entry, now).await?;
            written += 1;
        }
        Ok(written)
    }

    pub async fn flush_forever(self: Arc<Self>, store: Store, window: Duration) {
        let mut tick = tokio::time::interval(window);
        tick.tick().await;
        loop {
            tick.tick().await;
            if let Err(e) = self.flush(&store, window).await {
                tracing::error!(error = %e, "cannot record refused tokens in the audit chain");
            }
        }
    }
}

/// Prints the head to the log and, with a bucket, writes it as an object. `None`: the chain is
/// empty (nothing to anchor).
pub async fn anchor(
    store: &Store,
    bucket: Option<(&ResultsBucket, &str)>,
) -> Result<Option<ChainHead>, StoreError> {
    let Some(head) = audit::head(store).await? else {
        tracing::info!(target: "spe_audit", "audit chain anchor: the chain is empty");
        return Ok(None);
    };
    let at = Timestamp::from_datetime(chrono::Utc::now()).to_rfc3339_micros();
    tracing::info!(target: "spe_audit", seq = head.seq, sha256 = %head.sha256, at, "audit chain anchor");
    if let Some((bucket, prefix)) = bucket {
        let key = format!("{prefix}/{:020}-{}.json", head.seq, head.sha256);
        let body = json!({"seq": head.seq, "sha256": head.sha256, "anchored_at": at});
        if let Err(e) = bucket
            .put(&key, body.to_string().into_bytes(), "application/json")
            .await
        {
            tracing::error!(error = %e, key, "cannot write the audit chain anchor to the bucket");
        }
    }
    Ok(Some(head))
}

pub async fn anchor_forever(
    store: Store,
    bucket: Option<Arc<ResultsBucket>>,
    prefix: Option<String>,
    every: Duration,
) {
    let mut tick = tokio::time::interval(every);
    loop {
        tick.tick().await;
        let target = bucket.as_deref().zip(prefix.as_deref());
        if let Err(e) = anchor(&store, target).await {
            tracing::error!(error = %e, "cannot read the audit chain head to anchor it");
        }
    }
}

/// The whole chain read back (in pages of 1,000) and checked from its first record, as
/// `spectl audit verify` does client-side: the head it ends at (`None`: no records yet), or
/// the first place it was changed. Reads every record: the audit page's cost grows with the
/// chain (docs/ui.md).
pub async fn verify_chain(
    store: &Store,
) -> Result<Result<Option<ChainHead>, audit::ChainBreak>, StoreError> {
    let records = audit::all_records(store).await?;
    Ok(audit::verify(&records, None))
}
