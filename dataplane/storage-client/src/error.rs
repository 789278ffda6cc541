//! Errors of the blocking client: what the node said (one variant per wire `ErrorCode`), what went
//! wrong locally (I/O, protocol violations) and a failed end-to-end checksum.

use cairn_wire::{ErrorCode, WireError};

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("storage node: shard not found: {message}")]
    NotFound { message: String },

    /// The node found that data did not match its checksum (a Put body against the request's
    /// CRC32C, or a stored shard on read).
    #[error("storage node: checksum mismatch: {message}")]
    ChecksumMismatch { message: String },

    #[error("storage node: no space left: {message}")]
    NoSpace { message: String },

    #[error("storage node: too large: {message}")]
    TooLarge { message: String },

    #[error("storage node: bad request: {message}")]
    BadRequest { message: String },

    #[error("storage node: unavailable: {message}")]
    Unavailable { message: String },

    #[error("storage node: internal error: {message}")]
    Internal { message: String },

    /// The whole shard returned by a Get does not match the CRC32C the node sent with it: the data
    /// was damaged between the node's check and us.
    #[error(
        "shard data received does not match its checksum: node sent {expected_crc32c:#010x}, \
         data hashes to {actual_crc32c:#010x}"
    )]
    ReceivedChecksumMismatch {
        expected_crc32c: u32,
        actual_crc32c: u32,
    },

    /// Checked before sending: a frame body length is a u32.
    #[error("request body of {length_bytes} bytes does not fit in a frame")]
    RequestBodyTooLarge { length_bytes: usize },

    /// Connecting, reading or writing failed, including timeouts (`TimedOut` / `WouldBlock`).
    #[error("storage node I/O: {0}")]
    Io(#[from] std::io::Error),

    /// The node sent something this client cannot make sense of.
    #[error("storage node protocol: {0}")]
    Protocol(#[from] ProtocolError),
}

impl ClientError {
    /// Builds the error for a node's error response.
    pub fn from_node(code: ErrorCode, message: String) -> ClientError {
        match code {
            ErrorCode::NotFound => ClientError::NotFound { message },
            ErrorCode::ChecksumMismatch => ClientError::ChecksumMismatch { message },
            ErrorCode::NoSpace => ClientError::NoSpace { message },
            ErrorCode::TooLarge => ClientError::TooLarge { message },
            ErrorCode::BadRequest => ClientError::BadRequest { message },
            ErrorCode::Unavailable => ClientError::Unavailable { message },
            ErrorCode::Internal => ClientError::Internal { message },
        }
    }

    /// The node's error code, when the node answered with an error.
    pub fn code(&self) -> Option<ErrorCode> {
        Some(match self {
            ClientError::NotFound { .. } => ErrorCode::NotFound,
            ClientError::ChecksumMismatch { .. } => ErrorCode::ChecksumMismatch,
            ClientError::NoSpace { .. } => ErrorCode::NoSpace,
            ClientError::TooLarge { .. } => ErrorCode::TooLarge,
            ClientError::BadRequest { .. } => ErrorCode::BadRequest,
            ClientError::Unavailable { .. } => ErrorCode::Unavailable,
            ClientError::Internal { .. } => ErrorCode::Internal,
            ClientError::ReceivedChecksumMismatch { .. }
            | ClientError::RequestBodyTooLarge { .. }
            | ClientError::Io(_)
            | ClientError::Protocol(_) => return None,
        })
    }
}

/// Ways a node's response can violate the protocol. After any of these the connection is closed,
/// because the position in the byte stream can no longer be trusted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    #[error(transparent)]
    Wire(#[from] WireError),

    #[error("response carries request id {received}, expected {sent}")]
    RequestIdMismatch { sent: u64, received: u64 },

    #[error("expected a {expected} response, got {received}")]
    UnexpectedResponse {
        expected: &'static str,
        received: &'static str,
    },

    #[error("{response} response carries a body of {body_len_bytes} bytes; it takes none")]
    UnexpectedBody {
        response: &'static str,
        body_len_bytes: u32,
    },

    #[error("Get response body is {received_bytes} bytes, expected {expected_bytes}")]
    BodyLengthMismatch {
        expected_bytes: u64,
        received_bytes: u64,
    },
}
