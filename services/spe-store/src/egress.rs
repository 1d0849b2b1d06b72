//! Results egress: which outputs of a finished run were released to the results bucket, held for
//! review or refused, and which runs still have unsettled work.
//!
//! The results crawler records one row per output file the egress rules name. An upload is a
//! claim (a compare-and-set from `pending`, or from `uploading` whose lease expired, to
//! `uploading` with this crawler as owner) followed by a finish by the same owner, so several
//! crawlers on one database never upload one file at the same time, and a crawler that died
//! mid-upload leaves work another (or itself, restarted) picks up once the lease runs out.
//! A run is marked `egress_done` when none of its files is pending or uploading; rescans read
//! only runs that have ended (a terminal state) and are not done, so their cost follows the
//! pending work. Which terminal states release anything is the manifest's
//! `egress.release_states`, which the crawler applies: a run whose state its manifest does not
//! release is settled (marked done, nothing recorded) the first time it is seen.

use spe_core::manifest::OutputEncryption;
use spe_core::time::Timestamp;
use spe_core::{Actor, RunId, RunState, ServiceActor};
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::audit::{self, AuditEntry, AuditKind};
use crate::{EgressState, Store, StoreError};

/// What the crawler needs to know about a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EgressRun {
    pub id: RunId,
    pub state: RunState,
    pub run_dir: String,
    pub log_dir: Option<String>,
    /// `name@version` of the approved workflow version the run was admitted with.
    pub workflow_url: String,
    pub end_time: Option<Timestamp>,
    /// The run directory has been walked and its eligible files recorded.
    pub scanned: bool,
    /// Every file is settled and the manifest object is written.
    pub done: bool,
    /// Why the last walk of its directory failed (or, once settled, why egress failed).
    pub error: Option<String>,
    /// Failed walks so far.
    pub attempts: i64,
}

/// One file found when walking a run directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEgressFile {
    pub path: String,
    /// Pending (to release), held (review) or refused.
    pub state: EgressState,
    pub size: i64,
    pub reason: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EgressFile {
    pub run_id: RunId,
    /// Relative to the run directory, `/`-separated.
    pub path: String,
    pub state: EgressState,
    /// Size when found; for a released file, the bytes sent.
    pub size: i64,
    /// SHA-256 (hex) of the bytes sent, once released.
    pub sha256: Option<String>,
    pub reason: Option<String>,
    pub owner: Option<String>,
    pub lease_until: Option<Timestamp>,
    /// A multipart upload begun by the last owner (to abort if it never completed).
    pub upload_id: Option<String>,
    pub attempts: i64,
    pub next_attempt_at: Timestamp,
    pub released_at: Option<Timestamp>,
    /// The automatic disclosure checks' report on the bytes last looked at (JSON).
    pub checks: Option<serde_json::Value>,
    /// Set when the review approved the file: the crawler releases exactly these bytes.
    pub approved_sha256: Option<String>,
    /// The file's review round: only votes of this round count.
    pub review_round: i64,
    /// When it was first held (the age of its review).
    pub held_at: Option<Timestamp>,
}

/// A file in the results bucket, at `<run_id>/<path>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReleasedFile {
    pub path: String,
    /// The plaintext's size and SHA-256, also for a file stored encrypted.
    pub size: i64,
    pub sha256: String,
    pub released_at: Timestamp,
    /// How the object is stored, when not as it is (docs/crypt4gh.md).
    pub encryption: Option<OutputEncryption>,
}

/// How an upload attempt ended.
#[derive(Debug, Clone, Copy)]
pub enum EgressOutcome<'a> {
    Released {
        sha256: &'a str,
        size: i64,
    },
    /// Released, the object stored encrypted (`sha256` and `size` are the plaintext's).
    ReleasedEncrypted {
        sha256: &'a str,
        size: i64,
        with: OutputEncryption,
    },
    /// Never released (e.g. it changed while being uploaded).
    Refused {
        reason: &'a str,
    },
    /// Held for review after all (e.g. a per-file check failed).
    Held {
        reason: &'a str,
    },
    /// An approved file whose bytes are no longer those approved: held again, and its review
    /// starts a new round (the old votes no longer count), recorded as a `reset` event.
    ChangedAfterApproval {
        sha256: &'a str,
    },
    /// Back to pending, tried again from `next_attempt_at` (e.g. S3 unavailable).
    Retry {
        reason: &'a str,
        next_attempt_at: Timestamp,
    },
}

