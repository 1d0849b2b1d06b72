//! `/runs/{run_id}/tasks`: one TaskLog per engine job, read from the engine's own logs once
//! runs execute (the execution issue); until a run has tasks the list is empty.

use actix_web::{HttpResponse, web};

use crate::auth::{Authorized, actions};
use crate::error::ApiError;
use crate::routes::runs::visible_run;
use crate::startup::AppState;
use crate::wes::TaskListResponse;

pub async fn list(
    Authorized(caller): Authorized<{ actions::RUNS_READ }>,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    visible_run(&state, &caller, &path).await?;
    Ok(HttpResponse::Ok().json(TaskListResponse {
        task_logs: Vec::new(),
        next_page_token: String::new(),
    }))
}

pub async fn get(
    Authorized(caller): Authorized<{ actions::RUNS_READ }>,
    path: web::Path<(String, String)>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let (run_id, task_id) = path.into_inner();
    let run = visible_run(&state, &caller, &run_id).await?;
    Err(ApiError::not_found(format!(
        "run {} has no task {}",
        run.id,
        task_id.chars().take(64).collect::<String>()
    )))
}
