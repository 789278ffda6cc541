//! What the workers share: the metadata and shard access they run on ([`MetaAccess`],
//! [`ShardAccess`], with the real implementations [`RaftMeta`] and [`NodeConnections`]), and
//! Prometheus counter rendering.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use cairn_common::ShardId;
use cairn_meta_state::{
    Command, ListVersionsPage, ListVersionsRequest, MetaError, Output, Query, Response,
};
use cairn_raft::{ClientError as MetaClientError, GroupId, MetaClient};
use cairn_storage_client::{ClientConfig, ClientError, ScanPage, StorageClient};

/// How a worker's pass fails when the metadata service cannot be reached, refuses a call, or
/// answers with another response than the call's.
#[derive(Debug, thiserror::Error)]
pub enum MetaCallError {
    #[error("metadata: {0}")]
    Meta(#[from] MetaClientError),
    #[error("metadata refused {command}: {error}")]
    Refused {
        command: &'static str,
        error: MetaError,
    },
    #[error("unexpected metadata answer to {0}")]
    UnexpectedAnswer(&'static str),
}

/// One blocking connection per storage node, dialled on first use. A call that fails at the
/// transport drops its connection, so the next call redials (a node restart costs one error).
pub struct NodeConnections {
    addresses: BTreeMap<u64, SocketAddr>,
    connections: BTreeMap<u64, StorageClient>,
    config: ClientConfig,
}

impl NodeConnections {
    /// `timeout` bounds connecting and every read and write.
    pub fn new(addresses: BTreeMap<u64, SocketAddr>, timeout: Duration) -> Self {
        NodeConnections {
            addresses,
            connections: BTreeMap::new(),
            config: ClientConfig {
                connect_timeout: timeout,
                read_timeout: Some(timeout),
                write_timeout: Some(timeout),
                ..ClientConfig::default()
            },
        }
    }

    /// Dials the nodes with mutual TLS (`cairn_tls::Identity::client_config`); plaintext when
    /// `None`.
    pub fn with_tls(mut self, tls: Option<std::sync::Arc<rustls::ClientConfig>>) -> Self {
        self.config.tls = tls;
        self
    }

    pub fn node_ids(&self) -> Vec<u64> {
        self.addresses.keys().copied().collect()
    }

    /// Runs `operation` on node `node_id`'s connection; `None` for a node it does not know.
    pub fn call<T>(
        &mut self,
        node_id: u64,
        operation: impl FnOnce(&mut StorageClient) -> Result<T, ClientError>,
    ) -> Option<Result<T, ClientError>> {
        let address = *self.addresses.get(&node_id)?;
        if !self.connections.contains_key(&node_id) {
            match StorageClient::connect_with_config(address, self.config.clone()) {
                Ok(client) => {
                    self.connections.insert(node_id, client);
                }
                Err(error) => return Some(Err(error)),
            }
        }
        let client = self.connections.get_mut(&node_id).expect("inserted above");
        let result = operation(client);
        if matches!(result, Err(ClientError::Io(_) | ClientError::Protocol(_))) {
            self.connections.remove(&node_id);
        }
        Some(result)
    }
}

/// Prometheus text for monotonic counters: (name, help, value) each.
pub fn render_counters(counters: &[(&str, &str, &AtomicU64)]) -> String {
    let mut text = String::new();
    for (name, help, counter) in counters {
        text += &format!(
            "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}\n",
            counter.load(Ordering::Relaxed)
        );
    }
    text
}

/// The metadata operations the workers use, blocking. [`RaftMeta`] implements them over the Raft
/// client; the deterministic simulator implements them over in-process state machines, so the
/// janitor and healer run unchanged in both.
pub trait MetaAccess {
    fn partitions(&self) -> Vec<GroupId>;
    fn partition_of(&self, bucket: &str, key: &str) -> GroupId;
    /// A linearizable read from the group the query belongs to.
    fn read(&mut self, query: Query) -> Result<Result<Response, MetaError>, MetaClientError>;
    fn read_from(
        &mut self,
        group: GroupId,
        query: Query,
    ) -> Result<Result<Response, MetaError>, MetaClientError>;
    /// A command through the log of the group it belongs to.
    fn write(&mut self, command: Command) -> Result<Output, MetaClientError>;
    fn write_to(&mut self, group: GroupId, command: Command) -> Result<Output, MetaClientError>;
    /// ListObjectVersions over every partition, merged.
    fn list_versions(
        &mut self,
        request: ListVersionsRequest,
    ) -> Result<Result<ListVersionsPage, MetaError>, MetaClientError>;
}

/// [`MetaAccess`] over Raft: the async client driven by a current-thread runtime of its own.
pub struct RaftMeta {
    client: MetaClient,
    runtime: tokio::runtime::Runtime,
}

impl RaftMeta {
    pub fn new(config: cairn_raft::MetaClientConfig) -> std::io::Result<RaftMeta> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        Ok(RaftMeta {
            client: MetaClient::new(config),
            runtime,
        })
    }
}

impl MetaAccess for RaftMeta {
    fn partitions(&self) -> Vec<GroupId> {
        self.client.partitions()
    }

