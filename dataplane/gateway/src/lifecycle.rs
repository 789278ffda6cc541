//! Lifecycle: Put/Get/DeleteBucketLifecycleConfiguration.
//!
//! Model: the rules are the bucket attribute [`LIFECYCLE_ATTRIBUTE`] (the canonical
//! `LifecycleConfiguration` document of `cairn_s3_proto::lifecycle`, validated before it is
//! proposed). The gateway only stores them; the lifecycle worker (controlplane/workers,
//! `lifecycle.rs`) reads them at each pass and applies them to the objects that exist then, so a
//! changed configuration applies to existing objects too.

use cairn_s3_proto::S3Error;
use cairn_s3_proto::lifecycle::{
    decode_stored_configuration, encode_stored_configuration, lifecycle_configuration_xml,
    parse_lifecycle_configuration,
};

use crate::body::RequestBody;
use crate::bucket::{owned_bucket, read_verified_document, write_bucket_attribute};
use crate::server::{HttpResponse, RequestContext, xml_response};

/// The attribute name of a bucket's lifecycle configuration.
pub const LIFECYCLE_ATTRIBUTE: &str = "lifecycle";

pub async fn get_bucket_lifecycle(
    context: &RequestContext<'_>,
    bucket: &str,
) -> Result<HttpResponse, S3Error> {
    let record = owned_bucket(context, bucket).await?;
    let stored = record
        .attributes
        .get(LIFECYCLE_ATTRIBUTE)
        .ok_or(S3Error::NoSuchLifecycleConfiguration)?;
    let rules = decode_stored_configuration(stored).inspect_err(|_| {
        tracing::error!(%bucket, "stored lifecycle configuration does not parse");
    })?;
    Ok(xml_response(lifecycle_configuration_xml(&rules)))
}

pub async fn put_bucket_lifecycle(
    context: &RequestContext<'_>,
    bucket: &str,
    body: RequestBody,
) -> Result<HttpResponse, S3Error> {
    owned_bucket(context, bucket).await?;
    let document = read_verified_document(context, body).await?;
    if document.is_empty() {
        return Err(S3Error::MissingRequestBodyError);
    }
    let rules = parse_lifecycle_configuration(&document)?;
    let stored = encode_stored_configuration(&rules);
    if stored.len() > cairn_meta_state::MAX_ATTRIBUTE_VALUE_BYTES {
        return Err(S3Error::MaxMessageLengthExceeded);
    }
    write_bucket_attribute(
        context,
        bucket,
        LIFECYCLE_ATTRIBUTE,
        Some(stored),
        http::StatusCode::OK,
    )
    .await
}

pub async fn delete_bucket_lifecycle(
    context: &RequestContext<'_>,
    bucket: &str,
) -> Result<HttpResponse, S3Error> {
    crate::bucket::delete_bucket_attribute(context, bucket, LIFECYCLE_ATTRIBUTE).await
}
