//! End to end in one process: a one-replica metadata cluster (tokio), six storage nodes in three
//! zones (glommio, one core each), and the gateway (monoio), driven over HTTP by `ureq` with
//! requests signed by the `aws-sigv4` crate. Covers buckets, an erasure-coded PUT of ~3 MiB,
//! byte-exact GET, a range GET, listing, delete, authentication failures, and a degraded write
//! and read through a second gateway that cannot reach one storage node.

use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant, SystemTime};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    PercentEncodingMode, SignableBody, SignableRequest, SignatureLocation, SigningSettings,
    UriPathNormalizationMode, sign,
};
use aws_smithy_runtime_api::client::identity::Identity;
use cairn_gateway::{GatewayConfig, RootCredentials, StorageNodeConfig, start_gateway};
use cairn_raft::{MetaClientConfig, MetaNode, MetaNodeConfig, RaftTiming};
use rand::RngCore;

const ACCESS_KEY_ID: &str = "CAIRNTESTROOTKEY";
const SECRET_ACCESS_KEY: &str = "cairn-test-root-secret-0123456789abcdef";
const REGION: &str = "us-east-1";
const PARTITION_COUNT: u32 = 2;

struct Cluster {
    meta_peers: BTreeMap<u64, String>,
    storage_nodes: Vec<StorageNodeConfig>,
    // Kept alive for the test's duration; the storage threads run until the process exits.
    _meta_runtime: tokio::runtime::Runtime,
    _meta_node: MetaNode,
    _dirs: Vec<tempfile::TempDir>,
}

fn free_local_address() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("local address")
}

fn wait_until_listening(address: SocketAddr) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(address).is_err() {
        assert!(
            Instant::now() < deadline,
            "{address} never started listening"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn start_cluster() -> Cluster {
    let mut dirs = Vec::new();
    let meta_runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let meta_dir = tempfile::tempdir().expect("temp dir");
    let (meta_node, meta_peers) = meta_runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind meta");
        let address = listener.local_addr().expect("meta address");
        let peers = BTreeMap::from([(1, address.to_string())]);
        let mut config = MetaNodeConfig::new(1, address, meta_dir.path().to_owned(), peers.clone());
        config.partition_count = PARTITION_COUNT;
        config.timing = RaftTiming {
            heartbeat_interval_ms: 50,
            election_timeout_min_ms: 300,
            election_timeout_max_ms: 600,
            ..RaftTiming::default()
        };
        let node = MetaNode::start_with_listener(config, listener)
            .await
            .expect("start meta node");
        (node, peers)
    });
    dirs.push(meta_dir);

    let mut storage_nodes = Vec::new();
    for index in 0..6u64 {
        let address = free_local_address();
        let dir = tempfile::tempdir().expect("temp dir");
        let zone = format!("az{}", index % 3);
        let mut config = cairn_storage::NodeConfig::new(address, dir.path(), zone.clone());
        config.cores = Some(1);
        config.cache_capacity_bytes_per_core = 8 << 20;
        config.segment_size_bytes = 16 << 20;
        std::thread::spawn(move || {
            if let Err(error) = cairn_storage::run(config) {
                eprintln!("storage node {address} stopped: {error}");
            }
        });
        dirs.push(dir);
        storage_nodes.push(StorageNodeConfig::new(index + 1, address, zone));
    }
    for node in &storage_nodes {
        wait_until_listening(node.address);
    }
    Cluster {
        meta_peers,
        storage_nodes,
        _meta_runtime: meta_runtime,
        _meta_node: meta_node,
        _dirs: dirs,
    }
}

fn gateway_config(cluster: &Cluster, storage_nodes: Vec<StorageNodeConfig>) -> GatewayConfig {
    let mut config = GatewayConfig::new(
        "127.0.0.1:0".parse().unwrap(),
        storage_nodes,
        MetaClientConfig::new(cluster.meta_peers.clone(), PARTITION_COUNT),
    );
    config.executors = Some(2);
    config.region = REGION.to_owned();
    config.root_credentials = Some(RootCredentials {
        access_key_id: ACCESS_KEY_ID.to_owned(),
        secret_access_key: SECRET_ACCESS_KEY.to_owned(),
        owner: "root".to_owned(),
    });
    config.storage_timeout_ms = 5_000;
    config
}

