//! `GET /keys/service.pub`: the service's Crypt4GH public key (`crypt4gh.public_key`, read once
//! at start), public, so that data providers can add the service as a recipient of the files
//! they send (docs/crypt4gh.md).

use actix_web::{HttpResponse, web};

use crate::error::ApiError;
use crate::startup::AppState;

pub async fn service_pub(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    match &state.service_key {
        Some(key) => Ok(HttpResponse::Ok()
            .content_type("text/plain; charset=utf-8")
            .body(key.to_pem())),
        None => Err(ApiError::not_found(
            "this service publishes no Crypt4GH public key",
        )),
    }
}
