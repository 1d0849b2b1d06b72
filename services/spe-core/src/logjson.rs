//! `log.json`: what `spe-runner` leaves in `<run_dir>/.weskit/<timestamp>/` when a run ends.
//!
//! The keys are WESkit's (so existing crawlers keep working): `start_time`, `end_time`, `cmd`,
//! `workdir`, `exit_code`, `stdout_file`, `stderr_file`, `log_dir`, `log_file`,
//! `output_files`. Two optional keys are added and left out when empty: `signal` (the signal
//! that stopped the engine, e.g. `SIGTERM`) and `error` (why the runner refused or failed, e.g.
//! a digest mismatch). There is no environment in it, on purpose.
//!
//! Paths: `workdir` is the absolute run dir; `stdout_file`, `stderr_file`, `log_dir`,
//! `log_file` and `output_files` are relative to `workdir` (`/`-separated), as WESkit writes
//! them. A log dir outside the run dir is written as an absolute path.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

/// File name of the log inside the log dir.
pub const LOG_JSON_FILE: &str = "log.json";
/// File names of the engine's captured output inside the log dir.
pub const STDOUT_FILE: &str = "stdout";
pub const STDERR_FILE: &str = "stderr";

/// One of the engine's captured streams, as a manifest (`egress.release_logs`) and the API
/// (`/runs/{id}/logs/{stream}`) name it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EngineLog {
    Stdout,
    Stderr,
}

impl EngineLog {
    pub const ALL: [EngineLog; 2] = [EngineLog::Stdout, EngineLog::Stderr];

    /// `stdout` or `stderr`; anything else is no engine log.
    pub fn parse(name: &str) -> Option<EngineLog> {
        EngineLog::ALL.into_iter().find(|l| l.file_name() == name)
    }

    /// The file's name inside the log dir, which is also the stream's name.
    pub fn file_name(self) -> &'static str {
        match self {
            EngineLog::Stdout => STDOUT_FILE,
            EngineLog::Stderr => STDERR_FILE,
        }
    }
}

impl std::fmt::Display for EngineLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.file_name())
    }
}

