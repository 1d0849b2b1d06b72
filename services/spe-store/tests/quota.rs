//! Quotas on both backends: a submission over a limit stores nothing and names the limit;
//! another user is not affected; usage is summed per owner and workflow.

use spe_core::config::QuotaLimits;
use spe_core::time::Timestamp;
use spe_core::{RunId, RunState};
use spe_store::{NewRun, Transition};
use spe_test_support::store::*;

fn run_of(owner: &str, cores: &str, at: i64) -> NewRun {
    let mut submission = submission("quals@1.0.0", &[("n", "1")]);
    submission
        .workflow_engine_parameters
        .insert("cores".into(), cores.into());
    submission
        .workflow_engine_parameters
        .insert("memory_mb".into(), "100".into());
    NewRun {
        id: RunId::new_random(),
        owner: person(owner),
        submission,
        run_dir: "/nonexistent".into(),
        created_at: Timestamp::from_micros(at),
    }
}

#[tokio::test]
async fn a_submission_over_a_limit_stores_nothing_and_names_it() {
    on_each_backend(|store| async move {
        let limits = QuotaLimits {
            live_runs: 2,
            live_cores: 5,
            submissions_per_minute: 100,
            ..QuotaLimits::default()
        };
        let t0 = 1_000_000_000_000;
        for i in 0..2 {
            store
                .insert_run_within(&run_of("alice", "2", t0 + i), None, Some(&limits))
                .await
                .unwrap()
                .unwrap();
        }
        let refused = run_of("alice", "1", t0 + 10);
        let over = store
            .insert_run_within(&refused, None, Some(&limits))
            .await
            .unwrap()
            .unwrap_err();
        assert_eq!(over.quota, "live_runs");
        assert_eq!((over.would_have, over.limit), (3, 2));
        assert_eq!(
            over.to_string(),
            "quota live_runs exceeded: 3 runs not ended yet with this one, the limit is 2; try \
             again in 60 s"
        );
        assert!(
            store.get_run(refused.id).await.unwrap().is_none(),
            "nothing of the refused run is stored"
        );
        // Cores are summed over live runs.
        let cores = QuotaLimits {
            live_runs: 10,
            ..limits
        };
        let over = store
            .insert_run_within(&run_of("alice", "2", t0 + 11), None, Some(&cores))
            .await
            .unwrap()
            .unwrap_err();
        assert_eq!((over.quota, over.would_have), ("live_cores", 6));
        // Another user is not affected.
        let bobs = run_of("bob", "2", t0 + 12);
        store
            .insert_run_within(&bobs, None, Some(&limits))
            .await
            .unwrap()
            .unwrap();
        // Bob's run runs for an hour on its 2 cores: wall and core hours from its start and end.
        let reconciler = spe_core::Actor::Service(spe_core::ServiceActor::Reconciler);
        for (from, to, at) in [
            (RunState::Queued, RunState::Running, t0 + 100),
            (
                RunState::Running,
                RunState::Complete,
                t0 + 100 + 3_600_000_000,
            ),
        ] {
            store
                .transition(&Transition {
                    run: bobs.id,
                    from: &[from],
                    to,
                    actor: &reconciler,
                    reason: None,
                    exit_code: None,
                    at: Timestamp::from_micros(at),
                })
                .await
                .unwrap()
                .unwrap();
        }
        // Submissions per minute: the oldest in the window says when to try again.
        let burst = QuotaLimits {
            submissions_per_minute: 2,
            ..QuotaLimits::default()
        };
        let over = store
            .insert_run_within(&run_of("alice", "1", t0 + 20_000_000), None, Some(&burst))
            .await
            .unwrap()
            .unwrap_err();
        assert_eq!(over.quota, "submissions_per_minute");
        assert_eq!(over.retry_after_seconds, 41);

        let usage = store.usage(None, Timestamp::from_micros(0)).await.unwrap();
        assert_eq!(usage.len(), 2);
        assert_eq!(usage[0].owner, person("alice"));
        assert_eq!((usage[0].runs, usage[0].live_runs), (2, 2));
        assert_eq!((usage[0].live_cores, usage[0].live_memory_mb), (4, 200));
        let mine = store
            .usage(Some(&person("bob")), Timestamp::from_micros(0))
            .await
            .unwrap();
        assert_eq!(mine.len(), 1);
        assert_eq!(mine[0].workflow_url, "quals@1.0.0");
        assert_eq!((mine[0].runs, mine[0].live_runs), (1, 0));
        assert_eq!((mine[0].wall_hours, mine[0].core_hours), (1.0, 2.0));
    })
    .await;
}

