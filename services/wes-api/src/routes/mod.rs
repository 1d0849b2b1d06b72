//! One file per resource. `configure` mounts them all.

pub mod health;
pub mod openapi;
pub mod runs;
pub mod service_info;
pub mod tasks;

use actix_web::web;

/// The WES base path, as the spec's server URL names it.
pub const WES_BASE: &str = "/ga4gh/wes/v1";

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope(WES_BASE)
            .service(web::resource("/service-info").route(web::get().to(service_info::get)))
            .service(
                web::resource("/runs")
                    .route(web::get().to(runs::list))
                    .route(web::post().to(runs::submit)),
            )
            .service(web::resource("/runs/{run_id}").route(web::get().to(runs::get)))
            .service(web::resource("/runs/{run_id}/status").route(web::get().to(runs::status)))
            .service(web::resource("/runs/{run_id}/cancel").route(web::post().to(runs::cancel)))
            .service(web::resource("/runs/{run_id}/tasks").route(web::get().to(tasks::list)))
            .service(
                web::resource("/runs/{run_id}/tasks/{task_id}").route(web::get().to(tasks::get)),
            )
            .service(web::resource("/openapi.json").route(web::get().to(openapi::get))),
    )
    .service(web::resource("/healthz").route(web::get().to(health::live)))
    .service(web::resource("/readyz").route(web::get().to(health::ready)));
}
