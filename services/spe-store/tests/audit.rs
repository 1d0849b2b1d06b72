//! The audit chain on both backends: appended in order, refused to change, and every kind of
//! tampering a database administrator could do (with the append-only triggers disabled) named
//! by `verify` at the right record.

use spe_test_support::store::*;

use serde_json::json;
use spe_core::secret::DatabaseUrl;
use spe_core::time::Timestamp;
use spe_core::{Actor, RunId, ServiceActor};
use spe_store::audit::{self, AuditEntry, AuditKind, AuditRecord, ChainBreak, ChainHead};
use spe_store::{Backend, Store};

/// Five records (seq 1..=5) of different kinds and actors.
async fn five(store: &Store) -> Vec<ChainHead> {
    let mut heads = Vec::new();
    for i in 1..=5i64 {
        let entry = if i % 2 == 0 {
            AuditEntry::new(AuditKind::TokenRefused, Actor::Service(ServiceActor::Api))
                .with("address", "192.0.2.7")
                .with("count", i)
        } else {
            AuditEntry::new(AuditKind::ShareAdded, Actor::Person(person("alice")))
                .run(RunId::new_random())
                .with("principal", json!({"issuer": TEST_ISSUER, "sub": "bob"}))
        };
        heads.push(
            audit::record(store, &entry, Timestamp::from_micros(1_000 * i))
                .await
                .unwrap(),
        );
    }
    heads
}

async fn check(store: &Store) -> Result<Option<ChainHead>, ChainBreak> {
    audit::verify(&audit::all_records(store).await.unwrap(), None)
}

/// What a DBA does first: the append-only triggers off.
async fn disable_triggers(store: &Store) {
    match store.backend() {
        Backend::Sqlite => {
            store
                .debug_execute("DROP TRIGGER audit_log_no_update")
                .await
                .unwrap();
            store
                .debug_execute("DROP TRIGGER audit_log_no_delete")
                .await
                .unwrap();
        }
        Backend::Postgres => {
            store
                .debug_execute("ALTER TABLE audit_log DISABLE TRIGGER USER")
                .await
                .unwrap();
        }
    }
}

async fn sql(store: &Store, text: &str) {
    store.debug_execute(text).await.unwrap();
}

#[tokio::test]
async fn records_chain_in_order_and_the_head_is_the_last() {
    on_each_backend(|store| async move {
        assert_eq!(audit::head(&store).await.unwrap(), None);
        let heads = five(&store).await;
        let records = audit::all_records(&store).await.unwrap();
        assert_eq!(records.len(), 5);
        assert_eq!(records[0].prev_sha256, audit::GENESIS);
        for pair in records.windows(2) {
            assert_eq!(pair[1].prev_sha256, pair[0].sha256);
            assert_eq!(pair[1].seq, pair[0].seq + 1);
        }
        assert_eq!(records[1].kind, "token.refused");
        assert_eq!(
            records[0].actor,
            json!({"issuer": TEST_ISSUER, "sub": "alice"})
        );
        assert_eq!(records[1].actor, json!({"service": "wes-api"}));
        assert_eq!(
            records[1].details,
            json!({"address": "192.0.2.7", "count": 2})
        );
        let head = audit::head(&store).await.unwrap().unwrap();
        assert_eq!(head, heads[4]);
        assert_eq!(head.seq, 5);
        assert_eq!(check(&store).await, Ok(Some(head.clone())));
        assert_eq!(
            audit::find(&store, &heads[2].sha256).await.unwrap(),
            Some(3)
        );
        assert!(
            audit::contains(&store, &heads[2].sha256.to_uppercase())
                .await
                .unwrap()
        );
        assert!(!audit::contains(&store, audit::GENESIS).await.unwrap());
        assert_eq!(audit::records(&store, 3, 10).await.unwrap().len(), 2);
    })
    .await;
}

