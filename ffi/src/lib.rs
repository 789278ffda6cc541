//! libcairn: the C ABI for in-process shard access and erasure coding.
//!
//! Model: C code opens a store directory (the storage node's layout, served by shard logs on the
//! library's own glommio executor threads, see [`store`]) and gets an opaque `cairn_store *`; it
//! builds an opaque `cairn_codec *` from a scheme string for erasure coding. Every call returns a
//! `cairn_status`; `cairn_last_error()` gives the message of the calling thread's last failure.
//!
//! Invariants of every entry point in this file:
//! - It never unwinds into C: the body runs inside [`error::guard`] (`catch_unwind`), a panic becomes
//!   `CAIRN_STATUS_INTERNAL`.
//! - Pointer arguments are checked for null and lengths for consistency before anything is read;
//!   out-parameters are written only on success (except the size of a too-small buffer).
//! - Shard pointer arrays handed to a codec must not overlap; overlapping ones are refused, because
//!   they would alias mutable memory.
//!
//! Thread safety (repeated in the header):
//! - `cairn_store`: every call except `cairn_store_close` may run concurrently from any number of
//!   threads on one handle. `cairn_store_close` must run once, after all other calls on that handle
//!   returned. A handle does not survive `fork()`: in the child, calls on the inherited handle
//!   return `CAIRN_STATUS_INVALID_ARGUMENT` and closing it only releases it.
//! - `cairn_codec`: calls on one handle are serialised by an internal lock; use one codec per
//!   thread to encode in parallel. `cairn_codec_free` must run after all other calls returned.
//! - `cairn_last_error()` is per thread. Everything else is stateless and thread-safe.

pub mod error;
pub mod store;

pub use crate::error::CairnStatus;

use crate::error::{
    FfiError, c_str_arg, guard, guard_value, in_arg, last_error_ptr, out_arg, slice_arg,
    slice_arg_mut,
};
use crate::store::{Store, StoreConfig};
use bytes::Bytes;
use cairn_common::{ShardId, ShardIndex};
use cairn_ec::{ErasureCodec, Scheme, ShardSet, new_codec};
use cairn_shardlog::ShardStat;
use libc::c_char;
use std::sync::Mutex;

/// A `length` for `cairn_store_get`: everything from `offset` to the end of the shard.
pub const CAIRN_LENGTH_TO_END: u64 = u64::MAX;

/// Largest shard the store accepts (the shard log's record limit).
pub const CAIRN_MAX_SHARD_BYTES: usize = 256 << 20;
// A literal so that cbindgen can export it; it must follow the shard log's limit.
const _: () = assert!(CAIRN_MAX_SHARD_BYTES == cairn_shardlog::record::MAX_PAYLOAD_BYTES);

/// Length of a shard id in bytes.
pub const CAIRN_SHARD_ID_LEN: usize = 32;

/// Name of one stored shard: 32 bytes, ordered bytewise (see `cairn_shard_id_make` for the layout).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CairnShardId {
    pub bytes: [u8; CAIRN_SHARD_ID_LEN],
}

/// What the store knows about one live shard.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CairnShardStat {
    pub id: CairnShardId,
    /// Length of the whole shard.
    pub length_bytes: u64,
    /// Sequence number of the record in its log (grows with every write to that log).
    pub sequence: u64,
    /// CRC32C (Castagnoli) of the whole shard.
    pub crc32c: u32,
}

impl From<ShardStat> for CairnShardStat {
    fn from(stat: ShardStat) -> Self {
        CairnShardStat {
            id: CairnShardId {
                bytes: stat.shard_id.0,
            },
            length_bytes: stat.length,
            sequence: stat.sequence,
            crc32c: stat.crc32c,
        }
    }
}

/// Options of `cairn_store_open`. Initialise with `cairn_store_options_init`, then change fields.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CairnStoreOptions {
    /// Logs (one executor thread each) for a new directory; 0 means one per available CPU. An
    /// existing directory keeps the count it was created with.
    pub logs: u32,
    /// Non-zero: create the directory when it does not exist. Zero: `CAIRN_STATUS_NOT_FOUND`.
    pub create_if_missing: u32,
    /// Size new segment files are preallocated to (at least 1 MiB).
    pub segment_size_bytes: u64,
    /// Hot-shard read cache of each log; 0 disables it.
    pub cache_capacity_bytes_per_log: u64,
    /// Each log compacts sealed segments in the background this often (the storage node's default
    /// is 10 s); 0: only when `cairn_store_compact` is called.
    pub compaction_interval_ms: u64,
}

