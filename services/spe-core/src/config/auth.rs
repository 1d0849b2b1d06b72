//! `auth`: how callers are authenticated (OIDC issuers, browser login), how they get roles,
//! and which GA4GH visa issuers are trusted.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{ConfigError, HttpUrl, default_true};

/// Whether `text` parses as an http(s) URL with a host (checked at load, so a provider URL
/// that cannot be used stops the service at start rather than failing its first request).
fn is_http_url(text: &str) -> bool {
    HttpUrl::try_from(text.to_owned()).is_ok()
}

#[derive(Debug, Deserialize, PartialEq, Eq)]
#[serde(try_from = "AuthConfigRepr")]
pub enum AuthConfig {
    /// No authentication at all: every caller is the same anonymous user. For local development
    /// only; the service logs a loud warning at start.
    Disabled,
    /// OpenID Connect bearer tokens (LS-Login).
    Oidc(Box<OidcConfig>),
}

impl AuthConfig {
    /// The issuer of the deployment's people when identities were bare `sub`s (carried to it by
    /// the store's migration): `auth.oidc.issuer`, or the local issuer with `auth: disabled`.
    pub fn primary_issuer(&self) -> &str {
        match self {
            AuthConfig::Disabled => crate::identity::LOCAL_ISSUER,
            AuthConfig::Oidc(oidc) => &oidc.issuer,
        }
    }

    /// Every issuer whose people may act here, the primary first.
    pub fn trusted_issuers(&self) -> Vec<String> {
        match self {
            AuthConfig::Disabled => vec![crate::identity::LOCAL_ISSUER.to_owned()],
            AuthConfig::Oidc(oidc) => oidc.issuers().into_iter().map(|i| i.issuer).collect(),
        }
    }
}

/// How `auth` is written: the word `disabled`, or a mapping `oidc: {...}`.
#[derive(Deserialize)]
#[serde(untagged)]
enum AuthConfigRepr {
    Word(String),
    Oidc { oidc: Box<OidcConfig> },
}

impl TryFrom<AuthConfigRepr> for AuthConfig {
    type Error = String;
    fn try_from(repr: AuthConfigRepr) -> Result<Self, Self::Error> {
        match repr {
            AuthConfigRepr::Word(word) if word == "disabled" => Ok(AuthConfig::Disabled),
            AuthConfigRepr::Word(_) => {
                Err("expected `disabled` or a mapping `oidc: {issuer, audience}`".into())
            }
            AuthConfigRepr::Oidc { oidc } => Ok(AuthConfig::Oidc(oidc)),
        }
    }
}

/// OpenID Connect bearer tokens. `issuer`/`audience` and the settings beside them describe the
/// main issuer (LS-Login); `more_issuers` lists further trusted issuers with their own settings.
#[derive(Debug, Deserialize, PartialEq, Eq, Clone)]
#[serde(deny_unknown_fields)]
pub struct OidcConfig {
    pub issuer: String,
    pub audience: String,
    /// Signature algorithms accepted (asymmetric only; default: all of RS*, PS*, ES256/384,
    /// EdDSA).
    #[serde(default)]
    pub algorithms: Option<Vec<String>>,
    /// Clock skew allowed on `exp`, `nbf` and `iat`.
    #[serde(default = "default_leeway")]
    pub leeway_seconds: u64,
    /// A token signed with an unknown `kid` refetches the JWKS at most this often.
    #[serde(default = "default_jwks_refresh")]
    pub jwks_min_refresh_seconds: u64,
    /// Fetch userinfo for claims the access token lacks (LS-Login releases
    /// eduperson_entitlement, ga4gh_passport_v1 and crypt4ghPublicKeys there).
    #[serde(default)]
    pub userinfo: UserinfoConfig,
    /// Token introspection (RFC 7662) for opaque, non-JWT access tokens.
    #[serde(default)]
    pub introspection: Option<IntrospectionConfig>,
    #[serde(default)]
    pub more_issuers: Vec<IssuerConfig>,
    /// How callers of the main issuer get roles (each of `more_issuers` has its own `roles`).
    #[serde(default)]
    pub roles: RoleMapping,
    /// GA4GH Passport visas (AAI 1.2) for dataset access.
    #[serde(default)]
    pub passports: PassportConfig,
    /// Timeout of every request to a provider (discovery, JWKS, userinfo, introspection).
    #[serde(default = "default_http_timeout")]
    pub http_timeout_seconds: u64,
    /// Browser login for the web UI (authorization code flow with PKCE against `issuer`);
    /// absent: no `/auth/*` endpoints, bearer tokens only.
    #[serde(default)]
    pub browser: Option<BrowserLoginConfig>,
}

