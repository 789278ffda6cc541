//! Async storage-node client on monoio (io_uring), for the gateway's executors.
//!
//! Same model and checks as the blocking client (one request in flight per connection, the
//! connection dropped after an I/O or protocol error and reopened by the next call, whole-shard
//! reads checked against the node's CRC32C), sharing the sans-I/O code in `operation`. Buffers are
//! owned and passed to the kernel, io_uring style: a put takes its body by value and hands it back,
//! so the caller can return it to a pool.

use crate::operation::{self, Operation};
use crate::{ClientError, ProtocolError, ScanPage};
use cairn_common::ShardId;
use cairn_wire::{
    ByteRange, FRAME_HEADER_LEN_BYTES, FrameHeader, FrameLimits, HealthReport, Request, Response,
    ShardEntry,
};
use monoio::buf::{IoBuf, IoBufMut};
use monoio::io::{AsyncReadRent, AsyncReadRentExt, AsyncWriteRent, AsyncWriteRentExt};
use monoio::net::TcpStream;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

/// A plaintext or TLS connection to a node.
enum Connection {
    Plain(TcpStream),
    Tls(Box<monoio_rustls::ClientTlsStream<TcpStream>>),
}

/// A connection to one storage node from a monoio executor. Not `Send`: it lives on the executor
/// that created it.
pub struct AsyncStorageClient {
    address: SocketAddr,
    limits: FrameLimits,
    /// Mutual TLS (see [`crate::ClientConfig::tls`]); `None` for plaintext nodes.
    tls: Option<Arc<rustls::ClientConfig>>,
    stream: Option<Connection>,
    next_request_id: u64,
}

impl AsyncStorageClient {
    /// A plaintext connection (nodes started without TLS).
    pub async fn connect(address: SocketAddr) -> Result<Self, ClientError> {
        Self::connect_with_tls(address, None).await
    }

    /// A connection with mutual TLS when `tls` is given (the node must present a storage-role
    /// certificate of the cluster CA).
    pub async fn connect_with_tls(
        address: SocketAddr,
        tls: Option<Arc<rustls::ClientConfig>>,
    ) -> Result<Self, ClientError> {
        let mut client = AsyncStorageClient {
            address,
            limits: FrameLimits::default(),
            tls,
            stream: None,
            next_request_id: 1,
        };
        client.ensure_connected().await?;
        Ok(client)
    }

    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Stores `body` (its CRC32C computed by the caller, e.g. at erasure-coding time) as
    /// `shard_id`. The body comes back with the result.
    pub async fn put<B: IoBuf + 'static>(
        &mut self,
        shard_id: ShardId,
        body: B,
        crc32c: u32,
    ) -> (Result<(), ClientError>, B) {
        let (result, body) = self
            .call(Operation::Put { shard_id, crc32c }, Some(body))
            .await;
        let body = body.expect("the put body comes back");
        (
            result.and_then(|(response, _)| operation::extract_put(response)),
            body,
        )
    }

    /// Reads a whole shard (checked against the node's CRC32C) or `range` of it.
    pub async fn get(
        &mut self,
        shard_id: ShardId,
        range: Option<ByteRange>,
    ) -> Result<Vec<u8>, ClientError> {
        Ok(self.read(shard_id, range).await?.0)
    }

    /// Reads a whole shard and returns it with its CRC32C, which matched the node's (computed
    /// once here, so the caller need not hash the bytes again).
    pub async fn get_whole(&mut self, shard_id: ShardId) -> Result<(Vec<u8>, u32), ClientError> {
        let (body, crc32c) = self.read(shard_id, None).await?;
        Ok((body, crc32c.expect("a whole-shard read is checksummed")))
    }

    /// The body of a Get, checked by [`operation::extract_get`], with the CRC32C it computed.
    async fn read(
        &mut self,
        shard_id: ShardId,
        range: Option<ByteRange>,
    ) -> Result<(Vec<u8>, Option<u32>), ClientError> {
        let (result, _) = self
            .call::<Vec<u8>>(
                Operation::Get {
                    shard_id,
                    range,
                    from_disk: false,
                },
                None,
            )
            .await;
        let (response, body) = result?;
        let crc32c = operation::extract_get(response, range, &body)?;
        Ok((body, crc32c))
    }

    pub async fn delete(&mut self, shard_id: ShardId) -> Result<bool, ClientError> {
        let (result, _) = self
            .call::<Vec<u8>>(Operation::Delete { shard_id }, None)
            .await;
        operation::extract_delete(result?.0)
    }

    pub async fn stat(&mut self, shard_id: ShardId) -> Result<ShardEntry, ClientError> {
        let (result, _) = self
            .call::<Vec<u8>>(Operation::Stat { shard_id }, None)
            .await;
        operation::extract_stat(result?.0)
    }

    pub async fn scan(
        &mut self,
        after: Option<ShardId>,
        limit: u32,
    ) -> Result<ScanPage, ClientError> {
        let (result, _) = self
            .call::<Vec<u8>>(Operation::Scan { after, limit }, None)
            .await;
        operation::extract_scan(result?.0)
    }

    pub async fn health(&mut self) -> Result<HealthReport, ClientError> {
        let (result, _) = self.call::<Vec<u8>>(Operation::Health, None).await;
        operation::extract_health(result?.0)
    }

    async fn ensure_connected(&mut self) -> Result<&mut Connection, ClientError> {
        if self.stream.is_none() {
            let stream = TcpStream::connect_addr(self.address).await?;
            // Requests are written whole, so Nagle's algorithm would only delay them.
            stream.set_nodelay(true)?;
            let connection = match &self.tls {
                None => Connection::Plain(stream),
                // A loopback connection the node switches to plaintext after the handshake
                // continues so (see `cairn_tls`).
                Some(tls) => {
                    match cairn_tls::monoio_dial::handshake(stream, tls, cairn_tls::Role::Storage)
                        .await?
                    {
                        cairn_tls::monoio_dial::Dialled::Plain(stream) => Connection::Plain(stream),
                        cairn_tls::monoio_dial::Dialled::Tls(stream) => Connection::Tls(stream),
                    }
                }
            };
            self.stream = Some(connection);
        }
        Ok(self.stream.as_mut().expect("connected just above"))
    }

    /// Sends one request (with `body`, if any) and reads its response; drops the connection on an
    /// I/O or protocol error.
    async fn call<B: IoBuf + 'static>(
        &mut self,
        operation: Operation,
        body: Option<B>,
    ) -> (Result<(Response, Vec<u8>), ClientError>, Option<B>) {
        let request = operation.request(operation::next_request_id(&mut self.next_request_id));
        let (result, body) = self.exchange(&request, body).await;
        if matches!(result, Err(ClientError::Io(_) | ClientError::Protocol(_))) {
            self.stream = None;
        }
        (result, body)
    }

    async fn exchange<B: IoBuf + 'static>(
        &mut self,
        request: &Request,
        body: Option<B>,
    ) -> (Result<(Response, Vec<u8>), ClientError>, Option<B>) {
        let body_len = body.as_ref().map_or(0, |body| body.bytes_init());
        let Ok(body_len_bytes) = u32::try_from(body_len) else {
            return (
                Err(ClientError::RequestBodyTooLarge {
                    length_bytes: body_len,
                }),
                body,
            );
        };
        let limits = self.limits;
        let stream = match self.ensure_connected().await {
            Ok(stream) => stream,
            Err(error) => return (Err(error), body),
        };
        match stream {
            Connection::Plain(stream) => {
                exchange_on(stream, request, body, body_len, body_len_bytes, limits).await
            }
            Connection::Tls(stream) => {
                exchange_on(
                    &mut **stream,
                    request,
                    body,
                    body_len,
                    body_len_bytes,
                    limits,
                )
                .await
            }
        }
    }
}

