//! Engine command lines: the exact argv `spe-runner` starts for a [`RunSpec`].
//!
//! Pure: the command is built from the spec alone, nothing is read from disk or the
//! environment. Only the engine parameters this module knows are turned into flags, and their
//! values are checked again here (wes-api checked them against the deployment's policy already;
//! the runner must not trust a spec file it did not write). Parameters meant for the scheduler
//! (`partition`, `runtime_minutes`, or any other name) are never put on the engine's command
//! line: wes-api hands them to `sbatch`.
//!
//! Snakemake (`engine: snakemake`):
//!
//! ```text
//! <exe> --snakefile <workflow_dir>/<entry_point> --configfile <params_file>
//!       --directory <run_dir> --cores <cores> [--resources mem_mb=<memory_mb>]
//!       --nolock --printshellcmds --nocolor --show-failed-logs
//! ```
//!
//! No `--use-conda`, `--use-apptainer`, `--keep-incomplete` or executor plugins: the approved
//! files are the whole workflow, and incomplete outputs are deleted by Snakemake so that they
//! are never mistaken for results.
//!
//! Nextflow (`engine: nextflow`):
//!
//! ```text
//! <exe> run <workflow_dir>/<entry_point> -params-file <params_file>
//!       -work-dir <run_dir>/work -with-trace <log_dir>/trace.txt -ansi-log false -offline
//!       [-executor.cpus=<cores>] [-executor.memory=<memory_mb>MB]
//! ```
//!
//! `-executor.<key>=<value>` sets the local executor's limits (Nextflow's `executor` config
//! scope, e.g. `executor.cpus`), not each task's.

use std::path::Path;

use crate::request::WorkflowType;
use crate::runspec::RunSpec;

/// The engines this runner can start, by the name used in `RunSpec::engine`.
pub const SNAKEMAKE: &str = "snakemake";
pub const NEXTFLOW: &str = "nextflow";

/// Bounds checked again on the runner side, whatever the deployment's policy says.
pub const MAX_CORES: u32 = 1024;
/// 16 TiB in MB: a sanity bound, not a policy.
pub const MAX_MEMORY_MB: u64 = 16 * 1024 * 1024;

/// Name of the Nextflow trace file inside the log dir.
pub const NEXTFLOW_TRACE_FILE: &str = "trace.txt";

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EngineError {
    #[error("unknown engine {0:?} (known: snakemake, nextflow)")]
    UnknownEngine(String),
    #[error("engine {engine} cannot run workflow type {workflow_type}")]
    TypeMismatch {
        engine: String,
        workflow_type: WorkflowType,
    },
    #[error("engine parameter {name}: {reason}")]
    BadParameter { name: String, reason: String },
    #[error("{field}: {reason}")]
    BadPath { field: &'static str, reason: String },
    #[error("engine_executable must not be empty")]
    NoExecutable,
}

/// Which engine a spec names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Engine {
    Snakemake,
    Nextflow,
}

impl Engine {
    pub fn parse(name: &str) -> Result<Engine, EngineError> {
        match name {
            SNAKEMAKE => Ok(Engine::Snakemake),
            NEXTFLOW => Ok(Engine::Nextflow),
            other => Err(EngineError::UnknownEngine(other.chars().take(64).collect())),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Engine::Snakemake => SNAKEMAKE,
            Engine::Nextflow => NEXTFLOW,
        }
    }

    pub fn workflow_type(self) -> WorkflowType {
        match self {
            Engine::Snakemake => WorkflowType::Snakemake,
            Engine::Nextflow => WorkflowType::Nextflow,
        }
    }

