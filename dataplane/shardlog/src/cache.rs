//! Byte-bounded LRU cache of hot shards.
//!
//! O_DIRECT bypasses the page cache, so a node that serves the same shard twice would read it from
//! the disk twice. Each core keeps this cache of whole, checksum-verified shards. Invariants: the sum
//! of cached payload sizes never exceeds the capacity; a put or delete of a shard id removes it first,
//! so the cache never answers with bytes older than the log's latest write.

use bytes::Bytes;
use cairn_common::ShardId;
use std::collections::{BTreeMap, HashMap};

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct CacheStats {
    pub capacity_bytes: u64,
    pub used_bytes: u64,
    pub hits: u64,
    pub misses: u64,
    pub evictions: u64,
}

pub struct HotCache {
    capacity_bytes: u64,
    used_bytes: u64,
    next_tick: u64,
    entries: HashMap<ShardId, (Bytes, u64)>,
    /// Last-use tick → shard id; the first entry is the least recently used.
    recency: BTreeMap<u64, ShardId>,
    hits: u64,
    misses: u64,
    evictions: u64,
}

impl HotCache {
    pub fn new(capacity_bytes: u64) -> Self {
        HotCache {
            capacity_bytes,
            used_bytes: 0,
            next_tick: 0,
            entries: HashMap::new(),
            recency: BTreeMap::new(),
            hits: 0,
            misses: 0,
            evictions: 0,
        }
    }

    pub fn get(&mut self, id: &ShardId) -> Option<Bytes> {
        let tick = self.next_tick;
        match self.entries.get_mut(id) {
            Some((bytes, last_used)) => {
                self.recency.remove(last_used);
                *last_used = tick;
                self.recency.insert(tick, *id);
                self.next_tick += 1;
                self.hits += 1;
                Some(bytes.clone())
            }
            None => {
                self.misses += 1;
                None
            }
        }
    }

    /// Caches `bytes` for `id` unless it is larger than an eighth of the capacity (one large shard
    /// must not flush the whole cache).
    pub fn insert(&mut self, id: ShardId, bytes: Bytes) {
        let size = bytes.len() as u64;
        if size > self.capacity_bytes / 8 {
            return;
        }
        self.remove(&id);
        while self.used_bytes + size > self.capacity_bytes {
            let Some((_, victim)) = self.recency.pop_first() else {
                break;
            };
            if let Some((evicted, _)) = self.entries.remove(&victim) {
                self.used_bytes -= evicted.len() as u64;
                self.evictions += 1;
            }
        }
        let tick = self.next_tick;
        self.next_tick += 1;
        self.used_bytes += size;
        self.recency.insert(tick, id);
        self.entries.insert(id, (bytes, tick));
    }

    pub fn remove(&mut self, id: &ShardId) {
        if let Some((bytes, tick)) = self.entries.remove(id) {
            self.recency.remove(&tick);
            self.used_bytes -= bytes.len() as u64;
        }
    }

    pub fn stats(&self) -> CacheStats {
        CacheStats {
            capacity_bytes: self.capacity_bytes,
            used_bytes: self.used_bytes,
            hits: self.hits,
            misses: self.misses,
            evictions: self.evictions,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cairn_common::ShardIndex;

    fn id(n: u128) -> ShardId {
        ShardId::new(n, 0, 0, ShardIndex(0))
    }

    #[test]
    fn evicts_least_recently_used_and_stays_within_capacity() {
        let mut cache = HotCache::new(800);
        cache.insert(id(1), Bytes::from(vec![1; 100]));
        cache.insert(id(2), Bytes::from(vec![2; 100]));
        assert!(cache.get(&id(1)).is_some()); // 1 is now more recent than 2
        for n in 3..=9 {
            cache.insert(id(n), Bytes::from(vec![0; 100]));
        }
        let stats = cache.stats();
        assert!(stats.used_bytes <= 800);
        assert_eq!(stats.evictions, 1);
        assert!(cache.get(&id(2)).is_none(), "2 was least recently used");
        assert!(cache.get(&id(1)).is_some());
        assert_eq!(cache.stats().hits, 2);
        assert_eq!(cache.stats().misses, 1);
    }

    #[test]
    fn oversized_entries_are_not_cached_and_remove_frees_bytes() {
        let mut cache = HotCache::new(800);
        cache.insert(id(1), Bytes::from(vec![1; 101]));
        assert_eq!(cache.stats().used_bytes, 0);
        cache.insert(id(2), Bytes::from(vec![1; 50]));
        cache.remove(&id(2));
        assert_eq!(cache.stats().used_bytes, 0);
        assert!(cache.get(&id(2)).is_none());
    }
}
