//! spectl against the real wes-api, started in this process on 127.0.0.1 port 0 (API only:
//! no Slurm, so accepted runs stay QUEUED until cancelled).

use std::io::{Read, Write};
use std::path::PathBuf;

use serde_json::Value;
use spe_core::config::Config;
use spe_test_support::dev_config::{dev_yaml, test_env};
use spe_test_support::process::TextOutput as Out;
use spe_test_support::repo_root;
use wes_api::startup::Application;

struct TestApp {
    base: String,
    data_dir: PathBuf,
    store: spe_store::Store,
    _dir: tempfile::TempDir,
}

/// The development config with a fresh SQLite file and data dir, as wes-api's own suites use it.
async fn spawn_app() -> TestApp {
    spawn_app_with(&dev_yaml()).await
}

/// The same on another config text.
async fn spawn_app_with(yaml: &str) -> TestApp {
    let dir = tempfile::tempdir().unwrap();
    let mut env = test_env(dir.path());
    // One local user registers and approves (the dev config's OIDC is off here).
    env.extend([
        ("SPE__AUTH".to_owned(), "disabled".to_owned()),
        (
            "SPE__WORKFLOWS__REQUIRE_DISTINCT_APPROVER".to_owned(),
            "false".to_owned(),
        ),
    ]);
    let config = Config::parse(yaml, env).unwrap();
    let data_dir = config.data_dir.clone();
    let app = Application::build(config).await.unwrap();
    let base = format!("http://127.0.0.1:{}", app.port());
    let store = app.store().clone();
    tokio::spawn(app.run_until_stopped());
    TestApp {
        base,
        data_dir,
        store,
        _dir: dir,
    }
}

/// Runs the built spectl against `url` (asynchronously, so the service keeps serving).
async fn spectl_at(url: &str, args: &[&str]) -> Out {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_spectl"))
        .args(args)
        .env("SPE_URL", url)
        .env_remove("SPE_TOKEN")
        // No cached login either (tests/login.rs tests it).
        .env("SPE_TOKEN_FILE", "/nonexistent/spe-tokens.json")
        .output()
        .await
        .unwrap();
    out.into()
}

async fn spectl(app: &TestApp, args: &[&str]) -> Out {
    spectl_at(&app.base, args).await
}

async fn ok(app: &TestApp, args: &[&str]) -> String {
    let out = spectl(app, args).await;
    assert_eq!(out.code, 0, "{args:?}: {out:?}");
    out.stdout
}

async fn ok_json(app: &TestApp, args: &[&str]) -> Value {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    serde_json::from_str(&ok(app, &all).await).unwrap()
}

fn quals_dir() -> String {
    repo_root().join("workflows/quals").display().to_string()
}

