//! Conditional writes (`If-None-Match: *`, `If-Match`): the condition is checked when the command
//! applies, so of two racing writers exactly one commits.

mod common;

use cairn_meta_state::*;
use common::*;

use VersioningState::{Enabled, Unversioned};

fn conditional(
    condition: WriteCondition,
    observed: Option<VersionId>,
    command: Command,
) -> Command {
    Command::Conditional {
        condition,
        observed,
        command: Box::new(command),
    }
}

fn prepared_id(response: Response) -> VersionId {
    match response {
        Response::Prepared { record, .. } => record.version_id,
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn if_none_match_lets_exactly_one_racing_writer_commit() {
    let mut harness = Harness::with_bucket();
    // Both writers checked before starting: no current version.
    let first = prepared_id(harness.ok(prepare(BUCKET, "k", "t1", 10, Unversioned)));
    let second = prepared_id(harness.ok(prepare(BUCKET, "k", "t2", 10, Unversioned)));
    let first_commit = commit(BUCKET, "k", first, "t1", 10);
    harness.ok(conditional(
        WriteCondition::Absent,
        None,
        first_commit.clone(),
    ));
    // The second writer saw no object, but one appeared since: a conflict, and nothing changes.
    let before = harness.get("k", VersionSelector::Current).unwrap();
    assert_eq!(
        harness.err(conditional(
            WriteCondition::Absent,
            None,
            commit(BUCKET, "k", second, "t2", 10)
        )),
        MetaError::ConditionalRequestConflict {
            bucket: BUCKET.to_owned(),
            key: "k".to_owned()
        }
    );
    assert_eq!(harness.get("k", VersionSelector::Current).unwrap(), before);
    // A writer that already saw the object gets PreconditionFailed.
    let third = prepared_id(harness.ok(prepare(BUCKET, "k", "t3", 10, Unversioned)));
    assert_eq!(
        harness.err(conditional(
            WriteCondition::Absent,
            Some(first),
            commit(BUCKET, "k", third, "t3", 10)
        )),
        MetaError::PreconditionFailed {
            bucket: BUCKET.to_owned(),
            key: "k".to_owned()
        }
    );
    // A retry of the commit that won passes (it is already committed).
    match harness.ok(conditional(WriteCondition::Absent, None, first_commit)) {
        Response::Committed { retried, .. } => assert!(retried),
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn if_none_match_treats_a_delete_marker_as_absent() {
    let mut harness = Harness::with_bucket();
    let put = harness.put("k", 10, Enabled);
    let Response::Deleted {
        delete_marker: Some(marker),
        ..
    } = harness.ok(delete("k", VersionSelector::Current, Enabled))
    else {
        panic!("a marker")
    };
    assert_ne!(put.version_id, marker.version_id);
    let version = prepared_id(harness.ok(prepare(BUCKET, "k", "t9", 10, Enabled)));
    harness.ok(conditional(
        WriteCondition::Absent,
        Some(marker.version_id),
        commit(BUCKET, "k", version, "t9", 10),
    ));
}

#[test]
fn if_match_compares_the_etag_and_needs_the_key() {
    let mut harness = Harness::with_bucket();
    let version = prepared_id(harness.ok(prepare(BUCKET, "k", "t1", 10, Unversioned)));
    assert!(matches!(
        harness.err(conditional(
            WriteCondition::EtagMatches("x".into()),
            None,
            commit(BUCKET, "k", version, "t1", 10)
        )),
        MetaError::NoSuchKey { .. }
    ));
    let existing = harness.put("k", 10, Unversioned);
    let etag = existing.checksums.etag.clone();
    let version = prepared_id(harness.ok(prepare(BUCKET, "k", "t2", 10, Unversioned)));
    assert!(matches!(
        harness.err(conditional(
            WriteCondition::EtagMatches("other".into()),
            Some(existing.version_id),
            commit(BUCKET, "k", version, "t2", 10)
        )),
        MetaError::PreconditionFailed { .. }
    ));
    harness.ok(conditional(
        WriteCondition::EtagMatches(etag.clone()),
        Some(existing.version_id),
        commit(BUCKET, "k", version, "t2", 10),
    ));
    // Conditional delete.
    let current = harness.get("k", VersionSelector::Current).unwrap();
    assert!(matches!(
        harness.err(conditional(
            WriteCondition::EtagMatches("other".into()),
            Some(current.version_id),
            delete("k", VersionSelector::Current, Unversioned)
        )),
        MetaError::PreconditionFailed { .. }
    ));
    harness.ok(conditional(
        WriteCondition::EtagMatches(etag),
        Some(current.version_id),
        delete("k", VersionSelector::Current, Unversioned),
    ));
    assert!(harness.get("k", VersionSelector::Current).is_err());
    // Only commits and deletes can carry a condition.
    assert!(matches!(
        harness.err(conditional(
            WriteCondition::Absent,
            None,
            prepare(BUCKET, "k", "t3", 1, Unversioned)
        )),
        MetaError::InvalidArgument { .. }
    ));
}

#[test]
fn conditional_command_bytes_are_golden() {
    let command = conditional(
        WriteCondition::EtagMatches("e".into()),
        Some(VersionId(7)),
        Command::DeleteBucket { bucket: "b".into() },
    );
    let expected: Vec<u8> = [
        &[0x02, 0x08][..],            // format version 2, kind Command
        &[24],                        // tag Conditional (23 is RecordLayout)
        &[1, 1, 0, 0, 0, b'e'],       // EtagMatches, "e" (u32 length)
        &[1, 7, 0, 0, 0, 0, 0, 0, 0], // Some(VersionId(7))
        &[11, 1, 0, 0, 0, b'b'],      // DeleteBucket "b"
    ]
    .concat();
    assert_eq!(encode_record(&command), expected);
    assert_eq!(decode_record::<Command>(&expected), Ok(command));
    let absent = conditional(
        WriteCondition::Absent,
        None,
        Command::DeleteBucket { bucket: "b".into() },
    );
    assert_eq!(
        decode_record::<Command>(&encode_record(&absent)),
        Ok(absent)
    );
}
