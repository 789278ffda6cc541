//! Shard log behaviour on a real file system with O_DIRECT, each test on its own glommio executor.

use bytes::Bytes;
use cairn_common::{ShardId, ShardIndex};
use cairn_shardlog::record::{RECORD_HEADER_LEN, SEGMENT_HEADER_LEN};
use cairn_shardlog::{LogConfig, LogError, ShardLog};
use glommio::{LocalExecutorBuilder, Placement};
use std::future::Future;
use std::path::Path;
use std::sync::atomic::Ordering;

fn run<F, T>(make: impl FnOnce() -> F + Send + 'static) -> T
where
    F: Future<Output = T> + 'static,
    T: Send + 'static,
{
    LocalExecutorBuilder::new(Placement::Unbound)
        .spawn(make)
        .expect("executor starts")
        .join()
        .expect("executor thread")
}

fn id(n: u128) -> ShardId {
    ShardId::new(n, 1, 0, ShardIndex((n % 6) as u16))
}

/// Deterministic content for shard `n`, `len` bytes.
fn content(n: u128, len: usize) -> Bytes {
    let mut state = (n as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let mut bytes = Vec::with_capacity(len);
    while bytes.len() < len {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        bytes.extend_from_slice(&state.to_le_bytes());
    }
    bytes.truncate(len);
    Bytes::from(bytes)
}

async fn put(log: &ShardLog, n: u128, len: usize) -> Result<(), LogError> {
    let data = content(n, len);
    let crc = crc32c::crc32c(&data);
    log.put(id(n), data, crc).await
}

fn small_config(dir: &Path) -> LogConfig {
    let mut config = LogConfig::new(dir);
    config.segment_size_bytes = 1 << 20;
    config.cache_capacity_bytes = 0;
    config
}

fn segment_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "log"))
        .collect();
    files.sort();
    files
}

#[test]
fn put_get_range_stat_scan_delete_overwrite() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_owned();
    run(move || async move {
        let log = ShardLog::open(LogConfig::new(&path)).await.unwrap();
        for n in 0..10 {
            put(&log, n, 1000 + n as usize * 3000).await.unwrap();
        }
        let read = log.get(id(3), None).await.unwrap();
        assert_eq!(read.data, content(3, 10_000));
        assert_eq!(read.shard_length, 10_000);
        let range = log.get(id(3), Some((4095, 10))).await.unwrap();
        assert_eq!(range.data, content(3, 10_000).slice(4095..4105));
        let clipped = log.get(id(3), Some((9_995, 10))).await.unwrap();
        assert_eq!(clipped.data, content(3, 10_000).slice(9_995..));
        assert!(matches!(
            log.get(id(3), Some((10_001, 1))).await,
            Err(LogError::InvalidRange { .. })
        ));
        assert_eq!(log.stat(id(2)).unwrap().length, 7000);
        let scanned = log.scan(None, 4);
        assert_eq!(scanned.len(), 4);
        let rest = log.scan(Some(scanned[3].shard_id), 100);
        assert_eq!(rest.len(), 6);
        assert!(log.delete(id(5)).await.unwrap());
        assert!(
            !log.delete(id(5)).await.unwrap(),
            "second delete finds nothing"
        );
        assert!(matches!(
            log.get(id(5), None).await,
            Err(LogError::NotFound)
        ));
        put(&log, 100, 50).await.unwrap();
        let overwrite = content(7, 123);
        log.put(id(100), overwrite.clone(), crc32c::crc32c(&overwrite))
            .await
            .unwrap();
        assert_eq!(log.get(id(100), None).await.unwrap().data, overwrite);
        assert_eq!(log.stats().shard_count, 10);
        let bad = log.put(id(200), content(200, 10), 12345).await;
        assert!(
            matches!(bad, Err(LogError::ChecksumMismatch { .. })),
            "{bad:?}"
        );
        assert!(matches!(
            log.get(id(200), None).await,
            Err(LogError::NotFound)
        ));
        log.close().await;
    });
}

