//! Typed requests and responses, and their translation to and from the generated flatbuffers code.
//!
//! The typed enums are the crate's API; the generated types never leak out of this module's
//! signatures, so a schema change shows up as a compile error here rather than in every caller.
//! Encoding is total (every value encodes, within [`MAX_MESSAGE_LEN_BYTES`]); decoding verifies the
//! buffer first and rejects anything this version does not know, without panicking.

use cairn_common::ShardId;
use flatbuffers::{FlatBufferBuilder, VerifierOptions};

use crate::error::WireError;
use crate::frame::{FRAME_HEADER_LEN_BYTES, FrameHeader, MAX_MESSAGE_LEN_BYTES, PROTOCOL_VERSION};
use crate::generated::cairn::wire::storage as fb;

/// Most entries one scan response carries. A `ShardEntry` takes 48 bytes in the message, so 1024
/// entries (48 KiB) leave ample room under the 64 KiB message limit. Nodes should clamp a request's
/// `limit` to this; [`encode_response`] enforces it anyway.
pub const MAX_SCAN_ENTRIES_PER_RESPONSE: usize = 1024;

/// Longest error text carried in an error response; longer texts are cut at a character boundary.
pub const MAX_ERROR_MESSAGE_LEN_BYTES: usize = 4096;

// The largest possible message (a full scan page plus table overhead) must fit the frame limit.
const _: () = assert!(
    MAX_SCAN_ENTRIES_PER_RESPONSE * 48 + 2 * ShardId::LEN + 1024 < MAX_MESSAGE_LEN_BYTES as usize
);
const _: () = assert!(MAX_ERROR_MESSAGE_LEN_BYTES + 1024 < MAX_MESSAGE_LEN_BYTES as usize);

/// A byte range within a shard: `length` bytes starting at byte `offset`. A node clips the range to
/// the shard's end, so a Get response body holds `min(length, shard_length - offset)` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ByteRange {
    pub offset: u64,
    pub length: u64,
}

/// What a node knows about one stored shard: its length in bytes and the CRC32C of all of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ShardEntry {
    pub shard_id: ShardId,
    pub length: u64,
    pub crc32c: u32,
}

/// A node's health and usage counters. Byte counts are in bytes; the other counters count events
/// since the node started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct HealthReport {
    pub cores: u32,
    pub capacity_bytes: u64,
    pub used_bytes: u64,
    pub live_bytes: u64,
    pub shard_count: u64,
    pub segment_count: u64,
    pub io_errors: u64,
    pub checksum_errors: u64,
    pub cache_capacity_bytes: u64,
    pub cache_used_bytes: u64,
    pub cache_hits: u64,
    pub cache_misses: u64,
    pub cache_evictions: u64,
    pub compactions: u64,
    pub compacted_bytes_reclaimed: u64,
}

/// Why a node refused or failed a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// The shard is not stored on this node (Get, Stat).
    NotFound,
    /// Put: the body does not match the request's CRC32C. Get: the stored data failed its check.
    ChecksumMismatch,
    /// The node has no room for the shard; retry elsewhere.
    NoSpace,
    /// The shard or body exceeds what the node accepts.
    TooLarge,
    /// The request is well-formed on the wire but makes no sense (range past the end, body on a
    /// request that takes none, ...).
    BadRequest,
    /// The node cannot serve now (starting, shutting down, overloaded); retry later or elsewhere.
    Unavailable,
    /// A bug or an unexpected I/O failure on the node.
    Internal,
}

impl ErrorCode {
    pub const ALL: [ErrorCode; 7] = [
        ErrorCode::NotFound,
        ErrorCode::ChecksumMismatch,
        ErrorCode::NoSpace,
        ErrorCode::TooLarge,
        ErrorCode::BadRequest,
        ErrorCode::Unavailable,
        ErrorCode::Internal,
    ];

