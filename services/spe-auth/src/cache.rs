//! A bounded cache keyed by a SHA-256 hash (of a token, never the token itself: a memory dump of
//! the keys shows no token text), whose entries each end at their own deadline and whose least
//! recently used entry makes room when it is full.

use std::collections::{BTreeMap, HashMap};
use std::time::SystemTime;

pub(crate) type Key = [u8; 32];

struct Entry<V> {
    value: V,
    deadline: SystemTime,
    /// Position in `order`: larger is more recently used.
    used: u64,
}

pub(crate) struct Lru<V> {
    capacity: usize,
    entries: HashMap<Key, Entry<V>>,
    /// `used` -> key, oldest first: the entry to evict is the first one.
    order: BTreeMap<u64, Key>,
    tick: u64,
}

impl<V: Clone> Lru<V> {
    pub(crate) fn new(capacity: usize) -> Lru<V> {
        Lru {
            capacity: capacity.max(1),
            entries: HashMap::new(),
            order: BTreeMap::new(),
            tick: 0,
        }
    }

    /// The value under `key` if it has not reached its deadline (an entry that has is dropped).
    pub(crate) fn get(&mut self, key: &Key, now: SystemTime) -> Option<(V, SystemTime)> {
        let entry = self.entries.get_mut(key)?;
        if now >= entry.deadline {
            self.remove(key);
            return None;
        }
        self.tick += 1;
        self.order.remove(&entry.used);
        entry.used = self.tick;
        self.order.insert(self.tick, *key);
        Some((entry.value.clone(), entry.deadline))
    }

    /// Stores `value` until `deadline`, evicting the least recently used entries beyond
    /// capacity.
    pub(crate) fn insert(&mut self, key: Key, value: V, deadline: SystemTime) {
        self.remove(&key);
        while self.entries.len() >= self.capacity {
            let Some((_, oldest)) = self.order.pop_first() else {
                break;
            };
            self.entries.remove(&oldest);
        }
        self.tick += 1;
        self.order.insert(self.tick, key);
        self.entries.insert(
            key,
            Entry {
                value,
                deadline,
                used: self.tick,
            },
        );
    }

    pub(crate) fn remove(&mut self, key: &Key) {
        if let Some(entry) = self.entries.remove(key) {
            self.order.remove(&entry.used);
        }
    }

    pub(crate) fn clear(&mut self) {
        self.entries.clear();
        self.order.clear();
    }

    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn key(n: u8) -> Key {
        [n; 32]
    }

    #[test]
    fn the_least_recently_used_entry_makes_room() {
        let now = SystemTime::now();
        let later = now + Duration::from_secs(60);
        let mut lru = Lru::new(2);
        lru.insert(key(1), "one", later);
        lru.insert(key(2), "two", later);
        // Reading 1 makes 2 the least recently used.
        assert_eq!(lru.get(&key(1), now).map(|(v, _)| v), Some("one"));
        lru.insert(key(3), "three", later);
        assert_eq!(lru.len(), 2);
        assert!(lru.get(&key(2), now).is_none());
        assert_eq!(lru.get(&key(1), now).map(|(v, _)| v), Some("one"));
        assert_eq!(lru.get(&key(3), now).map(|(v, _)| v), Some("three"));
    }

    #[test]
    fn an_entry_ends_at_its_deadline() {
        let now = SystemTime::now();
        let mut lru = Lru::new(4);
        lru.insert(key(1), 1, now + Duration::from_secs(1));
        assert!(lru.get(&key(1), now).is_some());
        assert!(lru.get(&key(1), now + Duration::from_secs(1)).is_none());
        assert_eq!(lru.len(), 0, "a dead entry is dropped when met");
    }
}
