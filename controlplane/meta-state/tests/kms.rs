//! The key service (SSE-KMS): create, rotate, enable/disable, lookups by id, ARN and alias, and
//! the binary format of its commands, queries, responses, errors and snapshot section.

mod common;

use cairn_meta_state::*;
use common::*;

const KEY_A: &str = "1234abcd-12ab-34cd-56ef-1234567890ab";
const KEY_B: &str = "99999999-0000-4000-8000-000000000001";

fn create(key_id: &str, alias: Option<&str>, material: u8) -> Command {
    Command::Kms(KmsCommand::Create(CreateKmsKey {
        key_id: key_id.to_owned(),
        alias: alias.map(str::to_owned),
        description: format!("key {key_id}"),
        wrapped_material: vec![material; 69],
        now_ms: 5_000,
    }))
}

fn get(harness: &Harness, key: &str) -> Result<KmsKeyRecord, MetaError> {
    match harness.query(Query::Kms(KmsQuery::Get {
        key: key.to_owned(),
    }))? {
        Response::KmsKey(record) => Ok(record),
        other => panic!("unexpected answer {other:?}"),
    }
}

#[test]
fn create_exact_record_and_lookups_by_id_arn_and_alias() {
    let mut harness = Harness::new(Role::BucketService);
    let response = harness.ok(create(KEY_A, Some("alias/photos"), 7));
    let expected = KmsKeyRecord {
        key_id: KEY_A.to_owned(),
        alias: Some("alias/photos".to_owned()),
        description: format!("key {KEY_A}"),
        state: KmsKeyState::Enabled,
        created_at_ms: 5_000,
        versions: vec![KmsKeyVersion {
            version: 1,
            created_at_ms: 5_000,
            wrapped_material: vec![7; 69],
        }],
        record_version: 1,
    };
    assert_eq!(response, Response::KmsKey(expected.clone()));
    assert_eq!(get(&harness, KEY_A).unwrap(), expected);
    assert_eq!(get(&harness, "alias/photos").unwrap(), expected);
    // An ARN from any region names the same (global) key; another account does not.
    assert_eq!(
        get(&harness, &kms_key_arn("eu-west-1", KEY_A)).unwrap(),
        expected
    );
    assert_eq!(
        get(&harness, "arn:aws:kms:us-east-1:000000000000:alias/photos").unwrap(),
        expected
    );
    for unknown in [
        KEY_B,
        "alias/other",
        "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab",
        "",
    ] {
        assert_eq!(
            get(&harness, unknown),
            Err(MetaError::NoSuchKmsKey {
                key: unknown.to_owned()
            })
        );
    }
    assert_eq!(
        expected.arn("us-east-1"),
        format!("arn:aws:kms:us-east-1:000000000000:key/{KEY_A}")
    );
}

#[test]
fn ids_and_aliases_are_unique_and_validated() {
    let mut harness = Harness::new(Role::BucketService);
    harness.ok(create(KEY_A, Some("alias/photos"), 1));
    assert_eq!(
        harness.err(create(KEY_A, None, 2)),
        MetaError::KmsKeyAlreadyExists {
            key: KEY_A.to_owned()
        }
    );
    assert_eq!(
        harness.err(create(KEY_B, Some("alias/photos"), 2)),
        MetaError::KmsKeyAlreadyExists {
            key: "alias/photos".to_owned()
        }
    );
    for (key_id, alias) in [
        ("not-a-uuid", None),
        ("1234ABCD-12AB-34CD-56EF-1234567890AB", None),
        (KEY_B, Some("photos")),
        (KEY_B, Some("alias/")),
        (KEY_B, Some("alias/sp ace")),
    ] {
        assert!(matches!(
            harness.err(create(key_id, alias, 3)),
            MetaError::InvalidArgument { .. }
        ));
    }
    let mut empty_material = create(KEY_B, None, 0);
    if let Command::Kms(KmsCommand::Create(command)) = &mut empty_material {
        command.wrapped_material.clear();
    }
    assert!(matches!(
        harness.err(empty_material),
        MetaError::InvalidArgument { .. }
    ));
    // Refusals changed nothing.
    let Ok(Response::KmsKeys(keys)) = harness.query(Query::Kms(KmsQuery::List)) else {
        panic!("list answers keys");
    };
    assert_eq!(keys.len(), 1);
    // Without an alias a second key is fine; the list is in key id order.
    harness.ok(create(KEY_B, None, 4));
    let Ok(Response::KmsKeys(keys)) = harness.query(Query::Kms(KmsQuery::List)) else {
        panic!("list answers keys");
    };
    let ids: Vec<&str> = keys.iter().map(|key| key.key_id.as_str()).collect();
    assert_eq!(ids, [KEY_A, KEY_B]);
}

