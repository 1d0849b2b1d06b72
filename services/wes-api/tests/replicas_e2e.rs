//! Two wes-api processes on one PostgreSQL database with the real one-node Slurm: a burst of
//! 500 submissions spread over both, one of them killed -9 in the middle. Every accepted run is
//! submitted to Slurm exactly once (one job per run, none without a run), cancel works from
//! the survivor, and the survivor alone carries on. Jobs are submitted held (`sbatch --hold`,
//! through a `slurm.command_prefix` shell) so that 500 of them never run on the test's two
//! cores; the test cancels them at its end, or when it fails.

mod common;
mod slurm_support;

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use slurm_support::{runner_path, slurm_ready, tools_bin};
use spe_test_support::dev_config::binary_command;
use spe_test_support::process::Service;
use spe_test_support::store::fresh_postgres_url;

const BURST: usize = 500;

/// Cancels this test's held jobs when dropped, passed or failed.
struct HeldJobs(std::sync::Arc<std::sync::Mutex<BTreeSet<String>>>);

impl Drop for HeldJobs {
    fn drop(&mut self) {
        let runs = self.0.lock().map(|r| r.clone()).unwrap_or_default();
        let ids: Vec<String> = jobs_of(&runs).into_values().flatten().collect();
        for chunk in ids.chunks(100) {
            let _ = Command::new("scancel").args(chunk).status();
        }
    }
}
const IN_FLIGHT: usize = 64;

/// Every Slurm command through a local shell in which sbatch holds its job.
const HOLD: &str = r#"[sh, -c, 'sbatch() { command sbatch --hold "$@"; }; eval "$1"', sh]"#;

fn start(dir: &std::path::Path, database: &str) -> (Service, String) {
    start_with(dir, database, HOLD)
}

fn start_with(dir: &std::path::Path, database: &str, prefix: &str) -> (Service, String) {
    let tools = tools_bin();
    let mut command = binary_command(std::path::Path::new(env!("CARGO_BIN_EXE_wes-api")), dir);
    command
        .args(["--listen", "127.0.0.1:0"])
        .env("SPE__DATABASE__URL", database)
        .env("SPE__SLURM__ENABLED", "true")
        .env("SPE__SLURM__POLL_INTERVAL_SECONDS", "1")
        .env("SPE__SLURM__SUBMIT_INTERVAL_SECONDS", "1")
        .env("SPE__SLURM__COMMAND_PREFIX", prefix)
        .env("SPE__SLURM__RUNNER", runner_path())
        .env(
            "SPE__SLURM__JOB_PATH",
            format!("{}:/usr/bin:/bin", tools.display()),
        )
        .env("SPE__QUOTAS__DEFAULT__LIVE_RUNS", "10000")
        .env("SPE__QUOTAS__DEFAULT__RUNS_PER_DAY", "10000")
        .env("SPE__QUOTAS__DEFAULT__SUBMISSIONS_PER_MINUTE", "10000")
        .env("SPE__QUOTAS__DEFAULT__LIVE_CORES", "100000")
        .env("SPE__QUOTAS__DEFAULT__LIVE_MEMORY_MB", "100000000")
        .env("RUST_LOG", "info")
        .stderr(std::fs::File::create(dir.join(format!("wes-api-{}.log", uuid_like()))).unwrap());
    let service = Service::start(command);
    let api = format!("http://127.0.0.1:{}/ga4gh/wes/v1", service.port());
    (service, api)
}

/// A name for a log file of its own.
fn uuid_like() -> String {
    format!(
        "{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos())
    )
}

/// This test's jobs in Slurm (named `spe-<run id>`), by run id: their job ids.
fn jobs_of(runs: &BTreeSet<String>) -> BTreeMap<String, Vec<String>> {
    let out = Command::new("squeue")
        .args(["-h", "-o", "%i %j"])
        .output()
        .unwrap();
    let mut jobs: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let Some((id, name)) = line.trim().split_once(' ') else {
            continue;
        };
        if let Some(run) = name.strip_prefix("spe-")
            && runs.contains(run)
        {
            jobs.entry(run.to_owned()).or_default().push(id.to_owned());
        }
    }
    jobs
}

