//! Types shared by every Cairn layer. Nothing here performs I/O or knows a runtime.
//!
//! The most important type is [`ShardId`]: the 32-byte name of one erasure-coded piece of an object
//! as stored by a storage node. The shard log treats it as opaque bytes; the gateway, janitor and
//! scrubber build and parse it with the structured accessors below so that a shard found on disk can
//! be traced back to the object version, part, block and shard index that own it.

pub mod padding;
pub use padding::padding_data_pieces;
pub mod placement;

use std::fmt;

/// Alignment of every record and buffer that crosses into O_DIRECT I/O.
pub const DIRECT_IO_ALIGNMENT_BYTES: usize = 4096;

/// Rounds `value` up to the next multiple of [`DIRECT_IO_ALIGNMENT_BYTES`].
pub const fn align_up(value: u64) -> u64 {
    let alignment = DIRECT_IO_ALIGNMENT_BYTES as u64;
    value.div_ceil(alignment) * alignment
}

/// Bytes of a storage node's shard-log record header (`cairn_shardlog::record`), which precedes
/// every stored piece.
pub const SHARD_RECORD_HEADER_BYTES: usize = 64;

/// Bytes on disk of a shard-log record holding a piece of `payload_bytes`: its header and the
/// payload, rounded up to the O_DIRECT block. An empty piece still costs a block.
pub const fn shard_record_bytes(payload_bytes: u64) -> u64 {
    align_up(SHARD_RECORD_HEADER_BYTES as u64 + payload_bytes)
}

/// Rounds `value` down to a multiple of [`DIRECT_IO_ALIGNMENT_BYTES`].
pub const fn align_down(value: u64) -> u64 {
    let alignment = DIRECT_IO_ALIGNMENT_BYTES as u64;
    value / alignment * alignment
}

/// The bytes of an even-length string of hex digits (either case); `None` for anything else.
pub fn decode_hex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|at| u8::from_str_radix(text.get(at..at + 2)?, 16).ok())
        .collect()
}

/// Name of one stored shard piece: 32 bytes, compared and ordered bytewise.
///
/// Layout (big-endian so that byte order equals the order of the fields):
/// `object_id: u128 | part_number: u32 | block_index: u32 | shard_index: u16 | reserved: [u8; 6]`.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct ShardId(pub [u8; ShardId::LEN]);

impl ShardId {
    pub const LEN: usize = 32;

    /// Builds the id of shard `shard_index` of block `block_index` of part `part_number` of the
    /// object version `object_id`.
    pub fn new(
        object_id: u128,
        part_number: u32,
        block_index: u32,
        shard_index: ShardIndex,
    ) -> Self {
        let mut bytes = [0u8; Self::LEN];
        bytes[0..16].copy_from_slice(&object_id.to_be_bytes());
        bytes[16..20].copy_from_slice(&part_number.to_be_bytes());
        bytes[20..24].copy_from_slice(&block_index.to_be_bytes());
        bytes[24..26].copy_from_slice(&shard_index.0.to_be_bytes());
        ShardId(bytes)
    }

    pub fn from_slice(bytes: &[u8]) -> Result<Self, CommonError> {
        let array: [u8; Self::LEN] = bytes
            .try_into()
            .map_err(|_| CommonError::BadShardIdLength(bytes.len()))?;
        Ok(ShardId(array))
    }

    pub fn object_id(&self) -> u128 {
        u128::from_be_bytes(self.0[0..16].try_into().expect("16 bytes"))
    }

    pub fn part_number(&self) -> u32 {
        u32::from_be_bytes(self.0[16..20].try_into().expect("4 bytes"))
    }

    pub fn block_index(&self) -> u32 {
        u32::from_be_bytes(self.0[20..24].try_into().expect("4 bytes"))
    }

    pub fn shard_index(&self) -> ShardIndex {
        ShardIndex(u16::from_be_bytes(
            self.0[24..26].try_into().expect("2 bytes"),
        ))
    }

    /// A stable 64-bit hash (FNV-1a) used to map a shard to the core that owns it. It must never
    /// change: a node's data layout on disk depends on it.
    pub fn stable_hash(&self) -> u64 {
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        for byte in self.0 {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
        hash
    }

    pub fn to_hex(&self) -> String {
        self.0.iter().map(|byte| format!("{byte:02x}")).collect()
    }
}

impl fmt::Debug for ShardId {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "ShardId({})", self.to_hex())
    }
}

impl fmt::Display for ShardId {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.to_hex())
    }
}

/// Position of a shard within a stripe: `0..k` are data shards, `k..k+m` parity shards.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct ShardIndex(pub u16);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CommonError {
    #[error("a shard id is 32 bytes, got {0}")]
    BadShardIdLength(usize),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_decodes_only_whole_bytes_of_hex_digits() {
        assert_eq!(
            decode_hex("00ff10").as_deref(),
            Some(&[0x00, 0xff, 0x10][..])
        );
        assert_eq!(
            decode_hex("9B2CF535F27731C974343645A3985328").map(|b| b.len()),
            Some(16)
        );
        assert_eq!(decode_hex("").as_deref(), Some(&[][..]));
        for not_hex in ["abc", "9b2cf535f27731c974343645a3985328-2", "zz", "é1"] {
            assert_eq!(decode_hex(not_hex), None, "{not_hex}");
        }
    }

    #[test]
    fn shard_id_fields_round_trip_and_order_follows_fields() {
        let id = ShardId::new(0x0102_0304, 7, 9, ShardIndex(5));
        assert_eq!(id.object_id(), 0x0102_0304);
        assert_eq!(id.part_number(), 7);
        assert_eq!(id.block_index(), 9);
        assert_eq!(id.shard_index(), ShardIndex(5));
        let later_block = ShardId::new(0x0102_0304, 7, 10, ShardIndex(0));
        assert!(id < later_block);
        assert_eq!(ShardId::from_slice(&id.0).unwrap(), id);
        assert_eq!(
            ShardId::from_slice(&[0; 3]),
            Err(CommonError::BadShardIdLength(3))
        );
    }

    #[test]
    fn stable_hash_is_fixed() {
        // Golden value: changing the hash would move shards between cores on existing nodes.
        assert_eq!(ShardId([0; 32]).stable_hash(), 0x0c82_1078_4d8a_f5a5);
    }

    #[test]
    fn alignment_helpers() {
        assert_eq!(align_up(0), 0);
        assert_eq!(align_up(1), 4096);
        assert_eq!(align_up(4096), 4096);
        assert_eq!(align_down(8191), 4096);
    }
}
