//! Black-box durability tests of `cairn dev` that break real files: bytes flipped inside a
//! storage node's O_DIRECT segment file, behind the node's back.
//!
//! - `a_corrupt_piece_met_on_get_is_reported_and_rebuilt`: the scrubber's interval is an hour, so
//!   only the gateway's report can explain the repair. GET returns the exact bytes (decoded
//!   around the piece), the gateway queues the version in the metadata's suspect queue, and the
//!   healer rebuilds the piece byte-exact within seconds.
//! - `a_corrupt_piece_on_disk_is_found_by_the_scrub_and_rebuilt`: nobody reads the object; the
//!   periodic scrub finds the flipped bytes (the node's CRC32C check on read) and rebuilds them.
//!
//! A read of a piece puts it in the node's hot cache, which then answers ordinary reads even when
//! the disk is damaged; the scrubber reads from disk (`get_from_disk`), so the second test reads
//! the object before the flip on purpose.

#[path = "sdk_client.rs"]
mod sdk_client;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use aws_sdk_s3::primitives::ByteStream;
use cairn_common::ShardId;
use cairn_storage_client::{ClientError, StorageClient};
use cairn_tests::{CairnDev, content};

use sdk_client::client;

const BINARY: &str = env!("CARGO_BIN_EXE_cairn");
/// `cairn dev`'s piece size and scheme (4+2): piece 0 of stripe 0 is the object's first 256 KiB.
const PIECE_BYTES: usize = 256 * 1024;
const OBJECT_BYTES: usize = 2 * 1024 * 1024 + 12_345;
/// Shard-log record layout: 4 KiB-aligned records, a 64-byte header whose bytes 8..40 are the
/// shard id, then the payload.
const RECORD_ALIGN: usize = 4096;
const RECORD_HEADER_BYTES: usize = 64;

/// Where a piece's payload sits on disk.
struct OnDiskPiece {
    node_index: u16,
    segment: PathBuf,
    shard_id: ShardId,
    /// File offset of the payload's first byte.
    payload_offset: u64,
}

/// Finds the record holding piece 0 of stripe 0 of `object` by its bytes (a 64-byte window of
/// the object's start, which only that piece contains) in every node's segment files.
fn find_first_piece(cluster: &Path, object: &[u8]) -> OnDiskPiece {
    let window_offset = 8192;
    let window = &object[window_offset..window_offset + 64];
    let mut found = Vec::new();
    for node_index in 0..6u16 {
        let core = cluster.join(format!("storage-{node_index}")).join("core-0");
        for entry in std::fs::read_dir(&core).unwrap() {
            let segment = entry.unwrap().path();
            if !segment.to_string_lossy().ends_with(".log") {
                continue;
            }
            let bytes = std::fs::read(&segment).unwrap();
            let mut start = 0;
            while let Some(position) = find(&bytes[start..], window) {
                let position = start + position;
                start = position + 1;
                let Some(record_start) = position.checked_sub(window_offset + RECORD_HEADER_BYTES)
                else {
                    continue;
                };
                if record_start % RECORD_ALIGN != 0 {
                    continue;
                }
                let shard_id = ShardId(
                    bytes[record_start + 8..record_start + 40]
                        .try_into()
                        .unwrap(),
                );
                found.push(OnDiskPiece {
                    node_index,
                    segment: segment.clone(),
                    shard_id,
                    payload_offset: (record_start + RECORD_HEADER_BYTES) as u64,
                });
            }
        }
    }
    assert_eq!(found.len(), 1, "the piece is stored exactly once");
    found.pop().unwrap()
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

/// Flips 64 bytes of the piece's payload in the segment file (a normal write: the node's next
/// O_DIRECT read sees it).
fn flip_bytes(piece: &OnDiskPiece) {
    use std::os::unix::fs::FileExt;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&piece.segment)
        .unwrap();
    let offset = piece.payload_offset + 100_000;
    let mut bytes = [0u8; 64];
    file.read_exact_at(&mut bytes, offset).unwrap();
    for byte in &mut bytes {
        *byte ^= 0xA5;
    }
    file.write_all_at(&bytes, offset).unwrap();
    file.sync_all().unwrap();
}

