//! The I/O shell of the edge: executors, TLS accept, the request pipeline (authenticate → route →
//! cache or proxy), the upstream keep-alive pool and the admin listener.
//!
//! Model: shared read-only configuration plus three shared, internally locked structures (the
//! routing module slot, the hot-object cache, the bucket-region cache) and atomic counters;
//! everything else (upstream connections, the access-key cache, round-robin positions) is
//! executor-local. Bodies stream: a request body goes to the gateway frame by frame, a response
//! body comes back the same way, except a cacheable 200 small enough to cache, which is read
//! whole (at most `cache_max_object_bytes`) and then served.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use cairn_edge_routing::{
    BucketEntry, Decision, Forward, Policy, RegionEntry, RejectReason, RequestRecord,
};
use cairn_gateway::read_ahead::{ReadAhead, ReadMany};
use cairn_meta_state::{AccessKeyStatus, MetaError, Query, Response};
use cairn_raft::DetachedMetaClient;
use cairn_s3_proto::S3Error;
use cairn_s3_proto::sigv4::{Authentication, SignedRequest, VerifyConfig, verify_request};
use http::{HeaderMap, HeaderValue, Method, StatusCode};
use http_body::{Body, Frame};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use monoio_compat::hyper::{MonoioIo, MonoioTimer};

use crate::cache::{BucketRegionCache, CachedObject, HotObjectCache};
use crate::module::RoutingModule;
use crate::{EdgeConfig, EdgeError};

/// Response bodies (the same type as the gateway's, so its `error_response` serves the edge).
pub type ResponseBody = UnsyncBoxBody<Bytes, std::io::Error>;
pub type HttpResponse = http::Response<ResponseBody>;
/// Request bodies sent upstream.
type UpstreamBody = UnsyncBoxBody<Bytes, std::io::Error>;

/// The header telling clients (and tests) how the edge answered a GET: `hit` (from memory),
/// `revalidated` (memory, after a 304 from the origin), `miss` (from the origin, cached now or
/// not cacheable because of size) or `bypass` (not cacheable).
pub const CACHE_STATUS_HEADER: &str = "x-cairn-edge-cache";

/// Headers the routing module sees.
const ROUTING_HEADERS: [&str; 6] = [
    "range",
    "cache-control",
    "if-match",
    "if-none-match",
    "if-modified-since",
    "if-unmodified-since",
];

/// Hop-by-hop headers, never forwarded (`expect` too: the edge already answered 100-continue).
const HOP_BY_HOP: [&str; 8] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "expect",
];

/// Largest error body read to tell NoSuchBucket from other 404s.
const MAX_ERROR_BODY_BYTES: usize = 64 << 10;

#[derive(Default)]
struct Counters {
    requests: AtomicU64,
    cache_hits: AtomicU64,
    cache_revalidated: AtomicU64,
    cache_misses: AtomicU64,
    cache_bypass: AtomicU64,
    routing_failures: AtomicU64,
    upstream_errors: AtomicU64,
    bucket_lookups: AtomicU64,
    module_reloads: AtomicU64,
    /// Answers from a region saying the bucket is not (or no longer) there: 301 or NoSuchBucket.
    bucket_moved: AtomicU64,
}

struct Shared {
    config: EdgeConfig,
    module: RoutingModule,
    meta: DetachedMetaClient,
    hot: HotObjectCache,
    bucket_regions: BucketRegionCache,
    region_entries: Vec<RegionEntry>,
    counters: Counters,
}

struct Executor {
    shared: Arc<Shared>,
    pool: Arc<UpstreamPool>,
    access_keys: RefCell<HashMap<String, (Option<String>, Instant)>>,
    round_robin: Cell<usize>,
    request_counter: Cell<u64>,
    executor_index: usize,
}

pub struct EdgeHandle {
    local_address: SocketAddr,
    admin_address: Option<SocketAddr>,
    threads: Vec<std::thread::JoinHandle<Result<(), EdgeError>>>,
}

impl EdgeHandle {
    pub fn local_address(&self) -> SocketAddr {
        self.local_address
    }

    pub fn admin_address(&self) -> Option<SocketAddr> {
        self.admin_address
    }

    /// Blocks until an executor stops (they run until the process ends).
    pub fn wait(self) -> Result<(), EdgeError> {
        for thread in self.threads {
            thread.join().map_err(|_| EdgeError::ExecutorPanicked)??;
        }
        Ok(())
    }
}

pub fn run_edge(config: EdgeConfig) -> Result<(), EdgeError> {
    start_edge(config)?.wait()
}

