//! Bucket service: buckets, access keys, node registry.

mod common;

use cairn_meta_state::*;
use common::*;

fn bucket_service() -> Harness {
    Harness::new(Role::BucketService)
}

#[test]
fn create_bucket_exact_record_and_conflicts() {
    let mut harness = bucket_service();
    let response = harness.ok(create_bucket("logs", OWNER));
    let expected = BucketRecord {
        name: "logs".to_owned(),
        owner: OWNER.to_owned(),
        primary_region: "eu-west-1".to_owned(),
        created_at_ms: 1_000,
        versioning: VersioningState::Unversioned,
        replication_rules: Vec::new(),
        ec_scheme: SCHEME.to_owned(),
        acl: Acl::default(),
        record_version: 1,
        attributes: Default::default(),
    };
    assert_eq!(response, Response::Bucket(expected.clone()));
    assert_eq!(
        harness.err(create_bucket("logs", OWNER)),
        MetaError::BucketAlreadyOwnedByYou {
            bucket: "logs".to_owned()
        }
    );
    assert_eq!(
        harness.err(create_bucket("logs", "owner-bob")),
        MetaError::BucketAlreadyExists {
            bucket: "logs".to_owned()
        }
    );
    harness.ok(create_bucket("bobs", "owner-bob"));
    assert_eq!(
        harness.query(Query::ListBuckets {
            owner: Some(OWNER.to_owned())
        }),
        Ok(Response::Buckets(vec![expected.clone()]))
    );
    let Ok(Response::Buckets(all)) = harness.query(Query::ListBuckets { owner: None }) else {
        panic!("a list")
    };
    let names: Vec<&str> = all.iter().map(|bucket| bucket.name.as_str()).collect();
    assert_eq!(names, vec!["bobs", "logs"]);

    // A bucket service cannot see objects; DeleteBucket trusts the caller's BucketUsage checks.
    assert_eq!(
        harness.ok(Command::DeleteBucket {
            bucket: "logs".to_owned()
        }),
        Response::BucketDeleted(expected)
    );
    assert_eq!(
        harness.err(Command::DeleteBucket {
            bucket: "logs".to_owned()
        }),
        MetaError::NoSuchBucket {
            bucket: "logs".to_owned()
        }
    );
}

#[test]
fn bucket_names_follow_s3_rules() {
    for good in ["abc", "my-bucket.logs", "a1b", &"x".repeat(63)] {
        assert_eq!(validate_bucket_name(good), Ok(()), "{good}");
    }
    for bad in [
        "ab",
        &"x".repeat(64),
        "Upper",
        "under_score",
        "-start",
        "end-",
        "a..b",
        "192.168.1.1",
        ".dot",
    ] {
        assert!(
            matches!(
                validate_bucket_name(bad),
                Err(MetaError::InvalidBucketName { .. })
            ),
            "{bad}"
        );
    }
    let mut harness = bucket_service();
    assert!(matches!(
        harness.err(create_bucket("Bad_Name", OWNER)),
        MetaError::InvalidBucketName { .. }
    ));
}

#[test]
fn combined_delete_bucket_checks_emptiness() {
    let mut harness = Harness::with_bucket();
    let record = harness.put("a", 1, VersioningState::Unversioned);
    let delete_bucket = Command::DeleteBucket {
        bucket: BUCKET.to_owned(),
    };
    assert_eq!(
        harness.err(delete_bucket.clone()),
        MetaError::BucketNotEmpty {
            bucket: BUCKET.to_owned()
        }
    );
    assert_eq!(
        harness.query(Query::BucketUsage {
            bucket: BUCKET.to_owned()
        }),
        Ok(Response::BucketUsage {
            has_versions: true,
            has_uploads: false
        })
    );
    // A PREPARING write also keeps the bucket.
    harness.ok(delete(
        "a",
        VersionSelector::Id(record.version_id),
        VersioningState::Unversioned,
    ));
    harness.ok(prepare(BUCKET, "b", "t", 1, VersioningState::Unversioned));
    assert!(matches!(
        harness.err(delete_bucket.clone()),
        MetaError::BucketNotEmpty { .. }
    ));
    harness.ok(Command::AbortWrite(AbortWrite {
        bucket: BUCKET.to_owned(),
        key: "b".to_owned(),
        version_id: VersionId(harness.next_log_index - 2),
        now_ms: 1,
    }));
    // A neighbouring bucket whose name extends this one does not count.
    harness.ok(create_bucket("photos2", OWNER));
    harness.ok(prepare(
        "photos2",
        "x",
        "t",
        1,
        VersioningState::Unversioned,
    ));
    assert!(matches!(
        harness.ok(delete_bucket),
        Response::BucketDeleted(_)
    ));
}

