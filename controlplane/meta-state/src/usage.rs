//! Exact per-bucket usage of one state machine instance (one object partition), for quotas.
//!
//! Model: `usage[bucket]` is a derived index, like `current` and `tokens`: it is not part of the
//! snapshot, `StateMachine::rebuild_indexes` recomputes it from `versions` and `uploads` when a
//! snapshot is loaded, and every command that adds, removes or changes a version or an upload
//! keeps it up to date in O(1) (one subtraction of what the record counted before, one addition
//! of what it counts after). `check_invariants` compares the maintained index with a rebuilt one
//! after every command in the tests, so a mutation site that forgot the index fails there.
//!
//! What is counted is what a bucket stores and AWS would bill:
//! - every COMMITTED version that is not a delete marker, current or noncurrent (`object_count`,
//!   `object_bytes`, the client-visible size: not the erasure-coded or encrypted stored size);
//! - delete markers separately (`delete_marker_count`; they hold no data and quotas do not limit
//!   them, so a delete is never refused);
//! - PREPARING versions (`preparing_count`, `preparing_bytes`: PUTs and copies whose data is being
//!   written; a rolled-back or aborted prepare stops counting when it is removed);
//! - the stored parts of multipart uploads in progress (`upload_count`, `part_count`,
//!   `part_bytes`; a replaced part counts once, with its new size; a completion moves the listed
//!   parts' bytes into the new version and drops the unlisted ones; an abort drops them all).
//!
//! Invariant: an entry exists only for a bucket with something counted (no all-zero entries), so
//! the maintained index and a rebuilt one are equal maps.

use crate::machine::StateMachine;
use crate::records::{MultipartUpload, ObjectRecord, PartRecord, TransactionState};

/// What one partition (or, summed, a whole region) holds of one bucket.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct BucketStats {
    /// COMMITTED versions that are not delete markers (current and noncurrent).
    pub object_count: u64,
    /// Their sizes, in bytes as clients see them.
    pub object_bytes: u64,
    pub delete_marker_count: u64,
    /// PREPARING versions (writes in flight, or crashed ones the janitor has not rolled back).
    pub preparing_count: u64,
    /// Their declared sizes.
    pub preparing_bytes: u64,
    /// Multipart uploads in progress.
    pub upload_count: u64,
    /// Stored parts of those uploads.
    pub part_count: u64,
    pub part_bytes: u64,
}

impl BucketStats {
    /// The bytes a byte quota limits: committed versions, writes in flight and stored parts.
    pub fn quota_bytes(&self) -> u64 {
        self.object_bytes
            .saturating_add(self.preparing_bytes)
            .saturating_add(self.part_bytes)
    }

    /// The objects an object quota limits: committed versions and writes in flight (each of
    /// which becomes a version when it commits).
    pub fn quota_objects(&self) -> u64 {
        self.object_count.saturating_add(self.preparing_count)
    }

    /// Field-wise sum (of the partitions' answers). Saturating: a sum past 2^64 cannot be stored.
    pub fn plus(&self, other: &BucketStats) -> BucketStats {
        BucketStats {
            object_count: self.object_count.saturating_add(other.object_count),
            object_bytes: self.object_bytes.saturating_add(other.object_bytes),
            delete_marker_count: self
                .delete_marker_count
                .saturating_add(other.delete_marker_count),
            preparing_count: self.preparing_count.saturating_add(other.preparing_count),
            preparing_bytes: self.preparing_bytes.saturating_add(other.preparing_bytes),
            upload_count: self.upload_count.saturating_add(other.upload_count),
            part_count: self.part_count.saturating_add(other.part_count),
            part_bytes: self.part_bytes.saturating_add(other.part_bytes),
        }
    }

