//! Identities became (issuer, sub) pairs in migration 0010: rows written before it, which name
//! people by `sub` alone, are carried to the deployment's primary issuer, on SQLite and
//! PostgreSQL; without a primary issuer the migration refuses to guess.

use spe_core::secret::DatabaseUrl;
use spe_core::{Actor, Group, RunId, ServiceActor, Subject};
use spe_store::{SharePrincipal, Store};

/// The last migration before identities were pairs.
const BEFORE_SUBJECTS: i64 = 6;
const PRIMARY: &str = "https://login.aai.lifescience-ri.eu/oidc/";

/// A fresh database URL per backend: SQLite always, PostgreSQL when its peer is there.
async fn fresh_urls(dir: &tempfile::TempDir) -> Vec<DatabaseUrl> {
    let sqlite = DatabaseUrl::new(format!("sqlite://{}/legacy.db", dir.path().display()));
    let postgres = spe_test_support::store::fresh_postgres_url().await;
    std::iter::once(sqlite).chain(postgres).collect()
}

/// Rows as a release before migration 0010 wrote them: people by bare `sub`.
async fn legacy_rows(store: &Store, run: RunId) {
    let request =
        serde_json::to_string(&spe_test_support::store::submission("quals@1.0.0", &[])).unwrap();
    assert!(!request.contains('\''));
    for sql in [
        format!(
            "INSERT INTO runs (id, state, owner, workflow_type, workflow_type_version, \
             workflow_url, request_json, run_dir, created_at, updated_at) VALUES \
             ('{run}', 'COMPLETE', 'alice@ls', 'SMK', '9', 'quals@1.0.0', '{request}', '/d', 1, 2)"
        ),
        format!(
            "INSERT INTO run_events (run_id, at, from_state, to_state, actor, reason) VALUES \
             ('{run}', 1, NULL, 'QUEUED', 'alice@ls', 'accepted'), \
             ('{run}', 2, 'QUEUED', 'COMPLETE', 'reconciler', NULL)"
        ),
        "INSERT INTO workflow_versions (name, version, workflow_type, state, source_dir, \
         entry_point, files_json, registered_digest, digest, manifest_json, description, \
         registered_by, registered_at, approved_by, approved_at) VALUES \
         ('quals', '1.0.0', 'SMK', 'approved', '/w', 'Snakefile', '[]', '{digest}', '{digest}', \
          '{{}}', '', 'carol@ls', 1, 'dave@ls', 2)"
            .replace("{digest}", &"a".repeat(64))
            .replace("{{}}", "{}"),
        "INSERT INTO datasets (id, description, location, crypt4gh, visa, state, created_by, \
         created_at, updated_at) VALUES ('d1', '', '/data/d1', 0, NULL, 'active', 'carol@ls', 1, 1)"
            .to_owned(),
        "INSERT INTO registry_events (at, actor, subject_kind, subject, action, detail) VALUES \
         (1, 'carol@ls', 'workflow', 'quals@1.0.0', 'registered', NULL)"
            .to_owned(),
        format!(
            "INSERT INTO run_shares (run_id, kind, principal, created_by, created_at) VALUES \
             ('{run}', 'subject', 'bob@ls', 'alice@ls', 3), \
             ('{run}', 'group', 'urn:geant:lifescience-ri.eu:group:x#a', 'alice@ls', 3)"
        ),
        format!(
            "INSERT INTO result_links (id, run_id, path, object_key, issued_to, issued_at, \
             expires_at) VALUES ('l1', '{run}', 'a.csv', '{run}/a.csv', 'bob@ls', 4, 5)"
        ),
    ] {
        store.debug_execute(&sql).await.unwrap();
    }
}

#[tokio::test]
async fn rows_from_before_are_carried_to_the_primary_issuer_on_each_backend() {
    let dir = tempfile::tempdir().unwrap();
    let person = |sub: &str| Subject::new(PRIMARY, sub).unwrap();
    for url in fresh_urls(&dir).await {
        let old = Store::debug_connect_migrated_until(&url, BEFORE_SUBJECTS)
            .await
            .unwrap();
        let run = RunId::new_random();
        legacy_rows(&old, run).await;
        old.close().await;

        // Not knowing the primary issuer, the migration stops and says why.
        let err = Store::connect(&url, 2).await.unwrap_err().to_string();
        assert!(
            err.contains("existing rows name people by sub alone"),
            "{err}"
        );

        let store = Store::connect_for(&url, 2, std::time::Duration::from_secs(10), Some(PRIMARY))
            .await
            .unwrap();
        let r = store.get_run(run).await.unwrap().unwrap();
        assert_eq!(r.owner, person("alice@ls"));
        let events = store.run_events(run).await.unwrap();
        assert_eq!(events[0].actor, Actor::Person(person("alice@ls")));
        assert_eq!(events[1].actor, Actor::Service(ServiceActor::Reconciler));
        let w = store
            .workflow_version("quals", "1.0.0")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(w.registered_by, person("carol@ls"));
        assert_eq!(w.approved_by, Some(person("dave@ls")));
        assert_eq!(w.retired_by, None);
        let d = store.dataset("d1").await.unwrap().unwrap();
        assert_eq!(d.created_by, person("carol@ls"));
        let e = store.registry_events(None, 10).await.unwrap();
        assert_eq!(e[0].actor, person("carol@ls"));
        let shares = store.shares(run).await.unwrap();
        let principals: Vec<SharePrincipal> = shares.into_iter().map(|s| s.principal).collect();
        assert!(principals.contains(&SharePrincipal::User(person("bob@ls"))));
        assert!(principals.contains(&SharePrincipal::Group(
            Group::new(PRIMARY, "urn:geant:lifescience-ri.eu:group:x#a").unwrap()
        )));
        assert_eq!(
            store.result_links(run).await.unwrap()[0].issued_to,
            person("bob@ls")
        );
        // The history is append-only again after the migration.
        assert!(
            store
                .debug_execute("UPDATE run_events SET actor = 'x'")
                .await
                .is_err()
        );
        assert!(
            store
                .debug_execute("UPDATE registry_events SET actor = 'x'")
                .await
                .is_err()
        );
        assert!(
            store
                .debug_execute("UPDATE result_links SET issued_to = 'x'")
                .await
                .is_err()
        );
        store.close().await;
    }
}

#[tokio::test]
async fn an_empty_database_migrates_without_a_primary_issuer() {
    let dir = tempfile::tempdir().unwrap();
    for url in fresh_urls(&dir).await {
        let store = Store::connect(&url, 2).await.unwrap();
        assert!(store.registry_events(None, 1).await.unwrap().is_empty());
        store.close().await;
    }
}