#[tokio::test]
async fn a_controller_registers_approves_shows_and_retires_a_workflow() {
    let app = spawn_app().await;
    let quals = quals_dir();
    let out = ok(&app, &["workflow", "register", &quals]).await;
    assert!(
        out.starts_with("registered quals@1.0.0 as draft (digest "),
        "{out}"
    );
    assert!(out.contains(&format!("source_dir: {quals}")), "{out}");

    let out = ok(&app, &["workflow", "list"]).await;
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert!(lines[0].starts_with("WORKFLOW"), "{out}");
    assert!(
        lines[1].starts_with("quals@1.0.0") && lines[1].contains("draft"),
        "{out}"
    );

    let out = ok(&app, &["workflow", "approve", "quals@1.0.0"]).await;
    assert!(out.starts_with("approved quals@1.0.0 (digest "), "{out}");
    let out = ok(&app, &["workflow", "show", "quals@1.0.0"]).await;
    assert!(out.contains("state: approved\n"), "{out}");
    // The parameters a researcher may pass, from the approved version's schema, and the
    // engine parameters with the deployment's bounds (spe.dev.yaml caps cores at 2).
    let lines: Vec<&str> = out.lines().collect();
    let row = |name: &str| {
        lines
            .iter()
            .find(|l| l.starts_with(&format!("{name} ")))
            .map(|l| {
                l.split("  ")
                    .filter(|c| !c.is_empty())
                    .map(str::trim)
                    .collect::<Vec<_>>()
            })
            .unwrap_or_else(|| panic!("no {name} row: {out}"))
    };
    assert_eq!(
        row("min_qual"),
        [
            "min_qual",
            "number",
            ">= 0, <= 100",
            "30",
            "no",
            "QUAL threshold for the `passing` column."
        ]
    );
    assert_eq!(row("dataset")[1], "string (dataset id)");
    assert_eq!(row("cores"), ["cores", "integer", ">= 1, <= 2", "1"]);
    assert!(out.contains("files:\n"), "{out}");
    assert!(out.contains("  Snakefile\n"), "{out}");
    let shown = ok_json(&app, &["workflow", "show", "quals@1.0.0"]).await;
    assert_eq!(
        shown["approved_by"],
        serde_json::json!({"issuer": "urn:spe:local", "sub": "local-dev-user"})
    );
    let out = ok(&app, &["workflow", "show", "quals@1.0.0"]).await;
    assert!(
        out.contains("approved_by: local-dev-user (urn:spe:local)\n"),
        "{out}"
    );
    let listed = ok_json(&app, &["workflow", "list", "--state", "approved"]).await;
    assert_eq!(listed["workflows"][0]["workflow_url"], "quals@1.0.0");
    assert_eq!(listed["workflows"][0]["digest"], shown["digest"]);

    let out = ok(
        &app,
        &[
            "workflow",
            "retire",
            "quals@1.0.0",
            "--reason",
            "superseded",
        ],
    )
    .await;
    assert_eq!(out, "retired quals@1.0.0\n");
    let listed = ok_json(&app, &["workflow", "list", "--state", "retired"]).await;
    assert_eq!(listed["workflows"][0]["retire_reason"], "superseded");
    let out = ok(&app, &["workflow", "list", "--state", "approved"]).await;
    assert_eq!(out.lines().count(), 1, "only the header: {out}");
}

#[tokio::test]
async fn a_workflow_uploads_as_tar_gz_with_the_same_digest() {
    let by_path = spawn_app().await;
    let reference = ok_json(&by_path, &["workflow", "register", &quals_dir()]).await;

    let app = spawn_app().await;
    // A relative path works too: the folder is packed here.
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_spectl"))
        .args(["--json", "workflow", "register", "--upload", "quals"])
        .current_dir(repo_root().join("workflows"))
        .env("SPE_URL", &app.base)
        .output()
        .await
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let uploaded: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        uploaded["registered_digest"],
        reference["registered_digest"]
    );
    let registry = app.data_dir.join(".registry").canonicalize().unwrap();
    let source_dir = uploaded["source_dir"].as_str().unwrap();
    assert!(
        source_dir.starts_with(&format!("{}/quals/1.0.0-", registry.display())),
        "{source_dir}"
    );
    ok(&app, &["workflow", "approve", "quals@1.0.0"]).await;
    let out = ok(&app, &["workflow", "list"]).await;
    assert!(out.contains("approved"), "{out}");
    // Again: the version exists, so the service refuses with 409 and spectl exits 2.
    let out = spectl(&app, &["workflow", "register", "--upload", &quals_dir()]).await;
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stderr.contains("already registered"), "{out:?}");
}

#[tokio::test]
async fn datasets_are_added_and_listed() {
    let app = spawn_app().await;
    let out = ok(
        &app,
        &[
            "dataset",
            "add",
            "cohort-2",
            "--location",
            "/data/cohort-2",
            "--description",
            "Encrypted cohort",
            "--crypt4gh",
            "--visa",
            "https://ega.example/datasets/EGAD0001",
        ],
    )
    .await;
    assert_eq!(out, "added dataset cohort-2 at /data/cohort-2\n");
    ok(
        &app,
        &["dataset", "add", "demo-1", "--location", "/data/demo-1"],
    )
    .await;
    let out = ok(&app, &["dataset", "list"]).await;
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    assert!(lines[0].starts_with("ID"), "{out}");
    let cohort = lines.iter().find(|l| l.starts_with("cohort-2")).unwrap();
    for part in ["active", "true", "/data/cohort-2", "Encrypted cohort"] {
        assert!(cohort.contains(part), "{part}: {out}");
    }
    let listed = ok_json(&app, &["dataset", "list"]).await;
    let ds = listed["datasets"].as_array().unwrap();
    assert_eq!(ds.len(), 2);
    assert!(
        ds.iter()
            .any(|d| d["visa"] == "https://ega.example/datasets/EGAD0001")
    );
    // A bad location is the service's 400: exit 2 with its message.
    let out = spectl(
        &app,
        &["dataset", "add", "x", "--location", "relative/path"],
    )
    .await;
    assert_eq!(out.code, 2, "{out:?}");
    assert!(
        out.stderr.contains("location: must be an absolute path"),
        "{out:?}"
    );
}

