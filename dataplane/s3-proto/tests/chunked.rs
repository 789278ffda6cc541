//! aws-chunked decoding: the AWS documentation's signed streaming example, bodies signed chunk by
//! chunk with the `aws-sigv4` crate (with and without signed trailers), unsigned bodies with
//! trailing checksums, and the ways a body can be tampered with or cut short.

use std::time::{Duration, UNIX_EPOCH};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    PayloadChecksumKind, PercentEncodingMode, SignableBody, SignableRequest, SignatureLocation,
    SigningSettings, UriPathNormalizationMode, sign,
};
use aws_smithy_runtime_api::client::identity::Identity;
use cairn_s3_proto::S3Error;
use cairn_s3_proto::checksum::{ChecksumAlgorithm, checksum_base64};
use cairn_s3_proto::chunked::{AwsChunkedDecoder, ChunkedConfig, ChunkedSummary};
use cairn_s3_proto::sigv4::{
    Authentication, SignedRequest, VerifiedRequest, VerifyConfig, verify_request,
};
use proptest::prelude::*;

const ACCESS_KEY_ID: &str = "AKIAIOSFODNN7EXAMPLE";
const SECRET_ACCESS_KEY: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
const EXAMPLE_TIME_UNIX_SECONDS: i64 = 1_369_353_600;

fn secrets(access_key_id: &str) -> Option<String> {
    (access_key_id == ACCESS_KEY_ID).then(|| SECRET_ACCESS_KEY.to_string())
}

fn verify(method: &str, raw_path: &str, headers: &[(&str, &str)], now: i64) -> VerifiedRequest {
    let request = SignedRequest {
        method,
        raw_path,
        raw_query: "",
        headers,
    };
    match verify_request(&request, &secrets, &VerifyConfig::default(), now).unwrap() {
        Authentication::Verified(verified) => verified,
        Authentication::Anonymous => panic!("anonymous"),
    }
}

/// Feeds `body` in pieces of `piece_bytes` and finishes.
fn decode(
    config: &ChunkedConfig,
    body: &[u8],
    piece_bytes: usize,
) -> Result<(Vec<u8>, ChunkedSummary), S3Error> {
    let mut decoder = AwsChunkedDecoder::new(config.clone());
    let mut output = Vec::new();
    for piece in body.chunks(piece_bytes.max(1)) {
        decoder.push(piece, &mut output)?;
    }
    let summary = decoder.finish()?;
    Ok((output, summary))
}

// --- the documentation example: 66,560 bytes of 'a' in a 64 KiB chunk, a 1 KiB chunk, and the final chunk

const DOC_SEED_SIGNATURE: &str = "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9";
const DOC_CHUNK_SIGNATURES: [&str; 3] = [
    "ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648",
    "0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497",
    "b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9",
];

fn documentation_body() -> Vec<u8> {
    let mut body = Vec::new();
    for (size, signature) in [
        (65_536usize, DOC_CHUNK_SIGNATURES[0]),
        (1024, DOC_CHUNK_SIGNATURES[1]),
        (0, DOC_CHUNK_SIGNATURES[2]),
    ] {
        body.extend_from_slice(format!("{size:x};chunk-signature={signature}\r\n").as_bytes());
        body.extend(std::iter::repeat_n(b'a', size));
        body.extend_from_slice(b"\r\n");
    }
    body
}

fn documentation_config() -> ChunkedConfig {
    let authorization = format!(
        "AWS4-HMAC-SHA256 Credential={ACCESS_KEY_ID}/20130524/us-east-1/s3/aws4_request, SignedHeaders=content-encoding;content-length;host;x-amz-content-sha256;x-amz-date;x-amz-decoded-content-length;x-amz-storage-class, Signature={DOC_SEED_SIGNATURE}"
    );
    let headers = [
        ("Host", "s3.amazonaws.com"),
        ("x-amz-date", "20130524T000000Z"),
        ("x-amz-storage-class", "REDUCED_REDUNDANCY"),
        ("Authorization", authorization.as_str()),
        ("x-amz-content-sha256", "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"),
        ("Content-Encoding", "aws-chunked"),
        ("x-amz-decoded-content-length", "66560"),
        ("Content-Length", "66824"),
    ];
    let verified = verify(
        "PUT",
        "/examplebucket/chunkObject.txt",
        &headers,
        EXAMPLE_TIME_UNIX_SECONDS,
    );
    ChunkedConfig::from_request(&verified, None, Some("66560"))
        .unwrap()
        .unwrap()
}

