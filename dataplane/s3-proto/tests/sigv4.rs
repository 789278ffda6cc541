//! SigV4 verification against the worked examples of the AWS S3 SigV4 documentation and against
//! requests signed by the `aws-sigv4` crate, plus tamper tests: changing any signed component
//! must turn an accepted request into `SignatureDoesNotMatch` (or the more specific error S3 uses).

use std::time::{Duration, UNIX_EPOCH};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    PayloadChecksumKind, PercentEncodingMode, SignableBody, SignableRequest, SignatureLocation,
    SigningSettings, UriPathNormalizationMode, sign,
};
use aws_smithy_runtime_api::client::identity::Identity;
use cairn_s3_proto::S3Error;
use cairn_s3_proto::encoding::uri_encode;
use cairn_s3_proto::sigv4::{
    Authentication, PayloadMode, SignedRequest, VerifiedRequest, VerifyConfig, verify_request,
};

const ACCESS_KEY_ID: &str = "AKIAIOSFODNN7EXAMPLE";
const SECRET_ACCESS_KEY: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
/// 20130524T000000Z, the time of every documentation example.
const EXAMPLE_TIME_UNIX_SECONDS: i64 = 1_369_353_600;

fn secrets(access_key_id: &str) -> Option<String> {
    (access_key_id == ACCESS_KEY_ID).then(|| SECRET_ACCESS_KEY.to_string())
}

fn verify(
    method: &str,
    raw_path: &str,
    raw_query: &str,
    headers: &[(&str, &str)],
    now_unix_seconds: i64,
) -> Result<VerifiedRequest, S3Error> {
    let request = SignedRequest {
        method,
        raw_path,
        raw_query,
        headers,
    };
    match verify_request(
        &request,
        &secrets,
        &VerifyConfig::default(),
        now_unix_seconds,
    )? {
        Authentication::Verified(verified) => Ok(verified),
        Authentication::Anonymous => panic!("request was treated as anonymous"),
    }
}

fn authorization(signed_headers: &str, signature: &str) -> String {
    format!(
        "AWS4-HMAC-SHA256 Credential={ACCESS_KEY_ID}/20130524/us-east-1/s3/aws4_request, SignedHeaders={signed_headers}, Signature={signature}"
    )
}

const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

#[test]
fn documentation_example_get_object() {
    let authorization = authorization(
        "host;range;x-amz-content-sha256;x-amz-date",
        "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41",
    );
    let headers = [
        ("Host", "examplebucket.s3.amazonaws.com"),
        ("Range", "bytes=0-9"),
        ("x-amz-content-sha256", EMPTY_SHA256),
        ("x-amz-date", "20130524T000000Z"),
        ("Authorization", authorization.as_str()),
    ];
    let verified = verify("GET", "/test.txt", "", &headers, EXAMPLE_TIME_UNIX_SECONDS).unwrap();
    assert_eq!(verified.access_key_id, ACCESS_KEY_ID);
    assert_eq!(verified.region, "us-east-1");
    assert!(!verified.presigned);
    assert!(matches!(verified.payload, PayloadMode::Sha256 { .. }));
}

#[test]
fn documentation_example_put_object() {
    let authorization = authorization(
        "date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class",
        "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd",
    );
    let headers = [
        ("Host", "examplebucket.s3.amazonaws.com"),
        ("Date", "Fri, 24 May 2013 00:00:00 GMT"),
        ("x-amz-date", "20130524T000000Z"),
        ("x-amz-storage-class", "REDUCED_REDUNDANCY"),
        (
            "x-amz-content-sha256",
            "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072",
        ),
        ("Authorization", authorization.as_str()),
    ];
    // The key `test$file.text` is sent with `$` encoded, as the documentation's canonical URI shows.
    let verified = verify(
        "PUT",
        "/test%24file.text",
        "",
        &headers,
        EXAMPLE_TIME_UNIX_SECONDS,
    )
    .unwrap();
    let PayloadMode::Sha256 { expected_sha256 } = verified.payload else {
        panic!("not a sha256 payload")
    };
    let body_sha256: [u8; 32] = {
        use sha2::Digest;
        sha2::Sha256::digest(b"Welcome to Amazon S3.").into()
    };
    assert_eq!(expected_sha256, body_sha256);
    // The raw `$` form is accepted too (clients differ in what they leave unencoded).
    assert!(
        verify(
            "PUT",
            "/test$file.text",
            "",
            &headers,
            EXAMPLE_TIME_UNIX_SECONDS
        )
        .is_ok()
    );
}

