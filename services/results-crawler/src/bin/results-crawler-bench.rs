//! `results-crawler-bench`: the crawler's benchmarks against a real S3 server (s3s-fs of
//! tests/peers/s3.sh by default) and a fresh SQLite store in a work folder. It uses the
//! crawler's own code (Crawler, the watcher, the notified worker), never wes-api.
//!
//! ```sh
//! cargo build --release -p results-crawler
//! tests/peers/s3.sh start
//! target/release/results-crawler-bench latency --runs 200
//! target/release/results-crawler-bench rescan --runs 100000
//! target/release/results-crawler-bench per-run --runs 500
//! target/release/results-crawler-bench throughput --files 16 --mib 64
//! target/release/results-crawler-bench takeover --mib 1024
//! ```
//! docs/benchmarks.md ("Results crawler") has the figures.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use results_crawler::crawler::{Crawler, RunOutcome, Settings};
use results_crawler::metrics::Metrics;
use results_crawler::s3::Bucket;
use results_crawler::{service, watch};
use serde_json::json;
use spe_core::config::{CrawlerConfig, CrawlerWatch};
use spe_core::digest::WorkflowDigest;
use spe_core::manifest::Manifest;
use spe_core::request::{RunSubmission, WorkflowType};
use spe_core::secret::DatabaseUrl;
use spe_core::slurm::SlurmJobId;
use spe_core::time::Timestamp;
use spe_core::{RunId, RunState};
use spe_store::{NewRun, NewWorkflowVersion, Store, Transition};

#[derive(Parser)]
#[command(about = "Benchmarks of the results crawler against a real S3 server")]
struct Cli {
    /// S3 endpoint (path-style).
    #[arg(long, default_value = "http://127.0.0.1:59000", global = true)]
    endpoint: String,
    #[arg(long, default_value = "spe-results", global = true)]
    bucket: String,
    /// Work folder (store, run directories); a fresh temporary one when absent.
    #[arg(long, global = true)]
    workdir: Option<PathBuf>,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Release latency: log.json written -> run's manifest object visible, crawler watching
    /// with notify. Runs one at a time.
    Latency {
        #[arg(long, default_value_t = 200)]
        runs: usize,
    },
    /// One rescan with this many finished runs present (all but `--pending` already done),
    /// measured in a fresh process (time and peak RSS).
    Rescan {
        #[arg(long, default_value_t = 100_000)]
        runs: usize,
        #[arg(long, default_value_t = 0)]
        pending: usize,
    },
    /// (internal) the measured rescan of `rescan`, in its own process.
    #[command(hide = true)]
    RescanPass,
    /// Per-run overhead: one rescan releasing this many COMPLETE runs with two small outputs.
    PerRun {
        #[arg(long, default_value_t = 500)]
        runs: usize,
    },
    /// Upload throughput of one run with `--files` files of `--mib` MiB, then the same
    /// folder with `aws s3 cp --recursive` (if `aws` is on PATH).
    Throughput {
        #[arg(long, default_value_t = 16)]
        files: usize,
        #[arg(long, default_value_t = 64)]
        mib: usize,
    },
    /// Takeover after a crash: a crawler process releasing one `--mib` MiB file is killed -9
    /// mid-upload; a new one (the restart) is timed from its start to the file's takeover and
    /// to the run's manifest object. Leases as configured (`crawler.lease_seconds`).
    Takeover {
        #[arg(long, default_value_t = 1024)]
        mib: usize,
    },
    /// (internal) the crawler process `takeover` kills.
    #[command(hide = true)]
    TakeoverChild { run: String },
}

const ACCESS_KEY: &str = "spe-test-access";
const SECRET_KEY: &str = "spe-test-secret-key";
const WORKFLOW: &str = "bench@1.0.0";

fn now() -> Timestamp {
    Timestamp::from_datetime(chrono::Utc::now())
}

struct World {
    _tmp: Option<tempfile::TempDir>,
    dir: PathBuf,
    data: PathBuf,
    store: Store,
    bucket: Bucket,
    config: CrawlerConfig,
}

