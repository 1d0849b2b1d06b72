//! `/runs/{run_id}/logs/{stdout|stderr}` (extension): the engine's output, as text, for the
//! run's owner and operators. These are the URLs `RunLog.run_log.stdout/stderr` point to.

use actix_web::{HttpResponse, web};

use crate::app::run_access::VisibleRun;
use crate::auth::actions::RunsRead;
use crate::error::ApiError;
use crate::run_files::{self, LogStream};

pub async fn get(
    VisibleRun { run, .. }: VisibleRun<RunsRead>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (_, stream) = path.into_inner();
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
