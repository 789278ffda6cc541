//! The fixed 16-byte frame header that precedes every message.
//!
//! Layout (little-endian): `magic u32 | protocol_version u16 | flags u16 | message_len u32 |
//! body_len u32`. The header is parsed before any allocation, so the size limits checked here are
//! what bounds the memory a peer can make us reserve.

use crate::error::WireError;

/// "CRNW" when the little-endian u32 is laid out in bytes.
pub const MAGIC: u32 = 0x574E_5243;

/// The only protocol version this build speaks, in both the header and the message.
pub const PROTOCOL_VERSION: u16 = 1;

pub const FRAME_HEADER_LEN_BYTES: usize = 16;

/// Hard limit on the flatbuffer part of a frame. Messages are small by design (shard data goes in
/// the body), so a larger value means a bug or a hostile peer.
pub const MAX_MESSAGE_LEN_BYTES: u32 = 64 * 1024;

/// Flag bits this version defines: none. Parsing rejects any set bit, because a flag a reader does
/// not understand may change how the rest of the frame must be read.
pub const KNOWN_FLAGS: u16 = 0;

const _: () = assert!(MAGIC.to_le_bytes()[0] == b'C' && MAGIC.to_le_bytes()[3] == b'W');

/// Limits a reader applies to frames it receives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameLimits {
    /// Largest raw body accepted; a node sets this from its largest shard piece.
    pub max_body_len_bytes: u32,
}

impl FrameLimits {
    pub const DEFAULT_MAX_BODY_LEN_BYTES: u32 = 64 * 1024 * 1024;
}

impl Default for FrameLimits {
    fn default() -> Self {
        FrameLimits {
            max_body_len_bytes: Self::DEFAULT_MAX_BODY_LEN_BYTES,
        }
    }
}

/// A parsed, validated frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    pub protocol_version: u16,
    pub flags: u16,
    /// Length of the flatbuffer message that follows the header.
    pub message_len_bytes: u32,
    /// Length of the raw body that follows the message.
    pub body_len_bytes: u32,
}

impl FrameHeader {
    /// A version-1 header with no flags.
    pub fn new(message_len_bytes: u32, body_len_bytes: u32) -> Self {
        FrameHeader {
            protocol_version: PROTOCOL_VERSION,
            flags: 0,
            message_len_bytes,
            body_len_bytes,
        }
    }

    /// Validates the magic, version, flags and both lengths. The checks run in that order so that
    /// a peer speaking another protocol is reported as such, not as an oversized frame.
    pub fn parse(
        bytes: &[u8; FRAME_HEADER_LEN_BYTES],
        limits: FrameLimits,
    ) -> Result<FrameHeader, WireError> {
        let magic = u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
        let protocol_version = u16::from_le_bytes([bytes[4], bytes[5]]);
        let flags = u16::from_le_bytes([bytes[6], bytes[7]]);
        let message_len_bytes = u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]);
        let body_len_bytes = u32::from_le_bytes([bytes[12], bytes[13], bytes[14], bytes[15]]);
        if magic != MAGIC {
            return Err(WireError::BadMagic {
                found: magic,
                expected: MAGIC,
            });
        }
        if protocol_version != PROTOCOL_VERSION {
            return Err(WireError::UnsupportedVersion {
                found: protocol_version,
                supported: PROTOCOL_VERSION,
            });
        }
        if flags & !KNOWN_FLAGS != 0 {
            return Err(WireError::UnknownFlags { flags });
        }
        if message_len_bytes > MAX_MESSAGE_LEN_BYTES {
            return Err(WireError::MessageTooLarge {
                length_bytes: message_len_bytes,
                max_bytes: MAX_MESSAGE_LEN_BYTES,
            });
        }
        if body_len_bytes > limits.max_body_len_bytes {
            return Err(WireError::BodyTooLarge {
                length_bytes: body_len_bytes,
                max_bytes: limits.max_body_len_bytes,
            });
        }
        Ok(FrameHeader {
            protocol_version,
            flags,
            message_len_bytes,
            body_len_bytes,
        })
    }

    pub fn encode(&self) -> [u8; FRAME_HEADER_LEN_BYTES] {
        let mut bytes = [0u8; FRAME_HEADER_LEN_BYTES];
        bytes[0..4].copy_from_slice(&MAGIC.to_le_bytes());
        bytes[4..6].copy_from_slice(&self.protocol_version.to_le_bytes());
        bytes[6..8].copy_from_slice(&self.flags.to_le_bytes());
        bytes[8..12].copy_from_slice(&self.message_len_bytes.to_le_bytes());
        bytes[12..16].copy_from_slice(&self.body_len_bytes.to_le_bytes());
        bytes
    }

    /// Bytes that follow the header: message plus body.
    pub fn payload_len_bytes(&self) -> u64 {
        u64::from(self.message_len_bytes) + u64::from(self.body_len_bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header_bytes(magic: u32, version: u16, flags: u16, message: u32, body: u32) -> [u8; 16] {
        let mut bytes = [0u8; 16];
        bytes[0..4].copy_from_slice(&magic.to_le_bytes());
        bytes[4..6].copy_from_slice(&version.to_le_bytes());
        bytes[6..8].copy_from_slice(&flags.to_le_bytes());
        bytes[8..12].copy_from_slice(&message.to_le_bytes());
        bytes[12..16].copy_from_slice(&body.to_le_bytes());
        bytes
    }

    #[test]
    fn header_round_trips_and_starts_with_ascii_magic() {
        let header = FrameHeader::new(100, 4096);
        let bytes = header.encode();
        assert_eq!(&bytes[0..4], b"CRNW");
        assert_eq!(
            FrameHeader::parse(&bytes, FrameLimits::default()),
            Ok(header)
        );
        assert_eq!(header.payload_len_bytes(), 4196);
    }

    #[test]
    fn header_rejections_are_typed() {
        let limits = FrameLimits {
            max_body_len_bytes: 1000,
        };
        assert_eq!(
            FrameHeader::parse(&header_bytes(0x1234_5678, 1, 0, 0, 0), limits),
            Err(WireError::BadMagic {
                found: 0x1234_5678,
                expected: MAGIC
            })
        );
        assert_eq!(
            FrameHeader::parse(&header_bytes(MAGIC, 2, 0, 0, 0), limits),
            Err(WireError::UnsupportedVersion {
                found: 2,
                supported: 1
            })
        );
        assert_eq!(
            FrameHeader::parse(&header_bytes(MAGIC, 1, 0x8000, 0, 0), limits),
            Err(WireError::UnknownFlags { flags: 0x8000 })
        );
        assert_eq!(
            FrameHeader::parse(&header_bytes(MAGIC, 1, 0, 64 * 1024 + 1, 0), limits),
            Err(WireError::MessageTooLarge {
                length_bytes: 64 * 1024 + 1,
                max_bytes: MAX_MESSAGE_LEN_BYTES
            })
        );
        assert_eq!(
            FrameHeader::parse(&header_bytes(MAGIC, 1, 0, 10, 1001), limits),
            Err(WireError::BodyTooLarge {
                length_bytes: 1001,
                max_bytes: 1000
            })
        );
        // Limits are inclusive.
        assert!(FrameHeader::parse(&header_bytes(MAGIC, 1, 0, 64 * 1024, 1000), limits).is_ok());
    }

    #[test]
    fn default_body_limit_is_64_mib() {
        assert_eq!(FrameLimits::default().max_body_len_bytes, 64 << 20);
    }
}
