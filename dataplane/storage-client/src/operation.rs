//! The client side of the protocol without I/O: which request an operation sends, how a response
//! frame is checked, and what each operation makes of its response. The blocking client and the
//! monoio client are thin shells around these functions, so both check exactly the same things.

use crate::{ClientError, ProtocolError, ScanPage};
use cairn_common::ShardId;
use cairn_wire::{ByteRange, FrameHeader, HealthReport, Request, Response, ShardEntry};

/// One storage-node operation, before it gets a request id.
#[derive(Debug, Clone, Copy)]
pub enum Operation {
    Put {
        shard_id: ShardId,
        crc32c: u32,
    },
    Get {
        shard_id: ShardId,
        range: Option<ByteRange>,
        from_disk: bool,
    },
    Delete {
        shard_id: ShardId,
    },
    Stat {
        shard_id: ShardId,
    },
    Scan {
        after: Option<ShardId>,
        limit: u32,
    },
    Health,
}

impl Operation {
    pub fn request(self, request_id: u64) -> Request {
        match self {
            Operation::Put { shard_id, crc32c } => Request::Put {
                request_id,
                shard_id,
                crc32c,
            },
            Operation::Get {
                shard_id,
                range,
                from_disk,
            } => Request::Get {
                request_id,
                shard_id,
                range,
                from_disk,
            },
            Operation::Delete { shard_id } => Request::Delete {
                request_id,
                shard_id,
            },
            Operation::Stat { shard_id } => Request::Stat {
                request_id,
                shard_id,
            },
            Operation::Scan { after, limit } => Request::Scan {
                request_id,
                after,
                limit,
            },
            Operation::Health => Request::Health { request_id },
        }
    }
}

/// Takes the next request id from `counter`, skipping 0 on wrap-around: 0 is the "unknown
/// request" id of error responses.
pub fn next_request_id(counter: &mut u64) -> u64 {
    let request_id = *counter;
    *counter = counter.wrapping_add(1).max(1);
    request_id
}

/// Checks a response frame against the request it answers: the request id must match (an error
/// with id 0 may answer anything) and only responses that carry a body may have one.
pub fn check_response(
    request: &Request,
    header: &FrameHeader,
    response: &Response,
) -> Result<(), ClientError> {
    let sent = request.request_id();
    let received = response.request_id();
    let is_unattributed_error = matches!(response, Response::Error { request_id: 0, .. });
    if received != sent && !is_unattributed_error {
        return Err(ProtocolError::RequestIdMismatch { sent, received }.into());
    }
    if header.body_len_bytes != 0 && !response.carries_body() {
        return Err(ProtocolError::UnexpectedBody {
            response: response_name(response),
            body_len_bytes: header.body_len_bytes,
        }
        .into());
    }
    Ok(())
}

/// Turns a node's error response into its [`ClientError`]; passes every other response through.
pub fn node_error(response: Response) -> Result<Response, ClientError> {
    match response {
        Response::Error { code, message, .. } => Err(ClientError::from_node(code, message)),
        response => Ok(response),
    }
}

pub fn extract_put(response: Response) -> Result<(), ClientError> {
    match response {
        Response::PutOk { .. } => Ok(()),
        other => Err(unexpected("PutOk", &other)),
    }
}

/// Checks a Get response and its body: the length the range asked for (clipped to the shard's
/// end) and, for a whole-shard read, the CRC32C the node sent. Returns the body's CRC32C when it
/// was computed (a whole-shard read), so a caller need not compute it again.
pub fn extract_get(
    response: Response,
    range: Option<ByteRange>,
    body: &[u8],
) -> Result<Option<u32>, ClientError> {
    let Response::GetOk {
        shard_length,
        crc32c: expected_crc32c,
        ..
    } = response
    else {
        return Err(unexpected("GetOk", &response));
    };
    let expected_bytes = match range {
        None => shard_length,
        Some(range) => range.length.min(shard_length.saturating_sub(range.offset)),
    };
    let received_bytes = body.len() as u64;
    if received_bytes != expected_bytes {
        return Err(ProtocolError::BodyLengthMismatch {
            expected_bytes,
            received_bytes,
        }
        .into());
    }
    if range.is_some() {
        return Ok(None);
    }
    let actual_crc32c = crc32c::crc32c(body);
    if actual_crc32c != expected_crc32c {
        return Err(ClientError::ReceivedChecksumMismatch {
            expected_crc32c,
            actual_crc32c,
        });
    }
    Ok(Some(actual_crc32c))
}

pub fn extract_delete(response: Response) -> Result<bool, ClientError> {
    match response {
        Response::DeleteOk { existed, .. } => Ok(existed),
        other => Err(unexpected("DeleteOk", &other)),
    }
}

pub fn extract_stat(response: Response) -> Result<ShardEntry, ClientError> {
    match response {
        Response::StatOk { entry, .. } => Ok(entry),
        other => Err(unexpected("StatOk", &other)),
    }
}

pub fn extract_scan(response: Response) -> Result<ScanPage, ClientError> {
    match response {
        Response::ScanOk {
            entries,
            next_after,
            ..
        } => Ok(ScanPage {
            entries,
            next_after,
        }),
        other => Err(unexpected("ScanOk", &other)),
    }
}

pub fn extract_health(response: Response) -> Result<HealthReport, ClientError> {
    match response {
        Response::HealthOk { report, .. } => Ok(report),
        other => Err(unexpected("HealthOk", &other)),
    }
}

fn unexpected(expected: &'static str, received: &Response) -> ClientError {
    ProtocolError::UnexpectedResponse {
        expected,
        received: response_name(received),
    }
    .into()
}

fn response_name(response: &Response) -> &'static str {
    match response {
        Response::PutOk { .. } => "PutOk",
        Response::GetOk { .. } => "GetOk",
        Response::DeleteOk { .. } => "DeleteOk",
        Response::StatOk { .. } => "StatOk",
        Response::ScanOk { .. } => "ScanOk",
        Response::HealthOk { .. } => "HealthOk",
        Response::Error { .. } => "Error",
    }
}
