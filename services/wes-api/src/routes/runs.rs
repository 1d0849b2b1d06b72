//! `/runs`: submit, list, show, status and cancel.

use actix_web::{HttpRequest, HttpResponse, web};
use futures_util::StreamExt;
use serde_json::json;
use spe_core::RunState;
use spe_core::logjson::EngineLog;
use spe_core::page::{PageSize, PageToken};
use spe_core::request::{RunRequestFields, TagFilter};
use spe_core::time::Timestamp;
use spe_store::{ReleasedFile, RunFilter, RunRecord};

use crate::app::run_access::{VisibleRun, VisibleRunState};
use crate::app::run_logs::{self, LogView};
use crate::app::runs;
use crate::auth::Authorized;
use crate::auth::actions::{RunsCancel, RunsDelete, RunsRead, RunsSubmit};
use crate::error::ApiError;
use crate::http::{check_content_length, media_type, query_pairs, read_limited};
use crate::routes::WES_BASE;
use crate::startup::AppState;
use crate::wes::{self, Log, RunListResponse, RunLog, RunStatus, RunSummary};

/// Most form parts one request may have (nine fields, a few attachments).
const MAX_FORM_PARTS: usize = 64;

pub async fn submit(
    Authorized { caller, .. }: Authorized<RunsSubmit>,
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let limit = state.config.server.max_body_bytes;
    check_content_length(&req, limit)?;
    let content_type = media_type(&req);
    let fields = match content_type.as_str() {
        "application/json" => {
            let body = read_limited(payload, limit).await?;
            RunRequestFields::from_json(&body)?
        }
        "multipart/form-data" => read_form(&req, payload, limit).await?,
        // The same fields as the multipart form, as Galaxy's gxy-wes and WESkit's client
        // send them when no file is attached.
        "application/x-www-form-urlencoded" => {
            let body = read_limited(payload, limit).await?;
            read_urlencoded(&body)?
        }
        // The spec makes the body optional: an empty one is a request with no fields, which
        // the checks below refuse naming the first missing field.
        "" if read_limited(payload, limit).await?.is_empty() => RunRequestFields::default(),
        _ => {
            return Err(ApiError::new(
                actix_web::http::StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "Content-Type must be multipart/form-data (WES), application/x-www-form-urlencoded (the same fields) or application/json (a RunRequest)",
            ));
        }
    };
    let id = runs::accept(&state, &caller, fields).await?;
    Ok(HttpResponse::Ok().json(wes::RunId {
        run_id: id.to_string(),
    }))
}

async fn read_form(
    req: &HttpRequest,
    payload: web::Payload,
    limit: usize,
) -> Result<RunRequestFields, ApiError> {
    let mut form = actix_multipart::Multipart::new(req.headers(), payload);
    let mut fields = RunRequestFields::default();
    let mut total = 0usize;
    let mut parts = 0usize;
    let bad_form = |e: actix_multipart::MultipartError| {
        ApiError::bad_request(format!("malformed multipart/form-data: {e}"))
    };
    while let Some(part) = form.next().await {
        let mut part = part.map_err(bad_form)?;
        parts += 1;
        if parts > MAX_FORM_PARTS {
            return Err(ApiError::bad_request(format!(
                "more than {MAX_FORM_PARTS} form parts"
            )));
        }
        let disposition = part.content_disposition().cloned();
        let name = disposition
            .as_ref()
            .and_then(|d| d.get_name())
            .map(str::to_owned)
            .ok_or_else(|| ApiError::bad_request("a form part has no name"))?;
        let filename = disposition
            .as_ref()
            .and_then(|d| d.get_filename())
            .map(str::to_owned);
        let mut value = Vec::new();
        while let Some(chunk) = part.next().await {
            let chunk = chunk.map_err(bad_form)?;
            total += chunk.len();
            if total > limit {
                return Err(ApiError::payload_too_large(limit));
            }
            value.extend_from_slice(&chunk);
        }
        if name == "workflow_attachment" {
            // Kept by name only: RunSubmission refuses attachments with a clear reason.
            fields
                .workflow_attachment
                .push(filename.unwrap_or_else(|| "(unnamed)".into()));
            continue;
        }
        let text = String::from_utf8(value).map_err(|_| {
            ApiError::bad_request(format!("{}: must be UTF-8 text", shorten(&name)))
        })?;
        fields.set_form_field(&name, text)?;
    }
    Ok(fields)
}

