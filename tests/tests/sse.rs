//! Black-box tests of server-side encryption against `cairn dev` (issue 11): boto3
//! (tests/python/s3_encryption.py: SSE-S3 by default, ranges across chunk and part boundaries,
//! multipart, copies, SSE-C with right, missing and wrong keys) and aws-sdk-s3; then a scan of
//! the storage nodes' raw segment files for the plaintext marker every object body carries.
//! A second `cairn dev` with `--no-default-encryption` is the scan's control: there the marker
//! must be found, so the scan itself is known to work.

#[path = "sdk_client.rs"]
mod sdk_client;

use std::path::Path;

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart, ServerSideEncryption};
use cairn_tests::CairnDev;

const BINARY: &str = env!("CARGO_BIN_EXE_cairn");
const MARKER: &[u8] = b"CAIRN-PLAINTEXT-MARKER-7f3a";

fn marked_body(length: usize, seed: u32) -> Vec<u8> {
    let line = [MARKER, format!("-sdk-{seed}-").as_bytes()].concat();
    line.iter().copied().cycle().take(length).collect()
}

/// Storage-node files (below `cluster/storage-*`) holding `needle`.
fn files_containing(dir: &Path, needle: &[u8]) -> Vec<String> {
    fn walk(path: &Path, needle: &[u8], found: &mut Vec<String>) {
        if path.is_dir() {
            for entry in std::fs::read_dir(path).unwrap() {
                walk(&entry.unwrap().path(), needle, found);
            }
        } else if let Ok(bytes) = std::fs::read(path) {
            let hit = bytes
                .iter()
                .enumerate()
                .filter(|(_, byte)| **byte == needle[0])
                .any(|(at, _)| bytes[at..].starts_with(needle));
            if hit {
                found.push(path.display().to_string());
            }
        }
    }
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir.join("cluster")).unwrap() {
        let path = entry.unwrap().path();
        if path
            .file_name()
            .is_some_and(|name| name.to_string_lossy().starts_with("storage-"))
        {
            walk(&path, needle, &mut found);
        }
    }
    found
}

/// The SSE-C key the SDK part uses (base64) and its MD5 (base64).
fn customer_key() -> (String, String) {
    use base64::Engine;
    use md5::Digest;
    let key = [0x3cu8; 32];
    let engine = base64::engine::general_purpose::STANDARD;
    (engine.encode(key), engine.encode(md5::Md5::digest(key)))
}

