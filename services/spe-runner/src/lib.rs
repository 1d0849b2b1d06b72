//! `spe-runner`: the program every Slurm job of the SPE runs, once per workflow run.
//!
//! ```text
//! spe-runner --spec <run_dir>/.spe/runspec.json [--grace-seconds 3]
//! ```
//!
//! In order, it:
//!
//! 1. installs SIGTERM/SIGINT handlers (before anything else, so a cancel is never lost);
//! 2. reads the [`RunSpec`] (written by wes-api at submission);
//! 3. creates the log dir (`<run_dir>/.weskit/<timestamp>`) with `stdout` and `stderr` files;
//! 4. builds the engine's argv with [`spe_core::engine::command_line`] (engine parameters are
//!    checked again there);
//! 5. re-checks the workflow: the entry point must be one of `workflow_files`, the workflow
//!    folder must hold no file besides `workflow_files` (the registry lists `workflow.yaml`
//!    among them) and no symlink, and the files' digest must equal `expected_digest`. On any
//!    mismatch the engine is **not** started. The bytes whose digest matched are staged in a
//!    private folder and that copy is what the engine reads ([`sandbox::stage_workflow`]);
//! 6. for a run with Crypt4GH-encrypted datasets, decrypts their files into the sandbox's
//!    private scratch (mode 0700) and shows the engine a params file naming the plaintext
//!    ([`crypt4gh`]); any key or file error refuses the run here, before the engine exists;
//!    the plaintext is removed as soon as the engine has ended, however it ended;
//! 7. starts the engine in its own process group, inside the [`sandbox`] (bubblewrap: no
//!    network, only its workflow copy, datasets, run dir, a scratch and system folders; unless
//!    the spec says `sandbox: none`), with the run dir as working directory, stdin from
//!    /dev/null, stdout/stderr into the log dir, and a cleared environment holding only
//!    [`ENV_ALLOWLIST`] (plus the engine's fixed variables, e.g. `NXF_OFFLINE=true`; in the
//!    sandbox `HOME`, `TMPDIR` and `NXF_HOME` point into the scratch);
//! 8. on SIGTERM or SIGINT sends that signal to the engine's whole process group, and SIGKILL
//!    after the grace period if the engine is still running; after the engine exits, whatever
//!    is left of its process group is killed too;
//! 9. always writes `log.json` ([`spe_core::logjson::LogJson`]) atomically: temp file in the
//!    log dir, fsync, rename, fsync of the folder.
//!
//! Exit status: the engine's exit code; `128 + n` if the run was stopped by signal `n` (received
//! by the runner, or one that killed the engine); [`EXIT_RUNNER_FAILED`] (125) if the runner
//! refused or could not run the engine (bad spec, digest mismatch, log dir not writable);
//! 126 if the engine is not executable, 127 if it was not found.
//!
//! The environment allowlist ([`ENV_ALLOWLIST`]) is: `PATH`, `HOME`, `LANG`, `LC_ALL`,
//! `TMPDIR`, `TZ`, `USER`, `LOGNAME`, `JAVA_HOME`, `NXF_HOME`, and Slurm's job variables
//! `SLURM_JOB_ID`, `SLURM_JOB_NAME`, `SLURM_JOB_PARTITION`, `SLURM_JOB_NODELIST`,
//! `SLURM_JOB_NUM_NODES`, `SLURM_CPUS_ON_NODE`, `SLURM_CPUS_PER_TASK`, `SLURM_MEM_PER_NODE`,
//! `SLURM_MEM_PER_CPU`, `SLURM_NTASKS`, `SLURM_CLUSTER_NAME`. Everything else (credentials,
//! proxies, `PYTHONPATH`, `LD_PRELOAD`, ...) is dropped.

use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use chrono::{DateTime, Utc};
use spe_core::digest::{digest_files, list_tree, read_files};
use spe_core::engine::{self, Engine};
use spe_core::logjson::{self, LOG_JSON_FILE, LogJson, STDERR_FILE, STDOUT_FILE};
use spe_core::runspec::{RunSpec, Sandbox};
use tokio::signal::unix::{Signal, SignalKind, signal};

