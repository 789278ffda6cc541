//! Erasure coding for Cairn: one codec trait, ISA-L and reed-solomon-simd backends, streaming
//! stripes.
//!
//! Model: an object is cut into stripes of k data pieces of `piece_size_bytes`; each stripe gets
//! m parity pieces and every piece a CRC32C. Shard `i` of an object is the concatenation of piece
//! `i` of every stripe, stored on its own storage node. The code is systematic, so a healthy read
//! fetches only the data pieces that cover the wanted bytes and decodes nothing.
//!
//! - [`Scheme`] (`isal-cauchy:8+4`, `rs-simd:8+4`) names codec, k and m; it is stored with each
//!   object, and the object always decodes with the codec named there.
//! - [`ErasureCodec`] is the codec contract; [`new_codec`] builds the backend for a scheme.
//! - [`StripeLayout`] / [`ObjectLayout`] are the pure stripe and range arithmetic.
//! - [`StripeEncoder`] and [`StripeDecoder`] are sans-I/O push/pull state machines: no runtime,
//!   no I/O; the gateway's I/O shell moves bytes between them and the network or disks.
//! - [`BufferPool`] hands out 4096-aligned buffers that the shard log can use for O_DIRECT.
//! - [`calibrate`] / [`static_default_codec`] pick the default codec for new buckets.
//!
//! A PUT and a degraded range GET, with the I/O shell reduced to a vector of stored pieces:
//!
//! ```
//! use cairn_ec::*;
//!
//! let scheme: Scheme = "isal-cauchy:4+2".parse()?;
//! let piece_size_bytes = 4096;
//! let layout = StripeLayout::new(scheme, piece_size_bytes)?;
//! let pool = StripeEncoder::pool_for(layout, 2);
//! let mut encoder = StripeEncoder::new(new_codec(scheme), piece_size_bytes, pool.clone())?;
//!
//! // PUT: push body chunks as they arrive; each completed stripe goes to k + m storage nodes.
//! let body: Vec<u8> = (0..40_000u32).map(|i| i as u8).collect();
//! let mut stored: Vec<Vec<(Vec<u8>, u32)>> = Vec::new(); // [stripe][shard] -> (bytes, crc32c)
//! let mut keep = |stripe: EncodedStripe| {
//!     stored.push(stripe.pieces.iter().map(|p| (p.bytes.to_vec(), p.crc32c)).collect());
//! };
//! for mut chunk in body.chunks(1500) {
//!     while !chunk.is_empty() {
//!         let outcome = encoder.push(chunk)?;
//!         chunk = &chunk[outcome.consumed_bytes..];
//!         if let Some(stripe) = outcome.stripe {
//!             keep(stripe);
//!         }
//!     }
//! }
//! let finished = encoder.finish()?;
//! if let Some(stripe) = finished.last_stripe {
//!     keep(stripe);
//! }
//! let object = finished.layout; // store scheme, piece size and length with the object
//!
//! // GET bytes 10_000..30_000 while shard 1 is down.
//! let mut decoder = StripeDecoder::new(new_codec(object.scheme()), object, 10_000..30_000, pool)?;
//! let mut out = Vec::new();
//! loop {
//!     match decoder.next_step()? {
//!         DecoderStep::Fetch { stripe_index, shards } => {
//!             for shard in shards.iter() {
//!                 if shard == 1 {
//!                     decoder.mark_unavailable(ShardIndex(1))?;
//!                 } else {
//!                     let (bytes, crc) = &stored[stripe_index as usize][shard];
//!                     decoder.push_piece_bytes(ShardIndex(shard as u8), bytes, *crc)?;
//!                 }
//!             }
//!         }
//!         DecoderStep::Wait => unreachable!("every fetch above completes at once"),
//!         DecoderStep::Ready => decoder.output()?.copy_to(&mut out),
//!         DecoderStep::Done => break,
//!     }
//! }
//! assert_eq!(out, body[10_000..30_000]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod buffer;
mod calibrate;
mod codec;
mod decoder;
mod encoder;
#[cfg(target_arch = "x86_64")]
mod fused;
mod isal;
mod layout;
mod rs_simd;
mod scheme;
mod shard_set;

pub use buffer::{AlignedBuf, BUFFER_ALIGN_BYTES, BufferPool, PooledBuf};
pub use calibrate::{Calibration, CodecSpeed, calibrate, static_default_codec};
pub use codec::{EcError, ErasureCodec, SHARD_LENGTH_MULTIPLE_BYTES, new_codec};
pub use decoder::{DecoderStep, OwnedSegment, PieceVerdict, StripeDecoder, StripeOutput};
pub use encoder::{EncodedStripe, FinishedObject, PushOutcome, ShardPiece, StripeEncoder};
#[cfg(target_arch = "x86_64")]
pub use fused::FusedKernel;
pub use isal::IsalCauchyCodec;
pub use layout::{
    MIN_PIECE_SIZE_BYTES, ObjectLayout, PIECE_SIZE_MULTIPLE_BYTES, StripeLayout, StripeSpan,
    StripeSpans,
};
pub use rs_simd::{RsSimdCodec, SUB_STRIPE_BYTES};
pub use scheme::{CodecKind, MAX_TOTAL_SHARDS, Scheme, SchemeError};
pub use shard_set::{ShardIndex, ShardSet};