    fn to_generated(self) -> fb::ErrorCode {
        match self {
            ErrorCode::NotFound => fb::ErrorCode::NotFound,
            ErrorCode::ChecksumMismatch => fb::ErrorCode::ChecksumMismatch,
            ErrorCode::NoSpace => fb::ErrorCode::NoSpace,
            ErrorCode::TooLarge => fb::ErrorCode::TooLarge,
            ErrorCode::BadRequest => fb::ErrorCode::BadRequest,
            ErrorCode::Unavailable => fb::ErrorCode::Unavailable,
            ErrorCode::Internal => fb::ErrorCode::Internal,
        }
    }

    fn from_generated(code: fb::ErrorCode) -> Result<ErrorCode, WireError> {
        // `fb::ErrorCode` is an open newtype over u16, so a newer peer's codes land in `_`.
        Ok(match code {
            fb::ErrorCode::NotFound => ErrorCode::NotFound,
            fb::ErrorCode::ChecksumMismatch => ErrorCode::ChecksumMismatch,
            fb::ErrorCode::NoSpace => ErrorCode::NoSpace,
            fb::ErrorCode::TooLarge => ErrorCode::TooLarge,
            fb::ErrorCode::BadRequest => ErrorCode::BadRequest,
            fb::ErrorCode::Unavailable => ErrorCode::Unavailable,
            fb::ErrorCode::Internal => ErrorCode::Internal,
            other => return Err(WireError::UnknownErrorCode(other.0)),
        })
    }
}

/// A request from a client (gateway, worker, tool) to a storage node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// Store a shard. Its data is the frame body; `crc32c` covers all of it and the node checks it
    /// before acknowledging.
    Put {
        request_id: u64,
        shard_id: ShardId,
        crc32c: u32,
    },
    /// Read a whole shard (`range: None`) or part of it; the data comes back as the response body.
    Get {
        request_id: u64,
        shard_id: ShardId,
        range: Option<ByteRange>,
        /// Skip the node's hot-shard cache: read and check the bytes on disk (the scrubber).
        from_disk: bool,
    },
    Delete {
        request_id: u64,
        shard_id: ShardId,
    },
    Stat {
        request_id: u64,
        shard_id: ShardId,
    },
    /// List up to `limit` shards in ascending id order, strictly after `after` (from the first
    /// shard when `None`).
    Scan {
        request_id: u64,
        after: Option<ShardId>,
        limit: u32,
    },
    Health {
        request_id: u64,
    },
}

impl Request {
    pub fn request_id(&self) -> u64 {
        match *self {
            Request::Put { request_id, .. }
            | Request::Get { request_id, .. }
            | Request::Delete { request_id, .. }
            | Request::Stat { request_id, .. }
            | Request::Scan { request_id, .. }
            | Request::Health { request_id } => request_id,
        }
    }

    /// Whether a frame carrying this request has a body (only Put does). A node answers
    /// `BadRequest` to a body on any other request.
    pub fn carries_body(&self) -> bool {
        matches!(self, Request::Put { .. })
    }
}

/// A storage node's answer to one [`Request`], carrying the same `request_id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Response {
    PutOk {
        request_id: u64,
    },
    /// The frame body holds the requested bytes; `shard_length` (bytes) and `crc32c` describe the
    /// whole shard, so a reader of the whole shard can check what it received.
    GetOk {
        request_id: u64,
        shard_length: u64,
        crc32c: u32,
    },
    DeleteOk {
        request_id: u64,
        existed: bool,
    },
    StatOk {
        request_id: u64,
        entry: ShardEntry,
    },
    /// `next_after` is `Some` when more shards may follow: pass it as the next scan's `after`.
    ScanOk {
        request_id: u64,
        entries: Vec<ShardEntry>,
        next_after: Option<ShardId>,
    },
    HealthOk {
        request_id: u64,
        report: HealthReport,
    },
    Error {
        request_id: u64,
        code: ErrorCode,
        message: String,
    },
}

