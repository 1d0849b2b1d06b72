//! `spe-bench`: measures the SPE against real peers on this machine. Commands and results are
//! in docs/benchmarks.md.
//!
//! - `reconcile`: N held jobs in real Slurm, each a live run in the store; times reconcile
//!   ticks and counts the scheduler processes each spawns.
//! - `submit-burst`: N concurrent `POST /runs` against a real wes-api on 127.0.0.1; reports
//!   the acceptance rate and latency.
//! - `http`: wes-api (the binary, bearer JWTs) beside Sapporo under the same wrk load
//!   (`http.rs`; tests/bench/http.sh installs the peers and runs it).

mod http;

use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use futures_util::StreamExt;
use serde_json::json;
use spe_core::RunId;
use spe_core::config::Config;
use spe_core::request::{RunSubmission, WorkflowType};
use spe_core::slurm::SlurmJobId;
use spe_core::time::Timestamp;
use spe_store::{NewRun, Store};
use wes_api::slurm::SlurmClient;
use wes_api::slurm::reconciler::Reconciler;
use wes_api::startup::Application;

#[derive(Parser)]
struct Cli {
    #[command(subcommand)]
    command: Bench,
}

#[derive(Subcommand)]
enum Bench {
    /// Reconcile ticks with N held Slurm jobs.
    Reconcile {
        #[arg(long, default_value_t = 2000)]
        jobs: usize,
        #[arg(long, default_value_t = 10)]
        ticks: usize,
    },
    /// A burst of N POST /runs, `concurrency` at a time.
    SubmitBurst {
        #[arg(long, default_value_t = 500)]
        runs: usize,
        #[arg(long, default_value_t = 32)]
        concurrency: usize,
    },
    /// wes-api beside Sapporo: reads under wrk, submissions, a burst, a large store.
    Http(http::HttpArgs),
}

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn dev_config(dir: &tempfile::TempDir, extra: &[(&str, String)]) -> anyhow::Result<Config> {
    let yaml = std::fs::read_to_string(repo_root().join("deploy/config/spe.dev.yaml"))?;
    let mut env = bench_env(dir.path());
    env.extend([
        ("SPE__SERVER__LISTEN".to_owned(), "127.0.0.1:0".to_owned()),
        ("SPE__LOGGING__LEVEL".to_owned(), "warn".to_owned()),
        // The in-process benchmarks measure the API and the store, not the identity provider.
        ("SPE__AUTH".to_owned(), "disabled".to_owned()),
    ]);
    env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.clone())));
    Ok(Config::parse(&yaml, env)?)
}

