//! Commands (Raft log entries), queries, and their outputs.
//!
//! A [`Command`] is what a Raft log entry carries; applying it yields an [`Output`]. Everything an
//! apply needs comes in the command (time as `now_ms`, bucket configuration resolved by the gateway),
//! so every replica computes the same output and the same next state. Queries never change state:
//! they can go through the log (`Command::Read`, the simplest linearizable read) or be answered
//! directly with [`crate::StateMachine::query`] after a read-index check.

use std::collections::BTreeMap;

use crate::error::MetaError;
use crate::records::{
    AccessKeyRecord, Acl, AdditionalChecksum, Attributes, BlockShards, BucketRecord, Checksums,
    ClusterLayout, GarbageId, GarbageRecord, MultipartUpload, NodeId, NodeRecord, ObjectRecord,
    PartRecord, PartShards, ReplicationRule, StorageClass, SuspectRecord, UploadId, VersionId,
    VersionSelector, VersioningState,
};
use crate::role::Scope;

/// Starts a PUT: creates a PREPARING version, or returns the version the token already created.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PrepareWrite {
    pub bucket: String,
    pub key: String,
    /// Unique per logical PUT; the gateway derives one when the client sent none. Empty disables
    /// the retry short-circuit.
    pub idempotency_token: String,
    pub size_bytes: u64,
    pub content_type: String,
    pub owner: String,
    pub user_metadata: BTreeMap<String, String>,
    pub storage_class: StorageClass,
    pub acl: Acl,
    pub ec_scheme: String,
    pub piece_size_bytes: u32,
    /// The bucket's versioning state as the gateway read it from the bucket service.
    pub versioning: VersioningState,
    pub now_ms: u64,
    /// Attributes of the new version (tags, encryption parameters, …).
    pub attributes: Attributes,
}

/// Finishes a PUT: PREPARING -> COMMITTED with the shard map and checksums.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommitWrite {
    pub bucket: String,
    pub key: String,
    pub version_id: VersionId,
    pub idempotency_token: String,
    pub checksums: Checksums,
    pub parts: Vec<PartShards>,
    pub now_ms: u64,
}

/// Rolls back a PREPARING write (gateway failure, or the janitor's timeout).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AbortWrite {
    pub bucket: String,
    pub key: String,
    pub version_id: VersionId,
    pub now_ms: u64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeleteObject {
    pub bucket: String,
    pub key: String,
    pub version: VersionSelector,
    /// The bucket's versioning state as the gateway read it.
    pub versioning: VersioningState,
    /// Owner recorded on a delete marker.
    pub owner: String,
    pub now_ms: u64,
}

/// Healer's compare-and-set of a committed version's shard map (same lengths, new placements).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UpdateShardMap {
    pub bucket: String,
    pub key: String,
    pub version_id: VersionId,
    pub expected_record_version: u64,
    pub parts: Vec<PartShards>,
    pub now_ms: u64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CreateMultipartUpload {
    pub bucket: String,
    pub key: String,
    pub owner: String,
    pub content_type: String,
    pub user_metadata: BTreeMap<String, String>,
    pub storage_class: StorageClass,
    pub acl: Acl,
    pub ec_scheme: String,
    pub piece_size_bytes: u32,
    pub now_ms: u64,
    /// Attributes the completed version will carry.
    pub attributes: Attributes,
}

