//! Outbound Raft RPC: openraft's `RaftNetworkFactory` over the framed TCP protocol of [`crate::wire`].
//!
//! # Model
//!
//! Each (group, target) replication stream that openraft opens gets its own [`PeerClient`] with
//! its own lazily dialled TCP connection, so one slow group never queues behind another on a
//! shared socket and a request/response pair never interleaves with another. A failed or timed
//! out call drops the connection; the next call dials again.
//!
//! Error mapping (what openraft does next): dial failure, unknown group or an unavailable group
//! on the peer → `Unreachable` (openraft backs off); a deadline → `Timeout`; an I/O error on an
//! established connection → `Network` (retried at once on a fresh connection); an openraft API
//! error from the peer (snapshot chunk mismatch) → `RemoteError`.

use std::time::Duration;

use openraft::BasicNode;
use openraft::error::{
    InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Timeout, Unreachable,
};
use openraft::network::{RPCOption, RPCTypes, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use tokio::io::BufStream;
use tokio::net::TcpStream;

use crate::types::{GroupId, NodeId, TypeConfig};
use crate::wire::{
    Envelope, MessageKind, Status, WireError, from_payload, read_envelope, to_payload,
    write_envelope,
};

/// One request/response TCP connection to a `MetaNode` listener.
pub struct Connection {
    stream: BufStream<TcpStream>,
    next_request_id: u64,
}

impl Connection {
    /// Dials `address` (host:port) with TCP_NODELAY: every message is a small request waiting
    /// for its answer, so Nagle's algorithm would only add latency.
    pub async fn connect(address: &str) -> std::io::Result<Connection> {
        let stream = TcpStream::connect(address).await?;
        stream.set_nodelay(true)?;
        Ok(Connection {
            stream: BufStream::new(stream),
            next_request_id: 1,
        })
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

/// Creates the outbound clients of one group on one node.
pub struct NetworkFactory {
    pub local_node_id: NodeId,
    pub group: GroupId,
}

impl RaftNetworkFactory<TypeConfig> for NetworkFactory {
    type Network = PeerClient;

    async fn new_client(&mut self, target: NodeId, node: &BasicNode) -> PeerClient {
        PeerClient {
            local_node_id: self.local_node_id,
            group: self.group,
            target,
            address: node.addr.clone(),
            connection: None,
        }
    }
}

/// Sends one group's RPCs to one target node.
pub struct PeerClient {
    local_node_id: NodeId,
    group: GroupId,
    target: NodeId,
    address: String,
    connection: Option<Connection>,
}

/// Why a call failed, before mapping to openraft's error for the RPC at hand.
enum CallFailure {
    Unreachable(std::io::Error),
    Timeout,
    Network(WireError),
}

type RpcResult<T, E = openraft::error::Infallible> =
    Result<T, RPCError<NodeId, BasicNode, RaftError<NodeId, E>>>;

impl PeerClient {
    async fn call(
        &mut self,
        kind: MessageKind,
        payload: Vec<u8>,
        deadline: Duration,
    ) -> Result<Envelope, CallFailure> {
        let request = Envelope::request(self.group, kind, payload);
        let attempt = async {
            if self.connection.is_none() {
                let connection = Connection::connect(&self.address)
                    .await
                    .map_err(CallFailure::Unreachable)?;
                self.connection = Some(connection);
            }
            let connection = self.connection.as_mut().expect("connected above");
            connection.call(request).await.map_err(CallFailure::Network)
        };
        let result = match tokio::time::timeout(deadline, attempt).await {
            Ok(result) => result,
            Err(_elapsed) => Err(CallFailure::Timeout),
        };
        if result.is_err() {
            self.connection = None;
        }
        result
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

    async fn simple_rpc<Req: serde::Serialize, Resp: serde::de::DeserializeOwned>(
        &mut self,
        kind: MessageKind,
        action: RPCTypes,
        request: &Req,
        option: &RPCOption,
    ) -> RpcResult<Resp> {
        let deadline = option.hard_ttl();
        let response = self
            .call(kind, to_payload(request), deadline)
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
        self.simple_rpc(
            MessageKind::AppendEntries,
            RPCTypes::AppendEntries,
            &rpc,
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
        self.simple_rpc(MessageKind::Vote, RPCTypes::Vote, &rpc, &option)
            .await
    }
}
