//! Object and bucket tagging: Put/Get/DeleteObjectTagging (any version), Put/Get/DeleteBucketTagging,
//! `x-amz-tagging` on PutObject, CreateMultipartUpload and CopyObject (with
//! `x-amz-tagging-directive`), and `x-amz-tagging-count` on GetObject/HeadObject.
//!
//! Model: a tag set is the attribute [`TAGGING_ATTRIBUTE`] of an object version or a bucket, in
//! the stored form of `cairn_s3_proto::tagging` (validated before it is proposed, so every stored
//! set is within S3's limits). An empty set is stored as no attribute: GetObjectTagging then
//! answers an empty `TagSet` and GetBucketTagging `NoSuchTagSet`, as S3 does.

use cairn_meta_state::{Attributes, ObjectRecord};
use cairn_s3_proto::S3Error;
use cairn_s3_proto::tagging::{
    Tag, TagTarget, decode_stored_tags, encode_stored_tags, parse_tagging, parse_tagging_header,
    tagging_xml,
};

use crate::body::RequestBody;
use crate::bucket::write_bucket_attribute;
use crate::bucket::{owned_bucket, read_verified_document};
use crate::object::write_object_attribute;
use crate::object::{insert_version_id, read_record, version_selector};
use crate::server::{HttpResponse, RequestContext, xml_response};

/// The attribute name of a tag set, on object versions and on buckets.
pub const TAGGING_ATTRIBUTE: &str = "tagging";

fn stored_value(tags: &[Tag]) -> Option<Vec<u8>> {
    (!tags.is_empty()).then(|| encode_stored_tags(tags))
}

/// The tags of a record's attribute map (none when absent). A stored value that does not decode
/// was not written by this module: it is logged and reported as an internal error.
fn tags_of(attributes: &Attributes) -> Result<Vec<Tag>, S3Error> {
    match attributes.get(TAGGING_ATTRIBUTE) {
        None => Ok(Vec::new()),
        Some(stored) => decode_stored_tags(stored).inspect_err(|_| {
            tracing::error!("stored tag set does not decode");
        }),
    }
}

/// The attributes a new object starts with: the tags of `x-amz-tagging` and the canned ACL of
/// `x-amz-acl`, when present.
pub(crate) fn request_attributes(context: &RequestContext<'_>) -> Result<Attributes, S3Error> {
    let mut attributes = Attributes::new();
    crate::acl::insert_requested_acl(context, &mut attributes)?;
    if let Some(header) = context.header("x-amz-tagging") {
        let tags = parse_tagging_header(header)?;
        if let Some(value) = stored_value(&tags) {
            attributes.insert(TAGGING_ATTRIBUTE.to_owned(), value);
        }
    }
    Ok(attributes)
}

/// The attributes of a CopyObject's new version: the source's tags under
/// `x-amz-tagging-directive: COPY` (the default), the request's `x-amz-tagging` under `REPLACE`.
pub(crate) fn copy_attributes(
    context: &RequestContext<'_>,
    source: &ObjectRecord,
) -> Result<Attributes, S3Error> {
    match context.header("x-amz-tagging-directive") {
        None | Some("COPY") => {
            // The new object's ACL is the request's, never the source's (as in S3).
            let mut attributes = Attributes::new();
            crate::acl::insert_requested_acl(context, &mut attributes)?;
            if let Some(value) = source.attributes.get(TAGGING_ATTRIBUTE) {
                attributes.insert(TAGGING_ATTRIBUTE.to_owned(), value.clone());
            }
            Ok(attributes)
        }
        Some("REPLACE") => request_attributes(context),
        Some(_) => Err(S3Error::InvalidArgument(
            "Unknown tagging directive.".to_owned(),
        )),
    }
}

/// `x-amz-tagging-count` of a GET/HEAD response, when the version has tags.
pub(crate) fn tagging_count(record: &ObjectRecord) -> Option<usize> {
    let count = tags_of(&record.attributes).map_or(0, |tags| tags.len());
    (count > 0).then_some(count)
}

pub async fn get_object_tagging(
    context: &RequestContext<'_>,
    bucket: &str,
    key: &str,
    version_id: Option<&str>,
) -> Result<HttpResponse, S3Error> {
    let bucket_record = owned_bucket(context, bucket).await?;
    let record = read_record(context, bucket, key, version_selector(version_id)?).await?;
    let mut response = xml_response(tagging_xml(&tags_of(&record.attributes)?));
    insert_version_id(&mut response, bucket_record.versioning, &record);
    Ok(response)
}

async fn set_object_tags(
    context: &RequestContext<'_>,
    bucket: &str,
    key: &str,
    version_id: Option<&str>,
    value: Option<Vec<u8>>,
    status: http::StatusCode,
) -> Result<HttpResponse, S3Error> {
    let bucket_record = owned_bucket(context, bucket).await?;
    write_object_attribute(
        context,
        &bucket_record,
        key,
        version_id,
        TAGGING_ATTRIBUTE,
        value,
        status,
    )
    .await
}

pub async fn put_object_tagging(
    context: &RequestContext<'_>,
    bucket: &str,
    key: &str,
    version_id: Option<&str>,
    body: RequestBody,
) -> Result<HttpResponse, S3Error> {
    owned_bucket(context, bucket).await?;
    let document = read_verified_document(context, body).await?;
    let tags = parse_tagging(&document, TagTarget::Object)?;
    set_object_tags(
        context,
        bucket,
        key,
        version_id,
        stored_value(&tags),
        http::StatusCode::OK,
    )
    .await
}

pub async fn delete_object_tagging(
    context: &RequestContext<'_>,
    bucket: &str,
    key: &str,
    version_id: Option<&str>,
) -> Result<HttpResponse, S3Error> {
    set_object_tags(
        context,
        bucket,
        key,
        version_id,
        None,
        http::StatusCode::NO_CONTENT,
    )
    .await
}

pub async fn get_bucket_tagging(
    context: &RequestContext<'_>,
    bucket: &str,
) -> Result<HttpResponse, S3Error> {
    let record = owned_bucket(context, bucket).await?;
    let tags = tags_of(&record.attributes)?;
    if tags.is_empty() {
        return Err(S3Error::NoSuchTagSet);
    }
    Ok(xml_response(tagging_xml(&tags)))
}

async fn set_bucket_tags(
    context: &RequestContext<'_>,
    bucket: &str,
    value: Option<Vec<u8>>,
) -> Result<HttpResponse, S3Error> {
    write_bucket_attribute(
        context,
        bucket,
        TAGGING_ATTRIBUTE,
        value,
        http::StatusCode::NO_CONTENT,
    )
    .await
}

pub async fn put_bucket_tagging(
    context: &RequestContext<'_>,
    bucket: &str,
    body: RequestBody,
) -> Result<HttpResponse, S3Error> {
    owned_bucket(context, bucket).await?;
    let document = read_verified_document(context, body).await?;
    let tags = parse_tagging(&document, TagTarget::Bucket)?;
    set_bucket_tags(context, bucket, stored_value(&tags)).await
}

pub async fn delete_bucket_tagging(
    context: &RequestContext<'_>,
    bucket: &str,
) -> Result<HttpResponse, S3Error> {
    owned_bucket(context, bucket).await?;
    set_bucket_tags(context, bucket, None).await
}
