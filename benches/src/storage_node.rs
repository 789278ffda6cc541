//! `cairn-bench storage-node`: shard put/get through the storage-node RPC, next to fio on the same
//! disk in the same run.
//!
//! It starts a real `cairn storage` process (hot cache off, so gets measure the disk), drives it with
//! one blocking client connection per worker thread, and runs fio (`--direct=1 --ioengine=io_uring`)
//! in the same data directory for the reference figures:
//! - sequential 1 MiB O_DIRECT write and read bandwidth (the device's limit for large shards);
//! - 4 KiB writes with one fdatasync each (what a node without group commit could do).
//!
//! Each case runs `--runs` times; the JSON reports every run and the median, plus the ratios the
//! foundation issue sets targets for.

use crate::load::{Phase, median, run_workers};
use anyhow::{Context, bail};
use cairn_common::{ShardId, ShardIndex};
use cairn_storage_client::StorageClient;
use clap::Args;
use serde_json::{Value, json};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

#[derive(Args, Debug)]
pub struct StorageNodeArgs {
    /// Directory for the node's data and fio's files (on the disk under test; ext4/xfs, not tmpfs).
    #[arg(long)]
    data: Option<PathBuf>,
    /// The `cairn` binary (default: next to this binary).
    #[arg(long)]
    cairn: Option<PathBuf>,
    /// Seconds per measured phase.
    #[arg(long, default_value_t = 4.0)]
    seconds: f64,
    /// Runs per case; the median is reported.
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Shard sizes in bytes.
    #[arg(long, value_delimiter = ',', default_value = "4096,1048576")]
    sizes: Vec<usize>,
    /// Client concurrency levels (one connection per worker).
    #[arg(long, value_delimiter = ',', default_value = "1,16,64")]
    concurrency: Vec<usize>,
    /// Skip the fio reference runs (for profiling the node alone; ratios are then omitted).
    #[arg(long)]
    no_fio: bool,
    /// Executors (cores) of the node.
    #[arg(long, default_value_t = 2)]
    cores: usize,
}

struct NodeProcess {
    child: Child,
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_address() -> anyhow::Result<SocketAddr> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?)
}

fn default_cairn_binary() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let path = exe.with_file_name("cairn");
    if !path.exists() {
        bail!(
            "{} not found: build it (`cargo build --release -p cairn`) or pass --cairn",
            path.display()
        );
    }
    Ok(path)
}

