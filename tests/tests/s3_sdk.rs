//! Black-box test of `cairn dev` through the Rust AWS SDK (aws-sdk-s3 over plain HTTP, default
//! checksum behaviour): buckets, small and multi-MiB PUTs (a file body, which the SDK streams as
//! aws-chunked with an unsigned payload and a trailing CRC32), range GET, HEAD, ListObjectsV2
//! pages, CopyObject, multipart, DeleteObjects, a presigned GET fetched without the SDK, and
//! CRC32/CRC32C/SHA-256 checksums requested on PUT and returned on GET (which the SDK validates
//! against the body it received). Every byte read back is compared with what was written.

#[path = "sdk_client.rs"]
mod sdk_client;

use std::path::Path;
use std::time::Duration;

use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    ChecksumAlgorithm, ChecksumMode, CompletedMultipartUpload, CompletedPart, Delete,
    ObjectIdentifier,
};
use cairn_tests::{CairnDev, content, http_get};

use sdk_client::client;

const BINARY: &str = env!("CARGO_BIN_EXE_cairn");
const MIB: usize = 1024 * 1024;

async fn read_all(body: ByteStream) -> Vec<u8> {
    body.collect()
        .await
        .expect("read body")
        .into_bytes()
        .to_vec()
}

fn base64_of(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut text = String::new();
    for chunk in bytes.chunks(3) {
        let value = chunk.iter().enumerate().fold(0u32, |value, (index, byte)| {
            value | u32::from(*byte) << (16 - 8 * index)
        });
        for position in 0..4 {
            if position <= chunk.len() {
                text.push(char::from(
                    ALPHABET[(value >> (18 - 6 * position) & 63) as usize],
                ));
            } else {
                text.push('=');
            }
        }
    }
    text
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aws_sdk_s3_against_cairn_dev() {
    let dir = tempfile::tempdir().unwrap();
    let dev = tokio::task::block_in_place(|| CairnDev::start(Path::new(BINARY), dir.path()));
    let s3 = client(&dev);
    let bucket = "sdk";
    s3.create_bucket().bucket(bucket).send().await.unwrap();
    let buckets = s3.list_buckets().send().await.unwrap();
    assert!(
        buckets
            .buckets()
            .iter()
            .any(|listed| listed.name() == Some(bucket))
    );

    // A small in-memory PUT (the SDK sends its CRC32 in a header) and a range GET.
    let small = content(1, 10_000);
    let put = s3
        .put_object()
        .bucket(bucket)
        .key("small")
        .body(ByteStream::from(small.clone()))
        .send()
        .await
        .unwrap();
    assert!(put.e_tag().is_some());
    let ranged = s3
        .get_object()
        .bucket(bucket)
        .key("small")
        .range("bytes=100-4195")
        .send()
        .await
        .unwrap();
    assert_eq!(ranged.content_range(), Some("bytes 100-4195/10000"));
    assert_eq!(read_all(ranged.body).await, small[100..4196]);
    let head = s3
        .head_object()
        .bucket(bucket)
        .key("small")
        .send()
        .await
        .unwrap();
    assert_eq!(head.content_length(), Some(10_000));
    assert_eq!(head.e_tag(), put.e_tag());

    // A multi-MiB file body: the SDK streams it as aws-chunked with STREAMING-UNSIGNED-PAYLOAD-
    // TRAILER and a trailing checksum. The gateway's metrics show the framing: more bytes came
    // over the wire than the object holds.
    let big = content(2, 9 * MIB + 4321);
    let big_path = dir.path().join("big.bin");
    std::fs::write(&big_path, &big).unwrap();
    let put_bytes_series = "cairn_gateway_request_body_bytes_total{operation=\"PutObject\"}";
    let wire_bytes_before = tokio::task::block_in_place(|| dev.metric(put_bytes_series));
    let big_put = s3
        .put_object()
        .bucket(bucket)
        .key("dir/big.bin")
        .body(ByteStream::from_path(&big_path).await.unwrap())
        .send()
        .await
        .unwrap();
    let wire_bytes =
        tokio::task::block_in_place(|| dev.metric(put_bytes_series)) - wire_bytes_before;
    assert!(
        wire_bytes > big.len() as f64,
        "the file PUT was not aws-chunked: {wire_bytes} wire bytes for {} bytes",
        big.len()
    );
    let trailing_crc32 = big_put
        .checksum_crc32()
        .expect("the trailing CRC32 is stored and returned")
        .to_owned();
    let got = s3
        .get_object()
        .bucket(bucket)
        .key("dir/big.bin")
        .checksum_mode(ChecksumMode::Enabled)
        .send()
        .await
        .unwrap();
    assert_eq!(got.checksum_crc32(), Some(trailing_crc32.as_str()));
    assert!(read_all(got.body).await == big, "multi-MiB object differs");

    // Checksums requested explicitly: the gateway verifies the SDK's value, returns it, and the
    // SDK validates the GET body against the value the gateway returns.
    for (index, algorithm) in [
        ChecksumAlgorithm::Crc32,
        ChecksumAlgorithm::Crc32C,
        ChecksumAlgorithm::Sha256,
    ]
    .into_iter()
    .enumerate()
    {
        let key = format!("checksum/{}", algorithm.as_str());
        let body = content(10 + index as u64, 300_000 + index);
        let put = s3
            .put_object()
            .bucket(bucket)
            .key(&key)
            .checksum_algorithm(algorithm.clone())
            .body(ByteStream::from(body.clone()))
            .send()
            .await
            .unwrap();
        let returned = |crc32: Option<&str>, crc32c: Option<&str>, sha256: Option<&str>| {
            match algorithm {
                ChecksumAlgorithm::Crc32 => crc32,
                ChecksumAlgorithm::Crc32C => crc32c,
                _ => sha256,
            }
            .map(str::to_owned)
        };
        let put_value = returned(
            put.checksum_crc32(),
            put.checksum_crc32_c(),
            put.checksum_sha256(),
        )
        .unwrap_or_else(|| panic!("no {} returned by PUT", algorithm.as_str()));
        if algorithm == ChecksumAlgorithm::Crc32C {
            assert_eq!(
                put_value,
                base64_of(&crc32c::crc32c(&body).to_be_bytes()),
                "CRC32C computed here"
            );
        }
        let got = s3
            .get_object()
            .bucket(bucket)
            .key(&key)
            .checksum_mode(ChecksumMode::Enabled)
            .send()
            .await
            .unwrap();
        assert_eq!(
            returned(
                got.checksum_crc32(),
                got.checksum_crc32_c(),
                got.checksum_sha256()
            ),
            Some(put_value)
        );
        assert!(read_all(got.body).await == body);
    }

    // ListObjectsV2 in pages of 2 through the SDK's paginator.
    for index in 0..5 {
        s3.put_object()
            .bucket(bucket)
            .key(format!("list/{index}"))
            .body(ByteStream::from(content(20 + index, 100)))
            .send()
            .await
            .unwrap();
    }
    let pages: Vec<_> = s3
        .list_objects_v2()
        .bucket(bucket)
        .prefix("list/")
        .max_keys(2)
        .into_paginator()
        .send()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(pages.len(), 3);
    let keys: Vec<&str> = pages
        .iter()
        .flat_map(|page| page.contents())
        .filter_map(|object| object.key())
        .collect();
    assert_eq!(keys, ["list/0", "list/1", "list/2", "list/3", "list/4"]);

    // CopyObject.
    s3.copy_object()
        .bucket(bucket)
        .key("copied.bin")
        .copy_source(format!("{bucket}/dir/big.bin"))
        .send()
        .await
        .unwrap();
    let copied = s3
        .get_object()
        .bucket(bucket)
        .key("copied.bin")
        .send()
        .await
        .unwrap();
    assert!(read_all(copied.body).await == big, "copy differs");

    // Multipart: three parts (5 MiB, 5 MiB, a short last one).
    let upload = s3
        .create_multipart_upload()
        .bucket(bucket)
        .key("multipart.bin")
        .send()
        .await
        .unwrap();
    let upload_id = upload.upload_id().unwrap().to_owned();
    let parts: Vec<Vec<u8>> = vec![
        content(30, 5 * MIB),
        content(31, 5 * MIB),
        content(32, 123_456),
    ];
    let mut completed = Vec::new();
    for (index, part) in parts.iter().enumerate() {
        let part_number = index as i32 + 1;
        let uploaded = s3
            .upload_part()
            .bucket(bucket)
            .key("multipart.bin")
            .upload_id(&upload_id)
            .part_number(part_number)
            .body(ByteStream::from(part.clone()))
            .send()
            .await
            .unwrap();
        completed.push(
            CompletedPart::builder()
                .part_number(part_number)
                .e_tag(uploaded.e_tag().unwrap())
                .build(),
        );
    }
    s3.complete_multipart_upload()
        .bucket(bucket)
        .key("multipart.bin")
        .upload_id(&upload_id)
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .set_parts(Some(completed))
                .build(),
        )
        .send()
        .await
        .unwrap();
    let assembled = s3
        .get_object()
        .bucket(bucket)
        .key("multipart.bin")
        .send()
        .await
        .unwrap();
    assert!(
        assembled.e_tag().unwrap().ends_with("-3\""),
        "{:?}",
        assembled.e_tag()
    );
    assert!(
        read_all(assembled.body).await == parts.concat(),
        "multipart object differs"
    );

    // A presigned GET, fetched with a bare HTTP request.
    let presigned = s3
        .get_object()
        .bucket(bucket)
        .key("small")
        .presigned(PresigningConfig::expires_in(Duration::from_secs(300)).unwrap())
        .await
        .unwrap();
    let path_and_query = presigned
        .uri()
        .strip_prefix(&dev.url())
        .expect("presigned for the endpoint")
        .to_owned();
    assert!(
        path_and_query.contains("X-Amz-Signature="),
        "{path_and_query}"
    );
    let (status, body) = tokio::task::block_in_place(|| http_get(dev.endpoint, &path_and_query));
    assert_eq!(status, 200);
    assert_eq!(body, small);

    // DeleteObjects removes everything; the bucket then deletes.
    let listed = s3.list_objects_v2().bucket(bucket).send().await.unwrap();
    assert!(!listed.is_truncated().unwrap_or(false));
    let identifiers: Vec<ObjectIdentifier> = listed
        .contents()
        .iter()
        .map(|object| {
            ObjectIdentifier::builder()
                .key(object.key().unwrap())
                .build()
                .unwrap()
        })
        .collect();
    assert_eq!(identifiers.len(), 12);
    let deleted = s3
        .delete_objects()
        .bucket(bucket)
        .delete(
            Delete::builder()
                .set_objects(Some(identifiers))
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.deleted().len(), 12);
    assert!(deleted.errors().is_empty());
    assert_eq!(
        s3.list_objects_v2()
            .bucket(bucket)
            .send()
            .await
            .unwrap()
            .key_count(),
        Some(0)
    );
    let missing = s3.head_object().bucket(bucket).key("small").send().await;
    assert_eq!(
        missing
            .unwrap_err()
            .raw_response()
            .map(|raw| raw.status().as_u16()),
        Some(404)
    );
    s3.delete_bucket().bucket(bucket).send().await.unwrap();
    dev.assert_no_errors_logged();
}

