//! Runs, their tags and their append-only event history.

use std::collections::BTreeMap;

use serde_json::Value;
use spe_core::page::{PageSize, PageToken};
use spe_core::request::{RunSubmission, Tags, WorkflowType};
use spe_core::slurm::SlurmJobId;
use spe_core::time::Timestamp;
use spe_core::{Actor, RunId, RunState, Subject};
use sqlx::any::AnyRow;
use sqlx::{Any, Row};

use crate::audit::{self, AuditEntry, AuditKind};
use crate::{Store, StoreError, UnreadableRun};

/// A run about to be accepted: stored in state QUEUED together with its first event.
#[derive(Debug, Clone)]
pub struct NewRun {
    pub id: RunId,
    pub owner: Subject,
    /// The accepted request; its type, version, URL and tags are also stored as columns.
    pub submission: RunSubmission,
    pub run_dir: String,
    pub created_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RunRecord {
    pub id: RunId,
    pub state: RunState,
    pub owner: Subject,
    pub workflow_type: WorkflowType,
    pub workflow_type_version: String,
    pub workflow_url: String,
    /// The request as accepted (and as WES shows it back in `RunLog.request`).
    pub submission: RunSubmission,
    pub run_dir: String,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub start_time: Option<Timestamp>,
    pub end_time: Option<Timestamp>,
    pub exit_code: Option<i64>,
    /// Set once submitted to Slurm.
    pub slurm_job_id: Option<SlurmJobId>,
    pub reason: Option<String>,
    /// How many times submission to Slurm has failed transiently so far.
    pub submit_attempts: i64,
    /// The run's `.weskit/<timestamp>` folder, once submitted.
    pub log_dir: Option<String>,
}

impl RunRecord {
    /// Tags as given at submission.
    pub fn tags(&self) -> BTreeMap<String, String> {
        self.submission
            .tags
            .iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunEvent {
    pub seq: i64,
    pub at: Timestamp,
    pub from_state: Option<RunState>,
    pub to_state: RunState,
    pub actor: Actor,
    pub reason: Option<String>,
}

/// Which runs a list shows. Empty fields do not filter.
#[derive(Debug, Clone, Default)]
pub struct RunFilter {
    /// Only runs of this owner (the caller, for researchers).
    pub owner: Option<Subject>,
    /// Runs in any of these states.
    pub states: Vec<RunState>,
    /// Runs carrying every one of these tags.
    pub tags: Vec<(String, String)>,
    pub created_after: Option<Timestamp>,
    pub created_before: Option<Timestamp>,
}

#[derive(Debug, Clone)]
pub struct RunPage {
    pub runs: Vec<RunRecord>,
    pub next: Option<PageToken>,
}

/// What a run list shows of a run ([`Store::list_run_summaries`]).
#[derive(Debug, Clone, PartialEq)]
pub struct RunSummaryRecord {
    pub id: RunId,
    pub state: RunState,
    pub created_at: Timestamp,
    pub start_time: Option<Timestamp>,
    pub end_time: Option<Timestamp>,
    pub tags: Tags,
}

#[derive(Debug, Clone)]
pub struct SummaryPage {
    pub runs: Vec<RunSummaryRecord>,
    pub next: Option<PageToken>,
}

/// A state change asked of the store.
#[derive(Debug, Clone)]
pub struct Transition<'a> {
    pub run: RunId,
    /// The change happens only if the run is in one of these states now.
    pub from: &'a [RunState],
    pub to: RunState,
    pub actor: &'a Actor,
    pub reason: Option<&'a str>,
    pub exit_code: Option<i64>,
    pub at: Timestamp,
}

enum Param {
    Text(String),
    Int(i64),
}

pub(crate) const RUN_COLUMNS: &str = "id, state, owner, workflow_type, workflow_type_version, workflow_url, \
     request_json, run_dir, created_at, updated_at, start_time, end_time, exit_code, \
     slurm_job_id, reason, submit_attempts, log_dir";

impl Store {
    /// Stores a new run in state QUEUED with its first event, in one transaction: once this
    /// returns, the run is tracked.
    pub async fn insert_run(&self, run: &NewRun) -> Result<(), StoreError> {
        self.insert_run_with_visas(run, None).await
    }

