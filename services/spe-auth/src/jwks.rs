//! A cached JSON Web Key Set, refetched when a token names a key it does not hold (at most once
//! per `min_refresh`, so that a stream of tokens with made-up `kid`s cannot hammer the issuer).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};
use tokio::sync::{Mutex, RwLock};

use crate::AuthError;

/// Largest JWKS document read.
const MAX_JWKS_BYTES: usize = 512 * 1024;

pub(crate) struct KeySet {
    url: String,
    min_refresh: Duration,
    keys: RwLock<Vec<Jwk>>,
    /// Held while fetching; remembers when the last fetch started.
    last_fetch: Mutex<Option<Instant>>,
    /// Counts refetches (a possible key rotation or revocation), shared with the verifier so
    /// that tokens verified with the old set are verified again. The first fetch is not counted:
    /// nothing was verified before it.
    generation: Arc<AtomicU64>,
}

impl KeySet {
    pub(crate) fn new(url: String, min_refresh: Duration, generation: Arc<AtomicU64>) -> KeySet {
        KeySet {
            url,
            min_refresh,
            keys: RwLock::new(Vec::new()),
            last_fetch: Mutex::new(None),
            generation,
        }
    }

    pub(crate) fn url(&self) -> &str {
        &self.url
    }

    /// The key for a token signed with `alg` naming `kid`, fetching the set again if it is not
    /// known and the last fetch is older than `min_refresh`.
    pub(crate) async fn key(
        &self,
        http: &reqwest::Client,
        kid: Option<&str>,
        alg: Algorithm,
    ) -> Result<DecodingKey, AuthError> {
        if let Some(key) = self.find(kid, alg).await? {
            return Ok(key);
        }
        {
            let mut last = self.last_fetch.lock().await;
            // Another request may have refreshed while this one waited.
            if let Some(key) = self.find(kid, alg).await? {
                return Ok(key);
            }
            if last.is_some_and(|t| t.elapsed() < self.min_refresh) {
                return Err(AuthError::invalid("token signed by an unknown key"));
            }
            let refetch = last.is_some();
            *last = Some(Instant::now());
            let fresh = fetch(http, &self.url).await?;
            tracing::info!(jwks = %self.url, keys = fresh.len(), "fetched signing keys");
            *self.keys.write().await = fresh;
            if refetch {
                self.generation.fetch_add(1, Ordering::SeqCst);
            }
        }
        self.find(kid, alg)
            .await?
            .ok_or_else(|| AuthError::invalid("token signed by an unknown key"))
    }

    async fn find(
        &self,
        kid: Option<&str>,
        alg: Algorithm,
    ) -> Result<Option<DecodingKey>, AuthError> {
        let keys = self.keys.read().await;
        let signing = keys
            .iter()
            .filter(|k| !matches!(k.common.public_key_use, Some(PublicKeyUse::Encryption)));
        let jwk = match kid {
            Some(kid) => signing
                .clone()
                .find(|k| k.common.key_id.as_deref() == Some(kid)),
            // No kid: acceptable only when the set holds exactly one signing key.
            None => {
                let mut all = signing.clone();
                match (all.next(), all.next()) {
                    (Some(only), None) => Some(only),
                    _ => None,
                }
            }
        };
        let Some(jwk) = jwk else { return Ok(None) };
        if let Some(key_alg) = &jwk.common.key_algorithm
            && format!("{key_alg:?}") != format!("{alg:?}")
        {
            return Err(AuthError::invalid("token algorithm does not match its key"));
        }
        if !fits(jwk, alg) {
            return Err(AuthError::invalid("token algorithm does not match its key"));
        }
        DecodingKey::from_jwk(jwk)
            .map(Some)
            .map_err(|_| AuthError::invalid("the signing key cannot be used"))
    }
}

/// Whether a key's type and curve suit the algorithm (RSA for RS*/PS*, P-256 for ES256, P-384
/// for ES384, Ed25519 for EdDSA).
fn fits(jwk: &Jwk, alg: Algorithm) -> bool {
    use Algorithm::*;
    match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => {
            matches!(alg, RS256 | RS384 | RS512 | PS256 | PS384 | PS512)
        }
        AlgorithmParameters::EllipticCurve(ec) => matches!(
            (&ec.curve, alg),
            (EllipticCurve::P256, ES256) | (EllipticCurve::P384, ES384)
        ),
        AlgorithmParameters::OctetKeyPair(okp) => {
            matches!((&okp.curve, alg), (EllipticCurve::Ed25519, EdDSA))
        }
        AlgorithmParameters::OctetKey(_) => false,
    }
}

/// Fetches a JWKS; keys that do not parse (unknown types, encryption-only parameters) are
/// skipped rather than failing the whole set.
pub(crate) async fn fetch(http: &reqwest::Client, url: &str) -> Result<Vec<Jwk>, AuthError> {
    let body = crate::http::get_json(http, url, None, MAX_JWKS_BYTES).await?;
    let keys = body
        .get("keys")
        .and_then(|k| k.as_array())
        .ok_or_else(|| AuthError::unavailable(format!("{url}: not a JWKS document")))?;
    Ok(keys
        .iter()
        .filter_map(|k| serde_json::from_value::<Jwk>(k.clone()).ok())
        .collect())
}
