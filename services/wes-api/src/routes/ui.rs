//! The web UI's pages (docs/ui.md): HTTP only. Each handler's guard is a [`Page`] around the
//! API's own guard for the same action (so the route table, the deny-by-default test and the
//! run extractors hold for pages as for the API), reads what the API's handlers read (store,
//! `app`), and renders an askama template of `crate::ui::pages`. Forms post with the session's
//! CSRF token (`crate::ui::check_csrf`).

use actix_web::ResponseError;
use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use spe_core::RunState;
use spe_core::manifest::{Manifest, OutputEncryption, WorkflowRef};
use spe_core::page::{PageSize, PageToken};
use spe_core::request::{RunRequestFields, TagFilter};
use spe_store::{
    EgressState, RequestState, ReviewFilter, RunFilter, Vote, WorkflowState, WorkflowVersion,
};

use crate::app::results::{self as app_results, ShareTarget};
use crate::app::review;
use crate::app::run_access::{RunUnderReview, SharedResults, VisibleRun};
use crate::app::run_logs::{self, LogView};
use crate::app::{datasets, encrypted_results, registry, runs, tasks};
use crate::auth::Authorized;
use crate::auth::actions::{
    AuditRead, DatasetsManage, ResultsRead, ResultsShare, ReviewsAnswer, ReviewsManage, RunsCancel,
    RunsRead, RunsSubmit, UiHome, WorkflowsManage,
};
use crate::error::ApiError;
use crate::routes::WES_BASE;
use crate::session::Sessions;
use crate::startup::AppState;
use crate::ui::pages::{
    AuditPage, AuditRow, AuditVerificationPage, DatasetRow, DatasetsPage, EngineField, EventRow,
    HomePage, Layout, OutputRow, PreviewView, RegistryPage, RegistryRow, ReleasedRow, ResultPage,
    ResultRunRow, ResultsPage, ReviewFileView, ReviewMessage, ReviewPage, ReviewRow, ReviewsPage,
    RunPage, RunRow, RunsPage, ShareRow, SubmitPage, TaskRow, UploadRow, VoteRow, WorkflowFileLink,
    WorkflowRow, WorkflowVersionPage, WorkflowsPage,
};
use crate::ui::params_form::{self, FieldOption};
use crate::ui::{self, Page, PageError, assets};

/// The most tasks a run's page lists (a log may hold 100,000).
pub const MAX_TASKS_SHOWN: usize = 500;

fn layout(req: &HttpRequest, caller: &crate::auth::Caller) -> Layout {
    let logout = req.app_data::<web::Data<Sessions>>().is_some();
    Layout::new(caller, logout, ui::csrf_token(req))
}

/// `GET /`: where the browser lands after login; links by the caller's roles.
pub async fn home(
    Page(Authorized { caller, .. }): Page<Authorized<UiHome>>,
    req: HttpRequest,
) -> Result<HttpResponse, PageError> {
    ui::render(&HomePage {
        layout: layout(&req, &caller),
    })
}

/// The run list's query: one state, one tag, a page token (all optional, empty = none).
struct ListQuery {
    state: Option<RunState>,
    tag: Option<TagFilter>,
    tag_text: String,
    page_token: Option<String>,
}

fn list_query(query: &str) -> Result<ListQuery, ApiError> {
    let mut out = ListQuery {
        state: None,
        tag: None,
        tag_text: String::new(),
        page_token: None,
    };
    for (key, value) in crate::http::query_pairs(query)? {
        let value = value.trim();
        match key.as_str() {
            _ if value.is_empty() => {}
            "state" => {
                out.state = Some(
                    value
                        .parse()
                        .map_err(|e| ApiError::bad_request(format!("state: {e}")))?,
                )
            }
            "tag" => {
                out.tag = Some(
                    value
                        .parse()
                        .map_err(|e| ApiError::bad_request(format!("tag: {e}")))?,
                );
                out.tag_text = value.to_owned();
            }
            "page_token" => out.page_token = Some(value.to_owned()),
            other => {
                return Err(ApiError::bad_request(format!(
                    "unknown query parameter {:?}; known: state, tag, page_token",
                    other.chars().take(64).collect::<String>()
                )));
            }
        }
    }
    Ok(out)
}

fn with_query(path: &str, pairs: &[(&str, &str)]) -> String {
    let pairs: Vec<_> = pairs.iter().filter(|(_, v)| !v.is_empty()).collect();
    match serde_urlencoded::to_string(&pairs) {
        Ok(q) if !q.is_empty() => format!("{path}?{q}"),
        _ => path.to_owned(),
    }
}

