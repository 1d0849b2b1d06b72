//! Authentication for the SPE: OpenID Connect bearer tokens verified locally.
//!
//! [`Verifier`] discovers each configured issuer (OIDC discovery through `openidconnect`),
//! caches its JWKS (refetched, rate-limited, when a token names an unknown `kid`), and checks a
//! bearer access token: asymmetric signature (RS*, PS*, ES256/384, EdDSA; never `none` or HS*),
//! `iss`, `aud`, `exp`, `nbf` with a small leeway. It then maps LS-Login entitlements and a local
//! subject table onto [`Role`]s, and verifies the GA4GH Passport visas in `ga4gh_passport_v1`
//! against trusted (iss, jku) pairs ([`visa`]), counting only visas about the token's subject.
//! A verified token's [`Principal`] is cached under the token's SHA-256 until its `exp` (see
//! [`Verifier::verify`]).
//!
//! No token, key or secret is ever logged or put in an error: errors say what was wrong, never
//! with what.

mod cache;
pub mod http;
mod jwks;
pub mod login;
pub mod roles;
mod verifier;
pub mod visa;

pub use login::{BrowserLogin, LoginStart, LoginTokens, PendingLogin, random_secret};
pub use spe_core::config::Role;
pub use verifier::{MAX_VERIFIED_TOKENS, Principal, Verifier};
pub use visa::Visa;

/// Why a request is not authenticated.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// The token is missing, malformed, forged, expired or not for us: 401.
    #[error("invalid token: {0}")]
    Invalid(String),
    /// A provider could not be reached or answered nonsense: 503 for the caller (the message is
    /// for logs; it names URLs, never tokens).
    #[error("identity provider unavailable: {0}")]
    Unavailable(String),
}

impl AuthError {
    pub(crate) fn invalid(msg: impl Into<String>) -> Self {
        AuthError::Invalid(msg.into())
    }
    pub(crate) fn unavailable(msg: impl Into<String>) -> Self {
        AuthError::Unavailable(msg.into())
    }
}
