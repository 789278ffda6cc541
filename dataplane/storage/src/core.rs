//! Executors, their logs, and the routing of operations to the core that owns a shard.

use crate::{EXIT_CODE_IO_ERROR, NodeConfig};
use bytes::Bytes;
use cairn_common::ShardId;
use cairn_shardlog::layout;
use cairn_shardlog::{LogConfig, LogError, LogStats, ShardLog, ShardRead, ShardStat};
use cairn_wire::ErrorCode;
use futures_channel::oneshot;
use glommio::{Latency, LocalExecutorBuilder, Placement, Shares};
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error("data directory: {0}")]
    Layout(#[from] layout::LayoutError),
    #[error("starting executor {core}: {source}")]
    Executor { core: usize, source: std::io::Error },
    #[error("core {core}: {source}")]
    Log { core: usize, source: LogError },
    #[error("listening on {addr}: {source}")]
    Listen {
        addr: String,
        source: std::io::Error,
    },
}

/// An operation on the shard logs, executed by the core that owns the shard.
pub enum Operation {
    Put {
        shard_id: ShardId,
        data: Bytes,
        crc32c: u32,
    },
    Get {
        shard_id: ShardId,
        range: Option<(u64, u64)>,
        /// Skip the hot-shard cache (see `ShardLog::get_from_disk`).
        from_disk: bool,
    },
    Delete {
        shard_id: ShardId,
    },
    Stat {
        shard_id: ShardId,
    },
    Scan {
        after: Option<ShardId>,
        limit: usize,
    },
    Stats,
}

pub enum Outcome {
    Stored,
    Read(ShardRead),
    Deleted(bool),
    Stat(Option<ShardStat>),
    Scanned(Vec<ShardStat>),
    Stats(LogStats),
}

#[derive(Debug)]
pub struct OperationError {
    pub code: ErrorCode,
    pub message: String,
}

impl From<LogError> for OperationError {
    fn from(error: LogError) -> Self {
        let code = match &error {
            LogError::NotFound => ErrorCode::NotFound,
            LogError::ChecksumMismatch { .. } => ErrorCode::ChecksumMismatch,
            LogError::NoSpace => ErrorCode::NoSpace,
            LogError::TooLarge(_) => ErrorCode::TooLarge,
            LogError::InvalidRange { .. } => ErrorCode::BadRequest,
            LogError::Failed(_) | LogError::Closed => ErrorCode::Unavailable,
            LogError::CorruptSegment { .. } | LogError::Io(_) => ErrorCode::Internal,
        };
        OperationError {
            code,
            message: error.to_string(),
        }
    }
}

pub type OperationResult = Result<Outcome, OperationError>;

struct Forwarded {
    operation: Operation,
    reply: oneshot::Sender<OperationResult>,
}

/// State of one core, shared by its connection tasks.
pub struct Core {
    pub index: usize,
    pub log: ShardLog,
    peers: Arc<Vec<async_channel::Sender<Forwarded>>>,
    pub config: NodeConfig,
    open_connections: std::cell::Cell<usize>,
}

impl Core {
    pub fn log_count(&self) -> usize {
        self.peers.len()
    }

    /// Whether this core's log holds `shard_id`.
    pub fn owns(&self, shard_id: &ShardId) -> bool {
        self.owner(shard_id) == self.index
    }

    /// Stores a shard this core owns from a record buffer filled in place (no copy to disk).
    pub async fn put_record(
        &self,
        shard_id: ShardId,
        record: cairn_shardlog::RecordBuffer,
        crc32c: u32,
    ) -> OperationResult {
        let result = self.log.put_record(shard_id, record, crc32c).await;
        if let Err(LogError::Failed(reason)) = &result {
            stop_node(reason);
        }
        result
            .map(|()| Outcome::Stored)
            .map_err(OperationError::from)
    }

    fn owner(&self, shard_id: &ShardId) -> usize {
        layout::owning_log(shard_id, self.peers.len())
    }

