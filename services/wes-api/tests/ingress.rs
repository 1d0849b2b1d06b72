//! Ingress into a Crypt4GH dataset through the real server and the test OIDC provider: a data
//! controller's upload grant, uploads by its token (streamed, header checked with the
//! service's key before anything is kept), refusals that keep nothing, each file once, expiry,
//! and every step in the audit chain.

use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use spe_core::time::Timestamp;
use spe_test_support::dev_config::{dev_yaml, test_env};
use spe_test_support::oidc as support;
use wes_api::startup::Application;

struct App {
    base: String,
    http: reqwest::Client,
    store: spe_store::Store,
    _dir: tempfile::TempDir,
}

fn secret_file(path: &Path, text: &str) {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .unwrap();
    std::io::Write::write_all(&mut f, text.as_bytes()).unwrap();
}

/// wes-api on the dev config, authenticating against the test provider, with a service key.
async fn spawn(peer: &support::Peer, service: &spe_crypt4gh::SecretKey) -> App {
    let dir = tempfile::tempdir().unwrap();
    let yaml = dev_yaml();
    let start = yaml.find("\nauth:\n").unwrap() + 1;
    let end = start + yaml[start..].find("\nlogging:").unwrap() + 1;
    let oidc: String = peer
        .oidc_yaml()
        .lines()
        .map(|l| format!("    {l}\n"))
        .collect();
    let yaml = format!("{}auth:\n  oidc:\n{oidc}\n{}", &yaml[..start], &yaml[end..]);
    let keys = dir.path().join("keys");
    std::fs::create_dir(&keys).unwrap();
    secret_file(
        &keys.join("service.sec"),
        &service.to_pem(b"pass phrase", None).unwrap(),
    );
    secret_file(&keys.join("pass"), "pass phrase\n");
    let mut env = test_env(dir.path());
    env.push((
        "SPE__CRYPT4GH__SECRET_KEYS".into(),
        format!("[{}]", keys.join("service.sec").display()),
    ));
    env.push((
        "SPE__CRYPT4GH__PASSPHRASE_FILE".into(),
        keys.join("pass").display().to_string(),
    ));
    let config = spe_core::config::Config::parse(&yaml, env).unwrap();
    let app = Application::build(config).await.unwrap();
    let base = format!("http://127.0.0.1:{}/ga4gh/wes/v1", app.port());
    let store = app.store().clone();
    tokio::spawn(app.run_until_stopped());
    App {
        base,
        http: reqwest::Client::new(),
        store,
        _dir: dir,
    }
}

impl App {
    async fn json(&self, req: reqwest::RequestBuilder) -> (u16, Value) {
        let res = req.send().await.unwrap();
        let status = res.status().as_u16();
        (status, res.json().await.unwrap_or(Value::Null))
    }

    async fn upload(&self, grant: &str, token: &str, name: &str, body: Vec<u8>) -> (u16, Value) {
        self.json(
            self.http
                .post(format!("{}/uploads/{grant}?name={name}", self.base))
                .header("x-spe-upload-token", token)
                .header("content-type", "application/octet-stream")
                .body(body),
        )
        .await
    }
}

fn seal(plain: &[u8], to: &[spe_crypt4gh::PublicKey]) -> Vec<u8> {
    let mut out = Vec::new();
    spe_crypt4gh::encrypt(plain, &mut out, to, None).unwrap();
    out
}

