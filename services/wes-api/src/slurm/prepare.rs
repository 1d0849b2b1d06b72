//! Prepares a run directory for its Slurm job: the params file, the run spec, the job script,
//! and the sbatch arguments.
//!
//! Layout (WESkit-compatible): `<data_dir>/<id[0:4]>/<id>/` holds `<id>.yaml` (the params as
//! the engine reads them, dataset ids resolved to their locations), `.spe/runspec.json`,
//! `.spe/job.sh`, and `.weskit/<timestamp>/` for stdout, stderr and log.json.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use serde_json::Value;
use spe_core::config::AuthConfig;
use spe_core::config::{Config, Crypt4ghConfig};
use spe_core::manifest::{Manifest, WorkflowRef};
use spe_core::runspec::{Crypt4ghInputs, RUNSPEC_PATH, RunSpec};
use spe_store::{Dataset, DatasetState, RunRecord, Store, StoreError, WorkflowState};

use crate::slurm::client::quote_for_shell;

/// A job ready for `sbatch`.
#[derive(Debug)]
pub struct PreparedJob {
    pub sbatch_args: Vec<String>,
    pub log_dir: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum PrepareError {
    /// The run cannot ever start (its workflow was retired, a dataset vanished): it ends as
    /// SYSTEM_ERROR with this reason.
    #[error("{0}")]
    Refused(String),
    /// Writing the run directory failed; may pass on a later attempt.
    #[error("cannot prepare the run directory: {0}")]
    Io(String),
    #[error(transparent)]
    Store(StoreError),
}

impl From<StoreError> for PrepareError {
    /// A registry row that does not parse will not parse on a later attempt either: the run
    /// cannot start, and says why.
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Corrupt(_) | StoreError::UnreadableRun(_) => {
                PrepareError::Refused(e.to_string())
            }
            other => PrepareError::Store(other),
        }
    }
}

fn io(e: std::io::Error) -> PrepareError {
    PrepareError::Io(e.to_string())
}

