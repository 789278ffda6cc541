//! Secrets hygiene (issue 11): a workload that handles every kind of secret — the root keys, a
//! user's keys created through the admin API, SSE-C keys (right and wrong, copies between keys,
//! multipart), SSE-S3 — runs against a `cairn dev` logging at debug level; then every log line
//! is searched for the secrets in every form they travel in (text, hex, base64). The root secret
//! may appear only in the banner `cairn dev` prints on purpose (`secret key: ...`); nothing else
//! may.

#[path = "sdk_client.rs"]
mod sdk_client;

use std::path::{Path, PathBuf};

use base64::Engine;
use cairn_tests::{CairnDev, run_python_script};

const BINARY: &str = env!("CARGO_BIN_EXE_cairn");

/// Every text form a 32-byte key can take in a log line.
fn key_forms(key: &[u8]) -> Vec<String> {
    let engines = [
        base64::engine::general_purpose::STANDARD,
        base64::engine::general_purpose::STANDARD_NO_PAD,
        base64::engine::general_purpose::URL_SAFE_NO_PAD,
    ];
    let mut forms: Vec<String> = engines.iter().map(|engine| engine.encode(key)).collect();
    let hex: String = key.iter().map(|byte| format!("{byte:02x}")).collect();
    forms.push(hex.to_ascii_uppercase());
    forms.push(hex);
    // Rust's `{:?}` of a byte array: `[12, 200, ...]`.
    forms.push(format!("{key:?}"));
    forms
}

#[test]
fn no_secret_reaches_the_logs() {
    let dir = tempfile::tempdir().unwrap();
    let dev = debug_logging_dev(dir.path());
    let (user_key, user_secret) = dev.create_user(Path::new(BINARY), "hygiene");
    let first_key = [0x5au8; 32]
        .iter()
        .enumerate()
        .map(|(index, byte)| byte ^ index as u8)
        .collect::<Vec<u8>>();
    let second_key: Vec<u8> = (0..32u8).map(|byte| byte.wrapping_mul(37) ^ 0xc3).collect();
    let engine = base64::engine::general_purpose::STANDARD;
    run_python_script(
        "secrets_workload.py",
        &[
            dev.url(),
            user_key.clone(),
            user_secret.clone(),
            engine.encode(&first_key),
            engine.encode(&second_key),
        ],
    );
    // A master-key rotation and a rewrap (of the user's and root's secrets and the workload's
    // objects) under debug logging too.
    let key_file = dir.path().join("cluster").join("master-key");
    let rotated = cairn_tests::run_cairn(
        Path::new(BINARY),
        &["master-key", "rotate", "--file", key_file.to_str().unwrap()],
    );
    let rotated: serde_json::Value = serde_json::from_str(rotated.trim()).unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let (ok, stdout, stderr) = dev.admin(
            Path::new(BINARY),
            &dev.access_key,
            &dev.secret_key,
            &["master-key", "rewrap"],
        );
        assert!(ok, "cairn admin master-key rewrap: {stderr}");
        let report: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
        if report["active_key_id"] == rotated["active_key_id"] {
            assert!(
                report["access_keys"]["rewrapped"].as_u64().unwrap() >= 2,
                "{report}"
            );
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the gateway never re-read the key file"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let master_keys: Vec<Vec<u8>> = std::fs::read_to_string(&key_file)
        .expect("cairn dev's master key file")
        .lines()
        .map(|line| {
            (0..line.len())
                .step_by(2)
                .map(|at| u8::from_str_radix(&line[at..at + 2], 16).unwrap())
                .collect()
        })
        .collect();
    assert_eq!(master_keys.len(), 2);
    assert!(master_keys.iter().all(|key| key.len() == 32));

    let log = dev.process.log();
    // The workload ran with debug logging on (the test would prove nothing otherwise).
    assert!(log.contains("DEBUG"), "no debug lines logged");
    let mut secrets: Vec<(String, String)> = vec![("user secret".into(), user_secret.clone())];
    for (name, key) in [
        ("first SSE-C key", &first_key),
        ("second SSE-C key", &second_key),
        ("retired master key", &master_keys[1]),
        ("active master key", &master_keys[0]),
    ] {
        for form in key_forms(key) {
            secrets.push((name.to_owned(), form));
        }
    }
    let mut leaks = Vec::new();
    for line in log.lines() {
        for (name, secret) in &secrets {
            if line.contains(secret.as_str()) {
                leaks.push(format!("{name}: {line}"));
            }
        }
        if line.contains(dev.secret_key.as_str()) && !line.trim().starts_with("secret key:") {
            leaks.push(format!("root secret: {line}"));
        }
    }
    assert!(
        leaks.is_empty(),
        "secrets in the log:\n{}",
        leaks.join("\n")
    );
    dev.assert_no_errors_logged();
}

/// Every file under `dir`, storage-node directories (which hold only object pieces) skipped.
fn metadata_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if path.is_dir() {
            if !name.starts_with("storage-") {
                files.extend(metadata_files(&path));
            }
        } else {
            files.push(path);
        }
    }
    files
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle)
}