/// Totals over every log of a store.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CairnStats {
    pub log_count: u64,
    pub shard_count: u64,
    pub segment_count: u64,
    /// Bytes of records in existing segments (live and garbage).
    pub used_bytes: u64,
    /// Bytes of records that live shards point to.
    pub live_bytes: u64,
    pub io_errors: u64,
    pub checksum_errors: u64,
    /// Bytes of torn tails cut when the logs were opened (a crash interrupted a write).
    pub torn_bytes_truncated: u64,
    pub compactions: u64,
}

/// Bytes allocated by libcairn; release with `cairn_buffer_free`.
#[repr(C)]
#[derive(Debug)]
pub struct CairnBuffer {
    pub data: *mut u8,
    pub len_bytes: usize,
}

/// An open store directory (opaque).
pub struct CairnStore {
    store: Store,
}

/// An erasure codec for one scheme (opaque).
pub struct CairnCodec {
    scheme: Scheme,
    codec: Mutex<Box<dyn ErasureCodec>>,
}

// The C API hands these to any thread; fail the build if they stop being shareable.
const _: () = {
    const fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<CairnStore>();
    assert_send_sync::<CairnCodec>();
};

// ---------------------------------------------------------------------------------------------
// Versions, errors, helpers.

/// The library version ("MAJOR.MINOR.PATCH"), a static string.
#[unsafe(no_mangle)]
pub extern "C" fn cairn_version() -> *const c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast()
}

/// Version of the on-disk shard record and segment format this library reads and writes.
#[unsafe(no_mangle)]
pub extern "C" fn cairn_format_version() -> u32 {
    u32::from(cairn_shardlog::record::FORMAT_VERSION)
}

/// Version of the store directory layout (`storage-node.conf`, `core-N/`).
#[unsafe(no_mangle)]
pub extern "C" fn cairn_layout_version() -> u32 {
    store::LAYOUT_FORMAT_VERSION
}

/// Message of the last failed call on this thread ("" if none). Valid until the next libcairn call
/// on this thread; never null.
#[unsafe(no_mangle)]
pub extern "C" fn cairn_last_error() -> *const c_char {
    guard_value(c"".as_ptr(), last_error_ptr)
}

/// Short static description of a status value (an int, so any value is safe to pass).
#[unsafe(no_mangle)]
pub extern "C" fn cairn_status_name(status: i32) -> *const c_char {
    const ALL: [CairnStatus; 15] = [
        CairnStatus::Ok,
        CairnStatus::InvalidArgument,
        CairnStatus::NotFound,
        CairnStatus::ChecksumMismatch,
        CairnStatus::BufferTooSmall,
        CairnStatus::NoSpace,
        CairnStatus::TooLarge,
        CairnStatus::InvalidRange,
        CairnStatus::InvalidScheme,
        CairnStatus::TooManyErasures,
        CairnStatus::Io,
        CairnStatus::Corrupt,
        CairnStatus::Unavailable,
        CairnStatus::Locked,
        CairnStatus::Internal,
    ];
    ALL.iter()
        .find(|known| **known as i32 == status)
        .map_or(c"unknown status".as_ptr(), |known| {
            error::status_name(*known).as_ptr()
        })
}

/// Computes the CRC32C (Castagnoli) of `len_bytes` bytes at `data` into `*out_crc32c`.
///
/// # Safety
/// `data` is valid for `len_bytes` bytes (or null with length 0); `out_crc32c` is writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cairn_crc32c(
    data: *const u8,
    len_bytes: usize,
    out_crc32c: *mut u32,
) -> CairnStatus {
    guard(|| {
        // SAFETY: validity promised by the caller, checked for null.
        let data = unsafe { slice_arg(data, len_bytes, "data") }?;
        let out = unsafe { out_arg(out_crc32c, "out_crc32c") }?;
        *out = crc32c::crc32c(data);
        Ok(())
    })
}

/// Builds the id of shard `shard_index` of block `block_index` of part `part_number` of object
/// version `object_id_high << 64 | object_id_low`. Layout (big-endian): object id (16 bytes), part
/// (4), block (4), shard index (2), zero (6).
///
/// # Safety
/// `out_id` is writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cairn_shard_id_make(
    object_id_high: u64,
    object_id_low: u64,
    part_number: u32,
    block_index: u32,
    shard_index: u16,
    out_id: *mut CairnShardId,
) -> CairnStatus {
    guard(|| {
        // SAFETY: checked for null; validity promised by the caller.
        let out = unsafe { out_arg(out_id, "out_id") }?;
        let object_id = (u128::from(object_id_high) << 64) | u128::from(object_id_low);
        let id = ShardId::new(object_id, part_number, block_index, ShardIndex(shard_index));
        out.bytes = id.0;
        Ok(())
    })
}

