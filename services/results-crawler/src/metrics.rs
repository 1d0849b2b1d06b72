//! Prometheus metrics of the crawler, served as text at `/metrics`.

use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// Upper bounds (seconds) of the release-latency histogram buckets.
const LATENCY_BUCKETS: &[f64] = &[
    0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0,
];

#[derive(Default)]
struct Histogram {
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

#[derive(Default)]
pub struct Metrics {
    pub files_released: AtomicU64,
    pub bytes_released: AtomicU64,
    pub files_held: AtomicU64,
    pub bytes_held: AtomicU64,
    pub files_refused: AtomicU64,
    pub bytes_refused: AtomicU64,
    pub changed_during_upload: AtomicU64,
    pub errors_s3: AtomicU64,
    pub errors_store: AtomicU64,
    pub errors_fs: AtomicU64,
    pub rescans: AtomicU64,
    pub runs_done: AtomicU64,
    pub backlog_runs: AtomicI64,
    latency: Mutex<Histogram>,
}

impl Metrics {
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub fn observe_latency(&self, seconds: f64) {
        if let Ok(mut h) = self.latency.lock() {
            if h.counts.is_empty() {
                h.counts = vec![0; LATENCY_BUCKETS.len()];
            }
            for (i, bound) in LATENCY_BUCKETS.iter().enumerate() {
                if seconds <= *bound {
                    h.counts[i] += 1;
                }
            }
            h.sum += seconds;
            h.count += 1;
        }
    }

    /// The Prometheus text exposition (version 0.0.4).
    pub fn render(&self) -> String {
        let mut out = String::new();
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let mut counter = |name: &str, help: &str, samples: &[(&str, u64)]| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
            for (labels, v) in samples {
                let _ = writeln!(out, "{name}{labels} {v}");
            }
        };
        counter(
            "spe_crawler_files_total",
            "Output files settled, by outcome.",
            &[
                ("{outcome=\"released\"}", get(&self.files_released)),
                ("{outcome=\"held\"}", get(&self.files_held)),
                ("{outcome=\"refused\"}", get(&self.files_refused)),
            ],
        );
        counter(
            "spe_crawler_bytes_total",
            "Bytes of output files settled, by outcome.",
            &[
                ("{outcome=\"released\"}", get(&self.bytes_released)),
                ("{outcome=\"held\"}", get(&self.bytes_held)),
                ("{outcome=\"refused\"}", get(&self.bytes_refused)),
            ],
        );
        counter(
            "spe_crawler_changed_during_upload_total",
            "Files that changed while being uploaded (not released).",
            &[("", get(&self.changed_during_upload))],
        );
        counter(
            "spe_crawler_errors_total",
            "Errors, by where they happened (retried).",
            &[
                ("{kind=\"s3\"}", get(&self.errors_s3)),
                ("{kind=\"store\"}", get(&self.errors_store)),
                ("{kind=\"fs\"}", get(&self.errors_fs)),
            ],
        );
        counter(
            "spe_crawler_rescans_total",
            "Full rescans run.",
            &[("", get(&self.rescans))],
        );
        counter(
            "spe_crawler_runs_done_total",
            "Runs whose egress was completed (manifest written).",
            &[("", get(&self.runs_done))],
        );
        let _ = writeln!(
            out,
            "# HELP spe_crawler_backlog_runs Ended runs with egress not done, at the last rescan.\n\
             # TYPE spe_crawler_backlog_runs gauge\nspe_crawler_backlog_runs {}",
            self.backlog_runs.load(Ordering::Relaxed)
        );
        let name = "spe_crawler_release_latency_seconds";
        let _ = writeln!(
            out,
            "# HELP {name} From log.json seen to the object visible in the bucket.\n# TYPE {name} histogram"
        );
        if let Ok(h) = self.latency.lock() {
            for (i, bound) in LATENCY_BUCKETS.iter().enumerate() {
                let n = h.counts.get(i).copied().unwrap_or(0);
                let _ = writeln!(out, "{name}_bucket{{le=\"{bound}\"}} {n}");
            }
            let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {}", h.count);
            let _ = writeln!(out, "{name}_sum {}", h.sum);
            let _ = writeln!(out, "{name}_count {}", h.count);
        }
        out
    }
}

/// Serves `GET /metrics` until the task is dropped. A minimal HTTP/1.1 responder: one request
/// per connection.
pub async fn serve(listener: TcpListener, metrics: std::sync::Arc<Metrics>) {
    loop {
        let Ok((mut stream, _)) = listener.accept().await else {
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            continue;
        };
        let metrics = metrics.clone();
        tokio::spawn(async move {
            let mut buf = vec![0u8; 4096];
            let mut len = 0;
            let read = tokio::time::timeout(std::time::Duration::from_secs(5), async {
                while len < buf.len() {
                    match stream.read(&mut buf[len..]).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            len += n;
                            if buf[..len].windows(4).any(|w| w == b"\r\n\r\n") {
                                break;
                            }
                        }
                    }
                }
            })
            .await;
            if read.is_err() {
                return;
            }
            let request = String::from_utf8_lossy(&buf[..len]);
            let first = request.lines().next().unwrap_or_default();
            let (status, ctype, body) = if first.starts_with("GET /metrics ") {
                (
                    "200 OK",
                    "text/plain; version=0.0.4; charset=utf-8",
                    metrics.render(),
                )
            } else {
                ("404 Not Found", "text/plain", "not found\n".to_owned())
            };
            let response = format!(
                "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = stream.write_all(response.as_bytes()).await;
            let _ = stream.shutdown().await;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_histogram() {
        let m = Metrics::default();
        Metrics::add(&m.files_released, 2);
        Metrics::add(&m.bytes_released, 10);
        m.observe_latency(0.3);
        m.observe_latency(7.0);
        let text = m.render();
        assert!(text.contains("spe_crawler_files_total{outcome=\"released\"} 2"));
        assert!(text.contains("spe_crawler_release_latency_seconds_bucket{le=\"0.5\"} 1"));
        assert!(text.contains("spe_crawler_release_latency_seconds_bucket{le=\"10\"} 2"));
        assert!(text.contains("spe_crawler_release_latency_seconds_count 2"));
    }
}
