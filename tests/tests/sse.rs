//! Black-box tests of server-side encryption against `cairn dev` (issue 11): boto3
//! (tests/python/s3_encryption.py: SSE-S3 by default, ranges across chunk and part boundaries,
//! multipart, copies, SSE-C with right, missing and wrong keys) and aws-sdk-s3; then a scan of
//! the storage nodes' raw segment files for the plaintext marker every object body carries.
//! A second `cairn dev` with `--no-default-encryption` is the scan's control: there the marker
//! must be found, so the scan itself is known to work.
//!
//! Master-key rotation (`master_key_*`): `cairn master-key rotate`, picked up by the running
//! gateway, `cairn admin master-key rewrap`, then the retired key removed and `cairn dev`
//! restarted: every object (SSE-S3, multipart, SSE-KMS, SSE-C, old versions) reads back and every
//! user signs.
//!
//! SSE-KMS (`sse_kms_*`): keys made, rotated, disabled and enabled with `cairn admin kms`, boto3
//! (tests/python/s3_kms.py, in phases between those steps) and aws-sdk-s3 round trips, the same
//! plaintext scan, and the keys surviving a restart.

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
    let (got, bytes) = get_range(&s3, bucket, "object", "bytes=65530-131080").await;
    assert_eq!(
        got.server_side_encryption(),
        Some(&ServerSideEncryption::Aes256)
    );
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
    upload_parts_and_complete(&s3, bucket, "multi", upload_id, &parts, |_| {}).await;
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
    let range = format!("bytes={first}-{}", first + 30_000);
    let (_, bytes) = get_range(&s3, bucket, "multi", &range).await;
    assert_eq!(&bytes[..], &whole[first..=first + 30_000]);
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

fn kms_admin(dev: &CairnDev, args: &[&str]) -> serde_json::Value {
    let (ok, stdout, stderr) = dev.admin(Path::new(BINARY), &dev.access_key, &dev.secret_key, args);
    assert!(ok, "cairn admin {args:?}: {stderr}");
    serde_json::from_str(stdout.trim()).unwrap()
}

fn kms_script(dev: &CairnDev, phase: &str, key_id: &str, arn: &str) {
    let args = [
        dev.url(),
        dev.access_key.clone(),
        dev.secret_key.clone(),
        phase.to_owned(),
        key_id.to_owned(),
        arn.to_owned(),
    ];
    if let Err(failure) = cairn_tests::try_python_script("s3_kms.py", &args) {
        let log = dev.process.log();
        let warnings: Vec<&str> = log
            .lines()
            .filter(|line| line.contains(" WARN ") || line.contains(" ERROR "))
            .collect();
        panic!(
            "{failure}\ncairn dev WARN/ERROR lines:\n{}",
            warnings.join("\n")
        );
    }
}

