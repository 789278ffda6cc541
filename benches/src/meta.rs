//! `cairn-bench meta`: committed PrepareWrite+CommitWrite pairs per second on a local 3-replica
//! metadata cluster (three in-process `MetaNode`s over real TCP on 127.0.0.1, LMDB with fsync on),
//! for several partition counts, next to the raw LMDB commit+fsync rate of the same disk measured
//! in the same run; then ListObjects keys/s over everything the run wrote; then the ListObjects
//! figure proper: a bucket of `--list-keys` keys (1M by default) over `--list-partitions`
//! partitions, loaded through the batched PUT path (PrepareWrite and CommitWrite batches per
//! partition, one log entry per command), listed end to end at 1000 keys a page.
//!
//! Each pair is two commands (prepare, commit). The leader's group commit (`cairn_raft::proposer`)
//! puts the commands that queue up while an entry is being flushed into one Raft entry, and each
//! entry is an fsynced LMDB commit on every replica, all three replicas on the one disk here.
//! `raft_entries_per_second_per_partition` counts commands (2 per pair), as it did when every
//! command was its own entry, so above the raw commit rate it shows what batching gains.
//!
//! The read figure (`--readers`, 0 skips it): linearizable GetObject reads per second of
//! `--readers` concurrent readers over 1,000 keys, with the leaders' read-index checks shared by
//! concurrent reads (`cairn_raft::read_index`, the default) and, in the same run on a fresh
//! cluster, with one check per read (`RaftTiming::share_read_index_checks` off, as openraft
//! does it); each run reports both rates, their ratio and the reads each check served.

use crate::load::median;
use cairn_meta_state::{
    Acl, Checksums, Command, CommitWrite, ListObjectsRequest, PartShards, PrepareWrite, Query,
    Response, StorageClass, VersionId, VersionSelector, VersioningState,
};
use cairn_raft::{MetaClient, MetaClientConfig, MetaNode, MetaNodeConfig, RaftTiming};
use clap::Args;
use hdrhistogram::Histogram;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Args, Debug)]
pub struct MetaArgs {
    /// Partition counts to measure.
    #[arg(long, value_delimiter = ',', default_value = "1,4")]
    partitions: Vec<u32>,
    /// Concurrent writers (each one pair in flight).
    #[arg(long, default_value_t = 32)]
    writers: usize,
    /// Seconds per run.
    #[arg(long, default_value_t = 4.0)]
    seconds: f64,
    /// Runs per case; the median is reported.
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Directory for the replicas' LMDB files (on the disk under test).
    #[arg(long, default_value = "/var/tmp")]
    data: String,
    /// Keys of the ListObjects figure's bucket (0 skips the figure).
    #[arg(long, default_value_t = 1_000_000)]
    list_keys: usize,
    /// Partitions of the ListObjects figure's cluster.
    #[arg(long, default_value_t = 8)]
    list_partitions: u32,
    /// Full listings of that bucket; the median is reported.
    #[arg(long, default_value_t = 3)]
    list_runs: usize,
    /// Concurrent loaders of that bucket, each sending batches of `--load-batch-keys` keys.
    #[arg(long, default_value_t = 8)]
    load_writers: usize,
    /// Keys per loader batch (their PrepareWrites, then their CommitWrites, one request per
    /// partition each).
    #[arg(long, default_value_t = 1000)]
    load_batch_keys: usize,
    /// Log entries each group's proposer may have in flight (`RaftTiming::proposals_in_flight`;
    /// default: the node's default).
    #[arg(long)]
    proposals_in_flight: Option<usize>,
    /// Concurrent readers of the read figure (0 skips it).
    #[arg(long, default_value_t = 32)]
    readers: usize,
    /// Partitions of the read figure's cluster.
    #[arg(long, default_value_t = 4)]
    read_partitions: u32,
}

pub(crate) const BUCKET: &str = "bench";

fn prepare(key: &str) -> Command {
    prepare_sized(key, 0)
}

