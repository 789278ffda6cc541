//! Refusals of the state machine. Every refusal is a value inside [`crate::Output`]; a refused
//! command leaves the state unchanged except where a variant says otherwise.
//!
//! The gateway maps these to S3 error codes in its single mapping file; the names follow S3's codes
//! where one exists so that mapping is obvious.

use crate::records::{NodeId, UploadId, VersionId};
use crate::role::Role;

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MetaError {
    #[error("bucket {bucket:?} does not exist")]
    NoSuchBucket { bucket: String },
    /// The key has no current version. `delete_marker` is set when the current version is a
    /// delete marker (S3 answers 404 with `x-amz-delete-marker: true`).
    #[error("key {key:?} does not exist in bucket {bucket:?}")]
    NoSuchKey {
        bucket: String,
        key: String,
        delete_marker: Option<VersionId>,
    },
    #[error("version {version} of {bucket:?}/{key:?} does not exist")]
    NoSuchVersion {
        bucket: String,
        key: String,
        /// The id as S3 shows it (`null` for the null version).
        version: String,
    },
    /// S3 answers 405 when a version-specific GET addresses a delete marker.
    #[error("version {version_id} is a delete marker")]
    MethodNotAllowedOnDeleteMarker { version_id: VersionId },
    #[error("upload {upload_id} of {bucket:?}/{key:?} does not exist")]
    NoSuchUpload {
        bucket: String,
        key: String,
        upload_id: UploadId,
    },
    #[error("part {part_number} is invalid: {reason}")]
    InvalidPart { part_number: u32, reason: String },
    #[error("part list is not in ascending order at part {part_number}")]
    InvalidPartOrder { part_number: u32 },
    #[error("part number {part_number} is outside 1..=10000")]
    InvalidPartNumber { part_number: u32 },
    #[error("part {part_number} has {size_bytes} bytes, below the {minimum_bytes}-byte minimum")]
    EntityTooSmall {
        part_number: u32,
        size_bytes: u64,
        minimum_bytes: u64,
    },
    #[error("bucket {bucket:?} still holds objects or uploads")]
    BucketNotEmpty { bucket: String },
    #[error("bucket {bucket:?} exists and belongs to another owner")]
    BucketAlreadyExists { bucket: String },
    #[error("bucket {bucket:?} already exists and is yours")]
    BucketAlreadyOwnedByYou { bucket: String },
    #[error("bucket name {bucket:?} is invalid: {reason}")]
    InvalidBucketName { bucket: String, reason: String },
    #[error("versioning of bucket {bucket:?} cannot return to Unversioned")]
    IllegalVersioningConfiguration { bucket: String },
    /// CommitWrite or AbortWrite named a write that is not PREPARING (already aborted by the
    /// janitor, or never prepared). For CommitWrite the shard map is recorded as garbage.
    #[error("no pending write {version_id} for {bucket:?}/{key:?}")]
    NoSuchWrite {
        bucket: String,
        key: String,
        version_id: VersionId,
    },
    #[error("write {version_id} is already committed")]
    WriteAlreadyCommitted { version_id: VersionId },
    #[error("idempotency token does not match the one of write {version_id}")]
    TokenMismatch { version_id: VersionId },
    /// The token is known for this key but with different request parameters.
    #[error("idempotency token {token:?} was already used for a different request")]
    IdempotencyTokenReused { token: String },
    #[error("erasure-coding scheme {scheme:?} is invalid: {reason}")]
    InvalidEcScheme { scheme: String, reason: String },
    #[error("shard map is invalid: {reason}")]
    InvalidShardMap { reason: String },
    /// Compare-and-set failure: the record changed since the caller read it.
    #[error("record version is {actual}, expected {expected}")]
    RecordVersionMismatch { expected: u64, actual: u64 },
    #[error("continuation token is invalid")]
    InvalidContinuationToken,
    #[error("invalid argument: {reason}")]
    InvalidArgument { reason: String },
    #[error("access key {access_key_id:?} already exists")]
    AccessKeyAlreadyExists { access_key_id: String },
    #[error("access key {access_key_id:?} does not exist")]
    NoSuchAccessKey { access_key_id: String },
    #[error("{node_id} is not registered")]
    NoSuchNode { node_id: NodeId },
    /// The command was routed to an instance that does not hold its key space.
    #[error("command {command} is not accepted by a {role:?} instance")]
    WrongRole { command: String, role: Role },
    /// The log index did not grow; the state is unchanged (not even `last_applied_index`).
    #[error("log index {log_index} is not above the last applied index {last_applied_index}")]
    StaleLogIndex {
        log_index: u64,
        last_applied_index: u64,
    },
    /// A conditional write's condition did not hold.
    #[error("the precondition on {bucket}/{key} did not hold")]
    PreconditionFailed { bucket: String, key: String },
    /// A conditional write's condition did not hold because another write changed the key after
    /// the condition was first checked.
    #[error("a concurrent write changed {bucket}/{key}")]
    ConditionalRequestConflict { bucket: String, key: String },
    /// Object lock: the version is under retention or legal hold, so it cannot be removed or its
    /// retention weakened (see [`crate::object_lock`]).
    #[error("{bucket}/{key} version {version_id} is protected by object lock ({reason})")]
    ObjectLocked {
        bucket: String,
        key: String,
        version_id: VersionId,
        reason: String,
    },
    /// Object lock: the bucket's configuration forbids the change (suspending versioning,
    /// removing object lock).
    #[error("bucket {bucket}: {reason}")]
    ObjectLockConflict { bucket: String, reason: String },
    // The key service (SSE-KMS).
    #[error("KMS key {key} does not exist")]
    NoSuchKmsKey { key: String },
    #[error("KMS key {key_id} is disabled")]
    KmsKeyDisabled { key_id: String },
    #[error("a KMS key with id or alias {key} already exists")]
    KmsKeyAlreadyExists { key: String },
    /// The partition's replication queue is full (a destination region has been away for
    /// long): a write that would be queued is refused, for the client to retry later, rather
    /// than committed and never replicated. Nothing changed.
    #[error("the replication queue holds {entries} entries, its bound")]
    ReplicationBacklog { entries: u64 },
    /// The metadata replica's disk has less free space than its reserve: the write was refused
    /// before it was proposed (never applied; `cairn_raft::disk`). Nothing changed.
    #[error("the metadata disk is full ({free_bytes} bytes free, below the reserve)")]
    MetadataDiskFull { free_bytes: u64 },
}
