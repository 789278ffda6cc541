//! The versioned binary format: golden bytes, round trips, and garbage rejection.

mod common;

use std::collections::BTreeMap;

use cairn_meta_state::codec::{Encode, Writer};
use cairn_meta_state::*;
use common::*;
use proptest::prelude::*;

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

fn u64_le(value: u64) -> Vec<u8> {
    value.to_le_bytes().to_vec()
}

fn string(text: &str) -> Vec<u8> {
    let mut bytes = (text.len() as u32).to_le_bytes().to_vec();
    bytes.extend_from_slice(text.as_bytes());
    bytes
}

fn golden_node() -> NodeRecord {
    NodeRecord {
        node_id: NodeId(7),
        address: "n7:7000".to_owned(),
        availability_zone: "az-1".to_owned(),
        capacity_bytes: 1000,
        used_bytes: 10,
        status: NodeStatus::Down,
        registered_at_ms: 5,
        last_heartbeat_ms: 6,
        record_version: 3,
    }
}

#[test]
fn golden_node_record_bytes_field_by_field() {
    let expected: Vec<u8> = [
        vec![0x02, 0x05], // format version 2, kind Node
        u64_le(7),        // node_id
        string("n7:7000"),
        string("az-1"),
        u64_le(1000), // capacity_bytes
        u64_le(10),   // used_bytes
        vec![0x01],   // status Down
        u64_le(5),    // registered_at_ms
        u64_le(6),    // last_heartbeat_ms
        u64_le(3),    // record_version
    ]
    .concat();
    let encoded = encode_record(&golden_node());
    assert_eq!(encoded, expected);
    assert_eq!(
        hex(&encoded),
        "0205070000000000000007000000\
         6e373a3730303004000000617a2d31\
         e8030000000000000a00000000000000\
         01050000000000000006000000000000\
         000300000000000000"
    );
    assert_eq!(decode_record::<NodeRecord>(&encoded), Ok(golden_node()));
    // A node record is the same in format version 1.
    let mut version_1 = encoded.clone();
    version_1[0] = 1;
    assert_eq!(decode_record::<NodeRecord>(&version_1), Ok(golden_node()));
}

#[test]
fn golden_command_bytes_field_by_field() {
    let command = Command::Heartbeat {
        node_id: NodeId(2),
        used_bytes: 4096,
        now_ms: 1_700_000_000_000,
    };
    let expected: Vec<u8> = [
        vec![0x02, 0x08], // format version 2, kind Command
        vec![18],         // tag Heartbeat
        u64_le(2),
        u64_le(4096),
        u64_le(1_700_000_000_000),
    ]
    .concat();
    assert_eq!(encode_record(&command), expected);
    assert_eq!(decode_record::<Command>(&expected), Ok(command.clone()));
    let mut version_1 = expected.clone();
    version_1[0] = 1;
    assert_eq!(decode_record::<Command>(&version_1), Ok(command));
}

#[test]
fn golden_replication_bytes() {
    // The wrapper of a write keeps the bytes of before: tag 60, then the command.
    let inner = Command::DeleteBucket {
        bucket: "b".to_owned(),
    };
    let wrapped = Command::QueueReplication {
        now_ms: None,
        command: Box::new(inner.clone()),
    };
    let expected: Vec<u8> = [vec![0x02, 0x08, 60, 11], string("b")].concat();
    assert_eq!(encode_record(&wrapped), expected);
    assert_eq!(decode_record::<Command>(&expected), Ok(wrapped));
    // With the request's time (a metadata change): tag 62, the time, then the command.
    let timed = Command::QueueReplication {
        now_ms: Some(1_700_000_000_000),
        command: Box::new(inner),
    };
    let expected: Vec<u8> = [
        vec![0x02, 0x08, 62],
        u64_le(1_700_000_000_000),
        vec![11],
        string("b"),
    ]
    .concat();
    assert_eq!(encode_record(&timed), expected);
    assert_eq!(decode_record::<Command>(&expected), Ok(timed));
    // Event kinds: 0 Put, 1 DeleteMarker, 2 MetadataChange (field by field).
    for (kind, tag) in [
        (ReplicationEventKind::Put, 0u8),
        (ReplicationEventKind::DeleteMarker, 1),
        (ReplicationEventKind::MetadataChange, 2),
    ] {
        let entry = ReplicationEntry {
            seq: 12,
            bucket: "b".to_owned(),
            key: "k".to_owned(),
            version_id: VersionId(11),
            kind,
            enqueued_at_ms: 99,
        };
        let mut writer = Writer::new();
        entry.encode(&mut writer);
        let expected: Vec<u8> = [
            u64_le(12),
            string("b"),
            string("k"),
            u64_le(11),
            vec![tag],
            u64_le(99),
        ]
        .concat();
        assert_eq!(writer.into_bytes(), expected, "{kind:?}");
    }
    // A kind beyond the known ones is refused.
    let unknown = Output {
        result: Ok(Response::ReplicationQueue(vec![ReplicationEntry {
            seq: 1,
            bucket: "b".to_owned(),
            key: "k".to_owned(),
            version_id: VersionId(1),
            kind: ReplicationEventKind::MetadataChange,
            enqueued_at_ms: 1,
        }])),
        new_garbage: Vec::new(),
    };
    let mut bytes = encode_record(&unknown);
    // The entry ends with its kind and `enqueued_at_ms`; the output with `new_garbage`'s count.
    let kind_offset = bytes.len() - 4 - 8 - 1;
    assert_eq!(bytes[kind_offset], 2);
    bytes[kind_offset] = 3;
    assert!(matches!(
        decode_record::<Output>(&bytes),
        Err(DecodeError::InvalidTag { .. })
    ));
}