#[test]
fn rotation_appends_versions_and_state_changes_gate_rotation() {
    let mut harness = Harness::new(Role::BucketService);
    harness.ok(create(KEY_A, None, 1));
    let rotate = |material: u8, now_ms: u64| {
        Command::Kms(KmsCommand::Rotate {
            key_id: KEY_A.to_owned(),
            version: u32::from(material),
            wrapped_material: vec![material; 69],
            now_ms,
        })
    };
    let Response::KmsKey(record) = harness.ok(rotate(2, 6_000)) else {
        panic!("rotate answers the key");
    };
    assert_eq!(record.versions.len(), 2);
    assert_eq!(record.newest_version().version, 2);
    assert_eq!(record.newest_version().created_at_ms, 6_000);
    assert_eq!(record.version(1).unwrap().wrapped_material, vec![1; 69]);
    assert_eq!(record.version(2).unwrap().wrapped_material, vec![2; 69]);
    assert!(record.version(3).is_none());
    assert_eq!(record.record_version, 2);

    let set_state = |state: KmsKeyState| {
        Command::Kms(KmsCommand::SetState {
            key_id: KEY_A.to_owned(),
            state,
            now_ms: 7_000,
        })
    };
    let Response::KmsKey(disabled) = harness.ok(set_state(KmsKeyState::Disabled)) else {
        panic!("set state answers the key");
    };
    assert_eq!(disabled.state, KmsKeyState::Disabled);
    assert_eq!(disabled.record_version, 3);
    // Disabling twice is a retry: no change.
    let Response::KmsKey(again) = harness.ok(set_state(KmsKeyState::Disabled)) else {
        panic!("set state answers the key");
    };
    assert_eq!(again, disabled);
    assert_eq!(
        harness.err(rotate(3, 8_000)),
        MetaError::KmsKeyDisabled {
            key_id: KEY_A.to_owned()
        }
    );
    harness.ok(set_state(KmsKeyState::Enabled));
    // Material wrapped for a number another rotation took is refused.
    assert_eq!(
        harness.err(rotate(2, 8_500)),
        MetaError::RecordVersionMismatch {
            expected: 2,
            actual: 3
        }
    );
    let Response::KmsKey(record) = harness.ok(rotate(3, 9_000)) else {
        panic!("rotate answers the key");
    };
    let versions: Vec<u32> = record.versions.iter().map(|entry| entry.version).collect();
    assert_eq!(versions, [1, 2, 3]);
    assert_eq!(
        harness.err(Command::Kms(KmsCommand::SetState {
            key_id: KEY_B.to_owned(),
            state: KmsKeyState::Enabled,
            now_ms: 1,
        })),
        MetaError::NoSuchKmsKey {
            key: KEY_B.to_owned()
        }
    );
}

