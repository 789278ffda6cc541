//! The janitor against a real metadata replica (openraft on LMDB) and three real storage nodes
//! (O_DIRECT shard logs), driven through the same commands a gateway sends: a committed object
//! overwritten, a write left PREPARING past the timeout, a write aborted by its gateway and a
//! fresh PREPARING write. One pass must delete exactly the shards of the first three and leave
//! the committed object's and the fresh write's untouched; a second pass must find nothing.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{SocketAddr, TcpListener};
use std::time::Duration;

use cairn_common::{ShardId, ShardIndex};
use cairn_meta_state::{
    AbortWrite, BlockShards, Checksums, Command, CommitWrite, CreateBucket, NodeId, ObjectRecord,
    PartShards, PrepareWrite, Query, Response, ShardPlacement, StorageClass, VersionSelector,
    VersioningState, shard_object_id,
};
use cairn_raft::{MetaClient, MetaClientConfig, MetaNode, MetaNodeConfig};
use cairn_storage_client::StorageClient;
use cairn_workers::{Janitor, JanitorConfig, PassReport, RpcShardStore};

const BUCKET: &str = "janitor-bucket";
const HOUR_MS: u64 = 3_600_000;

fn free_address() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

fn wait_until_listening(address: SocketAddr) {
    for _ in 0..600 {
        if std::net::TcpStream::connect(address).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("nothing listens on {address}");
}

struct Setup {
    runtime: tokio::runtime::Runtime,
    client: MetaClient,
    meta_config: MetaClientConfig,
    nodes: BTreeMap<u64, SocketAddr>,
    _dir: tempfile::TempDir,
}

fn start() -> Setup {
    // O_DIRECT needs a real file system: below the build directory, not a tmpfs /tmp.
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let mut nodes = BTreeMap::new();
    for node_id in 1..=3u64 {
        let address = free_address();
        let mut config = cairn_storage::NodeConfig::new(
            address,
            dir.path().join(format!("storage-{node_id}")),
            format!("az{node_id}"),
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
    Setup {
        runtime,
        client,
        meta_config,
        nodes,
        _dir: dir,
    }
}

impl Setup {
    fn write(&self, command: Command) -> Result<Response, cairn_meta_state::MetaError> {
        self.runtime
            .block_on(self.client.write(command))
            .expect("metadata reachable")
            .result
    }

    fn prepare(&self, key: &str, token: &str, now_ms: u64) -> ObjectRecord {
        let command = Command::PrepareWrite(PrepareWrite {
            bucket: BUCKET.to_owned(),
            key: key.to_owned(),
            idempotency_token: token.to_owned(),
            size_bytes: 3,
            content_type: "binary/octet-stream".to_owned(),
            owner: "root".to_owned(),
            user_metadata: BTreeMap::new(),
            storage_class: StorageClass::Standard,
            acl: Default::default(),
            ec_scheme: "isal-cauchy:2+1".to_owned(),
            piece_size_bytes: 4096,
            versioning: VersioningState::Unversioned,
            now_ms,
        });
        match self.write(command) {
            Ok(Response::Prepared { record, .. }) => record,
            other => panic!("PrepareWrite: {other:?}"),
        }
    }

    /// Puts one shard per node (shard index = node order) as a gateway would; returns the map.
    fn put_shards(&self, record: &ObjectRecord) -> PartShards {
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

    fn commit(&self, record: &ObjectRecord, token: &str, part: PartShards, now_ms: u64) {
        let command = Command::CommitWrite(CommitWrite {
            bucket: BUCKET.to_owned(),
            key: record.key.clone(),
            version_id: record.version_id,
            idempotency_token: token.to_owned(),
            checksums: Checksums {
                etag: "0123456789abcdef0123456789abcdef".to_owned(),
                additional: None,
            },
            parts: vec![part],
            now_ms,
        });
        assert!(
            matches!(self.write(command), Ok(Response::Committed { .. })),
            "CommitWrite"
        );
    }

    /// Every shard on every node, as (node id, shard id).
    fn stored_shards(&self) -> BTreeSet<(u64, ShardId)> {
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

    fn shards_of(&self, record: &ObjectRecord) -> BTreeSet<(u64, ShardId)> {
        let partition = self.client.partition_of(&record.bucket, &record.key);
        let object_id = shard_object_id((partition.0 - 1) as u32, record.shard_name_id());
        self.stored_shards()
            .into_iter()
            .filter(|(_, shard)| shard.object_id() == object_id)
            .collect()
    }

    fn janitor(&self) -> Janitor<RpcShardStore> {
        let config = JanitorConfig {
            prepare_timeout: Duration::from_millis(HOUR_MS),
            garbage_grace: Duration::from_secs(60),
            page_limit: 2,
            scan_page_limit: 2,
            ..JanitorConfig::default()
        };
        Janitor::new(
            MetaClient::new(self.meta_config.clone()),
            RpcShardStore::new(self.nodes.clone(), Duration::from_secs(5)),
            config,
        )
        .unwrap()
    }
}

#[test]
fn one_pass_deletes_exactly_the_garbage_and_rolls_back_stale_writes() {
    let setup = start();
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let created = setup.write(Command::CreateBucket(CreateBucket {
        bucket: BUCKET.to_owned(),
        owner: "root".to_owned(),
        primary_region: "us-east-1".to_owned(),
        ec_scheme: "isal-cauchy:2+1".to_owned(),
        acl: Default::default(),
        now_ms,
    }));
    assert!(created.is_ok(), "{created:?}");

    // Written and committed two hours ago, then overwritten: the first version is garbage.
    let old = now_ms - 2 * HOUR_MS;
    let first = setup.prepare("kept", "t-first", old);
    let first_part = setup.put_shards(&first);
    setup.commit(&first, "t-first", first_part, old);
    let second = setup.prepare("kept", "t-second", old + 1);
    let second_part = setup.put_shards(&second);
    setup.commit(&second, "t-second", second_part, old + 1);
    // A gateway died after writing shards: PREPARING for two hours.
    let stale = setup.prepare("stale", "t-stale", old);
    setup.put_shards(&stale);
    // A gateway aborted its write two hours ago (its shards have no map).
    let aborted = setup.prepare("aborted", "t-aborted", old);
    setup.put_shards(&aborted);
    let abort = setup.write(Command::AbortWrite(AbortWrite {
        bucket: BUCKET.to_owned(),
        key: "aborted".to_owned(),
        version_id: aborted.version_id,
        now_ms: old,
    }));
    assert!(abort.is_ok(), "{abort:?}");
    // A write in progress right now.
    let fresh = setup.prepare("fresh", "t-fresh", now_ms);
    let fresh_part = setup.put_shards(&fresh);

    let everything = setup.stored_shards();
    assert_eq!(everything.len(), 5 * 3);
    let survivors: BTreeSet<_> = setup
        .shards_of(&second)
        .union(&setup.shards_of(&fresh))
        .copied()
        .collect();
    assert_eq!(survivors.len(), 6);

    let mut janitor = setup.janitor();
    // The stale write is rolled back in this pass, so its garbage entry is new (younger than the
    // grace period) and waits; the overwrite's and the abort's are old enough.
    let report = janitor.run_pass(now_ms).unwrap();
    assert_eq!(
        report,
        PassReport {
            stale_writes_aborted: 1,
            garbage_entries_purged: 2,
            shards_deleted: 6,
            garbage_entries_deferred: 1,
        }
    );
    assert!(setup.shards_of(&first).is_empty());
    assert!(setup.shards_of(&aborted).is_empty());
    assert_eq!(
        setup.shards_of(&stale).len(),
        3,
        "deferred by the grace period"
    );

    // Past the grace period the rolled-back write's shards go too; then nothing is left to do.
    let later = now_ms + 61_000;
    let report = janitor.run_pass(later).unwrap();
    assert_eq!(
        report,
        PassReport {
            stale_writes_aborted: 0,
            garbage_entries_purged: 1,
            shards_deleted: 3,
            garbage_entries_deferred: 0,
        }
    );
    assert_eq!(setup.stored_shards(), survivors);
    assert_eq!(janitor.run_pass(later).unwrap(), PassReport::default());

    // The committed object and the in-progress write are untouched: the write still commits and
    // both read back as committed records.
    setup.commit(&fresh, "t-fresh", fresh_part, now_ms);
    for key in ["kept", "fresh"] {
        let read = setup
            .runtime
            .block_on(setup.client.read(Query::GetObject {
                bucket: BUCKET.to_owned(),
                key: key.to_owned(),
                version: VersionSelector::Current,
            }))
            .unwrap();
        assert!(matches!(read, Ok(Response::Object(_))), "{key}: {read:?}");
    }
    // The stale write is gone from the metadata: a late commit from its gateway is refused.
    let late = setup.write(Command::CommitWrite(CommitWrite {
        bucket: BUCKET.to_owned(),
        key: "stale".to_owned(),
        version_id: stale.version_id,
        idempotency_token: "t-stale".to_owned(),
        checksums: Checksums {
            etag: "0123456789abcdef0123456789abcdef".to_owned(),
            additional: None,
        },
        parts: Vec::new(),
        now_ms,
    }));
    assert!(late.is_err(), "{late:?}");
    let stats = janitor.stats();
    assert_eq!(
        stats
            .shards_deleted
            .load(std::sync::atomic::Ordering::Relaxed),
        9
    );
}
