//! The replication queue of an object partition: the event stream of committed writes and delete
//! markers that cross-region replication copies to another bucket.
//!
//! Model: the gateway wraps the commit of a write (CommitWrite, CompleteMultipartUpload) or a
//! DeleteObject in [`crate::Command::QueueReplication`] when the bucket's replication
//! configuration has an enabled rule for the key. Applying the wrapper applies the inner command
//! and, in the same log entry, when it created a new committed version or delete marker:
//! - sets the version's attribute [`REPLICATION_STATUS_ATTRIBUTE`] to `PENDING`;
//! - appends a [`ReplicationEntry`] whose `seq` is the id index of that command (its log index
//!   unless it was batched; unique and increasing, see the `machine` module's "Id indexes").
//!
//! The replicator lists the queue (`Query::ListReplicationQueue`, in `seq` order), copies each
//! entry's version to the destination, and sends `Command::ResolveReplication`, which removes the
//! entries and sets the source version's status to `COMPLETED` or `FAILED` atomically. The queue is
//! the replicator's checkpoint: an entry leaves only through a resolution, so a replicator or
//! either region restarting resumes where it was; the queue is in the partition's snapshots.
//!
//! Invariants:
//! - bounded: at most [`MAX_REPLICATION_QUEUE`] entries; a wrapped command arriving at a full
//!   queue is refused (`MetaError::ReplicationBacklog`) before it changes anything;
//! - one entry per `seq` (one wrapped command makes at most one entry), stored under its `seq`;
//! - an entry is never created for a retried commit (`retried: true`) nor for a refused command;
//! - resolving an unknown `seq` changes nothing (a retried resolution); a version removed since it
//!   was queued is resolved without a status to set.

use std::ops::Bound;

use crate::command::{Command, Response};
use crate::error::MetaError;
use crate::machine::StateMachine;
use crate::records::VersionId;

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

/// What a queue entry replicates. Tags (codec): 0 Put, 1 DeleteMarker.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ReplicationEventKind {
    /// A committed object version (PUT, CopyObject, CompleteMultipartUpload).
    Put,
    /// A delete marker.
    DeleteMarker,
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
    /// `now_ms` of the committing command: the replication lag is measured from it.
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

impl StateMachine {
    /// Checks that `command` may be wrapped in `QueueReplication` and that the queue has room;
    /// answers its `now_ms`.
    pub(crate) fn check_replication_wrapper(&self, command: &Command) -> Result<u64, MetaError> {
        let now_ms = wrapped_now_ms(command).ok_or_else(|| MetaError::InvalidArgument {
            reason: format!("{} cannot be queued for replication", command.name()),
        })?;
        if self.replication_queue.len() >= MAX_REPLICATION_QUEUE {
            return Err(MetaError::ReplicationBacklog {
                entries: self.replication_queue.len() as u64,
            });
        }
        Ok(now_ms)
    }

    /// After the wrapped command applied: queues the version it created, if any, and marks it
    /// PENDING in the state and in `response`.
    pub(crate) fn queue_replication(
        &mut self,
        response: &mut Response,
        log_index: u64,
        now_ms: u64,
    ) {
        let (record, kind) = match response {
            Response::Committed {
                record,
                retried: false,
            } => (record, ReplicationEventKind::Put),
            Response::Deleted {
                delete_marker: Some(marker),
                ..
            } => (marker, ReplicationEventKind::DeleteMarker),
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
                enqueued_at_ms: now_ms,
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
