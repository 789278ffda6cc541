//! Region-tagged version ids, and replicas that keep their source version's id: the id a
//! replica shows (the attribute `REPLICA_VERSION_ATTRIBUTE`) names it in reads, listings,
//! listing markers, deletes and delete-marker answers; ids that could clash are refused.

mod common;

use cairn_meta_state::*;
use common::*;

use VersioningState::Enabled;

/// This region's tag in these tests (us-west-2's), and a source region's (us-east-1's).
const OWN_TAG: u8 = 0x57;
const SOURCE_TAG: u8 = 0xec;

fn tagged_harness() -> Harness {
    let mut harness = Harness::with_bucket();
    assert_eq!(
        harness.ok(Command::SetVersionTag { tag: OWN_TAG }),
        Response::VersionTag(OWN_TAG)
    );
    harness
}

fn kept(version_id: VersionId) -> Attributes {
    Attributes::from([(
        REPLICA_VERSION_ATTRIBUTE.to_owned(),
        version_id.to_string().into_bytes(),
    )])
}

fn prepare_with(key: &str, token: &str, attributes: Attributes) -> Command {
    let Command::PrepareWrite(mut prepare) = prepare(BUCKET, key, token, 10, Enabled) else {
        unreachable!()
    };
    prepare.attributes = attributes;
    Command::PrepareWrite(prepare)
}

/// A committed replica of `key` keeping `source`; its record.
fn replica_put(harness: &mut Harness, key: &str, token: &str, source: VersionId) -> ObjectRecord {
    let Response::Prepared { record, .. } = harness.ok(prepare_with(key, token, kept(source)))
    else {
        panic!("a prepared record")
    };
    match harness.ok(commit(BUCKET, key, record.version_id, token, 10)) {
        Response::Committed { record, .. } => record,
        other => panic!("unexpected {other:?}"),
    }
}

fn replica_marker(key: &str, attributes: Attributes) -> Command {
    let Command::DeleteObject(delete) = delete(key, VersionSelector::Current, Enabled) else {
        unreachable!()
    };
    Command::ReplicaDeleteMarker { delete, attributes }
}

fn invalid_reason(error: MetaError) -> String {
    match error {
        MetaError::InvalidArgument { reason } => reason,
        other => panic!("expected InvalidArgument, got {other:?}"),
    }
}

#[test]
fn region_tags_are_a_fixed_function_of_the_name() {
    // Pinned: a change of the function would let two regions' new ids collide with old ones.
    assert_eq!(region_version_tag("us-east-1"), 0xec);
    assert_eq!(region_version_tag("us-west-2"), 0x57);
    assert_eq!(region_version_tag("eu-west-1"), 0xfb);
    for index in 0..2_000 {
        let tag = region_version_tag(&format!("region-{index}"));
        assert_ne!(tag, 0, "0 is the untagged form");
    }
    let id = VersionId::tagged(0x57, 42);
    assert_eq!(id.region_tag(), 0x57);
    assert_eq!(id.to_string(), "570000000000002a");
    assert_eq!(VersionId::parse("570000000000002a"), Some(id));
    assert_eq!(VersionId(42).region_tag(), 0);
}