/// Lists the caller's buckets with `access_key`; the error code on failure.
fn list_buckets(dev: &CairnDev, access_key: &str, secret_key: &str) -> Result<usize, String> {
    use aws_sdk_s3::error::ProvideErrorMetadata;
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        sdk_client::client_with_keys(dev, access_key, secret_key)
            .list_buckets()
            .send()
            .await
            .map(|output| output.buckets().len())
            .map_err(|error| error.code().unwrap_or("no code").to_owned())
    })
}

#[test]
fn access_key_secrets_are_sealed_in_the_metadata_files() {
    let dir = tempfile::tempdir().unwrap();
    let dev = CairnDev::start(Path::new(BINARY), dir.path());
    let (user_key, user_secret) = dev.create_user(Path::new(BINARY), "sealed");
    assert_eq!(list_buckets(&dev, &user_key, &user_secret), Ok(0));
    // A wrong secret for the same key is still refused.
    assert_eq!(
        list_buckets(&dev, &user_key, &user_secret.to_lowercase()).unwrap_err(),
        "SignatureDoesNotMatch"
    );
    let data = dev.data_dir();
    let root_secret = dev.secret_key.clone();
    // The Raft log, the state machine's LMDB and the snapshots hold no secret; the root secret is
    // only in the credentials file written for the operator.
    let check = |data: &Path| {
        let files = metadata_files(data);
        assert!(
            files.iter().any(|file| file.starts_with(data.join("meta"))),
            "no metadata files under {}",
            data.display()
        );
        for file in files {
            let bytes = std::fs::read(&file).unwrap();
            assert!(
                !contains(&bytes, user_secret.as_bytes()),
                "the user's secret is in {}",
                file.display()
            );
            if file.file_name().unwrap() != "root-credentials" {
                assert!(
                    !contains(&bytes, root_secret.as_bytes()),
                    "the root secret is in {}",
                    file.display()
                );
            }
        }
    };
    check(&data);
    // After a restart the sealed secrets open again with the master key file.
    let dev = dev.restarted(Path::new(BINARY), dir.path());
    assert_eq!(list_buckets(&dev, &user_key, &user_secret), Ok(0));
    assert_eq!(list_buckets(&dev, &dev.access_key, &dev.secret_key), Ok(0));
    check(&data);
    dev.assert_no_errors_logged();
}

