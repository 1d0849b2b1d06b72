//! The workflow and dataset registries over HTTP, and how run submission uses them.

mod common;

use std::path::{Path, PathBuf};

use common::{TestApp, error_msg, repo_root, spawn_app, spawn_app_with};
use serde_json::{Value, json};

/// A private copy of an example workflow, free to be changed by the test.
fn copy_example(name: &str, into: &tempfile::TempDir) -> PathBuf {
    fn copy(from: &Path, to: &Path) {
        std::fs::create_dir_all(to).unwrap();
        for entry in std::fs::read_dir(from).unwrap() {
            let entry = entry.unwrap();
            let target = to.join(entry.file_name());
            if entry.file_type().unwrap().is_dir() {
                copy(&entry.path(), &target);
            } else {
                std::fs::copy(entry.path(), target).unwrap();
            }
        }
    }
    let to = into.path().join(name);
    copy(&repo_root().join("workflows").join(name), &to);
    to.canonicalize().unwrap()
}

async fn submit_quals(app: &TestApp, url: &str, params: Value) -> reqwest::Response {
    app.post_json(
        "/runs",
        json!({
            "workflow_type": "SMK",
            "workflow_type_version": "9",
            "workflow_url": url,
            "workflow_params": params,
        }),
    )
    .await
}

