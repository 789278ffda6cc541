//! Multipart uploads: create, upload parts, list, complete, abort.

mod common;

use std::collections::BTreeMap;

use cairn_meta_state::*;
use common::*;

use VersioningState::{Enabled, Unversioned};

const MIB: u64 = 1024 * 1024;

fn abort(key: &str, upload_id: UploadId) -> Command {
    Command::AbortMultipartUpload(AbortMultipartUpload {
        bucket: BUCKET.to_owned(),
        key: key.to_owned(),
        upload_id,
        now_ms: 9_500,
    })
}

#[test]
fn full_flow_produces_a_committed_object() {
    let mut harness = Harness::with_bucket();
    let upload = create_upload(&mut harness, "movie.mp4");
    assert_eq!(upload.upload_id, UploadId(2));
    assert_eq!(upload.record_version, 1);
    assert!(upload.parts.is_empty());
    harness.ok(upload_part("movie.mp4", upload.upload_id, 1, 5 * MIB));
    harness.ok(upload_part("movie.mp4", upload.upload_id, 2, 3));
    // An unlisted part is discarded at completion.
    harness.ok(upload_part("movie.mp4", upload.upload_id, 7, 5 * MIB));

    let output = harness.apply(complete(
        "movie.mp4",
        upload.upload_id,
        &[(1, 5 * MIB), (2, 3)],
        Unversioned,
    ));
    let Ok(Response::Committed {
        record,
        retried: false,
    }) = output.result.clone()
    else {
        panic!("unexpected {output:?}")
    };
    let expected = ObjectRecord {
        bucket: BUCKET.to_owned(),
        key: "movie.mp4".to_owned(),
        version_id: VersionId(6),
        null_version: true,
        delete_marker: false,
        owner: OWNER.to_owned(),
        size_bytes: 5 * MIB + 3,
        checksums: checksums("0123456789abcdef0123456789abcdef-2"),
        content_type: "video/mp4".to_owned(),
        user_metadata: BTreeMap::new(),
        storage_class: StorageClass::StandardInfrequentAccess,
        acl: Acl {
            canned: CannedAcl::BucketOwnerFullControl,
            grants: Vec::new(),
        },
        state: TransactionState::Committed,
        idempotency_token: String::new(),
        created_at_ms: 5_000,
        committed_at_ms: Some(9_000),
        commit_log_index: 6,
        upload_id: Some(UploadId(2)),
        erasure: ErasureInfo {
            scheme: SCHEME.to_owned(),
            piece_size_bytes: PIECE_SIZE_BYTES,
            object_length_bytes: 5 * MIB + 3,
            parts: vec![
                PartShards {
                    part_number: 1,
                    length_bytes: 5 * MIB,
                    blocks: vec![block(5 * MIB, 0..6)],
                },
                PartShards {
                    part_number: 2,
                    length_bytes: 3,
                    blocks: vec![block(3, 0..6)],
                },
            ],
            degraded: false,
        },
        record_version: 1,
        attributes: Default::default(),
    };
    assert_eq!(record, expected);
    assert_eq!(
        output.new_garbage,
        vec![GarbageRecord {
            garbage_id: GarbageId {
                log_index: 6,
                sequence: 0
            },
            reason: GarbageReason::PartDiscarded,
            bucket: BUCKET.to_owned(),
            key: "movie.mp4".to_owned(),
            version_id: None,
            upload_id: Some(UploadId(2)),
            ec_scheme: SCHEME.to_owned(),
            parts: vec![PartShards {
                part_number: 7,
                length_bytes: 5 * MIB,
                blocks: vec![block(5 * MIB, 0..6)],
            }],
            created_at_ms: 9_000,
        }]
    );
    assert_eq!(
        harness.get("movie.mp4", VersionSelector::Current),
        Ok(expected.clone())
    );
    // The upload is gone; a retried completion returns the object it created.
    assert!(matches!(
        harness.query(Query::GetUpload {
            bucket: BUCKET.to_owned(),
            key: "movie.mp4".to_owned(),
            upload_id: UploadId(2)
        }),
        Err(MetaError::NoSuchUpload { .. })
    ));
    let retried = harness.ok(complete(
        "movie.mp4",
        upload.upload_id,
        &[(1, 5 * MIB), (2, 3)],
        Unversioned,
    ));
    assert_eq!(
        retried,
        Response::Committed {
            record: expected,
            retried: true
        }
    );
    // The bucket now holds an object.
    assert_eq!(
        harness.err(Command::DeleteBucket {
            bucket: BUCKET.to_owned()
        }),
        MetaError::BucketNotEmpty {
            bucket: BUCKET.to_owned()
        }
    );
}

