//! Gateway configuration: where it listens, how many executors, which region and base domains it
//! answers for, the storage nodes it writes shards to and the metadata cluster it commits to.
//!
//! Invariant: a storage node's `node_id` is what object records store (`ShardPlacement::node_id`)
//! and what reads resolve back to an address, so it must stay stable for the node's life; the
//! order of `storage_nodes` does not matter.

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::path::Path;

use cairn_raft::MetaClientConfig;

/// One storage node the gateway may place shards on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StorageNodeConfig {
    /// Stable id recorded in shard maps (non-zero, unique in the cluster).
    pub node_id: u64,
    pub address: SocketAddr,
    /// Availability zone; placement puts at most m shards of a stripe in one zone.
    pub az: String,
}

impl StorageNodeConfig {
    pub fn new(node_id: u64, address: SocketAddr, az: impl Into<String>) -> Self {
        StorageNodeConfig {
            node_id,
            address,
            az: az.into(),
        }
    }
}

/// Root credentials, registered in the metadata service at start (idempotently).
#[derive(Clone, PartialEq, Eq)]
pub struct RootCredentials {
    pub access_key_id: String,
    pub secret_access_key: String,
    /// The owner name buckets and objects created with these keys carry.
    pub owner: String,
}

impl std::fmt::Debug for RootCredentials {
    // Configurations get logged; the secret must not be.
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("RootCredentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .field("owner", &self.owner)
            .finish()
    }
}

impl RootCredentials {
    /// Reads `CAIRN_ROOT_ACCESS_KEY` / `CAIRN_ROOT_SECRET_KEY`; `None` unless both are set.
    pub fn from_env() -> Option<RootCredentials> {
        let access_key_id = std::env::var("CAIRN_ROOT_ACCESS_KEY").ok()?;
        let secret_access_key = std::env::var("CAIRN_ROOT_SECRET_KEY").ok()?;
        if access_key_id.is_empty() || secret_access_key.is_empty() {
            return None;
        }
        Some(RootCredentials {
            access_key_id,
            secret_access_key,
            owner: "root".to_owned(),
        })
    }

    /// The environment's credentials when set; otherwise the ones stored at `path`, generated
    /// (random, file mode 0600) on the first call so they survive restarts. The flag is `true`
    /// when this call generated them: the caller prints them once.
    pub fn from_env_or_file(path: &Path) -> std::io::Result<(RootCredentials, bool)> {
        if let Some(credentials) = RootCredentials::from_env() {
            return Ok((credentials, false));
        }
        match std::fs::read_to_string(path) {
            Ok(text) => {
                let mut lines = text.lines();
                let (Some(access_key_id), Some(secret_access_key)) = (lines.next(), lines.next())
                else {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        format!(
                            "{} does not hold two lines (key id, secret)",
                            path.display()
                        ),
                    ));
                };
                Ok((
                    RootCredentials {
                        access_key_id: access_key_id.trim().to_owned(),
                        secret_access_key: secret_access_key.trim().to_owned(),
                        owner: "root".to_owned(),
                    },
                    false,
                ))
            }
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                let credentials = RootCredentials {
                    access_key_id: format!(
                        "CAIRN{}",
                        random_text(15, b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")?
                    ),
                    secret_access_key: random_text(
                        40,
                        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
                    )?,
                    owner: "root".to_owned(),
                };
                // Written to a temporary name and renamed, so a crash never leaves half a file
                // that would lock the operator out.
                let temporary = path.with_extension("tmp");
                let mut file = {
                    use std::os::unix::fs::OpenOptionsExt;
                    std::fs::OpenOptions::new()
                        .write(true)
                        .create(true)
                        .truncate(true)
                        .mode(0o600)
                        .open(&temporary)?
                };
                writeln!(file, "{}", credentials.access_key_id)?;
                writeln!(file, "{}", credentials.secret_access_key)?;
                file.sync_all()?;
                std::fs::rename(&temporary, path)?;
                Ok((credentials, true))
            }
            Err(error) => Err(error),
        }
    }
}

