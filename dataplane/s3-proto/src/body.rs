//! Verification of a (decoded) object body while it streams: the MD5 that becomes the ETag, the
//! `Content-MD5` check, the signed `x-amz-content-sha256`, an `x-amz-checksum-*` value, and the
//! declared length.
//!
//! Model: the gateway feeds every decoded body byte to [`BodyVerifier::update`] (after the
//! aws-chunked decoder when there is one) and calls [`BodyVerifier::finish`] at end of body,
//! before committing. `finish` fails with the S3 error of the first violated expectation, checked
//! in this order: length (`IncompleteBody`), `x-amz-content-sha256`
//! (`XAmzContentSHA256Mismatch`), `Content-MD5` (`BadDigest`), checksum (`BadDigest`).
//! Nothing is buffered; the cost is one MD5 plus what was asked for.

use sha2::{Digest as _, Sha256};

use crate::S3Error;
use crate::checksum::{ChecksumAlgorithm, Checksummer, etag_from_md5};
use crate::headers::ChecksumRequest;

/// What the body must satisfy.
#[derive(Debug, Clone, Default)]
pub struct BodyExpectations {
    /// The decoded length the client declared.
    pub length_bytes: Option<u64>,
    /// A decoded `Content-MD5` (see [`crate::checksum::parse_content_md5`]).
    pub content_md5: Option<[u8; 16]>,
    /// From [`crate::sigv4::PayloadMode::Sha256`].
    pub payload_sha256: Option<[u8; 32]>,
    /// From [`crate::headers::checksum_request`]; a `Requested` algorithm is computed only.
    pub checksum: Option<ChecksumRequest>,
}

/// The digests of a body that met every expectation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BodyDigest {
    pub length_bytes: u64,
    pub md5: [u8; 16],
    /// Quoted hex MD5.
    pub etag: String,
    /// The computed checksum in wire form, when one was provided or requested.
    pub checksum: Option<(ChecksumAlgorithm, String)>,
}

pub struct BodyVerifier {
    expectations: BodyExpectations,
    received_bytes: u64,
    /// md5-many's streaming state: a faster compressor than md-5's for the hottest hash of a
    /// PUT (the ETag covers every body byte). `None` when the caller computes the MD5 itself
    /// ([`BodyVerifier::with_external_md5`]).
    md5: Option<md5_many::Md5State>,
    sha256: Option<Sha256>,
    checksummer: Option<Checksummer>,
}

impl std::fmt::Debug for BodyVerifier {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("BodyVerifier")
            .field("expectations", &self.expectations)
            .field("received_bytes", &self.received_bytes)
            .finish_non_exhaustive()
    }
}

impl BodyVerifier {
    pub fn new(expectations: BodyExpectations) -> BodyVerifier {
        BodyVerifier {
            md5: Some(md5_many::Md5State::new()),
            ..BodyVerifier::with_external_md5(expectations)
        }
    }

    /// A verifier that leaves the MD5 to its caller, who hands it to
    /// [`BodyVerifier::finish_with_md5`] (the gateway hashes concurrent uploads together, see
    /// [`crate::md5_lanes`]).
    pub fn with_external_md5(expectations: BodyExpectations) -> BodyVerifier {
        let checksummer = match &expectations.checksum {
            Some(
                ChecksumRequest::Provided { algorithm, .. }
                | ChecksumRequest::Requested { algorithm },
            ) => Some(Checksummer::new(*algorithm)),
            Some(ChecksumRequest::None) | None => None,
        };
        BodyVerifier {
            sha256: expectations.payload_sha256.map(|_| Sha256::new()),
            expectations,
            received_bytes: 0,
            md5: None,
            checksummer,
        }
    }

    /// Feeds body bytes. Fails early with `IncompleteBody` once more bytes than declared arrive,
    /// so an over-long body is never written in full.
    pub fn update(&mut self, bytes: &[u8]) -> Result<(), S3Error> {
        self.received_bytes += bytes.len() as u64;
        if let Some(declared) = self.expectations.length_bytes
            && self.received_bytes > declared
        {
            return Err(S3Error::IncompleteBody);
        }
        if let Some(md5) = &mut self.md5 {
            md5.update(bytes);
        }
        if let Some(sha256) = &mut self.sha256 {
            sha256.update(bytes);
        }
        if let Some(checksummer) = &mut self.checksummer {
            checksummer.update(bytes);
        }
        Ok(())
    }

    /// Ends a verifier made by [`BodyVerifier::new`].
    pub fn finish(mut self) -> Result<BodyDigest, S3Error> {
        let md5 = self
            .md5
            .take()
            .expect("finish is for verifiers that compute the MD5; see finish_with_md5")
            .finalize();
        self.finish_with_md5(md5)
    }

