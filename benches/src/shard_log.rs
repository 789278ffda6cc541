//! `cairn-bench shard-log`: the shard log in-process (no RPC), to show what group commit does on
//! its own: concurrent puts on one glommio executor, next to fio's one-fdatasync-per-write rate on
//! the same disk in the same run.
//!
//! The storage-node benchmark adds TCP and cross-core hops; this one isolates the log, so the
//! ratio "puts per second ÷ fdatasyncs per second" and the records-per-fdatasync figure say
//! whether group commit amortises the flush.

use crate::load::median;
use cairn_common::{ShardId, ShardIndex};
use cairn_shardlog::{LogConfig, ShardLog};
use clap::Args;
use serde_json::json;
use std::path::PathBuf;
use std::time::{Duration, Instant};

#[derive(Args, Debug)]
pub struct ShardLogArgs {
    /// Directory for the log and fio's file (on the disk under test; ext4/xfs, not tmpfs).
    #[arg(long)]
    data: Option<PathBuf>,
    /// Seconds per run.
    #[arg(long, default_value_t = 3.0)]
    seconds: f64,
    /// Runs per case; the median is reported.
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Shard size in bytes.
    #[arg(long, default_value_t = 4096)]
    size: usize,
    /// Concurrent puts in flight.
    #[arg(long, value_delimiter = ',', default_value = "1,16,64")]
    concurrency: Vec<usize>,
}

struct RunResult {
    puts_per_second: f64,
    records_per_fdatasync: f64,
}

fn run_once(directory: PathBuf, size: usize, concurrency: usize, seconds: f64) -> RunResult {
    glommio::LocalExecutorBuilder::new(glommio::Placement::Unbound)
        .spawn(move || async move {
            let log = ShardLog::open(LogConfig::new(&directory))
                .await
                .expect("open log");
            let payload = bytes::Bytes::from(vec![0x5au8; size]);
            let crc = crc32c::crc32c(&payload);
            let deadline = Instant::now() + Duration::from_secs_f64(seconds);
            let start = Instant::now();
            let workers: Vec<_> = (0..concurrency)
                .map(|worker| {
                    let (log, payload) = (log.clone(), payload.clone());
                    glommio::spawn_local(async move {
                        let mut count = 0u64;
                        while Instant::now() < deadline {
                            let id = ShardId::new(worker as u128, 0, count as u32, ShardIndex(0));
                            log.put(id, payload.clone(), crc).await.expect("put");
                            count += 1;
                        }
                        count
                    })
                })
                .collect();
            let mut puts = 0;
            for worker in workers {
                puts += worker.await;
            }
            let elapsed = start.elapsed().as_secs_f64();
            let stats = log.stats();
            log.close().await;
            RunResult {
                puts_per_second: puts as f64 / elapsed,
                records_per_fdatasync: stats.batched_records as f64 / stats.batches.max(1) as f64,
            }
        })
        .expect("executor")
        .join()
        .expect("executor thread")
}

pub fn run(args: ShardLogArgs) -> anyhow::Result<()> {
    let scratch = tempfile::Builder::new()
        .prefix("cairn-bench-log-")
        .tempdir_in(
            args.data
                .clone()
                .unwrap_or_else(|| PathBuf::from("/var/tmp")),
        )?;
    let mut fio_iops = Vec::new();
    for _ in 0..args.runs {
        fio_iops.push(
            crate::storage_node::fio(
                scratch.path(),
                "syncwrite",
                &["--rw=write", "--bs=4k", "--iodepth=1", "--fdatasync=1"],
                args.seconds,
            )?
            .1,
        );
    }
    let _ = std::fs::remove_file(scratch.path().join("fio-syncwrite"));
    let fio_median = median(&mut fio_iops);
    let mut cases = Vec::new();
    for &concurrency in &args.concurrency {
        let mut rates = Vec::new();
        let mut batch_sizes = Vec::new();
        for run in 0..args.runs {
            eprintln!(
                "shard-log: size {} concurrency {concurrency} run {run}",
                args.size
            );
            let directory = scratch.path().join(format!("log-{concurrency}-{run}"));
            let result = run_once(directory.clone(), args.size, concurrency, args.seconds);
            let _ = std::fs::remove_dir_all(&directory);
            rates.push(result.puts_per_second);
            batch_sizes.push(result.records_per_fdatasync);
        }
        let rate = median(&mut rates);
        cases.push(json!({
            "concurrency": concurrency,
            "puts_per_second_median": rate,
            "records_per_fdatasync_median": median(&mut batch_sizes),
            "vs_fio_fdatasync_per_write": rate / fio_median,
            "runs_puts_per_second": rates,
        }));
    }
    let report = json!({
        "workload": "shard-log",
        "schema_version": 1,
        "shard_size_bytes": args.size,
        "seconds_per_run": args.seconds,
        "runs": args.runs,
        "fio_write_4k_fdatasync_each_iops_median": fio_median,
        "cases": cases,
    });
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}
