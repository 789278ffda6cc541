//! Every request and response variant survives encode → header parse → decode unchanged, and the
//! encoder's size guarantees (truncated error text, capped scan pages) hold.

use cairn_common::{ShardId, ShardIndex};
use cairn_wire::generated::cairn::wire::storage as fb;
use cairn_wire::{
    ByteRange, ErrorCode, FRAME_HEADER_LEN_BYTES, FrameHeader, FrameLimits, HealthReport,
    MAX_ERROR_MESSAGE_LEN_BYTES, MAX_MESSAGE_LEN_BYTES, MAX_SCAN_ENTRIES_PER_RESPONSE, Request,
    Response, ShardEntry, WireError, decode_request, decode_response, encode_request,
    encode_response,
};

fn shard(n: u32) -> ShardId {
    ShardId::new(
        0xDEAD_BEEF_0000_0000_0000_0000_0000_0001,
        3,
        n,
        ShardIndex(2),
    )
}

/// Splits an encoded frame into its parsed header and message bytes, checking the header's lengths.
fn split(frame: &[u8], body_len_bytes: u32) -> (FrameHeader, &[u8]) {
    let header_bytes: &[u8; FRAME_HEADER_LEN_BYTES] =
        frame[..FRAME_HEADER_LEN_BYTES].try_into().unwrap();
    let header = FrameHeader::parse(header_bytes, FrameLimits::default()).unwrap();
    assert_eq!(header.body_len_bytes, body_len_bytes);
    assert_eq!(
        header.message_len_bytes as usize,
        frame.len() - FRAME_HEADER_LEN_BYTES
    );
    (header, &frame[FRAME_HEADER_LEN_BYTES..])
}

fn all_requests() -> Vec<Request> {
    vec![
        Request::Put {
            request_id: 1,
            shard_id: shard(1),
            crc32c: 0xCAFE_F00D,
        },
        Request::Put {
            request_id: 0,
            shard_id: ShardId::default(),
            crc32c: 0,
        },
        Request::Get {
            request_id: u64::MAX,
            shard_id: shard(2),
            range: None,
            from_disk: false,
        },
        Request::Get {
            request_id: 8,
            shard_id: shard(2),
            range: None,
            from_disk: true,
        },
        Request::Get {
            request_id: 7,
            shard_id: shard(2),
            range: Some(ByteRange {
                offset: 4096,
                length: u64::MAX,
            }),
            from_disk: false,
        },
        Request::Get {
            request_id: 7,
            shard_id: shard(2),
            range: Some(ByteRange {
                offset: 0,
                length: 0,
            }),
            from_disk: true,
        },
        Request::Delete {
            request_id: 8,
            shard_id: shard(3),
        },
        Request::Stat {
            request_id: 9,
            shard_id: shard(4),
        },
        Request::Scan {
            request_id: 10,
            after: None,
            limit: 100,
        },
        Request::Scan {
            request_id: 11,
            after: Some(ShardId([0xFF; 32])),
            limit: 0,
        },
        Request::Scan {
            request_id: 11,
            after: Some(ShardId::default()),
            limit: u32::MAX,
        },
        Request::Health { request_id: 12 },
    ]
}

fn full_health_report() -> HealthReport {
    HealthReport {
        cores: 2,
        capacity_bytes: 1 << 40,
        used_bytes: 3,
        live_bytes: 4,
        shard_count: 5,
        segment_count: 6,
        io_errors: 7,
        checksum_errors: 8,
        cache_capacity_bytes: 9,
        cache_used_bytes: 10,
        cache_hits: 11,
        cache_misses: 12,
        cache_evictions: 13,
        compactions: 14,
        compacted_bytes_reclaimed: u64::MAX,
    }
}

