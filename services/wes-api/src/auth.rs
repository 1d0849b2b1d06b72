//! Who may call what, written into each handler's type.
//!
//! A handler takes `Authorized<{actions::X}>`; the extractor resolves the caller and refuses
//! the request unless one of the caller's roles grants action `X`. A route therefore cannot be
//! written without saying who may call it. Until OIDC lands the only resolver is
//! `auth: disabled`, where every caller is the same local user holding every role.

use std::future::{Ready, ready};

use actix_web::{FromRequest, HttpRequest, dev::Payload, http::StatusCode, web};

use crate::error::ApiError;

/// Roles, as the identity provider's entitlements map onto them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Researcher,
    DataController,
    Collaborator,
    Operator,
}

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
        _ => &[],
    }
}

/// The authenticated caller of a request.
#[derive(Clone, Debug)]
pub struct Caller {
    /// The stable subject identifier (`sub`); run owners are recorded by it.
    pub subject: String,
    pub roles: Vec<Role>,
}

impl Caller {
    pub fn has(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }

    /// Operators see every run; everyone else sees only their own.
    pub fn sees_all_runs(&self) -> bool {
        self.has(Role::Operator)
    }
}

/// How the application resolves callers (held in app data).
#[derive(Clone, Debug)]
pub enum Authenticator {
    /// `auth: disabled`: one local user with every role. Development only.
    Disabled,
}

impl Authenticator {
    fn resolve(&self, _req: &HttpRequest) -> Result<Caller, ApiError> {
        match self {
            Authenticator::Disabled => Ok(Caller {
                subject: "local-dev-user".into(),
                roles: vec![
                    Role::Researcher,
                    Role::DataController,
                    Role::Collaborator,
                    Role::Operator,
                ],
            }),
        }
    }
}

/// A caller allowed to perform action `A`.
pub struct Authorized<const A: u8>(pub Caller);

impl<const A: u8> FromRequest for Authorized<A> {
    type Error = ApiError;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let Some(auth) = req.app_data::<web::Data<Authenticator>>() else {
            return ready(Err(ApiError::internal("no authenticator configured")));
        };
        ready(auth.resolve(req).and_then(|caller| {
            if roles_for(A).iter().any(|role| caller.has(*role)) {
                Ok(Authorized(caller))
            } else {
                Err(ApiError::new(
                    StatusCode::FORBIDDEN,
                    "your role does not allow this action",
                ))
            }
        }))
    }
}
