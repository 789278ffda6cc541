//! Streaming encoder and decoder, and the stripe/range arithmetic they share.

use cairn_ec::{
    BufferPool, CodecKind, DecoderStep, EcError, EncodedStripe, ObjectLayout, PieceVerdict, Scheme,
    ShardIndex, ShardSet, StripeDecoder, StripeEncoder, StripeLayout, new_codec,
};
use proptest::prelude::*;
use std::ops::Range;

/// Stored pieces: `[stripe][shard] -> (bytes, crc32c)`.
type Stored = Vec<Vec<(Vec<u8>, u32)>>;

fn body(len_bytes: usize, seed: u64) -> Vec<u8> {
    let mut state = seed | 1;
    (0..len_bytes)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect()
}

fn keep(stripe: EncodedStripe, stored: &mut Stored) {
    assert_eq!(
        stripe.stripe_index as usize,
        stored.len(),
        "stripes come in order"
    );
    stored.push(
        stripe
            .pieces
            .iter()
            .map(|piece| (piece.bytes.to_vec(), piece.crc32c))
            .collect(),
    );
}

/// Encodes `data` pushed in chunks of the given sizes (cycled).
fn encode_object(
    scheme: Scheme,
    piece_size_bytes: usize,
    data: &[u8],
    chunk_sizes: &[usize],
) -> (ObjectLayout, Stored) {
    let layout = StripeLayout::new(scheme, piece_size_bytes).unwrap();
    let mut encoder = StripeEncoder::new(
        new_codec(scheme),
        piece_size_bytes,
        StripeEncoder::pool_for(layout, 2),
    )
    .unwrap();
    let mut stored = Stored::new();
    let mut offset = 0;
    let mut chunk = 0;
    while offset < data.len() {
        let size = chunk_sizes[chunk % chunk_sizes.len()].max(1);
        chunk += 1;
        let mut input = &data[offset..(offset + size).min(data.len())];
        offset += input.len();
        while !input.is_empty() {
            let outcome = encoder.push(input).unwrap();
            input = &input[outcome.consumed_bytes..];
            if let Some(stripe) = outcome.stripe {
                keep(stripe, &mut stored);
            }
        }
    }
    let finished = encoder.finish().unwrap();
    if let Some(stripe) = finished.last_stripe {
        keep(stripe, &mut stored);
    }
    assert_eq!(finished.layout.object_len_bytes(), data.len() as u64);
    assert_eq!(finished.layout.stripe_count(), stored.len() as u64);
    (finished.layout, stored)
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Fault {
    /// Never arrives; the caller gives up on it.
    Missing,
    /// Declared late, then arrives anyway.
    Late,
    /// Arrives with a flipped byte.
    Corrupt,
}

struct DecodeReport {
    bytes: Vec<u8>,
    fetched_pieces: usize,
    corrupt_reports: usize,
    degraded_stripes: u64,
}

fn decode_object(
    layout: ObjectLayout,
    stored: &Stored,
    range: Range<u64>,
    fault: impl Fn(u64, usize) -> Option<Fault>,
) -> Result<DecodeReport, EcError> {
    let mut decoder = StripeDecoder::new(
        new_codec(layout.scheme()),
        layout,
        range,
        BufferPool::new(layout.piece_size_bytes(), layout.scheme().total_shards()),
    )?;
    let mut report = DecodeReport {
        bytes: Vec::new(),
        fetched_pieces: 0,
        corrupt_reports: 0,
        degraded_stripes: 0,
    };
    let mut late: Vec<(u64, usize)> = Vec::new();
    loop {
        // Late pieces show up just after the caller gave up waiting for them.
        for (stripe, shard) in late.drain(..) {
            if decoder.current_span().map(|span| span.stripe_index) == Some(stripe) {
                let (bytes, crc) = &stored[stripe as usize][shard];
                let verdict = decoder.push_piece_bytes(ShardIndex(shard as u8), bytes, *crc)?;
                assert_ne!(verdict, PieceVerdict::Corrupt);
            }
        }
        match decoder.next_step()? {
            DecoderStep::Fetch {
                stripe_index,
                shards,
            } => {
                for shard in shards.iter() {
                    report.fetched_pieces += 1;
                    let (bytes, crc) = &stored[stripe_index as usize][shard];
                    let index = ShardIndex(shard as u8);
                    match fault(stripe_index, shard) {
                        // Pool buffers and buffers given over take turns.
                        None if (stripe_index as usize + shard).is_multiple_of(2) => {
                            let mut buffer = decoder.pool().take();
                            buffer.copy_from_slice(bytes);
                            let verdict = decoder.push_piece(index, buffer, *crc)?;
                            assert_eq!(verdict, PieceVerdict::Accepted);
                        }
                        // ... with pieces hashed by the caller as they arrived.
                        None if (stripe_index as usize + shard) % 4 == 1 => {
                            let actual = crc32c::crc32c(bytes);
                            let verdict = decoder.push_piece_vec_hashed(
                                index,
                                bytes.clone(),
                                actual,
                                *crc,
                            )?;
                            assert_eq!(verdict, PieceVerdict::Accepted);
                        }
                        None => {
                            let verdict = decoder.push_piece_vec(index, bytes.clone(), *crc)?;
                            assert_eq!(verdict, PieceVerdict::Accepted);
                        }
                        Some(Fault::Missing) => decoder.mark_unavailable(index)?,
                        Some(Fault::Late) => {
                            decoder.mark_unavailable(index)?;
                            late.push((stripe_index, shard));
                        }
                        Some(Fault::Corrupt) => {
                            let mut corrupted = bytes.clone();
                            let position = (stripe_index as usize * 31 + shard) % corrupted.len();
                            corrupted[position] ^= 0x40;
                            let verdict = match shard % 3 {
                                0 => decoder.push_piece_bytes(index, &corrupted, *crc)?,
                                1 => decoder.push_piece_vec(index, corrupted, *crc)?,
                                _ => {
                                    let actual = crc32c::crc32c(&corrupted);
                                    decoder.push_piece_vec_hashed(index, corrupted, actual, *crc)?
                                }
                            };
                            assert_eq!(verdict, PieceVerdict::Corrupt);
                            report.corrupt_reports += 1;
                        }
                    }
                }
            }
            DecoderStep::Wait => assert!(!late.is_empty(), "decoder waits for nothing"),
            // Lent, or handed over, in turns.
            DecoderStep::Ready => match decoder.current_span() {
                Some(span) if span.stripe_index % 2 == 1 => {
                    for segment in decoder.take_output()? {
                        report
                            .bytes
                            .extend_from_slice(&segment.buffer[segment.range]);
                    }
                }
                _ => decoder.output()?.copy_to(&mut report.bytes),
            },
            DecoderStep::Done => {
                report.degraded_stripes = decoder.degraded_stripes();
                return Ok(report);
            }
        }
    }
}

fn xorshift(seed: u64, salt: u64) -> u64 {
    let mut state = seed ^ salt.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    for _ in 0..3 {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
    }
    state
}

/// Up to `max_faults` faults per stripe at pseudo-random shards, with random kinds.
fn random_faults(
    seed: u64,
    total_shards: usize,
    max_faults: usize,
) -> impl Fn(u64, usize) -> Option<Fault> {
    move |stripe, shard| {
        let count = (xorshift(seed, stripe) % (max_faults as u64 + 1)) as usize;
        // The faulty shards of this stripe: `count` consecutive indices from a random start.
        let start = (xorshift(seed, stripe + 1000) % total_shards as u64) as usize;
        let faulty = (0..count).any(|i| (start + i) % total_shards == shard);
        faulty.then(|| match xorshift(seed, stripe * 256 + shard as u64) % 3 {
            0 => Fault::Missing,
            1 => Fault::Late,
            _ => Fault::Corrupt,
        })
    }
}

fn scheme_strategy() -> impl Strategy<Value = Scheme> {
    (
        prop::sample::select(CodecKind::ALL.to_vec()),
        1usize..=8,
        1usize..=4,
    )
        .prop_map(|(codec, k, m)| Scheme::new(codec, k, m).unwrap())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    /// Any body, chunked any way, encodes into pieces that decode back exactly — also with up
    /// to m missing, late or corrupt pieces per stripe.
    #[test]
    fn stream_round_trip_with_faults(
        scheme in scheme_strategy(),
        pieces_of_64 in 1usize..=4,
        len_bytes in 0usize..6000,
        chunk_sizes in prop::collection::vec(1usize..700, 1..5),
        seed in any::<u64>(),
    ) {
        let piece_size_bytes = pieces_of_64 * 64;
        let data = body(len_bytes, seed);
        let (layout, stored) = encode_object(scheme, piece_size_bytes, &data, &chunk_sizes);

        // Every piece carries its own CRC32C and the padding is zero.
        for (stripe_index, stripe) in stored.iter().enumerate() {
            prop_assert_eq!(stripe.len(), scheme.total_shards());
            for (bytes, crc) in stripe {
                prop_assert_eq!(bytes.len(), piece_size_bytes);
                prop_assert_eq!(crc32c::crc32c(bytes), *crc);
            }
            let real = layout.stripe_data_len_bytes(stripe_index as u64);
            let flat: Vec<u8> = stripe[..scheme.data_shards()].iter().flat_map(|(b, _)| b.clone()).collect();
            prop_assert!(flat[real..].iter().all(|&b| b == 0));
        }

        let healthy = decode_object(layout, &stored, layout.full_range(), |_, _| None).unwrap();
        prop_assert_eq!(&healthy.bytes, &data);

        let faulty = decode_object(
            layout,
            &stored,
            layout.full_range(),
            random_faults(seed, scheme.total_shards(), scheme.parity_shards()),
        ).unwrap();
        prop_assert_eq!(&faulty.bytes, &data);
    }

    /// A range GET returns exactly the range and, when healthy, reads only the data pieces that
    /// hold it; with faults it still returns exactly the range.
    #[test]
    fn range_reads(
        scheme in scheme_strategy(),
        len_bytes in 1usize..5000,
        range_seed in any::<(u64, u64)>(),
        seed in any::<u64>(),
    ) {
        let data = body(len_bytes, seed);
        let (layout, stored) = encode_object(scheme, 128, &data, &[333]);
        let a = range_seed.0 % (len_bytes as u64 + 1);
        let b = range_seed.1 % (len_bytes as u64 + 1);
        let range = a.min(b)..a.max(b);
        let expected = &data[range.start as usize..range.end as usize];

        let healthy = decode_object(layout, &stored, range.clone(), |_, _| None).unwrap();
        prop_assert_eq!(&healthy.bytes[..], expected);
        let touched: usize = layout.spans(range.clone()).unwrap().map(|s| s.data_shards_touched().len()).sum();
        prop_assert_eq!(healthy.fetched_pieces, touched);

        let faulty = decode_object(
            layout,
            &stored,
            range,
            random_faults(seed ^ 1, scheme.total_shards(), scheme.parity_shards()),
        ).unwrap();
        prop_assert_eq!(&faulty.bytes[..], expected);
    }

    /// Padding pieces (data pieces wholly past a stripe's data, `cairn_common::padding`) are not
    /// stored: a decoder never asks for one, even to reconstruct around up to m faulty pieces,
    /// and counts them as known zeros towards the k pieces a reconstruction needs.
    #[test]
    fn padding_pieces_are_never_fetched(
        scheme in scheme_strategy(),
        len_bytes in 1usize..3000,
        range_seed in any::<(u64, u64)>(),
        seed in any::<u64>(),
    ) {
        let data = body(len_bytes, seed);
        let (layout, stored) = encode_object(scheme, 128, &data, &[700]);
        let a = range_seed.0 % (len_bytes as u64 + 1);
        let b = range_seed.1 % (len_bytes as u64 + 1);
        for range in [layout.full_range(), a.min(b)..a.max(b)] {
            let padding_fetched = std::cell::Cell::new(0usize);
            let faults = random_faults(seed, scheme.total_shards(), scheme.parity_shards());
            let decoded = decode_object(layout, &stored, range.clone(), |stripe, shard| {
                let padding = cairn_common::padding_data_pieces(
                    scheme.data_shards(),
                    128,
                    layout.stripe_data_len_bytes(stripe) as u64,
                );
                if padding.contains(&shard) {
                    padding_fetched.set(padding_fetched.get() + 1);
                    return Some(Fault::Missing);
                }
                faults(stripe, shard)
            }).unwrap();
            prop_assert_eq!(&decoded.bytes[..], &data[range.start as usize..range.end as usize]);
            prop_assert_eq!(padding_fetched.get(), 0);
        }
    }

    /// More than m unusable pieces in a stripe that needs decoding: a clear error, and no bytes
    /// of that stripe are produced.
    #[test]
    fn more_than_m_faults_is_an_error(
        scheme in scheme_strategy(),
        seed in any::<u64>(),
        corrupt in any::<bool>(),
    ) {
        let data = body(scheme.data_shards() * 256 * 2, seed);
        let (layout, stored) = encode_object(scheme, 256, &data, &[1000]);
        let total = scheme.total_shards();
        // m + 1 faulty shards in stripe 1, always including data shard 0 (which every
        // full-stripe read touches).
        let start = (seed % total as u64) as usize;
        let faulty: ShardSet = std::iter::once(0)
            .chain((0..total).map(|i| (start + i) % total).filter(|&s| s != 0))
            .take(scheme.parity_shards() + 1)
            .collect();
        let kind = if corrupt { Fault::Corrupt } else { Fault::Missing };
        let result = decode_object(layout, &stored, layout.full_range(), |stripe, shard| {
            (stripe == 1 && faulty.contains(shard)).then_some(kind)
        });
        let is_too_many = matches!(result, Err(EcError::TooManyErasures { .. }));
        prop_assert!(is_too_many, "{}", scheme);
    }

    /// The spans of a range agree with byte-by-byte arithmetic.
    #[test]
    fn spans_match_bytewise_mapping(
        k in 1usize..=6,
        pieces_of_64 in 1usize..=3,
        len_bytes in 0u64..3000,
        range_seed in any::<(u64, u64)>(),
    ) {
        let scheme = Scheme::new(CodecKind::IsalCauchy, k, 2).unwrap();
        let piece = pieces_of_64 * 64;
        let layout = StripeLayout::new(scheme, piece).unwrap().object(len_bytes);
        let a = range_seed.0 % (len_bytes + 1);
        let b = range_seed.1 % (len_bytes + 1);
        let range = a.min(b)..a.max(b);
        let mut mapped = Vec::new();
        for span in layout.spans(range.clone()).unwrap() {
            prop_assert!(span.len_bytes > 0);
            prop_assert!(span.offset_in_stripe_bytes + span.len_bytes <= span.stripe_data_len_bytes);
            for shard in span.data_shards_touched() {
                for offset in span.piece_range(shard) {
                    mapped.push((span.stripe_index, shard, offset));
                }
            }
        }
        let stripe_bytes = (k * piece) as u64;
        let expected: Vec<(u64, usize, usize)> = range
            .map(|byte| {
                let in_stripe = (byte % stripe_bytes) as usize;
                (byte / stripe_bytes, in_stripe / piece, in_stripe % piece)
            })
            .collect();
        prop_assert_eq!(mapped, expected);
    }
}

#[test]
fn layout_boundaries() {
    let scheme: Scheme = "isal-cauchy:4+2".parse().unwrap();
    let stripe = StripeLayout::new(scheme, 4096).unwrap();
    let stripe_bytes = 4 * 4096u64;

    // Empty object: no stripes, only the empty range.
    let empty = stripe.object(0);
    assert_eq!(empty.stripe_count(), 0);
    assert_eq!(empty.shard_len_bytes(), 0);
    assert_eq!(empty.spans(0..0).unwrap().count(), 0);
    assert!(matches!(
        empty.spans(0..1),
        Err(EcError::RangeNotSatisfiable { .. })
    ));

    // One byte: one stripe, one byte of real data, only shard 0 touched.
    let one = stripe.object(1);
    assert_eq!(one.stripe_count(), 1);
    assert_eq!(one.stripe_data_len_bytes(0), 1);
    let spans: Vec<_> = one.spans(0..1).unwrap().collect();
    assert_eq!(spans.len(), 1);
    assert_eq!(spans[0].data_shards_touched(), 0..1);
    assert_eq!(spans[0].piece_range(0), 0..1);

    // Exact multiples: no partial stripe.
    let exact = stripe.object(2 * stripe_bytes);
    assert_eq!(exact.stripe_count(), 2);
    assert_eq!(exact.stripe_data_len_bytes(1), stripe_bytes as usize);
    assert_eq!(exact.stripe_data_len_bytes(2), 0);
    let spans: Vec<_> = exact
        .spans(stripe_bytes - 1..stripe_bytes + 1)
        .unwrap()
        .collect();
    assert_eq!(spans.len(), 2);
    assert_eq!(
        (
            spans[0].stripe_index,
            spans[0].offset_in_stripe_bytes,
            spans[0].len_bytes
        ),
        (0, stripe_bytes as usize - 1, 1)
    );
    assert_eq!(spans[0].data_shards_touched(), 3..4);
    assert_eq!(
        (
            spans[1].stripe_index,
            spans[1].offset_in_stripe_bytes,
            spans[1].len_bytes
        ),
        (1, 0, 1)
    );
    assert_eq!(exact.spans(0..exact.object_len_bytes()).unwrap().len(), 2);

    // Last partial stripe: real length recorded, spans stop at the object's end.
    let partial = stripe.object(2 * stripe_bytes + 4096 + 5);
    assert_eq!(partial.stripe_count(), 3);
    assert_eq!(partial.stripe_data_len_bytes(2), 4096 + 5);
    assert_eq!(partial.shard_len_bytes(), 3 * 4096);
    let last: Vec<_> = partial
        .spans(2 * stripe_bytes..partial.object_len_bytes())
        .unwrap()
        .collect();
    assert_eq!(last.len(), 1);
    assert_eq!(last[0].data_shards_touched(), 0..2);
    assert_eq!(last[0].piece_range(1), 0..5);
    assert!(partial.spans(0..partial.object_len_bytes() + 1).is_err());

    // Invalid piece sizes.
    assert!(StripeLayout::new(scheme, 0).is_err());
    assert!(StripeLayout::new(scheme, 100).is_err());
}

#[test]
fn encoder_boundaries() {
    let scheme: Scheme = "rs-simd:3+2".parse().unwrap();
    let piece = 64;
    // Empty object: nothing emitted.
    let (layout, stored) = encode_object(scheme, piece, &[], &[1]);
    assert_eq!((layout.stripe_count(), stored.len()), (0, 0));
    assert!(
        decode_object(layout, &stored, 0..0, |_, _| None)
            .unwrap()
            .bytes
            .is_empty()
    );
    // One byte: one padded stripe.
    let (layout, stored) = encode_object(scheme, piece, &[0xAB], &[1]);
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0][0].0[0], 0xAB);
    assert!(stored[0][0].0[1..].iter().all(|&b| b == 0));
    assert!(stored[0][1].0.iter().all(|&b| b == 0));
    assert_eq!(
        decode_object(layout, &stored, 0..1, |_, s| (s == 0)
            .then_some(Fault::Missing))
        .unwrap()
        .bytes,
        vec![0xAB]
    );
    // Exact multiple: the last push completes the last stripe, finish adds nothing.
    let data = body(2 * 3 * piece, 5);
    let (layout, stored) = encode_object(scheme, piece, &data, &[3 * piece]);
    assert_eq!((layout.stripe_count(), stored.len()), (2, 2));
    assert_eq!(
        decode_object(layout, &stored, layout.full_range(), |_, _| None)
            .unwrap()
            .bytes,
        data
    );
}

