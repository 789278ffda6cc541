//! Storage node: one glommio executor per core, each owning its own shard log, all answering the
//! flatbuffers RPC of `cairn-wire` on one TCP address (SO_REUSEPORT: the kernel spreads connections
//! over the executors).
//!
//! Model: a shard id maps to the core that owns it by a stable hash (`ShardId::stable_hash() %
//! log_count`). A request that lands on another core travels there through a bounded cross-core
//! channel and its answer comes back through a one-shot channel; nothing else is shared between
//! cores. The number of logs is fixed when the data directory is first initialised and stored in it,
//! because changing it would move shards to other logs.
//!
//! Invariants:
//! - A malformed, oversized or unknown frame gets an error reply and the connection is closed; no
//!   input makes the node panic.
//! - A put is acknowledged only after its shard log made it durable (see `cairn-shardlog`).
//! - An I/O error other than ENOSPC on a shard-log write stops the node (exit code 74): erasure coding
//!   elsewhere covers a lost node, whereas a node that goes on after EIO may serve or lose data
//!   silently.

mod connection;
mod core;

pub use crate::core::NodeError;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Exit code of a node stopped by an I/O error on its shard log (EX_IOERR).
pub const EXIT_CODE_IO_ERROR: i32 = 74;

#[derive(Clone, Debug)]
pub struct NodeConfig {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub availability_zone: String,
    /// Logs (and executors) created on first start; `None` means one per available core.
    pub cores: Option<usize>,
    /// Hot-shard cache per core.
    pub cache_capacity_bytes_per_core: u64,
    pub segment_size_bytes: u64,
    pub max_body_len_bytes: u32,
    pub compaction_interval: Duration,
    pub compaction_garbage_ratio: f64,
    /// Idle connections are closed after this long without a request.
    pub idle_timeout: Duration,
    /// Open client connections allowed per core; more are closed as they arrive.
    pub max_connections_per_core: usize,
    /// Mutual TLS of the RPC listener (`cairn_tls::Identity::server_tls` with
    /// `cairn_tls::STORAGE_CLIENTS`): every connection must complete a handshake with a client
    /// certificate the configuration accepts before a byte of a request is read, and its
    /// certificate is checked against the CRL again before each request once the CRL changed (a
    /// revoked peer's connection is closed). `None` serves
    /// plaintext, which the `cairn storage` command allows only behind
    /// `--insecure-plaintext-internal` (in-process embeddings and tests use it).
    pub tls: Option<cairn_tls::ServerTls>,
    /// Fault injection for tests: the first shard-log write fails with this errno (5 = EIO stops
    /// the node, 28 = ENOSPC is reported and the node goes on).
    pub inject_write_errno: Option<i32>,
    /// Told the listen address once every core has replayed its shard log and listens (an
    /// embedding, e.g. `cairn dev`, opens its S3 endpoint only after that).
    pub ready: Option<std::sync::mpsc::Sender<SocketAddr>>,
}

impl NodeConfig {
    pub fn new(
        listen: SocketAddr,
        data_dir: impl Into<PathBuf>,
        availability_zone: impl Into<String>,
    ) -> Self {
        NodeConfig {
            listen,
            data_dir: data_dir.into(),
            availability_zone: availability_zone.into(),
            cores: None,
            cache_capacity_bytes_per_core: 64 << 20,
            segment_size_bytes: 128 << 20,
            max_body_len_bytes: cairn_wire::FrameLimits::DEFAULT_MAX_BODY_LEN_BYTES,
            compaction_interval: Duration::from_secs(10),
            compaction_garbage_ratio: 0.5,
            idle_timeout: Duration::from_secs(300),
            max_connections_per_core: 4096,
            inject_write_errno: None,
            tls: None,
            ready: None,
        }
    }
}

/// Runs a storage node until it fails; blocks the calling thread.
pub fn run(config: NodeConfig) -> Result<(), NodeError> {
    crate::core::run(config)
}