    /// [`Store::insert_run`], storing with the run, in the same transaction, the snapshot of
    /// the GA4GH visas that authorised it (a JSON value; never raw visa JWTs).
    pub async fn insert_run_with_visas(
        &self,
        run: &NewRun,
        access_visas: Option<&Value>,
    ) -> Result<(), StoreError> {
        match self.insert_run_within(run, access_visas, None).await? {
            Ok(()) => Ok(()),
            Err(e) => Err(StoreError::Corrupt(e.to_string())),
        }
    }

    /// Stores the run as [`Store::insert_run_with_visas`] does, but only if its owner stays
    /// within `limits` (this run included), checked in the same transaction; otherwise nothing
    /// is stored and the exceeded limit is returned.
    pub async fn insert_run_within(
        &self,
        run: &NewRun,
        access_visas: Option<&Value>,
        limits: Option<&spe_core::config::QuotaLimits>,
    ) -> Result<Result<(), crate::QuotaExceeded>, StoreError> {
        let submitted = AuditEntry::new(AuditKind::RunSubmitted, Actor::Person(run.owner.clone()))
            .run(run.id)
            .with("workflow", &run.submission.workflow_url);
        self.insert_run_audited(run, access_visas, limits, &[submitted], None)
            .await
    }

    /// [`Store::insert_run_within`] appending `audit` (the submission's records: the workflow
    /// and its digest, the datasets, any service key handed to the run) to the audit chain in
    /// the same transaction, and recording `owner_contact` (where the owner hears about the
    /// run: [`Store::owner_contact`]) in it too, so a submission is one write.
    pub async fn insert_run_audited(
        &self,
        run: &NewRun,
        access_visas: Option<&Value>,
        limits: Option<&spe_core::config::QuotaLimits>,
        audit: &[AuditEntry],
        owner_contact: Option<&str>,
    ) -> Result<Result<(), crate::QuotaExceeded>, StoreError> {
        let submission = &run.submission;
        let request = serde_json::to_string(submission)
            .map_err(|e| StoreError::Corrupt(format!("submission of run {}: {e}", run.id)))?;
        let (cores, memory_mb) = crate::quota::asks(run);
        let owner = run.owner.key();
        let _turn = self.write_turn().await;
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO runs (id, state, owner, workflow_type, workflow_type_version, \
             workflow_url, request_json, run_dir, created_at, updated_at, access_visas, cores, \
             memory_mb) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
        )
        .bind(run.id.to_string())
        .bind(RunState::Queued.as_str())
        .bind(&owner)
        .bind(submission.workflow_type.as_str())
        .bind(&submission.workflow_type_version)
        .bind(&submission.workflow_url)
        .bind(request)
        .bind(&run.run_dir)
        .bind(run.created_at.micros())
        .bind(run.created_at.micros())
        .bind(access_visas.map(Value::to_string))
        .bind(cores)
        .bind(memory_mb)
        .execute(&mut *tx)
        .await?;
        if let Some(limits) = limits
            && let Some(exceeded) = self
                .over_quota(&mut tx, &owner, limits, run.created_at)
                .await?
        {
            tx.rollback().await?;
            return Ok(Err(exceeded));
        }
        for (key, value) in submission.tags.iter() {
            sqlx::query("INSERT INTO run_tags (run_id, key, value) VALUES ($1, $2, $3)")
                .bind(run.id.to_string())
                .bind(key)
                .bind(value)
                .execute(&mut *tx)
                .await?;
        }
        sqlx::query(
            "INSERT INTO run_events (run_id, at, from_state, to_state, actor, reason) \
             VALUES ($1, $2, NULL, $3, $4, $5)",
        )
        .bind(run.id.to_string())
        .bind(run.created_at.micros())
        .bind(RunState::Queued.as_str())
        .bind(&owner)
        .bind("accepted")
        .execute(&mut *tx)
        .await?;
        if let Some(email) = owner_contact {
            sqlx::query("INSERT INTO run_contacts (run_id, email) VALUES ($1, $2)")
                .bind(run.id.to_string())
                .bind(email)
                .execute(&mut *tx)
                .await?;
        }
        for entry in audit {
            audit::append(&mut tx, entry, run.created_at).await?;
        }
        tx.commit().await?;
        Ok(Ok(()))
    }

