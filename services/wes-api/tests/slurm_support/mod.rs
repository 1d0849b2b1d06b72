//! Shared set-up of the end-to-end suites that run workflows on the real one-node Slurm
//! started by tests/peers/slurm.sh.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use spe_test_support::dev_config::binary_command;
use spe_test_support::peers;
use spe_test_support::process::Service;

use crate::common::{self, TestApp, repo_root};

/// Whether Slurm answers here and Snakemake is installed. When not, the test is reported
/// skipped (`SKIPPED <test>: ...`), or fails under CI, so that the suite can never silently
/// not run.
pub fn slurm_ready() -> bool {
    peers::slurm() && peers::tools_bin().is_some()
}

/// The venv with snakemake (tests/peers/python-tools.sh); checked by [`slurm_ready`] first.
pub fn tools_bin() -> PathBuf {
    peers::tools_bin().expect("snakemake, checked by slurm_ready")
}

/// `spe-runner` from the same build as this test (target/<profile>/spe-runner).
pub fn runner_path() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let runner = exe.parent().unwrap().parent().unwrap().join("spe-runner");
    assert!(
        runner.is_file(),
        "{} is missing: build it first (cargo build -p spe-runner; tests/run-all.sh does)",
        runner.display()
    );
    runner
}

/// wes-api with execution on, fast polling, the venv's snakemake, and the example workflows
/// (quals, fail-demo, sleep-demo, hello-nf) registered and approved, plus the dataset
/// `quals-demo`. Nextflow is the labelled stand-in tests/stand-ins/nextflow.
pub async fn spawn_executing_app(extra: &[(&str, &str)]) -> TestApp {
    let app = spawn_executing_app_empty(extra).await;
    for name in ["quals", "fail-demo", "sleep-demo", "hello-nf"] {
        app.register_and_approve(&repo_root().join("workflows").join(name))
            .await;
    }
    let res = app
        .post_json(
            "/admin/datasets",
            json!({
                "id": "quals-demo",
                "description": "synthetic variant calls shipped with the quals workflow",
                "location": repo_root().join("workflows/quals/data").display().to_string(),
                "crypt4gh": false
            }),
        )
        .await;
    assert_eq!(res.status().as_u16(), 201, "{}", res.text().await.unwrap());
    app
}

/// As [`spawn_executing_app`], with nothing registered: for suites that register their own
/// workflows and datasets.
pub async fn spawn_executing_app_empty(extra: &[(&str, &str)]) -> TestApp {
    let tools = tools_bin();
    let runner = runner_path().display().to_string();
    let job_path = format!("{}:/usr/local/bin:/usr/bin:/bin", tools.display());
    let snakemake = tools.join("snakemake").display().to_string();
    let nextflow = repo_root()
        .join("tests/stand-ins/nextflow")
        .display()
        .to_string();
    let mut env: Vec<(&str, &str)> = vec![
        ("SPE__SLURM__ENABLED", "true"),
        ("SPE__SLURM__POLL_INTERVAL_SECONDS", "1"),
        ("SPE__SLURM__SUBMIT_INTERVAL_SECONDS", "1"),
        ("SPE__SLURM__RUNNER", &runner),
        ("SPE__SLURM__JOB_PATH", &job_path),
        ("SPE__WORKFLOWS__ENGINES__SNAKEMAKE__EXECUTABLE", &snakemake),
        // A labelled stand-in: Nextflow's jar cannot be fetched here (docs/execution.md).
        ("SPE__WORKFLOWS__ENGINES__NEXTFLOW__EXECUTABLE", &nextflow),
    ];
    env.extend_from_slice(extra);
    common::spawn_app_with(&env).await
}

pub async fn submit(app: &TestApp, workflow: &str, params: Value) -> String {
    let (ty, version) = if workflow.starts_with("hello-nf@") {
        ("NFL", "DSL2")
    } else {
        ("SMK", "9")
    };
    let res = app
        .post_json(
            "/runs",
            json!({
                "workflow_type": ty,
                "workflow_type_version": version,
                "workflow_url": workflow,
                "workflow_params": params,
            }),
        )
        .await;
    assert_eq!(res.status().as_u16(), 200, "{}", res.text().await.unwrap());
    res.json::<Value>().await.unwrap()["run_id"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Polls the run's status until it is one of `wanted` (panics after `limit`).
pub async fn wait_for(app: &TestApp, run_id: &str, wanted: &[&str], limit: Duration) -> String {
    let start = Instant::now();
    let mut last = String::new();
    while start.elapsed() < limit {
        let (_, status) = app.get_json(&format!("/runs/{run_id}/status")).await;
        last = status["state"].as_str().unwrap_or_default().to_owned();
        if wanted.contains(&last.as_str()) {
            return last;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let (_, run) = app.get_json(&format!("/runs/{run_id}")).await;
    panic!("run {run_id} still {last} after {limit:?}, wanted {wanted:?}: {run:#}");
}

pub fn run_dir(app: &TestApp, run_id: &str) -> PathBuf {
    app.data_dir.join(&run_id[..4]).join(run_id)
}

/// The run's log.json (the newest `.weskit/<timestamp>/log.json`).
pub fn log_json(app: &TestApp, run_id: &str) -> Value {
    let weskit = run_dir(app, run_id).join(".weskit");
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&weskit)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    dirs.sort();
    let text = std::fs::read_to_string(dirs.last().unwrap().join("log.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// The real wes-api binary on a given data folder, for tests that kill and restart it.
pub struct WesApi {
    service: Service,
    pub api: String,
}

impl WesApi {
    pub fn start(dir: &std::path::Path, slurm: bool) -> WesApi {
        let tools = tools_bin();
        // Authentication off: these suites test execution, as one local user; tests/auth.rs
        // tests authentication.
        let mut command = binary_command(Path::new(env!("CARGO_BIN_EXE_wes-api")), dir);
        command
            .args(["--listen", "127.0.0.1:0"])
            .env("SPE__SLURM__ENABLED", slurm.to_string())
            .env("SPE__SLURM__POLL_INTERVAL_SECONDS", "1")
            .env("SPE__SLURM__RUNNER", runner_path())
            .env(
                "SPE__SLURM__JOB_PATH",
                format!("{}:/usr/bin:/bin", tools.display()),
            )
            .env(
                "SPE__WORKFLOWS__ENGINES__SNAKEMAKE__EXECUTABLE",
                tools.join("snakemake"),
            )
            .env("RUST_LOG", "warn")
            .stderr(std::process::Stdio::null());
        let service = Service::start(command);
        WesApi {
            api: format!("http://127.0.0.1:{}/ga4gh/wes/v1", service.port()),
            service,
        }
    }

    pub fn kill9(self) {
        self.service.kill9();
    }

    pub async fn state(&self, id: &str) -> String {
        let status: serde_json::Value = reqwest::get(format!("{}/runs/{id}/status", self.api))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        status["state"].as_str().unwrap().to_owned()
    }

    pub async fn wait_for(&self, id: &str, wanted: &str, limit: Duration) {
        let start = std::time::Instant::now();
        let mut last = String::new();
        while start.elapsed() < limit {
            last = self.state(id).await;
            if last == wanted {
                return;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        panic!("run {id} is {last}, not {wanted}, after {limit:?}");
    }

    pub async fn post(&self, path: &str, body: serde_json::Value) -> serde_json::Value {
        let res = reqwest::Client::new()
            .post(format!("{}{path}", self.api))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert!(
            res.status().is_success(),
            "{path}: {}",
            res.text().await.unwrap()
        );
        res.json().await.unwrap()
    }
}