/// Concurrent uploads share the gateway's MD5 passes (`cairn_s3_proto::md5_lanes`): twelve
/// multi-MiB PUTs at once, of lengths that are not whole MD5 blocks, half of them with a
/// `Content-MD5` the gateway checks. Every ETag is the MD5 of its body, every body reads back
/// whole, a PUT with a wrong `Content-MD5` is refused and stores nothing, and the gateway's
/// counters show passes that hashed several uploads together.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_uploads_hashed_together_keep_exact_etags() {
    use md5::Digest as _;

    let dir = tempfile::tempdir().unwrap();
    let dev = tokio::task::block_in_place(|| CairnDev::start(Path::new(BINARY), dir.path()));
    let s3 = client(&dev);
    let bucket = "md5-lanes";
    s3.create_bucket().bucket(bucket).send().await.unwrap();
    let hex =
        |digest: &[u8]| -> String { digest.iter().map(|byte| format!("{byte:02x}")).collect() };

    let bodies: Vec<Vec<u8>> = (0..12u64)
        .map(|index| content(100 + index, 3 * MIB + 977 * index as usize + 13))
        .collect();
    let puts: Vec<_> = bodies
        .iter()
        .enumerate()
        .map(|(index, body)| {
            let s3 = s3.clone();
            let body = body.clone();
            tokio::spawn(async move {
                let mut request = s3
                    .put_object()
                    .bucket(bucket)
                    .key(format!("object-{index}"));
                if index % 2 == 0 {
                    request = request.content_md5(base64_of(&md5::Md5::digest(&body)));
                }
                request.body(ByteStream::from(body)).send().await
            })
        })
        .collect();
    for (index, (put, body)) in puts.into_iter().zip(&bodies).enumerate() {
        let output = put
            .await
            .unwrap()
            .unwrap_or_else(|error| panic!("PUT {index}: {error:?}"));
        let expected = format!("\"{}\"", hex(&md5::Md5::digest(body)));
        assert_eq!(
            output.e_tag(),
            Some(expected.as_str()),
            "ETag of object {index}"
        );
    }
    for (index, body) in bodies.iter().enumerate() {
        let got = s3
            .get_object()
            .bucket(bucket)
            .key(format!("object-{index}"))
            .send()
            .await
            .unwrap();
        assert!(read_all(got.body).await == *body, "object {index} differs");
    }

    let passes = tokio::task::block_in_place(|| dev.metric("cairn_gateway_md5_passes_total"));
    let lanes = tokio::task::block_in_place(|| dev.metric("cairn_gateway_md5_pass_lanes_total"));
    eprintln!("MD5 passes {passes}, uploads hashed in them {lanes}");
    assert!(passes > 0.0, "no upload reached a pass");
    assert!(
        lanes > passes,
        "no pass hashed two uploads together: {passes} passes, {lanes} lanes"
    );

    // A wrong Content-MD5 on a large body: refused with BadDigest, and nothing is stored.
    let body = content(999, 3 * MIB + 5);
    let refused = s3
        .put_object()
        .bucket(bucket)
        .key("wrong-md5")
        .content_md5(base64_of(&md5::Md5::digest(b"something else")))
        .body(ByteStream::from(body))
        .send()
        .await
        .expect_err("a wrong Content-MD5 is refused");
    assert_eq!(
        refused.into_service_error().meta().code(),
        Some("BadDigest")
    );
    let missing = s3
        .head_object()
        .bucket(bucket)
        .key("wrong-md5")
        .send()
        .await;
    assert!(missing.is_err(), "the refused PUT stored an object");
}