/// The states a run ends in; a run in one of them is looked at by the crawler until settled.
const TERMINAL_STATES: [RunState; 4] = [
    RunState::Complete,
    RunState::ExecutorError,
    RunState::SystemError,
    RunState::Canceled,
];

const EGRESS_RUN_COLUMNS: &str = "id, state, run_dir, log_dir, workflow_url, end_time, \
     egress_scanned_at, egress_done, egress_error, egress_attempts";

pub(crate) const FILE_COLUMNS: &str = "run_id, path, state, size, sha256, reason, owner, \
     lease_until, upload_id, attempts, next_attempt_at, released_at, checks, approved_sha256, \
     review_round, held_at";

impl Store {
    /// Ended runs (COMPLETE, EXECUTOR_ERROR, SYSTEM_ERROR or CANCELED) whose egress is not
    /// done and not waiting for a retry at `now`, oldest end first, at most `limit`, after the
    /// run `after` (the last one of the previous page, by end time and id): a rescan pages
    /// through all of them, so no run is starved by others. Whether a run's state releases
    /// anything is for the crawler to decide from the run's manifest; a run it settles is never
    /// read again. Served by the index `runs_by_egress (egress_done, state)`.
    pub async fn runs_awaiting_egress_page(
        &self,
        after: Option<(Timestamp, RunId)>,
        now: Timestamp,
        limit: i64,
    ) -> Result<Vec<EgressRun>, StoreError> {
        let [a, b, c, d] = TERMINAL_STATES.map(RunState::as_str);
        let (after_end, after_id) = match after {
            Some((t, id)) => (Some(t.micros()), id.to_string()),
            None => (None, String::new()),
        };
        let rows = sqlx::query(&format!(
            "SELECT {EGRESS_RUN_COLUMNS} FROM runs \
             WHERE egress_done = 0 AND state IN ($1, $2, $3, $4) \
             AND (egress_retry_at IS NULL OR egress_retry_at <= $5) \
             AND ($6 IS NULL OR COALESCE(end_time, 0) > $6 \
                  OR (COALESCE(end_time, 0) = $6 AND id > $7)) \
             ORDER BY COALESCE(end_time, 0), id LIMIT $8"
        ))
        .bind(a)
        .bind(b)
        .bind(c)
        .bind(d)
        .bind(now.micros())
        .bind(after_end)
        .bind(after_id)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(egress_run_from_row).collect()
    }

    /// The first page of [`Store::runs_awaiting_egress_page`], for any time.
    pub async fn runs_awaiting_egress(&self, limit: i64) -> Result<Vec<EgressRun>, StoreError> {
        self.runs_awaiting_egress_page(None, Timestamp::from_micros(i64::MAX), limit)
            .await
    }

    /// A walk of the run's directory failed with `reason`: kept against the run and retried
    /// from `retry_at`, or, with `None`, the run is settled: egress failed, nothing more is
    /// released. Returns the failed attempts so far.
    pub async fn record_egress_failure(
        &self,
        run: RunId,
        reason: &str,
        retry_at: Option<Timestamp>,
        at: Timestamp,
    ) -> Result<i64, StoreError> {
        let settled = retry_at.is_none();
        let error = if settled {
            format!("egress failed: {reason}")
        } else {
            reason.to_owned()
        };
        let _turn = self.write_turn().await;
        sqlx::query(
            "UPDATE runs SET egress_error = $1, egress_attempts = egress_attempts + 1, \
             egress_retry_at = $2, \
             egress_done = CASE WHEN $3 = 1 THEN 1 ELSE egress_done END, \
             egress_done_at = CASE WHEN $3 = 1 THEN $4 ELSE egress_done_at END \
             WHERE id = $5",
        )
        .bind(error)
        .bind(retry_at.map(|t| t.micros()))
        .bind(i64::from(settled))
        .bind(at.micros())
        .bind(run.to_string())
        .execute(&self.pool)
        .await?;
        let attempts: i64 = sqlx::query_scalar("SELECT egress_attempts FROM runs WHERE id = $1")
            .bind(run.to_string())
            .fetch_one(&self.pool)
            .await?;
        Ok(attempts)
    }

