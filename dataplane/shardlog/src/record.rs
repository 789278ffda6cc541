//! On-disk layout of the shard log: segment header blocks and record headers.
//!
//! A segment file starts with one 4 KiB header block (magic, format version, segment id, salt). Records
//! follow, each starting on a 4 KiB boundary: a 64-byte [`RecordHeader`], the payload, then zero
//! padding up to the next 4 KiB boundary. Every header carries a CRC32C of its own bytes seeded with
//! the segment's random salt, so bytes of a stored shard that happen to look like a header (a user can
//! upload a segment file as an object) are never taken for a record of this segment. The payload has
//! its own CRC32C, the one the client sent with the shard; it is checked before the write and after
//! every read.
//!
//! Format versions: 1 (current). A decoder for every older version stays here with a golden-bytes test.

use cairn_common::{DIRECT_IO_ALIGNMENT_BYTES, ShardId};

pub const SEGMENT_MAGIC: u32 = 0x4745_5343; // "CSEG" read as little-endian bytes
pub const RECORD_MAGIC: u32 = 0x4352_4E53; // "SNRC" read as little-endian bytes
pub const FORMAT_VERSION: u16 = 1;
pub const RECORD_HEADER_LEN: usize = cairn_common::SHARD_RECORD_HEADER_BYTES;
pub const SEGMENT_HEADER_LEN: usize = DIRECT_IO_ALIGNMENT_BYTES;
/// The largest shard payload one record may hold.
pub const MAX_PAYLOAD_BYTES: usize = 256 << 20;

const _: () = assert!(SEGMENT_HEADER_LEN.is_multiple_of(DIRECT_IO_ALIGNMENT_BYTES));
const _: () = assert!(RECORD_HEADER_LEN < DIRECT_IO_ALIGNMENT_BYTES);

/// Record flags.
pub const FLAG_TOMBSTONE: u16 = 1;
const KNOWN_FLAGS: u16 = FLAG_TOMBSTONE;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SegmentHeader {
    pub segment_id: u64,
    pub salt: u64,
}

impl SegmentHeader {
    /// Writes the header into the first bytes of `block` (which the caller zeroed).
    pub fn encode_into(&self, block: &mut [u8]) {
        block[0..4].copy_from_slice(&SEGMENT_MAGIC.to_le_bytes());
        block[4..6].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
        block[6..8].copy_from_slice(&0u16.to_le_bytes());
        block[8..16].copy_from_slice(&self.segment_id.to_le_bytes());
        block[16..24].copy_from_slice(&self.salt.to_le_bytes());
        let crc = crc32c::crc32c(&block[0..24]);
        block[24..28].copy_from_slice(&crc.to_le_bytes());
    }

    pub fn decode(block: &[u8]) -> Result<SegmentHeader, RecordError> {
        if block.len() < 28 {
            return Err(RecordError::Truncated);
        }
        if read_u32(block, 0) != SEGMENT_MAGIC {
            return Err(RecordError::BadMagic);
        }
        if read_u32(block, 24) != crc32c::crc32c(&block[0..24]) {
            return Err(RecordError::HeaderChecksum);
        }
        let version = read_u16(block, 4);
        if version != FORMAT_VERSION {
            return Err(RecordError::UnknownVersion(version));
        }
        Ok(SegmentHeader {
            segment_id: read_u64(block, 8),
            salt: read_u64(block, 16),
        })
    }
}

/// The 64-byte header in front of every record.
///
/// Layout (little-endian): `magic u32 | version u16 | flags u16 | shard_id [32] | payload_len u32 |
/// payload_crc32c u32 | sequence u64 | header_crc32c u32 | reserved u32`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecordHeader {
    pub flags: u16,
    pub shard_id: ShardId,
    pub payload_len: u32,
    pub payload_crc32c: u32,
    /// Write sequence number, unique per log; compaction copies keep the original number so that
    /// the newest write of a shard id wins however records move between segments.
    pub sequence: u64,
}

