//! The scrubber/healer: reads every shard of every committed object (at a bytes/s budget),
//! verifies it end to end, and rebuilds what is missing or corrupt.
//!
//! # Model
//!
//! A pass walks the metadata (every bucket, every version, through the leader), and for each
//! block (one stripe: one piece per shard index) reads every piece from its node:
//!
//! - the node verifies its stored CRC32C on read (`ChecksumMismatch` → **corrupt**), and the
//!   healer zero-extends the piece (gateways store pieces without trailing zeros) and compares the
//!   CRC32C of the whole piece with the shard map's, catching a wrong but self-consistent piece
//!   (→ **corrupt**);
//! - `NotFound` on a reachable node → **missing**;
//! - a node that does not answer is **unreachable** until it has been so for `down_grace`, then
//!   **down**; shard indexes the map lacks (a degraded commit) are **absent**.
//!
//! Before that walk, every node is probed; when some have been unreachable past `down_grace`,
//! the pass first heals every object with a piece on them, found from the shard maps alone and
//! those with the fewest pieces left first, so restoring redundancy after a node loss reads the
//! affected stripes only, not every piece in the cluster (the walk then skips those objects).
//!
//! [`plan_block`] (pure) turns that into work: corrupt and missing pieces are rewritten in place
//! (same node, same name); pieces on down nodes and absent indexes move to nodes chosen by the
//! placement rule (distinct nodes, ≤ m shards per AZ, down and unreachable nodes skipped, the
//! block's other nodes counted). Unreachable-but-not-down pieces wait: the node may return. A
//! block with fewer than k healthy pieces is reported unrecoverable.
//!
//! Repairs decode the lost pieces from k healthy ones; a rebuilt piece whose shard-map CRC32C is
//! known must match it before it is written (the decode is checked end to end). Moves change
//! the shard map: the object's new map is applied with `UpdateShardMap`, a compare-and-set on
//! the record version, so a concurrent overwrite or delete wins and the healer's pieces are
//! deleted again; the old placements become garbage for the janitor (a node that comes back has
//! its stale pieces removed). Objects with the fewest healthy pieces in a block heal first.
//!
//! # Suspects first
//!
//! A gateway that decoded around a missing, unreadable or corrupt piece on GET queues the version
//! in its partition's suspect queue (`ReportSuspect`, replicated through Raft, bounded and
//! deduplicated: see `cairn_meta_state::suspects`). The healer drains every partition's queue
//! every `suspect_poll_interval`, between passes and between the objects of a pass: each listed version is checked and healed
//! like a scrubbed one, then resolved (`ResolveSuspects`, which keeps an entry re-reported
//! meanwhile). A repair therefore follows a bad read within seconds instead of waiting for the
//! next scrub pass; a version still broken after its check (a node unreachable, say) is left to
//! the passes and to the next report.
//!
//! # Orphans
//!
//! After its repairs, each pass lists every node's pieces and deletes those no metadata names
//! once they have stayed unnamed for `orphan_grace` (the rule and its safety argument are in
//! [`crate::orphans`]); the janitor removes the garbage the metadata knows of.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use cairn_common::placement::choose_nodes;
use cairn_common::{ShardId, ShardIndex};
use cairn_ec::{Scheme, ShardSet, new_codec};
use cairn_meta_state::{
    BlockShards, Command, ListUploadsRequest, ListVersionsRequest, MetaError, ObjectRecord,
    PartShards, Query, Response, ShardPlacement, SuspectResolution, UpdateShardMap,
    VersionSelector, shard_object_id,
};
use cairn_storage_client::ClientError;

use crate::orphans::{KnownShards, OrphanCandidates, Verdict, classify};
use crate::shared::{MetaAccess, NodeConnections, RaftMeta, ShardAccess, render_counters};

/// A storage node the healer may read from and place on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HealerNode {
    pub node_id: u64,
    pub address: SocketAddr,
    pub availability_zone: String,
}

#[derive(Clone, Debug)]
pub struct HealerConfig {
    /// A node unreachable this long is DOWN: its pieces are rebuilt elsewhere.
    pub down_grace: Duration,
    pub pass_interval: Duration,
    /// Shard bytes read per second, at most (averaged over a pass).
    pub read_budget_bytes_per_second: u64,
    /// Deadline of one storage call.
    pub storage_timeout: Duration,
    /// How often the suspect queues are drained between passes.
    pub suspect_poll_interval: Duration,
    /// A piece no metadata names is deleted once it has stayed so this long.
    pub orphan_grace: Duration,
}

impl Default for HealerConfig {
    fn default() -> Self {
        HealerConfig {
            down_grace: Duration::from_secs(600),
            pass_interval: Duration::from_secs(60),
            read_budget_bytes_per_second: 64 << 20,
            storage_timeout: Duration::from_secs(10),
            suspect_poll_interval: Duration::from_secs(2),
            orphan_grace: Duration::from_secs(3600),
        }
    }
}

/// What a pass found out about one piece.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PieceState {
    Healthy,
    Corrupt,
    Missing,
    /// The node did not answer, but not yet for `down_grace`.
    Unreachable,
    Down,
}

/// The work one block needs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BlockPlan {
    /// Rewritten on the node that holds them (same name).
    pub rewrite_in_place: Vec<ShardIndex>,
    /// Moved (or, for an absent index, placed) to a new node: (shard index, node position).
    pub relocate: Vec<(ShardIndex, usize)>,
    /// Indexes that need a new node but none satisfies the placement rule now.
    pub unplaced: Vec<ShardIndex>,
}

