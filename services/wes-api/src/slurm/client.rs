//! Runs Slurm's commands (sbatch, scontrol, sacct, scancel), locally or through a configured
//! prefix such as `ssh -o BatchMode=yes svc@login-node`.
//!
//! Arguments are never given to a local shell. With a prefix, the remote side does run a
//! shell, so every argument after the prefix is quoted for it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use spe_core::config::{SlurmAccounting, SlurmConfig};
use spe_core::slurm::{
    JobOwner, JobReport, SlurmJobId, is_transient_failure, parse_sacct, parse_scontrol_jobs,
    parse_scontrol_owned_jobs,
};
use tokio::process::Command;

/// Variables the Slurm commands themselves may see from wes-api's environment; everything
/// else (tokens, database URLs, S3 credentials) is withheld from them and so from jobs.
const COMMAND_ENV_ALLOWLIST: [&str; 7] = [
    "PATH",
    "HOME",
    "USER",
    "LANG",
    "LC_ALL",
    "SLURM_CONF",
    "SSH_AUTH_SOCK",
];

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum SlurmError {
    /// Worth retrying: the controller is down, slow or unreachable.
    #[error("Slurm is unavailable: {0}")]
    Transient(String),
    /// Retrying will not help (bad partition, missing command, refused job).
    #[error("Slurm refused: {0}")]
    Permanent(String),
}

pub struct SlurmClient {
    prefix: Vec<String>,
    timeout: Duration,
    accounting: SlurmAccounting,
    spawned: AtomicU64,
    /// The account Slurm sees this service as (learned once, see [`SlurmClient::service_user`]).
    user: std::sync::OnceLock<String>,
}

struct Output {
    success: bool,
    stdout: String,
    stderr: String,
}

impl SlurmClient {
    pub fn new(config: &SlurmConfig) -> Self {
        SlurmClient {
            prefix: config.command_prefix.clone(),
            timeout: Duration::from_secs(config.command_timeout_seconds),
            accounting: config.accounting,
            spawned: AtomicU64::new(0),
            user: std::sync::OnceLock::new(),
        }
    }

    /// How many scheduler processes this client has started (for benchmarks and metrics).
    pub fn processes_spawned(&self) -> u64 {
        self.spawned.load(Ordering::Relaxed)
    }

    /// The argv that runs `program args...`, through the prefix if there is one.
    pub fn argv(&self, program: &str, args: &[String]) -> Vec<String> {
        spe_core::slurm::command_argv(&self.prefix, program, args)
    }

    async fn run(&self, program: &str, args: &[String]) -> Result<Output, SlurmError> {
        let argv = self.argv(program, args);
        let mut command = Command::new(&argv[0]);
        command.args(&argv[1..]).env_clear().kill_on_drop(true);
        for name in COMMAND_ENV_ALLOWLIST {
            if let Some(value) = std::env::var_os(name) {
                command.env(name, value);
            }
        }
        self.spawned.fetch_add(1, Ordering::Relaxed);
        let output = match tokio::time::timeout(self.timeout, command.output()).await {
            Err(_) => {
                return Err(SlurmError::Transient(format!(
                    "{program} did not answer within {} s",
                    self.timeout.as_secs()
                )));
            }
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(SlurmError::Permanent(format!(
                    "{} not found: is this host a Slurm submit host?",
                    argv[0]
                )));
            }
            Ok(Err(e)) => return Err(SlurmError::Transient(format!("cannot run {program}: {e}"))),
            Ok(Ok(output)) => output,
        };
        Ok(Output {
            success: output.status.success(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
        })
    }

    fn failure(program: &str, out: &Output) -> SlurmError {
        let msg = format!(
            "{program}: {}",
            out.stderr.chars().take(500).collect::<String>()
        );
        // No message at all (an ssh hop that died) is retried too: a permanent cause shows its
        // message on the next attempt.
        if out.stderr.is_empty() || is_transient_failure(&out.stderr) {
            SlurmError::Transient(msg)
        } else {
            SlurmError::Permanent(msg)
        }
    }

    /// `sbatch --parsable ARGS SCRIPT`: the new job's id.
    pub async fn sbatch(&self, args: &[String]) -> Result<SlurmJobId, SlurmError> {
        let mut all = vec!["--parsable".to_owned()];
        all.extend(args.iter().cloned());
        let out = self.run("sbatch", &all).await?;
        if !out.success {
            return Err(Self::failure("sbatch", &out));
        }
        SlurmJobId::parse_sbatch_output(&out.stdout)
            .map_err(|e| SlurmError::Permanent(format!("sbatch: {e}")))
    }

    /// Every job slurmctld holds, in one call (`scontrol show -o job`).
    pub async fn jobs(&self) -> Result<Vec<JobReport>, SlurmError> {
        Ok(parse_scontrol_jobs(&self.scontrol_jobs().await?))
    }