    /// One run as the crawler sees it, in any state.
    pub async fn egress_run(&self, id: RunId) -> Result<Option<EgressRun>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {EGRESS_RUN_COLUMNS} FROM runs WHERE id = $1"
        ))
        .bind(id.to_string())
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| egress_run_from_row(&r)).transpose()
    }

    /// Records what a walk of the run directory found and marks the run scanned. Files already
    /// recorded (by an earlier, interrupted walk or another crawler) keep their rows.
    pub async fn record_egress_scan(
        &self,
        run: RunId,
        files: &[NewEgressFile],
        at: Timestamp,
    ) -> Result<(), StoreError> {
        let _turn = self.write_turn().await;
        let mut tx = self.pool.begin().await?;
        // The write on runs comes first so that SQLite takes its write lock at once.
        sqlx::query(
            "UPDATE runs SET egress_scanned_at = COALESCE(egress_scanned_at, $1), \
             egress_error = NULL, egress_retry_at = NULL WHERE id = $2",
        )
        .bind(at.micros())
        .bind(run.to_string())
        .execute(&mut *tx)
        .await?;
        let mut held = 0;
        let mut entries = Vec::new();
        for f in files {
            let inserted = sqlx::query(
                "INSERT INTO egress_files (run_id, path, state, size, reason, created_at, \
                 updated_at, held_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
                 ON CONFLICT (run_id, path) DO NOTHING",
            )
            .bind(run.to_string())
            .bind(&f.path)
            .bind(f.state.as_str())
            .bind(f.size)
            .bind(f.reason.clone())
            .bind(at.micros())
            .bind(at.micros())
            .bind((f.state == EgressState::Held).then_some(at.micros()))
            .execute(&mut *tx)
            .await?;
            if inserted.rows_affected() == 1
                && let Some(entry) = file_entry(
                    run,
                    &f.path,
                    f.state,
                    None,
                    Some(f.size),
                    f.reason.as_deref(),
                )
            {
                entries.push(entry);
            }
            if f.state == EgressState::Held {
                held += inserted.rows_affected();
            }
        }
        if held > 0 {
            crate::outbox::enqueue(
                &mut tx,
                &run.to_string(),
                crate::NotificationEvent::Held,
                at,
            )
            .await?;
        }
        // Last in the transaction, as every append (spe_store::audit: lock order).
        for entry in &entries {
            audit::append(&mut tx, entry, at).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Files of a run that a crawler may claim now: pending and due, or uploading with an
    /// expired lease.
    pub async fn claimable_egress_files(
        &self,
        run: RunId,
        now: Timestamp,
    ) -> Result<Vec<EgressFile>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {FILE_COLUMNS} FROM egress_files WHERE run_id = $1 AND \
             ((state = $2 AND next_attempt_at <= $3) OR (state = $4 AND lease_until < $3)) \
             ORDER BY path"
        ))
        .bind(run.to_string())
        .bind(EgressState::Pending.as_str())
        .bind(now.micros())
        .bind(EgressState::Uploading.as_str())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(file_from_row).collect()
    }

    /// Takes one file for upload (compare-and-set). `None`: another crawler has it, or it is
    /// settled or not due. The row returned still carries the previous owner's `upload_id`.
    pub async fn claim_egress_file(
        &self,
        run: RunId,
        path: &str,
        owner: &str,
        now: Timestamp,
        lease_until: Timestamp,
    ) -> Result<Option<EgressFile>, StoreError> {
        let _turn = self.write_turn().await;
        let updated = sqlx::query(
            "UPDATE egress_files SET state = $1, owner = $2, lease_until = $3, updated_at = $4, \
             attempts = attempts + 1 \
             WHERE run_id = $5 AND path = $6 AND \
             ((state = $7 AND next_attempt_at <= $4) OR (state = $1 AND lease_until < $4))",
        )
        .bind(EgressState::Uploading.as_str())
        .bind(owner)
        .bind(lease_until.micros())
        .bind(now.micros())
        .bind(run.to_string())
        .bind(path)
        .bind(EgressState::Pending.as_str())
        .execute(&self.pool)
        .await?;
        if updated.rows_affected() == 0 {
            return Ok(None);
        }
        self.egress_file(run, path).await
    }

    /// Hands back every file `owner` is uploading (a crawler stopping on SIGTERM): their
    /// leases end now, so another crawler claims them at once instead of after the lease.
    /// Returns how many.
    pub async fn hand_back_egress_files(
        &self,
        owner: &str,
        now: Timestamp,
    ) -> Result<u64, StoreError> {
        let _turn = self.write_turn().await;
        let updated = sqlx::query(
            "UPDATE egress_files SET lease_until = $1, updated_at = $2 \
             WHERE owner = $3 AND state = $4 AND lease_until >= $2",
        )
        .bind(now.micros() - 1)
        .bind(now.micros())
        .bind(owner)
        .bind(EgressState::Uploading.as_str())
        .execute(&self.pool)
        .await?;
        Ok(updated.rows_affected())
    }

    /// Extends the owner's lease on a file being uploaded; `false` if it is no longer theirs.
    pub async fn renew_egress_lease(
        &self,
        run: RunId,
        path: &str,
        owner: &str,
        lease_until: Timestamp,
    ) -> Result<bool, StoreError> {
        self.set_while_leased(run, path, owner, "lease_until", lease_until.micros())
            .await
    }

    /// Remembers (or forgets, with `None`) the multipart upload the owner has begun.
    pub async fn set_egress_upload_id(
        &self,
        run: RunId,
        path: &str,
        owner: &str,
        upload_id: Option<&str>,
    ) -> Result<bool, StoreError> {
        self.set_while_leased(run, path, owner, "upload_id", upload_id.map(str::to_owned))
            .await
    }

    /// Ends the owner's upload attempt; `false` if the file was no longer theirs (nothing
    /// changed).
    pub async fn finish_egress_file(
        &self,
        run: RunId,
        path: &str,
        owner: &str,
        outcome: EgressOutcome<'_>,
        at: Timestamp,
    ) -> Result<bool, StoreError> {
        let mut encryption = None;
        let (state, sha256, size, reason, next, released_at) = match outcome {
            EgressOutcome::ChangedAfterApproval { sha256 } => {
                return self
                    .hold_changed_after_approval(run, path, owner, sha256, at)
                    .await;
            }
            EgressOutcome::Released { sha256, size } => (
                EgressState::Released,
                Some(sha256.to_owned()),
                Some(size),
                None,
                None,
                Some(at.micros()),
            ),
            EgressOutcome::ReleasedEncrypted { sha256, size, with } => {
                encryption = Some(with);
                (
                    EgressState::Released,
                    Some(sha256.to_owned()),
                    Some(size),
                    None,
                    None,
                    Some(at.micros()),
                )
            }
            EgressOutcome::Refused { reason } => (
                EgressState::Refused,
                None,
                None,
                Some(reason.to_owned()),
                None,
                None,
            ),
            EgressOutcome::Held { reason } => (
                EgressState::Held,
                None,
                None,
                Some(reason.to_owned()),
                None,
                None,
            ),
            EgressOutcome::Retry {
                reason,
                next_attempt_at,
            } => (
                EgressState::Pending,
                None,
                None,
                Some(reason.to_owned()),
                Some(next_attempt_at.micros()),
                None,
            ),
        };
        let _turn = self.write_turn().await;
        let mut tx = self.pool.begin().await?;
        let updated = sqlx::query(
            "UPDATE egress_files SET state = $1, sha256 = COALESCE($2, sha256), \
             size = COALESCE($3, size), reason = $4, \
             next_attempt_at = COALESCE($5, next_attempt_at), released_at = $6, \
             owner = NULL, lease_until = NULL, upload_id = NULL, updated_at = $7, \
             held_at = CASE WHEN $1 = 'held' THEN COALESCE(held_at, $7) ELSE held_at END, \
             encryption = $12 \
             WHERE run_id = $8 AND path = $9 AND state = $10 AND owner = $11",
        )
        .bind(state.as_str())
        .bind(sha256.clone())
        .bind(size)
        .bind(reason.clone())
        .bind(next)
        .bind(released_at)
        .bind(at.micros())
        .bind(run.to_string())
        .bind(path)
        .bind(EgressState::Uploading.as_str())
        .bind(owner)
        .bind(encryption.map(OutputEncryption::as_str))
        .execute(&mut *tx)
        .await?;
        if updated.rows_affected() != 1 {
            return Ok(false);
        }
        if state == EgressState::Held {
            crate::outbox::enqueue(
                &mut tx,
                &run.to_string(),
                crate::NotificationEvent::Held,
                at,
            )
            .await?;
        }
        // Last in the transaction, as every append (spe_store::audit: lock order).
        if let Some(mut entry) =
            file_entry(run, path, state, sha256.as_deref(), size, reason.as_deref())
        {
            if let Some(with) = encryption {
                entry = entry.with("stored_encrypted", with.as_str());
            }
            audit::append(&mut tx, &entry, at).await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    /// Held again, in a new review round, with a `reset` event saying why; one transaction.
    async fn hold_changed_after_approval(
        &self,
        run: RunId,
        path: &str,
        owner: &str,
        sha256: &str,
        at: Timestamp,
    ) -> Result<bool, StoreError> {
        let _turn = self.write_turn().await;
        let mut tx = self.pool.begin().await?;
        let updated = sqlx::query(
            "UPDATE egress_files SET state = $1, reason = $2, approved_sha256 = NULL, \
             review_round = review_round + 1, owner = NULL, lease_until = NULL, \
             upload_id = NULL, updated_at = $3, held_at = $3 \
             WHERE run_id = $4 AND path = $5 AND state = $6 AND owner = $7",
        )
        .bind(EgressState::Held.as_str())
        .bind("content changed after it was approved: its review starts again")
        .bind(at.micros())
        .bind(run.to_string())
        .bind(path)
        .bind(EgressState::Uploading.as_str())
        .bind(owner)
        .execute(&mut *tx)
        .await?;
        if updated.rows_affected() != 1 {
            return Ok(false);
        }
        sqlx::query(
            "INSERT INTO review_events (run_id, path, kind, actor, comment, sha256, round, at) \
             SELECT run_id, path, $1, $2, $3, $4, review_round, $5 FROM egress_files \
             WHERE run_id = $6 AND path = $7",
        )
        .bind(crate::ReviewEventKind::Reset.as_str())
        .bind(spe_core::Actor::Service(spe_core::ServiceActor::Crawler).key())
        .bind("the bytes found are not those approved")
        .bind(sha256)
        .bind(at.micros())
        .bind(run.to_string())
        .bind(path)
        .execute(&mut *tx)
        .await?;
        crate::outbox::enqueue(
            &mut tx,
            &run.to_string(),
            crate::NotificationEvent::Held,
            at,
        )
        .await?;
        if let Some(entry) = file_entry(
            run,
            path,
            EgressState::Held,
            Some(sha256),
            None,
            Some("content changed after it was approved: its review starts again"),
        ) {
            audit::append(&mut tx, &entry, at).await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    /// Keeps the disclosure checks' report on a file while `owner` holds its lease; `false` if
    /// the file is no longer theirs.
    pub async fn record_egress_checks(
        &self,
        run: RunId,
        path: &str,
        owner: &str,
        report: &serde_json::Value,
    ) -> Result<bool, StoreError> {
        self.set_while_leased(run, path, owner, "checks", report.to_string())
            .await
    }

    /// Sets one column of a file being uploaded while `owner` holds its lease; `false` if it is
    /// no longer theirs.
    async fn set_while_leased<T>(
        &self,
        run: RunId,
        path: &str,
        owner: &str,
        column: &'static str,
        value: T,
    ) -> Result<bool, StoreError>
    where
        T: for<'q> sqlx::Encode<'q, sqlx::Any> + sqlx::Type<sqlx::Any> + Send,
    {
        let sql = format!(
            "UPDATE egress_files SET {column} = $1 \
             WHERE run_id = $2 AND path = $3 AND state = $4 AND owner = $5"
        );
        let _turn = self.write_turn().await;
        let updated = sqlx::query(&sql)
            .bind(value)
            .bind(run.to_string())
            .bind(path)
            .bind(EgressState::Uploading.as_str())
            .bind(owner)
            .execute(&self.pool)
            .await?;
        Ok(updated.rows_affected() == 1)
    }

    pub async fn egress_file(
        &self,
        run: RunId,
        path: &str,
    ) -> Result<Option<EgressFile>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {FILE_COLUMNS} FROM egress_files WHERE run_id = $1 AND path = $2"
        ))
        .bind(run.to_string())
        .bind(path)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| file_from_row(&r)).transpose()
    }

    /// Every recorded file of a run, by path.
    pub async fn egress_files(&self, run: RunId) -> Result<Vec<EgressFile>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {FILE_COLUMNS} FROM egress_files WHERE run_id = $1 ORDER BY path"
        ))
        .bind(run.to_string())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(file_from_row).collect()
    }

    /// The run's files in the results bucket (at `<run_id>/<path>`), by path: what
    /// `RunLog.outputs` lists and what collaborators may download.
    pub async fn released_files(&self, run: RunId) -> Result<Vec<ReleasedFile>, StoreError> {
        let rows = sqlx::query(
            "SELECT path, size, sha256, released_at, encryption FROM egress_files \
             WHERE run_id = $1 AND state = $2 ORDER BY path",
        )
        .bind(run.to_string())
        .bind(EgressState::Released.as_str())
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let sha256: Option<String> = r.try_get("sha256")?;
                let released_at: Option<i64> = r.try_get("released_at")?;
                let path: String = r.try_get("path")?;
                let encryption = match r.try_get::<Option<String>, _>("encryption")? {
                    None => None,
                    Some(text) => Some(OutputEncryption::parse(&text).ok_or_else(|| {
                        StoreError::Corrupt(format!(
                            "released file {path} of run {run}: unknown encryption {text:?}"
                        ))
                    })?),
                };
                match (sha256, released_at) {
                    (Some(sha256), Some(at)) => Ok(ReleasedFile {
                        size: r.try_get("size")?,
                        sha256,
                        released_at: Timestamp::from_micros(at),
                        path,
                        encryption,
                    }),
                    _ => Err(StoreError::Corrupt(format!(
                        "released file {path} of run {run} lacks its checksum or time"
                    ))),
                }
            })
            .collect()
    }

    /// Marks the run's egress done if none of its files is pending or uploading; `false`
    /// otherwise (or if it was done already).
    pub async fn mark_egress_done(&self, run: RunId, at: Timestamp) -> Result<bool, StoreError> {
        let _turn = self.write_turn().await;
        let updated = sqlx::query(
            "UPDATE runs SET egress_done = 1, egress_done_at = $1 \
             WHERE id = $2 AND egress_done = 0 AND egress_scanned_at IS NOT NULL AND \
             NOT EXISTS (SELECT 1 FROM egress_files \
                         WHERE run_id = $2 AND state IN ($3, $4))",
        )
        .bind(at.micros())
        .bind(run.to_string())
        .bind(EgressState::Pending.as_str())
        .bind(EgressState::Uploading.as_str())
        .execute(&self.pool)
        .await?;
        Ok(updated.rows_affected() == 1)
    }

    /// How many ended runs have egress not done (the crawler's backlog).
    pub async fn egress_backlog(&self) -> Result<i64, StoreError> {
        let [a, b, c, d] = TERMINAL_STATES.map(RunState::as_str);
        let row = sqlx::query(
            "SELECT COUNT(*) AS n FROM runs \
             WHERE egress_done = 0 AND state IN ($1, $2, $3, $4)",
        )
        .bind(a)
        .bind(b)
        .bind(c)
        .bind(d)
        .fetch_one(&self.pool)
        .await?;
        Ok(row.try_get("n")?)
    }
}

