//! The replication queue of an object partition: the event stream of committed writes, delete
//! markers and later metadata changes that cross-region replication copies to another bucket.
//!
//! Model: the gateway wraps the commit of a write (CommitWrite, CompleteMultipartUpload) or a
//! DeleteObject in [`crate::Command::QueueReplication`] when the bucket's replication
//! configuration has an enabled rule for the key. Applying the wrapper applies the inner command
//! and, in the same log entry, when it created a new committed version or delete marker:
//! - sets the version's attribute [`REPLICATION_STATUS_ATTRIBUTE`] to `PENDING`;
//! - appends a [`ReplicationEntry`] whose `seq` is the id index of that command (its log index
//!   unless it was batched; unique and increasing, see the `machine` module's "Id indexes").
//!
//! Metadata changes: the gateway wraps a PutObjectAttribute of one of
//! [`REPLICATED_ATTRIBUTES`] (PutObjectTagging, DeleteObjectTagging, PutObjectAcl,
//! PutObjectRetention, PutObjectLegalHold; also under `BypassGovernanceRetention`) the same way.
//! Applying it queues a [`ReplicationEventKind::MetadataChange`] entry for the changed version,
//! and sets its status to `PENDING` (the replicator sets `COMPLETED` or `FAILED` again, as S3
//! reports a metadata change in flight), only when all of these hold:
//! - the command changed the version (an attribute set to the value it had is no event);
//! - the version was selected for replication: its status is `PENDING`, `COMPLETED` or
//!   `FAILED`. A `REPLICA` is never queued (two buckets replicating to each other would loop),
//!   nor a version without a status (written before the rule existed, or outside it).
//!
//! A PutObjectAttribute carries no time, and the state machine has no clock of its own (it must
//! apply the same way on every replica), so the wrapper carries the request's time
//! (`QueueReplication::now_ms`) for the entry's `enqueued_at_ms`. The version's own dates do not
//! serve: the lag would count from the version's creation, not from the change.
//!
//! The replicator lists the queue (`Query::ListReplicationQueue`, in `seq` order), copies each
//! entry's version (or, for a metadata change, the version's current tags, ACL and object-lock
//! settings) to the destination, and sends `Command::ResolveReplication`, which removes the
//! entries and sets the source version's status to `COMPLETED` or `FAILED` atomically. The queue
//! is the replicator's checkpoint: an entry leaves only through a resolution, so a replicator or
//! either region restarting resumes where it was; the queue is in the partition's snapshots.
//!
//! Invariants:
//! - bounded: at most [`MAX_REPLICATION_QUEUE`] entries; a wrapped command arriving at a full
//!   queue is refused (`MetaError::ReplicationBacklog`) before it changes anything;
//! - one entry per `seq` (one wrapped command makes at most one entry), stored under its `seq`;
//! - an entry is never created for a retried commit (`retried: true`), for an attribute change
//!   that changed nothing, for a `REPLICA` version, nor for a refused command;
//! - resolving an unknown `seq` changes nothing (a retried resolution); a version removed since it
//!   was queued is resolved without a status to set.

use std::ops::Bound;

use crate::command::{Command, Response};
use crate::error::MetaError;
use crate::machine::StateMachine;
use crate::records::{VersionId, VersionSelector};

/// Most entries one partition's queue holds; a write that would add one more is refused
/// (`ReplicationBacklog`, S3's 503 SlowDown) until the replicator catches up.
pub const MAX_REPLICATION_QUEUE: usize = 100_000;

/// The object attribute holding a version's replication status (`x-amz-replication-status`).
pub const REPLICATION_STATUS_ATTRIBUTE: &str = "replication-status";

/// S3's replication statuses, as stored in [`REPLICATION_STATUS_ATTRIBUTE`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ReplicationStatus {
    Pending,
    Completed,
    Failed,
    /// The version was written by the replicator of another bucket.
    Replica,
}

impl ReplicationStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ReplicationStatus::Pending => "PENDING",
            ReplicationStatus::Completed => "COMPLETED",
            ReplicationStatus::Failed => "FAILED",
            ReplicationStatus::Replica => "REPLICA",
        }
    }

    pub fn parse(text: &[u8]) -> Option<ReplicationStatus> {
        match text {
            b"PENDING" => Some(ReplicationStatus::Pending),
            b"COMPLETED" => Some(ReplicationStatus::Completed),
            b"FAILED" => Some(ReplicationStatus::Failed),
            b"REPLICA" => Some(ReplicationStatus::Replica),
            _ => None,
        }
    }
}

