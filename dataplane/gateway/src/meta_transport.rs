//! The metadata client's transport on a gateway executor (monoio, io_uring).
//!
//! Each executor owns a [`cairn_raft::MetaClient`] over a [`MonoioTransport`], so a metadata
//! write, read or object listing of a request is sent and answered on the executor that serves
//! the request: no hand-off to the shared tokio client's threads and no cross-thread wake-up on
//! the way back (the shared [`cairn_raft::DetachedMetaClient`] keeps the rarer calls).
//!
//! Same protocol and model as the tokio pool ([`cairn_raft::network::ConnectionPool`]): one
//! request in flight per connection, idle connections kept per address, and the same reuse and
//! redial policy ([`cairn_raft::network::call_pooled`]); a timed out exchange drops its
//! connection. Mutual TLS as there (a meta-role certificate of
//! the cluster CA).

use std::cell::RefCell;
use std::collections::HashMap;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use cairn_raft::CallFailure;
use cairn_raft::network::{ConnectionSource, RpcConnection, call_pooled};
use cairn_raft::wire::{Envelope, WireError, encode_frame, frame_length};
use monoio::buf::IoBufMut;
use monoio::io::{AsyncReadRent, AsyncReadRentExt, AsyncWriteRent, AsyncWriteRentExt};
use monoio::net::TcpStream;

/// Idle connections kept per address. One executor has at most as many requests in flight as
/// it serves connections; past this, connections are closed after use.
const MAX_IDLE_CONNECTIONS_PER_ADDRESS: usize = 128;

/// Bytes read at once when an answer begins: most answers fit, so the prefix and the envelope
/// arrive in one read.
const FIRST_READ_BYTES: usize = 8 * 1024;

/// A plaintext or TLS stream to a meta node.
enum Stream {
    Plain(TcpStream),
    Tls(Box<monoio_rustls::ClientTlsStream<TcpStream>>),
}

/// One request/response connection to a meta node's listener.
pub struct Connection {
    stream: Stream,
    next_request_id: u64,
}

impl Connection {
    /// Dials a meta node at `address`; with `tls`, mutual TLS, and a loopback connection the
    /// node switches to plaintext after the handshake continues so (see `cairn_tls`).
    pub async fn connect(
        address: &str,
        tls: Option<&Arc<rustls::ClientConfig>>,
    ) -> io::Result<Connection> {
        let stream = TcpStream::connect(address).await?;
        // Every message is a small request waiting for its answer: Nagle would only delay it.
        stream.set_nodelay(true)?;
        let stream = match tls {
            None => Stream::Plain(stream),
            Some(tls) => {
                match cairn_tls::monoio_dial::handshake(stream, tls, cairn_tls::Role::Meta).await? {
                    cairn_tls::monoio_dial::Dialled::Plain(stream) => Stream::Plain(stream),
                    cairn_tls::monoio_dial::Dialled::Tls(stream) => Stream::Tls(stream),
                }
            }
        };
        Ok(Connection {
            stream,
            next_request_id: 1,
        })
    }

    /// Whether the connection runs inside TLS.
    pub fn is_encrypted(&self) -> bool {
        matches!(self.stream, Stream::Tls(_))
    }
}

impl RpcConnection for Connection {
    async fn call(&mut self, mut request: Envelope) -> Result<Envelope, WireError> {
        request.request_id = self.next_request_id;
        self.next_request_id += 1;
        let frame = encode_frame(&request)?;
        let response = match &mut self.stream {
            Stream::Plain(stream) => exchange(stream, frame).await?,
            Stream::Tls(stream) => exchange(&mut **stream, frame).await?,
        };
        if response.request_id != request.request_id {
            return Err(WireError::Invalid(format!(
                "response to request {} arrived for request {}",
                response.request_id, request.request_id
            )));
        }
        Ok(response)
    }
}

