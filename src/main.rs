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
    /// Run a metadata replica: it hosts the groups (bucket service, node registry, partition
    /// map, object partitions) that placement puts on it, 3 replicas each (openraft, LMDB).
    /// It exits with an error if its configuration does not match the recorded cluster layout.
    Meta(MetaArgs),
    /// Run an S3 gateway (monoio, one executor per core) in front of a metadata cluster and
    /// storage nodes.
    Gateway(GatewayArgs),
    /// The embedded single-machine setup: S3 gateway, one metadata replica and six storage nodes
    /// in three simulated AZs, in one process; EC 4+2.
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
    /// Every meta node, this one included, optionally with its availability zone:
    /// `1=127.0.0.1:7401@az1,2=127.0.0.2:7401@az2,...` (without zones every node is its own
    /// zone). Each group gets 3 of them as replicas, in distinct zones when there are 3 zones.
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
struct GatewayArgs {
    /// S3 listener.
    #[arg(long, default_value = "127.0.0.1:9000")]
    listen: SocketAddr,
    /// Metadata replicas, as given to `cairn meta --peers`: `1=HOST:PORT[@AZ],2=...`.
    #[arg(long)]
    meta: String,
    /// Object partitions of the metadata cluster (as given to `cairn meta`).
    #[arg(long, default_value_t = 8)]
    partitions: u32,
    /// Storage nodes: `ID=HOST:PORT@AZ,...` (ids are recorded in shard maps: keep them stable).
    #[arg(long)]
    storage: String,
    /// Executors (default: one per core).
    #[arg(long)]
    executors: Option<usize>,
    /// Region this gateway serves.
    #[arg(long, default_value = "us-east-1")]
    region: String,
}

/// Parses `ID=HOST:PORT@AZ,...`.
fn parse_storage_nodes(spec: &str) -> anyhow::Result<Vec<cairn_gateway::StorageNodeConfig>> {
    spec.split(',')
        .filter(|item| !item.trim().is_empty())
        .map(|item| {
            let (id, rest) = item
                .trim()
                .split_once('=')
                .context("storage node is ID=HOST:PORT@AZ")?;
            let (address, az) = rest
                .split_once('@')
                .context("storage node is ID=HOST:PORT@AZ")?;
            Ok(cairn_gateway::StorageNodeConfig::new(
                id.parse().context("storage node id")?,
                address.parse().context("storage node address")?,
                az,
            ))
        })
        .collect()
}

#[derive(clap::Args)]
struct DevArgs {
    /// Data directory; every role keeps its state below it, so a restart keeps all data.
    #[arg(long, default_value = "cairn-data")]
    data: PathBuf,
    /// S3 endpoint.
    #[arg(long, default_value = "127.0.0.1:9000")]
    listen: SocketAddr,
    /// First storage-node port; the six nodes use this port and the five after it on 127.0.0.1.
    #[arg(long, default_value_t = 7101)]
    storage_base_port: u16,
    /// Port of the metadata replica on 127.0.0.1.
    #[arg(long, default_value_t = 7400)]
    meta_port: u16,
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
    // One `cairn dev` per data directory: a second one fails here instead of sharing the ports
    // (SO_REUSEPORT) and fighting over the files.
    let _lock = cairn_shardlog::layout::lock_data_dir(&args.data)?;
    // From CAIRN_ROOT_ACCESS_KEY / CAIRN_ROOT_SECRET_KEY, or generated on first start and kept.
    let credentials_path = args.data.join("root-credentials");
    let (credentials, _generated) =
        cairn_gateway::RootCredentials::from_env_or_file(&credentials_path)
            .with_context(|| format!("root credentials in {}", credentials_path.display()))?;
    let mut threads = Vec::new();
    let mut storage_nodes = Vec::new();
    for node in 0..NODES {
        let listen = SocketAddr::from(([127, 0, 0, 1], args.storage_base_port + node));
        let availability_zone = format!("az{}", node / 2 + 1);
        storage_nodes.push(cairn_gateway::StorageNodeConfig::new(
            u64::from(node) + 1,
            listen,
            availability_zone.clone(),
        ));
        let data = args.data.join(format!("storage-{node}"));
        let mut config = cairn_storage::NodeConfig::new(listen, data, availability_zone);
        config.cores = Some(1);
        threads.push(
            std::thread::Builder::new()
                .name(format!("storage-node-{node}"))
                .spawn(move || cairn_storage::run(config).map_err(anyhow::Error::from))?,
        );
    }

    // One metadata replica (a single-voter Raft group per partition) on its own tokio runtime.
    let meta_address = SocketAddr::from(([127, 0, 0, 1], args.meta_port));
    let peers = std::collections::BTreeMap::from([(1u64, meta_address.to_string())]);
    let mut meta_config =
        cairn_raft::MetaNodeConfig::new(1, meta_address, args.data.join("meta"), peers.clone());
    meta_config.partition_count = DEV_PARTITIONS;
    // The metadata replica owns SIGINT/SIGTERM handling: when it returns, the whole process ends.
    std::thread::Builder::new()
        .name("meta".into())
        .spawn(move || {
            let result = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .context("tokio runtime")
                .and_then(|runtime| {
                    runtime
                        .block_on(cairn_raft::run_meta_node(meta_config))
                        .map_err(anyhow::Error::from)
                });
            match result {
                Ok(()) => std::process::exit(0),
                Err(error) => {
                    eprintln!("cairn dev: metadata replica stopped: {error:#}");
                    std::process::exit(1);
                }
            }
        })?;

    let meta = cairn_raft::MetaClientConfig::new(peers, DEV_PARTITIONS);
    let mut gateway = cairn_gateway::GatewayConfig::new(args.listen, storage_nodes, meta);
    gateway.root_credentials = Some(credentials.clone());
    let handle = cairn_gateway::start_gateway(gateway).context("gateway")?;
    println!("cairn dev: S3 endpoint http://{}", handle.local_address());
    println!("  access key: {}", credentials.access_key_id);
    println!("  secret key: {}", credentials.secret_access_key);
    println!(
        "  region: us-east-1; EC 4+2 over six storage nodes in three AZs; data in {}",
        args.data.display()
    );
    handle.wait().context("gateway")?;
    for thread in threads {
        thread
            .join()
            .map_err(|_| anyhow::anyhow!("a cairn dev thread panicked"))??;
    }
    Ok(())
}

/// Object partitions of the `cairn dev` metadata replica.
const DEV_PARTITIONS: u32 = 4;

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
            let (peers, zones) = cairn_raft::parse_peer_list(&args.peers)?;
            let mut config =
                cairn_raft::MetaNodeConfig::new(args.id, args.listen, args.data, peers);
            config.zones = zones;
            config.partition_count = args.partitions;
            config.bootstrap = !args.join;
            tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .context("tokio runtime")?
                .block_on(cairn_raft::run_meta_node(config))
                .context("metadata replica")
        }
        Role::Gateway(args) => {
            let (meta_nodes, meta_zones) = cairn_raft::parse_peer_list(&args.meta)?;
            let mut meta = cairn_raft::MetaClientConfig::new(meta_nodes, args.partitions);
            meta.zones = meta_zones;
            let mut config = cairn_gateway::GatewayConfig::new(
                args.listen,
                parse_storage_nodes(&args.storage)?,
                meta,
            );
            config.executors = args.executors;
            config.region = args.region;
            cairn_gateway::run_gateway(config).context("gateway")
        }
        Role::Dev(args) => run_dev(args),
    }
}
