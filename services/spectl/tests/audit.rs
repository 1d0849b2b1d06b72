//! `spectl audit verify` and `spectl audit export` against the real wes-api (port 0, auth off:
//! the local user holds every role), on SQLite and on PostgreSQL when the harness has it. The
//! chain is tampered with in the database as an administrator would (append-only triggers
//! disabled first) and verify, which checks the chain on the client, names the record.

use serde_json::Value;
use spe_core::config::Config;
use spe_core::secret::DatabaseUrl;
use spe_core::time::Timestamp;
use spe_store::audit::AuditRecord;
use spe_store::{Backend, NewDataset, Store};
use spe_test_support::dev_config::{dev_yaml, test_env};
use spe_test_support::process::TextOutput as Out;
use spe_test_support::store::{fresh_postgres_url, person};
use wes_api::startup::Application;

struct TestApp {
    base: String,
    store: Store,
    data_dir: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

/// wes-api on a fresh database: SQLite, or the PostgreSQL one named.
async fn spawn_app(postgres: Option<&DatabaseUrl>) -> TestApp {
    let dir = tempfile::tempdir().unwrap();
    let mut env = test_env(dir.path());
    env.push(("SPE__AUTH".to_owned(), "disabled".to_owned()));
    if let Some(url) = postgres {
        env.push(("SPE__DATABASE__URL".to_owned(), url.expose().to_owned()));
    }
    let config = Config::parse(&dev_yaml(), env).unwrap();
    let data_dir = config.data_dir.clone();
    let app = Application::build(config).await.unwrap();
    let base = format!("http://127.0.0.1:{}", app.port());
    let store = app.store().clone();
    tokio::spawn(app.run_until_stopped());
    TestApp {
        base,
        store,
        data_dir: std::fs::canonicalize(data_dir).unwrap(),
        _dir: dir,
    }
}

/// Both backends where the harness gives both (PostgreSQL reported skipped otherwise).
async fn apps() -> Vec<TestApp> {
    let mut apps = vec![spawn_app(None).await];
    if let Some(url) = fresh_postgres_url().await {
        apps.push(spawn_app(Some(&url)).await);
    }
    apps
}

async fn spectl(app: &TestApp, args: &[&str]) -> Out {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_spectl"))
        .args(args)
        .env("SPE_URL", &app.base)
        .env_remove("SPE_TOKEN")
        .env("SPE_TOKEN_FILE", "/nonexistent/spe-tokens.json")
        .output()
        .await
        .unwrap();
    out.into()
}

/// Five records: five datasets registered through the store, each with its record.
async fn five_records(store: &Store) {
    for i in 1..=5 {
        store
            .insert_dataset(&NewDataset {
                id: format!("cohort-{i}"),
                description: "a cohort".into(),
                location: format!("/data/cohort-{i}"),
                crypt4gh: i % 2 == 0,
                visa: None,
                created_by: person("carol"),
                at: Timestamp::from_micros(1_000_000 * i),
            })
            .await
            .unwrap()
            .unwrap();
    }
}

async fn sql(store: &Store, text: &str) {
    store.debug_execute(text).await.unwrap();
}

async fn disable_triggers(store: &Store) {
    match store.backend() {
        Backend::Sqlite => {
            sql(store, "DROP TRIGGER audit_log_no_update").await;
            sql(store, "DROP TRIGGER audit_log_no_delete").await;
        }
        Backend::Postgres => sql(store, "ALTER TABLE audit_log DISABLE TRIGGER USER").await,
    }
}

fn broken(out: &Out, message: &str) {
    assert_eq!(out.code, 1, "{out:?}");
    assert!(
        out.stderr
            .contains(&format!("audit chain broken: {message}")),
        "{out:?}"
    );
}

#[tokio::test]
async fn verify_passes_an_intact_chain_and_export_writes_json_lines() {
    for app in apps().await {
        five_records(&app.store).await;
        let head = spe_store::audit::head(&app.store).await.unwrap().unwrap();
        let out = spectl(&app, &["audit", "verify"]).await;
        assert_eq!(out.code, 0, "{out:?}");
        assert_eq!(
            out.stdout.trim(),
            format!("audit chain verified: 5 records, head 5:{}", head.sha256)
        );
        let anchor = format!("5:{}", head.sha256);
        let out = spectl(&app, &["audit", "verify", "--anchor", &anchor]).await;
        assert_eq!(out.code, 0, "{out:?}");

        let out = spectl(&app, &["audit", "export"]).await;
        assert_eq!(out.code, 0, "{out:?}");
        let lines: Vec<Value> = out
            .stdout
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 5);
        assert_eq!(lines[0]["kind"], "dataset.registered");
        assert_eq!(lines[0]["time"], "1970-01-01T00:00:01.000000Z");
        assert_eq!(
            lines[1]["details"],
            serde_json::json!({"dataset": "cohort-2", "crypt4gh": true, "visa_required": false})
        );
        assert_eq!(lines[4]["sha256"], head.sha256.as_str());
        // Never a dataset's location.
        assert!(!out.stdout.contains("/data/cohort"));
        let out = spectl(
            &app,
            &["audit", "export", "--since", "1970-01-01T00:00:04Z"],
        )
        .await;
        assert_eq!(out.stdout.lines().count(), 2, "{out:?}");
        let out = spectl(&app, &["audit", "export", "--since", "yesterday"]).await;
        assert_eq!(out.code, 2, "{out:?}");
    }
}

