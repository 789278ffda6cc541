//! The client against a tiny in-test fake node: a thread that speaks the frame protocol over real
//! TCP. It tests framing, checksums and error mapping only; the real node's tests live with the
//! node.

use std::collections::BTreeMap;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use cairn_common::{ShardId, ShardIndex};
use cairn_storage_client::{
    ByteRange, ClientConfig, ClientError, ErrorCode, FrameLimits, HealthReport, ProtocolError,
    ScanPage, ShardEntry, StorageClient,
};
use cairn_wire::{
    FRAME_HEADER_LEN_BYTES, FrameHeader, Request, Response, WireError, decode_request,
    encode_response,
};

/// What the fake node does with one request.
enum Reply {
    /// Answer with this response and body.
    Frame(Response, Vec<u8>),
    /// Write these bytes verbatim (to inject malformed frames).
    Raw(Vec<u8>),
    /// Close the connection without answering.
    Close,
    /// Answer nothing; keep the connection open for this long, then close it.
    Silence(Duration),
}

/// Starts a fake node on a loopback port. It serves connections one after another (the client
/// reconnects after errors) and lives until the test process exits.
fn spawn_fake_node(
    mut handler: impl FnMut(Request, Vec<u8>) -> Reply + Send + 'static,
) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    let address = listener.local_addr().unwrap();
    thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            while let Some((request, body)) = read_request(&mut stream) {
                match handler(request, body) {
                    Reply::Frame(response, response_body) => {
                        let body_len_bytes = response_body.len() as u32;
                        let mut frame = encode_response(&response, body_len_bytes);
                        frame.extend_from_slice(&response_body);
                        if stream.write_all(&frame).is_err() {
                            break;
                        }
                    }
                    Reply::Raw(bytes) => {
                        let _ = stream.write_all(&bytes);
                    }
                    Reply::Close => break,
                    Reply::Silence(duration) => {
                        thread::sleep(duration);
                        break;
                    }
                }
            }
        }
    });
    address
}

fn read_request(stream: &mut TcpStream) -> Option<(Request, Vec<u8>)> {
    let mut header_bytes = [0u8; FRAME_HEADER_LEN_BYTES];
    stream.read_exact(&mut header_bytes).ok()?;
    let header = FrameHeader::parse(&header_bytes, FrameLimits::default()).expect("client header");
    let mut message = vec![0u8; header.message_len_bytes as usize];
    stream.read_exact(&mut message).ok()?;
    let mut body = vec![0u8; header.body_len_bytes as usize];
    stream.read_exact(&mut body).ok()?;
    let request = decode_request(&message).expect("client message");
    assert!(
        request.carries_body() || body.is_empty(),
        "the client sent a body with {request:?}"
    );
    Some((request, body))
}

/// The memory node's shards, shared with the test so it can look inside.
type SharedShards = Arc<Mutex<BTreeMap<ShardId, Vec<u8>>>>;

/// A fake node that keeps shards in memory and follows the protocol's semantics.
fn memory_node() -> (SocketAddr, SharedShards) {
    let shards = SharedShards::default();
    let store = Arc::clone(&shards);
    let address = spawn_fake_node(move |request, body| {
        let mut shards = store.lock().unwrap();
        let error = |request_id, code, message: &str| {
            Reply::Frame(
                Response::Error {
                    request_id,
                    code,
                    message: message.to_owned(),
                },
                vec![],
            )
        };
        let ok = |response| Reply::Frame(response, vec![]);
        match request {
            Request::Put {
                request_id,
                shard_id,
                crc32c,
            } => {
                if crc32c::crc32c(&body) != crc32c {
                    return error(request_id, ErrorCode::ChecksumMismatch, "body crc");
                }
                shards.insert(shard_id, body);
                ok(Response::PutOk { request_id })
            }
            Request::Get {
                request_id,
                shard_id,
                range,
                ..
            } => {
                let Some(data) = shards.get(&shard_id) else {
                    return error(request_id, ErrorCode::NotFound, "no such shard");
                };
                let (start, end) = match range {
                    None => (0, data.len()),
                    Some(ByteRange { offset, length }) => {
                        let start = (offset as usize).min(data.len());
                        (start, start + (length as usize).min(data.len() - start))
                    }
                };
                Reply::Frame(
                    Response::GetOk {
                        request_id,
                        shard_length: data.len() as u64,
                        crc32c: crc32c::crc32c(data),
                    },
                    data[start..end].to_vec(),
                )
            }
            Request::Delete {
                request_id,
                shard_id,
            } => ok(Response::DeleteOk {
                request_id,
                existed: shards.remove(&shard_id).is_some(),
            }),
            Request::Stat {
                request_id,
                shard_id,
            } => match shards.get(&shard_id) {
                Some(data) => ok(Response::StatOk {
                    request_id,
                    entry: entry(shard_id, data),
                }),
                None => error(request_id, ErrorCode::NotFound, "no such shard"),
            },
            Request::Scan {
                request_id,
                after,
                limit,
            } => {
                let entries: Vec<ShardEntry> = shards
                    .iter()
                    .filter(|(id, _)| after.is_none_or(|after| **id > after))
                    .take(limit as usize)
                    .map(|(id, data)| entry(*id, data))
                    .collect();
                let next_after = if entries.len() == limit as usize {
                    entries.last().map(|entry| entry.shard_id)
                } else {
                    None
                };
                ok(Response::ScanOk {
                    request_id,
                    entries,
                    next_after,
                })
            }
            Request::Health { request_id } => ok(Response::HealthOk {
                request_id,
                report: HealthReport {
                    cores: 2,
                    shard_count: shards.len() as u64,
                    live_bytes: shards.values().map(|data| data.len() as u64).sum(),
                    ..HealthReport::default()
                },
            }),
        }
    });
    (address, shards)
}

