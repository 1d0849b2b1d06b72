//! `spe-bench http`: wes-api beside Sapporo (the GA4GH WES reference implementation) in one
//! run on the same machine, under the same load. wes-api is the real binary with bearer JWTs
//! from the OIDC test provider (tests/peers/oidc.sh), SQLite, Slurm off; Sapporo is started
//! with its one uvicorn worker, no authentication and a run script without Docker
//! (tests/bench/sapporo-run.sh). Reads go through wrk; submissions through this process.
//! Prints a Markdown table for docs/benchmarks.md. `--short` is the small run CI makes so the
//! harness cannot rot: it checks that every request succeeds, not how fast.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use futures_util::StreamExt;
use serde_json::{Value, json};

use crate::{bench_env, percentile, repo_root};

#[derive(clap::Args)]
pub struct HttpArgs {
    /// The wes-api binary (a release build for figures worth recording).
    #[arg(long, default_value = "target/release/wes-api")]
    wes_api: PathBuf,
    /// Sapporo's command (installed by tests/bench/http.sh).
    #[arg(long)]
    sapporo: PathBuf,
    /// Runs stored in each service before the reads are measured (by sequential POSTs).
    #[arg(long, default_value_t = 1000)]
    runs: usize,
    /// Repetitions of each wrk measurement (the table shows medians).
    #[arg(long, default_value_t = 3)]
    reps: usize,
    /// Seconds per wrk measurement.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Submissions in the concurrent burst.
    #[arg(long, default_value_t = 1000)]
    burst: usize,
    /// Runs in wes-api's store for the large-store rows (0: leave them out).
    #[arg(long, default_value_t = 1_000_000)]
    large_store: usize,
    /// The small run for CI: 50 runs, one 2-second repetition, a burst of 100, 20,000 stored.
    #[arg(long)]
    short: bool,
}

/// What one wrk measurement reports.
#[derive(Clone, Debug, Default)]
struct Load {
    per_second: f64,
    p50_ms: f64,
    p99_ms: f64,
    /// Socket errors (connect, read, write, timeout) and non-2xx answers.
    errors: u64,
}

/// Submissions measured from this process.
struct Submissions {
    per_second: f64,
    p50_ms: f64,
    p99_ms: f64,
    ids: Vec<String>,
}