#[test]
fn encoder_reuses_pooled_buffers() {
    let scheme: Scheme = "isal-cauchy:4+2".parse().unwrap();
    let layout = StripeLayout::new(scheme, 4096).unwrap();
    let pool = StripeEncoder::pool_for(layout, 2);
    let mut encoder = StripeEncoder::new(new_codec(scheme), 4096, pool.clone()).unwrap();
    let chunk = vec![7u8; 10_000];
    let mut stripes = 0;
    for _ in 0..100 {
        let mut input = &chunk[..];
        while !input.is_empty() {
            let outcome = encoder.push(input).unwrap();
            input = &input[outcome.consumed_bytes..];
            if let Some(stripe) = outcome.stripe {
                stripes += 1;
                for piece in &stripe.pieces {
                    assert_eq!(piece.bytes.as_ptr() as usize % 4096, 0);
                }
                // The caller writes the pieces and gives the stripe back.
                encoder.recycle(stripe);
            }
        }
    }
    encoder.finish().unwrap();
    assert!(stripes >= 60);
    // One stripe in progress plus one being handed out: never more than two stripes' worth.
    assert!(
        pool.allocated_buffers() <= 2 * scheme.total_shards(),
        "{}",
        pool.allocated_buffers()
    );
}

#[test]
fn decoder_refuses_another_codecs_object() {
    let written: Scheme = "isal-cauchy:4+2".parse().unwrap();
    let layout = StripeLayout::new(written, 64).unwrap().object(1000);
    let other = written.with_codec(CodecKind::RsSimd).unwrap();
    let result = StripeDecoder::new(new_codec(other), layout, 0..10, BufferPool::new(64, 4));
    assert!(matches!(result, Err(EcError::SchemeMismatch { .. })));
}

