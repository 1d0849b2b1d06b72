//! Ingress (docs/crypt4gh.md): a data controller asks for a time-limited, write-only grant to
//! upload named files into a Crypt4GH dataset; whoever holds the grant's token streams each
//! file to wes-api once. The first bytes must be a Crypt4GH header that the service's key
//! opens (read before anything is written, header only); anything else is refused and nothing
//! of it is kept. An accepted file is written beside its final name, synced, then linked into
//! the dataset's folder under that name (never over an existing file), with its SHA-256.
//! Every grant, acceptance and refusal is an audit record.

use std::io::Write;
use std::path::{Path, PathBuf};

use actix_web::http::StatusCode;
use actix_web::web::Bytes;
use futures_util::{Stream, StreamExt};
use sha2::{Digest, Sha256};
use spe_core::manifest::check_relative_path;
use spe_core::time::Timestamp;
use spe_store::{DatasetState, NewUploadGrant, UploadGrant, UploadOutcome, UploadState};

use crate::auth::Caller;
use crate::error::ApiError;
use crate::startup::AppState;

/// The most files one grant names.
pub const MAX_GRANT_FILES: usize = 1000;
/// A grant's life: default, least and most.
pub const DEFAULT_GRANT_SECONDS: u64 = 3600;
const MIN_GRANT_SECONDS: u64 = 60;
const MAX_GRANT_SECONDS: u64 = 7 * 24 * 3600;
/// What is read of an upload before its header is judged: a Crypt4GH header for a few
/// recipients is a few hundred bytes.
const HEADER_WINDOW: usize = 64 * 1024;

/// A grant as issued: the token is shown once, here, and kept only as its SHA-256.
pub struct IssuedGrant {
    pub id: String,
    pub token: String,
    pub dataset_id: String,
    pub files: Vec<String>,
    pub expires_at: Timestamp,
}

/// An accepted upload.
pub struct AcceptedUpload {
    pub dataset_id: String,
    pub name: String,
    pub sha256: String,
    pub size: u64,
}

fn now() -> Timestamp {
    Timestamp::from_datetime(chrono::Utc::now())
}

fn token_sha256(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Grants the upload of `files` into dataset `dataset_id` for `seconds`.
pub async fn grant(
    state: &AppState,
    caller: &Caller,
    dataset_id: &str,
    files: Vec<String>,
    seconds: Option<u64>,
) -> Result<IssuedGrant, ApiError> {
    let shown: String = dataset_id.chars().take(128).collect();
    let dataset = state
        .store
        .dataset(dataset_id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("dataset {shown} not found")))?;
    if dataset.state != DatasetState::Active {
        return Err(ApiError::conflict(format!(
            "dataset {shown} is retired: nothing is uploaded into it"
        )));
    }
    if !dataset.crypt4gh {
        return Err(ApiError::conflict(format!(
            "dataset {shown} is not a Crypt4GH dataset (crypt4gh: false): uploads are for \
             encrypted datasets only"
        )));
    }
    if state.service_secret_keys.is_empty() {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "this service has no Crypt4GH secret key (crypt4gh.secret_keys) to check uploads with",
        ));
    }
    let seconds = seconds.unwrap_or(DEFAULT_GRANT_SECONDS);
    if !(MIN_GRANT_SECONDS..=MAX_GRANT_SECONDS).contains(&seconds) {
        return Err(ApiError::bad_request(format!(
            "expires_in_seconds: {MIN_GRANT_SECONDS} to {MAX_GRANT_SECONDS}"
        )));
    }
    if files.is_empty() || files.len() > MAX_GRANT_FILES {
        return Err(ApiError::bad_request(format!(
            "files: name 1 to {MAX_GRANT_FILES} files to upload"
        )));
    }
    let folder = PathBuf::from(&dataset.location);
    for (i, name) in files.iter().enumerate() {
        check_relative_path(name).map_err(|e| ApiError::bad_request(format!("files[{i}]: {e}")))?;
        if name.split('/').any(|c| c.starts_with('.')) {
            return Err(ApiError::bad_request(format!(
                "files[{i}]: no name part may start with a dot"
            )));
        }
        if files[..i].contains(name) {
            return Err(ApiError::bad_request(format!(
                "files[{i}]: {name} named twice"
            )));
        }
        if std::fs::symlink_metadata(folder.join(name)).is_ok() {
            return Err(ApiError::conflict(format!(
                "files[{i}]: dataset {shown} has {name} already; uploads never replace a file"
            )));
        }
    }
    let mut raw = [0u8; 32];
    getrandom::getrandom(&mut raw).map_err(ApiError::internal)?;
    let token = hex::encode(raw);
    let created_at = now();
    let expires_at = Timestamp::from_micros(
        created_at
            .micros()
            .saturating_add(i64::try_from(seconds).unwrap_or(i64::MAX) * 1_000_000),
    );
    let id = uuid::Uuid::new_v4().to_string();
    state
        .store
        .create_upload_grant(&NewUploadGrant {
            id: id.clone(),
            dataset_id: dataset.id.clone(),
            token_sha256: token_sha256(&token),
            granted_to: caller.subject.clone(),
            files: files.clone(),
            created_at,
            expires_at,
        })
        .await?;
    tracing::info!(target: "spe_audit", grant_id = %id, dataset_id = %dataset.id, files = files.len(), by = %caller.subject, "upload grant issued");
    Ok(IssuedGrant {
        id,
        token,
        dataset_id: dataset.id,
        files,
        expires_at,
    })
}

