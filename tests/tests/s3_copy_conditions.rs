//! Black-box tests of CopyObject's `x-amz-copy-source-if-*` conditions (issue 6) against
//! `cairn dev`, through boto3 (tests/python/s3_copy_conditions.py) and the Rust AWS SDK: each
//! condition holding and failing, AWS's precedence between them, and 412 PreconditionFailed
//! leaving the destination untouched. (CopyObject and UploadPartCopy share one evaluation,
//! `object::read_copy_source` in the gateway.) Also the edge cases of issue 6's list that no other
//! test covered (tests/python/s3_edge_cases.py and the same cases through the SDK).

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

/// The edge cases of [`edge_cases_through_boto3_and_aws_sdk`] through the Rust SDK (the 5 GiB
/// single-PUT limit is the python script's: it needs a Content-Length without its body).
async fn sdk_edge_cases(s3: &Client) {
    const MIB: usize = 1024 * 1024;
    let bucket = "sdk-edge-cases";
    s3.create_bucket().bucket(bucket).send().await.unwrap();
    let keys = [
        "a//b",
        "//leading",
        "trailing//",
        "100% sure",
        "1+1=2",
        "with space",
        "日本語/ключ/é",
        "mixed //+% ü",
    ];
    for (index, key) in keys.iter().enumerate() {
        s3.put_object()
            .bucket(bucket)
            .key(*key)
            .body(ByteStream::from(format!("body {index}").into_bytes()))
            .send()
            .await
            .unwrap_or_else(|error| panic!("PUT {key:?}: {error:?}"));
    }
    let listed = s3.list_objects_v2().bucket(bucket).send().await.unwrap();
    let listed: Vec<&str> = listed.contents().iter().filter_map(|o| o.key()).collect();
    let mut expected = keys.to_vec();
    expected.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
    assert_eq!(listed, expected);
    for (index, key) in keys.iter().enumerate() {
        let body = s3
            .get_object()
            .bucket(bucket)
            .key(*key)
            .send()
            .await
            .unwrap_or_else(|error| panic!("GET {key:?}: {error:?}"))
            .body
            .collect()
            .await
            .unwrap()
            .into_bytes();
        assert_eq!(&body[..], format!("body {index}").as_bytes(), "{key:?}");
    }
    let page = s3
        .list_objects_v2()
        .bucket(bucket)
        .max_keys(0)
        .send()
        .await
        .unwrap();
    assert_eq!(page.key_count(), Some(0));
    assert!(page.contents().is_empty());
    assert_eq!(page.is_truncated(), Some(false));

    s3.put_object()
        .bucket(bucket)
        .key("empty")
        .body(ByteStream::from_static(b""))
        .send()
        .await
        .unwrap();
    let head = s3
        .head_object()
        .bucket(bucket)
        .key("empty")
        .send()
        .await
        .unwrap();
    assert_eq!(head.content_length(), Some(0));
    assert_eq!(head.e_tag(), Some("\"d41d8cd98f00b204e9800998ecf8427e\""));

    let upload = s3
        .create_multipart_upload()
        .bucket(bucket)
        .key("parts")
        .send()
        .await
        .unwrap();
    let upload_id = upload.upload_id().unwrap();
    let part = |number: i32, body: Vec<u8>| {
        s3.upload_part()
            .bucket(bucket)
            .key("parts")
            .upload_id(upload_id)
            .part_number(number)
            .body(ByteStream::from(body))
            .send()
    };
    for number in [0, 10_001] {
        let refused = part(number, b"x".to_vec()).await.unwrap_err();
        assert_eq!(
            code_and_status(&refused),
            ("InvalidArgument".to_owned(), 400),
            "part {number}"
        );
    }
    let small = part(1, b"small".to_vec()).await.unwrap();
    let last = part(10_000, b"last".to_vec()).await.unwrap();
    let completed = |first: &str| {
        aws_sdk_s3::types::CompletedMultipartUpload::builder()
            .parts(
                aws_sdk_s3::types::CompletedPart::builder()
                    .part_number(1)
                    .e_tag(first)
                    .build(),
            )
            .parts(
                aws_sdk_s3::types::CompletedPart::builder()
                    .part_number(10_000)
                    .e_tag(last.e_tag().unwrap())
                    .build(),
            )
            .build()
    };
    let refused = s3
        .complete_multipart_upload()
        .bucket(bucket)
        .key("parts")
        .upload_id(upload_id)
        .multipart_upload(completed(small.e_tag().unwrap()))
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        code_and_status(&refused),
        ("EntityTooSmall".to_owned(), 400)
    );
    let big = part(1, vec![b'p'; 5 * MIB]).await.unwrap();
    s3.complete_multipart_upload()
        .bucket(bucket)
        .key("parts")
        .upload_id(upload_id)
        .multipart_upload(completed(big.e_tag().unwrap()))
        .send()
        .await
        .unwrap();
    let head = s3
        .head_object()
        .bucket(bucket)
        .key("parts")
        .send()
        .await
        .unwrap();
    assert_eq!(head.content_length(), Some((5 * MIB + 4) as i64));

    for key in keys {
        s3.delete_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .unwrap();
        let gone = s3
            .head_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .unwrap_err();
        assert_eq!(code_and_status(&gone).1, 404, "{key:?}");
    }
}

/// Issue 6's edge-case list where no other test covered it (keys with `//`, `%`, `+`, spaces and
/// Unicode, MaxKeys=0, empty object, the 5 GiB single-PUT limit, part numbers past 10,000, the
/// minimum part size): tests/python/s3_edge_cases.py and [`sdk_edge_cases`].
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edge_cases_through_boto3_and_aws_sdk() {
    let dir = tempfile::tempdir().unwrap();
    let dev = tokio::task::block_in_place(|| CairnDev::start(Path::new(BINARY), dir.path()));
    tokio::task::block_in_place(|| dev.run_boto3_script("s3_edge_cases.py"));
    sdk_edge_cases(&client(&dev)).await;
    dev.assert_no_errors_logged();
}