#[test]
fn documentation_example_get_lifecycle_and_list() {
    let lifecycle_authorization = authorization(
        "host;x-amz-content-sha256;x-amz-date",
        "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543",
    );
    let headers = [
        ("Host", "examplebucket.s3.amazonaws.com"),
        ("x-amz-date", "20130524T000000Z"),
        ("x-amz-content-sha256", EMPTY_SHA256),
        ("Authorization", lifecycle_authorization.as_str()),
    ];
    verify("GET", "/", "lifecycle", &headers, EXAMPLE_TIME_UNIX_SECONDS).unwrap();

    let list_authorization = authorization(
        "host;x-amz-content-sha256;x-amz-date",
        "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7",
    );
    let headers = [
        ("Host", "examplebucket.s3.amazonaws.com"),
        ("x-amz-date", "20130524T000000Z"),
        ("x-amz-content-sha256", EMPTY_SHA256),
        ("Authorization", list_authorization.as_str()),
    ];
    verify(
        "GET",
        "/",
        "max-keys=2&prefix=J",
        &headers,
        EXAMPLE_TIME_UNIX_SECONDS,
    )
    .unwrap();
    // Parameter order on the wire does not matter: the canonical query is sorted.
    verify(
        "GET",
        "/",
        "prefix=J&max-keys=2",
        &headers,
        EXAMPLE_TIME_UNIX_SECONDS,
    )
    .unwrap();
    assert_eq!(
        verify(
            "GET",
            "/",
            "max-keys=3&prefix=J",
            &headers,
            EXAMPLE_TIME_UNIX_SECONDS
        ),
        Err(S3Error::SignatureDoesNotMatch)
    );
}

const PRESIGNED_EXAMPLE_QUERY: &str = "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404";

#[test]
fn documentation_example_presigned() {
    let headers = [("Host", "examplebucket.s3.amazonaws.com")];
    let verified = verify(
        "GET",
        "/test.txt",
        PRESIGNED_EXAMPLE_QUERY,
        &headers,
        EXAMPLE_TIME_UNIX_SECONDS + 3600,
    )
    .unwrap();
    assert!(verified.presigned);
    assert_eq!(verified.payload, PayloadMode::Unsigned);
    // Valid for exactly X-Amz-Expires seconds.
    assert!(
        verify(
            "GET",
            "/test.txt",
            PRESIGNED_EXAMPLE_QUERY,
            &headers,
            EXAMPLE_TIME_UNIX_SECONDS + 86_400
        )
        .is_ok()
    );
    assert_eq!(
        verify(
            "GET",
            "/test.txt",
            PRESIGNED_EXAMPLE_QUERY,
            &headers,
            EXAMPLE_TIME_UNIX_SECONDS + 86_401
        ),
        Err(S3Error::RequestExpired)
    );
    assert_eq!(
        verify(
            "GET",
            "/test.txt",
            PRESIGNED_EXAMPLE_QUERY,
            &headers,
            EXAMPLE_TIME_UNIX_SECONDS - 3600
        ),
        Err(S3Error::RequestNotYetValid)
    );
    assert_eq!(
        verify(
            "GET",
            "/test.txt",
            PRESIGNED_EXAMPLE_QUERY,
            &[("Host", "other.s3.amazonaws.com")],
            EXAMPLE_TIME_UNIX_SECONDS
        ),
        Err(S3Error::SignatureDoesNotMatch)
    );
    assert_eq!(
        verify(
            "GET",
            "/test.txt",
            &PRESIGNED_EXAMPLE_QUERY.replace("86400", "86401"),
            &headers,
            EXAMPLE_TIME_UNIX_SECONDS
        ),
        Err(S3Error::SignatureDoesNotMatch)
    );
    let too_long = PRESIGNED_EXAMPLE_QUERY.replace("86400", "604801");
    assert!(matches!(
        verify(
            "GET",
            "/test.txt",
            &too_long,
            &headers,
            EXAMPLE_TIME_UNIX_SECONDS
        ),
        Err(S3Error::AuthorizationQueryParametersError(_))
    ));
}

