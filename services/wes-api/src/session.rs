//! Browser sessions for the web UI (`auth.oidc.browser`).
//!
//! `/auth/login` starts an authorization code flow (spe-auth's [`BrowserLogin`]: PKCE S256,
//! state, nonce) and sets a short-lived login cookie binding the flow to this browser;
//! `/auth/callback` checks state and binding, exchanges the code, verifies the ID token and its
//! nonce and the access token (as any bearer token), then sets the session cookie: an opaque
//! random id, `HttpOnly`, `SameSite=Lax`, `Secure` unless configured off for local http.
//! Sessions and logins in progress are kept in the store (every instance sees them, a restart
//! keeps them), found by the SHA-256 of the cookie or `state` the browser holds, their tokens
//! (and PKCE verifier and nonce) sealed with ChaCha20-Poly1305 under a key derived from the
//! browser's cookie: the browser never sees a token, and the database alone opens none.
//! A request with the session cookie and no `Authorization` header is authenticated with the
//! session's access token; one that changes state (not GET/HEAD/OPTIONS) must also carry an
//! `Origin` equal to this service's (from `redirect_url`), else 403. Each session also holds a
//! CSRF token that the web UI's forms carry (`crate::ui`).

use std::sync::Arc;
use std::time::Duration;

use actix_web::cookie::{Cookie, SameSite};
use actix_web::http::{Method, StatusCode, header};
use actix_web::{HttpMessage, HttpRequest};
use sha2::{Digest, Sha256};
use spe_auth::{AuthError, BrowserLogin, PendingLogin, Verifier};
use spe_core::config::BrowserLoginConfig;
use spe_core::time::Timestamp;
use spe_store::{LoginAdmission, Store};

use crate::error::ApiError;

/// Longest a login may take between `/auth/login` and `/auth/callback`.
const LOGIN_TTL: Duration = Duration::from_secs(600);
/// Logins in progress kept at most.
const MAX_PENDING: usize = 10_000;
/// Logins in progress kept at most per client address, so that a flood from one address
/// cannot fill the table and lock others out.
const MAX_PENDING_PER_ADDRESS: usize = 20;
/// Sessions kept at most.
const MAX_SESSIONS: usize = 100_000;

/// What a session holds, sealed in its row.
#[derive(serde::Serialize, serde::Deserialize)]
struct Held {
    access_token: String,
    id_token: String,
}

/// The row key of what a browser holds (a session cookie, a login's `state`): its SHA-256,
/// so that the database never holds the value itself.
fn row_key(purpose: &str, value: &str) -> String {
    let mut h = Sha256::new();
    for part in ["spe-browser-row", purpose, value] {
        h.update(part.as_bytes());
        h.update(b"\0");
    }
    hex::encode(h.finalize())
}

/// The sealing key of what only the holder of `cookie` may open.
fn seal_key(purpose: &str, cookie: &str) -> ring::aead::LessSafeKey {
    let mut h = Sha256::new();
    for part in ["spe-browser-seal", purpose, cookie] {
        h.update(part.as_bytes());
        h.update(b"\0");
    }
    let bytes = h.finalize();
    // A 32-byte key is what ChaCha20-Poly1305 takes: this cannot fail.
    let unbound = ring::aead::UnboundKey::new(&ring::aead::CHACHA20_POLY1305, &bytes)
        .unwrap_or_else(|_| unreachable!("a 32-byte ChaCha20-Poly1305 key"));
    ring::aead::LessSafeKey::new(unbound)
}

/// `plain`, sealed for the holder of `cookie`: hex of a random nonce and the ciphertext.
fn seal(purpose: &str, cookie: &str, plain: &[u8]) -> Result<String, ApiError> {
    use ring::rand::SecureRandom;
    let mut nonce = [0u8; ring::aead::NONCE_LEN];
    ring::rand::SystemRandom::new()
        .fill(&mut nonce)
        .map_err(|_| ApiError::internal("no randomness for a session"))?;
    let mut sealed = plain.to_vec();
    seal_key(purpose, cookie)
        .seal_in_place_append_tag(
            ring::aead::Nonce::assume_unique_for_key(nonce),
            ring::aead::Aad::from(purpose.as_bytes()),
            &mut sealed,
        )
        .map_err(|_| ApiError::internal("cannot seal a session"))?;
    let mut out = nonce.to_vec();
    out.extend_from_slice(&sealed);
    Ok(hex::encode(out))
}

