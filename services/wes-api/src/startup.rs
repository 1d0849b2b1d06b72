//! Builds the application from configuration: database, authentication, routes, middleware.

use std::net::TcpListener;
use std::sync::Arc;

use actix_web::dev::{Server, Service};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::{ErrorHandlers, NormalizePath, TrailingSlash};
use actix_web::{App, HttpMessage, HttpServer, web};
use spe_core::config::{AuthConfig, Config};
use spe_store::Store;
use tracing_actix_web::{RequestId, TracingLogger};

use crate::app::admission::ApprovedCache;
use crate::auth::Authenticator;
use crate::error::{ApiError, json_error_body};
use crate::results_bucket::ResultsBucket;
use crate::routes;
use crate::slurm::SlurmClient;
use crate::slurm::reconciler::Reconciler;
use crate::slurm::submitter::Submitter;

/// What every handler can reach.
pub struct AppState {
    pub config: Arc<Config>,
    pub store: Store,
    /// `None` when `slurm.enabled` is false (API-only set-ups): runs then stay QUEUED.
    pub slurm: Option<Arc<SlurmClient>>,
    /// Presigned links to released results; `None` without a `crawler:` section.
    pub results: Option<Arc<ResultsBucket>>,
    /// Approved workflow versions compiled for admission.
    pub approved: ApprovedCache,
    /// Parsed tasks of ended runs, for the tasks endpoints.
    pub tasks: crate::app::tasks::TaskCache,
    /// Owners and states read lately, for `GET /runs/{id}/status`.
    pub run_states: crate::app::run_states::RunStates,
    /// The service's Crypt4GH public key (`crypt4gh.public_key`), published as is.
    pub service_key: Option<spe_crypt4gh::PublicKey>,
    /// The service's secret keys (`crypt4gh.secret_keys`, current first), read once at start:
    /// they open the headers of encrypted results (re-wrapped to each reader) and of uploads.
    /// Empty when none are configured.
    pub service_secret_keys: Arc<[spe_crypt4gh::SecretKey]>,
    /// The receipt public key line (`receipts.public_key`), published as is.
    pub receipt_key: Option<String>,
    /// What `/metrics` serves (`server.metrics_listen`).
    pub metrics: Arc<crate::metrics::ApiMetrics>,
}

/// Longest the submitter and reconciler get to stop after the server has (a run's sbatch).
const LOOPS_STOP: std::time::Duration = std::time::Duration::from_secs(20);

/// A built, listening application that has not started serving yet.
pub struct Application {
    port: u16,
    server: Server,
    /// `server.metrics_listen`'s server (`/metrics`, `/readyz`, `/healthz`) and its port.
    operations: Option<(Server, u16)>,
    /// Set once the server has stopped: the submitter and reconciler finish what is under way
    /// and give back their claims and lease (`loops`, waited for at most `LOOPS_STOP`).
    stop: crate::slurm::Stop,
    loops: Vec<tokio::task::JoinHandle<()>>,
    store: Store,
    /// Refused tokens counted but not yet written, flushed on shutdown.
    refusals: Arc<crate::app::audit::RefusalRecorder>,
    refusal_window: std::time::Duration,
    /// Where the chain's head is anchored besides the log (`audit.anchor_s3_prefix`).
    anchor_bucket: Option<(Arc<ResultsBucket>, String)>,
}

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("{0}")]
    Config(String),
    #[error(transparent)]
    Store(#[from] spe_store::StoreError),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: String,
        source: std::io::Error,
    },
}

