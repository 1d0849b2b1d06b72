//! The audit log as one hash chain (migration `0014_audit`; docs/security.md, "Audit chain").
//!
//! Every record holds the SHA-256 of the record before it (`prev_sha256`, [`GENESIS`] for the
//! first) and its own `sha256`: the SHA-256 of the record's canonical JSON ([`canonical_json`]
//! of `{actor, at, details, kind, prev_sha256, run_id, seq}`: keys sorted at every level, no
//! whitespace). Whoever holds the records can check the chain again ([`verify`]; `spectl audit
//! verify` does the same client-side) and is told the first record changed, deleted, inserted
//! or moved; a rewrite of the whole chain is found against a head anchored outside the
//! database ([`ChainHead`], printed to the log and optionally written to S3 by wes-api).
//!
//! Records are appended in the transaction of the change they describe (the store's
//! functions that make a change write its record), or alone for events that change nothing
//! (a refused token, [`record`]). Appends are serialised: each first updates the one row of
//! `audit_chain_lock`, whose lock (a row lock on PostgreSQL, the database's one write lock on
//! SQLite) is held until commit, so that the head read next is the newest and there is one
//! chain, whatever the number of wes-api and crawler instances; `seq` is the primary key, so
//! even a writer that bypassed the lock could not fork the chain.
//!
//! Lock order: an append is the last write of its transaction, so a transaction holding the
//! chain lock waits for no other row, and none waits for it while holding a row it wants (no
//! deadlock between a run's change and another change's record).

use std::fmt;

use serde::Serialize;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use spe_core::time::Timestamp;
use spe_core::{Actor, RunId};
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use crate::{Store, StoreError};

/// `prev_sha256` of the first record.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// What a record says happened. Stored as its [`AuditKind::as_str`] word.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(into = "&'static str")]
pub enum AuditKind {
    /// A browser login that did not complete (refused or failed at the provider).
    LoginFailed,
    /// Bearer tokens refused, aggregated per client address (wes-api's bounded recorder).
    TokenRefused,
    /// A run accepted: the workflow, its approved digest and the datasets it names.
    RunSubmitted,
    /// A run reached a terminal state.
    RunEnded,
    /// A service key was handed to a run (an encrypted dataset is decrypted in its job).
    KeyUsed,
    WorkflowRegistered,
    WorkflowApproved,
    WorkflowRetired,
    DatasetRegistered,
    DatasetRetired,
    /// An output uploaded to the results bucket.
    FileReleased,
    /// An output held for review.
    FileHeld,
    /// An output refused by the rules (never leaves).
    FileRefused,
    /// A review vote cast.
    ReviewVote,
    /// The votes approved a held output.
    FileApproved,
    /// The votes rejected a held output.
    FileRejected,
    /// A released output withdrawn.
    FileRevoked,
    ShareAdded,
    ShareRemoved,
    /// A presigned download link issued.
    LinkIssued,
    /// A Crypt4GH-encrypted result served, its header re-wrapped to the reader's key(s).
    EncryptedDownload,
    /// A person registered (or replaced) their Crypt4GH public key for encrypted downloads.
    ReaderKeyRegistered,
    /// A data controller was granted a time-limited upload into a dataset.
    UploadGranted,
    /// An uploaded file passed the header check and joined its dataset.
    UploadAccepted,
    /// An uploaded file was refused (not Crypt4GH, or not encrypted to the service) and
    /// deleted.
    UploadRefused,
    /// A run's directory (and possibly its released objects) deleted: by the retention
    /// period or at its owner's or an operator's request.
    RunDataDeleted,
}