#[test]
fn header_auth_failures() {
    let good_authorization = authorization(
        "host;range;x-amz-content-sha256;x-amz-date",
        "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41",
    );
    let base: Vec<(&str, &str)> = vec![
        ("Host", "examplebucket.s3.amazonaws.com"),
        ("Range", "bytes=0-9"),
        ("x-amz-content-sha256", EMPTY_SHA256),
        ("x-amz-date", "20130524T000000Z"),
    ];
    let with = |replace: Option<(&'static str, &'static str)>,
                extra: Option<(&'static str, &'static str)>,
                authorization: &str| {
        let mut headers: Vec<(String, String)> = base
            .iter()
            .map(|(name, value)| match replace {
                Some((replace_name, replace_value)) if replace_name == *name => {
                    (name.to_string(), replace_value.to_string())
                }
                _ => (name.to_string(), value.to_string()),
            })
            .collect();
        if let Some((name, value)) = extra {
            headers.push((name.to_string(), value.to_string()));
        }
        headers.push(("Authorization".to_string(), authorization.to_string()));
        headers
    };
    let run = |headers: Vec<(String, String)>, now: i64| {
        let borrowed: Vec<(&str, &str)> = headers
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_str()))
            .collect();
        verify("GET", "/test.txt", "", &borrowed, now)
    };
    let now = EXAMPLE_TIME_UNIX_SECONDS;
    assert!(run(with(None, None, &good_authorization), now).is_ok());
    // Each signed header changed.
    assert_eq!(
        run(
            with(Some(("Range", "bytes=0-10")), None, &good_authorization),
            now
        ),
        Err(S3Error::SignatureDoesNotMatch)
    );
    assert_eq!(
        run(
            with(
                Some(("Host", "evil.s3.amazonaws.com")),
                None,
                &good_authorization
            ),
            now
        ),
        Err(S3Error::SignatureDoesNotMatch)
    );
    assert_eq!(
        run(
            with(
                Some(("x-amz-content-sha256", "UNSIGNED-PAYLOAD")),
                None,
                &good_authorization
            ),
            now
        ),
        Err(S3Error::SignatureDoesNotMatch)
    );
    assert_eq!(
        run(
            with(
                Some(("x-amz-date", "20130524T000001Z")),
                None,
                &good_authorization
            ),
            now
        ),
        Err(S3Error::SignatureDoesNotMatch)
    );
    // Method and path.
    let headers = with(None, None, &good_authorization);
    let borrowed: Vec<(&str, &str)> = headers
        .iter()
        .map(|(name, value)| (name.as_str(), value.as_str()))
        .collect();
    assert_eq!(
        verify("HEAD", "/test.txt", "", &borrowed, now),
        Err(S3Error::SignatureDoesNotMatch)
    );
    assert_eq!(
        verify("GET", "/test.txT", "", &borrowed, now),
        Err(S3Error::SignatureDoesNotMatch)
    );
    assert_eq!(
        verify("GET", "/test.txt", "x=1", &borrowed, now),
        Err(S3Error::SignatureDoesNotMatch)
    );
    // The signature itself, one digit changed.
    let bad_signature = good_authorization.replace("bdb41", "bdb42");
    assert_eq!(
        run(with(None, None, &bad_signature), now),
        Err(S3Error::SignatureDoesNotMatch)
    );
    // An x-amz-* header that is not signed.
    assert!(matches!(
        run(
            with(None, Some(("x-amz-meta-color", "red")), &good_authorization),
            now
        ),
        Err(S3Error::UnsignedHeaders(_))
    ));
    // Clock skew: 15 minutes is fine, 15 minutes and a second is not.
    assert!(run(with(None, None, &good_authorization), now + 900).is_ok());
    assert_eq!(
        run(with(None, None, &good_authorization), now + 901),
        Err(S3Error::RequestTimeTooSkewed)
    );
    assert_eq!(
        run(with(None, None, &good_authorization), now - 901),
        Err(S3Error::RequestTimeTooSkewed)
    );
    // Unknown key id, wrong scope, garbage header.
    let unknown = good_authorization.replace(ACCESS_KEY_ID, "AKIDUNKNOWN");
    assert_eq!(
        run(with(None, None, &unknown), now),
        Err(S3Error::InvalidAccessKeyId)
    );
    let wrong_date = good_authorization.replace("/20130524/", "/20130523/");
    assert!(matches!(
        run(with(None, None, &wrong_date), now),
        Err(S3Error::AuthorizationHeaderMalformed(_))
    ));
    let wrong_service = good_authorization.replace("/s3/", "/ec2/");
    assert!(matches!(
        run(with(None, None, &wrong_service), now),
        Err(S3Error::AuthorizationHeaderMalformed(_))
    ));
    assert!(matches!(
        run(with(None, None, "AWS4-HMAC-SHA256 garbage"), now),
        Err(S3Error::AuthorizationHeaderMalformed(_))
    ));
    assert!(matches!(
        run(with(None, None, "AWS AKID:c2lnbmF0dXJl"), now),
        Err(S3Error::InvalidRequest(_))
    ));
    // Region pinning.
    let request = SignedRequest {
        method: "GET",
        raw_path: "/test.txt",
        raw_query: "",
        headers: &borrowed,
    };
    let pinned = VerifyConfig {
        region: Some("eu-west-1".to_string()),
    };
    let error = verify_request(&request, &secrets, &pinned, now).unwrap_err();
    assert_eq!(
        error,
        S3Error::WrongSigningRegion {
            signing_region: "us-east-1".to_string(),
            expected_region: "eu-west-1".to_string(),
        }
    );
    assert_eq!(error.code(), "AuthorizationHeaderMalformed");
    assert!(
        error
            .to_xml("/test.txt", "1")
            .contains("<Region>eu-west-1</Region>")
    );
}

