//! The openraft type configuration of every Cairn metadata group, and the log payload wrappers.
//!
//! A log entry's application payload is a [`cairn_meta_state::Command`]; its response is the
//! [`cairn_meta_state::Output`] that applying it produced. Both are serialised inside openraft's
//! serde-encoded entries as the meta-state crate's own versioned record encoding (a byte string),
//! so the log format follows the meta-state format version rather than serde's derive layout.

use std::fmt;
use std::io::Cursor;

use cairn_meta_state::{Command, Output, Role, decode_record, encode_record};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A Raft node (a `cairn meta` process). Node id 0 is reserved for "unknown" on the wire.
pub type NodeId = u64;

/// Identifies one Raft group inside a process; every RPC carries it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct GroupId(pub u64);

impl GroupId {
    /// The bucket service (buckets and access keys: the meta-state `BucketService` role).
    pub const BUCKET_SERVICE: GroupId = GroupId(0);

    /// The storage-node registry (registrations, heartbeats, UP/DOWN: the meta-state
    /// `NodeRegistry` role). Its id lies above every partition's (partitions are 1..=P with P a
    /// `u32`), so adding partitions never renames it.
    pub const NODE_REGISTRY: GroupId = GroupId(1 << 32);

    /// The partition map: records the cluster layout (partition count, ring and placement
    /// parameters, group → replicas) at the first bootstrap; see [`crate::layout`].
    pub const PARTITION_MAP: GroupId = GroupId((1 << 32) + 1);

    /// The group of object partition `partition_index` (0-based): group ids 1..=P.
    pub fn partition(partition_index: u32) -> GroupId {
        GroupId(u64::from(partition_index) + 1)
    }

    /// The partition index of an object-partition group, `None` for the other groups.
    pub fn partition_index(self) -> Option<u32> {
        if self.0 >= 1 && self.0 <= u64::from(u32::MAX) {
            Some((self.0 - 1) as u32)
        } else {
            None
        }
    }

    /// The meta-state role this group's state machine has in a deployment with
    /// `partition_count` object partitions.
    pub fn role(self, partition_count: u32) -> Role {
        match self {
            GroupId::BUCKET_SERVICE => Role::BucketService,
            GroupId::NODE_REGISTRY => Role::NodeRegistry,
            GroupId::PARTITION_MAP => Role::PartitionMap,
            _ => Role::ObjectPartition {
                partition_index: (self.0 - 1) as u32,
                partition_count,
            },
        }
    }

    /// Every group of a deployment with `partition_count` partitions: the cluster-wide groups
    /// first, then the partitions in index order.
    pub fn all(partition_count: u32) -> Vec<GroupId> {
        [
            GroupId::BUCKET_SERVICE,
            GroupId::NODE_REGISTRY,
            GroupId::PARTITION_MAP,
        ]
        .into_iter()
        .chain((0..partition_count).map(GroupId::partition))
        .collect()
    }
}

impl fmt::Display for GroupId {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            GroupId::BUCKET_SERVICE => write!(formatter, "bucket-service"),
            GroupId::NODE_REGISTRY => write!(formatter, "node-registry"),
            GroupId::PARTITION_MAP => write!(formatter, "partition-map"),
            _ => match self.partition_index() {
                Some(partition_index) => write!(formatter, "partition-{partition_index}"),
                None => write!(formatter, "group-{}", self.0),
            },
        }
    }
}

/// The application payload of a Raft log entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MetaRequest(pub Command);

/// What applying one log entry produced: the command's output, or nothing for openraft's own
/// blank and membership entries.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct MetaResponse(pub Option<Output>);

impl fmt::Display for MetaRequest {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.0.name())
    }
}

impl Serialize for MetaRequest {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_bytes(&encode_record(&self.0))
    }
}

impl<'de> Deserialize<'de> for MetaRequest {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let bytes = ByteBuf::deserialize(deserializer)?;
        decode_record::<Command>(&bytes.0)
            .map(MetaRequest)
            .map_err(serde::de::Error::custom)
    }
}

impl Serialize for MetaResponse {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let bytes = self.0.as_ref().map(encode_record);
        match bytes {
            Some(bytes) => serializer.serialize_some(&BytesRef(&bytes)),
            None => serializer.serialize_none(),
        }
    }
}

impl<'de> Deserialize<'de> for MetaResponse {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let bytes = Option::<ByteBuf>::deserialize(deserializer)?;
        match bytes {
            None => Ok(MetaResponse(None)),
            Some(bytes) => decode_record::<Output>(&bytes.0)
                .map(|output| MetaResponse(Some(output)))
                .map_err(serde::de::Error::custom),
        }
    }
}

/// Serialises a byte slice as serde bytes (not as a sequence of u8).
struct BytesRef<'a>(&'a [u8]);

impl Serialize for BytesRef<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_bytes(self.0)
    }
}

/// Deserialises serde bytes (borrowed or owned) into a vector.
struct ByteBuf(Vec<u8>);

impl<'de> Deserialize<'de> for ByteBuf {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = ByteBuf;
            fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
                formatter.write_str("a byte string")
            }
            fn visit_bytes<E: serde::de::Error>(self, bytes: &[u8]) -> Result<ByteBuf, E> {
                Ok(ByteBuf(bytes.to_vec()))
            }
            fn visit_byte_buf<E: serde::de::Error>(self, bytes: Vec<u8>) -> Result<ByteBuf, E> {
                Ok(ByteBuf(bytes))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut sequence: A,
            ) -> Result<ByteBuf, A::Error> {
                let mut bytes = Vec::new();
                while let Some(byte) = sequence.next_element::<u8>()? {
                    bytes.push(byte);
                }
                Ok(ByteBuf(bytes))
            }
        }
        deserializer.deserialize_bytes(Visitor)
    }
}

openraft::declare_raft_types!(
    /// The openraft type configuration shared by every metadata group.
    pub TypeConfig:
        D = MetaRequest,
        R = MetaResponse,
        NodeId = NodeId,
        Node = openraft::BasicNode,
        Entry = openraft::Entry<TypeConfig>,
        SnapshotData = Cursor<Vec<u8>>,
        AsyncRuntime = openraft::TokioRuntime,
);

pub type Raft = openraft::Raft<TypeConfig>;
pub type Entry = openraft::Entry<TypeConfig>;
pub type LogId = openraft::LogId<NodeId>;
pub type Vote = openraft::Vote<NodeId>;
pub type StorageError = openraft::StorageError<NodeId>;
pub type StoredMembership = openraft::StoredMembership<NodeId, openraft::BasicNode>;
pub type SnapshotMeta = openraft::SnapshotMeta<NodeId, openraft::BasicNode>;
pub type Snapshot = openraft::Snapshot<TypeConfig>;
