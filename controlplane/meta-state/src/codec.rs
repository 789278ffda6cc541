//! The versioned binary format of records, commands and snapshots.
//!
//! Why hand-written rather than serde + postcard/bincode under a version byte: the bytes of this
//! format end up in LMDB and in Raft snapshots that outlive any one build, so the layout must be a
//! deliberate, reviewable artefact rather than a side effect of derive order and a third-party
//! crate's encoding rules. Here the field order of each type is written down once (the
//! `encode_struct!` lists below are the format definition), golden-bytes tests freeze it, and a
//! change is an explicit new `FORMAT_VERSION` with the old decoder kept. Writing the decoder by hand
//! also lets it bound every length by the remaining input before allocating, so garbage input can
//! neither panic nor allocate more than its own size, and reject non-canonical input (unsorted or
//! repeated map keys, booleans other than 0/1) so that equal states always have equal bytes.
//!
//! Layout rules (all of format version 1):
//! - every top-level value starts with `FORMAT_VERSION` (1 byte) and a [`RecordKind`] (1 byte);
//! - integers are fixed-width little-endian; `bool` is one byte, 0 or 1;
//! - strings are a `u32` byte length plus UTF-8 bytes;
//! - `Option<T>` is a byte 0 (none) or 1 followed by `T`;
//! - sequences are a `u32` count plus the elements; maps are a `u32` count plus key/value pairs in
//!   strictly ascending key order;
//! - enums are a one-byte tag (values listed next to each type below, never reused) plus fields;
//! - a snapshot ends with the CRC32C of every byte before it (little-endian `u32`), because it
//!   travels over the network and sits in files, unlike a record that LMDB already checksums.

use std::collections::{BTreeMap, BTreeSet};

use crate::command::WriteCondition;
use crate::command::{
    AbortMultipartUpload, AbortWrite, Command, CommitWrite, CompleteMultipartUpload, CompletedPart,
    CreateAccessKey, CreateBucket, CreateMultipartUpload, DeleteObject, ListObjectsPage,
    ListObjectsRequest, ListPartsPage, ListPartsRequest, ListUploadsPage, ListUploadsRequest,
    ListVersionsPage, ListVersionsRequest, ObjectSummary, Output, PrepareWrite, Query,
    RegisterNode, ResealAccessKey, Response, SuspectResolution, UpdateShardMap, UploadPart,
    UploadSummary, VersionSummary,
};
use crate::error::MetaError;
use crate::kms::{CreateKmsKey, KmsCommand, KmsKeyRecord, KmsKeyState, KmsKeyVersion, KmsQuery};
use crate::machine::StateMachine;
use crate::records::{
    AccessKeyRecord, AccessKeyStatus, Acl, AdditionalChecksum, BlockShards, BucketRecord,
    CannedAcl, ChecksumAlgorithm, Checksums, ClusterLayout, ErasureInfo, GarbageId, GarbageReason,
    GarbageRecord, Grant, Grantee, MultipartUpload, NodeId, NodeRecord, NodeStatus, ObjectRecord,
    PartRecord, PartShards, Permission, ReplicationRule, ShardIndex, ShardPlacement, StorageClass,
    SuspectRecord, TransactionState, UploadId, VersionId, VersionSelector, VersioningState,
};
use crate::replication::{
    ReplicationEntry, ReplicationEventKind, ReplicationOutcome, ReplicationResolution,
};
use crate::role::Role;
use crate::stored::StoredRecord;
use crate::tracked::TrackedMap;
use crate::usage::BucketStats;

/// The format version this build writes. Decoders for every older version stay.
///
/// - 1: the first format.
/// - 2: `attributes` maps on object, bucket and upload records and in the commands that create
///   them (PrepareWrite, CreateMultipartUpload, CreateBucket); commands 25 PutBucketAttribute and
///   26 PutObjectAttribute. A version-1 value decodes with empty attributes.
pub const FORMAT_VERSION: u8 = 2;

/// What a top-level encoding holds (second byte). Values are never reused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum RecordKind {
    Object = 1,
    Bucket = 2,
    MultipartUpload = 3,
    AccessKey = 4,
    Node = 5,
    Garbage = 6,
    Snapshot = 7,
    Command = 8,
    Output = 9,
    /// Stored form of a state (see [`crate::stored`]): one value per record plus a header.
    Suspect = 10,
    KmsKey = 11,
    ReplicationEntry = 12,
    StoredStateHeader = 13,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("unsupported format version {found} (this build reads up to {supported})")]
    UnsupportedVersion { found: u8, supported: u8 },
    #[error("record kind {found} where kind {expected} was expected")]
    WrongKind { expected: u8, found: u8 },
    #[error("input ends at offset {offset}, {needed} more bytes were needed")]
    UnexpectedEnd { offset: usize, needed: usize },
    #[error("invalid {what} tag {tag} at offset {offset}")]
    InvalidTag {
        what: &'static str,
        tag: u8,
        offset: usize,
    },
    #[error("invalid UTF-8 in a string at offset {offset}")]
    InvalidUtf8 { offset: usize },
    #[error("{what} at offset {offset} is not in strictly ascending order")]
    NotCanonical { what: &'static str, offset: usize },
    #[error("{count} bytes follow the end of the value")]
    TrailingBytes { count: usize },
    #[error("snapshot checksum mismatch: stored {stored:#010x}, computed {computed:#010x}")]
    ChecksumMismatch { stored: u32, computed: u32 },
    #[error("snapshot state is inconsistent: {reason}")]
    Inconsistent { reason: String },
}

/// Appends encoded values to a byte vector.
#[derive(Default)]
pub struct Writer {
    bytes: Vec<u8>,
}

impl Writer {
    pub fn new() -> Self {
        Writer::default()
    }

    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }

    /// Bytes already encoded elsewhere, as they are.
    pub(crate) fn raw(&mut self, bytes: &[u8]) {
        self.bytes.extend_from_slice(bytes);
    }

    /// Bytes written so far.
    pub(crate) fn position(&self) -> usize {
        self.bytes.len()
    }

    /// Overwrites the `u32` written at `position` (a count known only after its elements).
    pub(crate) fn patch_u32(&mut self, position: usize, value: u32) {
        self.bytes[position..position + 4].copy_from_slice(&value.to_le_bytes());
    }

    pub fn u8(&mut self, value: u8) {
        self.bytes.push(value);
    }

    pub fn u16(&mut self, value: u16) {
        self.bytes.extend_from_slice(&value.to_le_bytes());
    }

    pub fn u32(&mut self, value: u32) {
        self.bytes.extend_from_slice(&value.to_le_bytes());
    }

    pub fn u64(&mut self, value: u64) {
        self.bytes.extend_from_slice(&value.to_le_bytes());
    }

    pub fn bool(&mut self, value: bool) {
        self.u8(u8::from(value));
    }

    /// Writes a count. Collections above 4 GiB entries cannot occur in metadata; refusing them
    /// loudly beats writing a truncated count that would decode as a different value.
    pub fn count(&mut self, count: usize) {
        self.u32(u32::try_from(count).expect("collection of at most u32::MAX entries"));
    }

    pub fn str(&mut self, value: &str) {
        self.count(value.len());
        self.bytes.extend_from_slice(value.as_bytes());
    }
}

/// Reads encoded values from a byte slice; every read checks the remaining length first.
pub struct Reader<'a> {
    input: &'a [u8],
    offset: usize,
    /// The format version of the value being read: the current one unless a header said older.
    format_version: u8,
}

impl<'a> Reader<'a> {
    pub fn new(input: &'a [u8]) -> Self {
        Reader {
            input,
            offset: 0,
            format_version: FORMAT_VERSION,
        }
    }

    /// The format version the value being read was written in (set by its header).
    pub fn format_version(&self) -> u8 {
        self.format_version
    }

    pub fn offset(&self) -> usize {
        self.offset
    }

    pub fn remaining(&self) -> usize {
        self.input.len() - self.offset
    }

