//! The workflow registry: data controllers register, approve and retire workflow versions under
//! `/admin/workflows`; researchers list approved ones under `/workflows`. [`admit`] is where a
//! run submission meets the registry.

use std::path::{Component, Path, PathBuf};

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use serde_json::{Value, json};
use spe_core::config::AuthConfig;
use spe_core::digest::{WorkflowDigest, digest_files, list_tree, read_files};
use spe_core::manifest::{MANIFEST_FILE, MAX_FILES, Manifest, WorkflowRef};
use spe_core::request::{RequestError, RunRequestFields, RunSubmission};
use spe_core::time::Timestamp;
use spe_store::{
    DatasetState, NewWorkflowVersion, RegistryEvent, RegistryRefusal, WorkflowState,
    WorkflowVersion,
};

use crate::auth::{Authorized, Caller, Visa, actions};
use crate::error::ApiError;
use crate::routes::runs::{check_content_length, media_type, read_limited};
use crate::startup::AppState;
use crate::workflow_upload::{self, UploadError};

/// Largest `workflow.yaml` read.
const MAX_MANIFEST_BYTES: u64 = 1024 * 1024;
/// Most bytes one workflow version's files may add up to.
const MAX_WORKFLOW_BYTES: u64 = 256 * 1024 * 1024;
/// Most events one history request returns.
const MAX_EVENTS: i64 = 1000;

fn now() -> Timestamp {
    Timestamp::from_datetime(chrono::Utc::now())
}

fn shorten(text: &str) -> String {
    text.chars().take(200).collect()
}

/// A registry refusal as the API says it.
pub(crate) fn refusal(r: RegistryRefusal, what: &str) -> ApiError {
    match r {
        RegistryRefusal::NotFound => ApiError::not_found(format!("{what} not found")),
        RegistryRefusal::AlreadyExists => ApiError::conflict(format!(
            "{what} is already registered; a changed workflow or dataset needs a new version or id"
        )),
        RegistryRefusal::WrongState(state) => {
            ApiError::conflict(format!("{what} is {state}; that change is not allowed"))
        }
        RegistryRefusal::SameApprover => ApiError::new(StatusCode::FORBIDDEN, r.to_string()),
    }
}

/// Reads an optional JSON body (`{}` or nothing at all is fine).
pub(crate) fn optional_body<T: for<'de> Deserialize<'de> + Default>(
    body: &[u8],
) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(body).map_err(|e| ApiError::bad_request(format!("body: {e}")))
}

/// Checks a path a data controller gives: absolute, no `..`, no control characters.
pub(crate) fn check_absolute_path(field: &str, path: &str) -> Result<PathBuf, ApiError> {
    let bad = |why: &str| ApiError::bad_request(format!("{field}: {why}"));
    if path.is_empty() || path.len() > 4096 {
        return Err(bad("must be an absolute path of at most 4096 bytes"));
    }
    if path.chars().any(char::is_control) {
        return Err(bad("must not contain control characters"));
    }
    let p = Path::new(path);
    if !p.is_absolute() {
        return Err(bad("must be an absolute path"));
    }
    if p.components().any(|c| matches!(c, Component::ParentDir)) {
        return Err(bad("must not contain `..`"));
    }
    Ok(p.to_path_buf())
}

/// What registration reads from a workflow folder.
struct Loaded {
    dir: PathBuf,
    manifest: Manifest,
    files: Vec<String>,
    digest: WorkflowDigest,
}