pub async fn prepare(
    store: &Store,
    config: &Config,
    run: &RunRecord,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<PreparedJob, PrepareError> {
    let workflow_ref = WorkflowRef::parse(&run.workflow_url)
        .map_err(|e| PrepareError::Refused(format!("workflow_url: {e}")))?;
    let version = store
        .workflow_version(&workflow_ref.name, &workflow_ref.version)
        .await?
        .ok_or_else(|| {
            PrepareError::Refused(format!("workflow {} is not registered", run.workflow_url))
        })?;
    if version.state != WorkflowState::Approved {
        return Err(PrepareError::Refused(format!(
            "workflow {} is {} and may no longer run",
            run.workflow_url, version.state
        )));
    }
    let digest = version
        .digest
        .clone()
        .ok_or_else(|| PrepareError::Refused("the approved workflow has no digest".into()))?;
    let manifest = Manifest::from_json(&version.manifest)
        .map_err(|e| PrepareError::Refused(format!("stored manifest: {e}")))?;
    let submission = &run.submission;
    if version.workflow_type != submission.workflow_type {
        return Err(PrepareError::Refused(format!(
            "workflow {} is a {} workflow, the run was accepted as {}",
            run.workflow_url, version.workflow_type, submission.workflow_type
        )));
    }
    let params = &submission.workflow_params;
    let references = manifest.dataset_references(params);
    // Admission checked the datasets and visas; they may have been withdrawn while the run
    // waited in the queue, so they are checked again just before the job exists.
    let snapshots = if references.is_empty() {
        Vec::new()
    } else {
        visa_snapshots(store.access_visas(run.id).await?)?
    };
    let check_visas = !matches!(config.auth, AuthConfig::Disabled);
    let mut locations = HashMap::new();
    let mut encrypted: Vec<PathBuf> = Vec::new();
    for reference in references {
        let dataset = store.dataset(&reference.id).await?.ok_or_else(|| {
            PrepareError::Refused(format!(
                "{}: dataset {} no longer exists",
                reference.field, reference.id
            ))
        })?;
        still_usable(&dataset, &snapshots, check_visas, now.timestamp())
            .map_err(|e| PrepareError::Refused(format!("{}: {e}", reference.field)))?;
        if dataset.crypt4gh {
            encrypted.push(PathBuf::from(&dataset.location));
        }
        locations.insert(reference.id.clone(), dataset.location);
    }
    encrypted.sort();
    encrypted.dedup();
    let crypt4gh = crypt4gh_inputs(encrypted, &config.crypt4gh)?;
    let mut dataset_paths: Vec<PathBuf> = locations.values().map(PathBuf::from).collect();
    dataset_paths.sort();
    dataset_paths.dedup();
    let resolved = manifest
        .resolve_datasets(params, |id| locations.get(id).cloned())
        .map_err(|e| PrepareError::Refused(e.to_string()))?;

    let engine = submission.workflow_engine.clone();
    let engine_executable = config
        .workflows
        .engines
        .get(&engine)
        .and_then(|e| e.executable.clone())
        .unwrap_or_else(|| engine.clone());
    let engine_parameters: &BTreeMap<String, String> = &submission.workflow_engine_parameters;

    let run_dir = PathBuf::from(&run.run_dir);
    let stamp = now.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string();
    let log_dir = run_dir.join(".weskit").join(stamp);
    let spe_dir = run_dir.join(".spe");
    tokio::fs::create_dir_all(&log_dir).await.map_err(io)?;
    tokio::fs::create_dir_all(&spe_dir).await.map_err(io)?;

    let params_file = run_dir.join(format!("{}.yaml", run.id));
    let params_yaml = serde_yaml::to_string(&Value::Object(resolved))
        .map_err(|e| PrepareError::Io(e.to_string()))?;
    write_file(&params_file, params_yaml.as_bytes()).await?;

    let spec = RunSpec {
        run_id: run.id,
        workflow_type: submission.workflow_type,
        engine,
        engine_executable,
        workflow_dir: PathBuf::from(&version.source_dir),
        entry_point: version.entry_point.clone(),
        workflow_files: version.files.clone(),
        expected_digest: digest,
        run_dir: run_dir.clone(),
        params_file,
        log_dir: log_dir.clone(),
        engine_parameters: engine_parameters.clone(),
        sandbox: config.slurm.sandbox,
        // Only what the params name: the sandbox shows these and no other dataset.
        datasets: dataset_paths,
        crypt4gh,
    };
    let spec_path = run_dir.join(RUNSPEC_PATH);
    let spec_json =
        serde_json::to_vec_pretty(&spec).map_err(|e| PrepareError::Io(e.to_string()))?;
    write_file(&spec_path, &spec_json).await?;

    let runner = config
        .slurm
        .runner
        .clone()
        .unwrap_or_else(default_runner_path);
    let mut script = String::from("#!/bin/bash\n");
    script.push_str(&format!(
        "# Slurm job of SPE run {}, written by wes-api.\n\
         # The job starts with --export=NONE: it gets only the variables set here.\n",
        run.id
    ));
    script.push_str(&format!(
        "export PATH={}\n",
        quote_for_shell(&config.slurm.job_path)
    ));
    for (name, value) in &config.slurm.job_env {
        script.push_str(&format!("export {name}={}\n", quote_for_shell(value)));
    }
    script.push_str(&format!("export SPE_RUN_ID={}\n", run.id));
    script.push_str(&format!(
        "exec {} --spec {}\n",
        quote_for_shell(&runner),
        quote_for_shell(&spec_path.display().to_string())
    ));
    let script_path = spe_dir.join("job.sh");
    write_file(&script_path, script.as_bytes()).await?;

    let mut args = vec![
        format!("--job-name=spe-{}", run.id),
        format!("--chdir={}", run_dir.display()),
        format!("--output={}", log_dir.join("slurm.out").display()),
        format!("--error={}", log_dir.join("slurm.err").display()),
        "--export=NONE".to_owned(),
        "--nodes=1".to_owned(),
        "--ntasks=1".to_owned(),
    ];
    if let Some(partition) = engine_parameters
        .get("partition")
        .or(config.slurm.partition.as_ref())
    {
        args.push(format!("--partition={partition}"));
    }
    if let Some(account) = &config.slurm.account {
        args.push(format!("--account={account}"));
    }
    if let Some(cores) = engine_parameters.get("cores") {
        args.push(format!("--cpus-per-task={cores}"));
    }
    if let Some(memory) = engine_parameters.get("memory_mb") {
        args.push(format!("--mem={memory}M"));
    }
    if let Some(minutes) = engine_parameters.get("runtime_minutes") {
        args.push(format!("--time={minutes}"));
    }
    args.push(script_path.display().to_string());
    Ok(PreparedJob {
        sbatch_args: args,
        log_dir,
    })
}

/// What the job needs to decrypt the run's encrypted datasets: their locations and where the
/// service's keys are (paths and a passphrase source, never the secret).
fn crypt4gh_inputs(
    datasets: Vec<PathBuf>,
    config: &Crypt4ghConfig,
) -> Result<Option<Crypt4ghInputs>, PrepareError> {
    let Some(first) = datasets.first() else {
        return Ok(None);
    };
    match config.passphrase() {
        Some(passphrase) if !config.secret_keys.is_empty() => Ok(Some(Crypt4ghInputs {
            datasets,
            secret_keys: config.secret_keys.clone(),
            passphrase,
        })),
        _ => Err(PrepareError::Refused(format!(
            "dataset {} is Crypt4GH-encrypted and the service has no secret key to decrypt it (crypt4gh.secret_keys)",
            first.display()
        ))),
    }
}

/// `spe-runner` beside the running wes-api executable (both come from one build or package).
fn default_runner_path() -> String {
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|dir| dir.join("spe-runner")))
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| "spe-runner".into())
}

