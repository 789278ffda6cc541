//! `cairn`: one binary, one subcommand per role (see ARCHITECTURE.md).

mod admin;
mod ca;
mod cluster;
mod malloc;
mod regions;
mod replication;
mod users;

use anyhow::Context;
use clap::{Parser, Subcommand};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
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
    /// Run the background workers (the janitor: stale PREPARING rollback and shard garbage
    /// collection) against a metadata cluster and its storage nodes.
    Worker(WorkerArgs),
    /// Annual data-loss probability of an erasure-coding scheme (Markov model; see
    /// controlplane/workers/src/durability.rs for the model and its assumptions).
    Durability(DurabilityArgs),
    /// Multi-process clusters described by a TOML cluster file.
    #[command(subcommand)]
    Cluster(ClusterCommand),
    /// Users' access keys (create, list, revoke) through a gateway's admin API, signed with the
    /// root keys.
    Admin(users::AdminArgs),
    /// The cluster CA for internal mutual TLS: create it, issue identities, revoke them.
    #[command(subcommand)]
    Ca(ca::CaCommand),
    /// The cluster master key file (a keyring: the active key first, retired keys after it).
    #[command(subcommand)]
    MasterKey(MasterKeyCommand),
    /// Run an edge PoP: TLS termination, SigV4, WASM routing, proxy to regional gateways, hot
    /// object cache (`cairn edge dev-cert` writes a development CA and certificate).
    Edge(EdgeArgs),
}

#[derive(clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
struct EdgeArgs {
    #[command(subcommand)]
    command: Option<EdgeCommand>,
    #[command(flatten)]
    run: EdgeRunArgs,
}

#[derive(Subcommand)]
enum EdgeCommand {
    /// Write a self-signed development CA (`ca.pem`) and a server certificate signed by it
    /// (`server.pem`, `server-key.pem`) into a directory.
    DevCert {
        #[arg(long)]
        out: PathBuf,
        /// Names and addresses the server certificate covers (repeat the flag).
        #[arg(long = "hostname", default_values_t = ["localhost".to_owned(), "127.0.0.1".to_owned(), "*.s3.localhost".to_owned()])]
        hostnames: Vec<String>,
    },
}

#[derive(clap::Args)]
struct EdgeRunArgs {
    /// TLS listener.
    #[arg(long, default_value = "127.0.0.1:8443")]
    listen: SocketAddr,
    /// Plain-HTTP admin listener (`GET /metrics`, `GET /module`, `POST /module/reload[?path=P]`);
    /// unauthenticated: keep it private. None when absent.
    #[arg(long)]
    admin_listen: Option<SocketAddr>,
    /// PEM certificate chain (leaf first).
    #[arg(long)]
    tls_cert: Option<PathBuf>,
    /// PEM private key.
    #[arg(long)]
    tls_key: Option<PathBuf>,
    /// The routing module (edge-wasm/build/cairn_edge_routing.wasm after edge-wasm/build-wasm.sh).
    #[arg(long)]
    module: Option<PathBuf>,
    /// The cluster master key file (the gateways' `master-key`): access-key secrets are stored
    /// sealed by it, so the edge needs it to check signatures.
    #[arg(long)]
    master_key_file: Option<PathBuf>,
    /// A region and its gateways: `NAME=HOST:PORT[,HOST:PORT...]` (repeat for more regions; the
    /// first is the default region unless --default-region says otherwise).
    #[arg(long = "region")]
    regions: Vec<String>,
    #[arg(long)]
    default_region: Option<String>,
    /// Pin a bucket to a region: `BUCKET=REGION` (repeat); others come from the bucket service.
    #[arg(long = "bucket-region")]
    bucket_regions: Vec<String>,
    /// Metadata replicas: `1=HOST:PORT[@AZ],...` (bucket service and access keys).
    #[arg(long)]
    meta: Option<String>,
    /// Object partitions of the metadata cluster (`cairn dev`: 4).
    #[arg(long, default_value_t = 8)]
    partitions: u32,
    /// Base domains for virtual-host addressing (repeat).
    #[arg(long = "virtual-host-suffix", default_values_t = ["s3.localhost".to_owned()])]
    virtual_host_suffixes: Vec<String>,
    /// Hot-object cache capacity.
    #[arg(long, default_value_t = 256 << 20)]
    cache_bytes: usize,
    /// Largest object the cache keeps.
    #[arg(long, default_value_t = 8 << 20)]
    cache_max_object_bytes: usize,
    /// Staleness bound: how long a cached object is served without revalidation.
    #[arg(long, default_value_t = 2_000)]
    cache_ttl_ms: u32,
    /// How long a bucket → region answer of the bucket service is kept.
    #[arg(long, default_value_t = 30_000)]
    bucket_cache_ttl_ms: u64,
    /// How long an access key's secret is kept (a revoked or deleted key stops working at the
    /// edge within this).
    #[arg(long, default_value_t = 10_000)]
    access_key_cache_ttl_ms: u64,
    /// Fuel (about one unit per wasm instruction) per routing call.
    #[arg(long, default_value_t = 10_000_000)]
    module_fuel: u64,
    /// Memory cap of the routing module.
    #[arg(long, default_value_t = 16 << 20)]
    module_memory_bytes: usize,
    /// Executors (default: one per core).
    #[arg(long)]
    executors: Option<usize>,
    /// The edge's cluster identity (`--tls-dir`, role edge) for the metadata RPC.
    #[command(flatten)]
    internal_tls: ca::InternalTlsArgs,
}

#[derive(Subcommand)]
enum ClusterCommand {
    /// Write a local cluster file (3 meta, 12 storage nodes in 4 AZs, 2 gateways on 127.0.x.y,
    /// EC 6+3: any one AZ may fail with writes at full redundancy) and generate its root
    /// credentials. Prints what writes do with each AZ down.
    Init {
        /// The cluster file to write (never overwritten).
        #[arg(long, default_value = "cluster.toml")]
        out: PathBuf,
        /// Data root of every role.
        #[arg(long, default_value = "cairn-cluster")]
        data: PathBuf,
        #[arg(long, default_value_t = 3)]
        meta: u64,
        /// Storage nodes (spread round-robin over the AZs).
        #[arg(long, default_value_t = 12, conflicts_with = "nodes_per_az")]
        storage: u64,
        #[arg(long, default_value_t = 2)]
        gateways: u64,
        #[arg(long, default_value_t = 4)]
        azs: u64,
        /// Storage nodes per AZ (instead of `--storage`): `--azs` × this many.
        #[arg(long)]
        nodes_per_az: Option<u64>,
        /// Refuse a layout in which losing some one AZ would stop writes or leave them below
        /// k + m shards (the AZ rule keeps at most m shards per AZ, so this needs at least
        /// k/m + 2 AZs with m nodes each).
        #[arg(long)]
        survive_az_loss: bool,
        /// Scheme of new buckets.
        #[arg(long, default_value = "isal-cauchy:6+3")]
        ec_scheme: String,
        /// Ports: meta this, meta admin +1, storage +2, gateway S3 +3, gateway admin +4, worker
        /// admin +5 (every process has its own address). Default: 7400, 7490, 7100, 9000, 9090,
        /// 7590.
        #[arg(long)]
        base_port: Option<u16>,
        /// Region the gateways serve.
        #[arg(long, default_value = "us-east-1")]
        region: String,
        /// Another region's S3 endpoint for the replicator (worker 1), `REGION=URL`
        /// (repeatable; `http://` or `https://`).
        #[arg(long = "replication-endpoint", value_name = "REGION=URL")]
        replication_endpoints: Vec<String>,
        /// PEM CA bundle the replicator trusts for `https://` endpoints.
        #[arg(long, value_name = "FILE")]
        replication_ca_bundle: Option<PathBuf>,
    },
    /// Start every role of a cluster file as its own process; stop them all on Ctrl-C/SIGTERM.
    Up {
        /// The cluster file.
        file: PathBuf,
    },
}

