//! Stripe and range arithmetic: pure functions from (scheme, piece size, object length, byte
//! range) to the stripes and pieces that hold those bytes.
//!
//! Model: an object of `object_len_bytes` is cut into stripes of `k * piece_size_bytes` data
//! bytes. Stripe `s` holds object bytes `[s * stripe_data_bytes, (s + 1) * stripe_data_bytes)`;
//! within a stripe, data shard `i` holds stripe bytes `[i * piece_size_bytes, (i + 1) *
//! piece_size_bytes)`. Every stripe has k + m full pieces; the last stripe's data is zero-padded
//! and its real length is `object_len_bytes - s * stripe_data_bytes`.
//!
//! Invariants: an empty object has zero stripes; `stripe_count = ceil(len / stripe_data_bytes)`;
//! the spans returned for a range are in order, non-empty, contiguous, and their lengths sum to
//! the range length, so a range GET reads exactly the stripes (and healthy-path data pieces) that
//! cover it.

use crate::codec::EcError;
use crate::scheme::Scheme;
use crate::shard_set::ShardSet;
use std::ops::Range;

/// Piece sizes must be a positive multiple of this. 64 keeps both codecs' SIMD blocks whole; the
/// shard log wants multiples of 4096 for O_DIRECT, which the gateway's sizes are.
pub const PIECE_SIZE_MULTIPLE_BYTES: usize = 64;

/// The smallest piece [`StripeLayout::for_object_len`] picks for a small object: one O_DIRECT
/// block of the shard log.
pub const MIN_PIECE_SIZE_BYTES: usize = 4096;

/// How an object is cut into stripes: scheme plus the per-shard piece size.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct StripeLayout {
    scheme: Scheme,
    piece_size_bytes: usize,
}

impl StripeLayout {
    pub fn new(scheme: Scheme, piece_size_bytes: usize) -> Result<Self, EcError> {
        if piece_size_bytes == 0
            || !piece_size_bytes.is_multiple_of(PIECE_SIZE_MULTIPLE_BYTES)
            || piece_size_bytes > i32::MAX as usize
        {
            return Err(EcError::InvalidPieceSize {
                piece_size_bytes,
                multiple_bytes: PIECE_SIZE_MULTIPLE_BYTES,
            });
        }
        Ok(StripeLayout {
            scheme,
            piece_size_bytes,
        })
    }

    pub fn scheme(&self) -> Scheme {
        self.scheme
    }

    pub fn piece_size_bytes(&self) -> usize {
        self.piece_size_bytes
    }

    /// Data bytes per stripe: k * piece size.
    pub fn stripe_data_bytes(&self) -> usize {
        self.scheme.data_shards() * self.piece_size_bytes
    }

    /// The layout to store an object of a known `object_len_bytes` (stored bytes) with: `self`,
    /// unless the object fits in one stripe of smaller pieces; then, among the power-of-two piece
    /// sizes from the smallest whose stripe holds the whole object (at least
    /// [`MIN_PIECE_SIZE_BYTES`]) up to the configured one, the one whose pieces take the fewest
    /// bytes on the storage nodes' disks ([`StripeLayout::stored_footprint_bytes`]), and of equal
    /// footprints the one with fewer pieces to write, then the smaller.
    ///
    /// Why: the last stripe is zero-padded to whole pieces, so a 4 KiB object in 256 KiB pieces
    /// costs an encode, a CRC and a padding fill of 1.5 MiB (4+2). Readers and the healer take the
    /// piece size from each object's record, so it may differ per object. Powers of two keep the
    /// number of distinct sizes (and so of buffer pools) small; `self` is returned when it is not
    /// a multiple of [`MIN_PIECE_SIZE_BYTES`] (the O_DIRECT block every smaller size keeps).
    /// The footprint decides between "as small as holds it" and one size up: 4,124 bytes (4 KiB
    /// and SSE's overhead) in 4 KiB pieces are two data pieces (the second holding 28 bytes) and
    /// two parity pieces, 28 KiB on disk and four writes; in one 8 KiB piece they are one data
    /// piece and two parity pieces, 24 KiB and three writes, and a read fetches one piece, not
    /// two. Larger small objects keep the smallest size (a 20 KiB object in 32 KiB pieces
    /// would be one data piece and two full-length parity pieces, 72 KiB instead of 56 KiB).
    pub fn for_object_len(self, object_len_bytes: u64) -> StripeLayout {
        let configured = self.piece_size_bytes;
        if !configured.is_multiple_of(MIN_PIECE_SIZE_BYTES) {
            return self;
        }
        let needed = object_len_bytes.div_ceil(self.scheme.data_shards() as u64);
        if needed >= configured as u64 {
            return self;
        }
        // `needed` < `configured` <= i32::MAX, so neither conversion nor rounding overflows.
        let smallest = (needed as usize)
            .next_power_of_two()
            .max(MIN_PIECE_SIZE_BYTES);
        if smallest >= configured {
            return self;
        }
        let cost = |piece_size_bytes: usize| {
            let layout = StripeLayout {
                scheme: self.scheme,
                piece_size_bytes,
            };
            let pieces = layout.data_pieces_holding(object_len_bytes) + self.scheme.parity_shards();
            (layout.stored_footprint_bytes(object_len_bytes), pieces)
        };
        let mut best = (cost(smallest), smallest);
        let mut candidate = smallest * 2;
        while candidate <= configured {
            let candidate_cost = cost(candidate);
            if candidate_cost < best.0 {
                best = (candidate_cost, candidate);
            }
            candidate *= 2;
        }
        StripeLayout {
            scheme: self.scheme,
            piece_size_bytes: best.1,
        }
    }

