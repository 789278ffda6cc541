//! Streaming stripe decoder (sans-I/O): tells the caller which shard pieces to fetch, takes them
//! as they arrive, and yields the original bytes of a byte range stripe by stripe.
//!
//! Model: the decoder walks the [`StripeSpan`]s of the requested range. For each stripe,
//! [`StripeDecoder::next_step`] first asks only for the data pieces that hold the wanted bytes
//! (the healthy path: no decode, and the output borrows the fetched buffers, so no copy). When a
//! piece is missing, late (the caller decides when and calls [`StripeDecoder::mark_unavailable`])
//! or fails its CRC32C in [`StripeDecoder::push_piece`], the decoder switches that stripe to
//! reconstruction and asks for further shards (other data shards first, then parity) until it
//! holds k verified pieces; [`StripeDecoder::output`] then rebuilds the wanted data pieces.
//! A late piece that arrives after all is still accepted while the stripe is open.
//! The padding pieces of a stripe whose data ends early (`cairn_common::padding`) are known
//! zeros: never asked for, and counted towards the k a reconstruction needs.
//!
//! Invariants: a piece is used only after its CRC32C matched the expected value the caller
//! supplied, so corrupt bytes are never returned; when fewer than k verified pieces can be had the
//! decoder fails with [`EcError::TooManyErasures`] instead of guessing; the codec must be the one
//! that wrote the object (checked against the layout's scheme). Piece buffers come from (and go
//! back to) a pool, so a steady-state read does not allocate per stripe; a caller whose I/O
//! already hands it each piece in a buffer of its own gives that buffer over instead
//! ([`StripeDecoder::push_piece_vec`]), and no copy is made.

use crate::buffer::{BufferPool, PooledBuf};
use crate::codec::{EcError, ErasureCodec};
use crate::layout::{ObjectLayout, StripeSpan, StripeSpans};
use crate::shard_set::{ShardIndex, ShardSet};
use smallvec::SmallVec;
use std::ops::Range;

/// What the I/O shell should do next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecoderStep {
    /// Fetch these shards' pieces of stripe `stripe_index` and push them (or mark them
    /// unavailable). Each shard is asked for once per stripe.
    Fetch { stripe_index: u64, shards: ShardSet },
    /// Pieces already asked for are outstanding: push them or mark them unavailable.
    Wait,
    /// The current stripe can be produced: call [`StripeDecoder::output`].
    Ready,
    /// Every byte of the range has been produced.
    Done,
}

/// What [`StripeDecoder::push_piece`] did with a piece.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PieceVerdict {
    /// Checksum matched; the piece will be used.
    Accepted,
    /// Wrong length or CRC32C mismatch: the piece is treated as missing. Report it to the healer.
    Corrupt,
    /// The stripe did not need it (already verified, or already produced).
    Unneeded,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum StripeState {
    /// Collecting pieces.
    Open,
    /// `output` was called; `next_step` moves to the next stripe.
    Produced,
}

/// A verified piece (or, after a decode, a scratch or rebuilt one): a pool buffer, or a buffer the
/// caller gave over.
enum Piece {
    Pooled(PooledBuf),
    Owned(Vec<u8>),
}

impl std::ops::Deref for Piece {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match self {
            Piece::Pooled(buffer) => buffer,
            Piece::Owned(buffer) => buffer,
        }
    }
}

impl std::ops::DerefMut for Piece {
    fn deref_mut(&mut self) -> &mut [u8] {
        match self {
            Piece::Pooled(buffer) => buffer,
            Piece::Owned(buffer) => buffer,
        }
    }
}

pub struct StripeDecoder {
    codec: Box<dyn ErasureCodec>,
    layout: ObjectLayout,
    pool: BufferPool,
    spans: StripeSpans,
    current: Option<StripeSpan>,
    state: StripeState,
    /// k + m slots; `Some` for verified pieces (and, after a decode, scratch and rebuilt pieces).
    pieces: Vec<Option<Piece>>,
    /// Verified pieces, and the stripe's padding data pieces from its start: known zeros, never
    /// fetched, with no slot until a decode gives them a zeroed buffer.
    valid: ShardSet,
    unavailable: ShardSet,
    requested: ShardSet,
    started: bool,
    degraded_stripes: u64,
}