/// PrepareWrite of `key` in the bench bucket, token `token-<key>`, 4+2 with 256 KiB pieces.
pub(crate) fn prepare_sized(key: &str, size_bytes: u64) -> Command {
    Command::PrepareWrite(PrepareWrite {
        bucket: BUCKET.to_owned(),
        key: key.to_owned(),
        idempotency_token: format!("token-{key}"),
        size_bytes,
        content_type: "application/octet-stream".to_owned(),
        owner: "bench".to_owned(),
        user_metadata: BTreeMap::new(),
        storage_class: StorageClass::Standard,
        acl: Acl::default(),
        ec_scheme: "isal-cauchy:4+2".to_owned(),
        piece_size_bytes: 262_144,
        versioning: VersioningState::Unversioned,
        now_ms: 1_700_000_000_000,
        attributes: Default::default(),
    })
}

/// CommitWrite of what [`prepare_sized`] prepared for `key`.
pub(crate) fn commit_command(key: &str, version_id: VersionId, parts: Vec<PartShards>) -> Command {
    Command::CommitWrite(CommitWrite {
        bucket: BUCKET.to_owned(),
        key: key.to_owned(),
        version_id,
        idempotency_token: format!("token-{key}"),
        checksums: Checksums {
            etag: "d41d8cd98f00b204e9800998ecf8427e".to_owned(),
            additional: None,
        },
        parts,
        now_ms: 1_700_000_000_001,
    })
}

/// One PrepareWrite + CommitWrite of an empty object.
async fn put_pair(client: &MetaClient, key: &str) -> anyhow::Result<()> {
    let prepared = client.write(prepare(key)).await?;
    let Ok(Response::Prepared { record, .. }) = prepared.result else {
        anyhow::bail!("prepare {key}: {:?}", prepared.result);
    };
    let committed = client
        .write(commit_command(key, record.version_id, Vec::new()))
        .await?;
    anyhow::ensure!(
        matches!(committed.result, Ok(Response::Committed { .. })),
        "commit {key}: {:?}",
        committed.result
    );
    Ok(())
}

struct Cluster {
    nodes: Vec<MetaNode>,
    peers: BTreeMap<u64, String>,
    client: Arc<MetaClient>,
    _dirs: Vec<tempfile::TempDir>,
}

fn test_timing(proposals_in_flight: Option<usize>) -> RaftTiming {
    let defaults = RaftTiming::default();
    RaftTiming {
        heartbeat_interval_ms: 50,
        election_timeout_min_ms: 300,
        election_timeout_max_ms: 600,
        proposals_in_flight: proposals_in_flight.unwrap_or(defaults.proposals_in_flight),
        ..defaults
    }
}

/// Timing for the bulk load: openraft bounds an AppendEntries by the heartbeat interval, and a
/// follower's batch (hundreds of entries, one fsync, on a disk shared by every replica) can take
/// longer than 50 ms. Checkpoints at the default interval: they write only changed records.
fn bulk_timing() -> RaftTiming {
    RaftTiming {
        heartbeat_interval_ms: 250,
        election_timeout_min_ms: 1_500,
        election_timeout_max_ms: 3_000,
        ..RaftTiming::default()
    }
}

async fn start_cluster(
    partitions: u32,
    data: &Path,
    proposals_in_flight: Option<usize>,
) -> anyhow::Result<Cluster> {
    start_cluster_with(partitions, data, test_timing(proposals_in_flight)).await
}