    /// Data pieces that hold some of an object of `object_len_bytes` that fits in one stripe
    /// (the rest are padding pieces, never written: `cairn_common::padding`).
    fn data_pieces_holding(&self, object_len_bytes: u64) -> usize {
        let padding = cairn_common::padding_data_pieces(
            self.scheme.data_shards(),
            self.piece_size_bytes as u64,
            object_len_bytes,
        );
        padding.start
    }

    /// Bytes the storage nodes' shard logs spend on the pieces of an object of
    /// `object_len_bytes` that fits in one stripe ([`cairn_common::shard_record_bytes`] per
    /// piece, padding pieces unwritten). A stored piece ends at its last non-zero byte; a parity
    /// piece is taken as full unless the data is one piece, when it is a multiple of that piece
    /// and as long (exact for the Cauchy code, within 64 bytes for the FFT code: see the ec test
    /// `one_data_piece_gives_parity_pieces_as_long_as_it`).
    pub fn stored_footprint_bytes(&self, object_len_bytes: u64) -> u64 {
        let piece = self.piece_size_bytes as u64;
        let data_pieces = self.data_pieces_holding(object_len_bytes) as u64;
        if data_pieces == 0 {
            return 0;
        }
        let last_piece = object_len_bytes - (data_pieces - 1) * piece;
        let data = (data_pieces - 1) * cairn_common::shard_record_bytes(piece)
            + cairn_common::shard_record_bytes(last_piece);
        let parity_len = if data_pieces == 1 {
            object_len_bytes
        } else {
            piece
        };
        data + self.scheme.parity_shards() as u64 * cairn_common::shard_record_bytes(parity_len)
    }

    /// The layout of an object of `object_len_bytes`.
    pub fn object(self, object_len_bytes: u64) -> ObjectLayout {
        ObjectLayout {
            stripe: self,
            object_len_bytes,
        }
    }
}

/// A stripe layout plus the object's real length: everything needed to plan reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ObjectLayout {
    stripe: StripeLayout,
    object_len_bytes: u64,
}

/// The part of one stripe that a byte range covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StripeSpan {
    pub stripe_index: u64,
    /// Offset of the first wanted byte within the stripe's data.
    pub offset_in_stripe_bytes: usize,
    pub len_bytes: usize,
    /// Offset of the first wanted byte within the object.
    pub object_offset_bytes: u64,
    /// Real (unpadded) data bytes in this stripe.
    pub stripe_data_len_bytes: usize,
    pub piece_size_bytes: usize,
}

impl StripeSpan {
    /// Data shards whose pieces hold the wanted bytes (what a healthy read fetches).
    pub fn data_shards_touched(&self) -> Range<usize> {
        if self.len_bytes == 0 {
            return 0..0;
        }
        let first = self.offset_in_stripe_bytes / self.piece_size_bytes;
        let last = (self.offset_in_stripe_bytes + self.len_bytes - 1) / self.piece_size_bytes;
        first..last + 1
    }

