//! The in-process store: the storage node's data directory layout served by the library's own
//! glommio executor threads.
//!
//! Model: a store directory holds `storage-node.conf` (`logs = N`) and one shard log per executor in
//! `core-0/` .. `core-{N-1}/`, exactly as `cairn storage` lays it out, and a shard lives in log
//! `ShardId::stable_hash() % N`. So a directory written here opens in a storage node and the
//! reverse. Each log runs on its own executor thread (a `ShardLog` is `!Send`). A calling thread
//! sends a `Request` through the log's bounded channel (it blocks while the queue is full:
//! backpressure) and blocks on a one-shot reply. Every request runs as its own task on the
//! executor, so concurrent puts from many threads share group commits.
//!
//! Invariants:
//! - N is fixed when the directory is initialised and read back from the layout file afterwards;
//!   changing it would move shards to other logs.
//! - A put returns only after the log's fdatasync that made it durable (the shard log's contract).
//! - While a [`Store`] is open it holds an exclusive `flock` on the directory, so two handles (in one
//!   process or two) never write the same logs. The storage node does not take this lock.
//! - [`Store::close`] (and drop) lets every executor commit what was queued, closes the logs and
//!   joins the threads; no executor thread outlives the handle.
//! - A handle is bound to the process that opened it: after `fork()` the child's copy refuses every
//!   request (the executor threads exist only in the parent) and dropping it leaks instead of
//!   joining threads that are not there.

use crate::error::{CairnStatus, FfiError};
use bytes::Bytes;
use cairn_common::ShardId;
use cairn_shardlog::layout;
use cairn_shardlog::{LogConfig, LogError, LogStats, ShardLog, ShardRead, ShardStat};
use futures_channel::oneshot;
use glommio::{ExecutorJoinHandle, Latency, LocalExecutorBuilder, Placement, Shares};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The layout file and its version, shared with the storage node (`cairn_shardlog::layout`).
pub use cairn_shardlog::layout::{LAYOUT_FILE, LAYOUT_FORMAT_VERSION};
/// Depth of each executor's request queue; callers block beyond it.
const REQUEST_QUEUE_DEPTH: usize = 256;

/// How to open a store (the Rust side of `cairn_store_options`).
#[derive(Clone, Debug)]
pub struct StoreConfig {
    pub dir: PathBuf,
    /// Logs for a new directory; `None` means one per available CPU. Ignored (with a warning) when
    /// the directory already has a layout.
    pub logs: Option<usize>,
    pub create_if_missing: bool,
    pub segment_size_bytes: u64,
    pub cache_capacity_bytes_per_log: u64,
    pub compaction_garbage_ratio: f64,
    /// Each log compacts in the background this often (like the storage node); `None`: only when
    /// [`Store::compact`] is called.
    pub compaction_interval: Option<Duration>,
}

impl StoreConfig {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        let defaults = LogConfig::new("");
        StoreConfig {
            dir: dir.into(),
            logs: None,
            create_if_missing: true,
            segment_size_bytes: defaults.segment_size_bytes,
            cache_capacity_bytes_per_log: defaults.cache_capacity_bytes,
            compaction_garbage_ratio: defaults.compaction_garbage_ratio,
            compaction_interval: Some(Duration::from_secs(10)),
        }
    }
}

type Reply<T> = oneshot::Sender<Result<T, LogError>>;

/// One operation for the executor that owns a log.
enum Request {
    Put {
        shard_id: ShardId,
        data: Bytes,
        crc32c: u32,
        reply: Reply<()>,
    },
    Get {
        shard_id: ShardId,
        range: Option<(u64, u64)>,
        reply: Reply<ShardRead>,
    },
    Delete {
        shard_id: ShardId,
        reply: Reply<bool>,
    },
    Stat {
        shard_id: ShardId,
        reply: Reply<Option<ShardStat>>,
    },
    Scan {
        after: Option<ShardId>,
        limit: usize,
        reply: Reply<Vec<ShardStat>>,
    },
    Stats {
        reply: Reply<LogStats>,
    },
    Compact {
        reply: Reply<u64>,
    },
}