/// What [`seal`] sealed, when `cookie` is the one it was sealed for.
fn open(purpose: &str, cookie: &str, sealed: &str) -> Option<Vec<u8>> {
    let bytes = hex::decode(sealed).ok()?;
    if bytes.len() < ring::aead::NONCE_LEN {
        return None;
    }
    let (nonce, rest) = bytes.split_at(ring::aead::NONCE_LEN);
    let nonce = ring::aead::Nonce::try_assume_unique_for_key(nonce).ok()?;
    let mut rest = rest.to_vec();
    let plain = seal_key(purpose, cookie)
        .open_in_place(nonce, ring::aead::Aad::from(purpose.as_bytes()), &mut rest)
        .ok()?;
    Some(plain.to_vec())
}

const SESSION: &str = "session";
const LOGIN: &str = "login";

/// The server side of browser sessions. Shared by every worker (`web::Data`).
pub struct Sessions {
    login: BrowserLogin,
    verifier: Arc<Verifier>,
    secure: bool,
    /// This service's origin as browsers see it (`scheme://host[:port]` of `redirect_url`).
    origin: String,
    session_ttl: Duration,
    store: Store,
}

impl std::fmt::Debug for Sessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sessions")
            .field("origin", &self.origin)
            .finish_non_exhaustive()
    }
}

/// The origin (`scheme://host[:port]`) of a URL.
fn origin_of(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let authority = rest.split(['/', '?', '#']).next()?;
    (!authority.is_empty()).then(|| format!("{}://{}", scheme.to_ascii_lowercase(), authority))
}

impl Sessions {
    pub fn new(
        issuer: &str,
        config: &BrowserLoginConfig,
        verifier: Arc<Verifier>,
        timeout: Duration,
        store: Store,
    ) -> Result<Sessions, String> {
        let login = BrowserLogin::new(issuer, config, timeout).map_err(|e| e.to_string())?;
        let origin = origin_of(&config.redirect_url)
            .ok_or_else(|| "auth.oidc.browser.redirect_url: not a URL".to_owned())?;
        Ok(Sessions {
            login,
            verifier,
            secure: config.cookie_secure,
            origin,
            session_ttl: Duration::from_secs(config.session_seconds),
            store,
        })
    }

