//! The notifications outbox on both backends: rows written with the change they report,
//! expanded once per target, claimed under a lease by one instance at a time, and never
//! claimed again once delivered.

use spe_test_support::store::*;

use spe_core::time::Timestamp;
use spe_core::{Actor, RunState, ServiceActor};
use spe_store::{
    DeliveryOutcome, DeliveryState, EgressState, NewEgressFile, NewVote, NotificationEvent,
    Transition, Vote,
};

fn t(micros: i64) -> Timestamp {
    Timestamp::from_micros(micros)
}

#[tokio::test]
async fn changes_write_their_notifications_in_the_same_transaction() {
    on_each_backend(|store| async move {
        let run = queued_run(&store, "alice", 1_000).await;
        // A change that is not an end reports nothing.
        store
            .transition(&Transition {
                run,
                from: &[RunState::Queued],
                to: RunState::Running,
                actor: &Actor::Service(ServiceActor::Reconciler),
                reason: None,
                exit_code: None,
                at: t(1_500),
            })
            .await
            .unwrap()
            .unwrap();
        assert!(store.notifications(run).await.unwrap().is_empty());
        store
            .transition(&Transition {
                run,
                from: &[RunState::Running],
                to: RunState::Complete,
                actor: &Actor::Service(ServiceActor::Reconciler),
                reason: None,
                exit_code: Some(0),
                at: t(2_000),
            })
            .await
            .unwrap()
            .unwrap();
        // A refused compare-and-set (the run is not RUNNING any more) writes nothing.
        let refused = store
            .transition(&Transition {
                run,
                from: &[RunState::Running],
                to: RunState::SystemError,
                actor: &Actor::Service(ServiceActor::Reconciler),
                reason: None,
                exit_code: None,
                at: t(2_100),
            })
            .await
            .unwrap();
        assert_eq!(refused, Err(RunState::Complete));
        store
            .record_egress_scan(
                run,
                &[
                    NewEgressFile {
                        path: "a.csv".into(),
                        state: EgressState::Held,
                        size: 3,
                        reason: None,
                    },
                    NewEgressFile {
                        path: "b.csv".into(),
                        state: EgressState::Held,
                        size: 3,
                        reason: None,
                    },
                ],
                t(3_000),
            )
            .await
            .unwrap();
        // A second walk finding the same files holds nothing new.
        store
            .record_egress_scan(
                run,
                &[NewEgressFile {
                    path: "a.csv".into(),
                    state: EgressState::Held,
                    size: 3,
                    reason: None,
                }],
                t(3_100),
            )
            .await
            .unwrap();
        let bob = person("bob");
        store
            .cast_vote(
                NewVote {
                    run,
                    path: "a.csv",
                    reviewer: &bob,
                    vote: Vote::Approve,
                    comment: None,
                    sha256: "ab",
                    approvals_required: 1,
                },
                t(4_000),
            )
            .await
            .unwrap();
        store
            .return_review(run, &bob, "explain b.csv", t(5_000))
            .await
            .unwrap();
        store
            .resubmit_review(run, &person("alice"), "it is aggregated", t(6_000))
            .await
            .unwrap();
        let events: Vec<_> = store
            .notifications(run)
            .await
            .unwrap()
            .into_iter()
            .map(|n| (n.event, n.run_state, n.owner.sub().to_owned()))
            .collect();
        let alice = "alice".to_owned();
        assert_eq!(
            events,
            vec![
                (
                    NotificationEvent::RunEnded,
                    RunState::Complete,
                    alice.clone()
                ),
                (NotificationEvent::Held, RunState::Complete, alice.clone()),
                (
                    NotificationEvent::Approved,
                    RunState::Complete,
                    alice.clone()
                ),
                (
                    NotificationEvent::Returned,
                    RunState::Complete,
                    alice.clone()
                ),
                (NotificationEvent::Answered, RunState::Complete, alice),
            ]
        );
    })
    .await;
}

