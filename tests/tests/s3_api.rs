//! Black-box tests of the S3 API breadth (issue 6) against `cairn dev`, each behaviour checked
//! through both boto3 (tests/python/s3_<area>.py) and the Rust AWS SDK: bucket versioning, version
//! ids, delete markers, the null version and ListObjectVersions; conditional writes
//! (`If-None-Match: *`, `If-Match`) including racing writers of one key; object and bucket
//! tagging with S3's limits; CORS configurations and preflights; GetObjectAttributes,
//! `fetch-owner` and `x-amz-request-payer`.

#[path = "sdk_client.rs"]
mod sdk_client;

use std::path::Path;

use aws_sdk_s3::Client;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    BucketVersioningStatus, MfaDelete, ObjectVersion, VersioningConfiguration,
};
use cairn_tests::CairnDev;

use sdk_client::{client, code_and_status};

const BINARY: &str = env!("CARGO_BIN_EXE_cairn");

async fn body_of(s3: &Client, bucket: &str, key: &str, version_id: Option<&str>) -> Vec<u8> {
    let object = s3
        .get_object()
        .bucket(bucket)
        .key(key)
        .set_version_id(version_id.map(str::to_owned))
        .send()
        .await
        .unwrap_or_else(|error| panic!("GET {key} {version_id:?}: {error:?}"));
    object.body.collect().await.unwrap().into_bytes().to_vec()
}

fn versioning(status: BucketVersioningStatus) -> VersioningConfiguration {
    VersioningConfiguration::builder().status(status).build()
}

