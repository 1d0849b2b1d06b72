//! The dataset registry: data controllers register and retire datasets under `/admin/datasets`;
//! researchers list active ones (by id, never by location) under `/datasets`.

use actix_web::{HttpResponse, web};
use serde::Deserialize;
use serde_json::{Value, json};
use spe_core::manifest::check_dataset_id;
use spe_core::time::Timestamp;
use spe_store::{Dataset, DatasetState, NewDataset};

use crate::app::datasets::{self, DatasetChange};
use crate::auth::Authorized;
use crate::auth::actions::{DatasetsManage, DatasetsRead};
use crate::error::ApiError;
use crate::http::{ReasonBody, check_absolute_path, optional_body};
use crate::startup::AppState;

fn admin_view(d: &Dataset) -> Value {
    json!({
        "id": d.id,
        "description": d.description,
        "location": d.location,
        "crypt4gh": d.crypt4gh,
        "visa": d.visa,
        "state": d.state,
        "created_by": d.created_by,
        "created_at": d.created_at.to_rfc3339_micros(),
        "updated_at": d.updated_at.to_rfc3339_micros(),
    })
}

/// What researchers see: never the location.
fn researcher_view(d: &Dataset) -> Value {
    json!({
        "id": d.id,
        "description": d.description,
        "crypt4gh": d.crypt4gh,
        "visa": d.visa,
    })
}

fn not_found(id: &str) -> ApiError {
    ApiError::not_found(format!(
        "dataset {} not found",
        id.chars().take(128).collect::<String>()
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateBody {
    id: String,
    #[serde(default)]
    description: String,
    /// Absolute path on the cluster's shared file system.
    location: String,
    #[serde(default)]
    crypt4gh: bool,
    /// The GA4GH visa value (ControlledAccessGrants) that grants access.
    #[serde(default)]
    visa: Option<String>,
}

/// `POST /admin/datasets`.
pub async fn create(
    Authorized { caller, .. }: Authorized<DatasetsManage>,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let body: CreateBody = crate::http::json_body(&body)?;
    check_dataset_id(&body.id).map_err(|e| ApiError::bad_request(format!("id: {e}")))?;
    if body.description.len() > 4096
        || body
            .description
            .chars()
            .any(|c| c.is_control() && c != '\n' && c != '\t')
    {
        return Err(ApiError::bad_request(
            "description: at most 4096 bytes of text without control characters",
        ));
    }
    let location = check_absolute_path("location", &body.location)?;
    if let Some(visa) = &body.visa
        && (visa.is_empty() || visa.len() > 1024 || visa.chars().any(char::is_control))
    {
        return Err(ApiError::bad_request(
            "visa: 1 to 1024 bytes without control characters",
        ));
    }
    let new = NewDataset {
        id: body.id,
        description: body.description,
        location: location.display().to_string(),
        crypt4gh: body.crypt4gh,
        visa: body.visa,
        created_by: caller.subject.clone(),
        at: Timestamp::from_datetime(chrono::Utc::now()),
    };
    let d = datasets::apply(&state, &caller, DatasetChange::Register(new)).await?;
    Ok(HttpResponse::Created().json(admin_view(&d)))
}

/// `GET /admin/datasets`: every dataset, with locations.
pub async fn admin_list(
    _: Authorized<DatasetsManage>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let all = state.store.list_datasets().await?;
    Ok(
        HttpResponse::Ok()
            .json(json!({"datasets": all.iter().map(admin_view).collect::<Vec<_>>()})),
    )
}

/// `GET /admin/datasets/{id}`.
pub async fn admin_get(
    _: Authorized<DatasetsManage>,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    check_dataset_id(&path).map_err(|_| not_found(&path))?;
    let d = state
        .store
        .dataset(&path)
        .await?
        .ok_or_else(|| not_found(&path))?;
    Ok(HttpResponse::Ok().json(admin_view(&d)))
}

/// `POST /admin/datasets/{id}/retire` with an optional `{"reason": "..."}`.
pub async fn retire(
    Authorized { caller, .. }: Authorized<DatasetsManage>,
    path: web::Path<String>,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    check_dataset_id(&path).map_err(|_| not_found(&path))?;
    let reason = optional_body::<ReasonBody>(&body)?.checked()?;
    let retire = DatasetChange::Retire {
        id: &path,
        reason: reason.as_deref(),
    };
    let d = datasets::apply(&state, &caller, retire).await?;
    Ok(HttpResponse::Ok().json(admin_view(&d)))
}

/// `GET /datasets`: active datasets by id and description.
pub async fn list(
    _: Authorized<DatasetsRead>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let all = state.store.list_datasets().await?;
    let active: Vec<Value> = all
        .iter()
        .filter(|d| d.state == DatasetState::Active)
        .map(researcher_view)
        .collect();
    Ok(HttpResponse::Ok().json(json!({"datasets": active})))
}
