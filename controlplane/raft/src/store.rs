//! Raft log and state machine storage of one metadata group, in LMDB through heed.
//!
//! # Model
//!
//! Each group owns one LMDB environment (a directory `group-<id>/` under the node's data dir).
//! One environment per group rather than per process because LMDB admits one write transaction
//! per environment at a time: with a shared environment every partition's log append would wait
//! for every other partition's fsync, and partitions exist precisely to commit in parallel. A
//! group's directory can also be deleted or copied as a unit. The cost is one memory map and a
//! few file descriptors per group, which is small for the tens of groups a process hosts.
//!
//! The environment holds four named databases:
//! - `log`: log index (u64, big-endian so byte order is index order) → [`LOG_FORMAT_VERSION`]
//!   byte + postcard of the openraft entry (whose payload is the meta-state command encoding);
//! - `meta`: `vote`, `last_purged` and `committed` → version byte + postcard of the openraft value;
//! - `state`: the state machine's records, one LMDB value per record under its order-preserving
//!   key ([`cairn_meta_state::stored`]);
//! - `snapshot`: `meta` → version byte + postcard of the [`SnapshotMeta`] the `state` database
//!   is at (its last log id and membership), `state` → the state's header value (scalars, sealed
//!   buckets, layout). Stores written before the `state` database existed hold the whole state
//!   as one snapshot encoding under `data` instead; it is read once and replaced by records at
//!   the next checkpoint.
//!
//! The state machine ([`StateMachine`]) is applied in memory and written to the `state`
//! database at checkpoints. A checkpoint is openraft's "build snapshot" (every
//! [`crate::node::RaftTiming::snapshot_after_log_entries`] entries): it takes the records
//! changed since the previous checkpoint (the state's key spaces track them), under the state
//! lock for as long as encoding those records takes, and writes them with the header and the
//! snapshot meta in one fsynced transaction. Its cost is the number of records changed, not the
//! size of the state, so a partition of millions of objects checkpoints as cheaply as a small
//! one. Opening a group loads the records, and openraft re-applies the log after the checkpoint
//! up to the committed index it finds, so a restarted node rebuilds its state without waiting
//! for a leader. Log entries are purged only up to a checkpoint that is durable, so the
//! checkpoint plus the remaining log always reproduce every applied entry.
//!
//! A snapshot in openraft's sense (the whole state in one encoding) exists only when a follower
//! needs one (it lags behind the purged log, or joins): [`RaftStateMachine::get_current_snapshot`]
//! assembles it from the `state` database in one read transaction, at the checkpoint's log id,
//! by copying the stored records' bytes in key order
//! ([`cairn_meta_state::stored::snapshot_from_stored`]). That costs a read and a copy of the
//! whole state, and the group applies nothing while it runs (openraft serves the request on the
//! state machine's task); it is rare by construction. A snapshot received from the leader
//! replaces the `state` database whole.
//!
//! The committed log id costs no fsync of its own: `save_committed` only records it in memory and
//! the next log or vote transaction writes it along. A crash can therefore lose the latest
//! committed id, which is safe: an older committed id is still a true lower bound, and the leader
//! re-announces the rest.
//!
//! `append` writes and fsyncs before it returns rather than handing the entries to a background
//! group commit: openraft 0.9.25 waits for each append's flush callback before it takes the next
//! client write (`RaftCore::append_to_log`), so a deferred flush would batch nothing. A leader
//! therefore appends at most one entry per fsync per group. The batching happens one level up:
//! the node's proposer ([`crate::proposer`]) puts every client write that queued up while the
//! previous entry was being flushed into one entry (a `Command::Batch`), so one fsync commits
//! many commands; followers receive several entries per AppendEntries and write them in one
//! transaction. Throughput beyond one group's fsync rate comes from partitions.
//!
//! # Invariants
//!
//! - Every write is one LMDB transaction committed with fsync (the environment is opened without
//!   `NO_SYNC`/`NO_META_SYNC`): when `append` reports the entries flushed, or `save_vote` returns,
//!   the data survives a crash.
//! - Writes run on tokio's blocking pool and are awaited before the storage call returns, so
//!   openraft's ordering of append, truncate and purge is the order on disk.
//! - `last_purged` is written before the purged entries are deleted, in the same transaction.
//! - A snapshot whose state-machine role differs from the group's role is refused.
//! - The `state` database, its header and the snapshot meta change only together, in one
//!   transaction, so they always describe the state at one log id. Checkpoints and snapshot
//!   installs hold one lock across taking the changes and writing them, so a change set is never
//!   written over a state installed after it was taken. A checkpoint whose write fails marks the
//!   state for a whole rewrite, because its change set is gone from the state's tracking.

use std::io::Cursor;
use std::ops::{Bound, RangeBounds};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use cairn_meta_state::stored::StoredChanges;
use cairn_meta_state::{MetaError, Query, Response, Role, StateMachine};
use heed::byteorder::BigEndian;
use heed::types::{Bytes, Str, U64};
use heed::{CommitOrAbort, Database, Env, EnvOpenOptions};
use openraft::storage::{LogFlushed, RaftLogStorage, RaftStateMachine};
use openraft::{
    EntryPayload, LogState, OptionalSend, RaftLogReader, RaftSnapshotBuilder, StorageIOError,
};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::types::{
    Entry, LogId, MetaResponse, Snapshot, SnapshotMeta, StorageError, StoredMembership, TypeConfig,
    Vote,
};

/// Leading byte of every value this module writes, so the layout can change later.
pub const LOG_FORMAT_VERSION: u8 = 1;

/// Default LMDB map size per group: the most the group's file may grow to. The map is virtual
/// address space, not disk (the file grows with the data), so it is sized for the worst case: a
/// partition of millions of records whose snapshot is written as one value next to the previous
/// one (copy-on-write keeps both until the commit).
pub const DEFAULT_MAP_SIZE_BYTES: usize = 16 << 30;

