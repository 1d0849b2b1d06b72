//! Results access (an extension): a run's owner shares its released results with users (by
//! `sub`) or LS-Login groups (by entitlement URN) under `/runs/{id}/shares`; those users list
//! them under `/results` and download each released file through a short-lived presigned S3
//! link (`POST /results/{id}/links`). Only files the results crawler released are listed or
//! signed; every link issued is recorded in the store. Runs the caller may not see answer 404.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use serde_json::{Value, json};
use spe_store::{RunShare, SharePrincipal};

use crate::app::results::{self, ShareTarget, principal};
use crate::app::run_access::{SharedResults, VisibleRun};
use crate::auth::Authorized;
use crate::auth::actions::{ResultsRead, ResultsShare};
use crate::error::ApiError;
use crate::http::query_pairs;
use crate::startup::AppState;

/// Most runs `GET /results` lists (newest first).
const MAX_RESULT_RUNS: i64 = 1000;
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

impl ShareBody {
    fn target(self) -> ShareTarget {
        ShareTarget {
            subject: self.subject,
            group: self.group,
            issuer: self.issuer,
        }
    }
}

/// `POST /runs/{run_id}/shares`: the owner (or an operator) shares the run's released results.
/// 201 when new, 200 when it was shared so already.
pub async fn add_share(
    VisibleRun { caller, run, .. }: VisibleRun<ResultsShare>,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let body: ShareBody = crate::http::json_body(&body)?;
    let who = principal(body.target(), &caller, &state.config.auth.trusted_issuers())?;
    let (created, share) = results::add_share(&state, &caller, run.id, &who).await?;
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
    let who = principal(body.target(), &caller, &state.config.auth.trusted_issuers())?;
    results::remove_share(&state, &caller, run.id, &who).await?;
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
    let link = results::issue_link(&state, &caller, run.id, &body.path).await?;
    Ok(HttpResponse::Created().json(json!({
        "link_id": link.id,
        "url": link.url,
        "expires_at": link.expires_at.to_wes(),
        "expires_in_seconds": link.ttl.as_secs(),
        "path": link.path,
        "size": link.file.as_ref().map(|f| f.0),
        "sha256": link.file.as_ref().map(|f| &f.1),
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
