//! The I/O shell: one monoio executor per core, each with its own SO_REUSEPORT listener, hyper's
//! HTTP/1.1 connection state machine over monoio's poll-io streams, and the request pipeline
//! (request id → route → authenticate → one `match` on the endpoint → one handler per family).
//!
//! Model: everything mutable is executor-local (`Rc<Executor>`: storage connections, the access
//! key cache, buffer pools, the request-id counter); the only shared state is read-only
//! configuration and the metadata client, whose futures are `Send` and run on its own threads.
//! Bodies stream in both directions: a PUT body is pulled frame by frame into the encoder, a GET
//! body is pushed stripe by stripe through a bounded channel, so an object never sits in memory.
//!
//! Invariants: every response carries `x-amz-request-id`; every error response is built by
//! [`crate::errors::error_response`]; every accepted socket has TCP_NODELAY; every request that
//! reaches [`handle`] is recorded in the executor's metrics exactly once, when its response body
//! ends or is dropped (`RequestRecord`).

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use cairn_ec::BufferPool;
use cairn_meta_state::{Command, CreateAccessKey, MetaError, Query, Response};
use cairn_raft::DetachedMetaClient;
use cairn_s3_proto::{Endpoint, RequestHead, Router, S3Error};
use http_body_util::BodyExt;
use http_body_util::combinators::UnsyncBoxBody;
use hyper::body::Incoming;
use monoio_compat::hyper::{MonoioIo, MonoioTimer};

use crate::auth::{AccessKeyCache, Caller};
use crate::config::GatewayConfig;
use crate::errors::{GatewayError, client_error_to_s3, error_response, meta_error_to_s3};
use crate::metrics::{ExecutorMetrics, MetricsRegistry, UNROUTED_OPERATION};
use crate::request_id::RequestIdGenerator;
use crate::storage::StoragePool;

/// Response bodies: a whole small document or a stream of stripes.
pub type ResponseBody = UnsyncBoxBody<Bytes, std::io::Error>;
pub type HttpResponse = http::Response<ResponseBody>;

/// Read-only state shared by every executor.
pub struct Shared {
    pub config: GatewayConfig,
    pub meta: DetachedMetaClient,
    pub router: Router,
    /// Zone of each configured storage node, by position (placement input).
    pub zones: Vec<String>,
    /// Position of each node id in `config.storage_nodes`.
    pub node_positions: BTreeMap<u64, usize>,
    /// Every executor's counters, merged when the admin listener is scraped.
    pub metrics: MetricsRegistry,
    /// What the node registry says of the storage nodes, refreshed by [`refresh_node_status`].
    pub node_status: std::sync::RwLock<NodeAvailability>,
    /// Bad pieces met on reads, reported to the healer.
    pub suspects: Arc<crate::suspects::SuspectReporter>,
    /// Per-bucket quota admission (see [`crate::quota`]).
    pub quotas: Arc<crate::quota::QuotaTracker>,
    /// Every executor's open connections, and the hand-offs that even them out (see
    /// [`crate::balance`]).
    pub connections: crate::balance::ConnectionBalance,
}

/// Storage nodes (by position in the configuration) the registry takes out of service: DOWN
/// nodes are neither written to nor read from (their pieces are decoded around at once), full
/// ones are not written to. Nodes that never registered (a deployment without heartbeats) stay
/// in service: the registry only ever takes nodes away.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NodeAvailability {
    pub down: BTreeSet<usize>,
    pub full: BTreeSet<usize>,
    /// Free bytes each registered node last reported (capacity − used): placement draws nodes
    /// in proportion to it. Empty without heartbeats.
    pub free_bytes: BTreeMap<usize, u64>,
}

impl NodeAvailability {
    /// A node is full when less than this share of its capacity is free...
    pub const FULL_FREE_RATIO: f64 = 0.02;
    /// ...and less than this many bytes (a large disk keeps taking writes until its last GiB).
    pub const FULL_FREE_BYTES: u64 = 1 << 30;

    pub fn from_records(
        records: &[cairn_meta_state::NodeRecord],
        node_positions: &BTreeMap<u64, usize>,
    ) -> NodeAvailability {
        let mut availability = NodeAvailability::default();
        for record in records {
            let Some(&position) = node_positions.get(&record.node_id.0) else {
                continue;
            };
            if record.status == cairn_meta_state::NodeStatus::Down {
                availability.down.insert(position);
            }
            let free_bytes = record.capacity_bytes.saturating_sub(record.used_bytes);
            if record.capacity_bytes > 0 {
                availability.free_bytes.insert(position, free_bytes);
            }
            if record.capacity_bytes > 0
                && (free_bytes as f64) < record.capacity_bytes as f64 * Self::FULL_FREE_RATIO
                && free_bytes < Self::FULL_FREE_BYTES
            {
                availability.full.insert(position);
            }
        }
        availability
    }

    /// Placement weights by node position: the reported free bytes when every node has reported
    /// them, else `None` (placement then spreads by rotation alone: weighting some nodes by
    /// capacity and others not would compare unlike things).
    pub fn placement_weights(&self, node_count: usize) -> Option<Vec<u64>> {
        (0..node_count)
            .map(|position| self.free_bytes.get(&position).copied())
            .collect()
    }

    /// Nodes placement must skip.
    pub fn not_writable(&self) -> BTreeSet<usize> {
        self.down.union(&self.full).copied().collect()
    }
}

impl Shared {
    /// A copy of the registry's view (a handful of positions; cloned so no lock is held).
    pub fn node_availability(&self) -> NodeAvailability {
        self.node_status
            .read()
            .map(|status| status.clone())
            .unwrap_or_default()
    }
}

/// Polls the node registry every `interval` while the gateway lives (it holds only a weak
/// reference) and publishes what it says. A failed read keeps the previous set.
fn refresh_node_status(shared: std::sync::Weak<Shared>, interval: Duration) {
    while let Some(shared) = shared.upgrade() {
        let answer = futures::executor::block_on(shared.meta.read(Query::ListNodes));
        if let Ok(Ok(Response::Nodes(records))) = answer {
            let availability = NodeAvailability::from_records(&records, &shared.node_positions);
            if let Ok(mut current) = shared.node_status.write()
                && *current != availability
            {
                tracing::info!(down = ?availability.down, full = ?availability.full, "node registry changed");
                *current = availability;
            }
        }
        drop(shared);
        std::thread::sleep(interval);
    }
}

