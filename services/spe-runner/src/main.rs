//! `spe-runner --spec <run_dir>/.spe/runspec.json`: runs one workflow inside a Slurm job.
//! See the library's documentation for what it does, the environment allowlist and the exit
//! codes.

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use spe_runner::{DEFAULT_GRACE, EXIT_RUNNER_FAILED, Options, run};

#[derive(Parser, Debug)]
#[command(
    name = "spe-runner",
    version,
    about = "Runs one approved workflow (a RunSpec) and writes its log.json"
)]
struct Args {
    /// The run spec written by wes-api (normally <run_dir>/.spe/runspec.json).
    #[arg(long)]
    spec: PathBuf,
    /// Seconds between forwarding SIGTERM/SIGINT to the engine and killing it.
    #[arg(long, default_value_t = DEFAULT_GRACE.as_secs(), value_parser = clap::value_parser!(u64).range(0..=600))]
    grace_seconds: u64,
}

fn main() {
    let args = match Args::try_parse() {
        Ok(args) => args,
        Err(e) => {
            let code = if e.use_stderr() {
                EXIT_RUNNER_FAILED
            } else {
                0
            };
            let _ = e.print();
            std::process::exit(code);
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("spe-runner: cannot start: {e}");
            std::process::exit(EXIT_RUNNER_FAILED);
        }
    };
    let options = Options {
        spec: args.spec,
        grace: Duration::from_secs(args.grace_seconds),
    };
    let code = runtime.block_on(run(&options));
    std::process::exit(code);
}