/// An object record that exercises every field type: options set, maps, grants, a shard map.
fn golden_object() -> ObjectRecord {
    ObjectRecord {
        bucket: "b".to_owned(),
        key: "k".to_owned(),
        version_id: VersionId(0x10),
        null_version: false,
        delete_marker: false,
        owner: "o".to_owned(),
        size_bytes: 5,
        checksums: Checksums {
            etag: "e".to_owned(),
            additional: Some(AdditionalChecksum {
                algorithm: ChecksumAlgorithm::Crc32c,
                value_base64: "c=".to_owned(),
            }),
        },
        content_type: "t".to_owned(),
        user_metadata: BTreeMap::from([("m".to_owned(), "v".to_owned())]),
        storage_class: StorageClass::Standard,
        acl: Acl {
            canned: CannedAcl::PublicRead,
            grants: vec![Grant {
                grantee: Grantee::CanonicalUser { id: "u".to_owned() },
                permission: Permission::Read,
            }],
        },
        state: TransactionState::Committed,
        idempotency_token: "x".to_owned(),
        created_at_ms: 1,
        committed_at_ms: Some(2),
        commit_log_index: 17,
        upload_id: None,
        erasure: ErasureInfo {
            scheme: "rs:1+1".to_owned(),
            piece_size_bytes: 4096,
            object_length_bytes: 5,
            parts: vec![PartShards {
                part_number: 1,
                length_bytes: 5,
                blocks: vec![BlockShards {
                    length_bytes: 5,
                    shards: BTreeMap::from([
                        (
                            ShardIndex(0),
                            ShardPlacement {
                                node_id: NodeId(1),
                                availability_zone: "z".to_owned(),
                                crc32c: 0xAABBCCDD,
                            },
                        ),
                        (
                            ShardIndex(1),
                            ShardPlacement {
                                node_id: NodeId(2),
                                availability_zone: "y".to_owned(),
                                crc32c: 0x11223344,
                            },
                        ),
                    ]),
                }],
            }],
            degraded: false,
        },
        record_version: 2,
        attributes: Default::default(),
    }
}

/// Frozen at format version 1. If this test fails, the format changed: bump FORMAT_VERSION and
/// keep a decoder for version 1 instead of editing this constant.
const GOLDEN_OBJECT_HEX: &str = concat!(
    "0101",                 // version 1, kind Object (no attributes)
    "0100000062",           // bucket "b"
    "010000006b",           // key "k"
    "1000000000000000",     // version_id 0x10
    "00",                   // null_version
    "00",                   // delete_marker
    "010000006f",           // owner "o"
    "0500000000000000",     // size_bytes
    "0100000065",           // etag "e"
    "01",                   // additional: Some
    "01",                   // algorithm Crc32c
    "02000000633d",         // value "c="
    "0100000074",           // content_type "t"
    "01000000",             // user_metadata: 1 entry
    "010000006d",           // "m"
    "0100000076",           // "v"
    "00",                   // storage class Standard
    "01",                   // canned ACL PublicRead
    "01000000",             // 1 grant
    "00",                   // CanonicalUser
    "0100000075",           // id "u"
    "01",                   // permission Read
    "01",                   // state Committed
    "0100000078",           // idempotency_token "x"
    "0100000000000000",     // created_at_ms
    "01",                   // committed_at_ms: Some
    "0200000000000000",     // 2
    "1100000000000000",     // commit_log_index 17
    "00",                   // upload_id: None
    "0600000072733a312b31", // scheme "rs:1+1"
    "00100000",             // piece_size_bytes 4096
    "0500000000000000",     // object_length_bytes
    "01000000",             // 1 part
    "01000000",             // part_number 1
    "0500000000000000",     // length_bytes
    "01000000",             // 1 block
    "0500000000000000",     // length_bytes
    "02000000",             // 2 shards
    "0000",                 // shard index 0
    "0100000000000000",     // node 1
    "010000007a",           // az "z"
    "ddccbbaa",             // crc32c
    "0100",                 // shard index 1
    "0200000000000000",     // node 2
    "0100000079",           // az "y"
    "44332211",             // crc32c
    "00",                   // degraded
    "0200000000000000",     // record_version
);