impl Response {
    pub fn request_id(&self) -> u64 {
        match *self {
            Response::PutOk { request_id }
            | Response::GetOk { request_id, .. }
            | Response::DeleteOk { request_id, .. }
            | Response::StatOk { request_id, .. }
            | Response::ScanOk { request_id, .. }
            | Response::HealthOk { request_id, .. }
            | Response::Error { request_id, .. } => request_id,
        }
    }

    /// Whether a frame carrying this response has a body (only GetOk does).
    pub fn carries_body(&self) -> bool {
        matches!(self, Response::GetOk { .. })
    }
}

/// Encodes `request` as a frame header plus message. The caller writes exactly `body_len_bytes` of
/// body after it (the shard data of a Put; zero for every other request).
pub fn encode_request(request: &Request, body_len_bytes: u32) -> Vec<u8> {
    let mut builder = FlatBufferBuilder::with_capacity(128);
    let (body_type, body) = match request {
        Request::Put {
            shard_id, crc32c, ..
        } => {
            let shard_id = to_generated_id(shard_id);
            let args = fb::PutRequestArgs {
                shard_id: Some(&shard_id),
                crc32c: *crc32c,
            };
            let offset = fb::PutRequest::create(&mut builder, &args);
            (fb::RequestBody::PutRequest, offset.as_union_value())
        }
        Request::Get {
            shard_id,
            range,
            from_disk,
            ..
        } => {
            let shard_id = to_generated_id(shard_id);
            let range = range.map(|range| fb::ByteRange::new(range.offset, range.length));
            let args = fb::GetRequestArgs {
                shard_id: Some(&shard_id),
                range: range.as_ref(),
                from_disk: *from_disk,
            };
            let offset = fb::GetRequest::create(&mut builder, &args);
            (fb::RequestBody::GetRequest, offset.as_union_value())
        }
        Request::Delete { shard_id, .. } => {
            let shard_id = to_generated_id(shard_id);
            let args = fb::DeleteRequestArgs {
                shard_id: Some(&shard_id),
            };
            let offset = fb::DeleteRequest::create(&mut builder, &args);
            (fb::RequestBody::DeleteRequest, offset.as_union_value())
        }
        Request::Stat { shard_id, .. } => {
            let shard_id = to_generated_id(shard_id);
            let args = fb::StatRequestArgs {
                shard_id: Some(&shard_id),
            };
            let offset = fb::StatRequest::create(&mut builder, &args);
            (fb::RequestBody::StatRequest, offset.as_union_value())
        }
        Request::Scan { after, limit, .. } => {
            let after = after.as_ref().map(to_generated_id);
            let args = fb::ScanRequestArgs {
                after: after.as_ref(),
                limit: *limit,
            };
            let offset = fb::ScanRequest::create(&mut builder, &args);
            (fb::RequestBody::ScanRequest, offset.as_union_value())
        }
        Request::Health { .. } => {
            let offset = fb::HealthRequest::create(&mut builder, &fb::HealthRequestArgs {});
            (fb::RequestBody::HealthRequest, offset.as_union_value())
        }
    };
    let args = fb::RequestMessageArgs {
        protocol_version: PROTOCOL_VERSION,
        request_id: request.request_id(),
        body_type,
        body: Some(body),
    };
    let message = fb::RequestMessage::create(&mut builder, &args);
    builder.finish(message, None);
    frame(builder.finished_data(), body_len_bytes)
}

