//! Bucket policies: Put/Get/DeleteBucketPolicy and GetBucketPolicyStatus, and the authorisation
//! of every bucket and object request ([`authorize`]).
//!
//! Model: the policy document is the bucket attribute [`POLICY_ATTRIBUTE`], stored as the client
//! sent it once `cairn_s3_proto::policy::BucketPolicy::parse` accepted it. Authorisation, per
//! request:
//! 1. Policy management (Get/Put/DeleteBucketPolicy, GetBucketPolicyStatus) is the owner's alone,
//!    whatever the policy says, so an owner can never lock itself out.
//! 2. An explicit `Deny` that applies refuses the request (the owner included).
//! 3. An applicable `Allow` allows it, for any user and for anonymous callers.
//! 4. Otherwise the owner may, and others where the bucket's ACL (or, for reading an object or
//!    its ACL and replacing its ACL, the object's) grants it (see [`crate::acl`]).
//!
//! The request facts a policy sees: the caller (user name, or anonymous), the action
//! ([`cairn_s3_proto::Endpoint::policy_action`]), the resource `arn:aws:s3:::bucket[/key]`
//! (DeleteObjects is checked per key), and the condition keys `aws:SourceIp`,
//! `aws:SecureTransport` (always false: the gateway serves plain HTTP), `aws:CurrentTime`,
//! `aws:EpochTime`, `aws:UserAgent`, `aws:Referer`, `aws:username`, `aws:PrincipalType`,
//! `s3:prefix`, `s3:delimiter`, `s3:max-keys`, `s3:VersionId`, `s3:x-amz-acl`,
//! `s3:x-amz-copy-source`, `s3:x-amz-storage-class` and `s3:x-amz-grant-*` when the request
//! has them.

use std::collections::BTreeMap;

use cairn_meta_state::BucketRecord;
use cairn_s3_proto::S3Error;
use cairn_s3_proto::policy::{BucketPolicy, Decision, RequestFacts};

use crate::body::RequestBody;
use crate::bucket::write_bucket_attribute;
use crate::bucket::{owned_bucket, read_verified_document};
use crate::server::{HttpResponse, RequestContext, now_unix_millis, xml_response};

/// The attribute name of a bucket's policy document.
pub const POLICY_ATTRIBUTE: &str = "policy";

const POLICY_MANAGEMENT: [&str; 4] = [
    "s3:GetBucketPolicy",
    "s3:PutBucketPolicy",
    "s3:DeleteBucketPolicy",
    "s3:GetBucketPolicyStatus",
];

/// The bucket's policy, when it has one. A stored document that no longer parses was not
/// written through PutBucketPolicy: logged, and the request fails closed.
fn stored_policy(record: &BucketRecord) -> Result<Option<BucketPolicy>, S3Error> {
    match record.attributes.get(POLICY_ATTRIBUTE) {
        None => Ok(None),
        Some(document) => BucketPolicy::parse(document, &record.name)
            .map(Some)
            .map_err(|error| {
                tracing::error!(bucket = %record.name, %error, "stored bucket policy does not parse");
                S3Error::InternalError
            }),
    }
}

fn condition_context(context: &RequestContext<'_>) -> BTreeMap<String, Vec<String>> {
    let mut keys: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut put = |key: &str, value: String| keys.entry(key.to_owned()).or_default().push(value);
    put("aws:sourceip", context.peer.ip().to_string());
    put("aws:securetransport", "false".to_owned());
    let now_ms = now_unix_millis();
    put(
        "aws:currenttime",
        cairn_s3_proto::time::format_iso8601_millis(now_ms as i64),
    );
    put("aws:epochtime", (now_ms / 1000).to_string());
    if let Some(agent) = context.header("user-agent") {
        put("aws:useragent", agent.to_owned());
    }
    if let Some(referer) = context.header("referer") {
        put("aws:referer", referer.to_owned());
    }
    match context.caller.principal() {
        Some(user) => {
            put("aws:username", user.to_owned());
            put("aws:principaltype", "User".to_owned());
        }
        None => put("aws:principaltype", "Anonymous".to_owned()),
    }
    if let Ok(pairs) = cairn_s3_proto::encoding::parse_query(context.raw_query) {
        for (name, value) in pairs {
            match name.as_str() {
                "prefix" => put("s3:prefix", value),
                "delimiter" => put("s3:delimiter", value),
                "max-keys" => put("s3:max-keys", value),
                "versionId" => put("s3:versionid", value),
                _ => {}
            }
        }
    }
    for (header, key) in [
        ("x-amz-acl", "s3:x-amz-acl"),
        ("x-amz-copy-source", "s3:x-amz-copy-source"),
        ("x-amz-storage-class", "s3:x-amz-storage-class"),
        ("x-amz-grant-read", "s3:x-amz-grant-read"),
        ("x-amz-grant-write", "s3:x-amz-grant-write"),
        ("x-amz-grant-read-acp", "s3:x-amz-grant-read-acp"),
        ("x-amz-grant-write-acp", "s3:x-amz-grant-write-acp"),
        ("x-amz-grant-full-control", "s3:x-amz-grant-full-control"),
    ] {
        if let Some(value) = context.header(header) {
            put(key, value.to_owned());
        }
    }
    keys
}

