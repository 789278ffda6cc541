//! The stored form of a state: one value per record, so a store writes what changed instead of
//! the whole state.
//!
//! Model: every record of every persistent key space is one (key, value) pair, the key from
//! [`crate::keys`] (order-preserving, key-space tag first) and the value [`encode_record`] of the
//! record. The rest of the state (role, last applied index, last id index, version tag, sealed
//! buckets, cluster layout) is one small header value. The derived indexes (current versions,
//! tokens, PREPARING, usage) are not stored; they are rebuilt on load, as for a snapshot.
//!
//! [`StateMachine::take_changes`] returns the header and the records changed since the previous
//! call: a put for each changed key still present, a delete for each one removed. A store that
//! applies every change set in order, atomically with the header, holds exactly the state as of
//! the header's last applied index, and [`StateMachine::from_stored`] restores it. The key spaces
//! record their changed keys themselves (`TrackedMap`, in the private `tracked` module), so the
//! cost of a change set is the number of keys changed, not the size of the state.
//!
//! [`snapshot_from_stored`] turns the stored form into the snapshot encoding
//! ([`StateMachine::to_snapshot_bytes`]) without building the state: the key spaces' key order
//! is the snapshot's section order, and a record's stored value is its snapshot encoding behind a
//! two-byte header, so the snapshot is the stored values copied in order with section counts,
//! costing a copy of the bytes rather than a decode and an encode of every record.
//!
//! Invariants (tested after every command of the meta-state test harness): applying each change
//! set to a key-value map and loading the map gives a state equal to the live one, and
//! [`snapshot_from_stored`] of the map equals the live state's snapshot byte for byte; a state
//! just loaded (from the store or a snapshot) has no pending changes.

use std::collections::BTreeMap;

use crate::codec::{
    Decode, DecodeError, Encode, FORMAT_VERSION, Reader, Record, RecordKind, Writer, decode_record,
    decode_state_role, encode_record, read_header,
};
use crate::keys::{self, KeySpace};
use crate::machine::StateMachine;
use crate::role::Role;
use crate::tracked::TrackedMap;

/// What changed in a state since the previous [`StateMachine::take_changes`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StoredChanges {
    /// The header value; written with every change set.
    pub header: Vec<u8>,
    /// Records to write: (key, value), in key order within each key space.
    pub puts: Vec<(Vec<u8>, Vec<u8>)>,
    /// Keys of records removed.
    pub deletes: Vec<Vec<u8>>,
}

impl StoredChanges {
    /// Applies the change set to a key-value map (a model of the store, for tests and tools).
    pub fn apply_to(&self, records: &mut BTreeMap<Vec<u8>, Vec<u8>>) {
        for key in &self.deletes {
            records.remove(key);
        }
        for (key, value) in &self.puts {
            records.insert(key.clone(), value.clone());
        }
    }
}

/// Moves one key space's changed keys into `changes` (every key when `all`), forgetting them.
fn take_space<V: StoredRecord>(
    space: &mut TrackedMap<V::Key, V>,
    all: bool,
    changes: &mut StoredChanges,
) {
    let changed = space.take_changed();
    if all {
        for (key, record) in space.iter() {
            changes
                .puts
                .push((V::key_bytes(key), encode_record(record)));
        }
        return;
    }
    for key in changed {
        let bytes = V::key_bytes(&key);
        match space.get(&key) {
            Some(record) => changes.puts.push((bytes, encode_record(record))),
            None => changes.deletes.push(bytes),
        }
    }
}

/// Decodes one stored record and checks that it sits under its own key.
fn decode_stored<V: StoredRecord>(
    space: &mut BTreeMap<V::Key, V>,
    stored_key: &[u8],
    value: &[u8],
) -> Result<(), DecodeError> {
    let record: V = decode_record(value)?;
    let key = record.key();
    if V::key_bytes(&key) != stored_key {
        return Err(DecodeError::Inconsistent {
            reason: format!(
                "record of kind {} stored under another record's key",
                V::KIND as u8
            ),
        });
    }
    if space.insert(key, record).is_some() {
        return Err(DecodeError::Inconsistent {
            reason: "two stored records share a key".to_owned(),
        });
    }
    Ok(())
}

/// A record of a persistent key space: its key in the state's map and that key's stored bytes
/// ([`crate::keys`]). The one place a record type is tied to its key; the snapshot codec and the
/// stored form both use it.
pub(crate) trait StoredRecord: Record + Sized {
    type Key: Ord + Clone;
    fn key(&self) -> Self::Key;
    fn key_bytes(key: &Self::Key) -> Vec<u8>;
}