impl BlockPlan {
    pub fn is_empty(&self) -> bool {
        self.rewrite_in_place.is_empty() && self.relocate.is_empty()
    }
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum HealError {
    #[error("only {healthy} healthy pieces, {needed} needed to decode")]
    Unrecoverable { healthy: usize, needed: usize },
}

/// Plans the repair of one block (see the module header). `pieces` maps each shard index the
/// shard map has to (node position, state); `padding` are the block's padding data pieces
/// (`cairn_common::padding`: known zeros, healthy by definition, never placed or rewritten, and
/// whatever `pieces` says of them is ignored); `zones[i]` is node i's AZ; `unavailable` are the
/// positions of down and unreachable nodes; `rotation` spreads new pieces over nodes.
pub fn plan_block(
    scheme: Scheme,
    pieces: &BTreeMap<ShardIndex, (usize, PieceState)>,
    padding: Range<usize>,
    zones: &[&str],
    unavailable: &BTreeSet<usize>,
    rotation: u64,
) -> Result<BlockPlan, HealError> {
    let healthy = pieces
        .iter()
        .filter(|(index, (_, state))| {
            *state == PieceState::Healthy && !padding.contains(&usize::from(index.0))
        })
        .count()
        + padding.len();
    if healthy < scheme.data_shards() {
        return Err(HealError::Unrecoverable {
            healthy,
            needed: scheme.data_shards(),
        });
    }
    let mut plan = BlockPlan::default();
    let mut to_place = Vec::new();
    let mut kept_nodes = Vec::new();
    for index in (0..scheme.total_shards()).filter(|index| !padding.contains(index)) {
        let index = ShardIndex(index as u16);
        match pieces.get(&index) {
            None => to_place.push(index),
            Some((_, PieceState::Down)) => to_place.push(index),
            Some((node, state)) => {
                kept_nodes.push(*node);
                if matches!(state, PieceState::Corrupt | PieceState::Missing) {
                    plan.rewrite_in_place.push(index);
                }
            }
        }
    }
    // Place as many as the rule allows; the rest wait for nodes (or AZs) to come back.
    let mut count = to_place.len();
    let chosen = loop {
        if count == 0 {
            break Vec::new();
        }
        match choose_nodes(
            zones,
            count,
            scheme.parity_shards(),
            rotation,
            unavailable,
            &kept_nodes,
        ) {
            Ok(chosen) => break chosen,
            Err(_) => count -= 1,
        }
    };
    for (position, index) in to_place.into_iter().enumerate() {
        match chosen.get(position) {
            Some(&node) => plan.relocate.push((index, node)),
            None => plan.unplaced.push(index),
        }
    }
    Ok(plan)
}

/// Counters since start.
#[derive(Debug, Default)]
pub struct HealerStats {
    pub passes: AtomicU64,
    pub pieces_checked: AtomicU64,
    pub bytes_read: AtomicU64,
    pub pieces_corrupt: AtomicU64,
    pub pieces_missing: AtomicU64,
    pub pieces_rebuilt: AtomicU64,
    pub objects_healed: AtomicU64,
    pub blocks_unrecoverable: AtomicU64,
    /// Shard-map updates lost to a concurrent change of the object (the change wins).
    pub conflicts: AtomicU64,
    pub errors: AtomicU64,
    /// Suspect-queue entries (reported by readers) checked.
    pub suspects_checked: AtomicU64,
    /// Pieces found that no metadata names (counted when first seen).
    pub orphans_found: AtomicU64,
    /// Orphan pieces deleted after the grace period.
    pub orphans_deleted: AtomicU64,
}

impl HealerStats {
    pub fn render_metrics(&self) -> String {
        let counters: [(&str, &str, &AtomicU64); 13] = [
            (
                "cairn_healer_passes_total",
                "Scrub/heal passes finished.",
                &self.passes,
            ),
            (
                "cairn_healer_pieces_checked_total",
                "Shard pieces read and verified.",
                &self.pieces_checked,
            ),
            (
                "cairn_healer_bytes_read_total",
                "Shard bytes read by the scrubber.",
                &self.bytes_read,
            ),
            (
                "cairn_healer_pieces_corrupt_total",
                "Pieces found corrupt (node or end-to-end CRC32C).",
                &self.pieces_corrupt,
            ),
            (
                "cairn_healer_pieces_missing_total",
                "Pieces found missing on a reachable node.",
                &self.pieces_missing,
            ),
            (
                "cairn_healer_pieces_rebuilt_total",
                "Pieces decoded and written (in place or moved).",
                &self.pieces_rebuilt,
            ),
            (
                "cairn_healer_objects_healed_total",
                "Objects whose redundancy was restored.",
                &self.objects_healed,
            ),
            (
                "cairn_healer_blocks_unrecoverable_total",
                "Blocks with fewer than k healthy pieces.",
                &self.blocks_unrecoverable,
            ),
            (
                "cairn_healer_conflicts_total",
                "Shard-map updates lost to a concurrent change.",
                &self.conflicts,
            ),
            (
                "cairn_healer_errors_total",
                "Errors met (retried next pass).",
                &self.errors,
            ),
            (
                "cairn_healer_suspects_checked_total",
                "Suspect-queue entries (bad pieces reported by readers) checked.",
                &self.suspects_checked,
            ),
            (
                "cairn_healer_orphans_found_total",
                "Pieces found on nodes that no metadata names (when first seen).",
                &self.orphans_found,
            ),
            (
                "cairn_healer_orphans_deleted_total",
                "Orphan pieces deleted after the grace period.",
                &self.orphans_deleted,
            ),
        ];
        render_counters(&counters)
    }
}

/// What one pass did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HealReport {
    pub objects_checked: u64,
    pub pieces_checked: u64,
    pub pieces_corrupt: u64,
    pub pieces_missing: u64,
    pub pieces_rebuilt: u64,
    pub objects_healed: u64,
    pub blocks_unrecoverable: u64,
    pub conflicts: u64,
    pub orphans_found: u64,
    pub orphans_deleted: u64,
}

/// How a pass fails (the workers share the shape: [`crate::shared::MetaCallError`]).
pub type HealerError = crate::shared::MetaCallError;

/// The healer's I/O shell (blocking calls through [`MetaAccess`] and [`ShardAccess`], so the
/// deterministic simulator runs the same code); run it on a thread of its own.
pub struct Healer<M: MetaAccess, S: ShardAccess> {
    meta: M,
    nodes: Vec<HealerNode>,
    shards: S,
    unreachable_since: BTreeMap<usize, Instant>,
    config: HealerConfig,
    stats: Arc<HealerStats>,
    pass_started: Instant,
    pass_bytes: u64,
    orphans: OrphanCandidates,
    /// When the suspect queues were last drained.
    last_drain: Instant,
    /// When the nodes were last probed for the down-node sweep.
    last_probe: Instant,
}

/// Each shard index of a block: (node position, what the read found).
type BlockStates = BTreeMap<ShardIndex, (usize, PieceState)>;

/// A pass's down-node sweeps: the node positions swept for, and the versions they healed.
#[derive(Default)]
struct Sweep {
    down: BTreeSet<usize>,
    healed: BTreeSet<(String, String, cairn_meta_state::VersionId)>,
}