/// Starts the executors (and the admin listener) and returns once they listen.
pub fn start_edge(config: EdgeConfig) -> Result<EdgeHandle, EdgeError> {
    if config.regions.is_empty() || config.regions.iter().any(|r| r.gateways.is_empty()) {
        return Err(EdgeError::Config(
            "every region needs at least one gateway, and there must be a region".into(),
        ));
    }
    let tls = crate::tls::server_config(&config.tls_cert_path, &config.tls_key_path)?;
    let module = RoutingModule::load(&config.module_path, config.module_limits)?;
    let executor_count = config
        .executors
        .unwrap_or_else(|| {
            std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
        })
        .max(1);
    let meta = DetachedMetaClient::start(config.meta.clone(), executor_count.clamp(1, 2))?;
    let region_entries = config
        .regions
        .iter()
        .map(|region| RegionEntry {
            name: region.name.clone(),
            endpoint: region
                .gateways
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(","),
        })
        .collect();
    let shared = Arc::new(Shared {
        hot: HotObjectCache::new(config.cache_capacity_bytes, config.cache_max_object_bytes),
        bucket_regions: BucketRegionCache::new(
            Duration::from_millis(config.bucket_cache_ttl_ms),
            config.bucket_regions.clone(),
        ),
        region_entries,
        module,
        meta,
        counters: Counters::default(),
        config,
    });
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    let mut threads = Vec::with_capacity(executor_count + 1);
    let mut local_address = shared.config.listen;
    for executor_index in 0..executor_count {
        let (ready_sender, ready_receiver) = std::sync::mpsc::channel();
        let shared = Arc::clone(&shared);
        let acceptor = acceptor.clone();
        let listen = local_address;
        let thread = std::thread::Builder::new()
            .name(format!("cairn-edge-{executor_index}"))
            .spawn(move || run_executor(shared, acceptor, executor_index, listen, ready_sender))?;
        match ready_receiver.recv() {
            Ok(Ok(address)) => local_address = address,
            Ok(Err(error)) => return Err(EdgeError::Io(error)),
            Err(_) => {
                return Err(thread
                    .join()
                    .unwrap_or(Err(EdgeError::ExecutorPanicked))
                    .err()
                    .unwrap_or(EdgeError::ExecutorPanicked));
            }
        }
        threads.push(thread);
    }
    tracing::info!(address = %local_address, executors = executor_count, "edge listening (TLS)");
    let admin_address = match shared.config.admin_listen {
        Some(address) => {
            let (ready_sender, ready_receiver) = std::sync::mpsc::channel();
            let shared = Arc::clone(&shared);
            let thread = std::thread::Builder::new()
                .name("cairn-edge-admin".into())
                .spawn(move || run_admin(shared, address, ready_sender))?;
            let address = ready_receiver
                .recv()
                .map_err(|_| EdgeError::ExecutorPanicked)??;
            threads.push(thread);
            tracing::info!(%address, "edge admin listener (GET /metrics, POST /module/reload)");
            Some(address)
        }
        None => None,
    };
    Ok(EdgeHandle {
        local_address,
        admin_address,
        threads,
    })
}

fn run_executor(
    shared: Arc<Shared>,
    acceptor: tokio_rustls::TlsAcceptor,
    executor_index: usize,
    listen: SocketAddr,
    ready: std::sync::mpsc::Sender<std::io::Result<SocketAddr>>,
) -> Result<(), EdgeError> {
    let mut runtime = monoio::RuntimeBuilder::<monoio::FusionDriver>::new()
        .enable_timer()
        .build()?;
    runtime.block_on(async move {
        let listener = match monoio::net::TcpListener::bind(listen) {
            Ok(listener) => listener,
            Err(error) => {
                let _ = ready.send(Err(std::io::Error::new(error.kind(), error.to_string())));
                return Err(EdgeError::Io(error));
            }
        };
        let _ = ready.send(listener.local_addr());
        let executor = Rc::new(Executor {
            pool: Arc::new(UpstreamPool {
                idle: std::sync::Mutex::new(HashMap::new()),
                max_idle_per_address: shared.config.max_idle_connections_per_gateway,
                tls: shared
                    .config
                    .meta
                    .identity
                    .as_ref()
                    .map(|identity| identity.client_config()),
            }),
            access_keys: RefCell::new(HashMap::new()),
            round_robin: Cell::new(executor_index),
            request_counter: Cell::new(0),
            executor_index,
            shared,
        });
        loop {
            let (stream, peer) = cairn_gateway::accept_with_backoff(&listener).await;
            let executor = Rc::clone(&executor);
            let acceptor = acceptor.clone();
            monoio::spawn(
                async move { serve_tls_connection(executor, acceptor, stream, peer).await },
            );
        }
    })
}

async fn serve_tls_connection(
    executor: Rc<Executor>,
    acceptor: tokio_rustls::TlsAcceptor,
    stream: monoio::net::TcpStream,
    peer: SocketAddr,
) {
    if let Err(error) = stream.set_nodelay(true) {
        tracing::debug!(%error, "TCP_NODELAY failed");
    }
    let stream = match monoio::io::IntoPollIo::into_poll_io(stream) {
        Ok(stream) => stream,
        Err(error) => {
            tracing::debug!(%error, "poll-io conversion failed");
            return;
        }
    };
    let stream = ReadAhead::new(stream);
    let handshake = monoio::time::timeout(Duration::from_secs(10), acceptor.accept(stream)).await;
    let stream = match handshake {
        Ok(Ok(stream)) => stream,
        Ok(Err(error)) => {
            tracing::debug!(%error, "TLS handshake failed");
            return;
        }
        Err(_) => {
            tracing::debug!("TLS handshake timed out");
            return;
        }
    };
    // The gateway takes the client's address (`aws:SourceIp`) from this header, from edges only;
    // whatever a client sent under that name is replaced.
    let client_ip = HeaderValue::from_str(&peer.ip().to_string()).ok();
    let service = hyper::service::service_fn(move |mut request: http::Request<Incoming>| {
        let executor = Rc::clone(&executor);
        match &client_ip {
            Some(value) => {
                request
                    .headers_mut()
                    .insert(cairn_gateway::EDGE_CLIENT_IP_HEADER, value.clone());
            }
            None => {
                request
                    .headers_mut()
                    .remove(cairn_gateway::EDGE_CLIENT_IP_HEADER);
            }
        }
        async move { Ok::<_, Infallible>(handle(executor, request).await) }
    });
    let connection = hyper::server::conn::http1::Builder::new()
        .timer(MonoioTimer)
        .keep_alive(true)
        .header_read_timeout(Duration::from_secs(30))
        .serve_connection(MonoioIo::new(ReadMany::new(stream)), service);
    if let Err(error) = connection.await {
        tracing::debug!(%error, "edge connection ended with an error");
    }
}

