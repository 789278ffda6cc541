//! Deterministic simulation of the PUT / commit / janitor / heal logic (STYLE.md habit 5).
//!
//! # Model
//!
//! One seeded run drives, on one thread and a virtual clock, the real sans-I/O cores and the
//! real worker code against simulated I/O:
//!
//! - metadata: one real `cairn_meta_state::StateMachine` per partition plus the bucket service,
//!   behind [`SimMeta`] (the workers' `MetaAccess`), with injected faults: a write lost before it
//!   is applied, or applied with its answer lost (the caller sees an error either way and
//!   retries with the same idempotency token);
//! - storage: nine nodes in three AZs behind [`SimNodes`] (the workers' `ShardAccess`), with
//!   injected faults: a put lost, a put stored with its acknowledgement lost, a put stored
//!   corrupt (bytes flipped after the checksum), nodes going down and up, nodes wiped;
//! - a gateway model ([`World::put`]) doing what the real gateway does — PrepareWrite with a
//!   token, encode 4+2 with the real codec, place with the real placement (skipping DOWN nodes,
//!   alternates on failure), commit with at least k+1 pieces, AbortWrite otherwise — that can
//!   crash between any two steps or stall and commit late;
//! - the real `Janitor` and `Healer`, run at random times.
//!
//! Faults are bounded so that no block ever has more than m pieces lost or damaged between two
//! heal passes (a node counts as damaged from its fault until a heal pass after which every
//! block is whole again). Each invariant is one test file; a failure panics with the seed, and
//! `CAIRN_SIM_SEED=N` replays exactly that run. `CAIRN_SIM_SEEDS` sets how many seeds a test
//! covers (default below).

#![allow(dead_code)] // Each invariant file uses part of the harness.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;
use std::time::Duration;

use cairn_common::{ShardId, ShardIndex};
use cairn_ec::{Scheme, ShardSet, new_codec};
use cairn_meta_state::{
    AbortWrite, BlockShards, Checksums, Command, CommitWrite, CreateBucket, ListVersionsPage,
    ListVersionsRequest, MetaError, NodeId, ObjectRecord, Output, PartShards, PrepareWrite, Query,
    Response, Role, Scope, ShardPlacement, StateMachine, StorageClass, VersionSelector,
    VersioningState, shard_object_id,
};
use cairn_raft::{ClientError as MetaClientError, GroupId, PartitionRing};
use cairn_storage_client::{ClientError, ScanPage};
use cairn_workers::healer::{Healer, HealerConfig, HealerNode};
use cairn_workers::{Janitor, JanitorConfig, MetaAccess, ShardAccess};

pub const BUCKET: &str = "sim-bucket";
pub const SCHEME: &str = "isal-cauchy:4+2";
pub const DATA_SHARDS: usize = 4;
pub const PARITY_SHARDS: usize = 2;
pub const PIECE_BYTES: usize = 64;
pub const PARTITIONS: u32 = 3;
pub const NODES: u64 = 9;

/// The padding data pieces of a block holding `length_bytes` (see `cairn_common::padding`).
pub fn padding(length_bytes: u64) -> std::ops::Range<usize> {
    cairn_common::padding_data_pieces(DATA_SHARDS, PIECE_BYTES as u64, length_bytes)
}

/// xorshift64*: small, fast, and the same sequence on every platform.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    pub fn below(&mut self, bound: u64) -> u64 {
        self.next() % bound.max(1)
    }

    /// True with probability `percent` / 100.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

/// Fault rates in percent (0 disables).
#[derive(Clone, Copy, Debug)]
pub struct Faults {
    pub meta_lost_before_apply: u64,
    pub meta_answer_lost: u64,
    pub put_lost: u64,
    pub put_ack_lost: u64,
    pub put_corrupt: u64,
}

impl Faults {
    pub fn none() -> Faults {
        Faults {
            meta_lost_before_apply: 0,
            meta_answer_lost: 0,
            put_lost: 0,
            put_ack_lost: 0,
            put_corrupt: 0,
        }
    }

