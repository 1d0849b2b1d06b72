//! The registry's contract, run against SQLite (always) and PostgreSQL (when
//! `SPE_TEST_POSTGRES_URL` names a server).

use spe_test_support::store::*;

use serde_json::json;
use spe_core::digest::WorkflowDigest;
use spe_core::request::WorkflowType;
use spe_core::time::Timestamp;
use spe_store::{DatasetState, NewDataset, NewWorkflowVersion, RegistryRefusal, WorkflowState};

use spe_test_support::store::person as p;

fn t(micros: i64) -> Timestamp {
    Timestamp::from_micros(micros)
}

/// A digest of 64 times the hex digit `c`.
fn digest(c: char) -> WorkflowDigest {
    WorkflowDigest::parse(&c.to_string().repeat(64)).unwrap()
}

fn new_version(name: &str, version: &str, by: &str) -> NewWorkflowVersion {
    NewWorkflowVersion {
        name: name.into(),
        version: version.into(),
        workflow_type: WorkflowType::Snakemake,
        source_dir: format!("/srv/workflows/{name}"),
        entry_point: "Snakefile".into(),
        files: vec!["Snakefile".into(), "workflow.yaml".into()],
        registered_digest: digest('a'),
        manifest: json!({"name": name, "version": version}),
        description: "test workflow".into(),
        registered_by: p(by),
        at: t(1_000),
    }
}

