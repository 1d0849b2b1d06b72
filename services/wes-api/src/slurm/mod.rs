//! Execution on Slurm: the client that runs Slurm's commands, the submitter that turns QUEUED
//! runs into jobs, and the reconciler that makes each run's WES state follow its job.

pub mod client;
pub mod prepare;
pub mod reconciler;
pub mod submitter;

pub use client::{SlurmClient, SlurmError};
