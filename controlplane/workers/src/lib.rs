//! Background workers of the control plane (ARCHITECTURE.md, "background workers"): they read
//! and write metadata through the Raft client like a gateway does and reach storage nodes over
//! their RPC, so they can run in any process — inside `cairn dev`, or as `cairn worker`.
//!
//! - [`janitor`]: stale PREPARING rollback and shard garbage collection.
//! - [`healer`]: the scrubber/healer (verify every piece, rebuild missing and corrupt ones,
//!   drain the suspect queues readers fill, remove orphan pieces via [`orphans`]).
//! - [`heartbeat`]: storage-node heartbeats into the node registry, and DOWN marking.
//! - [`lifecycle`]: applies buckets' lifecycle rules (expiration, noncurrent expiration,
//!   expired delete markers, incomplete multipart uploads).
//! - [`replicator`]: cross-region replication, draining the partitions' replication queues.
//! - [`durability`]: the Markov model behind `cairn durability` (pure arithmetic).

pub mod durability;
pub mod healer;
pub mod heartbeat;
pub mod janitor;
pub mod lifecycle;
pub mod orphans;
pub mod replicator;
pub mod shared;

pub use shared::{MetaAccess, NodeConnections, RaftMeta, ShardAccess};

pub use janitor::{
    DeletionPlan, Janitor, JanitorConfig, JanitorError, JanitorStats, PassReport, spawn_janitor,
};
