//! One client connection: read a frame, run its operation, write the answer, repeat.
//!
//! One request is in flight per connection (clients open several connections for concurrency). A
//! frame that cannot be parsed gets an error reply with request id 0 and the connection closes,
//! because the reader can no longer find the next frame boundary.

use crate::core::{Core, Operation, OperationError, Outcome};
use bytes::Bytes;
use cairn_wire::{
    ByteRange, ErrorCode, FRAME_HEADER_LEN_BYTES, FrameHeader, FrameLimits, HealthReport,
    MAX_SCAN_ENTRIES_PER_RESPONSE, Request, Response, ShardEntry, WireError, decode_request,
    encode_response,
};
use futures_lite::io::BufReader;
use futures_lite::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use glommio::net::{Preallocated, TcpStream};
use std::io;
use std::rc::Rc;

/// Bodies up to this size are sent in the same write as their header.
const COALESCE_BODY_BYTES: usize = 64 << 10;

/// Read buffer per connection: a small request's header, message and body arrive in one system
/// call; bodies larger than the buffer are read straight into their own allocation.
const READ_BUFFER_BYTES: usize = 64 << 10;

pub async fn serve(stream: TcpStream, core: Rc<Core>) -> io::Result<()> {
    stream.set_nodelay(true)?;
    // Also bounds the TLS handshake: a peer that stalls it is dropped like an idle one.
    stream.set_read_timeout(Some(core.config.idle_timeout))?;
    match core.config.tls.clone() {
        Some(tls) => {
            // The handshake verifies the client's certificate (CA, CRL, role); a peer without
            // an acceptable one is dropped here, before any request is read.
            let peer = stream.peer_addr()?;
            let local = stream.local_addr()?;
            let generation = tls.check.before_handshake();
            // rustls reads at most 4 KiB from its transport at a time; a receive buffer turns
            // the many small reads of a large piece into one system call per 64 KiB.
            let stream = stream.buffered_with(Preallocated::new(READ_BUFFER_BYTES));
            let stream = match futures_rustls::TlsAcceptor::from(tls.config_for(local, peer))
                .accept(stream)
                .await
            {
                Ok(stream) => stream,
                Err(error) => {
                    tracing::info!(%peer, %error, "TLS handshake refused");
                    return Err(error);
                }
            };
            let Some(certificate) = tls
                .check
                .peer(generation, stream.get_ref().1.peer_certificates())
            else {
                return Ok(());
            };
            let switches = tls.switches(stream.get_ref().1.alpn_protocol());
            let revalidation = Revalidation {
                check: tls.check,
                certificate,
            };
            // An authenticated loopback connection continues in plaintext (the handshake
            // selected it only when both ends are loopback; see `cairn_tls`).
            if switches {
                let mut stream = stream;
                stream.write_all(cairn_tls::LOOPBACK_PLAINTEXT_ACK).await?;
                stream.flush().await?;
                let (stream, _) = stream.into_inner();
                return serve_stream(stream, core, Some(revalidation)).await;
            }
            serve_stream(stream, core, Some(revalidation)).await
        }
        None => serve_stream(stream, core, None).await,
    }
}

/// A TLS connection's peer, checked again before each request.
struct Revalidation {
    check: cairn_tls::PeerCheck,
    certificate: cairn_tls::PeerCertificate,
}