/// Writes `frame` and reads the one frame that answers it.
async fn exchange<S: AsyncReadRent + AsyncWriteRent>(
    stream: &mut S,
    frame: Vec<u8>,
) -> Result<Envelope, WireError> {
    let (written, _) = stream.write_all(frame).await;
    written?;
    // TLS may hold back the last record until flushed; plaintext flush is a no-op.
    stream.flush().await?;
    let mut received = Vec::with_capacity(FIRST_READ_BYTES);
    while received.len() < 4 {
        let (start, end) = (received.len(), received.capacity());
        let (read, buffer) = stream.read(received.slice_mut(start..end)).await;
        received = buffer.into_inner();
        if read? == 0 {
            return Err(WireError::Io(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "peer closed the connection",
            )));
        }
    }
    let prefix: [u8; 4] = received[..4].try_into().expect("four bytes read");
    let total = 4 + frame_length(prefix)?;
    if received.len() > total {
        // One request is in flight per connection: nothing may follow its answer.
        return Err(WireError::Invalid(format!(
            "{} bytes after a {total}-byte answer",
            received.len() - total
        )));
    }
    if received.len() < total {
        received.reserve_exact(total - received.len());
        let start = received.len();
        let (read, buffer) = stream.read_exact(received.slice_mut(start..total)).await;
        received = buffer.into_inner();
        read?;
    }
    Envelope::decode(&received[4..total])
}

/// [`cairn_raft::MetaTransport`] on one monoio executor. Not `Send`: its connections belong to
/// the executor's io_uring.
pub struct MonoioTransport {
    idle: RefCell<HashMap<String, Vec<Connection>>>,
    tls: Option<Arc<rustls::ClientConfig>>,
}

impl MonoioTransport {
    /// Idle connections held, over every address.
    #[cfg(test)]
    fn idle_connections(&self) -> usize {
        self.idle.borrow().values().map(Vec::len).sum()
    }
}

impl ConnectionSource for MonoioTransport {
    type Connection = Connection;

    fn take(&self, address: &str) -> Option<Connection> {
        self.idle.borrow_mut().get_mut(address).and_then(Vec::pop)
    }

    fn give_back(&self, address: &str, connection: Connection) {
        let mut idle = self.idle.borrow_mut();
        let connections = idle.entry(address.to_owned()).or_default();
        if connections.len() < MAX_IDLE_CONNECTIONS_PER_ADDRESS {
            connections.push(connection);
        }
    }

    async fn connect(&self, address: &str) -> io::Result<Connection> {
        Connection::connect(address, self.tls.as_ref()).await
    }
}

impl cairn_raft::MetaTransport for MonoioTransport {
    fn new(identity: Option<&cairn_tls::Identity>) -> Self {
        MonoioTransport {
            idle: RefCell::default(),
            tls: identity.map(cairn_tls::Identity::client_config),
        }
    }

    async fn call(
        &self,
        address: &str,
        request: Envelope,
        deadline: Duration,
    ) -> Result<Envelope, CallFailure> {
        monoio::time::timeout(deadline, call_pooled(self, address, request))
            .await
            .unwrap_or(Err(CallFailure::Timeout))
    }

