//! HTTP helpers shared by the route files (which never import one another): bounded body
//! reading, query strings, and small request bodies and inputs several resources take.

use std::path::{Component, Path, PathBuf};

use actix_web::http::header;
use actix_web::{HttpRequest, web};
use futures_util::StreamExt;
use serde::Deserialize;

use crate::error::ApiError;

/// A query string as its (possibly repeated) key-value pairs; malformed text is a 400.
pub fn query_pairs(query: &str) -> Result<Vec<(String, String)>, ApiError> {
    serde_urlencoded::from_str(query)
        .map_err(|e| ApiError::bad_request(format!("malformed query string: {e}")))
}

/// The one query parameter `name` a route takes: `None` when absent; 400 when given twice or
/// beside any other parameter.
pub fn only_query_param(query: &str, name: &str) -> Result<Option<String>, ApiError> {
    let mut found = None;
    for (key, value) in query_pairs(query)? {
        if key != name {
            return Err(ApiError::bad_request(format!(
                "unknown query parameter {:?}; known: {name}",
                key.chars().take(64).collect::<String>()
            )));
        }
        if found.replace(value).is_some() {
            return Err(ApiError::bad_request(format!("{name} given twice")));
        }
    }
    Ok(found)
}

/// Refuses, before reading it, a body whose declared length is over `limit` (413).
pub fn check_content_length(req: &HttpRequest, limit: usize) -> Result<(), ApiError> {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(ApiError::payload_too_large(limit));
    }
    Ok(())
}

/// The request's media type, lowercase and without parameters (`""` when there is none).
pub fn media_type(req: &HttpRequest) -> String {
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_ascii_lowercase();
    content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_owned()
}

/// Reads the whole body, refusing more than `limit` bytes with 413.
pub async fn read_limited(mut payload: web::Payload, limit: usize) -> Result<Vec<u8>, ApiError> {
    let mut body = Vec::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| ApiError::bad_request(format!("cannot read body: {e}")))?;
        if body.len() + chunk.len() > limit {
            return Err(ApiError::payload_too_large(limit));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Reads a JSON body; 400 `body: <what is wrong>` otherwise.
pub fn json_body<T: for<'de> Deserialize<'de>>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| ApiError::bad_request(format!("body: {e}")))
}

/// Reads an optional JSON body (`{}` or nothing at all is fine).
pub fn optional_body<T: for<'de> Deserialize<'de> + Default>(body: &[u8]) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    json_body(body)
}

/// The optional `{"reason": "..."}` of a retirement.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ReasonBody {
    #[serde(default)]
    pub reason: Option<String>,
}

impl ReasonBody {
    pub fn checked(self) -> Result<Option<String>, ApiError> {
        match self.reason {
            Some(r)
                if r.len() > 1024
                    || r.chars().any(|c| c.is_control() && c != '\n' && c != '\t') =>
            {
                Err(ApiError::bad_request(
                    "reason: at most 1024 bytes of text without control characters",
                ))
            }
            other => Ok(other),
        }
    }
}

/// Checks a path a data controller gives: absolute, no `..`, no control characters.
pub fn check_absolute_path(field: &str, path: &str) -> Result<PathBuf, ApiError> {
    let bad = |why: &str| ApiError::bad_request(format!("{field}: {why}"));
    if path.is_empty() || path.len() > 4096 {
        return Err(bad("must be an absolute path of at most 4096 bytes"));
    }
    if path.chars().any(char::is_control) {
        return Err(bad("must not contain control characters"));
    }
    let p = Path::new(path);
    if !p.is_absolute() {
        return Err(bad("must be an absolute path"));
    }
    if p.components().any(|c| matches!(c, Component::ParentDir)) {
        return Err(bad("must not contain `..`"));
    }
    Ok(p.to_path_buf())
}