#[tokio::test]
async fn the_log_refuses_updates_and_deletes() {
    on_each_backend(|store| async move {
        five(&store).await;
        for statement in [
            "UPDATE audit_log SET details = '{}' WHERE seq = 2",
            "DELETE FROM audit_log WHERE seq = 5",
        ] {
            let err = store.debug_execute(statement).await.unwrap_err();
            assert!(
                err.to_string().contains("audit_log is append-only"),
                "{err}"
            );
        }
        if store.backend() == Backend::Postgres {
            let err = store.debug_execute("TRUNCATE audit_log").await.unwrap_err();
            assert!(
                err.to_string().contains("audit_log is append-only"),
                "{err}"
            );
        }
        assert!(check(&store).await.is_ok());
    })
    .await;
}

#[tokio::test]
async fn a_changed_field_is_named() {
    on_each_backend(|store| async move {
        five(&store).await;
        disable_triggers(&store).await;
        sql(&store, "UPDATE audit_log SET details = '{\"address\":\"198.51.100.1\",\"count\":4}' WHERE seq = 4").await;
        assert_eq!(check(&store).await, Err(ChainBreak::Changed { seq: 4 }));
    })
    .await;
    on_each_backend(|store| async move {
        five(&store).await;
        disable_triggers(&store).await;
        sql(
            &store,
            "UPDATE audit_log SET actor = 'https://login.example.org/oidc mallory' WHERE seq = 3",
        )
        .await;
        let broken = check(&store).await.unwrap_err();
        assert_eq!(broken, ChainBreak::Changed { seq: 3 });
        assert_eq!(
            broken.to_string(),
            "record 3 was changed: its fields no longer give its SHA-256"
        );
    })
    .await;
}

#[tokio::test]
async fn a_deleted_record_is_named() {
    // Deleted, the others left where they were.
    on_each_backend(|store| async move {
        five(&store).await;
        disable_triggers(&store).await;
        sql(&store, "DELETE FROM audit_log WHERE seq = 3").await;
        let broken = check(&store).await.unwrap_err();
        assert_eq!(
            broken,
            ChainBreak::Deleted {
                seq: 3,
                before: 2,
                after: 4
            }
        );
        assert_eq!(
            broken.to_string(),
            "record 3 was deleted: the chain goes from 2 to 4"
        );
    })
    .await;
    // Deleted and the later ones renumbered to hide the gap.
    on_each_backend(|store| async move {
        five(&store).await;
        disable_triggers(&store).await;
        sql(&store, "DELETE FROM audit_log WHERE seq = 3").await;
        for s in 4..=5 {
            sql(
                &store,
                &format!("UPDATE audit_log SET seq = {} WHERE seq = {s}", s - 1),
            )
            .await;
        }
        assert_eq!(
            check(&store).await,
            Err(ChainBreak::Deleted {
                seq: 3,
                before: 2,
                after: 4
            })
        );
    })
    .await;
    // The newest deleted: only an anchor kept outside the database shows it.
    on_each_backend(|store| async move {
        let heads = five(&store).await;
        disable_triggers(&store).await;
        sql(&store, "DELETE FROM audit_log WHERE seq = 5").await;
        let records = audit::all_records(&store).await.unwrap();
        assert_eq!(audit::verify(&records, None), Ok(Some(heads[3].clone())));
        assert_eq!(
            audit::verify(&records, Some(&heads[4])),
            Err(ChainBreak::Truncated {
                anchored: heads[4].to_string(),
                last: 4
            })
        );
    })
    .await;
}

#[tokio::test]
async fn an_inserted_record_is_named() {
    on_each_backend(|store| async move {
        let heads = five(&store).await;
        disable_triggers(&store).await;
        for s in (3..=5).rev() {
            sql(&store, &format!("UPDATE audit_log SET seq = {} WHERE seq = {s}", s + 1)).await;
        }
        // A forger who knows the hash rule: the inserted record itself is well formed.
        let mut forged = AuditRecord {
            seq: 3,
            at: 2_500,
            kind: "share.removed".into(),
            actor: json!({"issuer": TEST_ISSUER, "sub": "mallory"}),
            run_id: None,
            details: json!({}),
            prev_sha256: heads[1].sha256.clone(),
            sha256: String::new(),
        };
        forged.sha256 = forged.computed_sha256();
        sql(
            &store,
            &format!(
                "INSERT INTO audit_log (seq, at, kind, actor, run_id, details, prev_sha256, sha256) \
                 VALUES (3, 2500, 'share.removed', '{TEST_ISSUER} mallory', NULL, '{{}}', '{}', '{}')",
                forged.prev_sha256, forged.sha256
            ),
        )
        .await;
        let broken = check(&store).await.unwrap_err();
        assert_eq!(broken, ChainBreak::Inserted { seq: 3, moved_to: 4 });
        assert_eq!(
            broken.to_string(),
            "record 3 was inserted: the record that was 3 now sits at 4"
        );
    })
    .await;
}

