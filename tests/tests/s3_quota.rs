//! Black-box tests of per-bucket quotas (issue 6, item 7) against `cairn dev`: quotas set, read
//! and cleared with `cairn admin bucket-quota` (root only), enforced on PutObject, CopyObject,
//! UploadPart and CompleteMultipartUpload through the Rust AWS SDK and boto3
//! (tests/python/s3_quota.py): a refused write answers `403 QuotaExceeded` and leaves nothing
//! behind, a delete frees room at once, noncurrent versions count, and the usage `get` prints is
//! exact after overwrites and deletes.

#[path = "sdk_client.rs"]
mod sdk_client;

use std::path::Path;

use aws_sdk_s3::Client;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use cairn_tests::{CairnDev, content, run_python_script};
use sdk_client::{client, client_with_keys, code_and_status};

const BINARY: &str = env!("CARGO_BIN_EXE_cairn");
const MIB: usize = 1024 * 1024;

/// `cairn admin bucket-quota ARGS` as root; the printed JSON (null for `clear`).
fn quota(dev: &CairnDev, args: &[&str]) -> serde_json::Value {
    let mut full = vec!["bucket-quota"];
    full.extend_from_slice(args);
    let (ok, stdout, stderr) = tokio::task::block_in_place(|| {
        dev.admin(Path::new(BINARY), &dev.access_key, &dev.secret_key, &full)
    });
    assert!(ok, "cairn admin {full:?} failed: {stderr}");
    if stdout.trim().is_empty() {
        serde_json::Value::Null
    } else {
        serde_json::from_str(stdout.trim()).expect("JSON answer")
    }
}

/// (quota-counted bytes, quota-counted objects) as `bucket-quota get` prints them.
fn usage(dev: &CairnDev, bucket: &str) -> (u64, u64) {
    let answer = quota(dev, &["get", bucket]);
    (
        answer["usage"]["quota_bytes"].as_u64().unwrap(),
        answer["usage"]["quota_objects"].as_u64().unwrap(),
    )
}

async fn put(s3: &Client, bucket: &str, key: &str, size: usize) -> Result<(), (String, u16)> {
    s3.put_object()
        .bucket(bucket)
        .key(key)
        .body(ByteStream::from(content(size as u64, size)))
        .send()
        .await
        .map(|_| ())
        .map_err(|error| code_and_status(&error))
}

/// CopyObject of `bucket/source` to `key` in the same bucket.
async fn copy(s3: &Client, bucket: &str, source: &str, key: &str) -> Result<(), (String, u16)> {
    s3.copy_object()
        .bucket(bucket)
        .key(key)
        .copy_source(format!("{bucket}/{source}"))
        .send()
        .await
        .map(|_| ())
        .map_err(|error| code_and_status(&error))
}

fn exceeded() -> Result<(), (String, u16)> {
    Err(("QuotaExceeded".to_owned(), 403))
}

async fn keys(s3: &Client, bucket: &str) -> Vec<String> {
    s3.list_objects_v2()
        .bucket(bucket)
        .send()
        .await
        .unwrap()
        .contents()
        .iter()
        .map(|object| object.key().unwrap().to_owned())
        .collect()
}