    /// The same as a [`ShardSet`].
    pub fn data_shard_set(&self) -> ShardSet {
        let touched = self.data_shards_touched();
        ShardSet::range(touched.start, touched.end)
    }

    /// For data shard `shard`, the byte range within its piece that the span wants
    /// (empty when the shard is not touched).
    pub fn piece_range(&self, shard: usize) -> Range<usize> {
        let piece_start = shard * self.piece_size_bytes;
        let piece_end = piece_start + self.piece_size_bytes;
        let start = self.offset_in_stripe_bytes.max(piece_start);
        let end = (self.offset_in_stripe_bytes + self.len_bytes).min(piece_end);
        if start >= end {
            0..0
        } else {
            start - piece_start..end - piece_start
        }
    }
}

impl ObjectLayout {
    pub fn stripe_layout(&self) -> StripeLayout {
        self.stripe
    }

    pub fn scheme(&self) -> Scheme {
        self.stripe.scheme
    }

    pub fn piece_size_bytes(&self) -> usize {
        self.stripe.piece_size_bytes
    }

    pub fn object_len_bytes(&self) -> u64 {
        self.object_len_bytes
    }

    pub fn stripe_count(&self) -> u64 {
        self.object_len_bytes
            .div_ceil(self.stripe.stripe_data_bytes() as u64)
    }

    /// Real data bytes in stripe `stripe_index` (0 past the end).
    pub fn stripe_data_len_bytes(&self, stripe_index: u64) -> usize {
        let stripe_bytes = self.stripe.stripe_data_bytes() as u64;
        let start = stripe_index.saturating_mul(stripe_bytes);
        (self.object_len_bytes.saturating_sub(start)).min(stripe_bytes) as usize
    }

    /// Bytes each shard stores for the whole object: stripe count x piece size.
    pub fn shard_len_bytes(&self) -> u64 {
        self.stripe_count() * self.stripe.piece_size_bytes as u64
    }

    /// The whole object as a range.
    pub fn full_range(&self) -> Range<u64> {
        0..self.object_len_bytes
    }

    /// The spans of the stripes covering `range` (end-exclusive), in order. An empty range gives
    /// no spans; a range past the end is an error.
    pub fn spans(&self, range: Range<u64>) -> Result<StripeSpans, EcError> {
        if range.start > range.end || range.end > self.object_len_bytes {
            return Err(EcError::RangeNotSatisfiable {
                start: range.start,
                end: range.end,
                object_len_bytes: self.object_len_bytes,
            });
        }
        Ok(StripeSpans {
            layout: *self,
            next_offset_bytes: range.start,
            end_offset_bytes: range.end,
        })
    }
}

/// Iterator over the [`StripeSpan`]s of a range; allocation-free.
#[derive(Clone, Debug)]
pub struct StripeSpans {
    layout: ObjectLayout,
    next_offset_bytes: u64,
    end_offset_bytes: u64,
}

impl Iterator for StripeSpans {
    type Item = StripeSpan;

    fn next(&mut self) -> Option<StripeSpan> {
        if self.next_offset_bytes >= self.end_offset_bytes {
            return None;
        }
        let stripe_bytes = self.layout.stripe.stripe_data_bytes() as u64;
        let stripe_index = self.next_offset_bytes / stripe_bytes;
        let stripe_start = stripe_index * stripe_bytes;
        let span_end = self.end_offset_bytes.min(stripe_start + stripe_bytes);
        let span = StripeSpan {
            stripe_index,
            offset_in_stripe_bytes: (self.next_offset_bytes - stripe_start) as usize,
            len_bytes: (span_end - self.next_offset_bytes) as usize,
            object_offset_bytes: self.next_offset_bytes,
            stripe_data_len_bytes: self.layout.stripe_data_len_bytes(stripe_index),
            piece_size_bytes: self.layout.stripe.piece_size_bytes,
        };
        self.next_offset_bytes = span_end;
        Some(span)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let remaining = if self.next_offset_bytes >= self.end_offset_bytes {
            0
        } else {
            let stripe_bytes = self.layout.stripe.stripe_data_bytes() as u64;
            (self.end_offset_bytes - 1) / stripe_bytes - self.next_offset_bytes / stripe_bytes + 1
        };
        (remaining as usize, Some(remaining as usize))
    }
}

