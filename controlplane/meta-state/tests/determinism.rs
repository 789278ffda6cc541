//! Random command sequences: replicas agree, snapshots resume exactly, refusals change nothing.
//! The sequences include cross-region replication: commits, deletes and completions queued for
//! replication, replicated attribute changes, and the replicator's resolutions.

mod common;

use cairn_meta_state::*;
use common::*;
use proptest::prelude::*;

/// A compact description of one random operation; turned into a command against the current state
/// so that ids (version, upload) usually refer to things that exist.
#[derive(Clone, Debug)]
enum Operation {
    Prepare {
        key: usize,
        token: usize,
        size_bytes: u64,
        versioning: usize,
    },
    Commit {
        pick: usize,
        shards: usize,
        replicate: bool,
    },
    Abort {
        pick: usize,
    },
    Delete {
        key: usize,
        selector: usize,
        versioning: usize,
        replicate: bool,
    },
    CreateUpload {
        key: usize,
    },
    UploadPart {
        pick: usize,
        part_number: u32,
        size_bytes: u64,
    },
    Complete {
        pick: usize,
        versioning: usize,
        replicate: bool,
    },
    AbortUpload {
        pick: usize,
    },
    Purge {
        count: usize,
    },
    Versioning {
        versioning: usize,
    },
    Seal {
        unseal: bool,
    },
    /// A replicated attribute (tags) set or removed on some version, queued for replication.
    ChangeAttribute {
        pick: usize,
        remove: bool,
    },
    /// The replicator resolves the oldest `count` queue entries (or, with `stale`, sequence
    /// numbers that are not queued).
    Resolve {
        count: usize,
        failed: bool,
        stale: bool,
    },
}

const KEYS: &[&str] = &["a", "a/b", "b", "c/d/e"];
const VERSIONING: [VersioningState; 3] = [
    VersioningState::Unversioned,
    VersioningState::Enabled,
    VersioningState::Suspended,
];

fn operation() -> impl Strategy<Value = Operation> {
    prop_oneof![
        1 => (0..KEYS.len(), 0usize..4, 0u64..3, 0usize..3).prop_map(
            |(key, token, size_bytes, versioning)| Operation::Prepare {
                key,
                token,
                size_bytes,
                versioning
            }
        ),
        1 => (any::<usize>(), 3usize..7, any::<bool>()).prop_map(|(pick, shards, replicate)| {
            Operation::Commit {
                pick,
                shards,
                replicate,
            }
        }),
        1 => any::<usize>().prop_map(|pick| Operation::Abort { pick }),
        1 => (0..KEYS.len(), 0usize..4, 0usize..3, any::<bool>()).prop_map(
            |(key, selector, versioning, replicate)| Operation::Delete {
                key,
                selector,
                versioning,
                replicate,
            }
        ),
        // Uploads and parts weigh more, so that completions find parts to complete.
        2 => (0..KEYS.len()).prop_map(|key| Operation::CreateUpload { key }),
        // Tiny parts and parts of the minimum size (5 MiB, then non-last parts are accepted),
        // so completions of several parts succeed too.
        3 => (
            any::<usize>(),
            1u32..4,
            prop_oneof![1u64..3, MIN_PART_SIZE_BYTES..MIN_PART_SIZE_BYTES + 2]
        )
            .prop_map(|(pick, part_number, size_bytes)| Operation::UploadPart {
                pick,
                part_number,
                size_bytes,
            }),
        1 => (any::<usize>(), 0usize..3, any::<bool>()).prop_map(|(pick, versioning, replicate)| {
            Operation::Complete {
                pick,
                versioning,
                replicate,
            }
        }),
        1 => any::<usize>().prop_map(|pick| Operation::AbortUpload { pick }),
        1 => (0usize..3).prop_map(|count| Operation::Purge { count }),
        1 => (1usize..3).prop_map(|versioning| Operation::Versioning { versioning }),
        1 => any::<bool>().prop_map(|unseal| Operation::Seal { unseal }),
        1 => (any::<usize>(), any::<bool>())
            .prop_map(|(pick, remove)| Operation::ChangeAttribute { pick, remove }),
        1 => (0usize..4, any::<bool>(), any::<bool>()).prop_map(|(count, failed, stale)| {
            Operation::Resolve {
                count,
                failed,
                stale,
            }
        }),
    ]
}

/// `command` queued for replication in the entry that applies it, when `replicate` is set.
fn replicated(command: Command, replicate: bool) -> Command {
    if !replicate {
        return command;
    }
    Command::QueueReplication {
        now_ms: None,
        command: Box::new(command),
    }
}