    /// Folders and files (relative to the run dir, top level) the engine keeps for its own
    /// bookkeeping; they are not outputs of the run.
    pub fn bookkeeping_paths(self) -> &'static [&'static str] {
        match self {
            Engine::Snakemake => &[".snakemake"],
            Engine::Nextflow => &[".nextflow", "work"],
        }
    }

    pub const ALL: [Engine; 2] = [Engine::Snakemake, Engine::Nextflow];

    /// Whether a top-level file name is the engine's own log (e.g. `.nextflow.log`,
    /// `.nextflow.log.1`).
    pub fn is_engine_log(self, top_level_name: &str) -> bool {
        match self {
            Engine::Snakemake => false,
            Engine::Nextflow => top_level_name.starts_with(".nextflow.log"),
        }
    }

    /// Extra environment the engine needs beside the runner's allowlist.
    pub fn environment(self) -> &'static [(&'static str, &'static str)] {
        match self {
            Engine::Snakemake => &[],
            // No network in the SPE: never look for launcher or plugin updates.
            Engine::Nextflow => &[("NXF_OFFLINE", "true"), ("NXF_ANSI_LOG", "false")],
        }
    }
}

/// The argv (executable first) that runs `spec`'s workflow.
///
/// No workflow parameter can become an option: `workflow_params` reach the engine only inside
/// the params file (`--configfile` / `-params-file`), never as words of the command line; every
/// other word is an option chosen here, an absolute path the service built (it starts with `/`,
/// so it is never read as an option), or a whole number checked by [`integer_parameter`].
/// Engine parameters other than the numbers (partition, runtime) go to sbatch, not here.
pub fn command_line(spec: &RunSpec) -> Result<Vec<String>, EngineError> {
    let engine = Engine::parse(&spec.engine)?;
    if engine.workflow_type() != spec.workflow_type {
        return Err(EngineError::TypeMismatch {
            engine: engine.as_str().to_owned(),
            workflow_type: spec.workflow_type,
        });
    }
    if spec.engine_executable.trim().is_empty() {
        return Err(EngineError::NoExecutable);
    }
    let workflow_dir = absolute(&spec.workflow_dir, "workflow_dir")?;
    let run_dir = absolute(&spec.run_dir, "run_dir")?;
    let params_file = absolute(&spec.params_file, "params_file")?;
    let log_dir = absolute(&spec.log_dir, "log_dir")?;
    let entry = entry_point(&spec.entry_point)?;
    let cores = integer_parameter(spec, "cores", 1, u64::from(MAX_CORES))?;
    let memory_mb = integer_parameter(spec, "memory_mb", 1, MAX_MEMORY_MB)?;

    let entry_path = format!("{workflow_dir}/{entry}");
    let mut argv = vec![spec.engine_executable.clone()];
    match engine {
        Engine::Snakemake => {
            argv.extend(
                [
                    "--snakefile",
                    &entry_path,
                    "--configfile",
                    &params_file,
                    "--directory",
                    &run_dir,
                    "--cores",
                    &cores.unwrap_or(1).to_string(),
                ]
                .map(str::to_owned),
            );
            if let Some(mb) = memory_mb {
                argv.push("--resources".to_owned());
                argv.push(format!("mem_mb={mb}"));
            }
            argv.extend(
                [
                    "--nolock",
                    "--printshellcmds",
                    "--nocolor",
                    "--show-failed-logs",
                ]
                .map(str::to_owned),
            );
        }
        Engine::Nextflow => {
            argv.extend(
                [
                    "run",
                    &entry_path,
                    "-params-file",
                    &params_file,
                    "-work-dir",
                    &format!("{run_dir}/work"),
                    "-with-trace",
                    &format!("{log_dir}/{NEXTFLOW_TRACE_FILE}"),
                    "-ansi-log",
                    "false",
                    "-offline",
                ]
                .map(str::to_owned),
            );
            if let Some(n) = cores {
                argv.push(format!("-executor.cpus={n}"));
            }
            if let Some(mb) = memory_mb {
                argv.push(format!("-executor.memory={mb}MB"));
            }
        }
    }
    Ok(argv)
}

