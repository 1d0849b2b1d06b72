//! Results access (an extension): a run's owner shares its released results with users (by
//! `sub`) or LS-Login groups (by entitlement URN) under `/runs/{id}/shares`; those users list
//! them under `/results` and download each released file through a short-lived presigned S3
//! link (`POST /results/{id}/links`). Only files the results crawler released are listed or
//! signed; every link issued is recorded in the store. Runs the caller may not see answer 404.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use serde_json::{Value, json};
use spe_core::time::Timestamp;
use spe_core::{Group, Subject};
use spe_store::{ResultLink, RunShare, ShareKind, SharePrincipal};

use crate::app::run_access::{SharedResults, VisibleRun};
use crate::auth::actions::{ResultsRead, ResultsShare};
use crate::auth::{Authorized, Caller};
use crate::error::ApiError;
use crate::http::query_pairs;
use crate::startup::AppState;

/// Most runs `GET /results` lists (newest first).
const MAX_RESULT_RUNS: i64 = 1000;
/// Longest subject or group URN accepted.
const MAX_PRINCIPAL: usize = 1024;

fn now() -> Timestamp {
    Timestamp::from_datetime(chrono::Utc::now())
}

fn shorten(text: &str) -> String {
    text.chars().take(64).collect()
}

fn share_view(s: &RunShare) -> Value {
    let (issuer, value) = match &s.principal {
        SharePrincipal::User(u) => (u.issuer(), u.sub()),
        SharePrincipal::Group(g) => (g.issuer(), g.urn()),
    };
    let kind = s.principal.kind().as_str();
    json!({
        "run_id": s.run_id.to_string(),
        kind: value,
        "issuer": issuer,
        "created_by": s.created_by,
        "created_at": s.created_at.to_wes(),
    })
}

/// `{"subject": ...}` or `{"group": ...}`, exactly one, and optionally the `issuer` that
/// vouches for it (default: the caller's own).
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ShareBody {
    #[serde(default)]
    subject: Option<String>,
    #[serde(default)]
    group: Option<String>,
    #[serde(default)]
    issuer: Option<String>,
}

