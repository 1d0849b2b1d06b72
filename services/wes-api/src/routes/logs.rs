//! `/runs/{run_id}/logs/{stdout|stderr}` (extension): the engine's output, as text, for the
//! run's owner and operators. These are the URLs `RunLog.run_log.stdout/stderr` point to.

use actix_web::{HttpResponse, web};

use crate::auth::{Authorized, actions};
use crate::error::ApiError;
use crate::routes::runs::visible_run;
use crate::run_files::{self, LogStream};
use crate::startup::AppState;

pub async fn get(
    Authorized(caller): Authorized<{ actions::RUNS_READ }>,
    path: web::Path<(String, String)>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let (run_id, stream) = path.into_inner();
    let run = visible_run(&state, &caller, &run_id).await?;
    let stream = LogStream::parse(&stream)
        .ok_or_else(|| ApiError::not_found("logs are `stdout` or `stderr`"))?;
    let (text, truncated) = run_files::engine_log(&run, stream)
        .await
        .ok_or_else(|| ApiError::not_found(format!("run {} has no such log yet", run.id)))?;
    Ok(HttpResponse::Ok()
        .content_type("text/plain; charset=utf-8")
        .insert_header(("x-spe-truncated", if truncated { "true" } else { "false" }))
        .body(text))
}
