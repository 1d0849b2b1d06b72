//! What happens to one finished run: find its outputs, decide each one by the egress rules of
//! the approved workflow version (read from the store, never from the run directory), upload
//! what may be released, record everything in the store, write the manifest object, mark the
//! run done.

use std::collections::{HashMap, HashSet};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use sha2::{Digest, Sha256};
use spe_core::bucket::{self, DISCLOSURE_FILE, MANIFEST_FILE};
use spe_core::config::CrawlerConfig;
use spe_core::disclosure::{
    FileReport, Outcome, Sniffer, check_file, check_streamed, disclosure_document,
};
use spe_core::manifest::{
    EgressDecision, EgressMatcher, Manifest, OutputCheck, OutputEncryption, WorkflowRef,
};
use spe_core::time::Timestamp;
use spe_core::{RunId, RunState};
use spe_crypt4gh::{PublicKey, SEGMENT_SIZE, Sealer};
use spe_store::{
    EgressFile, EgressOutcome, EgressRun, EgressState, NewEgressFile, ReviewEventKind, Store,
    StoreError, Vote,
};

use crate::metrics::Metrics;
use crate::s3::{Bucket, Existing, content_type};
use crate::safe_fs::{Fingerprint, Found, open_beneath, walk};

/// Tuning taken from `crawler.*`.
#[derive(Debug, Clone)]
pub struct Settings {
    pub multipart_threshold: u64,
    pub part_size: u64,
    pub concurrency: usize,
    pub max_backoff: Duration,
    pub lease: Duration,
    /// Failed walks of a run directory before its egress is settled as failed.
    pub walk_max_attempts: u32,
    /// Most entries one walk looks at.
    pub walk_max_entries: usize,
}

impl Settings {
    pub fn from_config(c: &CrawlerConfig) -> Settings {
        Settings {
            multipart_threshold: c.multipart_threshold_bytes,
            part_size: c.multipart_part_bytes,
            concurrency: c.upload_concurrency,
            max_backoff: Duration::from_secs(c.retry_max_backoff_seconds),
            lease: Duration::from_secs(c.lease_seconds),
            walk_max_attempts: c.walk_max_attempts,
            walk_max_entries: c.walk_max_entries,
        }
    }
}

/// Called after a file's bytes were read and before they are checked for changes (tests use
/// it to change a file in the middle of its upload).
pub type AfterRead = Arc<dyn Fn(&Path, &str) + Send + Sync>;

/// What processing a run came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunOutcome {
    /// Not ended yet, or no log.json yet: try again later.
    NotReady(&'static str),
    /// Ended in a state its manifest does not release (`egress.release_states`, COMPLETE only
    /// by default), or the run is unknown: nothing is released, and the run is settled (marked
    /// done) so that it is never looked at again.
    NotEligible,
    /// Some files wait for a retry (or another crawler).
    InProgress,
    /// Every file settled, manifest written.
    Done,
    /// This process is already working on it.
    Busy,
    /// Its directory could not be walked: retried later with backoff, or, after
    /// `walk_max_attempts`, settled as "egress failed" (nothing released), with the reason kept
    /// against the run.
    Failed,
}

/// Runs read per page of a rescan.
const RESCAN_PAGE: i64 = 1000;

#[derive(Debug, thiserror::Error)]
pub enum CrawlError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("run directory {0}: {1}")]
    Walk(String, std::io::Error),
    #[error(transparent)]
    S3(#[from] crate::s3::S3Error),
}

enum Transfer {
    /// Sent; `sha256` and `size` are the plaintext's, `encrypted` how the object is stored.
    Released {
        sha256: String,
        size: u64,
        encrypted: Option<OutputEncryption>,
    },
    Held(String),
    Refused(String),
    Changed(String),
    /// Approved in review, but the bytes found are not the approved ones (their SHA-256).
    ChangedAfterApproval(String),
    Retry(String),
    /// Another crawler took the file over (our lease ran out).
    Lost,
}

#[derive(Clone)]
pub struct Crawler {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    bucket: Bucket,
    owner: String,
    settings: Settings,
    metrics: Arc<Metrics>,
    first_seen: Mutex<HashMap<RunId, Instant>>,
    busy: Mutex<HashSet<RunId>>,
    rules: Mutex<HashMap<String, Arc<Option<EgressMatcher>>>>,
    after_read: Option<AfterRead>,
    /// Writes the run's RO-Crate (and, with a key, its signed receipt) into the package.
    crate_writer: Option<(
        crate::receipt::CrateIdentity,
        Option<Arc<crate::receipt::Signer>>,
    )>,
    /// The service's Crypt4GH public key: outputs an `encrypt` rule names are stored
    /// encrypted to it (docs/crypt4gh.md).
    seal_to: Option<PublicKey>,
    /// Set on SIGTERM: no new file is claimed; transfers under way go on (`Crawler::stop`).
    stopping: std::sync::atomic::AtomicBool,
}

struct BusyGuard<'a>(&'a Mutex<HashSet<RunId>>, RunId);

impl Drop for BusyGuard<'_> {
    fn drop(&mut self) {
        if let Ok(mut set) = self.0.lock() {
            set.remove(&self.1);
        }
    }
}

fn now() -> Timestamp {
    Timestamp::from_datetime(chrono::Utc::now())
}

/// The wait before attempt `attempt + 1`: 1 s after the first, doubling, at most `max`.
fn backoff(attempt: i64, max: Duration) -> Duration {
    let exp = u32::try_from(attempt.clamp(1, 20) - 1).unwrap_or(0);
    Duration::from_secs(1u64 << exp).min(max)
}

impl Crawler {
    pub fn new(store: Store, bucket: Bucket, settings: Settings, metrics: Arc<Metrics>) -> Self {
        Crawler {
            inner: Arc::new(Inner {
                store,
                bucket,
                owner: format!("crawler-{}", uuid::Uuid::new_v4()),
                settings,
                metrics,
                first_seen: Mutex::new(HashMap::new()),
                busy: Mutex::new(HashSet::new()),
                rules: Mutex::new(HashMap::new()),
                after_read: None,
                crate_writer: None,
                seal_to: None,
                stopping: std::sync::atomic::AtomicBool::new(false),
            }),
        }
    }

