//! Black-box test of the scrubber/healer inside `cairn dev`: a shard piece deleted behind the
//! gateway's back and another overwritten with wrong bytes (which the node itself cannot tell,
//! its own checksum being consistent) are both found and rebuilt from the other pieces, byte for
//! byte, while every object keeps reading back exactly.

use cairn_storage_client::StorageClient;
use cairn_tests::CairnDev;
use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

const BINARY: &str = env!("CARGO_BIN_EXE_cairn");

/// A storage-client configuration with a worker identity of `dev`'s CA (internal traffic is
/// mutual TLS).
fn storage_config(dev: &CairnDev) -> cairn_storage_client::ClientConfig {
    let identity = cairn_tls::Identity::load(&cairn_tls::TlsFiles::new(
        dev.worker_identity(Path::new(BINARY)),
    ))
    .unwrap();
    cairn_storage_client::ClientConfig::with_identity(Some(&identity))
}

#[test]
fn deleted_and_corrupted_pieces_are_rebuilt_in_place() {
    let data = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let dev = CairnDev::start_with(
        Path::new(BINARY),
        data.path(),
        &["--healer-interval-secs", "1"],
    );
    let endpoint = dev.endpoint;
    let storage_base_port = dev.storage_base_port();
    let manifest = data.path().join("manifest").display().to_string();
    let load = |mode: &[&str]| {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/cluster_load.py");
        let output = Command::new("python3")
            .arg(script)
            .arg(format!("http://{endpoint}"))
            .args([&dev.access_key, &dev.secret_key])
            .args(mode)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{mode:?}: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    };
    load(&["put", "heal-bucket", "7", &manifest]);

    let config = storage_config(&dev);
    let node = |index: u16| {
        StorageClient::connect_with_config(
            SocketAddr::from(([127, 0, 0, 1], storage_base_port + index)),
            config.clone(),
        )
        .unwrap()
    };
    // The largest piece on nodes 0 and 1 (a full 256 KiB piece of a multi-MiB object).
    let largest = |index: u16| {
        let page = node(index).scan(None, 1024).unwrap();
        page.entries
            .iter()
            .max_by_key(|entry| entry.length)
            .unwrap()
            .shard_id
    };
    let (deleted, corrupted) = (largest(0), largest(1));
    let original_deleted = node(0).get(deleted, None).unwrap();
    let original_corrupted = node(1).get(corrupted, None).unwrap();
    assert!(node(0).delete(deleted).unwrap());
    node(1)
        .put(corrupted, &vec![0x5A; original_corrupted.len()])
        .unwrap();

    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let restored = node(0).get(deleted, None).ok() == Some(original_deleted.clone());
        let repaired = node(1).get(corrupted, None).ok() == Some(original_corrupted.clone());
        if restored && repaired {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not healed (restored {restored}, repaired {repaired}):\n{}",
            dev.process.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    load(&["verify", "heal-bucket", &manifest]);
    let log = dev.process.log();
    assert!(log.contains("object healed"), "{log}");
    let errors = dev.process.error_lines();
    assert!(
        errors.is_empty(),
        "unexpected ERROR lines:\n{}",
        errors.join("\n")
    );
}
