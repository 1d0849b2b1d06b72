//! The run spec: everything a Slurm job needs to run one workflow, written by wes-api at
//! submission into `<run_dir>/.spe/runspec.json` and read by `spe-runner` inside the job.
//!
//! It holds no secret and no environment: the job gets its environment from sbatch's explicit
//! allowlist, and everything else from this file.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::digest::WorkflowDigest;
use crate::ids::RunId;
use crate::request::WorkflowType;

/// Where the spec lives inside a run directory.
pub const RUNSPEC_PATH: &str = ".spe/runspec.json";

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunSpec {
    pub run_id: RunId,
    pub workflow_type: WorkflowType,
    /// `snakemake` or `nextflow`.
    pub engine: String,
    /// The engine executable: an absolute path, or a name looked up on the job's PATH.
    pub engine_executable: String,
    /// The approved workflow's folder (read-only, on the shared file system). spe-runner
    /// copies its files to a private folder, checks the digest there and shows the copy to the
    /// engine at this path, read-only.
    pub workflow_dir: PathBuf,
    /// The entry point, relative to `workflow_dir` (e.g. `Snakefile`, `main.nf`).
    pub entry_point: String,
    /// The workflow's files, relative to `workflow_dir`, that the digest covers.
    pub workflow_files: Vec<String>,
    /// The digest fixed at approval; the runner refuses to start if the files differ.
    pub expected_digest: WorkflowDigest,
    /// The run directory: the engine's working directory and where outputs land.
    pub run_dir: PathBuf,
    /// `workflow_params` as given to the engine (`<run_dir>/<run_id>.yaml`).
    pub params_file: PathBuf,
    /// `.weskit/<timestamp>` inside the run directory: stdout, stderr and log.json go here.
    pub log_dir: PathBuf,
    /// The allowed engine parameters with their values (e.g. `cores`, `memory_mb`).
    pub engine_parameters: BTreeMap<String, String>,
    /// How spe-runner isolates the engine. A spec without the field gets the sandbox: the
    /// safe reading of an older or hand-written spec.
    #[serde(default)]
    pub sandbox: Sandbox,
    /// Locations of the datasets the run's params name: the only data the sandbox shows
    /// (read-only). No other dataset, and nothing else of `data_dir`, is visible to the job.
    #[serde(default)]
    pub datasets: Vec<PathBuf>,
    /// The run's Crypt4GH-encrypted datasets and where the service's secret keys are: spe-runner
    /// decrypts those datasets into the sandbox's private scratch before the engine starts
    /// (docs/crypt4gh.md). Paths and a variable name only, never a key or a passphrase.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crypt4gh: Option<Crypt4ghInputs>,
}

/// What spe-runner needs to decrypt a run's encrypted datasets.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Crypt4ghInputs {
    /// Locations (among `datasets`) whose files are Crypt4GH-encrypted.
    pub datasets: Vec<PathBuf>,
    /// The service's secret keys (Crypt4GH private key files); a file opens if encrypted to
    /// any of them (key rotation).
    pub secret_keys: Vec<PathBuf>,
    /// Where the passphrase of the secret keys is read.
    pub passphrase: PassphraseSource,
}

/// Where a secret key's passphrase comes from: a file (its first line) readable only by the
/// service's account, or an environment variable of the process. Never the command line.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum PassphraseSource {
    File(PathBuf),
    Env(String),
}

/// How the engine of a run is isolated (config key `slurm.sandbox`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Sandbox {
    /// bubblewrap (`bwrap`): no network, a filesystem view of the run's own workflow, datasets,
    /// run directory, a private scratch and read-only system folders.
    #[default]
    Bubblewrap,
    /// No isolation: the engine sees what the job's account sees. Only for
    /// `service.environment: dev`.
    None,
}

impl Sandbox {
    pub fn as_str(self) -> &'static str {
        match self {
            Sandbox::Bubblewrap => "bubblewrap",
            Sandbox::None => "none",
        }
    }
}
