//! Who may call what, written into each handler's type.
//!
//! A handler takes `Authorized<actions::X>` (or a run extractor of `app::run_access`, which
//! authorises the same way first); the extractor resolves the caller and refuses the request
//! unless one of the caller's roles grants action `X` (`Action::ROLES`). The route table
//! (`routes::table`) accepts a protected handler only if its first argument names its action,
//! so a route cannot be written without saying who may call it. Callers are resolved from an
//! OIDC bearer token (`auth: {oidc: ...}`, verified by spe-auth) or, for local development
//! only, by `auth: disabled`, where every caller is the same local user holding every role.
//! No token: 401 with `WWW-Authenticate: Bearer`; an invalid one: 401 with
//! `error="invalid_token"`; a valid one whose roles do not grant the action: 403.

use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;

use actix_web::{FromRequest, HttpRequest, dev::Payload, http::StatusCode, http::header, web};

use spe_core::{Group, Subject};

use crate::error::ApiError;

/// Roles, as the identity provider's entitlements map onto them (spe-core's config type).
pub use spe_auth::Role;
pub use spe_auth::Visa;

/// An action a route may require: one zero-sized type per action (in [`actions`]), naming the
/// roles that grant it. A handler names its action in its first argument's type
/// (`Authorized<A>`, `VisibleRun<A>`, `SharedResults<A>`), and the route table
/// (`routes::table`) checks at compile time that it is the action the table says.
pub trait Action: 'static {
    /// A short name, for the route table and the OpenAPI document (`x-spe-action`).
    const NAME: &'static str;
    /// The roles that grant it. Never empty: an action nobody may perform is no route.
    const ROLES: &'static [Role];
}

/// The actions, one type each.
pub mod actions {
    use super::{Action, Role};

    macro_rules! action {
        ($(#[$doc:meta])* $ty:ident = $name:literal, [$($role:ident),+]) => {
            $(#[$doc])*
            pub struct $ty;
            impl Action for $ty {
                const NAME: &'static str = $name;
                const ROLES: &'static [Role] = &[$(Role::$role),+];
            }
        };
    }

    action!(
        /// Submit runs.
        RunsSubmit = "runs.submit", [Researcher]
    );
    action!(
        /// List and read runs (the caller's own; every run for operators).
        RunsRead = "runs.read", [Researcher, Operator]
    );
    action!(
        /// Read a run's engine logs (`/runs/{id}/logs/{stream}`). Logs are egress: the run's
        /// owner reads only a log released through review; operators and data controllers read
        /// every log of runs they do not own (`app::run_logs`).
        RunsLogsRead = "runs.logs.read", [Researcher, DataController, Operator]
    );
    action!(
        /// Cancel a run (the caller's own; any for operators).
        RunsCancel = "runs.cancel", [Researcher, Operator]
    );
    action!(
        /// Register, approve and retire workflow versions; see every version and the registry
        /// history.
        WorkflowsManage = "workflows.manage", [DataController]
    );
    action!(
        /// List and show approved workflows with their parameter schema.
        WorkflowsRead = "workflows.read", [Researcher, DataController]
    );
    action!(
        /// Register and retire datasets, see their locations.
        DatasetsManage = "datasets.manage", [DataController]
    );
    action!(
        /// List active datasets by id and description (never their locations).
        DatasetsRead = "datasets.read", [Researcher, DataController]
    );
    action!(
        /// List and download released results of runs the caller owns or that were shared with
        /// them (`SharedResults` checks the run).
        ResultsRead = "results.read", [Researcher, Collaborator, Operator]
    );
    action!(
        /// List review requests of held outputs, look at them, vote, return a request to its
        /// researcher, revoke a release (never on a run the caller owns).
        ReviewsManage = "reviews.manage", [DataController]
    );
    action!(
        /// Answer a review request of one's own run that a data controller returned.
        ReviewsAnswer = "reviews.answer", [Researcher]
    );
    action!(
        /// Share a run's results with users or groups (`VisibleRun` checks the run).
        ResultsShare = "results.share", [Researcher, Operator]
    );
    action!(
        /// Read the audit chain (`GET /admin/audit`): the operators who run the service and
        /// the data controllers who answer for what it did.
        AuditRead = "audit.read", [DataController, Operator]
    );
    action!(
        /// See the web UI's start page, which shows each role what it can do there (docs/ui.md).
        UiHome = "ui.home", [Researcher, DataController, Collaborator, Operator]
    );
    action!(
        /// Delete an ended run's data at once (`VisibleRun`: its owner or an operator).
        RunsDelete = "runs.delete", [Researcher, Operator]
    );
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
    /// The token's `email` claim, where notifications about the caller's runs go.
    pub email: Option<String>,
    /// The token's `crypt4ghPublicKeys` claim (LS-Login), as given: encrypted downloads are
    /// bound to these keys, or to the one the caller registered when the claim is absent.
    pub crypt4gh_public_keys: Vec<String>,
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
                email: None,
                crypt4gh_public_keys: Vec::new(),
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
                        email: p.email,
                        crypt4gh_public_keys: p.crypt4gh_public_keys,
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
pub struct Authorized<A: Action> {
    pub caller: Caller,
    action: PhantomData<A>,
}

/// Resolves the caller of a request and refuses them unless one of their roles grants `A`:
/// 401 without a valid token, 403 without a granting role.
pub(crate) fn authorize<A: Action>(
    req: &HttpRequest,
) -> impl Future<Output = Result<Caller, ApiError>> + use<A> {
    let auth = req.app_data::<web::Data<Authenticator>>().cloned();
    let limits = req
        .app_data::<web::Data<crate::rate_limit::RateLimits>>()
        .cloned();
    let refusals = req
        .app_data::<web::Data<crate::app::audit::RefusalRecorder>>()
        .cloned();
    let address = req.peer_addr().map(|a| a.ip());
    // A bearer token wins; without one, the browser session's (auth.oidc.browser).
    let bearer_token = bearer(req);
    let sessions = req
        .app_data::<web::Data<crate::session::Sessions>>()
        .cloned();
    let request = req.clone();
    async move {
        let token = match bearer_token {
            Ok(None) => match &sessions {
                Some(sessions) => sessions.access_token(&request).await,
                None => Ok(None),
            },
            other => other,
        };
        let Some(auth) = auth else {
            return Err(ApiError::internal("no authenticator configured"));
        };
        // A token sent and refused (or a malformed header) is an audit event, counted per
        // address (bounded; app::audit); a request without any token is not.
        let note = |e: &ApiError| {
            if let Some(r) = &refusals {
                r.note(
                    spe_store::audit::AuditKind::TokenRefused,
                    address,
                    &e.to_string(),
                );
            }
        };
        let token = token.inspect_err(note)?;
        let sent = token.is_some();
        let caller = auth.resolve(token).await.inspect_err(|e| {
            if sent && actix_web::ResponseError::status_code(e) == StatusCode::UNAUTHORIZED {
                note(e);
            }
        })?;
        // The person's own bucket, whatever address they come from.
        if let Some(limits) = limits {
            limits.check_caller(&caller.subject.key())?;
        }
        if A::ROLES.iter().any(|role| caller.has(*role)) {
            Ok(caller)
        } else {
            Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "your role does not allow this action",
            ))
        }
    }
}

impl<A: Action> FromRequest for Authorized<A> {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let caller = authorize::<A>(req);
        Box::pin(async move {
            Ok(Authorized {
                caller: caller.await?,
                action: PhantomData,
            })
        })
    }
}
