//! A fixed-size set of shard indices (0..=254), `Copy` and allocation-free, so the decoder can
//! track present / missing / requested shards per stripe without touching the heap.

use crate::scheme::MAX_TOTAL_SHARDS;
use std::fmt;

/// Index of a shard within a stripe: `0..k` are data shards, `k..k+m` parity shards.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ShardIndex(pub u8);

impl ShardIndex {
    pub fn get(self) -> usize {
        usize::from(self.0)
    }
}

impl fmt::Display for ShardIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "shard {}", self.0)
    }
}

/// Set of shard indices below [`MAX_TOTAL_SHARDS`] (a 256-bit bitmap).
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct ShardSet {
    words: [u64; 4],
}

const _: () = assert!(MAX_TOTAL_SHARDS <= 256);

impl ShardSet {
    pub const EMPTY: ShardSet = ShardSet { words: [0; 4] };

    /// The set `{start, .., end - 1}`.
    pub fn range(start: usize, end: usize) -> ShardSet {
        let mut set = ShardSet::EMPTY;
        for index in start..end {
            set.insert(index);
        }
        set
    }

    pub fn insert(&mut self, index: usize) {
        assert!(index < MAX_TOTAL_SHARDS, "shard index {index} out of range");
        self.words[index / 64] |= 1 << (index % 64);
    }

    pub fn remove(&mut self, index: usize) {
        if index < MAX_TOTAL_SHARDS {
            self.words[index / 64] &= !(1 << (index % 64));
        }
    }

    pub fn contains(&self, index: usize) -> bool {
        index < MAX_TOTAL_SHARDS && self.words[index / 64] & (1 << (index % 64)) != 0
    }

    pub fn len(&self) -> usize {
        self.words.iter().map(|w| w.count_ones() as usize).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.words == [0; 4]
    }

    pub fn union(&self, other: &ShardSet) -> ShardSet {
        let mut out = *self;
        for (word, other_word) in out.words.iter_mut().zip(other.words) {
            *word |= other_word;
        }
        out
    }

    pub fn intersection(&self, other: &ShardSet) -> ShardSet {
        let mut out = *self;
        for (word, other_word) in out.words.iter_mut().zip(other.words) {
            *word &= other_word;
        }
        out
    }

    pub fn difference(&self, other: &ShardSet) -> ShardSet {
        let mut out = *self;
        for (word, other_word) in out.words.iter_mut().zip(other.words) {
            *word &= !other_word;
        }
        out
    }

    pub fn is_subset(&self, other: &ShardSet) -> bool {
        self.difference(other).is_empty()
    }

    /// Indices in increasing order.
    pub fn iter(&self) -> impl Iterator<Item = usize> + '_ {
        (0..MAX_TOTAL_SHARDS).filter(move |&index| self.contains(index))
    }
}

impl FromIterator<usize> for ShardSet {
    fn from_iter<I: IntoIterator<Item = usize>>(iter: I) -> Self {
        let mut set = ShardSet::EMPTY;
        for index in iter {
            set.insert(index);
        }
        set
    }
}

impl fmt::Debug for ShardSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shard_set_operations() {
        let a: ShardSet = [0, 3, 64, 200].into_iter().collect();
        let b = ShardSet::range(2, 65);
        assert_eq!(a.len(), 4);
        assert_eq!(a.intersection(&b).iter().collect::<Vec<_>>(), vec![3, 64]);
        assert_eq!(a.difference(&b).iter().collect::<Vec<_>>(), vec![0, 200]);
        assert_eq!(a.union(&b).len(), 65);
        assert!(ShardSet::range(3, 5).is_subset(&b));
        let mut c = a;
        c.remove(200);
        assert!(!c.contains(200) && c.contains(64));
        assert!(ShardSet::EMPTY.is_empty());
    }
}