/// A path as UTF-8 text, absolute, with no `..` and no trailing slash.
fn absolute(path: &Path, field: &'static str) -> Result<String, EngineError> {
    let bad = |reason: &str| EngineError::BadPath {
        field,
        reason: reason.to_owned(),
    };
    let text = path.to_str().ok_or_else(|| bad("must be UTF-8"))?;
    if !text.starts_with('/') {
        return Err(bad("must be an absolute path"));
    }
    if text.split('/').any(|part| part == "..") {
        return Err(bad("must not contain `..`"));
    }
    if text.contains('\0') || text.contains('\n') {
        return Err(bad("must not contain NUL or newline"));
    }
    let trimmed = text.trim_end_matches('/');
    Ok(if trimmed.is_empty() { "/" } else { trimmed }.to_owned())
}

/// The entry point: a relative path inside the workflow dir.
fn entry_point(entry: &str) -> Result<&str, EngineError> {
    let bad = |reason: &str| EngineError::BadPath {
        field: "entry_point",
        reason: reason.to_owned(),
    };
    if entry.is_empty() {
        return Err(bad("must not be empty"));
    }
    if entry.starts_with('/') || entry.starts_with('-') {
        return Err(bad("must be a relative path not starting with `-`"));
    }
    if entry
        .split('/')
        .any(|part| part.is_empty() || part == ".." || part == ".")
    {
        return Err(bad("must not contain empty, `.` or `..` parts"));
    }
    if entry.contains('\0') || entry.contains('\n') {
        return Err(bad("must not contain NUL or newline"));
    }
    Ok(entry)
}

fn integer_parameter(
    spec: &RunSpec,
    name: &str,
    min: u64,
    max: u64,
) -> Result<Option<u64>, EngineError> {
    let Some(text) = spec.engine_parameters.get(name) else {
        return Ok(None);
    };
    let bad = |reason: String| EngineError::BadParameter {
        name: name.to_owned(),
        reason,
    };
    // Digits only: no sign, no spaces, no exponent, so nothing but a number reaches the engine.
    if text.is_empty() || text.len() > 20 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad("must be a whole number".to_owned()));
    }
    let value: u64 = text
        .parse()
        .map_err(|_| bad("must be a whole number".to_owned()))?;
    if value < min || value > max {
        return Err(bad(format!("must be between {min} and {max}")));
    }
    Ok(Some(value))
}