/// `GET /ui/runs`: the caller's runs (every run for operators), newest first, one page off the
/// `(owner, created_at, id)` index, filtered by state and tag.
pub async fn runs(
    Page(Authorized { caller, .. }): Page<Authorized<RunsRead>>,
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    let query = list_query(req.query_string())?;
    let server = &state.config.server;
    let size = PageSize::parse(None, server.default_page_size, server.max_page_size)
        .map_err(|e| ApiError::internal(e.to_string()))?;
    let token = match &query.page_token {
        Some(t) => Some(PageToken::decode(t).map_err(|e| ApiError::bad_request(e.to_string()))?),
        None => None,
    };
    let filter = RunFilter {
        owner: caller.listed_owner(),
        states: query.state.into_iter().collect(),
        tags: query
            .tag
            .iter()
            .map(|t| (t.key.as_str().to_owned(), t.value.clone()))
            .collect(),
        ..RunFilter::default()
    };
    let page = state.store.list_runs(&filter, size, token).await?;
    let state_name = query.state.map(|s| s.as_str()).unwrap_or_default();
    let token_text = query.page_token.clone().unwrap_or_default();
    let next = page.next.map(|t| {
        with_query(
            "/ui/runs",
            &[
                ("state", state_name),
                ("tag", &query.tag_text),
                ("page_token", &t.encode()),
            ],
        )
    });
    let page_size = size.get().to_string();
    ui::render(&RunsPage {
        layout: layout(&req, &caller),
        states: RunsPage::state_options(&filter.states),
        tag: query.tag_text.clone(),
        any_state: query.state.is_none(),
        runs: page.runs.iter().map(RunRow::of).collect(),
        next,
        later_page: query.page_token.is_some(),
        first: with_query(
            "/ui/runs",
            &[("state", state_name), ("tag", &query.tag_text)],
        ),
        poll: with_query(
            &format!("{WES_BASE}/runs"),
            &[
                ("page_size", &page_size),
                ("state", state_name),
                ("tag", &query.tag_text),
                ("page_token", &token_text),
            ],
        ),
    })
}

/// `GET /ui/runs/{run_id}`: one run as its owner (or an operator) may see it: the same views
/// of logs, tasks and outputs as `GET /runs/{id}`, `/tasks` and `/egress`.
pub async fn run(
    Page(VisibleRun { caller, run, .. }): Page<VisibleRun<RunsRead>>,
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    let view = LogView::of(&caller, &run);
    let log_json = crate::run_files::log_json(&run).await;
    let released = state.store.released_files(run.id).await?;
    let shown = run_logs::run_log(view, &run, log_json.as_ref(), &released);
    let all_tasks = tasks::visible_tasks(&state.tasks, view, &run).await;
    let events = state.store.run_events(run.id).await?;
    let outputs = state.store.egress_files(run.id).await?;
    let review_events = state.store.review_events(run.id).await?;
    let returned = state.store.review_request_state(run.id).await? == Some(RequestState::Returned);
    let shares = state.store.shares(run.id).await?;
    ui::render(&RunPage {
        layout: layout(&req, &caller),
        run: RunRow::of(&run),
        released: released.len(),
        shares: shares.iter().map(ShareRow::of).collect(),
        workflow_version: run.workflow_type_version.clone(),
        started: run.start_time.map(|t| t.to_wes()).unwrap_or_default(),
        ended: run.end_time.map(|t| t.to_wes()).unwrap_or_default(),
        exit_code: run.exit_code.map(|c| c.to_string()).unwrap_or_default(),
        cancelable: run.state.is_cancelable(),
        poll: format!("{WES_BASE}/runs/{}/status", run.id),
        events: events.iter().map(EventRow::of).collect(),
        messages: shown.system_logs,
        tasks: all_tasks
            .iter()
            .take(MAX_TASKS_SHOWN)
            .map(TaskRow::of)
            .collect(),
        more_tasks: all_tasks.len().saturating_sub(MAX_TASKS_SHOWN),
        outputs: outputs.iter().map(OutputRow::of).collect(),
        review_messages: ReviewMessage::all(&review_events),
        answerable: returned && caller.owns(&run.owner),
    })
}

/// The `comment` of a posted review form: required, as the API's `comment` rule says.
fn posted_comment(posted: &[(String, String)]) -> Result<String, PageError> {
    let text = ui::field(posted, "comment").map(str::to_owned);
    Ok(review::comment("comment", text, true)?.unwrap_or_default())
}

/// `POST /ui/runs/{run_id}/answer` (form, CSRF, `comment`): the owner answers a returned review
/// (`app::review::answer`, as `POST /runs/{id}/egress/answer`), which opens it again.
pub async fn answer(
    Page(VisibleRun { caller, run, .. }): Page<VisibleRun<ReviewsAnswer>>,
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    let posted = ui::checked_form(&req, &body)?;
    let text = posted_comment(&posted)?;
    review::answer(&state, &caller, &run, &text).await?;
    Ok(ui::see_other(&format!("/ui/runs/{}", run.id)))
}

/// `POST /ui/reviews/{run_id}/return` (form, CSRF, `comment`): sends the request back to the
/// researcher (`app::review::return_to_researcher`, as `POST /admin/reviews/{id}/return`).
pub async fn return_request(
    Page(RunUnderReview { caller, run, .. }): Page<RunUnderReview<ReviewsManage>>,
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    let posted = ui::checked_form(&req, &body)?;
    let text = posted_comment(&posted)?;
    review::return_to_researcher(&state, &caller, &run, &text).await?;
    Ok(ui::see_other(&format!("/ui/reviews/{}", run.id)))
}

/// `POST /ui/runs/{run_id}/cancel` (form, CSRF): cancels the run (`app::runs::cancel`), then
/// back to its page.
pub async fn cancel(
    Page(VisibleRun { caller, run, .. }): Page<VisibleRun<RunsCancel>>,
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    ui::checked_form(&req, &body)?;
    let run_id = run.id;
    let cancelled = runs::cancel(&state, &caller, run).await;
    state.run_states.forget(run_id);
    cancelled?;
    Ok(ui::see_other(&format!("/ui/runs/{run_id}")))
}