    /// The session cookie's name (`__Host-` prefixed when `Secure`).
    pub fn session_cookie(&self) -> &'static str {
        if self.secure {
            "__Host-spe_session"
        } else {
            "spe_session"
        }
    }

    /// The login-binding cookie's name.
    pub fn login_cookie(&self) -> &'static str {
        if self.secure {
            "__Host-spe_login"
        } else {
            "spe_login"
        }
    }

    fn cookie(&self, name: &'static str, value: String, max_age: Duration) -> Cookie<'static> {
        Cookie::build(name, value)
            .path("/")
            .http_only(true)
            .same_site(SameSite::Lax)
            .secure(self.secure)
            .max_age(actix_web::cookie::time::Duration::seconds(
                i64::try_from(max_age.as_secs()).unwrap_or(i64::MAX),
            ))
            .finish()
    }

    /// A cookie that removes `name` from the browser.
    pub fn removal(&self, name: &'static str) -> Cookie<'static> {
        self.cookie(name, String::new(), Duration::ZERO)
    }

    pub fn after_login_path(&self) -> &str {
        &self.login.config().after_login_path
    }

    /// Starts a login: the provider URL to redirect to and the login cookie to set.
    pub async fn begin(
        &self,
        address: Option<std::net::IpAddr>,
    ) -> Result<(String, Cookie<'static>), ApiError> {
        let start = self.login.start().await.map_err(unavailable)?;
        let binding = spe_auth::random_secret();
        let pending = serde_json::to_vec(&start.pending).map_err(ApiError::internal)?;
        let sealed = seal(LOGIN, &binding, &pending)?;
        let admitted = self
            .store
            .add_browser_login(
                &row_key(LOGIN, &start.state),
                &sealed,
                address.map(|a| a.to_string()).as_deref(),
                Timestamp::now(),
                Timestamp::now().plus(LOGIN_TTL),
                MAX_PENDING_PER_ADDRESS as i64,
                MAX_PENDING as i64,
            )
            .await?;
        match admitted {
            LoginAdmission::Kept => {}
            LoginAdmission::TooManyFromAddress => {
                return Err(ApiError::too_many(
                    format!(
                        "too many logins in progress from your address (at most \
                         {MAX_PENDING_PER_ADDRESS} in {} minutes); finish one or try again later",
                        LOGIN_TTL.as_secs() / 60
                    ),
                    60,
                ));
            }
            LoginAdmission::TooMany => {
                return Err(ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "too many logins in progress; try again later",
                ));
            }
        }
        Ok((
            start.url,
            self.cookie(self.login_cookie(), binding, LOGIN_TTL),
        ))
    }

    /// Completes a login from the callback's `state` and `code` and the browser's login
    /// cookie: a new session, as the cookie to set.
    pub async fn complete(
        &self,
        state: &str,
        code: &str,
        binding: Option<&str>,
    ) -> Result<Cookie<'static>, ApiError> {
        let sealed = self
            .store
            .take_browser_login(&row_key(LOGIN, state), Timestamp::now())
            .await?
            .ok_or_else(|| {
                ApiError::bad_request("unknown or expired login state; start again at /auth/login")
            })?;
        // Only the login cookie of the browser that started it opens what was kept.
        let pending: PendingLogin = binding
            .and_then(|b| open(LOGIN, b, &sealed))
            .and_then(|plain| serde_json::from_slice(&plain).ok())
            .ok_or_else(|| {
                ApiError::bad_request(
                    "this login was not started by this browser; start again at /auth/login",
                )
            })?;
        let tokens = self
            .login
            .finish(code, pending)
            .await
            .map_err(|e| match e {
                AuthError::Invalid(reason) => {
                    tracing::info!(%reason, "browser login refused");
                    ApiError::bad_request(format!("login failed: {reason}"))
                }
                e @ AuthError::Unavailable(_) => unavailable(e),
            })?;
        // The access token must be one this service accepts, for the same subject.
        let principal = self
            .verifier
            .verify(tokens.access_token.expose())
            .await
            .map_err(|e| match e {
                AuthError::Invalid(reason) => {
                    tracing::info!(%reason, "access token from browser login refused");
                    ApiError::bad_request(format!(
                        "login failed: the provider's access token is not accepted: {reason}"
                    ))
                }
                e @ AuthError::Unavailable(_) => unavailable(e),
            })?;
        if principal.subject != tokens.subject {
            return Err(ApiError::bad_request(
                "login failed: the access token and the ID token name different subjects",
            ));
        }
        // A session is kept only for someone this service gives a role: others have nothing to
        // do here, and their sessions would only take room.
        if principal.roles.is_empty() {
            tracing::info!(subject = %principal.subject, "browser login of a caller without any role: no session");
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "you hold no role in this service (researcher, data controller, collaborator or \
                 operator); ask its operators for access",
            ));
        }
        let token_left = Duration::from_secs(
            u64::try_from(principal.expires_at - chrono::Utc::now().timestamp()).unwrap_or(0),
        );
        let ttl = self.session_ttl.min(token_left);
        let id = spe_auth::random_secret();
        let held = serde_json::to_vec(&Held {
            access_token: tokens.access_token.expose().to_owned(),
            id_token: tokens.id_token.expose().to_owned(),
        })
        .map_err(ApiError::internal)?;
        let kept = self
            .store
            .add_browser_session(
                &row_key(SESSION, &id),
                &seal(SESSION, &id, &held)?,
                Timestamp::now(),
                Timestamp::now().plus(ttl),
                MAX_SESSIONS as i64,
            )
            .await?;
        if !kept {
            return Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "too many sessions; try again later",
            ));
        }
        tracing::info!(subject = %principal.subject, "browser login");
        Ok(self.cookie(self.session_cookie(), id, ttl))
    }

    /// Ends the request's session, if any; returns where to send the browser next.
    pub async fn end(&self, req: &HttpRequest) -> String {
        let mut id_token = None;
        if let Some(cookie) = req.cookie(self.session_cookie()) {
            match self
                .store
                .end_browser_session(&row_key(SESSION, cookie.value()))
                .await
            {
                Ok(Some(sealed)) => {
                    id_token = open(SESSION, cookie.value(), &sealed)
                        .and_then(|plain| serde_json::from_slice::<Held>(&plain).ok())
                        .map(|h| spe_core::secret::Secret::new(h.id_token));
                }
                Ok(None) => {}
                Err(e) => tracing::warn!(error = %e, "cannot end a browser session"),
            }
        }
        match self.login.logout_url(id_token.as_ref()).await {
            Some(url) => url,
            None => self.after_login_path().to_owned(),
        }
    }

    /// The CSRF token of the request's session: derived from its cookie (never stored), so
    /// every instance gives the same one. `None` without a session cookie.
    pub fn csrf_token(&self, req: &HttpRequest) -> Option<String> {
        let cookie = req.cookie(self.session_cookie())?;
        Some(row_key("csrf", cookie.value()))
    }

    /// Whether the request's session cookie names a live session.
    pub async fn is_live(&self, req: &HttpRequest) -> bool {
        match req.cookie(self.session_cookie()) {
            Some(cookie) => matches!(
                self.store
                    .browser_session(&row_key(SESSION, cookie.value()), Timestamp::now())
                    .await,
                Ok(Some(_))
            ),
            None => false,
        }
    }

    /// The access token of the request's session: `None` without a session cookie; 401 for
    /// an unknown or expired session; 403 for a state-changing request from another origin.
    pub async fn access_token(&self, req: &HttpRequest) -> Result<Option<String>, ApiError> {
        let Some(cookie) = req.cookie(self.session_cookie()) else {
            return Ok(None);
        };
        let sealed = self
            .store
            .browser_session(&row_key(SESSION, cookie.value()), Timestamp::now())
            .await?;
        let token = sealed
            .and_then(|sealed| open(SESSION, cookie.value(), &sealed))
            .and_then(|plain| serde_json::from_slice::<Held>(&plain).ok())
            .map(|held| held.access_token);
        let Some(token) = token else {
            return Err(ApiError::unauthorized(
                "your session has ended; log in again at /auth/login",
                "Bearer realm=\"spe\"",
            ));
        };
        let safe = [Method::GET, Method::HEAD, Method::OPTIONS].contains(req.method());
        if !safe {
            let origin = req
                .headers()
                .get(header::ORIGIN)
                .and_then(|v| v.to_str().ok());
            if origin != Some(self.origin.as_str()) {
                return Err(ApiError::new(
                    StatusCode::FORBIDDEN,
                    "a request authenticated by the session cookie must come from this service's \
                     own pages (Origin)",
                ));
            }
        }
        Ok(Some(token))
    }
}