#[test]
fn versioning_replication_and_scheme_updates() {
    let mut harness = bucket_service();
    harness.ok(create_bucket("logs", OWNER));
    let versioning = |state| Command::PutBucketVersioning {
        bucket: "logs".to_owned(),
        versioning: state,
    };
    let Response::Bucket(record) = harness.ok(versioning(VersioningState::Enabled)) else {
        panic!("a bucket")
    };
    assert_eq!(record.versioning, VersioningState::Enabled);
    assert_eq!(record.record_version, 2);
    assert_eq!(
        harness.err(versioning(VersioningState::Unversioned)),
        MetaError::IllegalVersioningConfiguration {
            bucket: "logs".to_owned()
        }
    );
    harness.ok(versioning(VersioningState::Suspended));

    let rule = ReplicationRule {
        rule_id: "to-us".to_owned(),
        prefix: "important/".to_owned(),
        destination_region: "us-east-1".to_owned(),
        destination_bucket: "logs-replica".to_owned(),
        enabled: true,
    };
    let Response::Bucket(record) = harness.ok(Command::PutBucketReplication {
        bucket: "logs".to_owned(),
        rules: vec![rule.clone()],
    }) else {
        panic!("a bucket")
    };
    assert_eq!(record.replication_rules, vec![rule.clone()]);
    assert!(matches!(
        harness.err(Command::PutBucketReplication {
            bucket: "logs".to_owned(),
            rules: vec![rule.clone(), rule],
        }),
        MetaError::InvalidArgument { .. }
    ));

    let Response::Bucket(record) = harness.ok(Command::PutBucketEcScheme {
        bucket: "logs".to_owned(),
        ec_scheme: "rs-simd:8+4".to_owned(),
    }) else {
        panic!("a bucket")
    };
    assert_eq!(record.ec_scheme, "rs-simd:8+4");
    assert_eq!(record.record_version, 5);
    assert!(matches!(
        harness.err(Command::PutBucketEcScheme {
            bucket: "logs".to_owned(),
            ec_scheme: "nonsense".to_owned(),
        }),
        MetaError::InvalidEcScheme { .. }
    ));
    assert_eq!(
        harness.err(versioning_of("nope")),
        MetaError::NoSuchBucket {
            bucket: "nope".to_owned()
        }
    );
}

fn versioning_of(bucket: &str) -> Command {
    Command::PutBucketVersioning {
        bucket: bucket.to_owned(),
        versioning: VersioningState::Enabled,
    }
}

