//! Errors of frame parsing and message decoding. Every malformed input maps to one of these; none
//! of them is a panic.

/// Why a frame header or message was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    #[error("bad frame magic {found:#010x}, expected {expected:#010x}")]
    BadMagic { found: u32, expected: u32 },

    #[error("unsupported protocol version {found} in frame header (this build speaks {supported})")]
    UnsupportedVersion { found: u16, supported: u16 },

    #[error(
        "unsupported protocol version {found} inside the message (this build speaks {supported})"
    )]
    UnsupportedMessageVersion { found: u16, supported: u16 },

    #[error("unknown frame flags {flags:#06x}")]
    UnknownFlags { flags: u16 },

    #[error("message of {length_bytes} bytes exceeds the limit of {max_bytes} bytes")]
    MessageTooLarge { length_bytes: u32, max_bytes: u32 },

    #[error("body of {length_bytes} bytes exceeds the limit of {max_bytes} bytes")]
    BodyTooLarge { length_bytes: u32, max_bytes: u32 },

    /// The flatbuffers verifier rejected the message (truncated, out-of-bounds offsets, missing
    /// required fields, ...). The text is the verifier's description.
    #[error("invalid message: {0}")]
    InvalidMessage(String),

    #[error("message has no body (union type NONE)")]
    MissingBody,

    #[error("unknown {kind} message type {value}")]
    UnknownMessageType { kind: &'static str, value: u8 },

    #[error("unknown error code {0}")]
    UnknownErrorCode(u16),
}