/// One executor's state.
pub struct Executor {
    pub shared: Arc<Shared>,
    pub storage: StoragePool,
    pub access_keys: AccessKeyCache,
    pub request_ids: RequestIdGenerator,
    /// This executor's counters (written only by this executor's thread).
    pub metrics: Arc<ExecutorMetrics>,
    piece_pools: RefCell<HashMap<usize, BufferPool>>,
    /// The ETag MD5 lanes of this executor's uploads (see [`crate::upload_md5`]).
    pub md5_lanes: Rc<RefCell<cairn_s3_proto::md5_lanes::Md5Lanes>>,
    /// This executor's own metadata client (see [`crate::meta_transport`]): the writes, reads
    /// and object listings of requests go through it, the rarer calls through [`Shared::meta`].
    pub meta: cairn_raft::MetaClient<crate::meta_transport::MonoioTransport>,
    /// This executor's position, its slot in [`Shared::connections`].
    index: usize,
}

/// Idle bytes an executor's pool of small pieces may keep (see [`Executor::piece_pool`]): 2 MiB
/// is 512 pieces of 4 KiB, enough for 85 concurrent 4+2 PUTs of small objects.
const IDLE_SMALL_PIECE_BYTES: usize = 2 * 1024 * 1024;

impl Executor {
    /// A buffer pool for pieces of this size, shared by this executor's requests. It keeps idle
    /// buffers for four stripes, or for small pieces (small objects, many in flight at once) up
    /// to [`IDLE_SMALL_PIECE_BYTES`]: a pool that runs dry allocates and zeroes a fresh buffer.
    pub fn piece_pool(&self, piece_size_bytes: usize, total_shards: usize) -> BufferPool {
        self.piece_pools
            .borrow_mut()
            .entry(piece_size_bytes)
            .or_insert_with(|| {
                let max_idle_buffers =
                    (total_shards * 4).max(IDLE_SMALL_PIECE_BYTES / piece_size_bytes.max(1));
                BufferPool::new(piece_size_bytes, max_idle_buffers)
            })
            .clone()
    }

    /// A metadata write; a refusal of the state machine becomes its S3 error.
    pub async fn meta_write(&self, command: Command) -> Result<Response, S3Error> {
        let output = self
            .meta
            .write(command)
            .await
            .map_err(|error| client_error_to_s3(&error))?;
        output.result.map_err(|error| meta_error_to_s3(&error))
    }

    /// A linearizable metadata read whose refusal is an S3 error (like [`Self::meta_write`]).
    pub async fn meta_query(&self, query: Query) -> Result<Response, S3Error> {
        self.meta_read(query)
            .await?
            .map_err(|error| meta_error_to_s3(&error))
    }

    /// A linearizable metadata read, with the refusal kept typed for callers that branch on it.
    pub async fn meta_read(&self, query: Query) -> Result<Result<Response, MetaError>, S3Error> {
        self.meta
            .read(query)
            .await
            .map_err(|error| client_error_to_s3(&error))
    }
}

pub fn now_unix_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_millis() as u64)
}

/// A running gateway: its address and executor threads.
pub struct GatewayHandle {
    local_address: SocketAddr,
    edge_address: Option<SocketAddr>,
    admin_address: Option<SocketAddr>,
    threads: Vec<std::thread::JoinHandle<Result<(), GatewayError>>>,
}

impl GatewayHandle {
    /// The address the executors listen on (the real port when the configured one was 0).
    pub fn local_address(&self) -> SocketAddr {
        self.local_address
    }

    /// The edge-facing mutual-TLS listener's address, when one was configured.
    pub fn edge_address(&self) -> Option<SocketAddr> {
        self.edge_address
    }

    /// The admin listener's address (`/metrics`), when one was configured.
    pub fn admin_address(&self) -> Option<SocketAddr> {
        self.admin_address
    }

    /// Blocks until every executor stops (they run until the process ends or one fails).
    pub fn wait(self) -> Result<(), GatewayError> {
        let mut outcome = Ok(());
        for thread in self.threads {
            let result = thread.join().unwrap_or(Err(GatewayError::ExecutorPanicked));
            if outcome.is_ok() {
                outcome = result;
            }
        }
        outcome
    }
}

fn validate(config: &GatewayConfig) -> Result<(), GatewayError> {
    if config.edge_listen.is_some() && config.edge_tls.is_none() {
        return Err(GatewayError::Config(
            "the edge listener needs the gateway's cluster identity (mutual TLS)".to_owned(),
        ));
    }
    let scheme: cairn_ec::Scheme = config
        .default_ec_scheme
        .parse()
        .map_err(|error| GatewayError::Config(format!("default_ec_scheme: {error}")))?;
    cairn_ec::StripeLayout::new(scheme, config.piece_size_bytes as usize)
        .map_err(|error| GatewayError::Config(format!("piece_size_bytes: {error}")))?;
    let zones: Vec<&str> = config
        .storage_nodes
        .iter()
        .map(|node| node.az.as_str())
        .collect();
    crate::placement::choose_nodes(
        &zones,
        scheme.total_shards(),
        scheme.parity_shards(),
        0,
        &Default::default(),
        &[],
    )
    .map_err(|error| {
        GatewayError::Config(format!("storage nodes cannot hold {scheme}: {error}"))
    })?;
    let mut ids = std::collections::BTreeSet::new();
    for node in &config.storage_nodes {
        if node.node_id == 0 || !ids.insert(node.node_id) {
            return Err(GatewayError::Config(format!(
                "storage node ids must be non-zero and unique (node {})",
                node.node_id
            )));
        }
    }
    if config.region.is_empty() {
        return Err(GatewayError::Config("region is empty".to_owned()));
    }
    Ok(())
}