fn now_unix_seconds() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs() as i64)
}

fn io_error(error: impl std::fmt::Display) -> std::io::Error {
    std::io::Error::other(error.to_string())
}

fn full(bytes: Bytes) -> ResponseBody {
    Full::new(bytes)
        .map_err(|never| match never {})
        .boxed_unsync()
}

/// What one request is, once its head is read.
struct RequestFacts {
    request_id: String,
    method: Method,
    raw_path: String,
    raw_query: String,
    is_head: bool,
}

async fn handle(executor: Rc<Executor>, request: http::Request<Incoming>) -> HttpResponse {
    let shared = Arc::clone(&executor.shared);
    shared.counters.requests.fetch_add(1, Ordering::Relaxed);
    let counter = executor.request_counter.get() + 1;
    executor.request_counter.set(counter);
    let (parts, body) = request.into_parts();
    let facts = RequestFacts {
        request_id: format!("edge-{}-{counter:x}", executor.executor_index),
        method: parts.method.clone(),
        raw_path: parts.uri.path().to_owned(),
        raw_query: parts.uri.query().unwrap_or("").to_owned(),
        is_head: parts.method == Method::HEAD,
    };
    let error = |error: S3Error| {
        cairn_gateway::errors::error_response(
            &error,
            &facts.raw_path,
            &facts.request_id,
            facts.is_head,
        )
    };
    let (access_key_id, signing_region) =
        match authenticate(&executor, &facts, &parts.headers).await {
            Ok(verified) => verified,
            Err(refusal) => return error(refusal),
        };
    let forward = match decide(&executor, &facts, &parts.headers, &signing_region).await {
        Ok(forward) => forward,
        Err(refusal) => return error(refusal),
    };
    match proxy(&executor, &facts, parts, body, &forward, &access_key_id).await {
        Ok(response) => response,
        Err(refusal) => error(refusal),
    }
}

/// SigV4 at the edge: the same verifier and rules as the gateway (secrets from the metadata
/// service, anonymous requests refused). The payload itself is checked by the gateway, which
/// receives the request unchanged. Returns the caller's access key id and the region of the
/// signature's credential scope.
async fn authenticate(
    executor: &Executor,
    facts: &RequestFacts,
    headers: &HeaderMap,
) -> Result<(String, String), S3Error> {
    let header_pairs: Vec<(&str, &str)> = headers
        .iter()
        .filter_map(|(name, value)| Some((name.as_str(), value.to_str().ok()?)))
        .collect();
    let request = SignedRequest {
        method: facts.method.as_str(),
        raw_path: &facts.raw_path,
        raw_query: &facts.raw_query,
        headers: &header_pairs,
    };
    // Unsigned requests and other schemes claim no key: the verifier answers those (an
    // anonymous request is refused below, another scheme gets its precise error).
    let claimed = request.claimed_access_key_id()?;
    let secret = match &claimed {
        Some(access_key_id) => Some(
            access_key_secret(executor, access_key_id)
                .await?
                .ok_or(S3Error::InvalidAccessKeyId)?,
        ),
        None => None,
    };
    let secrets = |id: &str| {
        (claimed.as_deref() == Some(id))
            .then(|| secret.clone())
            .flatten()
    };
    // The region of the signature scope is the owning gateway's business (it checks it again).
    let config = VerifyConfig { region: None };
    match verify_request(&request, &secrets, &config, now_unix_seconds())? {
        Authentication::Anonymous => Err(S3Error::AccessDenied),
        Authentication::Verified(verified) => Ok((verified.access_key_id, verified.region)),
    }
}

/// An active key's secret, from the executor's cache (kept `access_key_cache_ttl_ms`, so a
/// revocation reaches the edge within that) or the metadata service.
async fn access_key_secret(
    executor: &Executor,
    access_key_id: &str,
) -> Result<Option<String>, S3Error> {
    let ttl = Duration::from_millis(executor.shared.config.access_key_cache_ttl_ms);
    if let Some((secret, fetched_at)) = executor.access_keys.borrow().get(access_key_id)
        && fetched_at.elapsed() < ttl
    {
        return Ok(secret.clone());
    }
    if access_key_id.is_empty() {
        return Ok(None);
    }
    let answer = executor
        .shared
        .meta
        .read(Query::GetAccessKey {
            access_key_id: access_key_id.to_owned(),
        })
        .await
        .map_err(|error| cairn_gateway::errors::client_error_to_s3(&error))?;
    let secret = match answer {
        Ok(Response::AccessKey(record)) if record.status == AccessKeyStatus::Active => {
            Some(cairn_gateway::open_stored_secret(
                cairn_gateway::master_key_ring(executor.shared.config.master_key.as_ref())
                    .as_deref(),
                access_key_id,
                &record.secret_access_key,
            )?)
        }
        Ok(_) | Err(MetaError::NoSuchAccessKey { .. }) => None,
        Err(error) => return Err(cairn_gateway::errors::meta_error_to_s3(&error)),
    };
    let mut cache = executor.access_keys.borrow_mut();
    if cache.len() >= 10_000 {
        cache.clear();
    }
    cache.insert(access_key_id.to_owned(), (secret.clone(), Instant::now()));
    Ok(secret)
}