#[test]
fn access_keys_create_get_revoke() {
    let mut harness = bucket_service();
    let create = Command::CreateAccessKey(CreateAccessKey {
        access_key_id: "AKIAEXAMPLE".to_owned(),
        secret_access_key: "wJalrXUtnFEMI".to_owned(),
        owner: OWNER.to_owned(),
        now_ms: 100,
    });
    let expected = AccessKeyRecord {
        access_key_id: "AKIAEXAMPLE".to_owned(),
        secret_access_key: "wJalrXUtnFEMI".to_owned(),
        owner: OWNER.to_owned(),
        created_at_ms: 100,
        status: AccessKeyStatus::Active,
        revoked_at_ms: None,
        record_version: 1,
    };
    assert_eq!(
        harness.ok(create.clone()),
        Response::AccessKey(expected.clone())
    );
    assert!(!format!("{expected:?}").contains("wJalrXUtnFEMI"));
    assert_eq!(
        harness.err(create),
        MetaError::AccessKeyAlreadyExists {
            access_key_id: "AKIAEXAMPLE".to_owned()
        }
    );
    let get = Query::GetAccessKey {
        access_key_id: "AKIAEXAMPLE".to_owned(),
    };
    assert_eq!(
        harness.query(get.clone()),
        Ok(Response::AccessKey(expected.clone()))
    );
    let revoke = |now_ms| Command::RevokeAccessKey {
        access_key_id: "AKIAEXAMPLE".to_owned(),
        now_ms,
    };
    let revoked = AccessKeyRecord {
        status: AccessKeyStatus::Revoked,
        revoked_at_ms: Some(200),
        record_version: 2,
        ..expected
    };
    assert_eq!(
        harness.ok(revoke(200)),
        Response::AccessKey(revoked.clone())
    );
    // A second revocation is a retry: the first time stays.
    assert_eq!(
        harness.ok(revoke(300)),
        Response::AccessKey(revoked.clone())
    );
    assert_eq!(harness.query(get), Ok(Response::AccessKey(revoked.clone())));
    let other = CreateAccessKey {
        access_key_id: "AKIAOTHER".to_owned(),
        secret_access_key: "other-secret".to_owned(),
        owner: "bob".to_owned(),
        now_ms: 400,
    };
    let Response::AccessKey(other_record) = harness.ok(Command::CreateAccessKey(other)) else {
        panic!("CreateAccessKey answers the record");
    };
    assert_eq!(
        harness.query(Query::ListAccessKeys { owner: None }),
        Ok(Response::AccessKeys(vec![
            revoked.clone(),
            other_record.clone()
        ]))
    );
    assert_eq!(
        harness.query(Query::ListAccessKeys {
            owner: Some("bob".to_owned())
        }),
        Ok(Response::AccessKeys(vec![other_record]))
    );
    assert_eq!(
        harness.query(Query::ListAccessKeys {
            owner: Some("nobody".to_owned())
        }),
        Ok(Response::AccessKeys(Vec::new()))
    );
    assert_eq!(
        harness.query(Query::GetAccessKey {
            access_key_id: "missing".to_owned()
        }),
        Err(MetaError::NoSuchAccessKey {
            access_key_id: "missing".to_owned()
        })
    );
}

fn register(node: u64, now_ms: u64) -> Command {
    Command::RegisterNode(RegisterNode {
        node_id: NodeId(node),
        address: format!("10.0.0.{node}:7000"),
        availability_zone: format!("az-{}", node % 3),
        capacity_bytes: 1 << 40,
        now_ms,
    })
}

fn heartbeat(node: u64, used_bytes: u64, now_ms: u64) -> Command {
    Command::Heartbeat {
        node_id: NodeId(node),
        used_bytes,
        now_ms,
    }
}

#[test]
fn node_registry_heartbeats_and_expiry() {
    let mut harness = Harness::new(Role::NodeRegistry);
    let response = harness.ok(register(1, 1_000));
    assert_eq!(
        response,
        Response::Node(NodeRecord {
            node_id: NodeId(1),
            address: "10.0.0.1:7000".to_owned(),
            availability_zone: "az-1".to_owned(),
            capacity_bytes: 1 << 40,
            used_bytes: 0,
            status: NodeStatus::Up,
            registered_at_ms: 1_000,
            last_heartbeat_ms: 1_000,
            record_version: 1,
        })
    );
    harness.ok(register(2, 1_000));
    harness.ok(register(3, 1_000));

    // Node 2 keeps beating; 1 and 3 go quiet.
    let Response::Heartbeat { node, came_up } = harness.ok(heartbeat(2, 4096, 9_000)) else {
        panic!("a heartbeat")
    };
    assert!(!came_up);
    assert_eq!(node.used_bytes, 4096);
    assert_eq!(node.last_heartbeat_ms, 9_000);

    let expire = |now_ms| Command::ExpireNodes {
        now_ms,
        timeout_ms: 5_000,
    };
    // Exactly at the timeout a node is still UP (strictly older expires).
    assert_eq!(harness.ok(expire(6_000)), Response::NodesExpired(vec![]));
    assert_eq!(
        harness.last_changes.puts.len(),
        0,
        "nothing expired, nothing written"
    );
    assert_eq!(
        harness.ok(expire(6_001)),
        Response::NodesExpired(vec![NodeId(1), NodeId(3)])
    );
    // Only the expired nodes' records are written again.
    assert_eq!(harness.last_changes.puts.len(), 2);
    // Already DOWN nodes are not reported again.
    assert_eq!(harness.ok(expire(7_000)), Response::NodesExpired(vec![]));
    let Ok(Response::Nodes(nodes)) = harness.query(Query::ListNodes) else {
        panic!("nodes")
    };
    let statuses: Vec<(u64, NodeStatus)> = nodes
        .iter()
        .map(|node| (node.node_id.0, node.status))
        .collect();
    assert_eq!(
        statuses,
        vec![
            (1, NodeStatus::Down),
            (2, NodeStatus::Up),
            (3, NodeStatus::Down)
        ]
    );

    // A heartbeat brings a node back; a delayed one does not move its clock backwards.
    let Response::Heartbeat { node, came_up } = harness.ok(heartbeat(1, 10, 8_000)) else {
        panic!("a heartbeat")
    };
    assert!(came_up);
    assert_eq!(node.status, NodeStatus::Up);
    let Response::Heartbeat { node, came_up } = harness.ok(heartbeat(1, 11, 7_500)) else {
        panic!("a heartbeat")
    };
    assert!(!came_up);
    assert_eq!(node.last_heartbeat_ms, 8_000);
    assert_eq!(node.used_bytes, 11);

    // Re-registration updates the address and keeps the registration time.
    let mut command = register(3, 10_000);
    let Command::RegisterNode(inner) = &mut command else {
        unreachable!()
    };
    inner.address = "10.0.9.9:7000".to_owned();
    let Response::Node(node) = harness.ok(command) else {
        panic!("a node")
    };
    assert_eq!(node.address, "10.0.9.9:7000");
    assert_eq!(node.status, NodeStatus::Up);
    assert_eq!(node.registered_at_ms, 1_000);

    assert_eq!(
        harness.err(heartbeat(42, 0, 1)),
        MetaError::NoSuchNode {
            node_id: NodeId(42)
        }
    );
    assert_eq!(
        harness.query(Query::GetNode {
            node_id: NodeId(42)
        }),
        Err(MetaError::NoSuchNode {
            node_id: NodeId(42)
        })
    );
}