#[tokio::test]
async fn workflow_lifecycle_draft_approved_retired() {
    let app = spawn_app_with(&[]).await;
    let dir = tempfile::tempdir().unwrap();
    let quals = copy_example("quals", &dir);
    app.register_dataset("demo-1").await;

    let res = app
        .post_json(
            "/admin/workflows",
            json!({"source_dir": quals.display().to_string()}),
        )
        .await;
    assert_eq!(res.status(), 201);
    let draft: Value = res.json().await.unwrap();
    assert_eq!(draft["state"], "draft");
    assert_eq!(draft["digest"], Value::Null);
    assert_eq!(draft["workflow_url"], "quals@1.0.0");
    assert_eq!(draft["registered_digest"].as_str().unwrap().len(), 64);
    assert!(
        draft["files"]
            .as_array()
            .unwrap()
            .contains(&json!("workflow.yaml"))
    );

    // Drafts are not shown to researchers and do not run.
    let (_, list) = app.get_json("/workflows").await;
    assert_eq!(list["workflows"], json!([]));
    let (status, _) = app.get_json("/workflows/quals/1.0.0").await;
    assert_eq!(status, 404);
    let msg = error_msg(
        submit_quals(&app, "quals@1.0.0", json!({"dataset": "demo-1"})).await,
        400,
    )
    .await;
    assert!(
        msg.starts_with("workflow_url:") && msg.contains("not approved"),
        "{msg}"
    );

    // The same version cannot be registered twice.
    let res = app
        .post_json(
            "/admin/workflows",
            json!({"source_dir": quals.display().to_string()}),
        )
        .await;
    error_msg(res, 409).await;

    let res = app
        .post_json("/admin/workflows/quals/1.0.0/approve", json!({}))
        .await;
    assert_eq!(res.status(), 200);
    let approved: Value = res.json().await.unwrap();
    assert_eq!(approved["state"], "approved");
    assert_eq!(approved["digest"], draft["registered_digest"]);
    assert_eq!(
        approved["approved_by"],
        json!({"issuer": "urn:spe:local", "sub": "local-dev-user"})
    );
    assert!(approved["approved_at"].as_str().unwrap().ends_with('Z'));
    let res = app
        .post_json("/admin/workflows/quals/1.0.0/approve", json!({}))
        .await;
    error_msg(res, 409).await;

    let (status, shown) = app.get_json("/workflows/quals/1.0.0").await;
    assert_eq!(status, 200);
    assert_eq!(shown["params_schema"]["type"], "object");
    assert_eq!(
        shown["dataset_params"],
        json!([{"name": "dataset", "many": false}])
    );
    assert!(shown.get("source_dir").is_none());
    let cores = shown["engine_parameters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "cores")
        .unwrap();
    // Narrowed to the deployment's bound (2) from the manifest's (4).
    assert_eq!(cores["max"], 2);
    let (_, list) = app.get_json("/workflows").await;
    assert_eq!(list["workflows"].as_array().unwrap().len(), 1);

    let res = submit_quals(&app, "quals@1.0.0", json!({"dataset": "demo-1"})).await;
    assert_eq!(res.status(), 200);
    let id = res.json::<Value>().await.unwrap()["run_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (_, run) = app.get_json(&format!("/runs/{id}")).await;
    assert_eq!(run["request"]["workflow_url"], "quals@1.0.0");
    // Dataset ids are stored as given; paths are resolved only into the run spec.
    assert_eq!(
        run["request"]["workflow_params"],
        json!({"dataset": "demo-1"})
    );
    // Deployment parameters are all present, with the manifest's defaults.
    assert_eq!(
        run["request"]["workflow_engine_parameters"]["memory_mb"],
        "1024"
    );

    let res = app
        .post_json(
            "/admin/workflows/quals/1.0.0/retire",
            json!({"reason": "superseded"}),
        )
        .await;
    assert_eq!(res.status(), 200);
    let msg = error_msg(
        submit_quals(&app, "quals@1.0.0", json!({"dataset": "demo-1"})).await,
        400,
    )
    .await;
    assert!(msg.contains("retired"), "{msg}");
    let (_, list) = app.get_json("/workflows").await;
    assert_eq!(list["workflows"], json!([]));
    let (_, all) = app.get_json("/admin/workflows?state=retired").await;
    assert_eq!(all["workflows"][0]["retire_reason"], "superseded");

    let (status, events) = app.get_json("/admin/events?workflow=quals@1.0.0").await;
    assert_eq!(status, 200);
    let actions: Vec<&str> = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, vec!["retired", "approved", "registered"]);
    assert_eq!(
        events["events"][0]["actor"],
        json!({"issuer": "urn:spe:local", "sub": "local-dev-user"})
    );
    let (_, all_events) = app.get_json("/admin/events").await;
    assert_eq!(all_events["events"].as_array().unwrap().len(), 4);
}

#[tokio::test]
async fn the_registrar_cannot_approve_under_the_four_eyes_rule() {
    let app = spawn_app_with(&[("SPE__WORKFLOWS__REQUIRE_DISTINCT_APPROVER", "true")]).await;
    let quals = repo_root().join("workflows/quals").canonicalize().unwrap();
    let res = app
        .post_json(
            "/admin/workflows",
            json!({"source_dir": quals.display().to_string()}),
        )
        .await;
    assert_eq!(res.status(), 201);
    let res = app
        .post_json("/admin/workflows/quals/1.0.0/approve", json!({}))
        .await;
    assert!(error_msg(res, 403).await.contains("registered"));
}

#[tokio::test]
async fn changed_files_are_refused_at_approval_and_at_submission() {
    let app = spawn_app_with(&[]).await;
    app.register_dataset("demo-1").await;
    let dir = tempfile::tempdir().unwrap();
    let quals = copy_example("quals", &dir);

    // Changed between registration and approval: approval refused.
    let res = app
        .post_json(
            "/admin/workflows",
            json!({"source_dir": quals.display().to_string()}),
        )
        .await;
    assert_eq!(res.status(), 201);
    std::fs::write(
        quals.join("Snakefile"),
        "rule all:\n    shell: 'cat /data/*'\n",
    )
    .unwrap();
    let res = app
        .post_json("/admin/workflows/quals/1.0.0/approve", json!({}))
        .await;
    assert!(error_msg(res, 409).await.contains("changed"));

    // Changed after approval and after a run was accepted (whose check left the files'
    // stamps remembered, so later submissions do not hash them again): submission refused
    // with 400, the change noticed through the stamps.
    let hello = copy_example("hello-nf", &dir);
    let url = app.register_and_approve(&hello).await;
    let res = app
        .post_json(
            "/runs",
            json!({
                "workflow_type": "NFL",
                "workflow_type_version": "DSL2",
                "workflow_url": url,
                "workflow_params": {"greeting": "hi"},
            }),
        )
        .await;
    assert_eq!(res.status(), 200);
    let accepted = res.json::<Value>().await.unwrap()["run_id"].clone();
    std::fs::write(hello.join("main.nf"), "process evil { script: 'env' }\n").unwrap();
    let res = app
        .post_json(
            "/runs",
            json!({
                "workflow_type": "NFL",
                "workflow_type_version": "DSL2",
                "workflow_url": url,
                "workflow_params": {"greeting": "hi"},
            }),
        )
        .await;
    let msg = error_msg(res, 400).await;
    assert!(
        msg.starts_with("workflow_url:") && msg.contains("digest"),
        "{msg}"
    );
    // A removed file too.
    std::fs::remove_file(hello.join("main.nf")).unwrap();
    let res = app
        .post_json(
            "/runs",
            json!({
                "workflow_type": "NFL",
                "workflow_type_version": "DSL2",
                "workflow_url": url,
            }),
        )
        .await;
    assert!(error_msg(res, 400).await.contains("digest"));
    let (_, list) = app.get_json("/runs").await;
    let listed: Vec<&Value> = list["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| &r["run_id"])
        .collect();
    assert_eq!(listed, [&accepted]);
}

#[tokio::test]
async fn traversal_and_injection_in_submissions_are_refused_with_400() {
    let app = spawn_app().await;
    let huge = "x".repeat(100_000);
    for url in [
        "../quals@1.0.0",
        "quals@../../etc/passwd",
        "/srv/workflows/quals",
        "file:///etc/passwd",
        "https://evil.example/quals@1.0.0",
        "quals@1.0.0; rm -rf /",
        "quals@1.0.0 && id",
        "$(id)@1.0.0",
        "quals@1.0.0/../../x",
        "QUALS@1.0.0",
        "quals@9.9.9",
        "nope@1.0.0",
        huge.as_str(),
    ] {
        let res = submit_quals(&app, url, json!({"dataset": "demo-1"})).await;
        let msg = error_msg(res, 400).await;
        assert!(msg.starts_with("workflow_url:"), "{url}: {msg}");
        assert!(
            msg.len() < 1000,
            "the message echoes the value: {}",
            msg.len()
        );
    }
    // A workflow of another type.
    let res = app
        .post_json(
            "/runs",
            json!({
                "workflow_type": "NFL",
                "workflow_type_version": "DSL2",
                "workflow_url": "quals@1.0.0",
            }),
        )
        .await;
    assert!(error_msg(res, 400).await.starts_with("workflow_type:"));

    let param_cases = [
        (json!({"dataset": "/etc/passwd"}), "workflow_params.dataset"),
        (
            json!({"dataset": "../../secret"}),
            "workflow_params.dataset",
        ),
        (
            json!({"dataset": "demo-1/../../x"}),
            "workflow_params.dataset",
        ),
        (
            json!({"dataset": "demo-1; cat /etc/shadow"}),
            "workflow_params.dataset",
        ),
        (json!({"dataset": "$(reboot)"}), "workflow_params.dataset"),
        (json!({"dataset": "`id`"}), "workflow_params.dataset"),
        (json!({"dataset": "demo-1\nx"}), "workflow_params.dataset"),
        (
            json!({"dataset": "no-such-dataset"}),
            "workflow_params.dataset",
        ),
        (json!({"dataset": huge}), "workflow_params.dataset"),
        (json!({"dataset": 7}), "workflow_params.dataset"),
        (
            json!({"dataset": "demo-1", "min_qual": 1e300}),
            "workflow_params.min_qual",
        ),
        (
            json!({"dataset": "demo-1", "min_qual": "30"}),
            "workflow_params.min_qual",
        ),
        (
            json!({"dataset": "demo-1", "outdir": "/tmp"}),
            "workflow_params",
        ),
        (json!({"dataset": "demo-1", "../x": 1}), "workflow_params"),
    ];
    for (params, field) in param_cases {
        let res = submit_quals(&app, "quals@1.0.0", params.clone()).await;
        let msg = error_msg(res, 400).await;
        assert!(msg.starts_with(field), "{params}: {msg}");
        assert!(msg.len() < 1000);
    }

    let engine_cases = [
        (json!({"cores": "3"}), "workflow_engine_parameters.cores"),
        (json!({"cores": "-1"}), "workflow_engine_parameters.cores"),
        (
            json!({"cores": "1; reboot"}),
            "workflow_engine_parameters.cores",
        ),
        (
            json!({"cores": "99999999999999999999999"}),
            "workflow_engine_parameters.cores",
        ),
        (
            json!({"partition": "../gpu"}),
            "workflow_engine_parameters.partition",
        ),
        (
            json!({"partition": "debug --wrap=id"}),
            "workflow_engine_parameters.partition",
        ),
        (
            json!({"account": "other"}),
            "workflow_engine_parameters.account",
        ),
        (
            json!({"memory_mb": huge}),
            "workflow_engine_parameters.memory_mb",
        ),
    ];
    for (params, field) in engine_cases {
        let res = app
            .post_json(
                "/runs",
                json!({
                    "workflow_type": "SMK",
                    "workflow_type_version": "9",
                    "workflow_url": "quals@1.0.0",
                    "workflow_params": {"dataset": "demo-1"},
                    "workflow_engine_parameters": params,
                }),
            )
            .await;
        let msg = error_msg(res, 400).await;
        assert!(msg.starts_with(field), "{params}: {msg}");
    }
    // An engine version outside the manifest's range.
    let res = app
        .post_json(
            "/runs",
            json!({
                "workflow_type": "SMK",
                "workflow_type_version": "9",
                "workflow_url": "quals@1.0.0",
                "workflow_params": {"dataset": "demo-1"},
                "workflow_engine_version": "8.0",
            }),
        )
        .await;
    assert!(
        error_msg(res, 400)
            .await
            .starts_with("workflow_engine_version:")
    );

    // Nothing refused was stored.
    let (_, list) = app.get_json("/runs").await;
    assert_eq!(list["runs"], json!([]));
}

#[tokio::test]
async fn registration_refuses_bad_folders_and_manifests() {
    let app = spawn_app_with(&[]).await;
    let dir = tempfile::tempdir().unwrap();
    let quals = copy_example("quals", &dir);
    for source_dir in [
        "relative/path".to_owned(),
        format!("{}/../quals", quals.display()),
        "/nonexistent/workflow".to_owned(),
        "/tmp/a\nb".to_owned(),
        String::new(),
    ] {
        let res = app
            .post_json("/admin/workflows", json!({"source_dir": source_dir}))
            .await;
        error_msg(res, 400).await;
    }
    let res = app
        .post_json("/admin/workflows", json!({"source_dir": "/tmp", "x": 1}))
        .await;
    error_msg(res, 400).await;

    // A file the manifest does not list would make every run fail spe-runner's check.
    std::fs::write(quals.join("notes.txt"), "not part of the workflow").unwrap();
    let res = app
        .post_json("/admin/workflows", json!({"source_dir": quals}))
        .await;
    let msg = error_msg(res, 400).await;
    assert!(msg.contains("notes.txt is not listed"), "{msg}");
    std::fs::remove_file(quals.join("notes.txt")).unwrap();

    let manifest = std::fs::read_to_string(quals.join("workflow.yaml")).unwrap();
    for (from, to, field) in [
        (
            "  - Snakefile\n",
            "  - ../../etc/passwd\n  - Snakefile\n",
            "files[0]",
        ),
        (
            "entry_point: Snakefile",
            "entry_point: /bin/sh",
            "entry_point",
        ),
        ("name: quals", "name: ../quals", "name"),
        (
            "additionalProperties: false",
            "additionalProperties: true",
            "params",
        ),
        ("engine: SMK", "engine: CWL", "engine"),
        ("max: 4,", "max: 4, surprise: 1,", "engine_parameters"),
    ] {
        assert!(manifest.contains(from), "{from}");
        std::fs::write(quals.join("workflow.yaml"), manifest.replace(from, to)).unwrap();
        let res = app
            .post_json(
                "/admin/workflows",
                json!({"source_dir": quals.display().to_string()}),
            )
            .await;
        let msg = error_msg(res, 400).await;
        assert!(msg.contains(field), "{to}: {msg}");
    }
    // A symlink among the files.
    std::fs::write(quals.join("workflow.yaml"), &manifest).unwrap();
    std::fs::remove_file(quals.join("Snakefile")).unwrap();
    std::os::unix::fs::symlink("/etc/passwd", quals.join("Snakefile")).unwrap();
    let res = app
        .post_json(
            "/admin/workflows",
            json!({"source_dir": quals.display().to_string()}),
        )
        .await;
    error_msg(res, 400).await;
    let (_, all) = app.get_json("/admin/workflows").await;
    assert_eq!(all["workflows"], json!([]));

    for path in [
        "/admin/workflows/quals/1.0.0",
        "/admin/workflows/..%2F..%2Fetc/passwd",
        "/workflows/quals/1.0.0",
    ] {
        let res = app.client.get(app.wes(path)).send().await.unwrap();
        error_msg(res, 404).await;
    }
}

#[tokio::test]
async fn datasets_are_managed_by_controllers_and_named_by_id() {
    let app = spawn_app().await;
    let res = app
        .post_json(
            "/admin/datasets",
            json!({
                "id": "cohort-2",
                "description": "Encrypted cohort",
                "location": "/data/cohort-2",
                "crypt4gh": true,
                "visa": "https://ega.example/datasets/EGAD0001"
            }),
        )
        .await;
    assert_eq!(res.status(), 201);
    let (_, shown) = app.get_json("/admin/datasets/cohort-2").await;
    assert_eq!(shown["location"], "/data/cohort-2");
    assert_eq!(shown["crypt4gh"], true);

    // Researchers see ids, never locations.
    let (_, list) = app.get_json("/datasets").await;
    let listed = list["datasets"].as_array().unwrap();
    assert_eq!(listed.len(), 2);
    assert!(listed.iter().all(|d| d.get("location").is_none()));

    for body in [
        json!({"id": "cohort-2", "location": "/data/x"}),
        json!({"id": "../x", "location": "/data/x"}),
        json!({"id": "/etc", "location": "/data/x"}),
        json!({"id": "x", "location": "data/x"}),
        json!({"id": "x", "location": "/data/../etc"}),
        json!({"id": "x", "location": "/data/x", "owner": "me"}),
    ] {
        let res = app.post_json("/admin/datasets", body.clone()).await;
        assert!(res.status().is_client_error(), "{body}");
    }

    let res = submit_quals(&app, "quals@1.0.0", json!({"dataset": "cohort-2"})).await;
    assert_eq!(res.status(), 200);
    let res = app
        .post_json("/admin/datasets/cohort-2/retire", json!({}))
        .await;
    assert_eq!(res.status(), 200);
    let msg = error_msg(
        submit_quals(&app, "quals@1.0.0", json!({"dataset": "cohort-2"})).await,
        400,
    )
    .await;
    assert!(msg.starts_with("workflow_params.dataset:"), "{msg}");
    let (_, events) = app.get_json("/admin/events?dataset=cohort-2").await;
    let actions: Vec<&str> = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, vec!["retired", "created"]);
}

/// The tar.gz of a folder, its members under `prefix` (`"."` for the archive's root).
fn tar_gz_of(dir: &Path, prefix: &str) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    builder.append_dir_all(prefix, dir).unwrap();
    gzip(builder.into_inner().unwrap())
}

