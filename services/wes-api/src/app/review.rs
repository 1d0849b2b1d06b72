//! The egress review as data controllers and researchers take part in it: reading a held output
//! for a reviewer (its whole digest, a bounded head for the preview), casting votes, returning
//! a request, answering one, revoking a release, and the loop that reports undecided requests.
//!
//! A reviewer never votes on a run they own, whatever roles they hold. A vote is bound to the
//! SHA-256 of the bytes read just before it: content that changes afterwards resets the votes
//! (spe-store), and the crawler releases only the approved bytes.

use std::io::Read;
use std::path::PathBuf;
use std::time::Duration;

use sha2::{Digest, Sha256};
use spe_core::jobfile;
use spe_core::time::Timestamp;
use spe_core::{Actor, RunId};
use spe_store::{NewVote, ReviewError, RunRecord, Store, Vote, VoteOutcome};

use crate::auth::Caller;
use crate::error::ApiError;
use crate::startup::AppState;

/// Longest comment kept with a vote, a return or an answer.
pub const MAX_COMMENT: usize = 4096;

/// A held output as a reviewer reads it.
pub struct OutputBytes {
    /// SHA-256 of the whole file as read now.
    pub sha256: String,
    pub size: u64,
    /// Its first bytes, up to the preview limit.
    pub head: Vec<u8>,
    /// Whether `head` is only the start of the file.
    pub cut: bool,
}

fn now() -> Timestamp {
    Timestamp::from_datetime(chrono::Utc::now())
}

/// The store's refusals as HTTP answers: an unknown file is 404, a step the file's state does
/// not allow is 409.
pub fn refusal(e: ReviewError) -> ApiError {
    match e {
        ReviewError::NoSuchFile(..) => ApiError::not_found(e.to_string()),
        ReviewError::Store(s) => s.into(),
        other => ApiError::conflict(other.to_string()),
    }
}

/// A comment as given: required where `required`, text of at most [`MAX_COMMENT`] bytes.
pub fn comment(
    field: &str,
    text: Option<String>,
    required: bool,
) -> Result<Option<String>, ApiError> {
    match text {
        None if required => Err(ApiError::bad_request(format!(
            "{field}: required: say why, for the researcher and the record"
        ))),
        None => Ok(None),
        Some(t) if required && t.trim().is_empty() => Err(ApiError::bad_request(format!(
            "{field}: required: say why, for the researcher and the record"
        ))),
        Some(t)
            if t.len() > MAX_COMMENT
                || t.chars().any(|c| c.is_control() && c != '\n' && c != '\t') =>
        {
            Err(ApiError::bad_request(format!(
                "{field}: at most {MAX_COMMENT} bytes of text without control characters"
            )))
        }
        Some(t) => Ok(Some(t)),
    }
}

/// Refuses a reviewer who owns the run: another data controller must review it.
pub fn not_own_run(caller: &Caller, run: &RunRecord) -> Result<(), ApiError> {
    if caller.owns(&run.owner) {
        return Err(ApiError::new(
            actix_web::http::StatusCode::FORBIDDEN,
            format!(
                "you own run {}: another data controller must review its outputs",
                run.id
            ),
        ));
    }
    Ok(())
}

/// Reads an output of the run (a path relative to its run directory) with the shared
/// safe-open, hashing all of it and keeping the first `head_max` bytes; on the blocking pool.
pub async fn read_output(
    run: &RunRecord,
    path: &str,
    head_max: u64,
) -> Result<OutputBytes, ApiError> {
    let root = PathBuf::from(&run.run_dir);
    let rel = path.to_owned();
    let shown = path.chars().take(256).collect::<String>();
    let read = tokio::task::spawn_blocking(move || -> Result<OutputBytes, String> {
        let (mut file, meta) = jobfile::open_beneath(&root, &rel).map_err(|e| e.to_string())?;
        let mut hasher = Sha256::new();
        let mut head = Vec::new();
        let mut buf = vec![0u8; 256 * 1024];
        let mut size = 0u64;
        loop {
            let n = file.read(&mut buf).map_err(|e| e.to_string())?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            let room = usize::try_from(head_max.saturating_sub(size)).unwrap_or(usize::MAX);
            head.extend_from_slice(&buf[..n.min(room)]);
            size += n as u64;
        }
        let _ = meta;
        Ok(OutputBytes {
            sha256: hex::encode(hasher.finalize()),
            cut: size > head.len() as u64,
            size,
            head,
        })
    })
    .await
    .map_err(ApiError::internal)?;
    read.map_err(|reason| {
        ApiError::conflict(format!(
            "output {shown} of run {} cannot be read for review: {reason}",
            run.id
        ))
    })
}

