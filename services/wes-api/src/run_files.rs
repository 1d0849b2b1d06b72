//! Reading what a run's job left in its log folder: log.json, the engine's stdout/stderr and
//! its task records.
//!
//! Only the log folder recorded at submission is read, under fixed file names: never a path
//! taken from log.json, which the job (running workflow code) could have rewritten. Files are
//! opened with the shared safe-open (`spe_core::jobfile`) beneath the run directory: no
//! symbolic link is followed in `.weskit/<ts>/` or below, only regular files are read, a FIFO
//! never blocks the reader, and every read is capped.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use spe_core::jobfile;
use spe_core::logjson::{EngineLog, LogJson};
use spe_core::request::WorkflowType;
use spe_core::tasks::{TaskRecord, parse_nextflow_trace, parse_snakemake_log};
use spe_store::RunRecord;

/// The most of one log a response carries: its last part.
pub const MAX_LOG_BYTES: u64 = 1024 * 1024;

/// The largest released engine log read back to check it is the released copy (the crawler
/// releases nothing larger than a manifest's `max_file_bytes`; a larger log is downloaded from
/// the results bucket instead).
pub const MAX_RELEASED_LOG_BYTES: u64 = 16 * MAX_LOG_BYTES;

/// The largest log.json read; a bigger one is refused (spe-runner writes a few kilobytes).
pub const MAX_LOG_JSON_BYTES: u64 = 1024 * 1024;

/// Where one of the run's log files is: the run directory (created and recorded by the
/// service, the trusted root) and the file's path beneath it. `None` when no log folder is
/// recorded or it does not lie inside the run directory.
fn log_file(run: &RunRecord, name: &str) -> Option<(PathBuf, String)> {
    let log_dir = run.log_dir.as_deref().filter(|d| !d.is_empty())?;
    let rel = Path::new(log_dir).strip_prefix(&run.run_dir).ok()?;
    let rel = rel.join(name).to_str()?.to_owned();
    Some((PathBuf::from(&run.run_dir), rel))
}

/// Where one of the engine's logs is, relative to the run directory (`.weskit/<ts>/stderr`):
/// the path the results crawler records for it as an output.
pub fn log_path(run: &RunRecord, log: EngineLog) -> Option<String> {
    log_file(run, log.file_name()).map(|(_, rel)| rel)
}

/// Up to the last `max` bytes of a job-written file with the shared safe-open (no link followed
/// below the run directory, regular files only, never blocking on a FIFO). Returns the text
/// (lossy UTF-8) and whether the start was cut; `None` when it is missing or refused.
fn read_tail(root: &Path, rel: &str, max: u64) -> Option<(String, bool)> {
    match jobfile::read_tail(root, rel, max) {
        Ok((bytes, cut)) => Some((String::from_utf8_lossy(&bytes).into_owned(), cut)),
        Err(jobfile::Refused::NotFound) => None,
        Err(e) => {
            tracing::warn!(file = %rel, reason = %e, "job-written file refused");
            None
        }
    }
}

/// The runner's log.json, read whole up to a cap, if the job has written it.
pub fn read_log_json(root: &Path, rel: &str) -> Option<LogJson> {
    match jobfile::read_capped(root, rel, MAX_LOG_JSON_BYTES) {
        Ok(bytes) => LogJson::from_slice(&bytes).ok(),
        Err(jobfile::Refused::NotFound) => None,
        Err(e) => {
            tracing::warn!(file = %rel, reason = %e, "log.json refused");
            None
        }
    }
}

/// The runner's log.json, if the job has written it.
pub async fn log_json(run: &RunRecord) -> Option<LogJson> {
    let (root, rel) = log_file(run, "log.json")?;
    tokio::task::spawn_blocking(move || read_log_json(&root, &rel))
        .await
        .ok()?
}

