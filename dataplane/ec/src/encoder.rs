//! Streaming stripe encoder (sans-I/O): push body bytes in, get encoded stripes out.
//!
//! Model: the body arrives as chunks of arbitrary sizes. [`StripeEncoder::push`] copies bytes
//! into the k data pieces of the current stripe (the one copy on the write path: it is what puts
//! the data into aligned buffers); an I/O shell that can read the body straight into memory uses
//! [`StripeEncoder::fill_buffer`] + [`StripeEncoder::commit_filled`] instead and avoids even that
//! copy. When the stripe is full the encoder computes the m parity pieces and the CRC32C of every
//! piece in one pass ([`ErasureCodec::encode_with_crc32c`]) and returns the [`EncodedStripe`].
//! Keep `k * piece_size_bytes` within the L2/L3 cache (64–256 KiB pieces): the data of a stripe
//! waits in memory until its last piece arrives, and larger stripes are encoded from DRAM. [`StripeEncoder::finish`] zero-pads
//! and encodes the final partial stripe and returns the object's [`ObjectLayout`], which records
//! the real length.
//!
//! Invariants: every emitted piece is exactly `piece_size_bytes` long, in a 4096-aligned pooled
//! buffer, and its `crc32c` is of exactly those bytes; padding bytes are zero (recycled buffers
//! are cleared); `push` returns at most one stripe, so memory is bounded by one stripe in
//! progress plus what the caller holds. Buffers come from the pool and go back when the caller
//! drops the pieces; giving the stripe back with [`StripeEncoder::recycle`] also reuses the piece
//! vector, so steady-state encoding does not allocate.

use crate::buffer::{BufferPool, PooledBuf};
use crate::codec::{EcError, ErasureCodec};
use crate::layout::{ObjectLayout, StripeLayout};
use crate::shard_set::ShardIndex;
use smallvec::SmallVec;

/// One shard's piece of one stripe.
#[derive(Debug)]
pub struct ShardPiece {
    pub shard: ShardIndex,
    /// Exactly `piece_size_bytes` bytes (data pieces of the last stripe are zero-padded).
    pub bytes: PooledBuf,
    /// CRC32C (Castagnoli) of `bytes`.
    pub crc32c: u32,
}

/// The k + m pieces of one stripe, in shard order.
#[derive(Debug)]
pub struct EncodedStripe {
    pub stripe_index: u64,
    /// Real object bytes in this stripe (less than k * piece size only for the last stripe).
    pub data_len_bytes: usize,
    pub pieces: Vec<ShardPiece>,
}

/// What one [`StripeEncoder::push`] did.
#[derive(Debug)]
pub struct PushOutcome {
    /// Bytes of the input consumed; less than the input only when a stripe completed.
    pub consumed_bytes: usize,
    /// The stripe completed by this push, if any.
    pub stripe: Option<EncodedStripe>,
}

/// The end of an object.
#[derive(Debug)]
pub struct FinishedObject {
    /// The final (possibly partial, zero-padded) stripe; `None` when the object length is a
    /// multiple of the stripe size (including the empty object).
    pub last_stripe: Option<EncodedStripe>,
    /// Scheme, piece size and real length: store it with the object.
    pub layout: ObjectLayout,
}

pub struct StripeEncoder {
    codec: Box<dyn ErasureCodec>,
    layout: StripeLayout,
    pool: BufferPool,
    /// The current stripe's k data pieces (taken lazily, so an empty object takes none).
    data_pieces: Vec<PooledBuf>,
    filled_bytes: usize,
    next_stripe_index: u64,
    object_len_bytes: u64,
    spare_piece_vectors: Vec<Vec<ShardPiece>>,
}

impl StripeEncoder {
    /// An encoder writing `piece_size_bytes` pieces with `codec`. `pool` must hand out buffers of
    /// `piece_size_bytes` (see [`StripeEncoder::pool_for`]).
    pub fn new(
        codec: Box<dyn ErasureCodec>,
        piece_size_bytes: usize,
        pool: BufferPool,
    ) -> Result<Self, EcError> {
        let layout = StripeLayout::new(codec.scheme(), piece_size_bytes)?;
        if pool.buffer_size_bytes() != piece_size_bytes {
            return Err(EcError::PoolBufferSize {
                pool_buffer_bytes: pool.buffer_size_bytes(),
                piece_size_bytes,
            });
        }
        let data_shards = layout.scheme().data_shards();
        Ok(StripeEncoder {
            codec,
            layout,
            pool,
            data_pieces: Vec::with_capacity(data_shards),
            filled_bytes: 0,
            next_stripe_index: 0,
            object_len_bytes: 0,
            spare_piece_vectors: Vec::new(),
        })
    }

    /// A pool sized for `layout`: enough idle buffers for a few stripes in flight.
    pub fn pool_for(layout: StripeLayout, stripes_in_flight: usize) -> BufferPool {
        BufferPool::new(
            layout.piece_size_bytes(),
            layout.scheme().total_shards() * stripes_in_flight.max(1),
        )
    }

    pub fn layout(&self) -> StripeLayout {
        self.layout
    }

    /// Bytes pushed so far.
    pub fn object_len_bytes(&self) -> u64 {
        self.object_len_bytes
    }