pub mod crypt4gh;
pub mod sandbox;

/// Environment variables passed from the job to the engine; all others are dropped.
pub const ENV_ALLOWLIST: &[&str] = &[
    "PATH",
    "HOME",
    "LANG",
    "LC_ALL",
    "TMPDIR",
    "TZ",
    "USER",
    "LOGNAME",
    "JAVA_HOME",
    "NXF_HOME",
    "SLURM_JOB_ID",
    "SLURM_JOB_NAME",
    "SLURM_JOB_PARTITION",
    "SLURM_JOB_NODELIST",
    "SLURM_JOB_NUM_NODES",
    "SLURM_CPUS_ON_NODE",
    "SLURM_CPUS_PER_TASK",
    "SLURM_MEM_PER_NODE",
    "SLURM_MEM_PER_CPU",
    "SLURM_NTASKS",
    "SLURM_CLUSTER_NAME",
];

/// The runner refused to run the engine, or could not record the run.
pub const EXIT_RUNNER_FAILED: i32 = 125;
/// The engine executable exists but cannot be executed.
pub const EXIT_NOT_EXECUTABLE: i32 = 126;
/// The engine executable was not found.
pub const EXIT_NOT_FOUND: i32 = 127;

/// The message recorded in log.json when the workflow files differ from the approved ones.
pub const DIGEST_MISMATCH: &str = "workflow files do not match the approved digest";

/// Default time between forwarding SIGTERM and sending SIGKILL. Kept below Slurm's usual
/// KillWait (30 s; 5 s on the test cluster) so that log.json is written before Slurm kills
/// the runner itself.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(3);

/// The allowlisted part of an environment, in the order given.
pub fn filtered_env<I>(vars: I) -> Vec<(String, String)>
where
    I: IntoIterator<Item = (String, String)>,
{
    vars.into_iter()
        .filter(|(name, _)| ENV_ALLOWLIST.contains(&name.as_str()))
        .collect()
}

/// Reads and parses a run spec.
pub fn load_spec(path: &Path) -> Result<RunSpec, String> {
    let bytes =
        std::fs::read(path).map_err(|e| format!("cannot read run spec {}: {e}", path.display()))?;
    serde_json::from_slice(&bytes)
        .map_err(|e| format!("run spec {} is not valid: {e}", path.display()))
}

/// Re-checks the approved workflow files before anything runs and returns their contents: the
/// bytes whose digest matched, which the sandbox then shows (see [`sandbox::stage_workflow`]).
/// The error text goes to log.json and names files only by their path inside the workflow
/// folder.
pub fn check_workflow(spec: &RunSpec) -> Result<Vec<(String, Vec<u8>)>, String> {
    if !spec.workflow_files.contains(&spec.entry_point) {
        return Err(format!(
            "entry point {} is not among the approved workflow files",
            spec.entry_point
        ));
    }
    let present = list_tree(&spec.workflow_dir)
        .map_err(|e| format!("workflow folder cannot be checked: {e}"))?;
    let extra: Vec<&String> = present
        .iter()
        .filter(|f| !spec.workflow_files.contains(f))
        .collect();
    if !extra.is_empty() {
        let shown: Vec<&str> = extra.iter().take(5).map(|s| s.as_str()).collect();
        return Err(format!(
            "{DIGEST_MISMATCH}: the workflow folder holds files the digest does not cover: {}",
            shown.join(", ")
        ));
    }
    let files = read_files(&spec.workflow_dir, &spec.workflow_files)
        .map_err(|e| format!("{DIGEST_MISMATCH}: {e}"))?;
    if digest_files(&files) != spec.expected_digest {
        return Err(DIGEST_MISMATCH.to_owned());
    }
    Ok(files)
}

/// Size, modification time and inode of every regular file under a run dir, by relative path.
pub type Snapshot = BTreeMap<String, (u64, i64, i64, u64)>;

