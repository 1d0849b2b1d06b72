//! Spawns the real application in this process on 127.0.0.1 port 0 and speaks HTTP to it.
//! (wes-api's own: spe-test-support cannot depend on wes-api.)
#![allow(dead_code)]

use std::path::PathBuf;

use spe_core::config::Config;
use spe_test_support::dev_config::{dev_yaml, test_env, with_overrides};
pub use spe_test_support::repo_root;
use wes_api::startup::Application;

pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
    pub data_dir: PathBuf,
    _dir: tempfile::TempDir,
}

/// The development config with a fresh SQLite file and data dir, listening on port 0.
pub fn test_config(dir: &tempfile::TempDir, extra_env: &[(&str, &str)]) -> Config {
    // API-only: execution has its own end-to-end suites against real Slurm.
    let mut env = test_env(dir.path());
    // The dev config authenticates against the test OIDC provider; these suites test the API
    // itself as one local user (tests/auth.rs tests authentication). Every shipped config
    // authenticates: `auth: disabled` exists only as this override.
    env.push(("SPE__AUTH".to_owned(), "disabled".to_owned()));
    // With `auth: disabled` every caller is one user, who could never approve their own
    // registrations under the four-eyes rule; tests that check the rule set it back.
    env.push((
        "SPE__WORKFLOWS__REQUIRE_DISTINCT_APPROVER".to_owned(),
        "false".to_owned(),
    ));
    // A key the test sets replaces the defaults above.
    Config::parse(&dev_yaml(), with_overrides(env, extra_env)).unwrap()
}

/// An application whose registry holds the approved example workflows `quals` and
/// `hello-nf` (from the repository's workflows/) and the dataset `demo-1`.
pub async fn spawn_app() -> TestApp {
    let app = spawn_app_with(&[]).await;
    app.register_examples().await;
    app
}

pub async fn spawn_app_with(extra_env: &[(&str, &str)]) -> TestApp {
    let dir = tempfile::tempdir().unwrap();
    let config = test_config(&dir, extra_env);
    let data_dir = config.data_dir.clone();
    let app = Application::build(config).await.unwrap();
    let base = format!("http://127.0.0.1:{}", app.port());
    tokio::spawn(app.run_until_stopped());
    TestApp {
        base,
        client: reqwest::Client::new(),
        data_dir,
        _dir: dir,
    }
}

impl TestApp {
    pub fn wes(&self, path: &str) -> String {
        format!("{}/ga4gh/wes/v1{path}", self.base)
    }

    pub async fn post_json(&self, path: &str, body: serde_json::Value) -> reqwest::Response {
        self.client
            .post(self.wes(path))
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    /// Registers the workflow in `dir` and approves it; returns its `name@version`.
    pub async fn register_and_approve(&self, dir: &std::path::Path) -> String {
        let dir = dir.canonicalize().unwrap();
        let res = self
            .post_json(
                "/admin/workflows",
                serde_json::json!({"source_dir": dir.display().to_string()}),
            )
            .await;
        assert_eq!(res.status().as_u16(), 201, "{}", res.text().await.unwrap());
        let v: serde_json::Value = res.json().await.unwrap();
        let (name, version) = (v["name"].as_str().unwrap(), v["version"].as_str().unwrap());
        let res = self
            .post_json(
                &format!("/admin/workflows/{name}/{version}/approve"),
                serde_json::json!({}),
            )
            .await;
        assert_eq!(res.status().as_u16(), 200, "{}", res.text().await.unwrap());
        format!("{name}@{version}")
    }

    pub async fn register_dataset(&self, id: &str) {
        let res = self
            .post_json(
                "/admin/datasets",
                serde_json::json!({
                    "id": id,
                    "description": "synthetic test data",
                    "location": format!("/data/{id}"),
                    "crypt4gh": false
                }),
            )
            .await;
        assert_eq!(res.status().as_u16(), 201, "{}", res.text().await.unwrap());
    }

    pub async fn register_examples(&self) {
        for name in ["quals", "hello-nf"] {
            self.register_and_approve(&repo_root().join("workflows").join(name))
                .await;
        }
        self.register_dataset("demo-1").await;
    }

    pub async fn get_json(&self, path: &str) -> (u16, serde_json::Value) {
        let res = self.client.get(self.wes(path)).send().await.unwrap();
        let status = res.status().as_u16();
        (status, res.json().await.unwrap())
    }

    /// Submits a valid Snakemake run as multipart/form-data, as WES clients do.
    pub async fn submit_form(&self, fields: &[(&str, &str)]) -> reqwest::Response {
        let mut form = reqwest::multipart::Form::new();
        for (name, value) in fields {
            form = form.text(name.to_string(), value.to_string());
        }
        self.client
            .post(self.wes("/runs"))
            .multipart(form)
            .send()
            .await
            .unwrap()
    }

    pub async fn submit_ok(&self, tags: &str) -> String {
        let res = self
            .submit_form(&[
                ("workflow_type", "SMK"),
                ("workflow_type_version", "9"),
                ("workflow_url", "quals@1.0.0"),
                ("workflow_params", r#"{"dataset": "demo-1"}"#),
                ("tags", tags),
            ])
            .await;
        assert_eq!(res.status().as_u16(), 200);
        let body: serde_json::Value = res.json().await.unwrap();
        body["run_id"].as_str().unwrap().to_owned()
    }
}

/// Asserts the WES ErrorResponse shape and returns its message.
pub async fn error_msg(res: reqwest::Response, status: u16) -> String {
    assert_eq!(res.status().as_u16(), status);
    let content_type = res
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    assert!(
        content_type.starts_with("application/json"),
        "{content_type}"
    );
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["status_code"], status, "{body}");
    body["msg"].as_str().unwrap().to_owned()
}
