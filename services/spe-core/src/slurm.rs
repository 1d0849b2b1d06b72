//! Slurm's view of a job, and how it maps onto WES run states. Parsing of scheduler output
//! lives here too, so that every format quirk is unit-tested without a cluster.

use std::fmt;
use std::str::FromStr;

use crate::state::RunState;

/// The argv that runs `program args...`: as is, or, after `slurm.command_prefix` (e.g.
/// `ssh svc@login-node`), as one command line for the remote shell with every word quoted.
pub fn command_argv(prefix: &[String], program: &str, args: &[String]) -> Vec<String> {
    if prefix.is_empty() {
        let mut argv = vec![program.to_owned()];
        argv.extend(args.iter().cloned());
        return argv;
    }
    let remote: Vec<String> = std::iter::once(program)
        .chain(args.iter().map(String::as_str))
        .map(quote_for_shell)
        .collect();
    let mut argv = prefix.to_vec();
    argv.push(remote.join(" "));
    argv
}

/// Quotes one word for a POSIX shell: wrapped in single quotes, with `'` written as `'\''`.
pub fn quote_for_shell(word: &str) -> String {
    if !word.is_empty()
        && word
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./=:,@%+".contains(&b))
    {
        return word.to_owned();
    }
    format!("'{}'", word.replace('\'', "'\\''"))
}

/// A Slurm job id as `sbatch --parsable` prints it (digits; `id;cluster` on federations).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SlurmJobId(String);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("not a Slurm job id: {0:?}")]
pub struct InvalidJobId(pub String);

impl SlurmJobId {
    /// Parses `sbatch --parsable` output: `123` or `123;cluster`.
    pub fn parse_sbatch_output(stdout: &str) -> Result<Self, InvalidJobId> {
        let line = stdout
            .lines()
            .rfind(|l| !l.trim().is_empty())
            .unwrap_or("")
            .trim();
        let id = line.split(';').next().unwrap_or("");
        id.parse()
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for SlurmJobId {
    type Err = InvalidJobId;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if !s.is_empty() && s.len() <= 20 && s.bytes().all(|b| b.is_ascii_digit()) {
            Ok(SlurmJobId(s.to_owned()))
        } else {
            Err(InvalidJobId(s.chars().take(40).collect()))
        }
    }
}

impl fmt::Display for SlurmJobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A job's exit as Slurm reports it: `ExitCode=<code>:<signal>`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct JobExit {
    pub code: i32,
    pub signal: i32,
}

impl FromStr for JobExit {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (code, signal) = s.trim().split_once(':').ok_or(())?;
        Ok(JobExit {
            code: code.parse().map_err(|_| ())?,
            signal: signal.parse().map_err(|_| ())?,
        })
    }
}

/// What the scheduler says about one job at one moment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobReport {
    pub job_id: SlurmJobId,
    /// The job name (`spe-<run_id>` for our jobs).
    pub name: Option<String>,
    /// Slurm's state word, e.g. `RUNNING`, `CANCELLED` (sacct's `CANCELLED by 0` is cut to it).
    pub state: String,
    pub exit: Option<JobExit>,
    pub reason: Option<String>,
}

