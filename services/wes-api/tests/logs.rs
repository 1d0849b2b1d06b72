//! Logs are egress (docs/security.md, "Logs are egress"): the real server on port 0 with the
//! real OIDC provider (tests/peers/oidc.sh). A run that read a dataset leaves, in its log folder,
//! the engine's output as Snakemake writes it (the dataset's location in `input:` lines, a
//! malformed cell echoed in an error) and the runner's log.json. Its owner sees the runner's
//! summary and tasks by name and state, never that text, until a log is released through egress;
//! operators and data controllers see everything; an owner who also holds those roles still sees
//! only the owner's view.

mod common;

use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use spe_core::slurm::SlurmJobId;
use spe_core::time::Timestamp;
use spe_core::{Actor, RunId, RunState, ServiceActor};
use spe_store::{EgressOutcome, EgressState, NewEgressFile, Store, Transition};
use spe_test_support::dev_config::test_env;
use spe_test_support::oidc as support;
use wes_api::startup::Application;

/// The registered location of the dataset the run reads: it must never reach the owner.
const LOCATION: &str = "/data/cohort-7/calls";
/// A cell of the dataset the workflow could not parse, echoed by the engine.
const CELL: &str = "patient-0042";
const LOG_DIR: &str = ".weskit/20261127T150000";

struct App {
    base: String,
    http: reqwest::Client,
    store: Store,
    _dir: tempfile::TempDir,
}

/// wes-api on the dev config trusting the test provider; `researchers` are the roles the
/// researchers' group maps to.
async fn spawn(peer: &support::Peer, researchers: &str) -> App {
    let dir = tempfile::tempdir().unwrap();
    let group = "spe-demo:researchers#login.aai.lifescience-ri.eu\": [researcher]";
    let yaml = peer.dev_yaml();
    assert!(yaml.contains(group), "the dev config maps the researchers");
    let yaml = yaml.replace(
        group,
        &group.replace("[researcher]", &format!("[{researchers}]")),
    );
    let config = spe_core::config::Config::parse(&yaml, test_env(dir.path())).unwrap();
    let app = Application::build(config).await.unwrap();
    let base = format!("http://127.0.0.1:{}/ga4gh/wes/v1", app.port());
    let store = app.store().clone();
    tokio::spawn(app.run_until_stopped());
    App {
        base,
        http: reqwest::Client::new(),
        store,
        _dir: dir,
    }
}

impl App {
    async fn get(&self, token: &str, path: &str) -> (u16, String) {
        let url = if path.starts_with("http") {
            path.to_owned()
        } else {
            format!("{}{path}", self.base)
        };
        let res = self.http.get(url).bearer_auth(token).send().await.unwrap();
        (res.status().as_u16(), res.text().await.unwrap())
    }

    async fn get_json(&self, token: &str, path: &str) -> Value {
        let (status, body) = self.get(token, path).await;
        assert_eq!(status, 200, "GET {path}: {body}");
        serde_json::from_str(&body).unwrap()
    }

    async fn post(&self, token: &str, path: &str, body: Value) {
        let res = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = res.status().as_u16();
        assert!(
            status < 300,
            "POST {path}: {status} {}",
            res.text().await.unwrap()
        );
    }
}

fn now() -> Timestamp {
    Timestamp::from_datetime(chrono::Utc::now())
}

/// The engine's stderr as Snakemake 9 writes it for a rule that fails on a malformed cell.
fn snakemake_stderr() -> String {
    format!(
        "Building DAG of jobs...\n\
         [Fri Nov 27 15:00:00 2026]\n\
         localrule summarize:\n    input: {LOCATION}/calls.tsv\n    output: results.csv\n    jobid: 1\n\
         [Fri Nov 27 15:00:01 2026]\n\
         Error in rule summarize:\n    message: None\n    jobid: 1\n    input: {LOCATION}/calls.tsv\n\
         ValueError: could not convert string to float: '{CELL}'\n"
    )
}

