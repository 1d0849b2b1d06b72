//! Authentication and authorisation of every endpoint against a real OpenID Connect provider
//! (tests/peers/oidc.sh), tested as a matrix: role x endpoint, anonymous included. The matrix
//! is the one written down in docs/security.md. Also: no token used here ever reaches the logs,
//! even at debug level.

mod common;

use serde_json::json;
use spe_test_support::dev_config::{dev_yaml, test_env, with_overrides};
use spe_test_support::logs::captured_logs;
use spe_test_support::oidc as support;
use wes_api::auth::Role;
use wes_api::routes::table::{Policy, RunScope};
use wes_api::startup::Application;

struct App {
    base: String,
    http: reqwest::Client,
    db_url: String,
    _dir: tempfile::TempDir,
}

/// The dev config's text with its `auth:` section replaced by `auth`.
fn dev_yaml_with_auth(auth: &str) -> String {
    let yaml = dev_yaml();
    let start = yaml.find("\nauth:\n").expect("an auth section") + 1;
    let end = start
        + yaml[start..]
            .find("\nlogging:")
            .expect("logging after auth")
        + 1;
    format!("{}{auth}{}", &yaml[..start], &yaml[end..])
}

/// The dev config authenticating against the test provider.
fn oidc_dev_yaml(peer: &support::Peer) -> String {
    let oidc: String = peer
        .oidc_yaml()
        .lines()
        .map(|l| format!("    {l}\n"))
        .collect();
    let yaml = dev_yaml_with_auth(&format!("auth:\n  oidc:\n{oidc}\n"));
    assert!(yaml.contains(&peer.issuer));
    yaml
}

async fn spawn_oidc_app(peer: &support::Peer) -> App {
    spawn_app_on(oidc_dev_yaml(peer)).await
}

async fn spawn_app_on(yaml: String) -> App {
    spawn_app_with(yaml, &[]).await
}

