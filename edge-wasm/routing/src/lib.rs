//! Routing logic of the edge PoP: a pure function from one request (method, host, path, query,
//! selected headers, client region hint), the edge's policy and a bucket → region table to one
//! [`Decision`]: forward to a region's endpoint (with a cache policy), reject with an S3 error, or
//! ask the host for the region of a bucket it has not supplied yet.
//!
//! Model: sans-I/O and `no_std` (only `core` and `alloc`). The same code is compiled natively (unit
//! tests, and the host uses [`abi`] to build and read records) and to `wasm32-unknown-unknown`
//! (edge-wasm/build-wasm.sh), where `guest` exports the ABI documented in edge-wasm/README.md.
//! The host calls [`route`] at most twice per request: once with the buckets it already knows,
//! and, on [`Decision::NeedBucketRegion`], once more with that bucket's entry added.
//!
//! Invariants: [`route`] is total (every input gives a decision, never a panic); a decision never
//! names a region absent from the request's region table; only a GET of a whole object without
//! query, range or conditions is cacheable; a bucket the table marks as non-existent is never
//! cacheable and goes to the client's region (or the default), which answers for it; so does
//! every CreateBucket (a PUT of a bucket without query), whatever the table says.

#![no_std]

extern crate alloc;

pub mod abi;
#[cfg(target_arch = "wasm32")]
mod guest;

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

/// Version of the host–guest ABI (exports and record layouts). Bumped on any incompatible change;
/// the host refuses a module whose `cairn_abi_version()` differs.
pub const ABI_VERSION: u32 = 1;

/// Everything the guest sees of one request.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RequestRecord {
    /// Upper-case HTTP method.
    pub method: String,
    /// The Host header as sent (may carry a port).
    pub host: String,
    /// The raw (still percent-encoded) path, starting with `/`.
    pub path: String,
    /// The raw query string without `?`.
    pub query: String,
    /// The region the client asked for (`x-cairn-region-hint`) or the PoP's own region; may be
    /// empty.
    pub client_region_hint: String,
    /// Selected headers with lower-case names (the host passes `range`, `cache-control`,
    /// `if-match`, `if-none-match`, `if-modified-since`, `if-unmodified-since`).
    pub headers: Vec<(String, String)>,
    pub policy: Policy,
    pub regions: Vec<RegionEntry>,
    pub buckets: Vec<BucketEntry>,
}

