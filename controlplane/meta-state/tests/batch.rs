//! Group commit: `Command::Batch` applies several commands in one log entry, each at its own id
//! index, with one output per command.

mod common;

use cairn_meta_state::*;
use common::*;

use VersioningState::{Enabled, Unversioned};

fn batch_outputs(output: Output) -> Vec<Output> {
    assert!(
        output.new_garbage.is_empty(),
        "garbage goes with each command"
    );
    match output.result {
        Ok(Response::Batch(outputs)) => outputs,
        other => panic!("unexpected {other:?}"),
    }
}

fn prepared(output: &Output) -> ObjectRecord {
    match &output.result {
        Ok(Response::Prepared {
            record,
            retried: false,
        }) => record.clone(),
        other => panic!("unexpected {other:?}"),
    }
}

fn committed(output: &Output) -> ObjectRecord {
    match &output.result {
        Ok(Response::Committed {
            record,
            retried: false,
        }) => record.clone(),
        other => panic!("unexpected {other:?}"),
    }
}

fn versions(harness: &Harness) -> Vec<(VersionId, bool)> {
    bucket_versions(&harness.state)
        .into_iter()
        .map(|version| (version.version_id, version.is_latest))
        .collect()
}

#[test]
fn two_puts_of_one_key_in_one_batch_get_distinct_ids_and_the_later_commit_wins() {
    let mut harness = Harness::with_bucket(); // CreateBucket at log index 1
    assert_eq!(harness.state.last_id_index(), 1);
    // Log index 2: both PrepareWrites in one entry.
    let outputs = batch_outputs(harness.apply(Command::Batch(vec![
        prepare(BUCKET, "k", "t1", 10, Enabled),
        prepare(BUCKET, "k", "t2", 20, Enabled),
    ])));
    let first = prepared(&outputs[0]);
    let second = prepared(&outputs[1]);
    assert_eq!(first.version_id, VersionId(2));
    assert_eq!(second.version_id, VersionId(3));
    assert_eq!(harness.state.last_applied_index(), 2);
    assert_eq!(harness.state.last_id_index(), 3);
    // Log index 3: both CommitWrites in one entry; id indexes 4 and 5.
    let outputs = batch_outputs(harness.apply(Command::Batch(vec![
        commit(BUCKET, "k", first.version_id, "t1", 10),
        commit(BUCKET, "k", second.version_id, "t2", 20),
    ])));
    assert_eq!(committed(&outputs[0]).commit_log_index, 4);
    assert_eq!(committed(&outputs[1]).commit_log_index, 5);
    assert_eq!(
        harness
            .get("k", VersionSelector::Current)
            .unwrap()
            .version_id,
        second.version_id
    );
    assert_eq!(
        versions(&harness),
        vec![(second.version_id, true), (first.version_id, false)]
    );
    // A plain entry after the batches takes the next id index, not its log index (4), which
    // the batch already used.
    let record = harness.put("k", 30, Enabled);
    assert_eq!(record.version_id, VersionId(6));
    assert_eq!(record.commit_log_index, 7);
    assert_eq!(harness.state.last_applied_index(), 5);
    assert_eq!(
        versions(&harness),
        vec![
            (VersionId(6), true),
            (second.version_id, false),
            (first.version_id, false)
        ]
    );
}

#[test]
fn commits_in_one_batch_order_as_applied_not_as_prepared() {
    let mut harness = Harness::with_bucket();
    let first = prepared(&harness.apply(prepare(BUCKET, "k", "t1", 10, Enabled)));
    let second = prepared(&harness.apply(prepare(BUCKET, "k", "t2", 20, Enabled)));
    // The later-prepared version commits first inside the batch: the earlier one is current.
    let outputs = batch_outputs(harness.apply(Command::Batch(vec![
        commit(BUCKET, "k", second.version_id, "t2", 20),
        commit(BUCKET, "k", first.version_id, "t1", 10),
    ])));
    assert!(committed(&outputs[0]).commit_log_index < committed(&outputs[1]).commit_log_index);
    assert_eq!(
        harness
            .get("k", VersionSelector::Current)
            .unwrap()
            .version_id,
        first.version_id
    );
    assert_eq!(
        versions(&harness),
        vec![(first.version_id, true), (second.version_id, false)]
    );
    // Unversioned: the later commit replaces the earlier one, whose shards become garbage in
    // that command's own output.
    let mut harness = Harness::with_bucket();
    let a = prepared(&harness.apply(prepare(BUCKET, "u", "ta", 10, Unversioned)));
    let b = prepared(&harness.apply(prepare(BUCKET, "u", "tb", 20, Unversioned)));
    let outputs = batch_outputs(harness.apply(Command::Batch(vec![
        commit(BUCKET, "u", a.version_id, "ta", 10),
        commit(BUCKET, "u", b.version_id, "tb", 20),
    ])));
    assert!(outputs[0].new_garbage.is_empty());
    assert_eq!(outputs[1].new_garbage.len(), 1);
    assert_eq!(outputs[1].new_garbage[0].version_id, Some(a.version_id));
    assert_eq!(
        harness
            .get("u", VersionSelector::Current)
            .unwrap()
            .version_id,
        b.version_id
    );
}