    pub fn some() -> Faults {
        Faults {
            meta_lost_before_apply: 5,
            meta_answer_lost: 5,
            put_lost: 3,
            put_ack_lost: 3,
            put_corrupt: 2,
        }
    }
}

pub struct SimNode {
    pub zone: String,
    pub up: bool,
    pub shards: BTreeMap<ShardId, Vec<u8>>,
}

/// Everything the simulated processes share (one thread, so `Rc<RefCell<_>>`).
pub struct WorldState {
    pub rng: Rng,
    pub faults: Faults,
    pub ring: PartitionRing,
    pub partitions: Vec<StateMachine>,
    pub bucket_service: StateMachine,
    pub log_indexes: Vec<u64>,
    pub nodes: BTreeMap<u64, SimNode>,
    pub now_ms: u64,
    /// Set by the janitor-safety invariant: a delete of a piece a committed record references
    /// on that node panics.
    pub guard_deletes: bool,
    pub violations: Vec<String>,
}

pub type Shared = Rc<RefCell<WorldState>>;

impl WorldState {
    fn group_machine(&mut self, group: GroupId) -> (&mut StateMachine, &mut u64) {
        if group == GroupId::BUCKET_SERVICE {
            let index = self.partitions.len();
            (&mut self.bucket_service, &mut self.log_indexes[index])
        } else {
            let index = (group.0 - 1) as usize;
            (&mut self.partitions[index], &mut self.log_indexes[index])
        }
    }

    fn group_of_command(&self, command: &Command) -> GroupId {
        if command.scope() == Scope::Bucket {
            return GroupId::BUCKET_SERVICE;
        }
        let (bucket, key) = match command {
            Command::PrepareWrite(c) => (&c.bucket, &c.key),
            Command::CommitWrite(c) => (&c.bucket, &c.key),
            Command::AbortWrite(c) => (&c.bucket, &c.key),
            Command::DeleteObject(c) => (&c.bucket, &c.key),
            Command::UpdateShardMap(c) => (&c.bucket, &c.key),
            Command::CreateMultipartUpload(c) => (&c.bucket, &c.key),
            Command::AbortMultipartUpload(c) => (&c.bucket, &c.key),
            Command::PutObjectAttribute { bucket, key, .. } => (bucket, key),
            Command::Conditional { command, .. } => return self.group_of_command(command),
            Command::Read(query) => return self.group_of_query(query),
            other => panic!("the simulation does not route {}", other.name()),
        };
        GroupId::partition(self.ring.partition_of(bucket, key))
    }

    fn group_of_query(&self, query: &Query) -> GroupId {
        if query.scope() == Scope::Bucket {
            return GroupId::BUCKET_SERVICE;
        }
        match query {
            Query::GetObject { bucket, key, .. } => {
                GroupId::partition(self.ring.partition_of(bucket, key))
            }
            other => panic!("the simulation does not route {}", other.name()),
        }
    }

    /// Every (node, shard) the committed records of every partition reference.
    pub fn referenced_pieces(&self) -> BTreeSet<(u64, ShardId)> {
        let mut pieces = BTreeSet::new();
        for (index, machine) in self.partitions.iter().enumerate() {
            for record in committed_records(machine) {
                let object_id = shard_object_id(index as u32, record.shard_name_id());
                for part in &record.erasure.parts {
                    for (block_index, block) in part.blocks.iter().enumerate() {
                        for (shard, placement) in &block.shards {
                            pieces.insert((
                                placement.node_id.0,
                                ShardId::new(
                                    object_id,
                                    part.part_number,
                                    block_index as u32,
                                    *shard,
                                ),
                            ));
                        }
                    }
                }
            }
        }
        pieces
    }
}

