//! Bucket default encryption: Put/Get/DeleteBucketEncryption, and the default it gives new
//! objects that carry no SSE headers ([`bucket_default_sse_s3`]).
//!
//! Model: the configuration is the bucket attribute [`BUCKET_ENCRYPTION_ATTRIBUTE`], stored as
//! `1, algorithm (1 AES256)`, version byte first. Only SSE-S3 (`AES256`) is accepted; `aws:kms`
//! and `aws:kms:dsse` answer `501 NotImplemented` until Cairn has a key service. A bucket without
//! the attribute gets the gateway's own default: SSE-S3 when the gateway encrypts by default
//! (GetBucketEncryption then reports `AES256`, as S3 does for every bucket since 2023), else no
//! encryption (GetBucketEncryption answers `ServerSideEncryptionConfigurationNotFoundError`).

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

fn encode_sse_s3() -> Vec<u8> {
    vec![FORMAT_VERSION, ALGORITHM_AES256]
}

/// Whether the bucket's stored configuration asks for SSE-S3 (`None`: no configuration).
fn stored_configuration(record: &BucketRecord) -> Result<Option<()>, S3Error> {
    match record.attributes.get(BUCKET_ENCRYPTION_ATTRIBUTE) {
        None => Ok(None),
        Some(bytes) if bytes.as_slice() == [FORMAT_VERSION, ALGORITHM_AES256] => Ok(Some(())),
        Some(_) => {
            tracing::error!(bucket = %record.name, "stored bucket encryption does not decode");
            Err(S3Error::InternalError)
        }
    }
}

/// Whether new objects without SSE headers in this bucket are SSE-S3 because of the bucket's
/// configuration (the gateway's own default is applied by the caller).
pub(crate) fn bucket_default_sse_s3(record: &BucketRecord) -> Result<bool, S3Error> {
    Ok(stored_configuration(record)?.is_some())
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
    if stored_configuration(&record)?.is_none() && !gateway_encrypts_by_default(context) {
        return Err(S3Error::ServerSideEncryptionConfigurationNotFoundError);
    }
    Ok(xml_response(bucket_encryption_xml(&BucketEncryption {
        algorithm: "AES256".to_owned(),
        kms_key_id: None,
        bucket_key_enabled: false,
    })))
}

pub async fn put_bucket_encryption(
    context: &RequestContext<'_>,
    bucket: &str,
    body: RequestBody,
) -> Result<HttpResponse, S3Error> {
    owned_bucket(context, bucket).await?;
    let document = read_verified_document(context, body).await?;
    let configuration = parse_bucket_encryption(&document)?;
    if configuration.algorithm != "AES256" || context.executor.shared.config.master_key.is_none() {
        // SSE-KMS needs a key service; SSE-S3 needs the cluster master key.
        return Err(S3Error::NotImplemented);
    }
    write_bucket_attribute(
        context,
        bucket,
        BUCKET_ENCRYPTION_ATTRIBUTE,
        Some(encode_sse_s3()),
        http::StatusCode::OK,
    )
    .await
}

pub async fn delete_bucket_encryption(
    context: &RequestContext<'_>,
    bucket: &str,
) -> Result<HttpResponse, S3Error> {
    owned_bucket(context, bucket).await?;
    write_bucket_attribute(
        context,
        bucket,
        BUCKET_ENCRYPTION_ATTRIBUTE,
        None,
        http::StatusCode::NO_CONTENT,
    )
    .await
}
