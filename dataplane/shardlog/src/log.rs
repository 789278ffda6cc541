//! The shard log of one core.
//!
//! Model: a directory of append-only segment files opened with O_DIRECT through glommio's DMA files.
//! Only the newest segment (the *active* one) is written; all others are sealed. One writer task per
//! log owns the tail: puts, deletes (tombstones) and compaction copies are queued to it through a
//! bounded channel, and it commits everything that queued up while the previous batch was on disk
//! with **one write and one fdatasync** (group commit). A request is acknowledged only after the
//! fdatasync that made it durable.
//!
//! Invariants:
//! - The in-memory index maps each shard id to the record with the highest sequence number written
//!   for it (a put or a tombstone). Sequence numbers are unique per log and compaction copies keep
//!   the original number, so the index rebuilt from disk at start equals the one before a crash,
//!   whatever order segments are scanned in, for every acknowledged write.
//! - A tombstone is dropped by compaction only when no other segment can hold an older record of the
//!   same shard (every other segment's smallest sequence is larger), so a delete never un-happens.
//! - Only the last batch can be torn by a crash (one batch is in flight at a time). At start a record
//!   in the active segment that fails its checksums is a torn tail when no valid record follows it
//!   (the tail is cut there), and mid-log corruption otherwise (counted, skipped; EC repairs it).
//! - Payload checksums are checked before the write and after every read; a read never returns bytes
//!   that fail their checksum.
//! - ENOSPC is a typed error the caller sees ([`LogError::NoSpace`]) and the log keeps serving; any
//!   other write or fdatasync error puts the log into the failed state ([`LogError::Failed`]): it
//!   accepts no more writes and the storage node stops (erasure coding covers the lost node).

use crate::cache::{CacheStats, HotCache};
use crate::record::{
    FLAG_TOMBSTONE, MAX_PAYLOAD_BYTES, RECORD_HEADER_LEN, RecordError, RecordHeader,
    SEGMENT_HEADER_LEN, SegmentHeader, record_len_bytes,
};
use bytes::Bytes;
use cairn_common::ShardId;
use futures_channel::oneshot;
use glommio::GlommioError;
use glommio::io::{DmaFile, OpenOptions};
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicI32, Ordering};

/// Configuration of one core's log.
#[derive(Clone, Debug)]
pub struct LogConfig {
    pub dir: PathBuf,
    /// Segments are preallocated to this size; a batch that does not fit starts a new segment.
    pub segment_size_bytes: u64,
    /// Group commit stops adding requests to a batch past this many bytes.
    pub max_batch_bytes: usize,
    /// Queue depth of the writer: puts beyond it wait (backpressure, every queue is bounded).
    pub write_queue_depth: usize,
    /// A sealed segment whose garbage share reaches this ratio is compacted.
    pub compaction_garbage_ratio: f64,
    pub cache_capacity_bytes: u64,
    /// Test hook: when non-zero, the next segment write fails with this errno (EIO = 5, ENOSPC = 28)
    /// and the hook resets to zero.
    pub inject_write_errno: Arc<AtomicI32>,
}

impl LogConfig {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        LogConfig {
            dir: dir.into(),
            segment_size_bytes: 128 << 20,
            max_batch_bytes: 8 << 20,
            write_queue_depth: 1024,
            compaction_garbage_ratio: 0.5,
            cache_capacity_bytes: 64 << 20,
            inject_write_errno: Arc::new(AtomicI32::new(0)),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("shard not found")]
    NotFound,
    #[error(
        "checksum mismatch for shard {shard_id}: expected {expected:#010x}, found {found:#010x}"
    )]
    ChecksumMismatch {
        shard_id: ShardId,
        expected: u32,
        found: u32,
    },
    #[error("no space left on the device holding the shard log")]
    NoSpace,
    #[error("shard of {0} bytes exceeds the limit")]
    TooLarge(u64),
    #[error("range {offset}+{length} is outside the shard of {shard_length} bytes")]
    InvalidRange {
        offset: u64,
        length: u64,
        shard_length: u64,
    },
    #[error("the shard log stopped after an I/O error: {0}")]
    Failed(String),
    #[error("the shard log is closed")]
    Closed,
    #[error("corrupt segment {segment_id}: {reason}")]
    CorruptSegment {
        segment_id: u64,
        reason: RecordError,
    },
    #[error("I/O error: {0}")]
    Io(#[from] io::Error),
}

/// Bytes read for a `get`: the requested bytes plus the whole shard's length and checksum.
#[derive(Clone, Debug)]
pub struct ShardRead {
    pub data: Bytes,
    pub shard_length: u64,
    pub crc32c: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ShardStat {
    pub shard_id: ShardId,
    pub length: u64,
    pub crc32c: u32,
    pub sequence: u64,
}

#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct LogStats {
    pub segment_count: u64,
    /// Bytes of records written into segments that still exist (live and garbage).
    pub used_bytes: u64,
    /// Bytes of records the index still points to.
    pub live_bytes: u64,
    pub shard_count: u64,
    pub io_errors: u64,
    pub checksum_errors: u64,
    pub batches: u64,
    pub batched_records: u64,
    pub compactions: u64,
    pub compacted_bytes_reclaimed: u64,
    pub torn_bytes_truncated: u64,
    pub cache: CacheStats,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct IndexEntry {
    segment_id: u64,
    offset: u64,
    payload_len: u32,
    crc32c: u32,
    sequence: u64,
    tombstone: bool,
}

impl IndexEntry {
    fn record_len_bytes(&self) -> u64 {
        record_len_bytes(self.payload_len as usize)
    }
}

struct Segment {
    file: Rc<DmaFile>,
    path: PathBuf,
    salt: u64,
    /// End of the last record written into this segment.
    written_bytes: u64,
    live_bytes: u64,
    min_sequence: u64,
}

impl Segment {
    fn garbage_ratio(&self) -> f64 {
        let data_bytes = self.written_bytes.saturating_sub(SEGMENT_HEADER_LEN as u64);
        if data_bytes == 0 {
            return 0.0;
        }
        1.0 - self.live_bytes as f64 / data_bytes as f64
    }
}

struct State {
    index: BTreeMap<ShardId, IndexEntry>,
    segments: BTreeMap<u64, Segment>,
    active_segment_id: u64,
    next_sequence: u64,
    cache: HotCache,
    failure: Option<String>,
    stats: LogStats,
    compacting: bool,
}

impl State {
    /// Points the index at a newly durable record and keeps the per-segment accounting right.
    fn install(&mut self, id: ShardId, entry: IndexEntry) {
        if let Some(old) = self.index.insert(id, entry)
            && let Some(segment) = self.segments.get_mut(&old.segment_id)
        {
            segment.live_bytes -= old.record_len_bytes();
        }
        let segment = self
            .segments
            .get_mut(&entry.segment_id)
            .expect("segment of a new record");
        segment.live_bytes += entry.record_len_bytes();
        segment.min_sequence = segment.min_sequence.min(entry.sequence);
        self.cache.remove(&id);
    }