/// Every committed, non-delete-marker version a state machine holds.
pub fn committed_records(machine: &StateMachine) -> Vec<ObjectRecord> {
    let mut records = Vec::new();
    let mut key_marker = None;
    let mut version_id_marker = None;
    loop {
        let request = ListVersionsRequest {
            bucket: BUCKET.to_owned(),
            prefix: String::new(),
            delimiter: String::new(),
            key_marker: key_marker.clone(),
            version_id_marker,
            max_keys: 1000,
        };
        let Ok(Response::VersionList(page)) = machine.query(&Query::ListVersions(request)) else {
            return records;
        };
        for version in page
            .versions
            .iter()
            .filter(|version| !version.delete_marker)
        {
            if let Ok(Response::Object(record)) = machine.query(&Query::GetObject {
                bucket: BUCKET.to_owned(),
                key: version.key.clone(),
                version: VersionSelector::Id(version.version_id),
            }) {
                records.push(record);
            }
        }
        if !page.is_truncated {
            return records;
        }
        key_marker = page.next_key_marker.clone();
        version_id_marker = page.next_version_id_marker;
    }
}

fn unavailable(group: GroupId) -> MetaClientError {
    MetaClientError::Unavailable {
        group,
        attempts: 1,
        last_error: "simulated message loss".to_owned(),
    }
}

/// The workers' `MetaAccess` over the world's state machines.
pub struct SimMeta(pub Shared);

impl SimMeta {
    fn apply(&mut self, group: GroupId, command: Command) -> Result<Output, MetaClientError> {
        let mut world = self.0.borrow_mut();
        let faults = world.faults;
        if world.rng.chance(faults.meta_lost_before_apply) {
            return Err(unavailable(group));
        }
        let (machine, log_index) = world.group_machine(group);
        *log_index += 1;
        let output = machine.apply(command, *log_index);
        if let Err(violation) = machine.check_invariants() {
            world
                .violations
                .push(format!("state machine invariant: {violation}"));
        }
        if world.rng.chance(faults.meta_answer_lost) {
            return Err(unavailable(group));
        }
        Ok(output)
    }
}

impl MetaAccess for SimMeta {
    fn partitions(&self) -> Vec<GroupId> {
        (0..PARTITIONS).map(GroupId::partition).collect()
    }

    fn partition_of(&self, bucket: &str, key: &str) -> GroupId {
        GroupId::partition(self.0.borrow().ring.partition_of(bucket, key))
    }

    fn read(&mut self, query: Query) -> Result<Result<Response, MetaError>, MetaClientError> {
        let group = self.0.borrow().group_of_query(&query);
        self.read_from(group, query)
    }

    fn read_from(
        &mut self,
        group: GroupId,
        query: Query,
    ) -> Result<Result<Response, MetaError>, MetaClientError> {
        let mut world = self.0.borrow_mut();
        let (machine, _) = world.group_machine(group);
        Ok(machine.query(&query))
    }

    fn write(&mut self, command: Command) -> Result<Output, MetaClientError> {
        let group = self.0.borrow().group_of_command(&command);
        self.apply(group, command)
    }

    fn write_to(&mut self, group: GroupId, command: Command) -> Result<Output, MetaClientError> {
        self.apply(group, command)
    }

    fn list_versions(
        &mut self,
        request: ListVersionsRequest,
    ) -> Result<Result<ListVersionsPage, MetaError>, MetaClientError> {
        let world = self.0.borrow();
        let mut pages = Vec::new();
        for machine in &world.partitions {
            match machine.query(&Query::ListVersions(request.clone())) {
                Ok(Response::VersionList(page)) => pages.push(page),
                Ok(_) => panic!("ListVersions answered something else"),
                Err(error) => return Ok(Err(error)),
            }
        }
        Ok(Ok(cairn_raft::client::merge_version_pages(
            pages,
            request.max_keys,
        )))
    }
}

fn io_error(text: &str) -> ClientError {
    ClientError::Io(std::io::Error::new(
        std::io::ErrorKind::ConnectionRefused,
        text.to_owned(),
    ))
}

/// The workers' `ShardAccess` over the world's nodes. Storage faults apply to puts from every
/// writer (gateway model and healer alike).
pub struct SimNodes(pub Shared);

impl ShardAccess for SimNodes {
    fn node_ids(&self) -> Vec<u64> {
        self.0.borrow().nodes.keys().copied().collect()
    }