#[test]
fn rotation_is_bounded() {
    let mut harness = Harness::new(Role::BucketService);
    harness.ok(create(KEY_A, None, 1));
    for index in 1..cairn_meta_state::kms::MAX_KEY_VERSIONS {
        harness.ok(Command::Kms(KmsCommand::Rotate {
            key_id: KEY_A.to_owned(),
            version: index as u32 + 1,
            wrapped_material: vec![index as u8; 69],
            now_ms: 6_000,
        }));
    }
    assert!(matches!(
        harness.err(Command::Kms(KmsCommand::Rotate {
            key_id: KEY_A.to_owned(),
            version: cairn_meta_state::kms::MAX_KEY_VERSIONS as u32 + 1,
            wrapped_material: vec![0; 69],
            now_ms: 6_000,
        })),
        MetaError::InvalidArgument { .. }
    ));
}

#[test]
fn only_bucket_service_and_combined_instances_hold_keys() {
    let mut combined = Harness::new(Role::Combined);
    combined.ok(create(KEY_A, None, 1));
    let mut partition = Harness::new(Role::ObjectPartition {
        partition_index: 0,
        partition_count: 2,
    });
    assert!(matches!(
        partition.err(create(KEY_A, None, 1)),
        MetaError::WrongRole { .. }
    ));
    assert!(matches!(
        partition.query(Query::Kms(KmsQuery::List)),
        Err(MetaError::WrongRole { .. })
    ));
}

#[test]
fn commands_queries_answers_and_errors_round_trip() {
    let commands = [
        create(KEY_A, Some("alias/a"), 9),
        create(KEY_B, None, 8),
        Command::Kms(KmsCommand::Rotate {
            key_id: KEY_A.to_owned(),
            version: 2,
            wrapped_material: vec![1, 2, 3],
            now_ms: 42,
        }),
        Command::Kms(KmsCommand::SetState {
            key_id: KEY_A.to_owned(),
            state: KmsKeyState::Disabled,
            now_ms: 43,
        }),
        Command::Read(Query::Kms(KmsQuery::Get {
            key: "alias/a".to_owned(),
        })),
        Command::Read(Query::Kms(KmsQuery::List)),
    ];
    for command in commands {
        let bytes = encode_record(&command);
        assert_eq!(decode_record::<Command>(&bytes).unwrap(), command);
    }
    // Golden head of a command: format version, kind, command tag 41, sub-tag 2.
    let set_state = encode_record(&Command::Kms(KmsCommand::SetState {
        key_id: "k".to_owned(),
        state: KmsKeyState::Disabled,
        now_ms: 1,
    }));
    assert_eq!(
        set_state,
        [
            &[
                FORMAT_VERSION,
                RecordKind::Command as u8,
                41,
                2,
                1,
                0,
                0,
                0,
                b'k',
                1
            ][..],
            &1u64.to_le_bytes()[..]
        ]
        .concat()
    );
    let record = KmsKeyRecord {
        key_id: KEY_A.to_owned(),
        alias: None,
        description: String::new(),
        state: KmsKeyState::Enabled,
        created_at_ms: 1,
        versions: vec![KmsKeyVersion {
            version: 1,
            created_at_ms: 1,
            wrapped_material: vec![5; 4],
        }],
        record_version: 1,
    };
    for result in [
        Ok(Response::KmsKey(record.clone())),
        Ok(Response::KmsKeys(vec![record.clone(), record])),
        Err(MetaError::NoSuchKmsKey { key: "x".into() }),
        Err(MetaError::KmsKeyDisabled { key_id: "x".into() }),
        Err(MetaError::KmsKeyAlreadyExists { key: "x".into() }),
    ] {
        let output = Output {
            result,
            new_garbage: Vec::new(),
        };
        let bytes = encode_record(&output);
        assert_eq!(decode_record::<Output>(&bytes).unwrap(), output);
    }
    // Unknown sub-tags are refused.
    let mut bad = encode_record(&Command::Kms(KmsCommand::SetState {
        key_id: "k".to_owned(),
        state: KmsKeyState::Enabled,
        now_ms: 1,
    }));
    bad[3] = 3;
    assert!(decode_record::<Command>(&bad).is_err());
}