macro_rules! stored_record {
    ($record:ty, $key:ty, |$self_:ident| $key_of:expr, |$k:ident| $bytes:expr) => {
        impl StoredRecord for $record {
            type Key = $key;
            fn key(&$self_) -> $key {
                $key_of
            }
            fn key_bytes($k: &$key) -> Vec<u8> {
                $bytes
            }
        }
    };
}

stored_record!(
    crate::BucketRecord,
    String,
    |self| self.name.clone(),
    |key| keys::bucket_key(key)
);
stored_record!(
    crate::ObjectRecord,
    (String, String, crate::VersionId),
    |self| (self.bucket.clone(), self.key.clone(), self.version_id),
    |key| keys::object_version_key(&key.0, &key.1, key.2)
);
stored_record!(
    crate::MultipartUpload,
    (String, String, crate::UploadId),
    |self| (self.bucket.clone(), self.key.clone(), self.upload_id),
    |key| keys::upload_key(&key.0, &key.1, key.2)
);
stored_record!(
    crate::GarbageRecord,
    crate::GarbageId,
    |self| self.garbage_id,
    |key| keys::garbage_key(*key)
);
stored_record!(
    crate::AccessKeyRecord,
    String,
    |self| self.access_key_id.clone(),
    |key| keys::access_key_key(key)
);
stored_record!(
    crate::NodeRecord,
    crate::NodeId,
    |self| self.node_id,
    |key| keys::node_key(*key)
);
stored_record!(
    crate::SuspectRecord,
    (String, String, crate::VersionId),
    |self| (self.bucket.clone(), self.key.clone(), self.version_id),
    |key| keys::suspect_key(&key.0, &key.1, key.2)
);
stored_record!(
    crate::kms::KmsKeyRecord,
    String,
    |self| self.key_id.clone(),
    |key| keys::kms_key_key(key)
);
stored_record!(
    crate::replication::ReplicationEntry,
    u64,
    |self| self.seq,
    |key| keys::replication_key(*key)
);

impl StateMachine {
    /// The header value of the stored form (see the module header).
    pub fn stored_header(&self) -> Vec<u8> {
        let mut writer = Writer::new();
        writer.u8(FORMAT_VERSION);
        writer.u8(RecordKind::StoredStateHeader as u8);
        self.role.encode(&mut writer);
        writer.u64(self.last_applied_index);
        writer.u64(self.last_id_index);
        writer.u8(self.version_tag);
        self.sealed_buckets.encode(&mut writer);
        self.layout.encode(&mut writer);
        writer.into_bytes()
    }

    /// The header and the records changed since the previous call (or since the state was
    /// created or loaded); forgets them.
    pub fn take_changes(&mut self) -> StoredChanges {
        self.take_stored(false)
    }

    /// The header and every record, for a store that starts over (after a snapshot was
    /// installed); forgets pending changes. `deletes` is empty: the store clears itself first.
    pub fn take_all_records(&mut self) -> StoredChanges {
        self.take_stored(true)
    }

    fn take_stored(&mut self, all: bool) -> StoredChanges {
        let mut changes = StoredChanges {
            header: self.stored_header(),
            ..StoredChanges::default()
        };
        take_space(&mut self.buckets, all, &mut changes);
        take_space(&mut self.versions, all, &mut changes);
        take_space(&mut self.uploads, all, &mut changes);
        take_space(&mut self.garbage, all, &mut changes);
        take_space(&mut self.access_keys, all, &mut changes);
        take_space(&mut self.nodes, all, &mut changes);
        take_space(&mut self.suspects, all, &mut changes);
        take_space(&mut self.kms_keys, all, &mut changes);
        take_space(&mut self.replication_queue, all, &mut changes);
        changes
    }