impl ExactSizeIterator for StripeSpans {}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout(piece_size_bytes: usize) -> StripeLayout {
        StripeLayout::new("isal-cauchy:4+2".parse().expect("scheme"), piece_size_bytes)
            .expect("layout")
    }

    #[test]
    fn small_objects_get_the_stripe_that_stores_them_in_the_fewest_blocks() {
        let configured = layout(256 * 1024);
        for (object_len_bytes, piece_size_bytes) in [
            (0u64, 4096usize),
            (1, 4096),
            (4096, 4096),
            // 4 KiB and SSE's 28 bytes: one 8 KiB data piece (24 KiB on disk, three writes)
            // rather than 4 KiB and 28 bytes in two (28 KiB, four writes).
            (4096 + 28, 8192),
            (8128, 8192),
            // From here two 4 KiB data pieces take fewer blocks than one 8 KiB piece.
            (8129, 4096),
            (8192, 4096),
            // Equal blocks, fewer pieces: one 16 KiB data piece (36 KiB, three writes) rather
            // than three 4 KiB ones (36 KiB, five).
            (8193, 16384),
            (12224, 16384),
            (12225, 4096),
            (12288, 4096),
            // Equal footprints (44–48 KiB): two 8 KiB data pieces are fewer writes than four.
            (12289, 8192),
            (4 * 4096, 8192),
            (4 * 4096 + 1, 8192),
            (20 * 1024 + 28, 8192),
            (100_000, 32 * 1024),
            (4 * 128 * 1024, 128 * 1024),
            (4 * 128 * 1024 + 1, 256 * 1024),
            (4 * 256 * 1024, 256 * 1024),
            (u64::MAX, 256 * 1024),
        ] {
            let chosen = configured.for_object_len(object_len_bytes);
            assert_eq!(
                chosen.piece_size_bytes(),
                piece_size_bytes,
                "object of {object_len_bytes} bytes"
            );
            assert_eq!(chosen.scheme(), configured.scheme());
            if piece_size_bytes < 256 * 1024 {
                assert!(chosen.stripe_data_bytes() as u64 >= object_len_bytes);
            }
        }
    }

    #[test]
    fn footprints_count_blocks_of_written_pieces() {
        // Header and payload round up to 4 KiB blocks; padding pieces are not written.
        let scheme: Scheme = "isal-cauchy:4+2".parse().expect("scheme");
        let at = |piece_size_bytes: usize, object_len_bytes: u64| {
            StripeLayout::new(scheme, piece_size_bytes)
                .expect("layout")
                .stored_footprint_bytes(object_len_bytes)
        };
        const KIB: u64 = 1024;
        assert_eq!(at(4096, 0), 0);
        // One data piece and two parity pieces as long as it.
        assert_eq!(at(4096, 1), 3 * 4 * KIB);
        assert_eq!(at(8192, 4124), 3 * 8 * KIB);
        // 4,096 + 28 bytes: 8 KiB and 4 KiB of data, two full parity pieces of 8 KiB.
        assert_eq!(at(4096, 4124), (8 + 4 + 2 * 8) * KIB);
        // A whole stripe of 4 KiB pieces: six records of 8 KiB.
        assert_eq!(at(4096, 16 * KIB), 6 * 8 * KIB);
        assert_eq!(at(8192, 16 * KIB), 4 * 12 * KIB);
    }

    #[test]
    fn sizes_that_are_not_whole_blocks_are_kept() {
        assert_eq!(layout(64).for_object_len(1).piece_size_bytes(), 64);
        assert_eq!(
            layout(4096 + 64).for_object_len(1).piece_size_bytes(),
            4096 + 64
        );
        assert_eq!(layout(4096).for_object_len(1).piece_size_bytes(), 4096);
        // A configured size that is not a power of two still bounds the choice.
        assert_eq!(
            layout(12 * 1024)
                .for_object_len(4 * 9 * 1024)
                .piece_size_bytes(),
            12 * 1024
        );
    }
}
