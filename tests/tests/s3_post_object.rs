//! Black-box tests of POST object (browser-based uploads, issue 6) against `cairn dev`, with two
//! independent clients:
//! - boto3's `generate_presigned_post` signs the form and `requests` sends it
//!   (tests/python/s3_post_object.py: the happy path, `${filename}`, metadata, tagging, 201 and
//!   redirect answers, every refusal, anonymous POSTs with and without a bucket policy);
//! - a raw HTTP/1.1 client written here that builds the multipart/form-data body, the policy
//!   document and its SigV4 signature itself (hmac + sha2, nothing of Cairn's or boto3's), used
//!   for a 20 MiB file streamed through the form, versioned uploads, field names in other cases,
//!   the refusals again, and the `PostObject` metrics.
//!
//! Objects are read back with aws-sdk-s3; a refused POST must leave no object behind.

#[path = "sdk_client.rs"]
mod sdk_client;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_sdk_s3::Client;
use base64::Engine as _;
use cairn_tests::{CairnDev, content};
use hmac::{Hmac, Mac};
use md5::Digest as _;
use sha2::Sha256;

const BINARY: &str = env!("CARGO_BIN_EXE_cairn");
const REGION: &str = "us-east-1";

#[test]
fn boto3_presigned_post_sent_with_requests() {
    let dir = tempfile::tempdir().unwrap();
    let dev = CairnDev::start(Path::new(BINARY), dir.path());
    dev.run_boto3_script("s3_post_object.py");
    dev.assert_no_errors_logged();
}

/// A response read off the wire (the client asked for `Connection: close`).
struct RawResponse {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl RawResponse {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(header, _)| header.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The `<Code>` of an error document.
    fn code(&self) -> String {
        element(&self.text(), "Code")
    }
}

fn element(document: &str, name: &str) -> String {
    let open = format!("<{name}>");
    let close = format!("</{name}>");
    document
        .split_once(&open)
        .and_then(|(_, rest)| rest.split_once(&close))
        .map(|(inside, _)| inside.to_owned())
        .unwrap_or_default()
}

/// Sends `POST /bucket` with `body` as multipart/form-data and reads the whole answer.
fn send_form(address: SocketAddr, bucket: &str, boundary: &str, body: &[u8]) -> RawResponse {
    let mut stream = TcpStream::connect(address).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let head = format!(
        "POST /{bucket} HTTP/1.1\r\nHost: {address}\r\nContent-Type: multipart/form-data; boundary={boundary}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).unwrap();
    // A refusal may come before the whole body was sent; the answer is still read below.
    let _ = stream.write_all(body);
    let mut raw = Vec::new();
    let _ = stream.read_to_end(&mut raw);
    let split = raw
        .windows(4)
        .position(|window| window == b"\r\n\r\n")
        .expect("a complete response head");
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|line| line.split(' ').nth(1))
        .and_then(|code| code.parse().ok())
        .expect("a status line");
    let headers = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_owned(), value.trim().to_owned()))
        .collect();
    RawResponse {
        status,
        headers,
        body: raw[split + 4..].to_vec(),
    }
}

/// The multipart/form-data body: the fields in order, then the file.
fn form_body(boundary: &str, fields: &[(String, String)], filename: &str, file: &[u8]) -> Vec<u8> {
    let mut body = Vec::with_capacity(file.len() + 4096);
    for (name, value) in fields {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
            )
            .as_bytes(),
        );
    }
    body.extend_from_slice(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{filename}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
        )
        .as_bytes(),
    );
    body.extend_from_slice(file);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    body
}