#[test]
fn reopen_rebuilds_the_index_including_tombstones_and_overwrites() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_owned();
    run(move || async move {
        let log = ShardLog::open(small_config(&path)).await.unwrap();
        for n in 0..200 {
            put(&log, n, 9000).await.unwrap();
        }
        for n in 0..50 {
            log.delete(id(n)).await.unwrap();
        }
        for n in 50..60 {
            put(&log, n + 1000, 100).await.unwrap();
            let data = content(n + 5000, 777);
            log.put(id(n), data.clone(), crc32c::crc32c(&data))
                .await
                .unwrap();
        }
        assert!(log.stats().segment_count > 1);
        // Sealed segments give back their unused preallocated tail; only the active one keeps it.
        let files = segment_files(&path);
        let (active, sealed) = files.split_last().unwrap();
        for file in sealed {
            let size = std::fs::metadata(file).unwrap().len();
            assert!(size < 1 << 20 && size % 4096 == 0, "{file:?}: {size} bytes");
        }
        assert_eq!(std::fs::metadata(active).unwrap().len(), 1 << 20);
        log.close().await;

        let log = ShardLog::open(small_config(&path)).await.unwrap();
        for n in 0..50 {
            assert!(
                matches!(log.get(id(n), None).await, Err(LogError::NotFound)),
                "{n} stays deleted"
            );
        }
        for n in 50..60 {
            assert_eq!(
                log.get(id(n), None).await.unwrap().data,
                content(n + 5000, 777)
            );
        }
        for n in 60..200 {
            assert_eq!(log.get(id(n), None).await.unwrap().data, content(n, 9000));
        }
        assert_eq!(log.stats().shard_count, 160);
        // Writing after a reopen continues with fresh sequence numbers.
        put(&log, 1, 10).await.unwrap();
        log.close().await;
        let log = ShardLog::open(small_config(&path)).await.unwrap();
        assert_eq!(log.get(id(1), None).await.unwrap().data, content(1, 10));
        log.close().await;
    });
}

#[test]
fn concurrent_puts_share_fdatasyncs() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_owned();
    run(move || async move {
        let log = ShardLog::open(LogConfig::new(&path)).await.unwrap();
        let tasks: Vec<_> = (0..256u128)
            .map(|n| {
                let log = log.clone();
                glommio::spawn_local(async move { put(&log, n, 4096).await })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
        let stats = log.stats();
        assert_eq!(stats.batched_records, 256);
        assert!(
            stats.batches < 64,
            "group commit: {} batches for 256 puts",
            stats.batches
        );
        log.close().await;
    });
}

/// Writes `count` records of `len` bytes, closes, and returns the log's segment files.
fn write_and_close(path: &Path, count: u128, len: usize) {
    let path = path.to_owned();
    run(move || async move {
        let log = ShardLog::open(LogConfig::new(&path)).await.unwrap();
        for n in 0..count {
            put(&log, n, len).await.unwrap();
        }
        log.close().await;
    });
}

fn record_offset(index: u64, len: usize) -> u64 {
    SEGMENT_HEADER_LEN as u64 + index * cairn_shardlog::record::record_len_bytes(len)
}

fn flip_byte(file: &Path, offset: u64) {
    use std::os::unix::fs::FileExt;
    let handle = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(file)
        .unwrap();
    let mut byte = [0u8];
    handle.read_exact_at(&mut byte, offset).unwrap();
    byte[0] ^= 0x5a;
    handle.write_all_at(&byte, offset).unwrap();
    handle.sync_all().unwrap();
}

#[test]
fn a_flipped_byte_is_a_checksum_error_never_wrong_bytes() {
    let dir = tempfile::tempdir().unwrap();
    write_and_close(dir.path(), 5, 20_000);
    let segment = segment_files(dir.path()).remove(0);
    flip_byte(
        &segment,
        record_offset(2, 20_000) + RECORD_HEADER_LEN as u64 + 777,
    );
    let path = dir.path().to_owned();
    run(move || async move {
        let log = ShardLog::open(LogConfig::new(&path)).await.unwrap();
        // Mid-log corruption is not a torn tail: the records after it survive the restart.
        for n in [0, 1, 3, 4] {
            assert_eq!(log.get(id(n), None).await.unwrap().data, content(n, 20_000));
        }
        assert!(matches!(
            log.get(id(2), None).await,
            Err(LogError::NotFound) | Err(LogError::ChecksumMismatch { .. })
        ));
        log.close().await;
    });
    // Corruption after start (found by a read, not by recovery) is reported as a checksum error.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_owned();
    run(move || async move {
        let log = ShardLog::open(LogConfig::new(&path)).await.unwrap();
        for n in 0..3 {
            put(&log, n, 20_000).await.unwrap();
        }
        let segment = segment_files(&path).remove(0);
        flip_byte(
            &segment,
            record_offset(1, 20_000) + RECORD_HEADER_LEN as u64 + 19_999,
        );
        let result = log.get(id(1), Some((0, 10))).await;
        assert!(
            matches!(result, Err(LogError::ChecksumMismatch { .. })),
            "{result:?}"
        );
        assert_eq!(log.stats().checksum_errors, 1);
        assert_eq!(log.get(id(2), None).await.unwrap().data, content(2, 20_000));
        log.close().await;
    });
}

#[test]
fn a_torn_tail_is_cut_and_earlier_records_survive() {
    let dir = tempfile::tempdir().unwrap();
    write_and_close(dir.path(), 6, 30_000);
    let segment = segment_files(dir.path()).remove(0);
    // Tear the last record: its payload is only partly on disk.
    flip_byte(&segment, record_offset(5, 30_000) + 9000);
    let path = dir.path().to_owned();
    run(move || async move {
        let log = ShardLog::open(LogConfig::new(&path)).await.unwrap();
        for n in 0..5 {
            assert_eq!(log.get(id(n), None).await.unwrap().data, content(n, 30_000));
        }
        assert!(matches!(
            log.get(id(5), None).await,
            Err(LogError::NotFound)
        ));
        assert!(log.stats().torn_bytes_truncated > 0);
        // New writes go where the torn record was, and survive another restart.
        put(&log, 50, 100).await.unwrap();
        log.close().await;
        let log = ShardLog::open(LogConfig::new(&path)).await.unwrap();
        assert_eq!(log.get(id(50), None).await.unwrap().data, content(50, 100));
        assert_eq!(log.stats().shard_count, 6);
        log.close().await;
    });
}

#[test]
fn compaction_under_load_keeps_live_shards_and_reclaims_space() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_owned();
    run(move || async move {
        let log = ShardLog::open(small_config(&path)).await.unwrap();
        for n in 0..400 {
            put(&log, n, 10_000).await.unwrap();
        }
        // Three quarters become garbage: deleted or overwritten.
        for n in 0..300 {
            if n % 2 == 0 {
                log.delete(id(n)).await.unwrap();
            } else {
                let data = content(n + 10_000, 3000);
                log.put(id(n), data.clone(), crc32c::crc32c(&data))
                    .await
                    .unwrap();
            }
        }
        let before = log.stats();
        // Compaction runs while a writer and a reader keep going.
        let writer = {
            let log = log.clone();
            glommio::spawn_local(async move {
                for n in 1000..1200 {
                    put(&log, n, 5000).await.unwrap();
                }
            })
        };
        let reader = {
            let log = log.clone();
            glommio::spawn_local(async move {
                for round in 0..3 {
                    for n in 300..400 {
                        let read = log
                            .get(id(n), None)
                            .await
                            .unwrap_or_else(|error| panic!("round {round} shard {n}: {error}"));
                        assert_eq!(read.data, content(n, 10_000));
                    }
                }
            })
        };
        let removed = log.compact().await.unwrap();
        writer.await;
        reader.await;
        let after = log.stats();
        assert!(removed > 0, "compaction removed no segment: {before:?}");
        assert!(after.compacted_bytes_reclaimed > 0);
        let check = |log: ShardLog| async move {
            for n in 0..300 {
                let result = log.get(id(n), None).await;
                if n % 2 == 0 {
                    assert!(matches!(result, Err(LogError::NotFound)), "{n} was deleted");
                } else {
                    assert_eq!(result.unwrap().data, content(n + 10_000, 3000));
                }
            }
            for n in (300..400).chain(1000..1200) {
                let len = if n < 1000 { 10_000 } else { 5000 };
                assert_eq!(log.get(id(n), None).await.unwrap().data, content(n, len));
            }
        };
        check(log.clone()).await;
        let files_after = segment_files(&path).len() as u64;
        assert_eq!(files_after, after.segment_count);
        assert!(after.segment_count < before.segment_count + 2);
        log.close().await;
        // Deletes stay deleted and moved shards stay readable after a restart.
        let log = ShardLog::open(small_config(&path)).await.unwrap();
        check(log.clone()).await;
        log.close().await;
    });
}