/// The grant `id` if `token` is its token, checked before anything else is said about it.
async fn grant_for(state: &AppState, id: &str, token: &str) -> Result<UploadGrant, ApiError> {
    // A wrong token is answered like an unknown grant: a grant's existence is not revealed.
    let refused = || ApiError::not_found("no upload grant has this id and token");
    let grant = state.store.upload_grant(id).await?.ok_or_else(refused)?;
    // Compared as digests: equal length, and the stored value is never the token itself.
    if !constant_time_eq(
        token_sha256(token).as_bytes(),
        grant.token_sha256.as_bytes(),
    ) {
        return Err(refused());
    }
    Ok(grant)
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Streams one upload of grant `grant_id` (authenticated by `token`) into its dataset.
pub async fn upload<S, E>(
    state: &AppState,
    grant_id: &str,
    token: &str,
    name: &str,
    mut body: S,
) -> Result<AcceptedUpload, ApiError>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    let grant = grant_for(state, grant_id, token).await?;
    let at = now();
    if at > grant.expires_at {
        return Err(ApiError::new(
            StatusCode::GONE,
            format!(
                "the upload grant expired at {}",
                grant.expires_at.to_rfc3339_micros()
            ),
        ));
    }
    let shown: String = name.chars().take(128).collect();
    let Some(file) = grant.files.iter().find(|f| f.name == name) else {
        return Err(ApiError::not_found(format!(
            "the grant names no file {shown:?}; it names: {}",
            grant
                .files
                .iter()
                .map(|f| f.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )));
    };
    if !state.store.claim_upload(&grant.id, name, at).await? {
        let why = match file.state {
            UploadState::Uploading => "is being uploaded now",
            UploadState::Accepted => "was uploaded and accepted already",
            UploadState::Refused => "was refused already (each file of a grant is uploaded once)",
            UploadState::Expected => "was taken by another upload",
        };
        return Err(ApiError::conflict(format!("{shown} {why}")));
    }
    let dataset = state.store.dataset(&grant.dataset_id).await?;
    let Some(dataset) = dataset.filter(|d| d.state == DatasetState::Active) else {
        let reason = "the dataset was retired after the grant was issued";
        state
            .store
            .finish_upload(&grant, name, UploadOutcome::Refused { reason }, now())
            .await?;
        return Err(ApiError::conflict(reason));
    };
    // The header first: read up to the window (or the whole file, if smaller) and judge it
    // before anything is written.
    let mut first = Vec::new();
    while first.len() < HEADER_WINDOW {
        match body.next().await {
            Some(Ok(chunk)) => first.extend_from_slice(&chunk),
            Some(Err(e)) => return interrupted(state, &grant, name, &e.to_string()).await,
            None => break,
        }
    }
    if let Err(e) = spe_crypt4gh::open_prefix(&first, &state.service_secret_keys) {
        let reason = match e {
            spe_crypt4gh::Error::NotCrypt4gh => {
                "not a Crypt4GH file: uploads must be encrypted to the service's public key \
                 (GET /ga4gh/wes/v1/keys/service.pub)"
                    .to_owned()
            }
            spe_crypt4gh::Error::NoMatchingKey => {
                "its Crypt4GH header does not open with the service's key: add the service's \
                 public key (GET /ga4gh/wes/v1/keys/service.pub) as a recipient"
                    .to_owned()
            }
            other => format!("not a Crypt4GH file the service can read: {other}"),
        };
        state
            .store
            .finish_upload(
                &grant,
                name,
                UploadOutcome::Refused { reason: &reason },
                now(),
            )
            .await?;
        tracing::warn!(target: "spe_audit", grant_id = %grant.id, name = %shown, reason, "upload refused");
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("{shown}: {reason}; nothing was kept"),
        ));
    }
    let target = Path::new(&dataset.location).join(name);
    let written = write_beside(&target, first, &mut body).await;
    let (sha256, size) = match written {
        Ok(done) => done,
        Err(Written::Cut(e)) => return interrupted(state, &grant, name, &e).await,
        Err(Written::Local(e)) => {
            state
                .store
                .finish_upload(&grant, name, UploadOutcome::Interrupted, now())
                .await?;
            return Err(e);
        }
    };
    state
        .store
        .finish_upload(
            &grant,
            name,
            UploadOutcome::Accepted {
                sha256: &sha256,
                size: i64::try_from(size).unwrap_or(i64::MAX),
            },
            now(),
        )
        .await?;
    tracing::info!(target: "spe_audit", grant_id = %grant.id, dataset_id = %dataset.id, name = %shown, sha256, size, "upload accepted");
    Ok(AcceptedUpload {
        dataset_id: dataset.id,
        name: name.to_owned(),
        sha256,
        size,
    })
}