async fn sdk_versioning(s3: &Client) {
    let bucket = "sdk-versions";
    s3.create_bucket().bucket(bucket).send().await.unwrap();
    let status = s3
        .get_bucket_versioning()
        .bucket(bucket)
        .send()
        .await
        .unwrap();
    assert_eq!(
        status.status(),
        None,
        "never-versioned bucket has no status"
    );

    let mfa = s3
        .put_bucket_versioning()
        .bucket(bucket)
        .versioning_configuration(
            VersioningConfiguration::builder()
                .status(BucketVersioningStatus::Enabled)
                .mfa_delete(MfaDelete::Enabled)
                .build(),
        )
        .send()
        .await
        .expect_err("MFA delete needs MFA authentication");
    assert_eq!(code_and_status(&mfa), ("AccessDenied".to_owned(), 403));

    s3.put_bucket_versioning()
        .bucket(bucket)
        .versioning_configuration(versioning(BucketVersioningStatus::Enabled))
        .send()
        .await
        .unwrap();
    let status = s3
        .get_bucket_versioning()
        .bucket(bucket)
        .send()
        .await
        .unwrap();
    assert_eq!(status.status(), Some(&BucketVersioningStatus::Enabled));

    let mut ids = Vec::new();
    for body in [&b"first"[..], b"second", b"third"] {
        let put = s3
            .put_object()
            .bucket(bucket)
            .key("key")
            .body(ByteStream::from(body.to_vec()))
            .send()
            .await
            .unwrap();
        ids.push(
            put.version_id()
                .expect("PUT returns a version id")
                .to_owned(),
        );
    }
    assert_eq!(body_of(s3, bucket, "key", None).await, b"third");
    assert_eq!(body_of(s3, bucket, "key", Some(&ids[0])).await, b"first");
    let head = s3
        .head_object()
        .bucket(bucket)
        .key("key")
        .version_id(&ids[1])
        .send()
        .await
        .unwrap();
    assert_eq!(head.version_id(), Some(ids[1].as_str()));
    assert_eq!(head.content_length(), Some(6));

    let deleted = s3
        .delete_object()
        .bucket(bucket)
        .key("key")
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.delete_marker(), Some(true));
    let marker = deleted.version_id().expect("marker id").to_owned();
    let missing = s3
        .get_object()
        .bucket(bucket)
        .key("key")
        .send()
        .await
        .expect_err("current version is a delete marker");
    assert!(
        missing
            .as_service_error()
            .is_some_and(|error| error.is_no_such_key()),
        "{missing:?}"
    );
    let on_marker = s3
        .get_object()
        .bucket(bucket)
        .key("key")
        .version_id(&marker)
        .send()
        .await
        .expect_err("GET of a delete marker version");
    assert_eq!(
        code_and_status(&on_marker),
        ("MethodNotAllowed".to_owned(), 405)
    );

    let listing = s3
        .list_object_versions()
        .bucket(bucket)
        .send()
        .await
        .unwrap();
    let versions: Vec<&str> = listing
        .versions()
        .iter()
        .filter_map(ObjectVersion::version_id)
        .collect();
    assert_eq!(versions, [&ids[2], &ids[1], &ids[0]]);
    assert_eq!(
        listing
            .delete_markers()
            .iter()
            .map(|entry| (entry.version_id(), entry.is_latest()))
            .collect::<Vec<_>>(),
        [(Some(marker.as_str()), Some(true))]
    );
    // One entry per page, resumed with key-marker / version-id-marker.
    let mut paged = Vec::new();
    let (mut key_marker, mut version_marker) = (None::<String>, None::<String>);
    loop {
        let page = s3
            .list_object_versions()
            .bucket(bucket)
            .max_keys(1)
            .set_key_marker(key_marker.clone())
            .set_version_id_marker(version_marker.clone())
            .send()
            .await
            .unwrap();
        paged.extend(
            page.delete_markers()
                .iter()
                .filter_map(|m| m.version_id().map(str::to_owned)),
        );
        paged.extend(
            page.versions()
                .iter()
                .filter_map(|v| v.version_id().map(str::to_owned)),
        );
        if page.is_truncated() != Some(true) {
            break;
        }
        key_marker = page.next_key_marker().map(str::to_owned);
        version_marker = page.next_version_id_marker().map(str::to_owned);
    }
    assert_eq!(
        paged,
        [
            marker.clone(),
            ids[2].clone(),
            ids[1].clone(),
            ids[0].clone()
        ]
    );

    // Removing the marker brings the newest version back.
    let removed = s3
        .delete_object()
        .bucket(bucket)
        .key("key")
        .version_id(&marker)
        .send()
        .await
        .unwrap();
    assert_eq!(removed.delete_marker(), Some(true));
    assert_eq!(removed.version_id(), Some(marker.as_str()));
    assert_eq!(body_of(s3, bucket, "key", None).await, b"third");

    // Suspended: the null version.
    s3.put_bucket_versioning()
        .bucket(bucket)
        .versioning_configuration(versioning(BucketVersioningStatus::Suspended))
        .send()
        .await
        .unwrap();
    let put = s3
        .put_object()
        .bucket(bucket)
        .key("key")
        .body(ByteStream::from_static(b"null one"))
        .send()
        .await
        .unwrap();
    assert_eq!(put.version_id(), Some("null"));
    s3.put_object()
        .bucket(bucket)
        .key("key")
        .body(ByteStream::from_static(b"null two"))
        .send()
        .await
        .unwrap();
    assert_eq!(body_of(s3, bucket, "key", Some("null")).await, b"null two");
    let listing = s3
        .list_object_versions()
        .bucket(bucket)
        .send()
        .await
        .unwrap();
    let versions: Vec<&str> = listing
        .versions()
        .iter()
        .filter_map(ObjectVersion::version_id)
        .collect();
    assert_eq!(
        versions,
        ["null", &ids[2], &ids[1], &ids[0]],
        "the second null write replaced the first"
    );
    // Clean up every version.
    for version in ["null", &ids[0], &ids[1], &ids[2]] {
        s3.delete_object()
            .bucket(bucket)
            .key("key")
            .version_id(version)
            .send()
            .await
            .unwrap();
    }
    s3.delete_bucket().bucket(bucket).send().await.unwrap();
}