/// What a reviewer sees of one output: its digest and size, a preview of its head (text, a
/// table, an image or a hex dump), a table's summary, and the checks of the approved manifest
/// run on it now (when all of it fits the preview limit).
pub async fn look_at(
    state: &AppState,
    run: &RunRecord,
    path: &str,
) -> Result<serde_json::Value, ApiError> {
    use spe_core::disclosure;
    let file = state
        .store
        .egress_file(run.id, path)
        .await?
        .ok_or_else(|| refusal(ReviewError::NoSuchFile(run.id, path.to_owned())))?;
    let max = state.config.review.preview_max_bytes;
    let bytes = read_output(run, path, max).await?;
    let manifest = manifest_of(state, run).await?;
    let (head, cut, rel) = (bytes.head, bytes.cut, path.to_owned());
    let checks = manifest
        .as_ref()
        .and_then(|m| m.egress.matcher().ok())
        .map(|m| m.checks_for(path))
        .unwrap_or_default();
    let view = tokio::task::spawn_blocking(move || {
        let summary = disclosure::summarize_table(&rel, &head);
        let checked = (!cut).then(|| disclosure::check_file(&rel, &head, &checks));
        serde_json::json!({
            "preview": disclosure::preview(&rel, &head, 50),
            "preview_cut": cut,
            "summary": summary.as_ref().ok(),
            "summary_partial": cut && summary.is_ok(),
            "checks_now": checked,
        })
    })
    .await
    .map_err(ApiError::internal)?;
    let mut out = serde_json::json!({
        "run_id": run.id.to_string(),
        "path": path,
        "state": file.state,
        "reason": file.reason,
        "size": bytes.size,
        "sha256": bytes.sha256,
        "checks_recorded": file.checks,
    });
    if let (Some(o), Some(v)) = (out.as_object_mut(), view.as_object()) {
        o.extend(v.clone());
    }
    Ok(out)
}

/// The approved manifest of the run's workflow version, if it can be read.
async fn manifest_of(
    state: &AppState,
    run: &RunRecord,
) -> Result<Option<spe_core::manifest::Manifest>, ApiError> {
    Ok(
        match spe_core::manifest::WorkflowRef::parse(&run.submission.workflow_url) {
            Ok(wf) => state
                .store
                .workflow_version(&wf.name, &wf.version)
                .await?
                .and_then(|v| spe_core::manifest::Manifest::from_json(&v.manifest).ok()),
            Err(_) => None,
        },
    )
}

/// Earlier runs of the same workflow version on the same datasets with released files (newest
/// first), for a reviewer's differencing check: what was let out before, beside what is asked
/// now. Returns the datasets this run read, and those runs with their released files.
pub async fn earlier_releases(
    state: &AppState,
    run: &RunRecord,
    most: i64,
) -> Result<(Vec<String>, Vec<(RunId, Vec<spe_store::EgressFile>)>), ApiError> {
    let datasets_of = |manifest: &Option<spe_core::manifest::Manifest>, r: &RunRecord| {
        let mut ids: Vec<String> = manifest
            .as_ref()
            .map(|m| {
                m.dataset_references(&r.submission.workflow_params)
                    .into_iter()
                    .map(|d| d.id)
                    .collect()
            })
            .unwrap_or_default();
        ids.sort();
        ids.dedup();
        ids
    };
    let manifest = manifest_of(state, run).await?;
    let mine = datasets_of(&manifest, run);
    let mut same = Vec::new();
    for (id, files) in state
        .store
        .earlier_releases(&run.submission.workflow_url, run.id, most)
        .await?
    {
        if let Some(other) = state.store.get_run(id).await?
            && datasets_of(&manifest, &other) == mine
        {
            same.push((id, files));
        }
    }
    Ok((mine, same))
}

/// Where one file's review stands: this round's votes and what they come to (`held` files: the
/// tally; `approved`/`rejected` once decided; `None` for a file never held).
pub struct Standing<'e> {
    pub decision: Option<&'static str>,
    pub votes: Vec<&'e spe_store::ReviewEvent>,
}

impl Standing<'_> {
    pub fn count(&self, vote: Vote) -> usize {
        self.votes.iter().filter(|e| e.vote == Some(vote)).count()
    }
}

pub fn standing<'e>(
    f: &spe_store::EgressFile,
    events: &'e [spe_store::ReviewEvent],
    required: u32,
) -> Standing<'e> {
    use spe_store::EgressState;
    let votes = Store::current_votes(f, events);
    let decision = match f.state {
        EgressState::Held => {
            let cast: Vec<Vote> = votes.iter().filter_map(|e| e.vote).collect();
            Some(spe_store::Tally::of(&cast, required).as_str())
        }
        EgressState::Rejected => Some("rejected"),
        EgressState::Pending | EgressState::Uploading if f.approved_sha256.is_some() => {
            Some("approved")
        }
        EgressState::Released if f.held_at.is_some() => Some("approved"),
        _ => None,
    };
    Standing { decision, votes }
}

