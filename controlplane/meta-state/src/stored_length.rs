//! Stored length of objects whose bytes are transformed before erasure coding (encrypted).
//!
//! Model: the gateway encrypts an object's parts in fixed-size chunks, each stored with a fixed
//! overhead (nonce and tag), so a part of `n` plaintext bytes occupies
//! `n + overhead * ceil(n / chunk)` bytes in its shard map, while the record's `size_bytes` (what
//! listings and `Content-Length` show) stays `n`. The envelope in the `encryption` attribute
//! starts with that rule: format version 1, then the chunk's plaintext bytes and its overhead
//! bytes (u32 big endian each); the rest is opaque here. Shard maps are checked against the
//! stored length, so a gateway cannot commit a map that does not cover the ciphertext.
//! A record without the attribute (or with an envelope of another format) is stored as is.

use std::collections::BTreeMap;

/// The record attribute holding an encrypted object's (or upload's) envelope.
pub const ENCRYPTION_ATTRIBUTE: &str = "encryption";

/// The chunk rule of an envelope: (chunk plaintext bytes, chunk overhead bytes).
fn chunk_rule(attributes: &BTreeMap<String, Vec<u8>>) -> Option<(u64, u64)> {
    let envelope = attributes.get(ENCRYPTION_ATTRIBUTE)?;
    if envelope.len() < 9 || envelope[0] != 1 {
        return None;
    }
    let chunk = u32::from_be_bytes(envelope[1..5].try_into().ok()?);
    let overhead = u32::from_be_bytes(envelope[5..9].try_into().ok()?);
    (chunk > 0).then_some((u64::from(chunk), u64::from(overhead)))
}

/// Bytes a part (or single-part object) of `plaintext_length_bytes` occupies in its shard map.
pub fn stored_length_bytes(
    attributes: &BTreeMap<String, Vec<u8>>,
    plaintext_length_bytes: u64,
) -> u64 {
    match chunk_rule(attributes) {
        None => plaintext_length_bytes,
        Some((chunk, overhead)) => plaintext_length_bytes
            .saturating_add(overhead.saturating_mul(plaintext_length_bytes.div_ceil(chunk))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_and_encrypted_lengths() {
        let plain = BTreeMap::new();
        assert_eq!(stored_length_bytes(&plain, 100), 100);
        let mut envelope = vec![1u8, 0, 1, 0, 0, 0, 0, 0, 28];
        envelope.extend_from_slice(&[0; 20]);
        let encrypted = BTreeMap::from([(ENCRYPTION_ATTRIBUTE.to_owned(), envelope)]);
        assert_eq!(stored_length_bytes(&encrypted, 0), 0);
        assert_eq!(stored_length_bytes(&encrypted, 1), 29);
        assert_eq!(stored_length_bytes(&encrypted, 65_536), 65_564);
        assert_eq!(stored_length_bytes(&encrypted, 65_537), 65_537 + 56);
        // An envelope of another format is not interpreted.
        let other = BTreeMap::from([(ENCRYPTION_ATTRIBUTE.to_owned(), vec![2u8; 20])]);
        assert_eq!(stored_length_bytes(&other, 1), 1);
    }
}