/// The fields of an `application/x-www-form-urlencoded` body, taken one by one like the parts of
/// a multipart form (so duplicates, unknown names and JSON fields get the same answers).
fn read_urlencoded(body: &[u8]) -> Result<RunRequestFields, ApiError> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(body).map_err(|e| {
        ApiError::bad_request(format!(
            "malformed application/x-www-form-urlencoded body: {e}"
        ))
    })?;
    if pairs.len() > MAX_FORM_PARTS {
        return Err(ApiError::bad_request(format!(
            "more than {MAX_FORM_PARTS} form fields"
        )));
    }
    let mut fields = RunRequestFields::default();
    for (name, value) in pairs {
        if name == "workflow_attachment" {
            // Kept by name only: RunSubmission refuses attachments with a clear reason.
            fields.workflow_attachment.push(value);
            continue;
        }
        fields.set_form_field(&name, value)?;
    }
    Ok(fields)
}

fn shorten(text: &str) -> String {
    text.chars().take(64).collect()
}

/// The query of `GET /runs`: the spec's paging plus this service's filters.
struct ListQuery {
    page_size: Option<i64>,
    page_token: Option<PageToken>,
    filter: RunFilter,
}

fn parse_list_query(query: &str) -> Result<ListQuery, ApiError> {
    let pairs = query_pairs(query)?;
    let mut out = ListQuery {
        page_size: None,
        page_token: None,
        filter: RunFilter::default(),
    };
    for (key, value) in pairs {
        match key.as_str() {
            "page_size" => {
                out.page_size = Some(
                    value
                        .parse()
                        .map_err(|_| ApiError::bad_request("page_size must be an integer"))?,
                )
            }
            "page_token" if value.is_empty() => {}
            "page_token" => {
                out.page_token = Some(
                    PageToken::decode(&value).map_err(|e| ApiError::bad_request(e.to_string()))?,
                )
            }
            "state" => {
                for name in value.split(',').filter(|s| !s.is_empty()) {
                    let state: RunState = name
                        .parse()
                        .map_err(|e| ApiError::bad_request(format!("state: {e}")))?;
                    out.filter.states.push(state);
                }
            }
            "tag" => {
                let filter: TagFilter = value
                    .parse()
                    .map_err(|e| ApiError::bad_request(format!("tag: {e}")))?;
                out.filter
                    .tags
                    .push((filter.key.as_str().to_owned(), filter.value));
            }
            "created_after" | "created_before" => {
                let at = Timestamp::parse_rfc3339(&value)
                    .map_err(|e| ApiError::bad_request(format!("{key}: {e}")))?;
                if key == "created_after" {
                    out.filter.created_after = Some(at);
                } else {
                    out.filter.created_before = Some(at);
                }
            }
            other => {
                return Err(ApiError::bad_request(format!(
                    "unknown query parameter {:?}; known: page_size, page_token, state, tag, created_after, created_before",
                    shorten(other)
                )));
            }
        }
    }
    Ok(out)
}

pub async fn list(
    Authorized { caller, .. }: Authorized<RunsRead>,
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let mut query = parse_list_query(req.query_string())?;
    let server = &state.config.server;
    let size = PageSize::parse(
        query.page_size,
        server.default_page_size,
        server.max_page_size,
    )
    .map_err(|e| ApiError::bad_request(e.to_string()))?;
    query.filter.owner = caller.listed_owner();
    let page = state
        .store
        .list_run_summaries(&query.filter, size, query.page_token)
        .await?;
    Ok(HttpResponse::Ok().json(RunListResponse {
        runs: page.runs.iter().map(RunSummary::from).collect(),
        next_page_token: page.next.map(|t| t.encode()).unwrap_or_default(),
    }))
}