/// `GET /ui/submit`: the approved workflow versions, each with a link to its form.
pub async fn workflows(
    Page(Authorized { caller, .. }): Page<Authorized<RunsSubmit>>,
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    let versions = state
        .store
        .list_workflow_versions(Some(WorkflowState::Approved))
        .await?;
    ui::render(&WorkflowsPage {
        layout: layout(&req, &caller),
        workflows: versions
            .iter()
            .map(|v| WorkflowRow {
                url: v.workflow_url(),
                workflow_type: v.workflow_type.to_string(),
                description: v.description.clone(),
                form: format!("/ui/submit/{}/{}", v.name, v.version),
            })
            .collect(),
    })
}

/// The approved version of the path (`{name}/{version}`) and its manifest; 404 otherwise.
async fn approved(
    req: &HttpRequest,
    state: &AppState,
) -> Result<(WorkflowVersion, Manifest), PageError> {
    let name = req.match_info().get("name").unwrap_or_default();
    let version = req.match_info().get("version").unwrap_or_default();
    let not_found = || {
        ApiError::not_found(format!(
            "no approved workflow {}@{}",
            name.chars().take(64).collect::<String>(),
            version.chars().take(64).collect::<String>()
        ))
    };
    let v = state
        .store
        .workflow_version(name, version)
        .await?
        .filter(|v| v.state == WorkflowState::Approved)
        .ok_or_else(not_found)?;
    let manifest = Manifest::from_json(&v.manifest).map_err(ApiError::internal)?;
    Ok((v, manifest))
}

/// The submit form of `v`, filled from `posted` after a refusal (with its reason).
async fn submit_page(
    req: &HttpRequest,
    state: &AppState,
    caller: &crate::auth::Caller,
    (v, manifest): (&WorkflowVersion, &Manifest),
    posted: Option<&[(String, String)]>,
    error: Option<String>,
) -> Result<SubmitPage, PageError> {
    let usable: Vec<(String, String)> = datasets::usable_by(state, caller)
        .await?
        .into_iter()
        .map(|d| (d.id, d.description))
        .collect();
    let posted_value = |name: &str| posted.and_then(|p| ui::field(p, name)).map(str::to_owned);
    let engine = manifest
        .effective_engine_parameters(&state.config.workflows.engine_parameters)
        .unwrap_or_default()
        .into_iter()
        .map(|spec| {
            let field = format!("engine.{}", spec.name);
            let value = posted_value(&field).unwrap_or_else(|| spec.default.clone());
            let options: Vec<FieldOption> = spec
                .allowed
                .iter()
                .flatten()
                .map(|a| FieldOption {
                    value: a.clone(),
                    label: a.clone(),
                    selected: *a == value,
                })
                .collect();
            EngineField {
                kind: if !options.is_empty() {
                    "select"
                } else if spec.kind == spe_core::config::EngineParameterKind::Integer {
                    "number"
                } else {
                    "text"
                },
                min: spec.min.map(|m| m.to_string()).unwrap_or_default(),
                max: spec.max.map(|m| m.to_string()).unwrap_or_default(),
                name: spec.name,
                field,
                value,
                options,
            }
        })
        .collect();
    let chosen_version = posted_value("workflow_type_version");
    let type_versions = state
        .config
        .workflows
        .types
        .get(&v.workflow_type)
        .into_iter()
        .flatten()
        .enumerate()
        .map(|(i, t)| FieldOption {
            value: t.clone(),
            label: t.clone(),
            selected: chosen_version.as_deref().map_or(i == 0, |c| c == t),
        })
        .collect();
    Ok(SubmitPage {
        layout: layout(req, caller),
        url: v.workflow_url(),
        action: format!("/ui/submit/{}/{}", v.name, v.version),
        description: v.description.clone(),
        type_versions,
        params: params_form::fields(&manifest.params, &usable, posted),
        engine,
        tags: posted_value("tags").unwrap_or_default(),
        error,
    })
}

/// `GET /ui/submit/{name}/{version}`: the form generated from the version's parameter schema.
pub async fn submit_form(
    Page(Authorized { caller, .. }): Page<Authorized<RunsSubmit>>,
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    let (v, manifest) = approved(&req, &state).await?;
    ui::render(&submit_page(&req, &state, &caller, (&v, &manifest), None, None).await?)
}

/// The run request a posted form makes: the same fields a WES client sends, so admission
/// checks it exactly as `POST /runs`.
fn run_request(
    v: &WorkflowVersion,
    manifest: &Manifest,
    posted: &[(String, String)],
) -> Result<RunRequestFields, String> {
    let params = params_form::params(&manifest.params, posted)?;
    let tags = params_form::tags(ui::field(posted, "tags").unwrap_or_default())?;
    let engine: serde_json::Map<String, serde_json::Value> = posted
        .iter()
        .filter_map(|(k, value)| {
            let name = k.strip_prefix("engine.")?;
            (!value.trim().is_empty()).then(|| (name.to_owned(), value.trim().into()))
        })
        .collect();
    let mut fields = RunRequestFields::default();
    let mut set = |name: &str, value: String| {
        fields
            .set_form_field(name, value)
            .map_err(|e| e.to_string())
    };
    set("workflow_type", v.workflow_type.to_string())?;
    set(
        "workflow_type_version",
        ui::field(posted, "workflow_type_version")
            .unwrap_or_default()
            .to_owned(),
    )?;
    set("workflow_url", v.workflow_url())?;
    set(
        "workflow_params",
        serde_json::Value::Object(params).to_string(),
    )?;
    set("tags", serde_json::Value::Object(tags).to_string())?;
    set(
        "workflow_engine_parameters",
        serde_json::Value::Object(engine).to_string(),
    )?;
    Ok(fields)
}

