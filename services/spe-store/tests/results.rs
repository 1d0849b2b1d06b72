//! Results access bookkeeping (shares, issued links), run against SQLite (always) and
//! PostgreSQL (when `SPE_TEST_POSTGRES_URL` names a server).

use spe_test_support::store::*;

use spe_core::time::Timestamp;
use spe_core::{Group, Subject};
use spe_store::{ResultLink, ShareKind, SharePrincipal};

fn t(micros: i64) -> Timestamp {
    Timestamp::from_micros(micros)
}

use spe_test_support::store::person as p;

fn g(urn: &str) -> Group {
    Group::new(TEST_ISSUER, urn).unwrap()
}

fn user(sub: &str) -> SharePrincipal {
    SharePrincipal::User(p(sub))
}

const GROUP: &str = "urn:geant:lifescience-ri.eu:group:vo:collab#login.aai.lifescience-ri.eu";

#[tokio::test]
async fn shares_decide_who_sees_results() {
    on_each_backend(|store| async move {
        let a = queued_run(&store, "alice", 1_000).await;
        let b = queued_run(&store, "alice", 2_000).await;
        let c = queued_run(&store, "carol", 3_000).await;
        let none: Vec<Group> = vec![];
        let groups = vec![g("urn:other"), g(GROUP)];

        assert!(!store.is_shared_with(a, &p("bob"), &groups).await.unwrap());
        assert!(
            store
                .add_share(a, &user("bob"), &p("alice"), t(5))
                .await
                .unwrap()
        );
        assert!(
            !store
                .add_share(a, &user("bob"), &p("alice"), t(6))
                .await
                .unwrap()
        );
        assert!(
            store
                .add_share(b, &SharePrincipal::Group(g(GROUP)), &p("alice"), t(7))
                .await
                .unwrap()
        );
        assert!(store.is_shared_with(a, &p("bob"), &none).await.unwrap());
        assert!(!store.is_shared_with(b, &p("bob"), &none).await.unwrap());
        assert!(store.is_shared_with(b, &p("dave"), &groups).await.unwrap());
        // A subject share is not a group share of the same text, nor the reverse.
        assert!(!store.is_shared_with(a, &p("x"), &[g("bob")]).await.unwrap());
        assert!(!store.is_shared_with(b, &p(GROUP), &none).await.unwrap());
        // The same sub, or the same group URN, from another issuer is someone else.
        let elsewhere = "http://127.0.0.1:1/other-issuer";
        let other_bob = Subject::new(elsewhere, "bob").unwrap();
        let other_group = Group::new(elsewhere, GROUP).unwrap();
        assert!(!store.is_shared_with(a, &other_bob, &none).await.unwrap());
        assert!(
            !store
                .is_shared_with(b, &other_bob, std::slice::from_ref(&other_group))
                .await
                .unwrap()
        );
        assert!(
            store
                .result_runs(&other_bob, &[other_group], 100)
                .await
                .unwrap()
                .is_empty()
        );

        let ids = |runs: Vec<spe_store::RunRecord>| runs.iter().map(|r| r.id).collect::<Vec<_>>();
        assert_eq!(
            ids(store.result_runs(&p("bob"), &groups, 100).await.unwrap()),
            vec![b, a]
        );
        assert_eq!(
            ids(store.result_runs(&p("bob"), &none, 100).await.unwrap()),
            vec![a]
        );
        assert_eq!(
            ids(store.result_runs(&p("carol"), &none, 100).await.unwrap()),
            vec![c]
        );
        assert_eq!(
            ids(store.result_runs(&p("alice"), &none, 1).await.unwrap()),
            vec![b]
        );

        let shares = store.shares(a).await.unwrap();
        assert_eq!(shares.len(), 1);
        assert_eq!(shares[0].principal.kind(), ShareKind::Subject);
        assert_eq!(shares[0].principal, user("bob"));
        assert_eq!(shares[0].created_by, p("alice"));
        assert_eq!(shares[0].created_at, t(5));
        assert!(
            store
                .remove_share(a, &user("bob"), &p("alice"), Timestamp::from_micros(9))
                .await
                .unwrap()
        );
        assert!(
            !store
                .remove_share(a, &user("bob"), &p("alice"), Timestamp::from_micros(9))
                .await
                .unwrap()
        );
        assert!(!store.is_shared_with(a, &p("bob"), &groups).await.unwrap());
    })
    .await;
}

#[tokio::test]
async fn issued_links_are_recorded_and_cannot_be_changed() {
    on_each_backend(|store| async move {
        let run = queued_run(&store, "alice", 1_000).await;
        for (i, who) in ["alice", "bob"].iter().enumerate() {
            let at = i64::try_from(i).unwrap() * 10 + 100;
            store
                .record_result_link(&ResultLink {
                    id: format!("link-{i}"),
                    run_id: run,
                    path: "out/a.csv".into(),
                    object_key: format!("{run}/out/a.csv"),
                    issued_to: p(who),
                    issued_at: t(at),
                    expires_at: t(at + 300_000_000),
                })
                .await
                .unwrap();
        }
        let links = store.result_links(run).await.unwrap();
        assert_eq!(links.len(), 2);
        assert_eq!(links[1].issued_to, p("bob"));
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
