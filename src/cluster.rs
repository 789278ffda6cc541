//! Cluster mode: one TOML file names every process of a region — metadata replicas, storage nodes
//! (each with its AZ) and gateways — and every role reads its own part of it
//! (`cairn meta --cluster FILE --id N`, `cairn storage --cluster FILE --id N`,
//! `cairn gateway --cluster FILE --id N`, `cairn worker --cluster FILE --id N`), so the processes
//! can never disagree about who is in the cluster. Its `[replication]` table names the worker that
//! runs the replicator, the gateway it reads through and the other regions' S3 endpoints, so a
//! region replicates with no replication flags on any command line. `cairn cluster init` writes a local example (3 meta, 12 storage nodes in 4 AZs,
//! 2 gateways on 127.0.x.y addresses, EC 6+3, so any one AZ may fail with writes at full
//! redundancy: see [`ClusterFile::zone_loss_report`]) and the root credentials; `cairn cluster up FILE`
//! starts every role as its own child process and stops them all on SIGINT/SIGTERM.
//!
//! Invariants checked by [`ClusterFile::validate`] before any process starts: ids are non-zero and
//! unique per role, no two listeners share an address, the EC scheme parses and the storage nodes
//! can hold one stripe with at most m shards per AZ (the gateway's placement rule); the
//! replicator's worker exists and its endpoints are `http://` or `https://` URLs.
//!
//! Relative paths in the file are relative to the file's own directory, so a cluster directory
//! can be moved as a whole.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde::Deserialize;

/// The parsed cluster file.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterFile {
    /// Region the gateways serve.
    #[serde(default = "default_region")]
    pub region: String,
    /// Object partitions of the metadata cluster (fixed for the cluster's life).
    #[serde(default = "default_partitions")]
    pub partitions: u32,
    /// Erasure-coding scheme of new buckets, e.g. `isal-cauchy:6+3`.
    #[serde(default = "default_ec_scheme")]
    pub ec_scheme: String,
    /// Every role keeps its state below this directory: `meta-N`, `storage-N`, and the logs of
    /// `cairn cluster up` in `logs/`.
    pub data_root: PathBuf,
    /// Root credentials (two lines: key id, secret) shared by every gateway; written by
    /// `cairn cluster init`. `CAIRN_ROOT_ACCESS_KEY` / `CAIRN_ROOT_SECRET_KEY` override it.
    /// Default: `<data_root>/root-credentials`.
    pub credentials_file: Option<PathBuf>,
    /// The cluster master key (64 hex digits) that wraps SSE-S3 data keys, shared by every
    /// gateway and never stored in the metadata service; written by `cairn cluster init`.
    /// Default: `<data_root>/master-key`.
    pub master_key_file: Option<PathBuf>,
    /// Internal mutual TLS: the cluster CA is `<tls_dir>/ca` and role R number N runs under
    /// the identity `<tls_dir>/<R>-<N>`, checking peers against the CA's `crl.pem` (all
    /// written by `cairn cluster init`). Without it every role needs `--tls-dir` or
    /// `--insecure-plaintext-internal`.
    pub tls_dir: Option<PathBuf>,
    #[serde(default)]
    pub meta: Vec<MetaEntry>,
    #[serde(default)]
    pub storage: Vec<StorageEntry>,
    #[serde(default)]
    pub gateway: Vec<GatewayEntry>,
    /// Background workers (`cairn worker`: the janitor). Several may run: their work is
    /// idempotent.
    #[serde(default)]
    pub worker: Vec<WorkerEntry>,
    /// Cross-region replication: which worker runs the replicator, and where it writes.
    pub replication: Option<ReplicationSection>,
    /// The global bucket service (bucket names and access keys are global), when another
    /// region's metadata cluster holds it: that cluster's replicas as `--global-meta` takes them,
    /// `1=HOST:PORT[@AZ],...`. The file's gateways and workers send bucket and access-key
    /// operations there (a `--global-meta` flag wins). Absent: this region holds it.
    pub global_meta: Option<String>,
    /// Object partitions of that metadata cluster (a cluster file's default: 8; `cairn dev`: 4).
    #[serde(default = "default_partitions")]
    pub global_partitions: u32,
}

/// The `[replication]` table.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplicationSection {
    /// The `[[worker]]` id that runs the replicator (one per region: every queue entry is
    /// copied by one replicator).
    pub worker: u64,
    /// This region's S3 endpoint the replicator reads versions through and writes same-region
    /// destinations through. Default: the first `[[gateway]]`'s URL (`https://` when it serves
    /// S3 over TLS).
    pub local_endpoint: Option<String>,
    /// PEM file of the CA certificates trusted for `https://` endpoints (only these); without
    /// it, the public roots of `webpki-roots`.
    pub ca_bundle: Option<PathBuf>,
    /// Other regions' S3 endpoints: `region = "https://HOST:PORT"`.
    #[serde(default)]
    pub endpoints: BTreeMap<String, String>,
}

