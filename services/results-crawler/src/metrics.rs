//! Prometheus metrics of the crawler (prometheus-client), served with its readiness by
//! `crate::ops` on `crawler.metrics_listen`.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// Upper bounds (seconds) of the release-latency histogram buckets.
const LATENCY_BUCKETS: &[f64] = &[
    0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0,
];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Outcome {
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ErrorKind {
    kind: String,
}

/// The crawler's counters, each a handle into the registry it is rendered from.
pub struct Metrics {
    pub files_released: Counter,
    pub bytes_released: Counter,
    pub files_held: Counter,
    pub bytes_held: Counter,
    pub files_refused: Counter,
    pub bytes_refused: Counter,
    pub changed_during_upload: Counter,
    pub errors_s3: Counter,
    pub errors_store: Counter,
    pub errors_fs: Counter,
    pub rescans: Counter,
    pub runs_done: Counter,
    /// Ended runs with egress not done, at the last rescan.
    pub backlog_runs: Gauge,
    latency: Histogram,
    registry: Registry,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::default();
        let files = Family::<Outcome, Counter>::default();
        let bytes = Family::<Outcome, Counter>::default();
        let errors = Family::<ErrorKind, Counter>::default();
        registry.register(
            "spe_crawler_files",
            "Output files settled, by outcome",
            files.clone(),
        );
        registry.register(
            "spe_crawler_bytes",
            "Bytes of output files settled, by outcome",
            bytes.clone(),
        );
        registry.register(
            "spe_crawler_errors",
            "Errors, by where they happened (retried)",
            errors.clone(),
        );
        let outcome = |f: &Family<Outcome, Counter>, o: &str| {
            f.get_or_create(&Outcome {
                outcome: o.to_owned(),
            })
            .clone()
        };
        let error = |k: &str| {
            errors
                .get_or_create(&ErrorKind { kind: k.to_owned() })
                .clone()
        };
        let mut single = |name: &str, help: &str| {
            let c = Counter::default();
            registry.register(name, help, c.clone());
            c
        };
        let changed_during_upload = single(
            "spe_crawler_changed_during_upload",
            "Files that changed while being uploaded (not released)",
        );
        let rescans = single("spe_crawler_rescans", "Full rescans run");
        let runs_done = single(
            "spe_crawler_runs_done",
            "Runs whose egress was completed (manifest written)",
        );
        let backlog_runs = Gauge::default();
        registry.register(
            "spe_crawler_backlog_runs",
            "Ended runs with egress not done, at the last rescan",
            backlog_runs.clone(),
        );
        let latency = Histogram::new(LATENCY_BUCKETS.iter().copied());
        registry.register(
            "spe_crawler_release_latency_seconds",
            "From log.json seen to the object visible in the bucket",
            latency.clone(),
        );
        Metrics {
            files_released: outcome(&files, "released"),
            bytes_released: outcome(&bytes, "released"),
            files_held: outcome(&files, "held"),
            bytes_held: outcome(&bytes, "held"),
            files_refused: outcome(&files, "refused"),
            bytes_refused: outcome(&bytes, "refused"),
            errors_s3: error("s3"),
            errors_store: error("store"),
            errors_fs: error("fs"),
            changed_during_upload,
            rescans,
            runs_done,
            backlog_runs,
            latency,
            registry,
        }
    }
}

impl Metrics {
    pub fn add(counter: &Counter, n: u64) {
        counter.inc_by(n);
    }

    pub fn observe_latency(&self, seconds: f64) {
        self.latency.observe(seconds);
    }

    /// The OpenMetrics text exposition, which Prometheus scrapes.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String does not fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

/// The media type of [`Metrics::render`]'s text.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

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
        m.backlog_runs.set(4);
        let text = m.render();
        assert!(
            text.contains("spe_crawler_files_total{outcome=\"released\"} 2"),
            "{text}"
        );
        assert!(text.contains("spe_crawler_bytes_total{outcome=\"released\"} 10"));
        assert!(text.contains("spe_crawler_files_total{outcome=\"held\"} 0"));
        assert!(text.contains("spe_crawler_errors_total{kind=\"s3\"} 0"));
        assert!(text.contains("spe_crawler_backlog_runs 4"));
        assert!(text.contains("spe_crawler_release_latency_seconds_bucket{le=\"0.5\"} 1"));
        assert!(text.contains("spe_crawler_release_latency_seconds_bucket{le=\"10.0\"} 2"));
        assert!(text.contains("spe_crawler_release_latency_seconds_count 2"));
        assert!(text.ends_with("# EOF\n"));
    }
}