/// The windows are bounded by per-owner buckets of fixed minutes and days (0023) and counted
/// exactly only near a limit: a window that spans two buckets counts both, and a submission
/// stamped a little earlier than the newest one (another instance's clock) is counted where it
/// belongs.
#[tokio::test]
async fn the_submission_windows_count_across_bucket_edges_and_late_stamps() {
    on_each_backend(|store| async move {
        let limits = QuotaLimits {
            submissions_per_minute: 2,
            live_runs: 100,
            ..QuotaLimits::default()
        };
        let minute = 60_000_000;
        let t0 = 1_000_000 * minute; // the start of a fixed minute
        let submit = |owner: &'static str, at: i64| {
            let store = store.clone();
            async move {
                store
                    .insert_run_within(&run_of(owner, "1", at), None, Some(&limits))
                    .await
                    .unwrap()
            }
        };
        // Two at the end of one fixed minute; the third just after its edge is in the same
        // sliding minute, so it goes over although its own bucket holds only itself.
        submit("alice", t0 + minute - 500_000).await.unwrap();
        submit("alice", t0 + minute - 100_000).await.unwrap();
        let over = submit("alice", t0 + minute + 200_000).await.unwrap_err();
        assert_eq!((over.quota, over.would_have), ("submissions_per_minute", 3));
        assert_eq!(over.retry_after_seconds, 60);
        // A minute after the first, one has left the window.
        submit("alice", t0 + 2 * minute - 400_000).await.unwrap();

        // Bob, three a minute: two in the next fixed minute, then one stamped in the minute
        // before (accepted: three in its minute), then one that the late one puts over.
        let three = QuotaLimits {
            submissions_per_minute: 3,
            ..limits
        };
        let submit_3 = |at: i64| {
            let store = store.clone();
            async move {
                store
                    .insert_run_within(&run_of("bob", "1", at), None, Some(&three))
                    .await
                    .unwrap()
            }
        };
        submit_3(t0 + minute + 1_000_000).await.unwrap();
        submit_3(t0 + minute + 2_000_000).await.unwrap();
        submit_3(t0 + minute - 1_000_000).await.unwrap();
        let over = submit_3(t0 + minute + 3_000_000).await.unwrap_err();
        assert_eq!((over.quota, over.would_have), ("submissions_per_minute", 4));

        // Far under every limit, nothing is counted and everything is accepted.
        let roomy = QuotaLimits {
            submissions_per_minute: 1000,
            live_runs: 1000,
            ..QuotaLimits::default()
        };
        for i in 0..20 {
            store
                .insert_run_within(
                    &run_of("carol", "1", t0 + i * 1_000_000),
                    None,
                    Some(&roomy),
                )
                .await
                .unwrap()
                .unwrap();
        }
    })
    .await;
}