/// Whether the caller may perform `action` on `record` (and `key` in it); see the module header.
/// `Ok(false)`: nothing grants it (an object's own ACL may still, see
/// [`crate::bucket::owned_bucket`]); `Err(AccessDenied)`: a policy explicitly denies it.
pub(crate) fn authorize(
    context: &RequestContext<'_>,
    record: &BucketRecord,
    action: &str,
    key: Option<&str>,
) -> Result<bool, S3Error> {
    let is_owner = !context.caller.is_anonymous() && record.owner == context.caller.owner;
    if POLICY_MANAGEMENT.contains(&action) {
        return Ok(is_owner);
    }
    let restrict_public = crate::acl::public_access_block(record).restrict_public_buckets;
    let decision = match stored_policy(record)? {
        None => Decision::NoMatch,
        Some(policy) => {
            let ignore_allows = restrict_public && policy.is_public() && !is_owner;
            let resource = match key {
                Some(key) => format!("arn:aws:s3:::{}/{key}", record.name),
                None => format!("arn:aws:s3:::{}", record.name),
            };
            match policy.evaluate(&RequestFacts {
                principal: context.caller.principal(),
                action,
                resource: &resource,
                context: condition_context(context),
            }) {
                // RestrictPublicBuckets: a public policy grants nothing beyond the owner.
                Decision::Allow if ignore_allows => Decision::NoMatch,
                decision => decision,
            }
        }
    };
    match decision {
        Decision::Deny => Err(S3Error::AccessDenied),
        Decision::Allow => Ok(true),
        Decision::NoMatch => Ok(is_owner || crate::acl::bucket_acl_allows(context, record, action)),
    }
}

pub async fn get_bucket_policy(
    context: &RequestContext<'_>,
    bucket: &str,
) -> Result<HttpResponse, S3Error> {
    let record = owned_bucket(context, bucket).await?;
    let document = record
        .attributes
        .get(POLICY_ATTRIBUTE)
        .ok_or(S3Error::NoSuchBucketPolicy)?;
    Ok(http::Response::builder()
        .status(http::StatusCode::OK)
        .header("content-type", "application/json")
        .body(crate::server::full_body(document.clone()))
        .expect("static headers are valid"))
}

pub async fn put_bucket_policy(
    context: &RequestContext<'_>,
    bucket: &str,
    body: RequestBody,
) -> Result<HttpResponse, S3Error> {
    let record = owned_bucket(context, bucket).await?;
    let document = read_verified_document(context, body).await?;
    let policy = BucketPolicy::parse(&document, bucket)?;
    if policy.is_public() && crate::acl::public_access_block(&record).block_public_policy {
        return Err(S3Error::AccessDenied);
    }
    set_policy(context, bucket, Some(document)).await
}

pub async fn delete_bucket_policy(
    context: &RequestContext<'_>,
    bucket: &str,
) -> Result<HttpResponse, S3Error> {
    owned_bucket(context, bucket).await?;
    set_policy(context, bucket, None).await
}

async fn set_policy(
    context: &RequestContext<'_>,
    bucket: &str,
    value: Option<Vec<u8>>,
) -> Result<HttpResponse, S3Error> {
    write_bucket_attribute(
        context,
        bucket,
        POLICY_ATTRIBUTE,
        value,
        http::StatusCode::NO_CONTENT,
    )
    .await
}

/// GetBucketPolicyStatus: `IsPublic` when the policy allows anyone without a source restriction.
pub async fn get_bucket_policy_status(
    context: &RequestContext<'_>,
    bucket: &str,
) -> Result<HttpResponse, S3Error> {
    let record = owned_bucket(context, bucket).await?;
    let policy = stored_policy(&record)?.ok_or(S3Error::NoSuchBucketPolicy)?;
    let mut writer = cairn_s3_proto::xml::XmlWriter::new();
    writer.open_root("PolicyStatus");
    writer.bool_element("IsPublic", policy.is_public());
    writer.close("PolicyStatus");
    Ok(xml_response(writer.finish()))
}