/// The original bytes of one stripe's span, as one slice per data piece touched.
pub struct StripeOutput<'a> {
    pub span: StripeSpan,
    /// Whether this stripe needed reconstruction.
    pub reconstructed: bool,
    pieces: &'a [Option<Piece>],
}

impl<'a> StripeOutput<'a> {
    /// The wanted bytes in order, one slice per data piece; borrowed from the piece buffers.
    pub fn segments(&self) -> impl Iterator<Item = &'a [u8]> + '_ {
        let pieces = self.pieces;
        let span = self.span;
        span.data_shards_touched().map(move |shard| {
            let piece = pieces[shard].as_ref().expect("touched pieces are present");
            &piece[span.piece_range(shard)]
        })
    }

    /// Appends the wanted bytes to `out`.
    pub fn copy_to(&self, out: &mut Vec<u8>) {
        for segment in self.segments() {
            out.extend_from_slice(segment);
        }
    }
}

/// One data piece's wanted bytes, handed over by [`StripeDecoder::take_output`]:
/// `buffer[range]`.
pub struct OwnedSegment {
    pub buffer: Vec<u8>,
    pub range: Range<usize>,
}

impl StripeDecoder {
    /// A decoder for `range` (end-exclusive) of an object laid out as `layout`. `codec` must be
    /// built for `layout.scheme()`; `pool` must hand out `piece_size_bytes` buffers.
    pub fn new(
        codec: Box<dyn ErasureCodec>,
        layout: ObjectLayout,
        range: Range<u64>,
        pool: BufferPool,
    ) -> Result<Self, EcError> {
        if codec.scheme() != layout.scheme() {
            return Err(EcError::SchemeMismatch {
                object: layout.scheme(),
                codec: codec.scheme(),
            });
        }
        if pool.buffer_size_bytes() != layout.piece_size_bytes() {
            return Err(EcError::PoolBufferSize {
                pool_buffer_bytes: pool.buffer_size_bytes(),
                piece_size_bytes: layout.piece_size_bytes(),
            });
        }
        let spans = layout.spans(range)?;
        let total_shards = layout.scheme().total_shards();
        Ok(StripeDecoder {
            codec,
            layout,
            pool,
            spans,
            current: None,
            state: StripeState::Open,
            pieces: (0..total_shards).map(|_| None).collect(),
            valid: ShardSet::EMPTY,
            unavailable: ShardSet::EMPTY,
            requested: ShardSet::EMPTY,
            started: false,
            degraded_stripes: 0,
        })
    }

    pub fn layout(&self) -> ObjectLayout {
        self.layout
    }

    /// The pool pieces should be read into, so `push_piece` takes them without a copy.
    pub fn pool(&self) -> &BufferPool {
        &self.pool
    }

    /// The stripe being collected, if any.
    pub fn current_span(&self) -> Option<StripeSpan> {
        self.current
    }

    /// Stripes that needed reconstruction so far.
    pub fn degraded_stripes(&self) -> u64 {
        self.degraded_stripes
    }

    /// Shards of the current stripe reported missing, late or corrupt.
    pub fn unavailable_shards(&self) -> ShardSet {
        self.unavailable
    }

    /// Advances past a produced stripe and says what to do next.
    pub fn next_step(&mut self) -> Result<DecoderStep, EcError> {
        if !self.started || self.state == StripeState::Produced {
            self.started = true;
            self.open_next_stripe();
        }
        let Some(span) = self.current else {
            return Ok(DecoderStep::Done);
        };
        if self.is_ready(&span) {
            return Ok(DecoderStep::Ready);
        }
        let k = self.layout.scheme().data_shards();
        let touched = span.data_shard_set();
        let outstanding = self
            .requested
            .difference(&self.valid)
            .difference(&self.unavailable);
        let to_request = if touched.intersection(&self.unavailable).is_empty() {
            touched.difference(&self.requested)
        } else {
            // Degraded: aim for k verified (or padding) pieces, counting those still in flight.
            let needed = k.saturating_sub(self.valid.len() + outstanding.len());
            let blocked = self.requested.union(&self.unavailable).union(&self.valid);
            (0..self.layout.scheme().total_shards())
                .filter(|&shard| !blocked.contains(shard))
                .take(needed)
                .collect()
        };
        if !to_request.is_empty() {
            self.requested = self.requested.union(&to_request);
            return Ok(DecoderStep::Fetch {
                stripe_index: span.stripe_index,
                shards: to_request,
            });
        }
        if !outstanding.is_empty() {
            return Ok(DecoderStep::Wait);
        }
        let scheme = self.layout.scheme();
        Err(EcError::TooManyErasures {
            available: self.valid.len(),
            missing: self.unavailable.len(),
            data_shards: scheme.data_shards(),
            parity_shards: scheme.parity_shards(),
        })
    }