    fn take(&mut self, length: usize) -> Result<&'a [u8], DecodeError> {
        if length > self.remaining() {
            return Err(DecodeError::UnexpectedEnd {
                offset: self.offset,
                needed: length - self.remaining(),
            });
        }
        let bytes = &self.input[self.offset..self.offset + length];
        self.offset += length;
        Ok(bytes)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let mut array = [0u8; N];
        array.copy_from_slice(self.take(N)?);
        Ok(array)
    }

    pub fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }

    pub fn u16(&mut self) -> Result<u16, DecodeError> {
        Ok(u16::from_le_bytes(self.array()?))
    }

    pub fn u32(&mut self) -> Result<u32, DecodeError> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    pub fn u64(&mut self) -> Result<u64, DecodeError> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    /// Reads an enum tag, reporting `what` when it is out of range.
    pub fn tag(&mut self, what: &'static str, variants: u8) -> Result<u8, DecodeError> {
        let offset = self.offset;
        let tag = self.u8()?;
        if tag >= variants {
            return Err(DecodeError::InvalidTag { what, tag, offset });
        }
        Ok(tag)
    }

    pub fn bool(&mut self) -> Result<bool, DecodeError> {
        Ok(self.tag("bool", 2)? == 1)
    }

    /// Reads a count of elements that each take at least one byte, so a count larger than the
    /// remaining input is garbage: refusing it bounds every allocation by the input size.
    pub fn count(&mut self) -> Result<usize, DecodeError> {
        let offset = self.offset;
        let count = self.u32()? as usize;
        if count > self.remaining() {
            return Err(DecodeError::UnexpectedEnd {
                offset,
                needed: count - self.remaining(),
            });
        }
        Ok(count)
    }

    pub fn string(&mut self) -> Result<String, DecodeError> {
        let length = self.count()?;
        let offset = self.offset;
        let bytes = self.take(length)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| DecodeError::InvalidUtf8 { offset })
    }

    pub fn finish(self) -> Result<(), DecodeError> {
        match self.remaining() {
            0 => Ok(()),
            count => Err(DecodeError::TrailingBytes { count }),
        }
    }
}

pub trait Encode {
    fn encode(&self, writer: &mut Writer);
}

