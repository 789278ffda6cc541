//! Bucket operations, all answered by the bucket-service Raft group (plus every object
//! partition for DeleteBucket's emptiness check).
//!
//! DeleteBucket model: each partition is sealed first (it then refuses new versions and uploads
//! in the bucket and reports what it holds), so no write can slip in between the emptiness check
//! and the delete; if any partition holds something the seals are lifted and the answer is
//! BucketNotEmpty. CreateBucket lifts any seal a previous DeleteBucket of the same name left.

use cairn_meta_state::{Acl, BucketRecord, Command, CreateBucket, Query, Response};
use cairn_raft::MetaClient;
use cairn_s3_proto::S3Error;
use cairn_s3_proto::xml::{
    BucketSummary, Owner, list_buckets_xml, location_constraint_xml,
    parse_create_bucket_configuration, versioning_configuration_xml,
};

use crate::body::RequestBody;
use crate::errors::{client_error_to_s3, meta_error_to_s3};
use crate::server::{HttpResponse, RequestContext, empty_body, now_unix_millis, xml_response};

/// Reads a bucket and checks that the caller may perform the request's action on it (see
/// [`crate::policy::authorize`]: the owner may unless the bucket policy denies it, anyone else
/// only when the bucket policy or an ACL allows it). A request creating an object with
/// `x-amz-grant-*` headers must name existing users ([`crate::acl::check_requested_grantees`]).
pub async fn owned_bucket(
    context: &RequestContext<'_>,
    bucket: &str,
) -> Result<BucketRecord, S3Error> {
    let record = authorized_bucket(context, bucket).await?;
    if context.action == "s3:PutObject" {
        crate::acl::check_requested_grantees(context).await?;
    }
    Ok(record)
}

async fn authorized_bucket(
    context: &RequestContext<'_>,
    bucket: &str,
) -> Result<BucketRecord, S3Error> {
    let record = read_bucket(context, bucket).await?;
    crate::acl::check_block_public_acls(context, &record)?;
    let key = context.object_key.as_deref();
    if crate::policy::authorize(context, &record, context.action, key)? {
        return Ok(record);
    }
    // Reading an object or its ACL, or replacing its ACL: the object's own ACL may grant what
    // the bucket does not.
    if let (Some(key), Some(permission)) = (key, crate::acl::object_permission(context.action)) {
        let version_id = cairn_s3_proto::encoding::parse_query(context.raw_query)
            .map_err(|_| S3Error::InvalidUri)?
            .into_iter()
            .find(|(name, _)| name == "versionId")
            .map(|(_, value)| value);
        let selector = crate::object::version_selector(version_id.as_deref())?;
        let answer = context
            .executor
            .meta_read(Query::GetObject {
                bucket: bucket.to_owned(),
                key: key.to_owned(),
                version: selector,
            })
            .await?;
        if let Ok(Response::Object(object)) = answer
            && crate::acl::object_acl_allows(context, &record, &object, permission)
        {
            return Ok(record);
        }
    }
    Err(S3Error::AccessDenied)
}

/// The bucket of a copy source, checked for reading the source object (`s3:GetObject`, or
/// `s3:GetObjectVersion` when the source names a version).
pub async fn readable_copy_source_bucket(
    context: &RequestContext<'_>,
    source: &cairn_s3_proto::endpoint::CopySource,
) -> Result<BucketRecord, S3Error> {
    let record = read_source_bucket(context, &source.bucket).await?;
    // The source's objects live in its region's partitions; copying across regions is the
    // replicator's job, not a gateway's.
    let gateway_region = context.executor.shared.config.region.as_str();
    if crate::region::bucket_region(gateway_region, &record) != gateway_region {
        return Err(S3Error::NotImplemented);
    }
    let action = if source.version_id.is_some() {
        "s3:GetObjectVersion"
    } else {
        "s3:GetObject"
    };
    if crate::policy::authorize(context, &record, action, Some(&source.key))? {
        return Ok(record);
    }
    let source_record = crate::object::read_record(
        context,
        &source.bucket,
        &source.key,
        crate::object::version_selector(source.version_id.as_deref())?,
    )
    .await
    .map_err(|_| S3Error::AccessDenied)?;
    if crate::acl::object_acl_allows(
        context,
        &record,
        &source_record,
        cairn_s3_proto::acl::AclPermission::Read,
    ) {
        Ok(record)
    } else {
        Err(S3Error::AccessDenied)
    }
}

/// The bucket the request addresses, once it is known to live in this gateway's region and the
/// request is signed for it ([`crate::region::check_bucket_region`]).
pub(crate) async fn read_bucket(
    context: &RequestContext<'_>,
    bucket: &str,
) -> Result<BucketRecord, S3Error> {
    let record = read_source_bucket(context, bucket).await?;
    crate::region::check_bucket_region(context, &record)?;
    Ok(record)
}

/// A bucket record, wherever the bucket lives.
async fn read_source_bucket(
    context: &RequestContext<'_>,
    bucket: &str,
) -> Result<BucketRecord, S3Error> {
    let answer = context
        .executor
        .meta_query(Query::GetBucket {
            bucket: bucket.to_owned(),
        })
        .await?;
    match answer {
        Response::Bucket(record) => Ok(record),
        _ => Err(S3Error::InternalError),
    }
}