async fn sdk_kms_round_trips(dev: &CairnDev, arn: &str) {
    let s3 = sdk_client::client(dev);
    let bucket = "sdk-kms";
    s3.create_bucket().bucket(bucket).send().await.unwrap();
    let data = marked_body(200_000, 11);
    let put = s3
        .put_object()
        .bucket(bucket)
        .key("object")
        .server_side_encryption(ServerSideEncryption::AwsKms)
        .ssekms_key_id("alias/sdk-key")
        .body(ByteStream::from(data.clone()))
        .send()
        .await
        .unwrap();
    assert_eq!(
        put.server_side_encryption(),
        Some(&ServerSideEncryption::AwsKms)
    );
    assert_eq!(put.ssekms_key_id(), Some(arn));
    let (got, bytes) = get_range(&s3, bucket, "object", "bytes=65530-131080").await;
    assert_eq!(
        got.server_side_encryption(),
        Some(&ServerSideEncryption::AwsKms)
    );
    assert_eq!(got.ssekms_key_id(), Some(arn));
    assert_eq!(&bytes[..], &data[65530..=131080]);

    let parts = [marked_body(5 << 20, 12), marked_body(65_537, 13)];
    let upload = s3
        .create_multipart_upload()
        .bucket(bucket)
        .key("multi")
        .server_side_encryption(ServerSideEncryption::AwsKms)
        .ssekms_key_id(arn)
        .send()
        .await
        .unwrap();
    assert_eq!(upload.ssekms_key_id(), Some(arn));
    let upload_id = upload.upload_id().unwrap();
    let done = upload_parts_and_complete(&s3, bucket, "multi", upload_id, &parts, |answer| {
        assert_eq!(answer.ssekms_key_id(), Some(arn));
    })
    .await;
    assert_eq!(
        done.server_side_encryption(),
        Some(&ServerSideEncryption::AwsKms)
    );
    let whole = parts.concat();
    let range = format!("bytes={}-{}", (5 << 20) - 100, (5 << 20) + 60_000);
    let (_, bytes) = get_range(&s3, bucket, "multi", &range).await;
    assert_eq!(&bytes[..], &whole[(5 << 20) - 100..=(5 << 20) + 60_000]);
    let head = s3
        .head_object()
        .bucket(bucket)
        .key("multi")
        .send()
        .await
        .unwrap();
    assert_eq!(head.ssekms_key_id(), Some(arn));
    assert_eq!(head.content_length(), Some(whole.len() as i64));

    // An unknown key: KMS.NotFoundException, 400.
    let error = s3
        .put_object()
        .bucket(bucket)
        .key("unknown-key")
        .server_side_encryption(ServerSideEncryption::AwsKms)
        .ssekms_key_id("alias/nobody")
        .body(ByteStream::from_static(b"x"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        sdk_client::code_and_status(&error),
        ("KMS.NotFoundException".to_owned(), 400)
    );
}

async fn sdk_kms_disabled(dev: &CairnDev) {
    let s3 = sdk_client::client(dev);
    let error = s3
        .get_object()
        .bucket("sdk-kms")
        .key("object")
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        sdk_client::code_and_status(&error),
        ("KMS.DisabledException".to_owned(), 400)
    );
}

