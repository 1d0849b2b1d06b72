//! Runs, their tags and their append-only event history.

use std::collections::BTreeMap;

use serde_json::Value;
use spe_core::page::{PageSize, PageToken};
use spe_core::time::Timestamp;
use spe_core::{Actor, RunId, RunState, Subject};
use sqlx::any::AnyRow;
use sqlx::{Any, Row};

use crate::{Store, StoreError};

/// A run about to be accepted: stored in state QUEUED together with its first event.
#[derive(Debug, Clone)]
pub struct NewRun {
    pub id: RunId,
    pub owner: Subject,
    pub workflow_type: String,
    pub workflow_type_version: String,
    pub workflow_url: String,
    /// The request as WES shows it back (`RunLog.request`).
    pub request: Value,
    pub tags: Vec<(String, String)>,
    pub run_dir: String,
    pub created_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RunRecord {
    pub id: RunId,
    pub state: RunState,
    pub owner: Subject,
    pub workflow_type: String,
    pub workflow_type_version: String,
    pub workflow_url: String,
    pub request: Value,
    pub run_dir: String,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub start_time: Option<Timestamp>,
    pub end_time: Option<Timestamp>,
    pub exit_code: Option<i64>,
    pub slurm_job_id: Option<String>,
    pub reason: Option<String>,
    /// How many times submission to Slurm has failed transiently so far.
    pub submit_attempts: i64,
    /// The run's `.weskit/<timestamp>` folder, once submitted.
    pub log_dir: Option<String>,
}

impl RunRecord {
    /// Tags as given at submission.
    pub fn tags(&self) -> BTreeMap<String, String> {
        match self.request.get("tags") {
            Some(Value::Object(map)) => map
                .iter()
                .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_owned())))
                .collect(),
            _ => BTreeMap::new(),
        }
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
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO runs (id, state, owner, workflow_type, workflow_type_version, \
             workflow_url, request_json, run_dir, created_at, updated_at, access_visas) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        )
        .bind(run.id.to_string())
        .bind(RunState::Queued.as_str())
        .bind(run.owner.key())
        .bind(&run.workflow_type)
        .bind(&run.workflow_type_version)
        .bind(&run.workflow_url)
        .bind(run.request.to_string())
        .bind(&run.run_dir)
        .bind(run.created_at.micros())
        .bind(run.created_at.micros())
        .bind(access_visas.map(Value::to_string))
        .execute(&mut *tx)
        .await?;
        for (key, value) in &run.tags {
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
        .bind(run.owner.key())
        .bind("accepted")
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
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
            "SELECT {RUN_COLUMNS} FROM runs {where_clause} \
             ORDER BY created_at DESC, id DESC LIMIT {limit}"
        );
        let mut query = sqlx::query::<Any>(&sql);
        for p in params {
            query = match p {
                Param::Text(t) => query.bind(t),
                Param::Int(i) => query.bind(i),
            };
        }
        let rows = query.fetch_all(&self.pool).await?;
        let mut runs = rows
            .iter()
            .map(run_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        let next = if runs.len() > size.get() as usize {
            runs.truncate(size.get() as usize);
            runs.last().map(|last| PageToken {
                after_created: last.created_at,
                after_id: last.id,
            })
        } else {
            None
        };
        Ok(RunPage { runs, next })
    }

    /// How many runs are in each state (for `system_state_counts`); every state is present.
    pub async fn state_counts(&self) -> Result<BTreeMap<RunState, i64>, StoreError> {
        let rows = sqlx::query("SELECT state, COUNT(*) AS n FROM runs GROUP BY state")
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
        // Compare-and-set, retried if another writer moved the run between read and write.
        for _ in 0..8 {
            let Some(current) = self.get_run(change.run).await? else {
                return Err(StoreError::RunNotFound(change.run));
            };
            if !change.from.contains(&current.state) {
                return Ok(Err(current.state));
            }
            let at = change.at.micros().max(current.updated_at.micros());
            let start = change.to.has_started().then_some(at);
            let end = change.to.is_terminal().then_some(at);
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
            .bind(current.state.as_str())
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
            .bind(current.state.as_str())
            .bind(change.to.as_str())
            .bind(change.actor.key())
            .bind(change.reason.map(str::to_owned))
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            return self
                .get_run(change.run)
                .await?
                .map(Ok)
                .ok_or(StoreError::RunNotFound(change.run));
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

pub(crate) fn run_from_row(row: &AnyRow) -> Result<RunRecord, StoreError> {
    let id: String = row.try_get("id")?;
    let state: String = row.try_get("state")?;
    let request: String = row.try_get("request_json")?;
    let opt_time = |name: &str| -> Result<Option<Timestamp>, StoreError> {
        let v: Option<i64> = row.try_get(name)?;
        Ok(v.map(Timestamp::from_micros))
    };
    Ok(RunRecord {
        id: id
            .parse()
            .map_err(|_| StoreError::Corrupt(format!("run id {id:?}")))?,
        state: parse_state(&state)?,
        owner: crate::people::subject(row, "owner")?,
        workflow_type: row.try_get("workflow_type")?,
        workflow_type_version: row.try_get("workflow_type_version")?,
        workflow_url: row.try_get("workflow_url")?,
        request: serde_json::from_str(&request)
            .map_err(|e| StoreError::Corrupt(format!("request of run {id}: {e}")))?,
        run_dir: row.try_get("run_dir")?,
        created_at: Timestamp::from_micros(row.try_get("created_at")?),
        updated_at: Timestamp::from_micros(row.try_get("updated_at")?),
        start_time: opt_time("start_time")?,
        end_time: opt_time("end_time")?,
        exit_code: row.try_get("exit_code")?,
        slurm_job_id: row.try_get("slurm_job_id")?,
        reason: row.try_get("reason")?,
        submit_attempts: row.try_get("submit_attempts")?,
        log_dir: row.try_get("log_dir")?,
    })
}
