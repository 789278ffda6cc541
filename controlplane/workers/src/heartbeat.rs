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
//!
//! The bytes a heartbeat reports as used are what the node cannot write any more: the larger of
//! its shard logs' size and, when the data directory is known, the file system's size less the
//! space statvfs says is available (other files, reserved blocks), so a node whose disk fills up
//! for any reason is reported full.

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
    /// The node's data directory, when this process can see it (statvfs of its file system).
    pub data_dir: Option<std::path::PathBuf>,
}

/// The used bytes a heartbeat reports: `log_used_bytes`, or more when the file system has less
/// available than `capacity_bytes - log_used_bytes` (see the module header).
pub fn reported_used_bytes(
    capacity_bytes: u64,
    log_used_bytes: u64,
    available_bytes: Option<u64>,
) -> u64 {
    match available_bytes {
        Some(available) => log_used_bytes.max(capacity_bytes.saturating_sub(available)),
        None => log_used_bytes,
    }
}

pub use cairn_raft::disk::available_bytes;

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
            // The node's own health is asked over the storage RPC, with this process's identity.
            let tls = meta
                .identity
                .as_ref()
                .map(|identity| identity.client_config());
            let client = MetaClient::new(meta);
            let mut registered = false;
            loop {
                if let Err(reason) = beat(&runtime, &client, &config, tls.clone(), &mut registered)
                {
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
    tls: Option<std::sync::Arc<rustls::ClientConfig>>,
    registered: &mut bool,
) -> Result<(), String> {
    let timeout = config.interval.max(Duration::from_secs(1));
    let health = StorageClient::connect_with_config(
        config.address,
        ClientConfig {
            connect_timeout: timeout,
            read_timeout: Some(timeout),
            write_timeout: Some(timeout),
            tls,
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
    let available = config.data_dir.as_deref().and_then(available_bytes);
    let command = Command::Heartbeat {
        node_id: NodeId(config.node_id),
        used_bytes: reported_used_bytes(health.capacity_bytes, health.used_bytes, available),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn used_bytes_count_what_the_file_system_no_longer_offers() {
        // Without a data directory: the logs' own size.
        assert_eq!(reported_used_bytes(1000, 100, None), 100);
        // Other files took 500 of the 900 the logs leave: 600 are not writable.
        assert_eq!(reported_used_bytes(1000, 100, Some(400)), 600);
        // Never below the logs' size (statvfs of a file system with reserved-block quirks).
        assert_eq!(reported_used_bytes(1000, 100, Some(950)), 100);
        assert_eq!(reported_used_bytes(0, 100, Some(50)), 100);
    }
}