async fn serve_stream<S: AsyncRead + AsyncWrite + Unpin>(
    stream: S,
    core: Rc<Core>,
    mut revalidation: Option<Revalidation>,
) -> io::Result<()> {
    let mut stream = BufReader::with_capacity(READ_BUFFER_BYTES, stream);
    let limits = FrameLimits {
        max_body_len_bytes: core.config.max_body_len_bytes,
    };
    loop {
        let mut header_bytes = [0u8; FRAME_HEADER_LEN_BYTES];
        match stream.read_exact(&mut header_bytes).await {
            Ok(()) => {}
            Err(error) if error.kind() == io::ErrorKind::UnexpectedEof => return Ok(()),
            Err(error) => return Err(error),
        }
        let header = match FrameHeader::parse(&header_bytes, limits) {
            Ok(header) => header,
            Err(error) => return refuse(&mut stream, 0, &error).await,
        };
        let mut message = vec![0u8; header.message_len_bytes as usize];
        stream.read_exact(&mut message).await?;
        let request = match decode_request(&message) {
            Ok(request) => request,
            Err(error) => return refuse(&mut stream, 0, &error).await,
        };
        // A certificate revoked since the handshake: nothing more is served on this connection.
        if let Some(peer) = revalidation.as_mut()
            && !peer.check.still_trusted(&mut peer.certificate)
        {
            tracing::info!("closing a connection whose client certificate is no longer trusted");
            return Ok(());
        }
        if header.body_len_bytes > 0 && !request.carries_body() {
            let response = error_response(
                request.request_id(),
                ErrorCode::BadRequest,
                "this request takes no body",
            );
            return send(&mut stream, &response, None).await;
        }
        // A put for this core's own log is read straight into an O_DIRECT record buffer; one for
        // another core is read into memory and handed over (buffers of the disk's I/O memory
        // belong to the core that allocated them).
        if let Request::Put {
            request_id,
            shard_id,
            crc32c,
        } = request
            && header.body_len_bytes > 0
            && core.owns(&shard_id)
        {
            let mut record = match core.log.alloc_record_buffer(header.body_len_bytes as usize) {
                Ok(record) => record,
                Err(error) => {
                    let error = crate::core::OperationError::from(error);
                    let response = error_response(request_id, error.code, &error.message);
                    return send(&mut stream, &response, None).await;
                }
            };
            stream.read_exact(record.payload_mut()).await?;
            let response = match core.put_record(shard_id, record, crc32c).await {
                Ok(_) => Response::PutOk { request_id },
                Err(error) => error_response(request_id, error.code, &error.message),
            };
            send(&mut stream, &response, None).await?;
            continue;
        }
        let body = if header.body_len_bytes > 0 {
            let mut body = vec![0u8; header.body_len_bytes as usize];
            stream.read_exact(&mut body).await?;
            Bytes::from(body)
        } else {
            Bytes::new()
        };
        let (response, body) = handle(&core, request, body).await;
        send(&mut stream, &response, body).await?;
    }
}

async fn refuse<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut BufReader<S>,
    request_id: u64,
    error: &WireError,
) -> io::Result<()> {
    let code = match error {
        WireError::MessageTooLarge { .. } | WireError::BodyTooLarge { .. } => ErrorCode::TooLarge,
        _ => ErrorCode::BadRequest,
    };
    tracing::debug!(%error, "refusing a malformed frame");
    send(
        stream,
        &error_response(request_id, code, &error.to_string()),
        None,
    )
    .await?;
    stream.get_mut().close().await
}

fn error_response(request_id: u64, code: ErrorCode, message: &str) -> Response {
    Response::Error {
        request_id,
        code,
        message: message.to_string(),
    }
}

async fn send<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut BufReader<S>,
    response: &Response,
    body: Option<Bytes>,
) -> io::Result<()> {
    let stream = stream.get_mut();
    let body_len = body.as_ref().map_or(0, |body| body.len());
    let mut frame = encode_response(response, body_len as u32);
    match body {
        Some(body) if body.len() <= COALESCE_BODY_BYTES => {
            frame.extend_from_slice(&body);
            stream.write_all(&frame).await?;
        }
        Some(body) => {
            stream.write_all(&frame).await?;
            stream.write_all(&body).await?;
        }
        None => stream.write_all(&frame).await?,
    }
    stream.flush().await
}

fn report_error(request_id: u64, error: OperationError) -> (Response, Option<Bytes>) {
    (error_response(request_id, error.code, &error.message), None)
}

fn entry(stat: &cairn_shardlog::ShardStat) -> ShardEntry {
    ShardEntry {
        shard_id: stat.shard_id,
        length: stat.length,
        crc32c: stat.crc32c,
    }
}

