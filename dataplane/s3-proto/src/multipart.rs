//! CompleteMultipartUpload's decision as a pure function: which stored parts make up the object,
//! whether the request may complete, and the resulting ETag and size.
//!
//! Model: the client lists (part number, ETag) in ascending order (already checked by
//! [`crate::xml::parse_complete_multipart_upload`]); the metadata service holds the uploaded
//! parts. Every listed part must exist with the same ETag (`InvalidPart`); every part but the
//! last must be at least 5 MiB (`EntityTooSmall`); parts that were uploaded but not listed are
//! simply not part of the object (the caller deletes their shards). The object's ETag is the
//! MD5 of the listed parts' binary MD5s followed by `-<count>`.

use crate::S3Error;
use crate::checksum::{multipart_etag, part_md5_from_etag};
use crate::headers::PART_MIN_BYTES;
use crate::xml::CompletedPart;

/// An uploaded part as the metadata service stores it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredPart {
    pub md5: [u8; 16],
    pub size_bytes: u64,
}

/// The outcome of a valid completion request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompletionPlan {
    /// Part numbers in object order.
    pub part_numbers: Vec<u32>,
    pub total_size_bytes: u64,
    /// Quoted, `"<hex>-<count>"`.
    pub etag: String,
}

/// Checks a completion request against the stored parts (looked up by part number).
pub fn plan_completion(
    requested: &[CompletedPart],
    stored_part: impl Fn(u32) -> Option<StoredPart>,
) -> Result<CompletionPlan, S3Error> {
    if requested.is_empty() {
        return Err(S3Error::MalformedXml);
    }
    let mut md5s = Vec::with_capacity(requested.len());
    let mut total_size_bytes = 0u64;
    for (index, part) in requested.iter().enumerate() {
        let stored = stored_part(part.part_number).ok_or(S3Error::InvalidPart)?;
        if part_md5_from_etag(&part.etag) != Some(stored.md5) {
            return Err(S3Error::InvalidPart);
        }
        let is_last = index + 1 == requested.len();
        if !is_last && stored.size_bytes < PART_MIN_BYTES {
            return Err(S3Error::EntityTooSmall);
        }
        md5s.push(stored.md5);
        total_size_bytes += stored.size_bytes;
    }
    Ok(CompletionPlan {
        part_numbers: requested.iter().map(|part| part.part_number).collect(),
        total_size_bytes,
        etag: multipart_etag(&md5s),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checksum::{etag_from_md5, md5_digest};
    use std::collections::BTreeMap;

    fn stored() -> BTreeMap<u32, StoredPart> {
        [
            (1, b"one".as_slice(), PART_MIN_BYTES),
            (2, b"two", PART_MIN_BYTES + 1),
            (3, b"three", 10),
            (4, b"four", 1),
        ]
        .into_iter()
        .map(|(number, content, size_bytes)| {
            (
                number,
                StoredPart {
                    md5: md5_digest(content),
                    size_bytes,
                },
            )
        })
        .collect()
    }

    fn request(numbers: &[u32]) -> Vec<CompletedPart> {
        let parts = stored();
        numbers
            .iter()
            .map(|number| CompletedPart {
                part_number: *number,
                etag: parts
                    .get(number)
                    .map(|part| etag_from_md5(&part.md5))
                    .unwrap_or_else(|| "\"00\"".into()),
                checksums: vec![],
            })
            .collect()
    }

    #[test]
    fn completes_with_listed_parts() {
        let parts = stored();
        let plan =
            plan_completion(&request(&[1, 2, 3]), |number| parts.get(&number).cloned()).unwrap();
        assert_eq!(plan.part_numbers, [1, 2, 3]);
        assert_eq!(plan.total_size_bytes, 2 * PART_MIN_BYTES + 11);
        assert_eq!(
            plan.etag,
            multipart_etag(&[md5_digest(b"one"), md5_digest(b"two"), md5_digest(b"three")])
        );
        assert!(plan.etag.ends_with("-3\""));
        // Skipping an uploaded part is allowed.
        assert!(plan_completion(&request(&[1, 3]), |number| parts.get(&number).cloned()).is_ok());
    }

    #[test]
    fn rejects_missing_mismatched_and_small_parts() {
        let parts = stored();
        let lookup = |number| parts.get(&number).cloned();
        assert_eq!(
            plan_completion(&request(&[1, 9]), lookup),
            Err(S3Error::InvalidPart)
        );
        let mut wrong_etag = request(&[1, 2]);
        wrong_etag[1].etag = etag_from_md5(&md5_digest(b"other"));
        assert_eq!(
            plan_completion(&wrong_etag, lookup),
            Err(S3Error::InvalidPart)
        );
        assert_eq!(
            plan_completion(&request(&[3, 4]), lookup),
            Err(S3Error::EntityTooSmall)
        );
        assert_eq!(plan_completion(&[], lookup), Err(S3Error::MalformedXml));
        // Unquoted and uppercase ETags from clients still match.
        let mut unquoted = request(&[1]);
        unquoted[0].etag = unquoted[0].etag.trim_matches('"').to_uppercase();
        assert!(plan_completion(&unquoted, lookup).is_ok());
    }
}
