//! `server`: where wes-api listens and the limits of its HTTP interface.

use std::net::SocketAddr;

use serde::Deserialize;

use super::ConfigError;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// The address wes-api binds, e.g. `127.0.0.1:8080` (port 0: any free port).
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// Largest request body accepted; larger ones get 413.
    #[serde(default = "default_max_body_bytes")]
    pub max_body_bytes: usize,
    #[serde(default = "default_page_size")]
    pub default_page_size: u32,
    #[serde(default = "default_max_page_size")]
    pub max_page_size: u32,
    #[serde(default)]
    pub workers: Option<usize>,
    /// Requests per caller (docs/security.md, "Limits").
    #[serde(default)]
    pub rate_limit: RateLimitConfig,
    /// Where `/metrics` (Prometheus), `/readyz` and `/healthz` are also served, apart from the
    /// API (e.g. `127.0.0.1:9465`, reached by the operator's network only). Unset: no
    /// `/metrics`.
    #[serde(default)]
    pub metrics_listen: Option<SocketAddr>,
}

/// Token buckets per client address (every route) and per authenticated person (protected
/// routes): refilled at `per_second`, holding at most `burst`. Over them: 429 with
/// `Retry-After`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitConfig {
    #[serde(default = "default_address_rate")]
    pub per_address_per_second: u32,
    #[serde(default = "default_address_burst")]
    pub per_address_burst: u32,
    #[serde(default = "default_caller_rate")]
    pub per_caller_per_second: u32,
    #[serde(default = "default_caller_burst")]
    pub per_caller_burst: u32,
    /// Most addresses, and most callers, tracked at once; new ones beyond it wait (429) until
    /// idle ones are forgotten (every minute).
    #[serde(default = "default_max_tracked")]
    pub max_tracked: usize,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        RateLimitConfig {
            per_address_per_second: default_address_rate(),
            per_address_burst: default_address_burst(),
            per_caller_per_second: default_caller_rate(),
            per_caller_burst: default_caller_burst(),
            max_tracked: default_max_tracked(),
        }
    }
}

fn default_address_rate() -> u32 {
    2000
}
fn default_address_burst() -> u32 {
    4000
}
fn default_caller_rate() -> u32 {
    500
}
fn default_caller_burst() -> u32 {
    1000
}
fn default_max_tracked() -> usize {
    100_000
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: default_listen(),
            max_body_bytes: default_max_body_bytes(),
            default_page_size: default_page_size(),
            max_page_size: default_max_page_size(),
            workers: None,
            rate_limit: RateLimitConfig::default(),
            metrics_listen: None,
        }
    }
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8080))
}
fn default_max_body_bytes() -> usize {
    1024 * 1024
}
fn default_page_size() -> u32 {
    50
}
fn default_max_page_size() -> u32 {
    500
}

impl ServerConfig {
    pub(super) fn check(&self) -> Result<(), ConfigError> {
        ConfigError::at_least("server.max_body_bytes", self.max_body_bytes, 1024)?;
        if self.max_page_size == 0 || self.default_page_size == 0 {
            return Err(ConfigError::at(
                "server.max_page_size",
                "page sizes must be at least 1",
            ));
        }
        let r = &self.rate_limit;
        for (key, value) in [
            ("per_address_per_second", r.per_address_per_second),
            ("per_address_burst", r.per_address_burst),
            ("per_caller_per_second", r.per_caller_per_second),
            ("per_caller_burst", r.per_caller_burst),
        ] {
            ConfigError::at_least(&format!("server.rate_limit.{key}"), value, 1)?;
        }
        ConfigError::at_least("server.rate_limit.max_tracked", r.max_tracked, 1)?;
        if self.workers == Some(0) {
            return Err(ConfigError::at("server.workers", "must be at least 1"));
        }
        Ok(())
    }
}
