//! The egress review (an extension). Data controllers list review requests under
//! `/admin/reviews`, look at one (files, checks, votes, earlier releases of the same workflow),
//! preview a held output, vote per file, return a request to its researcher and revoke a
//! release. A run's owner sees where their outputs stand under `/runs/{id}/egress` and answers
//! a returned request there. States and transitions: docs/egress-review.md.

use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use serde_json::{Value, json};
use spe_core::time::Timestamp;
use spe_store::{
    EgressFile, EgressState, RequestState, ReviewEvent, ReviewEventKind, ReviewFilter,
    ReviewRequest, Vote,
};

use crate::app::review::{self, comment};
use crate::app::run_access::{RunUnderReview, VisibleRun};
use crate::auth::Authorized;
use crate::auth::actions::{ReviewsAnswer, ReviewsManage, RunsRead};
use crate::error::ApiError;
use crate::http::query_pairs;
use crate::startup::AppState;

/// Most requests one listing returns (oldest first).
const MAX_REQUESTS: i64 = 500;
/// Earlier runs of the same workflow version looked at for releases on the same datasets.
const EARLIER_RUNS: i64 = 20;

fn request_view(r: &ReviewRequest) -> Value {
    json!({
        "run_id": r.run_id.to_string(),
        "workflow": r.workflow_url,
        "owner": r.owner,
        "opened_at": r.opened_at.to_rfc3339_micros(),
        "held_files": r.held_files,
        "state": r.state,
        "overdue": r.overdue_reported,
    })
}

/// Where one file's review stands: its votes this round and what they come to.
fn review_of(f: &EgressFile, events: &[ReviewEvent], required: u32) -> Value {
    let standing = review::standing(f, events, required);
    json!({
        "decision": standing.decision,
        "round": f.review_round,
        "approvals": standing.count(Vote::Approve),
        "rejections": standing.count(Vote::Reject),
        "votes": standing.votes.iter().map(|e| json!({
            "reviewer": e.actor,
            "vote": e.vote,
            "comment": e.comment,
            "sha256": e.sha256,
            "at": e.at.to_rfc3339_micros(),
        })).collect::<Vec<_>>(),
    })
}

fn event_view(e: &ReviewEvent) -> Value {
    json!({
        "kind": e.kind,
        "path": e.path,
        "vote": e.vote,
        "by": e.actor,
        "comment": e.comment,
        "sha256": e.sha256,
        "round": e.round,
        "at": e.at.to_rfc3339_micros(),
    })
}

/// `GET /admin/reviews?state=open|returned|decided&workflow=name@version&older_than=<seconds>`.
pub async fn list(
    Authorized { .. }: Authorized<ReviewsManage>,
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let mut filter = ReviewFilter::default();
    for (key, value) in query_pairs(req.query_string())? {
        match key.as_str() {
            "state" => {
                filter.state = Some(RequestState::parse(&value).ok_or_else(|| {
                    ApiError::bad_request("state: one of open, returned, decided")
                })?)
            }
            "workflow" => {
                spe_core::manifest::WorkflowRef::parse(&value)
                    .map_err(|e| ApiError::bad_request(format!("workflow: {e}")))?;
                filter.workflow_url = Some(value);
            }
            "older_than" => {
                let secs: i64 = value
                    .parse()
                    .ok()
                    .filter(|s| (0..=10 * 365 * 86_400).contains(s))
                    .ok_or_else(|| {
                        ApiError::bad_request("older_than: a number of seconds, 0 to 315360000")
                    })?;
                let now = Timestamp::from_datetime(chrono::Utc::now());
                filter.opened_before =
                    Some(Timestamp::from_micros(now.micros() - secs * 1_000_000));
            }
            other => {
                return Err(ApiError::bad_request(format!(
                    "unknown query parameter {:?}: use state, workflow or older_than",
                    other.chars().take(64).collect::<String>()
                )));
            }
        }
    }
    let requests = state.store.review_requests(&filter, MAX_REQUESTS).await?;
    Ok(HttpResponse::Ok().json(json!({
        "requests": requests.iter().map(request_view).collect::<Vec<_>>(),
    })))
}

