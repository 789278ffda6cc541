//! The janitor: rolls back stale PREPARING writes and deletes the shards of garbage entries.
//!
//! # Model
//!
//! The metadata state machine never deletes shards itself; every command that makes shards
//! unreachable (an overwrite, a delete, an aborted or rejected write, a replaced or discarded
//! multipart part) leaves a garbage entry in its partition naming them. One janitor pass, per
//! partition:
//!
//! 1. **Rollback**: `ListStalePreparing { created_before: now − prepare_timeout }` finds writes
//!    whose gateway died (or gave up) between PrepareWrite and CommitWrite; each gets an
//!    `AbortWrite` through Raft. AbortWrite succeeds only on a PREPARING record, so a write that
//!    committed meanwhile is left alone (the state machine answers WriteAlreadyCommitted), and the
//!    aborted record becomes a garbage entry like any other.
//! 2. **Collection**: `ListGarbage` pages through the entries; an entry older than
//!    `garbage_grace` has its shards deleted — by its shard map when it has one, otherwise (an
//!    aborted write has none) by scanning every storage node for shard ids with the write's object
//!    id — and once every deletion succeeded it is purged (`PurgeGarbage`). An entry whose nodes
//!    cannot all be reached stays for the next pass.
//!
//! The grace period covers shard writes still in flight for an entry that just appeared (a
//! gateway aborts as soon as a write fails, while pieces it already sent may still land): by then
//! every such put has finished or timed out, so the scan sees them.
//!
//! # Invariants
//!
//! - The janitor deletes only shards named by a garbage entry, and garbage entries name only
//!   shards no committed record references (the state machine's contract), so it never deletes a
//!   committed object's shards.
//! - Every step is idempotent: deleting an absent shard, aborting an aborted write and purging a
//!   purged entry are no-ops, so janitors may run concurrently, crash and rerun.
//!
//! The planning functions ([`plan_deletions`], [`object_scan_start`]) are pure; [`Janitor`] is
//! the thin I/O shell around them (metadata through [`MetaAccess`], shards through
//! [`ShardAccess`], so the deterministic simulator runs the same code).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use cairn_common::ShardId;
use cairn_meta_state::{
    AbortWrite, Command, GarbageId, GarbageReason, GarbageRecord, MetaError, Query, Response,
    VersionSelector, shard_object_id,
};
use cairn_raft::GroupId;
use cairn_storage_client::ClientError;

use crate::shared::{
    MetaAccess, MetaCallError, NodeConnections, RaftMeta, ShardAccess, render_counters,
};

/// How the janitor works; the defaults are production values.
#[derive(Clone, Debug)]
pub struct JanitorConfig {
    /// A PREPARING write older than this is rolled back (the default: one hour).
    pub prepare_timeout: Duration,
    /// A garbage entry is collected only once it is this old (covers in-flight shard puts).
    pub garbage_grace: Duration,
    /// Pause between passes.
    pub pass_interval: Duration,
    /// Records or entries asked for per metadata read.
    pub page_limit: u32,
    /// Shards asked for per storage-node scan request.
    pub scan_page_limit: u32,
}

impl Default for JanitorConfig {
    fn default() -> Self {
        JanitorConfig {
            prepare_timeout: Duration::from_secs(3600),
            garbage_grace: Duration::from_secs(120),
            pass_interval: Duration::from_secs(30),
            page_limit: 256,
            scan_page_limit: 1024,
        }
    }
}

/// What the janitor must delete for one garbage entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DeletionPlan {
    /// The entry has a shard map: exactly these shards on these nodes.
    Known(Vec<(u64, ShardId)>),
    /// No shard map (an aborted or rejected write): every shard whose id carries `object_id`, on
    /// whichever node holds it.
    ScanForObject { object_id: u128 },
}

/// The shards of `garbage`, which was listed by partition `partition_index` (0-based).
pub fn plan_deletions(garbage: &GarbageRecord, partition_index: u32) -> DeletionPlan {
    let Some(name_id) = garbage.shard_name_id() else {
        return DeletionPlan::Known(Vec::new());
    };
    let object_id = shard_object_id(partition_index, name_id);
    if garbage.parts.is_empty() {
        return DeletionPlan::ScanForObject { object_id };
    }
    let mut shards = Vec::new();
    for part in &garbage.parts {
        for (block_index, block) in part.blocks.iter().enumerate() {
            for (&shard_index, placement) in &block.shards {
                shards.push((
                    placement.node_id.0,
                    ShardId::new(object_id, part.part_number, block_index as u32, shard_index),
                ));
            }
        }
    }
    DeletionPlan::Known(shards)
}

