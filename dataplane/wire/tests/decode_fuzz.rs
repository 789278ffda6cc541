//! The CI fuzz run: random and mutated inputs must never panic the decoders or the header parser.
//! Case counts are chosen so the whole file runs in a few seconds unoptimised; set PROPTEST_CASES
//! to run longer locally.

use cairn_common::ShardId;
use cairn_wire::{
    ByteRange, ErrorCode, FRAME_HEADER_LEN_BYTES, FrameHeader, FrameLimits, HealthReport, Request,
    Response, ShardEntry, decode_request, decode_response, encode_request, encode_response,
};
use proptest::prelude::*;

/// `default_cases` unless PROPTEST_CASES asks for a longer (or shorter) run.
fn cases(default_cases: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(default_cases)
}

fn shard_id() -> impl Strategy<Value = ShardId> {
    any::<[u8; 32]>().prop_map(ShardId)
}

fn request() -> impl Strategy<Value = Request> {
    prop_oneof![
        (any::<u64>(), shard_id(), any::<u32>()).prop_map(|(request_id, shard_id, crc32c)| {
            Request::Put {
                request_id,
                shard_id,
                crc32c,
            }
        }),
        (
            any::<u64>(),
            shard_id(),
            proptest::option::of((any::<u64>(), any::<u64>())),
            any::<bool>()
        )
            .prop_map(|(request_id, shard_id, range, from_disk)| Request::Get {
                request_id,
                shard_id,
                range: range.map(|(offset, length)| ByteRange { offset, length }),
                from_disk,
            }),
        (any::<u64>(), shard_id()).prop_map(|(request_id, shard_id)| Request::Delete {
            request_id,
            shard_id
        }),
        (any::<u64>(), shard_id()).prop_map(|(request_id, shard_id)| Request::Stat {
            request_id,
            shard_id
        }),
        (any::<u64>(), proptest::option::of(shard_id()), any::<u32>()).prop_map(
            |(request_id, after, limit)| Request::Scan {
                request_id,
                after,
                limit
            }
        ),
        any::<u64>().prop_map(|request_id| Request::Health { request_id }),
    ]
}

fn shard_entry() -> impl Strategy<Value = ShardEntry> {
    (shard_id(), any::<u64>(), any::<u32>()).prop_map(|(shard_id, length, crc32c)| ShardEntry {
        shard_id,
        length,
        crc32c,
    })
}

fn response() -> impl Strategy<Value = Response> {
    prop_oneof![
        any::<u64>().prop_map(|request_id| Response::PutOk { request_id }),
        (any::<u64>(), any::<u64>(), any::<u32>()).prop_map(
            |(request_id, shard_length, crc32c)| Response::GetOk {
                request_id,
                shard_length,
                crc32c
            }
        ),
        (any::<u64>(), any::<bool>()).prop_map(|(request_id, existed)| Response::DeleteOk {
            request_id,
            existed
        }),
        (any::<u64>(), shard_entry())
            .prop_map(|(request_id, entry)| Response::StatOk { request_id, entry }),
        (
            any::<u64>(),
            proptest::collection::vec(shard_entry(), 0..8),
            proptest::option::of(shard_id())
        )
            .prop_map(|(request_id, entries, next_after)| Response::ScanOk {
                request_id,
                entries,
                next_after
            }),
        (any::<u64>(), any::<u32>(), any::<[u64; 14]>()).prop_map(|(request_id, cores, n)| {
            Response::HealthOk {
                request_id,
                report: HealthReport {
                    cores,
                    capacity_bytes: n[0],
                    used_bytes: n[1],
                    live_bytes: n[2],
                    shard_count: n[3],
                    segment_count: n[4],
                    io_errors: n[5],
                    checksum_errors: n[6],
                    cache_capacity_bytes: n[7],
                    cache_used_bytes: n[8],
                    cache_hits: n[9],
                    cache_misses: n[10],
                    cache_evictions: n[11],
                    compactions: n[12],
                    compacted_bytes_reclaimed: n[13],
                },
            }
        }),
        (
            any::<u64>(),
            proptest::sample::select(ErrorCode::ALL.to_vec()),
            ".{0,40}"
        )
            .prop_map(|(request_id, code, message)| Response::Error {
                request_id,
                code,
                message
            }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(20_000), ..ProptestConfig::default() })]

    #[test]
    fn decoding_random_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = decode_request(&bytes);
        let _ = decode_response(&bytes);
    }

    #[test]
    fn parsing_random_headers_never_panics(bytes in any::<[u8; FRAME_HEADER_LEN_BYTES]>()) {
        let _ = FrameHeader::parse(&bytes, FrameLimits::default());
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(5_000), ..ProptestConfig::default() })]

    /// Random bytes rarely get past the verifier's first check; mutating valid messages reaches
    /// the deeper paths (union dispatch, required fields, enum values, strings).
    #[test]
    fn decoding_mutated_messages_never_panics(
        request in request(),
        response in response(),
        mutations in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
        truncate_to in any::<prop::sample::Index>(),
    ) {
        for mut frame in [encode_request(&request, 0), encode_response(&response, 0)] {
            let message = &mut frame[FRAME_HEADER_LEN_BYTES..];
            for (index, value) in &mutations {
                message[index.index(message.len())] = *value;
            }
            let _ = decode_request(message);
            let _ = decode_response(message);
            let truncated = &message[..truncate_to.index(message.len())];
            let _ = decode_request(truncated);
            let _ = decode_response(truncated);
        }
    }

    #[test]
    fn random_requests_round_trip(request in request(), body_len_bytes in any::<u32>()) {
        let frame = encode_request(&request, body_len_bytes);
        let header = FrameHeader::parse(
            frame[..FRAME_HEADER_LEN_BYTES].try_into().unwrap(),
            FrameLimits { max_body_len_bytes: u32::MAX },
        ).unwrap();
        prop_assert_eq!(header.body_len_bytes, body_len_bytes);
        prop_assert_eq!(decode_request(&frame[FRAME_HEADER_LEN_BYTES..]).unwrap(), request);
    }

    #[test]
    fn random_responses_round_trip(response in response()) {
        let frame = encode_response(&response, 0);
        prop_assert_eq!(decode_response(&frame[FRAME_HEADER_LEN_BYTES..]).unwrap(), response);
    }
}
