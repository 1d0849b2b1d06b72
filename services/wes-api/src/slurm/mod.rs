//! Execution on Slurm: the client that runs Slurm's commands, the submitter that turns QUEUED
//! runs into jobs, and the reconciler that makes each run's WES state follow its job.

pub mod client;
pub mod prepare;
pub mod reconciler;
pub mod submitter;

pub use client::{SlurmClient, SlurmError};

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// The instance's shutdown as the submitter and reconciler loops see it: set once the HTTP
/// server has stopped; they finish what is under way and give back their claims and lease.
#[derive(Clone, Debug, Default)]
pub struct Stop(Arc<AtomicBool>);

impl Stop {
    pub fn set(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    pub fn is_set(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }

    /// Waits `d`, or less once the stop is set (looked at every 100 ms).
    pub async fn sleep(&self, d: Duration) {
        let deadline = tokio::time::Instant::now() + d;
        while !self.is_set() && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(100).min(d)).await;
        }
    }
}