/// Sums of the per-log statistics.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct StoreStats {
    pub log_count: u64,
    pub shard_count: u64,
    pub segment_count: u64,
    pub used_bytes: u64,
    pub live_bytes: u64,
    pub io_errors: u64,
    pub checksum_errors: u64,
    pub torn_bytes_truncated: u64,
    pub compactions: u64,
}

/// An open store. `Sync`: any number of threads may call its methods concurrently.
pub struct Store {
    senders: Vec<async_channel::Sender<Request>>,
    executors: Vec<ExecutorJoinHandle<()>>,
    /// Holds the directory's flock for as long as the store is open.
    _lock: std::fs::File,
    /// The process that opened the store. Its executor threads do not exist in a `fork()`ed child,
    /// where a request would wait forever and a join would touch threads that are not there.
    opener_pid: u32,
}

impl Store {
    pub fn open(config: StoreConfig) -> Result<Store, FfiError> {
        let dir = &config.dir;
        match std::fs::metadata(dir) {
            Ok(metadata) if metadata.is_dir() => {}
            Ok(_) => {
                return Err(FfiError::new(
                    CairnStatus::Io,
                    format!("{} is not a directory", dir.display()),
                ));
            }
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                if !config.create_if_missing {
                    return Err(FfiError::new(
                        CairnStatus::NotFound,
                        format!("store directory {} does not exist", dir.display()),
                    ));
                }
                std::fs::create_dir_all(dir).map_err(|error| io_error(dir, error))?;
            }
            Err(error) => return Err(io_error(dir, error)),
        }
        let lock = lock_directory(dir)?;
        let logs = layout::log_count(dir, config.logs).map_err(|error| match error {
            layout::LayoutError::Io { source, .. } => io_error(&dir.join(LAYOUT_FILE), source),
            other => FfiError::new(CairnStatus::Corrupt, other.to_string()),
        })?;