/// Records a part whose shards are durable (the part's own prepare/commit is the gateway's job:
/// a crashed part upload leaves orphan shards that the upload's abort or completion reclaims only
/// if they were recorded, so the janitor also scans for unknown shards).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UploadPart {
    pub bucket: String,
    pub key: String,
    pub upload_id: UploadId,
    pub part_number: u32,
    pub size_bytes: u64,
    pub etag: String,
    pub checksum: Option<AdditionalChecksum>,
    pub blocks: Vec<BlockShards>,
    pub now_ms: u64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CompletedPart {
    pub part_number: u32,
    pub etag: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CompleteMultipartUpload {
    pub bucket: String,
    pub key: String,
    pub upload_id: UploadId,
    pub parts: Vec<CompletedPart>,
    /// Object checksums computed by the gateway from the listed parts (the multipart ETag is the
    /// MD5 of the parts' binary MD5s plus `-N`; hashing stays out of the state machine).
    pub checksums: Checksums,
    pub versioning: VersioningState,
    pub now_ms: u64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AbortMultipartUpload {
    pub bucket: String,
    pub key: String,
    pub upload_id: UploadId,
    pub now_ms: u64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CreateBucket {
    pub bucket: String,
    pub owner: String,
    pub primary_region: String,
    pub ec_scheme: String,
    pub acl: Acl,
    pub now_ms: u64,
    /// Configurations the bucket starts with (e.g. `object-lock`).
    pub attributes: Attributes,
}

#[derive(Clone, PartialEq, Eq)]
pub struct CreateAccessKey {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub owner: String,
    pub now_ms: u64,
}

impl std::fmt::Debug for CreateAccessKey {
    // Commands are logged; the secret must not be.
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("CreateAccessKey")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .field("owner", &self.owner)
            .field("now_ms", &self.now_ms)
            .finish()
    }
}

/// Master-key rotation: replaces an access key's stored (sealed) secret with the same secret
/// sealed by the active master key, if the record is still at `record_version`.
#[derive(Clone, PartialEq, Eq)]
pub struct ResealAccessKey {
    pub access_key_id: String,
    pub record_version: u64,
    pub secret_access_key: String,
}

impl std::fmt::Debug for ResealAccessKey {
    // Commands are logged; even a sealed secret has no place in a log line.
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("ResealAccessKey")
            .field("access_key_id", &self.access_key_id)
            .field("record_version", &self.record_version)
            .field("secret_access_key", &"<redacted>")
            .finish()
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegisterNode {
    pub node_id: NodeId,
    pub address: String,
    pub availability_zone: String,
    pub capacity_bytes: u64,
    pub now_ms: u64,
}

/// A precondition on one version of a key (S3's conditional writes), checked when the command
/// carrying it is applied, so no other write can come between the check and the change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WriteCondition {
    /// `If-None-Match: *`: the key has no current version (a delete marker counts as none).
    Absent,
    /// `If-Match: <etag>`: the version is an object (not a delete marker) with this ETag
    /// (unquoted). A missing version is `NoSuchKey`.
    EtagMatches(String),
}

/// Names one suspect-queue entry: as a `ResolveSuspects` item (with the `last_report_index` the
/// healer listed), or as the position a `ListSuspects` page starts after.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SuspectResolution {
    pub bucket: String,
    pub key: String,
    pub version_id: VersionId,
    pub last_report_index: u64,
}

/// A state-changing command: the payload of one Raft log entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    // Object partition.
    PrepareWrite(PrepareWrite),
    CommitWrite(CommitWrite),
    AbortWrite(AbortWrite),
    DeleteObject(DeleteObject),
    UpdateShardMap(UpdateShardMap),
    CreateMultipartUpload(CreateMultipartUpload),
    UploadPart(UploadPart),
    CompleteMultipartUpload(CompleteMultipartUpload),
    AbortMultipartUpload(AbortMultipartUpload),
    /// The janitor deleted these entries' shards. Unknown ids are ignored (a retried purge).
    PurgeGarbage {
        garbage_ids: Vec<GarbageId>,
    },
    /// Step 1 of a partitioned DeleteBucket: from now on this partition refuses new versions,
    /// delete markers and uploads in the bucket (NoSuchBucket); answers BucketUsage.
    SealBucket {
        bucket: String,
    },
    /// Undoes SealBucket (the bucket was not empty, or it was created again); answers BucketUsage.
    UnsealBucket {
        bucket: String,
    },
    /// Sets or removes one attribute of a committed, non-delete-marker version (its tags, its
    /// retention); answers the version.
    PutObjectAttribute {
        bucket: String,
        key: String,
        version: VersionSelector,
        name: String,
        value: Option<Vec<u8>>,
    },
    // Bucket service.
    CreateBucket(CreateBucket),
    DeleteBucket {
        bucket: String,
    },
    PutBucketVersioning {
        bucket: String,
        versioning: VersioningState,
    },
    PutBucketReplication {
        bucket: String,
        rules: Vec<ReplicationRule>,
    },
    PutBucketEcScheme {
        bucket: String,
        ec_scheme: String,
    },
    /// Sets (`Some`) or removes (`None`) one bucket attribute (a configuration document such as
    /// the bucket's tags or policy); answers the bucket.
    PutBucketAttribute {
        bucket: String,
        name: String,
        value: Option<Vec<u8>>,
    },
    CreateAccessKey(CreateAccessKey),
    /// Master-key rotation: see [`ResealAccessKey`]; answers the access key.
    /// `RecordVersionMismatch` when the record changed meanwhile.
    ResealAccessKey(ResealAccessKey),
    RevokeAccessKey {
        access_key_id: String,
        now_ms: u64,
    },
    // Node registry.
    RegisterNode(RegisterNode),
    Heartbeat {
        node_id: NodeId,
        used_bytes: u64,
        now_ms: u64,
    },
    /// Marks DOWN every UP node whose last heartbeat is older than `now_ms - timeout_ms`.
    ExpireNodes {
        now_ms: u64,
        timeout_ms: u64,
    },
    /// The key service (SSE-KMS): see [`crate::kms`].
    Kms(crate::kms::KmsCommand),
    /// Partition map: records `layout` if none is recorded yet (the first bootstrap wins) and
    /// answers the recorded layout, which the caller compares with its own.
    RecordLayout(ClusterLayout),
    /// A reader found a piece of this committed version missing, unreadable or corrupt: queue
    /// the version for the healer (see [`crate::suspects`]); answers `SuspectReported`.
    ReportSuspect {
        bucket: String,
        key: String,
        version_id: VersionId,
        now_ms: u64,
    },
    /// The healer checked these suspect entries; answers `SuspectsResolved`. Send it with
    /// `write_to` to the partition that listed them.
    ResolveSuspects {
        resolutions: Vec<SuspectResolution>,
    },
    /// Master-key rotation: sets the `encryption` attribute (the SSE envelope) of version
    /// `version_id` to `envelope` (the same data key wrapped by the active master key; the
    /// object's bytes do not change) if the version is still at `record_version`, else
    /// `RecordVersionMismatch`. Not an object-lock change: a locked version's data and its
    /// retention stay as they are. Answers the version.
    RewrapObjectEncryption {
        bucket: String,
        key: String,
        version_id: VersionId,
        record_version: u64,
        envelope: Vec<u8>,
    },
    /// Master-key rotation, for a multipart upload in progress: like
    /// [`Command::RewrapObjectEncryption`] on the upload's `encryption` attribute (the parts
    /// already stored keep their bytes; they were encrypted under the same data key).
    RewrapUploadEncryption {
        bucket: String,
        key: String,
        upload_id: UploadId,
        record_version: u64,
        envelope: Vec<u8>,
    },
    /// A query sent through the log for a linearizable read.
    Read(Query),
    /// `command` (a CommitWrite, CompleteMultipartUpload or DeleteObject) applied only if
    /// `condition` holds for its key (the version a DeleteObject names; the current version for
    /// the others). A failed condition is `PreconditionFailed`, or `ConditionalRequestConflict`
    /// when the current version is no longer `observed`, the one the gateway saw when it checked
    /// the condition before starting (another write raced this one).
    Conditional {
        condition: WriteCondition,
        observed: Option<VersionId>,
        command: Box<Command>,
    },
    /// `command` (a DeleteObject or PutObjectAttribute) applied with the right to remove or
    /// shorten GOVERNANCE retention: the gateway wraps a request only after checking
    /// `x-amz-bypass-governance-retention` and the caller's permission. COMPLIANCE retention and
    /// legal holds are enforced regardless ([`crate::object_lock`]).
    BypassGovernanceRetention {
        command: Box<Command>,
    },
    /// `command` (a CommitWrite, CompleteMultipartUpload or DeleteObject, possibly wrapped in
    /// `Conditional` or `BypassGovernanceRetention`) applied, and the version or delete marker it
    /// creates queued for cross-region replication in the same entry; or a PutObjectAttribute
    /// (possibly wrapped in `BypassGovernanceRetention`) of a replicated attribute (tags, ACL,
    /// retention, legal hold), and the change of an already replicated version queued (see
    /// [`crate::replication`]). The gateway wraps a command when the bucket has an enabled
    /// replication rule for the key.
    QueueReplication {
        /// The time of the request, for a command that carries none of its own
        /// (PutObjectAttribute): the queue entry's `enqueued_at_ms`. `None` for the others, which
        /// carry their own `now_ms`; exactly one of the two must be there. Encoded under its own
        /// tag (62) when present, so a `None` wrapper keeps the bytes of before (tag 60).
        now_ms: Option<u64>,
        command: Box<Command>,
    },
    /// Sets the partition's version tag (the top byte of the version ids it creates from now
    /// on; see [`crate::VersionId::tagged`]) when it has none; answers `VersionTag` with the
    /// tag in force. Idempotent; a different tag than the one in force is refused
    /// (InvalidArgument), so a replica configured for another region cannot change it. The tag
    /// is state, set through the log, so every replica and every replay of the log creates the
    /// same ids. A group's proposer puts it in front of the first entry it proposes.
    SetVersionTag {
        tag: u8,
    },
    /// A replicator's delete marker: `delete` (of the current version, in a versioned bucket)
    /// whose marker carries `attributes`, among them the replica status and the source
    /// version's id to keep ([`crate::REPLICA_VERSION_ATTRIBUTE`], checked as a PrepareWrite's
    /// is). Answers `Deleted` as DeleteObject does.
    ReplicaDeleteMarker {
        delete: DeleteObject,
        attributes: crate::records::Attributes,
    },
    /// The replicator finished these replication-queue entries; answers `ReplicationResolved`.
    /// Send it with `write_to` to the partition that listed them.
    ResolveReplication {
        resolutions: Vec<crate::replication::ReplicationResolution>,
    },
    /// Group commit: these commands applied in order in one log entry, each at its own id index
    /// (see [`crate::StateMachine::apply`]); answers [`Response::Batch`] with one output per
    /// command. The Raft leader builds it from the client writes that queued up while its
    /// previous entry was being flushed, so one fsync commits them all. A batch inside a batch is
    /// refused (that command alone), and each command passes the role check on its own.
    Batch(Vec<Command>),
}