/// What the replicator of one `cairn worker --cluster FILE --id N` runs with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReplicatorSettings {
    pub region: String,
    pub local_endpoint: String,
    pub endpoints: BTreeMap<String, String>,
    pub ca_bundle: Option<PathBuf>,
    pub master_key_file: PathBuf,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkerEntry {
    pub id: u64,
    /// Admin HTTP listener (`/metrics`).
    pub admin: Option<SocketAddr>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetaEntry {
    pub id: u64,
    /// Raft and client RPC listener; other replicas and the gateways dial it.
    pub address: SocketAddr,
    /// The replica's AZ: Raft groups place their three replicas in distinct AZs.
    pub az: String,
    /// Admin HTTP listener (`/metrics`, `/status`).
    pub admin: Option<SocketAddr>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageEntry {
    /// Recorded in shard maps: keep it stable for the node's life.
    pub id: u64,
    pub address: SocketAddr,
    pub az: String,
    /// Executors and shard logs (fixed when the data directory is first initialised).
    pub cores: Option<usize>,
    /// Hot-shard cache per core, in MiB.
    pub cache_mib: Option<u64>,
    /// Shard-log segment size, in MiB.
    pub segment_mib: Option<u64>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatewayEntry {
    pub id: u64,
    /// S3 listener.
    pub address: SocketAddr,
    /// Admin HTTP listener (`/metrics`).
    pub admin: Option<SocketAddr>,
    /// Executors (default: one per core).
    pub executors: Option<usize>,
    /// Serve edge PoPs on this address (`cairn gateway --edge-listen`): the S3 API over mutual
    /// TLS for edge identities of the cluster CA, served with the gateway's identity (needs
    /// `tls_dir`).
    pub edge_address: Option<SocketAddr>,
    /// Serve S3 over TLS with this PEM certificate chain (`--tls-cert`; relative to the file).
    pub tls_cert: Option<PathBuf>,
    /// The PEM private key of `tls_cert` (`--tls-key`).
    pub tls_key: Option<PathBuf>,
}

impl GatewayEntry {
    /// The S3 endpoint URL of this gateway: `https://` when it serves S3 over TLS.
    pub fn url(&self) -> String {
        let scheme = if self.tls_cert.is_some() {
            "https"
        } else {
            "http"
        };
        format!("{scheme}://{}", self.address)
    }
}

fn default_region() -> String {
    "us-east-1".to_owned()
}

fn default_partitions() -> u32 {
    8
}

fn default_ec_scheme() -> String {
    "isal-cauchy:6+3".to_owned()
}

/// A role of the cluster file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum RoleKind {
    Meta,
    Storage,
    Gateway,
    Worker,
}

impl RoleKind {
    pub fn name(self) -> &'static str {
        match self {
            RoleKind::Meta => "meta",
            RoleKind::Storage => "storage",
            RoleKind::Gateway => "gateway",
            RoleKind::Worker => "worker",
        }
    }
}

impl ClusterFile {
    /// Reads, resolves relative paths against the file's directory, and validates.
    pub fn load(path: &Path) -> anyhow::Result<ClusterFile> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading cluster file {}", path.display()))?;
        let mut file: ClusterFile = toml::from_str(&text)
            .with_context(|| format!("parsing cluster file {}", path.display()))?;
        let base = path
            .parent()
            .filter(|parent| !parent.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        file.data_root = base.join(&file.data_root);
        file.credentials_file = file.credentials_file.map(|path| base.join(path));
        file.master_key_file = file.master_key_file.map(|path| base.join(path));
        file.tls_dir = file.tls_dir.map(|path| base.join(path));
        if let Some(replication) = file.replication.as_mut() {
            replication.ca_bundle = replication.ca_bundle.take().map(|path| base.join(path));
        }
        for entry in &mut file.gateway {
            entry.tls_cert = entry.tls_cert.take().map(|path| base.join(path));
            entry.tls_key = entry.tls_key.take().map(|path| base.join(path));
        }
        file.validate()
            .with_context(|| format!("cluster file {}", path.display()))?;
        Ok(file)
    }

    /// The checks listed in the module header.
    pub fn validate(&self) -> anyhow::Result<()> {
        if self.meta.is_empty() || self.storage.is_empty() {
            bail!("a cluster needs at least one [[meta]] and one [[storage]] entry");
        }
        if self.partitions == 0 {
            bail!("partitions must be at least 1");
        }
        if let Some(spec) = &self.global_meta {
            crate::meta_client_config(spec, self.global_partitions)
                .context("global_meta (the global bucket service's metadata replicas)")?;
        }
        let mut addresses = BTreeSet::new();
        let mut check_address = |address: SocketAddr, what: String| {
            if address.port() == 0 || address.ip().is_unspecified() {
                bail!("{what}: {address} must be a dialable address with a port");
            }
            if !addresses.insert(address) {
                bail!("{what}: address {address} is used twice");
            }
            Ok(())
        };
        for (kind, ids) in [
            (
                RoleKind::Meta,
                self.meta.iter().map(|entry| entry.id).collect::<Vec<_>>(),
            ),
            (
                RoleKind::Storage,
                self.storage.iter().map(|entry| entry.id).collect(),
            ),
            (
                RoleKind::Gateway,
                self.gateway.iter().map(|entry| entry.id).collect(),
            ),
            (
                RoleKind::Worker,
                self.worker.iter().map(|entry| entry.id).collect(),
            ),
        ] {
            let mut seen = BTreeSet::new();
            for id in ids {
                if id == 0 || !seen.insert(id) {
                    bail!("{} ids must be non-zero and unique (id {id})", kind.name());
                }
            }
        }
        for entry in &self.meta {
            check_address(entry.address, format!("meta {}", entry.id))?;
            if let Some(admin) = entry.admin {
                check_address(admin, format!("meta {} admin", entry.id))?;
            }
        }
        for entry in &self.storage {
            check_address(entry.address, format!("storage {}", entry.id))?;
        }
        for entry in &self.gateway {
            check_address(entry.address, format!("gateway {}", entry.id))?;
            if let Some(admin) = entry.admin {
                check_address(admin, format!("gateway {} admin", entry.id))?;
            }
            if let Some(edge) = entry.edge_address {
                check_address(edge, format!("gateway {} edge_address", entry.id))?;
                if self.tls_dir.is_none() {
                    bail!(
                        "gateway {}: edge_address serves mutual TLS with the gateway's cluster \
                         identity, so the file needs tls_dir",
                        entry.id
                    );
                }
            }
            if entry.tls_cert.is_some() != entry.tls_key.is_some() {
                bail!(
                    "gateway {}: give both tls_cert and tls_key, or neither",
                    entry.id
                );
            }
        }
        for entry in &self.worker {
            if let Some(admin) = entry.admin {
                check_address(admin, format!("worker {} admin", entry.id))?;
            }
        }
        if let Some(replication) = &self.replication {
            if !self
                .worker
                .iter()
                .any(|entry| entry.id == replication.worker)
            {
                bail!(
                    "[replication] worker = {}: no [[worker]] with that id",
                    replication.worker
                );
            }
            if replication.local_endpoint.is_none() && self.gateway.is_empty() {
                bail!("[replication] needs local_endpoint when the file has no [[gateway]]");
            }
            let endpoints = replication
                .local_endpoint
                .iter()
                .map(|url| ("local_endpoint", url))
                .chain(
                    replication
                        .endpoints
                        .iter()
                        .map(|(region, url)| (region.as_str(), url)),
                );
            for (name, url) in endpoints {
                if cairn_workers::replicator::split_endpoint(url).is_none() {
                    bail!(
                        "[replication] {name} = {url:?}: give http://HOST:PORT or \
                         https://HOST:PORT"
                    );
                }
            }
        }
        let scheme: cairn_ec::Scheme = self
            .ec_scheme
            .parse()
            .map_err(|error| anyhow::anyhow!("ec_scheme {:?}: {error}", self.ec_scheme))?;
        let zones: Vec<&str> = self.storage.iter().map(|entry| entry.az.as_str()).collect();
        cairn_gateway::placement::choose_nodes(
            &zones,
            scheme.total_shards(),
            scheme.parity_shards(),
            0,
            &BTreeSet::new(),
            &[],
        )
        .map_err(|error| anyhow::anyhow!("storage nodes cannot hold {scheme}: {error}"))?;
        Ok(())
    }

    /// One line per AZ: what writes of the cluster's scheme do while that AZ is down
    /// (`cairn_common::placement::zone_loss_writes`), e.g. `az1 down: writes keep full
    /// redundancy`. The metadata survives any one AZ when no AZ holds a majority of the replicas.
    pub fn zone_loss_report(&self) -> anyhow::Result<Vec<String>> {
        use cairn_gateway::placement::{ZoneLossWrites, zone_loss_writes};
        let scheme: cairn_ec::Scheme = self
            .ec_scheme
            .parse()
            .map_err(|error| anyhow::anyhow!("ec_scheme {:?}: {error}", self.ec_scheme))?;
        let zones: Vec<&str> = self.storage.iter().map(|entry| entry.az.as_str()).collect();
        let (k, m) = (scheme.data_shards(), scheme.parity_shards());
        Ok(zone_loss_writes(&zones, k, m)
            .into_iter()
            .map(|(zone, outcome)| {
                let meta_lost = self.meta.iter().filter(|entry| entry.az == zone).count();
                let meta_note = if 2 * meta_lost >= self.meta.len() {
                    " (and the metadata loses its quorum)"
                } else {
                    ""
                };
                match outcome {
                    ZoneLossWrites::FullRedundancy => {
                        format!("{zone} down: writes keep full redundancy{meta_note}")
                    }
                    ZoneLossWrites::Degraded { placeable } => format!(
                        "{zone} down: writes commit degraded with {placeable} of {} shards \
                         (the healer completes them){meta_note}",
                        k + m
                    ),
                    ZoneLossWrites::Refused { placeable } => format!(
                        "{zone} down: writes are refused (503): only {placeable} shards fit, \
                         {} needed{meta_note}",
                        k + 1
                    ),
                }
            })
            .collect())
    }

    /// Where role `kind` number `id` keeps its state.
    pub fn data_dir(&self, kind: RoleKind, id: u64) -> PathBuf {
        self.data_root.join(format!("{}-{id}", kind.name()))
    }

    pub fn master_key_path(&self) -> PathBuf {
        self.master_key_file
            .clone()
            .unwrap_or_else(|| self.data_root.join("master-key"))
    }

    /// The identity of role `role` number `id`, when the file configures internal TLS.
    pub fn tls_files(&self, role: cairn_tls::Role, id: u64) -> Option<cairn_tls::TlsFiles> {
        let root = self.tls_dir.as_ref()?;
        Some(cairn_tls::TlsFiles {
            dir: root.join(format!("{role}-{id}")),
            crl: Some(root.join("ca").join(cairn_tls::CRL_FILE)),
        })
    }

    /// Creates the CA (unless it exists) and every role's identity that is missing.
    pub fn issue_identities(&self) -> anyhow::Result<()> {
        let Some(root) = &self.tls_dir else {
            return Ok(());
        };
        let ca = root.join("ca");
        if !ca.join(cairn_tls::CA_KEY_FILE_NAME).exists() {
            cairn_tls::init_ca(&ca).context("creating the cluster CA")?;
        }
        let entries = self
            .meta
            .iter()
            .map(|entry| (cairn_tls::Role::Meta, entry.id, Some(entry.address)))
            .chain(
                self.storage
                    .iter()
                    .map(|entry| (cairn_tls::Role::Storage, entry.id, Some(entry.address))),
            )
            .chain(
                self.gateway
                    .iter()
                    .map(|entry| (cairn_tls::Role::Gateway, entry.id, Some(entry.address))),
            )
            .chain(
                self.worker
                    .iter()
                    .map(|entry| (cairn_tls::Role::Worker, entry.id, None)),
            );
        for (role, id, address) in entries {
            let files = self.tls_files(role, id).expect("tls_dir is set");
            if files.dir.join(cairn_tls::KEY_FILE).exists() {
                continue;
            }
            let mut request = cairn_tls::IssueRequest::new(format!("{role}-{id}"), role);
            request.ip_addresses = address.map(|address| address.ip()).into_iter().collect();
            cairn_tls::issue(&ca, &request, &files.dir)
                .with_context(|| format!("issuing the identity of {role} {id}"))?;
        }
        Ok(())
    }

    pub fn credentials_path(&self) -> PathBuf {
        self.credentials_file
            .clone()
            .unwrap_or_else(|| self.data_root.join("root-credentials"))
    }

    /// Meta replicas as `--peers` would give them: id → `host:port`.
    pub fn meta_peers(&self) -> BTreeMap<u64, String> {
        self.meta
            .iter()
            .map(|entry| (entry.id, entry.address.to_string()))
            .collect()
    }

    /// Meta replicas' zones, as `--peers ...@AZ` would give them.
    pub fn meta_zones(&self) -> BTreeMap<u64, String> {
        self.meta
            .iter()
            .map(|entry| (entry.id, entry.az.clone()))
            .collect()
    }

    /// The metadata client every role of this cluster uses.
    pub fn meta_client(&self) -> cairn_raft::MetaClientConfig {
        let mut config = cairn_raft::MetaClientConfig::new(self.meta_peers(), self.partitions);
        config.zones = self.meta_zones();
        config
    }

    fn meta_entry(&self, id: u64) -> anyhow::Result<&MetaEntry> {
        self.meta
            .iter()
            .find(|entry| entry.id == id)
            .with_context(|| format!("no [[meta]] with id {id} in the cluster file"))
    }

    pub fn meta_admin(&self, id: u64) -> anyhow::Result<Option<SocketAddr>> {
        Ok(self.meta_entry(id)?.admin)
    }

    pub fn worker_admin(&self, id: u64) -> anyhow::Result<Option<SocketAddr>> {
        Ok(self
            .worker
            .iter()
            .find(|entry| entry.id == id)
            .with_context(|| format!("no [[worker]] with id {id} in the cluster file"))?
            .admin)
    }

    /// The replicator settings of worker `id`: `None` unless `[replication]` names it.
    pub fn replicator_settings(&self, id: u64) -> Option<ReplicatorSettings> {
        let replication = self
            .replication
            .as_ref()
            .filter(|section| section.worker == id)?;
        let local_endpoint = match &replication.local_endpoint {
            Some(url) => url.trim_end_matches('/').to_owned(),
            None => self.gateway.first()?.url(),
        };
        Some(ReplicatorSettings {
            region: self.region.clone(),
            local_endpoint,
            endpoints: replication
                .endpoints
                .iter()
                .map(|(region, url)| (region.clone(), url.trim_end_matches('/').to_owned()))
                .collect(),
            ca_bundle: replication.ca_bundle.clone(),
            master_key_file: self.master_key_path(),
        })
    }

    pub fn meta_config(&self, id: u64) -> anyhow::Result<cairn_raft::MetaNodeConfig> {
        let entry = self.meta_entry(id)?;
        let mut config = cairn_raft::MetaNodeConfig::new(
            id,
            entry.address,
            self.data_dir(RoleKind::Meta, id),
            self.meta_peers(),
        );
        config.zones = self.meta_zones();
        config.partition_count = self.partitions;
        config.set_region(&self.region);
        Ok(config)
    }

    pub fn storage_config(&self, id: u64) -> anyhow::Result<cairn_storage::NodeConfig> {
        let entry = self
            .storage
            .iter()
            .find(|entry| entry.id == id)
            .with_context(|| format!("no [[storage]] with id {id} in the cluster file"))?;
        let mut config = cairn_storage::NodeConfig::new(
            entry.address,
            self.data_dir(RoleKind::Storage, id),
            entry.az.clone(),
        );
        config.cores = entry.cores;
        if let Some(cache_mib) = entry.cache_mib {
            config.cache_capacity_bytes_per_core = cache_mib << 20;
        }
        if let Some(segment_mib) = entry.segment_mib {
            config.segment_size_bytes = segment_mib << 20;
        }
        Ok(config)
    }

    pub fn storage_nodes(&self) -> Vec<cairn_gateway::StorageNodeConfig> {
        self.storage
            .iter()
            .map(|entry| {
                cairn_gateway::StorageNodeConfig::new(entry.id, entry.address, entry.az.clone())
            })
            .collect()
    }

    /// The `[[gateway]]` entry with `id`.
    pub fn gateway_entry(&self, id: u64) -> Option<&GatewayEntry> {
        self.gateway.iter().find(|entry| entry.id == id)
    }

    /// The gateway's configuration. Root credentials come from the environment or the
    /// credentials file, which must exist: two gateways generating their own would disagree.
    /// Returned with the gateway's entry, for the settings the caller's flags may override.
    pub fn gateway_config(
        &self,
        id: u64,
    ) -> anyhow::Result<(cairn_gateway::GatewayConfig, &GatewayEntry)> {
        let entry = self
            .gateway_entry(id)
            .with_context(|| format!("no [[gateway]] with id {id} in the cluster file"))?;
        let mut config = cairn_gateway::GatewayConfig::new(
            entry.address,
            self.storage_nodes(),
            self.meta_client(),
        );
        config.region = self.region.clone();
        config.default_ec_scheme = self.ec_scheme.clone();
        config.executors = entry.executors;
        config.root_credentials = match cairn_gateway::RootCredentials::from_env() {
            Some(credentials) => Some(credentials),
            None => Some(read_credentials(&self.credentials_path())?),
        };
        // The key file must exist (two gateways generating their own would disagree).
        let master_key_path = self.master_key_path();
        config.master_key = Some(std::sync::Arc::new(
            cairn_sse::MasterKeyFile::open(&master_key_path).with_context(|| {
                format!(
                    "the cluster master key {} (run `cairn cluster init`)",
                    master_key_path.display()
                )
            })?,
        ));
        Ok((config, entry))
    }
}

/// Reads an existing credentials file (never generates one).
fn read_credentials(path: &Path) -> anyhow::Result<cairn_gateway::RootCredentials> {
    if !path.exists() {
        bail!(
            "root credentials file {} is missing: run `cairn cluster init` or set \
             CAIRN_ROOT_ACCESS_KEY and CAIRN_ROOT_SECRET_KEY",
            path.display()
        );
    }
    let (credentials, _) = cairn_gateway::RootCredentials::from_env_or_file(path)
        .with_context(|| format!("root credentials in {}", path.display()))?;
    Ok(credentials)
}

/// Layout of the local example cluster.
#[derive(Clone, Debug)]
pub struct LocalLayout {
    pub meta_count: u64,
    pub storage_count: u64,
    pub gateway_count: u64,
    pub worker_count: u64,
    pub az_count: u64,
    /// Refuse the layout unless writes keep k + m shards with any one AZ down.
    pub survive_az_loss: bool,
    pub partitions: u32,
    pub ec_scheme: String,
    /// Ports are these plus nothing: every process gets its own 127.0.x.y address, so the same
    /// port is reused (meta 127.0.1.N, storage 127.0.2.N, gateways 127.0.3.N).
    pub meta_port: u16,
    pub meta_admin_port: u16,
    pub storage_port: u16,
    pub gateway_port: u16,
    pub gateway_admin_port: u16,
    /// Workers sit on 127.0.4.N.
    pub worker_admin_port: u16,
    /// Region the gateways serve.
    pub region: String,
    /// Other regions' S3 endpoints for the `[replication]` table (run by worker 1).
    pub replication_endpoints: BTreeMap<String, String>,
    pub replication_ca_bundle: Option<PathBuf>,
}

impl Default for LocalLayout {
    fn default() -> Self {
        LocalLayout {
            meta_count: 3,
            storage_count: 12,
            gateway_count: 2,
            worker_count: 1,
            az_count: 4,
            survive_az_loss: false,
            partitions: 8,
            ec_scheme: default_ec_scheme(),
            meta_port: 7400,
            meta_admin_port: 7490,
            storage_port: 7100,
            gateway_port: 9000,
            gateway_admin_port: 9090,
            worker_admin_port: 7590,
            region: default_region(),
            replication_endpoints: BTreeMap::new(),
            replication_ca_bundle: None,
        }
    }
}

/// The TOML text of a local cluster with `layout`, state below `data_root`. Node N of a role sits
/// in AZ `az((N - 1) mod azs + 1)`, so every AZ gets its share of every role.
pub fn local_cluster_file(layout: &LocalLayout, data_root: &Path) -> String {
    use std::fmt::Write;
    let az = |index: u64| format!("az{}", (index - 1) % layout.az_count.max(1) + 1);
    let mut text = String::new();
    let _ = writeln!(
        text,
        "# Cairn cluster file: {} meta replicas, {} storage nodes in {} AZs, {} gateways.\n\
         # Start everything with `cairn cluster up <this file>`, or one role per process with\n\
         # `cairn meta|storage|gateway|worker --cluster <this file> --id N`.\n",
        layout.meta_count, layout.storage_count, layout.az_count, layout.gateway_count
    );
    let _ = writeln!(text, "region = {}", toml_string(&layout.region));
    let _ = writeln!(text, "partitions = {}", layout.partitions);
    let _ = writeln!(text, "ec_scheme = \"{}\"", layout.ec_scheme);
    let _ = writeln!(
        text,
        "data_root = {}",
        toml_string(&data_root.display().to_string())
    );
    let _ = writeln!(
        text,
        "# Internal mutual TLS: CA in <tls_dir>/ca, one identity per process.\ntls_dir = {}\n",
        toml_string(&data_root.join("tls").display().to_string())
    );
    for id in 1..=layout.meta_count {
        let _ = writeln!(
            text,
            "[[meta]]\nid = {id}\naddress = \"127.0.1.{id}:{}\"\naz = \"{}\"\nadmin = \"127.0.1.{id}:{}\"\n",
            layout.meta_port,
            az(id),
            layout.meta_admin_port
        );
    }
    for id in 1..=layout.storage_count {
        let _ = writeln!(
            text,
            "[[storage]]\nid = {id}\naddress = \"127.0.2.{id}:{}\"\naz = \"{}\"\ncores = 1\n",
            layout.storage_port,
            az(id)
        );
    }
    if layout.gateway_count > 0 {
        let _ = writeln!(
            text,
            "# A gateway may also serve S3 over TLS (tls_cert = \"PEM\", tls_key = \"PEM\") and\n\
             # edge PoPs over mutual TLS with its cluster identity (edge_address = \"HOST:PORT\",\n\
             # for `cairn edge --region NAME=HOST:PORT`)."
        );
    }
    for id in 1..=layout.gateway_count {
        let _ = writeln!(
            text,
            "[[gateway]]\nid = {id}\naddress = \"127.0.3.{id}:{}\"\nadmin = \"127.0.3.{id}:{}\"\n",
            layout.gateway_port, layout.gateway_admin_port
        );
    }
    for id in 1..=layout.worker_count {
        let _ = writeln!(
            text,
            "[[worker]]\nid = {id}\nadmin = \"127.0.4.{id}:{}\"\n",
            layout.worker_admin_port
        );
    }
    if layout.worker_count > 0 {
        let _ = writeln!(
            text,
            "# Cross-region replication: worker 1 runs the replicator, reading through the first\n\
             # gateway (local_endpoint = \"https://...\" to read elsewhere); endpoints name the\n\
             # other regions' S3 endpoints; ca_bundle (PEM) is trusted for https:// endpoints.\n\
             [replication]\nworker = 1"
        );
        if let Some(bundle) = &layout.replication_ca_bundle {
            let _ = writeln!(
                text,
                "ca_bundle = {}",
                toml_string(&bundle.display().to_string())
            );
        }
        let _ = writeln!(text, "\n[replication.endpoints]");
        for (region, url) in &layout.replication_endpoints {
            let _ = writeln!(text, "{} = {}", toml_string(region), toml_string(url));
        }
    }
    text
}

/// A TOML basic string with the characters TOML requires escaped.
fn toml_string(value: &str) -> String {
    let mut quoted = String::with_capacity(value.len() + 2);
    quoted.push('"');
    for character in value.chars() {
        match character {
            '"' => quoted.push_str("\\\""),
            '\\' => quoted.push_str("\\\\"),
            '\n' => quoted.push_str("\\n"),
            character if character.is_control() => {
                quoted.push_str(&format!("\\u{:04X}", u32::from(character)))
            }
            character => quoted.push(character),
        }
    }
    quoted.push('"');
    quoted
}

/// `cairn cluster init`: writes the cluster file (refusing to overwrite one) and generates the
/// root credentials unless they exist. Returns the loaded file.
pub fn init(out: &Path, data_root: &Path, layout: &LocalLayout) -> anyhow::Result<ClusterFile> {
    if out.exists() {
        bail!("{} exists; not overwriting a cluster file", out.display());
    }
    let data_root = if data_root.is_absolute() {
        data_root.to_path_buf()
    } else {
        std::env::current_dir()?.join(data_root)
    };
    let text = local_cluster_file(layout, &data_root);
    // Validate before writing, so a bad layout leaves nothing behind.
    let parsed: ClusterFile = toml::from_str(&text).context("generated cluster file")?;
    parsed.validate().context("generated cluster file")?;
    let zone_loss = parsed.zone_loss_report()?;
    if layout.survive_az_loss
        && let Some(line) = zone_loss
            .iter()
            .find(|line| !line.contains("writes keep full redundancy") || line.contains("quorum"))
    {
        bail!(
            "--survive-az-loss: {line}; {} needs at least k/m + 2 AZs of at least m storage nodes",
            parsed.ec_scheme
        );
    }
    std::fs::create_dir_all(&data_root)
        .with_context(|| format!("creating {}", data_root.display()))?;
    std::fs::write(out, text).with_context(|| format!("writing {}", out.display()))?;
    let file = ClusterFile::load(out)?;
    let (credentials, _generated) =
        cairn_gateway::RootCredentials::from_env_or_file(&file.credentials_path())?;
    cairn_sse::MasterKeyRing::load_or_create(&file.master_key_path())
        .context("the cluster master key")?;
    file.issue_identities()?;
    println!("cairn cluster init: wrote {}", out.display());
    println!("  data root: {}", file.data_root.display());
    println!("  access key: {}", credentials.access_key_id);
    println!("  secret key: {}", credentials.secret_access_key);
    for line in zone_loss {
        println!("  {line}");
    }
    Ok(file)
}

static STOP_REQUESTED: AtomicBool = AtomicBool::new(false);

extern "C" fn request_stop(_signal: libc::c_int) {
    STOP_REQUESTED.store(true, Ordering::SeqCst);
}

/// One child process of `cairn cluster up`.
struct RoleProcess {
    kind: RoleKind,
    id: u64,
    child: Child,
    exited: bool,
}

/// `cairn cluster up FILE`: starts every role of the file as its own `cairn` process (logs in
/// `<data_root>/logs/`), waits for the gateways to listen, prints the endpoints, and runs until
/// SIGINT/SIGTERM, then stops workers, gateways, storage nodes and meta replicas in that order (SIGTERM,
/// then SIGKILL after a grace period). A child that dies is reported and not restarted: the
/// cluster is built to survive it and a restart is the operator's decision.
pub fn up(path: &Path) -> anyhow::Result<()> {
    let file = ClusterFile::load(path)?;
    let path = std::fs::canonicalize(path)?;
    // Generated here once, before any gateway reads it.
    let (credentials, _generated) =
        cairn_gateway::RootCredentials::from_env_or_file(&file.credentials_path())?;
    cairn_sse::MasterKeyRing::load_or_create(&file.master_key_path())
        .context("the cluster master key")?;
    file.issue_identities()?;
    let logs = file.data_root.join("logs");
    std::fs::create_dir_all(&logs)?;
    let binary = std::env::current_exe().context("locating the cairn binary")?;
    let action = nix::sys::signal::SigAction::new(
        nix::sys::signal::SigHandler::Handler(request_stop),
        nix::sys::signal::SaFlags::SA_RESTART,
        nix::sys::signal::SigSet::empty(),
    );
    for signal in [
        nix::sys::signal::Signal::SIGINT,
        nix::sys::signal::Signal::SIGTERM,
    ] {
        // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
        unsafe { nix::sys::signal::sigaction(signal, &action) }
            .with_context(|| format!("installing the {signal} handler"))?;
    }

    let mut processes: Vec<RoleProcess> = Vec::new();
    let roles: Vec<(RoleKind, u64)> = file
        .meta
        .iter()
        .map(|entry| (RoleKind::Meta, entry.id))
        .chain(
            file.storage
                .iter()
                .map(|entry| (RoleKind::Storage, entry.id)),
        )
        .chain(
            file.gateway
                .iter()
                .map(|entry| (RoleKind::Gateway, entry.id)),
        )
        .chain(file.worker.iter().map(|entry| (RoleKind::Worker, entry.id)))
        .collect();
    for (kind, id) in roles {
        let log_path = logs.join(format!("{}-{id}.log", kind.name()));
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .with_context(|| format!("opening {}", log_path.display()))?;
        let child = Command::new(&binary)
            .arg(kind.name())
            .arg("--cluster")
            .arg(&path)
            .arg("--id")
            .arg(id.to_string())
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {} {id}", kind.name()));
        match child {
            Ok(child) => processes.push(RoleProcess {
                kind,
                id,
                child,
                exited: false,
            }),
            Err(error) => {
                stop_all(&mut processes);
                return Err(error);
            }
        }
    }

    let ready = wait_for_gateways(&file, &mut processes, Duration::from_secs(60));
    if let Err(error) = ready {
        stop_all(&mut processes);
        return Err(error);
    }
    println!(
        "cairn cluster up: {} meta, {} storage, {} gateways, {} workers running; logs in {}",
        file.meta.len(),
        file.storage.len(),
        file.gateway.len(),
        file.worker.len(),
        logs.display()
    );
    if let Some(replication) = &file.replication {
        println!("  replicator: worker {}", replication.worker);
    }
    for entry in &file.gateway {
        println!("  S3 endpoint http://{}", entry.address);
    }
    println!("  access key: {}", credentials.access_key_id);
    println!("  secret key: {}", credentials.secret_access_key);
    println!("  region: {}; EC {}", file.region, file.ec_scheme);

    while !STOP_REQUESTED.load(Ordering::SeqCst) {
        for process in processes.iter_mut().filter(|process| !process.exited) {
            if let Ok(Some(status)) = process.child.try_wait() {
                process.exited = true;
                eprintln!(
                    "cairn cluster up: {} {} exited ({status}); see {}",
                    process.kind.name(),
                    process.id,
                    logs.join(format!("{}-{}.log", process.kind.name(), process.id))
                        .display()
                );
            }
        }
        if processes.iter().all(|process| process.exited) {
            bail!("every process of the cluster exited");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    println!("cairn cluster up: stopping");
    stop_all(&mut processes);
    Ok(())
}

fn wait_for_gateways(
    file: &ClusterFile,
    processes: &mut [RoleProcess],
    timeout: Duration,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    for entry in &file.gateway {
        loop {
            if std::net::TcpStream::connect_timeout(&entry.address, Duration::from_millis(200))
                .is_ok()
            {
                break;
            }
            for process in processes.iter_mut() {
                if let Ok(Some(status)) = process.child.try_wait() {
                    bail!(
                        "{} {} exited during start-up ({status}); see its log in {}",
                        process.kind.name(),
                        process.id,
                        file.data_root.join("logs").display()
                    );
                }
            }
            if Instant::now() > deadline || STOP_REQUESTED.load(Ordering::SeqCst) {
                bail!("gateway {} did not listen on {}", entry.id, entry.address);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    Ok(())
}

/// SIGTERM to every running child, role by role (workers and gateways first: they stop making
/// requests before the services under them go), SIGKILL for any that outlives the grace period.
fn stop_all(processes: &mut [RoleProcess]) {
    const GRACE: Duration = Duration::from_secs(10);
    for kind in [
        RoleKind::Worker,
        RoleKind::Gateway,
        RoleKind::Storage,
        RoleKind::Meta,
    ] {
        let group: Vec<&mut RoleProcess> = processes
            .iter_mut()
            .filter(|process| process.kind == kind && !process.exited)
            .collect();
        for process in &group {
            let pid = nix::unistd::Pid::from_raw(process.child.id() as i32);
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        }
        let deadline = Instant::now() + GRACE;
        for process in group {
            loop {
                match process.child.try_wait() {
                    Ok(Some(_)) | Err(_) => break,
                    Ok(None) if Instant::now() > deadline => {
                        let _ = process.child.kill();
                        let _ = process.child.wait();
                        break;
                    }
                    Ok(None) => std::thread::sleep(Duration::from_millis(50)),
                }
            }
            process.exited = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_example_parses_and_validates() {
        let layout = LocalLayout::default();
        let text = local_cluster_file(&layout, Path::new("/var/tmp/cairn \"x\""));
        let file: ClusterFile = toml::from_str(&text).unwrap();
        file.validate().unwrap();
        assert_eq!(file.meta.len(), 3);
        assert_eq!(file.storage.len(), 12);
        assert_eq!(file.gateway.len(), 2);
        assert_eq!(file.worker.len(), 1);
        assert_eq!(file.data_root, Path::new("/var/tmp/cairn \"x\""));
        let per_zone = |zone: &str| file.storage.iter().filter(|node| node.az == zone).count();
        assert_eq!(
            (
                per_zone("az1"),
                per_zone("az2"),
                per_zone("az3"),
                per_zone("az4")
            ),
            (3, 3, 3, 3)
        );
        // The default layout survives any one AZ with writes at full redundancy.
        let report = file.zone_loss_report().unwrap();
        assert_eq!(report.len(), 4);
        assert!(
            report
                .iter()
                .all(|line| line.ends_with("writes keep full redundancy")),
            "{report:?}"
        );
        assert_eq!(
            file.storage[4].address,
            "127.0.2.5:7100".parse::<SocketAddr>().unwrap()
        );
        assert_eq!(
            file.meta_peers(),
            BTreeMap::from([
                (1, "127.0.1.1:7400".to_owned()),
                (2, "127.0.1.2:7400".to_owned()),
                (3, "127.0.1.3:7400".to_owned()),
            ])
        );
    }

    #[test]
    fn global_meta_of_the_file_reaches_gateways_and_workers_unless_a_flag_names_one() {
        let storage = (1..=9)
            .map(|id| {
                format!(
                    "[[storage]]\nid = {id}\naddress = \"127.0.2.{id}:7100\"\naz = \"z{}\"\n",
                    id % 3
                )
            })
            .collect::<String>();
        let file = |global: &str| {
            format!(
                "data_root = \"/tmp/x\"\nregion = \"us-west-2\"\n{global}\n\
                 [[meta]]\nid = 1\naddress = \"127.0.0.1:7400\"\naz = \"a\"\n{storage}"
            )
        };
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("cluster.toml");
        std::fs::write(
            &path,
            file("global_meta = \"1=127.0.9.1:7400,2=127.0.9.2:7400\"\nglobal_partitions = 6"),
        )
        .unwrap();
        let no_flags = crate::regions::GlobalMetaArgs {
            global_meta: None,
            global_partitions: 4,
        };
        let merged = no_flags.or_cluster_file(Some(&ClusterFile::load(&path).unwrap()));
        assert_eq!(
            merged.global_meta.as_deref(),
            Some("1=127.0.9.1:7400,2=127.0.9.2:7400")
        );
        assert_eq!(merged.global_partitions, 6);
        let mut config = crate::meta_client_config("1=127.0.0.1:7400", 8).unwrap();
        merged.apply(&mut config).unwrap();
        let global = config.global_bucket_service.as_ref().unwrap();
        assert_eq!(global.partition_count, 6);
        assert_eq!(global.nodes.len(), 2);
        // A flag wins over the file; no file, no global service.
        let flag = crate::regions::GlobalMetaArgs {
            global_meta: Some("1=127.0.8.1:7400".into()),
            global_partitions: 4,
        };
        assert_eq!(
            flag.or_cluster_file(Some(&ClusterFile::load(&path).unwrap()))
                .global_meta,
            flag.global_meta
        );
        assert_eq!(no_flags.or_cluster_file(None).global_meta, None);
        // Without global_meta the file's region holds the bucket service.
        std::fs::write(&path, file("")).unwrap();
        assert_eq!(
            no_flags
                .or_cluster_file(Some(&ClusterFile::load(&path).unwrap()))
                .global_meta,
            None
        );
        // A spec that does not parse is refused when the file is read.
        let error = parse(&file("global_meta = \"not a replica list\"")).unwrap_err();
        assert!(format!("{error:#}").contains("global_meta"), "{error:#}");
    }

    fn parse(text: &str) -> anyhow::Result<ClusterFile> {
        let file: ClusterFile = toml::from_str(text)?;
        file.validate()?;
        Ok(file)
    }

    #[test]
    fn bad_files_are_refused_with_the_reason() {
        let base =
            "data_root = \"/tmp/x\"\n[[meta]]\nid = 1\naddress = \"127.0.0.1:7400\"\naz = \"a\"\n";
        let nodes = |count: u64, zones: u64| {
            (1..=count)
                .map(|id| {
                    format!(
                        "[[storage]]\nid = {id}\naddress = \"127.0.2.{id}:7100\"\naz = \"z{}\"\n",
                        id % zones
                    )
                })
                .collect::<String>()
        };
        // Nine nodes in three zones hold 6+3.
        parse(&format!("{base}{}", nodes(9, 3))).unwrap();
        // Nine nodes in two zones cannot keep ≤ 3 shards per zone.
        let error = parse(&format!("{base}{}", nodes(9, 2))).unwrap_err();
        assert!(format!("{error:#}").contains("cannot hold"), "{error:#}");
        // Duplicate ids and addresses.
        let duplicate = format!(
            "{base}{}[[storage]]\nid = 1\naddress = \"127.0.2.99:7100\"\naz = \"z1\"\n",
            nodes(9, 3)
        );
        let error = parse(&duplicate).unwrap_err();
        assert!(format!("{error:#}").contains("unique"), "{error:#}");
        let clash = format!(
            "{base}{}[[gateway]]\nid = 1\naddress = \"127.0.0.1:7400\"\n",
            nodes(9, 3)
        );
        let error = parse(&clash).unwrap_err();
        assert!(format!("{error:#}").contains("used twice"), "{error:#}");
        // Unknown keys are typos, not silently ignored settings.
        let typo = format!("{base}{}partitons = 4\n", nodes(9, 3));
        assert!(parse(&typo).is_err());
        // Bad scheme.
        let scheme = format!("ec_scheme = \"nope\"\n{base}{}", nodes(9, 3));
        let error = parse(&scheme).unwrap_err();
        assert!(format!("{error:#}").contains("ec_scheme"), "{error:#}");
    }

    #[test]
    fn gateway_tls_and_edge_listener_come_from_the_gateway_entry() {
        let nodes: String = (1..=9)
            .map(|id| {
                format!(
                    "[[storage]]\nid = {id}\naddress = \"127.0.2.{id}:7100\"\naz = \"z{}\"\n",
                    id % 3
                )
            })
            .collect();
        let file = |top: &str, gateway: &str| {
            format!(
                "data_root = \"state\"\n{top}\n[[meta]]\nid = 1\naddress = \"127.0.0.1:7400\"\naz = \"a\"\n\
                 {nodes}[[gateway]]\nid = 1\naddress = \"127.0.3.1:9000\"\n{gateway}\n\
                 [[worker]]\nid = 1\n[replication]\nworker = 1\n"
            )
        };
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cluster.toml");
        let load = |text: String| {
            std::fs::write(&path, text).unwrap();
            ClusterFile::load(&path)
        };
        // Relative certificate paths resolve against the file; the replicator reads through
        // the gateway over HTTPS.
        let loaded = load(file(
            "tls_dir = \"tls\"",
            "tls_cert = \"s3.pem\"\ntls_key = \"s3-key.pem\"\nedge_address = \"127.0.3.1:9443\"",
        ))
        .unwrap();
        let entry = loaded.gateway_entry(1).unwrap();
        assert_eq!(
            entry.tls_cert.as_deref(),
            Some(dir.path().join("s3.pem").as_path())
        );
        assert_eq!(
            entry.tls_key.as_deref(),
            Some(dir.path().join("s3-key.pem").as_path())
        );
        assert_eq!(entry.edge_address, Some("127.0.3.1:9443".parse().unwrap()));
        assert_eq!(
            loaded.replicator_settings(1).unwrap().local_endpoint,
            "https://127.0.3.1:9000"
        );
        assert!(loaded.gateway_entry(2).is_none());
        // Plain HTTP without them.
        let plain = load(file("", "")).unwrap();
        assert_eq!(
            plain.replicator_settings(1).unwrap().local_endpoint,
            "http://127.0.3.1:9000"
        );
        // The edge listener serves the gateway's cluster identity: no tls_dir, no listener.
        let error = load(file("", "edge_address = \"127.0.3.1:9443\"")).unwrap_err();
        assert!(format!("{error:#}").contains("tls_dir"), "{error:#}");
        // Its address is checked like the others.
        let error = load(file(
            "tls_dir = \"tls\"",
            "edge_address = \"127.0.3.1:9000\"",
        ))
        .unwrap_err();
        assert!(format!("{error:#}").contains("used twice"), "{error:#}");
        // A certificate needs its key.
        let error = load(file("", "tls_cert = \"s3.pem\"")).unwrap_err();
        assert!(format!("{error:#}").contains("tls_key"), "{error:#}");
    }

    #[test]
    fn az_loss_is_reported_and_refused_when_asked() {
        // Three AZs of three nodes with 6+3: an AZ down leaves room for 6 shards, fewer than the
        // 7 a write needs.
        let three = LocalLayout {
            storage_count: 9,
            az_count: 3,
            ..LocalLayout::default()
        };
        let file: ClusterFile =
            toml::from_str(&local_cluster_file(&three, Path::new("/tmp/x"))).unwrap();
        let report = file.zone_loss_report().unwrap();
        assert!(
            report.iter().all(|line| line.contains("refused (503)")),
            "{report:?}"
        );
        let dir = tempfile::tempdir().unwrap();
        let refused = init(
            &dir.path().join("cluster.toml"),
            &dir.path().join("state"),
            &LocalLayout {
                survive_az_loss: true,
                ..three
            },
        )
        .unwrap_err();
        assert!(
            format!("{refused:#}").contains("k/m + 2 AZs"),
            "{refused:#}"
        );
        assert!(!dir.path().join("cluster.toml").exists());
        // One meta replica per AZ of two: losing either AZ loses the metadata quorum.
        let two_meta = LocalLayout {
            meta_count: 2,
            ..LocalLayout::default()
        };
        let file: ClusterFile =
            toml::from_str(&local_cluster_file(&two_meta, Path::new("/tmp/x"))).unwrap();
        let report = file.zone_loss_report().unwrap();
        assert!(report[0].contains("quorum"), "{report:?}");
        assert!(!report[3].contains("quorum"), "{report:?}");
    }

    /// `cairn worker --cluster FILE --id N` (what `cairn cluster up` runs for every worker)
    /// takes the replicator's settings from the file: worker 1 of `cairn cluster init`'s file
    /// runs it, reading through the first gateway, with the endpoints and CA bundle given to
    /// `init`; other workers do not.
    #[test]
    fn the_replicator_is_configured_by_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let layout = LocalLayout {
            worker_count: 2,
            region: "eu-west-1".to_owned(),
            replication_endpoints: BTreeMap::from([
                ("us-east-1".to_owned(), "https://10.0.0.1:9000".to_owned()),
                ("ap-south-1".to_owned(), "http://10.0.0.2:9000".to_owned()),
            ]),
            replication_ca_bundle: Some(PathBuf::from("certs/regions.pem")),
            ..LocalLayout::default()
        };
        let path = dir.path().join("cluster.toml");
        std::fs::write(&path, local_cluster_file(&layout, Path::new("state"))).unwrap();
        let file = ClusterFile::load(&path).unwrap();
        assert_eq!(
            file.replicator_settings(1),
            Some(ReplicatorSettings {
                region: "eu-west-1".to_owned(),
                local_endpoint: "http://127.0.3.1:9000".to_owned(),
                endpoints: layout.replication_endpoints.clone(),
                // Relative to the file, like every path in it.
                ca_bundle: Some(dir.path().join("certs/regions.pem")),
                master_key_file: dir.path().join("state/master-key"),
            })
        );
        assert_eq!(file.replicator_settings(2), None);
        // Without endpoints the replicator still runs (same-region destinations).
        let plain: ClusterFile = toml::from_str(&local_cluster_file(
            &LocalLayout::default(),
            Path::new("/tmp/x"),
        ))
        .unwrap();
        plain.validate().unwrap();
        let settings = plain.replicator_settings(1).unwrap();
        assert!(settings.endpoints.is_empty());
        assert_eq!(settings.ca_bundle, None);
        // An explicit local endpoint (e.g. a gateway behind TLS) wins over the first gateway.
        let text = local_cluster_file(&LocalLayout::default(), Path::new("/tmp/x")).replace(
            "[replication]\nworker = 1",
            "[replication]\nworker = 1\nlocal_endpoint = \"https://s3.local:443/\"",
        );
        assert_eq!(
            parse(&text)
                .unwrap()
                .replicator_settings(1)
                .unwrap()
                .local_endpoint,
            "https://s3.local:443"
        );
    }

    #[test]
    fn bad_replication_tables_are_refused() {
        let text = local_cluster_file(&LocalLayout::default(), Path::new("/tmp/x"));
        for (from, to, reason) in [
            ("worker = 1", "worker = 7", "no [[worker]] with that id"),
            (
                "[replication.endpoints]",
                "[replication.endpoints]\nus-west-2 = \"ftp://10.0.0.1:21\"",
                "us-west-2",
            ),
            (
                "worker = 1",
                "worker = 1\nlocal_endpoint = \"127.0.3.1:9000\"",
                "local_endpoint",
            ),
            ("worker = 1", "worker = 1\nworkers = 2", "unknown field"),
        ] {
            let error = parse(&text.replace(from, to)).unwrap_err();
            assert!(format!("{error:#}").contains(reason), "{reason}: {error:#}");
        }
    }

    #[test]
    fn relative_paths_follow_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let text = local_cluster_file(&LocalLayout::default(), Path::new("state"))
            + "credentials_file = \"keys/root\"\n";
        // `credentials_file` must precede the tables; move it to the top.
        let text = format!(
            "credentials_file = \"keys/root\"\n{}",
            text.replace("credentials_file = \"keys/root\"\n", "")
        );
        let path = dir.path().join("cluster.toml");
        std::fs::write(&path, text).unwrap();
        let file = ClusterFile::load(&path).unwrap();
        assert_eq!(file.data_root, dir.path().join("state"));
        assert_eq!(file.credentials_path(), dir.path().join("keys/root"));
        assert_eq!(
            file.data_dir(RoleKind::Storage, 4),
            dir.path().join("state/storage-4")
        );
    }
}
