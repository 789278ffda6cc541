//! In-process put/get latency and throughput through the C ABI, next to the same operations over
//! the storage node RPC in the same run (same machine, same disk, same shard log code).
//!
//! Run: `cargo test --release -p cairn-ffi --test bench -- --ignored --nocapture`
//! Prints one JSON document; latencies are per operation in microseconds (HDR histogram),
//! throughput counts all threads together. Both sides run 2 logs with the hot cache off, so gets
//! read the log with O_DIRECT, and every put waits for its fdatasync (group-committed across
//! concurrent callers).

mod support;

use cairn::{
    CAIRN_LENGTH_TO_END, CairnShardId, CairnShardStat, CairnStatus, CairnStore, CairnStoreOptions,
    cairn_store_close, cairn_store_get, cairn_store_open, cairn_store_options_init,
    cairn_store_put, cairn_store_stat,
};
use cairn_common::{ShardId, ShardIndex};
use cairn_storage_client::StorageClient;
use hdrhistogram::Histogram;
use std::ffi::CString;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

const LOGS: u32 = 2;

fn id(size_bytes: usize, thread: usize, n: usize) -> ShardId {
    ShardId::new(
        size_bytes as u128,
        thread as u32,
        n as u32,
        ShardIndex((n % 6) as u16),
    )
}

/// The shard operations a transport offers; one instance per benchmark thread.
trait Transport {
    fn put(&mut self, shard_id: ShardId, data: &[u8], crc32c: u32);
    fn get(&mut self, shard_id: ShardId, buffer: &mut [u8]) -> usize;
    /// Index lookup only (no disk I/O): the cost of the transport itself.
    fn stat(&mut self, shard_id: ShardId) -> u64;
}

/// The C ABI, called exactly as C code would.
struct InProcess {
    store: *mut CairnStore,
}

// SAFETY: the store handle may be used from any thread concurrently (the C API's contract).
unsafe impl Send for InProcess {}

impl Transport for InProcess {
    fn put(&mut self, shard_id: ShardId, data: &[u8], crc32c: u32) {
        let id = CairnShardId { bytes: shard_id.0 };
        // SAFETY: live handle, valid pointers for the call.
        let status = unsafe { cairn_store_put(self.store, &id, data.as_ptr(), data.len(), crc32c) };
        assert_eq!(status, CairnStatus::Ok);
    }

    fn get(&mut self, shard_id: ShardId, buffer: &mut [u8]) -> usize {
        let id = CairnShardId { bytes: shard_id.0 };
        let mut got = 0usize;
        // SAFETY: live handle, valid pointers for the call.
        let status = unsafe {
            cairn_store_get(
                self.store,
                &id,
                0,
                CAIRN_LENGTH_TO_END,
                buffer.as_mut_ptr(),
                buffer.len(),
                &mut got,
                std::ptr::null_mut(),
            )
        };
        assert_eq!(status, CairnStatus::Ok);
        got
    }

    fn stat(&mut self, shard_id: ShardId) -> u64 {
        let id = CairnShardId { bytes: shard_id.0 };
        let mut stat = CairnShardStat::default();
        // SAFETY: live handle, valid pointers for the call.
        let status = unsafe { cairn_store_stat(self.store, &id, &mut stat) };
        assert_eq!(status, CairnStatus::Ok);
        stat.length_bytes
    }
}

struct Rpc {
    client: StorageClient,
}

impl Transport for Rpc {
    fn put(&mut self, shard_id: ShardId, data: &[u8], crc32c: u32) {
        self.client
            .put_with_crc(shard_id, data, crc32c)
            .expect("rpc put");
    }

    fn get(&mut self, shard_id: ShardId, buffer: &mut [u8]) -> usize {
        let data = self.client.get(shard_id, None).expect("rpc get");
        buffer[..data.len()].copy_from_slice(&data);
        data.len()
    }

    fn stat(&mut self, shard_id: ShardId) -> u64 {
        self.client.stat(shard_id).expect("rpc stat").length
    }
}

struct Workload {
    size_bytes: usize,
    threads: usize,
    operations_per_thread: usize,
}