/// `POST /ui/submit/{name}/{version}` (form, CSRF): submits the run (`app::runs::accept`, as
/// `POST /runs`) and goes to its page; a refused request shows the form again with the reason
/// and what was typed.
pub async fn submit(
    Page(Authorized { caller, .. }): Page<Authorized<RunsSubmit>>,
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    let posted = ui::checked_form(&req, &body)?;
    let (v, manifest) = approved(&req, &state).await?;
    let refused = match run_request(&v, &manifest, &posted) {
        Ok(fields) => match runs::accept(&state, &caller, fields).await {
            Ok(id) => return Ok(ui::see_other(&format!("/ui/runs/{id}"))),
            Err(e) if e.status_code().is_client_error() => (e.status_code(), e.to_string()),
            Err(e) => return Err(e.into()),
        },
        Err(reason) => (StatusCode::BAD_REQUEST, reason),
    };
    let page = submit_page(
        &req,
        &state,
        &caller,
        (&v, &manifest),
        Some(&posted),
        Some(refused.1),
    )
    .await?;
    let body = askama::Template::render(&page).map_err(ApiError::internal)?;
    Ok(ui::html(refused.0, body))
}

/// Most runs the results page lists (newest first): enough for a person, few enough to render in
/// a few milliseconds (docs/benchmarks.md).
const MAX_RESULT_RUNS: i64 = 50;

/// `GET /ui/results`: runs whose released results the caller may see, their own and those
/// shared with them or one of their groups (`store.result_runs`, as `GET /results`).
pub async fn results(
    Page(Authorized { caller, .. }): Page<Authorized<ResultsRead>>,
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    let runs = state
        .store
        .result_runs(&caller.subject, &caller.groups, MAX_RESULT_RUNS + 1)
        .await?;
    let more = runs.len() > MAX_RESULT_RUNS as usize;
    ui::render(&ResultsPage {
        layout: layout(&req, &caller),
        runs: runs
            .iter()
            .take(MAX_RESULT_RUNS as usize)
            .map(|r| ResultRunRow::of(r, &caller))
            .collect(),
        more,
    })
}

/// `GET /ui/results/{run_id}`: a run's released files (only those), each with its download:
/// a form for a short-lived link, or for a file stored Crypt4GH-encrypted the API's download
/// bound to the caller's key, with the decryption steps and the key form.
pub async fn result(
    Page(SharedResults { caller, run, .. }): Page<SharedResults<ResultsRead>>,
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    let files = state.store.released_files(run.id).await?;
    let any_encrypted = files.iter().any(|f| f.encryption.is_some());
    let keys = if any_encrypted {
        encrypted_results::reader_keys(&state, &caller).await?
    } else {
        None
    };
    let (key_fingerprints, key_source) = match keys {
        Some((keys, source)) => (
            keys.iter().map(|k| k.fingerprint()).collect(),
            source.as_str().to_owned(),
        ),
        None => (Vec::new(), String::new()),
    };
    let rows = files
        .iter()
        .map(|f| ReleasedRow {
            path: f.path.clone(),
            size: f.size,
            sha256: f.sha256.clone(),
            encrypted: f.encryption == Some(OutputEncryption::Crypt4gh),
            crypt4gh_url: with_query(
                &format!("{WES_BASE}/results/{}/crypt4gh", run.id),
                &[("path", &f.path)],
            ),
            file_name: f.path.rsplit('/').next().unwrap_or("result").to_owned(),
        })
        .collect();
    ui::render(&ResultPage {
        layout: layout(&req, &caller),
        run: RunRow::of(&run),
        ended: run.end_time.map(|t| t.to_wes()).unwrap_or_default(),
        shared_by: if caller.owns(&run.owner) {
            String::new()
        } else {
            run.owner.to_string()
        },
        files: rows,
        any_encrypted,
        key_fingerprints,
        key_source,
        link_seconds: state.results.as_ref().map_or(0, |b| b.ttl().as_secs()),
    })
}

/// `POST /ui/results/{run_id}/link` (form, CSRF, `path`): a short-lived presigned link to one
/// released plaintext file (`app::results::issue_link`, as `POST /results/{id}/links`,
/// recorded), answered as a 303 to it: the browser downloads from the results store directly.
pub async fn result_link(
    Page(SharedResults { caller, run, .. }): Page<SharedResults<ResultsRead>>,
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    let posted = ui::checked_form(&req, &body)?;
    let path = ui::field(&posted, "path").ok_or_else(|| ApiError::bad_request("path: required"))?;
    let link = app_results::issue_link(&state, &caller, run.id, path).await?;
    Ok(ui::see_other(&link.url))
}

/// `POST /ui/results/{run_id}/key` (form, CSRF, `public_key`): registers the caller's Crypt4GH
/// public key (`app::encrypted_results::register_key`, as `POST /me/crypt4gh-key`); then back
/// to the results page.
pub async fn register_key(
    Page(SharedResults { caller, run, .. }): Page<SharedResults<ResultsRead>>,
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    let posted = ui::checked_form(&req, &body)?;
    let text = ui::field(&posted, "public_key").unwrap_or_default();
    encrypted_results::register_key(&state, &caller, text).await?;
    Ok(ui::see_other(&format!("/ui/results/{}", run.id)))
}

