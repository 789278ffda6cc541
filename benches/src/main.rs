//! `cairn-bench`: one binary, one subcommand per workload. Every workload prints one JSON document
//! on stdout (human progress goes to stderr) and, where the issue asks for it, measures a reference
//! (fio, raw ISA-L, a peer server) in the same run so results are compared as ratios.

use clap::{Parser, Subcommand};

mod checkpoint;
mod cpu;
mod ec;
mod edge_routing;
mod heal;
mod load;
mod meta;
mod s3;
mod shard_log;
mod sse;
mod storage_node;
mod tune;

#[derive(Parser)]
#[command(name = "cairn-bench", about = "Cairn benchmark harness")]
struct Cli {
    #[command(subcommand)]
    workload: Workload,
}

#[derive(Subcommand)]
enum Workload {
    /// Erasure-coding throughput: codecs, raw ISA-L, streaming encoder (JSON on stdout).
    Ec(ec::EcArgs),
    /// Shard put/get through the storage-node RPC next to fio on the same disk (JSON on stdout).
    StorageNode(storage_node::StorageNodeArgs),
    /// S3 load against any endpoint: put, get, range-get, mixed, list, multipart, delete,
    /// small-object, large-object (JSON, table, SVG plots).
    S3(Box<s3::S3Args>),
    /// One S3 workload against two endpoints in alternating rounds; ratios with min/median/max.
    Compare(Box<s3::compare::CompareArgs>),
    /// Metadata cluster: PrepareWrite+CommitWrite pairs/s next to raw LMDB commits (JSON).
    Meta(meta::MetaArgs),
    /// Metadata checkpoints as a partition grows, next to writing the whole state (JSON).
    MetaCheckpoint(checkpoint::CheckpointArgs),
    /// The shard log in-process: group commit against fio's fdatasync-per-write rate (JSON).
    ShardLog(shard_log::ShardLogArgs),
    /// SSE on one core: chunked AES-256-GCM encrypt/decrypt next to MD5, CRC32C, memcpy (JSON).
    Sse(sse::SseArgs),
    /// Sweep `cairn dev` knobs (EC scheme/codec, piece size, executors) under S3 workloads and
    /// report the best setting per workload (JSON).
    Tune(Box<tune::TuneArgs>),
    /// The edge's WASM routing decision in ns/request next to the same code called natively.
    EdgeRouting(edge_routing::EdgeRoutingArgs),
    /// Time to restore full redundancy after a storage node is killed, and the heal rate next to
    /// the survivors' shard-log read bandwidth (a `cairn cluster init` cluster; JSON).
    Heal(heal::HealArgs),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.workload {
        Workload::Ec(args) => ec::run(args),
        Workload::StorageNode(args) => storage_node::run(args),
        Workload::ShardLog(args) => shard_log::run(args),
        Workload::Sse(args) => sse::run(args),
        Workload::Meta(args) => meta::run(args),
        Workload::MetaCheckpoint(args) => checkpoint::run(args),
        Workload::S3(args) => s3::run(*args),
        Workload::Compare(args) => s3::compare::run(*args),
        Workload::Tune(args) => tune::run(*args),
        Workload::EdgeRouting(args) => edge_routing::run(args),
        Workload::Heal(args) => heal::run(args),
    }
}
