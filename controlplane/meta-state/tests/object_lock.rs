//! Object lock enforced inside the state machine (issue 11): legal hold, GOVERNANCE with and
//! without the bypass, COMPLIANCE that nothing shortens, removes or bypasses, expired retention,
//! the null-version replacement paths, the bucket rules; and the stored-length rule of encrypted
//! objects.

mod common;

use std::collections::BTreeMap;

use cairn_meta_state::object_lock::{
    LEGAL_HOLD_ATTRIBUTE, OBJECT_LOCK_ATTRIBUTE, ObjectLockConfiguration, RETENTION_ATTRIBUTE,
    Retention, RetentionMode, encode_legal_hold,
};
use cairn_meta_state::*;
use common::*;

fn set(key: &str, version_id: VersionId, name: &str, value: Option<Vec<u8>>) -> Command {
    Command::PutObjectAttribute {
        bucket: BUCKET.to_owned(),
        key: key.to_owned(),
        version: VersionSelector::Id(version_id),
        name: name.to_owned(),
        value,
    }
}

fn retention(mode: RetentionMode, retain_until_ms: u64) -> Option<Vec<u8>> {
    Some(
        Retention {
            mode,
            retain_until_ms,
        }
        .encode(),
    )
}

fn bypass(command: Command) -> Command {
    Command::BypassGovernanceRetention {
        command: Box::new(command),
    }
}

fn assert_locked(error: MetaError) {
    assert!(
        matches!(error, MetaError::ObjectLocked { .. }),
        "expected ObjectLocked, got {error:?}"
    );
}

/// `delete` runs at 30,000 ms.
const LATER_MS: u64 = 40_000;
const EARLIER_MS: u64 = 25_000;

/// Version "a" (versioning enabled) with the object-lock attribute `name` set to `value`.
fn put_protected(harness: &mut Harness, name: &str, value: Option<Vec<u8>>) -> ObjectRecord {
    let record = harness.put("a", 5, VersioningState::Enabled);
    harness.ok(set("a", record.version_id, name, value));
    record
}

#[test]
fn legal_hold_blocks_deletion_until_released() {
    let mut harness = Harness::with_bucket();
    let record = put_protected(
        &mut harness,
        LEGAL_HOLD_ATTRIBUTE,
        Some(encode_legal_hold(true)),
    );
    let id = VersionSelector::Id(record.version_id);
    assert_locked(harness.err(delete("a", id.clone(), VersioningState::Enabled)));
    // The bypass does not lift a legal hold.
    assert_locked(harness.err(bypass(delete("a", id.clone(), VersioningState::Enabled))));
    // A delete without a version id only adds a marker: allowed.
    harness.ok(delete(
        "a",
        VersionSelector::Current,
        VersioningState::Enabled,
    ));
    assert!(harness.get("a", id.clone()).is_ok());
    harness.ok(set(
        "a",
        record.version_id,
        LEGAL_HOLD_ATTRIBUTE,
        Some(encode_legal_hold(false)),
    ));
    harness.ok(delete("a", id.clone(), VersioningState::Enabled));
    assert!(harness.get("a", id).is_err());
}

#[test]
fn governance_needs_the_bypass() {
    let mut harness = Harness::with_bucket();
    let record = put_protected(
        &mut harness,
        RETENTION_ATTRIBUTE,
        retention(RetentionMode::Governance, LATER_MS),
    );
    let id = VersionSelector::Id(record.version_id);
    assert_locked(harness.err(delete("a", id.clone(), VersioningState::Enabled)));
    // Shortening or removing needs the bypass too; extending does not.
    assert_locked(harness.err(set("a", record.version_id, RETENTION_ATTRIBUTE, None)));
    harness.ok(set(
        "a",
        record.version_id,
        RETENTION_ATTRIBUTE,
        retention(RetentionMode::Governance, LATER_MS + 1),
    ));
    harness.ok(bypass(set(
        "a",
        record.version_id,
        RETENTION_ATTRIBUTE,
        retention(RetentionMode::Governance, LATER_MS),
    )));
    harness.ok(bypass(delete("a", id.clone(), VersioningState::Enabled)));
    assert!(harness.get("a", id).is_err());
}

