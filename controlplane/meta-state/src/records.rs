//! Record types held by the state machine, one struct per key space.
//!
//! Model: every value here is plain data (no handles, no clocks). Times are milliseconds since the
//! Unix epoch as supplied by the command that created or changed the record; the state machine never
//! reads a clock. Every record carries a `record_version` that starts at 1 and grows by one on each
//! change, so a later writer (the healer) can compare-and-set against the version it read.
//!
//! Identifiers derived from the Raft log ([`VersionId`], [`UploadId`]) are the id index of the
//! command that created them: the log index of its entry, or a later index for the commands of a
//! batched entry (see the `machine` module's "Id indexes"). It is unique within one state machine
//! instance and identical on every replica, which makes the ids deterministic without a random
//! source.

use std::collections::BTreeMap;
use std::fmt;
use std::ops::Range;

pub use cairn_common::ShardIndex;

use crate::error::MetaError;

macro_rules! log_index_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
        pub struct $name(pub u64);

        impl $name {
            /// Parses the 16-digit lowercase hexadecimal form produced by `Display`.
            pub fn parse(text: &str) -> Option<Self> {
                let well_formed = text.len() == 16
                    && text.bytes().all(|byte| matches!(byte, b'0'..=b'9' | b'a'..=b'f'));
                if !well_formed {
                    return None;
                }
                u64::from_str_radix(text, 16).ok().map($name)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
                // Fixed width so that string order equals numeric order (creation order).
                write!(formatter, "{:016x}", self.0)
            }
        }
    };
}

log_index_id!(
    /// Id of one version of an object: the id index of the command that created it (PrepareWrite,
    /// a delete marker's DeleteObject, or CompleteMultipartUpload), with the region's version tag
    /// in the top byte (see [`VersionId::tagged`]). The gateway shows the S3 id `null` for
    /// versions whose [`ObjectRecord::null_version`] is set, and a replica's source id for a
    /// replica that keeps it ([`ObjectRecord::s3_version_id`]).
    VersionId
);

/// Bit position of the region tag in a [`VersionId`]: id indexes stay below 2^56 (at a million
/// commands a second a partition reaches that in over 2,000 years).
pub const VERSION_TAG_SHIFT: u32 = 56;

impl VersionId {
    /// The id of a version created at `id_index` in a region whose version tag is `tag` (0: no
    /// tag, the form of every id written before tags existed).
    pub fn tagged(tag: u8, id_index: u64) -> Self {
        debug_assert!(
            id_index < 1 << VERSION_TAG_SHIFT,
            "id index {id_index} overflows"
        );
        VersionId(
            (u64::from(tag) << VERSION_TAG_SHIFT) | (id_index & ((1 << VERSION_TAG_SHIFT) - 1)),
        )
    }

    /// The region tag in the id's top byte (0 for an untagged id).
    pub fn region_tag(self) -> u8 {
        (self.0 >> VERSION_TAG_SHIFT) as u8
    }
}

/// The version tag of region `region`: 1 to 255, fixed by the name, so every metadata replica of
/// a region derives the same one and ids of different regions differ in their top byte (the
/// first two hex digits of the S3 id). Replicas keep their source's version id only when its tag
/// is another region's: two names sharing a tag (one pair in 255) only make replicas keep the
/// destination's ids, as before tags.
pub fn region_version_tag(region: &str) -> u8 {
    // FNV-1a: a fixed function of the bytes, unlike std's hasher.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in region.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    (hash % 255) as u8 + 1
}
log_index_id!(
    /// Id of one multipart upload: the id index of its CreateMultipartUpload command.
    UploadId
);

/// The `object_id` half of a [`cairn_common::ShardId`] for the shards of a version or of a
/// multipart upload's parts: the partition index in the high 64 bits and the id that named the
/// shards when they were written (a log index of that partition, see
/// [`ObjectRecord::shard_name_id`]) in the low 64 bits. Ids from one partition's log never repeat, and
/// partitions are told apart by the high half, so shards of different writes never share a name,
/// and a janitor can find an aborted write's shards (which have no shard map) by this id.
pub fn shard_object_id(partition_index: u32, log_index_id: u64) -> u128 {
    (u128::from(partition_index) << 64) | u128::from(log_index_id)
}

/// Id of a storage node, chosen by the operator at registration.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct NodeId(pub u64);

impl fmt::Display for NodeId {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "node-{}", self.0)
    }
}

/// Id of a garbage entry: the id index of the command that produced it (the field keeps its
/// historical name) plus a sequence number
/// because one command (an overwrite of a multipart object, say) can produce several entries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct GarbageId {
    pub log_index: u64,
    pub sequence: u32,
}