#[test]
fn late_piece_is_accepted_after_being_marked() {
    let scheme: Scheme = "isal-cauchy:2+1".parse().unwrap();
    let data = body(128, 1);
    let (layout, stored) = encode_object(scheme, 64, &data, &[128]);
    let mut decoder = StripeDecoder::new(
        new_codec(scheme),
        layout,
        layout.full_range(),
        BufferPool::new(64, 3),
    )
    .unwrap();
    assert_eq!(
        decoder.next_step().unwrap(),
        DecoderStep::Fetch {
            stripe_index: 0,
            shards: ShardSet::range(0, 2)
        }
    );
    decoder
        .push_piece_bytes(ShardIndex(0), &stored[0][0].0, stored[0][0].1)
        .unwrap();
    decoder.mark_unavailable(ShardIndex(1)).unwrap();
    // The decoder asks for parity instead of the late shard...
    assert_eq!(
        decoder.next_step().unwrap(),
        DecoderStep::Fetch {
            stripe_index: 0,
            shards: [2].into_iter().collect()
        }
    );
    assert_eq!(decoder.next_step().unwrap(), DecoderStep::Wait);
    // ...but the late piece wins the race and no decode is needed.
    assert_eq!(
        decoder
            .push_piece_bytes(ShardIndex(1), &stored[0][1].0, stored[0][1].1)
            .unwrap(),
        PieceVerdict::Accepted
    );
    assert_eq!(decoder.next_step().unwrap(), DecoderStep::Ready);
    let mut out = Vec::new();
    let output = decoder.output().unwrap();
    assert!(!output.reconstructed);
    output.copy_to(&mut out);
    assert_eq!(out, data);
    assert_eq!(decoder.next_step().unwrap(), DecoderStep::Done);
}

