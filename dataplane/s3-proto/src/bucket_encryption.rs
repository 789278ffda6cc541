//! The `ServerSideEncryptionConfiguration` document of Put/GetBucketEncryption.
//!
//! Model: one rule (S3 allows exactly one) naming the default algorithm (`AES256`, `aws:kms`,
//! `aws:kms:dsse`), an optional KMS key id and `BucketKeyEnabled`. Which algorithms the gateway
//! accepts is its decision; the parser only checks the document's shape and names.

use crate::S3Error;
use crate::xml::{XmlWriter, parse_document};

pub const BUCKET_ENCRYPTION_BODY_LIMIT_BYTES: usize = 64 * 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BucketEncryption {
    /// `AES256`, `aws:kms` or `aws:kms:dsse`.
    pub algorithm: String,
    pub kms_key_id: Option<String>,
    pub bucket_key_enabled: bool,
}

pub fn parse_bucket_encryption(body: &[u8]) -> Result<BucketEncryption, S3Error> {
    let root = parse_document(body, BUCKET_ENCRYPTION_BODY_LIMIT_BYTES)?;
    if root.name != "ServerSideEncryptionConfiguration" {
        return Err(S3Error::MalformedXml);
    }
    let mut rules = root.children_named("Rule");
    let rule = rules.next().ok_or(S3Error::MalformedXml)?;
    if rules.next().is_some() {
        return Err(S3Error::MalformedXml);
    }
    let default = rule
        .child("ApplyServerSideEncryptionByDefault")
        .ok_or(S3Error::MalformedXml)?;
    let algorithm = default
        .child_text("SSEAlgorithm")
        .map(str::trim)
        .ok_or(S3Error::MalformedXml)?;
    if !["AES256", "aws:kms", "aws:kms:dsse"].contains(&algorithm) {
        return Err(S3Error::MalformedXml);
    }
    let kms_key_id = default
        .child_text("KMSMasterKeyID")
        .map(|text| text.trim().to_owned())
        .filter(|text| !text.is_empty());
    if kms_key_id.is_some() && algorithm == "AES256" {
        return Err(S3Error::InvalidArgument(
            "a KMSMasterKeyID is not applicable if the default sse algorithm is not aws:kms or aws:kms:dsse".to_owned(),
        ));
    }
    let bucket_key_enabled = match rule.child_text("BucketKeyEnabled").map(str::trim) {
        None | Some("false") => false,
        Some("true") => true,
        Some(_) => return Err(S3Error::MalformedXml),
    };
    Ok(BucketEncryption {
        algorithm: algorithm.to_owned(),
        kms_key_id,
        bucket_key_enabled,
    })
}

pub fn bucket_encryption_xml(configuration: &BucketEncryption) -> String {
    let mut writer = XmlWriter::new();
    writer.open_root("ServerSideEncryptionConfiguration");
    writer.open("Rule");
    writer.open("ApplyServerSideEncryptionByDefault");
    writer.text_element("SSEAlgorithm", &configuration.algorithm);
    writer.optional_element("KMSMasterKeyID", configuration.kms_key_id.as_deref());
    writer.close("ApplyServerSideEncryptionByDefault");
    writer.bool_element("BucketKeyEnabled", configuration.bucket_key_enabled);
    writer.close("Rule");
    writer.close("ServerSideEncryptionConfiguration");
    writer.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_validation() {
        let configuration = BucketEncryption {
            algorithm: "AES256".to_owned(),
            kms_key_id: None,
            bucket_key_enabled: false,
        };
        let document = bucket_encryption_xml(&configuration);
        assert_eq!(
            parse_bucket_encryption(document.as_bytes()),
            Ok(configuration)
        );
        let kms = b"<ServerSideEncryptionConfiguration><Rule><ApplyServerSideEncryptionByDefault><SSEAlgorithm>aws:kms</SSEAlgorithm><KMSMasterKeyID>k1</KMSMasterKeyID></ApplyServerSideEncryptionByDefault><BucketKeyEnabled>true</BucketKeyEnabled></Rule></ServerSideEncryptionConfiguration>";
        let parsed = parse_bucket_encryption(kms).unwrap();
        assert_eq!(parsed.kms_key_id.as_deref(), Some("k1"));
        assert!(parsed.bucket_key_enabled);
        for bad in [
            &b"<ServerSideEncryptionConfiguration/>"[..],
            b"<ServerSideEncryptionConfiguration><Rule><ApplyServerSideEncryptionByDefault><SSEAlgorithm>DES</SSEAlgorithm></ApplyServerSideEncryptionByDefault></Rule></ServerSideEncryptionConfiguration>",
            b"<ServerSideEncryptionConfiguration><Rule></Rule></ServerSideEncryptionConfiguration>",
            b"<Other/>",
        ] {
            assert_eq!(parse_bucket_encryption(bad), Err(S3Error::MalformedXml));
        }
        let key_with_aes = b"<ServerSideEncryptionConfiguration><Rule><ApplyServerSideEncryptionByDefault><SSEAlgorithm>AES256</SSEAlgorithm><KMSMasterKeyID>k1</KMSMasterKeyID></ApplyServerSideEncryptionByDefault></Rule></ServerSideEncryptionConfiguration>";
        assert!(matches!(
            parse_bucket_encryption(key_with_aes),
            Err(S3Error::InvalidArgument(_))
        ));
    }
}
