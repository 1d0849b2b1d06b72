//! Authentication and authorisation of every endpoint against a real OpenID Connect provider
//! (tests/peers/oidc.sh), tested as a matrix: role x endpoint, anonymous included. The matrix
//! is the one written down in docs/security.md. Also: no token used here ever reaches the logs,
//! even at debug level.

mod common;
#[path = "../../spe-auth/tests/support/peer.rs"]
mod support;

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};

use serde_json::json;
use wes_api::startup::Application;

/// Everything this test binary logs, at debug level and up, from every crate.
fn captured_logs() -> Arc<Mutex<Vec<u8>>> {
    static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let writer = buf.clone();
        let _ = tracing_subscriber::fmt()
            .with_env_filter("debug")
            .with_ansi(false)
            .with_writer(move || LogWriter(writer.clone()))
            .try_init();
        buf
    })
    .clone()
}

struct LogWriter(Arc<Mutex<Vec<u8>>>);
impl Write for LogWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        if let Ok(mut buf) = self.0.lock() {
            buf.extend_from_slice(data);
        }
        Ok(data.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

struct App {
    base: String,
    http: reqwest::Client,
    _dir: tempfile::TempDir,
}

async fn spawn_oidc_app(peer: &support::Peer) -> App {
    let dir = tempfile::tempdir().unwrap();
    let yaml =
        std::fs::read_to_string(common::repo_root().join("deploy/config/spe.dev.yaml")).unwrap();
    let oidc: String = peer
        .oidc_yaml()
        .lines()
        .map(|l| format!("    {l}\n"))
        .collect();
    let yaml = yaml.replace("\nauth: disabled\n", &format!("\nauth:\n  oidc:\n{oidc}\n"));
    assert!(yaml.contains(&peer.issuer));
    let env = vec![
        ("SPE__SERVER__LISTEN".to_owned(), "127.0.0.1:0".to_owned()),
        ("SPE__SERVER__WORKERS".to_owned(), "1".to_owned()),
        ("SPE__SLURM__ENABLED".to_owned(), "false".to_owned()),
        (
            "SPE__DATABASE__URL".to_owned(),
            format!("sqlite://{}/spe.db", dir.path().display()),
        ),
        (
            "SPE__DATA_DIR".to_owned(),
            dir.path().join("runs").display().to_string(),
        ),
    ];
    let config = spe_core::config::Config::parse(&yaml, env).unwrap();
    let app = Application::build(config).await.unwrap();
    let base = format!("http://127.0.0.1:{}", app.port());
    tokio::spawn(app.run_until_stopped());
    App {
        base,
        http: reqwest::Client::new(),
        _dir: dir,
    }
}

impl App {
    async fn call(
        &self,
        token: Option<&str>,
        method: &str,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> reqwest::Response {
        let url = if path.starts_with("/healthz") || path.starts_with("/readyz") {
            format!("{}{path}", self.base)
        } else {
            format!("{}/ga4gh/wes/v1{path}", self.base)
        };
        let mut req = match method {
            "GET" => self.http.get(url),
            _ => self.http.post(url),
        };
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        if let Some(body) = body {
            req = req.json(&body);
        }
        req.send().await.unwrap()
    }

    async fn submit(&self, token: &str) -> reqwest::Response {
        let form = reqwest::multipart::Form::new()
            .text("workflow_type", "SMK")
            .text("workflow_type_version", "9")
            .text("workflow_url", "quals@1.0.0")
            .text("workflow_params", r#"{"dataset": "demo-1"}"#);
        self.http
            .post(format!("{}/ga4gh/wes/v1/runs", self.base))
            .bearer_auth(token)
            .multipart(form)
            .send()
            .await
            .unwrap()
    }
}

const CALLERS: [&str; 7] = [
    "anonymous",
    "researcher",
    "researcher2",
    "controller",
    "collaborator",
    "operator",
    "nobody",
];

/// What a caller gets: `A` = allowed (any answer but 401/403; 2xx where the request is valid),
/// `H` = hidden (404: another researcher's run), `F` = 403, `U` = 401.
fn expect(row: &str, caller: &str) -> char {
    // Columns in CALLERS order.
    let cols: Vec<char> = row.chars().filter(|c| !c.is_whitespace()).collect();
    let i = CALLERS.iter().position(|c| *c == caller).unwrap();
    cols[i]
}

#[tokio::test]
async fn every_endpoint_by_every_role_follows_the_matrix() {
    let logs = captured_logs();
    let Some(peer) = support::peer().await else {
        return;
    };
    let app = spawn_oidc_app(&peer).await;
    let mut tokens = std::collections::HashMap::new();
    for user in CALLERS.iter().skip(1) {
        tokens.insert(*user, peer.token(user).await);
    }
    let token = |caller: &str| tokens.get(caller).map(String::as_str);

    // A data controller fills the registry; a researcher owns one run.
    let quals = common::repo_root().join("workflows/quals");
    let res = app
        .call(
            token("controller"),
            "POST",
            "/admin/workflows",
            Some(json!({"source_dir": quals.display().to_string()})),
        )
        .await;
    assert_eq!(res.status().as_u16(), 201, "{}", res.text().await.unwrap());
    let res = app
        .call(
            token("controller"),
            "POST",
            "/admin/workflows/quals/1.0.0/approve",
            Some(json!({})),
        )
        .await;
    assert_eq!(res.status().as_u16(), 200, "{}", res.text().await.unwrap());
    for id in ["demo-1", "demo-2"] {
        let res = app
            .call(
                token("controller"),
                "POST",
                "/admin/datasets",
                Some(json!({"id": id, "description": "synthetic", "location": format!("/data/{id}"), "crypt4gh": false})),
            )
            .await;
        assert_eq!(res.status().as_u16(), 201, "{}", res.text().await.unwrap());
    }
    let res = app.submit(token("researcher").unwrap()).await;
    assert_eq!(res.status().as_u16(), 200, "{}", res.text().await.unwrap());
    let run: serde_json::Value = res.json().await.unwrap();
    let run = run["run_id"].as_str().unwrap().to_owned();

    // The matrix (docs/security.md). Columns:
    //            anon res res2 ctrl coll oper nobody
    let rows: Vec<(&str, String, Option<serde_json::Value>, &str)> = vec![
        ("GET", "/service-info".into(), None, "A A A A A A A"),
        ("GET", "/openapi.json".into(), None, "A A A A A A A"),
        ("GET", "/healthz".into(), None, "A A A A A A A"),
        ("GET", "/readyz".into(), None, "A A A A A A A"),
        ("GET", "/runs".into(), None, "U A A F F A F"),
        ("GET", format!("/runs/{run}"), None, "U A H F F A F"),
        ("GET", format!("/runs/{run}/status"), None, "U A H F F A F"),
        ("GET", format!("/runs/{run}/tasks"), None, "U A H F F A F"),
        (
            "GET",
            format!("/runs/{run}/logs/stdout"),
            None,
            "U A H F F A F",
        ),
        ("POST", format!("/runs/{run}/cancel"), None, "U A H F F A F"),
        ("GET", "/workflows".into(), None, "U A A A F F F"),
        (
            "GET",
            "/workflows/quals/1.0.0".into(),
            None,
            "U A A A F F F",
        ),
        ("GET", "/datasets".into(), None, "U A A A F F F"),
        ("GET", "/admin/workflows".into(), None, "U F F A F F F"),
        (
            "POST",
            "/admin/workflows".into(),
            Some(json!({"source_dir": quals.display().to_string()})),
            "U F F A F F F",
        ),
        (
            "GET",
            "/admin/workflows/quals/1.0.0".into(),
            None,
            "U F F A F F F",
        ),
        (
            "POST",
            "/admin/workflows/quals/1.0.0/approve".into(),
            Some(json!({})),
            "U F F A F F F",
        ),
        ("GET", "/admin/datasets".into(), None, "U F F A F F F"),
        (
            "POST",
            "/admin/datasets".into(),
            Some(
                json!({"id": "demo-3", "description": "d", "location": "/data/demo-3", "crypt4gh": false}),
            ),
            "U F F A F F F",
        ),
        (
            "GET",
            "/admin/datasets/demo-1".into(),
            None,
            "U F F A F F F",
        ),
        (
            "POST",
            "/admin/datasets/demo-2/retire".into(),
            Some(json!({})),
            "U F F A F F F",
        ),
        ("GET", "/admin/events".into(), None, "U F F A F F F"),
        (
            "POST",
            "/admin/workflows/quals/1.0.0/retire".into(),
            Some(json!({})),
            "U F F A F F F",
        ),
    ];
    let mut failures = Vec::new();
    for (method, path, body, row) in &rows {
        for caller in CALLERS {
            let want = expect(row, caller);
            let res = app.call(token(caller), method, path, body.clone()).await;
            let status = res.status().as_u16();
            let challenge = res
                .headers()
                .get("www-authenticate")
                .map(|v| v.to_str().unwrap_or_default().to_owned());
            let ok = match want {
                'A' => status != 401 && status != 403 && status < 500,
                'H' => status == 404,
                'F' => status == 403,
                'U' => status == 401 && challenge.is_some_and(|c| c.starts_with("Bearer")),
                _ => unreachable!(),
            };
            if !ok {
                failures.push(format!(
                    "{method} {path} as {caller}: want {want}, got {status}"
                ));
            }
        }
    }
    // Submission: researchers only.
    for caller in ["controller", "collaborator", "operator", "nobody"] {
        let status = app.submit(token(caller).unwrap()).await.status().as_u16();
        if status != 403 {
            failures.push(format!("POST /runs as {caller}: want 403, got {status}"));
        }
    }
    let res = app
        .http
        .post(format!("{}/ga4gh/wes/v1/runs", app.base))
        .send()
        .await
        .unwrap();
    if res.status().as_u16() != 401 {
        failures.push(format!("POST /runs anonymous: got {}", res.status()));
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));

    // Researchers list only their own runs; operators see all.
    let list = |caller: &'static str| {
        let app = &app;
        let token = token(caller).map(str::to_owned);
        async move {
            let res = app.call(token.as_deref(), "GET", "/runs", None).await;
            let body: serde_json::Value = res.json().await.unwrap();
            body["runs"].as_array().unwrap().len()
        }
    };
    assert_eq!(list("researcher").await, 1);
    assert_eq!(list("researcher2").await, 0);
    assert_eq!(list("operator").await, 1);

    // No token used above appears anywhere in the logs (nor its signature alone).
    let logs = String::from_utf8_lossy(&logs.lock().unwrap()).into_owned();
    assert!(logs.contains("bearer token refused") || logs.contains("OIDC issuer discovered"));
    for (user, t) in &tokens {
        let signature = t.rsplit('.').next().unwrap();
        assert!(!logs.contains(t.as_str()), "{user}'s token is in the logs");
        assert!(
            !logs.contains(signature),
            "{user}'s token signature is in the logs"
        );
    }
}

#[tokio::test]
async fn missing_malformed_and_forged_tokens_get_401_with_a_challenge() {
    let logs = captured_logs();
    let Some(peer) = support::peer().await else {
        return;
    };
    let app = spawn_oidc_app(&peer).await;
    let sub = peer.sub("operator").await;
    let expired = peer
        .sign(
            "provider",
            json!({"iss": peer.issuer, "aud": support::AUDIENCE, "sub": sub,
                   "iat": support::now() - 7200, "exp": support::now() - 3600}),
            json!({}),
        )
        .await;
    let second = peer.token_from(&peer.second, "operator").await;
    let res = app.call(None, "GET", "/runs", None).await;
    assert_eq!(res.status().as_u16(), 401);
    assert_eq!(
        res.headers()["www-authenticate"].to_str().unwrap(),
        "Bearer realm=\"spe\""
    );
    for (name, header) in [
        ("basic", "Basic dXNlcjpwYXNz".to_owned()),
        ("empty bearer", "Bearer ".to_owned()),
        ("expired", format!("Bearer {expired}")),
        ("second provider", format!("Bearer {second}")),
    ] {
        let res = app
            .http
            .get(format!("{}/ga4gh/wes/v1/runs", app.base))
            .header("authorization", header)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status().as_u16(), 401, "{name}");
        let challenge = res.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(
            challenge.starts_with("Bearer realm=\"spe\", error="),
            "{name}: {challenge}"
        );
        let msg = common::error_msg(res, 401).await;
        assert!(!msg.contains(&expired) && !msg.contains(&second), "{name}");
    }
    let logs = String::from_utf8_lossy(&logs.lock().unwrap()).into_owned();
    for t in [&expired, &second] {
        assert!(!logs.contains(t.rsplit('.').next().unwrap()));
    }
}