    /// Ends a verifier, given the MD5 of exactly the bytes it was fed.
    pub fn finish_with_md5(self, md5: [u8; 16]) -> Result<BodyDigest, S3Error> {
        if let Some(declared) = self.expectations.length_bytes
            && declared != self.received_bytes
        {
            return Err(S3Error::IncompleteBody);
        }
        if let (Some(expected), Some(sha256)) = (self.expectations.payload_sha256, self.sha256) {
            let computed: [u8; 32] = sha256.finalize().into();
            crate::sigv4::verify_payload_sha256(&expected, &computed)?;
        }
        if let Some(expected) = self.expectations.content_md5
            && expected != md5
        {
            return Err(S3Error::BadDigest);
        }
        let checksum = match self.checksummer {
            None => None,
            Some(checksummer) => {
                let algorithm = checksummer.algorithm();
                let computed = checksummer.finalize_base64();
                if let Some(ChecksumRequest::Provided { value_base64, .. }) =
                    &self.expectations.checksum
                    && *value_base64 != computed
                {
                    return Err(S3Error::BadDigest);
                }
                Some((algorithm, computed))
            }
        };
        Ok(BodyDigest {
            length_bytes: self.received_bytes,
            md5,
            etag: etag_from_md5(&md5),
            checksum,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checksum::{checksum_base64, md5_digest};
    use proptest::prelude::*;

    #[test]
    fn the_etag_md5_matches_rfc_1321() {
        for (body, hex) in [
            (&b""[..], "d41d8cd98f00b204e9800998ecf8427e"),
            (b"a", "0cc175b9c0f1b6a831c399e269772661"),
            (b"abc", "900150983cd24fb0d6963f7d28e17f72"),
            (b"message digest", "f96b697d7cb7938d525a2f31aaf161d0"),
            (
                b"abcdefghijklmnopqrstuvwxyz",
                "c3fcd3d76192e4007dfb496cca67e13b",
            ),
            (
                b"12345678901234567890123456789012345678901234567890123456789012345678901234567890",
                "57edf4a22be3c955ac49da2e2107b67a",
            ),
        ] {
            let digest = run(BodyExpectations::default(), body).unwrap();
            assert_eq!(digest.etag, format!("\"{hex}\""), "{body:?}");
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        /// The streaming MD5 (md5-many) agrees with md-5 for any body fed in any pieces,
        /// across the 64-byte block and padding boundaries.
        #[test]
        fn the_etag_md5_matches_md_5_for_any_body_and_pieces(
            length in prop_oneof![0usize..200, 0usize..300_000],
            piece in 1usize..70_000,
            seed in any::<u8>(),
        ) {
            let body: Vec<u8> =
                (0..length).map(|index| (index as u8).wrapping_mul(31) ^ seed).collect();
            let mut verifier = BodyVerifier::new(BodyExpectations::default());
            for slice in body.chunks(piece) {
                verifier.update(slice).unwrap();
            }
            let digest = verifier.finish().unwrap();
            prop_assert_eq!(digest.md5, md5_digest(&body));
        }
    }

    fn run(expectations: BodyExpectations, body: &[u8]) -> Result<BodyDigest, S3Error> {
        let mut verifier = BodyVerifier::new(expectations);
        for piece in body.chunks(3) {
            verifier.update(piece)?;
        }
        verifier.finish()
    }

    #[test]
    fn all_expectations_met() {
        let body = b"Hello world";
        let sha256: [u8; 32] = Sha256::digest(body).into();
        let digest = run(
            BodyExpectations {
                length_bytes: Some(11),
                content_md5: Some(md5_digest(body)),
                payload_sha256: Some(sha256),
                checksum: Some(ChecksumRequest::Provided {
                    algorithm: ChecksumAlgorithm::Crc32,
                    value_base64: "i9aeUg==".to_string(),
                }),
            },
            body,
        )
        .unwrap();
        assert_eq!(digest.length_bytes, 11);
        assert_eq!(digest.etag, etag_from_md5(&md5_digest(body)));
        assert_eq!(
            digest.checksum,
            Some((ChecksumAlgorithm::Crc32, "i9aeUg==".to_string()))
        );
    }

    #[test]
    fn each_violation_has_its_error() {
        let body = b"Hello world";
        let short = BodyExpectations {
            length_bytes: Some(12),
            ..BodyExpectations::default()
        };
        assert_eq!(run(short, body), Err(S3Error::IncompleteBody));
        let long = BodyExpectations {
            length_bytes: Some(5),
            ..BodyExpectations::default()
        };
        assert_eq!(run(long, body), Err(S3Error::IncompleteBody));
        let sha = BodyExpectations {
            payload_sha256: Some([0; 32]),
            ..BodyExpectations::default()
        };
        assert_eq!(run(sha, body), Err(S3Error::XAmzContentSha256Mismatch));
        let md5 = BodyExpectations {
            content_md5: Some(md5_digest(b"other")),
            ..BodyExpectations::default()
        };
        assert_eq!(run(md5, body), Err(S3Error::BadDigest));
        let checksum = BodyExpectations {
            checksum: Some(ChecksumRequest::Provided {
                algorithm: ChecksumAlgorithm::Sha1,
                value_base64: checksum_base64(ChecksumAlgorithm::Sha1, b"other"),
            }),
            ..BodyExpectations::default()
        };
        assert_eq!(run(checksum, body), Err(S3Error::BadDigest));
        let requested = BodyExpectations {
            checksum: Some(ChecksumRequest::Requested {
                algorithm: ChecksumAlgorithm::Crc32c,
            }),
            ..BodyExpectations::default()
        };
        assert_eq!(
            run(requested, body).unwrap().checksum,
            Some((ChecksumAlgorithm::Crc32c, "crUfeA==".to_string()))
        );
    }
}