/// wes-api on `yaml`, with `SPE__...` overrides beside the test environment's.
async fn spawn_app_with(yaml: String, overrides: &[(&str, &str)]) -> App {
    let dir = tempfile::tempdir().unwrap();
    // The same file test_env points the deployment at.
    let db_url = format!("sqlite://{}/spe.db", dir.path().display());
    // An override replaces the test environment's value of the same key.
    let env = with_overrides(test_env(dir.path()), overrides);
    let config = spe_core::config::Config::parse(&yaml, env).unwrap();
    let app = Application::build(config).await.unwrap();
    let base = format!("http://127.0.0.1:{}", app.port());
    tokio::spawn(app.run_until_stopped());
    App {
        base,
        http: reqwest::Client::new(),
        db_url,
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
        let url = if ["/healthz", "/readyz", "/weskit/"]
            .iter()
            .any(|root| path.starts_with(root))
        {
            format!("{}{path}", self.base)
        } else {
            format!("{}/ga4gh/wes/v1{path}", self.base)
        };
        let mut req = match method {
            "GET" => self.http.get(url),
            "DELETE" => self.http.delete(url),
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
        self.submit_on(token, "demo-1").await
    }

    async fn submit_on(&self, token: &str, dataset: &str) -> reqwest::Response {
        let form = reqwest::multipart::Form::new()
            .text("workflow_type", "SMK")
            .text("workflow_type_version", "9")
            .text("workflow_url", "quals@1.0.0")
            .text("workflow_params", json!({ "dataset": dataset }).to_string());
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

/// Whether `path` (its query aside) is the table's path template with its `{...}` filled in.
fn fits_template(template: &str, path: &str) -> bool {
    let path = path.split('?').next().unwrap();
    let (t, p): (Vec<&str>, Vec<&str>) = (template.split('/').collect(), path.split('/').collect());
    t.len() == p.len()
        && t.iter()
            .zip(&p)
            .all(|(t, p)| t == p || (t.starts_with('{') && !p.is_empty()))
}

/// The roles the test provider's users hold (tests/peers/oidc.sh, mapped by the dev config).
fn roles_of(caller: &str) -> &'static [Role] {
    match caller {
        "researcher" | "researcher2" => &[Role::Researcher],
        "controller" => &[Role::DataController],
        "collaborator" => &[Role::Collaborator],
        "operator" => &[Role::Operator],
        _ => &[],
    }
}

/// What the route table's policy says a caller gets, in the matrix's letters. The run in the
/// matrix is `researcher`'s and shared with none of the callers.
fn derived_from_policy(policy: &Policy, caller: &str) -> char {
    let Policy::Protected { roles, run, .. } = policy else {
        return 'A';
    };
    if caller == "anonymous" {
        return 'U';
    }
    let held = roles_of(caller);
    if !roles.iter().any(|r| held.contains(r)) {
        return 'F';
    }
    match run {
        RunScope::None | RunScope::UnderReview => 'A',
        RunScope::Owner | RunScope::Shared
            if caller == "researcher" || held.contains(&Role::Operator) =>
        {
            'A'
        }
        RunScope::Owner | RunScope::Shared => 'H',
        RunScope::Audit
            if caller == "researcher"
                || held.contains(&Role::Operator)
                || held.contains(&Role::DataController) =>
        {
            'A'
        }
        RunScope::Audit => 'H',
    }
}

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
    fill_registry(&app, token("controller").unwrap()).await;
    let res = app.submit(token("researcher").unwrap()).await;
    assert_eq!(res.status().as_u16(), 200, "{}", res.text().await.unwrap());
    let run: serde_json::Value = res.json().await.unwrap();
    let run = run["run_id"].as_str().unwrap().to_owned();

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

    // The matrix as docs/security.md writes it, one row per operation of the OpenAPI document,
    // with the request that exercises it. Columns:
    //            anon res res2 ctrl coll oper nobody
    let documented: Vec<(&str, String, Option<serde_json::Value>, &str)> = vec![
        (
            "GetServiceInfo",
            "/service-info".into(),
            None,
            "A A A A A A A",
        ),
        ("GetOpenApi", "/openapi.json".into(), None, "A A A A A A A"),
        (
            "GetServicePublicKey",
            "/keys/service.pub".into(),
            None,
            "A A A A A A A",
        ),
        ("Live", "/healthz".into(), None, "A A A A A A A"),
        ("Ready", "/readyz".into(), None, "A A A A A A A"),
        ("ListRuns", "/runs".into(), None, "U A A F F A F"),
        (
            "RunWorkflow",
            "/runs".into(),
            Some(json!({"workflow_type": "SMK", "workflow_type_version": "9",
                        "workflow_url": "quals@1.0.0", "workflow_params": {"dataset": "demo-1"}})),
            "U A A F F F F",
        ),
        ("GetRunLog", format!("/runs/{run}"), None, "U A H F F A F"),
        (
            "GetRunStatus",
            format!("/runs/{run}/status"),
            None,
            "U A H F F A F",
        ),
        (
            "ListTasks",
            format!("/runs/{run}/tasks"),
            None,
            "U A H F F A F",
        ),
        (
            "GetTask",
            format!("/runs/{run}/tasks/1"),
            None,
            "U A H F F A F",
        ),
        // Logs are egress: the owner reads released logs only (404 until then), operators and
        // data controllers every log (404 here: the run has none yet).
        (
            "GetRunLogText",
            format!("/runs/{run}/logs/stdout"),
            None,
            "U A H A F A F",
        ),
        (
            "CancelRun",
            format!("/runs/{run}/cancel"),
            None,
            "U A H F F A F",
        ),
        // Results access: owners (and operators) manage shares; collaborators without a share
        // of this run see nothing of it.
        (
            "ListShares",
            format!("/runs/{run}/shares"),
            None,
            "U A H F F A F",
        ),
        (
            "AddShare",
            format!("/runs/{run}/shares"),
            Some(json!({"subject": "someone@lifescience-ri.eu"})),
            "U A H F F A F",
        ),
        (
            "RemoveShare",
            format!("/runs/{run}/shares?subject=someone%40lifescience-ri.eu"),
            None,
            "U A H F F A F",
        ),
        ("ListResults", "/results".into(), None, "U A A F A A F"),
        ("GetUsage", "/usage".into(), None, "U A A F F A F"),
        // The egress review: owners see their outputs; controllers decide (the matrix's run has
        // no held output, so a controller's answer is 404, which is not a refusal).
        (
            "GetRunEgress",
            format!("/runs/{run}/egress"),
            None,
            "U A H F F A F",
        ),
        (
            "AnswerReview",
            format!("/runs/{run}/egress/answer"),
            Some(json!({"comment": "see the methods section"})),
            "U A H F F F F",
        ),
        (
            "ListReviews",
            "/admin/reviews".into(),
            None,
            "U F F A F F F",
        ),
        (
            "GetReview",
            format!("/admin/reviews/{run}"),
            None,
            "U F F A F F F",
        ),
        (
            "PreviewOutput",
            format!("/admin/reviews/{run}/preview?path=results.csv"),
            None,
            "U F F A F F F",
        ),
        (
            "VoteOnOutput",
            format!("/admin/reviews/{run}/votes"),
            Some(json!({"path": "results.csv", "vote": "approve"})),
            "U F F A F F F",
        ),
        (
            "ReturnReview",
            format!("/admin/reviews/{run}/return"),
            Some(json!({"comment": "explain"})),
            "U F F A F F F",
        ),
        (
            "RevokeRelease",
            format!("/admin/reviews/{run}/revoke"),
            Some(json!({"path": "results.csv", "comment": "why"})),
            "U F F A F F F",
        ),
        (
            "GetResults",
            format!("/results/{run}"),
            None,
            "U A H F H A F",
        ),
        (
            "CreateResultLink",
            format!("/results/{run}/links"),
            Some(json!({"path": "results.csv"})),
            "U A H F H A F",
        ),
        (
            "DownloadEncryptedResult",
            format!("/results/{run}/crypt4gh?path=results.csv"),
            None,
            "U A H F H A F",
        ),
        (
            "GetMyCrypt4ghKey",
            "/me/crypt4gh-key".into(),
            None,
            "U A A F A A F",
        ),
        (
            "RegisterMyCrypt4ghKey",
            "/me/crypt4gh-key".into(),
            Some(
                json!({"public_key": "-----BEGIN CRYPT4GH PUBLIC KEY-----\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n-----END CRYPT4GH PUBLIC KEY-----\n"}),
            ),
            "U A A F A A F",
        ),
        ("ListWorkflows", "/workflows".into(), None, "U A A A F F F"),
        (
            "GetWorkflow",
            "/workflows/quals/1.0.0".into(),
            None,
            "U A A A F F F",
        ),
        ("ListDatasets", "/datasets".into(), None, "U A A A F F F"),
        (
            "WeskitWorkflowInfo",
            "/weskit/v1/wf-info".into(),
            None,
            "U A A A F F F",
        ),
        (
            "AdminListWorkflows",
            "/admin/workflows".into(),
            None,
            "U F F A F F F",
        ),
        (
            "RegisterWorkflow",
            "/admin/workflows".into(),
            Some(json!({"source_dir": quals.display().to_string()})),
            "U F F A F F F",
        ),
        (
            "AdminGetWorkflow",
            "/admin/workflows/quals/1.0.0".into(),
            None,
            "U F F A F F F",
        ),
        (
            "ApproveWorkflow",
            "/admin/workflows/quals/1.0.0/approve".into(),
            Some(json!({})),
            "U F F A F F F",
        ),
        (
            "AdminListDatasets",
            "/admin/datasets".into(),
            None,
            "U F F A F F F",
        ),
        (
            "RegisterDataset",
            "/admin/datasets".into(),
            Some(
                json!({"id": "demo-3", "description": "d", "location": "/data/demo-3", "crypt4gh": false}),
            ),
            "U F F A F F F",
        ),
        (
            "AdminGetDataset",
            "/admin/datasets/demo-1".into(),
            None,
            "U F F A F F F",
        ),
        (
            "RetireDataset",
            "/admin/datasets/demo-2/retire".into(),
            Some(json!({})),
            "U F F A F F F",
        ),
        (
            "CreateUploadGrant",
            "/admin/datasets/demo-1/uploads".into(),
            Some(json!({"files": ["calls.tsv.c4gh"]})),
            "U F F A F F F",
        ),
        (
            "ListDatasetFiles",
            "/admin/datasets/demo-1/files".into(),
            None,
            "U F F A F F F",
        ),
        // Uploads answer to a grant's token, whatever the login (none here: 400).
        (
            "UploadDatasetFile",
            "/uploads/no-such-grant?name=calls.tsv.c4gh".into(),
            Some(json!({})),
            "A A A A A A A",
        ),
        (
            "RegistryEvents",
            "/admin/events".into(),
            None,
            "U F F A F F F",
        ),
        (
            "RetireWorkflow",
            "/admin/workflows/quals/1.0.0/retire".into(),
            Some(json!({})),
            "U F F A F F F",
        ),
        // The chain for operators and data controllers; deleting a run's
        // data is its owner's or an operator's (the matrix's run is live: 409, not a refusal).
        (
            "ListAuditRecords",
            "/admin/audit".into(),
            None,
            "U F F A F A F",
        ),
        (
            "DeleteRunData",
            format!("/runs/{run}"),
            None,
            "U A H F F A F",
        ),
        // A run's RO-Crate as its results; the receipt key for everyone;
        // a chain head lookup for whoever may read results (an unknown head: 404, not refused).
        (
            "GetRunRoCrate",
            format!("/runs/{run}/ro-crate"),
            None,
            "U A H F H A F",
        ),
        (
            "GetReceiptPublicKey",
            "/keys/receipt.pub".into(),
            None,
            "A A A A A A A",
        ),
        (
            "FindAuditChainHead",
            format!("/audit/heads/{}", "0".repeat(64)),
            None,
            "U A A F A A F",
        ),
    ];
    // The rows are the route table's (every documented route, none missing, none extra), and
    // each agrees with the policy the table gives its route.
    let table = wes_api::routes::table();
    let mut in_table: Vec<&str> = table.iter().filter_map(|r| r.operation).collect();
    let mut in_matrix: Vec<&str> = documented.iter().map(|(op, ..)| *op).collect();
    in_table.sort();
    in_matrix.sort();
    assert_eq!(
        in_matrix, in_table,
        "the matrix must have one row per route"
    );
    let mut failures = Vec::new();
    // In the matrix's order; the retirements come last, so that what they retire stays usable.
    let mut rows: Vec<_> = documented.iter().collect();
    rows.sort_by_key(|(op, ..)| op.starts_with("Retire"));
    for (op, path, body, row) in rows {
        let route = table.iter().find(|r| r.operation == Some(*op)).unwrap();
        let method = route.method.as_str();
        assert!(fits_template(route.path, path), "{op}: {path}");
        for caller in CALLERS {
            let want = expect(row, caller);
            let derived = derived_from_policy(&route.policy, caller);
            if want != derived {
                failures.push(format!(
                    "{method} {path} as {caller}: the matrix says {want}, the table {derived}"
                ));
            }
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

/// Deny by default: every route of the table answers an anonymous caller with 401, except the
/// few reviewed here as public. A route added as `public` by mistake fails this test; one added
/// without naming its action does not compile (routes::table). No provider is needed: a request
/// without a token is refused before any.
#[tokio::test]
async fn every_route_but_the_reviewed_public_ones_refuses_anonymous_callers() {
    const PUBLIC: [&str; 11] = [
        "GET /auth/callback",
        "GET /auth/login",
        // The key that checks egress receipts.
        "GET /ga4gh/wes/v1/keys/receipt.pub",
        "GET /ga4gh/wes/v1/keys/service.pub",
        "GET /ga4gh/wes/v1/openapi.json",
        "GET /ga4gh/wes/v1/service-info",
        "GET /healthz",
        "GET /readyz",
        // The web UI's stylesheet and script (its 401 page uses them).
        "GET /ui/assets/{file}",
        // Logout (a form with the session's CSRF token; without a session there is nothing
        // to end).
        "POST /auth/logout",
        // Authorised by an upload grant's token (X-SPE-Upload-Token), not a login: 400
        // without it, 404 for a grant and token that do not match (tests/ingress.rs).
        "POST /ga4gh/wes/v1/uploads/{grant_id}",
    ];
    let app = spawn_app_on(dev_yaml_with_auth(
        "auth:\n  oidc:\n    issuer: \"http://127.0.0.1:9\"\n    audience: spe-api\n\n",
    ))
    .await;
    let table = wes_api::routes::table();
    let mut public: Vec<String> = table
        .iter()
        .filter(|r| r.policy == Policy::Public)
        .map(|r| format!("{} {}", r.method.as_str(), r.full_path()))
        .collect();
    public.sort();
    assert_eq!(public, PUBLIC);
    let mut refused = 0;
    for route in &table {
        let Policy::Protected { roles, .. } = route.policy else {
            continue;
        };
        assert!(!roles.is_empty(), "{}", route.path);
        let path = route
            .full_path()
            .replace("{run_id}", "0b0e5a4e-8c1e-4c57-9a55-3b1f3a1d2c10")
            .replace("{task_id}", "1")
            .replace("{stream}", "stdout")
            .replace("{name}", "quals")
            .replace("{version}", "1.0.0")
            .replace("{id}", "demo-1");
        let url = format!("{}{path}", app.base);
        let req = match route.method.as_str() {
            "GET" => app.http.get(url),
            "POST" => app.http.post(url).json(&json!({})),
            "DELETE" => app.http.delete(url),
            other => panic!("{other}: a method this test does not know"),
        };
        let res = req.send().await.unwrap();
        let what = format!("{} {path}", route.method.as_str());
        assert_eq!(res.status().as_u16(), 401, "{what}");
        assert_eq!(
            res.headers()["www-authenticate"].to_str().unwrap(),
            "Bearer realm=\"spe\"",
            "{what}"
        );
        refused += 1;
    }
    assert_eq!(refused, table.len() - PUBLIC.len());
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

#[tokio::test]
async fn datasets_with_a_visa_value_need_a_matching_visa_and_runs_keep_a_snapshot() {
    let logs = captured_logs();
    let Some(peer) = support::peer().await else {
        return;
    };
    let app = spawn_oidc_app(&peer).await;
    let controller = peer.token("controller").await;
    let quals = common::repo_root().join("workflows/quals");
    for (path, body) in [
        (
            "/admin/workflows",
            json!({"source_dir": quals.display().to_string()}),
        ),
        ("/admin/workflows/quals/1.0.0/approve", json!({})),
        (
            "/admin/datasets",
            json!({"id": "ega-1", "description": "controlled", "location": "/data/ega-1",
                   "crypt4gh": false, "visa": support::DATASET_GRANT}),
        ),
        (
            "/admin/datasets",
            json!({"id": "open-1", "description": "open", "location": "/data/open-1",
                   "crypt4gh": false}),
        ),
    ] {
        let res = app.call(Some(&controller), "POST", path, Some(body)).await;
        assert!(res.status().is_success(), "{path}: {}", res.status());
    }
    let store = spe_store::Store::connect(&spe_core::secret::DatabaseUrl::new(&app.db_url), 1)
        .await
        .unwrap();

    // Granted: researcher's passport holds a ControlledAccessGrants visa with the value.
    let researcher = peer.token("researcher").await;
    let res = app.submit_on(&researcher, "ega-1").await;
    assert_eq!(res.status().as_u16(), 200, "{}", res.text().await.unwrap());
    let run: serde_json::Value = res.json().await.unwrap();
    let run: spe_core::RunId = run["run_id"].as_str().unwrap().parse().unwrap();
    // The token's address is where notifications to the owner go (docs/notifications.md).
    assert_eq!(
        store.owner_contact(run).await.unwrap().as_deref(),
        Some("researcher@example.org")
    );
    let snapshot = store
        .access_visas(run)
        .await
        .unwrap()
        .expect("a visa snapshot");
    let visas = snapshot.as_array().unwrap();
    assert_eq!(visas.len(), 1, "{snapshot}");
    let (trusted_iss, _) = peer.trusted_visa_issuer();
    let v = &visas[0];
    assert_eq!(v["dataset"], "ega-1");
    assert_eq!(v["iss"], trusted_iss.as_str());
    assert_eq!(v["type"], "ControlledAccessGrants");
    assert_eq!(v["value"], support::DATASET_GRANT);
    assert_eq!(v["source"], "https://ega.example.org/dacs/EGAC00000000001");
    assert_eq!(v["by"], "dac");
    assert!(v["asserted"].as_i64().unwrap() < support::now());
    assert!(v["exp"].as_i64().unwrap() > support::now());
    // Nothing of the visa JWT itself (no "eyJ..." anywhere).
    assert!(!snapshot.to_string().contains("eyJ"), "{snapshot}");

    // A dataset needing no visa: accepted, no snapshot.
    let res = app.submit_on(&researcher, "open-1").await;
    assert_eq!(res.status().as_u16(), 200);
    let run: serde_json::Value = res.json().await.unwrap();
    let run: spe_core::RunId = run["run_id"].as_str().unwrap().parse().unwrap();
    assert_eq!(store.access_visas(run).await.unwrap(), None);

    // Wrong value: researcher2's visa grants another dataset.
    let researcher2 = peer.token("researcher2").await;
    let msg = common::error_msg(app.submit_on(&researcher2, "ega-1").await, 403).await;
    assert!(msg.contains("ega-1"), "{msg}");
    assert_eq!(
        app.submit_on(&researcher2, "open-1")
            .await
            .status()
            .as_u16(),
        200
    );

    // No visa: a researcher (by entitlement) whose token carries no passport.
    let researchers = format!(
        "urn:geant:lifescience-ri.eu:group:spe-demo:researchers#{}",
        support::AUTHORITY
    );
    let claims = |passport: Vec<String>| {
        json!({"iss": peer.issuer, "aud": support::AUDIENCE, "sub": "no-visa@lifescience-ri.eu",
               "iat": support::now(), "exp": support::now() + 300,
               "eduperson_entitlement": [researchers], "ga4gh_passport_v1": passport})
    };
    let no_visa = peer.sign("provider", claims(vec![]), json!({})).await;
    let msg = common::error_msg(app.submit_on(&no_visa, "ega-1").await, 403).await;
    assert!(msg.contains("ega-1"), "{msg}");

    // The right value from an untrusted visa issuer counts for nothing.
    let (iss, _) = peer.untrusted_visa_issuer();
    let forged_visa = peer
        .sign(
            "visa-untrusted",
            json!({"iss": iss, "sub": "no-visa@lifescience-ri.eu", "iat": support::now(),
                   "exp": support::now() + 300,
                   "ga4gh_visa_v1": {"type": "ControlledAccessGrants", "asserted": support::now() - 10,
                       "value": support::DATASET_GRANT, "source": "https://dac.example", "by": "dac"}}),
            json!({}),
        )
        .await;
    let forged = peer
        .sign("provider", claims(vec![forged_visa]), json!({}))
        .await;
    let msg = common::error_msg(app.submit_on(&forged, "ega-1").await, 403).await;
    assert!(msg.contains("ega-1"), "{msg}");

    let logs = String::from_utf8_lossy(&logs.lock().unwrap()).into_owned();
    for t in [&researcher, &researcher2, &no_visa, &forged, &controller] {
        assert!(!logs.contains(t.rsplit('.').next().unwrap()));
    }
}

#[tokio::test]
async fn the_dev_config_authenticates_against_the_local_provider() {
    let Some(peer) = support::peer().await else {
        return;
    };
    // The shipped dev config, unchanged but for the ports: its roles and visa issuer are the
    // peer's.
    let app = spawn_app_on(peer.dev_yaml()).await;
    let anonymous = app.call(None, "GET", "/runs", None).await;
    assert_eq!(anonymous.status().as_u16(), 401);
    for (user, path, status) in [
        ("researcher", "/runs", 200),
        ("operator", "/runs", 200),
        ("controller", "/admin/datasets", 200),
        ("collaborator", "/runs", 403),
        ("nobody", "/datasets", 403),
    ] {
        let token = peer.token(user).await;
        let res = app.call(Some(&token), "GET", path, None).await;
        assert_eq!(res.status().as_u16(), status, "{user} GET {path}");
    }
    let config = spe_core::config::Config::parse(&peer.dev_yaml(), Vec::new()).unwrap();
    let spe_core::config::AuthConfig::Oidc(dev) = config.auth else {
        panic!("the dev config must authenticate");
    };
    let expected = peer.oidc_config();
    assert_eq!(dev.roles, expected.roles);
    assert_eq!(
        dev.passports.trusted_issuers,
        expected.passports.trusted_issuers
    );
}

/// A browser's cookies, enough for these flows: by name, host-wide (cookies ignore ports).
#[derive(Default)]
struct Jar(std::collections::BTreeMap<String, String>);

impl Jar {
    fn keep(&mut self, res: &reqwest::Response) {
        for v in res.headers().get_all("set-cookie") {
            let text = v.to_str().unwrap();
            let pair = text.split(';').next().unwrap();
            let (name, value) = pair.split_once('=').unwrap();
            let gone = value.is_empty() || text.to_ascii_lowercase().contains("max-age=0");
            if gone {
                self.0.remove(name.trim());
            } else {
                self.0.insert(name.trim().to_owned(), value.to_owned());
            }
        }
    }
    fn header(&self) -> String {
        self.0
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }
}

const WEB_REDIRECT: &str = "http://127.0.0.1:8080/auth/callback";
const WEB_ORIGIN: &str = "http://127.0.0.1:8080";

/// Drives the provider's dev login and consent pages from `url` (its authorization URL) as
/// `login`, the way a browser would, until it redirects to the web client's callback; returns
/// that callback URL.
async fn drive_provider(
    http: &reqwest::Client,
    jar: &mut Jar,
    issuer: &str,
    url: String,
    login: &str,
) -> String {
    let mut url = url;
    for _ in 0..20 {
        if url.starts_with(WEB_REDIRECT) {
            return url;
        }
        let res = http
            .get(&url)
            .header("cookie", jar.header())
            .send()
            .await
            .unwrap();
        jar.keep(&res);
        if res.status().is_redirection() {
            let location = res.headers()["location"].to_str().unwrap().to_owned();
            url = if location.starts_with('/') {
                format!("{issuer}{location}")
            } else {
                location
            };
            continue;
        }
        assert_eq!(res.status().as_u16(), 200, "{url}");
        let page = res.text().await.unwrap();
        let form: Vec<(&str, &str)> = if page.contains(r#"name="prompt" value="login""#) {
            vec![("prompt", "login"), ("login", login), ("password", "any")]
        } else if page.contains(r#"name="prompt" value="consent""#) {
            vec![("prompt", "consent")]
        } else {
            panic!("unexpected page at {url}: {page}");
        };
        let res = http
            .post(&url)
            .header("cookie", jar.header())
            .form(&form)
            .send()
            .await
            .unwrap();
        jar.keep(&res);
        assert!(res.status().is_redirection(), "{url}: {}", res.status());
        let location = res.headers()["location"].to_str().unwrap().to_owned();
        url = if location.starts_with('/') {
            format!("{issuer}{location}")
        } else {
            location
        };
    }
    panic!("the provider never redirected to the callback");
}

/// The dev config with the test provider and browser login (the web client's redirect).
fn browser_yaml(peer: &support::Peer) -> String {
    let oidc: String = format!(
        "{}browser:\n  client_id: spe-web\n  client_secret: spe-web-secret\n  redirect_url: \"{WEB_REDIRECT}\"\n  cookie_secure: false\n",
        peer.oidc_yaml()
    )
    .lines()
    .map(|l| format!("    {l}\n"))
    .collect();
    dev_yaml_with_auth(&format!("auth:\n  oidc:\n{oidc}\n"))
}

/// The value of the first hidden `csrf` field of a page.
fn csrf_field(page: &str) -> String {
    let at = page.find("name=\"csrf\" value=\"").expect("a form") + 19;
    page[at..].split('"').next().unwrap().to_owned()
}

/// One browser login of `user`, started on `start` and finished (the provider's redirect) on
/// `finish`: the callback's answer, and the browser's cookies after it.
async fn login_via(
    http: &reqwest::Client,
    start: &App,
    finish: &App,
    peer: &support::Peer,
    user: &str,
) -> (reqwest::Response, Jar) {
    let mut jar = Jar::default();
    let res = http
        .get(format!("{}/auth/login", start.base))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 303);
    jar.keep(&res);
    let authorize = res.headers()["location"].to_str().unwrap().to_owned();
    let callback = drive_provider(http, &mut jar, &peer.issuer, authorize, user).await;
    let query = callback.split_once('?').unwrap().1.to_owned();
    let res = http
        .get(format!("{}/auth/callback?{query}", finish.base))
        .header("cookie", jar.header())
        .send()
        .await
        .unwrap();
    jar.keep(&res);
    (res, jar)
}

#[tokio::test]
async fn the_browser_client_secret_is_read_again_from_its_file_when_it_changes() {
    use std::os::unix::fs::PermissionsExt;
    let Some(peer) = support::peer().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("client-secret");
    let write = |secret: &str| {
        std::fs::write(&file, format!("{secret}\n")).unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    };
    write("not-the-secret");
    let yaml = browser_yaml(&peer).replace(
        "client_secret: spe-web-secret",
        &format!("client_secret_file: \"{}\"", file.display()),
    );
    assert!(yaml.contains("client_secret_file"));
    let app = spawn_app_on(yaml).await;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let researcher = peer.sub("researcher").await;
    // The provider refuses the code exchange with the wrong secret: no session.
    let (res, jar) = login_via(&http, &app, &app, &peer, &researcher).await;
    assert_ne!(res.status().as_u16(), 303);
    assert!(!jar.0.contains_key("spe_session"));
    // The operator writes the right one (a new modification time): the next login works,
    // with no restart.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    write("spe-web-secret");
    let (res, jar) = login_via(&http, &app, &app, &peer, &researcher).await;
    assert_eq!(res.status().as_u16(), 303, "{}", res.text().await.unwrap());
    assert!(jar.0.contains_key("spe_session"));
}

#[tokio::test]
async fn browser_sessions_are_stored_sealed_and_work_on_every_instance_and_after_a_restart() {
    let Some(peer) = support::peer().await else {
        return;
    };
    let shared = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}/shared.db", shared.path().display());
    let on_shared = [("SPE__DATABASE__URL", db.as_str())];
    let a = spawn_app_with(browser_yaml(&peer), &on_shared).await;
    let b = spawn_app_with(browser_yaml(&peer), &on_shared).await;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let researcher = peer.sub("researcher").await;
    // The login starts on one instance and its callback lands on the other.
    let (res, jar) = login_via(&http, &a, &b, &peer, &researcher).await;
    assert_eq!(res.status().as_u16(), 303, "{}", res.text().await.unwrap());
    let session = jar.0["spe_session"].clone();
    let cookie = format!("spe_session={session}");
    // Either instance, and one started afterwards on the same database (a restart), knows it,
    // and gives its pages the same CSRF token.
    let c = spawn_app_with(browser_yaml(&peer), &on_shared).await;
    let mut tokens = Vec::new();
    for app in [&a, &b, &c] {
        let res = http
            .get(app_url(app, "/runs"))
            .header("cookie", &cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status().as_u16(), 200, "{}", app.base);
        let res = http
            .get(format!("{}/", app.base))
            .header("cookie", &cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status().as_u16(), 200);
        tokens.push(csrf_field(&res.text().await.unwrap()));
    }
    assert!(tokens.iter().all(|t| *t == tokens[0]), "{tokens:?}");
    // The database holds neither the session id nor a token: only their hashes and sealed text.
    for file in ["shared.db", "shared.db-wal"] {
        let bytes = std::fs::read(shared.path().join(file)).unwrap_or_default();
        let text = String::from_utf8_lossy(&bytes);
        assert!(!text.contains(&session), "the session id is in {file}");
        for jwt in ["eyJhbGciOi", "eyJ0eXAiOi", "eyJraWQiOi"] {
            assert!(!text.contains(jwt), "a token is in {file}");
        }
    }
    // A cookie that is not a session's opens nothing.
    let res = http
        .get(app_url(&a, "/runs"))
        .header("cookie", format!("spe_session={session}x"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 401);
    // Logout on one instance ends the session on all.
    let res = http
        .post(format!("{}/auth/logout", c.base))
        .header("cookie", &cookie)
        .form(&[("csrf", tokens[0].as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 303);
    for app in [&a, &b, &c] {
        let res = http
            .get(app_url(app, "/runs"))
            .header("cookie", &cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status().as_u16(), 401, "{}", app.base);
    }
}

#[tokio::test]
async fn browser_login_sets_a_session_cookie_that_authenticates_and_logout_ends_it() {
    let logs = captured_logs();
    let Some(peer) = support::peer().await else {
        return;
    };
    let app = spawn_app_on(browser_yaml(&peer)).await;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    // A controller (bearer) fills the registry.
    let controller = peer.token("controller").await;
    let quals = common::repo_root().join("workflows/quals");
    for (path, body) in [
        (
            "/admin/workflows",
            json!({"source_dir": quals.display().to_string()}),
        ),
        ("/admin/workflows/quals/1.0.0/approve", json!({})),
        (
            "/admin/datasets",
            json!({"id": "demo-1", "description": "d", "location": "/data/demo-1", "crypt4gh": false}),
        ),
    ] {
        let res = app.call(Some(&controller), "POST", path, Some(body)).await;
        assert!(res.status().is_success(), "{path}: {}", res.status());
    }
    let researcher = peer.sub("researcher").await;

    // A flood of logins from one client (another loopback address) is bounded there, 20 in
    // progress, not in the table every address shares: the researcher's login below, from
    // 127.0.0.1, goes through.
    let flooder = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .local_address(std::net::IpAddr::from([127, 0, 0, 2]))
        .build()
        .unwrap();
    let mut statuses = Vec::new();
    let mut refusal = String::new();
    for _ in 0..25 {
        let res = flooder
            .get(format!("{}/auth/login", app.base))
            .send()
            .await
            .unwrap();
        statuses.push(res.status().as_u16());
        if res.status().as_u16() == 429 {
            refusal = common::error_msg(res, 429).await;
        }
    }
    assert_eq!(
        statuses.iter().filter(|s| **s == 303).count(),
        20,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 429).count(),
        5,
        "{statuses:?}"
    );
    assert!(
        refusal.starts_with(
            "too many logins in progress from your address (at most 20 in 10 minutes)"
        ),
        "{refusal}"
    );

    // Login: the service redirects to the provider with PKCE S256, state and nonce.
    let mut jar = Jar::default();
    let res = http
        .get(format!("{}/auth/login", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 303);
    jar.keep(&res);
    assert!(jar.0.contains_key("spe_login"));
    let authorize = res.headers()["location"].to_str().unwrap().to_owned();
    assert!(
        authorize.starts_with(&format!("{}/auth?", peer.issuer)),
        "{authorize}"
    );
    for part in [
        "code_challenge_method=S256",
        "code_challenge=",
        "state=",
        "nonce=",
        "client_id=spe-web",
        "response_type=code",
    ] {
        assert!(authorize.contains(part), "{part} in {authorize}");
    }
    let callback = drive_provider(&http, &mut jar, &peer.issuer, authorize, &researcher).await;
    let query = callback.split_once('?').unwrap().1.to_owned();
    let code: String = query
        .split('&')
        .find_map(|p| p.strip_prefix("code="))
        .unwrap()
        .to_owned();

    // The callback (as the browser would reach it here) starts the session.
    let res = http
        .get(format!("{}/auth/callback?{query}", app.base))
        .header("cookie", jar.header())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 303, "{}", res.text().await.unwrap());
    assert_eq!(res.headers()["location"], "/");
    let set_cookie: Vec<String> = res
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect();
    let session_cookie = set_cookie
        .iter()
        .find(|c| c.starts_with("spe_session="))
        .expect("a session cookie");
    assert!(session_cookie.contains("HttpOnly"), "{session_cookie}");
    assert!(session_cookie.contains("SameSite=Lax"), "{session_cookie}");
    assert!(!session_cookie.contains("Secure"), "{session_cookie}");
    jar.keep(&res);
    let session = jar.0["spe_session"].clone();
    // An opaque id, not a token.
    assert!(
        !session.contains('.') && !session.starts_with("eyJ"),
        "{session}"
    );
    assert!(
        !jar.0.contains_key("spe_login"),
        "the login cookie is cleared"
    );

    // The session authenticates: reads, and writes from the service's own origin only.
    let with_session =
        |req: reqwest::RequestBuilder| req.header("cookie", format!("spe_session={session}"));
    let res = with_session(http.get(app_url(&app, "/runs")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
    let submit = |origin: Option<&str>| {
        let form = reqwest::multipart::Form::new()
            .text("workflow_type", "SMK")
            .text("workflow_type_version", "9")
            .text("workflow_url", "quals@1.0.0")
            .text("workflow_params", r#"{"dataset": "demo-1"}"#);
        let mut req = with_session(http.post(app_url(&app, "/runs"))).multipart(form);
        if let Some(origin) = origin {
            req = req.header("origin", origin);
        }
        req.send()
    };
    assert_eq!(submit(None).await.unwrap().status().as_u16(), 403);
    assert_eq!(
        submit(Some("http://evil.example"))
            .await
            .unwrap()
            .status()
            .as_u16(),
        403
    );
    let res = submit(Some(WEB_ORIGIN)).await.unwrap();
    assert_eq!(res.status().as_u16(), 200, "{}", res.text().await.unwrap());
    // The run belongs to the researcher who logged in.
    let researcher_token = peer.token("researcher").await;
    let res = app
        .call(Some(&researcher_token), "GET", "/runs", None)
        .await;
    let runs: serde_json::Value = res.json().await.unwrap();
    assert_eq!(runs["runs"].as_array().unwrap().len(), 1);

    // The callback cannot be replayed, nor forged.
    let res = http
        .get(format!("{}/auth/callback?{query}", app.base))
        .header("cookie", jar.header())
        .send()
        .await
        .unwrap();
    assert!(common::error_msg(res, 400).await.contains("state"));
    let res = http
        .get(format!("{}/auth/callback?state=bogus&code=x", app.base))
        .send()
        .await
        .unwrap();
    common::error_msg(res, 400).await;
    let res = http
        .get(format!(
            "{}/auth/callback?error=access_denied&state=x",
            app.base
        ))
        .send()
        .await
        .unwrap();
    assert!(common::error_msg(res, 400).await.contains("access_denied"));
    // A login started in one browser cannot be finished in another (no login cookie).
    let res = http
        .get(format!("{}/auth/login", app.base))
        .send()
        .await
        .unwrap();
    let mut other = Jar::default();
    other.keep(&res);
    let authorize = res.headers()["location"].to_str().unwrap().to_owned();
    let mut provider_jar = Jar::default();
    let callback = drive_provider(
        &http,
        &mut provider_jar,
        &peer.issuer,
        authorize,
        &researcher,
    )
    .await;
    let query2 = callback.split_once('?').unwrap().1.to_owned();
    let res = http
        .get(format!("{}/auth/callback?{query2}", app.base))
        .send()
        .await
        .unwrap();
    assert!(common::error_msg(res, 400).await.contains("browser"));

    // The session lands on the web UI's start page, whose logout form carries the session's
    // CSRF token. Logout is a POST (a GET is 405), refused without that token.
    let res = with_session(http.get(format!("{}/", app.base)))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
    let home = res.text().await.unwrap();
    assert!(home.contains(">Researcher</h2>") && !home.contains(">Data controller</h2>"));
    let at = home
        .find("name=\"csrf\" value=\"")
        .expect("the logout form")
        + 19;
    let csrf = home[at..].split('"').next().unwrap().to_owned();
    let res = with_session(http.get(format!("{}/auth/logout", app.base)))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 405);
    for form in [vec![], vec![("csrf", "forged")]] {
        let res = with_session(http.post(format!("{}/auth/logout", app.base)))
            .form(&form)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status().as_u16(), 403);
    }
    // Logout: the session is gone, the cookie cleared, the browser sent to end_session.
    let res = with_session(http.post(format!("{}/auth/logout", app.base)))
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 303);
    let location = res.headers()["location"].to_str().unwrap().to_owned();
    assert!(
        location.starts_with(&format!("{}/session/end?", peer.issuer)),
        "{location}"
    );
    assert!(location.contains("id_token_hint="), "{location}");
    let cleared = res.headers().get_all("set-cookie").iter().any(|v| {
        v.to_str().unwrap().starts_with("spe_session=;")
            || v.to_str().unwrap().starts_with("spe_session=\"\"")
    });
    assert!(cleared, "{:?}", res.headers());
    let res = with_session(http.get(app_url(&app, "/runs")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 401);

    // Someone the service gives no role gets no session.
    let res = http
        .get(format!("{}/auth/login", app.base))
        .send()
        .await
        .unwrap();
    let mut nobody_jar = Jar::default();
    nobody_jar.keep(&res);
    let authorize = res.headers()["location"].to_str().unwrap().to_owned();
    let nobody = peer.sub("nobody").await;
    let callback = drive_provider(&http, &mut nobody_jar, &peer.issuer, authorize, &nobody).await;
    let query3 = callback.split_once('?').unwrap().1.to_owned();
    let res = http
        .get(format!("{}/auth/callback?{query3}", app.base))
        .header("cookie", nobody_jar.header())
        .send()
        .await
        .unwrap();
    assert!(
        res.headers()
            .get_all("set-cookie")
            .iter()
            .all(|v| !v.to_str().unwrap().starts_with("spe_session=")),
        "no session cookie"
    );
    assert!(
        common::error_msg(res, 403)
            .await
            .starts_with("you hold no role in this service")
    );

    // Neither the code, nor the session id, nor the token reach the logs.
    let logs = String::from_utf8_lossy(&logs.lock().unwrap()).into_owned();
    assert!(logs.contains("browser login"));
    for (what, secret) in [
        ("code", &code),
        ("session id", &session),
        ("token", &researcher_token),
    ] {
        let at = logs
            .find(secret.as_str())
            .map(|i| &logs[i.saturating_sub(300)..i]);
        assert!(at.is_none(), "the {what} is in the logs: {at:?}");
    }
}

fn app_url(app: &App, path: &str) -> String {
    format!("{}/ga4gh/wes/v1{path}", app.base)
}

#[tokio::test]
async fn without_browser_settings_the_login_endpoints_do_not_exist() {
    let Some(peer) = support::peer().await else {
        return;
    };
    let app = spawn_oidc_app(&peer).await;
    for path in ["/auth/login", "/auth/callback?state=a&code=b"] {
        let res = app
            .http
            .get(format!("{}{path}", app.base))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status().as_u16(), 404, "{path}");
    }
    let res = app
        .http
        .post(format!("{}/auth/logout", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 404);
}

/// `auth.oidc` trusting the peer's provider A (the primary issuer, LS-Login's role) and its
/// provider B as a second issuer, whose own role mapping is `b_roles` (YAML under `roles:`).
/// Both providers give each test user the same `sub` and the same LS-Login entitlement URNs.
fn two_issuers_yaml(peer: &support::Peer, b_roles: &str) -> String {
    let a: String = peer
        .oidc_yaml()
        .lines()
        .map(|l| format!("    {l}\n"))
        .collect();
    let b_roles: String = b_roles
        .lines()
        .map(|l| format!("          {l}\n"))
        .collect();
    let b = format!(
        "    more_issuers:\n      - issuer: \"{}\"\n        audience: {}\n        jwks_min_refresh_seconds: 1\n        roles:\n{b_roles}",
        peer.second,
        support::AUDIENCE
    );
    dev_yaml_with_auth(&format!("auth:\n  oidc:\n{a}{b}\n"))
}

fn group_urn(group: &str) -> String {
    format!(
        "urn:geant:lifescience-ri.eu:group:{group}#{}",
        support::AUTHORITY
    )
}

#[tokio::test]
async fn the_same_sub_from_a_second_issuer_is_another_person_with_that_issuers_roles() {
    let logs = captured_logs();
    let Some(peer) = support::peer().await else {
        return;
    };
    // Issuer B maps its researchers and collaborators; it says nothing of data controllers.
    let b_roles = format!(
        "entitlements:\n  \"{}\": [researcher]\n  \"{}\": [collaborator]\n",
        group_urn("spe-demo:researchers"),
        group_urn("spe-demo:collaborators")
    );
    let app = spawn_app_on(two_issuers_yaml(&peer, &b_roles)).await;
    let a = |user: &'static str| {
        let peer = &peer;
        async move { peer.token(user).await }
    };
    let b = |user: &'static str| {
        let peer = &peer;
        async move { peer.token_from(&peer.second, user).await }
    };
    let (controller_a, researcher_a, researcher_b) = (
        a("controller").await,
        a("researcher").await,
        b("researcher").await,
    );
    let quals = common::repo_root().join("workflows/quals");
    for (path, body) in [
        (
            "/admin/workflows",
            json!({"source_dir": quals.display().to_string()}),
        ),
        ("/admin/workflows/quals/1.0.0/approve", json!({})),
        (
            "/admin/datasets",
            json!({"id": "demo-1", "description": "d", "location": "/data/demo-1", "crypt4gh": false}),
        ),
    ] {
        let res = app
            .call(Some(&controller_a), "POST", path, Some(body))
            .await;
        assert!(res.status().is_success(), "{path}: {}", res.status());
    }
    let res = app.submit(&researcher_a).await;
    assert_eq!(res.status().as_u16(), 200);
    let run_a = res.json::<serde_json::Value>().await.unwrap()["run_id"]
        .as_str()
        .unwrap()
        .to_owned();

    // B's researcher carries the same sub, and is a researcher by B's own mapping: yet A's
    // researcher's run does not exist for them.
    for (method, path, body) in [
        ("GET", format!("/runs/{run_a}"), None),
        ("GET", format!("/runs/{run_a}/status"), None),
        ("GET", format!("/runs/{run_a}/tasks"), None),
        ("POST", format!("/runs/{run_a}/cancel"), None),
        ("GET", format!("/runs/{run_a}/shares"), None),
        (
            "POST",
            format!("/runs/{run_a}/shares"),
            Some(json!({"subject": "anyone@lifescience-ri.eu"})),
        ),
        ("GET", format!("/results/{run_a}"), None),
    ] {
        let res = app.call(Some(&researcher_b), method, &path, body).await;
        assert_eq!(res.status().as_u16(), 404, "{method} {path}");
    }
    let listed: serde_json::Value = app
        .call(Some(&researcher_b), "GET", "/runs", None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(listed["runs"], json!([]), "{listed}");
    // B's researcher may run workflows (B's mapping says so); that run is theirs alone.
    let res = app.submit(&researcher_b).await;
    assert_eq!(res.status().as_u16(), 200);
    let run_b = res.json::<serde_json::Value>().await.unwrap()["run_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let res = app
        .call(Some(&researcher_a), "GET", &format!("/runs/{run_b}"), None)
        .await;
    assert_eq!(res.status().as_u16(), 404);
    let listed: serde_json::Value = app
        .call(Some(&researcher_a), "GET", "/runs", None)
        .await
        .json()
        .await
        .unwrap();
    let ids: Vec<&str> = listed["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["run_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec![run_a.as_str()]);

    // A share with a user or a group of issuer A reaches nobody of issuer B.
    let researcher2_sub = peer.sub("researcher2").await;
    let shares = format!("/runs/{run_a}/shares");
    for body in [
        json!({"subject": researcher2_sub}),
        json!({"group": group_urn("spe-demo:collaborators")}),
    ] {
        let res = app
            .call(Some(&researcher_a), "POST", &shares, Some(body))
            .await;
        assert_eq!(res.status().as_u16(), 201);
        let share: serde_json::Value = res.json().await.unwrap();
        assert_eq!(share["issuer"], peer.issuer.as_str(), "{share}");
    }
    let results = format!("/results/{run_a}");
    for (who, token, want) in [
        ("researcher2 of A", a("researcher2").await, 200),
        ("collaborator of A", a("collaborator").await, 200),
        ("researcher2 of B", b("researcher2").await, 404),
        ("collaborator of B", b("collaborator").await, 404),
    ] {
        let res = app.call(Some(&token), "GET", &results, None).await;
        assert_eq!(res.status().as_u16(), want, "{who}");
    }
    // Sharing with a user of an issuer this service does not trust is refused, naming it.
    let res = app
        .call(
            Some(&researcher_a),
            "POST",
            &shares,
            Some(json!({"subject": "x", "issuer": "https://elsewhere.example"})),
        )
        .await;
    assert_eq!(res.status().as_u16(), 400);
    let msg = res.json::<serde_json::Value>().await.unwrap()["msg"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        msg.contains("is not an issuer this service trusts"),
        "{msg}"
    );
    // ...and one with B's researcher2, named with B as issuer, reaches exactly them.
    let res = app
        .call(
            Some(&researcher_a),
            "POST",
            &shares,
            Some(json!({"subject": researcher2_sub, "issuer": peer.second})),
        )
        .await;
    assert_eq!(res.status().as_u16(), 201);
    let res = app
        .call(Some(&b("researcher2").await), "GET", &results, None)
        .await;
    assert_eq!(res.status().as_u16(), 200);

    // B's controller holds LS-Login's data-controller URN, but B's mapping does not name it:
    // no role, so no registry.
    let controller_b = b("controller").await;
    for (method, path) in [
        ("GET", "/admin/workflows"),
        ("GET", "/admin/events"),
        ("POST", "/admin/workflows/quals/1.0.0/retire"),
    ] {
        let res = app
            .call(Some(&controller_b), method, path, Some(json!({})))
            .await;
        assert_eq!(res.status().as_u16(), 403, "{method} {path}");
    }

    // Where B's own mapping names the URN, B's controller is a data controller, and the
    // registry records them as B's.
    let b_roles = format!(
        "entitlements:\n  \"{}\": [data_controller]\n",
        group_urn("spe-demo:data-controllers:role=manager")
    );
    let app = spawn_app_on(two_issuers_yaml(&peer, &b_roles)).await;
    let res = app
        .call(
            Some(&controller_b),
            "POST",
            "/admin/workflows",
            Some(json!({"source_dir": quals.display().to_string()})),
        )
        .await;
    assert_eq!(res.status().as_u16(), 201);
    let registered: serde_json::Value = res.json().await.unwrap();
    assert_eq!(
        registered["registered_by"],
        json!({"issuer": peer.second, "sub": peer.sub("controller").await})
    );
    let logs = String::from_utf8_lossy(&logs.lock().unwrap()).into_owned();
    for t in [&controller_a, &researcher_a, &researcher_b, &controller_b] {
        assert!(!logs.contains(t.as_str()), "a token is in the logs");
    }
}

/// A data controller registers and approves quals@1.0.0 and registers datasets demo-1 and
/// demo-2.
async fn fill_registry(app: &App, controller: &str) {
    let quals = common::repo_root().join("workflows/quals");
    let res = app
        .call(
            Some(controller),
            "POST",
            "/admin/workflows",
            Some(json!({"source_dir": quals.display().to_string()})),
        )
        .await;
    assert_eq!(res.status().as_u16(), 201, "{}", res.text().await.unwrap());
    let res = app
        .call(
            Some(controller),
            "POST",
            "/admin/workflows/quals/1.0.0/approve",
            Some(json!({})),
        )
        .await;
    assert_eq!(res.status().as_u16(), 200, "{}", res.text().await.unwrap());
    for id in ["demo-1", "demo-2"] {
        let res = app
            .call(
                Some(controller),
                "POST",
                "/admin/datasets",
                Some(json!({"id": id, "description": "synthetic", "location": format!("/data/{id}"), "crypt4gh": false})),
            )
            .await;
        assert_eq!(res.status().as_u16(), 201, "{}", res.text().await.unwrap());
    }
}

#[tokio::test]
async fn a_burst_from_one_user_hits_a_quota_while_another_users_runs_go_through() {
    let Some(peer) = support::peer().await else {
        return;
    };
    let app = spawn_app_with(
        oidc_dev_yaml(&peer),
        &[("SPE__QUOTAS__DEFAULT__LIVE_RUNS", "3")],
    )
    .await;
    fill_registry(&app, &peer.token("controller").await).await;
    let (one, other) = (
        peer.token("researcher").await,
        peer.token("researcher2").await,
    );
    let burst = futures_util::future::join_all((0..10).map(|_| app.submit(&one))).await;
    let mut accepted = 0;
    for res in burst {
        match res.status().as_u16() {
            200 => accepted += 1,
            429 => {
                let retry = res
                    .headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned);
                assert_eq!(retry.as_deref(), Some("60"));
                let body: serde_json::Value = res.json().await.unwrap();
                assert_eq!(
                    body["msg"],
                    "quota live_runs exceeded: 4 runs not ended yet with this one, the limit is \
                     3; try again in 60 s"
                );
            }
            other => panic!("unexpected {other}: {}", res.text().await.unwrap()),
        }
    }
    assert_eq!(
        accepted, 3,
        "exactly the quota is accepted, whatever the interleaving"
    );
    let res = app.submit(&other).await;
    assert_eq!(res.status().as_u16(), 200, "{}", res.text().await.unwrap());

    // Each user sees their own use and limits; operators see everyone's.
    let res = app.call(Some(&one), "GET", "/usage", None).await;
    let usage: serde_json::Value = res.json().await.unwrap();
    assert_eq!(usage["limits"]["live_runs"], 3);
    assert_eq!(usage["usage"].as_array().unwrap().len(), 1, "{usage}");
    assert_eq!(usage["usage"][0]["live_runs"], 3);
    assert_eq!(usage["usage"][0]["workflow"], "quals@1.0.0");
    let operator = peer.token("operator").await;
    let res = app.call(Some(&operator), "GET", "/usage", None).await;
    let all: serde_json::Value = res.json().await.unwrap();
    assert_eq!(all["usage"].as_array().unwrap().len(), 2, "{all}");
}

#[tokio::test]
async fn a_caller_over_their_rate_gets_429_and_others_go_on() {
    let Some(peer) = support::peer().await else {
        return;
    };
    let app = spawn_app_with(
        oidc_dev_yaml(&peer),
        &[
            ("SPE__SERVER__RATE_LIMIT__PER_CALLER_PER_SECOND", "1"),
            ("SPE__SERVER__RATE_LIMIT__PER_CALLER_BURST", "5"),
        ],
    )
    .await;
    let (one, other) = (peer.token("researcher").await, peer.token("operator").await);
    for _ in 0..5 {
        let res = app.call(Some(&one), "GET", "/runs", None).await;
        assert_eq!(res.status().as_u16(), 200);
    }
    let res = app.call(Some(&one), "GET", "/runs", None).await;
    assert_eq!(res.status().as_u16(), 429);
    assert_eq!(
        res.headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok()),
        Some("1")
    );
    let msg = common::error_msg(res, 429).await;
    assert!(
        msg.starts_with("rate limit: too many requests from you; try again in "),
        "{msg}"
    );
    // Another person from the same address goes on; public routes too.
    let res = app.call(Some(&other), "GET", "/runs", None).await;
    assert_eq!(res.status().as_u16(), 200);
    let res = app.call(None, "GET", "/service-info", None).await;
    assert_eq!(res.status().as_u16(), 200);
    // The bucket refills.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let res = app.call(Some(&one), "GET", "/runs", None).await;
    assert_eq!(res.status().as_u16(), 200);
}

#[tokio::test]
async fn an_address_over_its_rate_gets_429_on_every_route() {
    let app = spawn_app_with(
        dev_yaml(),
        &[
            ("SPE__AUTH", "disabled"),
            ("SPE__SERVER__RATE_LIMIT__PER_ADDRESS_PER_SECOND", "1"),
            ("SPE__SERVER__RATE_LIMIT__PER_ADDRESS_BURST", "3"),
        ],
    )
    .await;
    for _ in 0..3 {
        let res = app.call(None, "GET", "/healthz", None).await;
        assert_eq!(res.status().as_u16(), 200);
    }
    let res = app.call(None, "GET", "/service-info", None).await;
    assert!(res.headers().get("retry-after").is_some());
    let msg = common::error_msg(res, 429).await;
    assert!(
        msg.starts_with("rate limit: too many requests from your address"),
        "{msg}"
    );
}