struct Answer {
    status: u16,
    headers: BTreeMap<String, String>,
    body: Vec<u8>,
}

impl Answer {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

struct Client {
    gateway: SocketAddr,
    access_key_id: String,
    secret_access_key: String,
    /// Sent (and signed) instead of the gateway's address, for virtual-host-style requests.
    host_override: Option<String>,
}

impl Client {
    fn new(gateway: SocketAddr) -> Client {
        Client {
            gateway,
            access_key_id: ACCESS_KEY_ID.to_owned(),
            secret_access_key: SECRET_ACCESS_KEY.to_owned(),
            host_override: None,
        }
    }

    /// Sends a SigV4-signed request (payload hash in `x-amz-content-sha256`).
    fn send(
        &self,
        method: &str,
        path_and_query: &str,
        extra: &[(&str, &str)],
        body: &[u8],
    ) -> Answer {
        self.send_signed(
            method,
            path_and_query,
            extra,
            body,
            SignableBody::Bytes(body),
            false,
        )
    }

    /// Signs `signable` (the payload as the signer sees it) and sends `wire_body`; with
    /// `presign` the signature goes into the query string instead of the headers.
    fn send_signed(
        &self,
        method: &str,
        path_and_query: &str,
        extra: &[(&str, &str)],
        wire_body: &[u8],
        signable: SignableBody<'_>,
        presign: bool,
    ) -> Answer {
        let (url, headers) = self.sign(method, path_and_query, extra, signable, presign);
        let mut request = ureq::request(method, &url);
        for (name, value) in &headers {
            request = request.set(name, value);
        }
        let response = match request.send_bytes(wire_body) {
            Ok(response) => response,
            Err(ureq::Error::Status(_, response)) => response,
            Err(error) => panic!("{method} {path_and_query}: {error}"),
        };
        let status = response.status();
        let headers = response
            .headers_names()
            .into_iter()
            .filter_map(|name| {
                let value = response.header(&name)?.to_owned();
                Some((name.to_ascii_lowercase(), value))
            })
            .collect();
        let mut body = Vec::new();
        std::io::Read::read_to_end(&mut response.into_reader(), &mut body).expect("read body");
        Answer {
            status,
            headers,
            body,
        }
    }

