//! Ingress (an extension; `app::ingress`): data controllers grant uploads into a Crypt4GH
//! dataset under `/admin/datasets/{id}/uploads` and list what arrived under
//! `/admin/datasets/{id}/files`; the grant's holder sends each file to `/uploads/{grant_id}`
//! with the grant's token in `X-SPE-Upload-Token` (a header, never the URL).

use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use serde_json::json;

use crate::auth::Authorized;
use crate::auth::actions::DatasetsManage;
use crate::error::ApiError;
use crate::startup::AppState;

/// The header carrying an upload grant's token.
pub const TOKEN_HEADER: &str = "x-spe-upload-token";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GrantBody {
    files: Vec<String>,
    #[serde(default)]
    expires_in_seconds: Option<u64>,
}

/// `POST /admin/datasets/{id}/uploads` `{"files": [...], "expires_in_seconds": 3600}`.
pub async fn create_grant(
    Authorized { caller, .. }: Authorized<DatasetsManage>,
    path: web::Path<String>,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let body: GrantBody = crate::http::json_body(&body)?;
    let grant = crate::app::ingress::grant(
        &state,
        &caller,
        &path.into_inner(),
        body.files,
        body.expires_in_seconds,
    )
    .await?;
    Ok(HttpResponse::Created().json(json!({
        "grant_id": grant.id,
        "token": grant.token,
        "dataset_id": grant.dataset_id,
        "files": grant.files,
        "expires_at": grant.expires_at.to_wes(),
        "upload": format!("POST /ga4gh/wes/v1/uploads/{}?name=<file> with header X-SPE-Upload-Token", grant.id),
    })))
}

/// `GET /admin/datasets/{id}/files`: the files uploaded into the dataset and accepted.
pub async fn list_files(
    _: Authorized<DatasetsManage>,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let id = path.into_inner();
    if state.store.dataset(&id).await?.is_none() {
        return Err(ApiError::not_found(format!(
            "dataset {} not found",
            id.chars().take(128).collect::<String>()
        )));
    }
    let files = state.store.dataset_uploads(&id).await?;
    Ok(HttpResponse::Ok().json(json!({
        "dataset_id": id,
        "files": files.iter().map(|f| json!({
            "name": f.name,
            "sha256": f.sha256,
            "size": f.size,
            "grant_id": f.grant_id,
            "uploaded_at": f.updated_at.to_wes(),
        })).collect::<Vec<_>>(),
    })))
}

/// `POST /uploads/{grant_id}?name=...`: the file's bytes as the body.
pub async fn upload(
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let token = req
        .headers()
        .get(TOKEN_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|t| !t.is_empty())
        .ok_or_else(|| {
            ApiError::bad_request(
                "an upload needs its grant's token in the X-SPE-Upload-Token header",
            )
        })?
        .to_owned();
    let name = crate::http::only_query_param(req.query_string(), "name")?;
    let name = name
        .ok_or_else(|| ApiError::bad_request("name the file: ?name=<one of the grant's files>"))?;
    let accepted =
        crate::app::ingress::upload(&state, &path.into_inner(), &token, &name, body).await?;
    Ok(HttpResponse::Created().json(json!({
        "dataset_id": accepted.dataset_id,
        "name": accepted.name,
        "sha256": accepted.sha256,
        "size": accepted.size,
    })))
}
