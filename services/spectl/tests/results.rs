//! `spectl results` against the real wes-api (in this process, port 0, authentication off)
//! and the real S3 server (s3s-fs, tests/peers/s3.sh; SPE_TEST_S3_URL): a run's released files
//! are listed and downloaded through presigned links, each checked against the SHA-256 of its
//! release record; an interrupted download resumes from its `.part` with a Range request; a
//! download that does not match the record is refused and its part removed. Without
//! SPE_TEST_S3_URL the test is reported skipped (`SKIPPED <test>: ...`), unless CI is set.

use std::path::Path;

use serde_json::Value;
use sha2::{Digest, Sha256};
use spe_core::RunId;
use spe_core::config::Config;
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

/// The development config (its `crawler:` section holds the test server's keys) pointed at
/// the S3 peer.
async fn spawn_app(s3: &str) -> TestApp {
    let dir = tempfile::tempdir().unwrap();
    let mut env = test_env(dir.path());
    env.extend([
        ("SPE__AUTH".to_owned(), "disabled".to_owned()),
        ("SPE__CRAWLER__ENDPOINT".to_owned(), s3.to_owned()),
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

fn now() -> Timestamp {
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    Timestamp::from_micros(i64::try_from(since.as_micros()).unwrap())
}

fn sha256(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// As the results crawler leaves a run: each file's object in the bucket and its row released
/// with `recorded` as its digest (the object's own, unless the test wants a mismatch), and
/// one file held for review (in the bucket too, but never listed).
async fn release(app: &TestApp, run: RunId, files: &[(&str, &[u8], String)]) {
    let mut scanned: Vec<NewEgressFile> = files
        .iter()
        .map(|(path, body, _)| NewEgressFile {
            path: (*path).to_owned(),
            state: EgressState::Pending,
            size: i64::try_from(body.len()).unwrap(),
            reason: None,
        })
        .collect();
    scanned.push(NewEgressFile {
        path: "held.csv".into(),
        state: EgressState::Held,
        size: 5,
        reason: None,
    });
    for (path, body) in files
        .iter()
        .map(|(p, b, _)| (*p, b.to_vec()))
        .chain([("held.csv", b"held\n".to_vec())])
    {
        app.s3
            .put_object()
            .bucket(&app.bucket)
            .key(spe_core::bucket::object_key(run, path))
            .body(body.into())
            .send()
            .await
            .unwrap();
    }
    app.store
        .record_egress_scan(run, &scanned, now())
        .await
        .unwrap();
    for (path, body, recorded) in files {
        let lease = Timestamp::from_micros(now().micros() + 60_000_000);
        app.store
            .claim_egress_file(run, path, "test-crawler", now(), lease)
            .await
            .unwrap()
            .unwrap();
        let size = i64::try_from(body.len()).unwrap();
        assert!(
            app.store
                .finish_egress_file(
                    run,
                    path,
                    "test-crawler",
                    EgressOutcome::Released {
                        sha256: recorded,
                        size
                    },
                    now(),
                )
                .await
                .unwrap()
        );
    }
}

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[tokio::test]
async fn released_results_download_resume_and_are_checked() {
    let Some(s3) = s3_url() else {
        return;
    };
    let app = spawn_app(&s3).await;
    let quals = repo_root().join("workflows/quals").display().to_string();
    ok(&app, &["workflow", "register", &quals]).await;
    ok(&app, &["workflow", "approve", "quals@1.0.0"]).await;
    let id = ok(&app, &["run", "submit", "quals@1.0.0"]).await;
    let id = id.trim().to_owned();
    let run: RunId = id.parse().unwrap();

    // Large enough for several chunks, so that a resumed download is one Range request away.
    let csv: Vec<u8> = (0..20_000)
        .flat_map(|i| format!("sample{i},{}\n", i % 97).into_bytes())
        .collect();
    let svg = b"<svg xmlns=\"http://www.w3.org/2000/svg\"/>\n".to_vec();
    let tampered = b"what the crawler released\n".to_vec();
    release(
        &app,
        run,
        &[
            ("results.csv", &csv, sha256(&csv)),
            ("plots/quals.svg", &svg, sha256(&svg)),
            // The record says other bytes than the bucket holds.
            ("tampered.txt", &tampered, sha256(b"something else\n")),
        ],
    )
    .await;

    // The runs with results, and this run's released files (never the held one).
    let out = ok(&app, &["results", "list"]).await;
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].starts_with("RUN ID"), "{out}");
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with(&id) && l.contains("quals@1.0.0")),
        "{out}"
    );
    assert_eq!(
        ok_json(&app, &["results", "list"]).await["results"][0]["run_id"],
        id.as_str()
    );
    let out = ok(&app, &["results", "list", &id]).await;
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 4, "{out}");
    let csv_row = lines.iter().find(|l| l.starts_with("results.csv")).unwrap();
    assert!(csv_row.contains(&format!("  {}  ", csv.len())), "{out}");
    assert!(csv_row.contains(&sha256(&csv)[..12]), "{out}");
    assert!(!out.contains("held.csv"), "{out}");

    // Two files into a folder of our choosing, under their run-relative paths.
    let dir = tempfile::tempdir().unwrap();
    let into = dir.path().join("out");
    let into_text = into.display().to_string();
    let out = ok(
        &app,
        &[
            "results",
            "download",
            &id,
            "results.csv",
            "plots/quals.svg",
            "--dir",
            &into_text,
        ],
    )
    .await;
    // In the order the service lists them (by path).
    assert_eq!(
        out,
        format!(
            "{into_text}/plots/quals.svg downloaded ({} bytes, SHA-256 verified)\n\
             {into_text}/results.csv downloaded ({} bytes, SHA-256 verified)\n",
            svg.len(),
            csv.len()
        )
    );
    assert_eq!(read(&into.join("results.csv")), csv);
    assert_eq!(read(&into.join("plots/quals.svg")), svg);
    // Again: already there, nothing fetched.
    let again = ok_json(
        &app,
        &[
            "results",
            "download",
            &id,
            "results.csv",
            "--dir",
            &into_text,
        ],
    )
    .await;
    assert_eq!(again["files"][0]["outcome"], "already present");
    assert_eq!(again["files"][0]["sha256"], sha256(&csv).as_str());

    // An interrupted download: the first part is there; only the rest is fetched.
    let resume = dir.path().join("resume");
    std::fs::create_dir_all(&resume).unwrap();
    let half = csv.len() / 2;
    std::fs::write(resume.join("results.csv.part"), &csv[..half]).unwrap();
    let out = ok(
        &app,
        &[
            "results",
            "download",
            &id,
            "results.csv",
            "--dir",
            &resume.display().to_string(),
        ],
    )
    .await;
    assert!(
        out.ends_with(&format!(
            "results.csv resumed at byte {half} ({} bytes, SHA-256 verified)\n",
            csv.len()
        )),
        "{out}"
    );
    assert_eq!(read(&resume.join("results.csv")), csv);
    assert!(!resume.join("results.csv.part").exists());

    // A part whose bytes are wrong: resumed, it cannot match the record, so it is refused and
    // removed (and the file never appears).
    let corrupt = dir.path().join("corrupt");
    std::fs::create_dir_all(&corrupt).unwrap();
    let mut wrong = csv[..half].to_vec();
    wrong[10] ^= 0xff;
    std::fs::write(corrupt.join("results.csv.part"), &wrong).unwrap();
    let mut fetched = wrong.clone();
    fetched.extend_from_slice(&csv[half..]);
    let out = spectl(
        &app,
        &[
            "results",
            "download",
            &id,
            "results.csv",
            "--dir",
            &corrupt.display().to_string(),
        ],
    )
    .await;
    assert_eq!(out.code, 1, "{out:?}");
    assert_eq!(
        out.stderr,
        format!(
            "spectl: results.csv: SHA-256 mismatch: the release record says {}, the download is {}; {} removed\n",
            sha256(&csv),
            sha256(&fetched),
            corrupt.join("results.csv.part").display()
        )
    );
    assert!(!corrupt.join("results.csv.part").exists());
    assert!(!corrupt.join("results.csv").exists());

    // Bytes that differ from the release record from the start: refused the same way.
    let out = spectl(
        &app,
        &[
            "results",
            "download",
            &id,
            "tampered.txt",
            "--dir",
            &into_text,
        ],
    )
    .await;
    assert_eq!(out.code, 1, "{out:?}");
    assert!(
        out.stderr.contains(&format!(
            "tampered.txt: SHA-256 mismatch: the release record says {}, the download is {};",
            sha256(b"something else\n"),
            sha256(&tampered)
        )),
        "{out:?}"
    );
    assert!(!into.join("tampered.txt").exists() && !into.join("tampered.txt.part").exists());

    // A file that is not released, and a different file in the way: refused, nothing written.
    let out = spectl(
        &app,
        &["results", "download", &id, "held.csv", "--dir", &into_text],
    )
    .await;
    assert_eq!(out.code, 2, "{out:?}");
    assert!(
        out.stderr.contains("\"held.csv\" is not a released file"),
        "{out:?}"
    );
    std::fs::write(into.join("plots/quals.svg"), b"mine").unwrap();
    let out = spectl(
        &app,
        &[
            "results",
            "download",
            &id,
            "plots/quals.svg",
            "--dir",
            &into_text,
        ],
    )
    .await;
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stderr.contains("exists and differs"), "{out:?}");
    assert_eq!(read(&into.join("plots/quals.svg")), b"mine");
}

