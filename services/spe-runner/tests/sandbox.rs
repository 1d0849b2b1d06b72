//! The sandbox as a hostile job meets it: commands run through spe-runner's own sandbox
//! builder (`spe_runner::sandbox`), with real bubblewrap, in a layout shaped like data_dir
//! (two runs, two datasets). Each check also runs the same command outside the sandbox, where
//! it must succeed, so that a check cannot pass for an unrelated reason.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Output;

use spe_core::RunId;
use spe_core::digest::digest_files;
use spe_core::engine::Engine;
use spe_core::request::WorkflowType;
use spe_core::runspec::{RUNSPEC_PATH, RunSpec};
use spe_runner::sandbox::{self, View};

struct Layout {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    spec: RunSpec,
    view: View,
    bwrap: PathBuf,
}

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

impl Layout {
    fn new(engine: Engine) -> Layout {
        let bwrap = sandbox::find_executable("bwrap", Some("/usr/bin:/bin"))
            .expect("bwrap is installed (Debian package bubblewrap, .ci/run)");
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().to_path_buf();
        let run_id = RunId::new_random();
        let run_dir = root.join("data/runs").join(run_id.to_string());
        let spec = RunSpec {
            run_id,
            workflow_type: WorkflowType::Snakemake,
            engine: "snakemake".into(),
            engine_executable: "snakemake".into(),
            workflow_dir: root.join("data/.registry/wf/1.0.0"),
            entry_point: "Snakefile".into(),
            workflow_files: vec!["Snakefile".into()],
            expected_digest: digest_files(&[("Snakefile", "rule all:\n")]),
            params_file: run_dir.join(format!("{run_id}.yaml")),
            log_dir: run_dir.join(".weskit/2026-01-31T12:00:00Z"),
            run_dir: run_dir.clone(),
            engine_parameters: BTreeMap::new(),
            sandbox: Default::default(),
            datasets: vec![root.join("data/datasets/mine")],
            crypt4gh: None,
        };
        write(&spec.workflow_dir.join("Snakefile"), "rule all:\n");
        write(&spec.params_file, "dataset: x\n");
        write(&run_dir.join(RUNSPEC_PATH), "{\"the\": \"run spec\"}");
        write(&spec.log_dir.join("stdout"), "");
        write(&root.join("data/.weskit-other"), "");
        write(&root.join("data/datasets/mine/calls.tsv"), "mine\n");
        write(&root.join("data/datasets/other/calls.tsv"), "other\n");
        write(&root.join("data/runs/another-run/results.csv"), "theirs\n");
        write(&root.join("etc/spe/spe.yaml"), "database: secret\n");
        let private = root.join("private");
        sandbox::prepare_private(&private, &[("Snakefile".into(), b"rule all:\n".to_vec())])
            .unwrap();
        let view = View::for_spec(&spec, engine, &private, Vec::new());
        view.check_sources().unwrap();
        Layout {
            _tmp: tmp,
            root,
            spec,
            view,
            bwrap,
        }
    }

    fn path(&self, rel: &str) -> String {
        self.root.join(rel).display().to_string()
    }

    /// `bash -c script` inside the sandbox.
    fn inside(&self, script: &str) -> Output {
        let argv = ["/bin/bash".to_owned(), "-c".to_owned(), script.to_owned()];
        sandbox::command(&self.bwrap, &self.view, &argv)
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env("HOME", sandbox::HOME)
            .output()
            .unwrap()
    }

    /// The same script outside the sandbox: it must work there.
    fn outside(&self, script: &str) -> Output {
        std::process::Command::new("/bin/bash")
            .arg("-c")
            .arg(script)
            .output()
            .unwrap()
    }

    /// `script` succeeds outside and fails inside; returns the inside stderr.
    fn refused(&self, script: &str) -> String {
        let out = self.outside(script);
        assert!(out.status.success(), "outside: {script}: {out:?}");
        let inside = self.inside(script);
        assert!(
            !inside.status.success(),
            "inside the sandbox this worked: {script}\n{}",
            String::from_utf8_lossy(&inside.stdout)
        );
        String::from_utf8_lossy(&inside.stderr).into_owned()
    }
}