fn all_responses() -> Vec<Response> {
    let mut responses = vec![
        Response::PutOk { request_id: 1 },
        Response::GetOk {
            request_id: 2,
            shard_length: 1 << 20,
            crc32c: 0x1234_5678,
        },
        Response::GetOk {
            request_id: 2,
            shard_length: 0,
            crc32c: 0,
        },
        Response::DeleteOk {
            request_id: 3,
            existed: true,
        },
        Response::DeleteOk {
            request_id: 3,
            existed: false,
        },
        Response::StatOk {
            request_id: 4,
            entry: ShardEntry {
                shard_id: shard(9),
                length: 65536,
                crc32c: 0xFFFF_FFFF,
            },
        },
        Response::ScanOk {
            request_id: 5,
            entries: vec![],
            next_after: None,
        },
        Response::ScanOk {
            request_id: 5,
            entries: (0..3)
                .map(|n| ShardEntry {
                    shard_id: shard(n),
                    length: u64::from(n) * 1000,
                    crc32c: n,
                })
                .collect(),
            next_after: Some(shard(2)),
        },
        Response::HealthOk {
            request_id: 6,
            report: full_health_report(),
        },
        Response::HealthOk {
            request_id: 6,
            report: HealthReport::default(),
        },
        Response::Error {
            request_id: 0,
            code: ErrorCode::Internal,
            message: String::new(),
        },
    ];
    for code in ErrorCode::ALL {
        responses.push(Response::Error {
            request_id: 77,
            code,
            message: format!("{code:?}: naïve ünïcode ✓"),
        });
    }
    responses
}

#[test]
fn every_request_variant_round_trips() {
    for request in all_requests() {
        let body_len_bytes = if request.carries_body() { 12345 } else { 0 };
        let frame = encode_request(&request, body_len_bytes);
        let (_, message) = split(&frame, body_len_bytes);
        assert_eq!(decode_request(message).unwrap(), request);
    }
}

#[test]
fn every_response_variant_round_trips() {
    for response in all_responses() {
        let body_len_bytes = if response.carries_body() { 777 } else { 0 };
        let frame = encode_response(&response, body_len_bytes);
        let (_, message) = split(&frame, body_len_bytes);
        assert_eq!(decode_response(message).unwrap(), response);
    }
}

#[test]
fn request_and_response_buffers_are_not_confused() {
    // Both roots are tables with the same leading fields, so the union type decides. A request
    // decoded as a response must either fail or be rejected by the caller's request-id check; it
    // must never panic. Check the common cases explicitly.
    let frame = encode_request(&Request::Health { request_id: 1 }, 0);
    let message = &frame[FRAME_HEADER_LEN_BYTES..];
    // HealthRequest is union member 6 of requests, HealthOk member 6 of responses, but HealthOk
    // requires a report table, which the verifier finds missing.
    assert!(matches!(
        decode_response(message),
        Err(WireError::InvalidMessage(_))
    ));
}

#[test]
fn long_error_message_is_truncated_at_a_char_boundary() {
    // 3-byte characters so that the limit falls inside one.
    let message = "✓".repeat(MAX_ERROR_MESSAGE_LEN_BYTES);
    let frame = encode_response(
        &Response::Error {
            request_id: 1,
            code: ErrorCode::BadRequest,
            message,
        },
        0,
    );
    let (_, message_bytes) = split(&frame, 0);
    let Response::Error { message, .. } = decode_response(message_bytes).unwrap() else {
        panic!("expected an error response");
    };
    assert!(message.len() <= MAX_ERROR_MESSAGE_LEN_BYTES);
    assert!(message.len() > MAX_ERROR_MESSAGE_LEN_BYTES - 3);
    assert!(message.chars().all(|character| character == '✓'));
}

#[test]
fn oversized_scan_page_is_cut_and_resumes_after_the_last_entry_sent() {
    let entries: Vec<ShardEntry> = (0..(MAX_SCAN_ENTRIES_PER_RESPONSE as u32 + 10))
        .map(|n| ShardEntry {
            shard_id: shard(n),
            length: 1,
            crc32c: n,
        })
        .collect();
    let frame = encode_response(
        &Response::ScanOk {
            request_id: 1,
            entries: entries.clone(),
            next_after: None,
        },
        0,
    );
    let (header, message) = split(&frame, 0);
    assert!(header.message_len_bytes <= MAX_MESSAGE_LEN_BYTES);
    let Response::ScanOk {
        entries: sent,
        next_after,
        ..
    } = decode_response(message).unwrap()
    else {
        panic!("expected a scan response");
    };
    assert_eq!(sent, entries[..MAX_SCAN_ENTRIES_PER_RESPONSE]);
    assert_eq!(
        next_after,
        Some(entries[MAX_SCAN_ENTRIES_PER_RESPONSE - 1].shard_id)
    );
}

