//! What the workers share: cached storage-node connections and Prometheus counter rendering.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use cairn_storage_client::{ClientConfig, ClientError, StorageClient};

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
            match StorageClient::connect_with_config(address, self.config) {
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