/// Casts the caller's vote on one held output of the run, bound to the bytes there now.
pub async fn vote(
    state: &AppState,
    caller: &Caller,
    run: &RunRecord,
    path: &str,
    vote: Vote,
    comment: Option<&str>,
) -> Result<VoteOutcome, ApiError> {
    not_own_run(caller, run)?;
    let file = state
        .store
        .egress_file(run.id, path)
        .await?
        .ok_or_else(|| refusal(ReviewError::NoSuchFile(run.id, path.to_owned())))?;
    if file.state != spe_store::EgressState::Held {
        return Err(refusal(ReviewError::NotHeld {
            path: path.to_owned(),
            state: file.state,
        }));
    }
    let bytes = read_output(run, path, 0).await?;
    let outcome = state
        .store
        .cast_vote(
            NewVote {
                run: run.id,
                path,
                reviewer: &caller.subject,
                vote,
                comment,
                sha256: &bytes.sha256,
                approvals_required: state.config.review.approvals_required,
            },
            now(),
        )
        .await
        .map_err(refusal)?;
    tracing::info!(target: "spe_audit", run_id = %run.id, path, reviewer = %caller.subject, vote = %vote, sha256 = bytes.sha256, round = outcome.round, decision = outcome.tally.as_str(), "review vote");
    Ok(outcome)
}

/// Sends the run's request back to its researcher.
pub async fn return_to_researcher(
    state: &AppState,
    caller: &Caller,
    run: &RunRecord,
    comment: &str,
) -> Result<(), ApiError> {
    not_own_run(caller, run)?;
    state
        .store
        .return_review(run.id, &caller.subject, comment, now())
        .await
        .map_err(refusal)?;
    tracing::info!(target: "spe_audit", run_id = %run.id, reviewer = %caller.subject, "review returned to the researcher");
    Ok(())
}

/// The owner's answer to a returned request.
pub async fn answer(
    state: &AppState,
    caller: &Caller,
    run: &RunRecord,
    comment: &str,
) -> Result<(), ApiError> {
    if !caller.owns(&run.owner) {
        return Err(ApiError::new(
            actix_web::http::StatusCode::FORBIDDEN,
            format!("only the owner of run {} answers its review", run.id),
        ));
    }
    state
        .store
        .resubmit_review(run.id, &caller.subject, comment, now())
        .await
        .map_err(refusal)?;
    tracing::info!(target: "spe_audit", run_id = %run.id, by = %caller.subject, "review answered by the researcher");
    Ok(())
}

/// Withdraws a released output: recorded first (so no listing or link serves it from now on),
/// then its object is removed from the bucket.
pub async fn revoke(
    state: &AppState,
    caller: &Caller,
    run: &RunRecord,
    path: &str,
    comment: &str,
) -> Result<(), ApiError> {
    state
        .store
        .revoke_release(run.id, path, &caller.subject, comment, now())
        .await
        .map_err(refusal)?;
    tracing::warn!(target: "spe_audit", run_id = %run.id, path, by = %caller.subject, "release revoked");
    let bucket = state.results.as_ref().ok_or_else(|| {
        ApiError::new(
            actix_web::http::StatusCode::SERVICE_UNAVAILABLE,
            "the release is revoked and refused from now on, but no results bucket is \
             configured to remove its object from",
        )
    })?;
    bucket
        .delete(&spe_core::bucket::object_key(run.id, path))
        .await
        .map_err(|e| {
            tracing::warn!(run_id = %run.id, path, error = %e, "cannot remove a revoked object");
            ApiError::new(
                actix_web::http::StatusCode::BAD_GATEWAY,
                "the release is revoked and refused from now on, but its object could not be \
                 removed from the bucket yet: revoke again to retry",
            )
        })
}

/// Reports requests left undecided past `review.overdue_after_seconds`, each once: an audit
/// line for the controllers' alerting, and `overdue` in their listing. Runs until the process
/// ends.
pub async fn report_overdue(store: Store, after: Duration, every: Duration) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let at = now();
        let cutoff = Timestamp::from_micros(
            at.micros()
                .saturating_sub(i64::try_from(after.as_micros()).unwrap_or(i64::MAX)),
        );
        match store.report_overdue_reviews(cutoff, at).await {
            Ok(runs) => {
                for run in runs {
                    report(
                        run,
                        after,
                        &Actor::Service(spe_core::ServiceActor::ReviewMonitor),
                    );
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot look for overdue reviews; trying again"),
        }
    }
}

fn report(run: RunId, after: Duration, by: &Actor) {
    tracing::warn!(target: "spe_audit", run_id = %run, undecided_for_seconds = after.as_secs(), by = %by, "review request undecided past its deadline: data controllers, please decide");
}
