//! Named attributes on buckets, object versions and multipart uploads (format version 2).

mod common;

use std::collections::BTreeMap;

use cairn_meta_state::*;
use common::*;

fn tags(value: &str) -> Attributes {
    BTreeMap::from([("tagging".to_owned(), value.as_bytes().to_vec())])
}

fn put_object_attribute(
    key: &str,
    version: VersionSelector,
    name: &str,
    value: Option<&str>,
) -> Command {
    Command::PutObjectAttribute {
        bucket: BUCKET.to_owned(),
        key: key.to_owned(),
        version,
        name: name.to_owned(),
        value: value.map(|value| value.as_bytes().to_vec()),
    }
}

#[test]
fn a_put_carries_its_attributes_to_the_committed_version() {
    let mut harness = Harness::with_bucket();
    let Command::PrepareWrite(mut command) =
        prepare(BUCKET, "a", "t1", 5, VersioningState::Unversioned)
    else {
        unreachable!()
    };
    command.attributes = tags("colour=red");
    let Response::Prepared { record, .. } = harness.ok(Command::PrepareWrite(command)) else {
        panic!("prepared")
    };
    assert_eq!(record.attributes, tags("colour=red"));
    harness.ok(commit(BUCKET, "a", record.version_id, "t1", 5));
    let current = harness.get("a", VersionSelector::Current).unwrap();
    assert_eq!(current.attributes, tags("colour=red"));
}

#[test]
fn object_attributes_are_set_replaced_and_removed_on_one_version() {
    let mut harness = Harness::with_bucket();
    let first = harness.put("a", 5, VersioningState::Enabled);
    let second = harness.put("a", 5, VersioningState::Enabled);
    let mut set_tagging = |value: Option<&str>| {
        let command =
            put_object_attribute("a", VersionSelector::Id(first.version_id), "tagging", value);
        match harness.ok(command) {
            Response::Object(record) => record,
            other => panic!("unexpected {other:?}"),
        }
    };
    let updated = set_tagging(Some("k=v"));
    assert_eq!(updated.version_id, first.version_id);
    assert_eq!(updated.attributes, tags("k=v"));
    assert_eq!(updated.record_version, first.record_version + 1);
    // Setting the same value again changes nothing, not even the record version.
    let again = set_tagging(Some("k=v"));
    assert_eq!(again.record_version, updated.record_version);
    let removed = set_tagging(None);
    assert!(removed.attributes.is_empty());
    assert_eq!(removed.record_version, updated.record_version + 1);
    // The other version is untouched.
    let current = harness.get("a", VersionSelector::Current).unwrap();
    assert_eq!(current.version_id, second.version_id);
    assert!(current.attributes.is_empty());
}

#[test]
fn object_attributes_need_a_committed_version_that_is_not_a_delete_marker() {
    let mut harness = Harness::with_bucket();
    assert!(matches!(
        harness.err(put_object_attribute(
            "missing",
            VersionSelector::Current,
            "tagging",
            Some("k=v")
        )),
        MetaError::NoSuchKey { .. }
    ));
    harness.put("a", 5, VersioningState::Enabled);
    let Response::Deleted {
        delete_marker: Some(marker),
        ..
    } = harness.ok(delete(
        "a",
        VersionSelector::Current,
        VersioningState::Enabled,
    ))
    else {
        panic!("a delete marker")
    };
    assert!(matches!(
        harness.err(put_object_attribute(
            "a",
            VersionSelector::Id(marker.version_id),
            "tagging",
            Some("k=v")
        )),
        MetaError::MethodNotAllowedOnDeleteMarker { .. }
    ));
    assert!(matches!(
        harness.err(put_object_attribute(
            "a",
            VersionSelector::Current,
            "tagging",
            Some("k=v")
        )),
        MetaError::NoSuchKey {
            delete_marker: Some(_),
            ..
        }
    ));
}

#[test]
fn bucket_attributes_are_set_and_removed() {
    let mut harness = Harness::with_bucket();
    let set = |value: Option<&str>| Command::PutBucketAttribute {
        bucket: BUCKET.to_owned(),
        name: "policy".to_owned(),
        value: value.map(|value| value.as_bytes().to_vec()),
    };
    let Response::Bucket(bucket) = harness.ok(set(Some("{\"Version\":\"2012-10-17\"}"))) else {
        panic!("bucket")
    };
    assert_eq!(
        bucket.attributes.get("policy").map(Vec::as_slice),
        Some(&b"{\"Version\":\"2012-10-17\"}"[..])
    );
    let Response::Bucket(bucket) = harness.ok(set(None)) else {
        panic!("bucket")
    };
    assert!(bucket.attributes.is_empty());
    assert!(matches!(
        harness.err(Command::PutBucketAttribute {
            bucket: "nope".to_owned(),
            name: "policy".to_owned(),
            value: None,
        }),
        MetaError::NoSuchBucket { .. }
    ));
}