impl RecordHeader {
    pub fn is_tombstone(&self) -> bool {
        self.flags & FLAG_TOMBSTONE != 0
    }

    /// Bytes the record occupies on disk: header + payload, padded to 4 KiB.
    pub fn record_len_bytes(&self) -> u64 {
        record_len_bytes(self.payload_len as usize)
    }

    pub fn encode(&self, salt: u64) -> [u8; RECORD_HEADER_LEN] {
        let mut bytes = [0u8; RECORD_HEADER_LEN];
        bytes[0..4].copy_from_slice(&RECORD_MAGIC.to_le_bytes());
        bytes[4..6].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
        bytes[6..8].copy_from_slice(&self.flags.to_le_bytes());
        bytes[8..40].copy_from_slice(&self.shard_id.0);
        bytes[40..44].copy_from_slice(&self.payload_len.to_le_bytes());
        bytes[44..48].copy_from_slice(&self.payload_crc32c.to_le_bytes());
        bytes[48..56].copy_from_slice(&self.sequence.to_le_bytes());
        let crc = header_crc(&bytes[0..56], salt);
        bytes[56..60].copy_from_slice(&crc.to_le_bytes());
        bytes
    }

    /// Decodes and validates a header written into a segment with `salt`.
    pub fn decode(bytes: &[u8], salt: u64) -> Result<RecordHeader, RecordError> {
        if bytes.len() < RECORD_HEADER_LEN {
            return Err(RecordError::Truncated);
        }
        if read_u32(bytes, 0) != RECORD_MAGIC {
            return Err(RecordError::BadMagic);
        }
        if read_u32(bytes, 56) != header_crc(&bytes[0..56], salt) {
            return Err(RecordError::HeaderChecksum);
        }
        let version = read_u16(bytes, 4);
        if version != FORMAT_VERSION {
            return Err(RecordError::UnknownVersion(version));
        }
        let flags = read_u16(bytes, 6);
        if flags & !KNOWN_FLAGS != 0 {
            return Err(RecordError::UnknownFlags(flags));
        }
        let payload_len = read_u32(bytes, 40);
        if payload_len as usize > MAX_PAYLOAD_BYTES {
            return Err(RecordError::PayloadTooLarge(payload_len as u64));
        }
        let header = RecordHeader {
            flags,
            shard_id: ShardId::from_slice(&bytes[8..40]).expect("32 bytes"),
            payload_len,
            payload_crc32c: read_u32(bytes, 44),
            sequence: read_u64(bytes, 48),
        };
        if header.is_tombstone() && payload_len != 0 {
            return Err(RecordError::TombstoneWithPayload);
        }
        Ok(header)
    }
}

/// Bytes a record with a payload of `payload_len` bytes occupies on disk.
pub fn record_len_bytes(payload_len: usize) -> u64 {
    cairn_common::shard_record_bytes(payload_len as u64)
}

fn header_crc(bytes: &[u8], salt: u64) -> u32 {
    crc32c::crc32c_append(crc32c::crc32c(&salt.to_le_bytes()), bytes)
}

fn read_u16(bytes: &[u8], at: usize) -> u16 {
    u16::from_le_bytes(bytes[at..at + 2].try_into().expect("2 bytes"))
}

fn read_u32(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes"))
}

fn read_u64(bytes: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(bytes[at..at + 8].try_into().expect("8 bytes"))
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    #[error("fewer bytes than a header")]
    Truncated,
    #[error("bad magic number")]
    BadMagic,
    #[error("header checksum mismatch")]
    HeaderChecksum,
    #[error("unknown format version {0}")]
    UnknownVersion(u16),
    #[error("unknown record flags {0:#x}")]
    UnknownFlags(u16),
    #[error("payload of {0} bytes exceeds the record limit")]
    PayloadTooLarge(u64),
    #[error("a tombstone carries a payload")]
    TombstoneWithPayload,
}