#[test]
fn injected_enospc_is_typed_and_eio_stops_writes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_owned();
    run(move || async move {
        let config = LogConfig::new(&path);
        let fault = config.inject_write_errno.clone();
        let log = ShardLog::open(config).await.unwrap();
        put(&log, 1, 100).await.unwrap();
        fault.store(libc::ENOSPC, Ordering::SeqCst);
        assert!(matches!(put(&log, 2, 100).await, Err(LogError::NoSpace)));
        assert_eq!(log.get(id(1), None).await.unwrap().data, content(1, 100));
        put(&log, 3, 100).await.unwrap();
        fault.store(libc::EIO, Ordering::SeqCst);
        assert!(matches!(put(&log, 4, 100).await, Err(LogError::Failed(_))));
        assert!(log.failure().is_some());
        assert!(
            matches!(put(&log, 5, 100).await, Err(LogError::Failed(_))),
            "no write after EIO"
        );
        assert_eq!(log.get(id(3), None).await.unwrap().data, content(3, 100));
        log.close().await;
    });
}

/// A real full file system: a 24 MiB tmpfs (tmpfs supports O_DIRECT on this kernel). Needs root,
/// which CI has; elsewhere the test says why it cannot run and fails.
#[test]
fn a_full_disk_is_a_clear_error_and_reads_go_on() {
    let mount_point = tempfile::tempdir().unwrap();
    let status = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=24m", "tmpfs"])
        .arg(mount_point.path())
        .status()
        .expect("run mount");
    assert!(
        status.success(),
        "mounting a tmpfs needs root (CI runs as root)"
    );
    struct Unmount(std::path::PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = std::process::Command::new("umount")
                .arg("-l")
                .arg(&self.0)
                .status();
        }
    }
    let _unmount = Unmount(mount_point.path().to_owned());
    let path = mount_point.path().join("log");
    let outcome = run(move || async move {
        let mut config = LogConfig::new(&path);
        config.segment_size_bytes = 4 << 20;
        let log = ShardLog::open(config).await.unwrap();
        let mut stored = 0u128;
        let error = loop {
            match put(&log, stored, 256 << 10).await {
                Ok(()) => stored += 1,
                Err(error) => break error,
            }
            assert!(stored < 200, "a 24 MiB file system cannot hold 50 MiB");
        };
        assert!(matches!(error, LogError::NoSpace), "{error:?}");
        assert!(log.failure().is_none(), "a full disk does not stop the log");
        for n in 0..stored {
            assert_eq!(
                log.get(id(n), None).await.unwrap().data,
                content(n, 256 << 10)
            );
        }
        // Deleting and compacting frees whole segments; then writes succeed again.
        for n in 0..stored {
            log.delete(id(n)).await.unwrap();
        }
        log.compact().await.unwrap();
        put(&log, 9999, 256 << 10).await.unwrap();
        log.close().await;
        stored
    });
    assert!(outcome > 10);
}

