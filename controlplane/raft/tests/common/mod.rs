//! Test harness: three (or more) `MetaNode`s in one process over real TCP on 127.0.0.1, each
//! with its own LMDB directory, and helpers to build object commands.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use cairn_meta_state::{
    Acl, Checksums, Command, CommitWrite, ObjectRecord, PrepareWrite, Query, Response,
    StorageClass, VersionSelector, VersioningState,
};
use cairn_raft::types::NodeId;
use cairn_raft::{GroupId, MetaClient, MetaClientConfig, MetaNode, MetaNodeConfig, RaftTiming};
use tokio::net::TcpListener;

pub const BUCKET: &str = "photos";

/// Fast elections for tests: a leader loss is detected within a second.
pub fn fast_timing() -> RaftTiming {
    RaftTiming {
        heartbeat_interval_ms: 50,
        election_timeout_min_ms: 300,
        election_timeout_max_ms: 600,
        ..RaftTiming::default()
    }
}

pub struct Cluster {
    pub dirs: BTreeMap<NodeId, tempfile::TempDir>,
    pub addresses: BTreeMap<NodeId, SocketAddr>,
    pub nodes: BTreeMap<NodeId, MetaNode>,
    /// Zone of each node (empty: every node its own zone).
    pub zones: BTreeMap<NodeId, String>,
    pub partition_count: u32,
    pub timing: RaftTiming,
    /// Each node's configured version tag (absent: 0, none).
    pub version_tags: BTreeMap<NodeId, u8>,
}

impl Cluster {
    /// Starts `node_count` bootstrapping nodes with ids 1..=node_count.
    pub async fn start(node_count: u64, partition_count: u32, timing: RaftTiming) -> Cluster {
        Cluster::start_in_zones(&vec![""; node_count as usize], partition_count, timing).await
    }

    /// Starts one bootstrapping node per entry of `zones` (ids 1..), node i in zone `zones[i-1]`;
    /// all zones empty means no zones configured.
    pub async fn start_in_zones(
        zones: &[&str],
        partition_count: u32,
        timing: RaftTiming,
    ) -> Cluster {
        Cluster::start_tagged(zones, partition_count, timing, BTreeMap::new()).await
    }

    /// [`Cluster::start_in_zones`] with each node configured with its version tag.
    pub async fn start_tagged(
        zones: &[&str],
        partition_count: u32,
        timing: RaftTiming,
        version_tags: BTreeMap<NodeId, u8>,
    ) -> Cluster {
        let node_count = zones.len() as u64;
        let zones: BTreeMap<NodeId, String> = if zones.iter().all(|zone| zone.is_empty()) {
            BTreeMap::new()
        } else {
            (1..=node_count)
                .zip(zones.iter().map(|zone| zone.to_string()))
                .collect()
        };
        let mut listeners = BTreeMap::new();
        let mut addresses = BTreeMap::new();
        for node_id in 1..=node_count {
            let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
            addresses.insert(node_id, listener.local_addr().expect("local addr"));
            listeners.insert(node_id, listener);
        }
        let mut cluster = Cluster {
            dirs: BTreeMap::new(),
            addresses,
            nodes: BTreeMap::new(),
            zones,
            partition_count,
            timing,
            version_tags,
        };
        for (node_id, listener) in listeners {
            cluster
                .dirs
                .insert(node_id, tempfile::tempdir().expect("temp dir"));
            let node = MetaNode::start_with_listener(cluster.config(node_id), listener)
                .await
                .expect("start node");
            cluster.nodes.insert(node_id, node);
        }
        cluster
    }

    pub fn peers(&self) -> BTreeMap<NodeId, String> {
        self.addresses
            .iter()
            .map(|(&node_id, address)| (node_id, address.to_string()))
            .collect()
    }

    pub fn config(&self, node_id: NodeId) -> MetaNodeConfig {
        let mut config = MetaNodeConfig::new(
            node_id,
            self.addresses[&node_id],
            self.dirs[&node_id].path().to_owned(),
            self.peers(),
        );
        config.partition_count = self.partition_count;
        config.zones = self.zones.clone();
        config.timing = self.timing.clone();
        config.version_tag = self.version_tags.get(&node_id).copied().unwrap_or(0);
        config
    }

    pub fn client_config(&self) -> MetaClientConfig {
        let mut config = MetaClientConfig::new(self.peers(), self.partition_count);
        config.zones = self.zones.clone();
        config.operation_timeout_ms = 20_000;
        config
    }

    pub fn client(&self) -> MetaClient {
        MetaClient::new(self.client_config())
    }