/// `length` characters drawn uniformly from `alphabet` (rejection sampling over kernel random
/// bytes, so no character is more likely than another).
pub(crate) fn random_text(length: usize, alphabet: &[u8]) -> std::io::Result<String> {
    let limit = 256 - 256 % alphabet.len();
    let mut source = std::fs::File::open("/dev/urandom")?;
    let mut text = String::with_capacity(length);
    let mut byte = [0u8; 1];
    while text.len() < length {
        source.read_exact(&mut byte)?;
        if usize::from(byte[0]) < limit {
            text.push(char::from(alphabet[usize::from(byte[0]) % alphabet.len()]));
        }
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_root_credentials_persist_across_calls() {
        if RootCredentials::from_env().is_some() {
            // The environment wins by design; nothing to test here then.
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("root-credentials");
        let (first, generated) = RootCredentials::from_env_or_file(&path).unwrap();
        assert!(generated);
        assert_eq!(first.access_key_id.len(), 20);
        assert_eq!(first.secret_access_key.len(), 40);
        let (second, generated_again) = RootCredentials::from_env_or_file(&path).unwrap();
        assert!(!generated_again);
        assert_eq!(first, second);
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}

#[derive(Clone, Debug)]
pub struct GatewayConfig {
    /// S3 listener; every executor binds it with SO_REUSEPORT. Port 0 picks one port for all.
    pub listen: SocketAddr,
    /// Admin listener (Prometheus `/metrics`); `None` serves no admin endpoint. Keep it off the
    /// S3 port and off public interfaces: it is not authenticated.
    pub admin_listen: Option<SocketAddr>,
    /// Executors (threads, one io_uring each); `None` means one per available core.
    pub executors: Option<usize>,
    /// The region this gateway serves (SigV4 scope, LocationConstraint, bucket primary region).
    pub region: String,
    /// Base domains for virtual-host-style addressing (`<bucket>.<base domain>`).
    pub base_domains: Vec<String>,
    pub storage_nodes: Vec<StorageNodeConfig>,
    pub meta: MetaClientConfig,
    /// Scheme of new buckets, e.g. `isal-cauchy:4+2`.
    pub default_ec_scheme: String,
    /// Erasure-coding piece size (one shard's share of a stripe).
    pub piece_size_bytes: u32,
    /// Registered at start when set.
    pub root_credentials: Option<RootCredentials>,
    /// How long a looked-up access key stays cached per executor.
    pub access_key_cache_ttl_ms: u64,
    /// Deadline of one shard put on a storage node (and of connecting to one).
    pub storage_timeout_ms: u64,
    /// Deadline of one piece read on the GET path. A piece later than this is treated as missing
    /// and the stripe is decoded from other shards, so one slow node does not stall a GET.
    pub shard_read_timeout_ms: u64,
    /// Open client connections per executor; further connections are closed at once.
    pub max_connections_per_executor: usize,
    /// Largest XML request body accepted (CreateBucket configuration and the like).
    pub max_xml_body_bytes: usize,
    /// How often the node registry is read for DOWN and full nodes (0: never).
    pub node_status_refresh_ms: u64,
    /// The cluster master keyring that wraps SSE-S3 data keys, KMS key material and access-key
    /// secrets (a file kept outside the metadata service, the same on every gateway, re-read
    /// when it changes: see `cairn_sse::keyring`). `None`: SSE-S3 is unavailable and nothing is
    /// encrypted by default.
    pub master_key: Option<std::sync::Arc<cairn_sse::MasterKeyFile>>,
    /// Encrypt (SSE-S3) every new object that asks for no encryption, as S3 does. Turned off
    /// only to measure what encryption costs.
    pub encrypt_by_default: bool,
    /// TLS of the S3 listener (`cairn_tls::public_server_config`: `--tls-cert`/`--tls-key`);
    /// `None` serves plain HTTP.
    pub s3_tls: Option<std::sync::Arc<rustls::ServerConfig>>,
    /// The edge-facing listener (`--edge-listen`): the same S3 API, over mutual TLS with
    /// `edge_tls`, for edge PoPs only. Every executor binds it with SO_REUSEPORT.
    pub edge_listen: Option<SocketAddr>,
    /// The edge listener's TLS: this gateway's cluster identity, serving only clients with an
    /// edge certificate of the cluster CA (`cairn_tls::GATEWAY_INTERNAL_CLIENTS`), re-checked
    /// against the CRL before each request. Required with `edge_listen`.
    pub edge_tls: Option<cairn_tls::ServerTls>,
}

impl GatewayConfig {
    /// A configuration with Cairn's defaults: `isal-cauchy:4+2`, 256 KiB pieces, region
    /// `us-east-1`, base domain `s3.localhost`, root credentials from the environment.
    pub fn new(
        listen: SocketAddr,
        storage_nodes: Vec<StorageNodeConfig>,
        meta: MetaClientConfig,
    ) -> GatewayConfig {
        GatewayConfig {
            listen,
            admin_listen: None,
            executors: None,
            region: "us-east-1".to_owned(),
            base_domains: vec!["s3.localhost".to_owned()],
            storage_nodes,
            meta,
            default_ec_scheme: "isal-cauchy:4+2".to_owned(),
            piece_size_bytes: 256 * 1024,
            root_credentials: RootCredentials::from_env(),
            access_key_cache_ttl_ms: 5_000,
            storage_timeout_ms: 30_000,
            shard_read_timeout_ms: 2_000,
            max_connections_per_executor: 4_096,
            max_xml_body_bytes: 1 << 20,
            node_status_refresh_ms: 2_000,
            master_key: None,
            encrypt_by_default: true,
            s3_tls: None,
            edge_listen: None,
            edge_tls: None,
        }
    }
}