/// Every committed version and delete marker of the bucket (any key).
fn versions(state: &StateMachine) -> Vec<(String, VersionId)> {
    bucket_versions(state)
        .into_iter()
        .map(|version| (version.key, version.version_id))
        .collect()
}

fn preparing(state: &StateMachine) -> Vec<ObjectRecord> {
    match state.query(&Query::ListStalePreparing {
        created_before_ms: u64::MAX,
        limit: u32::MAX,
    }) {
        Ok(Response::Objects(records)) => records,
        other => panic!("unexpected {other:?}"),
    }
}

fn uploads(state: &StateMachine) -> Vec<UploadSummary> {
    match state.query(&Query::ListUploads(ListUploadsRequest {
        bucket: BUCKET.to_owned(),
        max_uploads: 1000,
        ..Default::default()
    })) {
        Ok(Response::UploadList(page)) => page.uploads,
        other => panic!("unexpected {other:?}"),
    }
}

fn to_command(state: &StateMachine, operation: &Operation, now_ms: u64) -> Command {
    match operation {
        Operation::Prepare {
            key,
            token,
            size_bytes,
            versioning,
        } => prepare(
            BUCKET,
            KEYS[*key],
            &format!("token-{token}"),
            *size_bytes,
            VERSIONING[*versioning],
        ),
        Operation::Commit {
            pick,
            shards,
            replicate,
        } => {
            let pending = preparing(state);
            let (key, version_id, token, size_bytes) =
                match pending.get(pick % pending.len().max(1)) {
                    Some(record) => (
                        record.key.clone(),
                        record.version_id,
                        record.idempotency_token.clone(),
                        record.size_bytes,
                    ),
                    None => (
                        "a".to_owned(),
                        VersionId(*pick as u64 % 50),
                        String::new(),
                        1,
                    ),
                };
            let mut command = commit(BUCKET, &key, version_id, &token, size_bytes);
            if let Command::CommitWrite(inner) = &mut command
                && let Some(block) = inner.parts[0].blocks.first_mut()
            {
                *block = self::block(block.length_bytes, 0..*shards as u16);
            }
            replicated(command, *replicate)
        }
        Operation::Abort { pick } => {
            let pending = preparing(state);
            let (key, version_id) = match pending.get(pick % pending.len().max(1)) {
                Some(record) => (record.key.clone(), record.version_id),
                None => ("a".to_owned(), VersionId(*pick as u64 % 50)),
            };
            Command::AbortWrite(AbortWrite {
                bucket: BUCKET.to_owned(),
                key,
                version_id,
                now_ms,
            })
        }
        Operation::Delete {
            key,
            selector,
            versioning,
            replicate,
        } => {
            let selector = match selector {
                0 | 1 => VersionSelector::Current,
                2 => VersionSelector::Null,
                _ => VersionSelector::Id(VersionId(now_ms % 40)),
            };
            replicated(
                delete(KEYS[*key], selector, VERSIONING[*versioning]),
                *replicate,
            )
        }
        Operation::CreateUpload { key } => Command::CreateMultipartUpload(CreateMultipartUpload {
            bucket: BUCKET.to_owned(),
            key: KEYS[*key].to_owned(),
            owner: OWNER.to_owned(),
            content_type: String::new(),
            user_metadata: Default::default(),
            storage_class: StorageClass::Standard,
            acl: Acl::default(),
            ec_scheme: SCHEME.to_owned(),
            piece_size_bytes: PIECE_SIZE_BYTES,
            now_ms,
            attributes: Default::default(),
        }),
        Operation::UploadPart {
            pick,
            part_number,
            size_bytes,
        } => {
            let open = uploads(state);
            let (key, upload_id) = match open.get(pick % open.len().max(1)) {
                Some(upload) => (upload.key.clone(), upload.upload_id),
                None => ("a".to_owned(), UploadId(1)),
            };
            Command::UploadPart(UploadPart {
                bucket: BUCKET.to_owned(),
                key,
                upload_id,
                part_number: *part_number,
                size_bytes: *size_bytes,
                etag: format!("etag-{part_number}"),
                checksum: None,
                blocks: vec![block(*size_bytes, 0..6)],
                now_ms,
            })
        }
        Operation::Complete {
            pick,
            versioning,
            replicate,
        } => {
            let open = uploads(state);
            let (key, upload_id) = match open.get(pick % open.len().max(1)) {
                Some(upload) => (upload.key.clone(), upload.upload_id),
                None => ("a".to_owned(), UploadId(1)),
            };
            // The upload's first part, or its first two (accepted when the first has the
            // minimum size); one pick in four names parts 1 and 2 whether they exist or not.
            let listed = match state.query(&Query::ListParts(ListPartsRequest {
                bucket: BUCKET.to_owned(),
                key: key.clone(),
                upload_id,
                part_number_marker: 0,
                max_parts: 2,
            })) {
                Ok(Response::PartList(page)) => page
                    .parts
                    .iter()
                    .map(|part| part.part_number)
                    .collect::<Vec<u32>>(),
                _ => Vec::new(),
            };
            let parts = match pick % 4 {
                0 => vec![1, 2],
                1 if !listed.is_empty() => listed[..1].to_vec(),
                _ if !listed.is_empty() => listed,
                _ => vec![1],
            };
            let command = Command::CompleteMultipartUpload(CompleteMultipartUpload {
                bucket: BUCKET.to_owned(),
                key,
                upload_id,
                parts: parts
                    .into_iter()
                    .map(|part_number| CompletedPart {
                        part_number,
                        etag: format!("etag-{part_number}"),
                    })
                    .collect(),
                checksums: checksums("multi-1"),
                versioning: VERSIONING[*versioning],
                now_ms,
            });
            replicated(command, *replicate)
        }
        Operation::AbortUpload { pick } => {
            let open = uploads(state);
            let (key, upload_id) = match open.get(pick % open.len().max(1)) {
                Some(upload) => (upload.key.clone(), upload.upload_id),
                None => ("a".to_owned(), UploadId(1)),
            };
            Command::AbortMultipartUpload(AbortMultipartUpload {
                bucket: BUCKET.to_owned(),
                key,
                upload_id,
                now_ms,
            })
        }
        Operation::Purge { count } => {
            let garbage = match state.query(&Query::ListGarbage {
                after: None,
                limit: *count as u32,
            }) {
                Ok(Response::Garbage(entries)) => entries,
                other => panic!("unexpected {other:?}"),
            };
            Command::PurgeGarbage {
                garbage_ids: garbage.iter().map(|entry| entry.garbage_id).collect(),
            }
        }
        Operation::Seal { unseal: true } => Command::UnsealBucket {
            bucket: BUCKET.to_owned(),
        },
        Operation::Seal { unseal: false } => Command::SealBucket {
            bucket: BUCKET.to_owned(),
        },
        Operation::Versioning { versioning } => Command::PutBucketVersioning {
            bucket: BUCKET.to_owned(),
            versioning: VERSIONING[*versioning],
        },
        Operation::ChangeAttribute { pick, remove } => {
            let versions = versions(state);
            let (key, version_id) = versions
                .get(pick % versions.len().max(1))
                .cloned()
                .unwrap_or_else(|| ("a".to_owned(), VersionId(*pick as u64 % 50)));
            Command::QueueReplication {
                now_ms: Some(now_ms),
                command: Box::new(Command::PutObjectAttribute {
                    bucket: BUCKET.to_owned(),
                    key,
                    version: VersionSelector::Id(version_id),
                    name: "tagging".to_owned(),
                    value: (!remove).then(|| format!("t={now_ms}").into_bytes()),
                }),
            }
        }
        Operation::Resolve {
            count,
            failed,
            stale,
        } => {
            let queued = match state.query(&Query::ListReplicationQueue {
                after_seq: None,
                limit: *count as u32,
            }) {
                Ok(Response::ReplicationQueue(entries)) => entries,
                other => panic!("unexpected {other:?}"),
            };
            let outcome = if *failed {
                ReplicationOutcome::Failed
            } else {
                ReplicationOutcome::Completed
            };
            let resolutions = if *stale {
                vec![ReplicationResolution {
                    seq: now_ms,
                    outcome,
                }]
            } else {
                queued
                    .iter()
                    .map(|entry| ReplicationResolution {
                        seq: entry.seq,
                        outcome,
                    })
                    .collect()
            };
            Command::ResolveReplication { resolutions }
        }
    }
}

