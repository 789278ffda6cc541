//! Blocking storage-node client over `std::net::TcpStream`, for tests, benchmarks and tools.
//!
//! # Model
//!
//! One connection, one request in flight: each call writes a whole request frame (header, message,
//! body) and then reads exactly one response frame. Request ids count up from 1 per client and
//! every response must echo the id it answers (an error response may carry id 0, which a node uses
//! when it could not read the request's id).
//!
//! # Invariants
//!
//! - After an I/O or protocol error the connection is dropped, because the position in the byte
//!   stream can no longer be trusted; the next call opens a fresh connection. Nothing is retried:
//!   a failed call is reported to the caller, who decides whether a retry is safe.
//! - A node's error response consumes exactly one frame, so the connection stays usable after it.
//! - `put` sends the CRC32C of the data it sends; `get` of a whole shard checks the received data
//!   against the CRC32C the node sends with it (a ranged read cannot be checked that way, since the
//!   CRC covers the whole shard).

mod error;
#[cfg(feature = "monoio")]
pub mod monoio_client;
mod operation;

use std::io::{self, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;

pub use cairn_common::ShardId;
pub use cairn_wire::{ByteRange, ErrorCode, FrameLimits, HealthReport, ShardEntry};
use cairn_wire::{FRAME_HEADER_LEN_BYTES, FrameHeader, Request, Response};
pub use error::{ClientError, ProtocolError};
use operation::Operation;

/// Bodies up to this size are copied behind the header and sent with one write, so a small Put is
/// one TCP segment; larger ones are written straight from the caller's buffer.
const COALESCE_BODY_MAX_BYTES: usize = 64 * 1024;

/// Read buffer per connection; bodies larger than it are read straight into their destination.
const READ_BUFFER_BYTES: usize = 64 * 1024;

/// Connection settings. The defaults suit tests and tools on a LAN.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Bound on establishing the TCP connection, per resolved address.
    pub connect_timeout: Duration,
    /// Bound on each blocking read; `None` waits forever.
    pub read_timeout: Option<Duration>,
    /// Bound on each blocking write; `None` waits forever.
    pub write_timeout: Option<Duration>,
    /// Limits applied to response frames; `max_body_len_bytes` caps the shard data one Get returns.
    pub limits: FrameLimits,
    /// Mutual TLS (`cairn_tls::Identity::client_config`): the node must present a storage-role
    /// certificate of the cluster CA, and this client presents its own. `None`: plaintext, for
    /// nodes started without TLS (tests, in-process embeddings).
    pub tls: Option<Arc<rustls::ClientConfig>>,
}

impl ClientConfig {
    /// The default settings with mutual TLS from `identity` (none when `None`).
    pub fn with_identity(identity: Option<&cairn_tls::Identity>) -> Self {
        ClientConfig {
            tls: identity.map(cairn_tls::Identity::client_config),
            ..ClientConfig::default()
        }
    }
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            connect_timeout: Duration::from_secs(5),
            read_timeout: Some(Duration::from_secs(30)),
            write_timeout: Some(Duration::from_secs(30)),
            limits: FrameLimits::default(),
            tls: None,
        }
    }
}

/// A plaintext or TLS connection to a node.
#[derive(Debug)]
enum Connection {
    Plain(TcpStream),
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>),
}

impl Connection {
    fn socket(&self) -> &TcpStream {
        match self {
            Connection::Plain(stream) => stream,
            Connection::Tls(stream) => stream.get_ref(),
        }
    }
}

impl Read for Connection {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        match self {
            Connection::Plain(stream) => stream.read(buffer),
            Connection::Tls(stream) => stream.read(buffer),
        }
    }
}

impl Write for Connection {
    fn write(&mut self, buffer: &[u8]) -> io::Result<usize> {
        match self {
            Connection::Plain(stream) => stream.write(buffer),
            Connection::Tls(stream) => stream.write(buffer),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Connection::Plain(stream) => stream.flush(),
            Connection::Tls(stream) => stream.flush(),
        }
    }
}

/// One page of a scan. `next_after` is `Some` when more shards may follow: pass it to the next
/// [`StorageClient::scan`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanPage {
    pub entries: Vec<ShardEntry>,
    pub next_after: Option<ShardId>,
}

/// A blocking connection to one storage node.
#[derive(Debug)]
pub struct StorageClient {
    addresses: Vec<SocketAddr>,
    config: ClientConfig,
    /// `None` after an I/O or protocol error; the next call reconnects.
    /// Reads go through a buffer so a response frame's header and message cost one system call.
    stream: Option<BufReader<Connection>>,
    next_request_id: u64,
}

impl StorageClient {
    /// Connects with [`ClientConfig::default`].
    pub fn connect(address: impl ToSocketAddrs) -> Result<Self, ClientError> {
        Self::connect_with_config(address, ClientConfig::default())
    }