#[tokio::test]
async fn a_researcher_submits_follows_and_cancels_a_run() {
    let app = spawn_app().await;
    ok(&app, &["workflow", "register", &quals_dir()]).await;
    ok(&app, &["workflow", "approve", "quals@1.0.0"]).await;
    ok(
        &app,
        &["dataset", "add", "demo-1", "--location", "/data/demo-1"],
    )
    .await;
    let params = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(params.path(), r#"{"dataset": "nope", "min_qual": 10}"#).unwrap();
    let params_file = params.path().display().to_string();
    let out = ok(
        &app,
        &[
            "run",
            "submit",
            "quals@1.0.0",
            "--params-file",
            &params_file,
            "--param",
            "dataset=demo-1",
            "--param",
            "min_qual:=30",
            "--engine-param",
            "cores=2",
            "--tag",
            "project=p1",
        ],
    )
    .await;
    let id = out.trim().to_owned();
    assert_eq!(id.len(), 36, "{out}");

    assert_eq!(
        ok(&app, &["run", "status", &id]).await,
        format!("{id} QUEUED\n")
    );
    let shown = ok_json(&app, &["run", "show", &id]).await;
    assert_eq!(
        shown["request"]["workflow_params"],
        serde_json::json!({"dataset": "demo-1", "min_qual": 30})
    );
    assert_eq!(shown["request"]["workflow_engine_parameters"]["cores"], "2");
    let out = ok(&app, &["run", "show", &id]).await;
    assert!(out.contains("workflow_url: quals@1.0.0\n"), "{out}");

    let out = ok(&app, &["run", "list"]).await;
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert!(lines[1].starts_with(&format!("{id}  QUEUED")), "{out}");
    assert!(lines[1].ends_with("project=p1"), "{out}");
    let listed = ok_json(&app, &["run", "list", "--tag", "project=p1"]).await;
    assert_eq!(listed["runs"][0]["run_id"], id.as_str());
    let listed = ok_json(&app, &["run", "list", "--tag", "project=other"]).await;
    assert_eq!(listed["runs"], serde_json::json!([]));
    let listed = ok_json(&app, &["run", "list", "--state", "QUEUED,RUNNING"]).await;
    assert_eq!(listed["runs"].as_array().unwrap().len(), 1);

    // Never handed to a scheduler (no Slurm here): cancelled at once.
    assert_eq!(
        ok(&app, &["run", "cancel", &id]).await,
        format!("{id} CANCELED\n")
    );
    let out = spectl(&app, &["run", "wait", &id, "--interval", "0.1"]).await;
    assert_eq!(out.code, 3, "{out:?}");
    assert_eq!(out.stdout, format!("{id} CANCELED\n"));
    assert!(out.stderr.contains("ended CANCELED"), "{out:?}");
    // An ended run cannot be cancelled: the service's 409.
    let out = spectl(&app, &["run", "cancel", &id]).await;
    assert_eq!(out.code, 2, "{out:?}");

    // A QUEUED run that never moves: wait gives up at its timeout with exit 1.
    let id2 = ok(
        &app,
        &[
            "run",
            "submit",
            "quals@1.0.0",
            "--type",
            "SMK",
            "--type-version",
            "9",
            "--param",
            "dataset=demo-1",
        ],
    )
    .await;
    let id2 = id2.trim();
    let out = spectl(
        &app,
        &["run", "wait", id2, "--interval", "0.1", "--timeout", "0.5"],
    )
    .await;
    assert_eq!(out.code, 1, "{out:?}");
    assert_eq!(out.stdout, format!("{id2} QUEUED\n"));
    assert!(out.stderr.contains("gave up"), "{out:?}");
}

#[tokio::test]
async fn refusals_exit_2_with_the_services_message() {
    let app = spawn_app().await;
    let out = spectl(&app, &["workflow", "show", "nope@1.0.0"]).await;
    assert_eq!(out.code, 2, "{out:?}");
    assert!(
        out.stderr
            .contains("workflow nope@1.0.0 not found (HTTP 404)"),
        "{out:?}"
    );
    let out = spectl(
        &app,
        &[
            "run",
            "submit",
            "nope@1.0.0",
            "--type",
            "SMK",
            "--type-version",
            "9",
        ],
    )
    .await;
    assert_eq!(out.code, 2, "{out:?}");
    assert!(
        out.stderr
            .contains("workflow_url: nope@1.0.0 is not a registered workflow"),
        "{out:?}"
    );
    assert!(out.stdout.is_empty(), "{out:?}");
    // Without --type, the registry is asked for the language: an unknown workflow is its 404.
    let out = spectl(&app, &["run", "submit", "nope@1.0.0"]).await;
    assert_eq!(out.code, 2, "{out:?}");
    assert_eq!(
        out.stderr,
        "spectl: no approved workflow nope@1.0.0 (HTTP 404)\n"
    );
    let out = spectl(&app, &["run", "status", "not-a-run"]).await;
    assert_eq!(out.code, 2, "{out:?}");
    // Bad usage, refused before anything is sent.
    for args in [
        &["workflow", "approve", "quals"][..],
        &["run", "status", ".."],
        &[
            "run",
            "submit",
            "q@1",
            "--type",
            "CWL",
            "--type-version",
            "1",
        ],
        &[
            "run",
            "submit",
            "q@1",
            "--type",
            "SMK",
            "--type-version",
            "9",
            "--param",
            "x",
        ],
        &["workflow", "register", "--upload", "/nonexistent/folder"],
    ] {
        let out = spectl(&app, args).await;
        assert_eq!(out.code, 2, "{args:?}: {out:?}");
    }
    // Nothing listening: exit 1.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let out = spectl_at(&url, &["run", "list"]).await;
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stderr.contains("cannot reach"), "{out:?}");
}