    /// Offers a piece of the current stripe with the CRC32C recorded at encode time.
    pub fn push_piece(
        &mut self,
        shard: ShardIndex,
        piece: PooledBuf,
        expected_crc32c: u32,
    ) -> Result<PieceVerdict, EcError> {
        self.push(shard, Piece::Pooled(piece), expected_crc32c)
    }

    /// Like [`StripeDecoder::push_piece`] for a piece read into a buffer of its own: the
    /// decoder keeps that buffer (no copy) and drops it with the stripe.
    pub fn push_piece_vec(
        &mut self,
        shard: ShardIndex,
        piece: Vec<u8>,
        expected_crc32c: u32,
    ) -> Result<PieceVerdict, EcError> {
        self.push(shard, Piece::Owned(piece), expected_crc32c)
    }

    /// Like [`StripeDecoder::push_piece_vec`] for a piece whose CRC32C the caller computed as it
    /// received the bytes (`actual_crc32c` must be the CRC32C of exactly `piece`): the decoder
    /// compares it with `expected_crc32c` instead of hashing the piece a second time.
    pub fn push_piece_vec_hashed(
        &mut self,
        shard: ShardIndex,
        piece: Vec<u8>,
        actual_crc32c: u32,
        expected_crc32c: u32,
    ) -> Result<PieceVerdict, EcError> {
        self.push_hashed(
            shard,
            Piece::Owned(piece),
            Some(actual_crc32c),
            expected_crc32c,
        )
    }

    /// Like [`StripeDecoder::push_piece`] for bytes not read into a pool buffer (one copy).
    pub fn push_piece_bytes(
        &mut self,
        shard: ShardIndex,
        piece: &[u8],
        expected_crc32c: u32,
    ) -> Result<PieceVerdict, EcError> {
        let index = self.check_shard(shard)?;
        if self.state == StripeState::Produced || self.valid.contains(index) {
            return Ok(PieceVerdict::Unneeded);
        }
        if piece.len() != self.layout.piece_size_bytes() {
            self.unavailable.insert(index);
            return Ok(PieceVerdict::Corrupt);
        }
        let mut buffer = self.pool.take();
        buffer.copy_from_slice(piece);
        self.push_piece(shard, buffer, expected_crc32c)
    }

    fn push(
        &mut self,
        shard: ShardIndex,
        piece: Piece,
        expected_crc32c: u32,
    ) -> Result<PieceVerdict, EcError> {
        self.push_hashed(shard, piece, None, expected_crc32c)
    }

    fn push_hashed(
        &mut self,
        shard: ShardIndex,
        piece: Piece,
        actual_crc32c: Option<u32>,
        expected_crc32c: u32,
    ) -> Result<PieceVerdict, EcError> {
        let index = self.check_shard(shard)?;
        if self.state == StripeState::Produced || self.valid.contains(index) {
            return Ok(PieceVerdict::Unneeded);
        }
        if piece.len() != self.layout.piece_size_bytes()
            || actual_crc32c.unwrap_or_else(|| crc32c::crc32c(&piece)) != expected_crc32c
        {
            self.unavailable.insert(index);
            return Ok(PieceVerdict::Corrupt);
        }
        self.pieces[index] = Some(piece);
        self.valid.insert(index);
        self.unavailable.remove(index);
        Ok(PieceVerdict::Accepted)
    }