async fn handle(core: &Core, request: Request, body: Bytes) -> (Response, Option<Bytes>) {
    let request_id = request.request_id();
    match request {
        Request::Put {
            shard_id, crc32c, ..
        } => {
            match core
                .execute(Operation::Put {
                    shard_id,
                    data: body,
                    crc32c,
                })
                .await
            {
                Ok(_) => (Response::PutOk { request_id }, None),
                Err(error) => report_error(request_id, error),
            }
        }
        Request::Get {
            shard_id,
            range,
            from_disk,
            ..
        } => {
            let range = range.map(|ByteRange { offset, length }| (offset, length));
            let operation = Operation::Get {
                shard_id,
                range,
                from_disk,
            };
            match core.execute(operation).await {
                Ok(Outcome::Read(read)) => (
                    Response::GetOk {
                        request_id,
                        shard_length: read.shard_length,
                        crc32c: read.crc32c,
                    },
                    Some(read.data),
                ),
                Ok(_) => unexpected(request_id),
                Err(error) => report_error(request_id, error),
            }
        }
        Request::Delete { shard_id, .. } => {
            match core.execute(Operation::Delete { shard_id }).await {
                Ok(Outcome::Deleted(existed)) => (
                    Response::DeleteOk {
                        request_id,
                        existed,
                    },
                    None,
                ),
                Ok(_) => unexpected(request_id),
                Err(error) => report_error(request_id, error),
            }
        }
        Request::Stat { shard_id, .. } => match core.execute(Operation::Stat { shard_id }).await {
            Ok(Outcome::Stat(Some(stat))) => (
                Response::StatOk {
                    request_id,
                    entry: entry(&stat),
                },
                None,
            ),
            Ok(Outcome::Stat(None)) => report_error(
                request_id,
                OperationError {
                    code: ErrorCode::NotFound,
                    message: "shard not found".into(),
                },
            ),
            Ok(_) => unexpected(request_id),
            Err(error) => report_error(request_id, error),
        },
        Request::Scan { after, limit, .. } => {
            let limit = (limit as usize).clamp(1, MAX_SCAN_ENTRIES_PER_RESPONSE);
            // Every core holds an ordered slice of the key space: ask each for `limit` entries after
            // the cursor and merge.
            let mut merged = Vec::new();
            for target in 0..core.log_count() {
                match core.forward(target, Operation::Scan { after, limit }).await {
                    Ok(Outcome::Scanned(entries)) => merged.extend(entries),
                    Ok(_) => return unexpected(request_id),
                    Err(error) => return report_error(request_id, error),
                }
            }
            merged.sort_unstable_by_key(|stat| stat.shard_id);
            merged.truncate(limit);
            let next_after = (merged.len() == limit).then(|| merged[limit - 1].shard_id);
            let entries = merged.iter().map(entry).collect();
            (
                Response::ScanOk {
                    request_id,
                    entries,
                    next_after,
                },
                None,
            )
        }
        Request::Health { .. } => {
            let mut report = HealthReport {
                cores: core.log_count() as u32,
                ..HealthReport::default()
            };
            for target in 0..core.log_count() {
                match core.forward(target, Operation::Stats).await {
                    Ok(Outcome::Stats(stats)) => {
                        report.used_bytes += stats.used_bytes;
                        report.live_bytes += stats.live_bytes;
                        report.shard_count += stats.shard_count;
                        report.segment_count += stats.segment_count;
                        report.io_errors += stats.io_errors;
                        report.checksum_errors += stats.checksum_errors;
                        report.cache_capacity_bytes += stats.cache.capacity_bytes;
                        report.cache_used_bytes += stats.cache.used_bytes;
                        report.cache_hits += stats.cache.hits;
                        report.cache_misses += stats.cache.misses;
                        report.cache_evictions += stats.cache.evictions;
                        report.compactions += stats.compactions;
                        report.compacted_bytes_reclaimed += stats.compacted_bytes_reclaimed;
                    }
                    Ok(_) => return unexpected(request_id),
                    Err(error) => return report_error(request_id, error),
                }
            }
            report.capacity_bytes = file_system_capacity_bytes(&core.config.data_dir).unwrap_or(0);
            (Response::HealthOk { request_id, report }, None)
        }
    }
}

fn unexpected(request_id: u64) -> (Response, Option<Bytes>) {
    report_error(
        request_id,
        OperationError {
            code: ErrorCode::Internal,
            message: "unexpected outcome".into(),
        },
    )
}

/// Size of the file system holding the data directory.
fn file_system_capacity_bytes(path: &std::path::Path) -> Option<u64> {
    let stat = nix::sys::statvfs::statvfs(path).ok()?;
    Some(stat.blocks() as u64 * stat.fragment_size() as u64)
}
