//! Results access, shared by the API (`routes/results.rs`) and the web UI (`routes/ui.rs`): with
//! whom an owner shares a run's released results (users by `sub`, LS-Login groups by
//! entitlement URN), and the short-lived presigned links that download a released plaintext
//! file. Only files the results crawler released are signed; every link issued is recorded in
//! the store (and so in the audit chain) before it is handed out. Files stored Crypt4GH-encrypted
//! leave only bound to their reader (`app::encrypted_results`).

use std::time::Duration;

use actix_web::http::StatusCode;
use spe_core::time::Timestamp;
use spe_core::{Group, RunId, Subject};
use spe_store::{ResultLink, RunShare, ShareKind, SharePrincipal};

use crate::auth::Caller;
use crate::error::ApiError;
use crate::startup::AppState;

/// Longest subject or group URN accepted.
const MAX_PRINCIPAL: usize = 1024;

fn now() -> Timestamp {
    Timestamp::from_datetime(chrono::Utc::now())
}

fn shorten(text: &str) -> String {
    text.chars().take(64).collect()
}

/// Whom to share with (or stop sharing with), as a client names it: exactly one of `subject`
/// (a user's sub) or `group` (an entitlement URN), and optionally the `issuer` that vouches
/// for it (default: the caller's own).
#[derive(Debug, Default, Clone)]
pub struct ShareTarget {
    pub subject: Option<String>,
    pub group: Option<String>,
    pub issuer: Option<String>,
}

/// The principal `target` names, checked: a trusted issuer, exactly one of subject or group,
/// no spaces or control characters, a group as a URN. 400 with the rule otherwise.
pub fn principal(
    target: ShareTarget,
    caller: &Caller,
    trusted: &[String],
) -> Result<SharePrincipal, ApiError> {
    let issuer = match target.issuer {
        None => caller.subject.issuer().to_owned(),
        Some(i) if trusted.contains(&i) => i,
        Some(i) => {
            return Err(ApiError::bad_request(format!(
                "issuer: {:?} is not an issuer this service trusts; trusted: {}",
                shorten(&i),
                trusted.join(", ")
            )));
        }
    };
    let (kind, value) = match (target.subject, target.group) {
        (Some(s), None) => (ShareKind::Subject, s),
        (None, Some(g)) => (ShareKind::Group, g),
        _ => {
            return Err(ApiError::bad_request(
                "name exactly one of `subject` (a user's sub) or `group` (an entitlement URN)",
            ));
        }
    };
    if value.trim().is_empty()
        || value.len() > MAX_PRINCIPAL
        || value.chars().any(|c| c.is_control() || c.is_whitespace())
    {
        return Err(ApiError::bad_request(format!(
            "{kind}: 1 to {MAX_PRINCIPAL} bytes without spaces or control characters"
        )));
    }
    if kind == ShareKind::Group && !value.starts_with("urn:") {
        return Err(ApiError::bad_request(
            "group: an eduperson_entitlement URN, e.g. \
             urn:geant:lifescience-ri.eu:group:vo:sub#login.aai.lifescience-ri.eu",
        ));
    }
    let invalid =
        |e: spe_core::identity::IdentityError| ApiError::bad_request(format!("{kind}: {e}"));
    Ok(if kind == ShareKind::Group {
        SharePrincipal::Group(Group::new(issuer, value).map_err(invalid)?)
    } else {
        SharePrincipal::User(Subject::new(issuer, value).map_err(invalid)?)
    })
}

/// Shares `run`'s released results with `who` (the guard has checked the caller may share
/// it). Returns whether the share is new, and the share as stored.
pub async fn add_share(
    state: &AppState,
    caller: &Caller,
    run: RunId,
    who: &SharePrincipal,
) -> Result<(bool, RunShare), ApiError> {
    let created = state
        .store
        .add_share(run, who, &caller.subject, now())
        .await?;
    if created {
        tracing::info!(target: "spe_audit", run_id = %run, principal = ?who, by = %caller.subject, "results shared");
    }
    let share = state
        .store
        .shares(run)
        .await?
        .into_iter()
        .find(|s| s.principal == *who)
        .ok_or_else(|| ApiError::conflict("the share was removed meanwhile"))?;
    Ok((created, share))
}