fn hmac_sha256(key: &[u8], message: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap();
    mac.update(message);
    mac.finalize().into_bytes().to_vec()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// (year, month, day, hour, minute, second) in UTC.
fn civil(unix_seconds: i64) -> (i64, i64, i64, i64, i64, i64) {
    let days = unix_seconds.div_euclid(86_400);
    let seconds = unix_seconds.rem_euclid(86_400);
    // Howard Hinnant's days-to-civil.
    let shifted = days + 719_468;
    let era = shifted.div_euclid(146_097);
    let day_of_era = shifted.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (
        year,
        month,
        day,
        seconds / 3600,
        seconds % 3600 / 60,
        seconds % 60,
    )
}

fn now_unix_seconds() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Signs forms with one access key.
struct Signer<'a> {
    access_key: &'a str,
    secret_key: &'a str,
}

impl Signer<'_> {
    /// The signed fields of a form: `fields` (in order) plus the policy (expiring
    /// `expires_in_seconds` from now, with `conditions` and a condition per signature field) and
    /// its signature, with the field names as `name` maps them (to test case-insensitivity).
    fn sign(
        &self,
        fields: &[(&str, &str)],
        conditions: &[String],
        expires_in_seconds: i64,
        name: impl Fn(&str) -> String,
    ) -> Vec<(String, String)> {
        let now = now_unix_seconds();
        let (year, month, day, hour, minute, second) = civil(now);
        let date = format!("{year:04}{month:02}{day:02}");
        let amz_date = format!("{date}T{hour:02}{minute:02}{second:02}Z");
        let (year, month, day, hour, minute, second) = civil(now + expires_in_seconds);
        let expiration =
            format!("{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}.000Z");
        let credential = format!("{}/{date}/{REGION}/s3/aws4_request", self.access_key);
        let mut all_conditions: Vec<String> = conditions.to_vec();
        all_conditions.push("{\"x-amz-algorithm\": \"AWS4-HMAC-SHA256\"}".to_owned());
        all_conditions.push(format!("{{\"x-amz-credential\": \"{credential}\"}}"));
        all_conditions.push(format!("{{\"x-amz-date\": \"{amz_date}\"}}"));
        let policy = format!(
            "{{\"expiration\": \"{expiration}\", \"conditions\": [{}]}}",
            all_conditions.join(", ")
        );
        let policy_base64 = base64::engine::general_purpose::STANDARD.encode(policy);
        let signing_key = [date.as_str(), REGION, "s3", "aws4_request"].iter().fold(
            format!("AWS4{}", self.secret_key).into_bytes(),
            |key, part| hmac_sha256(&key, part.as_bytes()),
        );
        let signature = hex(&hmac_sha256(&signing_key, policy_base64.as_bytes()));
        let mut signed: Vec<(String, String)> = fields
            .iter()
            .map(|(field, value)| (name(field), (*value).to_owned()))
            .collect();
        signed.push((name("x-amz-algorithm"), "AWS4-HMAC-SHA256".to_owned()));
        signed.push((name("x-amz-credential"), credential));
        signed.push((name("x-amz-date"), amz_date));
        signed.push((name("policy"), policy_base64));
        signed.push((name("x-amz-signature"), signature));
        signed
    }
}