    async fn sleep(duration: Duration) {
        monoio::time::sleep(duration).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cairn_raft::wire::{MessageKind, Status};
    use cairn_raft::{GroupId, MetaTransport};
    use std::io::{Read, Write};
    use std::net::TcpListener;

    /// What the scripted peer does with each connection it accepts.
    #[derive(Clone, Copy)]
    enum Peer {
        /// Answers one request, then closes the connection.
        AnswerOnceThenClose,
        /// Answers every request with its own payload.
        Echo,
        /// Reads requests and never answers.
        Silent,
        /// Answers with a length prefix past the frame limit.
        Oversized,
        /// Answers with another request id.
        WrongId,
    }

    fn read_request(stream: &mut std::net::TcpStream) -> Option<Envelope> {
        let mut prefix = [0u8; 4];
        stream.read_exact(&mut prefix).ok()?;
        let mut body = vec![0u8; frame_length(prefix).ok()?];
        stream.read_exact(&mut body).ok()?;
        Envelope::decode(&body).ok()
    }

    /// A peer on 127.0.0.1 that plays `script` on each accepted connection, in order (the last
    /// entry repeats). Returns its address and a counter of accepted connections.
    fn scripted_peer(script: Vec<Peer>) -> (String, Arc<std::sync::atomic::AtomicUsize>) {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let address = listener.local_addr().expect("address").to_string();
        let accepted = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = Arc::clone(&accepted);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { return };
                let index = counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let behaviour = script[index.min(script.len() - 1)];
                std::thread::spawn(move || {
                    while let Some(request) = read_request(&mut stream) {
                        let mut answer =
                            Envelope::response_to(&request, Status::Ok, request.payload.clone());
                        let frame = match behaviour {
                            Peer::Silent => continue,
                            Peer::Oversized => (cairn_raft::wire::MAX_FRAME_BYTES as u32 + 1)
                                .to_le_bytes()
                                .to_vec(),
                            Peer::WrongId => {
                                answer.request_id += 7;
                                encode_frame(&answer).expect("frame")
                            }
                            Peer::Echo | Peer::AnswerOnceThenClose => {
                                encode_frame(&answer).expect("frame")
                            }
                        };
                        if stream.write_all(&frame).is_err() {
                            return;
                        }
                        if matches!(behaviour, Peer::AnswerOnceThenClose) {
                            return;
                        }
                    }
                });
            }
        });
        (address, accepted)
    }

    fn request(payload: &[u8]) -> Envelope {
        Envelope::request(GroupId(1), MessageKind::ClientRead, payload.to_vec())
    }

    fn run<F: std::future::Future>(future: F) -> F::Output {
        monoio::RuntimeBuilder::<monoio::FusionDriver>::new()
            .enable_timer()
            .build()
            .expect("monoio runtime")
            .block_on(future)
    }

    #[test]
    fn answers_and_reuses_one_connection() {
        let (address, accepted) = scripted_peer(vec![Peer::Echo]);
        run(async {
            let transport = MonoioTransport::new(None);
            for round in 0..5u8 {
                let answer = transport
                    .call(&address, request(&[round; 3]), Duration::from_secs(5))
                    .await
                    .expect("answer");
                assert_eq!(answer.payload, vec![round; 3]);
            }
            assert_eq!(transport.idle_connections(), 1);
        });
        assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), 1);
    }

    #[test]
    fn large_answers_arrive_whole() {
        let (address, _) = scripted_peer(vec![Peer::Echo]);
        let payload: Vec<u8> = (0..(3 * FIRST_READ_BYTES + 17)).map(|i| i as u8).collect();
        let answer = run(async {
            MonoioTransport::new(None)
                .call(&address, request(&payload), Duration::from_secs(5))
                .await
                .expect("answer")
        });
        assert_eq!(answer.payload, payload);
    }

    #[test]
    fn a_stale_pooled_connection_is_replaced_within_the_call() {
        let (address, accepted) = scripted_peer(vec![Peer::AnswerOnceThenClose, Peer::Echo]);
        run(async {
            let transport = MonoioTransport::new(None);
            transport
                .call(&address, request(b"first"), Duration::from_secs(5))
                .await
                .expect("first answer");
            // The peer closed the pooled connection after its answer: the next call finds it
            // dead and dials again instead of failing.
            let answer = transport
                .call(&address, request(b"second"), Duration::from_secs(5))
                .await
                .expect("second answer on a fresh connection");
            assert_eq!(answer.payload, b"second");
        });
        assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), 2);
    }

    #[test]
    fn a_silent_peer_times_out_and_its_connection_is_dropped() {
        let (address, _) = scripted_peer(vec![Peer::Silent]);
        run(async {
            let transport = MonoioTransport::new(None);
            let started = std::time::Instant::now();
            let outcome = transport
                .call(&address, request(b"x"), Duration::from_millis(200))
                .await;
            assert!(matches!(outcome, Err(CallFailure::Timeout)), "{outcome:?}");
            assert!(started.elapsed() < Duration::from_secs(3));
            assert_eq!(transport.idle_connections(), 0);
        });
    }

    #[test]
    fn bad_answers_are_network_failures() {
        for peer in [Peer::Oversized, Peer::WrongId] {
            let (address, _) = scripted_peer(vec![peer]);
            run(async {
                let transport = MonoioTransport::new(None);
                let outcome = transport
                    .call(&address, request(b"x"), Duration::from_secs(5))
                    .await;
                assert!(
                    matches!(outcome, Err(CallFailure::Network(_))),
                    "{outcome:?}"
                );
                assert_eq!(transport.idle_connections(), 0);
            });
        }
    }

    #[test]
    fn an_unreachable_address_is_reported_as_such() {
        // Bound and dropped: nothing listens there any more.
        let address = TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("address")
            .to_string();
        let outcome = run(async {
            MonoioTransport::new(None)
                .call(&address, request(b"x"), Duration::from_secs(5))
                .await
        });
        assert!(
            matches!(outcome, Err(CallFailure::Unreachable(_))),
            "{outcome:?}"
        );
    }
}
