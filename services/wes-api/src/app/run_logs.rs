//! Logs are egress: what of a run's logs a caller sees.
//!
//! What an engine prints can carry data: Snakemake prints each job's `input:` with the
//! dataset's location, and a workflow that meets a malformed cell prints the cell. So the
//! engine's output leaves the cluster only as an output does: the workflow's manifest names the
//! stream under `egress.release_logs`, the results crawler holds the file `.weskit/<ts>/<stream>`
//! for a data controller's review, and once it is released the run's owner may read it here
//! (exactly the released bytes). Until then the owner sees the runner's own messages: the state,
//! the exit code and one line of reason per message, with absolute paths blanked; and tasks by
//! name and state, without the data-derived tag Nextflow adds to a name.
//!
//! Operators and data controllers see everything of runs they do not own. The owner's view
//! does not widen with the owner's other roles: a researcher who is also an operator or a
//! data controller sees their own run as its owner, as review never lets an owner decide on
//! their own run.

use spe_core::logjson::{EngineLog, LogJson};
use spe_core::tasks::TaskRecord;
use spe_store::{ReleasedFile, RunRecord};

use crate::auth::{Caller, Role};
use crate::error::ApiError;
use crate::run_files;
use crate::startup::AppState;

/// The most characters of one runner message the owner sees.
pub const MAX_MESSAGE_CHARS: usize = 300;

/// Which view of a run's logs a caller gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogView {
    /// Everything the job left: the engine's command line, its output, tasks as recorded.
    Full,
    /// What may leave: the runner's summary, released logs, tasks by name and state.
    Owner,
}

impl LogView {
    /// Full for operators and data controllers on runs they do not own; the owner's otherwise.
    pub fn of(caller: &Caller, run: &RunRecord) -> LogView {
        let overseer = caller.has(Role::Operator) || caller.has(Role::DataController);
        if overseer && !caller.owns(&run.owner) {
            LogView::Full
        } else {
            LogView::Owner
        }
    }
}

/// What `RunLog.run_log` shows besides the run's times and exit code.
#[derive(Debug, PartialEq, Eq)]
pub struct RunLogShown {
    /// The engine's command line: the full view only (it names the run's files).
    pub cmd: Option<Vec<String>>,
    /// The engine logs the caller may read at `/runs/{id}/logs/{stream}`.
    pub logs: Vec<EngineLog>,
    pub system_logs: Vec<String>,
}

/// `run_log`'s command line, readable logs and messages for `view`. `released` are the run's
/// released files (a released engine log is among them under its path in the run directory).
pub fn run_log(
    view: LogView,
    run: &RunRecord,
    log_json: Option<&LogJson>,
    released: &[ReleasedFile],
) -> RunLogShown {
    let messages = runner_messages(run, log_json);
    match view {
        LogView::Full => RunLogShown {
            cmd: log_json.map(|l| l.cmd.clone()),
            logs: if run.log_dir.as_deref().is_some_and(|d| !d.is_empty()) {
                EngineLog::ALL.to_vec()
            } else {
                Vec::new()
            },
            system_logs: messages,
        },
        LogView::Owner => RunLogShown {
            cmd: None,
            logs: EngineLog::ALL
                .into_iter()
                .filter(|log| {
                    run_files::log_path(run, *log)
                        .is_some_and(|path| released.iter().any(|f| f.path == path))
                })
                .collect(),
            system_logs: messages.iter().map(|m| one_line(m)).collect(),
        },
    }
}

/// The scheduler's and the runner's own messages, each once: the stored reason of the run's
/// state (the reconciler copies the runner's error into it), the runner's error from log.json,
/// and the signal that stopped the engine.
fn runner_messages(run: &RunRecord, log_json: Option<&LogJson>) -> Vec<String> {
    let mut messages: Vec<String> = run.reason.iter().cloned().collect();
    if let Some(log) = log_json {
        if let Some(error) = &log.error {
            messages.push(format!("spe-runner: {error}"));
        }
        if let Some(signal) = &log.signal {
            messages.push(format!("spe-runner: the engine was stopped by {signal}"));
        }
    }
    let mut seen = std::collections::HashSet::new();
    messages.retain(|m| seen.insert(m.clone()));
    messages
}

/// One runner message as the owner sees it: its first line, absolute paths blanked (a dataset
/// location the runner could not reach, the run directory), at most [`MAX_MESSAGE_CHARS`].
pub fn one_line(message: &str) -> String {
    let line = message.lines().next().unwrap_or_default().trim();
    let line = blank_paths(line);
    if line.chars().count() <= MAX_MESSAGE_CHARS {
        return line;
    }
    let mut cut: String = line.chars().take(MAX_MESSAGE_CHARS - 1).collect();
    cut.push('…');
    cut
}

/// `text` with every absolute path (a word starting with `/` or `~/`, after any opening quote
/// or bracket) replaced by `<path>`.
fn blank_paths(text: &str) -> String {
    const OPENERS: &[char] = &['\'', '"', '(', '[', '{', '<', '=', ':', ','];
    const CLOSERS: &[char] = &['\'', '"', ')', ']', '}', '>', ',', ';'];
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    let mut after_opener = true;
    while let Some(c) = rest.chars().next() {
        let starts_path = after_opener && (c == '/' || rest.starts_with("~/"));
        if starts_path {
            let end = rest
                .find(|c: char| c.is_whitespace() || CLOSERS.contains(&c))
                .unwrap_or(rest.len());
            out.push_str("<path>");
            rest = &rest[end..];
            after_opener = false;
            continue;
        }
        out.push(c);
        after_opener = c.is_whitespace() || OPENERS.contains(&c);
        rest = &rest[c.len_utf8()..];
    }
    out
}

