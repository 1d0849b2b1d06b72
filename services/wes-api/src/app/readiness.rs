//! Whether this instance can do its work (`GET /readyz`): the database answers, and so do the
//! parts the config names: the results bucket, the OIDC provider's discovery document and the
//! Slurm controller. The checks run at once, each bounded by a timeout; their reasons go to the
//! log, the answer names only what fails (it is public, for orchestrators).

use std::future::Future;
use std::sync::OnceLock;
use std::time::Duration;

use spe_core::config::AuthConfig;

use crate::startup::AppState;

/// How long one check may take before it counts as failed.
const CHECK_TIMEOUT: Duration = Duration::from_secs(3);

/// What one check found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    /// The config does not use this part.
    NotConfigured,
    Failed(String),
}

impl Outcome {
    pub fn as_str(&self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::NotConfigured => "not configured",
            Outcome::Failed(_) => "failed",
        }
    }
}

async fn bounded<F>(what: &str, check: F) -> Outcome
where
    F: Future<Output = Result<(), String>>,
{
    match tokio::time::timeout(CHECK_TIMEOUT, check).await {
        Ok(Ok(())) => Outcome::Ok,
        Ok(Err(why)) => Outcome::Failed(format!("{what}: {why}")),
        Err(_) => Outcome::Failed(format!("{what}: no answer within 3 s")),
    }
}

fn http() -> &'static reqwest::Client {
    static CLIENT: OnceLock<reqwest::Client> = OnceLock::new();
    CLIENT.get_or_init(|| {
        reqwest::Client::builder()
            .timeout(CHECK_TIMEOUT)
            .build()
            .unwrap_or_default()
    })
}

/// Every check, by name, in a fixed order.
pub async fn check(state: &AppState) -> Vec<(&'static str, Outcome)> {
    let database = bounded("database", async {
        state.store.ping().await.map_err(|e| e.to_string())
    });
    let s3 = async {
        match &state.results {
            Some(bucket) => {
                bounded("s3", async {
                    bucket.answers(spe_core::bucket::READINESS_KEY).await
                })
                .await
            }
            None => Outcome::NotConfigured,
        }
    };
    let oidc = async {
        match &state.config.auth {
            AuthConfig::Oidc(oidc) => {
                let url = format!(
                    "{}/.well-known/openid-configuration",
                    oidc.issuer.trim_end_matches('/')
                );
                bounded("oidc discovery", async {
                    let res = http().get(&url).send().await.map_err(|e| e.to_string())?;
                    if res.status().is_success() {
                        Ok(())
                    } else {
                        Err(format!("{url} answered {}", res.status()))
                    }
                })
                .await
            }
            AuthConfig::Disabled => Outcome::NotConfigured,
        }
    };
    let scheduler = async {
        match &state.slurm {
            Some(slurm) => {
                bounded("slurm", async {
                    slurm.jobs().await.map(drop).map_err(|e| e.to_string())
                })
                .await
            }
            None => Outcome::NotConfigured,
        }
    };
    let (database, s3, oidc, scheduler) = tokio::join!(database, s3, oidc, scheduler);
    vec![
        ("database", database),
        ("s3", s3),
        ("oidc", oidc),
        ("scheduler", scheduler),
    ]
}
