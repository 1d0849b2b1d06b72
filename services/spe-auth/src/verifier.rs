//! Bearer token verification against the configured issuers.
//!
//! A token is verified in full (signature, `iss`, `aud`, `exp`, `nbf`, or its introspection
//! answer; then userinfo and the passport's visas) the first time it is seen. The resulting
//! [`Principal`] is then kept, keyed by the token's SHA-256, until the earliest of the token's
//! `exp`, its visas' `exp` and the cache periods of the userinfo or introspection answers it
//! used; at most [`MAX_VERIFIED_TOKENS`] of them, the least recently used making room. A refetch
//! of any key set (an issuer's or a visa issuer's: a key rotation or revocation) empties the
//! cache, so that every token is verified again against the new keys.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex as StdMutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, Validation};
use openidconnect::{AdditionalProviderMetadata, IssuerUrl};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use spe_core::Subject;
use spe_core::config::{
    ASYMMETRIC_ALGORITHMS, IntrospectionConfig, IssuerConfig, OidcConfig, Role,
};
use tokio::sync::{Mutex, RwLock, Semaphore};

use crate::cache::{Key, Lru};
use crate::jwks::KeySet;
use crate::visa::{Visa, VisaVerifier};
use crate::{AuthError, roles};

/// Tokens longer than this are refused unread.
const MAX_TOKEN_BYTES: usize = 16 * 1024;
/// Largest userinfo or introspection answer read.
const MAX_ANSWER_BYTES: usize = 1024 * 1024;
/// Cached userinfo/introspection answers kept per issuer at most (least recently used evicted).
const MAX_CACHE_ENTRIES: usize = 4096;
/// Verified tokens remembered at most (least recently used evicted).
pub const MAX_VERIFIED_TOKENS: usize = 10_000;
/// Introspection calls in flight at most: a flood of made-up opaque tokens gets 503 beyond it
/// instead of tying up the provider and the service (JWTs never wait for it).
const MAX_INTROSPECTIONS_IN_FLIGHT: usize = 32;
/// Claims LS-Login may release only from userinfo.
const USERINFO_CLAIMS: [&str; 3] = [
    "eduperson_entitlement",
    "ga4gh_passport_v1",
    "crypt4ghPublicKeys",
];

/// Discovery metadata with the one extra field spe-auth reads.
#[derive(Clone, Debug, Deserialize, Serialize)]
struct ExtraMetadata {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    introspection_endpoint: Option<String>,
}
impl AdditionalProviderMetadata for ExtraMetadata {}

type Metadata = crate::http::DiscoveryMetadata<ExtraMetadata>;

/// Who a verified token speaks for.
#[derive(Clone, Debug, Serialize)]
pub struct Principal {
    /// (issuer, `sub`): `sub` alone is unique only within its issuer.
    pub subject: Subject,
    /// Roles under the mapping of the token's own issuer.
    pub roles: Vec<Role>,
    /// `eduperson_entitlement` values (from the token or userinfo), as asserted by
    /// `subject.issuer()`.
    pub entitlements: Vec<String>,
    /// The passport's visas that verified (signature from a trusted (iss, jku) pair, times,
    /// `by` policy, conditions).
    pub visas: Vec<Visa>,
    /// `exp` of the access token (seconds since the epoch).
    pub expires_at: i64,
    /// The `email` claim (from the token, or from userinfo when that was asked anyway), where
    /// it looks like an address: where notifications about the caller's runs go.
    pub email: Option<String>,
    /// The `crypt4ghPublicKeys` claim (LS-Login): the Crypt4GH public keys the person's
    /// encrypted downloads are bound to, as the claim gives them (checked where used).
    pub crypt4gh_public_keys: Vec<String>,
}

impl Principal {
    /// ControlledAccessGrants visas whose value is exactly `value` (a dataset's configured
    /// visa value).
    pub fn grants<'a>(&'a self, value: &'a str) -> impl Iterator<Item = &'a Visa> + 'a {
        self.visas
            .iter()
            .filter(move |v| v.visa_type == "ControlledAccessGrants" && v.value == value)
    }
}