    fn live_entry(&self, id: &ShardId) -> Option<IndexEntry> {
        self.index.get(id).filter(|entry| !entry.tombstone).copied()
    }
}

enum WriteKind {
    Put {
        data: Bytes,
    },
    /// A put whose payload was received straight into its own aligned record buffer; the writer
    /// sends that buffer to the disk without copying it.
    Prepared {
        record: RecordBuffer,
    },
    Tombstone,
    /// A compaction copy: same payload, flags and sequence, new place. Installed only if the index
    /// still points at `from` when the copy is durable.
    Relocate {
        data: Bytes,
        sequence: u64,
        tombstone: bool,
        from: (u64, u64),
    },
}

struct WriteRequest {
    shard_id: ShardId,
    crc32c: u32,
    kind: WriteKind,
    reply: oneshot::Sender<Result<(), LogError>>,
}

impl WriteRequest {
    fn payload(&self) -> &[u8] {
        match &self.kind {
            WriteKind::Put { data } | WriteKind::Relocate { data, .. } => data,
            WriteKind::Prepared { record } => record.payload(),
            WriteKind::Tombstone => &[],
        }
    }

    fn is_tombstone(&self) -> bool {
        matches!(
            self.kind,
            WriteKind::Tombstone
                | WriteKind::Relocate {
                    tombstone: true,
                    ..
                }
        )
    }
}

/// An O_DIRECT-ready record buffer whose payload the caller fills in place (for example straight
/// from a socket), so a put reaches the disk without being copied. Obtained from
/// [`ShardLog::alloc_record_buffer`]; the 64-byte header in front and the padding behind are
/// written by the log.
pub struct RecordBuffer {
    buffer: glommio::io::DmaBuffer,
    payload_len: usize,
}

impl RecordBuffer {
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_bytes()[RECORD_HEADER_LEN..RECORD_HEADER_LEN + self.payload_len]
    }

    pub fn payload_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_bytes_mut()[RECORD_HEADER_LEN..RECORD_HEADER_LEN + self.payload_len]
    }
}

struct Shared {
    config: LogConfig,
    state: RefCell<State>,
}

/// One core's shard log. Cheap to clone; all clones share the same log. Not `Send`: it lives on the
/// glommio executor that opened it.
#[derive(Clone)]
pub struct ShardLog {
    shared: Rc<Shared>,
    sender: Rc<RefCell<Option<async_channel::Sender<WriteRequest>>>>,
    writer: Rc<RefCell<Option<glommio::task::JoinHandle<()>>>>,
}

fn to_io(error: GlommioError<()>) -> io::Error {
    match error {
        GlommioError::IoError(source) | GlommioError::EnhancedIoError { source, .. } => source,
        other => io::Error::other(other.to_string()),
    }
}

fn is_no_space(error: &io::Error) -> bool {
    matches!(
        error.raw_os_error(),
        Some(libc::ENOSPC) | Some(libc::EDQUOT)
    ) || error.kind() == io::ErrorKind::StorageFull
}

fn segment_path(dir: &Path, segment_id: u64) -> PathBuf {
    dir.join(format!("seg-{segment_id:012}.log"))
}

fn parse_segment_name(name: &str) -> Option<u64> {
    name.strip_prefix("seg-")?
        .strip_suffix(".log")?
        .parse()
        .ok()
}

fn sync_directory(dir: &Path) -> io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

/// Reads `[offset, offset + len)` of a DMA file into an owned buffer (short at end of file).
async fn read_exact_at(
    file: &DmaFile,
    offset: u64,
    len: usize,
) -> io::Result<glommio::io::ReadResult> {
    file.read_at(offset, len).await.map_err(to_io)
}

/// Sequential reader over a segment in large aligned windows, for recovery and compaction.
struct SegmentReader<'a> {
    file: &'a DmaFile,
    file_size: u64,
    window_start: u64,
    window: Option<glommio::io::ReadResult>,
}

const SCAN_WINDOW_BYTES: usize = 4 << 20;

/// Upper bound of the space at the end of each segment that only deletes may use.
const TOMBSTONE_RESERVE_BYTES: u64 = 2 << 20;

impl<'a> SegmentReader<'a> {
    fn new(file: &'a DmaFile, file_size: u64) -> Self {
        SegmentReader {
            file,
            file_size,
            window_start: 0,
            window: None,
        }
    }

