//! Exact bucket usage (the `BucketStats` query, see `src/usage.rs`): what every kind of write,
//! overwrite, delete, rollback and multipart step does to the counts. The harness also checks,
//! after every command, that the maintained index equals one rebuilt from the records and that
//! it survives a snapshot round trip.

mod common;

use cairn_meta_state::*;
use common::*;

use VersioningState::{Enabled, Suspended, Unversioned};

const MIB: u64 = 1024 * 1024;

fn stats(harness: &Harness, bucket: &str) -> BucketStats {
    match harness.query(Query::BucketStats {
        bucket: bucket.to_owned(),
    }) {
        Ok(Response::BucketStats(stats)) => stats,
        other => panic!("unexpected {other:?}"),
    }
}

fn objects(count: u64, bytes: u64) -> BucketStats {
    BucketStats {
        object_count: count,
        object_bytes: bytes,
        ..Default::default()
    }
}

#[test]
fn an_empty_bucket_counts_nothing() {
    let harness = Harness::with_bucket();
    assert_eq!(stats(&harness, BUCKET), BucketStats::default());
    // A bucket this instance has never heard of answers zeros too (partitions hold no bucket
    // records), not an error.
    assert_eq!(stats(&harness, "elsewhere"), BucketStats::default());
}

#[test]
fn a_prepare_reserves_until_commit_or_rollback() {
    let mut harness = Harness::with_bucket();
    let prepared = match harness.ok(prepare(BUCKET, "a", "t1", 700, Unversioned)) {
        Response::Prepared { record, .. } => record,
        other => panic!("unexpected {other:?}"),
    };
    let reserved = BucketStats {
        preparing_count: 1,
        preparing_bytes: 700,
        ..Default::default()
    };
    assert_eq!(stats(&harness, BUCKET), reserved);
    assert_eq!((reserved.quota_bytes(), reserved.quota_objects()), (700, 1));
    // A retried prepare (same token) reserves nothing more.
    harness.ok(prepare(BUCKET, "a", "t1", 700, Unversioned));
    assert_eq!(stats(&harness, BUCKET), reserved);
    harness.ok(commit(BUCKET, "a", prepared.version_id, "t1", 700));
    assert_eq!(stats(&harness, BUCKET), objects(1, 700));
    // A retried commit changes nothing.
    harness.ok(commit(BUCKET, "a", prepared.version_id, "t1", 700));
    assert_eq!(stats(&harness, BUCKET), objects(1, 700));

    // Aborted by the gateway (or rolled back by the janitor): the reservation is released.
    let second = match harness.ok(prepare(BUCKET, "b", "t2", 50, Unversioned)) {
        Response::Prepared { record, .. } => record,
        other => panic!("unexpected {other:?}"),
    };
    assert_eq!(stats(&harness, BUCKET).quota_bytes(), 750);
    harness.ok(Command::AbortWrite(AbortWrite {
        bucket: BUCKET.to_owned(),
        key: "b".to_owned(),
        version_id: second.version_id,
        now_ms: 40_000,
    }));
    assert_eq!(stats(&harness, BUCKET), objects(1, 700));
    // A commit arriving after the rollback is refused and counts nothing.
    harness.err(commit(BUCKET, "b", second.version_id, "t2", 50));
    assert_eq!(stats(&harness, BUCKET), objects(1, 700));
}

#[test]
fn an_unversioned_overwrite_and_delete_are_exact() {
    let mut harness = Harness::with_bucket();
    harness.put("k", 1000, Unversioned);
    harness.put("other", 5, Unversioned);
    assert_eq!(stats(&harness, BUCKET), objects(2, 1005));
    // The overwrite replaces the null version: one object, the new size.
    harness.put("k", 300, Unversioned);
    assert_eq!(stats(&harness, BUCKET), objects(2, 305));
    harness.ok(delete("k", VersionSelector::Current, Unversioned));
    assert_eq!(stats(&harness, BUCKET), objects(1, 5));
    // Deleting what is not there changes nothing.
    harness.ok(delete("k", VersionSelector::Current, Unversioned));
    assert_eq!(stats(&harness, BUCKET), objects(1, 5));
    harness.ok(delete("other", VersionSelector::Current, Unversioned));
    assert_eq!(stats(&harness, BUCKET), BucketStats::default());
}

#[test]
fn versioned_buckets_count_every_version_and_markers_apart() {
    let mut harness = Harness::with_bucket();
    let first = harness.put("k", 100, Enabled);
    harness.put("k", 200, Enabled);
    assert_eq!(stats(&harness, BUCKET), objects(2, 300));
    // A delete adds a marker; the noncurrent versions still count.
    harness.ok(delete("k", VersionSelector::Current, Enabled));
    let with_marker = BucketStats {
        delete_marker_count: 1,
        ..objects(2, 300)
    };
    assert_eq!(stats(&harness, BUCKET), with_marker);
    assert_eq!(with_marker.quota_objects(), 2);
    // Deleting one version permanently frees it.
    harness.ok(delete("k", VersionSelector::Id(first.version_id), Enabled));
    assert_eq!(
        stats(&harness, BUCKET),
        BucketStats {
            delete_marker_count: 1,
            ..objects(1, 200)
        }
    );
    // Suspended: a write replaces the null version only (none yet), a delete replaces the null
    // version with a null marker.
    harness.put("k", 7, Suspended);
    assert_eq!(
        stats(&harness, BUCKET),
        BucketStats {
            delete_marker_count: 1,
            ..objects(2, 207)
        }
    );
    harness.ok(delete("k", VersionSelector::Current, Suspended));
    assert_eq!(
        stats(&harness, BUCKET),
        BucketStats {
            delete_marker_count: 2,
            ..objects(1, 200)
        }
    );
}

