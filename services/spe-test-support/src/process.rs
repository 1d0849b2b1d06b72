//! A service binary (wes-api, results-crawler) started for a test on port 0. Both print where
//! they listen as the last word of their first stdout line ("wes-api listening on port 40123",
//! "results-crawler metrics on http://127.0.0.1:40124/metrics"); [`Service::start`] waits for
//! that line, so the service answers when it returns. The binary's path is the caller's
//! `env!("CARGO_BIN_EXE_<name>")`: this crate depends on neither service.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

/// A started service; killed (SIGKILL) and reaped when dropped, so that a failing test leaves
/// no process behind.
pub struct Service {
    child: Option<Child>,
    /// The last word of its first stdout line: a port (wes-api) or a URL (the crawler's metrics).
    pub address: String,
}

impl Service {
    /// Spawns `command` with stdout piped and waits for its first line. Panics, with its exit
    /// status, when it ends before printing one.
    pub fn start(mut command: Command) -> Service {
        let mut child = command
            .stdout(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {command:?}: {e}"));
        let mut line = String::new();
        if let Some(stdout) = child.stdout.take() {
            let _ = BufReader::new(stdout).read_line(&mut line);
        }
        if line.trim().is_empty() {
            let _ = child.kill();
            let status = child.wait();
            panic!("{command:?} printed no address and ended: {status:?}");
        }
        Service {
            address: line
                .split_whitespace()
                .last()
                .unwrap_or_default()
                .to_owned(),
            child: Some(child),
        }
    }

    /// The port it listens on, when [`Service::address`] is one (wes-api).
    pub fn port(&self) -> u16 {
        self.address
            .parse()
            .unwrap_or_else(|_| panic!("not a port: {:?}", self.address))
    }

    pub fn child_mut(&mut self) -> &mut Child {
        self.child.as_mut().expect("a running service")
    }

    /// Kills it with SIGKILL (the crash the tests simulate) and reaps it.
    pub fn kill9(mut self) {
        self.stop();
    }

    /// Hands the process over: the caller kills and reaps it (e.g. to read its stderr).
    pub fn into_child(mut self) -> Child {
        self.child.take().expect("a running service")
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A finished command's exit code (-1 when a signal ended it) and output, as text; its `Debug`
/// shows all three, for assertion messages.
pub struct TextOutput {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl From<std::process::Output> for TextOutput {
    fn from(out: std::process::Output) -> TextOutput {
        TextOutput {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

impl std::fmt::Debug for TextOutput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {}\n--- stdout\n{}--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}