/// Encodes `response` as a frame header plus message; the caller writes `body_len_bytes` of body
/// after it (the data of a GetOk; zero otherwise).
///
/// To keep every message under the frame limit, an error message longer than
/// [`MAX_ERROR_MESSAGE_LEN_BYTES`] is truncated, and a scan page longer than
/// [`MAX_SCAN_ENTRIES_PER_RESPONSE`] is cut there with `next_after` set to the last entry sent —
/// which stays correct because scan entries are in ascending id order, so the client resumes right
/// after the last entry it received.
pub fn encode_response(response: &Response, body_len_bytes: u32) -> Vec<u8> {
    let mut builder = FlatBufferBuilder::with_capacity(128);
    let (body_type, body) = match response {
        Response::PutOk { .. } => {
            let offset = fb::PutOk::create(&mut builder, &fb::PutOkArgs {});
            (fb::ResponseBody::PutOk, offset.as_union_value())
        }
        Response::GetOk {
            shard_length,
            crc32c,
            ..
        } => {
            let args = fb::GetOkArgs {
                shard_length: *shard_length,
                crc32c: *crc32c,
            };
            let offset = fb::GetOk::create(&mut builder, &args);
            (fb::ResponseBody::GetOk, offset.as_union_value())
        }
        Response::DeleteOk { existed, .. } => {
            let args = fb::DeleteOkArgs { existed: *existed };
            let offset = fb::DeleteOk::create(&mut builder, &args);
            (fb::ResponseBody::DeleteOk, offset.as_union_value())
        }
        Response::StatOk { entry, .. } => {
            let entry = to_generated_entry(entry);
            let args = fb::StatOkArgs {
                entry: Some(&entry),
            };
            let offset = fb::StatOk::create(&mut builder, &args);
            (fb::ResponseBody::StatOk, offset.as_union_value())
        }
        Response::ScanOk {
            entries,
            next_after,
            ..
        } => {
            let (entries, next_after) = if entries.len() > MAX_SCAN_ENTRIES_PER_RESPONSE {
                let sent = &entries[..MAX_SCAN_ENTRIES_PER_RESPONSE];
                (sent, sent.last().map(|entry| entry.shard_id))
            } else {
                (&entries[..], *next_after)
            };
            let generated_entries: Vec<fb::ShardEntry> =
                entries.iter().map(to_generated_entry).collect();
            let entries_offset = builder.create_vector(&generated_entries);
            let next_after = next_after.as_ref().map(to_generated_id);
            let args = fb::ScanOkArgs {
                entries: Some(entries_offset),
                next_after: next_after.as_ref(),
            };
            let offset = fb::ScanOk::create(&mut builder, &args);
            (fb::ResponseBody::ScanOk, offset.as_union_value())
        }
        Response::HealthOk { report, .. } => {
            let report_offset = fb::HealthReport::create(
                &mut builder,
                &fb::HealthReportArgs {
                    cores: report.cores,
                    capacity_bytes: report.capacity_bytes,
                    used_bytes: report.used_bytes,
                    live_bytes: report.live_bytes,
                    shard_count: report.shard_count,
                    segment_count: report.segment_count,
                    io_errors: report.io_errors,
                    checksum_errors: report.checksum_errors,
                    cache_capacity_bytes: report.cache_capacity_bytes,
                    cache_used_bytes: report.cache_used_bytes,
                    cache_hits: report.cache_hits,
                    cache_misses: report.cache_misses,
                    cache_evictions: report.cache_evictions,
                    compactions: report.compactions,
                    compacted_bytes_reclaimed: report.compacted_bytes_reclaimed,
                },
            );
            let args = fb::HealthOkArgs {
                report: Some(report_offset),
            };
            let offset = fb::HealthOk::create(&mut builder, &args);
            (fb::ResponseBody::HealthOk, offset.as_union_value())
        }
        Response::Error { code, message, .. } => {
            let message_offset = builder.create_string(truncate_at_char_boundary(
                message,
                MAX_ERROR_MESSAGE_LEN_BYTES,
            ));
            let args = fb::ErrorResponseArgs {
                code: code.to_generated(),
                message: Some(message_offset),
            };
            let offset = fb::ErrorResponse::create(&mut builder, &args);
            (fb::ResponseBody::ErrorResponse, offset.as_union_value())
        }
    };
    let args = fb::ResponseMessageArgs {
        protocol_version: PROTOCOL_VERSION,
        request_id: response.request_id(),
        body_type,
        body: Some(body),
    };
    let message = fb::ResponseMessage::create(&mut builder, &args);
    builder.finish(message, None);
    frame(builder.finished_data(), body_len_bytes)
}

