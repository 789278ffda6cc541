//! ACLs on buckets and objects: canned (`x-amz-acl`) and explicit grants (`x-amz-grant-*`
//! headers, an `AccessControlPolicy` body) on CreateBucket, PutObject, CreateMultipartUpload
//! (applied at completion) and CopyObject, Get/PutBucketAcl and Get/PutObjectAcl, and the grants
//! they add to authorisation ([`bucket_acl_allows`], [`object_acl_allows`]).
//!
//! Model: an ACL is the attribute [`ACL_ATTRIBUTE`] of a bucket or an object version, in the
//! stored form of `cairn_s3_proto::acl::Acl` (a canned name as the name, so values written before
//! explicit grants existed read back unchanged; an explicit list in its versioned text form); no
//! attribute means `private`. (The records' older `acl` field is not consulted: it has no command
//! to change it.) A grantee is a canonical user, whose id is the user name (the owner of the
//! user's access keys, root included: `Owner/ID` of ListBuckets and of the ACL documents), or an
//! S3 group. A grant to an id that no access key (active or revoked) belongs to is refused with
//! `InvalidArgument`, as S3 refuses unknown canonical ids.
//!
//! Authorisation: a resource's owner may always act on it (S3's implicit owner rights); a bucket
//! policy's explicit Deny still wins over everything (see [`crate::policy::authorize`]). Beyond
//! that, bucket grants map to actions as S3's table does: READ lists objects, versions and
//! uploads; WRITE creates, overwrites and deletes objects (and aborts uploads); READ_ACP and
//! WRITE_ACP read and replace the bucket's ACL. Object grants: READ reads the object (GET, HEAD,
//! copy source), READ_ACP and WRITE_ACP its ACL. FULL_CONTROL is all of them. Bucket grants never
//! open an object's content.
//!
//! Block Public Access (Put/Get/DeletePublicAccessBlock, the bucket attribute
//! [`PUBLIC_ACCESS_BLOCK_ATTRIBUTE`]) is honoured: `BlockPublicAcls` refuses setting an ACL that
//! grants anything to AllUsers or AuthenticatedUsers (canned or explicit, header or body),
//! `IgnorePublicAcls` voids such grants on the bucket and its objects, `BlockPublicPolicy`
//! refuses a public policy, `RestrictPublicBuckets` limits a bucket with a public policy to its
//! owner.

use cairn_meta_state::{Attributes, BucketRecord, ObjectRecord, Query, Response};
use cairn_s3_proto::S3Error;
use cairn_s3_proto::acl::{
    Acl, AclPermission, CannedAcl, Grant, Grantee, PublicAccessBlock, access_control_policy_xml,
    grants_allow, parse_access_control_policy, parse_grant_headers,
};

use crate::body::RequestBody;
use crate::bucket::owned_bucket;
use crate::bucket::write_bucket_attribute;
use crate::object::write_object_attribute;
use crate::object::{insert_version_id, read_record, version_selector};
use crate::server::{HttpResponse, RequestContext, xml_response};

/// The attribute name of an ACL, on buckets and on object versions.
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

/// `BlockPublicAcls`: a request whose headers set a public ACL (one granting anything to
/// everyone or to every signed-in user, canned or by grant headers) on this bucket or its
/// objects is refused. (An ACL body is checked by the Put*Acl handlers once parsed.)
pub(crate) fn check_block_public_acls(
    context: &RequestContext<'_>,
    record: &BucketRecord,
) -> Result<(), S3Error> {
    let sets_acl = matches!(
        context.action,
        "s3:PutObject" | "s3:PutObjectAcl" | "s3:PutObjectVersionAcl" | "s3:PutBucketAcl"
    );
    // A request whose ACL headers do not parse fails later with the parse error.
    if sets_acl
        && public_access_block(record).block_public_acls
        && let Ok(Some(acl)) = requested_acl(context)
        && acl.is_public()
    {
        return Err(S3Error::AccessDenied);
    }
    Ok(())
}

