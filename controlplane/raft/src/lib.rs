//! Cairn's metadata control plane: openraft groups on LMDB, multi-raft transport, ring, node, client.

pub mod store;
pub mod types;
