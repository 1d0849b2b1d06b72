//! Results access against a real S3 server (s3s-fs, tests/peers/s3.sh; run-all.sh exports
//! SPE_TEST_S3_URL) and the real OIDC provider (tests/peers/oidc.sh): owners share runs by
//! subject and by group, collaborators list released files and download them through presigned
//! links that expire; unreleased files are neither listed nor signed; the bucket stays private;
//! every link is recorded; neither S3 keys, link signatures nor tokens reach the logs.
//! Without SPE_TEST_S3_URL the test is reported skipped (`SKIPPED <test>: ...` on stderr),
//! unless CI is set: then it fails.

use std::time::Duration;

use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_s3::primitives::ByteStream;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use spe_core::RunId;
use spe_core::time::Timestamp;
use spe_store::{EgressOutcome, EgressState, NewEgressFile, NewRun, Store};
use spe_test_support::logs::captured_logs;
use spe_test_support::oidc as support;
use spe_test_support::peers::s3_url;
use spe_test_support::store::submission;
use wes_api::startup::Application;

const ACCESS_KEY: &str = "spe-test-access";
const SECRET_KEY: &str = "spe-test-secret-key";
const BUCKET: &str = "spe-results";
/// Short, so that the test sees a link expire.
const TTL_SECONDS: u64 = 3;

