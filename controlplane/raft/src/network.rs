//! Outbound Raft RPC: openraft's `RaftNetworkFactory` over the framed TCP protocol of [`crate::wire`].
//!
//! # Model
//!
//! Each client openraft creates (one per replication stream, one per election or read-index
//! round) is a [`PeerClient`] that holds at most one TCP connection at a time, so a
//! request/response pair never interleaves with another and one slow group never queues behind
//! another on a shared socket. Connections are group-agnostic (every envelope names its group), so
//! a node keeps one [`ConnectionPool`] for all its groups: a client takes an idle connection to
//! its target or dials one, and gives it back when dropped. openraft creates a client for every
//! read-index round, which without the pool would cost a TCP handshake per follower per read.
//! A failed or timed out call drops the connection; a pooled connection that turns out to be dead
//! (the peer restarted) is replaced by a fresh dial within the same call.
//!
//! Error mapping (what openraft does next): dial failure, unknown group or an unavailable group
//! on the peer → `Unreachable` (openraft backs off); a deadline → `Timeout`; an I/O error on an
//! established connection → `Network` (retried at once on a fresh connection); an openraft API
//! error from the peer (snapshot chunk mismatch) → `RemoteError`.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use openraft::BasicNode;
use openraft::error::{
    InstallSnapshotError, NetworkError, PayloadTooLarge, RPCError, RaftError, RemoteError, Timeout,
    Unreachable,
};
use openraft::network::{RPCOption, RPCTypes, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use tokio::io::{AsyncRead, AsyncWrite, BufStream};
use tokio::net::TcpStream;

use crate::types::{GroupId, NodeId, TypeConfig};
use crate::wire::{
    Envelope, MAX_FRAME_BYTES, MessageKind, Status, WireError, from_payload, read_envelope,
    to_payload, write_envelope,
};

/// A byte stream the RPC runs on: plain TCP or TLS over it.
pub trait RpcStream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> RpcStream for T {}

/// One request/response TCP connection to a `MetaNode` listener.
pub struct Connection {
    stream: BufStream<Box<dyn RpcStream>>,
    next_request_id: u64,
    encrypted: bool,
}

impl Connection {
    /// Dials `address` (host:port) with TCP_NODELAY: every message is a small request waiting
    /// for its answer, so Nagle's algorithm would only add latency. With `tls`, the connection
    /// is mutual TLS and the peer must present a meta-role certificate of the cluster CA; a
    /// loopback connection the peer switches to plaintext after the handshake continues so
    /// (see `cairn_tls`).
    pub async fn connect(
        address: &str,
        tls: Option<&Arc<tokio_rustls::rustls::ClientConfig>>,
    ) -> std::io::Result<Connection> {
        let stream = TcpStream::connect(address).await?;
        stream.set_nodelay(true)?;
        let mut encrypted = false;
        let stream: Box<dyn RpcStream> = match tls {
            None => Box::new(stream),
            Some(tls) => {
                let (local, peer) = (stream.local_addr()?, stream.peer_addr()?);
                match cairn_tls::tokio_dial::handshake(
                    stream,
                    local,
                    peer,
                    tls,
                    cairn_tls::Role::Meta,
                )
                .await?
                {
                    cairn_tls::tokio_dial::Dialled::Plain(stream) => Box::new(stream),
                    cairn_tls::tokio_dial::Dialled::Tls(stream) => {
                        encrypted = true;
                        stream
                    }
                }
            }
        };
        Ok(Connection {
            stream: BufStream::new(stream),
            next_request_id: 1,
            encrypted,
        })
    }

    /// Whether the connection runs inside TLS (false: dialled without TLS, or switched to
    /// plaintext after an authenticated loopback handshake).
    pub fn is_encrypted(&self) -> bool {
        self.encrypted
    }

    /// Sends `request` and waits for its response.
    pub async fn call(&mut self, mut request: Envelope) -> Result<Envelope, WireError> {
        request.request_id = self.next_request_id;
        self.next_request_id += 1;
        write_envelope(&mut self.stream, &request).await?;
        let response = read_envelope(&mut self.stream).await?.ok_or_else(|| {
            WireError::Io(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "peer closed the connection",
            ))
        })?;
        if response.request_id != request.request_id {
            return Err(WireError::Invalid(format!(
                "response to request {} arrived for request {}",
                response.request_id, request.request_id
            )));
        }
        Ok(response)
    }
}

/// Largest AppendEntries payload sent in one frame; leaves room for the envelope.
const MAX_APPEND_PAYLOAD_BYTES: usize = MAX_FRAME_BYTES - (1 << 20);

/// Most idle connections kept per address. A connection carries one request at a time, so a
/// client with many requests in flight (a gateway, a bulk loader) needs about as many; keeping
/// fewer would close and re-dial most of them on every request.
const MAX_IDLE_CONNECTIONS_PER_ADDRESS: usize = 256;

