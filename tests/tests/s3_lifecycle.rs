//! Black-box tests of bucket lifecycle (issue 6) against `cairn dev` with short lifecycle days
//! (`--lifecycle-day-seconds 2 --lifecycle-interval-secs 1`): the configuration API with AWS's
//! errors and the lifecycle worker applying the rules, through boto3
//! (tests/python/s3_lifecycle.py) and the Rust AWS SDK, and the worker's progress on its
//! `/metrics`. Object lock making the worker skip a locked version is tested against the real
//! state machines in controlplane/workers/tests/lifecycle.rs (the S3 surface for retention is
//! not on this branch).

#[path = "sdk_client.rs"]
mod sdk_client;

use std::path::Path;
use std::time::{Duration, Instant};

use aws_sdk_s3::Client;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    BucketLifecycleConfiguration, ExpirationStatus, LifecycleExpiration, LifecycleRule,
    LifecycleRuleAndOperator, LifecycleRuleFilter, Tag, Tagging,
};
use cairn_tests::{CairnDev, free_address, http_request};

use sdk_client::{client, code_and_status};

const BINARY: &str = env!("CARGO_BIN_EXE_cairn");

fn start_dev(dir: &Path) -> (CairnDev, std::net::SocketAddr) {
    let worker_admin = free_address();
    let worker_admin_text = worker_admin.to_string();
    let dev = CairnDev::start_with(
        Path::new(BINARY),
        dir,
        &[
            "--lifecycle-day-seconds",
            "2",
            "--lifecycle-interval-secs",
            "1",
            "--worker-admin-listen",
            &worker_admin_text,
        ],
    );
    (dev, worker_admin)
}

fn rule(id: &str, filter: LifecycleRuleFilter, days: i32) -> LifecycleRule {
    LifecycleRule::builder()
        .id(id)
        .filter(filter)
        .status(ExpirationStatus::Enabled)
        .expiration(LifecycleExpiration::builder().days(days).build())
        .build()
        .unwrap()
}

async fn put_rules(
    s3: &Client,
    bucket: &str,
    rules: Vec<LifecycleRule>,
) -> Result<(), (String, u16)> {
    s3.put_bucket_lifecycle_configuration()
        .bucket(bucket)
        .lifecycle_configuration(
            BucketLifecycleConfiguration::builder()
                .set_rules(Some(rules))
                .build()
                .unwrap(),
        )
        .send()
        .await
        .map(|_| ())
        .map_err(|error| code_and_status(&error))
}

async fn exists(s3: &Client, bucket: &str, key: &str) -> bool {
    match s3.head_object().bucket(bucket).key(key).send().await {
        Ok(_) => true,
        Err(error) => {
            assert_eq!(code_and_status(&error).1, 404, "{error:?}");
            false
        }
    }
}

async fn sdk_lifecycle(s3: &Client) {
    let bucket = "sdk-lifecycle";
    s3.create_bucket().bucket(bucket).send().await.unwrap();
    let missing = s3
        .get_bucket_lifecycle_configuration()
        .bucket(bucket)
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        code_and_status(&missing),
        ("NoSuchLifecycleConfiguration".to_owned(), 404)
    );
    // Errors: a zero day count, duplicate ids.
    let zero = rule("zero", LifecycleRuleFilter::builder().prefix("").build(), 0);
    assert_eq!(
        put_rules(s3, bucket, vec![zero]).await,
        Err(("InvalidArgument".to_owned(), 400))
    );
    let twice = rule(
        "same",
        LifecycleRuleFilter::builder().prefix("a").build(),
        1,
    );
    assert_eq!(
        put_rules(s3, bucket, vec![twice.clone(), twice]).await,
        Err(("InvalidArgument".to_owned(), 400))
    );

    for key in ["tmp/a", "tmp/b", "data/c"] {
        s3.put_object()
            .bucket(bucket)
            .key(key)
            .body(ByteStream::from_static(b"bytes"))
            .send()
            .await
            .unwrap();
    }
    s3.put_object_tagging()
        .bucket(bucket)
        .key("tmp/a")
        .tagging(
            Tagging::builder()
                .tag_set(Tag::builder().key("expire").value("yes").build().unwrap())
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let tagged = LifecycleRuleFilter::builder()
        .and(
            LifecycleRuleAndOperator::builder()
                .prefix("tmp/")
                .tags(Tag::builder().key("expire").value("yes").build().unwrap())
                .build(),
        )
        .build();
    put_rules(s3, bucket, vec![rule("tagged", tagged, 1)])
        .await
        .unwrap();
    let stored = s3
        .get_bucket_lifecycle_configuration()
        .bucket(bucket)
        .send()
        .await
        .unwrap();
    let rules = stored.rules();
    assert_eq!(rules.len(), 1);
    assert_eq!(rules[0].id(), Some("tagged"));
    assert_eq!(rules[0].expiration().and_then(|e| e.days()), Some(1));
    let and = rules[0].filter().and_then(|f| f.and()).expect("And filter");
    assert_eq!(and.prefix(), Some("tmp/"));
    assert_eq!(and.tags().len(), 1);

    let deadline = Instant::now() + Duration::from_secs(60);
    while exists(s3, bucket, "tmp/a").await {
        assert!(Instant::now() < deadline, "tmp/a never expired");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(exists(s3, bucket, "tmp/b").await, "untagged object stays");
    assert!(exists(s3, bucket, "data/c").await, "other prefix stays");

    s3.delete_bucket_lifecycle()
        .bucket(bucket)
        .send()
        .await
        .unwrap();
    let gone = s3
        .get_bucket_lifecycle_configuration()
        .bucket(bucket)
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        code_and_status(&gone),
        ("NoSuchLifecycleConfiguration".to_owned(), 404)
    );
}