/// Top-level folders of a run dir that never hold outputs, whatever the engine: the runner's
/// logs (`.weskit`) and the run spec (`.spe`). Each engine adds its own bookkeeping
/// (`crate::engine::Engine::bookkeeping_paths`).
pub const NEVER_OUTPUTS: [&str; 2] = [".weskit", ".spe"];

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LogJson {
    /// RFC 3339, UTC.
    #[serde(with = "rfc3339")]
    pub start_time: DateTime<Utc>,
    /// RFC 3339, UTC.
    #[serde(with = "rfc3339")]
    pub end_time: DateTime<Utc>,
    /// The engine's argv, executable first (what ran, or what would have run).
    pub cmd: Vec<String>,
    pub workdir: String,
    /// The engine's exit code; null if it never ran or was killed by a signal.
    pub exit_code: Option<i32>,
    pub stdout_file: String,
    pub stderr_file: String,
    pub log_dir: String,
    pub log_file: String,
    /// Regular files the run produced, relative to `workdir`, sorted.
    pub output_files: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signal: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl LogJson {
    /// Whether the run finished by itself with exit code 0 and no runner error.
    pub fn succeeded(&self) -> bool {
        self.exit_code == Some(0) && self.signal.is_none() && self.error.is_none()
    }

    pub fn from_slice(bytes: &[u8]) -> Result<LogJson, serde_json::Error> {
        serde_json::from_slice(bytes)
    }

    pub fn to_pretty_json(&self) -> Vec<u8> {
        // Serializing plain strings and numbers cannot fail.
        let mut out = serde_json::to_vec_pretty(self).unwrap_or_default();
        out.push(b'\n');
        out
    }
}

/// Whether a path relative to the run dir (`/`-separated) lies in a folder that never holds
/// outputs.
pub fn is_never_output(relative: &str) -> bool {
    let top = relative.split('/').next().unwrap_or_default();
    NEVER_OUTPUTS.contains(&top)
}

/// The conventional signal name (`SIGTERM`) of a Unix signal number, for the common ones.
pub fn signal_name(signal: i32) -> String {
    let name = match signal {
        1 => "SIGHUP",
        2 => "SIGINT",
        3 => "SIGQUIT",
        4 => "SIGILL",
        6 => "SIGABRT",
        7 => "SIGBUS",
        8 => "SIGFPE",
        9 => "SIGKILL",
        10 => "SIGUSR1",
        11 => "SIGSEGV",
        12 => "SIGUSR2",
        13 => "SIGPIPE",
        14 => "SIGALRM",
        15 => "SIGTERM",
        24 => "SIGXCPU",
        25 => "SIGXFSZ",
        _ => return format!("SIG{signal}"),
    };
    name.to_owned()
}

mod rfc3339 {
    use super::*;
    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer>(at: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&at.to_rfc3339_opts(SecondsFormat::Micros, true))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        let text = String::deserialize(d)?;
        DateTime::parse_from_rfc3339(&text)
            .map(|at| at.with_timezone(&Utc))
            .map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> LogJson {
        let start = DateTime::parse_from_rfc3339("2026-01-31T12:00:00.5Z")
            .unwrap()
            .with_timezone(&Utc);
        LogJson {
            start_time: start,
            end_time: start + chrono::Duration::seconds(3),
            cmd: vec!["snakemake".into(), "--cores".into(), "1".into()],
            workdir: "/data/runs/0b5e/0b5e4f7c".into(),
            exit_code: Some(0),
            stdout_file: ".weskit/t/stdout".into(),
            stderr_file: ".weskit/t/stderr".into(),
            log_dir: ".weskit/t".into(),
            log_file: ".weskit/t/log.json".into(),
            output_files: vec!["plots/quals.svg".into(), "results.csv".into()],
            signal: None,
            error: None,
        }
    }

    #[test]
    fn keys_are_weskits_and_optional_keys_are_left_out() {
        let log = sample();
        let value: serde_json::Value = serde_json::from_slice(&log.to_pretty_json()).unwrap();
        let mut keys: Vec<&str> = value
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        keys.sort();
        assert_eq!(
            keys,
            [
                "cmd",
                "end_time",
                "exit_code",
                "log_dir",
                "log_file",
                "output_files",
                "start_time",
                "stderr_file",
                "stdout_file",
                "workdir",
            ]
        );
        assert_eq!(value["start_time"], "2026-01-31T12:00:00.500000Z");
        assert!(log.succeeded());
        assert_eq!(LogJson::from_slice(&log.to_pretty_json()).unwrap(), log);
    }

    #[test]
    fn signal_error_and_null_exit_code_round_trip() {
        let mut log = sample();
        log.exit_code = None;
        log.signal = Some(signal_name(15));
        log.error = Some("workflow files do not match the approved digest".into());
        let text = String::from_utf8(log.to_pretty_json()).unwrap();
        assert!(text.contains("\"exit_code\": null"), "{text}");
        assert!(text.contains("\"signal\": \"SIGTERM\""), "{text}");
        let back = LogJson::from_slice(text.as_bytes()).unwrap();
        assert_eq!(back, log);
        assert!(!back.succeeded());
        // Other writers' timestamps with offsets are read as UTC.
        let other = text.replace("2026-01-31T12:00:00.500000Z", "2026-01-31T13:00:00+01:00");
        let back = LogJson::from_slice(other.as_bytes()).unwrap();
        assert_eq!(back.start_time.to_rfc3339(), "2026-01-31T12:00:00+00:00");
    }

    #[test]
    fn engine_logs_are_named_by_their_file() {
        assert_eq!(EngineLog::parse("stdout"), Some(EngineLog::Stdout));
        assert_eq!(EngineLog::parse("stderr"), Some(EngineLog::Stderr));
        for bad in ["", "STDERR", "log.json", "stderr/", "trace.txt"] {
            assert_eq!(EngineLog::parse(bad), None, "{bad}");
        }
        assert_eq!(EngineLog::Stderr.to_string(), STDERR_FILE);
        assert_eq!(
            serde_json::to_value([EngineLog::Stdout, EngineLog::Stderr]).unwrap(),
            serde_json::json!(["stdout", "stderr"])
        );
    }

    #[test]
    fn bookkeeping_folders_are_never_outputs() {
        assert!(is_never_output(".weskit/t/log.json"));
        assert!(is_never_output(".spe/runspec.json"));
        assert!(!is_never_output("results.csv"));
        assert!(!is_never_output("plots/work/x.svg"));
        assert_eq!(signal_name(2), "SIGINT");
        assert_eq!(signal_name(64), "SIG64");
    }
}
