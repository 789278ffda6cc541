//! The state machine: key spaces and the apply function.
//!
//! Model: the state is a set of ordered key spaces (BTreeMap order, which is also the byte order
//! of their LMDB keys, see [`crate::keys`]). The persistent ones are [`TrackedMap`]s, which
//! remember the keys changed since the store last wrote them ([`crate::stored`]).
//! `apply(command, log_index)` is a pure function of (state, command, log_index): no clock, no
//! randomness, no hash-map iteration order.
//!
//! Id indexes. Everything a command derives from its position in the log (version ids, upload
//! ids, `commit_log_index`, garbage ids, replication-queue seqs, suspect report indexes) comes
//! from the command's *id index*, not directly from the log index, because one log entry may
//! carry several commands ([`Command::Batch`], the Raft leader's group commit). The state keeps
//! `last_id_index`, the last one handed out, and each applied command takes
//! `max(last_id_index, log_index - 1) + 1`: in a log without batches that is exactly the log
//! index (so records written before batches existed keep their meaning and stay comparable with
//! new ones), and the commands of a batch take consecutive indexes from there, in their order. Id
//! indexes are therefore unique and strictly increasing in apply order across the whole log, so
//! two commits of one key in one batch order exactly as two entries would (the later one is
//! current), and two versions created in one batch never share an id. Id indexes may run ahead
//! of the log index (by the extra commands of every batch so far); nothing compares them with
//! log indexes. `last_id_index` is part of the snapshot (see [`crate::codec`]).
//!
//! Invariants (checked by `StateMachine::check_invariants`, which the tests call after every
//! command):
//! - `versions` holds PREPARING and COMMITTED records only; a removed record lives on, as DELETED,
//!   only inside a garbage entry until the janitor purges it.
//! - `current[(bucket, key)]` is the COMMITTED version of that key with the highest
//!   `commit_log_index`, and is absent when the key has none.
//! - At most one COMMITTED version per key has `null_version` set.
//! - `tokens[(bucket, key, token)]` points at the version in `versions` that carries that token.
//! - `preparing` holds exactly the PREPARING versions, ordered by creation time.
//! - A refused command changes nothing except `last_applied_index`, with one documented exception:
//!   a CommitWrite for an unknown write records its shard map as garbage.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Bound;

use crate::command::{Command, Output, Query, Response, WriteCondition};
use crate::error::MetaError;
use crate::records::{
    AccessKeyRecord, BucketRecord, ClusterLayout, GarbageId, GarbageReason, GarbageRecord,
    MultipartUpload, NodeId, NodeRecord, ObjectRecord, PartRecord, PartShards, SuspectRecord,
    TransactionState, UploadId, VersionId, VersionSelector,
};
use crate::role::Role;
use crate::suspects::SuspectKey;
use crate::tracked::TrackedMap;
use crate::usage::BucketStats;

/// Most entries one list page returns, as in S3.
pub const MAX_LIST_KEYS: u32 = 1000;
/// S3's minimum size of every multipart part but the last.
pub const MIN_PART_SIZE_BYTES: u64 = 5 * 1024 * 1024;
/// S3's highest part number.
pub const MAX_PART_NUMBER: u32 = 10_000;
/// S3's longest key, in UTF-8 bytes.
pub const MAX_KEY_BYTES: usize = 1024;

pub(crate) type ObjectKey = (String, String);
pub(crate) type VersionKey = (String, String, VersionId);
pub(crate) type UploadKey = (String, String, UploadId);
pub(crate) type TokenKey = (String, String, String);
/// (created_at_ms, bucket, key, version): PREPARING versions oldest first, for the janitor.
pub(crate) type PreparingKey = (u64, String, String, VersionId);

/// One metadata state machine instance (one Raft group's state).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StateMachine {
    pub(crate) role: Role,
    pub(crate) last_applied_index: u64,
    /// The last id index handed out (see the module header); in snapshots when it differs from
    /// `last_applied_index`.
    pub(crate) last_id_index: u64,
    /// The region's version tag, the top byte of every version id this instance creates (see
    /// [`VersionId::tagged`]); 0 (until [`Command::SetVersionTag`]) creates untagged ids. Set
    /// once through the log and kept in snapshots, so replays create the same ids.
    pub(crate) version_tag: u8,
    pub(crate) buckets: TrackedMap<String, BucketRecord>,
    pub(crate) versions: TrackedMap<VersionKey, ObjectRecord>,
    pub(crate) uploads: TrackedMap<UploadKey, MultipartUpload>,
    pub(crate) garbage: TrackedMap<GarbageId, GarbageRecord>,
    pub(crate) access_keys: TrackedMap<String, AccessKeyRecord>,
    pub(crate) nodes: TrackedMap<NodeId, NodeRecord>,
    /// Buckets this partition refuses new objects for (SealBucket): see [`crate::role`].
    pub(crate) sealed_buckets: BTreeSet<String>,
    /// The cluster layout a partition map recorded (see [`Role::PartitionMap`]).
    pub(crate) layout: Option<ClusterLayout>,
    /// Versions readers found bad pieces of, for the healer (see [`crate::suspects`]).
    pub(crate) suspects: TrackedMap<SuspectKey, SuspectRecord>,
    /// KMS keys by key id (see [`crate::kms`]).
    pub(crate) kms_keys: TrackedMap<String, crate::kms::KmsKeyRecord>,
    /// Committed changes waiting for the replicator, by seq (see [`crate::replication`]).
    pub(crate) replication_queue: TrackedMap<u64, crate::replication::ReplicationEntry>,
    // Derived indexes: not in the snapshot, rebuilt from `versions` when one is loaded.
    pub(crate) current: BTreeMap<ObjectKey, VersionId>,
    pub(crate) tokens: BTreeMap<TokenKey, VersionId>,
    pub(crate) preparing: BTreeSet<PreparingKey>,
    /// Exact usage per bucket (see [`crate::usage`]).
    pub(crate) usage: BTreeMap<String, BucketStats>,
}