fn gzip(tar: Vec<u8>) -> Vec<u8> {
    use std::io::Write;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&tar).unwrap();
    gz.finish().unwrap()
}

/// A tar member written as given: the tar crate's own builder refuses the names these tests
/// need (absolute, `..`).
fn raw_member(
    builder: &mut tar::Builder<Vec<u8>>,
    name: &str,
    kind: tar::EntryType,
    link: &str,
    data: &[u8],
) {
    let mut header = tar::Header::new_old();
    header.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
    header.as_old_mut().linkname[..link.len()].copy_from_slice(link.as_bytes());
    header.set_entry_type(kind);
    header.set_size(data.len() as u64);
    header.set_mode(0o644);
    header.set_cksum();
    builder.append(&header, data).unwrap();
}

async fn upload(app: &TestApp, content_type: &str, body: Vec<u8>) -> reqwest::Response {
    app.client
        .post(app.wes("/admin/workflows"))
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .unwrap()
}

fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::symlink_metadata(path)
        .unwrap()
        .permissions()
        .mode()
        & 0o777
}

#[tokio::test]
async fn an_uploaded_tar_gz_registers_with_the_digest_of_its_folder() {
    let quals = repo_root().join("workflows/quals").canonicalize().unwrap();
    // The folder registered in place, for the reference digest.
    let by_path = spawn_app_with(&[]).await;
    let res = by_path
        .post_json(
            "/admin/workflows",
            json!({"source_dir": quals.display().to_string()}),
        )
        .await;
    assert_eq!(res.status(), 201);
    let reference: Value = res.json().await.unwrap();
    let digest = reference["registered_digest"].as_str().unwrap().to_owned();

    // Inside one top-level folder.
    let app = spawn_app_with(&[]).await;
    app.register_dataset("demo-1").await;
    let upload_dir = app.data_dir.join(".registry").canonicalize().unwrap();
    let res = upload(&app, "application/gzip", tar_gz_of(&quals, "quals")).await;
    assert_eq!(res.status(), 201);
    let draft: Value = res.json().await.unwrap();
    assert_eq!(draft["registered_digest"], digest.as_str());
    assert_eq!(draft["files"], reference["files"]);
    let folder = upload_dir.join(format!("quals/1.0.0-{}", &digest[..12]));
    assert_eq!(draft["source_dir"], folder.display().to_string());
    // Read-only, so that changing it takes effort (and the digest still guards).
    assert_eq!(mode(&folder), 0o555);
    assert_eq!(mode(&folder.join("data")), 0o555);
    assert_eq!(mode(&folder.join("workflow.yaml")), 0o444);
    assert_eq!(mode(&folder.join("data/calls.tsv")), 0o444);
    // Only the installed folder is left: no temporary folders.
    let left: Vec<_> = std::fs::read_dir(&upload_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left, vec![std::ffi::OsString::from("quals")]);

    // It approves and runs like a registered folder.
    let res = app
        .post_json("/admin/workflows/quals/1.0.0/approve", json!({}))
        .await;
    assert_eq!(res.status(), 200);
    let res = submit_quals(&app, "quals@1.0.0", json!({"dataset": "demo-1"})).await;
    assert_eq!(res.status(), 200);

    // The same upload again is the same version: 409, and the folder stays.
    let res = upload(&app, "application/x-gzip", tar_gz_of(&quals, "quals")).await;
    error_msg(res, 409).await;
    assert!(folder.join("workflow.yaml").is_file());

    // An archive holding a file the manifest does not list is refused: every file of an
    // approved folder is part of its digest, and spe-runner refuses unlisted files.
    let other = spawn_app_with(&[]).await;
    let mut builder = tar::Builder::new(Vec::new());
    builder.append_dir_all(".", &quals).unwrap();
    let mut header = tar::Header::new_gnu();
    header.set_size(10);
    header.set_mode(0o755);
    builder
        .append_data(&mut header, "bin/tool.sh", &b"#!/bin/sh\n"[..])
        .unwrap();
    let res = upload(
        &other,
        "application/x-tar+gzip",
        gzip(builder.into_inner().unwrap()),
    )
    .await;
    assert!(
        error_msg(res, 400)
            .await
            .contains("bin/tool.sh is not listed")
    );

    // At the archive's root, under the other media type: the same digest, read-only.
    let mut builder = tar::Builder::new(Vec::new());
    builder.append_dir_all(".", &quals).unwrap();
    let res = upload(
        &other,
        "application/x-tar+gzip",
        gzip(builder.into_inner().unwrap()),
    )
    .await;
    assert_eq!(res.status(), 201);
    let v: Value = res.json().await.unwrap();
    assert_eq!(v["registered_digest"], digest.as_str());
    let folder = PathBuf::from(v["source_dir"].as_str().unwrap());
    assert_eq!(mode(&folder.join("data")), 0o555);
    assert_eq!(mode(&folder.join("Snakefile")), 0o444);
}