impl AuditKind {
    pub const ALL: [AuditKind; 26] = [
        AuditKind::LoginFailed,
        AuditKind::TokenRefused,
        AuditKind::RunSubmitted,
        AuditKind::RunEnded,
        AuditKind::KeyUsed,
        AuditKind::WorkflowRegistered,
        AuditKind::WorkflowApproved,
        AuditKind::WorkflowRetired,
        AuditKind::DatasetRegistered,
        AuditKind::DatasetRetired,
        AuditKind::FileReleased,
        AuditKind::FileHeld,
        AuditKind::FileRefused,
        AuditKind::ReviewVote,
        AuditKind::FileApproved,
        AuditKind::FileRejected,
        AuditKind::FileRevoked,
        AuditKind::ShareAdded,
        AuditKind::ShareRemoved,
        AuditKind::LinkIssued,
        AuditKind::RunDataDeleted,
        AuditKind::EncryptedDownload,
        AuditKind::ReaderKeyRegistered,
        AuditKind::UploadGranted,
        AuditKind::UploadAccepted,
        AuditKind::UploadRefused,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AuditKind::LoginFailed => "login.failed",
            AuditKind::TokenRefused => "token.refused",
            AuditKind::RunSubmitted => "run.submitted",
            AuditKind::RunEnded => "run.ended",
            AuditKind::KeyUsed => "key.used",
            AuditKind::WorkflowRegistered => "workflow.registered",
            AuditKind::WorkflowApproved => "workflow.approved",
            AuditKind::WorkflowRetired => "workflow.retired",
            AuditKind::DatasetRegistered => "dataset.registered",
            AuditKind::DatasetRetired => "dataset.retired",
            AuditKind::FileReleased => "file.released",
            AuditKind::FileHeld => "file.held",
            AuditKind::FileRefused => "file.refused",
            AuditKind::ReviewVote => "review.vote",
            AuditKind::FileApproved => "file.approved",
            AuditKind::FileRejected => "file.rejected",
            AuditKind::FileRevoked => "file.revoked",
            AuditKind::ShareAdded => "share.added",
            AuditKind::ShareRemoved => "share.removed",
            AuditKind::LinkIssued => "link.issued",
            AuditKind::EncryptedDownload => "result.downloaded_encrypted",
            AuditKind::ReaderKeyRegistered => "reader_key.registered",
            AuditKind::UploadGranted => "upload.granted",
            AuditKind::UploadAccepted => "upload.accepted",
            AuditKind::UploadRefused => "upload.refused",
            AuditKind::RunDataDeleted => "run.data_deleted",
        }
    }

    pub fn parse(word: &str) -> Option<AuditKind> {
        AuditKind::ALL.into_iter().find(|k| k.as_str() == word)
    }
}

impl From<AuditKind> for &'static str {
    fn from(kind: AuditKind) -> Self {
        kind.as_str()
    }
}

impl fmt::Display for AuditKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A record to append. `details` is a JSON object of identifiers, digests, counts and reasons:
/// never a secret, a file's contents, a dataset's location or a run's parameters.
#[derive(Clone, Debug, PartialEq)]
pub struct AuditEntry {
    pub kind: AuditKind,
    pub actor: Actor,
    pub run_id: Option<RunId>,
    pub details: Map<String, Value>,
}

impl AuditEntry {
    pub fn new(kind: AuditKind, actor: Actor) -> Self {
        AuditEntry {
            kind,
            actor,
            run_id: None,
            details: Map::new(),
        }
    }

    pub fn run(mut self, id: RunId) -> Self {
        self.run_id = Some(id);
        self
    }

    /// Adds one detail (a value that does not serialise is stored as null).
    pub fn with(mut self, key: &str, value: impl Serialize) -> Self {
        self.details.insert(
            key.to_owned(),
            serde_json::to_value(value).unwrap_or(Value::Null),
        );
        self
    }
}

/// The newest record: its seq and SHA-256 (hex). What an anchor keeps outside the database.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ChainHead {
    pub seq: i64,
    pub sha256: String,
}

impl fmt::Display for ChainHead {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.seq, self.sha256)
    }
}

/// A stored record as read back, every field as stored, so that a tampered value is shown
/// (and fails its hash) rather than refused by a decoder. `actor` is `{"issuer","sub"}` or
/// `{"service"}`, or the stored text as a string when it is neither; `details` is the stored
/// JSON, or its text as a string when it does not parse.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AuditRecord {
    pub seq: i64,
    /// Microseconds since the epoch (UTC); hashed.
    pub at: i64,
    pub kind: String,
    pub actor: Value,
    pub run_id: Option<String>,
    pub details: Value,
    pub prev_sha256: String,
    pub sha256: String,
}