/// The object attributes whose later changes are replicated: a version's tags (the gateway's
/// `tagging`), its ACL (`acl`), its retention and its legal hold.
pub const REPLICATED_ATTRIBUTES: [&str; 4] = [
    "tagging",
    "acl",
    crate::object_lock::RETENTION_ATTRIBUTE,
    crate::object_lock::LEGAL_HOLD_ATTRIBUTE,
];

/// What a queue entry replicates. Tags (codec): 0 Put, 1 DeleteMarker, 2 MetadataChange.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ReplicationEventKind {
    /// A committed object version (PUT, CopyObject, CompleteMultipartUpload).
    Put,
    /// A delete marker.
    DeleteMarker,
    /// A later change of one of [`REPLICATED_ATTRIBUTES`] of an existing version; the
    /// replicator brings the replica to the version's state when it runs (not to the state of
    /// the change), so one entry or many for the same version end the same way.
    MetadataChange,
}

/// One committed change waiting to be replicated.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ReplicationEntry {
    /// The id index of the command that committed the change (unique in the partition).
    pub seq: u64,
    pub bucket: String,
    pub key: String,
    pub version_id: VersionId,
    pub kind: ReplicationEventKind,
    /// `now_ms` of the committing command (of the wrapper, for a metadata change): the
    /// replication lag is measured from it.
    pub enqueued_at_ms: u64,
}

/// How the replicator finished an entry. Tags (codec): 0 Completed, 1 Failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ReplicationOutcome {
    /// The destination holds the replica.
    Completed,
    /// The destination refused for good (its bucket is gone, access denied, …).
    Failed,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ReplicationResolution {
    pub seq: u64,
    pub outcome: ReplicationOutcome,
}

/// The `now_ms` a command carries, for the commands [`Command::QueueReplication`] may wrap; `None`
/// for any other command.
fn wrapped_now_ms(command: &Command) -> Option<u64> {
    match command {
        Command::CommitWrite(command) => Some(command.now_ms),
        Command::CompleteMultipartUpload(command) => Some(command.now_ms),
        Command::DeleteObject(command) => Some(command.now_ms),
        Command::Conditional { command, .. } | Command::BypassGovernanceRetention { command } => {
            wrapped_now_ms(command)
        }
        _ => None,
    }
}

/// The version and attribute name of a PutObjectAttribute (possibly under
/// `BypassGovernanceRetention`); `None` for any other command.
fn wrapped_attribute(command: &Command) -> Option<(&str, &str, &VersionSelector, &str)> {
    match command {
        Command::PutObjectAttribute {
            bucket,
            key,
            version,
            name,
            ..
        } => Some((bucket, key, version, name)),
        Command::BypassGovernanceRetention { command } => wrapped_attribute(command),
        _ => None,
    }
}

/// What applying a `QueueReplication` needs to know from before its command applied.
#[derive(Debug)]
pub(crate) struct ReplicationPlan {
    /// The entry's `enqueued_at_ms`.
    enqueued_at_ms: u64,
    event: PlannedEvent,
}

#[derive(Debug)]
enum PlannedEvent {
    /// A write or delete: the version or delete marker it creates, if any.
    NewVersion,
    /// An attribute change: the version it addresses and that version's record version before
    /// the command (`None` when there is none: the command is refused then).
    MetadataChange { before: Option<(VersionId, u64)> },
}

impl StateMachine {
    /// Checks that `command` may be wrapped in `QueueReplication` (with `now_ms` exactly when
    /// it carries no time of its own) and that the queue has room.
    pub(crate) fn check_replication_wrapper(
        &self,
        command: &Command,
        now_ms: Option<u64>,
    ) -> Result<ReplicationPlan, MetaError> {
        let refused = |reason: String| MetaError::InvalidArgument { reason };
        let plan = match (wrapped_now_ms(command), wrapped_attribute(command), now_ms) {
            (Some(own_now_ms), _, None) => ReplicationPlan {
                enqueued_at_ms: own_now_ms,
                event: PlannedEvent::NewVersion,
            },
            (None, Some((bucket, key, selector, name)), Some(now_ms)) => {
                if !REPLICATED_ATTRIBUTES.contains(&name) {
                    return Err(refused(format!(
                        "changes of attribute {name} are not replicated"
                    )));
                }
                let before = self
                    .get_object(bucket, key, selector)
                    .ok()
                    .map(|record| (record.version_id, record.record_version));
                ReplicationPlan {
                    enqueued_at_ms: now_ms,
                    event: PlannedEvent::MetadataChange { before },
                }
            }
            (Some(_), _, Some(_)) | (None, Some(_), None) => {
                return Err(refused(format!(
                    "{} queued for replication with the wrong time: the wrapper carries one \
                     exactly when the command has none",
                    command.name()
                )));
            }
            (None, None, _) => {
                return Err(refused(format!(
                    "{} cannot be queued for replication",
                    command.name()
                )));
            }
        };
        if self.replication_queue.len() >= MAX_REPLICATION_QUEUE {
            return Err(MetaError::ReplicationBacklog {
                entries: self.replication_queue.len() as u64,
            });
        }
        Ok(plan)
    }