pub async fn run(mut args: HttpArgs) -> anyhow::Result<()> {
    if args.short {
        args.runs = 50;
        args.reps = 1;
        args.seconds = 2;
        args.burst = 100;
        args.large_store = 20_000;
    }
    let issuer = std::env::var("SPE_TEST_OIDC_URL")
        .unwrap_or_else(|_| "http://127.0.0.1:59100".to_owned())
        .trim_end_matches('/')
        .to_owned();
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()?;
    let dir = tempfile::tempdir()?;
    let mut rows: Vec<String> = Vec::new();
    let mut failures: Vec<String> = Vec::new();

    // wes-api, with 1,000 runs submitted one after the other.
    let mut wes = Service::wes_api(&args.wes_api, dir.path())?;
    let wes_base = format!("http://127.0.0.1:{}/ga4gh/wes/v1", wes.port);
    let controller = token(&client, &issuer, "controller").await?;
    register_quals(&client, &wes_base, &controller).await?;
    let researcher = token(&client, &issuer, "researcher").await?;
    let wes_seq = sequential(args.runs, |i| {
        wes_submit(&client, &wes_base, &researcher, i)
    })
    .await?;

    // Sapporo, with the same.
    let sapporo = Service::sapporo(&args.sapporo, dir.path())?;
    let sap_base = format!("http://127.0.0.1:{}", sapporo.port);
    wait_until_up(&client, &format!("{sap_base}/service-info")).await?;
    let attachment = std::fs::read(repo_root().join("workflows/quals/Snakefile"))
        .context("workflows/quals/Snakefile")?;
    let sap_seq = sequential(args.runs, |i| {
        sapporo_submit(&client, &sap_base, &attachment, i)
    })
    .await?;

    let wes_run = wes_seq.ids.last().cloned().unwrap_or_default();
    let sap_run = sap_seq.ids.last().cloned().unwrap_or_default();
    let reads: [(&str, u32, String, String, Option<Target>); 4] = [
        (
            "GET /runs/{id}/status",
            64,
            format!("{wes_base}/runs/{wes_run}/status"),
            format!("{sap_base}/runs/{sap_run}/status"),
            Some(Target::Ratio(30.0)),
        ),
        (
            "GET /runs/{id}/status",
            256,
            format!("{wes_base}/runs/{wes_run}/status"),
            format!("{sap_base}/runs/{sap_run}/status"),
            Some(Target::P99Under(20.0)),
        ),
        (
            "GET /runs (page of 10)",
            64,
            format!("{wes_base}/runs?page_size=10"),
            format!("{sap_base}/runs?page_size=10"),
            Some(Target::Ratio(30.0)),
        ),
        (
            "GET /service-info",
            64,
            format!("{wes_base}/service-info"),
            format!("{sap_base}/service-info"),
            None,
        ),
    ];
    rows.push(format!(
        "| {} sequential POST /runs, one client | {:.0} runs/s, p50 {:.1} ms | {:.0} runs/s, p50 {:.1} ms, p99 {:.1} ms | {:.1}x | 10x: {} |",
        args.runs,
        sap_seq.per_second,
        sap_seq.p50_ms,
        wes_seq.per_second,
        wes_seq.p50_ms,
        wes_seq.p99_ms,
        wes_seq.per_second / sap_seq.per_second,
        met(wes_seq.per_second >= 10.0 * sap_seq.per_second),
    ));
    for (what, connections, wes_url, sap_url, target) in reads {
        let token = token(&client, &issuer, "researcher").await?;
        let ours = median_load(&wes_url, connections, Some(&token), &args).await?;
        let theirs = median_load(&sap_url, connections, None, &args).await?;
        if ours.errors > 0 {
            failures.push(format!(
                "{what} at {connections} connections: {} errors",
                ours.errors
            ));
        }
        let ratio = ours.per_second / theirs.per_second;
        let verdict = match target {
            Some(Target::Ratio(r)) => format!("{r:.0}x: {}", met(ratio >= r && ours.errors == 0)),
            Some(Target::P99Under(ms)) => format!(
                "p99 < {ms:.0} ms, no errors: {}",
                met(ours.p99_ms < ms && ours.errors == 0)
            ),
            None => "-".to_owned(),
        };
        rows.push(format!(
            "| {what}, {connections} connections | {} | {} | {ratio:.1}x | {verdict} |",
            theirs.cell(),
            ours.cell(),
        ));
    }

    // The web UI's pages, rendered server-side with the runs above stored (the issue's 1,000),
    // at 4 connections so that the latency is the rendering rather than a queue. A bearer
    // token stands for the browser session (the same caller resolution).
    let site = wes_base.trim_end_matches("/ga4gh/wes/v1").to_owned();
    let researcher_token = token(&client, &issuer, "researcher").await?;
    let controller_token = token(&client, &issuer, "controller").await?;
    let pages = [
        ("/".to_owned(), &researcher_token),
        ("/ui/runs".to_owned(), &researcher_token),
        ("/ui/runs?state=QUEUED".to_owned(), &researcher_token),
        (format!("/ui/runs/{wes_run}"), &researcher_token),
        ("/ui/submit/quals/1.0.0".to_owned(), &researcher_token),
        ("/ui/results".to_owned(), &researcher_token),
        (format!("/ui/results/{wes_run}"), &researcher_token),
        ("/ui/reviews".to_owned(), &controller_token),
        ("/ui/workflows".to_owned(), &controller_token),
        ("/ui/workflows/quals/1.0.0".to_owned(), &controller_token),
        ("/ui/datasets".to_owned(), &controller_token),
        ("/ui/audit".to_owned(), &controller_token),
    ];
    for (path, token) in pages {
        let load = median_load(&format!("{site}{path}"), 4, Some(token.as_str()), &args).await?;
        if load.errors > 0 {
            failures.push(format!("UI page {path}: {} errors", load.errors));
        }
        let shown = path.replace(&wes_run, "{id}");
        rows.push(format!(
            "| UI page GET {shown}, 4 connections, {} runs stored | - | {} | - | p99 < 20 ms: {} |",
            args.runs,
            load.cell(),
            met(load.p99_ms < 20.0 && load.errors == 0),
        ));
    }
    // The audit chain's verification, which the audit page loads after itself: it reads and
    // checks every record, so it is measured but not held to a page's target.
    let verification = "/ui/audit/verification";
    let load = median_load(
        &format!("{site}{verification}"),
        4,
        Some(controller_token.as_str()),
        &args,
    )
    .await?;
    if load.errors > 0 {
        failures.push(format!("{verification}: {} errors", load.errors));
    }
    rows.push(format!(
        "| UI GET {verification} (the whole chain), 4 connections, {} runs stored | - | {} | - | - |",
        args.runs,
        load.cell(),
    ));

    // Bursts of concurrent submissions: all at once, then 64 in flight. wes-api's first, then
    // Sapporo's, whose run scripts (a process per run) would otherwise still be running while
    // wes-api is measured.
    let bursts = [args.burst, 64.min(args.burst)];
    let mut submitted = args.runs;
    let mut ours = Vec::new();
    for in_flight in bursts {
        let researcher = token(&client, &issuer, "researcher").await?;
        let burst = concurrent(args.burst, in_flight, |i| {
            wes_submit(&client, &wes_base, &researcher, submitted + i)
        })
        .await?;
        submitted += args.burst;
        let held = wes_held(&client, &wes_base, &researcher).await?;
        if held != submitted as i64 {
            failures.push(format!(
                "wes-api holds {held} runs after the burst, not {submitted}"
            ));
        }
        ours.push((burst, held, submitted as i64));
    }
    for (in_flight, (wes_burst, held, expected)) in bursts.into_iter().zip(ours) {
        let sap_burst = concurrent(args.burst, in_flight, |i| {
            sapporo_submit(&client, &sap_base, &attachment, i)
        })
        .await?;
        let how = if in_flight >= args.burst {
            "all at once".to_owned()
        } else {
            format!("{in_flight} in flight")
        };
        rows.push(format!(
            "| burst of {} concurrent POST /runs, {how} | {:.0} runs/s, p50 {:.1} ms | {:.0} runs/s, p50 {:.1} ms, p99 {:.1} ms; {held} of {expected} runs stored | {:.1}x | p50 < 50 ms, none lost: {} |",
            args.burst,
            sap_burst.per_second,
            sap_burst.p50_ms,
            wes_burst.per_second,
            wes_burst.p50_ms,
            wes_burst.p99_ms,
            wes_burst.per_second / sap_burst.per_second,
            met(wes_burst.p50_ms < 50.0 && held == expected),
        ));
    }
    let mut peak_kib = wes.peak_rss_kib();
    drop(sapporo);
    wes.stop();

    // The large store: wes-api restarted on the same database with many more runs.
    if args.large_store > 0 {
        let added = args.large_store.saturating_sub(submitted);
        let t = Instant::now();
        seed(&dir.path().join("spe.db"), &wes_run, added).await?;
        eprintln!("seeded {added} runs in {:.1} s", t.elapsed().as_secs_f64());
        let mut wes = Service::wes_api(&args.wes_api, dir.path())?;
        let base = format!("http://127.0.0.1:{}/ga4gh/wes/v1", wes.port);
        let token = token(&client, &issuer, "researcher").await?;
        let list = median_load(
            &format!("{base}/runs?page_size=10"),
            64,
            Some(&token),
            &args,
        )
        .await?;
        let info = median_load(&format!("{base}/service-info"), 64, Some(&token), &args).await?;
        for (what, load) in [
            ("GET /runs (page of 10)", &list),
            ("GET /service-info", &info),
        ] {
            if load.errors > 0 {
                failures.push(format!(
                    "{what} with {} runs stored: {} errors",
                    args.large_store, load.errors
                ));
            }
        }
        rows.push(format!(
            "| GET /runs (page of 10), 64 connections, {} runs stored | - | {} | - | p99 < 20 ms: {} |",
            args.large_store,
            list.cell(),
            met(list.p99_ms < 20.0 && list.errors == 0),
        ));
        rows.push(format!(
            "| GET /service-info (state counts), 64 connections, {} runs stored | - | {} | - | - |",
            args.large_store,
            info.cell(),
        ));
        peak_kib = peak_kib.max(wes.peak_rss_kib());
        wes.stop();
    }

    println!("{}", machine(&args).await);
    println!();
    println!("| request | Sapporo | wes-api, bearer JWT | ratio | target |");
    println!("|---|---|---|---|---|");
    for row in rows {
        if args.short {
            // Small sizes on a debug build: the figures prove the harness runs, nothing more.
            let cells = row
                .trim_end_matches('|')
                .rsplit_once('|')
                .map_or(row.as_str(), |(head, _)| head);
            println!("{cells}| not judged (short mode) |");
        } else {
            println!("{row}");
        }
    }
    println!(
        "| peak RSS of wes-api over all of the above | - | {:.1} MiB | - | - |",
        peak_kib as f64 / 1024.0
    );
    if !failures.is_empty() {
        bail!("requests failed: {}", failures.join("; "));
    }
    Ok(())
}

