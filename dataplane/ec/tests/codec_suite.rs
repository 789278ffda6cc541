//! The shared codec suite: every backend runs the same contract tests on the same inputs.

use cairn_ec::{CodecKind, EcError, ErasureCodec, RsSimdCodec, Scheme, ShardSet, new_codec};
use proptest::prelude::*;

fn random_stripe(scheme: Scheme, len_bytes: usize, seed: u64) -> Vec<Vec<u8>> {
    // A small xorshift keeps inputs reproducible without pulling a RNG crate into the tests.
    let mut state = seed | 1;
    (0..scheme.total_shards())
        .map(|shard| {
            if shard >= scheme.data_shards() {
                return vec![0u8; len_bytes];
            }
            (0..len_bytes)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    state as u8
                })
                .collect()
        })
        .collect()
}

fn encode(codec: &mut dyn ErasureCodec, shards: &mut [Vec<u8>]) {
    let k = codec.scheme().data_shards();
    let (data, parity) = shards.split_at_mut(k);
    let data: Vec<&[u8]> = data.iter().map(|s| &s[..]).collect();
    let mut parity: Vec<&mut [u8]> = parity.iter_mut().map(|s| &mut s[..]).collect();
    codec.encode(&data, &mut parity).unwrap();
}

fn refs(shards: &mut [Vec<u8>]) -> Vec<&mut [u8]> {
    shards.iter_mut().map(|s| &mut s[..]).collect()
}

/// Random scheme shape: k in 1..=16, m in 1..=6.
fn shape() -> impl Strategy<Value = (usize, usize)> {
    (1usize..=16, 1usize..=6)
}

