//! The crawler against a real S3 server (s3s-fs, started by tests/peers/s3.sh; run-all.sh
//! exports SPE_TEST_S3_URL) and a real store (SQLite). Without SPE_TEST_S3_URL these tests are
//! reported skipped (`SKIPPED <test>: ...` on stderr), unless CI is set, where they fail.

use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use results_crawler::crawler::{Crawler, Settings};
use results_crawler::metrics::Metrics;
use results_crawler::s3::Bucket;
use serde_json::json;
use sha2::{Digest, Sha256};
use spe_core::config::CrawlerConfig;
use spe_core::digest::WorkflowDigest;
use spe_core::manifest::Manifest;
use spe_core::request::WorkflowType;
use spe_core::secret::DatabaseUrl;
use spe_core::slurm::SlurmJobId;
use spe_core::time::Timestamp;
use spe_core::{RunId, RunState};
use spe_store::{
    EgressState, NewRun, NewVote, NewWorkflowVersion, ReviewEventKind, Store, Tally, Transition,
    Vote,
};
use spe_test_support::peers::s3_url;
use spe_test_support::process::Service;
use spe_test_support::store::{person, postgres_store_with_pool, submission};

fn crawler_config(endpoint: &str) -> CrawlerConfig {
    serde_json::from_value(json!({
        "bucket": "spe-results",
        "endpoint": endpoint,
        "path_style": true,
        "access_key": "spe-test-access",
        "secret_key": "spe-test-secret-key",
    }))
    .unwrap()
}

fn settings() -> Settings {
    Settings {
        multipart_threshold: 1024 * 1024,
        part_size: 5 * 1024 * 1024,
        concurrency: 4,
        max_backoff: Duration::from_secs(1),
        lease: Duration::from_secs(60),
        walk_max_attempts: 5,
        walk_max_entries: 1_000_000,
    }
}

struct World {
    _dir: tempfile::TempDir,
    data: PathBuf,
    outside: PathBuf,
    store: Store,
    bucket: Bucket,
    endpoint: String,
}

/// The example workflow's manifest as these tests use it. The shipped one holds the plot for a
/// data controller's review; here the plot is released automatically (images allowed), so that
/// a run has several files to upload.
fn example_yaml() -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../workflows/quals");
    let text = std::fs::read_to_string(root.join("workflow.yaml")).unwrap();
    let shipped = "  release:\n    - results.csv\n";
    let review = "  review: [plots/*.svg]\n";
    assert!(
        text.contains(shipped) && text.contains(review),
        "the example manifest changed"
    );
    text.replace(shipped, "  release:\n    - results.csv\n    - plots/*.svg\n")
        .replace(review, "  review: []\n")
        .replace(
            "  max_file_bytes: 10485760\n",
            "  max_file_bytes: 10485760\n  checks:\n    - { glob: \"plots/*.svg\", allow_types: [image] }\n",
        )
}

fn now() -> Timestamp {
    Timestamp::from_datetime(chrono::Utc::now())
}

async fn world() -> Option<World> {
    let endpoint = s3_url()?;
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/spe.db", dir.path().display());
    let store = Store::connect(&DatabaseUrl::new(url), 4).await.unwrap();
    Some(world_with(endpoint, dir, store).await)
}

async fn world_with(endpoint: String, dir: tempfile::TempDir, store: Store) -> World {
    let data = dir.path().join("runs");
    let outside = dir.path().join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(outside.join("quals.svg"), "<svg>not yours</svg>").unwrap();
    std::fs::write(outside.join("secret.csv"), "patient,genotype\n").unwrap();
    // The example workflow's manifest, registered and approved as wes-api would.
    let manifest = Manifest::from_yaml(&example_yaml()).unwrap();
    approve(&store, &manifest).await;
    let bucket = Bucket::connect(&crawler_config(&endpoint)).await;
    World {
        _dir: dir,
        data,
        outside,
        store,
        bucket,
        endpoint,
    }
}

/// Registers and approves a version of the example workflow (as wes-api would) with this
/// manifest, unless that version is known already.
async fn approve(store: &Store, manifest: &Manifest) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../workflows/quals");
    let (name, version) = (manifest.name.as_str(), manifest.version.as_str());
    if store
        .workflow_version(name, version)
        .await
        .unwrap()
        .is_none()
    {
        store
            .register_workflow(&NewWorkflowVersion {
                name: name.into(),
                version: version.into(),
                workflow_type: WorkflowType::Snakemake,
                source_dir: root.display().to_string(),
                entry_point: "Snakefile".into(),
                files: vec!["Snakefile".into(), "workflow.yaml".into()],
                registered_digest: fake_digest(),
                manifest: manifest.to_json(),
                description: "quals".into(),
                registered_by: person("controller"),
                at: now(),
            })
            .await
            .unwrap()
            .unwrap();
        store
            .approve_workflow(
                name,
                version,
                &person("controller"),
                &fake_digest(),
                false,
                now(),
            )
            .await
            .unwrap()
            .unwrap();
    }
}

/// A digest the crawler never checks (it reads only the approved manifest).
fn fake_digest() -> WorkflowDigest {
    WorkflowDigest::parse(&"a".repeat(64)).unwrap()
}

/// The example workflow's manifest as version `version`, with `egress.release_states` set.
fn quals_releasing(version: &str, states: &str) -> Manifest {
    let text = example_yaml();
    assert!(text.contains("version: 1.0.0") && text.contains("  max_file_bytes:"));
    let text = text
        .replace("version: 1.0.0", &format!("version: {version}"))
        .replace(
            "  max_file_bytes:",
            &format!("  release_states: {states}\n  max_file_bytes:"),
        );
    Manifest::from_yaml(&text).unwrap()
}

/// A finished run: store rows (QUEUED -> submitted -> COMPLETE) and a run directory with the
/// example workflow's outputs and a log.json.
async fn finished_run(w: &World) -> (RunId, PathBuf) {
    ended_run(w, "quals@1.0.0", RunState::Complete).await
}

/// A run of `workflow_url` that ended in `state` (QUEUED -> submitted -> `state`), with the
/// example workflow's outputs and a log.json in its run directory.
async fn ended_run(w: &World, workflow_url: &str, state: RunState) -> (RunId, PathBuf) {
    let id = RunId::new_random();
    let run_dir = w.data.join(id.shard()).join(id.to_string());
    let log_dir = run_dir.join(".weskit/2026-01-01T00-00-00");
    std::fs::create_dir_all(&log_dir).unwrap();
    std::fs::create_dir_all(run_dir.join(".spe")).unwrap();
    std::fs::write(
        run_dir.join(".spe/runspec.json"),
        "{\"datasets\": \"/secret\"}",
    )
    .unwrap();
    std::fs::write(
        run_dir.join(format!("{id}.yaml")),
        "dataset: /secret/calls.tsv\n",
    )
    .unwrap();
    std::fs::write(
        run_dir.join("results.csv"),
        "sample,n_calls,mean_qual,passing\nA,12,41.5,10\nB,9,33.0,7\n",
    )
    .unwrap();
    std::fs::create_dir_all(run_dir.join("plots")).unwrap();
    std::fs::write(run_dir.join("plots/quals.svg"), "<svg><rect/></svg>").unwrap();
    std::fs::write(run_dir.join("calls.tsv"), "sensitive\n").unwrap();
    w.store
        .insert_run(&NewRun {
            id,
            owner: person("alice"),
            submission: submission(workflow_url, &[]),
            run_dir: run_dir.display().to_string(),
            created_at: now(),
        })
        .await
        .unwrap();
    let job: SlurmJobId = "42".parse().unwrap();
    assert!(
        w.store
            .record_submission(id, &job, &log_dir.display().to_string(), now())
            .await
            .unwrap()
    );
    w.store
        .transition(&Transition {
            run: id,
            from: &[RunState::Queued],
            to: state,
            actor: &spe_core::Actor::Service(spe_core::ServiceActor::Reconciler),
            reason: None,
            exit_code: Some(if state == RunState::Complete { 0 } else { 1 }),
            at: now(),
        })
        .await
        .unwrap()
        .unwrap();
    std::fs::write(log_dir.join("log.json"), "{\"exit_code\": 0}").unwrap();
    (id, run_dir)
}

fn crawler(w: &World) -> Crawler {
    Crawler::new(
        w.store.clone(),
        w.bucket.clone(),
        settings(),
        Arc::new(Metrics::default()),
    )
}

async fn keys(w: &World, id: RunId) -> Vec<String> {
    let mut keys = w.bucket.list(&format!("{id}/")).await.unwrap();
    keys.sort();
    keys
}