/// The region of `bucket` (None: it does not exist), from the cache or the bucket service.
async fn bucket_region(executor: &Executor, bucket: &str) -> Result<Option<String>, S3Error> {
    let shared = &executor.shared;
    if let Some(known) = shared.bucket_regions.get(bucket, Instant::now()) {
        return Ok(known);
    }
    shared
        .counters
        .bucket_lookups
        .fetch_add(1, Ordering::Relaxed);
    let answer = shared
        .meta
        .read(Query::GetBucket {
            bucket: bucket.to_owned(),
        })
        .await
        .map_err(|error| cairn_gateway::errors::client_error_to_s3(&error))?;
    let region = match answer {
        Ok(Response::Bucket(record)) if record.primary_region.is_empty() => {
            Some(shared.config.default_region.clone())
        }
        Ok(Response::Bucket(record)) => Some(record.primary_region),
        Err(MetaError::NoSuchBucket { .. }) => None,
        Ok(other) => {
            tracing::warn!(?other, "unexpected answer to GetBucket");
            return Err(S3Error::InternalError);
        }
        Err(error) => return Err(cairn_gateway::errors::meta_error_to_s3(&error)),
    };
    shared
        .bucket_regions
        .insert(bucket, region.clone(), Instant::now());
    Ok(region)
}

fn reject_to_s3(reason: RejectReason, message: &str) -> S3Error {
    match reason {
        RejectReason::InvalidBucketName => S3Error::InvalidBucketName,
        RejectReason::MethodNotAllowed => S3Error::MethodNotAllowed,
        RejectReason::InvalidUri => S3Error::InvalidUri,
        RejectReason::RegionUnavailable => {
            tracing::warn!(%message, "routing: no region for the request");
            S3Error::ServiceUnavailable
        }
        RejectReason::MalformedRecord => {
            tracing::warn!(%message, "routing module could not read the request record");
            S3Error::InternalError
        }
    }
}

/// Asks the routing module, looking a bucket up when it asks for one. The client's region hint
/// is `x-cairn-region-hint`, else the region the request is signed for: a request for a bucket
/// that does not exist yet (CreateBucket) goes to the region the client signed it for, which is
/// the only region whose gateway accepts that signature.
async fn decide(
    executor: &Executor,
    facts: &RequestFacts,
    headers: &HeaderMap,
    signing_region: &str,
) -> Result<Forward, S3Error> {
    let shared = &executor.shared;
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|value| value.to_str().ok())
            .unwrap_or("")
            .to_owned()
    };
    let mut record = RequestRecord {
        method: facts.method.as_str().to_owned(),
        host: header("host"),
        path: facts.raw_path.clone(),
        query: facts.raw_query.clone(),
        client_region_hint: Some(header("x-cairn-region-hint"))
            .filter(|hint| !hint.is_empty())
            .unwrap_or_else(|| signing_region.to_owned()),
        headers: ROUTING_HEADERS
            .iter()
            .filter_map(|name| {
                let value = headers.get(*name)?.to_str().ok()?;
                Some(((*name).to_owned(), value.to_owned()))
            })
            .collect(),
        policy: Policy {
            virtual_host_suffixes: shared.config.virtual_host_suffixes.clone(),
            default_region: shared.config.default_region.clone(),
            cache_ttl_ms: shared.config.cache_ttl_ms,
        },
        regions: shared.region_entries.clone(),
        buckets: Vec::new(),
    };
    for _ in 0..2 {
        let decision = shared.module.route(&record).map_err(|error| {
            shared
                .counters
                .routing_failures
                .fetch_add(1, Ordering::Relaxed);
            tracing::warn!(%error, request_id = %facts.request_id, "routing module failed");
            S3Error::InternalError
        })?;
        match decision {
            Decision::Forward(forward) => return Ok(forward),
            Decision::Reject(reject) => return Err(reject_to_s3(reject.reason, &reject.message)),
            Decision::NeedBucketRegion { bucket } => {
                if record.buckets.iter().any(|entry| entry.bucket == bucket) {
                    break;
                }
                let region = bucket_region(executor, &bucket).await?;
                record.buckets.push(BucketEntry { bucket, region });
            }
        }
    }
    shared
        .counters
        .routing_failures
        .fetch_add(1, Ordering::Relaxed);
    tracing::warn!(request_id = %facts.request_id, "routing module asked twice for a bucket region");
    Err(S3Error::InternalError)
}

fn gateway_for(executor: &Executor, region: &str) -> Result<SocketAddr, S3Error> {
    let region = executor
        .shared
        .config
        .regions
        .iter()
        .find(|candidate| candidate.name == region)
        .ok_or(S3Error::ServiceUnavailable)?;
    let position = executor.round_robin.get();
    executor.round_robin.set(position.wrapping_add(1));
    Ok(region.gateways[position % region.gateways.len()])
}

/// The upstream request: the client's, unchanged but for hop-by-hop headers.
fn upstream_request(
    method: &Method,
    uri: &http::Uri,
    headers: &HeaderMap,
    body: UpstreamBody,
    if_none_match: Option<&str>,
) -> Result<http::Request<UpstreamBody>, S3Error> {
    let path_and_query = uri
        .path_and_query()
        .map_or("/", |path_and_query| path_and_query.as_str());
    let mut request = http::Request::builder()
        .method(method.clone())
        .uri(path_and_query)
        .body(body)
        .map_err(|_| S3Error::InvalidUri)?;
    let upstream_headers = request.headers_mut();
    for (name, value) in headers {
        if !HOP_BY_HOP.contains(&name.as_str()) {
            upstream_headers.append(name.clone(), value.clone());
        }
    }
    if let Some(etag) = if_none_match
        && let Ok(value) = HeaderValue::from_str(etag)
    {
        upstream_headers.insert(http::header::IF_NONE_MATCH, value);
    }
    Ok(request)
}