fn erasure_set(total: usize, count: usize, seed: u64) -> ShardSet {
    let mut order: Vec<usize> = (0..total).collect();
    let mut state = seed | 1;
    for i in (1..total).rev() {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        order.swap(i, (state >> 33) as usize % (i + 1));
    }
    order.into_iter().take(count).collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    /// Up to m erasures: every backend rebuilds every lost shard exactly.
    #[test]
    fn reconstructs_any_erasure_set_up_to_m(
        (k, m) in shape(),
        half_len in 0usize..600,
        erasures_seed in any::<u64>(),
        data_seed in any::<u64>(),
        erasure_fraction in 0.0f64..=1.0,
    ) {
        let len_bytes = half_len * 2;
        for codec_kind in CodecKind::ALL {
            let scheme = Scheme::new(codec_kind, k, m).unwrap();
            let mut codec = new_codec(scheme);
            let mut original = random_stripe(scheme, len_bytes, data_seed);
            encode(codec.as_mut(), &mut original);
            let lost_count = ((m as f64) * erasure_fraction).round() as usize;
            let lost = erasure_set(k + m, lost_count, erasures_seed);
            let present = ShardSet::range(0, k + m).difference(&lost);

            let mut damaged = original.clone();
            for shard in lost.iter() {
                damaged[shard].iter_mut().for_each(|b| *b = 0xA5);
            }
            codec.reconstruct_all(&mut refs(&mut damaged), present).unwrap();
            prop_assert_eq!(&damaged, &original, "{} lost {:?}", scheme, lost);

            let mut damaged = original.clone();
            for shard in lost.iter() {
                damaged[shard].iter_mut().for_each(|b| *b = 0x5A);
            }
            codec.reconstruct_data(&mut refs(&mut damaged), present).unwrap();
            prop_assert_eq!(&damaged[..k], &original[..k], "{} lost {:?}", scheme, lost);

            let shard_refs: Vec<&[u8]> = original.iter().map(|s| &s[..]).collect();
            prop_assert!(codec.verify(&shard_refs).unwrap());
        }
    }

    /// More than m erasures: a typed error, never made-up bytes.
    #[test]
    fn more_than_m_erasures_is_an_error(
        (k, m) in shape(),
        extra in 1usize..4,
        erasures_seed in any::<u64>(),
    ) {
        for codec_kind in CodecKind::ALL {
            let scheme = Scheme::new(codec_kind, k, m).unwrap();
            let mut codec = new_codec(scheme);
            let mut shards = random_stripe(scheme, 128, erasures_seed);
            encode(codec.as_mut(), &mut shards);
            let lost = erasure_set(k + m, (m + extra).min(k + m), erasures_seed);
            let present = ShardSet::range(0, k + m).difference(&lost);
            let result = codec.reconstruct_all(&mut refs(&mut shards), present);
            let is_too_many = matches!(result, Err(EcError::TooManyErasures { .. }));
            prop_assert!(is_too_many, "{}: {:?}", scheme, result);
        }
    }

    /// `encode_with_crc32c` (fused for ISA-L on AVX2 CPUs, blocked otherwise) writes the same
    /// parity as `encode` and the CRC32C of every shard, for any even length (SIMD body + tail).
    #[test]
    fn encode_with_crc32c_matches_encode_then_checksum(
        (k, m) in shape(),
        half_len in 0usize..1200,
        seed in any::<u64>(),
    ) {
        let len_bytes = half_len * 2;
        for codec_kind in CodecKind::ALL {
            let scheme = Scheme::new(codec_kind, k, m).unwrap();
            let mut codec = new_codec(scheme);
            let mut expected = random_stripe(scheme, len_bytes, seed);
            encode(codec.as_mut(), &mut expected);
            let mut fused = random_stripe(scheme, len_bytes, seed);
            for shard in &mut fused[k..] {
                shard.fill(0xEE); // stale bytes must be overwritten
            }
            let mut crcs = vec![0u32; k + m];
            {
                let (data, parity) = fused.split_at_mut(k);
                let data: Vec<&[u8]> = data.iter().map(|s| &s[..]).collect();
                let mut parity: Vec<&mut [u8]> = parity.iter_mut().map(|s| &mut s[..]).collect();
                codec.encode_with_crc32c(&data, &mut parity, &mut crcs).unwrap();
            }
            prop_assert_eq!(&fused, &expected, "{}", scheme);
            let expected_crcs: Vec<u32> = expected.iter().map(|s| crc32c::crc32c(s)).collect();
            prop_assert_eq!(crcs, expected_crcs, "{}", scheme);
        }
    }

    /// Every fused kernel the CPU supports (and the blocked fallback) agrees with ISA-L.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn isal_fused_kernels_match_isal(
        (k, m) in (1usize..=20, 1usize..=9),
        half_len in 0usize..700,
        seed in any::<u64>(),
    ) {
        use cairn_ec::{FusedKernel, IsalCauchyCodec};
        let len_bytes = half_len * 2;
        let scheme = Scheme::new(CodecKind::IsalCauchy, k, m).unwrap();
        let mut expected = random_stripe(scheme, len_bytes, seed);
        encode(&mut IsalCauchyCodec::new(scheme), &mut expected);
        let expected_crcs: Vec<u32> = expected.iter().map(|s| crc32c::crc32c(s)).collect();
        let kernels = std::iter::once(None).chain(FusedKernel::ALL.into_iter().map(Some));
        for kernel in kernels {
            let mut codec = IsalCauchyCodec::new(scheme);
            if !codec.set_fused_kernel(kernel) {
                continue; // the CPU lacks it
            }
            let mut shards = random_stripe(scheme, len_bytes, seed);
            let mut crcs = vec![0u32; k + m];
            {
                let (data, parity) = shards.split_at_mut(k);
                let data: Vec<&[u8]> = data.iter().map(|s| &s[..]).collect();
                let mut parity: Vec<&mut [u8]> = parity.iter_mut().map(|s| &mut s[..]).collect();
                codec.encode_with_crc32c(&data, &mut parity, &mut crcs).unwrap();
            }
            prop_assert_eq!(&shards, &expected, "{} {:?}", scheme, kernel);
            prop_assert_eq!(&crcs, &expected_crcs, "{} {:?}", scheme, kernel);
        }
    }

    /// A corrupted shard makes `verify` fail for every backend.
    #[test]
    fn verify_detects_corruption(
        (k, m) in shape(),
        half_len in 1usize..300,
        seed in any::<u64>(),
        position in any::<prop::sample::Index>(),
        flip in 1u8..=255,
    ) {
        for codec_kind in CodecKind::ALL {
            let scheme = Scheme::new(codec_kind, k, m).unwrap();
            let mut codec = new_codec(scheme);
            let mut shards = random_stripe(scheme, half_len * 2, seed);
            encode(codec.as_mut(), &mut shards);
            let byte = position.index((k + m) * half_len * 2);
            shards[byte / (half_len * 2)][byte % (half_len * 2)] ^= flip;
            let shard_refs: Vec<&[u8]> = shards.iter().map(|s| &s[..]).collect();
            prop_assert!(!codec.verify(&shard_refs).unwrap(), "{}", scheme);
        }
    }

    /// Shards rebuilt by one backend's reconstruction are identical however the survivors are
    /// chosen, and both backends recover the same data from the same input.
    #[test]
    fn backends_agree_on_recovered_data(
        (k, m) in shape(),
        seed in any::<u64>(),
    ) {
        let mut recovered = Vec::new();
        for codec_kind in CodecKind::ALL {
            let scheme = Scheme::new(codec_kind, k, m).unwrap();
            let mut codec = new_codec(scheme);
            let mut shards = random_stripe(scheme, 256, seed);
            encode(codec.as_mut(), &mut shards);
            // Lose the first min(m, k) data shards: the worst case for a systematic code.
            let lost = ShardSet::range(0, m.min(k));
            let present = ShardSet::range(0, k + m).difference(&lost);
            for shard in lost.iter() {
                shards[shard].fill(0);
            }
            codec.reconstruct_data(&mut refs(&mut shards), present).unwrap();
            recovered.push(shards[..k].to_vec());
        }
        prop_assert_eq!(&recovered[0], &recovered[1]);
        prop_assert_eq!(&recovered[0], &random_stripe(Scheme::new(CodecKind::IsalCauchy, k, m).unwrap(), 256, seed)[..k].to_vec());
    }
}

