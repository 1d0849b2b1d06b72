//! The store's contract, run against SQLite (always) and PostgreSQL (when
//! `SPE_TEST_POSTGRES_URL` names a server; CI starts one with tests/peers/postgres.sh and
//! requires it).

use spe_test_support::store::*;

use serde_json::json;
use spe_core::page::{PageSize, PageToken};
use spe_core::request::WorkflowType;
use spe_core::time::Timestamp;
use spe_core::{Actor, RunId, RunState, ServiceActor};
use spe_store::{NewRun, RunFilter, Transition};

use spe_test_support::store::person as p;

fn new_run(owner: &str, created_micros: i64, tags: &[(&str, &str)]) -> NewRun {
    NewRun {
        id: RunId::new_random(),
        owner: p(owner),
        submission: submission("quals@1.0.0", tags),
        run_dir: "/data/runs/x".into(),
        created_at: Timestamp::from_micros(created_micros),
    }
}

fn page(n: i64) -> PageSize {
    PageSize::parse(Some(n), 50, 500).unwrap()
}

#[tokio::test]
async fn sqlite_file_is_created_in_wal_mode_and_reopens() {
    let dir = tempfile::tempdir().unwrap();
    let store = sqlite_store(&dir).await;
    assert_eq!(
        store.sqlite_journal_mode().await.unwrap().as_deref(),
        Some("wal")
    );
    assert!(dir.path().join("nested/spe.db").is_file());
    let run = new_run("alice", 1, &[]);
    store.insert_run(&run).await.unwrap();
    store.close().await;
    // Migrations are idempotent and data survives a restart.
    let again = sqlite_store(&dir).await;
    assert!(again.get_run(run.id).await.unwrap().is_some());
}

#[tokio::test]
async fn accepted_runs_are_stored_with_their_request_and_first_event() {
    on_each_backend(|store| async move {
        store.ping().await.unwrap();
        let run = new_run("alice", 1_700_000_000_000_000, &[("project", "p1")]);
        store.insert_run(&run).await.unwrap();
        let got = store.get_run(run.id).await.unwrap().unwrap();
        assert_eq!(got.state, RunState::Queued);
        assert_eq!(got.owner, p("alice"));
        assert_eq!(got.submission, run.submission);
        assert_eq!(got.workflow_type, WorkflowType::Snakemake);
        assert_eq!(got.workflow_url, "quals@1.0.0");
        assert_eq!(got.slurm_job_id, None);
        assert_eq!(got.tags().get("project").map(String::as_str), Some("p1"));
        assert_eq!(got.created_at, run.created_at);
        assert_eq!(got.start_time, None);
        let events = store.run_events(run.id).await.unwrap();
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].from_state, None);
        assert_eq!(events[0].to_state, RunState::Queued);
        assert!(store.get_run(RunId::new_random()).await.unwrap().is_none());
    })
    .await;
}

#[tokio::test]
async fn a_visa_snapshot_is_stored_with_the_run() {
    on_each_backend(|store| async move {
        let plain = new_run("alice", 1_700_000_000_000_000, &[]);
        store.insert_run(&plain).await.unwrap();
        assert_eq!(store.access_visas(plain.id).await.unwrap(), None);
        let snapshot = json!([{"dataset": "d1", "iss": "https://visas.example", "type": "ControlledAccessGrants",
            "value": "https://ega.example/d1", "source": "https://dac.example", "by": "dac",
            "asserted": 1, "exp": 2}]);
        let granted = new_run("alice", 1_700_000_000_000_001, &[]);
        store
            .insert_run_with_visas(&granted, Some(&snapshot))
            .await
            .unwrap();
        assert_eq!(
            store.access_visas(granted.id).await.unwrap(),
            Some(snapshot)
        );
        assert_eq!(store.access_visas(RunId::new_random()).await.unwrap(), None);
    })
    .await;
}

#[tokio::test]
async fn pages_are_stable_newest_first_and_complete() {
    on_each_backend(|store| async move {
        let mut ids = Vec::new();
        // Two runs share a timestamp so that the id breaks the tie.
        for t in [10, 20, 20, 30, 40, 50, 60] {
            let run = new_run("alice", t, &[]);
            ids.push((t, run.id));
            store.insert_run(&run).await.unwrap();
        }
        let mut seen = Vec::new();
        let mut token: Option<PageToken> = None;
        let mut first = true;
        loop {
            let page = store
                .list_runs(&RunFilter::default(), page(3), token)
                .await
                .unwrap();
            assert!(page.runs.len() <= 3);
            seen.extend(page.runs.iter().map(|r| (r.created_at.micros(), r.id)));
            if first {
                // A run accepted while a client pages must not shift later pages.
                store.insert_run(&new_run("alice", 70, &[])).await.unwrap();
                first = false;
            }
            match page.next {
                Some(next) => token = Some(PageToken::decode(&next.encode()).unwrap()),
                None => break,
            }
        }
        let mut expected = ids.clone();
        expected.sort_by(|a, b| b.cmp(a));
        assert_eq!(seen, expected);
    })
    .await;
}

