//! The scrubber's orphan scan: pieces on storage nodes that no metadata names, removed after a
//! grace period.
//!
//! # Model
//!
//! A scan first reads what the metadata knows, then lists every node's pieces:
//!
//! - **referenced**: (node, shard id) pairs in a committed version's shard map;
//! - **protected**: every piece whose object id belongs to a PREPARING version (of any age: the
//!   janitor owns writes past its timeout), to an open multipart upload, or to a garbage entry
//!   (the janitor deletes those and then purges the entry).
//!
//! Any other piece is an orphan candidate (a part upload that crashed before it was recorded, a
//! stripe re-placed on an alternate node, a piece a returning node still holds). A candidate is
//! deleted only once it has been a candidate for `grace` in scans whose metadata listing was
//! taken after it was first seen. Object ids derive from log indexes and never repeat, so a
//! piece seen before a listing belongs to a version created before it: if that version still
//! existed, the listing would name or protect the piece. The grace period is the margin for a
//! concurrent healer's moves and for clock-free safety against any write path this argument
//! missed. [`classify`] is the pure rule; the I/O lives in the healer's pass.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use cairn_common::ShardId;

/// What the metadata knows, as the orphan rule needs it.
#[derive(Clone, Debug, Default)]
pub struct KnownShards {
    /// (node id, shard id) of every piece a committed shard map names.
    pub referenced: BTreeSet<(u64, ShardId)>,
    /// Object ids whose pieces are never orphans (PREPARING, open uploads, garbage).
    pub protected_objects: BTreeSet<u128>,
}

impl KnownShards {
    pub fn is_known(&self, node_id: u64, shard_id: ShardId) -> bool {
        self.referenced.contains(&(node_id, shard_id))
            || self.protected_objects.contains(&shard_id.object_id())
    }
}

/// Most candidates remembered at once (a bound on memory; more wait for later scans).
pub const MAX_CANDIDATES: usize = 100_000;

/// Candidates by (node id, shard id) with the time each was first seen unreferenced.
#[derive(Debug, Default)]
pub struct OrphanCandidates {
    first_seen: BTreeMap<(u64, ShardId), Instant>,
}

/// What [`classify`] says of one listed piece.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Known,
    /// An orphan candidate, not yet past the grace period (`true` when first seen now).
    Candidate {
        new: bool,
    },
    /// An orphan past the grace period: delete it.
    Delete,
}

/// Classifies one piece listed on `node_id` at `now`.
pub fn classify(
    candidates: &mut OrphanCandidates,
    known: &KnownShards,
    node_id: u64,
    shard_id: ShardId,
    now: Instant,
    grace: Duration,
) -> Verdict {
    let entry_key = (node_id, shard_id);
    if known.is_known(node_id, shard_id) {
        candidates.first_seen.remove(&entry_key);
        return Verdict::Known;
    }
    match candidates.first_seen.get(&entry_key) {
        Some(first_seen) if now.saturating_duration_since(*first_seen) >= grace => {
            candidates.first_seen.remove(&entry_key);
            Verdict::Delete
        }
        Some(_) => Verdict::Candidate { new: false },
        None => {
            if candidates.first_seen.len() < MAX_CANDIDATES {
                candidates.first_seen.insert(entry_key, now);
            }
            Verdict::Candidate { new: true }
        }
    }
}

impl OrphanCandidates {
    pub fn len(&self) -> usize {
        self.first_seen.len()
    }

    pub fn is_empty(&self) -> bool {
        self.first_seen.is_empty()
    }

    /// Forgets candidates on `node_id` that its latest listing no longer holds.
    pub fn retain_listed(&mut self, node_id: u64, listed: &BTreeSet<ShardId>) {
        self.first_seen
            .retain(|(node, shard_id), _| *node != node_id || listed.contains(shard_id));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cairn_common::ShardIndex;

    fn shard(object_id: u128, index: u16) -> ShardId {
        ShardId::new(object_id, 1, 0, ShardIndex(index))
    }

    #[test]
    fn referenced_and_protected_pieces_are_never_candidates() {
        let mut known = KnownShards::default();
        known.referenced.insert((1, shard(10, 0)));
        known.protected_objects.insert(20);
        let mut candidates = OrphanCandidates::default();
        let now = Instant::now();
        let later = now + Duration::from_secs(3600);
        for at in [now, later] {
            assert_eq!(
                classify(&mut candidates, &known, 1, shard(10, 0), at, Duration::ZERO),
                Verdict::Known
            );
            assert_eq!(
                classify(&mut candidates, &known, 2, shard(20, 5), at, Duration::ZERO),
                Verdict::Known
            );
        }
        // The same committed object's piece on a node its map does not name is not referenced.
        assert_eq!(
            classify(
                &mut candidates,
                &known,
                2,
                shard(10, 0),
                now,
                Duration::ZERO
            ),
            Verdict::Candidate { new: true }
        );
    }

    #[test]
    fn a_candidate_is_deleted_only_after_the_grace_period_and_forgotten_once_known() {
        let grace = Duration::from_secs(60);
        let mut known = KnownShards::default();
        let mut candidates = OrphanCandidates::default();
        let start = Instant::now();
        let piece = shard(30, 1);
        assert_eq!(
            classify(&mut candidates, &known, 1, piece, start, grace),
            Verdict::Candidate { new: true }
        );
        assert_eq!(
            classify(&mut candidates, &known, 1, piece, start + grace / 2, grace),
            Verdict::Candidate { new: false }
        );
        // Named by the metadata meanwhile (a write that committed): no longer a candidate.
        known.protected_objects.insert(30);
        assert_eq!(
            classify(&mut candidates, &known, 1, piece, start + grace, grace),
            Verdict::Known
        );
        assert!(candidates.is_empty());
        known.protected_objects.clear();
        let restart = start + grace * 2;
        assert_eq!(
            classify(&mut candidates, &known, 1, piece, restart, grace),
            Verdict::Candidate { new: true }
        );
        assert_eq!(
            classify(&mut candidates, &known, 1, piece, restart + grace, grace),
            Verdict::Delete
        );
        assert!(candidates.is_empty());
    }

    #[test]
    fn candidates_gone_from_a_node_are_forgotten() {
        let mut candidates = OrphanCandidates::default();
        let known = KnownShards::default();
        let now = Instant::now();
        classify(&mut candidates, &known, 1, shard(1, 0), now, Duration::ZERO);
        classify(&mut candidates, &known, 2, shard(1, 1), now, Duration::ZERO);
        candidates.retain_listed(1, &BTreeSet::new());
        assert_eq!(candidates.len(), 1);
    }
}