#[tokio::test]
async fn uploads_into_a_crypt4gh_dataset_are_granted_checked_and_audited() {
    let Some(peer) = support::peer().await else {
        return;
    };
    let service = spe_crypt4gh::SecretKey::generate().unwrap();
    let app = spawn(&peer, &service).await;
    let controller = peer.token("controller").await;
    let researcher = peer.token("researcher").await;
    let operator = peer.token("operator").await;
    let data = tempfile::tempdir().unwrap();
    let location = data.path().join("cohort");
    for (id, c4gh) in [("cohort", true), ("open", false)] {
        let (status, body) = app
            .json(app.http.post(format!("{}/admin/datasets", app.base)).bearer_auth(&controller).json(
                &json!({"id": id, "description": "d", "location": data.path().join(id), "crypt4gh": c4gh}),
            ))
            .await;
        assert_eq!(status, 201, "{body}");
    }
    let grants = format!("{}/admin/datasets/cohort/uploads", app.base);

    // Only data controllers grant; only into Crypt4GH datasets; names are checked.
    let (status, _) = app
        .json(
            app.http
                .post(&grants)
                .bearer_auth(&researcher)
                .json(&json!({"files": ["a.c4gh"]})),
        )
        .await;
    assert_eq!(status, 403);
    let (status, body) = app
        .json(
            app.http
                .post(format!("{}/admin/datasets/open/uploads", app.base))
                .bearer_auth(&controller)
                .json(&json!({"files": ["a.c4gh"]})),
        )
        .await;
    assert_eq!(status, 409);
    assert_eq!(
        body["msg"],
        "dataset open is not a Crypt4GH dataset (crypt4gh: false): uploads are for encrypted datasets only"
    );
    for (files, want) in [
        (
            json!(["../x.c4gh"]),
            "files[0]: must not contain empty, `.` or `..` components",
        ),
        (json!(["a.c4gh", "a.c4gh"]), "files[1]: a.c4gh named twice"),
        (
            json!([".hidden.c4gh"]),
            "files[0]: no name part may start with a dot",
        ),
        (json!([]), "files: name 1 to 1000 files to upload"),
    ] {
        let (status, body) = app
            .json(
                app.http
                    .post(&grants)
                    .bearer_auth(&controller)
                    .json(&json!({"files": files})),
            )
            .await;
        assert_eq!((status, body["msg"].as_str().unwrap()), (400, want));
    }

    let (status, grant) = app
        .json(app.http.post(&grants).bearer_auth(&controller).json(
            &json!({"files": ["calls.vcf.c4gh", "plain.txt", "stranger.c4gh"], "expires_in_seconds": 600}),
        ))
        .await;
    assert_eq!(status, 201, "{grant}");
    let id = grant["grant_id"].as_str().unwrap().to_owned();
    let token = grant["token"].as_str().unwrap().to_owned();
    assert_eq!(token.len(), 64);

    // A file for two recipients (the project and the service), several segments long.
    let project = spe_crypt4gh::SecretKey::generate().unwrap();
    let plain: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    let sealed = seal(&plain, &[project.public_key(), service.public_key()]);
    let (status, body) = app
        .upload(&id, &token, "calls.vcf.c4gh", sealed.clone())
        .await;
    assert_eq!(status, 201, "{body}");
    let sha = hex::encode(Sha256::digest(&sealed));
    assert_eq!(body["sha256"], sha);
    assert_eq!(body["size"], sealed.len());
    assert!(std::fs::read(location.join("calls.vcf.c4gh")).unwrap() == sealed);

    // Each file once.
    let (status, body) = app
        .upload(&id, &token, "calls.vcf.c4gh", sealed.clone())
        .await;
    assert_eq!(
        (status, body["msg"].as_str().unwrap()),
        (409, "calls.vcf.c4gh was uploaded and accepted already")
    );
    // Plaintext, or a file the service's key does not open: refused, nothing kept.
    let (status, body) = app
        .upload(&id, &token, "plain.txt", b"patient,genotype\n".to_vec())
        .await;
    assert_eq!(status, 422);
    assert_eq!(
        body["msg"],
        "plain.txt: not a Crypt4GH file: uploads must be encrypted to the service's public key \
         (GET /ga4gh/wes/v1/keys/service.pub); nothing was kept"
    );
    let (status, body) = app
        .upload(
            &id,
            &token,
            "stranger.c4gh",
            seal(b"x", &[project.public_key()]),
        )
        .await;
    assert_eq!(status, 422);
    assert!(
        body["msg"]
            .as_str()
            .unwrap()
            .starts_with("stranger.c4gh: its Crypt4GH header does not open with the service's key"),
        "{body}"
    );
    let mut left: Vec<String> = std::fs::read_dir(&location)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    assert_eq!(
        left,
        ["calls.vcf.c4gh"],
        "refused uploads and parts leave nothing"
    );
    let (status, body) = app
        .upload(&id, &token, "plain.txt", b"again".to_vec())
        .await;
    assert_eq!(status, 409, "{body}");

    // A wrong token is an unknown grant; no token, no name, a name not granted: said so.
    let (status, body) = app
        .upload(&id, &"0".repeat(64), "calls.vcf.c4gh", vec![1])
        .await;
    assert_eq!(
        (status, body["msg"].as_str().unwrap()),
        (404, "no upload grant has this id and token")
    );
    let (status, body) = app
        .json(
            app.http
                .post(format!("{}/uploads/{id}?name=plain.txt", app.base))
                .body("x"),
        )
        .await;
    assert_eq!(
        (status, body["msg"].as_str().unwrap()),
        (
            400,
            "an upload needs its grant's token in the X-SPE-Upload-Token header"
        )
    );
    let (status, body) = app.upload(&id, &token, "other.c4gh", vec![1]).await;
    assert_eq!(status, 404);
    assert_eq!(
        body["msg"],
        "the grant names no file \"other.c4gh\"; it names: calls.vcf.c4gh, plain.txt, stranger.c4gh"
    );

    // An expired grant answers 410.
    let expired_token = "e".repeat(64);
    app.store
        .create_upload_grant(&spe_store::NewUploadGrant {
            id: "expired-grant".into(),
            dataset_id: "cohort".into(),
            token_sha256: hex::encode(Sha256::digest(expired_token.as_bytes())),
            granted_to: spe_core::Subject::new(peer.issuer.clone(), peer.sub("controller").await)
                .unwrap(),
            files: vec!["late.c4gh".into()],
            created_at: Timestamp::from_micros(1_000_000),
            expires_at: Timestamp::from_micros(2_000_000),
        })
        .await
        .unwrap();
    let (status, body) = app
        .upload("expired-grant", &expired_token, "late.c4gh", sealed.clone())
        .await;
    assert_eq!(status, 410, "{body}");
    assert!(
        body["msg"]
            .as_str()
            .unwrap()
            .starts_with("the upload grant expired at 1970-01-01T00:00:02")
    );

    // The dataset's files with their checksums; a grant for an existing name is refused.
    let (status, files) = app
        .json(
            app.http
                .get(format!("{}/admin/datasets/cohort/files", app.base))
                .bearer_auth(&controller),
        )
        .await;
    assert_eq!(status, 200, "{files}");
    assert_eq!(files["files"].as_array().unwrap().len(), 1);
    assert_eq!(files["files"][0]["name"], "calls.vcf.c4gh");
    assert_eq!(files["files"][0]["sha256"], sha);
    let (status, body) = app
        .json(
            app.http
                .post(&grants)
                .bearer_auth(&controller)
                .json(&json!({"files": ["calls.vcf.c4gh"]})),
        )
        .await;
    assert_eq!(status, 409);
    assert_eq!(
        body["msg"],
        "files[0]: dataset cohort has calls.vcf.c4gh already; uploads never replace a file"
    );

    // Every step is in the audit chain; the token never is.
    let (status, audit) = app
        .json(
            app.http
                .get(format!("{}/admin/audit?limit=1000", app.base))
                .bearer_auth(&operator),
        )
        .await;
    assert_eq!(status, 200);
    let records = audit["records"].as_array().unwrap();
    let kinds = |k: &str| records.iter().filter(|r| r["kind"] == k).count();
    assert_eq!(kinds("upload.granted"), 2);
    assert_eq!(kinds("upload.accepted"), 1);
    assert_eq!(kinds("upload.refused"), 2);
    let accepted = records
        .iter()
        .find(|r| r["kind"] == "upload.accepted")
        .unwrap();
    assert_eq!(accepted["details"]["sha256"], sha);
    assert_eq!(accepted["details"]["name"], "calls.vcf.c4gh");
    assert!(!audit.to_string().contains(&token));
}