    /// The visa snapshot stored with a run at submission (`None`: the run exists but needed no
    /// visa, or does not exist).
    pub async fn access_visas(&self, id: RunId) -> Result<Option<Value>, StoreError> {
        let row = sqlx::query("SELECT access_visas FROM runs WHERE id = $1")
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let text: Option<String> = row.try_get("access_visas")?;
        text.map(|t| {
            serde_json::from_str(&t)
                .map_err(|e| StoreError::Corrupt(format!("access_visas of run {id}: {e}")))
        })
        .transpose()
    }

    /// A run's owner and state, the two columns `GET /runs/{id}/status` needs.
    pub async fn owner_and_state(
        &self,
        id: RunId,
    ) -> Result<Option<(Subject, RunState)>, StoreError> {
        let row = sqlx::query("SELECT owner, state FROM runs WHERE id = $1")
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let owner: String = row.try_get("owner")?;
        let owner = Subject::from_key(&owner)
            .map_err(|e| StoreError::Corrupt(format!("owner of run {id}: {e}")))?;
        let state: String = row.try_get("state")?;
        Ok(Some((owner, parse_state(&state)?)))
    }

    pub async fn get_run(&self, id: RunId) -> Result<Option<RunRecord>, StoreError> {
        let row = sqlx::query(&format!("SELECT {RUN_COLUMNS} FROM runs WHERE id = $1"))
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| run_from_row(&r)).transpose()
    }

