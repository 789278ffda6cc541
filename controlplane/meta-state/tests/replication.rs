//! The replication queue: committed writes and delete markers queued in the command that commits
//! them, listed in order, resolved atomically with the source version's status, kept in
//! snapshots (the harness round-trips a snapshot after every command).

mod common;

use cairn_meta_state::*;
use common::*;

use VersioningState::Enabled;

fn queued(command: Command) -> Command {
    Command::QueueReplication {
        command: Box::new(command),
    }
}

fn list(harness: &Harness, after_seq: Option<u64>, limit: u32) -> Vec<ReplicationEntry> {
    match harness.query(Query::ListReplicationQueue { after_seq, limit }) {
        Ok(Response::ReplicationQueue(entries)) => entries,
        other => panic!("unexpected answer {other:?}"),
    }
}

fn status(record: &ObjectRecord) -> Option<ReplicationStatus> {
    record
        .attributes
        .get(REPLICATION_STATUS_ATTRIBUTE)
        .map(|value| ReplicationStatus::parse(value).expect("a known status"))
}

/// PrepareWrite + a queued CommitWrite; the committed record.
fn queued_put(harness: &mut Harness, key: &str, token: &str) -> ObjectRecord {
    let Response::Prepared { record, .. } = harness.ok(prepare(BUCKET, key, token, 10, Enabled))
    else {
        panic!("a prepared record")
    };
    match harness.ok(queued(commit(BUCKET, key, record.version_id, token, 10))) {
        Response::Committed { record, .. } => record,
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn a_queued_commit_marks_the_version_pending_and_appends_an_entry_in_the_same_command() {
    let mut harness = Harness::with_bucket();
    let before = harness.next_log_index;
    let record = queued_put(&mut harness, "a", "t-a");
    let commit_index = before + 1;
    assert_eq!(status(&record), Some(ReplicationStatus::Pending));
    let stored = harness.get("a", VersionSelector::Current).unwrap();
    assert_eq!(status(&stored), Some(ReplicationStatus::Pending));
    assert_eq!(
        list(&harness, None, 10),
        vec![ReplicationEntry {
            seq: commit_index,
            bucket: BUCKET.to_owned(),
            key: "a".to_owned(),
            version_id: record.version_id,
            kind: ReplicationEventKind::Put,
            enqueued_at_ms: 20_000,
        }]
    );
    // An unwrapped write is not queued and carries no status.
    let plain = harness.put("b", 5, Enabled);
    assert_eq!(status(&plain), None);
    assert_eq!(list(&harness, None, 10).len(), 1);
}

#[test]
fn a_retried_commit_queues_nothing_more() {
    let mut harness = Harness::with_bucket();
    let record = queued_put(&mut harness, "a", "t-a");
    match harness.ok(queued(commit(BUCKET, "a", record.version_id, "t-a", 10))) {
        Response::Committed { retried: true, .. } => {}
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(list(&harness, None, 10).len(), 1);
}

#[test]
fn delete_markers_and_multipart_completions_are_queued_and_refusals_are_not() {
    let mut harness = Harness::with_bucket();
    harness.put("gone", 3, Enabled);
    let Response::Deleted {
        delete_marker: Some(marker),
        ..
    } = harness.ok(queued(delete("gone", VersionSelector::Current, Enabled)))
    else {
        panic!("a delete marker")
    };
    assert_eq!(status(&marker), Some(ReplicationStatus::Pending));

    let upload = create_upload(&mut harness, "big");
    let part_size = MIN_PART_SIZE_BYTES;
    harness.ok(upload_part("big", upload.upload_id, 1, part_size));
    harness.ok(upload_part("big", upload.upload_id, 2, 10));
    let Response::Committed { record, .. } = harness.ok(queued(complete(
        "big",
        upload.upload_id,
        &[(1, part_size), (2, 10)],
        Enabled,
    ))) else {
        panic!("a completed upload")
    };

    // A refused wrapped command (unknown write) queues nothing.
    harness.err(queued(commit(BUCKET, "x", VersionId(999), "t-x", 1)));
    // Only writes, completions and deletes may be wrapped.
    harness.err(queued(Command::SealBucket {
        bucket: BUCKET.to_owned(),
    }));

    let entries = list(&harness, None, 10);
    assert_eq!(
        entries
            .iter()
            .map(|entry| (entry.key.as_str(), entry.version_id, entry.kind))
            .collect::<Vec<_>>(),
        vec![
            (
                "gone",
                marker.version_id,
                ReplicationEventKind::DeleteMarker
            ),
            ("big", record.version_id, ReplicationEventKind::Put),
        ]
    );
    // Paging by seq.
    assert_eq!(
        list(&harness, Some(entries[0].seq), 10),
        entries[1..].to_vec()
    );
    assert_eq!(list(&harness, None, 1), entries[..1].to_vec());
}

#[test]
fn resolution_removes_entries_and_sets_the_status_atomically_and_idempotently() {
    let mut harness = Harness::with_bucket();
    let first = queued_put(&mut harness, "a", "t-a");
    let second = queued_put(&mut harness, "b", "t-b");
    let entries = list(&harness, None, 10);
    let resolve = Command::ResolveReplication {
        resolutions: vec![
            ReplicationResolution {
                seq: entries[0].seq,
                outcome: ReplicationOutcome::Completed,
            },
            ReplicationResolution {
                seq: entries[1].seq,
                outcome: ReplicationOutcome::Failed,
            },
        ],
    };
    assert_eq!(
        harness.ok(resolve.clone()),
        Response::ReplicationResolved { resolved_count: 2 }
    );
    assert!(list(&harness, None, 10).is_empty());
    let a = harness
        .get("a", VersionSelector::Id(first.version_id))
        .unwrap();
    let b = harness
        .get("b", VersionSelector::Id(second.version_id))
        .unwrap();
    assert_eq!(status(&a), Some(ReplicationStatus::Completed));
    assert_eq!(status(&b), Some(ReplicationStatus::Failed));
    // A retried resolution changes nothing.
    assert_eq!(
        harness.ok(resolve),
        Response::ReplicationResolved { resolved_count: 0 }
    );
}

#[test]
fn an_entry_whose_version_was_removed_still_resolves() {
    let mut harness = Harness::with_bucket();
    let record = queued_put(&mut harness, "a", "t-a");
    harness.ok(delete("a", VersionSelector::Id(record.version_id), Enabled));
    let entries = list(&harness, None, 10);
    assert_eq!(entries.len(), 1);
    assert_eq!(
        harness.ok(Command::ResolveReplication {
            resolutions: vec![ReplicationResolution {
                seq: entries[0].seq,
                outcome: ReplicationOutcome::Completed,
            }],
        }),
        Response::ReplicationResolved { resolved_count: 1 }
    );
}

#[test]
fn the_queue_survives_a_snapshot_with_and_without_suspects() {
    let mut harness = Harness::with_bucket();
    queued_put(&mut harness, "a", "t-a");
    let bytes = harness.state.to_snapshot_bytes();
    let restored = StateMachine::from_snapshot_bytes(&bytes).unwrap();
    assert_eq!(restored, harness.state);
    let record = harness.put("s", 4, Enabled);
    harness.ok(Command::ReportSuspect {
        bucket: BUCKET.to_owned(),
        key: "s".to_owned(),
        version_id: record.version_id,
        now_ms: 1,
    });
    let restored = StateMachine::from_snapshot_bytes(&harness.state.to_snapshot_bytes()).unwrap();
    assert_eq!(restored, harness.state);
    assert_eq!(list(&harness, None, 10).len(), 1);
}

#[test]
fn commands_queries_and_answers_round_trip_through_the_codec() {
    let commands = vec![
        queued(delete("k", VersionSelector::Current, Enabled)),
        queued(Command::Conditional {
            condition: WriteCondition::Absent,
            observed: None,
            command: Box::new(commit(BUCKET, "k", VersionId(3), "t", 1)),
        }),
        Command::ResolveReplication {
            resolutions: vec![
                ReplicationResolution {
                    seq: 7,
                    outcome: ReplicationOutcome::Completed,
                },
                ReplicationResolution {
                    seq: 9,
                    outcome: ReplicationOutcome::Failed,
                },
            ],
        },
        Command::Read(Query::ListReplicationQueue {
            after_seq: Some(41),
            limit: 100,
        }),
        Command::Read(Query::ListReplicationQueue {
            after_seq: None,
            limit: 1,
        }),
    ];
    for command in commands {
        let bytes = encode_record(&command);
        assert_eq!(decode_record::<Command>(&bytes).unwrap(), command);
    }
    let outputs = vec![
        Output {
            result: Ok(Response::ReplicationResolved { resolved_count: 3 }),
            new_garbage: Vec::new(),
        },
        Output {
            result: Ok(Response::ReplicationQueue(vec![ReplicationEntry {
                seq: 12,
                bucket: "b".to_owned(),
                key: "k".to_owned(),
                version_id: VersionId(11),
                kind: ReplicationEventKind::DeleteMarker,
                enqueued_at_ms: 99,
            }])),
            new_garbage: Vec::new(),
        },
    ];
    for output in outputs {
        let bytes = encode_record(&output);
        assert_eq!(decode_record::<Output>(&bytes).unwrap(), output);
    }
}

#[test]
fn a_full_queue_refuses_the_wrapped_commit_until_an_entry_is_resolved() {
    // Built without the harness: its per-command snapshot check would make this quadratic.
    let mut state = StateMachine::new(Role::Combined);
    let mut log_index = 0;
    let mut apply = |state: &mut StateMachine, command: Command| {
        log_index += 1;
        state.apply(command, log_index)
    };
    assert!(apply(&mut state, create_bucket(BUCKET, OWNER)).is_ok());
    let mut prepared = |state: &mut StateMachine, key: &str| -> VersionId {
        let output = apply(state, prepare(BUCKET, key, key, 1, Enabled));
        let Ok(Response::Prepared { record, .. }) = output.result else {
            panic!("prepared")
        };
        record.version_id
    };
    let mut versions = Vec::new();
    for number in 0..=MAX_REPLICATION_QUEUE {
        let key = format!("k{number}");
        versions.push((key.clone(), prepared(&mut state, &key)));
    }
    let index = std::cell::Cell::new(10 * MAX_REPLICATION_QUEUE as u64);
    let next_index = || {
        index.set(index.get() + 1);
        index.get()
    };
    let commit_at = |state: &mut StateMachine, key: &str, version_id: VersionId| {
        state.apply(
            queued(commit(BUCKET, key, version_id, key, 1)),
            next_index(),
        )
    };
    let (last_key, last_version) = versions.pop().unwrap();
    for (key, version_id) in &versions {
        assert!(commit_at(&mut state, key, *version_id).is_ok());
    }
    let refused = commit_at(&mut state, &last_key, last_version);
    assert_eq!(
        refused.result,
        Err(MetaError::ReplicationBacklog {
            entries: MAX_REPLICATION_QUEUE as u64
        })
    );
    let queue = |state: &StateMachine| match state.query(&Query::ListReplicationQueue {
        after_seq: None,
        limit: u32::MAX,
    }) {
        Ok(Response::ReplicationQueue(entries)) => entries,
        other => panic!("unexpected {other:?}"),
    };
    let entries = queue(&state);
    assert_eq!(entries.len(), MAX_REPLICATION_QUEUE);
    // The refused write is still PREPARING (the gateway aborts it, or the janitor does).
    let Ok(Response::Objects(preparing)) = state.query(&Query::ListStalePreparing {
        created_before_ms: u64::MAX,
        limit: 10,
    }) else {
        panic!("the PREPARING versions")
    };
    assert_eq!(
        preparing
            .iter()
            .map(|record| (record.key.as_str(), record.version_id))
            .collect::<Vec<_>>(),
        vec![(last_key.as_str(), last_version)]
    );
    state.check_invariants().unwrap();
    // A resolution makes room again, and the retried commit is queued.
    let resolve = Command::ResolveReplication {
        resolutions: vec![ReplicationResolution {
            seq: entries[0].seq,
            outcome: ReplicationOutcome::Completed,
        }],
    };
    assert!(state.apply(resolve, next_index()).is_ok());
    assert!(commit_at(&mut state, &last_key, last_version).is_ok());
    assert_eq!(queue(&state).len(), MAX_REPLICATION_QUEUE);
}