/// Writes a file of the run directory through a temp file and a rename. A job can write its run
/// directory (e.g. `<run_id>.tmp` beside the params file), so nothing found at the temp name is
/// trusted: it is removed, and the temp file created exclusively, never through a link. The
/// rename replaces whatever has the final name, a link included, without following it.
async fn write_file(path: &Path, content: &[u8]) -> Result<(), PrepareError> {
    use tokio::io::AsyncWriteExt;
    let tmp = path.with_extension("tmp");
    match tokio::fs::remove_file(&tmp).await {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(io(e)),
        _ => {}
    }
    let mut file = tokio::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&tmp)
        .await
        .map_err(io)?;
    file.write_all(content).await.map_err(io)?;
    file.flush().await.map_err(io)?;
    drop(file);
    tokio::fs::rename(&tmp, path).await.map_err(io)?;
    Ok(())
}

/// What a run keeps of each visa that granted it a dataset (see `app::visas::VisaSnapshot`).
#[derive(Debug, Clone, serde::Deserialize)]
struct StoredVisa {
    dataset: String,
    value: String,
    exp: i64,
}

fn visa_snapshots(stored: Option<Value>) -> Result<Vec<StoredVisa>, PrepareError> {
    match stored {
        None => Ok(Vec::new()),
        Some(v) => serde_json::from_value(v).map_err(|e| {
            PrepareError::Refused(format!("the run's stored visas do not parse: {e}"))
        }),
    }
}

