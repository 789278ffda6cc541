//! Cross-region replication, the gateway's part: Put/Get/DeleteBucketReplication, queueing the
//! commits replication rules select, and the writes the replicator makes as replicas.
//!
//! Model:
//! - The configuration is the bucket attribute [`REPLICATION_ATTRIBUTE`] (the canonical
//!   `ReplicationConfiguration` document of `cairn_s3_proto::replication`), validated before it is
//!   proposed: the source bucket's versioning must be Enabled and every destination bucket must
//!   exist (in any region: bucket names are global) with versioning Enabled, as on S3. The
//!   fixed-layout `replication_rules` of the bucket record is not used.
//! - When a write (PUT, CopyObject, CompleteMultipartUpload, POST) or a delete that creates a
//!   delete marker commits in a bucket with an enabled rule for the key, the gateway wraps the
//!   commit in `Command::QueueReplication`: the partition queues the new version and marks it
//!   `PENDING` in the same log entry (see `cairn_meta_state::replication`). The replicator
//!   (controlplane/workers, `replicator.rs`) drains the queues.
//! - A later change of a version's tags, ACL, retention or legal hold (PutObjectTagging,
//!   DeleteObjectTagging, PutObjectAcl, PutObjectRetention, PutObjectLegalHold) in such a bucket
//!   is wrapped too ([`queue_attribute_change`], with the request's time): the partition queues
//!   a metadata change when the version was selected for replication and is not a replica.
//! - A write carrying [`REPLICA_HEADER`] comes from a replicator: it is honoured only for a
//!   caller allowed `s3:ReplicateObject` on the destination bucket (its owner, or a bucket policy
//!   grant), stores the version with status `REPLICA` and is never queued again, so two buckets
//!   replicating to each other do not loop. With it, [`REPLICA_SOURCE_HEADER`] names the
//!   version the replica copies (`SOURCE-BUCKET/VERSION-ID`); it is stored as the attribute
//!   [`REPLICA_SOURCE_ATTRIBUTE`] and returned on GET and HEAD to callers allowed
//!   `s3:ReplicateObject`, so the replicator finds the replica of a version whose metadata
//!   changed. With it too, [`REPLICA_VERSION_HEADER`] asks the destination to keep the source
//!   version's id (see `cairn_meta_state::VersionId::tagged`), as S3 replicas do. Either header
//!   without [`REPLICA_HEADER`] is refused. A replicator's DELETE makes a delete marker with the
//!   same attributes ([`replica_marker_attributes`]).

use cairn_meta_state::{
    BucketRecord, Command, Query, REPLICATION_STATUS_ATTRIBUTE, ReplicationStatus, Response,
    VersioningState,
};
use cairn_s3_proto::S3Error;
use cairn_s3_proto::replication::{
    ReplicationConfiguration, decode_stored_replication, encode_stored_replication,
    parse_replication_configuration, replication_configuration_xml,
};

use crate::body::RequestBody;
use crate::bucket::{owned_bucket, read_verified_document, write_bucket_attribute};
use crate::server::{HttpResponse, RequestContext, xml_response};

/// The attribute name of a bucket's replication configuration.
pub const REPLICATION_ATTRIBUTE: &str = "replication";
/// Marks a write made by a replicator (value `true`).
pub const REPLICA_HEADER: &str = "x-cairn-replica";
/// Names the source version a replica write copies (`SOURCE-BUCKET/VERSION-ID`).
pub const REPLICA_SOURCE_HEADER: &str = "x-cairn-replica-source";
/// The source version's id a replica write asks to keep as its own (16 hex digits, tagged by
/// the source's region), so that S3 clients see the same version id in both buckets. Stored as
/// [`cairn_meta_state::REPLICA_VERSION_ATTRIBUTE`]; the metadata partition refuses an id of its
/// own region or one the key already has.
pub const REPLICA_VERSION_HEADER: &str = "x-cairn-replica-version-id";
/// The attribute a replica keeps [`REPLICA_SOURCE_HEADER`]'s value in.
pub const REPLICA_SOURCE_ATTRIBUTE: &str = "replica-source";
/// The longest [`REPLICA_SOURCE_HEADER`] accepted: a bucket name (63), `/`, a version id.
const MAX_REPLICA_SOURCE_BYTES: usize = 128;
/// The action a replica write needs on the destination bucket.
const REPLICATE_ACTION: &str = "s3:ReplicateObject";

