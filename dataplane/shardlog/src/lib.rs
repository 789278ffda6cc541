//! Per-core append-only O_DIRECT shard log: group commit, CRC32C, recovery, compaction, hot cache.
//!
//! See [`log`] for the model and its invariants, [`record`] for the on-disk format.

pub mod cache;
pub mod layout;
pub mod log;
pub mod record;

pub use cache::CacheStats;
pub use log::{LogConfig, LogError, LogStats, RecordBuffer, ShardLog, ShardRead, ShardStat};