/// A storage-client configuration with a worker identity of `dev`'s CA (internal traffic is
/// mutual TLS).
fn storage_config(dev: &CairnDev) -> cairn_storage_client::ClientConfig {
    let identity = cairn_tls::Identity::load(&cairn_tls::TlsFiles::new(
        dev.worker_identity(Path::new(BINARY)),
    ))
    .unwrap();
    cairn_storage_client::ClientConfig::with_identity(Some(&identity))
}

fn node(dev: &CairnDev, node_index: u16) -> StorageClient {
    StorageClient::connect_with_config(
        SocketAddr::from(([127, 0, 0, 1], dev.storage_base_port() + node_index)),
        storage_config(dev),
    )
    .unwrap()
}

/// Waits until the node serves the piece's original bytes again, from disk.
fn wait_until_rebuilt(dev: &CairnDev, piece: &OnDiskPiece, original: &[u8]) {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let answer = StorageClient::connect_with_config(
            SocketAddr::from(([127, 0, 0, 1], dev.storage_base_port() + piece.node_index)),
            storage_config(dev),
        )
        .and_then(|mut client| client.get_from_disk(piece.shard_id, None));
        match answer {
            Ok(bytes) if bytes == original => return,
            // A node still starting after a restart.
            Err(ClientError::Io(_)) => {}
            Ok(_) => panic!("the node serves different bytes for the piece"),
            Err(ClientError::ChecksumMismatch { .. }) => {}
            Err(error) => panic!("unexpected answer for the piece: {error}"),
        }
        assert!(
            Instant::now() < deadline,
            "the piece was not rebuilt:\n{}",
            dev.process.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Waits for a log line (written a moment after the work it reports).
fn wait_for_log(dev: &CairnDev, text: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !dev.process.log().contains(text) {
        assert!(
            Instant::now() < deadline,
            "no {text:?} in the log:\n{}",
            dev.process.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn assert_still_corrupt(dev: &CairnDev, piece: &OnDiskPiece) {
    assert!(
        matches!(
            node(dev, piece.node_index).get(piece.shard_id, None),
            Err(ClientError::ChecksumMismatch { .. })
        ),
        "the flipped bytes must be visible to the node"
    );
}

/// Creates `bucket` (unless this caller already owns it) and puts `object` under `key`.
fn put_object(dev: &CairnDev, bucket: &str, key: &str, object: &[u8]) {
    use aws_sdk_s3::error::ProvideErrorMetadata;
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let s3 = client(dev);
        if let Err(error) = s3.create_bucket().bucket(bucket).send().await
            && error.code() != Some("BucketAlreadyOwnedByYou")
        {
            panic!("CreateBucket: {error:?}\n{}", dev.process.log());
        }
        if let Err(error) = s3
            .put_object()
            .bucket(bucket)
            .key(key)
            .body(ByteStream::from(object.to_vec()))
            .send()
            .await
        {
            panic!("PutObject: {error:?}\n{}", dev.process.log());
        }
    });
}

fn get_object(dev: &CairnDev, bucket: &str, key: &str) -> Vec<u8> {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let s3 = client(dev);
        let output = match s3.get_object().bucket(bucket).key(key).send().await {
            Ok(output) => output,
            Err(error) => panic!("GetObject: {error:?}\n{}", dev.process.log()),
        };
        match output.body.collect().await {
            Ok(body) => body.into_bytes().to_vec(),
            Err(error) => panic!("GetObject body: {error:?}\n{}", dev.process.log()),
        }
    })
}

/// `cairn dev` with `extra_args` and encryption at rest off: these tests find pieces on disk by
/// their plaintext and count the plaintext's stripes (SSE adds 28 bytes per 64 KiB chunk).
/// Encryption at rest has its own tests (tests/tests/sse.rs).
fn start_unencrypted(data: &Path, extra_args: &[&str]) -> CairnDev {
    let mut args = extra_args.to_vec();
    args.push("--no-default-encryption");
    CairnDev::start_with(Path::new(BINARY), data, &args)
}

#[test]
fn a_corrupt_piece_met_on_get_is_reported_and_rebuilt() {
    let data = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    // One scrub pass at start (before any object exists), the next an hour later.
    let dev = start_unencrypted(data.path(), &["--healer-interval-secs", "3600"]);
    let object = content(7, OBJECT_BYTES);
    put_object(&dev, "suspects", "damaged", &object);

    let piece = find_first_piece(&data.path().join("cluster"), &object);
    flip_bytes(&piece);
    // Nothing repairs it on its own: the next scrub is an hour away and nobody reported it.
    std::thread::sleep(Duration::from_secs(5));
    assert_still_corrupt(&dev, &piece);

    // The GET decodes around the piece and returns the exact bytes...
    assert!(get_object(&dev, "suspects", "damaged") == object);
    // ...and its report makes the healer rebuild the piece within seconds.
    wait_until_rebuilt(&dev, &piece, &object[..PIECE_BYTES]);
    assert_eq!(
        dev.metric("cairn_gateway_suspect_reports_total{outcome=\"queued\"}"),
        1.0
    );
    assert_eq!(
        dev.metric("cairn_gateway_shard_read_errors_total{reason=\"unavailable\"}"),
        1.0
    );
    // The object reads back exactly, now without decoding around anything.
    assert!(get_object(&dev, "suspects", "damaged") == object);
    assert_eq!(
        dev.metric("cairn_gateway_shard_read_errors_total{reason=\"unavailable\"}"),
        1.0
    );
    wait_for_log(&dev, "object healed");
    wait_for_log(&dev, "suspects drained");
    dev.assert_no_errors_logged();
}

#[test]
fn a_corrupt_piece_on_disk_is_found_by_the_scrub_and_rebuilt() {
    let data = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let dev = start_unencrypted(data.path(), &["--healer-interval-secs", "2"]);
    let object = content(11, OBJECT_BYTES);
    put_object(&dev, "scrubbed", "damaged", &object);
    // A GET puts the object's data pieces in the nodes' hot caches before the flip: the scrub
    // must read past them, from disk.
    assert!(get_object(&dev, "scrubbed", "damaged") == object);
    let piece = find_first_piece(&data.path().join("cluster"), &object);
    flip_bytes(&piece);
    let mut cached = node(&dev, piece.node_index);
    assert_eq!(
        cached.get(piece.shard_id, None).unwrap(),
        object[..PIECE_BYTES],
        "the cache answers for the damaged disk"
    );
    // No read goes through the gateway: the scrub alone finds and rebuilds it.
    wait_until_rebuilt(&dev, &piece, &object[..PIECE_BYTES]);
    wait_for_log(&dev, "object healed");
    assert!(get_object(&dev, "scrubbed", "damaged") == object);
    assert_eq!(
        dev.metric("cairn_gateway_suspect_reports_total{outcome=\"queued\"}"),
        0.0
    );
    dev.assert_no_errors_logged();
}

/// Every (node index, shard id) the six nodes hold.
fn all_pieces(dev: &CairnDev) -> std::collections::BTreeSet<(u16, ShardId)> {
    let mut pieces = std::collections::BTreeSet::new();
    for node_index in 0..6u16 {
        let mut client = node(dev, node_index);
        let mut after = None;
        loop {
            let page = client.scan(after, 1000).unwrap();
            pieces.extend(
                page.entries
                    .iter()
                    .map(|entry| (node_index, entry.shard_id)),
            );
            match page.next_after {
                Some(next) => after = Some(next),
                None => break,
            }
        }
    }
    pieces
}

#[test]
fn orphan_pieces_are_removed_after_the_grace_period_and_nothing_else() {
    use std::io::Write;
    let data = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let dev = CairnDev::start_with(
        Path::new(BINARY),
        data.path(),
        &["--healer-interval-secs", "1", "--orphan-grace-secs", "4"],
    );
    let object = content(13, OBJECT_BYTES);
    put_object(&dev, "orphans", "kept", &object);
    let committed = all_pieces(&dev);
    // Three stripes of 4+2; the last one's data (12,345 bytes and the encryption overhead)
    // fits in its first data piece, so its other three data pieces are padding, never written.
    assert_eq!(committed.len(), 2 * 6 + 3, "three stripes of 4+2");

    // A PUT left PREPARING: 1.5 MiB of a declared 3 MiB sent, the connection held open, so the
    // first stripe's six pieces are stored and the record stays PREPARING.
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let presigned = runtime.block_on(async {
        client(&dev)
            .put_object()
            .bucket("orphans")
            .key("pending")
            .presigned(
                aws_sdk_s3::presigning::PresigningConfig::expires_in(Duration::from_secs(600))
                    .unwrap(),
            )
            .await
            .unwrap()
    });
    let path_and_query = presigned.uri().strip_prefix(&dev.url()).unwrap().to_owned();
    let mut pending = std::net::TcpStream::connect(dev.endpoint).unwrap();
    let declared = 3 * 1024 * 1024;
    write!(
        pending,
        "PUT {path_and_query} HTTP/1.1\r\nHost: {}\r\nContent-Length: {declared}\r\n\r\n",
        dev.endpoint
    )
    .unwrap();
    pending.write_all(&content(17, declared / 2)).unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let with_pending = loop {
        let pieces = all_pieces(&dev);
        if pieces.len() == committed.len() + 6 {
            break pieces;
        }
        assert!(
            Instant::now() < deadline,
            "the pending PUT stored {} pieces",
            pieces.len()
        );
        std::thread::sleep(Duration::from_millis(100));
    };

    // A piece no metadata names, written behind the gateway's back.
    let orphan = ShardId::new(
        (5u128 << 64) | 0xDEAD_BEEF,
        1,
        0,
        cairn_common::ShardIndex(0),
    );
    node(&dev, 3).put(orphan, &[0x42; 4096]).unwrap();
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        match node(&dev, 3).get(orphan, None) {
            Err(ClientError::NotFound { .. }) => break,
            Ok(_) => {}
            Err(error) => panic!("unexpected answer for the orphan: {error}"),
        }
        assert!(
            Instant::now() < deadline,
            "the orphan was not removed:\n{}",
            dev.process.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    wait_for_log(&dev, "orphan piece deleted");
    // Let the pass that deleted it finish and a few more run.
    std::thread::sleep(Duration::from_secs(4));
    // Several passes past the grace period later, the committed object's pieces and those of the
    // PREPARING write are all still there (the write is still open: nothing aborted it).
    assert_eq!(all_pieces(&dev), with_pending);
    assert_eq!(dev.metric("cairn_gateway_aborted_writes_total"), 0.0);
    drop(pending);
    assert!(get_object(&dev, "orphans", "kept") == object);
    dev.assert_no_errors_logged();
}

/// A PUT through the SDK carrying `x-cairn-idempotency-token`; answers the version id.
fn put_with_token(dev: &CairnDev, bucket: &str, key: &str, body: &[u8], token: &str) -> String {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let token = token.to_owned();
    runtime.block_on(async {
        let output = client(dev)
            .put_object()
            .bucket(bucket)
            .key(key)
            .body(ByteStream::from(body.to_vec()))
            .customize()
            .mutate_request(move |request| {
                request
                    .headers_mut()
                    .insert("x-cairn-idempotency-token", token.clone());
            })
            .send()
            .await
            .unwrap();
        output.version_id().expect("a versioned bucket").to_owned()
    })
}

fn create_versioned_bucket(dev: &CairnDev, bucket: &str) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(sdk_client::create_versioned_bucket(&client(dev), bucket));
}

fn version_ids(dev: &CairnDev, bucket: &str) -> Vec<String> {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let listing = client(dev)
            .list_object_versions()
            .bucket(bucket)
            .send()
            .await
            .unwrap();
        listing
            .versions()
            .iter()
            .map(|version| version.version_id().unwrap().to_owned())
            .collect()
    })
}

