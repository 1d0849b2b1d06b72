//! Results access bookkeeping (shares, issued links), run against SQLite (always) and
//! PostgreSQL (when `SPE_TEST_POSTGRES_URL` names a server).

mod support;

use support::*;

use spe_core::RunId;
use spe_core::time::Timestamp;
use spe_store::{NewRun, ResultLink, ShareKind, Store};

fn t(micros: i64) -> Timestamp {
    Timestamp::from_micros(micros)
}

async fn run_of(store: &Store, owner: &str, at: i64) -> RunId {
    let id = RunId::new_random();
    store
        .insert_run(&NewRun {
            id,
            owner: owner.into(),
            submission: submission("quals@1.0.0", &[]),
            run_dir: format!("/data/{id}"),
            created_at: t(at),
        })
        .await
        .unwrap();
    id
}

const GROUP: &str = "urn:geant:lifescience-ri.eu:group:vo:collab#login.aai.lifescience-ri.eu";

#[tokio::test]
async fn shares_decide_who_sees_results() {
    on_each_backend(|store| async move {
        let a = run_of(&store, "alice", 1_000).await;
        let b = run_of(&store, "alice", 2_000).await;
        let c = run_of(&store, "carol", 3_000).await;
        let none: Vec<String> = vec![];
        let groups = vec!["urn:other".to_owned(), GROUP.to_owned()];

        assert!(!store.is_shared_with(a, "bob", &groups).await.unwrap());
        assert!(
            store
                .add_share(a, ShareKind::Subject, "bob", "alice", t(5))
                .await
                .unwrap()
        );
        assert!(
            !store
                .add_share(a, ShareKind::Subject, "bob", "alice", t(6))
                .await
                .unwrap()
        );
        assert!(
            store
                .add_share(b, ShareKind::Group, GROUP, "alice", t(7))
                .await
                .unwrap()
        );
        assert!(store.is_shared_with(a, "bob", &none).await.unwrap());
        assert!(!store.is_shared_with(b, "bob", &none).await.unwrap());
        assert!(store.is_shared_with(b, "dave", &groups).await.unwrap());
        // A subject share is not a group share of the same text, nor the reverse.
        assert!(
            !store
                .is_shared_with(a, "x", &["bob".to_owned()])
                .await
                .unwrap()
        );
        assert!(!store.is_shared_with(b, GROUP, &none).await.unwrap());

        let ids = |runs: Vec<spe_store::RunRecord>| runs.iter().map(|r| r.id).collect::<Vec<_>>();
        assert_eq!(
            ids(store.result_runs("bob", &groups, 100).await.unwrap()),
            vec![b, a]
        );
        assert_eq!(
            ids(store.result_runs("bob", &none, 100).await.unwrap()),
            vec![a]
        );
        assert_eq!(
            ids(store.result_runs("carol", &none, 100).await.unwrap()),
            vec![c]
        );
        assert_eq!(
            ids(store.result_runs("alice", &none, 1).await.unwrap()),
            vec![b]
        );

        let shares = store.shares(a).await.unwrap();
        assert_eq!(shares.len(), 1);
        assert_eq!(shares[0].kind, ShareKind::Subject);
        assert_eq!(shares[0].principal, "bob");
        assert_eq!(shares[0].created_by, "alice");
        assert_eq!(shares[0].created_at, t(5));
        assert!(
            store
                .remove_share(a, ShareKind::Subject, "bob")
                .await
                .unwrap()
        );
        assert!(
            !store
                .remove_share(a, ShareKind::Subject, "bob")
                .await
                .unwrap()
        );
        assert!(!store.is_shared_with(a, "bob", &groups).await.unwrap());
    })
    .await;
}

#[tokio::test]
async fn issued_links_are_recorded_and_cannot_be_changed() {
    on_each_backend(|store| async move {
        let run = run_of(&store, "alice", 1_000).await;
        for (i, who) in ["alice", "bob"].iter().enumerate() {
            let at = i64::try_from(i).unwrap() * 10 + 100;
            store
                .record_result_link(&ResultLink {
                    id: format!("link-{i}"),
                    run_id: run,
                    path: "out/a.csv".into(),
                    object_key: format!("{run}/out/a.csv"),
                    issued_to: (*who).into(),
                    issued_at: t(at),
                    expires_at: t(at + 300_000_000),
                })
                .await
                .unwrap();
        }
        let links = store.result_links(run).await.unwrap();
        assert_eq!(links.len(), 2);
        assert_eq!(links[1].issued_to, "bob");
        assert_eq!(links[1].expires_at, t(110 + 300_000_000));
        assert!(
            store
                .debug_execute("UPDATE result_links SET issued_to = 'eve'")
                .await
                .is_err()
        );
        assert!(
            store
                .debug_execute("DELETE FROM result_links")
                .await
                .is_err()
        );
    })
    .await;
}
