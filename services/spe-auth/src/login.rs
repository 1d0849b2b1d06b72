//! Browser login: the OpenID Connect authorization code flow with PKCE (S256), `state` and
//! `nonce`, through `openidconnect`'s `CoreClient`.
//!
//! [`BrowserLogin::start`] gives the provider URL to send the browser to and what must be kept
//! (server-side) until the callback; [`BrowserLogin::finish`] exchanges the code, verifies the ID
//! token (signature with an asymmetric algorithm, issuer, audience, expiry, nonce) and returns the
//! tokens. Nothing here logs a token, a code or a verifier; errors name what failed, never with
//! what.

use std::sync::Arc;
use std::time::Duration;

use openidconnect::core::{CoreAuthenticationFlow, CoreClient, CoreJwsSigningAlgorithm};
use openidconnect::{
    AdditionalProviderMetadata, AuthorizationCode, ClientId, ClientSecret, CsrfToken,
    EndpointMaybeSet, EndpointNotSet, EndpointSet, IssuerUrl, Nonce, OAuth2TokenResponse,
    PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, Scope, TokenResponse,
};
use serde::{Deserialize, Serialize};
use spe_core::config::BrowserLoginConfig;
use spe_core::secret::Secret;
use tokio::sync::{Mutex, RwLock};

use crate::AuthError;

/// Discovery metadata with the RP-initiated logout endpoint.
#[derive(Clone, Debug, Deserialize, Serialize)]
struct LogoutMetadata {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    end_session_endpoint: Option<String>,
}
impl AdditionalProviderMetadata for LogoutMetadata {}

type Metadata = crate::http::DiscoveryMetadata<LogoutMetadata>;

type WebClient = CoreClient<
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointSet,
    EndpointMaybeSet,
>;

struct Discovered {
    client: WebClient,
    end_session: Option<String>,
    /// The modification time of `client_secret_file` when the client was built with it.
    secret_stamp: Option<std::time::SystemTime>,
}

/// The browser login of one issuer (the main `auth.oidc.issuer`).
pub struct BrowserLogin {
    issuer: String,
    config: BrowserLoginConfig,
    http: reqwest::Client,
    discovered: RwLock<Option<Arc<Discovered>>>,
    discovering: Mutex<()>,
}

impl std::fmt::Debug for BrowserLogin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BrowserLogin")
            .field("issuer", &self.issuer)
            .field("client_id", &self.config.client_id)
            .finish_non_exhaustive()
    }
}

/// What the server keeps between [`BrowserLogin::start`] and [`BrowserLogin::finish`]: the
/// PKCE verifier and the nonce. Never sent to the browser.
#[derive(Serialize, Deserialize)]
pub struct PendingLogin {
    pkce_verifier: String,
    nonce: String,
}

impl std::fmt::Debug for PendingLogin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PendingLogin(<redacted>)")
    }
}

/// Where to send the browser, and what to keep until it comes back.
#[derive(Debug)]
pub struct LoginStart {
    /// The provider's authorization URL (carries state, nonce and the PKCE challenge).
    pub url: String,
    /// The `state` the callback must carry.
    pub state: String,
    pub pending: PendingLogin,
}

/// The outcome of a completed login. Debug is redacted.
pub struct LoginTokens {
    pub access_token: Secret,
    /// Kept for logout (`id_token_hint`).
    pub id_token: Secret,
    /// (this login's issuer, `sub` of the verified ID token).
    pub subject: spe_core::Subject,
    /// Seconds the access token lives, if the provider said.
    pub expires_in: Option<Duration>,
}

impl std::fmt::Debug for LoginTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginTokens")
            .field("subject", &self.subject)
            .finish_non_exhaustive()
    }
}

/// Signature algorithms accepted on ID tokens: asymmetric only (never HS* with the client
/// secret, never `none`).
const ID_TOKEN_ALGORITHMS: [CoreJwsSigningAlgorithm; 9] = [
    CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
    CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha384,
    CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha512,
    CoreJwsSigningAlgorithm::RsaSsaPssSha256,
    CoreJwsSigningAlgorithm::RsaSsaPssSha384,
    CoreJwsSigningAlgorithm::RsaSsaPssSha512,
    CoreJwsSigningAlgorithm::EcdsaP256Sha256,
    CoreJwsSigningAlgorithm::EcdsaP384Sha384,
    CoreJwsSigningAlgorithm::EdDsa,
];

