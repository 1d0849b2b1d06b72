//! Several wes-api instances on one database: a QUEUED run is claimed by one submitter at a
//! time (concurrent claimers get disjoint runs; a claim that ran out is taken by another), and
//! one instance at a time holds a singleton loop's leader lease. SQLite always, PostgreSQL
//! when `SPE_TEST_POSTGRES_URL` names a server (there with `FOR UPDATE SKIP LOCKED`).

use std::collections::HashSet;

use spe_core::RunId;
use spe_core::slurm::SlurmJobId;
use spe_core::time::Timestamp;
use spe_store::Store;
use spe_test_support::store::*;

fn t(seconds: i64) -> Timestamp {
    Timestamp::from_micros(seconds * 1_000_000)
}

async fn claimed(store: &Store, holder: &str, now: i64, limit: u32) -> Vec<RunId> {
    store
        .claim_runs_to_submit(holder, t(now), t(now + 60), limit)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.unwrap().id)
        .collect()
}

#[tokio::test]
async fn each_queued_run_is_claimed_by_one_submitter_until_its_claim_runs_out() {
    on_each_backend(|store| async move {
        let mut runs = Vec::new();
        for i in 0..40 {
            runs.push(queued_run(&store, "alice", 1_000_000 + i).await);
        }
        // Two instances claiming at once, in batches: disjoint, together everything, oldest
        // first in each batch.
        let (a, b) = tokio::join!(claimed(&store, "a", 100, 25), claimed(&store, "b", 100, 25));
        let (sa, sb): (HashSet<_>, HashSet<_>) =
            (a.iter().copied().collect(), b.iter().copied().collect());
        assert!(sa.is_disjoint(&sb), "a run claimed twice");
        assert_eq!(sa.len() + sb.len(), 40);
        for batch in [&a, &b] {
            let order: Vec<usize> = batch
                .iter()
                .map(|id| runs.iter().position(|r| r == id).unwrap())
                .collect();
            assert!(order.windows(2).all(|w| w[0] < w[1]), "{order:?}");
        }
        // While the claims run, nobody else gets those runs; the holder itself may claim again.
        assert!(claimed(&store, "c", 110, 50).await.is_empty());
        assert_eq!(claimed(&store, "a", 110, 50).await.len(), a.len());
        // A submitted run is no one's any more; renewing a claim on it fails.
        let job: SlurmJobId = "7".parse().unwrap();
        assert!(
            store
                .record_submission(a[0], &job, "/logs", t(111))
                .await
                .unwrap()
        );
        assert!(!store.renew_submit_claim(a[0], "a", t(200)).await.unwrap());
        assert!(store.renew_submit_claim(a[1], "a", t(200)).await.unwrap());
        assert!(!store.renew_submit_claim(a[1], "b", t(200)).await.unwrap());
        // An instance that died: once its claims run out, another takes its runs (not the one
        // renewed, nor the submitted one).
        let taken: HashSet<_> = claimed(&store, "c", 171, 50).await.into_iter().collect();
        let want: HashSet<_> = a[2..].iter().chain(&b).copied().collect();
        assert_eq!(taken, want);
        assert!(claimed(&store, "c", 201, 50).await.contains(&a[1]));
    })
    .await;
}

#[tokio::test]
async fn one_instance_at_a_time_holds_a_leader_lease() {
    on_each_backend(|store| async move {
        let hold = |holder: &'static str, now: i64| {
            let store = store.clone();
            async move {
                store
                    .hold_leader_lease("reconciler", holder, t(now), t(now + 30))
                    .await
                    .unwrap()
            }
        };
        assert!(hold("a", 100).await);
        assert!(!hold("b", 101).await);
        // Renewed by its holder, it stays the holder's.
        assert!(hold("a", 120).await);
        assert!(!hold("b", 140).await);
        // The holder stops renewing (it died): another takes the lease once it ran out.
        assert!(hold("b", 151).await);
        assert!(!hold("a", 152).await);
        // Leases of other loops are separate.
        assert!(
            store
                .hold_leader_lease("retention", "a", t(152), t(182))
                .await
                .unwrap()
        );
    })
    .await;
}