#[test]
fn two_auth_mechanisms_are_refused() {
    let authorization = authorization(
        "host",
        "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41",
    );
    let headers = [
        ("Host", "examplebucket.s3.amazonaws.com"),
        ("Authorization", authorization.as_str()),
    ];
    assert!(matches!(
        verify(
            "GET",
            "/test.txt",
            PRESIGNED_EXAMPLE_QUERY,
            &headers,
            EXAMPLE_TIME_UNIX_SECONDS
        ),
        Err(S3Error::InvalidArgument(_))
    ));
}

#[test]
fn anonymous_requests_are_reported_as_such() {
    let request = SignedRequest {
        method: "GET",
        raw_path: "/bucket/key",
        raw_query: "",
        headers: &[("Host", "h")],
    };
    assert_eq!(
        verify_request(&request, &secrets, &VerifyConfig::default(), 0),
        Ok(Authentication::Anonymous)
    );
}

// --- cross-check with the aws-sigv4 signer ---------------------------------------------------

struct Signed {
    headers: Vec<(String, String)>,
    raw_query: String,
}

fn s3_settings(location: SignatureLocation, expires_in: Option<Duration>) -> SigningSettings {
    let mut settings = SigningSettings::default();
    settings.percent_encoding_mode = PercentEncodingMode::Single;
    settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
    settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
    settings.signature_location = location;
    settings.expires_in = expires_in;
    settings
}