    /// Starts a node that joins nothing by itself (`bootstrap: false`), to be added by a leader.
    pub async fn start_joining(&mut self, node_id: NodeId) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let address = listener.local_addr().expect("local addr");
        self.addresses.insert(node_id, address);
        self.dirs
            .insert(node_id, tempfile::tempdir().expect("temp dir"));
        let mut config = self.config(node_id);
        config.bootstrap = false;
        let node = MetaNode::start_with_listener(config, listener)
            .await
            .expect("start joining node");
        self.nodes.insert(node_id, node);
        address
    }

    /// Shuts a node down (its data stays).
    pub async fn stop(&mut self, node_id: NodeId) {
        let node = self.nodes.remove(&node_id).expect("node running");
        node.shutdown().await;
    }

    /// Starts a stopped node again on its old address and data directory.
    pub async fn restart(&mut self, node_id: NodeId) {
        let listener = bind_retrying(self.addresses[&node_id]).await;
        let node = MetaNode::start_with_listener(self.config(node_id), listener)
            .await
            .expect("restart node");
        self.nodes.insert(node_id, node);
    }

    /// The leader of `group` once every running node agrees on one.
    pub async fn wait_for_leader(&self, group: GroupId, timeout: Duration) -> NodeId {
        let started = Instant::now();
        loop {
            // Only members of the group have a view worth agreeing on (a node waiting to join
            // knows no leader yet).
            let views: Vec<Option<NodeId>> = self
                .nodes
                .values()
                .filter(|node| {
                    let Some(handle) = node.group(group) else {
                        return false;
                    };
                    let metrics = handle.raft.metrics().borrow().clone();
                    metrics
                        .membership_config
                        .membership()
                        .nodes()
                        .any(|(&member, _)| member == node.node_id())
                })
                .map(|node| node.current_leader(group))
                .collect();
            if let Some(Some(leader)) = views.first()
                && self.nodes.contains_key(leader)
                && views.iter().all(|view| *view == Some(*leader))
            {
                return *leader;
            }
            assert!(
                started.elapsed() < timeout,
                "no agreed leader for {group} after {timeout:?}: {views:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub async fn shutdown(self) {
        for (_, node) in self.nodes {
            node.shutdown().await;
        }
    }
}

async fn bind_retrying(address: SocketAddr) -> TcpListener {
    let started = Instant::now();
    loop {
        match TcpListener::bind(address).await {
            Ok(listener) => return listener,
            Err(error) => {
                assert!(
                    started.elapsed() < Duration::from_secs(5),
                    "rebind {address}: {error}"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

pub fn prepare(key: &str, token: &str) -> Command {
    Command::PrepareWrite(PrepareWrite {
        bucket: BUCKET.to_owned(),
        key: key.to_owned(),
        idempotency_token: token.to_owned(),
        size_bytes: 0,
        content_type: "text/plain".to_owned(),
        owner: "owner-alice".to_owned(),
        user_metadata: BTreeMap::new(),
        storage_class: StorageClass::Standard,
        acl: Acl::default(),
        ec_scheme: "isal-cauchy:4+2".to_owned(),
        piece_size_bytes: 65_536,
        versioning: VersioningState::Unversioned,
        now_ms: 10_000,
        attributes: Default::default(),
    })
}

/// The CommitWrite of an empty object prepared with `token`.
pub fn commit(key: &str, token: &str, version_id: cairn_meta_state::VersionId) -> Command {
    Command::CommitWrite(CommitWrite {
        bucket: BUCKET.to_owned(),
        key: key.to_owned(),
        version_id,
        idempotency_token: token.to_owned(),
        checksums: Checksums {
            etag: "d41d8cd98f00b204e9800998ecf8427e".to_owned(),
            additional: None,
        },
        parts: Vec::new(),
        now_ms: 20_000,
    })
}

/// PrepareWrite + CommitWrite of every key, each phase in one batch per partition
/// ([`MetaClient::write_many`]). A key whose batch item was not applied is put again alone
/// (both commands are idempotent by the key's token). Panics if a key cannot be put.
pub async fn put_batch(client: &MetaClient, keys: &[String]) {
    let token = |key: &str| format!("token-{key}");
    let prepares = keys.iter().map(|key| prepare(key, &token(key))).collect();
    let prepared = client.write_many(prepares).await.expect("prepare batch");
    let mut commits = Vec::new();
    let mut committing = Vec::new();
    let mut again = Vec::new();
    for (key, answer) in keys.iter().zip(prepared) {
        match answer.map(|output| output.result) {
            Ok(Ok(Response::Prepared { record, .. })) => {
                commits.push(commit(key, &token(key), record.version_id));
                committing.push(key);
            }
            _ => again.push(key),
        }
    }
    let committed = client.write_many(commits).await.expect("commit batch");
    for (key, answer) in committing.into_iter().zip(committed) {
        if !matches!(
            answer.map(|output| output.result),
            Ok(Ok(Response::Committed { .. }))
        ) {
            again.push(key);
        }
    }
    for key in again {
        assert!(try_put(client, key).await, "put {key}");
    }
}

/// PrepareWrite + CommitWrite of an empty object through the client; returns the record.
pub async fn put(client: &MetaClient, key: &str) -> ObjectRecord {
    put_with_token(client, key, &format!("token-{key}")).await
}

/// PrepareWrite + CommitWrite that reports failure instead of panicking: `true` only when both
/// were acknowledged.
pub async fn try_put(client: &MetaClient, key: &str) -> bool {
    let token = format!("token-{key}");
    let Ok(prepared) = client.write(prepare(key, &token)).await else {
        return false;
    };
    let Ok(Response::Prepared { record, .. }) = prepared.result else {
        return false;
    };
    let committed = client
        .write(Command::CommitWrite(CommitWrite {
            bucket: BUCKET.to_owned(),
            key: key.to_owned(),
            version_id: record.version_id,
            idempotency_token: token,
            checksums: Checksums {
                etag: "d41d8cd98f00b204e9800998ecf8427e".to_owned(),
                additional: None,
            },
            parts: Vec::new(),
            now_ms: 20_000,
        }))
        .await;
    matches!(
        committed.map(|output| output.result),
        Ok(Ok(Response::Committed { .. }))
    )
}

/// Like [`put`] with an explicit idempotency token (a new token makes a new version).
pub async fn put_with_token(client: &MetaClient, key: &str, token: &str) -> ObjectRecord {
    let token = token.to_owned();
    let prepared = client.write(prepare(key, &token)).await.expect("prepare");
    let version_id = match prepared.result {
        Ok(Response::Prepared { record, .. }) => record.version_id,
        other => panic!("prepare {key}: {other:?}"),
    };
    let committed = client
        .write(Command::CommitWrite(CommitWrite {
            bucket: BUCKET.to_owned(),
            key: key.to_owned(),
            version_id,
            idempotency_token: token,
            checksums: Checksums {
                etag: "d41d8cd98f00b204e9800998ecf8427e".to_owned(),
                additional: None,
            },
            parts: Vec::new(),
            now_ms: 20_000,
        }))
        .await
        .expect("commit");
    match committed.result {
        Ok(Response::Committed { record, .. }) => record,
        other => panic!("commit {key}: {other:?}"),
    }
}

/// Linearizable GetObject through the client.
pub async fn get(client: &MetaClient, key: &str) -> Option<ObjectRecord> {
    let answer = client
        .read(Query::GetObject {
            bucket: BUCKET.to_owned(),
            key: key.to_owned(),
            version: VersionSelector::Current,
        })
        .await
        .expect("read");
    match answer {
        Ok(Response::Object(record)) => Some(record),
        Err(_) => None,
        Ok(other) => panic!("get {key}: {other:?}"),
    }
}

/// GetObject straight from one node's applied state (no read-index): what that replica holds.
pub fn local_get(node: &MetaNode, group: GroupId, key: &str) -> Option<ObjectRecord> {
    let handle = node.group(group).expect("group");
    match handle.reader.query(&Query::GetObject {
        bucket: BUCKET.to_owned(),
        key: key.to_owned(),
        version: VersionSelector::Current,
    }) {
        Ok(Response::Object(record)) => Some(record),
        _ => None,
    }
}

pub fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_test_writer()
        .try_init();
}

/// A node's Raft metrics for one group.
pub fn metrics(
    node: &MetaNode,
    group: GroupId,
) -> openraft::RaftMetrics<NodeId, openraft::BasicNode> {
    node.group(group)
        .expect("group")
        .raft
        .metrics()
        .borrow()
        .clone()
}

/// Index of the last entry `node` applied in `group` (0 before any).
pub fn applied_index(node: &MetaNode, group: GroupId) -> u64 {
    metrics(node, group)
        .last_applied
        .map_or(0, |log_id| log_id.index)
}

/// Waits until `node` has applied `group`'s log up to at least `index`.
pub async fn wait_applied(node: &MetaNode, group: GroupId, index: u64, timeout: Duration) {
    let started = Instant::now();
    while applied_index(node, group) < index {
        assert!(
            started.elapsed() < timeout,
            "node {} applied {} of {group}, wanted {index}",
            node.node_id(),
            applied_index(node, group)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A running node other than `leader`.
pub fn follower_of(cluster: &Cluster, leader: NodeId) -> NodeId {
    *cluster
        .nodes
        .keys()
        .find(|&&node_id| node_id != leader)
        .expect("a follower")
}
