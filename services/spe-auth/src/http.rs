//! The few HTTP calls spe-auth makes (JWKS, userinfo, introspection), with size limits and
//! errors that never carry a token.

use futures_util::StreamExt;

use openidconnect::ProviderMetadata;
use openidconnect::core::{
    CoreAuthDisplay, CoreClaimName, CoreClaimType, CoreClientAuthMethod, CoreGrantType,
    CoreJsonWebKey, CoreJweContentEncryptionAlgorithm, CoreJweKeyManagementAlgorithm,
    CoreResponseMode, CoreResponseType, CoreSubjectIdentifierType,
};

use crate::AuthError;

/// An issuer's discovery document, with the extra fields `A` that the reader needs.
pub(crate) type DiscoveryMetadata<A> = ProviderMetadata<
    A,
    CoreAuthDisplay,
    CoreClientAuthMethod,
    CoreClaimName,
    CoreClaimType,
    CoreGrantType,
    CoreJweContentEncryptionAlgorithm,
    CoreJweKeyManagementAlgorithm,
    CoreJsonWebKey,
    CoreResponseMode,
    CoreResponseType,
    CoreSubjectIdentifierType,
>;

/// A client for identity providers: no redirects followed, a timeout on every request.
pub fn client(timeout: std::time::Duration) -> Result<reqwest::Client, AuthError> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(timeout)
        .build()
        .map_err(|e| AuthError::unavailable(format!("cannot build an HTTP client: {e}")))
}

/// GETs `url` (with `bearer` as Authorization when given) and parses at most `limit` bytes of
/// JSON. Only the URL and the status appear in errors.
pub(crate) async fn get_json(
    http: &reqwest::Client,
    url: &str,
    bearer: Option<&str>,
    limit: usize,
) -> Result<serde_json::Value, AuthError> {
    let mut req = http.get(url).header("accept", "application/json");
    if let Some(token) = bearer {
        req = req.bearer_auth(token);
    }
    read_json(req, url, limit).await
}

pub(crate) async fn read_json(
    req: reqwest::RequestBuilder,
    url: &str,
    limit: usize,
) -> Result<serde_json::Value, AuthError> {
    let resp = req
        .send()
        .await
        .map_err(|e| AuthError::unavailable(format!("{url}: {}", e.without_url())))?;
    let status = resp.status();
    if !status.is_success() {
        return Err(AuthError::unavailable(format!("{url}: HTTP {status}")));
    }
    let mut body = Vec::new();
    let mut stream = resp.bytes_stream();
    while let Some(chunk) = stream.next().await {
        let chunk =
            chunk.map_err(|e| AuthError::unavailable(format!("{url}: {}", e.without_url())))?;
        if body.len() + chunk.len() > limit {
            return Err(AuthError::unavailable(format!(
                "{url}: answer larger than {limit} bytes"
            )));
        }
        body.extend_from_slice(&chunk);
    }
    serde_json::from_slice(&body)
        .map_err(|_| AuthError::unavailable(format!("{url}: answer is not JSON")))
}