#[test]
fn versions_carry_the_region_tag_and_untagged_ones_keep_their_ids() {
    let mut harness = Harness::with_bucket();
    let old = harness.put("a", 10, Enabled);
    assert_eq!(
        old.version_id.region_tag(),
        0,
        "tag 0 keeps the ids of before"
    );
    // Set through the log, once: the same tag again is a no-op, another or 0 is refused.
    for _ in 0..2 {
        assert_eq!(
            harness.ok(Command::SetVersionTag { tag: OWN_TAG }),
            Response::VersionTag(OWN_TAG)
        );
    }
    for tag in [SOURCE_TAG, 0] {
        invalid_reason(harness.err(Command::SetVersionTag { tag }));
    }
    assert_eq!(harness.state.version_tag(), OWN_TAG);
    // It is in snapshots (the harness round-trips one after every command), so a replica
    // restored from one creates the same ids.
    let restored = StateMachine::from_snapshot_bytes(&harness.state.to_snapshot_bytes()).unwrap();
    assert_eq!(restored.version_tag(), OWN_TAG);
    let new = harness.put("a", 10, Enabled);
    assert_eq!(new.version_id.region_tag(), OWN_TAG);
    assert_eq!(
        new.version_id.0 & ((1 << VERSION_TAG_SHIFT) - 1),
        new.commit_log_index - 1,
        "the low bits are the PrepareWrite's id index"
    );
    // Both stay readable by id, and the newer commit is current whatever the ids' order.
    assert_eq!(
        harness
            .get("a", VersionSelector::Id(old.version_id))
            .unwrap(),
        old
    );
    assert_eq!(
        harness
            .get("a", VersionSelector::Current)
            .unwrap()
            .version_id,
        new.version_id
    );
    let marker = match harness.ok(delete("a", VersionSelector::Current, Enabled)) {
        Response::Deleted {
            delete_marker: Some(marker),
            ..
        } => marker,
        other => panic!("unexpected {other:?}"),
    };
    assert_eq!(marker.version_id.region_tag(), OWN_TAG);
    let (upload_key, parts) = ("mp", [(1, 5 << 20)]);
    let upload = create_upload(&mut harness, upload_key);
    harness.ok(upload_part(upload_key, upload.upload_id, 1, 5 << 20));
    match harness.ok(complete(upload_key, upload.upload_id, &parts, Enabled)) {
        Response::Committed { record, .. } => {
            assert_eq!(record.version_id.region_tag(), OWN_TAG);
            // The shards were named by the upload id, which stays untagged and local.
            assert_eq!(record.shard_name_id(), upload.upload_id.0);
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn a_replica_keeps_its_source_id_in_reads_listings_and_deletes() {
    let mut harness = tagged_harness();
    let local = harness.put("k", 10, Enabled);
    let source = VersionId::tagged(SOURCE_TAG, 7);
    let replica = replica_put(&mut harness, "k", "replica-1", source);
    assert_eq!(replica.s3_version_id(), source);
    assert_eq!(
        replica.version_id.region_tag(),
        OWN_TAG,
        "the record keeps a local id"
    );
    let newer = harness.put("k", 10, Enabled);

    // Reads: by the kept id, and (for the partition's own callers) by the local id.
    assert_eq!(
        harness.get("k", VersionSelector::Id(source)).unwrap(),
        replica
    );
    assert_eq!(
        harness
            .get("k", VersionSelector::Id(replica.version_id))
            .unwrap(),
        replica
    );
    // An id of the source's region that no replica keeps names nothing.
    assert!(matches!(
        harness.get("k", VersionSelector::Id(VersionId::tagged(SOURCE_TAG, 8))),
        Err(MetaError::NoSuchVersion { .. })
    ));

    // Listings show S3 ids, newest commit first, and resume after a kept id.
    let ids: Vec<VersionId> = bucket_versions(&harness.state)
        .iter()
        .map(|summary| summary.version_id)
        .collect();
    assert_eq!(ids, vec![newer.version_id, source, local.version_id]);
    let page = match harness.query(Query::ListVersions(ListVersionsRequest {
        bucket: BUCKET.to_owned(),
        key_marker: Some("k".to_owned()),
        version_id_marker: Some(source),
        max_keys: 10,
        ..Default::default()
    })) {
        Ok(Response::VersionList(page)) => page,
        other => panic!("unexpected {other:?}"),
    };
    let after: Vec<VersionId> = page.versions.iter().map(|s| s.version_id).collect();
    assert_eq!(after, vec![local.version_id]);
    let page = match harness.query(Query::ListVersions(ListVersionsRequest {
        bucket: BUCKET.to_owned(),
        max_keys: 2,
        ..Default::default()
    })) {
        Ok(Response::VersionList(page)) => page,
        other => panic!("unexpected {other:?}"),
    };
    assert!(page.is_truncated);
    assert_eq!(page.next_version_id_marker, Some(source));

    // A delete by the kept id removes the replica.
    match harness.ok(delete("k", VersionSelector::Id(source), Enabled)) {
        Response::Deleted {
            removed: Some(removed),
            ..
        } => assert_eq!(removed.version_id, replica.version_id),
        other => panic!("unexpected {other:?}"),
    }
    assert!(harness.get("k", VersionSelector::Id(source)).is_err());
    // With it gone, its id may be kept again (a later copy of the same source version).
    replica_put(&mut harness, "k", "replica-2", source);
}

#[test]
fn kept_ids_that_could_clash_are_refused() {
    let mut harness = tagged_harness();
    let source = VersionId::tagged(SOURCE_TAG, 7);
    replica_put(&mut harness, "k", "first", source);

    // The key has a version with this id already (another source bucket's replica).
    let reason = invalid_reason(harness.err(prepare_with("k", "second", kept(source))));
    assert!(reason.contains("already has"), "{reason}");
    // Another key may keep the same id: S3 ids are unique per key.
    replica_put(&mut harness, "other", "third", source);
    // A retry of the first write (same token) is answered, not refused.
    match harness.ok(prepare_with("k", "first", kept(source))) {
        Response::Prepared { retried, .. } => assert!(retried),
        other => panic!("unexpected {other:?}"),
    }

    // This region's own tag could equal a future local id; no tag is the form of old ids.
    for id in [VersionId::tagged(OWN_TAG, 1_000_000), VersionId(1_000_000)] {
        let reason = invalid_reason(harness.err(prepare_with("n", "own", kept(id))));
        assert!(reason.contains("another region"), "{reason}");
    }
    let malformed = Attributes::from([(REPLICA_VERSION_ATTRIBUTE.to_owned(), b"7".to_vec())]);
    invalid_reason(harness.err(prepare_with("n", "bad", malformed)));

    // The same checks guard multipart uploads, at creation and again at completion.
    let create = |attributes: Attributes| create_upload_command("mp", attributes);
    invalid_reason(harness.err(create(kept(VersionId::tagged(OWN_TAG, 3)))));
    let mp_source = VersionId::tagged(SOURCE_TAG, 99);
    let upload = match harness.ok(create(kept(mp_source))) {
        Response::Upload(upload) => upload,
        other => panic!("unexpected {other:?}"),
    };
    harness.ok(upload_part("mp", upload.upload_id, 1, 100));
    // The id is taken while the upload is open.
    replica_put(&mut harness, "mp", "racing", mp_source);
    let reason =
        invalid_reason(harness.err(complete("mp", upload.upload_id, &[(1, 100)], Enabled)));
    assert!(reason.contains("already has"), "{reason}");
    let second = match harness.ok(create(kept(VersionId::tagged(SOURCE_TAG, 100)))) {
        Response::Upload(upload) => upload,
        other => panic!("unexpected {other:?}"),
    };
    harness.ok(upload_part("mp", second.upload_id, 1, 100));
    match harness.ok(complete("mp", second.upload_id, &[(1, 100)], Enabled)) {
        Response::Committed { record, .. } => {
            assert_eq!(record.s3_version_id(), VersionId::tagged(SOURCE_TAG, 100));
        }
        other => panic!("unexpected {other:?}"),
    }

    // A version's S3 id never changes afterwards.
    let reason = invalid_reason(harness.err(Command::PutObjectAttribute {
        bucket: BUCKET.to_owned(),
        key: "k".to_owned(),
        version: VersionSelector::Id(source),
        name: REPLICA_VERSION_ATTRIBUTE.to_owned(),
        value: Some(VersionId::tagged(SOURCE_TAG, 8).to_string().into_bytes()),
    }));
    assert!(
        reason.contains("only when a replica is written"),
        "{reason}"
    );
}

#[test]
fn a_replica_delete_marker_keeps_its_source_id() {
    let mut harness = tagged_harness();
    let version = harness.put("k", 10, Enabled);
    let source = VersionId::tagged(SOURCE_TAG, 31);
    let mut attributes = kept(source);
    attributes.insert(
        REPLICATION_STATUS_ATTRIBUTE.to_owned(),
        ReplicationStatus::Replica.as_str().as_bytes().to_vec(),
    );
    let marker = match harness.ok(replica_marker("k", attributes.clone())) {
        Response::Deleted {
            delete_marker: Some(marker),
            removed: None,
        } => marker,
        other => panic!("unexpected {other:?}"),
    };
    assert!(marker.delete_marker);
    assert_eq!(marker.s3_version_id(), source);
    assert_eq!(marker.attributes, attributes);
    // Answers about the marker name it by the kept id.
    assert_eq!(
        harness.get("k", VersionSelector::Current),
        Err(MetaError::NoSuchKey {
            bucket: BUCKET.to_owned(),
            key: "k".to_owned(),
            delete_marker: Some(source),
        })
    );
    assert_eq!(
        harness.get("k", VersionSelector::Id(source)),
        Err(MetaError::MethodNotAllowedOnDeleteMarker { version_id: source })
    );
    // The same id twice is refused; so is a marker that is not a plain versioned delete.
    invalid_reason(harness.err(replica_marker("k", kept(source))));
    let Command::DeleteObject(by_id) =
        delete("k", VersionSelector::Id(version.version_id), Enabled)
    else {
        unreachable!()
    };
    invalid_reason(harness.err(Command::ReplicaDeleteMarker {
        delete: by_id,
        attributes: Attributes::new(),
    }));
    let Command::DeleteObject(unversioned) =
        delete("k", VersionSelector::Current, VersioningState::Unversioned)
    else {
        unreachable!()
    };
    invalid_reason(harness.err(Command::ReplicaDeleteMarker {
        delete: unversioned,
        attributes: Attributes::new(),
    }));
    // Removing the marker by its kept id brings the version back.
    harness.ok(delete("k", VersionSelector::Id(source), Enabled));
    assert_eq!(
        harness
            .get("k", VersionSelector::Current)
            .unwrap()
            .version_id,
        version.version_id
    );
}