/// Garbage produced while applying one command.
pub(crate) struct Effects {
    /// The command's id index (see the module header).
    pub(crate) id_index: u64,
    pub(crate) garbage: Vec<GarbageRecord>,
    /// The command came wrapped in [`Command::BypassGovernanceRetention`].
    pub(crate) bypass_governance: bool,
}

impl StateMachine {
    pub fn new(role: Role) -> Self {
        StateMachine {
            role,
            last_applied_index: 0,
            last_id_index: 0,
            version_tag: 0,
            buckets: TrackedMap::new(),
            versions: TrackedMap::new(),
            uploads: TrackedMap::new(),
            garbage: TrackedMap::new(),
            access_keys: TrackedMap::new(),
            nodes: TrackedMap::new(),
            sealed_buckets: BTreeSet::new(),
            layout: None,
            suspects: TrackedMap::new(),
            kms_keys: TrackedMap::new(),
            replication_queue: TrackedMap::new(),
            current: BTreeMap::new(),
            tokens: BTreeMap::new(),
            preparing: BTreeSet::new(),
            usage: BTreeMap::new(),
        }
    }

    pub fn role(&self) -> Role {
        self.role
    }

    /// The version tag in force (see [`Command::SetVersionTag`]); 0 when none was set.
    pub fn version_tag(&self) -> u8 {
        self.version_tag
    }

    /// [`Command::SetVersionTag`].
    fn set_version_tag(&mut self, tag: u8) -> Result<Response, MetaError> {
        if tag == 0 {
            return Err(MetaError::InvalidArgument {
                reason: "a version tag is 1 to 255".to_owned(),
            });
        }
        if self.version_tag == 0 {
            self.version_tag = tag;
        } else if self.version_tag != tag {
            return Err(MetaError::InvalidArgument {
                reason: format!(
                    "this partition's version tag is {:#04x}, not {tag:#04x}: its replicas are \
                     configured for different regions",
                    self.version_tag
                ),
            });
        }
        Ok(Response::VersionTag(self.version_tag))
    }

    /// The id of a version created by the command at `id_index`.
    pub(crate) fn new_version_id(&self, id_index: u64) -> VersionId {
        VersionId::tagged(self.version_tag, id_index)
    }

    /// Log index of the last applied command (0 for a fresh instance). Raft reports it as the
    /// state machine's applied position and stores it with snapshots.
    pub fn last_applied_index(&self) -> u64 {
        self.last_applied_index
    }

    /// Applies one log entry. Deterministic: the same state, command and index give the same
    /// output and next state on every replica.
    ///
    /// A [`Command::Batch`] applies its commands in order, each at its own id index (see the
    /// module header), and answers [`Response::Batch`] with one [`Output`] per command: a refused
    /// command changes nothing of its neighbours' outcomes. Any other command is applied at one
    /// id index.
    pub fn apply(&mut self, command: Command, log_index: u64) -> Output {
        if log_index <= self.last_applied_index {
            return Output {
                result: Err(MetaError::StaleLogIndex {
                    log_index,
                    last_applied_index: self.last_applied_index,
                }),
                new_garbage: Vec::new(),
            };
        }
        self.last_applied_index = log_index;
        // The id floor never trails the log: an entry's first id index is at least its log
        // index (so an unbatched log keeps id index == log index), even when the entry is refused.
        self.last_id_index = self.last_id_index.max(log_index - 1);
        match command {
            Command::Batch(commands) => {
                let outputs = commands
                    .into_iter()
                    .map(|command| match command {
                        Command::Batch(_) => Output {
                            result: Err(MetaError::InvalidArgument {
                                reason: "a batch cannot hold another batch".to_owned(),
                            }),
                            new_garbage: Vec::new(),
                        },
                        command => {
                            let id_index = self.next_id_index();
                            self.apply_at(command, id_index)
                        }
                    })
                    .collect();
                self.last_id_index = self.last_id_index.max(log_index);
                Output {
                    result: Ok(Response::Batch(outputs)),
                    new_garbage: Vec::new(),
                }
            }
            command => {
                let id_index = self.next_id_index();
                self.apply_at(command, id_index)
            }
        }
    }

