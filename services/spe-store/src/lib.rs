//! Persistence for the SPE.
//!
//! One code path serves both databases through sqlx's `Any` driver: SQLite, the embedded
//! default (a file created on first start, WAL mode), and PostgreSQL, chosen by a `postgres://`
//! URL. Each backend has its own embedded migrations, applied at start. Queries use `$n`
//! placeholders, which both drivers accept, and only types both share (TEXT, BIGINT).
//!
//! Records carry domain types (states as enums, job ids, workflow types, digests, the accepted
//! submission): each row is decoded here, once. A row that does not decode is an error, never
//! a default: [`StoreError::Corrupt`], or for a run whose id and state are readable an
//! [`UnreadableRun`], which the work lists return per item so that one bad run is ended
//! ([`Store::end_unreadable_run`]) without holding up the others.

pub mod audit;
mod crypt4gh_keys;
mod egress;
mod error;
mod execution;
mod ingress;
mod outbox;
mod people;
mod quota;
mod registry;
mod results;
mod retention;
mod review;
mod run_crate;
mod runs;
mod sessions;
mod states;

pub use crypt4gh_keys::{ReaderKey, ReaderKeySource};
pub use egress::{EgressFile, EgressOutcome, EgressRun, NewEgressFile, ReleasedFile};
pub use error::{StoreError, UnreadableRun};
pub use ingress::{NewUploadGrant, UploadFile, UploadGrant, UploadOutcome, UploadState};
pub use outbox::{
    Delivery, DeliveryOutcome, DeliveryState, Notification, NotificationEvent, OWNER_EMAIL,
};
pub use quota::{QuotaExceeded, Usage};
pub use registry::{
    Dataset, NewDataset, NewWorkflowVersion, Refusable, RegistryEvent, RegistryRefusal,
    WorkflowVersion,
};
pub use results::{ResultLink, RunShare, SharePrincipal};
pub use retention::DeletedRunData;
pub use review::{
    NewVote, RequestState, ReviewError, ReviewEvent, ReviewFilter, ReviewRequest, Tally,
    VoteOutcome,
};
pub use run_crate::RunCrateFacts;
pub use runs::{
    NewRun, RunEvent, RunFilter, RunPage, RunRecord, RunSummaryRecord, SummaryPage, Transition,
};
pub use sessions::LoginAdmission;
pub use states::{
    DatasetState, EgressState, ReviewEventKind, ShareKind, UnknownState, Vote, WorkflowState,
};

use std::path::Path;
use std::str::FromStr;
use std::sync::Once;
use std::time::Duration;

use spe_core::secret::DatabaseUrl;
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, ConnectOptions};

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The handle every service holds: a connection pool and which database is behind it.
#[derive(Clone, Debug)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    /// SQLite takes one writer at a time, and a second one waits in its busy handler, which
    /// sleeps in steps of up to 100 ms; write transactions of this process queue here instead
    /// (in order, woken at once). PostgreSQL locks rows: no gate.
    write_gate: Option<std::sync::Arc<tokio::sync::Mutex<()>>>,
}

impl Store {
    /// Connects, creating the SQLite file (and its folder) if needed, and applies migrations.
    pub async fn connect(url: &DatabaseUrl, max_connections: u32) -> Result<Store, StoreError> {
        Self::connect_with_timeout(url, max_connections, Duration::from_secs(10)).await
    }

    /// Like [`Store::connect`], waiting at most `timeout` for a connection.
    pub async fn connect_with_timeout(
        url: &DatabaseUrl,
        max_connections: u32,
        timeout: Duration,
    ) -> Result<Store, StoreError> {
        Self::connect_for(url, max_connections, timeout, None).await
    }