#[test]
fn documentation_example_decodes_in_any_split() {
    let config = documentation_config();
    let body = documentation_body();
    assert_eq!(body.len(), 66_824, "the example's Content-Length");
    for piece_bytes in [1, 7, 86, 4096, 65_536, body.len()] {
        let (output, summary) = decode(&config, &body, piece_bytes).unwrap();
        assert_eq!(output.len(), 66_560);
        assert!(output.iter().all(|byte| *byte == b'a'));
        assert_eq!(summary.decoded_length_bytes, 66_560);
        assert_eq!(summary.trailing_checksum, None);
    }
}

#[test]
fn documentation_example_tampering() {
    let config = documentation_config();
    let body = documentation_body();
    // One payload byte changed.
    let mut altered = body.clone();
    altered[100] = b'b';
    assert_eq!(
        decode(&config, &altered, 4096).unwrap_err(),
        S3Error::SignatureDoesNotMatch
    );
    // One signature digit changed.
    let text = String::from_utf8(body.clone()).unwrap();
    let altered = text.replacen("ad80c730", "ad80c731", 1);
    assert_eq!(
        decode(&config, altered.as_bytes(), 4096).unwrap_err(),
        S3Error::SignatureDoesNotMatch
    );
    // Chunks reordered (the 1 KiB chunk first): the chain breaks at once.
    let first_len =
        format!("10000;chunk-signature={}\r\n", DOC_CHUNK_SIGNATURES[0]).len() + 65_536 + 2;
    let second_len =
        format!("400;chunk-signature={}\r\n", DOC_CHUNK_SIGNATURES[1]).len() + 1024 + 2;
    let mut reordered = body[first_len..first_len + second_len].to_vec();
    reordered.extend_from_slice(&body[..first_len]);
    reordered.extend_from_slice(&body[first_len + second_len..]);
    assert_eq!(
        decode(&config, &reordered, 4096).unwrap_err(),
        S3Error::SignatureDoesNotMatch
    );
    // A different request's seed signature.
    let mut other_seed = config.clone();
    other_seed.signing.as_mut().unwrap().seed_signature_hex = DOC_CHUNK_SIGNATURES[0].to_string();
    assert_eq!(
        decode(&other_seed, &body, 4096).unwrap_err(),
        S3Error::SignatureDoesNotMatch
    );
    // Truncated anywhere: mid-data, before the final chunk, mid-final-line.
    for cut in [10, 1000, first_len, first_len + second_len, body.len() - 1] {
        assert_eq!(
            decode(&config, &body[..cut], 4096).unwrap_err(),
            S3Error::IncompleteBody,
            "cut at {cut}"
        );
    }
    // Data after the end.
    let mut extended = body.clone();
    extended.extend_from_slice(b"x");
    assert!(matches!(
        decode(&config, &extended, 4096).unwrap_err(),
        S3Error::InvalidRequest(_)
    ));
    // A declared decoded length that does not match.
    let mut wrong_length = config.clone();
    wrong_length.decoded_length_bytes = Some(66_561);
    assert_eq!(
        decode(&wrong_length, &body, 4096).unwrap_err(),
        S3Error::IncompleteBody
    );
    wrong_length.decoded_length_bytes = Some(100);
    assert_eq!(
        decode(&wrong_length, &body, 4096).unwrap_err(),
        S3Error::IncompleteBody
    );
}

// --- signed by aws-sigv4, chunk by chunk --------------------------------------------------------

const NOW: i64 = 1_764_000_000;

struct AwsSigner {
    identity: Identity,
}

impl AwsSigner {
    fn new() -> AwsSigner {
        AwsSigner {
            identity: Credentials::new(ACCESS_KEY_ID, SECRET_ACCESS_KEY, None, None, "test").into(),
        }
    }

