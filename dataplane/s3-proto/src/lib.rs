//! Cairn's sans-I/O S3 protocol core: everything the regional gateway needs to understand and
//! answer S3 requests, as pure functions and push-style state machines with no runtime, sockets
//! or clocks of their own (the caller passes the current time in).
//!
//! - [`endpoint`]: request head → one [`Endpoint`] variant (path and virtual-host style).
//! - [`error`]: [`S3Error`], its S3 code and HTTP status (mapped only there), and error XML.
//! - [`xml`]: response documents and bounded request-body parsers.
//! - [`sigv4`]: Authorization-header and presigned verification; [`chunked`]: aws-chunked bodies
//!   (signed chunk chains and trailing checksums).
//! - [`body`]: streaming body verification (ETag MD5, Content-MD5, payload SHA-256, checksums).
//! - [`headers`]: size limits, user metadata, copy directives, checksum headers.
//! - [`listing`]: prefix/delimiter/page logic of listings and opaque continuation tokens.
//! - [`multipart`]: CompleteMultipartUpload validation, part order, ETag and size.
//! - [`checksum`], [`range`], [`conditions`], [`time`]: pure helpers for bodies, ranges,
//!   conditional requests and dates.
//!
//! The gateway's PUT path, in order (every step is a plain call; the shell owns the sockets):
//!
//! ```
//! use cairn_s3_proto::body::{BodyExpectations, BodyVerifier};
//! use cairn_s3_proto::checksum::{ChecksumAlgorithm, checksum_base64};
//! use cairn_s3_proto::chunked::{AwsChunkedDecoder, ChunkedConfig};
//! use cairn_s3_proto::sigv4::{Authentication, SignedRequest, VerifyConfig, verify_request};
//! use cairn_s3_proto::{Endpoint, RequestHead, Router, S3Error};
//!
//! // 1. Route.
//! let router = Router::new(["s3.localhost"]);
//! let head = RequestHead {
//!     method: "PUT",
//!     raw_path: "/a%20key",
//!     host: Some("photos.s3.localhost:9000"),
//!     ..RequestHead::default()
//! };
//! let endpoint = router.parse(&head)?;
//! assert_eq!(endpoint, Endpoint::PutObject { bucket: "photos".into(), key: "a key".into() });
//!
//! // 2. Authenticate (here: no signature at all, so anonymous; the gateway decides).
//! let headers = [("host", "photos.s3.localhost:9000")];
//! let request = SignedRequest { method: "PUT", raw_path: "/a%20key", raw_query: "", headers: &headers };
//! let secrets = |_access_key_id: &str| -> Option<String> { None };
//! let now_unix_seconds = 1_764_000_000;
//! let authentication = verify_request(&request, &secrets, &VerifyConfig::default(), now_unix_seconds)?;
//! assert_eq!(authentication, Authentication::Anonymous);
//!
//! // 3. Decode an aws-chunked body (built from `ChunkedConfig::from_request` for signed requests)
//! //    and verify it while it streams.
//! let checksum = checksum_base64(ChecksumAlgorithm::Crc32, b"hello");
//! let wire_body = format!("5\r\nhello\r\n0\r\nx-amz-checksum-crc32:{checksum}\r\n\r\n");
//! let mut decoder = AwsChunkedDecoder::new(ChunkedConfig {
//!     signing: None,
//!     has_trailer: true,
//!     trailing_checksum: Some(ChecksumAlgorithm::Crc32),
//!     decoded_length_bytes: Some(5),
//! });
//! let mut verifier = BodyVerifier::new(BodyExpectations { length_bytes: Some(5), ..Default::default() });
//! let mut decoded = Vec::new();
//! for piece in wire_body.as_bytes().chunks(4) {
//!     decoder.push(piece, &mut decoded)?;
//!     verifier.update(&decoded)?; // …and hand the same bytes to the erasure coder.
//!     decoded.clear();
//! }
//! let trailer = decoder.finish()?; // only now may the object be committed
//! let digest = verifier.finish()?;
//! assert_eq!(trailer.trailing_checksum, Some((ChecksumAlgorithm::Crc32, checksum)));
//! assert_eq!(digest.etag, "\"5d41402abc4b2a76b9719d911017c592\"");
//!
//! // 4. Errors become status + XML in one place.
//! let error = S3Error::NoSuchBucket;
//! assert_eq!((error.code(), error.http_status()), ("NoSuchBucket", 404));
//! let _body = error.to_xml("/photos/a%20key", "request-id-1");
//! # Ok::<(), S3Error>(())
//! ```

pub mod acl;
pub mod body;
pub mod bucket_encryption;
pub mod checksum;
pub mod chunked;
pub mod conditions;
pub mod cors;
pub mod encoding;
pub mod endpoint;
pub mod error;
pub mod headers;
pub mod lifecycle;
pub mod listing;
pub mod md5_lanes;
pub mod multipart;
pub mod object_lock;
pub mod policy;
pub mod post_form;
pub mod post_policy;
pub mod range;
pub mod replication;
pub mod sigv4;
pub mod tagging;
pub mod time;
pub mod xml;

pub use endpoint::{Endpoint, RequestHead, Router};
pub use error::S3Error;