/// A researcher's run of `quals` on a registered dataset, ended EXECUTOR_ERROR as the
/// reconciler leaves it, with the log folder a job leaves (engine output and log.json).
/// Returns the run id and its run directory.
async fn failed_run(app: &App, controller: &str, researcher: &str) -> (String, String) {
    let quals = common::repo_root().join("workflows/quals");
    app.post(
        controller,
        "/admin/workflows",
        json!({"source_dir": quals.display().to_string()}),
    )
    .await;
    app.post(
        controller,
        "/admin/workflows/quals/1.0.0/approve",
        json!({}),
    )
    .await;
    app.post(
        controller,
        "/admin/datasets",
        json!({"id": "cohort-7", "description": "synthetic", "location": LOCATION, "crypt4gh": false}),
    )
    .await;
    let form = reqwest::multipart::Form::new()
        .text("workflow_type", "SMK")
        .text("workflow_type_version", "9")
        .text("workflow_url", "quals@1.0.0")
        .text(
            "workflow_params",
            json!({"dataset": "cohort-7"}).to_string(),
        );
    let res = app
        .http
        .post(format!("{}/runs", app.base))
        .bearer_auth(researcher)
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let id = res.json::<Value>().await.unwrap()["run_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let run_id: RunId = id.parse().unwrap();
    let run_dir = app.store.get_run(run_id).await.unwrap().unwrap().run_dir;

    let log_dir = std::path::Path::new(&run_dir).join(LOG_DIR);
    std::fs::create_dir_all(&log_dir).unwrap();
    std::fs::write(log_dir.join("stderr"), snakemake_stderr()).unwrap();
    std::fs::write(log_dir.join("stdout"), format!("first row: {CELL}\n")).unwrap();
    let log_json = json!({
        "start_time": "2026-11-27T15:00:00.000000Z",
        "end_time": "2026-11-27T15:00:02.000000Z",
        "cmd": ["snakemake", "--snakefile", format!("{run_dir}/.spe/workflow/Snakefile"),
                "--configfile", format!("{run_dir}/{id}.yaml"), "--directory", run_dir.clone()],
        "workdir": run_dir.clone(),
        "exit_code": 1,
        "stdout_file": format!("{LOG_DIR}/stdout"),
        "stderr_file": format!("{LOG_DIR}/stderr"),
        "log_dir": LOG_DIR,
        "log_file": format!("{LOG_DIR}/log.json"),
        "output_files": [],
    });
    std::fs::write(log_dir.join("log.json"), log_json.to_string()).unwrap();
    assert!(
        app.store
            .record_submission(
                run_id,
                &"4242".parse::<SlurmJobId>().unwrap(),
                &log_dir.display().to_string(),
                now(),
            )
            .await
            .unwrap()
    );
    let reconciler = Actor::Service(ServiceActor::Reconciler);
    for (from, to, reason, exit_code) in [
        (RunState::Queued, RunState::Running, None, None),
        (
            RunState::Running,
            RunState::ExecutorError,
            Some("Slurm job FAILED (exit code 1)"),
            Some(1),
        ),
    ] {
        let moved = app
            .store
            .transition(&Transition {
                run: run_id,
                from: &[from],
                to,
                actor: &reconciler,
                reason,
                exit_code,
                at: now(),
            })
            .await
            .unwrap();
        assert!(moved.is_ok(), "{from} -> {to}");
    }
    (id, run_dir)
}

/// Nothing of the engine's text, the dataset's location or the run's paths is in `body`.
fn assert_no_engine_text(body: &str, run_dir: &str, what: &str) {
    for secret in [LOCATION, CELL, run_dir, "could not convert", "--configfile"] {
        assert!(!body.contains(secret), "{what} shows {secret:?}: {body}");
    }
}

#[tokio::test]
async fn engine_logs_of_a_run_that_reads_a_dataset_are_not_visible_to_the_researcher() {
    let Some(peer) = support::peer().await else {
        return;
    };
    let app = spawn(&peer, "researcher").await;
    let researcher = peer.token("researcher").await;
    let controller = peer.token("controller").await;
    let operator = peer.token("operator").await;
    let (id, run_dir) = failed_run(&app, &controller, &researcher).await;

    // The owner: the runner's summary (state, exit code, one line of reason), no command line,
    // no log URLs, and the logs themselves refused with the reason.
    let run = app.get_json(&researcher, &format!("/runs/{id}")).await;
    let text = run.to_string();
    assert_no_engine_text(&text, &run_dir, "the owner's RunLog");
    assert_eq!(run["state"], "EXECUTOR_ERROR");
    assert_eq!(run["run_log"]["exit_code"], 1);
    assert_eq!(
        run["run_log"]["system_logs"],
        json!(["Slurm job FAILED (exit code 1)"])
    );
    for absent in ["cmd", "stdout", "stderr"] {
        assert!(run["run_log"].get(absent).is_none(), "{absent}: {run:#}");
    }
    for stream in ["stdout", "stderr"] {
        let (status, body) = app
            .get(&researcher, &format!("/runs/{id}/logs/{stream}"))
            .await;
        assert_eq!(status, 404, "{body}");
        assert_no_engine_text(&body, &run_dir, "the owner's log");
        let message: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(
            message["msg"],
            format!(
                "the engine's {stream} of run {id} is not released: what an engine prints can \
                 carry data, so it leaves only through egress review (the workflow's manifest \
                 names it under egress.release_logs); the run's state, exit code and reason are \
                 in GET /runs/{id}"
            )
        );
    }
    // Tasks by name and state: the failed rule is there, its input is not.
    let tasks = app
        .get_json(&researcher, &format!("/runs/{id}/tasks"))
        .await;
    assert_no_engine_text(&tasks.to_string(), &run_dir, "the owner's tasks");
    assert_eq!(tasks["task_logs"][0]["name"], "summarize", "{tasks}");
    assert_eq!(tasks["task_logs"][0]["exit_code"], 1, "{tasks}");
    assert_eq!(tasks["task_logs"][0]["system_logs"], json!(["failed"]));
    assert!(tasks["task_logs"][0].get("cmd").is_none());
    let task = app
        .get_json(&researcher, &format!("/runs/{id}/tasks/1"))
        .await;
    assert_eq!(task["name"], "summarize");
    assert_no_engine_text(&task.to_string(), &run_dir, "the owner's task");

    // An operator sees everything: the command line, the log URLs and the engine's text.
    let run = app.get_json(&operator, &format!("/runs/{id}")).await;
    assert_eq!(run["run_log"]["cmd"][4], format!("{run_dir}/{id}.yaml"));
    let stderr_url = run["run_log"]["stderr"].as_str().unwrap();
    let (status, stderr) = app.get(&operator, stderr_url).await;
    assert_eq!(status, 200);
    assert_eq!(stderr, snakemake_stderr());
    // A data controller reads the logs of any run (the material of a review), not the run.
    let (status, stderr) = app.get(&controller, stderr_url).await;
    assert_eq!((status, stderr.contains(LOCATION)), (200, true), "{stderr}");
    let (status, stdout) = app
        .get(&controller, &format!("/runs/{id}/logs/stdout"))
        .await;
    assert_eq!((status, stdout.contains(CELL)), (200, true), "{stdout}");
    let (status, _) = app.get(&controller, &format!("/runs/{id}")).await;
    assert_eq!(status, 403);
    // Another researcher does not learn that the run exists.
    let other = peer.token("researcher2").await;
    let (status, body) = app.get(&other, &format!("/runs/{id}/logs/stderr")).await;
    assert_eq!(status, 404);
    assert!(body.contains(&format!("run {id} not found")), "{body}");

    // A log the crawler holds for review stays closed (stdout); once released (stderr), the
    // owner reads exactly the released bytes, and nothing once the file no longer holds them.
    let run_id: RunId = id.parse().unwrap();
    let path = format!("{LOG_DIR}/stderr");
    let stderr_bytes = snakemake_stderr().into_bytes();
    app.store
        .record_egress_scan(
            run_id,
            &[
                NewEgressFile {
                    path: format!("{LOG_DIR}/stdout"),
                    state: EgressState::Held,
                    size: 30,
                    reason: Some("engine logs are reviewed".into()),
                },
                NewEgressFile {
                    path: path.clone(),
                    state: EgressState::Pending,
                    size: i64::try_from(stderr_bytes.len()).unwrap(),
                    reason: None,
                },
            ],
            now(),
        )
        .await
        .unwrap();
    let (status, _) = app
        .get(&researcher, &format!("/runs/{id}/logs/stderr"))
        .await;
    assert_eq!(status, 404, "a log waiting for upload is not released");
    release(&app.store, run_id, &path, &stderr_bytes).await;
    let run = app.get_json(&researcher, &format!("/runs/{id}")).await;
    assert!(run["run_log"].get("stdout").is_none(), "{run:#}");
    let url = run["run_log"]["stderr"].as_str().unwrap();
    assert!(url.ends_with(&format!("/runs/{id}/logs/stderr")), "{url}");
    let (status, text) = app.get(&researcher, url).await;
    assert_eq!((status, text), (200, snakemake_stderr()));
    let (status, _) = app
        .get(&researcher, &format!("/runs/{id}/logs/stdout"))
        .await;
    assert_eq!(status, 404, "a held log is not released");
    std::fs::write(
        std::path::Path::new(&run_dir).join(&path),
        format!("{}{LOCATION} appended later\n", snakemake_stderr()),
    )
    .unwrap();
    let (status, body) = app.get(&researcher, url).await;
    assert_eq!(status, 404, "{body}");
    assert_no_engine_text(&body, &run_dir, "a changed released log");
    assert!(body.contains(&format!("from /results/{id}")), "{body}");
}

/// Records the pending `path` of `run` released with `bytes`' digest, as the results crawler
/// does once it has uploaded a file.
async fn release(store: &Store, run: RunId, path: &str, bytes: &[u8]) {
    let lease = Timestamp::from_micros(now().micros() + 60_000_000);
    let claimed = store
        .claim_egress_file(run, path, "test-crawler", now(), lease)
        .await
        .unwrap();
    assert!(claimed.is_some(), "{path} could not be claimed");
    let sha = hex::encode(Sha256::digest(bytes));
    let size = i64::try_from(bytes.len()).unwrap();
    assert!(
        store
            .finish_egress_file(
                run,
                path,
                "test-crawler",
                EgressOutcome::Released { sha256: &sha, size },
                now(),
            )
            .await
            .unwrap()
    );
}

#[tokio::test]
async fn an_owner_who_is_also_operator_and_data_controller_sees_only_the_owners_view() {
    let Some(peer) = support::peer().await else {
        return;
    };
    let app = spawn(&peer, "researcher, operator, data_controller").await;
    let researcher = peer.token("researcher").await;
    let controller = peer.token("controller").await;
    let (id, run_dir) = failed_run(&app, &controller, &researcher).await;

    let run = app.get_json(&researcher, &format!("/runs/{id}")).await;
    assert_no_engine_text(&run.to_string(), &run_dir, "the owner's RunLog");
    assert!(run["run_log"].get("cmd").is_none(), "{run:#}");
    let (status, body) = app
        .get(&researcher, &format!("/runs/{id}/logs/stderr"))
        .await;
    assert_eq!(status, 404);
    assert_no_engine_text(&body, &run_dir, "the owner's log");
    let tasks = app
        .get_json(&researcher, &format!("/runs/{id}/tasks"))
        .await;
    assert_no_engine_text(&tasks.to_string(), &run_dir, "the owner's tasks");
    // Another researcher holding the same roles oversees the run, as any operator would.
    let other = peer.token("researcher2").await;
    let (status, stderr) = app.get(&other, &format!("/runs/{id}/logs/stderr")).await;
    assert_eq!((status, stderr), (200, snakemake_stderr()));
}
