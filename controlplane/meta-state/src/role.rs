//! Which key spaces a state machine instance holds, and therefore which commands it accepts.
//!
//! | role | accepts | key spaces |
//! |---|---|---|
//! | [`Role::ObjectPartition`] | object and multipart commands, garbage, janitor queries | objects, idempotency tokens, uploads, garbage |
//! | [`Role::BucketService`] | bucket, access-key and KMS key commands | buckets, access keys, KMS keys ([`crate::kms`]) |
//! | [`Role::NodeRegistry`] | storage-node commands (register, heartbeat, expire) | nodes |
//! | [`Role::PartitionMap`] | RecordLayout, GetLayout | the cluster layout (ring and placement) |
//! | [`Role::Combined`] | everything but the layout | all of the above but the layout |
//!
//! In a partitioned deployment the gateway routes an object command by `bucket/key` (consistent
//! hash) to one of P `ObjectPartition` instances and everything else to the one `BucketService`
//! instance; storage-node registrations and heartbeats go to the one `NodeRegistry` instance, a
//! group of its own so that heartbeats from every storage node never queue behind bucket changes
//! in one log. A partition does not hold bucket records, so the gateway resolves the bucket first (it
//! needs the owner, the EC scheme and the versioning state anyway) and passes what the object
//! command needs in the command itself; a partition trusts it. A `Combined` instance (`cairn dev`,
//! tests) additionally checks that the bucket exists and that DeleteBucket finds it empty.
//!
//! A `BucketService` cannot see objects, so a partitioned DeleteBucket is a protocol over
//! instances, built from commands here:
//! 1. `SealBucket` on every partition: each stops accepting new versions, delete markers and
//!    uploads in the bucket (answering NoSuchBucket) and reports whether it still holds any;
//! 2. if any partition holds some, `UnsealBucket` on every partition and answer BucketNotEmpty;
//! 3. otherwise `DeleteBucket` on the bucket service. The seals stay, so a gateway acting on a
//!    stale bucket cache cannot resurrect objects in the deleted bucket.
//!
//! CreateBucket runs `UnsealBucket` on every partition after the bucket service accepted it (also
//! when it answered BucketAlreadyOwnedByYou, which makes a crashed DeleteBucket or CreateBucket
//! recoverable by retrying). Seals are idempotent, so every step may be retried.

/// The role of one state machine instance. Part of the snapshot: an instance never changes role.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    Combined,
    BucketService,
    NodeRegistry,
    /// The partition map: records the cluster layout once, so that nodes and clients configured
    /// differently (another partition count, other peers or zones) are refused.
    PartitionMap,
    ObjectPartition {
        partition_index: u32,
        partition_count: u32,
    },
}

/// The key-space family a command or query touches.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Scope {
    Object,
    Bucket,
    /// The storage-node registry.
    Node,
    /// The cluster layout.
    Layout,
}

impl Role {
    pub fn accepts(self, scope: Scope) -> bool {
        matches!(
            (self, scope),
            (Role::Combined, Scope::Object | Scope::Bucket | Scope::Node)
                | (Role::PartitionMap, Scope::Layout)
                | (Role::BucketService, Scope::Bucket)
                | (Role::NodeRegistry, Scope::Node)
                | (Role::ObjectPartition { .. }, Scope::Object)
        )
    }

    /// The partition index used in [`crate::shard_object_id`]: 0 for a Combined instance, `None`
    /// for the bucket service and the node registry (which create no objects).
    pub fn partition_index(self) -> Option<u32> {
        match self {
            Role::Combined => Some(0),
            Role::BucketService | Role::NodeRegistry | Role::PartitionMap => None,
            Role::ObjectPartition {
                partition_index, ..
            } => Some(partition_index),
        }
    }

    /// Whether this instance holds bucket records and object records together, so object commands
    /// can check bucket existence and DeleteBucket can check emptiness.
    pub fn holds_everything(self) -> bool {
        self == Role::Combined
    }
}