fn response_head(
    status: StatusCode,
    headers: &HeaderMap,
    cache_status: &str,
) -> http::response::Builder {
    let mut builder = http::Response::builder().status(status);
    for (name, value) in headers {
        if !HOP_BY_HOP.contains(&name.as_str()) {
            builder = builder.header(name, value);
        }
    }
    builder.header(CACHE_STATUS_HEADER, cache_status)
}

fn cached_response(
    object: &CachedObject,
    facts: &RequestFacts,
    cache_status: &str,
) -> HttpResponse {
    let is_head = facts.is_head;
    let mut builder = http::Response::builder()
        .status(StatusCode::OK)
        .header("x-amz-request-id", &facts.request_id);
    for (name, value) in &object.headers {
        builder = builder.header(name, value);
    }
    builder = builder.header(CACHE_STATUS_HEADER, cache_status);
    let body = if is_head {
        Bytes::new()
    } else {
        object.body.clone()
    };
    builder
        .body(full(body))
        .unwrap_or_else(|_| http::Response::new(full(Bytes::new())))
}

async fn proxy(
    executor: &Rc<Executor>,
    facts: &RequestFacts,
    parts: http::request::Parts,
    body: Incoming,
    forward: &Forward,
    access_key_id: &str,
) -> Result<HttpResponse, S3Error> {
    let shared = &executor.shared;
    let is_read = matches!(facts.method, Method::GET | Method::HEAD);
    let bucket = forward.bucket.as_deref();
    // A write through the edge drops what it may change, before and after it reaches the origin.
    let invalidate = || {
        if let (false, Some(bucket)) = (is_read, bucket) {
            if forward.key.is_empty() {
                shared.hot.remove_bucket(bucket);
                shared.bucket_regions.invalidate(bucket);
            } else {
                shared.hot.remove(bucket, &forward.key);
            }
        }
    };
    invalidate();
    let ttl = Duration::from_millis(u64::from(forward.cache_ttl_ms));
    let cached = match (forward.cacheable, bucket) {
        (true, Some(bucket)) => {
            shared
                .hot
                .lookup(bucket, &forward.key, access_key_id, ttl, Instant::now())
        }
        _ => None,
    };
    if let Some(lookup) = &cached
        && lookup.fresh_for_caller
    {
        shared.counters.cache_hits.fetch_add(1, Ordering::Relaxed);
        return Ok(cached_response(&lookup.object, facts, "hit"));
    }
    let if_none_match = cached.as_ref().map(|lookup| lookup.object.etag.as_str());
    let request_has_body = !body.is_end_stream();
    let client_body: UpstreamBody = body.map_err(io_error).boxed_unsync();
    let request = upstream_request(
        &parts.method,
        &parts.uri,
        &parts.headers,
        client_body,
        if_none_match,
    )?;
    let mut response = send_upstream(executor, &forward.region, request).await?;

    // The bucket moved or vanished: forget its region; a body-less request is retried once with
    // a fresh lookup (a body already streamed cannot be replayed).
    if let Some(bucket) = bucket
        && bucket_moved(&mut response).await
    {
        shared.counters.bucket_moved.fetch_add(1, Ordering::Relaxed);
        shared.bucket_regions.invalidate(bucket);
        shared.hot.remove_bucket(bucket);
        if !request_has_body {
            let fresh = bucket_region(executor, bucket).await?;
            let region = fresh.unwrap_or_else(|| shared.config.default_region.clone());
            if region != forward.region {
                let empty = Full::new(Bytes::new())
                    .map_err(|never| match never {})
                    .boxed_unsync();
                let request =
                    upstream_request(&parts.method, &parts.uri, &parts.headers, empty, None)?;
                response = send_upstream(executor, &region, request).await?;
                return Ok(stream_back(response, "bypass"));
            }
        }
    }
    if !is_read {
        invalidate();
    }
    let (Some(bucket), true) = (bucket, forward.cacheable) else {
        if facts.method == Method::GET {
            shared.counters.cache_bypass.fetch_add(1, Ordering::Relaxed);
        }
        return Ok(stream_back(response, "bypass"));
    };
    match (response.status(), cached) {
        (StatusCode::NOT_MODIFIED, Some(lookup)) => {
            drain(response.into_body()).await;
            shared.hot.revalidated(
                bucket,
                &forward.key,
                &lookup.object.etag,
                access_key_id,
                Instant::now(),
            );
            shared
                .counters
                .cache_revalidated
                .fetch_add(1, Ordering::Relaxed);
            Ok(cached_response(&lookup.object, facts, "revalidated"))
        }
        (StatusCode::OK, _) => {
            shared.counters.cache_misses.fetch_add(1, Ordering::Relaxed);
            fill_cache(executor, bucket, &forward.key, response, access_key_id).await
        }
        (_, cached) => {
            if cached.is_some() {
                shared.hot.remove(bucket, &forward.key);
            }
            shared.counters.cache_misses.fetch_add(1, Ordering::Relaxed);
            Ok(stream_back(response, "miss"))
        }
    }
}

