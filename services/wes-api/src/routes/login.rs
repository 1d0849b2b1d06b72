//! `/auth/login`, `/auth/callback`, `POST /auth/logout`: browser login for the web UI
//! (`auth.oidc.browser`; without it these answer 404). See [`crate::session`].

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};

use actix_web::ResponseError;
use spe_store::audit::AuditKind;

use crate::app::audit::RefusalRecorder;
use crate::error::ApiError;
use crate::session::Sessions;

fn configured(sessions: Option<web::Data<Sessions>>) -> Result<web::Data<Sessions>, ApiError> {
    sessions.ok_or_else(|| ApiError::not_found("browser login is not configured here"))
}

fn redirect(to: &str) -> actix_web::HttpResponseBuilder {
    let mut res = HttpResponse::SeeOther();
    res.insert_header((header::LOCATION, to.to_owned()))
        .insert_header((header::CACHE_CONTROL, "no-store"));
    res
}

/// Sends the browser to the provider (authorization code flow, PKCE S256, state, nonce).
pub async fn login(
    req: HttpRequest,
    sessions: Option<web::Data<Sessions>>,
) -> Result<HttpResponse, ApiError> {
    let sessions = configured(sessions)?;
    let (url, cookie) = sessions.begin(req.peer_addr().map(|a| a.ip())).await?;
    Ok(redirect(&url).cookie(cookie).finish())
}

/// Where the provider sends the browser back: checks state, exchanges the code, verifies the
/// ID token, starts the session.
pub async fn callback(
    req: HttpRequest,
    sessions: Option<web::Data<Sessions>>,
    refusals: Option<web::Data<RefusalRecorder>>,
) -> Result<HttpResponse, ApiError> {
    let sessions = configured(sessions)?;
    let result = complete(&req, &sessions).await;
    // A login that did not complete is an audit event, counted per address (bounded).
    if let (Err(e), Some(refusals)) = (&result, refusals)
        && e.status_code() == actix_web::http::StatusCode::BAD_REQUEST
    {
        refusals.note(
            AuditKind::LoginFailed,
            req.peer_addr().map(|a| a.ip()),
            &e.to_string(),
        );
    }
    result
}

async fn complete(req: &HttpRequest, sessions: &Sessions) -> Result<HttpResponse, ApiError> {
    let pairs = crate::http::query_pairs(req.query_string())?;
    let get = |name: &str| {
        pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    if let Some(error) = get("error") {
        // The provider's error code only (a short token), never free text from the URL.
        let code: String = error
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
            .take(64)
            .collect();
        return Err(ApiError::bad_request(format!(
            "login failed at the identity provider: {code}"
        )));
    }
    let (Some(state), Some(code)) = (get("state"), get("code")) else {
        return Err(ApiError::bad_request(
            "the callback needs `state` and `code`; start at /auth/login",
        ));
    };
    let binding = req.cookie(sessions.login_cookie());
    let session = sessions
        .complete(state, code, binding.as_ref().map(|c| c.value()))
        .await?;
    Ok(redirect(sessions.after_login_path())
        .cookie(session)
        .cookie(sessions.removal(sessions.login_cookie()))
        .finish())
}

/// `POST /auth/logout` (the UI's logout form, with its CSRF token): ends the session and sends
/// the browser to the provider's end-session endpoint, if any. A POST, so that another site
/// cannot log anyone out with a link or an image; a request whose session has already ended
/// needs no token (there is nothing left to protect) and is sent on the same way.
pub async fn logout(
    req: HttpRequest,
    body: web::Bytes,
    sessions: Option<web::Data<Sessions>>,
) -> Result<HttpResponse, crate::ui::PageError> {
    let sessions = configured(sessions)?;
    if sessions.is_live(&req).await {
        let fields = crate::ui::form_fields(&body)?;
        crate::ui::check_csrf(&req, crate::ui::field(&fields, "csrf"))?;
    }
    let next = sessions.end(&req).await;
    Ok(redirect(&next)
        .cookie(sessions.removal(sessions.session_cookie()))
        .finish())
}
