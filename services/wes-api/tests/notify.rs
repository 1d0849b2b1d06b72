//! Notifications from the real wes-api binary (port 0, authentication off, Slurm off) to a real
//! HTTP receiver on 127.0.0.1: a run that ends (a queued run cancelled) is announced once,
//! signed; after a SIGKILL and a restart on the same database, the next run's end is announced
//! and nothing already delivered is sent again (docs/notifications.md).

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use spe_test_support::process::Service;
use spe_test_support::repo_root;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const SECRET: &str = "a-webhook-secret-for-tests";

type Got = Arc<Mutex<Vec<(BTreeMap<String, String>, Vec<u8>)>>>;

/// A real HTTP/1.1 receiver answering 200 to every request, recording headers and body.
async fn receiver() -> (u16, Got) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let got: Got = Arc::default();
    let sink = got.clone();
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            let sink = sink.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    let n = conn.read(&mut chunk).await.unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
                        continue;
                    };
                    let head = String::from_utf8_lossy(&buf[..end]).to_string();
                    let headers: BTreeMap<String, String> = head
                        .lines()
                        .skip(1)
                        .filter_map(|l| l.split_once(':'))
                        .map(|(k, v)| (k.trim().to_lowercase(), v.trim().to_owned()))
                        .collect();
                    let length: usize = headers
                        .get("content-length")
                        .and_then(|v| v.parse().ok())
                        .unwrap_or(0);
                    if buf.len() < end + 4 + length {
                        continue;
                    }
                    let body = buf[end + 4..end + 4 + length].to_vec();
                    sink.lock().unwrap().push((headers, body));
                    let _ = conn
                        .write_all(
                            b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                        )
                        .await;
                    return;
                }
            });
        }
    });
    (port, got)
}

fn start(dir: &Path, config: &Path) -> Service {
    let mut command = Command::new(env!("CARGO_BIN_EXE_wes-api"));
    command
        .args([
            "--config",
            &config.display().to_string(),
            "--listen",
            "127.0.0.1:0",
        ])
        .current_dir(repo_root())
        .env(
            "SPE__DATABASE__URL",
            format!("sqlite://{}/spe.db", dir.display()),
        )
        .env("SPE__DATA_DIR", dir.join("runs"))
        .env("SPE__AUTH", "disabled")
        .env("SPE__SLURM__ENABLED", "false")
        .env("SPE_TEST_HOOK_SECRET", SECRET);
    Service::start(command)
}

async fn call(base: &str, method: &str, path: &str, body: Value) -> Value {
    let http = reqwest::Client::new();
    let url = format!("{base}/ga4gh/wes/v1{path}");
    let req = match method {
        "POST" => http.post(url).json(&body),
        _ => http.get(url),
    };
    let res = req.send().await.unwrap();
    assert!(
        res.status().is_success(),
        "{method} {path}: {}",
        res.status()
    );
    res.json().await.unwrap_or(Value::Null)
}

/// Submits a run of quals@1.0.0 and cancels it before any submission to Slurm: it ends.
async fn ended_run(base: &str) -> String {
    let run = call(
        base,
        "POST",
        "/runs",
        json!({"workflow_type": "SMK", "workflow_type_version": "9",
               "workflow_url": "quals@1.0.0", "workflow_params": {}}),
    )
    .await["run_id"]
        .as_str()
        .unwrap()
        .to_owned();
    call(base, "POST", &format!("/runs/{run}/cancel"), json!({})).await;
    run
}

async fn wait_for(got: &Got, n: usize) {
    for _ in 0..100 {
        if got.lock().unwrap().len() >= n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "{n} notifications did not arrive: {:?}",
        got.lock().unwrap().len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_ends_are_announced_once_across_a_kill_9_and_restart() {
    let (port, got) = receiver().await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("spe.yaml");
    let yaml = spe_test_support::dev_config::dev_yaml()
        + &format!(
            "\nnotifications:\n  public_url: \"https://spe.example.org\"\n  poll_every_millis: 100\n  \
             webhooks:\n    - {{ name: ops, url: \"http://127.0.0.1:{port}/hook\", secret_env: SPE_TEST_HOOK_SECRET }}\n"
        );
    std::fs::write(&config, yaml).unwrap();

    let first = start(dir.path(), &config);
    let base = format!("http://127.0.0.1:{}", first.port());
    let wf = call(
        &base,
        "POST",
        "/admin/workflows",
        json!({"source_dir": repo_root().join("workflows/quals")}),
    )
    .await;
    assert_eq!(wf["name"], "quals");
    call(
        &base,
        "POST",
        "/admin/workflows/quals/1.0.0/approve",
        json!({}),
    )
    .await;
    let run1 = ended_run(&base).await;
    wait_for(&got, 1).await;
    first.kill9();

    let second = start(dir.path(), &config);
    let base = format!("http://127.0.0.1:{}", second.port());
    let run2 = ended_run(&base).await;
    wait_for(&got, 2).await;
    // Several more polls: nothing is sent again.
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    second.kill9();

    let got = got.lock().unwrap().clone();
    assert_eq!(got.len(), 2, "a notification was sent twice");
    let mut runs = Vec::new();
    for (headers, body) in &got {
        assert!(spe_notify::verify_signature(
            SECRET.as_bytes(),
            body,
            &headers["x-spe-signature"]
        ));
        let v: Value = serde_json::from_slice(body).unwrap();
        assert_eq!(v["event"], "run_ended");
        assert_eq!(v["run_state"], "CANCELED");
        assert_eq!(
            v["link"],
            format!(
                "https://spe.example.org/ga4gh/wes/v1/runs/{}",
                v["run_id"].as_str().unwrap()
            )
        );
        runs.push(v["run_id"].as_str().unwrap().to_owned());
    }
    assert_eq!(runs, [run1, run2]);
}
