//! Single-PUT object lifecycle: prepare, commit, abort, overwrite, delete, versioning, janitor.

mod common;

use std::collections::BTreeMap;

use cairn_meta_state::*;
use common::*;

use VersioningState::{Enabled, Suspended, Unversioned};

fn prepared(response: Response) -> (ObjectRecord, bool) {
    match response {
        Response::Prepared { record, retried } => (record, retried),
        other => panic!("unexpected {other:?}"),
    }
}

fn committed(response: Response) -> (ObjectRecord, bool) {
    match response {
        Response::Committed { record, retried } => (record, retried),
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn prepare_creates_an_exact_preparing_record() {
    let mut harness = Harness::with_bucket();
    let (record, retried) = prepared(harness.ok(prepare(BUCKET, "a.jpg", "t1", 100, Unversioned)));
    assert!(!retried);
    let expected = ObjectRecord {
        bucket: BUCKET.to_owned(),
        key: "a.jpg".to_owned(),
        version_id: VersionId(2),
        null_version: true,
        delete_marker: false,
        owner: OWNER.to_owned(),
        size_bytes: 100,
        checksums: Checksums::default(),
        content_type: "image/jpeg".to_owned(),
        user_metadata: BTreeMap::from([("camera".to_owned(), "x100".to_owned())]),
        storage_class: StorageClass::Standard,
        acl: Acl::default(),
        state: TransactionState::Preparing,
        idempotency_token: "t1".to_owned(),
        created_at_ms: 10_000,
        committed_at_ms: None,
        commit_log_index: 0,
        upload_id: None,
        erasure: ErasureInfo {
            scheme: SCHEME.to_owned(),
            piece_size_bytes: PIECE_SIZE_BYTES,
            object_length_bytes: 0,
            parts: Vec::new(),
            degraded: false,
        },
        record_version: 1,
        attributes: Default::default(),
    };
    assert_eq!(record, expected);
    // Invisible until committed.
    assert_eq!(
        harness.get("a.jpg", VersionSelector::Current),
        Err(MetaError::NoSuchKey {
            bucket: BUCKET.to_owned(),
            key: "a.jpg".to_owned(),
            delete_marker: None
        })
    );

    let (record, retried) = committed(harness.ok(commit(BUCKET, "a.jpg", VersionId(2), "t1", 100)));
    assert!(!retried);
    let expected = ObjectRecord {
        state: TransactionState::Committed,
        checksums: checksums("9e107d9d372bb6826bd81d3542a419d6"),
        committed_at_ms: Some(20_000),
        commit_log_index: 3,
        erasure: ErasureInfo {
            object_length_bytes: 100,
            parts: shard_map(100),
            ..expected.erasure.clone()
        },
        record_version: 2,
        ..expected
    };
    assert_eq!(record, expected);
    assert_eq!(
        harness.get("a.jpg", VersionSelector::Current),
        Ok(expected.clone())
    );
    assert_eq!(
        harness.get("a.jpg", VersionSelector::Null),
        Ok(expected.clone())
    );
    assert_eq!(
        harness.get("a.jpg", VersionSelector::Id(VersionId(2))),
        Ok(expected)
    );
}

#[test]
fn same_token_returns_the_same_record_without_a_duplicate() {
    let mut harness = Harness::with_bucket();
    let (first, _) = prepared(harness.ok(prepare(BUCKET, "a", "t1", 10, Unversioned)));
    let (second, retried) = prepared(harness.ok(prepare(BUCKET, "a", "t1", 10, Unversioned)));
    assert!(retried);
    assert_eq!(first, second);
    let stale = harness.query(Query::ListStalePreparing {
        created_before_ms: u64::MAX,
        limit: 100,
    });
    assert_eq!(stale, Ok(Response::Objects(vec![first.clone()])));

    // After the commit the retry short-circuits to the committed record.
    let (done, _) = committed(harness.ok(commit(BUCKET, "a", first.version_id, "t1", 10)));
    let (again, retried) = prepared(harness.ok(prepare(BUCKET, "a", "t1", 10, Unversioned)));
    assert!(retried);
    assert_eq!(again, done);
    // And a retried commit is answered, not refused, and changes nothing.
    let (again, retried) = committed(harness.ok(commit(BUCKET, "a", first.version_id, "t1", 10)));
    assert!(retried);
    assert_eq!(again, done);
    assert_eq!(harness.get("a", VersionSelector::Current), Ok(done));
}

#[test]
fn a_token_reused_for_a_different_body_is_refused() {
    let mut harness = Harness::with_bucket();
    harness.ok(prepare(BUCKET, "a", "t1", 10, Unversioned));
    assert_eq!(
        harness.err(prepare(BUCKET, "a", "t1", 11, Unversioned)),
        MetaError::IdempotencyTokenReused {
            token: "t1".to_owned()
        }
    );
    // The same token on another key is another write.
    let (other, retried) = prepared(harness.ok(prepare(BUCKET, "b", "t1", 11, Unversioned)));
    assert!(!retried);
    assert_eq!(other.version_id, VersionId(4));
}

#[test]
fn unversioned_overwrite_returns_the_old_version_as_garbage() {
    let mut harness = Harness::with_bucket();
    let old = harness.put("a", 100, Unversioned);
    let prepare_index = harness.next_log_index;
    harness.ok(prepare(BUCKET, "a", "t2", 50, Unversioned));
    let output = harness.apply(commit(BUCKET, "a", VersionId(prepare_index), "t2", 50));
    let (new, _) = committed(output.result.unwrap());
    let expected_garbage = GarbageRecord {
        garbage_id: GarbageId {
            log_index: prepare_index + 1,
            sequence: 0,
        },
        reason: GarbageReason::Overwritten,
        bucket: BUCKET.to_owned(),
        key: "a".to_owned(),
        version_id: Some(old.version_id),
        upload_id: None,
        ec_scheme: SCHEME.to_owned(),
        parts: shard_map(100),
        created_at_ms: 20_000,
    };
    assert_eq!(output.new_garbage, vec![expected_garbage.clone()]);
    assert_eq!(harness.garbage(), vec![expected_garbage.clone()]);
    assert_eq!(harness.get("a", VersionSelector::Current), Ok(new));
    assert_eq!(
        harness.get("a", VersionSelector::Id(old.version_id)),
        Err(MetaError::NoSuchVersion {
            bucket: BUCKET.to_owned(),
            key: "a".to_owned(),
            version: old.version_id.to_string()
        })
    );

    // The janitor reports the deletion; a repeated purge is harmless.
    let purge = Command::PurgeGarbage {
        garbage_ids: vec![expected_garbage.garbage_id],
    };
    assert_eq!(
        harness.ok(purge.clone()),
        Response::Purged { purged_count: 1 }
    );
    assert_eq!(harness.ok(purge), Response::Purged { purged_count: 0 });
    assert!(harness.garbage().is_empty());
}

#[test]
fn the_last_commit_wins_even_when_prepared_first() {
    let mut harness = Harness::with_bucket();
    harness.ok(prepare(BUCKET, "a", "early", 10, Unversioned)); // version 2
    harness.ok(prepare(BUCKET, "a", "late", 20, Unversioned)); // version 3
    harness.ok(commit(BUCKET, "a", VersionId(3), "late", 20));
    let output = harness.apply(commit(BUCKET, "a", VersionId(2), "early", 10));
    let (record, _) = committed(output.result.unwrap());
    assert_eq!(record.version_id, VersionId(2));
    assert_eq!(output.new_garbage.len(), 1);
    assert_eq!(output.new_garbage[0].version_id, Some(VersionId(3)));
    assert_eq!(harness.get("a", VersionSelector::Current), Ok(record));
}

#[test]
fn abort_rolls_back_and_a_late_commit_leaves_its_shards_as_garbage() {
    let mut harness = Harness::with_bucket();
    let (record, _) = prepared(harness.ok(prepare(BUCKET, "a", "t1", 10, Unversioned)));
    let abort = Command::AbortWrite(AbortWrite {
        bucket: BUCKET.to_owned(),
        key: "a".to_owned(),
        version_id: record.version_id,
        now_ms: 99_000,
    });
    let output = harness.apply(abort.clone());
    let Ok(Response::Aborted { record: aborted }) = output.result else {
        panic!("unexpected {output:?}")
    };
    assert_eq!(aborted.state, TransactionState::Deleted);
    assert_eq!(aborted.record_version, 2);
    assert_eq!(output.new_garbage.len(), 1);
    assert_eq!(output.new_garbage[0].reason, GarbageReason::WriteAborted);
    assert!(output.new_garbage[0].parts.is_empty());
    let no_such_write = MetaError::NoSuchWrite {
        bucket: BUCKET.to_owned(),
        key: "a".to_owned(),
        version_id: record.version_id,
    };
    assert_eq!(harness.err(abort), no_such_write);

    // The gateway commits after the janitor's abort: refused, and its shards become garbage.
    let output = harness.apply(commit(BUCKET, "a", record.version_id, "t1", 10));
    assert_eq!(output.result, Err(no_such_write));
    assert_eq!(output.new_garbage.len(), 1);
    assert_eq!(output.new_garbage[0].reason, GarbageReason::CommitRejected);
    assert_eq!(output.new_garbage[0].parts, shard_map(10));
    // The token is forgotten with the record: a retry is a new write.
    let (again, retried) = prepared(harness.ok(prepare(BUCKET, "a", "t1", 10, Unversioned)));
    assert!(!retried);
    assert_ne!(again.version_id, record.version_id);
}

/// A block of 100 bytes in 64 KiB pieces (4+2) holds its data in piece 0; pieces 1 to 3 are
/// padding (`cairn_common::padding`), which gateways do not place. They count towards k + m.
#[test]
fn padding_pieces_count_without_a_placement() {
    let mut harness = Harness::with_bucket();
    for (key, indexes, outcome) in [
        // Data piece and both parity pieces: whole, not degraded.
        ("whole", vec![0, 4, 5], Some(false)),
        // Padding placed as well (maps written before the rule): the same.
        ("legacy", vec![0, 1, 2, 3, 4, 5], Some(false)),
        // One real piece short: k + 1 with the padding, degraded.
        ("degraded", vec![0, 4], Some(true)),
        ("parity-only", vec![4, 5], Some(true)),
        // Placed padding does not stand in for a real piece: k in all, refused.
        ("too-few", vec![0, 1, 2, 3], None),
        ("one", vec![5], None),
    ] {
        let token = format!("t-{key}");
        let (record, _) = prepared(harness.ok(prepare(BUCKET, key, &token, 100, Unversioned)));
        let mut command = commit(BUCKET, key, record.version_id, &token, 100);
        let Command::CommitWrite(inner) = &mut command else {
            unreachable!()
        };
        inner.parts[0].blocks[0] = block(100, indexes);
        match outcome {
            Some(degraded) => {
                let (record, _) = committed(harness.ok(command));
                assert_eq!(record.erasure.degraded, degraded, "{key}");
            }
            None => {
                let error = harness.err(command);
                assert!(
                    matches!(error, MetaError::InvalidShardMap { .. }),
                    "{key}: {error:?}"
                );
            }
        }
    }
}

#[test]
fn commit_validates_token_and_shard_map() {
    let mut harness = Harness::with_bucket();
    let (record, _) = prepared(harness.ok(prepare(BUCKET, "a", "t1", 100, Unversioned)));
    let version_id = record.version_id;
    assert_eq!(
        harness.err(commit(BUCKET, "a", version_id, "other", 100)),
        MetaError::TokenMismatch { version_id }
    );
    // Size disagreement.
    let error = harness.err(commit(BUCKET, "a", version_id, "t1", 99));
    assert!(
        matches!(error, MetaError::InvalidShardMap { .. }),
        "{error:?}"
    );
    // k shards only (4 of 4+2) is never enough.
    let mut command = commit(BUCKET, "a", version_id, "t1", 100);
    let Command::CommitWrite(inner) = &mut command else {
        unreachable!()
    };
    inner.parts[0].blocks[0] = block(100, 0..4);
    let error = harness.err(command.clone());
    assert!(
        matches!(error, MetaError::InvalidShardMap { .. }),
        "{error:?}"
    );
    // A shard index beyond k+m.
    let Command::CommitWrite(inner) = &mut command else {
        unreachable!()
    };
    inner.parts[0].blocks[0] = block(100, [0, 1, 2, 3, 6]);
    let error = harness.err(command.clone());
    assert!(
        matches!(error, MetaError::InvalidShardMap { .. }),
        "{error:?}"
    );
    // k+1 shards commit, flagged for the healer.
    let Command::CommitWrite(inner) = &mut command else {
        unreachable!()
    };
    inner.parts[0].blocks[0] = block(100, 0..5);
    let (record, _) = committed(harness.ok(command));
    assert!(record.erasure.degraded);
    // A different commit of an already committed write is refused.
    assert_eq!(
        harness.err(commit(BUCKET, "a", version_id, "t1", 100)),
        MetaError::WriteAlreadyCommitted { version_id }
    );
}

#[test]
fn a_zero_byte_object_has_no_blocks() {
    let mut harness = Harness::with_bucket();
    let record = harness.put("empty", 0, Unversioned);
    assert_eq!(record.erasure.parts, shard_map(0));
    assert!(record.erasure.parts[0].blocks.is_empty());
}

#[test]
fn unversioned_delete_removes_the_object() {
    let mut harness = Harness::with_bucket();
    let old = harness.put("a", 10, Unversioned);
    let output = harness.apply(delete("a", VersionSelector::Current, Unversioned));
    let Ok(Response::Deleted {
        removed: Some(removed),
        delete_marker: None,
    }) = output.result
    else {
        panic!("unexpected {output:?}")
    };
    assert_eq!(removed.version_id, old.version_id);
    assert_eq!(removed.state, TransactionState::Deleted);
    assert_eq!(output.new_garbage.len(), 1);
    assert_eq!(output.new_garbage[0].reason, GarbageReason::Deleted);
    assert!(harness.get("a", VersionSelector::Current).is_err());
    // Deleting a missing key succeeds with nothing removed, as in S3.
    assert_eq!(
        harness.ok(delete("a", VersionSelector::Current, Unversioned)),
        Response::Deleted {
            removed: None,
            delete_marker: None
        }
    );
}

#[test]
fn versioning_enabled_keeps_versions_and_uses_delete_markers() {
    let mut harness = Harness::with_bucket();
    let first = harness.put("a", 10, Enabled);
    let output_index = harness.next_log_index + 1;
    let second = harness.put("a", 20, Enabled);
    assert_eq!(second.commit_log_index, output_index);
    assert!(!first.null_version && !second.null_version);
    assert!(harness.garbage().is_empty());
    assert_eq!(
        harness.get("a", VersionSelector::Current),
        Ok(second.clone())
    );
    assert_eq!(
        harness.get("a", VersionSelector::Id(first.version_id)),
        Ok(first.clone())
    );

    let marker_index = harness.next_log_index;
    let response = harness.ok(delete("a", VersionSelector::Current, Enabled));
    let Response::Deleted {
        removed: None,
        delete_marker: Some(marker),
    } = response
    else {
        panic!("unexpected {response:?}")
    };
    assert_eq!(marker.version_id, VersionId(marker_index));
    assert!(marker.delete_marker && !marker.null_version);
    assert_eq!(marker.state, TransactionState::Committed);
    assert_eq!(
        harness.get("a", VersionSelector::Current),
        Err(MetaError::NoSuchKey {
            bucket: BUCKET.to_owned(),
            key: "a".to_owned(),
            delete_marker: Some(marker.version_id)
        })
    );
    assert_eq!(
        harness.get("a", VersionSelector::Id(marker.version_id)),
        Err(MetaError::MethodNotAllowedOnDeleteMarker {
            version_id: marker.version_id
        })
    );
    assert_eq!(
        harness.get("a", VersionSelector::Id(second.version_id)),
        Ok(second.clone())
    );

    // Removing the marker by id brings the previous version back.
    harness.ok(delete("a", VersionSelector::Id(marker.version_id), Enabled));
    assert_eq!(
        harness.get("a", VersionSelector::Current),
        Ok(second.clone())
    );
    // Removing the current version by id makes the older one current, with garbage.
    let output = harness.apply(delete("a", VersionSelector::Id(second.version_id), Enabled));
    assert_eq!(output.new_garbage.len(), 1);
    assert_eq!(output.new_garbage[0].version_id, Some(second.version_id));
    assert_eq!(harness.get("a", VersionSelector::Current), Ok(first));
    assert_eq!(
        harness.err(delete("a", VersionSelector::Id(VersionId(999)), Enabled)),
        MetaError::NoSuchVersion {
            bucket: BUCKET.to_owned(),
            key: "a".to_owned(),
            version: "00000000000003e7".to_owned()
        }
    );
}

#[test]
fn suspended_versioning_replaces_only_the_null_version() {
    let mut harness = Harness::with_bucket();
    let unversioned = harness.put("a", 10, Unversioned);
    let enabled = harness.put("a", 20, Enabled);
    // Writing while suspended replaces the old null version but keeps the versioned one.
    let output_index = harness.next_log_index + 1;
    let suspended = harness.put("a", 30, Suspended);
    assert!(suspended.null_version);
    let garbage = harness.garbage();
    assert_eq!(garbage.len(), 1);
    assert_eq!(garbage[0].garbage_id.log_index, output_index);
    assert_eq!(garbage[0].version_id, Some(unversioned.version_id));
    assert_eq!(
        harness.get("a", VersionSelector::Null),
        Ok(suspended.clone())
    );
    assert_eq!(
        harness.get("a", VersionSelector::Id(enabled.version_id)),
        Ok(enabled.clone())
    );
    // A delete while suspended removes the null version and adds a null delete marker.
    let response = harness.ok(delete("a", VersionSelector::Current, Suspended));
    let Response::Deleted {
        removed: Some(removed),
        delete_marker: Some(marker),
    } = response
    else {
        panic!("unexpected {response:?}")
    };
    assert_eq!(removed.version_id, suspended.version_id);
    assert!(marker.null_version && marker.delete_marker);
    assert!(matches!(
        harness.get("a", VersionSelector::Current),
        Err(MetaError::NoSuchKey {
            delete_marker: Some(_),
            ..
        })
    ));
    // Deleting the null version (the marker) uncovers the versioned object.
    harness.ok(delete("a", VersionSelector::Null, Suspended));
    assert_eq!(harness.get("a", VersionSelector::Current), Ok(enabled));
}

#[test]
fn janitor_lists_stale_preparing_oldest_first() {
    let mut harness = Harness::with_bucket();
    for (key, now_ms) in [("c", 3_000), ("a", 1_000), ("b", 2_000), ("d", 9_000)] {
        let mut command = prepare(BUCKET, key, key, 1, Unversioned);
        let Command::PrepareWrite(inner) = &mut command else {
            unreachable!()
        };
        inner.now_ms = now_ms;
        harness.ok(command);
    }
    harness.put("committed", 1, Unversioned);
    let stale = harness.query(Query::ListStalePreparing {
        created_before_ms: 5_000,
        limit: 2,
    });
    let Ok(Response::Objects(records)) = stale else {
        panic!("unexpected {stale:?}")
    };
    let keys: Vec<(&str, u64)> = records
        .iter()
        .map(|record| (record.key.as_str(), record.created_at_ms))
        .collect();
    assert_eq!(keys, vec![("a", 1_000), ("b", 2_000)]);
}

#[test]
fn healer_compare_and_set_of_the_shard_map() {
    let mut harness = Harness::with_bucket();
    let record = harness.put("a", 100, Unversioned);
    let mut parts = record.erasure.parts.clone();
    let moved = parts[0].blocks[0].shards[&ShardIndex(2)].clone();
    parts[0].blocks[0].shards.insert(
        ShardIndex(2),
        ShardPlacement {
            node_id: NodeId(555),
            availability_zone: "az-2".to_owned(),
            crc32c: moved.crc32c,
        },
    );
    let update = |expected_record_version| {
        Command::UpdateShardMap(UpdateShardMap {
            bucket: BUCKET.to_owned(),
            key: "a".to_owned(),
            version_id: record.version_id,
            expected_record_version,
            parts: parts.clone(),
            now_ms: 50_000,
        })
    };
    assert_eq!(
        harness.err(update(1)),
        MetaError::RecordVersionMismatch {
            expected: 1,
            actual: 2
        }
    );
    let output = harness.apply(update(2));
    let Ok(Response::Object(updated)) = output.result else {
        panic!("unexpected {output:?}")
    };
    assert_eq!(updated.record_version, 3);
    assert_eq!(updated.erasure.parts, parts);
    assert_eq!(output.new_garbage.len(), 1);
    assert_eq!(output.new_garbage[0].reason, GarbageReason::ShardsMoved);
    assert_eq!(
        output.new_garbage[0].parts,
        vec![PartShards {
            part_number: 1,
            length_bytes: 100,
            blocks: vec![BlockShards {
                length_bytes: 100,
                shards: BTreeMap::from([(ShardIndex(2), moved)]),
            }],
        }]
    );
}

#[test]
fn stale_log_index_changes_nothing() {
    let mut state = StateMachine::new(Role::Combined);
    assert!(state.apply(create_bucket(BUCKET, OWNER), 5).is_ok());
    let before = state.clone();
    let output = state.apply(create_bucket("other", OWNER), 5);
    assert_eq!(
        output.result,
        Err(MetaError::StaleLogIndex {
            log_index: 5,
            last_applied_index: 5
        })
    );
    assert_eq!(state, before);
    assert_eq!(state.last_applied_index(), 5);
    // Blank and membership entries advance the index without a command.
    state.apply_blank(7);
    state.apply_blank(6);
    assert_eq!(state.last_applied_index(), 7);
    assert!(matches!(
        state.apply(create_bucket("other", OWNER), 7).result,
        Err(MetaError::StaleLogIndex { .. })
    ));
    assert!(state.apply(create_bucket("other", OWNER), 8).is_ok());
}

#[test]
fn roles_route_commands_and_partitions_trust_the_gateway_for_buckets() {
    let mut partition = Harness::new(Role::ObjectPartition {
        partition_index: 3,
        partition_count: 8,
    });
    assert_eq!(
        partition.err(create_bucket(BUCKET, OWNER)),
        MetaError::WrongRole {
            command: "CreateBucket".to_owned(),
            role: partition.state.role()
        }
    );
    // No bucket record here: the gateway resolved the bucket, the partition accepts the write.
    let record = partition.put("a", 10, Unversioned);
    assert_eq!(partition.get("a", VersionSelector::Current), Ok(record));

    let mut service = Harness::new(Role::BucketService);
    service.ok(create_bucket(BUCKET, OWNER));
    assert_eq!(
        service.err(prepare(BUCKET, "a", "t", 1, Unversioned)),
        MetaError::WrongRole {
            command: "PrepareWrite".to_owned(),
            role: Role::BucketService,
        }
    );
    assert!(matches!(
        service.query(Query::ListObjects(ListObjectsRequest::default())),
        Err(MetaError::WrongRole { .. })
    ));

    // A Combined instance checks the bucket.
    let mut combined = Harness::new(Role::Combined);
    assert_eq!(
        combined.err(prepare("nope", "a", "t", 1, Unversioned)),
        MetaError::NoSuchBucket {
            bucket: "nope".to_owned()
        }
    );
}

#[test]
fn reads_through_the_log_match_direct_queries() {
    let mut harness = Harness::with_bucket();
    let record = harness.put("a", 10, Unversioned);
    let query = Query::GetObject {
        bucket: BUCKET.to_owned(),
        key: "a".to_owned(),
        version: VersionSelector::Current,
    };
    assert_eq!(
        harness.ok(Command::Read(query.clone())),
        Response::Object(record)
    );
    assert_eq!(
        harness.query(query).unwrap(),
        harness
            .state
            .query(&Query::GetObject {
                bucket: BUCKET.to_owned(),
                key: "a".to_owned(),
                version: VersionSelector::Current,
            })
            .unwrap()
    );
}

#[test]
fn invalid_keys_and_schemes_are_refused() {
    let mut harness = Harness::with_bucket();
    assert!(matches!(
        harness.err(prepare(BUCKET, "", "t", 1, Unversioned)),
        MetaError::InvalidArgument { .. }
    ));
    let long_key = "k".repeat(MAX_KEY_BYTES + 1);
    assert!(matches!(
        harness.err(prepare(BUCKET, &long_key, "t", 1, Unversioned)),
        MetaError::InvalidArgument { .. }
    ));
    let mut command = prepare(BUCKET, "a", "t", 1, Unversioned);
    let Command::PrepareWrite(inner) = &mut command else {
        unreachable!()
    };
    inner.ec_scheme = "isal-cauchy:0+2".to_owned();
    assert!(matches!(
        harness.err(command),
        MetaError::InvalidEcScheme { .. }
    ));
}

#[test]
fn ec_scheme_parsing() {
    let scheme = EcScheme::parse("isal-cauchy:8+4").unwrap();
    assert_eq!(
        scheme,
        EcScheme {
            codec: "isal-cauchy".to_owned(),
            data_shards: 8,
            parity_shards: 4
        }
    );
    assert_eq!(scheme.to_string(), "isal-cauchy:8+4");
    assert_eq!(scheme.minimum_commit_shards(), 9);
    assert_eq!(
        EcScheme::parse("rs:3+0").unwrap().minimum_commit_shards(),
        3
    );
    for bad in [
        "",
        "rs",
        "rs:4",
        "rs:4+",
        ":4+2",
        "rs:+2",
        "rs:a+2",
        "rs:200+56",
        "rs:-1+2",
    ] {
        assert!(EcScheme::parse(bad).is_err(), "{bad}");
    }
}

#[test]
fn ids_print_and_parse() {
    assert_eq!(VersionId(0x2a).to_string(), "000000000000002a");
    assert_eq!(VersionId::parse("000000000000002a"), Some(VersionId(0x2a)));
    assert_eq!(
        UploadId::parse(&UploadId(u64::MAX).to_string()),
        Some(UploadId(u64::MAX))
    );
    for bad in [
        "",
        "2a",
        "000000000000002A",
        "000000000000002g",
        "0000000000000002a",
    ] {
        assert_eq!(VersionId::parse(bad), None, "{bad}");
    }
    assert_eq!(shard_object_id(3, 7), (3u128 << 64) | 7);
    assert_eq!(Role::Combined.partition_index(), Some(0));
    assert_eq!(Role::BucketService.partition_index(), None);
    assert_eq!(
        Role::ObjectPartition {
            partition_index: 5,
            partition_count: 8
        }
        .partition_index(),
        Some(5)
    );
}
