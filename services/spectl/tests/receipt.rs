//! Egress receipts end to end: `spectl keys generate --signing` writes the key pair, the real
//! wes-api (in this process, port 0, authentication off) publishes the public key and a run's
//! RO-Crate, the package in the real S3 server holds the crate and its signature as the
//! results crawler writes them (the crawler's own builder and signer), and `spectl results
//! download` + `verify` accept the untouched package and refuse a changed file, a changed
//! crate, another key's signature and a chain head the service never issued, each with a
//! message naming it. Without SPE_TEST_S3_URL the test is reported skipped, unless CI is set.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use results_crawler::receipt::Signer;
use serde_json::Value;
use sha2::{Digest, Sha256};
use spe_core::RunId;
use spe_core::config::Config;
use spe_core::rocrate::{CrateChainHead, CrateService};
use spe_core::time::Timestamp;
use spe_store::{EgressOutcome, EgressState, NewEgressFile, Store};
use spe_test_support::dev_config::{dev_yaml, test_env};
use spe_test_support::peers::s3_url;
use spe_test_support::process::TextOutput as Out;
use spe_test_support::repo_root;
use wes_api::startup::Application;

struct TestApp {
    base: String,
    store: Store,
    s3: aws_sdk_s3::Client,
    bucket: String,
    _dir: tempfile::TempDir,
}

async fn spawn_app(s3: &str, public_key: &Path) -> TestApp {
    let dir = tempfile::tempdir().unwrap();
    let mut env = test_env(dir.path());
    env.extend([
        ("SPE__AUTH".to_owned(), "disabled".to_owned()),
        ("SPE__CRAWLER__ENDPOINT".to_owned(), s3.to_owned()),
        (
            "SPE__RECEIPTS__PUBLIC_KEY".to_owned(),
            public_key.display().to_string(),
        ),
    ]);
    let config = Config::parse(&dev_yaml(), env).unwrap();
    let crawler = config.crawler.as_ref().unwrap();
    let s3 = spe_s3::client(crawler).await;
    let bucket = crawler.bucket.clone();
    let app = Application::build(config).await.unwrap();
    let base = format!("http://127.0.0.1:{}", app.port());
    let store = app.store().clone();
    tokio::spawn(app.run_until_stopped());
    TestApp {
        base,
        store,
        s3,
        bucket,
        _dir: dir,
    }
}

async fn spectl(base: &str, args: &[&str]) -> Out {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_spectl"))
        .args(args)
        .env("SPE_URL", base)
        .env_remove("SPE_TOKEN")
        .env("SPE_TOKEN_FILE", "/nonexistent/spe-tokens.json")
        .output()
        .await
        .unwrap()
        .into()
}

async fn ok(base: &str, args: &[&str]) -> String {
    let out = spectl(base, args).await;
    assert_eq!(out.code, 0, "{args:?}: {out:?}");
    out.stdout
}

fn now() -> Timestamp {
    Timestamp::from_datetime(chrono::Utc::now())
}

fn sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

async fn put(app: &TestApp, key: String, body: Vec<u8>) {
    app.s3
        .put_object()
        .bucket(&app.bucket)
        .key(key)
        .body(body.into())
        .send()
        .await
        .unwrap();
}

/// Each file's object in the bucket and its row released, as the crawler leaves them.
async fn release(app: &TestApp, run: RunId, files: &[(&str, &[u8])]) {
    let scanned: Vec<NewEgressFile> = files
        .iter()
        .map(|(path, body)| NewEgressFile {
            path: (*path).to_owned(),
            state: EgressState::Pending,
            size: i64::try_from(body.len()).unwrap(),
            reason: None,
        })
        .collect();
    app.store
        .record_egress_scan(run, &scanned, now())
        .await
        .unwrap();
    for (path, body) in files {
        put(app, spe_core::bucket::object_key(run, path), body.to_vec()).await;
        let lease = Timestamp::from_micros(now().micros() + 60_000_000);
        app.store
            .claim_egress_file(run, path, "test-crawler", now(), lease)
            .await
            .unwrap()
            .unwrap();
        let outcome = EgressOutcome::Released {
            sha256: &sha256(body),
            size: i64::try_from(body.len()).unwrap(),
        };
        assert!(
            app.store
                .finish_egress_file(run, path, "test-crawler", outcome, now())
                .await
                .unwrap()
        );
    }
}

/// The package's crate as the crawler builds it (its builder, the chain head now), or with
/// the chain head replaced by `fake_head`.
async fn package_crate(app: &TestApp, run: RunId, fake_head: Option<&str>) -> Vec<u8> {
    let facts = app.store.run_crate_facts(run).await.unwrap().unwrap();
    let head = spe_store::audit::head(&app.store)
        .await
        .unwrap()
        .expect("the submission is in the audit chain");
    let doc = facts.build(
        CrateService {
            id: "org.example.spe",
            name: "SPE",
            organization: "Example",
            organization_url: "https://example.org",
        },
        Some(CrateChainHead {
            seq: head.seq,
            sha256: fake_head.unwrap_or(&head.sha256),
        }),
    );
    serde_json::to_vec_pretty(&doc).unwrap()
}

async fn verify(base: &str, id: &str, dir: &Path) -> Out {
    spectl(
        base,
        &["results", "verify", id, "--dir", &dir.display().to_string()],
    )
    .await
}