fn principal(
    body: ShareBody,
    caller: &Caller,
    trusted: &[String],
) -> Result<SharePrincipal, ApiError> {
    let issuer = match body.issuer {
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
    let (kind, value) = match (body.subject, body.group) {
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

/// `POST /runs/{run_id}/shares`: the owner (or an operator) shares the run's released results.
/// 201 when new, 200 when it was shared so already.
pub async fn add_share(
    VisibleRun { caller, run, .. }: VisibleRun<ResultsShare>,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let body: ShareBody = crate::http::json_body(&body)?;
    let who = principal(body, &caller, &state.config.auth.trusted_issuers())?;
    let created = state
        .store
        .add_share(run.id, &who, &caller.subject, now())
        .await?;
    if created {
        tracing::info!(target: "spe_audit", run_id = %run.id, principal = ?who, by = %caller.subject, "results shared");
    }
    let share = state
        .store
        .shares(run.id)
        .await?
        .into_iter()
        .find(|s| s.principal == who)
        .ok_or_else(|| ApiError::conflict("the share was removed meanwhile"))?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok(HttpResponse::build(status).json(share_view(&share)))
}

/// `GET /runs/{run_id}/shares`: owner or operator.
pub async fn list_shares(
    VisibleRun { run, .. }: VisibleRun<ResultsShare>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let shares = state.store.shares(run.id).await?;
    Ok(HttpResponse::Ok().json(json!({
        "run_id": run.id.to_string(),
        "shares": shares.iter().map(share_view).collect::<Vec<_>>(),
    })))
}

/// `DELETE /runs/{run_id}/shares?subject=...` (or `?group=...`): owner or operator. 204, or
/// 404 when there was no such share. Links issued before stay valid until they expire.
pub async fn remove_share(
    VisibleRun { caller, run, .. }: VisibleRun<ResultsShare>,
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let mut body = ShareBody::default();
    for (key, value) in query_pairs(req.query_string())? {
        let slot = match key.as_str() {
            "subject" => &mut body.subject,
            "group" => &mut body.group,
            "issuer" => &mut body.issuer,
            other => {
                return Err(ApiError::bad_request(format!(
                    "unknown query parameter {:?}; known: subject, group, issuer",
                    shorten(other)
                )));
            }
        };
        if slot.replace(value).is_some() {
            return Err(ApiError::bad_request(format!("{key} given twice")));
        }
    }
    let who = principal(body, &caller, &state.config.auth.trusted_issuers())?;
    if !state
        .store
        .remove_share(
            run.id,
            &who,
            &caller.subject,
            Timestamp::from_datetime(chrono::Utc::now()),
        )
        .await?
    {
        let kind = who.kind();
        return Err(ApiError::not_found(format!(
            "run {} is not shared with that {kind}",
            run.id
        )));
    }
    tracing::info!(target: "spe_audit", run_id = %run.id, principal = ?who, by = %caller.subject, "results share removed");
    Ok(HttpResponse::NoContent().finish())
}

/// `GET /results`: runs the caller owns or that were shared with them, newest first.
pub async fn list(
    Authorized { caller, .. }: Authorized<ResultsRead>,
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    if let Some((key, _)) = query_pairs(req.query_string())?.first() {
        return Err(ApiError::bad_request(format!(
            "unknown query parameter {:?}",
            shorten(key)
        )));
    }
    let runs = state
        .store
        .result_runs(&caller.subject, &caller.groups, MAX_RESULT_RUNS)
        .await?;
    Ok(HttpResponse::Ok().json(json!({
        "results": runs.iter().map(|r| json!({
            "run_id": r.id.to_string(),
            "state": r.state,
            "workflow_url": r.workflow_url,
            "end_time": r.end_time.map(|t| t.to_wes()),
            "shared": !caller.owns(&r.owner),
        })).collect::<Vec<_>>(),
    })))
}

/// `GET /results/{run_id}`: the run's released files (only those).
pub async fn get(
    SharedResults { run, .. }: SharedResults<ResultsRead>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let files = state.store.released_files(run.id).await?;
    Ok(HttpResponse::Ok().json(json!({
        "run_id": run.id.to_string(),
        "state": run.state,
        "workflow_url": run.workflow_url,
        "files": files.iter().map(|f| json!({
            "path": f.path,
            "size": f.size,
            "sha256": f.sha256,
            "released_at": f.released_at.to_wes(),
            "encryption": f.encryption.map(|e| e.as_str()),
        })).collect::<Vec<_>>(),
    })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LinkBody {
    path: String,
}

/// `POST /results/{run_id}/links` `{"path": ...}`: a presigned GET of one released file, valid
/// for `crawler.presign_ttl_seconds`. Recorded (who, when, which object, until when) before it
/// is returned. A file that is not released (pending, held, refused, unknown) answers 404.
pub async fn create_link(
    SharedResults { caller, run, .. }: SharedResults<ResultsRead>,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let body: LinkBody = crate::http::json_body(&body)?;
    // The package's RO-Crate and its signed receipt (docs/ro-crate.md) are the crawler's own
    // objects, not released outputs: linked for whoever may read the results.
    let receipt_part = [
        spe_core::bucket::RO_CRATE_FILE,
        spe_core::bucket::RECEIPT_FILE,
    ]
    .contains(&body.path.as_str());
    let file = if receipt_part {
        spe_store::ReleasedFile {
            path: body.path.clone(),
            size: 0,
            sha256: String::new(),
            released_at: now(),
            encryption: None,
        }
    } else {
        state
            .store
            .released_files(run.id)
            .await?
            .into_iter()
            .find(|f| f.path == body.path)
            .ok_or_else(|| {
                ApiError::not_found(format!(
                    "run {} has no released file {:?}",
                    run.id,
                    shorten(&body.path)
                ))
            })?
    };
    if file.encryption.is_some() {
        // A presigned GET would hand out the file encrypted to the service's key: it leaves
        // only bound to its reader.
        return Err(ApiError::conflict(format!(
            "{} is stored Crypt4GH-encrypted and is sent only bound to your key: \
             GET /ga4gh/wes/v1/results/{}/crypt4gh?path={} (`spectl results download`)",
            shorten(&file.path),
            run.id,
            shorten(&file.path)
        )));
    }
    let Some(bucket) = state.results.as_ref() else {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "downloads are not configured on this service (no crawler: section)",
        ));
    };
    let object_key = spe_core::bucket::object_key(run.id, &file.path);
    let link = bucket.presign_get(&object_key).await.map_err(|e| {
        tracing::error!(run_id = %run.id, error = %e, "cannot presign a results link");
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "cannot sign a download link now; try again later",
        )
    })?;
    let issued_at = now();
    let expires_at =
        Timestamp::from_datetime(chrono::DateTime::<chrono::Utc>::from(link.expires_at));
    let record = ResultLink {
        id: uuid::Uuid::new_v4().to_string(),
        run_id: run.id,
        path: file.path.clone(),
        object_key,
        issued_to: caller.subject.clone(),
        issued_at,
        expires_at,
    };
    state.store.record_result_link(&record).await?;
    // The URL carries a signature: it is returned, never logged.
    tracing::info!(target: "spe_audit", link_id = %record.id, run_id = %run.id, path = %file.path, to = %caller.subject, expires_at = %expires_at.to_wes(), "results link issued");
    Ok(HttpResponse::Created().json(json!({
        "link_id": record.id,
        "url": link.url,
        "expires_at": expires_at.to_wes(),
        "expires_in_seconds": bucket.ttl().as_secs(),
        "path": file.path,
        "size": (!receipt_part).then_some(file.size),
        "sha256": (!receipt_part).then_some(&file.sha256),
    })))
}

/// `GET /results/{run_id}/crypt4gh?path=...`: a released file stored encrypted, as one Crypt4GH
/// file whose header is re-wrapped to the caller's key (`app::encrypted_results`); the body
/// streams from the results bucket as stored.
pub async fn download_encrypted(
    SharedResults { caller, run, .. }: SharedResults<ResultsRead>,
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let path = crate::http::only_query_param(req.query_string(), "path")?;
    let path = path.ok_or_else(|| {
        ApiError::bad_request("name the file: ?path=<its path, as GET /results/{run_id} lists it>")
    })?;
    let download = crate::app::encrypted_results::download(&state, &caller, run.id, &path).await?;
    let file_name: String = path
        .rsplit('/')
        .next()
        .unwrap_or("result")
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        .collect();
    let header = actix_web::web::Bytes::from(download.header);
    let length = header.len() as u64 + download.body_len;
    let head = futures_util::stream::once(async move { Ok::<_, std::io::Error>(header) });
    let body = futures_util::stream::unfold(download.body, |mut body| async move {
        match body.try_next().await {
            Ok(Some(bytes)) => Some((Ok(bytes), body)),
            Ok(None) => None,
            Err(e) => Some((Err(std::io::Error::other(e)), body)),
        }
    });
    use futures_util::StreamExt as _;
    Ok(HttpResponse::Ok()
        .content_type("application/octet-stream")
        .insert_header((
            actix_web::http::header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"{file_name}.c4gh\""),
        ))
        .insert_header(("x-spe-crypt4gh-recipients", download.fingerprints.join(",")))
        .no_chunking(length)
        .streaming(head.chain(body)))
}
