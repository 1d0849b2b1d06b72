//! Reading the configuration file named on the command line, with this process's environment.

use std::path::Path;

use spe_core::config::{Config, ConfigError};

/// Reads `path`, applies `SPE__...` environment overrides and checks the result; errors name
/// the file and the key.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    Config::load(path, std::env::vars())
}