/// The last part of the engine's stdout or stderr.
pub async fn engine_log(run: &RunRecord, log: EngineLog) -> Option<(String, bool)> {
    let (root, rel) = log_file(run, log.file_name())?;
    tokio::task::spawn_blocking(move || read_tail(&root, &rel, MAX_LOG_BYTES))
        .await
        .ok()?
}

/// The last part of an engine log that was released, read only if the file still holds
/// exactly the released bytes (its SHA-256, hex, is `sha256`): what the owner reads is what
/// review let out, never what the file holds now. `None` when it is missing, refused, larger
/// than [`MAX_RELEASED_LOG_BYTES`] or no longer the released copy.
pub async fn released_log(run: &RunRecord, log: EngineLog, sha256: &str) -> Option<(String, bool)> {
    let (root, rel) = log_file(run, log.file_name())?;
    let sha256 = sha256.to_owned();
    tokio::task::spawn_blocking(move || {
        let bytes = match jobfile::read_capped(&root, &rel, MAX_RELEASED_LOG_BYTES) {
            Ok(bytes) => bytes,
            Err(jobfile::Refused::NotFound) => return None,
            Err(e) => {
                tracing::warn!(file = %rel, reason = %e, "released engine log refused");
                return None;
            }
        };
        if hex::encode(Sha256::digest(&bytes)) != sha256 {
            tracing::warn!(file = %rel, "engine log differs from its released copy; not shown");
            return None;
        }
        Some(tail(&bytes, MAX_LOG_BYTES))
    })
    .await
    .ok()?
}

/// The last `max` bytes of `bytes` as text (lossy UTF-8), and whether the start was cut.
fn tail(bytes: &[u8], max: u64) -> (String, bool) {
    let max = usize::try_from(max).unwrap_or(usize::MAX);
    let start = bytes.len().saturating_sub(max);
    (
        String::from_utf8_lossy(&bytes[start..]).into_owned(),
        start > 0,
    )
}

/// The run's tasks from the engine's own records (empty until the engine has written any).
/// Reading and parsing (up to 16 MiB of text) both run on the blocking pool, never on an
/// async worker that other requests are waiting for.
pub async fn tasks(run: &RunRecord) -> Vec<TaskRecord> {
    let nextflow = run.workflow_type == WorkflowType::Nextflow;
    let Some((root, rel)) = log_file(run, if nextflow { "trace.txt" } else { "stderr" }) else {
        return Vec::new();
    };
    tokio::task::spawn_blocking(move || match read_tail(&root, &rel, 16 * MAX_LOG_BYTES) {
        Some((text, _)) if nextflow => parse_nextflow_trace(&text),
        Some((text, _)) => parse_snakemake_log(&text),
        None => Vec::new(),
    })
    .await
    .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tails_of_bytes_say_whether_they_were_cut() {
        assert_eq!(tail(b"0123456789", 100), ("0123456789".into(), false));
        assert_eq!(tail(b"0123456789", 4), ("6789".into(), true));
        assert_eq!(tail(b"", 4), (String::new(), false));
    }

    #[test]
    fn tails_are_bounded_and_symlinks_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join(".weskit/1")).unwrap();
        std::fs::write(dir.path().join(".weskit/1/stdout"), "0123456789").unwrap();
        let root = dir.path();
        assert_eq!(
            read_tail(root, ".weskit/1/stdout", 100),
            Some(("0123456789".into(), false))
        );
        assert_eq!(
            read_tail(root, ".weskit/1/stdout", 4),
            Some(("6789".into(), true))
        );
        std::os::unix::fs::symlink("/etc/passwd", root.join(".weskit/1/stderr")).unwrap();
        assert_eq!(read_tail(root, ".weskit/1/stderr", 100), None);
        assert_eq!(
            read_tail(root, ".weskit/1", 100),
            None,
            "a folder is not a log"
        );
        // A repointed log folder is not followed.
        std::os::unix::fs::symlink(root.join(".weskit/1"), root.join(".weskit/2")).unwrap();
        assert_eq!(read_tail(root, ".weskit/2/stdout", 100), None);
    }
}