#[derive(clap::Args)]
struct MetaArgs {
    /// Take listen address, data directory, peers and partitions from this cluster file's
    /// `[[meta]]` entry with `--id`.
    #[arg(long, conflicts_with_all = ["listen", "data", "peers"])]
    cluster: Option<PathBuf>,
    /// This replica's id: non-zero, unique in the cluster, stable across restarts.
    #[arg(long)]
    id: u64,
    /// Address of the Raft and client RPC listener.
    #[arg(long, required_unless_present = "cluster")]
    listen: Option<SocketAddr>,
    /// Data directory (one LMDB environment per group below it).
    #[arg(long, required_unless_present = "cluster")]
    data: Option<PathBuf>,
    /// Every meta node, this one included, optionally with its availability zone:
    /// `1=127.0.0.1:7401@az1,2=127.0.0.2:7401@az2,...` (without zones every node is its own
    /// zone). Each group gets 3 of them as replicas, in distinct zones when there are 3 zones.
    #[arg(long, required_unless_present = "cluster")]
    peers: Option<String>,
    /// Admin HTTP listener serving `/metrics` and `/status`.
    #[arg(long)]
    admin_listen: Option<SocketAddr>,
    /// Build a group's snapshot after this many applied log entries.
    #[arg(long, default_value_t = 10_000)]
    snapshot_after_entries: u64,
    /// Log entries kept behind a snapshot (a follower further behind gets the snapshot).
    #[arg(long, default_value_t = 1_000)]
    snapshot_keep_entries: u64,
    /// Object partitions (fixed for the cluster's life).
    #[arg(long, default_value_t = 8)]
    partitions: u32,
    /// Join an existing cluster instead of initialising the groups with `--peers` as voters.
    #[arg(long)]
    join: bool,
    /// Region this metadata cluster serves (its gateways' `--region`): version ids carry its
    /// tag. With `--cluster`, the file's `region`.
    #[arg(long, default_value = "us-east-1", conflicts_with = "cluster")]
    region: String,
    #[command(flatten)]
    internal_tls: ca::InternalTlsArgs,
}

#[derive(clap::Args)]
struct DurabilityArgs {
    /// `k+m`, e.g. `8+4` (a codec prefix such as `isal-cauchy:` is accepted and ignored).
    #[arg(long, default_value = "8+4")]
    scheme: String,
    /// Storage nodes in the cluster.
    #[arg(long, default_value_t = 24)]
    nodes: u32,
    /// Availability zones; placement keeps at most m shards of a stripe per zone.
    #[arg(long, default_value_t = 3)]
    azs: u32,
    /// Annualised failure rate of one node.
    #[arg(long, default_value_t = 0.02)]
    afr: f64,
    /// Mean hours to rebuild a failed node's shards. Default: the healer's grace period
    /// (`--down-grace-hours`) plus `--node-tib` at `--heal-rate-mib-per-sec`.
    #[arg(long)]
    rebuild_hours: Option<f64>,
    /// Data on one node, in TiB (used only to derive the rebuild time).
    #[arg(long, default_value_t = 4.0)]
    node_tib: f64,
    /// Heal rate, in MiB of a lost node's pieces restored per second. Default: the median that
    /// `cairn-bench heal` measured (see benches/results/README.md); measure yours on the target
    /// hardware.
    #[arg(long, default_value_t = MEASURED_HEAL_RATE_MIB_PER_SEC)]
    heal_rate_mib_per_sec: f64,
    /// Hours a node stays unreachable before the healer treats it as lost (the worker's
    /// `--healer-down-grace-secs`, default 600 s).
    #[arg(long, default_value_t = 600.0 / 3600.0)]
    down_grace_hours: f64,
    /// Model repairs of one stripe as one at a time (conservative) instead of in parallel.
    #[arg(long)]
    serial_repair: bool,
}

/// The median heal rate of `cairn-bench heal` (release build, `cairn cluster init` defaults: 12
/// storage nodes, EC 6+3, healer unthrottled) on this project's 2-core reference machine; the
/// run is recorded in benches/results/2026-11-26-heal.json (heal rate after the grace period).
const MEASURED_HEAL_RATE_MIB_PER_SEC: f64 = 17.5;

/// `cairn durability`'s rebuild time: the given hours, or the grace period plus a node's data at
/// the heal rate.
fn rebuild_hours(args: &DurabilityArgs) -> anyhow::Result<(f64, &'static str)> {
    if let Some(hours) = args.rebuild_hours {
        return Ok((hours, "--rebuild-hours"));
    }
    anyhow::ensure!(
        args.heal_rate_mib_per_sec > 0.0 && args.node_tib >= 0.0 && args.down_grace_hours >= 0.0,
        "--heal-rate-mib-per-sec must be positive, --node-tib and --down-grace-hours not negative"
    );
    let seconds = args.node_tib * 1024.0 * 1024.0 / args.heal_rate_mib_per_sec;
    Ok((
        args.down_grace_hours + seconds / 3600.0,
        "--down-grace-hours + --node-tib at --heal-rate-mib-per-sec",
    ))
}

fn run_durability(args: DurabilityArgs) -> anyhow::Result<()> {
    let (rebuild_hours, rebuild_hours_source) = rebuild_hours(&args)?;
    let counts = args
        .scheme
        .rsplit_once(':')
        .map_or(args.scheme.as_str(), |(_, counts)| counts);
    let (data, parity) = counts
        .split_once('+')
        .context("--scheme is k+m, e.g. 8+4")?;
    let data_shards: u32 = data.trim().parse().context("k in --scheme")?;
    let parity_shards: u32 = parity.trim().parse().context("m in --scheme")?;
    anyhow::ensure!(args.azs >= 1, "--azs must be at least 1");
    // ≤ m shards per zone: k + m shards need ceil((k+m)/m) zones.
    anyhow::ensure!(
        parity_shards > 0 && data_shards + parity_shards <= args.azs * parity_shards,
        "{data_shards}+{parity_shards} cannot keep at most {parity_shards} shards per AZ in {} AZs, \
         so losing one AZ would lose data; placement refuses this scheme",
        args.azs
    );
    let input = cairn_workers::durability::DurabilityInput {
        data_shards,
        parity_shards,
        nodes: args.nodes,
        annual_failure_rate: args.afr,
        rebuild_hours,
        repair: if args.serial_repair {
            cairn_workers::durability::RepairModel::Serial
        } else {
            cairn_workers::durability::RepairModel::Parallel
        },
    };
    let report = cairn_workers::durability::annual_loss(&input)?;
    println!(
        "{}",
        serde_json::json!({
            "scheme": format!("{data_shards}+{parity_shards}"),
            "nodes": args.nodes,
            "azs": args.azs,
            "annual_failure_rate": args.afr,
            "rebuild_hours": rebuild_hours,
            "rebuild_hours_source": rebuild_hours_source,
            "node_tib": args.node_tib,
            "heal_rate_mib_per_sec": args.heal_rate_mib_per_sec,
            "repair": if args.serial_repair { "serial" } else { "parallel" },
            "stripe_annual_loss_probability": report.stripe_annual_loss_probability,
            "stripe_nines": report.stripe_nines,
            "stripe_mttdl_years": report.stripe_mttdl_years,
            "placement_groups": report.placement_groups,
            "cluster_annual_loss_probability": report.cluster_annual_loss_probability,
            "cluster_nines": report.cluster_nines,
            "assumptions": "independent node failures at a constant rate; exponential rebuild times; \
                an AZ loss is survived by placement (at most m shards per AZ), not modelled here",
        })
    );
    Ok(())
}