/// The stored ACL of a bucket or object version. A value this module did not write is logged
/// and read as `private` (it then grants nothing beyond the owner: failing closed).
fn acl_of(attributes: &Attributes) -> Acl {
    match attributes.get(ACL_ATTRIBUTE) {
        None => Acl::Canned(CannedAcl::Private),
        Some(stored) => Acl::decode(stored).unwrap_or_else(|| {
            tracing::error!("stored ACL does not decode; treated as private");
            Acl::Canned(CannedAcl::Private)
        }),
    }
}

/// The ACL a request's headers ask for: `x-amz-acl` or `x-amz-grant-*`, never both (S3's
/// `InvalidRequest`).
fn requested_acl(context: &RequestContext<'_>) -> Result<Option<Acl>, S3Error> {
    let canned = context
        .header("x-amz-acl")
        .map(CannedAcl::parse)
        .transpose()?;
    let grants = parse_grant_headers(context.headers)?;
    match (canned, grants) {
        (Some(_), Some(_)) => Err(S3Error::InvalidRequest(
            "Specifying both Canned ACLs and Header Grants is not allowed".to_owned(),
        )),
        (Some(canned), None) => Ok(Some(Acl::Canned(canned))),
        (None, Some(grants)) => Ok(Some(Acl::Grants(grants))),
        (None, None) => Ok(None),
    }
}

/// Adds the ACL of a creating request's headers (bucket or object) to its attributes; `private`
/// is the default and is not stored. The grantees are checked by [`check_requested_grantees`].
pub(crate) fn insert_requested_acl(
    context: &RequestContext<'_>,
    attributes: &mut Attributes,
) -> Result<(), S3Error> {
    if let Some(acl) = requested_acl(context)?
        && let Some(stored) = acl.encode()
    {
        attributes.insert(ACL_ATTRIBUTE.to_owned(), stored);
    }
    Ok(())
}

/// Checks that every canonical user the request's grant headers name is a user (a request
/// without grant headers passes).
pub(crate) async fn check_requested_grantees(context: &RequestContext<'_>) -> Result<(), S3Error> {
    match requested_acl(context)? {
        Some(Acl::Grants(grants)) => check_grantees(context, &grants).await,
        _ => Ok(()),
    }
}

/// Every canonical id among `grants` must belong to a user: someone an access key (active or
/// revoked) was made for. S3 answers an unknown canonical id with `InvalidArgument`.
async fn check_grantees(context: &RequestContext<'_>, grants: &[Grant]) -> Result<(), S3Error> {
    let mut checked: Vec<&str> = Vec::new();
    for grant in grants {
        let Grantee::CanonicalUser(id) = &grant.grantee else {
            continue;
        };
        if checked.contains(&id.as_str()) || *id == context.caller.owner {
            continue;
        }
        let answer = context
            .executor
            .meta_query(Query::ListAccessKeys {
                owner: Some(id.clone()),
            })
            .await?;
        match answer {
            Response::AccessKeys(keys) if keys.iter().any(|key| key.owner == *id) => {}
            Response::AccessKeys(_) => {
                return Err(S3Error::InvalidArgument("Invalid id".to_owned()));
            }
            _ => return Err(S3Error::InternalError),
        }
        checked.push(id);
    }
    Ok(())
}

/// The bucket permission an action needs from the bucket's ACL, if a bucket grant can allow it.
fn bucket_permission(action: &str) -> Option<AclPermission> {
    Some(match action {
        "s3:ListBucket" | "s3:ListBucketVersions" | "s3:ListBucketMultipartUploads" => {
            AclPermission::Read
        }
        "s3:PutObject"
        | "s3:DeleteObject"
        | "s3:DeleteObjectVersion"
        | "s3:AbortMultipartUpload" => AclPermission::Write,
        "s3:GetBucketAcl" => AclPermission::ReadAcp,
        "s3:PutBucketAcl" => AclPermission::WriteAcp,
        _ => return None,
    })
}

/// The object permission an action needs from an object version's ACL, if an object grant can
/// allow it.
pub(crate) fn object_permission(action: &str) -> Option<AclPermission> {
    Some(match action {
        "s3:GetObject" | "s3:GetObjectVersion" => AclPermission::Read,
        "s3:GetObjectAcl" | "s3:GetObjectVersionAcl" => AclPermission::ReadAcp,
        "s3:PutObjectAcl" | "s3:PutObjectVersionAcl" => AclPermission::WriteAcp,
        _ => return None,
    })
}