/// A run of `owner` (in the store only) whose `files` the crawler held for review; they are on
/// disk in its run directory.
async fn held_run(app: &TestApp, owner: spe_core::Subject, files: &[(&str, &str)]) -> RunId {
    let id = RunId::new_random();
    let run_dir = app._dir.path().join("held").join(id.to_string());
    app.store
        .insert_run(&spe_store::NewRun {
            id,
            owner,
            submission: spe_test_support::store::submission("quals@1.0.0", &[]),
            run_dir: run_dir.display().to_string(),
            created_at: now(),
        })
        .await
        .unwrap();
    let mut held = Vec::new();
    for (path, body) in files {
        std::fs::create_dir_all(&run_dir).unwrap();
        std::fs::write(run_dir.join(path), body).unwrap();
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

#[tokio::test]
async fn controllers_review_held_outputs_and_owners_follow_and_answer() {
    let Some(s3) = s3_url() else {
        return;
    };
    let app = spawn_app(&s3).await;
    // Authentication is off: the one local user holds every role, so they review Alice's run
    // and own (and may not review) their own.
    let theirs = held_run(
        &app,
        spe_test_support::store::person("alice"),
        &[("table.csv", "n\n12\n"), ("plot.png", "png")],
    )
    .await;
    let mine = held_run(
        &app,
        spe_core::Subject::local_dev_user(),
        &[("t.csv", "n\n1\n")],
    )
    .await;
    let (theirs_s, mine_s) = (theirs.to_string(), mine.to_string());

    let listing = ok(&app, &["review", "list", "--state", "open"]).await;
    assert!(
        listing.contains(&theirs_s) && listing.contains(&mine_s),
        "{listing}"
    );
    let shown = ok_json(&app, &["review", "show", &theirs_s]).await;
    assert_eq!(shown["files"][1]["path"], "table.csv");
    assert_eq!(shown["files"][1]["review"]["decision"], "awaiting");

    let seen = ok(&app, &["review", "preview", &theirs_s, "table.csv"]).await;
    assert!(seen.contains("COLUMN") && seen.contains("12"), "{seen}");

    // Rejecting needs a comment: clap says so before anything is sent.
    let out = spectl(&app, &["review", "reject", &theirs_s, "plot.png"]).await;
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stderr.contains("--comment"), "{out:?}");
    let said = ok(
        &app,
        &[
            "review",
            "approve",
            &theirs_s,
            "table.csv",
            "--comment",
            "counts >= 10",
        ],
    )
    .await;
    assert_eq!(
        said.trim(),
        "table.csv: approve recorded; decision approved"
    );
    let said = ok_json(
        &app,
        &[
            "review",
            "reject",
            &theirs_s,
            "plot.png",
            "--comment",
            "a face",
        ],
    )
    .await;
    assert_eq!(said["decision"], "rejected");
    let egress = ok_json(&app, &["run", "egress", &theirs_s]).await;
    assert_eq!(egress["review"], "decided");
    assert_eq!(egress["egress_error"], Value::Null);
    assert_eq!(egress["files"][0]["state"], "rejected");
    assert_eq!(egress["files"][0]["reason"], "rejected in review: a face");

    // Their own run: no vote, but they answer when it is returned (by another controller:
    // here the store, as the local user may not return their own run either).
    let out = spectl(&app, &["review", "approve", &mine_s, "t.csv"]).await;
    assert_eq!(out.code, 2, "a refusal: {out:?}");
    assert!(
        out.stderr.contains(&format!(
            "you own run {mine}: another data controller must review its outputs"
        )),
        "{out:?}"
    );
    app.store
        .return_review(
            mine,
            &spe_test_support::store::person("carol"),
            "why is n 1?",
            now(),
        )
        .await
        .unwrap();
    app.store
        .record_egress_failure(mine, "cannot walk the run directory: gone", None, now())
        .await
        .unwrap();
    let table = ok(&app, &["run", "egress", &mine_s]).await;
    assert!(
        table.contains("egress: egress failed: cannot walk the run directory: gone"),
        "{table}"
    );
    assert!(
        table.contains("review: returned") && table.contains("why is n 1?"),
        "{table}"
    );
    let said = ok(&app, &["run", "answer", &mine_s, "--comment", "a test run"]).await;
    assert_eq!(
        said.trim(),
        format!("answered; the review of run {mine} is open again")
    );
}