#[test]
fn record_buffers_mix_with_copied_puts_in_one_batch_and_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_owned();
    run(move || async move {
        let log = ShardLog::open(LogConfig::new(&path)).await.unwrap();
        let tasks: Vec<_> = (0..40u128)
            .map(|n| {
                let log = log.clone();
                glommio::spawn_local(async move {
                    let data = content(n, 5000 + n as usize * 100);
                    let crc = crc32c::crc32c(&data);
                    if n % 2 == 0 {
                        let mut record = log.alloc_record_buffer(data.len()).unwrap();
                        record.payload_mut().copy_from_slice(&data);
                        log.put_record(id(n), record, crc).await
                    } else {
                        log.put(id(n), data, crc).await
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
        // A record buffer with a wrong checksum is refused like any put.
        let mut record = log.alloc_record_buffer(10).unwrap();
        record.payload_mut().fill(7);
        assert!(matches!(
            log.put_record(id(99), record, 1).await,
            Err(LogError::ChecksumMismatch { .. })
        ));
        assert!(
            log.stats().batches < 40,
            "prepared and copied puts share batches"
        );
        log.close().await;
        let log = ShardLog::open(LogConfig::new(&path)).await.unwrap();
        for n in 0..40u128 {
            let expected = content(n, 5000 + n as usize * 100);
            assert_eq!(
                log.get(id(n), None).await.unwrap().data,
                expected,
                "shard {n}"
            );
        }
        assert!(matches!(
            log.get(id(99), None).await,
            Err(LogError::NotFound)
        ));
        log.close().await;
    });
}

/// A cached shard answers `get` from memory even after its bytes on disk were damaged;
/// `get_from_disk` (the scrubber's read) goes to the disk, reports the damage, and does not
/// cache what it read.
#[test]
fn reads_from_disk_see_damage_that_the_cache_hides() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_owned();
    run(move || async move {
        let mut config = LogConfig::new(&path);
        config.segment_size_bytes = 1 << 20;
        config.cache_capacity_bytes = 1 << 20;
        let log = ShardLog::open(config).await.unwrap();
        put(&log, 1, 20_000).await.unwrap();
        put(&log, 2, 20_000).await.unwrap();
        // Reading shard 1 caches it.
        assert_eq!(log.get(id(1), None).await.unwrap().data, content(1, 20_000));
        let segment = segment_files(&path).remove(0);
        flip_byte(
            &segment,
            record_offset(0, 20_000) + RECORD_HEADER_LEN as u64 + 999,
        );
        flip_byte(
            &segment,
            record_offset(1, 20_000) + RECORD_HEADER_LEN as u64 + 999,
        );
        assert_eq!(log.get(id(1), None).await.unwrap().data, content(1, 20_000));
        assert!(matches!(
            log.get_from_disk(id(1), None).await,
            Err(LogError::ChecksumMismatch { .. })
        ));
        // Shard 2 was never cached: a from-disk read that fails leaves nothing in the cache,
        // and a good one neither (the ordinary read still goes to the disk and finds the damage).
        assert!(matches!(
            log.get_from_disk(id(2), None).await,
            Err(LogError::ChecksumMismatch { .. })
        ));
        assert!(matches!(
            log.get(id(2), None).await,
            Err(LogError::ChecksumMismatch { .. })
        ));
        log.close().await;
    });
}
