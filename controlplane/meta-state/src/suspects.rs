//! The suspect-object queue of an object partition: versions whose pieces a reader found
//! missing, unreadable or failing their checksum, waiting for the healer.
//!
//! Model: a gateway that had to decode around a bad piece on GET sends `ReportSuspect` for the
//! version; the healer lists the queue (`ListSuspects`) before and between its scrub passes,
//! verifies and repairs each listed version, then sends `ResolveSuspects`. The queue lives in the
//! partition that owns the key, so it is replicated and survives any one process, and a report
//! made through one gateway is seen by a healer in another process.
//!
//! Invariants:
//! - bounded: at most [`MAX_SUSPECTS`] entries per partition; a report beyond that is answered
//!   `queued: false` and changes nothing (the periodic scrub still finds the piece);
//! - deduplicated: one entry per (bucket, key, version id); a repeated report bumps its count and
//!   its `last_report_index` and keeps `first_reported_ms`;
//! - only COMMITTED versions are queued (a report for anything else is answered `queued: false`);
//! - idempotent resolution: `ResolveSuspects` removes an entry only when its `last_report_index`
//!   is the one the healer listed, so a report that arrived while the healer was at work keeps the
//!   entry for the next drain; unknown entries are ignored (a retried resolve).

use std::ops::Bound;

use crate::command::{Response, SuspectResolution};
use crate::machine::StateMachine;
use crate::records::{SuspectRecord, TransactionState, VersionId};

/// Most entries one partition's queue holds.
pub const MAX_SUSPECTS: usize = 10_000;

/// (bucket, key, version id): the queue's key.
pub(crate) type SuspectKey = (String, String, VersionId);

impl StateMachine {
    pub(crate) fn report_suspect(
        &mut self,
        bucket: String,
        key: String,
        version_id: VersionId,
        now_ms: u64,
        log_index: u64,
    ) -> Response {
        let committed = self
            .versions
            .get(&(bucket.clone(), key.clone(), version_id))
            .is_some_and(|record| record.state == TransactionState::Committed);
        if !committed {
            return Response::SuspectReported { queued: false };
        }
        let entry_key = (bucket, key, version_id);
        if let Some(entry) = self.suspects.get_mut(&entry_key) {
            entry.report_count = entry.report_count.saturating_add(1);
            entry.last_report_index = log_index;
            return Response::SuspectReported { queued: true };
        }
        if self.suspects.len() >= MAX_SUSPECTS {
            return Response::SuspectReported { queued: false };
        }
        let (bucket, key, version_id) = entry_key.clone();
        self.suspects.insert(
            entry_key,
            SuspectRecord {
                bucket,
                key,
                version_id,
                first_reported_ms: now_ms,
                last_report_index: log_index,
                report_count: 1,
            },
        );
        Response::SuspectReported { queued: true }
    }

    pub(crate) fn resolve_suspects(&mut self, resolutions: &[SuspectResolution]) -> Response {
        let mut resolved_count = 0u32;
        for resolution in resolutions {
            let entry_key = (
                resolution.bucket.clone(),
                resolution.key.clone(),
                resolution.version_id,
            );
            if self
                .suspects
                .get(&entry_key)
                .is_some_and(|entry| entry.last_report_index == resolution.last_report_index)
            {
                self.suspects.remove(&entry_key);
                resolved_count += 1;
            }
        }
        Response::SuspectsResolved { resolved_count }
    }

    /// Up to `limit` entries after `after` (exclusive), in key order.
    pub(crate) fn list_suspects(&self, after: Option<&SuspectKey>, limit: u32) -> Response {
        let lower = match after {
            Some(after) => Bound::Excluded(after.clone()),
            None => Bound::Unbounded,
        };
        Response::Suspects(
            self.suspects
                .range((lower, Bound::Unbounded))
                .take(limit as usize)
                .map(|(_, entry)| entry.clone())
                .collect(),
        )
    }
}
