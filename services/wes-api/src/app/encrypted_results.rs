//! Results stored Crypt4GH-encrypted (an `encrypt: crypt4gh` egress rule): each download is
//! bound to its reader. The object in the bucket is encrypted to the service's key; a download
//! reads only its header, opens it with the service's secret keys, re-wraps it to the reader's
//! public key(s) and sends that header followed by the object's body as stored, streamed from
//! S3: the body is neither decrypted nor re-encrypted, so a download costs a header. Every
//! download is audited with the fingerprints of the keys it was bound to, before its first
//! byte is sent (docs/crypt4gh.md).

use aws_sdk_s3::primitives::ByteStream;
use spe_core::RunId;
use spe_core::manifest::OutputEncryption;
use spe_core::time::Timestamp;
use spe_crypt4gh::PublicKey;
use spe_store::{ReaderKey, ReaderKeySource};

use crate::auth::Caller;
use crate::error::ApiError;
use crate::startup::AppState;
use actix_web::http::StatusCode;

/// The most of an object read for its header. The crawler writes one recipient's header
/// (about 124 bytes); this bounds what a damaged object could make us read.
const MAX_HEADER_READ: u64 = 64 * 1024;
/// Most keys a token's claim may bind one download to.
const MAX_CLAIM_KEYS: usize = 8;

/// A download bound to its reader: the re-wrapped header, then `body_len` bytes of `body`.
pub struct BoundDownload {
    pub header: Vec<u8>,
    pub body_len: u64,
    pub body: ByteStream,
    pub fingerprints: Vec<String>,
}

fn now() -> Timestamp {
    Timestamp::from_datetime(chrono::Utc::now())
}

/// The caller's keys: those of the token's `crypt4ghPublicKeys` claim that parse (LS-Login's
/// word about the person), else the key they registered. `None` when they have neither.
pub async fn reader_keys(
    state: &AppState,
    caller: &Caller,
) -> Result<Option<(Vec<PublicKey>, ReaderKeySource)>, ApiError> {
    let from_claim: Vec<PublicKey> = caller
        .crypt4gh_public_keys
        .iter()
        .filter_map(|k| PublicKey::from_pem(k).ok())
        .take(MAX_CLAIM_KEYS)
        .collect();
    if !from_claim.is_empty() {
        return Ok(Some((from_claim, ReaderKeySource::TokenClaim)));
    }
    match state.store.reader_key(&caller.subject).await? {
        Some(k) => {
            let key = PublicKey::from_pem(&k.public_key).map_err(ApiError::internal)?;
            Ok(Some((vec![key], ReaderKeySource::Registered)))
        }
        None => Ok(None),
    }
}

/// Registers the caller's public key (the Crypt4GH public key file's text, or its base64
/// line), replacing an earlier one.
pub async fn register_key(
    state: &AppState,
    caller: &Caller,
    text: &str,
) -> Result<ReaderKey, ApiError> {
    let key = PublicKey::from_pem(text).map_err(|e| {
        ApiError::bad_request(format!(
            "not a Crypt4GH public key ({e}); send the key file `crypt4gh-keygen` or \
             `spectl keys generate` wrote"
        ))
    })?;
    let at = now();
    let (pem, fingerprint) = (key.to_pem(), key.fingerprint());
    state
        .store
        .set_reader_key(&caller.subject, &pem, &fingerprint, at)
        .await?;
    Ok(ReaderKey {
        public_key: pem,
        fingerprint,
        registered_at: at,
    })
}

/// `path` of `run` (a released file stored encrypted) for the caller: its header re-wrapped
/// to their key(s), audited, and its body as stored.
pub async fn download(
    state: &AppState,
    caller: &Caller,
    run: RunId,
    path: &str,
) -> Result<BoundDownload, ApiError> {
    let shown: String = path.chars().take(64).collect();
    let file = state
        .store
        .released_files(run)
        .await?
        .into_iter()
        .find(|f| f.path == path)
        .ok_or_else(|| ApiError::not_found(format!("run {run} has no released file {shown:?}")))?;
    if file.encryption != Some(OutputEncryption::Crypt4gh) {
        return Err(ApiError::conflict(format!(
            "{shown} is not stored encrypted: download it through a link \
             (POST /ga4gh/wes/v1/results/{run}/links)"
        )));
    }
    let Some(bucket) = state.results.as_ref() else {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "downloads are not configured on this service (no crawler: section)",
        ));
    };
    if state.service_secret_keys.is_empty() {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "this service has no Crypt4GH secret key (crypt4gh.secret_keys) to re-wrap the \
             file's header to your key",
        ));
    }
    let Some((keys, source)) = reader_keys(state, caller).await? else {
        return Err(ApiError::conflict(
            "this file is Crypt4GH-encrypted and is sent only bound to your own public key: \
             register one with POST /ga4gh/wes/v1/me/crypt4gh-key (`spectl keys register`), \
             or sign in through LS-Login with crypt4ghPublicKeys",
        ));
    };
    let key = spe_core::bucket::object_key(run, &file.path);
    let unavailable = |e: String| {
        tracing::error!(run_id = %run, error = %e, "cannot read an encrypted result");
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "the results store cannot be read now; try again later",
        )
    };
    let prefix = bucket
        .first_bytes(&key, MAX_HEADER_READ)
        .await
        .map_err(unavailable)?;
    let (header, body_at) = spe_crypt4gh::open_prefix(&prefix, &state.service_secret_keys)
        .map_err(|e| {
            ApiError::internal(format!(
                "encrypted result {key}: its header does not open with the service's keys: {e}"
            ))
        })?;
    let rewrapped = header.rewrap(&keys).map_err(ApiError::internal)?;
    let fingerprints: Vec<String> = keys.iter().map(PublicKey::fingerprint).collect();
    state
        .store
        .record_encrypted_download(
            run,
            &file.path,
            &caller.subject,
            &fingerprints,
            source,
            now(),
        )
        .await?;
    let (body_len, body) = bucket
        .stream_from(&key, body_at)
        .await
        .map_err(unavailable)?;
    tracing::info!(target: "spe_audit", run_id = %run, path = %file.path, to = %caller.subject, keys = ?fingerprints, source = source.as_str(), "encrypted result sent bound to its reader");
    Ok(BoundDownload {
        header: rewrapped,
        body_len,
        body,
        fingerprints,
    })
}