fn crawler_config(cli: &Cli) -> anyhow::Result<CrawlerConfig> {
    let access = std::env::var("SPE__CRAWLER__ACCESS_KEY").unwrap_or_else(|_| ACCESS_KEY.into());
    let secret = std::env::var("SPE__CRAWLER__SECRET_KEY").unwrap_or_else(|_| SECRET_KEY.into());
    Ok(serde_json::from_value(json!({
        "bucket": cli.bucket,
        "endpoint": cli.endpoint,
        "path_style": true,
        "access_key": access,
        "secret_key": secret,
    }))?)
}

async fn world(cli: &Cli, fresh: bool) -> anyhow::Result<World> {
    let (tmp, dir) = match &cli.workdir {
        Some(d) => (None, d.clone()),
        None => {
            let t = tempfile::tempdir()?;
            let d = t.path().to_path_buf();
            (Some(t), d)
        }
    };
    if fresh && cli.workdir.is_some() && dir.join("spe.db").exists() {
        bail!(
            "{} already holds a store; give an empty --workdir",
            dir.display()
        );
    }
    let data = dir.join("runs");
    std::fs::create_dir_all(&data)?;
    let url = format!("sqlite://{}/spe.db", dir.display());
    let store = Store::connect(&DatabaseUrl::new(url), 4).await?;
    let config = crawler_config(cli)?;
    let bucket = Bucket::connect(&config).await;
    if fresh {
        register_workflow(&store).await?;
    }
    Ok(World {
        _tmp: tmp,
        dir,
        data,
        store,
        bucket,
        config,
    })
}

/// The example workflow's manifest with rules that release the benchmark's files.
async fn register_workflow(store: &Store) -> anyhow::Result<()> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../workflows/quals");
    // The shipped manifest holds the plot for review; the benchmark releases it and its large
    // binaries automatically, to time uploads.
    let yaml = std::fs::read_to_string(root.join("workflow.yaml"))?
        .replace("name: quals", "name: bench")
        .replace(
            "    - results.csv\n",
            "    - results.csv\n    - plots/*.svg\n    - big/*.bin\n",
        )
        .replace("  review: [plots/*.svg]\n", "  review: []\n")
        .replace(
            "max_file_bytes: 10485760\n",
            "max_file_bytes: 1073741824\n  checks:\n    \
             - { glob: \"plots/*.svg\", allow_types: [image] }\n    \
             - { glob: \"big/*.bin\", allow_types: [binary] }\n",
        );
    anyhow::ensure!(
        yaml.contains("allow_types: [binary]") && yaml.contains("  review: []\n"),
        "the example manifest changed: the benchmark's binaries would be held"
    );
    let manifest = Manifest::from_yaml(&yaml).map_err(|e| anyhow::anyhow!("manifest: {e}"))?;
    let digest =
        WorkflowDigest::parse(&"b".repeat(64)).ok_or_else(|| anyhow::anyhow!("not a digest"))?;
    store
        .register_workflow(&NewWorkflowVersion {
            name: "bench".into(),
            version: "1.0.0".into(),
            workflow_type: WorkflowType::Snakemake,
            source_dir: root.display().to_string(),
            entry_point: "Snakefile".into(),
            files: vec!["Snakefile".into()],
            registered_digest: digest.clone(),
            manifest: manifest.to_json(),
            description: "benchmark".into(),
            registered_by: bench_subject(),
            at: now(),
        })
        .await?
        .map_err(|e| anyhow::anyhow!("register: {e:?}"))?;
    store
        .approve_workflow("bench", "1.0.0", &bench_subject(), &digest, false, now())
        .await?
        .map_err(|e| anyhow::anyhow!("approve: {e:?}"))?;
    Ok(())
}

fn run_dir_of(data: &Path, id: RunId) -> PathBuf {
    data.join(id.shard()).join(id.to_string())
}

fn log_dir_of(run_dir: &Path) -> PathBuf {
    run_dir.join(".weskit/2026-01-01T00-00-00")
}