    /// [`SlurmClient::jobs`] with each job's owner, to tell the service's jobs from others'.
    pub async fn owned_jobs(&self) -> Result<Vec<(JobReport, JobOwner)>, SlurmError> {
        Ok(parse_scontrol_owned_jobs(&self.scontrol_jobs().await?))
    }

    /// `scontrol show -o job`'s output: one line per job slurmctld holds.
    async fn scontrol_jobs(&self) -> Result<String, SlurmError> {
        let out = self
            .run("scontrol", &["show".into(), "-o".into(), "job".into()])
            .await?;
        if !out.success {
            return Err(Self::failure("scontrol", &out));
        }
        Ok(out.stdout)
    }

    /// The user name the service's jobs run as: `id -un` where the Slurm commands run (through
    /// the prefix, so the remote account when there is one). Asked once, then remembered.
    pub async fn service_user(&self) -> Result<String, SlurmError> {
        if let Some(user) = self.user.get() {
            return Ok(user.clone());
        }
        let out = self.run("id", &["-un".into()]).await?;
        let user = out.stdout.trim();
        if !out.success || user.is_empty() {
            return Err(Self::failure("id -un", &out));
        }
        Ok(self.user.get_or_init(|| user.to_owned()).clone())
    }

    /// Final records of jobs slurmctld no longer holds, in one call.
    pub async fn sacct(&self, ids: &[SlurmJobId]) -> Result<Vec<JobReport>, SlurmError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let list = ids.iter().map(|i| i.as_str()).collect::<Vec<_>>().join(",");
        let args = |jobcomp: bool| {
            let mut a: Vec<String> = Vec::new();
            if jobcomp {
                a.push("-c".into());
            } else {
                a.push("-X".into());
            }
            a.extend(["-P", "-n", "-j", &list, "-o", "JobID,State,ExitCode"].map(String::from));
            a
        };
        let try_mode = |jobcomp: bool| {
            let args = args(jobcomp);
            async move {
                let out = self.run("sacct", &args).await?;
                if out.success {
                    Ok(parse_sacct(&out.stdout))
                } else {
                    Err(Self::failure("sacct", &out))
                }
            }
        };
        match self.accounting {
            SlurmAccounting::Slurmdbd => try_mode(false).await,
            SlurmAccounting::Jobcomp => try_mode(true).await,
            SlurmAccounting::Auto => match try_mode(false).await {
                Ok(found) if !found.is_empty() => Ok(found),
                _ => try_mode(true).await,
            },
        }
    }

    /// `scancel ID...`: asks Slurm to stop these jobs (SIGTERM, then SIGKILL after KillWait).
    pub async fn scancel(&self, ids: &[SlurmJobId]) -> Result<(), SlurmError> {
        if ids.is_empty() {
            return Ok(());
        }
        let args: Vec<String> = ids.iter().map(|i| i.as_str().to_owned()).collect();
        let out = self.run("scancel", &args).await?;
        // A job that already ended is not an error worth reporting.
        if out.success || out.stderr.contains("already completing or completed") {
            Ok(())
        } else {
            Err(Self::failure("scancel", &out))
        }
    }
}

pub use spe_core::slurm::quote_for_shell;

#[cfg(test)]
mod tests {
    use super::*;

    fn client(prefix: &[&str]) -> SlurmClient {
        let config = SlurmConfig {
            command_prefix: prefix.iter().map(|s| s.to_string()).collect(),
            ..SlurmConfig::default()
        };
        SlurmClient::new(&config)
    }

    #[test]
    fn local_commands_are_argv_without_a_shell() {
        let argv = client(&[]).argv("sbatch", &["-J".into(), "a b; rm -rf /".into()]);
        assert_eq!(argv, vec!["sbatch", "-J", "a b; rm -rf /"]);
    }

    #[test]
    fn prefixed_commands_quote_every_argument() {
        let c = client(&["ssh", "-o", "BatchMode=yes", "svc@login"]);
        let argv = c.argv(
            "sbatch",
            &["-D".into(), "/data/it's here".into(), "$(reboot)".into()],
        );
        assert_eq!(&argv[..4], &["ssh", "-o", "BatchMode=yes", "svc@login"]);
        assert_eq!(argv[4], r#"sbatch -D '/data/it'\''s here' '$(reboot)'"#);
        assert_eq!(argv.len(), 5);
    }

    #[test]
    fn quoting_round_trips_through_a_real_shell() {
        for word in [
            "plain",
            "two words",
            "it's",
            "$(id)",
            "`id`",
            "a\nb",
            "",
            "*",
            "\\",
        ] {
            let out = std::process::Command::new("sh")
                .arg("-c")
                .arg(format!("printf %s {}", quote_for_shell(word)))
                .output()
                .unwrap();
            assert_eq!(String::from_utf8_lossy(&out.stdout), word);
        }
    }
}