/// The principal a sharing form names: `kind` (subject|group), `value`, optional `issuer`.
fn share_target(posted: &[(String, String)]) -> Result<ShareTarget, PageError> {
    let value = ui::field(posted, "value").map(|v| v.trim().to_owned());
    let issuer = ui::field(posted, "issuer")
        .map(str::trim)
        .filter(|i| !i.is_empty())
        .map(str::to_owned);
    Ok(match ui::field(posted, "kind") {
        Some("subject") => ShareTarget {
            subject: value,
            group: None,
            issuer,
        },
        Some("group") => ShareTarget {
            subject: None,
            group: value,
            issuer,
        },
        _ => return Err(ApiError::bad_request("kind: subject or group").into()),
    })
}

/// `POST /ui/runs/{run_id}/shares` (form, CSRF, `kind`, `value`): shares the run's released
/// results with a user or an LS-Login group (`app::results::add_share`, as
/// `POST /runs/{id}/shares`, the same checks); then back to the run's page.
pub async fn add_share(
    Page(VisibleRun { caller, run, .. }): Page<VisibleRun<ResultsShare>>,
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    let posted = ui::checked_form(&req, &body)?;
    let trusted = state.config.auth.trusted_issuers();
    let who = app_results::principal(share_target(&posted)?, &caller, &trusted)?;
    app_results::add_share(&state, &caller, run.id, &who).await?;
    Ok(ui::see_other(&format!("/ui/runs/{}", run.id)))
}

/// `POST /ui/runs/{run_id}/shares/remove` (form, CSRF, `kind`, `value`, `issuer`): stops
/// sharing (`app::results::remove_share`, as `DELETE /runs/{id}/shares`; 404 when it was not
/// shared so); then back to the run's page.
pub async fn remove_share(
    Page(VisibleRun { caller, run, .. }): Page<VisibleRun<ResultsShare>>,
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    let posted = ui::checked_form(&req, &body)?;
    let trusted = state.config.auth.trusted_issuers();
    let who = app_results::principal(share_target(&posted)?, &caller, &trusted)?;
    app_results::remove_share(&state, &caller, run.id, &who).await?;
    Ok(ui::see_other(&format!("/ui/runs/{}", run.id)))
}

/// Most requests the queue lists; most held files a review page previews (each is read from
/// the run directory).
const MAX_REQUESTS_SHOWN: i64 = 200;
const MAX_PREVIEWS: usize = 5;

/// `GET /ui/reviews?state=open|returned|decided`: the data controllers' queue, oldest first.
pub async fn reviews(
    Page(Authorized { caller, .. }): Page<Authorized<ReviewsManage>>,
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    let mut chosen = RequestState::Open;
    for (key, value) in crate::http::query_pairs(req.query_string())? {
        match key.as_str() {
            "state" => {
                chosen = RequestState::parse(&value)
                    .ok_or_else(|| ApiError::bad_request("state: one of open, returned, decided"))?
            }
            other => {
                return Err(ApiError::bad_request(format!(
                    "unknown query parameter {:?}; known: state",
                    other.chars().take(64).collect::<String>()
                ))
                .into());
            }
        }
    }
    let filter = ReviewFilter {
        state: Some(chosen),
        ..ReviewFilter::default()
    };
    let requests = state
        .store
        .review_requests(&filter, MAX_REQUESTS_SHOWN)
        .await?;
    let states = [
        (RequestState::Open, "Open"),
        (RequestState::Returned, "Returned to the researcher"),
        (RequestState::Decided, "Decided"),
    ]
    .into_iter()
    .map(|(s, label)| FieldOption {
        value: s.as_str().to_owned(),
        label: label.to_owned(),
        selected: s == chosen,
    })
    .collect();
    ui::render(&ReviewsPage {
        layout: layout(&req, &caller),
        states,
        requests: requests.iter().map(ReviewRow::of).collect(),
    })
}

