//! The crawler as a service: store, bucket, watcher, cron rescans, operations endpoints.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use spe_core::RunId;
use spe_store::Store;
use tokio::sync::mpsc;
use tokio_cron_scheduler::{Job, JobScheduler};

use crate::config::CrawlerServiceConfig;
use crate::crawler::{Crawler, RunOutcome, Settings};
use crate::metrics::Metrics;
use crate::s3::Bucket;
use crate::watch;

/// How long a run whose log.json was seen is retried before leaving it to rescans (the
/// reconciler may mark it COMPLETE a little after the job wrote log.json).
const NOTIFIED_PATIENCE: Duration = Duration::from_secs(600);

pub async fn run(config: CrawlerServiceConfig) -> anyhow::Result<()> {
    let cc = &config.crawler;
    let store = Store::connect_for(
        &config.database.url,
        config.database.max_connections,
        Duration::from_secs(config.database.connect_timeout_seconds),
        Some(&config.primary_issuer),
    )
    .await?;
    let bucket = Bucket::connect(cc).await;
    let metrics = Arc::new(Metrics::default());
    let listener = std::net::TcpListener::bind(cc.metrics_listen)
        .map_err(|e| anyhow::anyhow!("crawler.metrics_listen {}: {e}", cc.metrics_listen))?;
    let metrics_addr = listener.local_addr()?;
    let ops = crate::ops::serve(listener, metrics.clone(), store.clone(), bucket.clone())
        .map_err(|e| anyhow::anyhow!("crawler.metrics_listen {metrics_addr}: {e}"))?;
    let ops_handle = ops.handle();
    tokio::spawn(ops);
    // Read once: a configured key that cannot be used stops the start, naming the key.
    let signer = match &config.receipts.signing_key {
        Some(path) => Some(Arc::new(
            crate::receipt::Signer::load(path)
                .map_err(|e| anyhow::anyhow!("receipts.signing_key: {e}"))?,
        )),
        None => {
            tracing::warn!("receipts.signing_key is not set: packages carry an unsigned RO-Crate");
            None
        }
    };
    let identity = crate::receipt::CrateIdentity {
        id: config.service.id.clone(),
        name: config.service.name.clone(),
        organization: config.service.organization.name.clone(),
        organization_url: config.service.organization.url.as_str().to_owned(),
    };
    let mut crawler = Crawler::new(store, bucket, Settings::from_config(cc), metrics)
        .with_crate(identity, signer);
    // The public half only: the crawler encrypts to the service's key and can decrypt nothing.
    if let Some(path) = &config.crypt4gh_public_key {
        let key = spe_crypt4gh::PublicKey::load(path)
            .map_err(|e| anyhow::anyhow!("crypt4gh.public_key {}: {e}", path.display()))?;
        crawler = crawler.with_crypt4gh_key(key);
    }
    println!("results-crawler metrics on http://{metrics_addr}/metrics");
    tracing::info!(owner = crawler.owner(), bucket = cc.bucket, data_dir = %config.data_dir.display(), watch = ?cc.watch, "results-crawler started");

    let (run_tx, run_rx) = mpsc::unbounded_channel();
    // A watch on a folder that does not exist yet fails, and the crawler would then learn of
    // finished runs only at rescans: make sure it is there (wes-api creates it too).
    if let Err(e) = std::fs::create_dir_all(&config.data_dir) {
        tracing::warn!(error = %e, data_dir = %config.data_dir.display(), "cannot create the data directory");
    }
    let _watcher = match watch::start(
        &config.data_dir,
        cc.watch,
        Duration::from_secs(cc.poll_interval_seconds),
        run_tx,
    ) {
        Ok(w) => Some(w),
        Err(e) => {
            tracing::warn!(error = %e, "cannot watch the data directory; relying on rescans");
            None
        }
    };
    let notified = tokio::spawn(notified_worker(crawler.clone(), run_rx));

    let (tick_tx, tick_rx) = mpsc::unbounded_channel::<()>();
    let scheduler = JobScheduler::new().await?;
    let job = Job::new_async(cc.rescan_cron.as_str(), move |_, _| {
        let tx = tick_tx.clone();
        Box::pin(async move {
            let _ = tx.send(());
        })
    })
    .map_err(|e| anyhow::anyhow!("crawler.rescan_cron: {e}"))?;
    scheduler.add(job).await?;
    scheduler.start().await?;
    let rescans = tokio::spawn(rescan_worker(crawler.clone(), tick_rx));

    shutdown_signal().await;
    // Graceful: nothing new is claimed; transfers under way may finish within the grace;
    // whatever is still under way then is handed back for another crawler to take at once.
    crawler.stop_claiming();
    let grace = Duration::from_secs(cc.stop_grace_seconds);
    tracing::info!(
        runs_under_way = crawler.runs_under_way(),
        grace_seconds = grace.as_secs(),
        "results-crawler stopping"
    );
    let deadline = Instant::now() + grace;
    while crawler.runs_under_way() > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    rescans.abort();
    notified.abort();
    // Only once they are gone: an aborted task runs on until its next await, and a lease it
    // renewed (or a file it claimed) after the hand-back would be held until it ran out.
    let _ = rescans.await;
    let _ = notified.await;
    match crawler.hand_back().await {
        Ok(0) => tracing::info!("results-crawler stopped; nothing under way"),
        Ok(n) => tracing::info!(
            files = n,
            "results-crawler stopped; handed back files under way"
        ),
        Err(e) => {
            tracing::warn!(error = %e, "cannot hand back files under way; their leases expire")
        }
    }
    ops_handle.stop(true).await;
    Ok(())
}