/// The `after` argument that makes a node's scan start at the first shard of `object_id`: the
/// largest id below every id with that object id (`None`, scan from the start, for object 0).
/// Shard ids order bytewise with the object id first, so the object's shards follow at once.
pub fn object_scan_start(object_id: u128) -> Option<ShardId> {
    let previous = object_id.checked_sub(1)?;
    let mut bytes = [0xFF; ShardId::LEN];
    bytes[0..16].copy_from_slice(&previous.to_be_bytes());
    Some(ShardId(bytes))
}

/// How a janitor pass fails: a metadata call (the workers' shared [`MetaCallError`]) or a
/// storage node.
#[derive(Debug, thiserror::Error)]
pub enum JanitorError {
    #[error(transparent)]
    Meta(#[from] MetaCallError),
    #[error("storage node {node_id}: {error}")]
    Storage { node_id: u64, error: ClientError },
}

impl From<cairn_raft::ClientError> for JanitorError {
    fn from(error: cairn_raft::ClientError) -> Self {
        JanitorError::Meta(MetaCallError::Meta(error))
    }
}

/// Counters since start (Prometheus counters in [`JanitorStats::render_metrics`]).
#[derive(Debug, Default)]
pub struct JanitorStats {
    pub passes: AtomicU64,
    pub stale_writes_aborted: AtomicU64,
    pub garbage_entries_purged: AtomicU64,
    pub shards_deleted: AtomicU64,
    /// Passes (or entries) that hit an error and will be retried.
    pub errors: AtomicU64,
}

impl JanitorStats {
    pub fn render_metrics(&self) -> String {
        let counters: [(&str, &str, &AtomicU64); 5] = [
            (
                "cairn_janitor_passes_total",
                "Janitor passes finished.",
                &self.passes,
            ),
            (
                "cairn_janitor_stale_writes_aborted_total",
                "PREPARING writes older than the timeout rolled back.",
                &self.stale_writes_aborted,
            ),
            (
                "cairn_janitor_garbage_entries_purged_total",
                "Garbage entries whose shards were deleted and which were purged.",
                &self.garbage_entries_purged,
            ),
            (
                "cairn_janitor_shards_deleted_total",
                "Shards deleted from storage nodes (that existed).",
                &self.shards_deleted,
            ),
            (
                "cairn_janitor_errors_total",
                "Errors met (the work is retried on the next pass).",
                &self.errors,
            ),
        ];
        render_counters(&counters)
    }
}

/// What one pass did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PassReport {
    pub stale_writes_aborted: u64,
    pub garbage_entries_purged: u64,
    pub shards_deleted: u64,
    /// Entries left for a later pass (too young, or a node unreachable).
    pub garbage_entries_deferred: u64,
}

/// The janitor's I/O shell: blocking calls, so it lives on a plain thread of its own
/// ([`Janitor::run_forever`]).
pub struct Janitor<M: MetaAccess, S: ShardAccess> {
    meta: M,
    shards: S,
    config: JanitorConfig,
    stats: Arc<JanitorStats>,
}

impl<M: MetaAccess, S: ShardAccess> Janitor<M, S> {
    pub fn new(meta: M, shards: S, config: JanitorConfig) -> Self {
        Janitor {
            meta,
            shards,
            config,
            stats: Arc::new(JanitorStats::default()),
        }
    }

    pub fn stats(&self) -> Arc<JanitorStats> {
        self.stats.clone()
    }

    /// Passes forever, `pass_interval` apart; errors are logged and counted, never fatal.
    pub fn run_forever(mut self) -> ! {
        loop {
            match self.run_pass(now_unix_millis()) {
                Ok(report) => {
                    if report != PassReport::default() {
                        tracing::info!(?report, "janitor pass");
                    }
                }
                Err(error) => {
                    self.stats.errors.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(%error, "janitor pass failed; retrying next pass");
                }
            }
            std::thread::sleep(self.config.pass_interval);
        }
    }

