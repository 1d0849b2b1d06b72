//! Logging set-up: human-readable by default, JSON lines when configured.

use spe_core::config::{ConfigError, LogFormat, LoggingConfig};
use tracing_subscriber::EnvFilter;

/// Installs the global subscriber. `RUST_LOG`, when set, wins over the configured level.
/// A second call keeps the first subscriber (tests start many apps in one process).
pub fn init(config: &LoggingConfig) -> Result<(), ConfigError> {
    let filter = match EnvFilter::try_from_default_env() {
        Ok(filter) => filter,
        Err(_) => {
            EnvFilter::try_new(&config.level).map_err(|e| ConfigError::at("logging.level", e))?
        }
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match config.format {
        LogFormat::Human => builder.try_init(),
        LogFormat::Json => builder
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .try_init(),
    };
    Ok(())
}
