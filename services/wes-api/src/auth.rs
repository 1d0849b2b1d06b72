//! Who may call what, written into each handler's type.
//!
//! A handler takes `Authorized<{actions::X}>`; the extractor resolves the caller and refuses
//! the request unless one of the caller's roles grants action `X`. A route therefore cannot be
//! written without saying who may call it. Callers are resolved from an OIDC bearer token
//! (`auth: {oidc: ...}`, verified by spe-auth) or, for local development only, by
//! `auth: disabled`, where every caller is the same local user holding every role.
//! No token: 401 with `WWW-Authenticate: Bearer`; an invalid one: 401 with
//! `error="invalid_token"`; a valid one whose roles do not grant the action: 403.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use actix_web::{FromRequest, HttpRequest, dev::Payload, http::StatusCode, http::header, web};

use spe_core::{Group, Subject};

use crate::error::ApiError;

/// Roles, as the identity provider's entitlements map onto them (spe-core's config type).
pub use spe_auth::Role;
pub use spe_auth::Visa;

/// Actions a route may require. Numbers, because const generics over enums are not stable.
pub mod actions {
    pub const RUNS_SUBMIT: u8 = 1;
    pub const RUNS_READ: u8 = 2;
    pub const RUNS_CANCEL: u8 = 3;
    /// Register, approve and retire workflow versions; see every version and the registry history.
    pub const WORKFLOWS_MANAGE: u8 = 4;
    /// List and show approved workflows with their parameter schema.
    pub const WORKFLOWS_READ: u8 = 5;
    /// Register and retire datasets, see their locations.
    pub const DATASETS_MANAGE: u8 = 6;
    /// List active datasets by id and description (never their locations).
    pub const DATASETS_READ: u8 = 7;
    /// List and download released results of runs the caller owns or that were shared with
    /// them (the run check is in the handler).
    pub const RESULTS_READ: u8 = 8;
    /// Share a run's results with users or groups (the owner check is in the handler).
    pub const RESULTS_SHARE: u8 = 9;
}

/// Which roles grant an action.
pub fn roles_for(action: u8) -> &'static [Role] {
    use Role::*;
    match action {
        actions::RUNS_SUBMIT => &[Researcher],
        actions::RUNS_READ => &[Researcher, Operator],
        actions::RUNS_CANCEL => &[Researcher, Operator],
        actions::WORKFLOWS_MANAGE => &[DataController],
        actions::WORKFLOWS_READ => &[Researcher, DataController],
        actions::DATASETS_MANAGE => &[DataController],
        actions::DATASETS_READ => &[Researcher, DataController],
        actions::RESULTS_READ => &[Researcher, Collaborator, Operator],
        actions::RESULTS_SHARE => &[Researcher, Operator],
        _ => &[],
    }
}

/// The authenticated caller of a request.
#[derive(Clone, Debug)]
pub struct Caller {
    /// (issuer, `sub`): run owners, shares and registry events are recorded by it.
    pub subject: Subject,
    /// Roles under the caller's own issuer's mapping.
    pub roles: Vec<Role>,
    /// GA4GH Passport visas that verified (empty with `auth: disabled`).
    pub visas: Vec<Visa>,
    /// The caller's `eduperson_entitlement` values (LS-Login group URNs) as groups of the
    /// caller's issuer, for results shared with a group (empty with `auth: disabled`).
    pub groups: Vec<Group>,
}

impl Caller {
    pub fn has(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }

    /// Operators see every run; everyone else sees only their own.
    pub fn sees_all_runs(&self) -> bool {
        self.has(Role::Operator)
    }

    /// ControlledAccessGrants visas whose value is exactly `value`.
    pub fn grants<'a>(&'a self, value: &'a str) -> impl Iterator<Item = &'a Visa> + 'a {
        self.visas
            .iter()
            .filter(move |v| v.visa_type == "ControlledAccessGrants" && v.value == value)
    }
}

/// How the application resolves callers (held in app data).
#[derive(Clone, Debug)]
pub enum Authenticator {
    /// `auth: disabled`: one local user with every role. Development only.
    Disabled,
    /// `auth: {oidc: ...}`: bearer tokens verified by spe-auth.
    Oidc(Arc<spe_auth::Verifier>),
}

const CHALLENGE: &str = "Bearer realm=\"spe\"";

/// The bearer token of a request, if it sent one.
fn bearer(req: &HttpRequest) -> Result<Option<String>, ApiError> {
    let Some(value) = req.headers().get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let invalid = || {
        ApiError::unauthorized(
            "the Authorization header must be `Bearer <token>`",
            format!("{CHALLENGE}, error=\"invalid_request\""),
        )
    };
    let value = value.to_str().map_err(|_| invalid())?;
    let (scheme, token) = value.split_once(' ').ok_or_else(invalid)?;
    if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
        return Err(invalid());
    }
    Ok(Some(token.trim().to_owned()))
}

impl Authenticator {
    async fn resolve(&self, token: Option<String>) -> Result<Caller, ApiError> {
        match self {
            Authenticator::Disabled => Ok(Caller {
                subject: Subject::local_dev_user(),
                roles: vec![
                    Role::Researcher,
                    Role::DataController,
                    Role::Collaborator,
                    Role::Operator,
                ],
                visas: Vec::new(),
                groups: Vec::new(),
            }),
            Authenticator::Oidc(verifier) => {
                let Some(token) = token else {
                    return Err(ApiError::unauthorized(
                        "this endpoint needs a bearer access token",
                        CHALLENGE,
                    ));
                };
                match verifier.verify(&token).await {
                    Ok(p) => Ok(Caller {
                        groups: p
                            .entitlements
                            .iter()
                            .filter_map(|urn| Group::new(p.subject.issuer(), urn.as_str()).ok())
                            .collect(),
                        subject: p.subject,
                        roles: p.roles,
                        visas: p.visas,
                    }),
                    Err(spe_auth::AuthError::Invalid(reason)) => {
                        tracing::info!(%reason, "bearer token refused");
                        Err(ApiError::unauthorized(
                            format!("invalid token: {reason}"),
                            format!(
                                "{CHALLENGE}, error=\"invalid_token\", error_description=\"{reason}\""
                            ),
                        ))
                    }
                    Err(e @ spe_auth::AuthError::Unavailable(_)) => {
                        tracing::error!(error = %e, "cannot verify bearer tokens");
                        Err(ApiError::new(
                            StatusCode::SERVICE_UNAVAILABLE,
                            "the identity provider cannot be reached; try again later",
                        ))
                    }
                }
            }
        }
    }
}

/// A caller allowed to perform action `A`.
pub struct Authorized<const A: u8>(pub Caller);

impl<const A: u8> FromRequest for Authorized<A> {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let auth = req.app_data::<web::Data<Authenticator>>().cloned();
        // A bearer token wins; without one, the browser session's (auth.oidc.browser).
        let token = bearer(req).and_then(|token| match token {
            Some(token) => Ok(Some(token)),
            None => match req.app_data::<web::Data<crate::session::Sessions>>() {
                Some(sessions) => sessions.access_token(req),
                None => Ok(None),
            },
        });
        Box::pin(async move {
            let Some(auth) = auth else {
                return Err(ApiError::internal("no authenticator configured"));
            };
            let caller = auth.resolve(token?).await?;
            if roles_for(A).iter().any(|role| caller.has(*role)) {
                Ok(Authorized(caller))
            } else {
                Err(ApiError::new(
                    StatusCode::FORBIDDEN,
                    "your role does not allow this action",
                ))
            }
        })
    }
}