const KEY_VOTE: &str = "vote";
const KEY_LAST_PURGED: &str = "last_purged";
const KEY_COMMITTED: &str = "committed";
const KEY_SNAPSHOT_META: &str = "meta";
/// The whole state as one snapshot encoding, in stores written before the `state` database.
const KEY_SNAPSHOT_DATA: &str = "data";
const KEY_STATE_HEADER: &str = "state";

/// Errors opening a group's storage.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("lmdb: {0}")]
    Lmdb(#[from] heed::Error),
    #[error("io on {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("corrupt {what}: {reason}")]
    Corrupt { what: &'static str, reason: String },
    #[error("snapshot holds role {found:?}, the group has role {expected:?}")]
    WrongRole { expected: Role, found: Role },
}

type LogDatabase = Database<'static, U64<BigEndian>, Bytes>;
type NamedDatabase = Database<'static, Str, Bytes>;

/// The LMDB environment of one group and its databases.
struct GroupDatabases {
    env: Env,
    log: LogDatabase,
    meta: NamedDatabase,
    snapshot: NamedDatabase,
    state: StateDatabase,
}

type StateDatabase = Database<'static, Bytes, Bytes>;
/// One record of the state database: (key, value), borrowed from a transaction.
type StoredRecordBytes<'txn> = (&'txn [u8], &'txn [u8]);

fn encode_value<T: Serialize>(value: &T) -> Vec<u8> {
    let mut bytes = vec![LOG_FORMAT_VERSION];
    // postcard only fails on types serde cannot describe (maps with unknown length, etc.), which
    // openraft's types are not; a failure here is a programming error.
    let body = postcard::to_stdvec(value).expect("openraft types serialise with postcard");
    bytes.extend_from_slice(&body);
    bytes
}

fn decode_value<T: DeserializeOwned>(what: &'static str, bytes: &[u8]) -> Result<T, StoreError> {
    match bytes.split_first() {
        Some((&LOG_FORMAT_VERSION, body)) => {
            postcard::from_bytes(body).map_err(|error| StoreError::Corrupt {
                what,
                reason: error.to_string(),
            })
        }
        Some((version, _)) => Err(StoreError::Corrupt {
            what,
            reason: format!("unknown format version {version}"),
        }),
        None => Err(StoreError::Corrupt {
            what,
            reason: "empty value".to_owned(),
        }),
    }
}

impl GroupDatabases {
    fn open(dir: &Path, map_size_bytes: usize) -> Result<GroupDatabases, StoreError> {
        std::fs::create_dir_all(dir).map_err(|source| StoreError::Io {
            path: dir.to_owned(),
            source,
        })?;
        let mut options = EnvOpenOptions::new();
        options.map_size(map_size_bytes).max_dbs(5);
        // SAFETY: heed requires that the same environment is not opened twice in one process
        // (it checks and returns EnvAlreadyOpened) and that the files are not modified by another
        // process without LMDB's locking; each group directory belongs to one group of one node.
        let env = unsafe { options.open(dir)? };
        let write_txn = env.write_txn()?;
        let (log, meta, snapshot, state) = env
            .create_databases_and_commit(write_txn, |opener, write_txn| {
                let log =
                    opener.create_database::<U64<BigEndian>, Bytes>(write_txn, Some("log"))?;
                let meta = opener.create_database::<Str, Bytes>(write_txn, Some("meta"))?;
                let snapshot = opener.create_database::<Str, Bytes>(write_txn, Some("snapshot"))?;
                let state = opener.create_database::<Bytes, Bytes>(write_txn, Some("state"))?;
                Ok::<_, heed::Error>(CommitOrAbort::<_, ()>::Commit((log, meta, snapshot, state)))
            })?
            .unwrap_commit();
        Ok(GroupDatabases {
            env,
            log,
            meta,
            snapshot,
            state,
        })
    }

    fn read_meta<T: DeserializeOwned>(&self, key: &'static str) -> Result<Option<T>, StoreError> {
        let read_txn = self.env.read_txn()?;
        match self.meta.get(&read_txn, key)? {
            Some(bytes) => Ok(Some(decode_value(key, bytes)?)),
            None => Ok(None),
        }
    }

    /// Every record of the state database, in key order.
    fn stored_records<'txn>(
        &self,
        read_txn: &'txn heed::RoTxn<'_>,
    ) -> Result<Vec<StoredRecordBytes<'txn>>, StoreError> {
        let mut records = Vec::new();
        for item in self.state.iter(read_txn)? {
            records.push(item?);
        }
        Ok(records)
    }

    /// The applied state the store holds: the state database at its checkpoint, or a legacy
    /// whole-state snapshot (see the module header); `None` for a group that never
    /// checkpointed.
    fn load_applied(&self, role: Role) -> Result<Option<AppliedState>, StoreError> {
        let read_txn = self.env.read_txn()?;
        let meta = self.snapshot.get(&read_txn, KEY_SNAPSHOT_META)?;
        let header = self.snapshot.get(&read_txn, KEY_STATE_HEADER)?;
        let data = self.snapshot.get(&read_txn, KEY_SNAPSHOT_DATA)?;
        let (meta, machine, legacy) = match (meta, header, data) {
            (None, None, None) => return Ok(None),
            (Some(meta), Some(header), None) => {
                let records = self.stored_records(&read_txn)?;
                let machine = StateMachine::from_stored(header, records).map_err(|error| {
                    StoreError::Corrupt {
                        what: "stored state",
                        reason: error.to_string(),
                    }
                })?;
                (meta, machine, false)
            }
            (Some(meta), None, Some(data)) => {
                let machine = StateMachine::from_snapshot_bytes(data).map_err(|error| {
                    StoreError::Corrupt {
                        what: "snapshot data",
                        reason: error.to_string(),
                    }
                })?;
                (meta, machine, true)
            }
            _ => {
                return Err(StoreError::Corrupt {
                    what: "snapshot",
                    reason: "meta, state header and data do not match".to_owned(),
                });
            }
        };
        let meta: SnapshotMeta = decode_value("snapshot meta", meta)?;
        if machine.role() != role {
            return Err(StoreError::WrongRole {
                expected: role,
                found: machine.role(),
            });
        }
        Ok(Some(AppliedState {
            machine,
            last_applied: meta.last_log_id,
            last_membership: meta.last_membership,
            rewrite_all: legacy,
        }))
    }

    /// The checkpoint's snapshot meta and the whole state encoded as a snapshot, from one read
    /// transaction; `None` before the first checkpoint.
    fn current_snapshot(&self) -> Result<Option<(SnapshotMeta, Vec<u8>)>, StoreError> {
        let read_txn = self.env.read_txn()?;
        let Some(meta) = self.snapshot.get(&read_txn, KEY_SNAPSHOT_META)? else {
            return Ok(None);
        };
        let meta: SnapshotMeta = decode_value("snapshot meta", meta)?;
        if let Some(data) = self.snapshot.get(&read_txn, KEY_SNAPSHOT_DATA)? {
            return Ok(Some((meta, data.to_vec())));
        }
        let Some(header) = self.snapshot.get(&read_txn, KEY_STATE_HEADER)? else {
            return Err(StoreError::Corrupt {
                what: "snapshot",
                reason: "meta without a state header".to_owned(),
            });
        };
        let records = self.stored_records(&read_txn)?;
        let data =
            cairn_meta_state::stored::snapshot_from_stored(header, records).map_err(|error| {
                StoreError::Corrupt {
                    what: "stored state",
                    reason: error.to_string(),
                }
            })?;
        Ok(Some((meta, data)))
    }

    /// Writes a checkpoint: `changes` (after clearing the state database when `start_over`),
    /// the state header and the snapshot meta, in one durable transaction.
    fn write_checkpoint(
        &self,
        meta_bytes: &[u8],
        changes: &StoredChanges,
        start_over: bool,
    ) -> Result<(), StoreError> {
        let mut write_txn = self.env.write_txn()?;
        if start_over {
            self.state.clear(&mut write_txn)?;
            self.snapshot.delete(&mut write_txn, KEY_SNAPSHOT_DATA)?;
        }
        for key in &changes.deletes {
            self.state.delete(&mut write_txn, key)?;
        }
        for (key, value) in &changes.puts {
            self.state.put(&mut write_txn, key, value)?;
        }
        self.snapshot
            .put(&mut write_txn, KEY_STATE_HEADER, &changes.header)?;
        self.snapshot
            .put(&mut write_txn, KEY_SNAPSHOT_META, meta_bytes)?;
        write_txn.commit()?;
        Ok(())
    }
}