/// Decodes the message part of a request frame (the `message_len` bytes after the header).
pub fn decode_request(message: &[u8]) -> Result<Request, WireError> {
    check_message_len(message)?;
    let root = flatbuffers::root_with_opts::<fb::RequestMessage>(&verifier_options(), message)
        .map_err(|error| WireError::InvalidMessage(error.to_string()))?;
    check_message_version(root.protocol_version())?;
    let request_id = root.request_id();
    let body_type = root.body_type();
    let missing = || WireError::MissingBody;
    Ok(match body_type {
        fb::RequestBody::PutRequest => {
            let body = root.body_as_put_request().ok_or_else(missing)?;
            Request::Put {
                request_id,
                shard_id: from_generated_id(body.shard_id()),
                crc32c: body.crc32c(),
            }
        }
        fb::RequestBody::GetRequest => {
            let body = root.body_as_get_request().ok_or_else(missing)?;
            Request::Get {
                request_id,
                shard_id: from_generated_id(body.shard_id()),
                range: body.range().map(|range| ByteRange {
                    offset: range.offset(),
                    length: range.length(),
                }),
                from_disk: body.from_disk(),
            }
        }
        fb::RequestBody::DeleteRequest => {
            let body = root.body_as_delete_request().ok_or_else(missing)?;
            Request::Delete {
                request_id,
                shard_id: from_generated_id(body.shard_id()),
            }
        }
        fb::RequestBody::StatRequest => {
            let body = root.body_as_stat_request().ok_or_else(missing)?;
            Request::Stat {
                request_id,
                shard_id: from_generated_id(body.shard_id()),
            }
        }
        fb::RequestBody::ScanRequest => {
            let body = root.body_as_scan_request().ok_or_else(missing)?;
            Request::Scan {
                request_id,
                after: body.after().map(from_generated_id),
                limit: body.limit(),
            }
        }
        fb::RequestBody::HealthRequest => {
            root.body_as_health_request().ok_or_else(missing)?;
            Request::Health { request_id }
        }
        fb::RequestBody::NONE => return Err(WireError::MissingBody),
        other => {
            return Err(WireError::UnknownMessageType {
                kind: "request",
                value: other.0,
            });
        }
    })
}

/// Decodes the message part of a response frame (the `message_len` bytes after the header).
pub fn decode_response(message: &[u8]) -> Result<Response, WireError> {
    check_message_len(message)?;
    let root = flatbuffers::root_with_opts::<fb::ResponseMessage>(&verifier_options(), message)
        .map_err(|error| WireError::InvalidMessage(error.to_string()))?;
    check_message_version(root.protocol_version())?;
    let request_id = root.request_id();
    let missing = || WireError::MissingBody;
    Ok(match root.body_type() {
        fb::ResponseBody::PutOk => {
            root.body_as_put_ok().ok_or_else(missing)?;
            Response::PutOk { request_id }
        }
        fb::ResponseBody::GetOk => {
            let body = root.body_as_get_ok().ok_or_else(missing)?;
            Response::GetOk {
                request_id,
                shard_length: body.shard_length(),
                crc32c: body.crc32c(),
            }
        }
        fb::ResponseBody::DeleteOk => {
            let body = root.body_as_delete_ok().ok_or_else(missing)?;
            Response::DeleteOk {
                request_id,
                existed: body.existed(),
            }
        }
        fb::ResponseBody::StatOk => {
            let body = root.body_as_stat_ok().ok_or_else(missing)?;
            Response::StatOk {
                request_id,
                entry: from_generated_entry(body.entry()),
            }
        }
        fb::ResponseBody::ScanOk => {
            let body = root.body_as_scan_ok().ok_or_else(missing)?;
            Response::ScanOk {
                request_id,
                entries: body.entries().iter().map(from_generated_entry).collect(),
                next_after: body.next_after().map(from_generated_id),
            }
        }
        fb::ResponseBody::HealthOk => {
            let report = root.body_as_health_ok().ok_or_else(missing)?.report();
            Response::HealthOk {
                request_id,
                report: HealthReport {
                    cores: report.cores(),
                    capacity_bytes: report.capacity_bytes(),
                    used_bytes: report.used_bytes(),
                    live_bytes: report.live_bytes(),
                    shard_count: report.shard_count(),
                    segment_count: report.segment_count(),
                    io_errors: report.io_errors(),
                    checksum_errors: report.checksum_errors(),
                    cache_capacity_bytes: report.cache_capacity_bytes(),
                    cache_used_bytes: report.cache_used_bytes(),
                    cache_hits: report.cache_hits(),
                    cache_misses: report.cache_misses(),
                    cache_evictions: report.cache_evictions(),
                    compactions: report.compactions(),
                    compacted_bytes_reclaimed: report.compacted_bytes_reclaimed(),
                },
            }
        }
        fb::ResponseBody::ErrorResponse => {
            let body = root.body_as_error_response().ok_or_else(missing)?;
            Response::Error {
                request_id,
                code: ErrorCode::from_generated(body.code())?,
                message: body.message().unwrap_or_default().to_owned(),
            }
        }
        fb::ResponseBody::NONE => return Err(WireError::MissingBody),
        other => {
            return Err(WireError::UnknownMessageType {
                kind: "response",
                value: other.0,
            });
        }
    })
}