/// `GET /ui/reviews/{run_id}`: a run under review, each output with its reason, a preview of
/// the first held ones (`app::review::look_at`, as `GET /admin/reviews/{id}/preview`), this
/// round's votes and the vote form.
pub async fn review(
    Page(RunUnderReview { caller, run, .. }): Page<RunUnderReview<ReviewsManage>>,
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    let store = &state.store;
    let required = state.config.review.approvals_required;
    let files = store.egress_files(run.id).await?;
    let events = store.review_events(run.id).await?;
    let request_state = store.review_request_state(run.id).await?;
    let mut views = Vec::with_capacity(files.len());
    let mut previewed = 0;
    let mut unpreviewed = 0;
    for (n, f) in files.iter().enumerate() {
        let held = f.state == EgressState::Held;
        let preview = if held && previewed < MAX_PREVIEWS {
            previewed += 1;
            // A file gone from the run directory is shown without a preview, not as an error.
            review::look_at(&state, &run, &f.path)
                .await
                .ok()
                .and_then(|v| PreviewView::of(&v))
        } else {
            unpreviewed += usize::from(held);
            None
        };
        let standing = review::standing(f, &events, required);
        views.push(ReviewFileView {
            path: f.path.clone(),
            state: f.state.as_str().to_owned(),
            size: f.size,
            reason: f.reason.clone().unwrap_or_default(),
            decision: standing.decision.unwrap_or_default().to_owned(),
            approvals: standing.count(Vote::Approve),
            rejections: standing.count(Vote::Reject),
            votes: standing
                .votes
                .iter()
                .map(|e| VoteRow {
                    by: e.actor.to_string(),
                    vote: e.vote.map(|v| v.to_string()).unwrap_or_default(),
                    comment: e.comment.clone().unwrap_or_default(),
                    at: e.at.to_wes(),
                })
                .collect(),
            held,
            preview,
            n,
        });
    }
    let may_vote = !caller.owns(&run.owner);
    ui::render(&ReviewPage {
        messages: ReviewMessage::all(&events),
        returnable: may_vote && request_state == Some(RequestState::Open),
        layout: layout(&req, &caller),
        run_id: run.id.to_string(),
        workflow: run.submission.workflow_url.clone(),
        owner: run.owner.to_string(),
        request_state: request_state
            .map(|s| s.as_str().to_owned())
            .unwrap_or_else(|| "none".to_owned()),
        approvals_required: required,
        may_vote,
        files: views,
        unpreviewed,
    })
}

/// `POST /ui/reviews/{run_id}/votes` (form, CSRF): `path`, `vote` (approve|reject), `comment`
/// (required to reject): `app::review::vote`, as `POST /admin/reviews/{id}/votes`; then back.
pub async fn vote(
    Page(RunUnderReview { caller, run, .. }): Page<RunUnderReview<ReviewsManage>>,
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    let posted = ui::checked_form(&req, &body)?;
    let path = ui::field(&posted, "path").ok_or_else(|| ApiError::bad_request("path: required"))?;
    let vote = match ui::field(&posted, "vote") {
        Some("approve") => Vote::Approve,
        Some("reject") => Vote::Reject,
        _ => return Err(ApiError::bad_request("vote: approve or reject").into()),
    };
    let text = ui::field(&posted, "comment")
        .filter(|c| !c.trim().is_empty())
        .map(str::to_owned);
    let text = review::comment("comment", text, vote == Vote::Reject)?;
    review::vote(&state, &caller, &run, path, vote, text.as_deref()).await?;
    Ok(ui::see_other(&format!("/ui/reviews/{}", run.id)))
}

/// One version as the registry shows it to `caller`: state, digest, who did what, and which
/// of approve and retire they may do.
fn registry_row(
    v: &WorkflowVersion,
    caller: &crate::auth::Caller,
    distinct: bool,
    n: usize,
) -> RegistryRow {
    let by = |who: &spe_core::Subject, at: &spe_core::time::Timestamp| {
        format!("{} by {who}", at.to_wes())
    };
    let draft = v.state == WorkflowState::Draft;
    let own = caller.owns(&v.registered_by);
    RegistryRow {
        url: v.workflow_url(),
        workflow_type: v.workflow_type.to_string(),
        state: v.state.to_string(),
        description: v.description.clone(),
        digest: v
            .digest
            .as_ref()
            .unwrap_or(&v.registered_digest)
            .to_string(),
        registered: by(&v.registered_by, &v.registered_at),
        approved: match (&v.approved_by, &v.approved_at) {
            (Some(who), Some(at)) => by(who, at),
            _ => String::new(),
        },
        retired: match (&v.retired_by, &v.retired_at) {
            (Some(who), Some(at)) => {
                let reason = v.retire_reason.as_deref().unwrap_or_default();
                format!(
                    "{}{}{reason}",
                    by(who, at),
                    if reason.is_empty() { "" } else { ": " }
                )
            }
            _ => String::new(),
        },
        base: format!("/ui/workflows/{}/{}", v.name, v.version),
        approvable: draft && !(distinct && own),
        four_eyes: draft && distinct && own,
        retirable: v.state != WorkflowState::Retired,
        n,
    }
}

/// `GET /ui/workflows`: the registry for data controllers: every version with its state,
/// digest, who registered, approved and retired it; approve (four eyes shown) and retire; a
/// form to register a version from the tar.gz of its folder.
pub async fn registry_page(
    Page(Authorized { caller, .. }): Page<Authorized<WorkflowsManage>>,
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    let versions = state.store.list_workflow_versions(None).await?;
    let distinct = state.config.workflows.require_distinct_approver;
    ui::render(&RegistryPage {
        layout: layout(&req, &caller),
        distinct_approver: distinct,
        versions: versions
            .iter()
            .enumerate()
            .map(|(n, v)| registry_row(v, &caller, distinct, n))
            .collect(),
    })
}