struct Discovered {
    keys: KeySet,
    userinfo: Option<String>,
    introspection: Option<String>,
}

/// A userinfo or introspection answer and when its cache period ends.
type Answer = (Map<String, Value>, SystemTime);

struct Issuer {
    config: IssuerConfig,
    algorithms: Vec<Algorithm>,
    discovered: RwLock<Option<Arc<Discovered>>>,
    last_discovery: Mutex<Option<std::time::Instant>>,
    /// sha256(kind, token) -> claims, until the kind's cache period ends. Never the token itself.
    answers: StdMutex<Lru<Map<String, Value>>>,
    /// Introspections under way, by sha256(token): a second request with the same token waits
    /// for the first one's answer instead of asking again.
    in_flight: StdMutex<HashMap<Key, Arc<Mutex<()>>>>,
}

/// Verified tokens and the key-set generation they were verified under.
struct Verified {
    principals: Lru<Principal>,
    generation: u64,
}

/// Verifies bearer tokens for every configured issuer. Cheap to share (`Arc`).
pub struct Verifier {
    issuers: Vec<Issuer>,
    visas: VisaVerifier,
    http: reqwest::Client,
    http_timeout: Duration,
    /// Refetches of any key set so far (shared with every [`KeySet`]).
    key_generation: Arc<AtomicU64>,
    verified: StdMutex<Verified>,
    full_verifications: AtomicU64,
    introspections: Semaphore,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field(
                "issuers",
                &self
                    .issuers
                    .iter()
                    .map(|i| i.config.issuer.as_str())
                    .collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

fn algorithm(name: &str) -> Option<Algorithm> {
    use Algorithm::*;
    Some(match name {
        "RS256" => RS256,
        "RS384" => RS384,
        "RS512" => RS512,
        "PS256" => PS256,
        "PS384" => PS384,
        "PS512" => PS512,
        "ES256" => ES256,
        "ES384" => ES384,
        "EdDSA" => EdDSA,
        _ => return None,
    })
}

/// The asymmetric algorithms among `names` (all of them when `None`).
pub(crate) fn algorithms(names: Option<&[String]>) -> Vec<Algorithm> {
    match names {
        Some(names) => names.iter().filter_map(|n| algorithm(n)).collect(),
        None => ASYMMETRIC_ALGORITHMS
            .iter()
            .filter_map(|n| algorithm(n))
            .collect(),
    }
}

/// `iss` of a JWT read without verification, only to choose whose keys verify it.
pub(crate) fn unverified_claim(token: &str, name: &str) -> Option<String> {
    let payload = token.split('.').nth(1)?;
    let bytes = URL_SAFE_NO_PAD.decode(payload).ok()?;
    let claims: Map<String, Value> = serde_json::from_slice(&bytes).ok()?;
    claims.get(name)?.as_str().map(str::to_owned)
}

pub(crate) fn jwt_error(e: &jsonwebtoken::errors::Error) -> AuthError {
    AuthError::invalid(match e.kind() {
        ErrorKind::ExpiredSignature => "token has expired".to_owned(),
        ErrorKind::ImmatureSignature => "token is not valid yet".to_owned(),
        ErrorKind::InvalidIssuer => "token issuer is not trusted".to_owned(),
        ErrorKind::InvalidAudience => "token is not meant for this service".to_owned(),
        ErrorKind::InvalidSignature => "token signature is not valid".to_owned(),
        ErrorKind::InvalidAlgorithm => "token algorithm does not match its key".to_owned(),
        ErrorKind::MissingRequiredClaim(c) => format!("token lacks the {c} claim"),
        _ => "token cannot be verified".to_owned(),
    })
}

/// The cache key of one kind of answer about a token (never the token itself).
fn token_hash(kind: &str, token: &str) -> Key {
    let mut h = Sha256::new();
    h.update(kind.as_bytes());
    h.update([0u8]);
    h.update(token.as_bytes());
    h.finalize().into()
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// An `exp` claim (seconds since the epoch) as a point in time; before the epoch is the epoch.
fn at(epoch_seconds: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(epoch_seconds.max(0) as u64)
}

fn strings(claims: &Map<String, Value>, name: &str) -> Vec<String> {
    match claims.get(name) {
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect(),
        Some(Value::String(s)) => vec![s.clone()],
        _ => Vec::new(),
    }
}

impl Verifier {
    /// A verifier for `config`. Discovery happens on first use or in [`Verifier::warm_up`], so
    /// that a provider outage at start-up does not keep the service down.
    pub fn new(config: &OidcConfig) -> Result<Verifier, AuthError> {
        let http_timeout = Duration::from_secs(config.http_timeout_seconds);
        let http = crate::http::client(http_timeout)?;
        let key_generation = Arc::new(AtomicU64::new(0));
        let issuers = config
            .issuers()
            .into_iter()
            .map(|c| Issuer {
                algorithms: algorithms(c.algorithms.as_deref()),
                config: c,
                discovered: RwLock::new(None),
                last_discovery: Mutex::new(None),
                answers: StdMutex::new(Lru::new(MAX_CACHE_ENTRIES)),
                in_flight: StdMutex::new(HashMap::new()),
            })
            .collect();
        Ok(Verifier {
            issuers,
            visas: VisaVerifier::new(
                &config.passports,
                config.leeway_seconds,
                key_generation.clone(),
            ),
            http,
            http_timeout,
            key_generation,
            verified: StdMutex::new(Verified {
                principals: Lru::new(MAX_VERIFIED_TOKENS),
                generation: 0,
            }),
            full_verifications: AtomicU64::new(0),
            introspections: Semaphore::new(MAX_INTROSPECTIONS_IN_FLIGHT),
        })
    }

    /// The same verifier remembering at most `capacity` verified tokens instead of
    /// [`MAX_VERIFIED_TOKENS`] (at least one).
    pub fn with_token_cache_capacity(self, capacity: usize) -> Verifier {
        Verifier {
            verified: StdMutex::new(Verified {
                principals: Lru::new(capacity),
                generation: 0,
            }),
            ..self
        }
    }

    /// How many tokens were verified in full (not answered from the verified-token cache) since
    /// start: for tests and metrics.
    pub fn full_verifications(&self) -> u64 {
        self.full_verifications.load(Ordering::Relaxed)
    }

    /// Tokens in the verified-token cache now.
    pub fn cached_tokens(&self) -> usize {
        self.verified.lock().map_or(0, |v| v.principals.len())
    }

    /// Discovers every issuer now; returns the first failure (the verifier still works and
    /// retries on use).
    pub async fn warm_up(&self) -> Result<(), AuthError> {
        for issuer in &self.issuers {
            self.discovered(issuer).await?;
        }
        Ok(())
    }

    async fn discovered(&self, issuer: &Issuer) -> Result<Arc<Discovered>, AuthError> {
        if let Some(d) = issuer.discovered.read().await.as_ref() {
            return Ok(d.clone());
        }
        let mut last = issuer.last_discovery.lock().await;
        if let Some(d) = issuer.discovered.read().await.as_ref() {
            return Ok(d.clone());
        }
        if last.is_some_and(|t| t.elapsed() < Duration::from_secs(5)) {
            return Err(AuthError::unavailable(format!(
                "{}: discovery failed recently",
                issuer.config.issuer
            )));
        }
        *last = Some(std::time::Instant::now());
        let url = IssuerUrl::new(issuer.config.issuer.clone())
            .map_err(|_| AuthError::unavailable("issuer is not a URL"))?;
        let metadata = Metadata::discover_async(url, &self.http)
            .await
            .map_err(|e| {
                AuthError::unavailable(format!("{}: discovery: {e}", issuer.config.issuer))
            })?;
        let keys = KeySet::new(
            metadata.jwks_uri().url().to_string(),
            Duration::from_secs(issuer.config.jwks_min_refresh_seconds),
            self.key_generation.clone(),
        );
        let discovered = Arc::new(Discovered {
            keys,
            userinfo: metadata.userinfo_endpoint().map(|u| u.url().to_string()),
            introspection: metadata
                .additional_metadata()
                .introspection_endpoint
                .clone(),
        });
        tracing::info!(
            issuer = %issuer.config.issuer,
            jwks = %discovered.keys.url(),
            "OIDC issuer discovered"
        );
        *issuer.discovered.write().await = Some(discovered.clone());
        Ok(discovered)
    }

    /// Verifies a bearer token and resolves who it speaks for: from the verified-token cache
    /// when this token was verified before and nothing it rests on has ended since.
    pub async fn verify(&self, token: &str) -> Result<Principal, AuthError> {
        if token.is_empty() || token.len() > MAX_TOKEN_BYTES {
            return Err(AuthError::invalid("token is empty or too long"));
        }
        let key = token_hash("verified", token);
        // Taken before verifying: a refetch while this token is verified keeps it out of the
        // cache (it may have been verified with a key that is gone now).
        let generation = self.key_generation.load(Ordering::SeqCst);
        if let Some(principal) = self.remembered(&key) {
            return Ok(principal);
        }
        self.full_verifications.fetch_add(1, Ordering::Relaxed);
        let result = if token.split('.').count() != 3 {
            self.introspect(token).await
        } else {
            self.verify_jwt(token).await
        };
        self.remember(key, generation, result.as_ref().ok());
        result.map(|(principal, _)| principal)
    }

    fn remembered(&self, key: &Key) -> Option<Principal> {
        let mut cache = self.verified.lock().ok()?;
        self.sync(&mut cache);
        cache.principals.get(key, SystemTime::now()).map(|(p, _)| p)
    }

    /// Empties the cache if a key set was refetched since it was last looked at; returns the
    /// current generation.
    fn sync(&self, cache: &mut Verified) -> u64 {
        let current = self.key_generation.load(Ordering::SeqCst);
        if cache.generation != current {
            cache.principals.clear();
            cache.generation = current;
        }
        current
    }

    /// Keeps a verified token's principal until `until`, unless a key set was refetched since
    /// `generation` (then the cache is emptied instead, at once, whether this token verified
    /// or not).
    fn remember(&self, key: Key, generation: u64, verified: Option<&(Principal, SystemTime)>) {
        let Ok(mut cache) = self.verified.lock() else {
            return;
        };
        let current = self.sync(&mut cache);
        if let Some((principal, until)) = verified
            && current == generation
            && *until > SystemTime::now()
        {
            cache.principals.insert(key, principal.clone(), *until);
        }
    }

    /// A JWT checked in full, and until when its answer may be reused.
    async fn verify_jwt(&self, token: &str) -> Result<(Principal, SystemTime), AuthError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| {
            AuthError::invalid("token header is malformed or names no usable algorithm")
        })?;
        let iss = unverified_claim(token, "iss")
            .ok_or_else(|| AuthError::invalid("token has no issuer"))?;
        let issuer = self
            .issuers
            .iter()
            .find(|i| i.config.issuer == iss)
            .ok_or_else(|| AuthError::invalid("token issuer is not trusted"))?;
        if !issuer.algorithms.contains(&header.alg) {
            return Err(AuthError::invalid("token algorithm is not accepted"));
        }
        let discovered = self.discovered(issuer).await?;
        let key = discovered
            .keys
            .key(&self.http, header.kid.as_deref(), header.alg)
            .await?;
        let mut validation = Validation::new(header.alg);
        validation.algorithms = vec![header.alg];
        validation.leeway = issuer.config.leeway_seconds;
        validation.validate_nbf = true;
        validation.set_issuer(&[&issuer.config.issuer]);
        validation.set_audience(&[&issuer.config.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        let data = jsonwebtoken::decode::<Map<String, Value>>(token, &key, &validation)
            .map_err(|e| jwt_error(&e))?;
        self.principal(issuer, &discovered, token, data.claims, None)
            .await
    }

    /// Opaque tokens: RFC 7662 introspection at the first issuer that has it configured and
    /// calls the token active.
    async fn introspect(&self, token: &str) -> Result<(Principal, SystemTime), AuthError> {
        for issuer in &self.issuers {
            let Some(settings) = &issuer.config.introspection else {
                continue;
            };
            let discovered = self.discovered(issuer).await?;
            let Some(url) = &discovered.introspection else {
                continue;
            };
            let (claims, answer_until) = self.introspection(issuer, settings, url, token).await?;
            if claims.get("active") != Some(&Value::Bool(true)) {
                continue;
            }
            if claims
                .get("iss")
                .and_then(Value::as_str)
                .is_some_and(|iss| iss != issuer.config.issuer)
            {
                return Err(AuthError::invalid("token issuer is not trusted"));
            }
            // The API must be the audience; an answer without `aud` (an opaque token issued for
            // no resource, as for userinfo) counts only when the token was issued to the client
            // named as the audience, never to another relying party of the provider.
            let meant_for_us = match claims.get("aud") {
                None | Some(Value::Null) => {
                    claims.get("client_id").and_then(Value::as_str)
                        == Some(issuer.config.audience.as_str())
                }
                Some(_) => strings(&claims, "aud").contains(&issuer.config.audience),
            };
            if !meant_for_us {
                return Err(AuthError::invalid("token is not meant for this service"));
            }
            let exp = claims.get("exp").and_then(Value::as_i64).unwrap_or(0);
            if exp + (issuer.config.leeway_seconds as i64) < now() {
                return Err(AuthError::invalid("token has expired"));
            }
            return self
                .principal(issuer, &discovered, token, claims, Some(answer_until))
                .await;
        }
        Err(AuthError::invalid(
            "token is not a JWT and no issuer knows it",
        ))
    }

    /// The provider's introspection answer about `token`: cached for the configured period
    /// (inactive answers too, so that a made-up token costs one call per period), asked once at
    /// a time per token, and never more than [`MAX_INTROSPECTIONS_IN_FLIGHT`] calls at once.
    async fn introspection(
        &self,
        issuer: &Issuer,
        settings: &IntrospectionConfig,
        url: &str,
        token: &str,
    ) -> Result<Answer, AuthError> {
        let key = token_hash("introspection", token);
        if let Some(answer) = issuer.cached(&key) {
            return Ok(answer);
        }
        let flight = {
            let mut in_flight = issuer
                .in_flight
                .lock()
                .map_err(|_| AuthError::unavailable("introspection state is poisoned"))?;
            in_flight.entry(key).or_default().clone()
        };
        let _landing = Landing { issuer, key };
        // A slow provider answers 503 to the requests with this token; nobody else waits.
        let _turn = tokio::time::timeout(self.http_timeout, flight.lock())
            .await
            .map_err(|_| AuthError::unavailable(format!("{url}: introspection is too slow")))?;
        if let Some(answer) = issuer.cached(&key) {
            return Ok(answer);
        }
        let _permit = self
            .introspections
            .try_acquire()
            .map_err(|_| AuthError::unavailable("too many token introspections in flight"))?;
        let req = self
            .http
            .post(url)
            .basic_auth(&settings.client_id, Some(settings.client_secret.expose()))
            .form(&[("token", token), ("token_type_hint", "access_token")]);
        let claims = match crate::http::read_json(req, url, MAX_ANSWER_BYTES).await? {
            Value::Object(map) => map,
            _ => return Err(AuthError::unavailable(format!("{url}: not an object"))),
        };
        let until = SystemTime::now() + Duration::from_secs(settings.cache_seconds);
        issuer.remember(key, claims.clone(), until);
        Ok((claims, until))
    }

    /// Who the verified `claims` speak for, and until when that answer may be reused (the
    /// token's `exp`, its visas' `exp`, and the cache periods of the answers it rests on:
    /// `answer_until` and userinfo's).
    async fn principal(
        &self,
        issuer: &Issuer,
        discovered: &Discovered,
        token: &str,
        mut claims: Map<String, Value>,
        answer_until: Option<SystemTime>,
    ) -> Result<(Principal, SystemTime), AuthError> {
        let expires_at = claims.get("exp").and_then(Value::as_i64).unwrap_or(0);
        let mut until = at(expires_at);
        if let Some(answer_until) = answer_until {
            until = until.min(answer_until);
        }
        let sub = claims
            .get("sub")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| AuthError::invalid("token lacks the sub claim"))?
            .to_owned();
        let subject = Subject::new(issuer.config.issuer.clone(), sub)
            .map_err(|e| AuthError::invalid(format!("token subject: {e}")))?;
        if issuer.config.userinfo.enabled
            && USERINFO_CLAIMS.iter().any(|c| !claims.contains_key(*c))
            && let Some(url) = &discovered.userinfo
        {
            let key = token_hash("userinfo", token);
            let (info, info_until) = match issuer.cached(&key) {
                Some(answer) => answer,
                None => {
                    let info =
                        match crate::http::get_json(&self.http, url, Some(token), MAX_ANSWER_BYTES)
                            .await?
                        {
                            Value::Object(map) => map,
                            _ => {
                                return Err(AuthError::unavailable(format!(
                                    "{url}: not an object"
                                )));
                            }
                        };
                    let info_until = SystemTime::now()
                        + Duration::from_secs(issuer.config.userinfo.cache_seconds);
                    issuer.remember(key, info.clone(), info_until);
                    (info, info_until)
                }
            };
            until = until.min(info_until);
            if info.get("sub").and_then(Value::as_str) != Some(subject.sub()) {
                return Err(AuthError::invalid("userinfo is about another subject"));
            }
            for name in USERINFO_CLAIMS {
                if !claims.contains_key(name)
                    && let Some(v) = info.get(name)
                {
                    claims.insert(name.to_owned(), v.clone());
                }
            }
        }
        let email = claims
            .get("email")
            .and_then(Value::as_str)
            .filter(|e| looks_like_an_address(e))
            .map(str::to_owned);
        let entitlements = strings(&claims, "eduperson_entitlement");
        let crypt4gh_public_keys = strings(&claims, "crypt4ghPublicKeys");
        let roles = roles::roles_for(&issuer.config.roles, subject.sub(), &entitlements);
        let passport = strings(&claims, "ga4gh_passport_v1");
        let visas = self
            .visas
            .verify_passport(&self.http, &passport, subject.sub())
            .await;
        if let Some(first) = visas.iter().map(|v| v.expires_at).min() {
            until = until.min(at(first));
        }
        Ok((
            Principal {
                subject,
                roles,
                entitlements,
                visas,
                expires_at,
                email,
                crypt4gh_public_keys,
            },
            until,
        ))
    }
}

/// One `@` between a non-empty local part and a domain with a dot, no spaces or control
/// characters, at most 254 bytes: enough to refuse what no mail relay would take.
fn looks_like_an_address(text: &str) -> bool {
    text.len() <= 254
        && !text.chars().any(|c| c.is_whitespace() || c.is_control())
        && matches!(text.split_once('@'), Some((local, domain))
            if !local.is_empty() && !domain.contains('@') && domain.contains('.')
                && !domain.starts_with('.') && !domain.ends_with('.'))
}

/// Removes a token's introspection from the in-flight table when its request ends, however
/// it ends (answered, failed, or dropped by a disconnecting client).
struct Landing<'a> {
    issuer: &'a Issuer,
    key: Key,
}

impl Drop for Landing<'_> {
    fn drop(&mut self) {
        if let Ok(mut in_flight) = self.issuer.in_flight.lock() {
            in_flight.remove(&self.key);
        }
    }
}

impl Issuer {
    fn cached(&self, key: &Key) -> Option<Answer> {
        self.answers.lock().ok()?.get(key, SystemTime::now())
    }

    fn remember(&self, key: Key, claims: Map<String, Value>, until: SystemTime) {
        if let Ok(mut answers) = self.answers.lock() {
            answers.insert(key, claims, until);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::looks_like_an_address;

    #[test]
    fn only_plausible_addresses_are_taken_from_the_email_claim() {
        for good in ["researcher@example.org", "a.b+c@sub.example.ac.uk"] {
            assert!(looks_like_an_address(good), "{good}");
        }
        for bad in [
            "",
            "no-at.example.org",
            "@example.org",
            "a@localhost",
            "a@b@example.org",
            "a b@example.org",
            "a@example.org\r\nBcc: x@example.org",
            "a@.example.org",
            "a@example.org.",
        ] {
            assert!(!looks_like_an_address(bad), "{bad:?}");
        }
        assert!(!looks_like_an_address(&format!(
            "{}@example.org",
            "a".repeat(250)
        )));
    }
}
