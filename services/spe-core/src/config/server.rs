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
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: default_listen(),
            max_body_bytes: default_max_body_bytes(),
            default_page_size: default_page_size(),
            max_page_size: default_max_page_size(),
            workers: None,
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
        if self.workers == Some(0) {
            return Err(ConfigError::at("server.workers", "must be at least 1"));
        }
        Ok(())
    }
}