/// `POST /ui/workflows` (multipart form, CSRF): registers a draft version from the tar.gz of
/// its folder (`archive`) or from a folder on the cluster's file system (`source_dir`), as
/// `POST /admin/workflows` does; then its page.
pub async fn register_workflow(
    Page(Authorized { caller, .. }): Page<Authorized<WorkflowsManage>>,
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    let limit = state.config.server.max_body_bytes;
    crate::http::check_content_length(&req, limit)?;
    let mut form = ui::checked_multipart(&req, payload, limit).await?;
    let archive = form.take_file("archive");
    let source_dir = ui::field(&form.fields, "source_dir")
        .map(str::trim)
        .filter(|d| !d.is_empty());
    let v = match (archive, source_dir) {
        (Some(archive), None) => registry::register_upload(&state, &caller, archive).await?,
        (None, Some(dir)) => {
            let dir = crate::http::check_absolute_path("source_dir", dir)?;
            registry::register_folder(&state, &caller, dir).await?
        }
        (Some(_), Some(_)) => {
            return Err(ApiError::bad_request(
                "give either the tar.gz of the workflow's folder or a folder on the cluster, not both",
            )
            .into());
        }
        (None, None) => {
            return Err(ApiError::bad_request(
                "choose the tar.gz of the workflow's folder (or give a folder on the cluster)",
            )
            .into());
        }
    };
    Ok(ui::see_other(&format!(
        "/ui/workflows/{}/{}",
        v.name, v.version
    )))
}

/// `GET /ui/workflows/{name}/{version}[?file=<name>]`: one version for a data controller to
/// read before approving: its facts, the files its digest covers, and one of them shown
/// (default: the manifest, `workflow.yaml`).
pub async fn workflow_page(
    Page(Authorized { caller, .. }): Page<Authorized<WorkflowsManage>>,
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    let r = path_workflow(&req)?;
    let shown = crate::http::only_query_param(req.query_string(), "file")?
        .unwrap_or_else(|| spe_core::manifest::MANIFEST_FILE.to_owned());
    let v = state
        .store
        .workflow_version(&r.name, &r.version)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("workflow {r} not found")))?;
    let text = registry::version_file(&v, &shown).await?;
    let distinct = state.config.workflows.require_distinct_approver;
    let row = registry_row(&v, &caller, distinct, 0);
    let (content, note) = match text {
        registry::FileText::Text(t) => (Some(t), String::new()),
        registry::FileText::Binary { size } => (
            None,
            format!("not text ({size} bytes); read it on the cluster"),
        ),
        registry::FileText::TooLarge { size } => (
            None,
            format!(
                "{size} bytes, more than the {} KiB shown here; read it on the cluster",
                registry::MAX_SHOWN_FILE_BYTES / 1024
            ),
        ),
    };
    ui::render(&WorkflowVersionPage {
        layout: layout(&req, &caller),
        files: v
            .files
            .iter()
            .map(|f| WorkflowFileLink {
                href: format!(
                    "{}?{}",
                    row.base,
                    serde_urlencoded::to_string([("file", f)]).unwrap_or_default()
                ),
                current: *f == shown,
                name: f.clone(),
            })
            .collect(),
        registered_digest: v.registered_digest.to_string(),
        digest_changed: v.digest.as_ref().is_some_and(|d| *d != v.registered_digest),
        entry_point: v.entry_point.clone(),
        source_dir: v.source_dir.clone(),
        row,
        shown,
        content,
        note,
    })
}

/// The `{name}/{version}` of a registry form's path; anything else is not found.
fn path_workflow(req: &HttpRequest) -> Result<WorkflowRef, PageError> {
    let name = req.match_info().get("name").unwrap_or_default();
    let version = req.match_info().get("version").unwrap_or_default();
    WorkflowRef::new(name, version).map_err(|_| {
        PageError(ApiError::not_found(format!(
            "workflow {}@{} not found",
            name.chars().take(64).collect::<String>(),
            version.chars().take(64).collect::<String>()
        )))
    })
}

/// `POST /ui/workflows/{name}/{version}/approve` (form, CSRF): `app::registry::approve`, as
/// `POST /admin/workflows/{name}/{version}/approve` (digest re-checked, four eyes); then back.
pub async fn approve_workflow(
    Page(Authorized { caller, .. }): Page<Authorized<WorkflowsManage>>,
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    ui::checked_form(&req, &body)?;
    registry::approve(&state, &caller, &path_workflow(&req)?).await?;
    Ok(ui::see_other("/ui/workflows"))
}

/// `POST /ui/workflows/{name}/{version}/retire` (form, CSRF, optional `reason`):
/// `app::registry::retire`, as `POST /admin/workflows/{name}/{version}/retire`; then back.
pub async fn retire_workflow(
    Page(Authorized { caller, .. }): Page<Authorized<WorkflowsManage>>,
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    let posted = ui::checked_form(&req, &body)?;
    let reason = ui::field(&posted, "reason")
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .map(str::to_owned);
    // The API's rule for a retirement's reason.
    let reason = crate::http::ReasonBody { reason }.checked()?;
    registry::retire(&state, &caller, &path_workflow(&req)?, reason.as_deref()).await?;
    Ok(ui::see_other("/ui/workflows"))
}

/// Most accepted uploads the datasets page lists per dataset.
const MAX_UPLOADS_SHOWN: usize = 100;

