//! End-to-end: runs of the example workflows go through real Slurm (tests/peers/slurm.sh) and
//! the real Snakemake, and their WES state follows the job to its end.

mod common;
mod slurm_support;

use std::time::Duration;

use serde_json::json;
use slurm_support::*;
use spe_core::secret::DatabaseUrl;
use spe_core::{RunId, RunState};
use spe_store::{RunEvent, Store};

const LIMIT: Duration = Duration::from_secs(120);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snakemake_workflow_runs_on_slurm_to_complete_with_its_outputs() {
    if !slurm_ready() {
        return;
    }
    let app = spawn_executing_app(&[]).await;
    let id = submit(
        &app,
        "quals@1.0.0",
        json!({"dataset": "quals-demo", "min_qual": 25}),
    )
    .await;
    assert_eq!(
        wait_for(
            &app,
            &id,
            &["COMPLETE", "EXECUTOR_ERROR", "SYSTEM_ERROR"],
            LIMIT
        )
        .await,
        "COMPLETE"
    );

    let dir = run_dir(&app, &id);
    let csv = std::fs::read_to_string(dir.join("results.csv")).unwrap();
    assert!(csv.lines().count() > 1, "{csv}");
    let svg = std::fs::read_to_string(dir.join("plots/quals.svg")).unwrap();
    assert!(svg.contains("<svg"));
    // The engine read the registered dataset's location, not a path the researcher named.
    let params = std::fs::read_to_string(dir.join(format!("{id}.yaml"))).unwrap();
    assert!(params.contains("workflows/quals/data"), "{params}");
    // The job ran sandboxed, shown that dataset and no other (docs/security.md).
    let spec: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join(".spe/runspec.json")).unwrap()).unwrap();
    assert_eq!(spec["sandbox"], "bubblewrap", "{spec}");
    let datasets = spec["datasets"].as_array().unwrap();
    assert_eq!(datasets.len(), 1, "{spec}");
    assert!(
        datasets[0]
            .as_str()
            .unwrap()
            .ends_with("workflows/quals/data"),
        "{spec}"
    );

    let log = log_json(&app, &id);
    assert_eq!(log["exit_code"], 0);
    for key in [
        "start_time",
        "end_time",
        "cmd",
        "workdir",
        "stdout_file",
        "stderr_file",
        "log_dir",
        "log_file",
        "output_files",
    ] {
        assert!(log.get(key).is_some(), "log.json lacks {key}: {log}");
    }
    assert_eq!(log["cmd"][1], "--snakefile", "{log:#}");
    let (_, run) = app.get_json(&format!("/runs/{id}")).await;
    assert_eq!(run["run_log"]["exit_code"], 0);
    assert!(run["run_log"]["start_time"].is_string());
    assert!(run["run_log"]["end_time"].is_string());

    // Logs are egress: the engine printed the dataset's location (Snakemake's `input:` lines),
    // and the run's owner (here the dev user, who holds every role) sees none of it: no
    // command line, no log URLs, the logs refused, tasks by name and state.
    let location = common::repo_root()
        .join("workflows/quals/data")
        .display()
        .to_string();
    let stderr = std::fs::read_to_string(dir.join(log["stderr_file"].as_str().unwrap())).unwrap();
    assert!(stderr.contains("Finished jobid"), "{stderr}");
    assert!(stderr.contains(&location), "{stderr}");
    assert!(!run.to_string().contains(&location), "{run:#}");
    for absent in ["cmd", "stdout", "stderr"] {
        assert!(run["run_log"].get(absent).is_none(), "{absent}: {run:#}");
    }
    for stream in ["stdout", "stderr"] {
        let res = app
            .client
            .get(app.wes(&format!("/runs/{id}/logs/{stream}")))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 404);
        let text = res.text().await.unwrap();
        assert!(text.contains("is not released"), "{text}");
        assert!(!text.contains(&location), "{text}");
    }
    let (_, tasks) = app.get_json(&format!("/runs/{id}/tasks")).await;
    assert!(!tasks.to_string().contains(&location), "{tasks}");

    // One task per Snakemake rule job, from the engine's own log, paginated.
    let (status, page1) = app.get_json(&format!("/runs/{id}/tasks?page_size=2")).await;
    assert_eq!(status, 200);
    assert_eq!(page1["task_logs"].as_array().unwrap().len(), 2);
    let token = page1["next_page_token"].as_str().unwrap();
    assert!(!token.is_empty());
    let (_, page2) = app
        .get_json(&format!("/runs/{id}/tasks?page_size=2&page_token={token}"))
        .await;
    assert_eq!(page2["next_page_token"], "");
    let mut names: Vec<String> = page1["task_logs"]
        .as_array()
        .unwrap()
        .iter()
        .chain(page2["task_logs"].as_array().unwrap())
        .map(|t| {
            assert_eq!(t["exit_code"], 0, "{t}");
            t["name"].as_str().unwrap().to_owned()
        })
        .collect();
    names.sort();
    assert_eq!(names, vec!["all", "plot_quals", "summarize"]);
    let first_id = page1["task_logs"][0]["id"].as_str().unwrap();
    let (status, task) = app.get_json(&format!("/runs/{id}/tasks/{first_id}")).await;
    assert_eq!(status, 200);
    assert_eq!(task["id"], first_id);
}