#[test]
fn golden_object_record_bytes() {
    // Version 2 is version 1's layout plus the attributes map at the end.
    let mut record = golden_object();
    record
        .attributes
        .insert("tagging".to_owned(), b"a=b".to_vec());
    let encoded = encode_record(&record);
    let expected = format!(
        "02{}{}",
        &GOLDEN_OBJECT_HEX[2..],
        concat!(
            "01000000", // 1 attribute
            "07000000",
            "74616767696e67", // "tagging"
            "03000000",
            "613d62", // b"a=b"
        )
    );
    assert_eq!(hex(&encoded), expected);
    assert_eq!(decode_record::<ObjectRecord>(&encoded), Ok(record));
}

#[test]
fn version_1_object_records_still_decode() {
    let bytes: Vec<u8> = (0..GOLDEN_OBJECT_HEX.len())
        .step_by(2)
        .map(|index| u8::from_str_radix(&GOLDEN_OBJECT_HEX[index..index + 2], 16).unwrap())
        .collect();
    assert_eq!(decode_record::<ObjectRecord>(&bytes), Ok(golden_object()));
}

#[test]
fn golden_snapshot_bytes() {
    let mut state = StateMachine::new(Role::ObjectPartition {
        partition_index: 1,
        partition_count: 4,
    });
    assert!(
        state
            .apply(prepare("b", "k", "", 0, VersioningState::Unversioned), 9)
            .is_ok()
    );
    let bytes = state.to_snapshot_bytes();
    let body = &bytes[..bytes.len() - 4];
    let record = encode_record(&state_record(&state));
    let expected_body: Vec<u8> = [
        vec![0x02, 0x07],                 // version 2, kind Snapshot
        vec![0x02],                       // role ObjectPartition
        1u32.to_le_bytes().to_vec(),      // partition_index
        4u32.to_le_bytes().to_vec(),      // partition_count
        u64_le(9),                        // last_applied_index
        0u32.to_le_bytes().to_vec(),      // buckets
        1u32.to_le_bytes().to_vec(),      // versions
        record[2..].to_vec(),             // the version, without its own header
        [0u32.to_le_bytes(); 5].concat(), // uploads, garbage, access keys, nodes, sealed buckets
    ]
    .concat();
    assert_eq!(body, expected_body.as_slice());
    assert_eq!(bytes[bytes.len() - 4..], crc32c::crc32c(body).to_le_bytes());
    assert_eq!(StateMachine::from_snapshot_bytes(&bytes), Ok(state));
}