fn frame(message: &[u8], body_len_bytes: u32) -> Vec<u8> {
    let message_len_bytes =
        u32::try_from(message.len()).expect("messages are bounded far below 4 GiB");
    // Holds by construction (see the const assertions at the top); checked in release too because
    // an oversized frame would be rejected by every peer and is cheap to catch here.
    assert!(
        message_len_bytes <= MAX_MESSAGE_LEN_BYTES,
        "encoded message of {message_len_bytes} bytes exceeds the frame limit"
    );
    let mut frame = Vec::with_capacity(FRAME_HEADER_LEN_BYTES + message.len());
    frame.extend_from_slice(&FrameHeader::new(message_len_bytes, body_len_bytes).encode());
    frame.extend_from_slice(message);
    frame
}

fn verifier_options() -> VerifierOptions {
    // Messages are at most 64 KiB and nest three tables deep, so tight bounds cost nothing and cap
    // the verifier's work on hostile input.
    VerifierOptions {
        max_depth: 8,
        max_tables: 64,
        max_apparent_size: 2 * MAX_MESSAGE_LEN_BYTES as usize,
        ..VerifierOptions::default()
    }
}

fn check_message_len(message: &[u8]) -> Result<(), WireError> {
    if message.len() > MAX_MESSAGE_LEN_BYTES as usize {
        return Err(WireError::MessageTooLarge {
            length_bytes: u32::try_from(message.len()).unwrap_or(u32::MAX),
            max_bytes: MAX_MESSAGE_LEN_BYTES,
        });
    }
    Ok(())
}

fn check_message_version(found: u16) -> Result<(), WireError> {
    if found != PROTOCOL_VERSION {
        return Err(WireError::UnsupportedMessageVersion {
            found,
            supported: PROTOCOL_VERSION,
        });
    }
    Ok(())
}

fn truncate_at_char_boundary(text: &str, max_len_bytes: usize) -> &str {
    if text.len() <= max_len_bytes {
        return text;
    }
    let mut end = max_len_bytes;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

fn to_generated_id(shard_id: &ShardId) -> fb::ShardId {
    fb::ShardId::new(&shard_id.0)
}

fn from_generated_id(shard_id: &fb::ShardId) -> ShardId {
    ShardId(shard_id.0)
}

fn to_generated_entry(entry: &ShardEntry) -> fb::ShardEntry {
    fb::ShardEntry::new(
        &to_generated_id(&entry.shard_id),
        entry.length,
        entry.crc32c,
    )
}

fn from_generated_entry(entry: &fb::ShardEntry) -> ShardEntry {
    ShardEntry {
        shard_id: from_generated_id(entry.shard_id()),
        length: entry.length(),
        crc32c: entry.crc32c(),
    }
}
