//! The workflow registry's work behind the HTTP handlers: reading a workflow folder (manifest,
//! file list, digest), installing an uploaded tar.gz, registering a draft and approving it once
//! its files are checked again. Every file access runs on the blocking pool ([`blocking`]),
//! never on the async workers.

use std::path::{Path, PathBuf};

use actix_web::web;
use spe_core::digest::{WorkflowDigest, digest_files, list_tree, read_files};
use spe_core::manifest::{MANIFEST_FILE, MAX_FILES, Manifest, WorkflowRef};
use spe_core::time::Timestamp;
use spe_store::{NewWorkflowVersion, RegistryRefusal, WorkflowState, WorkflowVersion};

use crate::auth::Caller;
use crate::error::{ApiError, refusal};
use crate::startup::AppState;
use crate::workflow_upload::{self, UploadError};

/// Largest `workflow.yaml` read.
const MAX_MANIFEST_BYTES: u64 = 1024 * 1024;
/// Most bytes one workflow version's files may add up to.
const MAX_WORKFLOW_BYTES: u64 = 256 * 1024 * 1024;

fn now() -> Timestamp {
    Timestamp::from_datetime(chrono::Utc::now())
}

/// Runs blocking work (file I/O) on the blocking pool.
pub async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ApiError> {
    web::block(f).await.map_err(ApiError::internal)
}

/// What registration reads from a workflow folder.
pub struct Loaded {
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

/// What `stat` says of each of a version's files (device, inode, size, mode, change and
/// modification times), to notice any change without reading them. `None` when a file cannot
/// be read or is a symbolic link (whose target could change unseen).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileStamps(Vec<[i64; 8]>);

pub fn file_stamps(v: &WorkflowVersion) -> Option<FileStamps> {
    use std::os::unix::fs::MetadataExt;
    let dir = Path::new(&v.source_dir);
    v.files
        .iter()
        .map(|f| {
            let m = std::fs::symlink_metadata(dir.join(f)).ok()?;
            (!m.file_type().is_symlink()).then(|| {
                [
                    m.dev() as i64,
                    m.ino() as i64,
                    m.size() as i64,
                    i64::from(m.mode()),
                    m.ctime(),
                    m.ctime_nsec(),
                    m.mtime(),
                    m.mtime_nsec(),
                ]
            })
        })
        .collect::<Option<Vec<_>>>()
        .map(FileStamps)
}

/// Whether a registered version's files still have the digest `expected` (off the async
/// workers). Unreadable files do not.
pub async fn files_match(v: &WorkflowVersion, expected: &WorkflowDigest) -> Result<bool, ApiError> {
    let dir = PathBuf::from(&v.source_dir);
    let files = v.files.clone();
    let now = blocking(move || digest_dir(&dir, &files)).await?;
    Ok(now.as_ref() == Ok(expected))
}

/// Registers the workflow folder `dir` on the cluster's file system as a draft.
pub async fn register_folder(
    state: &AppState,
    caller: &Caller,
    dir: PathBuf,
) -> Result<WorkflowVersion, ApiError> {
    let loaded = blocking(move || load_dir(&dir))
        .await?
        .map_err(ApiError::bad_request)?;
    register_loaded(state, caller, loaded).await
}

/// Registers an uploaded tar.gz as a draft: unpacked, read-only, under the upload directory
/// first. A refused registration removes the folder this request created.
pub async fn register_upload(
    state: &AppState,
    caller: &Caller,
    archive: Vec<u8>,
) -> Result<WorkflowVersion, ApiError> {
    let upload_dir = state.config.upload_dir();
    let max_bytes = state.config.workflows.upload_max_bytes;
    let (loaded, created) =
        blocking(move || unpack_and_install(&archive, &upload_dir, max_bytes)).await??;
    let result = register_loaded(state, caller, loaded).await;
    if result.is_err()
        && let Some(dir) = created
    {
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
) -> Result<WorkflowVersion, ApiError> {
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
    Ok(v)
}

/// Approves a draft: fixes the digest, after checking that the files still are what was
/// registered.
pub async fn approve(
    state: &AppState,
    caller: &Caller,
    r: &WorkflowRef,
) -> Result<WorkflowVersion, ApiError> {
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
    if !files_match(&v, &v.registered_digest).await? {
        return Err(ApiError::conflict(format!(
            "{what}: its files changed since registration (or can no longer be read); \
             register the changed workflow as a new version"
        )));
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
    Ok(approved)
}

/// Retires a version (draft or approved): it can no longer run.
pub async fn retire(
    state: &AppState,
    caller: &Caller,
    r: &WorkflowRef,
    reason: Option<&str>,
) -> Result<WorkflowVersion, ApiError> {
    let v = state
        .store
        .retire_workflow(&r.name, &r.version, &caller.subject, reason, now())
        .await?
        .map_err(|e| refusal(e, &format!("workflow {r}")))?;
    tracing::info!(workflow = %r, by = %caller.subject, "workflow retired");
    Ok(v)
}

/// Most bytes of a workflow file the registry shows a data controller.
pub const MAX_SHOWN_FILE_BYTES: u64 = 256 * 1024;

/// One of a version's files as a data controller reads it before approving.
#[derive(Debug, PartialEq, Eq)]
pub enum FileText {
    Text(String),
    /// Not UTF-8 text.
    Binary {
        size: u64,
    },
    /// Larger than [`MAX_SHOWN_FILE_BYTES`].
    TooLarge {
        size: u64,
    },
}

/// Reads file `name` of version `v`: only a name in its `files` (the files its digest covers),
/// from its folder, never following a link out of it.
pub async fn version_file(v: &WorkflowVersion, name: &str) -> Result<FileText, ApiError> {
    if !v.files.iter().any(|f| f == name) {
        return Err(ApiError::not_found(format!(
            "workflow {}@{} has no file {:?}",
            v.name,
            v.version,
            name.chars().take(200).collect::<String>()
        )));
    }
    let path = Path::new(&v.source_dir).join(name);
    blocking(move || -> Result<FileText, ApiError> {
        let unreadable =
            |e: std::io::Error| ApiError::internal(format!("reading {}: {e}", path.display()));
        let meta = std::fs::symlink_metadata(&path).map_err(unreadable)?;
        if !meta.file_type().is_file() {
            return Err(ApiError::internal(format!(
                "{} is no longer a regular file",
                path.display()
            )));
        }
        if meta.len() > MAX_SHOWN_FILE_BYTES {
            return Ok(FileText::TooLarge { size: meta.len() });
        }
        let bytes = std::fs::read(&path).map_err(unreadable)?;
        let size = bytes.len() as u64;
        Ok(String::from_utf8(bytes).map_or(FileText::Binary { size }, FileText::Text))
    })
    .await?
}
