//! Black-box tests of `cairn storage`: a real node process on 127.0.0.1 driven by the blocking
//! storage client over the flatbuffers RPC.

use cairn_common::{ShardId, ShardIndex};
use cairn_storage_client::{ByteRange, ClientConfig, ClientError, StorageClient};
use cairn_tests::{
    CairnProcess, SmallFileSystem, TestPki, content, forward, free_address, non_loopback_address,
    wait_for_listener, wait_until_port_closed,
};
use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const BINARY: &str = env!("CARGO_BIN_EXE_cairn");

/// One CA for this test binary: nodes run as `storage-test`, clients as `gateway-test`.
fn pki() -> &'static TestPki {
    static PKI: std::sync::OnceLock<TestPki> = std::sync::OnceLock::new();
    PKI.get_or_init(|| {
        let root = tempfile::tempdir().unwrap().keep();
        let pki = TestPki::create(Path::new(BINARY), &root);
        pki.issue("storage-test", "storage");
        pki.issue("gateway-test", "gateway");
        pki
    })
}

/// The node's command-line identity.
fn node_tls_args() -> Vec<String> {
    pki().role_args("storage-test", "storage")
}

fn client_identity() -> Arc<cairn_tls::Identity> {
    cairn_tls::Identity::load(&cairn_tls::TlsFiles::new(
        pki().issue("gateway-test", "gateway"),
    ))
    .unwrap()
}

fn client_config() -> ClientConfig {
    ClientConfig::with_identity(Some(&client_identity()))
}

/// A mutual-TLS client of the node at `address`.
fn connect(address: impl std::net::ToSocketAddrs) -> Result<StorageClient, ClientError> {
    StorageClient::connect_with_config(address, client_config())
}

/// A byte stream to a node, for sending malformed frames.
trait RawStream: Read + Write {}
impl<T: Read + Write> RawStream for T {}

/// Raw byte streams to the node at a loopback `address` (for sending malformed frames): one
/// that stays in TLS (its client offers no ALPN) and one the node switched to plaintext after
/// the handshake.
fn raw_streams(address: SocketAddr) -> Vec<Box<dyn RawStream>> {
    let connect = |offer_plaintext: bool| {
        let socket = TcpStream::connect(address).unwrap();
        socket
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let mut config = (*client_identity().client_config()).clone();
        if !offer_plaintext {
            config.alpn_protocols.clear();
        }
        let session =
            rustls::ClientConnection::new(Arc::new(config), cairn_tls::Role::Storage.server_name())
                .unwrap();
        let mut stream = rustls::StreamOwned::new(session, socket);
        while stream.conn.is_handshaking() {
            stream.conn.complete_io(&mut stream.sock).unwrap();
        }
        assert_eq!(
            cairn_tls::selects_loopback_plaintext(stream.conn.alpn_protocol()),
            offer_plaintext
        );
        if !offer_plaintext {
            return Box::new(stream) as Box<dyn RawStream>;
        }
        let mut ack = [0u8; cairn_tls::LOOPBACK_PLAINTEXT_ACK.len()];
        stream.read_exact(&mut ack).unwrap();
        assert_eq!(&ack, cairn_tls::LOOPBACK_PLAINTEXT_ACK);
        Box::new(stream.sock) as Box<dyn RawStream>
    };
    vec![connect(false), connect(true)]
}

struct Node {
    process: CairnProcess,
    address: SocketAddr,
    data: PathBuf,
    extra_args: Vec<String>,
    log_dir: PathBuf,
}

impl Node {
    fn start(data: &Path, log_dir: &Path, extra_args: &[&str]) -> Node {
        let address = free_address();
        let extra_args: Vec<String> = extra_args.iter().map(|arg| arg.to_string()).collect();
        let process = Self::spawn(address, data, log_dir, &extra_args);
        let mut node = Node {
            process,
            address,
            data: data.to_owned(),
            extra_args,
            log_dir: log_dir.to_owned(),
        };
        node.wait_until_ready();
        node
    }

