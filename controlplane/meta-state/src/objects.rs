//! Single-PUT object versions: PrepareWrite, CommitWrite, AbortWrite, DeleteObject, the healer's
//! UpdateShardMap, GetObject and the janitor's stale-PREPARING query.
//!
//! Model: a PUT is PREPARING from PrepareWrite (invisible, named by the token) until CommitWrite
//! makes it COMMITTED and current. A committed null version (written while versioning is off or
//! suspended) replaces the key's previous null version, which becomes garbage; with versioning on,
//! versions accumulate and DeleteObject adds delete markers.

use std::collections::BTreeMap;

use crate::attributes::check_attributes;
use crate::command::*;
use crate::error::MetaError;
use crate::machine::{Effects, GarbageDraft, MAX_KEY_BYTES, StateMachine, bump, preparing_key};
use crate::records::*;
use crate::stored_length::stored_length_bytes;
use crate::usage::BucketStats;

impl StateMachine {
    pub(crate) fn prepare_write(
        &mut self,
        command: PrepareWrite,
        effects: &Effects,
    ) -> Result<Response, MetaError> {
        self.check_bucket_open(&command.bucket)?;
        validate_key(&command.key)?;
        EcScheme::parse(&command.ec_scheme)?;
        check_attributes(&command.attributes)?;
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
        self.check_replica_version(&command.bucket, &command.key, &command.attributes)?;
        let version_id = self.new_version_id(effects.id_index);
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
            attributes: command.attributes,
        };
        if !command.idempotency_token.is_empty() {
            self.tokens.insert(token_key, version_id);
        }
        self.preparing.insert(preparing_key(&record));
        self.usage_add(&command.bucket, BucketStats::of_version(&record));
        self.versions
            .insert((command.bucket, command.key, version_id), record.clone());
        Ok(Response::Prepared {
            record,
            retried: false,
        })
    }

    pub(crate) fn commit_write(
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
        let stored_length_bytes = stored_length_bytes(&record.attributes, record.size_bytes);
        let degraded = validate_parts(
            &scheme,
            record.erasure.piece_size_bytes,
            &command.parts,
            stored_length_bytes,
        )?;
        let null_version = record.null_version;
        if null_version {
            self.check_null_versions_removable(
                &command.bucket,
                &command.key,
                Some(command.version_id),
                command.now_ms,
                false,
            )?;
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
        let was_preparing = preparing_key(record);
        let counted_before = BucketStats::of_version(record);
        record.state = TransactionState::Committed;
        record.committed_at_ms = Some(command.now_ms);
        record.commit_log_index = effects.id_index;
        record.checksums = command.checksums;
        record.erasure.object_length_bytes = stored_length_bytes;
        record.erasure.parts = command.parts;
        record.erasure.degraded = degraded;
        bump(&mut record.record_version);
        let record = record.clone();
        self.preparing.remove(&was_preparing);
        self.usage_remove(&command.bucket, counted_before);
        self.usage_add(&command.bucket, BucketStats::of_version(&record));
        self.current
            .insert((command.bucket, command.key), command.version_id);
        Ok(Response::Committed {
            record,
            retried: false,
        })
    }

    pub(crate) fn abort_write(
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

    pub(crate) fn delete_object(
        &mut self,
        command: DeleteObject,
        effects: &mut Effects,
    ) -> Result<Response, MetaError> {
        self.delete_object_with(command, Attributes::new(), effects)
    }

    /// A replicator's delete marker ([`Command::ReplicaDeleteMarker`]): a DeleteObject of the
    /// current version in a versioned bucket whose marker carries `attributes` (the replica
    /// status, the source, and the source's version id to keep).
    pub(crate) fn replica_delete_marker(
        &mut self,
        command: DeleteObject,
        attributes: Attributes,
        effects: &mut Effects,
    ) -> Result<Response, MetaError> {
        if command.version != VersionSelector::Current
            || command.versioning == VersioningState::Unversioned
        {
            return Err(MetaError::InvalidArgument {
                reason: "a replica delete marker deletes the current version of a versioned key"
                    .to_owned(),
            });
        }
        check_attributes(&attributes)?;
        self.check_replica_version(&command.bucket, &command.key, &attributes)?;
        self.delete_object_with(command, attributes, effects)
    }

    /// DeleteObject; a delete marker it creates gets `marker_attributes`.
    fn delete_object_with(
        &mut self,
        command: DeleteObject,
        marker_attributes: Attributes,
        effects: &mut Effects,
    ) -> Result<Response, MetaError> {
        // Removing versions is allowed in a sealed bucket; adding a delete marker is not.
        let adds_marker = command.version == VersionSelector::Current
            && command.versioning != VersioningState::Unversioned;
        if adds_marker {
            self.check_bucket_open(&command.bucket)?;
        } else {
            self.check_bucket(&command.bucket)?;
        }
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
            // Object lock: a protected version is never removed, whoever asks.
            crate::machine::check_removable(
                &self.versions[&(bucket.to_owned(), key.to_owned(), version_id)],
                command.now_ms,
                effects.bypass_governance,
            )?;
            // Deleting one version permanently: no delete marker, the next newest becomes current.
            let removed = self.remove_version(bucket, key, version_id);
            self.discard_version(effects, GarbageReason::Deleted, &removed, command.now_ms);
            self.refresh_current(bucket, key);
            return Ok(Response::Deleted {
                removed: Some(removed),
                delete_marker: None,
            });
        }
        if command.versioning != VersioningState::Enabled {
            self.check_null_versions_removable(
                bucket,
                key,
                None,
                command.now_ms,
                effects.bypass_governance,
            )?;
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
                version_id: self.new_version_id(effects.id_index),
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
                commit_log_index: effects.id_index,
                upload_id: None,
                erasure: ErasureInfo::default(),
                record_version: 1,
                attributes: marker_attributes,
            };
            self.usage_add(&command.bucket, BucketStats::of_version(&marker));
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

    pub(crate) fn update_shard_map(
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
        let degraded = validate_parts(
            &scheme,
            record.erasure.piece_size_bytes,
            &command.parts,
            stored_length_bytes(&record.attributes, record.size_bytes),
        )?;
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
                upload_id: record.upload_id,
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

    /// The COMMITTED version a selector names (delete markers included).
    pub(crate) fn find_committed(
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
                .filter(committed)
                .or_else(|| self.find_replica_version(bucket, key, *version_id)),
            VersionSelector::Null => self
                .key_versions(bucket, key)
                .filter(committed)
                .find(|record| record.null_version),
        }
    }

    /// The COMMITTED replica of `bucket/key` that keeps the source id `version_id`. Only ids
    /// tagged by another region can name one (see [`Self::check_replica_version`]), so the
    /// key's versions are walked only for those.
    fn find_replica_version(
        &self,
        bucket: &str,
        key: &str,
        version_id: VersionId,
    ) -> Option<&ObjectRecord> {
        if !self.is_foreign(version_id) {
            return None;
        }
        self.key_versions(bucket, key).find(|record| {
            record.state == TransactionState::Committed && record.s3_version_id() == version_id
        })
    }

    /// Whether `version_id` is tagged by another region than this partition's: only such an id
    /// can be kept by a replica, since no id this partition creates can ever equal it.
    fn is_foreign(&self, version_id: VersionId) -> bool {
        let tag = version_id.region_tag();
        tag != 0 && tag != self.version_tag
    }

    /// Checks the source id a replica write asks to keep (the attribute
    /// [`REPLICA_VERSION_ATTRIBUTE`]), before its version is created: 16 hex digits, tagged by
    /// another region (so no id this partition creates can ever equal it), and not the S3 id of
    /// a version the key already has (two source buckets replicating into one key). S3 ids are
    /// therefore unique per key, local and kept ones together.
    pub(crate) fn check_replica_version(
        &self,
        bucket: &str,
        key: &str,
        attributes: &crate::records::Attributes,
    ) -> Result<(), MetaError> {
        let Some(bytes) = attributes.get(REPLICA_VERSION_ATTRIBUTE) else {
            return Ok(());
        };
        let invalid = |reason: &str| MetaError::InvalidArgument {
            reason: reason.to_owned(),
        };
        let version_id = std::str::from_utf8(bytes)
            .ok()
            .and_then(VersionId::parse)
            .ok_or_else(|| invalid("a replica's version id has 16 lowercase hex digits"))?;
        if !self.is_foreign(version_id) {
            return Err(invalid(
                "a replica keeps only a version id tagged by another region",
            ));
        }
        if self
            .key_versions(bucket, key)
            .any(|record| record.s3_version_id() == version_id)
        {
            return Err(invalid("the key already has a version with this id"));
        }
        Ok(())
    }

    pub(crate) fn get_object(
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
                    delete_marker: Some(record.s3_version_id()),
                })
            }
            (_, None) => Err(no_such_version(bucket, key, selector)),
            (_, Some(record)) if record.delete_marker => {
                Err(MetaError::MethodNotAllowedOnDeleteMarker {
                    version_id: record.s3_version_id(),
                })
            }
            (_, Some(record)) => Ok(record.clone()),
        }
    }

    /// PREPARING versions created before `created_before_ms`, oldest first (ties by bucket, key,
    /// version), from the `preparing` index so the query costs the size of its answer.
    pub(crate) fn stale_preparing(&self, created_before_ms: u64, limit: u32) -> Vec<ObjectRecord> {
        self.preparing
            .iter()
            .take_while(|(created_at_ms, _, _, _)| *created_at_ms < created_before_ms)
            .take(limit as usize)
            .map(|(_, bucket, key, version_id)| {
                self.versions[&(bucket.clone(), key.clone(), *version_id)].clone()
            })
            .collect()
    }
}