async fn sdk_conditional_writes(s3: &Client) {
    let bucket = "sdk-conditional";
    s3.create_bucket().bucket(bucket).send().await.unwrap();
    let put = |body: &'static [u8]| {
        s3.put_object()
            .bucket(bucket)
            .key("key")
            .body(ByteStream::from_static(body))
    };
    let first = put(b"first").if_none_match("*").send().await.unwrap();
    let refused = put(b"second").if_none_match("*").send().await.unwrap_err();
    assert_eq!(
        code_and_status(&refused),
        ("PreconditionFailed".to_owned(), 412)
    );
    let etag = first.e_tag().unwrap().to_owned();
    let wrong = put(b"x").if_match("\"00\"").send().await.unwrap_err();
    assert_eq!(
        code_and_status(&wrong),
        ("PreconditionFailed".to_owned(), 412)
    );
    let second = put(b"second").if_match(&etag).send().await.unwrap();
    assert_eq!(body_of(s3, bucket, "key", None).await, b"second");
    let stale = s3
        .delete_object()
        .bucket(bucket)
        .key("key")
        .if_match(&etag)
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        code_and_status(&stale),
        ("PreconditionFailed".to_owned(), 412)
    );
    s3.delete_object()
        .bucket(bucket)
        .key("key")
        .if_match(second.e_tag().unwrap())
        .send()
        .await
        .unwrap();

    // Racing writers of a new key: exactly one 200.
    let writers = (0..6u8).map(|n| {
        let s3 = s3.clone();
        tokio::spawn(async move {
            s3.put_object()
                .bucket(bucket)
                .key("race")
                .body(ByteStream::from(vec![n; 1000]))
                .if_none_match("*")
                .send()
                .await
                .map(|_| n)
                .map_err(|error| code_and_status(&error))
        })
    });
    let mut winners = Vec::new();
    for outcome in futures_join(writers).await {
        match outcome {
            Ok(n) => winners.push(n),
            Err((code, status)) => assert!(
                (code == "PreconditionFailed" && status == 412)
                    || (code == "ConditionalRequestConflict" && status == 409),
                "{code} {status}"
            ),
        }
    }
    assert_eq!(winners.len(), 1, "{winners:?}");
    assert_eq!(
        body_of(s3, bucket, "race", None).await,
        vec![winners[0]; 1000]
    );
    s3.delete_object()
        .bucket(bucket)
        .key("race")
        .send()
        .await
        .unwrap();
    s3.delete_bucket().bucket(bucket).send().await.unwrap();
}

async fn futures_join<T: Send + 'static>(
    handles: impl Iterator<Item = tokio::task::JoinHandle<T>>,
) -> Vec<T> {
    let mut outcomes = Vec::new();
    for handle in handles.collect::<Vec<_>>() {
        outcomes.push(handle.await.unwrap());
    }
    outcomes
}

async fn sdk_not_implemented(s3: &Client) {
    let bucket = "sdk-not-implemented";
    s3.create_bucket().bucket(bucket).send().await.unwrap();
    let website = s3
        .get_bucket_website()
        .bucket(bucket)
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        code_and_status(&website),
        ("NotImplemented".to_owned(), 501)
    );
    let replication = s3
        .get_bucket_replication()
        .bucket(bucket)
        .send()
        .await
        .unwrap_err();
    // Implemented (tests/tests/replication.rs): a bucket without a configuration answers 404.
    assert_eq!(
        code_and_status(&replication),
        ("ReplicationConfigurationNotFoundError".to_owned(), 404)
    );
    let logging = s3
        .get_bucket_logging()
        .bucket(bucket)
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        code_and_status(&logging),
        ("NotImplemented".to_owned(), 501)
    );
    s3.delete_bucket().bucket(bucket).send().await.unwrap();
}

fn tag(key: &str, value: &str) -> aws_sdk_s3::types::Tag {
    aws_sdk_s3::types::Tag::builder()
        .key(key)
        .value(value)
        .build()
        .unwrap()
}

fn tagging(tags: &[(&str, &str)]) -> aws_sdk_s3::types::Tagging {
    aws_sdk_s3::types::Tagging::builder()
        .set_tag_set(Some(tags.iter().map(|(k, v)| tag(k, v)).collect()))
        .build()
        .unwrap()
}

async fn object_tags(
    s3: &Client,
    bucket: &str,
    key: &str,
    version: Option<&str>,
) -> Vec<(String, String)> {
    s3.get_object_tagging()
        .bucket(bucket)
        .key(key)
        .set_version_id(version.map(str::to_owned))
        .send()
        .await
        .unwrap_or_else(|error| panic!("GetObjectTagging {key}: {error:?}"))
        .tag_set()
        .iter()
        .map(|tag| (tag.key().to_owned(), tag.value().to_owned()))
        .collect()
}