#[tokio::test]
async fn workflow_lifecycle_draft_approved_retired() {
    on_each_backend(|store| async move {
        let v = store
            .register_workflow(&new_version("quals", "1.0.0", "alice"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(v.state, WorkflowState::Draft);
        assert_eq!(v.workflow_type, WorkflowType::Snakemake);
        assert_eq!(v.registered_digest, digest('a'));
        assert_eq!(v.digest, None);
        assert_eq!(v.workflow_url(), "quals@1.0.0");
        assert_eq!(v.files, vec!["Snakefile", "workflow.yaml"]);
        assert_eq!(v.manifest["name"], "quals");

        // The same version again, even with other content, is refused.
        assert_eq!(
            store
                .register_workflow(&new_version("quals", "1.0.0", "bob"))
                .await
                .unwrap(),
            Err(RegistryRefusal::AlreadyExists)
        );
        // Four eyes.
        let digest = digest('b');
        assert_eq!(
            store
                .approve_workflow("quals", "1.0.0", &p("alice"), &digest, true, t(2_000))
                .await
                .unwrap(),
            Err(RegistryRefusal::SameApprover)
        );
        let approved = store
            .approve_workflow("quals", "1.0.0", &p("bob"), &digest, true, t(2_000))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(approved.state, WorkflowState::Approved);
        assert_eq!(approved.digest.as_ref(), Some(&digest));
        assert_eq!(approved.approved_by, Some(p("bob")));
        assert_eq!(approved.approved_at, Some(t(2_000)));
        assert_eq!(
            store
                .approve_workflow("quals", "1.0.0", &p("carol"), &digest, true, t(3_000))
                .await
                .unwrap(),
            Err(RegistryRefusal::WrongState("approved".into()))
        );
        assert_eq!(
            store
                .approve_workflow("nope", "1", &p("carol"), &digest, true, t(3_000))
                .await
                .unwrap(),
            Err(RegistryRefusal::NotFound)
        );

        // Without the four-eyes rule the registrar may approve.
        store
            .register_workflow(&new_version("quals", "1.1.0", "alice"))
            .await
            .unwrap()
            .unwrap();
        store
            .approve_workflow("quals", "1.1.0", &p("alice"), &digest, false, t(2_500))
            .await
            .unwrap()
            .unwrap();

        let retired = store
            .retire_workflow("quals", "1.0.0", &p("bob"), Some("superseded"), t(4_000))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(retired.state, WorkflowState::Retired);
        assert_eq!(retired.digest.as_ref(), Some(&digest));
        assert_eq!(retired.retire_reason.as_deref(), Some("superseded"));
        assert_eq!(
            store
                .retire_workflow("quals", "1.0.0", &p("bob"), None, t(5_000))
                .await
                .unwrap(),
            Err(RegistryRefusal::WrongState("retired".into()))
        );

        let all = store.list_workflow_versions(None).await.unwrap();
        assert_eq!(all.len(), 2);
        let approved = store
            .list_workflow_versions(Some(WorkflowState::Approved))
            .await
            .unwrap();
        assert_eq!(approved.len(), 1);
        assert_eq!(approved[0].version, "1.1.0");

        let events = store
            .registry_events(Some(("workflow", "quals@1.0.0")), 100)
            .await
            .unwrap();
        let actions: Vec<(&str, &str)> = events
            .iter()
            .map(|e| (e.action.as_str(), e.actor.sub()))
            .collect();
        assert_eq!(
            actions,
            vec![
                ("retired", "bob"),
                ("approved", "bob"),
                ("registered", "alice")
            ]
        );
        assert_eq!(events[0].at, t(4_000));
        assert_eq!(store.registry_events(None, 100).await.unwrap().len(), 5);
    })
    .await;
}

#[tokio::test]
async fn registered_content_and_history_cannot_be_rewritten() {
    on_each_backend(|store| async move {
        store
            .register_workflow(&new_version("quals", "1.0.0", "alice"))
            .await
            .unwrap()
            .unwrap();
        store
            .approve_workflow("quals", "1.0.0", &p("bob"), &digest('c'), true, t(2_000))
            .await
            .unwrap()
            .unwrap();
        for sql in [
            "UPDATE workflow_versions SET digest = 'x' WHERE name = 'quals'",
            "UPDATE workflow_versions SET files_json = '[]' WHERE name = 'quals'",
            "UPDATE workflow_versions SET manifest_json = '{}' WHERE name = 'quals'",
            "UPDATE workflow_versions SET source_dir = '/tmp/evil' WHERE name = 'quals'",
            "DELETE FROM workflow_versions WHERE name = 'quals'",
            "UPDATE registry_events SET actor = 'mallory'",
            "DELETE FROM registry_events",
        ] {
            assert!(store.debug_execute(sql).await.is_err(), "{sql} succeeded");
        }
        let v = store
            .workflow_version("quals", "1.0.0")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(v.digest, Some(digest('c')));
    })
    .await;
}

#[tokio::test]
async fn datasets_are_registered_retired_and_recorded() {
    on_each_backend(|store| async move {
        let new = NewDataset {
            id: "demo-1".into(),
            description: "Demo cohort".into(),
            location: "/data/demo-1".into(),
            crypt4gh: true,
            visa: Some("https://ega.example/datasets/EGAD1".into()),
            created_by: p("carol"),
            at: t(10),
        };
        let d = store.insert_dataset(&new).await.unwrap().unwrap();
        assert!(d.crypt4gh);
        assert_eq!(d.state, DatasetState::Active);
        assert_eq!(
            d.visa.as_deref(),
            Some("https://ega.example/datasets/EGAD1")
        );
        assert_eq!(
            store.insert_dataset(&new).await.unwrap(),
            Err(RegistryRefusal::AlreadyExists)
        );
        assert_eq!(store.dataset("demo-1").await.unwrap(), Some(d));
        assert_eq!(store.dataset("nope").await.unwrap(), None);
        let plain = NewDataset {
            id: "demo-2".into(),
            crypt4gh: false,
            visa: None,
            ..new.clone()
        };
        store.insert_dataset(&plain).await.unwrap().unwrap();
        assert_eq!(store.list_datasets().await.unwrap().len(), 2);

        let retired = store
            .retire_dataset("demo-1", &p("carol"), Some("withdrawn"), t(20))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(retired.state, DatasetState::Retired);
        assert_eq!(
            store
                .retire_dataset("demo-1", &p("carol"), None, t(30))
                .await
                .unwrap(),
            Err(RegistryRefusal::WrongState("retired".into()))
        );
        assert_eq!(
            store
                .retire_dataset("x", &p("carol"), None, t(30))
                .await
                .unwrap(),
            Err(RegistryRefusal::NotFound)
        );
        let events = store
            .registry_events(Some(("dataset", "demo-1")), 10)
            .await
            .unwrap();
        assert_eq!(events.len(), 2);
        assert_eq!(events[1].action, "created");
        assert_eq!(events[0].detail.as_deref(), Some("withdrawn"));
        assert!(store.debug_execute("DELETE FROM datasets").await.is_err());
    })
    .await;
}
