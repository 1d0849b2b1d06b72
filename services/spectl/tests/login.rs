//! `spectl login` (device flow), the token cache and `spectl logout`, against the real OIDC
//! test provider (tests/peers/oidc.sh) and wes-api authenticating with it. The provider's
//! verification pages are driven headlessly, as a browser would.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::time::Duration;

use serde_json::Value;
use spe_core::config::Config;
use spe_test_support::dev_config::test_env;
use spe_test_support::oidc::{self, Peer};
use spe_test_support::process::TextOutput as Out;
use wes_api::startup::Application;

/// wes-api on the shipped dev config (OIDC), its provider ports moved to the peer's.
async fn spawn_oidc_app(peer: &Peer, dir: &Path) -> String {
    // The service's logs, at debug level (on stderr when SPE_TEST_LOG_STDERR=1: tests/run-all.sh
    // checks the whole run's output for the tokens it used).
    spe_test_support::logs::captured_logs();
    let config = Config::parse(&peer.dev_yaml(), test_env(dir)).unwrap();
    let app = Application::build(config).await.unwrap();
    let base = format!("http://127.0.0.1:{}", app.port());
    tokio::spawn(app.run_until_stopped());
    base
}

async fn spectl(url: &str, token_file: &Path, args: &[&str]) -> Out {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_spectl"))
        .args(args)
        .env("SPE_URL", url)
        .env_remove("SPE_TOKEN")
        .env("SPE_TOKEN_FILE", token_file)
        .output()
        .await
        .unwrap();
    out.into()
}

/// `name="..." value="..."` of every hidden input of an HTML page.
fn hidden_inputs(html: &str) -> Vec<(String, String)> {
    let attr = |tag: &str, name: &str| {
        let start = tag.find(&format!("{name}=\""))? + name.len() + 2;
        let end = tag[start..].find('"')? + start;
        Some(tag[start..end].to_owned())
    };
    html.split("<input")
        .skip(1)
        .filter_map(|rest| {
            let tag = &rest[..rest.find('>')?];
            (attr(tag, "type").as_deref() == Some("hidden"))
                .then(|| Some((attr(tag, "name")?, attr(tag, "value")?)))
                .flatten()
        })
        .collect()
}

fn form_action(html: &str) -> Option<String> {
    let form = &html[html.find("<form")?..];
    let start = form.find("action=\"")? + 8;
    let end = form[start..].find('"')? + start;
    Some(form[start..end].to_owned())
}

/// Drives the provider's device verification, login and consent pages from `url` as `login`.
async fn approve_device(issuer: &str, url: &str, login: &str) {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let mut jar: BTreeMap<String, String> = BTreeMap::new();
    let absolute = |u: &str| {
        if u.starts_with('/') {
            format!("{issuer}{u}")
        } else {
            u.to_owned()
        }
    };
    let mut next: (String, Option<Vec<(String, String)>>) = (url.to_owned(), None);
    for _ in 0..20 {
        let cookies = jar
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ");
        let req = match &next.1 {
            None => http.get(&next.0),
            Some(form) => http.post(&next.0).form(form),
        };
        let res = req.header("cookie", cookies).send().await.unwrap();
        for v in res.headers().get_all("set-cookie") {
            let text = v.to_str().unwrap();
            if let Some((k, v)) = text.split(';').next().unwrap().split_once('=') {
                jar.insert(k.trim().to_owned(), v.to_owned());
            }
        }
        if res.status().is_redirection() {
            next = (absolute(res.headers()["location"].to_str().unwrap()), None);
            continue;
        }
        let status = res.status();
        let page = res.text().await.unwrap();
        assert!(status.is_success(), "{} {status}: {page}", next.0);
        let Some(action) = form_action(&page) else {
            // No form left: the provider's success page.
            assert!(page.to_lowercase().contains("success"), "{page}");
            return;
        };
        let mut fields = hidden_inputs(&page);
        if page.contains(r#"name="prompt" value="login""#) {
            fields = vec![
                ("prompt".into(), "login".into()),
                ("login".into(), login.into()),
                ("password".into(), "any".into()),
            ];
        }
        next = (absolute(&action), Some(fields));
    }
    panic!("the device verification never finished");
}

#[tokio::test]
async fn login_caches_tokens_privately_refreshes_them_and_logout_forgets_them() {
    let Some(peer) = oidc::peer().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let url = spawn_oidc_app(&peer, dir.path()).await;
    let token_file = dir.path().join("cfg/spe/tokens.json");

    // Not logged in: the service says 401, spectl exits 2.
    let out = spectl(&url, &token_file, &["run", "list"]).await;
    assert_eq!(out.code, 2, "{}", out.stderr);

    // The device flow: spectl prints where to go, the "user" approves there.
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_spectl"))
        .args(["login", "--issuer", &peer.issuer])
        .env("SPE_TOKEN_FILE", &token_file)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut complete = None;
    let mut said = Vec::new();
    while let Ok(line) = rx.recv_timeout(Duration::from_secs(20)) {
        said.push(line.clone());
        if let Some(u) = line.strip_prefix("(or open ") {
            complete = Some(u.trim_end_matches(')').to_owned());
            break;
        }
    }
    let complete = complete.unwrap_or_else(|| panic!("no verification address in {said:?}"));
    assert!(said[0].contains("enter the code"), "{said:?}");
    let researcher = peer.sub("researcher").await;
    approve_device(&peer.issuer, &complete, &researcher).await;
    let status = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    let rest: Vec<String> = rx.try_iter().collect();
    assert!(status.status.success(), "{said:?} {rest:?}");
    assert!(String::from_utf8_lossy(&status.stdout).is_empty());

    // The cache: 0600 in a 0700 folder, holding both tokens.
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&token_file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let folder = std::fs::metadata(token_file.parent().unwrap())
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(folder, 0o700);
    let cache: Value = serde_json::from_slice(&std::fs::read(&token_file).unwrap()).unwrap();
    let access = cache["access_token"].as_str().unwrap().to_owned();
    assert!(
        cache["refresh_token"].is_string(),
        "no refresh token cached"
    );
    for line in said.iter().chain(&rest) {
        assert!(!line.contains(&access));
    }

    // Later commands use it: the researcher sees their (no) runs.
    let out = spectl(&url, &token_file, &["--json", "run", "list"]).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(!out.stdout.contains(&access) && !out.stderr.contains(&access));

    // An expired access token is refreshed with the refresh token, and the cache updated.
    let mut expired = cache.clone();
    expired["expires_at"] = Value::from(oidc::now() - 10);
    std::fs::write(&token_file, serde_json::to_vec(&expired).unwrap()).unwrap();
    let out = spectl(&url, &token_file, &["run", "list"]).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let refreshed: Value = serde_json::from_slice(&std::fs::read(&token_file).unwrap()).unwrap();
    assert_ne!(refreshed["access_token"], cache["access_token"]);
    assert!(refreshed["expires_at"].as_i64().unwrap() > oidc::now());
    let mode = std::fs::metadata(&token_file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);

    // Logout forgets it all.
    let out = spectl(&url, &token_file, &["logout"]).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(!token_file.exists());
    let out = spectl(&url, &token_file, &["run", "list"]).await;
    assert_eq!(out.code, 2, "{}", out.stderr);
}