impl AuditRecord {
    /// The SHA-256 the record's fields give, with `seq` as stored.
    pub fn computed_sha256(&self) -> String {
        self.sha256_as(self.seq)
    }

    /// The SHA-256 the record's fields would give at another `seq` (to tell a moved record).
    fn sha256_as(&self, seq: i64) -> String {
        let doc = json!({
            "actor": self.actor,
            "at": self.at,
            "details": self.details,
            "kind": self.kind,
            "prev_sha256": self.prev_sha256,
            "run_id": self.run_id,
            "seq": seq,
        });
        hex::encode(Sha256::digest(canonical_json(&doc).as_bytes()))
    }

    pub fn typed_kind(&self) -> Option<AuditKind> {
        AuditKind::parse(&self.kind)
    }

    /// The record's time as RFC 3339 (for SIEMs; not hashed, derived from `at`).
    pub fn time(&self) -> String {
        Timestamp::from_micros(self.at).to_rfc3339_micros()
    }
}

/// JSON with object keys sorted (by their UTF-8 bytes) at every level and no whitespace;
/// strings and numbers as serde_json writes them. The chain's hash input; `spectl` carries the
/// same function.
pub fn canonical_json(value: &Value) -> String {
    let mut out = String::new();
    write_canonical(value, &mut out);
    out
}

fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(key.clone()).to_string());
                out.push(':');
                write_canonical(&map[key.as_str()], out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

/// Appends `entry` on `conn`, which is inside the transaction of the change it describes;
/// waits for the chain lock first (see the module's comment).
pub(crate) async fn append(
    conn: &mut AnyConnection,
    entry: &AuditEntry,
    at: Timestamp,
) -> Result<ChainHead, StoreError> {
    sqlx::query("UPDATE audit_chain_lock SET taken = $1 WHERE id = 1")
        .bind(at.micros())
        .execute(&mut *conn)
        .await?;
    let head = head_on(conn).await?;
    let (seq, prev) = match head {
        Some(h) => (h.seq + 1, h.sha256),
        None => (1, GENESIS.to_owned()),
    };
    let actor = serde_json::to_value(&entry.actor)
        .map_err(|e| StoreError::Corrupt(format!("audit actor: {e}")))?;
    let mut record = AuditRecord {
        seq,
        at: at.micros(),
        kind: entry.kind.as_str().to_owned(),
        actor,
        run_id: entry.run_id.map(|r| r.to_string()),
        details: Value::Object(entry.details.clone()),
        prev_sha256: prev,
        sha256: String::new(),
    };
    record.sha256 = record.computed_sha256();
    sqlx::query(
        "INSERT INTO audit_log (seq, at, kind, actor, run_id, details, prev_sha256, sha256) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(record.seq)
    .bind(record.at)
    .bind(&record.kind)
    .bind(entry.actor.key())
    .bind(record.run_id.clone())
    .bind(canonical_json(&record.details))
    .bind(&record.prev_sha256)
    .bind(&record.sha256)
    .execute(&mut *conn)
    .await?;
    tracing::debug!(seq, kind = %entry.kind, "audit record appended");
    Ok(ChainHead {
        seq,
        sha256: record.sha256,
    })
}

/// Appends a record of an event that changes nothing else (a refused token, a failed login),
/// in a transaction of its own.
pub async fn record(
    store: &Store,
    entry: &AuditEntry,
    at: Timestamp,
) -> Result<ChainHead, StoreError> {
    let _turn = store.write_turn().await;
    let mut tx = store.pool.begin().await?;
    let head = append(&mut tx, entry, at).await?;
    tx.commit().await?;
    Ok(head)
}

async fn head_on(conn: &mut AnyConnection) -> Result<Option<ChainHead>, StoreError> {
    let row = sqlx::query("SELECT seq, sha256 FROM audit_log ORDER BY seq DESC LIMIT 1")
        .fetch_optional(&mut *conn)
        .await?;
    row.map(|r| {
        Ok(ChainHead {
            seq: r.try_get("seq")?,
            sha256: r.try_get("sha256")?,
        })
    })
    .transpose()
}

/// The newest record, or `None` while the chain is empty.
pub async fn head(store: &Store) -> Result<Option<ChainHead>, StoreError> {
    let mut conn = store.pool.acquire().await?;
    head_on(&mut conn).await
}

/// The seq of the record whose SHA-256 is `sha256` (hex, any case), or `None` when no record
/// of the chain has it. (A head a signed receipt carries is checked with this.)
pub async fn find(store: &Store, sha256: &str) -> Result<Option<i64>, StoreError> {
    let row = sqlx::query("SELECT seq FROM audit_log WHERE sha256 = $1")
        .bind(sha256.to_ascii_lowercase())
        .fetch_optional(&store.pool)
        .await?;
    Ok(row.map(|r| r.try_get("seq")).transpose()?)
}

/// Whether `sha256` is the SHA-256 of a record of the chain.
pub async fn contains(store: &Store, sha256: &str) -> Result<bool, StoreError> {
    Ok(find(store, sha256).await?.is_some())
}

/// Up to `limit` records with seq above `after_seq`, in seq order.
pub async fn records(
    store: &Store,
    after_seq: i64,
    limit: i64,
) -> Result<Vec<AuditRecord>, StoreError> {
    let rows = sqlx::query(
        "SELECT seq, at, kind, actor, run_id, details, prev_sha256, sha256 FROM audit_log \
         WHERE seq > $1 ORDER BY seq LIMIT $2",
    )
    .bind(after_seq)
    .bind(limit)
    .fetch_all(&store.pool)
    .await?;
    rows.iter().map(decode).collect()
}

/// Every record, in seq order (read in pages).
pub async fn all_records(store: &Store) -> Result<Vec<AuditRecord>, StoreError> {
    let mut out: Vec<AuditRecord> = Vec::new();
    loop {
        let after = out.last().map(|r| r.seq).unwrap_or(0);
        let page = records(store, after, 1000).await?;
        if page.is_empty() {
            return Ok(out);
        }
        out.extend(page);
    }
}

fn decode(row: &AnyRow) -> Result<AuditRecord, StoreError> {
    let actor_key: String = row.try_get("actor")?;
    let actor = Actor::from_key(&actor_key)
        .ok()
        .and_then(|a| serde_json::to_value(a).ok())
        .unwrap_or(Value::String(actor_key));
    let details_text: String = row.try_get("details")?;
    let details = serde_json::from_str(&details_text).unwrap_or(Value::String(details_text));
    Ok(AuditRecord {
        seq: row.try_get("seq")?,
        at: row.try_get("at")?,
        kind: row.try_get("kind")?,
        actor,
        run_id: row.try_get("run_id")?,
        details,
        prev_sha256: row.try_get("prev_sha256")?,
        sha256: row.try_get("sha256")?,
    })
}

/// The first place where the records are not the chain the service wrote.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ChainBreak {
    #[error("record {seq} was changed: its fields no longer give its SHA-256")]
    Changed { seq: i64 },
    #[error("record {seq} was deleted: the chain goes from {before} to {after}")]
    Deleted { seq: i64, before: i64, after: i64 },
    #[error("record {seq} was inserted: the record that was {seq} now sits at {moved_to}")]
    Inserted { seq: i64, moved_to: i64 },
    #[error("records were reordered: record {seq} holds what was record {was}")]
    Reordered { seq: i64, was: i64 },
    #[error(
        "record {seq} does not follow record {before}: its prev_sha256 is not that record's \
         SHA-256 (the chain was rewritten from here)"
    )]
    Unlinked { seq: i64, before: i64 },
    #[error(
        "record {seq} is not the anchored head {anchored}: the chain was rewritten from there \
         or before"
    )]
    AnchorMismatch { seq: i64, anchored: String },
    #[error("the anchored head {anchored} is missing: the chain ends at {last} (records deleted)")]
    Truncated { anchored: String, last: i64 },
}