/// Node-registry timing, shared by the roles that heartbeat or expire nodes.
#[derive(clap::Args, Clone, Debug)]
struct RegistryArgs {
    /// Seconds between a storage node's heartbeats.
    #[arg(long, default_value_t = 2)]
    node_heartbeat_secs: u64,
    /// A node without a heartbeat for this many seconds is marked DOWN.
    #[arg(long, default_value_t = 10)]
    node_down_after_secs: u64,
}

impl RegistryArgs {
    fn heartbeat(
        &self,
        node: &cairn_gateway::StorageNodeConfig,
    ) -> cairn_workers::heartbeat::HeartbeatConfig {
        cairn_workers::heartbeat::HeartbeatConfig {
            node_id: node.node_id,
            address: node.address,
            availability_zone: node.az.clone(),
            interval: Duration::from_secs(self.node_heartbeat_secs.max(1)),
            data_dir: None,
        }
    }

    fn spawn_expiry(&self, meta: cairn_raft::MetaClientConfig) -> anyhow::Result<()> {
        cairn_workers::heartbeat::spawn_node_expiry(
            meta,
            Duration::from_secs(self.node_down_after_secs),
            Duration::from_secs(self.node_heartbeat_secs.max(1)),
        )
        .context("starting node expiry")
    }
}

/// Janitor timing, shared by `cairn worker` and `cairn dev`.
#[derive(clap::Args, Clone, Debug)]
struct JanitorArgs {
    /// Roll back writes still PREPARING after this many seconds.
    #[arg(long, default_value_t = 3600)]
    janitor_prepare_timeout_secs: u64,
    /// Delete a garbage entry's shards only once it is this old (in-flight puts land first).
    #[arg(long, default_value_t = 120)]
    janitor_garbage_grace_secs: u64,
    /// Seconds between janitor passes.
    #[arg(long, default_value_t = 30)]
    janitor_interval_secs: u64,
}

impl JanitorArgs {
    fn config(&self) -> cairn_workers::JanitorConfig {
        cairn_workers::JanitorConfig {
            prepare_timeout: Duration::from_secs(self.janitor_prepare_timeout_secs),
            garbage_grace: Duration::from_secs(self.janitor_garbage_grace_secs),
            pass_interval: Duration::from_secs(self.janitor_interval_secs),
            ..cairn_workers::JanitorConfig::default()
        }
    }
}

/// Lifecycle worker timing, shared by `cairn worker` and `cairn dev`.
#[derive(clap::Args, Clone, Debug)]
struct LifecycleArgs {
    /// Length of one lifecycle day in seconds (rules count in days). Only tests shorten it.
    #[arg(long, default_value_t = 86_400)]
    lifecycle_day_seconds: u64,
    /// Seconds between lifecycle passes.
    #[arg(long, default_value_t = 3_600)]
    lifecycle_interval_secs: u64,
}

impl LifecycleArgs {
    fn config(&self) -> cairn_workers::lifecycle::LifecycleConfig {
        cairn_workers::lifecycle::LifecycleConfig {
            day_length: Duration::from_secs(self.lifecycle_day_seconds.max(1)),
            pass_interval: Duration::from_secs(self.lifecycle_interval_secs.max(1)),
            ..cairn_workers::lifecycle::LifecycleConfig::default()
        }
    }
}

/// Scrubber/healer settings, shared by `cairn worker` and `cairn dev`.
#[derive(clap::Args, Clone, Debug)]
struct HealerArgs {
    /// A storage node unreachable this long is DOWN: its pieces are rebuilt elsewhere.
    #[arg(long, default_value_t = 600)]
    healer_down_grace_secs: u64,
    /// Seconds between scrub/heal passes.
    #[arg(long, default_value_t = 60)]
    healer_interval_secs: u64,
    /// Shard bytes the scrubber reads per second, at most.
    #[arg(long, default_value_t = 64)]
    scrub_budget_mib_per_sec: u64,
    /// Milliseconds between drains of the suspect queues (pieces readers found bad).
    #[arg(long, default_value_t = 2000)]
    healer_suspect_poll_ms: u64,
    /// Seconds a piece no metadata names stays before the scrubber deletes it.
    #[arg(long, default_value_t = 3600)]
    orphan_grace_secs: u64,
}

impl HealerArgs {
    fn config(&self) -> cairn_workers::healer::HealerConfig {
        cairn_workers::healer::HealerConfig {
            down_grace: Duration::from_secs(self.healer_down_grace_secs),
            pass_interval: Duration::from_secs(self.healer_interval_secs),
            read_budget_bytes_per_second: self.scrub_budget_mib_per_sec.max(1) << 20,
            suspect_poll_interval: Duration::from_millis(self.healer_suspect_poll_ms.max(1)),
            orphan_grace: Duration::from_secs(self.orphan_grace_secs),
            ..cairn_workers::healer::HealerConfig::default()
        }
    }
}

fn healer_nodes(
    nodes: &[cairn_gateway::StorageNodeConfig],
) -> Vec<cairn_workers::healer::HealerNode> {
    nodes
        .iter()
        .map(|node| cairn_workers::healer::HealerNode {
            node_id: node.node_id,
            address: node.address,
            availability_zone: node.az.clone(),
        })
        .collect()
}

#[derive(clap::Args)]
struct WorkerArgs {
    /// Take the metadata replicas, storage nodes and admin address from this cluster file
    /// (`[[worker]]` entry with `--id`).
    #[arg(long, requires = "id", conflicts_with_all = ["meta", "storage"])]
    cluster: Option<PathBuf>,
    #[arg(long)]
    id: Option<u64>,
    /// Metadata replicas: `1=HOST:PORT,2=HOST:PORT,3=HOST:PORT`.
    #[arg(long, required_unless_present = "cluster")]
    meta: Option<String>,
    /// Object partitions of the metadata cluster.
    #[arg(long, default_value_t = 8)]
    partitions: u32,
    /// Storage nodes: `ID=HOST:PORT@AZ,...`.
    #[arg(long, required_unless_present = "cluster")]
    storage: Option<String>,
    /// Admin HTTP listener serving `/metrics`.
    #[arg(long)]
    admin_listen: Option<SocketAddr>,
    #[command(flatten)]
    global: regions::GlobalMetaArgs,
    #[command(flatten)]
    janitor: JanitorArgs,
    #[command(flatten)]
    healer: HealerArgs,
    #[command(flatten)]
    lifecycle: LifecycleArgs,
    #[command(flatten)]
    replication: replication::ReplicationArgs,
    #[command(flatten)]
    worker_replication: replication::WorkerReplicationArgs,
    #[command(flatten)]
    registry: RegistryArgs,
    #[command(flatten)]
    internal_tls: ca::InternalTlsArgs,
}

