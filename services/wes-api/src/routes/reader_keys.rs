//! `/me/crypt4gh-key` (an extension): the Crypt4GH public key the caller's encrypted downloads
//! are bound to when their token carries no `crypt4ghPublicKeys` claim (docs/crypt4gh.md).

use actix_web::{HttpResponse, web};
use serde_json::json;

use crate::auth::Authorized;
use crate::auth::actions::ResultsRead;
use crate::error::ApiError;
use crate::startup::AppState;

/// Largest key body accepted: a public key file is about 100 bytes.
const MAX_KEY_BODY: usize = 4096;

/// `GET /me/crypt4gh-key`: which key a download would be bound to now, and where it came from.
pub async fn get(
    Authorized { caller, .. }: Authorized<ResultsRead>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let registered = state.store.reader_key(&caller.subject).await?;
    let bound = crate::app::encrypted_results::reader_keys(&state, &caller).await?;
    let Some((keys, source)) = bound else {
        return Err(ApiError::not_found(
            "no Crypt4GH public key: register one with POST /ga4gh/wes/v1/me/crypt4gh-key",
        ));
    };
    Ok(HttpResponse::Ok().json(json!({
        "source": source.as_str(),
        "fingerprints": keys.iter().map(|k| k.fingerprint()).collect::<Vec<_>>(),
        "registered": registered.map(|k| json!({
            "public_key": k.public_key,
            "fingerprint": k.fingerprint,
            "registered_at": k.registered_at.to_wes(),
        })),
    })))
}

/// `POST /me/crypt4gh-key` with the public key file as the body (`text/plain`) or
/// `{"public_key": ...}`: registers it, replacing an earlier one.
pub async fn register(
    Authorized { caller, .. }: Authorized<ResultsRead>,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    if body.len() > MAX_KEY_BODY {
        return Err(ApiError::bad_request(format!(
            "a public key is at most {MAX_KEY_BODY} bytes"
        )));
    }
    let text = std::str::from_utf8(&body)
        .map_err(|_| ApiError::bad_request("the body must be UTF-8 text"))?;
    let text = match serde_json::from_str::<serde_json::Value>(text) {
        Ok(serde_json::Value::Object(o)) => match o.get("public_key") {
            Some(serde_json::Value::String(k)) if o.len() == 1 => k.clone(),
            _ => {
                return Err(ApiError::bad_request(
                    "a JSON body is {\"public_key\": \"<the key file's text>\"}",
                ));
            }
        },
        _ => text.to_owned(),
    };
    let key = crate::app::encrypted_results::register_key(&state, &caller, &text).await?;
    Ok(HttpResponse::Ok().json(json!({
        "public_key": key.public_key,
        "fingerprint": key.fingerprint,
        "registered_at": key.registered_at.to_wes(),
    })))
}
