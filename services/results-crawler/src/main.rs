//! `results-crawler`: releases whitelisted outputs of finished runs to the results bucket.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use spe_core::config::{Config, LogFormat};
use tracing_subscriber::EnvFilter;

#[derive(Parser)]
#[command(
    version,
    about = "Results crawler of the Secure Processing Environment"
)]
struct Cli {
    /// The configuration file (YAML), the one wes-api reads. `SPE__SECTION__KEY` variables
    /// override single keys (e.g. SPE__CRAWLER__SECRET_KEY).
    #[arg(long, value_name = "PATH")]
    config: PathBuf,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match std::fs::read_to_string(&cli.config)
        .map_err(|e| format!("cannot read {}: {e}", cli.config.display()))
        .and_then(|text| Config::parse(&text, std::env::vars()).map_err(|e| e.to_string()))
    {
        Ok(c) => c,
        Err(e) => {
            eprintln!("results-crawler: {e}");
            return ExitCode::from(2);
        }
    };
    let level = config
        .logging
        .level
        .clone()
        .unwrap_or_else(|| "info".into());
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match config.logging.format {
        LogFormat::Human => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("results-crawler: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(results_crawler::service::run(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "results-crawler stopped");
            eprintln!("results-crawler: {e}");
            ExitCode::FAILURE
        }
    }
}