#[tokio::test]
async fn unsafe_uploads_are_refused_and_leave_nothing_behind() {
    use tar::EntryType;
    let app = spawn_app_with(&[("SPE__WORKFLOWS__UPLOAD_MAX_BYTES", "100000")]).await;
    let upload_dir = app.data_dir.join(".registry");
    let quals = repo_root().join("workflows/quals");
    // The genuine workflow first, then one bad member: the refusal must undo what was unpacked.
    let with = |name: &str, kind: EntryType, link: &str, data: &[u8]| {
        let mut builder = tar::Builder::new(Vec::new());
        builder.append_dir_all("quals", &quals).unwrap();
        raw_member(&mut builder, name, kind, link, data);
        gzip(builder.into_inner().unwrap())
    };
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "parent",
            with("../evil", EntryType::Regular, "", b"x"),
            "`..`",
        ),
        (
            "nested parent",
            with("quals/../../evil", EntryType::Regular, "", b"x"),
            "`..`",
        ),
        (
            "absolute",
            with("/tmp/evil", EntryType::Regular, "", b"x"),
            "absolute",
        ),
        (
            "symlink",
            with("quals/passwd", EntryType::Symlink, "/etc/passwd", b""),
            "symbolic link",
        ),
        (
            "hard link",
            with("quals/passwd", EntryType::Link, "/etc/passwd", b""),
            "hard link",
        ),
        (
            "device",
            with("quals/null", EntryType::Char, "", b""),
            "device",
        ),
        ("fifo", with("quals/pipe", EntryType::Fifo, "", b""), "FIFO"),
        (
            "oversize member",
            with("quals/big.bin", EntryType::Regular, "", &vec![0u8; 200_000]),
            "more than 100000 bytes",
        ),
        (
            "duplicate",
            with("quals/Snakefile", EntryType::Regular, "", b"rule evil:"),
            "twice",
        ),
        (
            "no manifest",
            {
                let mut builder = tar::Builder::new(Vec::new());
                raw_member(&mut builder, "x/Snakefile", EntryType::Regular, "", b"x");
                raw_member(&mut builder, "y/Snakefile", EntryType::Regular, "", b"x");
                gzip(builder.into_inner().unwrap())
            },
            "no workflow.yaml",
        ),
        (
            "too many members",
            {
                let mut builder = tar::Builder::new(Vec::new());
                for i in 0..1001 {
                    raw_member(
                        &mut builder,
                        &format!("quals/f{i}"),
                        EntryType::Regular,
                        "",
                        b"",
                    );
                }
                gzip(builder.into_inner().unwrap())
            },
            "more than 1000 members",
        ),
        ("not gzip", b"plain text".to_vec(), "gzip"),
        (
            "gzip but not tar",
            gzip(vec![b'x'; 2000]),
            "not a gzip-compressed tar archive",
        ),
    ];
    for (case, body, expected) in cases {
        let res = upload(&app, "application/gzip", body).await;
        let msg = error_msg(res, 400).await;
        assert!(msg.contains(expected), "{case}: {msg}");
        let left: Vec<_> = std::fs::read_dir(&upload_dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        assert!(left.is_empty(), "{case}: {left:?}");
    }
    // A manifest the deployment refuses: unpacked, then removed again.
    let dir = tempfile::tempdir().unwrap();
    let copy = copy_example("quals", &dir);
    let manifest = std::fs::read_to_string(copy.join("workflow.yaml")).unwrap();
    std::fs::write(
        copy.join("workflow.yaml"),
        manifest.replace("entry_point: Snakefile", "entry_point: nothing"),
    )
    .unwrap();
    let res = upload(&app, "application/gzip", tar_gz_of(&copy, "quals")).await;
    assert!(error_msg(res, 400).await.contains("entry_point"));
    assert_eq!(std::fs::read_dir(&upload_dir).unwrap().count(), 0);
    let (_, all) = app.get_json("/admin/workflows").await;
    assert_eq!(all["workflows"], json!([]));

    // A body over server.max_body_bytes is a 413, unpacked or not.
    let small = spawn_app_with(&[("SPE__SERVER__MAX_BODY_BYTES", "2048")]).await;
    let res = upload(&small, "application/gzip", vec![0u8; 4096]).await;
    error_msg(res, 413).await;
}