#[tokio::test]
async fn filters_by_owner_state_tags_and_time() {
    on_each_backend(|store| async move {
        let a = new_run("alice", 100, &[("project", "p1"), ("cohort", "c1")]);
        let b = new_run("alice", 200, &[("project", "p1")]);
        let c = new_run("bob", 300, &[("project", "p2")]);
        for r in [&a, &b, &c] {
            store.insert_run(r).await.unwrap();
        }
        let cancel = Transition {
            run: b.id,
            from: &[RunState::Queued],
            to: RunState::Canceled,
            actor: &Actor::Person(p("alice")),
            reason: Some("cancelled before submission"),
            exit_code: None,
            at: Timestamp::from_micros(250),
        };
        store.transition(&cancel).await.unwrap().unwrap();

        let ids = |filter: RunFilter| {
            let store = store.clone();
            async move {
                store
                    .list_runs(&filter, page(50), None)
                    .await
                    .unwrap()
                    .runs
                    .into_iter()
                    .map(|r| r.id)
                    .collect::<Vec<_>>()
            }
        };
        assert_eq!(
            ids(RunFilter {
                owner: Some(p("alice")),
                ..Default::default()
            })
            .await,
            vec![b.id, a.id]
        );
        assert_eq!(
            ids(RunFilter {
                states: vec![RunState::Queued],
                ..Default::default()
            })
            .await,
            vec![c.id, a.id]
        );
        assert_eq!(
            ids(RunFilter {
                tags: vec![("project".into(), "p1".into())],
                ..Default::default()
            })
            .await,
            vec![b.id, a.id]
        );
        assert_eq!(
            ids(RunFilter {
                tags: vec![
                    ("project".into(), "p1".into()),
                    ("cohort".into(), "c1".into())
                ],
                ..Default::default()
            })
            .await,
            vec![a.id]
        );
        assert_eq!(
            ids(RunFilter {
                created_after: Some(Timestamp::from_micros(150)),
                created_before: Some(Timestamp::from_micros(300)),
                ..Default::default()
            })
            .await,
            vec![b.id]
        );
        let counts = store.state_counts().await.unwrap();
        assert_eq!(counts[&RunState::Queued], 2);
        assert_eq!(counts[&RunState::Canceled], 1);
        assert_eq!(counts[&RunState::Running], 0);
        assert_eq!(counts.len(), RunState::ALL.len());
    })
    .await;
}

#[tokio::test]
async fn transitions_are_compare_and_set_and_recorded() {
    on_each_backend(|store| async move {
        let run = new_run("alice", 1_000, &[]);
        store.insert_run(&run).await.unwrap();
        let to_running = Transition {
            run: run.id,
            from: &[RunState::Queued],
            to: RunState::Running,
            actor: &Actor::Service(ServiceActor::Reconciler),
            reason: None,
            exit_code: None,
            at: Timestamp::from_micros(2_000),
        };
        let running = store.transition(&to_running).await.unwrap().unwrap();
        assert_eq!(running.state, RunState::Running);
        assert_eq!(running.start_time, Some(Timestamp::from_micros(2_000)));
        // The same change again finds the run elsewhere and changes nothing.
        assert_eq!(
            store.transition(&to_running).await.unwrap(),
            Err(RunState::Running)
        );

        let to_failed = Transition {
            run: run.id,
            from: &[RunState::Running],
            to: RunState::ExecutorError,
            actor: &Actor::Service(ServiceActor::Reconciler),
            reason: Some("exit 3"),
            exit_code: Some(3),
            at: Timestamp::from_micros(3_000),
        };
        let failed = store.transition(&to_failed).await.unwrap().unwrap();
        assert_eq!(failed.exit_code, Some(3));
        assert_eq!(failed.end_time, Some(Timestamp::from_micros(3_000)));
        assert_eq!(failed.reason.as_deref(), Some("exit 3"));
        assert_eq!(failed.start_time, Some(Timestamp::from_micros(2_000)));

        let events = store.run_events(run.id).await.unwrap();
        let path: Vec<RunState> = events.iter().map(|e| e.to_state).collect();
        assert_eq!(
            path,
            vec![RunState::Queued, RunState::Running, RunState::ExecutorError]
        );
        assert_eq!(events[2].from_state, Some(RunState::Running));
        assert_eq!(events[2].reason.as_deref(), Some("exit 3"));

        let missing = Transition {
            run: RunId::new_random(),
            ..to_running
        };
        assert!(matches!(
            store.transition(&missing).await,
            Err(spe_store::StoreError::RunNotFound(_))
        ));
    })
    .await;
}

#[tokio::test]
async fn concurrent_changes_of_one_run_apply_once() {
    on_each_backend(|store| async move {
        let run = new_run("alice", 1, &[]);
        store.insert_run(&run).await.unwrap();
        let mut tasks = Vec::new();
        for i in 0..8 {
            let store = store.clone();
            let id = run.id;
            tasks.push(tokio::spawn(async move {
                let actor = Actor::Person(p(&format!("worker-{i}")));
                store
                    .transition(&Transition {
                        run: id,
                        from: &[RunState::Queued],
                        to: RunState::Canceled,
                        actor: &actor,
                        reason: None,
                        exit_code: None,
                        at: Timestamp::from_micros(5),
                    })
                    .await
                    .unwrap()
                    .is_ok()
            }));
        }
        let mut winners = 0;
        for t in tasks {
            winners += usize::from(t.await.unwrap());
        }
        assert_eq!(winners, 1);
        assert_eq!(store.run_events(run.id).await.unwrap().len(), 2);
    })
    .await;
}

#[tokio::test]
async fn run_history_cannot_be_rewritten() {
    on_each_backend(|store| async move {
        let run = new_run("alice", 1, &[]);
        store.insert_run(&run).await.unwrap();
        let err = store
            .debug_execute("UPDATE run_events SET actor = 'mallory'")
            .await;
        assert!(err.is_err(), "an UPDATE of run_events must fail");
        let err = store.debug_execute("DELETE FROM run_events").await;
        assert!(err.is_err(), "a DELETE of run_events must fail");
        assert_eq!(
            store.run_events(run.id).await.unwrap()[0].actor,
            Actor::Person(p("alice"))
        );
    })
    .await;
}
