//! `database`: the store both services share.

use serde::Deserialize;

use super::ConfigError;
use crate::secret::DatabaseUrl;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseConfig {
    /// `sqlite://path/to/file.db` (created on first start) or `postgres://user:pass@host/db`.
    pub url: DatabaseUrl,
    #[serde(default = "default_max_connections")]
    pub max_connections: u32,
    /// How long start-up and requests wait for a database connection.
    #[serde(default = "default_connect_timeout")]
    pub connect_timeout_seconds: u64,
}

fn default_max_connections() -> u32 {
    8
}

fn default_connect_timeout() -> u64 {
    10
}

impl DatabaseConfig {
    pub(super) fn check(&self) -> Result<(), ConfigError> {
        if !(self.url.is_sqlite() || self.url.is_postgres()) {
            return Err(ConfigError::at(
                "database.url",
                "must start with sqlite: or postgres:// (the value is not shown: it may hold a password)",
            ));
        }
        ConfigError::at_least("database.max_connections", self.max_connections, 1)?;
        Ok(())
    }
}