    /// Restores a state from its header and every stored record (in any order), checking that
    /// each record sits under its own key and the record invariants. The result has no pending
    /// changes.
    pub fn from_stored<'a>(
        header: &[u8],
        records: impl IntoIterator<Item = (&'a [u8], &'a [u8])>,
    ) -> Result<StateMachine, DecodeError> {
        let mut reader = Reader::new(header);
        read_header(&mut reader, RecordKind::StoredStateHeader)?;
        let role = decode_state_role(&mut reader)?;
        let mut state = StateMachine::new(role);
        state.last_applied_index = reader.u64()?;
        state.last_id_index = reader.u64()?;
        state.version_tag = reader.u8()?;
        state.sealed_buckets = Decode::decode(&mut reader)?;
        state.layout = Decode::decode(&mut reader)?;
        reader.finish()?;
        if state.last_id_index < state.last_applied_index {
            return Err(DecodeError::Inconsistent {
                reason: "last id index below the last applied index".to_owned(),
            });
        }

        let mut buckets = BTreeMap::<_, crate::BucketRecord>::new();
        let mut versions = BTreeMap::<_, crate::ObjectRecord>::new();
        let mut uploads = BTreeMap::<_, crate::MultipartUpload>::new();
        let mut garbage = BTreeMap::<_, crate::GarbageRecord>::new();
        let mut access_keys = BTreeMap::<_, crate::AccessKeyRecord>::new();
        let mut nodes = BTreeMap::<_, crate::NodeRecord>::new();
        let mut suspects = BTreeMap::<_, crate::SuspectRecord>::new();
        let mut kms_keys = BTreeMap::<_, crate::kms::KmsKeyRecord>::new();
        let mut replication_queue = BTreeMap::<_, crate::replication::ReplicationEntry>::new();
        for (key, value) in records {
            let Some(&space) = key.first() else {
                return Err(DecodeError::UnexpectedEnd {
                    offset: 0,
                    needed: 1,
                });
            };
            match space {
                space if space == KeySpace::Bucket as u8 => {
                    decode_stored(&mut buckets, key, value)?
                }
                space if space == KeySpace::ObjectVersion as u8 => {
                    decode_stored(&mut versions, key, value)?
                }
                space if space == KeySpace::Upload as u8 => {
                    decode_stored(&mut uploads, key, value)?
                }
                space if space == KeySpace::Garbage as u8 => {
                    decode_stored(&mut garbage, key, value)?
                }
                space if space == KeySpace::AccessKey as u8 => {
                    decode_stored(&mut access_keys, key, value)?
                }
                space if space == KeySpace::Node as u8 => decode_stored(&mut nodes, key, value)?,
                space if space == KeySpace::Suspect as u8 => {
                    decode_stored(&mut suspects, key, value)?
                }
                space if space == KeySpace::KmsKey as u8 => {
                    decode_stored(&mut kms_keys, key, value)?
                }
                space if space == KeySpace::Replication as u8 => {
                    decode_stored(&mut replication_queue, key, value)?
                }
                tag => {
                    return Err(DecodeError::InvalidTag {
                        what: "stored key space",
                        tag,
                        offset: 0,
                    });
                }
            }
        }
        state.buckets = buckets.into();
        state.versions = versions.into();
        state.uploads = uploads.into();
        state.garbage = garbage.into();
        state.access_keys = access_keys.into();
        state.nodes = nodes.into();
        state.suspects = suspects.into();
        state.kms_keys = kms_keys.into();
        state.replication_queue = replication_queue.into();
        state
            .rebuild_indexes()
            .map_err(|reason| DecodeError::Inconsistent { reason })?;
        state
            .check_records()
            .map_err(|reason| DecodeError::Inconsistent { reason })?;
        Ok(state)
    }
}

/// The persistent key spaces in snapshot section order, the section the state's sealed buckets
/// and layout follow, and where the optional trailing sections begin (see
/// [`StateMachine::to_snapshot_bytes`]).
const SNAPSHOT_SPACES: [KeySpace; 9] = [
    KeySpace::Bucket,
    KeySpace::ObjectVersion,
    KeySpace::Upload,
    KeySpace::Garbage,
    KeySpace::AccessKey,
    KeySpace::Node,
    KeySpace::Suspect,
    KeySpace::KmsKey,
    KeySpace::Replication,
];
/// Sections before the sealed buckets and layout.
const LEADING_SPACES: usize = 6;

/// Appends one stored record's snapshot encoding: its stored bytes behind the header when they
/// are in this build's format, else decoded and encoded again.
fn append_record<T: Record>(writer: &mut Writer, value: &[u8]) -> Result<(), DecodeError> {
    match value {
        [version, kind, body @ ..] if *version == FORMAT_VERSION && *kind == T::KIND as u8 => {
            writer.raw(body);
            Ok(())
        }
        _ => {
            decode_record::<T>(value)?.encode(writer);
            Ok(())
        }
    }
}

/// Streams the snapshot encoding of a stored state (see the module header).
struct SnapshotAssembler {
    writer: Writer,
    sealed_and_layout: Vec<u8>,
    /// Sections written so far (indexes into [`SNAPSHOT_SPACES`]).
    sections_done: usize,
    /// The open section: its count's position and the records in it.
    open: Option<(usize, u32)>,
}

impl SnapshotAssembler {
    fn close_open(&mut self) {
        if let Some((position, count)) = self.open.take() {
            self.writer.patch_u32(position, count);
            self.sections_done += 1;
            if self.sections_done == LEADING_SPACES {
                self.writer.raw(&self.sealed_and_layout);
            }
        }
    }

    /// Writes every section up to (not including) `section` (empty where nothing was open).
    fn write_up_to(&mut self, section: usize) {
        self.close_open();
        while self.sections_done < section {
            self.writer.u32(0);
            self.sections_done += 1;
            if self.sections_done == LEADING_SPACES {
                self.writer.raw(&self.sealed_and_layout);
            }
        }
    }

