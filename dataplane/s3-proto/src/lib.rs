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
//! - [`checksum`], [`range`], [`conditions`], [`time`]: pure helpers for bodies, ranges,
//!   conditional requests and dates.

pub mod body;
pub mod checksum;
pub mod chunked;
pub mod conditions;
pub mod encoding;
pub mod endpoint;
pub mod error;
pub mod headers;
pub mod range;
pub mod sigv4;
pub mod time;
pub mod xml;

pub use endpoint::{Endpoint, RequestHead, Router};
pub use error::S3Error;
