//! `cairn`: one binary, one subcommand per role (see ARCHITECTURE.md).

use anyhow::Context;
use clap::{Parser, Subcommand};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Parser)]
#[command(
    name = "cairn",
    version,
    about = "Cairn: an S3-compatible, erasure-coded object store"
)]
struct Cli {
    #[command(subcommand)]
    role: Role,
}

#[derive(Subcommand)]
enum Role {
    /// Run a storage node: one executor and one O_DIRECT shard log per core.
    Storage(StorageArgs),
    /// Run a metadata replica: one replica of the bucket-service group and of every object
    /// partition group (openraft, state in LMDB).
    Meta(MetaArgs),
    /// The embedded single-machine setup. Today: six storage nodes in three simulated AZs in one
    /// process (the S3 gateway and metadata service join it as they land; see README).
    Dev(DevArgs),
}

#[derive(clap::Args)]
struct MetaArgs {
    /// This replica's id: non-zero, unique in the cluster, stable across restarts.
    #[arg(long)]
    id: u64,
    /// Address of the Raft and client RPC listener.
    #[arg(long)]
    listen: SocketAddr,
    /// Data directory (one LMDB environment per group below it).
    #[arg(long)]
    data: PathBuf,
    /// Every initial replica, this one included: `1=127.0.0.1:7401,2=127.0.0.2:7401,...`.
    #[arg(long)]
    peers: String,
    /// Object partitions (fixed for the cluster's life).
    #[arg(long, default_value_t = 8)]
    partitions: u32,
    /// Join an existing cluster instead of initialising the groups with `--peers` as voters.
    #[arg(long)]
    join: bool,
}

#[derive(clap::Args)]
struct DevArgs {
    /// Data directory; every role keeps its state below it, so a restart keeps all data.
    #[arg(long, default_value = "cairn-data")]
    data: PathBuf,
    /// First storage-node port; the six nodes use this port and the five after it on 127.0.0.1.
    #[arg(long, default_value_t = 7101)]
    storage_base_port: u16,
}

#[derive(clap::Args)]
struct StorageArgs {
    /// Address to serve the storage RPC on.
    #[arg(long, default_value = "127.0.0.1:7100")]
    listen: SocketAddr,
    /// Data directory (must be on a file system with O_DIRECT, e.g. ext4 or xfs).
    #[arg(long)]
    data: PathBuf,
    /// Availability zone of this node.
    #[arg(long, default_value = "az1")]
    az: String,
    /// Executors and shard logs, fixed when the data directory is first initialised (default: one per core).
    #[arg(long)]
    cores: Option<usize>,
    /// Hot-shard cache per core, in MiB.
    #[arg(long, default_value_t = 64)]
    cache_mib: u64,
    /// Segment size of the shard logs, in MiB.
    #[arg(long, default_value_t = 128)]
    segment_mib: u64,
    /// Open client connections allowed per core; more are closed as they arrive.
    #[arg(long, default_value_t = 4096)]
    max_connections_per_core: usize,
    /// Seconds between compaction passes.
    #[arg(long, default_value_t = 10)]
    compaction_interval_secs: u64,
}

/// `CAIRN_FAULT_INJECT_WRITE_ERRNO=N` makes the node's first shard-log write fail with errno N
/// (tests use it to check that EIO stops the node and ENOSPC does not).
fn fault_injection_errno() -> anyhow::Result<Option<i32>> {
    match std::env::var("CAIRN_FAULT_INJECT_WRITE_ERRNO") {
        Ok(value) => {
            Ok(Some(value.parse().context(
                "CAIRN_FAULT_INJECT_WRITE_ERRNO must be an errno number",
            )?))
        }
        Err(_) => Ok(None),
    }
}

fn run_dev(args: DevArgs) -> anyhow::Result<()> {
    const NODES: u16 = 6;
    let mut threads = Vec::new();
    for node in 0..NODES {
        let listen = SocketAddr::from(([127, 0, 0, 1], args.storage_base_port + node));
        let availability_zone = format!("az{}", node / 2 + 1);
        let data = args.data.join(format!("storage-{node}"));
        let mut config = cairn_storage::NodeConfig::new(listen, data, availability_zone.clone());
        config.cores = Some(1);
        println!("storage node {node}: {listen} ({availability_zone})");
        threads.push(
            std::thread::Builder::new()
                .name(format!("storage-node-{node}"))
                .spawn(move || cairn_storage::run(config))?,
        );
    }
    println!(
        "cairn dev: data in {}; the S3 gateway is not part of this build yet",
        args.data.display()
    );
    for thread in threads {
        thread
            .join()
            .map_err(|_| anyhow::anyhow!("a storage node thread panicked"))??;
    }
    Ok(())
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("CAIRN_LOG")
                .unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    match cli.role {
        Role::Storage(args) => {
            let mut config = cairn_storage::NodeConfig::new(args.listen, args.data, args.az);
            config.cores = args.cores;
            config.cache_capacity_bytes_per_core = args.cache_mib << 20;
            config.segment_size_bytes = args.segment_mib << 20;
            config.compaction_interval = Duration::from_secs(args.compaction_interval_secs);
            config.max_connections_per_core = args.max_connections_per_core;
            config.inject_write_errno = fault_injection_errno()?;
            cairn_storage::run(config).context("storage node")
        }
        Role::Meta(args) => {
            let peers = cairn_raft::parse_peers(&args.peers)?;
            let mut config =
                cairn_raft::MetaNodeConfig::new(args.id, args.listen, args.data, peers);
            config.partition_count = args.partitions;
            config.bootstrap = !args.join;
            tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .context("tokio runtime")?
                .block_on(cairn_raft::run_meta_node(config))
                .context("metadata replica")
        }
        Role::Dev(args) => run_dev(args),
    }
}