    /// The id index of the next command: one above the last one handed out.
    fn next_id_index(&mut self) -> u64 {
        self.last_id_index += 1;
        self.last_id_index
    }

    /// The last id index handed out (see the module header): at least
    /// [`StateMachine::last_applied_index`], and equal to it while no batch was applied.
    pub fn last_id_index(&self) -> u64 {
        self.last_id_index
    }

    /// Applies one command at id index `id_index`: every id, commit index and queue position the
    /// command creates derives from it.
    fn apply_at(&mut self, command: Command, id_index: u64) -> Output {
        if !self.role.accepts(command.scope()) {
            return Output {
                result: Err(MetaError::WrongRole {
                    command: command.name().to_owned(),
                    role: self.role,
                }),
                new_garbage: Vec::new(),
            };
        }
        let mut effects = Effects {
            id_index,
            garbage: Vec::new(),
            bypass_governance: false,
        };
        let result = match command {
            Command::PrepareWrite(command) => self.prepare_write(command, &effects),
            Command::CommitWrite(command) => self.commit_write(command, &mut effects),
            Command::AbortWrite(command) => self.abort_write(command, &mut effects),
            Command::DeleteObject(command) => self.delete_object(command, &mut effects),
            Command::SetVersionTag { tag } => self.set_version_tag(tag),
            Command::ReplicaDeleteMarker { delete, attributes } => {
                self.replica_delete_marker(delete, attributes, &mut effects)
            }
            Command::UpdateShardMap(command) => self.update_shard_map(command, &mut effects),
            Command::CreateMultipartUpload(command) => self.create_upload(command, &effects),
            Command::UploadPart(command) => self.upload_part(command, &mut effects),
            Command::CompleteMultipartUpload(command) => {
                self.complete_upload(command, &mut effects)
            }
            Command::AbortMultipartUpload(command) => self.abort_upload(command, &mut effects),
            Command::PurgeGarbage { garbage_ids } => Ok(self.purge_garbage(&garbage_ids)),
            Command::SealBucket { bucket } => {
                self.sealed_buckets.insert(bucket.clone());
                Ok(self.bucket_usage(&bucket))
            }
            Command::UnsealBucket { bucket } => {
                self.sealed_buckets.remove(&bucket);
                Ok(self.bucket_usage(&bucket))
            }
            Command::CreateBucket(command) => self.create_bucket(command),
            Command::DeleteBucket { bucket } => self.delete_bucket(&bucket),
            Command::PutBucketVersioning { bucket, versioning } => {
                self.put_bucket_versioning(&bucket, versioning)
            }
            Command::PutBucketReplication { bucket, rules } => {
                self.put_bucket_replication(&bucket, rules)
            }
            Command::PutBucketEcScheme { bucket, ec_scheme } => {
                self.put_bucket_ec_scheme(&bucket, ec_scheme)
            }
            Command::PutBucketAttribute {
                bucket,
                name,
                value,
            } => self.put_bucket_attribute(&bucket, name, value),
            Command::PutObjectAttribute {
                bucket,
                key,
                version,
                name,
                value,
            } => self.put_object_attribute(&bucket, &key, &version, name, value, false),
            Command::BypassGovernanceRetention { command } => {
                effects.bypass_governance = true;
                match *command {
                    Command::DeleteObject(command) => self.delete_object(command, &mut effects),
                    Command::PutObjectAttribute {
                        bucket,
                        key,
                        version,
                        name,
                        value,
                    } => self.put_object_attribute(&bucket, &key, &version, name, value, true),
                    // A conditional delete (`If-Match`) with the bypass: the condition is
                    // checked first, as `Command::Conditional` does.
                    Command::Conditional {
                        condition,
                        observed,
                        command,
                    } if matches!(*command, Command::DeleteObject(_)) => {
                        match self.check_condition(&condition, observed, &command) {
                            Ok(()) => match *command {
                                Command::DeleteObject(command) => {
                                    self.delete_object(command, &mut effects)
                                }
                                _ => unreachable!("matched above"),
                            },
                            Err(error) => Err(error),
                        }
                    }
                    other => Err(MetaError::InvalidArgument {
                        reason: format!("{} cannot bypass governance retention", other.name()),
                    }),
                }
            }
            Command::CreateAccessKey(command) => self.create_access_key(command),
            Command::ResealAccessKey(command) => self.reseal_access_key(command),
            Command::RewrapObjectEncryption {
                bucket,
                key,
                version_id,
                record_version,
                envelope,
            } => self.rewrap_object_encryption(&bucket, &key, version_id, record_version, envelope),
            Command::RewrapUploadEncryption {
                bucket,
                key,
                upload_id,
                record_version,
                envelope,
            } => self.rewrap_upload_encryption(bucket, key, upload_id, record_version, envelope),
            Command::RevokeAccessKey {
                access_key_id,
                now_ms,
            } => self.revoke_access_key(&access_key_id, now_ms),
            Command::Kms(command) => self.apply_kms(command),
            Command::RegisterNode(command) => Ok(self.register_node(command)),
            Command::Heartbeat {
                node_id,
                used_bytes,
                now_ms,
            } => self.heartbeat(node_id, used_bytes, now_ms),
            Command::ExpireNodes { now_ms, timeout_ms } => {
                Ok(self.expire_nodes(now_ms, timeout_ms))
            }
            Command::RecordLayout(layout) => {
                // The first layout stays: a later, different one is answered with the recorded
                // one, and the caller refuses to run with its own.
                Ok(Response::Layout(Some(
                    self.layout.get_or_insert(layout).clone(),
                )))
            }
            Command::ReportSuspect {
                bucket,
                key,
                version_id,
                now_ms,
            } => Ok(self.report_suspect(bucket, key, version_id, now_ms, id_index)),
            Command::ResolveSuspects { resolutions } => Ok(self.resolve_suspects(&resolutions)),
            Command::ResolveReplication { resolutions } => {
                Ok(self.resolve_replication(&resolutions))
            }
            Command::QueueReplication { now_ms, command } => {
                let plan = match self.check_replication_wrapper(&command, now_ms) {
                    Ok(plan) => plan,
                    Err(error) => {
                        return Output {
                            result: Err(error),
                            new_garbage: Vec::new(),
                        };
                    }
                };
                // The inner command is applied at the same id index (as `Conditional` does).
                let mut output = self.apply_at(*command, id_index);
                if let Ok(response) = &mut output.result {
                    self.queue_replication(response, id_index, &plan);
                }
                return output;
            }
            Command::Read(query) => self.answer(&query),
            // Only `apply` unpacks a batch; one met here sits inside a wrapper.
            Command::Batch(_) => Err(MetaError::InvalidArgument {
                reason: "a batch cannot be wrapped or nested".to_owned(),
            }),
            Command::Conditional {
                condition,
                observed,
                command,
            } => {
                return match self.check_condition(&condition, observed, &command) {
                    // The inner command is applied at the same id index.
                    Ok(()) => self.apply_at(*command, id_index),
                    Err(error) => Output {
                        result: Err(error),
                        new_garbage: Vec::new(),
                    },
                };
            }
        };
        Output {
            result,
            new_garbage: effects.garbage,
        }
    }

