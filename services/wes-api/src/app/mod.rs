//! The application layer, between the HTTP handlers (`routes`) and the store: admitting a run
//! request, accepting and cancelling runs, registering and retiring datasets, the workflow
//! registry's file work, the egress review, who may reach a run, what of a run's logs a caller sees (logs are
//! egress), the states the status path answers from, a run's parsed tasks, and the visa snapshot kept with a run. Nothing here reads a
//! request body or builds a response (the run extractors read only the caller's token and the
//! path's run id).

pub mod admission;
pub mod audit;
pub mod datasets;
pub mod encrypted_results;
pub mod ingress;
pub mod readiness;
pub mod receipts;
pub mod registry;
pub mod results;
pub mod retention;
pub mod review;
pub mod run_access;
pub mod run_logs;
pub mod run_states;
pub mod runs;
pub mod tasks;
pub mod visas;