pub(crate) fn no_such_version(bucket: &str, key: &str, selector: &VersionSelector) -> MetaError {
    MetaError::NoSuchVersion {
        bucket: bucket.to_owned(),
        key: key.to_owned(),
        version: match selector {
            VersionSelector::Id(version_id) => version_id.to_string(),
            VersionSelector::Null | VersionSelector::Current => "null".to_owned(),
        },
    }
}

pub(crate) fn validate_key(key: &str) -> Result<(), MetaError> {
    if key.is_empty() || key.len() > MAX_KEY_BYTES {
        return Err(MetaError::InvalidArgument {
            reason: format!("a key has 1 to {MAX_KEY_BYTES} bytes"),
        });
    }
    Ok(())
}

/// Checks a shard map against the scheme, the piece size and the object size; returns whether
/// any block is degraded (committed with fewer than k+m shards).
///
/// A block's padding data pieces (`cairn_common::padding`: wholly past its data, so zeros) count
/// as present without a placement; maps written before that rule may still place them.
pub(crate) fn validate_parts(
    scheme: &EcScheme,
    piece_size_bytes: u32,
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
            let shard_count = block
                .present_pieces(usize::from(scheme.data_shards), u64::from(piece_size_bytes))
                as u64;
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

pub(crate) fn same_layout(old: &[PartShards], new: &[PartShards]) -> bool {
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
pub(crate) fn moved_shards(old: &[PartShards], new: &[PartShards]) -> Vec<PartShards> {
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