    fn params(&self) -> aws_sigv4::sign::v4::SigningParams<'_, SigningSettings> {
        let mut settings = SigningSettings::default();
        settings.percent_encoding_mode = PercentEncodingMode::Single;
        settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
        settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
        settings.signature_location = SignatureLocation::Headers;
        aws_sigv4::sign::v4::SigningParams::builder()
            .identity(&self.identity)
            .region("eu-central-1")
            .name("s3")
            .time(UNIX_EPOCH + Duration::from_secs(NOW as u64))
            .settings(settings)
            .build()
            .unwrap()
    }

    /// Signs the request head; returns all headers to send and the seed signature.
    fn sign_head(
        &self,
        headers: &[(&str, &str)],
        body: SignableBody<'_>,
    ) -> (Vec<(String, String)>, String) {
        let params = self.params().into();
        let request =
            SignableRequest::new("PUT", "/bucket/object", headers.iter().copied(), body).unwrap();
        let (instructions, seed) = sign(request, &params).unwrap().into_parts();
        let mut all: Vec<(String, String)> = headers
            .iter()
            .map(|(name, value)| (name.to_string(), value.to_string()))
            .collect();
        all.extend(
            instructions
                .headers()
                .map(|(name, value)| (name.to_string(), value.to_string())),
        );
        (all, seed)
    }

    /// The signed aws-chunked body for `payload` split into `chunk_bytes` chunks.
    fn signed_body(
        &self,
        seed: &str,
        payload: &[u8],
        chunk_bytes: usize,
        trailer: Option<(&'static str, String)>,
    ) -> Vec<u8> {
        let params = self.params();
        let mut previous = seed.to_string();
        let mut body = Vec::new();
        let mut chunks: Vec<&[u8]> = payload.chunks(chunk_bytes).collect();
        chunks.push(&[]);
        for chunk in chunks {
            let signature = aws_sigv4::sign::v4::sign_chunk(
                &bytes::Bytes::copy_from_slice(chunk),
                &previous,
                &params,
            )
            .unwrap()
            .signature()
            .to_string();
            body.extend_from_slice(
                format!("{:x};chunk-signature={signature}\r\n", chunk.len()).as_bytes(),
            );
            body.extend_from_slice(chunk);
            if !chunk.is_empty() {
                body.extend_from_slice(b"\r\n");
            }
            previous = signature;
        }
        if let Some((name, value)) = trailer {
            let mut headers = aws_smithy_runtime_api::http::Headers::new();
            headers.insert(name, value.clone());
            let signature = aws_sigv4::sign::v4::sign_trailer(&headers, &previous, &params)
                .unwrap()
                .signature()
                .to_string();
            body.extend_from_slice(
                format!("{name}:{value}\r\nx-amz-trailer-signature:{signature}\r\n").as_bytes(),
            );
        }
        body.extend_from_slice(b"\r\n");
        body
    }
}

fn payload_of(length_bytes: usize) -> Vec<u8> {
    (0..length_bytes)
        .map(|index| (index * 31 % 251) as u8)
        .collect()
}

fn borrowed(headers: &[(String, String)]) -> Vec<(&str, &str)> {
    headers
        .iter()
        .map(|(name, value)| (name.as_str(), value.as_str()))
        .collect()
}

#[test]
fn aws_sigv4_signed_chunks_decode() {
    let signer = AwsSigner::new();
    let payload = payload_of(200_000);
    let length = payload.len().to_string();
    let (headers, seed) = signer.sign_head(
        &[
            ("host", "localhost:9000"),
            ("content-encoding", "aws-chunked"),
            ("x-amz-decoded-content-length", &length),
        ],
        SignableBody::Precomputed("STREAMING-AWS4-HMAC-SHA256-PAYLOAD".to_string()),
    );
    let verified = verify("PUT", "/bucket/object", &borrowed(&headers), NOW);
    let config = ChunkedConfig::from_request(&verified, None, Some(&length))
        .unwrap()
        .unwrap();
    let body = signer.signed_body(&seed, &payload, 65_536, None);
    for piece_bytes in [1000, 65_536, body.len()] {
        let (output, summary) = decode(&config, &body, piece_bytes).unwrap();
        assert_eq!(output, payload);
        assert_eq!(summary.decoded_length_bytes, 200_000);
    }
}