#[test]
fn sse_kms_keys_rotate_disable_and_never_reach_storage_in_plaintext() {
    let dir = tempfile::tempdir().unwrap();
    let mut dev = CairnDev::start(Path::new(BINARY), dir.path());
    let created = kms_admin(
        &dev,
        &[
            "kms",
            "create",
            "--alias",
            "alias/boto3-key",
            "--description",
            "boto3 test key",
        ],
    );
    let key_id = created["key_id"].as_str().unwrap().to_owned();
    let arn = created["arn"].as_str().unwrap().to_owned();
    assert_eq!(
        arn,
        format!("arn:aws:kms:us-east-1:000000000000:key/{key_id}")
    );
    assert_eq!(created["state"], "Enabled");
    assert_eq!(created["current_version"], 1);
    assert_eq!(created["description"], "boto3 test key");
    let sdk_key = kms_admin(&dev, &["kms", "create", "--alias", "alias/sdk-key"]);
    let sdk_arn = sdk_key["arn"].as_str().unwrap().to_owned();

    // Root only; AWS's reserved alias prefix and taken aliases are refused.
    let (user_key, user_secret) = dev.create_user(Path::new(BINARY), "alice");
    let (ok, _, stderr) = dev.admin(Path::new(BINARY), &user_key, &user_secret, &["kms", "list"]);
    assert!(
        !ok && stderr.contains("403") && stderr.contains("AccessDenied"),
        "{stderr}"
    );
    for alias in ["alias/aws/mine", "alias/boto3-key", "no-prefix"] {
        let (ok, _, stderr) = dev.admin(
            Path::new(BINARY),
            &dev.access_key,
            &dev.secret_key,
            &["kms", "create", "--alias", alias],
        );
        assert!(
            !ok && stderr.contains("InvalidArgument"),
            "{alias}: {stderr}"
        );
    }
    let (ok, _, stderr) = dev.admin(
        Path::new(BINARY),
        &dev.access_key,
        &dev.secret_key,
        &["kms", "rotate", "alias/nobody"],
    );
    assert!(!ok && stderr.contains("KMS.NotFoundException"), "{stderr}");

    kms_script(&dev, "write", &key_id, &arn);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(sdk_kms_round_trips(&dev, &sdk_arn));

    // The default key was created on first use, under AWS's alias.
    let listed = kms_admin(&dev, &["kms", "list"]);
    let keys = listed["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 3, "{listed}");
    assert!(keys.iter().any(|key| key["alias"] == "alias/aws/s3"));
    assert!(keys.iter().all(|key| key.get("wrapped_material").is_none()));

    // Rotation (by ARN): a new version for new objects, old objects still read.
    let rotated = kms_admin(&dev, &["kms", "rotate", &arn]);
    assert_eq!(rotated["current_version"], 2);
    assert_eq!(rotated["versions"].as_array().unwrap().len(), 2);
    kms_script(&dev, "rotated", &key_id, &arn);

    // Disabled: reads and writes under the key fail; enabled again: reads work.
    let disabled = kms_admin(&dev, &["kms", "disable", "alias/boto3-key"]);
    assert_eq!(disabled["state"], "Disabled");
    kms_admin(&dev, &["kms", "disable", "alias/sdk-key"]);
    kms_script(&dev, "disabled", &key_id, &arn);
    runtime.block_on(sdk_kms_disabled(&dev));
    let (ok, _, stderr) = dev.admin(
        Path::new(BINARY),
        &dev.access_key,
        &dev.secret_key,
        &["kms", "rotate", &key_id],
    );
    assert!(!ok && stderr.contains("KMS.DisabledException"), "{stderr}");
    let enabled = kms_admin(&dev, &["kms", "enable", &key_id]);
    assert_eq!(enabled["state"], "Enabled");
    kms_script(&dev, "enabled", &key_id, &arn);

    let leaked = files_containing(dir.path(), MARKER);
    assert!(leaked.is_empty(), "plaintext on storage nodes: {leaked:?}");
    dev.assert_no_errors_logged();

    // The keys (and their versions and states) survive a restart.
    dev = dev.restarted(Path::new(BINARY), dir.path());
    kms_script(&dev, "enabled", &key_id, &arn);
    runtime.block_on(sdk_kms_disabled(&dev));
    dev.assert_no_errors_logged();
}

#[test]
fn sse_kms_default_key_is_created_once_under_concurrent_first_use() {
    let dir = tempfile::tempdir().unwrap();
    let dev = CairnDev::start(Path::new(BINARY), dir.path());
    let arns = tokio::runtime::Runtime::new().unwrap().block_on(async {
        let s3 = sdk_client::client(&dev);
        s3.create_bucket().bucket("first-use").send().await.unwrap();
        let puts: Vec<_> = (0..8u32)
            .map(|index| {
                let s3 = s3.clone();
                tokio::spawn(async move {
                    let put = s3
                        .put_object()
                        .bucket("first-use")
                        .key(format!("object-{index}"))
                        .server_side_encryption(ServerSideEncryption::AwsKms)
                        .body(ByteStream::from(marked_body(1000, index)))
                        .send()
                        .await
                        .unwrap();
                    put.ssekms_key_id().unwrap().to_owned()
                })
            })
            .collect();
        let mut arns = Vec::new();
        for put in puts {
            arns.push(put.await.unwrap());
        }
        for index in 0..8u32 {
            let got = s3
                .get_object()
                .bucket("first-use")
                .key(format!("object-{index}"))
                .send()
                .await
                .unwrap();
            assert_eq!(got.ssekms_key_id(), Some(arns[0].as_str()));
            let bytes = got.body.collect().await.unwrap().into_bytes();
            assert_eq!(&bytes[..], &marked_body(1000, index)[..]);
        }
        arns
    });
    assert!(arns.iter().all(|arn| *arn == arns[0]), "{arns:?}");
    let listed = kms_admin(&dev, &["kms", "list"]);
    let keys = listed["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1, "{listed}");
    assert_eq!(keys[0]["alias"], "alias/aws/s3");
    assert_eq!(keys[0]["arn"], arns[0].as_str());
    dev.assert_no_errors_logged();
}

/// `GET key` with a `Range` header: the answer (its body taken out) and the bytes read.
async fn get_range(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    range: &str,
) -> (aws_sdk_s3::operation::get_object::GetObjectOutput, Vec<u8>) {
    let mut got = s3
        .get_object()
        .bucket(bucket)
        .key(key)
        .range(range)
        .send()
        .await
        .unwrap();
    let body = std::mem::replace(&mut got.body, ByteStream::from_static(b""));
    (got, body.collect().await.unwrap().to_vec())
}

/// Uploads `parts` (numbered from 1) to `upload_id`, hands each UploadPart answer to `check`,
/// and completes the upload.
async fn upload_parts_and_complete(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    upload_id: &str,
    parts: &[Vec<u8>],
    check: impl Fn(&aws_sdk_s3::operation::upload_part::UploadPartOutput),
) -> aws_sdk_s3::operation::complete_multipart_upload::CompleteMultipartUploadOutput {
    let mut completed = Vec::new();
    for (index, part) in parts.iter().enumerate() {
        let number = index as i32 + 1;
        let answer = s3
            .upload_part()
            .bucket(bucket)
            .key(key)
            .upload_id(upload_id)
            .part_number(number)
            .body(ByteStream::from(part.clone()))
            .send()
            .await
            .unwrap();
        check(&answer);
        completed.push(
            CompletedPart::builder()
                .part_number(number)
                .e_tag(answer.e_tag().unwrap())
                .build(),
        );
    }
    s3.complete_multipart_upload()
        .bucket(bucket)
        .key(key)
        .upload_id(upload_id)
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .set_parts(Some(completed))
                .build(),
        )
        .send()
        .await
        .unwrap()
}

/// What `cairn admin master-key ARGS` answers (root keys).
fn master_key_admin(dev: &CairnDev, args: &[&str]) -> serde_json::Value {
    let mut full = vec!["master-key"];
    full.extend_from_slice(args);
    kms_admin(dev, &full)
}

/// The objects of the rotation test: (bucket, key, version id, body, SSE-C).
struct Written {
    bucket: &'static str,
    key: String,
    version_id: Option<String>,
    body: Vec<u8>,
    customer_key: bool,
}

async fn write_generation(
    s3: &aws_sdk_s3::Client,
    generation: u32,
    kms_arn: &str,
    written: &mut Vec<Written>,
) {
    let (customer_base64, customer_md5) = customer_key();
    // SSE-S3 by default, twice on one key of a versioned bucket (two versions to re-wrap).
    for round in 0..2 {
        let body = marked_body(70_000 + round * 1000, generation * 10 + round as u32);
        let put = s3
            .put_object()
            .bucket("rotation-versions")
            .key("object")
            .body(ByteStream::from(body.clone()))
            .send()
            .await
            .unwrap();
        assert_eq!(
            put.server_side_encryption(),
            Some(&ServerSideEncryption::Aes256)
        );
        written.push(Written {
            bucket: "rotation-versions",
            key: "object".to_owned(),
            version_id: put.version_id().map(str::to_owned),
            body,
            customer_key: false,
        });
    }
    // SSE-S3 multipart (the upload's data key is wrapped once for all parts).
    let key = format!("multipart-{generation}");
    let upload = s3
        .create_multipart_upload()
        .bucket("rotation")
        .key(&key)
        .server_side_encryption(ServerSideEncryption::Aes256)
        .send()
        .await
        .unwrap();
    let upload_id = upload.upload_id().unwrap();
    let first = marked_body(5 * 1024 * 1024, generation * 10 + 5);
    let second = marked_body(100_000, generation * 10 + 6);
    let mut parts = Vec::new();
    for (number, part) in [(1, &first), (2, &second)] {
        let uploaded = s3
            .upload_part()
            .bucket("rotation")
            .key(&key)
            .upload_id(upload_id)
            .part_number(number)
            .body(ByteStream::from(part.clone()))
            .send()
            .await
            .unwrap();
        parts.push(
            CompletedPart::builder()
                .part_number(number)
                .e_tag(uploaded.e_tag().unwrap())
                .build(),
        );
    }
    s3.complete_multipart_upload()
        .bucket("rotation")
        .key(&key)
        .upload_id(upload_id)
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .set_parts(Some(parts))
                .build(),
        )
        .send()
        .await
        .unwrap();
    written.push(Written {
        bucket: "rotation",
        key,
        version_id: None,
        body: [first, second].concat(),
        customer_key: false,
    });
    // SSE-KMS under a named key (its material is wrapped by the master key).
    let key = format!("kms-{generation}");
    let body = marked_body(90_000, generation * 10 + 7);
    let put = s3
        .put_object()
        .bucket("rotation")
        .key(&key)
        .server_side_encryption(ServerSideEncryption::AwsKms)
        .ssekms_key_id(kms_arn)
        .body(ByteStream::from(body.clone()))
        .send()
        .await
        .unwrap();
    assert_eq!(put.ssekms_key_id(), Some(kms_arn));
    written.push(Written {
        bucket: "rotation",
        key,
        version_id: None,
        body,
        customer_key: false,
    });
    // SSE-C: not wrapped by the master key at all, and must stay readable.
    let key = format!("sse-c-{generation}");
    let body = marked_body(30_000, generation * 10 + 8);
    s3.put_object()
        .bucket("rotation")
        .key(&key)
        .sse_customer_algorithm("AES256")
        .sse_customer_key(&customer_base64)
        .sse_customer_key_md5(&customer_md5)
        .body(ByteStream::from(body.clone()))
        .send()
        .await
        .unwrap();
    written.push(Written {
        bucket: "rotation",
        key,
        version_id: None,
        body,
        customer_key: true,
    });
}