/// The WES state a Slurm job state means, with a reason worth keeping for terminal failures.
///
/// PENDING -> QUEUED, CONFIGURING -> INITIALIZING, RUNNING/COMPLETING -> RUNNING, SUSPENDED ->
/// PAUSED, PREEMPTED -> PREEMPTED, COMPLETED with exit 0 -> COMPLETE, non-zero exit, FAILED,
/// OUT_OF_MEMORY, TIMEOUT, DEADLINE -> EXECUTOR_ERROR, NODE_FAIL/BOOT_FAIL -> SYSTEM_ERROR,
/// CANCELLED -> CANCELED. Unknown words map to UNKNOWN rather than guessing.
pub fn wes_state(report: &JobReport) -> (RunState, Option<String>) {
    let word = report.state.split_whitespace().next().unwrap_or("");
    let exit = report.exit.unwrap_or(JobExit { code: 0, signal: 0 });
    let with_exit = |what: &str| {
        Some(match report.exit {
            Some(e) if e.signal != 0 => {
                format!("{what} (exit code {}, signal {})", e.code, e.signal)
            }
            Some(e) => format!("{what} (exit code {})", e.code),
            None => what.to_owned(),
        })
    };
    match word {
        "PENDING" | "REQUEUED" | "REQUEUE_HOLD" | "REQUEUE_FED" | "RESV_DEL_HOLD" => {
            (RunState::Queued, None)
        }
        "CONFIGURING" => (RunState::Initializing, None),
        "RUNNING" | "COMPLETING" | "RESIZING" | "SIGNALING" | "STAGE_OUT" => {
            (RunState::Running, None)
        }
        "SUSPENDED" | "STOPPED" => (RunState::Paused, None),
        "PREEMPTED" => (
            RunState::Preempted,
            Some("preempted by the scheduler".into()),
        ),
        "COMPLETED" if exit.code == 0 && exit.signal == 0 => (RunState::Complete, None),
        "COMPLETED" | "FAILED" => (RunState::ExecutorError, with_exit("the workflow failed")),
        "OUT_OF_MEMORY" => (RunState::ExecutorError, with_exit("out of memory")),
        "TIMEOUT" => (RunState::ExecutorError, with_exit("time limit reached")),
        "DEADLINE" => (RunState::ExecutorError, with_exit("deadline reached")),
        "NODE_FAIL" => (RunState::SystemError, Some("node failure".into())),
        "BOOT_FAIL" => (RunState::SystemError, Some("node boot failure".into())),
        "REVOKED" => (
            RunState::SystemError,
            Some("revoked by the federation".into()),
        ),
        "CANCELLED" => (
            RunState::Canceled,
            Some("cancelled in the scheduler".into()),
        ),
        _ => (
            RunState::Unknown,
            Some(format!("unknown Slurm state {word:?}")),
        ),
    }
}

/// Parses `scontrol show -o job` output (one job per line, `Key=Value` pairs). Lines that
/// cannot be read are skipped: the caller reconciles the jobs it finds.
pub fn parse_scontrol_jobs(stdout: &str) -> Vec<JobReport> {
    stdout.lines().filter_map(scontrol_line).collect()
}

/// Who a job belongs to, as scontrol reports it: `UserId=<name>(<uid>)` and `Account=`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobOwner {
    pub user: Option<String>,
    pub account: Option<String>,
}

impl JobOwner {
    /// Whether the job is the service's: submitted by `user` and, where the deployment sets a
    /// Slurm account, charged to it. Only such a job may be adopted as a run's.
    pub fn is(&self, user: &str, account: Option<&str>) -> bool {
        self.user.as_deref() == Some(user)
            && account.is_none_or(|a| self.account.as_deref() == Some(a))
    }
}

/// [`parse_scontrol_jobs`] with each job's owner.
pub fn parse_scontrol_owned_jobs(stdout: &str) -> Vec<(JobReport, JobOwner)> {
    stdout
        .lines()
        .filter_map(|line| {
            let report = scontrol_line(line)?;
            let user = field(line, "UserId")
                .map(|u| u.split('(').next().unwrap_or(u))
                .filter(|u| !u.is_empty())
                .map(str::to_owned);
            let account = field(line, "Account")
                .filter(|a| !a.is_empty() && *a != "(null)")
                .map(str::to_owned);
            Some((report, JobOwner { user, account }))
        })
        .collect()
}

fn scontrol_line(line: &str) -> Option<JobReport> {
    let job_id: SlurmJobId = field(line, "JobId")?.parse().ok()?;
    Some(JobReport {
        job_id,
        name: field(line, "JobName").map(str::to_owned),
        state: field(line, "JobState")?.to_owned(),
        exit: field(line, "ExitCode").and_then(|e| e.parse().ok()),
        reason: field(line, "Reason")
            .filter(|r| *r != "None")
            .map(str::to_owned),
    })
}