        let mut senders = Vec::with_capacity(logs);
        let mut executors = Vec::with_capacity(logs);
        let mut opened = Vec::with_capacity(logs);
        for index in 0..logs {
            let (sender, receiver) = async_channel::bounded(REQUEST_QUEUE_DEPTH);
            let (ready, ready_receiver) = oneshot::channel();
            let mut log_config = LogConfig::new(layout::log_dir(dir, index));
            log_config.segment_size_bytes = config.segment_size_bytes;
            log_config.cache_capacity_bytes = config.cache_capacity_bytes_per_log;
            log_config.compaction_garbage_ratio = config.compaction_garbage_ratio;
            let compaction_interval = config.compaction_interval;
            // Unbound: a library must not pin its host process's threads to cores.
            let spawned = LocalExecutorBuilder::new(Placement::Unbound)
                .name(&format!("cairn-log-{index}"))
                .spawn(move || executor_main(log_config, compaction_interval, receiver, ready));
            match spawned {
                Ok(handle) => {
                    senders.push(sender);
                    executors.push(handle);
                    opened.push(ready_receiver);
                }
                Err(error) => {
                    drop(sender);
                    shut_down(senders, executors);
                    return Err(FfiError::new(
                        CairnStatus::Io,
                        format!("starting executor thread {index}: {error}"),
                    ));
                }
            }
        }
        let mut first_error = None;
        for (index, ready) in opened.into_iter().enumerate() {
            let result = futures_lite::future::block_on(ready).unwrap_or_else(|_| {
                Err(LogError::Failed(
                    "the executor thread stopped while opening".into(),
                ))
            });
            if let Err(error) = result
                && first_error.is_none()
            {
                let mut error = FfiError::from(error);
                error.message = format!("opening log core-{index}: {}", error.message);
                first_error = Some(error);
            }
        }
        if let Some(error) = first_error {
            shut_down(senders, executors);
            return Err(error);
        }
        Ok(Store {
            senders,
            executors,
            _lock: lock,
            opener_pid: std::process::id(),
        })
    }

    pub fn log_count(&self) -> usize {
        self.senders.len()
    }

    fn owner(&self, shard_id: &ShardId) -> usize {
        layout::owning_log(shard_id, self.senders.len())
    }

    /// Sends a request to log `index` and blocks the calling thread until it is answered.
    fn call<T>(&self, index: usize, make: impl FnOnce(Reply<T>) -> Request) -> Result<T, FfiError> {
        if std::process::id() != self.opener_pid {
            return Err(FfiError::invalid(
                "the store handle was opened in another process (used after fork()); open the \
                 store in this process",
            ));
        }
        let (reply, answer) = oneshot::channel();
        self.senders[index]
            .send_blocking(make(reply))
            .map_err(|_| unavailable(index))?;
        match futures_lite::future::block_on(answer) {
            Ok(result) => result.map_err(FfiError::from),
            Err(_) => Err(unavailable(index)),
        }
    }

    pub fn put(&self, shard_id: ShardId, data: Bytes, crc32c: u32) -> Result<(), FfiError> {
        self.call(self.owner(&shard_id), |reply| Request::Put {
            shard_id,
            data,
            crc32c,
            reply,
        })
    }

    pub fn get(&self, shard_id: ShardId, range: Option<(u64, u64)>) -> Result<ShardRead, FfiError> {
        self.call(self.owner(&shard_id), |reply| Request::Get {
            shard_id,
            range,
            reply,
        })
    }

    pub fn delete(&self, shard_id: ShardId) -> Result<bool, FfiError> {
        self.call(self.owner(&shard_id), |reply| Request::Delete {
            shard_id,
            reply,
        })
    }

    pub fn stat(&self, shard_id: ShardId) -> Result<Option<ShardStat>, FfiError> {
        self.call(self.owner(&shard_id), |reply| Request::Stat {
            shard_id,
            reply,
        })
    }

    /// Live shards after `after` in id order across all logs, at most `limit`.
    pub fn scan(&self, after: Option<ShardId>, limit: usize) -> Result<Vec<ShardStat>, FfiError> {
        // Each log returns its own first `limit`; the first `limit` of the merge are among them.
        let mut merged = Vec::new();
        for index in 0..self.senders.len() {
            merged.extend(self.call(index, |reply| Request::Scan {
                after,
                limit,
                reply,
            })?);
        }
        merged.sort_unstable_by_key(|stat| stat.shard_id);
        merged.truncate(limit);
        Ok(merged)
    }

    pub fn stats(&self) -> Result<StoreStats, FfiError> {
        let mut total = StoreStats {
            log_count: self.senders.len() as u64,
            ..StoreStats::default()
        };
        for index in 0..self.senders.len() {
            let stats = self.call(index, |reply| Request::Stats { reply })?;
            total.shard_count += stats.shard_count;
            total.segment_count += stats.segment_count;
            total.used_bytes += stats.used_bytes;
            total.live_bytes += stats.live_bytes;
            total.io_errors += stats.io_errors;
            total.checksum_errors += stats.checksum_errors;
            total.torn_bytes_truncated += stats.torn_bytes_truncated;
            total.compactions += stats.compactions;
        }
        Ok(total)
    }

    /// Compacts every log; returns the number of segments removed.
    pub fn compact(&self) -> Result<u64, FfiError> {
        let mut removed = 0;
        for index in 0..self.senders.len() {
            removed += self.call(index, |reply| Request::Compact { reply })?;
        }
        Ok(removed)
    }

    /// Commits what is queued, closes every log and joins the executor threads.
    pub fn close(self) {
        // Drop does the work, so that an early return or a panic in the caller closes the same way.
        drop(self);
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        let senders = std::mem::take(&mut self.senders);
        let executors = std::mem::take(&mut self.executors);
        if std::process::id() != self.opener_pid {
            // In a forked child the executor threads do not exist: joining them is undefined and
            // dropping the channels would wake nobody. Leak this copy; the parent's store is intact.
            std::mem::forget(senders);
            std::mem::forget(executors);
            return;
        }
        shut_down(senders, executors);
    }
}