#[tokio::test]
async fn swapped_records_are_named() {
    on_each_backend(|store| async move {
        five(&store).await;
        disable_triggers(&store).await;
        sql(&store, "UPDATE audit_log SET seq = 1000 WHERE seq = 2").await;
        sql(&store, "UPDATE audit_log SET seq = 2 WHERE seq = 3").await;
        sql(&store, "UPDATE audit_log SET seq = 3 WHERE seq = 1000").await;
        let broken = check(&store).await.unwrap_err();
        assert_eq!(broken, ChainBreak::Reordered { seq: 2, was: 3 });
        assert_eq!(
            broken.to_string(),
            "records were reordered: record 2 holds what was record 3"
        );
    })
    .await;
}

#[tokio::test]
async fn a_rewritten_chain_fails_against_its_anchor() {
    on_each_backend(|store| async move {
        let heads = five(&store).await;
        disable_triggers(&store).await;
        // Everything from record 4 on rewritten consistently: the chain alone looks whole.
        let records = audit::all_records(&store).await.unwrap();
        let mut rewritten = records.clone();
        for i in 3..5 {
            rewritten[i].details = json!({"address": "203.0.113.9", "count": 0});
            rewritten[i].prev_sha256 = rewritten[i - 1].sha256.clone();
            rewritten[i].sha256 = rewritten[i].computed_sha256();
        }
        assert!(audit::verify(&rewritten, None).is_ok());
        assert_eq!(
            audit::verify(&rewritten, Some(&heads[4])),
            Err(ChainBreak::AnchorMismatch {
                seq: 5,
                anchored: heads[4].to_string()
            })
        );
    })
    .await;
}

