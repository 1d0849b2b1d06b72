//! The egress bookkeeping's contract, run against SQLite (always) and PostgreSQL (when
//! `SPE_TEST_POSTGRES_URL` names a server).

use spe_test_support::store::*;

use spe_core::time::Timestamp;
use spe_core::{RunId, RunState};
use spe_store::{EgressOutcome, EgressState, NewEgressFile, Store, Transition};

fn t(micros: i64) -> Timestamp {
    Timestamp::from_micros(micros)
}

async fn run_in_state(store: &Store, state: RunState) -> RunId {
    let id = queued_run(store, "alice", 1_000).await;
    if state != RunState::Queued {
        store
            .transition(&Transition {
                run: id,
                from: &[RunState::Queued],
                to: state,
                actor: &spe_core::Actor::Service(spe_core::ServiceActor::Reconciler),
                reason: None,
                exit_code: Some(0),
                at: t(2_000),
            })
            .await
            .unwrap()
            .unwrap();
    }
    id
}

fn file(path: &str, state: EgressState, size: i64) -> NewEgressFile {
    NewEgressFile {
        path: path.into(),
        state,
        size,
        reason: (state != EgressState::Pending).then(|| "because".into()),
    }
}

#[tokio::test]
async fn only_ended_runs_with_unsettled_egress_are_awaiting() {
    on_each_backend(|store| async move {
        let done = run_in_state(&store, RunState::Complete).await;
        let open = run_in_state(&store, RunState::Complete).await;
        let failed = run_in_state(&store, RunState::ExecutorError).await;
        let broken = run_in_state(&store, RunState::SystemError).await;
        let canceled = run_in_state(&store, RunState::Canceled).await;
        let _queued = run_in_state(&store, RunState::Queued).await;
        let _running = run_in_state(&store, RunState::Running).await;
        let _canceling = run_in_state(&store, RunState::Canceling).await;
        store.record_egress_scan(done, &[], t(3_000)).await.unwrap();
        assert!(store.mark_egress_done(done, t(3_001)).await.unwrap());
        assert!(!store.mark_egress_done(done, t(3_002)).await.unwrap());
        let awaiting = store.runs_awaiting_egress(100).await.unwrap();
        let mut ids = awaiting.iter().map(|r| r.id).collect::<Vec<_>>();
        ids.sort();
        let mut want = vec![open, failed, broken, canceled];
        want.sort();
        assert_eq!(ids, want);
        assert!(awaiting.iter().all(|r| !r.scanned && !r.done));
        assert_eq!(store.egress_backlog().await.unwrap(), 4);
        // A run never scanned cannot be done.
        assert!(!store.mark_egress_done(open, t(3_003)).await.unwrap());
        let seen = store.egress_run(done).await.unwrap().unwrap();
        assert!(seen.scanned && seen.done);
        // Ended runs settled with nothing recorded (what the crawler does with a state the
        // manifest does not release) are never read again.
        for id in [failed, broken, canceled] {
            store.record_egress_scan(id, &[], t(4_000)).await.unwrap();
            assert!(store.mark_egress_done(id, t(4_001)).await.unwrap());
        }
        let awaiting = store.runs_awaiting_egress(100).await.unwrap();
        assert_eq!(
            awaiting.iter().map(|r| r.id).collect::<Vec<_>>(),
            vec![open]
        );
        assert_eq!(store.egress_backlog().await.unwrap(), 1);
    })
    .await;
}

#[tokio::test]
async fn files_go_pending_uploading_released_and_the_run_is_done() {
    on_each_backend(|store| async move {
        let run = run_in_state(&store, RunState::Complete).await;
        let files = [
            file("results.csv", EgressState::Pending, 10),
            file("plots/quals.svg", EgressState::Pending, 20),
            file("big.bam", EgressState::Held, 30),
            file("link.csv", EgressState::Refused, 0),
        ];
        store.record_egress_scan(run, &files, t(10)).await.unwrap();
        // A second walk (after a crash) changes nothing.
        store.record_egress_scan(run, &files, t(11)).await.unwrap();
        assert_eq!(store.egress_files(run).await.unwrap().len(), 4);
        let claimable = store.claimable_egress_files(run, t(20)).await.unwrap();
        assert_eq!(
            claimable
                .iter()
                .map(|f| f.path.as_str())
                .collect::<Vec<_>>(),
            vec!["plots/quals.svg", "results.csv"]
        );
        for f in &claimable {
            let claimed = store
                .claim_egress_file(run, &f.path, "c1", t(20), t(1_000))
                .await
                .unwrap()
                .unwrap();
            assert_eq!(claimed.state, EgressState::Uploading);
            assert_eq!(claimed.attempts, 1);
            assert!(!store.mark_egress_done(run, t(21)).await.unwrap());
            let sha = format!("{:064x}", claimed.size);
            assert!(
                store
                    .finish_egress_file(
                        run,
                        &f.path,
                        "c1",
                        EgressOutcome::Released {
                            sha256: &sha,
                            size: claimed.size
                        },
                        t(30),
                    )
                    .await
                    .unwrap()
            );
        }
        let released = store.released_files(run).await.unwrap();
        assert_eq!(released.len(), 2);
        assert_eq!(released[0].path, "plots/quals.svg");
        assert_eq!(released[0].size, 20);
        assert_eq!(released[1].sha256, format!("{:064x}", 10));
        assert_eq!(released[1].released_at, t(30));
        assert!(store.mark_egress_done(run, t(40)).await.unwrap());
        assert!(store.runs_awaiting_egress(10).await.unwrap().is_empty());
        let states: Vec<EgressState> = store
            .egress_files(run)
            .await
            .unwrap()
            .into_iter()
            .map(|f| f.state)
            .collect();
        assert_eq!(
            states,
            [
                EgressState::Held,
                EgressState::Refused,
                EgressState::Released,
                EgressState::Released
            ]
        );
    })
    .await;
}

