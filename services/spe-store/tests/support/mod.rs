//! Runs one store test against each backend: SQLite always, PostgreSQL when
//! `SPE_TEST_POSTGRES_URL` names a server (tests/peers/postgres.sh start). Under CI a missing
//! PostgreSQL is a failure, so the suite can never silently run on one backend only.
#![allow(dead_code)]

use std::future::Future;

use spe_core::secret::DatabaseUrl;
use spe_store::{Backend, Store};
use sqlx::Connection;

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
