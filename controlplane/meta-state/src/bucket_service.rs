//! The bucket service's key spaces: buckets, access keys and the storage-node registry.
//!
//! Model: a node is UP from registration and on every heartbeat, and DOWN once ExpireNodes finds
//! its last heartbeat older than the timeout; heartbeat times never move backwards.

use crate::attributes::check_attributes;
use crate::command::*;
use crate::error::MetaError;
use crate::machine::{StateMachine, bump};
use crate::records::*;

impl StateMachine {
    pub(crate) fn create_bucket(&mut self, command: CreateBucket) -> Result<Response, MetaError> {
        validate_bucket_name(&command.bucket)?;
        EcScheme::parse(&command.ec_scheme)?;
        check_attributes(&command.attributes)?;
        if let Some(existing) = self.buckets.get(&command.bucket) {
            return Err(if existing.owner == command.owner {
                MetaError::BucketAlreadyOwnedByYou {
                    bucket: command.bucket,
                }
            } else {
                MetaError::BucketAlreadyExists {
                    bucket: command.bucket,
                }
            });
        }
        let record = BucketRecord {
            name: command.bucket.clone(),
            owner: command.owner,
            primary_region: command.primary_region,
            created_at_ms: command.now_ms,
            // A bucket created with object lock is versioned from the start, as in S3.
            versioning: if command
                .attributes
                .contains_key(crate::object_lock::OBJECT_LOCK_ATTRIBUTE)
            {
                VersioningState::Enabled
            } else {
                VersioningState::Unversioned
            },
            replication_rules: Vec::new(),
            ec_scheme: command.ec_scheme,
            acl: command.acl,
            record_version: 1,
            attributes: command.attributes,
        };
        self.buckets.insert(command.bucket, record.clone());
        Ok(Response::Bucket(record))
    }

    pub(crate) fn delete_bucket(&mut self, bucket: &str) -> Result<Response, MetaError> {
        self.bucket(bucket)?;
        if self.role.holds_everything()
            && (self.bucket_has_versions(bucket) || self.bucket_has_uploads(bucket))
        {
            return Err(MetaError::BucketNotEmpty {
                bucket: bucket.to_owned(),
            });
        }
        let record = self.buckets.remove(bucket).expect("looked up above");
        Ok(Response::BucketDeleted(record))
    }

    pub(crate) fn put_bucket_versioning(
        &mut self,
        bucket: &str,
        versioning: VersioningState,
    ) -> Result<Response, MetaError> {
        let record = self.bucket_mut(bucket)?;
        if versioning == VersioningState::Unversioned {
            return Err(MetaError::IllegalVersioningConfiguration {
                bucket: bucket.to_owned(),
            });
        }
        if versioning != VersioningState::Enabled
            && record
                .attributes
                .contains_key(crate::object_lock::OBJECT_LOCK_ATTRIBUTE)
        {
            return Err(MetaError::ObjectLockConflict {
                bucket: bucket.to_owned(),
                reason: "An Object Lock configuration is present on this bucket, so the versioning state cannot be changed.".to_owned(),
            });
        }
        record.versioning = versioning;
        bump(&mut record.record_version);
        Ok(Response::Bucket(record.clone()))
    }

    pub(crate) fn put_bucket_replication(
        &mut self,
        bucket: &str,
        rules: Vec<ReplicationRule>,
    ) -> Result<Response, MetaError> {
        self.bucket(bucket)?;
        for (index, rule) in rules.iter().enumerate() {
            if rule.rule_id.is_empty() || rule.destination_bucket.is_empty() {
                return Err(MetaError::InvalidArgument {
                    reason: "a replication rule needs an id and a destination bucket".to_owned(),
                });
            }
            if rules[..index]
                .iter()
                .any(|earlier| earlier.rule_id == rule.rule_id)
            {
                return Err(MetaError::InvalidArgument {
                    reason: format!("replication rule id {:?} is repeated", rule.rule_id),
                });
            }
        }
        let record = self.bucket_mut(bucket)?;
        record.replication_rules = rules;
        bump(&mut record.record_version);
        Ok(Response::Bucket(record.clone()))
    }

    pub(crate) fn put_bucket_ec_scheme(
        &mut self,
        bucket: &str,
        ec_scheme: String,
    ) -> Result<Response, MetaError> {
        EcScheme::parse(&ec_scheme)?;
        let record = self.bucket_mut(bucket)?;
        record.ec_scheme = ec_scheme;
        bump(&mut record.record_version);
        Ok(Response::Bucket(record.clone()))
    }

    pub(crate) fn create_access_key(
        &mut self,
        command: CreateAccessKey,
    ) -> Result<Response, MetaError> {
        if command.access_key_id.is_empty() || command.secret_access_key.is_empty() {
            return Err(MetaError::InvalidArgument {
                reason: "access key id and secret must be non-empty".to_owned(),
            });
        }
        if self.access_keys.contains_key(&command.access_key_id) {
            return Err(MetaError::AccessKeyAlreadyExists {
                access_key_id: command.access_key_id,
            });
        }
        let record = AccessKeyRecord {
            access_key_id: command.access_key_id.clone(),
            secret_access_key: command.secret_access_key,
            owner: command.owner,
            created_at_ms: command.now_ms,
            status: AccessKeyStatus::Active,
            revoked_at_ms: None,
            record_version: 1,
        };
        self.access_keys
            .insert(command.access_key_id, record.clone());
        Ok(Response::AccessKey(record))
    }

