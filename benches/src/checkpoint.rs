//! `cairn-bench meta-checkpoint`: what a metadata checkpoint costs as a partition grows, next to
//! what writing the whole state at every checkpoint costs on the same state in the same run.
//!
//! One group's storage (`cairn_raft::store`, LMDB with fsync, on `--data`) applies PrepareWrite +
//! CommitWrite pairs of 4 KiB objects (a 4+2 shard map each) through openraft's state-machine
//! interface, one command per log entry, and writes a checkpoint every `--every` entries, as a
//! metadata replica does (`RaftTiming::snapshot_after_log_entries`). At each report point (every
//! doubling of the object count) it also times the reference: encoding the whole state as one
//! snapshot (what the state lock was held for before checkpoints became incremental) and writing
//! that blob to an LMDB environment of its own with fsync. The ratios are reference ÷
//! checkpoint, for the time the state lock is held (applies wait) and for the whole write.
//! `follower_snapshot_ms` is what the rare whole-state snapshot for a lagging follower costs now
//! (read from LMDB and encoded).

use std::time::Instant;

use cairn_meta_state::{
    Acl, BlockShards, Command, NodeId, PartShards, Response, Role, ShardIndex, ShardPlacement,
    StateMachine,
};
use cairn_raft::store::{DEFAULT_MAP_SIZE_BYTES, open_group_storage};
use cairn_raft::types::{Entry, LogId, MetaRequest};
use clap::Args;
use openraft::storage::{RaftSnapshotBuilder, RaftStateMachine};
use openraft::{CommittedLeaderId, EntryPayload};
use serde_json::json;

use crate::load::median;
use crate::meta::{BUCKET, commit_command, prepare_sized};

#[derive(Args, Debug)]
pub struct CheckpointArgs {
    /// Objects written in total (two log entries each).
    #[arg(long, default_value_t = 1_000_000)]
    objects: u64,
    /// Log entries between checkpoints (the metadata service's default).
    #[arg(long, default_value_t = 10_000)]
    every: u64,
    /// First report point (objects); later ones double it, the last is `--objects`.
    #[arg(long, default_value_t = 62_500)]
    first_report: u64,
    /// Reference measurements per report point; the median is reported.
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Directory for the LMDB files (on the disk under test).
    #[arg(long, default_value = "/var/tmp")]
    data: String,
}

fn entry(index: u64, command: Command) -> Entry {
    Entry {
        log_id: LogId::new(CommittedLeaderId::new(1, 1), index),
        payload: EntryPayload::Normal(MetaRequest(command)),
    }
}

fn shard_map() -> Vec<PartShards> {
    let shards = (0..6u16)
        .map(|index| {
            (
                ShardIndex(index),
                ShardPlacement {
                    node_id: NodeId(100 + u64::from(index)),
                    availability_zone: format!("az-{}", index % 3),
                    crc32c: 0xC0DE_0000 + u32::from(index),
                },
            )
        })
        .collect();
    vec![PartShards {
        part_number: 1,
        length_bytes: 4096,
        blocks: vec![BlockShards {
            length_bytes: 4096,
            shards,
        }],
    }]
}

fn create_bucket() -> Command {
    Command::CreateBucket(cairn_meta_state::CreateBucket {
        bucket: BUCKET.to_owned(),
        owner: "bench".to_owned(),
        primary_region: "us-east-1".to_owned(),
        ec_scheme: "isal-cauchy:4+2".to_owned(),
        acl: Acl::default(),
        now_ms: 1_700_000_000_000,
        attributes: Default::default(),
    })
}

pub fn run(args: CheckpointArgs) -> anyhow::Result<()> {
    anyhow::ensure!(args.every > 0 && args.first_report > 0 && args.runs > 0);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(measure(args))
}