#[test]
fn a_refused_command_leaves_its_neighbours_alone() {
    let mut harness = Harness::with_bucket();
    let outputs = batch_outputs(harness.apply(Command::Batch(vec![
        prepare(BUCKET, "a", "ta", 10, Unversioned),
        // No such write: refused, and its shard map is recorded as garbage (the documented
        // exception), in this command's output only.
        commit(BUCKET, "x", VersionId(999), "tx", 10),
        prepare("no-such-bucket", "b", "tb", 10, Unversioned),
        Command::Batch(Vec::new()),
        prepare(BUCKET, "c", "tc", 10, Unversioned),
    ])));
    assert_eq!(outputs.len(), 5);
    assert_eq!(prepared(&outputs[0]).version_id, VersionId(2));
    assert_eq!(
        outputs[1].result,
        Err(MetaError::NoSuchWrite {
            bucket: BUCKET.to_owned(),
            key: "x".to_owned(),
            version_id: VersionId(999),
        })
    );
    assert_eq!(outputs[1].new_garbage.len(), 1);
    assert_eq!(
        outputs[1].new_garbage[0].garbage_id,
        GarbageId {
            log_index: 3,
            sequence: 0
        }
    );
    assert_eq!(
        outputs[2].result,
        Err(MetaError::NoSuchBucket {
            bucket: "no-such-bucket".to_owned()
        })
    );
    assert!(outputs[2].new_garbage.is_empty());
    assert_eq!(
        outputs[3].result,
        Err(MetaError::InvalidArgument {
            reason: "a batch cannot hold another batch".to_owned()
        })
    );
    // The nested batch took no id index: the last prepare has 5 (2, 3, 4 went to the others).
    assert_eq!(prepared(&outputs[4]).version_id, VersionId(5));
    assert!(harness.get("a", VersionSelector::Current).is_err());
    assert_eq!(harness.garbage().len(), 1);
}

#[test]
fn retried_commands_inside_a_batch_answer_like_retries() {
    // A batch whose answer was lost is retried command by command by the client (possibly in
    // another batch): the idempotency tokens make the retries no-ops.
    let mut harness = Harness::with_bucket();
    let outputs = batch_outputs(harness.apply(Command::Batch(vec![prepare(
        BUCKET,
        "k",
        "t1",
        10,
        Unversioned,
    )])));
    let record = prepared(&outputs[0]);
    let outputs = batch_outputs(harness.apply(Command::Batch(vec![
        prepare(BUCKET, "k", "t1", 10, Unversioned),
        commit(BUCKET, "k", record.version_id, "t1", 10),
        commit(BUCKET, "k", record.version_id, "t1", 10),
    ])));
    assert!(matches!(
        &outputs[0].result,
        Ok(Response::Prepared { record: again, retried: true }) if again.version_id == record.version_id
    ));
    let first_commit = committed(&outputs[1]);
    assert!(matches!(
        &outputs[2].result,
        Ok(Response::Committed { record: again, retried: true }) if *again == first_commit
    ));
    assert_eq!(versions(&harness), vec![(record.version_id, true)]);
}

#[test]
fn a_stale_batch_changes_nothing_and_replicas_agree() {
    let mut harness = Harness::with_bucket();
    let batch = Command::Batch(vec![
        prepare(BUCKET, "a", "ta", 10, Unversioned),
        prepare(BUCKET, "b", "tb", 10, Unversioned),
    ]);
    harness.apply(batch.clone());
    let before = harness.state.clone();
    let output = harness.state.apply(batch.clone(), 2);
    assert_eq!(
        output.result,
        Err(MetaError::StaleLogIndex {
            log_index: 2,
            last_applied_index: 2
        })
    );
    assert_eq!(harness.state, before);
    // A replica restored from a snapshot taken after the batch continues with the same ids.
    let mut replica =
        StateMachine::from_snapshot_bytes(&harness.state.to_snapshot_bytes()).unwrap();
    assert_eq!(replica.last_id_index(), 3);
    let next = prepare(BUCKET, "c", "tc", 10, Unversioned);
    assert_eq!(replica.apply(next.clone(), 3), harness.apply(next));
    assert_eq!(replica, harness.state);
    // A blank entry (openraft's no-op) at an index above the id floor raises it.
    replica.apply_blank(9);
    assert_eq!(replica.last_id_index(), 9);
    let output = replica.apply(prepare(BUCKET, "d", "td", 10, Unversioned), 10);
    assert_eq!(prepared(&output).version_id, VersionId(10));
}