/// Regular files under `run_dir` (symlinks are neither followed nor listed), leaving out the
/// runner's and the engine's bookkeeping folders.
pub fn snapshot(run_dir: &Path, engine: Engine) -> Snapshot {
    let mut found = Snapshot::new();
    let mut pending = vec![run_dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let Some(rel) = path
                .strip_prefix(run_dir)
                .ok()
                .and_then(|r| r.to_str())
                .map(str::to_owned)
            else {
                continue;
            };
            if dir == run_dir && spe_core::engine::is_bookkeeping(&rel, Some(engine)) {
                continue;
            }
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            if kind.is_dir() {
                pending.push(path);
            } else if kind.is_file()
                && let Ok(meta) = entry.metadata()
            {
                found.insert(
                    rel,
                    (meta.len(), meta.mtime(), meta.mtime_nsec(), meta.ino()),
                );
            }
        }
    }
    found
}

/// Files present after the run that were not there before, or changed: the run's outputs.
pub fn produced(before: &Snapshot, after: &Snapshot) -> Vec<String> {
    after
        .iter()
        .filter(|(path, stat)| before.get(*path) != Some(stat))
        .map(|(path, _)| path.clone())
        .collect()
}

/// Writes `bytes` to `path` so that readers see either the old file or the whole new one:
/// a temp file in the same folder, fsync, rename, fsync of the folder.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path
        .parent()
        .ok_or_else(|| std::io::Error::other("log.json path has no parent folder"))?;
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("log.json");
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let result = (|| {
        // Never through a link or onto a file someone left there: remove whatever has the
        // name, then create it exclusively.
        let _ = std::fs::remove_file(&tmp);
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        drop(file);
        std::fs::rename(&tmp, path)?;
        std::fs::File::open(dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// A path as log.json shows it: relative to the run dir if inside it, else absolute.
fn shown(path: &Path, run_dir: &Path) -> String {
    match path.strip_prefix(run_dir) {
        Ok(rel) if !rel.as_os_str().is_empty() => rel.to_string_lossy().into_owned(),
        _ => path.to_string_lossy().into_owned(),
    }
}

/// Options of one runner invocation.
#[derive(Debug, Clone)]
pub struct Options {
    pub spec: PathBuf,
    pub grace: Duration,
}

/// What happened to the engine.
#[derive(Debug, Default)]
struct Outcome {
    cmd: Vec<String>,
    exit_code: Option<i32>,
    /// Signal number that stopped the run (received by the runner, or that killed the engine).
    signal: Option<i32>,
    error: Option<String>,
    output_files: Vec<String>,
    runner_exit: i32,
}

struct Signals {
    term: Signal,
    int: Signal,
}

impl Signals {
    fn install() -> std::io::Result<Signals> {
        Ok(Signals {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
        })
    }

    /// A signal that already arrived, without waiting.
    async fn pending(&mut self) -> Option<i32> {
        tokio::select! {
            biased;
            _ = self.term.recv() => Some(libc::SIGTERM),
            _ = self.int.recv() => Some(libc::SIGINT),
            _ = std::future::ready(()) => None,
        }
    }

    async fn next(&mut self) -> i32 {
        tokio::select! {
            _ = self.term.recv() => libc::SIGTERM,
            _ = self.int.recv() => libc::SIGINT,
        }
    }
}

/// Sends `sig` to a whole process group; a group that is already gone is not an error.
fn kill_group(pgid: u32, sig: i32) {
    let Ok(pgid) = i32::try_from(pgid) else {
        return;
    };
    if pgid <= 1 {
        return;
    }
    // SAFETY: kill(2) takes plain integers and touches no memory of ours.
    unsafe {
        libc::kill(-pgid, sig);
    }
}

/// Runs the spec at `options.spec`; returns the process exit status for `spe-runner`.
pub async fn run(options: &Options) -> i32 {
    let mut signals = match Signals::install() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("spe-runner: cannot install signal handlers: {e}");
            return EXIT_RUNNER_FAILED;
        }
    };
    let spec = match load_spec(&options.spec) {
        Ok(spec) => spec,
        Err(msg) => {
            eprintln!("spe-runner: {msg}");
            return EXIT_RUNNER_FAILED;
        }
    };
    if let Err(e) = std::fs::create_dir_all(&spec.log_dir) {
        eprintln!(
            "spe-runner: run {}: cannot create log dir {}: {e}",
            spec.run_id,
            spec.log_dir.display()
        );
        return EXIT_RUNNER_FAILED;
    }
    let start_time = Utc::now();
    let outcome = run_engine(&spec, &mut signals, options.grace).await;
    let end_time = Utc::now();
    let log = log_json(&spec, start_time, end_time, &outcome);
    let log_file = spec.log_dir.join(LOG_JSON_FILE);
    if let Err(e) = write_atomically(&log_file, &log.to_pretty_json()) {
        eprintln!(
            "spe-runner: run {}: cannot write {}: {e}",
            spec.run_id,
            log_file.display()
        );
        return EXIT_RUNNER_FAILED;
    }
    let signal = log.signal.as_deref().unwrap_or("none");
    let exit = log
        .exit_code
        .map_or_else(|| "null".to_owned(), |c| c.to_string());
    eprintln!(
        "spe-runner: run {} ended: exit_code={exit} signal={signal}{}",
        spec.run_id,
        log.error
            .as_deref()
            .map(|e| format!(" error={e}"))
            .unwrap_or_default()
    );
    outcome.runner_exit
}

fn log_json(
    spec: &RunSpec,
    start_time: DateTime<Utc>,
    end_time: DateTime<Utc>,
    outcome: &Outcome,
) -> LogJson {
    let run_dir = &spec.run_dir;
    LogJson {
        start_time,
        end_time,
        cmd: outcome.cmd.clone(),
        workdir: run_dir.to_string_lossy().into_owned(),
        exit_code: outcome.exit_code,
        stdout_file: shown(&spec.log_dir.join(STDOUT_FILE), run_dir),
        stderr_file: shown(&spec.log_dir.join(STDERR_FILE), run_dir),
        log_dir: shown(&spec.log_dir, run_dir),
        log_file: shown(&spec.log_dir.join(LOG_JSON_FILE), run_dir),
        output_files: outcome.output_files.clone(),
        signal: outcome.signal.map(logjson::signal_name),
        error: outcome.error.clone(),
    }
}

/// The runner's private folder of a sandboxed run (removed when dropped) and the sandbox's view.
struct Private {
    _dir: tempfile::TempDir,
    view: sandbox::View,
    /// Decrypted inputs, wiped as soon as the engine has ended.
    plaintext: Option<crypt4gh::Plaintext>,
}

/// Why the sandbox could not be set up.
struct SandboxFailure {
    error: String,
    runner_exit: i32,
}

impl SandboxFailure {
    fn runner(error: String) -> SandboxFailure {
        SandboxFailure {
            error,
            runner_exit: EXIT_RUNNER_FAILED,
        }
    }

    fn into_outcome(self, cmd: Vec<String>) -> Outcome {
        Outcome {
            cmd,
            error: Some(self.error),
            runner_exit: self.runner_exit,
            ..Outcome::default()
        }
    }
}

/// The engine's command inside bubblewrap, and the private folder it uses: the checked
/// workflow files staged in `<private>/workflow` (shown read-only at `workflow_dir`) and
/// `<private>/scratch` (shown at `/tmp`, holding `HOME`). The private folder lives in the
/// node's temp folder, outside everything the sandbox shows.
fn sandboxed(
    spec: &RunSpec,
    engine: Engine,
    cmd: &[String],
    files: Vec<(String, Vec<u8>)>,
    env: &[(String, String)],
) -> Result<(tokio::process::Command, Option<Private>), SandboxFailure> {
    let path_var = env
        .iter()
        .find(|(k, _)| k == "PATH")
        .map(|(_, v)| v.as_str());
    let bwrap = sandbox::find_executable("bwrap", path_var)
        .or_else(|| sandbox::find_executable("/usr/bin/bwrap", None))
        .ok_or_else(|| {
            SandboxFailure::runner(
                "cannot start the sandbox: bwrap (Debian package bubblewrap) is not installed"
                    .to_owned(),
            )
        })?;
    let exe = sandbox::find_executable(&cmd[0], path_var).ok_or_else(|| SandboxFailure {
        error: format!("cannot start the engine {}: not found", cmd[0]),
        runner_exit: EXIT_NOT_FOUND,
    })?;
    let exe = std::fs::canonicalize(&exe).unwrap_or(exe);
    let private = tempfile::Builder::new()
        .prefix(&format!("spe-run-{}-", spec.run_id))
        .tempdir()
        .map_err(|e| SandboxFailure::runner(format!("cannot create the private folder: {e}")))?;
    sandbox::prepare_private(private.path(), &files).map_err(SandboxFailure::runner)?;
    let mut view =
        sandbox::View::for_spec(spec, engine, private.path(), sandbox::engine_install(&exe));
    // Encrypted inputs are decrypted into the scratch before anything starts; a failure ends
    // the run here (the private folder, with any partial plaintext, is removed on return).
    let plaintext = match &spec.crypt4gh {
        Some(inputs) => Some(
            crypt4gh::decrypt_inputs(spec, inputs, private.path())
                .map_err(SandboxFailure::runner)?,
        ),
        None => None,
    };
    if let Some(p) = &plaintext {
        view.params_copy = Some((p.params.clone(), spec.params_file.clone()));
    }
    view.check_sources().map_err(SandboxFailure::runner)?;
    let mut argv = cmd.to_vec();
    argv[0] = exe.to_string_lossy().into_owned();
    let mut command = tokio::process::Command::from(sandbox::command(&bwrap, &view, &argv));
    command
        .env_clear()
        .envs(
            env.iter()
                .filter(|(k, _)| !matches!(k.as_str(), "HOME" | "TMPDIR" | "NXF_HOME"))
                .cloned(),
        )
        .envs(engine.environment().iter().copied())
        .env("HOME", sandbox::HOME)
        .env("TMPDIR", sandbox::SCRATCH);
    if engine == Engine::Nextflow {
        command.env("NXF_HOME", format!("{}/.nextflow", sandbox::HOME));
    }
    Ok((
        command,
        Some(Private {
            _dir: private,
            view,
            plaintext,
        }),
    ))
}

fn refused(cmd: Vec<String>, error: String) -> Outcome {
    Outcome {
        cmd,
        error: Some(error),
        runner_exit: EXIT_RUNNER_FAILED,
        ..Outcome::default()
    }
}

async fn run_engine(spec: &RunSpec, signals: &mut Signals, grace: Duration) -> Outcome {
    let open = |name: &str| {
        std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(spec.log_dir.join(name))
    };
    let (stdout, stderr) = match (open(STDOUT_FILE), open(STDERR_FILE)) {
        (Ok(out), Ok(err)) => (out, err),
        (Err(e), _) | (_, Err(e)) => {
            return refused(
                Vec::new(),
                format!("cannot create stdout/stderr files: {e}"),
            );
        }
    };
    let engine = match Engine::parse(&spec.engine) {
        Ok(engine) => engine,
        Err(e) => return refused(Vec::new(), e.to_string()),
    };
    let cmd = match engine::command_line(spec) {
        Ok(cmd) => cmd,
        Err(e) => return refused(Vec::new(), e.to_string()),
    };
    let files = match check_workflow(spec) {
        Ok(files) => files,
        Err(msg) => return refused(cmd, msg),
    };
    if !spec.run_dir.is_dir() {
        return refused(cmd, "run_dir is not a folder".to_owned());
    }
    if let Some(sig) = signals.pending().await {
        return Outcome {
            cmd,
            signal: Some(sig),
            error: Some("stopped before the engine started".to_owned()),
            runner_exit: 128 + sig,
            ..Outcome::default()
        };
    }

    let env = filtered_env(std::env::vars());
    // Held until the engine has ended: the private folder (workflow copy, scratch) is removed
    // when it drops.
    let (mut command, private) = match spec.sandbox {
        Sandbox::Bubblewrap => match sandboxed(spec, engine, &cmd, files, &env) {
            Ok(prepared) => prepared,
            Err(failure) => return failure.into_outcome(cmd),
        },
        Sandbox::None if spec.crypt4gh.is_some() => {
            return refused(
                cmd,
                "the run has Crypt4GH-encrypted datasets, which are decrypted only inside the sandbox (slurm.sandbox: bubblewrap)".to_owned(),
            );
        }
        Sandbox::None => {
            let mut command = tokio::process::Command::new(&cmd[0]);
            command
                .args(&cmd[1..])
                .env_clear()
                .envs(env)
                .envs(engine.environment().iter().copied());
            (command, None)
        }
    };
    // A cancel that came while inputs were decrypted: nothing starts (the plaintext goes with
    // the private folder).
    if let Some(sig) = signals.pending().await {
        return Outcome {
            cmd,
            signal: Some(sig),
            error: Some("stopped before the engine started".to_owned()),
            runner_exit: 128 + sig,
            ..Outcome::default()
        };
    }
    let before = snapshot(&spec.run_dir, engine);
    command
        .current_dir(&spec.run_dir)
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(stderr)
        .process_group(0)
        .kill_on_drop(false);
    let mut child = match command.spawn() {
        Ok(child) => child,
        Err(e) => {
            let runner_exit = match e.kind() {
                std::io::ErrorKind::NotFound => EXIT_NOT_FOUND,
                std::io::ErrorKind::PermissionDenied => EXIT_NOT_EXECUTABLE,
                _ => EXIT_RUNNER_FAILED,
            };
            let what = match spec.sandbox {
                Sandbox::Bubblewrap => "the sandbox (bwrap)",
                Sandbox::None => &cmd[0],
            };
            return Outcome {
                error: Some(format!("cannot start {what}: {e}")),
                cmd,
                runner_exit,
                ..Outcome::default()
            };
        }
    };
    // With process_group(0) the engine leads a new group whose id is its pid.
    let pgid = child.id();

    let mut received: Option<i32> = None;
    let mut kill_at: Option<tokio::time::Instant> = None;
    let status = loop {
        let deadline = kill_at;
        tokio::select! {
            status = child.wait() => break status,
            sig = signals.next() => {
                received.get_or_insert(sig);
                if let Some(pgid) = pgid {
                    kill_group(pgid, sig);
                }
                kill_at.get_or_insert(tokio::time::Instant::now() + grace);
            }
            _ = async {
                match deadline {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            } => {
                if let Some(pgid) = pgid {
                    kill_group(pgid, libc::SIGKILL);
                }
                // Keep waiting: the engine cannot survive SIGKILL.
                kill_at = None;
            }
        }
    };
    // Nothing the engine started may outlive the run.
    if let Some(pgid) = pgid {
        kill_group(pgid, libc::SIGKILL);
    }
    // The engine is gone: no plaintext outlives it.
    let wipe_error = private
        .as_ref()
        .and_then(|p| p.plaintext.as_ref())
        .and_then(|p| p.wipe().err());
    let output_files = produced(&before, &snapshot(&spec.run_dir, engine));
    // The engine and everything it started are gone: its trace can be copied safely.
    let log_copy_error = private
        .as_ref()
        .and_then(|p| sandbox::collect_engine_logs(&p.view, &[engine::NEXTFLOW_TRACE_FILE]).err());

    match status {
        Err(e) => Outcome {
            cmd,
            signal: received,
            error: Some(wipe_error.unwrap_or_else(|| format!("lost track of the engine: {e}"))),
            output_files,
            runner_exit: received.map_or(EXIT_RUNNER_FAILED, |s| 128 + s),
            ..Outcome::default()
        },
        Ok(status) => {
            let exit_code = status.code();
            let signal = received.or(status.signal());
            let runner_exit = match (signal, exit_code) {
                (Some(sig), _) => 128 + sig,
                (None, Some(code)) => code,
                (None, None) => EXIT_RUNNER_FAILED,
            };
            Outcome {
                cmd,
                exit_code,
                signal,
                // The engine's own result stands; plaintext that could not be removed or a
                // trace that could not be copied is said.
                error: wipe_error.or(log_copy_error),
                output_files,
                runner_exit,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn environment_is_cut_to_the_allowlist() {
        let vars = [
            ("PATH", "/usr/bin"),
            ("HOME", "/home/r"),
            ("AWS_SECRET_ACCESS_KEY", "s3cr3t"),
            ("SPE__DATABASE__URL", "postgres://u:p@db/spe"),
            ("LD_PRELOAD", "/tmp/evil.so"),
            ("SLURM_JOB_ID", "42"),
            ("SLURM_JOB_ACCOUNT_SECRET", "x"),
            ("PYTHONPATH", "/tmp"),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned()));
        let kept: Vec<String> = filtered_env(vars).into_iter().map(|(k, _)| k).collect();
        assert_eq!(kept, ["PATH", "HOME", "SLURM_JOB_ID"]);
    }

    #[test]
    fn outputs_are_new_or_changed_regular_files_outside_bookkeeping() {
        let dir = tempfile::tempdir().unwrap();
        let run = dir.path();
        std::fs::write(run.join("params.yaml"), "a: 1").unwrap();
        std::fs::write(run.join("kept.txt"), "old").unwrap();
        let before = snapshot(run, Engine::Snakemake);
        for folder in [".weskit/t", ".spe", ".snakemake/log", "plots"] {
            std::fs::create_dir_all(run.join(folder)).unwrap();
        }
        std::fs::write(run.join(".weskit/t/stdout"), "x").unwrap();
        std::fs::write(run.join(".spe/runspec.json"), "x").unwrap();
        std::fs::write(run.join(".snakemake/log/a.log"), "x").unwrap();
        std::fs::write(run.join("plots/q.svg"), "<svg/>").unwrap();
        std::fs::write(run.join("kept.txt"), "new content").unwrap();
        std::os::unix::fs::symlink("/etc/passwd", run.join("link")).unwrap();
        let after = snapshot(run, Engine::Snakemake);
        assert_eq!(produced(&before, &after), ["kept.txt", "plots/q.svg"]);
        // For Nextflow, work/ and .nextflow.log are bookkeeping too.
        std::fs::create_dir_all(run.join("work/ab")).unwrap();
        std::fs::write(run.join("work/ab/x"), "x").unwrap();
        std::fs::write(run.join(".nextflow.log"), "x").unwrap();
        let nf = snapshot(run, Engine::Nextflow);
        assert!(
            !nf.keys()
                .any(|k| k.starts_with("work/") || k == ".nextflow.log")
        );
        assert!(nf.contains_key(".snakemake/log/a.log"));
    }

    #[test]
    fn atomic_write_replaces_whole_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.json");
        write_atomically(&path, b"{\"a\":1}").unwrap();
        write_atomically(&path, b"{\"a\":2}").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"{\"a\":2}");
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["log.json"]);
    }

    #[test]
    fn atomic_write_never_writes_through_a_planted_link() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, "keep").unwrap();
        let tmp = dir
            .path()
            .join(format!(".log.json.tmp-{}", std::process::id()));
        std::os::unix::fs::symlink(&victim, &tmp).unwrap();
        let path = dir.path().join("log.json");
        write_atomically(&path, b"{}").unwrap();
        assert_eq!(std::fs::read(&victim).unwrap(), b"keep");
        assert_eq!(std::fs::read(&path).unwrap(), b"{}");
    }

    #[test]
    fn paths_are_shown_relative_to_the_run_dir() {
        let run = Path::new("/data/r");
        assert_eq!(
            shown(Path::new("/data/r/.weskit/t/stdout"), run),
            ".weskit/t/stdout"
        );
        assert_eq!(shown(Path::new("/elsewhere/x"), run), "/elsewhere/x");
    }
}