fn stdout(out: &Output) -> String {
    assert!(out.status.success(), "{out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn the_run_sees_its_own_dataset_and_no_other() {
    let l = Layout::new(Engine::Snakemake);
    let own = format!("cat {}", l.path("data/datasets/mine/calls.tsv"));
    assert_eq!(stdout(&l.inside(&own)), "mine\n");
    let err = l.refused(&format!("cat {}", l.path("data/datasets/other/calls.tsv")));
    assert!(err.contains("No such file or directory"), "{err}");
    // The datasets folder holds only the run's own dataset.
    let listing = l.inside(&format!("ls {}", l.path("data/datasets")));
    assert_eq!(stdout(&listing), "mine\n");
    // Nor can the dataset be changed.
    l.refused(&format!(
        "echo x >> {}",
        l.path("data/datasets/mine/calls.tsv")
    ));
}

#[test]
fn another_runs_directory_and_the_service_config_are_not_there() {
    let l = Layout::new(Engine::Snakemake);
    let err = l.refused(&format!(
        "cat {}",
        l.path("data/runs/another-run/results.csv")
    ));
    assert!(err.contains("No such file or directory"), "{err}");
    l.refused(&format!(
        "echo forged > {}",
        l.path("data/runs/another-run/results.csv")
    ));
    let listing = l.inside(&format!("ls -A {}", l.path("data/runs")));
    assert_eq!(stdout(&listing), format!("{}\n", l.spec.run_id));
    l.refused(&format!("cat {}", l.path("etc/spe/spe.yaml")));
    // No home directory of the account, no munge key, no Slurm config.
    let home = std::env::var("HOME").unwrap_or_else(|_| "/root".into());
    l.refused(&format!("ls {home}"));
    for host_only in ["/etc/munge", "/etc/slurm", "/etc/shadow", "/etc/os-release"] {
        let out = l.inside(&format!("test -e {host_only}"));
        assert!(!out.status.success(), "{host_only} is visible");
    }
    // What the engine needs is there.
    assert!(stdout(&l.inside("getent passwd 0")).starts_with("root:"));
}

#[test]
fn the_run_spec_the_workflow_and_the_params_cannot_be_changed() {
    let l = Layout::new(Engine::Snakemake);
    let spec_path = l.spec.run_dir.join(RUNSPEC_PATH);
    let spec = spec_path.display().to_string();
    // Not even readable: .spe is shown empty and read-only.
    l.refused(&format!("cat {spec}"));
    let err = l.refused(&format!("echo forged > {spec}"));
    assert!(err.contains("Read-only file system"), "{err}");
    // The outside check above wrote the host file: put the real one back and try again.
    std::fs::write(&spec_path, "{\"the\": \"run spec\"}").unwrap();
    let _ = l.inside(&format!("rm -f {spec}; echo forged > {spec}"));
    assert_eq!(
        std::fs::read_to_string(&spec_path).unwrap(),
        "{\"the\": \"run spec\"}"
    );
    // The workflow the engine reads is the checked copy, read-only.
    let snakefile = l.spec.workflow_dir.join("Snakefile").display().to_string();
    assert_eq!(
        stdout(&l.inside(&format!("cat {snakefile}"))),
        "rule all:\n"
    );
    // The copy's files are 0444 and the sandbox holds no capability; the mount itself is
    // read-only too, so even changing the mode fails.
    let err = l.refused(&format!(
        "chmod u+w {snakefile} && echo 'shell(\"curl x\")' >> {snakefile}"
    ));
    assert!(err.contains("Read-only file system"), "{err}");
    let params = l.spec.params_file.display().to_string();
    l.refused(&format!("echo 'dataset: /etc' > {params}"));
    // Earlier attempts' logs and this attempt's log.json are out of reach.
    let log_json = l.spec.log_dir.join("log.json").display().to_string();
    let _ = l.inside(&format!("echo '{{\"exit_code\": 0}}' > {log_json}"));
    assert!(!l.spec.log_dir.join("log.json").exists());
}

#[test]
fn the_run_directory_and_the_scratch_are_writable_and_nothing_else() {
    let l = Layout::new(Engine::Snakemake);
    let out = l.spec.run_dir.join("plots/q.svg");
    let script = format!(
        "mkdir -p {0} && echo '<svg/>' > {1} && echo tmp > /tmp/x && echo $HOME && test -d $HOME",
        out.parent().unwrap().display(),
        out.display()
    );
    assert_eq!(stdout(&l.inside(&script)), "/tmp/home\n");
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "<svg/>\n");
    assert_eq!(
        std::fs::read_to_string(l.view.scratch.join("x")).unwrap(),
        "tmp\n"
    );
    // Anywhere else is the sandbox's own root, read-only: a write fails instead of landing
    // in a tmpfs that vanishes (e.g. a Nextflow config planted in the account's home).
    for script in ["mkdir /planted", "mkdir -p /root/.nextflow"] {
        let out = l.inside(script);
        assert!(!out.status.success(), "{script} worked");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("Read-only file system"), "{script}: {err}");
    }
}

#[test]
fn nextflow_writes_its_trace_into_a_private_folder_the_runner_copies_from() {
    let l = Layout::new(Engine::Nextflow);
    let log_dir = l.spec.log_dir.display().to_string();
    // The engine sees an empty log folder, and what it writes there stays private...
    let out = l.inside(&format!(
        "ls -A {log_dir}; echo task > {log_dir}/trace.txt; echo '{{\"exit_code\":0}}' > {log_dir}/log.json; ln -s /etc/passwd {log_dir}/stdout2"
    ));
    assert_eq!(stdout(&out), "");
    assert!(!l.spec.log_dir.join("log.json").exists());
    assert!(!l.spec.log_dir.join("trace.txt").exists());
    // ...until the runner copies the trace, and only the trace, as a regular file.
    sandbox::collect_engine_logs(&l.view, &["trace.txt", "stdout2"]).unwrap_err();
    assert_eq!(
        std::fs::read_to_string(l.spec.log_dir.join("trace.txt")).unwrap(),
        "task\n"
    );
    assert!(!l.spec.log_dir.join("stdout2").exists());
    assert!(!l.spec.log_dir.join("log.json").exists());
    // The spec stays out of reach for Nextflow too.
    let spec = l.spec.run_dir.join(RUNSPEC_PATH).display().to_string();
    assert!(!l.inside(&format!("cat {spec}")).status.success());
}

#[test]
fn no_network_not_even_the_s3_server_on_loopback() {
    let Some(url) = spe_test_support::peers::s3_url() else {
        return;
    };
    let port = url
        .rsplit(':')
        .next()
        .and_then(|p| p.trim_end_matches('/').parse::<u16>().ok())
        .expect("SPE_TEST_S3_URL has a port");
    let l = Layout::new(Engine::Snakemake);
    let connect = format!("exec 3<>/dev/tcp/127.0.0.1/{port}");
    let err = l.refused(&connect);
    // 127.0.0.1 inside is the sandbox's own loopback, where nothing listens.
    assert!(err.contains("Connection refused"), "{err}");
    // Only the sandbox's own loopback: no other interface.
    let interfaces = stdout(&l.inside("ls /sys/class/net 2>/dev/null; cat /proc/net/dev"));
    assert!(!interfaces.contains("eth0"), "{interfaces}");
}
