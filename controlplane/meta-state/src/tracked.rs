//! A key space that remembers which of its keys changed, so the stored form of the state (see
//! [`crate::stored`]) is written incrementally instead of whole.
//!
//! Model: a [`TrackedMap`] is a `BTreeMap` plus the set of keys written or removed since the last
//! [`TrackedMap::take_changed`]. Reads go through `Deref` to the map; every way to change the
//! map is a method here that records the key first, and there is no `DerefMut`, so code that
//! changes a key space without recording it does not compile.
//!
//! A key is recorded when it *may* have changed (`get_mut` and `entry` record it even if the
//! caller then writes nothing): writing an unchanged record again is harmless, missing a changed
//! one is not. There is no whole-map mutable iteration: a pass that changes a few records finds
//! them first and takes each with `get_mut`, so only those are written again.

use std::borrow::Borrow;
use std::collections::BTreeSet;
use std::collections::btree_map::{self, BTreeMap};
use std::ops::Deref;

/// A `BTreeMap` that records changed keys (see the module header).
#[derive(Clone, Debug)]
pub struct TrackedMap<K: Ord, V> {
    map: BTreeMap<K, V>,
    changed: BTreeSet<K>,
}

impl<K: Ord + Clone, V> TrackedMap<K, V> {
    pub fn new() -> Self {
        TrackedMap {
            map: BTreeMap::new(),
            changed: BTreeSet::new(),
        }
    }

    pub fn insert(&mut self, key: K, value: V) -> Option<V> {
        self.changed.insert(key.clone());
        self.map.insert(key, value)
    }

    pub fn remove<Q>(&mut self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Ord + ToOwned<Owned = K> + ?Sized,
    {
        let removed = self.map.remove(key);
        if removed.is_some() {
            self.changed.insert(key.to_owned());
        }
        removed
    }

    pub fn get_mut<Q>(&mut self, key: &Q) -> Option<&mut V>
    where
        K: Borrow<Q>,
        Q: Ord + ToOwned<Owned = K> + ?Sized,
    {
        let value = self.map.get_mut(key)?;
        self.changed.insert(key.to_owned());
        Some(value)
    }

    pub fn entry(&mut self, key: K) -> btree_map::Entry<'_, K, V> {
        self.changed.insert(key.clone());
        self.map.entry(key)
    }

    /// The keys changed since the last call, each once; forgets them.
    pub fn take_changed(&mut self) -> BTreeSet<K> {
        std::mem::take(&mut self.changed)
    }
}

impl<K: Ord + Clone, V> Default for TrackedMap<K, V> {
    fn default() -> Self {
        TrackedMap::new()
    }
}

/// A map built whole (loaded from a snapshot or the store) has no changes yet.
impl<K: Ord, V> From<BTreeMap<K, V>> for TrackedMap<K, V> {
    fn from(map: BTreeMap<K, V>) -> Self {
        TrackedMap {
            map,
            changed: BTreeSet::new(),
        }
    }
}

impl<K: Ord, V> Deref for TrackedMap<K, V> {
    type Target = BTreeMap<K, V>;

    fn deref(&self) -> &BTreeMap<K, V> {
        &self.map
    }
}

/// Equal contents; what changed since the last write is bookkeeping, not state.
impl<K: Ord, V: PartialEq> PartialEq for TrackedMap<K, V> {
    fn eq(&self, other: &Self) -> bool {
        self.map == other.map
    }
}

impl<K: Ord, V: Eq> Eq for TrackedMap<K, V> {}

impl<'a, K: Ord, V> IntoIterator for &'a TrackedMap<K, V> {
    type Item = (&'a K, &'a V);
    type IntoIter = btree_map::Iter<'a, K, V>;

    fn into_iter(self) -> Self::IntoIter {
        self.map.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_change_is_recorded_once_and_taken() {
        let mut map: TrackedMap<u32, String> = TrackedMap::new();
        map.insert(1, "a".to_owned());
        map.insert(2, "b".to_owned());
        map.insert(1, "c".to_owned());
        assert_eq!(map.take_changed(), BTreeSet::from([1, 2]));
        assert!(map.take_changed().is_empty());
        // Removing an absent key changes nothing.
        assert_eq!(map.remove(&7), None);
        assert!(map.take_changed().is_empty());
        map.remove(&2);
        if let Some(value) = map.get_mut(&1) {
            value.push('!');
        }
        assert_eq!(map.get_mut(&9), None);
        assert_eq!(map.take_changed(), BTreeSet::from([1, 2]));
        map.entry(5).or_insert_with(|| "e".to_owned());
        assert_eq!(map.take_changed(), BTreeSet::from([5]));
        assert_eq!(map.get(&1).map(String::as_str), Some("c!"));
        // Equality ignores what is pending.
        let mut other: TrackedMap<u32, String> = TrackedMap::from(map.deref().clone());
        other.insert(1, "c!".to_owned());
        assert_eq!(map, other);
    }
}