impl Sweep {
    /// Whether a sweep this pass healed `record` (no allocation when none healed anything, the
    /// common case).
    fn healed(&self, record: &ObjectRecord) -> bool {
        !self.healed.is_empty() && self.healed.contains(&record_key(record))
    }
}

fn record_key(record: &ObjectRecord) -> (String, String, cairn_meta_state::VersionId) {
    (record.bucket.clone(), record.key.clone(), record.version_id)
}

/// One object's pending repair, ordered by its weakest block.
struct ObjectRepair {
    record: ObjectRecord,
    fewest_healthy: usize,
}

impl<M: MetaAccess, S: ShardAccess> Healer<M, S> {
    /// `nodes` are the storage nodes it may read from and place on (`shards` reaches them by id).
    pub fn new(meta: M, shards: S, nodes: Vec<HealerNode>, config: HealerConfig) -> Self {
        Healer {
            meta,
            nodes,
            shards,
            unreachable_since: BTreeMap::new(),
            config,
            stats: Arc::new(HealerStats::default()),
            pass_started: Instant::now(),
            pass_bytes: 0,
            orphans: OrphanCandidates::default(),
            last_drain: Instant::now(),
            last_probe: Instant::now(),
        }
    }

    pub fn stats(&self) -> Arc<HealerStats> {
        self.stats.clone()
    }

    pub fn run_forever(mut self) -> ! {
        let mut next_pass = Instant::now();
        loop {
            self.drain_suspects_logged(now_unix_millis());
            if Instant::now() >= next_pass {
                match self.run_pass() {
                    Ok(report) => {
                        if report.pieces_corrupt + report.pieces_missing + report.pieces_rebuilt > 0
                        {
                            tracing::info!(?report, "healer pass");
                        }
                    }
                    Err(error) => {
                        self.stats.errors.fetch_add(1, Ordering::Relaxed);
                        tracing::warn!(%error, "healer pass failed; retrying next pass");
                    }
                }
                next_pass = Instant::now() + self.config.pass_interval;
            }
            let until_pass = next_pass.saturating_duration_since(Instant::now());
            std::thread::sleep(until_pass.min(self.config.suspect_poll_interval));
        }
    }

    /// [`Healer::drain_suspects_at`], with the outcome logged and counted.
    fn drain_suspects_logged(&mut self, now_ms: u64) {
        match self.drain_suspects_at(now_ms) {
            Ok(report) => {
                if report.objects_checked > 0 {
                    tracing::info!(?report, "suspects drained");
                }
            }
            Err(error) => {
                self.stats.errors.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(%error, "draining suspects failed; retrying");
            }
        }
    }

    /// Checks and heals every version in every partition's suspect queue, now.
    pub fn drain_suspects(&mut self) -> Result<HealReport, HealerError> {
        self.drain_suspects_at(now_unix_millis())
    }

    /// [`Healer::drain_suspects`] at wall-clock time `now_ms`.
    pub fn drain_suspects_at(&mut self, now_ms: u64) -> Result<HealReport, HealerError> {
        const PAGE: u32 = 100;
        self.last_drain = Instant::now();
        let mut report = HealReport::default();
        for group in self.meta.partitions() {
            let mut after: Option<SuspectResolution> = None;
            loop {
                let query = Query::ListSuspects {
                    after: after.clone(),
                    limit: PAGE,
                };
                let entries = match self.meta.read_from(group, query)? {
                    Ok(Response::Suspects(entries)) => entries,
                    Ok(_) => return Err(HealerError::UnexpectedAnswer("ListSuspects")),
                    Err(error) => {
                        return Err(HealerError::Refused {
                            command: "ListSuspects",
                            error,
                        });
                    }
                };
                let mut resolutions = Vec::with_capacity(entries.len());
                for entry in &entries {
                    let query = Query::GetObject {
                        bucket: entry.bucket.clone(),
                        key: entry.key.clone(),
                        version: VersionSelector::Id(entry.version_id),
                    };
                    // A version deleted or overwritten since the report needs nothing.
                    if let Ok(Response::Object(record)) = self.meta.read(query)? {
                        report.objects_checked += 1;
                        if self.check_object(&record, &mut report).is_some() {
                            self.heal_object(&record, now_ms, &mut report, false)?;
                        }
                    }
                    self.stats.suspects_checked.fetch_add(1, Ordering::Relaxed);
                    resolutions.push(SuspectResolution {
                        bucket: entry.bucket.clone(),
                        key: entry.key.clone(),
                        version_id: entry.version_id,
                        last_report_index: entry.last_report_index,
                    });
                }
                let done = entries.len() < PAGE as usize;
                after = resolutions.last().cloned();
                if !resolutions.is_empty() {
                    let output = self
                        .meta
                        .write_to(group, Command::ResolveSuspects { resolutions })?;
                    if let Err(error) = output.result {
                        return Err(HealerError::Refused {
                            command: "ResolveSuspects",
                            error,
                        });
                    }
                }
                if done {
                    break;
                }
            }
        }
        Ok(report)
    }

    /// One scrub-and-heal pass over every committed object, now.
    pub fn run_pass(&mut self) -> Result<HealReport, HealerError> {
        self.run_pass_at(now_unix_millis())
    }

    /// One pass at wall-clock time `now_ms` (what shard-map updates record; the simulator
    /// passes its virtual clock).
    pub fn run_pass_at(&mut self, now_ms: u64) -> Result<HealReport, HealerError> {
        self.pass_started = Instant::now();
        self.pass_bytes = 0;
        let mut report = HealReport::default();
        let mut repairs = Vec::new();
        let records = self.committed_records()?;
        // Pieces on DOWN nodes first, found from the shard maps alone: restoring redundancy
        // after a node loss reads only the affected stripes, not every piece of the cluster. The
        // nodes are probed again during the walk, so a node lost mid-pass is swept at once.
        let mut sweep = Sweep::default();
        self.sweep_down_nodes(&records, &mut sweep, now_ms, &mut report)?;
        for record in &records {
            if self.last_probe.elapsed() >= self.config.suspect_poll_interval {
                self.sweep_down_nodes(&records, &mut sweep, now_ms, &mut report)?;
            }
            if sweep.healed(record) {
                // Read block by block and healed by a sweep this pass.
                continue;
            }
            // A pass over a large cluster takes hours at its budget: reported suspects are not
            // left waiting for its end.
            if self.last_drain.elapsed() >= self.config.suspect_poll_interval {
                self.drain_suspects_logged(now_ms);
            }
            report.objects_checked += 1;
            let fewest_healthy = self.check_object(record, &mut report);
            if let Some(fewest_healthy) = fewest_healthy {
                repairs.push(ObjectRepair {
                    record: record.clone(),
                    fewest_healthy,
                });
            }
        }
        // Most endangered first.
        repairs.sort_by_key(|repair| repair.fewest_healthy);
        for repair in repairs {
            if sweep.healed(&repair.record) {
                // A sweep later in the pass healed it already.
                continue;
            }
            self.heal_object(&repair.record, now_ms, &mut report, false)?;
        }
        self.scan_orphans(&mut report)?;
        self.stats.passes.fetch_add(1, Ordering::Relaxed);
        Ok(report)
    }