/// The node registry and the bucket service are separate groups: each refuses the other's
/// commands and queries, so a misrouted command fails loudly instead of landing in a log that
/// nobody reads it from.
#[test]
fn node_registry_and_bucket_service_refuse_each_others_commands() {
    let mut registry = Harness::new(Role::NodeRegistry);
    assert_eq!(
        registry.err(create_bucket(BUCKET, OWNER)),
        MetaError::WrongRole {
            command: "CreateBucket".to_owned(),
            role: Role::NodeRegistry,
        }
    );
    assert!(matches!(
        registry.query(Query::ListBuckets { owner: None }),
        Err(MetaError::WrongRole { .. })
    ));
    let mut service = bucket_service();
    assert_eq!(
        service.err(register(1, 1_000)),
        MetaError::WrongRole {
            command: "RegisterNode".to_owned(),
            role: Role::BucketService,
        }
    );
    assert!(matches!(
        service.query(Query::ListNodes),
        Err(MetaError::WrongRole { .. })
    ));
    // Combined (cairn dev, tests) still holds both.
    let mut combined = Harness::new(Role::Combined);
    combined.ok(register(1, 1_000));
    combined.ok(create_bucket(BUCKET, OWNER));
}

#[test]
fn partitioned_delete_bucket_protocol_with_seals() {
    let mut first = Harness::new(Role::ObjectPartition {
        partition_index: 0,
        partition_count: 2,
    });
    let mut second = Harness::new(Role::ObjectPartition {
        partition_index: 1,
        partition_count: 2,
    });
    let mut service = bucket_service();
    service.ok(create_bucket(BUCKET, OWNER));
    let record = first.put("a", 1, VersioningState::Unversioned);
    let seal = || Command::SealBucket {
        bucket: BUCKET.to_owned(),
    };
    let unseal = || Command::UnsealBucket {
        bucket: BUCKET.to_owned(),
    };
    let no_such_bucket = MetaError::NoSuchBucket {
        bucket: BUCKET.to_owned(),
    };

    // Step 1: seal every partition; the first still holds a version.
    assert_eq!(
        first.ok(seal()),
        Response::BucketUsage {
            has_versions: true,
            has_uploads: false
        }
    );
    assert_eq!(
        second.ok(seal()),
        Response::BucketUsage {
            has_versions: false,
            has_uploads: false
        }
    );
    // Sealed partitions refuse new versions, markers and uploads, and still serve reads.
    assert_eq!(
        second.err(prepare(BUCKET, "b", "t", 1, VersioningState::Unversioned)),
        no_such_bucket
    );
    assert_eq!(
        second.err(delete(
            "b",
            VersionSelector::Current,
            VersioningState::Enabled
        )),
        no_such_bucket
    );
    assert_eq!(
        first.err(Command::CreateMultipartUpload(CreateMultipartUpload {
            bucket: BUCKET.to_owned(),
            key: "m".to_owned(),
            owner: OWNER.to_owned(),
            content_type: String::new(),
            user_metadata: Default::default(),
            storage_class: StorageClass::Standard,
            acl: Acl::default(),
            ec_scheme: SCHEME.to_owned(),
            piece_size_bytes: 1,
            now_ms: 1,
            attributes: Default::default(),
        })),
        no_such_bucket
    );
    assert_eq!(first.get("a", VersionSelector::Current), Ok(record.clone()));
    // A neighbouring bucket is unaffected.
    second.ok(prepare(
        "photos2",
        "b",
        "t",
        1,
        VersioningState::Unversioned,
    ));

    // Step 2: not empty, so unseal everywhere (seals are idempotent) and writes work again.
    first.ok(unseal());
    second.ok(unseal());
    second.ok(unseal());
    second.ok(prepare(BUCKET, "b", "t", 1, VersioningState::Unversioned));
    second.ok(Command::AbortWrite(AbortWrite {
        bucket: BUCKET.to_owned(),
        key: "b".to_owned(),
        version_id: VersionId(second.next_log_index - 1),
        now_ms: 1,
    }));

    // Empty the bucket (removing versions is allowed while sealed) and retry: both seals report
    // empty, so the bucket service deletes it.
    first.ok(seal());
    first.ok(delete(
        "a",
        VersionSelector::Id(record.version_id),
        VersioningState::Unversioned,
    ));
    assert_eq!(
        first.ok(seal()),
        Response::BucketUsage {
            has_versions: false,
            has_uploads: false
        }
    );
    assert_eq!(
        second.ok(seal()),
        Response::BucketUsage {
            has_versions: false,
            has_uploads: false
        }
    );
    assert!(matches!(
        service.ok(Command::DeleteBucket {
            bucket: BUCKET.to_owned()
        }),
        Response::BucketDeleted(_)
    ));
    // A gateway with a stale bucket cache cannot put objects into the deleted bucket.
    assert_eq!(
        first.err(prepare(
            BUCKET,
            "late",
            "t",
            1,
            VersioningState::Unversioned
        )),
        no_such_bucket
    );
    // Creating the bucket again unseals it.
    service.ok(create_bucket(BUCKET, OWNER));
    first.ok(unseal());
    first.ok(prepare(BUCKET, "new", "t", 1, VersioningState::Unversioned));
}