    /// One pass over every partition at wall-clock time `now_ms`.
    pub fn run_pass(&mut self, now_ms: u64) -> Result<PassReport, JanitorError> {
        let mut report = PassReport::default();
        for group in self.meta.partitions() {
            self.roll_back_stale_writes(group, now_ms, &mut report)?;
            self.collect_garbage(group, now_ms, &mut report)?;
        }
        self.stats.passes.fetch_add(1, Ordering::Relaxed);
        Ok(report)
    }

    fn roll_back_stale_writes(
        &mut self,
        group: GroupId,
        now_ms: u64,
        report: &mut PassReport,
    ) -> Result<(), JanitorError> {
        let created_before_ms =
            now_ms.saturating_sub(self.config.prepare_timeout.as_millis() as u64);
        loop {
            let query = Query::ListStalePreparing {
                created_before_ms,
                limit: self.config.page_limit,
            };
            let records = match self.meta.read_from(group, query)? {
                Ok(Response::Objects(records)) => records,
                Ok(_) => return Err(MetaCallError::UnexpectedAnswer("ListStalePreparing").into()),
                Err(error) => {
                    return Err(MetaCallError::Refused {
                        command: "ListStalePreparing",
                        error,
                    }
                    .into());
                }
            };
            let full_page = records.len() as u32 >= self.config.page_limit;
            let mut progressed = false;
            for record in records {
                let command = Command::AbortWrite(AbortWrite {
                    bucket: record.bucket.clone(),
                    key: record.key.clone(),
                    version_id: record.version_id,
                    now_ms,
                });
                let output = self.meta.write_to(group, command)?;
                match output.result {
                    Ok(_) => {
                        progressed = true;
                        report.stale_writes_aborted += 1;
                        self.stats
                            .stale_writes_aborted
                            .fetch_add(1, Ordering::Relaxed);
                        tracing::info!(
                            bucket = record.bucket,
                            key = record.key,
                            version_id = %record.version_id,
                            "rolled back a stale PREPARING write"
                        );
                    }
                    // Committed or aborted by its gateway since the listing: nothing to do.
                    Err(
                        MetaError::WriteAlreadyCommitted { .. } | MetaError::NoSuchWrite { .. },
                    ) => {}
                    Err(error) => {
                        return Err(MetaCallError::Refused {
                            command: "AbortWrite",
                            error,
                        }
                        .into());
                    }
                }
            }
            if !full_page || !progressed {
                return Ok(());
            }
        }
    }

    fn collect_garbage(
        &mut self,
        group: GroupId,
        now_ms: u64,
        report: &mut PassReport,
    ) -> Result<(), JanitorError> {
        // Partition groups are numbered 1..=P; shard object ids use the 0-based index.
        let partition_index = (group.0 - 1) as u32;
        let grace_ms = self.config.garbage_grace.as_millis() as u64;
        let mut after: Option<GarbageId> = None;
        loop {
            let query = Query::ListGarbage {
                after,
                limit: self.config.page_limit,
            };
            let entries = match self.meta.read_from(group, query)? {
                Ok(Response::Garbage(entries)) => entries,
                Ok(_) => return Err(MetaCallError::UnexpectedAnswer("ListGarbage").into()),
                Err(error) => {
                    return Err(MetaCallError::Refused {
                        command: "ListGarbage",
                        error,
                    }
                    .into());
                }
            };
            let full_page = entries.len() as u32 >= self.config.page_limit;
            after = entries.last().map(|entry| entry.garbage_id);
            let mut collected = Vec::new();
            for entry in &entries {
                if entry.created_at_ms.saturating_add(grace_ms) > now_ms {
                    report.garbage_entries_deferred += 1;
                    continue;
                }
                match self.delete_shards(entry, partition_index) {
                    Ok(deleted) => {
                        report.shards_deleted += deleted;
                        collected.push(entry.garbage_id);
                    }
                    Err(error) => {
                        // Typically a node that is down: the entry waits for the next pass.
                        self.stats.errors.fetch_add(1, Ordering::Relaxed);
                        report.garbage_entries_deferred += 1;
                        tracing::warn!(
                            %error,
                            bucket = entry.bucket,
                            key = entry.key,
                            "garbage entry kept for the next pass"
                        );
                    }
                }
            }
            if !collected.is_empty() {
                let count = collected.len() as u64;
                let command = Command::PurgeGarbage {
                    garbage_ids: collected,
                };
                let output = self.meta.write_to(group, command)?;
                if let Err(error) = output.result {
                    return Err(MetaCallError::Refused {
                        command: "PurgeGarbage",
                        error,
                    }
                    .into());
                }
                report.garbage_entries_purged += count;
                self.stats
                    .garbage_entries_purged
                    .fetch_add(count, Ordering::Relaxed);
            }
            if !full_page {
                return Ok(());
            }
        }
    }