    /// Records that a log entry carrying no command (openraft's blank and membership entries) was
    /// applied, so `last_applied_index` keeps matching Raft's applied position. An index that does
    /// not grow is ignored.
    pub fn apply_blank(&mut self, log_index: u64) {
        self.last_applied_index = self.last_applied_index.max(log_index);
        self.last_id_index = self.last_id_index.max(log_index);
    }

    /// Answers a query without going through the log (after a read-index or lease check).
    pub fn query(&self, query: &Query) -> Result<Response, MetaError> {
        if !self.role.accepts(query.scope()) {
            return Err(MetaError::WrongRole {
                command: query.name().to_owned(),
                role: self.role,
            });
        }
        self.answer(query)
    }

    fn answer(&self, query: &Query) -> Result<Response, MetaError> {
        match query {
            Query::GetObject {
                bucket,
                key,
                version,
            } => self.get_object(bucket, key, version).map(Response::Object),
            Query::ListObjects(request) => self.list_objects(request).map(Response::ObjectList),
            Query::ListVersions(request) => self.list_versions(request).map(Response::VersionList),
            Query::GetUpload {
                bucket,
                key,
                upload_id,
            } => self
                .upload(bucket, key, *upload_id)
                .cloned()
                .map(Response::Upload),
            Query::ListUploads(request) => self.list_uploads(request).map(Response::UploadList),
            Query::ListParts(request) => self.list_parts(request).map(Response::PartList),
            Query::ListStalePreparing {
                created_before_ms,
                limit,
            } => Ok(Response::Objects(
                self.stale_preparing(*created_before_ms, *limit),
            )),
            Query::ListGarbage { after, limit } => {
                let lower = match after {
                    Some(id) => Bound::Excluded(*id),
                    None => Bound::Unbounded,
                };
                let entries = self
                    .garbage
                    .range((lower, Bound::Unbounded))
                    .take(*limit as usize)
                    .map(|(_, entry)| entry.clone())
                    .collect();
                Ok(Response::Garbage(entries))
            }
            Query::BucketUsage { bucket } => Ok(self.bucket_usage(bucket)),
            Query::BucketStats { bucket } => Ok(Response::BucketStats(self.bucket_stats(bucket))),
            Query::ListSuspects { after, limit } => {
                let after = after.as_ref().map(|position| {
                    (
                        position.bucket.clone(),
                        position.key.clone(),
                        position.version_id,
                    )
                });
                Ok(self.list_suspects(after.as_ref(), *limit))
            }
            Query::ListReplicationQueue { after_seq, limit } => {
                Ok(self.list_replication_queue(*after_seq, *limit))
            }
            Query::GetBucket { bucket } => self.bucket(bucket).cloned().map(Response::Bucket),
            Query::ListBuckets { owner } => Ok(Response::Buckets(
                self.buckets
                    .values()
                    .filter(|record| owner.as_ref().is_none_or(|owner| &record.owner == owner))
                    .cloned()
                    .collect(),
            )),
            Query::GetAccessKey { access_key_id } => self
                .access_keys
                .get(access_key_id)
                .cloned()
                .map(Response::AccessKey)
                .ok_or_else(|| MetaError::NoSuchAccessKey {
                    access_key_id: access_key_id.clone(),
                }),
            Query::ListAccessKeys { owner } => Ok(Response::AccessKeys(
                self.access_keys
                    .values()
                    .filter(|record| owner.as_ref().is_none_or(|owner| &record.owner == owner))
                    .cloned()
                    .collect(),
            )),
            Query::Kms(query) => self.answer_kms(query),
            Query::GetNode { node_id } => self
                .nodes
                .get(node_id)
                .cloned()
                .map(Response::Node)
                .ok_or(MetaError::NoSuchNode { node_id: *node_id }),
            Query::ListNodes => Ok(Response::Nodes(self.nodes.values().cloned().collect())),
            Query::GetLayout => Ok(Response::Layout(self.layout.clone())),
        }
    }