#[tokio::test]
async fn the_token_is_sent_as_a_bearer_and_never_printed() {
    // A one-shot stand-in service that records the request and refuses it.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let server = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let mut request = Vec::new();
        let mut buf = [0u8; 4096];
        while !request.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = stream.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            request.extend_from_slice(&buf[..n]);
        }
        let body = r#"{"msg": "token expired", "status_code": 401}"#;
        write!(
            stream,
            "HTTP/1.1 401 Unauthorized\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        String::from_utf8_lossy(&request).into_owned()
    });
    let out = spectl_at(&url, &["--token", "s3cret-token", "run", "list"]).await;
    let request = server.join().unwrap();
    assert!(
        request
            .to_ascii_lowercase()
            .contains("\r\nauthorization: bearer s3cret-token\r\n"),
        "{request}"
    );
    assert!(request.starts_with("GET /ga4gh/wes/v1/runs?"), "{request}");
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stderr.contains("token expired (HTTP 401)"), "{out:?}");
    assert!(!out.stderr.contains("s3cret") && !out.stdout.contains("s3cret"));
}

/// A run of quals@1.0.0 by the local user, still QUEUED (no Slurm here).
async fn queued_run(app: &TestApp) -> String {
    ok(app, &["workflow", "register", &quals_dir()]).await;
    ok(app, &["workflow", "approve", "quals@1.0.0"]).await;
    let id = ok(
        app,
        &["run", "submit", "quals@1.0.0", "--param", "min_qual:=30"],
    )
    .await;
    id.trim().to_owned()
}