    /// Probes every node (a one-entry scan) and returns the positions unreachable past the
    /// grace period.
    fn down_nodes(&mut self) -> BTreeSet<usize> {
        let mut down = BTreeSet::new();
        for position in 0..self.nodes.len() {
            let node_id = self.nodes[position].node_id;
            match self.shards.scan(node_id, None, 1) {
                Ok(_) => {
                    self.unreachable_since.remove(&position);
                }
                Err(_) => {
                    if self.mark_unreachable(position) == PieceState::Down {
                        down.insert(position);
                    }
                }
            }
        }
        down
    }

    /// Probes the nodes; when some are newly DOWN this pass, heals every record with a piece on
    /// them (those with the fewest pieces left on live nodes first) and notes it in `sweep`.
    fn sweep_down_nodes(
        &mut self,
        records: &[ObjectRecord],
        sweep: &mut Sweep,
        now_ms: u64,
        report: &mut HealReport,
    ) -> Result<(), HealerError> {
        self.last_probe = Instant::now();
        let down: BTreeSet<usize> = self.down_nodes().difference(&sweep.down).copied().collect();
        if down.is_empty() {
            return Ok(());
        }
        sweep.down.extend(&down);
        let mut urgent: Vec<(usize, &ObjectRecord)> = records
            .iter()
            .filter(|record| !sweep.healed(record))
            .filter_map(|record| {
                let fewest_live = record
                    .erasure
                    .parts
                    .iter()
                    .flat_map(|part| &part.blocks)
                    .filter_map(|block| {
                        let on_down = |placement: &ShardPlacement| {
                            self.position_of(placement.node_id.0)
                                .is_none_or(|position| down.contains(&position))
                        };
                        let lost = block.shards.values().filter(|p| on_down(p)).count();
                        (lost > 0).then(|| block.shards.len() - lost)
                    })
                    .min()?;
                Some((fewest_live, record))
            })
            .collect();
        urgent.sort_by_key(|(fewest_live, _)| *fewest_live);
        tracing::info!(
            down = ?down.iter().map(|position| self.nodes[*position].node_id).collect::<Vec<_>>(),
            objects = urgent.len(),
            "healing the objects with pieces on down nodes first"
        );
        for (_, record) in urgent {
            if self.last_drain.elapsed() >= self.config.suspect_poll_interval {
                self.drain_suspects_logged(now_ms);
            }
            report.objects_checked += 1;
            self.heal_object(record, now_ms, report, true)?;
            sweep.healed.insert(record_key(record));
        }
        Ok(())
    }

    fn read_meta(&mut self, query: Query, name: &'static str) -> Result<Response, HealerError> {
        match self.meta.read(query)? {
            Ok(response) => Ok(response),
            Err(error) => Err(HealerError::Refused {
                command: name,
                error,
            }),
        }
    }

    /// Every committed, non-delete-marker version of every bucket.
    fn committed_records(&mut self) -> Result<Vec<ObjectRecord>, HealerError> {
        let Response::Buckets(buckets) =
            self.read_meta(Query::ListBuckets { owner: None }, "ListBuckets")?
        else {
            return Err(HealerError::UnexpectedAnswer("ListBuckets"));
        };
        let mut records = Vec::new();
        for bucket in buckets {
            let mut key_marker = None;
            let mut version_id_marker = None;
            loop {
                let request = ListVersionsRequest {
                    bucket: bucket.name.clone(),
                    prefix: String::new(),
                    delimiter: String::new(),
                    key_marker: key_marker.clone(),
                    version_id_marker,
                    max_keys: 1000,
                };
                let page = match self.meta.list_versions(request)? {
                    Ok(page) => page,
                    Err(error) => {
                        return Err(HealerError::Refused {
                            command: "ListVersions",
                            error,
                        });
                    }
                };
                for version in &page.versions {
                    if version.delete_marker {
                        continue;
                    }
                    let query = Query::GetObject {
                        bucket: bucket.name.clone(),
                        key: version.key.clone(),
                        version: VersionSelector::Id(version.version_id),
                    };
                    // A version deleted since the listing is skipped.
                    if let Ok(Response::Object(record)) = self.meta.read(query)? {
                        records.push(record);
                    }
                }
                if !page.is_truncated {
                    break;
                }
                key_marker = page.next_key_marker.clone();
                version_id_marker = page.next_version_id_marker;
            }
        }
        Ok(records)
    }

