//! The GA4GH WES 1.1 API of the Secure Processing Environment.
//!
//! `startup` builds the whole application from a [`spe_core::config::Config`]; `routes` holds
//! the route table and one file per resource (HTTP only); `app` the application layer behind
//! them (admission, the registry, run access); `auth` decides, in each handler's type, who may
//! call it.

pub mod app;
pub mod auth;
pub mod config_file;
pub mod error;
pub mod http;
pub mod metrics;
pub mod rate_limit;
pub mod results_bucket;
pub mod routes;
pub mod run_files;
pub mod session;
pub mod slurm;
pub mod startup;
pub mod telemetry;
pub mod ui;
pub mod wes;
pub mod workflow_upload;