/// Releases a buffer returned by libcairn and resets it to empty. Null or empty buffers are
/// accepted.
///
/// # Safety
/// `buffer` is null or points to a `cairn_buffer` filled by libcairn and not yet freed.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cairn_buffer_free(buffer: *mut CairnBuffer) {
    guard_value((), || {
        // SAFETY: null is allowed; otherwise validity is promised by the caller.
        let Some(buffer) = (unsafe { buffer.as_mut() }) else {
            return;
        };
        if !buffer.data.is_null() {
            let slice = std::ptr::slice_from_raw_parts_mut(buffer.data, buffer.len_bytes);
            // SAFETY: data and len came from Box::<[u8]>::into_raw in cairn_store_get_alloc.
            drop(unsafe { Box::from_raw(slice) });
        }
        buffer.data = std::ptr::null_mut();
        buffer.len_bytes = 0;
    })
}

// ---------------------------------------------------------------------------------------------
// Store.

/// Fills `*out_options` with the defaults: logs = 0 (one per CPU), create_if_missing = 1, 128 MiB
/// segments, 64 MiB cache per log, compaction every 10 s (the storage node's defaults).
///
/// # Safety
/// `out_options` is writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cairn_store_options_init(
    out_options: *mut CairnStoreOptions,
) -> CairnStatus {
    guard(|| {
        // SAFETY: checked for null; validity promised by the caller.
        let out = unsafe { out_arg(out_options, "out_options") }?;
        let defaults = StoreConfig::new("");
        *out = CairnStoreOptions {
            logs: 0,
            create_if_missing: 1,
            segment_size_bytes: defaults.segment_size_bytes,
            cache_capacity_bytes_per_log: defaults.cache_capacity_bytes_per_log,
            compaction_interval_ms: defaults
                .compaction_interval
                .map_or(0, |interval| interval.as_millis() as u64),
        };
        Ok(())
    })
}

/// Opens (recovering after a crash) or creates the store in directory `dir` and starts its
/// executor threads. `options` may be null for the defaults. On success `*out_store` holds a handle
/// to release with `cairn_store_close`. Fails with `CAIRN_STATUS_LOCKED` if another handle has the
/// directory open.
///
/// # Safety
/// `dir` is a NUL-terminated string; `options` is null or readable; `out_store` is writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cairn_store_open(
    dir: *const c_char,
    options: *const CairnStoreOptions,
    out_store: *mut *mut CairnStore,
) -> CairnStatus {
    guard(|| {
        // SAFETY: checked for null; validity promised by the caller.
        let dir = unsafe { c_str_arg(dir, "dir") }?;
        let out = unsafe { out_arg(out_store, "out_store") }?;
        if dir.is_empty() {
            return Err(FfiError::invalid("dir is empty"));
        }
        let mut config = StoreConfig::new(dir);
        // SAFETY: null is allowed; otherwise validity is promised by the caller.
        if let Some(options) = unsafe { options.as_ref() } {
            const MIN_SEGMENT_SIZE_BYTES: u64 = 1 << 20;
            const MAX_LOGS: u32 = 1024;
            if options.segment_size_bytes < MIN_SEGMENT_SIZE_BYTES {
                return Err(FfiError::invalid(format!(
                    "segment_size_bytes must be at least {MIN_SEGMENT_SIZE_BYTES}"
                )));
            }
            if options.logs > MAX_LOGS {
                return Err(FfiError::invalid(format!(
                    "logs must be at most {MAX_LOGS}"
                )));
            }
            config.logs = (options.logs > 0).then_some(options.logs as usize);
            config.create_if_missing = options.create_if_missing != 0;
            config.segment_size_bytes = options.segment_size_bytes;
            config.cache_capacity_bytes_per_log = options.cache_capacity_bytes_per_log;
            config.compaction_interval = (options.compaction_interval_ms > 0)
                .then(|| std::time::Duration::from_millis(options.compaction_interval_ms));
        }
        let store = Store::open(config)?;
        *out = Box::into_raw(Box::new(CairnStore { store }));
        Ok(())
    })
}

