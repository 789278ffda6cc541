//! `cairn-bench meta`: committed PrepareWrite+CommitWrite pairs per second on a local 3-replica
//! metadata cluster (three in-process `MetaNode`s over real TCP on 127.0.0.1, LMDB with fsync on),
//! for several partition counts, next to the raw LMDB commit+fsync rate of the same disk measured
//! in the same run; then ListObjects keys/s over everything the run wrote.
//!
//! Each pair is two Raft entries (prepare, commit) and each entry is an fsynced LMDB commit on
//! every replica, all three replicas on the one disk here, so "per partition" figures are reported
//! as entries/s beside the raw commit rate.

use crate::load::median;
use cairn_meta_state::{
    Acl, Checksums, Command, CommitWrite, ListObjectsRequest, PrepareWrite, Response, StorageClass,
    VersioningState,
};
use cairn_raft::{MetaClient, MetaClientConfig, MetaNode, MetaNodeConfig, RaftTiming};
use clap::Args;
use hdrhistogram::Histogram;
use serde_json::json;
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
}

const BUCKET: &str = "bench";

fn prepare(key: &str) -> Command {
    Command::PrepareWrite(PrepareWrite {
        bucket: BUCKET.to_owned(),
        key: key.to_owned(),
        idempotency_token: format!("token-{key}"),
        size_bytes: 0,
        content_type: "application/octet-stream".to_owned(),
        owner: "bench".to_owned(),
        user_metadata: BTreeMap::new(),
        storage_class: StorageClass::Standard,
        acl: Acl::default(),
        ec_scheme: "isal-cauchy:4+2".to_owned(),
        piece_size_bytes: 262_144,
        versioning: VersioningState::Unversioned,
        now_ms: 1_700_000_000_000,
    })
}

/// One PrepareWrite + CommitWrite of an empty object.
async fn put_pair(client: &MetaClient, key: &str) -> anyhow::Result<()> {
    let prepared = client.write(prepare(key)).await?;
    let Ok(Response::Prepared { record, .. }) = prepared.result else {
        anyhow::bail!("prepare {key}: {:?}", prepared.result);
    };
    let committed = client
        .write(Command::CommitWrite(CommitWrite {
            bucket: BUCKET.to_owned(),
            key: key.to_owned(),
            version_id: record.version_id,
            idempotency_token: format!("token-{key}"),
            checksums: Checksums {
                etag: "d41d8cd98f00b204e9800998ecf8427e".to_owned(),
                additional: None,
            },
            parts: Vec::new(),
            now_ms: 1_700_000_000_001,
        }))
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
    client: Arc<MetaClient>,
    _dirs: Vec<tempfile::TempDir>,
}

async fn start_cluster(partitions: u32, data: &Path) -> anyhow::Result<Cluster> {
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
        config.timing = RaftTiming {
            heartbeat_interval_ms: 50,
            election_timeout_min_ms: 300,
            election_timeout_max_ms: 600,
            ..RaftTiming::default()
        };
        nodes.push(MetaNode::start_with_listener(config, listener).await?);
        dirs.push(dir);
    }
    let client = Arc::new(MetaClient::new(MetaClientConfig::new(peers, partitions)));
    // The first write waits for the elections.
    put_pair(&client, "warm-up").await?;
    Ok(Cluster {
        nodes,
        client,
        _dirs: dirs,
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
                let cluster = start_cluster(partitions, data).await?;
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
            "pairs_per_second_median": rate,
            "raft_entries_per_second_per_partition": rate * 2.0 / f64::from(partitions),
            "vs_raw_lmdb_commit_per_partition": rate * 2.0 / f64::from(partitions) / raw_median,
            "pair_latency_us_p50": histogram.value_at_quantile(0.5),
            "pair_latency_us_p99": histogram.value_at_quantile(0.99),
            "runs_pairs_per_second": rates,
            "keys_written_last_run": last_keys,
        }));
    }
    let report = json!({
        "workload": "meta",
        "schema_version": 1,
        "replicas": 3,
        "seconds_per_run": args.seconds,
        "runs": args.runs,
        "raw_lmdb_commits_per_second_median": raw_median,
        "cases": cases,
        "list_objects": list_report,
    });
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}