fn unavailable(e: AuthError) -> ApiError {
    tracing::error!(error = %e, "browser login: identity provider unavailable");
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "the identity provider cannot be reached; try again later",
    )
}

/// The request span of every request (tracing-actix-web's default), except that the query of
/// `/auth/callback` (the authorization code and state) is never recorded.
pub struct RootSpan;

impl tracing_actix_web::RootSpanBuilder for RootSpan {
    fn on_request_start(request: &actix_web::dev::ServiceRequest) -> tracing::Span {
        if request.path() == "/auth/callback" {
            let request_id = request
                .extensions()
                .get::<tracing_actix_web::RequestId>()
                .map(|id| id.to_string())
                .unwrap_or_default();
            tracing::info_span!(
                "HTTP request",
                http.method = %request.method(),
                http.route = "/auth/callback",
                http.target = "/auth/callback?(redacted)",
                http.status_code = tracing::field::Empty,
                otel.kind = "server",
                otel.status_code = tracing::field::Empty,
                request_id = %request_id,
                exception.message = tracing::field::Empty,
                exception.details = tracing::field::Empty,
            )
        } else {
            tracing_actix_web::root_span!(level = tracing::Level::INFO, request)
        }
    }

    fn on_request_end<B: actix_web::body::MessageBody>(
        span: tracing::Span,
        outcome: &Result<actix_web::dev::ServiceResponse<B>, actix_web::Error>,
    ) {
        tracing_actix_web::DefaultRootSpanBuilder::on_request_end(span, outcome);
    }
}

#[cfg(test)]
mod tests {
    use super::origin_of;

    #[test]
    fn origins() {
        assert_eq!(
            origin_of("https://spe.example/auth/callback").as_deref(),
            Some("https://spe.example")
        );
        assert_eq!(
            origin_of("http://127.0.0.1:8080/auth/callback?x=1").as_deref(),
            Some("http://127.0.0.1:8080")
        );
        assert_eq!(origin_of("nonsense"), None);
    }
}
