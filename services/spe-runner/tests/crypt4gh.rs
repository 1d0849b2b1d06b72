//! Encrypted datasets end to end through the `spe-runner` binary, in the real bubblewrap
//! sandbox: the engine (a STAND-IN shell script, not Snakemake: it reads the params file it is
//! given and the files it names) sees plaintext only under the sandbox's scratch, the plaintext
//! is there while the engine runs, and nothing of it is left after each kind of end (success,
//! failure, SIGTERM as scancel sends it, a timeout's SIGTERM the engine ignores until SIGKILL).
//! A wrong key, a damaged file or a file that is not Crypt4GH stops the run before the engine
//! starts, with the reason in log.json.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use spe_core::RunId;
use spe_core::digest::digest_files;
use spe_core::request::WorkflowType;
use spe_core::runspec::{Crypt4ghInputs, PassphraseSource, RUNSPEC_PATH, RunSpec};
use spe_crypt4gh::{SecretKey, encrypt};

const PASSPHRASE: &str = "runner test passphrase";

/// The stand-in engine: copies the params file it was given, concatenates the files of the
/// `cohort` folder and the `single` file the params name, records the scratch folder's mode,
/// then ends as `mode` says.
const STAND_IN: &str = r#"#!/bin/bash
# A STAND-IN FOR SNAKEMAKE, NOT SNAKEMAKE (spe-runner's Crypt4GH tests).
while [ $# -gt 0 ]; do [ "$1" = --configfile ] && cfg=$2; shift; done
value() { sed -n "s/^ *\"$1\": \"\(.*\)\",\{0,1\}$/\1/p" "$cfg"; }
cp "$cfg" params-seen.json
cohort=$(value cohort); single=$(value single)
{ for f in "$cohort"/*; do cat "$f"; done; cat "$single"; } > seen.txt
stat -c %a /tmp/crypt4gh > scratch-mode.txt
env > engine-env.txt
case $(value mode) in
  ok) exit 0 ;;
  fail) exit 3 ;;
  sleep) touch started; sleep 291 ;;
  stubborn) trap '' TERM; touch started; while :; do sleep 1; done ;;
esac
"#;

struct Fixture {
    tmp: tempfile::TempDir,
    spec: RunSpec,
    spec_path: PathBuf,
    bin: PathBuf,
    /// The runner's TMPDIR: where its private folder (and so the scratch) is made.
    node_tmp: PathBuf,
    service: SecretKey,
    plaintext: Vec<u8>,
    /// Variables given to spe-runner besides PATH, HOME and TMPDIR.
    runner_env: Vec<(String, String)>,
}

fn write(path: &Path, bytes: &[u8]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, bytes).unwrap();
}

fn seal(plain: &[u8], to: &SecretKey) -> Vec<u8> {
    let mut out = Vec::new();
    encrypt(plain, &mut out, &[to.public_key()], None).unwrap();
    out
}

impl Fixture {
    fn new(mode: &str) -> Fixture {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().to_path_buf();
        let service = SecretKey::generate().unwrap();
        // The key ring after a rotation: the retired key first; files are encrypted to the
        // current one.
        let retired = SecretKey::generate().unwrap();
        let keys_dir = root.join("keys");
        let mut secret_keys = Vec::new();
        for (name, key) in [("retired.sec", &retired), ("current.sec", &service)] {
            let path = keys_dir.join(name);
            write(
                &path,
                key.to_pem(PASSPHRASE.as_bytes(), None).unwrap().as_bytes(),
            );
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
            secret_keys.push(path);
        }
        let pass = keys_dir.join("passphrase");
        write(&pass, format!("{PASSPHRASE}\n").as_bytes());
        std::fs::set_permissions(&pass, std::fs::Permissions::from_mode(0o400)).unwrap();

        // Two encrypted datasets: a folder of two files and a single file.
        let part1: Vec<u8> = (0..200_000u32).map(|i| b"ACGT"[(i % 4) as usize]).collect();
        let part2 = b"chr1\t12345\tA\tG\n".repeat(100);
        let part3 = b"sample-7 is the SECRET-PLAINTEXT-MARKER\n".to_vec();
        let cohort = root.join("data/datasets/cohort");
        write(&cohort.join("a.fa.c4gh"), &seal(&part1, &service));
        write(&cohort.join("b.vcf.c4gh"), &seal(&part2, &service));
        let single = root.join("data/datasets/one.txt.c4gh");
        write(&single, &seal(&part3, &service));
        let mut plaintext = part1;
        plaintext.extend_from_slice(&part2);
        plaintext.extend_from_slice(&part3);

        let bin = root.join("engine-bin");
        write(&bin.join("snakemake"), STAND_IN.as_bytes());
        std::fs::set_permissions(
            bin.join("snakemake"),
            std::fs::Permissions::from_mode(0o755),
        )
        .unwrap();
        let workflow_dir = root.join("workflows/wf");
        write(&workflow_dir.join("Snakefile"), b"rule all:\n");
        let run_id = RunId::new_random();
        let run_dir = root.join("data/runs").join(run_id.to_string());
        let params_file = run_dir.join(format!("{run_id}.yaml"));
        write(
            &params_file,
            format!(
                "cohort: {}\nsingle: {}\nmode: {mode}\n",
                cohort.display(),
                single.display()
            )
            .as_bytes(),
        );
        let spec = RunSpec {
            run_id,
            workflow_type: WorkflowType::Snakemake,
            engine: "snakemake".into(),
            engine_executable: "snakemake".into(),
            workflow_dir,
            entry_point: "Snakefile".into(),
            workflow_files: vec!["Snakefile".into()],
            expected_digest: digest_files(&[("Snakefile", "rule all:\n")]),
            log_dir: run_dir.join(".weskit/2026-01-31T12:00:00Z"),
            run_dir,
            params_file,
            engine_parameters: BTreeMap::new(),
            sandbox: Default::default(),
            datasets: vec![cohort.clone(), single.clone()],
            crypt4gh: Some(Crypt4ghInputs {
                datasets: vec![cohort, single],
                secret_keys,
                passphrase: PassphraseSource::File(pass),
            }),
        };
        let spec_path = spec.run_dir.join(RUNSPEC_PATH);
        let node_tmp = root.join("node-tmp");
        std::fs::create_dir_all(&node_tmp).unwrap();
        let fx = Fixture {
            tmp,
            spec,
            spec_path,
            bin,
            node_tmp,
            service,
            plaintext,
            runner_env: Vec::new(),
        };
        fx.save();
        fx
    }

    fn save(&self) {
        write(
            &self.spec_path,
            &serde_json::to_vec_pretty(&self.spec).unwrap(),
        );
    }

    fn start(&self) -> Child {
        Command::new(env!("CARGO_BIN_EXE_spe-runner"))
            .arg("--spec")
            .arg(&self.spec_path)
            .args(["--grace-seconds", "1"])
            .env_clear()
            .env("PATH", format!("{}:/usr/bin:/bin", self.bin.display()))
            .env("HOME", self.tmp.path())
            .env("TMPDIR", &self.node_tmp)
            .envs(self.runner_env.iter().cloned())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    }

    fn log_json(&self) -> Value {
        let bytes = std::fs::read(self.spec.log_dir.join("log.json")).expect("log.json written");
        serde_json::from_slice(&bytes).unwrap()
    }

    fn run_file(&self, name: &str) -> Option<Vec<u8>> {
        std::fs::read(self.spec.run_dir.join(name)).ok()
    }

    /// The plaintext folder of the running job, seen from the host.
    fn scratch_plaintext(&self) -> Option<PathBuf> {
        std::fs::read_dir(&self.node_tmp)
            .unwrap()
            .flatten()
            .map(|e| e.path().join("scratch/crypt4gh"))
            .find(|p| p.exists())
    }

    /// Nothing of the runner's private folder, nor any plaintext, is left on the node.
    #[track_caller]
    fn nothing_left(&self) {
        let left: Vec<_> = std::fs::read_dir(&self.node_tmp)
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .collect();
        assert!(left.is_empty(), "left in the node's temp folder: {left:?}");
        // The run dir holds what the engine wrote, which here includes a copy: only the files
        // the stand-in wrote on purpose may hold plaintext.
        for entry in walk(self.tmp.path()) {
            if entry.ends_with("seen.txt") {
                continue;
            }
            let bytes = std::fs::read(&entry).unwrap_or_default();
            assert!(
                !contains(&bytes, b"SECRET-PLAINTEXT-MARKER"),
                "plaintext left in {}",
                entry.display()
            );
        }
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

fn wait(child: &mut Child, limit: Duration) -> std::process::ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(
            start.elapsed() < limit,
            "runner still running after {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn the_engine_reads_plaintext_from_the_scratch_and_nothing_is_left_after_success_or_failure() {
    for (mode, code) in [("ok", 0), ("fail", 3)] {
        let fx = Fixture::new(mode);
        let mut runner = fx.start();
        let status = wait(&mut runner, Duration::from_secs(60));
        let log = fx.log_json();
        assert_eq!(status.code(), Some(code), "{log}");
        assert_eq!(log["exit_code"], code);
        assert!(log.get("error").is_none(), "{log}");
        // The engine saw the plaintext, under /tmp/crypt4gh, in a folder only the job can open.
        assert!(fx.run_file("seen.txt").unwrap() == fx.plaintext, "{mode}");
        assert_eq!(fx.run_file("scratch-mode.txt").unwrap(), b"700\n");
        let params: Value =
            serde_json::from_slice(&fx.run_file("params-seen.json").unwrap()).unwrap();
        let cohort = fx.spec.crypt4gh.as_ref().unwrap().datasets[0]
            .display()
            .to_string();
        assert_eq!(params["cohort"], format!("/tmp/crypt4gh{cohort}"));
        assert!(
            params["single"]
                .as_str()
                .unwrap()
                .ends_with("/datasets/one.txt")
        );
        // The params file on disk still names the encrypted location.
        let on_disk = std::fs::read_to_string(&fx.spec.params_file).unwrap();
        assert!(on_disk.contains(&format!("cohort: {cohort}")), "{on_disk}");
        fx.nothing_left();
    }
}

#[test]
fn plaintext_is_in_the_scratch_while_the_engine_runs_and_gone_after_sigterm_or_a_timeout() {
    // `sleep` stops on SIGTERM (scancel); `stubborn` ignores it, as an engine overrunning its
    // time limit may, and is killed after the grace period, as Slurm does at a timeout.
    for mode in ["sleep", "stubborn"] {
        let fx = Fixture::new(mode);
        let mut runner = fx.start();
        let deadline = Instant::now() + Duration::from_secs(60);
        while fx.run_file("started").is_none() {
            assert!(Instant::now() < deadline, "engine did not start");
            assert!(runner.try_wait().unwrap().is_none(), "runner ended early");
            std::thread::sleep(Duration::from_millis(50));
        }
        let scratch = fx
            .scratch_plaintext()
            .expect("the plaintext folder exists during the run");
        assert_eq!(
            std::fs::metadata(&scratch).unwrap().permissions().mode() & 0o777,
            0o700
        );
        let single = walk(&scratch)
            .into_iter()
            .find(|p| p.ends_with("one.txt"))
            .expect("one.txt decrypted");
        assert!(contains(
            &std::fs::read(&single).unwrap(),
            b"SECRET-PLAINTEXT-MARKER"
        ));
        assert_eq!(
            std::fs::metadata(&single).unwrap().permissions().mode() & 0o777,
            0o600
        );

        // SAFETY: kill(2) with plain integers.
        assert_eq!(unsafe { libc::kill(runner.id() as i32, libc::SIGTERM) }, 0);
        let status = wait(&mut runner, Duration::from_secs(20));
        assert_eq!(status.code(), Some(128 + libc::SIGTERM), "{mode}");
        assert_eq!(fx.log_json()["signal"], "SIGTERM");
        fx.nothing_left();
    }
}

/// Runs `fx` to its end; the log.json error. The engine must not have started.
fn refused(fx: &Fixture) -> String {
    let mut runner = fx.start();
    let status = wait(&mut runner, Duration::from_secs(60));
    assert_eq!(status.code(), Some(125));
    assert!(fx.run_file("seen.txt").is_none(), "the engine started");
    fx.nothing_left();
    fx.log_json()["error"].as_str().unwrap().to_owned()
}

#[test]
fn a_wrong_key_a_damaged_file_or_plaintext_stops_the_run_before_the_engine_starts() {
    let fx = Fixture::new("ok");
    let stranger = SecretKey::generate().unwrap();
    let b = fx.spec.datasets[0].join("b.vcf.c4gh");
    std::fs::write(&b, seal(b"not for us", &stranger)).unwrap();
    assert_eq!(
        refused(&fx),
        format!(
            "cannot decrypt {}: no header packet opens with the given secret key(s): the file was not encrypted to this key",
            b.display()
        )
    );

    let fx = Fixture::new("ok");
    let a = fx.spec.datasets[0].join("a.fa.c4gh");
    let mut bytes = std::fs::read(&a).unwrap();
    bytes.truncate(bytes.len() - 10);
    std::fs::write(&a, bytes).unwrap();
    assert_eq!(
        refused(&fx),
        format!(
            "cannot decrypt {}: segment 3 of the body (plaintext offset 196608) fails authentication: the file is corrupted or truncated",
            a.display()
        )
    );

    let fx = Fixture::new("ok");
    let plain = fx.spec.datasets[0].join("README.txt");
    std::fs::write(&plain, "unencrypted notes\n").unwrap();
    assert_eq!(
        refused(&fx),
        format!(
            "cannot decrypt {}: not a Crypt4GH file (it does not start with the `crypt4gh` magic bytes)",
            plain.display()
        )
    );
    let _ = &fx.service;
}

#[test]
fn a_secret_key_others_can_read_or_a_wrong_passphrase_stops_the_run() {
    let fx = Fixture::new("ok");
    let inputs = fx.spec.crypt4gh.clone().unwrap();
    let key = &inputs.secret_keys[1];
    std::fs::set_permissions(key, std::fs::Permissions::from_mode(0o644)).unwrap();
    assert_eq!(
        refused(&fx),
        format!(
            "service secret key {} is readable by other accounts (mode 0644): it must be 0600 or 0400",
            key.display()
        )
    );

    let mut fx = Fixture::new("ok");
    let mut inputs = fx.spec.crypt4gh.clone().unwrap();
    let wrong = fx.tmp.path().join("keys/wrong-passphrase");
    write(&wrong, b"not the passphrase\n");
    std::fs::set_permissions(&wrong, std::fs::Permissions::from_mode(0o600)).unwrap();
    inputs.passphrase = PassphraseSource::File(wrong);
    fx.spec.crypt4gh = Some(inputs);
    fx.save();
    assert_eq!(
        refused(&fx),
        format!(
            "service secret key {}: the passphrase does not open the secret key",
            fx.spec.crypt4gh.as_ref().unwrap().secret_keys[0].display()
        )
    );
}

#[test]
fn a_passphrase_from_the_runners_environment_never_reaches_the_engine() {
    let mut fx = Fixture::new("ok");
    let mut inputs = fx.spec.crypt4gh.clone().unwrap();
    inputs.passphrase = PassphraseSource::Env("SPE_C4GH_PASSPHRASE".into());
    fx.spec.crypt4gh = Some(inputs);
    fx.save();
    fx.runner_env = vec![("SPE_C4GH_PASSPHRASE".into(), PASSPHRASE.into())];
    let mut runner = fx.start();
    let status = wait(&mut runner, Duration::from_secs(60));
    assert_eq!(status.code(), Some(0), "{}", fx.log_json());
    assert!(fx.run_file("seen.txt").unwrap() == fx.plaintext);
    let env = String::from_utf8(fx.run_file("engine-env.txt").unwrap()).unwrap();
    assert!(env.contains("PATH="), "{env}");
    assert!(!env.contains("SPE_C4GH_PASSPHRASE"), "{env}");
    assert!(!env.contains(PASSPHRASE), "{env}");
    fx.nothing_left();

    // Named but not set: the run stops before the engine, saying which variable.
    let mut fx = Fixture::new("ok");
    let mut inputs = fx.spec.crypt4gh.clone().unwrap();
    inputs.passphrase = PassphraseSource::Env("SPE_C4GH_PASSPHRASE".into());
    fx.spec.crypt4gh = Some(inputs);
    fx.save();
    assert_eq!(
        refused(&fx),
        "the passphrase variable SPE_C4GH_PASSPHRASE is not set in the job's environment"
    );
}