/// How long a write refused for want of space waits before it tries again.
const NO_SPACE_RETRY: Duration = Duration::from_millis(250);

/// Runs a blocking LMDB write on tokio's blocking pool and waits for it (see
/// [`write_until_space`]).
async fn write_blocking<F>(databases: &Arc<GroupDatabases>, write: F) -> Result<(), StoreError>
where
    F: Fn(&GroupDatabases) -> Result<(), StoreError> + Send + 'static,
{
    let databases = Arc::clone(databases);
    match tokio::task::spawn_blocking(move || write_until_space(&databases, &write)).await {
        Ok(result) => result,
        Err(join_error) => Err(StoreError::Io {
            path: PathBuf::new(),
            source: std::io::Error::other(join_error.to_string()),
        }),
    }
}

/// Whether a write failed because the file system is full (ENOSPC).
fn is_no_space(error: &StoreError) -> bool {
    let io = match error {
        StoreError::Lmdb(heed::Error::Io(io)) | StoreError::Io { source: io, .. } => io,
        _ => return false,
    };
    io.kind() == std::io::ErrorKind::StorageFull
}

/// Runs `write` until it does not fail for want of space. openraft stops a group for good on any
/// storage error, so a full disk would otherwise need a restart of the replica after space is
/// freed; waiting instead stalls the group (its proposals time out and clients get a clear
/// error, see the proposer's disk reserve) and resumes it by itself once space returns. A retry
/// is safe: LMDB aborts a transaction whose commit fails, so nothing of the failed attempt is
/// on disk, and every write here is a whole transaction that can run again.
fn write_until_space<F>(databases: &GroupDatabases, write: &F) -> Result<(), StoreError>
where
    F: Fn(&GroupDatabases) -> Result<(), StoreError>,
{
    let mut waiting_since: Option<Instant> = None;
    loop {
        match write(databases) {
            Err(error) if is_no_space(&error) => {
                if waiting_since.is_none() {
                    tracing::warn!(
                        path = %databases.env.path().display(),
                        %error,
                        "metadata disk full: the group waits for space before it writes again"
                    );
                    waiting_since = Some(Instant::now());
                }
                std::thread::sleep(NO_SPACE_RETRY);
            }
            result => {
                if let Some(since) = waiting_since {
                    tracing::info!(
                        path = %databases.env.path().display(),
                        waited_ms = since.elapsed().as_millis() as u64,
                        "metadata disk has space again: the group writes"
                    );
                }
                return result;
            }
        }
    }
}

/// Opens (creating if needed) the storage of one group in `dir`.
///
/// `role` is the state machine's role when the group starts empty; a stored snapshot must have
/// the same role.
pub fn open_group_storage(
    dir: &Path,
    role: Role,
    map_size_bytes: usize,
) -> Result<(LogStore, StateMachineStore), StoreError> {
    let databases = Arc::new(GroupDatabases::open(dir, map_size_bytes)?);
    let applied = match databases.load_applied(role)? {
        Some(applied) => applied,
        None => AppliedState {
            machine: StateMachine::new(role),
            last_applied: None,
            last_membership: StoredMembership::default(),
            rewrite_all: false,
        },
    };
    let log_store = LogStore {
        databases: Arc::clone(&databases),
        pending_committed: Arc::new(std::sync::Mutex::new(None)),
    };
    let state_machine = StateMachineStore {
        databases,
        role,
        shared: Arc::new(RwLock::new(applied)),
        last_checkpoint: Arc::new(std::sync::Mutex::new(None)),
        checkpoint_lock: Arc::new(tokio::sync::Mutex::new(())),
        snapshot_sequence: 0,
    };
    Ok((log_store, state_machine))
}