/// S3 ListObjectsV2 parameters.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct ListObjectsRequest {
    pub bucket: String,
    pub prefix: String,
    /// Empty means no delimiter.
    pub delimiter: String,
    pub start_after: Option<String>,
    /// Opaque token from a previous page; takes precedence over `start_after`.
    pub continuation_token: Option<String>,
    /// Capped at [`crate::MAX_LIST_KEYS`]; 0 returns an empty, untruncated page. S3's default
    /// (1000 when the request has no max-keys) is the gateway's to fill in.
    pub max_keys: u32,
}

/// S3 ListObjectVersions parameters.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct ListVersionsRequest {
    pub bucket: String,
    pub prefix: String,
    /// Empty means no delimiter.
    pub delimiter: String,
    /// Resume after this key (after all of its versions unless `version_id_marker` is set).
    pub key_marker: Option<String>,
    /// With `key_marker`: resume after this version of that key (versions are newest first).
    pub version_id_marker: Option<VersionId>,
    /// Capped at [`crate::MAX_LIST_KEYS`]; 0 yields an empty, untruncated page.
    pub max_keys: u32,
}

#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct ListUploadsRequest {
    pub bucket: String,
    pub prefix: String,
    pub key_marker: Option<String>,
    /// Only meaningful with `key_marker`: uploads of that key with a greater id are listed.
    pub upload_id_marker: Option<UploadId>,
    pub max_uploads: u32,
}