impl BrowserLogin {
    pub fn new(
        issuer: &str,
        config: &BrowserLoginConfig,
        timeout: Duration,
    ) -> Result<BrowserLogin, AuthError> {
        RedirectUrl::new(config.redirect_url.clone())
            .map_err(|_| AuthError::unavailable("browser.redirect_url is not a URL"))?;
        Ok(BrowserLogin {
            issuer: issuer.to_owned(),
            config: config.clone(),
            http: crate::http::client(timeout)?,
            discovered: RwLock::new(None),
            discovering: Mutex::new(()),
        })
    }

    pub fn config(&self) -> &BrowserLoginConfig {
        &self.config
    }

    /// The modification time of `client_secret_file`, if one is configured.
    fn secret_stamp(&self) -> Result<Option<std::time::SystemTime>, AuthError> {
        let Some(path) = &self.config.client_secret_file else {
            return Ok(None);
        };
        std::fs::metadata(path)
            .and_then(|m| m.modified())
            .map(Some)
            .map_err(|e| {
                AuthError::unavailable(format!(
                    "auth.oidc.browser.client_secret_file {}: {e}",
                    path.display()
                ))
            })
    }

    /// The client secret: configured, or the first line of `client_secret_file` now.
    fn client_secret(&self) -> Result<Option<ClientSecret>, AuthError> {
        if let Some(secret) = &self.config.client_secret {
            return Ok(Some(ClientSecret::new(secret.expose().to_owned())));
        }
        let Some(path) = &self.config.client_secret_file else {
            return Ok(None);
        };
        let problem = |why: String| {
            AuthError::unavailable(format!(
                "auth.oidc.browser.client_secret_file {}: {why}",
                path.display()
            ))
        };
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(path)
                .map_err(|e| problem(e.to_string()))?
                .permissions()
                .mode();
            if mode & 0o077 != 0 {
                return Err(problem("others may read it: chmod 600".to_owned()));
            }
        }
        let text = std::fs::read_to_string(path).map_err(|e| problem(e.to_string()))?;
        let secret = text.lines().next().unwrap_or_default().trim();
        if secret.is_empty() {
            return Err(problem("it is empty".to_owned()));
        }
        Ok(Some(ClientSecret::new(secret.to_owned())))
    }

    /// The provider's metadata and this service's client, built again when the client secret
    /// file changed since.
    async fn discovered(&self) -> Result<Arc<Discovered>, AuthError> {
        let stamp = self.secret_stamp()?;
        if let Some(d) = self.discovered.read().await.as_ref()
            && d.secret_stamp == stamp
        {
            return Ok(d.clone());
        }
        let _one_at_a_time = self.discovering.lock().await;
        if let Some(d) = self.discovered.read().await.as_ref()
            && d.secret_stamp == stamp
        {
            return Ok(d.clone());
        }
        let url = IssuerUrl::new(self.issuer.clone())
            .map_err(|_| AuthError::unavailable("issuer is not a URL"))?;
        let metadata = Metadata::discover_async(url, &self.http)
            .await
            .map_err(|e| AuthError::unavailable(format!("{}: discovery: {e}", self.issuer)))?;
        let token_url = metadata
            .token_endpoint()
            .cloned()
            .ok_or_else(|| AuthError::unavailable(format!("{}: no token endpoint", self.issuer)))?;
        let end_session = metadata.additional_metadata().end_session_endpoint.clone();
        let redirect = RedirectUrl::new(self.config.redirect_url.clone())
            .map_err(|_| AuthError::unavailable("browser.redirect_url is not a URL"))?;
        let client = CoreClient::from_provider_metadata(
            metadata,
            ClientId::new(self.config.client_id.clone()),
            self.client_secret()?,
        )
        .set_token_uri(token_url)
        .set_redirect_uri(redirect);
        let discovered = Arc::new(Discovered {
            client,
            end_session,
            secret_stamp: stamp,
        });
        *self.discovered.write().await = Some(discovered.clone());
        Ok(discovered)
    }

    /// A new login: the provider URL with a fresh state, nonce and PKCE (S256) challenge.
    pub async fn start(&self) -> Result<LoginStart, AuthError> {
        let d = self.discovered().await?;
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let (url, state, nonce) = d
            .client
            .authorize_url(
                CoreAuthenticationFlow::AuthorizationCode,
                CsrfToken::new_random,
                Nonce::new_random,
            )
            .add_scopes(self.config.scopes.iter().cloned().map(Scope::new))
            .set_pkce_challenge(challenge)
            .url();
        Ok(LoginStart {
            url: url.to_string(),
            state: state.secret().clone(),
            pending: PendingLogin {
                pkce_verifier: verifier.secret().clone(),
                nonce: nonce.secret().clone(),
            },
        })
    }

    /// Exchanges `code` (with the PKCE verifier) and verifies the ID token and its nonce.
    /// `Invalid`: the code or the ID token was refused; `Unavailable`: the provider could not
    /// be reached.
    pub async fn finish(
        &self,
        code: &str,
        pending: PendingLogin,
    ) -> Result<LoginTokens, AuthError> {
        let d = self.discovered().await?;
        let response = d
            .client
            .exchange_code(AuthorizationCode::new(code.to_owned()))
            .set_pkce_verifier(PkceCodeVerifier::new(pending.pkce_verifier))
            .request_async(&self.http)
            .await
            .map_err(|e| match e {
                openidconnect::RequestTokenError::ServerResponse(r) => {
                    AuthError::invalid(format!("the provider refused the code: {}", r.error()))
                }
                other => AuthError::unavailable(format!(
                    "{}: token endpoint: {}",
                    self.issuer,
                    token_error_kind(&other)
                )),
            })?;
        let id_token = response
            .id_token()
            .ok_or_else(|| AuthError::invalid("the provider returned no ID token"))?;
        let verifier = d
            .client
            .id_token_verifier()
            .set_allowed_algs(ID_TOKEN_ALGORITHMS);
        let claims = id_token
            .claims(&verifier, &Nonce::new(pending.nonce))
            .map_err(|e| AuthError::invalid(format!("ID token refused: {}", id_token_error(&e))))?;
        Ok(LoginTokens {
            access_token: Secret::new(response.access_token().secret().clone()),
            id_token: Secret::new(id_token.to_string()),
            subject: spe_core::Subject::new(self.issuer.clone(), claims.subject().as_str())
                .map_err(|e| AuthError::invalid(format!("ID token subject: {e}")))?,
            expires_in: response.expires_in(),
        })
    }

    /// The provider's end-session URL for RP-initiated logout (`id_token_hint`, `client_id`,
    /// and `post_logout_redirect_uri` when configured), if the provider has one.
    pub async fn logout_url(&self, id_token: Option<&Secret>) -> Option<String> {
        let d = self.discovered().await.ok()?;
        let mut url = reqwest::Url::parse(d.end_session.as_deref()?).ok()?;
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("client_id", &self.config.client_id);
            if let Some(t) = id_token {
                q.append_pair("id_token_hint", t.expose());
            }
            if let Some(after) = &self.config.post_logout_redirect_url {
                q.append_pair("post_logout_redirect_uri", after);
            }
        }
        Some(url.to_string())
    }
}

/// What kind of failure a token request had, without anything from the request.
fn token_error_kind<RE, T>(e: &openidconnect::RequestTokenError<RE, T>) -> &'static str
where
    RE: std::error::Error + 'static,
    T: openidconnect::ErrorResponse + 'static,
{
    match e {
        openidconnect::RequestTokenError::ServerResponse(_) => "error response",
        openidconnect::RequestTokenError::Request(_) => "request failed",
        openidconnect::RequestTokenError::Parse(_, _) => "unparsable answer",
        openidconnect::RequestTokenError::Other(_) => "unexpected answer",
    }
}

fn id_token_error(e: &openidconnect::ClaimsVerificationError) -> &'static str {
    use openidconnect::ClaimsVerificationError::*;
    match e {
        Expired(_) => "expired",
        InvalidAudience(_) => "not for this client",
        InvalidIssuer(_) => "wrong issuer",
        InvalidNonce(_) => "nonce does not match",
        SignatureVerification(_) => "signature not valid",
        _ => "not valid",
    }
}

/// A fresh unguessable value (256 random bits, base64url): session ids, login bindings.
pub fn random_secret() -> String {
    CsrfToken::new_random_len(32).secret().clone()
}