pub async fn get(
    VisibleRun { caller, run, .. }: VisibleRun<RunsRead>,
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let run_url = {
        let info = req.connection_info();
        format!(
            "{}://{}{WES_BASE}/runs/{}",
            info.scheme(),
            info.host(),
            run.id
        )
    };
    let task_logs_url = format!("{run_url}/tasks");
    let log_json = crate::run_files::log_json(&run).await;
    let released = state.store.released_files(run.id).await?;
    // Logs are egress: the owner sees the runner's summary and released logs only.
    let shown = run_logs::run_log(
        LogView::of(&caller, &run),
        &run,
        log_json.as_ref(),
        &released,
    );
    let url_of = |log: EngineLog| {
        shown
            .logs
            .contains(&log)
            .then(|| format!("{run_url}/logs/{log}"))
    };
    let run_log = Log {
        name: Some(run.workflow_url.clone()),
        cmd: shown.cmd.clone(),
        start_time: run.start_time.map(|t| t.to_wes()),
        end_time: run.end_time.map(|t| t.to_wes()),
        stdout: url_of(EngineLog::Stdout),
        stderr: url_of(EngineLog::Stderr),
        exit_code: run.exit_code.and_then(|c| i32::try_from(c).ok()),
        system_logs: shown.system_logs.clone(),
    };
    Ok(HttpResponse::Ok().json(RunLog {
        run_id: run.id.to_string(),
        request: run.submission.to_wes_request(),
        state: run.state,
        run_log,
        task_logs_url,
        outputs: released_outputs(&run, released),
    }))
}

/// The state of a run its owner or an operator may reach (answered from what this instance
/// read in the last half second: `app::run_states`).
pub async fn status(
    VisibleRunState { id, state, .. }: VisibleRunState<RunsRead>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(RunStatus {
        run_id: id.to_string(),
        state,
    }))
}

/// Cancels a run (`app::runs::cancel`): 200 with its id, or 409 when it has already ended.
pub async fn cancel(
    VisibleRun { caller, run, .. }: VisibleRun<RunsCancel>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let run_id = run.id;
    let cancelled = runs::cancel(&state, &caller, run).await;
    // Whatever the outcome, the next status read here asks the store.
    state.run_states.forget(run_id);
    let id = cancelled?;
    Ok(HttpResponse::Ok().json(wes::RunId {
        run_id: id.to_string(),
    }))
}

/// `RunLog.outputs`: the files the results crawler has released, by relative path, with size
/// and SHA-256. Nothing else about a run's outputs leaves the cluster through the API.
fn released_outputs(run: &RunRecord, released: Vec<ReleasedFile>) -> serde_json::Value {
    serde_json::Value::Object(
        released
            .into_iter()
            .map(|f| {
                (
                    f.path.clone(),
                    json!({
                        "size": f.size,
                        "sha256": f.sha256,
                        "released_at": f.released_at.to_wes(),
                        "object_key": spe_core::bucket::object_key(run.id, &f.path),
                    }),
                )
            })
            .collect(),
    )
}

/// `DELETE /runs/{run_id}` (an extension): deletes an ended run's data now, as the retention
/// period would (its directory and, with `retention.delete_released_objects`, its released
/// objects), recorded in the audit chain. 409 for a run that has not ended.
pub async fn delete_data(
    VisibleRun { caller, run, .. }: VisibleRun<RunsDelete>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let actor = spe_core::Actor::Person(caller.subject.clone());
    let deleted = crate::app::retention::delete_run_data(&state, &run, &actor, "request").await?;
    Ok(HttpResponse::Ok().json(json!({
        "run_id": run.id.to_string(),
        "run_directory_deleted": deleted.run_dir.is_some(),
        "files": deleted.files,
        "bytes": deleted.bytes,
        "released_objects_deleted": deleted.released_objects,
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_query_parses_filters() {
        let q = parse_list_query(
            "page_size=5&state=QUEUED,RUNNING&tag=project:p1&tag=cohort:c&created_after=2026-01-01T00:00:00Z",
        )
        .unwrap();
        assert_eq!(q.page_size, Some(5));
        assert_eq!(q.filter.states, vec![RunState::Queued, RunState::Running]);
        assert_eq!(q.filter.tags.len(), 2);
        assert!(q.filter.created_after.is_some());
    }

    #[test]
    fn list_query_refuses_what_it_does_not_know() {
        for bad in [
            "page_size=ten",
            "page_token=zzz",
            "state=running",
            "tag=nocolon",
            "created_before=yesterday",
            "sort=asc",
        ] {
            assert!(parse_list_query(bad).is_err(), "{bad}");
        }
    }
}
