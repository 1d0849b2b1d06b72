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

/// The path's `{run_id}` as the user wrote it, shortened for messages.
fn shorten(text: &str) -> String {
    text.chars().take(64).collect()
}

fn app_state(req: &HttpRequest) -> Result<web::Data<AppState>, ApiError> {
    req.app_data::<web::Data<AppState>>()
        .cloned()
        .ok_or_else(|| ApiError::internal("no application state"))
}

/// The path's `{run_id}`, or `None` when it is not a run id (answered as not found).
fn path_run_id(req: &HttpRequest) -> (String, Option<RunId>) {
    let raw = req
        .match_info()
        .get("run_id")
        .unwrap_or_default()
        .to_owned();
    let id = raw.parse().ok();
    (raw, id)
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
        let caller = authorize::<A>(req);
        let state = app_state(req);
        let (raw, id) = path_run_id(req);
        Box::pin(async move {
            let caller = caller.await?;
            let not_found = || ApiError::not_found(format!("run {} not found", shorten(&raw)));
            let id = id.ok_or_else(not_found)?;
            let run = state?.store.get_run(id).await?.ok_or_else(not_found)?;
            if !caller.may_reach(&run) {
                return Err(not_found());
            }
            Ok(VisibleRun {
                caller,
                run,
                action: PhantomData,
            })
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
        let caller = authorize::<A>(req);
        let state = app_state(req);
        let (raw, id) = path_run_id(req);
        Box::pin(async move {
            let caller = caller.await?;
            let not_found =
                || ApiError::not_found(format!("results of run {} not found", shorten(&raw)));
            let id = id.ok_or_else(not_found)?;
            let state = state?;
            let run = state.store.get_run(id).await?.ok_or_else(not_found)?;
            let shared = || {
                state
                    .store
                    .is_shared_with(id, &caller.subject, &caller.groups)
            };
            if caller.may_reach(&run) || shared().await? {
                Ok(SharedResults {
                    caller,
                    run,
                    action: PhantomData,
                })
            } else {
                Err(not_found())
            }
        })
    }
}