    /// Returns `len` bytes at `offset`, or `None` past the end of the file.
    async fn bytes(&mut self, offset: u64, len: usize) -> io::Result<Option<Vec<u8>>> {
        if offset + len as u64 > self.file_size {
            return Ok(None);
        }
        let covered = self.window.as_ref().is_some_and(|window| {
            offset >= self.window_start
                && offset + len as u64 <= self.window_start + window.len() as u64
        });
        if !covered {
            if len > SCAN_WINDOW_BYTES / 2 {
                let read = read_exact_at(self.file, offset, len).await?;
                return Ok((read.len() == len).then(|| read.to_vec()));
            }
            let start = cairn_common::align_down(offset);
            let window_len = SCAN_WINDOW_BYTES.min((self.file_size - start) as usize);
            self.window = Some(read_exact_at(self.file, start, window_len).await?);
            self.window_start = start;
        }
        let window = self.window.as_ref().expect("window loaded");
        let from = (offset - self.window_start) as usize;
        if from + len > window.len() {
            return Ok(None);
        }
        Ok(Some(window[from..from + len].to_vec()))
    }
}

/// A record found while scanning a segment.
struct ScannedRecord {
    offset: u64,
    header: RecordHeader,
}

/// Scans one segment. Returns its valid records and the end of valid data.
///
/// `verify_payloads` is set for the active segment, the only one a crash can leave torn: every
/// payload is checked there. After an invalid record the scan looks further: a valid record later
/// means the bad one is mid-log corruption (counted and skipped; erasure coding repairs it), none
/// means the bad one is the torn tail (the data ends there).
async fn scan_segment(
    file: &DmaFile,
    salt: u64,
    verify_payloads: bool,
    stats: &mut LogStats,
) -> io::Result<(Vec<ScannedRecord>, u64)> {
    let file_size = file.file_size().await.map_err(to_io)?;
    let mut reader = SegmentReader::new(file, file_size);
    scan_from(
        &mut reader,
        SEGMENT_HEADER_LEN as u64,
        salt,
        verify_payloads,
        stats,
    )
    .await
}

/// Scans records from `offset` until the end of valid data.
async fn scan_from(
    reader: &mut SegmentReader<'_>,
    mut offset: u64,
    salt: u64,
    verify_payloads: bool,
    stats: &mut LogStats,
) -> io::Result<(Vec<ScannedRecord>, u64)> {
    let mut records = Vec::new();
    let mut end = offset;
    loop {
        if let Some(header) = valid_record_at(reader, offset, salt, verify_payloads).await? {
            records.push(ScannedRecord { offset, header });
            offset += header.record_len_bytes();
            end = offset;
            continue;
        }
        let mut probe = offset + cairn_common::DIRECT_IO_ALIGNMENT_BYTES as u64;
        let mut found = None;
        while probe + RECORD_HEADER_LEN as u64 <= reader.file_size {
            if valid_record_at(reader, probe, salt, verify_payloads)
                .await?
                .is_some()
            {
                found = Some(probe);
                break;
            }
            probe += cairn_common::DIRECT_IO_ALIGNMENT_BYTES as u64;
        }
        match found {
            Some(next) => {
                tracing::warn!(
                    offset,
                    next,
                    "corrupt record in the middle of a segment; skipped"
                );
                stats.checksum_errors += 1;
                offset = next;
            }
            None => return Ok((records, end)),
        }
    }
}

async fn valid_record_at(
    reader: &mut SegmentReader<'_>,
    offset: u64,
    salt: u64,
    verify_payload: bool,
) -> io::Result<Option<RecordHeader>> {
    let Some(header_bytes) = reader.bytes(offset, RECORD_HEADER_LEN).await? else {
        return Ok(None);
    };
    let Ok(header) = RecordHeader::decode(&header_bytes, salt) else {
        return Ok(None);
    };
    if offset + header.record_len_bytes() > reader.file_size {
        return Ok(None);
    }
    if verify_payload {
        let payload_offset = offset + RECORD_HEADER_LEN as u64;
        let Some(payload) = reader
            .bytes(payload_offset, header.payload_len as usize)
            .await?
        else {
            return Ok(None);
        };
        if crc32c::crc32c(&payload) != header.payload_crc32c {
            return Ok(None);
        }
    }
    Ok(Some(header))
}

/// Makes glommio decide correctly whether the device supports polled (IOPOLL) I/O.
///
/// glommio probes the first O_DIRECT file it opens on a device by reading its first block through
/// the poll ring and caches the answer for the whole process. On an empty file that read succeeds
/// without touching the device, so a process whose first file is a new segment wrongly enables
/// polled I/O and every later read fails with EOPNOTSUPP. Opening a file that holds a block first
/// makes the probe real.
async fn probe_polled_io(dir: &Path) -> io::Result<()> {
    let path = dir.join("io-probe");
    if std::fs::metadata(&path)
        .map(|metadata| metadata.len())
        .unwrap_or(0)
        < cairn_common::DIRECT_IO_ALIGNMENT_BYTES as u64
    {
        std::fs::write(&path, vec![0u8; cairn_common::DIRECT_IO_ALIGNMENT_BYTES])?;
        std::fs::File::open(&path)?.sync_all()?;
    }
    let file = DmaFile::open(&path).await.map_err(to_io)?;
    file.close().await.map_err(to_io)
}

