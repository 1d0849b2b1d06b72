//! The egress review: data controllers' votes on held files, requests returned to and answered
//! by researchers, withdrawn releases, and undecided requests reported as overdue.
//!
//! A run's review request is the set of its files that are or were held; it has no row of its
//! own. Its history is `review_events` (append-only). A vote counts in the file's current round
//! (`egress_files.review_round`); when the content a vote was cast on is not the content found
//! later, the round moves on and the old votes stop counting. When the votes of a round decide,
//! the file leaves `held` in the same transaction: approved files go back to `pending` with the
//! approved digest (the crawler releases exactly those bytes), rejected files to `rejected`.
//! States and transitions: docs/egress-review.md.

use spe_core::time::Timestamp;
use spe_core::{Actor, RunId, Subject};
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::audit::{self, AuditEntry, AuditKind};
use crate::egress::{FILE_COLUMNS, file_from_row};
use crate::{
    EgressFile, EgressState, NotificationEvent, ReviewEventKind, Store, StoreError, Vote, outbox,
    people,
};

/// One entry of a run's review history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReviewEvent {
    pub seq: i64,
    pub run_id: RunId,
    /// The file it is about; `None` for the request as a whole.
    pub path: Option<String>,
    pub kind: ReviewEventKind,
    pub vote: Option<Vote>,
    pub actor: Actor,
    pub comment: Option<String>,
    /// For a vote: the SHA-256 of the bytes the reviewer looked at.
    pub sha256: Option<String>,
    pub round: Option<i64>,
    pub at: Timestamp,
}

/// Where a held file's review stands, from the votes of its current round.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tally {
    /// Not enough votes yet.
    Awaiting {
        approvals: u32,
        rejections: u32,
    },
    /// Reviewers disagree; the next vote (a third reviewer's) decides.
    Conflicted,
    Approved,
    Rejected,
}

impl Tally {
    /// Decides from the round's votes in the order cast. `required` approvals (or rejections)
    /// by distinct reviewers decide; when reviewers disagree, the file is conflicted until one
    /// more vote than `required` is in, and that last vote decides.
    pub fn of(votes: &[Vote], required: u32) -> Tally {
        let approvals = votes.iter().filter(|v| **v == Vote::Approve).count() as u32;
        let rejections = votes.len() as u32 - approvals;
        if approvals > 0 && rejections > 0 {
            if approvals + rejections > required {
                return match votes.last() {
                    Some(Vote::Approve) => Tally::Approved,
                    _ => Tally::Rejected,
                };
            }
            return Tally::Conflicted;
        }
        if approvals >= required {
            Tally::Approved
        } else if rejections >= required {
            Tally::Rejected
        } else {
            Tally::Awaiting {
                approvals,
                rejections,
            }
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Tally::Awaiting { .. } => "awaiting",
            Tally::Conflicted => "conflicted",
            Tally::Approved => "approved",
            Tally::Rejected => "rejected",
        }
    }
}

/// Where a run's review request stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RequestState {
    /// A file is held and no reviewer has sent the request back since the researcher last
    /// answered.
    Open,
    /// Sent back to the researcher with a comment; open again once they answer.
    Returned,
    /// No file is held any more.
    Decided,
}

impl RequestState {
    pub fn parse(text: &str) -> Option<RequestState> {
        match text {
            "open" => Some(RequestState::Open),
            "returned" => Some(RequestState::Returned),
            "decided" => Some(RequestState::Decided),
            _ => None,
        }
    }

    /// The name `parse` reads (and the JSON shows).
    pub fn as_str(self) -> &'static str {
        match self {
            RequestState::Open => "open",
            RequestState::Returned => "returned",
            RequestState::Decided => "decided",
        }
    }
}

/// A review request as the controllers' listing shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReviewRequest {
    pub run_id: RunId,
    pub workflow_url: String,
    pub owner: Subject,
    /// When its first file was held.
    pub opened_at: Timestamp,
    pub held_files: i64,
    pub state: RequestState,
    /// Reported as undecided past the configured time.
    pub overdue_reported: bool,
}

/// Which requests to list.
#[derive(Debug, Clone, Default)]
pub struct ReviewFilter {
    pub state: Option<RequestState>,
    /// `name@version`.
    pub workflow_url: Option<String>,
    /// Opened at or before this time.
    pub opened_before: Option<Timestamp>,
}