    /// Resolves `address` and connects to the first resolved address that accepts.
    pub fn connect_with_config(
        address: impl ToSocketAddrs,
        config: ClientConfig,
    ) -> Result<Self, ClientError> {
        let addresses: Vec<SocketAddr> = address.to_socket_addrs()?.collect();
        let mut client = StorageClient {
            addresses,
            config,
            stream: None,
            next_request_id: 1,
        };
        client.ensure_connected()?;
        Ok(client)
    }

    /// The node's address, while connected.
    pub fn peer_addr(&self) -> Option<SocketAddr> {
        self.stream
            .as_ref()
            .and_then(|stream| stream.get_ref().socket().peer_addr().ok())
    }

    /// Whether the open connection is encrypted: `Some(false)` for a plaintext node, or for a
    /// loopback connection the node switched to plaintext after authenticating it (see
    /// `cairn_tls`); `None` while not connected.
    pub fn is_encrypted(&self) -> Option<bool> {
        self.stream
            .as_ref()
            .map(|stream| matches!(stream.get_ref(), Connection::Tls(_)))
    }

    /// Whether a connection is open (it is closed after an I/O or protocol error until the next
    /// call reopens it).
    pub fn is_connected(&self) -> bool {
        self.stream.is_some()
    }

    /// Stores `data` as shard `shard_id`, sending its CRC32C for the node to verify.
    pub fn put(&mut self, shard_id: ShardId, data: &[u8]) -> Result<(), ClientError> {
        self.put_with_crc(shard_id, data, crc32c::crc32c(data))
    }

    /// Stores `data` with a caller-supplied CRC32C; a wrong one must make the node answer
    /// [`ClientError::ChecksumMismatch`] (this is how the node's verification is tested).
    pub fn put_with_crc(
        &mut self,
        shard_id: ShardId,
        data: &[u8],
        crc32c: u32,
    ) -> Result<(), ClientError> {
        let request = Operation::Put { shard_id, crc32c };
        self.call(request, data, |response, _body| {
            operation::extract_put(response)
        })
    }

    /// Reads a whole shard (`range: None`, checked against the node's CRC32C) or the part of it
    /// in `range`, clipped to the shard's end.
    pub fn get(
        &mut self,
        shard_id: ShardId,
        range: Option<ByteRange>,
    ) -> Result<Vec<u8>, ClientError> {
        self.get_with(shard_id, range, false)
    }

    /// Like [`StorageClient::get`], but the node skips its hot-shard cache and reads (and checks)
    /// the bytes on disk: what a scrubber needs, since a cached copy hides damage on disk.
    pub fn get_from_disk(
        &mut self,
        shard_id: ShardId,
        range: Option<ByteRange>,
    ) -> Result<Vec<u8>, ClientError> {
        self.get_with(shard_id, range, true)
    }

    fn get_with(
        &mut self,
        shard_id: ShardId,
        range: Option<ByteRange>,
        from_disk: bool,
    ) -> Result<Vec<u8>, ClientError> {
        let request = Operation::Get {
            shard_id,
            range,
            from_disk,
        };
        self.call(request, &[], |response, body| {
            operation::extract_get(response, range, &body)?;
            Ok(body)
        })
    }

    /// Deletes a shard; returns whether it existed.
    pub fn delete(&mut self, shard_id: ShardId) -> Result<bool, ClientError> {
        let request = Operation::Delete { shard_id };
        self.call(request, &[], |response, _body| {
            operation::extract_delete(response)
        })
    }

    /// Length and CRC32C of a stored shard.
    pub fn stat(&mut self, shard_id: ShardId) -> Result<ShardEntry, ClientError> {
        let request = Operation::Stat { shard_id };
        self.call(request, &[], |response, _body| {
            operation::extract_stat(response)
        })
    }

    /// Up to `limit` shards in ascending id order, strictly after `after` (from the first shard
    /// when `None`). A node may return fewer than `limit` and still set `next_after`.
    pub fn scan(&mut self, after: Option<ShardId>, limit: u32) -> Result<ScanPage, ClientError> {
        let request = Operation::Scan { after, limit };
        self.call(request, &[], |response, _body| {
            operation::extract_scan(response)
        })
    }

    pub fn health(&mut self) -> Result<HealthReport, ClientError> {
        self.call(Operation::Health, &[], |response, _body| {
            operation::extract_health(response)
        })
    }

    /// Sends one request and turns its response into a result with `extract`, dropping the
    /// connection on any I/O or protocol error (see the module invariants).
    fn call<T>(
        &mut self,
        operation: Operation,
        body: &[u8],
        extract: impl FnOnce(Response, Vec<u8>) -> Result<T, ClientError>,
    ) -> Result<T, ClientError> {
        let body_len_bytes =
            u32::try_from(body.len()).map_err(|_| ClientError::RequestBodyTooLarge {
                length_bytes: body.len(),
            })?;
        let request = operation.request(operation::next_request_id(&mut self.next_request_id));

        let result = self
            .exchange(&request, body, body_len_bytes)
            .and_then(|(response, response_body)| extract(response, response_body));
        if matches!(result, Err(ClientError::Io(_) | ClientError::Protocol(_))) {
            self.stream = None;
        }
        result
    }