impl ShardLog {
    /// Opens (or creates) the log in `config.dir`, rebuilding the index by scanning the segments and
    /// cutting a torn tail, then starts the writer task on the current glommio executor.
    pub async fn open(config: LogConfig) -> Result<ShardLog, LogError> {
        std::fs::create_dir_all(&config.dir)?;
        probe_polled_io(&config.dir).await?;
        let mut segment_ids: Vec<u64> = std::fs::read_dir(&config.dir)?
            .filter_map(|entry| entry.ok())
            .filter_map(|entry| parse_segment_name(&entry.file_name().to_string_lossy()))
            .collect();
        segment_ids.sort_unstable();

        let mut state = State {
            index: BTreeMap::new(),
            segments: BTreeMap::new(),
            active_segment_id: 0,
            next_sequence: 1,
            cache: HotCache::new(config.cache_capacity_bytes),
            failure: None,
            stats: LogStats::default(),
            compacting: false,
        };
        let last_segment_id = segment_ids.last().copied();
        for segment_id in segment_ids {
            let path = segment_path(&config.dir, segment_id);
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .dma_open(&path)
                .await
                .map_err(to_io)?;
            let is_last = Some(segment_id) == last_segment_id;
            let header_block = read_exact_at(&file, 0, SEGMENT_HEADER_LEN).await?;
            let header = match SegmentHeader::decode(&header_block) {
                Ok(header) if header.segment_id == segment_id => header,
                result => {
                    if is_last {
                        // A crash while a new segment was being created: it never held a record.
                        tracing::warn!(
                            ?path,
                            ?result,
                            "removing a segment whose header was never completed"
                        );
                        drop(file);
                        std::fs::remove_file(&path)?;
                        continue;
                    }
                    let reason = result.err().unwrap_or(RecordError::BadMagic);
                    return Err(LogError::CorruptSegment { segment_id, reason });
                }
            };
            let (records, end) =
                scan_segment(&file, header.salt, is_last, &mut state.stats).await?;
            let file_size = file.file_size().await.map_err(to_io)?;
            state.segments.insert(
                segment_id,
                Segment {
                    file: Rc::new(file),
                    path,
                    salt: header.salt,
                    written_bytes: end,
                    live_bytes: 0,
                    min_sequence: u64::MAX,
                },
            );
            if is_last && end < file_size {
                // Zero everything after the valid data so stale bytes of a torn batch can never be
                // mistaken for records after later, shorter batches.
                let segment = &state.segments[&segment_id];
                let stale =
                    read_exact_at(&segment.file, end, (file_size - end).min(1 << 20) as usize)
                        .await?;
                if stale.iter().any(|byte| *byte != 0) {
                    state.stats.torn_bytes_truncated += file_size - end;
                    tracing::warn!(segment_id, end, "cut a torn tail");
                }
                segment.file.truncate(end).await.map_err(to_io)?;
                segment
                    .file
                    .pre_allocate(config.segment_size_bytes, false)
                    .await
                    .map_err(to_io)?;
            }
            for record in records {
                let entry = IndexEntry {
                    segment_id,
                    offset: record.offset,
                    payload_len: record.header.payload_len,
                    crc32c: record.header.payload_crc32c,
                    sequence: record.header.sequence,
                    tombstone: record.header.is_tombstone(),
                };
                state.next_sequence = state.next_sequence.max(entry.sequence + 1);
                let newer_exists =
                    state
                        .index
                        .get(&record.header.shard_id)
                        .is_some_and(|existing| {
                            (existing.sequence, existing.segment_id)
                                > (entry.sequence, entry.segment_id)
                        });
                let segment = state.segments.get_mut(&segment_id).expect("inserted above");
                segment.min_sequence = segment.min_sequence.min(entry.sequence);
                if !newer_exists {
                    state.install(record.header.shard_id, entry);
                }
            }
        }
        let shared = Rc::new(Shared {
            config,
            state: RefCell::new(state),
        });
        if shared.state.borrow().segments.is_empty() {
            shared.create_segment(1).await?;
        }
        {
            let mut state = shared.state.borrow_mut();
            state.active_segment_id = *state.segments.keys().next_back().expect("a segment exists");
            state.stats.shard_count = state
                .index
                .values()
                .filter(|entry| !entry.tombstone)
                .count() as u64;
        }
        let (sender, receiver) = async_channel::bounded(shared.config.write_queue_depth);
        let writer = glommio::spawn_local(writer_loop(shared.clone(), receiver)).detach();
        Ok(ShardLog {
            shared,
            sender: Rc::new(RefCell::new(Some(sender))),
            writer: Rc::new(RefCell::new(Some(writer))),
        })
    }

    async fn submit(
        &self,
        shard_id: ShardId,
        crc32c: u32,
        kind: WriteKind,
    ) -> Result<(), LogError> {
        let sender = self.sender.borrow().clone().ok_or(LogError::Closed)?;
        let (reply, response) = oneshot::channel();
        sender
            .send(WriteRequest {
                shard_id,
                crc32c,
                kind,
                reply,
            })
            .await
            .map_err(|_| LogError::Closed)?;
        response.await.map_err(|_| LogError::Closed)?
    }

    /// Stores `data` as shard `shard_id`, durably, replacing any earlier version. `crc32c` is the
    /// checksum the client computed; a mismatch is refused before anything is written.
    pub async fn put(&self, shard_id: ShardId, data: Bytes, crc32c: u32) -> Result<(), LogError> {
        if data.len() > MAX_PAYLOAD_BYTES {
            return Err(LogError::TooLarge(data.len() as u64));
        }
        self.submit(shard_id, crc32c, WriteKind::Put { data }).await
    }

    /// A buffer for a shard of `payload_len` bytes to fill and pass to [`ShardLog::put_record`].
    pub fn alloc_record_buffer(&self, payload_len: usize) -> Result<RecordBuffer, LogError> {
        if payload_len > MAX_PAYLOAD_BYTES {
            return Err(LogError::TooLarge(payload_len as u64));
        }
        let state = self.shared.state.borrow();
        let file = &state.segments[&state.active_segment_id].file;
        let buffer = file.alloc_dma_buffer(record_len_bytes(payload_len) as usize);
        Ok(RecordBuffer {
            buffer,
            payload_len,
        })
    }

    /// Like [`ShardLog::put`], for a payload already in a record buffer: no copy on the way to disk.
    pub async fn put_record(
        &self,
        shard_id: ShardId,
        record: RecordBuffer,
        crc32c: u32,
    ) -> Result<(), LogError> {
        self.submit(shard_id, crc32c, WriteKind::Prepared { record })
            .await
    }