#[derive(clap::Args)]
struct GatewayArgs {
    /// Take every setting from this cluster file's `[[gateway]]` entry with `--id`.
    #[arg(long, requires = "id", conflicts_with_all = ["meta", "storage"])]
    cluster: Option<PathBuf>,
    /// This gateway's id in the cluster file.
    #[arg(long)]
    id: Option<u64>,
    /// S3 listener.
    #[arg(long, default_value = "127.0.0.1:9000")]
    listen: SocketAddr,
    /// Metadata replicas, as given to `cairn meta --peers`: `1=HOST:PORT[@AZ],2=...`.
    #[arg(long, required_unless_present = "cluster")]
    meta: Option<String>,
    /// Object partitions of the metadata cluster (as given to `cairn meta`).
    #[arg(long, default_value_t = 8)]
    partitions: u32,
    /// Storage nodes: `ID=HOST:PORT@AZ,...` (ids are recorded in shard maps: keep them stable).
    #[arg(long, required_unless_present = "cluster")]
    storage: Option<String>,
    /// Executors (default: one per core).
    #[arg(long)]
    executors: Option<usize>,
    /// Region this gateway serves.
    #[arg(long, default_value = "us-east-1")]
    region: String,
    #[command(flatten)]
    global: regions::GlobalMetaArgs,
    /// Admin listener serving Prometheus `GET /metrics` (unauthenticated: keep it private);
    /// none when absent.
    #[arg(long)]
    admin_listen: Option<SocketAddr>,
    /// The cluster master key file (64 hex digits; `cairn cluster init` writes one) that wraps
    /// SSE-S3 data keys. Without it (and without `--cluster`) SSE-S3 is unavailable.
    #[arg(long)]
    master_key_file: Option<PathBuf>,
    /// Store new objects unencrypted unless a request asks for encryption.
    #[arg(long)]
    no_default_encryption: bool,
    #[command(flatten)]
    internal_tls: ca::InternalTlsArgs,
    #[command(flatten)]
    s3_tls: S3TlsArgs,
    #[command(flatten)]
    edge_listener: EdgeListenerArgs,
}

/// The gateway's edge-facing listener.
#[derive(clap::Args)]
struct EdgeListenerArgs {
    /// Serve edge PoPs (`cairn edge --region NAME=<this address>`) on this address: the S3 API
    /// over mutual TLS, for clients with an edge certificate of the cluster CA only (the
    /// gateway's own identity serves it; plaintext is refused).
    #[arg(long)]
    edge_listen: Option<SocketAddr>,
}

impl EdgeListenerArgs {
    fn apply(
        &self,
        gateway: &mut cairn_gateway::GatewayConfig,
        identity: Option<&cairn_tls::Identity>,
        encrypt_loopback: bool,
    ) -> anyhow::Result<()> {
        let Some(address) = self.edge_listen else {
            return Ok(());
        };
        let identity = identity.context(
            "--edge-listen serves mutual TLS only: it needs the gateway's cluster identity \
             (not --insecure-plaintext-internal)",
        )?;
        gateway.edge_listen = Some(address);
        // An edge on the same host (loopback at both ends) continues in plaintext once mutual
        // TLS has authenticated it, as storage RPC does (see `cairn_tls`).
        gateway.edge_tls = Some(ca::switching_listener_tls(
            identity,
            cairn_tls::GATEWAY_INTERNAL_CLIENTS,
            encrypt_loopback,
        )?);
        Ok(())
    }
}

/// TLS of the S3 listener.
#[derive(clap::Args)]
struct S3TlsArgs {
    /// Serve S3 over TLS with this PEM certificate chain (leaf first); plain HTTP without it.
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The PEM private key of `--tls-cert`.
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
}

impl S3TlsArgs {
    fn server_config(&self) -> anyhow::Result<Option<Arc<cairn_tls::rustls::ServerConfig>>> {
        match (&self.tls_cert, &self.tls_key) {
            (Some(cert), Some(key)) => Ok(Some(
                cairn_tls::public_server_config(cert, key).context("the S3 TLS certificate")?,
            )),
            _ => Ok(None),
        }
    }
}

/// The metadata client for `--meta 1=HOST:PORT[@AZ],...` (zones as the nodes were given them:
/// clients compute each group's replicas the same way, and a mismatch is refused).
fn meta_client_config(spec: &str, partitions: u32) -> anyhow::Result<cairn_raft::MetaClientConfig> {
    let (nodes, zones) = cairn_raft::parse_peer_list(spec)?;
    let mut config = cairn_raft::MetaClientConfig::new(nodes, partitions);
    config.zones = zones;
    Ok(config)
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
    /// Admin listener serving Prometheus `GET /metrics`.
    #[arg(long, default_value = "127.0.0.1:9001")]
    admin_listen: SocketAddr,
    /// Store new objects unencrypted unless a request asks for encryption (for measuring what
    /// SSE-S3 costs; by default every new object is encrypted, as in S3).
    #[arg(long)]
    no_default_encryption: bool,
    /// Hot-shard cache of each storage node, in MiB (0: every read goes to the disk).
    #[arg(long, default_value_t = 64)]
    storage_cache_mib: u64,
    /// Region this setup serves (see src/regions.rs for the two-region setup).
    #[arg(long, default_value = "us-east-1")]
    region: String,
    #[command(flatten)]
    global: regions::GlobalMetaArgs,
    #[command(flatten)]
    janitor: JanitorArgs,
    #[command(flatten)]
    healer: HealerArgs,
    #[command(flatten)]
    lifecycle: LifecycleArgs,
    #[command(flatten)]
    replication: replication::ReplicationArgs,
    /// Admin listener serving the background workers' `/metrics` (janitor, healer, lifecycle);
    /// none unless given.
    #[arg(long)]
    worker_admin_listen: Option<SocketAddr>,
    #[command(flatten)]
    registry: RegistryArgs,
    #[command(flatten)]
    tuning: DevTuningArgs,
    /// Run the embedded roles' internal RPC in PLAINTEXT (for measuring what mutual TLS costs;
    /// by default `cairn dev` generates a CA and identities in `<data>/tls` on first start and
    /// every internal connection is mutual TLS). Logged as a warning.
    #[arg(long)]
    insecure_plaintext_internal: bool,
    /// Issue the embedded roles' identities from this existing CA directory (`cairn ca init`, or
    /// another `cairn dev`'s `<data>/tls/ca`) instead of generating one in `<data>/tls/ca`. A
    /// second region started with `--global-meta` needs the first region's CA, so each side
    /// accepts the other's certificates.
    #[arg(long, conflicts_with = "insecure_plaintext_internal")]
    dev_ca: Option<PathBuf>,
    /// Keep the storage nodes' and the metadata replica's connections (and an edge's on the
    /// same host, with `--edge-listen`) encrypted. By default they run over loopback and continue in plaintext
    /// once mutual TLS has authenticated them (loopback traffic cannot be read or injected into
    /// without root).
    #[arg(long, conflicts_with = "insecure_plaintext_internal")]
    encrypt_loopback: bool,
    #[command(flatten)]
    s3_tls: S3TlsArgs,
    #[command(flatten)]
    edge_listener: EdgeListenerArgs,
}

/// Performance knobs of `cairn dev` (what `cairn-bench tune` sweeps).
#[derive(clap::Args)]
struct DevTuningArgs {
    /// Erasure-coding scheme of new buckets (`<codec>:<k>+<m>`, codec `isal-cauchy` or
    /// `rs-simd`); at most 6 pieces, and at most m of them per AZ (two nodes per AZ).
    #[arg(long, default_value = "isal-cauchy:4+2")]
    ec_scheme: String,
    /// Bytes of one piece (a stripe holds k pieces of data), in KiB.
    #[arg(long, default_value_t = 256)]
    piece_size_kib: u32,
    /// Gateway executors (threads, one io_uring each); default: one per core.
    #[arg(long)]
    gateway_executors: Option<usize>,
    /// Executors (and shard logs) of each of the six storage nodes, fixed when a node's data
    /// directory is first initialised.
    #[arg(long, default_value_t = 1)]
    storage_cores: usize,
}

