//! The host–guest records: one request record (host → guest) and one decision record (guest →
//! host), both little-endian and versioned. The byte layout is documented in edge-wasm/README.md;
//! this module is its only implementation, used by the guest (decode request, encode decision) and
//! by the host (encode request, decode decision).
//!
//! Layout primitives: `u8`, `u16`, `u32` little-endian; `str` = `u32` byte length + UTF-8 bytes;
//! `list<T>` = `u32` count + items. Every record starts with the `u32` ABI version
//! ([`crate::ABI_VERSION`]); a reader refuses any other version and any trailing byte.

use alloc::string::String;
use alloc::vec::Vec;

use crate::{
    ABI_VERSION, BucketEntry, Decision, Forward, Policy, RegionEntry, Reject, RejectReason,
    RequestRecord,
};

/// Why a record could not be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AbiError {
    /// The record ended inside a field.
    Truncated,
    /// The record's version is not [`ABI_VERSION`].
    UnsupportedVersion(u32),
    /// A string is not UTF-8.
    InvalidUtf8,
    /// An enum tag this version does not define.
    UnknownTag(u8),
    /// Bytes left after the last field.
    TrailingBytes,
}

impl core::fmt::Display for AbiError {
    fn fmt(&self, formatter: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            AbiError::Truncated => formatter.write_str("record truncated"),
            AbiError::UnsupportedVersion(version) => {
                write!(formatter, "unsupported ABI version {version}")
            }
            AbiError::InvalidUtf8 => formatter.write_str("string is not UTF-8"),
            AbiError::UnknownTag(tag) => write!(formatter, "unknown tag {tag}"),
            AbiError::TrailingBytes => formatter.write_str("trailing bytes after the record"),
        }
    }
}

struct Writer {
    bytes: Vec<u8>,
}

impl Writer {
    fn new() -> Writer {
        let mut writer = Writer { bytes: Vec::new() };
        writer.u32(ABI_VERSION);
        writer
    }

    fn u8(&mut self, value: u8) {
        self.bytes.push(value);
    }

    fn u16(&mut self, value: u16) {
        self.bytes.extend_from_slice(&value.to_le_bytes());
    }

    fn u32(&mut self, value: u32) {
        self.bytes.extend_from_slice(&value.to_le_bytes());
    }

    fn length(&mut self, length: usize) {
        // Records are built from HTTP heads and small tables; a length past u32 cannot occur
        // (and would not fit in wasm32 memory), so saturating keeps the writer total.
        self.u32(u32::try_from(length).unwrap_or(u32::MAX));
    }