    /// Reports that a shard's piece of the current stripe is missing or late. The next
    /// `next_step` asks for replacements. A late piece pushed afterwards is still accepted.
    pub fn mark_unavailable(&mut self, shard: ShardIndex) -> Result<(), EcError> {
        let index = self.check_shard(shard)?;
        if !self.valid.contains(index) {
            self.unavailable.insert(index);
        }
        Ok(())
    }

    /// Produces the current stripe's wanted bytes, reconstructing if needed. Valid only after
    /// `next_step` returned [`DecoderStep::Ready`].
    pub fn output(&mut self) -> Result<StripeOutput<'_>, EcError> {
        let span = self
            .current
            .ok_or(EcError::ApiMisuse("output called with no open stripe"))?;
        if self.state == StripeState::Produced {
            return Err(EcError::ApiMisuse("stripe already produced"));
        }
        if !self.is_ready(&span) {
            return Err(EcError::ApiMisuse("output called before Ready"));
        }
        let touched = span.data_shard_set();
        let rebuild = touched.difference(&self.valid);
        let reconstructed = !rebuild.is_empty();
        if reconstructed {
            for (index, slot) in self.pieces.iter_mut().enumerate() {
                if slot.is_none() {
                    let mut buffer = self.pool.take();
                    // Valid without a slot: a padding piece.
                    if self.valid.contains(index) {
                        buffer.fill(0);
                    }
                    *slot = Some(Piece::Pooled(buffer));
                }
            }
            let mut shards: SmallVec<[&mut [u8]; 32]> = self
                .pieces
                .iter_mut()
                .map(|slot| &mut slot.as_mut().expect("filled above")[..])
                .collect();
            self.codec.reconstruct(&mut shards, self.valid, rebuild)?;
            self.degraded_stripes += 1;
        }
        self.state = StripeState::Produced;
        Ok(StripeOutput {
            span,
            reconstructed,
            pieces: &self.pieces,
        })
    }

    /// Like [`StripeDecoder::output`], but hands the wanted bytes over instead of lending them:
    /// a piece the caller gave over ([`StripeDecoder::push_piece_vec`] and
    /// [`StripeDecoder::push_piece_vec_hashed`]) goes back with no copy, and the caller may
    /// change its bytes (decrypt them in place, say); a pool buffer or a rebuilt piece is copied
    /// out. One segment per data piece touched, in order.
    pub fn take_output(&mut self) -> Result<SmallVec<[OwnedSegment; 8]>, EcError> {
        let span = self.output()?.span;
        let segments = span
            .data_shards_touched()
            .map(|shard| {
                let range = span.piece_range(shard);
                match self.pieces[shard]
                    .take()
                    .expect("touched pieces are present")
                {
                    Piece::Owned(buffer) => OwnedSegment { buffer, range },
                    Piece::Pooled(buffer) => OwnedSegment {
                        buffer: buffer[range.clone()].to_vec(),
                        range: 0..range.len(),
                    },
                }
            })
            .collect();
        Ok(segments)
    }

    fn is_ready(&self, span: &StripeSpan) -> bool {
        span.data_shard_set().is_subset(&self.valid)
            || self.valid.len() >= self.layout.scheme().data_shards()
    }

    fn check_shard(&self, shard: ShardIndex) -> Result<usize, EcError> {
        let total_shards = self.layout.scheme().total_shards();
        if self.current.is_none() {
            return Err(EcError::ApiMisuse("no open stripe; call next_step first"));
        }
        if shard.get() >= total_shards {
            return Err(EcError::ShardOutOfRange {
                shard: shard.get(),
                total_shards,
            });
        }
        Ok(shard.get())
    }

    fn open_next_stripe(&mut self) {
        // Dropping the pieces returns their buffers to the pool.
        for slot in &mut self.pieces {
            *slot = None;
        }
        self.unavailable = ShardSet::EMPTY;
        self.requested = ShardSet::EMPTY;
        self.state = StripeState::Open;
        self.current = self.spans.next();
        self.valid = match self.current {
            Some(span) => {
                let padding = cairn_common::padding_data_pieces(
                    self.layout.scheme().data_shards(),
                    span.piece_size_bytes as u64,
                    span.stripe_data_len_bytes as u64,
                );
                ShardSet::range(padding.start, padding.end)
            }
            None => ShardSet::EMPTY,
        };
    }
}
