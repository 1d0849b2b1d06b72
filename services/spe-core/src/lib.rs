//! Domain types of the Secure Processing Environment.
//!
//! Everything here is pure: values are parsed from what callers hand in (strings, YAML text,
//! environment maps), with no network and no database, so that every rule can be unit-tested
//! beside its type. The only files read are those a caller names: a workflow folder
//! (`digest`) and the configuration file (`Config::load`).

pub mod bucket;
pub mod config;
pub mod digest;
pub mod disclosure;
pub mod engine;
pub mod identity;
pub mod ids;
pub mod jobfile;
pub mod logjson;
pub mod manifest;
pub mod page;
pub mod request;
pub mod rocrate;
pub mod runspec;
pub mod secret;
pub mod slurm;
pub mod state;
pub mod tasks;
pub mod time;

pub use identity::{Actor, Group, ServiceActor, Subject};
pub use ids::RunId;
pub use state::RunState;