/// The plaintext material of every version of `key_id` found wrapped in `files` (opened with the
/// master key, exactly as a gateway does).
fn kms_materials_in(
    files: &[PathBuf],
    master: &cairn_sse::MasterKey,
    key_id: &str,
    versions: u32,
) -> Vec<(u32, cairn_sse::KmsKeyMaterial)> {
    let wrapped_bytes = cairn_sse::kms::WRAPPED_MATERIAL_BYTES;
    let mut prefix = vec![1u8];
    prefix.extend(
        (0..16)
            .step_by(2)
            .map(|at| u8::from_str_radix(&master.key_id()[at..at + 2], 16).unwrap()),
    );
    let ring = cairn_sse::MasterKeyRing::single(master.clone());
    let mut found: Vec<(u32, cairn_sse::KmsKeyMaterial)> = Vec::new();
    for file in files {
        let bytes = std::fs::read(file).unwrap();
        for start in 0..bytes.len().saturating_sub(wrapped_bytes) {
            if !bytes[start..].starts_with(&prefix) {
                continue;
            }
            let candidate = &bytes[start..start + wrapped_bytes];
            for version in 1..=versions {
                if let Ok(material) =
                    cairn_sse::open_kms_material(&ring, key_id, version, candidate)
                    && !found.iter().any(|(seen, _)| *seen == version)
                {
                    found.push((version, material));
                }
            }
        }
    }
    found
}

#[test]
fn kms_key_material_is_wrapped_in_the_metadata_files_and_absent_from_logs() {
    let dir = tempfile::tempdir().unwrap();
    let dev = debug_logging_dev(dir.path());
    let admin = |args: &[&str]| {
        let (ok, stdout, stderr) =
            dev.admin(Path::new(BINARY), &dev.access_key, &dev.secret_key, args);
        assert!(ok, "{stderr}");
        serde_json::from_str::<serde_json::Value>(stdout.trim()).unwrap()
    };
    let created = admin(&["kms", "create", "--alias", "alias/hygiene"]);
    let key_id = created["key_id"].as_str().unwrap().to_owned();
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        use aws_sdk_s3::primitives::ByteStream;
        use aws_sdk_s3::types::ServerSideEncryption;
        let s3 = sdk_client::client(&dev);
        s3.create_bucket()
            .bucket("kms-hygiene")
            .send()
            .await
            .unwrap();
        for (index, object) in ["before", "after"].iter().enumerate() {
            if index == 1 {
                admin(&["kms", "rotate", "alias/hygiene"]);
            }
            s3.put_object()
                .bucket("kms-hygiene")
                .key(*object)
                .server_side_encryption(ServerSideEncryption::AwsKms)
                .ssekms_key_id("alias/hygiene")
                .body(ByteStream::from(vec![7u8; 70_000]))
                .send()
                .await
                .unwrap();
        }
        for object in ["before", "after"] {
            let got = s3
                .get_object()
                .bucket("kms-hygiene")
                .key(object)
                .send()
                .await
                .unwrap();
            assert_eq!(got.body.collect().await.unwrap().into_bytes().len(), 70_000);
        }
    });
    let master = cairn_sse::MasterKey::load(&dir.path().join("cluster").join("master-key"))
        .expect("cairn dev's master key file");
    let files = metadata_files(&dev.data_dir());
    // Both versions are in the metadata service, wrapped: the master key opens them (so the scan
    // below looks for the right bytes) ...
    let materials = kms_materials_in(&files, &master, &key_id, 2);
    assert_eq!(
        materials.len(),
        2,
        "wrapped versions found: {}",
        materials.len()
    );
    let log = dev.process.log();
    assert!(log.contains("DEBUG"), "no debug lines logged");
    for (version, material) in &materials {
        // ... and their plaintext is in no metadata file and no log line.
        for file in &files {
            let bytes = std::fs::read(file).unwrap();
            assert!(
                !contains(&bytes, material.expose_bytes()),
                "version {version}'s material is in {}",
                file.display()
            );
        }
        for form in key_forms(material.expose_bytes()) {
            assert!(
                !log.contains(&form),
                "version {version}'s material is in the log"
            );
        }
    }
    dev.assert_no_errors_logged();
}

/// A `cairn dev` logging at debug level, so every secret that could leak has a chance to.
fn debug_logging_dev(dir: &Path) -> CairnDev {
    CairnDev::start_with_env(Path::new(BINARY), dir, &[], &[("CAIRN_LOG", "debug")])
}