/// Applies `command` at `log_index` to the leader, the follower and (when there is one) the
/// replica restored from a snapshot, and checks that all answer alike, that the entry and its
/// output survive their encodings and that the leader's invariants hold; the leader's output.
fn apply_everywhere(
    [leader, follower]: [&mut StateMachine; 2],
    restored: Option<&mut StateMachine>,
    command: &Command,
    log_index: u64,
) -> Result<Output, TestCaseError> {
    let output = leader.apply(command.clone(), log_index);
    prop_assert_eq!(&follower.apply(command.clone(), log_index), &output);
    // Log entries and outputs survive their encodings.
    prop_assert_eq!(
        decode_record::<Command>(&encode_record(command)),
        Ok(command.clone())
    );
    prop_assert_eq!(
        decode_record::<Output>(&encode_record(&output)),
        Ok(output.clone())
    );
    if let Some(restored) = restored {
        prop_assert_eq!(&restored.apply(command.clone(), log_index), &output);
    }
    if let Err(violation) = leader.check_invariants() {
        panic!("{violation} after {command:?}");
    }
    Ok(output)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn replicas_agree_and_snapshots_resume_exactly(
        operations in proptest::collection::vec(operation(), 1..60),
        snapshot_at in any::<prop::sample::Index>(),
        store_after in proptest::collection::vec(any::<bool>(), 60),
    ) {
        let mut leader = StateMachine::new(Role::Combined);
        let mut follower = StateMachine::new(Role::Combined);
        let setup = create_bucket(BUCKET, OWNER);
        prop_assert_eq!(leader.apply(setup.clone(), 1), follower.apply(setup, 1));
        let snapshot_at = snapshot_at.index(operations.len());
        let mut restored: Option<StateMachine> = None;
        // The follower's stored form, written after random commands (a store writes change
        // sets at checkpoints, not after every entry).
        let mut stored = std::collections::BTreeMap::new();
        for (position, operation) in operations.iter().enumerate() {
            let log_index = position as u64 + 2;
            if position == snapshot_at {
                restored = Some(
                    StateMachine::from_snapshot_bytes(&leader.to_snapshot_bytes()).unwrap(),
                );
            }
            if store_after[position] {
                follower.take_changes().apply_to(&mut stored);
            }
            let command = to_command(&leader, operation, 1_000 * log_index);
            let before = leader.clone();
            let output = apply_everywhere(
                [&mut leader, &mut follower],
                restored.as_mut(),
                &command,
                log_index,
            )?;
            // A refusal changes nothing but the applied index (a rejected commit records garbage).
            if output.result.is_err() && output.new_garbage.is_empty() {
                prop_assert_eq!(strip_index(&before), strip_index(&leader));
            }
            // Every garbage entry the output reports is in the state until purged.
            for entry in &output.new_garbage {
                let listed = leader.query(&Query::ListGarbage {
                    after: None,
                    limit: u32::MAX,
                });
                let Ok(Response::Garbage(entries)) = listed else { panic!("garbage list") };
                prop_assert!(entries.contains(entry));
            }
        }
        prop_assert_eq!(&leader, &follower);
        prop_assert_eq!(leader.to_snapshot_bytes(), follower.to_snapshot_bytes());
        if let Some(restored) = restored {
            prop_assert_eq!(&restored, &leader);
        }
        let changes = follower.take_changes();
        changes.apply_to(&mut stored);
        let assembled = cairn_meta_state::stored::snapshot_from_stored(
            &changes.header,
            stored.iter().map(|(key, value)| (key.as_slice(), value.as_slice())),
        );
        prop_assert_eq!(assembled, Ok(leader.to_snapshot_bytes()));
        let loaded = StateMachine::from_stored(
            &changes.header,
            stored.iter().map(|(key, value)| (key.as_slice(), value.as_slice())),
        );
        prop_assert_eq!(loaded, Ok(leader));
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(150))]

    /// Group commit: the same random commands applied as `Command::Batch` entries of random
    /// sizes (each batch's commands built from the state before it, as a leader queues
    /// concurrent writes) keep every replica, and one restored from a snapshot mid-way, in the
    /// same state with the same per-command outputs; ids stay unique; the invariants hold.
    #[test]
    fn batched_entries_keep_replicas_in_step(
        operations in proptest::collection::vec(operation(), 1..60),
        batch_sizes in proptest::collection::vec(1usize..6, 60),
        snapshot_at in any::<prop::sample::Index>(),
    ) {
        let mut leader = StateMachine::new(Role::Combined);
        let mut follower = StateMachine::new(Role::Combined);
        let setup = create_bucket(BUCKET, OWNER);
        prop_assert_eq!(leader.apply(setup.clone(), 1), follower.apply(setup, 1));
        let mut batches = Vec::new();
        let mut rest = operations.as_slice();
        for size in batch_sizes {
            if rest.is_empty() {
                break;
            }
            let (batch, tail) = rest.split_at(size.min(rest.len()));
            batches.push(batch);
            rest = tail;
        }
        let snapshot_at = snapshot_at.index(batches.len());
        let mut restored: Option<StateMachine> = None;
        let mut version_ids = std::collections::BTreeSet::new();
        for (position, batch) in batches.iter().enumerate() {
            let log_index = position as u64 + 2;
            if position == snapshot_at {
                restored = Some(
                    StateMachine::from_snapshot_bytes(&leader.to_snapshot_bytes()).unwrap(),
                );
            }
            let commands: Vec<Command> = batch
                .iter()
                .map(|operation| to_command(&leader, operation, 1_000 * log_index))
                .collect();
            let entry = Command::Batch(commands.clone());
            let output = apply_everywhere(
                [&mut leader, &mut follower],
                restored.as_mut(),
                &entry,
                log_index,
            )?;
            let Ok(Response::Batch(outputs)) = output.result else {
                panic!("batch answered {:?}", output.result);
            };
            prop_assert_eq!(outputs.len(), commands.len());
            for output in &outputs {
                if let Ok(Response::Prepared { record, retried: false }) = &output.result {
                    prop_assert!(version_ids.insert(record.version_id), "{:?} reused", record.version_id);
                }
            }
            prop_assert!(leader.last_id_index() >= leader.last_applied_index());
        }
        prop_assert_eq!(&leader, &follower);
        prop_assert_eq!(leader.to_snapshot_bytes(), follower.to_snapshot_bytes());
        prop_assert_eq!(
            StateMachine::from_snapshot_bytes(&leader.to_snapshot_bytes()).unwrap(),
            leader.clone()
        );
        if let Some(restored) = restored {
            prop_assert_eq!(&restored, &leader);
        }
    }
}