    /// After the wrapped command applied: queues the version it created or (see the module
    /// header) changed, if any, and marks it PENDING in the state and in `response`.
    pub(crate) fn queue_replication(
        &mut self,
        response: &mut Response,
        log_index: u64,
        plan: &ReplicationPlan,
    ) {
        let (record, kind) = match (&plan.event, response) {
            (
                PlannedEvent::NewVersion,
                Response::Committed {
                    record,
                    retried: false,
                },
            ) => (record, ReplicationEventKind::Put),
            (
                PlannedEvent::NewVersion,
                Response::Deleted {
                    delete_marker: Some(marker),
                    ..
                },
            ) => (marker, ReplicationEventKind::DeleteMarker),
            (
                PlannedEvent::MetadataChange {
                    before: Some((version_id, record_version)),
                },
                Response::Object(record),
            ) if record.version_id == *version_id && record.record_version != *record_version => {
                // Only a version selected for replication, and never a replica.
                let selected = matches!(
                    record
                        .attributes
                        .get(REPLICATION_STATUS_ATTRIBUTE)
                        .and_then(|value| ReplicationStatus::parse(value)),
                    Some(
                        ReplicationStatus::Pending
                            | ReplicationStatus::Completed
                            | ReplicationStatus::Failed
                    )
                );
                if !selected {
                    return;
                }
                (record, ReplicationEventKind::MetadataChange)
            }
            _ => return,
        };
        let version_key = (record.bucket.clone(), record.key.clone(), record.version_id);
        let Some(stored) = self.versions.get_mut(&version_key) else {
            return;
        };
        let status = ReplicationStatus::Pending.as_str().as_bytes().to_vec();
        stored
            .attributes
            .insert(REPLICATION_STATUS_ATTRIBUTE.to_owned(), status.clone());
        record
            .attributes
            .insert(REPLICATION_STATUS_ATTRIBUTE.to_owned(), status);
        self.replication_queue.insert(
            log_index,
            ReplicationEntry {
                seq: log_index,
                bucket: record.bucket.clone(),
                key: record.key.clone(),
                version_id: record.version_id,
                kind,
                enqueued_at_ms: plan.enqueued_at_ms,
            },
        );
    }

    pub(crate) fn resolve_replication(
        &mut self,
        resolutions: &[ReplicationResolution],
    ) -> Response {
        let mut resolved_count = 0u32;
        for resolution in resolutions {
            let Some(entry) = self.replication_queue.remove(&resolution.seq) else {
                continue;
            };
            resolved_count += 1;
            let status = match resolution.outcome {
                ReplicationOutcome::Completed => ReplicationStatus::Completed,
                ReplicationOutcome::Failed => ReplicationStatus::Failed,
            };
            if let Some(record) =
                self.versions
                    .get_mut(&(entry.bucket.clone(), entry.key.clone(), entry.version_id))
            {
                record.attributes.insert(
                    REPLICATION_STATUS_ATTRIBUTE.to_owned(),
                    status.as_str().as_bytes().to_vec(),
                );
            }
        }
        Response::ReplicationResolved { resolved_count }
    }

    /// Up to `limit` entries after `after_seq` (exclusive), oldest first.
    pub(crate) fn list_replication_queue(&self, after_seq: Option<u64>, limit: u32) -> Response {
        let lower = match after_seq {
            Some(after) => Bound::Excluded(after),
            None => Bound::Unbounded,
        };
        Response::ReplicationQueue(
            self.replication_queue
                .range((lower, Bound::Unbounded))
                .take(limit as usize)
                .map(|(_, entry)| entry.clone())
                .collect(),
        )
    }
}
