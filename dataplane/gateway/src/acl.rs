//! Canned ACLs on buckets and objects: `x-amz-acl` on CreateBucket, PutObject,
//! CreateMultipartUpload and CopyObject, Get/PutBucketAcl and Get/PutObjectAcl, and the grants
//! they add to authorisation ([`bucket_acl_allows`], [`object_acl_allows`]).
//!
//! Model: an ACL is the attribute [`ACL_ATTRIBUTE`] of a bucket or an object version holding a
//! canned ACL name (`cairn_s3_proto::acl::CannedAcl`); no attribute means `private`. (The records'
//! older `acl` field is not consulted: it has no command to change it.) Explicit grants (an
//! `AccessControlPolicy` body or `x-amz-grant-*` headers) are not supported and answer
//! `NotImplemented`. What each canned ACL grants is S3's table: on a bucket READ lets listing
//! through and WRITE object creation and deletion; on an object READ lets GetObject/HeadObject
//! through. A bucket policy's explicit Deny still wins (see [`crate::policy::authorize`]).
//!
//! Block Public Access (Put/Get/DeletePublicAccessBlock, the bucket attribute
//! [`PUBLIC_ACCESS_BLOCK_ATTRIBUTE`]) is honoured: `BlockPublicAcls` refuses setting a public
//! canned ACL, `IgnorePublicAcls` voids canned grants, `BlockPublicPolicy` refuses a public
//! policy, `RestrictPublicBuckets` limits a bucket with a public policy to its owner.

use cairn_meta_state::{Attributes, BucketRecord, ObjectRecord};
use cairn_s3_proto::S3Error;
use cairn_s3_proto::acl::{AclPermission, CannedAcl, PublicAccessBlock, access_control_policy_xml};

use crate::body::RequestBody;
use crate::bucket::owned_bucket;
use crate::bucket::write_bucket_attribute;
use crate::object::write_object_attribute;
use crate::object::{insert_version_id, read_record, version_selector};
use crate::server::{HttpResponse, RequestContext, xml_response};

/// The attribute name of a canned ACL, on buckets and on object versions.
pub const ACL_ATTRIBUTE: &str = "acl";
/// The attribute name of a bucket's Block Public Access settings.
pub const PUBLIC_ACCESS_BLOCK_ATTRIBUTE: &str = "public-access-block";

/// A bucket's Block Public Access settings (all off when none are stored).
pub(crate) fn public_access_block(record: &BucketRecord) -> PublicAccessBlock {
    record
        .attributes
        .get(PUBLIC_ACCESS_BLOCK_ATTRIBUTE)
        .and_then(|stored| PublicAccessBlock::decode(stored))
        .unwrap_or_default()
}

/// `BlockPublicAcls`: a request setting a public canned ACL (one granting everyone or every
/// signed-in user) on this bucket or its objects is refused.
pub(crate) fn check_block_public_acls(
    context: &RequestContext<'_>,
    record: &BucketRecord,
) -> Result<(), S3Error> {
    let sets_acl = matches!(
        context.action,
        "s3:PutObject" | "s3:PutObjectAcl" | "s3:PutObjectVersionAcl" | "s3:PutBucketAcl"
    );
    if sets_acl
        && public_access_block(record).block_public_acls
        && let Some(Ok(acl)) = context.header("x-amz-acl").map(CannedAcl::parse)
        && (acl.is_public() || acl == CannedAcl::AuthenticatedRead)
    {
        return Err(S3Error::AccessDenied);
    }
    Ok(())
}

fn acl_of(attributes: &Attributes) -> CannedAcl {
    attributes
        .get(ACL_ATTRIBUTE)
        .and_then(|stored| std::str::from_utf8(stored).ok())
        .and_then(|name| CannedAcl::parse(name).ok())
        .unwrap_or(CannedAcl::Private)
}

fn refuse_explicit_grants(context: &RequestContext<'_>) -> Result<(), S3Error> {
    if context
        .headers
        .iter()
        .any(|(name, _)| name.starts_with("x-amz-grant-"))
    {
        return Err(S3Error::NotImplemented);
    }
    Ok(())
}

/// The ACL named by `x-amz-acl`, if any (explicit grant headers are not supported).
fn requested_acl(context: &RequestContext<'_>) -> Result<Option<CannedAcl>, S3Error> {
    refuse_explicit_grants(context)?;
    context
        .header("x-amz-acl")
        .map(CannedAcl::parse)
        .transpose()
}

/// Adds the `x-amz-acl` of a creating request (bucket or object) to its attributes; `private`
/// is the default and is not stored.
pub(crate) fn insert_requested_acl(
    context: &RequestContext<'_>,
    attributes: &mut Attributes,
) -> Result<(), S3Error> {
    if let Some(acl) = requested_acl(context)?
        && acl != CannedAcl::Private
    {
        attributes.insert(ACL_ATTRIBUTE.to_owned(), acl.name().as_bytes().to_vec());
    }
    Ok(())
}

