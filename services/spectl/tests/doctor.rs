//! `spectl doctor` against the real peers: every line ok for a deployment whose parts answer,
//! and one precise FAIL line for each part that does not.

use std::process::Command;

use spe_core::secret::DatabaseUrl;
use spe_test_support::{peers, repo_root};

/// Runs `spectl doctor` on the dev config with `env` over it; its exit status and stdout lines.
fn doctor(env: &[(&str, String)]) -> (bool, Vec<String>) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_spectl"));
    command
        .args(["doctor", "--config", "deploy/config/spe.dev.yaml"])
        .current_dir(repo_root());
    for (k, v) in env {
        command.env(k, v);
    }
    let out = command.output().unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    (
        out.status.success(),
        stdout.lines().map(str::to_owned).collect(),
    )
}

/// The peers this suite needs: S3, the OIDC provider and Slurm (the dev config's addresses).
fn peers_up() -> Option<(String, String)> {
    let s3 = peers::s3_url()?;
    let oidc = peers::oidc_url()?;
    peers::slurm().then_some((s3, oidc))
}

#[tokio::test]
async fn a_deployment_whose_parts_answer_gets_ok_on_every_line_and_each_broken_part_one_fail() {
    let Some((s3, oidc)) = peers_up() else { return };
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}/spe.db", dir.path().display());
    // Migrated as wes-api would at its start.
    spe_store::Store::connect(&DatabaseUrl::new(db.clone()), 1)
        .await
        .unwrap()
        .close()
        .await;
    let base = vec![
        ("SPE__DATABASE__URL", db.clone()),
        ("SPE__CRAWLER__ENDPOINT", s3.clone()),
        ("SPE__AUTH__OIDC__ISSUER", oidc.clone()),
    ];
    let (ok, lines) = doctor(&base);
    assert!(ok, "{lines:#?}");
    let checks: Vec<&str> = lines.iter().map(|l| &l[..16]).collect();
    assert_eq!(
        checks,
        [
            "ok    config    ",
            "ok    database  ",
            "ok    keys      ",
            "ok    slurm     ",
            "ok    slurm     ",
            "ok    s3        ",
            "ok    oidc      ",
        ],
        "{lines:#?}"
    );
    assert!(
        lines[1].ends_with(" migrations applied, none pending)"),
        "{}",
        lines[1]
    );
    assert!(lines[3].starts_with("ok    slurm      sinfo: partitions up: "));
    assert_eq!(
        lines[5],
        "ok    s3         bucket spe-results exists; write (.spe/readyz) and a presigned read work"
    );
    assert_eq!(
        lines[6],
        format!("ok    oidc       {oidc}: discovery and JWKS (1 keys) answer")
    );

    // Each part broken: a database never migrated, a bucket that does not exist, an issuer
    // that does not answer, a Slurm partition that does not exist.
    let empty = format!("sqlite://{}/empty.db", dir.path().display());
    std::fs::write(dir.path().join("empty.db"), b"").unwrap();
    let (ok, lines) = doctor(&[
        ("SPE__DATABASE__URL", empty),
        ("SPE__CRAWLER__ENDPOINT", s3.clone()),
        ("SPE__CRAWLER__BUCKET", "no-such-bucket".to_owned()),
        ("SPE__AUTH__OIDC__ISSUER", "http://127.0.0.1:9".to_owned()),
        ("SPE__SLURM__PARTITION", "no-such-partition".to_owned()),
    ]);
    assert!(!ok);
    let line = |prefix: &str| {
        lines
            .iter()
            .find(|l| l.starts_with(prefix))
            .unwrap_or_else(|| panic!("no line {prefix:?} in {lines:#?}"))
            .clone()
    };
    assert!(
        line("FAIL  database   ").starts_with("FAIL  database   0 applied, "),
        "{lines:#?}"
    );
    assert!(line("FAIL  database   ").ends_with("]): wes-api applies them when it starts"));
    assert_eq!(
        line("FAIL  s3         "),
        "FAIL  s3         bucket no-such-bucket: HeadBucket: not found (404)"
    );
    assert!(
        line("FAIL  oidc       ")
            .starts_with("FAIL  oidc       http://127.0.0.1:9/.well-known/openid-configuration: "),
        "{lines:#?}"
    );
    assert!(
        line("FAIL  slurm      ").starts_with("FAIL  slurm      sbatch: "),
        "{lines:#?}"
    );
    assert!(
        line("FAIL  slurm      ").contains("partition"),
        "{lines:#?}"
    );
    assert!(line("ok    slurm      ").starts_with("ok    slurm      sinfo: partitions up: "));

    // A config that does not parse: one line, nothing else tried.
    let (ok, lines) = doctor(&[("SPE__SERVER__LISTEN", "not an address".to_owned())]);
    assert!(!ok);
    assert_eq!(lines.len(), 1, "{lines:#?}");
    assert_eq!(
        lines[0],
        "FAIL  config     invalid configuration: deploy/config/spe.dev.yaml: server.listen: invalid socket address syntax"
    );
    assert!(lines[0].contains("server.listen"), "{lines:#?}");
}