async fn measure(args: CheckpointArgs) -> anyhow::Result<()> {
    let dir = tempfile::tempdir_in(&args.data)?;
    let (_log, mut store) = open_group_storage(
        &dir.path().join("group"),
        Role::ObjectPartition {
            partition_index: 0,
            partition_count: 1,
        },
        DEFAULT_MAP_SIZE_BYTES,
    )?;
    // The reference's blob goes to an environment of its own, as the whole snapshot did.
    let blob_dir = dir.path().join("blob");
    std::fs::create_dir_all(&blob_dir)?;
    // SAFETY: a fresh directory this process alone opens, once.
    let blob_env = unsafe {
        heed::EnvOpenOptions::new()
            .map_size(DEFAULT_MAP_SIZE_BYTES)
            .max_dbs(1)
            .open(&blob_dir)?
    };
    let write_txn = blob_env.write_txn()?;
    let blob_db = blob_env
        .create_databases_and_commit(write_txn, |opener, write_txn| {
            let database = opener.create_database::<heed::types::Str, heed::types::Bytes>(
                write_txn,
                Some("snapshot"),
            )?;
            Ok::<_, heed::Error>(heed::CommitOrAbort::<_, ()>::Commit(database))
        })?
        .unwrap_commit();

    let mut index = 1u64;
    store.apply([entry(index, create_bucket())]).await?;
    let mut since_checkpoint = 1u64;
    let mut checkpoint_ms: Vec<f64> = Vec::new();
    // Of each checkpoint: how long the state lock was held (applies wait that long).
    let mut locked_ms: Vec<f64> = Vec::new();
    let mut points = Vec::new();
    let mut next_report = args.first_report.min(args.objects);
    let started = Instant::now();
    for object in 0..args.objects {
        let key = format!("objects/{object:012}");
        index += 1;
        let prepared = store
            .apply([entry(index, prepare_sized(&key, 4096))])
            .await?;
        let Some(Ok(Response::Prepared { record, .. })) = prepared
            .into_iter()
            .next()
            .and_then(|response| response.0)
            .map(|output| output.result)
        else {
            anyhow::bail!("prepare {key} refused");
        };
        index += 1;
        let commit = commit_command(&key, record.version_id, shard_map());
        store.apply([entry(index, commit)]).await?;
        since_checkpoint += 2;
        if since_checkpoint >= args.every {
            store.get_snapshot_builder().await.build_snapshot().await?;
            let stats = store
                .last_checkpoint()
                .ok_or_else(|| anyhow::anyhow!("a checkpoint without figures"))?;
            checkpoint_ms.push(stats.total_seconds * 1e3);
            locked_ms.push(stats.locked_seconds * 1e3);
            since_checkpoint = 0;
        }
        if object + 1 == next_report {
            let objects = object + 1;
            // Bring the store to this state (an extra checkpoint, not counted), then read the
            // state back whole as a follower's snapshot would be.
            store.get_snapshot_builder().await.build_snapshot().await?;
            since_checkpoint = 0;
            let start = Instant::now();
            let snapshot = store
                .get_current_snapshot()
                .await?
                .ok_or_else(|| anyhow::anyhow!("no snapshot after a checkpoint"))?;
            let follower_snapshot_ms = start.elapsed().as_secs_f64() * 1e3;
            let state = StateMachine::from_snapshot_bytes(snapshot.snapshot.get_ref())
                .map_err(|error| anyhow::anyhow!("snapshot: {error}"))?;
            drop(snapshot);
            // The reference on this state: encode it whole, then write it with fsync.
            let (mut encode_ms, mut write_ms, mut snapshot_bytes) = (Vec::new(), Vec::new(), 0);
            for _ in 0..args.runs {
                let start = Instant::now();
                let bytes = state.to_snapshot_bytes();
                encode_ms.push(start.elapsed().as_secs_f64() * 1e3);
                snapshot_bytes = bytes.len();
                let start = Instant::now();
                let mut write_txn = blob_env.write_txn()?;
                blob_db.put(&mut write_txn, "data", &bytes)?;
                write_txn.commit()?;
                write_ms.push(start.elapsed().as_secs_f64() * 1e3);
            }
            drop(state);
            let mut recent: Vec<f64> = checkpoint_ms.iter().rev().take(5).copied().collect();
            let checkpoint = median(&mut recent);
            let mut recent: Vec<f64> = locked_ms.iter().rev().take(5).copied().collect();
            let locked = median(&mut recent);
            let encode = median(&mut encode_ms);
            let write = median(&mut write_ms);
            eprintln!(
                "meta-checkpoint: {objects} objects: checkpoint {checkpoint:.1} ms ({locked:.2} ms \
                 locked), whole state {encode:.1} ms encode + {write:.1} ms write \
                 ({snapshot_bytes} bytes)"
            );
            points.push(json!({
                "objects": objects,
                "checkpoint_ms_median_of_last_5": checkpoint,
                "whole_state_encode_ms": encode,
                "whole_state_write_ms": write,
                "whole_state_bytes": snapshot_bytes,
                "follower_snapshot_ms": follower_snapshot_ms,
                "checkpoint_locked_ms_median_of_last_5": locked,
                "ratio_whole_state_encode_over_checkpoint_locked": encode / locked,
                "ratio_whole_state_encode_over_checkpoint": encode / checkpoint,
                "ratio_whole_state_total_over_checkpoint": (encode + write) / checkpoint,
            }));
            next_report = (next_report * 2).min(args.objects);
            if next_report == objects {
                next_report = u64::MAX;
            }
        }
    }
    let report = json!({
        "schema": "cairn-bench/meta-checkpoint/1",
        "objects": args.objects,
        "entries_between_checkpoints": args.every,
        "checkpoints": checkpoint_ms.len(),
        "checkpoint_ms_median": median(&mut checkpoint_ms.clone()),
        "checkpoint_ms_max": checkpoint_ms.iter().copied().fold(0.0, f64::max),
        "checkpoint_locked_ms_median": median(&mut locked_ms.clone()),
        "checkpoint_locked_ms_max": locked_ms.iter().copied().fold(0.0, f64::max),
        "seconds": started.elapsed().as_secs_f64(),
        "points": points,
    });
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}
