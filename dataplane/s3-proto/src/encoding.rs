//! Percent-encoding as S3 and SigV4 define it.
//!
//! Model: SigV4's `UriEncode` keeps exactly the unreserved set `A-Z a-z 0-9 - . _ ~` and encodes
//! every other byte as `%XX` with uppercase hex; `/` is kept only in paths. Decoding is the exact
//! inverse for paths, where `+` is a literal plus; in query strings S3 reads `+` as a space (form
//! encoding), so callers pick the mode. A `%` not followed by two hex digits is an error, never
//! passed through, so one wire string has one meaning.

use std::fmt::Write as _;

fn is_unreserved(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~')
}

/// SigV4 `UriEncode`. `keep_slash` is true for the canonical URI and for S3's `encoding-type=url`
/// listings of keys.
pub fn uri_encode(input: &str, keep_slash: bool) -> String {
    let mut encoded = String::with_capacity(input.len() + input.len() / 4);
    for &byte in input.as_bytes() {
        if is_unreserved(byte) || (keep_slash && byte == b'/') {
            encoded.push(byte as char);
        } else {
            let _ = write!(encoded, "%{byte:02X}");
        }
    }
    encoded
}

/// How `+` is read while decoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlusMeans {
    /// Paths: `+` is a plus sign.
    Plus,
    /// Query strings: `+` is a space.
    Space,
}

/// Why a string could not be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecodeError {
    BadEscape,
    NotUtf8,
}

pub fn percent_decode_bytes(input: &str, plus: PlusMeans) -> Result<Vec<u8>, DecodeError> {
    let bytes = input.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        match bytes[index] {
            b'%' => {
                let high = bytes
                    .get(index + 1)
                    .and_then(|byte| (*byte as char).to_digit(16));
                let low = bytes
                    .get(index + 2)
                    .and_then(|byte| (*byte as char).to_digit(16));
                match (high, low) {
                    (Some(high), Some(low)) => decoded.push((high * 16 + low) as u8),
                    _ => return Err(DecodeError::BadEscape),
                }
                index += 3;
            }
            b'+' if plus == PlusMeans::Space => {
                decoded.push(b' ');
                index += 1;
            }
            byte => {
                decoded.push(byte);
                index += 1;
            }
        }
    }
    Ok(decoded)
}

pub fn percent_decode(input: &str, plus: PlusMeans) -> Result<String, DecodeError> {
    String::from_utf8(percent_decode_bytes(input, plus)?).map_err(|_| DecodeError::NotUtf8)
}

/// Splits a raw query string into decoded `(name, value)` pairs in wire order. A parameter
/// without `=` has an empty value (`?uploads`). Empty segments (`a=1&&b=2`) are skipped.
pub fn parse_query(raw_query: &str) -> Result<Vec<(String, String)>, DecodeError> {
    raw_query
        .split('&')
        .filter(|segment| !segment.is_empty())
        .map(|segment| {
            let (name, value) = segment.split_once('=').unwrap_or((segment, ""));
            Ok((
                percent_decode(name, PlusMeans::Space)?,
                percent_decode(value, PlusMeans::Space)?,
            ))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn encode_matches_sigv4_rules() {
        assert_eq!(uri_encode("a b+c/d~e_f.g-h", true), "a%20b%2Bc/d~e_f.g-h");
        assert_eq!(uri_encode("a/b", false), "a%2Fb");
        assert_eq!(uri_encode("é", true), "%C3%A9");
        assert_eq!(uri_encode("100%", true), "100%25");
    }

    #[test]
    fn decode_modes() {
        assert_eq!(percent_decode("a+b%20c", PlusMeans::Plus).unwrap(), "a+b c");
        assert_eq!(
            percent_decode("a+b%20c", PlusMeans::Space).unwrap(),
            "a b c"
        );
        assert_eq!(percent_decode("%e2%82%ac", PlusMeans::Plus).unwrap(), "€");
        assert_eq!(
            percent_decode("%zz", PlusMeans::Plus),
            Err(DecodeError::BadEscape)
        );
        assert_eq!(
            percent_decode("%4", PlusMeans::Plus),
            Err(DecodeError::BadEscape)
        );
        assert_eq!(
            percent_decode("%ff", PlusMeans::Plus),
            Err(DecodeError::NotUtf8)
        );
    }

    #[test]
    fn query_pairs() {
        assert_eq!(
            parse_query("uploads&prefix=a%2Fb+c&&max-keys=5").unwrap(),
            vec![
                ("uploads".to_string(), String::new()),
                ("prefix".to_string(), "a/b c".to_string()),
                ("max-keys".to_string(), "5".to_string())
            ]
        );
    }

    proptest! {
        #[test]
        fn decode_inverts_encode(text in "\\PC*") {
            prop_assert_eq!(percent_decode(&uri_encode(&text, true), PlusMeans::Plus).unwrap(), text.clone());
            prop_assert_eq!(percent_decode(&uri_encode(&text, false), PlusMeans::Space).unwrap(), text);
        }
    }
}
