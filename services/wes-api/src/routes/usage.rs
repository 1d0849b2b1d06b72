//! `GET /usage` (an extension): what the caller has used, per workflow version, and their quota
//! limits; operators see every user's use.

use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::json;
use spe_core::time::Timestamp;

use crate::auth::Authorized;
use crate::auth::actions::RunsRead;
use crate::error::ApiError;
use crate::http::query_pairs;
use crate::startup::AppState;

/// `GET /usage?since=<RFC 3339>` (default: the last 30 days).
pub async fn get(
    Authorized { caller, .. }: Authorized<RunsRead>,
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let now = Timestamp::from_datetime(chrono::Utc::now());
    let mut since = Timestamp::from_micros(now.micros() - 30 * 86_400_000_000);
    for (key, value) in query_pairs(req.query_string())? {
        match key.as_str() {
            "since" => {
                let t = chrono::DateTime::parse_from_rfc3339(&value).map_err(|_| {
                    ApiError::bad_request("since: an RFC 3339 time, e.g. 2026-11-01T00:00:00Z")
                })?;
                since = Timestamp::from_datetime(t.with_timezone(&chrono::Utc));
            }
            other => {
                return Err(ApiError::bad_request(format!(
                    "unknown query parameter {:?}: use since",
                    other.chars().take(64).collect::<String>()
                )));
            }
        }
    }
    let owner = caller.listed_owner();
    let rows = state.store.usage(owner.as_ref(), since).await?;
    let limits = state
        .config
        .quotas
        .limits_for(caller.groups.iter().map(|g| g.urn()));
    Ok(HttpResponse::Ok().json(json!({
        "since": since.to_rfc3339_micros(),
        "limits": {
            "runs_per_day": limits.runs_per_day,
            "live_runs": limits.live_runs,
            "live_cores": limits.live_cores,
            "live_memory_mb": limits.live_memory_mb,
            "submissions_per_minute": limits.submissions_per_minute,
        },
        "usage": rows.iter().map(|u| json!({
            "owner": u.owner,
            "workflow": u.workflow_url,
            "runs": u.runs,
            "live_runs": u.live_runs,
            "live_cores": u.live_cores,
            "live_memory_mb": u.live_memory_mb,
            "wall_hours": u.wall_hours,
            "core_hours": u.core_hours,
        })).collect::<Vec<_>>(),
    })))
}