    /// Returns the URL to request and the headers to send (the extra ones plus the signer's).
    fn sign(
        &self,
        method: &str,
        path_and_query: &str,
        extra: &[(&str, &str)],
        signable: SignableBody<'_>,
        presign: bool,
    ) -> (String, Vec<(String, String)>) {
        let identity: Identity = Credentials::new(
            &self.access_key_id,
            &self.secret_access_key,
            None,
            None,
            "test",
        )
        .into();
        let mut settings = SigningSettings::default();
        settings.percent_encoding_mode = PercentEncodingMode::Single;
        settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
        if presign {
            settings.signature_location = SignatureLocation::QueryParams;
            settings.expires_in = Some(Duration::from_secs(300));
        } else {
            settings.payload_checksum_kind =
                aws_sigv4::http_request::PayloadChecksumKind::XAmzSha256;
            settings.signature_location = SignatureLocation::Headers;
        }
        let params = aws_sigv4::sign::v4::SigningParams::builder()
            .identity(&identity)
            .region(REGION)
            .name("s3")
            .time(SystemTime::now())
            .settings(settings)
            .build()
            .unwrap()
            .into();
        let mut url = format!("http://{}{}", self.gateway, path_and_query);
        let host = self
            .host_override
            .clone()
            .unwrap_or_else(|| self.gateway.to_string());
        let mut signed_headers: Vec<(&str, &str)> = vec![("host", host.as_str())];
        signed_headers.extend_from_slice(extra);
        let signable =
            SignableRequest::new(method, &url, signed_headers.iter().copied(), signable).unwrap();
        let (instructions, _signature) = sign(signable, &params).unwrap().into_parts();
        let mut headers: Vec<(String, String)> = extra
            .iter()
            .map(|(name, value)| (name.to_string(), value.to_string()))
            .collect();
        if self.host_override.is_some() {
            headers.push(("host".to_owned(), host.clone()));
        }
        headers.extend(
            instructions
                .headers()
                .map(|(name, value)| (name.to_owned(), value.to_owned())),
        );
        for (index, (name, value)) in instructions.params().iter().enumerate() {
            let separator = if index == 0 && !url.contains('?') {
                '?'
            } else {
                '&'
            };
            url.push(separator);
            url.push_str(name);
            url.push('=');
            url.push_str(&query_encode(value));
        }
        (url, headers)
    }
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
fn query_encode(value: &str) -> String {
    value
        .bytes()
        .map(|byte| {
            if byte.is_ascii_alphanumeric() || b"-_.~".contains(&byte) {
                (byte as char).to_string()
            } else {
                format!("%{byte:02X}")
            }
        })
        .collect()
}

/// An aws-chunked body with unsigned chunks and a trailing CRC32C, as current AWS SDKs send.
fn unsigned_trailer_body(payload: &[u8], chunk_size_bytes: usize) -> Vec<u8> {
    use base64::Engine as _;
    let mut wire = Vec::new();
    for chunk in payload.chunks(chunk_size_bytes) {
        wire.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        wire.extend_from_slice(chunk);
        wire.extend_from_slice(b"\r\n");
    }
    let checksum =
        base64::engine::general_purpose::STANDARD.encode(crc32c::crc32c(payload).to_be_bytes());
    wire.extend_from_slice(format!("0\r\nx-amz-checksum-crc32c:{checksum}\r\n\r\n").as_bytes());
    wire
}

fn random_bytes(length: usize) -> Vec<u8> {
    let mut bytes = vec![0u8; length];
    rand::thread_rng().fill_bytes(&mut bytes);
    bytes
}

#[test]
fn s3_operations_end_to_end() {
    let cluster = start_cluster();
    let gateway = start_gateway(gateway_config(&cluster, cluster.storage_nodes.clone()))
        .expect("start gateway");
    let client = Client::new(gateway.local_address());

    // Buckets.
    let created = client.send("PUT", "/photos", &[], b"");
    assert_eq!(created.status, 200, "{}", created.text());
    assert!(created.headers.contains_key("x-amz-request-id"));
    let again = client.send("PUT", "/photos", &[], b"");
    assert_eq!(again.status, 409, "{}", again.text());
    assert!(
        again.text().contains("BucketAlreadyOwnedByYou"),
        "{}",
        again.text()
    );
    assert_eq!(client.send("HEAD", "/photos", &[], b"").status, 200);
    assert_eq!(client.send("HEAD", "/missing-bucket", &[], b"").status, 404);
    let location = client.send("GET", "/photos?location", &[], b"");
    assert_eq!(location.status, 200);
    assert!(
        location.text().contains("LocationConstraint"),
        "{}",
        location.text()
    );
    let buckets = client.send("GET", "/", &[], b"");
    assert_eq!(buckets.status, 200);
    assert!(
        buckets.text().contains("<Name>photos</Name>"),
        "{}",
        buckets.text()
    );

    // An erasure-coded PUT of a little over 3 MiB (not a whole number of stripes).
    let object = random_bytes(3 * 1024 * 1024 + 12_345);
    let put = client.send(
        "PUT",
        "/photos/dir/cat.bin",
        &[("content-type", "image/x-test")],
        &object,
    );
    assert_eq!(put.status, 200, "{}", put.text());
    let etag = put.headers.get("etag").cloned().expect("etag");
    assert_eq!(etag.len(), 34, "{etag}");

    // GET byte-exact, HEAD, and a range across a stripe boundary.
    let got = client.send("GET", "/photos/dir/cat.bin", &[], b"");
    assert_eq!(got.status, 200, "{}", got.text());
    assert_eq!(got.headers.get("etag"), Some(&etag));
    assert_eq!(
        got.headers.get("content-type").map(String::as_str),
        Some("image/x-test")
    );
    assert!(got.body == object, "GET body differs from the PUT body");
    let head = client.send("HEAD", "/photos/dir/cat.bin", &[], b"");
    assert_eq!(head.status, 200);
    assert_eq!(
        head.headers.get("content-length"),
        Some(&object.len().to_string())
    );
    let range = client.send(
        "GET",
        "/photos/dir/cat.bin",
        &[("range", "bytes=1000000-2500000")],
        b"",
    );
    assert_eq!(range.status, 206, "{}", range.text());
    assert!(
        range.body == object[1_000_000..=2_500_000],
        "range body differs"
    );
    assert_eq!(
        range.headers.get("content-range").map(String::as_str),
        Some(format!("bytes 1000000-2500000/{}", object.len()).as_str())
    );
    let suffix = client.send(
        "GET",
        "/photos/dir/cat.bin",
        &[("range", "bytes=-100")],
        b"",
    );
    assert_eq!(suffix.status, 206);
    assert!(suffix.body == object[object.len() - 100..]);

    // An empty object.
    assert_eq!(client.send("PUT", "/photos/empty", &[], b"").status, 200);
    let empty = client.send("GET", "/photos/empty", &[], b"");
    assert_eq!(empty.status, 200);
    assert!(empty.body.is_empty());

    // Listings.
    let listed = client.send("GET", "/photos?list-type=2&prefix=dir%2F", &[], b"");
    assert_eq!(listed.status, 200, "{}", listed.text());
    let listing = listed.text();
    assert!(listing.contains("<Key>dir/cat.bin</Key>"), "{listing}");
    assert!(
        listing.contains(&format!("<Size>{}</Size>", object.len())),
        "{listing}"
    );
    assert!(!listing.contains("<Key>empty</Key>"), "{listing}");
    let delimited = client.send("GET", "/photos?list-type=2&delimiter=%2F", &[], b"");
    assert!(
        delimited.text().contains("<Prefix>dir/</Prefix>"),
        "{}",
        delimited.text()
    );
    let v1 = client.send("GET", "/photos", &[], b"");
    assert_eq!(v1.status, 200);
    assert!(v1.text().contains("<Key>empty</Key>"), "{}", v1.text());

    // Authentication failures.
    let mut forger = Client::new(gateway.local_address());
    forger.secret_access_key = "not-the-secret".to_owned();
    let forged = forger.send("GET", "/photos/dir/cat.bin", &[], b"");
    assert_eq!(forged.status, 403);
    assert!(
        forged.text().contains("<Code>SignatureDoesNotMatch</Code>"),
        "{}",
        forged.text()
    );
    assert!(forged.headers.contains_key("x-amz-request-id"));
    let mut stranger = Client::new(gateway.local_address());
    stranger.access_key_id = "UNKNOWNKEY".to_owned();
    let unknown = stranger.send("GET", "/", &[], b"");
    assert_eq!(unknown.status, 403);
    assert!(
        unknown.text().contains("<Code>InvalidAccessKeyId</Code>"),
        "{}",
        unknown.text()
    );
    let anonymous = ureq::get(&format!("http://{}/photos", gateway.local_address())).call();
    let Err(ureq::Error::Status(403, _)) = anonymous else {
        panic!("anonymous request was not refused: {anonymous:?}");
    };

    // Virtual-host-style addressing: the bucket is in the Host header, the key is the path.
    let mut virtual_host = Client::new(gateway.local_address());
    virtual_host.host_override = Some(format!(
        "photos.s3.localhost:{}",
        gateway.local_address().port()
    ));
    let by_host = virtual_host.send("GET", "/dir/cat.bin", &[("range", "bytes=0-99")], b"");
    assert_eq!(by_host.status, 206, "{}", by_host.text());
    assert!(by_host.body == object[..100]);
    let listed_by_host = virtual_host.send("GET", "/?list-type=2", &[], b"");
    assert!(
        listed_by_host.text().contains("<Key>dir/cat.bin</Key>"),
        "{}",
        listed_by_host.text()
    );

    // Unimplemented operations answer 501 with an S3 error document.
    let website = client.send("GET", "/photos?website", &[], b"");
    assert_eq!(website.status, 501);
    assert!(website.text().contains("<Code>NotImplemented</Code>"));

    // Current SDKs' default upload: aws-chunked, unsigned chunks, trailing checksum.
    let chunked_object = random_bytes(700_000);
    let decoded_length = chunked_object.len().to_string();
    let chunked_headers = [
        ("content-encoding", "aws-chunked"),
        ("x-amz-decoded-content-length", decoded_length.as_str()),
        ("x-amz-trailer", "x-amz-checksum-crc32c"),
    ];
    let chunked_put = client.send_signed(
        "PUT",
        "/photos/chunked",
        &chunked_headers,
        &unsigned_trailer_body(&chunked_object, 65_536),
        SignableBody::Precomputed("STREAMING-UNSIGNED-PAYLOAD-TRAILER".to_owned()),
        false,
    );
    assert_eq!(chunked_put.status, 200, "{}", chunked_put.text());
    assert!(chunked_put.headers.contains_key("x-amz-checksum-crc32c"));
    let chunked_get = client.send("GET", "/photos/chunked", &[], b"");
    assert!(
        chunked_get.body == chunked_object,
        "aws-chunked object differs"
    );
    // A trailer whose checksum does not match the payload stores nothing.
    let mut corrupted = unsigned_trailer_body(&chunked_object, 65_536);
    corrupted[10] ^= 0xFF;
    let bad_trailer = client.send_signed(
        "PUT",
        "/photos/bad-trailer",
        &chunked_headers,
        &corrupted,
        SignableBody::Precomputed("STREAMING-UNSIGNED-PAYLOAD-TRAILER".to_owned()),
        false,
    );
    assert_eq!(bad_trailer.status, 400, "{}", bad_trailer.text());
    assert_eq!(
        client.send("GET", "/photos/bad-trailer", &[], b"").status,
        404
    );
    assert_eq!(
        client.send("DELETE", "/photos/chunked", &[], b"").status,
        204
    );

    // A presigned GET.
    let presigned = client.send_signed(
        "GET",
        "/photos/dir/cat.bin",
        &[],
        b"",
        SignableBody::UnsignedPayload,
        true,
    );
    assert_eq!(presigned.status, 200, "{}", presigned.text());
    assert!(presigned.body == object, "presigned GET differs");

    // Expect: 100-continue: the gateway asks for the body only after the head passed.
    expect_continue_put(&client, "/photos/continued", b"after the interim response");
    let continued = client.send("GET", "/photos/continued", &[], b"");
    assert_eq!(continued.body, b"after the interim response");
    assert_eq!(
        client.send("DELETE", "/photos/continued", &[], b"").status,
        204
    );

    // Multipart: two parts (the first at the 5 MiB minimum plus a little), completed, read back
    // whole, across the part boundary, and by part number.
    let first_part = random_bytes(5 * 1024 * 1024 + 4_321);
    let second_part = random_bytes(1024 * 1024 + 99);
    let created_upload = client.send("POST", "/photos/big?uploads", &[], b"");
    assert_eq!(created_upload.status, 200, "{}", created_upload.text());
    let upload_id = element(&created_upload.text(), "UploadId");
    let mut etags = Vec::new();
    for (number, part) in [(1, &first_part), (2, &second_part)] {
        let uploaded = client.send(
            "PUT",
            &format!("/photos/big?partNumber={number}&uploadId={upload_id}"),
            &[],
            part,
        );
        assert_eq!(uploaded.status, 200, "{}", uploaded.text());
        etags.push(uploaded.headers["etag"].clone());
    }
    let parts = client.send(
        "GET",
        &format!("/photos/big?uploadId={upload_id}"),
        &[],
        b"",
    );
    assert_eq!(parts.status, 200, "{}", parts.text());
    assert_eq!(
        parts.text().matches("<Part>").count(),
        2,
        "{}",
        parts.text()
    );
    let uploads = client.send("GET", "/photos?uploads", &[], b"");
    assert_eq!(uploads.status, 200, "{}", uploads.text());
    assert!(uploads.text().contains(&upload_id), "{}", uploads.text());
    let completion = format!(
        "<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>{}</ETag></Part><Part><PartNumber>2</PartNumber><ETag>{}</ETag></Part></CompleteMultipartUpload>",
        etags[0], etags[1]
    );
    let completed = client.send(
        "POST",
        &format!("/photos/big?uploadId={upload_id}"),
        &[],
        completion.as_bytes(),
    );
    assert_eq!(completed.status, 200, "{}", completed.text());
    assert!(
        element(&completed.text(), "ETag").ends_with("-2\""),
        "{}",
        completed.text()
    );
    let whole: Vec<u8> = [first_part.as_slice(), second_part.as_slice()].concat();
    let big = client.send("GET", "/photos/big", &[], b"");
    assert_eq!(big.status, 200);
    assert!(big.body == whole, "multipart object differs");
    let boundary = first_part.len();
    let across = format!("bytes={}-{}", boundary - 1000, boundary + 1000);
    let across_answer = client.send("GET", "/photos/big", &[("range", across.as_str())], b"");
    assert_eq!(across_answer.status, 206);
    assert!(across_answer.body == whole[boundary - 1000..=boundary + 1000]);
    let by_part = client.send("GET", "/photos/big?partNumber=2", &[], b"");
    assert_eq!(by_part.status, 206, "{}", by_part.text());
    assert!(by_part.body == second_part, "part 2 differs");
    assert_eq!(
        by_part
            .headers
            .get("x-amz-mp-parts-count")
            .map(String::as_str),
        Some("2")
    );
    // CopyObject of the multipart object (decoded part by part, re-encoded as one part) with new
    // metadata, and of a single-part object keeping its metadata.
    let copied = client.send(
        "PUT",
        "/photos/big-copy",
        &[
            ("x-amz-copy-source", "/photos/big"),
            ("x-amz-metadata-directive", "REPLACE"),
            ("content-type", "text/x-copy"),
        ],
        b"",
    );
    assert_eq!(copied.status, 200, "{}", copied.text());
    assert!(
        copied.text().contains("<CopyObjectResult"),
        "{}",
        copied.text()
    );
    let big_copy = client.send("GET", "/photos/big-copy", &[], b"");
    assert!(
        big_copy.body == whole,
        "copy of the multipart object differs"
    );
    assert_eq!(
        big_copy.headers.get("content-type").map(String::as_str),
        Some("text/x-copy")
    );
    let kept = client.send(
        "PUT",
        "/photos/cat-copy",
        &[("x-amz-copy-source", "photos/dir/cat.bin")],
        b"",
    );
    assert_eq!(kept.status, 200, "{}", kept.text());
    let cat_copy = client.send("GET", "/photos/cat-copy", &[], b"");
    assert!(cat_copy.body == object, "copy differs");
    assert_eq!(
        cat_copy.headers.get("content-type").map(String::as_str),
        Some("image/x-test")
    );
    assert_eq!(cat_copy.headers.get("etag"), Some(&etag));
    let onto_itself = client.send(
        "PUT",
        "/photos/cat-copy",
        &[("x-amz-copy-source", "photos/cat-copy")],
        b"",
    );
    assert_eq!(onto_itself.status, 400, "{}", onto_itself.text());
    for key in ["/photos/big", "/photos/big-copy", "/photos/cat-copy"] {
        assert_eq!(client.send("DELETE", key, &[], b"").status, 204);
    }
    // An aborted upload takes no more parts.
    let doomed = client.send("POST", "/photos/doomed?uploads", &[], b"");
    let doomed_id = element(&doomed.text(), "UploadId");
    let aborted = client.send(
        "DELETE",
        &format!("/photos/doomed?uploadId={doomed_id}"),
        &[],
        b"",
    );
    assert_eq!(aborted.status, 204, "{}", aborted.text());
    let late = client.send(
        "PUT",
        &format!("/photos/doomed?partNumber=1&uploadId={doomed_id}"),
        &[],
        b"late",
    );
    assert_eq!(late.status, 404, "{}", late.text());
    assert!(late.text().contains("NoSuchUpload"));

    // A gateway that cannot reach node 1: the write commits on the other five (k + 1 at least)
    // and both gateways read it back, decoding around the missing shard.
    let mut partial_nodes = cluster.storage_nodes.clone();
    partial_nodes[0].address = free_local_address();
    let mut degraded_config = gateway_config(&cluster, partial_nodes);
    degraded_config.admin_listen = Some("127.0.0.1:0".parse().unwrap());
    let degraded_gateway = start_gateway(degraded_config).expect("start degraded gateway");
    let degraded_client = Client::new(degraded_gateway.local_address());
    let degraded_object = random_bytes(2 * 1024 * 1024 + 777);
    let degraded_put = degraded_client.send("PUT", "/photos/degraded", &[], &degraded_object);
    assert_eq!(degraded_put.status, 200, "{}", degraded_put.text());
    let read_back = client.send("GET", "/photos/degraded", &[], b"");
    assert!(read_back.body == degraded_object, "degraded object differs");
    let decoded = degraded_client.send("GET", "/photos/dir/cat.bin", &[], b"");
    assert_eq!(decoded.status, 200);
    assert!(
        decoded.body == object,
        "decoded GET differs from the PUT body"
    );
    let degraded_read = degraded_client.send("GET", "/photos/degraded", &[], b"");
    assert!(degraded_read.body == degraded_object);
    // The failures show in the degraded gateway's metrics: one failed piece write per stripe of
    // the PUT (every stripe places a piece on every node, and node 1 refuses connections), and
    // exactly one unusable piece per degraded stripe read.
    let admin = degraded_gateway.admin_address().expect("admin listener");
    let metrics = ureq::get(&format!("http://{admin}/metrics"))
        .call()
        .expect("scrape")
        .into_string()
        .unwrap();
    let metric = |series: &str| -> u64 {
        metrics
            .lines()
            .find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or_else(|| panic!("{series} missing:\n{metrics}"))
    };
    let stripes = degraded_object.len().div_ceil(4 * 256 * 1024) as u64;
    assert_eq!(metric("cairn_gateway_shard_write_errors_total"), stripes);
    let degraded_stripes = metric("cairn_gateway_degraded_stripe_reads_total");
    assert!(degraded_stripes > 0, "{metrics}");
    assert_eq!(
        metric("cairn_gateway_shard_read_errors_total{reason=\"unavailable\"}"),
        degraded_stripes
    );
    assert_eq!(
        metric("cairn_gateway_requests_total{operation=\"PutObject\",status_class=\"2xx\"}"),
        1
    );

    // Two nodes out: a stripe would keep only k = 4 pieces, fewer than the k + 1 a commit needs.
    // The PUT fails with 503, stores nothing readable, and the four pieces it did store are
    // deleted (they are in no shard map) before the record is aborted.
    let mut two_down = cluster.storage_nodes.clone();
    two_down[0].address = free_local_address();
    two_down[1].address = free_local_address();
    let mut two_down_config = gateway_config(&cluster, two_down);
    two_down_config.admin_listen = Some("127.0.0.1:0".parse().unwrap());
    let two_down_gateway =
        start_gateway(two_down_config).expect("start a gateway missing two nodes");
    let refused = Client::new(two_down_gateway.local_address()).send(
        "PUT",
        "/photos/unwritable",
        &[],
        &random_bytes(100_000),
    );
    assert_eq!(refused.status, 503, "{}", refused.text());
    assert_eq!(
        client.send("GET", "/photos/unwritable", &[], b"").status,
        404
    );
    let admin = two_down_gateway.admin_address().expect("admin listener");
    let metrics = ureq::get(&format!("http://{admin}/metrics"))
        .call()
        .expect("scrape")
        .into_string()
        .unwrap();
    let metric = |series: &str| -> u64 {
        metrics
            .lines()
            .find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or_else(|| panic!("{series} missing:\n{metrics}"))
    };
    assert_eq!(metric("cairn_gateway_abandoned_pieces_deleted_total"), 4);
    assert_eq!(
        metric("cairn_gateway_abandoned_piece_delete_errors_total"),
        0
    );
    assert_eq!(metric("cairn_gateway_aborted_writes_total"), 1);

    // Delete: the bucket is not empty until every object is gone.
    let not_empty = client.send("DELETE", "/photos", &[], b"");
    assert_eq!(not_empty.status, 409, "{}", not_empty.text());
    assert!(not_empty.text().contains("BucketNotEmpty"));
    assert_eq!(
        client
            .send("DELETE", "/photos/dir/cat.bin", &[], b"")
            .status,
        204
    );
    let batch = client.send(
        "POST",
        "/photos?delete",
        &[],
        b"<Delete><Object><Key>empty</Key></Object><Object><Key>degraded</Key></Object><Object><Key>absent</Key></Object></Delete>",
    );
    assert_eq!(batch.status, 200, "{}", batch.text());
    let result = batch.text();
    for key in ["empty", "degraded", "absent"] {
        assert!(result.contains(&format!("<Key>{key}</Key>")), "{result}");
    }
    assert!(!result.contains("<Error>"), "{result}");
    assert_eq!(client.send("GET", "/photos/degraded", &[], b"").status, 404);
    let gone = client.send("GET", "/photos/dir/cat.bin", &[], b"");
    assert_eq!(gone.status, 404);
    assert!(
        gone.text().contains("<Code>NoSuchKey</Code>"),
        "{}",
        gone.text()
    );
    assert_eq!(
        client
            .send("DELETE", "/photos/never-existed", &[], b"")
            .status,
        204
    );
    assert_eq!(client.send("DELETE", "/photos", &[], b"").status, 204);
    let deleted = client.send("GET", "/photos?list-type=2", &[], b"");
    assert_eq!(deleted.status, 404);
    assert!(
        deleted.text().contains("NoSuchBucket"),
        "{}",
        deleted.text()
    );
}

/// Sends a signed PUT over a raw socket with `Expect: 100-continue` and checks that the interim
/// response arrives before the body is sent and the final one after.
fn expect_continue_put(client: &Client, path: &str, body: &[u8]) {
    use std::io::{Read, Write};
    let length = body.len().to_string();
    let (_, headers) = client.sign(
        "PUT",
        path,
        &[
            ("content-length", length.as_str()),
            ("expect", "100-continue"),
        ],
        SignableBody::Bytes(body),
        false,
    );
    let mut stream = TcpStream::connect(client.gateway).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut head = format!("PUT {path} HTTP/1.1\r\nhost: {}\r\n", client.gateway);
    for (name, value) in &headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).unwrap();
    let mut interim = [0u8; 25];
    stream.read_exact(&mut interim).unwrap();
    assert_eq!(&interim, b"HTTP/1.1 100 Continue\r\n\r\n");
    stream.write_all(body).unwrap();
    let mut status_line = [0u8; 12];
    stream.read_exact(&mut status_line).unwrap();
    assert_eq!(&status_line, b"HTTP/1.1 200");
}

/// The text of the first `<name>` element of an XML document.
fn element(document: &str, name: &str) -> String {
    let open = format!("<{name}>");
    let start = document
        .find(&open)
        .unwrap_or_else(|| panic!("no <{name}> in {document}"))
        + open.len();
    let end = document[start..].find('<').expect("element closes") + start;
    document[start..end].replace("&quot;", "\"")
}
