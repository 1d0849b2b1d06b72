//! The egress review's contract on both backends: votes per file and round, decisions, resets,
//! returns and resubmissions, revocations and overdue reports.

use spe_test_support::store::*;

use spe_core::time::Timestamp;
use spe_core::{RunId, RunState};
use spe_store::{
    EgressOutcome, EgressState, NewEgressFile, NewVote, RequestState, ReviewError, ReviewEventKind,
    ReviewFilter, Store, Tally, Transition, Vote,
};

fn t(micros: i64) -> Timestamp {
    Timestamp::from_micros(micros)
}

/// A COMPLETE run whose scan held `held` and released nothing else yet.
async fn run_with_held(store: &Store, held: &[&str]) -> RunId {
    let id = queued_run(store, "alice", 1_000).await;
    store
        .transition(&Transition {
            run: id,
            from: &[RunState::Queued],
            to: RunState::Complete,
            actor: &spe_core::Actor::Service(spe_core::ServiceActor::Reconciler),
            reason: None,
            exit_code: Some(0),
            at: t(2_000),
        })
        .await
        .unwrap()
        .unwrap();
    let files: Vec<NewEgressFile> = held
        .iter()
        .map(|p| NewEgressFile {
            path: (*p).into(),
            state: EgressState::Held,
            size: 10,
            reason: Some("matches a review rule".into()),
        })
        .collect();
    store
        .record_egress_scan(id, &files, t(3_000))
        .await
        .unwrap();
    assert!(store.mark_egress_done(id, t(3_001)).await.unwrap());
    id
}

fn vote<'a>(
    run: RunId,
    path: &'a str,
    reviewer: &'a spe_core::Subject,
    v: Vote,
    sha256: &'a str,
    required: u32,
) -> NewVote<'a> {
    NewVote {
        run,
        path,
        reviewer,
        vote: v,
        comment: Some("looked at it"),
        sha256,
        approvals_required: required,
    }
}

#[tokio::test]
async fn one_approval_puts_a_held_file_back_for_the_crawler_with_its_digest() {
    on_each_backend(|store| async move {
        let run = run_with_held(&store, &["a.csv", "b.csv"]).await;
        let carol = person("carol");
        let out = store
            .cast_vote(vote(run, "a.csv", &carol, Vote::Approve, "aa", 1), t(4_000))
            .await
            .unwrap();
        assert_eq!(out.tally, Tally::Approved);
        let f = store.egress_file(run, "a.csv").await.unwrap().unwrap();
        assert_eq!(f.state, EgressState::Pending);
        assert_eq!(f.approved_sha256.as_deref(), Some("aa"));
        // The run is taken up by the crawler again; the other file is still held.
        let awaiting = store.runs_awaiting_egress(10).await.unwrap();
        assert_eq!(awaiting.iter().map(|r| r.id).collect::<Vec<_>>(), vec![run]);
        assert_eq!(
            store.review_request_state(run).await.unwrap(),
            Some(RequestState::Open)
        );
        // A decided file takes no more votes.
        let dave = person("dave");
        let err = store
            .cast_vote(vote(run, "a.csv", &dave, Vote::Reject, "aa", 1), t(4_001))
            .await
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "a.csv is pending, not held: there is nothing to vote on"
        );
        let err = store
            .cast_vote(
                vote(run, "nope.csv", &dave, Vote::Reject, "aa", 1),
                t(4_001),
            )
            .await
            .unwrap_err();
        assert!(matches!(err, ReviewError::NoSuchFile(..)), "{err}");
        // A rejection is final and says why.
        store
            .cast_vote(vote(run, "b.csv", &dave, Vote::Reject, "bb", 1), t(4_002))
            .await
            .unwrap();
        let f = store.egress_file(run, "b.csv").await.unwrap().unwrap();
        assert_eq!(f.state, EgressState::Rejected);
        assert_eq!(
            f.reason.as_deref(),
            Some("rejected in review: looked at it")
        );
    })
    .await;
}