    /// Deletes a shard durably. Returns whether it existed; deleting a missing shard writes nothing.
    pub async fn delete(&self, shard_id: ShardId) -> Result<bool, LogError> {
        if self.shared.state.borrow().live_entry(&shard_id).is_none() {
            return Ok(false);
        }
        self.submit(shard_id, 0, WriteKind::Tombstone).await?;
        Ok(true)
    }

    /// Reads a shard (or `range = (offset, length)` of it, clipped to the shard's end), verifying the
    /// whole shard's checksum.
    pub async fn get(
        &self,
        shard_id: ShardId,
        range: Option<(u64, u64)>,
    ) -> Result<ShardRead, LogError> {
        self.read(shard_id, range, true).await
    }

    /// Like [`ShardLog::get`], but never answered from (nor added to) the hot-shard cache: the
    /// record is read from disk and checked. A scrubber reads this way, since a cached copy
    /// would hide damage to the bytes on disk.
    pub async fn get_from_disk(
        &self,
        shard_id: ShardId,
        range: Option<(u64, u64)>,
    ) -> Result<ShardRead, LogError> {
        self.read(shard_id, range, false).await
    }

    async fn read(
        &self,
        shard_id: ShardId,
        range: Option<(u64, u64)>,
        use_cache: bool,
    ) -> Result<ShardRead, LogError> {
        let (entry, file, salt, cached) = {
            let mut state = self.shared.state.borrow_mut();
            let entry = state.live_entry(&shard_id).ok_or(LogError::NotFound)?;
            let cached = if use_cache {
                state.cache.get(&shard_id)
            } else {
                None
            };
            let segment = &state.segments[&entry.segment_id];
            (entry, segment.file.clone(), segment.salt, cached)
        };
        let shard_length = u64::from(entry.payload_len);
        // A range reaching past the end is clipped to it (as HTTP ranges are); one starting past
        // the end is refused.
        let (offset, requested_length) = range.unwrap_or((0, shard_length));
        if offset > shard_length {
            return Err(LogError::InvalidRange {
                offset,
                length: requested_length,
                shard_length,
            });
        }
        let length = requested_length.min(shard_length - offset);
        let whole = match cached {
            Some(bytes) => bytes,
            None => {
                let record =
                    read_exact_at(&file, entry.offset, entry.record_len_bytes() as usize).await;
                let record = match record {
                    Ok(record) => record,
                    Err(error) => {
                        self.shared.state.borrow_mut().stats.io_errors += 1;
                        return Err(LogError::Io(error));
                    }
                };
                let header = RecordHeader::decode(&record, salt);
                let header_matches = header.as_ref().is_ok_and(|header| {
                    header.shard_id == shard_id
                        && header.sequence == entry.sequence
                        && header.payload_len == entry.payload_len
                });
                let payload_end = RECORD_HEADER_LEN + entry.payload_len as usize;
                let found = if header_matches && record.len() >= payload_end {
                    crc32c::crc32c(&record[RECORD_HEADER_LEN..payload_end])
                } else {
                    !entry.crc32c
                };
                if found != entry.crc32c {
                    self.shared.state.borrow_mut().stats.checksum_errors += 1;
                    return Err(LogError::ChecksumMismatch {
                        shard_id,
                        expected: entry.crc32c,
                        found,
                    });
                }
                let bytes = Bytes::copy_from_slice(&record[RECORD_HEADER_LEN..payload_end]);
                let mut state = self.shared.state.borrow_mut();
                // Cache only if the shard was not rewritten while we read.
                if use_cache && state.live_entry(&shard_id) == Some(entry) {
                    state.cache.insert(shard_id, bytes.clone());
                }
                bytes
            }
        };
        Ok(ShardRead {
            data: whole.slice(offset as usize..(offset + length) as usize),
            shard_length,
            crc32c: entry.crc32c,
        })
    }

    pub fn stat(&self, shard_id: ShardId) -> Option<ShardStat> {
        self.shared
            .state
            .borrow()
            .live_entry(&shard_id)
            .map(|entry| ShardStat {
                shard_id,
                length: u64::from(entry.payload_len),
                crc32c: entry.crc32c,
                sequence: entry.sequence,
            })
    }

    /// Live shards with ids after `after`, in id order, at most `limit`.
    pub fn scan(&self, after: Option<ShardId>, limit: usize) -> Vec<ShardStat> {
        let state = self.shared.state.borrow();
        let range = match after {
            Some(after) => state
                .index
                .range((std::ops::Bound::Excluded(after), std::ops::Bound::Unbounded)),
            None => state.index.range(..),
        };
        range
            .filter(|(_, entry)| !entry.tombstone)
            .take(limit)
            .map(|(shard_id, entry)| ShardStat {
                shard_id: *shard_id,
                length: u64::from(entry.payload_len),
                crc32c: entry.crc32c,
                sequence: entry.sequence,
            })
            .collect()
    }

    pub fn stats(&self) -> LogStats {
        let state = self.shared.state.borrow();
        let mut stats = state.stats;
        stats.segment_count = state.segments.len() as u64;
        stats.used_bytes = state
            .segments
            .values()
            .map(|segment| segment.written_bytes)
            .sum();
        stats.live_bytes = state
            .segments
            .values()
            .map(|segment| segment.live_bytes)
            .sum();
        stats.cache = state.cache.stats();
        stats
    }

    /// Why the log stopped accepting writes, if it did.
    pub fn failure(&self) -> Option<String> {
        self.shared.state.borrow().failure.clone()
    }

    pub fn config(&self) -> &LogConfig {
        &self.shared.config
    }