    /// One page of runs, newest first, with a token for the next page when there may be one.
    pub async fn list_runs(
        &self,
        filter: &RunFilter,
        size: PageSize,
        after: Option<PageToken>,
    ) -> Result<RunPage, StoreError> {
        let rows = self.page_rows(RUN_COLUMNS, filter, size, after).await?;
        let mut runs = rows
            .iter()
            .map(run_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        let next = next_token(&mut runs, size, |r| (r.created_at, r.id));
        Ok(RunPage { runs, next })
    }

    /// [`Store::list_runs`] reading only what a WES `RunSummary` shows (id, state, times, tags),
    /// for `GET /runs`: a third of the columns, and of the submission only its tags.
    pub async fn list_run_summaries(
        &self,
        filter: &RunFilter,
        size: PageSize,
        after: Option<PageToken>,
    ) -> Result<SummaryPage, StoreError> {
        let rows = self
            .page_rows(
                "id, state, created_at, start_time, end_time, request_json",
                filter,
                size,
                after,
            )
            .await?;
        let mut runs = rows
            .iter()
            .map(summary_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        let next = next_token(&mut runs, size, |r| (r.created_at, r.id));
        Ok(SummaryPage { runs, next })
    }

    /// The rows of one page (one more than `size`, to know whether another follows) with the
    /// given columns, newest first.
    async fn page_rows(
        &self,
        columns: &str,
        filter: &RunFilter,
        size: PageSize,
        after: Option<PageToken>,
    ) -> Result<Vec<AnyRow>, StoreError> {
        let mut conditions: Vec<String> = Vec::new();
        let mut params: Vec<Param> = Vec::new();
        let next_param = |p: Param, params: &mut Vec<Param>| {
            params.push(p);
            format!("${}", params.len())
        };
        if let Some(owner) = &filter.owner {
            let p = next_param(Param::Text(owner.key()), &mut params);
            conditions.push(format!("owner = {p}"));
        }
        if !filter.states.is_empty() {
            let ps: Vec<String> = filter
                .states
                .iter()
                .map(|s| next_param(Param::Text(s.as_str().to_owned()), &mut params))
                .collect();
            conditions.push(format!("state IN ({})", ps.join(", ")));
        }
        for (key, value) in &filter.tags {
            let k = next_param(Param::Text(key.clone()), &mut params);
            let v = next_param(Param::Text(value.clone()), &mut params);
            conditions.push(format!(
                "EXISTS (SELECT 1 FROM run_tags t WHERE t.run_id = runs.id AND t.key = {k} AND t.value = {v})"
            ));
        }
        if let Some(after) = filter.created_after {
            let p = next_param(Param::Int(after.micros()), &mut params);
            conditions.push(format!("created_at >= {p}"));
        }
        if let Some(before) = filter.created_before {
            let p = next_param(Param::Int(before.micros()), &mut params);
            conditions.push(format!("created_at < {p}"));
        }
        if let Some(token) = after {
            let t1 = next_param(Param::Int(token.after_created.micros()), &mut params);
            let t2 = next_param(Param::Int(token.after_created.micros()), &mut params);
            let id = next_param(Param::Text(token.after_id.to_string()), &mut params);
            conditions.push(format!(
                "(created_at < {t1} OR (created_at = {t2} AND id < {id}))"
            ));
        }
        // One more than asked, to know whether another page follows.
        let limit = next_param(Param::Int(i64::from(size.get()) + 1), &mut params);
        let where_clause = if conditions.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", conditions.join(" AND "))
        };
        let sql = format!(
            "SELECT {columns} FROM runs {where_clause} \
             ORDER BY created_at DESC, id DESC LIMIT {limit}"
        );
        let mut query = sqlx::query::<Any>(&sql);
        for p in params {
            query = match p {
                Param::Text(t) => query.bind(t),
                Param::Int(i) => query.bind(i),
            };
        }
        Ok(query.fetch_all(&self.pool).await?)
    }

    /// How many runs are in each state (for `system_state_counts`); every state is present.
    /// The counts are kept by triggers as runs are stored and change state (migration
    /// `0017_hot_paths`), so this reads a row per state, however many runs there are.
    pub async fn state_counts(&self) -> Result<BTreeMap<RunState, i64>, StoreError> {
        let rows = sqlx::query("SELECT state, n FROM run_state_counts")
            .fetch_all(&self.pool)
            .await?;
        let mut counts: BTreeMap<RunState, i64> =
            RunState::ALL.into_iter().map(|s| (s, 0)).collect();
        for row in rows {
            let state: String = row.try_get("state")?;
            let n: i64 = row.try_get("n")?;
            let state = state
                .parse::<RunState>()
                .map_err(|e| StoreError::Corrupt(e.to_string()))?;
            counts.insert(state, n);
        }
        Ok(counts)
    }

    /// Moves a run to a new state if it is in one of the expected states, recording the event.
    /// Returns `Ok(Err(current))` when the run was in another state (nothing changed).
    pub async fn transition(
        &self,
        change: &Transition<'_>,
    ) -> Result<Result<RunRecord, RunState>, StoreError> {
        if let Err(current) = self.compare_and_set(change).await? {
            return Ok(Err(current));
        }
        self.get_run(change.run)
            .await?
            .map(Ok)
            .ok_or(StoreError::RunNotFound(change.run))
    }

    /// Ends a run whose row does not parse as SYSTEM_ERROR, naming what is wrong, through the
    /// same compare-and-set and event as [`Store::transition`] (which reads only the run's
    /// state, so the rest of the row may be broken). `false`: it had ended, or changed state
    /// since it was read.
    pub async fn end_unreadable_run(
        &self,
        run: &UnreadableRun,
        actor: &Actor,
        at: Timestamp,
    ) -> Result<bool, StoreError> {
        if run.state.is_terminal() {
            return Ok(false);
        }
        let reason = format!("the stored run is unreadable: {}", run.reason);
        let change = Transition {
            run: run.id,
            from: &[run.state],
            to: RunState::SystemError,
            actor,
            reason: Some(&reason),
            exit_code: None,
            at,
        };
        Ok(self.compare_and_set(&change).await?.is_ok())
    }

    /// The state change of [`Store::transition`], reading nothing of the run but its state and
    /// last change time.
    async fn compare_and_set(
        &self,
        change: &Transition<'_>,
    ) -> Result<Result<(), RunState>, StoreError> {
        // Compare-and-set, retried if another writer moved the run between read and write.
        for _ in 0..8 {
            let row = sqlx::query("SELECT state, updated_at FROM runs WHERE id = $1")
                .bind(change.run.to_string())
                .fetch_optional(&self.pool)
                .await?;
            let Some(row) = row else {
                return Err(StoreError::RunNotFound(change.run));
            };
            let state: String = row.try_get("state")?;
            let current = parse_state(&state)?;
            let updated_at: i64 = row.try_get("updated_at")?;
            if !change.from.contains(&current) {
                return Ok(Err(current));
            }
            let at = change.at.micros().max(updated_at);
            let start = change.to.has_started().then_some(at);
            let end = change.to.is_terminal().then_some(at);
            let _turn = self.write_turn().await;
            let mut tx = self.pool.begin().await?;
            // The write comes first so that SQLite takes its write lock at once.
            let updated = sqlx::query(
                "UPDATE runs SET state = $1, updated_at = $2, \
                 start_time = COALESCE(start_time, $3), end_time = COALESCE(end_time, $4), \
                 exit_code = COALESCE($5, exit_code), reason = COALESCE($6, reason) \
                 WHERE id = $7 AND state = $8",
            )
            .bind(change.to.as_str())
            .bind(at)
            .bind(start)
            .bind(end)
            .bind(change.exit_code)
            .bind(change.reason.map(str::to_owned))
            .bind(change.run.to_string())
            .bind(current.as_str())
            .execute(&mut *tx)
            .await?;
            if updated.rows_affected() == 0 {
                tx.rollback().await?;
                continue;
            }
            sqlx::query(
                "INSERT INTO run_events (run_id, at, from_state, to_state, actor, reason) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(change.run.to_string())
            .bind(at)
            .bind(current.as_str())
            .bind(change.to.as_str())
            .bind(change.actor.key())
            .bind(change.reason.map(str::to_owned))
            .execute(&mut *tx)
            .await?;
            if change.to.is_terminal() {
                crate::outbox::enqueue(
                    &mut tx,
                    &change.run.to_string(),
                    crate::NotificationEvent::RunEnded,
                    Timestamp::from_micros(at),
                )
                .await?;
                let entry = AuditEntry::new(AuditKind::RunEnded, change.actor.clone())
                    .run(change.run)
                    .with("from", current.as_str())
                    .with("state", change.to.as_str())
                    .with("exit_code", change.exit_code)
                    .with("reason", change.reason);
                audit::append(&mut tx, &entry, Timestamp::from_micros(at)).await?;
            }
            tx.commit().await?;
            return Ok(Ok(()));
        }
        Err(StoreError::Unavailable(format!(
            "run {} kept changing under a state update",
            change.run
        )))
    }

    /// The run's history, oldest first.
    pub async fn run_events(&self, id: RunId) -> Result<Vec<RunEvent>, StoreError> {
        let rows = sqlx::query(
            "SELECT seq, at, from_state, to_state, actor, reason FROM run_events \
             WHERE run_id = $1 ORDER BY seq",
        )
        .bind(id.to_string())
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                let from: Option<String> = row.try_get("from_state")?;
                let to: String = row.try_get("to_state")?;
                Ok(RunEvent {
                    seq: row.try_get("seq")?,
                    at: Timestamp::from_micros(row.try_get("at")?),
                    from_state: from.map(|s| parse_state(&s)).transpose()?,
                    to_state: parse_state(&to)?,
                    actor: crate::people::actor(row, "actor")?,
                    reason: row.try_get("reason")?,
                })
            })
            .collect()
    }
}