#[test]
fn every_fault_kind_forces_reconstruction_and_still_returns_the_data() {
    for codec in CodecKind::ALL {
        let scheme = Scheme::new(codec, 4, 2).unwrap();
        let data = body(4 * 4096 * 3 + 1234, 11);
        let (layout, stored) = encode_object(scheme, 4096, &data, &[65536]);
        for (fault, first, second) in [
            (Fault::Missing, 0, 5),
            (Fault::Corrupt, 0, 3),
            (Fault::Corrupt, 0, 4),
        ] {
            let report = decode_object(layout, &stored, layout.full_range(), |_, shard| {
                (shard == first || shard == second).then_some(fault)
            })
            .unwrap();
            assert_eq!(report.bytes, data, "{scheme} {fault:?}");
            assert_eq!(
                report.degraded_stripes,
                layout.stripe_count(),
                "{scheme} {fault:?}"
            );
            if fault == Fault::Corrupt {
                assert!(report.corrupt_reports >= layout.stripe_count() as usize);
            }
        }
    }
}

/// A 4+2 stripe holding 129 bytes in 128-byte pieces has padding pieces 2 and 3. With both
/// data pieces gone, the decoder fetches the two parity pieces only and rebuilds the data from
/// them and the padding; with one more piece gone it fails instead of guessing.
#[test]
fn a_short_stripe_decodes_from_parity_and_padding() {
    let scheme = Scheme::new(CodecKind::IsalCauchy, 4, 2).unwrap();
    let data = body(129, 7);
    let (layout, stored) = encode_object(scheme, 128, &data, &[129]);
    let decoded = decode_object(layout, &stored, layout.full_range(), |_, shard| {
        assert!(shard != 2 && shard != 3, "padding piece {shard} fetched");
        (shard < 2).then_some(Fault::Missing)
    })
    .unwrap();
    assert_eq!(decoded.bytes, data);
    assert_eq!(
        decoded.fetched_pieces, 4,
        "pieces 0 and 1, then parity 4 and 5"
    );
    assert_eq!(decoded.degraded_stripes, 1);

    let result = decode_object(layout, &stored, layout.full_range(), |_, shard| {
        (shard < 2 || shard == 5).then_some(Fault::Missing)
    });
    assert!(
        matches!(result, Err(EcError::TooManyErasures { available: 3, .. })),
        "{:?}",
        result.err()
    );
}