impl Application {
    pub async fn build(mut config: Config) -> Result<Application, StartupError> {
        // Jobs start in their run directory on other hosts: every path they get is absolute.
        std::fs::create_dir_all(&config.data_dir)
            .and_then(|()| std::fs::canonicalize(&config.data_dir))
            .map(|dir| config.data_dir = dir)
            .map_err(|e| {
                StartupError::Config(format!("data_dir {}: {e}", config.data_dir.display()))
            })?;
        // Uploaded workflows are unpacked there; registered versions keep its absolute path.
        let upload_dir = config.upload_dir();
        std::fs::create_dir_all(&upload_dir)
            .and_then(|()| std::fs::canonicalize(&upload_dir))
            .map(|dir| config.workflows.upload_dir = Some(dir))
            .map_err(|e| {
                StartupError::Config(format!(
                    "workflows.upload_dir {}: {e}",
                    upload_dir.display()
                ))
            })?;
        tracing::info!(database = %config.database.url, "opening database");
        let store = Store::connect_for(
            &config.database.url,
            config.database.max_connections,
            std::time::Duration::from_secs(config.database.connect_timeout_seconds),
            Some(config.auth.primary_issuer()),
        )
        .await?;
        let mut sessions = None;
        let authenticator = match &config.auth {
            AuthConfig::Disabled => {
                tracing::warn!(
                    "AUTHENTICATION IS DISABLED (auth: disabled): every caller acts as one local \
                     user with every role. Never run this way with real data."
                );
                Authenticator::Disabled
            }
            AuthConfig::Oidc(oidc) => {
                let verifier = spe_auth::Verifier::new(oidc)
                    .map_err(|e| StartupError::Config(format!("auth.oidc: {e}")))?;
                // A provider that is down now is retried on first use; say so, do not fail.
                if let Err(e) = verifier.warm_up().await {
                    tracing::warn!(error = %e, "OIDC discovery failed at start; retrying on use");
                }
                let verifier = Arc::new(verifier);
                if let Some(browser) = &oidc.browser {
                    let s = crate::session::Sessions::new(
                        &oidc.issuer,
                        browser,
                        verifier.clone(),
                        std::time::Duration::from_secs(oidc.http_timeout_seconds),
                        store.clone(),
                    )
                    .map_err(|e| StartupError::Config(format!("auth.oidc.browser: {e}")))?;
                    if !browser.cookie_secure {
                        tracing::warn!(
                            "auth.oidc.browser.cookie_secure is false: session cookies travel                              over plain http (local development only)"
                        );
                    }
                    sessions = Some(web::Data::new(s));
                }
                Authenticator::Oidc(verifier)
            }
        };
        // Read once: a configured key that cannot be read stops the start, naming the key.
        let service_key = match &config.crypt4gh.public_key {
            Some(path) => Some(spe_crypt4gh::PublicKey::load(path).map_err(|e| {
                StartupError::Config(format!("crypt4gh.public_key {}: {e}", path.display()))
            })?),
            None => None,
        };
        let service_secret_keys: Arc<[spe_crypt4gh::SecretKey]> = match (
            config.crypt4gh.secret_keys.as_slice(),
            config.crypt4gh.passphrase(),
        ) {
            ([], _) => Arc::from(Vec::new()),
            (paths, Some(source)) => {
                let passphrase = match source {
                    spe_core::runspec::PassphraseSource::File(p) => {
                        spe_crypt4gh::service_keys::Passphrase::File(p)
                    }
                    spe_core::runspec::PassphraseSource::Env(v) => {
                        spe_crypt4gh::service_keys::Passphrase::Env(v)
                    }
                };
                Arc::from(
                    spe_crypt4gh::service_keys::load(paths, &passphrase)
                        .map_err(|e| StartupError::Config(format!("crypt4gh: {e}")))?,
                )
            }
            (_, None) => {
                return Err(StartupError::Config(
                    "crypt4gh.secret_keys: set passphrase_file or passphrase_env".into(),
                ));
            }
        };
        let receipt_key = match &config.receipts.public_key {
            Some(path) => Some(crate::app::receipts::load_public_key(path).map_err(|e| {
                StartupError::Config(format!("receipts.public_key {}: {e}", path.display()))
            })?),
            None => None,
        };
        let addr = config.server.listen;
        let listener = TcpListener::bind(addr).map_err(|source| StartupError::Listen {
            addr: addr.to_string(),
            source,
        })?;
        let port = listener
            .local_addr()
            .map_err(|source| StartupError::Listen {
                addr: addr.to_string(),
                source,
            })?
            .port();
        let workers = config.server.workers;
        let config = Arc::new(config);
        let slurm = config
            .slurm
            .enabled
            .then(|| Arc::new(SlurmClient::new(&config.slurm)));
        let metrics = Arc::new(crate::metrics::ApiMetrics::default());
        let stop = crate::slurm::Stop::default();
        let mut loops = Vec::new();
        match &slurm {
            Some(client) => {
                loops.push(tokio::spawn(
                    Submitter::new(store.clone(), config.clone(), client.clone())
                        .with_metrics(metrics.clone())
                        .with_stop(stop.clone())
                        .run_forever(),
                ));
                loops.push(tokio::spawn(
                    Reconciler::new(store.clone(), config.clone(), client.clone())
                        .with_metrics(metrics.clone())
                        .with_stop(stop.clone())
                        .run_forever(),
                ));
            }
            None => tracing::warn!("slurm.enabled is false: accepted runs stay QUEUED"),
        }
        if config.slurm.sandbox == spe_core::runspec::Sandbox::None {
            // Config allows this only in dev; say so at every start (docs/security.md).
            tracing::warn!(
                "SANDBOX OFF (slurm.sandbox: none): jobs run without isolation and can read \
                 every dataset, reach the network and rewrite their run spec; dev only"
            );
        }
        tokio::spawn(crate::app::review::report_overdue(
            store.clone(),
            std::time::Duration::from_secs(config.review.overdue_after_seconds),
            std::time::Duration::from_secs(config.review.overdue_check_every_seconds),
        ));
        // Every instance delivers the shared outbox; leases keep them from sending one twice.
        match spe_notify::Notifier::from_config(store.clone(), &config.notifications, |var| {
            std::env::var(var).ok()
        }) {
            Ok(Some(notifier)) => {
                tokio::spawn(notifier.run_forever());
            }
            Ok(None) => tracing::info!("notifications: no webhook or e-mail configured"),
            Err(e) => return Err(StartupError::Config(e.to_string())),
        }
        let rate_limits = Arc::new(crate::rate_limit::RateLimits::new(
            &config.server.rate_limit,
        ));
        tokio::spawn(crate::rate_limit::RateLimits::prune_forever(
            rate_limits.clone(),
        ));
        let rate_limits = web::Data::from(rate_limits);
        let results = match &config.crawler {
            Some(crawler) => Some(Arc::new(ResultsBucket::connect(crawler).await)),
            None => {
                tracing::info!("no crawler: section: results download links are unavailable");
                None
            }
        };
        let state = web::Data::new(AppState {
            config,
            store: store.clone(),
            slurm,
            results,
            approved: ApprovedCache::default(),
            tasks: Default::default(),
            run_states: Default::default(),
            service_key,
            service_secret_keys,
            receipt_key,
            metrics,
        });
        // Refused tokens recorded per window; the head anchored; retention.
        let refusal_window =
            std::time::Duration::from_secs(state.config.audit.refusal_window_seconds);
        let refusals = Arc::new(crate::app::audit::RefusalRecorder::new(&state.config.audit));
        tokio::spawn(
            refusals
                .clone()
                .flush_forever(store.clone(), refusal_window),
        );
        let anchor_bucket = match (&state.results, &state.config.audit.anchor_s3_prefix) {
            (Some(bucket), Some(prefix)) => Some((bucket.clone(), prefix.clone())),
            (None, Some(_)) => {
                tracing::warn!(
                    "audit.anchor_s3_prefix is set but no crawler: section names a bucket: anchors go to the log only"
                );
                None
            }
            _ => None,
        };
        tokio::spawn(crate::app::audit::anchor_forever(
            store.clone(),
            anchor_bucket.as_ref().map(|(b, _)| b.clone()),
            anchor_bucket.as_ref().map(|(_, p)| p.clone()),
            std::time::Duration::from_secs(state.config.audit.anchor_every_seconds),
        ));
        if let Some(after) = state.config.retention.run_directories_after_seconds {
            tokio::spawn(crate::app::retention::retain_forever(
                state.clone().into_inner(),
                std::time::Duration::from_secs(after),
                std::time::Duration::from_secs(state.config.retention.check_every_seconds),
            ));
        }
        let refusals_data = web::Data::from(refusals.clone());
        let authenticator = web::Data::new(authenticator);
        let operations_state = state.clone();
        let mut server =
            HttpServer::new(move || {
                App::new()
                    .wrap(ErrorHandlers::new().default_handler(json_error_body))
                    // Every route, before anything else runs: the client address's bucket.
                    .wrap_fn({
                        let limits = rate_limits.clone();
                        move |req, srv| {
                            let refused = req
                                .peer_addr()
                                .and_then(|addr| limits.check_address(addr.ip()).err());
                            let fut = (refused.is_none()).then(|| srv.call(req));
                            async move {
                                match (refused, fut) {
                                    (Some(e), _) => Err(e.into()),
                                    (None, Some(fut)) => fut.await,
                                    (None, None) => Err(ApiError::internal("no request").into()),
                                }
                            }
                        }
                    })
                    .wrap_fn(|req, srv| {
                        let id = req.extensions().get::<RequestId>().map(|id| id.to_string());
                        let fut = srv.call(req);
                        async move {
                            let mut res = fut.await?;
                            if let Some(value) = id.and_then(|id| HeaderValue::from_str(&id).ok()) {
                                res.headers_mut()
                                    .insert(HeaderName::from_static("x-request-id"), value);
                            }
                            Ok(res)
                        }
                    })
                    .wrap(TracingLogger::<crate::session::RootSpan>::new())
                    // Outermost: `//ga4gh/wes/v1/runs` (WESkit's client joins `<base>/` and
                    // `/ga4gh/...`) is routed as `/ga4gh/wes/v1/runs`. Repeated slashes are
                    // merged anywhere in the path; a trailing slash is left alone, so every
                    // other path keeps the answer it had.
                    .wrap(NormalizePath::new(TrailingSlash::MergeOnly))
                    .app_data(state.clone())
                    .app_data(authenticator.clone())
                    .app_data(rate_limits.clone())
                    .app_data(refusals_data.clone())
                    .configure({
                        let sessions = sessions.clone();
                        move |cfg: &mut web::ServiceConfig| {
                            if let Some(sessions) = sessions {
                                cfg.app_data(sessions);
                            }
                        }
                    })
                    .app_data(web::PathConfig::default().error_handler(|e, _| {
                        ApiError::bad_request(format!("bad path: {e}")).into()
                    }))
                    .app_data(web::QueryConfig::default().error_handler(|e, _| {
                        ApiError::bad_request(format!("bad query: {e}")).into()
                    }))
                    .configure(routes::configure)
                    .default_service(web::to(|req: actix_web::HttpRequest| async move {
                        Err::<actix_web::HttpResponse, _>(ApiError::not_found(format!(
                            "no such resource: {}",
                            req.path().chars().take(200).collect::<String>()
                        )))
                    }))
            });
        if let Some(workers) = workers {
            server = server.workers(workers);
        }
        let server = server
            .listen(listener)
            .map_err(|source| StartupError::Listen {
                addr: addr.to_string(),
                source,
            })?
            .run();
        tracing::info!(%addr, port, "wes-api listening");
        let operations = match operations_state.config.server.metrics_listen {
            Some(at) => {
                let (server, bound) = operations_server(at, operations_state.clone())?;
                tracing::info!(addr = %bound, "wes-api metrics and readiness listening");
                Some((server, bound.port()))
            }
            None => None,
        };
        Ok(Application {
            port,
            server,
            operations,
            stop,
            loops,
            store,
            refusals,
            refusal_window,
            anchor_bucket,
        })
    }