/// `auth.oidc.browser`: the web UI's login, a session cookie holding an opaque id; the tokens
/// stay on the server.
#[derive(Debug, Deserialize, PartialEq, Eq, Clone)]
#[serde(deny_unknown_fields)]
pub struct BrowserLoginConfig {
    pub client_id: String,
    /// Absent for a public client (PKCE alone).
    #[serde(default)]
    pub client_secret: Option<crate::secret::Secret>,
    /// A file holding the client secret instead (its first line; mode 0600): read again when
    /// it changes, so the secret is rotated without a restart.
    #[serde(default)]
    pub client_secret_file: Option<std::path::PathBuf>,
    /// This service's `/auth/callback` as the provider knows it.
    pub redirect_url: String,
    /// The session cookie's `Secure` attribute; `false` is accepted only when `redirect_url` is
    /// `http://127.0.0.1...` or `http://localhost...` (local development).
    #[serde(default = "default_true")]
    pub cookie_secure: bool,
    /// Scopes asked besides `openid`.
    #[serde(default = "default_browser_scopes")]
    pub scopes: Vec<String>,
    /// Longest a browser session lasts; it also ends when its access token expires.
    #[serde(default = "default_session_seconds")]
    pub session_seconds: u64,
    /// Where the browser goes after login (a path of this service).
    #[serde(default = "default_after_login")]
    pub after_login_path: String,
    /// Where the provider sends the browser after logout (must be registered with it).
    #[serde(default)]
    pub post_logout_redirect_url: Option<String>,
}

fn default_browser_scopes() -> Vec<String> {
    [
        "profile",
        "email",
        "eduperson_entitlement",
        "ga4gh_passport_v1",
    ]
    .map(str::to_owned)
    .to_vec()
}
fn default_session_seconds() -> u64 {
    8 * 3600
}
fn default_after_login() -> String {
    "/".to_owned()
}

impl BrowserLoginConfig {
    fn check(&self) -> Result<(), ConfigError> {
        let key = "auth.oidc.browser";
        if self.client_secret.is_some() && self.client_secret_file.is_some() {
            return Err(ConfigError::at(
                &format!("{key}.client_secret_file"),
                "set either client_secret or client_secret_file, not both",
            ));
        }
        if self.client_id.trim().is_empty() {
            return Err(ConfigError::at(
                &format!("{key}.client_id"),
                "must not be empty",
            ));
        }
        let local = [
            "http://127.0.0.1:",
            "http://127.0.0.1/",
            "http://localhost:",
            "http://localhost/",
        ];
        let is_local = local.iter().any(|p| self.redirect_url.starts_with(p));
        if !is_http_url(&self.redirect_url)
            || !(self.redirect_url.starts_with("https://") || is_local)
        {
            return Err(ConfigError::at(
                &format!("{key}.redirect_url"),
                "must be an https:// URL (http:// only on 127.0.0.1 or localhost)",
            ));
        }
        if !self.cookie_secure && !is_local {
            return Err(ConfigError::at(
                &format!("{key}.cookie_secure"),
                "may be false only when redirect_url is http://127.0.0.1 or http://localhost",
            ));
        }
        if let Some(url) = &self.post_logout_redirect_url
            && !is_http_url(url)
        {
            return Err(ConfigError::at(
                &format!("{key}.post_logout_redirect_url"),
                "must be an http(s):// URL with a host",
            ));
        }
        if !self.after_login_path.starts_with('/') || self.after_login_path.starts_with("//") {
            return Err(ConfigError::at(
                &format!("{key}.after_login_path"),
                "must be a path of this service, starting with one /",
            ));
        }
        if self.session_seconds == 0 {
            return Err(ConfigError::at(
                &format!("{key}.session_seconds"),
                "must be positive",
            ));
        }
        Ok(())
    }
}

/// One further trusted issuer, with the same settings as the main one.
#[derive(Debug, Deserialize, PartialEq, Eq, Clone)]
#[serde(deny_unknown_fields)]
pub struct IssuerConfig {
    pub issuer: String,
    pub audience: String,
    #[serde(default)]
    pub algorithms: Option<Vec<String>>,
    #[serde(default = "default_leeway")]
    pub leeway_seconds: u64,
    #[serde(default = "default_jwks_refresh")]
    pub jwks_min_refresh_seconds: u64,
    #[serde(default)]
    pub userinfo: UserinfoConfig,
    #[serde(default)]
    pub introspection: Option<IntrospectionConfig>,
    /// How this issuer's callers get roles. Each issuer has its own mapping: an entitlement URN
    /// or a `sub` grants a role only under the issuer that configured it.
    #[serde(default)]
    pub roles: RoleMapping,
}

/// The signature algorithms a token or visa may use: asymmetric only, never `none` or HS*.
pub const ASYMMETRIC_ALGORITHMS: [&str; 9] = [
    "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA",
];