#[tokio::test]
async fn one_claim_wins_and_an_expired_lease_can_be_taken_over() {
    on_each_backend(|store| async move {
        let run = run_in_state(&store, RunState::Complete).await;
        store
            .record_egress_scan(run, &[file("results.csv", EgressState::Pending, 5)], t(10))
            .await
            .unwrap();
        let a = store.claim_egress_file(run, "results.csv", "a", t(20), t(100));
        let b = store.claim_egress_file(run, "results.csv", "b", t(20), t(100));
        let (a, b) = tokio::join!(a, b);
        let winners = [a.unwrap(), b.unwrap()]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>();
        assert_eq!(winners.len(), 1, "exactly one claim wins");
        let winner = winners[0].owner.clone().unwrap();
        let loser = if winner == "a" { "b" } else { "a" };
        assert!(
            store
                .set_egress_upload_id(run, "results.csv", &winner, Some("up-1"))
                .await
                .unwrap()
        );
        // The loser can neither renew nor finish.
        assert!(
            !store
                .renew_egress_lease(run, "results.csv", loser, t(500))
                .await
                .unwrap()
        );
        assert!(
            !store
                .finish_egress_file(
                    run,
                    "results.csv",
                    loser,
                    EgressOutcome::Refused { reason: "x" },
                    t(30)
                )
                .await
                .unwrap()
        );
        // While the lease holds nobody else may claim; once it expires (the owner died) the
        // file is claimable again and carries the stale multipart upload id.
        assert!(
            store
                .claim_egress_file(run, "results.csv", loser, t(50), t(200))
                .await
                .unwrap()
                .is_none()
        );
        assert_eq!(
            store
                .claimable_egress_files(run, t(101))
                .await
                .unwrap()
                .len(),
            1
        );
        let taken = store
            .claim_egress_file(run, "results.csv", loser, t(101), t(300))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(taken.owner.as_deref(), Some(loser));
        assert_eq!(taken.upload_id.as_deref(), Some("up-1"));
        assert_eq!(taken.attempts, 2);
        // The old owner's late finish is ignored.
        assert!(
            !store
                .finish_egress_file(
                    run,
                    "results.csv",
                    &winner,
                    EgressOutcome::Released {
                        sha256: "00",
                        size: 5
                    },
                    t(110)
                )
                .await
                .unwrap()
        );
    })
    .await;
}

#[tokio::test]
async fn a_retry_waits_for_its_time_and_a_refusal_settles() {
    on_each_backend(|store| async move {
        let run = run_in_state(&store, RunState::Complete).await;
        store
            .record_egress_scan(
                run,
                &[
                    file("a.csv", EgressState::Pending, 5),
                    file("b.csv", EgressState::Pending, 5),
                ],
                t(10),
            )
            .await
            .unwrap();
        for path in ["a.csv", "b.csv"] {
            store
                .claim_egress_file(run, path, "c", t(20), t(100))
                .await
                .unwrap()
                .unwrap();
        }
        assert!(
            store
                .finish_egress_file(
                    run,
                    "a.csv",
                    "c",
                    EgressOutcome::Retry {
                        reason: "S3 unavailable",
                        next_attempt_at: t(500)
                    },
                    t(30)
                )
                .await
                .unwrap()
        );
        assert!(
            store
                .finish_egress_file(
                    run,
                    "b.csv",
                    "c",
                    EgressOutcome::Refused {
                        reason: "changed while being uploaded"
                    },
                    t(30)
                )
                .await
                .unwrap()
        );
        assert!(
            store
                .claimable_egress_files(run, t(499))
                .await
                .unwrap()
                .is_empty()
        );
        assert!(
            store
                .claim_egress_file(run, "a.csv", "c", t(499), t(600))
                .await
                .unwrap()
                .is_none()
        );
        let a = store.egress_file(run, "a.csv").await.unwrap().unwrap();
        assert_eq!(a.state, EgressState::Pending);
        assert_eq!(a.reason.as_deref(), Some("S3 unavailable"));
        assert!(!store.mark_egress_done(run, t(40)).await.unwrap());
        assert_eq!(
            store
                .claimable_egress_files(run, t(500))
                .await
                .unwrap()
                .len(),
            1
        );
        let b = store.egress_file(run, "b.csv").await.unwrap().unwrap();
        assert_eq!(b.state, EgressState::Refused);
        assert!(store.released_files(run).await.unwrap().is_empty());
    })
    .await;
}