fn start_node(
    binary: &Path,
    data: &Path,
    cores: usize,
) -> anyhow::Result<(NodeProcess, SocketAddr)> {
    let address = free_address()?;
    let log = std::fs::File::create(data.join("node.log"))?;
    let child = Command::new(binary)
        .args(["storage", "--listen", &address.to_string(), "--data"])
        .arg(data.join("node"))
        .args(["--cores", &cores.to_string(), "--cache-mib", "0"])
        // This benchmark measures the shard log and the RPC framing next to fio, so it runs the
        // node in plaintext, explicitly (the node logs the warning).
        .arg("--insecure-plaintext-internal")
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()
        .with_context(|| format!("start {}", binary.display()))?;
    let node = NodeProcess { child };
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(mut client) = StorageClient::connect(address)
            && client.health().is_ok()
        {
            return Ok((node, address));
        }
        if Instant::now() > deadline {
            bail!(
                "storage node did not become ready; see {}",
                data.join("node.log").display()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn shard_id(round: u64, worker: usize, sequence: u64) -> ShardId {
    ShardId::new(
        (u128::from(round) << 64) | worker as u128,
        0,
        sequence as u32,
        ShardIndex(0),
    )
}

impl Phase {
    fn to_json(&self, size_bytes: usize) -> Value {
        let ops_per_second = self.ops_per_second();
        json!({
            "operations": self.operations,
            "ops_per_second": ops_per_second,
            "megabytes_per_second": ops_per_second * size_bytes as f64 / 1e6,
            "latency_us_p50": self.histogram.value_at_quantile(0.50),
            "latency_us_p99": self.histogram.value_at_quantile(0.99),
            "latency_us_max": self.histogram.max(),
        })
    }
}

/// Runs `concurrency` workers for `seconds`, one storage-node connection each; each calls
/// `operation(worker, sequence, client)`.
fn run_phase(
    address: SocketAddr,
    concurrency: usize,
    seconds: f64,
    operation: impl Fn(usize, u64, &mut StorageClient) -> anyhow::Result<()> + Send + Sync + 'static,
) -> anyhow::Result<Phase> {
    run_workers(
        concurrency,
        seconds,
        move |_| Ok(StorageClient::connect(address)?),
        move |client, worker, sequence| operation(worker, sequence, client),
    )
}

/// Runs fio and returns (bandwidth bytes/s, IOPS) of its single job.
pub fn fio(
    directory: &Path,
    name: &str,
    extra: &[&str],
    seconds: f64,
) -> anyhow::Result<(f64, f64)> {
    let file = directory.join(format!("fio-{name}"));
    let output = Command::new("fio")
        .arg(format!("--name={name}"))
        .arg(format!("--filename={}", file.display()))
        .args([
            "--direct=1",
            "--ioengine=io_uring",
            "--size=1G",
            "--time_based",
            "--output-format=json",
        ])
        .arg(format!("--runtime={}", seconds.ceil() as u64))
        .args(extra)
        .output()
        .context("run fio (apt-get install fio)")?;
    if !output.status.success() {
        bail!("fio failed: {}", String::from_utf8_lossy(&output.stderr));
    }
    let report: Value = serde_json::from_slice(&output.stdout).context("fio JSON")?;
    let job = &report["jobs"][0];
    let side = if extra.iter().any(|arg| arg.contains("read")) {
        "read"
    } else {
        "write"
    };
    let bandwidth_bytes = job[side]["bw_bytes"].as_f64().unwrap_or(0.0);
    let iops = job[side]["iops"].as_f64().unwrap_or(0.0);
    Ok((bandwidth_bytes, iops))
}

pub fn run(args: StorageNodeArgs) -> anyhow::Result<()> {
    let binary = match args.cairn.clone() {
        Some(path) => path,
        None => default_cairn_binary()?,
    };
    let scratch;
    let directory = match &args.data {
        Some(path) => {
            std::fs::create_dir_all(path)?;
            path.clone()
        }
        None => {
            scratch = tempfile::Builder::new()
                .prefix("cairn-bench-")
                .tempdir_in("/var/tmp")?;
            scratch.path().to_owned()
        }
    };

    eprintln!("fio reference runs in {}", directory.display());
    let mut fio_write = Vec::new();
    let mut fio_read = Vec::new();
    let mut fio_sync_iops = Vec::new();
    for _ in 0..if args.no_fio { 0 } else { args.runs } {
        fio_write.push(
            fio(
                &directory,
                "seqwrite",
                &["--rw=write", "--bs=1M", "--iodepth=16"],
                args.seconds,
            )?
            .0,
        );
        fio_read.push(
            fio(
                &directory,
                "seqread",
                &["--rw=read", "--bs=1M", "--iodepth=16"],
                args.seconds,
            )?
            .0,
        );
        fio_sync_iops.push(
            fio(
                &directory,
                "syncwrite",
                &["--rw=write", "--bs=4k", "--iodepth=1", "--fdatasync=1"],
                args.seconds,
            )?
            .1,
        );
    }
    for name in ["seqwrite", "seqread", "syncwrite"] {
        let _ = std::fs::remove_file(directory.join(format!("fio-{name}")));
    }
    let fio_write_median = if args.no_fio {
        f64::NAN
    } else {
        median(&mut fio_write)
    };
    let fio_read_median = if args.no_fio {
        f64::NAN
    } else {
        median(&mut fio_read)
    };
    let fio_sync_median = if args.no_fio {
        f64::NAN
    } else {
        median(&mut fio_sync_iops)
    };

    let (node, address) = start_node(&binary, &directory, args.cores)?;
    let mut cases = Vec::new();
    let mut put_mbps = std::collections::HashMap::new();
    let mut put_ops = std::collections::HashMap::new();
    let mut get_mbps = std::collections::HashMap::new();
    for &size in &args.sizes {
        let payload = Arc::new(vec![0xa5u8; size]);
        let payload_crc = crc32c::crc32c(&payload);
        for &concurrency in &args.concurrency {
            let mut runs = Vec::new();
            let mut put_rates = Vec::new();
            let mut get_rates = Vec::new();
            for run in 0..args.runs {
                let round = (size as u64) << 32 | (concurrency as u64) << 8 | run as u64;
                eprintln!("size {size} concurrency {concurrency} run {run}: put");
                let written: Arc<Vec<AtomicU64>> =
                    Arc::new((0..concurrency).map(|_| AtomicU64::new(0)).collect());
                let put = {
                    let (payload, written) = (payload.clone(), written.clone());
                    run_phase(
                        address,
                        concurrency,
                        args.seconds,
                        move |worker, sequence, client| {
                            client.put_with_crc(
                                shard_id(round, worker, sequence),
                                &payload,
                                payload_crc,
                            )?;
                            written[worker].store(sequence + 1, Ordering::Relaxed);
                            Ok(())
                        },
                    )?
                };
                eprintln!("size {size} concurrency {concurrency} run {run}: get");
                let get = {
                    let written = written.clone();
                    run_phase(
                        address,
                        concurrency,
                        args.seconds,
                        move |worker, sequence, client| {
                            // Read back this worker's shards in a scattered order, never the same twice in a row.
                            let count = written[worker].load(Ordering::Relaxed).max(1);
                            let pick = sequence.wrapping_mul(0x9e37_79b9_7f4a_7c15) % count;
                            let data = client.get(shard_id(round, worker, pick), None)?;
                            anyhow::ensure!(data.len() == size, "short read");
                            Ok(())
                        },
                    )?
                };
                put_rates.push((
                    put.operations as f64 / put.seconds,
                    put.operations as f64 * size as f64 / put.seconds / 1e6,
                ));
                get_rates.push(get.operations as f64 * size as f64 / get.seconds / 1e6);
                runs.push(json!({ "put": put.to_json(size), "get": get.to_json(size) }));
                // Free the space for the next run; parallel deletes share fdatasyncs like puts.
                let deleters: Vec<_> = (0..concurrency)
                    .map(|worker| {
                        let count = written[worker].load(Ordering::Relaxed);
                        std::thread::spawn(move || -> anyhow::Result<()> {
                            let mut client = StorageClient::connect(address)?;
                            for sequence in 0..count {
                                client.delete(shard_id(round, worker, sequence))?;
                            }
                            Ok(())
                        })
                    })
                    .collect();
                for deleter in deleters {
                    deleter
                        .join()
                        .map_err(|_| anyhow::anyhow!("deleter panicked"))??;
                }
            }
            let put_ops_median =
                median(&mut put_rates.iter().map(|rate| rate.0).collect::<Vec<_>>());
            let put_mbps_median =
                median(&mut put_rates.iter().map(|rate| rate.1).collect::<Vec<_>>());
            let get_mbps_median = median(&mut get_rates.clone());
            put_mbps.insert((size, concurrency), put_mbps_median);
            put_ops.insert((size, concurrency), put_ops_median);
            get_mbps.insert((size, concurrency), get_mbps_median);
            cases.push(json!({
                "shard_size_bytes": size,
                "concurrency": concurrency,
                "put_ops_per_second_median": put_ops_median,
                "put_megabytes_per_second_median": put_mbps_median,
                "get_megabytes_per_second_median": get_mbps_median,
                "runs": runs,
            }));
        }
    }
    drop(node);

    let best = |map: &std::collections::HashMap<(usize, usize), f64>, size: usize| {
        map.iter()
            .filter(|((s, _), _)| *s == size)
            .map(|(_, value)| *value)
            .fold(0.0, f64::max)
    };
    let mib = 1 << 20;
    let report = json!({
        "workload": "storage-node",
        "schema_version": 1,
        "node_cores": args.cores,
        "seconds_per_phase": args.seconds,
        "runs": args.runs,
        "fio": {
            "sequential_write_1m_megabytes_per_second_median": fio_write_median / 1e6,
            "sequential_read_1m_megabytes_per_second_median": fio_read_median / 1e6,
            "write_4k_fdatasync_each_iops_median": fio_sync_median,
        },
        "cases": cases,
        "ratios": {
            "put_1m_best_vs_fio_sequential_write": best(&put_mbps, mib) * 1e6 / fio_write_median,
            "get_1m_best_vs_fio_sequential_read": best(&get_mbps, mib) * 1e6 / fio_read_median,
            "put_4k_c64_vs_fio_fdatasync_per_write": put_ops.get(&(4096, 64)).copied().unwrap_or(0.0) / fio_sync_median,
        },
        "targets": {
            "put_1m_best_vs_fio_sequential_write": 0.85,
            "get_1m_best_vs_fio_sequential_read": 0.85,
            "put_4k_c64_vs_fio_fdatasync_per_write": 20.0,
        },
    });
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}
