//! Named attributes on buckets and object versions (see [`crate::records::Attributes`]).
//!
//! Model: `PutBucketAttribute` and `PutObjectAttribute` set (`Some`) or remove (`None`) one named
//! value and bump the record's `record_version`, so a compare-and-set on the record version (a
//! concurrent healer's UpdateShardMap, a conditional write) sees the change. Values are opaque
//! here; the feature that owns a name validates its encoding before it proposes the command.
//! Invariant: every stored name and value is within the limits below, whichever command set it.

use crate::command::Response;
use crate::error::MetaError;
use crate::machine::{StateMachine, bump};
use crate::records::{
    Attributes, MAX_ATTRIBUTE_NAME_BYTES, MAX_ATTRIBUTE_VALUE_BYTES, MAX_ATTRIBUTES_PER_RECORD,
    UploadId, VersionId, VersionSelector,
};

/// Checks a whole attribute map (as a creating command carries it) against the limits.
pub(crate) fn check_attributes(attributes: &Attributes) -> Result<(), MetaError> {
    if attributes.len() > MAX_ATTRIBUTES_PER_RECORD {
        return Err(MetaError::InvalidArgument {
            reason: format!(
                "{} attributes (at most {MAX_ATTRIBUTES_PER_RECORD})",
                attributes.len()
            ),
        });
    }
    for (name, value) in attributes {
        check_attribute(name, Some(value))?;
    }
    Ok(())
}

fn check_attribute(name: &str, value: Option<&Vec<u8>>) -> Result<(), MetaError> {
    if name.is_empty() || name.len() > MAX_ATTRIBUTE_NAME_BYTES {
        return Err(MetaError::InvalidArgument {
            reason: format!("attribute name of {} bytes", name.len()),
        });
    }
    if let Some(value) = value
        && value.len() > MAX_ATTRIBUTE_VALUE_BYTES
    {
        return Err(MetaError::InvalidArgument {
            reason: format!(
                "attribute {name} of {} bytes (at most {MAX_ATTRIBUTE_VALUE_BYTES})",
                value.len()
            ),
        });
    }
    Ok(())
}

/// Applies one set/remove to a map, refusing to grow it past the per-record limit. Whether
/// anything changed is returned so an idempotent retry does not bump the record version.
fn set_attribute(
    attributes: &mut Attributes,
    name: String,
    value: Option<Vec<u8>>,
) -> Result<bool, MetaError> {
    check_attribute(&name, value.as_ref())?;
    match value {
        None => Ok(attributes.remove(&name).is_some()),
        Some(value) => {
            if !attributes.contains_key(&name) && attributes.len() >= MAX_ATTRIBUTES_PER_RECORD {
                return Err(MetaError::InvalidArgument {
                    reason: format!("more than {MAX_ATTRIBUTES_PER_RECORD} attributes"),
                });
            }
            Ok(attributes.insert(name, value.clone()).as_ref() != Some(&value))
        }
    }
}

impl StateMachine {
    pub(crate) fn put_bucket_attribute(
        &mut self,
        bucket: &str,
        name: String,
        value: Option<Vec<u8>>,
    ) -> Result<Response, MetaError> {
        let record = self.bucket_mut(bucket)?;
        // Object lock, once on, stays on; it can be turned on only with versioning enabled.
        if name == crate::object_lock::OBJECT_LOCK_ATTRIBUTE {
            let refusal = match (&value, record.attributes.contains_key(&name)) {
                (None, true) => Some("object lock cannot be disabled"),
                (Some(_), _) if record.versioning != crate::records::VersioningState::Enabled => {
                    Some("object lock needs versioning enabled")
                }
                _ => None,
            };
            if let Some(reason) = refusal {
                return Err(MetaError::ObjectLockConflict {
                    bucket: bucket.to_owned(),
                    reason: reason.to_owned(),
                });
            }
        }
        if set_attribute(&mut record.attributes, name, value)? {
            bump(&mut record.record_version);
        }
        Ok(Response::Bucket(record.clone()))
    }

