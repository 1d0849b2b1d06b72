//! Every error leaves the API as a WES `ErrorResponse` (`{"msg", "status_code"}`).

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::middleware::ErrorHandlerResponse;
use actix_web::{HttpResponse, ResponseError, dev::ServiceResponse};
use serde::Serialize;
use spe_core::request::RequestError;
use spe_store::{RegistryRefusal, StoreError};

#[derive(Debug, Serialize)]
pub struct ErrorResponse {
    pub msg: String,
    pub status_code: u16,
}

/// An error a handler returns. The message is shown to the client, so it must never carry a
/// secret or an internal detail; internal causes are logged instead.
#[derive(Debug, thiserror::Error)]
#[error("{msg}")]
pub struct ApiError {
    status: StatusCode,
    msg: String,
    /// `WWW-Authenticate` for 401 answers.
    challenge: Option<String>,
    /// `Retry-After` (seconds) for 429 answers.
    retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, msg: impl Into<String>) -> Self {
        ApiError {
            status,
            msg: msg.into(),
            challenge: None,
            retry_after: None,
        }
    }

    /// 429 with `Retry-After`: a quota or rate limit, named in the message.
    pub fn too_many(msg: impl Into<String>, retry_after_seconds: u64) -> Self {
        ApiError {
            status: StatusCode::TOO_MANY_REQUESTS,
            msg: msg.into(),
            challenge: None,
            retry_after: Some(retry_after_seconds.max(1)),
        }
    }

    /// 401 with a `WWW-Authenticate` challenge (RFC 6750). Neither may carry a token.
    pub fn unauthorized(msg: impl Into<String>, challenge: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::UNAUTHORIZED,
            msg: msg.into(),
            challenge: Some(challenge.into()),
            retry_after: None,
        }
    }

    pub fn bad_request(msg: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, msg)
    }

    pub fn not_found(msg: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, msg)
    }

    pub fn conflict(msg: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, msg)
    }

    pub fn payload_too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("request body is larger than this service accepts ({limit} bytes)"),
        )
    }

    /// An internal failure: the cause goes to the log, the client gets a generic message.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal error; the server log has the details under this request's id",
        )
    }
}

/// A registry refusal as the API says it; `what` names the workflow version or dataset.
pub fn refusal(r: RegistryRefusal, what: &str) -> ApiError {
    match r {
        RegistryRefusal::NotFound => ApiError::not_found(format!("{what} not found")),
        RegistryRefusal::AlreadyExists => ApiError::conflict(format!(
            "{what} is already registered; a changed workflow or dataset needs a new version or id"
        )),
        RegistryRefusal::WrongState(state) => {
            ApiError::conflict(format!("{what} is {state}; that change is not allowed"))
        }
        RegistryRefusal::SameApprover => ApiError::new(StatusCode::FORBIDDEN, r.to_string()),
    }
}

impl From<RequestError> for ApiError {
    fn from(e: RequestError) -> Self {
        ApiError::bad_request(e.to_string())
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::RunNotFound(id) => ApiError::not_found(format!("run {id} not found")),
            StoreError::Unavailable(_) => {
                tracing::error!(error = %e, "database unavailable");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "database unavailable; try again later",
                )
            }
            other => ApiError::internal(other),
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        let mut res = HttpResponse::build(self.status);
        if let Some(value) = self
            .challenge
            .as_deref()
            .and_then(|c| HeaderValue::from_str(c).ok())
        {
            res.insert_header((header::WWW_AUTHENTICATE, value));
        }
        if let Some(seconds) = self.retry_after {
            res.insert_header((header::RETRY_AFTER, seconds.to_string()));
        }
        res.json(ErrorResponse {
            msg: self.msg.clone(),
            status_code: self.status.as_u16(),
        })
    }
}

/// Rewrites any error response that is not already JSON (actix's own 404/405/413 and
/// extractor errors) into an `ErrorResponse`, so clients see one error shape everywhere.
pub fn json_error_body<B>(res: ServiceResponse<B>) -> actix_web::Result<ErrorHandlerResponse<B>> {
    // JSON already, or a page of the web UI answering its own error as HTML (`crate::ui`).
    let is_json = res
        .response()
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json") || v.starts_with("text/html"));
    if is_json {
        return Ok(ErrorHandlerResponse::Response(res.map_into_left_body()));
    }
    let status = res.status();
    let msg = match (status, res.response().error()) {
        (s, _) if s.is_server_error() => "internal error".to_owned(),
        (StatusCode::NOT_FOUND, _) => format!("no such resource: {}", res.request().path()),
        (StatusCode::METHOD_NOT_ALLOWED, _) => format!(
            "method {} is not allowed on {}",
            res.request().method(),
            res.request().path()
        ),
        (_, Some(err)) => err.to_string(),
        (s, None) => s.canonical_reason().unwrap_or("error").to_owned(),
    };
    let body = serde_json::to_string(&ErrorResponse {
        msg,
        status_code: status.as_u16(),
    })
    .unwrap_or_default();
    let (req, mut response) = res.into_parts();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    let response = response.set_body(body).map_into_boxed_body();
    Ok(ErrorHandlerResponse::Response(
        ServiceResponse::new(req, response).map_into_right_body(),
    ))
}