    /// What the metadata names now (see [`crate::orphans`]), read before the nodes are listed.
    fn known_shards(&mut self) -> Result<KnownShards, HealerError> {
        let mut known = KnownShards::default();
        for record in self.committed_records()? {
            let object_id = self.object_id(&record);
            for part in &record.erasure.parts {
                for (block_index, block) in part.blocks.iter().enumerate() {
                    for (&index, placement) in &block.shards {
                        let shard_id =
                            ShardId::new(object_id, part.part_number, block_index as u32, index);
                        known.referenced.insert((placement.node_id.0, shard_id));
                    }
                }
            }
        }
        let Response::Buckets(buckets) =
            self.read_meta(Query::ListBuckets { owner: None }, "ListBuckets")?
        else {
            return Err(HealerError::UnexpectedAnswer("ListBuckets"));
        };
        for group in self.meta.partitions() {
            let partition_index = (group.0 - 1) as u32;
            let query = Query::ListStalePreparing {
                created_before_ms: u64::MAX,
                limit: u32::MAX,
            };
            match self.meta.read_from(group, query)? {
                Ok(Response::Objects(records)) => {
                    for record in records {
                        known
                            .protected_objects
                            .insert(shard_object_id(partition_index, record.shard_name_id()));
                    }
                }
                Ok(_) => return Err(HealerError::UnexpectedAnswer("ListStalePreparing")),
                Err(error) => {
                    return Err(HealerError::Refused {
                        command: "ListStalePreparing",
                        error,
                    });
                }
            }
            let mut after = None;
            loop {
                let query = Query::ListGarbage { after, limit: 1000 };
                let entries = match self.meta.read_from(group, query)? {
                    Ok(Response::Garbage(entries)) => entries,
                    Ok(_) => return Err(HealerError::UnexpectedAnswer("ListGarbage")),
                    Err(error) => {
                        return Err(HealerError::Refused {
                            command: "ListGarbage",
                            error,
                        });
                    }
                };
                for entry in &entries {
                    if let Some(id) = entry.shard_name_id() {
                        known
                            .protected_objects
                            .insert(shard_object_id(partition_index, id));
                    }
                }
                match entries.last() {
                    Some(last) if entries.len() == 1000 => after = Some(last.garbage_id),
                    _ => break,
                }
            }
            for bucket in &buckets {
                let mut key_marker = None;
                let mut upload_id_marker = None;
                loop {
                    let query = Query::ListUploads(ListUploadsRequest {
                        bucket: bucket.name.clone(),
                        prefix: String::new(),
                        key_marker: key_marker.clone(),
                        upload_id_marker,
                        max_uploads: 1000,
                    });
                    let page = match self.meta.read_from(group, query)? {
                        Ok(Response::UploadList(page)) => page,
                        Ok(_) => return Err(HealerError::UnexpectedAnswer("ListUploads")),
                        // Deleted since it was listed.
                        Err(MetaError::NoSuchBucket { .. }) => break,
                        Err(error) => {
                            return Err(HealerError::Refused {
                                command: "ListUploads",
                                error,
                            });
                        }
                    };
                    for upload in &page.uploads {
                        known
                            .protected_objects
                            .insert(shard_object_id(partition_index, upload.upload_id.0));
                    }
                    if !page.is_truncated {
                        break;
                    }
                    key_marker = page.next_key_marker.clone();
                    upload_id_marker = page.next_upload_id_marker;
                }
            }
        }
        Ok(known)
    }

    /// Lists every reachable node's pieces and deletes orphans past the grace period.
    fn scan_orphans(&mut self, report: &mut HealReport) -> Result<(), HealerError> {
        const PAGE: u32 = 1000;
        let known = self.known_shards()?;
        for position in 0..self.nodes.len() {
            let node_id = self.nodes[position].node_id;
            let mut after = None;
            let mut listed = BTreeSet::new();
            let mut complete = true;
            loop {
                let page = match self.shards.scan(node_id, after, PAGE) {
                    Ok(page) => page,
                    Err(error) => {
                        // An unreachable node is scanned again next pass.
                        tracing::debug!(%error, node_id, "orphan scan skipped a node");
                        complete = false;
                        break;
                    }
                };
                let now = Instant::now();
                for entry in &page.entries {
                    listed.insert(entry.shard_id);
                    let verdict = classify(
                        &mut self.orphans,
                        &known,
                        node_id,
                        entry.shard_id,
                        now,
                        self.config.orphan_grace,
                    );
                    match verdict {
                        Verdict::Known | Verdict::Candidate { new: false } => {}
                        Verdict::Candidate { new: true } => {
                            report.orphans_found += 1;
                            self.stats.orphans_found.fetch_add(1, Ordering::Relaxed);
                        }
                        Verdict::Delete => match self.shards.delete(node_id, entry.shard_id) {
                            Ok(_) => {
                                report.orphans_deleted += 1;
                                self.stats.orphans_deleted.fetch_add(1, Ordering::Relaxed);
                                tracing::info!(node_id, shard_id = ?entry.shard_id, "orphan piece deleted");
                            }
                            Err(error) => {
                                self.stats.errors.fetch_add(1, Ordering::Relaxed);
                                tracing::warn!(%error, node_id, "deleting an orphan piece failed");
                            }
                        },
                    }
                }
                match page.next_after {
                    Some(next) => after = Some(next),
                    None => break,
                }
            }
            if complete {
                self.orphans.retain_listed(node_id, &listed);
            }
        }
        Ok(())
    }

    fn position_of(&self, node_id: u64) -> Option<usize> {
        self.nodes.iter().position(|node| node.node_id == node_id)
    }

    /// Whether a node has been unreachable past the grace period (after a failed call).
    fn mark_unreachable(&mut self, position: usize) -> PieceState {
        let since = *self
            .unreachable_since
            .entry(position)
            .or_insert_with(Instant::now);
        if since.elapsed() >= self.config.down_grace {
            PieceState::Down
        } else {
            PieceState::Unreachable
        }
    }

    fn throttle(&mut self, bytes: u64) {
        self.pass_bytes += bytes;
        let budget = self.config.read_budget_bytes_per_second.max(1);
        let due = Duration::from_secs_f64(self.pass_bytes as f64 / budget as f64);
        let elapsed = self.pass_started.elapsed();
        if due > elapsed {
            std::thread::sleep(due - elapsed);
        }
    }

    fn object_id(&self, record: &ObjectRecord) -> u128 {
        let group = self.meta.partition_of(&record.bucket, &record.key);
        shard_object_id((group.0 - 1) as u32, record.shard_name_id())
    }