async fn read_all(s3: &aws_sdk_s3::Client, written: &[Written]) {
    let (customer_base64, customer_md5) = customer_key();
    for object in written {
        let mut get = s3
            .get_object()
            .bucket(object.bucket)
            .key(&object.key)
            .set_version_id(object.version_id.clone());
        if object.customer_key {
            get = get
                .sse_customer_algorithm("AES256")
                .sse_customer_key(&customer_base64)
                .sse_customer_key_md5(&customer_md5);
        }
        let answer = get
            .send()
            .await
            .unwrap_or_else(|error| panic!("GET {}/{}: {error:?}", object.bucket, object.key));
        let body = answer
            .body
            .collect()
            .await
            .unwrap_or_else(|error| {
                panic!(
                    "GET {}/{} {:?} body: {error:?}",
                    object.bucket, object.key, object.version_id
                )
            })
            .into_bytes();
        assert!(
            body.as_ref() == object.body.as_slice(),
            "{}/{} {:?} reads back changed",
            object.bucket,
            object.key,
            object.version_id
        );
        // A range across the first chunk boundary decrypts too.
        if object.body.len() < 65546 {
            continue;
        }
        let mut ranged = s3
            .get_object()
            .bucket(object.bucket)
            .key(&object.key)
            .set_version_id(object.version_id.clone())
            .range("bytes=65530-65545");
        if object.customer_key {
            ranged = ranged
                .sse_customer_algorithm("AES256")
                .sse_customer_key(&customer_base64)
                .sse_customer_key_md5(&customer_md5);
        }
        let part = ranged.send().await.unwrap().body.collect().await.unwrap();
        assert_eq!(part.into_bytes().as_ref(), &object.body[65530..65546]);
    }
}