#[test]
fn aws_sigv4_signed_chunks_with_signed_trailer() {
    let signer = AwsSigner::new();
    let payload = payload_of(70_000);
    let length = payload.len().to_string();
    let crc32c = checksum_base64(ChecksumAlgorithm::Crc32c, &payload);
    let (headers, seed) = signer.sign_head(
        &[
            ("host", "localhost:9000"),
            ("content-encoding", "aws-chunked"),
            ("x-amz-decoded-content-length", &length),
            ("x-amz-trailer", "x-amz-checksum-crc32c"),
        ],
        SignableBody::StreamingSignedPayloadTrailer,
    );
    let verified = verify("PUT", "/bucket/object", &borrowed(&headers), NOW);
    let config =
        ChunkedConfig::from_request(&verified, Some("x-amz-checksum-crc32c"), Some(&length))
            .unwrap()
            .unwrap();
    let body = signer.signed_body(
        &seed,
        &payload,
        65_536,
        Some(("x-amz-checksum-crc32c", crc32c.clone())),
    );
    let (output, summary) = decode(&config, &body, 777).unwrap();
    assert_eq!(output, payload);
    assert_eq!(
        summary.trailing_checksum,
        Some((ChecksumAlgorithm::Crc32c, crc32c.clone()))
    );

    // A trailer value changed after signing: the trailer signature no longer matches.
    let wrong = checksum_base64(ChecksumAlgorithm::Crc32c, b"other");
    let trailer_start = body.len() - 120;
    let tail = String::from_utf8(body[trailer_start..].to_vec())
        .unwrap()
        .replace(&crc32c, &wrong);
    let mut tampered = body[..trailer_start].to_vec();
    tampered.extend_from_slice(tail.as_bytes());
    assert_eq!(
        decode(&config, &tampered, 4096).unwrap_err(),
        S3Error::SignatureDoesNotMatch
    );
    // A correctly signed trailer whose checksum does not match the data: BadDigest.
    let body_with_wrong_checksum = signer.signed_body(
        &seed,
        &payload,
        65_536,
        Some(("x-amz-checksum-crc32c", wrong)),
    );
    assert_eq!(
        decode(&config, &body_with_wrong_checksum, 4096).unwrap_err(),
        S3Error::BadDigest
    );
    // The trailer signature line removed.
    let signature_line = body.len() - 2 - "x-amz-trailer-signature:".len() - 64 - 2;
    let mut without_signature = body[..signature_line].to_vec();
    without_signature.extend_from_slice(b"\r\n");
    assert_eq!(
        decode(&config, &without_signature, 4096).unwrap_err(),
        S3Error::SignatureDoesNotMatch
    );
}

// --- unsigned chunks with trailing checksums (the default of current SDKs) --------------------