/// Commits everything queued, closes the logs, joins the executor threads and frees the handle.
/// Null is accepted. Must not run concurrently with any other call on the same handle.
///
/// # Safety
/// `store` is null or a handle from `cairn_store_open` that was not closed yet.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cairn_store_close(store: *mut CairnStore) -> CairnStatus {
    guard(|| {
        if !store.is_null() {
            // SAFETY: a live handle from Box::into_raw, closed once (caller's promise).
            let handle = unsafe { Box::from_raw(store) };
            handle.store.close();
        }
        Ok(())
    })
}

/// Writes the number of logs (executor threads) of the store into `*out_logs`.
///
/// # Safety
/// `store` is a live handle; `out_logs` is writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cairn_store_log_count(
    store: *const CairnStore,
    out_logs: *mut u32,
) -> CairnStatus {
    guard(|| {
        // SAFETY: checked for null; validity promised by the caller.
        let store = unsafe { in_arg(store, "store") }?;
        let out = unsafe { out_arg(out_logs, "out_logs") }?;
        *out = store.store.log_count() as u32;
        Ok(())
    })
}

/// Stores `len_bytes` bytes at `data` as shard `*id`, replacing any earlier version. Shards are at
/// most `CAIRN_MAX_SHARD_BYTES` long (`CAIRN_STATUS_TOO_LARGE` otherwise). `crc32c` is
/// the CRC32C of the data (see `cairn_crc32c`); a mismatch is refused with
/// `CAIRN_STATUS_CHECKSUM_MISMATCH` before anything is written. Returns after the shard is durable
/// (fdatasync). The library copies `data`; the caller keeps ownership.
///
/// # Safety
/// `store` is a live handle; `id` is readable; `data` is valid for `len_bytes` bytes (or null with
/// length 0).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cairn_store_put(
    store: *const CairnStore,
    id: *const CairnShardId,
    data: *const u8,
    len_bytes: usize,
    crc32c: u32,
) -> CairnStatus {
    guard(|| {
        // SAFETY: checked for null; validity promised by the caller.
        let store = unsafe { in_arg(store, "store") }?;
        let id = unsafe { in_arg(id, "id") }?;
        let data = unsafe { slice_arg(data, len_bytes, "data") }?;
        // Refused before the copy below, which would otherwise be the size of the refused shard.
        if data.len() > CAIRN_MAX_SHARD_BYTES {
            return Err(FfiError::new(
                CairnStatus::TooLarge,
                format!(
                    "shard of {} bytes exceeds the limit of {CAIRN_MAX_SHARD_BYTES} bytes",
                    data.len()
                ),
            ));
        }
        store
            .store
            .put(ShardId(id.bytes), Bytes::copy_from_slice(data), crc32c)
    })
}

/// The shard log's range argument: `None` for the whole shard.
fn range_arg(offset: u64, length: u64) -> Option<(u64, u64)> {
    (offset != 0 || length != CAIRN_LENGTH_TO_END).then_some((offset, length))
}

/// Reads `length` bytes from `offset` of shard `*id` (clipped to the shard's end; pass
/// `CAIRN_LENGTH_TO_END` for the rest of the shard) into the caller's buffer. The whole shard's
/// checksum is verified on every read (`CAIRN_STATUS_CHECKSUM_MISMATCH` if it fails; no bytes are
/// returned then). `*out_len_bytes` receives the number of bytes read; if `buffer_capacity_bytes`
/// is too small it receives the size needed and the call returns `CAIRN_STATUS_BUFFER_TOO_SMALL`
/// (a null buffer with capacity 0 is a size query). `out_stat` may be null; it receives the whole
/// shard's length and CRC32C (its `sequence` is 0 here: `cairn_store_stat` reports it).
///
/// # Safety
/// `store` is a live handle; `id` is readable; `buffer` is writable for `buffer_capacity_bytes`
/// bytes (or null with capacity 0); `out_len_bytes` is writable; `out_stat` is null or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cairn_store_get(
    store: *const CairnStore,
    id: *const CairnShardId,
    offset: u64,
    length: u64,
    buffer: *mut u8,
    buffer_capacity_bytes: usize,
    out_len_bytes: *mut usize,
    out_stat: *mut CairnShardStat,
) -> CairnStatus {
    guard(|| {
        // SAFETY: checked for null; validity promised by the caller.
        let store = unsafe { in_arg(store, "store") }?;
        let id = unsafe { in_arg(id, "id") }?;
        let buffer = unsafe { slice_arg_mut(buffer, buffer_capacity_bytes, "buffer") }?;
        let out_len = unsafe { out_arg(out_len_bytes, "out_len_bytes") }?;
        let shard_id = ShardId(id.bytes);
        let read = store.store.get(shard_id, range_arg(offset, length))?;
        // SAFETY: null is allowed; otherwise validity is promised by the caller.
        if let Some(stat) = unsafe { out_stat.as_mut() } {
            *stat = read_stat(shard_id, &read);
        }
        *out_len = read.data.len();
        if read.data.len() > buffer.len() {
            return Err(FfiError::new(
                CairnStatus::BufferTooSmall,
                format!(
                    "buffer of {} bytes is too small for {} bytes",
                    buffer.len(),
                    read.data.len()
                ),
            ));
        }
        buffer[..read.data.len()].copy_from_slice(&read.data);
        Ok(())
    })
}