/// The state the storage of a stopped replica in `dir` holds: its snapshot with every later log
/// entry applied in order. For offline inspection (tests, admin tools): no Raft instance runs
/// and nothing is written. Entries past the replica's committed index are applied too (the
/// committed index is stored lazily, see the module header), so the result is the replica's
/// state if its whole log commits, which is what a replica that followed a leader to the end
/// of its log holds.
pub fn read_replica_state(dir: &Path, role: Role) -> Result<StateMachine, StoreError> {
    if !dir.is_dir() {
        return Err(StoreError::Io {
            path: dir.to_owned(),
            source: std::io::Error::from(std::io::ErrorKind::NotFound),
        });
    }
    let databases = Arc::new(GroupDatabases::open(dir, DEFAULT_MAP_SIZE_BYTES)?);
    let (mut machine, first_index) = match databases.load_applied(role)? {
        Some(applied) => {
            let first_index = applied.last_applied.map_or(0, |log_id| log_id.index + 1);
            (applied.machine, first_index)
        }
        None => (StateMachine::new(role), 0),
    };
    let log = LogStore {
        databases,
        pending_committed: Arc::new(std::sync::Mutex::new(None)),
    };
    for entry in log.read_entries(first_index..)? {
        if let EntryPayload::Normal(request) = entry.payload {
            machine.apply(request.0, entry.log_id.index);
        }
    }
    Ok(machine)
}

// ---------------------------------------------------------------------------------------------
// Log

/// The Raft log and vote of one group. Cloning is cheap and shares the environment (the clone
/// serves as openraft's log reader).
#[derive(Clone)]
pub struct LogStore {
    databases: Arc<GroupDatabases>,
    /// The latest committed log id openraft reported, written with the next transaction.
    pending_committed: Arc<std::sync::Mutex<Option<Option<LogId>>>>,
}

fn index_bounds<RB: RangeBounds<u64>>(range: &RB) -> (Bound<u64>, Bound<u64>) {
    (range.start_bound().cloned(), range.end_bound().cloned())
}

impl LogStore {
    /// The encoded pending committed log id, to write in the next transaction.
    fn pending_committed_bytes(&self) -> Option<Vec<u8>> {
        let pending = self
            .pending_committed
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        pending.as_ref().map(encode_value)
    }

