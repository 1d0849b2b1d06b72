//! The pages' view structs, one per template under `templates/ui/` (askama checks each template
//! against its struct when the crate compiles). They take records the handlers read and shape
//! them for display only: no access decisions here (those are the guards' and `app`'s).

use actix_web::http::StatusCode;
use askama::Template;
use spe_core::RunState;
use spe_core::tasks::TaskRecord;
use spe_store::{EgressFile, RunEvent, RunRecord};

use crate::auth::{Caller, Role};
use crate::ui::assets;

/// What the layout (`base.html`) shows on every page.
pub struct Layout {
    pub css: String,
    pub js: String,
    /// Whether someone is signed in (the navigation and logout are shown).
    pub signed_in: bool,
    pub user: String,
    pub researcher: bool,
    pub controller: bool,
    pub collaborator: bool,
    pub operator: bool,
    /// Browser login is configured: logout is a form posting to `/auth/logout`.
    pub logout: bool,
    pub csrf: String,
}

impl Layout {
    pub fn new(caller: &Caller, logout: bool, csrf: String) -> Layout {
        Layout {
            signed_in: true,
            user: caller.subject.sub().to_owned(),
            researcher: caller.has(Role::Researcher),
            controller: caller.has(Role::DataController),
            collaborator: caller.has(Role::Collaborator),
            operator: caller.has(Role::Operator),
            logout,
            csrf,
            ..Layout::anonymous()
        }
    }

    /// For a page shown without a caller (an error before the caller was known).
    pub fn anonymous() -> Layout {
        Layout {
            css: assets::url("ui.css"),
            js: assets::url("ui.js"),
            signed_in: false,
            user: String::new(),
            researcher: false,
            controller: false,
            collaborator: false,
            operator: false,
            logout: false,
            csrf: String::new(),
        }
    }
}

/// An error as a page.
#[derive(Template)]
#[template(path = "ui/error.html")]
pub struct ErrorPage {
    pub layout: Layout,
    pub status: u16,
    pub reason: String,
    pub message: String,
    /// 401: offer the login.
    pub login: bool,
}

impl ErrorPage {
    pub fn new(status: StatusCode, message: &str) -> ErrorPage {
        ErrorPage {
            layout: Layout::anonymous(),
            status: status.as_u16(),
            reason: status.canonical_reason().unwrap_or("Error").to_owned(),
            message: message.to_owned(),
            login: status == StatusCode::UNAUTHORIZED,
        }
    }
}

/// The landing page after login: what each of the caller's roles can do.
#[derive(Template)]
#[template(path = "ui/home.html")]
pub struct HomePage {
    pub layout: Layout,
}

/// A run's state as shown: its WES name and the CSS class of its badge.
pub struct StateView {
    pub name: &'static str,
    pub class: String,
    pub ended: bool,
}

impl StateView {
    pub fn of(state: RunState) -> StateView {
        StateView {
            name: state.as_str(),
            class: format!("state state-{}", state.as_str().to_ascii_lowercase()),
            ended: state.is_terminal(),
        }
    }
}

pub struct RunRow {
    pub id: String,
    pub workflow: String,
    pub state: StateView,
    pub created: String,
    pub tags: String,
}

impl RunRow {
    pub fn of(run: &RunRecord) -> RunRow {
        RunRow {
            id: run.id.to_string(),
            workflow: format!("{} ({})", run.workflow_url, run.workflow_type),
            state: StateView::of(run.state),
            created: run.created_at.to_wes(),
            tags: tags_text(run),
        }
    }
}