async fn delete(s3: &Client, bucket: &str, key: &str) {
    s3.delete_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quotas_limit_bytes_and_objects_and_only_root_sets_them() {
    let dir = tempfile::tempdir().unwrap();
    let dev = tokio::task::block_in_place(|| CairnDev::start(Path::new(BINARY), dir.path()));
    let s3 = client(&dev);
    let bucket = "quota-bytes";
    s3.create_bucket().bucket(bucket).send().await.unwrap();
    let answer = quota(&dev, &["get", bucket]);
    assert_eq!(answer["quota"], serde_json::Value::Null, "{answer}");
    assert_eq!(answer["usage"]["objects"], 0);

    // Bytes: exactly full is allowed, one byte more is refused before anything is stored.
    let set = quota(&dev, &["set", bucket, "--max-bytes", "10000"]);
    assert_eq!(set["quota"]["max_bytes"], 10000, "{set}");
    assert_eq!(set["quota"]["max_objects"], serde_json::Value::Null);
    assert_eq!(put(&s3, bucket, "a", 6000).await, Ok(()));
    assert_eq!(put(&s3, bucket, "b", 4000).await, Ok(()));
    assert_eq!(put(&s3, bucket, "c", 1).await, exceeded());
    assert_eq!(keys(&s3, bucket).await, ["a", "b"]);
    let head = s3.head_object().bucket(bucket).key("c").send().await;
    assert_eq!(code_and_status(&head.unwrap_err()).1, 404);
    let answer = quota(&dev, &["get", bucket]);
    assert_eq!(answer["quota"]["max_bytes"], 10000, "{answer}");
    assert_eq!(answer["usage"]["bytes"], 10000, "{answer}");
    assert_eq!(answer["usage"]["objects"], 2, "{answer}");
    assert_eq!(answer["usage"]["writes_in_flight"], 0, "{answer}");
    // CopyObject is refused the same way.
    assert_eq!(copy(&s3, bucket, "b", "copy-of-b").await, exceeded());
    // A delete frees room for the very next write (the refusal path reads fresh usage).
    delete(&s3, bucket, "b").await;
    assert_eq!(put(&s3, bucket, "c", 4000).await, Ok(()));
    assert_eq!(usage(&dev, bucket), (10000, 2));

    // Usage is exact after an overwrite (the old version's bytes go) and a delete.
    quota(&dev, &["set", bucket, "--max-bytes", "1Mi"]);
    assert_eq!(put(&s3, bucket, "a", 1000).await, Ok(()));
    assert_eq!(usage(&dev, bucket), (5000, 2));
    delete(&s3, bucket, "c").await;
    assert_eq!(usage(&dev, bucket), (1000, 1));

    // Objects: `set` replaces the quota (no byte limit now).
    let set = quota(&dev, &["set", bucket, "--max-objects", "3"]);
    assert_eq!(set["quota"]["max_bytes"], serde_json::Value::Null, "{set}");
    assert_eq!(put(&s3, bucket, "d", 10).await, Ok(()));
    assert_eq!(put(&s3, bucket, "e", 10).await, Ok(()));
    assert_eq!(put(&s3, bucket, "f", 0).await, exceeded());
    assert_eq!(copy(&s3, bucket, "d", "copy-of-d").await, exceeded());
    delete(&s3, bucket, "d").await;
    assert_eq!(put(&s3, bucket, "f", 0).await, Ok(()));
    assert_eq!(keys(&s3, bucket).await, ["a", "e", "f"]);

    // Cleared: writes go through again.
    assert_eq!(quota(&dev, &["clear", bucket]), serde_json::Value::Null);
    assert_eq!(
        quota(&dev, &["get", bucket])["quota"],
        serde_json::Value::Null
    );
    for key in ["g", "h", "i"] {
        assert_eq!(put(&s3, bucket, key, 20_000).await, Ok(()));
    }
    assert_eq!(usage(&dev, bucket), (1000 + 10 + 60_000, 6));

    // Only root manages quotas; a user's bucket is limited by the quota root sets on it.
    let (ok, stdout, stderr) = tokio::task::block_in_place(|| {
        dev.admin(
            Path::new(BINARY),
            &dev.access_key,
            &dev.secret_key,
            &["create-key", "--user", "alice"],
        )
    });
    assert!(ok, "{stderr}");
    let created: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    let alice_key = created["access_key_id"].as_str().unwrap().to_owned();
    let alice_secret = created["secret_access_key"].as_str().unwrap().to_owned();
    let alice = client_with_keys(&dev, &alice_key, &alice_secret);
    alice
        .create_bucket()
        .bucket("alice-b")
        .send()
        .await
        .unwrap();
    for args in [
        &["bucket-quota", "set", "alice-b", "--max-objects", "100"][..],
        &["bucket-quota", "clear", "alice-b"],
        &["bucket-quota", "get", "alice-b"],
    ] {
        let (ok, _, stderr) = tokio::task::block_in_place(|| {
            dev.admin(Path::new(BINARY), &alice_key, &alice_secret, args)
        });
        assert!(
            !ok && stderr.contains("403") && stderr.contains("AccessDenied"),
            "{args:?}: {stderr}"
        );
    }
    quota(&dev, &["set", "alice-b", "--max-objects", "1"]);
    assert_eq!(put(&alice, "alice-b", "one", 5).await, Ok(()));
    assert_eq!(put(&alice, "alice-b", "two", 5).await, exceeded());
    // Bad arguments: no limit, an unknown bucket.
    let (ok, _, stderr) = tokio::task::block_in_place(|| {
        dev.admin(
            Path::new(BINARY),
            &dev.access_key,
            &dev.secret_key,
            &["bucket-quota", "set", "alice-b"],
        )
    });
    assert!(!ok && stderr.contains("--max-bytes"), "{stderr}");
    let (ok, _, stderr) = tokio::task::block_in_place(|| {
        dev.admin(
            Path::new(BINARY),
            &dev.access_key,
            &dev.secret_key,
            &["bucket-quota", "set", "no-such-bucket", "--max-bytes", "1"],
        )
    });
    assert!(!ok && stderr.contains("NoSuchBucket"), "{stderr}");

    // The refusals are counted per bucket.
    let refusals = tokio::task::block_in_place(|| {
        dev.metric("cairn_gateway_bucket_quota_refusals_total{bucket=\"quota-bytes\"}")
    });
    assert_eq!(refusals, 4.0);

    // A cleared quota admits again and leaves the metrics.
    let limit_series = "cairn_gateway_bucket_quota_max_objects{bucket=\"alice-b\"}";
    assert_eq!(
        tokio::task::block_in_place(|| dev.metric(limit_series)),
        1.0
    );
    quota(&dev, &["clear", "alice-b"]);
    assert_eq!(put(&alice, "alice-b", "two", 5).await, Ok(()));
    let (status, text) =
        tokio::task::block_in_place(|| cairn_tests::http_get(dev.admin, "/metrics"));
    assert_eq!(status, 200);
    let text = String::from_utf8(text).unwrap();
    assert!(!text.contains(limit_series), "{text}");
    assert!(
        !text.contains("cairn_gateway_bucket_quota_used_objects{bucket=\"alice-b\"}"),
        "{text}"
    );
    assert!(
        text.contains("cairn_gateway_bucket_quota_refusals_total{bucket=\"alice-b\"} 1"),
        "{text}"
    );
    tokio::task::block_in_place(|| dev.assert_no_errors_logged());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multipart_and_versions_count_toward_quotas() {
    let dir = tempfile::tempdir().unwrap();
    let dev = tokio::task::block_in_place(|| CairnDev::start(Path::new(BINARY), dir.path()));
    let s3 = client(&dev);

    // Multipart: parts count when stored, so an upload that cannot fit is refused at the part
    // that would exceed the quota, before its data is written. (The refused part is small: a
    // client that does not wait for `100 Continue` may see the connection closed under a large
    // body it is still sending; boto3 waits, see the script.)
    let bucket = "quota-mpu";
    s3.create_bucket().bucket(bucket).send().await.unwrap();
    let limit = (10 * MIB + 500).to_string();
    quota(&dev, &["set", bucket, "--max-bytes", limit.as_str()]);
    let upload_id = s3
        .create_multipart_upload()
        .bucket(bucket)
        .key("big")
        .send()
        .await
        .unwrap()
        .upload_id()
        .unwrap()
        .to_owned();
    let upload_part = |part_number: i32, size: usize| {
        s3.upload_part()
            .bucket(bucket)
            .key("big")
            .upload_id(&upload_id)
            .part_number(part_number)
            .body(ByteStream::from(content(part_number as u64, size)))
            .send()
    };
    let mut completed = Vec::new();
    for part_number in [1, 2] {
        let uploaded = upload_part(part_number, 5 * MIB).await.unwrap();
        completed.push(
            CompletedPart::builder()
                .part_number(part_number)
                .e_tag(uploaded.e_tag().unwrap())
                .build(),
        );
    }
    let refused = upload_part(3, 1000).await.unwrap_err();
    assert_eq!(code_and_status(&refused), ("QuotaExceeded".to_owned(), 403));
    let answer = quota(&dev, &["get", bucket]);
    assert_eq!(answer["usage"]["parts"], 2, "{answer}");
    assert_eq!(answer["usage"]["part_bytes"], 10 * MIB, "{answer}");
    assert_eq!(answer["usage"]["uploads"], 1, "{answer}");
    s3.complete_multipart_upload()
        .bucket(bucket)
        .key("big")
        .upload_id(&upload_id)
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .set_parts(Some(completed))
                .build(),
        )
        .send()
        .await
        .unwrap();
    let answer = quota(&dev, &["get", bucket]);
    assert_eq!(answer["usage"]["objects"], 1, "{answer}");
    assert_eq!(answer["usage"]["bytes"], 10 * MIB, "{answer}");
    assert_eq!(answer["usage"]["part_bytes"], 0, "{answer}");

    // A completion adds an object: refused when the object limit is reached, and nothing
    // changes (the upload stays, abortable).
    quota(
        &dev,
        &["set", bucket, "--max-bytes", "100MiB", "--max-objects", "1"],
    );
    let second = s3
        .create_multipart_upload()
        .bucket(bucket)
        .key("small")
        .send()
        .await
        .unwrap()
        .upload_id()
        .unwrap()
        .to_owned();
    let part = s3
        .upload_part()
        .bucket(bucket)
        .key("small")
        .upload_id(&second)
        .part_number(1)
        .body(ByteStream::from(content(9, 1024)))
        .send()
        .await
        .unwrap();
    let completion = s3
        .complete_multipart_upload()
        .bucket(bucket)
        .key("small")
        .upload_id(&second)
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .parts(
                    CompletedPart::builder()
                        .part_number(1)
                        .e_tag(part.e_tag().unwrap())
                        .build(),
                )
                .build(),
        )
        .send()
        .await;
    assert_eq!(
        completion
            .map(|_| ())
            .map_err(|error| code_and_status(&error)),
        exceeded()
    );
    let uploads = s3
        .list_multipart_uploads()
        .bucket(bucket)
        .send()
        .await
        .unwrap();
    assert_eq!(uploads.uploads().len(), 1);
    s3.abort_multipart_upload()
        .bucket(bucket)
        .key("small")
        .upload_id(&second)
        .send()
        .await
        .unwrap();
    assert_eq!(usage(&dev, bucket), (10 * MIB as u64, 1));
    assert_eq!(keys(&s3, bucket).await, ["big"]);

    // Versioning: noncurrent versions count, delete markers do not, deleting a version frees it.
    let bucket = "quota-versions";
    sdk_client::create_versioned_bucket(&s3, bucket).await;
    quota(&dev, &["set", bucket, "--max-bytes", "3000"]);
    assert_eq!(put(&s3, bucket, "k", 1000).await, Ok(()));
    assert_eq!(put(&s3, bucket, "k", 1000).await, Ok(()));
    delete(&s3, bucket, "k").await;
    let answer = quota(&dev, &["get", bucket]);
    assert_eq!(answer["usage"]["bytes"], 2000, "{answer}");
    assert_eq!(answer["usage"]["objects"], 2, "{answer}");
    assert_eq!(answer["usage"]["delete_markers"], 1, "{answer}");
    assert_eq!(put(&s3, bucket, "k", 1000).await, Ok(()));
    assert_eq!(put(&s3, bucket, "other", 1).await, exceeded());
    let versions = s3
        .list_object_versions()
        .bucket(bucket)
        .send()
        .await
        .unwrap();
    // Newest first: the last noncurrent version is the oldest.
    let oldest = versions
        .versions()
        .iter()
        .rev()
        .find(|version| !version.is_latest().unwrap_or(false))
        .and_then(|version| version.version_id())
        .unwrap()
        .to_owned();
    s3.delete_object()
        .bucket(bucket)
        .key("k")
        .version_id(oldest)
        .send()
        .await
        .unwrap();
    assert_eq!(put(&s3, bucket, "other", 1000).await, Ok(()));
    assert_eq!(usage(&dev, bucket), (3000, 3));

    // boto3: the same refusals as seen by another client (the script checks the XML error).
    s3.create_bucket()
        .bucket("quota-boto")
        .send()
        .await
        .unwrap();
    quota(
        &dev,
        &[
            "set",
            "quota-boto",
            "--max-bytes",
            "5000",
            "--max-objects",
            "2",
        ],
    );
    tokio::task::block_in_place(|| {
        run_python_script(
            "s3_quota.py",
            &[
                dev.url(),
                dev.access_key.clone(),
                dev.secret_key.clone(),
                "quota-boto".to_owned(),
            ],
        )
    });
    assert_eq!(usage(&dev, "quota-boto"), (4000, 2));
    tokio::task::block_in_place(|| dev.assert_no_errors_logged());
}