#[tokio::test]
async fn a_runs_logs_and_tasks_are_printed() {
    let app = spawn_app().await;
    let id = queued_run(&app).await;
    // Not started: no log yet (the service's 404), and no tasks.
    let out = spectl(&app, &["run", "logs", &id]).await;
    assert_eq!(out.code, 2, "{out:?}");
    assert_eq!(
        ok(&app, &["run", "tasks", &id]).await,
        "ID  NAME  START  END  EXIT\n"
    );

    // As the submitter leaves it once Slurm took the job: a log folder the engine writes to,
    // inside the run's directory (the API reads job files only beneath it).
    let run: spe_core::RunId = id.parse().unwrap();
    let run_dir = app.store.get_run(run).await.unwrap().unwrap().run_dir;
    let logs = std::path::Path::new(&run_dir).join(".weskit/20260105T100000");
    std::fs::create_dir_all(&logs).unwrap();
    std::fs::write(logs.join("stdout"), "hello from the engine\n").unwrap();
    std::fs::write(
        logs.join("stderr"),
        "[Mon Jan  5 10:00:00 2026]\nrule plot_quals:\n    jobid: 1\n[Mon Jan  5 10:00:02 2026]\nFinished job 1.\n",
    )
    .unwrap();
    assert!(
        app.store
            .record_submission(
                run,
                &"4242".parse().unwrap(),
                &logs.display().to_string(),
                now(),
            )
            .await
            .unwrap()
    );
    // Logs are egress: the owner (here the local user, who holds every role) reads none
    // until the results crawler has released it after review.
    let out = spectl(&app, &["run", "logs", &id, "--stderr"]).await;
    assert_eq!(out.code, 2, "{out:?}");
    assert!(
        out.stderr
            .contains(&format!("the engine's stderr of run {id} is not released")),
        "{out:?}"
    );
    assert!(!out.stdout.contains("rule plot_quals"), "{out:?}");
    for (name, text) in [
        ("stdout", "hello from the engine\n"),
        (
            "stderr",
            "[Mon Jan  5 10:00:00 2026]\nrule plot_quals:\n    jobid: 1\n[Mon Jan  5 10:00:02 2026]\nFinished job 1.\n",
        ),
    ] {
        release(
            &app.store,
            run,
            &format!(".weskit/20260105T100000/{name}"),
            text.as_bytes(),
        )
        .await;
    }
    assert_eq!(
        ok(&app, &["run", "logs", &id]).await,
        "hello from the engine\n"
    );
    let err = ok(&app, &["run", "logs", &id, "--stderr"]).await;
    assert!(err.contains("rule plot_quals:"), "{err}");
    let logged = ok_json(&app, &["run", "logs", &id]).await;
    assert_eq!(logged["stream"], "stdout");
    assert_eq!(logged["text"], "hello from the engine\n");

    let out = ok(&app, &["run", "tasks", &id]).await;
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert!(lines[1].contains("plot_quals"), "{out}");
    let tasks = ok_json(&app, &["run", "tasks", &id]).await;
    assert_eq!(tasks["task_logs"][0]["name"], "plot_quals");
}

/// Records a run's file released with `bytes`' digest, as the results crawler does after
/// review and upload.
async fn release(store: &spe_store::Store, run: spe_core::RunId, path: &str, bytes: &[u8]) {
    use sha2::Digest;
    let file = spe_store::NewEgressFile {
        path: path.into(),
        state: spe_store::EgressState::Pending,
        size: i64::try_from(bytes.len()).unwrap(),
        reason: None,
    };
    store.record_egress_scan(run, &[file], now()).await.unwrap();
    let lease = spe_core::time::Timestamp::from_micros(now().micros() + 60_000_000);
    let claimed = store
        .claim_egress_file(run, path, "test-crawler", now(), lease)
        .await
        .unwrap();
    assert!(claimed.is_some(), "{path}");
    let sha = hex::encode(sha2::Sha256::digest(bytes));
    let released = spe_store::EgressOutcome::Released {
        sha256: &sha,
        size: i64::try_from(bytes.len()).unwrap(),
    };
    assert!(
        store
            .finish_egress_file(run, path, "test-crawler", released, now())
            .await
            .unwrap()
    );
}

fn now() -> spe_core::time::Timestamp {
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    spe_core::time::Timestamp::from_micros(i64::try_from(since.as_micros()).unwrap())
}

