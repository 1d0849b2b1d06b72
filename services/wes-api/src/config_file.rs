//! Reading the configuration file: the one piece of I/O spe-core leaves to its callers.

use std::path::Path;

use spe_core::config::{Config, ConfigError};

/// Reads `path`, applies `SPE__...` environment overrides and checks the result.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfigError(format!("cannot read {}: {e}", path.display())))?;
    Config::parse(&text, std::env::vars())
}