/// Whether a run may still use `dataset` at `now` (Unix seconds): the dataset is active and,
/// where visas are checked and the dataset names a visa value, a visa of the run's snapshot
/// with that value is still valid. The error names the dataset, never a visa's content.
fn still_usable(
    dataset: &Dataset,
    snapshots: &[StoredVisa],
    check_visas: bool,
    now: i64,
) -> Result<(), String> {
    if dataset.state != DatasetState::Active {
        return Err(format!(
            "dataset {} was {} after the run was accepted and may no longer be used",
            dataset.id, dataset.state
        ));
    }
    let Some(value) = dataset.visa.as_deref().filter(|_| check_visas) else {
        return Ok(());
    };
    let granting: Vec<&StoredVisa> = snapshots
        .iter()
        .filter(|v| v.dataset == dataset.id && v.value == value)
        .collect();
    if granting.is_empty() {
        return Err(format!(
            "dataset {} needs a visa the run was not accepted with",
            dataset.id
        ));
    }
    if granting.iter().all(|v| v.exp <= now) {
        return Err(format!(
            "the access visa for dataset {} expired before the job could start",
            dataset.id
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_link_left_in_the_run_directory_is_never_written_through() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("another-run-output.csv");
        std::fs::write(&victim, "theirs\n").unwrap();
        let params = dir.path().join("run.yaml");
        // A job planted links at the temp name and at the final name.
        std::os::unix::fs::symlink(&victim, dir.path().join("run.tmp")).unwrap();
        std::os::unix::fs::symlink(&victim, &params).unwrap();
        write_file(&params, b"min_qual: 30\n").await.unwrap();
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "theirs\n");
        assert!(!std::fs::symlink_metadata(&params).unwrap().is_symlink());
        assert_eq!(std::fs::read_to_string(&params).unwrap(), "min_qual: 30\n");
        assert!(!dir.path().join("run.tmp").exists());
    }
    use spe_core::Subject;
    use spe_core::time::Timestamp;

    fn dataset(state: DatasetState, visa: Option<&str>) -> Dataset {
        Dataset {
            id: "cohort-7".into(),
            description: String::new(),
            location: "/data/cohort-7".into(),
            crypt4gh: false,
            visa: visa.map(str::to_owned),
            state,
            created_by: Subject::local_dev_user(),
            created_at: Timestamp::from_micros(0),
            updated_at: Timestamp::from_micros(0),
        }
    }

    fn visa(value: &str, exp: i64) -> StoredVisa {
        StoredVisa {
            dataset: "cohort-7".into(),
            value: value.into(),
            exp,
        }
    }

    #[test]
    fn a_retired_dataset_or_an_expired_visa_stops_the_run_naming_the_dataset() {
        let now = 1_000;
        assert_eq!(
            still_usable(&dataset(DatasetState::Retired, None), &[], true, now),
            Err(
                "dataset cohort-7 was retired after the run was accepted and may no longer be used"
                    .into()
            )
        );
        let needs = dataset(DatasetState::Active, Some("grant-7"));
        assert_eq!(
            still_usable(&needs, &[visa("grant-7", 2_000)], true, now),
            Ok(())
        );
        assert_eq!(
            still_usable(&needs, &[visa("grant-7", 1_000)], true, now),
            Err("the access visa for dataset cohort-7 expired before the job could start".into())
        );
        assert_eq!(
            still_usable(&needs, &[visa("grant-8", 2_000)], true, now),
            Err("dataset cohort-7 needs a visa the run was not accepted with".into())
        );
        // One valid visa among expired ones is enough; with auth disabled visas are not checked.
        assert_eq!(
            still_usable(
                &needs,
                &[visa("grant-7", 1), visa("grant-7", 5_000)],
                true,
                now
            ),
            Ok(())
        );
        assert_eq!(still_usable(&needs, &[], false, now), Ok(()));
    }

    #[test]
    fn stored_visa_snapshots_parse() {
        let v = serde_json::json!([{"dataset": "cohort-7", "iss": "i", "type": "ControlledAccessGrants",
            "value": "grant-7", "source": "s", "by": null, "asserted": 1, "exp": 99}]);
        let parsed = visa_snapshots(Some(v)).unwrap();
        assert_eq!((parsed[0].value.as_str(), parsed[0].exp), ("grant-7", 99));
        assert!(visa_snapshots(Some(serde_json::json!({"x": 1}))).is_err());
    }

    #[test]
    fn an_encrypted_dataset_needs_the_service_key_and_the_spec_names_paths_only() {
        let dataset = PathBuf::from("/data/cohort-7");
        assert_eq!(
            crypt4gh_inputs(Vec::new(), &Crypt4ghConfig::default()).ok(),
            Some(None)
        );
        match crypt4gh_inputs(vec![dataset.clone()], &Crypt4ghConfig::default()) {
            Err(PrepareError::Refused(msg)) => assert_eq!(
                msg,
                "dataset /data/cohort-7 is Crypt4GH-encrypted and the service has no secret key to decrypt it (crypt4gh.secret_keys)"
            ),
            other => panic!("{other:?}"),
        }
        let config = Crypt4ghConfig {
            secret_keys: vec!["/etc/spe/c4gh.sec".into()],
            public_key: None,
            passphrase_file: Some("/etc/spe/c4gh.pass".into()),
            passphrase_env: None,
        };
        let inputs = crypt4gh_inputs(vec![dataset.clone()], &config)
            .unwrap()
            .unwrap();
        assert_eq!(
            serde_json::to_value(&inputs).unwrap(),
            serde_json::json!({
                "datasets": ["/data/cohort-7"],
                "secret_keys": ["/etc/spe/c4gh.sec"],
                "passphrase": {"file": "/etc/spe/c4gh.pass"}
            })
        );
    }
}