    /// Claims no new file from now on (files under way go on): the start of a graceful stop.
    pub fn stop_claiming(&self) {
        self.inner
            .stopping
            .store(true, std::sync::atomic::Ordering::SeqCst);
    }

    /// How many runs this crawler is working on now.
    pub fn runs_under_way(&self) -> usize {
        self.inner.busy.lock().map_or(0, |b| b.len())
    }

    pub fn is_stopping(&self) -> bool {
        self.inner
            .stopping
            .load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Hands back every file this crawler still has under way (their leases end now, so
    /// another crawler takes them over at once); how many.
    pub async fn hand_back(&self) -> Result<u64, StoreError> {
        self.inner
            .store
            .hand_back_egress_files(&self.inner.owner, now())
            .await
    }

    #[doc(hidden)]
    pub fn with_after_read(
        store: Store,
        bucket: Bucket,
        settings: Settings,
        hook: AfterRead,
    ) -> Self {
        let mut c = Self::new(store, bucket, settings, Arc::new(Metrics::default()));
        if let Some(inner) = Arc::get_mut(&mut c.inner) {
            inner.after_read = Some(hook);
        }
        c
    }

    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.inner.metrics
    }

    /// Adds the run's Five Safes RO-Crate to every package, signed when `signer` is given.
    /// Call before the crawler is cloned.
    pub fn with_crate(
        mut self,
        identity: crate::receipt::CrateIdentity,
        signer: Option<Arc<crate::receipt::Signer>>,
    ) -> Self {
        if let Some(inner) = Arc::get_mut(&mut self.inner) {
            inner.crate_writer = Some((identity, signer));
        }
        self
    }

    /// Stores the outputs an `encrypt: crypt4gh` rule names encrypted to `key`. Without it
    /// such outputs wait (retried) rather than leave in plaintext. Call before cloning.
    pub fn with_crypt4gh_key(mut self, key: PublicKey) -> Self {
        if let Some(inner) = Arc::get_mut(&mut self.inner) {
            inner.seal_to = Some(key);
        }
        self
    }

    pub fn owner(&self) -> &str {
        &self.inner.owner
    }

    /// Goes through every ended run whose egress is not done (the store knows them; runs
    /// done before cost nothing). Returns how many are done (or settled with nothing released)
    /// now and how many wait.
    pub async fn rescan(&self) -> Result<(usize, usize), StoreError> {
        let m = &self.inner.metrics;
        Metrics::add(&m.rescans, 1);
        let (mut done, mut waiting) = (0, 0);
        // Page by page through every run awaiting egress (by end time and id), so that however
        // many runs wait, each is looked at once per rescan.
        let started = now();
        let mut after = None;
        loop {
            let runs = self
                .inner
                .store
                .runs_awaiting_egress_page(after, started, RESCAN_PAGE)
                .await?;
            let full = runs.len() as i64 == RESCAN_PAGE;
            after = runs
                .last()
                .map(|r| (r.end_time.unwrap_or(Timestamp::from_micros(0)), r.id));
            for run in runs {
                let id = run.id;
                match self.process(run).await {
                    Ok(RunOutcome::Done | RunOutcome::NotEligible | RunOutcome::Failed) => {
                        done += 1
                    }
                    Ok(_) => waiting += 1,
                    Err(e) => {
                        waiting += 1;
                        tracing::warn!(run_id = %id, error = %e, "egress of the run failed; retried later");
                    }
                }
            }
            if !full {
                break;
            }
        }
        if let Ok(n) = self.inner.store.egress_backlog().await {
            m.backlog_runs.set(n);
        }
        Ok((done, waiting))
    }

    /// Processes one run by id (a watcher saw its log.json).
    pub async fn process_run_id(&self, id: RunId) -> Result<RunOutcome, CrawlError> {
        match self.inner.store.egress_run(id).await? {
            Some(run) => self.process(run).await,
            None => Ok(RunOutcome::NotEligible),
        }
    }

    async fn process(&self, run: EgressRun) -> Result<RunOutcome, CrawlError> {
        if run.done {
            return Ok(RunOutcome::Done);
        }
        if !run.state.is_terminal() {
            return Ok(RunOutcome::NotReady("run has not ended yet"));
        }
        let inner = &self.inner;
        {
            let Ok(mut busy) = inner.busy.lock() else {
                return Ok(RunOutcome::Busy);
            };
            if !busy.insert(run.id) {
                return Ok(RunOutcome::Busy);
            }
        }
        let _guard = BusyGuard(&inner.busy, run.id);
        let matcher = self.rules(&run.workflow_url).await?;
        // Without readable approved rules nothing leaves whatever the state; a COMPLETE run then
        // goes the usual way (an empty listing), any other is settled here.
        let releases = match matcher.as_ref() {
            Some(m) => m.releases_state(run.state),
            None => run.state == RunState::Complete,
        };
        if !releases {
            return self.settle_unreleased(&run).await;
        }
        let run_dir = PathBuf::from(&run.run_dir);
        let Some(log_dir) = run.log_dir.as_deref() else {
            return Ok(RunOutcome::NotReady("run has no log folder"));
        };
        // The shared safe-open: `.weskit/<ts>` may have been repointed by the job.
        let log_ok = Path::new(log_dir)
            .strip_prefix(&run_dir)
            .ok()
            .and_then(|rel| rel.join("log.json").to_str().map(str::to_owned))
            .is_some_and(|rel| spe_core::jobfile::open_beneath(&run_dir, &rel).is_ok());
        if !log_ok {
            return Ok(RunOutcome::NotReady("log.json not written yet"));
        }
        if let Ok(mut seen) = inner.first_seen.lock() {
            seen.entry(run.id).or_insert_with(Instant::now);
        }
        if !run.scanned {
            let files = match matcher.as_ref() {
                Some(matcher) => match self.scan(&run, &run_dir, matcher).await {
                    Ok(files) => files,
                    Err(CrawlError::Walk(_, e)) => return self.walk_failed(&run, &e).await,
                    Err(other) => return Err(other),
                },
                None => Vec::new(),
            };
            inner
                .store
                .record_egress_scan(run.id, &files, now())
                .await?;
        }
        if let Some(matcher) = matcher.as_ref() {
            let claimable = inner.store.claimable_egress_files(run.id, now()).await?;
            futures_util::stream::iter(claimable)
                .for_each_concurrent(inner.settings.concurrency, |f| {
                    self.upload_one(&run, &run_dir, matcher, f)
                })
                .await;
        }
        let files = inner.store.egress_files(run.id).await?;
        if files.iter().any(|f| f.state.is_unsettled()) {
            return Ok(RunOutcome::InProgress);
        }
        self.write_manifest(&run).await?;
        if inner.store.mark_egress_done(run.id, now()).await? {
            Metrics::add(&inner.metrics.runs_done, 1);
            tracing::info!(run_id = %run.id, "egress done");
        }
        if let Ok(mut seen) = inner.first_seen.lock() {
            seen.remove(&run.id);
        }
        Ok(RunOutcome::Done)
    }

    /// The run's directory could not be walked: the reason is kept against the run, and it is
    /// tried again after a backoff, or settled as failed once `walk_max_attempts` is reached.
    async fn walk_failed(
        &self,
        run: &EgressRun,
        error: &std::io::Error,
    ) -> Result<RunOutcome, CrawlError> {
        let inner = &self.inner;
        let reason = format!("cannot walk the run directory: {error}");
        let attempt = u32::try_from(run.attempts + 1).unwrap_or(u32::MAX);
        let at = now();
        let retry_at = (attempt < inner.settings.walk_max_attempts)
            .then(|| at.plus(backoff(i64::from(attempt), inner.settings.max_backoff)));
        inner
            .store
            .record_egress_failure(run.id, &reason, retry_at, at)
            .await?;
        Metrics::add(&inner.metrics.errors_fs, 1);
        match retry_at {
            Some(_) => {
                tracing::warn!(run_id = %run.id, attempt, reason, "egress walk failed; retried later")
            }
            None => {
                tracing::error!(target: "spe_audit", run_id = %run.id, attempt, reason, "egress failed: nothing of the run is released")
            }
        }
        Ok(RunOutcome::Failed)
    }

    /// A run that ended in a state its manifest does not release: nothing is looked at in its
    /// directory, nothing is recorded or written to the bucket, and the run is marked done so
    /// that no rescan reads it again. Needs no log.json (a run canceled while queued has none).
    async fn settle_unreleased(&self, run: &EgressRun) -> Result<RunOutcome, CrawlError> {
        let inner = &self.inner;
        let at = now();
        if !run.scanned {
            inner.store.record_egress_scan(run.id, &[], at).await?;
        }
        if inner.store.mark_egress_done(run.id, at).await? {
            tracing::info!(target: "spe_audit", run_id = %run.id, state = %run.state, workflow = run.workflow_url, "run ended in a state its manifest does not release: nothing released");
        }
        Ok(RunOutcome::NotEligible)
    }

    /// The egress rules of the run's workflow version as approved (from the store). `None`
    /// when the version was never approved or its manifest cannot be read: nothing leaves.
    async fn rules(&self, workflow_url: &str) -> Result<Arc<Option<EgressMatcher>>, StoreError> {
        if let Ok(cache) = self.inner.rules.lock()
            && let Some(m) = cache.get(workflow_url)
        {
            return Ok(m.clone());
        }
        let matcher = match WorkflowRef::parse(workflow_url) {
            Err(e) => {
                tracing::error!(workflow = workflow_url, error = %e, "run names no registered workflow version; nothing is released");
                None
            }
            Ok(wf) => match self
                .inner
                .store
                .workflow_version(&wf.name, &wf.version)
                .await?
            {
                Some(v) if v.digest.is_some() => match Manifest::from_json(&v.manifest)
                    .map_err(|e| e.to_string())
                    .and_then(|m| m.egress.matcher().map_err(|e| e.to_string()))
                {
                    Ok(m) => Some(m),
                    Err(e) => {
                        tracing::error!(workflow = workflow_url, error = %e, "stored manifest unreadable; nothing is released");
                        None
                    }
                },
                _ => {
                    tracing::error!(
                        workflow = workflow_url,
                        "workflow version was never approved; nothing is released"
                    );
                    None
                }
            },
        };
        let matcher = Arc::new(matcher);
        if let Ok(mut cache) = self.inner.rules.lock() {
            cache.insert(workflow_url.to_owned(), matcher.clone());
        }
        Ok(matcher)
    }

    /// The engine logs the manifest opts into release (`egress.release_logs`), each held for a
    /// data controller's review whatever the other rules say: what an engine prints can carry
    /// dataset locations and data. Found with the shared safe-open in the log folder the store
    /// names; a missing or refused log is simply not offered.
    async fn opted_in_logs(
        &self,
        run: &EgressRun,
        run_dir: &Path,
        matcher: &EgressMatcher,
    ) -> Vec<NewEgressFile> {
        let Some(rel_dir) = run
            .log_dir
            .as_deref()
            .and_then(|d| Path::new(d).strip_prefix(run_dir).ok())
            .and_then(|p| p.to_str())
            .map(str::to_owned)
        else {
            return Vec::new();
        };
        let mut logs = Vec::new();
        for log in spe_core::logjson::EngineLog::ALL {
            if !matcher.releases_log(log) {
                continue;
            }
            let rel = format!("{rel_dir}/{}", log.file_name());
            let (dir, path) = (run_dir.to_path_buf(), rel.clone());
            let found = tokio::task::spawn_blocking(move || {
                spe_core::jobfile::open_beneath(&dir, &path).map(|(_, meta)| meta.len())
            })
            .await;
            if let Ok(Ok(size)) = found {
                tracing::info!(target: "spe_audit", run_id = %run.id, path = rel, "engine log held for review (the manifest opts it into release)");
                Metrics::add(&self.inner.metrics.files_held, 1);
                logs.push(NewEgressFile {
                    path: rel,
                    state: EgressState::Held,
                    size: i64::try_from(size).unwrap_or(i64::MAX),
                    reason: Some(
                        "an engine log the manifest opts into release: reviewed before it leaves"
                            .into(),
                    ),
                });
            }
        }
        logs
    }

    async fn scan(
        &self,
        run: &EgressRun,
        run_dir: &Path,
        matcher: &EgressMatcher,
    ) -> Result<Vec<NewEgressFile>, CrawlError> {
        let dir = run_dir.to_path_buf();
        let params = format!("{}.yaml", run.id);
        let max_entries = self.inner.settings.walk_max_entries;
        let found = tokio::task::spawn_blocking(move || walk(&dir, &params, max_entries))
            .await
            .map_err(|e| CrawlError::Walk(run.run_dir.clone(), std::io::Error::other(e)))?
            .map_err(|e| {
                Metrics::add(&self.inner.metrics.errors_fs, 1);
                CrawlError::Walk(run.run_dir.clone(), e)
            })?;
        let m = &self.inner.metrics;
        let mut files = Vec::new();
        for f in found {
            let (path, size, refused) = match f {
                Found::File { path, size } => (path, size, None),
                Found::Refused { path, reason } => (path, 0, Some(reason)),
            };
            let decision = matcher.classify(&path, size);
            if decision == EgressDecision::Keep {
                if let Some(reason) = refused {
                    tracing::debug!(run_id = %run.id, path, reason, "kept inside");
                }
                continue;
            }
            let size_i = i64::try_from(size).unwrap_or(i64::MAX);
            let (state, reason) = if let Some(reason) = refused {
                (EgressState::Refused, Some(reason))
            } else if bucket::is_reserved(&path) {
                (
                    EgressState::Refused,
                    Some(format!(
                        "{path} is reserved for the crawler's {MANIFEST_FILE} and {DISCLOSURE_FILE}"
                    )),
                )
            } else {
                match decision {
                    EgressDecision::Hold { reason } => (EgressState::Held, Some(reason)),
                    _ => (EgressState::Pending, None),
                }
            };
            match state {
                EgressState::Refused => {
                    Metrics::add(&m.files_refused, 1);
                    tracing::warn!(target: "spe_audit", run_id = %run.id, path, reason = reason.as_deref().unwrap_or_default(), "output refused");
                }
                EgressState::Held => {
                    Metrics::add(&m.files_held, 1);
                    Metrics::add(&m.bytes_held, size);
                    tracing::info!(target: "spe_audit", run_id = %run.id, path, reason = reason.as_deref().unwrap_or_default(), "output held for review");
                }
                _ => {}
            }
            files.push(NewEgressFile {
                path,
                state,
                size: size_i,
                reason,
            });
        }
        files.extend(self.opted_in_logs(run, run_dir, matcher).await);
        Ok(files)
    }

    async fn upload_one(
        &self,
        run: &EgressRun,
        run_dir: &Path,
        matcher: &EgressMatcher,
        f: EgressFile,
    ) {
        let inner = &self.inner;
        let m = &inner.metrics;
        if self.is_stopping() {
            return;
        }
        let at = now();
        let claimed = match inner
            .store
            .claim_egress_file(
                run.id,
                &f.path,
                &inner.owner,
                at,
                at.plus(inner.settings.lease),
            )
            .await
        {
            Ok(Some(c)) => c,
            Ok(None) => return,
            Err(e) => {
                Metrics::add(&m.errors_store, 1);
                tracing::warn!(run_id = %run.id, path = f.path, error = %e, "cannot claim");
                return;
            }
        };
        let key = bucket::object_key(run.id, &claimed.path);
        if let Some(stale) = &claimed.upload_id
            && let Err(e) = inner.bucket.abort_multipart(&key, stale).await
        {
            tracing::warn!(key, error = %e, "cannot abort an unfinished multipart upload");
        }
        // The lease is renewed every third of its length while the transfer runs, however long
        // one PUT or part takes; losing it (another crawler took the file over) stops the
        // transfer (an unfinished multipart upload is aborted by whoever holds the file next).
        let transfer = tokio::select! {
            t = self.transfer(run, run_dir, &key, &claimed, matcher) => t,
            () = self.keep_lease(run.id, &claimed.path) => Transfer::Lost,
        };
        let path = claimed.path.as_str();
        let (outcome, log): (Option<EgressOutcome<'_>>, _) = match &transfer {
            Transfer::Released {
                sha256,
                size,
                encrypted,
            } => {
                Metrics::add(&m.files_released, 1);
                Metrics::add(&m.bytes_released, *size);
                if let Ok(seen) = inner.first_seen.lock()
                    && let Some(t) = seen.get(&run.id)
                {
                    m.observe_latency(t.elapsed().as_secs_f64());
                }
                let size = i64::try_from(*size).unwrap_or(i64::MAX);
                let stored = encrypted.map(OutputEncryption::as_str).unwrap_or("as is");
                tracing::info!(target: "spe_audit", run_id = %run.id, path, sha256, size, stored, "output released");
                let outcome = match encrypted {
                    None => EgressOutcome::Released { sha256, size },
                    Some(with) => EgressOutcome::ReleasedEncrypted {
                        sha256,
                        size,
                        with: *with,
                    },
                };
                (Some(outcome), ())
            }
            Transfer::Held(reason) => {
                Metrics::add(&m.files_held, 1);
                Metrics::add(&m.bytes_held, u64::try_from(claimed.size).unwrap_or(0));
                tracing::info!(target: "spe_audit", run_id = %run.id, path, reason, "output held for review");
                (Some(EgressOutcome::Held { reason }), ())
            }
            Transfer::Refused(reason) => {
                Metrics::add(&m.files_refused, 1);
                tracing::warn!(target: "spe_audit", run_id = %run.id, path, reason, "output refused");
                (Some(EgressOutcome::Refused { reason }), ())
            }
            Transfer::Changed(reason) => {
                Metrics::add(&m.files_refused, 1);
                Metrics::add(&m.changed_during_upload, 1);
                tracing::warn!(target: "spe_audit", run_id = %run.id, path, reason, "output changed while being uploaded: not released");
                (Some(EgressOutcome::Refused { reason }), ())
            }
            Transfer::ChangedAfterApproval(sha256) => {
                Metrics::add(&m.files_held, 1);
                Metrics::add(&m.changed_during_upload, 1);
                tracing::warn!(target: "spe_audit", run_id = %run.id, path, sha256, "approved output changed after its review: held again, its votes reset");
                (Some(EgressOutcome::ChangedAfterApproval { sha256 }), ())
            }
            Transfer::Retry(reason) => {
                Metrics::add(&m.errors_s3, 1);
                let wait = backoff(claimed.attempts, inner.settings.max_backoff);
                tracing::warn!(run_id = %run.id, path, reason, retry_in_seconds = wait.as_secs(), "upload failed; retried");
                (
                    Some(EgressOutcome::Retry {
                        reason,
                        next_attempt_at: now().plus(wait),
                    }),
                    (),
                )
            }
            Transfer::Lost => (None, ()),
        };
        let () = log;
        if let Some(outcome) = outcome {
            match inner
                .store
                .finish_egress_file(run.id, path, &inner.owner, outcome, now())
                .await
            {
                Ok(true) => {}
                Ok(false) => {
                    tracing::warn!(run_id = %run.id, path, "file was taken over by another crawler")
                }
                Err(e) => {
                    Metrics::add(&m.errors_store, 1);
                    tracing::warn!(run_id = %run.id, path, error = %e, "cannot record the outcome; the lease will expire and the file is looked at again");
                }
            }
        }
    }

    /// The test hook, on the blocking pool (it may sleep to stand for a slow transfer).
    async fn after_read(&self, run_dir: &Path, path: &str) {
        if let Some(hook) = self.inner.after_read.clone() {
            let (dir, path) = (run_dir.to_path_buf(), path.to_owned());
            let _ = tokio::task::spawn_blocking(move || hook(&dir, &path)).await;
        }
    }

    /// Renews this crawler's lease on the file every third of the lease; returns only when the
    /// lease is lost.
    async fn keep_lease(&self, run: RunId, path: &str) {
        let inner = &self.inner;
        let period = (inner.settings.lease / 3).max(Duration::from_millis(100));
        loop {
            tokio::time::sleep(period).await;
            let until = now().plus(inner.settings.lease);
            match inner
                .store
                .renew_egress_lease(run, path, &inner.owner, until)
                .await
            {
                Ok(true) => {}
                Ok(false) => {
                    tracing::warn!(run_id = %run, path, "lease lost to another crawler; transfer stopped");
                    return;
                }
                // The lease still runs; the next renewal may work.
                Err(e) => tracing::warn!(run_id = %run, path, error = %e, "cannot renew a lease"),
            }
        }
    }

    async fn transfer(
        &self,
        run: &EgressRun,
        run_dir: &Path,
        key: &str,
        claimed: &EgressFile,
        matcher: &EgressMatcher,
    ) -> Transfer {
        let inner = &self.inner;
        let path = claimed.path.clone();
        let dir = run_dir.to_path_buf();
        let opened = match tokio::task::spawn_blocking(move || open_beneath(&dir, &path)).await {
            Ok(Ok(o)) => o,
            Ok(Err(reason)) => return Transfer::Refused(reason),
            Err(e) => return Transfer::Retry(format!("internal: {e}")),
        };
        let (file, meta) = opened;
        let size = meta.len();
        // A file approved in review leaves as the reviewers saw it: their decision stands in
        // for the rules' hold and the checks, and only the approved bytes go.
        let approved = claimed.approved_sha256.as_deref();
        let checks = match (approved, matcher.classify(&claimed.path, size)) {
            (Some(_), _) => Vec::new(),
            (None, EgressDecision::Keep) => {
                return Transfer::Refused("no longer matches a release rule".into());
            }
            (None, EgressDecision::Hold { reason }) => return Transfer::Held(reason),
            (None, EgressDecision::Release { checks }) => checks,
        };
        // How the object is stored: an `encrypt` rule seals it to the service's key, so the
        // bucket never holds its plaintext; without the key it waits rather than leave as is.
        let encrypted = matcher.encryption_for(&claimed.path);
        let mut sealer = match (encrypted, &inner.seal_to) {
            (None, _) => None,
            (Some(OutputEncryption::Crypt4gh), Some(key)) => match Sealer::new(&[*key]) {
                Ok(s) => Some(s),
                Err(e) => return Transfer::Retry(format!("crypt4gh: {e}")),
            },
            (Some(OutputEncryption::Crypt4gh), None) => {
                return Transfer::Retry(
                    "its egress rule stores it Crypt4GH-encrypted, and crypt4gh.public_key is \
                     not configured for the crawler"
                        .into(),
                );
            }
        };
        let stored_size = sealer.as_ref().map_or(size, |s| s.encrypted_len(size));
        let released = move |sha256: String| Transfer::Released {
            sha256,
            size,
            encrypted,
        };
        let before = Fingerprint::of(&meta);
        let file = Arc::new(file);
        let ctype = if encrypted.is_some() {
            "application/octet-stream"
        } else {
            content_type(&claimed.path)
        };
        if size <= inner.settings.multipart_threshold {
            let f = file.clone();
            let bytes = match tokio::task::spawn_blocking(move || read_range(&f, 0, size + 1)).await
            {
                Ok(Ok(b)) => b,
                Ok(Err(e)) => {
                    Metrics::add(&inner.metrics.errors_fs, 1);
                    return Transfer::Retry(format!("read: {e}"));
                }
                Err(e) => return Transfer::Retry(format!("internal: {e}")),
            };
            self.after_read(run_dir, &claimed.path).await;
            if let Some(changed) = changed(&file, before, bytes.len() as u64) {
                return Transfer::Changed(changed);
            }
            let sha256 = match approved {
                // The disclosure checks, on exactly the bytes sent below.
                None => {
                    let report = check_file(&claimed.path, &bytes, &checks);
                    if let Some(stop) = self.checked(run, &report).await {
                        return stop;
                    }
                    report.sha256
                }
                Some(approved) => {
                    let sha256 = hex::encode(Sha256::digest(&bytes));
                    if approved != sha256 {
                        // Held again: the reviewers see the checks of the new bytes.
                        let report =
                            check_file(&claimed.path, &bytes, &rule_checks(matcher, claimed, size));
                        if let Some(stop) = self.record_report(run, &report).await {
                            return stop;
                        }
                        return Transfer::ChangedAfterApproval(sha256);
                    }
                    sha256
                }
            };
            match self.already_there(key, stored_size, &sha256).await {
                Ok(true) => return released(sha256),
                Ok(false) => {}
                Err(e) => return Transfer::Retry(e.to_string()),
            }
            let body = match sealer.as_mut() {
                None => bytes,
                Some(s) => match s.seal(&bytes) {
                    Ok(sealed) => [s.header(), &sealed].concat(),
                    Err(e) => return Transfer::Retry(format!("crypt4gh: {e}")),
                },
            };
            return match inner.bucket.put(key, body, &sha256, ctype).await {
                Ok(()) => released(sha256),
                Err(e) => Transfer::Retry(e.to_string()),
            };
        }
        // Pass 1: the digest recorded as metadata before the first part is sent, and what the
        // content is (pass 2 proves the bytes sent are these).
        let f = file.clone();
        let part = inner.settings.part_size;
        let (first, kind) =
            match tokio::task::spawn_blocking(move || hash_file(&f, size, part)).await {
                Ok(Ok((h, sniffer))) => (h, sniffer.finish(&claimed.path)),
                Ok(Err(e)) => return Transfer::Retry(format!("read: {e}")),
                Err(e) => return Transfer::Retry(format!("internal: {e}")),
            };
        if let Some(changed) = changed(&file, before, size) {
            return Transfer::Changed(changed);
        }
        match approved {
            // Too large to hold in memory: the file-type check runs, table checks are left to
            // a reviewer (the file is held).
            None => {
                let report = check_streamed(&claimed.path, first.clone(), size, kind, &checks);
                if let Some(stop) = self.checked(run, &report).await {
                    return stop;
                }
            }
            Some(approved) if approved != first => {
                let checks = rule_checks(matcher, claimed, size);
                let report = check_streamed(&claimed.path, first.clone(), size, kind, &checks);
                if let Some(stop) = self.record_report(run, &report).await {
                    return stop;
                }
                return Transfer::ChangedAfterApproval(first);
            }
            Some(_) => {}
        }
        match self.already_there(key, stored_size, &first).await {
            Ok(true) => return released(first),
            Ok(false) => {}
            Err(e) => return Transfer::Retry(e.to_string()),
        }
        let upload_id = match inner.bucket.create_multipart(key, &first, ctype).await {
            Ok(id) => id,
            Err(e) => return Transfer::Retry(e.to_string()),
        };
        let abort = |reason: Transfer| async {
            if let Err(e) = inner.bucket.abort_multipart(key, &upload_id).await {
                tracing::warn!(key, error = %e, "cannot abort a multipart upload; the next attempt will");
            }
            reason
        };
        match inner
            .store
            .set_egress_upload_id(run.id, &claimed.path, &inner.owner, Some(&upload_id))
            .await
        {
            Ok(true) => {}
            Ok(false) => return abort(Transfer::Lost).await,
            Err(e) => return abort(Transfer::Retry(e.to_string())).await,
        }
        // Pass 2: the bytes sent, hashed again as they go. Sealed parts must hold whole 64 KiB
        // segments, so an encrypted upload's parts are rounded down to them.
        let part = match sealer {
            Some(_) => (part / SEGMENT_SIZE as u64).max(1) * SEGMENT_SIZE as u64,
            None => part,
        };
        let mut hasher = Sha256::new();
        let mut parts = Vec::new();
        let mut offset = 0u64;
        let mut number = 1i32;
        while offset < size {
            let len = part.min(size - offset);
            let f = file.clone();
            let chunk = match tokio::task::spawn_blocking(move || read_range(&f, offset, len)).await
            {
                Ok(Ok(c)) if c.len() as u64 == len => c,
                Ok(Ok(_)) => {
                    return abort(Transfer::Changed("shrank while being uploaded".into())).await;
                }
                Ok(Err(e)) => return abort(Transfer::Retry(format!("read: {e}"))).await,
                Err(e) => return abort(Transfer::Retry(format!("internal: {e}"))).await,
            };
            hasher.update(&chunk);
            let chunk = match sealer.as_mut() {
                None => chunk,
                Some(s) => match s.seal(&chunk) {
                    Ok(sealed) if number == 1 => [s.header(), &sealed].concat(),
                    Ok(sealed) => sealed,
                    Err(e) => return abort(Transfer::Retry(format!("crypt4gh: {e}"))).await,
                },
            };
            match inner
                .bucket
                .upload_part(key, &upload_id, number, chunk)
                .await
            {
                Ok(p) => parts.push(p),
                Err(e) => return abort(Transfer::Retry(e.to_string())).await,
            }
            let at = now();
            match inner
                .store
                .renew_egress_lease(
                    run.id,
                    &claimed.path,
                    &inner.owner,
                    at.plus(inner.settings.lease),
                )
                .await
            {
                Ok(true) => {}
                Ok(false) => return abort(Transfer::Lost).await,
                Err(e) => return abort(Transfer::Retry(e.to_string())).await,
            }
            offset += len;
            number += 1;
        }
        self.after_read(run_dir, &claimed.path).await;
        let second = hex::encode(hasher.finalize());
        if second != first {
            return abort(Transfer::Changed(
                "content changed while being uploaded".into(),
            ))
            .await;
        }
        if let Some(changed) = changed(&file, before, size) {
            return abort(Transfer::Changed(changed)).await;
        }
        match inner
            .bucket
            .complete_multipart(key, &upload_id, parts)
            .await
        {
            Ok(()) => released(first),
            // The upload id stays recorded: the next attempt aborts it, or finds the object
            // complete after all (HEAD with the same digest).
            Err(e) => Transfer::Retry(e.to_string()),
        }
    }

    /// Records a file's disclosure report while this crawler holds its lease. `None` when it
    /// passed and may be sent; else what the transfer comes to: held with the report's reason,
    /// lost (another crawler took the file over), or retried (the report could not be stored,
    /// and nothing leaves without it).
    async fn checked(&self, run: &EgressRun, report: &FileReport) -> Option<Transfer> {
        if let Some(stop) = self.record_report(run, report).await {
            return Some(stop);
        }
        if report.outcome == Outcome::Pass {
            return None;
        }
        let reason = report
            .hold_reason()
            .unwrap_or_else(|| "a disclosure check did not pass".into());
        Some(Transfer::Held(reason))
    }

    /// Stores a file's disclosure report while this crawler holds its lease: `None` when
    /// stored, else lost (another crawler took the file over) or retried.
    async fn record_report(&self, run: &EgressRun, report: &FileReport) -> Option<Transfer> {
        let value = match serde_json::to_value(report) {
            Ok(v) => v,
            Err(e) => return Some(Transfer::Retry(format!("internal: report: {e}"))),
        };
        match self
            .inner
            .store
            .record_egress_checks(run.id, &report.path, &self.inner.owner, &value)
            .await
        {
            Ok(true) => None,
            Ok(false) => Some(Transfer::Lost),
            Err(e) => Some(Transfer::Retry(e.to_string())),
        }
    }

    /// Whether the object is in the bucket already with these bytes (a crash after the upload
    /// and before the store heard of it).
    async fn already_there(
        &self,
        key: &str,
        size: u64,
        sha256: &str,
    ) -> Result<bool, crate::s3::S3Error> {
        Ok(matches!(
            self.inner.bucket.head(key).await?,
            Some(Existing { size: s, sha256: Some(ref h) }) if s as u64 == size && h == sha256
        ))
    }

    /// `<run_id>/manifest.json`: every released file with its size and SHA-256, and
    /// `<run_id>/disclosure.json` beside it. Written once all files are settled; writing them
    /// again gives the same bytes.
    async fn write_manifest(&self, run: &EgressRun) -> Result<(), CrawlError> {
        let released = self.inner.store.released_files(run.id).await?;
        let files: Vec<serde_json::Value> = released
            .iter()
            .map(|f| {
                let mut entry = serde_json::json!({
                    "path": f.path,
                    "size": f.size,
                    "sha256": f.sha256,
                    "released_at": f.released_at.to_rfc3339_micros(),
                });
                // Size and SHA-256 are the plaintext's; the object is a Crypt4GH file.
                if let Some(with) = f.encryption {
                    entry["encryption"] = with.as_str().into();
                }
                entry
            })
            .collect();
        let body = serde_json::json!({
            "run_id": run.id.to_string(),
            "workflow": run.workflow_url,
            "files": files,
        });
        self.put_json(&bucket::manifest_key(run.id), &body).await?;
        let approvals = self.approvals(run).await?;
        self.write_disclosure(run, approvals).await?;
        self.write_crate(run).await
    }

    /// `<run_id>/ro-crate-metadata.json` with the audit chain's head now, and with a signing
    /// key its receipt `<run_id>/ro-crate-metadata.json.sig`, over the crate's exact bytes.
    async fn write_crate(&self, run: &EgressRun) -> Result<(), CrawlError> {
        let Some((identity, signer)) = &self.inner.crate_writer else {
            return Ok(());
        };
        let Some(facts) = self.inner.store.run_crate_facts(run.id).await? else {
            return Ok(());
        };
        let head = spe_store::audit::head(&self.inner.store).await?;
        let doc = facts.build(
            spe_core::rocrate::CrateService {
                id: &identity.id,
                name: &identity.name,
                organization: &identity.organization,
                organization_url: &identity.organization_url,
            },
            head.as_ref().map(|h| spe_core::rocrate::CrateChainHead {
                seq: h.seq,
                sha256: &h.sha256,
            }),
        );
        let bytes = serde_json::to_vec_pretty(&doc).unwrap_or_default();
        if let Some(signer) = signer {
            // The receipt first: a crate in the bucket always has its signature beside it.
            let receipt = signer.sign(&bytes);
            self.put_bytes(
                &bucket::object_key(run.id, bucket::RECEIPT_FILE),
                serde_json::to_vec_pretty(&receipt).unwrap_or_default(),
            )
            .await?;
        }
        self.put_bytes(&bucket::object_key(run.id, bucket::RO_CRATE_FILE), bytes)
            .await?;
        tracing::info!(target: "spe_audit", run_id = %run.id, signed = signer.is_some(),
            chain_seq = head.as_ref().map(|h| h.seq), "RO-Crate written to the results");
        Ok(())
    }

    /// Who decided what on the run's held files, from the review history: every vote (with the
    /// digest of the bytes it was cast on and its round), reset and revocation. A vote that
    /// approves a file whose checks did not pass is marked as the exception it grants, with the
    /// reviewer's comment as its reason.
    async fn approvals(&self, run: &EgressRun) -> Result<Vec<serde_json::Value>, CrawlError> {
        let files = self.inner.store.egress_files(run.id).await?;
        let events = self.inner.store.review_events(run.id).await?;
        Ok(events
            .iter()
            .filter(|e| {
                matches!(
                    e.kind,
                    ReviewEventKind::Vote | ReviewEventKind::Reset | ReviewEventKind::Revoke
                )
            })
            .map(|e| {
                let checks_failed = files
                    .iter()
                    .find(|f| Some(f.path.as_str()) == e.path.as_deref())
                    .and_then(stored_report)
                    .is_some_and(|r| r.outcome != Outcome::Pass);
                serde_json::json!({
                    "path": e.path,
                    "event": e.kind,
                    "decision": e.vote,
                    "by": e.actor,
                    "comment": e.comment,
                    "sha256": e.sha256,
                    "round": e.round,
                    "at": e.at.to_rfc3339_micros(),
                    "exception": e.vote == Some(Vote::Approve) && checks_failed,
                })
            })
            .collect())
    }

    /// `<run_id>/disclosure.json`: for every file the egress rules named, the checks that ran
    /// and their results (as stored when the file was checked; a file decided without being
    /// read gets the rule's reason), and the reviewers' `approvals`.
    async fn write_disclosure(
        &self,
        run: &EgressRun,
        approvals: Vec<serde_json::Value>,
    ) -> Result<(), CrawlError> {
        let files = self.inner.store.egress_files(run.id).await?;
        let reports: Vec<FileReport> = files.iter().map(file_report).collect();
        let body = disclosure_document(&run.id.to_string(), &run.workflow_url, &reports, approvals);
        self.put_json(&bucket::disclosure_key(run.id), &body).await
    }

    /// PUTs a JSON document unless the bucket holds these bytes already.
    async fn put_json(&self, key: &str, body: &serde_json::Value) -> Result<(), CrawlError> {
        self.put_bytes(key, serde_json::to_vec_pretty(body).unwrap_or_default())
            .await
    }

    /// PUTs bytes unless the bucket holds them already.
    async fn put_bytes(&self, key: &str, bytes: Vec<u8>) -> Result<(), CrawlError> {
        let sha256 = hex::encode(Sha256::digest(&bytes));
        if self.already_there(key, bytes.len() as u64, &sha256).await? {
            return Ok(());
        }
        self.inner
            .bucket
            .put(key, bytes, &sha256, "application/json")
            .await?;
        Ok(())
    }
}

/// A file's disclosure report: the one stored when it was checked, else (decided without being
/// read) one naming the egress rule's decision.
fn file_report(f: &EgressFile) -> FileReport {
    if let Some(report) = stored_report(f) {
        return report;
    }
    let size = u64::try_from(f.size).unwrap_or(0);
    let reason = f.reason.as_deref().unwrap_or_default();
    match f.state {
        EgressState::Refused => FileReport::by_rule(&f.path, size, Outcome::Fail, reason),
        EgressState::Released => FileReport::new(
            &f.path,
            f.sha256.clone().unwrap_or_default(),
            size,
            None,
            Vec::new(),
        ),
        _ => FileReport::by_rule(&f.path, size, Outcome::Review, reason),
    }
}

/// The report stored for the file, if one was and it reads back.
fn stored_report(f: &EgressFile) -> Option<FileReport> {
    let value = f.checks.as_ref()?;
    match serde_json::from_value(value.clone()) {
        Ok(report) => Some(report),
        Err(e) => {
            tracing::warn!(run_id = %f.run_id, path = f.path, error = %e, "stored disclosure report unreadable; disclosure.json names the rule's decision");
            None
        }
    }
}

/// The checks of the rules matching a file, whatever its decision (for an approved file whose
/// bytes changed, checked again for its reviewers).
fn rule_checks(matcher: &EgressMatcher, claimed: &EgressFile, size: u64) -> Vec<OutputCheck> {
    match matcher.classify(&claimed.path, size) {
        EgressDecision::Release { checks } => checks,
        _ => Vec::new(),
    }
}

/// Why the open file is no longer what was read, if it is not.
fn changed(file: &std::fs::File, before: Fingerprint, bytes_read: u64) -> Option<String> {
    match file.metadata() {
        Err(e) => Some(format!("cannot stat again: {e}")),
        Ok(meta) => {
            let now = Fingerprint::of(&meta);
            if bytes_read != before.size {
                Some(format!(
                    "size changed while being read ({} bytes, then {bytes_read})",
                    before.size
                ))
            } else if now != before {
                Some(format!(
                    "changed while being uploaded (size {} -> {}, or its times changed)",
                    before.size, now.size
                ))
            } else {
                None
            }
        }
    }
}

/// Up to `len` bytes from `offset` (fewer at end of file).
fn read_range(file: &std::fs::File, offset: u64, len: u64) -> std::io::Result<Vec<u8>> {
    let mut buf = vec![0u8; usize::try_from(len).map_err(std::io::Error::other)?];
    let mut filled = 0usize;
    while filled < buf.len() {
        let n = file.read_at(&mut buf[filled..], offset + filled as u64)?;
        if n == 0 {
            break;
        }
        filled += n;
    }
    buf.truncate(filled);
    Ok(buf)
}

/// The SHA-256 of the file's first `size` bytes, and a sniffer fed every one of them.
fn hash_file(file: &std::fs::File, size: u64, chunk: u64) -> std::io::Result<(String, Sniffer)> {
    let mut hasher = Sha256::new();
    let mut sniffer = Sniffer::new();
    let mut offset = 0;
    while offset < size {
        let c = read_range(file, offset, chunk.min(size - offset))?;
        if c.is_empty() {
            break;
        }
        hasher.update(&c);
        sniffer.feed(&c);
        offset += c.len() as u64;
    }
    Ok((hex::encode(hasher.finalize()), sniffer))
}