pub async fn list_buckets(context: &RequestContext<'_>) -> Result<HttpResponse, S3Error> {
    let answer = context
        .executor
        .meta_read(Query::ListBuckets {
            owner: Some(context.caller.owner.clone()),
        })
        .await?
        .map_err(|error| meta_error_to_s3(&error))?;
    let Response::Buckets(records) = answer else {
        return Err(S3Error::InternalError);
    };
    let buckets: Vec<BucketSummary> = records
        .into_iter()
        .map(|record| BucketSummary {
            name: record.name,
            creation_unix_millis: record.created_at_ms as i64,
            region: Some(record.primary_region),
        })
        .collect();
    let owner = Owner {
        id: context.caller.owner.clone(),
        display_name: context.caller.owner.clone(),
    };
    Ok(xml_response(list_buckets_xml(&owner, &buckets)))
}

pub async fn create_bucket(
    context: &RequestContext<'_>,
    bucket: &str,
    mut body: RequestBody,
) -> Result<HttpResponse, S3Error> {
    let shared = &context.executor.shared;
    let document = body.read_to_end(shared.config.max_xml_body_bytes).await?;
    body.finish()?;
    let location = if document.iter().all(u8::is_ascii_whitespace) {
        None
    } else {
        parse_create_bucket_configuration(&document)?.filter(|location| !location.is_empty())
    };
    // Buckets live where they were created: the constraint must name this gateway's region.
    crate::region::check_location_constraint(&shared.config.region, location.as_deref())?;
    crate::acl::check_requested_grantees(context).await?;
    let command = Command::CreateBucket(CreateBucket {
        bucket: bucket.to_owned(),
        owner: context.caller.owner.clone(),
        primary_region: shared.config.region.clone(),
        ec_scheme: shared.config.default_ec_scheme.clone(),
        acl: Acl::default(),
        now_ms: now_unix_millis(),
        attributes: {
            let mut attributes = Default::default();
            crate::acl::insert_requested_acl(context, &mut attributes)?;
            attributes.extend(crate::object_lock::create_bucket_attribute(context)?);
            attributes
        },
    });
    context.executor.meta_write(command).await?;
    set_sealed(context, bucket, false).await?;
    Ok(http::Response::builder()
        .status(http::StatusCode::OK)
        .header("location", format!("/{bucket}"))
        .body(empty_body())
        .expect("valid headers"))
}

pub async fn head_bucket(
    context: &RequestContext<'_>,
    bucket: &str,
) -> Result<HttpResponse, S3Error> {
    let record = owned_bucket(context, bucket).await?;
    Ok(http::Response::builder()
        .status(http::StatusCode::OK)
        .header("x-amz-bucket-region", record.primary_region)
        .body(empty_body())
        .expect("valid headers"))
}

pub async fn get_bucket_location(
    context: &RequestContext<'_>,
    bucket: &str,
) -> Result<HttpResponse, S3Error> {
    let record = owned_bucket(context, bucket).await?;
    Ok(xml_response(location_constraint_xml(
        &record.primary_region,
    )))
}

/// Seals (or unseals) the bucket on every object partition; reports whether any partition holds
/// versions or uploads of it.
async fn set_sealed(
    context: &RequestContext<'_>,
    bucket: &str,
    sealed: bool,
) -> Result<bool, S3Error> {
    let bucket = bucket.to_owned();
    let outcome = context
        .executor
        .shared
        .meta
        .run(move |client: std::sync::Arc<MetaClient>| async move {
            let writes = client.partitions().into_iter().map(|group| {
                let command = if sealed {
                    Command::SealBucket {
                        bucket: bucket.clone(),
                    }
                } else {
                    Command::UnsealBucket {
                        bucket: bucket.clone(),
                    }
                };
                let client = std::sync::Arc::clone(&client);
                async move { client.write_to(group, command).await }
            });
            futures::future::join_all(writes).await
        })
        .await
        .map_err(|error| client_error_to_s3(&error))?;
    let mut in_use = false;
    for answer in outcome {
        let output = answer.map_err(|error| client_error_to_s3(&error))?;
        match output.result {
            Ok(Response::BucketUsage {
                has_versions,
                has_uploads,
            }) => in_use |= has_versions || has_uploads,
            Ok(_) => return Err(S3Error::InternalError),
            Err(error) => return Err(meta_error_to_s3(&error)),
        }
    }
    Ok(in_use)
}

pub async fn delete_bucket(
    context: &RequestContext<'_>,
    bucket: &str,
) -> Result<HttpResponse, S3Error> {
    owned_bucket(context, bucket).await?;
    if set_sealed(context, bucket, true).await? {
        set_sealed(context, bucket, false).await?;
        return Err(S3Error::BucketNotEmpty);
    }
    match context
        .executor
        .meta_write(Command::DeleteBucket {
            bucket: bucket.to_owned(),
        })
        .await
    {
        Ok(_) => {}
        Err(error) => {
            // The bucket stays: let writes in again.
            set_sealed(context, bucket, false).await?;
            return Err(error);
        }
    }
    Ok(http::Response::builder()
        .status(http::StatusCode::NO_CONTENT)
        .body(empty_body())
        .expect("valid headers"))
}