async fn states(
    http: &reqwest::Client,
    api: &str,
    runs: &BTreeSet<String>,
) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for id in runs {
        let status: Value = http
            .get(format!("{api}/runs/{id}/status"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        out.insert(
            id.clone(),
            status["state"].as_str().unwrap_or("?").to_owned(),
        );
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_submit_each_run_of_a_burst_once_though_one_is_killed_9() {
    if !slurm_ready() {
        return;
    }
    let Some(database) = fresh_postgres_url().await else {
        return;
    };
    let database = database.expose().to_owned();
    let dir = tempfile::tempdir().unwrap();
    let (a, api_a) = start(dir.path(), &database);
    let (b, api_b) = start(dir.path(), &database);
    let http = reqwest::Client::new();
    let root = common::repo_root();
    let admin = |path: &str, body: Value| {
        let req = http.post(format!("{api_b}{path}")).json(&body);
        async move {
            let res = req.send().await.unwrap();
            assert!(res.status().is_success(), "{}", res.text().await.unwrap());
        }
    };
    admin(
        "/admin/workflows",
        json!({"source_dir": root.join("workflows/quals")}),
    )
    .await;
    admin("/admin/workflows/quals/1.0.0/approve", json!({})).await;

    // The burst, alternating between the two; A is killed -9 once 200 are accepted.
    let accepted = Arc::new(AtomicUsize::new(0));
    let mut a = Some(a);
    let runs = Arc::new(std::sync::Mutex::new(BTreeSet::new()));
    let _cleanup = HeldJobs(runs.clone());
    let refused_by_a = Arc::new(AtomicUsize::new(0));
    let semaphore = Arc::new(tokio::sync::Semaphore::new(IN_FLIGHT));
    let mut tasks = Vec::new();
    for i in 0..BURST {
        let permit = semaphore.clone().acquire_owned().await.unwrap();
        if accepted.load(Ordering::SeqCst) >= 200
            && let Some(victim) = a.take()
        {
            victim.kill9();
        }
        let api = if i % 2 == 0 {
            api_a.clone()
        } else {
            api_b.clone()
        };
        let (http, accepted, runs, refused_by_a) = (
            http.clone(),
            accepted.clone(),
            runs.clone(),
            refused_by_a.clone(),
        );
        let to_a = i % 2 == 0;
        tasks.push(tokio::spawn(async move {
            let _permit = permit;
            let form = reqwest::multipart::Form::new()
                .text("workflow_type", "SMK")
                .text("workflow_type_version", "9")
                .text("workflow_url", "quals@1.0.0")
                .text("workflow_params", "{}");
            match http
                .post(format!("{api}/runs"))
                .multipart(form)
                .send()
                .await
            {
                Ok(res) if res.status().is_success() => {
                    let body: Value = res.json().await.unwrap();
                    runs.lock()
                        .unwrap()
                        .insert(body["run_id"].as_str().unwrap().to_owned());
                    accepted.fetch_add(1, Ordering::SeqCst);
                }
                // Only the killed instance may fail a submission (connection refused or cut).
                Ok(res) => panic!("{api}: {} {}", res.status(), res.text().await.unwrap()),
                Err(e) => {
                    assert!(to_a, "the survivor failed a submission: {e}");
                    refused_by_a.fetch_add(1, Ordering::SeqCst);
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert!(a.is_none(), "A was never killed");
    let runs = runs.lock().unwrap().clone();
    assert_eq!(
        runs.len() + refused_by_a.load(Ordering::SeqCst),
        BURST,
        "every submission accepted or refused by the killed instance"
    );
    assert!(runs.len() >= 300, "{} accepted", runs.len());

    // Every accepted run is known to the survivor and reaches Slurm once (A's claims run out
    // after 60 s; a job A made but did not record is adopted, not made again). A held job is
    // PENDING, which WES calls QUEUED: the jobs themselves are counted.
    let known = states(&http, &api_b, &runs).await;
    let lost: Vec<_> = known.iter().filter(|(_, s)| *s == "?").collect();
    assert!(lost.is_empty(), "runs lost: {lost:?}");
    let deadline = Instant::now() + Duration::from_secs(240);
    loop {
        let jobs = jobs_of(&runs);
        if jobs.len() == runs.len() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{} of {} runs have a job",
            jobs.len(),
            runs.len()
        );
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    // A few more submitter passes: still one job per run.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let jobs = jobs_of(&runs);
    let doubled: Vec<_> = jobs.iter().filter(|(_, ids)| ids.len() > 1).collect();
    assert!(doubled.is_empty(), "runs with two jobs: {doubled:?}");
    assert_eq!(jobs.len(), runs.len());

    // Cancel from the survivor: the run and its job end.
    let victim = runs.iter().next().unwrap().clone();
    let res = http
        .post(format!("{api_b}/runs/{victim}/cancel"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let s = states(&http, &api_b, &BTreeSet::from([victim.clone()])).await;
        if s[&victim] == "CANCELED" {
            break;
        }
        assert!(Instant::now() < deadline, "{victim} is {}", s[&victim]);
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    // Every job is still held: none ran.
    let out = Command::new("squeue")
        .args(["-h", "-o", "%j %r"])
        .output()
        .unwrap();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        if let Some((name, reason)) = line.split_once(' ')
            && name.strip_prefix("spe-").is_some_and(|r| runs.contains(r))
        {
            assert_eq!(reason, "JobHeldUser", "{name}");
        }
    }
    b.kill9();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_instance_gives_back_its_claims_and_the_other_submits_them_at_once() {
    if !slurm_ready() {
        return;
    }
    let Some(database) = fresh_postgres_url().await else {
        return;
    };
    let database = database.expose().to_owned();
    let dir = tempfile::tempdir().unwrap();
    // A slow sbatch (a second each), so that A stops with claims on runs it has not submitted.
    let slow = r#"[sh, -c, 'sbatch() { sleep 1; command sbatch --hold "$@"; }; eval "$1"', sh]"#;
    let (mut a, api_a) = start_with(dir.path(), &database, slow);
    let http = reqwest::Client::new();
    let root = common::repo_root();
    for (path, body) in [
        (
            "/admin/workflows",
            json!({"source_dir": root.join("workflows/quals")}),
        ),
        ("/admin/workflows/quals/1.0.0/approve", json!({})),
    ] {
        let res = http
            .post(format!("{api_a}{path}"))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert!(res.status().is_success(), "{}", res.text().await.unwrap());
    }
    let runs = Arc::new(std::sync::Mutex::new(BTreeSet::new()));
    let _cleanup = HeldJobs(runs.clone());
    for _ in 0..8 {
        let form = reqwest::multipart::Form::new()
            .text("workflow_type", "SMK")
            .text("workflow_type_version", "9")
            .text("workflow_url", "quals@1.0.0")
            .text("workflow_params", "{}");
        let res = http
            .post(format!("{api_a}/runs"))
            .multipart(form)
            .send()
            .await
            .unwrap();
        let body: Value = res.json().await.unwrap();
        runs.lock()
            .unwrap()
            .insert(body["run_id"].as_str().unwrap().to_owned());
    }
    let runs = runs.lock().unwrap().clone();
    // Once A has submitted one, it is stopped (SIGTERM) and exits on its own.
    let deadline = Instant::now() + Duration::from_secs(60);
    while jobs_of(&runs).is_empty() {
        assert!(Instant::now() < deadline, "A submitted nothing");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let pid = a.child_mut().id() as libc::pid_t;
    // SAFETY: signalling the child this test started and has not reaped.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    let status = a.child_mut().wait().unwrap();
    assert!(status.success(), "{status:?}");
    let by_a = jobs_of(&runs).len();
    assert!(
        by_a < runs.len(),
        "A submitted all {by_a} before it stopped"
    );
    // B, started now, submits the rest well within A's 60 s claims: they were given back.
    let started = Instant::now();
    let (b, _api_b) = start_with(dir.path(), &database, HOLD);
    loop {
        let jobs = jobs_of(&runs);
        if jobs.len() == runs.len() {
            let doubled: Vec<_> = jobs.iter().filter(|(_, ids)| ids.len() > 1).collect();
            assert!(doubled.is_empty(), "runs with two jobs: {doubled:?}");
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{} of {} runs have a job {:?} after A stopped: its claims were not given back",
            jobs.len(),
            runs.len(),
            started.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    b.kill9();
}