/// Why a vote or another review step was refused.
#[derive(Debug, thiserror::Error)]
pub enum ReviewError {
    #[error("run {0} has no output {1} under review")]
    NoSuchFile(RunId, String),
    #[error("{path} is {state}, not held: there is nothing to vote on")]
    NotHeld { path: String, state: EgressState },
    #[error("you have voted on {0} in this round already")]
    AlreadyVoted(String),
    #[error("{path} is {state}, not released: there is nothing to revoke")]
    NotReleased { path: String, state: EgressState },
    #[error("run {0} has no file held for review")]
    NothingHeld(RunId),
    #[error("the review of run {0} was not returned to its researcher")]
    NotReturned(RunId),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for ReviewError {
    fn from(e: sqlx::Error) -> Self {
        ReviewError::Store(StoreError::from(e))
    }
}

/// What a vote came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VoteOutcome {
    pub tally: Tally,
    pub round: i64,
    /// The content had changed since the round's earlier votes: they were reset first.
    pub reset: bool,
}

/// A vote to record.
#[derive(Debug, Clone)]
pub struct NewVote<'a> {
    pub run: RunId,
    pub path: &'a str,
    pub reviewer: &'a Subject,
    pub vote: Vote,
    pub comment: Option<&'a str>,
    /// SHA-256 of the bytes the reviewer saw (read by the caller just before).
    pub sha256: &'a str,
    pub approvals_required: u32,
}

const EVENT_COLUMNS: &str = "seq, run_id, path, kind, decision, actor, comment, sha256, round, at";