pub trait Decode: Sized {
    fn decode(reader: &mut Reader<'_>) -> Result<Self, DecodeError>;
}

/// A value stored on its own (an LMDB value, a log entry): it gets the version/kind header.
pub trait Record: Encode + Decode {
    const KIND: RecordKind;
}

/// Encodes a record with its format-version and kind header.
pub fn encode_record<R: Record>(record: &R) -> Vec<u8> {
    let mut writer = Writer::new();
    writer.u8(FORMAT_VERSION);
    writer.u8(R::KIND as u8);
    record.encode(&mut writer);
    writer.into_bytes()
}

/// Decodes a record written by [`encode_record`] by this or an older build.
pub fn decode_record<R: Record>(bytes: &[u8]) -> Result<R, DecodeError> {
    let mut reader = Reader::new(bytes);
    read_header(&mut reader, R::KIND)?;
    let record = R::decode(&mut reader)?;
    reader.finish()?;
    Ok(record)
}

pub(crate) fn read_header(reader: &mut Reader<'_>, kind: RecordKind) -> Result<(), DecodeError> {
    let version = reader.u8()?;
    // Version 1 lacks the fields listed under `since 2` in `encode_struct!`; they decode as empty.
    if !(1..=FORMAT_VERSION).contains(&version) {
        return Err(DecodeError::UnsupportedVersion {
            found: version,
            supported: FORMAT_VERSION,
        });
    }
    reader.format_version = version;
    let found = reader.u8()?;
    if found != kind as u8 {
        return Err(DecodeError::WrongKind {
            expected: kind as u8,
            found,
        });
    }
    Ok(())
}

// ----- primitives and containers ------------------------------------------------------------

macro_rules! encode_integer {
    ($($type:ident),*) => {$(
        impl Encode for $type {
            fn encode(&self, writer: &mut Writer) {
                writer.$type(*self);
            }
        }
        impl Decode for $type {
            fn decode(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
                reader.$type()
            }
        }
    )*};
}
encode_integer!(u8, u16, u32, u64);

impl Encode for bool {
    fn encode(&self, writer: &mut Writer) {
        writer.bool(*self);
    }
}

impl Decode for bool {
    fn decode(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        reader.bool()
    }
}

impl Encode for String {
    fn encode(&self, writer: &mut Writer) {
        writer.str(self);
    }
}

impl Decode for String {
    fn decode(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        reader.string()
    }
}

impl<T: Encode> Encode for Option<T> {
    fn encode(&self, writer: &mut Writer) {
        match self {
            None => writer.u8(0),
            Some(value) => {
                writer.u8(1);
                value.encode(writer);
            }
        }
    }
}

impl<T: Decode> Decode for Option<T> {
    fn decode(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        match reader.tag("option", 2)? {
            0 => Ok(None),
            _ => T::decode(reader).map(Some),
        }
    }
}

impl<T: Encode> Encode for Vec<T> {
    fn encode(&self, writer: &mut Writer) {
        writer.count(self.len());
        for item in self {
            item.encode(writer);
        }
    }
}

impl<T: Decode> Decode for Vec<T> {
    fn decode(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let count = reader.count()?;
        let mut items = Vec::with_capacity(count);
        for _ in 0..count {
            items.push(T::decode(reader)?);
        }
        Ok(items)
    }
}

impl<K: Encode, V: Encode> Encode for BTreeMap<K, V> {
    fn encode(&self, writer: &mut Writer) {
        writer.count(self.len());
        for (key, value) in self {
            key.encode(writer);
            value.encode(writer);
        }
    }
}

impl<K: Decode + Ord, V: Decode> Decode for BTreeMap<K, V> {
    fn decode(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let count = reader.count()?;
        let mut map = BTreeMap::new();
        for _ in 0..count {
            let offset = reader.offset();
            let key = K::decode(reader)?;
            if map.last_key_value().is_some_and(|(last, _)| *last >= key) {
                return Err(DecodeError::NotCanonical {
                    what: "map key",
                    offset,
                });
            }
            let value = V::decode(reader)?;
            map.insert(key, value);
        }
        Ok(map)
    }
}

impl<T: Encode> Encode for BTreeSet<T> {
    fn encode(&self, writer: &mut Writer) {
        writer.count(self.len());
        for item in self {
            item.encode(writer);
        }
    }
}

impl<T: Decode + Ord> Decode for BTreeSet<T> {
    fn decode(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let count = reader.count()?;
        let mut items = Vec::with_capacity(count);
        for _ in 0..count {
            let offset = reader.offset();
            let item = T::decode(reader)?;
            if items.last().is_some_and(|last| *last >= item) {
                return Err(DecodeError::NotCanonical {
                    what: "set element",
                    offset,
                });
            }
            items.push(item);
        }
        Ok(items.into_iter().collect())
    }
}

// ----- identifiers --------------------------------------------------------------------------

macro_rules! encode_newtype {
    ($($type:ident($inner:ty)),*) => {$(
        impl Encode for $type {
            fn encode(&self, writer: &mut Writer) {
                self.0.encode(writer);
            }
        }
        impl Decode for $type {
            fn decode(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
                <$inner>::decode(reader).map($type)
            }
        }
    )*};
}
encode_newtype!(VersionId(u64), UploadId(u64), NodeId(u64), ShardIndex(u16));

/// Field-by-field struct encoding: the field list is the layout.
macro_rules! encode_struct {
    ($type:ident { $($field:ident),* $(,)? }) => {
        impl Encode for $type {
            fn encode(&self, writer: &mut Writer) {
                $(self.$field.encode(writer);)*
            }
        }
        impl Decode for $type {
            fn decode(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
                Ok($type { $($field: Decode::decode(reader)?,)* })
            }
        }
    };
    // Fields after `since 2` were added in format version 2: always written, read only from
    // version-2 input, and `Default` when reading version 1.
    ($type:ident { $($field:ident),* $(,)? } since 2 { $($added:ident),* $(,)? }) => {
        impl Encode for $type {
            fn encode(&self, writer: &mut Writer) {
                $(self.$field.encode(writer);)*
                $(self.$added.encode(writer);)*
            }
        }
        impl Decode for $type {
            fn decode(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
                $(let $field = Decode::decode(reader)?;)*
                let since_2 = reader.format_version() >= 2;
                $(let $added = if since_2 { Decode::decode(reader)? } else { Default::default() };)*
                Ok($type { $($field,)* $($added,)* })
            }
        }
    };
}

/// Fieldless enums: one tag byte per variant, in the listed order (tags 0, 1, 2, …).
macro_rules! encode_tag_enum {
    ($type:ident, $what:literal, [$($variant:ident),* $(,)?]) => {
        impl Encode for $type {
            fn encode(&self, writer: &mut Writer) {
                const VARIANTS: &[$type] = &[$($type::$variant),*];
                let tag = VARIANTS
                    .iter()
                    .position(|variant| variant == self)
                    .expect("every variant is listed");
                writer.u8(tag as u8);
            }
        }
        impl Decode for $type {
            fn decode(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
                const VARIANTS: &[$type] = &[$($type::$variant),*];
                let tag = reader.tag($what, VARIANTS.len() as u8)?;
                Ok(VARIANTS[tag as usize])
            }
        }
    };
}

encode_struct!(GarbageId {
    log_index,
    sequence
});
encode_struct!(SuspectRecord {
    bucket,
    key,
    version_id,
    first_reported_ms,
    last_report_index,
    report_count,
});
encode_struct!(SuspectResolution {
    bucket,
    key,
    version_id,
    last_report_index,
});

// ----- enums --------------------------------------------------------------------------------

encode_tag_enum!(
    TransactionState,
    "transaction state",
    [Preparing, Committed, Deleted]
);
encode_tag_enum!(
    VersioningState,
    "versioning state",
    [Unversioned, Enabled, Suspended]
);
encode_tag_enum!(
    StorageClass,
    "storage class",
    [
        Standard,
        ReducedRedundancy,
        StandardInfrequentAccess,
        OneZoneInfrequentAccess,
        IntelligentTiering,
        Glacier,
        GlacierInstantRetrieval,
        DeepArchive,
    ]
);
encode_tag_enum!(
    CannedAcl,
    "canned ACL",
    [
        Private,
        PublicRead,
        PublicReadWrite,
        AuthenticatedRead,
        AwsExecRead,
        BucketOwnerRead,
        BucketOwnerFullControl,
        LogDeliveryWrite,
    ]
);
encode_tag_enum!(
    Permission,
    "permission",
    [FullControl, Read, Write, ReadAcp, WriteAcp]
);
encode_tag_enum!(
    ChecksumAlgorithm,
    "checksum algorithm",
    [Crc32, Crc32c, Crc64Nvme, Sha1, Sha256]
);
encode_tag_enum!(AccessKeyStatus, "access key status", [Active, Revoked]);
encode_tag_enum!(NodeStatus, "node status", [Up, Down]);
encode_tag_enum!(KmsKeyState, "KMS key state", [Enabled, Disabled]);
encode_tag_enum!(
    GarbageReason,
    "garbage reason",
    [
        Overwritten,
        Deleted,
        WriteAborted,
        CommitRejected,
        PartReplaced,
        PartDiscarded,
        ShardsMoved,
    ]
);

impl Encode for Grantee {
    fn encode(&self, writer: &mut Writer) {
        match self {
            Grantee::CanonicalUser { id } => {
                writer.u8(0);
                writer.str(id);
            }
            Grantee::Group { uri } => {
                writer.u8(1);
                writer.str(uri);
            }
            Grantee::Email { address } => {
                writer.u8(2);
                writer.str(address);
            }
        }
    }
}

impl Decode for Grantee {
    fn decode(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(match reader.tag("grantee", 3)? {
            0 => Grantee::CanonicalUser {
                id: reader.string()?,
            },
            1 => Grantee::Group {
                uri: reader.string()?,
            },
            _ => Grantee::Email {
                address: reader.string()?,
            },
        })
    }
}

impl Encode for VersionSelector {
    fn encode(&self, writer: &mut Writer) {
        match self {
            VersionSelector::Current => writer.u8(0),
            VersionSelector::Id(version_id) => {
                writer.u8(1);
                version_id.encode(writer);
            }
            VersionSelector::Null => writer.u8(2),
        }
    }
}

impl Decode for VersionSelector {
    fn decode(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(match reader.tag("version selector", 3)? {
            0 => VersionSelector::Current,
            1 => VersionSelector::Id(VersionId::decode(reader)?),
            _ => VersionSelector::Null,
        })
    }
}

/// Role tags (never reused): 0 Combined, 1 BucketService, 2 ObjectPartition, 3 NodeRegistry,
/// 4 PartitionMap.
impl Encode for Role {
    fn encode(&self, writer: &mut Writer) {
        match self {
            Role::Combined => writer.u8(0),
            Role::BucketService => writer.u8(1),
            Role::ObjectPartition {
                partition_index,
                partition_count,
            } => {
                writer.u8(2);
                writer.u32(*partition_index);
                writer.u32(*partition_count);
            }
            Role::NodeRegistry => writer.u8(3),
            Role::PartitionMap => writer.u8(4),
        }
    }
}

impl Decode for Role {
    fn decode(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(match reader.tag("role", 5)? {
            0 => Role::Combined,
            1 => Role::BucketService,
            2 => Role::ObjectPartition {
                partition_index: reader.u32()?,
                partition_count: reader.u32()?,
            },
            3 => Role::NodeRegistry,
            _ => Role::PartitionMap,
        })
    }
}

// ----- records ------------------------------------------------------------------------------

encode_struct!(Grant {
    grantee,
    permission
});
encode_struct!(Acl { canned, grants });
encode_struct!(AdditionalChecksum {
    algorithm,
    value_base64
});
encode_struct!(Checksums { etag, additional });
encode_struct!(ShardPlacement {
    node_id,
    availability_zone,
    crc32c
});
encode_struct!(BlockShards {
    length_bytes,
    shards
});
encode_struct!(PartShards {
    part_number,
    length_bytes,
    blocks
});
encode_struct!(ErasureInfo {
    scheme,
    piece_size_bytes,
    object_length_bytes,
    parts,
    degraded
});
encode_struct!(ObjectRecord {
    bucket,
    key,
    version_id,
    null_version,
    delete_marker,
    owner,
    size_bytes,
    checksums,
    content_type,
    user_metadata,
    storage_class,
    acl,
    state,
    idempotency_token,
    created_at_ms,
    committed_at_ms,
    commit_log_index,
    upload_id,
    erasure,
    record_version,
} since 2 { attributes });
encode_struct!(ReplicationRule {
    rule_id,
    prefix,
    destination_region,
    destination_bucket,
    enabled
});
encode_struct!(BucketRecord {
    name,
    owner,
    primary_region,
    created_at_ms,
    versioning,
    replication_rules,
    ec_scheme,
    acl,
    record_version,
} since 2 { attributes });
encode_struct!(PartRecord {
    part_number,
    size_bytes,
    etag,
    checksum,
    uploaded_at_ms,
    blocks,
    degraded,
});
encode_struct!(MultipartUpload {
    bucket,
    key,
    upload_id,
    owner,
    content_type,
    user_metadata,
    storage_class,
    acl,
    ec_scheme,
    piece_size_bytes,
    initiated_at_ms,
    parts,
    record_version,
} since 2 { attributes });
encode_struct!(AccessKeyRecord {
    access_key_id,
    secret_access_key,
    owner,
    created_at_ms,
    status,
    revoked_at_ms,
    record_version,
});
encode_struct!(ClusterLayout {
    ring_version,
    partition_count,
    virtual_nodes_per_partition,
    placement_version,
    replicas_per_group,
    zones,
    placement,
});
encode_struct!(NodeRecord {
    node_id,
    address,
    availability_zone,
    capacity_bytes,
    used_bytes,
    status,
    registered_at_ms,
    last_heartbeat_ms,
    record_version,
});
encode_struct!(GarbageRecord {
    garbage_id,
    reason,
    bucket,
    key,
    version_id,
    upload_id,
    ec_scheme,
    parts,
    created_at_ms,
});

encode_struct!(KmsKeyVersion {
    version,
    created_at_ms,
    wrapped_material
});
encode_struct!(KmsKeyRecord {
    key_id,
    alias,
    description,
    state,
    created_at_ms,
    versions,
    record_version,
});

impl Record for ObjectRecord {
    const KIND: RecordKind = RecordKind::Object;
}
impl Record for BucketRecord {
    const KIND: RecordKind = RecordKind::Bucket;
}
impl Record for MultipartUpload {
    const KIND: RecordKind = RecordKind::MultipartUpload;
}
impl Record for AccessKeyRecord {
    const KIND: RecordKind = RecordKind::AccessKey;
}
impl Record for NodeRecord {
    const KIND: RecordKind = RecordKind::Node;
}
impl Record for SuspectRecord {
    const KIND: RecordKind = RecordKind::Suspect;
}
impl Record for KmsKeyRecord {
    const KIND: RecordKind = RecordKind::KmsKey;
}
impl Record for ReplicationEntry {
    const KIND: RecordKind = RecordKind::ReplicationEntry;
}
impl Record for GarbageRecord {
    const KIND: RecordKind = RecordKind::Garbage;
}

// ----- commands -----------------------------------------------------------------------------

encode_struct!(PrepareWrite {
    bucket,
    key,
    idempotency_token,
    size_bytes,
    content_type,
    owner,
    user_metadata,
    storage_class,
    acl,
    ec_scheme,
    piece_size_bytes,
    versioning,
    now_ms,
} since 2 { attributes });
encode_struct!(CommitWrite {
    bucket,
    key,
    version_id,
    idempotency_token,
    checksums,
    parts,
    now_ms,
});
encode_struct!(AbortWrite {
    bucket,
    key,
    version_id,
    now_ms
});
encode_struct!(DeleteObject {
    bucket,
    key,
    version,
    versioning,
    owner,
    now_ms
});
encode_struct!(UpdateShardMap {
    bucket,
    key,
    version_id,
    expected_record_version,
    parts,
    now_ms,
});
encode_struct!(CreateMultipartUpload {
    bucket,
    key,
    owner,
    content_type,
    user_metadata,
    storage_class,
    acl,
    ec_scheme,
    piece_size_bytes,
    now_ms,
} since 2 { attributes });
encode_struct!(UploadPart {
    bucket,
    key,
    upload_id,
    part_number,
    size_bytes,
    etag,
    checksum,
    blocks,
    now_ms,
});
encode_struct!(CompletedPart { part_number, etag });
encode_struct!(CompleteMultipartUpload {
    bucket,
    key,
    upload_id,
    parts,
    checksums,
    versioning,
    now_ms,
});
encode_struct!(AbortMultipartUpload {
    bucket,
    key,
    upload_id,
    now_ms
});
encode_struct!(CreateBucket {
    bucket,
    owner,
    primary_region,
    ec_scheme,
    acl,
    now_ms
} since 2 { attributes });
encode_struct!(CreateAccessKey {
    access_key_id,
    secret_access_key,
    owner,
    now_ms
});
encode_struct!(ResealAccessKey {
    access_key_id,
    record_version,
    secret_access_key
});
encode_struct!(RegisterNode {
    node_id,
    address,
    availability_zone,
    capacity_bytes,
    now_ms
});
encode_struct!(ListObjectsRequest {
    bucket,
    prefix,
    delimiter,
    start_after,
    continuation_token,
    max_keys,
});
encode_struct!(ListVersionsRequest {
    bucket,
    prefix,
    delimiter,
    key_marker,
    version_id_marker,
    max_keys,
});
encode_struct!(ListUploadsRequest {
    bucket,
    prefix,
    key_marker,
    upload_id_marker,
    max_uploads,
});
encode_struct!(ListPartsRequest {
    bucket,
    key,
    upload_id,
    part_number_marker,
    max_parts,
});

encode_struct!(CreateKmsKey {
    key_id,
    alias,
    description,
    wrapped_material,
    now_ms
});

/// Key service command sub-tags (never reused): 0 Create, 1 Rotate, 2 SetState,
/// 3 RewrapMaterial.
impl Encode for KmsCommand {
    fn encode(&self, writer: &mut Writer) {
        match self {
            KmsCommand::Create(command) => {
                writer.u8(0);
                command.encode(writer);
            }
            KmsCommand::Rotate {
                key_id,
                version,
                wrapped_material,
                now_ms,
            } => {
                writer.u8(1);
                writer.str(key_id);
                writer.u32(*version);
                wrapped_material.encode(writer);
                writer.u64(*now_ms);
            }
            KmsCommand::SetState {
                key_id,
                state,
                now_ms,
            } => {
                writer.u8(2);
                writer.str(key_id);
                state.encode(writer);
                writer.u64(*now_ms);
            }
            KmsCommand::RewrapMaterial {
                key_id,
                version,
                record_version,
                wrapped_material,
            } => {
                writer.u8(3);
                writer.str(key_id);
                writer.u32(*version);
                writer.u64(*record_version);
                wrapped_material.encode(writer);
            }
        }
    }
}

impl Decode for KmsCommand {
    fn decode(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(match reader.tag("KMS command", 4)? {
            0 => KmsCommand::Create(Decode::decode(reader)?),
            1 => KmsCommand::Rotate {
                key_id: reader.string()?,
                version: reader.u32()?,
                wrapped_material: Decode::decode(reader)?,
                now_ms: reader.u64()?,
            },
            2 => KmsCommand::SetState {
                key_id: reader.string()?,
                state: Decode::decode(reader)?,
                now_ms: reader.u64()?,
            },
            _ => KmsCommand::RewrapMaterial {
                key_id: reader.string()?,
                version: reader.u32()?,
                record_version: reader.u64()?,
                wrapped_material: Decode::decode(reader)?,
            },
        })
    }
}

/// Key service query sub-tags (never reused): 0 Get, 1 List.
impl Encode for KmsQuery {
    fn encode(&self, writer: &mut Writer) {
        match self {
            KmsQuery::Get { key } => {
                writer.u8(0);
                writer.str(key);
            }
            KmsQuery::List => writer.u8(1),
        }
    }
}

impl Decode for KmsQuery {
    fn decode(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(match reader.tag("KMS query", 2)? {
            0 => KmsQuery::Get {
                key: reader.string()?,
            },
            _ => KmsQuery::List,
        })
    }
}

/// Command tags (never reused): 0 PrepareWrite, 1 CommitWrite, 2 AbortWrite, 3 DeleteObject,
/// 4 UpdateShardMap, 5 CreateMultipartUpload, 6 UploadPart, 7 CompleteMultipartUpload,
/// 8 AbortMultipartUpload, 9 PurgeGarbage, 10 CreateBucket, 11 DeleteBucket,
/// 12 PutBucketVersioning, 13 PutBucketReplication, 14 PutBucketEcScheme, 15 CreateAccessKey,
/// 16 RevokeAccessKey, 17 RegisterNode, 18 Heartbeat, 19 ExpireNodes, 20 Read, 21 SealBucket,
/// 22 UnsealBucket, 23 RecordLayout, 24 Conditional, 25 PutBucketAttribute,
/// 26 PutObjectAttribute, 27 SetVersionTag, 40 BypassGovernanceRetention, 41 Kms,
/// 45 RewrapObjectEncryption, 46 ResealAccessKey, 47 RewrapUploadEncryption, 50 ReportSuspect, 51 ResolveSuspects,
/// 60 QueueReplication, 61 ResolveReplication, 62 QueueReplication with the request's `now_ms`
/// (of a PutObjectAttribute, which carries none), 63 ReplicaDeleteMarker, 70 Batch.
/// Tags are reserved in ranges per line of work (30–39, 40–49, 50–59, 60–69), so the decoder
/// matches each tag explicitly and refuses the unknown ones.
impl Encode for Command {
    fn encode(&self, writer: &mut Writer) {
        match self {
            Command::PrepareWrite(command) => {
                writer.u8(0);
                command.encode(writer);
            }
            Command::CommitWrite(command) => {
                writer.u8(1);
                command.encode(writer);
            }
            Command::AbortWrite(command) => {
                writer.u8(2);
                command.encode(writer);
            }
            Command::DeleteObject(command) => {
                writer.u8(3);
                command.encode(writer);
            }
            Command::UpdateShardMap(command) => {
                writer.u8(4);
                command.encode(writer);
            }
            Command::CreateMultipartUpload(command) => {
                writer.u8(5);
                command.encode(writer);
            }
            Command::UploadPart(command) => {
                writer.u8(6);
                command.encode(writer);
            }
            Command::CompleteMultipartUpload(command) => {
                writer.u8(7);
                command.encode(writer);
            }
            Command::AbortMultipartUpload(command) => {
                writer.u8(8);
                command.encode(writer);
            }
            Command::PurgeGarbage { garbage_ids } => {
                writer.u8(9);
                garbage_ids.encode(writer);
            }
            Command::CreateBucket(command) => {
                writer.u8(10);
                command.encode(writer);
            }
            Command::DeleteBucket { bucket } => {
                writer.u8(11);
                writer.str(bucket);
            }
            Command::PutBucketVersioning { bucket, versioning } => {
                writer.u8(12);
                writer.str(bucket);
                versioning.encode(writer);
            }
            Command::PutBucketReplication { bucket, rules } => {
                writer.u8(13);
                writer.str(bucket);
                rules.encode(writer);
            }
            Command::PutBucketEcScheme { bucket, ec_scheme } => {
                writer.u8(14);
                writer.str(bucket);
                writer.str(ec_scheme);
            }
            Command::CreateAccessKey(command) => {
                writer.u8(15);
                command.encode(writer);
            }
            Command::RevokeAccessKey {
                access_key_id,
                now_ms,
            } => {
                writer.u8(16);
                writer.str(access_key_id);
                writer.u64(*now_ms);
            }
            Command::RegisterNode(command) => {
                writer.u8(17);
                command.encode(writer);
            }
            Command::Heartbeat {
                node_id,
                used_bytes,
                now_ms,
            } => {
                writer.u8(18);
                node_id.encode(writer);
                writer.u64(*used_bytes);
                writer.u64(*now_ms);
            }
            Command::ExpireNodes { now_ms, timeout_ms } => {
                writer.u8(19);
                writer.u64(*now_ms);
                writer.u64(*timeout_ms);
            }
            Command::Read(query) => {
                writer.u8(20);
                query.encode(writer);
            }
            Command::SealBucket { bucket } => {
                writer.u8(21);
                writer.str(bucket);
            }
            Command::UnsealBucket { bucket } => {
                writer.u8(22);
                writer.str(bucket);
            }
            Command::SetVersionTag { tag } => {
                writer.u8(27);
                writer.u8(*tag);
            }
            Command::RecordLayout(layout) => {
                writer.u8(23);
                layout.encode(writer);
            }
            Command::Conditional {
                condition,
                observed,
                command,
            } => {
                writer.u8(24);
                condition.encode(writer);
                observed.encode(writer);
                command.encode(writer);
            }
            Command::BypassGovernanceRetention { command } => {
                writer.u8(40);
                command.encode(writer);
            }
            Command::Kms(command) => {
                writer.u8(41);
                command.encode(writer);
            }
            Command::PutBucketAttribute {
                bucket,
                name,
                value,
            } => {
                writer.u8(25);
                writer.str(bucket);
                writer.str(name);
                value.encode(writer);
            }
            Command::PutObjectAttribute {
                bucket,
                key,
                version,
                name,
                value,
            } => {
                writer.u8(26);
                writer.str(bucket);
                writer.str(key);
                version.encode(writer);
                writer.str(name);
                value.encode(writer);
            }
            Command::ReportSuspect {
                bucket,
                key,
                version_id,
                now_ms,
            } => {
                writer.u8(50);
                writer.str(bucket);
                writer.str(key);
                version_id.encode(writer);
                writer.u64(*now_ms);
            }
            Command::ResolveSuspects { resolutions } => {
                writer.u8(51);
                resolutions.encode(writer);
            }
            Command::RewrapObjectEncryption {
                bucket,
                key,
                version_id,
                record_version,
                envelope,
            } => {
                writer.u8(45);
                writer.str(bucket);
                writer.str(key);
                version_id.encode(writer);
                writer.u64(*record_version);
                envelope.encode(writer);
            }
            Command::ResealAccessKey(command) => {
                writer.u8(46);
                command.encode(writer);
            }
            Command::RewrapUploadEncryption {
                bucket,
                key,
                upload_id,
                record_version,
                envelope,
            } => {
                writer.u8(47);
                writer.str(bucket);
                writer.str(key);
                upload_id.encode(writer);
                writer.u64(*record_version);
                envelope.encode(writer);
            }
            // 60-69: cross-region replication.
            Command::QueueReplication {
                now_ms: None,
                command,
            } => {
                writer.u8(60);
                command.encode(writer);
            }
            Command::QueueReplication {
                now_ms: Some(now_ms),
                command,
            } => {
                writer.u8(62);
                writer.u64(*now_ms);
                command.encode(writer);
            }
            Command::ResolveReplication { resolutions } => {
                writer.u8(61);
                resolutions.encode(writer);
            }
            Command::ReplicaDeleteMarker { delete, attributes } => {
                writer.u8(63);
                delete.encode(writer);
                attributes.encode(writer);
            }
            // 70-79: group commit.
            Command::Batch(commands) => {
                writer.u8(70);
                commands.encode(writer);
            }
        }
    }
}

impl Decode for Command {
    fn decode(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let offset = reader.offset();
        Ok(match reader.u8()? {
            0 => Command::PrepareWrite(Decode::decode(reader)?),
            1 => Command::CommitWrite(Decode::decode(reader)?),
            2 => Command::AbortWrite(Decode::decode(reader)?),
            3 => Command::DeleteObject(Decode::decode(reader)?),
            4 => Command::UpdateShardMap(Decode::decode(reader)?),
            5 => Command::CreateMultipartUpload(Decode::decode(reader)?),
            6 => Command::UploadPart(Decode::decode(reader)?),
            7 => Command::CompleteMultipartUpload(Decode::decode(reader)?),
            8 => Command::AbortMultipartUpload(Decode::decode(reader)?),
            9 => Command::PurgeGarbage {
                garbage_ids: Decode::decode(reader)?,
            },
            10 => Command::CreateBucket(Decode::decode(reader)?),
            11 => Command::DeleteBucket {
                bucket: reader.string()?,
            },
            12 => Command::PutBucketVersioning {
                bucket: reader.string()?,
                versioning: Decode::decode(reader)?,
            },
            13 => Command::PutBucketReplication {
                bucket: reader.string()?,
                rules: Decode::decode(reader)?,
            },
            14 => Command::PutBucketEcScheme {
                bucket: reader.string()?,
                ec_scheme: reader.string()?,
            },
            15 => Command::CreateAccessKey(Decode::decode(reader)?),
            16 => Command::RevokeAccessKey {
                access_key_id: reader.string()?,
                now_ms: reader.u64()?,
            },
            17 => Command::RegisterNode(Decode::decode(reader)?),
            18 => Command::Heartbeat {
                node_id: Decode::decode(reader)?,
                used_bytes: reader.u64()?,
                now_ms: reader.u64()?,
            },
            19 => Command::ExpireNodes {
                now_ms: reader.u64()?,
                timeout_ms: reader.u64()?,
            },
            20 => Command::Read(Decode::decode(reader)?),
            21 => Command::SealBucket {
                bucket: reader.string()?,
            },
            22 => Command::UnsealBucket {
                bucket: reader.string()?,
            },
            23 => Command::RecordLayout(Decode::decode(reader)?),
            27 => Command::SetVersionTag { tag: reader.u8()? },
            24 => Command::Conditional {
                condition: Decode::decode(reader)?,
                observed: Decode::decode(reader)?,
                command: Box::new(Decode::decode(reader)?),
            },
            25 => Command::PutBucketAttribute {
                bucket: reader.string()?,
                name: reader.string()?,
                value: Decode::decode(reader)?,
            },
            40 => Command::BypassGovernanceRetention {
                command: Box::new(Decode::decode(reader)?),
            },
            41 => Command::Kms(Decode::decode(reader)?),
            45 => Command::RewrapObjectEncryption {
                bucket: reader.string()?,
                key: reader.string()?,
                version_id: Decode::decode(reader)?,
                record_version: reader.u64()?,
                envelope: Decode::decode(reader)?,
            },
            46 => Command::ResealAccessKey(Decode::decode(reader)?),
            47 => Command::RewrapUploadEncryption {
                bucket: reader.string()?,
                key: reader.string()?,
                upload_id: Decode::decode(reader)?,
                record_version: reader.u64()?,
                envelope: Decode::decode(reader)?,
            },
            26 => Command::PutObjectAttribute {
                bucket: reader.string()?,
                key: reader.string()?,
                version: Decode::decode(reader)?,
                name: reader.string()?,
                value: Decode::decode(reader)?,
            },
            50 => Command::ReportSuspect {
                bucket: reader.string()?,
                key: reader.string()?,
                version_id: Decode::decode(reader)?,
                now_ms: reader.u64()?,
            },
            51 => Command::ResolveSuspects {
                resolutions: Decode::decode(reader)?,
            },
            60 => Command::QueueReplication {
                now_ms: None,
                command: Box::new(Decode::decode(reader)?),
            },
            62 => Command::QueueReplication {
                now_ms: Some(reader.u64()?),
                command: Box::new(Decode::decode(reader)?),
            },
            61 => Command::ResolveReplication {
                resolutions: Decode::decode(reader)?,
            },
            63 => Command::ReplicaDeleteMarker {
                delete: Decode::decode(reader)?,
                attributes: Decode::decode(reader)?,
            },
            70 => {
                let count = reader.count()?;
                let mut commands = Vec::with_capacity(count);
                for _ in 0..count {
                    // A batch never holds a batch (the state machine refuses one): refusing it
                    // here too keeps the decoder's recursion depth bounded by the other wrappers.
                    let offset = reader.offset();
                    if reader.remaining() > 0 && reader.input[offset] == 70 {
                        return Err(DecodeError::InvalidTag {
                            what: "command inside a batch",
                            tag: 70,
                            offset,
                        });
                    }
                    commands.push(Command::decode(reader)?);
                }
                Command::Batch(commands)
            }
            tag => {
                return Err(DecodeError::InvalidTag {
                    what: "command",
                    tag,
                    offset,
                });
            }
        })
    }
}

/// Query tags (never reused): 0 GetObject, 1 ListObjects, 2 GetUpload, 3 ListUploads,
/// 4 ListParts, 5 ListStalePreparing, 6 ListGarbage, 7 BucketUsage, 8 GetBucket, 9 ListBuckets,
/// 10 GetAccessKey, 11 GetNode, 12 ListNodes, 13 ListVersions, 14 GetLayout, 40 Kms,
/// 50 ListSuspects, 60 BucketStats, 61 ListReplicationQueue (ranges reserved per line of work as
/// for commands; unknown tags are refused).
impl Encode for Query {
    fn encode(&self, writer: &mut Writer) {
        match self {
            Query::GetObject {
                bucket,
                key,
                version,
            } => {
                writer.u8(0);
                writer.str(bucket);
                writer.str(key);
                version.encode(writer);
            }
            Query::ListObjects(request) => {
                writer.u8(1);
                request.encode(writer);
            }
            Query::GetUpload {
                bucket,
                key,
                upload_id,
            } => {
                writer.u8(2);
                writer.str(bucket);
                writer.str(key);
                upload_id.encode(writer);
            }
            Query::ListUploads(request) => {
                writer.u8(3);
                request.encode(writer);
            }
            Query::ListParts(request) => {
                writer.u8(4);
                request.encode(writer);
            }
            Query::ListStalePreparing {
                created_before_ms,
                limit,
            } => {
                writer.u8(5);
                writer.u64(*created_before_ms);
                writer.u32(*limit);
            }
            Query::ListGarbage { after, limit } => {
                writer.u8(6);
                after.encode(writer);
                writer.u32(*limit);
            }
            Query::BucketUsage { bucket } => {
                writer.u8(7);
                writer.str(bucket);
            }
            Query::GetBucket { bucket } => {
                writer.u8(8);
                writer.str(bucket);
            }
            Query::ListBuckets { owner } => {
                writer.u8(9);
                owner.encode(writer);
            }
            Query::GetAccessKey { access_key_id } => {
                writer.u8(10);
                writer.str(access_key_id);
            }
            Query::GetNode { node_id } => {
                writer.u8(11);
                node_id.encode(writer);
            }
            Query::ListNodes => writer.u8(12),
            Query::ListVersions(request) => {
                writer.u8(13);
                request.encode(writer);
            }
            Query::GetLayout => writer.u8(14),
            // Tags 30–39 are the S3 API breadth range (issue 6).
            Query::ListAccessKeys { owner } => {
                writer.u8(30);
                owner.encode(writer);
            }
            Query::Kms(query) => {
                writer.u8(40);
                query.encode(writer);
            }
            Query::ListSuspects { after, limit } => {
                writer.u8(50);
                after.encode(writer);
                writer.u32(*limit);
            }
            Query::BucketStats { bucket } => {
                writer.u8(60);
                writer.str(bucket);
            }
            Query::ListReplicationQueue { after_seq, limit } => {
                writer.u8(61);
                after_seq.encode(writer);
                writer.u32(*limit);
            }
        }
    }
}

impl Decode for Query {
    fn decode(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let offset = reader.offset();
        Ok(match reader.u8()? {
            0 => Query::GetObject {
                bucket: reader.string()?,
                key: reader.string()?,
                version: Decode::decode(reader)?,
            },
            1 => Query::ListObjects(Decode::decode(reader)?),
            2 => Query::GetUpload {
                bucket: reader.string()?,
                key: reader.string()?,
                upload_id: Decode::decode(reader)?,
            },
            3 => Query::ListUploads(Decode::decode(reader)?),
            4 => Query::ListParts(Decode::decode(reader)?),
            5 => Query::ListStalePreparing {
                created_before_ms: reader.u64()?,
                limit: reader.u32()?,
            },
            6 => Query::ListGarbage {
                after: Decode::decode(reader)?,
                limit: reader.u32()?,
            },
            7 => Query::BucketUsage {
                bucket: reader.string()?,
            },
            8 => Query::GetBucket {
                bucket: reader.string()?,
            },
            9 => Query::ListBuckets {
                owner: Decode::decode(reader)?,
            },
            10 => Query::GetAccessKey {
                access_key_id: reader.string()?,
            },
            11 => Query::GetNode {
                node_id: Decode::decode(reader)?,
            },
            12 => Query::ListNodes,
            13 => Query::ListVersions(Decode::decode(reader)?),
            14 => Query::GetLayout,
            30 => Query::ListAccessKeys {
                owner: Decode::decode(reader)?,
            },
            40 => Query::Kms(Decode::decode(reader)?),
            50 => Query::ListSuspects {
                after: Decode::decode(reader)?,
                limit: reader.u32()?,
            },
            60 => Query::BucketStats {
                bucket: reader.string()?,
            },
            61 => Query::ListReplicationQueue {
                after_seq: Decode::decode(reader)?,
                limit: reader.u32()?,
            },
            tag => {
                return Err(DecodeError::InvalidTag {
                    what: "query",
                    tag,
                    offset,
                });
            }
        })
    }
}

impl Record for Command {
    const KIND: RecordKind = RecordKind::Command;
}

// ----- outputs ------------------------------------------------------------------------------

/// Enums whose variants carry fields: a tag byte (listed explicitly, never reused) and then the
/// fields in the listed order. Tuple variants name their field `0`.
macro_rules! encode_variants {
    ($type:ident, $what:literal, [$($tag:literal => $variant:ident { $($field:tt : $binding:ident),* }),* $(,)?]) => {
        impl Encode for $type {
            fn encode(&self, writer: &mut Writer) {
                match self {
                    $($type::$variant { $($field: $binding),* } => {
                        writer.u8($tag);
                        $($binding.encode(writer);)*
                    })*
                }
            }
        }
        impl Decode for $type {
            fn decode(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
                let offset = reader.offset();
                let tag = reader.u8()?;
                match tag {
                    $($tag => Ok($type::$variant { $($field: Decode::decode(reader)?),* }),)*
                    _ => Err(DecodeError::InvalidTag { what: $what, tag, offset }),
                }
            }
        }
    };
}

impl<T: Encode, E: Encode> Encode for Result<T, E> {
    fn encode(&self, writer: &mut Writer) {
        match self {
            Ok(value) => {
                writer.u8(0);
                value.encode(writer);
            }
            Err(error) => {
                writer.u8(1);
                error.encode(writer);
            }
        }
    }
}

impl<T: Decode, E: Decode> Decode for Result<T, E> {
    fn decode(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(match reader.tag("result", 2)? {
            0 => Ok(T::decode(reader)?),
            _ => Err(E::decode(reader)?),
        })
    }
}

encode_struct!(ObjectSummary {
    key,
    version_id,
    null_version,
    size_bytes,
    etag,
    last_modified_ms,
    storage_class,
    owner,
});
encode_struct!(ListObjectsPage {
    contents,
    common_prefixes,
    is_truncated,
    next_continuation_token,
    key_count,
});
encode_struct!(VersionSummary {
    key,
    version_id,
    null_version,
    delete_marker,
    is_latest,
    size_bytes,
    etag,
    last_modified_ms,
    storage_class,
    owner,
});
encode_struct!(ListVersionsPage {
    versions,
    common_prefixes,
    is_truncated,
    next_key_marker,
    next_version_id_marker,
});
encode_struct!(UploadSummary {
    key,
    upload_id,
    owner,
    storage_class,
    initiated_at_ms,
});
encode_struct!(ListUploadsPage {
    uploads,
    is_truncated,
    next_key_marker,
    next_upload_id_marker,
});
encode_struct!(BucketStats {
    object_count,
    object_bytes,
    delete_marker_count,
    preparing_count,
    preparing_bytes,
    upload_count,
    part_count,
    part_bytes,
});
encode_struct!(ListPartsPage {
    parts,
    is_truncated,
    next_part_number_marker,
});

encode_variants!(Response, "response", [
    0 => Prepared { record: record, retried: retried },
    1 => Committed { record: record, retried: retried },
    2 => Aborted { record: record },
    3 => Deleted { removed: removed, delete_marker: delete_marker },
    4 => Object { 0: record },
    5 => Objects { 0: records },
    6 => ObjectList { 0: page },
    7 => VersionList { 0: page },
    8 => Upload { 0: upload },
    9 => Part { 0: part },
    10 => UploadList { 0: page },
    11 => PartList { 0: page },
    12 => UploadAborted { 0: upload },
    13 => Garbage { 0: entries },
    14 => Purged { purged_count: purged_count },
    15 => BucketUsage { has_versions: has_versions, has_uploads: has_uploads },
    16 => Bucket { 0: bucket },
    17 => Buckets { 0: buckets },
    18 => BucketDeleted { 0: bucket },
    19 => AccessKey { 0: key },
    20 => Node { 0: node },
    21 => Nodes { 0: nodes },
    22 => Heartbeat { node: node, came_up: came_up },
    23 => NodesExpired { 0: node_ids },
    24 => Layout { 0: layout },
    25 => VersionTag { 0: tag },
    30 => AccessKeys { 0: keys },
    // 40-49: the key service.
    40 => KmsKey { 0: key },
    41 => KmsKeys { 0: keys },
    // 50-59: the suspect queue.
    50 => SuspectReported { queued: queued },
    51 => SuspectsResolved { resolved_count: resolved_count },
    52 => Suspects { 0: entries },
    // 60-69: bucket usage and quotas.
    60 => BucketStats { 0: stats },
    61 => ReplicationResolved { resolved_count: resolved_count },
    62 => ReplicationQueue { 0: entries },
    // 70-79: group commit.
    70 => Batch { 0: outputs },
]);

encode_struct!(ReplicationEntry {
    seq,
    bucket,
    key,
    version_id,
    kind,
    enqueued_at_ms
});
encode_struct!(ReplicationResolution { seq, outcome });

/// Replication event kinds: 0 Put, 1 DeleteMarker, 2 MetadataChange.
impl Encode for ReplicationEventKind {
    fn encode(&self, writer: &mut Writer) {
        writer.u8(match self {
            ReplicationEventKind::Put => 0,
            ReplicationEventKind::DeleteMarker => 1,
            ReplicationEventKind::MetadataChange => 2,
        });
    }
}

impl Decode for ReplicationEventKind {
    fn decode(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(match reader.tag("replication event kind", 3)? {
            0 => ReplicationEventKind::Put,
            1 => ReplicationEventKind::DeleteMarker,
            _ => ReplicationEventKind::MetadataChange,
        })
    }
}

/// Replication outcomes: 0 Completed, 1 Failed.
impl Encode for ReplicationOutcome {
    fn encode(&self, writer: &mut Writer) {
        writer.u8(match self {
            ReplicationOutcome::Completed => 0,
            ReplicationOutcome::Failed => 1,
        });
    }
}

impl Decode for ReplicationOutcome {
    fn decode(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(match reader.tag("replication outcome", 2)? {
            0 => ReplicationOutcome::Completed,
            _ => ReplicationOutcome::Failed,
        })
    }
}

encode_variants!(MetaError, "error", [
    0 => NoSuchBucket { bucket: bucket },
    1 => NoSuchKey { bucket: bucket, key: key, delete_marker: delete_marker },
    2 => NoSuchVersion { bucket: bucket, key: key, version: version },
    3 => MethodNotAllowedOnDeleteMarker { version_id: version_id },
    4 => NoSuchUpload { bucket: bucket, key: key, upload_id: upload_id },
    5 => InvalidPart { part_number: part_number, reason: reason },
    6 => InvalidPartOrder { part_number: part_number },
    7 => InvalidPartNumber { part_number: part_number },
    8 => EntityTooSmall { part_number: part_number, size_bytes: size_bytes, minimum_bytes: minimum_bytes },
    9 => BucketNotEmpty { bucket: bucket },
    10 => BucketAlreadyExists { bucket: bucket },
    11 => BucketAlreadyOwnedByYou { bucket: bucket },
    12 => InvalidBucketName { bucket: bucket, reason: reason },
    13 => IllegalVersioningConfiguration { bucket: bucket },
    14 => NoSuchWrite { bucket: bucket, key: key, version_id: version_id },
    15 => WriteAlreadyCommitted { version_id: version_id },
    16 => TokenMismatch { version_id: version_id },
    17 => IdempotencyTokenReused { token: token },
    18 => InvalidEcScheme { scheme: scheme, reason: reason },
    19 => InvalidShardMap { reason: reason },
    20 => RecordVersionMismatch { expected: expected, actual: actual },
    21 => InvalidContinuationToken {},
    22 => InvalidArgument { reason: reason },
    23 => AccessKeyAlreadyExists { access_key_id: access_key_id },
    24 => NoSuchAccessKey { access_key_id: access_key_id },
    25 => NoSuchNode { node_id: node_id },
    26 => WrongRole { command: command, role: role },
    27 => StaleLogIndex { log_index: log_index, last_applied_index: last_applied_index },
    28 => PreconditionFailed { bucket: bucket, key: key },
    29 => ConditionalRequestConflict { bucket: bucket, key: key },
    40 => ObjectLocked { bucket: bucket, key: key, version_id: version_id, reason: reason },
    41 => ObjectLockConflict { bucket: bucket, reason: reason },
    42 => NoSuchKmsKey { key: key },
    43 => KmsKeyDisabled { key_id: key_id },
    44 => KmsKeyAlreadyExists { key: key },
    60 => ReplicationBacklog { entries: entries },
    61 => MetadataDiskFull { free_bytes: free_bytes },
]);

/// Write condition tags: 0 Absent, 1 EtagMatches.
impl Encode for WriteCondition {
    fn encode(&self, writer: &mut Writer) {
        match self {
            WriteCondition::Absent => writer.u8(0),
            WriteCondition::EtagMatches(etag) => {
                writer.u8(1);
                writer.str(etag);
            }
        }
    }
}

impl Decode for WriteCondition {
    fn decode(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(match reader.tag("write condition", 2)? {
            0 => WriteCondition::Absent,
            _ => WriteCondition::EtagMatches(reader.string()?),
        })
    }
}

encode_struct!(Output {
    result,
    new_garbage
});

impl Record for Output {
    const KIND: RecordKind = RecordKind::Output;
}

// ----- snapshot -----------------------------------------------------------------------------

/// Reads the role a whole state (snapshot or stored header) starts with, refusing a partition
/// index outside its partition count.
pub(crate) fn decode_state_role(reader: &mut Reader<'_>) -> Result<Role, DecodeError> {
    let role = Role::decode(reader)?;
    if let Role::ObjectPartition {
        partition_index,
        partition_count,
    } = role
        && partition_index >= partition_count
    {
        return Err(DecodeError::Inconsistent {
            reason: format!("partition {partition_index} of {partition_count}"),
        });
    }
    Ok(role)
}

/// Encodes a sequence of records that must be stored in strictly ascending `key` order.
fn encode_sorted<'a, T: Encode + 'a>(
    writer: &mut Writer,
    records: impl ExactSizeIterator<Item = &'a T>,
) {
    writer.count(records.len());
    for record in records {
        record.encode(writer);
    }
}

/// Decodes a sequence written by [`encode_sorted`] into a key space, refusing unsorted or
/// repeated keys.
fn decode_sorted<T: StoredRecord>(
    reader: &mut Reader<'_>,
    what: &'static str,
) -> Result<TrackedMap<T::Key, T>, DecodeError> {
    let count = reader.count()?;
    let mut entries: Vec<(T::Key, T)> = Vec::with_capacity(count);
    for _ in 0..count {
        let offset = reader.offset();
        let record = T::decode(reader)?;
        let key = record.key();
        if entries.last().is_some_and(|(last, _)| *last >= key) {
            return Err(DecodeError::NotCanonical { what, offset });
        }
        entries.push((key, record));
    }
    // Sorted input: the map is bulk-built instead of inserted into one entry at a time.
    Ok(TrackedMap::from(
        entries.into_iter().collect::<BTreeMap<T::Key, T>>(),
    ))
}

impl StateMachine {
    /// Serialises the whole state: header, role, last applied index, then each key space in key
    /// order (the derived indexes are left out and rebuilt on load), then a CRC32C.
    pub fn to_snapshot_bytes(&self) -> Vec<u8> {
        let mut writer = Writer::new();
        writer.u8(FORMAT_VERSION);
        writer.u8(RecordKind::Snapshot as u8);
        self.role.encode(&mut writer);
        writer.u64(self.last_applied_index);
        encode_sorted(&mut writer, self.buckets.values());
        encode_sorted(&mut writer, self.versions.values());
        encode_sorted(&mut writer, self.uploads.values());
        encode_sorted(&mut writer, self.garbage.values());
        encode_sorted(&mut writer, self.access_keys.values());
        encode_sorted(&mut writer, self.nodes.values());
        self.sealed_buckets.encode(&mut writer);
        // Only a partition map has a layout, and older snapshots have no partition-map role, so
        // appending it for that role alone leaves every other snapshot's bytes unchanged.
        if self.role == Role::PartitionMap {
            self.layout.encode(&mut writer);
        }
        // Later additions are optional trailing sections, in this order: the suspect queue, the
        // KMS keys, the replication queue, the last id index (a u64, "empty" when it equals the
        // last applied index, as it does until a batch is applied), the version tag (a u8,
        // "empty" when 0: see `Command::SetVersionTag`). Sections are written up to
        // the last non-empty one (earlier ones even when empty, so the decoder knows which is
        // which), so a snapshot without them keeps its earlier bytes and an earlier snapshot
        // still decodes.
        let sections = if self.version_tag != 0 {
            5
        } else if self.last_id_index != self.last_applied_index {
            4
        } else if !self.replication_queue.is_empty() {
            3
        } else if !self.kms_keys.is_empty() {
            2
        } else {
            usize::from(!self.suspects.is_empty())
        };
        if sections >= 1 {
            encode_sorted(&mut writer, self.suspects.values());
        }
        if sections >= 2 {
            encode_sorted(&mut writer, self.kms_keys.values());
        }
        if sections >= 3 {
            encode_sorted(&mut writer, self.replication_queue.values());
        }
        if sections >= 4 {
            writer.u64(self.last_id_index);
        }
        if sections >= 5 {
            writer.u8(self.version_tag);
        }
        let mut bytes = writer.into_bytes();
        let checksum = crc32c::crc32c(&bytes);
        bytes.extend_from_slice(&checksum.to_le_bytes());
        bytes
    }