    fn get(&mut self, node_id: u64, shard_id: ShardId) -> Result<Vec<u8>, ClientError> {
        let world = self.0.borrow();
        let node = world
            .nodes
            .get(&node_id)
            .ok_or_else(|| io_error("no such node"))?;
        if !node.up {
            return Err(io_error("node down"));
        }
        node.shards
            .get(&shard_id)
            .cloned()
            .ok_or(ClientError::NotFound {
                message: "no such shard".to_owned(),
            })
    }

    fn put(&mut self, node_id: u64, shard_id: ShardId, bytes: &[u8]) -> Result<(), ClientError> {
        let mut world = self.0.borrow_mut();
        let faults = world.faults;
        if world.rng.chance(faults.put_lost) {
            return Err(io_error("simulated lost put"));
        }
        let corrupt = world.rng.chance(faults.put_corrupt);
        let ack_lost = world.rng.chance(faults.put_ack_lost);
        let node = world
            .nodes
            .get_mut(&node_id)
            .ok_or_else(|| io_error("no such node"))?;
        if !node.up {
            return Err(io_error("node down"));
        }
        let mut stored = bytes.to_vec();
        if corrupt && !stored.is_empty() {
            stored[0] ^= 0x40;
        }
        node.shards.insert(shard_id, stored);
        if ack_lost {
            return Err(io_error("simulated lost acknowledgement"));
        }
        Ok(())
    }

    fn delete(&mut self, node_id: u64, shard_id: ShardId) -> Result<bool, ClientError> {
        let mut world = self.0.borrow_mut();
        if world.guard_deletes && world.referenced_pieces().contains(&(node_id, shard_id)) {
            world.violations.push(format!(
                "deleted {shard_id:?} on node {node_id}, which a committed record uses"
            ));
        }
        let node = world
            .nodes
            .get_mut(&node_id)
            .ok_or_else(|| io_error("no such node"))?;
        if !node.up {
            return Err(io_error("node down"));
        }
        Ok(node.shards.remove(&shard_id).is_some())
    }

    fn scan(
        &mut self,
        node_id: u64,
        after: Option<ShardId>,
        limit: u32,
    ) -> Result<ScanPage, ClientError> {
        let world = self.0.borrow();
        let node = world
            .nodes
            .get(&node_id)
            .ok_or_else(|| io_error("no such node"))?;
        if !node.up {
            return Err(io_error("node down"));
        }
        let range = match after {
            Some(after) => node
                .shards
                .range((std::ops::Bound::Excluded(after), std::ops::Bound::Unbounded)),
            None => node.shards.range(..),
        };
        let entries: Vec<_> = range
            .take(limit as usize)
            .map(|(shard_id, bytes)| cairn_wire::ShardEntry {
                shard_id: *shard_id,
                length: bytes.len() as u64,
                crc32c: crc32c::crc32c(bytes),
            })
            .collect();
        let next_after = (entries.len() == limit as usize)
            .then(|| entries.last().map(|entry| entry.shard_id))
            .flatten();
        Ok(ScanPage {
            entries,
            next_after,
        })
    }
}

/// What became of one PUT in the gateway model.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PutOutcome {
    /// 200 to the client.
    Acknowledged,
    /// An error to the client (the write may still have committed if an answer was lost).
    Failed,
    /// The gateway crashed at this point; nothing more happens for this PUT.
    Crashed,
    /// Pieces written, commit not sent yet: [`World::finish_stalled`] sends it later.
    Stalled(Box<StalledPut>),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StalledPut {
    pub key: String,
    pub token: String,
    pub record: ObjectRecord,
    pub part: PartShards,
    pub data: Vec<u8>,
}

/// The simulated deployment.
pub struct World {
    pub shared: Shared,
    pub meta: SimMeta,
    pub nodes: SimNodes,
    pub janitor: Janitor<SimMeta, SimNodes>,
    pub healer: Healer<SimMeta, SimNodes>,
}