    fn partition_of(&self, bucket: &str, key: &str) -> GroupId {
        self.client.partition_of(bucket, key)
    }

    fn read(&mut self, query: Query) -> Result<Result<Response, MetaError>, MetaClientError> {
        self.runtime.block_on(self.client.read(query))
    }

    fn read_from(
        &mut self,
        group: GroupId,
        query: Query,
    ) -> Result<Result<Response, MetaError>, MetaClientError> {
        self.runtime.block_on(self.client.read_from(group, query))
    }

    fn write(&mut self, command: Command) -> Result<Output, MetaClientError> {
        self.runtime.block_on(self.client.write(command))
    }

    fn write_to(&mut self, group: GroupId, command: Command) -> Result<Output, MetaClientError> {
        self.runtime.block_on(self.client.write_to(group, command))
    }

    fn list_versions(
        &mut self,
        request: ListVersionsRequest,
    ) -> Result<Result<ListVersionsPage, MetaError>, MetaClientError> {
        self.runtime.block_on(self.client.list_versions(request))
    }
}

/// Shard access the workers need, blocking. Contract (every implementation): `delete` of an
/// absent shard succeeds with `false`; `get` of an absent one fails with
/// [`ClientError::NotFound`]; `scan` lists shards in ascending id order strictly after `after`,
/// with `next_after` set while more may follow; an unknown node fails with an I/O error.
pub trait ShardAccess {
    fn node_ids(&self) -> Vec<u64>;
    fn get(&mut self, node_id: u64, shard_id: ShardId) -> Result<Vec<u8>, ClientError>;
    fn put(&mut self, node_id: u64, shard_id: ShardId, bytes: &[u8]) -> Result<(), ClientError>;
    fn delete(&mut self, node_id: u64, shard_id: ShardId) -> Result<bool, ClientError>;
    fn scan(
        &mut self,
        node_id: u64,
        after: Option<ShardId>,
        limit: u32,
    ) -> Result<ScanPage, ClientError>;
}

fn unknown_node(node_id: u64) -> ClientError {
    ClientError::Io(std::io::Error::new(
        std::io::ErrorKind::NotFound,
        format!("storage node {node_id} is not configured"),
    ))
}

impl ShardAccess for NodeConnections {
    fn node_ids(&self) -> Vec<u64> {
        NodeConnections::node_ids(self)
    }

    fn get(&mut self, node_id: u64, shard_id: ShardId) -> Result<Vec<u8>, ClientError> {
        // From disk: the workers verify stored bytes, which a node's cached copy would hide.
        self.call(node_id, |client| client.get_from_disk(shard_id, None))
            .unwrap_or_else(|| Err(unknown_node(node_id)))
    }

    fn put(&mut self, node_id: u64, shard_id: ShardId, bytes: &[u8]) -> Result<(), ClientError> {
        self.call(node_id, |client| client.put(shard_id, bytes))
            .unwrap_or_else(|| Err(unknown_node(node_id)))
    }

    fn delete(&mut self, node_id: u64, shard_id: ShardId) -> Result<bool, ClientError> {
        self.call(node_id, |client| client.delete(shard_id))
            .unwrap_or_else(|| Err(unknown_node(node_id)))
    }

    fn scan(
        &mut self,
        node_id: u64,
        after: Option<ShardId>,
        limit: u32,
    ) -> Result<ScanPage, ClientError> {
        self.call(node_id, |client| client.scan(after, limit))
            .unwrap_or_else(|| Err(unknown_node(node_id)))
    }
}