#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct ListPartsRequest {
    pub bucket: String,
    pub key: String,
    pub upload_id: UploadId,
    pub part_number_marker: u32,
    pub max_parts: u32,
}

/// A read-only request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Query {
    // Object partition.
    GetObject {
        bucket: String,
        key: String,
        version: VersionSelector,
    },
    ListObjects(ListObjectsRequest),
    ListVersions(ListVersionsRequest),
    GetUpload {
        bucket: String,
        key: String,
        upload_id: UploadId,
    },
    ListUploads(ListUploadsRequest),
    ListParts(ListPartsRequest),
    /// The janitor's query: PREPARING versions created before `created_before_ms`, oldest first.
    ListStalePreparing {
        created_before_ms: u64,
        limit: u32,
    },
    /// Garbage entries after `after` (exclusive), in id order.
    ListGarbage {
        after: Option<GarbageId>,
        limit: u32,
    },
    /// Whether this partition holds versions or uploads of a bucket.
    BucketUsage {
        bucket: String,
    },
    /// What this partition stores of a bucket, exactly (see [`crate::usage`]); the sum over
    /// every partition is the bucket's usage, which quotas limit.
    BucketStats {
        bucket: String,
    },
    /// Suspect-queue entries after `after` (exclusive; its `last_report_index` is ignored), in
    /// (bucket, key, version id) order.
    ListSuspects {
        after: Option<SuspectResolution>,
        limit: u32,
    },
    /// Replication-queue entries after `after_seq` (exclusive), oldest first.
    ListReplicationQueue {
        after_seq: Option<u64>,
        limit: u32,
    },
    // Bucket service.
    GetBucket {
        bucket: String,
    },
    ListBuckets {
        owner: Option<String>,
    },
    GetAccessKey {
        access_key_id: String,
    },
    /// Every access key (secrets included: only the admin API asks, and it answers without
    /// them), optionally only those of one owner, in access key id order.
    ListAccessKeys {
        owner: Option<String>,
    },
    /// The key service (SSE-KMS): see [`crate::kms`].
    Kms(crate::kms::KmsQuery),
    // Node registry.
    GetNode {
        node_id: NodeId,
    },
    ListNodes,
    // Partition map.
    /// The recorded cluster layout (`None` before the first bootstrap recorded one).
    GetLayout,
}

