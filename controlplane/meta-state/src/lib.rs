//! Sans-I/O metadata state machine: object, bucket, multipart, access-key, KMS key and node
//! records.
//!
//! Model: a [`StateMachine`] is the state of one Raft group. A Raft log entry carries a
//! [`Command`]; [`StateMachine::apply`] applies it at a log index and returns an [`Output`] (a
//! result or a typed [`MetaError`], plus any garbage shards the command produced). Nothing in this
//! crate performs I/O, reads a clock or draws random numbers: time arrives as `now_ms` inside
//! commands and ids derive from the log index (through the per-command id index, which also
//! numbers the commands of a batched entry: see [`Command::Batch`]), so every replica computes
//! identical states.
//!
//! The same type serves both kinds of instance (see [`role`]): object partitions (objects,
//! multipart uploads, garbage; routed by `bucket/key`) and the bucket service (buckets, access keys,
//! KMS keys, storage nodes). A `Combined` instance holds everything, for `cairn dev` and tests.
//!
//! Every record, every command and the whole state have a versioned binary encoding ([`codec`]):
//! [`encode_record`]/[`decode_record`] for single values, [`StateMachine::to_snapshot_bytes`] and
//! [`StateMachine::from_snapshot_bytes`] for snapshots; [`keys`] encodes every key space's keys
//! so that byte order equals the state machine's order (for LMDB), and [`stored`] gives the
//! state as one LMDB value per record, changed records only ([`StateMachine::take_changes`]).
//!
//! ```
//! use cairn_meta_state::*;
//!
//! let mut state = StateMachine::new(Role::ObjectPartition { partition_index: 0, partition_count: 4 });
//! let prepare = Command::PrepareWrite(PrepareWrite {
//!     bucket: "photos".into(),
//!     key: "cat.jpg".into(),
//!     idempotency_token: "put-1".into(),
//!     size_bytes: 0,
//!     content_type: "image/jpeg".into(),
//!     owner: "alice".into(),
//!     user_metadata: Default::default(),
//!     storage_class: StorageClass::Standard,
//!     acl: Acl::default(),
//!     ec_scheme: "isal-cauchy:4+2".into(),
//!     piece_size_bytes: 65_536,
//!     versioning: VersioningState::Unversioned,
//!     now_ms: 1_700_000_000_000,
//!     attributes: Default::default(),
//! });
//! // The log entry is the encoded command; the same bytes replay identically everywhere.
//! let entry = encode_record(&prepare);
//! let output = state.apply(decode_record(&entry).unwrap(), 1);
//! let Ok(Response::Prepared { record, retried: false }) = output.result else { panic!() };
//! assert_eq!(record.version_id, VersionId(1));
//! assert_eq!(record.state, TransactionState::Preparing);
//!
//! let commit = Command::CommitWrite(CommitWrite {
//!     bucket: "photos".into(),
//!     key: "cat.jpg".into(),
//!     version_id: record.version_id,
//!     idempotency_token: "put-1".into(),
//!     checksums: Checksums { etag: "d41d8cd98f00b204e9800998ecf8427e".into(), additional: None },
//!     parts: vec![PartShards { part_number: 1, length_bytes: 0, blocks: Vec::new() }],
//!     now_ms: 1_700_000_000_050,
//! });
//! assert!(state.apply(commit, 2).is_ok());
//! let current = state.query(&Query::GetObject {
//!     bucket: "photos".into(),
//!     key: "cat.jpg".into(),
//!     version: VersionSelector::Current,
//! });
//! assert!(matches!(current, Ok(Response::Object(record)) if record.state == TransactionState::Committed));
//! ```

mod attributes;
mod bucket_service;
pub mod codec;
pub mod command;
pub mod error;
pub mod keys;
pub mod kms;
mod list;
mod machine;
mod multipart;
pub mod object_lock;
mod objects;
pub mod records;
pub mod replication;
pub mod role;
pub mod stored;
pub mod stored_length;
pub mod suspects;
mod tracked;
pub mod usage;

pub use bucket_service::validate_bucket_name;
pub use codec::{DecodeError, FORMAT_VERSION, Record, RecordKind, decode_record, encode_record};
pub use command::*;
pub use error::MetaError;
pub use kms::{
    CreateKmsKey, KmsCommand, KmsKeyRecord, KmsKeyState, KmsKeyVersion, KmsQuery, kms_key_arn,
};
pub use list::{ListPosition, prefix_successor};
pub use machine::{
    MAX_KEY_BYTES, MAX_LIST_KEYS, MAX_PART_NUMBER, MIN_PART_SIZE_BYTES, StateMachine,
};
pub use records::*;
pub use replication::{
    MAX_REPLICATION_QUEUE, REPLICATED_ATTRIBUTES, REPLICATION_STATUS_ATTRIBUTE, ReplicationEntry,
    ReplicationEventKind, ReplicationOutcome, ReplicationResolution, ReplicationStatus,
};
pub use role::{Role, Scope};
pub use stored_length::stored_length_bytes;
pub use suspects::MAX_SUSPECTS;
pub use usage::BucketStats;