    /// Consumes bytes from `body` up to the end of the current stripe; returns the stripe when
    /// it completes. Call again with the rest of the input until it is consumed.
    pub fn push(&mut self, body: &[u8]) -> Result<PushOutcome, EcError> {
        let mut consumed_bytes = 0;
        while consumed_bytes < body.len() {
            let target = self.fill_buffer();
            let count = target.len().min(body.len() - consumed_bytes);
            target[..count].copy_from_slice(&body[consumed_bytes..consumed_bytes + count]);
            consumed_bytes += count;
            if let Some(stripe) = self.commit_filled(count)? {
                return Ok(PushOutcome {
                    consumed_bytes,
                    stripe: Some(stripe),
                });
            }
        }
        Ok(PushOutcome {
            consumed_bytes,
            stripe: None,
        })
    }

    /// Zero-copy ingestion: the unfilled rest of the current data piece (never empty). An I/O
    /// shell that can read the body straight into memory writes a prefix of it and then calls
    /// [`StripeEncoder::commit_filled`], saving the copy that `push` makes.
    pub fn fill_buffer(&mut self) -> &mut [u8] {
        let piece_size_bytes = self.layout.piece_size_bytes();
        let piece_index = self.filled_bytes / piece_size_bytes;
        if piece_index == self.data_pieces.len() {
            self.data_pieces.push(self.pool.take());
        }
        let offset_in_piece = self.filled_bytes % piece_size_bytes;
        &mut self.data_pieces[piece_index][offset_in_piece..]
    }

    /// Records that the first `len_bytes` of the last [`StripeEncoder::fill_buffer`] hold body
    /// bytes; returns the stripe if that completed it.
    pub fn commit_filled(&mut self, len_bytes: usize) -> Result<Option<EncodedStripe>, EcError> {
        if len_bytes == 0 {
            return Ok(None);
        }
        let piece_size_bytes = self.layout.piece_size_bytes();
        let piece_index = self.filled_bytes / piece_size_bytes;
        let offset_in_piece = self.filled_bytes % piece_size_bytes;
        if piece_index >= self.data_pieces.len() || offset_in_piece + len_bytes > piece_size_bytes {
            return Err(EcError::ApiMisuse(
                "commit_filled exceeds the buffer from fill_buffer",
            ));
        }
        self.filled_bytes += len_bytes;
        self.object_len_bytes += len_bytes as u64;
        if self.filled_bytes == self.layout.stripe_data_bytes() {
            Ok(Some(self.encode_current()?))
        } else {
            Ok(None)
        }
    }

    /// Pads and encodes the last partial stripe and returns the object's layout. The encoder is
    /// then ready for a new object.
    pub fn finish(&mut self) -> Result<FinishedObject, EcError> {
        let last_stripe = if self.filled_bytes > 0 {
            Some(self.encode_current()?)
        } else {
            None
        };
        let layout = self.layout.object(self.object_len_bytes);
        debug_assert_eq!(layout.stripe_count(), self.next_stripe_index);
        self.next_stripe_index = 0;
        self.object_len_bytes = 0;
        Ok(FinishedObject {
            last_stripe,
            layout,
        })
    }

    /// Gives a stripe back so its piece vector is reused (its buffers return to the pool).
    pub fn recycle(&mut self, mut stripe: EncodedStripe) {
        stripe.pieces.clear();
        if self.spare_piece_vectors.len() < 4 {
            self.spare_piece_vectors.push(stripe.pieces);
        }
    }

    fn encode_current(&mut self) -> Result<EncodedStripe, EcError> {
        let scheme = self.layout.scheme();
        let piece_size_bytes = self.layout.piece_size_bytes();
        let data_len_bytes = self.filled_bytes;
        // Pad: zero the tail of the partial piece and every piece not reached. Recycled buffers
        // hold old bytes, so this is required for the parity (and the stored pieces) to be right.
        if !data_len_bytes.is_multiple_of(piece_size_bytes) {
            let piece_index = data_len_bytes / piece_size_bytes;
            self.data_pieces[piece_index][data_len_bytes % piece_size_bytes..].fill(0);
        }
        while self.data_pieces.len() < scheme.data_shards() {
            let mut piece = self.pool.take();
            piece.fill(0);
            self.data_pieces.push(piece);
        }
        let mut parity_pieces: SmallVec<[PooledBuf; 32]> = (0..scheme.parity_shards())
            .map(|_| self.pool.take())
            .collect();
        let mut crcs: SmallVec<[u32; 32]> = (0..scheme.total_shards()).map(|_| 0).collect();
        {
            let data: SmallVec<[&[u8]; 32]> =
                self.data_pieces.iter().map(|piece| &piece[..]).collect();
            let mut parity: SmallVec<[&mut [u8]; 32]> = parity_pieces
                .iter_mut()
                .map(|piece| &mut piece[..])
                .collect();
            // One pass computes parity and every piece's checksum (fused on CPUs that allow it).
            self.codec
                .encode_with_crc32c(&data, &mut parity, &mut crcs)?;
        }
        let mut pieces = self
            .spare_piece_vectors
            .pop()
            .unwrap_or_else(|| Vec::with_capacity(scheme.total_shards()));
        let buffers = self.data_pieces.drain(..).chain(parity_pieces.drain(..));
        for (index, (bytes, crc32c)) in buffers.zip(crcs).enumerate() {
            debug_assert_eq!(crc32c::crc32c(&bytes), crc32c);
            pieces.push(ShardPiece {
                shard: ShardIndex(index as u8),
                bytes,
                crc32c,
            });
        }
        let stripe = EncodedStripe {
            stripe_index: self.next_stripe_index,
            data_len_bytes,
            pieces,
        };
        self.next_stripe_index += 1;
        self.filled_bytes = 0;
        Ok(stripe)
    }
}
