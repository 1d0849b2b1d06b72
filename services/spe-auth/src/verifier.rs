//! Bearer token verification against the configured issuers.

use std::collections::HashMap;
use std::sync::{Arc, Mutex as StdMutex};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, Validation};
use openidconnect::{AdditionalProviderMetadata, IssuerUrl};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use spe_core::Subject;
use spe_core::config::{ASYMMETRIC_ALGORITHMS, IssuerConfig, OidcConfig, Role};
use tokio::sync::{Mutex, RwLock};

use crate::jwks::KeySet;
use crate::visa::{Visa, VisaVerifier};
use crate::{AuthError, roles};

/// Tokens longer than this are refused unread.
const MAX_TOKEN_BYTES: usize = 16 * 1024;
/// Largest userinfo or introspection answer read.
const MAX_ANSWER_BYTES: usize = 1024 * 1024;
/// Cached userinfo/introspection answers kept at most (expired ones are dropped first).
const MAX_CACHE_ENTRIES: usize = 4096;
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

/// A cached userinfo or introspection answer and when it was fetched.
type Answer = (Instant, Map<String, Value>);

struct Issuer {
    config: IssuerConfig,
    algorithms: Vec<Algorithm>,
    discovered: RwLock<Option<Arc<Discovered>>>,
    last_discovery: Mutex<Option<Instant>>,
    /// sha256(token) -> (when fetched, claims). Never the token itself.
    answers: StdMutex<HashMap<[u8; 32], Answer>>,
}

/// Verifies bearer tokens for every configured issuer. Cheap to share (`Arc`).
pub struct Verifier {
    issuers: Vec<Issuer>,
    visas: VisaVerifier,
    http: reqwest::Client,
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
fn token_hash(kind: &str, token: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(kind.as_bytes());
    h.update([0u8]);
    h.update(token.as_bytes());
    h.finalize().into()
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
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
        let http = crate::http::client(Duration::from_secs(config.http_timeout_seconds))?;
        let issuers = config
            .issuers()
            .into_iter()
            .map(|c| Issuer {
                algorithms: algorithms(c.algorithms.as_deref()),
                config: c,
                discovered: RwLock::new(None),
                last_discovery: Mutex::new(None),
                answers: StdMutex::new(HashMap::new()),
            })
            .collect();
        Ok(Verifier {
            issuers,
            visas: VisaVerifier::new(&config.passports, config.leeway_seconds),
            http,
        })
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
        *last = Some(Instant::now());
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

    /// Verifies a bearer token and resolves who it speaks for.
    pub async fn verify(&self, token: &str) -> Result<Principal, AuthError> {
        if token.is_empty() || token.len() > MAX_TOKEN_BYTES {
            return Err(AuthError::invalid("token is empty or too long"));
        }
        if token.split('.').count() != 3 {
            return self.introspect(token).await;
        }
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
        self.principal(issuer, &discovered, token, data.claims)
            .await
    }

    /// Opaque tokens: RFC 7662 introspection at the first issuer that has it configured and
    /// calls the token active.
    async fn introspect(&self, token: &str) -> Result<Principal, AuthError> {
        for issuer in &self.issuers {
            let Some(settings) = &issuer.config.introspection else {
                continue;
            };
            let discovered = self.discovered(issuer).await?;
            let Some(url) = &discovered.introspection else {
                continue;
            };
            let claims = match issuer.cached("introspection", token, settings.cache_seconds) {
                Some(claims) => claims,
                None => {
                    let req = self
                        .http
                        .post(url)
                        .basic_auth(&settings.client_id, Some(settings.client_secret.expose()))
                        .form(&[("token", token), ("token_type_hint", "access_token")]);
                    let answer = crate::http::read_json(req, url, MAX_ANSWER_BYTES).await?;
                    let claims = match answer {
                        Value::Object(map) => map,
                        _ => return Err(AuthError::unavailable(format!("{url}: not an object"))),
                    };
                    issuer.remember("introspection", token, claims.clone());
                    claims
                }
            };
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
            return self.principal(issuer, &discovered, token, claims).await;
        }
        Err(AuthError::invalid(
            "token is not a JWT and no issuer knows it",
        ))
    }

    async fn principal(
        &self,
        issuer: &Issuer,
        discovered: &Discovered,
        token: &str,
        mut claims: Map<String, Value>,
    ) -> Result<Principal, AuthError> {
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
            let info = match issuer.cached("userinfo", token, issuer.config.userinfo.cache_seconds)
            {
                Some(info) => info,
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
                    issuer.remember("userinfo", token, info.clone());
                    info
                }
            };
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
        let entitlements = strings(&claims, "eduperson_entitlement");
        let roles = roles::roles_for(&issuer.config.roles, subject.sub(), &entitlements);
        let passport = strings(&claims, "ga4gh_passport_v1");
        let visas = self.visas.verify_passport(&self.http, &passport).await;
        Ok(Principal {
            subject,
            roles,
            entitlements,
            visas,
            expires_at: claims.get("exp").and_then(Value::as_i64).unwrap_or(0),
        })
    }
}

impl Issuer {
    fn cached(&self, kind: &str, token: &str, ttl: u64) -> Option<Map<String, Value>> {
        let answers = self.answers.lock().ok()?;
        let (at, claims) = answers.get(&token_hash(kind, token))?;
        (at.elapsed() < Duration::from_secs(ttl)).then(|| claims.clone())
    }

    fn remember(&self, kind: &str, token: &str, claims: Map<String, Value>) {
        let Ok(mut answers) = self.answers.lock() else {
            return;
        };
        if answers.len() >= MAX_CACHE_ENTRIES {
            let ttl = Duration::from_secs(
                self.config.userinfo.cache_seconds.max(
                    self.config
                        .introspection
                        .as_ref()
                        .map_or(0, |i| i.cache_seconds),
                ),
            );
            answers.retain(|_, (at, _)| at.elapsed() < ttl);
            if answers.len() >= MAX_CACHE_ENTRIES {
                answers.clear();
            }
        }
        answers.insert(token_hash(kind, token), (Instant::now(), claims));
    }
}