pub async fn get_bucket_versioning(
    context: &RequestContext<'_>,
    bucket: &str,
) -> Result<HttpResponse, S3Error> {
    use cairn_meta_state::VersioningState;
    let record = owned_bucket(context, bucket).await?;
    let status = match record.versioning {
        VersioningState::Unversioned => None,
        VersioningState::Enabled => Some("Enabled"),
        VersioningState::Suspended => Some("Suspended"),
    };
    Ok(xml_response(versioning_configuration_xml(status)))
}

/// PutBucketVersioning. MFA delete is not supported: a request enabling it without the
/// `x-amz-mfa` header is refused as S3 refuses it (MFA authentication required); with the header
/// it is `NotImplemented`, since Cairn cannot verify a token.
pub async fn put_bucket_versioning(
    context: &RequestContext<'_>,
    bucket: &str,
    body: RequestBody,
) -> Result<HttpResponse, S3Error> {
    use cairn_meta_state::VersioningState;
    use cairn_s3_proto::xml::{VersioningStatus, parse_versioning_configuration};
    let record = owned_bucket(context, bucket).await?;
    let document = read_verified_document(context, body).await?;
    let configuration = parse_versioning_configuration(&document)?;
    if configuration.status == Some(VersioningStatus::Suspended)
        && record
            .attributes
            .contains_key(crate::replication::REPLICATION_ATTRIBUTE)
    {
        // As S3: replication needs versioning, so it cannot be suspended under a configuration.
        return Err(S3Error::InvalidBucketState(
            "A replication configuration is present on this bucket, so you cannot change the versioning state."
                .to_owned(),
        ));
    }
    if configuration.mfa_delete_enabled {
        return Err(match context.header("x-amz-mfa") {
            None => S3Error::MfaAuthenticationRequired,
            Some(_) => S3Error::NotImplemented,
        });
    }
    if let Some(status) = configuration.status {
        let versioning = match status {
            VersioningStatus::Enabled => VersioningState::Enabled,
            VersioningStatus::Suspended => VersioningState::Suspended,
        };
        let command = Command::PutBucketVersioning {
            bucket: bucket.to_owned(),
            versioning,
        };
        context.executor.meta_write(command).await?;
    }
    Ok(http::Response::builder()
        .status(http::StatusCode::OK)
        .body(empty_body())
        .expect("valid headers"))
}

/// Reads a small request document and checks `Content-MD5`, the payload hash and any
/// `x-amz-checksum-*` header against it.
pub(crate) async fn read_verified_document(
    context: &RequestContext<'_>,
    mut body: RequestBody,
) -> Result<Vec<u8>, S3Error> {
    use cairn_s3_proto::body::{BodyExpectations, BodyVerifier};
    use cairn_s3_proto::checksum::parse_content_md5;
    use cairn_s3_proto::headers::checksum_request;
    use cairn_s3_proto::sigv4::PayloadMode;
    let document = body
        .read_to_end(context.executor.shared.config.max_xml_body_bytes)
        .await?;
    let mut verifier = BodyVerifier::new(BodyExpectations {
        length_bytes: None,
        content_md5: context
            .header("content-md5")
            .map(parse_content_md5)
            .transpose()?,
        payload_sha256: match &context.payload {
            PayloadMode::Sha256 { expected_sha256 } => Some(*expected_sha256),
            _ => None,
        },
        checksum: if context.payload.is_aws_chunked() {
            None
        } else {
            Some(checksum_request(context.headers)?)
        },
    });
    verifier.update(&document)?;
    body.finish()?;
    verifier.finish()?;
    Ok(document)
}

/// A `DeleteBucket<Configuration>` request: the caller's own bucket loses attribute `name`
/// (absent already is fine, as in S3); 204 No Content.
pub(crate) async fn delete_bucket_attribute(
    context: &RequestContext<'_>,
    bucket: &str,
    name: &str,
) -> Result<HttpResponse, S3Error> {
    owned_bucket(context, bucket).await?;
    write_bucket_attribute(context, bucket, name, None, http::StatusCode::NO_CONTENT).await
}

/// Sets (`Some`) or removes (`None`) one bucket attribute (a configuration such as the bucket's
/// tags, policy, ACL, CORS rules or Block Public Access settings) and answers `status` with an
/// empty body. The caller has checked access and validated the value.
pub(crate) async fn write_bucket_attribute(
    context: &RequestContext<'_>,
    bucket: &str,
    name: &str,
    value: Option<Vec<u8>>,
    status: http::StatusCode,
) -> Result<HttpResponse, S3Error> {
    context
        .executor
        .meta_write(Command::PutBucketAttribute {
            bucket: bucket.to_owned(),
            name: name.to_owned(),
            value,
        })
        .await?;
    Ok(http::Response::builder()
        .status(status)
        .body(empty_body())
        .expect("static headers are valid"))
}