    /// Reads every piece of one block; returns the pieces (zero-extended) and their states.
    fn read_block(
        &mut self,
        object_id: u128,
        part_number: u32,
        block_index: u32,
        block: &BlockShards,
        piece_size_bytes: usize,
        padding: &Range<usize>,
    ) -> (BlockStates, BTreeMap<ShardIndex, Vec<u8>>) {
        let mut states = BTreeMap::new();
        let mut pieces = BTreeMap::new();
        for (&index, placement) in &block.shards {
            if padding.contains(&usize::from(index.0)) {
                // An older map's stored empty padding piece: zeros by definition, not read.
                continue;
            }
            let Some(position) = self.position_of(placement.node_id.0) else {
                // A node no longer configured is as good as down.
                states.insert(index, (usize::MAX, PieceState::Down));
                continue;
            };
            let shard_id = ShardId::new(object_id, part_number, block_index, index);
            let node_id = self.nodes[position].node_id;
            let state = match self.shards.get(node_id, shard_id) {
                Ok(mut bytes) => {
                    self.unreachable_since.remove(&position);
                    self.throttle(bytes.len() as u64);
                    self.stats
                        .bytes_read
                        .fetch_add(bytes.len() as u64, Ordering::Relaxed);
                    if bytes.len() <= piece_size_bytes {
                        bytes.resize(piece_size_bytes, 0);
                    }
                    if bytes.len() == piece_size_bytes && crc32c::crc32c(&bytes) == placement.crc32c
                    {
                        pieces.insert(index, bytes);
                        PieceState::Healthy
                    } else {
                        PieceState::Corrupt
                    }
                }
                Err(ClientError::NotFound { .. }) => {
                    self.unreachable_since.remove(&position);
                    PieceState::Missing
                }
                Err(ClientError::ChecksumMismatch { .. }) => {
                    self.unreachable_since.remove(&position);
                    PieceState::Corrupt
                }
                Err(_) => self.mark_unreachable(position),
            };
            self.stats.pieces_checked.fetch_add(1, Ordering::Relaxed);
            states.insert(index, (position, state));
        }
        (states, pieces)
    }

    /// Adds one block's corrupt and missing pieces to the report and the counters.
    fn count_findings(&self, states: &BlockStates, report: &mut HealReport) {
        report.pieces_checked += states.len() as u64;
        for (_, state) in states.values() {
            match state {
                PieceState::Corrupt => {
                    report.pieces_corrupt += 1;
                    self.stats.pieces_corrupt.fetch_add(1, Ordering::Relaxed);
                }
                PieceState::Missing => {
                    report.pieces_missing += 1;
                    self.stats.pieces_missing.fetch_add(1, Ordering::Relaxed);
                }
                _ => {}
            }
        }
    }

    /// Scrubs one object; returns its weakest block's healthy count when it needs work.
    fn check_object(&mut self, record: &ObjectRecord, report: &mut HealReport) -> Option<usize> {
        let scheme: Scheme = record.erasure.scheme.parse().ok()?;
        let piece_size_bytes = record.erasure.piece_size_bytes as usize;
        let object_id = self.object_id(record);
        let mut fewest_healthy: Option<usize> = None;
        for part in &record.erasure.parts {
            for (block_index, block) in part.blocks.iter().enumerate() {
                let padding =
                    block.padding_data_pieces(scheme.data_shards(), piece_size_bytes as u64);
                let (states, _) = self.read_block(
                    object_id,
                    part.part_number,
                    block_index as u32,
                    block,
                    piece_size_bytes,
                    &padding,
                );
                self.count_findings(&states, report);
                let healthy = states
                    .values()
                    .filter(|(_, state)| *state == PieceState::Healthy)
                    .count();
                let needs_work = block
                    .present_pieces(scheme.data_shards(), piece_size_bytes as u64)
                    < scheme.total_shards()
                    || states.values().any(|(_, state)| {
                        matches!(
                            state,
                            PieceState::Corrupt | PieceState::Missing | PieceState::Down
                        )
                    });
                if needs_work {
                    fewest_healthy =
                        Some(fewest_healthy.map_or(healthy, |fewest| fewest.min(healthy)));
                }
            }
        }
        fewest_healthy
    }

