//! Who may reach a run: its owner, operators, and (for released results) the users and groups
//! it was shared with. Handlers take the run through an extractor, so none can forget the
//! check: [`VisibleRun`] (owner or operator), [`SharedResults`] (owner, shared, or operator) and
//! [`AuditedRun`] (owner, operator or data controller: a run's engine logs, `app::run_logs`);
//! [`VisibleRunState`] is [`VisibleRun`]'s reach for the status path, without the whole run.
//! A run the caller may not reach answers 404, exactly like a run that does not exist, so its
//! existence is not revealed; so does a path id that is not a run id at all.
//!
//! [`Caller::owns`] is the one place a caller is compared with a run's owner.

use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;

use actix_web::{FromRequest, HttpRequest, dev::Payload, web};
use spe_core::{RunId, RunState, Subject};
use spe_store::RunRecord;

use crate::auth::{Action, Caller, authorize};
use crate::error::ApiError;
use crate::startup::AppState;

impl Caller {
    /// Whether the caller is the owner recorded on a run (or on anything else they created).
    pub fn owns(&self, owner: &Subject) -> bool {
        self.subject == *owner
    }

    /// Whether the caller may see and act on a run as its owner would: their own runs, and
    /// every run for operators.
    pub fn may_reach(&self, run: &RunRecord) -> bool {
        self.owns(&run.owner) || self.sees_all_runs()
    }

    /// The owner a list of runs is narrowed to: none for operators, else the caller.
    pub fn listed_owner(&self) -> Option<Subject> {
        (!self.sees_all_runs()).then(|| self.subject.clone())
    }
}

/// Which runs of others a caller may reach, beyond their own (operators reach every run).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunScope {
    /// No run in particular: the route names none.
    None,
    /// Only the caller's own ([`VisibleRun`]).
    Owner,
    /// The caller's own and those shared with them or one of their groups ([`SharedResults`]).
    Shared,
    /// Any run with a review request (a file held now or before), for the data controllers
    /// who review it ([`RunUnderReview`]).
    UnderReview,
    /// The caller's own, and every run for data controllers as for operators ([`AuditedRun`]).
    Audit,
}

/// A rule deciding whether a caller reaches a run, and what a refusal calls it.
pub trait Reach: 'static {
    const SCOPE: RunScope;
    /// The 404 message's noun: `<WHAT> <id> not found`.
    const WHAT: &'static str;
    fn admits(
        caller: &Caller,
        run: &RunRecord,
        state: &AppState,
    ) -> impl Future<Output = Result<bool, ApiError>>;
}

/// The owner or an operator.
pub struct Owner;

impl Reach for Owner {
    const SCOPE: RunScope = RunScope::Owner;
    const WHAT: &'static str = "run";
    async fn admits(caller: &Caller, run: &RunRecord, _: &AppState) -> Result<bool, ApiError> {
        Ok(caller.may_reach(run))
    }
}

/// The owner, an operator, or a user or group the run's results were shared with.
pub struct Shared;

impl Reach for Shared {
    const SCOPE: RunScope = RunScope::Shared;
    const WHAT: &'static str = "results of run";
    async fn admits(caller: &Caller, run: &RunRecord, state: &AppState) -> Result<bool, ApiError> {
        if caller.may_reach(run) {
            return Ok(true);
        }
        Ok(state
            .store
            .is_shared_with(run.id, &caller.subject, &caller.groups)
            .await?)
    }
}

/// Any run whose outputs were held for review: data controllers see its request, whoever owns
/// it (a controller who owns it may look, never vote: `app::review`).
pub struct UnderReview;

impl Reach for UnderReview {
    const SCOPE: RunScope = RunScope::UnderReview;
    const WHAT: &'static str = "review request of run";
    async fn admits(_: &Caller, run: &RunRecord, state: &AppState) -> Result<bool, ApiError> {
        Ok(state.store.review_request_state(run.id).await?.is_some())
    }
}

