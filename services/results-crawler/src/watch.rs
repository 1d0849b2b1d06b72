//! File-system events: a run is looked at as soon as its log.json appears, instead of at the
//! next rescan. Events are only hints (rescans remain the ground truth), so a watcher that
//! cannot start, or misses events, costs latency, never correctness.

use std::path::Path;
use std::time::Duration;

use notify::{Event, EventKind, RecursiveMode, Watcher};
use spe_core::RunId;
use spe_core::config::CrawlerWatch;
use tokio::sync::mpsc::UnboundedSender;

/// The run whose `.weskit/<timestamp>/log.json` this is, if it is one.
pub fn run_of_log_json(path: &Path) -> Option<RunId> {
    if path.file_name()? != "log.json" {
        return None;
    }
    let weskit = path.parent()?.parent()?;
    if weskit.file_name()? != ".weskit" {
        return None;
    }
    weskit.parent()?.file_name()?.to_str()?.parse().ok()
}

/// Watches `data_dir` recursively and sends the run id of every log.json written.
pub fn start(
    data_dir: &Path,
    mode: CrawlerWatch,
    poll_interval: Duration,
    tx: UnboundedSender<RunId>,
) -> notify::Result<Box<dyn Watcher + Send>> {
    let handler = move |res: notify::Result<Event>| match res {
        Ok(event) => {
            if matches!(event.kind, EventKind::Remove(_) | EventKind::Access(_)) {
                return;
            }
            for path in &event.paths {
                if let Some(id) = run_of_log_json(path) {
                    let _ = tx.send(id);
                }
            }
        }
        Err(e) => tracing::warn!(error = %e, "file-system watcher error; rescans go on"),
    };
    let mut watcher: Box<dyn Watcher + Send> = match mode {
        CrawlerWatch::Notify => Box::new(notify::recommended_watcher(handler)?),
        CrawlerWatch::Poll => Box::new(notify::PollWatcher::new(
            handler,
            notify::Config::default().with_poll_interval(poll_interval),
        )?),
    };
    watcher.watch(data_dir, RecursiveMode::Recursive)?;
    Ok(watcher)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_run_of_a_log_json() {
        let id = RunId::new_random();
        let p = format!(
            "/data/{}/{id}/.weskit/2026-01-01T00:00:00/log.json",
            id.shard()
        );
        assert_eq!(run_of_log_json(Path::new(&p)), Some(id));
        assert_eq!(
            run_of_log_json(Path::new("/data/x/.weskit/t/log.json")),
            None
        );
        let other = format!("/data/{id}/results/t/log.json");
        assert_eq!(run_of_log_json(Path::new(&other)), None);
    }
}
