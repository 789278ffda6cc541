//! `Range` and `x-amz-copy-source-range` parsing.
//!
//! Model (RFC 9110 §14 as S3 applies it): only the `bytes` unit and a single range are served. A
//! header that does not parse, or that asks for several ranges, is ignored and the whole object is
//! returned (S3 does the same rather than failing the GET). A well-formed range that selects no
//! byte of the object is `InvalidRange` (416). The result is always clamped to the object, so
//! `first_byte <= last_byte_inclusive < object_size_bytes` holds for every returned range.

use crate::S3Error;

/// An inclusive byte range inside an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteRange {
    pub first_byte: u64,
    pub last_byte_inclusive: u64,
}

impl ByteRange {
    pub fn length_bytes(&self) -> u64 {
        self.last_byte_inclusive - self.first_byte + 1
    }

    /// The `Content-Range` response header value.
    pub fn content_range(&self, object_size_bytes: u64) -> String {
        format!(
            "bytes {}-{}/{}",
            self.first_byte, self.last_byte_inclusive, object_size_bytes
        )
    }
}

/// What the client asked for, before it is resolved against an object size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeSpec {
    /// `bytes=a-b` (b inclusive) or `bytes=a-` (to the end).
    FromTo {
        first_byte: u64,
        last_byte_inclusive: Option<u64>,
    },
    /// `bytes=-n`: the last n bytes.
    Suffix { length_bytes: u64 },
}

/// Parses a `Range` header value; `None` when it must be ignored (bad syntax, other unit,
/// several ranges).
pub fn parse_range_spec(header_value: &str) -> Option<RangeSpec> {
    let (unit, set) = header_value.trim().split_once('=')?;
    if !unit.trim().eq_ignore_ascii_case("bytes") || set.contains(',') {
        return None;
    }
    let (first_text, last_text) = set.trim().split_once('-')?;
    let digits = |text: &str| -> Option<u64> {
        let text = text.trim();
        if text.is_empty() || !text.bytes().all(|byte| byte.is_ascii_digit()) {
            return None;
        }
        text.parse().ok()
    };
    if first_text.trim().is_empty() {
        return Some(RangeSpec::Suffix {
            length_bytes: digits(last_text)?,
        });
    }
    let first_byte = digits(first_text)?;
    if last_text.trim().is_empty() {
        return Some(RangeSpec::FromTo {
            first_byte,
            last_byte_inclusive: None,
        });
    }
    let last_byte_inclusive = digits(last_text)?;
    if last_byte_inclusive < first_byte {
        // RFC 9110: a range with last < first is invalid syntax and the header is ignored.
        return None;
    }
    Some(RangeSpec::FromTo {
        first_byte,
        last_byte_inclusive: Some(last_byte_inclusive),
    })
}

impl RangeSpec {
    /// Clamps the spec to an object; `InvalidRange` when no byte is selected.
    pub fn resolve(self, object_size_bytes: u64) -> Result<ByteRange, S3Error> {
        if object_size_bytes == 0 {
            return Err(S3Error::InvalidRange);
        }
        let last_byte_of_object = object_size_bytes - 1;
        match self {
            RangeSpec::FromTo {
                first_byte,
                last_byte_inclusive,
            } => {
                if first_byte > last_byte_of_object {
                    return Err(S3Error::InvalidRange);
                }
                let last = last_byte_inclusive
                    .unwrap_or(last_byte_of_object)
                    .min(last_byte_of_object);
                Ok(ByteRange {
                    first_byte,
                    last_byte_inclusive: last,
                })
            }
            RangeSpec::Suffix { length_bytes } => {
                if length_bytes == 0 {
                    return Err(S3Error::InvalidRange);
                }
                let length_bytes = length_bytes.min(object_size_bytes);
                Ok(ByteRange {
                    first_byte: object_size_bytes - length_bytes,
                    last_byte_inclusive: last_byte_of_object,
                })
            }
        }
    }
}

/// The whole of GET's range handling: `Ok(None)` means "send the whole object with 200",
/// `Ok(Some(range))` "send 206 with this range".
pub fn resolve_range_header(
    header_value: Option<&str>,
    object_size_bytes: u64,
) -> Result<Option<ByteRange>, S3Error> {
    match header_value.and_then(parse_range_spec) {
        None => Ok(None),
        Some(spec) => spec.resolve(object_size_bytes).map(Some),
    }
}

