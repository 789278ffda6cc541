//! Request-header rules of the core operations that are pure functions of the headers: size
//! limits, user metadata, the CopyObject metadata directive and copy-source conditions, and the
//! `x-amz-checksum-*` a client sent or asked for.
//!
//! Model: headers are `(name, value)` pairs as received (any case); a name may repeat. Limits are
//! S3's: a single PUT (or part) is at most 5 GiB, every part but the last at least 5 MiB, at most
//! 10,000 parts, user metadata at most 2 KiB (names and values in UTF-8 bytes).

use crate::S3Error;
use crate::checksum::ChecksumAlgorithm;
use crate::conditions::ConditionalHeaders;

pub const SINGLE_PUT_MAX_BYTES: u64 = 5 * 1024 * 1024 * 1024;
pub const PART_MAX_BYTES: u64 = 5 * 1024 * 1024 * 1024;
pub const PART_MIN_BYTES: u64 = 5 * 1024 * 1024;
pub const USER_METADATA_MAX_BYTES: usize = 2 * 1024;
const USER_METADATA_PREFIX: &str = "x-amz-meta-";

/// The first value of a header, by case-insensitive name.
pub fn header<'a>(headers: &[(&'a str, &'a str)], lowercase_name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(lowercase_name))
        .map(|(_, value)| *value)
}

/// Checks the declared length of a PutObject or UploadPart body. S3 requires `Content-Length`
/// (chunked transfer encoding without it is refused with 411) and caps one body at 5 GiB.
/// For aws-chunked bodies pass `x-amz-decoded-content-length`.
pub fn check_upload_length(declared_length_bytes: Option<u64>) -> Result<u64, S3Error> {
    let length = declared_length_bytes.ok_or(S3Error::MissingContentLength)?;
    if length > SINGLE_PUT_MAX_BYTES {
        Err(S3Error::EntityTooLarge)
    } else {
        Ok(length)
    }
}

/// Parses a `Content-Length`-style value.
pub fn parse_length(value: Option<&str>) -> Result<Option<u64>, S3Error> {
    match value {
        None => Ok(None),
        Some(text) => text.trim().parse().map(Some).map_err(|_| {
            S3Error::InvalidArgument("Content-Length is not a non-negative integer".to_string())
        }),
    }
}

/// CompleteMultipartUpload's size rule: every part except the last must be at least 5 MiB.
/// `part_sizes_bytes` is in part-number order.
pub fn check_part_sizes(part_sizes_bytes: &[u64]) -> Result<(), S3Error> {
    match part_sizes_bytes.split_last() {
        None => Err(S3Error::MalformedXml),
        Some((_, all_but_last)) if all_but_last.iter().any(|size| *size < PART_MIN_BYTES) => {
            Err(S3Error::EntityTooSmall)
        }
        Some(_) => Ok(()),
    }
}

/// The `x-amz-meta-*` headers, names lowercased without the prefix, in received order (a
/// repeated name is joined with `,` as HTTP allows). Over 2 KiB in total is `MetadataTooLarge`.
pub fn user_metadata(headers: &[(&str, &str)]) -> Result<Vec<(String, String)>, S3Error> {
    let mut metadata: Vec<(String, String)> = Vec::new();
    for (name, value) in headers {
        let lowercase = name.to_ascii_lowercase();
        let Some(suffix) = lowercase.strip_prefix(USER_METADATA_PREFIX) else {
            continue;
        };
        if suffix.is_empty() {
            return Err(S3Error::InvalidArgument(
                "User metadata names must not be empty".to_string(),
            ));
        }
        let value = value.trim();
        match metadata.iter_mut().find(|(existing, _)| existing == suffix) {
            Some((_, existing_value)) => {
                existing_value.push(',');
                existing_value.push_str(value);
            }
            None => metadata.push((suffix.to_string(), value.to_string())),
        }
    }
    let total_bytes: usize = metadata
        .iter()
        .map(|(name, value)| name.len() + value.len())
        .sum();
    if total_bytes > USER_METADATA_MAX_BYTES {
        return Err(S3Error::MetadataTooLarge);
    }
    Ok(metadata)
}

/// `x-amz-metadata-directive` of CopyObject.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetadataDirective {
    Copy,
    Replace,
}

