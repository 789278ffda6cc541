//! Bucket default encryption: Put/Get/DeleteBucketEncryption, and the default it gives new
//! objects that carry no SSE headers ([`bucket_default`]).
//!
//! Model: the configuration is the bucket attribute [`BUCKET_ENCRYPTION_ATTRIBUTE`], version byte
//! first: `1, 1` for SSE-S3 (`AES256`), or `1, 2, bucket key enabled (0/1), KMS key id (UTF-8,
//! empty for the default key)` for SSE-KMS (`aws:kms`, see [`crate::kms`]); `aws:kms:dsse`
//! answers `501 NotImplemented`. The KMS key id is stored as given (id, ARN or alias) and
//! resolved at each write, as S3 does, so an unknown or disabled key fails the write, not the
//! configuration. A bucket without the attribute gets the gateway's own default: SSE-S3 when the
//! gateway encrypts by default (GetBucketEncryption then reports `AES256`, as S3 does for every
//! bucket since 2023), else no encryption (GetBucketEncryption answers
//! `ServerSideEncryptionConfigurationNotFoundError`).

use cairn_meta_state::BucketRecord;
use cairn_s3_proto::S3Error;
use cairn_s3_proto::bucket_encryption::{
    BucketEncryption, bucket_encryption_xml, parse_bucket_encryption,
};

use crate::body::RequestBody;
use crate::bucket::{owned_bucket, read_verified_document, write_bucket_attribute};
use crate::server::{HttpResponse, RequestContext, xml_response};

/// The bucket attribute holding the default encryption.
pub const BUCKET_ENCRYPTION_ATTRIBUTE: &str = "encryption";
const FORMAT_VERSION: u8 = 1;
const ALGORITHM_AES256: u8 = 1;
const ALGORITHM_KMS: u8 = 2;

/// A bucket's stored default encryption.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum BucketDefault {
    /// No configuration stored.
    None,
    SseS3,
    SseKms {
        key_id: Option<String>,
    },
}

struct Stored {
    default: BucketDefault,
    bucket_key_enabled: bool,
}

fn encode(configuration: &BucketEncryption) -> Vec<u8> {
    if configuration.algorithm == "aws:kms" {
        let mut bytes = vec![
            FORMAT_VERSION,
            ALGORITHM_KMS,
            u8::from(configuration.bucket_key_enabled),
        ];
        bytes.extend_from_slice(configuration.kms_key_id.as_deref().unwrap_or("").as_bytes());
        bytes
    } else {
        vec![FORMAT_VERSION, ALGORITHM_AES256]
    }
}

fn stored_configuration(record: &BucketRecord) -> Result<Stored, S3Error> {
    let corrupt = || {
        tracing::error!(bucket = %record.name, "stored bucket encryption does not decode");
        S3Error::InternalError
    };
    match record
        .attributes
        .get(BUCKET_ENCRYPTION_ATTRIBUTE)
        .map(Vec::as_slice)
    {
        None => Ok(Stored {
            default: BucketDefault::None,
            bucket_key_enabled: false,
        }),
        Some([FORMAT_VERSION, ALGORITHM_AES256]) => Ok(Stored {
            default: BucketDefault::SseS3,
            bucket_key_enabled: false,
        }),
        Some(
            [
                FORMAT_VERSION,
                ALGORITHM_KMS,
                enabled @ (0 | 1),
                key_id @ ..,
            ],
        ) => {
            let key_id = std::str::from_utf8(key_id).map_err(|_| corrupt())?;
            Ok(Stored {
                default: BucketDefault::SseKms {
                    key_id: (!key_id.is_empty()).then(|| key_id.to_owned()),
                },
                bucket_key_enabled: *enabled == 1,
            })
        }
        Some(_) => Err(corrupt()),
    }
}

/// The bucket's configured default for new objects without SSE headers (the gateway's own
/// default is applied by the caller when this is [`BucketDefault::None`]).
pub(crate) fn bucket_default(record: &BucketRecord) -> Result<BucketDefault, S3Error> {
    Ok(stored_configuration(record)?.default)
}

fn gateway_encrypts_by_default(context: &RequestContext<'_>) -> bool {
    let config = &context.executor.shared.config;
    config.encrypt_by_default && config.master_key.is_some()
}

pub async fn get_bucket_encryption(
    context: &RequestContext<'_>,
    bucket: &str,
) -> Result<HttpResponse, S3Error> {
    let record = owned_bucket(context, bucket).await?;
    let stored = stored_configuration(&record)?;
    let configuration = match stored.default {
        BucketDefault::None if !gateway_encrypts_by_default(context) => {
            return Err(S3Error::ServerSideEncryptionConfigurationNotFoundError);
        }
        BucketDefault::None | BucketDefault::SseS3 => BucketEncryption {
            algorithm: "AES256".to_owned(),
            kms_key_id: None,
            bucket_key_enabled: false,
        },
        BucketDefault::SseKms { key_id } => BucketEncryption {
            algorithm: "aws:kms".to_owned(),
            kms_key_id: key_id,
            bucket_key_enabled: stored.bucket_key_enabled,
        },
    };
    Ok(xml_response(bucket_encryption_xml(&configuration)))
}

pub async fn put_bucket_encryption(
    context: &RequestContext<'_>,
    bucket: &str,
    body: RequestBody,
) -> Result<HttpResponse, S3Error> {
    owned_bucket(context, bucket).await?;
    let document = read_verified_document(context, body).await?;
    let configuration = parse_bucket_encryption(&document)?;
    if configuration.algorithm == "aws:kms:dsse"
        || context.executor.shared.config.master_key.is_none()
    {
        // Dual-layer SSE-KMS is not implemented; SSE-S3 and SSE-KMS need the cluster master key.
        return Err(S3Error::NotImplemented);
    }
    write_bucket_attribute(
        context,
        bucket,
        BUCKET_ENCRYPTION_ATTRIBUTE,
        Some(encode(&configuration)),
        http::StatusCode::OK,
    )
    .await
}

pub async fn delete_bucket_encryption(
    context: &RequestContext<'_>,
    bucket: &str,
) -> Result<HttpResponse, S3Error> {
    crate::bucket::delete_bucket_attribute(context, bucket, BUCKET_ENCRYPTION_ATTRIBUTE).await
}
