//! The replication queue: committed writes and delete markers queued in the command that commits
//! them, later metadata changes of replicated versions queued in the command that changes them,
//! listed in order, resolved atomically with the source version's status, kept in snapshots (the
//! harness round-trips a snapshot after every command).

mod common;

use cairn_meta_state::*;
use common::*;

use VersioningState::Enabled;

fn queued(command: Command) -> Command {
    Command::QueueReplication {
        now_ms: None,
        command: Box::new(command),
    }
}

/// A PutObjectAttribute of version `version_id` of `key`.
fn set_attribute(key: &str, version_id: VersionId, name: &str, value: Option<&[u8]>) -> Command {
    Command::PutObjectAttribute {
        bucket: BUCKET.to_owned(),
        key: key.to_owned(),
        version: VersionSelector::Id(version_id),
        name: name.to_owned(),
        value: value.map(<[u8]>::to_vec),
    }
}

/// `command` (an attribute change) queued with the request's time.
fn queued_change(command: Command, now_ms: u64) -> Command {
    Command::QueueReplication {
        now_ms: Some(now_ms),
        command: Box::new(command),
    }
}

fn resolve_all(harness: &mut Harness, outcome: ReplicationOutcome) {
    let resolutions = list(harness, None, u32::MAX)
        .into_iter()
        .map(|entry| ReplicationResolution {
            seq: entry.seq,
            outcome,
        })
        .collect();
    harness.ok(Command::ResolveReplication { resolutions });
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
        queued_change(
            set_attribute("k", VersionId(3), "tagging", Some(b"a=1")),
            77,
        ),
        queued_change(
            Command::BypassGovernanceRetention {
                command: Box::new(set_attribute("k", VersionId(3), "retention", None)),
            },
            78,
        ),
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
        Output {
            result: Ok(Response::ReplicationQueue(vec![ReplicationEntry {
                seq: 13,
                bucket: "b".to_owned(),
                key: "k".to_owned(),
                version_id: VersionId(11),
                kind: ReplicationEventKind::MetadataChange,
                enqueued_at_ms: 100,
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
fn a_metadata_change_of_a_replicated_version_is_queued_with_the_wrappers_time() {
    let mut harness = Harness::with_bucket();
    let record = queued_put(&mut harness, "a", "t-a");
    resolve_all(&mut harness, ReplicationOutcome::Completed);
    let index = harness.next_log_index;
    let Response::Object(changed) = harness.ok(queued_change(
        set_attribute("a", record.version_id, "tagging", Some(b"team=storage")),
        55_000,
    )) else {
        panic!("the changed version")
    };
    // PENDING again until the replicator brought the change over, in the answer and the state.
    assert_eq!(status(&changed), Some(ReplicationStatus::Pending));
    assert_eq!(changed.attributes["tagging"], b"team=storage");
    let stored = harness
        .get("a", VersionSelector::Id(record.version_id))
        .unwrap();
    assert_eq!(status(&stored), Some(ReplicationStatus::Pending));
    assert_eq!(
        list(&harness, None, 10),
        vec![ReplicationEntry {
            seq: index,
            bucket: BUCKET.to_owned(),
            key: "a".to_owned(),
            version_id: record.version_id,
            kind: ReplicationEventKind::MetadataChange,
            enqueued_at_ms: 55_000,
        }]
    );
    // The same value again changes nothing, so nothing more is queued.
    harness.ok(queued_change(
        set_attribute("a", record.version_id, "tagging", Some(b"team=storage")),
        56_000,
    ));
    assert_eq!(list(&harness, None, 10).len(), 1);
    // Removals and the other replicated attributes (also under the governance bypass) queue
    // too, one entry per change, and a FAILED version is still a replicated one.
    resolve_all(&mut harness, ReplicationOutcome::Failed);
    harness.ok(queued_change(
        set_attribute("a", record.version_id, "tagging", None),
        57_000,
    ));
    harness.ok(queued_change(
        set_attribute("a", record.version_id, "acl", Some(b"public-read")),
        58_000,
    ));
    harness.ok(queued_change(
        Command::BypassGovernanceRetention {
            command: Box::new(set_attribute(
                "a",
                record.version_id,
                object_lock::LEGAL_HOLD_ATTRIBUTE,
                Some(&object_lock::encode_legal_hold(true)),
            )),
        },
        59_000,
    ));
    let entries = list(&harness, None, 10);
    assert_eq!(
        entries
            .iter()
            .map(|entry| (entry.kind, entry.version_id, entry.enqueued_at_ms))
            .collect::<Vec<_>>(),
        [57_000, 58_000, 59_000].map(|at| (
            ReplicationEventKind::MetadataChange,
            record.version_id,
            at
        ))
    );
    resolve_all(&mut harness, ReplicationOutcome::Completed);
    let stored = harness
        .get("a", VersionSelector::Id(record.version_id))
        .unwrap();
    assert_eq!(status(&stored), Some(ReplicationStatus::Completed));
    assert!(!stored.attributes.contains_key("tagging"));
}

#[test]
fn replicas_and_versions_not_selected_for_replication_are_not_queued() {
    let mut harness = Harness::with_bucket();
    // Written before the rule (or outside it): no status.
    let plain = harness.put("plain", 4, Enabled);
    let Response::Object(changed) = harness.ok(queued_change(
        set_attribute("plain", plain.version_id, "tagging", Some(b"a=1")),
        1_000,
    )) else {
        panic!("the changed version")
    };
    assert_eq!(status(&changed), None);
    assert_eq!(changed.attributes["tagging"], b"a=1");
    // A replica written by another bucket's replicator.
    let Command::PrepareWrite(mut command) = prepare(BUCKET, "replica", "t-r", 4, Enabled) else {
        unreachable!()
    };
    command.attributes.insert(
        REPLICATION_STATUS_ATTRIBUTE.to_owned(),
        ReplicationStatus::Replica.as_str().as_bytes().to_vec(),
    );
    let Response::Prepared { record, .. } = harness.ok(Command::PrepareWrite(command)) else {
        panic!("prepared")
    };
    harness.ok(commit(BUCKET, "replica", record.version_id, "t-r", 4));
    let Response::Object(changed) = harness.ok(queued_change(
        set_attribute("replica", record.version_id, "acl", Some(b"public-read")),
        2_000,
    )) else {
        panic!("the changed version")
    };
    assert_eq!(status(&changed), Some(ReplicationStatus::Replica));
    assert!(list(&harness, None, 10).is_empty());
}

#[test]
fn attribute_changes_need_the_wrappers_time_and_a_replicated_attribute() {
    let mut harness = Harness::with_bucket();
    let record = queued_put(&mut harness, "a", "t-a");
    // No time: refused before anything changes.
    harness.err(Command::QueueReplication {
        now_ms: None,
        command: Box::new(set_attribute("a", record.version_id, "tagging", Some(b"x"))),
    });
    // Not an attribute whose changes replicate (the status itself least of all).
    for name in [REPLICATION_STATUS_ATTRIBUTE, "encryption"] {
        harness.err(queued_change(
            set_attribute("a", record.version_id, name, Some(b"COMPLETED")),
            1,
        ));
    }
    // A command with a time of its own must not carry a second one.
    let Response::Prepared { record: other, .. } =
        harness.ok(prepare(BUCKET, "b", "t-b", 10, Enabled))
    else {
        panic!("prepared")
    };
    harness.err(queued_change(
        commit(BUCKET, "b", other.version_id, "t-b", 10),
        1,
    ));
    // A change of a missing version is refused and queues nothing.
    harness.err(queued_change(
        set_attribute("a", VersionId(999_999), "tagging", Some(b"x")),
        1,
    ));
    let stored = harness
        .get("a", VersionSelector::Id(record.version_id))
        .unwrap();
    assert!(!stored.attributes.contains_key("tagging"));
    assert_eq!(
        stored.attributes[REPLICATION_STATUS_ATTRIBUTE],
        b"PENDING".to_vec()
    );
    assert_eq!(list(&harness, None, 10).len(), 1);
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
    // A metadata change of a queued version is refused too, before it changes the version.
    let (first_key, first_version) = &versions[0];
    let change = Command::QueueReplication {
        now_ms: Some(1),
        command: Box::new(Command::PutObjectAttribute {
            bucket: BUCKET.to_owned(),
            key: first_key.clone(),
            version: VersionSelector::Id(*first_version),
            name: "tagging".to_owned(),
            value: Some(b"a=1".to_vec()),
        }),
    };
    assert_eq!(
        state.apply(change.clone(), next_index()).result,
        Err(MetaError::ReplicationBacklog {
            entries: MAX_REPLICATION_QUEUE as u64
        })
    );
    let Ok(Response::Object(unchanged)) = state.query(&Query::GetObject {
        bucket: BUCKET.to_owned(),
        key: first_key.clone(),
        version: VersionSelector::Id(*first_version),
    }) else {
        panic!("the first version")
    };
    assert!(!unchanged.attributes.contains_key("tagging"));
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
    // Full again: the change is still refused; one more resolution and it is queued.
    assert!(state.apply(change.clone(), next_index()).result.is_err());
    let resolve = Command::ResolveReplication {
        resolutions: vec![ReplicationResolution {
            seq: entries[1].seq,
            outcome: ReplicationOutcome::Completed,
        }],
    };
    assert!(state.apply(resolve, next_index()).is_ok());
    assert!(state.apply(change, next_index()).is_ok());
    let last = queue(&state).pop().unwrap();
    assert_eq!(
        (last.kind, &last.key),
        (ReplicationEventKind::MetadataChange, first_key)
    );
}