    /// Runs `write` and the pending committed-id update in one durable transaction.
    async fn write_with_committed<F>(&self, write: F) -> Result<(), StoreError>
    where
        F: Fn(&GroupDatabases, &mut heed::RwTxn<'_>) -> Result<(), StoreError> + Send + 'static,
    {
        let committed = self.pending_committed_bytes();
        write_blocking(&self.databases, move |databases| {
            let mut write_txn = databases.env.write_txn()?;
            write(databases, &mut write_txn)?;
            if let Some(committed) = &committed {
                databases
                    .meta
                    .put(&mut write_txn, KEY_COMMITTED, committed)?;
            }
            write_txn.commit()?;
            Ok(())
        })
        .await
    }

    /// The term of the stored vote (0 before any vote).
    pub fn stored_vote_term(&self) -> Result<u64, StoreError> {
        let vote: Option<Vote> = self.databases.read_meta(KEY_VOTE)?;
        Ok(vote.map_or(0, |vote| vote.leader_id().term))
    }

    /// Index of the last log entry (or of the last purged one; 0 for an empty log).
    pub fn last_log_index(&self) -> Result<u64, StoreError> {
        Ok(self
            .log_state()?
            .last_log_id
            .map_or(0, |log_id| log_id.index))
    }

    fn read_entries<RB: RangeBounds<u64>>(&self, range: RB) -> Result<Vec<Entry>, StoreError> {
        let databases = &self.databases;
        let read_txn = databases.env.read_txn()?;
        let mut entries = Vec::new();
        for item in databases.log.range(&read_txn, &index_bounds(&range))? {
            let (_index, bytes) = item?;
            entries.push(decode_value::<Entry>("log entry", bytes)?);
        }
        Ok(entries)
    }

    fn log_state(&self) -> Result<LogState<TypeConfig>, StoreError> {
        let last_purged_log_id: Option<LogId> = self.databases.read_meta(KEY_LAST_PURGED)?;
        let read_txn = self.databases.env.read_txn()?;
        let last_entry = match self.databases.log.last(&read_txn)? {
            Some((_index, bytes)) => Some(decode_value::<Entry>("log entry", bytes)?),
            None => None,
        };
        let last_log_id = last_entry.map(|entry| entry.log_id).or(last_purged_log_id);
        Ok(LogState {
            last_purged_log_id,
            last_log_id,
        })
    }
}

fn read_logs_error(error: StoreError) -> StorageError {
    StorageIOError::read_logs(&error).into()
}

fn write_logs_error(error: StoreError) -> StorageError {
    StorageIOError::write_logs(&error).into()
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + std::fmt::Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, StorageError> {
        self.read_entries(range).map_err(read_logs_error)
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError> {
        self.log_state().map_err(read_logs_error)
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote) -> Result<(), StorageError> {
        let bytes = encode_value(vote);
        self.write_with_committed(move |databases, write_txn| {
            databases.meta.put(write_txn, KEY_VOTE, &bytes)?;
            Ok(())
        })
        .await
        .map_err(|error| StorageIOError::write_vote(&error).into())
    }

    async fn read_vote(&mut self) -> Result<Option<Vote>, StorageError> {
        self.databases
            .read_meta(KEY_VOTE)
            .map_err(|error| StorageIOError::read_vote(&error).into())
    }

    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), StorageError> {
        // Written by the next transaction; see the module header.
        *self
            .pending_committed
            .lock()
            .unwrap_or_else(|poison| poison.into_inner()) = Some(committed);
        Ok(())
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, StorageError> {
        let pending = *self
            .pending_committed
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        if let Some(committed) = pending {
            return Ok(committed);
        }
        let committed: Option<Option<LogId>> = self
            .databases
            .read_meta(KEY_COMMITTED)
            .map_err(read_logs_error)?;
        Ok(committed.flatten())
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<TypeConfig>,
    ) -> Result<(), StorageError>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let encoded: Vec<(u64, Vec<u8>)> = entries
            .into_iter()
            .map(|entry| (entry.log_id.index, encode_value(&entry)))
            .collect();
        let result = self
            .write_with_committed(move |databases, write_txn| {
                for (index, bytes) in &encoded {
                    databases.log.put(write_txn, index, bytes)?;
                }
                Ok(())
            })
            .await;
        match result {
            Ok(()) => {
                callback.log_io_completed(Ok(()));
                Ok(())
            }
            Err(error) => {
                callback.log_io_completed(Err(std::io::Error::other(error.to_string())));
                Err(write_logs_error(error))
            }
        }
    }

    async fn truncate(&mut self, log_id: LogId) -> Result<(), StorageError> {
        self.write_with_committed(move |databases, write_txn| {
            databases.log.delete_range(write_txn, &(log_id.index..))?;
            Ok(())
        })
        .await
        .map_err(write_logs_error)
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), StorageError> {
        let bytes = encode_value(&log_id);
        // last_purged first, in the same transaction as the deletion (module invariant).
        self.write_with_committed(move |databases, write_txn| {
            databases.meta.put(write_txn, KEY_LAST_PURGED, &bytes)?;
            databases.log.delete_range(write_txn, &(..=log_id.index))?;
            Ok(())
        })
        .await
        .map_err(write_logs_error)
    }
}

// ---------------------------------------------------------------------------------------------
// State machine

/// The applied state of one group: the meta-state machine and what openraft needs about it.
pub struct AppliedState {
    pub machine: StateMachine,
    pub last_applied: Option<LogId>,
    pub last_membership: StoredMembership,
    /// The next checkpoint writes every record instead of the changes: the state was loaded
    /// from a legacy snapshot, or a checkpoint's write failed after its changes were taken.
    rewrite_all: bool,
}

impl AppliedState {
    fn from_snapshot(role: Role, meta: &SnapshotMeta, data: &[u8]) -> Result<Self, StoreError> {
        let machine =
            StateMachine::from_snapshot_bytes(data).map_err(|error| StoreError::Corrupt {
                what: "snapshot data",
                reason: error.to_string(),
            })?;
        if machine.role() != role {
            return Err(StoreError::WrongRole {
                expected: role,
                found: machine.role(),
            });
        }
        Ok(AppliedState {
            machine,
            last_applied: meta.last_log_id,
            last_membership: meta.last_membership.clone(),
            rewrite_all: false,
        })
    }
}

/// A read handle on a group's applied state, for queries served after a read-index check.
#[derive(Clone)]
pub struct StateReader {
    shared: Arc<RwLock<AppliedState>>,
    last_checkpoint: Arc<std::sync::Mutex<Option<CheckpointStats>>>,
}

impl StateReader {
    /// Answers `query` from the state applied so far.
    pub fn query(&self, query: &Query) -> Result<Response, MetaError> {
        let applied = self
            .shared
            .read()
            .unwrap_or_else(|poison| poison.into_inner());
        applied.machine.query(query)
    }

    /// What the latest checkpoint of this process wrote and cost (`None` before one).
    pub fn last_checkpoint(&self) -> Option<CheckpointStats> {
        *self
            .last_checkpoint
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    /// The log index of the last applied entry (0 before any).
    pub fn last_applied_index(&self) -> u64 {
        let applied = self
            .shared
            .read()
            .unwrap_or_else(|poison| poison.into_inner());
        applied.last_applied.map_or(0, |log_id| log_id.index)
    }
}

/// What the latest checkpoint wrote and cost.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct CheckpointStats {
    /// Records written (all of them when the checkpoint rewrote the state).
    pub records_written: usize,
    pub records_deleted: usize,
    /// Whether it rewrote the whole state (see [`AppliedState`]'s `rewrite_all`).
    pub whole_state: bool,
    /// Seconds the state lock was held (taking and encoding the changed records).
    pub locked_seconds: f64,
    /// Seconds from start to the durable commit.
    pub total_seconds: f64,
}

/// The state machine of one group (openraft's `RaftStateMachine`) and its checkpoints.
pub struct StateMachineStore {
    databases: Arc<GroupDatabases>,
    role: Role,
    shared: Arc<RwLock<AppliedState>>,
    last_checkpoint: Arc<std::sync::Mutex<Option<CheckpointStats>>>,
    /// Held from taking a change set to writing it, and across a snapshot install (module
    /// invariants).
    checkpoint_lock: Arc<tokio::sync::Mutex<()>>,
    /// Distinguishes snapshots built at the same log id (openraft wants unique ids).
    snapshot_sequence: u64,
}

impl StateMachineStore {
    /// A handle for reads that does not keep the storage open.
    pub fn reader(&self) -> StateReader {
        StateReader {
            shared: Arc::clone(&self.shared),
            last_checkpoint: Arc::clone(&self.last_checkpoint),
        }
    }