#[test]
fn limits_are_enforced_by_every_command_that_sets_attributes() {
    let mut harness = Harness::with_bucket();
    let too_big = "x".repeat(MAX_ATTRIBUTE_VALUE_BYTES + 1);
    assert!(matches!(
        harness.err(Command::PutBucketAttribute {
            bucket: BUCKET.to_owned(),
            name: "policy".to_owned(),
            value: Some(too_big.clone().into_bytes()),
        }),
        MetaError::InvalidArgument { .. }
    ));
    let Command::PrepareWrite(mut command) =
        prepare(BUCKET, "a", "t1", 5, VersioningState::Unversioned)
    else {
        unreachable!()
    };
    command.attributes = BTreeMap::from([("".to_owned(), Vec::new())]);
    assert!(matches!(
        harness.err(Command::PrepareWrite(command)),
        MetaError::InvalidArgument { .. }
    ));
    for index in 0..MAX_ATTRIBUTES_PER_RECORD {
        harness.ok(Command::PutBucketAttribute {
            bucket: BUCKET.to_owned(),
            name: format!("name-{index}"),
            value: Some(Vec::new()),
        });
    }
    assert!(matches!(
        harness.err(Command::PutBucketAttribute {
            bucket: BUCKET.to_owned(),
            name: "one-more".to_owned(),
            value: Some(Vec::new()),
        }),
        MetaError::InvalidArgument { .. }
    ));
    // Replacing an existing name is still allowed at the limit.
    harness.ok(Command::PutBucketAttribute {
        bucket: BUCKET.to_owned(),
        name: "name-0".to_owned(),
        value: Some(b"v".to_vec()),
    });
}

#[test]
fn a_multipart_upload_hands_its_attributes_to_the_completed_version() {
    let mut harness = Harness::with_bucket();
    let Response::Upload(upload) =
        harness.ok(Command::CreateMultipartUpload(CreateMultipartUpload {
            bucket: BUCKET.to_owned(),
            key: "big".to_owned(),
            owner: OWNER.to_owned(),
            content_type: "application/octet-stream".to_owned(),
            user_metadata: BTreeMap::new(),
            storage_class: StorageClass::Standard,
            acl: Acl::default(),
            ec_scheme: SCHEME.to_owned(),
            piece_size_bytes: PIECE_SIZE_BYTES,
            now_ms: 1,
            attributes: tags("project=x"),
        }))
    else {
        panic!("upload")
    };
    assert_eq!(upload.attributes, tags("project=x"));
    harness.ok(Command::UploadPart(UploadPart {
        bucket: BUCKET.to_owned(),
        key: "big".to_owned(),
        upload_id: upload.upload_id,
        part_number: 1,
        size_bytes: 10,
        etag: "e1".to_owned(),
        checksum: None,
        blocks: vec![block(10, 0..6)],
        now_ms: 2,
    }));
    let Response::Committed { record, .. } =
        harness.ok(Command::CompleteMultipartUpload(CompleteMultipartUpload {
            bucket: BUCKET.to_owned(),
            key: "big".to_owned(),
            upload_id: upload.upload_id,
            parts: vec![CompletedPart {
                part_number: 1,
                etag: "e1".to_owned(),
            }],
            checksums: checksums("abc-1"),
            versioning: VersioningState::Unversioned,
            now_ms: 3,
        }))
    else {
        panic!("committed")
    };
    assert_eq!(record.attributes, tags("project=x"));
}