/// What is live is kept per owner as runs come and end (`owner_live_usage`): a run that ends
/// gives its run, cores and memory back at once, and only to its owner.
#[tokio::test]
async fn a_run_that_ends_gives_back_its_live_runs_cores_and_memory() {
    on_each_backend(|store| async move {
        let limits = QuotaLimits {
            live_runs: 1,
            live_cores: 3,
            live_memory_mb: 100,
            ..QuotaLimits::default()
        };
        let t0 = 1_700_000_000_000_000;
        let first = run_of("carol", "3", t0);
        store
            .insert_run_within(&first, None, Some(&limits))
            .await
            .unwrap()
            .unwrap();
        let over = store
            .insert_run_within(&run_of("carol", "1", t0 + 1), None, Some(&limits))
            .await
            .unwrap()
            .unwrap_err();
        assert_eq!((over.quota, over.would_have), ("live_runs", 2));
        // Dave is not Carol.
        store
            .insert_run_within(&run_of("dave", "3", t0 + 2), None, Some(&limits))
            .await
            .unwrap()
            .unwrap();
        let owner = spe_core::Actor::Person(person("carol"));
        for (from, to) in [
            (RunState::Queued, RunState::Running),
            (RunState::Running, RunState::Canceling),
            (RunState::Canceling, RunState::Canceled),
        ] {
            store
                .transition(&Transition {
                    run: first.id,
                    from: &[from],
                    to,
                    actor: &owner,
                    reason: None,
                    exit_code: None,
                    at: Timestamp::from_micros(t0 + 3),
                })
                .await
                .unwrap()
                .unwrap();
        }
        store
            .insert_run_within(&run_of("carol", "3", t0 + 4), None, Some(&limits))
            .await
            .unwrap()
            .unwrap();
        let over = store
            .insert_run_within(&run_of("dave", "1", t0 + 5), None, Some(&limits))
            .await
            .unwrap()
            .unwrap_err();
        assert_eq!((over.quota, over.would_have), ("live_runs", 2));
    })
    .await;
}

/// The triggers that keep `owner_live_usage` name the live states in SQL (0017_hot_paths), a
/// second copy of the store's list: every state a run can move to counts as live exactly when
/// it has not ended (UNKNOWN aside), on both backends.
#[tokio::test]
async fn the_kept_live_usage_counts_exactly_the_states_that_have_not_ended() {
    on_each_backend(|store| async move {
        let limits = QuotaLimits {
            live_runs: 1,
            ..QuotaLimits::default()
        };
        let t0 = 1_700_000_000_000_000;
        for (i, state) in RunState::ALL.into_iter().enumerate() {
            let owner = format!("owner-{i}");
            let first = run_of(&owner, "1", t0);
            store
                .insert_run_within(&first, None, Some(&limits))
                .await
                .unwrap()
                .unwrap();
            if state != RunState::Queued {
                store
                    .transition(&Transition {
                        run: first.id,
                        from: &[RunState::Queued],
                        to: state,
                        actor: &spe_core::Actor::Person(person(&owner)),
                        reason: None,
                        exit_code: None,
                        at: Timestamp::from_micros(t0 + 1),
                    })
                    .await
                    .unwrap()
                    .unwrap();
            }
            let live = !state.is_terminal() && state != RunState::Unknown;
            let second = store
                .insert_run_within(&run_of(&owner, "1", t0 + 2), None, Some(&limits))
                .await
                .unwrap();
            assert_eq!(second.is_err(), live, "{state}: live {live}");
        }
    })
    .await;
}

/// Migration 0023 fills the buckets from the runs already stored: right after it, a window
/// holding runs from before it is still counted.
#[tokio::test]
async fn runs_stored_before_the_buckets_count_in_the_windows_after_the_migration() {
    let dir = tempfile::tempdir().unwrap();
    let sqlite = spe_core::secret::DatabaseUrl::new(format!(
        "sqlite://{}/before-buckets.db",
        dir.path().display()
    ));
    let postgres = spe_test_support::store::fresh_postgres_url().await;
    for url in std::iter::once(sqlite).chain(postgres) {
        let old = spe_store::Store::debug_connect_migrated_until(&url, 22)
            .await
            .unwrap();
        let t0 = 1_000_000 * 60_000_000;
        for at in [t0 + 10_000_000, t0 + 20_000_000] {
            old.insert_run(&run_of("alice", "1", at)).await.unwrap();
        }
        old.close().await;

        let store = spe_store::Store::connect(&url, 2).await.unwrap();
        let limits = QuotaLimits {
            submissions_per_minute: 2,
            ..QuotaLimits::default()
        };
        let over = store
            .insert_run_within(&run_of("alice", "1", t0 + 30_000_000), None, Some(&limits))
            .await
            .unwrap()
            .unwrap_err();
        assert_eq!((over.quota, over.would_have), ("submissions_per_minute", 3));
        store.close().await;
    }
}
