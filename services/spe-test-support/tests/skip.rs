//! The skip helper as a user of `cargo test` sees it: this test binary runs one of its own tests
//! (which needs a peer that does not exist) as a child process, without and with `CI`.

use std::process::{Command, Output};

use spe_test_support::skip::require;

const CHILD: &str = "a_test_whose_peer_is_missing";

#[test]
#[ignore = "run as a child process by the tests below"]
fn a_test_whose_peer_is_missing() {
    let Some(()) = require(
        "the imaginary peer",
        Err("nothing listens on 127.0.0.1:9 (start it with tests/peers/imaginary.sh)".to_owned()),
    ) else {
        return;
    };
    unreachable!("the peer cannot be found");
}

/// The child test run as `cargo test` runs it: output captured (no --nocapture).
fn run_child(ci: Option<&str>) -> Output {
    let mut cmd = Command::new(std::env::current_exe().expect("the test binary's path"));
    cmd.args(["--exact", CHILD, "--ignored", "--test-threads=1"]);
    cmd.env_remove("CI");
    if let Some(value) = ci {
        cmd.env("CI", value);
    }
    cmd.output().expect("the test binary runs")
}

#[test]
fn without_ci_the_test_passes_and_says_skipped_with_the_reason_on_stderr() {
    for ci in [None, Some(""), Some("false"), Some("0")] {
        let out = run_child(ci);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "CI={ci:?}: {out:?}");
        assert_eq!(
            stderr.trim_end(),
            format!(
                "SKIPPED {CHILD}: the imaginary peer unavailable: nothing listens on \
                 127.0.0.1:9 (start it with tests/peers/imaginary.sh)"
            ),
            "CI={ci:?}"
        );
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("1 passed"),
            "{out:?}"
        );
    }
}

#[test]
fn under_ci_the_test_fails_naming_the_peer_and_the_reason() {
    for ci in ["true", "1"] {
        let out = run_child(Some(ci));
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(101), "CI={ci}: {out:?}");
        assert!(
            stdout.contains(&format!(
                "{CHILD}: the imaginary peer is required under CI (CI is set): nothing listens \
                 on 127.0.0.1:9"
            )),
            "CI={ci}: {stdout}"
        );
        assert!(stdout.contains("1 failed"), "CI={ci}: {stdout}");
        assert!(
            !String::from_utf8_lossy(&out.stderr).contains("SKIPPED"),
            "CI={ci}: {out:?}"
        );
    }
}
