//! Rows that do not decode into their records (written behind the store's back, here with raw
//! SQL) are errors naming the column, never defaults or silent skips; a run among them can
//! still be ended. Run against SQLite (always) and PostgreSQL (when `SPE_TEST_POSTGRES_URL`
//! names a server).

use spe_test_support::store::*;

use serde_json::json;
use spe_core::slurm::SlurmJobId;
use spe_core::time::Timestamp;
use spe_core::{RunId, RunState};
use spe_store::{Store, StoreError, UnreadableRun};

fn t(micros: i64) -> Timestamp {
    Timestamp::from_micros(micros)
}

async fn set_column(store: &Store, id: RunId, assignment: &str) {
    let changed = store
        .debug_execute(&format!("UPDATE runs SET {assignment} WHERE id = '{id}'"))
        .await
        .unwrap();
    assert_eq!(changed, 1);
}

fn unreadable(result: Result<impl std::fmt::Debug, StoreError>) -> UnreadableRun {
    match result {
        Err(StoreError::UnreadableRun(bad)) => bad,
        other => panic!("expected an unreadable run, got {other:?}"),
    }
}

#[tokio::test]
async fn a_broken_stored_submission_is_an_item_of_the_submit_list_and_can_be_ended() {
    on_each_backend(|store| async move {
        let broken = queued_run(&store, "alice", 1).await;
        let fine = queued_run(&store, "alice", 2).await;
        // What prepare.rs used to fill in with a guess: no workflow_engine.
        set_column(
            &store,
            broken,
            r#"request_json = '{"workflow_type": "SMK", "workflow_params": {}}'"#,
        )
        .await;

        let due = store
            .claim_runs_to_submit("submitter", t(10), t(20), 10)
            .await
            .unwrap();
        assert_eq!(due.len(), 2);
        let bad = due[0].as_ref().unwrap_err();
        assert_eq!(bad.id, broken);
        assert_eq!(bad.state, RunState::Queued);
        assert!(
            bad.reason
                .starts_with("request_json: missing field `workflow_"),
            "{}",
            bad.reason
        );
        assert_eq!(due[1].as_ref().map(|r| r.id), Ok(fine));

        // Reading it one by one, or in a list, surfaces the same error.
        assert_eq!(&unreadable(store.get_run(broken).await), bad);
        assert!(matches!(
            store
                .list_runs(
                    &Default::default(),
                    spe_core::page::PageSize::parse(None, 50, 500).unwrap(),
                    None
                )
                .await,
            Err(StoreError::UnreadableRun(_))
        ));

        // Ending it goes through the compare-and-set and leaves the reason in its history.
        assert!(
            store
                .end_unreadable_run(
                    bad,
                    &spe_core::Actor::Service(spe_core::ServiceActor::Submitter),
                    t(20)
                )
                .await
                .unwrap()
        );
        assert!(
            !store
                .end_unreadable_run(
                    bad,
                    &spe_core::Actor::Service(spe_core::ServiceActor::Submitter),
                    t(21)
                )
                .await
                .unwrap()
        );
        let events = store.run_events(broken).await.unwrap();
        let last = events.last().unwrap();
        assert_eq!(last.from_state, Some(RunState::Queued));
        assert_eq!(last.to_state, RunState::SystemError);
        assert_eq!(
            last.actor,
            spe_core::Actor::Service(spe_core::ServiceActor::Submitter)
        );
        assert_eq!(
            last.reason.as_deref(),
            Some(format!("the stored run is unreadable: {}", bad.reason).as_str())
        );
        let due = store
            .claim_runs_to_submit("submitter", t(30), t(40), 10)
            .await
            .unwrap();
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].as_ref().map(|r| r.id), Ok(fine));
    })
    .await;
}

#[tokio::test]
async fn a_job_id_that_is_not_a_number_is_an_item_of_the_live_list() {
    on_each_backend(|store| async move {
        let broken = queued_run(&store, "alice", 1).await;
        let fine = queued_run(&store, "alice", 2).await;
        for id in [broken, fine] {
            assert!(
                store
                    .record_submission(id, &"42".parse::<SlurmJobId>().unwrap(), "/logs", t(5))
                    .await
                    .unwrap()
            );
        }
        set_column(&store, broken, "slurm_job_id = '42;rm -rf /'").await;

        let live = store.runs_with_live_jobs().await.unwrap();
        let (good, bad): (Vec<_>, Vec<_>) = live.into_iter().partition(Result::is_ok);
        assert_eq!(good.len(), 1);
        assert_eq!(good[0].as_ref().unwrap().id, fine);
        assert_eq!(
            good[0].as_ref().unwrap().slurm_job_id,
            Some("42".parse().unwrap())
        );
        let bad = bad[0].as_ref().unwrap_err();
        assert_eq!(bad.id, broken);
        assert_eq!(
            bad.reason,
            r#"slurm_job_id: not a Slurm job id: "42;rm -rf /""#
        );
    })
    .await;
}

#[tokio::test]
async fn unknown_types_and_states_name_the_column() {
    on_each_backend(|store| async move {
        let typed = queued_run(&store, "alice", 1).await;
        set_column(&store, typed, "workflow_type = 'CWL'").await;
        assert_eq!(
            unreadable(store.get_run(typed).await).reason,
            r#"workflow_type: unknown type "CWL""#
        );

        // A state no run can be in: not even the id and state are trustworthy, so the row
        // cannot be addressed as a run, only reported.
        let stated = queued_run(&store, "alice", 2).await;
        set_column(&store, stated, "state = 'SLEEPING'").await;
        match store.get_run(stated).await {
            Err(StoreError::Corrupt(text)) => {
                assert!(text.starts_with(r#"unknown state "SLEEPING""#), "{text}")
            }
            other => panic!("expected a corrupt row, got {other:?}"),
        }
        // The kept counts hold the states runs can be in: the row left QUEUED's count and is
        // counted nowhere (reading it is what reports it).
        let counts = store.state_counts().await.unwrap();
        assert_eq!(counts[&RunState::Queued], 1);
        assert_eq!(counts.values().sum::<i64>(), 1);

        // Registry rows too: an unknown workflow type is refused on read.
        store
            .debug_execute(&format!(
                "INSERT INTO workflow_versions (name, version, workflow_type, state, source_dir, \
                 entry_point, files_json, registered_digest, manifest_json, description, \
                 registered_by, registered_at) VALUES ('odd', '1', 'CWL', 'draft', '/srv', \
                 'main.cwl', '[]', '{}', '{}', '', 'alice', 1)",
                "a".repeat(64),
                json!({})
            ))
            .await
            .unwrap();
        match store.workflow_version("odd", "1").await {
            Err(StoreError::Corrupt(text)) => assert_eq!(
                text,
                r#"workflow_type of workflow odd@1: unknown type "CWL""#
            ),
            other => panic!("expected a corrupt row, got {other:?}"),
        }
    })
    .await;
}
