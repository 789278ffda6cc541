//! The codec contract shared by every backend, and the factory that picks a backend by scheme.
//!
//! Contract (checked by the shared suite in `tests/codec_suite.rs` for every backend):
//! - A stripe is `k + m` shards of equal length; shards `0..k` hold data (the code is systematic,
//!   so data shards are stored verbatim), shards `k..k+m` hold parity.
//! - Shard lengths must be even ([`SHARD_LENGTH_MULTIPLE_BYTES`]): reed-solomon-simd works on 16-bit
//!   symbols, and one rule for every backend keeps them interchangeable in tests and callers.
//!   A length of zero is a no-op.
//! - `encode` writes all m parity shards from the k data shards.
//! - `reconstruct` writes every shard in `rebuild` that is not in `present`, from any k shards in
//!   `present`; absent shards outside `rebuild` may be used as scratch and hold unspecified bytes
//!   afterwards. Fewer than k present shards is [`EcError::TooManyErasures`], never wrong bytes.
//! - A codec instance owns scratch state (tables, work buffers), so calls take `&mut self`; use one
//!   instance per core or stream. Instances are `Send`.

use crate::isal::IsalCauchyCodec;
use crate::rs_simd::RsSimdCodec;
use crate::scheme::{CodecKind, Scheme, SchemeError};
use crate::shard_set::ShardSet;

/// Every shard length handed to a codec must be a multiple of this.
pub const SHARD_LENGTH_MULTIPLE_BYTES: usize = 2;

/// Errors of the codec, the stripe encoder and the stripe decoder.
#[derive(Debug, thiserror::Error)]
pub enum EcError {
    #[error(transparent)]
    Scheme(#[from] SchemeError),
    #[error("expected {expected} shards, got {got}")]
    ShardCount { expected: usize, got: usize },
    #[error("shards differ in length: expected {expected_bytes} bytes, got {got_bytes}")]
    ShardLengthMismatch {
        expected_bytes: usize,
        got_bytes: usize,
    },
    #[error(
        "shard length {len_bytes} bytes is invalid: must be a multiple of \
         {SHARD_LENGTH_MULTIPLE_BYTES} and below 2^31"
    )]
    InvalidShardLength { len_bytes: usize },
    #[error(
        "too many erasures: {available} shards available, {data_shards} needed \
         ({missing} missing, at most {parity_shards} can be rebuilt)"
    )]
    TooManyErasures {
        available: usize,
        missing: usize,
        data_shards: usize,
        parity_shards: usize,
    },
    #[error("decode matrix for the surviving shards is singular (codec bug)")]
    SingularMatrix,
    #[error("reed-solomon-simd: {0}")]
    RsSimd(#[from] reed_solomon_simd::Error),
    #[error(
        "piece size {piece_size_bytes} bytes is invalid: must be a positive multiple of {multiple_bytes}"
    )]
    InvalidPieceSize {
        piece_size_bytes: usize,
        multiple_bytes: usize,
    },
    #[error(
        "buffer pool hands out {pool_buffer_bytes}-byte buffers, pieces are {piece_size_bytes} bytes"
    )]
    PoolBufferSize {
        pool_buffer_bytes: usize,
        piece_size_bytes: usize,
    },
    #[error("object was written with scheme {object} but the codec is {codec}")]
    SchemeMismatch { object: Scheme, codec: Scheme },
    #[error("byte range {start}..{end} is not within the object's {object_len_bytes} bytes")]
    RangeNotSatisfiable {
        start: u64,
        end: u64,
        object_len_bytes: u64,
    },
    #[error("piece for shard {shard} has {got_bytes} bytes, expected {expected_bytes}")]
    PieceLength {
        shard: usize,
        expected_bytes: usize,
        got_bytes: usize,
    },
    #[error("shard index {shard} is out of range for a stripe of {total_shards} shards")]
    ShardOutOfRange { shard: usize, total_shards: usize },
    #[error("API misuse: {0}")]
    ApiMisuse(&'static str),
}