/// The text of one engine log for `view`: the full view reads the log as it is; the owner only
/// a log released through egress, and only while the file holds exactly the released bytes.
pub async fn engine_log(
    state: &AppState,
    view: LogView,
    run: &RunRecord,
    log: EngineLog,
) -> Result<(String, bool), ApiError> {
    let id = run.id;
    if view == LogView::Full {
        return run_files::engine_log(run, log)
            .await
            .ok_or_else(|| ApiError::not_found(format!("run {id} has no {log} yet")));
    }
    let not_released = || {
        ApiError::not_found(format!(
            "the engine's {log} of run {id} is not released: what an engine prints can carry \
             data, so it leaves only through egress review (the workflow's manifest names it \
             under egress.release_logs); the run's state, exit code and reason are in \
             GET /runs/{id}"
        ))
    };
    let path = run_files::log_path(run, log).ok_or_else(not_released)?;
    let released = state
        .store
        .released_files(id)
        .await?
        .into_iter()
        .find(|f| f.path == path)
        .ok_or_else(not_released)?;
    run_files::released_log(run, log, &released.sha256)
        .await
        .ok_or_else(|| {
            ApiError::not_found(format!(
                "the engine's {log} of run {id} cannot be shown here as released; download the \
                 released copy, {path}, from /results/{id}"
            ))
        })
}

/// A task as the owner sees it: its number, its name without Nextflow's tag (a sample name,
/// often), its times, exit code and status word; `None` for a record whose id is not a job
/// number (the log's text is the engine's, so a record is data until it fits that shape).
pub fn owner_task(task: &TaskRecord) -> Option<TaskRecord> {
    let numbered = !task.id.is_empty() && task.id.len() <= 20;
    if !numbered || !task.id.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(TaskRecord {
        id: task.id.clone(),
        name: task_name(&task.name),
        start_time: task.start_time,
        end_time: task.end_time,
        exit_code: task.exit_code,
        notes: task
            .notes
            .iter()
            .filter(|n| is_state_note(n))
            .cloned()
            .collect(),
    })
}

/// A Snakemake rule's or Nextflow process's name (`WF:PROC (tag)` loses its tag); a name that is
/// no identifier is not shown.
fn task_name(name: &str) -> String {
    let bare = match name.split_once(" (") {
        Some((bare, _)) => bare,
        None => name,
    };
    let identifier = !bare.is_empty()
        && bare.len() <= 128
        && bare
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | ':' | '-'));
    if identifier {
        bare.to_owned()
    } else {
        "(unnamed)".to_owned()
    }
}

/// The notes that are states: Snakemake's `failed` and Nextflow's `status: WORD`.
fn is_state_note(note: &str) -> bool {
    if note == "failed" {
        return true;
    }
    note.strip_prefix("status: ").is_some_and(|word| {
        !word.is_empty() && word.len() <= 16 && word.bytes().all(|b| b.is_ascii_uppercase())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owner_messages_are_one_line_without_paths() {
        assert_eq!(
            one_line(
                "spe-runner: dataset location /data/cohort-7/calls is not reachable on this node"
            ),
            "spe-runner: dataset location <path> is not reachable on this node"
        );
        assert_eq!(
            one_line("cannot read '/srv/runs/a b' (x=/etc/x,y) ~/secret\nsecond line /data"),
            "cannot read '<path> b' (x=<path>,y) <path>"
        );
        assert_eq!(
            one_line("Slurm job FAILED (exit code 1)"),
            "Slurm job FAILED (exit code 1)"
        );
        assert_eq!(one_line("a/b and 1/2 stay"), "a/b and 1/2 stay");
        let long = one_line(&"x".repeat(1000));
        assert_eq!(long.chars().count(), MAX_MESSAGE_CHARS);
        assert!(long.ends_with('…'));
        assert_eq!(one_line(""), "");
    }

    fn task(id: &str, name: &str, notes: &[&str]) -> TaskRecord {
        TaskRecord {
            id: id.into(),
            name: name.into(),
            start_time: None,
            end_time: None,
            exit_code: Some(1),
            notes: notes.iter().map(|n| n.to_string()).collect(),
        }
    }

    #[test]
    fn owners_see_tasks_by_name_and_state() {
        let shown = owner_task(&task("3", "sayHello (patient-0042)", &["status: FAILED"])).unwrap();
        assert_eq!(shown.name, "sayHello");
        assert_eq!(shown.notes, ["status: FAILED"]);
        assert_eq!(shown.exit_code, Some(1));
        let shown = owner_task(&task("12", "WF:ALIGN", &["failed", "status: a b c"])).unwrap();
        assert_eq!(
            (shown.name.as_str(), shown.notes.as_slice()),
            ("WF:ALIGN", &["failed".to_owned()][..])
        );
        assert_eq!(
            owner_task(&task("1", "/data/cohort-7/calls.tsv", &[]))
                .unwrap()
                .name,
            "(unnamed)"
        );
        assert_eq!(owner_task(&task("1 /data/x", "a", &[])), None);
        assert_eq!(owner_task(&task("", "a", &[])), None);
    }
}