fn state_record(state: &StateMachine) -> ObjectRecord {
    match state.query(&Query::ListStalePreparing {
        created_before_ms: u64::MAX,
        limit: 1,
    }) {
        Ok(Response::Objects(mut records)) => records.remove(0),
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn decoder_refusals_are_typed() {
    let good = encode_record(&golden_node());
    let mut wrong_version = good.clone();
    wrong_version[0] = 3;
    assert_eq!(
        decode_record::<NodeRecord>(&wrong_version),
        Err(DecodeError::UnsupportedVersion {
            found: 3,
            supported: 2
        })
    );
    wrong_version[0] = 0;
    assert_eq!(
        decode_record::<NodeRecord>(&wrong_version),
        Err(DecodeError::UnsupportedVersion {
            found: 0,
            supported: 2
        })
    );
    assert_eq!(
        decode_record::<BucketRecord>(&good),
        Err(DecodeError::WrongKind {
            expected: 2,
            found: 5
        })
    );
    let mut trailing = good.clone();
    trailing.push(0);
    assert_eq!(
        decode_record::<NodeRecord>(&trailing),
        Err(DecodeError::TrailingBytes { count: 1 })
    );
    assert!(matches!(
        decode_record::<NodeRecord>(&good[..good.len() - 1]),
        Err(DecodeError::UnexpectedEnd { .. })
    ));
    assert!(matches!(
        decode_record::<NodeRecord>(&[]),
        Err(DecodeError::UnexpectedEnd { .. })
    ));
    let status_offset = good.len() - 25;
    let mut bad_tag = good.clone();
    bad_tag[status_offset] = 9;
    assert_eq!(
        decode_record::<NodeRecord>(&bad_tag),
        Err(DecodeError::InvalidTag {
            what: "node status",
            tag: 9,
            offset: status_offset
        })
    );
    // "n7:7000" -> invalid UTF-8.
    let mut bad_utf8 = good.clone();
    bad_utf8[14] = 0xFF;
    assert_eq!(
        decode_record::<NodeRecord>(&bad_utf8),
        Err(DecodeError::InvalidUtf8 { offset: 14 })
    );
    // A huge length never allocates: it is refused against the remaining input.
    let mut huge = good.clone();
    huge[10..14].copy_from_slice(&u32::MAX.to_le_bytes());
    assert!(matches!(
        decode_record::<NodeRecord>(&huge),
        Err(DecodeError::UnexpectedEnd { .. })
    ));
}

#[test]
fn unsorted_maps_are_not_canonical() {
    let mut record = golden_object();
    record.user_metadata = BTreeMap::from([
        ("a".to_owned(), "1".to_owned()),
        ("b".to_owned(), "2".to_owned()),
    ]);
    let encoded = hex(&encode_record(&record));
    // Swap the two entries' keys in the encoding.
    let swapped = encoded.replace(
        "0100000061010000003101000000620100000032",
        "0100000062010000003101000000610100000032",
    );
    assert_ne!(swapped, encoded);
    let bytes: Vec<u8> = (0..swapped.len())
        .step_by(2)
        .map(|index| u8::from_str_radix(&swapped[index..index + 2], 16).unwrap())
        .collect();
    assert!(matches!(
        decode_record::<ObjectRecord>(&bytes),
        Err(DecodeError::NotCanonical {
            what: "map key",
            ..
        })
    ));
}

#[test]
fn snapshot_corruption_and_inconsistency_are_detected() {
    let mut harness = Harness::with_bucket();
    harness.put("a", 10, VersioningState::Unversioned);
    let mut bytes = harness.state.to_snapshot_bytes();
    bytes[20] ^= 0x01;
    assert!(matches!(
        StateMachine::from_snapshot_bytes(&bytes),
        Err(DecodeError::ChecksumMismatch { .. })
    ));
    assert!(matches!(
        StateMachine::from_snapshot_bytes(&[1, 2]),
        Err(DecodeError::UnexpectedEnd { .. })
    ));

    // A partition index outside the partition count.
    let mut writer = Writer::new();
    writer.u8(FORMAT_VERSION);
    writer.u8(RecordKind::Snapshot as u8);
    Role::ObjectPartition {
        partition_index: 4,
        partition_count: 4,
    }
    .encode(&mut writer);
    writer.u64(0);
    for _ in 0..7 {
        writer.u32(0);
    }
    let mut bytes = writer.into_bytes();
    let checksum = crc32c::crc32c(&bytes);
    bytes.extend_from_slice(&checksum.to_le_bytes());
    assert!(matches!(
        StateMachine::from_snapshot_bytes(&bytes),
        Err(DecodeError::Inconsistent { .. })
    ));

    // Two committed null versions of one key: well-formed bytes, impossible state.
    let record = harness.get("a", VersionSelector::Current).unwrap();
    let mut second = record.clone();
    second.version_id = VersionId(record.version_id.0 + 100);
    let mut writer = Writer::new();
    writer.u8(FORMAT_VERSION);
    writer.u8(RecordKind::Snapshot as u8);
    Role::Combined.encode(&mut writer);
    writer.u64(1000);
    writer.u32(0);
    writer.u32(2);
    record.encode(&mut writer);
    second.encode(&mut writer);
    for _ in 0..5 {
        writer.u32(0);
    }
    let mut bytes = writer.into_bytes();
    let checksum = crc32c::crc32c(&bytes);
    bytes.extend_from_slice(&checksum.to_le_bytes());
    assert!(matches!(
        StateMachine::from_snapshot_bytes(&bytes),
        Err(DecodeError::Inconsistent { .. })
    ));
}

#[test]
fn every_record_kind_round_trips() {
    let mut harness = Harness::with_bucket();
    harness.ok(Command::CreateAccessKey(CreateAccessKey {
        access_key_id: "AK".to_owned(),
        secret_access_key: "SK".to_owned(),
        owner: OWNER.to_owned(),
        now_ms: 1,
    }));
    let bucket = match harness.query(Query::GetBucket {
        bucket: BUCKET.to_owned(),
    }) {
        Ok(Response::Bucket(bucket)) => bucket,
        other => panic!("unexpected {other:?}"),
    };
    assert_eq!(
        decode_record::<BucketRecord>(&encode_record(&bucket)),
        Ok(bucket)
    );
    let Ok(Response::AccessKey(key)) = harness.query(Query::GetAccessKey {
        access_key_id: "AK".to_owned(),
    }) else {
        panic!("a key")
    };
    assert_eq!(
        decode_record::<AccessKeyRecord>(&encode_record(&key)),
        Ok(key)
    );
    harness.put("a", 10, VersioningState::Unversioned);
    harness.put("a", 10, VersioningState::Unversioned);
    let garbage = harness.garbage().remove(0);
    assert_eq!(
        decode_record::<GarbageRecord>(&encode_record(&garbage)),
        Ok(garbage)
    );
    let Response::Upload(upload) =
        harness.ok(Command::CreateMultipartUpload(CreateMultipartUpload {
            bucket: BUCKET.to_owned(),
            key: "m".to_owned(),
            owner: OWNER.to_owned(),
            content_type: String::new(),
            user_metadata: BTreeMap::new(),
            storage_class: StorageClass::DeepArchive,
            acl: Acl::default(),
            ec_scheme: SCHEME.to_owned(),
            piece_size_bytes: 1,
            now_ms: 1,
            attributes: Default::default(),
        }))
    else {
        panic!("an upload")
    };
    assert_eq!(
        decode_record::<MultipartUpload>(&encode_record(&upload)),
        Ok(upload)
    );
}

#[test]
fn every_command_round_trips() {
    let commands = vec![
        prepare(BUCKET, "k", "t", 1, VersioningState::Suspended),
        Command::PutBucketAttribute {
            bucket: BUCKET.to_owned(),
            name: "policy".to_owned(),
            value: Some(b"{}".to_vec()),
        },
        Command::PutBucketAttribute {
            bucket: BUCKET.to_owned(),
            name: "cors".to_owned(),
            value: None,
        },
        Command::PutObjectAttribute {
            bucket: BUCKET.to_owned(),
            key: "k".to_owned(),
            version: VersionSelector::Id(VersionId(4)),
            name: "tagging".to_owned(),
            value: Some(vec![0, 1, 2]),
        },
        commit(BUCKET, "k", VersionId(3), "t", 10),
        Command::AbortWrite(AbortWrite {
            bucket: BUCKET.to_owned(),
            key: "k".to_owned(),
            version_id: VersionId(3),
            now_ms: 4,
        }),
        delete(
            "k",
            VersionSelector::Id(VersionId(9)),
            VersioningState::Enabled,
        ),
        delete("k", VersionSelector::Null, VersioningState::Enabled),
        Command::UpdateShardMap(UpdateShardMap {
            bucket: BUCKET.to_owned(),
            key: "k".to_owned(),
            version_id: VersionId(1),
            expected_record_version: 2,
            parts: shard_map(7),
            now_ms: 3,
        }),
        Command::UploadPart(UploadPart {
            bucket: BUCKET.to_owned(),
            key: "k".to_owned(),
            upload_id: UploadId(5),
            part_number: 2,
            size_bytes: 7,
            etag: "e".to_owned(),
            checksum: Some(AdditionalChecksum {
                algorithm: ChecksumAlgorithm::Sha256,
                value_base64: "x".to_owned(),
            }),
            blocks: vec![block(7, 0..6)],
            now_ms: 1,
        }),
        Command::CompleteMultipartUpload(CompleteMultipartUpload {
            bucket: BUCKET.to_owned(),
            key: "k".to_owned(),
            upload_id: UploadId(5),
            parts: vec![CompletedPart {
                part_number: 1,
                etag: "e".to_owned(),
            }],
            checksums: checksums("e-1"),
            versioning: VersioningState::Enabled,
            now_ms: 1,
        }),
        Command::AbortMultipartUpload(AbortMultipartUpload {
            bucket: BUCKET.to_owned(),
            key: "k".to_owned(),
            upload_id: UploadId(5),
            now_ms: 1,
        }),
        Command::PurgeGarbage {
            garbage_ids: vec![GarbageId {
                log_index: 3,
                sequence: 1,
            }],
        },
        Command::SealBucket {
            bucket: "bkt".to_owned(),
        },
        Command::UnsealBucket {
            bucket: "bkt".to_owned(),
        },
        create_bucket("bkt", OWNER),
        Command::DeleteBucket {
            bucket: "bkt".to_owned(),
        },
        Command::PutBucketVersioning {
            bucket: "bkt".to_owned(),
            versioning: VersioningState::Enabled,
        },
        Command::PutBucketReplication {
            bucket: "bkt".to_owned(),
            rules: vec![ReplicationRule {
                rule_id: "r".to_owned(),
                prefix: "p".to_owned(),
                destination_region: "d".to_owned(),
                destination_bucket: "b".to_owned(),
                enabled: false,
            }],
        },
        Command::PutBucketEcScheme {
            bucket: "bkt".to_owned(),
            ec_scheme: SCHEME.to_owned(),
        },
        Command::RevokeAccessKey {
            access_key_id: "AK".to_owned(),
            now_ms: 1,
        },
        Command::ResealAccessKey(cairn_meta_state::ResealAccessKey {
            access_key_id: "AK".to_owned(),
            record_version: 3,
            secret_access_key: "sealed:v1:00:AA".to_owned(),
        }),
        Command::RewrapObjectEncryption {
            bucket: BUCKET.to_owned(),
            key: "k".to_owned(),
            version_id: VersionId(9),
            record_version: 2,
            envelope: vec![1, 2, 3],
        },
        Command::RewrapUploadEncryption {
            bucket: BUCKET.to_owned(),
            key: "k".to_owned(),
            upload_id: UploadId(7),
            record_version: 2,
            envelope: vec![4, 5],
        },
        Command::RegisterNode(RegisterNode {
            node_id: NodeId(1),
            address: "a".to_owned(),
            availability_zone: "z".to_owned(),
            capacity_bytes: 1,
            now_ms: 1,
        }),
        Command::ExpireNodes {
            now_ms: 1,
            timeout_ms: 2,
        },
        Command::Read(Query::ListObjects(ListObjectsRequest {
            bucket: "b".to_owned(),
            prefix: "p".to_owned(),
            delimiter: "/".to_owned(),
            start_after: Some("s".to_owned()),
            continuation_token: None,
            max_keys: 3,
        })),
        Command::Read(Query::ListUploads(ListUploadsRequest {
            bucket: "b".to_owned(),
            prefix: String::new(),
            key_marker: Some("k".to_owned()),
            upload_id_marker: Some(UploadId(2)),
            max_uploads: 1,
        })),
        Command::Read(Query::ListGarbage {
            after: Some(GarbageId {
                log_index: 1,
                sequence: 0,
            }),
            limit: 5,
        }),
        Command::Read(Query::ListBuckets { owner: None }),
        Command::Read(Query::GetNode { node_id: NodeId(3) }),
        Command::Read(Query::ListNodes),
        Command::RecordLayout(sample_layout()),
        Command::Read(Query::GetLayout),
        Command::Read(Query::ListAccessKeys { owner: None }),
        Command::Read(Query::ListAccessKeys {
            owner: Some("alice".to_owned()),
        }),
        Command::SetVersionTag { tag: 0xec },
        Command::ReplicaDeleteMarker {
            delete: DeleteObject {
                bucket: BUCKET.to_owned(),
                key: "k".to_owned(),
                version: VersionSelector::Current,
                versioning: VersioningState::Enabled,
                owner: "alice".to_owned(),
                now_ms: 7,
            },
            attributes: Attributes::from([(
                REPLICA_VERSION_ATTRIBUTE.to_owned(),
                b"ec00000000000007".to_vec(),
            )]),
        },
    ];
    let mut tags = std::collections::BTreeSet::new();
    for command in commands {
        let bytes = encode_record(&command);
        tags.insert(bytes[2]);
        assert_eq!(decode_record::<Command>(&bytes), Ok(command));
    }
    assert!(tags.len() >= 20);
    assert!(tags.contains(&63), "ReplicaDeleteMarker is command tag 63");
    assert!(tags.contains(&27), "SetVersionTag is command tag 27");
}

fn decode_everything(bytes: &[u8]) {
    let _ = decode_record::<ObjectRecord>(bytes);
    let _ = decode_record::<BucketRecord>(bytes);
    let _ = decode_record::<MultipartUpload>(bytes);
    let _ = decode_record::<AccessKeyRecord>(bytes);
    let _ = decode_record::<NodeRecord>(bytes);
    let _ = decode_record::<GarbageRecord>(bytes);
    let _ = decode_record::<Command>(bytes);
    let _ = decode_record::<Output>(bytes);
    let _ = StateMachine::from_snapshot_bytes(bytes);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        decode_everything(&bytes);
    }

    /// Random bodies behind a valid header reach deep into every decoder.
    #[test]
    fn random_bodies_never_panic(
        kind in 1u8..=9,
        body in proptest::collection::vec(any::<u8>(), 0..256),
    ) {
        let bytes = [vec![FORMAT_VERSION, kind], body].concat();
        decode_everything(&bytes);
    }

    /// A valid encoding with one byte changed decodes to an error or to some value, never a panic;
    /// any truncation is always an error.
    #[test]
    fn mutated_encodings_never_panic(position in any::<prop::sample::Index>(), value in any::<u8>()) {
        let good = encode_record(&golden_object());
        let mut bytes = good.clone();
        let position = position.index(bytes.len());
        bytes[position] = value;
        decode_everything(&bytes);
        prop_assert!(decode_record::<ObjectRecord>(&good[..position]).is_err());
    }

    #[test]
    fn object_records_round_trip(
        key in "\\PC{0,20}",
        metadata in proptest::collection::btree_map("[a-z]{1,5}", "\\PC{0,5}", 0..4),
        token in "[a-z0-9]{0,8}",
        size_bytes in any::<u64>(),
        committed_at_ms in proptest::option::of(any::<u64>()),
        upload_id in proptest::option::of(any::<u64>()),
        shard_indexes in proptest::collection::btree_set(0u16..12, 0..12),
        crc32c in any::<u32>(),
        state in 0usize..3,
    ) {
        let mut record = golden_object();
        record.key = key;
        record.user_metadata = metadata;
        record.idempotency_token = token;
        record.size_bytes = size_bytes;
        record.committed_at_ms = committed_at_ms;
        record.upload_id = upload_id.map(UploadId);
        record.state = [
            TransactionState::Preparing,
            TransactionState::Committed,
            TransactionState::Deleted,
        ][state];
        record.erasure.parts[0].blocks[0].shards = shard_indexes
            .into_iter()
            .map(|index| {
                (ShardIndex(index), ShardPlacement {
                    node_id: NodeId(u64::from(index)),
                    availability_zone: format!("az{index}"),
                    crc32c,
                })
            })
            .collect();
        let bytes = encode_record(&record);
        prop_assert_eq!(decode_record::<ObjectRecord>(&bytes), Ok(record));
    }
}

#[test]
fn every_error_and_response_round_trips() {
    let errors = vec![
        MetaError::NoSuchBucket {
            bucket: "b".to_owned(),
        },
        MetaError::NoSuchKey {
            bucket: "b".to_owned(),
            key: "k".to_owned(),
            delete_marker: Some(VersionId(4)),
        },
        MetaError::NoSuchVersion {
            bucket: "b".to_owned(),
            key: "k".to_owned(),
            version: "null".to_owned(),
        },
        MetaError::MethodNotAllowedOnDeleteMarker {
            version_id: VersionId(1),
        },
        MetaError::NoSuchUpload {
            bucket: "b".to_owned(),
            key: "k".to_owned(),
            upload_id: UploadId(3),
        },
        MetaError::InvalidPart {
            part_number: 2,
            reason: "r".to_owned(),
        },
        MetaError::InvalidPartOrder { part_number: 2 },
        MetaError::InvalidPartNumber { part_number: 0 },
        MetaError::EntityTooSmall {
            part_number: 1,
            size_bytes: 2,
            minimum_bytes: 3,
        },
        MetaError::BucketNotEmpty {
            bucket: "b".to_owned(),
        },
        MetaError::BucketAlreadyExists {
            bucket: "b".to_owned(),
        },
        MetaError::BucketAlreadyOwnedByYou {
            bucket: "b".to_owned(),
        },
        MetaError::InvalidBucketName {
            bucket: "B".to_owned(),
            reason: "r".to_owned(),
        },
        MetaError::IllegalVersioningConfiguration {
            bucket: "b".to_owned(),
        },
        MetaError::NoSuchWrite {
            bucket: "b".to_owned(),
            key: "k".to_owned(),
            version_id: VersionId(9),
        },
        MetaError::WriteAlreadyCommitted {
            version_id: VersionId(9),
        },
        MetaError::TokenMismatch {
            version_id: VersionId(9),
        },
        MetaError::IdempotencyTokenReused {
            token: "t".to_owned(),
        },
        MetaError::InvalidEcScheme {
            scheme: "s".to_owned(),
            reason: "r".to_owned(),
        },
        MetaError::InvalidShardMap {
            reason: "r".to_owned(),
        },
        MetaError::RecordVersionMismatch {
            expected: 1,
            actual: 2,
        },
        MetaError::InvalidContinuationToken,
        MetaError::InvalidArgument {
            reason: "r".to_owned(),
        },
        MetaError::AccessKeyAlreadyExists {
            access_key_id: "a".to_owned(),
        },
        MetaError::NoSuchAccessKey {
            access_key_id: "a".to_owned(),
        },
        MetaError::NoSuchNode { node_id: NodeId(5) },
        MetaError::WrongRole {
            command: "PrepareWrite".to_owned(),
            role: Role::ObjectPartition {
                partition_index: 1,
                partition_count: 2,
            },
        },
        MetaError::StaleLogIndex {
            log_index: 1,
            last_applied_index: 2,
        },
    ];
    let mut tags = std::collections::BTreeSet::new();
    for error in errors {
        let output = Output {
            result: Err(error),
            new_garbage: Vec::new(),
        };
        let bytes = encode_record(&output);
        tags.insert(bytes[3]);
        assert_eq!(decode_record::<Output>(&bytes), Ok(output));
    }
    assert_eq!(tags.len(), 28, "one tag per error variant");

    let node = golden_node();
    let responses = vec![
        Response::Prepared {
            record: golden_object(),
            retried: true,
        },
        Response::Deleted {
            removed: None,
            delete_marker: Some(golden_object()),
        },
        Response::Objects(vec![golden_object()]),
        Response::ObjectList(ListObjectsPage {
            contents: vec![ObjectSummary {
                key: "k".to_owned(),
                version_id: VersionId(1),
                null_version: true,
                size_bytes: 2,
                etag: "e".to_owned(),
                last_modified_ms: 3,
                storage_class: StorageClass::Glacier,
                owner: "o".to_owned(),
            }],
            common_prefixes: vec!["p/".to_owned()],
            is_truncated: true,
            next_continuation_token: Some("1k6b".to_owned()),
            key_count: 2,
        }),
        Response::VersionList(ListVersionsPage {
            versions: vec![VersionSummary {
                key: "k".to_owned(),
                version_id: VersionId(1),
                null_version: false,
                delete_marker: true,
                is_latest: true,
                size_bytes: 0,
                etag: String::new(),
                last_modified_ms: 3,
                storage_class: StorageClass::Standard,
                owner: "o".to_owned(),
            }],
            common_prefixes: Vec::new(),
            is_truncated: false,
            next_key_marker: None,
            next_version_id_marker: Some(VersionId(1)),
        }),
        Response::UploadList(ListUploadsPage {
            uploads: vec![UploadSummary {
                key: "k".to_owned(),
                upload_id: UploadId(1),
                owner: "o".to_owned(),
                storage_class: StorageClass::Standard,
                initiated_at_ms: 1,
            }],
            is_truncated: true,
            next_key_marker: Some("k".to_owned()),
            next_upload_id_marker: Some(UploadId(1)),
        }),
        Response::PartList(ListPartsPage::default()),
        Response::Purged { purged_count: 3 },
        Response::BucketUsage {
            has_versions: true,
            has_uploads: false,
        },
        Response::Nodes(vec![node.clone()]),
        Response::Heartbeat {
            node,
            came_up: true,
        },
        Response::NodesExpired(vec![NodeId(1), NodeId(2)]),
        Response::Layout(None),
        Response::Layout(Some(sample_layout())),
        Response::VersionTag(0x57),
        Response::AccessKeys(vec![AccessKeyRecord {
            access_key_id: "AKID".to_owned(),
            secret_access_key: "secret".to_owned(),
            owner: "alice".to_owned(),
            created_at_ms: 1,
            status: AccessKeyStatus::Revoked,
            revoked_at_ms: Some(2),
            record_version: 3,
        }]),
    ];
    for response in responses {
        let output = Output {
            result: Ok(response),
            new_garbage: Vec::new(),
        };
        assert_eq!(decode_record::<Output>(&encode_record(&output)), Ok(output));
    }
}

fn sample_layout() -> ClusterLayout {
    ClusterLayout {
        ring_version: 1,
        partition_count: 2,
        virtual_nodes_per_partition: 1024,
        placement_version: 1,
        replicas_per_group: 3,
        zones: BTreeMap::from([(1, "az1".to_owned()), (2, "az2".to_owned())]),
        placement: BTreeMap::from([(0, vec![1, 2]), (1, vec![1, 2])]),
    }
}

/// The partition map records the first layout and keeps it: a later, different layout is
/// answered with the recorded one (the caller refuses to run), and the layout survives a
/// snapshot round trip; other roles neither accept layout commands nor carry a layout.
#[test]
fn partition_map_keeps_the_first_layout() {
    let mut state = StateMachine::new(Role::PartitionMap);
    assert_eq!(state.query(&Query::GetLayout), Ok(Response::Layout(None)));
    let first = sample_layout();
    let output = state.apply(Command::RecordLayout(first.clone()), 1);
    assert_eq!(output.result, Ok(Response::Layout(Some(first.clone()))));
    let mut other = first.clone();
    other.partition_count = 3;
    let output = state.apply(Command::RecordLayout(other), 2);
    assert_eq!(output.result, Ok(Response::Layout(Some(first.clone()))));
    assert_eq!(
        state.query(&Query::GetLayout),
        Ok(Response::Layout(Some(first.clone())))
    );

    let restored = StateMachine::from_snapshot_bytes(&state.to_snapshot_bytes()).unwrap();
    assert_eq!(restored, state);
    // And its stored form (the layout lives in the header).
    let stored = state.take_all_records();
    assert!(stored.puts.is_empty());
    assert_eq!(
        StateMachine::from_stored(&stored.header, []).as_ref(),
        Ok(&state)
    );
    assert_eq!(
        cairn_meta_state::stored::snapshot_from_stored(&stored.header, []),
        Ok(state.to_snapshot_bytes())
    );

    for role in [Role::Combined, Role::BucketService, Role::NodeRegistry] {
        let mut other_role = StateMachine::new(role);
        let output = other_role.apply(Command::RecordLayout(first.clone()), 1);
        assert!(
            matches!(output.result, Err(MetaError::WrongRole { .. })),
            "{role:?} accepted a layout"
        );
    }
    let mut partition_map = StateMachine::new(Role::PartitionMap);
    let output = partition_map.apply(
        Command::RegisterNode(RegisterNode {
            node_id: NodeId(1),
            address: "a".to_owned(),
            availability_zone: "z".to_owned(),
            capacity_bytes: 1,
            now_ms: 1,
        }),
        1,
    );
    assert!(matches!(output.result, Err(MetaError::WrongRole { .. })));
}

/// A stored record in an older format version is encoded again for a snapshot assembled from
/// the stored form (current-version records are copied as they are).
#[test]
fn snapshots_from_stored_records_of_an_older_version_are_reencoded() {
    let version_1: Vec<u8> = (0..GOLDEN_OBJECT_HEX.len())
        .step_by(2)
        .map(|index| u8::from_str_radix(&GOLDEN_OBJECT_HEX[index..index + 2], 16).unwrap())
        .collect();
    let record: ObjectRecord = decode_record(&version_1).unwrap();
    let key =
        cairn_meta_state::keys::object_version_key(&record.bucket, &record.key, record.version_id);
    let header = StateMachine::new(Role::ObjectPartition {
        partition_index: 0,
        partition_count: 1,
    })
    .stored_header();
    let loaded = StateMachine::from_stored(&header, [(key.as_slice(), version_1.as_slice())])
        .expect("a version-1 record loads");
    let assembled = cairn_meta_state::stored::snapshot_from_stored(
        &header,
        [(key.as_slice(), version_1.as_slice())],
    )
    .unwrap();
    assert_eq!(assembled, loaded.to_snapshot_bytes());
}