fn sha(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn mkfifo(path: &Path) {
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
}

#[tokio::test]
async fn server_side_encryption_is_asked_of_every_object_written_small_or_multipart() {
    use spe_core::config::ServerSideEncryption as Sse;
    let Some(w) = world().await else { return };
    for (mode, key) in [(Sse::Aes256, None), (Sse::Kms, Some("spe-test-kms-key"))] {
        let (id, run_dir) = finished_run(&w).await;
        // Above the 1 MiB multipart threshold of these tests.
        let big: Vec<u8> = (0..6 * 1024 * 1024u32)
            .map(|i| b'a' + (i % 26) as u8)
            .collect();
        std::fs::write(run_dir.join("plots/big.svg"), &big).unwrap();
        let mut config = crawler_config(&w.endpoint);
        config.server_side_encryption = Some(mode);
        config.sse_kms_key_id = key.map(str::to_owned);
        let c = Crawler::new(
            w.store.clone(),
            Bucket::connect(&config).await,
            settings(),
            Arc::new(Metrics::default()),
        );
        c.rescan().await.unwrap();
        // The server took every object with the encryption asked (PutObject and
        // CreateMultipartUpload): all released, whole.
        let released = w.store.released_files(id).await.unwrap();
        assert_eq!(released.len(), 3, "{mode:?}: {released:?}");
        let client = spe_s3::client(&config).await;
        for f in &released {
            let head = client
                .head_object()
                .bucket("spe-results")
                .key(format!("{id}/{}", f.path))
                .send()
                .await
                .unwrap();
            assert_eq!(head.content_length(), Some(f.size), "{}", f.path);
            // s3s-fs keeps objects as plain files and reports no encryption: what it stores at
            // rest cannot be checked here (docs/results-crawler.md).
            assert_eq!(head.server_side_encryption(), None, "{}", f.path);
        }
    }
}

#[tokio::test]
async fn releases_the_example_outputs_and_nothing_else() {
    let Some(w) = world().await else { return };
    let (id, run_dir) = finished_run(&w).await;
    // Hostile or unlisted files beside the real outputs.
    let plots = run_dir.join("plots");
    symlink(w.outside.join("quals.svg"), plots.join("link.svg")).unwrap();
    std::fs::hard_link(w.outside.join("secret.csv"), plots.join("hard.svg")).unwrap();
    mkfifo(&plots.join("fifo.svg"));
    std::fs::write(plots.join("..evil.svg"), "x").unwrap();
    std::fs::write(plots.join("a\\..\\b.svg"), "x").unwrap();
    std::fs::write(run_dir.join("secret.bam"), "reads").unwrap();
    std::fs::write(run_dir.join("manifest.json"), "{}").unwrap();
    // Above the multipart threshold of these tests (1 MiB): sent in two parts. Text, as an SVG
    // is (binary content would be held whatever its name).
    let big: Vec<u8> = (0..6 * 1024 * 1024u32)
        .map(|i| b'a' + (i % 26) as u8)
        .collect();
    std::fs::write(plots.join("big.svg"), &big).unwrap();

    let c = crawler(&w);
    c.rescan().await.unwrap();
    assert_eq!(
        keys(&w, id).await,
        [
            format!("{id}/disclosure.json"),
            format!("{id}/manifest.json"),
            format!("{id}/plots/big.svg"),
            format!("{id}/plots/quals.svg"),
            format!("{id}/results.csv"),
        ]
    );
    let csv = std::fs::read(run_dir.join("results.csv")).unwrap();
    let got = w
        .bucket
        .get(&format!("{id}/results.csv"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got, csv);
    let head = w
        .bucket
        .head(&format!("{id}/results.csv"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(head.sha256.as_deref(), Some(sha(&csv).as_str()));
    let head = w
        .bucket
        .head(&format!("{id}/plots/big.svg"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(head.size, big.len() as i64);
    assert_eq!(head.sha256.as_deref(), Some(sha(&big).as_str()));

    let released = w.store.released_files(id).await.unwrap();
    assert_eq!(
        released.iter().map(|f| f.path.as_str()).collect::<Vec<_>>(),
        ["plots/big.svg", "plots/quals.svg", "results.csv"]
    );
    assert_eq!(released[2].sha256, sha(&csv));
    let manifest: serde_json::Value = serde_json::from_slice(
        &w.bucket
            .get(&format!("{id}/manifest.json"))
            .await
            .unwrap()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(manifest["run_id"], id.to_string());
    assert_eq!(manifest["files"].as_array().unwrap().len(), 3);
    assert_eq!(manifest["files"][2]["path"], "results.csv");
    assert_eq!(manifest["files"][2]["sha256"], sha(&csv));
    assert_eq!(manifest["files"][2]["size"], csv.len());

    let files = w.store.egress_files(id).await.unwrap();
    let refused: Vec<&str> = files
        .iter()
        .filter(|f| f.state == EgressState::Refused)
        .map(|f| f.path.as_str())
        .collect();
    assert_eq!(
        refused,
        [
            "plots/..evil.svg",
            "plots/a\\..\\b.svg",
            "plots/fifo.svg",
            "plots/hard.svg",
            "plots/link.svg",
        ]
    );
    // Unlisted files are not even recorded: they stay in the cluster (the run's own
    // manifest.json too: the object of that name is the crawler's listing, checked above).
    assert!(
        !files
            .iter()
            .any(|f| f.path == "secret.bam" || f.path == "calls.tsv" || f.path == "manifest.json")
    );
    assert!(w.store.egress_run(id).await.unwrap().unwrap().done);
    let text = c.metrics().render();
    assert!(
        text.contains("spe_crawler_files_total{outcome=\"released\"} 3"),
        "{text}"
    );
    assert!(
        text.contains("spe_crawler_release_latency_seconds_count 3"),
        "{text}"
    );
    // A second pass finds nothing to do.
    assert_eq!(c.rescan().await.unwrap(), (0, 0));
}

/// A receipt signing key file as `spectl keys generate --signing` writes it (PKCS#8 PEM).
fn signing_key(dir: &Path, mode: u32) -> (PathBuf, Vec<u8>) {
    use base64::Engine;
    use ring::signature::{Ed25519KeyPair, KeyPair};
    use std::os::unix::fs::PermissionsExt;
    let pkcs8 = Ed25519KeyPair::generate_pkcs8(&ring::rand::SystemRandom::new()).unwrap();
    let public = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref())
        .unwrap()
        .public_key()
        .as_ref()
        .to_vec();
    let path = dir.join(format!("receipt-{mode:o}.key"));
    let body = base64::engine::general_purpose::STANDARD.encode(pkcs8.as_ref());
    std::fs::write(
        &path,
        format!("-----BEGIN PRIVATE KEY-----\n{body}\n-----END PRIVATE KEY-----\n"),
    )
    .unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
    (path, public)
}

#[tokio::test]
async fn the_package_carries_the_runs_five_safes_crate_signed_with_the_chain_head() {
    use base64::Engine;
    use results_crawler::receipt::{CrateIdentity, Signer};
    let Some(w) = world().await else { return };
    let keys_dir = tempfile::tempdir().unwrap();
    let (readable, _) = signing_key(keys_dir.path(), 0o644);
    let refused = Signer::load(&readable).unwrap_err();
    assert!(
        refused.contains("mode 644 lets others read the signing key"),
        "{refused}"
    );
    let (key, public) = signing_key(keys_dir.path(), 0o600);
    let signer = Signer::load(&key).unwrap();

    let (id, run_dir) = finished_run(&w).await;
    let c = crawler(&w).with_crate(
        CrateIdentity {
            id: "org.example.spe".into(),
            name: "SPE".into(),
            organization: "Example".into(),
            organization_url: "https://example.org".into(),
        },
        Some(Arc::new(signer)),
    );
    c.rescan().await.unwrap();
    let all = keys(&w, id).await;
    assert!(
        all.contains(&format!("{id}/ro-crate-metadata.json")),
        "{all:?}"
    );
    let bytes = w
        .bucket
        .get(&format!("{id}/ro-crate-metadata.json"))
        .await
        .unwrap()
        .unwrap();
    let receipt: serde_json::Value = serde_json::from_slice(
        &w.bucket
            .get(&format!("{id}/ro-crate-metadata.json.sig"))
            .await
            .unwrap()
            .unwrap(),
    )
    .unwrap();
    // The signature is the service key's, over the crate's exact bytes.
    let b64 = base64::engine::general_purpose::STANDARD;
    let signature = b64.decode(receipt["signature"].as_str().unwrap()).unwrap();
    let check = ring::signature::UnparsedPublicKey::new(&ring::signature::ED25519, &public);
    assert!(check.verify(&bytes, &signature).is_ok());
    let mut changed = bytes.clone();
    changed[10] ^= 1;
    assert!(check.verify(&changed, &signature).is_err());

    // The crate: this run, its released files with their checksums, the chain head now.
    let doc: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    let graph = doc["@graph"].as_array().unwrap();
    let root = graph.iter().find(|e| e["@id"] == "./").unwrap();
    assert_eq!(root["identifier"], id.to_string());
    assert_eq!(root["conformsTo"]["@id"], "https://w3id.org/5s-crate/0.4");
    let csv = std::fs::read(run_dir.join("results.csv")).unwrap();
    let file = graph.iter().find(|e| e["@id"] == "results.csv").unwrap();
    assert_eq!(file["sha256"], sha(&csv));
    // The head is a record of the store's chain, with the seq the crate gives it.
    let in_crate = graph
        .iter()
        .find(|e| e["@id"] == "#audit-chain-head")
        .unwrap();
    let seq: i64 = in_crate["identifier"].as_str().unwrap().parse().unwrap();
    let found = spe_store::audit::find(&w.store, in_crate["value"].as_str().unwrap())
        .await
        .unwrap();
    assert_eq!(found, Some(seq));
}

#[tokio::test]
async fn a_symlinked_parent_folder_releases_nothing_under_it() {
    let Some(w) = world().await else { return };
    let (id, run_dir) = finished_run(&w).await;
    std::fs::remove_dir_all(run_dir.join("plots")).unwrap();
    symlink(&w.outside, run_dir.join("plots")).unwrap();
    crawler(&w).rescan().await.unwrap();
    assert_eq!(
        keys(&w, id).await,
        [
            format!("{id}/disclosure.json"),
            format!("{id}/manifest.json"),
            format!("{id}/results.csv")
        ]
    );
}

#[tokio::test]
async fn a_run_that_failed_or_is_unfinished_releases_nothing() {
    let Some(w) = world().await else { return };
    let (id, run_dir) = finished_run(&w).await;
    // log.json not written yet: not ready.
    let log = std::fs::read_dir(run_dir.join(".weskit"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path()
        .join("log.json");
    std::fs::remove_file(&log).unwrap();
    let c = crawler(&w);
    assert!(matches!(
        c.process_run_id(id).await.unwrap(),
        results_crawler::RunOutcome::NotReady(_)
    ));
    assert!(keys(&w, id).await.is_empty());
    std::fs::write(&log, "{}").unwrap();
    assert_eq!(
        c.process_run_id(id).await.unwrap(),
        results_crawler::RunOutcome::Done
    );
}

/// What a run that ends in a state its manifest does not release comes to: nothing in the
/// bucket, nothing recorded, and the run settled so that no rescan reads it again.
async fn assert_settled_with_nothing_released(w: &World, c: &Crawler, id: RunId) {
    assert!(keys(w, id).await.is_empty(), "{:?}", keys(w, id).await);
    assert!(w.store.egress_files(id).await.unwrap().is_empty());
    assert!(w.store.released_files(id).await.unwrap().is_empty());
    let run = w.store.egress_run(id).await.unwrap().unwrap();
    assert!(run.done && run.scanned);
    assert!(
        !w.store
            .runs_awaiting_egress(100)
            .await
            .unwrap()
            .iter()
            .any(|r| r.id == id)
    );
    assert_eq!(
        c.process_run_id(id).await.unwrap(),
        results_crawler::RunOutcome::Done
    );
    assert!(keys(w, id).await.is_empty());
}

#[tokio::test]
async fn an_executor_error_run_releases_nothing_by_default_and_is_settled() {
    let Some(w) = world().await else { return };
    // log.json written and whitelisted outputs (results.csv, plots/quals.svg) present.
    let (id, run_dir) = ended_run(&w, "quals@1.0.0", RunState::ExecutorError).await;
    assert!(run_dir.join("results.csv").is_file() && run_dir.join("plots/quals.svg").is_file());
    let c = crawler(&w);
    assert_eq!(w.store.egress_backlog().await.unwrap(), 1);
    assert_eq!(c.rescan().await.unwrap(), (1, 0));
    assert_settled_with_nothing_released(&w, &c, id).await;
    assert_eq!(w.store.egress_backlog().await.unwrap(), 0);
    // Settled for good: the next pass reads nothing.
    assert_eq!(c.rescan().await.unwrap(), (0, 0));
    let text = c.metrics().render();
    assert!(
        text.contains("spe_crawler_files_total{outcome=\"released\"} 0"),
        "{text}"
    );
}

#[tokio::test]
async fn an_executor_error_run_releases_its_outputs_when_the_manifest_lists_the_state() {
    let Some(w) = world().await else { return };
    approve(
        &w.store,
        &quals_releasing("1.1.0", "[COMPLETE, EXECUTOR_ERROR]"),
    )
    .await;
    let (id, run_dir) = ended_run(&w, "quals@1.1.0", RunState::ExecutorError).await;
    // Another version without the field: the same failure releases nothing.
    let (other, _) = ended_run(&w, "quals@1.0.0", RunState::ExecutorError).await;
    let c = crawler(&w);
    assert_eq!(c.rescan().await.unwrap(), (2, 0));
    assert_eq!(
        keys(&w, id).await,
        [
            format!("{id}/disclosure.json"),
            format!("{id}/manifest.json"),
            format!("{id}/plots/quals.svg"),
            format!("{id}/results.csv"),
        ]
    );
    let csv = std::fs::read(run_dir.join("results.csv")).unwrap();
    let got = w
        .bucket
        .get(&format!("{id}/results.csv"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got, csv);
    let released = w.store.released_files(id).await.unwrap();
    assert_eq!(
        released.iter().map(|f| f.path.as_str()).collect::<Vec<_>>(),
        ["plots/quals.svg", "results.csv"]
    );
    assert_eq!(released[1].sha256, sha(&csv));
    assert!(w.store.egress_run(id).await.unwrap().unwrap().done);
    assert_settled_with_nothing_released(&w, &c, other).await;
    assert_eq!(c.rescan().await.unwrap(), (0, 0));
}

#[tokio::test]
async fn a_canceled_run_releases_nothing_by_default() {
    let Some(w) = world().await else { return };
    let (id, _) = ended_run(&w, "quals@1.0.0", RunState::Canceled).await;
    // Listing other states does not release CANCELED either.
    approve(
        &w.store,
        &quals_releasing("1.2.0", "[COMPLETE, EXECUTOR_ERROR]"),
    )
    .await;
    let (other, _) = ended_run(&w, "quals@1.2.0", RunState::Canceled).await;
    let c = crawler(&w);
    assert_eq!(c.rescan().await.unwrap(), (2, 0));
    assert_settled_with_nothing_released(&w, &c, id).await;
    assert_settled_with_nothing_released(&w, &c, other).await;
}

#[tokio::test]
async fn failed_runs_of_an_unknown_workflow_or_without_log_json_are_settled() {
    let Some(w) = world().await else { return };
    // Never registered nor approved: nothing leaves, and the run is not read again.
    let (unknown, _) = ended_run(&w, "ghost@9.9.9", RunState::SystemError).await;
    // Canceled before it ran: no log.json will ever come; settled all the same.
    let (early, run_dir) = ended_run(&w, "quals@1.0.0", RunState::Canceled).await;
    std::fs::remove_dir_all(run_dir.join(".weskit")).unwrap();
    let c = crawler(&w);
    assert_eq!(
        c.process_run_id(unknown).await.unwrap(),
        results_crawler::RunOutcome::NotEligible
    );
    assert_eq!(c.rescan().await.unwrap(), (1, 0));
    assert_settled_with_nothing_released(&w, &c, unknown).await;
    assert_settled_with_nothing_released(&w, &c, early).await;
    assert_eq!(c.rescan().await.unwrap(), (0, 0));
}

#[tokio::test]
async fn files_changing_during_upload_are_not_released() {
    let Some(w) = world().await else { return };
    let (id, run_dir) = finished_run(&w).await;
    let big: Vec<u8> = vec![7u8; 2 * 1024 * 1024];
    std::fs::write(run_dir.join("plots/big.svg"), &big).unwrap();
    let hook: results_crawler::crawler::AfterRead = Arc::new(|dir: &Path, path: &str| {
        if path == "results.csv" || path == "plots/big.svg" {
            use std::io::Write;
            let mut f = std::fs::OpenOptions::new()
                .append(true)
                .open(dir.join(path))
                .unwrap();
            f.write_all(b"more\n").unwrap();
        }
    });
    let c = Crawler::with_after_read(w.store.clone(), w.bucket.clone(), settings(), hook);
    c.rescan().await.unwrap();
    assert_eq!(
        keys(&w, id).await,
        [
            format!("{id}/disclosure.json"),
            format!("{id}/manifest.json"),
            format!("{id}/plots/quals.svg")
        ]
    );
    let csv = w
        .store
        .egress_file(id, "results.csv")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(csv.state, EgressState::Refused);
    assert!(csv.reason.unwrap().contains("changed"));
    assert_eq!(
        w.store
            .egress_file(id, "plots/big.svg")
            .await
            .unwrap()
            .unwrap()
            .state,
        EgressState::Refused
    );
    assert!(
        c.metrics()
            .render()
            .contains("spe_crawler_changed_during_upload_total 2")
    );
}

#[tokio::test]
async fn s3_down_then_up_drains_the_backlog() {
    let Some(w) = world().await else { return };
    let (id, _) = finished_run(&w).await;
    // Nothing listens on port 9 of loopback.
    let down = Bucket::connect(&crawler_config("http://127.0.0.1:9")).await;
    let c = Crawler::new(
        w.store.clone(),
        down,
        settings(),
        Arc::new(Metrics::default()),
    );
    assert_eq!(c.rescan().await.unwrap(), (0, 1));
    let files = w.store.egress_files(id).await.unwrap();
    assert!(
        files
            .iter()
            .all(|f| f.state == EgressState::Pending && f.attempts == 1)
    );
    assert!(
        c.metrics()
            .render()
            .contains("spe_crawler_errors_total{kind=\"s3\"} 2")
    );
    assert!(!w.store.egress_run(id).await.unwrap().unwrap().done);
    assert!(keys(&w, id).await.is_empty());
    // S3 is back: after the backoff the next rescan releases everything, once.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let up = crawler(&w);
    assert_eq!(up.rescan().await.unwrap(), (1, 0));
    assert_eq!(keys(&w, id).await.len(), 4);
    assert_eq!(w.store.released_files(id).await.unwrap().len(), 2);
    let _ = &w.endpoint;
}

#[tokio::test]
async fn restart_after_a_crash_mid_upload_releases_each_file_once() {
    let Some(w) = world().await else { return };
    let (id, run_dir) = finished_run(&w).await;
    let big: Vec<u8> = vec![3u8; 6 * 1024 * 1024];
    std::fs::write(run_dir.join("plots/big.svg"), &big).unwrap();
    // A first crawler walks the run, then "dies" (kill -9) in three places:
    //  - results.csv: uploaded, but the store never heard of it;
    //  - plots/big.svg: a multipart upload begun, never completed;
    //  - plots/quals.svg: claimed, nothing sent.
    let first = crawler(&w);
    let _ = first.process_run_id(id).await; // walks; uploads too, which we then undo
    // Undo what it finished, to stand for the three crash points.
    for path in ["results.csv", "plots/big.svg", "plots/quals.svg"] {
        w.store
            .debug_execute(&format!(
                "UPDATE egress_files SET state = 'uploading', owner = 'dead', lease_until = 1, \
                 sha256 = NULL, released_at = NULL WHERE run_id = '{id}' AND path = '{path}'"
            ))
            .await
            .unwrap();
    }
    w.store
        .debug_execute(&format!(
            "UPDATE runs SET egress_done = 0, egress_done_at = NULL WHERE id = '{id}'"
        ))
        .await
        .unwrap();
    let big_key = format!("{id}/plots/big.svg");
    let quals_key = format!("{id}/plots/quals.svg");
    // big.svg: only an unfinished multipart upload (invisible) exists under its key.
    remove_object(&w, &big_key).await;
    remove_object(&w, &quals_key).await;
    remove_object(&w, &format!("{id}/manifest.json")).await;
    remove_object(&w, &format!("{id}/disclosure.json")).await;
    let stale = w
        .bucket
        .create_multipart(&big_key, &sha(&big), "image/svg+xml")
        .await
        .unwrap();
    w.bucket
        .upload_part(&big_key, &stale, 1, vec![3u8; 5 * 1024 * 1024])
        .await
        .unwrap();
    w.store
        .debug_execute(&format!(
            "UPDATE egress_files SET upload_id = '{stale}' WHERE run_id = '{id}' AND path = 'plots/big.svg'"
        ))
        .await
        .unwrap();
    assert!(
        w.bucket.head(&big_key).await.unwrap().is_none(),
        "no partial object visible"
    );
    assert_eq!(keys(&w, id).await, [format!("{id}/results.csv")]);

    // Restart: a new crawler (another owner) takes over the expired leases.
    let second = crawler(&w);
    assert_eq!(second.rescan().await.unwrap(), (1, 0));
    assert_eq!(keys(&w, id).await.len(), 5);
    let got = w.bucket.get(&big_key).await.unwrap().unwrap();
    assert_eq!(sha(&got), sha(&big));
    let released = w.store.released_files(id).await.unwrap();
    assert_eq!(released.len(), 3);
    // results.csv was in the bucket already with the same digest: recognised, not re-sent.
    let text = second.metrics().render();
    assert!(
        text.contains("spe_crawler_files_total{outcome=\"released\"} 3"),
        "{text}"
    );
    let files = w.store.egress_files(id).await.unwrap();
    assert!(files.iter().all(|f| f.attempts == 2), "{files:?}");
}

async fn remove_object(w: &World, key: &str) {
    // s3s-fs keeps objects as files under its data folder; the test client has no delete
    // wrapper, so use the SDK through a fresh client.
    let config = aws_sdk_s3::config::Builder::new()
        .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
        .region(aws_sdk_s3::config::Region::new("us-east-1"))
        .endpoint_url(&w.endpoint)
        .force_path_style(true)
        .credentials_provider(aws_sdk_s3::config::Credentials::new(
            "spe-test-access",
            "spe-test-secret-key",
            None,
            None,
            "test",
        ))
        .build();
    aws_sdk_s3::Client::from_conf(config)
        .delete_object()
        .bucket("spe-results")
        .key(key)
        .send()
        .await
        .unwrap();
}

#[tokio::test]
async fn several_crawlers_on_one_postgres_upload_each_file_once() {
    let Some(endpoint) = s3_url() else { return };
    let Some(store) = postgres_store_with_pool(8).await else {
        return;
    };
    let w = world_with(endpoint, tempfile::tempdir().unwrap(), store).await;
    let mut ids = Vec::new();
    for _ in 0..8 {
        ids.push(finished_run(&w).await.0);
    }
    let crawlers: Vec<Crawler> = (0..3).map(|_| crawler(&w)).collect();
    let passes = crawlers.iter().map(|c| c.rescan());
    for r in futures_util::future::join_all(passes).await {
        r.unwrap();
    }
    // A straggler pass settles whatever one crawler saw in progress at another.
    crawlers[0].rescan().await.unwrap();
    let released: u64 = crawlers
        .iter()
        .map(|c| c.metrics().files_released.get())
        .sum();
    assert_eq!(
        released,
        2 * ids.len() as u64,
        "each file released by one crawler"
    );
    for id in ids {
        assert_eq!(keys(&w, id).await.len(), 4);
        for f in w.store.egress_files(id).await.unwrap() {
            assert_eq!((f.state, f.attempts), (EgressState::Released, 1), "{f:?}");
        }
        assert!(w.store.egress_run(id).await.unwrap().unwrap().done);
    }
}

#[tokio::test]
async fn two_crawler_processes_on_one_postgres_release_everything_once_though_one_is_killed_9() {
    let Some(endpoint) = s3_url() else { return };
    let Some(db) = spe_test_support::store::fresh_postgres_url().await else {
        return;
    };
    let store = Store::connect(&db, 8).await.unwrap();
    let w = world_with(endpoint, tempfile::tempdir().unwrap(), store).await;
    let mut ids = Vec::new();
    for _ in 0..12 {
        let (id, dir) = finished_run(&w).await;
        std::fs::write(dir.join("plots/big.svg"), vec![5u8; 3 * 1024 * 1024]).unwrap();
        ids.push(id);
    }
    let config_a = binary_config_on(&w, db.expose(), "* * * * * *", "watch: notify");
    let config_b = config_a.with_file_name("spe-b.yaml");
    std::fs::copy(&config_a, &config_b).unwrap();
    let a = start_binary(&config_a);
    let b = start_binary(&config_b);
    tokio::time::sleep(Duration::from_millis(600)).await;
    a.kill9();
    wait_until_done(&w, &ids, Duration::from_secs(90)).await;
    b.kill9();
    for id in ids {
        assert_released_whole(&w, id, 6).await;
        for f in w.store.egress_files(id).await.unwrap() {
            assert_eq!(f.state, EgressState::Released, "{f:?}");
        }
    }
}

#[tokio::test]
async fn the_binary_killed_mid_work_and_restarted_releases_everything_once() {
    let Some(w) = world().await else { return };
    let mut ids = Vec::new();
    for _ in 0..12 {
        let (id, dir) = finished_run(&w).await;
        std::fs::write(dir.join("plots/big.svg"), vec![5u8; 3 * 1024 * 1024]).unwrap();
        ids.push(id);
    }
    let config = binary_config(&w, "* * * * * *", "watch: notify");
    let start = || {
        let mut command = crawler_command(&config);
        command
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null());
        command
    };
    // Killed (SIGKILL) while it works, twice, then left to finish.
    for wait_ms in [400, 900] {
        let mut child = start().spawn().unwrap();
        tokio::time::sleep(Duration::from_millis(wait_ms)).await;
        child.kill().unwrap();
        child.wait().unwrap();
    }
    let crawler = Service::start(start());
    let addr = crawler.address.clone();
    wait_until_done(&w, &ids, Duration::from_secs(90)).await;
    // The operations endpoints, on the crawler's own HTTP stack.
    let http = reqwest::Client::new();
    let res = http.get(&addr).send().await.unwrap();
    assert_eq!(res.status().as_u16(), 200);
    assert_eq!(
        res.headers()["content-type"],
        "application/openmetrics-text; version=1.0.0; charset=utf-8"
    );
    let metrics = res.text().await.unwrap();
    assert!(
        metrics.contains("# TYPE spe_crawler_files counter"),
        "{metrics}"
    );
    assert!(metrics.contains("spe_crawler_files_total{outcome=\"released\"} "));
    assert!(metrics.contains("spe_crawler_release_latency_seconds_count "));
    assert!(metrics.ends_with("# EOF\n"));
    let base = addr.trim_end_matches("/metrics");
    let res = http.get(format!("{base}/readyz")).send().await.unwrap();
    assert_eq!(res.status().as_u16(), 200);
    let ready: serde_json::Value = res.json().await.unwrap();
    assert_eq!(
        ready,
        serde_json::json!({"status": "ready", "checks": {"database": "ok", "s3": "ok"}})
    );
    crawler.kill9();
    for id in ids {
        assert_released_whole(&w, id, 6).await;
    }
}

#[tokio::test]
async fn readiness_names_a_bucket_that_does_not_answer_while_metrics_still_serve() {
    let Some(w) = world().await else { return };
    let config = binary_config(&w, "0 0 * * * *", "watch: poll");
    // Nothing listens on port 9 of this machine.
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, text.replace(&w.endpoint, "http://127.0.0.1:9")).unwrap();
    let crawler = start_binary(&config);
    let base = crawler.address.trim_end_matches("/metrics").to_owned();
    let http = reqwest::Client::new();
    let res = http.get(format!("{base}/readyz")).send().await.unwrap();
    assert_eq!(res.status().as_u16(), 503);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["status"], "not ready");
    assert_eq!(body["checks"]["database"], "ok");
    let s3 = body["checks"]["s3"].as_str().unwrap();
    assert!(s3.starts_with("s3 bucket spe-results: "), "{s3}");
    let res = http.get(format!("{base}/healthz")).send().await.unwrap();
    assert_eq!(res.status().as_u16(), 200);
    let res = http.get(&crawler.address).send().await.unwrap();
    assert_eq!(res.status().as_u16(), 200);
    assert!(
        res.text()
            .await
            .unwrap()
            .contains("spe_crawler_backlog_runs")
    );
    let res = http.get(format!("{base}/other")).send().await.unwrap();
    assert_eq!(res.status().as_u16(), 404);
    crawler.kill9();
}

#[tokio::test]
async fn on_sigterm_the_crawler_hands_back_its_work_and_another_takes_it_over_at_once() {
    let Some(w) = world().await else { return };
    let mut ids = Vec::new();
    for _ in 0..8 {
        let (id, dir) = finished_run(&w).await;
        std::fs::write(dir.join("plots/big.svg"), vec![5u8; 3 * 1024 * 1024]).unwrap();
        ids.push(id);
    }
    // Leases of a minute, no grace: a file handed back is taken over at once, one that is not
    // would wait a minute.
    let config = binary_config(&w, "* * * * * *", "watch: notify");
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &config,
        text.replace(
            "lease_seconds: 10",
            "lease_seconds: 60\n  stop_grace_seconds: 0",
        ),
    )
    .unwrap();
    let mut first = start_binary(&config);
    // Until it has files under way.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let mut uploading = 0;
        for id in &ids {
            uploading += w
                .store
                .egress_files(*id)
                .await
                .unwrap()
                .iter()
                .filter(|f| f.state == EgressState::Uploading)
                .count();
        }
        if uploading > 0 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "nothing under way");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let pid = first.child_mut().id() as libc::pid_t;
    // SAFETY: signalling the child this test started and has not reaped.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    let status = first.child_mut().wait().unwrap();
    assert!(status.success(), "{status:?}");
    // Nothing is left leased to the stopped crawler.
    let now = spe_core::time::Timestamp::from_datetime(chrono::Utc::now());
    for id in &ids {
        for f in w.store.egress_files(*id).await.unwrap() {
            if f.state == EgressState::Uploading {
                assert!(
                    f.lease_until.is_some_and(|l| l < now),
                    "{id} {} still leased: {f:?}",
                    f.path
                );
            }
        }
    }
    let log = std::fs::read_to_string(config.with_extension("log")).unwrap();
    assert!(log.contains("results-crawler stopping"), "{log}");
    // A second crawler finishes everything well within the first one's leases (a minute):
    // the handed-back files were taken over at once.
    let second = start_binary(&config);
    wait_until_done(&w, &ids, Duration::from_secs(30)).await;
    second.kill9();
    for id in ids {
        assert_released_whole(&w, id, 6).await;
    }
}

/// Waits until every run of `ids` has its egress done (panics after `limit`).
async fn wait_until_done(w: &World, ids: &[RunId], limit: Duration) {
    let deadline = std::time::Instant::now() + limit;
    loop {
        let mut done = 0;
        for id in ids {
            if w.store.egress_run(*id).await.unwrap().unwrap().done {
                done += 1;
            }
        }
        if done == ids.len() {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{done} of {} runs done",
            ids.len()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// A run of the binary's: its `objects` in the bucket (the three outputs, manifest.json,
/// disclosure.json and the run's RO-Crate, which the binary always writes), each released
/// file there whole, as recorded.
async fn assert_released_whole(w: &World, id: RunId, objects: usize) {
    let all = keys(w, id).await;
    assert_eq!(all.len(), objects, "run {id}: {all:?}");
    assert!(
        all.contains(&format!("{id}/ro-crate-metadata.json")),
        "{all:?}"
    );
    let released = w.store.released_files(id).await.unwrap();
    assert_eq!(released.len(), 3, "run {id}");
    for f in released {
        let head = w
            .bucket
            .head(&format!("{id}/{}", f.path))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(head.sha256.as_deref(), Some(f.sha256.as_str()));
        assert_eq!(head.size, f.size);
    }
}

/// A config file for the crawler binary on this world's store, data dir and bucket.
fn binary_config(w: &World, rescan_cron: &str, watch: &str) -> PathBuf {
    let db = format!("sqlite://{}", w._dir.path().join("spe.db").display());
    binary_config_on(w, &db, rescan_cron, watch)
}

/// As [`binary_config`], on the database at `db`.
fn binary_config_on(w: &World, db: &str, rescan_cron: &str, watch: &str) -> PathBuf {
    let config = w
        ._dir
        .path()
        .join(format!("spe-{}.yaml", watch.len() + rescan_cron.len()));
    std::fs::write(
        &config,
        format!(
            r#"
service:
  id: org.example.spe
  name: SPE
  organization: {{ name: Example, url: "https://example.org" }}
  auth_instructions_url: "https://example.org/login"
database:
  url: "{db}"
data_dir: "{data}"
auth: disabled
logging: {{ level: warn }}
workflows:
  types: {{ SMK: ["9"] }}
  engines:
    snakemake: {{ workflow_type: SMK, versions: ["9.27"] }}
crawler:
  bucket: spe-results
  endpoint: "{endpoint}"
  path_style: true
  multipart_threshold_bytes: 1048576
  multipart_part_bytes: 5242880
  rescan_cron: "{rescan_cron}"
  {watch}
  poll_interval_seconds: 1
  metrics_listen: 127.0.0.1:0
  lease_seconds: 10
  retry_max_backoff_seconds: 1
"#,
            db = db,
            data = w.data.display(),
            endpoint = w.endpoint,
            rescan_cron = rescan_cron,
            watch = watch,
        ),
    )
    .unwrap();
    config
}

/// The crawler binary on `config`, with the test bucket's keys.
fn crawler_command(config: &Path) -> std::process::Command {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_results-crawler"));
    command
        .arg("--config")
        .arg(config)
        .env("SPE__CRAWLER__ACCESS_KEY", "spe-test-access")
        .env("SPE__CRAWLER__SECRET_KEY", "spe-test-secret-key");
    command
}

/// Starts the crawler binary, its debug log in `<config>.log`; it answers on its metrics
/// address once this returns.
fn start_binary(config: &Path) -> Service {
    let mut command = crawler_command(config);
    command
        .env("RUST_LOG", "results_crawler=debug,info")
        .stderr(std::fs::File::create(config.with_extension("log")).unwrap());
    Service::start(command)
}

/// A run that finishes after the crawler started, with no rescan due for an hour: only the
/// file-system watcher can find it (inotify, or the polling watcher meant for NFS).
async fn released_by_the_watcher(watch: &str) {
    let Some(w) = world().await else { return };
    let config = binary_config(&w, "0 0 * * * *", watch);
    let crawler = start_binary(&config);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (id, _) = finished_run(&w).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !w.store.egress_run(id).await.unwrap().unwrap().done {
        assert!(
            std::time::Instant::now() < deadline,
            "{watch}: the run was not released; crawler log:\n{}",
            std::fs::read_to_string(config.with_extension("log")).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    crawler.kill9();
    assert_eq!(w.store.released_files(id).await.unwrap().len(), 2);
}

#[tokio::test]
async fn a_run_finishing_after_start_is_released_by_the_notify_watcher() {
    released_by_the_watcher("watch: notify").await;
}

#[tokio::test]
async fn a_run_finishing_after_start_is_released_by_the_polling_watcher() {
    released_by_the_watcher("watch: poll").await;
}

/// The example workflow's manifest as version `version`, holding results.csv for review.
fn quals_reviewing(version: &str) -> Manifest {
    let text = example_yaml();
    assert!(text.contains("  review: []"));
    let text = text
        .replace("version: 1.0.0", &format!("version: {version}"))
        .replace("  review: []", "  review: [results.csv]");
    Manifest::from_yaml(&text).unwrap()
}

async fn approve_in_review(w: &World, id: RunId, path: &str, bytes: &[u8]) {
    let out = w
        .store
        .cast_vote(
            NewVote {
                run: id,
                path,
                reviewer: &person("carol"),
                vote: Vote::Approve,
                comment: Some("fine"),
                sha256: &sha(bytes),
                approvals_required: 1,
            },
            now(),
        )
        .await
        .unwrap();
    assert_eq!(out.tally, Tally::Approved);
}

#[tokio::test]
async fn a_held_file_is_released_once_approved_and_never_blocks_the_others() {
    let Some(w) = world().await else { return };
    approve(&w.store, &quals_reviewing("1.1.0-review")).await;
    let (id, run_dir) = ended_run(&w, "quals@1.1.0-review", RunState::Complete).await;
    // Another run, ended later, waits for nothing.
    let (other, _) = finished_run(&w).await;
    let c = crawler(&w);
    c.rescan().await.unwrap();
    assert!(
        keys(&w, other)
            .await
            .contains(&format!("{other}/results.csv"))
    );
    assert!(w.store.egress_run(other).await.unwrap().unwrap().done);
    // The plot leaves at once; the table waits for a reviewer, and the run is settled.
    assert_eq!(
        keys(&w, id).await,
        [
            format!("{id}/disclosure.json"),
            format!("{id}/manifest.json"),
            format!("{id}/plots/quals.svg")
        ]
    );
    let held = w
        .store
        .egress_file(id, "results.csv")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(held.state, EgressState::Held);
    assert_eq!(held.reason.as_deref(), Some("matches a review rule"));
    assert!(w.store.egress_run(id).await.unwrap().unwrap().done);

    let csv = std::fs::read(run_dir.join("results.csv")).unwrap();
    approve_in_review(&w, id, "results.csv", &csv).await;
    c.rescan().await.unwrap();
    let got = w
        .bucket
        .get(&format!("{id}/results.csv"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got, csv);
    let manifest: serde_json::Value = serde_json::from_slice(
        &w.bucket
            .get(&format!("{id}/manifest.json"))
            .await
            .unwrap()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(manifest["files"].as_array().unwrap().len(), 2, "{manifest}");
    assert!(w.store.egress_run(id).await.unwrap().unwrap().done);
    // The record says who approved which bytes, and when.
    let disclosure: serde_json::Value = serde_json::from_slice(
        &w.bucket
            .get(&format!("{id}/disclosure.json"))
            .await
            .unwrap()
            .unwrap(),
    )
    .unwrap();
    let approvals = disclosure["approvals"].as_array().unwrap();
    assert_eq!(approvals.len(), 1, "{disclosure}");
    assert_eq!(approvals[0]["path"], "results.csv");
    assert_eq!(approvals[0]["decision"], "approve");
    assert_eq!(approvals[0]["by"]["sub"], "carol");
    assert_eq!(approvals[0]["sha256"], sha(&csv));
    assert_eq!(approvals[0]["comment"], "fine");
    assert_eq!(approvals[0]["exception"], false);
}

#[tokio::test]
async fn a_file_changed_after_its_approval_is_held_again_with_its_votes_reset() {
    let Some(w) = world().await else { return };
    approve(&w.store, &quals_reviewing("1.2.0-review")).await;
    let (id, run_dir) = ended_run(&w, "quals@1.2.0-review", RunState::Complete).await;
    let c = crawler(&w);
    c.rescan().await.unwrap();
    let csv = std::fs::read(run_dir.join("results.csv")).unwrap();
    approve_in_review(&w, id, "results.csv", &csv).await;
    // Rewritten after the vote (e.g. by a job still holding the folder).
    std::fs::write(run_dir.join("results.csv"), "sample,n\nA,3\n").unwrap();
    c.rescan().await.unwrap();
    assert!(
        !keys(&w, id).await.contains(&format!("{id}/results.csv")),
        "changed bytes left under an approval given to other bytes"
    );
    let f = w
        .store
        .egress_file(id, "results.csv")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(f.state, EgressState::Held);
    assert_eq!(f.review_round, 1);
    assert_eq!(f.approved_sha256, None);
    assert_eq!(
        f.reason.as_deref(),
        Some("content changed after it was approved: its review starts again")
    );
    let events = w.store.review_events(id).await.unwrap();
    assert_eq!(events.last().map(|e| e.kind), Some(ReviewEventKind::Reset));
    assert_eq!(
        events.last().and_then(|e| e.sha256.clone()),
        Some(sha(b"sample,n\nA,3\n"))
    );
    // The reviewers of the new round see the checks of the new bytes.
    let report = stored_report(&w, id, "results.csv").await;
    assert_eq!(report["sha256"], sha(b"sample,n\nA,3\n"));
    assert_eq!(report["checks"][0]["name"], "file-type");
}

/// The example workflow's manifest as version `version`, with one more disclosure check.
fn quals_checking(version: &str, check: &str) -> Manifest {
    let text = example_yaml();
    let svg_rule = "    - { glob: \"plots/*.svg\", allow_types: [image] }\n";
    assert!(text.contains("version: 1.0.0") && text.contains(svg_rule));
    let text = text
        .replace("version: 1.0.0", &format!("version: {version}"))
        .replace(svg_rule, &format!("{svg_rule}    - {check}\n"));
    Manifest::from_yaml(&text).unwrap()
}

async fn object_json(w: &World, key: &str) -> serde_json::Value {
    let bytes = w.bucket.get(key).await.unwrap().unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

const COUNTS: &str = "{ glob: results.csv, columns: [n_calls, passing] }";

#[tokio::test]
async fn a_table_with_a_small_cell_is_held_with_its_failing_cell_in_the_stored_report() {
    let Some(w) = world().await else { return };
    approve(&w.store, &quals_checking("1.2.0", COUNTS)).await;
    // The example table: n_calls 9 and passing 7 in row 2 are below 10.
    let (small, _) = ended_run(&w, "quals@1.2.0", RunState::Complete).await;
    // CR-only line endings and an `NA` in a count column: read as rows, and held.
    let (na, na_dir) = ended_run(&w, "quals@1.2.0", RunState::Complete).await;
    std::fs::write(
        na_dir.join("results.csv"),
        "sample,n_calls,mean_qual,passing\rA,12,41.5,10\r\"B, C\",NA,33.0,20\r",
    )
    .unwrap();
    // An image that is binary inside: held whatever the image rule allows.
    std::fs::write(na_dir.join("plots/raw.svg"), b"\0\x01\x02").unwrap();
    let c = crawler(&w);
    assert_eq!(c.rescan().await.unwrap(), (2, 0));

    // Nothing held is in the bucket; the rest of the run is released.
    for id in [small, na] {
        assert_eq!(
            keys(&w, id).await,
            [
                format!("{id}/disclosure.json"),
                format!("{id}/manifest.json"),
                format!("{id}/plots/quals.svg"),
            ]
        );
    }
    let held = w
        .store
        .egress_file(small, "results.csv")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(held.state, EgressState::Held);
    assert_eq!(
        held.reason.as_deref(),
        Some(
            "threshold check fail: 2 cells below 10 in count columns \
             (first: row 2, column n_calls: below the threshold)"
        )
    );
    let report = stored_report(&w, small, "results.csv").await;
    assert_eq!(report["outcome"], "fail");
    let threshold = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "threshold")
        .unwrap();
    assert_eq!(
        threshold["failing_cells"],
        json!([
            {"row": 2, "column": "n_calls", "col": 2, "value": "9"},
            {"row": 2, "column": "passing", "col": 4, "value": "7"},
        ])
    );
    let csv = std::fs::read(
        w.data
            .join(small.shard())
            .join(small.to_string())
            .join("results.csv"),
    )
    .unwrap();
    assert_eq!(report["sha256"], sha(&csv));

    let na_held = w
        .store
        .egress_file(na, "results.csv")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(na_held.state, EgressState::Held);
    assert_eq!(
        na_held.reason.as_deref(),
        Some(
            "threshold check fail: 1 cell not a count in count columns \
             (first: row 2, column n_calls: not a count)"
        )
    );
    let raw = w
        .store
        .egress_file(na, "plots/raw.svg")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(raw.state, EgressState::Held);
    assert!(
        raw.reason
            .as_deref()
            .unwrap()
            .starts_with("file-type check review: binary"),
        "{raw:?}"
    );

    // disclosure.json: which checks ran on which file with which result, without cell values.
    let doc = object_json(&w, &format!("{small}/disclosure.json")).await;
    assert_eq!(doc["version"], "spe-disclosure/1");
    assert_eq!(doc["run_id"], small.to_string());
    assert_eq!(doc["workflow"], "quals@1.2.0");
    assert_eq!(doc["approvals"], json!([]));
    let table = &doc["results"]["results.csv"];
    assert_eq!(table["status"], "fail");
    assert_eq!(table["type"], "table");
    assert_eq!(table["command"], "egress rules: results.csv");
    assert_eq!(table["summary"], held.reason.clone().unwrap());
    assert_eq!(table["properties"]["sha256"], sha(&csv));
    let sdc = &table["files"][0]["sdc"];
    assert_eq!(sdc["summary"]["threshold"], 2);
    assert_eq!(sdc["cells"]["threshold"], json!([[1, 1], [1, 3]]));
    let checks: Vec<&str> = table["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(checks, ["file-type", "threshold"]);
    assert_eq!(
        table["checks"][1]["failing_cells"][0],
        json!({"row": 2, "column": "n_calls", "col": 2})
    );
    let plot = &doc["results"]["plots/quals.svg"];
    assert_eq!(
        (plot["status"].as_str(), plot["type"].as_str()),
        (Some("pass"), Some("image"))
    );
    assert_eq!(plot["checks"][0]["rule"], "plots/*.svg");
    let text = serde_json::to_string(&doc).unwrap();
    assert!(!text.contains("\"9\"") && !text.contains("\"7\""), "{text}");
}

#[tokio::test]
async fn a_table_passing_its_checks_is_released_and_recorded_in_disclosure_json() {
    let Some(w) = world().await else { return };
    approve(&w.store, &quals_checking("1.3.0", COUNTS)).await;
    let (id, run_dir) = ended_run(&w, "quals@1.3.0", RunState::Complete).await;
    // CRLF, a quoted comma, a zero: every count is 0 or at least 10.
    let csv = b"sample,n_calls,mean_qual,passing\r\nA,12,41.5,10\r\n\"B, C\",0,33.0,20\r\n";
    std::fs::write(run_dir.join("results.csv"), csv).unwrap();
    std::fs::write(run_dir.join("secret.bam"), "reads").unwrap();
    let c = crawler(&w);
    assert_eq!(c.rescan().await.unwrap(), (1, 0));
    assert_eq!(
        keys(&w, id).await,
        [
            format!("{id}/disclosure.json"),
            format!("{id}/manifest.json"),
            format!("{id}/plots/quals.svg"),
            format!("{id}/results.csv"),
        ]
    );
    let got = w
        .bucket
        .get(&format!("{id}/results.csv"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got, csv);
    let report = stored_report(&w, id, "results.csv").await;
    assert_eq!(report["outcome"], "pass");
    assert_eq!(report["sha256"], sha(csv));

    let doc = object_json(&w, &format!("{id}/disclosure.json")).await;
    assert_eq!(
        doc["results"]
            .as_object()
            .unwrap()
            .keys()
            .collect::<Vec<_>>(),
        ["plots/quals.svg", "results.csv"]
    );
    let table = &doc["results"]["results.csv"];
    assert_eq!(table["status"], "pass");
    assert_eq!(table["summary"], "pass");
    assert_eq!(
        table["properties"],
        json!({"sha256": sha(csv), "size": csv.len()})
    );
    assert_eq!(table["files"][0]["sdc"]["summary"]["threshold"], 0);
    assert_eq!(
        table["checks"][1]["summary"],
        "every count cell is 0 or at least 10"
    );
    assert_eq!(
        table["checks"][1]["parameters"],
        json!({"threshold": 10, "columns": ["n_calls", "passing"]})
    );
    // Written again, the same bytes: the object is left as it is.
    let before = w
        .bucket
        .get(&format!("{id}/disclosure.json"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        c.process_run_id(id).await.unwrap(),
        results_crawler::RunOutcome::Done
    );
    assert_eq!(
        w.bucket
            .get(&format!("{id}/disclosure.json"))
            .await
            .unwrap()
            .unwrap(),
        before
    );
}

/// The disclosure report the crawler stored for a file.
async fn stored_report(w: &World, id: RunId, path: &str) -> serde_json::Value {
    let file = w.store.egress_file(id, path).await.unwrap().unwrap();
    match file.checks {
        Some(report) => report,
        None => panic!("no report stored for {path}: state {:?}", file.state),
    }
}

#[tokio::test]
async fn an_engine_log_opted_into_release_leaves_only_after_review() {
    let Some(w) = world().await else { return };
    let text = example_yaml()
        .replace("version: 1.0.0", "version: 1.3.0-logs")
        .replace("  review: []", "  review: []\n  release_logs: [stderr]");
    let manifest = Manifest::from_yaml(&text).unwrap();
    approve(&w.store, &manifest).await;
    let (id, run_dir) = ended_run(&w, "quals@1.3.0-logs", RunState::Complete).await;
    let log = ".weskit/2026-01-01T00-00-00/stderr";
    std::fs::write(run_dir.join(log), "Building DAG of jobs...\n").unwrap();
    let c = crawler(&w);
    c.rescan().await.unwrap();
    let held = w.store.egress_file(id, log).await.unwrap().unwrap();
    assert_eq!(held.state, EgressState::Held);
    assert_eq!(
        held.reason.as_deref(),
        Some("an engine log the manifest opts into release: reviewed before it leaves")
    );
    // The other log and the runner's own files are never offered.
    assert!(
        w.store
            .egress_files(id)
            .await
            .unwrap()
            .iter()
            .all(|f| !f.path.ends_with("stdout") && !f.path.ends_with("log.json"))
    );
    assert!(!keys(&w, id).await.contains(&format!("{id}/{log}")));
    approve_in_review(&w, id, log, b"Building DAG of jobs...\n").await;
    c.rescan().await.unwrap();
    let got = w.bucket.get(&format!("{id}/{log}")).await.unwrap().unwrap();
    assert_eq!(got, b"Building DAG of jobs...\n");
}

#[tokio::test]
async fn a_run_that_cannot_be_walked_is_retried_then_settled_as_failed_without_blocking_others() {
    let Some(w) = world().await else { return };
    let (broken, broken_dir) = finished_run(&w).await;
    for i in 0..60 {
        std::fs::write(broken_dir.join(format!("extra-{i}.txt")), "x").unwrap();
    }
    let (fine, _) = finished_run(&w).await;
    let c = Crawler::new(
        w.store.clone(),
        w.bucket.clone(),
        Settings {
            walk_max_entries: 50,
            walk_max_attempts: 2,
            ..settings()
        },
        Arc::new(Metrics::default()),
    );
    c.rescan().await.unwrap();
    // The other run is released; the broken one keeps its reason and waits for a retry.
    assert!(
        keys(&w, fine)
            .await
            .contains(&format!("{fine}/results.csv"))
    );
    let run = w.store.egress_run(broken).await.unwrap().unwrap();
    assert_eq!(
        run.error.as_deref(),
        Some("cannot walk the run directory: more than 50 entries in the run directory")
    );
    assert_eq!((run.attempts, run.done), (1, false));
    // Not due yet: a rescan at once leaves it alone.
    c.rescan().await.unwrap();
    assert_eq!(
        w.store.egress_run(broken).await.unwrap().unwrap().attempts,
        1
    );
    tokio::time::sleep(Duration::from_millis(1100)).await;
    c.rescan().await.unwrap();
    let run = w.store.egress_run(broken).await.unwrap().unwrap();
    assert_eq!((run.attempts, run.done), (2, true));
    assert_eq!(
        run.error.as_deref(),
        Some(
            "egress failed: cannot walk the run directory: more than 50 entries in the run \
             directory"
        )
    );
    assert!(keys(&w, broken).await.is_empty());
}

#[tokio::test]
async fn a_run_with_a_hundred_thousand_files_releases_its_outputs() {
    let Some(w) = world().await else { return };
    let (id, run_dir) = finished_run(&w).await;
    let many = run_dir.join("scratch");
    std::fs::create_dir_all(&many).unwrap();
    for i in 0..100_000 {
        std::fs::write(many.join(format!("{i}.tmp")), b"").unwrap();
    }
    crawler(&w).rescan().await.unwrap();
    assert_eq!(
        keys(&w, id).await,
        [
            format!("{id}/disclosure.json"),
            format!("{id}/manifest.json"),
            format!("{id}/plots/quals.svg"),
            format!("{id}/results.csv"),
        ]
    );
    // Files no rule names are not even recorded.
    assert_eq!(w.store.egress_files(id).await.unwrap().len(), 2);
}

/// The example manifest as version `version`, storing results.csv Crypt4GH-encrypted.
fn quals_encrypting(version: &str) -> Manifest {
    let text = example_yaml()
        .replace("version: 1.0.0", &format!("version: {version}"))
        .replace(
            "  max_file_bytes: 10485760\n",
            "  max_file_bytes: 10485760\n  encrypt: [{glob: results.csv, with: crypt4gh}]\n",
        );
    Manifest::from_yaml(&text).unwrap()
}

fn decrypt_with(key: &spe_crypt4gh::SecretKey, file: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    spe_crypt4gh::decrypt(
        file,
        &mut out,
        std::slice::from_ref(key),
        Default::default(),
    )
    .unwrap();
    out
}

#[tokio::test]
async fn an_encrypt_rule_stores_the_output_as_crypt4gh_to_the_service_key_small_or_multipart() {
    let Some(w) = world().await else { return };
    approve(&w.store, &quals_encrypting("1.2.0")).await;
    let service = spe_crypt4gh::SecretKey::generate().unwrap();
    let c = crawler(&w).with_crypt4gh_key(service.public_key());
    // One small file (one PUT) and one over the multipart threshold (sealed part by part).
    let (small, small_dir) = ended_run(&w, "quals@1.2.0", RunState::Complete).await;
    let (large, large_dir) = ended_run(&w, "quals@1.2.0", RunState::Complete).await;
    let big: Vec<u8> = (0..7 * 1024 * 1024 + 12_345)
        .map(|i: usize| b"0123456789,\n"[i % 12])
        .collect();
    std::fs::write(large_dir.join("results.csv"), &big).unwrap();
    assert_eq!(c.rescan().await.unwrap(), (2, 0));
    for (id, dir) in [(small, &small_dir), (large, &large_dir)] {
        let plain = std::fs::read(dir.join("results.csv")).unwrap();
        let stored = w
            .bucket
            .get(&format!("{id}/results.csv"))
            .await
            .unwrap()
            .unwrap();
        // The bucket holds a Crypt4GH file, never the plaintext; the service key opens it.
        assert!(stored.starts_with(b"crypt4gh"));
        assert!(!stored.windows(16).any(|win| plain.starts_with(win)));
        assert_eq!(decrypt_with(&service, &stored), plain);
        let released = w.store.released_files(id).await.unwrap();
        let csv = released.iter().find(|f| f.path == "results.csv").unwrap();
        assert_eq!(
            csv.encryption,
            Some(spe_core::manifest::OutputEncryption::Crypt4gh)
        );
        // Size and SHA-256 stay the plaintext's: what reviewers and the receipt name.
        assert_eq!(
            (csv.size as usize, csv.sha256.clone()),
            (plain.len(), sha(&plain))
        );
        // The plot has no encrypt rule: stored as it is.
        let svg = released
            .iter()
            .find(|f| f.path == "plots/quals.svg")
            .unwrap();
        assert_eq!(svg.encryption, None);
        let manifest: serde_json::Value = serde_json::from_slice(
            &w.bucket
                .get(&format!("{id}/manifest.json"))
                .await
                .unwrap()
                .unwrap(),
        )
        .unwrap();
        let entry = |p: &str| {
            manifest["files"]
                .as_array()
                .unwrap()
                .iter()
                .find(|f| f["path"] == p)
                .unwrap()
                .clone()
        };
        assert_eq!(entry("results.csv")["encryption"], "crypt4gh");
        assert!(entry("plots/quals.svg").get("encryption").is_none());
    }
}

#[tokio::test]
async fn without_the_service_key_an_output_to_encrypt_waits_and_never_leaves_in_plaintext() {
    let Some(w) = world().await else { return };
    approve(&w.store, &quals_encrypting("1.2.0")).await;
    let (id, _) = ended_run(&w, "quals@1.2.0", RunState::Complete).await;
    let c = crawler(&w);
    assert_eq!(c.rescan().await.unwrap(), (0, 1));
    assert!(
        w.bucket
            .get(&format!("{id}/results.csv"))
            .await
            .unwrap()
            .is_none()
    );
    let file = w
        .store
        .egress_file(id, "results.csv")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(file.state, EgressState::Pending);
    assert_eq!(
        file.reason.as_deref(),
        Some(
            "its egress rule stores it Crypt4GH-encrypted, and crypt4gh.public_key is not \
             configured for the crawler"
        )
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transfer_slower_than_its_lease_keeps_it_and_a_dead_crawlers_files_are_taken_over_soon() {
    let Some(w) = world().await else { return };
    let lease = Duration::from_millis(600);
    let short = Settings {
        lease,
        ..settings()
    };
    // Crawler A's transfers stand still for 4 leases after reading each file.
    let slow: results_crawler::crawler::AfterRead =
        Arc::new(|_: &Path, _: &str| std::thread::sleep(Duration::from_millis(2400)));
    let a = Crawler::with_after_read(w.store.clone(), w.bucket.clone(), short.clone(), slow);
    let b = Crawler::new(
        w.store.clone(),
        w.bucket.clone(),
        short.clone(),
        Arc::new(Metrics::default()),
    );
    let (id, _) = finished_run(&w).await;
    let a_pass = tokio::spawn({
        let a = a.clone();
        async move { a.rescan().await.unwrap() }
    });
    // Well past the lease: A is still uploading and renewing, so B takes nothing over.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let leased: Vec<_> = w
        .store
        .egress_files(id)
        .await
        .unwrap()
        .into_iter()
        .filter(|f| f.state == EgressState::Uploading)
        .collect();
    assert!(!leased.is_empty(), "A should be uploading now");
    assert!(leased.iter().all(|f| f.owner.as_deref() == Some(a.owner())));
    assert_eq!(b.rescan().await.unwrap(), (0, 1));
    assert_eq!(a_pass.await.unwrap(), (1, 0));
    let rendered = |c: &Crawler| c.metrics().render();
    let released = "spe_crawler_files_total{outcome=\"released\"}";
    assert!(
        rendered(&a).contains(&format!("{released} 2")),
        "{}",
        rendered(&a)
    );
    assert!(
        rendered(&b).contains(&format!("{released} 0")),
        "{}",
        rendered(&b)
    );

    // A crawler that dies mid-upload (its task aborted, as a kill -9 would leave it): its
    // file is taken over once the short lease runs out, not minutes later.
    let (other, _) = finished_run(&w).await;
    let dying = Crawler::with_after_read(
        w.store.clone(),
        w.bucket.clone(),
        short,
        Arc::new(|_: &Path, _: &str| std::thread::sleep(Duration::from_secs(3))),
    );
    let dying_owner = dying.owner().to_owned();
    let doomed = tokio::spawn(async move { dying.process_run_id(other).await });
    tokio::time::sleep(Duration::from_millis(500)).await;
    let held: Vec<_> = w
        .store
        .egress_files(other)
        .await
        .unwrap()
        .into_iter()
        .filter_map(|f| f.owner)
        .collect();
    assert!(
        !held.is_empty() && held.iter().all(|o| *o == dying_owner),
        "{held:?}"
    );
    doomed.abort();
    let died = std::time::Instant::now();
    loop {
        if b.process_run_id(other).await.unwrap() == results_crawler::crawler::RunOutcome::Done {
            break;
        }
        assert!(
            died.elapsed() < Duration::from_secs(10),
            "not taken over soon after its lease"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(w.store.released_files(other).await.unwrap().len(), 2);
}