#[derive(clap::Args)]
struct StorageArgs {
    /// Take address, AZ, data directory, cores, cache and segment size from this cluster
    /// file's `[[storage]]` entry with `--id`.
    #[arg(long, requires = "id", conflicts_with = "data")]
    cluster: Option<PathBuf>,
    /// This node's id in the cluster file.
    #[arg(long)]
    id: Option<u64>,
    /// Address to serve the storage RPC on.
    #[arg(long, default_value = "127.0.0.1:7100")]
    listen: SocketAddr,
    /// Data directory (must be on a file system with O_DIRECT, e.g. ext4 or xfs).
    #[arg(long, required_unless_present = "cluster")]
    data: Option<PathBuf>,
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
    /// Metadata replicas (`1=HOST:PORT,...`) to heartbeat to under `--id` (taken from the
    /// cluster file with `--cluster`); without them the node runs unregistered.
    #[arg(long, requires = "id")]
    meta: Option<String>,
    /// Object partitions of the metadata cluster.
    #[arg(long, default_value_t = 8)]
    partitions: u32,
    #[command(flatten)]
    registry: RegistryArgs,
    #[command(flatten)]
    internal_tls: ca::InternalTlsArgs,
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
    // Internal mutual TLS unless told otherwise: a CA and one identity per role in <data>/tls,
    // made on first start.
    let (storage_identity, meta_identity, gateway_identity, worker_identity) =
        if args.insecure_plaintext_internal {
            cairn_tls::warn_insecure_plaintext("dev");
            (None, None, None, None)
        } else {
            let mut identities = ca::dev_identities(
                &args.data.join("tls"),
                args.dev_ca.as_deref(),
                &[
                    cairn_tls::Role::Storage,
                    cairn_tls::Role::Meta,
                    cairn_tls::Role::Gateway,
                    cairn_tls::Role::Worker,
                ],
            )?
            .into_iter()
            .map(Some);
            (
                identities.next().flatten(),
                identities.next().flatten(),
                identities.next().flatten(),
                identities.next().flatten(),
            )
        };
    let storage_tls = match &storage_identity {
        Some(identity) => Some(ca::switching_listener_tls(
            identity,
            cairn_tls::STORAGE_CLIENTS,
            args.encrypt_loopback,
        )?),
        None => None,
    };
    let mut threads = Vec::new();
    let mut storage_nodes = Vec::new();
    let (storage_ready_sender, storage_ready) = std::sync::mpsc::channel();
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
        config.cores = Some(args.tuning.storage_cores.max(1));
        config.cache_capacity_bytes_per_core = args.storage_cache_mib << 20;
        config.tls = storage_tls.clone();
        config.ready = Some(storage_ready_sender.clone());
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
    meta_config.identity = meta_identity;
    meta_config.encrypt_loopback = args.encrypt_loopback;
    meta_config.set_region(&args.region);
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

    // The embedded workers and heartbeats run as the worker identity, the gateway as its own.
    let mut meta = cairn_raft::MetaClientConfig::new(peers, DEV_PARTITIONS);
    meta.identity = worker_identity;
    args.global.apply(&mut meta)?;
    let janitor_nodes = storage_nodes
        .iter()
        .map(|node| (node.node_id, node.address))
        .collect();
    let janitor_stats =
        cairn_workers::spawn_janitor(meta.clone(), janitor_nodes, args.janitor.config())
            .context("starting the janitor")?;
    let lifecycle_stats =
        cairn_workers::lifecycle::spawn_lifecycle(meta.clone(), args.lifecycle.config())
            .context("starting the lifecycle worker")?;
    for (index, node) in storage_nodes.iter().enumerate() {
        let mut heartbeat = args.registry.heartbeat(node);
        heartbeat.data_dir = Some(args.data.join(format!("storage-{index}")));
        cairn_workers::heartbeat::spawn_heartbeat(meta.clone(), heartbeat)
            .context("starting a heartbeat")?;
    }
    args.registry.spawn_expiry(meta.clone())?;
    let healer_stats = cairn_workers::healer::spawn_healer(
        meta.clone(),
        healer_nodes(&storage_nodes),
        args.healer.config(),
    )
    .context("starting the healer")?;
    // Generated on first start beside the data, outside the metadata service.
    let master_key = std::sync::Arc::new(
        cairn_sse::MasterKeyFile::open_or_create(&args.data.join("master-key"))
            .context("the cluster master key")?,
    );
    // With S3 over TLS, the replicator reads and writes through https:// and trusts the dev CA
    // unless given a bundle (the S3 certificate is then expected to come from the dev CA).
    let s3_over_tls = args.s3_tls.tls_cert.is_some();
    let dev_ca_bundle = (s3_over_tls && !args.insecure_plaintext_internal).then(|| {
        args.dev_ca
            .clone()
            .unwrap_or_else(|| args.data.join("tls").join("ca"))
            .join(cairn_tls::CA_CERT_FILE)
    });
    let replicator_stats = args.replication.spawn(
        meta.clone(),
        &args.region,
        format!(
            "{}://{}",
            if s3_over_tls { "https" } else { "http" },
            args.listen
        ),
        Some(master_key.clone()),
        &replication::ReplicatorDefaults {
            region_endpoints: Default::default(),
            ca_bundle: dev_ca_bundle,
        },
    )?;
    if let Some(address) = args.worker_admin_listen {
        let pages: admin::Pages = Arc::new(move |path: &str| {
            (path == "/metrics").then(|| {
                (
                    admin::PROMETHEUS_TEXT,
                    janitor_stats.render_metrics()
                        + &healer_stats.render_metrics()
                        + &lifecycle_stats.render_metrics()
                        + &replicator_stats.render_metrics(),
                )
            })
        });
        serve_worker_admin(address, pages)?;
    }
    let mut gateway_meta = meta;
    gateway_meta.identity = gateway_identity;
    if let Some(global) = gateway_meta.global_bucket_service.as_mut() {
        global.identity = gateway_meta.identity.clone();
    }
    let mut gateway = cairn_gateway::GatewayConfig::new(args.listen, storage_nodes, gateway_meta);
    gateway.root_credentials = Some(credentials.clone());
    gateway.region = args.region.clone();
    gateway.master_key = Some(master_key);
    gateway.encrypt_by_default = !args.no_default_encryption;
    gateway.admin_listen = Some(args.admin_listen);
    gateway.default_ec_scheme = args.tuning.ec_scheme.clone();
    gateway.piece_size_bytes = args
        .tuning
        .piece_size_kib
        .checked_mul(1024)
        .filter(|bytes| *bytes > 0)
        .context("--piece-size-kib must be between 1 and 4194303")?;
    gateway.executors = args.tuning.gateway_executors;
    gateway.s3_tls = args.s3_tls.server_config()?;
    let gateway_identity = gateway.meta.identity.clone();
    args.edge_listener.apply(
        &mut gateway,
        gateway_identity.as_deref(),
        args.encrypt_loopback,
    )?;
    let scheme = if gateway.s3_tls.is_some() {
        "https"
    } else {
        "http"
    };
    // S3 opens only once every storage node listens (a node binds after replaying its shard
    // log), so a request right after start, or after a restart over much data, finds them up.
    wait_for_storage_nodes(&storage_ready, usize::from(NODES), &mut threads)?;
    let handle = cairn_gateway::start_gateway(gateway).context("gateway")?;
    println!(
        "cairn dev: S3 endpoint {scheme}://{}",
        handle.local_address()
    );
    if let Some(admin) = handle.admin_address() {
        println!("  metrics: http://{admin}/metrics");
    }
    if let Some(edge) = handle.edge_address() {
        println!("  edge listener (mutual TLS): {edge}");
    }
    println!("  access key: {}", credentials.access_key_id);
    println!("  secret key: {}", credentials.secret_access_key);
    println!(
        "  region: {}; EC {} over six storage nodes in three AZs; data in {}",
        args.region,
        args.tuning.ec_scheme,
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

/// Waits until every storage node of `cairn dev` reports that it listens (after replaying its
/// shard log); fails if a node's thread ended first (with its error, e.g. a shard log that does
/// not open) or the nodes did not all come up within ten minutes.
fn wait_for_storage_nodes(
    ready: &std::sync::mpsc::Receiver<SocketAddr>,
    count: usize,
    threads: &mut Vec<std::thread::JoinHandle<anyhow::Result<()>>>,
) -> anyhow::Result<()> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(600);
    let mut listening = 0;
    let mut announced = false;
    while listening < count {
        match ready.recv_timeout(std::time::Duration::from_millis(100)) {
            Ok(_) => {
                listening += 1;
                continue;
            }
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                anyhow::bail!("the storage nodes stopped before they all listened")
            }
        }
        if let Some(position) = threads
            .iter()
            .position(std::thread::JoinHandle::is_finished)
        {
            return match threads.swap_remove(position).join() {
                Ok(Err(error)) => Err(error.context("a storage node stopped while starting")),
                Ok(Ok(())) => Err(anyhow::anyhow!("a storage node stopped while starting")),
                Err(_) => Err(anyhow::anyhow!("a storage node panicked while starting")),
            };
        }
        anyhow::ensure!(
            std::time::Instant::now() < deadline,
            "{} of {count} storage nodes listened within ten minutes",
            listening
        );
        if !announced {
            tracing::info!("waiting for the storage nodes to replay their shard logs");
            announced = true;
        }
    }
    Ok(())
}