/// One entry of a ListObjectsV2 page.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectSummary {
    pub key: String,
    pub version_id: VersionId,
    pub null_version: bool,
    pub size_bytes: u64,
    pub etag: String,
    pub last_modified_ms: u64,
    pub storage_class: StorageClass,
    pub owner: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct ListObjectsPage {
    pub contents: Vec<ObjectSummary>,
    pub common_prefixes: Vec<String>,
    pub is_truncated: bool,
    pub next_continuation_token: Option<String>,
    /// `contents.len() + common_prefixes.len()`, as S3's KeyCount.
    pub key_count: u32,
}

/// One entry of a ListObjectVersions page: a version or a delete marker.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VersionSummary {
    pub key: String,
    /// The id S3 clients see ([`crate::ObjectRecord::s3_version_id`]).
    pub version_id: VersionId,
    pub null_version: bool,
    pub delete_marker: bool,
    /// This is the key's current version.
    pub is_latest: bool,
    pub size_bytes: u64,
    pub etag: String,
    pub last_modified_ms: u64,
    pub storage_class: StorageClass,
    pub owner: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct ListVersionsPage {
    /// By key, then newest first within a key.
    pub versions: Vec<VersionSummary>,
    pub common_prefixes: Vec<String>,
    pub is_truncated: bool,
    pub next_key_marker: Option<String>,
    /// Absent when the page ended on a common prefix.
    pub next_version_id_marker: Option<VersionId>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UploadSummary {
    pub key: String,
    pub upload_id: UploadId,
    pub owner: String,
    pub storage_class: StorageClass,
    pub initiated_at_ms: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct ListUploadsPage {
    pub uploads: Vec<UploadSummary>,
    pub is_truncated: bool,
    pub next_key_marker: Option<String>,
    pub next_upload_id_marker: Option<UploadId>,
}

#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct ListPartsPage {
    pub parts: Vec<PartRecord>,
    pub is_truncated: bool,
    pub next_part_number_marker: Option<u32>,
}

/// The successful result of a command or query.
// One Response is built per applied command and moved once to the caller; boxing the records
// would cost an allocation each time to save a few hundred bytes of stack.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Response {
    /// PrepareWrite: the PREPARING record, or the record the token created earlier (`retried`).
    Prepared {
        record: ObjectRecord,
        retried: bool,
    },
    /// CommitWrite or CompleteMultipartUpload: the committed record (`retried` when it was
    /// already committed by an earlier identical command).
    Committed {
        record: ObjectRecord,
        retried: bool,
    },
    /// AbortWrite: the rolled-back record, now DELETED.
    Aborted {
        record: ObjectRecord,
    },
    /// DeleteObject: the version removed (if any) and the delete marker created (if any).
    Deleted {
        removed: Option<ObjectRecord>,
        delete_marker: Option<ObjectRecord>,
    },
    /// UpdateShardMap, GetObject.
    Object(ObjectRecord),
    Objects(Vec<ObjectRecord>),
    ObjectList(ListObjectsPage),
    VersionList(ListVersionsPage),
    Upload(MultipartUpload),
    /// UploadPart: the stored part.
    Part(PartRecord),
    UploadList(ListUploadsPage),
    PartList(ListPartsPage),
    /// AbortMultipartUpload: the removed upload.
    UploadAborted(MultipartUpload),
    Garbage(Vec<GarbageRecord>),
    Purged {
        purged_count: u32,
    },
    /// Query BucketUsage, SealBucket, UnsealBucket: what the partition holds of the bucket.
    BucketUsage {
        has_versions: bool,
        has_uploads: bool,
    },
    Bucket(BucketRecord),
    Buckets(Vec<BucketRecord>),
    BucketDeleted(BucketRecord),
    AccessKey(AccessKeyRecord),
    /// ListAccessKeys.
    AccessKeys(Vec<AccessKeyRecord>),
    /// A KMS key command or KmsQuery::Get.
    KmsKey(crate::kms::KmsKeyRecord),
    /// KmsQuery::List.
    KmsKeys(Vec<crate::kms::KmsKeyRecord>),
    Node(NodeRecord),
    Nodes(Vec<NodeRecord>),
    /// Heartbeat: the node record and whether this heartbeat brought it back UP.
    Heartbeat {
        node: NodeRecord,
        came_up: bool,
    },
    /// ExpireNodes: the nodes this command marked DOWN.
    NodesExpired(Vec<NodeId>),
    /// RecordLayout, GetLayout: the recorded layout.
    Layout(Option<ClusterLayout>),
    /// SetVersionTag: the partition's version tag.
    VersionTag(u8),
    /// ReportSuspect: whether the version is (now) in the queue; `false` for a version that is
    /// not committed or a full queue.
    SuspectReported {
        queued: bool,
    },
    /// ResolveSuspects: how many entries were removed.
    SuspectsResolved {
        resolved_count: u32,
    },
    /// ListSuspects.
    Suspects(Vec<SuspectRecord>),
    /// Query BucketStats.
    BucketStats(crate::usage::BucketStats),
    /// ResolveReplication: how many entries were removed.
    ReplicationResolved {
        resolved_count: u32,
    },
    /// ListReplicationQueue.
    ReplicationQueue(Vec<crate::replication::ReplicationEntry>),
    /// Command::Batch: each command's output, in the batch's order.
    Batch(Vec<Output>),
}