/// An erasure codec for one scheme. See the module header for the contract.
pub trait ErasureCodec: Send {
    /// The scheme this instance encodes (codec, k, m).
    fn scheme(&self) -> Scheme;

    /// Computes the m parity shards from the k data shards.
    fn encode(&mut self, data: &[&[u8]], parity: &mut [&mut [u8]]) -> Result<(), EcError>;

    /// Rebuilds the shards in `rebuild` (minus `present`) from the shards in `present`.
    /// `shards` holds all k + m shards, each of the same length.
    fn reconstruct(
        &mut self,
        shards: &mut [&mut [u8]],
        present: ShardSet,
        rebuild: ShardSet,
    ) -> Result<(), EcError>;

    /// Rebuilds every absent shard.
    fn reconstruct_all(
        &mut self,
        shards: &mut [&mut [u8]],
        present: ShardSet,
    ) -> Result<(), EcError> {
        let all = ShardSet::range(0, self.scheme().total_shards());
        self.reconstruct(shards, present, all.difference(&present))
    }

    /// Rebuilds only the absent data shards (what a degraded read needs).
    fn reconstruct_data(
        &mut self,
        shards: &mut [&mut [u8]],
        present: ShardSet,
    ) -> Result<(), EcError> {
        let data = ShardSet::range(0, self.scheme().data_shards());
        self.reconstruct(shards, present, data.difference(&present))
    }

    /// Encodes like [`ErasureCodec::encode`] and also writes the CRC32C of every shard, data
    /// then parity, into `crc32c_out` (k + m entries). The default works in column blocks so the
    /// checksums read cache-hot bytes; a backend may fuse both into one pass.
    fn encode_with_crc32c(
        &mut self,
        data: &[&[u8]],
        parity: &mut [&mut [u8]],
        crc32c_out: &mut [u32],
    ) -> Result<(), EcError> {
        blocked_encode_with_crc32c(self, data, parity, crc32c_out)
    }

    /// True when the parity shards match the data shards. Allocates scratch parity: this is the
    /// scrubber's path, not the request path.
    fn verify(&mut self, shards: &[&[u8]]) -> Result<bool, EcError> {
        let scheme = self.scheme();
        check_shards(scheme.total_shards(), shards.iter().map(|s| s.len()))?;
        let (data, parity) = shards.split_at(scheme.data_shards());
        let len_bytes = data[0].len();
        let mut scratch = vec![0u8; len_bytes * scheme.parity_shards()];
        let mut outputs: Vec<&mut [u8]> = if len_bytes == 0 {
            (0..scheme.parity_shards()).map(|_| &mut [][..]).collect()
        } else {
            scratch.chunks_mut(len_bytes).collect()
        };
        self.encode(data, &mut outputs)?;
        Ok(outputs
            .iter()
            .zip(parity)
            .all(|(computed, stored)| **computed == **stored))
    }
}

/// Column block of [`blocked_encode_with_crc32c`]: 16 shards x 32 KiB stay within a 512 KiB L2.
const CRC_BLOCK_BYTES: usize = 32 * 1024;

/// Encode + checksum in column blocks: encode a block of every shard, then checksum those blocks
/// while they are still in cache.
pub(crate) fn blocked_encode_with_crc32c<C: ErasureCodec + ?Sized>(
    codec: &mut C,
    data: &[&[u8]],
    parity: &mut [&mut [u8]],
    crc32c_out: &mut [u32],
) -> Result<(), EcError> {
    let scheme = codec.scheme();
    let len_bytes = check_encode_args(scheme, data, parity)?;
    if crc32c_out.len() != scheme.total_shards() {
        return Err(EcError::ShardCount {
            expected: scheme.total_shards(),
            got: crc32c_out.len(),
        });
    }
    crc32c_out.fill(0);
    let mut block_start = 0;
    while block_start < len_bytes {
        let block_end = (block_start + CRC_BLOCK_BYTES).min(len_bytes);
        let data_blocks: smallvec::SmallVec<[&[u8]; 32]> = data
            .iter()
            .map(|shard| &shard[block_start..block_end])
            .collect();
        let mut parity_blocks: smallvec::SmallVec<[&mut [u8]; 32]> = parity
            .iter_mut()
            .map(|shard| &mut shard[block_start..block_end])
            .collect();
        codec.encode(&data_blocks, &mut parity_blocks)?;
        let blocks = data_blocks
            .iter()
            .map(|block| &**block)
            .chain(parity_blocks.iter().map(|block| &**block));
        for (crc, block) in crc32c_out.iter_mut().zip(blocks) {
            *crc = crc32c::crc32c_append(*crc, block);
        }
        block_start = block_end;
    }
    Ok(())
}