impl World {
    pub fn new(seed: u64, faults: Faults) -> World {
        let partitions = (0..PARTITIONS)
            .map(|partition_index| {
                StateMachine::new(Role::ObjectPartition {
                    partition_index,
                    partition_count: PARTITIONS,
                })
            })
            .collect();
        let nodes = (1..=NODES)
            .map(|node_id| {
                (
                    node_id,
                    SimNode {
                        zone: format!("az{}", (node_id - 1) % 3 + 1),
                        up: true,
                        shards: BTreeMap::new(),
                    },
                )
            })
            .collect();
        let shared = Rc::new(RefCell::new(WorldState {
            rng: Rng::new(seed),
            faults: Faults::none(),
            ring: PartitionRing::new(PARTITIONS),
            partitions,
            bucket_service: StateMachine::new(Role::BucketService),
            log_indexes: vec![0; PARTITIONS as usize + 1],
            nodes,
            now_ms: 1_000_000_000,
            guard_deletes: false,
            violations: Vec::new(),
        }));
        let healer_nodes = (1..=NODES)
            .map(|node_id| HealerNode {
                node_id,
                address: "127.0.0.1:1".parse().expect("an address"),
                availability_zone: format!("az{}", (node_id - 1) % 3 + 1),
            })
            .collect();
        let janitor = Janitor::new(
            SimMeta(shared.clone()),
            SimNodes(shared.clone()),
            JanitorConfig {
                prepare_timeout: Duration::from_secs(60),
                garbage_grace: Duration::from_secs(10),
                page_limit: 4,
                scan_page_limit: 4,
                ..JanitorConfig::default()
            },
        );
        let healer = Healer::new(
            SimMeta(shared.clone()),
            SimNodes(shared.clone()),
            healer_nodes,
            HealerConfig {
                down_grace: Duration::ZERO,
                read_budget_bytes_per_second: u64::MAX / 2,
                ..HealerConfig::default()
            },
        );
        let mut world = World {
            meta: SimMeta(shared.clone()),
            nodes: SimNodes(shared.clone()),
            shared,
            janitor,
            healer,
        };
        let created = world.meta.write(Command::CreateBucket(CreateBucket {
            bucket: BUCKET.to_owned(),
            owner: "sim".to_owned(),
            primary_region: "sim".to_owned(),
            ec_scheme: SCHEME.to_owned(),
            acl: Default::default(),
            now_ms: 1,
            attributes: Default::default(),
        }));
        assert!(matches!(created, Ok(output) if output.result.is_ok()));
        world.shared.borrow_mut().faults = faults;
        world
    }