#[test]
fn compliance_cannot_be_shortened_removed_or_bypassed() {
    let mut harness = Harness::with_bucket();
    let record = put_protected(
        &mut harness,
        RETENTION_ATTRIBUTE,
        retention(RetentionMode::Compliance, LATER_MS),
    );
    let id = VersionSelector::Id(record.version_id);
    assert_locked(harness.err(delete("a", id.clone(), VersioningState::Enabled)));
    assert_locked(harness.err(bypass(delete("a", id.clone(), VersioningState::Enabled))));
    for value in [
        None,
        retention(RetentionMode::Compliance, LATER_MS - 1),
        retention(RetentionMode::Governance, LATER_MS + 1),
    ] {
        assert_locked(harness.err(bypass(set(
            "a",
            record.version_id,
            RETENTION_ATTRIBUTE,
            value,
        ))));
    }
    harness.ok(set(
        "a",
        record.version_id,
        RETENTION_ATTRIBUTE,
        retention(RetentionMode::Compliance, LATER_MS * 2),
    ));
    assert!(harness.get("a", id).is_ok());
}

#[test]
fn expired_retention_no_longer_protects() {
    let mut harness = Harness::with_bucket();
    let record = put_protected(
        &mut harness,
        RETENTION_ATTRIBUTE,
        retention(RetentionMode::Compliance, EARLIER_MS),
    );
    harness.ok(delete(
        "a",
        VersionSelector::Id(record.version_id),
        VersioningState::Enabled,
    ));
}

#[test]
fn null_version_replacement_refuses_a_locked_version() {
    // Whatever versioning state a gateway claims, replacing a protected null version is refused:
    // the overwrite's commit and the unversioned delete.
    let mut harness = Harness::with_bucket();
    let record = harness.put("a", 5, VersioningState::Unversioned);
    harness.ok(set(
        "a",
        record.version_id,
        LEGAL_HOLD_ATTRIBUTE,
        Some(encode_legal_hold(true)),
    ));
    assert_locked(harness.err(delete(
        "a",
        VersionSelector::Current,
        VersioningState::Unversioned,
    )));
    assert_locked(harness.err(delete(
        "a",
        VersionSelector::Current,
        VersioningState::Suspended,
    )));
    let Response::Prepared { record: second, .. } = harness.ok(prepare(
        BUCKET,
        "a",
        "second",
        5,
        VersioningState::Unversioned,
    )) else {
        panic!("prepared")
    };
    assert_locked(harness.err(commit(BUCKET, "a", second.version_id, "second", 5)));
    let current = harness.get("a", VersionSelector::Current).unwrap();
    assert_eq!(current.version_id, record.version_id);
    assert!(
        harness.garbage().is_empty(),
        "nothing of the locked version became garbage"
    );
}

#[test]
fn object_lock_on_a_bucket_stays_and_keeps_versioning_on() {
    let mut harness = Harness::with_bucket();
    let configuration = ObjectLockConfiguration::default().encode();
    let put_lock = |value: Option<Vec<u8>>| Command::PutBucketAttribute {
        bucket: BUCKET.to_owned(),
        name: OBJECT_LOCK_ATTRIBUTE.to_owned(),
        value,
    };
    let versioning = |versioning| Command::PutBucketVersioning {
        bucket: BUCKET.to_owned(),
        versioning,
    };
    assert!(matches!(
        harness.err(put_lock(Some(configuration.clone()))),
        MetaError::ObjectLockConflict { .. }
    ));
    harness.ok(versioning(VersioningState::Enabled));
    harness.ok(put_lock(Some(configuration)));
    assert!(matches!(
        harness.err(versioning(VersioningState::Suspended)),
        MetaError::ObjectLockConflict { .. }
    ));
    assert!(matches!(
        harness.err(put_lock(None)),
        MetaError::ObjectLockConflict { .. }
    ));
}