/// A COMPLETE run in the store with its directory and small outputs; log.json only if asked.
async fn finished_run(w: &World, with_log: bool) -> anyhow::Result<RunId> {
    let id = RunId::new_random();
    let run_dir = run_dir_of(&w.data, id);
    let log_dir = log_dir_of(&run_dir);
    std::fs::create_dir_all(&log_dir)?;
    std::fs::create_dir_all(run_dir.join("plots"))?;
    std::fs::write(
        run_dir.join("results.csv"),
        "sample,n_calls,mean_qual,passing\nA,12,41.5,10\nB,9,33.0,7\n",
    )?;
    std::fs::write(run_dir.join("plots/quals.svg"), "<svg><rect/></svg>")?;
    std::fs::write(run_dir.join("calls.tsv"), "stays inside\n")?;
    w.store
        .insert_run(&NewRun {
            id,
            owner: bench_subject(),
            submission: RunSubmission {
                workflow_type: WorkflowType::Snakemake,
                workflow_type_version: "9".into(),
                workflow_url: WORKFLOW.into(),
                workflow_params: Default::default(),
                workflow_engine: "snakemake".into(),
                workflow_engine_version: None,
                workflow_engine_parameters: Default::default(),
                tags: Default::default(),
            },
            run_dir: run_dir.display().to_string(),
            created_at: now(),
        })
        .await?;
    let job: SlurmJobId = "1".parse().map_err(|e| anyhow::anyhow!("job id: {e:?}"))?;
    w.store
        .record_submission(id, &job, &log_dir.display().to_string(), now())
        .await?;
    w.store
        .transition(&Transition {
            run: id,
            from: &[RunState::Queued],
            to: RunState::Complete,
            actor: &spe_core::Actor::Service(spe_core::ServiceActor::Bench),
            reason: None,
            exit_code: Some(0),
            at: now(),
        })
        .await?
        .map_err(|e| anyhow::anyhow!("transition: {e:?}"))?;
    if with_log {
        std::fs::write(log_dir.join("log.json"), "{\"exit_code\": 0}")?;
    }
    Ok(id)
}