async fn object_exists(s3: &Client, bucket: &str, key: &str) -> bool {
    s3.head_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .is_ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_form_client_signs_and_streams() {
    let dir = tempfile::tempdir().unwrap();
    let dev = tokio::task::block_in_place(|| CairnDev::start(Path::new(BINARY), dir.path()));
    let s3 = sdk_client::client(&dev);
    let bucket = "raw-post";
    sdk_client::create_versioned_bucket(&s3, bucket).await;
    let signer = Signer {
        access_key: &dev.access_key,
        secret_key: &dev.secret_key,
    };
    let boundary = "----cairn-form-boundary-7c1f";
    let same = |name: &str| name.to_owned();
    let address = dev.endpoint;
    let post = move |fields: &[(String, String)], filename: &str, file: &[u8]| {
        let body = form_body(boundary, fields, filename, file);
        tokio::task::block_in_place(|| send_form(address, bucket, boundary, &body))
    };

    // 201 with the PostResponse document; ${filename}; metadata; the version id.
    let small = content(1, 70_001);
    let fields = signer.sign(
        &[
            ("key", "raw/${filename}"),
            ("Content-Type", "text/plain"),
            ("x-amz-meta-owner", "rust"),
            ("success_action_status", "201"),
        ],
        &[
            format!("{{\"bucket\": \"{bucket}\"}}"),
            "[\"starts-with\", \"$key\", \"raw/\"]".to_owned(),
            "[\"eq\", \"$Content-Type\", \"text/plain\"]".to_owned(),
            "{\"x-amz-meta-owner\": \"rust\"}".to_owned(),
            "{\"success_action_status\": \"201\"}".to_owned(),
        ],
        300,
        same,
    );
    let response = post(&fields, "notes.txt", &small);
    assert_eq!(response.status, 201, "{}", response.text());
    let document = response.text();
    assert_eq!(element(&document, "Bucket"), bucket);
    assert_eq!(element(&document, "Key"), "raw/notes.txt");
    let expected_etag = format!("\"{}\"", hex(&md5::Md5::digest(&small)));
    assert_eq!(
        element(&document, "ETag"),
        expected_etag.replace('"', "&quot;")
    );
    assert_eq!(response.header("etag"), Some(expected_etag.as_str()));
    let version_id = response
        .header("x-amz-version-id")
        .expect("a version id on a versioned bucket")
        .to_owned();
    let stored = s3
        .get_object()
        .bucket(bucket)
        .key("raw/notes.txt")
        .send()
        .await
        .unwrap();
    assert_eq!(stored.version_id(), Some(version_id.as_str()));
    assert_eq!(stored.content_type(), Some("text/plain"));
    assert_eq!(
        stored.metadata().and_then(|metadata| metadata.get("owner")),
        Some(&"rust".to_owned())
    );
    let bytes = stored.body.collect().await.unwrap().into_bytes();
    assert!(bytes[..] == small[..], "small object differs");

    // 20 MiB through the form, field names in other cases; read back byte-exact.
    let large = content(2, 20 << 20);
    let upper = |name: &str| match name {
        "key" => "KEY".to_owned(),
        "policy" => "Policy".to_owned(),
        other => other.to_ascii_uppercase(),
    };
    let fields = signer.sign(
        &[("key", "raw/large.bin")],
        &[
            "{\"key\": \"raw/large.bin\"}".to_owned(),
            "[\"content-length-range\", 1048576, 31457280]".to_owned(),
        ],
        300,
        upper,
    );
    let response = post(&fields, "large.bin", &large);
    assert_eq!(response.status, 204, "{}", response.text());
    let stored = s3
        .get_object()
        .bucket(bucket)
        .key("raw/large.bin")
        .send()
        .await
        .unwrap();
    assert_eq!(stored.content_length(), Some(large.len() as i64));
    assert_eq!(
        stored.e_tag(),
        Some(format!("\"{}\"", hex(&md5::Md5::digest(&large))).as_str())
    );
    let bytes = stored.body.collect().await.unwrap().into_bytes();
    assert!(bytes[..] == large[..], "large object differs");

    // Refusals: AWS's status and code, and nothing stored.
    let refused_key = "raw/refused.bin";
    let ranged = signer.sign(
        &[("key", refused_key)],
        &[
            format!("{{\"key\": \"{refused_key}\"}}"),
            "[\"content-length-range\", 100, 1000]".to_owned(),
        ],
        300,
        same,
    );
    let too_large = post(&ranged, "f", &[1u8; 1001]);
    assert_eq!(
        (too_large.status, too_large.code()),
        (400, "EntityTooLarge".into())
    );
    let too_small = post(&ranged, "f", &[1u8; 99]);
    assert_eq!(
        (too_small.status, too_small.code()),
        (400, "EntityTooSmall".into())
    );

    let prefixed = signer.sign(
        &[("key", refused_key)],
        &["[\"starts-with\", \"$key\", \"uploads/\"]".to_owned()],
        300,
        same,
    );
    let failed = post(&prefixed, "f", b"data");
    assert_eq!((failed.status, failed.code()), (403, "AccessDenied".into()));
    assert!(
        element(&failed.text(), "Message")
            .starts_with("Invalid according to Policy: Policy Condition failed"),
        "{}",
        failed.text()
    );

    let expired = signer.sign(
        &[("key", refused_key)],
        &[format!("{{\"key\": \"{refused_key}\"}}")],
        -5,
        same,
    );
    let late = post(&expired, "f", b"data");
    assert_eq!((late.status, late.code()), (403, "AccessDenied".into()));
    assert_eq!(
        element(&late.text(), "Message"),
        "Invalid according to Policy: Policy expired."
    );

    let mut forged = signer.sign(
        &[("key", refused_key)],
        &[format!("{{\"key\": \"{refused_key}\"}}")],
        300,
        same,
    );
    let signature = &mut forged.last_mut().unwrap().1;
    let flipped = if signature.starts_with('a') { "b" } else { "a" };
    signature.replace_range(0..1, flipped);
    let bad = post(&forged, "f", b"data");
    assert_eq!(
        (bad.status, bad.code()),
        (403, "SignatureDoesNotMatch".into())
    );

    let mut uncovered = signer.sign(
        &[("key", refused_key)],
        &[format!("{{\"key\": \"{refused_key}\"}}")],
        300,
        same,
    );
    uncovered.insert(1, ("x-amz-meta-sneaky".to_owned(), "1".to_owned()));
    let extra = post(&uncovered, "f", b"data");
    assert_eq!((extra.status, extra.code()), (403, "AccessDenied".into()));
    assert_eq!(
        element(&extra.text(), "Message"),
        "Invalid according to Policy: Extra input fields: x-amz-meta-sneaky"
    );

    let unsigned_policy = vec![
        ("key".to_owned(), refused_key.to_owned()),
        ("policy".to_owned(), "e30=".to_owned()),
    ];
    let missing = post(&unsigned_policy, "f", b"data");
    assert_eq!(
        (missing.status, missing.code()),
        (400, "InvalidArgument".into())
    );

    // Anonymous, without a bucket policy that allows it.
    let anonymous = vec![("key".to_owned(), refused_key.to_owned())];
    let denied = post(&anonymous, "f", b"data");
    assert_eq!((denied.status, denied.code()), (403, "AccessDenied".into()));

    // Not a form at all.
    let not_form = tokio::task::block_in_place(|| {
        let mut stream = TcpStream::connect(address).unwrap();
        stream
            .write_all(
                format!("POST /{bucket} HTTP/1.1\r\nHost: {address}\r\nContent-Type: text/plain\r\nContent-Length: 4\r\nConnection: close\r\n\r\ndata").as_bytes(),
            )
            .unwrap();
        let mut raw = String::new();
        let _ = stream.read_to_string(&mut raw);
        raw
    });
    assert!(not_form.starts_with("HTTP/1.1 412"), "{not_form}");

    assert!(!object_exists(&s3, bucket, refused_key).await);
    let versions = s3
        .list_object_versions()
        .bucket(bucket)
        .send()
        .await
        .unwrap();
    let keys: Vec<&str> = versions
        .versions()
        .iter()
        .filter_map(|version| version.key())
        .collect();
    assert_eq!(
        keys,
        ["raw/large.bin", "raw/notes.txt"],
        "refusals stored nothing"
    );

    // Counted under their own operation name.
    tokio::task::block_in_place(|| {
        let ok = dev
            .metric("cairn_gateway_requests_total{operation=\"PostObject\",status_class=\"2xx\"}");
        let refused = dev
            .metric("cairn_gateway_requests_total{operation=\"PostObject\",status_class=\"4xx\"}");
        assert_eq!(ok, 2.0);
        assert_eq!(refused, 9.0);
    });
    dev.assert_no_errors_logged();
}