    /// Compacts every sealed segment whose garbage ratio reached the threshold. Returns the number
    /// of segments removed. Runs concurrently with reads and writes: live records are copied through
    /// the writer (group-committed like puts), then the old segment is unlinked.
    pub async fn compact(&self) -> Result<u64, LogError> {
        if std::mem::replace(&mut self.shared.state.borrow_mut().compacting, true) {
            return Ok(0);
        }
        let result = self.compact_inner().await;
        self.shared.state.borrow_mut().compacting = false;
        result
    }

    async fn compact_inner(&self) -> Result<u64, LogError> {
        let candidates: Vec<u64> = {
            let state = self.shared.state.borrow();
            state
                .segments
                .iter()
                .filter(|(id, segment)| {
                    **id != state.active_segment_id
                        && (segment.live_bytes == 0
                            || segment.garbage_ratio()
                                >= self.shared.config.compaction_garbage_ratio)
                })
                .map(|(id, _)| *id)
                .collect()
        };
        let mut removed = 0;
        for segment_id in candidates {
            if self.compact_segment(segment_id).await? {
                removed += 1;
            }
        }
        Ok(removed)
    }

    async fn compact_segment(&self, segment_id: u64) -> Result<bool, LogError> {
        let (entries, file, salt) = {
            let mut state = self.shared.state.borrow_mut();
            let mut entries: Vec<(ShardId, IndexEntry)> = state
                .index
                .iter()
                .filter(|(_, entry)| entry.segment_id == segment_id)
                .map(|(id, entry)| (*id, *entry))
                .collect();
            // A tombstone may go when no other segment can hold an older record of its shard.
            let oldest_elsewhere = state
                .segments
                .iter()
                .filter(|(id, _)| **id != segment_id)
                .map(|(_, segment)| segment.min_sequence)
                .min()
                .unwrap_or(u64::MAX);
            let mut dropped_bytes = 0;
            entries.retain(|(id, entry)| {
                if entry.tombstone && entry.sequence < oldest_elsewhere {
                    state.index.remove(id);
                    dropped_bytes += entry.record_len_bytes();
                    false
                } else {
                    true
                }
            });
            state
                .segments
                .get_mut(&segment_id)
                .expect("candidate segment")
                .live_bytes -= dropped_bytes;
            let segment = &state.segments[&segment_id];
            (entries, segment.file.clone(), segment.salt)
        };
        // Copy in bounded chunks so a large segment never sits in memory whole.
        const CHUNK_BYTES: u64 = 16 << 20;
        let mut start = 0;
        while start < entries.len() {
            let mut end = start;
            let mut chunk_bytes = 0;
            while end < entries.len() && (end == start || chunk_bytes < CHUNK_BYTES) {
                chunk_bytes += entries[end].1.record_len_bytes();
                end += 1;
            }
            let mut pending = Vec::new();
            for (shard_id, entry) in &entries[start..end] {
                let data = if entry.tombstone {
                    Bytes::new()
                } else {
                    let record =
                        read_exact_at(&file, entry.offset, entry.record_len_bytes() as usize)
                            .await?;
                    let header = RecordHeader::decode(&record, salt)
                        .map_err(|reason| LogError::CorruptSegment { segment_id, reason })?;
                    let payload_end = RECORD_HEADER_LEN + header.payload_len as usize;
                    // The payload is copied as stored, even if corrupt: its recorded checksum goes
                    // with it, so reads keep reporting the corruption instead of losing the shard.
                    Bytes::copy_from_slice(&record[RECORD_HEADER_LEN..payload_end])
                };
                let kind = WriteKind::Relocate {
                    data,
                    sequence: entry.sequence,
                    tombstone: entry.tombstone,
                    from: (segment_id, entry.offset),
                };
                let sender = self.sender.borrow().clone().ok_or(LogError::Closed)?;
                let (reply, response) = oneshot::channel();
                sender
                    .send(WriteRequest {
                        shard_id: *shard_id,
                        crc32c: entry.crc32c,
                        kind,
                        reply,
                    })
                    .await
                    .map_err(|_| LogError::Closed)?;
                pending.push(response);
            }
            for response in pending {
                response.await.map_err(|_| LogError::Closed)??;
            }
            start = end;
        }
        let mut state = self.shared.state.borrow_mut();
        let still_referenced = state
            .index
            .values()
            .any(|entry| entry.segment_id == segment_id);
        if still_referenced {
            tracing::warn!(
                segment_id,
                "segment still referenced after compaction; kept"
            );
            return Ok(false);
        }
        let segment = state.segments.remove(&segment_id).expect("segment exists");
        state.stats.compactions += 1;
        state.stats.compacted_bytes_reclaimed += segment.written_bytes;
        drop(state);
        // In-flight reads hold their own reference to the file; unlinking keeps their fd valid.
        std::fs::remove_file(&segment.path)?;
        Ok(true)
    }

    /// Stops the writer after it committed everything already queued.
    pub async fn close(&self) {
        self.sender.borrow_mut().take();
        let writer = self.writer.borrow_mut().take();
        if let Some(writer) = writer {
            writer.await;
        }
    }
}

