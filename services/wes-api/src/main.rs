//! `wes-api`: the GA4GH WES 1.1 service of the SPE.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use wes_api::startup::Application;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    version,
    about = "GA4GH WES 1.1 API of the Secure Processing Environment"
)]
struct Cli {
    /// The configuration file (YAML). `SPE__SECTION__KEY` variables override single keys.
    #[arg(long, value_name = "PATH")]
    config: PathBuf,
    /// Listen on this address instead of `server.listen` (e.g. 127.0.0.1:0 for any free port).
    #[arg(long, value_name = "ADDR")]
    listen: Option<SocketAddr>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let mut config = match wes_api::config_file::load(&cli.config) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("wes-api: {e}");
            return ExitCode::from(2);
        }
    };
    if let Some(listen) = cli.listen {
        config.server.listen = listen;
    }
    if let Err(e) = wes_api::telemetry::init(&config.logging) {
        eprintln!("wes-api: {e}");
        return ExitCode::from(2);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("wes-api: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        let app = Application::build(config).await?;
        // The first line on stdout says where to reach the service; scripts read it.
        println!("wes-api listening on port {}", app.port());
        app.run_until_stopped()
            .await
            .map_err(|source| wes_api::startup::StartupError::Listen {
                addr: "server".into(),
                source,
            })
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "wes-api stopped");
            eprintln!("wes-api: {e}");
            ExitCode::FAILURE
        }
    }
}