/// What applying one command yields.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Output {
    pub result: Result<Response, MetaError>,
    /// Garbage entries this command created (also kept in the state until purged): shards a janitor
    /// must delete. Empty for most commands.
    pub new_garbage: Vec<GarbageRecord>,
}

impl Output {
    pub fn is_ok(&self) -> bool {
        self.result.is_ok()
    }
}

impl Command {
    pub fn name(&self) -> &'static str {
        match self {
            Command::PrepareWrite(_) => "PrepareWrite",
            Command::CommitWrite(_) => "CommitWrite",
            Command::AbortWrite(_) => "AbortWrite",
            Command::DeleteObject(_) => "DeleteObject",
            Command::UpdateShardMap(_) => "UpdateShardMap",
            Command::CreateMultipartUpload(_) => "CreateMultipartUpload",
            Command::UploadPart(_) => "UploadPart",
            Command::CompleteMultipartUpload(_) => "CompleteMultipartUpload",
            Command::AbortMultipartUpload(_) => "AbortMultipartUpload",
            Command::PurgeGarbage { .. } => "PurgeGarbage",
            Command::SealBucket { .. } => "SealBucket",
            Command::UnsealBucket { .. } => "UnsealBucket",
            Command::CreateBucket(_) => "CreateBucket",
            Command::DeleteBucket { .. } => "DeleteBucket",
            Command::PutBucketVersioning { .. } => "PutBucketVersioning",
            Command::PutBucketReplication { .. } => "PutBucketReplication",
            Command::PutBucketEcScheme { .. } => "PutBucketEcScheme",
            Command::PutBucketAttribute { .. } => "PutBucketAttribute",
            Command::PutObjectAttribute { .. } => "PutObjectAttribute",
            Command::CreateAccessKey(_) => "CreateAccessKey",
            Command::ResealAccessKey(_) => "ResealAccessKey",
            Command::RewrapObjectEncryption { .. } => "RewrapObjectEncryption",
            Command::RewrapUploadEncryption { .. } => "RewrapUploadEncryption",
            Command::RevokeAccessKey { .. } => "RevokeAccessKey",
            Command::Kms(command) => command.name(),
            Command::RegisterNode(_) => "RegisterNode",
            Command::Heartbeat { .. } => "Heartbeat",
            Command::ExpireNodes { .. } => "ExpireNodes",
            Command::RecordLayout(_) => "RecordLayout",
            Command::ReportSuspect { .. } => "ReportSuspect",
            Command::ResolveSuspects { .. } => "ResolveSuspects",
            Command::Read(query) => query.name(),
            Command::Conditional { command, .. } => command.name(),
            Command::BypassGovernanceRetention { command } => command.name(),
            Command::QueueReplication { command, .. } => command.name(),
            Command::ReplicaDeleteMarker { .. } => "ReplicaDeleteMarker",
            Command::SetVersionTag { .. } => "SetVersionTag",
            Command::ResolveReplication { .. } => "ResolveReplication",
            Command::Batch(_) => "Batch",
        }
    }

    pub fn scope(&self) -> Scope {
        match self {
            Command::PrepareWrite(_)
            | Command::CommitWrite(_)
            | Command::AbortWrite(_)
            | Command::DeleteObject(_)
            | Command::UpdateShardMap(_)
            | Command::CreateMultipartUpload(_)
            | Command::UploadPart(_)
            | Command::CompleteMultipartUpload(_)
            | Command::AbortMultipartUpload(_)
            | Command::PurgeGarbage { .. }
            | Command::SealBucket { .. }
            | Command::UnsealBucket { .. }
            | Command::PutObjectAttribute { .. }
            | Command::RewrapObjectEncryption { .. }
            | Command::RewrapUploadEncryption { .. }
            | Command::ReportSuspect { .. }
            | Command::ResolveSuspects { .. }
            | Command::ReplicaDeleteMarker { .. }
            | Command::SetVersionTag { .. }
            | Command::ResolveReplication { .. } => Scope::Object,
            Command::CreateBucket(_)
            | Command::DeleteBucket { .. }
            | Command::PutBucketVersioning { .. }
            | Command::PutBucketReplication { .. }
            | Command::PutBucketEcScheme { .. }
            | Command::PutBucketAttribute { .. }
            | Command::CreateAccessKey(_)
            | Command::ResealAccessKey(_)
            | Command::RevokeAccessKey { .. }
            | Command::Kms(_) => Scope::Bucket,
            Command::RegisterNode(_) | Command::Heartbeat { .. } | Command::ExpireNodes { .. } => {
                Scope::Node
            }
            Command::RecordLayout(_) => Scope::Layout,
            Command::Read(query) => query.scope(),
            Command::Conditional { command, .. } => command.scope(),
            Command::BypassGovernanceRetention { command } => command.scope(),
            Command::QueueReplication { command, .. } => command.scope(),
            // Each command of a batch is checked against the role on its own; the batch itself
            // goes where its first command goes (the proposer batches one group's commands).
            Command::Batch(commands) => commands
                .first()
                .map_or(Scope::Object, |command| command.scope()),
        }
    }

    /// Whether applying this command can change the state (openraft may skip read-only entries
    /// when replaying, and the gateway may answer them by read-index instead).
    pub fn is_read_only(&self) -> bool {
        match self {
            Command::Read(_) => true,
            Command::Batch(commands) => commands.iter().all(Command::is_read_only),
            _ => false,
        }
    }
}