    /// Restores a state from [`StateMachine::to_snapshot_bytes`], checking the checksum, the
    /// canonical order of every key space and the record invariants.
    pub fn from_snapshot_bytes(bytes: &[u8]) -> Result<StateMachine, DecodeError> {
        let Some(body_length) = bytes.len().checked_sub(4) else {
            return Err(DecodeError::UnexpectedEnd {
                offset: bytes.len(),
                needed: 4 - bytes.len(),
            });
        };
        let (body, stored) = bytes.split_at(body_length);
        let stored = u32::from_le_bytes(stored.try_into().expect("four bytes"));
        let computed = crc32c::crc32c(body);
        if stored != computed {
            return Err(DecodeError::ChecksumMismatch { stored, computed });
        }
        let mut reader = Reader::new(body);
        read_header(&mut reader, RecordKind::Snapshot)?;
        let role = decode_state_role(&mut reader)?;
        let mut state = StateMachine::new(role);
        state.last_applied_index = reader.u64()?;
        state.buckets = decode_sorted::<BucketRecord>(&mut reader, "bucket")?;
        state.versions = decode_sorted::<ObjectRecord>(&mut reader, "object version")?;
        state.uploads = decode_sorted::<MultipartUpload>(&mut reader, "upload")?;
        state.garbage = decode_sorted::<GarbageRecord>(&mut reader, "garbage")?;
        state.access_keys = decode_sorted::<AccessKeyRecord>(&mut reader, "access key")?;
        state.nodes = decode_sorted::<NodeRecord>(&mut reader, "node")?;
        state.sealed_buckets = Decode::decode(&mut reader)?;
        if role == Role::PartitionMap {
            state.layout = Decode::decode(&mut reader)?;
        }
        // The optional trailing sections (see the encoder); the last one present is not empty.
        let mut last_section = None;
        if reader.remaining() > 0 {
            let offset = reader.offset();
            state.suspects = decode_sorted::<SuspectRecord>(&mut reader, "suspect")?;
            last_section = Some(("suspect section", offset, state.suspects.is_empty()));
        }
        if reader.remaining() > 0 {
            let offset = reader.offset();
            state.kms_keys = decode_sorted::<KmsKeyRecord>(&mut reader, "KMS key")?;
            last_section = Some(("KMS key section", offset, state.kms_keys.is_empty()));
        }
        if reader.remaining() > 0 {
            let offset = reader.offset();
            state.replication_queue =
                decode_sorted::<ReplicationEntry>(&mut reader, "replication entry")?;
            last_section = Some((
                "replication section",
                offset,
                state.replication_queue.is_empty(),
            ));
        }
        state.last_id_index = state.last_applied_index;
        if reader.remaining() > 0 {
            let offset = reader.offset();
            state.last_id_index = reader.u64()?;
            // Written only when above the last applied index (it is never below).
            last_section = Some((
                "last id index",
                offset,
                state.last_id_index <= state.last_applied_index,
            ));
        }
        if reader.remaining() > 0 {
            let offset = reader.offset();
            state.version_tag = reader.u8()?;
            last_section = Some(("version tag", offset, state.version_tag == 0));
        }
        if let Some((what, offset, true)) = last_section {
            return Err(DecodeError::NotCanonical { what, offset });
        }
        reader.finish()?;
        state
            .rebuild_indexes()
            .map_err(|reason| DecodeError::Inconsistent { reason })?;
        state
            .check_records()
            .map_err(|reason| DecodeError::Inconsistent { reason })?;
        Ok(state)
    }
}
