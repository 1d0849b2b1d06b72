//! Hostile workflows through the real system: wes-api on port 0, the real one-node Slurm
//! (tests/peers/slurm.sh) and spe-runner with `slurm.sandbox: bubblewrap` (the default).
//!
//! Each attempt is made by an approved workflow (registered and approved through the API) and
//! checked twice: the workflow's own report line (`attempts.txt`, one line per attempt) says it
//! was refused, and the host shows nothing changed; the run's legitimate outputs still appear.
//! What the sandbox is: docs/security.md, "A job's threat model" (the table there names these
//! tests). One app and one test, so the Slurm runs overlap and the suite stays short:
//!
//! - run H (`tests/workflows/hostile`) tries, one line each: another dataset by path and by
//!   `file://`, another run's directory (list, read, write its output), its own run spec,
//!   wes-api and the S3 server on 127.0.0.1, a Nextflow config planted in the account's home and
//!   in a Nextflow workflow, a forged log.json in its log folder, killing its runner,
//!   submitting a Slurm job of the service's account (outside any sandbox); last it
//!   leaves a process behind that would write into its run directory after the engine ended;
//! - run N (the Nextflow stand-in, after H) shows that a later Nextflow run parses no config;
//! - run K (sleep-demo) plays a job that did get out: the test writes a forged log.json with
//!   exit code 0 into its real log folder and SIGKILLs its spe-runner; the scheduler decides;
//! - run V's job vanished without any scheduler record, with a forged log.json saying 0.

mod common;
mod slurm_support;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::json;
use slurm_support::*;
use spe_core::secret::DatabaseUrl;
use spe_core::{RunId, RunState};
use spe_store::Store;

