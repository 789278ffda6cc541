//! Multi-region flags shared by `cairn dev`, `cairn gateway` and `cairn worker`.
//!
//! A region is a metadata cluster (object partitions, node registry), its storage nodes and its
//! gateways. Bucket names are global: one region's metadata cluster holds the bucket directory
//! (the global bucket service: buckets with their primary region, and access keys), and every
//! other region's roles send bucket and access-key operations there (`--global-meta`).
//!
//! The local two-region setup is two `cairn dev` processes (each region fails and restarts on
//! its own): the first is us-east-1 and holds the bucket directory; the second runs with
//! `--region us-west-2 --global-meta 1=127.0.0.1:<first's --meta-port>` (and its own ports and
//! data directory, the first's root credentials, and `--dev-ca <first's data>/tls/ca` so both
//! regions' roles hold identities of one cluster CA). A `cairn edge` with both regions'
//! gateways and `--meta` pointing at the first routes each bucket to its region.

/// Where the global bucket service is, for a role in a region that does not hold it.
#[derive(clap::Args, Clone, Debug)]
pub struct GlobalMetaArgs {
    /// The metadata replicas of the region holding the global bucket service
    /// (`1=HOST:PORT[@AZ],...`); absent: this region holds it.
    #[arg(long)]
    pub global_meta: Option<String>,
    /// Object partitions of that metadata cluster (`cairn dev`: 4).
    #[arg(long, default_value_t = 4)]
    pub global_partitions: u32,
}

impl GlobalMetaArgs {
    /// These flags, or when they name no global bucket service, the `global_meta` and
    /// `global_partitions` of the cluster file the role runs from (if any).
    pub fn or_cluster_file(&self, file: Option<&crate::cluster::ClusterFile>) -> Self {
        match file {
            Some(file) if self.global_meta.is_none() => GlobalMetaArgs {
                global_meta: file.global_meta.clone(),
                global_partitions: file.global_partitions,
            },
            _ => self.clone(),
        }
    }

    /// Points `config`'s bucket and access-key operations at the global bucket service (call it
    /// after `config.identity` is set).
    pub fn apply(&self, config: &mut cairn_raft::MetaClientConfig) -> anyhow::Result<()> {
        if let Some(spec) = &self.global_meta {
            let mut global = crate::meta_client_config(spec, self.global_partitions)?;
            // The same cluster identity dials the other region's replicas.
            global.identity = config.identity.clone();
            config.global_bucket_service = Some(Box::new(global));
        }
        Ok(())
    }
}