#[tokio::test]
async fn browser_sessions_and_logins_are_shared_bounded_used_once_and_expire() {
    on_each_backend(|store| async move {
        use spe_store::LoginAdmission::{Kept, TooMany, TooManyFromAddress};
        // Logins in progress: bounded per address and in all; a state is taken once, and not
        // after it expired.
        let add = |state: &'static str, address: Option<&'static str>, now: i64| {
            let store = store.clone();
            async move {
                store
                    .add_browser_login(state, "sealed", address, t(now), t(now + 600), 2, 3)
                    .await
                    .unwrap()
            }
        };
        assert_eq!(add("s1", Some("10.0.0.1"), 100).await, Kept);
        assert_eq!(add("s2", Some("10.0.0.1"), 100).await, Kept);
        assert_eq!(add("s3", Some("10.0.0.1"), 100).await, TooManyFromAddress);
        assert_eq!(add("s4", Some("10.0.0.2"), 100).await, Kept);
        assert_eq!(add("s5", None, 100).await, TooMany);
        assert_eq!(
            store.take_browser_login("s1", t(200)).await.unwrap(),
            Some("sealed".to_owned())
        );
        assert_eq!(store.take_browser_login("s1", t(200)).await.unwrap(), None);
        assert_eq!(store.take_browser_login("s2", t(800)).await.unwrap(), None);
        // Expired ones make room again.
        assert_eq!(add("s6", Some("10.0.0.1"), 900).await, Kept);
        // Sessions: live until they expire, bounded, ended once.
        assert!(
            store
                .add_browser_session("a", "sa", t(100), t(200), 2)
                .await
                .unwrap()
        );
        assert!(
            store
                .add_browser_session("b", "sb", t(100), t(300), 2)
                .await
                .unwrap()
        );
        assert!(
            !store
                .add_browser_session("c", "sc", t(150), t(300), 2)
                .await
                .unwrap()
        );
        assert_eq!(
            store.browser_session("a", t(150)).await.unwrap(),
            Some("sa".to_owned())
        );
        assert_eq!(store.browser_session("a", t(200)).await.unwrap(), None);
        assert!(
            store
                .add_browser_session("c", "sc", t(250), t(400), 2)
                .await
                .unwrap()
        );
        assert_eq!(
            store.end_browser_session("b").await.unwrap(),
            Some("sb".to_owned())
        );
        assert_eq!(store.end_browser_session("b").await.unwrap(), None);
        assert_eq!(store.browser_session("b", t(250)).await.unwrap(), None);
    })
    .await;
}

#[tokio::test]
async fn a_stopping_instance_gives_back_its_claims_and_its_lease_at_once() {
    on_each_backend(|store| async move {
        let mut runs = Vec::new();
        for i in 0..5 {
            runs.push(queued_run(&store, "alice", 2_000_000 + i).await);
        }
        assert_eq!(claimed(&store, "a", 100, 10).await.len(), 5);
        // Within a's claims, b gets nothing; once a gives them back, b gets them all.
        assert!(claimed(&store, "b", 101, 10).await.is_empty());
        assert_eq!(store.release_submit_claims("a").await.unwrap(), 5);
        assert_eq!(store.release_submit_claims("a").await.unwrap(), 0);
        let mut taken = claimed(&store, "b", 102, 10).await;
        taken.sort();
        runs.sort();
        assert_eq!(taken, runs);
        // The leader lease likewise: given up, it is another's at once.
        assert!(
            store
                .hold_leader_lease("reconciler", "a", t(100), t(200))
                .await
                .unwrap()
        );
        assert!(
            !store
                .hold_leader_lease("reconciler", "b", t(101), t(201))
                .await
                .unwrap()
        );
        assert!(!store.release_leader_lease("reconciler", "b").await.unwrap());
        assert!(store.release_leader_lease("reconciler", "a").await.unwrap());
        assert!(
            store
                .hold_leader_lease("reconciler", "b", t(102), t(202))
                .await
                .unwrap()
        );
    })
    .await;
}
