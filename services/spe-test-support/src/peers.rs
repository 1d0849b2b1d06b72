//! Finds the real peers the suites run against (tests/peers/*.sh start them; tests/run-all.sh
//! exports where they listen). A peer that cannot be found is reported through [`crate::skip`]:
//! the test is skipped with the reason, or fails under CI.

use std::path::PathBuf;
use std::process::{Command, Stdio};

use crate::repo_root;
use crate::skip::require;

fn env_url(var: &str, start: &str) -> Result<String, String> {
    match std::env::var(var) {
        Ok(url) if !url.trim().is_empty() => Ok(url.trim().trim_end_matches('/').to_owned()),
        _ => Err(format!("{var} is unset (tests/peers/{start} prints it)")),
    }
}

/// The PostgreSQL server's admin URL (`SPE_TEST_POSTGRES_URL`, tests/peers/postgres.sh start).
pub fn postgres_url() -> Option<String> {
    require(
        "PostgreSQL",
        env_url("SPE_TEST_POSTGRES_URL", "postgres.sh start"),
    )
}

/// The S3 server's endpoint (`SPE_TEST_S3_URL`, tests/peers/s3.sh start), without a trailing `/`.
pub fn s3_url() -> Option<String> {
    require("S3", env_url("SPE_TEST_S3_URL", "s3.sh start"))
}

/// The OIDC test provider's issuer URL: `SPE_TEST_OIDC_URL`, or what `tests/peers/oidc.sh start`
/// prints (it installs and starts the provider where node and npm are available).
pub fn oidc_url() -> Option<String> {
    require("the OIDC test provider", find_oidc())
}

fn find_oidc() -> Result<String, String> {
    if let Ok(url) = env_url("SPE_TEST_OIDC_URL", "oidc.sh start") {
        return Ok(url);
    }
    let script = repo_root().join("tests/peers/oidc.sh");
    let out = Command::new("bash")
        .arg(&script)
        .arg("start")
        .stderr(Stdio::piped())
        .output()
        .map_err(|e| format!("cannot run {}: {e}", script.display()))?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let last = stderr.lines().last().unwrap_or_default();
        return Err(format!(
            "SPE_TEST_OIDC_URL is unset and tests/peers/oidc.sh start failed: {last}"
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .trim()
        .trim_end_matches('/')
        .to_owned())
}

/// Whether the one-node Slurm answers (`sinfo`; tests/peers/slurm.sh start).
pub fn slurm() -> bool {
    let answers = Command::new("sinfo")
        .arg("-h")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    let found = if answers {
        Ok(())
    } else {
        Err("sinfo does not answer (tests/peers/slurm.sh start)".to_owned())
    };
    require("Slurm", found).is_some()
}

/// The venv's bin folder holding `snakemake` (and schemathesis): `SPE_TOOLS_BIN`, or what
/// tests/peers/python-tools.sh prints (it creates the venv where none is).
pub fn tools_bin() -> Option<PathBuf> {
    require("Snakemake", find_tools())
}

fn find_tools() -> Result<PathBuf, String> {
    let bin = match std::env::var_os("SPE_TOOLS_BIN") {
        Some(bin) if !bin.is_empty() => PathBuf::from(bin),
        _ => {
            let script = repo_root().join("tests/peers/python-tools.sh");
            let out = Command::new(&script)
                .stderr(Stdio::inherit())
                .output()
                .map_err(|e| format!("cannot run {}: {e}", script.display()))?;
            if !out.status.success() {
                return Err(
                    "SPE_TOOLS_BIN is unset and tests/peers/python-tools.sh failed".to_owned(),
                );
            }
            PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
        }
    };
    if bin.join("snakemake").is_file() {
        Ok(bin)
    } else {
        Err(format!(
            "no snakemake in {} (SPE_TOOLS_BIN, tests/peers/python-tools.sh)",
            bin.display()
        ))
    }
}
