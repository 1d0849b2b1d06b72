//! The audit chain and retention, black-box: wes-api on port 0 with the real OIDC provider
//! (tests/peers/oidc.sh) and the real S3 server (tests/peers/s3.sh). Refused tokens become a
//! bounded number of records; shares are recorded with the person who made them; `DELETE
//! /runs/{id}` deletes an ended run's directory and released objects (409 for a live run, 404
//! for someone else's) with a `run.data_deleted` record; the retention loop does the same by
//! itself once the period has passed. Without a peer the test is reported skipped (a failure
//! under CI).

use std::time::Duration;

use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_s3::primitives::ByteStream;
use serde_json::{Value, json};
use spe_core::time::Timestamp;
use spe_core::{Actor, RunId, RunState, ServiceActor, Subject};
use spe_store::{EgressOutcome, EgressState, NewEgressFile, NewRun, Store, Transition};
use spe_test_support::oidc as support;
use spe_test_support::peers::s3_url;
use spe_test_support::store::submission;
use wes_api::startup::Application;

const ACCESS_KEY: &str = "spe-test-access";
const SECRET_KEY: &str = "spe-test-secret-key";
const BUCKET: &str = "spe-results";

struct App {
    base: String,
    http: reqwest::Client,
    store: Store,
    /// `data_dir`, as the service canonicalised it.
    runs: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

/// wes-api with OIDC from the test provider, the `crawler:` section on the S3 server, and
/// `extra` top-level YAML.
async fn spawn(peer: &support::Peer, s3: &str, extra: &str) -> App {
    spawn_oidc(peer, s3, "", extra).await
}

/// [`spawn`] with more `auth.oidc` keys (`oidc_extra`, YAML at that level).
async fn spawn_oidc(peer: &support::Peer, s3: &str, oidc_extra: &str, extra: &str) -> App {
    let dir = tempfile::tempdir().unwrap();
    let oidc: String = format!("{}{oidc_extra}", peer.oidc_yaml())
        .lines()
        .map(|l| format!("    {l}\n"))
        .collect();
    let yaml = format!(
        r#"service:
  id: test.spe.audit
  name: SPE audit test
  organization: {{ name: SPE developers, url: "https://example.org/spe" }}
  environment: test
  auth_instructions_url: "https://example.org/spe/docs/user-guide#log-in"
server:
  listen: 127.0.0.1:0
  workers: 1
database:
  url: sqlite://{db}
data_dir: {data}
auth:
  oidc:
{oidc}
workflows:
  types:
    SMK: ["9"]
  engines:
    snakemake: {{ workflow_type: SMK, versions: ["9.27"] }}
slurm:
  enabled: false
crawler:
  bucket: {BUCKET}
  endpoint: "{s3}"
  path_style: true
{extra}
"#,
        db = dir.path().join("spe.db").display(),
        data = dir.path().join("runs").display(),
    );
    let env = vec![
        ("SPE__CRAWLER__ACCESS_KEY".to_owned(), ACCESS_KEY.to_owned()),
        ("SPE__CRAWLER__SECRET_KEY".to_owned(), SECRET_KEY.to_owned()),
    ];
    let config = spe_core::config::Config::parse(&yaml, env).unwrap();
    let app = Application::build(config).await.unwrap();
    let base = format!("http://127.0.0.1:{}/ga4gh/wes/v1", app.port());
    let store = app.store().clone();
    tokio::spawn(app.run_until_stopped());
    App {
        base,
        http: reqwest::Client::new(),
        store,
        runs: std::fs::canonicalize(dir.path().join("runs")).unwrap(),
        _dir: dir,
    }
}

impl App {
    async fn call(
        &self,
        token: &str,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(token);
        if let Some(body) = body {
            req = req.json(&body);
        }
        let res = req.send().await.unwrap();
        let status = res.status().as_u16();
        let text = res.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// Every record of the chain, through the admin route.
    async fn records(&self, token: &str) -> Vec<Value> {
        let (status, body) = self
            .call(token, reqwest::Method::GET, "/admin/audit?limit=1000", None)
            .await;
        assert_eq!(status, 200, "{body}");
        body["records"].as_array().unwrap().clone()
    }
}

fn now() -> Timestamp {
    Timestamp::from_datetime(chrono::Utc::now())
}

fn s3_client(endpoint: &str) -> aws_sdk_s3::Client {
    let config = aws_sdk_s3::config::Builder::new()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .force_path_style(true)
        .credentials_provider(Credentials::new(ACCESS_KEY, SECRET_KEY, None, None, "test"))
        .build();
    aws_sdk_s3::Client::from_conf(config)
}

/// An ENDED (COMPLETE) run of `owner` with a run directory of two files under data_dir and
/// `results/report.txt` released (its object in the bucket).
async fn ended_run_with_release(app: &App, s3: &aws_sdk_s3::Client, owner: Subject) -> RunId {
    let id = RunId::new_random();
    let run_dir = app.runs.join(id.to_string());
    std::fs::create_dir_all(run_dir.join("results")).unwrap();
    std::fs::write(run_dir.join("results/report.txt"), b"0123456789").unwrap();
    std::fs::write(run_dir.join("log.json"), b"{}").unwrap();
    app.store
        .insert_run(&NewRun {
            id,
            owner,
            submission: submission("quals@1.0.0", &[]),
            run_dir: run_dir.display().to_string(),
            created_at: now(),
        })
        .await
        .unwrap();
    s3.put_object()
        .bucket(BUCKET)
        .key(format!("{id}/results/report.txt"))
        .body(ByteStream::from(b"0123456789".to_vec()))
        .send()
        .await
        .unwrap();
    let file = NewEgressFile {
        path: "results/report.txt".into(),
        state: EgressState::Pending,
        size: 10,
        reason: None,
    };
    app.store
        .record_egress_scan(id, &[file], now())
        .await
        .unwrap();
    let lease = Timestamp::from_micros(now().micros() + 60_000_000);
    app.store
        .claim_egress_file(id, "results/report.txt", "test-crawler", now(), lease)
        .await
        .unwrap()
        .unwrap();
    let sha = "84d89877f0d4041efb6bf91a16f0248f2fd573e6af05c19f96bedb9f882f7882";
    assert!(
        app.store
            .finish_egress_file(
                id,
                "results/report.txt",
                "test-crawler",
                EgressOutcome::Released {
                    sha256: sha,
                    size: 10
                },
                now(),
            )
            .await
            .unwrap()
    );
    id
}

async fn end(store: &Store, run: RunId) {
    store
        .transition(&Transition {
            run,
            from: &[RunState::Queued],
            to: RunState::Complete,
            actor: &Actor::Service(ServiceActor::Reconciler),
            reason: None,
            exit_code: Some(0),
            at: now(),
        })
        .await
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn refused_tokens_are_recorded_per_address_and_window_and_shares_by_person() {
    let Some(peer) = support::peer().await else {
        return;
    };
    let Some(s3) = s3_url() else {
        return;
    };
    let app = spawn(&peer, &s3, "audit: { refusal_window_seconds: 1 }").await;
    let operator = peer.token("operator").await;
    let researcher = peer.token("researcher").await;
    let controller = peer.token("controller").await;

    // A flood of bad tokens: each refused, but recorded as counts, not one record each.
    for _ in 0..30 {
        let (status, _) = app
            .call("not-a-token", reqwest::Method::GET, "/runs", None)
            .await;
        assert_eq!(status, 401);
    }
    let mut refused: Vec<Value> = Vec::new();
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        refused = app
            .records(&operator)
            .await
            .into_iter()
            .filter(|r| r["kind"] == "token.refused")
            .collect();
        let counted: u64 = refused
            .iter()
            .map(|r| r["details"]["count"].as_u64().unwrap())
            .sum();
        if counted == 30 {
            break;
        }
    }
    let counted: u64 = refused
        .iter()
        .map(|r| r["details"]["count"].as_u64().unwrap())
        .sum();
    assert_eq!(counted, 30, "{refused:?}");
    assert!(
        refused.len() <= 3,
        "one record per address per window: {refused:?}"
    );
    assert_eq!(refused[0]["actor"], json!({"service": "wes-api"}));
    assert_eq!(refused[0]["details"]["address"], "127.0.0.1");
    assert_eq!(refused[0]["details"]["window_seconds"], 1);

    // A share, recorded with the (issuer, sub) who made it.
    let owner = Subject::new(peer.issuer.clone(), peer.sub("researcher").await).unwrap();
    let id = RunId::new_random();
    app.store
        .insert_run(&NewRun {
            id,
            owner: owner.clone(),
            submission: submission("quals@1.0.0", &[]),
            run_dir: app.runs.join(id.to_string()).display().to_string(),
            created_at: now(),
        })
        .await
        .unwrap();
    let (status, body) = app
        .call(
            &researcher,
            reqwest::Method::POST,
            &format!("/runs/{id}/shares"),
            Some(json!({"subject": "someone@lifescience-ri.eu"})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    // Data controllers read the chain too; researchers do not.
    let records = app.records(&controller).await;
    let share = records.iter().find(|r| r["kind"] == "share.added").unwrap();
    assert_eq!(
        share["actor"],
        json!({"issuer": owner.issuer(), "sub": owner.sub()})
    );
    assert_eq!(share["run_id"], id.to_string());
    let (status, _) = app
        .call(&researcher, reqwest::Method::GET, "/admin/audit", None)
        .await;
    assert_eq!(status, 403);
    let (status, body) = app
        .call(
            &operator,
            reqwest::Method::GET,
            "/admin/audit?limit=0",
            None,
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(body["msg"], "limit: from 1 to 1000");
    let (status, body) = app
        .call(
            &operator,
            reqwest::Method::GET,
            "/admin/audit?after_seq=-1",
            None,
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(body["msg"], "after_seq: 0 or more");
    // Paging: the head and the next page.
    let (_, page) = app
        .call(
            &operator,
            reqwest::Method::GET,
            "/admin/audit?limit=1",
            None,
        )
        .await;
    assert_eq!(page["records"].as_array().unwrap().len(), 1);
    assert_eq!(page["next_after_seq"], 1);
    assert_eq!(page["head"]["seq"], records.last().unwrap()["seq"]);
}

#[tokio::test]
async fn deleting_an_ended_run_removes_its_directory_and_released_objects_with_a_record() {
    let Some(peer) = support::peer().await else {
        return;
    };
    let Some(s3_endpoint) = s3_url() else {
        return;
    };
    let app = spawn(
        &peer,
        &s3_endpoint,
        "retention: { delete_released_objects: true }",
    )
    .await;
    let s3 = s3_client(&s3_endpoint);
    let researcher = peer.token("researcher").await;
    let researcher2 = peer.token("researcher2").await;
    let operator = peer.token("operator").await;
    let owner = Subject::new(peer.issuer.clone(), peer.sub("researcher").await).unwrap();
    let run = ended_run_with_release(&app, &s3, owner.clone()).await;
    let path = format!("/runs/{run}");
    let run_dir = app.runs.join(run.to_string());

    // Live: refused with a reason, nothing deleted.
    let (status, body) = app
        .call(&researcher, reqwest::Method::DELETE, &path, None)
        .await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(
        body["msg"],
        format!("run {run} is QUEUED: only an ended run's data can be deleted; cancel it first")
    );
    assert!(run_dir.join("log.json").is_file());
    end(&app.store, run).await;

    // Someone else's run is not theirs to see.
    let (status, _) = app
        .call(&researcher2, reqwest::Method::DELETE, &path, None)
        .await;
    assert_eq!(status, 404);

    let (status, body) = app
        .call(&researcher, reqwest::Method::DELETE, &path, None)
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        json!({
            "run_id": run.to_string(),
            "run_directory_deleted": true,
            "files": 2,
            "bytes": 12,
            "released_objects_deleted": ["results/report.txt"],
        })
    );
    assert!(!run_dir.exists());
    let gone = s3
        .head_object()
        .bucket(BUCKET)
        .key(format!("{run}/results/report.txt"))
        .send()
        .await;
    assert!(gone.is_err(), "the released object must be deleted");
    // No longer listed or signed.
    let (status, results) = app
        .call(
            &researcher,
            reqwest::Method::GET,
            &format!("/results/{run}"),
            None,
        )
        .await;
    assert!(
        status == 404 || results["files"].as_array().is_some_and(|f| f.is_empty()),
        "{status} {results}"
    );

    let records = app.records(&operator).await;
    let deleted: Vec<&Value> = records
        .iter()
        .filter(|r| r["kind"] == "run.data_deleted")
        .collect();
    assert_eq!(deleted.len(), 1, "{records:?}");
    let d = deleted[0];
    assert_eq!(d["run_id"], run.to_string());
    assert_eq!(
        d["actor"],
        json!({"issuer": owner.issuer(), "sub": owner.sub()})
    );
    assert_eq!(d["details"]["cause"], "request");
    assert_eq!(d["details"]["run_directory"], run_dir.display().to_string());
    assert_eq!(
        d["details"]["released_objects"],
        json!(["results/report.txt"])
    );
    assert_eq!(d["details"]["files"], 2);
    assert!(d["details"]["deleted_at"].as_str().unwrap().ends_with('Z'));
    // The run's end and the release are in the chain before it.
    assert!(
        records
            .iter()
            .any(|r| r["kind"] == "file.released" && r["run_id"] == run.to_string())
    );
    assert!(
        records
            .iter()
            .any(|r| r["kind"] == "run.ended" && r["run_id"] == run.to_string())
    );

    // Again: nothing left to delete, nothing recorded twice; an operator may do it too.
    let (status, body) = app
        .call(&operator, reqwest::Method::DELETE, &path, None)
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["run_directory_deleted"], false);
    let again = app.records(&operator).await;
    assert_eq!(
        again
            .iter()
            .filter(|r| r["kind"] == "run.data_deleted")
            .count(),
        1
    );
}

#[tokio::test]
async fn the_retention_period_deletes_ended_runs_by_itself() {
    let Some(peer) = support::peer().await else {
        return;
    };
    let Some(s3_endpoint) = s3_url() else {
        return;
    };
    let app = spawn(
        &peer,
        &s3_endpoint,
        "retention: { run_directories_after_seconds: 1, check_every_seconds: 1, delete_released_objects: true }",
    )
    .await;
    let s3 = s3_client(&s3_endpoint);
    let operator = peer.token("operator").await;
    let owner = Subject::new(peer.issuer.clone(), peer.sub("researcher").await).unwrap();
    let ended = ended_run_with_release(&app, &s3, owner.clone()).await;
    let live = ended_run_with_release(&app, &s3, owner).await;
    end(&app.store, ended).await;
    let mut deleted_at = None;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        deleted_at = app.store.data_deleted_at(ended).await.unwrap();
        if deleted_at.is_some() {
            break;
        }
    }
    assert!(deleted_at.is_some(), "the ended run's data was not deleted");
    assert!(!app.runs.join(ended.to_string()).exists());
    assert!(
        s3.head_object()
            .bucket(BUCKET)
            .key(format!("{ended}/results/report.txt"))
            .send()
            .await
            .is_err()
    );
    // A run that has not ended keeps everything.
    assert!(app.runs.join(live.to_string()).join("log.json").is_file());
    assert!(
        s3.head_object()
            .bucket(BUCKET)
            .key(format!("{live}/results/report.txt"))
            .send()
            .await
            .is_ok()
    );
    let records = app.records(&operator).await;
    let d = records
        .iter()
        .find(|r| r["kind"] == "run.data_deleted")
        .unwrap();
    assert_eq!(d["run_id"], ended.to_string());
    assert_eq!(d["actor"], json!({"service": "retention"}));
    assert_eq!(d["details"]["cause"], "retention");
}

#[tokio::test]
async fn the_head_is_anchored_to_the_log_and_the_bucket() {
    let _logs = spe_test_support::logs::captured_logs();
    let Some(peer) = support::peer().await else {
        return;
    };
    let Some(s3_endpoint) = s3_url() else {
        return;
    };
    let app = spawn(
        &peer,
        &s3_endpoint,
        "audit: { anchor_every_seconds: 1, anchor_s3_prefix: audit-anchors }",
    )
    .await;
    let s3 = s3_client(&s3_endpoint);
    let run = ended_run_with_release(
        &app,
        &s3,
        Subject::new(peer.issuer.clone(), "someone").unwrap(),
    )
    .await;
    end(&app.store, run).await;
    let head = spe_store::audit::head(&app.store).await.unwrap().unwrap();
    let key = format!("audit-anchors/{:020}-{}.json", head.seq, head.sha256);
    let mut object = None;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        if let Ok(o) = s3.get_object().bucket(BUCKET).key(&key).send().await {
            object = Some(o.body.collect().await.unwrap().into_bytes());
            break;
        }
    }
    let object: Value = serde_json::from_slice(&object.expect("the anchor object")).unwrap();
    assert_eq!(object["seq"], head.seq);
    assert_eq!(object["sha256"], head.sha256.as_str());
    let logs = spe_test_support::logs::captured_text();
    assert!(
        logs.lines()
            .any(|l| l.contains("audit chain anchor")
                && l.contains(&format!("sha256={}", head.sha256))),
        "no anchor line for the head in the log"
    );
}

#[tokio::test]
async fn failed_browser_logins_are_recorded_per_address_and_window() {
    let Some(peer) = support::peer().await else {
        return;
    };
    let Some(s3) = s3_url() else {
        return;
    };
    let app = spawn_oidc(
        &peer,
        &s3,
        "browser:\n  client_id: spe-web\n  client_secret: spe-web-secret\n  redirect_url: \"http://127.0.0.1:9/auth/callback\"\n  cookie_secure: false\n",
        "audit: { refusal_window_seconds: 1 }",
    )
    .await;
    let root = app.base.trim_end_matches("/ga4gh/wes/v1").to_owned();
    for query in ["error=access_denied", "state=forged&code=stolen"] {
        let res = app
            .http
            .get(format!("{root}/auth/callback?{query}"))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status().as_u16(), 400, "{query}");
    }
    let operator = peer.token("operator").await;
    let mut failed: Vec<Value> = Vec::new();
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        failed = app
            .records(&operator)
            .await
            .into_iter()
            .filter(|r| r["kind"] == "login.failed")
            .collect();
        let counted: u64 = failed
            .iter()
            .map(|r| r["details"]["count"].as_u64().unwrap())
            .sum();
        if counted == 2 {
            break;
        }
    }
    let counted: u64 = failed
        .iter()
        .map(|r| r["details"]["count"].as_u64().unwrap())
        .sum();
    assert_eq!(counted, 2, "{failed:?}");
    assert_eq!(failed[0]["details"]["address"], "127.0.0.1");
    assert_eq!(failed[0]["actor"], json!({"service": "wes-api"}));
}
