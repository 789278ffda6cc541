//! Choosing the default codec for new buckets: a static rule, and a startup calibration that
//! measures both codecs on the running CPU.
//!
//! Model: new buckets get the codec that costs least CPU per byte on this machine. Encoding runs
//! on every PUT and decoding only on degraded reads, but a degraded read happens exactly when the
//! cluster is already stressed, so the calibration scores a codec by the time to encode a stripe
//! plus the time to decode it with m shards lost (equal weights). The static rule encodes the
//! measured outcome on the CPUs Cairn runs on (see STACK-NOTES.md: ISA-L is faster on x86-64 with
//! AVX2, by 1.3–3× on encode and 8–10× on decode) so a node can skip calibration.
//!
//! Invariant: calibration only reads the clock; it does no I/O and allocates only its test
//! stripe, once.

use crate::codec::new_codec;
use crate::scheme::{CodecKind, Scheme, SchemeError};
use crate::shard_set::ShardSet;
use std::time::{Duration, Instant};

/// The default codec without measuring: ISA-L where it has SIMD kernels (x86-64, aarch64),
/// reed-solomon-simd elsewhere (ISA-L's portable C path is slower than reed-solomon-simd's).
pub fn static_default_codec() -> CodecKind {
    if cfg!(any(target_arch = "x86_64", target_arch = "aarch64")) {
        CodecKind::IsalCauchy
    } else {
        CodecKind::RsSimd
    }
}

/// One codec's measured speed.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CodecSpeed {
    pub codec: CodecKind,
    /// Data bytes encoded (with the CRC32C of every piece, as the write path does) per second.
    pub encode_bytes_per_second: f64,
    /// Data bytes recovered per second with m shards lost.
    pub decode_bytes_per_second: f64,
}

impl CodecSpeed {
    /// Seconds of CPU per data byte to encode once and decode once.
    fn cost_seconds_per_byte(&self) -> f64 {
        1.0 / self.encode_bytes_per_second + 1.0 / self.decode_bytes_per_second
    }
}

/// The outcome of [`calibrate`].
#[derive(Clone, Debug, PartialEq)]
pub struct Calibration {
    pub scheme_shape: (usize, usize),
    pub shard_size_bytes: usize,
    pub speeds: Vec<CodecSpeed>,
    pub chosen: CodecKind,
}

/// Measures every codec on a k+m stripe of `shard_size_bytes` shards, spending about `budget`
/// in total, and picks the cheapest. Ties (within 1 %) go to the static rule.
pub fn calibrate(
    data_shards: usize,
    parity_shards: usize,
    shard_size_bytes: usize,
    budget: Duration,
) -> Result<Calibration, SchemeError> {
    let per_measurement = budget / (2 * CodecKind::ALL.len() as u32);
    let mut speeds = Vec::with_capacity(CodecKind::ALL.len());
    for codec in CodecKind::ALL {
        let scheme = Scheme::new(codec, data_shards, parity_shards)?;
        speeds.push(measure(scheme, shard_size_bytes, per_measurement));
    }
    let best = speeds
        .iter()
        .min_by(|a, b| {
            a.cost_seconds_per_byte()
                .total_cmp(&b.cost_seconds_per_byte())
        })
        .expect("at least one codec");
    let preferred = speeds
        .iter()
        .find(|speed| speed.codec == static_default_codec())
        .expect("static default is measured");
    let chosen = if preferred.cost_seconds_per_byte() <= best.cost_seconds_per_byte() * 1.01 {
        preferred.codec
    } else {
        best.codec
    };
    Ok(Calibration {
        scheme_shape: (data_shards, parity_shards),
        shard_size_bytes,
        speeds,
        chosen,
    })
}

fn measure(scheme: Scheme, shard_size_bytes: usize, duration: Duration) -> CodecSpeed {
    let shard_size_bytes = shard_size_bytes.max(64) & !1;
    let total = scheme.total_shards();
    let k = scheme.data_shards();
    let mut codec = new_codec(scheme);
    let mut shards: Vec<Vec<u8>> = (0..total)
        .map(|shard| {
            (0..shard_size_bytes)
                .map(|byte| (byte * 31 + shard * 7) as u8)
                .collect()
        })
        .collect();
    // The write path encodes and checksums in one call, so that is what is timed.
    let mut crcs = vec![0u32; total];
    let encode_seconds = time_per_call(duration, || {
        let (data, parity) = shards.split_at_mut(k);
        let data: Vec<&[u8]> = data.iter().map(|s| &s[..]).collect();
        let mut parity: Vec<&mut [u8]> = parity.iter_mut().map(|s| &mut s[..]).collect();
        codec
            .encode_with_crc32c(&data, &mut parity, &mut crcs)
            .expect("valid stripe");
    });
    // Lose the first m shards (data shards when m <= k): the expensive case.
    let present: ShardSet = (scheme.parity_shards()..total).collect();
    let decode_seconds = time_per_call(duration, || {
        let mut refs: Vec<&mut [u8]> = shards.iter_mut().map(|s| &mut s[..]).collect();
        codec
            .reconstruct_all(&mut refs, present)
            .expect("m erasures are recoverable");
    });
    let data_bytes = (k * shard_size_bytes) as f64;
    CodecSpeed {
        codec: scheme.codec(),
        encode_bytes_per_second: data_bytes / encode_seconds,
        decode_bytes_per_second: data_bytes / decode_seconds,
    }
}

/// Runs `work` repeatedly for about `duration` (at least three times); returns seconds per call.
fn time_per_call(duration: Duration, mut work: impl FnMut()) -> f64 {
    work(); // warm up tables, work buffers and caches
    let start = Instant::now();
    let mut calls = 0u32;
    while calls < 3 || start.elapsed() < duration {
        work();
        calls += 1;
    }
    start.elapsed().as_secs_f64().max(1e-9) / f64::from(calls)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn static_rule_picks_isal_on_x86_64() {
        if cfg!(target_arch = "x86_64") {
            assert_eq!(static_default_codec(), CodecKind::IsalCauchy);
        }
    }

    #[test]
    fn calibration_measures_both_codecs_and_picks_one() {
        let calibration = calibrate(4, 2, 16 * 1024, Duration::from_millis(40)).unwrap();
        assert_eq!(calibration.speeds.len(), 2);
        for speed in &calibration.speeds {
            assert!(speed.encode_bytes_per_second > 0.0);
            assert!(speed.decode_bytes_per_second > 0.0);
        }
        let best = calibration
            .speeds
            .iter()
            .min_by(|a, b| {
                a.cost_seconds_per_byte()
                    .total_cmp(&b.cost_seconds_per_byte())
            })
            .unwrap();
        let chosen = calibration
            .speeds
            .iter()
            .find(|s| s.codec == calibration.chosen)
            .unwrap();
        assert!(chosen.cost_seconds_per_byte() <= best.cost_seconds_per_byte() * 1.01);
        assert!(calibrate(0, 2, 1024, Duration::ZERO).is_err());
    }
}
