//! Multipart uploads: create, upload part, complete, abort, list uploads, list parts.
//!
//! Model: an upload collects parts (each with its own shard map, recorded once its shards are
//! durable); completion turns the listed parts into one COMMITTED version whose shard map is the
//! parts' maps in order, and every unlisted or replaced part becomes garbage.

use std::collections::BTreeMap;
use std::ops::Bound;

use crate::attributes::check_attributes;
use crate::command::*;
use crate::error::MetaError;
use crate::machine::{Effects, GarbageDraft, StateMachine, bump, part_shards};
use crate::machine::{MAX_LIST_KEYS, MAX_PART_NUMBER, MIN_PART_SIZE_BYTES};
use crate::objects::{validate_key, validate_parts};
use crate::records::*;
use crate::stored_length::stored_length_bytes;
use crate::usage::BucketStats;

impl StateMachine {
    pub(crate) fn create_upload(
        &mut self,
        command: CreateMultipartUpload,
        effects: &Effects,
    ) -> Result<Response, MetaError> {
        self.check_bucket_open(&command.bucket)?;
        validate_key(&command.key)?;
        EcScheme::parse(&command.ec_scheme)?;
        check_attributes(&command.attributes)?;
        self.check_replica_version(&command.bucket, &command.key, &command.attributes)?;
        if command.piece_size_bytes == 0 {
            return Err(MetaError::InvalidArgument {
                reason: "piece size must be positive".to_owned(),
            });
        }
        let upload = MultipartUpload {
            bucket: command.bucket,
            key: command.key,
            upload_id: UploadId(effects.id_index),
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
            attributes: command.attributes,
        };
        self.usage_add(&upload.bucket, BucketStats::of_upload(&upload));
        self.uploads.insert(
            (upload.bucket.clone(), upload.key.clone(), upload.upload_id),
            upload.clone(),
        );
        Ok(Response::Upload(upload))
    }

    pub(crate) fn upload_part(
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
        // An encrypted upload's parts are stored longer than their size (chunk overhead).
        let stored_length_bytes = stored_length_bytes(&upload.attributes, command.size_bytes);
        let shards = PartShards {
            part_number: command.part_number,
            length_bytes: stored_length_bytes,
            blocks: command.blocks,
        };
        let degraded = validate_parts(
            &scheme,
            upload.piece_size_bytes,
            std::slice::from_ref(&shards),
            stored_length_bytes,
        )?;
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
        if let Some(old) = &replaced {
            self.usage_remove(&command.bucket, BucketStats::of_part(old));
        }
        self.usage_add(&command.bucket, BucketStats::of_part(&part));
        if let Some(old) = replaced {
            let superseded = superseded_shards(&old, &part);
            if superseded
                .blocks
                .iter()
                .any(|block| !block.shards.is_empty())
            {
                let draft = GarbageDraft {
                    bucket: command.bucket,
                    key: command.key,
                    version_id: None,
                    upload_id: Some(command.upload_id),
                    ec_scheme,
                    parts: vec![superseded],
                };
                self.add_garbage(effects, GarbageReason::PartReplaced, draft, command.now_ms);
            }
        }
        Ok(Response::Part(part))
    }

    pub(crate) fn complete_upload(
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
        // A replica's kept id: checked again now that the version is made (another version of
        // the key may have taken the id since the upload began).
        self.check_replica_version(&command.bucket, &command.key, &upload.attributes)?;
        if command.versioning != VersioningState::Enabled {
            // Object lock: checked before anything changes.
            self.check_null_versions_removable(
                &command.bucket,
                &command.key,
                None,
                command.now_ms,
                false,
            )?;
        }
        let upload = self.uploads.remove(&upload_key).expect("looked up above");
        self.usage_remove(&command.bucket, BucketStats::of_upload(&upload));
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
        let version_id = self.new_version_id(effects.id_index);
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
            commit_log_index: effects.id_index,
            upload_id: Some(command.upload_id),
            erasure: ErasureInfo {
                scheme: upload.ec_scheme,
                piece_size_bytes: upload.piece_size_bytes,
                object_length_bytes: object_parts.iter().map(|part| part.length_bytes).sum(),
                parts: object_parts,
                degraded,
            },
            record_version: 1,
            attributes: upload.attributes,
        };
        self.usage_add(&command.bucket, BucketStats::of_version(&record));
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

    pub(crate) fn abort_upload(
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
        self.usage_remove(&command.bucket, BucketStats::of_upload(&upload));
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

    pub(crate) fn purge_garbage(&mut self, garbage_ids: &[GarbageId]) -> Response {
        let purged_count = garbage_ids
            .iter()
            .filter(|id| self.garbage.remove(id).is_some())
            .count() as u32;
        Response::Purged { purged_count }
    }

    pub(crate) fn list_uploads(
        &self,
        request: &ListUploadsRequest,
    ) -> Result<ListUploadsPage, MetaError> {
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

    pub(crate) fn list_parts(
        &self,
        request: &ListPartsRequest,
    ) -> Result<ListPartsPage, MetaError> {
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
}

/// The shards of `old` that its replacement `new` (the same part number uploaded again) does not
/// reuse. Shards are named by (upload id, part number, block, shard index), so a re-uploaded part
/// writes the same names again: where the new part put a shard on the same node as the old one,
/// that node now holds the new bytes under the old name, and deleting it would destroy the live
/// part. Only the old shards on other nodes, and blocks the new part no longer has, are garbage.
/// Block positions are kept (a shard's name includes its block index); emptied blocks stay as
/// empty maps.
fn superseded_shards(old: &PartRecord, new: &PartRecord) -> PartShards {
    let blocks = old
        .blocks
        .iter()
        .enumerate()
        .map(|(block_index, block)| {
            let reused = new.blocks.get(block_index);
            BlockShards {
                length_bytes: block.length_bytes,
                shards: block
                    .shards
                    .iter()
                    .filter(|(shard_index, placement)| {
                        reused
                            .and_then(|new_block| new_block.shards.get(shard_index))
                            .is_none_or(|new_placement| new_placement.node_id != placement.node_id)
                    })
                    .map(|(shard_index, placement)| (*shard_index, placement.clone()))
                    .collect(),
            }
        })
        .collect();
    PartShards {
        part_number: old.part_number,
        length_bytes: old.blocks.iter().map(|block| block.length_bytes).sum(),
        blocks,
    }
}