/// Which version a read or delete addresses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VersionSelector {
    /// The current version (the newest committed one).
    Current,
    /// One version by id.
    Id(VersionId),
    /// The version S3 calls `null`: written while versioning was off or suspended.
    Null,
}

/// Write transaction state of an object version.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TransactionState {
    /// PrepareWrite applied; shards may be in flight; invisible to readers.
    Preparing,
    /// CommitWrite applied; visible from that log index on.
    Committed,
    /// Removed (overwritten, deleted or aborted); only found inside garbage entries.
    Deleted,
}

/// Bucket versioning configuration, as in S3. A bucket can never return to `Unversioned` once
/// versioning has been enabled.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum VersioningState {
    #[default]
    Unversioned,
    Enabled,
    Suspended,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum StorageClass {
    #[default]
    Standard,
    ReducedRedundancy,
    StandardInfrequentAccess,
    OneZoneInfrequentAccess,
    IntelligentTiering,
    Glacier,
    GlacierInstantRetrieval,
    DeepArchive,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum CannedAcl {
    #[default]
    Private,
    PublicRead,
    PublicReadWrite,
    AuthenticatedRead,
    AwsExecRead,
    BucketOwnerRead,
    BucketOwnerFullControl,
    LogDeliveryWrite,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Permission {
    FullControl,
    Read,
    Write,
    ReadAcp,
    WriteAcp,
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Grantee {
    CanonicalUser { id: String },
    Group { uri: String },
    Email { address: String },
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Grant {
    pub grantee: Grantee,
    pub permission: Permission,
}

/// Access control list: a canned ACL plus explicit grants (x-amz-grant-* headers or an ACL body).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default)]
pub struct Acl {
    pub canned: CannedAcl,
    pub grants: Vec<Grant>,
}

/// Algorithm of an `x-amz-checksum-*` value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ChecksumAlgorithm {
    Crc32,
    Crc32c,
    Crc64Nvme,
    Sha1,
    Sha256,
}

/// An `x-amz-checksum-*` value, kept in the base64 text form S3 returns it in.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct AdditionalChecksum {
    pub algorithm: ChecksumAlgorithm,
    pub value_base64: String,
}

/// Checksums of a whole object.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default)]
pub struct Checksums {
    /// ETag without quotes: MD5 hex for a single PUT, `<hex>-<parts>` for a multipart object.
    pub etag: String,
    pub additional: Option<AdditionalChecksum>,
}

/// A parsed erasure-coding scheme string `"<codec>:<k>+<m>"`, e.g. `"isal-cauchy:4+2"`.
///
/// Records keep the string form so that codecs this crate does not know about still round-trip;
/// the parsed form is used to validate shard maps.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct EcScheme {
    pub codec: String,
    pub data_shards: u8,
    pub parity_shards: u8,
}

impl EcScheme {
    pub fn parse(text: &str) -> Result<Self, MetaError> {
        let invalid = |reason: &str| MetaError::InvalidEcScheme {
            scheme: text.to_owned(),
            reason: reason.to_owned(),
        };
        let (codec, counts) = text
            .split_once(':')
            .ok_or_else(|| invalid("expected <codec>:<k>+<m>"))?;
        let (data, parity) = counts
            .split_once('+')
            .ok_or_else(|| invalid("expected <codec>:<k>+<m>"))?;
        if codec.is_empty() {
            return Err(invalid("empty codec name"));
        }
        let digits = |part: &str| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit());
        if !digits(data) || !digits(parity) {
            return Err(invalid("shard counts must be decimal numbers"));
        }
        let data_shards: u16 = data.parse().map_err(|_| invalid("k out of range"))?;
        let parity_shards: u16 = parity.parse().map_err(|_| invalid("m out of range"))?;
        if data_shards == 0 {
            return Err(invalid("k must be at least 1"));
        }
        // One byte per shard index on storage nodes' ids is plenty; the codecs cap at 255 too.
        if data_shards + parity_shards > 255 {
            return Err(invalid("k + m must be at most 255"));
        }
        Ok(EcScheme {
            codec: codec.to_owned(),
            data_shards: data_shards as u8,
            parity_shards: parity_shards as u8,
        })
    }

    pub fn total_shards(&self) -> u16 {
        u16::from(self.data_shards) + u16::from(self.parity_shards)
    }

    /// Fewest shards per block a commit may have: all k+m normally, at least k+1 when the gateway
    /// ran out of alternates (ARCHITECTURE.md, PUT step 4); never k or fewer unless m is 0.
    pub fn minimum_commit_shards(&self) -> u16 {
        if self.parity_shards == 0 {
            u16::from(self.data_shards)
        } else {
            u16::from(self.data_shards) + 1
        }
    }
}