#[test]
fn multipart_parts_count_until_completion_moves_them() {
    let mut harness = Harness::with_bucket();
    let upload_id = create_upload(&mut harness, "movie").upload_id;
    let started = BucketStats {
        upload_count: 1,
        ..Default::default()
    };
    assert_eq!(stats(&harness, BUCKET), started);
    harness.ok(upload_part("movie", upload_id, 1, 5 * MIB));
    harness.ok(upload_part("movie", upload_id, 2, 3 * MIB));
    // Part 2 uploaded again, smaller: it counts once, with its new size.
    harness.ok(upload_part("movie", upload_id, 2, 10));
    harness.ok(upload_part("movie", upload_id, 3, 5 * MIB));
    let uploading = BucketStats {
        upload_count: 1,
        part_count: 3,
        part_bytes: 10 * MIB + 10,
        ..Default::default()
    };
    assert_eq!(stats(&harness, BUCKET), uploading);
    assert_eq!(uploading.quota_bytes(), 10 * MIB + 10);
    assert_eq!(uploading.quota_objects(), 0);
    // A refused completion (wrong part list) changes nothing.
    harness.err(complete(
        "movie",
        upload_id,
        &[(2, 10), (1, 5 * MIB)],
        Unversioned,
    ));
    assert_eq!(stats(&harness, BUCKET), uploading);
    // Completing with parts 1 and 2: part 3 is discarded, the object holds the rest.
    harness.ok(complete(
        "movie",
        upload_id,
        &[(1, 5 * MIB), (2, 10)],
        Unversioned,
    ));
    assert_eq!(stats(&harness, BUCKET), objects(1, 5 * MIB + 10));
    // A retried completion changes nothing.
    harness.ok(complete(
        "movie",
        upload_id,
        &[(1, 5 * MIB), (2, 10)],
        Unversioned,
    ));
    assert_eq!(stats(&harness, BUCKET), objects(1, 5 * MIB + 10));

    // A completion over an unversioned key replaces its null version.
    let second = create_upload(&mut harness, "movie").upload_id;
    harness.ok(upload_part("movie", second, 1, 4));
    harness.ok(complete("movie", second, &[(1, 4)], Unversioned));
    assert_eq!(stats(&harness, BUCKET), objects(1, 4));

    // An abort frees every part.
    let aborted = create_upload(&mut harness, "draft").upload_id;
    harness.ok(upload_part("draft", aborted, 1, 9));
    assert_eq!(stats(&harness, BUCKET).part_bytes, 9);
    harness.ok(Command::AbortMultipartUpload(AbortMultipartUpload {
        bucket: BUCKET.to_owned(),
        key: "draft".to_owned(),
        upload_id: aborted,
        now_ms: 9_500,
    }));
    assert_eq!(stats(&harness, BUCKET), objects(1, 4));
}

#[test]
fn buckets_are_counted_apart_and_on_partitions() {
    let mut harness = Harness::new(Role::ObjectPartition {
        partition_index: 0,
        partition_count: 1,
    });
    for (bucket, size) in [("one", 10u64), ("two", 20), ("one", 30)] {
        let token = format!("t-{bucket}-{size}");
        let key = format!("k{size}");
        let record = match harness.ok(prepare(bucket, &key, &token, size, Enabled)) {
            Response::Prepared { record, .. } => record,
            other => panic!("unexpected {other:?}"),
        };
        harness.ok(commit(bucket, &key, record.version_id, &token, size));
    }
    assert_eq!(stats(&harness, "one"), objects(2, 40));
    assert_eq!(stats(&harness, "two"), objects(1, 20));
    // The index rebuilt from a snapshot is the same (the harness also checks this each step).
    let restored =
        StateMachine::from_snapshot_bytes(&harness.state.to_snapshot_bytes()).expect("decodes");
    assert_eq!(
        restored.query(&Query::BucketStats {
            bucket: "one".to_owned()
        }),
        Ok(Response::BucketStats(objects(2, 40)))
    );
}

#[test]
fn the_query_and_its_answer_round_trip_through_the_codec() {
    let query = Command::Read(Query::BucketStats {
        bucket: "photos".to_owned(),
    });
    assert_eq!(decode_record::<Command>(&encode_record(&query)), Ok(query));
    let output = Output {
        result: Ok(Response::BucketStats(BucketStats {
            object_count: 1,
            object_bytes: 2,
            delete_marker_count: 3,
            preparing_count: 4,
            preparing_bytes: 5,
            upload_count: 6,
            part_count: 7,
            part_bytes: u64::MAX,
        })),
        new_garbage: Vec::new(),
    };
    let bytes = encode_record(&output);
    assert_eq!(decode_record::<Output>(&bytes), Ok(output));
    // The query's tag is 60 (the quota line of work's range), after the header and Read's tag.
    let query_bytes = encode_record(&Command::Read(Query::BucketStats {
        bucket: String::new(),
    }));
    assert_eq!(query_bytes[2..4], [20, 60]);
    // A partition's role accepts the query; a bucket service's does not hold objects.
    assert_eq!(
        Query::BucketStats {
            bucket: String::new()
        }
        .scope(),
        Scope::Object
    );
}