impl Store {
    /// Records one vote and applies the decision it completes, in one transaction.
    pub async fn cast_vote(
        &self,
        v: NewVote<'_>,
        at: Timestamp,
    ) -> Result<VoteOutcome, ReviewError> {
        let run = v.run.to_string();
        let _turn = self.write_turn().await;
        let mut tx = self.pool.begin().await?;
        // A write first, so SQLite takes its write lock at once; it also says whether the file
        // is held.
        let touched = sqlx::query(
            "UPDATE egress_files SET updated_at = $1 WHERE run_id = $2 AND path = $3 AND state = $4",
        )
        .bind(at.micros())
        .bind(&run)
        .bind(v.path)
        .bind(EgressState::Held.as_str())
        .execute(&mut *tx)
        .await?;
        let row = sqlx::query(&format!(
            "SELECT {FILE_COLUMNS} FROM egress_files WHERE run_id = $1 AND path = $2"
        ))
        .bind(&run)
        .bind(v.path)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            return Err(ReviewError::NoSuchFile(v.run, v.path.to_owned()));
        };
        let file = file_from_row(&row)?;
        if touched.rows_affected() != 1 {
            return Err(ReviewError::NotHeld {
                path: v.path.to_owned(),
                state: file.state,
            });
        }
        let mut round = file.review_round;
        let mut votes = round_votes(&mut tx, &run, v.path, round).await?;
        let mut reset = false;
        if votes.iter().any(|e| e.sha256.as_deref() != Some(v.sha256)) {
            round += 1;
            reset = true;
            sqlx::query(
                "UPDATE egress_files SET review_round = $1 WHERE run_id = $2 AND path = $3",
            )
            .bind(round)
            .bind(&run)
            .bind(v.path)
            .execute(&mut *tx)
            .await?;
            insert_event(
                &mut tx,
                &run,
                Some(v.path),
                ReviewEventKind::Reset,
                None,
                &Actor::Person(v.reviewer.clone()),
                Some("content changed after an earlier vote: those votes no longer count"),
                Some(v.sha256),
                Some(round),
                at,
            )
            .await?;
            votes.clear();
        }
        if votes.iter().any(|e| e.actor.subject() == Some(v.reviewer)) {
            return Err(ReviewError::AlreadyVoted(v.path.to_owned()));
        }
        insert_event(
            &mut tx,
            &run,
            Some(v.path),
            ReviewEventKind::Vote,
            Some(v.vote),
            &Actor::Person(v.reviewer.clone()),
            v.comment,
            Some(v.sha256),
            Some(round),
            at,
        )
        .await?;
        let mut cast: Vec<Vote> = votes.iter().filter_map(|e| e.vote).collect();
        cast.push(v.vote);
        let tally = Tally::of(&cast, v.approvals_required);
        match tally {
            Tally::Approved => {
                sqlx::query(
                    "UPDATE egress_files SET state = $1, approved_sha256 = $2, \
                     next_attempt_at = 0, reason = $3 WHERE run_id = $4 AND path = $5",
                )
                .bind(EgressState::Pending.as_str())
                .bind(v.sha256)
                .bind("approved in review")
                .bind(&run)
                .bind(v.path)
                .execute(&mut *tx)
                .await?;
                // The crawler takes the run up again.
                sqlx::query("UPDATE runs SET egress_done = 0 WHERE id = $1")
                    .bind(&run)
                    .execute(&mut *tx)
                    .await?;
            }
            Tally::Rejected => {
                sqlx::query(
                    "UPDATE egress_files SET state = $1, reason = $2 \
                     WHERE run_id = $3 AND path = $4",
                )
                .bind(EgressState::Rejected.as_str())
                .bind(match v.comment {
                    Some(c) => format!("rejected in review: {c}"),
                    None => "rejected in review".to_owned(),
                })
                .bind(&run)
                .bind(v.path)
                .execute(&mut *tx)
                .await?;
            }
            Tally::Awaiting { .. } | Tally::Conflicted => {}
        }
        let notify = match tally {
            Tally::Approved => Some(NotificationEvent::Approved),
            Tally::Rejected => Some(NotificationEvent::Rejected),
            Tally::Awaiting { .. } | Tally::Conflicted => None,
        };
        if let Some(event) = notify {
            outbox::enqueue(&mut tx, &run, event, at).await?;
        }
        // Last in the transaction, as every append (spe_store::audit: lock order).
        // The vote and the bytes it is bound to; never the comment's text (it may quote them).
        let reviewer = Actor::Person(v.reviewer.clone());
        let vote_entry = AuditEntry::new(AuditKind::ReviewVote, reviewer.clone())
            .run(v.run)
            .with("path", v.path)
            .with("vote", v.vote.as_str())
            .with("sha256", v.sha256)
            .with("round", round)
            .with("tally", tally.as_str());
        audit::append(&mut tx, &vote_entry, at).await?;
        let decided = match tally {
            Tally::Approved => Some(AuditKind::FileApproved),
            Tally::Rejected => Some(AuditKind::FileRejected),
            Tally::Awaiting { .. } | Tally::Conflicted => None,
        };
        if let Some(kind) = decided {
            let entry = AuditEntry::new(kind, reviewer)
                .run(v.run)
                .with("path", v.path)
                .with("sha256", v.sha256)
                .with("round", round)
                .with("votes", cast.len());
            audit::append(&mut tx, &entry, at).await?;
        }
        tx.commit().await?;
        Ok(VoteOutcome {
            tally,
            round,
            reset,
        })
    }

    /// Sends a request with held files back to its researcher (a comment is required).
    pub async fn return_review(
        &self,
        run: RunId,
        reviewer: &Subject,
        comment: &str,
        at: Timestamp,
    ) -> Result<(), ReviewError> {
        if self.held_count(run).await? == 0 {
            return Err(ReviewError::NothingHeld(run));
        }
        self.append_review_event(
            run,
            None,
            ReviewEventKind::Return,
            &Actor::Person(reviewer.clone()),
            Some(comment),
            at,
        )
        .await
    }

    /// The researcher's answer to a returned request: open for review again.
    pub async fn resubmit_review(
        &self,
        run: RunId,
        researcher: &Subject,
        comment: &str,
        at: Timestamp,
    ) -> Result<(), ReviewError> {
        let events = self.review_events(run).await?;
        if request_state(&events, 1) != RequestState::Returned {
            return Err(ReviewError::NotReturned(run));
        }
        self.append_review_event(
            run,
            None,
            ReviewEventKind::Resubmit,
            &Actor::Person(researcher.clone()),
            Some(comment),
            at,
        )
        .await
    }

    /// Withdraws a released file: from now on it is `revoked` (no listing, no link), recorded
    /// with who and why, and the run's egress is open again so the crawler rewrites its listing.
    /// Revoking a revoked file again succeeds (the caller may retry removing its objects).
    pub async fn revoke_release(
        &self,
        run: RunId,
        path: &str,
        by: &Subject,
        comment: &str,
        at: Timestamp,
    ) -> Result<(), ReviewError> {
        let _turn = self.write_turn().await;
        let mut tx = self.pool.begin().await?;
        let updated = sqlx::query(
            "UPDATE egress_files SET state = $1, reason = $2, updated_at = $3 \
             WHERE run_id = $4 AND path = $5 AND state = $6",
        )
        .bind(EgressState::Revoked.as_str())
        .bind(format!("release revoked: {comment}"))
        .bind(at.micros())
        .bind(run.to_string())
        .bind(path)
        .bind(EgressState::Released.as_str())
        .execute(&mut *tx)
        .await?;
        if updated.rows_affected() == 0 {
            let state: Option<String> = sqlx::query_scalar(
                "SELECT state FROM egress_files WHERE run_id = $1 AND path = $2",
            )
            .bind(run.to_string())
            .bind(path)
            .fetch_optional(&mut *tx)
            .await?;
            return match state {
                None => Err(ReviewError::NoSuchFile(run, path.to_owned())),
                Some(s) if s == EgressState::Revoked.as_str() => Ok(()),
                Some(s) => Err(ReviewError::NotReleased {
                    path: path.to_owned(),
                    state: s
                        .parse()
                        .map_err(|e: crate::UnknownState| StoreError::Corrupt(e.to_string()))?,
                }),
            };
        }
        insert_event(
            &mut tx,
            &run.to_string(),
            Some(path),
            ReviewEventKind::Revoke,
            None,
            &Actor::Person(by.clone()),
            Some(comment),
            None,
            None,
            at,
        )
        .await?;
        sqlx::query("UPDATE runs SET egress_done = 0 WHERE id = $1")
            .bind(run.to_string())
            .execute(&mut *tx)
            .await?;
        outbox::enqueue(&mut tx, &run.to_string(), NotificationEvent::Revoked, at).await?;
        let entry = AuditEntry::new(AuditKind::FileRevoked, Actor::Person(by.clone()))
            .run(run)
            .with("path", path);
        audit::append(&mut tx, &entry, at).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Requests with a file held since before `held_before` and never reported: each is
    /// reported now (an `overdue` event) and returned, once.
    pub async fn report_overdue_reviews(
        &self,
        held_before: Timestamp,
        at: Timestamp,
    ) -> Result<Vec<RunId>, StoreError> {
        let rows = sqlx::query(
            "SELECT DISTINCT f.run_id FROM egress_files f WHERE f.state = $1 AND f.held_at <= $2 \
             AND NOT EXISTS (SELECT 1 FROM review_events e WHERE e.run_id = f.run_id \
                             AND e.kind = $3) ORDER BY f.run_id LIMIT 1000",
        )
        .bind(EgressState::Held.as_str())
        .bind(held_before.micros())
        .bind(ReviewEventKind::Overdue.as_str())
        .fetch_all(&self.pool)
        .await?;
        let mut reported = Vec::new();
        for row in rows {
            let id: String = row.try_get("run_id")?;
            let run: RunId = id
                .parse()
                .map_err(|_| StoreError::Corrupt(format!("run id {id:?}")))?;
            match self
                .append_review_event(
                    run,
                    None,
                    ReviewEventKind::Overdue,
                    &Actor::Service(spe_core::ServiceActor::ReviewMonitor),
                    None,
                    at,
                )
                .await
            {
                Ok(()) => reported.push(run),
                Err(ReviewError::Store(e)) => return Err(e),
                Err(other) => return Err(StoreError::Corrupt(other.to_string())),
            }
        }
        Ok(reported)
    }

    /// A run's review history, oldest first.
    pub async fn review_events(&self, run: RunId) -> Result<Vec<ReviewEvent>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {EVENT_COLUMNS} FROM review_events WHERE run_id = $1 ORDER BY seq"
        ))
        .bind(run.to_string())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(event_from_row).collect()
    }

    /// Review requests (runs with a file held now or in the past), oldest first, at most
    /// `limit`.
    pub async fn review_requests(
        &self,
        filter: &ReviewFilter,
        limit: i64,
    ) -> Result<Vec<ReviewRequest>, StoreError> {
        let rows = sqlx::query(
            "SELECT r.id, r.workflow_url, r.owner, MIN(f.held_at) AS opened_at, \
             SUM(CASE WHEN f.state = $1 THEN 1 ELSE 0 END) AS held \
             FROM egress_files f JOIN runs r ON r.id = f.run_id \
             WHERE f.held_at IS NOT NULL AND ($2 IS NULL OR r.workflow_url = $2) \
             GROUP BY r.id, r.workflow_url, r.owner \
             HAVING ($3 IS NULL OR MIN(f.held_at) <= $3) \
             ORDER BY opened_at, r.id",
        )
        .bind(EgressState::Held.as_str())
        .bind(filter.workflow_url.clone())
        .bind(filter.opened_before.map(|t| t.micros()))
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::new();
        for row in rows {
            let id: String = row.try_get("id")?;
            let run: RunId = id
                .parse()
                .map_err(|_| StoreError::Corrupt(format!("run id {id:?}")))?;
            let held: i64 = row.try_get("held")?;
            let opened_at: i64 = row.try_get("opened_at")?;
            let events = self.review_events(run).await?;
            let state = request_state(&events, held);
            if filter.state.is_some_and(|s| s != state) {
                continue;
            }
            out.push(ReviewRequest {
                run_id: run,
                workflow_url: row.try_get("workflow_url")?,
                owner: people::subject(&row, "owner")?,
                opened_at: Timestamp::from_micros(opened_at),
                held_files: held,
                state,
                overdue_reported: events.iter().any(|e| e.kind == ReviewEventKind::Overdue),
            });
            if out.len() as i64 >= limit {
                break;
            }
        }
        Ok(out)
    }

    /// The state of one run's request (`None`: no file of the run was ever held).
    pub async fn review_request_state(
        &self,
        run: RunId,
    ) -> Result<Option<RequestState>, StoreError> {
        let files = self.egress_files(run).await?;
        if files.iter().all(|f| f.held_at.is_none()) {
            return Ok(None);
        }
        let held = files
            .iter()
            .filter(|f| f.state == EgressState::Held)
            .count() as i64;
        Ok(Some(request_state(&self.review_events(run).await?, held)))
    }

    /// The votes of a file's current round, oldest first.
    pub fn current_votes<'e>(file: &EgressFile, events: &'e [ReviewEvent]) -> Vec<&'e ReviewEvent> {
        events
            .iter()
            .filter(|e| {
                e.kind == ReviewEventKind::Vote
                    && e.path.as_deref() == Some(file.path.as_str())
                    && e.round == Some(file.review_round)
            })
            .collect()
    }

    /// Released files of earlier runs of the same workflow version (newest first, at most
    /// `limit` runs), for a reviewer's differencing check.
    pub async fn earlier_releases(
        &self,
        workflow_url: &str,
        before: RunId,
        limit: i64,
    ) -> Result<Vec<(RunId, Vec<EgressFile>)>, StoreError> {
        let rows = sqlx::query(
            "SELECT DISTINCT r.id, r.created_at FROM runs r JOIN egress_files f ON f.run_id = r.id \
             WHERE r.workflow_url = $1 AND r.id <> $2 AND f.state = $3 \
             ORDER BY r.created_at DESC, r.id DESC LIMIT $4",
        )
        .bind(workflow_url)
        .bind(before.to_string())
        .bind(EgressState::Released.as_str())
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::new();
        for row in rows {
            let id: String = row.try_get("id")?;
            let run: RunId = id
                .parse()
                .map_err(|_| StoreError::Corrupt(format!("run id {id:?}")))?;
            let files = self
                .egress_files(run)
                .await?
                .into_iter()
                .filter(|f| f.state == EgressState::Released)
                .collect();
            out.push((run, files));
        }
        Ok(out)
    }

    async fn held_count(&self, run: RunId) -> Result<i64, StoreError> {
        let n: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM egress_files WHERE run_id = $1 AND state = $2",
        )
        .bind(run.to_string())
        .bind(EgressState::Held.as_str())
        .fetch_one(&self.pool)
        .await?;
        Ok(n)
    }

    async fn append_review_event(
        &self,
        run: RunId,
        path: Option<&str>,
        kind: ReviewEventKind,
        actor: &Actor,
        comment: Option<&str>,
        at: Timestamp,
    ) -> Result<(), ReviewError> {
        let _turn = self.write_turn().await;
        let mut tx = self.pool.begin().await?;
        insert_event(
            &mut tx,
            &run.to_string(),
            path,
            kind,
            None,
            actor,
            comment,
            None,
            None,
            at,
        )
        .await?;
        let event = match kind {
            ReviewEventKind::Return => Some(NotificationEvent::Returned),
            ReviewEventKind::Resubmit => Some(NotificationEvent::Answered),
            ReviewEventKind::Overdue => Some(NotificationEvent::Overdue),
            _ => None,
        };
        if let Some(event) = event {
            outbox::enqueue(&mut tx, &run.to_string(), event, at).await?;
        }
        tx.commit().await?;
        Ok(())
    }
}

