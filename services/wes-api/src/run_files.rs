//! Reading what a run's job left in its log folder: log.json, the engine's stdout/stderr and
//! its task records.
//!
//! Only the log folder recorded at submission is read, under fixed file names: never a path
//! taken from log.json, which the job (running workflow code) could have rewritten. Files are
//! opened without following symlinks, and must be regular files.

use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use spe_core::logjson::LogJson;
use spe_core::request::WorkflowType;
use spe_core::tasks::{TaskRecord, parse_nextflow_trace, parse_snakemake_log};
use spe_store::RunRecord;

/// The most of one log a response carries: its last part.
pub const MAX_LOG_BYTES: u64 = 1024 * 1024;

/// Which captured stream of the engine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogStream {
    Stdout,
    Stderr,
}

impl LogStream {
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "stdout" => Some(LogStream::Stdout),
            "stderr" => Some(LogStream::Stderr),
            _ => None,
        }
    }

    fn file_name(self) -> &'static str {
        match self {
            LogStream::Stdout => "stdout",
            LogStream::Stderr => "stderr",
        }
    }
}

fn log_dir(run: &RunRecord) -> Option<PathBuf> {
    run.log_dir
        .as_deref()
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
}

/// Reads up to the last `max` bytes of a regular file, refusing symlinks. Returns the text
/// (lossy UTF-8) and whether the start was cut.
fn read_tail(path: &Path, max: u64) -> Option<(String, bool)> {
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
        .ok()?;
    let meta = file.metadata().ok()?;
    if !meta.file_type().is_file() {
        return None;
    }
    let len = meta.len();
    let cut = len > max;
    if cut {
        file.seek(SeekFrom::Start(len - max)).ok()?;
    }
    let mut bytes = Vec::with_capacity(len.min(max) as usize);
    file.take(max).read_to_end(&mut bytes).ok()?;
    Some((String::from_utf8_lossy(&bytes).into_owned(), cut))
}

/// The runner's log.json, if the job has written it.
pub async fn log_json(run: &RunRecord) -> Option<LogJson> {
    let path = log_dir(run)?.join("log.json");
    let (text, cut) = tokio::task::spawn_blocking(move || read_tail(&path, 16 * MAX_LOG_BYTES))
        .await
        .ok()??;
    if cut {
        return None;
    }
    LogJson::from_slice(text.as_bytes()).ok()
}

/// The last part of the engine's stdout or stderr.
pub async fn engine_log(run: &RunRecord, stream: LogStream) -> Option<(String, bool)> {
    let path = log_dir(run)?.join(stream.file_name());
    tokio::task::spawn_blocking(move || read_tail(&path, MAX_LOG_BYTES))
        .await
        .ok()?
}

/// The run's tasks from the engine's own records (empty until the engine has written any).
/// Reading and parsing (up to 16 MiB of text) both run on the blocking pool, never on an
/// async worker that other requests are waiting for.
pub async fn tasks(run: &RunRecord) -> Vec<TaskRecord> {
    let Some(dir) = log_dir(run) else {
        return Vec::new();
    };
    let nextflow = run.workflow_type == WorkflowType::Nextflow;
    let path = dir.join(if nextflow { "trace.txt" } else { "stderr" });
    tokio::task::spawn_blocking(move || match read_tail(&path, 16 * MAX_LOG_BYTES) {
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
    fn tails_are_bounded_and_symlinks_refused() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("stdout");
        std::fs::write(&file, "0123456789").unwrap();
        assert_eq!(read_tail(&file, 100), Some(("0123456789".into(), false)));
        assert_eq!(read_tail(&file, 4), Some(("6789".into(), true)));
        let link = dir.path().join("stderr");
        std::os::unix::fs::symlink("/etc/passwd", &link).unwrap();
        assert_eq!(read_tail(&link, 100), None);
        assert_eq!(read_tail(dir.path(), 100), None, "a folder is not a log");
    }
}