    // ----- shared helpers -------------------------------------------------------------------

    /// Checks a conditional command's condition (see [`Command::Conditional`]). A retried
    /// CommitWrite whose version is already committed passes: the condition held when it first
    /// applied.
    fn check_condition(
        &self,
        condition: &WriteCondition,
        observed: Option<VersionId>,
        command: &Command,
    ) -> Result<(), MetaError> {
        let (bucket, key, selector) = match command {
            Command::CommitWrite(commit) => {
                let version_key = (commit.bucket.clone(), commit.key.clone(), commit.version_id);
                if self
                    .versions
                    .get(&version_key)
                    .is_some_and(|record| record.state == TransactionState::Committed)
                {
                    return Ok(());
                }
                (&commit.bucket, &commit.key, VersionSelector::Current)
            }
            Command::CompleteMultipartUpload(complete) => {
                (&complete.bucket, &complete.key, VersionSelector::Current)
            }
            Command::DeleteObject(delete) => (&delete.bucket, &delete.key, delete.version.clone()),
            other => {
                return Err(MetaError::InvalidArgument {
                    reason: format!("{} cannot be conditional", other.name()),
                });
            }
        };
        let target = self
            .find_committed(bucket, key, &selector)
            .filter(|record| !record.delete_marker);
        let holds = match (condition, target) {
            (WriteCondition::Absent, target) => target.is_none(),
            (WriteCondition::EtagMatches(_), None) => {
                return Err(MetaError::NoSuchKey {
                    bucket: bucket.clone(),
                    key: key.clone(),
                    delete_marker: None,
                });
            }
            (WriteCondition::EtagMatches(etag), Some(record)) => &record.checksums.etag == etag,
        };
        if holds {
            return Ok(());
        }
        // `observed` is an S3 id (the gateway read it from a record or a NoSuchKey answer).
        let current = self
            .current
            .get(&(bucket.clone(), key.clone()))
            .and_then(|version_id| {
                self.versions
                    .get(&(bucket.clone(), key.clone(), *version_id))
            })
            .map(ObjectRecord::s3_version_id);
        if current != observed {
            return Err(MetaError::ConditionalRequestConflict {
                bucket: bucket.clone(),
                key: key.clone(),
            });
        }
        Err(MetaError::PreconditionFailed {
            bucket: bucket.clone(),
            key: key.clone(),
        })
    }

    /// In a Combined instance object commands require the bucket; a partition trusts the gateway.
    pub(crate) fn check_bucket(&self, bucket: &str) -> Result<(), MetaError> {
        if self.role.holds_everything() && !self.buckets.contains_key(bucket) {
            return Err(MetaError::NoSuchBucket {
                bucket: bucket.to_owned(),
            });
        }
        Ok(())
    }