#[test]
fn codecs_reject_malformed_stripes() {
    for codec_kind in CodecKind::ALL {
        let scheme = Scheme::new(codec_kind, 3, 2).unwrap();
        let mut codec = new_codec(scheme);
        let data = [vec![0u8; 64], vec![0u8; 64], vec![0u8; 64]];
        let data_refs: Vec<&[u8]> = data.iter().map(|s| &s[..]).collect();
        let mut parity = [vec![0u8; 64], vec![0u8; 62]];
        let mut parity_refs: Vec<&mut [u8]> = parity.iter_mut().map(|s| &mut s[..]).collect();
        assert!(matches!(
            codec.encode(&data_refs, &mut parity_refs),
            Err(EcError::ShardLengthMismatch { .. })
        ));
        let mut parity_refs: Vec<&mut [u8]> = parity[..1].iter_mut().map(|s| &mut s[..]).collect();
        assert!(matches!(
            codec.encode(&data_refs, &mut parity_refs),
            Err(EcError::ShardCount { .. })
        ));
        let odd = [vec![0u8; 63], vec![0u8; 63], vec![0u8; 63]];
        let odd_refs: Vec<&[u8]> = odd.iter().map(|s| &s[..]).collect();
        let mut odd_parity = [vec![0u8; 63], vec![0u8; 63]];
        let mut odd_parity_refs: Vec<&mut [u8]> =
            odd_parity.iter_mut().map(|s| &mut s[..]).collect();
        assert!(matches!(
            codec.encode(&odd_refs, &mut odd_parity_refs),
            Err(EcError::InvalidShardLength { len_bytes: 63 })
        ));
    }
}

#[test]
fn reconstruct_with_nothing_missing_is_a_no_op() {
    for codec_kind in CodecKind::ALL {
        let scheme = Scheme::new(codec_kind, 4, 2).unwrap();
        let mut codec = new_codec(scheme);
        let mut shards = random_stripe(scheme, 512, 7);
        encode(codec.as_mut(), &mut shards);
        let before = shards.clone();
        codec
            .reconstruct_all(&mut refs(&mut shards), ShardSet::range(0, 6))
            .unwrap();
        assert_eq!(shards, before);
    }
}

#[test]
fn large_schemes_round_trip() {
    // Near the top of each backend's range, with the worst erasure pattern.
    for (codec_kind, k, m) in [
        (CodecKind::IsalCauchy, 200, 55),
        (CodecKind::RsSimd, 200, 55),
    ] {
        let scheme = Scheme::new(codec_kind, k, m).unwrap();
        let mut codec = new_codec(scheme);
        let mut original = random_stripe(scheme, 64, 99);
        encode(codec.as_mut(), &mut original);
        let mut shards = original.clone();
        let lost = ShardSet::range(0, m);
        for shard in lost.iter() {
            shards[shard].fill(0);
        }
        let present = ShardSet::range(0, k + m).difference(&lost);
        codec
            .reconstruct_all(&mut refs(&mut shards), present)
            .unwrap();
        assert_eq!(shards, original, "{scheme}");
    }
}

#[test]
fn rs_simd_sub_stripes_give_identical_parity() {
    // The sub-stripe optimisation must never change the code: compare against whole-shard
    // encoding, including a shard length that is not a multiple of 64 or of the sub-stripe.
    let scheme = Scheme::new(CodecKind::RsSimd, 5, 3).unwrap();
    for len_bytes in [64 * 1024 * 2 + 4096 + 34, 1 << 20] {
        let mut whole = random_stripe(scheme, len_bytes, 3);
        let mut cut = whole.clone();
        let mut small = whole.clone();
        encode(
            &mut RsSimdCodec::with_sub_stripe(scheme, usize::MAX),
            &mut whole,
        );
        encode(&mut RsSimdCodec::new(scheme), &mut cut);
        encode(&mut RsSimdCodec::with_sub_stripe(scheme, 4096), &mut small);
        assert_eq!(whole, cut);
        assert_eq!(whole, small);
        // Reconstruction across sub-stripes, including a parity shard.
        let lost: ShardSet = [0, 2, 6].into_iter().collect();
        let mut damaged = whole.clone();
        for shard in lost.iter() {
            damaged[shard].fill(0);
        }
        let present = ShardSet::range(0, 8).difference(&lost);
        RsSimdCodec::new(scheme)
            .reconstruct_all(&mut refs(&mut damaged), present)
            .unwrap();
        assert_eq!(damaged, whole);
    }
}
