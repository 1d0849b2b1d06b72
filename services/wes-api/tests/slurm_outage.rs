//! End-to-end: with slurmctld stopped, submissions stay QUEUED and go through once it is back.
//! Its own test binary, because stopping the controller would disturb other Slurm tests.

mod common;
mod slurm_support;

use std::process::Command;
use std::time::Duration;

use serde_json::json;
use slurm_support::*;

/// Starts slurmctld again however the test ends.
struct RestartController;

impl Drop for RestartController {
    fn drop(&mut self) {
        let _ = Command::new(common::repo_root().join("tests/peers/slurm.sh"))
            .arg("start-ctld")
            .status();
    }
}

fn slurm_script(action: &str) {
    let status = Command::new(common::repo_root().join("tests/peers/slurm.sh"))
        .arg(action)
        .status()
        .unwrap();
    assert!(status.success(), "slurm.sh {action} failed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn submissions_wait_while_slurmctld_is_down_and_go_through_after() {
    if !slurm_ready() {
        return;
    }
    let app = spawn_executing_app(&[("SPE__SLURM__COMMAND_TIMEOUT_SECONDS", "5")]).await;
    // A second deployment with a small retry budget: its run must end SYSTEM_ERROR.
    let impatient = spawn_executing_app(&[
        ("SPE__SLURM__COMMAND_TIMEOUT_SECONDS", "5"),
        ("SPE__SLURM__SUBMIT_MAX_ATTEMPTS", "2"),
    ])
    .await;
    let guard = RestartController;
    slurm_script("stop-ctld");

    let id = submit(&app, "quals@1.0.0", json!({"dataset": "quals-demo"})).await;
    let doomed = submit(&impatient, "quals@1.0.0", json!({"dataset": "quals-demo"})).await;
    // The run stays QUEUED and says why, attempt after attempt.
    let mut attempts_seen = 0;
    for _ in 0..60 {
        let (_, run) = app.get_json(&format!("/runs/{id}")).await;
        assert_eq!(run["state"], "QUEUED", "{run:#}");
        let why = run["run_log"]["system_logs"][0]
            .as_str()
            .unwrap_or_default();
        if why.contains("submission attempt 2 failed") {
            attempts_seen = 2;
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert_eq!(attempts_seen, 2, "no retried submission was recorded");
    assert_eq!(
        wait_for(
            &impatient,
            &doomed,
            &["SYSTEM_ERROR"],
            Duration::from_secs(60)
        )
        .await,
        "SYSTEM_ERROR"
    );
    let (_, run) = impatient.get_json(&format!("/runs/{doomed}")).await;
    let why = run["run_log"]["system_logs"][0]
        .as_str()
        .unwrap_or_default();
    assert!(
        why.contains("could not submit to Slurm after 2 attempts"),
        "{run:#}"
    );

    slurm_script("start-ctld");
    drop(guard);
    assert_eq!(
        wait_for(
            &app,
            &id,
            &["COMPLETE", "EXECUTOR_ERROR", "SYSTEM_ERROR"],
            Duration::from_secs(180)
        )
        .await,
        "COMPLETE"
    );
}