/// The edge's configuration that shapes decisions.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Policy {
    /// Lower-case base domains for virtual-host addressing (`<bucket>.<suffix>`).
    pub virtual_host_suffixes: Vec<String>,
    /// Where requests without a known bucket region go when the hint names no known region.
    pub default_region: String,
    /// How long a cached object may be served without revalidation (the staleness bound).
    pub cache_ttl_ms: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegionEntry {
    pub name: String,
    /// Opaque to the guest: the host's name for the region's gateway pool.
    pub endpoint: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BucketEntry {
    pub bucket: String,
    /// `None`: the bucket service says the bucket does not exist.
    pub region: Option<String>,
}

/// What to do with a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Forward(Forward),
    Reject(Reject),
    /// Call again with this bucket in the table.
    NeedBucketRegion {
        bucket: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Forward {
    pub region: String,
    pub endpoint: String,
    /// The bucket the request addresses (decoded), if any.
    pub bucket: Option<String>,
    /// The object key (percent-decoded), empty for bucket-level and service requests.
    pub key: String,
    /// Whether the host may answer from (and fill) its hot-object cache.
    pub cacheable: bool,
    /// How long a cached copy may be served without revalidation; 0 = revalidate every time.
    pub cache_ttl_ms: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reject {
    pub reason: RejectReason,
    pub message: String,
}

/// Why the guest refuses a request. The host maps each reason to one S3 error (the S3 codes and
/// statuses themselves live in the gateway's error module, not here).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RejectReason {
    /// Bucket name from the host or path is not a valid S3 bucket name.
    InvalidBucketName,
    /// A method S3 does not define.
    MethodNotAllowed,
    /// The path is not absolute or its percent-encoding is broken.
    InvalidUri,
    /// The bucket's region (or every fallback) is not in the region table.
    RegionUnavailable,
    /// The request record could not be decoded (a host/guest mismatch).
    MalformedRecord,
}

impl RejectReason {
    pub const ALL: [RejectReason; 5] = [
        RejectReason::InvalidBucketName,
        RejectReason::MethodNotAllowed,
        RejectReason::InvalidUri,
        RejectReason::RegionUnavailable,
        RejectReason::MalformedRecord,
    ];

    /// Wire code in the decision record.
    pub fn code(self) -> u16 {
        match self {
            RejectReason::InvalidBucketName => 1,
            RejectReason::MethodNotAllowed => 2,
            RejectReason::InvalidUri => 3,
            RejectReason::RegionUnavailable => 4,
            RejectReason::MalformedRecord => 5,
        }
    }

    pub fn from_code(code: u16) -> Option<RejectReason> {
        RejectReason::ALL
            .into_iter()
            .find(|reason| reason.code() == code)
    }
}

fn reject(reason: RejectReason, message: impl Into<String>) -> Decision {
    Decision::Reject(Reject {
        reason,
        message: message.into(),
    })
}

const METHODS: [&str; 5] = ["GET", "HEAD", "PUT", "POST", "DELETE"];

/// Headers whose presence makes a GET uncacheable: the answer depends on more than bucket/key.
const UNCACHEABLE_WHEN_PRESENT: [&str; 5] = [
    "range",
    "if-match",
    "if-none-match",
    "if-modified-since",
    "if-unmodified-since",
];

/// Decides where one request goes.
pub fn route(request: &RequestRecord) -> Decision {
    let method = request.method.as_str();
    if !METHODS.contains(&method) {
        return reject(
            RejectReason::MethodNotAllowed,
            format!("method {method} is not an S3 method"),
        );
    }
    let Some(raw_path) = request.path.strip_prefix('/') else {
        return reject(RejectReason::InvalidUri, "the path must start with '/'");
    };
    let (bucket, raw_key) = match virtual_host_bucket(&request.host, &request.policy) {
        Some(bucket) => (Some(bucket), raw_path),
        None => {
            let (raw_bucket, raw_key) = raw_path.split_once('/').unwrap_or((raw_path, ""));
            if raw_bucket.is_empty() {
                (None, "")
            } else {
                match percent_decode(raw_bucket) {
                    Some(bucket) => (Some(bucket), raw_key),
                    None => return reject(RejectReason::InvalidUri, "bad percent-encoding"),
                }
            }
        }
    };
    let Some(key) = percent_decode(raw_key) else {
        return reject(RejectReason::InvalidUri, "bad percent-encoding");
    };
    let Some(bucket) = bucket else {
        // Service-level requests (ListBuckets) go to the client's region.
        return match fallback_region(request) {
            Some(region) => forward(region, None, key, false, 0),
            None => no_region(request, "no region is configured"),
        };
    };
    if !is_valid_bucket_name(&bucket) {
        return reject(
            RejectReason::InvalidBucketName,
            format!("{bucket:?} is not a valid bucket name"),
        );
    }
    // CreateBucket goes to the region the client asks for (its hint: the region it signed the
    // request for), whatever the table says: the global bucket service answers for names taken
    // anywhere, and only that region accepts the request's signature and LocationConstraint.
    if method == "PUT" && key.is_empty() && request.query.is_empty() {
        return match fallback_region(request) {
            Some(region) => forward(region, Some(bucket), key, false, 0),
            None => no_region(request, "no region is configured"),
        };
    }
    let Some(entry) = request.buckets.iter().find(|entry| entry.bucket == bucket) else {
        return Decision::NeedBucketRegion { bucket };
    };
    match &entry.region {
        Some(region_name) => match request
            .regions
            .iter()
            .find(|region| &region.name == region_name)
        {
            Some(region) => {
                let (cacheable, cache_ttl_ms) = cache_policy(request, &key);
                forward(region, Some(bucket), key, cacheable, cache_ttl_ms)
            }
            None => no_region(
                request,
                &format!(
                    "bucket {bucket:?} lives in region {region_name:?}, which this edge does not serve"
                ),
            ),
        },
        // The bucket does not exist: its would-be region answers (NoSuchBucket, or creates it).
        None => match fallback_region(request) {
            Some(region) => forward(region, Some(bucket), key, false, 0),
            None => no_region(request, "no region is configured"),
        },
    }
}

fn forward(
    region: &RegionEntry,
    bucket: Option<String>,
    key: String,
    cacheable: bool,
    cache_ttl_ms: u32,
) -> Decision {
    Decision::Forward(Forward {
        region: region.name.clone(),
        endpoint: region.endpoint.clone(),
        bucket,
        key,
        cacheable,
        cache_ttl_ms,
    })
}

fn no_region(_request: &RequestRecord, message: &str) -> Decision {
    reject(RejectReason::RegionUnavailable, message)
}

/// The hint's region when the table has it, else the default region, else none.
fn fallback_region(request: &RequestRecord) -> Option<&RegionEntry> {
    let find = |name: &str| {
        request
            .regions
            .iter()
            .find(|region| !name.is_empty() && region.name == name)
    };
    find(&request.client_region_hint).or_else(|| find(&request.policy.default_region))
}

fn header<'a>(request: &'a RequestRecord, name: &str) -> Option<&'a str> {
    request
        .headers
        .iter()
        .find(|(header_name, _)| header_name.eq_ignore_ascii_case(name))
        .map(|(_, value)| value.as_str())
}