/// The bucket's configuration, if it has one that parses.
pub(crate) fn configuration(record: &BucketRecord) -> Option<ReplicationConfiguration> {
    let stored = record.attributes.get(REPLICATION_ATTRIBUTE)?;
    decode_stored_replication(stored)
        .inspect_err(|_| {
            tracing::error!(
                bucket = record.name,
                "stored replication configuration does not parse"
            );
        })
        .ok()
}

/// Whether this request is a replicator's write, checked: a replica header from a caller not
/// allowed `s3:ReplicateObject` is refused (AccessDenied), never silently treated as a client write.
pub(crate) fn is_replica_write(
    context: &RequestContext<'_>,
    bucket_record: &BucketRecord,
    key: &str,
) -> Result<bool, S3Error> {
    match context.header(REPLICA_HEADER) {
        None if context.header(REPLICA_SOURCE_HEADER).is_some()
            || context.header(REPLICA_VERSION_HEADER).is_some() =>
        {
            Err(S3Error::InvalidArgument(format!(
                "{REPLICA_SOURCE_HEADER} and {REPLICA_VERSION_HEADER} need {REPLICA_HEADER}: true"
            )))
        }
        None => Ok(false),
        Some(value) if value.eq_ignore_ascii_case("true") => {
            if crate::policy::authorize(context, bucket_record, REPLICATE_ACTION, Some(key))? {
                Ok(true)
            } else {
                Err(S3Error::AccessDenied)
            }
        }
        Some(_) => Err(S3Error::InvalidArgument(format!(
            "{REPLICA_HEADER} must be true when present"
        ))),
    }
}

/// The attributes a replica version carries (the caller checked [`is_replica_write`]): status
/// `REPLICA`, and the source version [`REPLICA_SOURCE_HEADER`] names, when the request has one.
pub(crate) fn replica_attributes(
    context: &RequestContext<'_>,
) -> Result<cairn_meta_state::Attributes, S3Error> {
    let mut attributes: cairn_meta_state::Attributes = [(
        REPLICATION_STATUS_ATTRIBUTE.to_owned(),
        ReplicationStatus::Replica.as_str().as_bytes().to_vec(),
    )]
    .into_iter()
    .collect();
    if let Some(source) = context.header(REPLICA_SOURCE_HEADER) {
        let source = source.trim();
        let valid = !source.is_empty()
            && source.len() <= MAX_REPLICA_SOURCE_BYTES
            && source.bytes().all(|byte| byte.is_ascii_graphic());
        if !valid {
            return Err(S3Error::InvalidArgument(format!(
                "{REPLICA_SOURCE_HEADER} must be 1 to {MAX_REPLICA_SOURCE_BYTES} visible ASCII characters"
            )));
        }
        attributes.insert(
            REPLICA_SOURCE_ATTRIBUTE.to_owned(),
            source.as_bytes().to_vec(),
        );
    }
    if let Some(version_id) = context.header(REPLICA_VERSION_HEADER) {
        let version_id =
            cairn_meta_state::VersionId::parse(version_id.trim()).ok_or_else(|| {
                S3Error::InvalidArgument(format!(
                    "{REPLICA_VERSION_HEADER} must be a version id of 16 lowercase hex digits"
                ))
            })?;
        attributes.insert(
            cairn_meta_state::REPLICA_VERSION_ATTRIBUTE.to_owned(),
            version_id.to_string().into_bytes(),
        );
    }
    Ok(attributes)
}