async fn interrupted<T>(
    state: &AppState,
    grant: &UploadGrant,
    name: &str,
    cause: &str,
) -> Result<T, ApiError> {
    state
        .store
        .finish_upload(grant, name, UploadOutcome::Interrupted, now())
        .await?;
    Err(ApiError::bad_request(format!(
        "the upload was cut off ({cause}); nothing was kept, and the file may be uploaded again"
    )))
}

enum Written {
    /// The client's stream failed.
    Cut(String),
    /// Our side failed (disk, a file in the way).
    Local(ApiError),
}

/// Writes `first` and the rest of `body` to a hidden file beside `target`, synced, then links
/// it to `target` (never over an existing file). Returns the SHA-256 and the size.
async fn write_beside<S, E>(
    target: &Path,
    first: Vec<u8>,
    body: &mut S,
) -> Result<(String, u64), Written>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    let local = |e: std::io::Error| Written::Local(ApiError::internal(e));
    let folder = target
        .parent()
        .ok_or_else(|| Written::Local(ApiError::internal("an upload target without a folder")))?
        .to_path_buf();
    let part = folder.join(format!(".upload-{}.part", uuid::Uuid::new_v4()));
    let (tx, rx) = std::sync::mpsc::sync_channel::<Bytes>(8);
    let writer_part = part.clone();
    // Files are written on a blocking thread fed chunk by chunk: memory stays at a few chunks.
    let writer = tokio::task::spawn_blocking(move || -> std::io::Result<(String, u64)> {
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::create_dir_all(&folder)?;
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o640)
            .open(&writer_part)?;
        let mut hash = Sha256::new();
        let mut size = 0u64;
        for chunk in rx {
            hash.update(&chunk);
            size += chunk.len() as u64;
            file.write_all(&chunk)?;
        }
        file.sync_all()?;
        Ok((hex::encode(hash.finalize()), size))
    });
    let mut cut = None;
    if tx.send(Bytes::from(first)).is_ok() {
        while let Some(next) = body.next().await {
            match next {
                Ok(chunk) => {
                    let tx = tx.clone();
                    // A full channel waits off the async threads.
                    if tokio::task::spawn_blocking(move || tx.send(chunk))
                        .await
                        .map_or(true, |sent| sent.is_err())
                    {
                        break;
                    }
                }
                Err(e) => {
                    cut = Some(e.to_string());
                    break;
                }
            }
        }
    }
    drop(tx);
    let written = writer
        .await
        .map_err(|e| Written::Local(ApiError::internal(e)))?;
    let remove = || {
        let _ = std::fs::remove_file(&part);
    };
    if let Some(cause) = cut {
        remove();
        return Err(Written::Cut(cause));
    }
    let done = match written {
        Ok(done) => done,
        Err(e) => {
            remove();
            return Err(local(e));
        }
    };
    let linked = std::fs::hard_link(&part, target);
    remove();
    match linked {
        Ok(()) => Ok(done),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            Err(Written::Local(ApiError::conflict(
                "a file of that name appeared in the dataset meanwhile; not replaced",
            )))
        }
        Err(e) => Err(local(e)),
    }
}