    /// Runs `operation` on the core that owns its shard (this one or another).
    pub async fn execute(&self, operation: Operation) -> OperationResult {
        let owner = match &operation {
            Operation::Put { shard_id, .. }
            | Operation::Get { shard_id, .. }
            | Operation::Delete { shard_id }
            | Operation::Stat { shard_id } => self.owner(shard_id),
            Operation::Scan { .. } | Operation::Stats => self.index,
        };
        if owner == self.index {
            self.execute_local(operation).await
        } else {
            self.forward(owner, operation).await
        }
    }

    /// Runs `operation` on core `target`.
    pub async fn forward(&self, target: usize, operation: Operation) -> OperationResult {
        if target == self.index {
            return self.execute_local(operation).await;
        }
        let (reply, answer) = oneshot::channel();
        let unavailable = || OperationError {
            code: ErrorCode::Unavailable,
            message: format!("core {target} is gone"),
        };
        self.peers[target]
            .send(Forwarded { operation, reply })
            .await
            .map_err(|_| unavailable())?;
        answer.await.map_err(|_| unavailable())?
    }

    async fn execute_local(&self, operation: Operation) -> OperationResult {
        let result = match operation {
            Operation::Put {
                shard_id,
                data,
                crc32c,
            } => self
                .log
                .put(shard_id, data, crc32c)
                .await
                .map(|()| Outcome::Stored),
            Operation::Get {
                shard_id,
                range,
                from_disk: false,
            } => self.log.get(shard_id, range).await.map(Outcome::Read),
            Operation::Get {
                shard_id,
                range,
                from_disk: true,
            } => self
                .log
                .get_from_disk(shard_id, range)
                .await
                .map(Outcome::Read),
            Operation::Delete { shard_id } => self.log.delete(shard_id).await.map(Outcome::Deleted),
            Operation::Stat { shard_id } => Ok(Outcome::Stat(self.log.stat(shard_id))),
            Operation::Scan { after, limit } => Ok(Outcome::Scanned(self.log.scan(after, limit))),
            Operation::Stats => Ok(Outcome::Stats(self.log.stats())),
        };
        if let Err(LogError::Failed(reason)) = &result {
            stop_node(reason);
        }
        result.map_err(OperationError::from)
    }
}

/// Stops the process shortly after an unrecoverable shard-log error, leaving a moment for the replies
/// already produced to go out.
fn stop_node(reason: &str) {
    tracing::error!(%reason, "stopping the storage node after an I/O error on its shard log");
    glommio::spawn_local(async {
        glommio::timer::sleep(std::time::Duration::from_millis(50)).await;
        std::process::exit(EXIT_CODE_IO_ERROR);
    })
    .detach();
}

pub fn run(config: NodeConfig) -> Result<(), NodeError> {
    // Held until the node stops: no second node or in-process library opens these logs.
    let _lock = layout::lock_data_dir(&config.data_dir)?;
    let logs = layout::log_count(&config.data_dir, config.cores)?;
    let cpus = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let mut senders = Vec::with_capacity(logs);
    let mut receivers = Vec::with_capacity(logs);
    for _ in 0..logs {
        let (sender, receiver) = async_channel::bounded(256);
        senders.push(sender);
        receivers.push(receiver);
    }
    let peers = Arc::new(senders);
    // Cores that bound their listener; the node is ready when all did.
    let listening_cores = Arc::new(AtomicUsize::new(0));
    let mut handles = Vec::with_capacity(logs);
    for (index, receiver) in receivers.into_iter().enumerate() {
        let placement = if logs <= cpus {
            Placement::Fixed(index)
        } else {
            Placement::Unbound
        };
        let config = config.clone();
        let peers = peers.clone();
        let listening_cores = listening_cores.clone();
        let handle = LocalExecutorBuilder::new(placement)
            .name(&format!("storage-{index}"))
            .spawn(move || core_main(index, config, peers, receiver, listening_cores))
            .map_err(|error| NodeError::Executor {
                core: index,
                source: error.into(),
            })?;
        handles.push(handle);
    }
    tracing::info!(
        listen = %config.listen,
        data = %config.data_dir.display(),
        az = %config.availability_zone,
        logs,
        "storage node starting"
    );
    let mut first_error = None;
    for handle in handles {
        match handle.join() {
            Ok(Ok(())) => {}
            Ok(Err(error)) => {
                tracing::error!(%error, "storage core stopped");
                first_error.get_or_insert(error);
            }
            Err(panic) => {
                tracing::error!(?panic, "storage core panicked");
                std::process::abort();
            }
        }
    }
    first_error.map_or(Ok(()), Err)
}