#[test]
fn completion_overwrites_the_null_version() {
    let mut harness = Harness::with_bucket();
    let old = harness.put("a", 10, Unversioned);
    let upload = create_upload(&mut harness, "a");
    harness.ok(upload_part("a", upload.upload_id, 1, 4));
    let output = harness.apply(complete("a", upload.upload_id, &[(1, 4)], Unversioned));
    assert_eq!(output.new_garbage.len(), 1);
    assert_eq!(output.new_garbage[0].reason, GarbageReason::Overwritten);
    assert_eq!(output.new_garbage[0].version_id, Some(old.version_id));
    assert_eq!(
        output.new_garbage[0].shard_name_id(),
        Some(old.version_id.0)
    );
    let Response::Committed {
        record: multipart, ..
    } = output.result.unwrap()
    else {
        panic!("committed")
    };
    // Its shards were named by the upload, which the version records.
    assert_eq!(multipart.shard_name_id(), upload.upload_id.0);
    assert_ne!(multipart.version_id.0, upload.upload_id.0);
    // Overwriting the multipart object names its shards by the upload id too.
    let output_index = harness.next_log_index + 1;
    harness.put("a", 3, Unversioned);
    let garbage = harness
        .garbage()
        .into_iter()
        .find(|entry| entry.garbage_id.log_index == output_index)
        .expect("the overwritten multipart version");
    assert_eq!(garbage.version_id, Some(multipart.version_id));
    assert_eq!(garbage.upload_id, Some(upload.upload_id));
    assert_eq!(garbage.shard_name_id(), Some(upload.upload_id.0));

    // With versioning enabled nothing is replaced.
    let upload = create_upload(&mut harness, "a");
    harness.ok(upload_part("a", upload.upload_id, 1, 4));
    let output = harness.apply(complete("a", upload.upload_id, &[(1, 4)], Enabled));
    assert!(output.new_garbage.is_empty());
}

#[test]
fn uploading_a_part_again_replaces_it() {
    let mut harness = Harness::with_bucket();
    let upload = create_upload(&mut harness, "a");
    harness.ok(upload_part("a", upload.upload_id, 1, 10));
    // Shards are named by (upload, part, block, shard index): a part uploaded again on the same
    // nodes overwrote its old shards under the same names, so nothing of the old part is garbage
    // (deleting those names would destroy the new part).
    let output = harness.apply(upload_part("a", upload.upload_id, 1, 20));
    assert!(output.new_garbage.is_empty(), "{:?}", output.new_garbage);

    // Uploaded again with one block less and shard 2 of block 0 on another node: the old copy
    // of that shard and the whole dropped block are garbage, at their block positions.
    let mut two_blocks = upload_part("a", upload.upload_id, 2, 30);
    let Command::UploadPart(part) = &mut two_blocks else {
        unreachable!()
    };
    part.blocks = vec![block(15, 0..6), block(15, 0..6)];
    harness.ok(two_blocks);
    let mut one_block = upload_part("a", upload.upload_id, 2, 12);
    let Command::UploadPart(part) = &mut one_block else {
        unreachable!()
    };
    part.blocks[0]
        .shards
        .get_mut(&ShardIndex(2))
        .unwrap()
        .node_id = NodeId(999);
    let output = harness.apply(one_block);
    assert_eq!(output.new_garbage.len(), 1);
    let garbage = &output.new_garbage[0];
    assert_eq!(garbage.reason, GarbageReason::PartReplaced);
    assert_eq!(garbage.parts.len(), 1);
    assert_eq!(garbage.parts[0].part_number, 2);
    assert_eq!(garbage.parts[0].length_bytes, 30);
    let blocks = &garbage.parts[0].blocks;
    assert_eq!(blocks.len(), 2);
    assert_eq!(
        blocks[0].shards.keys().copied().collect::<Vec<_>>(),
        vec![ShardIndex(2)]
    );
    assert_eq!(blocks[0].shards[&ShardIndex(2)].node_id, NodeId(102));
    assert_eq!(blocks[1], block(15, 0..6));
    let Ok(Response::Upload(current)) = harness.query(Query::GetUpload {
        bucket: BUCKET.to_owned(),
        key: "a".to_owned(),
        upload_id: upload.upload_id,
    }) else {
        panic!("upload exists")
    };
    assert_eq!(current.parts.len(), 2);
    assert_eq!(current.parts[&1].size_bytes, 20);
    assert_eq!(current.parts[&2].size_bytes, 12);
    assert_eq!(current.record_version, 5);
}

