//! `/runs/{run_id}/tasks`: one TaskLog per Snakemake rule job or Nextflow process, read from
//! the engine's own records (see `run_files`; ended runs' tasks are cached, see `app::tasks`),
//! in the engine's order, paginated. The run's owner sees tasks by name and state only
//! (`app::run_logs`: logs are egress).

use actix_web::{HttpRequest, HttpResponse, web};
use spe_core::page::{OffsetToken, PageSize};
use spe_core::tasks::TaskRecord;

use crate::app::run_access::VisibleRun;
use crate::app::run_logs::LogView;
use crate::app::tasks::visible_tasks;
use crate::auth::actions::RunsRead;
use crate::error::ApiError;
use crate::startup::AppState;
use crate::wes::{Log, TaskListResponse, TaskLog};

#[derive(serde::Deserialize)]
pub struct TaskQuery {
    page_size: Option<i64>,
    page_token: Option<String>,
}

fn task_log(task: TaskRecord) -> TaskLog {
    TaskLog {
        id: task.id,
        name: task.name.clone(),
        log: Log {
            name: Some(task.name),
            start_time: task.start_time.map(|t| t.to_wes()),
            end_time: task.end_time.map(|t| t.to_wes()),
            exit_code: task.exit_code,
            system_logs: task.notes,
            ..Log::default()
        },
    }
}

pub async fn list(
    VisibleRun { caller, run, .. }: VisibleRun<RunsRead>,
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let query = web::Query::<TaskQuery>::from_query(req.query_string())
        .map_err(|e| ApiError::bad_request(format!("bad query: {e}")))?
        .into_inner();
    let server = &state.config.server;
    let size = PageSize::clamped(
        query.page_size,
        server.default_page_size,
        server.max_page_size,
    );
    let start = match query.page_token.as_deref() {
        None | Some("") => OffsetToken(0),
        Some(token) => {
            OffsetToken::decode(token).map_err(|e| ApiError::bad_request(e.to_string()))?
        }
    };
    let all = visible_tasks(&state.tasks, LogView::of(&caller, &run), &run).await;
    let (range, next) = start.page(size, all.len());
    let next_page_token = next.map(OffsetToken::encode).unwrap_or_default();
    let task_logs = all
        .get(range)
        .unwrap_or_default()
        .iter()
        .cloned()
        .map(task_log)
        .collect();
    Ok(HttpResponse::Ok().json(TaskListResponse {
        task_logs,
        next_page_token,
    }))
}

pub async fn get(
    VisibleRun { caller, run, .. }: VisibleRun<RunsRead>,
    path: web::Path<(String, String)>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let (_, task_id) = path.into_inner();
    let task = visible_tasks(&state.tasks, LogView::of(&caller, &run), &run)
        .await
        .iter()
        .find(|t| t.id == task_id)
        .cloned()
        .ok_or_else(|| {
            ApiError::not_found(format!(
                "run {} has no task {}",
                run.id,
                task_id.chars().take(64).collect::<String>()
            ))
        })?;
    Ok(HttpResponse::Ok().json(task_log(task)))
}