const LIMIT: Duration = Duration::from_secs(180);
const ENDED: &[&str] = &["COMPLETE", "EXECUTOR_ERROR", "SYSTEM_ERROR", "CANCELED"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_workflows_are_refused_and_their_own_outputs_still_appear() {
    let Some(()) = spe_test_support::skip::require(
        "slurm",
        slurm_ready()
            .then_some(())
            .ok_or_else(|| "Slurm or the tools venv is not running here".to_owned()),
    ) else {
        return;
    };
    let Some(s3) = spe_test_support::peers::s3_url() else {
        return;
    };
    let s3_port: u16 = port_of(&s3);
    // Outside /tmp (the sandbox shows its own scratch there): the other dataset and the
    // registry copy must be absent from the sandbox because it does not mount them.
    let scratch = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let url = format!("sqlite://{}/spe.db", scratch.path().display());
    let app = spawn_executing_app_empty(&[
        ("SPE__DATABASE__URL", &url),
        ("SPE__SLURM__VANISHED_AFTER_SECONDS", "3"),
    ])
    .await;
    let api_port = port_of(&app.base);
    let store = Store::connect(&DatabaseUrl::new(url.clone()), 1)
        .await
        .unwrap();

    // The registry: the hostile workflow, sleep-demo, and a copy of hello-nf (a copy, so that a
    // failing sandbox could not plant anything in the repository's workflows/).
    let hostile = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/workflows/hostile");
    assert_eq!(app.register_and_approve(&hostile).await, "hostile@1.0.0");
    app.register_and_approve(&common::repo_root().join("workflows/sleep-demo"))
        .await;
    let nextflow_project = scratch.path().join("registry/hello-nf");
    std::fs::create_dir_all(&nextflow_project).unwrap();
    for file in ["main.nf", "workflow.yaml"] {
        std::fs::copy(
            common::repo_root().join("workflows/hello-nf").join(file),
            nextflow_project.join(file),
        )
        .unwrap();
    }
    app.register_and_approve(&nextflow_project).await;
    let other_dataset = scratch.path().join("datasets/other-data");
    std::fs::create_dir_all(&other_dataset).unwrap();
    std::fs::write(other_dataset.join("secret.tsv"), "secret\n").unwrap();
    for (id, location) in [
        ("own-data", common::repo_root().join("workflows/quals/data")),
        ("other-data", other_dataset.clone()),
    ] {
        let res = app
            .post_json(
                "/admin/datasets",
                json!({"id": id, "description": "test data", "crypt4gh": false,
                    "location": location.display().to_string()}),
            )
            .await;
        assert_eq!(res.status().as_u16(), 201, "{}", res.text().await.unwrap());
    }

    // Run V: a RUNNING run whose Slurm job no scheduler source knows, with a forged log.json.
    let vanished = insert_vanished_run(&store, &app.data_dir).await;

    // Run K first: run H names it as "another run".
    let killed = submit(&app, "sleep-demo@1.0.0", json!({"seconds": 600})).await;
    // Should an assertion fail first, run K's 600 s job must not hold the shared node.
    let _cancel = CancelOnDrop(format!("spe-{killed}"));
    let killed_dir = run_dir(&app, &killed);
    let killed_params = killed_dir.join(format!("{killed}.yaml"));

    // The account's home, where a planted Nextflow config would reach every later run.
    let account_home = account_home();
    let planted_home = account_home.join(".nextflow/config");
    assert!(
        !planted_home.exists(),
        "{} exists before the test: remove it",
        planted_home.display()
    );

    let hostile_id = submit(
        &app,
        "hostile@1.0.0",
        json!({
            "dataset": "own-data",
            "other_dataset_path": other_dataset.join("secret.tsv").display().to_string(),
            "other_dataset_url": format!("file://{}", other_dataset.join("secret.tsv").display()),
            "nextflow_project": nextflow_project.display().to_string(),
            "other_run": killed,
            "api_port": api_port,
            "s3_port": s3_port,
        }),
    )
    .await;

    // --- Run K: a forged log.json with exit code 0, and its runner killed. ---
    wait_for(&app, &killed, &["RUNNING"], LIMIT).await;
    let start = Instant::now();
    let runner = loop {
        if let Some(pid) = runner_of(&killed_dir)
            && engine_alive(&killed)
        {
            break pid;
        }
        assert!(
            start.elapsed() < LIMIT,
            "spe-runner or the engine of run {killed} never appeared"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let params_before = std::fs::read(&killed_params).unwrap();
    let log_dir = newest_log_dir(&killed_dir);
    std::fs::write(log_dir.join("log.json"), forged_log_json(&killed_dir)).unwrap();
    // SAFETY: kill(2) with plain integers.
    assert_eq!(unsafe { libc::kill(runner, libc::SIGKILL) }, 0);
    assert_eq!(
        wait_for(&app, &killed, ENDED, LIMIT).await,
        "EXECUTOR_ERROR",
        "a run whose runner was killed must not end COMPLETE on its job's word"
    );
    let (_, run) = app.get_json(&format!("/runs/{killed}")).await;
    assert_eq!(run["run_log"]["exit_code"], 137, "{run:#}");
    let why = run["run_log"]["system_logs"][0]
        .as_str()
        .unwrap_or_default();
    assert_eq!(
        why, "the workflow failed (exit code 0, signal 9)",
        "{run:#}"
    );
    // The forgery is still there (its runner never wrote the real one); the state ignored it.
    assert_eq!(log_json(&app, &killed)["exit_code"], 0);
    // The engine died with its runner (--die-with-parent).
    let start = Instant::now();
    while engine_alive(&killed) {
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "the engine of run {killed} outlived its killed runner"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }

    // --- Run H: every attempt refused, its own outputs there. ---
    assert_eq!(wait_for(&app, &hostile_id, ENDED, LIMIT).await, "COMPLETE");
    let ended_at = Instant::now();
    let hostile_dir = run_dir(&app, &hostile_id);
    let report = std::fs::read_to_string(hostile_dir.join("attempts.txt")).unwrap();
    for what in [
        "read another dataset by path",
        "read another dataset by file URL",
        "list another run's directory",
        "read another run's params",
        "write another run's output",
        "rewrite the run spec",
        "connect to wes-api",
        "connect to the S3 server",
        "plant a Nextflow config in the account's home",
        "plant a Nextflow config in a Nextflow workflow",
        "forge log.json",
        "kill the runner",
        "submit a Slurm job",
    ] {
        let line = report
            .lines()
            .find(|l| l.starts_with(&format!("{what}: ")))
            .unwrap_or_else(|| panic!("{what} not tried: {report}"));
        assert!(line.contains(": refused ("), "{line}\n{report}");
    }
    assert!(report.lines().any(|l| l == "home: /tmp/home"), "{report}");
    // Its legitimate output: the header of its own dataset, read inside the sandbox.
    assert_eq!(
        std::fs::read_to_string(hostile_dir.join("own.txt")).unwrap(),
        "chrom\tpos\tsample\tqual\n"
    );
    let log = log_json(&app, &hostile_id);
    assert_eq!(log["exit_code"], 0, "{log:#}");
    assert!(log.get("forged").is_none(), "{log:#}");
    assert_eq!(log["output_files"], json!(["attempts.txt", "own.txt"]));
    // The host agrees: nothing outside run H changed.
    assert!(
        !killed_dir.join("done.txt").exists(),
        "wrote run K's output"
    );
    assert_eq!(std::fs::read(&killed_params).unwrap(), params_before);
    let spec: spe_core::runspec::RunSpec =
        serde_json::from_slice(&std::fs::read(hostile_dir.join(".spe/runspec.json")).unwrap())
            .expect("run H's spec is still the one wes-api wrote");
    assert_eq!(spec.run_id.to_string(), hostile_id);
    assert!(!planted_home.exists(), "planted {}", planted_home.display());
    assert!(!nextflow_project.join("nextflow.config").exists());

    // --- Run N: a later Nextflow run parses no planted config. ---
    let nextflow = submit(
        &app,
        "hello-nf@1.0.0",
        json!({"greeting": "Hi", "names": ["Ada"]}),
    )
    .await;
    assert_eq!(wait_for(&app, &nextflow, ENDED, LIMIT).await, "COMPLETE");
    let nextflow_dir = run_dir(&app, &nextflow);
    let nextflow_log = std::fs::read_to_string(nextflow_dir.join(".nextflow.log")).unwrap();
    assert!(nextflow_log.contains("STAND-IN"), "{nextflow_log}");
    assert!(
        !nextflow_log.contains("Parsing config file"),
        "{nextflow_log}"
    );
    assert!(nextflow_dir.join("results/greetings.txt").is_file());

    // After the job ends, nothing writes its run directory again: the process run H left
    // behind would have written late.txt 4 s after the engine ended.
    let settle = Duration::from_secs(8);
    if let Some(rest) = settle.checked_sub(ended_at.elapsed()) {
        tokio::time::sleep(rest).await;
    }
    assert!(
        !hostile_dir.join("late.txt").exists(),
        "a process outlived run {hostile_id}'s job and wrote its run directory"
    );

    // --- Run V: no scheduler record; its forged log.json does not make it COMPLETE. ---
    let event = wait_for_event(&store, vanished, RunState::SystemError).await;
    assert_eq!(event.from_state, Some(RunState::Running));
    assert_eq!(
        event.reason.as_deref(),
        Some(
            "Slurm job 99999999 vanished without any scheduler record: neither slurmctld nor its accounting (sacct) know how it ended"
        )
    );
    let record = store.get_run(vanished).await.unwrap().unwrap();
    assert_eq!(record.exit_code, None);
}

/// Cancels the Slurm jobs of this name when dropped (also when the test panics).
struct CancelOnDrop(String);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        let _ = std::process::Command::new("scancel")
            .arg(format!("--name={}", self.0))
            .status();
    }
}

fn port_of(url: &str) -> u16 {
    let rest = url.split("://").nth(1).unwrap_or(url);
    let authority = rest.split('/').next().unwrap_or(rest);
    authority.rsplit(':').next().unwrap().parse().unwrap()
}

/// The home directory of the account the jobs run as (this test's user).
fn account_home() -> PathBuf {
    // SAFETY: getpwuid returns a pointer into static storage or null; read at once.
    unsafe {
        let pw = libc::getpwuid(libc::getuid());
        assert!(!pw.is_null(), "no passwd entry for this user");
        let dir = std::ffi::CStr::from_ptr((*pw).pw_dir);
        PathBuf::from(dir.to_string_lossy().into_owned())
    }
}

/// The pid of the spe-runner whose spec lies in `run_dir`.
fn runner_of(run_dir: &Path) -> Option<i32> {
    let spec = run_dir.join(".spe/runspec.json").display().to_string();
    std::fs::read_dir("/proc")
        .ok()?
        .flatten()
        .find_map(|entry| {
            let pid: i32 = entry.file_name().to_str()?.parse().ok()?;
            let cmdline = std::fs::read(entry.path().join("cmdline")).ok()?;
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            (cmdline.contains("spe-runner") && cmdline.contains(&spec)).then_some(pid)
        })
}

/// Whether a process has this run's params file on its command line (snakemake does).
fn engine_alive(run_id: &str) -> bool {
    std::process::Command::new("pgrep")
        .args(["-f", &format!("{run_id}.yaml")])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

fn newest_log_dir(run_dir: &Path) -> PathBuf {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(run_dir.join(".weskit"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    dirs.sort();
    dirs.pop().expect("a log folder")
}

/// A log.json as spe-runner writes it, saying the run succeeded.
fn forged_log_json(run_dir: &Path) -> Vec<u8> {
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    serde_json::to_vec(&json!({
        "start_time": now, "end_time": now, "cmd": ["snakemake"],
        "workdir": run_dir.display().to_string(), "exit_code": 0,
        "stdout_file": "stdout", "stderr_file": "stderr", "log_dir": ".weskit",
        "log_file": "log.json", "output_files": ["done.txt"],
    }))
    .unwrap()
}

/// Stores a RUNNING run of sleep-demo whose job, 99999999, no Slurm source knows, with a forged
/// log.json (exit code 0) in its log folder. Raw SQL: no accepted run could be in this state.
async fn insert_vanished_run(store: &Store, data_dir: &Path) -> RunId {
    let id = RunId::new_random();
    let dir = data_dir.join(id.shard()).join(id.to_string());
    let log_dir = dir.join(".weskit/2026-01-01T00:00:00.000Z");
    std::fs::create_dir_all(&log_dir).unwrap();
    std::fs::write(log_dir.join("log.json"), forged_log_json(&dir)).unwrap();
    let request = serde_json::to_string(&spe_test_support::store::submission(
        "sleep-demo@1.0.0",
        &[],
    ))
    .unwrap();
    let owner = spe_test_support::store::person("alice").key();
    store
        .debug_execute(&format!(
            "INSERT INTO runs (id, state, owner, workflow_type, workflow_type_version, \
             workflow_url, request_json, run_dir, log_dir, created_at, updated_at, slurm_job_id) \
             VALUES ('{id}', 'RUNNING', '{owner}', 'SMK', '9', 'sleep-demo@1.0.0', '{request}', \
             '{}', '{}', 1, 1, '99999999')",
            dir.display(),
            log_dir.display()
        ))
        .await
        .unwrap();
    id
}

async fn wait_for_event(store: &Store, id: RunId, state: RunState) -> spe_store::RunEvent {
    let start = Instant::now();
    while start.elapsed() < LIMIT {
        let events = store.run_events(id).await.unwrap();
        if let Some(last) = events.last().filter(|e| e.to_state == state) {
            return last.clone();
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    panic!("run {id} never reached {state} within {LIMIT:?}");
}