    /// Like `check_bucket`, and also refuses a bucket this partition has sealed: commands that
    /// would create a version or an upload call it, so a sealed, empty bucket stays empty.
    pub(crate) fn check_bucket_open(&self, bucket: &str) -> Result<(), MetaError> {
        self.check_bucket(bucket)?;
        if self.sealed_buckets.contains(bucket) {
            return Err(MetaError::NoSuchBucket {
                bucket: bucket.to_owned(),
            });
        }
        Ok(())
    }

    fn bucket_usage(&self, bucket: &str) -> Response {
        Response::BucketUsage {
            has_versions: self.bucket_has_versions(bucket),
            has_uploads: self.bucket_has_uploads(bucket),
        }
    }

    pub(crate) fn bucket(&self, bucket: &str) -> Result<&BucketRecord, MetaError> {
        self.buckets
            .get(bucket)
            .ok_or_else(|| MetaError::NoSuchBucket {
                bucket: bucket.to_owned(),
            })
    }

    pub(crate) fn bucket_mut(&mut self, bucket: &str) -> Result<&mut BucketRecord, MetaError> {
        self.buckets
            .get_mut(bucket)
            .ok_or_else(|| MetaError::NoSuchBucket {
                bucket: bucket.to_owned(),
            })
    }

    pub(crate) fn upload(
        &self,
        bucket: &str,
        key: &str,
        upload_id: UploadId,
    ) -> Result<&MultipartUpload, MetaError> {
        self.uploads
            .get(&(bucket.to_owned(), key.to_owned(), upload_id))
            .ok_or_else(|| MetaError::NoSuchUpload {
                bucket: bucket.to_owned(),
                key: key.to_owned(),
                upload_id,
            })
    }

    pub(crate) fn bucket_has_versions(&self, bucket: &str) -> bool {
        let start = (bucket.to_owned(), String::new(), VersionId(0));
        self.versions
            .range(start..)
            .next()
            .is_some_and(|((found, _, _), _)| found == bucket)
    }

    pub(crate) fn bucket_has_uploads(&self, bucket: &str) -> bool {
        let start = (bucket.to_owned(), String::new(), UploadId(0));
        self.uploads
            .range(start..)
            .next()
            .is_some_and(|((found, _, _), _)| found == bucket)
    }