#[test]
fn snapshot_section_with_and_without_suspects() {
    // Keys without suspects: the (empty) suspect section precedes the key section.
    let mut harness = Harness::new(Role::Combined);
    let before = harness.state.to_snapshot_bytes();
    harness.ok(create(KEY_A, Some("alias/a"), 1));
    let with_keys = harness.state.to_snapshot_bytes();
    assert!(with_keys.len() > before.len());
    let restored = StateMachine::from_snapshot_bytes(&with_keys).unwrap();
    assert_eq!(restored, harness.state);
    assert_eq!(get(&harness, "alias/a").unwrap().key_id, KEY_A);
    // A snapshot that ends after an empty suspect section is not canonical.
    let mut truncated = before[..before.len() - 4].to_vec();
    truncated.extend_from_slice(&0u32.to_le_bytes());
    let checksum = crc32c::crc32c(&truncated);
    truncated.extend_from_slice(&checksum.to_le_bytes());
    assert!(matches!(
        StateMachine::from_snapshot_bytes(&truncated),
        Err(DecodeError::NotCanonical { .. })
    ));
    // Keys together with suspects (the harness checks the round trip after every command).
    let mut harness = Harness::with_bucket();
    let record = harness.put("a", 10, VersioningState::Unversioned);
    harness.ok(Command::ReportSuspect {
        bucket: BUCKET.to_owned(),
        key: "a".to_owned(),
        version_id: record.version_id,
        now_ms: 1,
    });
    harness.ok(create(KEY_B, None, 2));
}

#[test]
fn rewrapping_material_replaces_one_version_at_the_record_version_read() {
    let mut harness = Harness::new(Role::BucketService);
    harness.ok(create(KEY_A, None, 1));
    harness.ok(Command::Kms(KmsCommand::Rotate {
        key_id: KEY_A.to_owned(),
        version: 2,
        wrapped_material: vec![2; 69],
        now_ms: 6_000,
    }));
    harness.ok(Command::Kms(KmsCommand::SetState {
        key_id: KEY_A.to_owned(),
        state: KmsKeyState::Disabled,
        now_ms: 6_001,
    }));
    let before = get(&harness, KEY_A).unwrap();
    let rewrap = |record_version: u64, version: u32, material: u8| {
        Command::Kms(KmsCommand::RewrapMaterial {
            key_id: KEY_A.to_owned(),
            version,
            record_version,
            wrapped_material: vec![material; 69],
        })
    };
    // Allowed on a disabled key: rotation of the master key must reach every key.
    let Response::KmsKey(after) = harness.ok(rewrap(before.record_version, 1, 7)) else {
        panic!("answers the key")
    };
    assert_eq!(after.version(1).unwrap().wrapped_material, vec![7; 69]);
    assert_eq!(after.version(2).unwrap().wrapped_material, vec![2; 69]);
    assert_eq!(after.version(1).unwrap().created_at_ms, 5_000);
    assert_eq!(after.state, KmsKeyState::Disabled);
    assert_eq!(after.record_version, before.record_version + 1);
    assert_eq!(
        harness.err(rewrap(before.record_version, 2, 8)),
        MetaError::RecordVersionMismatch {
            expected: before.record_version,
            actual: after.record_version,
        }
    );
    assert!(matches!(
        harness.err(rewrap(after.record_version, 3, 8)),
        MetaError::InvalidArgument { .. }
    ));
    assert!(matches!(
        harness.err(Command::Kms(KmsCommand::RewrapMaterial {
            key_id: KEY_A.to_owned(),
            version: 2,
            record_version: after.record_version,
            wrapped_material: Vec::new(),
        })),
        MetaError::InvalidArgument { .. }
    ));
    let command = rewrap(after.record_version, 2, 9);
    assert!(!format!("{command:?}").contains("9, 9"));
    let bytes = cairn_meta_state::codec::encode_record(&command);
    assert_eq!(
        cairn_meta_state::codec::decode_record::<Command>(&bytes),
        Ok(command)
    );
}