#[cfg(test)]
mod tests {
    use super::*;
    use cairn_common::ShardIndex;
    use proptest::prelude::*;

    fn sample_header() -> RecordHeader {
        RecordHeader {
            flags: 0,
            shard_id: ShardId::new(
                0x1122_3344_5566_7788_99aa_bbcc_ddee_ff00,
                1,
                2,
                ShardIndex(3),
            ),
            payload_len: 5,
            payload_crc32c: crc32c::crc32c(b"hello"),
            sequence: 42,
        }
    }

    #[test]
    fn record_header_golden_bytes() {
        let bytes = sample_header().encode(0x0123_4567_89ab_cdef);
        let expected: [u8; RECORD_HEADER_LEN] = [
            0x53, 0x4e, 0x52, 0x43, 0x01, 0x00, 0x00, 0x00, // magic, version, flags
            0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, // shard id: object id
            0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff, 0x00, //
            0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x02, // part, block
            0x00, 0x03, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // shard index, reserved
            0x05, 0x00, 0x00, 0x00, 0x4c, 0xbb, 0x71, 0x9a, // payload len, payload crc
            0x2a, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // sequence
            bytes[56], bytes[57], bytes[58], bytes[59], 0x00, 0x00, 0x00, 0x00,
        ];
        assert_eq!(bytes, expected);
        // The header checksum itself, pinned separately so that a change of seeding shows up.
        assert_eq!(
            u32::from_le_bytes(bytes[56..60].try_into().unwrap()),
            GOLDEN_HEADER_CRC
        );
        assert_eq!(
            RecordHeader::decode(&bytes, 0x0123_4567_89ab_cdef),
            Ok(sample_header())
        );
    }

    const GOLDEN_HEADER_CRC: u32 = 0xf933_d32d;

    #[test]
    fn segment_header_round_trip_and_golden() {
        let mut block = vec![0u8; SEGMENT_HEADER_LEN];
        let header = SegmentHeader {
            segment_id: 7,
            salt: 0xfeed,
        };
        header.encode_into(&mut block);
        assert_eq!(
            &block[0..8],
            &[0x43, 0x53, 0x45, 0x47, 0x01, 0x00, 0x00, 0x00]
        );
        assert_eq!(SegmentHeader::decode(&block), Ok(header));
        block[9] ^= 1;
        assert_eq!(
            SegmentHeader::decode(&block),
            Err(RecordError::HeaderChecksum)
        );
    }

    #[test]
    fn a_header_from_another_segment_is_rejected() {
        let bytes = sample_header().encode(1);
        assert_eq!(
            RecordHeader::decode(&bytes, 2),
            Err(RecordError::HeaderChecksum)
        );
    }

    #[test]
    fn record_lengths_are_aligned() {
        assert_eq!(record_len_bytes(0), 4096);
        assert_eq!(record_len_bytes(4096 - 64), 4096);
        assert_eq!(record_len_bytes(4096 - 63), 8192);
        assert_eq!(record_len_bytes(1 << 20), (1 << 20) + 4096);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4096))]
        /// Decoder fuzz: arbitrary bytes never panic, and anything accepted re-encodes identically.
        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..128), salt in any::<u64>()) {
            if let Ok(header) = RecordHeader::decode(&bytes, salt) {
                prop_assert_eq!(&header.encode(salt)[..], &bytes[..RECORD_HEADER_LEN]);
            }
            let _ = SegmentHeader::decode(&bytes);
        }

        /// Flipping any single bit of a valid header is detected.
        #[test]
        fn any_bit_flip_is_detected(bit in 0usize..(60 * 8)) {
            let mut bytes = sample_header().encode(9);
            bytes[bit / 8] ^= 1 << (bit % 8);
            prop_assert!(RecordHeader::decode(&bytes, 9).is_err());
        }
    }
}