/// Like `cairn_store_get`, but the library allocates the bytes: on success `*out_buffer` holds
/// them; release it with `cairn_buffer_free`.
///
/// # Safety
/// `store` is a live handle; `id` is readable; `out_buffer` is writable; `out_stat` is null or
/// writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cairn_store_get_alloc(
    store: *const CairnStore,
    id: *const CairnShardId,
    offset: u64,
    length: u64,
    out_buffer: *mut CairnBuffer,
    out_stat: *mut CairnShardStat,
) -> CairnStatus {
    guard(|| {
        // SAFETY: checked for null; validity promised by the caller.
        let store = unsafe { in_arg(store, "store") }?;
        let id = unsafe { in_arg(id, "id") }?;
        let out = unsafe { out_arg(out_buffer, "out_buffer") }?;
        let shard_id = ShardId(id.bytes);
        let read = store.store.get(shard_id, range_arg(offset, length))?;
        // SAFETY: null is allowed; otherwise validity is promised by the caller.
        if let Some(stat) = unsafe { out_stat.as_mut() } {
            *stat = read_stat(shard_id, &read);
        }
        let bytes: Box<[u8]> = read.data.to_vec().into_boxed_slice();
        let len_bytes = bytes.len();
        *out = CairnBuffer {
            data: Box::into_raw(bytes).cast::<u8>(),
            len_bytes,
        };
        Ok(())
    })
}

fn read_stat(shard_id: ShardId, read: &cairn_shardlog::ShardRead) -> CairnShardStat {
    CairnShardStat {
        id: CairnShardId { bytes: shard_id.0 },
        length_bytes: read.shard_length,
        // A read does not report the record's sequence; cairn_store_stat does.
        sequence: 0,
        crc32c: read.crc32c,
    }
}

/// Deletes shard `*id` durably. `*out_existed` (may be null) tells whether it existed; deleting a
/// missing shard is not an error.
///
/// # Safety
/// `store` is a live handle; `id` is readable; `out_existed` is null or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cairn_store_delete(
    store: *const CairnStore,
    id: *const CairnShardId,
    out_existed: *mut bool,
) -> CairnStatus {
    guard(|| {
        // SAFETY: checked for null; validity promised by the caller.
        let store = unsafe { in_arg(store, "store") }?;
        let id = unsafe { in_arg(id, "id") }?;
        let existed = store.store.delete(ShardId(id.bytes))?;
        // SAFETY: null is allowed; otherwise validity is promised by the caller.
        if let Some(out) = unsafe { out_existed.as_mut() } {
            *out = existed;
        }
        Ok(())
    })
}

/// Writes what the store knows about shard `*id` into `*out_stat`; `CAIRN_STATUS_NOT_FOUND` if it
/// does not exist. Reads nothing from disk.
///
/// # Safety
/// `store` is a live handle; `id` is readable; `out_stat` is writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cairn_store_stat(
    store: *const CairnStore,
    id: *const CairnShardId,
    out_stat: *mut CairnShardStat,
) -> CairnStatus {
    guard(|| {
        // SAFETY: checked for null; validity promised by the caller.
        let store = unsafe { in_arg(store, "store") }?;
        let id = unsafe { in_arg(id, "id") }?;
        let out = unsafe { out_arg(out_stat, "out_stat") }?;
        let stat = store
            .store
            .stat(ShardId(id.bytes))?
            .ok_or_else(|| FfiError::new(CairnStatus::NotFound, "shard not found"))?;
        *out = stat.into();
        Ok(())
    })
}

