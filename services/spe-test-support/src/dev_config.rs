//! The shipped development config (deploy/config/spe.dev.yaml) and the `SPE__…` overrides that
//! make it a throw-away test deployment. The caller parses and starts it (wes-api's
//! `Config::parse` and `Application::build`): this crate does not depend on wes-api.

use std::path::Path;
use std::process::Command;

use crate::repo_root;

/// The text of deploy/config/spe.dev.yaml.
pub fn dev_yaml() -> String {
    let path = repo_root().join("deploy/config/spe.dev.yaml");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Overrides for a deployment of its own under `dir`: 127.0.0.1 port 0, one worker, a fresh
/// SQLite file and data folder, and Slurm off (execution has its own end-to-end suites).
pub fn test_env(dir: &Path) -> Vec<(String, String)> {
    [
        ("SPE__SERVER__LISTEN", "127.0.0.1:0".to_owned()),
        ("SPE__SERVER__WORKERS", "1".to_owned()),
        ("SPE__SLURM__ENABLED", "false".to_owned()),
        (
            "SPE__DATABASE__URL",
            format!("sqlite://{}/spe.db", dir.display()),
        ),
        ("SPE__DATA_DIR", dir.join("runs").display().to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

/// The service binary `bin` (the caller's `env!("CARGO_BIN_EXE_wes-api")`) on the dev config,
/// started from the repository root, with a database and data folder of its own under `dir`
/// and authentication off. Where it listens is the caller's `--listen`.
pub fn binary_command(bin: &Path, dir: &Path) -> Command {
    let mut command = Command::new(bin);
    command
        .args(["--config", "deploy/config/spe.dev.yaml"])
        .current_dir(repo_root())
        .env(
            "SPE__DATABASE__URL",
            format!("sqlite://{}/spe.db", dir.display()),
        )
        .env("SPE__DATA_DIR", dir.join("runs"))
        .env("SPE__AUTH", "disabled");
    command
}

/// `base` with every key of `extra` set to its value there (replacing the same key in `base`).
pub fn with_overrides(
    mut base: Vec<(String, String)>,
    extra: &[(&str, &str)],
) -> Vec<(String, String)> {
    base.retain(|(k, _)| !extra.iter().any(|(e, _)| e == k));
    base.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    base
}