    /// What the latest checkpoint of this process wrote and cost (`None` before one).
    pub fn last_checkpoint(&self) -> Option<CheckpointStats> {
        self.reader().last_checkpoint()
    }
}

/// Writes checkpoints (openraft's snapshot builder; see the module header).
pub struct SnapshotBuilder {
    databases: Arc<GroupDatabases>,
    shared: Arc<RwLock<AppliedState>>,
    last_checkpoint: Arc<std::sync::Mutex<Option<CheckpointStats>>>,
    checkpoint_lock: Arc<tokio::sync::Mutex<()>>,
    snapshot_sequence: u64,
}

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    /// Writes a checkpoint and returns its meta. The returned snapshot carries no data: openraft
    /// keeps only the meta of a built snapshot, and a follower that needs the data gets it from
    /// [`RaftStateMachine::get_current_snapshot`].
    async fn build_snapshot(&mut self) -> Result<Snapshot, StorageError> {
        let _checkpoint = self.checkpoint_lock.lock().await;
        // Take the changes under the write lock so they, last_applied and membership describe
        // one state, and no entry is applied between taking and forgetting them.
        let started = Instant::now();
        let (changes, start_over, meta) = {
            let mut applied = self
                .shared
                .write()
                .unwrap_or_else(|poison| poison.into_inner());
            let start_over = std::mem::take(&mut applied.rewrite_all);
            let changes = if start_over {
                applied.machine.take_all_records()
            } else {
                applied.machine.take_changes()
            };
            let snapshot_id = match applied.last_applied {
                Some(log_id) => format!(
                    "{}-{}-{}",
                    log_id.leader_id.term, log_id.index, self.snapshot_sequence
                ),
                None => format!("none-{}", self.snapshot_sequence),
            };
            let meta = SnapshotMeta {
                last_log_id: applied.last_applied,
                last_membership: applied.last_membership.clone(),
                snapshot_id,
            };
            (Arc::new(changes), start_over, meta)
        };
        let locked_seconds = started.elapsed().as_secs_f64();
        let meta_bytes = encode_value(&meta);
        let signature = meta.signature();
        let written = Arc::clone(&changes);
        let result = write_blocking(&self.databases, move |databases| {
            databases.write_checkpoint(&meta_bytes, &written, start_over)
        })
        .await;
        if let Err(error) = result {
            // The change set is gone from the state's tracking: only a whole rewrite can bring
            // the state database up to date now.
            self.shared
                .write()
                .unwrap_or_else(|poison| poison.into_inner())
                .rewrite_all = true;
            return Err(StorageIOError::write_snapshot(Some(signature), &error).into());
        }
        let stats = CheckpointStats {
            records_written: changes.puts.len(),
            records_deleted: changes.deletes.len(),
            whole_state: start_over,
            locked_seconds,
            total_seconds: started.elapsed().as_secs_f64(),
        };
        tracing::debug!(?stats, "metadata checkpoint written");
        *self
            .last_checkpoint
            .lock()
            .unwrap_or_else(|poison| poison.into_inner()) = Some(stats);
        Ok(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(Vec::new())),
        })
    }
}

fn write_state_machine_error(error: StoreError) -> StorageError {
    StorageIOError::write_state_machine(&error).into()
}

impl RaftStateMachine<TypeConfig> for StateMachineStore {
    type SnapshotBuilder = SnapshotBuilder;