fn parse_state(text: &str) -> Result<RunState, StoreError> {
    text.parse()
        .map_err(|e: spe_core::state::InvalidRunState| StoreError::Corrupt(e.to_string()))
}

/// Decodes a run row. A row whose id or state does not parse is [`StoreError::Corrupt`]; any
/// other column that does not parse makes it an [`UnreadableRun`] naming the column.
/// Cuts a page read with one row too many to `size`; the token of the next page, if that row
/// was there.
fn next_token<T>(
    rows: &mut Vec<T>,
    size: PageSize,
    key: impl Fn(&T) -> (Timestamp, RunId),
) -> Option<PageToken> {
    if rows.len() <= size.get() as usize {
        return None;
    }
    rows.truncate(size.get() as usize);
    rows.last().map(|last| {
        let (after_created, after_id) = key(last);
        PageToken {
            after_created,
            after_id,
        }
    })
}

/// The tags of a stored submission, without reading the rest of it.
#[derive(serde::Deserialize)]
struct StoredTags {
    #[serde(default)]
    tags: Tags,
}

fn summary_from_row(row: &AnyRow) -> Result<RunSummaryRecord, StoreError> {
    let id: String = row.try_get("id")?;
    let id: RunId = id
        .parse()
        .map_err(|_| StoreError::Corrupt(format!("run id {id:?}")))?;
    let state: String = row.try_get("state")?;
    let request: String = row.try_get("request_json")?;
    let stored: StoredTags = serde_json::from_str(&request)
        .map_err(|e| StoreError::Corrupt(format!("request_json of run {id}: {e}")))?;
    let time = |name: &str| -> Result<Option<Timestamp>, StoreError> {
        let micros: Option<i64> = row.try_get(name)?;
        Ok(micros.map(Timestamp::from_micros))
    };
    let created: i64 = row.try_get("created_at")?;
    Ok(RunSummaryRecord {
        id,
        state: parse_state(&state)?,
        created_at: Timestamp::from_micros(created),
        start_time: time("start_time")?,
        end_time: time("end_time")?,
        tags: stored.tags,
    })
}