/// The attributes of a replicator's delete marker, or `None` for an ordinary delete: a
/// DELETE of the current version in a versioned bucket carrying [`REPLICA_HEADER`] from a
/// caller allowed `s3:ReplicateObject` gets the replica status and the source's id and name
/// ([`replica_attributes`]). Elsewhere, or from a caller not allowed `s3:ReplicateObject`, the
/// header is ignored: the delete is then an ordinary one.
pub(crate) fn replica_marker_attributes(
    context: &RequestContext<'_>,
    bucket_record: &BucketRecord,
    key: &str,
    version_id: Option<&str>,
) -> Result<Option<cairn_meta_state::Attributes>, S3Error> {
    let replica = context
        .header(REPLICA_HEADER)
        .is_some_and(|value| value.eq_ignore_ascii_case("true"))
        && version_id.is_none()
        && bucket_record.versioning != VersioningState::Unversioned
        && crate::policy::authorize(context, bucket_record, REPLICATE_ACTION, Some(key))
            .unwrap_or(false);
    if !replica {
        return Ok(None);
    }
    replica_attributes(context).map(Some)
}

/// The [`REPLICA_SOURCE_HEADER`] a GET or HEAD answer about `record` carries: the stored source
/// of a replica, shown only to a caller allowed `s3:ReplicateObject` (a replicator), since it
/// names another bucket.
pub(crate) fn replica_source_header(
    context: &RequestContext<'_>,
    bucket_record: &BucketRecord,
    record: &cairn_meta_state::ObjectRecord,
) -> Option<String> {
    let source = record.attributes.get(REPLICA_SOURCE_ATTRIBUTE)?;
    let allowed = matches!(
        crate::policy::authorize(context, bucket_record, REPLICATE_ACTION, Some(&record.key)),
        Ok(true)
    );
    allowed
        .then(|| String::from_utf8(source.clone()).ok())
        .flatten()
}

/// `change` (a PutObjectAttribute, possibly under `BypassGovernanceRetention`) of attribute
/// `name` queued for replication when a rule selects `key` and `name` is one whose changes
/// replicate (tags, ACL, retention, legal hold). The partition queues it only for a version that
/// was selected for replication and is not a replica (see `cairn_meta_state::replication`).
pub(crate) fn queue_attribute_change(
    bucket_record: &BucketRecord,
    key: &str,
    name: &str,
    change: Command,
) -> Command {
    match configuration(bucket_record) {
        Some(configuration)
            if cairn_meta_state::REPLICATED_ATTRIBUTES.contains(&name)
                && configuration.replicates_object(key) =>
        {
            Command::QueueReplication {
                now_ms: Some(crate::server::now_unix_millis()),
                command: Box::new(change),
            }
        }
        _ => change,
    }
}

/// `commit` (a CommitWrite or CompleteMultipartUpload, possibly conditional) of a version with
/// `attributes` (the prepared version's, or the upload's) queued for replication when a rule
/// selects `key` and the version is not itself a replica (marked by [`is_replica_write`] when
/// it was prepared or the upload created).
pub(crate) fn queue_write(
    bucket_record: &BucketRecord,
    key: &str,
    attributes: &cairn_meta_state::Attributes,
    commit: Command,
) -> Command {
    let replica = status_of(attributes) == Some(ReplicationStatus::Replica);
    match configuration(bucket_record) {
        Some(configuration) if !replica && configuration.replicates_object(key) => {
            Command::QueueReplication {
                now_ms: None,
                command: Box::new(commit),
            }
        }
        _ => commit,
    }
}

/// `delete` queued for replication when it may create a delete marker that a rule replicates.
/// Deletes of a version by id are not replicated (as on S3).
pub(crate) fn queue_delete(
    bucket_record: &BucketRecord,
    key: &str,
    version_id: Option<&str>,
    replica: bool,
    delete: Command,
) -> Command {
    // A replicator's delete marker (`replica`: see [`replica_marker_attributes`]) is not queued
    // again.
    match configuration(bucket_record) {
        Some(configuration)
            if !replica
                && version_id.is_none()
                && bucket_record.versioning != VersioningState::Unversioned
                && configuration.replicates_delete_marker(key) =>
        {
            Command::QueueReplication {
                now_ms: None,
                command: Box::new(delete),
            }
        }
        _ => delete,
    }
}