/// Waits until all six storage nodes answer (after a restart).
fn wait_for_nodes(dev: &CairnDev) {
    let deadline = Instant::now() + Duration::from_secs(60);
    for node_index in 0..6u16 {
        let address = SocketAddr::from(([127, 0, 0, 1], dev.storage_base_port() + node_index));
        while StorageClient::connect_with_config(address, storage_config(dev)).is_err() {
            assert!(
                Instant::now() < deadline,
                "storage node {node_index} is not back"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

#[test]
fn a_retry_after_a_crash_after_commit_short_circuits_to_the_same_version() {
    let data = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let dev = CairnDev::start(Path::new(BINARY), data.path());
    create_versioned_bucket(&dev, "tokens");
    let body = content(19, OBJECT_BYTES);
    let first = put_with_token(&dev, "tokens", "once", &body, "token-after-commit");
    let pieces = all_pieces(&dev);
    // The whole process dies after the commit (the client may not have seen the answer).
    let dev = dev.restarted(Path::new(BINARY), data.path());
    wait_for_nodes(&dev);
    let retried = put_with_token(&dev, "tokens", "once", &body, "token-after-commit");
    assert_eq!(retried, first, "the retry answers the committed version");
    assert_eq!(version_ids(&dev, "tokens"), vec![first]);
    assert_eq!(all_pieces(&dev), pieces, "no second copy of the data");
    assert!(get_object(&dev, "tokens", "once") == body);
    dev.assert_no_errors_logged();
}

#[test]
fn a_write_cut_by_a_crash_before_commit_is_cleaned_and_its_retry_succeeds() {
    use std::io::Write;
    let data = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let dev = start_unencrypted(
        data.path(),
        &[
            "--janitor-prepare-timeout-secs",
            "3",
            "--janitor-interval-secs",
            "1",
            "--janitor-garbage-grace-secs",
            "1",
        ],
    );
    create_versioned_bucket(&dev, "tokens");
    let body = content(23, 3 * 1024 * 1024);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let presigned = runtime.block_on(async {
        client(&dev)
            .put_object()
            .bucket("tokens")
            .key("cut")
            .presigned(
                aws_sdk_s3::presigning::PresigningConfig::expires_in(Duration::from_secs(600))
                    .unwrap(),
            )
            .await
            .unwrap()
    });
    let path_and_query = presigned.uri().strip_prefix(&dev.url()).unwrap().to_owned();
    let mut connection = std::net::TcpStream::connect(dev.endpoint).unwrap();
    write!(
        connection,
        "PUT {path_and_query} HTTP/1.1\r\nHost: {}\r\nContent-Length: {}\r\n\
         x-cairn-idempotency-token: token-before-commit\r\n\r\n",
        dev.endpoint,
        body.len()
    )
    .unwrap();
    connection.write_all(&body[..body.len() / 2]).unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while all_pieces(&dev).len() < 6 {
        assert!(Instant::now() < deadline, "the first stripe was not stored");
        std::thread::sleep(Duration::from_millis(100));
    }
    // The process dies mid-body: the record stays PREPARING with a stripe's pieces stored.
    let dev = dev.restarted(Path::new(BINARY), data.path());
    drop(connection);
    wait_for_nodes(&dev);
    // The janitor rolls the write back and deletes its pieces.
    let deadline = Instant::now() + Duration::from_secs(90);
    while !all_pieces(&dev).is_empty() {
        assert!(
            Instant::now() < deadline,
            "the janitor left the cut write's pieces:\n{}",
            dev.process.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(version_ids(&dev, "tokens").is_empty());
    // The client's retry with the same token now writes the object.
    let version = put_with_token(&dev, "tokens", "cut", &body, "token-before-commit");
    assert_eq!(version_ids(&dev, "tokens"), vec![version]);
    assert!(get_object(&dev, "tokens", "cut") == body);
    assert_eq!(all_pieces(&dev).len(), 3 * 6);
    dev.assert_no_errors_logged();
}

/// A tmpfs mounted over a directory for the test's life (root only, like the other disk-full
/// tests).
struct TmpfsMount(PathBuf);

impl TmpfsMount {
    fn new(path: &Path, size_mib: u64) -> TmpfsMount {
        let status = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size_mib}m"), "tmpfs"])
            .arg(path)
            .status()
            .unwrap();
        assert!(status.success(), "mounting a tmpfs needs root");
        TmpfsMount(path.to_owned())
    }
}

impl Drop for TmpfsMount {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
    }
}

fn try_put(dev: &CairnDev, bucket: &str, key: &str, body: &[u8]) -> Result<(), String> {
    use aws_sdk_s3::error::ProvideErrorMetadata;
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        client(dev)
            .put_object()
            .bucket(bucket)
            .key(key)
            .body(ByteStream::from(body.to_vec()))
            .send()
            .await
            .map(|_| ())
            .map_err(|error| error.code().unwrap_or("no code").to_owned())
    })
}

/// Fills the file system at `path` with a file of `0x11` bytes until less than 1% of it is
/// free (or a write fails), and returns the file's path.
fn fill_file_system(path: &Path) -> PathBuf {
    use std::io::Write;
    let filler_path = path.join("filler");
    let mut filler = std::fs::File::create(&filler_path).unwrap();
    let chunk = vec![0x11u8; 4 << 20];
    loop {
        let stat = nix::sys::statvfs::statvfs(path).unwrap();
        let total = stat.blocks() as u64 * stat.fragment_size() as u64;
        let available = stat.blocks_available() as u64 * stat.fragment_size() as u64;
        if available < total / 100 || filler.write_all(&chunk).is_err() {
            break;
        }
    }
    filler_path
}

#[test]
fn file_systems_filled_by_other_files_mark_their_nodes_full() {
    let data = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    // Node 0 has a disk of its own, nodes 1-5 share another; the metadata replica and the rest
    // of the dev's state stay on the real file system, as a metadata server's disk would. Each
    // storage directory is a link into its disk. The mounts are declared before `dev`, dropped
    // after it: the process is gone before the unmount.
    let cluster = data.path().join("cluster");
    std::fs::create_dir(&cluster).unwrap();
    let disks = [data.path().join("disk-a"), data.path().join("disk-b")];
    // Each shard log preallocates a 128 MiB segment: the disks hold those and some room.
    let _mounts: Vec<TmpfsMount> = disks
        .iter()
        .zip([256, 1024])
        .map(|(disk, size_mib)| {
            std::fs::create_dir(disk).unwrap();
            TmpfsMount::new(disk, size_mib)
        })
        .collect();
    for node in 0..6 {
        let disk = &disks[usize::from(node != 0)];
        let target = disk.join(format!("storage-{node}"));
        std::fs::create_dir(&target).unwrap();
        std::os::unix::fs::symlink(&target, cluster.join(format!("storage-{node}"))).unwrap();
    }
    let dev = CairnDev::start(Path::new(BINARY), data.path());
    let object = content(29, OBJECT_BYTES);
    put_object(&dev, "full", "before", &object);

    // Another file takes node 0's space: the shard logs themselves stay small, so only the file
    // system's own figure (statvfs) can tell the registry the node is full. Writes go on with
    // the other five nodes (k + 1 pieces of 4+2, the AZ rule kept), whether a write meets the
    // full disk itself (its piece has no alternate) or the registry already skips the node.
    let filler_a = fill_file_system(&disks[0]);
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut attempt = 0;
    loop {
        attempt += 1;
        let key = format!("one-full-{attempt}");
        let before = all_pieces(&dev);
        put_object(&dev, "full", &key, &object);
        assert!(get_object(&dev, "full", &key) == object);
        let written: Vec<u16> = all_pieces(&dev)
            .difference(&before)
            .map(|(node, _)| *node)
            .collect();
        if attempt > 3 && !written.contains(&0) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "writes still go to the full node 0: {written:?}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }

    // The other disk full too: within a few heartbeats the gateway refuses writes with a clear
    // S3 error instead of trying the nodes.
    let filler_b = fill_file_system(&disks[1]);
    let deadline = Instant::now() + Duration::from_secs(60);
    let code = loop {
        attempt += 1;
        match try_put(&dev, "full", &format!("small-{attempt}"), &[7u8; 1024]) {
            Ok(()) => {}
            Err(code) => break code,
        }
        assert!(
            Instant::now() < deadline,
            "writes still accepted on full nodes"
        );
        std::thread::sleep(Duration::from_millis(500));
    };
    assert_eq!(code, "ServiceUnavailable", "{}", dev.process.log());
    assert!(get_object(&dev, "full", "before") == object);

    // Space back: writes are accepted again.
    std::fs::remove_file(&filler_a).unwrap();
    std::fs::remove_file(&filler_b).unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while try_put(&dev, "full", "after", &object).is_err() {
        assert!(
            Instant::now() < deadline,
            "writes refused after space returned"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    assert!(get_object(&dev, "full", "after") == object);
    dev.assert_no_errors_logged();
}

/// The metadata replica's disk filled by another file: new writes are refused at once with a
/// clear S3 error (the replica's disk reserve, `cairn_raft::disk`), reads go on, and once the
/// space is back writes are accepted again by the same process: no group stopped, nothing
/// written before was lost.
#[test]
fn a_full_metadata_disk_refuses_writes_keeps_reads_and_recovers_without_a_restart() {
    let data = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    // The storage nodes stay on the real file system; `meta` (every group's LMDB) is a link
    // into a disk of its own. The mount is declared before `dev`, dropped after it.
    let cluster = data.path().join("cluster");
    std::fs::create_dir(&cluster).unwrap();
    let disk = data.path().join("meta-disk");
    std::fs::create_dir(&disk).unwrap();
    let _mount = TmpfsMount::new(&disk, 256);
    std::fs::create_dir(disk.join("meta")).unwrap();
    std::os::unix::fs::symlink(disk.join("meta"), cluster.join("meta")).unwrap();
    let mut dev = CairnDev::start(Path::new(BINARY), data.path());
    let object = content(31, OBJECT_BYTES);
    put_object(&dev, "meta-full", "before", &object);

    // Less than 1 % of 256 MiB free is below the 64 MiB reserve: within the reserve's check
    // interval (a second) writes are refused, each at once rather than after a timeout.
    let filler = fill_file_system(&disk);
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut attempt = 0;
    let (code, refused_in) = loop {
        attempt += 1;
        let started = Instant::now();
        match try_put(
            &dev,
            "meta-full",
            &format!("during-{attempt}"),
            &[5u8; 4096],
        ) {
            Ok(()) => {}
            Err(code) => break (code, started.elapsed()),
        }
        assert!(
            Instant::now() < deadline,
            "writes still accepted on a full metadata disk"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(code, "ServiceUnavailable", "{}", dev.process.log());
    assert!(
        refused_in < Duration::from_secs(5),
        "the refusal took {refused_in:?}: it waited instead of refusing"
    );
    assert!(get_object(&dev, "meta-full", "before") == object);
    assert!(
        dev.process
            .log()
            .contains("metadata disk below its reserve"),
        "the replica did not say why it refuses writes"
    );

    // Space back: the same process accepts writes again, and everything reads back.
    std::fs::remove_file(&filler).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while try_put(&dev, "meta-full", "after", &object).is_err() {
        assert!(
            Instant::now() < deadline,
            "writes refused after space returned\n{}",
            dev.process.log()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    assert!(get_object(&dev, "meta-full", "after") == object);
    assert!(get_object(&dev, "meta-full", "before") == object);
    assert_eq!(dev.process.try_exit_code(), None, "cairn dev exited");
    dev.assert_no_errors_logged();
}
