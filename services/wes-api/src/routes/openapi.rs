//! The service's own OpenAPI document: the WES 1.1 spec as this service implements it, with
//! its extensions marked `x-spe-extension: true`.

use std::sync::OnceLock;

use actix_web::HttpResponse;
use serde_json::Value;

use crate::error::ApiError;

/// The document, kept as YAML in the source tree beside this crate.
pub const OPENAPI_YAML: &str = include_str!("../../openapi.yaml");

/// The document as JSON, converted once.
pub fn document() -> Result<&'static Value, String> {
    static DOC: OnceLock<Result<Value, String>> = OnceLock::new();
    DOC.get_or_init(|| serde_yaml::from_str::<Value>(OPENAPI_YAML).map_err(|e| e.to_string()))
        .as_ref()
        .map_err(Clone::clone)
}

pub async fn get() -> Result<HttpResponse, ApiError> {
    let doc = document().map_err(ApiError::internal)?;
    Ok(HttpResponse::Ok().json(doc))
}
