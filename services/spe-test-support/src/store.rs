//! Runs one store test against each backend: SQLite always, PostgreSQL when the server is found
//! ([`crate::peers::postgres_url`]); without it the PostgreSQL half is reported skipped, and
//! under CI it fails, so a suite can never silently run on one backend only.

use std::collections::BTreeMap;
use std::future::Future;

use serde_json::json;
use spe_core::request::{RunSubmission, Tags, WorkflowType};
use spe_core::secret::DatabaseUrl;
use spe_core::time::Timestamp;
use spe_core::{RunId, Subject};
use spe_store::{Backend, NewRun, Store};
use sqlx::Connection;

/// The issuer of the people store tests invent.
pub const TEST_ISSUER: &str = "https://login.example.org/oidc";

/// A person of [`TEST_ISSUER`].
pub fn person(sub: &str) -> Subject {
    Subject::new(TEST_ISSUER, sub).expect("a valid test subject")
}

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
        tags: Tags::parse(Some(serde_json::Value::Object(tags))).expect("valid test tags"),
    }
}

/// Stores a QUEUED run of `owner` (a person of [`TEST_ISSUER`]) created at `created_micros`.
pub async fn queued_run(store: &Store, owner: &str, created_micros: i64) -> RunId {
    let id = RunId::new_random();
    store
        .insert_run(&NewRun {
            id,
            owner: person(owner),
            submission: submission("quals@1.0.0", &[]),
            run_dir: format!("/data/{id}"),
            created_at: Timestamp::from_micros(created_micros),
        })
        .await
        .expect("a run stored");
    id
}

/// A store on a fresh SQLite file, `<dir>/nested/spe.db` (its folder is created on connect).
pub async fn sqlite_store(dir: &tempfile::TempDir) -> Store {
    let url = format!("sqlite://{}/nested/spe.db", dir.path().display());
    Store::connect(&DatabaseUrl::new(url), 4)
        .await
        .expect("a store on a fresh SQLite file")
}

/// A store on a fresh, empty PostgreSQL database of its own (four connections), or `None` when
/// the test was reported skipped.
pub async fn postgres_store() -> Option<Store> {
    postgres_store_with_pool(4).await
}

/// [`postgres_store`] with a pool of `max_connections`.
pub async fn postgres_store_with_pool(max_connections: u32) -> Option<Store> {
    let url = fresh_postgres_url().await?;
    let store = Store::connect(&url, max_connections)
        .await
        .expect("a store on a fresh PostgreSQL database");
    assert_eq!(store.backend(), Backend::Postgres);
    Some(store)
}

/// The URL of a fresh, empty PostgreSQL database of its own, not yet migrated, or `None` when
/// the test was reported skipped.
pub async fn fresh_postgres_url() -> Option<DatabaseUrl> {
    let admin_url = crate::peers::postgres_url()?;
    let name = format!("spe_t_{}", uuid::Uuid::new_v4().simple());
    let mut admin = sqlx::PgConnection::connect(&admin_url)
        .await
        .expect("connect to SPE_TEST_POSTGRES_URL");
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut admin)
        .await
        .expect("CREATE DATABASE");
    let (base, _) = admin_url
        .rsplit_once('/')
        .expect("SPE_TEST_POSTGRES_URL ends with /<database>");
    Some(DatabaseUrl::new(format!("{base}/{name}")))
}

/// Runs `test` on a fresh SQLite store, then on a fresh PostgreSQL one.
pub async fn on_each_backend<F, Fut>(test: F)
where
    F: Fn(Store) -> Fut,
    Fut: Future<Output = ()>,
{
    let dir = tempfile::tempdir().expect("a temporary folder");
    test(sqlite_store(&dir).await).await;
    if let Some(store) = postgres_store().await {
        test(store).await;
    }
}
