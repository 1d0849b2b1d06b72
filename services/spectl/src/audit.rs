//! `spectl audit`: the service's audit hash chain, read through `GET /admin/audit` (operators
//! and data controllers). `verify` checks the chain here, on the client, so that a service (or
//! a database administrator) that rewrote records cannot also vouch for them; `export` writes
//! the records as JSON lines for a SIEM.
//!
//! The hash rule is the store's (`spe_store::audit`; docs/security.md, "Audit chain"): a
//! record's `sha256` is the SHA-256 of the canonical JSON (keys sorted at every level, no
//! whitespace) of `{actor, at, details, kind, prev_sha256, run_id, seq}`, and `prev_sha256` is
//! the previous record's `sha256` (64 zeros for the first). Kept here as well because spectl
//! depends on no service crate.

use std::io::Write;

use clap::Subcommand;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::api::{Api, Failure};

const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

#[derive(Subcommand)]
pub enum AuditCommand {
    /// Walk the whole chain and name the first record changed, deleted, inserted or moved.
    Verify {
        /// A head anchored outside the database (from the service's `audit chain anchor` log
        /// line or its S3 anchor object), as SEQ:SHA256: the chain must still hold it.
        #[arg(long, value_name = "SEQ:SHA256")]
        anchor: Option<String>,
    },
    /// Write the records as JSON lines (one object per line) to standard output.
    Export {
        /// Only records at or after this time (RFC 3339).
        #[arg(long)]
        since: Option<String>,
    },
}

pub async fn command(api: &Api, json: bool, command: AuditCommand) -> Result<(), Failure> {
    match command {
        AuditCommand::Verify { anchor } => {
            let anchor = anchor.map(|a| parse_anchor(&a)).transpose()?;
            let records = fetch_all(api).await?;
            match verify(&records, anchor.as_ref()) {
                Ok(head) => {
                    if json {
                        crate::print_json(
                            &json!({"verified": true, "records": records.len(), "head": head.map(|(seq, sha)| json!({"seq": seq, "sha256": sha}))}),
                        );
                    } else {
                        match head {
                            Some((seq, sha)) => println!(
                                "audit chain verified: {} records, head {seq}:{sha}",
                                records.len()
                            ),
                            None => println!("audit chain verified: it is empty"),
                        }
                    }
                    Ok(())
                }
                Err(broken) => Err(Failure::Other(format!("audit chain broken: {broken}"))),
            }
        }
        AuditCommand::Export { since } => {
            let since = since
                .map(|s| {
                    chrono::DateTime::parse_from_rfc3339(&s)
                        .map(|t| t.timestamp_micros())
                        .map_err(|_| {
                            Failure::Usage(
                                "--since: an RFC 3339 time, e.g. 2026-11-01T00:00:00Z".into(),
                            )
                        })
                })
                .transpose()?;
            let mut out = std::io::stdout().lock();
            let mut after = 0i64;
            loop {
                let page = page(api, after).await?;
                for r in &page.records {
                    if since.is_none_or(|s| r["at"].as_i64().unwrap_or(0) >= s) {
                        writeln!(out, "{r}").map_err(|e| Failure::Other(e.to_string()))?;
                    }
                }
                match page.next {
                    Some(n) => after = n,
                    None => return Ok(()),
                }
            }
        }
    }
}

fn parse_anchor(text: &str) -> Result<(i64, String), Failure> {
    let bad = || Failure::Usage("--anchor: SEQ:SHA256, e.g. 42:3f5a...".into());
    let (seq, sha) = text.split_once(':').ok_or_else(bad)?;
    let seq: i64 = seq.trim().parse().map_err(|_| bad())?;
    let sha = sha.trim().to_ascii_lowercase();
    if sha.len() != 64 || !sha.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(bad());
    }
    Ok((seq, sha))
}

struct Page {
    records: Vec<Value>,
    next: Option<i64>,
}

async fn page(api: &Api, after: i64) -> Result<Page, Failure> {
    let v = api
        .get(
            &["admin", "audit"],
            &[("after_seq", after.to_string()), ("limit", "1000".into())],
        )
        .await?;
    let records = v["records"]
        .as_array()
        .cloned()
        .ok_or_else(|| Failure::Other("the service's answer has no records".into()))?;
    Ok(Page {
        records,
        next: v["next_after_seq"].as_i64(),
    })
}

async fn fetch_all(api: &Api) -> Result<Vec<Value>, Failure> {
    let mut all = Vec::new();
    let mut after = 0;
    loop {
        let p = page(api, after).await?;
        all.extend(p.records);
        match p.next {
            Some(n) => after = n,
            None => return Ok(all),
        }
    }
}