/// A version's replication status (`x-amz-replication-status` on GET and HEAD).
pub(crate) fn status_of(attributes: &cairn_meta_state::Attributes) -> Option<ReplicationStatus> {
    attributes
        .get(REPLICATION_STATUS_ATTRIBUTE)
        .and_then(|value| ReplicationStatus::parse(value))
}

pub async fn get_bucket_replication(
    context: &RequestContext<'_>,
    bucket: &str,
) -> Result<HttpResponse, S3Error> {
    let record = owned_bucket(context, bucket).await?;
    if !record.attributes.contains_key(REPLICATION_ATTRIBUTE) {
        return Err(S3Error::ReplicationConfigurationNotFoundError);
    }
    let configuration = configuration(&record).ok_or(S3Error::InternalError)?;
    Ok(xml_response(replication_configuration_xml(&configuration)))
}

pub async fn put_bucket_replication(
    context: &RequestContext<'_>,
    bucket: &str,
    body: RequestBody,
) -> Result<HttpResponse, S3Error> {
    let record = owned_bucket(context, bucket).await?;
    let document = read_verified_document(context, body).await?;
    if document.is_empty() {
        return Err(S3Error::MissingRequestBodyError);
    }
    let configuration = parse_replication_configuration(&document)?;
    if record.versioning != VersioningState::Enabled {
        return Err(S3Error::InvalidRequest(
            "Versioning must be 'Enabled' on the bucket to apply a replication configuration"
                .to_owned(),
        ));
    }
    for destination in configuration.destination_buckets() {
        if destination == bucket {
            return Err(S3Error::InvalidRequest(
                "Destination bucket cannot be the same as the source bucket.".to_owned(),
            ));
        }
        let answer = context
            .executor
            .meta_query(Query::GetBucket {
                bucket: destination.to_owned(),
            })
            .await;
        let destination_record = match answer {
            Ok(Response::Bucket(record)) => record,
            Err(S3Error::NoSuchBucket) => {
                return Err(S3Error::InvalidRequest(
                    "Destination bucket must exist.".to_owned(),
                ));
            }
            Ok(_) => return Err(S3Error::InternalError),
            Err(error) => return Err(error),
        };
        if destination_record.versioning != VersioningState::Enabled {
            return Err(S3Error::InvalidRequest(
                "Destination bucket must have versioning enabled.".to_owned(),
            ));
        }
    }
    let stored = encode_stored_replication(&configuration);
    if stored.len() > cairn_meta_state::MAX_ATTRIBUTE_VALUE_BYTES {
        return Err(S3Error::MaxMessageLengthExceeded);
    }
    write_bucket_attribute(
        context,
        bucket,
        REPLICATION_ATTRIBUTE,
        Some(stored),
        http::StatusCode::OK,
    )
    .await
}

pub async fn delete_bucket_replication(
    context: &RequestContext<'_>,
    bucket: &str,
) -> Result<HttpResponse, S3Error> {
    crate::bucket::delete_bucket_attribute(context, bucket, REPLICATION_ATTRIBUTE).await
}

#[cfg(test)]
mod tests {
    /// The attributes whose changes the partition queues are the ones this gateway stores
    /// tags, ACLs and object-lock settings under.
    #[test]
    fn replicated_attributes_are_the_gateways_names() {
        for name in [
            crate::tagging::TAGGING_ATTRIBUTE,
            crate::acl::ACL_ATTRIBUTE,
            cairn_meta_state::object_lock::RETENTION_ATTRIBUTE,
            cairn_meta_state::object_lock::LEGAL_HOLD_ATTRIBUTE,
        ] {
            assert!(
                cairn_meta_state::REPLICATED_ATTRIBUTES.contains(&name),
                "{name}"
            );
        }
        assert!(
            !cairn_meta_state::REPLICATED_ATTRIBUTES
                .contains(&cairn_meta_state::REPLICATION_STATUS_ATTRIBUTE)
        );
    }
}