#[test]
fn completion_refusals() {
    let mut harness = Harness::with_bucket();
    let upload = create_upload(&mut harness, "a");
    let id = upload.upload_id;
    harness.ok(upload_part("a", id, 1, 5 * MIB));
    harness.ok(upload_part("a", id, 2, 1));
    harness.ok(upload_part("a", id, 3, 1));

    assert_eq!(
        harness.err(complete("a", id, &[(2, 1), (1, 5 * MIB)], Unversioned)),
        MetaError::InvalidPartOrder { part_number: 1 }
    );
    assert_eq!(
        harness.err(complete(
            "a",
            id,
            &[(1, 5 * MIB), (1, 5 * MIB)],
            Unversioned
        )),
        MetaError::InvalidPartOrder { part_number: 1 }
    );
    assert_eq!(
        harness.err(complete("a", id, &[(1, 5 * MIB), (4, 1)], Unversioned)),
        MetaError::InvalidPart {
            part_number: 4,
            reason: "not uploaded".to_owned()
        }
    );
    assert_eq!(
        harness.err(complete("a", id, &[(1, 5 * MIB), (2, 999)], Unversioned)),
        MetaError::InvalidPart {
            part_number: 2,
            reason: "ETag does not match the uploaded part".to_owned()
        }
    );
    assert_eq!(
        harness.err(complete(
            "a",
            id,
            &[(1, 5 * MIB), (2, 1), (3, 1)],
            Unversioned
        )),
        MetaError::EntityTooSmall {
            part_number: 2,
            size_bytes: 1,
            minimum_bytes: MIN_PART_SIZE_BYTES
        }
    );
    assert!(matches!(
        harness.err(complete("a", id, &[], Unversioned)),
        MetaError::InvalidArgument { .. }
    ));
    assert_eq!(
        harness.err(complete("a", UploadId(999), &[(1, 5 * MIB)], Unversioned)),
        MetaError::NoSuchUpload {
            bucket: BUCKET.to_owned(),
            key: "a".to_owned(),
            upload_id: UploadId(999)
        }
    );
    assert_eq!(
        harness.err(upload_part("a", id, 0, 1)),
        MetaError::InvalidPartNumber { part_number: 0 }
    );
    assert_eq!(
        harness.err(upload_part("a", id, MAX_PART_NUMBER + 1, 1)),
        MetaError::InvalidPartNumber {
            part_number: MAX_PART_NUMBER + 1
        }
    );
    // Nothing above changed the upload: a valid completion still works.
    harness.ok(complete("a", id, &[(1, 5 * MIB), (3, 1)], Unversioned));
}

#[test]
fn abort_discards_every_part() {
    let mut harness = Harness::with_bucket();
    let upload = create_upload(&mut harness, "a");
    harness.ok(upload_part("a", upload.upload_id, 1, 10));
    harness.ok(upload_part("a", upload.upload_id, 2, 20));
    let output = harness.apply(abort("a", upload.upload_id));
    assert!(matches!(output.result, Ok(Response::UploadAborted(_))));
    assert_eq!(output.new_garbage.len(), 1);
    let lengths: Vec<u64> = output.new_garbage[0]
        .parts
        .iter()
        .map(|part| part.length_bytes)
        .collect();
    assert_eq!(lengths, vec![10, 20]);
    assert!(matches!(
        harness.err(abort("a", upload.upload_id)),
        MetaError::NoSuchUpload { .. }
    ));
    assert!(matches!(
        harness.err(upload_part("a", upload.upload_id, 3, 1)),
        MetaError::NoSuchUpload { .. }
    ));
    // An empty bucket again.
    harness.ok(Command::DeleteBucket {
        bucket: BUCKET.to_owned(),
    });
}