fn crawler(w: &World) -> Crawler {
    Crawler::new(
        w.store.clone(),
        w.bucket.clone(),
        Settings::from_config(&w.config),
        Arc::new(Metrics::default()),
    )
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// Peak resident set (VmHWM) of this process, in KiB.
fn vm_hwm_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

async fn latency(cli: &Cli, runs: usize) -> anyhow::Result<()> {
    let w = world(cli, true).await?;
    let mut ids = Vec::with_capacity(runs);
    for _ in 0..runs {
        ids.push(finished_run(&w, false).await?);
    }
    let c = crawler(&w);
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let _watcher = watch::start(&w.data, CrawlerWatch::Notify, Duration::from_secs(10), tx)
        .context("inotify watcher")?;
    tokio::spawn(service::notified_worker(c.clone(), rx));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut latencies = Vec::with_capacity(runs);
    for id in &ids {
        let log_dir = log_dir_of(&run_dir_of(&w.data, *id));
        let key = spe_core::bucket::manifest_key(*id);
        let started = Instant::now();
        std::fs::write(log_dir.join("log.json"), "{\"exit_code\": 0}")?;
        loop {
            if w.bucket.head(&key).await?.is_some() {
                break;
            }
            if started.elapsed() > Duration::from_secs(120) {
                bail!("run {id} not released within 120 s");
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        latencies.push(started.elapsed().as_secs_f64());
    }
    latencies.sort_by(f64::total_cmp);
    let mean = latencies.iter().sum::<f64>() / latencies.len() as f64;
    println!(
        "latency: {runs} runs, log.json written -> <run>/manifest.json visible (HEAD every 2 ms): \
         p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms, mean {:.1} ms",
        percentile(&latencies, 0.5) * 1e3,
        percentile(&latencies, 0.99) * 1e3,
        latencies.last().copied().unwrap_or(f64::NAN) * 1e3,
        mean * 1e3
    );
    Ok(())
}

async fn rescan(cli: &Cli, runs: usize, pending: usize) -> anyhow::Result<()> {
    let w = world(cli, true).await?;
    let started = Instant::now();
    // Finished runs, done long ago: rows (inserted in batches, egress_done = 1) and
    // directories with a log.json and two outputs each.
    let done = runs.saturating_sub(pending);
    let mut batch = Vec::with_capacity(1000);
    let at = now().micros();
    for i in 0..done {
        let id = RunId::new_random();
        let run_dir = run_dir_of(&w.data, id);
        let log_dir = log_dir_of(&run_dir);
        std::fs::create_dir_all(&log_dir)?;
        std::fs::write(log_dir.join("log.json"), "{\"exit_code\": 0}")?;
        std::fs::write(run_dir.join("results.csv"), "sample,n\nA,1\n")?;
        batch.push(format!(
            "('{id}', 'COMPLETE', 'bench', 'SMK', '9', '{WORKFLOW}', '{{}}', '{}', {at}, {at}, \
             {at}, '{}', 1, {at}, {at})",
            run_dir.display(),
            log_dir.display()
        ));
        if batch.len() == 1000 || i + 1 == done {
            w.store
                .debug_execute(&format!(
                    "INSERT INTO runs (id, state, owner, workflow_type, workflow_type_version, \
                     workflow_url, request_json, run_dir, created_at, updated_at, end_time, \
                     log_dir, egress_done, egress_scanned_at, egress_done_at) VALUES {}",
                    batch.join(", ")
                ))
                .await?;
            batch.clear();
        }
    }
    for _ in 0..pending {
        finished_run(&w, true).await?;
    }
    println!(
        "rescan: prepared {runs} finished runs ({pending} pending) in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    w.store.close().await;
    // `find` alone over the tree, as the cron script's first step.
    let t = Instant::now();
    let out = Command::new("find")
        .arg(&w.data)
        .args(["-name", "log.json"])
        .output()
        .context("find")?;
    let found = out.stdout.iter().filter(|b| **b == b'\n').count();
    println!(
        "rescan: `find <data_dir> -name log.json` (page cache warm): {found} files in {:.2} s",
        t.elapsed().as_secs_f64()
    );
    // The measured pass, in a fresh process so that its peak RSS is its own.
    let exe = std::env::current_exe()?;
    let status = Command::new(exe)
        .args(["--endpoint", &cli.endpoint, "--bucket", &cli.bucket])
        .arg("--workdir")
        .arg(&w.dir)
        .arg("rescan-pass")
        .status()?;
    if !status.success() {
        bail!("rescan-pass failed: {status}");
    }
    Ok(())
}

async fn rescan_pass(cli: &Cli) -> anyhow::Result<()> {
    let before = vm_hwm_kib();
    let w = world(cli, false).await?;
    let c = crawler(&w);
    let backlog = w.store.egress_backlog().await?;
    let t = Instant::now();
    let (done, waiting) = c.rescan().await?;
    let first = t.elapsed();
    let t = Instant::now();
    let (done2, waiting2) = c.rescan().await?;
    let second = t.elapsed();
    println!(
        "rescan: backlog {backlog}; first rescan {:.1} ms ({done} done, {waiting} waiting), \
         next rescan {:.1} ms ({done2} done, {waiting2} waiting); VmHWM {} KiB (at start {} KiB)",
        first.as_secs_f64() * 1e3,
        second.as_secs_f64() * 1e3,
        vm_hwm_kib().unwrap_or(0),
        before.unwrap_or(0)
    );
    Ok(())
}

async fn per_run(cli: &Cli, runs: usize) -> anyhow::Result<()> {
    let w = world(cli, true).await?;
    for _ in 0..runs {
        finished_run(&w, true).await?;
    }
    let c = crawler(&w);
    let t = Instant::now();
    let (done, waiting) = c.rescan().await?;
    let elapsed = t.elapsed().as_secs_f64();
    if done != runs || waiting != 0 {
        bail!("expected {runs} runs done, got {done} done and {waiting} waiting");
    }
    println!(
        "per-run: {runs} COMPLETE runs, 2 small files each (+ manifest.json), one rescan: \
         {:.2} s, {:.2} ms per released run",
        elapsed,
        elapsed * 1e3 / runs as f64
    );
    Ok(())
}

/// Deterministic, incompressible-looking bytes (xorshift), fast to make.
fn fill(buf: &mut [u8], seed: u64) {
    let mut x = seed | 1;
    for chunk in buf.chunks_mut(8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let bytes = x.to_le_bytes();
        chunk.copy_from_slice(&bytes[..chunk.len()]);
    }
}

async fn throughput(cli: &Cli, files: usize, mib: usize) -> anyhow::Result<()> {
    let w = world(cli, true).await?;
    let id = finished_run(&w, true).await?;
    let run_dir = run_dir_of(&w.data, id);
    let big = run_dir.join("big");
    std::fs::create_dir_all(&big)?;
    let mut buf = vec![0u8; mib * 1024 * 1024];
    for i in 0..files {
        fill(&mut buf, 0x9e37_79b9_7f4a_7c15 ^ i as u64);
        let mut f = std::fs::File::create(big.join(format!("part-{i:02}.bin")))?;
        f.write_all(&buf)?;
        f.sync_all()?;
    }
    drop(buf);
    let total_mib = (files * mib) as f64;
    let c = crawler(&w);
    let t = Instant::now();
    let outcome = c.process_run_id(id).await?;
    let secs = t.elapsed().as_secs_f64();
    if outcome != RunOutcome::Done {
        bail!("run not done: {outcome:?}");
    }
    println!(
        "throughput: results-crawler {files} x {mib} MiB (threshold {} MiB, parts {} MiB, \
         {} at once): {secs:.2} s, {:.0} MiB/s",
        w.config.multipart_threshold_bytes >> 20,
        w.config.multipart_part_bytes >> 20,
        w.config.upload_concurrency,
        total_mib / secs
    );
    // The CLI gets the same keys (through its environment, never printed).
    let key = |k: &Option<spe_core::secret::Secret>| {
        k.as_ref()
            .map(|s| s.expose().to_owned())
            .unwrap_or_default()
    };
    let (access, secret) = (key(&w.config.access_key), key(&w.config.secret_key));
    let aws = Command::new("aws").arg("--version").output();
    match aws {
        Ok(out) if out.status.success() => {
            let version = String::from_utf8_lossy(&out.stdout).trim().to_owned();
            let t = Instant::now();
            let status = Command::new("aws")
                .args(["s3", "cp", "--recursive", "--quiet"])
                .arg(&big)
                .arg(format!("s3://{}/bench-aws/{id}/", cli.bucket))
                .args(["--endpoint-url", &cli.endpoint])
                .env("AWS_ACCESS_KEY_ID", &access)
                .env("AWS_SECRET_ACCESS_KEY", &secret)
                .env("AWS_DEFAULT_REGION", "us-east-1")
                .status()?;
            let secs_aws = t.elapsed().as_secs_f64();
            if !status.success() {
                bail!("aws s3 cp failed: {status}");
            }
            println!(
                "throughput: `aws s3 cp --recursive` ({version}, defaults) same files: \
                 {secs_aws:.2} s, {:.0} MiB/s; crawler / aws = {:.2}x",
                total_mib / secs_aws,
                secs_aws / secs
            );
            // The 2 GiB both put in the bucket are removed again.
            for prefix in [format!("{id}/"), format!("bench-aws/{id}/")] {
                let _ = Command::new("aws")
                    .args(["s3", "rm", "--recursive", "--quiet"])
                    .arg(format!("s3://{}/{prefix}", cli.bucket))
                    .args(["--endpoint-url", &cli.endpoint])
                    .env("AWS_ACCESS_KEY_ID", &access)
                    .env("AWS_SECRET_ACCESS_KEY", &secret)
                    .env("AWS_DEFAULT_REGION", "us-east-1")
                    .status();
            }
        }
        _ => println!("throughput: `aws` not found on PATH: no comparison"),
    }
    let _ = std::fs::remove_dir_all(&big);
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        match &cli.cmd {
            Cmd::Latency { runs } => latency(&cli, *runs).await,
            Cmd::Rescan { runs, pending } => rescan(&cli, *runs, *pending).await,
            Cmd::RescanPass => rescan_pass(&cli).await,
            Cmd::PerRun { runs } => per_run(&cli, *runs).await,
            Cmd::Throughput { files, mib } => throughput(&cli, *files, *mib).await,
            Cmd::Takeover { mib } => takeover(&cli, *mib).await,
            Cmd::TakeoverChild { run } => takeover_child(&cli, run).await,
        }
    })
}

/// The person the benchmark's runs and workflow belong to.
fn bench_subject() -> spe_core::Subject {
    spe_core::Subject::local_dev_user()
}

async fn takeover(cli: &Cli, mib: usize) -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let dir = cli
        .workdir
        .clone()
        .unwrap_or_else(|| tmp.path().to_path_buf());
    let cli = Cli {
        endpoint: cli.endpoint.clone(),
        bucket: cli.bucket.clone(),
        workdir: Some(dir.clone()),
        cmd: Cmd::Takeover { mib },
    };
    let w = world(&cli, true).await?;
    let id = finished_run(&w, true).await?;
    let big = run_dir_of(&w.data, id).join("big");
    std::fs::create_dir_all(&big)?;
    let mut buf = vec![0u8; 64 * 1024 * 1024];
    let mut f = std::fs::File::create(big.join("part-00.bin"))?;
    for i in 0..mib.div_ceil(64) {
        fill(&mut buf, 0x51f1_5eed ^ i as u64);
        f.write_all(&buf)?;
    }
    f.sync_all()?;
    drop(buf);
    // The crawler to be killed, in its own process.
    let exe = std::env::current_exe()?;
    let mut child = Command::new(exe)
        .args(["--endpoint", &cli.endpoint, "--bucket", &cli.bucket])
        .arg("--workdir")
        .arg(&dir)
        .args(["takeover-child", &id.to_string()])
        .spawn()?;
    // Killed once its multipart upload has started and about a quarter of it is sent.
    let path = "big/part-00.bin";
    let started = Instant::now();
    loop {
        let f = w.store.egress_file(id, path).await?;
        if let Some(f) = f
            && f.upload_id.is_some()
            && started.elapsed() > Duration::from_millis(250)
        {
            // About a quarter of the file at the throughput measured above (~200 MiB/s).
            let quarter = (mib as u64 * 1024 * 1024) / 4;
            tokio::time::sleep(Duration::from_secs_f64(
                quarter as f64 / (200.0 * 1024.0 * 1024.0),
            ))
            .await;
            break;
        }
        if started.elapsed() > Duration::from_secs(120) {
            child.kill()?;
            bail!("the first crawler never started the multipart upload");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    child.kill()?; // SIGKILL
    child.wait()?;
    let killed_at = Instant::now();
    let lease_left = w
        .store
        .egress_file(id, path)
        .await?
        .and_then(|f| f.lease_until)
        .map(|t| (t.micros() - now().micros()) as f64 / 1e6)
        .unwrap_or(0.0);
    // The restart: a new crawler (new owner) working the run until its manifest is written.
    let c = crawler(&w);
    let restart = Instant::now();
    let mut taken = None;
    loop {
        let pass = tokio::spawn({
            let c = c.clone();
            async move { c.process_run_id(id).await }
        });
        // Watch for the takeover while the pass runs.
        while !pass.is_finished() {
            if taken.is_none()
                && let Some(f) = w.store.egress_file(id, path).await?
                && f.owner.as_deref() == Some(c.owner())
            {
                taken = Some(restart.elapsed());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        if pass.await?? == RunOutcome::Done {
            break;
        }
        if restart.elapsed() > Duration::from_secs(900) {
            bail!("not released 15 minutes after the restart");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let done = restart.elapsed();
    let manifest = w
        .bucket
        .get(&spe_core::bucket::manifest_key(id))
        .await?
        .context("no manifest object")?;
    println!(
        "takeover: {mib} MiB file, killed -9 {:.1} s into its upload with {lease_left:.1} s of \
         its {} s lease left; restart -> takeover {:.1} s, restart -> manifest.json {:.1} s \
         ({} bytes of manifest)",
        killed_at.duration_since(started).as_secs_f64(),
        w.config.lease_seconds,
        taken.map_or(f64::NAN, |t| t.as_secs_f64()),
        done.as_secs_f64(),
        manifest.len()
    );
    Ok(())
}

async fn takeover_child(cli: &Cli, run: &str) -> anyhow::Result<()> {
    let id: RunId = run
        .parse()
        .map_err(|_| anyhow::anyhow!("not a run id: {run}"))?;
    let w = world(cli, false).await?;
    crawler(&w).process_run_id(id).await?;
    Ok(())
}
