//! A real metadata replica (openraft on LMDB, two partitions) and real storage nodes (O_DIRECT
//! shard logs, one core each) in this test process, and the commands a gateway would send.

#![allow(dead_code)] // Each test file uses a different subset.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{SocketAddr, TcpListener};
use std::time::Duration;

use cairn_common::{ShardId, ShardIndex};
use cairn_meta_state::{
    BlockShards, Checksums, Command, CommitWrite, CreateBucket, NodeId, ObjectRecord, PartShards,
    PrepareWrite, Response, ShardPlacement, StorageClass, VersioningState, shard_object_id,
};
use cairn_raft::{MetaClient, MetaClientConfig, MetaNode, MetaNodeConfig};
use cairn_storage_client::StorageClient;

pub const BUCKET: &str = "janitor-bucket";
pub const HOUR_MS: u64 = 3_600_000;

pub fn free_address() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

pub fn wait_until_listening(address: SocketAddr) {
    for _ in 0..600 {
        if std::net::TcpStream::connect(address).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("nothing listens on {address}");
}

pub struct Setup {
    pub runtime: tokio::runtime::Runtime,
    pub client: MetaClient,
    pub meta_config: MetaClientConfig,
    /// Storage node id → address.
    pub nodes: BTreeMap<u64, SocketAddr>,
    /// Storage node id → AZ (`az1`, `az2`, `az3` round robin).
    pub zones: BTreeMap<u64, String>,
    _dir: tempfile::TempDir,
}

/// Starts a replica and `storage_nodes` storage nodes (ids 1..=n, node i in AZ `az((i-1)%3+1)`)
/// and creates [`BUCKET`] with `ec_scheme`.
pub fn start(storage_nodes: u64, ec_scheme: &str) -> Setup {
    // O_DIRECT needs a real file system: below the build directory, not a tmpfs /tmp.
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let mut nodes = BTreeMap::new();
    let mut zones = BTreeMap::new();
    for node_id in 1..=storage_nodes {
        let address = free_address();
        let zone = format!("az{}", (node_id - 1) % 3 + 1);
        zones.insert(node_id, zone.clone());
        let mut config = cairn_storage::NodeConfig::new(
            address,
            dir.path().join(format!("storage-{node_id}")),
            zone,
        );
        config.cores = Some(1);
        config.segment_size_bytes = 8 << 20;
        config.cache_capacity_bytes_per_core = 0;
        std::thread::spawn(move || cairn_storage::run(config));
        nodes.insert(node_id, address);
    }
    let meta_address = free_address();
    let peers = BTreeMap::from([(1, meta_address.to_string())]);
    let mut config = MetaNodeConfig::new(1, meta_address, dir.path().join("meta"), peers.clone());
    config.partition_count = 2;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let node = runtime.block_on(MetaNode::start(config)).unwrap();
    // The replica lives as long as the runtime.
    std::mem::forget(node);
    for address in nodes.values() {
        wait_until_listening(*address);
    }
    let meta_config = MetaClientConfig::new(peers, 2);
    let client = MetaClient::new(meta_config.clone());
    let setup = Setup {
        runtime,
        client,
        meta_config,
        nodes,
        zones,
        _dir: dir,
    };
    let created = setup.write(Command::CreateBucket(CreateBucket {
        bucket: BUCKET.to_owned(),
        owner: "root".to_owned(),
        primary_region: "us-east-1".to_owned(),
        ec_scheme: ec_scheme.to_owned(),
        acl: Default::default(),
        now_ms: now_ms(),
        attributes: Default::default(),
    }));
    assert!(created.is_ok(), "{created:?}");
    setup
}

pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

impl Setup {
    pub fn object_id(&self, record: &ObjectRecord) -> u128 {
        let partition = self.client.partition_of(&record.bucket, &record.key);
        shard_object_id((partition.0 - 1) as u32, record.shard_name_id())
    }

    pub fn write(&self, command: Command) -> Result<Response, cairn_meta_state::MetaError> {
        self.runtime
            .block_on(self.client.write(command))
            .expect("metadata reachable")
            .result
    }

    pub fn prepare(&self, key: &str, token: &str, now_ms: u64) -> ObjectRecord {
        self.prepare_sized(key, token, now_ms, 3, "isal-cauchy:2+1", 4096)
    }

    pub fn prepare_sized(
        &self,
        key: &str,
        token: &str,
        now_ms: u64,
        size_bytes: u64,
        ec_scheme: &str,
        piece_size_bytes: u32,
    ) -> ObjectRecord {
        let command = Command::PrepareWrite(PrepareWrite {
            bucket: BUCKET.to_owned(),
            key: key.to_owned(),
            idempotency_token: token.to_owned(),
            size_bytes,
            content_type: "binary/octet-stream".to_owned(),
            owner: "root".to_owned(),
            user_metadata: BTreeMap::new(),
            storage_class: StorageClass::Standard,
            acl: Default::default(),
            ec_scheme: ec_scheme.to_owned(),
            piece_size_bytes,
            versioning: VersioningState::Unversioned,
            now_ms,
            attributes: Default::default(),
        });
        match self.write(command) {
            Ok(Response::Prepared { record, .. }) => record,
            other => panic!("PrepareWrite: {other:?}"),
        }
    }

    /// Puts one shard per node (shard index = node order) as a gateway would; returns the map.
    pub fn put_shards(&self, record: &ObjectRecord) -> PartShards {
        let partition = self.client.partition_of(&record.bucket, &record.key);
        let object_id = shard_object_id((partition.0 - 1) as u32, record.shard_name_id());
        let mut block = BlockShards {
            length_bytes: 3,
            shards: BTreeMap::new(),
        };
        for (index, (&node_id, &address)) in self.nodes.iter().enumerate() {
            let shard_index = ShardIndex(index as u16);
            let piece = format!("{}-{index}", record.key).into_bytes();
            let mut client = StorageClient::connect(address).unwrap();
            client
                .put(ShardId::new(object_id, 1, 0, shard_index), &piece)
                .unwrap();
            block.shards.insert(
                shard_index,
                ShardPlacement {
                    node_id: NodeId(node_id),
                    availability_zone: format!("az{node_id}"),
                    crc32c: crc32c::crc32c(&piece),
                },
            );
        }
        PartShards {
            part_number: 1,
            length_bytes: 3,
            blocks: vec![block],
        }
    }

    pub fn commit(&self, record: &ObjectRecord, token: &str, part: PartShards, now_ms: u64) {
        self.commit_parts(record, token, vec![part], now_ms);
    }

    pub fn commit_parts(
        &self,
        record: &ObjectRecord,
        token: &str,
        parts: Vec<PartShards>,
        now_ms: u64,
    ) {
        let command = Command::CommitWrite(CommitWrite {
            bucket: BUCKET.to_owned(),
            key: record.key.clone(),
            version_id: record.version_id,
            idempotency_token: token.to_owned(),
            checksums: Checksums {
                etag: "0123456789abcdef0123456789abcdef".to_owned(),
                additional: None,
            },
            parts,
            now_ms,
        });
        assert!(
            matches!(self.write(command), Ok(Response::Committed { .. })),
            "CommitWrite"
        );
    }

    /// Every shard on every node, as (node id, shard id).
    pub fn stored_shards(&self) -> BTreeSet<(u64, ShardId)> {
        let mut shards = BTreeSet::new();
        for (&node_id, &address) in &self.nodes {
            let mut client = StorageClient::connect(address).unwrap();
            let mut after = None;
            loop {
                let page = client.scan(after, 100).unwrap();
                shards.extend(page.entries.iter().map(|entry| (node_id, entry.shard_id)));
                match page.next_after {
                    Some(next) => after = Some(next),
                    None => break,
                }
            }
        }
        shards
    }

    pub fn shards_of(&self, record: &ObjectRecord) -> BTreeSet<(u64, ShardId)> {
        let partition = self.client.partition_of(&record.bucket, &record.key);
        let object_id = shard_object_id((partition.0 - 1) as u32, record.shard_name_id());
        self.stored_shards()
            .into_iter()
            .filter(|(_, shard)| shard.object_id() == object_id)
            .collect()
    }
}
