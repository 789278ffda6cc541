//! Black-box test of the scrubber/healer inside `cairn dev`: a shard piece deleted behind the
//! gateway's back and another overwritten with wrong bytes (which the node itself cannot tell,
//! its own checksum being consistent) are both found and rebuilt from the other pieces, byte for
//! byte, while every object keeps reading back exactly. A small object is stored in small pieces
//! (its own piece size, not the configured 256 KiB) and reads, range-reads and heals the same way;
//! its padding pieces (data pieces wholly past its data) are never written, and a lost data piece
//! is rebuilt from parity and padding.

#[allow(dead_code)]
mod sdk_client;

use aws_sdk_s3::primitives::ByteStream;
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

/// A `cairn dev` whose healer passes every second, with its data directory (dropped after it).
fn start_dev() -> (tempfile::TempDir, CairnDev) {
    let data = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let dev = CairnDev::start_with(
        Path::new(BINARY),
        data.path(),
        &["--healer-interval-secs", "1"],
    );
    (data, dev)
}

/// A connection to storage node `index` of `dev`.
fn node_client(
    dev: &CairnDev,
    config: &cairn_storage_client::ClientConfig,
    index: u16,
) -> StorageClient {
    StorageClient::connect_with_config(
        SocketAddr::from(([127, 0, 0, 1], dev.storage_base_port() + index)),
        config.clone(),
    )
    .unwrap()
}

/// Every piece on the six storage nodes: (node index, shard id, stored length).
fn all_pieces(
    dev: &CairnDev,
    config: &cairn_storage_client::ClientConfig,
) -> Vec<(u16, cairn_common::ShardId, u64)> {
    (0..6)
        .flat_map(|index| {
            node_client(dev, config, index)
                .scan(None, 1024)
                .unwrap()
                .entries
                .into_iter()
                .map(move |entry| (index, entry.shard_id, entry.length))
        })
        .collect()
}

/// GET `bucket/key` through the SDK, with a `Range` header when given.
fn get_object(
    runtime: &tokio::runtime::Runtime,
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    range: Option<&str>,
) -> Vec<u8> {
    runtime.block_on(async {
        let request = s3.get_object().bucket(bucket).key(key);
        let request = match range {
            Some(range) => request.range(range),
            None => request,
        };
        let output = request.send().await.unwrap();
        output.body.collect().await.unwrap().into_bytes().to_vec()
    })
}

#[test]
fn deleted_and_corrupted_pieces_are_rebuilt_in_place() {
    let (data, dev) = start_dev();
    let endpoint = dev.endpoint;
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
    let node = |index: u16| node_client(&dev, &config, index);
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
    dev.assert_no_errors_logged();
}