#[test]
fn a_wrapped_batch_is_refused() {
    let mut harness = Harness::with_bucket();
    let output = harness.apply(Command::QueueReplication {
        now_ms: None,
        command: Box::new(Command::Batch(Vec::new())),
    });
    assert!(output.result.is_err());
    let output = harness.apply(Command::Batch(vec![Command::BypassGovernanceRetention {
        command: Box::new(Command::Batch(Vec::new())),
    }]));
    let outputs = batch_outputs(output);
    assert!(matches!(
        outputs[0].result,
        Err(MetaError::InvalidArgument { .. })
    ));
}

#[test]
fn batch_bytes_are_golden() {
    let command = Command::Batch(vec![
        Command::DeleteBucket { bucket: "b".into() },
        Command::SealBucket { bucket: "c".into() },
    ]);
    let expected: Vec<u8> = [
        &[0x02, 0x08][..],       // format version 2, kind Command
        &[70],                   // tag Batch
        &[2, 0, 0, 0],           // two commands
        &[11, 1, 0, 0, 0, b'b'], // DeleteBucket "b"
        &[21, 1, 0, 0, 0, b'c'], // SealBucket "c"
    ]
    .concat();
    assert_eq!(encode_record(&command), expected);
    assert_eq!(decode_record::<Command>(&expected), Ok(command));
    // A batch inside a batch is refused by the decoder too.
    let nested: Vec<u8> = [&[0x02, 0x08, 70, 1, 0, 0, 0][..], &[70, 0, 0, 0, 0]].concat();
    assert!(matches!(
        decode_record::<Command>(&nested),
        Err(DecodeError::InvalidTag { tag: 70, .. })
    ));

    let output = Output {
        result: Ok(Response::Batch(vec![
            Output {
                result: Ok(Response::Purged { purged_count: 3 }),
                new_garbage: Vec::new(),
            },
            Output {
                result: Err(MetaError::NoSuchBucket { bucket: "b".into() }),
                new_garbage: Vec::new(),
            },
        ])),
        new_garbage: Vec::new(),
    };
    let expected: Vec<u8> = [
        &[0x02, 0x09][..],         // format version 2, kind Output
        &[0, 70],                  // Ok, response tag Batch
        &[2, 0, 0, 0],             // two outputs
        &[0, 14, 3, 0, 0, 0],      // Ok Purged { 3 }
        &[0, 0, 0, 0],             // no garbage
        &[1, 0, 1, 0, 0, 0, b'b'], // Err NoSuchBucket "b"
        &[0, 0, 0, 0],             // no garbage
        &[0, 0, 0, 0],             // the batch's own garbage: none
    ]
    .concat();
    assert_eq!(encode_record(&output), expected);
    assert_eq!(decode_record::<Output>(&expected), Ok(output));
}

#[test]
fn snapshot_keeps_the_id_floor_only_when_a_batch_moved_it() {
    let mut state = StateMachine::new(Role::Combined);
    state.apply(create_bucket(BUCKET, OWNER), 1);
    let plain = state.to_snapshot_bytes();
    state.apply(
        Command::Batch(vec![
            prepare(BUCKET, "a", "ta", 1, Unversioned),
            prepare(BUCKET, "b", "tb", 1, Unversioned),
        ]),
        2,
    );
    assert_eq!(state.last_id_index(), 3);
    let bytes = state.to_snapshot_bytes();
    let body = &bytes[..bytes.len() - 4];
    // The trailing section: three empty sections (suspects, KMS keys, replication queue), then
    // the id floor.
    let tail: Vec<u8> = [[0u8; 12].to_vec(), 3u64.to_le_bytes().to_vec()].concat();
    assert!(body.ends_with(&tail), "{body:?}");
    assert_eq!(StateMachine::from_snapshot_bytes(&bytes), Ok(state.clone()));
    // Without a batch no section is added: the bytes end where they always did.
    let restored = StateMachine::from_snapshot_bytes(&plain).unwrap();
    assert_eq!(restored.last_id_index(), 1);
    // An id floor at or below the last applied index is not canonical.
    let mut forged = body[..body.len() - 8].to_vec();
    forged.extend_from_slice(&2u64.to_le_bytes());
    let checksum = crc32c::crc32c(&forged);
    forged.extend_from_slice(&checksum.to_le_bytes());
    assert!(matches!(
        StateMachine::from_snapshot_bytes(&forged),
        Err(DecodeError::NotCanonical {
            what: "last id index",
            ..
        })
    ));
}
