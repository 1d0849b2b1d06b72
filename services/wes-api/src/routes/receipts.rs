//! Five Safes RO-Crates and egress receipts (extensions, docs/ro-crate.md): a run's crate for
//! those who may read its results, the public key that checks a released package's signed
//! crate, and the lookup of a receipt's audit chain head.

use actix_web::{HttpResponse, web};
use serde_json::json;

use crate::app::run_access::SharedResults;
use crate::auth::Authorized;
use crate::auth::actions::ResultsRead;
use crate::error::ApiError;
use crate::startup::AppState;

/// `GET /runs/{run_id}/ro-crate`: the run as a Five Safes RO-Crate 0.4.
pub async fn ro_crate(
    SharedResults { run, .. }: SharedResults<ResultsRead>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let doc = crate::app::receipts::run_crate(&state, run.id).await?;
    Ok(HttpResponse::Ok()
        .content_type("application/ld+json")
        .body(doc.to_string()))
}

/// `GET /keys/receipt.pub`: `ed25519 <base64>`, the key receipts are signed with.
pub async fn receipt_pub(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    match &state.receipt_key {
        Some(line) => Ok(HttpResponse::Ok()
            .content_type("text/plain; charset=utf-8")
            .body(format!("{line}\n"))),
        None => Err(ApiError::not_found(
            "this service publishes no receipt key (receipts.public_key is not set)",
        )),
    }
}

/// `GET /audit/heads/{sha256}`: `{seq, sha256}` when the chain has a record with that
/// SHA-256; 404 when it has none.
pub async fn chain_head(
    _caller: Authorized<ResultsRead>,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let sha256 = path.into_inner();
    match crate::app::receipts::chain_record(&state, &sha256).await? {
        Some(seq) => {
            Ok(HttpResponse::Ok()
                .json(json!({ "seq": seq, "sha256": sha256.to_ascii_lowercase() })))
        }
        None => Err(ApiError::not_found(
            "no audit record of this service has that SHA-256",
        )),
    }
}