fn sign_with_aws(
    method: &str,
    raw_path: &str,
    raw_query: &str,
    headers: &[(&str, &str)],
    body: SignableBody<'_>,
    location: SignatureLocation,
    signing_time_unix_seconds: i64,
) -> Signed {
    let identity: Identity =
        Credentials::new(ACCESS_KEY_ID, SECRET_ACCESS_KEY, None, None, "test").into();
    let expires_in =
        (location == SignatureLocation::QueryParams).then(|| Duration::from_secs(3600));
    let mut settings = s3_settings(location, expires_in);
    if location == SignatureLocation::QueryParams {
        settings.payload_checksum_kind = PayloadChecksumKind::NoHeader;
    }
    let params = aws_sigv4::sign::v4::SigningParams::builder()
        .identity(&identity)
        .region("us-east-1")
        .name("s3")
        .time(UNIX_EPOCH + Duration::from_secs(signing_time_unix_seconds as u64))
        .settings(settings)
        .build()
        .unwrap()
        .into();
    let uri = if raw_query.is_empty() {
        raw_path.to_string()
    } else {
        format!("{raw_path}?{raw_query}")
    };
    let request = SignableRequest::new(method, uri, headers.iter().copied(), body).unwrap();
    let (instructions, _signature) = sign(request, &params).unwrap().into_parts();
    let mut all_headers: Vec<(String, String)> = headers
        .iter()
        .map(|(name, value)| (name.to_string(), value.to_string()))
        .collect();
    all_headers.extend(
        instructions
            .headers()
            .map(|(name, value)| (name.to_string(), value.to_string())),
    );
    let mut query = raw_query.to_string();
    for (name, value) in instructions.params() {
        if !query.is_empty() {
            query.push('&');
        }
        query.push_str(name);
        query.push('=');
        query.push_str(&uri_encode(value, false));
    }
    Signed {
        headers: all_headers,
        raw_query: query,
    }
}

fn verify_signed(
    method: &str,
    raw_path: &str,
    signed: &Signed,
    now: i64,
) -> Result<VerifiedRequest, S3Error> {
    let borrowed: Vec<(&str, &str)> = signed
        .headers
        .iter()
        .map(|(name, value)| (name.as_str(), value.as_str()))
        .collect();
    verify(method, raw_path, &signed.raw_query, &borrowed, now)
}

const NOW: i64 = 1_764_000_000;

/// Keys that exercise S3's URI encoding: spaces, `+`, `%`, `//`, unicode, reserved characters.
const AWKWARD_KEYS: [&str; 8] = [
    "plain.txt",
    "with space/and+plus.txt",
    "percent%25literal",
    "double//slash/",
    "unicode/日本語/ünï.bin",
    "reserved!$&'()*,;=@:",
    "tilde~dash-under_score.dot",
    "a=b&c=d?e",
];

#[test]
fn aws_sigv4_header_signatures_verify_for_awkward_keys() {
    for key in AWKWARD_KEYS {
        let raw_path = format!("/bucket/{}", uri_encode(key, true));
        let body = b"hello world";
        let signed = sign_with_aws(
            "PUT",
            &raw_path,
            "",
            &[
                ("host", "127.0.0.1:9000"),
                ("content-type", "text/plain"),
                ("x-amz-meta-note", "  two  spaces "),
            ],
            SignableBody::Bytes(body),
            SignatureLocation::Headers,
            NOW,
        );
        let verified = verify_signed("PUT", &raw_path, &signed, NOW + 30)
            .unwrap_or_else(|error| panic!("{key}: {error:?}"));
        assert!(matches!(verified.payload, PayloadMode::Sha256 { .. }));
        // Tamper: same request, another key.
        let other_path = format!("{raw_path}x");
        assert_eq!(
            verify_signed("PUT", &other_path, &signed, NOW),
            Err(S3Error::SignatureDoesNotMatch),
            "{key}"
        );
    }
}

#[test]
fn aws_sigv4_query_signatures_verify() {
    let raw_query = "list-type=2&prefix=a%20b%2Bc&delimiter=%2F&encoding-type=url";
    let signed = sign_with_aws(
        "GET",
        "/bucket",
        raw_query,
        &[("host", "s3.localhost:9000")],
        SignableBody::UnsignedPayload,
        SignatureLocation::Headers,
        NOW,
    );
    let verified = verify_signed("GET", "/bucket", &signed, NOW).unwrap();
    assert_eq!(verified.payload, PayloadMode::Unsigned);
    let mut tampered = Signed {
        headers: signed.headers.clone(),
        raw_query: signed.raw_query.replace("a%20b", "a%20c"),
    };
    assert_eq!(
        verify_signed("GET", "/bucket", &tampered, NOW),
        Err(S3Error::SignatureDoesNotMatch)
    );
    tampered.raw_query = format!("{}&max-keys=1", signed.raw_query);
    assert_eq!(
        verify_signed("GET", "/bucket", &tampered, NOW),
        Err(S3Error::SignatureDoesNotMatch)
    );
}

