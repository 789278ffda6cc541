//! The edge's two caches: hot objects (GET bodies keyed by bucket/key, byte-bounded LRU with ETag
//! revalidation) and bucket → region answers of the bucket service (TTL, invalidated on demand).
//!
//! Model: plain data structures behind one mutex each, shared by every executor; time is passed
//! in, so the freshness rules are tested without sleeping.
//!
//! Staleness bound (hot objects): an entry is served without asking the origin only while
//! `now - validated_at < ttl` (the routing decision's `cache_ttl_ms`); after that every read sends
//! a conditional GET (`If-None-Match: <etag>`) and serves the entry only on 304. An overwrite or
//! delete made through this edge removes the entry at once; one made elsewhere (another edge, the
//! gateway directly) is therefore visible at this edge at most `ttl` after it was acknowledged.
//! An entry is served from memory only to access keys the origin has already authorised for it
//! (200 or 304 answered to their own signed request); another caller's first read revalidates.
//!
//! Invariants: `used_bytes` equals the sum of the entries' sizes and never exceeds the capacity
//! after an insert returns; no entry is larger than `max_object_bytes`.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;

/// A cached object response: its ETag, the headers to replay and the body.
#[derive(Debug)]
pub struct CachedObject {
    pub etag: String,
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
}

impl CachedObject {
    fn size_bytes(&self, bucket: &str, key: &str) -> usize {
        // Bookkeeping overhead per entry, so a flood of empty objects is bounded too.
        const ENTRY_OVERHEAD_BYTES: usize = 256;
        self.body.len()
            + self.etag.len()
            + bucket.len()
            + key.len()
            + self
                .headers
                .iter()
                .map(|(name, value)| name.len() + value.len())
                .sum::<usize>()
            + ENTRY_OVERHEAD_BYTES
    }
}

/// A lookup's answer.
#[derive(Debug, Clone)]
pub struct CacheLookup {
    pub object: Arc<CachedObject>,
    /// Whether the entry may be served without asking the origin: validated less than `ttl`
    /// ago and the caller's access key already authorised for it.
    pub fresh_for_caller: bool,
}

/// Readers remembered per entry; past this, new readers always revalidate.
const MAX_READERS_PER_ENTRY: usize = 64;

struct Entry {
    object: Arc<CachedObject>,
    validated_at: Instant,
    readers: Vec<String>,
    size_bytes: usize,
    tick: u64,
}

#[derive(Default)]
struct Inner {
    entries: HashMap<(String, String), Entry>,
    /// Least recently used first.
    recency: BTreeMap<u64, (String, String)>,
    used_bytes: usize,
    next_tick: u64,
}

pub struct HotObjectCache {
    capacity_bytes: usize,
    max_object_bytes: usize,
    inner: Mutex<Inner>,
}

impl HotObjectCache {
    pub fn new(capacity_bytes: usize, max_object_bytes: usize) -> HotObjectCache {
        HotObjectCache {
            capacity_bytes,
            max_object_bytes: max_object_bytes.min(capacity_bytes),
            inner: Mutex::new(Inner::default()),
        }
    }