fn entry(shard_id: ShardId, data: &[u8]) -> ShardEntry {
    ShardEntry {
        shard_id,
        length: data.len() as u64,
        crc32c: crc32c::crc32c(data),
    }
}

fn shard(n: u32) -> ShardId {
    ShardId::new(42, 1, n, ShardIndex(0))
}

fn quick_config() -> ClientConfig {
    ClientConfig {
        connect_timeout: Duration::from_secs(2),
        read_timeout: Some(Duration::from_secs(5)),
        write_timeout: Some(Duration::from_secs(5)),
        ..ClientConfig::default()
    }
}

/// A node whose every reply comes from `reply_for`, given the request id to echo.
fn scripted_node(reply_for: impl Fn(u64) -> Reply + Send + 'static) -> StorageClient {
    let address = spawn_fake_node(move |request, _body| reply_for(request.request_id()));
    StorageClient::connect_with_config(address, quick_config()).unwrap()
}

#[test]
fn every_operation_round_trips_against_the_memory_node() {
    let (address, _shards) = memory_node();
    let mut client = StorageClient::connect(address).unwrap();
    assert_eq!(client.peer_addr(), Some(address));

    let small: Vec<u8> = (0..1000u32).map(|n| n as u8).collect();
    // Larger than the coalescing threshold, so header and body go out in separate writes.
    let large: Vec<u8> = (0..(3 << 20) as u32).map(|n| (n * 7) as u8).collect();
    client.put(shard(1), &small).unwrap();
    client.put(shard(2), &large).unwrap();
    client.put(shard(3), &[]).unwrap();

    assert_eq!(client.get(shard(1), None).unwrap(), small);
    assert_eq!(client.get(shard(2), None).unwrap(), large);
    assert_eq!(client.get(shard(3), None).unwrap(), Vec::<u8>::new());
    let range = ByteRange {
        offset: 100,
        length: 50,
    };
    assert_eq!(client.get(shard(1), Some(range)).unwrap(), small[100..150]);
    let past_end = ByteRange {
        offset: 990,
        length: 50,
    };
    assert_eq!(client.get(shard(1), Some(past_end)).unwrap(), small[990..]);

    assert_eq!(client.stat(shard(2)).unwrap(), entry(shard(2), &large));

    let first = client.scan(None, 2).unwrap();
    assert_eq!(
        first,
        ScanPage {
            entries: vec![entry(shard(1), &small), entry(shard(2), &large)],
            next_after: Some(shard(2)),
        }
    );
    let second = client.scan(first.next_after, 2).unwrap();
    assert_eq!(second.entries, vec![entry(shard(3), &[])]);
    assert_eq!(second.next_after, None);

    let health = client.health().unwrap();
    assert_eq!((health.cores, health.shard_count), (2, 3));

    assert!(client.delete(shard(1)).unwrap());
    assert!(!client.delete(shard(1)).unwrap());
    assert!(matches!(
        client.get(shard(1), None),
        Err(ClientError::NotFound { .. })
    ));
    // A node error consumes exactly one frame: the connection stays up and in sync.
    assert!(client.is_connected());
    assert_eq!(client.stat(shard(3)).unwrap().length, 0);
}