enum Target {
    Ratio(f64),
    P99Under(f64),
}

fn met(yes: bool) -> &'static str {
    if yes { "met" } else { "not met" }
}

impl Load {
    fn cell(&self) -> String {
        let errors = if self.errors > 0 {
            format!(", {} errors", self.errors)
        } else {
            String::new()
        };
        format!(
            "{:.0} req/s, p50 {:.1} ms, p99 {:.1} ms{errors}",
            self.per_second, self.p50_ms, self.p99_ms
        )
    }
}

/// A service this harness started; killed when dropped.
struct Service {
    child: Child,
    port: u16,
}

impl Service {
    /// wes-api on the dev config with the benchmark's overrides, its database and data folder
    /// in `dir`, logging at `info` (as deployed) to a file there.
    fn wes_api(bin: &Path, dir: &Path) -> anyhow::Result<Service> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("wes-api.log"))?;
        let mut child = Command::new(bin)
            .args([
                "--config",
                "deploy/config/spe.dev.yaml",
                "--listen",
                "127.0.0.1:0",
            ])
            .current_dir(repo_root())
            .envs(bench_env(dir))
            .env("SPE__SLURM__ENABLED", "false")
            .env("SPE__LOGGING__LEVEL", "info")
            .env("SPE__LOGGING__FORMAT", "json")
            .env_remove("SPE__AUTH")
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .with_context(|| format!("cannot start {}", bin.display()))?;
        let mut line = String::new();
        if let Some(stdout) = child.stdout.take() {
            BufReader::new(stdout).read_line(&mut line)?;
        }
        let port = line
            .split_whitespace()
            .last()
            .and_then(|p| p.parse().ok())
            .with_context(|| {
                format!(
                    "wes-api did not say where it listens (log: {})",
                    dir.join("wes-api.log").display()
                )
            })?;
        Ok(Service { child, port })
    }

    /// Sapporo on a free port, its runs under `dir/sapporo`, run by tests/bench/sapporo-run.sh.
    fn sapporo(bin: &Path, dir: &Path) -> anyhow::Result<Service> {
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let runs = dir.join("sapporo");
        std::fs::create_dir_all(&runs)?;
        let log = std::fs::File::create(dir.join("sapporo.log"))?;
        let child = Command::new(bin)
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .arg("--run-dir")
            .arg(&runs)
            .arg("--run-sh")
            .arg(repo_root().join("tests/bench/sapporo-run.sh"))
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("cannot start {}", bin.display()))?;
        Ok(Service { child, port })
    }

    /// The child's peak resident set (`VmHWM`), in KiB.
    fn peak_rss_kib(&self) -> u64 {
        std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .ok()
            .and_then(|status| {
                status
                    .lines()
                    .find_map(|l| l.strip_prefix("VmHWM:"))
                    .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            })
            .unwrap_or(0)
    }

    fn stop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        for _ in 0..100 {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn wait_until_up(client: &reqwest::Client, url: &str) -> anyhow::Result<()> {
    for _ in 0..300 {
        if let Ok(res) = client.get(url).send().await
            && res.status().is_success()
        {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!("{url} did not answer within 30 s")
}

/// An access token for `user` from the OIDC test provider's test-only grant
/// (tests/peers/oidc-token.sh does the same).
async fn token(client: &reqwest::Client, issuer: &str, user: &str) -> anyhow::Result<String> {
    let answer: Value = client
        .post(format!("{issuer}/token"))
        .basic_auth("spe-test", Some("spe-test-secret"))
        .form(&[
            ("grant_type", "urn:spe:test:user"),
            ("user", user),
            ("resource", "urn:spe:api"),
        ])
        .send()
        .await
        .with_context(|| format!("the OIDC test provider at {issuer} (tests/peers/oidc.sh)"))?
        .error_for_status()?
        .json()
        .await?;
    answer["access_token"]
        .as_str()
        .map(str::to_owned)
        .with_context(|| format!("no access token for {user}"))
}

async fn register_quals(client: &reqwest::Client, base: &str, token: &str) -> anyhow::Result<()> {
    let source = std::fs::canonicalize(repo_root().join("workflows/quals"))?;
    let res = client
        .post(format!("{base}/admin/workflows"))
        .bearer_auth(token)
        .json(&json!({ "source_dir": source }))
        .send()
        .await?;
    if !res.status().is_success() {
        bail!("register quals: {}", res.text().await?);
    }
    let res = client
        .post(format!("{base}/admin/workflows/quals/1.0.0/approve"))
        .bearer_auth(token)
        .json(&json!({}))
        .send()
        .await?;
    if !res.status().is_success() {
        bail!("approve quals: {}", res.text().await?);
    }
    Ok(())
}

async fn wes_submit(
    client: &reqwest::Client,
    base: &str,
    token: &str,
    i: usize,
) -> anyhow::Result<String> {
    let form = reqwest::multipart::Form::new()
        .text("workflow_type", "SMK")
        .text("workflow_type_version", "9")
        .text("workflow_url", "quals@1.0.0")
        .text("workflow_params", r#"{"min_qual": 20}"#)
        .text("tags", format!(r#"{{"bench": "{i}"}}"#));
    let res = client
        .post(format!("{base}/runs"))
        .bearer_auth(token)
        .multipart(form)
        .send()
        .await?;
    run_id(res).await
}

async fn sapporo_submit(
    client: &reqwest::Client,
    base: &str,
    snakefile: &[u8],
    i: usize,
) -> anyhow::Result<String> {
    let form = reqwest::multipart::Form::new()
        .text("workflow_type", "SMK")
        .text("workflow_type_version", "1.0")
        .text("workflow_engine", "snakemake")
        .text("workflow_url", "Snakefile")
        .text("workflow_params", r#"{"min_qual": 20}"#)
        .text("tags", format!(r#"{{"bench": "{i}"}}"#))
        .part(
            "workflow_attachment",
            reqwest::multipart::Part::bytes(snakefile.to_vec()).file_name("Snakefile"),
        );
    let res = client
        .post(format!("{base}/runs"))
        .multipart(form)
        .send()
        .await?;
    run_id(res).await
}

async fn run_id(res: reqwest::Response) -> anyhow::Result<String> {
    let status = res.status();
    let body = res.text().await?;
    if status != 200 {
        bail!("POST /runs: {status}: {body}");
    }
    let answer: Value = serde_json::from_str(&body)?;
    answer["run_id"]
        .as_str()
        .map(str::to_owned)
        .with_context(|| format!("no run_id in {body}"))
}

async fn sequential<F, Fut>(n: usize, submit: F) -> anyhow::Result<Submissions>
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<String>>,
{
    let started = Instant::now();
    let mut latencies = Vec::with_capacity(n);
    let mut ids = Vec::with_capacity(n);
    for i in 0..n {
        let t = Instant::now();
        ids.push(submit(i).await?);
        latencies.push(t.elapsed());
    }
    Ok(summarise(latencies, ids, started.elapsed()))
}

async fn concurrent<F, Fut>(n: usize, in_flight: usize, submit: F) -> anyhow::Result<Submissions>
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<String>>,
{
    let started = Instant::now();
    let results: Vec<anyhow::Result<(String, Duration)>> = futures_util::stream::iter(0..n)
        .map(|i| {
            let t = Instant::now();
            let fut = submit(i);
            async move { fut.await.map(|id| (id, t.elapsed())) }
        })
        .buffer_unordered(in_flight.max(1))
        .collect()
        .await;
    let total = started.elapsed();
    let (ids, latencies): (Vec<String>, Vec<Duration>) = results
        .into_iter()
        .collect::<Result<Vec<_>, _>>()?
        .into_iter()
        .unzip();
    Ok(summarise(latencies, ids, total))
}

fn summarise(mut latencies: Vec<Duration>, ids: Vec<String>, total: Duration) -> Submissions {
    latencies.sort();
    Submissions {
        per_second: ids.len() as f64 / total.as_secs_f64(),
        p50_ms: percentile(&latencies, 0.5).as_secs_f64() * 1e3,
        p99_ms: percentile(&latencies, 0.99).as_secs_f64() * 1e3,
        ids,
    }
}

/// How many runs wes-api holds, all states together (service-info's counts).
async fn wes_held(client: &reqwest::Client, base: &str, token: &str) -> anyhow::Result<i64> {
    let info: Value = client
        .get(format!("{base}/service-info"))
        .bearer_auth(token)
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    Ok(info["system_state_counts"]
        .as_object()
        .map(|counts| counts.values().filter_map(Value::as_i64).sum())
        .unwrap_or(0))
}

/// The median of `reps` wrk measurements of one URL (each figure's median on its own).
async fn median_load(
    url: &str,
    connections: u32,
    token: Option<&str>,
    args: &HttpArgs,
) -> anyhow::Result<Load> {
    let mut loads = Vec::with_capacity(args.reps);
    for _ in 0..args.reps.max(1) {
        loads.push(wrk(url, connections, token, args.seconds).await?);
    }
    let median = |f: fn(&Load) -> f64| {
        let mut v: Vec<f64> = loads.iter().map(f).collect();
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    Ok(Load {
        per_second: median(|l| l.per_second),
        p50_ms: median(|l| l.p50_ms),
        p99_ms: median(|l| l.p99_ms),
        errors: loads.iter().map(|l| l.errors).sum(),
    })
}

async fn wrk(
    url: &str,
    connections: u32,
    token: Option<&str>,
    seconds: u64,
) -> anyhow::Result<Load> {
    let mut command = tokio::process::Command::new("wrk");
    command.args([
        "-t2",
        &format!("-c{connections}"),
        &format!("-d{seconds}s"),
        "--timeout",
        "10s",
        "--latency",
    ]);
    if let Some(token) = token {
        command.args(["-H", &format!("Authorization: Bearer {token}")]);
    }
    command.arg(url);
    let out = command
        .output()
        .await
        .context("wrk (Debian package wrk; tests/bench/http.sh installs it)")?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        bail!("wrk {url}: {}", String::from_utf8_lossy(&out.stderr));
    }
    parse_wrk(&text).with_context(|| format!("wrk's report for {url}: {text}"))
}

fn parse_wrk(text: &str) -> Option<Load> {
    let mut load = Load::default();
    let mut seen_rate = false;
    for line in text.lines().map(str::trim) {
        let mut words = line.split_whitespace();
        match words.next() {
            Some("Requests/sec:") => {
                load.per_second = words.next()?.parse().ok()?;
                seen_rate = true;
            }
            Some("50%") => load.p50_ms = millis(words.next()?)?,
            Some("99%") => load.p99_ms = millis(words.next()?)?,
            Some("Socket") => {
                // Socket errors: connect 0, read 0, write 0, timeout 12
                load.errors += line
                    .split(|c: char| !c.is_ascii_digit())
                    .filter_map(|n| n.parse::<u64>().ok())
                    .sum::<u64>();
            }
            Some("Non-2xx") => {
                load.errors += line.rsplit(' ').next()?.parse::<u64>().ok()?;
            }
            _ => {}
        }
    }
    seen_rate.then_some(load)
}

/// wrk's durations: `812.00us`, `4.80ms`, `1.02s`, `2.00m`.
fn millis(text: &str) -> Option<f64> {
    let split = text.find(|c: char| c.is_ascii_alphabetic())?;
    let (n, unit) = text.split_at(split);
    let n: f64 = n.parse().ok()?;
    Some(match unit {
        "us" => n / 1e3,
        "ms" => n,
        "s" => n * 1e3,
        "m" => n * 60e3,
        _ => return None,
    })
}

/// Adds `n` runs to wes-api's SQLite store (stopped) as copies of run `template`, each with
/// its own id and an earlier creation time, in one statement: the store holds what a busy
/// deployment would after years, without submitting each.
async fn seed(db: &Path, template: &str, n: usize) -> anyhow::Result<()> {
    use sqlx::Row;
    use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};
    let options = SqliteConnectOptions::new().filename(db);
    let pool = SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(options)
        .await?;
    let columns: Vec<String> = sqlx::query("SELECT name FROM pragma_table_info('runs')")
        .fetch_all(&pool)
        .await?
        .iter()
        .map(|r| r.try_get::<String, _>("name"))
        .collect::<Result<_, _>>()?;
    let select: Vec<String> = columns
        .iter()
        .map(|c| match c.as_str() {
            // A UUID of the seed's own (version 4 layout, the counter in its last group).
            "id" => "printf('%08x-0000-4000-8000-%012x', 0x5eed, n.i)".to_owned(),
            "created_at" => "t.created_at - n.i * 1000".to_owned(),
            other => format!("t.{other}"),
        })
        .collect();
    let sql = format!(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $1) \
         INSERT INTO runs ({}) SELECT {} FROM n, (SELECT * FROM runs WHERE id = $2) AS t",
        columns.join(", "),
        select.join(", ")
    );
    let done = sqlx::query(&sql)
        .bind(n as i64)
        .bind(template)
        .execute(&pool)
        .await?;
    if done.rows_affected() != n as u64 {
        bail!("seeded {} runs, not {n}", done.rows_affected());
    }
    pool.close().await;
    Ok(())
}

/// The machine and versions, for the record.
async fn machine(args: &HttpArgs) -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find_map(|l| l.strip_prefix("model name"))
                .map(|m| m.trim_start_matches([' ', '\t', ':']).to_owned())
        })
        .unwrap_or_default();
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let version = |cmd: &Path, args: &[&str]| {
        Command::new(cmd)
            .args(args)
            .output()
            .map(|o| {
                let text = format!(
                    "{}{}",
                    String::from_utf8_lossy(&o.stdout),
                    String::from_utf8_lossy(&o.stderr)
                );
                text.lines().next().unwrap_or_default().trim().to_owned()
            })
            .unwrap_or_else(|e| e.to_string())
    };
    let python = args.sapporo.with_file_name("python");
    format!(
        "machine: {cores} cores, {cpu}; {}; sapporo {}; {}; {} runs stored by sequential POSTs, \
         wrk -t2 for {} s, median of {}",
        version(&args.wes_api, &["--version"]),
        version(
            &python,
            &[
                "-c",
                "import importlib.metadata as m; print(m.version('sapporo'))"
            ]
        ),
        version(Path::new("wrk"), &["-v"]),
        args.runs,
        args.seconds,
        args.reps,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_wrk_reports() {
        let report = "Running 2s test @ http://127.0.0.1:1/x
  2 threads and 64 connections
  Latency Distribution
     50%  812.00us
     75%    1.20ms
     90%    2.00ms
     99%    1.02s
  24000 requests in 2.00s, 3.00MB read
  Socket errors: connect 0, read 2, write 0, timeout 12
  Non-2xx or 3xx responses: 5
Requests/sec:  12000.50
Transfer/sec:      1.50MB
";
        let load = parse_wrk(report).unwrap();
        assert_eq!(load.per_second, 12000.5);
        assert_eq!(load.p50_ms, 0.812);
        assert_eq!(load.p99_ms, 1020.0);
        assert_eq!(load.errors, 19);
        assert!(parse_wrk("unable to connect to 127.0.0.1:1").is_none());
    }
}
