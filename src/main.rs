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
    /// Seconds between compaction passes.
    #[arg(long, default_value_t = 10)]
    compaction_interval_secs: u64,
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
            cairn_storage::run(config).context("storage node")
        }
    }
}