async fn start_cluster_with(
    partitions: u32,
    data: &Path,
    timing: RaftTiming,
) -> anyhow::Result<Cluster> {
    let mut listeners = Vec::new();
    let mut peers = BTreeMap::new();
    for node_id in 1..=3u64 {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        peers.insert(node_id, listener.local_addr()?.to_string());
        listeners.push((node_id, listener));
    }
    let mut nodes = Vec::new();
    let mut dirs = Vec::new();
    for (node_id, listener) in listeners {
        let dir = tempfile::Builder::new()
            .prefix("cairn-bench-meta-")
            .tempdir_in(data)?;
        let mut config = MetaNodeConfig::new(
            node_id,
            listener.local_addr()?,
            dir.path().to_owned(),
            peers.clone(),
        );
        config.partition_count = partitions;
        config.timing = timing.clone();
        nodes.push(MetaNode::start_with_listener(config, listener).await?);
        dirs.push(dir);
    }
    let client = Arc::new(MetaClient::new(MetaClientConfig::new(
        peers.clone(),
        partitions,
    )));
    // The first write waits for the elections.
    put_pair(&client, "warm-up").await?;
    Ok(Cluster {
        nodes,
        peers,
        client,
        _dirs: dirs,
    })
}

/// The ListObjects figure's keys: 100 "directories" with the keys spread over them.
fn list_key(index: usize) -> String {
    format!("dir-{:02}/object-{index:08}", index % 100)
}

/// PrepareWrite + CommitWrite of `keys`, each phase as one batch per partition; a key whose
/// batch item was not applied is put again alone (both commands are idempotent by its token).
async fn put_batch(client: &MetaClient, keys: &[String]) -> anyhow::Result<()> {
    let prepares = keys.iter().map(|key| prepare(key)).collect();
    let prepared = client.write_many(prepares).await?;
    let mut commits = Vec::new();
    let mut committing = Vec::new();
    let mut again = Vec::new();
    for (key, answer) in keys.iter().zip(prepared) {
        match answer.map(|output| output.result) {
            Ok(Ok(Response::Prepared { record, .. })) => {
                commits.push(commit_command(key, record.version_id, Vec::new()));
                committing.push(key);
            }
            _ => again.push(key),
        }
    }
    let committed = client.write_many(commits).await?;
    for (key, answer) in committing.into_iter().zip(committed) {
        if !matches!(
            answer.map(|output| output.result),
            Ok(Ok(Response::Committed { .. }))
        ) {
            again.push(key);
        }
    }
    for key in again {
        put_pair(client, key).await?;
    }
    Ok(())
}

/// Keys of the read figure.
const READ_KEYS: usize = 1000;

/// One run of the read figure on a fresh cluster: (reads per second, reads, read-index checks).
async fn read_run(args: &MetaArgs, shared: bool) -> anyhow::Result<(f64, u64, u64)> {
    let timing = RaftTiming {
        share_read_index_checks: shared,
        ..test_timing(args.proposals_in_flight)
    };
    let cluster = start_cluster_with(args.read_partitions, Path::new(&args.data), timing).await?;
    let keys: Vec<String> = (0..READ_KEYS)
        .map(|index| format!("read/{index:05}"))
        .collect();
    put_batch(&cluster.client, &keys).await?;
    let counters = |cluster: &Cluster| {
        cluster.nodes.iter().flat_map(|node| node.status()).fold(
            (0, 0),
            |(reads, checks), status| {
                (
                    reads + status.read_index.reads,
                    checks + status.read_index.checks,
                )
            },
        )
    };
    let (reads_before, checks_before) = counters(&cluster);
    let deadline = Instant::now() + Duration::from_secs_f64(args.seconds);
    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for reader in 0..args.readers {
        let client = cluster.client.clone();
        tasks.spawn(async move {
            let mut count = 0usize;
            while Instant::now() < deadline {
                let key = format!("read/{:05}", (reader * 7_919 + count * 31) % READ_KEYS);
                let answer = client
                    .read(Query::GetObject {
                        bucket: BUCKET.to_owned(),
                        key: key.clone(),
                        version: VersionSelector::Current,
                    })
                    .await?;
                anyhow::ensure!(
                    matches!(answer, Ok(Response::Object(_))),
                    "read {key}: {answer:?}"
                );
                count += 1;
            }
            anyhow::Ok(count as u64)
        });
    }
    let mut reads = 0u64;
    while let Some(result) = tasks.join_next().await {
        reads += result??;
    }
    let rate = reads as f64 / start.elapsed().as_secs_f64();
    let (reads_after, checks_after) = counters(&cluster);
    for node in cluster.nodes {
        node.shutdown().await;
    }
    Ok((
        rate,
        reads_after - reads_before,
        checks_after - checks_before,
    ))
}