/// Also goes through `slurm.command_prefix: [sh, -c]`: the same quoting path as a login node
/// reached with `ssh -o BatchMode=yes svc@login-node`, with a local shell in ssh's place.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_workflow_ends_executor_error_with_its_exit_code_through_a_command_prefix() {
    if !slurm_ready() {
        return;
    }
    let app = spawn_executing_app(&[("SPE__SLURM__COMMAND_PREFIX", "[sh, -c]")]).await;
    let id = submit(&app, "fail-demo@1.0.0", json!({})).await;
    assert_eq!(
        wait_for(
            &app,
            &id,
            &["COMPLETE", "EXECUTOR_ERROR", "SYSTEM_ERROR"],
            LIMIT
        )
        .await,
        "EXECUTOR_ERROR"
    );
    let (_, run) = app.get_json(&format!("/runs/{id}")).await;
    let exit = run["run_log"]["exit_code"].as_i64().unwrap();
    assert_ne!(exit, 0);
    assert_eq!(log_json(&app, &id)["exit_code"].as_i64(), Some(exit));
    let why = run["run_log"]["system_logs"][0].as_str().unwrap();
    assert!(why.contains(&format!("exit code {exit}")), "{why}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_run_is_cancelled_and_its_engine_stops() {
    if !slurm_ready() {
        return;
    }
    let app = spawn_executing_app(&[]).await;
    let id = submit(&app, "sleep-demo@1.0.0", json!({"seconds": 600})).await;
    wait_for(&app, &id, &["RUNNING"], LIMIT).await;
    // The engine has started once its job is running and it has made its working folder.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(engine_alive(&id), "snakemake of run {id} should be running");

    let res = app
        .client
        .post(app.wes(&format!("/runs/{id}/cancel")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let (_, now) = app.get_json(&format!("/runs/{id}/status")).await;
    assert!(
        ["CANCELING", "CANCELED"].contains(&now["state"].as_str().unwrap()),
        "{now}"
    );
    assert_eq!(
        wait_for(
            &app,
            &id,
            &["CANCELED", "COMPLETE", "EXECUTOR_ERROR", "SYSTEM_ERROR"],
            LIMIT
        )
        .await,
        "CANCELED"
    );
    for _ in 0..40 {
        if !engine_alive(&id) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(
        !engine_alive(&id),
        "the engine of run {id} outlived its cancel"
    );
    // The runner recorded the signal that stopped the engine.
    let log = log_json(&app, &id);
    assert_eq!(log["signal"], "SIGTERM", "{log}");
    let res = app
        .client
        .post(app.wes(&format!("/runs/{id}/cancel")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 409);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nextflow_stand_in_run_on_slurm_completes_with_tasks_from_its_trace() {
    if !slurm_ready() {
        return;
    }
    let app = spawn_executing_app(&[]).await;
    let id = submit(
        &app,
        "hello-nf@1.0.0",
        json!({"greeting": "Hi", "names": ["Ada", "Alan"]}),
    )
    .await;
    assert_eq!(
        wait_for(
            &app,
            &id,
            &["COMPLETE", "EXECUTOR_ERROR", "SYSTEM_ERROR"],
            LIMIT
        )
        .await,
        "COMPLETE"
    );
    let log = log_json(&app, &id);
    let cmd: Vec<&str> = log["cmd"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(cmd[1], "run");
    assert!(
        cmd.contains(&"-params-file") && cmd.contains(&"-with-trace"),
        "{cmd:?}"
    );
    let stderr =
        std::fs::read_to_string(run_dir(&app, &id).join(log["stderr_file"].as_str().unwrap()))
            .unwrap();
    assert!(
        stderr.contains("STAND-IN FOR NEXTFLOW"),
        "the stand-in says what it is: {stderr}"
    );
    // The owner sees neither the command line nor the engine's text (logs are egress).
    let (_, run) = app.get_json(&format!("/runs/{id}")).await;
    assert!(run["run_log"].get("cmd").is_none(), "{run:#}");
    assert!(run["run_log"].get("stderr").is_none(), "{run:#}");
    let (_, tasks) = app.get_json(&format!("/runs/{id}/tasks")).await;
    assert_eq!(tasks["task_logs"].as_array().unwrap().len(), 2, "{tasks}");
    assert!(run_dir(&app, &id).join("results/greetings.txt").is_file());
}

/// Whether any process still has this run's id on its command line (snakemake and its rule's
/// `sleep` run with the run directory or params file as arguments).
fn engine_alive(run_id: &str) -> bool {
    std::process::Command::new("pgrep")
        .args(["-f", &format!("{run_id}.yaml")])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

/// The last event of a run once it is `state` (panics after `limit`).
async fn wait_for_event(store: &Store, id: RunId, state: RunState, limit: Duration) -> RunEvent {
    let start = std::time::Instant::now();
    while start.elapsed() < limit {
        let events = store.run_events(id).await.unwrap();
        if let Some(last) = events.last().filter(|e| e.to_state == state) {
            return last.clone();
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    panic!("run {id} never reached {state} within {limit:?}");
}

/// Rows written behind the store's back (raw SQL) with what no accepted run could hold: the
/// submitter and the reconciler each end theirs as SYSTEM_ERROR naming the column, instead of
/// skipping it for ever, and a good run beside them completes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreadable_runs_end_system_error_naming_the_column_and_the_others_run() {
    if !slurm_ready() {
        return;
    }
    let db = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/spe.db", db.path().display());
    let app = spawn_executing_app(&[("SPE__DATABASE__URL", &url)]).await;
    let store = Store::connect(&DatabaseUrl::new(url.clone()), 1)
        .await
        .unwrap();

    let no_engine = RunId::new_random();
    let bad_job = RunId::new_random();
    let accepted = json!({"workflow_type": "SMK", "workflow_type_version": "9",
        "workflow_url": "quals@1.0.0", "workflow_params": {"dataset": "quals-demo"},
        "workflow_engine": "snakemake", "workflow_engine_parameters": {}, "tags": {}});
    let mut without_engine = accepted.clone();
    without_engine
        .as_object_mut()
        .unwrap()
        .remove("workflow_engine");
    for (id, state, request, job) in [
        (no_engine, RunState::Queued, without_engine, "NULL"),
        (bad_job, RunState::Running, accepted, "'not-a-job'"),
    ] {
        store
            .debug_execute(&format!(
                "INSERT INTO runs (id, state, owner, workflow_type, workflow_type_version, \
                 workflow_url, request_json, run_dir, created_at, updated_at, slurm_job_id) \
                 VALUES ('{id}', '{state}', 'alice', 'SMK', '9', 'quals@1.0.0', '{request}', \
                 '/nonexistent/{id}', 1, 1, {job})"
            ))
            .await
            .unwrap();
    }
    let good = submit(&app, "quals@1.0.0", json!({"dataset": "quals-demo"})).await;

    let ended = wait_for_event(&store, no_engine, RunState::SystemError, LIMIT).await;
    assert_eq!(ended.from_state, Some(RunState::Queued));
    assert_eq!(
        ended.actor,
        spe_core::Actor::Service(spe_core::ServiceActor::Submitter)
    );
    let reason = ended.reason.unwrap_or_default();
    assert!(
        reason.starts_with(
            "the stored run is unreadable: request_json: missing field `workflow_engine`"
        ),
        "{reason}"
    );
    let ended = wait_for_event(&store, bad_job, RunState::SystemError, LIMIT).await;
    assert_eq!(ended.from_state, Some(RunState::Running));
    assert_eq!(
        ended.actor,
        spe_core::Actor::Service(spe_core::ServiceActor::Reconciler)
    );
    assert_eq!(
        ended.reason.as_deref(),
        Some(r#"the stored run is unreadable: slurm_job_id: not a Slurm job id: "not-a-job""#)
    );
    // Reading such a run through the API is an error, logged with the reason, never a guess.
    let res = app
        .client
        .get(app.wes(&format!("/runs/{bad_job}")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 500);

    assert_eq!(
        wait_for(
            &app,
            &good,
            &["COMPLETE", "EXECUTOR_ERROR", "SYSTEM_ERROR"],
            LIMIT
        )
        .await,
        "COMPLETE"
    );
}

/// A job named like a queued run's but submitted by another cluster account (here `nobody`,
/// through `runuser`) is not adopted: the submitter does not record it as the run's job.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_of_another_account_named_like_a_run_is_not_adopted() {
    let Some(()) = spe_test_support::skip::require(
        "slurm",
        slurm_ready()
            .then_some(())
            .ok_or_else(|| "Slurm or the tools venv is not running here".to_owned()),
    ) else {
        return;
    };
    // API only (no submitter of its own), so the run stays QUEUED until the pass below.
    let db = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/spe.db", db.path().display());
    let app = common::spawn_app_with(&[("SPE__DATABASE__URL", &url)]).await;
    app.register_examples().await;
    let res = app
        .post_json(
            "/runs",
            json!({"workflow_type": "SMK", "workflow_type_version": "9",
                "workflow_url": "quals@1.0.0", "workflow_params": {"dataset": "demo-1"}}),
        )
        .await;
    assert_eq!(res.status(), 200);
    let id: RunId = res.json::<serde_json::Value>().await.unwrap()["run_id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let out = std::process::Command::new("runuser")
        .args(["-u", "nobody", "--", "sbatch", "--parsable", "--hold"])
        .args(["--chdir=/tmp", "--output=/dev/null", "--wrap=sleep 60"])
        .arg(format!("--job-name=spe-{id}"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let foreign = String::from_utf8_lossy(&out.stdout).trim().to_owned();

    let config = common::test_config(&db, &[("SPE__DATABASE__URL", &url)]);
    let store = Store::connect(&DatabaseUrl::new(url.clone()), 1)
        .await
        .unwrap();
    let slurm = std::sync::Arc::new(wes_api::slurm::SlurmClient::new(&config.slurm));
    let submitter = wes_api::slurm::submitter::Submitter::new(
        store.clone(),
        std::sync::Arc::new(config),
        slurm,
    );
    let passed = submitter.pass().await;
    let run = store.get_run(id).await.unwrap().unwrap();
    // Clean up both jobs before asserting.
    let mut ids = vec![foreign.clone()];
    ids.extend(run.slurm_job_id.as_ref().map(|j| j.as_str().to_owned()));
    let _ = std::process::Command::new("scancel").args(&ids).status();
    passed.unwrap();
    assert_ne!(
        run.slurm_job_id.as_ref().map(|j| j.as_str().to_owned()),
        Some(foreign),
        "the other account's job was adopted"
    );
}