/// Builds a request message by hand through the generated code, to produce what this crate's
/// encoder never would.
fn raw_request_message(protocol_version: u16, body_type: fb::RequestBody) -> Vec<u8> {
    let mut builder = flatbuffers::FlatBufferBuilder::new();
    let body = fb::HealthRequest::create(&mut builder, &fb::HealthRequestArgs {});
    let args = fb::RequestMessageArgs {
        protocol_version,
        request_id: 5,
        body_type,
        body: Some(body.as_union_value()),
    };
    let root = fb::RequestMessage::create(&mut builder, &args);
    builder.finish(root, None);
    builder.finished_data().to_vec()
}

#[test]
fn message_version_inside_the_flatbuffer_is_checked() {
    assert_eq!(
        decode_request(&raw_request_message(1, fb::RequestBody::HealthRequest)),
        Ok(Request::Health { request_id: 5 })
    );
    for version in [0, 2, u16::MAX] {
        assert_eq!(
            decode_request(&raw_request_message(
                version,
                fb::RequestBody::HealthRequest
            )),
            Err(WireError::UnsupportedMessageVersion {
                found: version,
                supported: 1
            })
        );
    }
}

#[test]
fn unknown_union_members_and_error_codes_are_typed_errors() {
    assert_eq!(
        decode_request(&raw_request_message(1, fb::RequestBody(42))),
        Err(WireError::UnknownMessageType {
            kind: "request",
            value: 42
        })
    );
    // A value without a discriminant is caught by the verifier; no body at all is ours to catch.
    assert!(matches!(
        decode_request(&raw_request_message(1, fb::RequestBody::NONE)),
        Err(WireError::InvalidMessage(_))
    ));
    let mut builder = flatbuffers::FlatBufferBuilder::new();
    let args = fb::RequestMessageArgs {
        protocol_version: 1,
        request_id: 5,
        ..Default::default()
    };
    let root = fb::RequestMessage::create(&mut builder, &args);
    builder.finish(root, None);
    assert_eq!(
        decode_request(builder.finished_data()),
        Err(WireError::MissingBody)
    );

    for raw_code in [0u16, 8, 999] {
        let mut builder = flatbuffers::FlatBufferBuilder::new();
        let message = builder.create_string("from the future");
        let body = fb::ErrorResponse::create(
            &mut builder,
            &fb::ErrorResponseArgs {
                code: fb::ErrorCode(raw_code),
                message: Some(message),
            },
        );
        let args = fb::ResponseMessageArgs {
            protocol_version: 1,
            request_id: 5,
            body_type: fb::ResponseBody::ErrorResponse,
            body: Some(body.as_union_value()),
        };
        let root = fb::ResponseMessage::create(&mut builder, &args);
        builder.finish(root, None);
        assert_eq!(
            decode_response(builder.finished_data()),
            Err(WireError::UnknownErrorCode(raw_code))
        );
    }
}

#[test]
fn empty_and_tiny_messages_are_rejected() {
    assert!(decode_request(&[]).is_err());
    assert!(decode_response(&[]).is_err());
    assert!(decode_request(&[0, 0, 0, 0]).is_err());
    assert!(decode_response(&[4, 0, 0, 0, 0, 0, 0, 0]).is_err());
    assert!(matches!(
        decode_request(&vec![0u8; MAX_MESSAGE_LEN_BYTES as usize + 1]),
        Err(WireError::MessageTooLarge { .. })
    ));
}

#[test]
fn messages_decode_from_any_memory_alignment() {
    // A node may read header and message into one buffer at any offset; decoding must not depend
    // on where the message starts in memory.
    for response in all_responses() {
        let frame = encode_response(&response, 0);
        let message = &frame[FRAME_HEADER_LEN_BYTES..];
        for shift in 1..8 {
            let mut shifted = vec![0u8; shift];
            shifted.extend_from_slice(message);
            assert_eq!(decode_response(&shifted[shift..]).unwrap(), response);
        }
    }
    for request in all_requests() {
        let frame = encode_request(&request, 0);
        let mut shifted = vec![0u8; 3];
        shifted.extend_from_slice(&frame[FRAME_HEADER_LEN_BYTES..]);
        assert_eq!(decode_request(&shifted[3..]).unwrap(), request);
    }
}