/// The dev config's overrides for a benchmark deployment in `dir`: its own SQLite file and
/// data folder, and limits raised for the one load generator.
fn bench_env(dir: &std::path::Path) -> Vec<(String, String)> {
    vec![
        (
            "SPE__DATABASE__URL".to_owned(),
            format!("sqlite://{}/spe.db", dir.display()),
        ),
        (
            "SPE__DATA_DIR".to_owned(),
            dir.join("runs").display().to_string(),
        ),
        // Nor the per-caller rate limits: one load generator is one address and one caller.
        (
            "SPE__SERVER__RATE_LIMIT__PER_ADDRESS_PER_SECOND".to_owned(),
            "1000000".to_owned(),
        ),
        (
            "SPE__SERVER__RATE_LIMIT__PER_ADDRESS_BURST".to_owned(),
            "1000000".to_owned(),
        ),
        (
            "SPE__SERVER__RATE_LIMIT__PER_CALLER_PER_SECOND".to_owned(),
            "1000000".to_owned(),
        ),
        (
            "SPE__SERVER__RATE_LIMIT__PER_CALLER_BURST".to_owned(),
            "1000000".to_owned(),
        ),
        // Nor the quotas: the load generator is one user submitting thousands of runs.
        (
            "SPE__QUOTAS__DEFAULT__LIVE_RUNS".to_owned(),
            "100000000".to_owned(),
        ),
        (
            "SPE__QUOTAS__DEFAULT__RUNS_PER_DAY".to_owned(),
            "100000000".to_owned(),
        ),
        (
            "SPE__QUOTAS__DEFAULT__SUBMISSIONS_PER_MINUTE".to_owned(),
            "100000000".to_owned(),
        ),
        (
            "SPE__QUOTAS__DEFAULT__LIVE_CORES".to_owned(),
            "100000000".to_owned(),
        ),
        (
            "SPE__QUOTAS__DEFAULT__LIVE_MEMORY_MB".to_owned(),
            "100000000000".to_owned(),
        ),
    ]
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

async fn reconcile(jobs: usize, ticks: usize) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let config = Arc::new(dev_config(&dir, &[])?);
    let store = Store::connect(&config.database.url, 4).await?;
    eprintln!("submitting {jobs} held jobs to Slurm...");
    let started = Instant::now();
    let mut ids = Vec::with_capacity(jobs);
    for i in 0..jobs {
        let id = RunId::new_random();
        let out = Command::new("sbatch")
            .args(["--parsable", "--hold", "--job-name"])
            .arg(format!("spe-{id}"))
            .args(["--output=/dev/null", "--wrap", "true"])
            .output()
            .context("sbatch")?;
        if !out.status.success() {
            bail!(
                "sbatch failed after {i} jobs: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let job = SlurmJobId::parse_sbatch_output(&String::from_utf8_lossy(&out.stdout))?;
        let now = Timestamp::from_datetime(chrono::Utc::now());
        store
            .insert_run(&NewRun {
                id,
                owner: spe_core::Subject::local_dev_user(),
                submission: RunSubmission {
                    workflow_type: WorkflowType::Snakemake,
                    workflow_type_version: "9".into(),
                    workflow_url: "quals@1.0.0".into(),
                    workflow_params: Default::default(),
                    workflow_engine: "snakemake".into(),
                    workflow_engine_version: None,
                    workflow_engine_parameters: Default::default(),
                    tags: Default::default(),
                },
                run_dir: dir.path().join(id.to_string()).display().to_string(),
                created_at: now,
            })
            .await?;
        store.record_submission(id, &job, "", now).await?;
        ids.push(job);
    }
    eprintln!(
        "held {jobs} jobs in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    let slurm = Arc::new(SlurmClient::new(&config.slurm));
    let reconciler = Reconciler::new(store.clone(), config.clone(), slurm.clone());
    let mut times = Vec::new();
    let mut calls = Vec::new();
    for _ in 0..ticks {
        let t = Instant::now();
        let report = reconciler.tick().await?;
        times.push(t.elapsed());
        calls.push(report.scheduler_calls);
        assert_eq!(report.live_runs, jobs);
    }
    times.sort();
    println!(
        "| reconcile tick, {jobs} held jobs | p50 {:.0} ms, max {:.0} ms over {ticks} ticks | scheduler processes per tick: {:?} |",
        percentile(&times, 0.5).as_secs_f64() * 1e3,
        times.last().copied().unwrap_or_default().as_secs_f64() * 1e3,
        calls.iter().copied().max().unwrap_or(0)
    );
    for chunk in ids.chunks(500) {
        let _ = Command::new("scancel")
            .args(chunk.iter().map(|j| j.as_str()))
            .status();
    }
    Ok(())
}

async fn submit_burst(runs: usize, concurrency: usize) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let config = dev_config(&dir, &[("SPE__SLURM__ENABLED", "false".into())])?;
    let app = Application::build(config).await?;
    let api = format!("http://127.0.0.1:{}/ga4gh/wes/v1", app.port());
    tokio::spawn(app.run_until_stopped());
    let client = reqwest::Client::new();
    let source = std::fs::canonicalize(repo_root().join("workflows/quals"))?;
    let res = client
        .post(format!("{api}/admin/workflows"))
        .json(&json!({"source_dir": source}))
        .send()
        .await?;
    if !res.status().is_success() {
        bail!("register: {}", res.text().await?);
    }
    client
        .post(format!("{api}/admin/workflows/quals/1.0.0/approve"))
        .json(&json!({}))
        .send()
        .await?
        .error_for_status()?;

    let started = Instant::now();
    let latencies: Vec<anyhow::Result<Duration>> = futures_util::stream::iter(0..runs)
        .map(|i| {
            let client = client.clone();
            let api = api.clone();
            async move {
                let form = reqwest::multipart::Form::new()
                    .text("workflow_type", "SMK")
                    .text("workflow_type_version", "9")
                    .text("workflow_url", "quals@1.0.0")
                    .text("workflow_params", r#"{"min_qual": 20}"#)
                    .text("tags", format!(r#"{{"burst": "{i}"}}"#));
                let t = Instant::now();
                let res = client
                    .post(format!("{api}/runs"))
                    .multipart(form)
                    .send()
                    .await?;
                if res.status() != 200 {
                    bail!("POST /runs: {}", res.text().await?);
                }
                Ok(t.elapsed())
            }
        })
        .buffer_unordered(concurrency)
        .collect()
        .await;
    let total = started.elapsed();
    let mut ok: Vec<Duration> = latencies.into_iter().collect::<Result<_, _>>()?;
    ok.sort();
    println!(
        "| burst of {runs} POST /runs, {concurrency} at a time | {:.0} runs/s ({:.2} s in all) | latency p50 {:.1} ms, p99 {:.1} ms |",
        runs as f64 / total.as_secs_f64(),
        total.as_secs_f64(),
        percentile(&ok, 0.5).as_secs_f64() * 1e3,
        percentile(&ok, 0.99).as_secs_f64() * 1e3,
    );
    // wes-api runs in this process beside the load generator: the peak is both together.
    if let Some(peak) = peak_rss_kib() {
        println!(
            "| peak RSS of the process (wes-api and the load generator) | {:.1} MiB | |",
            peak as f64 / 1024.0
        );
    }
    Ok(())
}

/// The process's peak resident set (`VmHWM` in /proc/self/status), in KiB.
fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Bench::Reconcile { jobs, ticks } => reconcile(jobs, ticks).await,
        Bench::SubmitBurst { runs, concurrency } => submit_burst(runs, concurrency).await,
        Bench::Http(args) => http::run(args).await,
    }
}