/// One rescan at start, then one per cron tick; ticks that come while one runs are merged.
async fn rescan_worker(crawler: Crawler, mut ticks: mpsc::UnboundedReceiver<()>) {
    loop {
        let started = Instant::now();
        match crawler.rescan().await {
            Ok((done, waiting)) => tracing::info!(
                done,
                waiting,
                elapsed_ms = started.elapsed().as_millis() as u64,
                "rescan"
            ),
            Err(e) => {
                crate::metrics::Metrics::add(&crawler.metrics().errors_store, 1);
                tracing::warn!(error = %e, "rescan failed");
            }
        }
        if ticks.recv().await.is_none() {
            return;
        }
        while ticks.try_recv().is_ok() {}
    }
}

/// Runs whose log.json a watcher saw: tried at once, then every half second until they are
/// done, not eligible, or NOTIFIED_PATIENCE has passed.
pub async fn notified_worker(crawler: Crawler, mut rx: mpsc::UnboundedReceiver<RunId>) {
    let mut waiting: HashMap<RunId, Instant> = HashMap::new();
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    loop {
        tokio::select! {
            got = rx.recv() => match got {
                Some(id) => { waiting.entry(id).or_insert_with(|| Instant::now() + NOTIFIED_PATIENCE); }
                None => return,
            },
            _ = tick.tick() => {}
        }
        while let Ok(id) = rx.try_recv() {
            waiting
                .entry(id)
                .or_insert_with(|| Instant::now() + NOTIFIED_PATIENCE);
        }
        let ids: Vec<RunId> = waiting.keys().copied().collect();
        for id in ids {
            let keep = match crawler.process_run_id(id).await {
                Ok(RunOutcome::NotReady(_)) | Ok(RunOutcome::InProgress) => true,
                Ok(_) => false,
                Err(e) => {
                    tracing::warn!(run_id = %id, error = %e, "egress failed; retried");
                    true
                }
            };
            let expired = waiting.get(&id).is_some_and(|d| Instant::now() > *d);
            if !keep || expired {
                waiting.remove(&id);
            }
        }
    }
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        if let Ok(mut term) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            tokio::select! {
                _ = ctrl_c => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = ctrl_c.await;
}
