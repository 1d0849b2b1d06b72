//! Liveness and readiness for operators and orchestrators.

use actix_web::{HttpResponse, web};
use serde_json::{Map, Value, json};

use crate::app::readiness::{self, Outcome};
use crate::startup::AppState;

/// The process is up and serving HTTP.
pub async fn live() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
}

/// The service can do its work (`app::readiness`): 200 when every configured part answers,
/// else 503; each check's outcome by name, the reasons in the log.
pub async fn ready(state: web::Data<AppState>) -> HttpResponse {
    let checks = readiness::check(&state).await;
    let mut body = Map::new();
    let mut ready = true;
    for (name, outcome) in &checks {
        if let Outcome::Failed(why) = outcome {
            ready = false;
            tracing::warn!(check = name, reason = %why, "readiness check failed");
        }
        body.insert((*name).to_owned(), Value::from(outcome.as_str()));
    }
    let status = if ready { "ready" } else { "not ready" };
    let body = json!({"status": status, "checks": body});
    if ready {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}

/// `GET /metrics` on `server.metrics_listen`: the OpenMetrics text (`crate::metrics`).
pub async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    match state.metrics.render(&state.store).await {
        Ok(text) => HttpResponse::Ok()
            .content_type(crate::metrics::CONTENT_TYPE)
            .body(text),
        Err(e) => {
            tracing::warn!(error = %e, "metrics: cannot read the run counts");
            HttpResponse::ServiceUnavailable().body("the database does not answer\n")
        }
    }
}