    /// For a healer's move: the (node, shard) pairs the version's current map still uses. A shard
    /// keeps its name when it moves, so a later heal may put it back on a node an older move's
    /// garbage entry names; that copy is live and must stay. Other reasons name versions or
    /// parts that no longer exist, so nothing of theirs is referenced.
    fn still_referenced(
        &mut self,
        entry: &GarbageRecord,
        partition_index: u32,
    ) -> Result<std::collections::BTreeSet<(u64, ShardId)>, JanitorError> {
        let (GarbageReason::ShardsMoved, Some(version_id)) = (entry.reason, entry.version_id)
        else {
            return Ok(Default::default());
        };
        let query = Query::GetObject {
            bucket: entry.bucket.clone(),
            key: entry.key.clone(),
            version: VersionSelector::Id(version_id),
        };
        let record = match self.meta.read(query)? {
            Ok(Response::Object(record)) => record,
            _ => return Ok(Default::default()),
        };
        let current = GarbageRecord {
            parts: record.erasure.parts.clone(),
            ..entry.clone()
        };
        Ok(match plan_deletions(&current, partition_index) {
            DeletionPlan::Known(shards) => shards.into_iter().collect(),
            DeletionPlan::ScanForObject { .. } => Default::default(),
        })
    }

    /// Deletes every shard of `entry`; returns how many existed.
    fn delete_shards(
        &mut self,
        entry: &GarbageRecord,
        partition_index: u32,
    ) -> Result<u64, JanitorError> {
        let mut deleted = 0;
        match plan_deletions(entry, partition_index) {
            DeletionPlan::Known(shards) => {
                let still_referenced = self.still_referenced(entry, partition_index)?;
                for (node_id, shard_id) in shards {
                    if still_referenced.contains(&(node_id, shard_id)) {
                        continue;
                    }
                    deleted += u64::from(
                        self.shards
                            .delete(node_id, shard_id)
                            .map_err(|error| JanitorError::Storage { node_id, error })?,
                    );
                }
            }
            DeletionPlan::ScanForObject { object_id } => {
                for node_id in self.shards.node_ids() {
                    let mut after = object_scan_start(object_id);
                    loop {
                        let page = self
                            .shards
                            .scan(node_id, after, self.config.scan_page_limit)
                            .map_err(|error| JanitorError::Storage { node_id, error })?;
                        let mut past_object = page.next_after.is_none();
                        for shard in &page.entries {
                            if shard.shard_id.object_id() != object_id {
                                past_object = true;
                                break;
                            }
                            deleted += u64::from(
                                self.shards
                                    .delete(node_id, shard.shard_id)
                                    .map_err(|error| JanitorError::Storage { node_id, error })?,
                            );
                        }
                        if past_object {
                            break;
                        }
                        after = page.next_after;
                    }
                }
            }
        }
        self.stats
            .shards_deleted
            .fetch_add(deleted, Ordering::Relaxed);
        Ok(deleted)
    }
}

fn now_unix_millis() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_millis() as u64)
}

/// Starts a janitor on its own thread over the storage nodes `nodes` (id → address). Returns its
/// counters.
pub fn spawn_janitor(
    meta: cairn_raft::MetaClientConfig,
    nodes: BTreeMap<u64, SocketAddr>,
    config: JanitorConfig,
) -> std::io::Result<Arc<JanitorStats>> {
    let store = NodeConnections::new(nodes, Duration::from_secs(10)).with_tls(
        meta.identity
            .as_ref()
            .map(|identity| identity.client_config()),
    );
    let janitor = Janitor::new(RaftMeta::new(meta)?, store, config);
    let stats = janitor.stats();
    std::thread::Builder::new()
        .name("janitor".into())
        .spawn(move || janitor.run_forever())?;
    Ok(stats)
}

