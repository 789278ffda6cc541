//! Per-core append-only O_DIRECT shard log.