/// Iterates live shards in id order: writes up to `capacity` entries with ids strictly after
/// `*after` (null: from the first shard) into `out_stats` and their number into `*out_count`. Pass
/// the last id returned as `after` to get the next page (it may point into `out_stats`: it is read
/// before anything is written); a count below `capacity` means the end.
///
/// # Safety
/// `store` is a live handle; `after` is null or readable; `out_stats` is writable for `capacity`
/// entries; `out_count` is writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cairn_store_scan(
    store: *const CairnStore,
    after: *const CairnShardId,
    out_stats: *mut CairnShardStat,
    capacity: usize,
    out_count: *mut usize,
) -> CairnStatus {
    guard(|| {
        // SAFETY: checked for null; validity promised by the caller.
        let store = unsafe { in_arg(store, "store") }?;
        let out_count = unsafe { out_arg(out_count, "out_count") }?;
        if out_stats.is_null() || capacity == 0 {
            return Err(FfiError::invalid(
                "out_stats must be non-null with a capacity of at least 1",
            ));
        }
        if capacity > isize::MAX as usize / std::mem::size_of::<CairnShardStat>() {
            return Err(FfiError::invalid("capacity is too large"));
        }
        // SAFETY: null is allowed; otherwise validity is promised by the caller.
        let after = unsafe { after.as_ref() }.map(|id| ShardId(id.bytes));
        let page = store.store.scan(after, capacity)?;
        // SAFETY: non-null, writable for `capacity` entries (caller's promise), page ≤ capacity.
        let out = unsafe { std::slice::from_raw_parts_mut(out_stats, capacity) };
        for (slot, stat) in out.iter_mut().zip(&page) {
            *slot = (*stat).into();
        }
        *out_count = page.len();
        Ok(())
    })
}

/// Writes totals over all logs into `*out_stats`.
///
/// # Safety
/// `store` is a live handle; `out_stats` is writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cairn_store_stats(
    store: *const CairnStore,
    out_stats: *mut CairnStats,
) -> CairnStatus {
    guard(|| {
        // SAFETY: checked for null; validity promised by the caller.
        let store = unsafe { in_arg(store, "store") }?;
        let out = unsafe { out_arg(out_stats, "out_stats") }?;
        let stats = store.store.stats()?;
        *out = CairnStats {
            log_count: stats.log_count,
            shard_count: stats.shard_count,
            segment_count: stats.segment_count,
            used_bytes: stats.used_bytes,
            live_bytes: stats.live_bytes,
            io_errors: stats.io_errors,
            checksum_errors: stats.checksum_errors,
            torn_bytes_truncated: stats.torn_bytes_truncated,
            compactions: stats.compactions,
        };
        Ok(())
    })
}

/// Compacts sealed segments whose garbage share passed the threshold, in every log, while other
/// calls keep running. `*out_segments_removed` (may be null) receives the number removed.
///
/// # Safety
/// `store` is a live handle; `out_segments_removed` is null or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cairn_store_compact(
    store: *const CairnStore,
    out_segments_removed: *mut u64,
) -> CairnStatus {
    guard(|| {
        // SAFETY: checked for null; validity promised by the caller.
        let store = unsafe { in_arg(store, "store") }?;
        let removed = store.store.compact()?;
        // SAFETY: null is allowed; otherwise validity is promised by the caller.
        if let Some(out) = unsafe { out_segments_removed.as_mut() } {
            *out = removed;
        }
        Ok(())
    })
}

// ---------------------------------------------------------------------------------------------
// Erasure coding.

/// Builds a codec for `scheme` (`"<codec>:<k>+<m>"`, codec `isal-cauchy` or `rs-simd`, e.g.
/// `"isal-cauchy:4+2"`); `CAIRN_STATUS_INVALID_SCHEME` if it does not parse. Release with
/// `cairn_codec_free`.
///
/// # Safety
/// `scheme` is a NUL-terminated string; `out_codec` is writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cairn_codec_new(
    scheme: *const c_char,
    out_codec: *mut *mut CairnCodec,
) -> CairnStatus {
    guard(|| {
        // SAFETY: checked for null; validity promised by the caller.
        let text = unsafe { c_str_arg(scheme, "scheme") }?;
        let out = unsafe { out_arg(out_codec, "out_codec") }?;
        let scheme: Scheme = text.parse()?;
        let codec = CairnCodec {
            scheme,
            codec: Mutex::new(new_codec(scheme)),
        };
        *out = Box::into_raw(Box::new(codec));
        Ok(())
    })
}

/// Frees a codec. Null is accepted.
///
/// # Safety
/// `codec` is null or a live handle from `cairn_codec_new`, freed once, with no call running on it.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cairn_codec_free(codec: *mut CairnCodec) {
    guard_value((), || {
        if !codec.is_null() {
            // SAFETY: a live handle from Box::into_raw, freed once (caller's promise).
            drop(unsafe { Box::from_raw(codec) });
        }
    })
}