    /// Like [`Store::connect_with_timeout`], for a service that knows the deployment's primary
    /// issuer: rows written before identities were (issuer, sub) pairs are carried to it by the
    /// migration (`0010_subjects`). Without it, a database holding such rows refuses to migrate.
    pub async fn connect_for(
        url: &DatabaseUrl,
        max_connections: u32,
        timeout: Duration,
        primary_issuer: Option<&str>,
    ) -> Result<Store, StoreError> {
        Self::connect_inner(url, max_connections, timeout, primary_issuer, None).await
    }

    /// Connects applying only the migrations up to `last_version`: a database as an older
    /// release left it. Only for tests of migrations.
    #[doc(hidden)]
    pub async fn debug_connect_migrated_until(
        url: &DatabaseUrl,
        last_version: i64,
    ) -> Result<Store, StoreError> {
        Self::connect_inner(url, 2, Duration::from_secs(10), None, Some(last_version)).await
    }

    async fn connect_inner(
        url: &DatabaseUrl,
        max_connections: u32,
        timeout: Duration,
        primary_issuer: Option<&str>,
        last_version: Option<i64>,
    ) -> Result<Store, StoreError> {
        static DRIVERS: Once = Once::new();
        DRIVERS.call_once(sqlx::any::install_default_drivers);

        let (backend, url_text) = if url.is_postgres() {
            (Backend::Postgres, url.expose().to_owned())
        } else if url.is_sqlite() {
            (Backend::Sqlite, sqlite_url_creating_file(url.expose())?)
        } else {
            return Err(StoreError::Config(
                "database.url must start with sqlite: or postgres://".into(),
            ));
        };
        let options = AnyConnectOptions::from_str(&url_text)
            .map_err(|e| StoreError::Config(format!("database.url: {}", redact(e, url))))?
            // Statements are logged by our own spans; sqlx's would repeat them at info level.
            .disable_statement_logging();
        let pool = AnyPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(timeout)
            // SQLite allows one writer: WAL mode lets readers go on while it writes.
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        for pragma in [
                            "PRAGMA journal_mode = WAL",
                            "PRAGMA busy_timeout = 10000",
                            "PRAGMA foreign_keys = ON",
                            "PRAGMA synchronous = NORMAL",
                            // 16 MiB of pages per connection (the default is 2 MiB): hot
                            // indexes stay in memory instead of being read again.
                            "PRAGMA cache_size = -16384",
                        ] {
                            sqlx::query(pragma).execute(&mut *conn).await?;
                        }
                    }
                    Ok(())
                })
            })
            .connect_with(options)
            .await
            .map_err(|e| StoreError::Unavailable(redact(e, url)))?;
        let all = match backend {
            Backend::Sqlite => &SQLITE_MIGRATIONS,
            Backend::Postgres => &POSTGRES_MIGRATIONS,
        };
        let partial;
        let migrator = match last_version {
            None => all,
            Some(last) => {
                partial = sqlx::migrate::Migrator {
                    migrations: all
                        .migrations
                        .iter()
                        .filter(|m| m.version <= last)
                        .cloned()
                        .collect::<Vec<_>>()
                        .into(),
                    ..sqlx::migrate::Migrator::DEFAULT
                };
                &partial
            }
        };
        // Two services starting together on a new SQLite file (which has no migration lock,
        // unlike PostgreSQL) may race; the loser finds the winner's work on a second look.
        let mut attempt = 0;
        loop {
            match migrate(&pool, migrator, primary_issuer).await {
                Ok(()) => break,
                Err(e) if attempt < 5 => {
                    attempt += 1;
                    tracing::warn!(error = %redact(&e, url), attempt, "migration failed; retrying");
                    tokio::time::sleep(Duration::from_millis(200 * attempt)).await;
                }
                Err(e) => return Err(StoreError::Migration(redact(e, url))),
            }
        }
        let write_gate =
            (backend == Backend::Sqlite).then(|| std::sync::Arc::new(tokio::sync::Mutex::new(())));
        Ok(Store {
            pool,
            backend,
            write_gate,
        })
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// This process's turn to write to SQLite (`None` on PostgreSQL): taken before every write,
    /// a transaction or a single statement, and held until it has ended, so writers queue in
    /// order here instead of sleeping in SQLite's busy handler. Not re-entrant: a method holding
    /// it calls no other method that takes it.
    pub(crate) async fn write_turn(&self) -> Option<tokio::sync::OwnedMutexGuard<()>> {
        match &self.write_gate {
            Some(gate) => Some(gate.clone().lock_owned().await),
            None => None,
        }
    }

    /// A cheap round trip, for readiness checks.
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// The journal mode SQLite reports (`wal` when set up as intended); `None` on PostgreSQL.
    pub async fn sqlite_journal_mode(&self) -> Result<Option<String>, StoreError> {
        if self.backend != Backend::Sqlite {
            return Ok(None);
        }
        let mode: (String,) = sqlx::query_as("PRAGMA journal_mode")
            .fetch_one(&self.pool)
            .await?;
        Ok(Some(mode.0))
    }
}

