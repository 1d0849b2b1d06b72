//! `spectl results verify RUN_ID`: proves offline-downloaded results are what the service
//! released, under which approvals. Checks, in order, each failure named:
//! 1. the receipt `ro-crate-metadata.json.sig` is an Ed25519 signature of the exact bytes of
//!    `ro-crate-metadata.json` by the key the service publishes (`GET /keys/receipt.pub`);
//! 2. the crate describes this run;
//! 3. every file the signed crate lists is in the folder with the SHA-256 the crate names;
//! 4. the audit chain head the crate carries is a record of the service's chain
//!    (`GET /audit/heads/{sha256}`, same seq).
//!
//! Steps 1 and 4 ask the service; 2 and 3 are local (docs/ro-crate.md).

use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ring::signature::{ED25519, UnparsedPublicKey};
use serde_json::{Value, json};

use crate::api::{Api, Failure};
use crate::download::{destination, sha256_of};

pub const CRATE_FILE: &str = "ro-crate-metadata.json";
pub const RECEIPT_FILE: &str = "ro-crate-metadata.json.sig";

fn fail(msg: impl Into<String>) -> Failure {
    Failure::Verify(msg.into())
}

/// What a verified package is.
pub struct Verified {
    pub files: usize,
    pub chain_seq: i64,
}

pub async fn verify(api: &Api, run_id: &str, dir: &Path) -> Result<Verified, Failure> {
    let crate_path = dir.join(CRATE_FILE);
    let receipt_path = dir.join(RECEIPT_FILE);
    let crate_bytes = std::fs::read(&crate_path).map_err(|e| {
        fail(format!(
            "{}: {e} (download the results with `spectl results download {run_id}` first)",
            crate_path.display()
        ))
    })?;
    let receipt: Value = std::fs::read(&receipt_path)
        .map_err(|e| fail(format!("{}: {e}", receipt_path.display())))
        .and_then(|b| {
            serde_json::from_slice(&b)
                .map_err(|e| fail(format!("{}: not JSON: {e}", receipt_path.display())))
        })?;
    // 1. The signature, by the key the service publishes (not the one the receipt names).
    let published = api.get_text(&["keys", "receipt.pub"]).await?;
    let key = published
        .trim()
        .strip_prefix("ed25519 ")
        .and_then(|b| STANDARD.decode(b).ok())
        .filter(|k| k.len() == 32)
        .ok_or_else(|| fail("the service's receipt key is not an `ed25519 <base64>` line"))?;
    if receipt["algorithm"] != "Ed25519" {
        return Err(fail("the receipt is not an Ed25519 signature"));
    }
    let signature = receipt["signature"]
        .as_str()
        .and_then(|s| STANDARD.decode(s).ok())
        .ok_or_else(|| fail("the receipt has no base64 signature"))?;
    if UnparsedPublicKey::new(&ED25519, &key)
        .verify(&crate_bytes, &signature)
        .is_err()
    {
        let other_key = receipt["public_key"].as_str() != Some(&STANDARD.encode(&key));
        return Err(fail(if other_key {
            "signature check failed: the receipt was signed by another key than the one this \
             service publishes"
                .to_owned()
        } else {
            format!(
                "signature check failed: {CRATE_FILE} is not the crate the service signed (it \
                 was changed after release)"
            )
        }));
    }
    let doc: Value = serde_json::from_slice(&crate_bytes)
        .map_err(|e| fail(format!("{CRATE_FILE}: not JSON: {e}")))?;
    let graph = doc["@graph"]
        .as_array()
        .ok_or_else(|| fail(format!("{CRATE_FILE}: no @graph")))?;
    let entity = |id: &str| graph.iter().find(|e| e["@id"] == id);
    // 2. This run's crate.
    let root = entity("./").ok_or_else(|| fail(format!("{CRATE_FILE}: no root entity")))?;
    if root["identifier"].as_str() != Some(run_id) {
        return Err(fail(format!(
            "the signed crate describes run {}, not {run_id}",
            root["identifier"].as_str().unwrap_or("(none)")
        )));
    }
    // 3. Every released file with the checksum the signed crate names.
    let parts: Vec<&str> = root["hasPart"]
        .as_array()
        .map(|a| a.iter().filter_map(|p| p["@id"].as_str()).collect())
        .unwrap_or_default();
    let mut problems = Vec::new();
    for id in &parts {
        let Some(file) = entity(id) else {
            return Err(fail(format!("{CRATE_FILE}: part {id} has no entity")));
        };
        let (Some(path), Some(want)) = (file["name"].as_str(), file["sha256"].as_str()) else {
            return Err(fail(format!(
                "{CRATE_FILE}: part {id} has no name or sha256"
            )));
        };
        let local = destination(dir, path)?;
        match sha256_of(&local) {
            Ok(got) if got.eq_ignore_ascii_case(want) => {}
            Ok(got) => problems.push(format!(
                "{path}: SHA-256 {got} is not {want}, which the signed crate names (the file \
                 was changed)"
            )),
            Err(e) => problems.push(format!("{path}: {e}")),
        }
    }
    if !problems.is_empty() {
        return Err(fail(problems.join("; ")));
    }
    // 4. The chain head at release is a record of the service's chain.
    let head = entity("#audit-chain-head")
        .ok_or_else(|| fail(format!("{CRATE_FILE}: no audit chain head")))?;
    let (Some(seq), Some(sha)) = (
        head["identifier"]
            .as_str()
            .and_then(|s| s.parse::<i64>().ok()),
        head["value"].as_str(),
    ) else {
        return Err(fail(format!(
            "{CRATE_FILE}: the audit chain head is malformed"
        )));
    };
    let found = match api.get(&["audit", "heads", sha], &[]).await {
        Ok(v) => v["seq"].as_i64(),
        Err(Failure::Api { status: 404, .. }) => None,
        Err(e) => return Err(e),
    };
    if found != Some(seq) {
        return Err(fail(format!(
            "the audit chain head {sha} (seq {seq}) is not one this service issued"
        )));
    }
    Ok(Verified {
        files: parts.len(),
        chain_seq: seq,
    })
}

/// The command: a line (or JSON) saying what was verified.
pub async fn command(
    api: &Api,
    json_out: bool,
    run_id: &str,
    dir: Option<PathBuf>,
) -> Result<(), Failure> {
    let dir = dir.unwrap_or_else(|| PathBuf::from(run_id));
    let v = verify(api, run_id, &dir).await?;
    if json_out {
        crate::print_json(&json!({
            "run_id": run_id, "verified": true, "files": v.files, "audit_chain_seq": v.chain_seq,
        }));
    } else {
        println!(
            "run {run_id}: receipt verified: signature by the service's receipt key, {} files \
             with the SHA-256 the signed RO-Crate names, audit chain head seq {} issued by the \
             service",
            v.files, v.chain_seq
        );
    }
    Ok(())
}