impl Shared {
    async fn create_segment(&self, segment_id: u64) -> Result<(), LogError> {
        let path = segment_path(&self.config.dir, segment_id);
        let result: io::Result<DmaFile> = async {
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .create_new(true)
                .dma_open(&path)
                .await
                .map_err(to_io)?;
            file.pre_allocate(self.config.segment_size_bytes, false)
                .await
                .map_err(to_io)?;
            Ok(file)
        }
        .await;
        let file = match result {
            Ok(file) => file,
            Err(error) => {
                let _ = std::fs::remove_file(&path);
                return Err(if is_no_space(&error) {
                    LogError::NoSpace
                } else {
                    LogError::Io(error)
                });
            }
        };
        let salt = rand::random::<u64>();
        let mut block = file.alloc_dma_buffer(SEGMENT_HEADER_LEN);
        block.as_bytes_mut().fill(0);
        SegmentHeader { segment_id, salt }.encode_into(block.as_bytes_mut());
        let written = file.write_at(block, 0).await.map_err(to_io)?;
        if written != SEGMENT_HEADER_LEN {
            return Err(LogError::Io(io::Error::other(
                "short write of a segment header",
            )));
        }
        file.fdatasync().await.map_err(to_io)?;
        sync_directory(&self.config.dir)?;
        let mut state = self.state.borrow_mut();
        state.segments.insert(
            segment_id,
            Segment {
                file: Rc::new(file),
                path,
                salt,
                written_bytes: SEGMENT_HEADER_LEN as u64,
                live_bytes: 0,
                min_sequence: u64::MAX,
            },
        );
        state.active_segment_id = segment_id;
        Ok(())
    }

    /// Gives back the preallocated space a segment did not use once it is sealed (a segment rolls
    /// over when the next batch does not fit, leaving up to a batch plus the tombstone reserve
    /// unused). Best effort: a failure only costs disk space.
    async fn release_sealed_tail(&self, segment_id: u64) {
        let (file, written_bytes) = {
            let state = self.state.borrow();
            let Some(segment) = state.segments.get(&segment_id) else {
                return;
            };
            (segment.file.clone(), segment.written_bytes)
        };
        if let Err(error) = file.truncate(written_bytes).await {
            tracing::warn!(segment_id, %error, "could not release a sealed segment's unused space");
        }
    }

    fn fail(&self, reason: String) {
        let mut state = self.state.borrow_mut();
        state.stats.io_errors += 1;
        if state.failure.is_none() {
            tracing::error!(dir = ?self.config.dir, %reason, "shard log failed; refusing further writes");
            state.failure = Some(reason);
        }
    }