async fn exchange_on<S: AsyncReadRent + AsyncWriteRent, B: IoBuf + 'static>(
    stream: &mut S,
    request: &Request,
    body: Option<B>,
    body_len: usize,
    body_len_bytes: u32,
    limits: FrameLimits,
) -> (Result<(Response, Vec<u8>), ClientError>, Option<B>) {
    {
        let frame = cairn_wire::encode_request(request, body_len_bytes);
        let (written, _) = stream.write_all(frame).await;
        if let Err(error) = written {
            return (Err(error.into()), body);
        }
        let body = match body {
            Some(body) if body_len > 0 => {
                let (written, body) = stream.write_all(body).await;
                if let Err(error) = written {
                    return (Err(error.into()), Some(body));
                }
                Some(body)
            }
            other => other,
        };
        // TLS may hold back the last record until flushed; plaintext flush is a no-op.
        if let Err(error) = stream.flush().await {
            return (Err(error.into()), body);
        }
        (read_response(stream, request, limits).await, body)
    }
}

async fn read_exactly<S: AsyncReadRent>(stream: &mut S, len_bytes: usize) -> io::Result<Vec<u8>> {
    if len_bytes == 0 {
        return Ok(Vec::new());
    }
    let buffer = Vec::with_capacity(len_bytes).slice_mut(0..len_bytes);
    let (result, buffer) = stream.read_exact(buffer).await;
    result?;
    Ok(buffer.into_inner())
}

async fn read_response<S: AsyncReadRent>(
    stream: &mut S,
    request: &Request,
    limits: FrameLimits,
) -> Result<(Response, Vec<u8>), ClientError> {
    let header_bytes = read_exactly(stream, FRAME_HEADER_LEN_BYTES).await?;
    let header_bytes: [u8; FRAME_HEADER_LEN_BYTES] =
        header_bytes.try_into().expect("read exactly a header");
    let header = FrameHeader::parse(&header_bytes, limits).map_err(ProtocolError::from)?;
    let message = read_exactly(stream, header.message_len_bytes as usize).await?;
    let response = cairn_wire::decode_response(&message).map_err(ProtocolError::from)?;
    operation::check_response(request, &header, &response)?;
    let body = read_exactly(stream, header.body_len_bytes as usize).await?;
    Ok((operation::node_error(response)?, body))
}
