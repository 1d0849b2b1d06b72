//! Quotas: a run is stored only if its owner stays within their limits, checked in the same
//! transaction as the insert, so concurrent submissions of one user cannot all slip under a
//! limit (SQLite: the insert takes the write lock first; PostgreSQL: a transaction-scoped
//! advisory lock per owner) and a refused submission leaves nothing behind.

use spe_core::config::QuotaLimits;
use spe_core::time::Timestamp;
use sqlx::Row;

use crate::execution::LIVE_STATES;
use crate::{Backend, NewRun, Store, StoreError};

/// A limit a submission would go over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuotaExceeded {
    /// The limit's config name, e.g. `live_runs`.
    pub quota: &'static str,
    pub limit: u64,
    /// What the owner has (with this submission).
    pub would_have: u64,
    /// When trying again can succeed, in seconds (for `Retry-After`).
    pub retry_after_seconds: u64,
}

impl std::fmt::Display for QuotaExceeded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let what = match self.quota {
            "runs_per_day" => "runs submitted in the last 24 hours",
            "submissions_per_minute" => "runs submitted in the last minute",
            "live_runs" => "runs not ended yet",
            "live_cores" => "cores of runs not ended yet",
            _ => "memory (MB) of runs not ended yet",
        };
        write!(
            f,
            "quota {} exceeded: {} {what} with this one, the limit is {}; try again in {} s",
            self.quota, self.would_have, self.limit, self.retry_after_seconds
        )
    }
}

/// What a run asks for, as quotas count it.
pub(crate) fn asks(run: &NewRun) -> (i64, i64) {
    let param = |name: &str| {
        run.submission
            .workflow_engine_parameters
            .get(name)
            .and_then(|v| v.parse::<i64>().ok())
            .unwrap_or(0)
    };
    (param("cores"), param("memory_mb"))
}

/// The quota windows' lengths in microseconds; also the spans of `owner_submission_buckets`.
const MINUTE_US: i64 = 60_000_000;
const DAY_US: i64 = 86_400_000_000;

/// A count column (never negative; read as 0 if it were).
fn count(row: &sqlx::any::AnyRow, col: &str) -> Result<u64, StoreError> {
    let value: i64 = row.try_get(col)?;
    Ok(u64::try_from(value).unwrap_or(0))
}