/// `GET /admin/reviews/{run_id}`: the request with each file's metadata, checks and votes, its
/// history, and earlier releases of the same workflow version (for a differencing check).
pub async fn get(
    RunUnderReview { run, caller, .. }: RunUnderReview<ReviewsManage>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let store = &state.store;
    let required = state.config.review.approvals_required;
    let files = store.egress_files(run.id).await?;
    let events = store.review_events(run.id).await?;
    let request_state = store.review_request_state(run.id).await?;
    let (datasets, earlier) = review::earlier_releases(&state, &run, EARLIER_RUNS).await?;
    Ok(HttpResponse::Ok().json(json!({
        "run_id": run.id.to_string(),
        "workflow": run.submission.workflow_url,
        "owner": run.owner,
        "run_state": run.state,
        "datasets": datasets,
        "state": request_state,
        "approvals_required": required,
        "you_may_vote": !caller.owns(&run.owner),
        "files": files.iter().map(|f| json!({
            "path": f.path,
            "state": f.state,
            "size": f.size,
            "reason": f.reason,
            "held_at": f.held_at.map(|t| t.to_rfc3339_micros()),
            "released_sha256": f.sha256,
            "checks": f.checks,
            "review": review_of(f, &events, required),
        })).collect::<Vec<_>>(),
        "events": events.iter().map(event_view).collect::<Vec<_>>(),
        "earlier_releases": earlier.iter().map(|(id, files)| json!({
            "run_id": id.to_string(),
            "files": files.iter().map(|f| json!({
                "path": f.path, "size": f.size, "sha256": f.sha256,
                "released_at": f.released_at.map(|t| t.to_rfc3339_micros()),
            })).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
    })))
}

/// `GET /admin/reviews/{run_id}/preview?path=...`: one output as a reviewer looks at it.
pub async fn preview(
    RunUnderReview { run, .. }: RunUnderReview<ReviewsManage>,
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let mut path = None;
    for (key, value) in query_pairs(req.query_string())? {
        match key.as_str() {
            "path" => path = Some(value),
            other => {
                return Err(ApiError::bad_request(format!(
                    "unknown query parameter {:?}: use path",
                    other.chars().take(64).collect::<String>()
                )));
            }
        }
    }
    let path = path.ok_or_else(|| {
        ApiError::bad_request("path: required, the output's path as the request lists it")
    })?;
    Ok(HttpResponse::Ok().json(review::look_at(&state, &run, &path).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct VoteBody {
    path: String,
    vote: Vote,
    #[serde(default)]
    comment: Option<String>,
}

/// `POST /admin/reviews/{run_id}/votes` `{path, vote: approve|reject, comment}`: a comment is
/// required to reject.
pub async fn vote(
    RunUnderReview { run, caller, .. }: RunUnderReview<ReviewsManage>,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let body: VoteBody = crate::http::json_body(&body)?;
    let text = comment("comment", body.comment, body.vote == Vote::Reject)?;
    let outcome = review::vote(
        &state,
        &caller,
        &run,
        &body.path,
        body.vote,
        text.as_deref(),
    )
    .await?;
    Ok(HttpResponse::Ok().json(json!({
        "run_id": run.id.to_string(),
        "path": body.path,
        "vote": body.vote,
        "decision": outcome.tally.as_str(),
        "round": outcome.round,
        "votes_reset": outcome.reset,
    })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CommentBody {
    #[serde(default)]
    comment: Option<String>,
}

/// `POST /admin/reviews/{run_id}/return` `{comment}` (required).
pub async fn return_request(
    RunUnderReview { run, caller, .. }: RunUnderReview<ReviewsManage>,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let body: CommentBody = crate::http::json_body(&body)?;
    let text = comment("comment", body.comment, true)?.unwrap_or_default();
    review::return_to_researcher(&state, &caller, &run, &text).await?;
    Ok(HttpResponse::Ok().json(json!({"run_id": run.id.to_string(), "state": "returned"})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RevokeBody {
    path: String,
    #[serde(default)]
    comment: Option<String>,
}

/// `POST /admin/reviews/{run_id}/revoke` `{path, comment}` (required): withdraws a released
/// output.
pub async fn revoke(
    RunUnderReview { run, caller, .. }: RunUnderReview<ReviewsManage>,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let body: RevokeBody = crate::http::json_body(&body)?;
    let text = comment("comment", body.comment, true)?.unwrap_or_default();
    review::revoke(&state, &caller, &run, &body.path, &text).await?;
    Ok(HttpResponse::Ok().json(json!({
        "run_id": run.id.to_string(),
        "path": body.path,
        "state": EgressState::Revoked,
    })))
}

/// `GET /runs/{run_id}/egress`: the owner's (or an operator's) view of where each output
/// stands and why, why the run's directory could not be walked (if so), and what reviewers said
/// to them; never another run's content.
pub async fn researcher_view(
    VisibleRun { run, .. }: VisibleRun<RunsRead>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let store = &state.store;
    let required = state.config.review.approvals_required;
    let files = store.egress_files(run.id).await?;
    let events = store.review_events(run.id).await?;
    let request_state = store.review_request_state(run.id).await?;
    let egress_error = store.egress_run(run.id).await?.and_then(|r| r.error);
    let messages: Vec<Value> = events
        .iter()
        .filter(|e| matches!(e.kind, ReviewEventKind::Return | ReviewEventKind::Resubmit))
        .map(|e| json!({"kind": e.kind, "comment": e.comment, "at": e.at.to_rfc3339_micros()}))
        .collect();
    Ok(HttpResponse::Ok().json(json!({
        "run_id": run.id.to_string(),
        "review": request_state,
        "egress_error": egress_error,
        "files": files.iter().map(|f| {
            let review = review_of(f, &events, required);
            json!({
                "path": f.path,
                "state": f.state,
                "size": f.size,
                "reason": f.reason,
                "decision": review["decision"],
            })
        }).collect::<Vec<_>>(),
        "messages": messages,
    })))
}

/// `POST /runs/{run_id}/egress/answer` `{comment}`: the owner answers a returned request (an
/// explanation, or the id of a new run), which opens it for review again.
pub async fn answer(
    VisibleRun { run, caller, .. }: VisibleRun<ReviewsAnswer>,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let body: CommentBody = crate::http::json_body(&body)?;
    let text = comment("comment", body.comment, true)?.unwrap_or_default();
    review::answer(&state, &caller, &run, &text).await?;
    Ok(HttpResponse::Ok().json(json!({"run_id": run.id.to_string(), "state": "open"})))
}