/// Idle connections by address, shared by every group of a node (or by one client).
#[derive(Default)]
pub struct ConnectionPool {
    idle: Mutex<HashMap<String, Vec<Connection>>>,
    /// Mutual TLS for new connections; `None`: plaintext.
    tls: Option<Arc<tokio_rustls::rustls::ClientConfig>>,
}

impl ConnectionPool {
    /// A pool that dials with `identity`'s mutual TLS (plaintext when `None`).
    pub fn new(identity: Option<&cairn_tls::Identity>) -> Self {
        ConnectionPool {
            idle: Mutex::default(),
            tls: identity.map(cairn_tls::Identity::client_config),
        }
    }

    /// Sends `request` on a pooled or new connection to `address` ([`call_pooled`]). Raft RPCs
    /// are idempotent, so a resend is harmless; a client write may have been applied before the
    /// connection broke, which callers already handle (see [`crate::client`] on duplicates).
    pub async fn call(&self, address: &str, request: Envelope) -> Result<Envelope, CallFailure> {
        call_pooled(self, address, request).await
    }
}

impl ConnectionSource for ConnectionPool {
    type Connection = Connection;

    fn take(&self, address: &str) -> Option<Connection> {
        self.idle
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
            .get_mut(address)
            .and_then(Vec::pop)
    }

    fn give_back(&self, address: &str, connection: Connection) {
        let mut idle = self
            .idle
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        let connections = idle.entry(address.to_owned()).or_default();
        if connections.len() < MAX_IDLE_CONNECTIONS_PER_ADDRESS {
            connections.push(connection);
        }
    }

    async fn connect(&self, address: &str) -> std::io::Result<Connection> {
        Connection::connect(address, self.tls.as_ref()).await
    }
}

/// A connection that carries one request/response exchange at a time.
pub trait RpcConnection {
    /// Sends `request` and waits for its response.
    fn call(&mut self, request: Envelope) -> impl Future<Output = Result<Envelope, WireError>>;
}

impl RpcConnection for Connection {
    async fn call(&mut self, request: Envelope) -> Result<Envelope, WireError> {
        Connection::call(self, request).await
    }
}

/// Where [`call_pooled`] gets connections: idle ones by address, or a fresh dial.
pub trait ConnectionSource {
    type Connection: RpcConnection;

    /// An idle connection to `address`, if any.
    fn take(&self, address: &str) -> Option<Self::Connection>;

    /// Keeps `connection` for reuse (closes it if enough are idle already).
    fn give_back(&self, address: &str, connection: Self::Connection);

    /// Dials `address`.
    fn connect(&self, address: &str) -> impl Future<Output = std::io::Result<Self::Connection>>;
}

/// Sends `request` on an idle connection to `address` or a new one, the policy of every pool
/// (tokio's [`ConnectionPool`], the gateway executors' own): a pooled connection that fails is
/// assumed stale (the peer restarted or closed it) and the request is sent once more on a fresh
/// one; a connection that failed is dropped, one that answered is given back.
pub async fn call_pooled<S: ConnectionSource>(
    source: &S,
    address: &str,
    request: Envelope,
) -> Result<Envelope, CallFailure> {
    if let Some(mut connection) = source.take(address)
        && let Ok(response) = connection.call(request.clone()).await
    {
        source.give_back(address, connection);
        return Ok(response);
    }
    let mut connection = source
        .connect(address)
        .await
        .map_err(CallFailure::Unreachable)?;
    let response = connection
        .call(request)
        .await
        .map_err(CallFailure::Network)?;
    source.give_back(address, connection);
    Ok(response)
}

/// Fault injection: while set, a node neither sends nor accepts Raft RPCs (client requests still
/// work), as if a network partition separated it from every other replica. Tests use it to cut
/// a leader off without stopping it.
#[derive(Clone, Default)]
pub struct PeerIsolation(Arc<AtomicBool>);

impl PeerIsolation {
    pub fn set(&self, isolated: bool) {
        self.0.store(isolated, Ordering::SeqCst);
    }

