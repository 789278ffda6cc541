//! The state machine: key spaces and the apply function.
//!
//! Model: the state is a set of ordered key spaces (BTreeMap, so iteration order, snapshots and a
//! later LMDB layout agree byte for byte). `apply(command, log_index)` is a pure function of
//! (state, command, log_index): no clock, no randomness, no hash-map iteration order.
//!
//! Invariants (checked by `StateMachine::check_invariants`, which the tests call after every
//! command):
//! - `versions` holds PREPARING and COMMITTED records only; a removed record lives on, as DELETED,
//!   only inside a garbage entry until the janitor purges it.
//! - `current[(bucket, key)]` is the COMMITTED version of that key with the highest
//!   `commit_log_index`, and is absent when the key has none.
//! - At most one COMMITTED version per key has `null_version` set.
//! - `tokens[(bucket, key, token)]` points at the version in `versions` that carries that token.
//! - A refused command changes nothing except `last_applied_index`, with one documented exception:
//!   a CommitWrite for an unknown write records its shard map as garbage.

use std::collections::BTreeMap;
use std::ops::Bound;

use crate::command::{
    AbortMultipartUpload, AbortWrite, Command, CommitWrite, CompleteMultipartUpload,
    CreateAccessKey, CreateBucket, CreateMultipartUpload, DeleteObject, ListPartsPage,
    ListPartsRequest, ListUploadsPage, ListUploadsRequest, Output, PrepareWrite, Query,
    RegisterNode, Response, UpdateShardMap, UploadPart, UploadSummary,
};
use crate::error::MetaError;
use crate::records::{
    AccessKeyRecord, AccessKeyStatus, BlockShards, BucketRecord, Checksums, EcScheme, ErasureInfo,
    GarbageId, GarbageReason, GarbageRecord, MultipartUpload, NodeId, NodeRecord, NodeStatus,
    ObjectRecord, PartRecord, PartShards, ReplicationRule, TransactionState, UploadId, VersionId,
    VersionSelector, VersioningState,
};
use crate::role::Role;

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

/// One metadata state machine instance (one Raft group's state).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StateMachine {
    pub(crate) role: Role,
    pub(crate) last_applied_index: u64,
    pub(crate) buckets: BTreeMap<String, BucketRecord>,
    pub(crate) versions: BTreeMap<VersionKey, ObjectRecord>,
    pub(crate) uploads: BTreeMap<UploadKey, MultipartUpload>,
    pub(crate) garbage: BTreeMap<GarbageId, GarbageRecord>,
    pub(crate) access_keys: BTreeMap<String, AccessKeyRecord>,
    pub(crate) nodes: BTreeMap<NodeId, NodeRecord>,
    // Derived indexes: not in the snapshot, rebuilt from `versions` when one is loaded.
    pub(crate) current: BTreeMap<ObjectKey, VersionId>,
    pub(crate) tokens: BTreeMap<TokenKey, VersionId>,
}

/// Garbage produced while applying one command.
struct Effects {
    log_index: u64,
    garbage: Vec<GarbageRecord>,
}

impl StateMachine {
    pub fn new(role: Role) -> Self {
        StateMachine {
            role,
            last_applied_index: 0,
            buckets: BTreeMap::new(),
            versions: BTreeMap::new(),
            uploads: BTreeMap::new(),
            garbage: BTreeMap::new(),
            access_keys: BTreeMap::new(),
            nodes: BTreeMap::new(),
            current: BTreeMap::new(),
            tokens: BTreeMap::new(),
        }
    }

    pub fn role(&self) -> Role {
        self.role
    }

    /// Log index of the last applied command (0 for a fresh instance). Raft reports it as the
    /// state machine's applied position and stores it with snapshots.
    pub fn last_applied_index(&self) -> u64 {
        self.last_applied_index
    }