impl fmt::Display for EcScheme {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            formatter,
            "{}:{}+{}",
            self.codec, self.data_shards, self.parity_shards
        )
    }
}

/// Where one shard of one block lives, and its checksum as computed at encode time.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ShardPlacement {
    pub node_id: NodeId,
    pub availability_zone: String,
    pub crc32c: u32,
}

/// One block: a run of stripes encoded together into one shard per shard index.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default)]
pub struct BlockShards {
    /// Object bytes covered by this block (before padding and parity).
    pub length_bytes: u64,
    /// Shard index -> placement. A committed block may lack some indexes (a degraded write;
    /// see [`EcScheme::minimum_commit_shards`]), and never needs its padding data pieces
    /// (`cairn_common::padding`: wholly past `length_bytes`, zeros, not written), which count
    /// as present.
    pub shards: BTreeMap<ShardIndex, ShardPlacement>,
}

impl BlockShards {
    /// The block's padding data pieces (`cairn_common::padding`) for `data_shards` data pieces of
    /// `piece_size_bytes`.
    pub fn padding_data_pieces(&self, data_shards: usize, piece_size_bytes: u64) -> Range<usize> {
        cairn_common::padding_data_pieces(data_shards, piece_size_bytes, self.length_bytes)
    }

    /// Pieces the block has: its placed pieces that are not padding pieces, plus its padding
    /// pieces (present by definition, placed or not).
    pub fn present_pieces(&self, data_shards: usize, piece_size_bytes: u64) -> usize {
        let padding = self.padding_data_pieces(data_shards, piece_size_bytes);
        let placed = self
            .shards
            .keys()
            .filter(|index| !padding.contains(&usize::from(index.0)))
            .count();
        placed + padding.len()
    }
}

/// The shard map of one part (a single PUT has exactly one part, numbered 1).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default)]
pub struct PartShards {
    pub part_number: u32,
    pub length_bytes: u64,
    pub blocks: Vec<BlockShards>,
}

/// Erasure-coding information of an object version.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default)]
pub struct ErasureInfo {
    /// Scheme string, e.g. `"isal-cauchy:4+2"`.
    pub scheme: String,
    /// Bytes per shard per stripe (the stripe holds `k * piece_size_bytes` object bytes).
    pub piece_size_bytes: u32,
    /// Bytes described by `parts` once committed: the object size, or for an encrypted object
    /// its stored (ciphertext) length ([`crate::stored_length`]).
    pub object_length_bytes: u64,
    /// Empty until the write commits.
    pub parts: Vec<PartShards>,
    /// Set when some block was committed with fewer than k+m shards: the healer must rebuild.
    pub degraded: bool,
}

/// One version of one object, or a delete marker.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ObjectRecord {
    pub bucket: String,
    pub key: String,
    pub version_id: VersionId,
    /// Written while versioning was off or suspended: S3 calls it version `null`, and a later null
    /// version replaces it.
    pub null_version: bool,
    /// A delete marker has no data, no shards and is never PREPARING.
    pub delete_marker: bool,
    /// Canonical user id of the writer.
    pub owner: String,
    pub size_bytes: u64,
    pub checksums: Checksums,
    pub content_type: String,
    /// `x-amz-meta-*` headers, name (lowercase, without the prefix) -> value.
    pub user_metadata: BTreeMap<String, String>,
    pub storage_class: StorageClass,
    pub acl: Acl,
    pub state: TransactionState,
    /// Token of the PUT that created this version; empty when none was given.
    pub idempotency_token: String,
    /// Time of the PrepareWrite (what the janitor compares against).
    pub created_at_ms: u64,
    /// Time of the CommitWrite (S3 Last-Modified); `None` while PREPARING.
    pub committed_at_ms: Option<u64>,
    /// Id index of the CommitWrite (its log index unless it was batched); 0 while PREPARING.
    /// Orders versions of one key: the current
    /// version is the committed one with the highest commit index, so the last commit wins even
    /// when two writers prepared in the other order.
    pub commit_log_index: u64,
    /// Set when the version was produced by CompleteMultipartUpload (makes the completion retry safe).
    pub upload_id: Option<UploadId>,
    pub erasure: ErasureInfo,
    pub record_version: u64,
    /// Named attributes of this version (format version 2); see [`Attributes`].
    pub attributes: Attributes,
}