impl ChainBreak {
    /// The seq of the first record the break names.
    pub fn seq(&self) -> i64 {
        match self {
            ChainBreak::Changed { seq }
            | ChainBreak::Deleted { seq, .. }
            | ChainBreak::Inserted { seq, .. }
            | ChainBreak::Reordered { seq, .. }
            | ChainBreak::Unlinked { seq, .. }
            | ChainBreak::AnchorMismatch { seq, .. } => *seq,
            ChainBreak::Truncated { last, .. } => *last + 1,
        }
    }
}

/// Walks `records` (all of them, in seq order as stored) and returns the head they end at, or
/// the first break. With `anchor`, a head kept outside the database, the chain must hold that
/// record unchanged.
pub fn verify(
    records: &[AuditRecord],
    anchor: Option<&ChainHead>,
) -> Result<Option<ChainHead>, ChainBreak> {
    let mut prev_sha = GENESIS.to_owned();
    for (i, r) in records.iter().enumerate() {
        let expected = i64::try_from(i).unwrap_or(i64::MAX - 1) + 1;
        if r.computed_sha256() != r.sha256 {
            return Err(explain(records, i));
        }
        if r.seq != expected {
            return Err(ChainBreak::Deleted {
                seq: expected,
                before: expected - 1,
                after: r.seq,
            });
        }
        if r.prev_sha256 != prev_sha {
            return Err(ChainBreak::Unlinked {
                seq: r.seq,
                before: r.seq - 1,
            });
        }
        prev_sha.clone_from(&r.sha256);
    }
    if let Some(anchor) = anchor {
        match records.iter().find(|r| r.seq == anchor.seq) {
            Some(r) if r.sha256.eq_ignore_ascii_case(&anchor.sha256) => {}
            Some(r) => {
                return Err(ChainBreak::AnchorMismatch {
                    seq: r.seq,
                    anchored: anchor.to_string(),
                });
            }
            None => {
                return Err(ChainBreak::Truncated {
                    anchored: anchor.to_string(),
                    last: records.last().map(|r| r.seq).unwrap_or(0),
                });
            }
        }
    }
    Ok(records.last().map(|r| ChainHead {
        seq: r.seq,
        sha256: r.sha256.clone(),
    }))
}

/// Why record `i` fails its hash: the seq its fields were hashed at tells a moved record (a
/// deletion or an insertion renumbered the ones after it, or two were swapped) from a changed
/// one.
fn explain(records: &[AuditRecord], i: usize) -> ChainBreak {
    let r = &records[i];
    let last = records.iter().map(|r| r.seq).max().unwrap_or(0) + 1;
    let original = |rec: &AuditRecord| (1..=last).find(|s| rec.sha256_as(*s) == rec.sha256);
    // The record that was at this seq names the (verified) record before it as its prev: if a
    // later one does, this one was swapped with it rather than shifted by a deletion.
    let prev_sha = match i {
        0 => GENESIS,
        _ => records[i - 1].sha256.as_str(),
    };
    let original_is_later = records[i + 1..]
        .iter()
        .any(|other| other.prev_sha256 == prev_sha);
    match original(r) {
        Some(was) if was == r.seq - 1 => ChainBreak::Inserted {
            seq: was,
            moved_to: r.seq,
        },
        Some(was) if was == r.seq + 1 && !original_is_later => ChainBreak::Deleted {
            seq: r.seq,
            before: r.seq - 1,
            after: was,
        },
        Some(was) => ChainBreak::Reordered { seq: r.seq, was },
        None => match records.get(i + 1).and_then(original) {
            Some(next_was) if next_was == r.seq => ChainBreak::Inserted {
                seq: r.seq,
                moved_to: r.seq + 1,
            },
            _ => ChainBreak::Changed { seq: r.seq },
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_json_sorts_keys_at_every_level() {
        let v = json!({"b": 1, "a": {"z": [true, null, "x\"y"], "c": -2}});
        assert_eq!(
            canonical_json(&v),
            r#"{"a":{"c":-2,"z":[true,null,"x\"y"]},"b":1}"#
        );
    }

    #[test]
    fn kinds_round_trip() {
        for k in AuditKind::ALL {
            assert_eq!(AuditKind::parse(k.as_str()), Some(k));
        }
        assert_eq!(AuditKind::parse("run.teleported"), None);
    }
}