    /// All versions (PREPARING and COMMITTED) of one key, oldest version id first.
    pub(crate) fn key_versions<'a>(
        &'a self,
        bucket: &str,
        key: &str,
    ) -> impl Iterator<Item = &'a ObjectRecord> + 'a {
        let start = (bucket.to_owned(), key.to_owned(), VersionId(0));
        let end = (bucket.to_owned(), key.to_owned(), VersionId(u64::MAX));
        self.versions.range(start..=end).map(|(_, record)| record)
    }

    /// Recomputes `current` for one key from `versions`.
    pub(crate) fn refresh_current(&mut self, bucket: &str, key: &str) {
        let newest = self
            .key_versions(bucket, key)
            .filter(|record| record.state == TransactionState::Committed)
            .max_by_key(|record| record.commit_log_index)
            .map(|record| record.version_id);
        let object_key = (bucket.to_owned(), key.to_owned());
        match newest {
            Some(version_id) => {
                self.current.insert(object_key, version_id);
            }
            None => {
                self.current.remove(&object_key);
            }
        }
    }

    /// Removes a version from `versions` and the token index; the caller refreshes `current`.
    pub(crate) fn remove_version(
        &mut self,
        bucket: &str,
        key: &str,
        version_id: VersionId,
    ) -> ObjectRecord {
        let mut record = self
            .versions
            .remove(&(bucket.to_owned(), key.to_owned(), version_id))
            .expect("caller found the version");
        if !record.idempotency_token.is_empty() {
            self.tokens.remove(&(
                bucket.to_owned(),
                key.to_owned(),
                record.idempotency_token.clone(),
            ));
        }
        if record.state == TransactionState::Preparing {
            self.preparing.remove(&preparing_key(&record));
        }
        self.usage_remove(bucket, BucketStats::of_version(&record));
        record.state = TransactionState::Deleted;
        bump(&mut record.record_version);
        record
    }

    pub(crate) fn add_garbage(
        &mut self,
        effects: &mut Effects,
        reason: GarbageReason,
        record: GarbageDraft,
        now_ms: u64,
    ) {
        let garbage_id = GarbageId {
            log_index: effects.id_index,
            sequence: effects.garbage.len() as u32,
        };
        let entry = GarbageRecord {
            garbage_id,
            reason,
            bucket: record.bucket,
            key: record.key,
            version_id: record.version_id,
            upload_id: record.upload_id,
            ec_scheme: record.ec_scheme,
            parts: record.parts,
            created_at_ms: now_ms,
        };
        self.garbage.insert(garbage_id, entry.clone());
        effects.garbage.push(entry);
    }

    /// Turns a removed (DELETED) version into garbage; delete markers hold no shards.
    pub(crate) fn discard_version(
        &mut self,
        effects: &mut Effects,
        reason: GarbageReason,
        record: &ObjectRecord,
        now_ms: u64,
    ) {
        if record.delete_marker {
            return;
        }
        let draft = GarbageDraft {
            bucket: record.bucket.clone(),
            key: record.key.clone(),
            version_id: Some(record.version_id),
            upload_id: record.upload_id,
            ec_scheme: record.erasure.scheme.clone(),
            parts: record.erasure.parts.clone(),
        };
        self.add_garbage(effects, reason, draft, now_ms);
    }

    /// Refuses (object lock) when a null version [`Self::replace_null_versions`] would remove is
    /// protected. Called before the command changes anything.
    pub(crate) fn check_null_versions_removable(
        &self,
        bucket: &str,
        key: &str,
        keep: Option<VersionId>,
        now_ms: u64,
        bypass_governance: bool,
    ) -> Result<(), MetaError> {
        for record in self.key_versions(bucket, key).filter(|record| {
            record.state == TransactionState::Committed
                && record.null_version
                && Some(record.version_id) != keep
        }) {
            check_removable(record, now_ms, bypass_governance)?;
        }
        Ok(())
    }

    /// Removes every COMMITTED null version of the key except `keep`: a new null version replaces
    /// the old one (the unversioned overwrite, or a write while versioning is suspended).
    pub(crate) fn replace_null_versions(
        &mut self,
        bucket: &str,
        key: &str,
        keep: Option<VersionId>,
        reason: GarbageReason,
        effects: &mut Effects,
        now_ms: u64,
    ) -> Vec<ObjectRecord> {
        let victims: Vec<VersionId> = self
            .key_versions(bucket, key)
            .filter(|record| {
                record.state == TransactionState::Committed
                    && record.null_version
                    && Some(record.version_id) != keep
            })
            .map(|record| record.version_id)
            .collect();
        let mut removed = Vec::with_capacity(victims.len());
        for version_id in victims {
            let record = self.remove_version(bucket, key, version_id);
            self.discard_version(effects, reason, &record, now_ms);
            removed.push(record);
        }
        removed
    }

    // ----- consistency ------------------------------------------------------------------------

    /// Rebuilds the derived indexes from `versions` (after loading a snapshot). Fails when two
    /// versions of one key carry the same idempotency token.
    pub(crate) fn rebuild_indexes(&mut self) -> Result<(), String> {
        // One pass over the versions, one key at a time (a key's versions are adjacent), pushing
        // index entries in key order so the maps are bulk-built rather than inserted into.
        let mut current: Vec<(ObjectKey, VersionId)> = Vec::new();
        let mut tokens: Vec<(TokenKey, VersionId)> = Vec::new();
        let mut preparing: Vec<PreparingKey> = Vec::new();
        for ((bucket, key), group) in self.key_groups() {
            preparing.extend(
                group
                    .iter()
                    .filter(|record| record.state == TransactionState::Preparing)
                    .map(|record| preparing_key(record)),
            );
            let newest = group
                .iter()
                .filter(|record| record.state == TransactionState::Committed)
                .max_by_key(|record| record.commit_log_index);
            if let Some(newest) = newest {
                current.push(((bucket.to_owned(), key.to_owned()), newest.version_id));
            }
            let mut group_tokens: Vec<(&str, VersionId)> = group
                .iter()
                .filter(|record| !record.idempotency_token.is_empty())
                .map(|record| (record.idempotency_token.as_str(), record.version_id))
                .collect();
            group_tokens.sort_unstable();
            if group_tokens.windows(2).any(|pair| pair[0].0 == pair[1].0) {
                return Err(format!("two versions of {bucket}/{key} share a token"));
            }
            tokens.extend(group_tokens.into_iter().map(|(token, version_id)| {
                (
                    (bucket.to_owned(), key.to_owned(), token.to_owned()),
                    version_id,
                )
            }));
        }
        self.current = current.into_iter().collect();
        self.tokens = tokens.into_iter().collect();
        self.preparing = preparing.into_iter().collect();
        self.rebuild_usage();
        Ok(())
    }

    /// The versions grouped by object, in key order.
    fn key_groups(&self) -> impl Iterator<Item = ((&str, &str), Vec<&ObjectRecord>)> {
        let mut entries = self.versions.iter().peekable();
        std::iter::from_fn(move || {
            let ((bucket, key, _), first) = entries.next()?;
            let mut group = vec![first];
            while let Some((_, record)) = entries
                .next_if(|((next_bucket, next_key, _), _)| next_bucket == bucket && next_key == key)
            {
                group.push(record);
            }
            Some(((bucket.as_str(), key.as_str()), group))
        })
    }

    /// Checks the record-level invariants of the module header (those not about the indexes).
    pub(crate) fn check_records(&self) -> Result<(), String> {
        for ((bucket, key, version_id), record) in &self.versions {
            if (&record.bucket, &record.key, record.version_id) != (bucket, key, *version_id) {
                return Err(format!("record stored under the wrong key: {bucket}/{key}"));
            }
            if record.state == TransactionState::Deleted {
                return Err(format!("DELETED record left in versions: {bucket}/{key}"));
            }
        }
        for ((bucket, key), group) in self.key_groups() {
            let committed_null_versions = group
                .iter()
                .filter(|record| record.state == TransactionState::Committed && record.null_version)
                .count();
            if committed_null_versions > 1 {
                return Err(format!("two committed null versions of {bucket}/{key}"));
            }
        }
        for ((bucket, key, upload_id), upload) in &self.uploads {
            if (&upload.bucket, &upload.key, upload.upload_id) != (bucket, key, *upload_id) {
                return Err(format!("upload stored under the wrong key: {bucket}/{key}"));
            }
            if upload
                .parts
                .iter()
                .any(|(number, part)| *number != part.part_number)
            {
                return Err(format!(
                    "part stored under the wrong number: {bucket}/{key}"
                ));
            }
        }
        for ((bucket, key, version_id), entry) in &self.suspects {
            if (&entry.bucket, &entry.key, entry.version_id) != (bucket, key, *version_id) {
                return Err(format!(
                    "suspect stored under the wrong key: {bucket}/{key}"
                ));
            }
        }
        for (seq, entry) in &self.replication_queue {
            if *seq != entry.seq {
                return Err(format!(
                    "replication entry {} stored under {seq}",
                    entry.seq
                ));
            }
        }
        if self.replication_queue.len() > crate::replication::MAX_REPLICATION_QUEUE {
            return Err("replication queue over its bound".to_owned());
        }
        if self.suspects.len() > crate::suspects::MAX_SUSPECTS {
            return Err("suspect queue over its bound".to_owned());
        }
        self.check_kms_keys()
    }

    /// Checks every invariant of the module header; returns the first violation found. Tests
    /// call it after every command; it clones the state, so production code does not.
    pub fn check_invariants(&self) -> Result<(), String> {
        let mut rebuilt = self.clone();
        rebuilt.rebuild_indexes()?;
        if rebuilt.current != self.current {
            return Err("current index disagrees with the versions".to_owned());
        }
        if rebuilt.tokens != self.tokens {
            return Err("token index disagrees with the versions".to_owned());
        }
        if rebuilt.preparing != self.preparing {
            return Err("PREPARING index disagrees with the versions".to_owned());
        }
        if rebuilt.usage != self.usage {
            return Err(format!(
                "usage index disagrees with the versions and uploads: kept {:?}, rebuilt {:?}",
                self.usage, rebuilt.usage
            ));
        }
        self.check_records()
    }
}