/// Whether the bucket's ACL grants `action` to the caller.
pub(crate) fn bucket_acl_allows(
    context: &RequestContext<'_>,
    record: &BucketRecord,
    action: &str,
) -> bool {
    let Some(permission) = bucket_permission(action) else {
        return false;
    };
    grants_allow(
        &acl_of(&record.attributes).grants(&record.owner, &record.owner),
        permission,
        context.caller.principal(),
        public_access_block(record).ignore_public_acls,
    )
}

/// Whether an object version's ACL grants `permission` to the caller.
pub(crate) fn object_acl_allows(
    context: &RequestContext<'_>,
    bucket: &BucketRecord,
    record: &ObjectRecord,
    permission: AclPermission,
) -> bool {
    grants_allow(
        &acl_of(&record.attributes).grants(&record.owner, &bucket.owner),
        permission,
        context.caller.principal(),
        public_access_block(bucket).ignore_public_acls,
    )
}

pub async fn get_bucket_acl(
    context: &RequestContext<'_>,
    bucket: &str,
) -> Result<HttpResponse, S3Error> {
    let record = owned_bucket(context, bucket).await?;
    let grants = acl_of(&record.attributes).grants(&record.owner, &record.owner);
    Ok(xml_response(access_control_policy_xml(
        &record.owner,
        &grants,
    )))
}

/// The ACL a Put*Acl request sets on a resource owned by `owner`: the `x-amz-acl` or
/// `x-amz-grant-*` headers, or else an `AccessControlPolicy` body (S3 refuses both together
/// with `UnexpectedContent`). Grantees are checked, and so is `BlockPublicAcls`.
async fn put_acl_request(
    context: &RequestContext<'_>,
    bucket: &BucketRecord,
    owner: &str,
    body: RequestBody,
) -> Result<Acl, S3Error> {
    let document = crate::bucket::read_verified_document(context, body).await?;
    let has_body = !document.iter().all(u8::is_ascii_whitespace);
    let acl = match requested_acl(context)? {
        Some(_) if has_body => return Err(S3Error::UnexpectedContent),
        Some(acl) => acl,
        None if !has_body => {
            return Err(S3Error::MissingSecurityHeader("x-amz-acl".to_owned()));
        }
        None => {
            let policy = parse_access_control_policy(&document)?;
            // An ACL cannot change who owns the resource.
            if policy.owner_id.as_deref().is_some_and(|id| id != owner) {
                return Err(S3Error::AccessDenied);
            }
            Acl::Grants(policy.grants)
        }
    };
    if let Acl::Grants(grants) = &acl {
        check_grantees(context, grants).await?;
    }
    if acl.is_public() && public_access_block(bucket).block_public_acls {
        return Err(S3Error::AccessDenied);
    }
    Ok(acl)
}

pub async fn put_bucket_acl(
    context: &RequestContext<'_>,
    bucket: &str,
    body: RequestBody,
) -> Result<HttpResponse, S3Error> {
    let record = owned_bucket(context, bucket).await?;
    let acl = put_acl_request(context, &record, &record.owner, body).await?;
    write_bucket_attribute(
        context,
        bucket,
        ACL_ATTRIBUTE,
        acl.encode(),
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
    let grants = acl_of(&record.attributes).grants(&record.owner, &bucket_record.owner);
    let mut response = xml_response(access_control_policy_xml(&record.owner, &grants));
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
    let record = read_record(context, bucket, key, version_selector(version_id)?).await?;
    let acl = put_acl_request(context, &bucket_record, &record.owner, body).await?;
    write_object_attribute(
        context,
        &bucket_record,
        key,
        version_id,
        ACL_ATTRIBUTE,
        acl.encode(),
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
    crate::bucket::delete_bucket_attribute(context, bucket, PUBLIC_ACCESS_BLOCK_ATTRIBUTE).await
}