/// Writes k (data shards) and m (parity shards) of the codec's scheme; either pointer may be null.
///
/// # Safety
/// `codec` is a live handle; the out-pointers are null or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cairn_codec_shape(
    codec: *const CairnCodec,
    out_data_shards: *mut u32,
    out_parity_shards: *mut u32,
) -> CairnStatus {
    guard(|| {
        // SAFETY: checked for null; validity promised by the caller.
        let codec = unsafe { in_arg(codec, "codec") }?;
        // SAFETY: null is allowed; otherwise validity is promised by the caller.
        if let Some(out) = unsafe { out_data_shards.as_mut() } {
            *out = codec.scheme.data_shards() as u32;
        }
        if let Some(out) = unsafe { out_parity_shards.as_mut() } {
            *out = codec.scheme.parity_shards() as u32;
        }
        Ok(())
    })
}

/// Reads `count` shard pointers of `len_bytes` each, refusing nulls.
///
/// # Safety
/// `pointers` is null or readable for `count` pointers.
unsafe fn pointer_array<'a, T>(
    pointers: *const *mut T,
    count: usize,
    name: &str,
) -> Result<&'a [*mut T], FfiError> {
    if pointers.is_null() {
        return Err(FfiError::invalid(format!("{name} is null")));
    }
    // SAFETY: non-null and readable for `count` pointers (caller's promise).
    let array = unsafe { std::slice::from_raw_parts(pointers, count) };
    if let Some(index) = array.iter().position(|pointer| pointer.is_null()) {
        return Err(FfiError::invalid(format!("{name}[{index}] is null")));
    }
    Ok(array)
}

/// Refuses shard buffers that overlap: they would alias memory the codec writes.
fn check_disjoint(starts: &[usize], len_bytes: usize) -> Result<(), FfiError> {
    if len_bytes > isize::MAX as usize {
        return Err(FfiError::invalid("shard_len_bytes is too large"));
    }
    if len_bytes == 0 {
        return Ok(());
    }
    let mut sorted = starts.to_vec();
    sorted.sort_unstable();
    for pair in sorted.windows(2) {
        if pair[1] - pair[0] < len_bytes {
            return Err(FfiError::invalid("shard buffers overlap"));
        }
    }
    if sorted
        .last()
        .is_some_and(|last| last.checked_add(len_bytes).is_none())
    {
        return Err(FfiError::invalid("a shard buffer wraps the address space"));
    }
    Ok(())
}

fn check_counts(scheme: Scheme, name: &str, got: usize, expected: usize) -> Result<(), FfiError> {
    if got != expected {
        return Err(FfiError::new(
            CairnStatus::InvalidScheme,
            format!("scheme {scheme} needs {expected} {name} shards, got {got}"),
        ));
    }
    Ok(())
}

/// Computes the m parity shards from the k data shards, all `shard_len_bytes` long (an even number).
/// `data_count` must be k and `parity_count` m (`CAIRN_STATUS_INVALID_SCHEME` otherwise). If
/// `out_crc32c` is not null it receives k + m checksums, data shards first.
///
/// # Safety
/// `data` holds `data_count` pointers readable for `shard_len_bytes` bytes; `parity` holds
/// `parity_count` pointers writable for `shard_len_bytes` bytes; no two shards overlap;
/// `out_crc32c` is null or writable for `data_count + parity_count` values.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cairn_codec_encode(
    codec: *const CairnCodec,
    data: *const *const u8,
    data_count: usize,
    parity: *const *mut u8,
    parity_count: usize,
    shard_len_bytes: usize,
    out_crc32c: *mut u32,
) -> CairnStatus {
    guard(|| {
        // SAFETY: checked for null; validity promised by the caller.
        let codec = unsafe { in_arg(codec, "codec") }?;
        let scheme = codec.scheme;
        check_counts(scheme, "data", data_count, scheme.data_shards())?;
        check_counts(scheme, "parity", parity_count, scheme.parity_shards())?;
        // SAFETY: as above.
        let data_pointers = unsafe { pointer_array(data.cast::<*mut u8>(), data_count, "data") }?;
        let parity_pointers = unsafe { pointer_array(parity, parity_count, "parity") }?;
        let starts: Vec<usize> = data_pointers
            .iter()
            .chain(parity_pointers)
            .map(|pointer| *pointer as usize)
            .collect();
        check_disjoint(&starts, shard_len_bytes)?;
        // SAFETY: non-null, disjoint, sized as promised by the caller.
        let data_slices: Vec<&[u8]> = data_pointers
            .iter()
            .map(|pointer| unsafe {
                std::slice::from_raw_parts(*pointer as *const u8, shard_len_bytes)
            })
            .collect();
        let mut parity_slices: Vec<&mut [u8]> = parity_pointers
            .iter()
            .map(|pointer| unsafe { std::slice::from_raw_parts_mut(*pointer, shard_len_bytes) })
            .collect();
        let mut codec = codec
            .codec
            .lock()
            .map_err(|_| FfiError::new(CairnStatus::Internal, "codec lock poisoned"))?;
        if out_crc32c.is_null() {
            codec.encode(&data_slices, &mut parity_slices)?;
        } else {
            // SAFETY: non-null, writable for k + m values (caller's promise).
            let crcs = unsafe { std::slice::from_raw_parts_mut(out_crc32c, scheme.total_shards()) };
            codec.encode_with_crc32c(&data_slices, &mut parity_slices, crcs)?;
        }
        Ok(())
    })
}