    pub fn rng(&self) -> std::cell::RefMut<'_, Rng> {
        std::cell::RefMut::map(self.shared.borrow_mut(), |world| &mut world.rng)
    }

    pub fn chance(&self, percent: u64) -> bool {
        self.shared.borrow_mut().rng.chance(percent)
    }

    pub fn now_ms(&self) -> u64 {
        self.shared.borrow().now_ms
    }

    pub fn advance(&self, milliseconds: u64) {
        self.shared.borrow_mut().now_ms += milliseconds;
    }

    /// A metadata write retried (same command, so same token) until it gets an answer.
    fn write_retrying(&mut self, command: Command) -> Result<Response, MetaError> {
        for _ in 0..50 {
            if let Ok(output) = self.meta.write(command.clone()) {
                return output.result;
            }
        }
        panic!("50 lost metadata messages in a row");
    }

    /// The gateway model's PUT (see the module header). `crash_percent` is the chance to crash
    /// at each step; `stall` makes it stop before the commit.
    pub fn put(&mut self, key: &str, data: &[u8], crash_percent: u64, stall: bool) -> PutOutcome {
        let token = format!("token-{key}-{}", self.shared.borrow_mut().rng.next());
        let now_ms = self.now_ms();
        let prepare = Command::PrepareWrite(PrepareWrite {
            bucket: BUCKET.to_owned(),
            key: key.to_owned(),
            idempotency_token: token.clone(),
            size_bytes: data.len() as u64,
            content_type: "application/octet-stream".to_owned(),
            owner: "sim".to_owned(),
            user_metadata: BTreeMap::new(),
            storage_class: StorageClass::Standard,
            acl: Default::default(),
            ec_scheme: SCHEME.to_owned(),
            piece_size_bytes: PIECE_BYTES as u32,
            versioning: VersioningState::Unversioned,
            now_ms,
            attributes: Default::default(),
        });
        let record = match self.write_retrying(prepare) {
            Ok(Response::Prepared { record, .. }) => record,
            other => panic!("PrepareWrite: {other:?}"),
        };
        if self.chance(crash_percent) {
            return PutOutcome::Crashed;
        }
        let partition = self.meta.partition_of(BUCKET, key);
        let object_id = shard_object_id((partition.0 - 1) as u32, record.shard_name_id());
        let Some(part) = self.write_blocks(object_id, data, crash_percent) else {
            return PutOutcome::Crashed;
        };
        // At least k + 1 pieces per block, padding pieces counted (placed or not).
        let too_few = |block: &BlockShards| {
            block.present_pieces(DATA_SHARDS, PIECE_BYTES as u64) < DATA_SHARDS + 1
        };
        if part.blocks.iter().any(too_few) {
            let abort = Command::AbortWrite(AbortWrite {
                bucket: BUCKET.to_owned(),
                key: key.to_owned(),
                version_id: record.version_id,
                now_ms: self.now_ms(),
            });
            let _ = self.meta.write(abort);
            return PutOutcome::Failed;
        }
        let stalled = StalledPut {
            key: key.to_owned(),
            token,
            record,
            part,
            data: data.to_vec(),
        };
        if stall {
            return PutOutcome::Stalled(Box::new(stalled));
        }
        self.finish_stalled(&stalled)
    }

    /// Sends a (possibly late) commit.
    pub fn finish_stalled(&mut self, put: &StalledPut) -> PutOutcome {
        let commit = Command::CommitWrite(CommitWrite {
            bucket: BUCKET.to_owned(),
            key: put.key.clone(),
            version_id: put.record.version_id,
            idempotency_token: put.token.clone(),
            checksums: Checksums {
                etag: format!("{:032x}", crc32c::crc32c(&put.data)),
                additional: None,
            },
            parts: vec![put.part.clone()],
            now_ms: self.now_ms(),
        });
        match self.write_retrying(commit) {
            Ok(Response::Committed { .. }) => PutOutcome::Acknowledged,
            _ => PutOutcome::Failed,
        }
    }

    /// Encodes `data` into 4+2 blocks and writes every piece; `None` if the gateway crashed.
    fn write_blocks(
        &mut self,
        object_id: u128,
        data: &[u8],
        crash_percent: u64,
    ) -> Option<PartShards> {
        let scheme: Scheme = SCHEME.parse().expect("a scheme");
        let mut codec = new_codec(scheme);
        let block_bytes = DATA_SHARDS * PIECE_BYTES;
        // Like the gateway, a short block's padding data pieces are not written; half the
        // objects are written the way gateways did before that rule (padding pieces stored and
        // placed), so the healer and readers meet both kinds of shard map.
        let place_padding = self.chance(50);
        let mut blocks = Vec::new();
        for (block_index, chunk) in data.chunks(block_bytes).enumerate() {
            let padding = padding(chunk.len() as u64);
            let mut pieces: Vec<Vec<u8>> = (0..DATA_SHARDS)
                .map(|shard| {
                    let mut piece = vec![0u8; PIECE_BYTES];
                    let start = (shard * PIECE_BYTES).min(chunk.len());
                    let end = ((shard + 1) * PIECE_BYTES).min(chunk.len());
                    piece[..end - start].copy_from_slice(&chunk[start..end]);
                    piece
                })
                .collect();
            let mut parity = vec![vec![0u8; PIECE_BYTES]; PARITY_SHARDS];
            {
                let data_views: Vec<&[u8]> = pieces.iter().map(Vec::as_slice).collect();
                let mut parity_views: Vec<&mut [u8]> =
                    parity.iter_mut().map(Vec::as_mut_slice).collect();
                codec
                    .encode(&data_views, &mut parity_views)
                    .expect("encode");
            }
            pieces.extend(parity);
            let (zones, down): (Vec<String>, BTreeSet<usize>) = {
                let world = self.shared.borrow();
                let zones = world.nodes.values().map(|node| node.zone.clone()).collect();
                // The gateway skips nodes the registry reports DOWN.
                let down = world
                    .nodes
                    .values()
                    .enumerate()
                    .filter(|(_, node)| !node.up)
                    .map(|(position, _)| position)
                    .collect();
                (zones, down)
            };
            let zone_names: Vec<&str> = zones.iter().map(String::as_str).collect();
            let rotation = self.shared.borrow_mut().rng.next();
            let mut unavailable = down;
            let mut placed: BTreeMap<ShardIndex, ShardPlacement> = BTreeMap::new();
            for (shard, piece) in pieces.iter().enumerate() {
                if padding.contains(&shard) && !place_padding {
                    continue;
                }
                if self.chance(crash_percent) {
                    return None;
                }
                let chosen: Vec<usize> = placed
                    .values()
                    .map(|placement| (placement.node_id.0 - 1) as usize)
                    .collect();
                while let Ok(node) = cairn_common::placement::choose_nodes(
                    &zone_names,
                    1,
                    PARITY_SHARDS,
                    rotation.wrapping_add(shard as u64),
                    &unavailable,
                    &chosen,
                ) {
                    let node_id = node[0] as u64 + 1;
                    let shard_id =
                        ShardId::new(object_id, 1, block_index as u32, ShardIndex(shard as u16));
                    match self.nodes.put(node_id, shard_id, piece) {
                        Ok(()) => {
                            placed.insert(
                                ShardIndex(shard as u16),
                                ShardPlacement {
                                    node_id: NodeId(node_id),
                                    availability_zone: zone_names[node[0]].to_owned(),
                                    crc32c: crc32c::crc32c(piece),
                                },
                            );
                            break;
                        }
                        Err(_) => {
                            unavailable.insert(node[0]);
                        }
                    }
                }
            }
            blocks.push(BlockShards {
                length_bytes: chunk.len() as u64,
                shards: placed,
            });
        }
        Some(PartShards {
            part_number: 1,
            length_bytes: data.len() as u64,
            blocks,
        })
    }

    /// Deletes a key (retried until answered); true when the delete took effect.
    pub fn delete(&mut self, key: &str) -> bool {
        let command = Command::DeleteObject(cairn_meta_state::DeleteObject {
            bucket: BUCKET.to_owned(),
            key: key.to_owned(),
            version: VersionSelector::Current,
            versioning: VersioningState::Unversioned,
            owner: "sim".to_owned(),
            now_ms: self.now_ms(),
        });
        self.write_retrying(command).is_ok()
    }

    /// Reads `key` the way the gateway does: the current record, then per block the pieces that
    /// match the shard map's checksums, decoded when some are missing. `None` when the key does
    /// not exist; `Err` when a block cannot be decoded.
    pub fn read(&mut self, key: &str) -> Option<Result<Vec<u8>, String>> {
        let query = Query::GetObject {
            bucket: BUCKET.to_owned(),
            key: key.to_owned(),
            version: VersionSelector::Current,
        };
        let record = match self.meta.read(query).expect("reads are not faulted") {
            Ok(Response::Object(record)) => record,
            _ => return None,
        };
        let partition = self.meta.partition_of(BUCKET, key);
        let object_id = shard_object_id((partition.0 - 1) as u32, record.shard_name_id());
        let scheme: Scheme = SCHEME.parse().expect("a scheme");
        let mut codec = new_codec(scheme);
        let mut data = Vec::new();
        for part in &record.erasure.parts {
            for (block_index, block) in part.blocks.iter().enumerate() {
                // Padding pieces are zeros, as the buffers start.
                let mut buffers = vec![vec![0u8; PIECE_BYTES]; DATA_SHARDS + PARITY_SHARDS];
                let padding = padding(block.length_bytes);
                let mut present: ShardSet = padding.clone().collect();
                for (shard, placement) in &block.shards {
                    if padding.contains(&usize::from(shard.0)) {
                        continue;
                    }
                    let shard_id =
                        ShardId::new(object_id, part.part_number, block_index as u32, *shard);
                    if let Ok(bytes) = self.nodes.get(placement.node_id.0, shard_id)
                        && crc32c::crc32c(&bytes) == placement.crc32c
                    {
                        buffers[shard.0 as usize] = bytes;
                        present.insert(shard.0 as usize);
                    }
                }
                if present.len() < DATA_SHARDS {
                    return Some(Err(format!(
                        "block {block_index} of {key} has {} good pieces",
                        present.len()
                    )));
                }
                let wanted = ShardSet::range(0, DATA_SHARDS).difference(&present);
                if !wanted.is_empty() {
                    let mut views: Vec<&mut [u8]> =
                        buffers.iter_mut().map(Vec::as_mut_slice).collect();
                    codec
                        .reconstruct(&mut views, present, wanted)
                        .expect("decode");
                }
                let mut block_data: Vec<u8> = buffers[..DATA_SHARDS].concat();
                block_data.truncate(block.length_bytes as usize);
                data.extend(block_data);
            }
        }
        Some(Ok(data))
    }

    /// Whether every block of every committed record has all k+m pieces good (padding pieces
    /// are good by definition).
    pub fn fully_redundant(&self) -> bool {
        let world = self.shared.borrow();
        for (index, machine) in world.partitions.iter().enumerate() {
            for record in committed_records(machine) {
                let object_id = shard_object_id(index as u32, record.shard_name_id());
                for part in &record.erasure.parts {
                    for (block_index, block) in part.blocks.iter().enumerate() {
                        if block.present_pieces(DATA_SHARDS, PIECE_BYTES as u64)
                            < DATA_SHARDS + PARITY_SHARDS
                        {
                            return false;
                        }
                        let padding = padding(block.length_bytes);
                        for (shard, placement) in block
                            .shards
                            .iter()
                            .filter(|(shard, _)| !padding.contains(&usize::from(shard.0)))
                        {
                            let shard_id = ShardId::new(
                                object_id,
                                part.part_number,
                                block_index as u32,
                                *shard,
                            );
                            let node = &world.nodes[&placement.node_id.0];
                            let good = node.up
                                && node
                                    .shards
                                    .get(&shard_id)
                                    .is_some_and(|bytes| crc32c::crc32c(bytes) == placement.crc32c);
                            if !good {
                                return false;
                            }
                        }
                    }
                }
            }
        }
        true
    }

    pub fn run_janitor(&mut self) {
        let now_ms = self.now_ms();
        let _ = self.janitor.run_pass(now_ms);
    }

    pub fn run_healer(&mut self) {
        let now_ms = self.now_ms();
        let _ = self.healer.run_pass_at(now_ms);
    }

    /// Violations the simulated I/O recorded (state-machine invariants, guarded deletes).
    pub fn violations(&self) -> Vec<String> {
        self.shared.borrow().violations.clone()
    }
}