#[test]
fn put_with_a_wrong_crc_is_refused_by_the_node() {
    let (address, shards) = memory_node();
    let mut client = StorageClient::connect(address).unwrap();
    let data = b"shard bytes";
    let wrong_crc32c = crc32c::crc32c(data) ^ 1;
    let error = client
        .put_with_crc(shard(1), data, wrong_crc32c)
        .unwrap_err();
    assert!(
        matches!(error, ClientError::ChecksumMismatch { .. }),
        "{error}"
    );
    assert_eq!(error.code(), Some(ErrorCode::ChecksumMismatch));
    assert!(shards.lock().unwrap().is_empty());
    client
        .put_with_crc(shard(1), data, crc32c::crc32c(data))
        .unwrap();
}

#[test]
fn every_error_code_maps_to_its_client_error() {
    let codes = Arc::new(Mutex::new(ErrorCode::ALL.to_vec()));
    let remaining = Arc::clone(&codes);
    let mut client = scripted_node(move |request_id| {
        let code = remaining.lock().unwrap().remove(0);
        Reply::Frame(
            Response::Error {
                request_id,
                code,
                message: format!("because {code:?}"),
            },
            vec![],
        )
    });
    for code in ErrorCode::ALL {
        let error = client.health().unwrap_err();
        assert_eq!(error.code(), Some(code), "{error}");
        let message = match (code, &error) {
            (ErrorCode::NotFound, ClientError::NotFound { message })
            | (ErrorCode::ChecksumMismatch, ClientError::ChecksumMismatch { message })
            | (ErrorCode::NoSpace, ClientError::NoSpace { message })
            | (ErrorCode::TooLarge, ClientError::TooLarge { message })
            | (ErrorCode::BadRequest, ClientError::BadRequest { message })
            | (ErrorCode::Unavailable, ClientError::Unavailable { message })
            | (ErrorCode::Internal, ClientError::Internal { message }) => message,
            _ => panic!("{code:?} mapped to {error:?}"),
        };
        assert_eq!(message, &format!("because {code:?}"));
        assert!(client.is_connected());
    }
}

#[test]
fn unattributed_error_with_request_id_zero_is_reported_as_the_node_error() {
    let mut client = scripted_node(|_| {
        Reply::Frame(
            Response::Error {
                request_id: 0,
                code: ErrorCode::BadRequest,
                message: "unreadable request".to_owned(),
            },
            vec![],
        )
    });
    assert!(matches!(
        client.stat(shard(1)),
        Err(ClientError::BadRequest { .. })
    ));
}

#[test]
fn corrupted_whole_shard_read_is_detected() {
    let mut client = scripted_node(|request_id| {
        Reply::Frame(
            Response::GetOk {
                request_id,
                shard_length: 4,
                crc32c: crc32c::crc32c(b"good"),
            },
            b"b0rk".to_vec(),
        )
    });
    let error = client.get(shard(1), None).unwrap_err();
    assert!(
        matches!(
            error,
            ClientError::ReceivedChecksumMismatch { expected_crc32c, actual_crc32c }
                if expected_crc32c == crc32c::crc32c(b"good")
                    && actual_crc32c == crc32c::crc32c(b"b0rk")
        ),
        "{error}"
    );
    // The frame was read whole, so the connection is still in sync.
    assert!(client.is_connected());
    // A ranged read cannot be checked against the whole-shard CRC, so it passes through.
    let range = ByteRange {
        offset: 0,
        length: 4,
    };
    assert_eq!(client.get(shard(1), Some(range)).unwrap(), b"b0rk");
}

#[test]
fn get_body_of_the_wrong_length_is_a_protocol_error() {
    let mut client = scripted_node(|request_id| {
        Reply::Frame(
            Response::GetOk {
                request_id,
                shard_length: 10,
                crc32c: 0,
            },
            vec![0; 3],
        )
    });
    let error = client.get(shard(1), None).unwrap_err();
    assert!(
        matches!(
            error,
            ClientError::Protocol(ProtocolError::BodyLengthMismatch {
                expected_bytes: 10,
                received_bytes: 3
            })
        ),
        "{error}"
    );
    assert!(!client.is_connected());
}