/// A 301 or a 404 NoSuchBucket from the region (the 404's small body is read and put back).
async fn bucket_moved(response: &mut http::Response<UpstreamResponseBody>) -> bool {
    match response.status() {
        StatusCode::MOVED_PERMANENTLY => true,
        StatusCode::NOT_FOUND => {
            let body = std::mem::replace(response.body_mut(), UpstreamResponseBody::empty());
            let bytes = collect_limited(body, MAX_ERROR_BODY_BYTES)
                .await
                .unwrap_or_default();
            let moved = bytes
                .windows(b"<Code>NoSuchBucket</Code>".len())
                .any(|window| window == b"<Code>NoSuchBucket</Code>");
            *response.body_mut() = UpstreamResponseBody::buffered(bytes);
            moved
        }
        _ => false,
    }
}

fn stream_back(response: http::Response<UpstreamResponseBody>, cache_status: &str) -> HttpResponse {
    let (parts, body) = response.into_parts();
    response_head(parts.status, &parts.headers, cache_status)
        .body(body.boxed_unsync())
        .unwrap_or_else(|_| http::Response::new(full(Bytes::new())))
}

/// Serves a 200 and keeps it when it is small enough and has an ETag.
async fn fill_cache(
    executor: &Executor,
    bucket: &str,
    key: &str,
    response: http::Response<UpstreamResponseBody>,
    access_key_id: &str,
) -> Result<HttpResponse, S3Error> {
    let shared = &executor.shared;
    let length = response
        .headers()
        .get(http::header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok()?.parse::<usize>().ok());
    let etag = response
        .headers()
        .get(http::header::ETAG)
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    let (Some(length), Some(etag)) = (length, etag) else {
        return Ok(stream_back(response, "miss"));
    };
    if length > shared.hot.max_object_bytes() {
        return Ok(stream_back(response, "miss"));
    }
    let (parts, body) = response.into_parts();
    let bytes = collect_limited(body, length).await.map_err(|error| {
        shared
            .counters
            .upstream_errors
            .fetch_add(1, Ordering::Relaxed);
        tracing::warn!(%error, "reading an origin body failed");
        S3Error::InternalError
    })?;
    let headers: Vec<(String, String)> = parts
        .headers
        .iter()
        .filter(|(name, _)| {
            // The request id and date are per response: a cached answer gets its own.
            !HOP_BY_HOP.contains(&name.as_str())
                && !matches!(name.as_str(), "x-amz-request-id" | "x-amz-id-2" | "date")
        })
        .filter_map(|(name, value)| {
            Some((name.as_str().to_owned(), value.to_str().ok()?.to_owned()))
        })
        .collect();
    let object = CachedObject {
        etag,
        headers,
        body: bytes,
    };
    let response = {
        response_head(parts.status, &parts.headers, "miss")
            .body(full(object.body.clone()))
            .unwrap_or_else(|_| http::Response::new(full(Bytes::new())))
    };
    shared
        .hot
        .insert(bucket, key, object, access_key_id, Instant::now());
    Ok(response)
}

async fn collect_limited(
    body: UpstreamResponseBody,
    limit: usize,
) -> Result<Bytes, std::io::Error> {
    let mut collected = Vec::new();
    let mut body = std::pin::pin!(body);
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame?.into_data() {
            if collected.len() + data.len() > limit {
                return Err(io_error("origin body longer than announced"));
            }
            collected.extend_from_slice(&data);
        }
    }
    Ok(Bytes::from(collected))
}

async fn drain(body: UpstreamResponseBody) {
    let mut body = std::pin::pin!(body);
    while let Some(Ok(_)) = body.frame().await {}
}

async fn send_upstream(
    executor: &Rc<Executor>,
    region: &str,
    request: http::Request<UpstreamBody>,
) -> Result<http::Response<UpstreamResponseBody>, S3Error> {
    let address = gateway_for(executor, region)?;
    executor.pool.send(address, request).await.map_err(|error| {
        executor
            .shared
            .counters
            .upstream_errors
            .fetch_add(1, Ordering::Relaxed);
        tracing::warn!(%error, %address, "gateway request failed");
        S3Error::ServiceUnavailable
    })
}

/// Keep-alive HTTP/1.1 connections to gateways, per executor. (Behind a mutex only because
/// response bodies, which return connections, must be `Send`; it is never contended.)
///
/// With the edge's cluster identity, connections are mutual TLS to the gateways' edge listeners
/// (the gateway must present a gateway certificate of the cluster CA); without one (only behind
/// `--insecure-plaintext-internal`) they are plain HTTP.
struct UpstreamPool {
    idle: std::sync::Mutex<HashMap<SocketAddr, Vec<SendRequest<UpstreamBody>>>>,
    max_idle_per_address: usize,
    /// The edge's client configuration, offering the loopback switch (see `dial`).
    tls: Option<Arc<cairn_tls::rustls::ClientConfig>>,
}

impl UpstreamPool {
    fn put_back(&self, address: SocketAddr, sender: SendRequest<UpstreamBody>) {
        if sender.is_closed() {
            return;
        }
        let mut idle = self
            .idle
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        let senders = idle.entry(address).or_default();
        if senders.len() < self.max_idle_per_address {
            senders.push(sender);
        }
    }

    /// A ready idle connection, if any.
    async fn take_idle(&self, address: SocketAddr) -> Option<SendRequest<UpstreamBody>> {
        loop {
            let popped = self
                .idle
                .lock()
                .unwrap_or_else(|poison| poison.into_inner())
                .get_mut(&address)
                .and_then(Vec::pop);
            let mut sender = popped?;
            if sender.is_closed() {
                continue;
            }
            // Put back after its response body ended, a connection is ready at once or very soon.
            match monoio::time::timeout(Duration::from_secs(1), sender.ready()).await {
                Ok(Ok(())) => return Some(sender),
                _ => continue,
            }
        }
    }

