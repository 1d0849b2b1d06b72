//! What a test does when a real peer it needs (PostgreSQL, S3, the OIDC provider, Slurm,
//! Snakemake) cannot be had: outside CI it is skipped visibly, under CI it fails. Never a
//! silent pass.
//!
//! The skip line `SKIPPED <test>: <peer> unavailable: <reason>` goes straight to the process's
//! stderr, past libtest's output capture, so that it shows in a plain `cargo test` as well as
//! with `--nocapture` (tests/run-all.sh counts these lines). CI is `CI` set to anything but
//! empty, `0` or `false` (.ci/run sets it; CI services set it themselves).

use std::io::Write;

/// Whether this process runs under CI, where a missing peer fails the test.
pub fn under_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !matches!(v.trim(), "" | "0" | "false"))
}

/// `found`'s value, or `None` after reporting the test skipped because `peer` is unavailable
/// (the error says why and how to provide it). Panics under CI instead.
pub fn require<T>(peer: &str, found: Result<T, String>) -> Option<T> {
    match found {
        Ok(value) => Some(value),
        Err(reason) => {
            unavailable(peer, &reason);
            None
        }
    }
}

/// Reports that the running test cannot have `peer`: the skip line outside CI, a panic (the
/// test fails) under CI.
pub fn unavailable(peer: &str, reason: &str) {
    match verdict(under_ci(), &current_test(), peer, reason) {
        Verdict::Skip(line) => {
            let _ = writeln!(std::io::stderr().lock(), "{line}");
        }
        Verdict::Fail(message) => panic!("{message}"),
    }
}

#[derive(Debug, PartialEq)]
enum Verdict {
    Skip(String),
    Fail(String),
}

fn verdict(ci: bool, test: &str, peer: &str, reason: &str) -> Verdict {
    if ci {
        Verdict::Fail(format!(
            "{test}: {peer} is required under CI (CI is set): {reason}"
        ))
    } else {
        Verdict::Skip(format!("SKIPPED {test}: {peer} unavailable: {reason}"))
    }
}

/// libtest runs each test on a thread named after it; a test's async body runs on that thread
/// too (`#[tokio::test]` blocks on it there).
fn current_test() -> String {
    match std::thread::current().name() {
        Some(name) if name != "main" => name.to_owned(),
        _ => "<test>".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outside_ci_a_missing_peer_is_a_skip_line_naming_test_peer_and_reason() {
        assert_eq!(
            verdict(
                false,
                "store::on_sqlite",
                "PostgreSQL",
                "SPE_TEST_POSTGRES_URL is unset"
            ),
            Verdict::Skip(
                "SKIPPED store::on_sqlite: PostgreSQL unavailable: SPE_TEST_POSTGRES_URL is unset"
                    .to_owned()
            )
        );
    }

    #[test]
    fn under_ci_a_missing_peer_is_a_failure_naming_test_peer_and_reason() {
        assert_eq!(
            verdict(true, "e2e", "Slurm", "sinfo does not answer"),
            Verdict::Fail(
                "e2e: Slurm is required under CI (CI is set): sinfo does not answer".to_owned()
            )
        );
    }

    #[test]
    fn the_test_is_named_after_its_thread() {
        assert_eq!(
            current_test(),
            "skip::tests::the_test_is_named_after_its_thread"
        );
    }

    #[test]
    fn a_found_peer_is_handed_through() {
        assert_eq!(require("S3", Ok::<_, String>(7)), Some(7));
    }
}
