//! One file per resource. `configure` mounts them all.

pub mod datasets;
pub mod health;
pub mod login;
pub mod logs;
pub mod openapi;
pub mod results;
pub mod runs;
pub mod service_info;
pub mod tasks;
pub mod workflows;

use actix_web::web;

use crate::error::ApiError;

/// A query string as its (possibly repeated) key-value pairs; malformed text is a 400.
pub fn query_pairs(query: &str) -> Result<Vec<(String, String)>, ApiError> {
    serde_urlencoded::from_str(query)
        .map_err(|e| ApiError::bad_request(format!("malformed query string: {e}")))
}

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
            .service(web::resource("/runs/{run_id}/logs/{stream}").route(web::get().to(logs::get)))
            .service(
                web::resource("/runs/{run_id}/tasks/{task_id}").route(web::get().to(tasks::get)),
            )
            // Results access (extension): owners share runs; collaborators list released files
            // and get presigned download links.
            .service(
                web::resource("/runs/{run_id}/shares")
                    .route(web::get().to(results::list_shares))
                    .route(web::post().to(results::add_share))
                    .route(web::delete().to(results::remove_share)),
            )
            .service(web::resource("/results").route(web::get().to(results::list)))
            .service(web::resource("/results/{run_id}").route(web::get().to(results::get)))
            .service(
                web::resource("/results/{run_id}/links")
                    .route(web::post().to(results::create_link)),
            )
            .service(web::resource("/openapi.json").route(web::get().to(openapi::get)))
            // The registry (extensions): researchers see approved workflows and active datasets,
            // data controllers manage both under /admin.
            .service(web::resource("/workflows").route(web::get().to(workflows::list_approved)))
            .service(
                web::resource("/workflows/{name}/{version}")
                    .route(web::get().to(workflows::get_approved)),
            )
            .service(web::resource("/datasets").route(web::get().to(datasets::list)))
            .service(
                web::resource("/admin/workflows")
                    .route(web::get().to(workflows::admin_list))
                    .route(web::post().to(workflows::register)),
            )
            .service(
                web::resource("/admin/workflows/{name}/{version}")
                    .route(web::get().to(workflows::admin_get)),
            )
            .service(
                web::resource("/admin/workflows/{name}/{version}/approve")
                    .route(web::post().to(workflows::approve)),
            )
            .service(
                web::resource("/admin/workflows/{name}/{version}/retire")
                    .route(web::post().to(workflows::retire)),
            )
            .service(
                web::resource("/admin/datasets")
                    .route(web::get().to(datasets::admin_list))
                    .route(web::post().to(datasets::create)),
            )
            .service(
                web::resource("/admin/datasets/{id}").route(web::get().to(datasets::admin_get)),
            )
            .service(
                web::resource("/admin/datasets/{id}/retire")
                    .route(web::post().to(datasets::retire)),
            )
            .service(web::resource("/admin/events").route(web::get().to(workflows::events))),
    )
    // Browser login for the web UI (auth.oidc.browser), outside the WES base path.
    .service(web::resource("/auth/login").route(web::get().to(login::login)))
    .service(web::resource("/auth/callback").route(web::get().to(login::callback)))
    .service(web::resource("/auth/logout").route(web::get().to(login::logout)))
    .service(web::resource("/healthz").route(web::get().to(health::live)))
    .service(web::resource("/readyz").route(web::get().to(health::ready)));
}
