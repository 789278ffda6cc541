//! Helpers shared by the integration tests that run a storage node next to the library.

use cairn_storage::NodeConfig;
use cairn_storage_client::StorageClient;
use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::time::{Duration, Instant};

/// Starts a storage node on `data_dir` inside this process, on its own thread, and waits until it
/// answers. The node runs until the process exits (it has no stop call), so each test binary that
/// uses this must not reopen `data_dir` for writing while the node could still write to it.
pub fn start_node(data_dir: &Path, cache_capacity_bytes_per_core: u64) -> SocketAddr {
    // Every core binds the same port (SO_REUSEPORT), so it must be chosen up front.
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port();
    let listen: SocketAddr = format!("127.0.0.1:{port}").parse().expect("address");
    let mut config = NodeConfig::new(listen, data_dir, "az-test");
    config.segment_size_bytes = 64 << 20;
    config.cache_capacity_bytes_per_core = cache_capacity_bytes_per_core;
    config.compaction_interval = Duration::from_secs(3600);
    std::thread::spawn(move || {
        if let Err(error) = cairn_storage::run(config) {
            panic!("storage node stopped: {error}");
        }
    });
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(mut client) = StorageClient::connect(listen)
            && client.health().is_ok()
        {
            return listen;
        }
        assert!(Instant::now() < deadline, "storage node did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
}
