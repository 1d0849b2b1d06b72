//! `/runs/{run_id}/logs/{stdout|stderr}` (extension): an engine log as text. Logs are egress
//! (`app::run_logs`): the run's owner reads a log only once it was released through review;
//! operators and data controllers read every log of runs they do not own. These are the URLs
//! `RunLog.run_log.stdout/stderr` point to.

use actix_web::{HttpResponse, web};
use spe_core::logjson::EngineLog;

use crate::app::run_access::AuditedRun;
use crate::app::run_logs::{self, LogView};
use crate::auth::actions::RunsLogsRead;
use crate::error::ApiError;
use crate::startup::AppState;

pub async fn get(
    AuditedRun { caller, run, .. }: AuditedRun<RunsLogsRead>,
    path: web::Path<(String, String)>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let (_, stream) = path.into_inner();
    let log = EngineLog::parse(&stream)
        .ok_or_else(|| ApiError::not_found("logs are `stdout` or `stderr`"))?;
    let view = LogView::of(&caller, &run);
    let (text, truncated) = run_logs::engine_log(&state, view, &run, log).await?;
    Ok(HttpResponse::Ok()
        .content_type("text/plain; charset=utf-8")
        .insert_header(("x-spe-truncated", if truncated { "true" } else { "false" }))
        .body(text))
}