fn assert_refused(out: &Out, reason: &str) {
    assert_eq!(out.code, 4, "{out:?}");
    assert!(
        out.stderr.contains("verification failed") && out.stderr.contains(reason),
        "want {reason:?} in {out:?}"
    );
}

#[tokio::test]
async fn a_signed_package_verifies_and_each_tampering_is_named() {
    let Some(s3) = s3_url() else {
        return; // reported skipped (a failure under CI) by s3_url
    };
    let keys = tempfile::tempdir().unwrap();
    let key = keys.path().join("receipt.key");
    let public = keys.path().join("receipt.pub");
    let out = spectl(
        "http://127.0.0.1:9",
        &[
            "keys",
            "generate",
            "--signing",
            "--secret-key",
            &key.display().to_string(),
            "--public-key",
            &public.display().to_string(),
        ],
    )
    .await;
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(
        std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let app = spawn_app(&s3, &public).await;
    let base = app.base.clone();

    // The API publishes the key as generated.
    let http = reqwest::Client::new();
    let published = http
        .get(format!("{base}/ga4gh/wes/v1/keys/receipt.pub"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(published, std::fs::read_to_string(&public).unwrap());
    let info: Value = http
        .get(format!("{base}/ga4gh/wes/v1/service-info"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        format!(
            "ed25519 {}\n",
            info["tags"]["receipt_public_key"].as_str().unwrap()
        ),
        published
    );

    let quals = repo_root().join("workflows/quals").display().to_string();
    ok(&base, &["workflow", "register", &quals]).await;
    ok(&base, &["workflow", "approve", "quals@1.0.0"]).await;
    let id = ok(&base, &["run", "submit", "quals@1.0.0"]).await;
    let id = id.trim().to_owned();
    let run: RunId = id.parse().unwrap();
    let csv = b"group,count\na,12\nb,15\n".to_vec();
    let txt = b"summary\n".to_vec();
    release(
        &app,
        run,
        &[("results.csv", &csv), ("notes/summary.txt", &txt)],
    )
    .await;

    // The run's crate from the API: the profile, this run, its released files.
    let api_crate: Value = http
        .get(format!("{base}/ga4gh/wes/v1/runs/{id}/ro-crate"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let text = api_crate.to_string();
    assert!(text.contains("https://w3id.org/5s-crate/0.4"), "{text}");
    assert!(text.contains(&sha256(&csv)), "{text}");

    // The package as the crawler writes it: the crate, and its signature by the service key.
    let signer = Signer::load(&key).unwrap();
    let bytes = package_crate(&app, run, None).await;
    let receipt = serde_json::to_vec_pretty(&signer.sign(&bytes)).unwrap();
    put(&app, format!("{id}/ro-crate-metadata.json"), bytes.clone()).await;
    put(
        &app,
        format!("{id}/ro-crate-metadata.json.sig"),
        receipt.clone(),
    )
    .await;

    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("dl");
    let out = ok(
        &base,
        &[
            "results",
            "download",
            &id,
            "--dir",
            &d.display().to_string(),
        ],
    )
    .await;
    assert!(out.contains("signed receipt saved"), "{out}");
    let good = verify(&base, &id, &d).await;
    assert_eq!(good.code, 0, "{good:?}");
    assert!(good.stdout.contains("receipt verified"), "{good:?}");
    assert!(good.stdout.contains("2 files"), "{good:?}");

    // A changed file.
    std::fs::write(d.join("results.csv"), b"group,count\na,2\nb,15\n").unwrap();
    assert_refused(&verify(&base, &id, &d).await, "results.csv: SHA-256");
    std::fs::write(d.join("results.csv"), &csv).unwrap();
    assert_eq!(verify(&base, &id, &d).await.code, 0);

    // A changed crate (one more space, same meaning): not the bytes signed.
    let crate_path = d.join("ro-crate-metadata.json");
    let mut changed = bytes.clone();
    changed.insert(1, b' ');
    std::fs::write(&crate_path, &changed).unwrap();
    assert_refused(
        &verify(&base, &id, &d).await,
        "is not the crate the service signed",
    );
    std::fs::write(&crate_path, &bytes).unwrap();

    // Another key's signature over the same crate.
    let other_key = keys.path().join("other.key");
    let other_pub = keys.path().join("other.pub");
    ok(
        &base,
        &[
            "keys",
            "generate",
            "--signing",
            "--secret-key",
            &other_key.display().to_string(),
            "--public-key",
            &other_pub.display().to_string(),
        ],
    )
    .await;
    let other = Signer::load(&other_key).unwrap();
    let sig_path = d.join("ro-crate-metadata.json.sig");
    std::fs::write(&sig_path, serde_json::to_vec(&other.sign(&bytes)).unwrap()).unwrap();
    assert_refused(
        &verify(&base, &id, &d).await,
        "signed by another key than the one this service publishes",
    );

    // A crate signed with the service's key but naming a chain head the service never issued.
    let forged = package_crate(&app, run, Some(&"f".repeat(64))).await;
    std::fs::write(&crate_path, &forged).unwrap();
    std::fs::write(
        &sig_path,
        serde_json::to_vec(&signer.sign(&forged)).unwrap(),
    )
    .unwrap();
    assert_refused(
        &verify(&base, &id, &d).await,
        "is not one this service issued",
    );

    // Put back as downloaded: verifies again.
    std::fs::write(&crate_path, &bytes).unwrap();
    std::fs::write(&sig_path, &receipt).unwrap();
    assert_eq!(verify(&base, &id, &d).await.code, 0);
}