#[test]
fn aws_sigv4_presigned_urls_verify() {
    for key in AWKWARD_KEYS {
        let raw_path = format!("/bucket/{}", uri_encode(key, true));
        let signed = sign_with_aws(
            "GET",
            &raw_path,
            "response-content-type=text%2Fplain",
            &[("host", "bucket.s3.localhost:9000")],
            SignableBody::UnsignedPayload,
            SignatureLocation::QueryParams,
            NOW,
        );
        let verified = verify_signed("GET", &raw_path, &signed, NOW + 3599)
            .unwrap_or_else(|error| panic!("{key}: {error:?}"));
        assert!(verified.presigned);
        assert_eq!(
            verify_signed("GET", &raw_path, &signed, NOW + 3601),
            Err(S3Error::RequestExpired)
        );
        assert_eq!(
            verify_signed("PUT", &raw_path, &signed, NOW),
            Err(S3Error::SignatureDoesNotMatch)
        );
        let tampered = Signed {
            headers: signed.headers.clone(),
            raw_query: signed.raw_query.replace("text%2Fplain", "text%2Fhtml"),
        };
        assert_eq!(
            verify_signed("GET", &raw_path, &tampered, NOW),
            Err(S3Error::SignatureDoesNotMatch)
        );
    }
}

#[test]
fn aws_sigv4_streaming_modes_are_recognised() {
    for (body, expected) in [
        (
            SignableBody::StreamingUnsignedPayloadTrailer,
            PayloadMode::StreamingUnsignedTrailer,
        ),
        (
            SignableBody::StreamingSignedPayloadTrailer,
            PayloadMode::StreamingSigned { trailer: true },
        ),
        (
            SignableBody::Precomputed("STREAMING-AWS4-HMAC-SHA256-PAYLOAD".to_string()),
            PayloadMode::StreamingSigned { trailer: false },
        ),
    ] {
        let signed = sign_with_aws(
            "PUT",
            "/bucket/key",
            "",
            &[
                ("host", "localhost"),
                ("content-encoding", "aws-chunked"),
                ("x-amz-decoded-content-length", "5"),
            ],
            body,
            SignatureLocation::Headers,
            NOW,
        );
        assert_eq!(
            verify_signed("PUT", "/bucket/key", &signed, NOW)
                .unwrap()
                .payload,
            expected
        );
    }
}

#[test]
fn access_key_id_is_read_from_header_or_presigned_query() {
    let headers = [(
        "authorization",
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20250101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=0000000000000000000000000000000000000000000000000000000000000000",
    )];
    let request = SignedRequest {
        method: "GET",
        raw_path: "/",
        raw_query: "",
        headers: &headers,
    };
    assert_eq!(
        request.claimed_access_key_id().unwrap().as_deref(),
        Some("AKIDEXAMPLE")
    );

    let query = "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIDQUERY%2F20250101%2Fus-east-1%2Fs3%2Faws4_request";
    let request = SignedRequest {
        method: "GET",
        raw_path: "/b/k",
        raw_query: query,
        headers: &[],
    };
    assert_eq!(
        request.claimed_access_key_id().unwrap().as_deref(),
        Some("AKIDQUERY")
    );

    let request = SignedRequest {
        method: "GET",
        raw_path: "/",
        raw_query: "",
        headers: &[],
    };
    assert_eq!(request.claimed_access_key_id().unwrap(), None);

    // Another scheme claims nothing; the verifier names the error.
    let headers = [("authorization", "AWS AKIDV2:c2lnbmF0dXJl")];
    let request = SignedRequest {
        method: "GET",
        raw_path: "/",
        raw_query: "",
        headers: &headers,
    };
    assert_eq!(request.claimed_access_key_id().unwrap(), None);
}