#[tokio::test]
async fn two_person_review_counts_distinct_reviewers_and_a_third_breaks_a_tie() {
    on_each_backend(|store| async move {
        let run = run_with_held(&store, &["a.csv", "b.csv"]).await;
        let (carol, dave, erin) = (person("carol"), person("dave"), person("erin"));
        let first = store
            .cast_vote(vote(run, "a.csv", &carol, Vote::Approve, "aa", 2), t(4_000))
            .await
            .unwrap();
        assert_eq!(
            first.tally,
            Tally::Awaiting {
                approvals: 1,
                rejections: 0
            }
        );
        let again = store
            .cast_vote(vote(run, "a.csv", &carol, Vote::Approve, "aa", 2), t(4_001))
            .await
            .unwrap_err();
        assert_eq!(
            again.to_string(),
            "you have voted on a.csv in this round already"
        );
        let second = store
            .cast_vote(vote(run, "a.csv", &dave, Vote::Approve, "aa", 2), t(4_002))
            .await
            .unwrap();
        assert_eq!(second.tally, Tally::Approved);
        // Disagreement: conflicted until a third reviewer decides.
        store
            .cast_vote(vote(run, "b.csv", &carol, Vote::Approve, "bb", 2), t(4_003))
            .await
            .unwrap();
        let split = store
            .cast_vote(vote(run, "b.csv", &dave, Vote::Reject, "bb", 2), t(4_004))
            .await
            .unwrap();
        assert_eq!(split.tally, Tally::Conflicted);
        assert_eq!(
            store
                .egress_file(run, "b.csv")
                .await
                .unwrap()
                .unwrap()
                .state,
            EgressState::Held
        );
        let third = store
            .cast_vote(vote(run, "b.csv", &erin, Vote::Reject, "bb", 2), t(4_005))
            .await
            .unwrap();
        assert_eq!(third.tally, Tally::Rejected);
        assert_eq!(
            store.review_request_state(run).await.unwrap(),
            Some(RequestState::Decided)
        );
    })
    .await;
}

#[tokio::test]
async fn changed_content_resets_the_votes_of_the_round() {
    on_each_backend(|store| async move {
        let run = run_with_held(&store, &["a.csv"]).await;
        let (carol, dave) = (person("carol"), person("dave"));
        store
            .cast_vote(
                vote(run, "a.csv", &carol, Vote::Approve, "old", 2),
                t(4_000),
            )
            .await
            .unwrap();
        // Dave sees other bytes: Carol's vote was on content that is gone.
        let out = store
            .cast_vote(vote(run, "a.csv", &dave, Vote::Approve, "new", 2), t(4_001))
            .await
            .unwrap();
        assert!(out.reset);
        assert_eq!(out.round, 1);
        assert_eq!(
            out.tally,
            Tally::Awaiting {
                approvals: 1,
                rejections: 0
            }
        );
        // Carol may vote again in the new round.
        let out = store
            .cast_vote(
                vote(run, "a.csv", &carol, Vote::Approve, "new", 2),
                t(4_002),
            )
            .await
            .unwrap();
        assert_eq!(out.tally, Tally::Approved);
        // The crawler then finds yet other bytes: held again, in a new round.
        let claimed = store
            .claim_egress_file(run, "a.csv", "crawler-1", t(5_000), t(9_000))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(claimed.approved_sha256.as_deref(), Some("new"));
        assert!(
            store
                .finish_egress_file(
                    run,
                    "a.csv",
                    "crawler-1",
                    EgressOutcome::ChangedAfterApproval { sha256: "newer" },
                    t(5_001),
                )
                .await
                .unwrap()
        );
        let f = store.egress_file(run, "a.csv").await.unwrap().unwrap();
        assert_eq!(f.state, EgressState::Held);
        assert_eq!(f.approved_sha256, None);
        assert_eq!(f.review_round, 2);
        let events = store.review_events(run).await.unwrap();
        let kinds: Vec<ReviewEventKind> = events.iter().map(|e| e.kind).collect();
        use ReviewEventKind::{Reset, Vote as V};
        assert_eq!(kinds, vec![V, Reset, V, V, Reset]);
        assert!(Store::current_votes(&f, &events).is_empty());
    })
    .await;
}