pub fn metadata_directive(headers: &[(&str, &str)]) -> Result<MetadataDirective, S3Error> {
    match header(headers, "x-amz-metadata-directive").map(str::trim) {
        None => Ok(MetadataDirective::Copy),
        Some(value) if value.eq_ignore_ascii_case("COPY") => Ok(MetadataDirective::Copy),
        Some(value) if value.eq_ignore_ascii_case("REPLACE") => Ok(MetadataDirective::Replace),
        Some(_) => Err(S3Error::InvalidArgument(
            "Unknown metadata directive.".to_string(),
        )),
    }
}

/// S3 refuses a copy of an object onto itself that changes nothing.
pub fn check_copy_onto_itself(
    source_bucket: &str,
    source_key: &str,
    source_version_id: Option<&str>,
    destination_bucket: &str,
    destination_key: &str,
    directive: MetadataDirective,
) -> Result<(), S3Error> {
    if source_bucket == destination_bucket
        && source_key == destination_key
        && source_version_id.is_none()
        && directive == MetadataDirective::Copy
    {
        return Err(S3Error::InvalidRequest(
            "This copy request is illegal because it is trying to copy an object to itself without changing the object's metadata, storage class, website redirect location or encryption attributes.".to_string(),
        ));
    }
    Ok(())
}

/// The GET/HEAD conditional headers.
pub fn conditional_headers<'a>(headers: &[(&'a str, &'a str)]) -> ConditionalHeaders<'a> {
    ConditionalHeaders {
        if_match: header(headers, "if-match"),
        if_none_match: header(headers, "if-none-match"),
        if_modified_since: header(headers, "if-modified-since"),
        if_unmodified_since: header(headers, "if-unmodified-since"),
    }
}

/// The `x-amz-copy-source-if-*` headers, evaluated against the copy source like GET's (a
/// failure is 412 for copies; see [`crate::conditions::evaluate_conditions`] with
/// `is_get_or_head = false` semantics chosen by the caller).
pub fn copy_source_conditional_headers<'a>(
    headers: &[(&'a str, &'a str)],
) -> ConditionalHeaders<'a> {
    ConditionalHeaders {
        if_match: header(headers, "x-amz-copy-source-if-match"),
        if_none_match: header(headers, "x-amz-copy-source-if-none-match"),
        if_modified_since: header(headers, "x-amz-copy-source-if-modified-since"),
        if_unmodified_since: header(headers, "x-amz-copy-source-if-unmodified-since"),
    }
}

/// What the client said about `x-amz-checksum-*` for a non-chunked body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChecksumRequest {
    None,
    /// A value to verify against the body (and store).
    Provided {
        algorithm: ChecksumAlgorithm,
        value_base64: String,
    },
    /// `x-amz-checksum-algorithm` / `x-amz-sdk-checksum-algorithm` without a value: compute and
    /// store it (the value arrives in a trailer for aws-chunked bodies).
    Requested {
        algorithm: ChecksumAlgorithm,
    },
}