    /// Writes the request frame and reads the response frame, checking framing and request id.
    /// A node error response becomes the matching [`ClientError`].
    fn exchange(
        &mut self,
        request: &Request,
        body: &[u8],
        body_len_bytes: u32,
    ) -> Result<(Response, Vec<u8>), ClientError> {
        let limits = self.config.limits;
        let stream = self.ensure_connected()?;

        let mut frame = cairn_wire::encode_request(request, body_len_bytes);
        if body.len() <= COALESCE_BODY_MAX_BYTES {
            frame.extend_from_slice(body);
            stream.get_mut().write_all(&frame)?;
        } else {
            stream.get_mut().write_all(&frame)?;
            stream.get_mut().write_all(body)?;
        }
        // TLS buffers what it encrypts; plaintext flush is a no-op.
        stream.get_mut().flush()?;

        let mut header_bytes = [0u8; FRAME_HEADER_LEN_BYTES];
        stream.read_exact(&mut header_bytes)?;
        let header = FrameHeader::parse(&header_bytes, limits).map_err(ProtocolError::from)?;
        let mut message = vec![0u8; header.message_len_bytes as usize];
        stream.read_exact(&mut message)?;
        let response = cairn_wire::decode_response(&message).map_err(ProtocolError::from)?;

        operation::check_response(request, &header, &response)?;
        let response_body = read_body(stream, header.body_len_bytes)?;

        Ok((operation::node_error(response)?, response_body))
    }

    fn ensure_connected(&mut self) -> Result<&mut BufReader<Connection>, ClientError> {
        if self.stream.is_none() {
            let stream = open_stream(&self.addresses, &self.config)?;
            self.stream = Some(BufReader::with_capacity(READ_BUFFER_BYTES, stream));
        }
        Ok(self.stream.as_mut().expect("connected just above"))
    }
}

fn open_stream(addresses: &[SocketAddr], config: &ClientConfig) -> Result<Connection, ClientError> {
    let mut last_error = io::Error::new(
        io::ErrorKind::InvalidInput,
        "address resolved to no socket addresses",
    );
    for address in addresses {
        match TcpStream::connect_timeout(address, config.connect_timeout) {
            Ok(stream) => {
                // Requests are written whole, so Nagle's algorithm would only delay them.
                stream.set_nodelay(true)?;
                stream.set_read_timeout(config.read_timeout)?;
                stream.set_write_timeout(config.write_timeout)?;
                let Some(tls) = &config.tls else {
                    return Ok(Connection::Plain(stream));
                };
                let (local, peer) = (stream.local_addr()?, stream.peer_addr()?);
                let session = rustls::ClientConnection::new(
                    cairn_tls::client_config_for(tls, local, peer),
                    cairn_tls::Role::Storage.server_name(),
                )
                .map_err(io::Error::other)?;
                let mut stream = rustls::StreamOwned::new(session, stream);
                // Handshake now, so a node with a wrong certificate fails the connect. (A node
                // that refuses this client's certificate says so with an alert that arrives
                // with the answer to the first request: TLS 1.3 ends the client's handshake
                // first.)
                while stream.conn.is_handshaking() {
                    stream.conn.complete_io(&mut stream.sock)?;
                }
                if cairn_tls::selects_loopback_plaintext(stream.conn.alpn_protocol()) {
                    // The node authenticated this loopback connection and continues it in
                    // plaintext after its acknowledgement (see `cairn_tls`).
                    let mut ack = [0u8; cairn_tls::LOOPBACK_PLAINTEXT_ACK.len()];
                    stream.read_exact(&mut ack)?;
                    let rustls::StreamOwned { mut conn, sock } = stream;
                    cairn_tls::check_loopback_switch(&ack, local, peer, &mut conn)?;
                    return Ok(Connection::Plain(sock));
                }
                return Ok(Connection::Tls(Box::new(stream)));
            }
            Err(error) => last_error = error,
        }
    }
    Err(ClientError::Io(last_error))
}

/// Reads exactly `body_len_bytes`, without zero-filling the buffer first.
fn read_body(
    stream: &mut BufReader<Connection>,
    body_len_bytes: u32,
) -> Result<Vec<u8>, ClientError> {
    let mut body = Vec::with_capacity(body_len_bytes as usize);
    stream
        .take(u64::from(body_len_bytes))
        .read_to_end(&mut body)?;
    if body.len() != body_len_bytes as usize {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!(
                "connection closed after {} of {body_len_bytes} body bytes",
                body.len()
            ),
        )
        .into());
    }
    Ok(body)
}