#[tokio::test]
async fn returned_requests_reopen_when_the_researcher_answers() {
    on_each_backend(|store| async move {
        let run = run_with_held(&store, &["a.csv"]).await;
        let (alice, carol) = (person("alice"), person("carol"));
        let err = store
            .resubmit_review(run, &alice, "why?", t(4_000))
            .await
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("the review of run {run} was not returned to its researcher")
        );
        store
            .return_review(run, &carol, "explain column n", t(4_001))
            .await
            .unwrap();
        let returned = store
            .review_requests(
                &ReviewFilter {
                    state: Some(RequestState::Returned),
                    ..Default::default()
                },
                10,
            )
            .await
            .unwrap();
        assert_eq!(returned.len(), 1);
        assert_eq!(returned[0].owner, alice);
        store
            .resubmit_review(run, &alice, "n counts samples", t(4_002))
            .await
            .unwrap();
        assert_eq!(
            store.review_request_state(run).await.unwrap(),
            Some(RequestState::Open)
        );
    })
    .await;
}

#[tokio::test]
async fn a_revoked_release_leaves_the_listing_and_is_recorded() {
    on_each_backend(|store| async move {
        let run = run_with_held(&store, &["a.csv"]).await;
        let carol = person("carol");
        store
            .cast_vote(vote(run, "a.csv", &carol, Vote::Approve, "aa", 1), t(4_000))
            .await
            .unwrap();
        store
            .claim_egress_file(run, "a.csv", "crawler-1", t(5_000), t(9_000))
            .await
            .unwrap()
            .unwrap();
        store
            .finish_egress_file(
                run,
                "a.csv",
                "crawler-1",
                EgressOutcome::Released {
                    sha256: "aa",
                    size: 10,
                },
                t(5_001),
            )
            .await
            .unwrap();
        assert!(store.mark_egress_done(run, t(5_002)).await.unwrap());
        assert_eq!(store.released_files(run).await.unwrap().len(), 1);
        store
            .revoke_release(run, "a.csv", &carol, "small cells after all", t(6_000))
            .await
            .unwrap();
        assert!(store.released_files(run).await.unwrap().is_empty());
        assert_eq!(
            store
                .egress_file(run, "a.csv")
                .await
                .unwrap()
                .unwrap()
                .state,
            EgressState::Revoked
        );
        // Again: nothing more to do, no error (the caller retries removing objects).
        store
            .revoke_release(run, "a.csv", &carol, "again", t(6_001))
            .await
            .unwrap();
        let revokes = store
            .review_events(run)
            .await
            .unwrap()
            .into_iter()
            .filter(|e| e.kind == ReviewEventKind::Revoke)
            .count();
        assert_eq!(revokes, 1);
        // The crawler rewrites the run's listing.
        assert_eq!(
            store
                .runs_awaiting_egress(10)
                .await
                .unwrap()
                .iter()
                .map(|r| r.id)
                .collect::<Vec<_>>(),
            vec![run]
        );
    })
    .await;
}

#[tokio::test]
async fn undecided_requests_are_reported_once() {
    on_each_backend(|store| async move {
        let old = run_with_held(&store, &["a.csv"]).await;
        let reported = store
            .report_overdue_reviews(t(3_000), t(10_000))
            .await
            .unwrap();
        assert_eq!(reported, vec![old]);
        assert!(
            store
                .report_overdue_reviews(t(3_000), t(10_001))
                .await
                .unwrap()
                .is_empty()
        );
        // Held later than the cut-off: not yet overdue.
        assert!(
            store
                .report_overdue_reviews(t(2_999), t(10_002))
                .await
                .unwrap()
                .is_empty()
        );
        let listed = store
            .review_requests(&ReviewFilter::default(), 10)
            .await
            .unwrap();
        assert!(listed[0].overdue_reported);
    })
    .await;
}
