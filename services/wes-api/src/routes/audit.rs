//! `GET /admin/audit` (an extension): the audit chain's records in seq order, a page at a
//! time, for `spectl audit verify` (which checks the chain client-side) and `spectl audit
//! export` (JSON lines for a SIEM). Operators and data controllers.

use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::json;
use spe_store::audit;

use crate::auth::Authorized;
use crate::auth::actions::AuditRead;
use crate::error::ApiError;
use crate::http::query_pairs;
use crate::startup::AppState;

const MAX_LIMIT: i64 = 1000;

/// `GET /admin/audit?after_seq=<n>&limit=<1..1000>`: records with seq above `after_seq`
/// (default 0), at most `limit` (default 500), and the chain's head now.
pub async fn list(
    _: Authorized<AuditRead>,
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let mut after_seq = 0i64;
    let mut limit = 500i64;
    for (key, value) in query_pairs(req.query_string())? {
        let number = |name: &str| {
            value
                .parse::<i64>()
                .map_err(|_| ApiError::bad_request(format!("{name}: a whole number")))
        };
        match key.as_str() {
            "after_seq" => {
                after_seq = number("after_seq")?;
                if after_seq < 0 {
                    return Err(ApiError::bad_request("after_seq: 0 or more"));
                }
            }
            "limit" => {
                limit = number("limit")?;
                if !(1..=MAX_LIMIT).contains(&limit) {
                    return Err(ApiError::bad_request(format!(
                        "limit: from 1 to {MAX_LIMIT}"
                    )));
                }
            }
            other => {
                return Err(ApiError::bad_request(format!(
                    "unknown query parameter {:?}: use after_seq, limit",
                    other.chars().take(64).collect::<String>()
                )));
            }
        }
    }
    let head = audit::head(&state.store).await?;
    let records = audit::records(&state.store, after_seq, limit).await?;
    let next = (i64::try_from(records.len()).unwrap_or(0) == limit)
        .then(|| records.last().map(|r| r.seq))
        .flatten();
    Ok(HttpResponse::Ok().json(json!({
        "head": head,
        "next_after_seq": next,
        "records": records.iter().map(|r| json!({
            "seq": r.seq,
            "at": r.at,
            "time": r.time(),
            "kind": r.kind,
            "actor": r.actor,
            "run_id": r.run_id,
            "details": r.details,
            "prev_sha256": r.prev_sha256,
            "sha256": r.sha256,
        })).collect::<Vec<_>>(),
    })))
}