/// Deterministic object content for `(key, generation)`: 1 to 700 bytes (1 to 3 blocks).
pub fn content(rng: &mut Rng) -> Vec<u8> {
    let length = 1 + rng.below(700) as usize;
    (0..length).map(|_| rng.next() as u8).collect()
}

/// Runs `body` for every seed of the run (`CAIRN_SIM_SEED` for one, else `CAIRN_SIM_SEEDS` or
/// `default_seeds` seeds from 1), naming the seed in any panic.
pub fn for_each_seed(default_seeds: u64, body: impl Fn(u64)) {
    let seeds: Vec<u64> = match std::env::var("CAIRN_SIM_SEED") {
        Ok(seed) => vec![seed.parse().expect("CAIRN_SIM_SEED is a number")],
        Err(_) => {
            let count = std::env::var("CAIRN_SIM_SEEDS")
                .ok()
                .and_then(|count| count.parse().ok())
                .unwrap_or(default_seeds);
            (1..=count).collect()
        }
    };
    for seed in seeds {
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| body(seed)));
        if let Err(panic) = outcome {
            let message = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|text| (*text).to_owned()))
                .unwrap_or_default();
            panic!("simulation failed with seed {seed} (replay: CAIRN_SIM_SEED={seed}): {message}");
        }
    }
}
