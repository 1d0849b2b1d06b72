//! The hot status path: `GET /runs/{id}/status` is what clients poll, often many times a
//! second per run. A run's owner never changes and its state changes a handful of times in its
//! life, so each instance keeps the pair it last read for a short while and answers from it
//! without a database round trip.
//!
//! How stale an answer may be is bounded by [`FRESH_FOR`]: a state changed by another instance
//! (its reconciler, or a cancel taken there) is seen here within that time. A cancel taken by
//! this instance is seen at once: the cancel handler forgets the run's entry.

use std::collections::HashMap;
use std::sync::RwLock;
use std::time::{Duration, Instant};

use spe_core::{RunId, RunState, Subject};
use spe_store::{Store, StoreError};

/// How long a read state is answered without asking the store again. Under a second, so that
/// every instance on a shared PostgreSQL shows a change within one.
pub const FRESH_FOR: Duration = Duration::from_millis(500);

/// Entries kept at most; past it, stale entries are dropped, then all if none were stale.
const MAX_ENTRIES: usize = 100_000;

struct Entry {
    owner: Subject,
    state: RunState,
    read_at: Instant,
}

#[derive(Default)]
pub struct RunStates {
    entries: RwLock<HashMap<RunId, Entry>>,
}

impl RunStates {
    /// Run `id`'s state if it exists and `admits` its owner; `None` otherwise (the caller
    /// answers 404 either way, so a run of someone else's is not revealed).
    pub async fn state(
        &self,
        store: &Store,
        id: RunId,
        admits: impl Fn(&Subject) -> bool,
    ) -> Result<Option<RunState>, StoreError> {
        {
            let entries = self.entries.read().unwrap_or_else(|e| e.into_inner());
            if let Some(entry) = entries.get(&id)
                && entry.read_at.elapsed() < FRESH_FOR
            {
                return Ok(admits(&entry.owner).then_some(entry.state));
            }
        }
        let read_at = Instant::now();
        let Some((owner, state)) = store.owner_and_state(id).await? else {
            return Ok(None);
        };
        let admitted = admits(&owner);
        let mut entries = self.entries.write().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= MAX_ENTRIES {
            entries.retain(|_, e| e.read_at.elapsed() < FRESH_FOR);
            if entries.len() >= MAX_ENTRIES {
                entries.clear();
            }
        }
        entries.insert(
            id,
            Entry {
                owner,
                state,
                read_at,
            },
        );
        Ok(admitted.then_some(state))
    }

    /// Drops what is known of run `id`: its state changed here, so the next read asks the
    /// store.
    pub fn forget(&self, id: RunId) {
        self.entries
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&id);
    }
}