/// The snapshot bytes with the last-applied index (bytes 2 + role .. + 8) zeroed, for comparing
/// states that differ only in it.
fn strip_index(state: &StateMachine) -> Vec<u8> {
    let mut bytes = state.to_snapshot_bytes();
    // Header (2) + role Combined (1), then the u64 index; the CRC at the end covers it too.
    bytes[3..11].fill(0);
    let length = bytes.len();
    bytes.truncate(length - 4);
    bytes
}

fn hostile_blocks() -> impl Strategy<Value = Vec<BlockShards>> {
    proptest::collection::vec(
        (
            prop_oneof![Just(0u64), Just(1), Just(u64::MAX), any::<u64>()],
            proptest::collection::btree_set(any::<u16>(), 0..8),
        )
            .prop_map(|(length_bytes, indexes)| block(length_bytes, indexes)),
        0..3,
    )
}

fn hostile_command() -> impl Strategy<Value = Command> {
    let key = prop_oneof![Just("a".to_owned()), "\\PC{0,6}", Just("k".repeat(1025))];
    let size = prop_oneof![Just(0u64), Just(1), Just(u64::MAX), any::<u64>()];
    let scheme = prop_oneof![
        Just(SCHEME.to_owned()),
        Just("x:1+0".to_owned()),
        Just("x:255+0".to_owned()),
        "\\PC{0,8}"
    ];
    prop_oneof![
        (
            key.clone(),
            "\\PC{0,3}",
            size.clone(),
            scheme.clone(),
            any::<u32>(),
            0usize..3
        )
            .prop_map(
                |(key, token, size_bytes, ec_scheme, piece_size_bytes, versioning)| {
                    let mut command =
                        prepare(BUCKET, &key, &token, size_bytes, VERSIONING[versioning]);
                    if let Command::PrepareWrite(inner) = &mut command {
                        inner.ec_scheme = ec_scheme;
                        inner.piece_size_bytes = piece_size_bytes;
                    }
                    command
                }
            ),
        (
            key.clone(),
            0u64..40,
            "\\PC{0,3}",
            proptest::collection::vec((any::<u32>(), size.clone(), hostile_blocks()), 0..3)
        )
            .prop_map(|(key, version, token, parts)| {
                Command::CommitWrite(CommitWrite {
                    bucket: BUCKET.to_owned(),
                    key,
                    version_id: VersionId(version),
                    idempotency_token: token,
                    checksums: checksums("e"),
                    parts: parts
                        .into_iter()
                        .map(|(part_number, length_bytes, blocks)| PartShards {
                            part_number,
                            length_bytes,
                            blocks,
                        })
                        .collect(),
                    now_ms: 1,
                })
            }),
        (key.clone(), scheme).prop_map(|(key, ec_scheme)| {
            Command::CreateMultipartUpload(CreateMultipartUpload {
                bucket: BUCKET.to_owned(),
                key,
                owner: OWNER.to_owned(),
                content_type: String::new(),
                user_metadata: Default::default(),
                storage_class: StorageClass::Standard,
                acl: Acl::default(),
                ec_scheme,
                piece_size_bytes: 1,
                now_ms: 1,
                attributes: Default::default(),
            })
        }),
        (
            key.clone(),
            0u64..40,
            any::<u32>(),
            size.clone(),
            hostile_blocks()
        )
            .prop_map(|(key, upload, part_number, size_bytes, blocks)| {
                Command::UploadPart(UploadPart {
                    bucket: BUCKET.to_owned(),
                    key,
                    upload_id: UploadId(upload),
                    part_number,
                    size_bytes,
                    etag: "e".to_owned(),
                    checksum: None,
                    blocks,
                    now_ms: 1,
                })
            }),
        (
            key.clone(),
            0u64..40,
            proptest::collection::vec(any::<u32>(), 0..4),
            0usize..3
        )
            .prop_map(|(key, upload, numbers, versioning)| {
                Command::CompleteMultipartUpload(CompleteMultipartUpload {
                    bucket: BUCKET.to_owned(),
                    key,
                    upload_id: UploadId(upload),
                    parts: numbers
                        .into_iter()
                        .map(|part_number| CompletedPart {
                            part_number,
                            etag: "e".to_owned(),
                        })
                        .collect(),
                    checksums: checksums("e-1"),
                    versioning: VERSIONING[versioning],
                    now_ms: 1,
                })
            }),
        (key.clone(), 0u64..40, 0usize..3, 0usize..3).prop_map(
            |(key, version, selector, versioning)| {
                let selector = [
                    VersionSelector::Current,
                    VersionSelector::Null,
                    VersionSelector::Id(VersionId(version)),
                ][selector]
                    .clone();
                delete(&key, selector, VERSIONING[versioning])
            }
        ),
        (any::<u64>(), any::<u64>())
            .prop_map(|(now_ms, timeout_ms)| Command::ExpireNodes { now_ms, timeout_ms }),
        (0u64..3, any::<u64>(), any::<u64>()).prop_map(|(node, used_bytes, now_ms)| {
            Command::Heartbeat {
                node_id: NodeId(node),
                used_bytes,
                now_ms,
            }
        }),
        (0u64..3, any::<u64>()).prop_map(|(node, now_ms)| Command::RegisterNode(RegisterNode {
            node_id: NodeId(node),
            address: String::new(),
            availability_zone: String::new(),
            capacity_bytes: 0,
            now_ms,
        })),
        (
            "\\PC{0,3}",
            "\\PC{0,2}",
            proptest::option::of("\\PC{0,3}"),
            proptest::option::of("\\PC{0,6}"),
            any::<u32>()
        )
            .prop_map(
                |(prefix, delimiter, start_after, continuation_token, max_keys)| {
                    Command::Read(Query::ListObjects(ListObjectsRequest {
                        bucket: BUCKET.to_owned(),
                        prefix,
                        delimiter,
                        start_after,
                        continuation_token,
                        max_keys,
                    }))
                }
            ),
        (
            "\\PC{0,3}",
            "\\PC{0,2}",
            proptest::option::of("\\PC{0,3}"),
            proptest::option::of(0u64..40),
            any::<u32>()
        )
            .prop_map(|(prefix, delimiter, key_marker, version, max_keys)| {
                Command::Read(Query::ListVersions(ListVersionsRequest {
                    bucket: BUCKET.to_owned(),
                    prefix,
                    delimiter,
                    key_marker,
                    version_id_marker: version.map(VersionId),
                    max_keys,
                }))
            }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// Extreme and malformed values are refused with typed errors, never a panic or a broken state.
    #[test]
    fn hostile_values_never_panic(commands in proptest::collection::vec(hostile_command(), 1..40)) {
        let mut state = StateMachine::new(Role::Combined);
        state.apply(create_bucket(BUCKET, OWNER), 1);
        for (position, command) in commands.into_iter().enumerate() {
            let description = format!("{command:?}");
            state.apply(command, position as u64 + 2);
            if let Err(violation) = state.check_invariants() {
                panic!("{violation} after {description}");
            }
        }
        prop_assert_eq!(StateMachine::from_snapshot_bytes(&state.to_snapshot_bytes()), Ok(state));
    }
}