    /// Applies one log entry. Deterministic: the same state, command and index give the same
    /// output and next state on every replica.
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
            log_index,
            garbage: Vec::new(),
        };
        let result = match command {
            Command::PrepareWrite(command) => self.prepare_write(command, &effects),
            Command::CommitWrite(command) => self.commit_write(command, &mut effects),
            Command::AbortWrite(command) => self.abort_write(command, &mut effects),
            Command::DeleteObject(command) => self.delete_object(command, &mut effects),
            Command::UpdateShardMap(command) => self.update_shard_map(command, &mut effects),
            Command::CreateMultipartUpload(command) => self.create_upload(command, &effects),
            Command::UploadPart(command) => self.upload_part(command, &mut effects),
            Command::CompleteMultipartUpload(command) => {
                self.complete_upload(command, &mut effects)
            }
            Command::AbortMultipartUpload(command) => self.abort_upload(command, &mut effects),
            Command::PurgeGarbage { garbage_ids } => Ok(self.purge_garbage(&garbage_ids)),
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
            Command::CreateAccessKey(command) => self.create_access_key(command),
            Command::RevokeAccessKey {
                access_key_id,
                now_ms,
            } => self.revoke_access_key(&access_key_id, now_ms),
            Command::RegisterNode(command) => Ok(self.register_node(command)),
            Command::Heartbeat {
                node_id,
                used_bytes,
                now_ms,
            } => self.heartbeat(node_id, used_bytes, now_ms),
            Command::ExpireNodes { now_ms, timeout_ms } => {
                Ok(self.expire_nodes(now_ms, timeout_ms))
            }
            Command::Read(query) => self.answer(&query),
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
            Query::BucketUsage { bucket } => Ok(Response::BucketUsage {
                has_versions: self.bucket_has_versions(bucket),
                has_uploads: self.bucket_has_uploads(bucket),
            }),
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
            Query::GetNode { node_id } => self
                .nodes
                .get(node_id)
                .cloned()
                .map(Response::Node)
                .ok_or(MetaError::NoSuchNode { node_id: *node_id }),
            Query::ListNodes => Ok(Response::Nodes(self.nodes.values().cloned().collect())),
        }
    }

    // ----- shared helpers -------------------------------------------------------------------

    /// In a Combined instance object commands require the bucket; a partition trusts the gateway.
    fn check_bucket(&self, bucket: &str) -> Result<(), MetaError> {
        if self.role.holds_everything() && !self.buckets.contains_key(bucket) {
            return Err(MetaError::NoSuchBucket {
                bucket: bucket.to_owned(),
            });
        }
        Ok(())
    }

    fn bucket(&self, bucket: &str) -> Result<&BucketRecord, MetaError> {
        self.buckets
            .get(bucket)
            .ok_or_else(|| MetaError::NoSuchBucket {
                bucket: bucket.to_owned(),
            })
    }

    fn bucket_mut(&mut self, bucket: &str) -> Result<&mut BucketRecord, MetaError> {
        self.buckets
            .get_mut(bucket)
            .ok_or_else(|| MetaError::NoSuchBucket {
                bucket: bucket.to_owned(),
            })
    }

    fn upload(
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

    fn bucket_has_versions(&self, bucket: &str) -> bool {
        let start = (bucket.to_owned(), String::new(), VersionId(0));
        self.versions
            .range(start..)
            .next()
            .is_some_and(|((found, _, _), _)| found == bucket)
    }

    fn bucket_has_uploads(&self, bucket: &str) -> bool {
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
    fn refresh_current(&mut self, bucket: &str, key: &str) {
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
    fn remove_version(&mut self, bucket: &str, key: &str, version_id: VersionId) -> ObjectRecord {
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
        record.state = TransactionState::Deleted;
        bump(&mut record.record_version);
        record
    }

    fn add_garbage(
        &mut self,
        effects: &mut Effects,
        reason: GarbageReason,
        record: GarbageDraft,
        now_ms: u64,
    ) {
        let garbage_id = GarbageId {
            log_index: effects.log_index,
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
    fn discard_version(
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
            upload_id: None,
            ec_scheme: record.erasure.scheme.clone(),
            parts: record.erasure.parts.clone(),
        };
        self.add_garbage(effects, reason, draft, now_ms);
    }

    /// Removes every COMMITTED null version of the key except `keep`: a new null version replaces
    /// the old one (the unversioned overwrite, or a write while versioning is suspended).
    fn replace_null_versions(
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

    // ----- object writes ----------------------------------------------------------------------

    fn prepare_write(
        &mut self,
        command: PrepareWrite,
        effects: &Effects,
    ) -> Result<Response, MetaError> {
        self.check_bucket(&command.bucket)?;
        validate_key(&command.key)?;
        EcScheme::parse(&command.ec_scheme)?;
        if command.piece_size_bytes == 0 {
            return Err(MetaError::InvalidArgument {
                reason: "piece size must be positive".to_owned(),
            });
        }
        let token_key = (
            command.bucket.clone(),
            command.key.clone(),
            command.idempotency_token.clone(),
        );
        if !command.idempotency_token.is_empty()
            && let Some(version_id) = self.tokens.get(&token_key)
        {
            let record =
                &self.versions[&(command.bucket.clone(), command.key.clone(), *version_id)];
            // A token names one logical PUT; the same token with another body is a client bug
            // that must not be answered with the first body's record.
            if record.size_bytes != command.size_bytes
                || record.content_type != command.content_type
                || record.owner != command.owner
            {
                return Err(MetaError::IdempotencyTokenReused {
                    token: command.idempotency_token,
                });
            }
            return Ok(Response::Prepared {
                record: record.clone(),
                retried: true,
            });
        }
        let version_id = VersionId(effects.log_index);
        let record = ObjectRecord {
            bucket: command.bucket.clone(),
            key: command.key.clone(),
            version_id,
            null_version: command.versioning != VersioningState::Enabled,
            delete_marker: false,
            owner: command.owner,
            size_bytes: command.size_bytes,
            checksums: Checksums::default(),
            content_type: command.content_type,
            user_metadata: command.user_metadata,
            storage_class: command.storage_class,
            acl: command.acl,
            state: TransactionState::Preparing,
            idempotency_token: command.idempotency_token.clone(),
            created_at_ms: command.now_ms,
            committed_at_ms: None,
            commit_log_index: 0,
            upload_id: None,
            erasure: ErasureInfo {
                scheme: command.ec_scheme,
                piece_size_bytes: command.piece_size_bytes,
                object_length_bytes: 0,
                parts: Vec::new(),
                degraded: false,
            },
            record_version: 1,
        };
        if !command.idempotency_token.is_empty() {
            self.tokens.insert(token_key, version_id);
        }
        self.versions
            .insert((command.bucket, command.key, version_id), record.clone());
        Ok(Response::Prepared {
            record,
            retried: false,
        })
    }

    fn commit_write(
        &mut self,
        command: CommitWrite,
        effects: &mut Effects,
    ) -> Result<Response, MetaError> {
        let version_key = (
            command.bucket.clone(),
            command.key.clone(),
            command.version_id,
        );
        let Some(record) = self.versions.get(&version_key) else {
            // The write was aborted (janitor timeout) or never prepared, yet its shards exist:
            // record them so the janitor deletes them instead of leaking them.
            let draft = GarbageDraft {
                bucket: command.bucket.clone(),
                key: command.key.clone(),
                version_id: Some(command.version_id),
                upload_id: None,
                ec_scheme: String::new(),
                parts: command.parts,
            };
            self.add_garbage(
                effects,
                GarbageReason::CommitRejected,
                draft,
                command.now_ms,
            );
            return Err(MetaError::NoSuchWrite {
                bucket: command.bucket,
                key: command.key,
                version_id: command.version_id,
            });
        };
        if record.idempotency_token != command.idempotency_token {
            return Err(MetaError::TokenMismatch {
                version_id: command.version_id,
            });
        }
        if record.state == TransactionState::Committed {
            // A retried commit (the gateway lost the first answer) is answered, not refused.
            if record.erasure.parts == command.parts && record.checksums == command.checksums {
                return Ok(Response::Committed {
                    record: record.clone(),
                    retried: true,
                });
            }
            return Err(MetaError::WriteAlreadyCommitted {
                version_id: command.version_id,
            });
        }
        let scheme = EcScheme::parse(&record.erasure.scheme)?;
        let degraded = validate_parts(&scheme, &command.parts, record.size_bytes)?;
        let null_version = record.null_version;
        if null_version {
            self.replace_null_versions(
                &command.bucket,
                &command.key,
                Some(command.version_id),
                GarbageReason::Overwritten,
                effects,
                command.now_ms,
            );
        }
        let record = self
            .versions
            .get_mut(&version_key)
            .expect("looked up above");
        record.state = TransactionState::Committed;
        record.committed_at_ms = Some(command.now_ms);
        record.commit_log_index = effects.log_index;
        record.checksums = command.checksums;
        record.erasure.object_length_bytes = record.size_bytes;
        record.erasure.parts = command.parts;
        record.erasure.degraded = degraded;
        bump(&mut record.record_version);
        let record = record.clone();
        self.current
            .insert((command.bucket, command.key), command.version_id);
        Ok(Response::Committed {
            record,
            retried: false,
        })
    }

    fn abort_write(
        &mut self,
        command: AbortWrite,
        effects: &mut Effects,
    ) -> Result<Response, MetaError> {
        let version_key = (
            command.bucket.clone(),
            command.key.clone(),
            command.version_id,
        );
        match self.versions.get(&version_key).map(|record| record.state) {
            Some(TransactionState::Preparing) => {}
            Some(_) => {
                return Err(MetaError::WriteAlreadyCommitted {
                    version_id: command.version_id,
                });
            }
            None => {
                return Err(MetaError::NoSuchWrite {
                    bucket: command.bucket,
                    key: command.key,
                    version_id: command.version_id,
                });
            }
        }
        let record = self.remove_version(&command.bucket, &command.key, command.version_id);
        self.discard_version(
            effects,
            GarbageReason::WriteAborted,
            &record,
            command.now_ms,
        );
        Ok(Response::Aborted { record })
    }

    fn delete_object(
        &mut self,
        command: DeleteObject,
        effects: &mut Effects,
    ) -> Result<Response, MetaError> {
        self.check_bucket(&command.bucket)?;
        validate_key(&command.key)?;
        let (bucket, key) = (command.bucket.as_str(), command.key.as_str());
        let target = match &command.version {
            VersionSelector::Current => None,
            selector => Some(
                self.find_committed(bucket, key, selector)
                    .map(|record| record.version_id)
                    .ok_or_else(|| no_such_version(bucket, key, selector))?,
            ),
        };
        if let Some(version_id) = target {
            // Deleting one version permanently: no delete marker, the next newest becomes current.
            let removed = self.remove_version(bucket, key, version_id);
            self.discard_version(effects, GarbageReason::Deleted, &removed, command.now_ms);
            self.refresh_current(bucket, key);
            return Ok(Response::Deleted {
                removed: Some(removed),
                delete_marker: None,
            });
        }
        let removed = match command.versioning {
            // Versioning on: nothing is removed, a marker hides the key.
            VersioningState::Enabled => Vec::new(),
            // Off or suspended: the null version goes (and a suspended bucket gets a null marker).
            VersioningState::Unversioned | VersioningState::Suspended => self
                .replace_null_versions(
                    bucket,
                    key,
                    None,
                    GarbageReason::Deleted,
                    effects,
                    command.now_ms,
                ),
        };
        let delete_marker = if command.versioning == VersioningState::Unversioned {
            None
        } else {
            let marker = ObjectRecord {
                bucket: command.bucket.clone(),
                key: command.key.clone(),
                version_id: VersionId(effects.log_index),
                null_version: command.versioning == VersioningState::Suspended,
                delete_marker: true,
                owner: command.owner.clone(),
                size_bytes: 0,
                checksums: Checksums::default(),
                content_type: String::new(),
                user_metadata: BTreeMap::new(),
                storage_class: Default::default(),
                acl: Default::default(),
                state: TransactionState::Committed,
                idempotency_token: String::new(),
                created_at_ms: command.now_ms,
                committed_at_ms: Some(command.now_ms),
                commit_log_index: effects.log_index,
                upload_id: None,
                erasure: ErasureInfo::default(),
                record_version: 1,
            };
            self.versions.insert(
                (
                    command.bucket.clone(),
                    command.key.clone(),
                    marker.version_id,
                ),
                marker.clone(),
            );
            Some(marker)
        };
        self.refresh_current(bucket, key);
        Ok(Response::Deleted {
            // Unversioned and suspended buckets hold at most one committed null version.
            removed: removed.into_iter().next(),
            delete_marker,
        })
    }

    fn update_shard_map(
        &mut self,
        command: UpdateShardMap,
        effects: &mut Effects,
    ) -> Result<Response, MetaError> {
        let version_key = (
            command.bucket.clone(),
            command.key.clone(),
            command.version_id,
        );
        let record = self
            .versions
            .get(&version_key)
            .filter(|record| record.state == TransactionState::Committed && !record.delete_marker)
            .ok_or_else(|| {
                no_such_version(
                    &command.bucket,
                    &command.key,
                    &VersionSelector::Id(command.version_id),
                )
            })?;
        if record.record_version != command.expected_record_version {
            return Err(MetaError::RecordVersionMismatch {
                expected: command.expected_record_version,
                actual: record.record_version,
            });
        }
        let scheme = EcScheme::parse(&record.erasure.scheme)?;
        let degraded = validate_parts(&scheme, &command.parts, record.size_bytes)?;
        if !same_layout(&record.erasure.parts, &command.parts) {
            return Err(MetaError::InvalidShardMap {
                reason: "a healer may move shards but not change parts or block lengths".to_owned(),
            });
        }
        let moved = moved_shards(&record.erasure.parts, &command.parts);
        if !moved.is_empty() {
            let draft = GarbageDraft {
                bucket: command.bucket.clone(),
                key: command.key.clone(),
                version_id: Some(command.version_id),
                upload_id: None,
                ec_scheme: record.erasure.scheme.clone(),
                parts: moved,
            };
            self.add_garbage(effects, GarbageReason::ShardsMoved, draft, command.now_ms);
        }
        let record = self
            .versions
            .get_mut(&version_key)
            .expect("looked up above");
        record.erasure.parts = command.parts;
        record.erasure.degraded = degraded;
        bump(&mut record.record_version);
        Ok(Response::Object(record.clone()))
    }

    // ----- multipart ----------------------------------------------------------------------------

    fn create_upload(
        &mut self,
        command: CreateMultipartUpload,
        effects: &Effects,
    ) -> Result<Response, MetaError> {
        self.check_bucket(&command.bucket)?;
        validate_key(&command.key)?;
        EcScheme::parse(&command.ec_scheme)?;
        if command.piece_size_bytes == 0 {
            return Err(MetaError::InvalidArgument {
                reason: "piece size must be positive".to_owned(),
            });
        }
        let upload = MultipartUpload {
            bucket: command.bucket,
            key: command.key,
            upload_id: UploadId(effects.log_index),
            owner: command.owner,
            content_type: command.content_type,
            user_metadata: command.user_metadata,
            storage_class: command.storage_class,
            acl: command.acl,
            ec_scheme: command.ec_scheme,
            piece_size_bytes: command.piece_size_bytes,
            initiated_at_ms: command.now_ms,
            parts: BTreeMap::new(),
            record_version: 1,
        };
        self.uploads.insert(
            (upload.bucket.clone(), upload.key.clone(), upload.upload_id),
            upload.clone(),
        );
        Ok(Response::Upload(upload))
    }

    fn upload_part(
        &mut self,
        command: UploadPart,
        effects: &mut Effects,
    ) -> Result<Response, MetaError> {
        let upload = self.upload(&command.bucket, &command.key, command.upload_id)?;
        if !(1..=MAX_PART_NUMBER).contains(&command.part_number) {
            return Err(MetaError::InvalidPartNumber {
                part_number: command.part_number,
            });
        }
        let scheme = EcScheme::parse(&upload.ec_scheme)?;
        let shards = PartShards {
            part_number: command.part_number,
            length_bytes: command.size_bytes,
            blocks: command.blocks,
        };
        let degraded = validate_parts(&scheme, std::slice::from_ref(&shards), command.size_bytes)?;
        let ec_scheme = upload.ec_scheme.clone();
        let part = PartRecord {
            part_number: command.part_number,
            size_bytes: command.size_bytes,
            etag: command.etag,
            checksum: command.checksum,
            uploaded_at_ms: command.now_ms,
            blocks: shards.blocks,
            degraded,
        };
        let upload_key = (
            command.bucket.clone(),
            command.key.clone(),
            command.upload_id,
        );
        let upload = self.uploads.get_mut(&upload_key).expect("looked up above");
        bump(&mut upload.record_version);
        let replaced = upload.parts.insert(part.part_number, part.clone());
        if let Some(old) = replaced {
            let draft = GarbageDraft {
                bucket: command.bucket,
                key: command.key,
                version_id: None,
                upload_id: Some(command.upload_id),
                ec_scheme,
                parts: vec![part_shards(&old)],
            };
            self.add_garbage(effects, GarbageReason::PartReplaced, draft, command.now_ms);
        }
        Ok(Response::Part(part))
    }

    fn complete_upload(
        &mut self,
        command: CompleteMultipartUpload,
        effects: &mut Effects,
    ) -> Result<Response, MetaError> {
        let upload_key = (
            command.bucket.clone(),
            command.key.clone(),
            command.upload_id,
        );
        let Some(upload) = self.uploads.get(&upload_key) else {
            // A retried completion finds the version it created instead of the upload.
            if let Some(record) = self
                .key_versions(&command.bucket, &command.key)
                .find(|record| record.upload_id == Some(command.upload_id))
            {
                return Ok(Response::Committed {
                    record: record.clone(),
                    retried: true,
                });
            }
            return Err(MetaError::NoSuchUpload {
                bucket: command.bucket,
                key: command.key,
                upload_id: command.upload_id,
            });
        };
        if command.parts.is_empty() {
            return Err(MetaError::InvalidArgument {
                reason: "a completion lists at least one part".to_owned(),
            });
        }
        for pair in command.parts.windows(2) {
            if pair[1].part_number <= pair[0].part_number {
                return Err(MetaError::InvalidPartOrder {
                    part_number: pair[1].part_number,
                });
            }
        }
        let last_index = command.parts.len() - 1;
        let mut object_parts = Vec::with_capacity(command.parts.len());
        let mut size_bytes: u64 = 0;
        for (index, listed) in command.parts.iter().enumerate() {
            let part =
                upload
                    .parts
                    .get(&listed.part_number)
                    .ok_or_else(|| MetaError::InvalidPart {
                        part_number: listed.part_number,
                        reason: "not uploaded".to_owned(),
                    })?;
            // Clients send ETags quoted or bare; both name the same part.
            if listed.etag.trim_matches('"') != part.etag.trim_matches('"') {
                return Err(MetaError::InvalidPart {
                    part_number: listed.part_number,
                    reason: "ETag does not match the uploaded part".to_owned(),
                });
            }
            if index != last_index && part.size_bytes < MIN_PART_SIZE_BYTES {
                return Err(MetaError::EntityTooSmall {
                    part_number: part.part_number,
                    size_bytes: part.size_bytes,
                    minimum_bytes: MIN_PART_SIZE_BYTES,
                });
            }
            size_bytes = size_bytes.checked_add(part.size_bytes).ok_or_else(|| {
                MetaError::InvalidArgument {
                    reason: "parts add up to more than 2^64 bytes".to_owned(),
                }
            })?;
            object_parts.push(part_shards(part));
        }
        let degraded = command
            .parts
            .iter()
            .any(|listed| upload.parts[&listed.part_number].degraded);
        let upload = self.uploads.remove(&upload_key).expect("looked up above");
        let unlisted: Vec<PartShards> = upload
            .parts
            .values()
            .filter(|part| {
                command
                    .parts
                    .binary_search_by_key(&part.part_number, |listed| listed.part_number)
                    .is_err()
            })
            .map(part_shards)
            .collect();
        if !unlisted.is_empty() {
            let draft = GarbageDraft {
                bucket: command.bucket.clone(),
                key: command.key.clone(),
                version_id: None,
                upload_id: Some(command.upload_id),
                ec_scheme: upload.ec_scheme.clone(),
                parts: unlisted,
            };
            self.add_garbage(effects, GarbageReason::PartDiscarded, draft, command.now_ms);
        }
        let null_version = command.versioning != VersioningState::Enabled;
        if null_version {
            self.replace_null_versions(
                &command.bucket,
                &command.key,
                None,
                GarbageReason::Overwritten,
                effects,
                command.now_ms,
            );
        }
        let version_id = VersionId(effects.log_index);
        let record = ObjectRecord {
            bucket: command.bucket.clone(),
            key: command.key.clone(),
            version_id,
            null_version,
            delete_marker: false,
            owner: upload.owner,
            size_bytes,
            checksums: command.checksums,
            content_type: upload.content_type,
            user_metadata: upload.user_metadata,
            storage_class: upload.storage_class,
            acl: upload.acl,
            state: TransactionState::Committed,
            idempotency_token: String::new(),
            created_at_ms: upload.initiated_at_ms,
            committed_at_ms: Some(command.now_ms),
            commit_log_index: effects.log_index,
            upload_id: Some(command.upload_id),
            erasure: ErasureInfo {
                scheme: upload.ec_scheme,
                piece_size_bytes: upload.piece_size_bytes,
                object_length_bytes: size_bytes,
                parts: object_parts,
                degraded,
            },
            record_version: 1,
        };
        self.versions.insert(
            (command.bucket.clone(), command.key.clone(), version_id),
            record.clone(),
        );
        self.current
            .insert((command.bucket, command.key), version_id);
        Ok(Response::Committed {
            record,
            retried: false,
        })
    }

    fn abort_upload(
        &mut self,
        command: AbortMultipartUpload,
        effects: &mut Effects,
    ) -> Result<Response, MetaError> {
        self.upload(&command.bucket, &command.key, command.upload_id)?;
        let upload = self
            .uploads
            .remove(&(
                command.bucket.clone(),
                command.key.clone(),
                command.upload_id,
            ))
            .expect("looked up above");
        if !upload.parts.is_empty() {
            let draft = GarbageDraft {
                bucket: command.bucket,
                key: command.key,
                version_id: None,
                upload_id: Some(command.upload_id),
                ec_scheme: upload.ec_scheme.clone(),
                parts: upload.parts.values().map(part_shards).collect(),
            };
            self.add_garbage(effects, GarbageReason::PartDiscarded, draft, command.now_ms);
        }
        Ok(Response::UploadAborted(upload))
    }

    fn purge_garbage(&mut self, garbage_ids: &[GarbageId]) -> Response {
        let purged_count = garbage_ids
            .iter()
            .filter(|id| self.garbage.remove(id).is_some())
            .count() as u32;
        Response::Purged { purged_count }
    }

    // ----- object reads -------------------------------------------------------------------------

    /// The COMMITTED version a selector names (delete markers included).
    fn find_committed(
        &self,
        bucket: &str,
        key: &str,
        selector: &VersionSelector,
    ) -> Option<&ObjectRecord> {
        let committed = |record: &&ObjectRecord| record.state == TransactionState::Committed;
        match selector {
            VersionSelector::Current => {
                let version_id = self.current.get(&(bucket.to_owned(), key.to_owned()))?;
                self.versions
                    .get(&(bucket.to_owned(), key.to_owned(), *version_id))
            }
            VersionSelector::Id(version_id) => self
                .versions
                .get(&(bucket.to_owned(), key.to_owned(), *version_id))
                .filter(committed),
            VersionSelector::Null => self
                .key_versions(bucket, key)
                .filter(committed)
                .find(|record| record.null_version),
        }
    }

    fn get_object(
        &self,
        bucket: &str,
        key: &str,
        selector: &VersionSelector,
    ) -> Result<ObjectRecord, MetaError> {
        self.check_bucket(bucket)?;
        let found = self.find_committed(bucket, key, selector);
        match (selector, found) {
            (VersionSelector::Current, None) => Err(MetaError::NoSuchKey {
                bucket: bucket.to_owned(),
                key: key.to_owned(),
                delete_marker: None,
            }),
            (VersionSelector::Current, Some(record)) if record.delete_marker => {
                Err(MetaError::NoSuchKey {
                    bucket: bucket.to_owned(),
                    key: key.to_owned(),
                    delete_marker: Some(record.version_id),
                })
            }
            (_, None) => Err(no_such_version(bucket, key, selector)),
            (_, Some(record)) if record.delete_marker => {
                Err(MetaError::MethodNotAllowedOnDeleteMarker {
                    version_id: record.version_id,
                })
            }
            (_, Some(record)) => Ok(record.clone()),
        }
    }

    fn list_uploads(&self, request: &ListUploadsRequest) -> Result<ListUploadsPage, MetaError> {
        self.check_bucket(&request.bucket)?;
        let max_uploads = request.max_uploads.min(MAX_LIST_KEYS) as usize;
        let bucket = request.bucket.clone();
        let prefix_start = (bucket.clone(), request.prefix.clone(), UploadId(0));
        let lower = match (&request.key_marker, request.upload_id_marker) {
            (Some(key), Some(upload_id)) => {
                Bound::Excluded((bucket.clone(), key.clone(), upload_id))
            }
            (Some(key), None) => Bound::Excluded((bucket.clone(), key.clone(), UploadId(u64::MAX))),
            (None, _) => Bound::Included(prefix_start.clone()),
        };
        // A marker before the prefix starts the listing at the prefix.
        let lower = match lower {
            Bound::Excluded(marker) if marker < prefix_start => Bound::Included(prefix_start),
            other => other,
        };
        let mut page = ListUploadsPage::default();
        let mut matching = self
            .uploads
            .range((lower, Bound::Unbounded))
            .take_while(|((found_bucket, key, _), _)| {
                *found_bucket == bucket && key.starts_with(&request.prefix)
            })
            .map(|(_, upload)| upload);
        for upload in matching.by_ref().take(max_uploads) {
            page.uploads.push(UploadSummary {
                key: upload.key.clone(),
                upload_id: upload.upload_id,
                owner: upload.owner.clone(),
                storage_class: upload.storage_class,
                initiated_at_ms: upload.initiated_at_ms,
            });
        }
        if max_uploads > 0 && matching.next().is_some() {
            let last = page.uploads.last().expect("page is full");
            page.is_truncated = true;
            page.next_key_marker = Some(last.key.clone());
            page.next_upload_id_marker = Some(last.upload_id);
        }
        Ok(page)
    }

    fn list_parts(&self, request: &ListPartsRequest) -> Result<ListPartsPage, MetaError> {
        let upload = self.upload(&request.bucket, &request.key, request.upload_id)?;
        let max_parts = request.max_parts.min(MAX_LIST_KEYS) as usize;
        let mut page = ListPartsPage::default();
        let mut remaining = upload
            .parts
            .range((
                Bound::Excluded(request.part_number_marker),
                Bound::Unbounded,
            ))
            .map(|(_, part)| part);
        page.parts
            .extend(remaining.by_ref().take(max_parts).cloned());
        if max_parts > 0 && remaining.next().is_some() {
            page.is_truncated = true;
            page.next_part_number_marker = page.parts.last().map(|part| part.part_number);
        }
        Ok(page)
    }

    /// PREPARING versions created before `created_before_ms`, oldest first. A full scan: the
    /// janitor runs rarely, and an index would be one more thing to keep consistent.
    fn stale_preparing(&self, created_before_ms: u64, limit: u32) -> Vec<ObjectRecord> {
        let mut stale: Vec<&ObjectRecord> = self
            .versions
            .values()
            .filter(|record| {
                record.state == TransactionState::Preparing
                    && record.created_at_ms < created_before_ms
            })
            .collect();
        stale.sort_by(|left, right| {
            (left.created_at_ms, &left.bucket, &left.key, left.version_id).cmp(&(
                right.created_at_ms,
                &right.bucket,
                &right.key,
                right.version_id,
            ))
        });
        stale.into_iter().take(limit as usize).cloned().collect()
    }

    // ----- bucket service -----------------------------------------------------------------------

    fn create_bucket(&mut self, command: CreateBucket) -> Result<Response, MetaError> {
        validate_bucket_name(&command.bucket)?;
        EcScheme::parse(&command.ec_scheme)?;
        if let Some(existing) = self.buckets.get(&command.bucket) {
            return Err(if existing.owner == command.owner {
                MetaError::BucketAlreadyOwnedByYou {
                    bucket: command.bucket,
                }
            } else {
                MetaError::BucketAlreadyExists {
                    bucket: command.bucket,
                }
            });
        }
        let record = BucketRecord {
            name: command.bucket.clone(),
            owner: command.owner,
            primary_region: command.primary_region,
            created_at_ms: command.now_ms,
            versioning: VersioningState::Unversioned,
            replication_rules: Vec::new(),
            ec_scheme: command.ec_scheme,
            acl: command.acl,
            record_version: 1,
        };
        self.buckets.insert(command.bucket, record.clone());
        Ok(Response::Bucket(record))
    }

    fn delete_bucket(&mut self, bucket: &str) -> Result<Response, MetaError> {
        self.bucket(bucket)?;
        if self.role.holds_everything()
            && (self.bucket_has_versions(bucket) || self.bucket_has_uploads(bucket))
        {
            return Err(MetaError::BucketNotEmpty {
                bucket: bucket.to_owned(),
            });
        }
        let record = self.buckets.remove(bucket).expect("looked up above");
        Ok(Response::BucketDeleted(record))
    }

    fn put_bucket_versioning(
        &mut self,
        bucket: &str,
        versioning: VersioningState,
    ) -> Result<Response, MetaError> {
        let record = self.bucket_mut(bucket)?;
        if versioning == VersioningState::Unversioned {
            return Err(MetaError::IllegalVersioningConfiguration {
                bucket: bucket.to_owned(),
            });
        }
        record.versioning = versioning;
        bump(&mut record.record_version);
        Ok(Response::Bucket(record.clone()))
    }

    fn put_bucket_replication(
        &mut self,
        bucket: &str,
        rules: Vec<ReplicationRule>,
    ) -> Result<Response, MetaError> {
        self.bucket(bucket)?;
        for (index, rule) in rules.iter().enumerate() {
            if rule.rule_id.is_empty() || rule.destination_bucket.is_empty() {
                return Err(MetaError::InvalidArgument {
                    reason: "a replication rule needs an id and a destination bucket".to_owned(),
                });
            }
            if rules[..index]
                .iter()
                .any(|earlier| earlier.rule_id == rule.rule_id)
            {
                return Err(MetaError::InvalidArgument {
                    reason: format!("replication rule id {:?} is repeated", rule.rule_id),
                });
            }
        }
        let record = self.bucket_mut(bucket)?;
        record.replication_rules = rules;
        bump(&mut record.record_version);
        Ok(Response::Bucket(record.clone()))
    }

    fn put_bucket_ec_scheme(
        &mut self,
        bucket: &str,
        ec_scheme: String,
    ) -> Result<Response, MetaError> {
        EcScheme::parse(&ec_scheme)?;
        let record = self.bucket_mut(bucket)?;
        record.ec_scheme = ec_scheme;
        bump(&mut record.record_version);
        Ok(Response::Bucket(record.clone()))
    }

    fn create_access_key(&mut self, command: CreateAccessKey) -> Result<Response, MetaError> {
        if command.access_key_id.is_empty() || command.secret_access_key.is_empty() {
            return Err(MetaError::InvalidArgument {
                reason: "access key id and secret must be non-empty".to_owned(),
            });
        }
        if self.access_keys.contains_key(&command.access_key_id) {
            return Err(MetaError::AccessKeyAlreadyExists {
                access_key_id: command.access_key_id,
            });
        }
        let record = AccessKeyRecord {
            access_key_id: command.access_key_id.clone(),
            secret_access_key: command.secret_access_key,
            owner: command.owner,
            created_at_ms: command.now_ms,
            status: AccessKeyStatus::Active,
            revoked_at_ms: None,
            record_version: 1,
        };
        self.access_keys
            .insert(command.access_key_id, record.clone());
        Ok(Response::AccessKey(record))
    }

    fn revoke_access_key(
        &mut self,
        access_key_id: &str,
        now_ms: u64,
    ) -> Result<Response, MetaError> {
        let record =
            self.access_keys
                .get_mut(access_key_id)
                .ok_or_else(|| MetaError::NoSuchAccessKey {
                    access_key_id: access_key_id.to_owned(),
                })?;
        // Revoking twice is a retry, not an error; the first revocation time stays.
        if record.status == AccessKeyStatus::Active {
            record.status = AccessKeyStatus::Revoked;
            record.revoked_at_ms = Some(now_ms);
            bump(&mut record.record_version);
        }
        Ok(Response::AccessKey(record.clone()))
    }

    fn register_node(&mut self, command: RegisterNode) -> Response {
        let record = self
            .nodes
            .entry(command.node_id)
            .and_modify(|record| {
                record.address = command.address.clone();
                record.availability_zone = command.availability_zone.clone();
                record.capacity_bytes = command.capacity_bytes;
                record.status = NodeStatus::Up;
                record.last_heartbeat_ms = record.last_heartbeat_ms.max(command.now_ms);
                bump(&mut record.record_version);
            })
            .or_insert_with(|| NodeRecord {
                node_id: command.node_id,
                address: command.address.clone(),
                availability_zone: command.availability_zone.clone(),
                capacity_bytes: command.capacity_bytes,
                used_bytes: 0,
                status: NodeStatus::Up,
                registered_at_ms: command.now_ms,
                last_heartbeat_ms: command.now_ms,
                record_version: 1,
            });
        Response::Node(record.clone())
    }

    fn heartbeat(
        &mut self,
        node_id: NodeId,
        used_bytes: u64,
        now_ms: u64,
    ) -> Result<Response, MetaError> {
        let record = self
            .nodes
            .get_mut(&node_id)
            .ok_or(MetaError::NoSuchNode { node_id })?;
        let came_up = record.status == NodeStatus::Down;
        record.status = NodeStatus::Up;
        record.used_bytes = used_bytes;
        // A heartbeat delayed in the log must not move the clock backwards.
        record.last_heartbeat_ms = record.last_heartbeat_ms.max(now_ms);
        bump(&mut record.record_version);
        Ok(Response::Heartbeat {
            node: record.clone(),
            came_up,
        })
    }

    fn expire_nodes(&mut self, now_ms: u64, timeout_ms: u64) -> Response {
        let mut expired = Vec::new();
        for record in self.nodes.values_mut() {
            if record.status == NodeStatus::Up
                && now_ms.saturating_sub(record.last_heartbeat_ms) > timeout_ms
            {
                record.status = NodeStatus::Down;
                bump(&mut record.record_version);
                expired.push(record.node_id);
            }
        }
        Response::NodesExpired(expired)
    }

    // ----- consistency ------------------------------------------------------------------------

    /// Rebuilds the derived indexes from `versions` (after loading a snapshot). Fails when two
    /// versions of one key carry the same idempotency token.
    pub(crate) fn rebuild_indexes(&mut self) -> Result<(), String> {
        self.current.clear();
        self.tokens.clear();
        let mut newest: BTreeMap<ObjectKey, (u64, VersionId)> = BTreeMap::new();
        for ((bucket, key, version_id), record) in &self.versions {
            if !record.idempotency_token.is_empty() {
                let token_key = (
                    bucket.clone(),
                    key.clone(),
                    record.idempotency_token.clone(),
                );
                if self.tokens.insert(token_key, *version_id).is_some() {
                    return Err(format!("two versions of {bucket}/{key} share a token"));
                }
            }
            if record.state == TransactionState::Committed {
                let entry = newest
                    .entry((bucket.clone(), key.clone()))
                    .or_insert((record.commit_log_index, *version_id));
                if record.commit_log_index > entry.0 {
                    *entry = (record.commit_log_index, *version_id);
                }
            }
        }
        self.current = newest
            .into_iter()
            .map(|(object_key, (_, version_id))| (object_key, version_id))
            .collect();
        Ok(())
    }

    /// Checks the record-level invariants of the module header (those not about the indexes).
    pub(crate) fn check_records(&self) -> Result<(), String> {
        let mut null_versions: BTreeMap<ObjectKey, u32> = BTreeMap::new();
        for ((bucket, key, version_id), record) in &self.versions {
            if (&record.bucket, &record.key, record.version_id) != (bucket, key, *version_id) {
                return Err(format!("record stored under the wrong key: {bucket}/{key}"));
            }
            if record.state == TransactionState::Deleted {
                return Err(format!("DELETED record left in versions: {bucket}/{key}"));
            }
            if record.state == TransactionState::Committed && record.null_version {
                *null_versions
                    .entry((bucket.clone(), key.clone()))
                    .or_default() += 1;
            }
        }
        if let Some(((bucket, key), _)) = null_versions.iter().find(|(_, count)| **count > 1) {
            return Err(format!("two committed null versions of {bucket}/{key}"));
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
        Ok(())
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
        self.check_records()
    }
}

/// Advances a record version. It only has to differ from the version a compare-and-set caller
/// read, so wrapping is correct and keeps a crafted `u64::MAX` from panicking.
fn bump(record_version: &mut u64) {
    *record_version = record_version.wrapping_add(1);
}

/// The parts of a garbage entry that differ per caller.
struct GarbageDraft {
    bucket: String,
    key: String,
    version_id: Option<VersionId>,
    upload_id: Option<UploadId>,
    ec_scheme: String,
    parts: Vec<PartShards>,
}

fn part_shards(part: &PartRecord) -> PartShards {
    PartShards {
        part_number: part.part_number,
        length_bytes: part.size_bytes,
        blocks: part.blocks.clone(),
    }
}

fn no_such_version(bucket: &str, key: &str, selector: &VersionSelector) -> MetaError {
    MetaError::NoSuchVersion {
        bucket: bucket.to_owned(),
        key: key.to_owned(),
        version: match selector {
            VersionSelector::Id(version_id) => version_id.to_string(),
            VersionSelector::Null | VersionSelector::Current => "null".to_owned(),
        },
    }
}

fn validate_key(key: &str) -> Result<(), MetaError> {
    if key.is_empty() || key.len() > MAX_KEY_BYTES {
        return Err(MetaError::InvalidArgument {
            reason: format!("a key has 1 to {MAX_KEY_BYTES} bytes"),
        });
    }
    Ok(())
}

/// S3's bucket naming rules (the ones that matter for DNS-style addressing).
pub fn validate_bucket_name(bucket: &str) -> Result<(), MetaError> {
    let invalid = |reason: &str| MetaError::InvalidBucketName {
        bucket: bucket.to_owned(),
        reason: reason.to_owned(),
    };
    if !(3..=63).contains(&bucket.len()) {
        return Err(invalid("a bucket name has 3 to 63 characters"));
    }
    if !bucket
        .bytes()
        .all(|byte| matches!(byte, b'a'..=b'z' | b'0'..=b'9' | b'.' | b'-'))
    {
        return Err(invalid("only lowercase letters, digits, dots and hyphens"));
    }
    let alphanumeric = |byte: u8| byte.is_ascii_lowercase() || byte.is_ascii_digit();
    let bytes = bucket.as_bytes();
    if !alphanumeric(bytes[0]) || !alphanumeric(bytes[bytes.len() - 1]) {
        return Err(invalid("must begin and end with a letter or digit"));
    }
    if bucket.contains("..") {
        return Err(invalid("no two adjacent dots"));
    }
    let labels: Vec<&str> = bucket.split('.').collect();
    if labels.len() == 4 && labels.iter().all(|label| label.parse::<u8>().is_ok()) {
        return Err(invalid("must not look like an IP address"));
    }
    Ok(())
}

/// Checks a shard map against the scheme and the object size; returns whether any block is
/// degraded (committed with fewer than k+m shards).
fn validate_parts(
    scheme: &EcScheme,
    parts: &[PartShards],
    expected_size_bytes: u64,
) -> Result<bool, MetaError> {
    let invalid = |reason: String| Err(MetaError::InvalidShardMap { reason });
    let mut total_bytes: u64 = 0;
    let mut degraded = false;
    let mut previous_part_number = 0;
    for part in parts {
        if part.part_number <= previous_part_number {
            return invalid(format!(
                "part {} is out of order or repeated",
                part.part_number
            ));
        }
        previous_part_number = part.part_number;
        let mut part_bytes: u64 = 0;
        for (block_index, block) in part.blocks.iter().enumerate() {
            if block.length_bytes == 0 {
                return invalid(format!(
                    "part {} block {block_index} is empty",
                    part.part_number
                ));
            }
            let shard_count = block.shards.len() as u64;
            if shard_count < u64::from(scheme.minimum_commit_shards()) {
                return invalid(format!(
                    "part {} block {block_index} has {shard_count} shards, fewer than {}",
                    part.part_number,
                    scheme.minimum_commit_shards()
                ));
            }
            if let Some((index, _)) = block
                .shards
                .iter()
                .find(|(index, _)| index.0 >= scheme.total_shards())
            {
                return invalid(format!(
                    "part {} block {block_index} names shard {} of a {scheme} scheme",
                    part.part_number, index.0
                ));
            }
            degraded |= shard_count < u64::from(scheme.total_shards());
            part_bytes = part_bytes.saturating_add(block.length_bytes);
        }
        if part_bytes != part.length_bytes {
            return invalid(format!(
                "part {} blocks cover {part_bytes} bytes, the part has {}",
                part.part_number, part.length_bytes
            ));
        }
        total_bytes = total_bytes.saturating_add(part.length_bytes);
    }
    if total_bytes != expected_size_bytes {
        return invalid(format!(
            "shard map covers {total_bytes} bytes, the object has {expected_size_bytes}"
        ));
    }
    Ok(degraded)
}

fn same_layout(old: &[PartShards], new: &[PartShards]) -> bool {
    old.len() == new.len()
        && old.iter().zip(new).all(|(old, new)| {
            old.part_number == new.part_number
                && old.length_bytes == new.length_bytes
                && old.blocks.len() == new.blocks.len()
                && old
                    .blocks
                    .iter()
                    .zip(&new.blocks)
                    .all(|(old, new)| old.length_bytes == new.length_bytes)
        })
}

/// Old placements that the new map no longer names (the shards a healer moved away from).
fn moved_shards(old: &[PartShards], new: &[PartShards]) -> Vec<PartShards> {
    let mut moved = Vec::new();
    for (old_part, new_part) in old.iter().zip(new) {
        let blocks: Vec<BlockShards> = old_part
            .blocks
            .iter()
            .zip(&new_part.blocks)
            .map(|(old_block, new_block)| BlockShards {
                length_bytes: old_block.length_bytes,
                shards: old_block
                    .shards
                    .iter()
                    .filter(|(index, placement)| new_block.shards.get(index) != Some(*placement))
                    .map(|(index, placement)| (*index, placement.clone()))
                    .collect(),
            })
            .collect();
        if blocks.iter().any(|block| !block.shards.is_empty()) {
            moved.push(PartShards {
                part_number: old_part.part_number,
                length_bytes: old_part.length_bytes,
                blocks,
            });
        }
    }
    moved
}