/// Stops sharing `run` with `who`; 404 when it was not shared so. Links issued before stay
/// valid until they expire.
pub async fn remove_share(
    state: &AppState,
    caller: &Caller,
    run: RunId,
    who: &SharePrincipal,
) -> Result<(), ApiError> {
    if !state
        .store
        .remove_share(run, who, &caller.subject, now())
        .await?
    {
        let kind = who.kind();
        return Err(ApiError::not_found(format!(
            "run {run} is not shared with that {kind}"
        )));
    }
    tracing::info!(target: "spe_audit", run_id = %run, principal = ?who, by = %caller.subject, "results share removed");
    Ok(())
}

/// A presigned download link, as issued (and recorded).
pub struct IssuedLink {
    pub id: String,
    /// Carries a signature: handed to the caller, never logged.
    pub url: String,
    pub expires_at: Timestamp,
    pub ttl: Duration,
    pub path: String,
    /// The released file's size and SHA-256; `None` for the package's RO-Crate and receipt.
    pub file: Option<(i64, String)>,
}

/// A presigned GET of `path`, a released plaintext file of `run` (or the package's RO-Crate
/// or receipt), valid for `crawler.presign_ttl_seconds`, recorded (who, when, which object,
/// until when) before it is returned. A file that is not released answers 404; one stored
/// encrypted 409 (it leaves only bound to its reader); no results bucket 503.
pub async fn issue_link(
    state: &AppState,
    caller: &Caller,
    run: RunId,
    path: &str,
) -> Result<IssuedLink, ApiError> {
    // The package's RO-Crate and its signed receipt (docs/ro-crate.md) are the crawler's own
    // objects, not released outputs: linked for whoever may read the results.
    let receipt_part = [
        spe_core::bucket::RO_CRATE_FILE,
        spe_core::bucket::RECEIPT_FILE,
    ]
    .contains(&path);
    let file = if receipt_part {
        None
    } else {
        let file = state
            .store
            .released_files(run)
            .await?
            .into_iter()
            .find(|f| f.path == path)
            .ok_or_else(|| {
                ApiError::not_found(format!(
                    "run {run} has no released file {:?}",
                    shorten(path)
                ))
            })?;
        if file.encryption.is_some() {
            // A presigned GET would hand out the file encrypted to the service's key: it
            // leaves only bound to its reader.
            return Err(ApiError::conflict(format!(
                "{} is stored Crypt4GH-encrypted and is sent only bound to your key: \
                 GET /ga4gh/wes/v1/results/{run}/crypt4gh?path={} (`spectl results download`)",
                shorten(&file.path),
                shorten(&file.path)
            )));
        }
        Some((file.size, file.sha256))
    };
    let Some(bucket) = state.results.as_ref() else {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "downloads are not configured on this service (no crawler: section)",
        ));
    };
    let object_key = spe_core::bucket::object_key(run, path);
    let link = bucket.presign_get(&object_key).await.map_err(|e| {
        tracing::error!(run_id = %run, error = %e, "cannot presign a results link");
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "cannot sign a download link now; try again later",
        )
    })?;
    let expires_at =
        Timestamp::from_datetime(chrono::DateTime::<chrono::Utc>::from(link.expires_at));
    let record = ResultLink {
        id: uuid::Uuid::new_v4().to_string(),
        run_id: run,
        path: path.to_owned(),
        object_key,
        issued_to: caller.subject.clone(),
        issued_at: now(),
        expires_at,
    };
    state.store.record_result_link(&record).await?;
    // The URL carries a signature: it is returned, never logged.
    tracing::info!(target: "spe_audit", link_id = %record.id, run_id = %run, path = %path, to = %caller.subject, expires_at = %expires_at.to_wes(), "results link issued");
    Ok(IssuedLink {
        id: record.id,
        url: link.url,
        expires_at,
        ttl: bucket.ttl(),
        path: record.path,
        file,
    })
}