/// `GET /ui/datasets`: every dataset (`store.list_datasets`, as `GET /admin/datasets`) with its
/// state, location and encryption, and its accepted uploads (`store.dataset_uploads`, as
/// `GET /admin/datasets/{id}/files`).
pub async fn datasets_page(
    Page(Authorized { caller, .. }): Page<Authorized<DatasetsManage>>,
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    let all = state.store.list_datasets().await?;
    let mut rows = Vec::with_capacity(all.len());
    for d in all {
        let uploads = state.store.dataset_uploads(&d.id).await?;
        rows.push(DatasetRow {
            description: d.description,
            state: d.state.as_str(),
            crypt4gh: d.crypt4gh,
            location: d.location,
            visa: d.visa.unwrap_or_default(),
            created: format!("{} by {}", d.created_at.to_wes(), d.created_by),
            more_uploads: uploads.len().saturating_sub(MAX_UPLOADS_SHOWN),
            uploads: uploads
                .iter()
                .take(MAX_UPLOADS_SHOWN)
                .map(|u| UploadRow {
                    name: u.name.clone(),
                    size: u.size.map(|s| s.to_string()).unwrap_or_default(),
                    sha256: u.sha256.clone().unwrap_or_default(),
                    at: u.updated_at.to_wes(),
                })
                .collect(),
            id: d.id,
        });
    }
    ui::render(&DatasetsPage {
        layout: layout(&req, &caller),
        datasets: rows,
    })
}

/// Audit records a page shows.
const AUDIT_PAGE: i64 = 50;

/// `GET /ui/audit?upto=<seq>`: the audit chain's records newest first, `AUDIT_PAGE` at a
/// time ending at `upto` (default: the head). The whole chain's verification grows with the
/// chain, so it is `audit_verification`'s page, which this one's script fills in.
pub async fn audit_page(
    Page(Authorized { caller, .. }): Page<Authorized<AuditRead>>,
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    let mut upto = None;
    for (key, value) in crate::http::query_pairs(req.query_string())? {
        match key.as_str() {
            "upto" => {
                upto = Some(
                    value
                        .parse::<i64>()
                        .ok()
                        .filter(|n| *n >= 0)
                        .ok_or_else(|| ApiError::bad_request("upto: a whole number, 0 or more"))?,
                )
            }
            other => {
                return Err(ApiError::bad_request(format!(
                    "unknown query parameter {:?}; known: upto",
                    other.chars().take(64).collect::<String>()
                ))
                .into());
            }
        }
    }
    let head = spe_store::audit::head(&state.store)
        .await?
        .map_or(0, |h| h.seq);
    let upto = upto.unwrap_or(head).min(head);
    let after = (upto - AUDIT_PAGE).max(0);
    let mut records = spe_store::audit::records(&state.store, after, upto - after).await?;
    records.reverse();
    ui::render(&AuditPage {
        layout: layout(&req, &caller),
        records: records.iter().map(AuditRow::of).collect(),
        newer: (upto < head).then(|| format!("/ui/audit?upto={}", (upto + AUDIT_PAGE).min(head))),
        older: (after > 0).then(|| format!("/ui/audit?upto={after}")),
    })
}

/// `GET /ui/audit/verification`: the whole chain verified from its first record now
/// (`app::audit::verify_chain`, as `spectl audit verify`): where it ends, or where it breaks.
pub async fn audit_verification(
    Page(Authorized { caller, .. }): Page<Authorized<AuditRead>>,
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    let (intact, verification) = match crate::app::audit::verify_chain(&state.store).await? {
        Ok(Some(h)) => (
            true,
            format!("{} records, each following the one before; head {h}", h.seq),
        ),
        Ok(None) => (true, "no records yet".to_owned()),
        Err(e) => (false, e.to_string()),
    };
    ui::render(&AuditVerificationPage {
        layout: layout(&req, &caller),
        intact,
        verification,
    })
}

/// `GET /ui/assets/{file}`: the UI's embedded stylesheet and script. Kept a year when asked
/// for by the version the pages write (`?v=`); otherwise revalidated by `ETag`.
pub async fn asset(req: HttpRequest) -> HttpResponse {
    let name = req.match_info().get("file").unwrap_or_default();
    let Some(asset) = assets::find(name) else {
        return actix_web::ResponseError::error_response(&PageError(ApiError::not_found(
            "no such asset",
        )));
    };
    let etag = format!("\"{}\"", asset.version);
    let versioned = crate::http::query_pairs(req.query_string())
        .ok()
        .is_some_and(|q| q.iter().any(|(k, v)| k == "v" && *v == asset.version));
    let cache = if versioned {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    let matches = req
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag));
    let mut res = HttpResponse::build(if matches {
        StatusCode::NOT_MODIFIED
    } else {
        StatusCode::OK
    });
    ui::secure_headers(&mut res)
        .insert_header((header::ETAG, etag))
        .insert_header((header::CACHE_CONTROL, cache));
    if matches {
        res.finish()
    } else {
        res.content_type(asset.content_type).body(asset.body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_query_takes_empty_fields_as_no_filter_and_refuses_unknown_ones() {
        let q = list_query("state=&tag=&page_token=").unwrap();
        assert!(q.state.is_none() && q.tag.is_none() && q.page_token.is_none());
        let q = list_query("state=RUNNING&tag=project%3Ap1").unwrap();
        assert_eq!(q.state, Some(RunState::Running));
        assert_eq!(q.tag_text, "project:p1");
        assert!(list_query("state=running").is_err());
        assert!(list_query("tag=nocolon").is_err());
        assert!(list_query("sort=asc").is_err());
    }

    #[test]
    fn links_leave_out_empty_fields() {
        assert_eq!(
            with_query("/ui/runs", &[("state", ""), ("tag", "")]),
            "/ui/runs"
        );
        assert_eq!(
            with_query("/ui/runs", &[("state", "QUEUED"), ("tag", "a:b c")]),
            "/ui/runs?state=QUEUED&tag=a%3Ab+c"
        );
    }
}