/// Whether a top-level entry of a run directory is bookkeeping, never an output whatever the
/// egress rules say: the system's own folders (`.spe`, `.weskit`) and what `engine` writes for
/// itself (its folders and logs); with `None`, what any engine writes.
pub fn is_bookkeeping(top_level: &str, engine: Option<Engine>) -> bool {
    let engines: &[Engine] = match &engine {
        Some(e) => std::slice::from_ref(e),
        None => &Engine::ALL,
    };
    crate::logjson::is_never_output(top_level)
        || engines
            .iter()
            .any(|e| e.bookkeeping_paths().contains(&top_level) || e.is_engine_log(top_level))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::path::PathBuf;

    use super::*;
    use crate::digest::digest_files;
    use crate::ids::RunId;

    fn spec(engine: &str, workflow_type: WorkflowType, params: &[(&str, &str)]) -> RunSpec {
        RunSpec {
            run_id: "0b5e4f7c-3c1d-4a47-9d1e-2f5e0c7d8a11"
                .parse::<RunId>()
                .unwrap(),
            workflow_type,
            engine: engine.to_owned(),
            engine_executable: engine.to_owned(),
            workflow_dir: PathBuf::from("/srv/workflows/quals/1.0.0"),
            entry_point: if engine == NEXTFLOW {
                "main.nf"
            } else {
                "Snakefile"
            }
            .to_owned(),
            workflow_files: vec!["Snakefile".to_owned()],
            expected_digest: digest_files(&[("Snakefile", "x")]),
            run_dir: PathBuf::from("/data/runs/0b5e/0b5e4f7c-3c1d-4a47-9d1e-2f5e0c7d8a11"),
            params_file: PathBuf::from(
                "/data/runs/0b5e/0b5e4f7c-3c1d-4a47-9d1e-2f5e0c7d8a11/0b5e4f7c-3c1d-4a47-9d1e-2f5e0c7d8a11.yaml",
            ),
            log_dir: PathBuf::from(
                "/data/runs/0b5e/0b5e4f7c-3c1d-4a47-9d1e-2f5e0c7d8a11/.weskit/2026-01-31T12:00:00Z",
            ),
            engine_parameters: params
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect::<BTreeMap<_, _>>(),
            sandbox: Default::default(),
            datasets: Vec::new(),
            crypt4gh: None,
        }
    }

    const RUN: &str = "/data/runs/0b5e/0b5e4f7c-3c1d-4a47-9d1e-2f5e0c7d8a11";

    #[test]
    fn no_parameter_becomes_a_word_of_the_command_line() {
        for (engine, ty) in [
            (SNAKEMAKE, WorkflowType::Snakemake),
            (NEXTFLOW, WorkflowType::Nextflow),
        ] {
            let s = spec(
                engine,
                ty,
                &[("partition", "--wrap=id"), ("runtime_minutes", "-x")],
            );
            let argv = command_line(&s).unwrap();
            for word in &argv[1..] {
                assert!(
                    word.starts_with('-') && !word.contains("wrap") && word != "-x"
                        || word.starts_with('/')
                        || word.bytes().all(|b| b.is_ascii_digit())
                        || ["run", "false"].contains(&word.as_str()),
                    "{engine}: {word}"
                );
            }
            for bad in ["-1", "--help", "1 --x", "+2"] {
                let s = spec(engine, ty, &[("cores", bad)]);
                assert!(command_line(&s).is_err(), "{engine} cores {bad}");
            }
        }
    }

    #[test]
    fn snakemake_command_line() {
        let s = spec(
            SNAKEMAKE,
            WorkflowType::Snakemake,
            &[
                ("cores", "4"),
                ("memory_mb", "2048"),
                ("partition", "debug"),
                ("runtime_minutes", "60"),
            ],
        );
        let argv = command_line(&s).unwrap();
        let params = format!("{RUN}/0b5e4f7c-3c1d-4a47-9d1e-2f5e0c7d8a11.yaml");
        assert_eq!(
            argv,
            [
                "snakemake",
                "--snakefile",
                "/srv/workflows/quals/1.0.0/Snakefile",
                "--configfile",
                params.as_str(),
                "--directory",
                RUN,
                "--cores",
                "4",
                "--resources",
                "mem_mb=2048",
                "--nolock",
                "--printshellcmds",
                "--nocolor",
                "--show-failed-logs",
            ]
        );
        // Scheduler parameters never reach the engine.
        assert!(!argv.iter().any(|a| a.contains("debug") || a.contains("60")));
    }

    #[test]
    fn snakemake_defaults_to_one_core_and_no_memory_limit() {
        let argv = command_line(&spec(SNAKEMAKE, WorkflowType::Snakemake, &[])).unwrap();
        let i = argv.iter().position(|a| a == "--cores").unwrap();
        assert_eq!(argv[i + 1], "1");
        assert!(!argv.iter().any(|a| a == "--resources"));
        assert!(!argv.iter().any(|a| a.contains("conda")));
    }

    #[test]
    fn nextflow_command_line() {
        let s = spec(
            NEXTFLOW,
            WorkflowType::Nextflow,
            &[("cores", "2"), ("memory_mb", "1024")],
        );
        let argv = command_line(&s).unwrap();
        let params = format!("{RUN}/0b5e4f7c-3c1d-4a47-9d1e-2f5e0c7d8a11.yaml");
        let work = format!("{RUN}/work");
        let trace = format!("{RUN}/.weskit/2026-01-31T12:00:00Z/trace.txt");
        assert_eq!(
            argv,
            [
                "nextflow",
                "run",
                "/srv/workflows/quals/1.0.0/main.nf",
                "-params-file",
                params.as_str(),
                "-work-dir",
                work.as_str(),
                "-with-trace",
                trace.as_str(),
                "-ansi-log",
                "false",
                "-offline",
                "-executor.cpus=2",
                "-executor.memory=1024MB",
            ]
        );
    }

    #[test]
    fn unknown_engines_and_mismatched_types_are_refused() {
        let s = spec("cwltool", WorkflowType::Snakemake, &[]);
        assert!(matches!(
            command_line(&s),
            Err(EngineError::UnknownEngine(_))
        ));
        let s = spec(SNAKEMAKE, WorkflowType::Nextflow, &[]);
        assert!(matches!(
            command_line(&s),
            Err(EngineError::TypeMismatch { .. })
        ));
        let mut s = spec(SNAKEMAKE, WorkflowType::Snakemake, &[]);
        s.engine_executable = " ".to_owned();
        assert_eq!(command_line(&s), Err(EngineError::NoExecutable));
    }

    #[test]
    fn parameter_values_are_checked_again() {
        for (name, value) in [
            ("cores", "0"),
            ("cores", "1025"),
            ("cores", "-1"),
            ("cores", "2 --use-conda"),
            ("cores", "+2"),
            ("cores", ""),
            ("cores", "1e3"),
            ("memory_mb", "lots"),
            ("memory_mb", "0"),
            ("memory_mb", "99999999999999999999"),
        ] {
            let s = spec(SNAKEMAKE, WorkflowType::Snakemake, &[(name, value)]);
            assert!(
                matches!(command_line(&s), Err(EngineError::BadParameter { .. })),
                "{name}={value} accepted"
            );
        }
        let s = spec(SNAKEMAKE, WorkflowType::Snakemake, &[("cores", "1024")]);
        assert!(command_line(&s).is_ok());
    }

    #[test]
    fn paths_must_be_absolute_and_entry_points_relative() {
        let mut s = spec(SNAKEMAKE, WorkflowType::Snakemake, &[]);
        s.run_dir = PathBuf::from("runs/x");
        assert!(matches!(
            command_line(&s),
            Err(EngineError::BadPath {
                field: "run_dir",
                ..
            })
        ));
        for entry in [
            "/etc/Snakefile",
            "../Snakefile",
            "a//b",
            "",
            "-s",
            "./Snakefile",
        ] {
            let mut s = spec(SNAKEMAKE, WorkflowType::Snakemake, &[]);
            s.entry_point = entry.to_owned();
            assert!(
                matches!(
                    command_line(&s),
                    Err(EngineError::BadPath {
                        field: "entry_point",
                        ..
                    })
                ),
                "{entry:?} accepted"
            );
        }
        let mut s = spec(SNAKEMAKE, WorkflowType::Snakemake, &[]);
        s.entry_point = "workflow/Snakefile".to_owned();
        s.workflow_dir = PathBuf::from("/srv/wf/");
        let argv = command_line(&s).unwrap();
        assert_eq!(argv[2], "/srv/wf/workflow/Snakefile");
        s.params_file = PathBuf::from("/data/../etc/passwd");
        assert!(command_line(&s).is_err());
    }

    #[test]
    fn bookkeeping_paths_per_engine() {
        assert!(is_bookkeeping("work", Some(Engine::Nextflow)));
        assert!(!is_bookkeeping("work", Some(Engine::Snakemake)));
        assert!(is_bookkeeping("work", None));
        assert!(is_bookkeeping(".nextflow.log.1", None));
        assert!(is_bookkeeping(".weskit", Some(Engine::Snakemake)));
        assert!(!is_bookkeeping("results.csv", None));
        assert_eq!(Engine::Snakemake.bookkeeping_paths(), [".snakemake"]);
        assert!(Engine::Nextflow.is_engine_log(".nextflow.log.2"));
        assert!(!Engine::Snakemake.is_engine_log(".nextflow.log"));
        assert_eq!(Engine::parse("nextflow"), Ok(Engine::Nextflow));
    }
}