/// Every user (root, alice, bob) still signs: ListBuckets with each one's keys.
async fn everyone_signs(dev: &CairnDev, users: &[(String, String)]) {
    sdk_client::client(dev).list_buckets().send().await.unwrap();
    for (access_key, secret_key) in users {
        sdk_client::client_with_keys(dev, access_key, secret_key)
            .list_buckets()
            .send()
            .await
            .unwrap_or_else(|error| panic!("{access_key} cannot sign: {error:?}"));
    }
}

#[test]
fn master_key_rotation_rewrap_and_dropping_the_retired_key() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_path_buf();
    let mut dev = CairnDev::start(Path::new(BINARY), root.as_path());
    let key_file = root.as_path().join("cluster/master-key");
    let key_file_arg = key_file.to_str().unwrap().to_owned();
    let first_key_hex = std::fs::read_to_string(&key_file)
        .unwrap()
        .trim()
        .to_owned();
    let shown = master_key_admin(&dev, &["show"]);
    let first_id = shown["active_key_id"].as_str().unwrap().to_owned();
    assert_eq!(shown["key_ids"], serde_json::json!([first_id]));

    let kms_key = kms_admin(&dev, &["kms", "create", "--alias", "alias/rotation"]);
    let kms_arn = kms_key["arn"].as_str().unwrap().to_owned();
    let alice = dev.create_user(Path::new(BINARY), "alice");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let s3 = sdk_client::client(&dev);
    let mut written = Vec::new();
    runtime.block_on(async {
        sdk_client::create_versioned_bucket(&s3, "rotation-versions").await;
        s3.create_bucket().bucket("rotation").send().await.unwrap();
        write_generation(&s3, 1, &kms_arn, &mut written).await;
    });
    // A multipart upload started (one part stored) before the rotation, completed after the
    // retired key is gone.
    let pending_first = marked_body(5 * 1024 * 1024, 91);
    let (pending_upload_id, pending_first_etag) = runtime.block_on(async {
        let upload = s3
            .create_multipart_upload()
            .bucket("rotation")
            .key("pending")
            .send()
            .await
            .unwrap();
        let upload_id = upload.upload_id().unwrap().to_owned();
        let part = s3
            .upload_part()
            .bucket("rotation")
            .key("pending")
            .upload_id(&upload_id)
            .part_number(1)
            .body(ByteStream::from(pending_first.clone()))
            .send()
            .await
            .unwrap();
        (upload_id, part.e_tag().unwrap().to_owned())
    });

    // Rotate: a new active key in front, the old one kept; mode 0600.
    let rotated: serde_json::Value = serde_json::from_str(
        cairn_tests::run_cairn(
            Path::new(BINARY),
            &["master-key", "rotate", "--file", &key_file_arg],
        )
        .trim(),
    )
    .unwrap();
    let second_id = rotated["active_key_id"].as_str().unwrap().to_owned();
    assert_ne!(second_id, first_id);
    assert_eq!(rotated["retired_key_ids"], serde_json::json!([first_id]));
    let file_text = std::fs::read_to_string(&key_file).unwrap();
    let lines: Vec<&str> = file_text.lines().collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[1], first_key_hex);
    let second_key_hex = lines[0].to_owned();
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key_file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    // The running gateway picks the file up without a restart.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let shown = master_key_admin(&dev, &["show"]);
        if shown["active_key_id"] == second_id.as_str() {
            assert_eq!(shown["key_ids"], serde_json::json!([second_id, first_id]));
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the gateway never re-read the key file: {shown}"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }

    // New writes use the new key; old objects and old keys still work; a key made now too.
    let bob = dev.create_user(Path::new(BINARY), "bob");
    let rotated_kms = kms_admin(&dev, &["kms", "rotate", &kms_arn]);
    assert_eq!(rotated_kms["current_version"], 2);
    runtime.block_on(async {
        write_generation(&s3, 2, &kms_arn, &mut written).await;
        read_all(&s3, &written).await;
        everyone_signs(&dev, &[alice.clone(), bob.clone()]).await;
    });

    // Re-wrap: the root's and alice's secrets (bob's was sealed by the new key), KMS version 1
    // (version 2 was made under the new key), generation 1's three SSE-S3 versions (two
    // versions of one key and a multipart object; generation 2's three are under the new key).
    let report = master_key_admin(&dev, &["rewrap"]);
    assert_eq!(report["active_key_id"], second_id.as_str(), "{report}");
    assert_eq!(report["access_keys"]["rewrapped"], 2, "{report}");
    assert_eq!(report["access_keys"]["already_active"], 1, "{report}");
    assert_eq!(report["kms_key_versions"]["rewrapped"], 1, "{report}");
    assert_eq!(report["kms_key_versions"]["already_active"], 1, "{report}");
    assert_eq!(report["object_versions"]["rewrapped"], 3, "{report}");
    assert_eq!(report["object_versions"]["already_active"], 3, "{report}");
    assert_eq!(report["multipart_uploads"]["rewrapped"], 1, "{report}");
    for kind in [
        "access_keys",
        "kms_key_versions",
        "object_versions",
        "multipart_uploads",
    ] {
        assert_eq!(report[kind]["failed"], 0, "{report}");
        assert_eq!(report[kind]["changed_meanwhile"], 0, "{report}");
    }
    // Idempotent: a rerun finds everything under the active key.
    let again = master_key_admin(&dev, &["rewrap"]);
    assert_eq!(again["multipart_uploads"]["already_active"], 1, "{again}");
    for kind in [
        "access_keys",
        "kms_key_versions",
        "object_versions",
        "multipart_uploads",
    ] {
        assert_eq!(again[kind]["rewrapped"], 0, "{again}");
        assert_eq!(again[kind]["failed"], 0, "{again}");
    }
    assert_eq!(again["object_versions"]["already_active"], 6, "{again}");
    runtime.block_on(read_all(&s3, &written));

    // Drop the retired key and restart: everything still reads and signs.
    let dropped: serde_json::Value = serde_json::from_str(
        cairn_tests::run_cairn(
            Path::new(BINARY),
            &["master-key", "drop-retired", "--file", &key_file_arg],
        )
        .trim(),
    )
    .unwrap();
    assert_eq!(dropped["removed_key_ids"], serde_json::json!([first_id]));
    assert_eq!(
        std::fs::read_to_string(&key_file).unwrap(),
        format!("{second_key_hex}\n")
    );
    let log_before_restart = dev.process.log();
    dev.assert_no_errors_logged();
    dev = dev.restarted(Path::new(BINARY), root.as_path());
    let shown = master_key_admin(&dev, &["show"]);
    assert_eq!(shown["key_ids"], serde_json::json!([second_id]));
    let s3 = sdk_client::client(&dev);
    runtime.block_on(async {
        // `cairn dev` opens S3 only once its storage nodes listen: no waiting here.
        read_all(&s3, &written).await;
        everyone_signs(&dev, &[alice.clone(), bob.clone()]).await;
        write_generation(&s3, 3, &kms_arn, &mut written).await;
        // The upload started under the retired key continues and completes.
        let pending_second = marked_body(80_000, 92);
        let second = s3
            .upload_part()
            .bucket("rotation")
            .key("pending")
            .upload_id(&pending_upload_id)
            .part_number(2)
            .body(ByteStream::from(pending_second.clone()))
            .send()
            .await
            .unwrap();
        s3.complete_multipart_upload()
            .bucket("rotation")
            .key("pending")
            .upload_id(&pending_upload_id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .parts(
                        CompletedPart::builder()
                            .part_number(1)
                            .e_tag(&pending_first_etag)
                            .build(),
                    )
                    .parts(
                        CompletedPart::builder()
                            .part_number(2)
                            .e_tag(second.e_tag().unwrap())
                            .build(),
                    )
                    .build(),
            )
            .send()
            .await
            .unwrap();
        written.push(Written {
            bucket: "rotation",
            key: "pending".to_owned(),
            version_id: None,
            body: [pending_first.clone(), pending_second].concat(),
            customer_key: false,
        });
        read_all(&s3, &written).await;
    });
    dev.assert_no_errors_logged();

    // Neither master key ever reached a log line.
    let log = format!("{log_before_restart}{}", dev.process.log());
    for key_hex in [&first_key_hex, &second_key_hex] {
        assert!(!log.to_lowercase().contains(key_hex.as_str()));
    }
    let leaked = files_containing(root.as_path(), MARKER);
    assert!(leaked.is_empty(), "plaintext on storage nodes: {leaked:?}");

    // A key file that lacks the key everything is wrapped by (rotated, then the key that
    // wrapped it all removed, as if before a rewrap): `cairn dev` refuses to start and names the
    // missing key by id (the root's stored secret cannot be opened), never showing a key.
    let args = dev.args.clone();
    let (endpoint, meta) = (dev.endpoint, dev.meta);
    drop(dev);
    cairn_tests::wait_until_port_closed(endpoint, std::time::Duration::from_secs(20));
    cairn_tests::wait_until_port_closed(meta, std::time::Duration::from_secs(20));
    cairn_tests::run_cairn(
        Path::new(BINARY),
        &["master-key", "rotate", "--file", &key_file_arg],
    );
    let unrelated_key_hex = std::fs::read_to_string(&key_file)
        .unwrap()
        .lines()
        .next()
        .unwrap()
        .to_owned();
    std::fs::write(&key_file, format!("{unrelated_key_hex}\n")).unwrap();
    let mut refused = cairn_tests::CairnProcess::start(
        Path::new(BINARY),
        &args,
        root.as_path(),
        "dev-without-the-key",
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(90);
    let exit = loop {
        if let Some(exit) = refused.try_exit_code() {
            break exit;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "cairn dev started without the master key that sealed the root's secret"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    };
    assert_ne!(exit, Some(0));
    let refused_log = refused.log();
    assert!(
        refused_log.contains(&format!(
            "wrapped by master key {second_id}, which is not in this master key file"
        )),
        "{refused_log}"
    );
    for key_hex in [&first_key_hex, &second_key_hex, &unrelated_key_hex] {
        assert!(!refused_log.to_lowercase().contains(key_hex.as_str()));
    }
}