pub(crate) fn preparing_key(record: &ObjectRecord) -> PreparingKey {
    (
        record.created_at_ms,
        record.bucket.clone(),
        record.key.clone(),
        record.version_id,
    )
}

/// Advances a record version. It only has to differ from the version a compare-and-set caller
/// read, so wrapping is correct and keeps a crafted `u64::MAX` from panicking.
pub(crate) fn bump(record_version: &mut u64) {
    *record_version = record_version.wrapping_add(1);
}

/// The parts of a garbage entry that differ per caller.
pub(crate) struct GarbageDraft {
    pub(crate) bucket: String,
    pub(crate) key: String,
    pub(crate) version_id: Option<VersionId>,
    pub(crate) upload_id: Option<UploadId>,
    pub(crate) ec_scheme: String,
    pub(crate) parts: Vec<PartShards>,
}

/// A part's shard map. Its length is what the blocks hold (the stored length), which differs
/// from the part's size when the upload is encrypted (see [`crate::stored_length`]).
pub(crate) fn part_shards(part: &PartRecord) -> PartShards {
    PartShards {
        part_number: part.part_number,
        length_bytes: part.blocks.iter().map(|block| block.length_bytes).sum(),
        blocks: part.blocks.clone(),
    }
}

/// Refuses (object lock) to remove a version under retention or legal hold.
pub(crate) fn check_removable(
    record: &ObjectRecord,
    now_ms: u64,
    bypass_governance: bool,
) -> Result<(), MetaError> {
    match crate::object_lock::removal_blocked(&record.attributes, now_ms, bypass_governance) {
        None => Ok(()),
        Some(reason) => Err(MetaError::ObjectLocked {
            bucket: record.bucket.clone(),
            key: record.key.clone(),
            version_id: record.version_id,
            reason: lock_reason_text(reason),
        }),
    }
}

pub(crate) fn lock_reason_text(reason: crate::object_lock::LockReason) -> String {
    match reason {
        crate::object_lock::LockReason::LegalHold => "legal hold".to_owned(),
        crate::object_lock::LockReason::Retention(mode) => {
            format!("{} retention", mode.as_str())
        }
    }
}