    /// Rebuilds what one object needs. The record is read again first: an object deleted or
    /// overwritten since the scan is left alone (its pieces are the janitor's), and the janitor's
    /// grace period outlasts one object's repair, so an in-place rewrite racing a delete is
    /// collected with the rest of the garbage. Moves are guarded by the record-version
    /// compare-and-set.
    ///
    /// `unchecked`: the object was not scrubbed this pass (the down-node sweep), so what its
    /// blocks' reads find is reported here.
    fn heal_object(
        &mut self,
        scanned: &ObjectRecord,
        now_ms: u64,
        report: &mut HealReport,
        unchecked: bool,
    ) -> Result<(), HealerError> {
        let query = Query::GetObject {
            bucket: scanned.bucket.clone(),
            key: scanned.key.clone(),
            version: VersionSelector::Id(scanned.version_id),
        };
        let record = match self.meta.read(query)? {
            Ok(Response::Object(record)) if record.record_version == scanned.record_version => {
                record
            }
            _ => {
                report.conflicts += 1;
                self.stats.conflicts.fetch_add(1, Ordering::Relaxed);
                return Ok(());
            }
        };
        let record = &record;
        let Ok(scheme) = record.erasure.scheme.parse::<Scheme>() else {
            return Ok(());
        };
        let piece_size_bytes = record.erasure.piece_size_bytes as usize;
        let object_id = self.object_id(record);
        let zones: Vec<String> = self
            .nodes
            .iter()
            .map(|node| node.availability_zone.clone())
            .collect();
        let zone_names: Vec<&str> = zones.iter().map(String::as_str).collect();
        let mut codec = new_codec(scheme);
        let mut new_parts: Vec<PartShards> = record.erasure.parts.clone();
        let mut moved_any = false;
        let mut written: Vec<(usize, ShardId)> = Vec::new();
        let mut rebuilt = 0u64;
        for (part_position, part) in record.erasure.parts.iter().enumerate() {
            for (block_index, block) in part.blocks.iter().enumerate() {
                let padding =
                    block.padding_data_pieces(scheme.data_shards(), piece_size_bytes as u64);
                let (states, pieces) = self.read_block(
                    object_id,
                    part.part_number,
                    block_index as u32,
                    block,
                    piece_size_bytes,
                    &padding,
                );
                if unchecked {
                    self.count_findings(&states, report);
                }
                let unavailable: BTreeSet<usize> = states
                    .values()
                    .filter(|(_, state)| {
                        matches!(state, PieceState::Down | PieceState::Unreachable)
                    })
                    .map(|(position, _)| *position)
                    .chain(self.unreachable_since.keys().copied())
                    .collect();
                let rotation = object_id as u64 ^ ((block_index as u64) << 32);
                let plan = match plan_block(
                    scheme,
                    &states,
                    padding.clone(),
                    &zone_names,
                    &unavailable,
                    rotation,
                ) {
                    Ok(plan) => plan,
                    Err(error) => {
                        report.blocks_unrecoverable += 1;
                        self.stats
                            .blocks_unrecoverable
                            .fetch_add(1, Ordering::Relaxed);
                        tracing::error!(
                            bucket = record.bucket,
                            key = record.key,
                            block_index,
                            %error,
                            "block cannot be rebuilt"
                        );
                        continue;
                    }
                };
                if plan.is_empty() {
                    continue;
                }
                // Decode every needed piece from the healthy ones.
                let mut buffers: Vec<Vec<u8>> = (0..scheme.total_shards())
                    .map(|index| {
                        pieces
                            .get(&ShardIndex(index as u16))
                            .cloned()
                            .unwrap_or_else(|| vec![0; piece_size_bytes])
                    })
                    .collect();
                // Padding pieces are zeros, as `buffers` has them.
                let mut present = ShardSet::default();
                for index in pieces.keys() {
                    present.insert(index.0 as usize);
                }
                for index in padding.clone() {
                    present.insert(index);
                }
                let mut wanted = ShardSet::default();
                for index in plan
                    .rewrite_in_place
                    .iter()
                    .chain(plan.relocate.iter().map(|(index, _)| index))
                {
                    wanted.insert(index.0 as usize);
                }
                {
                    let mut views: Vec<&mut [u8]> =
                        buffers.iter_mut().map(|buffer| &mut buffer[..]).collect();
                    if let Err(error) = codec.reconstruct(&mut views, present, wanted) {
                        self.stats.errors.fetch_add(1, Ordering::Relaxed);
                        tracing::warn!(%error, key = record.key, "decode failed");
                        continue;
                    }
                }
                let new_block = &mut new_parts[part_position].blocks[block_index];
                let targets = plan
                    .rewrite_in_place
                    .iter()
                    .map(|index| (*index, states[index].0, false))
                    .chain(
                        plan.relocate
                            .iter()
                            .map(|(index, node)| (*index, *node, true)),
                    );
                for (index, position, moves) in targets.collect::<Vec<_>>() {
                    let piece = &buffers[index.0 as usize];
                    let crc32c = crc32c::crc32c(piece);
                    if let Some(expected) = block.shards.get(&index)
                        && expected.crc32c != crc32c
                    {
                        // The decode disagrees with the commit-time checksum: never write it.
                        self.stats.errors.fetch_add(1, Ordering::Relaxed);
                        tracing::error!(
                            key = record.key,
                            shard = index.0,
                            "rebuilt piece fails its checksum"
                        );
                        continue;
                    }
                    let stored_len = piece
                        .iter()
                        .rposition(|byte| *byte != 0)
                        .map_or(0, |last| last + 1);
                    let shard_id =
                        ShardId::new(object_id, part.part_number, block_index as u32, index);
                    let stored = &piece[..stored_len];
                    match self
                        .shards
                        .put(self.nodes[position].node_id, shard_id, stored)
                    {
                        Ok(()) => {
                            rebuilt += 1;
                            if moves {
                                written.push((position, shard_id));
                                moved_any = true;
                                new_block.shards.insert(
                                    index,
                                    ShardPlacement {
                                        node_id: cairn_meta_state::NodeId(
                                            self.nodes[position].node_id,
                                        ),
                                        availability_zone: self.nodes[position]
                                            .availability_zone
                                            .clone(),
                                        crc32c,
                                    },
                                );
                            }
                        }
                        Err(error) => {
                            self.stats.errors.fetch_add(1, Ordering::Relaxed);
                            tracing::warn!(%error, key = record.key, shard = index.0, "writing a rebuilt piece failed");
                        }
                    }
                }
            }
        }
        if moved_any {
            let command = Command::UpdateShardMap(UpdateShardMap {
                bucket: record.bucket.clone(),
                key: record.key.clone(),
                version_id: record.version_id,
                expected_record_version: record.record_version,
                parts: new_parts,
                now_ms,
            });
            let output = self.meta.write(command)?;
            if let Err(error) = output.result {
                // Overwritten, deleted or healed by someone else meanwhile: that change wins, and
                // the pieces this pass placed are named by no record.
                report.conflicts += 1;
                self.stats.conflicts.fetch_add(1, Ordering::Relaxed);
                tracing::info!(%error, key = record.key, "shard map changed concurrently; undoing");
                for (position, shard_id) in written {
                    let _ = self.shards.delete(self.nodes[position].node_id, shard_id);
                }
                return Ok(());
            }
        }
        if rebuilt > 0 {
            report.pieces_rebuilt += rebuilt;
            report.objects_healed += 1;
            self.stats
                .pieces_rebuilt
                .fetch_add(rebuilt, Ordering::Relaxed);
            self.stats.objects_healed.fetch_add(1, Ordering::Relaxed);
            tracing::info!(
                bucket = record.bucket,
                key = record.key,
                rebuilt,
                "object healed"
            );
        }
        Ok(())
    }
}

fn now_unix_millis() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_millis() as u64)
}