    /// Commits one group: one write, one fdatasync, then the index update and the replies.
    async fn commit_batch(&self, mut batch: Vec<WriteRequest>) {
        if let Some(reason) = self.state.borrow().failure.clone() {
            for request in batch {
                let _ = request.reply.send(Err(LogError::Failed(reason.clone())));
            }
            return;
        }
        // Checksums are verified just before the write: a mismatch is refused, nothing is written.
        batch.retain_mut(|request| {
            if request.is_tombstone() || matches!(request.kind, WriteKind::Relocate { .. }) {
                return true;
            }
            let found = crc32c::crc32c(request.payload());
            if found == request.crc32c {
                return true;
            }
            let error = LogError::ChecksumMismatch {
                shard_id: request.shard_id,
                expected: request.crc32c,
                found,
            };
            let (reply, _) = oneshot::channel();
            let _ = std::mem::replace(&mut request.reply, reply).send(Err(error));
            false
        });
        if batch.is_empty() {
            return;
        }
        let batch_bytes: u64 = batch
            .iter()
            .map(|request| record_len_bytes(request.payload().len()))
            .sum();

        let (active_id, tail) = {
            let state = self.state.borrow();
            (
                state.active_segment_id,
                state.segments[&state.active_segment_id].written_bytes,
            )
        };
        // Puts leave the end of a segment (an eighth, at most 2 MiB: 512 tombstones) to deletes, so
        // that a full disk can still take the tombstones that free space (compaction then removes
        // the dead segments).
        let only_tombstones = batch.iter().all(WriteRequest::is_tombstone);
        let tombstone_reserve_bytes =
            (self.config.segment_size_bytes / 8).min(TOMBSTONE_RESERVE_BYTES);
        let segment_limit = if only_tombstones {
            self.config.segment_size_bytes
        } else {
            self.config.segment_size_bytes - tombstone_reserve_bytes
        };
        let (segment_id, tail) =
            if tail + batch_bytes > segment_limit && tail > SEGMENT_HEADER_LEN as u64 {
                match self.create_segment(active_id + 1).await {
                    Ok(()) => {
                        self.release_sealed_tail(active_id).await;
                        (active_id + 1, SEGMENT_HEADER_LEN as u64)
                    }
                    Err(error) => {
                        let error = match error {
                            LogError::NoSpace => LogError::NoSpace,
                            other => {
                                self.fail(other.to_string());
                                LogError::Failed(other.to_string())
                            }
                        };
                        reply_all(batch, &error);
                        return;
                    }
                }
            } else {
                (active_id, tail)
            };

        let (file, salt) = {
            let state = self.state.borrow();
            let segment = &state.segments[&segment_id];
            (segment.file.clone(), segment.salt)
        };
        // Records that arrived in their own aligned buffer are written from it; all others are
        // copied into one buffer. The copied ones go first, then each prepared one, back to back;
        // all writes are in flight together and one fdatasync covers them.
        let is_prepared =
            |request: &WriteRequest| matches!(request.kind, WriteKind::Prepared { .. });
        let mut offsets = vec![0u64; batch.len()];
        let mut cursor = tail;
        for pass_prepared in [false, true] {
            for (index, request) in batch.iter().enumerate() {
                if is_prepared(request) == pass_prepared {
                    offsets[index] = cursor;
                    cursor += record_len_bytes(request.payload().len());
                }
            }
        }
        let copied_bytes = batch
            .iter()
            .filter(|request| !is_prepared(request))
            .map(|request| record_len_bytes(request.payload().len()))
            .sum::<u64>();
        let mut copied = (copied_bytes > 0).then(|| file.alloc_dma_buffer(copied_bytes as usize));
        let mut writes = Vec::new();
        let mut placed = Vec::with_capacity(batch.len());
        let mut next_sequence = self.state.borrow().next_sequence;
        for (index, request) in batch.iter_mut().enumerate() {
            let (sequence, flags) = match &request.kind {
                WriteKind::Put { .. } | WriteKind::Prepared { .. } => (next_sequence, 0),
                WriteKind::Tombstone => (next_sequence, FLAG_TOMBSTONE),
                WriteKind::Relocate {
                    sequence,
                    tombstone,
                    ..
                } => (*sequence, if *tombstone { FLAG_TOMBSTONE } else { 0 }),
            };
            if !matches!(request.kind, WriteKind::Relocate { .. }) {
                next_sequence += 1;
            }
            let payload_len = request.payload().len();
            let header = RecordHeader {
                flags,
                shard_id: request.shard_id,
                payload_len: payload_len as u32,
                payload_crc32c: if flags & FLAG_TOMBSTONE != 0 {
                    0
                } else {
                    request.crc32c
                },
                sequence,
            };
            let record_len = header.record_len_bytes() as usize;
            let payload_end = RECORD_HEADER_LEN + payload_len;
            if is_prepared(request) {
                // The payload is written from its own buffer; what stays behind is an empty put,
                // which the index update below treats like any put.
                let kind =
                    std::mem::replace(&mut request.kind, WriteKind::Put { data: Bytes::new() });
                if let WriteKind::Prepared { mut record } = kind {
                    let bytes = record.buffer.as_bytes_mut();
                    bytes[..RECORD_HEADER_LEN].copy_from_slice(&header.encode(salt));
                    bytes[payload_end..record_len].fill(0);
                    writes.push((offsets[index], record.buffer));
                }
            } else {
                let bytes = copied.as_mut().expect("a copied record").as_bytes_mut();
                let at = (offsets[index] - tail) as usize;
                bytes[at..at + RECORD_HEADER_LEN].copy_from_slice(&header.encode(salt));
                bytes[at + RECORD_HEADER_LEN..at + payload_end].copy_from_slice(request.payload());
                bytes[at + payload_end..at + record_len].fill(0);
            }
            placed.push(IndexEntry {
                segment_id,
                offset: offsets[index],
                payload_len: header.payload_len,
                crc32c: header.payload_crc32c,
                sequence,
                tombstone: header.is_tombstone(),
            });
        }
        self.state.borrow_mut().next_sequence = next_sequence;
        if let Some(buffer) = copied {
            writes.insert(0, (tail, buffer));
        }

        let injected = self.config.inject_write_errno.swap(0, Ordering::SeqCst);
        let result: io::Result<()> = if injected != 0 {
            Err(io::Error::from_raw_os_error(injected))
        } else {
            let tasks: Vec<_> = writes
                .into_iter()
                .map(|(offset, buffer)| {
                    let file = file.clone();
                    glommio::spawn_local(async move {
                        let length = buffer.len();
                        let written = file.write_at(buffer, offset).await.map_err(to_io)?;
                        if written != length {
                            return Err(io::Error::other(format!(
                                "short write: {written} of {length} bytes"
                            )));
                        }
                        Ok(())
                    })
                })
                .collect();
            let mut first_error = None;
            for task in tasks {
                if let Err(error) = task.await {
                    first_error.get_or_insert(error);
                }
            }
            match first_error {
                Some(error) => Err(error),
                None => file.fdatasync().await.map_err(to_io),
            }
        };
        if let Err(error) = result {
            if is_no_space(&error) {
                // The tail does not move: the next batch overwrites whatever part of this one landed.
                tracing::warn!(dir = ?self.config.dir, "shard log write failed: no space left");
                reply_all(batch, &LogError::NoSpace);
            } else {
                self.fail(format!("write or fdatasync failed: {error}"));
                reply_all(batch, &LogError::Failed(error.to_string()));
            }
            return;
        }

        let mut state = self.state.borrow_mut();
        state
            .segments
            .get_mut(&segment_id)
            .expect("active segment")
            .written_bytes = tail + batch_bytes;
        state.stats.batches += 1;
        state.stats.batched_records += batch.len() as u64;
        for (request, entry) in batch.into_iter().zip(placed) {
            match request.kind {
                WriteKind::Relocate { from, .. } => {
                    let unchanged = state
                        .index
                        .get(&request.shard_id)
                        .is_some_and(|current| (current.segment_id, current.offset) == from);
                    if unchanged {
                        state.install(request.shard_id, entry);
                    } else {
                        let segment = state.segments.get_mut(&segment_id).expect("active segment");
                        segment.min_sequence = segment.min_sequence.min(entry.sequence);
                    }
                }
                WriteKind::Put { .. } | WriteKind::Prepared { .. } | WriteKind::Tombstone => {
                    let was_live = state.live_entry(&request.shard_id).is_some();
                    state.install(request.shard_id, entry);
                    match (was_live, entry.tombstone) {
                        (false, false) => state.stats.shard_count += 1,
                        (true, true) => state.stats.shard_count -= 1,
                        _ => {}
                    }
                }
            }
            let _ = request.reply.send(Ok(()));
        }
    }
}

fn reply_all(batch: Vec<WriteRequest>, error: &LogError) {
    for request in batch {
        let copy = match error {
            LogError::NoSpace => LogError::NoSpace,
            other => LogError::Failed(other.to_string()),
        };
        let _ = request.reply.send(Err(copy));
    }
}

async fn writer_loop(shared: Rc<Shared>, receiver: async_channel::Receiver<WriteRequest>) {
    while let Ok(first) = receiver.recv().await {
        let mut batch_bytes = record_len_bytes(first.payload().len()) as usize;
        let mut batch = vec![first];
        while batch_bytes < shared.config.max_batch_bytes {
            match receiver.try_recv() {
                Ok(request) => {
                    batch_bytes += record_len_bytes(request.payload().len()) as usize;
                    batch.push(request);
                }
                Err(_) => break,
            }
        }
        shared.commit_batch(batch).await;
    }
}