#[cfg(test)]
mod tests {
    use super::*;
    use cairn_meta_state::{
        BlockShards, GarbageReason, NodeId, PartShards, ShardIndex, ShardPlacement, UploadId,
        VersionId,
    };

    fn garbage(parts: Vec<PartShards>, upload_id: Option<UploadId>) -> GarbageRecord {
        GarbageRecord {
            garbage_id: GarbageId {
                log_index: 9,
                sequence: 0,
            },
            reason: GarbageReason::Deleted,
            bucket: "b".into(),
            key: "k".into(),
            version_id: Some(VersionId(77)),
            upload_id,
            ec_scheme: "isal-cauchy:2+1".into(),
            parts,
            created_at_ms: 1,
        }
    }

    fn block(nodes: &[(u16, u64)]) -> BlockShards {
        BlockShards {
            length_bytes: 10,
            shards: nodes
                .iter()
                .map(|&(index, node)| {
                    (
                        ShardIndex(index),
                        ShardPlacement {
                            node_id: NodeId(node),
                            availability_zone: "az".into(),
                            crc32c: 0,
                        },
                    )
                })
                .collect(),
        }
    }

    #[test]
    fn a_shard_map_names_every_shard_of_every_block_and_part() {
        let parts = vec![
            PartShards {
                part_number: 1,
                length_bytes: 20,
                blocks: vec![block(&[(0, 5), (1, 6), (2, 7)]), block(&[(0, 6), (2, 5)])],
            },
            PartShards {
                part_number: 3,
                length_bytes: 10,
                blocks: vec![block(&[(1, 9)])],
            },
        ];
        let object_id = shard_object_id(2, 77);
        let id = |part, block, shard| ShardId::new(object_id, part, block, ShardIndex(shard));
        assert_eq!(
            plan_deletions(&garbage(parts, None), 2),
            DeletionPlan::Known(vec![
                (5, id(1, 0, 0)),
                (6, id(1, 0, 1)),
                (7, id(1, 0, 2)),
                (6, id(1, 1, 0)),
                (5, id(1, 1, 2)),
                (9, id(3, 0, 1)),
            ])
        );
    }

    #[test]
    fn shards_are_named_by_the_upload_id_when_there_is_one_and_scanned_without_a_map() {
        assert_eq!(
            plan_deletions(&garbage(Vec::new(), Some(UploadId(31))), 4),
            DeletionPlan::ScanForObject {
                object_id: shard_object_id(4, 31)
            }
        );
        assert_eq!(
            plan_deletions(&garbage(Vec::new(), None), 0),
            DeletionPlan::ScanForObject {
                object_id: shard_object_id(0, 77)
            }
        );
    }

    #[test]
    fn the_scan_start_precedes_exactly_the_objects_shards() {
        let object_id = shard_object_id(1, 500);
        let start = object_scan_start(object_id).unwrap();
        let first = ShardId::new(object_id, 0, 0, ShardIndex(0));
        let last_of_previous =
            ShardId::new(object_id - 1, u32::MAX, u32::MAX, ShardIndex(u16::MAX));
        assert!(start < first);
        assert!(last_of_previous <= start);
        assert_eq!(object_scan_start(0), None);
        // The largest possible id of the previous object still sorts at or before the start.
        let mut largest_previous = [0xFF; ShardId::LEN];
        largest_previous[0..16].copy_from_slice(&(object_id - 1).to_be_bytes());
        assert_eq!(start, ShardId(largest_previous));
    }

    #[test]
    fn metrics_are_prometheus_counters() {
        let stats = JanitorStats::default();
        stats.shards_deleted.fetch_add(6, Ordering::Relaxed);
        let text = stats.render_metrics();
        assert!(text.contains("# TYPE cairn_janitor_shards_deleted_total counter\n"));
        assert!(text.contains("\ncairn_janitor_shards_deleted_total 6\n"));
        assert_eq!(
            text.lines().filter(|line| !line.starts_with('#')).count(),
            5
        );
    }
}