/// Starts a healer on its own thread; returns its counters.
pub fn spawn_healer(
    meta: cairn_raft::MetaClientConfig,
    nodes: Vec<HealerNode>,
    config: HealerConfig,
) -> std::io::Result<Arc<HealerStats>> {
    let addresses = nodes
        .iter()
        .map(|node| (node.node_id, node.address))
        .collect();
    let shards = NodeConnections::new(addresses, config.storage_timeout).with_tls(
        meta.identity
            .as_ref()
            .map(|identity| identity.client_config()),
    );
    let healer = Healer::new(RaftMeta::new(meta)?, shards, nodes, config);
    let stats = healer.stats();
    std::thread::Builder::new()
        .name("healer".into())
        .spawn(move || healer.run_forever())?;
    Ok(stats)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scheme(text: &str) -> Scheme {
        text.parse().unwrap()
    }

    /// 4+2 over nodes 0..9 in zones a,b,c (node i in zone i % 3), shard i on node i.
    fn healthy_block() -> BTreeMap<ShardIndex, (usize, PieceState)> {
        (0..6)
            .map(|index| (ShardIndex(index), (usize::from(index), PieceState::Healthy)))
            .collect()
    }

    const NO_PADDING: Range<usize> = 0..0;

    const ZONES: [&str; 9] = ["a", "b", "c", "a", "b", "c", "a", "b", "c"];

    #[test]
    fn a_healthy_block_needs_nothing() {
        let plan = plan_block(
            scheme("isal-cauchy:4+2"),
            &healthy_block(),
            NO_PADDING,
            &ZONES,
            &BTreeSet::new(),
            0,
        )
        .unwrap();
        assert!(plan.is_empty() && plan.unplaced.is_empty());
    }

    #[test]
    fn corrupt_and_missing_pieces_are_rewritten_where_they_are() {
        let mut block = healthy_block();
        block.insert(ShardIndex(1), (1, PieceState::Corrupt));
        block.insert(ShardIndex(4), (4, PieceState::Missing));
        let plan = plan_block(
            scheme("isal-cauchy:4+2"),
            &block,
            NO_PADDING,
            &ZONES,
            &BTreeSet::new(),
            0,
        )
        .unwrap();
        assert_eq!(plan.rewrite_in_place, vec![ShardIndex(1), ShardIndex(4)]);
        assert!(plan.relocate.is_empty());
    }

    #[test]
    fn pieces_on_down_nodes_move_to_free_nodes_keeping_the_zone_rule() {
        let mut block = healthy_block();
        block.insert(ShardIndex(0), (0, PieceState::Down));
        block.insert(ShardIndex(1), (1, PieceState::Down));
        let unavailable = BTreeSet::from([0, 1]);
        for rotation in 0..9 {
            let plan = plan_block(
                scheme("isal-cauchy:4+2"),
                &block,
                NO_PADDING,
                &ZONES,
                &unavailable,
                rotation,
            )
            .unwrap();
            assert_eq!(plan.relocate.len(), 2, "{plan:?}");
            let mut nodes: Vec<usize> = vec![2, 3, 4, 5];
            nodes.extend(plan.relocate.iter().map(|(_, node)| *node));
            let distinct: BTreeSet<usize> = nodes.iter().copied().collect();
            assert_eq!(distinct.len(), 6, "{plan:?}");
            assert!(!distinct.contains(&0) && !distinct.contains(&1));
            for zone in ["a", "b", "c"] {
                assert!(
                    nodes.iter().filter(|&&node| ZONES[node] == zone).count() <= 2,
                    "{plan:?}"
                );
            }
        }
        // Zone a keeps shard 3 on node 3; its only other free node is 6, so of two pieces lost
        // in zone a one moves there and the other waits rather than break the zone rule.
        let mut block = healthy_block();
        block.insert(ShardIndex(0), (0, PieceState::Down));
        block.insert(ShardIndex(3), (3, PieceState::Down));
        let plan = plan_block(
            scheme("isal-cauchy:4+2"),
            &block,
            NO_PADDING,
            &ZONES,
            &BTreeSet::from([0, 3]),
            0,
        )
        .unwrap();
        assert_eq!(plan.relocate.len() + plan.unplaced.len(), 2);
        let zone_a_after = [1usize, 2, 4, 5]
            .iter()
            .chain(plan.relocate.iter().map(|(_, node)| node))
            .filter(|&&node| ZONES[node] == "a")
            .count();
        assert!(zone_a_after <= 2);
    }

    #[test]
    fn absent_indexes_of_a_degraded_commit_are_placed_and_unreachable_pieces_wait() {
        let mut block = healthy_block();
        block.remove(&ShardIndex(5));
        block.insert(ShardIndex(2), (2, PieceState::Unreachable));
        let plan = plan_block(
            scheme("isal-cauchy:4+2"),
            &block,
            NO_PADDING,
            &ZONES,
            &BTreeSet::from([2]),
            1,
        )
        .unwrap();
        assert_eq!(plan.relocate.len(), 1);
        assert_eq!(plan.relocate[0].0, ShardIndex(5));
        assert!(plan.rewrite_in_place.is_empty());
        assert_ne!(plan.relocate[0].1, 2);
    }

    #[test]
    fn padding_pieces_count_as_healthy_and_are_never_placed() {
        // A short stripe: data pieces 2 and 3 are padding, so the map places 0, 1, 4 and 5.
        let plan = |block: &BTreeMap<ShardIndex, (usize, PieceState)>, down: &[usize]| {
            plan_block(
                scheme("isal-cauchy:4+2"),
                block,
                2..4,
                &ZONES,
                &down.iter().copied().collect(),
                0,
            )
        };
        let mut block = healthy_block();
        block.remove(&ShardIndex(2));
        block.remove(&ShardIndex(3));
        let healthy = plan(&block, &[]).unwrap();
        assert!(
            healthy.is_empty() && healthy.unplaced.is_empty(),
            "{healthy:?}"
        );
        // Both data pieces lost: parity and padding still make k, and only 0 and 1 are redone.
        block.insert(ShardIndex(0), (0, PieceState::Missing));
        block.insert(ShardIndex(1), (1, PieceState::Down));
        let repair = plan(&block, &[1]).unwrap();
        assert_eq!(repair.rewrite_in_place, vec![ShardIndex(0)]);
        assert_eq!(repair.relocate.len(), 1, "{repair:?}");
        assert_eq!(repair.relocate[0].0, ShardIndex(1));
        // An older map's placed padding piece is ignored, whatever its state.
        block.insert(ShardIndex(2), (2, PieceState::Corrupt));
        assert_eq!(plan(&block, &[1]), Ok(repair));
        // One more loss is one too many.
        block.insert(ShardIndex(5), (5, PieceState::Missing));
        assert_eq!(
            plan(&block, &[1]),
            Err(HealError::Unrecoverable {
                healthy: 3,
                needed: 4
            })
        );
    }

    #[test]
    fn without_room_pieces_stay_unplaced_and_below_k_the_block_is_unrecoverable() {
        // Six nodes only, two down: nowhere to move their pieces.
        let zones = ["a", "b", "c", "a", "b", "c"];
        let mut block = healthy_block();
        block.insert(ShardIndex(0), (0, PieceState::Down));
        block.insert(ShardIndex(1), (1, PieceState::Down));
        let plan = plan_block(
            scheme("isal-cauchy:4+2"),
            &block,
            NO_PADDING,
            &zones,
            &BTreeSet::from([0, 1]),
            0,
        )
        .unwrap();
        assert!(plan.relocate.is_empty());
        assert_eq!(plan.unplaced, vec![ShardIndex(0), ShardIndex(1)]);
        block.insert(ShardIndex(2), (2, PieceState::Corrupt));
        assert_eq!(
            plan_block(
                scheme("isal-cauchy:4+2"),
                &block,
                NO_PADDING,
                &zones,
                &BTreeSet::from([0, 1]),
                0
            ),
            Err(HealError::Unrecoverable {
                healthy: 3,
                needed: 4
            })
        );
    }
}