    fn str(&mut self, value: &str) {
        self.length(value.len());
        self.bytes.extend_from_slice(value.as_bytes());
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn new(bytes: &'a [u8]) -> Result<Reader<'a>, AbiError> {
        let mut reader = Reader { bytes };
        let version = reader.u32()?;
        if version != ABI_VERSION {
            return Err(AbiError::UnsupportedVersion(version));
        }
        Ok(reader)
    }

    fn take(&mut self, length: usize) -> Result<&'a [u8], AbiError> {
        if self.bytes.len() < length {
            return Err(AbiError::Truncated);
        }
        let (head, rest) = self.bytes.split_at(length);
        self.bytes = rest;
        Ok(head)
    }

    fn u8(&mut self) -> Result<u8, AbiError> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16, AbiError> {
        let bytes = self.take(2)?;
        Ok(u16::from_le_bytes([bytes[0], bytes[1]]))
    }

    fn u32(&mut self) -> Result<u32, AbiError> {
        let bytes = self.take(4)?;
        Ok(u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
    }

    fn str(&mut self) -> Result<String, AbiError> {
        let length = self.u32()? as usize;
        let bytes = self.take(length)?;
        core::str::from_utf8(bytes)
            .map(String::from)
            .map_err(|_| AbiError::InvalidUtf8)
    }

    /// A list count, checked against the bytes left so a forged count cannot make the reader
    /// reserve huge vectors (every item takes at least `min_item_bytes`).
    fn count(&mut self, min_item_bytes: usize) -> Result<usize, AbiError> {
        let count = self.u32()? as usize;
        if count.saturating_mul(min_item_bytes) > self.bytes.len() {
            return Err(AbiError::Truncated);
        }
        Ok(count)
    }

    fn finish(self) -> Result<(), AbiError> {
        if self.bytes.is_empty() {
            Ok(())
        } else {
            Err(AbiError::TrailingBytes)
        }
    }
}

/// Request record (version 1), in field order: method, host, path, query, client_region_hint,
/// headers (`list<(str name, str value)>`), policy (virtual_host_suffixes `list<str>`,
/// default_region `str`, cache_ttl_ms `u32`), regions (`list<(str name, str endpoint)>`),
/// buckets (`list<(str bucket, u8 known, str region)>`; `known` 0 = the bucket does not exist and
/// `region` is empty).
pub fn encode_request(request: &RequestRecord) -> Vec<u8> {
    let mut writer = Writer::new();
    writer.str(&request.method);
    writer.str(&request.host);
    writer.str(&request.path);
    writer.str(&request.query);
    writer.str(&request.client_region_hint);
    writer.length(request.headers.len());
    for (name, value) in &request.headers {
        writer.str(name);
        writer.str(value);
    }
    writer.length(request.policy.virtual_host_suffixes.len());
    for suffix in &request.policy.virtual_host_suffixes {
        writer.str(suffix);
    }
    writer.str(&request.policy.default_region);
    writer.u32(request.policy.cache_ttl_ms);
    writer.length(request.regions.len());
    for region in &request.regions {
        writer.str(&region.name);
        writer.str(&region.endpoint);
    }
    writer.length(request.buckets.len());
    for entry in &request.buckets {
        writer.str(&entry.bucket);
        match &entry.region {
            Some(region) => {
                writer.u8(1);
                writer.str(region);
            }
            None => {
                writer.u8(0);
                writer.str("");
            }
        }
    }
    writer.bytes
}

pub fn decode_request(bytes: &[u8]) -> Result<RequestRecord, AbiError> {
    let mut reader = Reader::new(bytes)?;
    let method = reader.str()?;
    let host = reader.str()?;
    let path = reader.str()?;
    let query = reader.str()?;
    let client_region_hint = reader.str()?;
    let header_count = reader.count(8)?;
    let mut headers = Vec::with_capacity(header_count);
    for _ in 0..header_count {
        let name = reader.str()?;
        let value = reader.str()?;
        headers.push((name, value));
    }
    let suffix_count = reader.count(4)?;
    let mut virtual_host_suffixes = Vec::with_capacity(suffix_count);
    for _ in 0..suffix_count {
        virtual_host_suffixes.push(reader.str()?);
    }
    let default_region = reader.str()?;
    let cache_ttl_ms = reader.u32()?;
    let region_count = reader.count(8)?;
    let mut regions = Vec::with_capacity(region_count);
    for _ in 0..region_count {
        let name = reader.str()?;
        let endpoint = reader.str()?;
        regions.push(RegionEntry { name, endpoint });
    }
    let bucket_count = reader.count(9)?;
    let mut buckets = Vec::with_capacity(bucket_count);
    for _ in 0..bucket_count {
        let bucket = reader.str()?;
        let known = reader.u8()?;
        let region = reader.str()?;
        let region = match known {
            0 => None,
            1 => Some(region),
            tag => return Err(AbiError::UnknownTag(tag)),
        };
        buckets.push(BucketEntry { bucket, region });
    }
    reader.finish()?;
    Ok(RequestRecord {
        method,
        host,
        path,
        query,
        client_region_hint,
        headers,
        policy: Policy {
            virtual_host_suffixes,
            default_region,
            cache_ttl_ms,
        },
        regions,
        buckets,
    })
}

/// Decision record (version 1): a `u8` kind, then
/// - 0 Forward: region `str`, endpoint `str`, has_bucket `u8`, bucket `str`, key `str`,
///   cacheable `u8`, cache_ttl_ms `u32`;
/// - 1 Reject: reason `u16` ([`RejectReason`] code), message `str`;
/// - 2 NeedBucketRegion: bucket `str`.
pub fn encode_decision(decision: &Decision) -> Vec<u8> {
    let mut writer = Writer::new();
    match decision {
        Decision::Forward(forward) => {
            writer.u8(0);
            writer.str(&forward.region);
            writer.str(&forward.endpoint);
            match &forward.bucket {
                Some(bucket) => {
                    writer.u8(1);
                    writer.str(bucket);
                }
                None => {
                    writer.u8(0);
                    writer.str("");
                }
            }
            writer.str(&forward.key);
            writer.u8(u8::from(forward.cacheable));
            writer.u32(forward.cache_ttl_ms);
        }
        Decision::Reject(reject) => {
            writer.u8(1);
            writer.u16(reject.reason.code());
            writer.str(&reject.message);
        }
        Decision::NeedBucketRegion { bucket } => {
            writer.u8(2);
            writer.str(bucket);
        }
    }
    writer.bytes
}

pub fn decode_decision(bytes: &[u8]) -> Result<Decision, AbiError> {
    let mut reader = Reader::new(bytes)?;
    let decision = match reader.u8()? {
        0 => {
            let region = reader.str()?;
            let endpoint = reader.str()?;
            let has_bucket = reader.u8()?;
            let bucket = reader.str()?;
            let bucket = match has_bucket {
                0 => None,
                1 => Some(bucket),
                tag => return Err(AbiError::UnknownTag(tag)),
            };
            let key = reader.str()?;
            let cacheable = match reader.u8()? {
                0 => false,
                1 => true,
                tag => return Err(AbiError::UnknownTag(tag)),
            };
            let cache_ttl_ms = reader.u32()?;
            Decision::Forward(Forward {
                region,
                endpoint,
                bucket,
                key,
                cacheable,
                cache_ttl_ms,
            })
        }
        1 => {
            let code = reader.u16()?;
            let reason = RejectReason::from_code(code)
                .ok_or(AbiError::UnknownTag(u8::try_from(code).unwrap_or(u8::MAX)))?;
            let message = reader.str()?;
            Decision::Reject(Reject { reason, message })
        }
        2 => Decision::NeedBucketRegion {
            bucket: reader.str()?,
        },
        tag => return Err(AbiError::UnknownTag(tag)),
    };
    reader.finish()?;
    Ok(decision)
}