async fn core_main(
    index: usize,
    config: NodeConfig,
    peers: Arc<Vec<async_channel::Sender<Forwarded>>>,
    receiver: async_channel::Receiver<Forwarded>,
    listening_cores: Arc<AtomicUsize>,
) -> Result<(), NodeError> {
    let mut log_config = LogConfig::new(layout::log_dir(&config.data_dir, index));
    log_config.segment_size_bytes = config.segment_size_bytes;
    log_config.cache_capacity_bytes = config.cache_capacity_bytes_per_core;
    log_config.compaction_garbage_ratio = config.compaction_garbage_ratio;
    if let Some(errno) = config.inject_write_errno {
        tracing::warn!(
            core = index,
            errno,
            "fault injection: the first shard-log write will fail"
        );
        log_config.inject_write_errno.store(errno, Ordering::SeqCst);
    }
    let log = ShardLog::open(log_config)
        .await
        .map_err(|source| NodeError::Log {
            core: index,
            source,
        })?;
    let stats = log.stats();
    tracing::info!(
        core = index,
        shards = stats.shard_count,
        segments = stats.segment_count,
        "shard log open"
    );
    let listener =
        glommio::net::TcpListener::bind(config.listen).map_err(|error| NodeError::Listen {
            addr: config.listen.to_string(),
            source: error.into(),
        })?;
    let listening = listening_cores.fetch_add(1, Ordering::SeqCst) + 1;
    if listening == peers.len() {
        tracing::info!(listen = %config.listen, cores = listening, "storage node ready");
        if let Some(ready) = &config.ready {
            // The embedding may have stopped waiting; nothing else to tell then.
            let _ = ready.send(config.listen);
        }
    }
    let core = Rc::new(Core {
        index,
        log,
        peers,
        config,
        open_connections: std::cell::Cell::new(0),
    });

    // Requests forwarded by other cores.
    {
        let core = core.clone();
        glommio::spawn_local(async move {
            while let Ok(Forwarded { operation, reply }) = receiver.recv().await {
                let core = core.clone();
                glommio::spawn_local(async move {
                    let _ = reply.send(core.execute_local(operation).await);
                })
                .detach();
            }
        })
        .detach();
    }

    // Compaction runs in its own task queue with a small share of the core, so that foreground
    // reads and writes keep their latency while it copies.
    let background = glommio::executor().create_task_queue(
        Shares::Static(50),
        Latency::NotImportant,
        "compaction",
    );
    {
        let core = core.clone();
        glommio::spawn_local_into(
            async move {
                loop {
                    glommio::timer::sleep(core.config.compaction_interval).await;
                    match core.log.compact().await {
                        Ok(0) => {}
                        Ok(removed) => {
                            tracing::info!(core = core.index, removed, "compacted segments")
                        }
                        Err(error) => {
                            tracing::warn!(core = core.index, %error, "compaction failed")
                        }
                    }
                }
            },
            background,
        )
        .expect("compaction task queue exists")
        .detach();
    }

    tracing::info!(core = index, listen = %core.config.listen, "accepting connections");
    loop {
        match listener.accept().await {
            Ok(stream) => {
                // Connections are bounded per core: past the limit a new one is closed at once
                // (clients keep pools; a flood must not exhaust memory or file descriptors).
                if core.open_connections.get() >= core.config.max_connections_per_core {
                    tracing::warn!(
                        core = index,
                        "connection limit reached; refusing a connection"
                    );
                    drop(stream);
                    continue;
                }
                core.open_connections.set(core.open_connections.get() + 1);
                let core = core.clone();
                glommio::spawn_local(async move {
                    if let Err(error) = crate::connection::serve(stream, core.clone()).await {
                        tracing::debug!(%error, "connection closed");
                    }
                    core.open_connections.set(core.open_connections.get() - 1);
                })
                .detach();
            }
            Err(error) => {
                // Running out of file descriptors must not end the node: wait and accept again.
                tracing::warn!(core = index, error = %error, "accept failed");
                glommio::timer::sleep(std::time::Duration::from_millis(10)).await;
            }
        }
    }
}