#[test]
fn a_rewrap_replaces_the_envelope_only_at_the_version_it_read() {
    let mut harness = Harness::with_bucket();
    let Command::PrepareWrite(mut command) =
        prepare(BUCKET, "e", "t1", 5, VersioningState::Enabled)
    else {
        unreachable!()
    };
    command.attributes = BTreeMap::from([("encryption".to_owned(), vec![1; 8])]);
    let Response::Prepared { record, .. } = harness.ok(Command::PrepareWrite(command)) else {
        panic!("prepared")
    };
    harness.ok(commit(BUCKET, "e", record.version_id, "t1", 5));
    let before = harness.get("e", VersionSelector::Current).unwrap();
    let rewrap = |record_version: u64, envelope: u8| Command::RewrapObjectEncryption {
        bucket: BUCKET.to_owned(),
        key: "e".to_owned(),
        version_id: before.version_id,
        record_version,
        envelope: vec![envelope; 8],
    };
    let Response::Object(after) = harness.ok(rewrap(before.record_version, 2)) else {
        panic!("answers the version")
    };
    assert_eq!(after.attributes["encryption"], vec![2; 8]);
    assert_eq!(after.record_version, before.record_version + 1);
    assert_eq!(after.size_bytes, before.size_bytes);
    // A second rewrap from the stale read is refused: the record changed meanwhile.
    assert_eq!(
        harness.err(rewrap(before.record_version, 3)),
        MetaError::RecordVersionMismatch {
            expected: before.record_version,
            actual: after.record_version,
        }
    );
    assert_eq!(
        harness
            .get("e", VersionSelector::Current)
            .unwrap()
            .attributes["encryption"],
        vec![2; 8]
    );
    // A version without an envelope is not given one.
    let plain = harness.put("p", 5, VersioningState::Enabled);
    assert!(matches!(
        harness.err(Command::RewrapObjectEncryption {
            bucket: BUCKET.to_owned(),
            key: "p".to_owned(),
            version_id: plain.version_id,
            record_version: plain.record_version,
            envelope: vec![1],
        }),
        MetaError::InvalidArgument { .. }
    ));
    assert!(matches!(
        harness.err(Command::RewrapObjectEncryption {
            bucket: BUCKET.to_owned(),
            key: "missing".to_owned(),
            version_id: plain.version_id,
            record_version: 1,
            envelope: vec![1],
        }),
        MetaError::NoSuchVersion { .. }
    ));
}

#[test]
fn a_rewrap_replaces_an_uploads_envelope_only_at_the_version_it_read() {
    let mut harness = Harness::with_bucket();
    let create = |attributes: Attributes, key: &str| {
        Command::CreateMultipartUpload(CreateMultipartUpload {
            bucket: BUCKET.to_owned(),
            key: key.to_owned(),
            owner: OWNER.to_owned(),
            content_type: "application/octet-stream".to_owned(),
            user_metadata: BTreeMap::new(),
            storage_class: StorageClass::Standard,
            acl: Acl::default(),
            ec_scheme: SCHEME.to_owned(),
            piece_size_bytes: PIECE_SIZE_BYTES,
            now_ms: 1,
            attributes,
        })
    };
    let Response::Upload(upload) = harness.ok(create(
        BTreeMap::from([("encryption".to_owned(), vec![1; 8])]),
        "big",
    )) else {
        panic!("upload")
    };
    let rewrap = |record_version: u64, envelope: u8| Command::RewrapUploadEncryption {
        bucket: BUCKET.to_owned(),
        key: "big".to_owned(),
        upload_id: upload.upload_id,
        record_version,
        envelope: vec![envelope; 8],
    };
    let Response::Upload(after) = harness.ok(rewrap(upload.record_version, 2)) else {
        panic!("answers the upload")
    };
    assert_eq!(after.attributes["encryption"], vec![2; 8]);
    assert_eq!(after.record_version, upload.record_version + 1);
    assert_eq!(
        harness.err(rewrap(upload.record_version, 3)),
        MetaError::RecordVersionMismatch {
            expected: upload.record_version,
            actual: after.record_version,
        }
    );
    let Response::Upload(plain) = harness.ok(create(BTreeMap::new(), "plain")) else {
        panic!("upload")
    };
    assert!(matches!(
        harness.err(Command::RewrapUploadEncryption {
            bucket: BUCKET.to_owned(),
            key: "plain".to_owned(),
            upload_id: plain.upload_id,
            record_version: plain.record_version,
            envelope: vec![1],
        }),
        MetaError::InvalidArgument { .. }
    ));
    assert!(matches!(
        harness.err(Command::RewrapUploadEncryption {
            bucket: BUCKET.to_owned(),
            key: "other".to_owned(),
            upload_id: plain.upload_id,
            record_version: 1,
            envelope: vec![1],
        }),
        MetaError::NoSuchUpload { .. }
    ));
}