/// `cairn dev --worker-admin-listen`: the workers' `/metrics` on a thread of its own (bound
/// before this returns, so a bad address fails the start).
fn serve_worker_admin(address: SocketAddr, pages: admin::Pages) -> anyhow::Result<()> {
    let (bound_sender, bound) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("worker-admin".into())
        .spawn(move || {
            let runtime = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(runtime) => runtime,
                Err(error) => {
                    let _ = bound_sender.send(Err(anyhow::Error::from(error)));
                    return;
                }
            };
            runtime.block_on(async move {
                match admin::serve(address, pages).await {
                    Ok(listener) => {
                        let _ = bound_sender.send(Ok(()));
                        let _ = listener.await;
                    }
                    Err(error) => {
                        let _ = bound_sender.send(Err(anyhow::Error::from(error)));
                    }
                }
            });
        })
        .context("worker admin thread")?;
    bound
        .recv()
        .context("worker admin thread ended")?
        .with_context(|| format!("worker admin listener on {address}"))
}

/// Object partitions of the `cairn dev` metadata replica.
const DEV_PARTITIONS: u32 = 4;

/// Small blocks from mimalloc, large ones from glibc (see [`malloc`]).
#[global_allocator]
static ALLOCATOR: malloc::SplitAllocator = malloc::SplitAllocator;

fn main() -> anyhow::Result<()> {
    malloc::configure();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("CAIRN_LOG")
                .unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        // Colour only for a terminal: logs redirected to files stay plain text for grep.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        // A log line that cannot be written (the disk under a redirected stderr is full) is
        // dropped. With the default, the writer reports the failure with `eprintln!`, which
        // fails the same way and panics in whichever thread logged: a gateway executor, a
        // storage node, the metadata replica.
        .log_internal_errors(false)
        .init();
    let cli = Cli::parse();
    match cli.role {
        Role::Storage(args) => run_storage(args),
        Role::Meta(args) => run_meta(args),
        Role::Gateway(args) => run_gateway(args),
        Role::Dev(args) => run_dev(args),
        Role::Worker(args) => run_worker(args),
        Role::Durability(args) => run_durability(args),
        Role::Edge(args) => run_edge(args),
        Role::Cluster(ClusterCommand::Init {
            out,
            data,
            meta,
            storage,
            gateways,
            azs,
            nodes_per_az,
            survive_az_loss,
            ec_scheme,
            base_port,
            region,
            replication_endpoints,
            replication_ca_bundle,
        }) => {
            let mut layout = cluster::LocalLayout {
                meta_count: meta,
                storage_count: nodes_per_az.map_or(storage, |per_az| per_az * azs),
                survive_az_loss,
                gateway_count: gateways,
                az_count: azs,
                ec_scheme,
                region,
                replication_endpoints: replication::parse_region_endpoints(&replication_endpoints)?,
                replication_ca_bundle: replication_ca_bundle
                    .map(std::path::absolute)
                    .transpose()
                    .context("--replication-ca-bundle")?,
                ..cluster::LocalLayout::default()
            };
            if let Some(base) = base_port {
                anyhow::ensure!(base > 0 && base < u16::MAX - 5, "--base-port out of range");
                layout.meta_port = base;
                layout.meta_admin_port = base + 1;
                layout.storage_port = base + 2;
                layout.gateway_port = base + 3;
                layout.gateway_admin_port = base + 4;
                layout.worker_admin_port = base + 5;
            }
            cluster::init(&out, &data, &layout).map(|_| ())
        }
        Role::Cluster(ClusterCommand::Up { file }) => cluster::up(&file),
        Role::Admin(args) => users::run(args),
        Role::Ca(command) => ca::run(command),
        Role::MasterKey(command) => run_master_key(command),
    }
}

#[derive(Subcommand)]
enum MasterKeyCommand {
    /// Put a new random active key in front of the file's keys (the old ones stay, to open what
    /// they wrapped); the file is replaced atomically, mode 0600. Running gateways and edges
    /// re-read it within about a second; copy the file to every host that reads its own copy,
    /// then run `cairn admin master-key rewrap`.
    Rotate {
        #[arg(long)]
        file: PathBuf,
    },
    /// Remove the retired keys, keeping the active one (atomic replace, mode 0600). Only after
    /// `cairn admin master-key rewrap` reported nothing left (no `failed`) in every region:
    /// what a removed key still wraps no longer opens.
    DropRetired {
        #[arg(long)]
        file: PathBuf,
    },
    /// Print the file's key ids (the active one first; never key bytes).
    Show {
        #[arg(long)]
        file: PathBuf,
    },
}

fn run_master_key(command: MasterKeyCommand) -> anyhow::Result<()> {
    match command {
        MasterKeyCommand::Rotate { file } => {
            let rotation = cairn_sse::rotate_key_file(&file)
                .with_context(|| format!("rotating the master key file {}", file.display()))?;
            println!(
                "{}",
                serde_json::json!({
                    "active_key_id": rotation.new_active_key_id,
                    "retired_key_ids": rotation.retired_key_ids,
                })
            );
        }
        MasterKeyCommand::DropRetired { file } => {
            let removed = cairn_sse::drop_retired_keys(&file)
                .with_context(|| format!("the master key file {}", file.display()))?;
            let ring = cairn_sse::MasterKeyRing::load(&file)?;
            println!(
                "{}",
                serde_json::json!({
                    "active_key_id": ring.active().key_id(),
                    "removed_key_ids": removed,
                })
            );
        }
        MasterKeyCommand::Show { file } => {
            let ring = cairn_sse::MasterKeyRing::load(&file)?;
            println!(
                "{}",
                serde_json::json!({
                    "active_key_id": ring.active().key_id(),
                    "key_ids": ring.key_ids(),
                })
            );
        }
    }
    Ok(())
}

