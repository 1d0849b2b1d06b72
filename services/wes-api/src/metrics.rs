//! Prometheus metrics of wes-api (prometheus-client), served on `server.metrics_listen`
//! (`startup::operations_server`): runs by state and the submit queue's depth, read from the
//! store's per-state counts at each scrape (kept by triggers: O(1) however many runs), and the
//! latencies of sbatch submissions and of reconciler ticks, observed as they happen.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use spe_core::RunState;
use spe_store::{Store, StoreError};

/// The media type of [`ApiMetrics::render`]'s text.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Upper bounds (seconds) of the latency buckets: an sbatch or a tick takes milliseconds when
/// the controller is well, seconds when it is loaded.
const LATENCY_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabel {
    state: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabel {
    outcome: String,
}

pub struct ApiMetrics {
    registry: Registry,
    runs: Family<StateLabel, Gauge>,
    queue_depth: Gauge,
    /// One sbatch call, accepted or not.
    pub submit_seconds: Histogram,
    pub submitted: Counter,
    pub submit_failed: Counter,
    /// One reconciler tick (squeue/sacct and the state changes written).
    pub reconcile_seconds: Histogram,
}

impl Default for ApiMetrics {
    fn default() -> Self {
        let mut registry = Registry::default();
        let runs = Family::<StateLabel, Gauge>::default();
        registry.register("spe_runs", "Runs by WES state", runs.clone());
        let queue_depth = Gauge::default();
        registry.register(
            "spe_submit_queue_depth",
            "Runs accepted and waiting for sbatch (QUEUED)",
            queue_depth.clone(),
        );
        let submit_seconds = Histogram::new(LATENCY_BUCKETS.iter().copied());
        registry.register(
            "spe_submit_seconds",
            "Time of one sbatch submission",
            submit_seconds.clone(),
        );
        let submissions = Family::<OutcomeLabel, Counter>::default();
        registry.register(
            "spe_submissions",
            "sbatch submissions, by outcome (a failed one is retried or ends the run)",
            submissions.clone(),
        );
        let outcome = |o: &str| {
            submissions
                .get_or_create(&OutcomeLabel {
                    outcome: o.to_owned(),
                })
                .clone()
        };
        let reconcile_seconds = Histogram::new(LATENCY_BUCKETS.iter().copied());
        registry.register(
            "spe_reconcile_seconds",
            "Time of one reconciler tick",
            reconcile_seconds.clone(),
        );
        ApiMetrics {
            submitted: outcome("accepted"),
            submit_failed: outcome("failed"),
            registry,
            runs,
            queue_depth,
            submit_seconds,
            reconcile_seconds,
        }
    }
}

impl ApiMetrics {
    /// The OpenMetrics text, with the run counts read now.
    pub async fn render(&self, store: &Store) -> Result<String, StoreError> {
        let counts = store.state_counts().await?;
        for state in RunState::ALL {
            let n = counts.get(&state).copied().unwrap_or(0);
            self.runs
                .get_or_create(&StateLabel {
                    state: state.as_str().to_owned(),
                })
                .set(n);
        }
        self.queue_depth
            .set(counts.get(&RunState::Queued).copied().unwrap_or(0));
        let mut out = String::new();
        // Writing into a String does not fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        Ok(out)
    }
}
