//! The results crawler: releases whitelisted outputs of finished runs to the results bucket.
//!
//! A separate process from wes-api (it imports only spe-core, spe-store and spe-s3). It watches the
//! data directory for log.json files (inotify, or polling where the file system gives no
//! events), rescans on a cron schedule and once at start, and for every COMPLETE run whose
//! egress is not done: walks the run directory without following links, decides each output by
//! the egress rules of the run's approved workflow version (from the store), uploads released
//! files to `<bucket>/<run_id>/<path>` with their SHA-256 as metadata, records each file's
//! state in the store (with its disclosure report, spe_core::disclosure), and writes
//! `<run_id>/manifest.json`, `<run_id>/disclosure.json` and the run's Five Safes RO-Crate with its
//! signed receipt (`receipt`). See docs/results-crawler.md and
//! docs/egress.md.

pub mod config;
pub mod crawler;
pub mod metrics;
pub mod ops;
pub mod receipt;
pub mod s3;
pub mod safe_fs;
pub mod service;
pub mod watch;

pub use crawler::{Crawler, RunOutcome, Settings};