impl OidcConfig {
    pub(crate) fn check(&self) -> Result<(), ConfigError> {
        for (i, issuer) in self.issuers().iter().enumerate() {
            let key = if i == 0 {
                "auth.oidc".to_owned()
            } else {
                format!("auth.oidc.more_issuers[{}]", i - 1)
            };
            if !is_http_url(&issuer.issuer) || issuer.issuer.chars().any(char::is_whitespace) {
                return Err(ConfigError::at(
                    &format!("{key}.issuer"),
                    "must be an http(s):// URL",
                ));
            }
            if issuer.audience.trim().is_empty() {
                return Err(ConfigError::at(
                    &format!("{key}.audience"),
                    "must not be empty",
                ));
            }
            if let Some(algs) = &issuer.algorithms {
                if algs.is_empty() {
                    return Err(ConfigError::at(
                        &format!("{key}.algorithms"),
                        "list at least one algorithm",
                    ));
                }
                if let Some(bad) = algs
                    .iter()
                    .find(|a| !ASYMMETRIC_ALGORITHMS.contains(&a.as_str()))
                {
                    return Err(ConfigError::at(
                        &format!("{key}.algorithms"),
                        format!(
                            "{bad} is not allowed; use asymmetric algorithms only: {}",
                            ASYMMETRIC_ALGORITHMS.join(", ")
                        ),
                    ));
                }
            }
            if issuer.leeway_seconds > 300 {
                return Err(ConfigError::at(
                    &format!("{key}.leeway_seconds"),
                    "must be at most 300",
                ));
            }
        }
        for (i, t) in self.passports.trusted_issuers.iter().enumerate() {
            if !is_http_url(&t.jku) {
                return Err(ConfigError::at(
                    &format!("auth.oidc.passports.trusted_issuers[{i}].jku"),
                    "must be an http(s):// URL",
                ));
            }
        }
        if let Some(browser) = &self.browser {
            browser.check()?;
        }
        Ok(())
    }

    /// Every trusted issuer, the main one first.
    pub fn issuers(&self) -> Vec<IssuerConfig> {
        let mut all = vec![IssuerConfig {
            issuer: self.issuer.clone(),
            audience: self.audience.clone(),
            algorithms: self.algorithms.clone(),
            leeway_seconds: self.leeway_seconds,
            jwks_min_refresh_seconds: self.jwks_min_refresh_seconds,
            userinfo: self.userinfo.clone(),
            introspection: self.introspection.clone(),
            roles: self.roles.clone(),
        }];
        all.extend(self.more_issuers.iter().cloned());
        all
    }
}

#[derive(Debug, Deserialize, PartialEq, Eq, Clone)]
#[serde(deny_unknown_fields)]
pub struct UserinfoConfig {
    #[serde(default)]
    pub enabled: bool,
    /// How long one token's userinfo answer is reused.
    #[serde(default = "default_userinfo_cache")]
    pub cache_seconds: u64,
}

impl Default for UserinfoConfig {
    fn default() -> Self {
        UserinfoConfig {
            enabled: false,
            cache_seconds: default_userinfo_cache(),
        }
    }
}

#[derive(Debug, Deserialize, PartialEq, Eq, Clone)]
#[serde(deny_unknown_fields)]
pub struct IntrospectionConfig {
    pub client_id: String,
    pub client_secret: crate::secret::Secret,
    /// How long one token's introspection answer is reused.
    #[serde(default = "default_userinfo_cache")]
    pub cache_seconds: u64,
}

/// The roles a caller may hold.
#[derive(Debug, Deserialize, Serialize, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Researcher,
    DataController,
    Collaborator,
    Operator,
}

/// Roles from LS-Login entitlement URNs
/// (`urn:geant:lifescience-ri.eu:group:<vo>[:<sub>][:role=r]#<authority>`, matched exactly,
/// authority included) and from a local table of subjects kept by operators. A caller holds the
/// union of both.
#[derive(Debug, Deserialize, PartialEq, Eq, Clone, Default)]
#[serde(deny_unknown_fields)]
pub struct RoleMapping {
    #[serde(default)]
    pub entitlements: BTreeMap<String, Vec<Role>>,
    #[serde(default)]
    pub subjects: BTreeMap<String, Vec<Role>>,
}

#[derive(Debug, Deserialize, PartialEq, Eq, Clone)]
#[serde(deny_unknown_fields)]
pub struct PassportConfig {
    /// Visa issuers trusted, each as the pair (iss, jku) a visa must name exactly.
    #[serde(default)]
    pub trusted_issuers: Vec<TrustedVisaIssuer>,
    /// Whether a ControlledAccessGrants visa must say `by` (who asserted it).
    #[serde(default = "default_true")]
    pub require_by: bool,
    /// If set, only these `by` values count (e.g. `[dac, so]`).
    #[serde(default)]
    pub accepted_by: Option<Vec<String>>,
    /// A visa JWKS is refetched for an unknown `kid` at most this often.
    #[serde(default = "default_jwks_refresh")]
    pub jwks_min_refresh_seconds: u64,
}

impl Default for PassportConfig {
    fn default() -> Self {
        PassportConfig {
            trusted_issuers: Vec::new(),
            require_by: true,
            accepted_by: None,
            jwks_min_refresh_seconds: default_jwks_refresh(),
        }
    }
}

#[derive(Debug, Deserialize, PartialEq, Eq, Clone)]
#[serde(deny_unknown_fields)]
pub struct TrustedVisaIssuer {
    pub iss: String,
    pub jku: String,
}

fn default_leeway() -> u64 {
    30
}
fn default_jwks_refresh() -> u64 {
    30
}
fn default_userinfo_cache() -> u64 {
    60
}
fn default_http_timeout() -> u64 {
    10
}