/// Runs puts, then gets, then stats of the same shards with `threads` threads; returns three JSON
/// figures.
fn run<T: Transport + Send>(
    transport_name: &str,
    workload: &Workload,
    make: &(dyn Fn() -> T + Sync),
) -> Vec<serde_json::Value> {
    let data: Vec<u8> = (0..workload.size_bytes)
        .map(|i| (i * 131 + 7) as u8)
        .collect();
    let crc = crc32c::crc32c(&data);
    let mut figures = Vec::new();
    for operation in ["put", "get", "stat"] {
        let started = Instant::now();
        let histograms: Vec<Histogram<u64>> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..workload.threads)
                .map(|thread| {
                    let data = &data;
                    scope.spawn(move || {
                        let mut transport = make();
                        let mut histogram =
                            Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("bounds");
                        let mut buffer = vec![0u8; data.len()];
                        for n in 0..workload.operations_per_thread {
                            let shard_id = id(data.len(), thread, n);
                            let begin = Instant::now();
                            match operation {
                                "put" => transport.put(shard_id, data, crc),
                                "get" => {
                                    let got = transport.get(shard_id, &mut buffer);
                                    assert_eq!(got, data.len());
                                }
                                _ => {
                                    let length_bytes = transport.stat(shard_id);
                                    assert_eq!(length_bytes, data.len() as u64);
                                }
                            }
                            histogram
                                .record(begin.elapsed().as_micros().max(1) as u64)
                                .expect("in range");
                        }
                        histogram
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|handle| handle.join().expect("thread"))
                .collect()
        });
        let elapsed = started.elapsed();
        let mut total = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("bounds");
        for histogram in &histograms {
            total.add(histogram).expect("same bounds");
        }
        let operations = (workload.threads * workload.operations_per_thread) as f64;
        let seconds = elapsed.as_secs_f64();
        figures.push(serde_json::json!({
            "transport": transport_name,
            "operation": operation,
            "size_bytes": workload.size_bytes,
            "threads": workload.threads,
            "operations": operations as u64,
            "latency_us_p50": total.value_at_quantile(0.50),
            "latency_us_p99": total.value_at_quantile(0.99),
            "latency_us_max": total.max(),
            "latency_us_mean": (total.mean() * 10.0).round() / 10.0,
            "throughput_ops_per_s": (operations / seconds).round(),
            // A stat moves no shard bytes.
            "throughput_mib_per_s": (operation != "stat").then(|| {
                let bytes = operations * workload.size_bytes as f64;
                let mib_per_s = bytes / seconds / (1 << 20) as f64;
                (mib_per_s * 10.0).round() / 10.0
            }),
        }));
    }
    figures
}

const WORKLOADS: [Workload; 4] = [
    Workload {
        size_bytes: 4096,
        threads: 1,
        operations_per_thread: 1000,
    },
    Workload {
        size_bytes: 4096,
        threads: 8,
        operations_per_thread: 500,
    },
    Workload {
        size_bytes: 1 << 20,
        threads: 1,
        operations_per_thread: 100,
    },
    Workload {
        size_bytes: 1 << 20,
        threads: 4,
        operations_per_thread: 50,
    },
];

#[test]
#[ignore = "benchmark: run explicitly with --release -- --ignored --nocapture"]
fn in_process_versus_storage_node_rpc() {
    let scratch = tempfile::tempdir_in("/tmp").expect("scratch dir");
    let mut results = Vec::new();

    // In-process through the C ABI.
    let dir = CString::new(scratch.path().join("library").display().to_string()).expect("path");
    let mut options = std::mem::MaybeUninit::<CairnStoreOptions>::uninit();
    // SAFETY: valid out-pointer; the call initialises it.
    let mut options = unsafe {
        assert_eq!(
            cairn_store_options_init(options.as_mut_ptr()),
            CairnStatus::Ok
        );
        options.assume_init()
    };
    options.logs = LOGS;
    options.cache_capacity_bytes_per_log = 0;
    let mut store: *mut CairnStore = std::ptr::null_mut();
    // SAFETY: valid pointers for the call.
    assert_eq!(
        unsafe { cairn_store_open(dir.as_ptr(), &options, &mut store) },
        CairnStatus::Ok
    );
    let handle = store as usize;

    // The same over the storage node RPC (node in this process, loopback TCP).
    let node_dir = scratch.path().join("node");
    std::fs::create_dir_all(&node_dir).expect("node dir");
    std::fs::write(
        node_dir.join("storage-node.conf"),
        format!("format = 1\nlogs = {LOGS}\n"),
    )
    .expect("layout");
    let address: SocketAddr = support::start_node(&node_dir, 0);

    // Each workload runs on both transports back to back, so that both see the same machine
    // conditions (other load on a shared machine moves the figures from minute to minute).
    for workload in &WORKLOADS {
        results.extend(run("in-process", workload, &|| InProcess {
            store: handle as *mut CairnStore,
        }));
        results.extend(run("storage-node-rpc", workload, &|| Rpc {
            client: StorageClient::connect(address).expect("connect"),
        }));
    }
    // SAFETY: every thread using the handle has been joined.
    assert_eq!(unsafe { cairn_store_close(store) }, CairnStatus::Ok);
    let document = serde_json::json!({
        "benchmark": "cairn-ffi in-process vs storage node RPC",
        "logs": LOGS,
        "cache": "off",
        "cpus": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        // Other load on the machine while this ran (the figures are only as quiet as the machine).
        "load_average_1m_at_end": std::fs::read_to_string("/proc/loadavg")
            .ok()
            .and_then(|text| text.split_whitespace().next().map(str::to_owned)),
        "results": results,
    });
    println!("{}", serde_json::to_string_pretty(&document).expect("json"));
    // Keep the node's threads from racing the temporary directory's removal.
    std::thread::sleep(Duration::from_millis(10));
}
