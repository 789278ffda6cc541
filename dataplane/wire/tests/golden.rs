//! Golden bytes of protocol-version-1 frames. If one of these tests fails, the wire format changed:
//! that is only acceptable together with a protocol version bump and a decoder kept for version 1
//! (STYLE.md rule 10). The bytes are also decoded, so version-1 frames stay readable.
//!
//! Reading aid for the first frame: `43 52 4e 57` is "CRNW", `01 00` version 1, `00 00` flags,
//! then message_len and body_len (u32 LE); the flatbuffer follows, starting with its root offset.

use cairn_common::ShardId;
use cairn_wire::{
    ByteRange, ErrorCode, FRAME_HEADER_LEN_BYTES, Request, Response, decode_request,
    decode_response, encode_request, encode_response,
};

fn counting_shard_id() -> ShardId {
    let mut bytes = [0u8; ShardId::LEN];
    for (index, byte) in bytes.iter_mut().enumerate() {
        *byte = index as u8;
    }
    ShardId(bytes)
}

fn hex(text: &str) -> Vec<u8> {
    text.split_whitespace()
        .map(|pair| u8::from_str_radix(pair, 16).expect("golden hex"))
        .collect()
}

fn assert_request_golden(request: Request, body_len_bytes: u32, golden_hex: &str) {
    let golden = hex(golden_hex);
    assert_eq!(encode_request(&request, body_len_bytes), golden);
    assert_eq!(
        decode_request(&golden[FRAME_HEADER_LEN_BYTES..]).unwrap(),
        request
    );
}

fn assert_response_golden(response: Response, body_len_bytes: u32, golden_hex: &str) {
    let golden = hex(golden_hex);
    assert_eq!(encode_response(&response, body_len_bytes), golden);
    assert_eq!(
        decode_response(&golden[FRAME_HEADER_LEN_BYTES..]).unwrap(),
        response
    );
}

#[test]
fn golden_put_request_frame() {
    assert_request_golden(
        Request::Put {
            request_id: 1,
            shard_id: counting_shard_id(),
            crc32c: 0xCAFE_F00D,
        },
        4096,
        "43 52 4e 57 01 00 00 00 58 00 00 00 00 10 00 00
         14 00 00 00 00 00 00 00 0c 00 14 00 06 00 0c 00
         05 00 08 00 0c 00 00 00 00 01 01 00 14 00 00 00
         01 00 00 00 00 00 00 00 08 00 28 00 04 00 24 00
         08 00 00 00 00 01 02 03 04 05 06 07 08 09 0a 0b
         0c 0d 0e 0f 10 11 12 13 14 15 16 17 18 19 1a 1b
         1c 1d 1e 1f 0d f0 fe ca",
    );
}

#[test]
fn golden_ranged_get_request_frame() {
    assert_request_golden(
        Request::Get {
            request_id: 2,
            shard_id: counting_shard_id(),
            range: Some(ByteRange {
                offset: 4096,
                length: 8192,
            }),
            // A default (false) field is not written: the frame keeps its earlier bytes.
            from_disk: false,
        },
        0,
        "43 52 4e 57 01 00 00 00 68 00 00 00 00 00 00 00
         14 00 00 00 00 00 00 00 0c 00 18 00 06 00 0c 00
         05 00 08 00 0c 00 00 00 00 02 01 00 18 00 00 00
         02 00 00 00 00 00 00 00 00 00 00 00 08 00 34 00
         04 00 24 00 08 00 00 00 00 01 02 03 04 05 06 07
         08 09 0a 0b 0c 0d 0e 0f 10 11 12 13 14 15 16 17
         18 19 1a 1b 1c 1d 1e 1f 00 10 00 00 00 00 00 00
         00 20 00 00 00 00 00 00",
    );
}

#[test]
fn golden_health_request_frame() {
    assert_request_golden(
        Request::Health { request_id: 3 },
        0,
        "43 52 4e 57 01 00 00 00 30 00 00 00 00 00 00 00
         14 00 00 00 00 00 00 00 0c 00 14 00 06 00 0c 00
         05 00 08 00 0c 00 00 00 00 06 01 00 10 00 00 00
         03 00 00 00 00 00 00 00 04 00 04 00 04 00 00 00",
    );
}

#[test]
fn golden_get_ok_response_frame() {
    assert_response_golden(
        Response::GetOk {
            request_id: 2,
            shard_length: 1 << 20,
            crc32c: 0x1234_5678,
        },
        8192,
        "43 52 4e 57 01 00 00 00 40 00 00 00 00 20 00 00
         14 00 00 00 00 00 00 00 0c 00 14 00 06 00 0c 00
         05 00 08 00 0c 00 00 00 00 02 01 00 14 00 00 00
         02 00 00 00 00 00 00 00 08 00 10 00 08 00 04 00
         08 00 00 00 78 56 34 12 00 00 10 00 00 00 00 00",
    );
}

#[test]
fn golden_error_response_frame() {
    assert_response_golden(
        Response::Error {
            request_id: 4,
            code: ErrorCode::NotFound,
            message: "no such shard".to_owned(),
        },
        0,
        "43 52 4e 57 01 00 00 00 50 00 00 00 00 00 00 00
         14 00 00 00 00 00 00 00 0c 00 14 00 06 00 0c 00
         05 00 08 00 0c 00 00 00 00 07 01 00 14 00 00 00
         04 00 00 00 00 00 00 00 08 00 0c 00 06 00 08 00
         08 00 00 00 00 00 01 00 04 00 00 00 0d 00 00 00
         6e 6f 20 73 75 63 68 20 73 68 61 72 64 00 00 00",
    );
}