/// `x-amz-copy-source-range: bytes=first-last`. Unlike `Range`, S3 requires the explicit
/// `first-last` form and rejects anything else with `InvalidArgument`; a range past the source's
/// end is `InvalidRange`. Returns the range as requested; check it with [`check_copy_source_range`].
pub fn parse_copy_source_range(header_value: &str) -> Result<ByteRange, S3Error> {
    let malformed = || {
        S3Error::InvalidArgument(
            "The x-amz-copy-source-range value must be of the form bytes=first-last where first and last are the zero-based offsets of the first and last bytes to copy".to_string(),
        )
    };
    match parse_range_spec(header_value) {
        Some(RangeSpec::FromTo {
            first_byte,
            last_byte_inclusive: Some(last_byte_inclusive),
        }) => Ok(ByteRange {
            first_byte,
            last_byte_inclusive,
        }),
        _ => Err(malformed()),
    }
}

pub fn check_copy_source_range(range: ByteRange, source_size_bytes: u64) -> Result<(), S3Error> {
    if range.last_byte_inclusive >= source_size_bytes {
        Err(S3Error::InvalidRange)
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn range(first_byte: u64, last_byte_inclusive: u64) -> Option<ByteRange> {
        Some(ByteRange {
            first_byte,
            last_byte_inclusive,
        })
    }

    #[test]
    fn range_table() {
        let size = 1000;
        let cases: &[(&str, Result<Option<ByteRange>, S3Error>)] = &[
            ("bytes=0-499", Ok(range(0, 499))),
            ("bytes=500-999", Ok(range(500, 999))),
            ("bytes=500-5000", Ok(range(500, 999))),
            ("bytes=900-", Ok(range(900, 999))),
            ("bytes=-100", Ok(range(900, 999))),
            ("bytes=-5000", Ok(range(0, 999))),
            ("bytes=999-999", Ok(range(999, 999))),
            ("BYTES = 0-0", Ok(range(0, 0))),
            ("bytes=1000-", Err(S3Error::InvalidRange)),
            ("bytes=1000-2000", Err(S3Error::InvalidRange)),
            ("bytes=-0", Err(S3Error::InvalidRange)),
            ("bytes=5-1", Ok(None)),
            ("bytes=0-1,5-9", Ok(None)),
            ("items=0-1", Ok(None)),
            ("bytes=a-b", Ok(None)),
            ("bytes=-", Ok(None)),
            ("garbage", Ok(None)),
        ];
        for (header, expected) in cases {
            assert_eq!(
                &resolve_range_header(Some(header), size),
                expected,
                "{header}"
            );
        }
        assert_eq!(resolve_range_header(None, size), Ok(None));
        assert_eq!(
            resolve_range_header(Some("bytes=0-"), 0),
            Err(S3Error::InvalidRange)
        );
        assert_eq!(
            range(0, 499).unwrap().content_range(1000),
            "bytes 0-499/1000"
        );
        assert_eq!(range(0, 499).unwrap().length_bytes(), 500);
    }

    #[test]
    fn copy_source_range() {
        assert_eq!(
            parse_copy_source_range("bytes=0-9"),
            Ok(range(0, 9).unwrap())
        );
        assert!(matches!(
            parse_copy_source_range("bytes=0-"),
            Err(S3Error::InvalidArgument(_))
        ));
        assert!(matches!(
            parse_copy_source_range("bytes=-5"),
            Err(S3Error::InvalidArgument(_))
        ));
        assert_eq!(check_copy_source_range(range(0, 9).unwrap(), 10), Ok(()));
        assert_eq!(
            check_copy_source_range(range(0, 10).unwrap(), 10),
            Err(S3Error::InvalidRange)
        );
    }

    proptest! {
        #[test]
        fn resolved_ranges_stay_inside_the_object(
            first in 0u64..2000, last in 0u64..2000, suffix in 0u64..2000, size in 0u64..1500
        ) {
            for header in [format!("bytes={first}-{last}"), format!("bytes={first}-"), format!("bytes=-{suffix}")] {
                if let Ok(Some(resolved)) = resolve_range_header(Some(&header), size) {
                    prop_assert!(resolved.first_byte <= resolved.last_byte_inclusive);
                    prop_assert!(resolved.last_byte_inclusive < size);
                }
            }
        }
    }
}