    async fn applied_state(&mut self) -> Result<(Option<LogId>, StoredMembership), StorageError> {
        let applied = self
            .shared
            .read()
            .unwrap_or_else(|poison| poison.into_inner());
        Ok((applied.last_applied, applied.last_membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<MetaResponse>, StorageError>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut applied = self
            .shared
            .write()
            .unwrap_or_else(|poison| poison.into_inner());
        let mut responses = Vec::new();
        for entry in entries {
            applied.last_applied = Some(entry.log_id);
            let response = match entry.payload {
                EntryPayload::Blank => MetaResponse(None),
                EntryPayload::Normal(request) => {
                    let output = applied.machine.apply(request.0, entry.log_id.index);
                    MetaResponse(Some(output))
                }
                EntryPayload::Membership(membership) => {
                    applied.last_membership = StoredMembership::new(Some(entry.log_id), membership);
                    MetaResponse(None)
                }
            };
            responses.push(response);
        }
        Ok(responses)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.snapshot_sequence += 1;
        SnapshotBuilder {
            databases: Arc::clone(&self.databases),
            shared: Arc::clone(&self.shared),
            last_checkpoint: Arc::clone(&self.last_checkpoint),
            checkpoint_lock: Arc::clone(&self.checkpoint_lock),
            snapshot_sequence: self.snapshot_sequence,
        }
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Cursor<Vec<u8>>>, StorageError> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError> {
        let data = snapshot.into_inner();
        let mut installed = AppliedState::from_snapshot(self.role, meta, &data)
            .map_err(|error| StorageIOError::read_snapshot(Some(meta.signature()), &error))?;
        drop(data);
        let _checkpoint = self.checkpoint_lock.lock().await;
        // Durable first: if the process dies between the two steps the next start loads the
        // installed state, which is what openraft already believes was installed.
        let records = Arc::new(installed.machine.take_all_records());
        let meta_bytes = encode_value(meta);
        write_blocking(&self.databases, move |databases| {
            databases.write_checkpoint(&meta_bytes, &records, true)
        })
        .await
        .map_err(write_state_machine_error)?;
        let mut applied = self
            .shared
            .write()
            .unwrap_or_else(|poison| poison.into_inner());
        *applied = installed;
        Ok(())
    }

    /// The state at the last checkpoint, encoded whole from the state database (see the
    /// module header for what that costs and when openraft asks).
    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot>, StorageError> {
        let databases = Arc::clone(&self.databases);
        let stored =
            match tokio::task::spawn_blocking(move || databases.current_snapshot()).await {
                Ok(result) => result,
                Err(join_error) => Err(StoreError::Io {
                    path: PathBuf::new(),
                    source: std::io::Error::other(join_error.to_string()),
                }),
            }
            .map_err(|error| StorageIOError::read_snapshot(None, &error))?;
        Ok(stored.map(|(meta, data)| Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(data)),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::MetaRequest;
    use openraft::{CommittedLeaderId, Membership};

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|byte| format!("{byte:02x}")).collect()
    }

    fn log_id(term: u64, node_id: u64, index: u64) -> LogId {
        LogId::new(CommittedLeaderId::new(term, node_id), index)
    }

    /// Golden bytes of every value kind this module stores. A failure means the on-disk layout
    /// changed (an openraft or postcard upgrade, or a type change): bump LOG_FORMAT_VERSION and
    /// keep a decoder for the old version instead of updating these strings.
    #[test]
    fn stored_values_match_golden_bytes() {
        let vote = Vote::new_committed(3, 2);
        let blank = Entry {
            log_id: log_id(3, 2, 17),
            payload: EntryPayload::Blank,
        };
        let membership = Entry {
            log_id: log_id(1, 1, 1),
            payload: EntryPayload::Membership(Membership::new(
                vec![[1u64, 2, 3].into_iter().collect()],
                None,
            )),
        };
        let normal = Entry {
            log_id: log_id(4, 1, 20),
            payload: EntryPayload::Normal(MetaRequest(cairn_meta_state::Command::DeleteBucket {
                bucket: "b".to_owned(),
            })),
        };
        let cases: Vec<(&str, Vec<u8>)> = vec![
            ("vote", encode_value(&vote)),
            ("log id", encode_value(&log_id(3, 2, 17))),
            ("blank entry", encode_value(&blank)),
            ("membership entry", encode_value(&membership)),
            ("normal entry", encode_value(&normal)),
        ];
        let golden = [
            ("vote", "01030201"),
            ("log id", "01030211"),
            ("blank entry", "0103021100"),
            ("membership entry", "0101010102010301020303010002000300"),
            // The command inside carries the metadata format's own header (version 2, kind 8).
            ("normal entry", "01040114010802080b0100000062"),
        ];
        for ((what, bytes), (golden_what, golden_hex)) in cases.iter().zip(golden) {
            assert_eq!(*what, golden_what);
            assert_eq!(hex(bytes), golden_hex, "{what}");
        }
        // And they decode back.
        assert_eq!(decode_value::<Vote>("vote", &cases[0].1).unwrap(), vote);
        let decoded: Entry = decode_value("entry", &cases[4].1).unwrap();
        assert_eq!(decoded.log_id, normal.log_id);
        // An entry written by a build of metadata format version 1 still decodes.
        let version_1 = hex_bytes("01040114010801080b0100000062");
        let decoded: Entry = decode_value("entry", &version_1).unwrap();
        assert_eq!(decoded.log_id, normal.log_id);
        assert!(matches!(
            decoded.payload,
            EntryPayload::Normal(MetaRequest(cairn_meta_state::Command::DeleteBucket { ref bucket }))
                if bucket == "b"
        ));
    }

    fn hex_bytes(text: &str) -> Vec<u8> {
        (0..text.len())
            .step_by(2)
            .map(|index| u8::from_str_radix(&text[index..index + 2], 16).expect("hex"))
            .collect()
    }

    fn bucket_entry(index: u64, bucket: &str) -> Entry {
        Entry {
            log_id: log_id(1, 1, index),
            payload: EntryPayload::Normal(MetaRequest(cairn_meta_state::Command::CreateBucket(
                cairn_meta_state::CreateBucket {
                    bucket: bucket.to_owned(),
                    owner: "alice".to_owned(),
                    primary_region: "us-east-1".to_owned(),
                    ec_scheme: "isal-cauchy:4+2".to_owned(),
                    acl: Default::default(),
                    now_ms: 1_000,
                    attributes: Default::default(),
                },
            ))),
        }
    }

    fn delete_bucket_entry(index: u64, bucket: &str) -> Entry {
        Entry {
            log_id: log_id(1, 1, index),
            payload: EntryPayload::Normal(MetaRequest(cairn_meta_state::Command::DeleteBucket {
                bucket: bucket.to_owned(),
            })),
        }
    }

    fn state_records(store: &StateMachineStore) -> usize {
        let read_txn = store.databases.env.read_txn().unwrap();
        store.databases.state.len(&read_txn).unwrap() as usize
    }

    fn live_state(store: &StateMachineStore) -> StateMachine {
        store.shared.read().unwrap().machine.clone()
    }

    /// Checkpoints write the records changed since the previous one; a reopened group holds
    /// the checkpoint's state, the current snapshot encodes it, and the log replays on top.
    #[tokio::test]
    async fn checkpoints_are_incremental_and_reopen_exactly() {
        let dir = tempfile::tempdir().unwrap();
        let (log, mut store) =
            open_group_storage(dir.path(), Role::Combined, DEFAULT_MAP_SIZE_BYTES).unwrap();
        let entries: Vec<Entry> = (1..=50)
            .map(|index| bucket_entry(index, &format!("bucket-{index:03}")))
            .collect();
        store.apply(entries).await.unwrap();
        let first = store
            .get_snapshot_builder()
            .await
            .build_snapshot()
            .await
            .unwrap();
        assert_eq!(first.meta.last_log_id, Some(log_id(1, 1, 50)));
        assert_eq!(state_records(&store), 50);
        let at_first = live_state(&store);

        // Two more buckets, two removed: the next change set is four keys, not 50.
        store
            .apply([
                bucket_entry(51, "bucket-new-1"),
                bucket_entry(52, "bucket-new-2"),
                delete_bucket_entry(53, "bucket-001"),
                delete_bucket_entry(54, "bucket-002"),
            ])
            .await
            .unwrap();
        {
            let applied = store.shared.read().unwrap();
            let pending = applied.machine.clone().take_changes();
            assert_eq!((pending.puts.len(), pending.deletes.len()), (2, 2));
        }
        // The current snapshot is still the first checkpoint's state.
        let current = store.get_current_snapshot().await.unwrap().unwrap();
        assert_eq!(current.meta, first.meta);
        assert_eq!(
            StateMachine::from_snapshot_bytes(current.snapshot.get_ref()).unwrap(),
            at_first
        );
        let second = store
            .get_snapshot_builder()
            .await
            .build_snapshot()
            .await
            .unwrap();
        assert_eq!(second.meta.last_log_id, Some(log_id(1, 1, 54)));
        let stats = store.last_checkpoint().unwrap();
        assert_eq!(
            (
                stats.records_written,
                stats.records_deleted,
                stats.whole_state
            ),
            (2, 2, false)
        );
        assert_eq!(state_records(&store), 50);
        let at_second = live_state(&store);
        // Applied after the checkpoint: only in the log (here: nowhere, so reopening loses it,
        // which is what openraft's log replay makes up for).
        store
            .apply([bucket_entry(55, "bucket-late")])
            .await
            .unwrap();
        drop((log, store));

        let (_log, mut reopened) =
            open_group_storage(dir.path(), Role::Combined, DEFAULT_MAP_SIZE_BYTES).unwrap();
        assert_eq!(live_state(&reopened), at_second);
        assert_eq!(
            reopened.applied_state().await.unwrap().0,
            Some(log_id(1, 1, 54))
        );
        let current = reopened.get_current_snapshot().await.unwrap().unwrap();
        assert_eq!(current.meta, second.meta);
        assert_eq!(
            StateMachine::from_snapshot_bytes(current.snapshot.get_ref()).unwrap(),
            at_second
        );
    }

    /// A store written before the state database existed (the whole state under `data`) opens,
    /// and its first checkpoint replaces the blob with records.
    #[tokio::test]
    async fn a_legacy_snapshot_is_migrated_at_the_next_checkpoint() {
        let dir = tempfile::tempdir().unwrap();
        let mut legacy = StateMachine::new(Role::Combined);
        for index in 1..=3u64 {
            let Entry {
                payload: EntryPayload::Normal(request),
                ..
            } = bucket_entry(index, &format!("old-{index}"))
            else {
                unreachable!()
            };
            legacy.apply(request.0, index);
        }
        let meta = SnapshotMeta {
            last_log_id: Some(log_id(1, 1, 3)),
            last_membership: StoredMembership::default(),
            snapshot_id: "1-3-1".to_owned(),
        };
        {
            let databases = GroupDatabases::open(dir.path(), DEFAULT_MAP_SIZE_BYTES).unwrap();
            let mut write_txn = databases.env.write_txn().unwrap();
            databases
                .snapshot
                .put(&mut write_txn, KEY_SNAPSHOT_META, &encode_value(&meta))
                .unwrap();
            databases
                .snapshot
                .put(
                    &mut write_txn,
                    KEY_SNAPSHOT_DATA,
                    &legacy.to_snapshot_bytes(),
                )
                .unwrap();
            write_txn.commit().unwrap();
        }
        let (log, mut store) =
            open_group_storage(dir.path(), Role::Combined, DEFAULT_MAP_SIZE_BYTES).unwrap();
        assert_eq!(live_state(&store), legacy);
        assert_eq!(state_records(&store), 0);
        store.apply([bucket_entry(4, "new")]).await.unwrap();
        store
            .get_snapshot_builder()
            .await
            .build_snapshot()
            .await
            .unwrap();
        // All four records, not only the one changed since loading.
        assert_eq!(state_records(&store), 4);
        assert!(store.last_checkpoint().unwrap().whole_state);
        {
            let read_txn = store.databases.env.read_txn().unwrap();
            assert!(
                store
                    .databases
                    .snapshot
                    .get(&read_txn, KEY_SNAPSHOT_DATA)
                    .unwrap()
                    .is_none()
            );
        }
        let at_checkpoint = live_state(&store);
        drop((log, store));
        let (_log, reopened) =
            open_group_storage(dir.path(), Role::Combined, DEFAULT_MAP_SIZE_BYTES).unwrap();
        assert_eq!(live_state(&reopened), at_checkpoint);
    }

    /// A snapshot installed from a leader replaces the state database whole.
    #[tokio::test]
    async fn an_installed_snapshot_replaces_every_record() {
        let leader_dir = tempfile::tempdir().unwrap();
        let follower_dir = tempfile::tempdir().unwrap();
        let (_log, mut leader) =
            open_group_storage(leader_dir.path(), Role::Combined, DEFAULT_MAP_SIZE_BYTES).unwrap();
        let (follower_log, mut follower) =
            open_group_storage(follower_dir.path(), Role::Combined, DEFAULT_MAP_SIZE_BYTES)
                .unwrap();
        leader
            .apply((1..=5).map(|index| bucket_entry(index, &format!("leader-{index}"))))
            .await
            .unwrap();
        follower
            .apply((1..=3).map(|index| bucket_entry(index, &format!("stale-{index}"))))
            .await
            .unwrap();
        follower
            .get_snapshot_builder()
            .await
            .build_snapshot()
            .await
            .unwrap();
        leader
            .get_snapshot_builder()
            .await
            .build_snapshot()
            .await
            .unwrap();
        let snapshot = leader.get_current_snapshot().await.unwrap().unwrap();
        follower
            .install_snapshot(&snapshot.meta, snapshot.snapshot)
            .await
            .unwrap();
        assert_eq!(live_state(&follower), live_state(&leader));
        assert_eq!(state_records(&follower), 5);
        drop((follower_log, follower));
        let (_log, reopened) =
            open_group_storage(follower_dir.path(), Role::Combined, DEFAULT_MAP_SIZE_BYTES)
                .unwrap();
        assert_eq!(live_state(&reopened), live_state(&leader));
    }

    #[test]
    fn unknown_value_versions_are_refused() {
        let mut bytes = encode_value(&log_id(1, 1, 1));
        bytes[0] = LOG_FORMAT_VERSION + 1;
        assert!(matches!(
            decode_value::<LogId>("log id", &bytes),
            Err(StoreError::Corrupt { .. })
        ));
        assert!(decode_value::<LogId>("log id", &[]).is_err());
    }
}