/// A 20 KiB object in 4+2 fits one stripe of 8 KiB pieces: no piece on any node is larger
/// (with the configured 256 KiB pieces its first data piece and both parity pieces would hold
/// 20 KiB each), and its fourth data piece, wholly past the data, is not stored at all. A lost
/// piece is read around, then rebuilt byte for byte at that size.
#[test]
fn small_objects_are_stored_in_small_pieces_that_read_and_heal() {
    const OBJECT_BYTES: usize = 20 * 1024;
    const PIECE_BYTES: u64 = 8 * 1024;
    let (_data, dev) = start_dev();
    let body = cairn_tests::content(20, OBJECT_BYTES);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let s3 = sdk_client::client(&dev);
    let get_key = |key: &str, range: Option<&str>| get_object(&runtime, &s3, "small", key, range);
    let get = |range: Option<&str>| get_key("twenty", range);
    runtime.block_on(async {
        s3.create_bucket().bucket("small").send().await.unwrap();
        s3.put_object()
            .bucket("small")
            .key("twenty")
            .body(ByteStream::from(body.clone()))
            .send()
            .await
            .unwrap();
        // A copy is stored with its own (equally small) piece size.
        s3.copy_object()
            .bucket("small")
            .key("copy")
            .copy_source("small/twenty")
            .send()
            .await
            .unwrap();
    });
    assert_eq!(get_key("copy", None), body);

    let config = storage_config(&dev);
    let node = |index: u16| node_client(&dev, &config, index);
    let pieces = all_pieces(&dev, &config);
    assert!(
        pieces.iter().all(|(_, _, length)| *length <= PIECE_BYTES),
        "a piece larger than {PIECE_BYTES} bytes: {pieces:?}"
    );
    // Per object, data pieces 0 and 1 and parity pieces 4 and 5 are full (8 KiB each), data
    // piece 2 holds the last 4 KiB and data piece 3 is padding (wholly past the data, so never
    // written). Nodes store a piece without its trailing zero bytes, so a full piece whose last
    // bytes happen to be zero is stored a few bytes short (one byte in 256 pieces, 64 bytes
    // practically never): "full" means within 64 bytes of the piece size.
    let is_full = |length: u64| length > PIECE_BYTES - 64;
    let mut object_ids: Vec<u128> = pieces
        .iter()
        .map(|(_, shard_id, _)| shard_id.object_id())
        .collect();
    object_ids.sort_unstable();
    object_ids.dedup();
    assert_eq!(object_ids.len(), 2, "pieces of two objects: {pieces:?}");
    for object_id in object_ids {
        let mut shapes: Vec<(u16, bool)> = pieces
            .iter()
            .filter(|(_, shard_id, _)| shard_id.object_id() == object_id)
            .map(|(_, shard_id, length)| (shard_id.shard_index().0, is_full(*length)))
            .collect();
        shapes.sort_unstable();
        assert_eq!(
            shapes,
            [(0, true), (1, true), (2, false), (4, true), (5, true)],
            "object {object_id}: full data pieces 0 and 1, a partial 2, no 3, full parity pieces \
             4 and 5: {pieces:?}"
        );
    }
    assert_eq!(get(None), body);
    assert_eq!(get(Some("bytes=8000-12499")), body[8000..12500]);
    assert_eq!(get(Some("bytes=-100")), body[OBJECT_BYTES - 100..]);

    // Each object loses a full data piece: reads decode around it (from parity and the
    // unwritten padding piece), the healer rebuilds it.
    let mut lost: Vec<(u16, cairn_common::ShardId)> = Vec::new();
    for (index, shard_id, length) in &pieces {
        if is_full(*length)
            && shard_id.shard_index().0 < 2
            && !lost
                .iter()
                .any(|(_, other)| other.object_id() == shard_id.object_id())
        {
            lost.push((*index, *shard_id));
        }
    }
    assert_eq!(lost.len(), 2, "{pieces:?}");
    let originals: Vec<Vec<u8>> = lost
        .iter()
        .map(|(index, shard_id)| node(*index).get(*shard_id, None).unwrap())
        .collect();
    for (index, shard_id) in &lost {
        assert!(node(*index).delete(*shard_id).unwrap());
    }
    assert_eq!(get(None), body);
    assert_eq!(get(Some("bytes=4096-16383")), body[4096..16384]);
    assert_eq!(get_key("copy", None), body);
    let deadline = Instant::now() + Duration::from_secs(60);
    while lost
        .iter()
        .zip(&originals)
        .any(|((index, shard_id), original)| {
            node(*index).get(*shard_id, None).ok().as_ref() != Some(original)
        })
    {
        assert!(
            Instant::now() < deadline,
            "not healed:\n{}",
            dev.process.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(get(None), body);
    assert_eq!(get(Some("bytes=8192-")), body[8192..]);
    assert_eq!(get_key("copy", Some("bytes=100-8291")), body[100..8292]);
    dev.assert_no_errors_logged();
}

/// A 4 KiB object (4,124 bytes stored with SSE-S3) is one 8 KiB data piece and two parity
/// pieces: its three other data pieces are padding, never written. With the data piece gone
/// the object still reads back exactly (decoded from the parity pieces and the known-zero
/// padding) and the healer rebuilds the piece byte for byte, without writing any padding.
#[test]
fn a_four_kib_object_is_one_data_piece_that_parity_and_padding_rebuild() {
    const OBJECT_BYTES: usize = 4096;
    let (_data, dev) = start_dev();
    let body = cairn_tests::content(4, OBJECT_BYTES);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let s3 = sdk_client::client(&dev);
    let get = |range: Option<&str>| get_object(&runtime, &s3, "tiny", "four", range);
    runtime.block_on(async {
        s3.create_bucket().bucket("tiny").send().await.unwrap();
        s3.put_object()
            .bucket("tiny")
            .key("four")
            .body(ByteStream::from(body.clone()))
            .send()
            .await
            .unwrap();
    });
    let config = storage_config(&dev);
    let node = |index: u16| node_client(&dev, &config, index);
    let pieces = all_pieces(&dev, &config);
    let mut indexes: Vec<u16> = pieces
        .iter()
        .map(|(_, shard_id, _)| shard_id.shard_index().0)
        .collect();
    indexes.sort_unstable();
    assert_eq!(indexes, [0, 4, 5], "one data piece, two parity: {pieces:?}");
    // SSE-S3's chunk overhead makes 4,124 bytes; parity of a single data piece is as long.
    for (_, _, length) in &pieces {
        assert!((4097..=4124).contains(length), "{pieces:?}");
    }
    assert_eq!(get(None), body);

    let (index, data_piece, _) = *pieces
        .iter()
        .find(|(_, shard_id, _)| shard_id.shard_index().0 == 0)
        .unwrap();
    let original = node(index).get(data_piece, None).unwrap();
    assert!(node(index).delete(data_piece).unwrap());
    assert_eq!(get(None), body);
    assert_eq!(get(Some("bytes=4000-")), body[4000..]);
    let deadline = Instant::now() + Duration::from_secs(60);
    while node(index).get(data_piece, None).ok().as_ref() != Some(&original) {
        assert!(
            Instant::now() < deadline,
            "not healed:\n{}",
            dev.process.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(
        all_pieces(&dev, &config).len(),
        3,
        "the healer wrote no padding piece"
    );
    assert_eq!(get(None), body);
    dev.assert_no_errors_logged();
}