#[test]
fn mismatched_request_id_drops_the_connection_and_the_next_call_reconnects() {
    let calls = Arc::new(Mutex::new(0u32));
    let counter = Arc::clone(&calls);
    let mut client = scripted_node(move |request_id| {
        let mut calls = counter.lock().unwrap();
        *calls += 1;
        let echoed = if *calls == 1 {
            request_id + 100
        } else {
            request_id
        };
        Reply::Frame(
            Response::DeleteOk {
                request_id: echoed,
                existed: true,
            },
            vec![],
        )
    });
    let error = client.delete(shard(1)).unwrap_err();
    assert!(
        matches!(
            error,
            ClientError::Protocol(ProtocolError::RequestIdMismatch {
                sent: 1,
                received: 101
            })
        ),
        "{error}"
    );
    assert!(!client.is_connected());
    assert!(client.delete(shard(1)).unwrap());
    assert!(client.is_connected());
}

#[test]
fn unexpected_response_type_is_a_protocol_error() {
    let mut client =
        scripted_node(|request_id| Reply::Frame(Response::PutOk { request_id }, vec![]));
    let error = client.health().unwrap_err();
    assert!(
        matches!(
            error,
            ClientError::Protocol(ProtocolError::UnexpectedResponse {
                expected: "HealthOk",
                received: "PutOk"
            })
        ),
        "{error}"
    );
}

#[test]
fn body_on_a_bodiless_response_is_a_protocol_error() {
    let mut client =
        scripted_node(|request_id| Reply::Frame(Response::PutOk { request_id }, vec![1, 2, 3]));
    let error = client.put(shard(1), b"x").unwrap_err();
    assert!(
        matches!(
            error,
            ClientError::Protocol(ProtocolError::UnexpectedBody {
                response: "PutOk",
                body_len_bytes: 3
            })
        ),
        "{error}"
    );
}

#[test]
fn garbage_header_is_a_wire_error() {
    let mut client = scripted_node(|_| Reply::Raw(b"HTTP/1.1 400 Bad Request\r\n\r\n".to_vec()));
    let error = client.health().unwrap_err();
    assert!(
        matches!(
            error,
            ClientError::Protocol(ProtocolError::Wire(WireError::BadMagic { .. }))
        ),
        "{error}"
    );
    assert!(!client.is_connected());
}

#[test]
fn garbage_message_is_a_wire_error() {
    let mut client = scripted_node(|_| {
        let mut frame = FrameHeader::new(8, 0).encode().to_vec();
        frame.extend_from_slice(&[0xFF; 8]);
        Reply::Raw(frame)
    });
    let error = client.health().unwrap_err();
    assert!(
        matches!(
            error,
            ClientError::Protocol(ProtocolError::Wire(WireError::InvalidMessage(_)))
        ),
        "{error}"
    );
}

#[test]
fn response_body_over_the_client_limit_is_refused_before_reading_it() {
    let address = spawn_fake_node(|request, _| {
        Reply::Frame(
            Response::GetOk {
                request_id: request.request_id(),
                shard_length: 2048,
                crc32c: 0,
            },
            vec![0; 2048],
        )
    });
    let config = ClientConfig {
        limits: FrameLimits {
            max_body_len_bytes: 1024,
        },
        ..quick_config()
    };
    let mut client = StorageClient::connect_with_config(address, config).unwrap();
    let error = client.get(shard(1), None).unwrap_err();
    assert!(
        matches!(
            error,
            ClientError::Protocol(ProtocolError::Wire(WireError::BodyTooLarge {
                length_bytes: 2048,
                max_bytes: 1024
            }))
        ),
        "{error}"
    );
}

#[test]
fn node_closing_the_connection_is_an_io_error() {
    let mut client = scripted_node(|_| Reply::Close);
    let error = client.stat(shard(1)).unwrap_err();
    assert!(
        matches!(&error, ClientError::Io(io) if io.kind() == ErrorKind::UnexpectedEof),
        "{error}"
    );
    assert_eq!(error.code(), None);
}

#[test]
fn silent_node_hits_the_read_timeout() {
    let address = spawn_fake_node(|_, _| Reply::Silence(Duration::from_secs(3)));
    let config = ClientConfig {
        read_timeout: Some(Duration::from_millis(200)),
        ..quick_config()
    };
    let mut client = StorageClient::connect_with_config(address, config).unwrap();
    let started = Instant::now();
    let error = client.health().unwrap_err();
    assert!(
        matches!(&error, ClientError::Io(io)
            if matches!(io.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut)),
        "{error}"
    );
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[test]
fn connecting_to_a_closed_port_is_an_io_error() {
    // Bind then drop a listener to find a port that is very likely closed.
    let address = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let error = StorageClient::connect_with_config(address, quick_config()).unwrap_err();
    assert!(matches!(error, ClientError::Io(_)), "{error}");
}
