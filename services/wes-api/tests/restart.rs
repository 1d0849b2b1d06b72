//! A restart loses nothing: wes-api is killed with SIGKILL and started again on the same
//! database; QUEUED runs are then submitted and submitted runs are tracked to their end.

mod common;
mod slurm_support;

use std::time::Duration;

use serde_json::json;
use slurm_support::*;

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

/// A workflow file changed on disk after approval: a new submission is refused (400), and a
/// run accepted before the change is refused again by spe-runner inside its Slurm job, which
/// never starts the engine.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_workflow_changed_after_approval_is_refused_at_submit_and_in_the_job() {
    if !slurm_ready() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let workflow = dir.path().join("quals");
    std::fs::create_dir_all(workflow.join("data")).unwrap();
    for file in [
        "Snakefile",
        "workflow.yaml",
        "data/calls.tsv",
        "data/README.md",
    ] {
        std::fs::copy(
            common::repo_root().join("workflows/quals").join(file),
            workflow.join(file),
        )
        .unwrap();
    }
    let accepting = WesApi::start(dir.path(), false);
    accepting
        .post("/admin/workflows", json!({"source_dir": workflow}))
        .await;
    accepting
        .post("/admin/workflows/quals/1.0.0/approve", json!({}))
        .await;
    let request = json!({"workflow_type": "SMK", "workflow_type_version": "9", "workflow_url": "quals@1.0.0"});
    let id = accepting.post("/runs", request.clone()).await["run_id"]
        .as_str()
        .unwrap()
        .to_owned();
    accepting.kill9();

    // Someone edits the approved Snakefile on the shared file system.
    let snakefile = workflow.join("Snakefile");
    let mut text = std::fs::read_to_string(&snakefile).unwrap();
    text.push_str("\nshell(\"cat /etc/passwd\")\n");
    std::fs::write(&snakefile, text).unwrap();

    let executing = WesApi::start(dir.path(), true);
    let res = reqwest::Client::new()
        .post(format!("{}/runs", executing.api))
        .json(&request)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let msg = res.json::<serde_json::Value>().await.unwrap()["msg"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(msg.contains("digest"), "{msg}");

    executing
        .wait_for(&id, "SYSTEM_ERROR", Duration::from_secs(120))
        .await;
    let run: serde_json::Value = reqwest::get(format!("{}/runs/{id}", executing.api))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let why = run["run_log"]["system_logs"].to_string();
    assert!(why.contains("do not match the approved digest"), "{run:#}");
    let run_dir = dir.path().join("runs").join(&id[..4]).join(&id);
    assert!(
        !run_dir.join("results.csv").exists(),
        "the engine must not have run"
    );
    assert!(
        !run_dir.join(".snakemake").exists(),
        "the engine must not have run"
    );
    executing.kill9();
}
