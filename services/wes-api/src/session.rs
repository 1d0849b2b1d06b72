//! Browser sessions for the web UI (`auth.oidc.browser`).
//!
//! `/auth/login` starts an authorization code flow (spe-auth's [`BrowserLogin`]: PKCE S256,
//! state, nonce) and sets a short-lived login cookie binding the flow to this browser;
//! `/auth/callback` checks state and binding, exchanges the code, verifies the ID token and its
//! nonce and the access token (as any bearer token), then sets the session cookie: an opaque
//! random id, `HttpOnly`, `SameSite=Lax`, `Secure` unless configured off for local http.
//! Sessions live in memory on the server, holding the tokens; the browser never sees a token.
//! A request with the session cookie and no `Authorization` header is authenticated with the
//! session's access token; one that changes state (not GET/HEAD/OPTIONS) must also carry an
//! `Origin` equal to this service's (from `redirect_url`), else 403. Each session also holds a
//! CSRF token that the web UI's forms carry (`crate::ui`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::cookie::{Cookie, SameSite};
use actix_web::http::{Method, StatusCode, header};
use actix_web::{HttpMessage, HttpRequest};
use spe_auth::{AuthError, BrowserLogin, PendingLogin, Verifier};
use spe_core::config::BrowserLoginConfig;
use spe_core::secret::Secret;

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

struct Session {
    access_token: Secret,
    id_token: Secret,
    /// The session's CSRF token: every form of the web UI carries it and every POST of one is
    /// checked against it (`crate::ui::check_csrf`), besides the `Origin` check below.
    csrf: String,
    expires: Instant,
}

struct Pending {
    binding: String,
    login: PendingLogin,
    created: Instant,
    address: Option<std::net::IpAddr>,
}

/// The server side of browser sessions. Shared by every worker (`web::Data`).
pub struct Sessions {
    login: BrowserLogin,
    verifier: Arc<Verifier>,
    secure: bool,
    /// This service's origin as browsers see it (`scheme://host[:port]` of `redirect_url`).
    origin: String,
    session_ttl: Duration,
    sessions: Mutex<HashMap<String, Session>>,
    pending: Mutex<HashMap<String, Pending>>,
}

impl std::fmt::Debug for Sessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sessions")
            .field("origin", &self.origin)
            .finish_non_exhaustive()
    }
}

fn locked<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
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
            sessions: Mutex::new(HashMap::new()),
            pending: Mutex::new(HashMap::new()),
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
        {
            let mut pending = locked(&self.pending);
            let from_here = |pending: &HashMap<String, Pending>| {
                address.map_or(0, |a| {
                    pending.values().filter(|p| p.address == Some(a)).count()
                })
            };
            if pending.len() >= MAX_PENDING || from_here(&pending) >= MAX_PENDING_PER_ADDRESS {
                pending.retain(|_, p| p.created.elapsed() < LOGIN_TTL);
            }
            if from_here(&pending) >= MAX_PENDING_PER_ADDRESS {
                return Err(ApiError::too_many(
                    format!(
                        "too many logins in progress from your address (at most \
                         {MAX_PENDING_PER_ADDRESS} in {} minutes); finish one or try again later",
                        LOGIN_TTL.as_secs() / 60
                    ),
                    60,
                ));
            }
            if pending.len() >= MAX_PENDING {
                return Err(ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "too many logins in progress; try again later",
                ));
            }
            pending.insert(
                start.state,
                Pending {
                    binding: binding.clone(),
                    login: start.pending,
                    created: Instant::now(),
                    address,
                },
            );
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
        let pending = locked(&self.pending)
            .remove(state)
            .filter(|p| p.created.elapsed() < LOGIN_TTL)
            .ok_or_else(|| {
                ApiError::bad_request("unknown or expired login state; start again at /auth/login")
            })?;
        if binding != Some(pending.binding.as_str()) {
            return Err(ApiError::bad_request(
                "this login was not started by this browser; start again at /auth/login",
            ));
        }
        let tokens = self
            .login
            .finish(code, pending.login)
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
        let now = chrono::Utc::now().timestamp();
        let token_left =
            Duration::from_secs(u64::try_from(principal.expires_at - now).unwrap_or(0));
        let ttl = self.session_ttl.min(token_left);
        let id = spe_auth::random_secret();
        {
            let mut sessions = locked(&self.sessions);
            if sessions.len() >= MAX_SESSIONS {
                let now = Instant::now();
                sessions.retain(|_, s| s.expires > now);
            }
            if sessions.len() >= MAX_SESSIONS {
                return Err(ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "too many sessions; try again later",
                ));
            }
            sessions.insert(
                id.clone(),
                Session {
                    access_token: tokens.access_token,
                    id_token: tokens.id_token,
                    csrf: spe_auth::random_secret(),
                    expires: Instant::now() + ttl,
                },
            );
        }
        tracing::info!(subject = %principal.subject, "browser login");
        Ok(self.cookie(self.session_cookie(), id, ttl))
    }

    /// Ends the request's session, if any; returns where to send the browser next.
    pub async fn end(&self, req: &HttpRequest) -> String {
        let ended = req
            .cookie(self.session_cookie())
            .and_then(|c| locked(&self.sessions).remove(c.value()));
        let id_token = ended.as_ref().map(|s| &s.id_token);
        match self.login.logout_url(id_token).await {
            Some(url) => url,
            None => self.after_login_path().to_owned(),
        }
    }

    /// The CSRF token of the request's live session; `None` without one.
    pub fn csrf_token(&self, req: &HttpRequest) -> Option<String> {
        let cookie = req.cookie(self.session_cookie())?;
        locked(&self.sessions)
            .get(cookie.value())
            .filter(|s| s.expires > Instant::now())
            .map(|s| s.csrf.clone())
    }

    /// The access token of the request's session: `None` without a session cookie; 401 for
    /// an unknown or expired session; 403 for a state-changing request from another origin.
    pub fn access_token(&self, req: &HttpRequest) -> Result<Option<String>, ApiError> {
        let Some(cookie) = req.cookie(self.session_cookie()) else {
            return Ok(None);
        };
        let token = {
            let mut sessions = locked(&self.sessions);
            match sessions.get(cookie.value()) {
                Some(s) if s.expires > Instant::now() => Some(s.access_token.expose().to_owned()),
                Some(_) => {
                    sessions.remove(cookie.value());
                    None
                }
                None => None,
            }
        };
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