fn run_storage(args: StorageArgs) -> anyhow::Result<()> {
    let mut cluster_tls = None;
    let (mut config, meta) = match (&args.cluster, args.id, &args.data) {
        (Some(path), Some(id), _) => {
            let file = cluster::ClusterFile::load(path)?;
            let meta = file.meta_client();
            cluster_tls = file.tls_files(cairn_tls::Role::Storage, id);
            (file.storage_config(id)?, Some(meta))
        }
        (None, _, Some(data)) => {
            let mut config = cairn_storage::NodeConfig::new(args.listen, data, args.az.clone());
            config.cores = args.cores;
            config.cache_capacity_bytes_per_core = args.cache_mib << 20;
            config.segment_size_bytes = args.segment_mib << 20;
            let meta = match &args.meta {
                Some(peers) => Some(meta_client_config(peers, args.partitions)?),
                None => None,
            };
            (config, meta)
        }
        _ => anyhow::bail!("give --data, or --cluster FILE with --id"),
    };
    let identity = args
        .internal_tls
        .identity(cairn_tls::Role::Storage, cluster_tls)?;
    if let Some(identity) = &identity {
        config.tls = Some(ca::switching_listener_tls(
            identity,
            cairn_tls::STORAGE_CLIENTS,
            args.internal_tls.encrypt_loopback,
        )?);
    }
    let meta = meta.map(|mut meta| {
        meta.identity = identity.clone();
        meta
    });
    if let (Some(meta), Some(id)) = (meta, args.id) {
        let node = cairn_gateway::StorageNodeConfig::new(
            id,
            config.listen,
            config.availability_zone.clone(),
        );
        let mut heartbeat = args.registry.heartbeat(&node);
        heartbeat.data_dir = Some(config.data_dir.clone());
        cairn_workers::heartbeat::spawn_heartbeat(meta, heartbeat)
            .context("starting the heartbeat")?;
    }
    config.compaction_interval = Duration::from_secs(args.compaction_interval_secs);
    config.max_connections_per_core = args.max_connections_per_core;
    config.inject_write_errno = fault_injection_errno()?;
    cairn_storage::run(config).context("storage node")
}

fn run_meta(args: MetaArgs) -> anyhow::Result<()> {
    let (config, admin) = match &args.cluster {
        Some(path) => {
            let file = cluster::ClusterFile::load(path)?;
            let mut config = file.meta_config(args.id)?;
            config.bootstrap = !args.join;
            config.identity = args.internal_tls.identity(
                cairn_tls::Role::Meta,
                file.tls_files(cairn_tls::Role::Meta, args.id),
            )?;
            (config, args.admin_listen.or(file.meta_admin(args.id)?))
        }
        None => {
            let (Some(listen), Some(data), Some(peers)) = (args.listen, args.data, args.peers)
            else {
                anyhow::bail!("give --listen, --data and --peers, or --cluster FILE");
            };
            let (peers, zones) = cairn_raft::parse_peer_list(&peers)?;
            let mut config = cairn_raft::MetaNodeConfig::new(args.id, listen, data, peers);
            config.set_region(&args.region);
            config.zones = zones;
            config.partition_count = args.partitions;
            config.bootstrap = !args.join;
            config.identity = args.internal_tls.identity(cairn_tls::Role::Meta, None)?;
            (config, args.admin_listen)
        }
    };
    let mut config = config;
    config.encrypt_loopback = args.internal_tls.encrypt_loopback;
    config.timing.snapshot_after_log_entries = args.snapshot_after_entries;
    config.timing.log_entries_kept_after_snapshot = args.snapshot_keep_entries;
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("tokio runtime")?
        .block_on(serve_meta(config, admin))
}