fn pairs(tags: &[(&str, &str)]) -> Vec<(String, String)> {
    tags.iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

async fn sdk_tagging(s3: &Client) {
    let bucket = "sdk-tagging";
    s3.create_bucket().bucket(bucket).send().await.unwrap();
    s3.put_object()
        .bucket(bucket)
        .key("a key/with spaces+plus")
        .tagging("color=blue&shape=round%20ish")
        .body(ByteStream::from_static(b"x"))
        .send()
        .await
        .unwrap();
    let key = "a key/with spaces+plus";
    assert_eq!(
        object_tags(s3, bucket, key, None).await,
        pairs(&[("color", "blue"), ("shape", "round ish")])
    );
    let head = s3
        .head_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .unwrap();
    assert_eq!(head.tag_count(), Some(2));
    let get = s3
        .get_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .unwrap();
    assert_eq!(get.tag_count(), Some(2));

    s3.put_object_tagging()
        .bucket(bucket)
        .key(key)
        .tagging(tagging(&[("only", "one")]))
        .send()
        .await
        .unwrap();
    assert_eq!(
        object_tags(s3, bucket, key, None).await,
        pairs(&[("only", "one")])
    );
    let eleven: Vec<(String, String)> =
        (0..11).map(|i| (format!("k{i}"), "v".to_owned())).collect();
    let eleven_refs: Vec<(&str, &str)> = eleven
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let too_many = s3
        .put_object_tagging()
        .bucket(bucket)
        .key(key)
        .tagging(tagging(&eleven_refs))
        .send()
        .await
        .unwrap_err();
    assert_eq!(code_and_status(&too_many), ("BadRequest".to_owned(), 400));
    let long_value = "v".repeat(257);
    for bad in [
        vec![("aws:x", "v")],
        vec![("dup", "1"), ("dup", "2")],
        vec![("k", long_value.as_str())],
    ] {
        let refused = s3
            .put_object_tagging()
            .bucket(bucket)
            .key(key)
            .tagging(tagging(&bad))
            .send()
            .await
            .unwrap_err();
        assert_eq!(
            code_and_status(&refused),
            ("InvalidTag".to_owned(), 400),
            "{bad:?}"
        );
    }
    s3.delete_object_tagging()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .unwrap();
    assert!(object_tags(s3, bucket, key, None).await.is_empty());
    let missing = s3
        .get_object_tagging()
        .bucket(bucket)
        .key("missing")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code_and_status(&missing), ("NoSuchKey".to_owned(), 404));

    // Versions keep their own tags.
    s3.put_bucket_versioning()
        .bucket(bucket)
        .versioning_configuration(versioning(BucketVersioningStatus::Enabled))
        .send()
        .await
        .unwrap();
    let first = s3
        .put_object()
        .bucket(bucket)
        .key("v")
        .tagging("n=1")
        .body(ByteStream::from_static(b"1"))
        .send()
        .await
        .unwrap()
        .version_id()
        .unwrap()
        .to_owned();
    s3.put_object()
        .bucket(bucket)
        .key("v")
        .tagging("n=2")
        .body(ByteStream::from_static(b"2"))
        .send()
        .await
        .unwrap();
    let tagged = s3
        .put_object_tagging()
        .bucket(bucket)
        .key("v")
        .version_id(&first)
        .tagging(tagging(&[("n", "first")]))
        .send()
        .await
        .unwrap();
    assert_eq!(tagged.version_id(), Some(first.as_str()));
    assert_eq!(
        object_tags(s3, bucket, "v", Some(&first)).await,
        pairs(&[("n", "first")])
    );
    assert_eq!(
        object_tags(s3, bucket, "v", None).await,
        pairs(&[("n", "2")])
    );

    // CopyObject with the tagging directive.
    s3.copy_object()
        .bucket(bucket)
        .key("copied")
        .copy_source(format!("{bucket}/v?versionId={first}"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        object_tags(s3, bucket, "copied", None).await,
        pairs(&[("n", "first")])
    );
    s3.copy_object()
        .bucket(bucket)
        .key("replaced")
        .copy_source(format!("{bucket}/v"))
        .tagging_directive(aws_sdk_s3::types::TaggingDirective::Replace)
        .tagging("fresh=yes")
        .send()
        .await
        .unwrap();
    assert_eq!(
        object_tags(s3, bucket, "replaced", None).await,
        pairs(&[("fresh", "yes")])
    );

    // Multipart upload with tags.
    let upload = s3
        .create_multipart_upload()
        .bucket(bucket)
        .key("mp")
        .tagging("mp=yes")
        .send()
        .await
        .unwrap();
    let upload_id = upload.upload_id().unwrap();
    let part = s3
        .upload_part()
        .bucket(bucket)
        .key("mp")
        .upload_id(upload_id)
        .part_number(1)
        .body(ByteStream::from_static(b"part"))
        .send()
        .await
        .unwrap();
    s3.complete_multipart_upload()
        .bucket(bucket)
        .key("mp")
        .upload_id(upload_id)
        .multipart_upload(
            aws_sdk_s3::types::CompletedMultipartUpload::builder()
                .parts(
                    aws_sdk_s3::types::CompletedPart::builder()
                        .part_number(1)
                        .e_tag(part.e_tag().unwrap())
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(
        object_tags(s3, bucket, "mp", None).await,
        pairs(&[("mp", "yes")])
    );

    // Bucket tagging.
    let none = s3
        .get_bucket_tagging()
        .bucket(bucket)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code_and_status(&none), ("NoSuchTagSet".to_owned(), 404));
    s3.put_bucket_tagging()
        .bucket(bucket)
        .tagging(tagging(&[("env", "test"), ("owner", "cairn")]))
        .send()
        .await
        .unwrap();
    let bucket_tags = s3.get_bucket_tagging().bucket(bucket).send().await.unwrap();
    let listed: Vec<(&str, &str)> = bucket_tags
        .tag_set()
        .iter()
        .map(|tag| (tag.key(), tag.value()))
        .collect();
    assert_eq!(listed, [("env", "test"), ("owner", "cairn")]);
    let bad = s3
        .put_bucket_tagging()
        .bucket(bucket)
        .tagging(tagging(&[("aws:no", "x")]))
        .send()
        .await
        .unwrap_err();
    assert_eq!(code_and_status(&bad), ("InvalidTag".to_owned(), 400));
    s3.delete_bucket_tagging()
        .bucket(bucket)
        .send()
        .await
        .unwrap();
    let gone = s3
        .get_bucket_tagging()
        .bucket(bucket)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code_and_status(&gone), ("NoSuchTagSet".to_owned(), 404));
}

async fn sdk_cors(s3: &Client) {
    use aws_sdk_s3::types::{CorsConfiguration, CorsRule};
    let bucket = "sdk-cors";
    s3.create_bucket().bucket(bucket).send().await.unwrap();
    let none = s3
        .get_bucket_cors()
        .bucket(bucket)
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        code_and_status(&none),
        ("NoSuchCORSConfiguration".to_owned(), 404)
    );
    s3.put_bucket_cors()
        .bucket(bucket)
        .cors_configuration(
            CorsConfiguration::builder()
                .cors_rules(
                    CorsRule::builder()
                        .allowed_origins("https://site.example")
                        .allowed_methods("GET")
                        .allowed_headers("*")
                        .max_age_seconds(60)
                        .build()
                        .unwrap(),
                )
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let stored = s3.get_bucket_cors().bucket(bucket).send().await.unwrap();
    let rule = &stored.cors_rules()[0];
    assert_eq!(rule.allowed_origins(), ["https://site.example"]);
    assert_eq!(rule.allowed_methods(), ["GET"]);
    assert_eq!(rule.allowed_headers(), ["*"]);
    assert_eq!(rule.max_age_seconds(), Some(60));
    let bad = s3
        .put_bucket_cors()
        .bucket(bucket)
        .cors_configuration(
            CorsConfiguration::builder()
                .cors_rules(
                    CorsRule::builder()
                        .allowed_origins("*")
                        .allowed_methods("TRACE")
                        .build()
                        .unwrap(),
                )
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap_err();
    assert_eq!(code_and_status(&bad), ("InvalidRequest".to_owned(), 400));
    s3.delete_bucket_cors().bucket(bucket).send().await.unwrap();
    let gone = s3
        .get_bucket_cors()
        .bucket(bucket)
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        code_and_status(&gone),
        ("NoSuchCORSConfiguration".to_owned(), 404)
    );
    s3.delete_bucket().bucket(bucket).send().await.unwrap();
}

async fn sdk_object_attributes(s3: &Client) {
    use aws_sdk_s3::types::ObjectAttributes;
    let bucket = "sdk-attributes";
    s3.create_bucket().bucket(bucket).send().await.unwrap();
    let put = s3
        .put_object()
        .bucket(bucket)
        .key("k")
        .body(ByteStream::from_static(b"0123456789"))
        .send()
        .await
        .unwrap();
    let attributes = s3
        .get_object_attributes()
        .bucket(bucket)
        .key("k")
        .object_attributes(ObjectAttributes::Etag)
        .object_attributes(ObjectAttributes::ObjectSize)
        .object_attributes(ObjectAttributes::StorageClass)
        .send()
        .await
        .unwrap();
    assert_eq!(attributes.object_size(), Some(10));
    assert_eq!(
        attributes.e_tag().map(|etag| format!("\"{etag}\"")),
        put.e_tag().map(str::to_owned)
    );
    assert_eq!(
        attributes.storage_class().map(|class| class.as_str()),
        Some("STANDARD")
    );
    assert!(attributes.last_modified().is_some());
    let missing = s3
        .get_object_attributes()
        .bucket(bucket)
        .key("missing")
        .object_attributes(ObjectAttributes::Etag)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code_and_status(&missing), ("NoSuchKey".to_owned(), 404));
    let listed = s3
        .list_objects_v2()
        .bucket(bucket)
        .fetch_owner(true)
        .request_payer(aws_sdk_s3::types::RequestPayer::Requester)
        .send()
        .await
        .unwrap();
    assert!(
        listed.contents()[0]
            .owner()
            .and_then(|owner| owner.id())
            .is_some()
    );
    s3.delete_object()
        .bucket(bucket)
        .key("k")
        .send()
        .await
        .unwrap();
    s3.delete_bucket().bucket(bucket).send().await.unwrap();
}