async fn sdk_round_trips(dev: &CairnDev) {
    let s3 = sdk_client::client(dev);
    let bucket = "sdk-sse";
    s3.create_bucket().bucket(bucket).send().await.unwrap();
    let data = marked_body(200_000, 1);
    let put = s3
        .put_object()
        .bucket(bucket)
        .key("object")
        .body(ByteStream::from(data.clone()))
        .send()
        .await
        .unwrap();
    assert_eq!(
        put.server_side_encryption(),
        Some(&ServerSideEncryption::Aes256)
    );
    let got = s3
        .get_object()
        .bucket(bucket)
        .key("object")
        .range("bytes=65530-131080")
        .send()
        .await
        .unwrap();
    assert_eq!(
        got.server_side_encryption(),
        Some(&ServerSideEncryption::Aes256)
    );
    let bytes = got.body.collect().await.unwrap().into_bytes();
    assert_eq!(&bytes[..], &data[65530..=131080]);

    let parts = [marked_body(5 << 20, 2), marked_body(65_537, 3)];
    let upload = s3
        .create_multipart_upload()
        .bucket(bucket)
        .key("multi")
        .send()
        .await
        .unwrap();
    let upload_id = upload.upload_id().unwrap();
    let mut completed = Vec::new();
    for (index, part) in parts.iter().enumerate() {
        let number = index as i32 + 1;
        let answer = s3
            .upload_part()
            .bucket(bucket)
            .key("multi")
            .upload_id(upload_id)
            .part_number(number)
            .body(ByteStream::from(part.clone()))
            .send()
            .await
            .unwrap();
        completed.push(
            CompletedPart::builder()
                .part_number(number)
                .e_tag(answer.e_tag().unwrap())
                .build(),
        );
    }
    s3.complete_multipart_upload()
        .bucket(bucket)
        .key("multi")
        .upload_id(upload_id)
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .set_parts(Some(completed))
                .build(),
        )
        .send()
        .await
        .unwrap();
    // SSE-C through the SDK with a key the test knows, so the log can be searched for it.
    let (key_base64, key_md5_base64) = customer_key();
    let data = marked_body(70_000, 4);
    s3.put_object()
        .bucket(bucket)
        .key("customer")
        .sse_customer_algorithm("AES256")
        .sse_customer_key(&key_base64)
        .sse_customer_key_md5(&key_md5_base64)
        .body(ByteStream::from(data.clone()))
        .send()
        .await
        .unwrap();
    let got = s3
        .get_object()
        .bucket(bucket)
        .key("customer")
        .sse_customer_algorithm("AES256")
        .sse_customer_key(&key_base64)
        .sse_customer_key_md5(&key_md5_base64)
        .range("bytes=65000-66000")
        .send()
        .await
        .unwrap();
    assert_eq!(got.sse_customer_key_md5(), Some(key_md5_base64.as_str()));
    assert_eq!(
        &got.body.collect().await.unwrap().into_bytes()[..],
        &data[65000..=66000]
    );
    let missing = s3
        .get_object()
        .bucket(bucket)
        .key("customer")
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        missing
            .raw_response()
            .map(|response| response.status().as_u16()),
        Some(400)
    );

    let whole = parts.concat();
    let got = s3
        .get_object()
        .bucket(bucket)
        .key("multi")
        .send()
        .await
        .unwrap();
    assert_eq!(got.content_length(), Some(whole.len() as i64));
    assert_eq!(&got.body.collect().await.unwrap().into_bytes()[..], &whole);
    let first = (5 << 20) - 3;
    let got = s3
        .get_object()
        .bucket(bucket)
        .key("multi")
        .range(format!("bytes={first}-{}", first + 30_000))
        .send()
        .await
        .unwrap();
    assert_eq!(
        &got.body.collect().await.unwrap().into_bytes()[..],
        &whole[first..=first + 30_000]
    );
    s3.copy_object()
        .bucket(bucket)
        .key("copy")
        .copy_source(format!("{bucket}/multi"))
        .send()
        .await
        .unwrap();
    let got = s3
        .get_object()
        .bucket(bucket)
        .key("copy")
        .send()
        .await
        .unwrap();
    assert_eq!(&got.body.collect().await.unwrap().into_bytes()[..], &whole);
}

#[test]
fn encrypted_objects_round_trip_and_never_reach_storage_in_plaintext() {
    let dir = tempfile::tempdir().unwrap();
    let dev = CairnDev::start(Path::new(BINARY), dir.path());
    dev.run_boto3_script("s3_encryption.py");
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(sdk_round_trips(&dev));
    let leaked = files_containing(dir.path(), MARKER);
    assert!(leaked.is_empty(), "plaintext on storage nodes: {leaked:?}");

    // Key hygiene: the master key exists, is private, and appears in no log line.
    let key_path = dir.path().join("cluster/master-key");
    let key_hex = std::fs::read_to_string(&key_path).unwrap();
    assert_eq!(key_hex.trim().len(), 64);
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key_path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let log = dev.process.log();
    assert!(!log.contains(key_hex.trim()));
    // Nor the SSE-C key, in base64 or hex.
    let (customer_base64, _) = customer_key();
    assert!(!log.contains(&customer_base64));
    assert!(!log.to_lowercase().contains(&"3c".repeat(32)));
    dev.assert_no_errors_logged();
    drop(dev);

    // Control: the same scan finds the marker when encryption is off.
    let plain_dir = tempfile::tempdir().unwrap();
    let plain = CairnDev::start_with(
        Path::new(BINARY),
        plain_dir.path(),
        &["--no-default-encryption"],
    );
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let s3 = sdk_client::client(&plain);
        s3.create_bucket().bucket("plain").send().await.unwrap();
        let put = s3
            .put_object()
            .bucket("plain")
            .key("object")
            .body(ByteStream::from(marked_body(100_000, 9)))
            .send()
            .await
            .unwrap();
        assert_eq!(put.server_side_encryption(), None);
    });
    assert!(!files_containing(plain_dir.path(), MARKER).is_empty());
    plain.assert_no_errors_logged();
}