/// Runs a metadata replica (and its admin listener) until SIGINT or SIGTERM.
async fn serve_meta(
    config: cairn_raft::MetaNodeConfig,
    admin: Option<SocketAddr>,
) -> anyhow::Result<()> {
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let node = Arc::new(
        cairn_raft::MetaNode::start(config)
            .await
            .context("metadata replica")?,
    );
    let admin_task = match admin {
        Some(address) => Some(
            admin::start(address, node.clone())
                .await
                .with_context(|| format!("admin listener on {address}"))?,
        ),
        None => None,
    };
    // A configuration that does not match the cluster's recorded layout stops the replica
    // with the reason (it has already cut itself off from its peers).
    let mut refused = None;
    tokio::select! {
        interrupted = tokio::signal::ctrl_c() => interrupted?,
        _ = terminate.recv() => {}
        message = node.layout_checked_refused() => refused = Some(message),
    }
    tracing::info!(node_id = node.node_id(), "meta node shutting down");
    if let Some(task) = admin_task {
        task.abort();
        let _ = task.await;
    }
    // The admin connections hold clones for at most one response; wait them out briefly.
    let mut node = node;
    for _ in 0..100 {
        match Arc::try_unwrap(node) {
            Ok(owned) => {
                owned.shutdown().await;
                break;
            }
            Err(shared) => {
                node = shared;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
    match refused {
        Some(message) => {
            Err(cairn_raft::NodeError::LayoutMismatch(message)).context("metadata replica")
        }
        None => Ok(()),
    }
}

fn run_worker(args: WorkerArgs) -> anyhow::Result<()> {
    let file = args
        .cluster
        .as_deref()
        .map(cluster::ClusterFile::load)
        .transpose()?;
    let (mut meta, nodes, admin, cluster_tls, file_replicator) =
        match (&file, args.id, &args.meta, &args.storage) {
            (Some(file), Some(id), _, _) => {
                let admin = args.admin_listen.or(file.worker_admin(id)?);
                let tls = file.tls_files(cairn_tls::Role::Worker, id);
                let replicator = file.replicator_settings(id);
                (
                    file.meta_client(),
                    file.storage_nodes(),
                    admin,
                    tls,
                    replicator,
                )
            }
            (None, _, Some(meta), Some(storage)) => (
                meta_client_config(meta, args.partitions)?,
                parse_storage_nodes(storage)?,
                args.admin_listen,
                None,
                None,
            ),
            _ => anyhow::bail!("give --meta and --storage, or --cluster FILE with --id"),
        };
    // One identity for the metadata RPC and the storage RPC of the janitor and healer.
    meta.identity = args
        .internal_tls
        .identity(cairn_tls::Role::Worker, cluster_tls)?;
    args.global
        .or_cluster_file(file.as_ref())
        .apply(&mut meta)?;
    args.registry.spawn_expiry(meta.clone())?;
    let healer_stats = cairn_workers::healer::spawn_healer(
        meta.clone(),
        healer_nodes(&nodes),
        args.healer.config(),
    )
    .context("starting the healer")?;
    let nodes = nodes
        .into_iter()
        .map(|node| (node.node_id, node.address))
        .collect();
    let lifecycle_stats =
        cairn_workers::lifecycle::spawn_lifecycle(meta.clone(), args.lifecycle.config())
            .context("starting the lifecycle worker")?;
    // The flags win over the cluster file's [replication] table (which names this worker).
    let replicator = match (
        &args.worker_replication.replication_local_endpoint,
        file_replicator,
    ) {
        (Some(endpoint), _) => Some(replication::ReplicatorSource {
            region: args.worker_replication.replication_region.clone(),
            local_endpoint: endpoint.trim_end_matches('/').to_owned(),
            master_key_file: args.worker_replication.replication_master_key_file.clone(),
            defaults: replication::ReplicatorDefaults::default(),
        }),
        (None, Some(settings)) => Some(replication::ReplicatorSource {
            region: settings.region,
            local_endpoint: settings.local_endpoint,
            master_key_file: args
                .worker_replication
                .replication_master_key_file
                .clone()
                .or(Some(settings.master_key_file)),
            defaults: replication::ReplicatorDefaults {
                region_endpoints: settings.endpoints,
                ca_bundle: settings.ca_bundle,
            },
        }),
        (None, None) => None,
    };
    let replicator_stats = match replicator {
        Some(source) => {
            let master_key = match &source.master_key_file {
                Some(path) => Some(Arc::new(
                    cairn_sse::MasterKeyFile::open(path)
                        .context("--replication-master-key-file")?,
                )),
                None => None,
            };
            Some(args.replication.spawn(
                meta.clone(),
                &source.region,
                source.local_endpoint,
                master_key,
                &source.defaults,
            )?)
        }
        None => None,
    };
    let stats = cairn_workers::spawn_janitor(meta, nodes, args.janitor.config())
        .context("starting the janitor")?;
    tracing::info!(
        replicator = replicator_stats.is_some(),
        "worker running: janitor, scrubber/healer, lifecycle"
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("tokio runtime")?;
    runtime.block_on(async move {
        let mut terminate =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        let _admin = match admin {
            Some(address) => {
                let pages: admin::Pages = Arc::new(move |path: &str| {
                    (path == "/metrics").then(|| {
                        (
                            admin::PROMETHEUS_TEXT,
                            stats.render_metrics()
                                + &healer_stats.render_metrics()
                                + &lifecycle_stats.render_metrics()
                                + &replicator_stats
                                    .as_ref()
                                    .map(|stats| stats.render_metrics())
                                    .unwrap_or_default(),
                        )
                    })
                });
                Some(
                    admin::serve(address, pages)
                        .await
                        .with_context(|| format!("admin listener on {address}"))?,
                )
            }
            None => None,
        };
        tokio::select! {
            interrupted = tokio::signal::ctrl_c() => interrupted?,
            _ = terminate.recv() => {}
        }
        tracing::info!("worker stopping");
        anyhow::Ok(())
    })
}

fn run_gateway(mut args: GatewayArgs) -> anyhow::Result<()> {
    let file = args
        .cluster
        .as_deref()
        .map(cluster::ClusterFile::load)
        .transpose()?;
    let config = match (&file, args.id, &args.meta, &args.storage) {
        (Some(file), Some(id), _, _) => {
            let (mut config, entry) = file.gateway_config(id)?;
            config.meta.identity = args.internal_tls.identity(
                cairn_tls::Role::Gateway,
                file.tls_files(cairn_tls::Role::Gateway, id),
            )?;
            if args.executors.is_some() {
                config.executors = args.executors;
            }
            config.admin_listen = args.admin_listen.or(entry.admin);
            // The flags win over the entry's S3 certificate and edge listener.
            if args.s3_tls.tls_cert.is_none() {
                args.s3_tls.tls_cert = entry.tls_cert.clone();
                args.s3_tls.tls_key = entry.tls_key.clone();
            }
            args.edge_listener.edge_listen = args.edge_listener.edge_listen.or(entry.edge_address);
            if let Some(path) = &args.master_key_file {
                config.master_key = Some(std::sync::Arc::new(
                    cairn_sse::MasterKeyFile::open(path).context("the cluster master key")?,
                ));
            }
            config.encrypt_by_default = !args.no_default_encryption;
            config
        }
        (None, _, Some(meta), Some(storage)) => {
            let meta = meta_client_config(meta, args.partitions)?;
            let mut meta = meta;
            // The gateway's identity, for the metadata RPC and the storage RPC alike.
            meta.identity = args.internal_tls.identity(cairn_tls::Role::Gateway, None)?;
            let mut config =
                cairn_gateway::GatewayConfig::new(args.listen, parse_storage_nodes(storage)?, meta);
            config.executors = args.executors;
            config.region = args.region;
            config.admin_listen = args.admin_listen;
            if let Some(path) = &args.master_key_file {
                config.master_key = Some(std::sync::Arc::new(
                    cairn_sse::MasterKeyFile::open(path).context("the cluster master key")?,
                ));
            }
            config.encrypt_by_default = !args.no_default_encryption;
            config
        }
        _ => anyhow::bail!("give --meta and --storage, or --cluster FILE with --id"),
    };
    let mut config = config;
    args.global
        .or_cluster_file(file.as_ref())
        .apply(&mut config.meta)?;
    config.s3_tls = args.s3_tls.server_config()?;
    let identity = config.meta.identity.clone();
    args.edge_listener.apply(
        &mut config,
        identity.as_deref(),
        args.internal_tls.encrypt_loopback,
    )?;
    cairn_gateway::run_gateway(config).context("gateway")
}

fn run_edge(args: EdgeArgs) -> anyhow::Result<()> {
    if let Some(EdgeCommand::DevCert { out, hostnames }) = args.command {
        let files = cairn_edge::tls::generate_dev_certificates(&out, &hostnames)?;
        println!(
            "CA certificate (give it to clients): {}",
            files.ca_cert.display()
        );
        println!(
            "server certificate (--tls-cert): {}",
            files.server_cert.display()
        );
        println!("server key (--tls-key): {}", files.server_key.display());
        return Ok(());
    }
    let args = args.run;
    let (Some(tls_cert), Some(tls_key), Some(module), Some(meta)) =
        (args.tls_cert, args.tls_key, args.module, args.meta)
    else {
        anyhow::bail!("cairn edge needs --tls-cert, --tls-key, --module and --meta");
    };
    let mut regions = Vec::new();
    for spec in &args.regions {
        let (name, gateways) = spec
            .split_once('=')
            .context("--region is NAME=HOST:PORT[,HOST:PORT...]")?;
        let gateways = gateways
            .split(',')
            .map(|address| address.trim().parse().context("gateway address"))
            .collect::<anyhow::Result<Vec<SocketAddr>>>()?;
        regions.push(cairn_edge::RegionConfig {
            name: name.to_owned(),
            gateways,
        });
    }
    if regions.is_empty() {
        anyhow::bail!("give at least one --region NAME=HOST:PORT");
    }
    let mut meta = meta_client_config(&meta, args.partitions)?;
    meta.identity = args.internal_tls.identity(cairn_tls::Role::Edge, None)?;
    let mut config =
        cairn_edge::EdgeConfig::new(args.listen, tls_cert, tls_key, module, regions, meta);
    if let Some(region) = args.default_region {
        config.default_region = region;
    }
    for spec in &args.bucket_regions {
        let (bucket, region) = spec
            .split_once('=')
            .context("--bucket-region is BUCKET=REGION")?;
        config
            .bucket_regions
            .insert(bucket.to_owned(), region.to_owned());
    }
    config.admin_listen = args.admin_listen;
    if let Some(path) = &args.master_key_file {
        config.master_key = Some(std::sync::Arc::new(
            cairn_sse::MasterKeyFile::open(path).context("--master-key-file")?,
        ));
    }
    config.virtual_host_suffixes = args.virtual_host_suffixes;
    config.cache_capacity_bytes = args.cache_bytes;
    config.cache_max_object_bytes = args.cache_max_object_bytes;
    config.cache_ttl_ms = args.cache_ttl_ms;
    config.bucket_cache_ttl_ms = args.bucket_cache_ttl_ms;
    config.access_key_cache_ttl_ms = args.access_key_cache_ttl_ms;
    config.module_limits = cairn_edge::ModuleLimits {
        fuel: args.module_fuel,
        memory_bytes: args.module_memory_bytes,
    };
    config.executors = args.executors;
    let handle = cairn_edge::start_edge(config).context("edge")?;
    println!("cairn edge listening on https://{}", handle.local_address());
    if let Some(admin) = handle.admin_address() {
        println!("  admin: http://{admin}");
    }
    handle.wait().context("edge")
}
