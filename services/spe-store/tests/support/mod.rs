//! Runs one store test against each backend: SQLite always, PostgreSQL when
//! `SPE_TEST_POSTGRES_URL` names a server (tests/peers/postgres.sh start). Under CI a missing
//! PostgreSQL is a failure, so the suite can never silently run on one backend only.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::future::Future;

use serde_json::json;
use spe_core::request::{RunSubmission, Tags, WorkflowType};
use spe_core::secret::DatabaseUrl;
use spe_store::{Backend, Store};
use sqlx::Connection;

/// An accepted Snakemake request for `workflow_url` with these tags.
pub fn submission(workflow_url: &str, tags: &[(&str, &str)]) -> RunSubmission {
    let tags: serde_json::Map<String, serde_json::Value> = tags
        .iter()
        .map(|(k, v)| (k.to_string(), json!(v)))
        .collect();
    RunSubmission {
        workflow_type: WorkflowType::Snakemake,
        workflow_type_version: "9".into(),
        workflow_url: workflow_url.into(),
        workflow_params: json!({"x": [1, 2]})
            .as_object()
            .cloned()
            .unwrap_or_default(),
        workflow_engine: "snakemake".into(),
        workflow_engine_version: None,
        workflow_engine_parameters: BTreeMap::from([("cores".to_owned(), "2".to_owned())]),
        tags: Tags::parse(Some(serde_json::Value::Object(tags))).unwrap(),
    }
}

pub async fn sqlite_store(dir: &tempfile::TempDir) -> Store {
    let url = format!("sqlite://{}/nested/spe.db", dir.path().display());
    Store::connect(&DatabaseUrl::new(url), 4).await.unwrap()
}

/// A fresh, empty PostgreSQL database for one test, or `None` when no server is configured.
pub async fn postgres_store() -> Option<Store> {
    let Ok(admin_url) = std::env::var("SPE_TEST_POSTGRES_URL") else {
        assert!(
            std::env::var("CI").is_err(),
            "CI must run the store suites against PostgreSQL: set SPE_TEST_POSTGRES_URL"
        );
        eprintln!("SPE_TEST_POSTGRES_URL not set: PostgreSQL half of the store suites skipped");
        return None;
    };
    let name = format!("spe_t_{}", uuid::Uuid::new_v4().simple());
    let mut admin = sqlx::PgConnection::connect(&admin_url).await.unwrap();
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut admin)
        .await
        .unwrap();
    let (base, _) = admin_url.rsplit_once('/').unwrap();
    let store = Store::connect(&DatabaseUrl::new(format!("{base}/{name}")), 4)
        .await
        .unwrap();
    assert_eq!(store.backend(), Backend::Postgres);
    Some(store)
}

pub async fn on_each_backend<F, Fut>(test: F)
where
    F: Fn(Store) -> Fut,
    Fut: Future<Output = ()>,
{
    let dir = tempfile::tempdir().unwrap();
    test(sqlite_store(&dir).await).await;
    if let Some(store) = postgres_store().await {
        test(store).await;
    }
}