/// The footprint model of `StripeLayout::stored_footprint_bytes`: with the data in one piece,
/// the Cauchy code's parity pieces are multiples of it, zero wherever it is zero, so they are
/// stored as long as the data (a node drops trailing zero bytes).
#[test]
fn one_data_piece_gives_parity_pieces_as_long_as_it() {
    let trimmed = |bytes: &[u8]| {
        bytes
            .iter()
            .rposition(|byte| *byte != 0)
            .map_or(0, |at| at + 1)
    };
    for codec in CodecKind::ALL {
        let scheme = Scheme::new(codec, 4, 2).unwrap();
        let mut data = body(4124, 3);
        data[4123] = 0x5a;
        let (layout, stored) = encode_object(scheme, 8192, &data, &[4124]);
        assert_eq!(layout.stripe_count(), 1);
        for (shard, (bytes, _)) in stored[0].iter().enumerate() {
            let length = trimmed(bytes);
            match (shard, codec) {
                (0, _) => assert_eq!(length, 4124),
                (1..=3, _) => assert_eq!(length, 0, "padding piece {shard}"),
                (_, CodecKind::IsalCauchy) => assert_eq!(length, 4124, "parity {shard}"),
                // GF(2^16) symbols in 64-byte blocks: at most one block longer.
                (_, CodecKind::RsSimd) => assert!(length <= 4124 + 64, "parity {shard}: {length}"),
            }
        }
    }
}