/// Registers the root access key; succeeds when it already exists with the same secret. Retries
/// while the metadata service is unavailable (it may still be electing leaders at `cairn dev`
/// start), for up to a minute.
fn register_root_key(shared: &Shared) -> Result<(), GatewayError> {
    let Some(root) = &shared.config.root_credentials else {
        return Ok(());
    };
    let ring = crate::master_key::current_ring(shared.config.master_key.as_ref());
    let master_key = ring.as_deref();
    let stored_secret =
        crate::users::stored_secret(master_key, &root.access_key_id, &root.secret_access_key)
            .map_err(|error| GatewayError::Config(format!("sealing the root secret: {error}")))?;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let command = Command::CreateAccessKey(CreateAccessKey {
            access_key_id: root.access_key_id.clone(),
            secret_access_key: stored_secret.clone(),
            owner: root.owner.clone(),
            now_ms: now_unix_millis(),
        });
        match futures::executor::block_on(shared.meta.write(command)) {
            Ok(output) => match output.result {
                Ok(_) => return Ok(()),
                Err(MetaError::AccessKeyAlreadyExists { .. }) => {
                    let query = Query::GetAccessKey {
                        access_key_id: root.access_key_id.clone(),
                    };
                    return match futures::executor::block_on(shared.meta.read(query)) {
                        Ok(Ok(Response::AccessKey(record))) => match cairn_sse::open_secret(
                            master_key,
                            &root.access_key_id,
                            &record.secret_access_key,
                        ) {
                            Ok(secret) if *secret == root.secret_access_key => Ok(()),
                            // Sealed by a master key this file lacks (a retired key removed
                            // before `cairn admin master-key rewrap`, or another cluster's).
                            Err(error @ cairn_sse::SseError::WrongMasterKey { .. }) => {
                                Err(GatewayError::Config(format!(
                                    "the root access key's stored secret: {error}"
                                )))
                            }
                            _ => Err(GatewayError::RootKeyConflict {
                                access_key_id: root.access_key_id.clone(),
                            }),
                        },
                        Ok(Ok(_)) => Err(GatewayError::RootKeyConflict {
                            access_key_id: root.access_key_id.clone(),
                        }),
                        Ok(Err(error)) => Err(GatewayError::Meta(error.to_string())),
                        Err(error) => Err(GatewayError::Meta(error.to_string())),
                    };
                }
                Err(error) => return Err(GatewayError::Meta(error.to_string())),
            },
            Err(error) if Instant::now() < deadline => {
                tracing::warn!(%error, "metadata service not ready; retrying root key registration");
                std::thread::sleep(Duration::from_millis(500));
            }
            Err(error) => return Err(GatewayError::Meta(error.to_string())),
        }
    }
}

/// Starts the executors and returns once every one of them listens.
pub fn start_gateway(config: GatewayConfig) -> Result<GatewayHandle, GatewayError> {
    validate(&config)?;
    let executor_count = config
        .executors
        .unwrap_or_else(|| {
            std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
        })
        .max(1);
    // Two threads keep metadata round trips of several executors from queueing behind each
    // other; the work per call is small (encode, send, decode).
    let meta = DetachedMetaClient::start(config.meta.clone(), executor_count.clamp(1, 2))?;
    let zones = config
        .storage_nodes
        .iter()
        .map(|node| node.az.clone())
        .collect();
    let node_positions = config
        .storage_nodes
        .iter()
        .enumerate()
        .map(|(position, node)| (node.node_id, position))
        .collect();
    let shared = Arc::new(Shared {
        router: Router::new(config.base_domains.iter().map(String::as_str)),
        config,
        meta,
        zones,
        node_positions,
        metrics: MetricsRegistry::default(),
        node_status: Default::default(),
        suspects: Default::default(),
        quotas: Default::default(),
        connections: crate::balance::ConnectionBalance::new(executor_count),
    });
    if shared.config.node_status_refresh_ms > 0 {
        let weak = Arc::downgrade(&shared);
        let interval = Duration::from_millis(shared.config.node_status_refresh_ms);
        std::thread::Builder::new()
            .name("cairn-gateway-nodes".into())
            .spawn(move || refresh_node_status(weak, interval))?;
    }
    register_root_key(&shared)?;
    let process_start_unix_millis = now_unix_millis();
    let mut threads = Vec::with_capacity(executor_count);
    let mut local_address = shared.config.listen;
    let mut edge_address = shared.config.edge_listen;
    for executor_index in 0..executor_count {
        let (ready_sender, ready_receiver) = std::sync::mpsc::channel();
        let shared = Arc::clone(&shared);
        let listen = Listeners {
            s3: local_address,
            edge: edge_address,
        };
        let thread = std::thread::Builder::new()
            .name(format!("cairn-gateway-{executor_index}"))
            .spawn(move || {
                run_executor(
                    shared,
                    executor_index,
                    listen,
                    process_start_unix_millis,
                    ready_sender,
                )
            })?;
        match ready_receiver.recv() {
            Ok(Ok(bound)) => {
                local_address = bound.s3;
                edge_address = bound.edge;
            }
            Ok(Err(error)) => return Err(GatewayError::Io(error)),
            Err(_) => {
                return Err(thread
                    .join()
                    .unwrap_or(Err(GatewayError::ExecutorPanicked))
                    .err()
                    .unwrap_or(GatewayError::ExecutorPanicked));
            }
        }
        threads.push(thread);
    }
    tracing::info!(address = %local_address, executors = executor_count, "gateway listening");
    if let Some(address) = edge_address {
        tracing::info!(address = %address, "edge listener (mutual TLS, edge identities only)");
    }
    let admin_address = match shared.config.admin_listen {
        Some(address) => {
            let (address, thread) = crate::admin::start_admin(Arc::clone(&shared), address)?;
            threads.push(thread);
            tracing::info!(address = %address, "admin listener (GET /metrics)");
            Some(address)
        }
        None => None,
    };
    Ok(GatewayHandle {
        local_address,
        edge_address,
        admin_address,
        threads,
    })
}

/// Starts the gateway and blocks until it stops (it runs until the process ends).
///
/// Call it (and [`start_gateway`]) from a plain thread, not from a tokio worker: start-up waits
/// for the metadata service synchronously while registering the root key.
pub fn run_gateway(config: GatewayConfig) -> Result<(), GatewayError> {
    start_gateway(config)?.wait()
}

/// The addresses an executor binds (and, once bound, their real ports).
#[derive(Clone, Copy)]
struct Listeners {
    s3: SocketAddr,
    edge: Option<SocketAddr>,
}

fn run_executor(
    shared: Arc<Shared>,
    executor_index: usize,
    listen: Listeners,
    process_start_unix_millis: u64,
    ready: std::sync::mpsc::Sender<std::io::Result<Listeners>>,
) -> Result<(), GatewayError> {
    let mut runtime = monoio::RuntimeBuilder::<monoio::FusionDriver>::new()
        .enable_timer()
        .build()?;
    runtime.block_on(async move {
        // SO_REUSEPORT (monoio's default listener option) lets every executor bind the same port.
        let bind = |address: SocketAddr| monoio::net::TcpListener::bind(address);
        let listeners = bind(listen.s3).and_then(|listener| {
            let edge = listen.edge.map(bind).transpose()?;
            Ok((listener, edge))
        });
        let (listener, edge_listener) = match listeners {
            Ok(listeners) => listeners,
            Err(error) => {
                let _ = ready.send(Err(std::io::Error::new(error.kind(), error.to_string())));
                return Err(GatewayError::Io(error));
            }
        };
        let local_address = listener.local_addr()?;
        let edge_address = edge_listener
            .as_ref()
            .map(monoio::net::TcpListener::local_addr)
            .transpose()?;
        let _ = ready.send(Ok(Listeners {
            s3: local_address,
            edge: edge_address,
        }));
        let executor = Rc::new(Executor {
            storage: StoragePool::new(
                shared
                    .config
                    .storage_nodes
                    .iter()
                    .map(|node| node.address)
                    .collect(),
                Duration::from_millis(shared.config.storage_timeout_ms),
                Duration::from_millis(shared.config.shard_read_timeout_ms),
            )
            .with_tls(
                shared
                    .config
                    .meta
                    .identity
                    .as_ref()
                    .map(|identity| identity.client_config()),
            ),
            access_keys: AccessKeyCache::new(Duration::from_millis(
                shared.config.access_key_cache_ttl_ms,
            )),
            request_ids: RequestIdGenerator::new(executor_index, process_start_unix_millis),
            metrics: shared.metrics.register_executor(),
            piece_pools: RefCell::new(HashMap::new()),
            md5_lanes: Rc::new(RefCell::new(
                cairn_s3_proto::md5_lanes::Md5Lanes::with_budget(
                    cairn_s3_proto::md5_lanes::DEFAULT_THRESHOLD_BYTES,
                    cairn_s3_proto::md5_lanes::DEFAULT_BUDGET_BYTES,
                ),
            )),
            index: executor_index,
            meta: cairn_raft::MetaClient::with_transport(shared.config.meta.clone()),
            shared,
        });
        if let Some(edge_listener) = edge_listener {
            monoio::spawn(accept_loop(Rc::clone(&executor), edge_listener, true));
        }
        let handoffs = executor.shared.connections.register(executor_index);
        monoio::spawn(handoff_loop(Rc::clone(&executor), handoffs));
        accept_loop(executor, listener, false).await;
        Ok(())
    })
}

