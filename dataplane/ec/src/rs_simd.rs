//! reed-solomon-simd backend.
//!
//! Model: reed-solomon-simd copies shards into its own 64-byte-aligned work area, transforms,
//! and hands back recovery (parity) or restored original shards, which this wrapper copies into
//! the caller's buffers. Its decoder restores only original (data) shards, so a missing parity
//! shard is rebuilt by restoring the data and re-encoding.
//!
//! Invariant: shards are processed in sub-stripes of [`SUB_STRIPE_BYTES`]. The code works on
//! independent 64-byte blocks (two bytes of each 16-bit symbol, split in halves), so cutting a shard
//! at any multiple of 64 bytes gives byte-identical parity — checked by a test — while keeping the
//! work area in cache, which roughly doubles throughput on large shards. The encoder and decoder
//! are kept and `reset` between calls, so their work areas are allocated once per instance.

use crate::codec::{EcError, ErasureCodec, check_encode_args, check_reconstruct_args};
use crate::scheme::Scheme;
use crate::shard_set::ShardSet;
use reed_solomon_simd::{ReedSolomonDecoder, ReedSolomonEncoder};

/// Sub-stripe length; a multiple of 64 (see the module header).
pub const SUB_STRIPE_BYTES: usize = 64 * 1024;
const _: () = assert!(SUB_STRIPE_BYTES.is_multiple_of(64));

pub struct RsSimdCodec {
    scheme: Scheme,
    sub_stripe_bytes: usize,
    encoder: Option<ReedSolomonEncoder>,
    decoder: Option<ReedSolomonDecoder>,
}

impl RsSimdCodec {
    pub fn new(scheme: Scheme) -> Self {
        Self::with_sub_stripe(scheme, SUB_STRIPE_BYTES)
    }

    /// A codec that cuts shards at `sub_stripe_bytes` (a positive multiple of 64; `usize::MAX`
    /// means never). Only tests and benchmarks need another value than the default.
    pub fn with_sub_stripe(scheme: Scheme, sub_stripe_bytes: usize) -> Self {
        assert!(
            sub_stripe_bytes == usize::MAX
                || (sub_stripe_bytes > 0 && sub_stripe_bytes.is_multiple_of(64))
        );
        RsSimdCodec {
            scheme,
            sub_stripe_bytes,
            encoder: None,
            decoder: None,
        }
    }

    fn encoder(&mut self, len_bytes: usize) -> Result<&mut ReedSolomonEncoder, EcError> {
        let (k, m) = (self.scheme.data_shards(), self.scheme.parity_shards());
        match &mut self.encoder {
            Some(encoder) => encoder.reset(k, m, len_bytes)?,
            slot @ None => *slot = Some(ReedSolomonEncoder::new(k, m, len_bytes)?),
        }
        Ok(self.encoder.as_mut().expect("set above"))
    }

    fn decoder(&mut self, len_bytes: usize) -> Result<&mut ReedSolomonDecoder, EcError> {
        let (k, m) = (self.scheme.data_shards(), self.scheme.parity_shards());
        match &mut self.decoder {
            Some(decoder) => decoder.reset(k, m, len_bytes)?,
            slot @ None => *slot = Some(ReedSolomonDecoder::new(k, m, len_bytes)?),
        }
        Ok(self.decoder.as_mut().expect("set above"))
    }

    fn sub_stripes(&self, len_bytes: usize) -> impl Iterator<Item = (usize, usize)> + use<> {
        let step = self.sub_stripe_bytes.min(len_bytes).max(1);
        (0..len_bytes)
            .step_by(step)
            .map(move |start| (start, (start + step).min(len_bytes)))
    }
}

impl ErasureCodec for RsSimdCodec {
    fn scheme(&self) -> Scheme {
        self.scheme
    }

    fn encode(&mut self, data: &[&[u8]], parity: &mut [&mut [u8]]) -> Result<(), EcError> {
        let len_bytes = check_encode_args(self.scheme, data, parity)?;
        for (start, end) in self.sub_stripes(len_bytes) {
            let encoder = self.encoder(end - start)?;
            for shard in data {
                encoder.add_original_shard(&shard[start..end])?;
            }
            let result = encoder.encode()?;
            for (index, output) in parity.iter_mut().enumerate() {
                let recovery = result.recovery(index).expect("m recovery shards");
                output[start..end].copy_from_slice(recovery);
            }
        }
        Ok(())
    }

    fn reconstruct(
        &mut self,
        shards: &mut [&mut [u8]],
        present: ShardSet,
        rebuild: ShardSet,
    ) -> Result<(), EcError> {
        let (len_bytes, targets) = check_reconstruct_args(self.scheme, shards, present, rebuild)?;
        if targets.is_empty() || len_bytes == 0 {
            return Ok(());
        }
        let k = self.scheme.data_shards();
        let data = ShardSet::range(0, k);
        let present = present.intersection(&ShardSet::range(0, self.scheme.total_shards()));
        let missing_data = data.difference(&present);
        let rebuild_parity = !targets.difference(&data).is_empty();
        // Rebuilding parity needs every data shard, so restore all missing data shards then.
        let restore = if rebuild_parity {
            missing_data
        } else {
            targets
        };
        let survivors: ShardSet = present.iter().take(k).collect();
        for (start, end) in self.sub_stripes(len_bytes) {
            if !restore.is_empty() {
                let decoder = self.decoder(end - start)?;
                for index in survivors.iter() {
                    let piece = &shards[index][start..end];
                    if index < k {
                        decoder.add_original_shard(index, piece)?;
                    } else {
                        decoder.add_recovery_shard(index - k, piece)?;
                    }
                }
                let result = decoder.decode()?;
                for index in restore.iter() {
                    let restored = result
                        .restored_original(index)
                        .expect("decoder restores every missing original");
                    shards[index][start..end].copy_from_slice(restored);
                }
            }
            if rebuild_parity {
                let encoder = self.encoder(end - start)?;
                for shard in &shards[..k] {
                    encoder.add_original_shard(&shard[start..end])?;
                }
                let result = encoder.encode()?;
                for index in targets.iter().filter(|&index| index >= k) {
                    let recovery = result.recovery(index - k).expect("m recovery shards");
                    shards[index][start..end].copy_from_slice(recovery);
                }
            }
        }
        Ok(())
    }
}