    /// Largest body the cache takes.
    pub fn max_object_bytes(&self) -> usize {
        self.max_object_bytes
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    pub fn lookup(
        &self,
        bucket: &str,
        key: &str,
        access_key_id: &str,
        ttl: Duration,
        now: Instant,
    ) -> Option<CacheLookup> {
        let mut inner = self.lock();
        let tick = inner.next_tick;
        inner.next_tick += 1;
        let id = (bucket.to_owned(), key.to_owned());
        let entry = inner.entries.get_mut(&id)?;
        let old_tick = std::mem::replace(&mut entry.tick, tick);
        let lookup = CacheLookup {
            object: Arc::clone(&entry.object),
            fresh_for_caller: now.saturating_duration_since(entry.validated_at) < ttl
                && entry.readers.iter().any(|reader| reader == access_key_id),
        };
        inner.recency.remove(&old_tick);
        inner.recency.insert(tick, id);
        Some(lookup)
    }

    /// Stores a 200 answer the origin just gave `access_key_id`. Returns false when the object
    /// is too large to cache (any older entry for the key is removed either way).
    pub fn insert(
        &self,
        bucket: &str,
        key: &str,
        object: CachedObject,
        access_key_id: &str,
        now: Instant,
    ) -> bool {
        let mut inner = self.lock();
        remove_locked(&mut inner, bucket, key);
        let size_bytes = object.size_bytes(bucket, key);
        if object.body.len() > self.max_object_bytes || size_bytes > self.capacity_bytes {
            return false;
        }
        while inner.used_bytes + size_bytes > self.capacity_bytes {
            let Some((_, (old_bucket, old_key))) = inner.recency.pop_first() else {
                break;
            };
            if let Some(old) = inner.entries.remove(&(old_bucket, old_key)) {
                inner.used_bytes -= old.size_bytes;
            }
        }
        let tick = inner.next_tick;
        inner.next_tick += 1;
        let id = (bucket.to_owned(), key.to_owned());
        inner.recency.insert(tick, id.clone());
        inner.entries.insert(
            id,
            Entry {
                object: Arc::new(object),
                validated_at: now,
                readers: vec![access_key_id.to_owned()],
                size_bytes,
                tick,
            },
        );
        inner.used_bytes += size_bytes;
        true
    }

    /// The origin answered 304 to `access_key_id`'s conditional GET for `etag`: the entry is
    /// valid again from `now`, for that caller too. Ignored if the entry changed meanwhile.
    pub fn revalidated(
        &self,
        bucket: &str,
        key: &str,
        etag: &str,
        access_key_id: &str,
        now: Instant,
    ) {
        let mut inner = self.lock();
        if let Some(entry) = inner.entries.get_mut(&(bucket.to_owned(), key.to_owned()))
            && entry.object.etag == etag
        {
            entry.validated_at = now;
            if !entry.readers.iter().any(|reader| reader == access_key_id)
                && entry.readers.len() < MAX_READERS_PER_ENTRY
            {
                entry.readers.push(access_key_id.to_owned());
            }
        }
    }

    pub fn remove(&self, bucket: &str, key: &str) {
        remove_locked(&mut self.lock(), bucket, key);
    }

    /// Drops every entry of `bucket` (bucket-level writes: DeleteObjects, DeleteBucket, ...).
    pub fn remove_bucket(&self, bucket: &str) {
        let mut inner = self.lock();
        let keys: Vec<String> = inner
            .entries
            .keys()
            .filter(|(entry_bucket, _)| entry_bucket == bucket)
            .map(|(_, key)| key.clone())
            .collect();
        for key in keys {
            remove_locked(&mut inner, bucket, &key);
        }
    }

    /// (entries, bytes used).
    pub fn usage(&self) -> (usize, usize) {
        let inner = self.lock();
        (inner.entries.len(), inner.used_bytes)
    }
}

fn remove_locked(inner: &mut Inner, bucket: &str, key: &str) {
    if let Some(old) = inner.entries.remove(&(bucket.to_owned(), key.to_owned())) {
        inner.recency.remove(&old.tick);
        inner.used_bytes -= old.size_bytes;
    }
}

/// Bucket → region answers of the bucket service, each kept `ttl`; configured overrides win and
/// never expire. `None` as a region means "the bucket does not exist".
pub struct BucketRegionCache {
    ttl: Duration,
    overrides: BTreeMap<String, String>,
    entries: Mutex<HashMap<String, (Option<String>, Instant)>>,
}

/// Entries kept; beyond this the cache is cleared (a flood of random bucket names stays bounded).
const MAX_BUCKET_ENTRIES: usize = 100_000;

impl BucketRegionCache {
    pub fn new(ttl: Duration, overrides: BTreeMap<String, String>) -> BucketRegionCache {
        BucketRegionCache {
            ttl,
            overrides,
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (Option<String>, Instant)>> {
        self.entries
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    /// The known answer for `bucket`, if fresh: `Some(Some(region))`, `Some(None)` (does not
    /// exist) or `None` (ask the bucket service).
    pub fn get(&self, bucket: &str, now: Instant) -> Option<Option<String>> {
        if let Some(region) = self.overrides.get(bucket) {
            return Some(Some(region.clone()));
        }
        let entries = self.lock();
        let (region, fetched_at) = entries.get(bucket)?;
        (now.saturating_duration_since(*fetched_at) < self.ttl).then(|| region.clone())
    }

    pub fn insert(&self, bucket: &str, region: Option<String>, now: Instant) {
        let mut entries = self.lock();
        if entries.len() >= MAX_BUCKET_ENTRIES {
            entries.clear();
        }
        entries.insert(bucket.to_owned(), (region, now));
    }

    /// Forgets `bucket` (a region answered 404 NoSuchBucket or 301, or the bucket was created or
    /// deleted through this edge).
    pub fn invalidate(&self, bucket: &str) {
        self.lock().remove(bucket);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object(etag: &str, body_bytes: usize) -> CachedObject {
        CachedObject {
            etag: etag.into(),
            headers: vec![("content-type".into(), "text/plain".into())],
            body: Bytes::from(vec![7u8; body_bytes]),
        }
    }

    const TTL: Duration = Duration::from_secs(2);

    #[test]
    fn entries_are_fresh_for_known_readers_within_the_ttl_only() {
        let cache = HotObjectCache::new(1 << 20, 1 << 16);
        let start = Instant::now();
        assert!(cache.lookup("b", "k", "alice", TTL, start).is_none());
        assert!(cache.insert("b", "k", object("\"e1\"", 100), "alice", start));
        let hit = cache.lookup("b", "k", "alice", TTL, start + Duration::from_millis(1_999));
        assert!(hit.unwrap().fresh_for_caller);
        // Past the bound: revalidate.
        let stale = cache.lookup("b", "k", "alice", TTL, start + TTL).unwrap();
        assert!(!stale.fresh_for_caller);
        // Another caller must be authorised by the origin first.
        assert!(
            !cache
                .lookup("b", "k", "bob", TTL, start)
                .unwrap()
                .fresh_for_caller
        );
        cache.revalidated("b", "k", "\"e1\"", "bob", start + TTL);
        assert!(
            cache
                .lookup("b", "k", "bob", TTL, start + TTL)
                .unwrap()
                .fresh_for_caller
        );
        assert!(
            cache
                .lookup("b", "k", "alice", TTL, start + TTL)
                .unwrap()
                .fresh_for_caller
        );
        // A 304 for an ETag the entry no longer has changes nothing.
        cache.revalidated("b", "k", "\"old\"", "carol", start + TTL * 5);
        assert!(
            !cache
                .lookup("b", "k", "carol", TTL, start + TTL * 5)
                .unwrap()
                .fresh_for_caller
        );
        // TTL 0: always revalidate.
        assert!(
            !cache
                .lookup("b", "k", "alice", Duration::ZERO, start)
                .unwrap()
                .fresh_for_caller
        );
    }

    #[test]
    fn capacity_is_a_byte_bound_with_lru_eviction() {
        let entry_bytes = object("\"e\"", 1_000).size_bytes("b", "k0");
        let cache = HotObjectCache::new(entry_bytes * 3, 1_000);
        let now = Instant::now();
        for index in 0..3 {
            assert!(cache.insert("b", &format!("k{index}"), object("\"e\"", 1_000), "a", now));
        }
        assert_eq!(cache.usage(), (3, entry_bytes * 3));
        // Touch k0 so k1 is the least recently used.
        cache.lookup("b", "k0", "a", TTL, now);
        assert!(cache.insert("b", "k3", object("\"e\"", 1_000), "a", now));
        assert!(cache.lookup("b", "k1", "a", TTL, now).is_none());
        assert!(cache.lookup("b", "k0", "a", TTL, now).is_some());
        assert_eq!(cache.usage(), (3, entry_bytes * 3));
        // Too large: refused, and the older entry for the key is gone.
        assert!(!cache.insert("b", "k0", object("\"e\"", 1_001), "a", now));
        assert!(cache.lookup("b", "k0", "a", TTL, now).is_none());
        assert_eq!(cache.usage().0, 2);
    }

    #[test]
    fn removal_by_key_and_by_bucket() {
        let cache = HotObjectCache::new(1 << 20, 1 << 16);
        let now = Instant::now();
        for (bucket, key) in [("a", "1"), ("a", "2"), ("b", "1")] {
            cache.insert(bucket, key, object("\"e\"", 10), "r", now);
        }
        cache.remove("a", "1");
        assert!(cache.lookup("a", "1", "r", TTL, now).is_none());
        cache.remove_bucket("a");
        assert!(cache.lookup("a", "2", "r", TTL, now).is_none());
        assert!(cache.lookup("b", "1", "r", TTL, now).is_some());
        assert_eq!(cache.usage().0, 1);
    }

    #[test]
    fn bucket_regions_expire_and_overrides_win() {
        let cache = BucketRegionCache::new(
            Duration::from_secs(30),
            BTreeMap::from([("pinned".to_owned(), "eu".to_owned())]),
        );
        let now = Instant::now();
        assert_eq!(cache.get("b", now), None);
        cache.insert("b", Some("us".into()), now);
        cache.insert("gone", None, now);
        assert_eq!(cache.get("b", now), Some(Some("us".into())));
        assert_eq!(cache.get("gone", now), Some(None));
        assert_eq!(cache.get("b", now + Duration::from_secs(30)), None);
        cache.invalidate("gone");
        assert_eq!(cache.get("gone", now), None);
        cache.insert("pinned", Some("us".into()), now);
        assert_eq!(cache.get("pinned", now), Some(Some("eu".into())));
    }
}
