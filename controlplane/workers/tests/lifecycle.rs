//! The lifecycle worker against the real metadata state machines (the simulator's `SimMeta`,
//! no faults): expiration by prefix and tag, object lock (retention, legal hold) making it skip
//! a version whatever the rules say, rules changed later applying to existing objects, and
//! incomplete multipart uploads aborted after DaysAfterInitiation.

mod sim;

use std::time::Duration;

use cairn_meta_state::object_lock::{Retention, RetentionMode, encode_legal_hold};
use cairn_meta_state::{
    Command, CreateMultipartUpload, MetaError, Query, Response, StorageClass, VersionSelector,
};
use cairn_s3_proto::lifecycle::{
    Expiration, LifecycleFilter, LifecycleRule, encode_stored_configuration,
};
use cairn_s3_proto::tagging::{Tag, encode_stored_tags};
use cairn_workers::MetaAccess;
use cairn_workers::lifecycle::{LifecycleConfig, LifecycleWorker};
use sim::{BUCKET, Faults, SCHEME, SimMeta, World};

const DAY_MS: u64 = 1_000;

fn rule(filter: LifecycleFilter) -> LifecycleRule {
    LifecycleRule {
        id: None,
        enabled: true,
        filter,
        expiration: None,
        noncurrent_version_expiration: None,
        abort_incomplete_upload_days: None,
    }
}

fn set_rules(world: &mut World, rules: &[LifecycleRule]) {
    let output = world
        .meta
        .write(Command::PutBucketAttribute {
            bucket: BUCKET.to_owned(),
            name: "lifecycle".to_owned(),
            value: Some(encode_stored_configuration(rules)),
        })
        .unwrap();
    assert!(output.result.is_ok(), "{:?}", output.result);
}

fn set_attribute(world: &mut World, key: &str, name: &str, value: Vec<u8>) {
    let output = world
        .meta
        .write(Command::PutObjectAttribute {
            bucket: BUCKET.to_owned(),
            key: key.to_owned(),
            version: VersionSelector::Current,
            name: name.to_owned(),
            value: Some(value),
        })
        .unwrap();
    assert!(output.result.is_ok(), "{:?}", output.result);
}

fn exists(world: &mut World, key: &str) -> bool {
    let query = Query::GetObject {
        bucket: BUCKET.to_owned(),
        key: key.to_owned(),
        version: VersionSelector::Current,
    };
    match world.meta.read(query).unwrap() {
        Ok(Response::Object(_)) => true,
        Err(MetaError::NoSuchKey { .. }) => false,
        other => panic!("GetObject {key}: {other:?}"),
    }
}

fn worker(world: &World) -> LifecycleWorker<SimMeta> {
    LifecycleWorker::new(
        SimMeta(world.shared.clone()),
        LifecycleConfig {
            day_length: Duration::from_millis(DAY_MS),
            pass_interval: Duration::from_secs(1),
            page_limit: 2,
        },
    )
}

#[test]
fn expiration_honours_filters_and_object_lock() {
    let mut world = World::new(1, Faults::none());
    for key in [
        "logs/a", "logs/b", "logs/c", "logs/d", "keep/e", "tag/f", "tag/g",
    ] {
        assert!(matches!(
            world.put(key, b"data", 0, false),
            sim::PutOutcome::Acknowledged
        ));
    }
    let now = world.now_ms();
    let retention = Retention {
        mode: RetentionMode::Compliance,
        retain_until_ms: now + 1_000 * DAY_MS,
    };
    set_attribute(&mut world, "logs/b", "retention", retention.encode());
    set_attribute(&mut world, "logs/c", "legal-hold", encode_legal_hold(true));
    set_attribute(
        &mut world,
        "tag/f",
        "tagging",
        encode_stored_tags(&[Tag::new("class", "temp")]),
    );
    set_rules(
        &mut world,
        &[
            LifecycleRule {
                expiration: Some(Expiration::Days(2)),
                ..rule(LifecycleFilter::Prefix("logs/".into()))
            },
            LifecycleRule {
                expiration: Some(Expiration::Days(2)),
                ..rule(LifecycleFilter::Tag(Tag::new("class", "temp")))
            },
        ],
    );
    let mut worker = worker(&world);
    // One day in: nothing is due.
    let report = worker.run_pass(now + DAY_MS).unwrap();
    assert_eq!(report.objects_expired, 0);
    assert_eq!(report.objects_examined, 7);
    let report = worker.run_pass(now + 2 * DAY_MS).unwrap();
    assert_eq!(report.objects_expired, 3, "{report:?}");
    assert_eq!(report.locked_versions_skipped, 2, "{report:?}");
    for (key, kept) in [
        ("logs/a", false),
        ("logs/b", true),
        ("logs/c", true),
        ("logs/d", false),
        ("keep/e", true),
        ("tag/f", false),
        ("tag/g", true),
    ] {
        assert_eq!(exists(&mut world, key), kept, "{key}");
    }
    // A rule added later applies to the objects that already exist.
    set_rules(
        &mut world,
        &[LifecycleRule {
            expiration: Some(Expiration::Days(1)),
            ..rule(LifecycleFilter::Prefix("keep/".into()))
        }],
    );
    let report = worker.run_pass(now + 3 * DAY_MS).unwrap();
    assert_eq!(report.objects_expired, 1, "{report:?}");
    assert!(!exists(&mut world, "keep/e"));
    assert!(exists(&mut world, "logs/b"), "locked versions stay");
    let metrics = worker.stats().render_metrics();
    assert!(
        metrics.contains("cairn_lifecycle_objects_expired_total 4"),
        "{metrics}"
    );
    assert!(
        metrics.contains("cairn_lifecycle_locked_versions_skipped_total 2"),
        "{metrics}"
    );
}

#[test]
fn incomplete_uploads_are_aborted_after_days_under_the_prefix() {
    let mut world = World::new(2, Faults::none());
    let now = world.now_ms();
    for key in ["up/a", "other/b"] {
        let output = world
            .meta
            .write(Command::CreateMultipartUpload(CreateMultipartUpload {
                bucket: BUCKET.to_owned(),
                key: key.to_owned(),
                owner: "sim".to_owned(),
                content_type: String::new(),
                user_metadata: Default::default(),
                storage_class: StorageClass::Standard,
                acl: Default::default(),
                ec_scheme: SCHEME.to_owned(),
                piece_size_bytes: 64,
                now_ms: now,
                attributes: Default::default(),
            }))
            .unwrap();
        assert!(output.result.is_ok(), "{:?}", output.result);
    }
    set_rules(
        &mut world,
        &[LifecycleRule {
            abort_incomplete_upload_days: Some(3),
            ..rule(LifecycleFilter::Prefix("up/".into()))
        }],
    );
    let mut worker = worker(&world);
    assert_eq!(
        worker.run_pass(now + 2 * DAY_MS).unwrap().uploads_aborted,
        0
    );
    assert_eq!(
        worker.run_pass(now + 3 * DAY_MS).unwrap().uploads_aborted,
        1
    );
    assert_eq!(
        worker.run_pass(now + 9 * DAY_MS).unwrap().uploads_aborted,
        0
    );
}