/// Several instances (pools) appending at once make one chain, no fork, no gap.
#[tokio::test]
async fn concurrent_writers_make_one_chain() {
    async fn hammer(stores: Vec<Store>) {
        let mut tasks = Vec::new();
        for (n, store) in stores.into_iter().enumerate() {
            tasks.push(tokio::spawn(async move {
                for i in 0..15 {
                    let entry =
                        AuditEntry::new(AuditKind::TokenRefused, Actor::Service(ServiceActor::Api))
                            .with("writer", n)
                            .with("i", i);
                    audit::record(&store, &entry, Timestamp::from_micros(i))
                        .await
                        .unwrap();
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let first = sqlite_store(&dir).await;
    let url = DatabaseUrl::new(format!("sqlite://{}/nested/spe.db", dir.path().display()));
    let mut stores = vec![first.clone()];
    for _ in 0..2 {
        stores.push(Store::connect(&url, 4).await.unwrap());
    }
    hammer(stores).await;
    assert_eq!(check(&first).await.unwrap().unwrap().seq, 45);

    if let Some(url) = fresh_postgres_url().await {
        let mut stores = Vec::new();
        for _ in 0..3 {
            stores.push(Store::connect(&url, 4).await.unwrap());
        }
        let one = stores[0].clone();
        hammer(stores).await;
        assert_eq!(check(&one).await.unwrap().unwrap().seq, 45);
    }
}

/// The store's changes write their records in their own transaction: each change is followed
/// by exactly its record; a refused change leaves none; no record carries a dataset location.
#[tokio::test]
async fn changes_carry_their_records() {
    use spe_store::{DeletedRunData, NewDataset, SharePrincipal, Transition};
    on_each_backend(|store| async move {
        let owner = person("alice");
        let run = queued_run(&store, "alice", 10).await;
        let ds = NewDataset {
            id: "cohort-1".into(),
            description: "a cohort".into(),
            location: "/secret/place/cohort-1".into(),
            crypt4gh: true,
            visa: None,
            created_by: person("carol"),
            at: Timestamp::from_micros(20),
        };
        store.insert_dataset(&ds).await.unwrap().unwrap();
        // Refused (exists already): no record.
        assert!(store.insert_dataset(&ds).await.unwrap().is_err());
        let bob = SharePrincipal::User(person("bob"));
        assert!(
            store
                .add_share(run, &bob, &owner, Timestamp::from_micros(30))
                .await
                .unwrap()
        );
        assert!(
            !store
                .add_share(run, &bob, &owner, Timestamp::from_micros(31))
                .await
                .unwrap()
        );
        assert!(
            store
                .remove_share(run, &bob, &owner, Timestamp::from_micros(40))
                .await
                .unwrap()
        );
        let system = Actor::Service(ServiceActor::Reconciler);
        store
            .transition(&Transition {
                run,
                from: &[spe_core::RunState::Queued],
                to: spe_core::RunState::Complete,
                actor: &system,
                reason: None,
                exit_code: Some(0),
                at: Timestamp::from_micros(50),
            })
            .await
            .unwrap()
            .unwrap();
        let retention = Actor::Service(ServiceActor::Retention);
        let deleted = DeletedRunData {
            run,
            actor: &retention,
            run_dir: Some("/data/x"),
            files: 3,
            bytes: 42,
            released_objects: &[],
            cause: "retention",
            at: Timestamp::from_micros(60),
        };
        assert!(store.record_run_data_deleted(&deleted).await.unwrap());
        assert!(!store.record_run_data_deleted(&deleted).await.unwrap());
        assert_eq!(
            store.data_deleted_at(run).await.unwrap(),
            Some(Timestamp::from_micros(60))
        );

        let records = audit::all_records(&store).await.unwrap();
        let kinds: Vec<&str> = records.iter().map(|r| r.kind.as_str()).collect();
        assert_eq!(
            kinds,
            [
                "run.submitted",
                "dataset.registered",
                "share.added",
                "share.removed",
                "run.ended",
                "run.data_deleted"
            ]
        );
        assert_eq!(records[0].run_id.as_deref(), Some(run.to_string().as_str()));
        assert_eq!(records[0].details, json!({"workflow": "quals@1.0.0"}));
        assert_eq!(
            records[1].details,
            json!({"dataset": "cohort-1", "crypt4gh": true, "visa_required": false})
        );
        assert!(
            !records
                .iter()
                .any(|r| r.details.to_string().contains("/secret/place"))
        );
        assert_eq!(
            records[2].details,
            json!({"principal": {"issuer": TEST_ISSUER, "sub": "bob"}})
        );
        assert_eq!(records[4].actor, json!({"service": "reconciler"}));
        assert_eq!(records[4].details["state"], "COMPLETE");
        assert_eq!(records[4].details["exit_code"], 0);
        assert_eq!(records[5].details["cause"], "retention");
        assert_eq!(records[5].details["files"], 3);
        assert_eq!(
            records[5].details["deleted_at"],
            "1970-01-01T00:00:00.000060Z"
        );
        assert!(audit::verify(&records, None).is_ok());
        assert!(
            store
                .runs_due_for_deletion(Timestamp::from_micros(1_000), None, 10)
                .await
                .unwrap()
                .is_empty()
        );
    })
    .await;
}

/// The crawler's scan and the review: held and refused files, a vote and the decision it
/// completes, each a record (the vote's comment never is).
#[tokio::test]
async fn egress_and_review_carry_their_records() {
    use spe_store::{EgressState, NewEgressFile, NewVote, Vote};
    on_each_backend(|store| async move {
        let run = queued_run(&store, "alice", 10).await;
        let file = |path: &str, state| NewEgressFile {
            path: path.into(),
            state,
            size: 7,
            reason: Some("a reason".into()),
        };
        let files = [
            file("results/table.csv", EgressState::Held),
            file("results/raw.bam", EgressState::Refused),
            file("results/ok.txt", EgressState::Pending),
        ];
        store
            .record_egress_scan(run, &files, Timestamp::from_micros(20))
            .await
            .unwrap();
        // A second scan records nothing new.
        store
            .record_egress_scan(run, &files, Timestamp::from_micros(21))
            .await
            .unwrap();
        let sha = "ab".repeat(32);
        store
            .cast_vote(
                NewVote {
                    run,
                    path: "results/table.csv",
                    reviewer: &person("carol"),
                    vote: Vote::Approve,
                    comment: Some("cell 3 has 4 patients in it"),
                    sha256: &sha,
                    approvals_required: 1,
                },
                Timestamp::from_micros(30),
            )
            .await
            .unwrap();
        let records = audit::all_records(&store).await.unwrap();
        let kinds: Vec<&str> = records.iter().map(|r| r.kind.as_str()).collect();
        assert_eq!(
            kinds,
            [
                "run.submitted",
                "file.held",
                "file.refused",
                "review.vote",
                "file.approved"
            ]
        );
        assert_eq!(records[1].actor, json!({"service": "crawler"}));
        assert_eq!(
            records[1].details,
            json!({"path": "results/table.csv", "size": 7, "reason": "a reason"})
        );
        assert_eq!(
            records[3].details,
            json!({"path": "results/table.csv", "vote": "approve", "sha256": sha, "round": 0, "tally": "approved"})
        );
        assert_eq!(records[4].actor, json!({"issuer": TEST_ISSUER, "sub": "carol"}));
        assert!(!records.iter().any(|r| r.details.to_string().contains("patients")));
        assert!(audit::verify(&records, None).is_ok());
    })
    .await;
}

/// Runs due for deletion: ended before the cut-off, not deleted yet, paged by (end, id).
#[tokio::test]
async fn runs_due_for_deletion_are_paged_oldest_first() {
    use spe_store::{DeletedRunData, Transition};
    on_each_backend(|store| async move {
        let reconciler = Actor::Service(ServiceActor::Reconciler);
        let mut ended = Vec::new();
        for end in [300, 100, 200] {
            let run = queued_run(&store, "alice", 10).await;
            store
                .transition(&Transition {
                    run,
                    from: &[spe_core::RunState::Queued],
                    to: spe_core::RunState::Complete,
                    actor: &reconciler,
                    reason: None,
                    exit_code: Some(0),
                    at: Timestamp::from_micros(end),
                })
                .await
                .unwrap()
                .unwrap();
            ended.push(run);
        }
        let live = queued_run(&store, "alice", 10).await;
        let cutoff = Timestamp::from_micros(250);
        let first = store.runs_due_for_deletion(cutoff, None, 1).await.unwrap();
        assert_eq!(first.iter().map(|r| r.id).collect::<Vec<_>>(), [ended[1]]);
        let cursor = Some((first[0].end_time.unwrap(), first[0].id));
        let next = store
            .runs_due_for_deletion(cutoff, cursor, 10)
            .await
            .unwrap();
        assert_eq!(next.iter().map(|r| r.id).collect::<Vec<_>>(), [ended[2]]);
        let all = store
            .runs_due_for_deletion(Timestamp::from_micros(1_000), None, 10)
            .await
            .unwrap();
        assert_eq!(
            all.iter().map(|r| r.id).collect::<Vec<_>>(),
            [ended[1], ended[2], ended[0]]
        );
        assert!(!all.iter().any(|r| r.id == live));
        let retention = Actor::Service(ServiceActor::Retention);
        store
            .record_run_data_deleted(&DeletedRunData {
                run: ended[1],
                actor: &retention,
                run_dir: None,
                files: 0,
                bytes: 0,
                released_objects: &[],
                cause: "retention",
                at: Timestamp::from_micros(400),
            })
            .await
            .unwrap();
        let left = store
            .runs_due_for_deletion(Timestamp::from_micros(1_000), None, 10)
            .await
            .unwrap();
        assert_eq!(left.len(), 2);
    })
    .await;
}