/// The read figure: per run, one check per read, then shared checks, each on a fresh cluster.
fn read_figure(runtime: &tokio::runtime::Runtime, args: &MetaArgs) -> anyhow::Result<Value> {
    let mut runs = Vec::new();
    let (mut own, mut shared, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    for run in 0..args.runs {
        eprintln!("meta: reads, run {run}");
        let (own_rate, own_reads, own_checks) = runtime.block_on(read_run(args, false))?;
        let (shared_rate, shared_reads, shared_checks) = runtime.block_on(read_run(args, true))?;
        own.push(own_rate);
        shared.push(shared_rate);
        ratios.push(shared_rate / own_rate);
        runs.push(json!({
            "check_per_read": {
                "reads_per_second": own_rate,
                "reads": own_reads,
                "checks": own_checks,
            },
            "shared_checks": {
                "reads_per_second": shared_rate,
                "reads": shared_reads,
                "checks": shared_checks,
                "reads_per_check": shared_reads as f64 / shared_checks.max(1) as f64,
            },
            "shared_over_check_per_read": shared_rate / own_rate,
        }));
    }
    Ok(json!({
        "partitions": args.read_partitions,
        "readers": args.readers,
        "keys": READ_KEYS,
        "check_per_read_reads_per_second_median": median(&mut own),
        "shared_checks_reads_per_second_median": median(&mut shared),
        "shared_over_check_per_read_median": median(&mut ratios),
        "runs": runs,
    }))
}

/// Lists the whole bucket at 1000 keys a page: (keys, pages, seconds).
async fn list_bucket(client: &MetaClient) -> anyhow::Result<(u64, u64, f64)> {
    let start = Instant::now();
    let mut listed = 0u64;
    let mut pages = 0u64;
    let mut token = None;
    let mut last_key: Option<String> = None;
    loop {
        let page = client
            .list_objects(ListObjectsRequest {
                bucket: BUCKET.to_owned(),
                max_keys: 1000,
                continuation_token: token.take(),
                ..ListObjectsRequest::default()
            })
            .await?
            .map_err(|error| anyhow::anyhow!("list: {error:?}"))?;
        // S3 order across pages: a listing that repeats or reorders keys is no figure at all.
        for object in &page.contents {
            anyhow::ensure!(
                last_key.as_ref().is_none_or(|last| *last < object.key),
                "{} listed after {last_key:?}",
                object.key
            );
            last_key = Some(object.key.clone());
        }
        listed += page.contents.len() as u64;
        pages += 1;
        match page.next_continuation_token {
            Some(next) if page.is_truncated => token = Some(next),
            _ => break,
        }
    }
    Ok((listed, pages, start.elapsed().as_secs_f64()))
}

/// The ListObjects figure: load `args.list_keys` keys, then list them `args.list_runs` times.
fn list_figure(
    runtime: &tokio::runtime::Runtime,
    args: &MetaArgs,
) -> anyhow::Result<serde_json::Value> {
    let data = Path::new(&args.data);
    runtime.block_on(async {
        let mut cluster = start_cluster_with(args.list_partitions, data, bulk_timing()).await?;
        // A bulk load on a busy machine can lose a leader for longer than a request's usual
        // deadline (elections are slow when the CPU is); wait it out instead of aborting.
        let mut patient = MetaClientConfig::new(cluster.peers.clone(), args.list_partitions);
        patient.operation_timeout_ms = 120_000;
        cluster.client = Arc::new(MetaClient::new(patient));
        eprintln!(
            "meta: loading {} keys into {} partitions",
            args.list_keys, args.list_partitions
        );
        let load_start = Instant::now();
        let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let mut loaders = tokio::task::JoinSet::new();
        for _ in 0..args.load_writers {
            let (client, next) = (cluster.client.clone(), next.clone());
            let (total, batch) = (args.list_keys, args.load_batch_keys);
            loaders.spawn(async move {
                loop {
                    let first = next.fetch_add(batch, std::sync::atomic::Ordering::Relaxed);
                    if first >= total {
                        return anyhow::Ok(());
                    }
                    let keys: Vec<String> =
                        (first..total.min(first + batch)).map(list_key).collect();
                    put_batch(&client, &keys).await?;
                }
            });
        }
        while let Some(result) = loaders.join_next().await {
            result??;
        }
        let load_seconds = load_start.elapsed().as_secs_f64();
        eprintln!("meta: loaded in {load_seconds:.1} s; listing");
        let mut rates = Vec::new();
        let mut pages = 0;
        for _ in 0..args.list_runs {
            let (listed, run_pages, seconds) = list_bucket(&cluster.client).await?;
            // The cluster's warm-up key is in the bucket too.
            anyhow::ensure!(
                listed == args.list_keys as u64 + 1,
                "listed {listed} of {} keys",
                args.list_keys + 1
            );
            rates.push(listed as f64 / seconds);
            pages = run_pages;
        }
        for node in cluster.nodes {
            node.shutdown().await;
        }
        let runs = rates.clone();
        anyhow::Ok(json!({
            "partitions": args.list_partitions,
            "replicas": 3,
            "keys": args.list_keys + 1,
            "page_size": 1000,
            "pages_per_listing": pages,
            "load_writers": args.load_writers,
            "load_batch_keys": args.load_batch_keys,
            "load_seconds": load_seconds,
            "load_keys_per_second": args.list_keys as f64 / load_seconds,
            "list_keys_per_second_median": median(&mut rates),
            "list_runs_keys_per_second": runs,
        }))
    })
}

/// Single-threaded LMDB write transactions (one small put + commit with fsync each) per second.
fn raw_lmdb_commits_per_second(data: &Path, seconds: f64) -> anyhow::Result<f64> {
    let dir = tempfile::Builder::new()
        .prefix("cairn-bench-lmdb-")
        .tempdir_in(data)?;
    // SAFETY: the environment is opened once, in a fresh directory no other process uses.
    let env = unsafe {
        heed::EnvOpenOptions::new()
            .map_size(1 << 30)
            .open(dir.path())?
    };
    let transaction = env.write_txn()?;
    let database: heed::Database<heed::types::Bytes, heed::types::Bytes> = env
        .create_databases_and_commit(transaction, |opener, transaction| {
            let database = opener.create_database(transaction, None)?;
            Ok::<_, heed::Error>(heed::CommitOrAbort::<_, ()>::Commit(database))
        })?
        .unwrap_commit();
    let deadline = Instant::now() + Duration::from_secs_f64(seconds);
    let start = Instant::now();
    let mut commits = 0u64;
    while Instant::now() < deadline {
        let mut transaction = env.write_txn()?;
        database.put(&mut transaction, &commits.to_be_bytes(), &[0x5a; 64])?;
        transaction.commit()?;
        commits += 1;
    }
    Ok(commits as f64 / start.elapsed().as_secs_f64())
}

pub fn run(args: MetaArgs) -> anyhow::Result<()> {
    let data = Path::new(&args.data);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let mut raw = Vec::new();
    for _ in 0..args.runs {
        raw.push(raw_lmdb_commits_per_second(data, args.seconds)?);
    }
    let raw_median = median(&mut raw);
    let mut cases = Vec::new();
    let mut list_report = json!(null);
    for &partitions in &args.partitions {
        let mut rates = Vec::new();
        let mut histogram = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
        let mut last_keys = 0u64;
        for run in 0..args.runs {
            eprintln!("meta: {partitions} partitions, run {run}");
            let (rate, run_histogram, keys, listing) = runtime.block_on(async {
                let cluster = start_cluster(partitions, data, args.proposals_in_flight).await?;
                let deadline = Instant::now() + Duration::from_secs_f64(args.seconds);
                let start = Instant::now();
                let mut tasks = tokio::task::JoinSet::new();
                for writer in 0..args.writers {
                    let client = cluster.client.clone();
                    tasks.spawn(async move {
                        let mut histogram =
                            Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("histogram");
                        let mut count = 0u64;
                        while Instant::now() < deadline {
                            let begin = Instant::now();
                            put_pair(&client, &format!("w{writer:03}/k{count:08}")).await?;
                            histogram.saturating_record(begin.elapsed().as_micros() as u64);
                            count += 1;
                        }
                        anyhow::Ok((count, histogram))
                    });
                }
                let mut pairs = 0u64;
                let mut histogram = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
                while let Some(result) = tasks.join_next().await {
                    let (count, worker_histogram) = result??;
                    pairs += count;
                    histogram.add(&worker_histogram)?;
                }
                let rate = pairs as f64 / start.elapsed().as_secs_f64();
                // List everything the run wrote, 1000 keys a page, merged across partitions.
                let list_start = Instant::now();
                let mut listed = 0u64;
                let mut token = None;
                loop {
                    let page = cluster
                        .client
                        .list_objects(ListObjectsRequest {
                            bucket: BUCKET.to_owned(),
                            max_keys: 1000,
                            continuation_token: token.take(),
                            ..ListObjectsRequest::default()
                        })
                        .await?
                        .map_err(|error| anyhow::anyhow!("list: {error:?}"))?;
                    listed += page.contents.len() as u64;
                    match page.next_continuation_token {
                        Some(next) if page.is_truncated => token = Some(next),
                        _ => break,
                    }
                }
                let listing = (listed, listed as f64 / list_start.elapsed().as_secs_f64());
                for node in cluster.nodes {
                    node.shutdown().await;
                }
                anyhow::Ok((rate, histogram, pairs, listing))
            })?;
            anyhow::ensure!(
                listing.0 == keys + 1,
                "listed {} of {} keys",
                listing.0,
                keys + 1
            );
            rates.push(rate);
            histogram.add(&run_histogram)?;
            last_keys = keys;
            if partitions == *args.partitions.iter().max().expect("a partition count") {
                list_report = json!({ "partitions": partitions, "keys": listing.0, "keys_per_second": listing.1 });
            }
        }
        let rate = median(&mut rates);
        cases.push(json!({
            "partitions": partitions,
            "writers": args.writers,
            "proposals_in_flight": args
                .proposals_in_flight
                .unwrap_or(RaftTiming::default().proposals_in_flight),
            "pairs_per_second_median": rate,
            "raft_entries_per_second_per_partition": rate * 2.0 / f64::from(partitions),
            "vs_raw_lmdb_commit_per_partition": rate * 2.0 / f64::from(partitions) / raw_median,
            "pair_latency_us_p50": histogram.value_at_quantile(0.5),
            "pair_latency_us_p99": histogram.value_at_quantile(0.99),
            "runs_pairs_per_second": rates,
            "keys_written_last_run": last_keys,
        }));
    }
    let reads = if args.readers > 0 {
        read_figure(&runtime, &args)?
    } else {
        json!(null)
    };
    let list_objects_bucket = if args.list_keys > 0 {
        list_figure(&runtime, &args)?
    } else {
        json!(null)
    };
    let report = json!({
        "workload": "meta",
        "schema_version": 2,
        "replicas": 3,
        "seconds_per_run": args.seconds,
        "runs": args.runs,
        "raw_lmdb_commits_per_second_median": raw_median,
        "cases": cases,
        "list_objects": list_report,
        "reads": reads,
        "list_objects_bucket": list_objects_bucket,
    });
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}