impl ObjectRecord {
    /// The id its shards were named with: the upload id for a version completed from a multipart
    /// upload (its parts' shards were written before the version existed), the version id
    /// otherwise.
    pub fn shard_name_id(&self) -> u64 {
        self.upload_id
            .map_or(self.version_id.0, |upload_id| upload_id.0)
    }

    /// The id S3 clients see: for a replica that keeps its source's id (the attribute
    /// [`REPLICA_VERSION_ATTRIBUTE`]), that id; else [`Self::version_id`]. `version_id` stays the
    /// partition's own id: it names the shards and keys the record.
    pub fn s3_version_id(&self) -> VersionId {
        self.attributes
            .get(REPLICA_VERSION_ATTRIBUTE)
            .and_then(|bytes| std::str::from_utf8(bytes).ok())
            .and_then(VersionId::parse)
            .unwrap_or(self.version_id)
    }
}

/// The object attribute a replica keeps its source version's id in (the 16 hex digits of
/// [`VersionId`]'s display form), so that S3 clients see the same id in both buckets. Set only
/// when the write is created ([`ObjectRecord::s3_version_id`]).
pub const REPLICA_VERSION_ATTRIBUTE: &str = "replica-version-id";

/// A simple replication rule: objects under `prefix` are copied to another region's bucket.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ReplicationRule {
    pub rule_id: String,
    pub prefix: String,
    pub destination_region: String,
    pub destination_bucket: String,
    pub enabled: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct BucketRecord {
    pub name: String,
    pub owner: String,
    pub primary_region: String,
    pub created_at_ms: u64,
    pub versioning: VersioningState,
    pub replication_rules: Vec<ReplicationRule>,
    /// Scheme for new writes; existing objects keep the scheme they were written with.
    pub ec_scheme: String,
    pub acl: Acl,
    pub record_version: u64,
    /// Bucket configurations (format version 2); see [`Attributes`].
    pub attributes: Attributes,
}

/// Named, opaque attributes of a bucket, an object version or a multipart upload: S3 features
/// that ride on a record without changing the record format each time (tags, bucket
/// configuration documents, encryption and retention settings). Each name has one owner that
/// defines its value's encoding; the state machine treats values as bytes except where it
/// enforces a rule (see the names below), so a feature adds a name instead of a format version.
///
/// Well-known names (the feature that owns the encoding):
/// - objects and uploads: `tagging` (object tags), `encryption` (server-side encryption
///   parameters), `retention` and `legal-hold` (object lock);
/// - buckets: `tagging`, `policy`, `cors`, `lifecycle`, `public-access-block`, `quota`,
///   `encryption` (default encryption), `object-lock` (object lock configuration).
///
/// Limits: [`MAX_ATTRIBUTE_NAME_BYTES`], [`MAX_ATTRIBUTE_VALUE_BYTES`] and
/// [`MAX_ATTRIBUTES_PER_RECORD`], checked when a command sets them.
pub type Attributes = BTreeMap<String, Vec<u8>>;

/// Longest attribute name, in bytes.
pub const MAX_ATTRIBUTE_NAME_BYTES: usize = 64;
/// Largest attribute value: S3's largest configuration document (a bucket policy) is 20 KiB; the
/// rest of the headroom is for lifecycle and CORS documents.
pub const MAX_ATTRIBUTE_VALUE_BYTES: usize = 64 * 1024;
/// Most attributes on one record.
pub const MAX_ATTRIBUTES_PER_RECORD: usize = 32;

/// One uploaded part of a multipart upload.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PartRecord {
    pub part_number: u32,
    pub size_bytes: u64,
    /// MD5 hex of the part, without quotes.
    pub etag: String,
    pub checksum: Option<AdditionalChecksum>,
    pub uploaded_at_ms: u64,
    pub blocks: Vec<BlockShards>,
    pub degraded: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct MultipartUpload {
    pub bucket: String,
    pub key: String,
    pub upload_id: UploadId,
    pub owner: String,
    pub content_type: String,
    pub user_metadata: BTreeMap<String, String>,
    pub storage_class: StorageClass,
    pub acl: Acl,
    pub ec_scheme: String,
    pub piece_size_bytes: u32,
    pub initiated_at_ms: u64,
    pub parts: BTreeMap<u32, PartRecord>,
    pub record_version: u64,
    /// Attributes the completed version will carry (format version 2); see [`Attributes`].
    pub attributes: Attributes,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AccessKeyStatus {
    Active,
    Revoked,
}

/// An S3 access key. The secret is stored as given; encryption at rest is a later issue.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct AccessKeyRecord {
    pub access_key_id: String,
    pub secret_access_key: String,
    /// Canonical user id the key authenticates as.
    pub owner: String,
    pub created_at_ms: u64,
    pub status: AccessKeyStatus,
    pub revoked_at_ms: Option<u64>,
    pub record_version: u64,
}