    fn append(&mut self, space: u8, value: &[u8]) -> Result<(), DecodeError> {
        let Some(section) = SNAPSHOT_SPACES
            .iter()
            .position(|known| *known as u8 == space)
        else {
            return Err(DecodeError::InvalidTag {
                what: "stored key space",
                tag: space,
                offset: 0,
            });
        };
        // The open section, if any, is the one after the closed ones.
        let open_section = self.open.map(|_| self.sections_done);
        if open_section != Some(section) {
            if section < self.sections_done {
                return Err(DecodeError::Inconsistent {
                    reason: "stored records out of key-space order".to_owned(),
                });
            }
            self.write_up_to(section);
            self.open = Some((self.writer.position(), 0));
            self.writer.u32(0);
        }
        match SNAPSHOT_SPACES[section] {
            KeySpace::Bucket => append_record::<crate::BucketRecord>(&mut self.writer, value)?,
            KeySpace::ObjectVersion => {
                append_record::<crate::ObjectRecord>(&mut self.writer, value)?
            }
            KeySpace::Upload => append_record::<crate::MultipartUpload>(&mut self.writer, value)?,
            KeySpace::Garbage => append_record::<crate::GarbageRecord>(&mut self.writer, value)?,
            KeySpace::AccessKey => {
                append_record::<crate::AccessKeyRecord>(&mut self.writer, value)?
            }
            KeySpace::Node => append_record::<crate::NodeRecord>(&mut self.writer, value)?,
            KeySpace::Suspect => append_record::<crate::SuspectRecord>(&mut self.writer, value)?,
            KeySpace::KmsKey => append_record::<crate::kms::KmsKeyRecord>(&mut self.writer, value)?,
            KeySpace::Replication => {
                append_record::<crate::replication::ReplicationEntry>(&mut self.writer, value)?
            }
            KeySpace::Current | KeySpace::Token => unreachable!("not in SNAPSHOT_SPACES"),
        }
        if let Some((_, count)) = &mut self.open {
            *count += 1;
        }
        Ok(())
    }
}

/// The snapshot encoding ([`StateMachine::to_snapshot_bytes`]) of a stored state, from its header
/// and every stored record in key order, without building the state (see the module header).
/// The result is checked by whoever decodes it, as every snapshot is.
pub fn snapshot_from_stored<'a>(
    header: &[u8],
    records: impl IntoIterator<Item = (&'a [u8], &'a [u8])>,
) -> Result<Vec<u8>, DecodeError> {
    let mut reader = Reader::new(header);
    read_header(&mut reader, RecordKind::StoredStateHeader)?;
    let role = decode_state_role(&mut reader)?;
    let last_applied_index = reader.u64()?;
    let last_id_index = reader.u64()?;
    let version_tag = reader.u8()?;
    let sealed_buckets: std::collections::BTreeSet<String> = Decode::decode(&mut reader)?;
    let layout: Option<crate::ClusterLayout> = Decode::decode(&mut reader)?;
    reader.finish()?;
    let mut sealed_and_layout = Writer::new();
    sealed_buckets.encode(&mut sealed_and_layout);
    if role == Role::PartitionMap {
        layout.encode(&mut sealed_and_layout);
    }
    let mut writer = Writer::new();
    writer.u8(FORMAT_VERSION);
    writer.u8(RecordKind::Snapshot as u8);
    role.encode(&mut writer);
    writer.u64(last_applied_index);
    let mut assembler = SnapshotAssembler {
        writer,
        sealed_and_layout: sealed_and_layout.into_bytes(),
        sections_done: 0,
        open: None,
    };
    for (key, value) in records {
        let Some(&space) = key.first() else {
            return Err(DecodeError::UnexpectedEnd {
                offset: 0,
                needed: 1,
            });
        };
        assembler.append(space, value)?;
    }
    // The leading sections always; the trailing ones up to the last non-empty one, then the
    // last id index and the version tag when they are not at their defaults.
    let written = assembler.sections_done + usize::from(assembler.open.is_some());
    let trailing = if version_tag != 0 {
        5
    } else if last_id_index != last_applied_index {
        4
    } else {
        written.saturating_sub(LEADING_SPACES)
    };
    assembler.write_up_to(LEADING_SPACES + trailing.min(3));
    let mut writer = assembler.writer;
    if trailing >= 4 {
        writer.u64(last_id_index);
    }
    if trailing >= 5 {
        writer.u8(version_tag);
    }
    let mut bytes = writer.into_bytes();
    let checksum = crc32c::crc32c(&bytes);
    bytes.extend_from_slice(&checksum.to_le_bytes());
    Ok(bytes)
}