    async fn dial(&self, address: SocketAddr) -> Result<SendRequest<UpstreamBody>, std::io::Error> {
        let stream = monoio::time::timeout(
            Duration::from_secs(5),
            monoio::net::TcpStream::connect(address),
        )
        .await
        .map_err(|_| io_error("connect timed out"))??;
        stream.set_nodelay(true)?;
        let (local, peer) = (stream.local_addr()?, stream.peer_addr()?);
        let stream = monoio::io::IntoPollIo::into_poll_io(stream)?;
        let Some(config) = &self.tls else {
            return Self::handshake(stream).await;
        };
        let stream = ReadAhead::new(stream);
        // A gateway on this host continues in plaintext once authenticated (see `cairn_tls`).
        let dialled = monoio::time::timeout(
            Duration::from_secs(10),
            cairn_tls::tokio_dial::handshake(stream, local, peer, config, cairn_tls::Role::Gateway),
        )
        .await
        .map_err(|_| io_error("TLS handshake with the gateway timed out"))??;
        match dialled {
            cairn_tls::tokio_dial::Dialled::Plain(io) => Self::handshake(ReadMany::new(io)).await,
            cairn_tls::tokio_dial::Dialled::Tls(stream) => {
                Self::handshake(ReadMany::new(*stream)).await
            }
        }
    }

    async fn handshake<S>(stream: S) -> Result<SendRequest<UpstreamBody>, std::io::Error>
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + 'static,
    {
        let (sender, connection) = hyper::client::conn::http1::handshake(MonoioIo::new(stream))
            .await
            .map_err(io_error)?;
        monoio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%error, "gateway connection ended with an error");
            }
        });
        Ok(sender)
    }

    async fn send(
        self: &Arc<Self>,
        address: SocketAddr,
        mut request: http::Request<UpstreamBody>,
    ) -> Result<http::Response<UpstreamResponseBody>, std::io::Error> {
        // An idle connection may have been closed by the gateway in the meantime; hyper hands
        // the request back when it was not sent, and it goes out on a fresh connection then.
        while let Some(mut sender) = self.take_idle(address).await {
            match sender.try_send_request(request).await {
                Ok(response) => return Ok(self.wrap(address, sender, response)),
                Err(mut error) => match error.take_message() {
                    Some(returned) => request = returned,
                    None => return Err(io_error(error.into_error())),
                },
            }
        }
        let mut sender = self.dial(address).await?;
        let response = sender.send_request(request).await.map_err(io_error)?;
        Ok(self.wrap(address, sender, response))
    }

    fn wrap(
        self: &Arc<Self>,
        address: SocketAddr,
        sender: SendRequest<UpstreamBody>,
        response: http::Response<Incoming>,
    ) -> http::Response<UpstreamResponseBody> {
        let (parts, body) = response.into_parts();
        let mut wrapped = UpstreamResponseBody {
            inner: Some(body),
            buffered: None,
            release: Some((Arc::clone(self), address, sender)),
        };
        if wrapped.inner.as_ref().is_some_and(Body::is_end_stream) {
            wrapped.release();
        }
        http::Response::from_parts(parts, wrapped)
    }
}

/// A gateway's response body; the connection goes back to the pool when the body ends.
struct UpstreamResponseBody {
    inner: Option<Incoming>,
    buffered: Option<Bytes>,
    release: Option<(Arc<UpstreamPool>, SocketAddr, SendRequest<UpstreamBody>)>,
}

impl UpstreamResponseBody {
    fn empty() -> Self {
        UpstreamResponseBody {
            inner: None,
            buffered: None,
            release: None,
        }
    }

    fn buffered(bytes: Bytes) -> Self {
        UpstreamResponseBody {
            inner: None,
            buffered: Some(bytes),
            release: None,
        }
    }

    fn release(&mut self) {
        if let Some((pool, address, sender)) = self.release.take() {
            pool.put_back(address, sender);
        }
    }
}

impl Drop for UpstreamResponseBody {
    /// A body dropped once it was read to its end still returns its connection.
    fn drop(&mut self) {
        if self.inner.as_ref().is_none_or(Body::is_end_stream) {
            self.release();
        }
    }
}