/// Reads the checksum headers. More than one `x-amz-checksum-*` value is `InvalidRequest`, as is
/// an algorithm name S3 does not know or a value that is not base64 of the right length.
pub fn checksum_request(headers: &[(&str, &str)]) -> Result<ChecksumRequest, S3Error> {
    let provided: Vec<(ChecksumAlgorithm, &str)> = headers
        .iter()
        .filter_map(|(name, value)| {
            ChecksumAlgorithm::from_header_name(name).map(|algorithm| (algorithm, *value))
        })
        .collect();
    let named = header(headers, "x-amz-sdk-checksum-algorithm")
        .or_else(|| header(headers, "x-amz-checksum-algorithm"))
        .map(|name| {
            ChecksumAlgorithm::from_name(name.trim()).ok_or_else(|| {
                S3Error::InvalidRequest(format!(
                    "Checksum algorithm provided is unsupported: {name}"
                ))
            })
        })
        .transpose()?;
    match provided.as_slice() {
        [] => Ok(named.map_or(ChecksumRequest::None, |algorithm| {
            ChecksumRequest::Requested { algorithm }
        })),
        [(algorithm, value)] => {
            if let Some(named) = named
                && named != *algorithm
            {
                return Err(S3Error::InvalidRequest(
                    "Value for x-amz-sdk-checksum-algorithm header is invalid.".to_string(),
                ));
            }
            algorithm.validate_wire_value(value)?;
            Ok(ChecksumRequest::Provided {
                algorithm: *algorithm,
                value_base64: value.trim().to_string(),
            })
        }
        _ => Err(S3Error::InvalidRequest(
            "Expecting a single x-amz-checksum- header".to_string(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upload_length_limits() {
        assert_eq!(
            check_upload_length(None),
            Err(S3Error::MissingContentLength)
        );
        assert_eq!(check_upload_length(Some(0)), Ok(0));
        assert_eq!(
            check_upload_length(Some(SINGLE_PUT_MAX_BYTES)),
            Ok(SINGLE_PUT_MAX_BYTES)
        );
        assert_eq!(
            check_upload_length(Some(SINGLE_PUT_MAX_BYTES + 1)),
            Err(S3Error::EntityTooLarge)
        );
        assert_eq!(parse_length(Some(" 12 ")), Ok(Some(12)));
        assert!(parse_length(Some("-1")).is_err());
        assert_eq!(
            check_part_sizes(&[PART_MIN_BYTES, PART_MIN_BYTES, 1]),
            Ok(())
        );
        assert_eq!(check_part_sizes(&[1]), Ok(()));
        assert_eq!(
            check_part_sizes(&[PART_MIN_BYTES - 1, 1]),
            Err(S3Error::EntityTooSmall)
        );
    }

    #[test]
    fn metadata() {
        let headers = [
            ("X-Amz-Meta-Color", " red "),
            ("x-amz-meta-color", "blue"),
            ("x-amz-meta-é", "ü"),
            ("other", "x"),
        ];
        assert_eq!(
            user_metadata(&headers),
            Ok(vec![
                ("color".to_string(), "red,blue".to_string()),
                ("é".to_string(), "ü".to_string())
            ])
        );
        let big = "v".repeat(USER_METADATA_MAX_BYTES);
        assert_eq!(
            user_metadata(&[("x-amz-meta-a", big.as_str())]),
            Err(S3Error::MetadataTooLarge)
        );
        assert_eq!(metadata_directive(&[]), Ok(MetadataDirective::Copy));
        assert_eq!(
            metadata_directive(&[("x-amz-metadata-directive", "REPLACE")]),
            Ok(MetadataDirective::Replace)
        );
        assert!(metadata_directive(&[("x-amz-metadata-directive", "MERGE")]).is_err());
        assert!(check_copy_onto_itself("b", "k", None, "b", "k", MetadataDirective::Copy).is_err());
        assert!(
            check_copy_onto_itself("b", "k", None, "b", "k", MetadataDirective::Replace).is_ok()
        );
        assert!(check_copy_onto_itself("b", "k", None, "b", "k2", MetadataDirective::Copy).is_ok());
    }

    #[test]
    fn checksum_requests() {
        assert_eq!(checksum_request(&[]), Ok(ChecksumRequest::None));
        assert_eq!(
            checksum_request(&[("x-amz-checksum-crc32", "i9aeUg==")]),
            Ok(ChecksumRequest::Provided {
                algorithm: ChecksumAlgorithm::Crc32,
                value_base64: "i9aeUg==".to_string()
            })
        );
        assert_eq!(
            checksum_request(&[("x-amz-sdk-checksum-algorithm", "crc64nvme")]),
            Ok(ChecksumRequest::Requested {
                algorithm: ChecksumAlgorithm::Crc64Nvme
            })
        );
        assert!(checksum_request(&[("x-amz-sdk-checksum-algorithm", "md4")]).is_err());
        assert!(
            checksum_request(&[
                ("x-amz-checksum-crc32", "i9aeUg=="),
                ("x-amz-checksum-crc32c", "crUfeA==")
            ])
            .is_err()
        );
        assert!(
            checksum_request(&[
                ("x-amz-checksum-crc32", "i9aeUg=="),
                ("x-amz-sdk-checksum-algorithm", "SHA1")
            ])
            .is_err()
        );
        assert!(checksum_request(&[("x-amz-checksum-sha256", "short")]).is_err());
    }

    #[test]
    fn conditional_header_extraction() {
        let headers = [
            ("If-Match", "\"a\""),
            ("x-amz-copy-source-if-none-match", "\"b\""),
        ];
        assert_eq!(conditional_headers(&headers).if_match, Some("\"a\""));
        assert_eq!(
            copy_source_conditional_headers(&headers).if_none_match,
            Some("\"b\"")
        );
        assert_eq!(copy_source_conditional_headers(&headers).if_match, None);
    }
}