/// Whether the bucket's ACL grants `action` to a caller who is not the bucket's owner.
pub(crate) fn bucket_acl_allows(
    context: &RequestContext<'_>,
    record: &BucketRecord,
    action: &str,
) -> bool {
    let permission = match action {
        "s3:ListBucket" | "s3:ListBucketVersions" | "s3:ListBucketMultipartUploads" => {
            AclPermission::Read
        }
        "s3:PutObject"
        | "s3:DeleteObject"
        | "s3:DeleteObjectVersion"
        | "s3:AbortMultipartUpload" => AclPermission::Write,
        _ => return false,
    };
    acl_of(&record.attributes).grants(permission, !context.caller.is_anonymous(), false)
}

/// Whether an object version's ACL lets a caller (not the bucket's owner) read it.
pub(crate) fn object_acl_allows(
    context: &RequestContext<'_>,
    bucket: &BucketRecord,
    record: &ObjectRecord,
) -> bool {
    if public_access_block(bucket).ignore_public_acls {
        return false;
    }
    acl_of(&record.attributes).grants(AclPermission::Read, !context.caller.is_anonymous(), false)
}

pub async fn get_bucket_acl(
    context: &RequestContext<'_>,
    bucket: &str,
) -> Result<HttpResponse, S3Error> {
    let record = owned_bucket(context, bucket).await?;
    Ok(xml_response(access_control_policy_xml(
        &record.owner,
        &record.owner,
        acl_of(&record.attributes),
    )))
}

/// The canned ACL of a Put*Acl request: the `x-amz-acl` header; a grants document instead is
/// not supported.
async fn put_acl_request(
    context: &RequestContext<'_>,
    mut body: RequestBody,
) -> Result<CannedAcl, S3Error> {
    let document = body
        .read_to_end(context.executor.shared.config.max_xml_body_bytes)
        .await?;
    body.finish()?;
    match requested_acl(context)? {
        Some(acl) if document.iter().all(u8::is_ascii_whitespace) => Ok(acl),
        Some(_) => Err(S3Error::InvalidRequest(
            "Specifying both Canned ACLs and Header Grants is not allowed".to_owned(),
        )),
        None if document.iter().all(u8::is_ascii_whitespace) => {
            Err(S3Error::MissingSecurityHeader("x-amz-acl".to_owned()))
        }
        None => Err(S3Error::NotImplemented),
    }
}

fn stored(acl: CannedAcl) -> Option<Vec<u8>> {
    (acl != CannedAcl::Private).then(|| acl.name().as_bytes().to_vec())
}

pub async fn put_bucket_acl(
    context: &RequestContext<'_>,
    bucket: &str,
    body: RequestBody,
) -> Result<HttpResponse, S3Error> {
    owned_bucket(context, bucket).await?;
    let acl = put_acl_request(context, body).await?;
    write_bucket_attribute(
        context,
        bucket,
        ACL_ATTRIBUTE,
        stored(acl),
        http::StatusCode::OK,
    )
    .await
}

pub async fn get_object_acl(
    context: &RequestContext<'_>,
    bucket: &str,
    key: &str,
    version_id: Option<&str>,
) -> Result<HttpResponse, S3Error> {
    let bucket_record = owned_bucket(context, bucket).await?;
    let record = read_record(context, bucket, key, version_selector(version_id)?).await?;
    let mut response = xml_response(access_control_policy_xml(
        &record.owner,
        &bucket_record.owner,
        acl_of(&record.attributes),
    ));
    insert_version_id(&mut response, bucket_record.versioning, &record);
    Ok(response)
}

pub async fn put_object_acl(
    context: &RequestContext<'_>,
    bucket: &str,
    key: &str,
    version_id: Option<&str>,
    body: RequestBody,
) -> Result<HttpResponse, S3Error> {
    let bucket_record = owned_bucket(context, bucket).await?;
    let acl = put_acl_request(context, body).await?;
    write_object_attribute(
        context,
        &bucket_record,
        key,
        version_id,
        ACL_ATTRIBUTE,
        stored(acl),
        http::StatusCode::OK,
    )
    .await
}

pub async fn get_public_access_block(
    context: &RequestContext<'_>,
    bucket: &str,
) -> Result<HttpResponse, S3Error> {
    let record = owned_bucket(context, bucket).await?;
    let stored = record
        .attributes
        .get(PUBLIC_ACCESS_BLOCK_ATTRIBUTE)
        .and_then(|stored| PublicAccessBlock::decode(stored))
        .ok_or(S3Error::NoSuchPublicAccessBlockConfiguration)?;
    Ok(xml_response(stored.to_xml()))
}

pub async fn put_public_access_block(
    context: &RequestContext<'_>,
    bucket: &str,
    body: RequestBody,
) -> Result<HttpResponse, S3Error> {
    owned_bucket(context, bucket).await?;
    let document = crate::bucket::read_verified_document(context, body).await?;
    let settings = PublicAccessBlock::parse(&document)?;
    write_bucket_attribute(
        context,
        bucket,
        PUBLIC_ACCESS_BLOCK_ATTRIBUTE,
        Some(settings.encode()),
        http::StatusCode::OK,
    )
    .await
}

pub async fn delete_public_access_block(
    context: &RequestContext<'_>,
    bucket: &str,
) -> Result<HttpResponse, S3Error> {
    owned_bucket(context, bucket).await?;
    write_bucket_attribute(
        context,
        bucket,
        PUBLIC_ACCESS_BLOCK_ATTRIBUTE,
        None,
        http::StatusCode::NO_CONTENT,
    )
    .await
}