fn parse_run_id(id: &str) -> Result<RunId, StoreError> {
    id.parse()
        .map_err(|_| StoreError::Corrupt(format!("run id {id:?}")))
}

fn egress_run_from_row(row: &AnyRow) -> Result<EgressRun, StoreError> {
    let id: String = row.try_get("id")?;
    let state: String = row.try_get("state")?;
    let end_time: Option<i64> = row.try_get("end_time")?;
    let scanned: Option<i64> = row.try_get("egress_scanned_at")?;
    let done: i64 = row.try_get("egress_done")?;
    Ok(EgressRun {
        error: row.try_get("egress_error")?,
        attempts: row.try_get("egress_attempts")?,
        id: parse_run_id(&id)?,
        state: state
            .parse::<RunState>()
            .map_err(|e| StoreError::Corrupt(e.to_string()))?,
        run_dir: row.try_get("run_dir")?,
        log_dir: row.try_get("log_dir")?,
        workflow_url: row.try_get("workflow_url")?,
        end_time: end_time.map(Timestamp::from_micros),
        scanned: scanned.is_some(),
        done: done != 0,
    })
}

pub(crate) fn file_from_row(row: &AnyRow) -> Result<EgressFile, StoreError> {
    let run_id: String = row.try_get("run_id")?;
    let path: String = row.try_get("path")?;
    let state: String = row.try_get("state")?;
    let lease_until: Option<i64> = row.try_get("lease_until")?;
    let released_at: Option<i64> = row.try_get("released_at")?;
    let held_at: Option<i64> = row.try_get("held_at")?;
    let checks: Option<String> = row.try_get("checks")?;
    let checks = checks
        .map(|c| {
            serde_json::from_str(&c).map_err(|e| {
                StoreError::Corrupt(format!("checks of egress file {path} of run {run_id}: {e}"))
            })
        })
        .transpose()?;
    Ok(EgressFile {
        run_id: parse_run_id(&run_id)?,
        state: state.parse().map_err(|e| {
            StoreError::Corrupt(format!("state of egress file {path} of run {run_id}: {e}"))
        })?,
        size: row.try_get("size")?,
        sha256: row.try_get("sha256")?,
        reason: row.try_get("reason")?,
        owner: row.try_get("owner")?,
        lease_until: lease_until.map(Timestamp::from_micros),
        upload_id: row.try_get("upload_id")?,
        attempts: row.try_get("attempts")?,
        next_attempt_at: Timestamp::from_micros(row.try_get("next_attempt_at")?),
        released_at: released_at.map(Timestamp::from_micros),
        checks,
        approved_sha256: row.try_get("approved_sha256")?,
        review_round: row.try_get("review_round")?,
        held_at: held_at.map(Timestamp::from_micros),
        path,
    })
}

/// The crawler's audit record of a file that settled in `state` (released, held or refused);
/// `None` for the states the chain does not record (pending, uploading).
fn file_entry(
    run: RunId,
    path: &str,
    state: EgressState,
    sha256: Option<&str>,
    size: Option<i64>,
    reason: Option<&str>,
) -> Option<AuditEntry> {
    let kind = match state {
        EgressState::Released => AuditKind::FileReleased,
        EgressState::Held => AuditKind::FileHeld,
        EgressState::Refused => AuditKind::FileRefused,
        _ => return None,
    };
    let mut entry = AuditEntry::new(kind, Actor::Service(ServiceActor::Crawler))
        .run(run)
        .with("path", path);
    if let Some(sha256) = sha256 {
        entry = entry.with("sha256", sha256);
    }
    if let Some(size) = size {
        entry = entry.with("size", size);
    }
    if let Some(reason) = reason {
        entry = entry.with("reason", reason);
    }
    Some(entry)
}