/// The owner, an operator or a data controller (who reviews what leaves, engine logs included).
pub struct Audit;

impl Reach for Audit {
    const SCOPE: RunScope = RunScope::Audit;
    const WHAT: &'static str = "run";
    async fn admits(caller: &Caller, run: &RunRecord, _: &AppState) -> Result<bool, ApiError> {
        Ok(caller.may_reach(run) || caller.has(crate::auth::Role::DataController))
    }
}

/// The run `{run_id}` of the path, for a caller allowed action `A` whom rule `R` lets reach
/// it. Otherwise 404, the same as for a run that does not exist (or an id that is no run id).
pub struct ReachedRun<A: Action, R: Reach> {
    pub caller: Caller,
    pub run: RunRecord,
    rule: PhantomData<(A, R)>,
}

/// The path's run, for its owner or an operator; else 404 `run <id> not found`.
pub type VisibleRun<A> = ReachedRun<A, Owner>;

/// The path's run, for its owner, an operator or those it was shared with; else 404
/// `results of run <id> not found`.
pub type SharedResults<A> = ReachedRun<A, Shared>;

/// The path's run if it has a review request; else 404 `review request of run <id> not found`.
pub type RunUnderReview<A> = ReachedRun<A, UnderReview>;

/// The path's run, for its owner, an operator or a data controller; else 404 `run <id> not
/// found`.
pub type AuditedRun<A> = ReachedRun<A, Audit>;

/// What every run extractor reads of a request: the caller allowed `A`, the application, the
/// path's run id, and the text of the 404 a refusal answers (`<what> <id> not found`, the same
/// for a run that does not exist, one the caller may not reach, and an id that is no run id).
struct PathRun {
    caller: Caller,
    state: web::Data<AppState>,
    id: RunId,
    not_found: String,
}

fn path_run<A: Action>(
    req: &HttpRequest,
    what: &'static str,
) -> impl Future<Output = Result<PathRun, ApiError>> + 'static {
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
        let shown: String = raw_id.chars().take(64).collect();
        let not_found = format!("{what} {shown} not found");
        let id: RunId = raw_id
            .parse()
            .map_err(|_| ApiError::not_found(not_found.clone()))?;
        Ok(PathRun {
            caller,
            state,
            id,
            not_found,
        })
    }
}

impl<A: Action, R: Reach> FromRequest for ReachedRun<A, R> {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let path = path_run::<A>(req, R::WHAT);
        Box::pin(async move {
            let PathRun {
                caller,
                state,
                id,
                not_found,
            } = path.await?;
            let not_found = || ApiError::not_found(not_found.clone());
            let run = state.store.get_run(id).await?.ok_or_else(not_found)?;
            if !R::admits(&caller, &run, &state).await? {
                return Err(not_found());
            }
            Ok(ReachedRun {
                caller,
                run,
                rule: PhantomData,
            })
        })
    }
}

/// The state of the path's run, for its owner or an operator (the reach of [`VisibleRun`]),
/// read through `app::run_states` (what this instance read in the last half second): the
/// status path's extractor. Otherwise 404 `run <id> not found`, as [`VisibleRun`] answers.
pub struct VisibleRunState<A: Action> {
    pub id: RunId,
    pub state: RunState,
    action: PhantomData<A>,
}

impl<A: Action> FromRequest for VisibleRunState<A> {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let path = path_run::<A>(req, Owner::WHAT);
        Box::pin(async move {
            let PathRun {
                caller,
                state,
                id,
                not_found,
            } = path.await?;
            let run_state = state
                .run_states
                .state(&state.store, id, |owner| {
                    caller.owns(owner) || caller.sees_all_runs()
                })
                .await?
                .ok_or_else(|| ApiError::not_found(not_found))?;
            Ok(VisibleRunState {
                id,
                state: run_state,
                action: PhantomData,
            })
        })
    }
}