    /// Field-wise difference; the index only ever subtracts what it added before, so a field
    /// going below zero is a bug (debug builds assert; release saturates).
    fn minus(&self, other: &BucketStats) -> BucketStats {
        let sub = |left: u64, right: u64| {
            debug_assert!(left >= right, "usage index underflow");
            left.saturating_sub(right)
        };
        BucketStats {
            object_count: sub(self.object_count, other.object_count),
            object_bytes: sub(self.object_bytes, other.object_bytes),
            delete_marker_count: sub(self.delete_marker_count, other.delete_marker_count),
            preparing_count: sub(self.preparing_count, other.preparing_count),
            preparing_bytes: sub(self.preparing_bytes, other.preparing_bytes),
            upload_count: sub(self.upload_count, other.upload_count),
            part_count: sub(self.part_count, other.part_count),
            part_bytes: sub(self.part_bytes, other.part_bytes),
        }
    }

    /// What one version in `versions` counts.
    pub(crate) fn of_version(record: &ObjectRecord) -> BucketStats {
        match record.state {
            TransactionState::Preparing => BucketStats {
                preparing_count: 1,
                preparing_bytes: record.size_bytes,
                ..Default::default()
            },
            TransactionState::Committed if record.delete_marker => BucketStats {
                delete_marker_count: 1,
                ..Default::default()
            },
            TransactionState::Committed => BucketStats {
                object_count: 1,
                object_bytes: record.size_bytes,
                ..Default::default()
            },
            TransactionState::Deleted => BucketStats::default(),
        }
    }

    /// What one upload in progress counts (its parts included).
    pub(crate) fn of_upload(upload: &MultipartUpload) -> BucketStats {
        BucketStats {
            upload_count: 1,
            part_count: upload.parts.len() as u64,
            part_bytes: upload
                .parts
                .values()
                .fold(0u64, |sum, part| sum.saturating_add(part.size_bytes)),
            ..Default::default()
        }
    }

    /// What one stored part counts.
    pub(crate) fn of_part(part: &PartRecord) -> BucketStats {
        BucketStats {
            part_count: 1,
            part_bytes: part.size_bytes,
            ..Default::default()
        }
    }
}

impl StateMachine {
    /// Adds what a record now in the state counts to its bucket's usage.
    pub(crate) fn usage_add(&mut self, bucket: &str, stats: BucketStats) {
        if stats == BucketStats::default() {
            return;
        }
        let entry = self.usage.entry(bucket.to_owned()).or_default();
        *entry = entry.plus(&stats);
    }

    /// Subtracts what a record leaving the state (or about to change) counted.
    pub(crate) fn usage_remove(&mut self, bucket: &str, stats: BucketStats) {
        if stats == BucketStats::default() {
            return;
        }
        let Some(entry) = self.usage.get_mut(bucket) else {
            // Nothing was added for this bucket: the index is already wrong, which
            // `check_invariants` reports; there is nothing sensible to subtract from.
            return;
        };
        *entry = entry.minus(&stats);
        if *entry == BucketStats::default() {
            self.usage.remove(bucket);
        }
    }

    /// This partition's usage of `bucket` (all zero when it holds nothing of it).
    pub(crate) fn bucket_stats(&self, bucket: &str) -> BucketStats {
        self.usage.get(bucket).copied().unwrap_or_default()
    }

    /// Recomputes the whole index from `versions` and `uploads` (after loading a snapshot, and
    /// in `check_invariants`).
    pub(crate) fn rebuild_usage(&mut self) {
        let mut usage: std::collections::BTreeMap<String, BucketStats> = Default::default();
        for ((bucket, _, _), record) in &self.versions {
            let stats = BucketStats::of_version(record);
            if stats != BucketStats::default() {
                let entry = usage.entry(bucket.clone()).or_default();
                *entry = entry.plus(&stats);
            }
        }
        for ((bucket, _, _), upload) in &self.uploads {
            let entry = usage.entry(bucket.clone()).or_default();
            *entry = entry.plus(&BucketStats::of_upload(upload));
        }
        self.usage = usage;
    }
}