#[tokio::test]
async fn with_auth_disabled_dataset_visas_are_not_checked() {
    // `auth: disabled` (test suites only): one local user, no passport, no visa check.
    let app = spawn_app_with(&[]).await;
    app.register_and_approve(&repo_root().join("workflows/quals"))
        .await;
    let res = app
        .post_json(
            "/admin/datasets",
            json!({"id": "ega-1", "description": "controlled", "location": "/data/ega-1",
                   "crypt4gh": false, "visa": "https://ega.example.org/datasets/EGAD1"}),
        )
        .await;
    assert_eq!(res.status().as_u16(), 201);
    let res = submit_quals(&app, "quals@1.0.0", json!({"dataset": "ega-1"})).await;
    assert_eq!(res.status().as_u16(), 200, "{}", res.text().await.unwrap());
}

/// String parameters are data: without an explicit `pattern` a string may not be an option, a
/// URL or a path; a pattern in the manifest allows what it says.
#[tokio::test]
async fn string_parameters_are_data_unless_the_manifest_pattern_allows_more() {
    let app = spawn_app().await;
    let dir = tempfile::tempdir().unwrap();
    let hello = copy_example("hello-nf", &dir);
    let manifest = hello.join("workflow.yaml");
    let text = std::fs::read_to_string(&manifest).unwrap();
    let anchor = "    names:\n";
    assert!(text.contains(anchor));
    // A new version: the example itself is registered already.
    let text = text
        .replace("\nversion: 1.0.0\n", "\nversion: 1.0.1-strings\n")
        .replace(
            anchor,
            "    label: { type: string, maxLength: 80 }\n    \
         region: { type: string, pattern: \"^[a-z0-9]+:[0-9]+-[0-9]+/[a-z]+$\" }\n    names:\n",
        );
    std::fs::write(&manifest, text).unwrap();
    let url = app.register_and_approve(&hello).await;
    let submit = |params: Value| {
        app.post_json(
            "/runs",
            json!({
                "workflow_type": "NFL",
                "workflow_type_version": "DSL2",
                "workflow_url": url,
                "workflow_params": params,
            }),
        )
    };
    for (label, says) in [
        ("file:///other/dataset/x", "URL scheme"),
        ("-x", "`-`"),
        ("x --ref=/data/other", "`-`"),
        ("s3:bucket", "URL scheme"),
        ("other/dataset", "path separator"),
    ] {
        let msg = error_msg(submit(json!({"label": label})).await, 400).await;
        assert!(
            msg.starts_with("workflow_params.label:") && msg.contains(says),
            "{label}: {msg}"
        );
    }
    // The same characters in a field whose pattern allows them pass.
    let res = submit(json!({"region": "chr1:100-200/x", "label": "sample 1"})).await;
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
    // And what the pattern does not allow is refused, naming the field.
    let msg = error_msg(submit(json!({"region": "-chr1:1-2/x"})).await, 400).await;
    assert!(msg.starts_with("workflow_params.region:"), "{msg}");
}

