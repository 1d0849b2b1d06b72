//! What a route table entry is. An entry names its method, path, OpenAPI operation and policy;
//! the router, the role x endpoint matrix test, the OpenAPI check and the deny-by-default test
//! all read the same entries (`routes::table`).
//!
//! A protected entry is made with [`protected`], naming an action; it accepts only a
//! handler whose first argument is a [`Guard`] for that action (`Authorized<A>`,
//! `VisibleRun<A>` or `SharedResults<A>`), so the table and the handler cannot disagree and a
//! handler without a guard does not compile there. The only other way in is
//! [`public`], which says so in the table (and the tests hold the short list of
//! endpoints allowed to be public).

use actix_web::{FromRequest, Handler, Responder, Route, web};

pub use crate::app::run_access::RunScope;
use crate::app::run_access::{Reach, ReachedRun, VisibleRunState};
use crate::auth::{Action, Authorized, Role};
use crate::routes::WES_BASE;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
    Delete,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Delete => "DELETE",
        }
    }

    /// The key of an operation in an OpenAPI path item.
    pub fn openapi_key(self) -> &'static str {
        match self {
            Method::Get => "get",
            Method::Post => "post",
            Method::Delete => "delete",
        }
    }

    fn route(self) -> Route {
        match self {
            Method::Get => web::get(),
            Method::Post => web::post(),
            Method::Delete => web::delete(),
        }
    }
}

/// Where a path is mounted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Base {
    /// Under the WES base path [`WES_BASE`].
    Wes,
    /// At the root (health checks, browser login).
    Root,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Policy {
    /// Anyone, without a token.
    Public,
    /// Callers holding one of `roles` (the action's), within `run`.
    Protected {
        action: &'static str,
        roles: &'static [Role],
        run: RunScope,
    },
}

/// A handler argument that admits only callers allowed `Self::Action`.
pub trait Guard {
    type Action: Action;
    const RUN: RunScope;
}

impl<A: Action> Guard for Authorized<A> {
    type Action = A;
    const RUN: RunScope = RunScope::None;
}

impl<A: Action, R: Reach> Guard for ReachedRun<A, R> {
    type Action = A;
    const RUN: RunScope = R::SCOPE;
}

impl<A: Action> Guard for VisibleRunState<A> {
    type Action = A;
    const RUN: RunScope = RunScope::Owner;
}

/// A handler's argument tuple, to read its first argument's type.
pub trait HandlerArgs {
    type First;
}

macro_rules! handler_args {
    ($first:ident $(, $rest:ident)*) => {
        impl<$first $(, $rest)*> HandlerArgs for ($first, $($rest,)*) {
            type First = $first;
        }
    };
}
handler_args!(A0);
handler_args!(A0, A1);
handler_args!(A0, A1, A2);
handler_args!(A0, A1, A2, A3);
handler_args!(A0, A1, A2, A3, A4);
handler_args!(A0, A1, A2, A3, A4, A5);

/// One entry of the route table.
pub struct RouteSpec {
    pub method: Method,
    pub base: Base,
    /// The path as the OpenAPI document writes it (and as actix matches it).
    pub path: &'static str,
    /// The document's `operationId`; `None` for the few routes it does not describe.
    pub operation: Option<&'static str>,
    pub policy: Policy,
    route: Box<dyn Fn() -> Route>,
}

/// A route under the WES base path for callers whose roles grant `action`. The handler's
/// first argument must be a [`Guard`] of that action.
pub fn protected<A, F, Args>(
    _action: A,
    method: Method,
    path: &'static str,
    operation: &'static str,
    handler: F,
) -> RouteSpec
where
    A: Action,
    F: Handler<Args>,
    Args: FromRequest + HandlerArgs + 'static,
    Args::First: Guard<Action = A>,
    F::Output: Responder + 'static,
{
    RouteSpec {
        method,
        base: Base::Wes,
        path,
        operation: Some(operation),
        policy: Policy::Protected {
            action: A::NAME,
            roles: A::ROLES,
            run: <Args::First as Guard>::RUN,
        },
        route: Box::new(move || method.route().to(handler.clone())),
    }
}

/// A page of the web UI (`routes::ui`, docs/ui.md), at the root, for callers whose roles grant
/// `action`; its handler's first argument is a [`Guard`] of that action, as for [`protected`].
/// Pages answer HTML, not the API's JSON, so the OpenAPI document does not describe them (no
/// operation); the deny-by-default test covers them like every protected route.
pub fn page<A, F, Args>(_action: A, method: Method, path: &'static str, handler: F) -> RouteSpec
where
    A: Action,
    F: Handler<Args>,
    Args: FromRequest + HandlerArgs + 'static,
    Args::First: Guard<Action = A>,
    F::Output: Responder + 'static,
{
    RouteSpec {
        method,
        base: Base::Root,
        path,
        operation: None,
        policy: Policy::Protected {
            action: A::NAME,
            roles: A::ROLES,
            run: <Args::First as Guard>::RUN,
        },
        route: Box::new(move || method.route().to(handler.clone())),
    }
}

/// A route anyone may call without a token.
pub fn public<F, Args>(
    method: Method,
    base: Base,
    path: &'static str,
    operation: Option<&'static str>,
    handler: F,
) -> RouteSpec
where
    F: Handler<Args>,
    Args: FromRequest + 'static,
    F::Output: Responder + 'static,
{
    RouteSpec {
        method,
        base,
        path,
        operation,
        policy: Policy::Public,
        route: Box::new(move || method.route().to(handler.clone())),
    }
}

impl RouteSpec {
    /// This route mounted at the root instead of under the WES base path: for the few paths
    /// other APIs' clients expect there (WESkit's `/weskit/v1/...`).
    pub fn at_root(self) -> Self {
        RouteSpec {
            base: Base::Root,
            ..self
        }
    }

    /// The path a client requests.
    pub fn full_path(&self) -> String {
        match self.base {
            Base::Wes => format!("{WES_BASE}{}", self.path),
            Base::Root => self.path.to_owned(),
        }
    }
}

/// Mounts `routes` on `cfg`: one resource per path (in the table's order), so that a path
/// served for one method answers 405 for the others.
pub fn mount(cfg: &mut web::ServiceConfig, routes: &[RouteSpec]) {
    let mut wes = web::scope(WES_BASE);
    for resource in resources(routes, Base::Wes) {
        wes = wes.service(resource);
    }
    cfg.service(wes);
    for resource in resources(routes, Base::Root) {
        cfg.service(resource);
    }
}

fn resources(routes: &[RouteSpec], base: Base) -> Vec<actix_web::Resource> {
    let mut paths: Vec<&'static str> = Vec::new();
    for r in routes.iter().filter(|r| r.base == base) {
        if !paths.contains(&r.path) {
            paths.push(r.path);
        }
    }
    paths
        .into_iter()
        .map(|path| {
            routes
                .iter()
                .filter(|r| r.base == base && r.path == path)
                .fold(web::resource(path), |res, r| res.route((r.route)()))
        })
        .collect()
}