#[test]
fn resealing_an_access_key_replaces_its_secret_at_the_record_version_read() {
    let mut harness = bucket_service();
    let Response::AccessKey(created) = harness.ok(Command::CreateAccessKey(CreateAccessKey {
        access_key_id: "AKIARESEAL".to_owned(),
        secret_access_key: "sealed:v1:old".to_owned(),
        owner: OWNER.to_owned(),
        now_ms: 100,
    })) else {
        panic!("answers the key")
    };
    let reseal = |record_version: u64, secret: &str| {
        Command::ResealAccessKey(ResealAccessKey {
            access_key_id: "AKIARESEAL".to_owned(),
            record_version,
            secret_access_key: secret.to_owned(),
        })
    };
    assert!(!format!("{:?}", reseal(1, "sealed:v1:new")).contains("sealed:v1:new"));
    let Response::AccessKey(resealed) = harness.ok(reseal(created.record_version, "sealed:v1:new"))
    else {
        panic!("answers the key")
    };
    assert_eq!(resealed.secret_access_key, "sealed:v1:new");
    assert_eq!(resealed.record_version, created.record_version + 1);
    assert_eq!(resealed.owner, created.owner);
    assert_eq!(resealed.status, AccessKeyStatus::Active);
    assert_eq!(
        harness.err(reseal(created.record_version, "sealed:v1:other")),
        MetaError::RecordVersionMismatch {
            expected: created.record_version,
            actual: resealed.record_version,
        }
    );
    assert!(matches!(
        harness.err(reseal(resealed.record_version, "")),
        MetaError::InvalidArgument { .. }
    ));
    assert!(matches!(
        harness.err(Command::ResealAccessKey(ResealAccessKey {
            access_key_id: "AKIAMISSING".to_owned(),
            record_version: 1,
            secret_access_key: "x".to_owned(),
        })),
        MetaError::NoSuchAccessKey { .. }
    ));
}
