//! Captures everything a test binary logs, at debug level and up, from every crate, so that
//! tests can look for tokens and secrets in it. Also written to stderr when
//! SPE_TEST_LOG_STDERR=1: tests/run-all.sh sets it and checks the whole run's output for every
//! token the OIDC peer issued.

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};

pub fn captured_logs() -> Arc<Mutex<Vec<u8>>> {
    static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let writer = buf.clone();
        let _ = tracing_subscriber::fmt()
            .with_env_filter("debug")
            .with_ansi(false)
            .with_writer(move || LogWriter(writer.clone()))
            .try_init();
        buf
    })
    .clone()
}

/// What has been captured so far, as text.
pub fn captured_text() -> String {
    captured_logs()
        .lock()
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default()
}

struct LogWriter(Arc<Mutex<Vec<u8>>>);

impl Write for LogWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        if let Ok(mut buf) = self.0.lock() {
            buf.extend_from_slice(data);
        }
        if std::env::var_os("SPE_TEST_LOG_STDERR").is_some_and(|v| v == "1") {
            let _ = std::io::stderr().write_all(data);
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