    /// Ready means a health request succeeds: every core recovered its log and listens.
    fn wait_until_ready(&mut self) {
        wait_for_listener(self.address, &mut self.process, Duration::from_secs(20));
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            let healthy = connect(self.address).and_then(|mut client| client.health());
            match healthy {
                Ok(_) => return,
                Err(error) if std::time::Instant::now() > deadline => {
                    panic!("storage node not ready: {error}\n{}", self.process.log())
                }
                Err(_) => std::thread::sleep(Duration::from_millis(20)),
            }
        }
    }

    fn spawn(
        address: SocketAddr,
        data: &Path,
        log_dir: &Path,
        extra_args: &[String],
    ) -> CairnProcess {
        let mut args = vec![
            "storage".to_string(),
            "--listen".into(),
            address.to_string(),
            "--data".into(),
            data.display().to_string(),
            "--cores".into(),
            "2".into(),
        ];
        args.extend(node_tls_args());
        args.extend(extra_args.iter().cloned());
        CairnProcess::start(Path::new(BINARY), &args, log_dir, "storage")
    }

    fn restart(&mut self) {
        self.process.kill_9();
        wait_until_port_closed(self.address, Duration::from_secs(20));
        self.process = Self::spawn(self.address, &self.data, &self.log_dir, &self.extra_args);
        self.wait_until_ready();
    }

    fn client(&self) -> StorageClient {
        connect(self.address).expect("connect to the storage node")
    }

    fn assert_no_unexpected_errors(&self) {
        let errors = self.process.error_lines();
        assert!(
            errors.is_empty(),
            "unexpected ERROR lines:\n{}",
            errors.join("\n")
        );
    }
}

fn shard(n: u64) -> ShardId {
    ShardId::new(
        u128::from(n) * 7919,
        1,
        (n % 5) as u32,
        ShardIndex((n % 6) as u16),
    )
}

#[test]
fn storage_rpc_runs_in_plaintext_only_on_authenticated_loopback_connections() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    // Listening on every address, so the same node is reached over loopback and over eth0.
    let port = cairn_tests::free_port();
    let wildcard = SocketAddr::from(([0, 0, 0, 0], port));
    let loopback = SocketAddr::from(([127, 0, 0, 1], port));
    let mut node = Node {
        process: Node::spawn(wildcard, &data, root.path(), &[]),
        address: loopback,
        data: data.clone(),
        extra_args: Vec::new(),
        log_dir: root.path().to_owned(),
    };
    node.wait_until_ready();
    let round_trip = |client: &mut StorageClient, n: u64| {
        let body = content(n, 300_000);
        client.put(shard(n), &body).unwrap();
        assert_eq!(client.get(shard(n), None).unwrap(), body);
        assert_eq!(
            client
                .get(
                    shard(n),
                    Some(ByteRange {
                        offset: 7,
                        length: 70_000
                    })
                )
                .unwrap(),
            body[7..70_007]
        );
    };

    // Loopback: authenticated by mutual TLS, then plaintext; the data round-trips.
    let mut client = node.client();
    assert_eq!(client.is_encrypted(), Some(false));
    round_trip(&mut client, 1);
    // The monoio client (the gateway's) switches the same way and round-trips too.
    monoio::RuntimeBuilder::<monoio::IoUringDriver>::new()
        .enable_timer()
        .build()
        .expect("monoio runtime")
        .block_on(async {
            let mut client =
                cairn_storage_client::monoio_client::AsyncStorageClient::connect_with_tls(
                    loopback,
                    Some(client_identity().client_config()),
                )
                .await
                .unwrap();
            let body = content(2, 200_000);
            let (result, _) = client
                .put(shard(2), body.clone(), crc32c::crc32c(&body))
                .await;
            result.unwrap();
            assert_eq!(client.get(shard(2), None).await.unwrap(), body);
        });
    // The switch never skips authentication: no certificate, no service.
    let refused = StorageClient::connect_with_config(loopback, ClientConfig::default())
        .and_then(|mut client| client.health());
    assert!(refused.is_err(), "{refused:?}");

    // Any other address: the connection stays encrypted. Also through a port forwarder on
    // this host, where the node sees a loopback peer but the client does not: the client does
    // not offer the switch, so the node does not select it.
    match non_loopback_address() {
        Some(ip) => {
            let mut client = connect(SocketAddr::new(ip, port)).unwrap();
            assert_eq!(client.is_encrypted(), Some(true), "via {ip}");
            round_trip(&mut client, 3);
            let forwarder = forward(SocketAddr::new(ip, 0), loopback);
            let mut client = connect(forwarder).unwrap();
            assert_eq!(client.is_encrypted(), Some(true), "via the forwarder");
            round_trip(&mut client, 5);
        }
        None => eprintln!("no non-loopback address on this machine: that half is not run"),
    }
    node.assert_no_unexpected_errors();
    drop(node);

    // --encrypt-loopback keeps loopback connections encrypted.
    let node = Node::start(&data, root.path(), &["--encrypt-loopback"]);
    let mut client = node.client();
    assert_eq!(client.is_encrypted(), Some(true));
    round_trip(&mut client, 4);
    assert_eq!(client.get(shard(1), None).unwrap(), content(1, 300_000));
    node.assert_no_unexpected_errors();
}

