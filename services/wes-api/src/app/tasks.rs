//! A run's tasks for the tasks endpoints: parsed from the engine's records off the async
//! workers (see `run_files::tasks`), and kept in a bounded cache once the run has ended.
//!
//! An ended run's log no longer changes, so paging through its tasks parses the log once
//! instead of once per page (up to 16 MiB of text each time). A live run's log still grows, so
//! it is parsed fresh on every request. The key holds the log folder as well as the run id, so
//! an entry can never answer for another folder.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use spe_core::RunId;
use spe_core::tasks::TaskRecord;
use spe_store::RunRecord;

use crate::app::run_logs::{LogView, owner_task};
use crate::run_files;

/// At most this many ended runs are cached...
const MAX_RUNS: usize = 256;
/// ...holding at most this many tasks in all (a 16 MiB Snakemake log yields about 100,000;
/// one task is a few hundred bytes). A run with more is served but not cached.
const MAX_TASKS: usize = 500_000;

type Key = (RunId, String);

struct Entry {
    tasks: Arc<Vec<TaskRecord>>,
    /// When it was last used, for least-recently-used eviction.
    used: u64,
}

#[derive(Default)]
struct Inner {
    entries: HashMap<Key, Entry>,
    tasks: usize,
    clock: u64,
}

/// Parsed tasks of ended runs, bounded in runs and in tasks, least recently used evicted first.
#[derive(Clone, Default)]
pub struct TaskCache {
    inner: Arc<Mutex<Inner>>,
}

impl TaskCache {
    fn get(&self, key: &Key) -> Option<Arc<Vec<TaskRecord>>> {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        inner.clock += 1;
        let now = inner.clock;
        inner.entries.get_mut(key).map(|e| {
            e.used = now;
            Arc::clone(&e.tasks)
        })
    }

    fn put(&self, key: Key, tasks: Arc<Vec<TaskRecord>>) {
        if tasks.len() > MAX_TASKS {
            return;
        }
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(old) = inner.entries.remove(&key) {
            inner.tasks -= old.tasks.len();
        }
        while inner.entries.len() >= MAX_RUNS || inner.tasks + tasks.len() > MAX_TASKS {
            // A linear scan: MAX_RUNS is small, and this runs only when the cache is full.
            let Some(oldest) = inner
                .entries
                .iter()
                .min_by_key(|(_, e)| e.used)
                .map(|(k, _)| k.clone())
            else {
                break;
            };
            if let Some(gone) = inner.entries.remove(&oldest) {
                inner.tasks -= gone.tasks.len();
            }
        }
        inner.clock += 1;
        let used = inner.clock;
        inner.tasks += tasks.len();
        inner.entries.insert(key, Entry { tasks, used });
    }

    #[cfg(test)]
    fn len(&self) -> (usize, usize) {
        let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        (inner.entries.len(), inner.tasks)
    }
}

/// The run's tasks as `view` shows them: all as recorded, or the owner's (by name and state,
/// `run_logs::owner_task`; shaped on the blocking pool, as a log holds up to 100,000 tasks), in
/// the engine's order.
pub async fn visible_tasks(
    cache: &TaskCache,
    view: LogView,
    run: &RunRecord,
) -> Arc<Vec<TaskRecord>> {
    let all = run_tasks(cache, run).await;
    match view {
        LogView::Full => all,
        LogView::Owner => tokio::task::spawn_blocking(move || {
            Arc::new(all.iter().filter_map(owner_task).collect())
        })
        .await
        .unwrap_or_default(),
    }
}

/// The run's tasks, in the engine's order (empty until the engine has written any).
pub async fn run_tasks(cache: &TaskCache, run: &RunRecord) -> Arc<Vec<TaskRecord>> {
    let key = run
        .state
        .is_terminal()
        .then(|| (run.id, run.log_dir.clone().unwrap_or_default()));
    if let Some(hit) = key.as_ref().and_then(|k| cache.get(k)) {
        return hit;
    }
    let tasks = Arc::new(run_files::tasks(run).await);
    if let Some(key) = key {
        cache.put(key, Arc::clone(&tasks));
    }
    tasks
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tasks(n: usize) -> Arc<Vec<TaskRecord>> {
        Arc::new(
            (0..n)
                .map(|i| TaskRecord {
                    id: i.to_string(),
                    name: "a".into(),
                    start_time: None,
                    end_time: None,
                    exit_code: None,
                    notes: Vec::new(),
                })
                .collect(),
        )
    }

    #[test]
    fn the_cache_is_bounded_in_runs_and_evicts_the_least_recently_used() {
        let cache = TaskCache::default();
        let keys: Vec<Key> = (0..=MAX_RUNS)
            .map(|i| (RunId::new_random(), format!("/runs/{i}")))
            .collect();
        for key in &keys[..MAX_RUNS] {
            cache.put(key.clone(), tasks(1));
        }
        // The first is used again, so the second is the least recently used.
        assert!(cache.get(&keys[0]).is_some());
        cache.put(keys[MAX_RUNS].clone(), tasks(1));
        assert_eq!(cache.len(), (MAX_RUNS, MAX_RUNS));
        assert!(cache.get(&keys[0]).is_some());
        assert!(cache.get(&keys[1]).is_none());
        assert!(cache.get(&keys[MAX_RUNS]).is_some());
    }

    #[test]
    fn the_cache_is_bounded_in_tasks_and_keyed_by_log_folder() {
        let cache = TaskCache::default();
        let run = RunId::new_random();
        cache.put((run, "/a".into()), tasks(MAX_TASKS / 2));
        cache.put((run, "/b".into()), tasks(MAX_TASKS / 2));
        assert_eq!(cache.len(), (2, MAX_TASKS));
        // Over the budget: the least recently used goes.
        cache.put((RunId::new_random(), "/c".into()), tasks(10));
        assert_eq!(cache.len(), (2, MAX_TASKS / 2 + 10));
        assert!(cache.get(&(run, "/a".into())).is_none());
        assert_eq!(
            cache.get(&(run, "/b".into())).map(|t| t.len()),
            Some(MAX_TASKS / 2)
        );
        // Larger than the whole budget: served by the caller, never cached.
        cache.put((RunId::new_random(), "/d".into()), tasks(MAX_TASKS + 1));
        assert_eq!(cache.len(), (2, MAX_TASKS / 2 + 10));
    }
}
