//! The shipped configs and the binary's start-up behaviour.

use std::path::Path;
use std::process::{Command, Stdio};

use spe_core::config::{AuthConfig, Config};
use spe_test_support::dev_config::binary_command;
use spe_test_support::process::Service;
use spe_test_support::repo_root;

fn shipped(name: &str) -> String {
    std::fs::read_to_string(repo_root().join("deploy/config").join(name)).unwrap()
}

#[test]
fn the_shipped_configs_parse_and_none_disables_auth() {
    let dev = Config::parse(&shipped("spe.dev.yaml"), Vec::new()).unwrap();
    let AuthConfig::Oidc(oidc) = &dev.auth else {
        panic!("the dev config must authenticate (OIDC against tests/peers/oidc.sh)");
    };
    assert_eq!(oidc.issuer, "http://127.0.0.1:59100");
    assert_eq!(oidc.audience, "spe-api");
    assert!(!oidc.roles.entitlements.is_empty());
    assert!(!oidc.passports.trusted_issuers.is_empty());
    let prod = Config::parse(&shipped("spe.example.yaml"), Vec::new()).unwrap();
    assert!(matches!(prod.auth, AuthConfig::Oidc(_)));
    assert!(prod.database.url.is_postgres());
    // Every config shipped (deploy/config/*.yaml) authenticates; `auth: disabled` is only an
    // override for test suites (SPE__AUTH=disabled).
    let dir = repo_root().join("deploy/config");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("yaml") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let config = Config::parse(&text, Vec::new()).unwrap();
        assert!(
            matches!(config.auth, AuthConfig::Oidc(_)),
            "{} disables authentication",
            path.display()
        );
        assert!(
            !text
                .lines()
                .any(|l| l.trim_start().starts_with("auth: disabled")),
            "{}",
            path.display()
        );
        seen += 1;
    }
    assert!(seen >= 2);
    // The override the test suites use still works.
    let env = vec![("SPE__AUTH".to_owned(), "disabled".to_owned())];
    let overridden = Config::parse(&shipped("spe.dev.yaml"), env).unwrap();
    assert_eq!(overridden.auth, AuthConfig::Disabled);
}

fn wes_api() -> Command {
    Command::new(env!("CARGO_BIN_EXE_wes-api"))
}

#[test]
fn an_invalid_config_stops_start_up_naming_the_key() {
    let out = wes_api()
        .args(["--config", "deploy/config/spe.dev.yaml"])
        .current_dir(repo_root())
        .env("SPE__SERVER__MAX_BODY_BYTES", "lots")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("server.max_body_bytes"), "{stderr}");

    let out = wes_api()
        .args(["--config", "/nonexistent.yaml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent.yaml"));

    let out = wes_api()
        .args([
            "--config",
            "deploy/config/spe.dev.yaml",
            "--listen",
            "nowhere",
        ])
        .current_dir(repo_root())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--listen"));
}

#[test]
fn a_database_password_never_reaches_the_output() {
    let out = wes_api()
        .args(["--config", "deploy/config/spe.dev.yaml"])
        .current_dir(repo_root())
        .env(
            "SPE__DATABASE__URL",
            "postgres://spe:TopSecret123@127.0.0.1:1/spe",
        )
        .env("SPE__DATABASE__CONNECT_TIMEOUT_SECONDS", "1")
        .env("RUST_LOG", "trace")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(all.contains("database"), "{all}");
    assert!(!all.contains("TopSecret123"), "{all}");
}

#[test]
fn the_binary_listens_where_told_and_warns_when_auth_is_off() {
    let dir = tempfile::tempdir().unwrap();
    let mut command = binary_command(Path::new(env!("CARGO_BIN_EXE_wes-api")), dir.path());
    command
        .args(["--listen", "127.0.0.1:0"])
        .env("SPE__LOGGING__FORMAT", "json")
        .stderr(Stdio::piped());
    let service = Service::start(command);
    let port = service.port();
    assert_ne!(port, 0);
    let body = std::net::TcpStream::connect(("127.0.0.1", port)).is_ok();
    let mut child = service.into_child();
    child.kill().unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(body);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let warning = stderr
        .lines()
        .find(|l| l.contains("AUTHENTICATION IS DISABLED"))
        .unwrap_or_else(|| panic!("no warning in {stderr}"));
    // JSON logs when configured.
    let parsed: serde_json::Value = serde_json::from_str(warning).unwrap();
    assert_eq!(parsed["level"], "WARN");
}

#[test]
fn a_bad_typed_value_stops_start_up_naming_the_file_and_the_key() {
    for (name, value, expected) in [
        (
            "SPE__SERVER__LISTEN",
            "localhost:8080",
            "deploy/config/spe.dev.yaml: server.listen: invalid socket address syntax",
        ),
        (
            "SPE__SERVICE__ORGANIZATION__URL",
            "example.org",
            "deploy/config/spe.dev.yaml: service.organization.url: must be an http(s):// or mailto: URL",
        ),
        (
            "SPE__CRAWLER__RESCAN_CRON",
            "@hourly please",
            "deploy/config/spe.dev.yaml: crawler.rescan_cron: not a cron expression with seconds",
        ),
        (
            "SPE__CRAWLER__ENDPOINT",
            "s3.internal:9000",
            "deploy/config/spe.dev.yaml: crawler.endpoint: must be an http(s):// URL with a host",
        ),
    ] {
        let out = wes_api()
            .args(["--config", "deploy/config/spe.dev.yaml"])
            .current_dir(repo_root())
            .env(name, value)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{name}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains(&format!("invalid configuration: {expected}")),
            "{name}: {stderr}"
        );
    }
}

/// `slurm.sandbox: none` starts only in a dev deployment, says so at every start, and shows in
/// service-info; anywhere else start-up stops naming the key (docs/security.md).
#[tokio::test]
async fn without_the_sandbox_the_binary_says_so_at_start_and_in_service_info() {
    let out = wes_api()
        .args(["--config", "deploy/config/spe.dev.yaml"])
        .current_dir(repo_root())
        .env("SPE__SERVICE__ENVIRONMENT", "production")
        .env("SPE__SLURM__SANDBOX", "none")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("slurm.sandbox: none is allowed only where service.environment is dev"),
        "{stderr}"
    );

    let dir = tempfile::tempdir().unwrap();
    let mut command = binary_command(Path::new(env!("CARGO_BIN_EXE_wes-api")), dir.path());
    command
        .args(["--listen", "127.0.0.1:0"])
        .env("SPE__SLURM__SANDBOX", "none")
        .stderr(Stdio::piped());
    let service = Service::start(command);
    let url = format!(
        "http://127.0.0.1:{}/ga4gh/wes/v1/service-info",
        service.port()
    );
    let info: serde_json::Value = reqwest::get(&url).await.unwrap().json().await.unwrap();
    let mut child = service.into_child();
    child.kill().unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(info["tags"]["sandbox"], "none", "{info}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("SANDBOX OFF (slurm.sandbox: none)"),
        "{stderr}"
    );
}