    pub fn is_isolated(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// Creates the outbound clients of one group on one node.
pub struct NetworkFactory {
    pub local_node_id: NodeId,
    /// Peer addresses as this node's configuration gives them (`--peers`). They take precedence
    /// over the addresses stored in the group membership, which are those of whichever node
    /// bootstrapped the group: nodes may see each other under different addresses (separate
    /// networks, NAT, the fault-injecting proxies of the tests).
    pub peer_addresses: Arc<BTreeMap<NodeId, String>>,
    pub group: GroupId,
    pub pool: Arc<ConnectionPool>,
    pub isolation: PeerIsolation,
}

impl RaftNetworkFactory<TypeConfig> for NetworkFactory {
    type Network = PeerClient;

    async fn new_client(&mut self, target: NodeId, node: &BasicNode) -> PeerClient {
        PeerClient {
            local_node_id: self.local_node_id,
            group: self.group,
            target,
            address: self
                .peer_addresses
                .get(&target)
                .cloned()
                .unwrap_or_else(|| node.addr.clone()),
            pool: Arc::clone(&self.pool),
            isolation: self.isolation.clone(),
        }
    }
}

/// Sends one group's RPCs to one target node.
pub struct PeerClient {
    local_node_id: NodeId,
    group: GroupId,
    target: NodeId,
    address: String,
    pool: Arc<ConnectionPool>,
    isolation: PeerIsolation,
}

/// Why a call failed, before mapping to openraft's error for the RPC at hand.
#[derive(Debug)]
pub enum CallFailure {
    Unreachable(std::io::Error),
    Timeout,
    Network(WireError),
}

type RpcResult<T, E = openraft::error::Infallible> =
    Result<T, RPCError<NodeId, BasicNode, RaftError<NodeId, E>>>;

impl PeerClient {
    async fn call(
        &self,
        kind: MessageKind,
        payload: Vec<u8>,
        deadline: Duration,
    ) -> Result<Envelope, CallFailure> {
        if self.isolation.is_isolated() {
            return Err(CallFailure::Unreachable(std::io::Error::other(
                "isolated from peers (fault injection)",
            )));
        }
        let request = Envelope::request(self.group, kind, payload);
        // A connection abandoned by the timeout is dropped with the future, never pooled.
        match tokio::time::timeout(deadline, self.pool.call(&self.address, request)).await {
            Ok(result) => result,
            Err(_elapsed) => Err(CallFailure::Timeout),
        }
    }

    fn map_failure<E: std::error::Error>(
        &self,
        failure: CallFailure,
        action: RPCTypes,
        deadline: Duration,
    ) -> RPCError<NodeId, BasicNode, RaftError<NodeId, E>> {
        match failure {
            CallFailure::Unreachable(error) => RPCError::Unreachable(Unreachable::new(&error)),
            CallFailure::Timeout => RPCError::Timeout(Timeout {
                action,
                id: self.local_node_id,
                target: self.target,
                timeout: deadline,
            }),
            CallFailure::Network(error) => RPCError::Network(NetworkError::new(&error)),
        }
    }

    /// Maps a non-`Ok` status that is not an API error: the peer cannot serve this group now.
    fn unavailable<E: std::error::Error>(
        response: &Envelope,
    ) -> RPCError<NodeId, BasicNode, RaftError<NodeId, E>> {
        let error = std::io::Error::other(format!(
            "peer answered {:?}: {}",
            response.status, response.error_message
        ));
        RPCError::Unreachable(Unreachable::new(&error))
    }

    async fn simple_rpc<Resp: serde::de::DeserializeOwned>(
        &mut self,
        kind: MessageKind,
        action: RPCTypes,
        payload: Vec<u8>,
        option: &RPCOption,
    ) -> RpcResult<Resp> {
        let deadline = option.hard_ttl();
        let response = self
            .call(kind, payload, deadline)
            .await
            .map_err(|failure| self.map_failure(failure, action, deadline))?;
        if response.status != Status::Ok {
            return Err(Self::unavailable(&response));
        }
        from_payload(&response.payload)
            .map_err(|error| RPCError::Network(NetworkError::new(&error)))
    }
}

impl RaftNetwork<TypeConfig> for PeerClient {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> RpcResult<AppendEntriesResponse<NodeId>> {
        // A batch too large for one frame (entries with huge shard maps) would fail forever;
        // asking openraft for a smaller batch lets replication proceed.
        let payload = to_payload(&rpc);
        if payload.len() > MAX_APPEND_PAYLOAD_BYTES && rpc.entries.len() > 1 {
            let entries_hint = (rpc.entries.len() / 2) as u64;
            return Err(RPCError::PayloadTooLarge(
                PayloadTooLarge::new_entries_hint(entries_hint),
            ));
        }
        self.simple_rpc(
            MessageKind::AppendEntries,
            RPCTypes::AppendEntries,
            payload,
            &option,
        )
        .await
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> RpcResult<InstallSnapshotResponse<NodeId>, InstallSnapshotError> {
        let deadline = option.hard_ttl();
        let response = self
            .call(MessageKind::InstallSnapshot, to_payload(&rpc), deadline)
            .await
            .map_err(|failure| self.map_failure(failure, RPCTypes::InstallSnapshot, deadline))?;
        match response.status {
            Status::Ok => from_payload(&response.payload)
                .map_err(|error| RPCError::Network(NetworkError::new(&error))),
            Status::ApiError => {
                let api_error: InstallSnapshotError = from_payload(&response.payload)
                    .map_err(|error| RPCError::Network(NetworkError::new(&error)))?;
                Err(RPCError::RemoteError(RemoteError::new(
                    self.target,
                    RaftError::APIError(api_error),
                )))
            }
            _ => Err(Self::unavailable(&response)),
        }
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> RpcResult<VoteResponse<NodeId>> {
        self.simple_rpc(MessageKind::Vote, RPCTypes::Vote, to_payload(&rpc), &option)
            .await
    }
}