/// The value of ` Key=` in a one-line record, up to the next space.
fn field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    let mut from = 0;
    while let Some(pos) = line[from..].find(key) {
        let start = from + pos;
        let preceded = start == 0 || line.as_bytes()[start - 1] == b' ';
        let after = start + key.len();
        if preceded && line[after..].starts_with('=') {
            let rest = &line[after + 1..];
            return Some(rest.split(' ').next().unwrap_or(""));
        }
        from = after;
    }
    None
}

/// Parses `sacct -X -P -n -o JobID,State,ExitCode` output (`|`-separated).
pub fn parse_sacct(stdout: &str) -> Vec<JobReport> {
    stdout
        .lines()
        .filter_map(|line| {
            let mut cols = line.split('|');
            let job_id: SlurmJobId = cols.next()?.trim().parse().ok()?;
            let state = cols.next()?.split_whitespace().next()?.to_owned();
            let exit = cols.next().and_then(|e| e.parse().ok());
            Some(JobReport {
                job_id,
                name: None,
                state,
                exit,
                reason: None,
            })
        })
        .collect()
}

/// Whether an sbatch/scontrol failure is worth retrying: the controller is down or slow.
pub fn is_transient_failure(stderr: &str) -> bool {
    const SIGNS: [&str; 8] = [
        "Unable to contact slurm controller",
        "Socket timed out",
        "Slurm temporarily unavailable",
        "Connection refused",
        "Transport endpoint is not connected",
        "Resource temporarily unavailable",
        "Communication connection failure",
        "Zero Bytes were transmitted or received",
    ];
    SIGNS.iter().any(|s| stderr.contains(s))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(state: &str, exit: &str) -> JobReport {
        JobReport {
            job_id: "1".parse().unwrap(),
            name: None,
            state: state.into(),
            exit: exit.parse().ok(),
            reason: None,
        }
    }

    #[test]
    fn states_map_as_documented() {
        let cases = [
            ("PENDING", "0:0", RunState::Queued),
            ("CONFIGURING", "0:0", RunState::Initializing),
            ("RUNNING", "0:0", RunState::Running),
            ("COMPLETING", "0:0", RunState::Running),
            ("SUSPENDED", "0:0", RunState::Paused),
            ("PREEMPTED", "0:0", RunState::Preempted),
            ("COMPLETED", "0:0", RunState::Complete),
            ("COMPLETED", "1:0", RunState::ExecutorError),
            ("FAILED", "3:0", RunState::ExecutorError),
            ("OUT_OF_MEMORY", "0:125", RunState::ExecutorError),
            ("TIMEOUT", "0:0", RunState::ExecutorError),
            ("NODE_FAIL", "0:0", RunState::SystemError),
            ("BOOT_FAIL", "0:0", RunState::SystemError),
            ("CANCELLED", "0:15", RunState::Canceled),
            ("CANCELLED by 0", "0:0", RunState::Canceled),
            ("WEIRD", "0:0", RunState::Unknown),
        ];
        for (state, exit, wes) in cases {
            assert_eq!(wes_state(&report(state, exit)).0, wes, "{state} {exit}");
        }
        let (_, reason) = wes_state(&report("FAILED", "3:0"));
        assert_eq!(reason.as_deref(), Some("the workflow failed (exit code 3)"));
        let (_, reason) = wes_state(&report("TIMEOUT", "0:15"));
        assert!(reason.unwrap().contains("time limit"));
    }

    #[test]
    fn sbatch_output_parses() {
        assert_eq!(
            SlurmJobId::parse_sbatch_output("42\n").unwrap().as_str(),
            "42"
        );
        assert_eq!(
            SlurmJobId::parse_sbatch_output("42;cluster1\n")
                .unwrap()
                .as_str(),
            "42"
        );
        assert!(SlurmJobId::parse_sbatch_output("sbatch: error: x\n").is_err());
        assert!(SlurmJobId::parse_sbatch_output("").is_err());
        assert!("1; rm -rf /".parse::<SlurmJobId>().is_err());
    }

    #[test]
    fn scontrol_lines_parse() {
        let out = "JobId=7 JobName=spe-0b5e4f7c-3c1d-4a47-9d1e-2f5e0c7d8a11 UserId=root(0) JobState=FAILED Reason=NonZeroExitCode Dependency=(null) ExitCode=3:0 WorkDir=/tmp/a b\n\
                   JobId=8 JobName=my job with spaces JobState=PENDING Reason=JobHeldUser ExitCode=0:0\n\
                   No jobs in the system\n";
        let jobs = parse_scontrol_jobs(out);
        assert_eq!(jobs.len(), 2);
        assert_eq!(jobs[0].job_id.as_str(), "7");
        assert_eq!(
            jobs[0].name.as_deref(),
            Some("spe-0b5e4f7c-3c1d-4a47-9d1e-2f5e0c7d8a11")
        );
        assert_eq!(jobs[0].state, "FAILED");
        assert_eq!(jobs[0].exit, Some(JobExit { code: 3, signal: 0 }));
        assert_eq!(jobs[0].reason.as_deref(), Some("NonZeroExitCode"));
        assert_eq!(jobs[1].state, "PENDING");
        // `UserId=` must not be read as `Id=`-anything, nor `ArrayJobId` as `JobId`.
        let tricky = "ArrayJobId=99 JobId=5 JobState=RUNNING ExitCode=0:0";
        assert_eq!(parse_scontrol_jobs(tricky)[0].job_id.as_str(), "5");
    }

    #[test]
    fn job_owners_parse_and_only_the_service_owns() {
        let out = "JobId=7 JobName=spe-x UserId=spe(990) GroupId=spe(990) Account=research JobState=PENDING ExitCode=0:0\n\
                   JobId=8 JobName=spe-x UserId=nobody(65534) GroupId=nogroup(65534) Account=research JobState=PENDING ExitCode=0:0\n\
                   JobId=9 JobName=spe-x UserId=spe(990) Account=other JobState=PENDING ExitCode=0:0\n";
        let jobs = parse_scontrol_owned_jobs(out);
        let owners: Vec<&JobOwner> = jobs.iter().map(|(_, o)| o).collect();
        assert_eq!(owners[0].user.as_deref(), Some("spe"));
        assert_eq!(owners[0].account.as_deref(), Some("research"));
        assert_eq!(owners[1].user.as_deref(), Some("nobody"));
        assert!(owners[0].is("spe", Some("research")));
        assert!(owners[0].is("spe", None));
        assert!(!owners[1].is("spe", Some("research")));
        assert!(!owners[1].is("spe", None));
        assert!(!owners[2].is("spe", Some("research")));
        let no_user = JobOwner {
            user: None,
            account: None,
        };
        assert!(!no_user.is("spe", None));
    }

    #[test]
    fn sacct_lines_parse() {
        let jobs = parse_sacct("5|FAILED|2:0\n6|CANCELLED by 0|0:0\n6.batch|CANCELLED|0:15\nbad\n");
        assert_eq!(jobs.len(), 2);
        assert_eq!(jobs[0].exit, Some(JobExit { code: 2, signal: 0 }));
        assert_eq!(jobs[1].state, "CANCELLED");
    }

    #[test]
    fn transient_failures_are_recognised() {
        assert!(is_transient_failure(
            "sbatch: error: Batch job submission failed: Unable to contact slurm controller (connect failure)"
        ));
        assert!(!is_transient_failure(
            "sbatch: error: invalid partition specified: gpu"
        ));
    }
}