pub(crate) fn run_from_row(row: &AnyRow) -> Result<RunRecord, StoreError> {
    let id: String = row.try_get("id")?;
    let id: RunId = id
        .parse()
        .map_err(|_| StoreError::Corrupt(format!("run id {id:?}")))?;
    let state: String = row.try_get("state")?;
    let state = parse_state(&state)?;
    let unreadable = |reason: String| UnreadableRun { id, state, reason };
    // One reader for every column: a value of the wrong type names its column.
    fn column<'r, T>(row: &'r AnyRow, name: &str) -> Result<T, String>
    where
        T: sqlx::Decode<'r, Any> + sqlx::Type<Any>,
    {
        row.try_get(name).map_err(|e| format!("{name}: {e}"))
    }
    let text = |name: &str| column::<String>(row, name).map_err(unreadable);
    let opt_text = |name: &str| column::<Option<String>>(row, name).map_err(unreadable);
    let int = |name: &str| column::<i64>(row, name).map_err(unreadable);
    let opt_int = |name: &str| column::<Option<i64>>(row, name).map_err(unreadable);
    let opt_time = |name: &str| Ok::<_, UnreadableRun>(opt_int(name)?.map(Timestamp::from_micros));

    let workflow_type = text("workflow_type")?;
    let workflow_type: WorkflowType = workflow_type
        .parse()
        .map_err(|()| unreadable(format!("workflow_type: unknown type {workflow_type:?}")))?;
    let submission: RunSubmission = serde_json::from_str(&text("request_json")?)
        .map_err(|e| unreadable(format!("request_json: {e}")))?;
    let slurm_job_id = opt_text("slurm_job_id")?
        .map(|job| job.parse::<SlurmJobId>())
        .transpose()
        .map_err(|e| unreadable(format!("slurm_job_id: {e}")))?;
    Ok(RunRecord {
        id,
        state,
        owner: Subject::from_key(&text("owner")?).map_err(|e| unreadable(format!("owner: {e}")))?,
        workflow_type,
        workflow_type_version: text("workflow_type_version")?,
        workflow_url: text("workflow_url")?,
        submission,
        run_dir: text("run_dir")?,
        created_at: Timestamp::from_micros(int("created_at")?),
        updated_at: Timestamp::from_micros(int("updated_at")?),
        start_time: opt_time("start_time")?,
        end_time: opt_time("end_time")?,
        exit_code: opt_int("exit_code")?,
        slurm_job_id,
        reason: opt_text("reason")?,
        submit_attempts: int("submit_attempts")?,
        log_dir: opt_text("log_dir")?,
    })
}

/// Decodes the rows of a work list: an unreadable run is an item of its own, so that the
/// caller ends it and goes on with the others.
pub(crate) fn work_list(
    rows: &[AnyRow],
) -> Result<Vec<Result<RunRecord, UnreadableRun>>, StoreError> {
    rows.iter()
        .map(|row| match run_from_row(row) {
            Ok(run) => Ok(Ok(run)),
            Err(StoreError::UnreadableRun(bad)) => Ok(Err(bad)),
            Err(other) => Err(other),
        })
        .collect()
}