#[tokio::test]
async fn verify_names_a_changed_record() {
    for app in apps().await {
        five_records(&app.store).await;
        disable_triggers(&app.store).await;
        sql(
            &app.store,
            "UPDATE audit_log SET details = '{\"dataset\":\"cohort-9\",\"crypt4gh\":false,\"visa_required\":false}' WHERE seq = 3",
        )
        .await;
        broken(
            &spectl(&app, &["audit", "verify"]).await,
            "record 3 was changed: its fields no longer give its SHA-256",
        );
    }
}

#[tokio::test]
async fn verify_names_a_deleted_record() {
    for app in apps().await {
        five_records(&app.store).await;
        let head = spe_store::audit::head(&app.store).await.unwrap().unwrap();
        disable_triggers(&app.store).await;
        sql(&app.store, "DELETE FROM audit_log WHERE seq = 2").await;
        broken(
            &spectl(&app, &["audit", "verify"]).await,
            "record 2 was deleted: the chain goes from 1 to 3",
        );
        // The newest deleted too: only the anchor shows that one.
        sql(&app.store, "DELETE FROM audit_log WHERE seq >= 3").await;
        assert_eq!(spectl(&app, &["audit", "verify"]).await.code, 0);
        let anchor = format!("5:{}", head.sha256);
        broken(
            &spectl(&app, &["audit", "verify", "--anchor", &anchor]).await,
            &format!("the anchored head {anchor} is missing: the chain ends at 1"),
        );
    }
}

#[tokio::test]
async fn verify_names_an_inserted_record() {
    for app in apps().await {
        five_records(&app.store).await;
        let records = spe_store::audit::all_records(&app.store).await.unwrap();
        disable_triggers(&app.store).await;
        for s in (2..=5).rev() {
            sql(
                &app.store,
                &format!("UPDATE audit_log SET seq = {} WHERE seq = {s}", s + 1),
            )
            .await;
        }
        let mut forged = AuditRecord {
            seq: 2,
            at: 1_500_000,
            kind: "dataset.retired".into(),
            actor: serde_json::json!({"issuer": spe_test_support::store::TEST_ISSUER, "sub": "mallory"}),
            run_id: None,
            details: serde_json::json!({"dataset": "cohort-1"}),
            prev_sha256: records[0].sha256.clone(),
            sha256: String::new(),
        };
        forged.sha256 = forged.computed_sha256();
        sql(
            &app.store,
            &format!(
                "INSERT INTO audit_log (seq, at, kind, actor, run_id, details, prev_sha256, sha256) \
                 VALUES (2, 1500000, 'dataset.retired', '{} mallory', NULL, '{{\"dataset\":\"cohort-1\"}}', '{}', '{}')",
                spe_test_support::store::TEST_ISSUER,
                forged.prev_sha256,
                forged.sha256
            ),
        )
        .await;
        broken(
            &spectl(&app, &["audit", "verify"]).await,
            "record 2 was inserted: the record that was 2 now sits at 3",
        );
    }
}

#[tokio::test]
async fn verify_names_swapped_records() {
    for app in apps().await {
        five_records(&app.store).await;
        disable_triggers(&app.store).await;
        sql(&app.store, "UPDATE audit_log SET seq = 1000 WHERE seq = 3").await;
        sql(&app.store, "UPDATE audit_log SET seq = 3 WHERE seq = 4").await;
        sql(&app.store, "UPDATE audit_log SET seq = 4 WHERE seq = 1000").await;
        broken(
            &spectl(&app, &["audit", "verify"]).await,
            "records were reordered: record 3 holds what was record 4",
        );
    }
}

#[tokio::test]
async fn run_delete_deletes_an_ended_runs_directory_and_the_chain_says_so() {
    use spe_core::{Actor, RunId, RunState, ServiceActor};
    let app = spawn_app(None).await;
    let id = RunId::new_random();
    let run_dir = app.data_dir.join(id.to_string());
    std::fs::create_dir_all(&run_dir).unwrap();
    std::fs::write(run_dir.join("log.json"), b"{}").unwrap();
    app.store
        .insert_run(&spe_store::NewRun {
            id,
            owner: spe_core::Subject::local_dev_user(),
            submission: spe_test_support::store::submission("quals@1.0.0", &[]),
            run_dir: run_dir.display().to_string(),
            created_at: Timestamp::from_micros(1),
        })
        .await
        .unwrap();
    let run = id.to_string();
    let out = spectl(&app, &["run", "delete", &run]).await;
    assert_eq!(out.code, 2, "{out:?}");
    assert!(
        out.stderr
            .contains("is QUEUED: only an ended run's data can be deleted; cancel it first"),
        "{out:?}"
    );
    app.store
        .transition(&spe_store::Transition {
            run: id,
            from: &[RunState::Queued],
            to: RunState::Canceled,
            actor: &Actor::Service(ServiceActor::Reconciler),
            reason: None,
            exit_code: None,
            at: Timestamp::from_micros(2),
        })
        .await
        .unwrap()
        .unwrap();
    let out = spectl(&app, &["run", "delete", &run]).await;
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(
        out.stdout.trim(),
        format!("{run}: run directory deleted, 1 files, 2 bytes; released objects deleted: 0")
    );
    assert!(!run_dir.exists());
    let out = spectl(&app, &["audit", "export"]).await;
    let last: Value = serde_json::from_str(out.stdout.lines().last().unwrap()).unwrap();
    assert_eq!(last["kind"], "run.data_deleted");
    assert_eq!(last["run_id"], run.as_str());
    assert_eq!(last["details"]["cause"], "request");
    assert_eq!(spectl(&app, &["audit", "verify"]).await.code, 0);
}