/// Reads `workflow.yaml` and the files it names (blocking I/O).
fn load_dir(dir: &Path) -> Result<Loaded, String> {
    let dir = dir
        .canonicalize()
        .map_err(|e| format!("source_dir: cannot open: {e}"))?;
    if !dir.is_dir() {
        return Err("source_dir: not a folder".into());
    }
    let manifest_path = dir.join(MANIFEST_FILE);
    let meta = std::fs::symlink_metadata(&manifest_path)
        .map_err(|e| format!("source_dir: no readable {MANIFEST_FILE}: {e}"))?;
    if !meta.file_type().is_file() {
        return Err(format!("{MANIFEST_FILE}: must be a regular file"));
    }
    if meta.len() > MAX_MANIFEST_BYTES {
        return Err(format!(
            "{MANIFEST_FILE}: larger than {MAX_MANIFEST_BYTES} bytes"
        ));
    }
    let text = std::fs::read_to_string(&manifest_path)
        .map_err(|e| format!("{MANIFEST_FILE}: cannot read: {e}"))?;
    let manifest = Manifest::from_yaml(&text).map_err(|e| format!("{MANIFEST_FILE}: {e}"))?;
    // Everything in the folder is covered by the digest: spe-runner refuses a folder holding
    // any file outside the list, so such a version could be approved but never run.
    let present = list_tree(&dir).map_err(|e| format!("source_dir: {e}"))?;
    let mut files = manifest.files.clone().unwrap_or_else(|| present.clone());
    files.push(MANIFEST_FILE.to_owned());
    files.sort();
    files.dedup();
    if let Some(extra) = present.iter().find(|p| files.binary_search(p).is_err()) {
        return Err(format!(
            "source_dir: {extra} is not listed in {MANIFEST_FILE}'s files; list it or remove it \
             (every file in an approved folder is part of its digest)"
        ));
    }
    if files.len() > MAX_FILES + 1 {
        return Err(format!("source_dir: more than {MAX_FILES} files"));
    }
    if !files.contains(&manifest.entry_point) {
        return Err(format!(
            "{MANIFEST_FILE}: entry_point: {} is not among the files",
            manifest.entry_point
        ));
    }
    let digest = digest_dir(&dir, &files)?;
    Ok(Loaded {
        dir,
        manifest,
        files,
        digest,
    })
}