#[tokio::test]
async fn deliveries_are_claimed_by_one_instance_and_never_again_once_delivered() {
    on_each_backend(|store| async move {
        let run = queued_run(&store, "alice", 1_000).await;
        store
            .transition(&Transition {
                run,
                from: &[RunState::Queued],
                to: RunState::Canceled,
                actor: &Actor::Service(ServiceActor::Reconciler),
                reason: None,
                exit_code: None,
                at: t(2_000),
            })
            .await
            .unwrap()
            .unwrap();
        let targets = vec!["webhook:ops".to_owned(), "email:dc@example.org".to_owned()];
        assert_eq!(
            store
                .expand_notifications(&targets, false, 10, t(3_000))
                .await
                .unwrap(),
            1
        );
        // Expanded once only, whoever asks again.
        assert_eq!(
            store
                .expand_notifications(&targets, false, 10, t(3_000))
                .await
                .unwrap(),
            0
        );

        let a = store
            .claim_deliveries("a", t(4_000), t(10_000), 10)
            .await
            .unwrap();
        assert_eq!(a.len(), 2);
        assert!(a.iter().all(|d| d.attempts == 1));
        // Under a's live lease, b gets nothing.
        assert!(
            store
                .claim_deliveries("b", t(5_000), t(11_000), 10)
                .await
                .unwrap()
                .is_empty()
        );
        // Only the lease owner may finish.
        assert!(
            !store
                .finish_delivery(a[0].id, "b", DeliveryOutcome::Delivered, t(5_000))
                .await
                .unwrap()
        );
        assert!(
            store
                .finish_delivery(a[0].id, "a", DeliveryOutcome::Delivered, t(5_000))
                .await
                .unwrap()
        );
        // a dies holding the second; once its lease ran out, b takes it over.
        let b = store
            .claim_deliveries("b", t(10_001), t(20_000), 10)
            .await
            .unwrap();
        assert_eq!(b.iter().map(|d| d.id).collect::<Vec<_>>(), vec![a[1].id]);
        assert_eq!(b[0].attempts, 2);
        assert!(
            store
                .finish_delivery(
                    b[0].id,
                    "b",
                    DeliveryOutcome::Retry {
                        error: "the receiver answered 503",
                        next_attempt_at: t(30_000)
                    },
                    t(10_002)
                )
                .await
                .unwrap()
        );
        // Not due before its next attempt; the delivered one never again.
        assert!(
            store
                .claim_deliveries("c", t(29_999), t(40_000), 10)
                .await
                .unwrap()
                .is_empty()
        );
        let c = store
            .claim_deliveries("c", t(30_000), t(40_000), 10)
            .await
            .unwrap();
        assert_eq!(c.iter().map(|d| d.id).collect::<Vec<_>>(), vec![a[1].id]);
        let all = store.deliveries(run).await.unwrap();
        let delivered = all.iter().find(|d| d.id == a[0].id).unwrap();
        assert_eq!(delivered.state, DeliveryState::Delivered);
        assert_eq!(delivered.delivered_at, Some(t(5_000)));
        let retried = all.iter().find(|d| d.id == a[1].id).unwrap();
        assert_eq!(
            retried.last_error.as_deref(),
            Some("the receiver answered 503")
        );
    })
    .await;
}

#[tokio::test]
async fn rejections_revocations_and_overdue_reports_are_notified() {
    on_each_backend(|store| async move {
        let run = queued_run(&store, "alice", 1_000).await;
        store
            .transition(&Transition {
                run,
                from: &[RunState::Queued],
                to: RunState::Complete,
                actor: &Actor::Service(ServiceActor::Reconciler),
                reason: None,
                exit_code: Some(0),
                at: t(2_000),
            })
            .await
            .unwrap()
            .unwrap();
        let file = |path: &str, state| NewEgressFile {
            path: path.into(),
            state,
            size: 3,
            reason: None,
        };
        store
            .record_egress_scan(
                run,
                &[
                    file("held.csv", EgressState::Held),
                    file("out.csv", EgressState::Pending),
                ],
                t(3_000),
            )
            .await
            .unwrap();
        // Released through a crawler's claim, then revoked.
        store
            .claim_egress_file(run, "out.csv", "c", t(3_100), t(9_000))
            .await
            .unwrap()
            .unwrap();
        let released = spe_store::EgressOutcome::Released {
            sha256: "ab",
            size: 3,
        };
        assert!(
            store
                .finish_egress_file(run, "out.csv", "c", released, t(3_200))
                .await
                .unwrap()
        );
        let bob = person("bob");
        store
            .revoke_release(run, "out.csv", &bob, "a small cell", t(4_000))
            .await
            .unwrap();
        assert_eq!(
            store
                .report_overdue_reviews(t(5_000), t(5_000))
                .await
                .unwrap(),
            [run]
        );
        store
            .cast_vote(
                NewVote {
                    run,
                    path: "held.csv",
                    reviewer: &bob,
                    vote: Vote::Reject,
                    comment: Some("identifying"),
                    sha256: "cd",
                    approvals_required: 1,
                },
                t(6_000),
            )
            .await
            .unwrap();
        let events: Vec<NotificationEvent> = store
            .notifications(run)
            .await
            .unwrap()
            .into_iter()
            .map(|n| n.event)
            .collect();
        assert_eq!(
            events,
            [
                NotificationEvent::RunEnded,
                NotificationEvent::Held,
                NotificationEvent::Revoked,
                NotificationEvent::Overdue,
                NotificationEvent::Rejected,
            ]
        );
    })
    .await;
}