/// A dataset retired while a run waits in the queue stops the run before Slurm sees it. Slurm is
/// off in these tests, so the submitter's pass is driven directly (with no scheduler it still
/// asks, finds nothing, and refuses the run before sbatch).
#[tokio::test]
async fn a_queued_run_whose_dataset_was_retired_ends_system_error_naming_it() {
    let db = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/spe.db", db.path().display());
    let app = spawn_app_with(&[("SPE__DATABASE__URL", &url)]).await;
    app.register_examples().await;
    let res = submit_quals(&app, "quals@1.0.0", json!({"dataset": "demo-1"})).await;
    assert_eq!(res.status(), 200);
    let id: spe_core::RunId = res.json::<Value>().await.unwrap()["run_id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let res = app
        .post_json(
            "/admin/datasets/demo-1/retire",
            json!({"reason": "consent withdrawn"}),
        )
        .await;
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());

    let config = common::test_config(&db, &[("SPE__DATABASE__URL", &url)]);
    let store = spe_store::Store::connect(&spe_core::secret::DatabaseUrl::new(url.clone()), 1)
        .await
        .unwrap();
    let slurm = std::sync::Arc::new(wes_api::slurm::SlurmClient::new(&config.slurm));
    let submitter = wes_api::slurm::submitter::Submitter::new(
        store.clone(),
        std::sync::Arc::new(config),
        slurm,
    );
    submitter.pass().await.unwrap();
    let run = store.get_run(id).await.unwrap().unwrap();
    assert_eq!(run.state, spe_core::RunState::SystemError);
    assert_eq!(run.slurm_job_id, None);
    assert_eq!(
        run.reason.as_deref(),
        Some(
            "workflow_params.dataset: dataset demo-1 was retired after the run was accepted \
             and may no longer be used"
        )
    );
}
