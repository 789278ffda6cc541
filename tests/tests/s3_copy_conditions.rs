//! Black-box tests of CopyObject's `x-amz-copy-source-if-*` conditions (issue 6) against
//! `cairn dev`, through boto3 (tests/python/s3_copy_conditions.py) and the Rust AWS SDK: each
//! condition holding and failing, AWS's precedence between them, and 412 PreconditionFailed
//! leaving the destination untouched. (CopyObject and UploadPartCopy share one evaluation,
//! `object::read_copy_source` in the gateway.) Also the edge cases of issue 6's list that no other
//! test covered (tests/python/s3_edge_cases.py).

#[path = "sdk_client.rs"]
mod sdk_client;

use std::path::Path;

use aws_sdk_s3::Client;
use aws_sdk_s3::primitives::{ByteStream, DateTime};
use cairn_tests::CairnDev;

use sdk_client::{client, code_and_status};

const BINARY: &str = env!("CARGO_BIN_EXE_cairn");
const OTHER_ETAG: &str = "\"0123456789abcdef0123456789abcdef\"";

async fn sdk_copy_conditions(s3: &Client) {
    let bucket = "sdk-copy-conditions";
    s3.create_bucket().bucket(bucket).send().await.unwrap();
    let put = s3
        .put_object()
        .bucket(bucket)
        .key("source")
        .body(ByteStream::from_static(b"source bytes"))
        .send()
        .await
        .unwrap();
    let etag = put.e_tag().unwrap().to_owned();
    let head = s3
        .head_object()
        .bucket(bucket)
        .key("source")
        .send()
        .await
        .unwrap();
    let modified = head.last_modified().unwrap().secs();
    let past = DateTime::from_secs(modified - 86_400);
    let future = DateTime::from_secs(modified + 86_400);
    let source = format!("{bucket}/source");

    let copy = |key: &str| {
        s3.copy_object()
            .bucket(bucket)
            .key(key)
            .copy_source(&source)
    };
    copy("if-match")
        .copy_source_if_match(&etag)
        .copy_source_if_unmodified_since(past)
        .send()
        .await
        .expect("if-match holds, so if-unmodified-since is not consulted");
    copy("if-modified-since")
        .copy_source_if_modified_since(past)
        .send()
        .await
        .unwrap();
    for (name, request) in [
        ("if-match", copy("refused").copy_source_if_match(OTHER_ETAG)),
        (
            "if-none-match",
            copy("refused").copy_source_if_none_match(&etag),
        ),
        (
            "if-modified-since",
            copy("refused").copy_source_if_modified_since(future),
        ),
        (
            "if-unmodified-since",
            copy("refused").copy_source_if_unmodified_since(past),
        ),
        (
            "if-none-match before if-modified-since",
            copy("refused")
                .copy_source_if_none_match(&etag)
                .copy_source_if_modified_since(past),
        ),
    ] {
        let error = request.send().await.unwrap_err();
        assert_eq!(
            code_and_status(&error),
            ("PreconditionFailed".to_owned(), 412),
            "{name}"
        );
    }
    let missing = s3
        .head_object()
        .bucket(bucket)
        .key("refused")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code_and_status(&missing).1, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copy_conditions_through_boto3_and_aws_sdk() {
    let dir = tempfile::tempdir().unwrap();
    let dev = tokio::task::block_in_place(|| CairnDev::start(Path::new(BINARY), dir.path()));
    tokio::task::block_in_place(|| dev.run_boto3_script("s3_copy_conditions.py"));
    sdk_copy_conditions(&client(&dev)).await;
    dev.assert_no_errors_logged();
}

/// Issue 6's edge-case list where no other test covered it (keys with `//`, `%`, `+`, spaces and
/// Unicode, MaxKeys=0, empty object, the 5 GiB single-PUT limit, part numbers past 10,000, the
/// minimum part size): tests/python/s3_edge_cases.py.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edge_cases_through_boto3() {
    let dir = tempfile::tempdir().unwrap();
    let dev = tokio::task::block_in_place(|| CairnDev::start(Path::new(BINARY), dir.path()));
    tokio::task::block_in_place(|| dev.run_boto3_script("s3_edge_cases.py"));
    dev.assert_no_errors_logged();
}
