//! Who may reach a run: its owner, operators, and (for released results) the users and groups
//! it was shared with. Handlers take the run through an extractor, so none can forget the
//! check: [`VisibleRun`] (owner or operator) and [`SharedResults`] (owner, shared, or operator).
//! A run the caller may not reach answers 404, exactly like a run that does not exist, so its
//! existence is not revealed; so does a path id that is not a run id at all.
//!
//! [`Caller::owns`] is the one place a caller is compared with a run's owner.

use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;

use actix_web::{FromRequest, HttpRequest, dev::Payload, web};
use spe_core::RunId;
use spe_store::RunRecord;

use crate::auth::{Action, Caller, authorize};
use crate::error::ApiError;
use crate::startup::AppState;

impl Caller {
    /// Whether the caller is the owner recorded on a run (or on anything else they created).
    pub fn owns(&self, owner: &str) -> bool {
        self.subject == owner
    }

    /// Whether the caller may see and act on a run as its owner would: their own runs, and
    /// every run for operators.
    pub fn may_reach(&self, run: &RunRecord) -> bool {
        self.owns(&run.owner) || self.sees_all_runs()
    }
}

/// What the run extractors share: the caller authorised for `A`, the application state, the
/// path's `{run_id}` as written, and the run it names (`None` when it is no run id, or no run
/// has it).
struct PathRun {
    caller: Caller,
    state: web::Data<AppState>,
    raw_id: String,
    run: Option<RunRecord>,
}

fn path_run<A: Action>(
    req: &HttpRequest,
) -> impl Future<Output = Result<PathRun, ApiError>> + use<A> {
    let caller = authorize::<A>(req);
    let state = req.app_data::<web::Data<AppState>>().cloned();
    let raw_id = req
        .match_info()
        .get("run_id")
        .unwrap_or_default()
        .to_owned();
    async move {
        let caller = caller.await?;
        let state = state.ok_or_else(|| ApiError::internal("no application state"))?;
        let run = match raw_id.parse::<RunId>() {
            Ok(id) => state.store.get_run(id).await?,
            Err(_) => None,
        };
        Ok(PathRun {
            caller,
            state,
            raw_id,
            run,
        })
    }
}

/// The same answer for a run that is hidden and one that does not exist.
fn not_found(what: &str, raw_id: &str) -> ApiError {
    let shown: String = raw_id.chars().take(64).collect();
    ApiError::not_found(format!("{what} {shown} not found"))
}

/// The run `{run_id}` of the path, for a caller allowed action `A` who owns it or is an
/// operator. Otherwise 404 `run <id> not found`.
pub struct VisibleRun<A: Action> {
    pub caller: Caller,
    pub run: RunRecord,
    action: PhantomData<A>,
}

impl<A: Action> FromRequest for VisibleRun<A> {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let found = path_run::<A>(req);
        Box::pin(async move {
            let PathRun {
                caller,
                raw_id,
                run,
                ..
            } = found.await?;
            match run {
                Some(run) if caller.may_reach(&run) => Ok(VisibleRun {
                    caller,
                    run,
                    action: PhantomData,
                }),
                _ => Err(not_found("run", &raw_id)),
            }
        })
    }
}

/// The run `{run_id}` of the path, for a caller allowed action `A` who may see its results:
/// the owner, a user or group it was shared with, or an operator. Otherwise 404
/// `results of run <id> not found`.
pub struct SharedResults<A: Action> {
    pub caller: Caller,
    pub run: RunRecord,
    action: PhantomData<A>,
}

impl<A: Action> FromRequest for SharedResults<A> {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let found = path_run::<A>(req);
        Box::pin(async move {
            let PathRun {
                caller,
                state,
                raw_id,
                run,
            } = found.await?;
            let Some(run) = run else {
                return Err(not_found("results of run", &raw_id));
            };
            let shared = || {
                state
                    .store
                    .is_shared_with(run.id, &caller.subject, &caller.groups)
            };
            if caller.may_reach(&run) || shared().await? {
                Ok(SharedResults {
                    caller,
                    run,
                    action: PhantomData,
                })
            } else {
                Err(not_found("results of run", &raw_id))
            }
        })
    }
}