    /// Sets an attribute of a committed version; delete markers have none (S3 answers 405 for
    /// tagging one), and a PREPARING version is not visible yet.
    pub(crate) fn put_object_attribute(
        &mut self,
        bucket: &str,
        key: &str,
        selector: &VersionSelector,
        name: String,
        value: Option<Vec<u8>>,
        bypass_governance: bool,
    ) -> Result<Response, MetaError> {
        if name == crate::records::REPLICA_VERSION_ATTRIBUTE {
            // A version's S3 id never changes after it is created.
            return Err(MetaError::InvalidArgument {
                reason: format!("{name} is set only when a replica is written"),
            });
        }
        let found = self.get_object(bucket, key, selector)?;
        // Object lock: retention is only ever extended, unless GOVERNANCE is bypassed. The
        // command carries no time, so an expired retention still counts as active here (it can
        // be extended, not shortened); removing an expired version needs no change to it.
        if let Some(reason) = crate::object_lock::attribute_change_blocked(
            &found.attributes,
            &name,
            value.as_deref(),
            0,
            bypass_governance,
        ) {
            return Err(MetaError::ObjectLocked {
                bucket: bucket.to_owned(),
                key: key.to_owned(),
                version_id: found.version_id,
                reason: crate::machine::lock_reason_text(reason),
            });
        }
        let version_id = found.version_id;
        let record = self
            .versions
            .get_mut(&(bucket.to_owned(), key.to_owned(), version_id))
            .expect("get_object found this version");
        if set_attribute(&mut record.attributes, name, value)? {
            bump(&mut record.record_version);
        }
        Ok(Response::Object(record.clone()))
    }

    pub(crate) fn rewrap_object_encryption(
        &mut self,
        bucket: &str,
        key: &str,
        version_id: VersionId,
        record_version: u64,
        envelope: Vec<u8>,
    ) -> Result<Response, MetaError> {
        let record = self
            .versions
            .get_mut(&(bucket.to_owned(), key.to_owned(), version_id))
            .ok_or_else(|| MetaError::NoSuchVersion {
                bucket: bucket.to_owned(),
                key: key.to_owned(),
                version: version_id.to_string(),
            })?;
        if record.record_version != record_version {
            return Err(MetaError::RecordVersionMismatch {
                expected: record_version,
                actual: record.record_version,
            });
        }
        if !record.attributes.contains_key(ENCRYPTION_ATTRIBUTE) {
            return Err(MetaError::InvalidArgument {
                reason: "the version has no encryption envelope to re-wrap".to_owned(),
            });
        }
        if set_attribute(
            &mut record.attributes,
            ENCRYPTION_ATTRIBUTE.to_owned(),
            Some(envelope),
        )? {
            bump(&mut record.record_version);
        }
        Ok(Response::Object(record.clone()))
    }
}

impl StateMachine {
    pub(crate) fn rewrap_upload_encryption(
        &mut self,
        bucket: String,
        key: String,
        upload_id: UploadId,
        record_version: u64,
        envelope: Vec<u8>,
    ) -> Result<Response, MetaError> {
        let upload_key = (bucket, key, upload_id);
        let Some(upload) = self.uploads.get_mut(&upload_key) else {
            let (bucket, key, upload_id) = upload_key;
            return Err(MetaError::NoSuchUpload {
                bucket,
                key,
                upload_id,
            });
        };
        if upload.record_version != record_version {
            return Err(MetaError::RecordVersionMismatch {
                expected: record_version,
                actual: upload.record_version,
            });
        }
        if !upload.attributes.contains_key(ENCRYPTION_ATTRIBUTE) {
            return Err(MetaError::InvalidArgument {
                reason: "the upload has no encryption envelope to re-wrap".to_owned(),
            });
        }
        if set_attribute(
            &mut upload.attributes,
            ENCRYPTION_ATTRIBUTE.to_owned(),
            Some(envelope),
        )? {
            bump(&mut upload.record_version);
        }
        Ok(Response::Upload(upload.clone()))
    }
}

/// The object attribute holding the SSE envelope (`cairn_sse::envelope::ATTRIBUTE_NAME`).
const ENCRYPTION_ATTRIBUTE: &str = "encryption";