/// (cacheable, ttl): only a plain GET of a whole object; `Cache-Control: no-store` opts out,
/// `no-cache` / `max-age=0` force revalidation.
fn cache_policy(request: &RequestRecord, key: &str) -> (bool, u32) {
    if request.method != "GET"
        || key.is_empty()
        || !request.query.is_empty()
        || UNCACHEABLE_WHEN_PRESENT
            .iter()
            .any(|name| header(request, name).is_some())
    {
        return (false, 0);
    }
    let cache_control = header(request, "cache-control")
        .unwrap_or("")
        .to_ascii_lowercase();
    let directives: Vec<&str> = cache_control.split(',').map(str::trim).collect();
    if directives.contains(&"no-store") {
        return (false, 0);
    }
    if directives.contains(&"no-cache") || directives.contains(&"max-age=0") {
        return (true, 0);
    }
    (true, request.policy.cache_ttl_ms)
}

/// `<bucket>.<suffix>` (port ignored) for one of the policy's suffixes.
fn virtual_host_bucket(host: &str, policy: &Policy) -> Option<String> {
    let host = host.trim().to_ascii_lowercase();
    if host.starts_with('[') {
        return None;
    }
    let name = host
        .rsplit_once(':')
        .map_or(host.as_str(), |(name, _)| name);
    let name = name.trim_end_matches('.');
    policy.virtual_host_suffixes.iter().find_map(|suffix| {
        let suffix = suffix.trim_end_matches('.');
        name.strip_suffix(suffix)
            .and_then(|rest| rest.strip_suffix('.'))
            .filter(|bucket| !bucket.is_empty())
            .map(ToString::to_string)
    })
}

/// S3's bucket naming rules (the same as the gateway's `validate_bucket_name`).
pub fn is_valid_bucket_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    (3..=63).contains(&bytes.len())
        && bytes.iter().all(|byte| {
            byte.is_ascii_lowercase() || byte.is_ascii_digit() || *byte == b'.' || *byte == b'-'
        })
        && bytes[0].is_ascii_alphanumeric()
        && bytes[bytes.len() - 1].is_ascii_alphanumeric()
        && !name.contains("..")
        && !name.contains(".-")
        && !name.contains("-.")
        && !looks_like_ipv4(name)
        && !["xn--", "sthree-", "amzn-s3-demo-"]
            .iter()
            .any(|prefix| name.starts_with(prefix))
        && !["-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3"]
            .iter()
            .any(|suffix| name.ends_with(suffix))
}

fn looks_like_ipv4(name: &str) -> bool {
    let parts: Vec<&str> = name.split('.').collect();
    parts.len() == 4
        && parts.iter().all(|part| {
            !part.is_empty() && part.len() <= 3 && part.bytes().all(|byte| byte.is_ascii_digit())
        })
}

/// `%XX` decoding to UTF-8; `None` for a broken escape or non-UTF-8 result.
fn percent_decode(raw: &str) -> Option<String> {
    if !raw.contains('%') {
        return Some(raw.to_string());
    }
    let bytes = raw.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        if bytes[index] == b'%' {
            let high = hex_value(*bytes.get(index + 1)?)?;
            let low = hex_value(*bytes.get(index + 2)?)?;
            decoded.push(high << 4 | low);
            index += 3;
        } else {
            decoded.push(bytes[index]);
            index += 1;
        }
    }
    String::from_utf8(decoded).ok()
}

fn hex_value(byte: u8) -> Option<u8> {
    match byte {
        b'0'..=b'9' => Some(byte - b'0'),
        b'a'..=b'f' => Some(byte - b'a' + 10),
        b'A'..=b'F' => Some(byte - b'A' + 10),
        _ => None,
    }
}

/// The guest's whole job on one request record: decode, route, encode. A record that does not
/// decode becomes a `MalformedRecord` rejection (never a trap), so the host always gets a record.
pub fn route_record(request_bytes: &[u8]) -> Vec<u8> {
    let decision = match abi::decode_request(request_bytes) {
        Ok(request) => route(&request),
        Err(error) => reject(RejectReason::MalformedRecord, format!("{error}")),
    };
    abi::encode_decision(&decision)
}

#[cfg(test)]
mod tests;
