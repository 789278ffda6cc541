//! Storage-node liveness in the node registry.
//!
//! - [`spawn_heartbeat`] runs beside one storage node (in its process): it asks the node for its
//!   health over its own RPC (so a node that stopped answering stops heartbeating, even if the
//!   process lives), registers the node (address, AZ, capacity) once, and then writes a
//!   `Heartbeat` with the bytes used every interval. A registry that lost the node (NoSuchNode)
//!   gets it registered again.
//! - [`spawn_node_expiry`] runs in a worker: every interval it writes `ExpireNodes`, which marks
//!   DOWN every UP node whose last heartbeat is older than the timeout. A returning node's next
//!   heartbeat marks it UP again.
//!
//! Gateways read the registry and stop writing to DOWN and full nodes; the healer rebuilds the
//! pieces of nodes that stay unreachable.

use std::net::SocketAddr;
use std::time::Duration;

use cairn_meta_state::{Command, MetaError, NodeId, RegisterNode};
use cairn_raft::{MetaClient, MetaClientConfig};
use cairn_storage_client::{ClientConfig, StorageClient};

/// One storage node's heartbeat settings.
#[derive(Clone, Debug)]
pub struct HeartbeatConfig {
    pub node_id: u64,
    /// The node's RPC address, as gateways and workers dial it.
    pub address: SocketAddr,
    pub availability_zone: String,
    pub interval: Duration,
}

fn now_unix_millis() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_millis() as u64)
}

/// Starts the heartbeat thread of one node.
pub fn spawn_heartbeat(meta: MetaClientConfig, config: HeartbeatConfig) -> std::io::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    std::thread::Builder::new()
        .name(format!("heartbeat-{}", config.node_id))
        .spawn(move || {
            let client = MetaClient::new(meta);
            let mut registered = false;
            loop {
                if let Err(reason) = beat(&runtime, &client, &config, &mut registered) {
                    tracing::debug!(node_id = config.node_id, reason, "no heartbeat this round");
                }
                std::thread::sleep(config.interval);
            }
        })?;
    Ok(())
}

fn beat(
    runtime: &tokio::runtime::Runtime,
    client: &MetaClient,
    config: &HeartbeatConfig,
    registered: &mut bool,
) -> Result<(), String> {
    let timeout = config.interval.max(Duration::from_secs(1));
    let health = StorageClient::connect_with_config(
        config.address,
        ClientConfig {
            connect_timeout: timeout,
            read_timeout: Some(timeout),
            write_timeout: Some(timeout),
            ..ClientConfig::default()
        },
    )
    .and_then(|mut node| node.health())
    .map_err(|error| format!("node health: {error}"))?;
    if !*registered {
        let command = Command::RegisterNode(RegisterNode {
            node_id: NodeId(config.node_id),
            address: config.address.to_string(),
            availability_zone: config.availability_zone.clone(),
            capacity_bytes: health.capacity_bytes,
            now_ms: now_unix_millis(),
        });
        let output = runtime
            .block_on(client.write(command))
            .map_err(|error| format!("register: {error}"))?;
        output
            .result
            .map_err(|error| format!("register refused: {error}"))?;
        tracing::info!(node_id = config.node_id, "registered in the node registry");
        *registered = true;
    }
    let command = Command::Heartbeat {
        node_id: NodeId(config.node_id),
        used_bytes: health.used_bytes,
        now_ms: now_unix_millis(),
    };
    let output = runtime
        .block_on(client.write(command))
        .map_err(|error| format!("heartbeat: {error}"))?;
    match output.result {
        Ok(_) => Ok(()),
        Err(MetaError::NoSuchNode { .. }) => {
            *registered = false;
            Err("the registry does not know the node; registering again".to_owned())
        }
        Err(error) => Err(format!("heartbeat refused: {error}")),
    }
}

/// Starts the thread that marks silent nodes DOWN (`timeout` without a heartbeat).
pub fn spawn_node_expiry(
    meta: MetaClientConfig,
    timeout: Duration,
    interval: Duration,
) -> std::io::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    std::thread::Builder::new()
        .name("node-expiry".into())
        .spawn(move || {
            let client = MetaClient::new(meta);
            loop {
                let command = Command::ExpireNodes {
                    now_ms: now_unix_millis(),
                    timeout_ms: timeout.as_millis() as u64,
                };
                match runtime.block_on(client.write(command)) {
                    Ok(output) => {
                        if let Ok(cairn_meta_state::Response::NodesExpired(expired)) = output.result
                            && !expired.is_empty()
                        {
                            tracing::warn!(?expired, "storage nodes marked DOWN (no heartbeat)");
                        }
                    }
                    Err(error) => tracing::debug!(%error, "ExpireNodes not applied"),
                }
                std::thread::sleep(interval);
            }
        })?;
    Ok(())
}