/// The next connection of `listener`. A failed accept (EMFILE and friends) is logged and
/// retried after a short pause instead of spinning, so the listener keeps serving (the edge's
/// listeners use it too).
pub async fn accept_with_backoff(
    listener: &monoio::net::TcpListener,
) -> (monoio::net::TcpStream, std::net::SocketAddr) {
    loop {
        match listener.accept().await {
            Ok(accepted) => return accepted,
            Err(error) => {
                tracing::warn!(%error, "accept failed");
                monoio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// Accepts connections on one listener of this executor, forever. `edge`: the edge-facing
/// mutual-TLS listener. An S3 connection goes to another executor when that one serves fewer
/// (see [`crate::balance`]).
async fn accept_loop(executor: Rc<Executor>, listener: monoio::net::TcpListener, edge: bool) {
    let connections = &executor.shared.connections;
    loop {
        let (stream, peer) = accept_with_backoff(&listener).await;
        if connections.open(executor.index) >= executor.shared.config.max_connections_per_executor {
            // Dropping the stream closes it: a bounded executor beats one that runs out of
            // memory or descriptors for everyone.
            tracing::warn!("connection limit reached; closing a new connection");
            continue;
        }
        // Edge connections stay where they land: an edge keeps few, long, pooled connections.
        let target = if edge {
            None
        } else {
            connections.route(executor.index)
        };
        let stream = match target {
            None => stream,
            Some(target) => match hand_off(connections, target, stream, peer) {
                None => continue,
                Some(stream) => stream,
            },
        };
        connections.opened(executor.index);
        spawn_served(&executor, stream, peer, edge);
    }
}

/// Hands an accepted S3 connection to executor `target` (already counted there). Gives the
/// stream back when it cannot go (then served here).
fn hand_off(
    connections: &crate::balance::ConnectionBalance,
    target: usize,
    stream: monoio::net::TcpStream,
    peer: SocketAddr,
) -> Option<monoio::net::TcpStream> {
    use std::os::fd::{FromRawFd as _, IntoRawFd as _};
    // SAFETY: the descriptor comes out of the monoio stream, which gives up its ownership, and
    // goes straight into exactly one std stream.
    let stream = unsafe { std::net::TcpStream::from_raw_fd(stream.into_raw_fd()) };
    match connections.hand_off(target, crate::balance::Handoff { stream, peer }) {
        Ok(()) => None,
        Err(back) => match monoio::net::TcpStream::from_std(back.stream) {
            Ok(stream) => Some(stream),
            Err(error) => {
                tracing::warn!(%error, "a connection could not be handed back; closing it");
                None
            }
        },
    }
}

/// Serves the connections other executors hand to this one (counted here already).
async fn handoff_loop(
    executor: Rc<Executor>,
    mut handoffs: futures::channel::mpsc::UnboundedReceiver<crate::balance::Handoff>,
) {
    use futures::StreamExt as _;
    while let Some(handoff) = handoffs.next().await {
        match monoio::net::TcpStream::from_std(handoff.stream) {
            Ok(stream) => spawn_served(&executor, stream, handoff.peer, false),
            Err(error) => {
                executor.shared.connections.closed(executor.index);
                tracing::warn!(%error, "a handed-over connection could not be registered");
            }
        }
    }
}

/// Serves one counted connection on this executor; uncounts it at its end.
fn spawn_served(
    executor: &Rc<Executor>,
    stream: monoio::net::TcpStream,
    peer: SocketAddr,
    edge: bool,
) {
    let served = Rc::clone(executor);
    monoio::spawn(async move {
        if edge {
            serve_edge_connection(Rc::clone(&served), stream, peer).await;
        } else {
            serve_connection(Rc::clone(&served), stream, peer).await;
        }
        served.shared.connections.closed(served.index);
    });
}

/// An accepted stream with TCP_NODELAY, in the poll-based form hyper and rustls read.
fn poll_stream(
    stream: monoio::net::TcpStream,
) -> Option<monoio::net::tcp::stream_poll::TcpStreamPoll> {
    if let Err(error) = stream.set_nodelay(true) {
        tracing::debug!(%error, "TCP_NODELAY failed");
    }
    monoio::io::IntoPollIo::into_poll_io(stream)
        .inspect_err(|error| tracing::debug!(%error, "poll-io conversion failed"))
        .ok()
}

async fn serve_connection(
    executor: Rc<Executor>,
    stream: monoio::net::TcpStream,
    peer: SocketAddr,
) {
    let Some(stream) = poll_stream(stream) else {
        return;
    };
    match executor.shared.config.s3_tls.clone() {
        Some(tls) => {
            let acceptor = tokio_rustls::TlsAcceptor::from(tls);
            let stream = crate::read_ahead::ReadAhead::new(stream);
            match monoio::time::timeout(Duration::from_secs(10), acceptor.accept(stream)).await {
                Ok(Ok(stream)) => {
                    let stream = crate::read_ahead::ReadMany::new(stream);
                    serve_http(executor, stream, peer, None).await
                }
                Ok(Err(error)) => tracing::debug!(%error, %peer, "TLS handshake failed"),
                Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
            }
        }
        None => serve_http(executor, stream, peer, None).await,
    }
}

/// The header an edge names its client's address in; trusted on the edge listener only (and
/// stripped from requests on the public one), where it becomes `aws:SourceIp`.
pub const EDGE_CLIENT_IP_HEADER: &str = "x-cairn-edge-client-ip";

/// A connection on the edge listener: mutual TLS with an edge identity of the cluster CA, whose
/// certificate is checked against the CRL again before each request.
async fn serve_edge_connection(
    executor: Rc<Executor>,
    stream: monoio::net::TcpStream,
    peer: SocketAddr,
) {
    let Some(tls) = executor.shared.config.edge_tls.clone() else {
        return;
    };
    let Ok(local) = stream.local_addr() else {
        return;
    };
    let Some(stream) = poll_stream(stream) else {
        return;
    };
    let generation = tls.check.before_handshake();
    let acceptor = tokio_rustls::TlsAcceptor::from(tls.config_for(local, peer));
    let stream = crate::read_ahead::ReadAhead::new(stream);
    let stream = match monoio::time::timeout(Duration::from_secs(10), acceptor.accept(stream)).await
    {
        Ok(Ok(stream)) => stream,
        Ok(Err(error)) => {
            tracing::info!(%error, %peer, "edge listener: TLS handshake refused");
            return;
        }
        Err(_) => {
            tracing::info!(%peer, "edge listener: TLS handshake timed out");
            return;
        }
    };
    let Some(certificate) = tls
        .check
        .peer(generation, stream.get_ref().1.peer_certificates())
    else {
        return;
    };
    let switches = tls.switches(stream.get_ref().1.alpn_protocol());
    let edge = Rc::new(EdgePeer {
        check: tls.check,
        certificate: RefCell::new(certificate),
    });
    // An edge on this host continues in plaintext once authenticated (the handshake selected
    // it only when both ends are loopback; see `cairn_tls`).
    if switches {
        use tokio::io::AsyncWriteExt;
        let mut stream = stream;
        let acknowledged = async {
            stream.write_all(cairn_tls::LOOPBACK_PLAINTEXT_ACK).await?;
            stream.flush().await
        };
        if let Err(error) = acknowledged.await {
            tracing::info!(%error, %peer, "edge listener: the switch to plaintext failed");
            return;
        }
        let (stream, _) = stream.into_inner();
        let stream = crate::read_ahead::ReadMany::new(stream);
        serve_http(executor, stream, peer, Some(edge)).await;
        return;
    }
    let stream = crate::read_ahead::ReadMany::new(stream);
    serve_http(executor, stream, peer, Some(edge)).await;
}

/// The edge at the other end of an edge-listener connection.
struct EdgePeer {
    check: cairn_tls::PeerCheck,
    certificate: RefCell<cairn_tls::PeerCertificate>,
}

/// The connection ends (hyper closes it) when a service call fails.
#[derive(Debug, thiserror::Error)]
#[error("the edge's client certificate is no longer trusted")]
struct EdgeNoLongerTrusted;

/// HTTP/1.1 on an accepted (plain or TLS) stream; `edge`: the stream is an edge-listener
/// connection.
async fn serve_http<S>(
    executor: Rc<Executor>,
    stream: S,
    peer: SocketAddr,
    edge: Option<Rc<EdgePeer>>,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + 'static,
{
    let service = hyper::service::service_fn(move |mut request: http::Request<Incoming>| {
        let executor = Rc::clone(&executor);
        let client_ip = request.headers_mut().remove(EDGE_CLIENT_IP_HEADER);
        let verdict = match &edge {
            None => Ok(peer),
            Some(edge) => {
                if edge.check.still_trusted(&mut edge.certificate.borrow_mut()) {
                    // The edge names the address its client connected from.
                    let client = client_ip
                        .as_ref()
                        .and_then(|value| value.to_str().ok())
                        .and_then(|value| value.parse::<std::net::IpAddr>().ok())
                        .map_or(peer, |ip| SocketAddr::new(ip, 0));
                    Ok(client)
                } else {
                    tracing::info!(%peer, "closing an edge connection whose certificate is no longer trusted");
                    Err(EdgeNoLongerTrusted)
                }
            }
        };
        async move {
            let peer = verdict?;
            Ok::<_, EdgeNoLongerTrusted>(handle(executor, request, peer).await)
        }
    });
    let connection = hyper::server::conn::http1::Builder::new()
        .timer(MonoioTimer)
        .keep_alive(true)
        .header_read_timeout(Duration::from_secs(30))
        .serve_connection(MonoioIo::new(stream), service);
    if let Err(error) = connection.await {
        tracing::debug!(%error, "connection ended with an error");
    }
}

/// The parts of a request every handler may read.
pub struct RequestContext<'a> {
    pub executor: &'a Rc<Executor>,
    pub request_id: &'a str,
    pub caller: Caller,
    pub headers: &'a [(&'a str, &'a str)],
    pub is_head: bool,
    /// The request path, the `<Resource>` of an error document.
    pub resource: &'a str,
    /// How the body is protected (what is still to verify while reading it).
    pub payload: cairn_s3_proto::sigv4::PayloadMode,
    /// The IAM action bucket policies name this request by (`s3:GetObject`, …).
    pub action: &'static str,
    /// The object key the request addresses, if any (the policy resource is `bucket/key`).
    pub object_key: Option<String>,
    /// The raw query (policy condition keys such as `s3:prefix` come from it).
    pub raw_query: &'a str,
    /// The client's address (`aws:SourceIp`).
    pub peer: SocketAddr,
    /// The region of the signature's credential scope (this gateway's for anonymous requests),
    /// checked against the addressed bucket's region by [`crate::region`].
    pub signing_region: String,
}

impl RequestContext<'_> {
    pub fn header(&self, lowercase_name: &str) -> Option<&str> {
        cairn_s3_proto::headers::header(self.headers, lowercase_name)
    }
}

/// One request's metrics and access-log record, from its head to the end of its response body.
///
/// Created when the request arrives (counted in flight from then on), handed to the response
/// body, and recorded exactly once: when the body's last frame is sent, or when it is dropped
/// (a HEAD or empty body, a client that went away mid-body, or a handler future dropped because
/// the connection died: then the status is 499, the code the client-closed case has elsewhere).
///
/// It must be `Send` (hyper's boxed body is), so it holds the executor's counters by `Arc` and
/// shares the received-bytes tally with the request body through an atomic; both are only ever
/// touched by this executor's thread, so the atomics are never contended.
struct RequestRecord {
    metrics: Arc<ExecutorMetrics>,
    request_id: String,
    operation: usize,
    status: u16,
    started: Instant,
    request_body_bytes: Arc<std::sync::atomic::AtomicU64>,
    response_body_bytes: u64,
    recorded: bool,
}

/// Status recorded for an exchange abandoned before a response was produced.
const CLIENT_CLOSED_REQUEST: u16 = 499;

impl RequestRecord {
    fn new(metrics: Arc<ExecutorMetrics>, request_id: String) -> Self {
        metrics.request_started();
        RequestRecord {
            metrics,
            request_id,
            operation: UNROUTED_OPERATION,
            status: CLIENT_CLOSED_REQUEST,
            started: Instant::now(),
            request_body_bytes: Arc::new(std::sync::atomic::AtomicU64::new(0)),
            response_body_bytes: 0,
            recorded: false,
        }
    }

    fn record(&mut self) {
        if std::mem::replace(&mut self.recorded, true) {
            return;
        }
        let latency_micros = self.started.elapsed().as_micros() as u64;
        let request_body_bytes = self
            .request_body_bytes
            .load(std::sync::atomic::Ordering::Relaxed);
        self.metrics.record_request(
            self.operation,
            self.status,
            latency_micros,
            request_body_bytes,
            self.response_body_bytes,
        );
        // Debug, not info: at info every request would take the process-wide stderr lock of the
        // log writer, a global lock on the request path. `CAIRN_LOG=cairn_gateway=debug` turns
        // the access log on.
        tracing::debug!(
            request_id = self.request_id,
            operation = crate::metrics::operation_label(self.operation),
            status = self.status,
            request_body_bytes,
            response_body_bytes = self.response_body_bytes,
            latency_us = latency_micros,
            "request"
        );
    }
}

impl Drop for RequestRecord {
    fn drop(&mut self) {
        self.record();
    }
}

/// A response body that counts the bytes it sends and records the request when it ends.
struct MeteredBody {
    inner: ResponseBody,
    record: RequestRecord,
}

impl http_body::Body for MeteredBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        context: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, std::io::Error>>> {
        use std::task::Poll;
        let this = self.get_mut();
        let polled = std::pin::Pin::new(&mut this.inner).poll_frame(context);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.record.response_body_bytes += data.len() as u64;
                }
                if this.inner.is_end_stream() {
                    this.record.record();
                }
            }
            Poll::Ready(Some(Err(_)) | None) => this.record.record(),
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

async fn handle(
    executor: Rc<Executor>,
    request: http::Request<Incoming>,
    peer: SocketAddr,
) -> HttpResponse {
    let request_id = executor.request_ids.next_id();
    let mut record = RequestRecord::new(Arc::clone(&executor.metrics), request_id.clone());
    let (parts, body) = request.into_parts();
    let is_head = parts.method == http::Method::HEAD;
    let resource = parts.uri.path().to_owned();
    // Non-UTF-8 header values cannot be part of a valid signature; they are left out.
    let headers: Vec<(&str, &str)> = parts
        .headers
        .iter()
        .filter_map(|(name, value)| Some((name.as_str(), value.to_str().ok()?)))
        .collect();
    let outcome = process(
        &executor,
        &parts,
        &headers,
        body,
        &request_id,
        peer,
        &mut record,
    )
    .await;
    let mut response = match outcome {
        Ok(response) => response,
        Err(error) => {
            if error.http_status() >= 500 {
                tracing::warn!(request_id, code = error.code(), %error, "request failed");
            }
            error_response(&error, &resource, &request_id, is_head)
        }
    };
    if let Ok(value) = http::HeaderValue::from_str(&request_id) {
        response.headers_mut().insert("x-amz-request-id", value);
    }
    if must_close_after_expect(&parts.headers, response.status()) {
        // The client got a final answer instead of `100 Continue` (hyper sends none for an empty
        // body, and an error answered before the body was read sends none either), so it did
        // not send the body. Two things then break a kept-alive connection: botocore (1.43)
        // keeps that answer's status line and applies it to the next response it reads there
        // (seen: a PUT of 1 byte after a PUT of 0 bytes hung until its read timeout), and hyper
        // would take the next request's bytes for the unsent body (seen: a GET after a 412 PUT
        // answered 400). Closing this one connection costs the client one reconnect.
        response.headers_mut().insert(
            http::header::CONNECTION,
            http::HeaderValue::from_static("close"),
        );
    }
    record.status = response.status().as_u16();
    // Headers are done here; a streamed body continues after this line, and the record goes
    // with it.
    let (response_parts, inner) = response.into_parts();
    http::Response::from_parts(response_parts, MeteredBody { inner, record }.boxed_unsync())
}

/// Whether a request with `Expect: 100-continue` must end its connection: when its body is
/// empty (`Content-Length: 0`), or when the answer is an error (it may have come before the body
/// was asked for). A success with a body has read the body, so the connection stays usable.
fn must_close_after_expect(headers: &http::HeaderMap, status: http::StatusCode) -> bool {
    let expects_continue = headers
        .get(http::header::EXPECT)
        .is_some_and(|value| value.as_bytes().eq_ignore_ascii_case(b"100-continue"));
    let empty_body = headers
        .get(http::header::CONTENT_LENGTH)
        .is_some_and(|value| value.as_bytes() == b"0");
    expects_continue && (empty_body || !status.is_success())
}

async fn process(
    executor: &Rc<Executor>,
    parts: &http::request::Parts,
    headers: &[(&str, &str)],
    body: Incoming,
    request_id: &str,
    peer: SocketAddr,
    record: &mut RequestRecord,
) -> Result<HttpResponse, S3Error> {
    let is_head = parts.method == http::Method::HEAD;
    let head = RequestHead {
        method: parts.method.as_str(),
        raw_path: parts.uri.path(),
        raw_query: parts.uri.query().unwrap_or(""),
        host: parts
            .headers
            .get(http::header::HOST)
            .and_then(|value| value.to_str().ok())
            .or_else(|| parts.uri.authority().map(|authority| authority.as_str())),
        copy_source: cairn_s3_proto::headers::header(headers, "x-amz-copy-source"),
        copy_source_range: cairn_s3_proto::headers::header(headers, "x-amz-copy-source-range"),
    };
    if head.raw_path.starts_with(crate::users::ADMIN_PATH_PREFIX) {
        return crate::users::handle_admin(executor, &head, headers).await;
    }
    let endpoint = executor.shared.router.parse(&head)?;
    record.operation = endpoint.operation_index();
    // The scope's region is checked against the bucket's region once the bucket is read
    // (crate::region); requests that address no existing bucket are checked here.
    let (caller, verified) =
        crate::auth::authenticate_in_scope(executor, &head, headers, now_unix_millis(), None)
            .await?;
    if endpoint.bucket().is_none() || matches!(endpoint, Endpoint::CreateBucket { .. }) {
        crate::region::check_signing_region(&verified.region, &executor.shared.config.region)?;
    }
    // Anonymous callers reach buckets only through bucket policies: the service-level
    // operations (ListBuckets, CreateBucket) need a user.
    if caller.is_anonymous()
        && matches!(
            endpoint,
            Endpoint::ListBuckets | Endpoint::CreateBucket { .. }
        )
    {
        return Err(S3Error::AccessDenied);
    }
    let context = RequestContext {
        executor,
        request_id,
        caller,
        headers,
        is_head,
        resource: parts.uri.path(),
        payload: verified.payload.clone(),
        action: endpoint.policy_action(),
        object_key: endpoint.key().map(str::to_owned),
        raw_query: head.raw_query,
        peer,
        signing_region: verified.region.clone(),
    };
    let body = crate::body::RequestBody::new(
        body,
        &verified,
        headers,
        Arc::clone(&record.request_body_bytes),
    )?;
    let cors_bucket = match &endpoint {
        Endpoint::PreflightCors { .. } => None,
        other => other.bucket().map(str::to_owned),
    };
    let mut response = dispatch(&context, endpoint, body).await?;
    if let Some(bucket) = cors_bucket
        && context.header("origin").is_some()
    {
        crate::cors::decorate(&context, &bucket, parts.method.as_str(), &mut response).await;
    }
    Ok(response)
}

/// The S3 surface: one arm per operation, each in its family's handler file.
async fn dispatch(
    context: &RequestContext<'_>,
    endpoint: Endpoint,
    body: crate::body::RequestBody,
) -> Result<HttpResponse, S3Error> {
    use crate::{acl, attributes, bucket, cors, list, multipart, object, policy, tagging};
    use crate::{bucket_encryption, object_lock};
    match endpoint {
        Endpoint::ListBuckets => bucket::list_buckets(context).await,
        Endpoint::CreateBucket { bucket } => bucket::create_bucket(context, &bucket, body).await,
        Endpoint::HeadBucket { bucket } => bucket::head_bucket(context, &bucket).await,
        Endpoint::DeleteBucket { bucket } => bucket::delete_bucket(context, &bucket).await,
        Endpoint::GetBucketLocation { bucket } => {
            bucket::get_bucket_location(context, &bucket).await
        }
        Endpoint::PutObject { bucket, key } => {
            object::put_object(context, &bucket, &key, body).await
        }
        Endpoint::GetObject {
            bucket,
            key,
            version_id,
            part_number,
            overrides,
        } => {
            object::get_object(
                context,
                &bucket,
                &key,
                version_id.as_deref(),
                part_number,
                Some(&overrides),
            )
            .await
        }
        Endpoint::HeadObject {
            bucket,
            key,
            version_id,
            part_number,
        } => {
            object::get_object(
                context,
                &bucket,
                &key,
                version_id.as_deref(),
                part_number,
                None,
            )
            .await
        }
        Endpoint::DeleteObject {
            bucket,
            key,
            version_id,
        } => object::delete_object(context, &bucket, &key, version_id.as_deref()).await,
        Endpoint::DeleteObjects { bucket } => object::delete_objects(context, &bucket, body).await,
        Endpoint::CopyObject {
            bucket,
            key,
            source,
        } => object::copy_object(context, &bucket, &key, &source).await,
        Endpoint::ListObjectsV2 { bucket, params } => {
            list::list_objects_v2(context, &bucket, params).await
        }
        Endpoint::ListObjectsV1 { bucket, params } => {
            list::list_objects_v1(context, &bucket, params).await
        }
        Endpoint::CreateMultipartUpload { bucket, key } => {
            multipart::create_multipart_upload(context, &bucket, &key).await
        }
        Endpoint::UploadPart {
            bucket,
            key,
            upload_id,
            part_number,
        } => multipart::upload_part(context, &bucket, &key, &upload_id, part_number, body).await,
        Endpoint::CompleteMultipartUpload {
            bucket,
            key,
            upload_id,
        } => multipart::complete_multipart_upload(context, &bucket, &key, &upload_id, body).await,
        Endpoint::AbortMultipartUpload {
            bucket,
            key,
            upload_id,
        } => multipart::abort_multipart_upload(context, &bucket, &key, &upload_id).await,
        Endpoint::ListParts {
            bucket,
            key,
            upload_id,
            max_parts,
            part_number_marker,
        } => {
            multipart::list_parts(
                context,
                &bucket,
                &key,
                &upload_id,
                max_parts,
                part_number_marker,
            )
            .await
        }
        Endpoint::ListMultipartUploads { bucket, params } => {
            multipart::list_multipart_uploads(context, &bucket, params).await
        }
        Endpoint::UploadPartCopy {
            bucket,
            key,
            upload_id,
            part_number,
            source,
            source_range,
        } => {
            multipart::upload_part_copy(
                context,
                &bucket,
                &key,
                &upload_id,
                part_number,
                &source,
                source_range,
            )
            .await
        }
        Endpoint::GetBucketVersioning { bucket } => {
            bucket::get_bucket_versioning(context, &bucket).await
        }
        Endpoint::PutBucketVersioning { bucket } => {
            bucket::put_bucket_versioning(context, &bucket, body).await
        }
        Endpoint::ListObjectVersions { bucket, params } => {
            list::list_object_versions(context, &bucket, params).await
        }
        Endpoint::NotImplemented { .. } => Err(S3Error::NotImplemented),
        Endpoint::GetObjectTagging {
            bucket,
            key,
            version_id,
        } => tagging::get_object_tagging(context, &bucket, &key, version_id.as_deref()).await,
        Endpoint::PutObjectTagging {
            bucket,
            key,
            version_id,
        } => tagging::put_object_tagging(context, &bucket, &key, version_id.as_deref(), body).await,
        Endpoint::DeleteObjectTagging {
            bucket,
            key,
            version_id,
        } => tagging::delete_object_tagging(context, &bucket, &key, version_id.as_deref()).await,
        Endpoint::GetBucketTagging { bucket } => {
            tagging::get_bucket_tagging(context, &bucket).await
        }
        Endpoint::PutBucketTagging { bucket } => {
            tagging::put_bucket_tagging(context, &bucket, body).await
        }
        Endpoint::DeleteBucketTagging { bucket } => {
            tagging::delete_bucket_tagging(context, &bucket).await
        }
        Endpoint::GetBucketPolicy { bucket } => policy::get_bucket_policy(context, &bucket).await,
        Endpoint::PutBucketPolicy { bucket } => {
            policy::put_bucket_policy(context, &bucket, body).await
        }
        Endpoint::DeleteBucketPolicy { bucket } => {
            policy::delete_bucket_policy(context, &bucket).await
        }
        Endpoint::GetBucketPolicyStatus { bucket } => {
            policy::get_bucket_policy_status(context, &bucket).await
        }
        Endpoint::GetBucketAcl { bucket } => acl::get_bucket_acl(context, &bucket).await,
        Endpoint::PutBucketAcl { bucket } => acl::put_bucket_acl(context, &bucket, body).await,
        Endpoint::GetObjectAcl {
            bucket,
            key,
            version_id,
        } => acl::get_object_acl(context, &bucket, &key, version_id.as_deref()).await,
        Endpoint::PutObjectAcl {
            bucket,
            key,
            version_id,
        } => acl::put_object_acl(context, &bucket, &key, version_id.as_deref(), body).await,
        Endpoint::GetPublicAccessBlock { bucket } => {
            acl::get_public_access_block(context, &bucket).await
        }
        Endpoint::PutPublicAccessBlock { bucket } => {
            acl::put_public_access_block(context, &bucket, body).await
        }
        Endpoint::DeletePublicAccessBlock { bucket } => {
            acl::delete_public_access_block(context, &bucket).await
        }
        Endpoint::GetBucketCors { bucket } => cors::get_bucket_cors(context, &bucket).await,
        Endpoint::PutBucketCors { bucket } => cors::put_bucket_cors(context, &bucket, body).await,
        Endpoint::DeleteBucketCors { bucket } => cors::delete_bucket_cors(context, &bucket).await,
        Endpoint::PreflightCors { bucket, .. } => cors::preflight(context, &bucket).await,
        Endpoint::GetBucketLifecycle { bucket } => {
            crate::lifecycle::get_bucket_lifecycle(context, &bucket).await
        }
        Endpoint::PutBucketLifecycle { bucket } => {
            crate::lifecycle::put_bucket_lifecycle(context, &bucket, body).await
        }
        Endpoint::DeleteBucketLifecycle { bucket } => {
            crate::lifecycle::delete_bucket_lifecycle(context, &bucket).await
        }
        Endpoint::GetBucketReplication { bucket } => {
            crate::replication::get_bucket_replication(context, &bucket).await
        }
        Endpoint::PutBucketReplication { bucket } => {
            crate::replication::put_bucket_replication(context, &bucket, body).await
        }
        Endpoint::DeleteBucketReplication { bucket } => {
            crate::replication::delete_bucket_replication(context, &bucket).await
        }
        Endpoint::GetObjectAttributes {
            bucket,
            key,
            version_id,
        } => attributes::get_object_attributes(context, &bucket, &key, version_id.as_deref()).await,
        Endpoint::GetObjectLockConfiguration { bucket } => {
            object_lock::get_object_lock_configuration(context, &bucket).await
        }
        Endpoint::PutObjectLockConfiguration { bucket } => {
            object_lock::put_object_lock_configuration(context, &bucket, body).await
        }
        Endpoint::GetObjectRetention {
            bucket,
            key,
            version_id,
        } => object_lock::get_object_retention(context, &bucket, &key, version_id.as_deref()).await,
        Endpoint::PutObjectRetention {
            bucket,
            key,
            version_id,
        } => {
            object_lock::put_object_retention(context, &bucket, &key, version_id.as_deref(), body)
                .await
        }
        Endpoint::GetObjectLegalHold {
            bucket,
            key,
            version_id,
        } => {
            object_lock::get_object_legal_hold(context, &bucket, &key, version_id.as_deref()).await
        }
        Endpoint::PutObjectLegalHold {
            bucket,
            key,
            version_id,
        } => {
            object_lock::put_object_legal_hold(context, &bucket, &key, version_id.as_deref(), body)
                .await
        }
        Endpoint::GetBucketEncryption { bucket } => {
            bucket_encryption::get_bucket_encryption(context, &bucket).await
        }
        Endpoint::PutBucketEncryption { bucket } => {
            bucket_encryption::put_bucket_encryption(context, &bucket, body).await
        }
        Endpoint::DeleteBucketEncryption { bucket } => {
            bucket_encryption::delete_bucket_encryption(context, &bucket).await
        }
        Endpoint::PostObject { bucket } => {
            crate::post_object::post_object(context, &bucket, body).await
        }
    }
}

/// A small complete response body.
pub fn full_body(bytes: impl Into<Bytes>) -> ResponseBody {
    http_body_util::Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed_unsync()
}

pub fn empty_body() -> ResponseBody {
    full_body(Bytes::new())
}

/// A 200 response with an XML document.
pub fn xml_response(document: String) -> HttpResponse {
    http::Response::builder()
        .status(http::StatusCode::OK)
        .header("content-type", "application/xml")
        .body(full_body(document))
        .expect("static headers are valid")
}

#[cfg(test)]
mod node_availability_tests {
    use super::*;
    use cairn_meta_state::{NodeId, NodeRecord, NodeStatus};

    fn record(
        node_id: u64,
        status: NodeStatus,
        capacity_bytes: u64,
        used_bytes: u64,
    ) -> NodeRecord {
        NodeRecord {
            node_id: NodeId(node_id),
            address: format!("127.0.0.1:{}", 7000 + node_id),
            availability_zone: "az1".into(),
            capacity_bytes,
            used_bytes,
            status,
            registered_at_ms: 1,
            last_heartbeat_ms: 1,
            record_version: 1,
        }
    }

    #[test]
    fn down_nodes_leave_reads_and_writes_full_nodes_only_writes() {
        let positions = BTreeMap::from([(11, 0), (12, 1), (13, 2), (14, 3)]);
        let records = [
            record(11, NodeStatus::Up, 1000, 10),
            record(12, NodeStatus::Down, 1000, 10),
            record(13, NodeStatus::Up, 1000, 990),
            // Unknown to this gateway's configuration: ignored.
            record(99, NodeStatus::Down, 1000, 0),
            // No capacity reported: never "full".
            record(14, NodeStatus::Up, 0, 5),
        ];
        let availability = NodeAvailability::from_records(&records, &positions);
        assert_eq!(availability.down, BTreeSet::from([1]));
        assert_eq!(availability.full, BTreeSet::from([2]));
        assert_eq!(availability.not_writable(), BTreeSet::from([1, 2]));
        // A node that never registered (position 3 has a record, but say 15 had none) stays in.
        assert!(!availability.not_writable().contains(&3));
    }

    #[test]
    fn a_large_disk_is_full_only_in_its_last_gib() {
        let positions = BTreeMap::from([(11, 0), (12, 1)]);
        let capacity = 250u64 << 30;
        let records = [
            // 1.5 % free but 3.75 GiB: still writable.
            record(11, NodeStatus::Up, capacity, capacity - (15 << 28)),
            // Under 1 GiB free: full.
            record(12, NodeStatus::Up, capacity, capacity - (1 << 29)),
        ];
        let availability = NodeAvailability::from_records(&records, &positions);
        assert_eq!(availability.full, BTreeSet::from([1]));
    }
}
