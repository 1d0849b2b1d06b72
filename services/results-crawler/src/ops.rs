//! The crawler's operations endpoints on `crawler.metrics_listen`, served by actix-web:
//! `GET /metrics` (the [`Metrics`] as OpenMetrics text, which Prometheus scrapes), `GET /readyz`
//! (the database and the results bucket answer) and `GET /healthz` (the process serves).

use std::sync::Arc;
use std::time::Duration;

use actix_web::{App, HttpResponse, HttpServer, web};
use serde_json::json;
use spe_store::Store;

use crate::metrics::{CONTENT_TYPE, Metrics};
use crate::s3::Bucket;

/// How long each readiness check may take before it counts as failed.
const CHECK_TIMEOUT: Duration = Duration::from_secs(3);

struct Ops {
    metrics: Arc<Metrics>,
    store: Store,
    bucket: Bucket,
}

/// Starts serving on `listener` (a worker of its own; the crawler's signals are its own).
pub fn serve(
    listener: std::net::TcpListener,
    metrics: Arc<Metrics>,
    store: Store,
    bucket: Bucket,
) -> std::io::Result<actix_web::dev::Server> {
    let ops = web::Data::new(Ops {
        metrics,
        store,
        bucket,
    });
    Ok(HttpServer::new(move || {
        App::new()
            .app_data(ops.clone())
            .route("/metrics", web::get().to(metrics_text))
            .route("/readyz", web::get().to(ready))
            .route("/healthz", web::get().to(live))
    })
    .workers(1)
    .disable_signals()
    .listen(listener)?
    .run())
}

async fn metrics_text(ops: web::Data<Ops>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(CONTENT_TYPE)
        .body(ops.metrics.render())
}

async fn live() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
}

/// 200 when the database and the bucket answer, else 503 naming what does not.
async fn ready(ops: web::Data<Ops>) -> HttpResponse {
    let database = async {
        match tokio::time::timeout(CHECK_TIMEOUT, ops.store.ping()).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(format!("database: {e}")),
            Err(_) => Err("database: no answer within 3 s".to_owned()),
        }
    };
    let bucket = async {
        match tokio::time::timeout(
            CHECK_TIMEOUT,
            ops.bucket.head(spe_core::bucket::READINESS_KEY),
        )
        .await
        {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(format!("s3 bucket {}: {e}", ops.bucket.name())),
            Err(_) => Err(format!(
                "s3 bucket {}: no answer within 3 s",
                ops.bucket.name()
            )),
        }
    };
    let (database, bucket) = tokio::join!(database, bucket);
    let checks = json!({
        "database": database.as_ref().err().map_or("ok", String::as_str),
        "s3": bucket.as_ref().err().map_or("ok", String::as_str),
    });
    if database.is_ok() && bucket.is_ok() {
        HttpResponse::Ok().json(json!({"status": "ready", "checks": checks}))
    } else {
        tracing::warn!(%checks, "readiness check failed");
        HttpResponse::ServiceUnavailable().json(json!({"status": "not ready", "checks": checks}))
    }
}