/// Closing the request channels ends each executor's loop; it then closes its log (which commits
/// everything queued) and returns.
fn shut_down(senders: Vec<async_channel::Sender<Request>>, executors: Vec<ExecutorJoinHandle<()>>) {
    drop(senders);
    for executor in executors {
        if executor.join().is_err() {
            tracing::error!("a cairn executor thread panicked while shutting down");
        }
    }
}

fn unavailable(index: usize) -> FfiError {
    FfiError::new(
        CairnStatus::Unavailable,
        format!("the executor of log core-{index} has stopped"),
    )
}

fn io_error(path: &Path, error: std::io::Error) -> FfiError {
    FfiError::new(CairnStatus::Io, format!("{}: {error}", path.display()))
}

async fn executor_main(
    config: LogConfig,
    compaction_interval: Option<Duration>,
    requests: async_channel::Receiver<Request>,
    ready: oneshot::Sender<Result<(), LogError>>,
) {
    let log = match ShardLog::open(config).await {
        Ok(log) => {
            let _ = ready.send(Ok(()));
            log
        }
        Err(error) => {
            let _ = ready.send(Err(error));
            return;
        }
    };
    if let Some(interval) = compaction_interval {
        spawn_background_compaction(log.clone(), interval);
    }
    let in_flight = std::rc::Rc::new(glommio::sync::Gate::new());
    while let Ok(request) = requests.recv().await {
        let log = log.clone();
        // Spawning (not awaiting) lets requests from many threads overlap, so puts share a batch.
        let spawned = in_flight.spawn(serve(log, request));
        if let Ok(task) = spawned {
            task.detach();
        }
    }
    // Every sender is gone: let the running requests finish, then stop the writer.
    let _ = in_flight.close().await;
    log.close().await;
}

/// Compaction runs in its own task queue with a small share of the executor, as on the storage node,
/// so that foreground requests keep their latency while it copies. It is dropped with the executor
/// when the store closes; an interrupted copy is harmless (the old segment stays until a copy
/// completes).
fn spawn_background_compaction(log: ShardLog, interval: Duration) {
    let queue = glommio::executor().create_task_queue(
        Shares::Static(50),
        Latency::NotImportant,
        "compaction",
    );
    let task = glommio::spawn_local_into(
        async move {
            loop {
                glommio::timer::sleep(interval).await;
                if let Err(error) = log.compact().await {
                    if matches!(error, LogError::Closed) {
                        return;
                    }
                    tracing::warn!(%error, dir = ?log.config().dir, "background compaction failed");
                }
            }
        },
        queue,
    );
    if let Ok(task) = task {
        task.detach();
    }
}

async fn serve(log: ShardLog, request: Request) {
    match request {
        Request::Put {
            shard_id,
            data,
            crc32c,
            reply,
        } => {
            let _ = reply.send(log.put(shard_id, data, crc32c).await);
        }
        Request::Get {
            shard_id,
            range,
            reply,
        } => {
            let _ = reply.send(log.get(shard_id, range).await);
        }
        Request::Delete { shard_id, reply } => {
            let _ = reply.send(log.delete(shard_id).await);
        }
        Request::Stat { shard_id, reply } => {
            let _ = reply.send(Ok(log.stat(shard_id)));
        }
        Request::Scan {
            after,
            limit,
            reply,
        } => {
            let _ = reply.send(Ok(log.scan(after, limit)));
        }
        Request::Stats { reply } => {
            let _ = reply.send(Ok(log.stats()));
        }
        Request::Compact { reply } => {
            let _ = reply.send(log.compact().await);
        }
    }
}

/// Takes an exclusive, non-blocking flock on the directory itself (no extra file in the layout).
fn lock_directory(dir: &Path) -> Result<std::fs::File, FfiError> {
    layout::lock_data_dir(dir).map_err(|error| match error {
        layout::LayoutError::Locked { .. } => FfiError::new(
            CairnStatus::Locked,
            format!(
                "store directory {} is open in another handle",
                dir.display()
            ),
        ),
        layout::LayoutError::Io { source, .. } => io_error(dir, source),
        malformed @ layout::LayoutError::Malformed { .. } => {
            FfiError::new(CairnStatus::Corrupt, malformed.to_string())
        }
    })
}