/// Rebuilds every absent shard of a stripe in place. `shards` holds k + m pointers (data shards
/// first), each `shard_len_bytes` long; `present[i]` is non-zero when shard i holds valid bytes.
/// Absent shards are overwritten. Fewer than k present shards is
/// `CAIRN_STATUS_TOO_MANY_ERASURES` and nothing is written.
///
/// # Safety
/// `shards` holds `shard_count` pointers writable for `shard_len_bytes` bytes, not overlapping;
/// `present` is readable for `shard_count` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cairn_codec_reconstruct(
    codec: *const CairnCodec,
    shards: *const *mut u8,
    shard_count: usize,
    present: *const u8,
    shard_len_bytes: usize,
) -> CairnStatus {
    guard(|| {
        // SAFETY: checked for null; validity promised by the caller.
        let codec = unsafe { in_arg(codec, "codec") }?;
        let scheme = codec.scheme;
        check_counts(scheme, "total", shard_count, scheme.total_shards())?;
        // SAFETY: as above.
        let pointers = unsafe { pointer_array(shards, shard_count, "shards") }?;
        let flags = unsafe { slice_arg(present, shard_count, "present") }?;
        let starts: Vec<usize> = pointers.iter().map(|pointer| *pointer as usize).collect();
        check_disjoint(&starts, shard_len_bytes)?;
        let mut present_set = ShardSet::EMPTY;
        for (index, flag) in flags.iter().enumerate() {
            if *flag != 0 {
                present_set.insert(index);
            }
        }
        // SAFETY: non-null, disjoint, sized as promised by the caller.
        let mut slices: Vec<&mut [u8]> = pointers
            .iter()
            .map(|pointer| unsafe { std::slice::from_raw_parts_mut(*pointer, shard_len_bytes) })
            .collect();
        let mut codec = codec
            .codec
            .lock()
            .map_err(|_| FfiError::new(CairnStatus::Internal, "codec lock poisoned"))?;
        codec.reconstruct_all(&mut slices, present_set)?;
        Ok(())
    })
}

/// Checks that the m parity shards match the k data shards. `shards` holds k + m pointers of
/// `shard_len_bytes` each. `*out_matches` receives the answer; a mismatch is not an error.
///
/// # Safety
/// `shards` holds `shard_count` pointers readable for `shard_len_bytes` bytes; `out_matches` is
/// writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cairn_codec_verify(
    codec: *const CairnCodec,
    shards: *const *const u8,
    shard_count: usize,
    shard_len_bytes: usize,
    out_matches: *mut bool,
) -> CairnStatus {
    guard(|| {
        // SAFETY: checked for null; validity promised by the caller.
        let codec = unsafe { in_arg(codec, "codec") }?;
        let out = unsafe { out_arg(out_matches, "out_matches") }?;
        let scheme = codec.scheme;
        check_counts(scheme, "total", shard_count, scheme.total_shards())?;
        // SAFETY: as above.
        let pointers = unsafe { pointer_array(shards.cast::<*mut u8>(), shard_count, "shards") }?;
        if shard_len_bytes > isize::MAX as usize {
            return Err(FfiError::invalid("shard_len_bytes is too large"));
        }
        // SAFETY: non-null, sized as promised by the caller; only read, so overlap is harmless.
        let slices: Vec<&[u8]> = pointers
            .iter()
            .map(|pointer| unsafe {
                std::slice::from_raw_parts(*pointer as *const u8, shard_len_bytes)
            })
            .collect();
        let mut codec = codec
            .codec
            .lock()
            .map_err(|_| FfiError::new(CairnStatus::Internal, "codec lock poisoned"))?;
        *out = codec.verify(&slices)?;
        Ok(())
    })
}
