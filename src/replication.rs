//! The replicator's settings for `cairn dev` and `cairn worker` (the worker itself is
//! `cairn_workers::replicator`): flags, over the defaults a cluster file's `[replication]` table
//! (src/cluster.rs) or `cairn dev`'s own CA gives.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;

#[derive(clap::Args, Clone, Debug, Default)]
pub struct ReplicationArgs {
    /// The S3 endpoint of another region, `REGION=http://HOST:PORT` or
    /// `REGION=https://HOST:PORT` (repeatable): where the replicator writes replicas for
    /// destination buckets of that region.
    #[arg(long = "replication-endpoint", value_name = "REGION=URL")]
    pub endpoints: Vec<String>,
    /// PEM file of the CA certificates the replicator trusts for `https://` endpoints (this
    /// region's gateway and the other regions'); only these are trusted. Default for `cairn
    /// dev` with `--tls-cert`: its dev CA; otherwise the public roots of `webpki-roots`.
    #[arg(long, value_name = "FILE")]
    pub replication_ca_bundle: Option<PathBuf>,
    /// Milliseconds between replicator passes when nothing is ready (passes over empty queues
    /// come up to four times further apart; a finished entry starts the next pass at once).
    #[arg(long, default_value_t = 500)]
    pub replication_poll_ms: u64,
    /// Longest pause, in milliseconds, between two attempts at an entry whose destination fails.
    #[arg(long, default_value_t = 30_000)]
    pub replication_max_backoff_ms: u64,
}

/// `cairn worker`'s extra replicator settings (`cairn dev` knows them from its own).
#[derive(clap::Args, Clone, Debug, Default)]
pub struct WorkerReplicationArgs {
    /// This region's S3 endpoint (`http://HOST:PORT`, or `https://HOST:PORT` for a gateway
    /// serving S3 over TLS); the replicator runs only when it is given.
    #[arg(long)]
    pub replication_local_endpoint: Option<String>,
    /// The region this worker's partitions belong to.
    #[arg(long, default_value = "us-east-1")]
    pub replication_region: String,
    /// The cluster master key file, to open the access-key secret the replicator signs with.
    #[arg(long)]
    pub replication_master_key_file: Option<PathBuf>,
}

/// What the replicator falls back to where no flag says otherwise (a cluster file's
/// `[replication]` table, `cairn dev`'s own CA).
#[derive(Clone, Debug, Default)]
pub struct ReplicatorDefaults {
    pub region_endpoints: BTreeMap<String, String>,
    pub ca_bundle: Option<PathBuf>,
}

/// Where a worker's replicator settings come from: its flags or its cluster file.
#[derive(Clone, Debug)]
pub struct ReplicatorSource {
    pub region: String,
    pub local_endpoint: String,
    pub master_key_file: Option<PathBuf>,
    pub defaults: ReplicatorDefaults,
}

/// `REGION=URL` items (`--replication-endpoint`) as region → URL (no trailing `/`).
pub fn parse_region_endpoints(items: &[String]) -> anyhow::Result<BTreeMap<String, String>> {
    items
        .iter()
        .map(|item| {
            let (region, url) = item
                .split_once('=')
                .context("--replication-endpoint is REGION=http(s)://HOST:PORT")?;
            anyhow::ensure!(
                !region.is_empty() && cairn_workers::replicator::split_endpoint(url).is_some(),
                "--replication-endpoint {item}: give REGION=http://HOST:PORT or \
                 REGION=https://HOST:PORT"
            );
            Ok((region.to_owned(), url.trim_end_matches('/').to_owned()))
        })
        .collect()
}

impl ReplicationArgs {
    /// Starts the replicator for `region`, reading through `local_endpoint`; the flags win over
    /// `defaults` (an endpoint flag over the same region's default, the CA bundle flag over the
    /// default bundle).
    pub fn spawn(
        &self,
        meta: cairn_raft::MetaClientConfig,
        region: &str,
        local_endpoint: String,
        master_key: Option<Arc<cairn_sse::MasterKeyFile>>,
        defaults: &ReplicatorDefaults,
    ) -> anyhow::Result<Arc<cairn_workers::replicator::ReplicatorStats>> {
        anyhow::ensure!(
            cairn_workers::replicator::split_endpoint(&local_endpoint).is_some(),
            "the replicator's local endpoint {local_endpoint}: give http://HOST:PORT or \
             https://HOST:PORT"
        );
        let mut config =
            cairn_workers::replicator::ReplicatorConfig::new(region.to_owned(), local_endpoint);
        config.region_endpoints = defaults.region_endpoints.clone();
        config
            .region_endpoints
            .extend(parse_region_endpoints(&self.endpoints)?);
        let bundle = self
            .replication_ca_bundle
            .as_deref()
            .or(defaults.ca_bundle.as_deref());
        if let Some(bundle) = bundle {
            config.tls = Some(
                cairn_workers::replicator::tls_client_config(bundle)
                    .context("--replication-ca-bundle")?,
            );
        }
        config.poll_interval = Duration::from_millis(self.replication_poll_ms.max(10));
        config.max_backoff = Duration::from_millis(self.replication_max_backoff_ms.max(10));
        config.initial_backoff = config.initial_backoff.min(config.max_backoff);
        cairn_workers::replicator::spawn_replicator(meta, config, master_key)
            .context("starting the replicator")
    }
}
