//! The workflow registry over HTTP: data controllers register, approve and retire workflow
//! versions under `/admin/workflows`; researchers list approved ones under `/workflows`. The
//! file work (folders, uploads, digests) is `app::registry`'s.

use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use serde_json::{Value, json};
use spe_core::manifest::{Manifest, WorkflowRef};
use spe_core::time::Timestamp;
use spe_store::{RegistryEvent, WorkflowState, WorkflowVersion};

use crate::app::registry;
use crate::auth::Authorized;
use crate::auth::actions::{WorkflowsManage, WorkflowsRead};
use crate::error::ApiError;
use crate::http::{
    ReasonBody, check_absolute_path, check_content_length, media_type, optional_body, query_pairs,
    read_limited,
};
use crate::startup::AppState;

/// Most events one history request returns.
const MAX_EVENTS: i64 = 1000;

fn shorten(text: &str) -> String {
    text.chars().take(200).collect()
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

fn event_view(e: &RegistryEvent) -> Value {
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
    Authorized { caller, .. }: Authorized<WorkflowsManage>,
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let limit = state.config.server.max_body_bytes;
    check_content_length(&req, limit)?;
    let upload = GZIP_TYPES.contains(&media_type(&req).as_str());
    let body = read_limited(payload, limit).await?;
    let v = if upload {
        registry::register_upload(&state, &caller, body).await?
    } else {
        let body: RegisterBody = crate::http::json_body(&body)?;
        let dir = check_absolute_path("source_dir", &body.source_dir)?;
        registry::register_folder(&state, &caller, dir).await?
    };
    Ok(HttpResponse::Created().json(admin_view(&v)))
}

/// `GET /admin/workflows[?state=draft|approved|retired]`.
pub async fn admin_list(
    _: Authorized<WorkflowsManage>,
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let pairs = query_pairs(req.query_string())?;
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
    _: Authorized<WorkflowsManage>,
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
    Authorized { caller, .. }: Authorized<WorkflowsManage>,
    path: web::Path<(String, String)>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let r = path_ref(&path)?;
    let approved = registry::approve(&state, &caller, &r).await?;
    Ok(HttpResponse::Ok().json(admin_view(&approved)))
}

/// `POST /admin/workflows/{name}/{version}/retire` with an optional `{"reason": "..."}`.
pub async fn retire(
    Authorized { caller, .. }: Authorized<WorkflowsManage>,
    path: web::Path<(String, String)>,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let r = path_ref(&path)?;
    let reason = optional_body::<ReasonBody>(&body)?.checked()?;
    let v = registry::retire(&state, &caller, &r, reason.as_deref()).await?;
    Ok(HttpResponse::Ok().json(admin_view(&v)))
}

/// `GET /admin/events[?workflow=name@version|dataset=id][&limit=n]`: registry history, newest
/// first.
pub async fn events(
    _: Authorized<WorkflowsManage>,
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let pairs = query_pairs(req.query_string())?;
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
    _: Authorized<WorkflowsRead>,
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
    _: Authorized<WorkflowsRead>,
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

/// `GET /weskit/v1/wf-info`: the approved versions in the shape WESkit's API lists its
/// workflows, so that WESkit's client (`weskit-client workflows|init|exec`) works here. Under
/// `content.workflows`, keyed by `name@version` (what `--name` takes): `type` and `version`, which
/// the client sends back as `workflow_type` and `workflow_type_version`; `uri`, sent as
/// `workflow_url`; and `config`, the JSON Schema of `workflow_params`, from which `init` writes a
/// params file and whose `description` `workflows` prints.
pub async fn weskit_info(
    _: Authorized<WorkflowsRead>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let versions = state
        .store
        .list_workflow_versions(Some(WorkflowState::Approved))
        .await?;
    let mut workflows = serde_json::Map::new();
    for v in &versions {
        // A type this deployment no longer offers could not be submitted; the client would
        // only be handed a request that fails.
        let Some(type_version) = state
            .config
            .workflows
            .types
            .get(&v.workflow_type)
            .and_then(|versions| versions.first())
        else {
            continue;
        };
        let manifest = Manifest::from_json(&v.manifest).map_err(ApiError::internal)?;
        let mut config = match manifest.params {
            Value::Object(schema) => schema,
            _ => serde_json::Map::new(),
        };
        // The client reads `config.description` unconditionally.
        config
            .entry("description")
            .or_insert_with(|| Value::String(v.description.clone()));
        workflows.insert(
            v.workflow_url(),
            json!({
                "type": v.workflow_type,
                "version": type_version,
                "uri": v.workflow_url(),
                "config": config,
            }),
        );
    }
    Ok(HttpResponse::Ok().json(json!({"content": {"workflows": workflows}})))
}