impl Query {
    pub fn name(&self) -> &'static str {
        match self {
            Query::GetObject { .. } => "GetObject",
            Query::ListObjects(_) => "ListObjects",
            Query::ListVersions(_) => "ListVersions",
            Query::GetUpload { .. } => "GetUpload",
            Query::ListUploads(_) => "ListUploads",
            Query::ListParts(_) => "ListParts",
            Query::ListStalePreparing { .. } => "ListStalePreparing",
            Query::ListGarbage { .. } => "ListGarbage",
            Query::BucketUsage { .. } => "BucketUsage",
            Query::BucketStats { .. } => "BucketStats",
            Query::ListSuspects { .. } => "ListSuspects",
            Query::ListReplicationQueue { .. } => "ListReplicationQueue",
            Query::GetBucket { .. } => "GetBucket",
            Query::ListBuckets { .. } => "ListBuckets",
            Query::GetAccessKey { .. } => "GetAccessKey",
            Query::ListAccessKeys { .. } => "ListAccessKeys",
            Query::Kms(query) => query.name(),
            Query::GetNode { .. } => "GetNode",
            Query::ListNodes => "ListNodes",
            Query::GetLayout => "GetLayout",
        }
    }

    pub fn scope(&self) -> Scope {
        match self {
            Query::GetObject { .. }
            | Query::ListObjects(_)
            | Query::ListVersions(_)
            | Query::GetUpload { .. }
            | Query::ListUploads(_)
            | Query::ListParts(_)
            | Query::ListStalePreparing { .. }
            | Query::ListGarbage { .. }
            | Query::BucketUsage { .. }
            | Query::BucketStats { .. }
            | Query::ListSuspects { .. }
            | Query::ListReplicationQueue { .. } => Scope::Object,
            Query::GetBucket { .. }
            | Query::ListBuckets { .. }
            | Query::GetAccessKey { .. }
            | Query::ListAccessKeys { .. }
            | Query::Kms(_) => Scope::Bucket,
            Query::GetNode { .. } | Query::ListNodes => Scope::Node,
            Query::GetLayout => Scope::Layout,
        }
    }
}