fn unsigned_trailer_body(
    payload: &[u8],
    chunk_bytes: usize,
    trailer: Option<(&str, &str)>,
) -> Vec<u8> {
    let mut body = Vec::new();
    for chunk in payload.chunks(chunk_bytes) {
        body.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        body.extend_from_slice(chunk);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(b"0\r\n");
    if let Some((name, value)) = trailer {
        body.extend_from_slice(format!("{name}:{value}\r\n").as_bytes());
    }
    body.extend_from_slice(b"\r\n");
    body
}

fn unsigned_config(algorithm: Option<ChecksumAlgorithm>, length: Option<u64>) -> ChunkedConfig {
    ChunkedConfig {
        signing: None,
        has_trailer: true,
        trailing_checksum: algorithm,
        decoded_length_bytes: length,
    }
}

#[test]
fn unsigned_trailer_every_algorithm() {
    let payload = payload_of(100_000);
    for algorithm in ChecksumAlgorithm::ALL {
        let value = checksum_base64(algorithm, &payload);
        let body = unsigned_trailer_body(&payload, 8192, Some((algorithm.header_name(), &value)));
        let config = unsigned_config(Some(algorithm), Some(100_000));
        let (output, summary) = decode(&config, &body, 5000).unwrap();
        assert_eq!(output, payload);
        assert_eq!(summary.trailing_checksum, Some((algorithm, value)));

        let wrong = checksum_base64(algorithm, b"not the payload");
        let body = unsigned_trailer_body(&payload, 8192, Some((algorithm.header_name(), &wrong)));
        assert_eq!(
            decode(&config, &body, 5000).unwrap_err(),
            S3Error::BadDigest,
            "{algorithm:?}"
        );
    }
}

#[test]
fn unsigned_trailer_framing_errors() {
    let payload = payload_of(10_000);
    let value = checksum_base64(ChecksumAlgorithm::Crc32, &payload);
    let config = unsigned_config(Some(ChecksumAlgorithm::Crc32), None);
    let good = unsigned_trailer_body(&payload, 4000, Some(("x-amz-checksum-crc32", &value)));
    assert!(decode(&config, &good, 100).is_ok());
    // The closing empty line omitted: accepted, the trailer line was complete.
    assert!(decode(&config, &good[..good.len() - 2], 100).is_ok());
    // Cut inside the trailer line, inside data, and before the last chunk.
    for cut in [good.len() - 5, 5000, 20] {
        assert_eq!(
            decode(&config, &good[..cut], 100).unwrap_err(),
            S3Error::IncompleteBody,
            "cut at {cut}"
        );
    }
    // The declared trailer missing, or another one sent instead.
    let missing = unsigned_trailer_body(&payload, 4000, None);
    assert!(decode(&config, &missing, 100).is_err());
    let crc32c = checksum_base64(ChecksumAlgorithm::Crc32c, &payload);
    let other = unsigned_trailer_body(&payload, 4000, Some(("x-amz-checksum-crc32c", &crc32c)));
    assert_eq!(
        decode(&config, &other, 100).unwrap_err(),
        S3Error::MalformedTrailerError
    );
    // A malformed checksum value.
    let malformed = unsigned_trailer_body(&payload, 4000, Some(("x-amz-checksum-crc32", "!!!")));
    assert!(matches!(
        decode(&config, &malformed, 100).unwrap_err(),
        S3Error::InvalidRequest(_)
    ));
    // Bad chunk sizes and a chunk longer than declared.
    assert!(matches!(
        decode(&config, b"zz\r\nab\r\n", 100).unwrap_err(),
        S3Error::InvalidRequest(_)
    ));
    assert!(matches!(
        decode(&config, b"2\r\nabc\r\n0\r\n\r\n", 100).unwrap_err(),
        S3Error::InvalidRequest(_)
    ));
    assert!(matches!(
        decode(&config, b"2\nab\r\n", 100).unwrap_err(),
        S3Error::InvalidRequest(_)
    ));
    // An endless header line is refused without buffering it.
    let endless = vec![b'1'; 10_000];
    assert!(matches!(
        decode(&config, &endless, 100).unwrap_err(),
        S3Error::InvalidRequest(_)
    ));
    // An empty payload.
    let empty_value = checksum_base64(ChecksumAlgorithm::Crc32, b"");
    let empty = unsigned_trailer_body(b"", 1, Some(("x-amz-checksum-crc32", &empty_value)));
    let (output, summary) = decode(&config, &empty, 1).unwrap();
    assert!(output.is_empty());
    assert_eq!(summary.decoded_length_bytes, 0);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn any_split_decodes_the_same(
        payload in proptest::collection::vec(any::<u8>(), 0..5000),
        chunk_bytes in 1usize..3000,
        piece_bytes in 1usize..700,
    ) {
        let value = checksum_base64(ChecksumAlgorithm::Crc64Nvme, &payload);
        let body = unsigned_trailer_body(&payload, chunk_bytes, Some(("x-amz-checksum-crc64nvme", &value)));
        let config = unsigned_config(Some(ChecksumAlgorithm::Crc64Nvme), Some(payload.len() as u64));
        let (output, summary) = decode(&config, &body, piece_bytes).unwrap();
        prop_assert_eq!(output, payload);
        prop_assert_eq!(summary.trailing_checksum.map(|(_, value)| value), Some(value));
    }
}