    /// The port actually bound (useful when the config asked for port 0).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The port of `server.metrics_listen`, when it is set.
    pub fn metrics_port(&self) -> Option<u16> {
        self.operations.as_ref().map(|(_, port)| *port)
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let operations = self.operations.map(|(server, _)| {
            let handle = server.handle();
            tokio::spawn(server);
            handle
        });
        let result = self.server.await;
        if let Some(handle) = operations {
            handle.stop(true).await;
        }
        // The submitter finishes the run it is submitting and gives back its other claims; the
        // reconciler gives up its lease: another instance carries on at once.
        self.stop.set();
        let loops = futures_util::future::join_all(self.loops);
        if tokio::time::timeout(LOOPS_STOP, loops).await.is_err() {
            tracing::warn!(
                "the submitter or reconciler did not stop in time; their claims run out"
            );
        }
        // On shutdown: what was counted is written, and the head is anchored once more.
        if let Err(e) = self.refusals.flush(&self.store, self.refusal_window).await {
            tracing::error!(error = %e, "cannot record refused tokens in the audit chain");
        }
        let target = self
            .anchor_bucket
            .as_ref()
            .map(|(bucket, prefix)| (bucket.as_ref(), prefix.as_str()));
        if let Err(e) = crate::app::audit::anchor(&self.store, target).await {
            tracing::error!(error = %e, "cannot read the audit chain head to anchor it");
        }
        result
    }
}

/// The operations endpoints on their own address (`server.metrics_listen`), kept off the API's
/// listener so that only the operator's network reaches `/metrics`: one worker, the signals
/// left to the API's server, which stops it.
fn operations_server(
    at: std::net::SocketAddr,
    state: web::Data<AppState>,
) -> Result<(Server, std::net::SocketAddr), StartupError> {
    let listen_error = |source| StartupError::Listen {
        addr: format!("server.metrics_listen {at}"),
        source,
    };
    let listener = TcpListener::bind(at).map_err(listen_error)?;
    let bound = listener.local_addr().map_err(listen_error)?;
    let server = HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .route("/metrics", web::get().to(routes::health::metrics))
            .route("/readyz", web::get().to(routes::health::ready))
            .route("/healthz", web::get().to(routes::health::live))
    })
    .workers(1)
    .disable_signals()
    .listen(listener)
    .map_err(listen_error)?
    .run();
    Ok((server, bound))
}