impl Body for UpstreamResponseBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        context: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        let this = &mut *self;
        if let Some(bytes) = this.buffered.take() {
            return Poll::Ready(Some(Ok(Frame::data(bytes))));
        }
        let Some(inner) = this.inner.as_mut() else {
            return Poll::Ready(None);
        };
        match Pin::new(&mut *inner).poll_frame(context) {
            Poll::Ready(None) => {
                this.inner = None;
                this.release();
                Poll::Ready(None)
            }
            Poll::Ready(Some(Err(error))) => {
                // The connection is broken: never reuse it.
                this.inner = None;
                this.release = None;
                Poll::Ready(Some(Err(io_error(error))))
            }
            Poll::Ready(Some(Ok(frame))) => {
                // A body of known length ends with its last byte: hyper's server stops polling
                // there, so the connection goes back to the pool now, not at a final `None`.
                if inner.is_end_stream() {
                    this.inner = None;
                    this.release();
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.buffered.is_none() && self.inner.as_ref().is_none_or(Body::is_end_stream)
    }

    fn size_hint(&self) -> http_body::SizeHint {
        match (&self.buffered, &self.inner) {
            (Some(bytes), _) => http_body::SizeHint::with_exact(bytes.len() as u64),
            (None, Some(inner)) => inner.size_hint(),
            (None, None) => http_body::SizeHint::with_exact(0),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Admin listener.

fn run_admin(
    shared: Arc<Shared>,
    address: SocketAddr,
    ready: std::sync::mpsc::Sender<std::io::Result<SocketAddr>>,
) -> Result<(), EdgeError> {
    let mut runtime = monoio::RuntimeBuilder::<monoio::FusionDriver>::new()
        .enable_timer()
        .build()?;
    runtime.block_on(async move {
        let listener = match monoio::net::TcpListener::bind(address) {
            Ok(listener) => listener,
            Err(error) => {
                let _ = ready.send(Err(std::io::Error::new(error.kind(), error.to_string())));
                return Err(EdgeError::Io(error));
            }
        };
        let _ = ready.send(listener.local_addr());
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                monoio::time::sleep(Duration::from_millis(50)).await;
                continue;
            };
            let shared = Arc::clone(&shared);
            monoio::spawn(async move {
                let Ok(stream) = monoio::io::IntoPollIo::into_poll_io(stream) else {
                    return;
                };
                let service = hyper::service::service_fn(move |request| {
                    let shared = Arc::clone(&shared);
                    async move { Ok::<_, Infallible>(admin(&shared, request)) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .timer(MonoioTimer)
                    .serve_connection(MonoioIo::new(stream), service)
                    .await;
            });
        }
    })
}

fn admin(shared: &Shared, request: http::Request<Incoming>) -> HttpResponse {
    let text = |status: StatusCode, body: String| {
        http::Response::builder()
            .status(status)
            .header("content-type", "text/plain; version=0.0.4")
            .body(full(Bytes::from(body)))
            .unwrap_or_else(|_| http::Response::new(full(Bytes::new())))
    };
    let query = request.uri().query().unwrap_or("");
    match (request.method(), request.uri().path()) {
        (&Method::GET, "/metrics") => text(StatusCode::OK, metrics_text(shared)),
        (&Method::GET, "/module") => {
            let (generation, path) = shared.module.current();
            text(
                StatusCode::OK,
                format!("generation {generation}\npath {}\n", path.display()),
            )
        }
        (&Method::POST, "/module/reload") => {
            let path = query
                .split('&')
                .find_map(|pair| pair.strip_prefix("path="))
                .map(percent_decode_path);
            match shared
                .module
                .reload(path.as_deref().map(std::path::Path::new))
            {
                Ok(generation) => {
                    shared
                        .counters
                        .module_reloads
                        .fetch_add(1, Ordering::Relaxed);
                    let (_, path) = shared.module.current();
                    tracing::info!(generation, path = %path.display(), "routing module replaced");
                    text(StatusCode::OK, format!("generation {generation}\n"))
                }
                Err(error) => {
                    tracing::warn!(%error, "routing module reload refused");
                    text(StatusCode::BAD_REQUEST, format!("{error}\n"))
                }
            }
        }
        _ => text(StatusCode::NOT_FOUND, "not found\n".into()),
    }
}

fn percent_decode_path(raw: &str) -> String {
    let bytes = raw.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        let hex = |byte: u8| (byte as char).to_digit(16).map(|digit| digit as u8);
        if bytes[index] == b'%'
            && let (Some(high), Some(low)) = (
                bytes.get(index + 1).copied().and_then(hex),
                bytes.get(index + 2).copied().and_then(hex),
            )
        {
            decoded.push(high << 4 | low);
            index += 3;
        } else {
            decoded.push(bytes[index]);
            index += 1;
        }
    }
    String::from_utf8_lossy(&decoded).into_owned()
}

fn metrics_text(shared: &Shared) -> String {
    let counters = &shared.counters;
    let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
    let (entries, bytes) = shared.hot.usage();
    let (generation, _) = shared.module.current();
    format!(
        "# TYPE cairn_edge_requests_total counter\n\
         cairn_edge_requests_total {}\n\
         # TYPE cairn_edge_cache_requests_total counter\n\
         cairn_edge_cache_requests_total{{result=\"hit\"}} {}\n\
         cairn_edge_cache_requests_total{{result=\"revalidated\"}} {}\n\
         cairn_edge_cache_requests_total{{result=\"miss\"}} {}\n\
         cairn_edge_cache_requests_total{{result=\"bypass\"}} {}\n\
         # TYPE cairn_edge_cache_entries gauge\n\
         cairn_edge_cache_entries {entries}\n\
         # TYPE cairn_edge_cache_bytes gauge\n\
         cairn_edge_cache_bytes {bytes}\n\
         # TYPE cairn_edge_routing_failures_total counter\n\
         cairn_edge_routing_failures_total {}\n\
         # TYPE cairn_edge_upstream_errors_total counter\n\
         cairn_edge_upstream_errors_total {}\n\
         # TYPE cairn_edge_bucket_lookups_total counter\n\
         cairn_edge_bucket_lookups_total {}\n\
         # TYPE cairn_edge_module_reloads_total counter\n\
         cairn_edge_module_reloads_total {}\n\
         # TYPE cairn_edge_module_generation gauge\n\
         cairn_edge_module_generation {generation}\n\
         # TYPE cairn_edge_bucket_moved_total counter\n\
         cairn_edge_bucket_moved_total {}\n",
        load(&counters.requests),
        load(&counters.cache_hits),
        load(&counters.cache_revalidated),
        load(&counters.cache_misses),
        load(&counters.cache_bypass),
        load(&counters.routing_failures),
        load(&counters.upstream_errors),
        load(&counters.bucket_lookups),
        load(&counters.module_reloads),
        load(&counters.bucket_moved),
    )
}