/// Starts a `cairn dev`, runs the boto3 script `script` against it, then `sdk` with an SDK
/// client, and fails on any ERROR the dev logged.
async fn through_boto3_and_sdk<F, Fut>(script: &str, sdk: F)
where
    F: FnOnce(Client) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let dir = tempfile::tempdir().unwrap();
    let dev = tokio::task::block_in_place(|| CairnDev::start(Path::new(BINARY), dir.path()));
    tokio::task::block_in_place(|| dev.run_boto3_script(script));
    sdk(client(&dev)).await;
    dev.assert_no_errors_logged();
}

/// Unimplemented operations answer 501 NotImplemented (the router's table test in
/// dataplane/s3-proto/tests/endpoint.rs covers every marker; this checks the wire answer).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn not_implemented_through_boto3_and_aws_sdk() {
    through_boto3_and_sdk("s3_not_implemented.py", |s3| async move {
        sdk_not_implemented(&s3).await
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tagging_through_boto3_and_aws_sdk() {
    through_boto3_and_sdk("s3_tagging.py", |s3| async move { sdk_tagging(&s3).await }).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cors_through_boto3_and_aws_sdk() {
    through_boto3_and_sdk("s3_cors.py", |s3| async move { sdk_cors(&s3).await }).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn object_attributes_through_boto3_and_aws_sdk() {
    through_boto3_and_sdk("s3_object_attributes.py", |s3| async move {
        sdk_object_attributes(&s3).await
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conditional_writes_through_boto3_and_aws_sdk() {
    through_boto3_and_sdk("s3_conditional.py", |s3| async move {
        sdk_conditional_writes(&s3).await
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn versioning_through_boto3_and_aws_sdk() {
    through_boto3_and_sdk(
        "s3_versioning.py",
        |s3| async move { sdk_versioning(&s3).await },
    )
    .await;
}