fn tags_text(run: &RunRecord) -> String {
    run.tags()
        .iter()
        .map(|(k, v)| format!("{k}: {v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// One option of the state filter.
pub struct StateOption {
    pub name: &'static str,
    pub selected: bool,
}

/// The researcher's runs, one page, filtered.
#[derive(Template)]
#[template(path = "ui/runs.html")]
pub struct RunsPage {
    pub layout: Layout,
    pub states: Vec<StateOption>,
    /// The tag filter as typed (`key:value`).
    pub tag: String,
    pub any_state: bool,
    pub runs: Vec<RunRow>,
    /// The link to the next page, if there is one.
    pub next: Option<String>,
    /// Whether this is a later page (a link back to the first is shown).
    pub later_page: bool,
    pub first: String,
    /// The JSON the script polls for this page's states (`GET /ga4gh/wes/v1/runs` with the
    /// same filter and page).
    pub poll: String,
}

impl RunsPage {
    pub fn state_options(chosen: &[RunState]) -> Vec<StateOption> {
        RunState::ALL
            .iter()
            .filter(|s| **s != RunState::Unknown)
            .map(|s| StateOption {
                name: s.as_str(),
                selected: chosen.contains(s),
            })
            .collect()
    }
}

pub struct EventRow {
    pub at: String,
    pub from: String,
    pub to: String,
    pub by: String,
    pub reason: String,
}

impl EventRow {
    pub fn of(e: &RunEvent) -> EventRow {
        EventRow {
            at: e.at.to_wes(),
            from: e.from_state.map(|s| s.as_str()).unwrap_or("—").to_owned(),
            to: e.to_state.as_str().to_owned(),
            by: e.actor.to_string(),
            reason: e.reason.clone().unwrap_or_default(),
        }
    }
}

pub struct TaskRow {
    pub name: String,
    pub started: String,
    pub ended: String,
    pub exit_code: String,
}

impl TaskRow {
    pub fn of(t: &TaskRecord) -> TaskRow {
        TaskRow {
            name: t.name.clone(),
            started: t.start_time.map(|t| t.to_wes()).unwrap_or_default(),
            ended: t.end_time.map(|t| t.to_wes()).unwrap_or_default(),
            exit_code: t.exit_code.map(|c| c.to_string()).unwrap_or_default(),
        }
    }
}

pub struct OutputRow {
    pub path: String,
    pub state: String,
    pub size: i64,
    pub reason: String,
}

impl OutputRow {
    pub fn of(f: &EgressFile) -> OutputRow {
        OutputRow {
            path: f.path.clone(),
            state: f.state.as_str().to_owned(),
            size: f.size,
            reason: f.reason.clone().unwrap_or_default(),
        }
    }
}

/// One run: facts, live state, history, runner messages, tasks, outputs, cancel.
#[derive(Template)]
#[template(path = "ui/run.html")]
pub struct RunPage {
    pub layout: Layout,
    pub run: RunRow,
    /// How many of its files were released (its results page lists them).
    pub released: usize,
    /// With whom its released results are shared.
    pub shares: Vec<ShareRow>,
    pub workflow_version: String,
    pub started: String,
    pub ended: String,
    pub exit_code: String,
    pub cancelable: bool,
    /// The JSON the script polls for the state (`GET /ga4gh/wes/v1/runs/{id}/status`).
    pub poll: String,
    pub events: Vec<EventRow>,
    pub messages: Vec<String>,
    pub tasks: Vec<TaskRow>,
    /// Tasks not listed (only the first [`crate::routes::ui::MAX_TASKS_SHOWN`] are).
    pub more_tasks: usize,
    pub outputs: Vec<OutputRow>,
    /// What reviewers and the researcher said about the outputs (returns and answers).
    pub review_messages: Vec<ReviewMessage>,
    /// The review was returned to the researcher: the answer form is shown.
    pub answerable: bool,
}

/// A return or an answer in a review's history.
pub struct ReviewMessage {
    pub who: &'static str,
    pub comment: String,
    pub at: String,
}

impl ReviewMessage {
    /// The returns and answers of a run's review history, oldest first.
    pub fn all(events: &[spe_store::ReviewEvent]) -> Vec<ReviewMessage> {
        use spe_store::ReviewEventKind;
        events
            .iter()
            .filter_map(|e| {
                let who = match e.kind {
                    ReviewEventKind::Return => "A data controller returned the request",
                    ReviewEventKind::Resubmit => "The researcher answered",
                    _ => return None,
                };
                Some(ReviewMessage {
                    who,
                    comment: e.comment.clone().unwrap_or_default(),
                    at: e.at.to_wes(),
                })
            })
            .collect()
    }
}

/// One approved workflow version the researcher may run.
pub struct WorkflowRow {
    pub url: String,
    pub workflow_type: String,
    pub description: String,
    /// `/ui/submit/<name>/<version>`.
    pub form: String,
}

/// The approved workflows, each with a link to its submit form.
#[derive(Template)]
#[template(path = "ui/workflows.html")]
pub struct WorkflowsPage {
    pub layout: Layout,
    pub workflows: Vec<WorkflowRow>,
}

/// One engine parameter of the submit form (`engine.<name>`), within the deployment's bounds.
pub struct EngineField {
    pub name: String,
    pub field: String,
    /// `number`, `select` or `text`.
    pub kind: &'static str,
    pub value: String,
    pub min: String,
    pub max: String,
    pub options: Vec<crate::ui::params_form::FieldOption>,
}

/// The submit form of one approved workflow version, generated from its parameter schema.
#[derive(Template)]
#[template(path = "ui/submit.html")]
pub struct SubmitPage {
    pub layout: Layout,
    pub url: String,
    pub action: String,
    pub description: String,
    pub type_versions: Vec<crate::ui::params_form::FieldOption>,
    pub params: Vec<crate::ui::params_form::ParamField>,
    pub engine: Vec<EngineField>,
    pub tags: String,
    /// Why the last submission was refused, if it was.
    pub error: Option<String>,
}

/// One review request in the data controllers' queue.
pub struct ReviewRow {
    pub run_id: String,
    pub workflow: String,
    pub owner: String,
    pub opened: String,
    pub held: i64,
    pub state: String,
    pub overdue: bool,
}

impl ReviewRow {
    pub fn of(r: &spe_store::ReviewRequest) -> ReviewRow {
        ReviewRow {
            run_id: r.run_id.to_string(),
            workflow: r.workflow_url.clone(),
            owner: r.owner.to_string(),
            opened: r.opened_at.to_wes(),
            held: r.held_files,
            state: r.state.as_str().to_owned(),
            overdue: r.overdue_reported,
        }
    }
}

/// The review queue, oldest first, by request state.
#[derive(Template)]
#[template(path = "ui/reviews.html")]
pub struct ReviewsPage {
    pub layout: Layout,
    pub states: Vec<crate::ui::params_form::FieldOption>,
    pub requests: Vec<ReviewRow>,
}

/// A held output as a reviewer sees it: a table, text, an image, or a hex dump of its head.
pub struct PreviewView {
    pub kind: &'static str,
    pub text: String,
    pub header: Vec<String>,
    pub rows: Vec<Vec<String>>,
    /// `data:<media type>;base64,...` for an image (the page's CSP allows `data:` images).
    pub image: String,
    pub note: String,
    pub sha256: String,
}

impl PreviewView {
    /// From `app::review::look_at`'s answer.
    pub fn of(looked: &serde_json::Value) -> Option<PreviewView> {
        use spe_core::disclosure::Preview;
        let preview: Preview = serde_json::from_value(looked.get("preview")?.clone()).ok()?;
        let mut v = PreviewView {
            kind: "text",
            text: String::new(),
            header: Vec::new(),
            rows: Vec::new(),
            image: String::new(),
            note: String::new(),
            sha256: looked
                .get("sha256")
                .and_then(serde_json::Value::as_str)
                .unwrap_or_default()
                .to_owned(),
        };
        match preview {
            Preview::Text { text, truncated } => {
                v.text = text;
                if truncated {
                    v.note = "the first lines only".into();
                }
            }
            Preview::Table {
                header,
                rows,
                total_rows,
                truncated,
            } => {
                v.kind = "table";
                if truncated {
                    v.note = format!("the first {} of {total_rows} rows", rows.len());
                }
                v.header = header;
                v.rows = rows;
            }
            Preview::Image { media_type, base64 } => {
                v.kind = "image";
                v.image = format!("data:{media_type};base64,{base64}");
            }
            Preview::Hex { head, size } => {
                v.kind = "hex";
                v.text = head;
                v.note = format!("a binary file of {size} bytes: its head in hex");
            }
        }
        Some(v)
    }
}

pub struct VoteRow {
    pub by: String,
    pub vote: String,
    pub comment: String,
    pub at: String,
}

pub struct ReviewFileView {
    pub path: String,
    pub state: String,
    pub size: i64,
    pub reason: String,
    pub decision: String,
    pub approvals: usize,
    pub rejections: usize,
    pub votes: Vec<VoteRow>,
    pub held: bool,
    pub preview: Option<PreviewView>,
    /// Its index on the page, for element ids.
    pub n: usize,
}

/// One review request: each output with its checks' reason, preview, votes and vote form.
#[derive(Template)]
#[template(path = "ui/review.html")]
pub struct ReviewPage {
    pub layout: Layout,
    pub run_id: String,
    pub workflow: String,
    pub owner: String,
    pub request_state: String,
    pub approvals_required: u32,
    /// False on the reviewer's own run: nobody votes on a run they own.
    pub may_vote: bool,
    pub files: Vec<ReviewFileView>,
    /// Held files not previewed here (only the first few are).
    pub unpreviewed: usize,
    pub messages: Vec<ReviewMessage>,
    /// The request is open and the reviewer may act: the return form is shown.
    pub returnable: bool,
}

/// One version in the data controllers' registry page.
pub struct RegistryRow {
    pub url: String,
    pub workflow_type: String,
    pub state: String,
    pub description: String,
    pub digest: String,
    pub registered: String,
    pub approved: String,
    pub retired: String,
    /// `/ui/workflows/<name>/<version>`: the approve and retire forms post below it.
    pub base: String,
    pub approvable: bool,
    /// Why this caller may not approve it (the four-eyes rule), if so.
    pub four_eyes: bool,
    pub retirable: bool,
    pub n: usize,
}

/// The workflow registry: every version, its digest and history, approve and retire.
#[derive(Template)]
#[template(path = "ui/registry.html")]
pub struct RegistryPage {
    pub layout: Layout,
    pub versions: Vec<RegistryRow>,
    pub distinct_approver: bool,
}

/// A file of a workflow version, linking to the version's page showing it.
pub struct WorkflowFileLink {
    pub name: String,
    pub href: String,
    /// The file shown now.
    pub current: bool,
}

/// One workflow version: its facts, the files its digest covers, one of them shown.
#[derive(Template)]
#[template(path = "ui/workflow.html")]
pub struct WorkflowVersionPage {
    pub layout: Layout,
    pub row: RegistryRow,
    pub entry_point: String,
    pub source_dir: String,
    pub registered_digest: String,
    /// The digest taken at approval differs from the one taken at registration.
    pub digest_changed: bool,
    pub files: Vec<WorkflowFileLink>,
    pub shown: String,
    /// The shown file's text, when it is text small enough to show.
    pub content: Option<String>,
    /// Why it is not shown, otherwise.
    pub note: String,
}

/// A run whose released results the caller may see (`GET /results`): their own or shared.
pub struct ResultRunRow {
    pub id: String,
    pub workflow: String,
    pub state: StateView,
    pub ended: String,
    /// Shared with the caller (not their own): whose it is.
    pub shared_by: String,
}

impl ResultRunRow {
    pub fn of(run: &RunRecord, caller: &Caller) -> ResultRunRow {
        ResultRunRow {
            id: run.id.to_string(),
            workflow: format!("{} ({})", run.workflow_url, run.workflow_type),
            state: StateView::of(run.state),
            ended: run.end_time.map(|t| t.to_wes()).unwrap_or_default(),
            shared_by: if caller.owns(&run.owner) {
                String::new()
            } else {
                run.owner.to_string()
            },
        }
    }
}

/// The runs whose results the caller may download, newest first.
#[derive(Template)]
#[template(path = "ui/results.html")]
pub struct ResultsPage {
    pub layout: Layout,
    pub runs: Vec<ResultRunRow>,
    /// More runs than shown.
    pub more: bool,
}

/// A released file with its way out: a link form (plaintext) or the bound download
/// (Crypt4GH-encrypted).
pub struct ReleasedRow {
    pub path: String,
    pub size: i64,
    pub sha256: String,
    pub encrypted: bool,
    /// For an encrypted file: the API's download bound to the caller's key.
    pub crypt4gh_url: String,
    /// The file's name for `crypt4gh decrypt` (`<name>.c4gh`).
    pub file_name: String,
}

/// One run's released files, for its owner or those it is shared with.
#[derive(Template)]
#[template(path = "ui/result.html")]
pub struct ResultPage {
    pub layout: Layout,
    pub run: RunRow,
    pub ended: String,
    /// Whose run it is when it is not the caller's.
    pub shared_by: String,
    pub files: Vec<ReleasedRow>,
    pub any_encrypted: bool,
    /// The fingerprints of the keys an encrypted download is bound to now, and where they
    /// come from (`registered`, `token_claim`); empty when the caller has none.
    pub key_fingerprints: Vec<String>,
    pub key_source: String,
    /// How long a link is valid, in seconds (0: downloads are not configured).
    pub link_seconds: u64,
}

/// With whom a run's results are shared (the run's page, for its owner).
pub struct ShareRow {
    /// `subject` or `group`.
    pub kind: &'static str,
    pub value: String,
    pub issuer: String,
    pub by: String,
    pub at: String,
}

impl ShareRow {
    pub fn of(s: &spe_store::RunShare) -> ShareRow {
        let (issuer, value) = match &s.principal {
            spe_store::SharePrincipal::User(u) => (u.issuer(), u.sub()),
            spe_store::SharePrincipal::Group(g) => (g.issuer(), g.urn()),
        };
        ShareRow {
            kind: s.principal.kind().as_str(),
            value: value.to_owned(),
            issuer: issuer.to_owned(),
            by: s.created_by.to_string(),
            at: s.created_at.to_wes(),
        }
    }
}

/// An accepted uploaded file of a dataset.
pub struct UploadRow {
    pub name: String,
    pub size: String,
    pub sha256: String,
    pub at: String,
}

/// A dataset with its accepted uploads (the data controllers' datasets page).
pub struct DatasetRow {
    pub id: String,
    pub description: String,
    pub state: &'static str,
    pub crypt4gh: bool,
    pub location: String,
    pub visa: String,
    pub created: String,
    pub uploads: Vec<UploadRow>,
    /// Accepted uploads not listed (beyond the page's bound).
    pub more_uploads: usize,
}

#[derive(Template)]
#[template(path = "ui/datasets.html")]
pub struct DatasetsPage {
    pub layout: Layout,
    pub datasets: Vec<DatasetRow>,
}

/// The most characters of a record's details the audit page shows (a submission's are long);
/// `spectl audit export` gives them whole.
const MAX_AUDIT_DETAILS: usize = 240;

fn shortened(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_owned(),
    }
}

/// One audit record as shown.
pub struct AuditRow {
    pub seq: i64,
    pub time: String,
    pub kind: String,
    pub actor: String,
    pub run_id: String,
    pub details: String,
    pub sha256: String,
}

impl AuditRow {
    pub fn of(r: &spe_store::audit::AuditRecord) -> AuditRow {
        let actor = match &r.actor {
            serde_json::Value::Object(o) => match (o.get("issuer"), o.get("sub"), o.get("service"))
            {
                (Some(i), Some(s), _) => format!(
                    "{} ({})",
                    s.as_str().unwrap_or_default(),
                    i.as_str().unwrap_or_default()
                ),
                (_, _, Some(s)) => format!("service {}", s.as_str().unwrap_or_default()),
                _ => r.actor.to_string(),
            },
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        AuditRow {
            seq: r.seq,
            time: r.time(),
            kind: r.kind.clone(),
            actor,
            run_id: r.run_id.clone().unwrap_or_default(),
            details: match &r.details {
                serde_json::Value::Object(o) if o.is_empty() => String::new(),
                d => shortened(&d.to_string(), MAX_AUDIT_DETAILS),
            },
            sha256: r.sha256.clone(),
        }
    }
}

/// The audit log, newest first, one page; the chain's verification is its own page
/// (`AuditVerificationPage`), which the page's script loads into it.
#[derive(Template)]
#[template(path = "ui/audit.html")]
pub struct AuditPage {
    pub layout: Layout,
    pub records: Vec<AuditRow>,
    pub newer: Option<String>,
    pub older: Option<String>,
}

/// The whole audit chain's verification, done when this page is asked for.
#[derive(Template)]
#[template(path = "ui/audit_verification.html")]
pub struct AuditVerificationPage {
    pub layout: Layout,
    /// Whether the whole chain verified.
    pub intact: bool,
    /// What the verification found: the head it ends at, or the first break.
    pub verification: String,
}