/// Open while files are held, unless the last return came after the last resubmission.
fn request_state(events: &[ReviewEvent], held: i64) -> RequestState {
    if held == 0 {
        return RequestState::Decided;
    }
    let last = |kind| events.iter().rev().find(|e| e.kind == kind).map(|e| e.seq);
    match (
        last(ReviewEventKind::Return),
        last(ReviewEventKind::Resubmit),
    ) {
        (Some(r), Some(s)) if r > s => RequestState::Returned,
        (Some(_), None) => RequestState::Returned,
        _ => RequestState::Open,
    }
}

async fn round_votes(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    run: &str,
    path: &str,
    round: i64,
) -> Result<Vec<ReviewEvent>, StoreError> {
    let rows = sqlx::query(&format!(
        "SELECT {EVENT_COLUMNS} FROM review_events \
         WHERE run_id = $1 AND path = $2 AND round = $3 AND kind = $4 ORDER BY seq"
    ))
    .bind(run)
    .bind(path)
    .bind(round)
    .bind(ReviewEventKind::Vote.as_str())
    .fetch_all(&mut **tx)
    .await?;
    rows.iter().map(event_from_row).collect()
}

#[allow(clippy::too_many_arguments)]
async fn insert_event(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    run: &str,
    path: Option<&str>,
    kind: ReviewEventKind,
    vote: Option<Vote>,
    actor: &Actor,
    comment: Option<&str>,
    sha256: Option<&str>,
    round: Option<i64>,
    at: Timestamp,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO review_events (run_id, path, kind, decision, actor, comment, sha256, \
         round, at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(run)
    .bind(path.map(str::to_owned))
    .bind(kind.as_str())
    .bind(vote.map(|v| v.as_str()))
    .bind(actor.key())
    .bind(comment.map(str::to_owned))
    .bind(sha256.map(str::to_owned))
    .bind(round)
    .bind(at.micros())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

fn event_from_row(row: &AnyRow) -> Result<ReviewEvent, StoreError> {
    let run_id: String = row.try_get("run_id")?;
    let kind: String = row.try_get("kind")?;
    let decision: Option<String> = row.try_get("decision")?;
    let at: i64 = row.try_get("at")?;
    let corrupt = |e: crate::UnknownState| StoreError::Corrupt(format!("review event: {e}"));
    Ok(ReviewEvent {
        seq: row.try_get("seq")?,
        run_id: run_id
            .parse()
            .map_err(|_| StoreError::Corrupt(format!("run id {run_id:?}")))?,
        path: row.try_get("path")?,
        kind: kind.parse().map_err(corrupt)?,
        vote: decision.map(|d| d.parse()).transpose().map_err(corrupt)?,
        actor: people::actor(row, "actor")?,
        comment: row.try_get("comment")?,
        sha256: row.try_get("sha256")?,
        round: row.try_get("round")?,
        at: Timestamp::from_micros(at),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use Vote::{Approve, Reject};

    #[test]
    fn one_approval_decides_when_one_is_required() {
        assert_eq!(Tally::of(&[Approve], 1), Tally::Approved);
        assert_eq!(Tally::of(&[Reject], 1), Tally::Rejected);
    }

    #[test]
    fn two_person_review_needs_two_and_a_third_breaks_a_tie() {
        assert_eq!(
            Tally::of(&[Approve], 2),
            Tally::Awaiting {
                approvals: 1,
                rejections: 0
            }
        );
        assert_eq!(Tally::of(&[Approve, Approve], 2), Tally::Approved);
        assert_eq!(Tally::of(&[Reject, Reject], 2), Tally::Rejected);
        assert_eq!(Tally::of(&[Approve, Reject], 2), Tally::Conflicted);
        assert_eq!(Tally::of(&[Approve, Reject, Reject], 2), Tally::Rejected);
        assert_eq!(Tally::of(&[Reject, Approve, Approve], 2), Tally::Approved);
    }
}
