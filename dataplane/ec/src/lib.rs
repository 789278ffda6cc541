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
pub use decoder::{DecoderStep, PieceVerdict, StripeDecoder, StripeOutput};
pub use encoder::{EncodedStripe, FinishedObject, PushOutcome, ShardPiece, StripeEncoder};
#[cfg(target_arch = "x86_64")]
pub use fused::FusedKernel;
pub use isal::IsalCauchyCodec;
pub use layout::{ObjectLayout, PIECE_SIZE_MULTIPLE_BYTES, StripeLayout, StripeSpan, StripeSpans};
pub use rs_simd::{RsSimdCodec, SUB_STRIPE_BYTES};
pub use scheme::{CodecKind, MAX_TOTAL_SHARDS, Scheme, SchemeError};
pub use shard_set::{ShardIndex, ShardSet};
