//! Shared helpers of the workspace's integration tests (`tests/*.rs` of every crate), used as a
//! dev-dependency only.
//!
//! - [`skip`]: a test whose peer is missing prints `SKIPPED <test>: ...` and passes, or fails
//!   under CI; [`peers`] finds each real peer through it.
//! - [`store`]: one store test on SQLite and on PostgreSQL.
//! - [`oidc`]: the OIDC test provider (tests/peers/oidc.sh): tokens, signing, its config.
//! - [`logs`]: captures everything a test binary logs, for secret checks.
//! - [`process`]: a service binary started on port 0, waited for, killed when dropped.
//! - [`dev_config`]: the shipped dev config and the overrides that make it a test deployment.

pub mod dev_config;
pub mod logs;
pub mod oidc;
pub mod peers;
pub mod process;
pub mod skip;
pub mod store;

use std::path::PathBuf;

/// The repository's root (where `deploy/`, `tests/` and `workflows/` are).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("the repository root exists")
}