    pub(crate) fn reseal_access_key(
        &mut self,
        command: crate::command::ResealAccessKey,
    ) -> Result<Response, MetaError> {
        if command.secret_access_key.is_empty() {
            return Err(MetaError::InvalidArgument {
                reason: "an access key's secret must be non-empty".to_owned(),
            });
        }
        let record = self
            .access_keys
            .get_mut(&command.access_key_id)
            .ok_or_else(|| MetaError::NoSuchAccessKey {
                access_key_id: command.access_key_id.clone(),
            })?;
        if record.record_version != command.record_version {
            return Err(MetaError::RecordVersionMismatch {
                expected: command.record_version,
                actual: record.record_version,
            });
        }
        if record.secret_access_key != command.secret_access_key {
            record.secret_access_key = command.secret_access_key;
            bump(&mut record.record_version);
        }
        Ok(Response::AccessKey(record.clone()))
    }

    pub(crate) fn revoke_access_key(
        &mut self,
        access_key_id: &str,
        now_ms: u64,
    ) -> Result<Response, MetaError> {
        let record =
            self.access_keys
                .get_mut(access_key_id)
                .ok_or_else(|| MetaError::NoSuchAccessKey {
                    access_key_id: access_key_id.to_owned(),
                })?;
        // Revoking twice is a retry, not an error; the first revocation time stays.
        if record.status == AccessKeyStatus::Active {
            record.status = AccessKeyStatus::Revoked;
            record.revoked_at_ms = Some(now_ms);
            bump(&mut record.record_version);
        }
        Ok(Response::AccessKey(record.clone()))
    }

    pub(crate) fn register_node(&mut self, command: RegisterNode) -> Response {
        let record = self
            .nodes
            .entry(command.node_id)
            .and_modify(|record| {
                record.address = command.address.clone();
                record.availability_zone = command.availability_zone.clone();
                record.capacity_bytes = command.capacity_bytes;
                record.status = NodeStatus::Up;
                record.last_heartbeat_ms = record.last_heartbeat_ms.max(command.now_ms);
                bump(&mut record.record_version);
            })
            .or_insert_with(|| NodeRecord {
                node_id: command.node_id,
                address: command.address.clone(),
                availability_zone: command.availability_zone.clone(),
                capacity_bytes: command.capacity_bytes,
                used_bytes: 0,
                status: NodeStatus::Up,
                registered_at_ms: command.now_ms,
                last_heartbeat_ms: command.now_ms,
                record_version: 1,
            });
        Response::Node(record.clone())
    }

    pub(crate) fn heartbeat(
        &mut self,
        node_id: NodeId,
        used_bytes: u64,
        now_ms: u64,
    ) -> Result<Response, MetaError> {
        let record = self
            .nodes
            .get_mut(&node_id)
            .ok_or(MetaError::NoSuchNode { node_id })?;
        let came_up = record.status == NodeStatus::Down;
        record.status = NodeStatus::Up;
        record.used_bytes = used_bytes;
        // A heartbeat delayed in the log must not move the clock backwards.
        record.last_heartbeat_ms = record.last_heartbeat_ms.max(now_ms);
        bump(&mut record.record_version);
        Ok(Response::Heartbeat {
            node: record.clone(),
            came_up,
        })
    }

    pub(crate) fn expire_nodes(&mut self, now_ms: u64, timeout_ms: u64) -> Response {
        // Only the expired nodes are written (the key space records every node touched).
        let expired: Vec<NodeId> = self
            .nodes
            .values()
            .filter(|record| {
                record.status == NodeStatus::Up
                    && now_ms.saturating_sub(record.last_heartbeat_ms) > timeout_ms
            })
            .map(|record| record.node_id)
            .collect();
        for node_id in &expired {
            let record = self.nodes.get_mut(node_id).expect("listed above");
            record.status = NodeStatus::Down;
            bump(&mut record.record_version);
        }
        Response::NodesExpired(expired)
    }
}

/// S3's bucket naming rules (the ones that matter for DNS-style addressing).
pub fn validate_bucket_name(bucket: &str) -> Result<(), MetaError> {
    let invalid = |reason: &str| MetaError::InvalidBucketName {
        bucket: bucket.to_owned(),
        reason: reason.to_owned(),
    };
    if !(3..=63).contains(&bucket.len()) {
        return Err(invalid("a bucket name has 3 to 63 characters"));
    }
    if !bucket
        .bytes()
        .all(|byte| matches!(byte, b'a'..=b'z' | b'0'..=b'9' | b'.' | b'-'))
    {
        return Err(invalid("only lowercase letters, digits, dots and hyphens"));
    }
    let alphanumeric = |byte: u8| byte.is_ascii_lowercase() || byte.is_ascii_digit();
    let bytes = bucket.as_bytes();
    if !alphanumeric(bytes[0]) || !alphanumeric(bytes[bytes.len() - 1]) {
        return Err(invalid("must begin and end with a letter or digit"));
    }
    if bucket.contains("..") {
        return Err(invalid("no two adjacent dots"));
    }
    let labels: Vec<&str> = bucket.split('.').collect();
    if labels.len() == 4 && labels.iter().all(|label| label.parse::<u8>().is_ok()) {
        return Err(invalid("must not look like an IP address"));
    }
    Ok(())
}