struct App {
    base: String,
    http: reqwest::Client,
    store: Store,
    /// `data_dir`.
    runs: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

/// wes-api with OIDC from the test provider and the `crawler:` section pointing at s3s-fs.
async fn spawn(peer: &support::Peer, s3: &str) -> App {
    spawn_with(peer, s3, "").await
}

/// The same, with more config sections (`extra`, top-level YAML).
async fn spawn_with(peer: &support::Peer, s3: &str, extra: &str) -> App {
    let dir = tempfile::tempdir().unwrap();
    let oidc: String = peer
        .oidc_yaml()
        .lines()
        .map(|l| format!("    {l}\n"))
        .collect();
    let yaml = format!(
        r#"service:
  id: test.spe.results
  name: SPE results test
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
  engine_parameters:
    - {{ name: cores, type: integer, default: "1", min: 1, max: 2 }}
    - {{ name: memory_mb, type: integer, default: "1024", min: 256, max: 8192 }}
    - {{ name: runtime_minutes, type: integer, default: "60", min: 1, max: 1440 }}
    - {{ name: partition, type: string, default: debug, allowed: [debug] }}
slurm:
  enabled: false
crawler:
  bucket: {BUCKET}
  endpoint: "{s3}"
  path_style: true
  presign_ttl_seconds: {TTL_SECONDS}
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
        runs: dir.path().join("runs"),
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

    async fn get(&self, token: &str, path: &str) -> (u16, Value) {
        self.call(token, reqwest::Method::GET, path, None).await
    }

    async fn post(&self, token: &str, path: &str, body: Value) -> (u16, Value) {
        self.call(token, reqwest::Method::POST, path, Some(body))
            .await
    }

    async fn delete(&self, token: &str, path: &str) -> u16 {
        self.call(token, reqwest::Method::DELETE, path, None)
            .await
            .0
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

/// A run owned by `owner` whose outputs are as the crawler leaves them: `results/report.txt`
/// released (object in the bucket, row released), `results/table.csv` held for review and
/// `results/late.txt` still pending (both with an object in the bucket too, as if someone had
/// put them there: they must still not be signed). Returns the run id and the released bytes.
async fn run_with_outputs(
    app: &App,
    s3: &aws_sdk_s3::Client,
    owner: spe_core::Subject,
    dataset: Option<&str>,
) -> (RunId, Vec<u8>) {
    let id = RunId::new_random();
    app.store
        .insert_run(&NewRun {
            id,
            owner,
            submission: quals_on(dataset),
            run_dir: format!("/nonexistent/{id}"),
            created_at: now(),
        })
        .await
        .unwrap();
    let released = format!("report of run {id}\n").repeat(100).into_bytes();
    for (path, body) in [
        ("results/report.txt", released.clone()),
        ("results/table.csv", b"patient,genotype\n".to_vec()),
        ("results/late.txt", b"not yet\n".to_vec()),
    ] {
        s3.put_object()
            .bucket(BUCKET)
            .key(format!("{id}/{path}"))
            .body(ByteStream::from(body))
            .send()
            .await
            .unwrap();
    }
    let file = |path: &str, state: EgressState| NewEgressFile {
        path: path.into(),
        state,
        size: 10,
        reason: None,
    };
    app.store
        .record_egress_scan(
            id,
            &[
                file("results/report.txt", EgressState::Pending),
                file("results/table.csv", EgressState::Held),
                file("results/late.txt", EgressState::Pending),
            ],
            now(),
        )
        .await
        .unwrap();
    let sha = hex(&Sha256::digest(&released));
    let size = i64::try_from(released.len()).unwrap();
    release(
        app,
        id,
        "results/report.txt",
        EgressOutcome::Released { sha256: &sha, size },
    )
    .await;
    (id, released)
}

/// Claims a pending output as a crawler would and settles it with `outcome`.
async fn release(app: &App, id: RunId, path: &str, outcome: EgressOutcome<'_>) {
    let lease = Timestamp::from_micros(now().micros() + 60_000_000);
    app.store
        .claim_egress_file(id, path, "test-crawler", now(), lease)
        .await
        .unwrap()
        .unwrap();
    assert!(
        app.store
            .finish_egress_file(id, path, "test-crawler", outcome, now())
            .await
            .unwrap()
    );
}

/// A submission of quals@1.0.0, reading `dataset` when one is named.
fn quals_on(dataset: Option<&str>) -> spe_core::request::RunSubmission {
    let mut s = submission("quals@1.0.0", &[]);
    if let Some(id) = dataset {
        s.workflow_params.insert("dataset".into(), json!(id));
    }
    s
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn run_ids(list: &Value) -> Vec<String> {
    list["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["run_id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn collaborators_download_released_results_shared_with_them() {
    let logs = captured_logs();
    let Some(peer) = support::peer().await else {
        return;
    };
    let Some(s3_endpoint) = s3_url() else {
        return;
    };
    let app = spawn(&peer, &s3_endpoint).await;
    let s3 = s3_client(&s3_endpoint);
    let mut tokens = std::collections::HashMap::new();
    for user in [
        "researcher",
        "researcher2",
        "collaborator",
        "operator",
        "nobody",
    ] {
        tokens.insert(user, peer.token(user).await);
    }
    let t = |user: &str| tokens[user].clone();
    let owner_sub = peer.sub("researcher").await;
    let collaborator_sub = peer.sub("collaborator").await;
    let owner = spe_core::Subject::new(peer.issuer.clone(), owner_sub.clone()).unwrap();
    let (run, released) = run_with_outputs(&app, &s3, owner, None).await;
    let results = format!("/results/{run}");
    let links = format!("/results/{run}/links");
    let shares = format!("/runs/{run}/shares");

    // The owner sees the run and only its released file.
    let (status, list) = app.get(&t("researcher"), "/results").await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(run_ids(&list), vec![run.to_string()]);
    assert_eq!(list["results"][0]["shared"], false);
    let (status, body) = app.get(&t("researcher"), &results).await;
    assert_eq!(status, 200, "{body}");
    let files = body["files"].as_array().unwrap();
    assert_eq!(files.len(), 1, "{body}");
    assert_eq!(files[0]["path"], "results/report.txt");
    assert_eq!(files[0]["size"], released.len());
    assert_eq!(files[0]["sha256"], hex(&Sha256::digest(&released)));

    // A link downloads the bytes; the bucket itself is private.
    let (status, link) = app
        .post(
            &t("researcher"),
            &links,
            json!({"path": "results/report.txt"}),
        )
        .await;
    assert_eq!(status, 201, "{link}");
    let url = link["url"].as_str().unwrap().to_owned();
    assert!(url.contains("X-Amz-Signature="), "not a presigned URL");
    assert_eq!(link["expires_in_seconds"], TTL_SECONDS);
    let got = app.http.get(&url).send().await.unwrap();
    assert_eq!(got.status().as_u16(), 200);
    assert_eq!(got.bytes().await.unwrap().to_vec(), released);
    let unsigned = app
        .http
        .get(format!("{s3_endpoint}/{BUCKET}/{run}/results/report.txt"))
        .send()
        .await
        .unwrap();
    assert!(
        matches!(unsigned.status().as_u16(), 401 | 403),
        "an unsigned GET must fail, got {}",
        unsigned.status()
    );

    // Held, pending and unknown files are never signed, even with an object in the bucket.
    for path in [
        "results/table.csv",
        "results/late.txt",
        "results/nope.txt",
        "../x",
    ] {
        let (status, body) = app
            .post(&t("researcher"), &links, json!({"path": path}))
            .await;
        assert_eq!(status, 404, "{path}: {body}");
    }
    let (status, _) = app.post(&t("researcher"), &links, json!({})).await;
    assert_eq!(status, 400);

    // Without a share, a collaborator or another researcher sees nothing: 404, not 403.
    for user in ["collaborator", "researcher2"] {
        let (status, list) = app.get(&t(user), "/results").await;
        assert_eq!(status, 200);
        assert!(run_ids(&list).is_empty(), "{user}: {list}");
        assert_eq!(app.get(&t(user), &results).await.0, 404, "{user}");
        let (status, _) = app
            .post(&t(user), &links, json!({"path": "results/report.txt"}))
            .await;
        assert_eq!(status, 404, "{user}");
    }
    // Only the owner (or an operator) manages shares.
    let by_subject = json!({"subject": collaborator_sub});
    assert_eq!(
        app.post(&t("collaborator"), &shares, by_subject.clone())
            .await
            .0,
        403
    );
    assert_eq!(
        app.post(&t("researcher2"), &shares, by_subject.clone())
            .await
            .0,
        404
    );
    assert_eq!(app.get(&t("nobody"), &results).await.0, 403);
    // Operators see every run's results.
    assert_eq!(app.get(&t("operator"), &results).await.0, 200);
    for bad in [
        json!({}),
        json!({"subject": "a", "group": "urn:x"}),
        json!({"subject": ""}),
        json!({"group": "not-a-urn"}),
        json!({"subject": "a b"}),
        json!({"user": "a"}),
    ] {
        let (status, body) = app.post(&t("researcher"), &shares, bad.clone()).await;
        assert_eq!(status, 400, "{bad}: {body}");
    }

    // Shared by subject.
    let (status, share) = app
        .post(&t("researcher"), &shares, by_subject.clone())
        .await;
    assert_eq!(status, 201, "{share}");
    assert_eq!(share["subject"], collaborator_sub.as_str());
    assert_eq!(
        share["created_by"],
        json!({"issuer": peer.issuer, "sub": owner_sub})
    );
    assert_eq!(share["issuer"], peer.issuer.as_str());
    assert_eq!(
        app.post(&t("researcher"), &shares, by_subject.clone())
            .await
            .0,
        200
    );
    let (status, list) = app.get(&t("researcher"), &shares).await;
    assert_eq!(status, 200);
    assert_eq!(list["shares"].as_array().unwrap().len(), 1, "{list}");
    let (_, list) = app.get(&t("collaborator"), "/results").await;
    assert_eq!(run_ids(&list), vec![run.to_string()]);
    assert_eq!(list["results"][0]["shared"], true);
    let (status, body) = app.get(&t("collaborator"), &results).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["files"].as_array().unwrap().len(), 1);
    let (status, link) = app
        .post(
            &t("collaborator"),
            &links,
            json!({"path": "results/report.txt"}),
        )
        .await;
    assert_eq!(status, 201, "{link}");
    let collaborator_url = link["url"].as_str().unwrap().to_owned();
    let got = app.http.get(&collaborator_url).send().await.unwrap();
    assert_eq!(got.bytes().await.unwrap().to_vec(), released);
    assert_eq!(
        app.post(
            &t("collaborator"),
            &links,
            json!({"path": "results/table.csv"})
        )
        .await
        .0,
        404
    );
    // researcher2 is not that subject.
    assert_eq!(app.get(&t("researcher2"), &results).await.0, 404);

    // Unshared: gone again. Removing it twice is a 404.
    let remove = format!("{shares}?subject={}", collaborator_sub.replace('@', "%40"));
    assert_eq!(app.delete(&t("collaborator"), &remove).await, 403);
    assert_eq!(app.delete(&t("researcher"), &remove).await, 204);
    assert_eq!(app.delete(&t("researcher"), &remove).await, 404);
    assert_eq!(
        app.delete(&t("researcher"), &format!("{shares}?who=x"))
            .await,
        400
    );
    assert_eq!(app.get(&t("collaborator"), &results).await.0, 404);

    // Shared by group (the collaborators' LS-Login group): researcher2 is not in it.
    let group = format!(
        "urn:geant:lifescience-ri.eu:group:spe-demo:collaborators#{}",
        support::AUTHORITY
    );
    let (status, share) = app
        .post(&t("researcher"), &shares, json!({"group": group}))
        .await;
    assert_eq!(status, 201, "{share}");
    assert_eq!(share["group"], group.as_str());
    assert_eq!(app.get(&t("collaborator"), &results).await.0, 200);
    let (_, list) = app.get(&t("collaborator"), "/results").await;
    assert_eq!(run_ids(&list), vec![run.to_string()]);
    assert_eq!(app.get(&t("researcher2"), &results).await.0, 404);
    let (status, link) = app
        .post(
            &t("collaborator"),
            &links,
            json!({"path": "results/report.txt"}),
        )
        .await;
    assert_eq!(status, 201, "{link}");

    // Every link issued is recorded: who, which object, until when.
    let recorded = app.store.result_links(run).await.unwrap();
    assert_eq!(recorded.len(), 3);
    let to: Vec<&str> = recorded.iter().map(|l| l.issued_to.sub()).collect();
    assert!(recorded.iter().all(|l| l.issued_to.issuer() == peer.issuer));
    assert_eq!(
        to,
        vec![
            owner_sub.as_str(),
            collaborator_sub.as_str(),
            collaborator_sub.as_str()
        ]
    );
    for l in &recorded {
        assert_eq!(l.object_key, format!("{run}/results/report.txt"));
        assert_eq!(l.path, "results/report.txt");
        let ttl = l.expires_at.micros() - l.issued_at.micros();
        assert!(
            (i64::try_from(TTL_SECONDS).unwrap() * 1_000_000 - ttl).abs() < 1_000_000,
            "{ttl}"
        );
    }
    // The record cannot be rewritten.
    assert!(
        app.store
            .debug_execute("DELETE FROM result_links")
            .await
            .is_err()
    );

    // A link expires.
    tokio::time::sleep(Duration::from_secs(TTL_SECONDS + 1)).await;
    let expired = app.http.get(&url).send().await.unwrap();
    assert_eq!(expired.status().as_u16(), 403, "an expired link must fail");

    // Neither the S3 secret key, nor a link's signature, nor a token is in the logs.
    let logs = String::from_utf8_lossy(&logs.lock().unwrap()).into_owned();
    assert!(logs.contains("results link issued"), "audit line missing");
    assert!(
        !logs.contains(SECRET_KEY),
        "the S3 secret key is in the logs"
    );
    for u in [&url, &collaborator_url] {
        let signature = u.split("X-Amz-Signature=").nth(1).unwrap();
        let signature = signature.split('&').next().unwrap();
        assert!(
            !logs.contains(signature),
            "a link's signature is in the logs"
        );
    }
    for (user, token) in &tokens {
        assert!(
            !logs.contains(token.as_str()),
            "{user}'s token is in the logs"
        );
    }
}

/// A COMPLETE run of `owner` whose outputs, as the crawler recorded them, are all held for
/// review and are on disk in its run directory (`data_dir/<id>`), with these contents.
async fn run_with_held(
    app: &App,
    owner: spe_core::Subject,
    dataset: Option<&str>,
    files: &[(&str, &str)],
) -> RunId {
    let id = RunId::new_random();
    let run_dir = app.runs.join(id.to_string());
    app.store
        .insert_run(&NewRun {
            id,
            owner,
            submission: quals_on(dataset),
            run_dir: run_dir.display().to_string(),
            created_at: now(),
        })
        .await
        .unwrap();
    let mut held = Vec::new();
    for (path, body) in files {
        let file = run_dir.join(path);
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(&file, body).unwrap();
        held.push(NewEgressFile {
            path: (*path).into(),
            state: EgressState::Held,
            size: body.len() as i64,
            reason: Some("matches a review rule".into()),
        });
    }
    app.store
        .record_egress_scan(id, &held, now())
        .await
        .unwrap();
    id
}

fn decision_of(egress: &Value, path: &str) -> (String, String) {
    let file = egress["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["path"] == path)
        .unwrap_or_else(|| panic!("{path} not in {egress}"));
    (
        file["state"].as_str().unwrap_or_default().to_owned(),
        file["decision"].as_str().unwrap_or_default().to_owned(),
    )
}

#[tokio::test]
async fn controllers_who_do_not_own_a_run_review_its_held_outputs() {
    let Some(peer) = support::peer().await else {
        return;
    };
    let Some(s3_endpoint) = s3_url() else {
        return;
    };
    let app = spawn_with(
        &peer,
        &s3_endpoint,
        "review:\n  overdue_after_seconds: 1\n  overdue_check_every_seconds: 1\n",
    )
    .await;
    let s3 = s3_client(&s3_endpoint);
    let mut tokens = std::collections::HashMap::new();
    for user in ["steward", "controller", "researcher2"] {
        tokens.insert(user, peer.token(user).await);
    }
    let t = |user: &str| tokens[user].clone();
    let owner = spe_core::Subject::new(peer.issuer.clone(), peer.sub("steward").await).unwrap();
    // The approved workflow, whose manifest says which parameter names a dataset (registered
    // by one controller, approved by another: the four-eyes rule).
    let controller = t("controller");
    let quals = spe_test_support::repo_root().join("workflows/quals");
    let (status, body) = app
        .post(
            &controller,
            "/admin/workflows",
            json!({"source_dir": quals.display().to_string()}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = app
        .post(
            &t("steward"),
            "/admin/workflows/quals/1.0.0/approve",
            json!({}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    // Earlier runs of the same workflow with a released file, on the same dataset and on
    // another: the first is the reviewer's differencing material, the second is not.
    let (earlier, _) = run_with_outputs(&app, &s3, owner.clone(), Some("demo-1")).await;
    let (_elsewhere, _) = run_with_outputs(&app, &s3, owner.clone(), Some("demo-2")).await;
    let run = run_with_held(
        &app,
        owner,
        Some("demo-1"),
        &[
            ("results/table.csv", "sample,n\nA,12\n"),
            ("plots/q.svg", "<svg/>"),
        ],
    )
    .await;
    let review = format!("/admin/reviews/{run}");
    let votes = format!("{review}/votes");
    let egress = format!("/runs/{run}/egress");

    // Undecided past the configured second: reported, and marked in the listing.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let (status, list) = app.get(&t("controller"), "/admin/reviews?state=open").await;
    assert_eq!(status, 200, "{list}");
    // Oldest first: the earlier runs hold a file too.
    let listed = list["requests"].as_array().unwrap();
    assert_eq!(listed.len(), 3, "{list}");
    assert_eq!(listed[2]["run_id"], run.to_string());
    assert_eq!(listed[2]["held_files"], 2);
    assert_eq!(listed[2]["overdue"], true, "{list}");

    // The owner holds the controller role too, but never reviews their own run.
    let (status, body) = app
        .post(
            &t("steward"),
            &votes,
            json!({"path": "results/table.csv", "vote": "approve"}),
        )
        .await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(
        body["msg"],
        format!("you own run {run}: another data controller must review its outputs")
    );
    // Other researchers see nothing of it; researchers are not reviewers.
    assert_eq!(app.get(&t("researcher2"), &egress).await.0, 404);
    assert_eq!(app.get(&t("researcher2"), "/admin/reviews").await.0, 403);

    // A reviewer sees each file, its state and reason.
    let (status, body) = app.get(&t("controller"), &review).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["you_may_vote"], true);
    assert_eq!(body["files"][1]["path"], "results/table.csv");
    assert_eq!(body["files"][1]["reason"], "matches a review rule");
    assert_eq!(body["files"][1]["review"]["decision"], "awaiting");
    assert_eq!(body["datasets"], json!(["demo-1"]));
    assert_eq!(
        body["earlier_releases"].as_array().unwrap().len(),
        1,
        "only the run on the same dataset: {body}"
    );
    assert_eq!(body["earlier_releases"][0]["run_id"], earlier.to_string());
    assert_eq!(
        body["earlier_releases"][0]["files"][0]["path"],
        "results/report.txt"
    );

    // A reviewer looks at each file: a table with its summary, an image.
    let (status, seen) = app
        .get(
            &t("controller"),
            &format!("{review}/preview?path=results/table.csv"),
        )
        .await;
    assert_eq!(status, 200, "{seen}");
    assert_eq!(seen["sha256"], hex(&Sha256::digest(b"sample,n\nA,12\n")));
    assert_eq!(seen["preview"]["kind"], "table");
    assert_eq!(seen["preview"]["rows"], json!([["A", "12"]]));
    assert_eq!(seen["summary"]["rows"], 1);
    assert_eq!(seen["summary"]["columns"][1]["name"], "n");
    assert_eq!(seen["summary"]["columns"][1]["min"], 12.0);
    let (_, seen) = app
        .get(
            &t("controller"),
            &format!("{review}/preview?path=plots/q.svg"),
        )
        .await;
    assert_eq!(seen["preview"]["kind"], "image", "{seen}");
    assert_eq!(seen["preview"]["media_type"], "image/svg+xml");
    let (status, seen) = app
        .get(&t("controller"), &format!("{review}/preview?path=nope.csv"))
        .await;
    assert_eq!(status, 404, "{seen}");
    assert_eq!(
        app.get(
            &t("researcher2"),
            &format!("{review}/preview?path=plots/q.svg")
        )
        .await
        .0,
        403
    );

    // A rejection needs a comment; a return too, and the researcher answers it.
    let (status, body) = app
        .post(
            &t("controller"),
            &votes,
            json!({"path": "plots/q.svg", "vote": "reject"}),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(
        body["msg"],
        "comment: required: say why, for the researcher and the record"
    );
    let (status, body) = app
        .post(
            &t("controller"),
            &format!("{review}/return"),
            json!({"comment": "what does column n count?"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (_, mine) = app.get(&t("steward"), &egress).await;
    assert_eq!(mine["review"], "returned", "{mine}");
    assert_eq!(mine["egress_error"], Value::Null);
    assert_eq!(mine["messages"][0]["comment"], "what does column n count?");
    let (status, body) = app
        .post(
            &t("steward"),
            &format!("{egress}/answer"),
            json!({"comment": "samples per site, all above 10"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");

    // One approval releases the table (the crawler's part); a rejection keeps the plot in.
    let (status, body) = app
        .post(
            &t("controller"),
            &votes,
            json!({"path": "results/table.csv", "vote": "approve", "comment": "ok"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["decision"], "approved");
    let (status, body) = app
        .post(
            &t("controller"),
            &votes,
            json!({"path": "plots/q.svg", "vote": "reject", "comment": "identifiable"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["decision"], "rejected");
    let (status, body) = app
        .post(
            &t("controller"),
            &votes,
            json!({"path": "plots/q.svg", "vote": "approve"}),
        )
        .await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(
        body["msg"],
        "plots/q.svg is rejected, not held: there is nothing to vote on"
    );
    let (_, mine) = app.get(&t("steward"), &egress).await;
    assert_eq!(
        decision_of(&mine, "results/table.csv"),
        ("pending".into(), "approved".into())
    );
    assert_eq!(
        decision_of(&mine, "plots/q.svg"),
        ("rejected".into(), "rejected".into())
    );
    assert_eq!(mine["review"], "decided");
    let approved = app
        .store
        .egress_file(run, "results/table.csv")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        approved.approved_sha256.as_deref(),
        Some(hex(&Sha256::digest(b"sample,n\nA,12\n")).as_str())
    );

    // Released (as the crawler does), then revoked: its object is gone and no link is signed.
    let bytes = b"sample,n\nA,12\n".to_vec();
    s3.put_object()
        .bucket(BUCKET)
        .key(format!("{run}/results/table.csv"))
        .body(ByteStream::from(bytes.clone()))
        .send()
        .await
        .unwrap();
    let lease = Timestamp::from_micros(now().micros() + 60_000_000);
    app.store
        .claim_egress_file(run, "results/table.csv", "test-crawler", now(), lease)
        .await
        .unwrap()
        .unwrap();
    let sha = hex(&Sha256::digest(&bytes));
    app.store
        .finish_egress_file(
            run,
            "results/table.csv",
            "test-crawler",
            EgressOutcome::Released {
                sha256: &sha,
                size: bytes.len() as i64,
            },
            now(),
        )
        .await
        .unwrap();
    let links = format!("/results/{run}/links");
    let (status, _) = app
        .post(&t("steward"), &links, json!({"path": "results/table.csv"}))
        .await;
    assert_eq!(status, 201);
    let (status, body) = app
        .post(
            &t("controller"),
            &format!("{review}/revoke"),
            json!({"path": "results/table.csv", "comment": "a site has 3 patients"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let gone = s3
        .head_object()
        .bucket(BUCKET)
        .key(format!("{run}/results/table.csv"))
        .send()
        .await;
    assert!(gone.is_err(), "the revoked object is still in the bucket");
    let (status, body) = app
        .post(&t("steward"), &links, json!({"path": "results/table.csv"}))
        .await;
    assert_eq!(status, 404, "{body}");
    let (_, mine) = app.get(&t("steward"), &egress).await;
    assert_eq!(decision_of(&mine, "results/table.csv").0, "revoked");
    let (_, body) = app.get(&t("controller"), &review).await;
    let kinds: Vec<&str> = body["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        vec!["overdue", "return", "resubmit", "vote", "vote", "revoke"]
    );
}

#[tokio::test]
async fn two_person_review_needs_two_distinct_controllers_and_a_third_breaks_a_tie() {
    let Some(peer) = support::peer().await else {
        return;
    };
    let Some(s3_endpoint) = s3_url() else {
        return;
    };
    let app = spawn_with(&peer, &s3_endpoint, "review:\n  approvals_required: 2\n").await;
    let mut tokens = std::collections::HashMap::new();
    for user in ["controller", "controller2", "controller3"] {
        tokens.insert(user, peer.token(user).await);
    }
    let t = |user: &str| tokens[user].clone();
    let owner = spe_core::Subject::new(peer.issuer.clone(), peer.sub("researcher").await).unwrap();
    let run = run_with_held(
        &app,
        owner,
        None,
        &[
            ("a.csv", "n\n12\n"),
            ("b.csv", "n\n15\n"),
            ("c.csv", "n\n20\n"),
        ],
    )
    .await;
    let votes = format!("/admin/reviews/{run}/votes");
    let vote = |who: &'static str, path: &'static str, v: &'static str| {
        let (app, votes, token) = (&app, votes.clone(), t(who));
        async move {
            app.post(
                &token,
                &votes,
                json!({"path": path, "vote": v, "comment": "reviewed"}),
            )
            .await
        }
    };
    let (status, body) = vote("controller", "a.csv", "approve").await;
    assert_eq!((status, body["decision"].clone()), (200, json!("awaiting")));
    let (status, body) = vote("controller", "a.csv", "approve").await;
    assert_eq!(status, 409);
    assert_eq!(body["msg"], "you have voted on a.csv in this round already");
    let (_, body) = vote("controller2", "a.csv", "approve").await;
    assert_eq!(body["decision"], "approved");

    // Disagreement: conflicted until a third controller decides.
    vote("controller", "b.csv", "approve").await;
    let (_, body) = vote("controller2", "b.csv", "reject").await;
    assert_eq!(body["decision"], "conflicted");
    let (_, body) = vote("controller3", "b.csv", "approve").await;
    assert_eq!(body["decision"], "approved");

    // Content changed after the first vote: that vote no longer counts.
    vote("controller", "c.csv", "approve").await;
    std::fs::write(app.runs.join(run.to_string()).join("c.csv"), "n\n3\n").unwrap();
    let (_, body) = vote("controller2", "c.csv", "approve").await;
    assert_eq!(body["votes_reset"], true, "{body}");
    assert_eq!(body["decision"], "awaiting");
    let (_, body) = vote("controller", "c.csv", "approve").await;
    assert_eq!(body["decision"], "approved");
    let c = app.store.egress_file(run, "c.csv").await.unwrap().unwrap();
    assert_eq!(
        c.approved_sha256.as_deref(),
        Some(hex(&Sha256::digest(b"n\n3\n")).as_str())
    );
}

/// The service's Crypt4GH key pair and passphrase as files a deployment keeps (0600), and the
/// `crypt4gh:` section naming them.
fn service_keys(dir: &std::path::Path) -> (spe_crypt4gh::SecretKey, String) {
    use std::os::unix::fs::OpenOptionsExt;
    let write = |name: &str, text: &str| {
        let path = dir.join(name);
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .unwrap();
        std::io::Write::write_all(&mut f, text.as_bytes()).unwrap();
        path
    };
    let key = spe_crypt4gh::SecretKey::generate().unwrap();
    let sk = write(
        "service.sec",
        &key.to_pem(b"test passphrase", None).unwrap(),
    );
    let pk = write("service.pub", &key.public_key().to_pem());
    let pass = write("service.pass", "test passphrase\n");
    let yaml = format!(
        "crypt4gh:\n  secret_keys: [{}]\n  public_key: {}\n  passphrase_file: {}\n",
        sk.display(),
        pk.display(),
        pass.display()
    );
    (key, yaml)
}

/// A run of `owner` whose `results.csv` the crawler stored encrypted to `service` (the bucket
/// holds the Crypt4GH file; the row records the plaintext's size and SHA-256).
async fn run_with_encrypted_output(
    app: &App,
    s3: &aws_sdk_s3::Client,
    owner: spe_core::Subject,
    service: &spe_crypt4gh::SecretKey,
    plain: &[u8],
) -> RunId {
    let id = RunId::new_random();
    app.store
        .insert_run(&NewRun {
            id,
            owner,
            submission: quals_on(None),
            run_dir: format!("/nonexistent/{id}"),
            created_at: now(),
        })
        .await
        .unwrap();
    let mut sealed = Vec::new();
    spe_crypt4gh::encrypt(plain, &mut sealed, &[service.public_key()], None).unwrap();
    s3.put_object()
        .bucket(BUCKET)
        .key(format!("{id}/results.csv"))
        .body(ByteStream::from(sealed))
        .send()
        .await
        .unwrap();
    let file = NewEgressFile {
        path: "results.csv".into(),
        state: EgressState::Pending,
        size: 10,
        reason: None,
    };
    app.store
        .record_egress_scan(id, &[file], now())
        .await
        .unwrap();
    let sha = hex(&Sha256::digest(plain));
    let outcome = EgressOutcome::ReleasedEncrypted {
        sha256: &sha,
        size: i64::try_from(plain.len()).unwrap(),
        with: spe_core::manifest::OutputEncryption::Crypt4gh,
    };
    release(app, id, "results.csv", outcome).await;
    id
}

#[tokio::test]
async fn an_encrypted_result_downloads_bound_to_the_readers_own_key_and_is_audited() {
    let Some(peer) = support::peer().await else {
        return;
    };
    let Some(s3_endpoint) = s3_url() else {
        return;
    };
    let keys_dir = tempfile::tempdir().unwrap();
    let (service, section) = service_keys(keys_dir.path());
    let app = spawn_with(&peer, &s3_endpoint, &section).await;
    let s3 = s3_client(&s3_endpoint);
    let researcher = peer.token("researcher").await;
    let collaborator = peer.token("collaborator").await;
    let operator = peer.token("operator").await;
    let owner = spe_core::Subject::new(peer.issuer.clone(), peer.sub("researcher").await).unwrap();
    // Several segments, so the body streams in more than one piece.
    let plain: Vec<u8> = "sample,n_calls,mean_qual\n"
        .to_string()
        .into_bytes()
        .into_iter()
        .chain((0..200_000).map(|i: u32| b"0123456789,\n"[(i % 12) as usize]))
        .collect();
    let run = run_with_encrypted_output(&app, &s3, owner, &service, &plain).await;
    let download = format!("{}/results/{run}/crypt4gh?path=results.csv", app.base);

    // Listed with how it is stored; size and SHA-256 are the plaintext's.
    let (status, body) = app.get(&researcher, &format!("/results/{run}")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["files"][0]["encryption"], "crypt4gh");
    assert_eq!(body["files"][0]["sha256"], hex(&Sha256::digest(&plain)));

    // No presigned link for it: the object is encrypted to the service's key.
    let (status, body) = app
        .post(
            &researcher,
            &format!("/results/{run}/links"),
            json!({"path": "results.csv"}),
        )
        .await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(
        body["msg"],
        format!(
            "results.csv is stored Crypt4GH-encrypted and is sent only bound to your key: \
             GET /ga4gh/wes/v1/results/{run}/crypt4gh?path=results.csv (`spectl results download`)"
        )
    );

    // Without a key of their own, the reader is told how to get one.
    let res = app
        .http
        .get(&download)
        .bearer_auth(&researcher)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 409);
    let body: Value = res.json().await.unwrap();
    assert!(
        body["msg"]
            .as_str()
            .unwrap()
            .contains("register one with POST /ga4gh/wes/v1/me/crypt4gh-key"),
        "{body}"
    );
    let (status, _) = app.get(&researcher, "/me/crypt4gh-key").await;
    assert_eq!(status, 404);

    // A key that is not one is refused, saying so; a real one is registered.
    let res = app
        .http
        .post(format!("{}/me/crypt4gh-key", app.base))
        .bearer_auth(&researcher)
        .body("not a key")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 400);
    let reader = spe_crypt4gh::SecretKey::generate().unwrap();
    let res = app
        .http
        .post(format!("{}/me/crypt4gh-key", app.base))
        .bearer_auth(&researcher)
        .header("content-type", "text/plain")
        .body(reader.public_key().to_pem())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
    let registered: Value = res.json().await.unwrap();
    let fingerprint = reader.public_key().fingerprint();
    assert_eq!(registered["fingerprint"], fingerprint);
    let (status, mine) = app.get(&researcher, "/me/crypt4gh-key").await;
    assert_eq!(status, 200, "{mine}");
    assert_eq!(mine["source"], "registered");
    assert_eq!(mine["fingerprints"], json!([fingerprint]));

    // The download is one Crypt4GH file the reader's key opens, and only theirs.
    let res = app
        .http
        .get(&download)
        .bearer_auth(&researcher)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
    assert_eq!(
        res.headers()["x-spe-crypt4gh-recipients"].to_str().unwrap(),
        fingerprint
    );
    let file = res.bytes().await.unwrap().to_vec();
    assert!(file.starts_with(b"crypt4gh"));
    let mut got = Vec::new();
    spe_crypt4gh::decrypt(
        &file[..],
        &mut got,
        std::slice::from_ref(&reader),
        Default::default(),
    )
    .unwrap();
    assert!(
        got == plain,
        "the decrypted download differs from the output"
    );
    assert!(matches!(
        spe_crypt4gh::decrypt(
            &file[..],
            Vec::new(),
            std::slice::from_ref(&service),
            Default::default()
        ),
        Err(spe_crypt4gh::Error::NoMatchingKey)
    ));
    // The body is the stored one, byte for byte: only the header changed.
    let stored = s3
        .get_object()
        .bucket(BUCKET)
        .key(format!("{run}/results.csv"))
        .send()
        .await
        .unwrap()
        .body
        .collect()
        .await
        .unwrap()
        .into_bytes();
    let (_, stored_at) =
        spe_crypt4gh::open_prefix(&stored, std::slice::from_ref(&service)).unwrap();
    let (_, file_at) = spe_crypt4gh::open_prefix(&file, std::slice::from_ref(&reader)).unwrap();
    assert!(stored[stored_at as usize..] == file[file_at as usize..]);

    // Shared runs only: a collaborator it was not shared with sees nothing.
    let res = app
        .http
        .get(&download)
        .bearer_auth(&collaborator)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 404);

    // Bad requests say what is wrong.
    for (query, want) in [
        (
            "",
            "name the file: ?path=<its path, as GET /results/{run_id} lists it>",
        ),
        ("?path=nope.csv", "run has no released file"),
        (
            "?path=results.csv&x=1",
            "unknown query parameter \"x\"; known: path",
        ),
    ] {
        let res = app
            .http
            .get(format!("{}/results/{run}/crypt4gh{query}", app.base))
            .bearer_auth(&researcher)
            .send()
            .await
            .unwrap();
        let status = res.status().as_u16();
        let body: Value = res.json().await.unwrap();
        let msg = body["msg"]
            .as_str()
            .unwrap()
            .replace(&format!("run {run} "), "run ");
        assert!(matches!(status, 400 | 404), "{query}: {status}");
        assert_eq!(
            msg,
            want.replace(
                "run has no released file",
                "run has no released file \"nope.csv\""
            ),
            "{query}"
        );
    }

    // Each download is in the audit chain with the key it was bound to.
    let (status, audit) = app.get(&operator, "/admin/audit?limit=1000").await;
    assert_eq!(status, 200, "{audit}");
    let records = audit["records"].as_array().unwrap();
    let downloads: Vec<&Value> = records
        .iter()
        .filter(|r| r["kind"] == "result.downloaded_encrypted")
        .collect();
    assert_eq!(downloads.len(), 1, "{records:?}");
    assert_eq!(downloads[0]["run_id"], run.to_string());
    assert_eq!(downloads[0]["details"]["path"], "results.csv");
    assert_eq!(
        downloads[0]["details"]["recipient_fingerprints"],
        json!([fingerprint])
    );
    assert_eq!(downloads[0]["details"]["key_source"], "registered");
    assert!(records.iter().any(
        |r| r["kind"] == "reader_key.registered" && r["details"]["fingerprint"] == fingerprint
    ));
}