/// Applies the migrations on one connection, which first holds the migration context (a
/// temporary table, so it is this connection's alone and gone when it closes).
async fn migrate(
    pool: &AnyPool,
    migrator: &sqlx::migrate::Migrator,
    primary_issuer: Option<&str>,
) -> Result<(), sqlx::migrate::MigrateError> {
    let mut conn = pool.acquire().await?;
    sqlx::query("CREATE TEMP TABLE IF NOT EXISTS spe_migration_context (issuer TEXT)")
        .execute(&mut *conn)
        .await?;
    sqlx::query("DELETE FROM spe_migration_context")
        .execute(&mut *conn)
        .await?;
    if let Some(issuer) = primary_issuer {
        sqlx::query("INSERT INTO spe_migration_context (issuer) VALUES ($1)")
            .bind(issuer.to_owned())
            .execute(&mut *conn)
            .await?;
    }
    let result = migrator.run(&mut *conn).await;
    // The connection goes back to the pool: leave nothing of the context behind.
    sqlx::query("DROP TABLE IF EXISTS spe_migration_context")
        .execute(&mut *conn)
        .await?;
    result
}

/// Turns `sqlite://relative/or/absolute.db` into a URL sqlx opens read-write-create, after
/// making sure the folder exists.
fn sqlite_url_creating_file(url: &str) -> Result<String, StoreError> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .unwrap_or_default();
    let (path, query) = match rest.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (rest, None),
    };
    if path.is_empty() {
        return Err(StoreError::Config(
            "database.url: name a file, e.g. sqlite://var/spe.db".into(),
        ));
    }
    if path != ":memory:"
        && let Some(parent) = Path::new(path).parent()
        && !parent.as_os_str().is_empty()
    {
        std::fs::create_dir_all(parent).map_err(|e| {
            StoreError::Unavailable(format!("cannot create {}: {e}", parent.display()))
        })?;
    }
    let mut params: Vec<&str> = query.map(|q| q.split('&').collect()).unwrap_or_default();
    if !params.iter().any(|p| p.starts_with("mode=")) {
        params.push("mode=rwc");
    }
    Ok(format!("sqlite://{path}?{}", params.join("&")))
}

/// How a database's applied migrations compare with the ones this build carries
/// ([`migration_status`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationStatus {
    /// Applied and known to this build.
    pub applied: usize,
    /// Known to this build, not applied yet (the service applies them at its next start).
    pub pending: Vec<i64>,
    /// Applied but unknown to this build: the database is a newer release's.
    pub unknown: Vec<i64>,
    /// Applied, but their text differs from this build's.
    pub changed: Vec<i64>,
    /// Applied and marked failed.
    pub failed: Vec<i64>,
}