/// A GET or HEAD of a delete marker's version id is 405 with the marker's `Last-Modified`.
async fn sdk_delete_marker_last_modified(s3: &Client) {
    let bucket = "sdk-marker-dates";
    sdk_client::create_versioned_bucket(s3, bucket).await;
    s3.put_object()
        .bucket(bucket)
        .key("k")
        .body(ByteStream::from_static(b"x"))
        .send()
        .await
        .unwrap();
    let deleted = s3
        .delete_object()
        .bucket(bucket)
        .key("k")
        .send()
        .await
        .unwrap();
    let marker = deleted.version_id().expect("a delete marker").to_owned();
    let error = s3
        .get_object()
        .bucket(bucket)
        .key("k")
        .version_id(&marker)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code_and_status(&error).1, 405);
    let response = error.raw_response().expect("a response");
    let last_modified = response
        .headers()
        .get("last-modified")
        .expect("Last-Modified on the 405");
    assert!(last_modified.ends_with(" GMT"), "{last_modified}");
    assert_eq!(response.headers().get("x-amz-delete-marker"), Some("true"));
}

fn metric(text: &str, name: &str) -> u64 {
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("{name} missing from:\n{text}"))
        .trim()
        .parse()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lifecycle_through_boto3_and_aws_sdk() {
    let dir = tempfile::tempdir().unwrap();
    let (dev, worker_admin) = tokio::task::block_in_place(|| start_dev(dir.path()));
    tokio::task::block_in_place(|| dev.run_boto3_script("s3_lifecycle.py"));
    sdk_lifecycle(&client(&dev)).await;
    sdk_delete_marker_last_modified(&client(&dev)).await;

    let (status, body) =
        tokio::task::block_in_place(|| http_request(worker_admin, "GET", "/metrics"));
    assert_eq!(status, 200);
    let text = String::from_utf8(body).unwrap();
    // boto3 expired logs/a, logs/b, docs/x, keep/c and the versioned k; the SDK tmp/a.
    assert!(
        metric(&text, "cairn_lifecycle_objects_expired_total") >= 6,
        "{text}"
    );
    // k's first version, and the oldest of py-lc-newer.
    assert!(
        metric(&text, "cairn_lifecycle_noncurrent_versions_expired_total") >= 2,
        "{text}"
    );
    assert!(
        metric(&text, "cairn_lifecycle_delete_markers_removed_total") >= 1,
        "{text}"
    );
    assert!(
        metric(&text, "cairn_lifecycle_uploads_aborted_total") >= 1,
        "{text}"
    );
    assert!(
        metric(&text, "cairn_lifecycle_objects_examined_total") > 0,
        "{text}"
    );
    assert!(metric(&text, "cairn_lifecycle_passes_total") > 0, "{text}");
    assert_eq!(metric(&text, "cairn_lifecycle_errors_total"), 0, "{text}");
    assert!(metric(&text, "cairn_lifecycle_last_pass_timestamp_seconds") > 1_700_000_000);
    dev.assert_no_errors_logged();
}