#[test]
fn bypass_wraps_only_deletes_and_attribute_changes_and_round_trips() {
    let mut harness = Harness::with_bucket();
    assert!(matches!(
        harness.err(bypass(prepare(
            BUCKET,
            "a",
            "t",
            5,
            VersioningState::Enabled
        ))),
        MetaError::InvalidArgument { .. }
    ));
    let command = bypass(delete(
        "a",
        VersionSelector::Id(VersionId(7)),
        VersioningState::Enabled,
    ));
    let bytes = encode_record(&command);
    assert_eq!(decode_record::<Command>(&bytes).unwrap(), command);
    let error: Result<Response, MetaError> = Err(MetaError::ObjectLocked {
        bucket: "b".into(),
        key: "k".into(),
        version_id: VersionId(3),
        reason: "legal hold".into(),
    });
    let output = Output {
        result: error,
        new_garbage: Vec::new(),
    };
    assert_eq!(
        decode_record::<Output>(&encode_record(&output)).unwrap(),
        output
    );
}

#[test]
fn encrypted_objects_commit_shard_maps_of_their_stored_length() {
    let mut harness = Harness::with_bucket();
    // Chunk rule of the encryption envelope: 64 KiB plaintext chunks, 28 bytes overhead each.
    let mut envelope = vec![1u8, 0, 1, 0, 0, 0, 0, 0, 28];
    envelope.extend_from_slice(&[0xAB; 69]);
    let Command::PrepareWrite(mut command) =
        prepare(BUCKET, "e", "enc", 70_000, VersioningState::Enabled)
    else {
        unreachable!()
    };
    command.attributes = BTreeMap::from([("encryption".to_owned(), envelope)]);
    let Response::Prepared { record, .. } = harness.ok(Command::PrepareWrite(command)) else {
        panic!("prepared")
    };
    // The plaintext length is not what the shards hold.
    assert!(matches!(
        harness.err(commit(BUCKET, "e", record.version_id, "enc", 70_000)),
        MetaError::InvalidShardMap { .. }
    ));
    let Command::CommitWrite(mut commit_command) =
        commit(BUCKET, "e", record.version_id, "enc", 70_056)
    else {
        unreachable!()
    };
    commit_command.parts = shard_map(70_056);
    harness.ok(Command::CommitWrite(commit_command));
    let committed = harness.get("e", VersionSelector::Current).unwrap();
    assert_eq!(committed.size_bytes, 70_000);
    assert_eq!(committed.erasure.object_length_bytes, 70_056);
}

#[test]
fn a_bucket_created_with_object_lock_is_versioned() {
    let mut harness = Harness::new(Role::Combined);
    let Command::CreateBucket(mut command) = create_bucket(BUCKET, OWNER) else {
        unreachable!()
    };
    command.attributes = BTreeMap::from([(
        OBJECT_LOCK_ATTRIBUTE.to_owned(),
        ObjectLockConfiguration::default().encode(),
    )]);
    let Response::Bucket(record) = harness.ok(Command::CreateBucket(command)) else {
        panic!("bucket")
    };
    assert_eq!(record.versioning, VersioningState::Enabled);
    let Response::Bucket(plain) = harness.ok(create_bucket("plain-bucket", OWNER)) else {
        panic!("bucket")
    };
    assert_eq!(plain.versioning, VersioningState::Unversioned);
}

#[test]
fn a_conditional_delete_can_bypass_governance() {
    let mut harness = Harness::with_bucket();
    let record = put_protected(
        &mut harness,
        RETENTION_ATTRIBUTE,
        retention(RetentionMode::Governance, LATER_MS),
    );
    let id = VersionSelector::Id(record.version_id);
    let conditional = |etag: &str| Command::Conditional {
        condition: WriteCondition::EtagMatches(etag.to_owned()),
        observed: Some(record.version_id),
        command: Box::new(delete("a", id.clone(), VersioningState::Enabled)),
    };
    assert_locked(harness.err(conditional(&record.checksums.etag)));
    // The condition is still checked under the bypass.
    assert!(matches!(
        harness.err(bypass(conditional("other-etag"))),
        MetaError::PreconditionFailed { .. }
    ));
    harness.ok(bypass(conditional(&record.checksums.etag)));
    assert!(harness.get("a", id).is_err());
}