#[tokio::test]
async fn the_owner_shares_and_unshares_a_run() {
    let app = spawn_app().await;
    let id = queued_run(&app).await;
    assert_eq!(
        ok(&app, &["run", "shares", &id]).await,
        "WITH  ISSUER  BY  SINCE\n"
    );
    assert_eq!(
        ok(&app, &["run", "share", &id, "--subject", "colleague-7"]).await,
        format!("shared run {id} with user colleague-7\n")
    );
    let shared = ok_json(
        &app,
        &[
            "run",
            "share",
            &id,
            "--group",
            "urn:geant:example.org:group:lab",
        ],
    )
    .await;
    assert_eq!(shared["group"], "urn:geant:example.org:group:lab");
    assert_eq!(shared["issuer"], "urn:spe:local");

    let out = ok(&app, &["run", "shares", &id]).await;
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    assert!(
        lines.iter().any(|l| l.starts_with("user colleague-7 ")
            && l.contains("  urn:spe:local  local-dev-user (urn:spe:local)  ")),
        "{out}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("group urn:geant:example.org:group:lab")),
        "{out}"
    );

    assert_eq!(
        ok(&app, &["run", "unshare", &id, "--subject", "colleague-7"]).await,
        format!("stopped sharing run {id} with subject colleague-7\n")
    );
    let listed = ok_json(&app, &["run", "shares", &id]).await;
    let shares = listed["shares"].as_array().unwrap();
    assert_eq!(shares.len(), 1, "{listed}");
    assert_eq!(shares[0]["group"], "urn:geant:example.org:group:lab");
    // Not shared so (any more): the service's 404.
    let out = spectl(&app, &["run", "unshare", &id, "--subject", "colleague-7"]).await;
    assert_eq!(out.code, 2, "{out:?}");
    let removed = ok_json(
        &app,
        &[
            "run",
            "unshare",
            &id,
            "--group",
            "urn:geant:example.org:group:lab",
        ],
    )
    .await;
    assert_eq!(
        removed["removed"],
        serde_json::json!({"group": "urn:geant:example.org:group:lab"})
    );
    assert_eq!(
        ok_json(&app, &["run", "shares", &id]).await["shares"],
        serde_json::json!([])
    );
    // Exactly one of --subject and --group, refused before anything is sent.
    for args in [
        &["run", "share", &id][..],
        &["run", "share", &id, "--subject", "a", "--group", "urn:x"],
    ] {
        let out = spectl(&app, args).await;
        assert_eq!(out.code, 2, "{args:?}: {out:?}");
    }
}

#[tokio::test]
async fn completion_scripts_need_no_service() {
    for shell in ["bash", "zsh", "fish"] {
        let out = spectl_at("http://127.0.0.1:1", &["completion", shell]).await;
        assert_eq!(out.code, 0, "{shell}: {out:?}");
        for word in ["results", "download", "unshare", "type-version"] {
            assert!(out.stdout.contains(word), "{shell} {word}");
        }
    }
    let out = spectl_at("http://127.0.0.1:1", &["completion", "tcsh"]).await;
    assert_eq!(out.code, 2, "{out:?}");
}

#[tokio::test]
async fn the_language_version_must_be_chosen_when_the_service_accepts_several() {
    let yaml = dev_yaml();
    assert!(yaml.contains("SMK: [\"9\"]"), "spe.dev.yaml changed");
    let app = spawn_app_with(&yaml.replace("SMK: [\"9\"]", "SMK: [\"8\", \"9\"]")).await;
    ok(&app, &["workflow", "register", &quals_dir()]).await;
    ok(&app, &["workflow", "approve", "quals@1.0.0"]).await;
    let out = spectl(&app, &["run", "submit", "quals@1.0.0"]).await;
    assert_eq!(out.code, 2, "{out:?}");
    assert_eq!(
        out.stderr,
        "spectl: the service accepts SMK versions 8, 9: choose one with --type-version\n"
    );
    let id = ok(
        &app,
        &["run", "submit", "quals@1.0.0", "--type-version", "9"],
    )
    .await;
    let shown = ok_json(&app, &["run", "show", id.trim()]).await;
    assert_eq!(shown["request"]["workflow_type"], "SMK");
    assert_eq!(shown["request"]["workflow_type_version"], "9");
}
