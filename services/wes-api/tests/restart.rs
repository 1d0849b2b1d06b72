//! A restart loses nothing: wes-api is killed with SIGKILL and started again on the same
//! database; QUEUED runs are then submitted and submitted runs are tracked to their end.

mod common;
mod slurm_support;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::json;
use slurm_support::*;

struct WesApi {
    child: Child,
    api: String,
}

impl WesApi {
    fn start(dir: &std::path::Path, slurm: bool) -> WesApi {
        let tools = tools_bin();
        let mut child = Command::new(env!("CARGO_BIN_EXE_wes-api"))
            .args([
                "--config",
                "deploy/config/spe.dev.yaml",
                "--listen",
                "127.0.0.1:0",
            ])
            .current_dir(common::repo_root())
            .env(
                "SPE__DATABASE__URL",
                format!("sqlite://{}/spe.db", dir.display()),
            )
            .env("SPE__DATA_DIR", dir.join("runs"))
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
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line.trim().rsplit(' ').next().unwrap().to_owned();
        WesApi {
            child,
            api: format!("http://127.0.0.1:{port}/ga4gh/wes/v1"),
        }
    }

    fn kill9(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    async fn state(&self, id: &str) -> String {
        let status: serde_json::Value = reqwest::get(format!("{}/runs/{id}/status", self.api))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        status["state"].as_str().unwrap().to_owned()
    }

    async fn wait_for(&self, id: &str, wanted: &str, limit: Duration) {
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

    async fn post(&self, path: &str, body: serde_json::Value) -> serde_json::Value {
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queued_and_running_runs_survive_a_kill_9_of_wes_api() {
    if !slurm_ready() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let root = common::repo_root();

    // 1. Execution off: a run is accepted and stays QUEUED; then the process dies.
    let first = WesApi::start(dir.path(), false);
    for name in ["quals", "sleep-demo"] {
        let v = first
            .post(
                "/admin/workflows",
                json!({"source_dir": root.join("workflows").join(name)}),
            )
            .await;
        let (n, ver) = (v["name"].as_str().unwrap(), v["version"].as_str().unwrap());
        first
            .post(&format!("/admin/workflows/{n}/{ver}/approve"), json!({}))
            .await;
    }
    let run = |url: &str, params: serde_json::Value| json!({"workflow_type": "SMK", "workflow_type_version": "9", "workflow_url": url, "workflow_params": params});
    let queued = first.post("/runs", run("quals@1.0.0", json!({}))).await["run_id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(first.state(&queued).await, "QUEUED");
    first.kill9();

    // 2. Execution on: the queued run is submitted; a second run is killed mid-flight.
    let second = WesApi::start(dir.path(), true);
    let running = second
        .post("/runs", run("sleep-demo@1.0.0", json!({"seconds": 8})))
        .await["run_id"]
        .as_str()
        .unwrap()
        .to_owned();
    second
        .wait_for(&running, "RUNNING", Duration::from_secs(60))
        .await;
    second.kill9();

    // 3. A new process tracks both to their end.
    let third = WesApi::start(dir.path(), true);
    third
        .wait_for(&queued, "COMPLETE", Duration::from_secs(120))
        .await;
    third
        .wait_for(&running, "COMPLETE", Duration::from_secs(120))
        .await;
    third.kill9();
}
