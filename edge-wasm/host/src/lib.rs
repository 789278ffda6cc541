//! `cairn edge`: the edge PoP host.
//!
//! Model: a thin I/O shell (like the gateway's): monoio executors, one per core, each with its own
//! SO_REUSEPORT listener; rustls through tokio-rustls on monoio's poll-io streams; hyper HTTP/1.1
//! on both sides. Per request: SigV4 verification with secrets from the metadata service
//! (`cairn-s3-proto`'s verifier, the gateway's rules), one or two calls of the sandboxed routing
//! module ([`module`]; the second after a bucket-service lookup the module asked for), then a
//! streaming proxy to a gateway of the chosen region over a per-executor keep-alive pool, or an
//! answer from the hot-object cache ([`cache`]). The client's signed request is forwarded
//! unchanged (plus `If-None-Match` when revalidating), so the gateway verifies it again: the
//! edge–region hop carries the client's own signature.
//!
//! Invariants: S3 errors come from `S3Error` through the gateway's `error_response`; a failing
//! routing module turns into a 500 `InternalError` for that request only; nothing but a
//! whole-object GET answered 200 with an ETag and at most `cache_max_object_bytes` is cached;
//! writes through the edge invalidate what they touch. The staleness bound is in [`cache`].

pub mod cache;
pub mod module;
mod server;
pub mod tls;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

pub use module::{ModuleError, ModuleLimits, RoutingModule};
pub use server::{EdgeHandle, run_edge, start_edge};

/// One region the edge forwards to.
#[derive(Debug, Clone)]
pub struct RegionConfig {
    /// The name buckets carry as their primary region (the gateways' `--region`).
    pub name: String,
    /// The region's S3 gateways (plain HTTP); requests are spread round-robin per executor.
    pub gateways: Vec<SocketAddr>,
}

#[derive(Debug, Clone)]
pub struct EdgeConfig {
    /// TLS listener.
    pub listen: SocketAddr,
    /// Plain-HTTP admin listener: `GET /metrics`, `GET /module`, `POST /module/reload[?path=P]`.
    pub admin_listen: Option<SocketAddr>,
    pub tls_cert_path: PathBuf,
    pub tls_key_path: PathBuf,
    /// The routing module (`.wasm`, or `.wat` text).
    pub module_path: PathBuf,
    pub module_limits: ModuleLimits,
    pub regions: Vec<RegionConfig>,
    /// Region for requests without a bucket region when the client gives no usable hint.
    pub default_region: String,
    /// Buckets pinned to a region by configuration (win over the bucket service).
    pub bucket_regions: BTreeMap<String, String>,
    /// The metadata service (bucket service and access keys).
    pub meta: cairn_raft::MetaClientConfig,
    /// Base domains for virtual-host addressing.
    pub virtual_host_suffixes: Vec<String>,
    pub cache_capacity_bytes: usize,
    pub cache_max_object_bytes: usize,
    /// The hot-object staleness bound handed to the routing module.
    pub cache_ttl_ms: u32,
    pub bucket_cache_ttl_ms: u64,
    pub access_key_cache_ttl_ms: u64,
    /// The cluster master key, to open the access-key secrets the bucket service keeps sealed
    /// (`cairn_sse::sealed`). Without it only keys stored unsealed can sign requests here.
    /// A keyring re-read when its file changes (`cairn_sse::keyring`).
    pub master_key: Option<std::sync::Arc<cairn_sse::MasterKeyFile>>,
    /// Executors (default: one per core).
    pub executors: Option<usize>,
    /// Idle keep-alive connections kept per gateway and executor.
    pub max_idle_connections_per_gateway: usize,
}

impl EdgeConfig {
    /// Defaults: 256 MiB cache, objects up to 8 MiB, 2 s staleness bound, 30 s bucket table TTL,
    /// 10 M fuel and 16 MiB of guest memory per routing call.
    pub fn new(
        listen: SocketAddr,
        tls_cert_path: PathBuf,
        tls_key_path: PathBuf,
        module_path: PathBuf,
        regions: Vec<RegionConfig>,
        meta: cairn_raft::MetaClientConfig,
    ) -> EdgeConfig {
        let default_region = regions
            .first()
            .map(|region| region.name.clone())
            .unwrap_or_default();
        EdgeConfig {
            listen,
            admin_listen: None,
            tls_cert_path,
            tls_key_path,
            module_path,
            module_limits: ModuleLimits {
                fuel: 10_000_000,
                memory_bytes: 16 << 20,
            },
            regions,
            default_region,
            bucket_regions: BTreeMap::new(),
            meta,
            virtual_host_suffixes: vec!["s3.localhost".to_owned()],
            cache_capacity_bytes: 256 << 20,
            cache_max_object_bytes: 8 << 20,
            cache_ttl_ms: 2_000,
            bucket_cache_ttl_ms: 30_000,
            access_key_cache_ttl_ms: 10_000,
            master_key: None,
            executors: None,
            max_idle_connections_per_gateway: 64,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum EdgeError {
    #[error("invalid edge configuration: {0}")]
    Config(String),
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    #[error(transparent)]
    Module(#[from] ModuleError),
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
    #[error("executor thread panicked")]
    ExecutorPanicked,
}