/// The first limit gone over, in the order given: (name, would have, limit, retry after).
fn first_exceeded(
    checks: impl IntoIterator<Item = (&'static str, u64, u64, u64)>,
) -> Option<QuotaExceeded> {
    checks
        .into_iter()
        .find(|(_, have, limit, _)| have > limit)
        .map(|(quota, would_have, limit, retry)| QuotaExceeded {
            quota,
            limit,
            would_have,
            retry_after_seconds: retry,
        })
}

/// `state IN (...)` over the live states, their placeholders from `$first` on.
fn live_in(first: usize) -> String {
    let marks: Vec<String> = (first..first + LIVE_STATES.len())
        .map(|i| format!("${i}"))
        .collect();
    format!("state IN ({})", marks.join(", "))
}

impl Store {
    /// Inside the insert's transaction, after the run's row: takes the owner's lock (PostgreSQL)
    /// and counts the owner's usage, this run included. `Some` when a limit is exceeded; the
    /// caller then rolls back.
    pub(crate) async fn over_quota(
        &self,
        tx: &mut sqlx::Transaction<'_, sqlx::Any>,
        owner_key: &str,
        limits: &QuotaLimits,
        now: Timestamp,
    ) -> Result<Option<QuotaExceeded>, StoreError> {
        if self.backend() == Backend::Postgres {
            sqlx::query("SELECT pg_advisory_xact_lock(hashtext($1)) IS NULL AS locked")
                .bind(owner_key)
                .fetch_one(&mut **tx)
                .await?;
        }
        // What is live: the owner's one row of `owner_live_usage`, kept by triggers as runs come
        // and end (0017_hot_paths). The windows: first the owner's submission buckets (0023),
        // which bound them; only a bound that could exceed its limit needs the exact count.
        let row = sqlx::query(
            "SELECT \
             COALESCE((SELECT runs FROM owner_live_usage WHERE owner = $1), 0) AS live, \
             COALESCE((SELECT cores FROM owner_live_usage WHERE owner = $1), 0) AS cores, \
             COALESCE((SELECT memory_mb FROM owner_live_usage WHERE owner = $1), 0) AS memory_mb, \
             COALESCE((SELECT bucket FROM owner_submission_buckets \
                       WHERE owner = $1 AND span_us = $2), -1) AS minute_bucket, \
             COALESCE((SELECT runs + prev_runs FROM owner_submission_buckets \
                       WHERE owner = $1 AND span_us = $2), 0) AS minute_bound, \
             COALESCE((SELECT bucket FROM owner_submission_buckets \
                       WHERE owner = $1 AND span_us = $3), -1) AS day_bucket, \
             COALESCE((SELECT runs + prev_runs FROM owner_submission_buckets \
                       WHERE owner = $1 AND span_us = $3), 0) AS day_bound",
        )
        .bind(owner_key)
        .bind(MINUTE_US)
        .bind(DAY_US)
        .fetch_one(&mut **tx)
        .await?;
        let live = |col: &str| count(&row, col);
        let live_checks = [
            ("live_runs", live("live")?, limits.live_runs, 60),
            ("live_cores", live("cores")?, limits.live_cores, 60),
            (
                "live_memory_mb",
                live("memory_mb")?,
                limits.live_memory_mb,
                60,
            ),
        ];
        // A window of one span ending now lies in the current bucket and the one before, whose
        // counts the row holds when its newest bucket is the current one.
        let within =
            |bucket: &str, bound: &str, span: i64, limit: u64| -> Result<bool, StoreError> {
                let newest: i64 = row.try_get(bucket)?;
                let bound: i64 = row.try_get(bound)?;
                Ok(newest == now.micros() / span
                    && u64::try_from(bound).unwrap_or(u64::MAX) <= limit)
            };
        if within(
            "minute_bucket",
            "minute_bound",
            MINUTE_US,
            limits.submissions_per_minute,
        )? && within("day_bucket", "day_bound", DAY_US, limits.runs_per_day)?
        {
            return Ok(first_exceeded(live_checks));
        }
        let minute = now.micros() - MINUTE_US;
        let day = now.micros() - DAY_US;
        // The exact windows: a range of the (owner, created_at) index.
        let row = sqlx::query(
            "SELECT \
             COALESCE(SUM(CASE WHEN created_at > $2 THEN 1 ELSE 0 END), 0) AS last_minute, \
             COALESCE(MIN(CASE WHEN created_at > $2 THEN created_at END), 0) AS first_in_minute, \
             COUNT(*) AS last_day, COALESCE(MIN(created_at), 0) AS first_in_day \
             FROM runs WHERE owner = $1 AND created_at > $3",
        )
        .bind(owner_key)
        .bind(minute)
        .bind(day)
        .fetch_one(&mut **tx)
        .await?;
        let n = |col: &str| count(&row, col);
        let until = |first: u64, window: i64| {
            let ends = i64::try_from(first).unwrap_or(0).saturating_add(window);
            u64::try_from((ends - now.micros()) / 1_000_000 + 1).unwrap_or(1)
        };
        let window_checks = [
            (
                "submissions_per_minute",
                n("last_minute")?,
                limits.submissions_per_minute,
                until(n("first_in_minute")?, MINUTE_US),
            ),
            (
                "runs_per_day",
                n("last_day")?,
                limits.runs_per_day,
                until(n("first_in_day")?, DAY_US),
            ),
        ];
        Ok(first_exceeded(window_checks.into_iter().chain(live_checks)))
    }
}

/// One owner's use of one workflow version since a time.
#[derive(Debug, Clone, PartialEq)]
pub struct Usage {
    pub owner: spe_core::Subject,
    /// `name@version`.
    pub workflow_url: String,
    /// Runs submitted.
    pub runs: i64,
    /// Of those, not ended yet, and what they ask for.
    pub live_runs: i64,
    pub live_cores: i64,
    pub live_memory_mb: i64,
    /// Wall time of ended runs between the start and end the scheduler reported, in hours.
    pub wall_hours: f64,
    /// That wall time times the cores each run asked for.
    pub core_hours: f64,
}

impl Store {
    /// Use per owner (only `owner` when given) and workflow version of runs submitted since
    /// `since`, by owner and workflow.
    pub async fn usage(
        &self,
        owner: Option<&spe_core::Subject>,
        since: Timestamp,
    ) -> Result<Vec<Usage>, StoreError> {
        let live = live_in(1);
        let (since_at, owner_at) = (LIVE_STATES.len() + 1, LIVE_STATES.len() + 2);
        let sql = format!(
            "SELECT owner, workflow_url, COUNT(*) AS runs, \
             COALESCE(SUM(CASE WHEN {live} THEN 1 ELSE 0 END), 0) AS live, \
             CAST(COALESCE(SUM(CASE WHEN {live} THEN cores ELSE 0 END), 0) AS BIGINT) AS cores, \
             CAST(COALESCE(SUM(CASE WHEN {live} THEN memory_mb ELSE 0 END), 0) AS BIGINT) \
               AS memory_mb, \
             CAST(COALESCE(SUM(CASE WHEN start_time IS NOT NULL AND end_time IS NOT NULL \
               THEN end_time - start_time ELSE 0 END), 0) AS BIGINT) AS wall, \
             CAST(COALESCE(SUM(CASE WHEN start_time IS NOT NULL AND end_time IS NOT NULL \
               THEN (end_time - start_time) * (CASE WHEN cores > 0 THEN cores ELSE 1 END) \
               ELSE 0 END), 0) AS BIGINT) AS core_time \
             FROM runs WHERE created_at >= ${since_at} AND (${owner_at} IS NULL OR owner = ${owner_at}) \
             GROUP BY owner, workflow_url ORDER BY owner, workflow_url"
        );
        let mut query = sqlx::query(&sql);
        for state in LIVE_STATES {
            query = query.bind(state.as_str());
        }
        let rows = query
            .bind(since.micros())
            .bind(owner.map(|o| o.key()))
            .fetch_all(&self.pool)
            .await?;
        const HOUR: f64 = 3_600_000_000.0;
        rows.iter()
            .map(|r| {
                let wall: i64 = r.try_get("wall")?;
                let core_time: i64 = r.try_get("core_time")?;
                Ok(Usage {
                    owner: crate::people::subject(r, "owner")?,
                    workflow_url: r.try_get("workflow_url")?,
                    runs: r.try_get("runs")?,
                    live_runs: r.try_get("live")?,
                    live_cores: r.try_get("cores")?,
                    live_memory_mb: r.try_get("memory_mb")?,
                    wall_hours: wall as f64 / HOUR,
                    core_hours: core_time as f64 / HOUR,
                })
            })
            .collect()
    }
}