#[test]
fn list_uploads_and_parts_paginate() {
    let mut harness = Harness::with_bucket();
    let a1 = create_upload(&mut harness, "a").upload_id;
    let b1 = create_upload(&mut harness, "b").upload_id;
    let a2 = create_upload(&mut harness, "a").upload_id;
    let c1 = create_upload(&mut harness, "c/x").upload_id;
    let list = |harness: &Harness, request: ListUploadsRequest| match harness
        .query(Query::ListUploads(request))
    {
        Ok(Response::UploadList(page)) => page,
        other => panic!("unexpected {other:?}"),
    };
    let ids = |page: &ListUploadsPage| -> Vec<(String, UploadId)> {
        page.uploads
            .iter()
            .map(|upload| (upload.key.clone(), upload.upload_id))
            .collect()
    };
    let mut request = ListUploadsRequest {
        bucket: BUCKET.to_owned(),
        max_uploads: 2,
        ..Default::default()
    };
    let first = list(&harness, request.clone());
    assert_eq!(
        ids(&first),
        vec![("a".to_owned(), a1), ("a".to_owned(), a2)]
    );
    assert!(first.is_truncated);
    assert_eq!(first.next_key_marker.as_deref(), Some("a"));
    assert_eq!(first.next_upload_id_marker, Some(a2));
    request.key_marker = first.next_key_marker;
    request.upload_id_marker = first.next_upload_id_marker;
    let second = list(&harness, request.clone());
    assert_eq!(
        ids(&second),
        vec![("b".to_owned(), b1), ("c/x".to_owned(), c1)]
    );
    assert!(!second.is_truncated);
    // Key marker alone skips every upload of that key; a prefix filters.
    request.upload_id_marker = None;
    request.key_marker = Some("a".to_owned());
    request.max_uploads = 10;
    assert_eq!(list(&harness, request.clone()).uploads.len(), 2);
    request.key_marker = None;
    request.prefix = "c/".to_owned();
    assert_eq!(
        ids(&list(&harness, request.clone())),
        vec![("c/x".to_owned(), c1)]
    );
    request.max_uploads = 0;
    assert_eq!(list(&harness, request), ListUploadsPage::default());

    for part_number in [3, 1, 2] {
        harness.ok(upload_part("a", a1, part_number, 1));
    }
    let parts = |marker, max_parts| match harness.query(Query::ListParts(ListPartsRequest {
        bucket: BUCKET.to_owned(),
        key: "a".to_owned(),
        upload_id: a1,
        part_number_marker: marker,
        max_parts,
    })) {
        Ok(Response::PartList(page)) => page,
        other => panic!("unexpected {other:?}"),
    };
    let first = parts(0, 2);
    let numbers: Vec<u32> = first.parts.iter().map(|part| part.part_number).collect();
    assert_eq!(numbers, vec![1, 2]);
    assert!(first.is_truncated);
    assert_eq!(first.next_part_number_marker, Some(2));
    let second = parts(2, 2);
    assert_eq!(second.parts.len(), 1);
    assert_eq!(second.parts[0].part_number, 3);
    assert!(!second.is_truncated);
    assert_eq!(second.next_part_number_marker, None);
}

#[test]
fn degraded_parts_make_a_degraded_object() {
    let mut harness = Harness::with_bucket();
    let upload = create_upload(&mut harness, "a");
    let mut command = upload_part("a", upload.upload_id, 1, 8);
    let Command::UploadPart(inner) = &mut command else {
        unreachable!()
    };
    inner.blocks = vec![block(8, 0..5)];
    let Response::Part(part) = harness.ok(command) else {
        panic!("a part")
    };
    assert!(part.degraded);
    let Response::Committed { record, .. } =
        harness.ok(complete("a", upload.upload_id, &[(1, 8)], Unversioned))
    else {
        panic!("committed")
    };
    assert!(record.erasure.degraded);
}