impl fmt::Debug for AccessKeyRecord {
    // The secret never reaches a log line through Debug.
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("AccessKeyRecord")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .field("owner", &self.owner)
            .field("created_at_ms", &self.created_at_ms)
            .field("status", &self.status)
            .field("revoked_at_ms", &self.revoked_at_ms)
            .field("record_version", &self.record_version)
            .finish()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum NodeStatus {
    Up,
    Down,
}

/// The cluster's metadata layout, recorded once by the partition-map group when the cluster
/// is first bootstrapped: what every meta node and client must agree on to route a key to the
/// same partition and a partition to the same replicas. The values are produced and compared by
/// the Raft layer (`cairn_raft::layout`); the state machine only stores the first one.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ClusterLayout {
    /// Version of the `bucket/key` → partition hash (`cairn_raft::ring::RING_VERSION`).
    pub ring_version: u32,
    /// P, the number of object partitions.
    pub partition_count: u32,
    pub virtual_nodes_per_partition: u32,
    /// Version of the group → replicas hash (`cairn_raft::placement::PLACEMENT_VERSION`).
    pub placement_version: u32,
    pub replicas_per_group: u32,
    /// Meta node id → availability zone.
    pub zones: BTreeMap<u64, String>,
    /// Raft group id → the meta node ids of its initial voters, ascending.
    pub placement: BTreeMap<u64, Vec<u64>>,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct NodeRecord {
    pub node_id: NodeId,
    /// `host:port` of the node's shard RPC endpoint.
    pub address: String,
    pub availability_zone: String,
    pub capacity_bytes: u64,
    pub used_bytes: u64,
    pub status: NodeStatus,
    pub registered_at_ms: u64,
    pub last_heartbeat_ms: u64,
    pub record_version: u64,
}

/// Why a garbage entry exists.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum GarbageReason {
    /// A null version replaced by a newer null version (the unversioned overwrite).
    Overwritten,
    /// Removed by DeleteObject.
    Deleted,
    /// A PREPARING write rolled back by AbortWrite (the janitor's or the gateway's).
    WriteAborted,
    /// A CommitWrite for a write that no longer exists: its shards are orphans.
    CommitRejected,
    /// A part uploaded again under the same number.
    PartReplaced,
    /// A part of an aborted multipart upload, or not listed in the completion.
    PartDiscarded,
    /// Shards moved away by a healer's UpdateShardMap.
    ShardsMoved,
}

/// Shards that must be deleted from storage nodes. `version_id` and `upload_id` say what the
/// shards belonged to; both are set for a version completed from a multipart upload. The entry stays until the janitor reports the
/// deletion with PurgeGarbage, so a janitor crash loses nothing.
///
/// An aborted write's entry has no shard map (PREPARING records have none): the janitor finds its
/// shards by object id on the nodes placement would have chosen.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct GarbageRecord {
    pub garbage_id: GarbageId,
    pub reason: GarbageReason,
    pub bucket: String,
    pub key: String,
    pub version_id: Option<VersionId>,
    pub upload_id: Option<UploadId>,
    pub ec_scheme: String,
    pub parts: Vec<PartShards>,
    pub created_at_ms: u64,
}

impl GarbageRecord {
    /// The id the shards were named with (see [`ObjectRecord::shard_name_id`]): the upload id when
    /// set (parts, or a version completed from an upload), else the version id.
    pub fn shard_name_id(&self) -> Option<u64> {
        self.upload_id
            .map(|upload_id| upload_id.0)
            .or(self.version_id.map(|version_id| version_id.0))
    }
}

/// One entry of an object partition's suspect queue (see [`crate::suspects`]): a committed
/// version a reader found a bad piece of, waiting for the healer.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SuspectRecord {
    pub bucket: String,
    pub key: String,
    pub version_id: VersionId,
    /// When the first report of this entry was applied (the reporter's clock).
    pub first_reported_ms: u64,
    /// Id index (the log index unless batched) of the latest report: `ResolveSuspects` names it, so a report that arrives while
    /// the healer works keeps the entry.
    pub last_report_index: u64,
    pub report_count: u32,
}
