//! A run's Five Safes RO-Crate as the API answers it (`GET /runs/{id}/ro-crate`: built now,
//! from the store, with the audit chain's head now; unsigned: the signed one is the released
//! package's, docs/ro-crate.md), the receipt public key, and whether a chain head is one this
//! service issued (what `spectl results verify` asks of a receipt's head).

use std::path::Path;

use serde_json::Value;
use spe_core::RunId;
use spe_core::rocrate::{CrateChainHead, CrateService};

use crate::error::ApiError;
use crate::startup::AppState;

/// The crate of `run` (which the caller was found to reach).
pub async fn run_crate(state: &AppState, run: RunId) -> Result<Value, ApiError> {
    let facts = state
        .store
        .run_crate_facts(run)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("run {run} not found")))?;
    let head = spe_store::audit::head(&state.store).await?;
    let service = &state.config.service;
    Ok(facts.build(
        CrateService {
            id: &service.id,
            name: &service.name,
            organization: &service.organization.name,
            organization_url: service.organization.url.as_str(),
        },
        head.as_ref().map(|h| CrateChainHead {
            seq: h.seq,
            sha256: &h.sha256,
        }),
    ))
}

/// The seq of the audit record whose SHA-256 is `sha256`, if the chain has one.
pub async fn chain_record(state: &AppState, sha256: &str) -> Result<Option<i64>, ApiError> {
    if sha256.len() != 64 || !sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(ApiError::bad_request("sha256: not 64 hex digits"));
    }
    Ok(spe_store::audit::find(&state.store, sha256).await?)
}

/// Reads the receipt public key file (`ed25519 <base64 of 32 bytes>`) once, at start.
pub fn load_public_key(path: &Path) -> Result<String, String> {
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    let line = text.lines().next().unwrap_or_default().trim().to_owned();
    match line.split_once(' ') {
        Some(("ed25519", b64)) if b64.len() == 44 => Ok(line),
        _ => Err("not an `ed25519 <base64>` public key line".into()),
    }
}