/// The digest of a workflow version's files as they are now (blocking I/O).
fn digest_dir(dir: &Path, files: &[String]) -> Result<WorkflowDigest, String> {
    let read = read_files(dir, files).map_err(|e| format!("files: {e}"))?;
    let total: u64 = read.iter().map(|(_, c)| c.len() as u64).sum();
    if total > MAX_WORKFLOW_BYTES {
        return Err(format!("files: more than {MAX_WORKFLOW_BYTES} bytes"));
    }
    Ok(digest_files(&read))
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ApiError> {
    web::block(f).await.map_err(ApiError::internal)
}

fn time(t: Option<Timestamp>) -> Value {
    t.map(|t| Value::String(t.to_rfc3339_micros()))
        .unwrap_or(Value::Null)
}

/// Everything about a version, for data controllers.
fn admin_view(v: &WorkflowVersion) -> Value {
    json!({
        "workflow_url": v.workflow_url(),
        "name": v.name,
        "version": v.version,
        "workflow_type": v.workflow_type,
        "state": v.state,
        "description": v.description,
        "source_dir": v.source_dir,
        "entry_point": v.entry_point,
        "files": v.files,
        "registered_digest": v.registered_digest,
        "digest": v.digest,
        "registered_by": v.registered_by,
        "registered_at": time(Some(v.registered_at)),
        "approved_by": v.approved_by,
        "approved_at": time(v.approved_at),
        "retired_by": v.retired_by,
        "retired_at": time(v.retired_at),
        "retire_reason": v.retire_reason,
        "manifest": v.manifest,
    })
}

/// What a researcher needs to submit a run of an approved version.
fn researcher_view(state: &AppState, v: &WorkflowVersion) -> Result<Value, ApiError> {
    let manifest = Manifest::from_json(&v.manifest).map_err(ApiError::internal)?;
    let engine_parameters = manifest
        .effective_engine_parameters(&state.config.workflows.engine_parameters)
        .unwrap_or_default();
    Ok(json!({
        "workflow_url": v.workflow_url(),
        "name": v.name,
        "version": v.version,
        "workflow_type": v.workflow_type,
        "engine_version": manifest.engine_version,
        "description": v.description,
        "digest": v.digest,
        "params_schema": manifest.params,
        "dataset_params": manifest
            .dataset_params()
            .iter()
            .map(|p| json!({"name": p.name, "many": p.many}))
            .collect::<Vec<_>>(),
        "engine_parameters": engine_parameters,
        "egress": manifest.egress,
    }))
}

pub(crate) fn event_view(e: &RegistryEvent) -> Value {
    json!({
        "seq": e.seq,
        "at": e.at.to_rfc3339_micros(),
        "actor": e.actor,
        "subject_kind": e.subject_kind,
        "subject": e.subject,
        "action": e.action,
        "detail": e.detail,
    })
}

/// The `{name}/{version}` of a path; anything that is not a valid pair is simply not found.
fn path_ref(path: &(String, String)) -> Result<WorkflowRef, ApiError> {
    WorkflowRef::new(&path.0, &path.1).map_err(|_| {
        ApiError::not_found(format!(
            "workflow {}@{} not found",
            shorten(&path.0),
            shorten(&path.1)
        ))
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegisterBody {
    /// The workflow's folder on the cluster's shared file system, holding `workflow.yaml`.
    source_dir: String,
}

/// Media types of a workflow folder uploaded as tar.gz.
const GZIP_TYPES: [&str; 3] = [
    "application/gzip",
    "application/x-gzip",
    "application/x-tar+gzip",
];

/// `POST /admin/workflows`: registers a workflow version as a draft, from a folder on the
/// cluster's file system (`{"source_dir"}`) or from the tar.gz of one (`application/gzip`),
/// which is unpacked, read-only, under the upload directory first.
pub async fn register(
    Authorized(caller): Authorized<{ actions::WORKFLOWS_MANAGE }>,
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let limit = state.config.server.max_body_bytes;
    check_content_length(&req, limit)?;
    let upload = GZIP_TYPES.contains(&media_type(&req).as_str());
    let body = read_limited(payload, limit).await?;
    if !upload {
        let body: RegisterBody = serde_json::from_slice(&body)
            .map_err(|e| ApiError::bad_request(format!("body: {e}")))?;
        let dir = check_absolute_path("source_dir", &body.source_dir)?;
        let loaded = blocking(move || load_dir(&dir))
            .await?
            .map_err(ApiError::bad_request)?;
        return register_loaded(&state, &caller, loaded).await;
    }
    let upload_dir = state.config.upload_dir();
    let max_bytes = state.config.workflows.upload_max_bytes;
    let (loaded, created) =
        blocking(move || unpack_and_install(&body, &upload_dir, max_bytes)).await??;
    let result = register_loaded(&state, &caller, loaded).await;
    if result.is_err()
        && let Some(dir) = created
    {
        // Refused: the folder this request created goes again.
        blocking(move || {
            if let Err(e) = workflow_upload::remove(&dir) {
                tracing::warn!(dir = %dir.display(), error = %e, "cannot remove a refused upload");
            }
        })
        .await?;
    }
    result
}

/// Unpacks an uploaded tar.gz and moves its workflow folder to
/// `<upload_dir>/<name>/<version>-<first 12 digits of the digest>` (blocking I/O). Returns the
/// folder as registration reads it, and its path when this call created it.
fn unpack_and_install(
    archive: &[u8],
    upload_dir: &Path,
    max_bytes: u64,
) -> Result<(Loaded, Option<PathBuf>), ApiError> {
    let upload_error = |e: UploadError| match e {
        UploadError::Refused(msg) => ApiError::bad_request(msg),
        UploadError::Io(e) => ApiError::internal(format!("unpacking an upload: {e}")),
    };
    let unpacked = workflow_upload::unpack(archive, upload_dir, max_bytes).map_err(upload_error)?;
    let first = load_dir(&unpacked.root).map_err(ApiError::bad_request)?;
    let short: String = first.digest.as_str().chars().take(12).collect();
    let target = upload_dir
        .join(&first.manifest.name)
        .join(format!("{}-{short}", first.manifest.version));
    let created = workflow_upload::install(unpacked, &target)
        .map_err(|e| ApiError::internal(format!("installing an upload: {e}")))?;
    let checked = match load_dir(&target) {
        Ok(loaded) if loaded.digest == first.digest => Ok(loaded),
        Ok(_) => Err(ApiError::conflict(format!(
            "{} exists with other content; it cannot be replaced",
            target.display()
        ))),
        Err(e) => Err(ApiError::bad_request(e)),
    };
    match checked {
        Ok(loaded) => Ok((loaded, created.then_some(target))),
        Err(e) => {
            if created && let Err(io) = workflow_upload::remove(&target) {
                tracing::warn!(dir = %target.display(), error = %io, "cannot remove a refused upload");
            }
            Err(e)
        }
    }
}

/// Registers a loaded workflow folder as a draft: the one path for `source_dir` and uploads.
async fn register_loaded(
    state: &AppState,
    caller: &Caller,
    loaded: Loaded,
) -> Result<HttpResponse, ApiError> {
    loaded
        .manifest
        .check_against(&state.config.workflows)
        .map_err(|e| ApiError::bad_request(format!("{MANIFEST_FILE}: {e}")))?;
    let m = &loaded.manifest;
    let new = NewWorkflowVersion {
        name: m.name.clone(),
        version: m.version.clone(),
        workflow_type: m.engine,
        source_dir: loaded.dir.display().to_string(),
        entry_point: m.entry_point.clone(),
        files: loaded.files.clone(),
        registered_digest: loaded.digest.clone(),
        manifest: m.to_json(),
        description: m.description.clone(),
        registered_by: caller.subject.clone(),
        at: now(),
    };
    let what = format!("workflow {}", m.workflow_ref());
    let v = state
        .store
        .register_workflow(&new)
        .await?
        .map_err(|r| refusal(r, &what))?;
    tracing::info!(workflow = %v.workflow_url(), by = %caller.subject, digest = %v.registered_digest, "workflow registered");
    Ok(HttpResponse::Created().json(admin_view(&v)))
}

/// `GET /admin/workflows[?state=draft|approved|retired]`.
pub async fn admin_list(
    Authorized(_caller): Authorized<{ actions::WORKFLOWS_MANAGE }>,
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let pairs = crate::routes::query_pairs(req.query_string())?;
    let mut filter = None;
    for (k, v) in &pairs {
        match k.as_str() {
            "state" => {
                let parsed = v.parse::<WorkflowState>().map_err(|_| {
                    ApiError::bad_request("state: must be draft, approved or retired")
                })?;
                filter = Some(parsed);
            }
            other => {
                return Err(ApiError::bad_request(format!(
                    "unknown query parameter {:?}; known: state",
                    shorten(other)
                )));
            }
        }
    }
    let versions = state.store.list_workflow_versions(filter).await?;
    Ok(HttpResponse::Ok()
        .json(json!({"workflows": versions.iter().map(admin_view).collect::<Vec<_>>()})))
}

/// `GET /admin/workflows/{name}/{version}`.
pub async fn admin_get(
    Authorized(_caller): Authorized<{ actions::WORKFLOWS_MANAGE }>,
    path: web::Path<(String, String)>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let r = path_ref(&path)?;
    let v = state
        .store
        .workflow_version(&r.name, &r.version)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("workflow {r} not found")))?;
    Ok(HttpResponse::Ok().json(admin_view(&v)))
}

/// `POST /admin/workflows/{name}/{version}/approve`: fixes the digest, after checking that the
/// files still are what was registered.
pub async fn approve(
    Authorized(caller): Authorized<{ actions::WORKFLOWS_MANAGE }>,
    path: web::Path<(String, String)>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let r = path_ref(&path)?;
    let what = format!("workflow {r}");
    let v = state
        .store
        .workflow_version(&r.name, &r.version)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("{what} not found")))?;
    if v.state != WorkflowState::Draft {
        return Err(refusal(
            RegistryRefusal::WrongState(v.state.to_string()),
            &what,
        ));
    }
    let dir = PathBuf::from(&v.source_dir);
    let files = v.files.clone();
    let digest = blocking(move || digest_dir(&dir, &files)).await?;
    match digest {
        Ok(d) if d == v.registered_digest => {}
        _ => {
            return Err(ApiError::conflict(format!(
                "{what}: its files changed since registration (or can no longer be read); \
                 register the changed workflow as a new version"
            )));
        }
    }
    let approved = state
        .store
        .approve_workflow(
            &r.name,
            &r.version,
            &caller.subject,
            &v.registered_digest,
            state.config.workflows.require_distinct_approver,
            now(),
        )
        .await?
        .map_err(|e| refusal(e, &what))?;
    tracing::info!(workflow = %r, by = %caller.subject, "workflow approved");
    Ok(HttpResponse::Ok().json(admin_view(&approved)))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ReasonBody {
    #[serde(default)]
    pub reason: Option<String>,
}

impl ReasonBody {
    pub fn checked(self) -> Result<Option<String>, ApiError> {
        match self.reason {
            Some(r)
                if r.len() > 1024
                    || r.chars().any(|c| c.is_control() && c != '\n' && c != '\t') =>
            {
                Err(ApiError::bad_request(
                    "reason: at most 1024 bytes of text without control characters",
                ))
            }
            other => Ok(other),
        }
    }
}

/// `POST /admin/workflows/{name}/{version}/retire` with an optional `{"reason": "..."}`.
pub async fn retire(
    Authorized(caller): Authorized<{ actions::WORKFLOWS_MANAGE }>,
    path: web::Path<(String, String)>,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let r = path_ref(&path)?;
    let reason = optional_body::<ReasonBody>(&body)?.checked()?;
    let what = format!("workflow {r}");
    let v = state
        .store
        .retire_workflow(
            &r.name,
            &r.version,
            &caller.subject,
            reason.as_deref(),
            now(),
        )
        .await?
        .map_err(|e| refusal(e, &what))?;
    tracing::info!(workflow = %r, by = %caller.subject, "workflow retired");
    Ok(HttpResponse::Ok().json(admin_view(&v)))
}

/// `GET /admin/events[?workflow=name@version|dataset=id][&limit=n]`: registry history, newest
/// first.
pub async fn events(
    Authorized(_caller): Authorized<{ actions::WORKFLOWS_MANAGE }>,
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let pairs = crate::routes::query_pairs(req.query_string())?;
    let mut subject: Option<(&str, String)> = None;
    let mut limit = 100;
    for (k, v) in &pairs {
        match k.as_str() {
            "workflow" => subject = Some(("workflow", v.clone())),
            "dataset" => subject = Some(("dataset", v.clone())),
            "limit" => {
                limit = v
                    .parse::<i64>()
                    .ok()
                    .filter(|n| (1..=MAX_EVENTS).contains(n))
                    .ok_or_else(|| {
                        ApiError::bad_request(format!(
                            "limit: must be an integer from 1 to {MAX_EVENTS}"
                        ))
                    })?
            }
            other => {
                return Err(ApiError::bad_request(format!(
                    "unknown query parameter {:?}; known: workflow, dataset, limit",
                    shorten(other)
                )));
            }
        }
    }
    let events = state
        .store
        .registry_events(subject.as_ref().map(|(k, s)| (*k, s.as_str())), limit)
        .await?;
    Ok(HttpResponse::Ok()
        .json(json!({"events": events.iter().map(event_view).collect::<Vec<_>>()})))
}

/// `GET /workflows`: approved workflow versions, with what a run request needs.
pub async fn list_approved(
    Authorized(_caller): Authorized<{ actions::WORKFLOWS_READ }>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let versions = state
        .store
        .list_workflow_versions(Some(WorkflowState::Approved))
        .await?;
    let views = versions
        .iter()
        .map(|v| researcher_view(&state, v))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(HttpResponse::Ok().json(json!({"workflows": views})))
}

/// `GET /workflows/{name}/{version}`: one approved version; others are not found.
pub async fn get_approved(
    Authorized(_caller): Authorized<{ actions::WORKFLOWS_READ }>,
    path: web::Path<(String, String)>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let r = path_ref(&path)?;
    let v = state
        .store
        .workflow_version(&r.name, &r.version)
        .await?
        .filter(|v| v.state == WorkflowState::Approved)
        .ok_or_else(|| ApiError::not_found(format!("no approved workflow {r}")))?;
    Ok(HttpResponse::Ok().json(researcher_view(&state, &v)?))
}

/// Checks a parsed submission against the registry and returns it as it will be stored: the
/// canonical `workflow_url`, engine parameters per the manifest (with the deployment's fixed
/// ones added), `workflow_params` valid against the manifest's schema, every dataset id
/// registered and active, and the workflow's files still matching the approved digest.
/// Every refusal is a 400 naming the field, except a dataset the caller may not use: 403
/// naming the dataset.
///
/// With `auth: oidc`, a dataset registered with a `visa` value may be used only by a caller
/// holding a valid ControlledAccessGrants visa with exactly that value; the second value
/// returned is the snapshot of those visas to store with the run (`None` when no dataset
/// needed one). With `auth: disabled` visas are not checked.
pub async fn admit(
    state: &AppState,
    caller: &Caller,
    fields: RunRequestFields,
    first: RunSubmission,
) -> Result<(RunSubmission, Option<Value>), ApiError> {
    let bad = |field: &str, reason: String| ApiError::from(RequestError::new(field, reason));
    let r = WorkflowRef::parse(&first.workflow_url).map_err(|e| bad("workflow_url", e))?;
    let v = state
        .store
        .workflow_version(&r.name, &r.version)
        .await?
        .ok_or_else(|| {
            bad(
                "workflow_url",
                format!("{r} is not a registered workflow; GET /ga4gh/wes/v1/workflows lists them"),
            )
        })?;
    match v.state {
        WorkflowState::Approved => {}
        WorkflowState::Draft => {
            return Err(bad(
                "workflow_url",
                format!("{r} is not approved yet; only approved workflows run"),
            ));
        }
        WorkflowState::Retired => {
            return Err(bad(
                "workflow_url",
                format!("{r} is retired and can no longer run"),
            ));
        }
    }
    if v.workflow_type != first.workflow_type {
        return Err(bad(
            "workflow_type",
            format!("{r} is a {} workflow", v.workflow_type),
        ));
    }
    let manifest = Manifest::from_json(&v.manifest).map_err(ApiError::internal)?;
    let deployment = &state.config.workflows;
    let mut policy = deployment.clone();
    policy.engine_parameters =
        manifest.effective_engine_parameters(&deployment.engine_parameters)?;
    let mut submission = RunSubmission::parse(fields, &policy)?;
    for (name, value) in manifest.fixed_parameters(&deployment.engine_parameters) {
        submission
            .workflow_engine_parameters
            .entry(name)
            .or_insert(value);
    }
    match &submission.workflow_engine_version {
        Some(version) if !manifest.accepts_engine_version(version) => {
            return Err(bad(
                "workflow_engine_version",
                format!("{r} runs on engine versions {}", manifest.engine_version),
            ));
        }
        Some(_) => {}
        None => {
            let offered = deployment
                .engines
                .get(&submission.workflow_engine)
                .map(|e| e.versions.clone())
                .unwrap_or_default();
            if !offered.iter().any(|v| manifest.accepts_engine_version(v)) {
                return Err(bad(
                    "workflow_engine",
                    format!(
                        "{r} runs on engine versions {}; {} here has {}",
                        manifest.engine_version,
                        submission.workflow_engine,
                        offered.join(", ")
                    ),
                ));
            }
        }
    }
    manifest.check_params(&submission.workflow_params)?;
    let check_visas = !matches!(state.config.auth, AuthConfig::Disabled);
    let mut snapshot: Vec<Value> = Vec::new();
    let mut checked: Vec<String> = Vec::new();
    for reference in manifest.dataset_references(&submission.workflow_params) {
        let dataset = state
            .store
            .dataset(&reference.id)
            .await?
            .filter(|d| d.state == DatasetState::Active);
        let Some(dataset) = dataset else {
            return Err(bad(
                &reference.field,
                format!("no active dataset {}", shorten(&reference.id)),
            ));
        };
        if !check_visas || checked.contains(&dataset.id) {
            continue;
        }
        checked.push(dataset.id.clone());
        let Some(value) = dataset.visa.as_deref() else {
            continue;
        };
        let now = chrono::Utc::now().timestamp();
        let granting: Vec<&Visa> = caller
            .grants(value)
            .filter(|v| v.expires_at > now)
            .collect();
        if granting.is_empty() {
            tracing::info!(
                subject = %caller.subject,
                dataset = %shorten(&dataset.id),
                "dataset refused: no visa grants it"
            );
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                format!(
                    "dataset {}: your passport holds no valid ControlledAccessGrants visa for it",
                    shorten(&dataset.id)
                ),
            ));
        }
        snapshot.extend(granting.into_iter().map(|v| visa_snapshot(&dataset.id, v)));
    }
    let Some(approved) = v.digest.clone() else {
        return Err(ApiError::internal(format!(
            "approved workflow {r} has no digest"
        )));
    };
    let dir = PathBuf::from(&v.source_dir);
    let files = v.files.clone();
    let now_digest = blocking(move || digest_dir(&dir, &files)).await?;
    if now_digest.as_ref() != Ok(&approved) {
        tracing::warn!(workflow = %r, "workflow files no longer match the approved digest");
        return Err(bad(
            "workflow_url",
            format!(
                "the files of {r} no longer match the digest approved for it; \
                 it cannot run until a data controller registers and approves a new version"
            ),
        ));
    }
    submission.workflow_url = r.to_string();
    let snapshot = (!snapshot.is_empty()).then_some(Value::Array(snapshot));
    Ok((submission, snapshot))
}

/// What a run keeps of a visa that authorised one of its datasets: who asserted what, from
/// where, until when. Never the visa JWT.
fn visa_snapshot(dataset: &str, v: &Visa) -> Value {
    json!({
        "dataset": dataset,
        "iss": v.issuer,
        "type": v.visa_type,
        "value": v.value,
        "source": v.source,
        "by": v.by,
        "asserted": v.asserted,
        "exp": v.expires_at,
    })
}