/// Reads which migrations the database at `url` has applied, changing nothing (a SQLite file
/// is opened read-only and never created): for operators' checks before a start or upgrade.
pub async fn migration_status(
    url: &DatabaseUrl,
    timeout: Duration,
) -> Result<MigrationStatus, StoreError> {
    static DRIVERS: Once = Once::new();
    DRIVERS.call_once(sqlx::any::install_default_drivers);
    let (all, url_text) = if url.is_postgres() {
        (&POSTGRES_MIGRATIONS, url.expose().to_owned())
    } else if url.is_sqlite() {
        let rest = url
            .expose()
            .strip_prefix("sqlite://")
            .or_else(|| url.expose().strip_prefix("sqlite:"))
            .unwrap_or_default();
        let path = rest.split_once('?').map_or(rest, |(p, _)| p);
        if !Path::new(path).is_file() {
            return Err(StoreError::Unavailable(format!(
                "no SQLite database at {path}"
            )));
        }
        (&SQLITE_MIGRATIONS, format!("sqlite://{path}?mode=ro"))
    } else {
        return Err(StoreError::Config(
            "database.url must start with sqlite: or postgres://".into(),
        ));
    };
    let options = AnyConnectOptions::from_str(&url_text)
        .map_err(|e| StoreError::Config(format!("database.url: {}", redact(e, url))))?
        .disable_statement_logging();
    let pool = AnyPoolOptions::new()
        .max_connections(1)
        .acquire_timeout(timeout)
        .connect_with(options)
        .await
        .map_err(|e| StoreError::Unavailable(redact(e, url)))?;
    // No table yet: nothing applied.
    // `success` as a number: the Any driver cannot decode SQLite's booleans.
    let rows = match sqlx::query(
        "SELECT version, checksum, CAST(CASE WHEN success THEN 1 ELSE 0 END AS BIGINT) AS ok \
         FROM _sqlx_migrations",
    )
    .fetch_all(&pool)
    .await
    {
        Ok(rows) => rows,
        Err(e) if e.to_string().contains("_sqlx_migrations") => Vec::new(),
        Err(e) => return Err(StoreError::Unavailable(redact(e, url))),
    };
    pool.close().await;
    let mut status = MigrationStatus {
        applied: 0,
        pending: Vec::new(),
        unknown: Vec::new(),
        changed: Vec::new(),
        failed: Vec::new(),
    };
    use sqlx::Row;
    let mut seen = std::collections::BTreeSet::new();
    for row in rows {
        let version: i64 = row.try_get("version")?;
        let checksum: Vec<u8> = row.try_get("checksum")?;
        let success = row.try_get::<i64, _>("ok")? == 1;
        seen.insert(version);
        match all.migrations.iter().find(|m| m.version == version) {
            None => status.unknown.push(version),
            Some(_) if !success => status.failed.push(version),
            Some(m) if *m.checksum != *checksum => status.changed.push(version),
            Some(_) => status.applied += 1,
        }
    }
    status.pending = all
        .migrations
        .iter()
        .map(|m| m.version)
        .filter(|v| !seen.contains(v))
        .collect();
    Ok(status)
}

/// Error texts from drivers may quote the URL; never let a password through.
fn redact(e: impl std::fmt::Display, url: &DatabaseUrl) -> String {
    let text = e.to_string();
    text.replace(url.expose(), &url.redacted())
}

impl Store {
    /// Runs one raw statement. Only for tests that check what the schema forbids.
    #[doc(hidden)]
    pub async fn debug_execute(&self, sql: &str) -> Result<u64, StoreError> {
        Ok(sqlx::query(sql).execute(&self.pool).await?.rows_affected())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_urls_get_create_mode() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a/b/spe.db");
        let url = sqlite_url_creating_file(&format!("sqlite://{}", file.display())).unwrap();
        assert!(url.ends_with("spe.db?mode=rwc"), "{url}");
        assert!(dir.path().join("a/b").is_dir());
        assert!(sqlite_url_creating_file("sqlite://").is_err());
    }
}