/// Builds the codec named by `scheme`.
pub fn new_codec(scheme: Scheme) -> Box<dyn ErasureCodec> {
    match scheme.codec() {
        CodecKind::IsalCauchy => Box::new(IsalCauchyCodec::new(scheme)),
        CodecKind::RsSimd => Box::new(RsSimdCodec::new(scheme)),
    }
}

/// Checks the shard count and that all lengths are equal and valid; returns the common length.
pub(crate) fn check_shards(
    expected_count: usize,
    lengths: impl ExactSizeIterator<Item = usize>,
) -> Result<usize, EcError> {
    if lengths.len() != expected_count {
        return Err(EcError::ShardCount {
            expected: expected_count,
            got: lengths.len(),
        });
    }
    let mut common: Option<usize> = None;
    for len_bytes in lengths {
        match common {
            None => common = Some(len_bytes),
            Some(expected_bytes) if expected_bytes != len_bytes => {
                return Err(EcError::ShardLengthMismatch {
                    expected_bytes,
                    got_bytes: len_bytes,
                });
            }
            Some(_) => {}
        }
    }
    let len_bytes = common.unwrap_or(0);
    if !len_bytes.is_multiple_of(SHARD_LENGTH_MULTIPLE_BYTES) || len_bytes > i32::MAX as usize {
        return Err(EcError::InvalidShardLength { len_bytes });
    }
    Ok(len_bytes)
}

/// Validates the encode arguments; returns the shard length.
pub(crate) fn check_encode_args(
    scheme: Scheme,
    data: &[&[u8]],
    parity: &[&mut [u8]],
) -> Result<usize, EcError> {
    if data.len() != scheme.data_shards() {
        return Err(EcError::ShardCount {
            expected: scheme.data_shards(),
            got: data.len(),
        });
    }
    if parity.len() != scheme.parity_shards() {
        return Err(EcError::ShardCount {
            expected: scheme.parity_shards(),
            got: parity.len(),
        });
    }
    check_shards(
        scheme.total_shards(),
        data.iter()
            .map(|s| s.len())
            .chain(parity.iter().map(|s| s.len()))
            .collect::<smallvec::SmallVec<[usize; 32]>>()
            .into_iter(),
    )
}

/// Validates reconstruct arguments; returns the shard length and the shards to write
/// (`rebuild` minus `present`, restricted to the stripe).
pub(crate) fn check_reconstruct_args(
    scheme: Scheme,
    shards: &[&mut [u8]],
    present: ShardSet,
    rebuild: ShardSet,
) -> Result<(usize, ShardSet), EcError> {
    let len_bytes = check_shards(scheme.total_shards(), shards.iter().map(|s| s.len()))?;
    let stripe = ShardSet::range(0, scheme.total_shards());
    let present = present.intersection(&stripe);
    let targets = rebuild.intersection(&stripe).difference(&present);
    if !targets.is_empty() && present.len() < scheme.data_shards() {
        return Err(EcError::TooManyErasures {
            available: present.len(),
            missing: scheme.total_shards() - present.len(),
            data_shards: scheme.data_shards(),
            parity_shards: scheme.parity_shards(),
        });
    }
    Ok((len_bytes, targets))
}