/// JSON with object keys sorted at every level and no whitespace (the chain's hash input).
pub fn canonical_json(value: &Value) -> String {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            let fields: Vec<String> = keys
                .into_iter()
                .map(|k| format!("{}:{}", Value::String(k.clone()), canonical_json(&map[k])))
                .collect();
            format!("{{{}}}", fields.join(","))
        }
        Value::Array(items) => {
            let items: Vec<String> = items.iter().map(canonical_json).collect();
            format!("[{}]", items.join(","))
        }
        scalar => scalar.to_string(),
    }
}

fn seq(r: &Value) -> i64 {
    r["seq"].as_i64().unwrap_or(-1)
}

fn text<'a>(r: &'a Value, key: &str) -> &'a str {
    r[key].as_str().unwrap_or_default()
}

/// The SHA-256 a record's fields give at `seq`.
fn sha256_at(r: &Value, seq: i64) -> String {
    let doc = json!({
        "actor": r["actor"],
        "at": r["at"],
        "details": r["details"],
        "kind": r["kind"],
        "prev_sha256": r["prev_sha256"],
        "run_id": r["run_id"],
        "seq": seq,
    });
    hex::encode(Sha256::digest(canonical_json(&doc).as_bytes()))
}

/// The head the records end at, or the first break, said as `spe_store::audit::ChainBreak`
/// says it.
pub fn verify(
    records: &[Value],
    anchor: Option<&(i64, String)>,
) -> Result<Option<(i64, String)>, String> {
    let mut prev = GENESIS.to_owned();
    for (i, r) in records.iter().enumerate() {
        let expected = i64::try_from(i).unwrap_or(i64::MAX - 1) + 1;
        let s = seq(r);
        if sha256_at(r, s) != text(r, "sha256") {
            return Err(explain(records, i));
        }
        if s != expected {
            return Err(format!(
                "record {expected} was deleted: the chain goes from {} to {s}",
                expected - 1
            ));
        }
        if text(r, "prev_sha256") != prev {
            return Err(format!(
                "record {s} does not follow record {}: its prev_sha256 is not that record's \
                 SHA-256 (the chain was rewritten from here)",
                s - 1
            ));
        }
        prev = text(r, "sha256").to_owned();
    }
    if let Some((anchored_seq, anchored_sha)) = anchor {
        let anchored = format!("{anchored_seq}:{anchored_sha}");
        match records.iter().find(|r| seq(r) == *anchored_seq) {
            Some(r) if text(r, "sha256").eq_ignore_ascii_case(anchored_sha) => {}
            Some(_) => {
                return Err(format!(
                    "record {anchored_seq} is not the anchored head {anchored}: the chain was \
                     rewritten from there or before"
                ));
            }
            None => {
                return Err(format!(
                    "the anchored head {anchored} is missing: the chain ends at {} (records \
                     deleted)",
                    records.last().map(seq).unwrap_or(0)
                ));
            }
        }
    }
    Ok(records
        .last()
        .map(|r| (seq(r), text(r, "sha256").to_owned())))
}

/// Why record `i` fails its hash: the seq its fields were hashed at tells a moved record from
/// a changed one.
fn explain(records: &[Value], i: usize) -> String {
    let r = &records[i];
    let s = seq(r);
    let last = records.iter().map(seq).max().unwrap_or(0) + 1;
    let original = |rec: &Value| (1..=last).find(|n| sha256_at(rec, *n) == text(rec, "sha256"));
    let prev_sha = match i {
        0 => GENESIS,
        _ => text(&records[i - 1], "sha256"),
    };
    let original_is_later = records[i + 1..]
        .iter()
        .any(|other| text(other, "prev_sha256") == prev_sha);
    match original(r) {
        Some(was) if was == s - 1 => {
            format!("record {was} was inserted: the record that was {was} now sits at {s}")
        }
        Some(was) if was == s + 1 && !original_is_later => format!(
            "record {s} was deleted: the chain goes from {} to {was}",
            s - 1
        ),
        Some(was) => format!("records were reordered: record {s} holds what was record {was}"),
        None => match records.get(i + 1).and_then(original) {
            Some(next_was) if next_was == s => format!(
                "record {s} was inserted: the record that was {s} now sits at {}",
                s + 1
            ),
            _ => format!("record {s} was changed: its fields no longer give its SHA-256"),
        },
    }
}