#[test]
fn round_trip_ranges_scan_health_and_refusals() {
    let data = tempfile::tempdir().unwrap();
    let node = Node::start(data.path(), data.path(), &[]);
    let mut client = node.client();
    for n in 0..40u64 {
        client
            .put(shard(n), &content(n, 1000 + n as usize * 997))
            .unwrap();
    }
    for n in 0..40u64 {
        assert_eq!(
            client.get(shard(n), None).unwrap(),
            content(n, 1000 + n as usize * 997),
            "shard {n}"
        );
    }
    let range = client
        .get(
            shard(30),
            Some(ByteRange {
                offset: 4000,
                length: 5000,
            }),
        )
        .unwrap();
    assert_eq!(range, content(30, 30_910)[4000..9000]);
    assert_eq!(client.stat(shard(3)).unwrap().length, 1000 + 3 * 997);
    assert!(client.delete(shard(3)).unwrap());
    assert!(!client.delete(shard(3)).unwrap());
    assert!(matches!(
        client.get(shard(3), None),
        Err(ClientError::NotFound { .. })
    ));
    assert!(matches!(
        client.stat(shard(3)),
        Err(ClientError::NotFound { .. })
    ));

    // Scan pages through every shard of both cores in id order.
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let page = client.scan(after, 7).unwrap();
        seen.extend(page.entries.iter().map(|entry| entry.shard_id));
        match page.next_after {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    let mut expected: Vec<ShardId> = (0..40).filter(|n| *n != 3).map(shard).collect();
    expected.sort();
    assert_eq!(seen, expected);

    // The hot cache serves repeated reads (the first read of each shard above was a miss).
    for _ in 0..3 {
        assert_eq!(
            client.get(shard(7), None).unwrap(),
            content(7, 1000 + 7 * 997)
        );
    }
    let health = client.health().unwrap();
    assert!(health.cache_hits >= 3, "{health:?}");
    assert!(
        health.cache_misses >= 39 && health.cache_used_bytes > 0,
        "{health:?}"
    );
    assert_eq!(health.cores, 2);
    assert_eq!(health.shard_count, 39);
    assert!(health.capacity_bytes > 0 && health.used_bytes > 0);

    // A wrong checksum is refused and stores nothing.
    let refused = client.put_with_crc(shard(100), &content(100, 5000), 0xdead_beef);
    assert!(
        matches!(refused, Err(ClientError::ChecksumMismatch { .. })),
        "{refused:?}"
    );
    assert!(matches!(
        client.get(shard(100), None),
        Err(ClientError::NotFound { .. })
    ));
    // Out-of-range reads are bad requests.
    let clipped = client
        .get(
            shard(1),
            Some(ByteRange {
                offset: 1000,
                length: 1 << 30,
            }),
        )
        .unwrap();
    assert_eq!(clipped, content(1, 1997)[1000..]);
    let bad_range = client.get(
        shard(1),
        Some(ByteRange {
            offset: 5000,
            length: 1,
        }),
    );
    assert!(
        matches!(bad_range, Err(ClientError::BadRequest { .. })),
        "{bad_range:?}"
    );

    // Garbage and oversized frames get an error reply and a closed connection; the node lives on.
    for frame in [
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
        oversized_frame_header(),
        truncated_message_frame(),
    ] {
        for mut raw in raw_streams(node.address) {
            raw.write_all(&frame).unwrap();
            raw.flush().unwrap();
            let mut reply = Vec::new();
            raw.read_to_end(&mut reply)
                .expect("the node closes the connection");
            assert!(
                reply.len() >= 16,
                "an error frame comes back before the close"
            );
            assert_eq!(&reply[0..4], b"CRNW");
        }
    }
    assert_eq!(
        client.health().unwrap().shard_count,
        39,
        "node still serves"
    );
    node.assert_no_unexpected_errors();
}

fn oversized_frame_header() -> Vec<u8> {
    let mut header = Vec::new();
    header.extend_from_slice(b"CRNW");
    header.extend_from_slice(&1u16.to_le_bytes());
    header.extend_from_slice(&0u16.to_le_bytes());
    header.extend_from_slice(&64u32.to_le_bytes());
    header.extend_from_slice(&u32::MAX.to_le_bytes());
    header
}

fn truncated_message_frame() -> Vec<u8> {
    let mut frame = Vec::new();
    frame.extend_from_slice(b"CRNW");
    frame.extend_from_slice(&1u16.to_le_bytes());
    frame.extend_from_slice(&0u16.to_le_bytes());
    frame.extend_from_slice(&8u32.to_le_bytes());
    frame.extend_from_slice(&0u32.to_le_bytes());
    frame.extend_from_slice(&[0xff; 8]);
    frame
}

/// kill -9 during a write storm: every acknowledged shard reads back bit-exact after the restart;
/// shards whose put was in flight are absent or intact, never garbage.
#[test]
fn kill_9_during_a_write_storm_loses_no_acknowledged_shard() {
    let data = tempfile::tempdir().unwrap();
    let mut node = Node::start(data.path(), data.path(), &["--segment-mib", "8"]);
    let acknowledged = Arc::new(Mutex::new(HashMap::<u64, usize>::new()));
    let attempted = Arc::new(Mutex::new(HashMap::<u64, usize>::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..8u64)
        .map(|writer| {
            let (acknowledged, attempted, stop, address) = (
                acknowledged.clone(),
                attempted.clone(),
                stop.clone(),
                node.address,
            );
            std::thread::spawn(move || {
                let mut client = connect(address).unwrap();
                let mut n = writer;
                while !stop.load(Ordering::SeqCst) {
                    let len = [4096, 1, 70_000, 300_000, 12_345][(n % 5) as usize];
                    attempted.lock().unwrap().insert(n, len);
                    match client.put(shard(n), &content(n, len)) {
                        Ok(()) => {
                            acknowledged.lock().unwrap().insert(n, len);
                        }
                        Err(_) => return, // the node died under us
                    }
                    n += 8;
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(1500));
    node.process.kill_9();
    stop.store(true, Ordering::SeqCst);
    for writer in writers {
        writer.join().unwrap();
    }
    let acknowledged = acknowledged.lock().unwrap().clone();
    let attempted = attempted.lock().unwrap().clone();
    assert!(
        acknowledged.len() > 50,
        "the storm wrote only {} shards",
        acknowledged.len()
    );

    node.restart();
    let mut client = node.client();
    for (n, len) in &acknowledged {
        let read = client.get(shard(*n), None).unwrap_or_else(|error| {
            panic!(
                "acknowledged shard {n} lost: {error}\nnode log:\n{}",
                node.process.log()
            )
        });
        assert!(read == content(*n, *len), "acknowledged shard {n} differs");
    }
    for (n, len) in attempted
        .iter()
        .filter(|(n, _)| !acknowledged.contains_key(n))
    {
        match client.get(shard(*n), None) {
            Ok(read) => assert!(
                read == content(*n, *len),
                "unacknowledged shard {n} is garbage"
            ),
            Err(ClientError::NotFound { .. }) => {}
            Err(error) => panic!("unacknowledged shard {n}: {error}"),
        }
    }
    // The node keeps working after recovery.
    client.put(shard(1_000_000), b"after the crash").unwrap();
    assert_eq!(
        client.get(shard(1_000_000), None).unwrap(),
        b"after the crash"
    );
    node.assert_no_unexpected_errors();
}

/// Finds the segment file and offset holding `needle` (a distinctive part of a shard's bytes).
fn locate(data: &Path, needle: &[u8]) -> Option<(PathBuf, u64)> {
    for core in std::fs::read_dir(data).ok()? {
        let core = core.ok()?.path();
        if !core.is_dir() {
            continue;
        }
        for file in std::fs::read_dir(&core).ok()? {
            let path = file.ok()?.path();
            let bytes = std::fs::read(&path).ok()?;
            if let Some(position) = bytes
                .windows(needle.len())
                .position(|window| window == needle)
            {
                return Some((path, position as u64));
            }
        }
    }
    None
}

#[test]
fn a_flipped_byte_on_disk_is_a_checksum_error_never_wrong_bytes() {
    let data = tempfile::tempdir().unwrap();
    let node = Node::start(data.path(), data.path(), &["--cache-mib", "0"]);
    let mut client = node.client();
    let bytes = content(77, 50_000);
    client.put(shard(77), &bytes).unwrap();
    client.put(shard(78), &content(78, 50_000)).unwrap();
    let (file, offset) = locate(data.path(), &bytes[1000..1064]).expect("shard bytes are on disk");
    {
        use std::os::unix::fs::FileExt;
        let handle = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&file)
            .unwrap();
        let mut byte = [0u8];
        handle.read_exact_at(&mut byte, offset + 10).unwrap();
        handle.write_all_at(&[byte[0] ^ 0x01], offset + 10).unwrap();
        handle.sync_all().unwrap();
    }
    let whole = client.get(shard(77), None);
    assert!(
        matches!(whole, Err(ClientError::ChecksumMismatch { .. })),
        "{whole:?}"
    );
    let range = client.get(
        shard(77),
        Some(ByteRange {
            offset: 0,
            length: 10,
        }),
    );
    assert!(
        matches!(range, Err(ClientError::ChecksumMismatch { .. })),
        "a range read checks the whole shard: {range:?}"
    );
    assert_eq!(client.get(shard(78), None).unwrap(), content(78, 50_000));
    assert_eq!(client.health().unwrap().checksum_errors, 2);
}

#[test]
fn a_full_disk_is_a_clear_error_and_the_node_keeps_serving_reads() {
    let small = SmallFileSystem::mount(40);
    let logs = tempfile::tempdir().unwrap();
    let node = Node::start(small.path(), logs.path(), &["--segment-mib", "4"]);
    let mut client = node.client();
    let mut stored = 0u64;
    let error = loop {
        match client.put(shard(stored), &content(stored, 512 << 10)) {
            Ok(()) => stored += 1,
            Err(error) => break error,
        }
        assert!(stored < 200, "a 40 MiB file system cannot hold 100 MiB");
    };
    assert!(matches!(error, ClientError::NoSpace { .. }), "{error:?}");
    assert!(stored > 10);
    for n in 0..stored {
        assert_eq!(
            client.get(shard(n), None).unwrap(),
            content(n, 512 << 10),
            "shard {n}"
        );
    }
    assert_eq!(client.health().unwrap().shard_count, stored);
    node.assert_no_unexpected_errors();
}

/// EIO on a shard-log write stops the node (exit code 74) and loses nothing acknowledged before.
#[test]
fn an_io_error_on_write_stops_the_node_and_enospc_does_not() {
    let data = tempfile::tempdir().unwrap();
    let mut node = Node::start(data.path(), data.path(), &[]);
    node.client().put(shard(1), &content(1, 10_000)).unwrap();
    node.process.kill_9();
    wait_until_port_closed(node.address, Duration::from_secs(20));

    // ENOSPC: the put fails with a clear error, the node keeps serving.
    let args: Vec<String> = ["storage", "--listen", &node.address.to_string(), "--data"]
        .iter()
        .map(|arg| arg.to_string())
        .chain([
            data.path().display().to_string(),
            "--cores".into(),
            "2".into(),
        ])
        .chain(node_tls_args())
        .collect();
    let mut enospc = CairnProcess::start_with_env(
        Path::new(BINARY),
        &args,
        data.path(),
        "storage-enospc",
        &[("CAIRN_FAULT_INJECT_WRITE_ERRNO", "28")],
    );
    wait_for_listener(node.address, &mut enospc, Duration::from_secs(20));
    let mut client = connect(node.address).unwrap();
    let first = client.put(shard(2), &content(2, 100));
    let second = client.put(shard(3), &content(3, 100));
    // The fault fires once per core log: the first put that reaches each core fails.
    assert!(
        matches!(first, Err(ClientError::NoSpace { .. }))
            || matches!(second, Err(ClientError::NoSpace { .. })),
        "{first:?} {second:?}\n{}",
        enospc.log()
    );
    assert_eq!(client.get(shard(1), None).unwrap(), content(1, 10_000));
    assert!(
        enospc.try_exit_code().is_none(),
        "ENOSPC does not stop the node"
    );
    enospc.kill_9();
    wait_until_port_closed(node.address, Duration::from_secs(20));

    // EIO: the node stops with exit code 74.
    let mut eio = CairnProcess::start_with_env(
        Path::new(BINARY),
        &args,
        data.path(),
        "storage-eio",
        &[("CAIRN_FAULT_INJECT_WRITE_ERRNO", "5")],
    );
    wait_for_listener(node.address, &mut eio, Duration::from_secs(20));
    let mut client = connect(node.address).unwrap();
    for n in 10..20 {
        if client.put(shard(n), &content(n, 100)).is_err() {
            break;
        }
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let code = loop {
        if let Some(code) = eio.try_exit_code() {
            break code;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the node did not stop after EIO"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(code, Some(74));
    assert!(
        eio.log()
            .contains("stopping the storage node after an I/O error")
    );
    wait_until_port_closed(node.address, Duration::from_secs(20));

    // Restarted without the fault, the acknowledged shard is intact.
    node.restart();
    assert_eq!(
        node.client().get(shard(1), None).unwrap(),
        content(1, 10_000)
    );
}

/// `cairn dev` runs six storage nodes in one process; shards survive kill -9 and a restart.
#[test]
fn cairn_dev_runs_six_storage_nodes_and_keeps_data_across_restarts() {
    let data = tempfile::tempdir().unwrap();
    let base_port = cairn_tests::consecutive_free_ports(6);
    let admin = cairn_tests::free_address();
    let args = vec![
        "dev".to_string(),
        "--data".into(),
        data.path().join("cluster").display().to_string(),
        "--storage-base-port".into(),
        base_port.to_string(),
        "--listen".into(),
        cairn_tests::free_address().to_string(),
        "--meta-port".into(),
        cairn_tests::free_port().to_string(),
        "--admin-listen".into(),
        admin.to_string(),
    ];
    let addresses: Vec<SocketAddr> = (0..6)
        .map(|n| SocketAddr::from(([127, 0, 0, 1], base_port + n)))
        .collect();
    let mut dev = CairnProcess::start(Path::new(BINARY), &args, data.path(), "dev");
    for address in &addresses {
        wait_for_listener(*address, &mut dev, Duration::from_secs(30));
    }
    // The nodes run under the CA `cairn dev` generated in its data directory.
    let dev_pki = cairn_tests::dev_pki(Path::new(BINARY), &data.path().join("cluster"));
    let dev_client = || {
        let identity = cairn_tls::Identity::load(&cairn_tls::TlsFiles::new(
            dev_pki.issue("test-worker", "worker"),
        ))
        .unwrap();
        ClientConfig::with_identity(Some(&identity))
    };
    for (n, address) in addresses.iter().enumerate() {
        let mut client = StorageClient::connect_with_config(address, dev_client()).unwrap();
        client
            .put(shard(n as u64), &content(n as u64, 4000))
            .unwrap();
    }
    dev.kill_9();
    for address in addresses.iter().chain([&admin]) {
        wait_until_port_closed(*address, Duration::from_secs(20));
    }
    let mut dev = CairnProcess::start(Path::new(BINARY), &args, data.path(), "dev");
    for (n, address) in addresses.iter().enumerate() {
        wait_for_listener(*address, &mut dev, Duration::from_secs(30));
        let mut client = StorageClient::connect_with_config(address, dev_client()).unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        let read = loop {
            match client.get(shard(n as u64), None) {
                Ok(read) => break read,
                Err(error) if std::time::Instant::now() > deadline => {
                    panic!("node {n}: {error}\n{}", dev.log())
                }
                Err(_) => std::thread::sleep(Duration::from_millis(50)),
            }
        };
        assert_eq!(read, content(n as u64, 4000));
    }
    let errors = dev.error_lines();
    assert!(errors.is_empty(), "{}", errors.join("\n"));
}

/// The gateway's async client (monoio, io_uring) against a real node.
#[test]
fn the_monoio_client_round_trips_and_reports_node_errors() {
    use cairn_storage_client::monoio_client::AsyncStorageClient;
    let data = tempfile::tempdir().unwrap();
    let node = Node::start(data.path(), data.path(), &[]);
    let address = node.address;
    monoio::RuntimeBuilder::<monoio::IoUringDriver>::new()
        .enable_timer()
        .build()
        .expect("monoio runtime")
        .block_on(async move {
            let mut client = AsyncStorageClient::connect_with_tls(
                address,
                Some(client_identity().client_config()),
            )
            .await
            .unwrap();
            for n in 0..20u64 {
                let body = content(n, 100 + n as usize * 40_000);
                let crc = crc32c::crc32c(&body);
                let (result, returned) = client.put(shard(n), body, crc).await;
                result.unwrap();
                assert_eq!(
                    returned.len(),
                    100 + n as usize * 40_000,
                    "the body comes back"
                );
            }
            for n in 0..20u64 {
                assert_eq!(
                    client.get(shard(n), None).await.unwrap(),
                    content(n, 100 + n as usize * 40_000)
                );
            }
            let range = client
                .get(
                    shard(19),
                    Some(ByteRange {
                        offset: 5,
                        length: 10,
                    }),
                )
                .await
                .unwrap();
            assert_eq!(range, content(19, 760_100)[5..15]);
            assert_eq!(client.stat(shard(4)).await.unwrap().length, 160_100);
            assert!(client.delete(shard(4)).await.unwrap());
            assert!(matches!(
                client.get(shard(4), None).await,
                Err(ClientError::NotFound { .. })
            ));
            let (refused, _) = client.put(shard(50), content(50, 10), 0xbad).await;
            assert!(
                matches!(refused, Err(ClientError::ChecksumMismatch { .. })),
                "{refused:?}"
            );
            let page = client.scan(None, 100).await.unwrap();
            assert_eq!(page.entries.len(), 19);
            assert_eq!(client.health().await.unwrap().shard_count, 19);
        });
    node.assert_no_unexpected_errors();
}

#[test]
fn connections_past_the_per_core_limit_are_closed() {
    let data = tempfile::tempdir().unwrap();
    let node = Node::start(
        data.path(),
        data.path(),
        &["--max-connections-per-core", "3"],
    );
    // The readiness probe's connection may still be closing; wait until the count settles.
    std::thread::sleep(Duration::from_millis(200));
    let mut held: Vec<StorageClient> = Vec::new();
    let mut refused = 0;
    for _ in 0..8 {
        // A connection closed at once fails its TLS handshake, i.e. the connect.
        match connect(node.address).and_then(|mut client| client.health().map(|_| client)) {
            Ok(client) => held.push(client),
            Err(ClientError::Io(_)) => refused += 1,
            Err(error) => panic!("{error}"),
        }
    }
    // Two cores share the port (the kernel spreads connections at random), three slots each.
    assert!(
        held.len() <= 6 && refused >= 2,
        "held {} refused {refused}",
        held.len()
    );
    assert!(held.len() >= 3, "held {}", held.len());
    drop(held);
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        node.client().health().is_ok(),
        "closing connections frees their slots"
    );
}
