//! The data-directory layout shared by everything that opens a set of shard logs (the storage
//! node and the in-process C library): `storage-node.conf` fixes the number of logs when the
//! directory is first initialised, log `N` lives in `core-N/`, and a shard belongs to log
//! `ShardId::stable_hash() % logs`. The count never changes afterwards, because changing it would
//! move shards to other logs.

use cairn_common::ShardId;
use std::io;
use std::path::{Path, PathBuf};

pub const LAYOUT_FILE: &str = "storage-node.conf";
pub const LAYOUT_FORMAT_VERSION: u32 = 1;

#[derive(Debug, thiserror::Error)]
pub enum LayoutError {
    #[error("{path}: {source}")]
    Io { path: String, source: io::Error },
    #[error("{path}: no valid `logs = N` line")]
    Malformed { path: String },
    #[error("{path} is in use by another process or handle")]
    Locked { path: String },
}

/// Takes an exclusive lock on the data directory for as long as the returned file lives, so that a
/// storage node and the in-process library (or two of either) never open the same logs at once.
pub fn lock_data_dir(data_dir: &Path) -> Result<std::fs::File, LayoutError> {
    let path = data_dir.display().to_string();
    std::fs::create_dir_all(data_dir).map_err(|source| LayoutError::Io {
        path: path.clone(),
        source,
    })?;
    let handle = std::fs::File::open(data_dir).map_err(|source| LayoutError::Io {
        path: path.clone(),
        source,
    })?;
    match handle.try_lock() {
        Ok(()) => Ok(handle),
        Err(std::fs::TryLockError::WouldBlock) => Err(LayoutError::Locked { path }),
        Err(std::fs::TryLockError::Error(source)) => Err(LayoutError::Io { path, source }),
    }
}

/// The number of logs in `data_dir`, initialising the directory with `requested` (default: one
/// per available core) when it is new. The layout file is written atomically (temporary file,
/// fsync, rename, fsync of the directory). A `requested` count that differs from an existing
/// directory's is ignored with a warning.
pub fn log_count(data_dir: &Path, requested: Option<usize>) -> Result<usize, LayoutError> {
    let layout_path = data_dir.join(LAYOUT_FILE);
    let io_error = |source| LayoutError::Io {
        path: layout_path.display().to_string(),
        source,
    };
    std::fs::create_dir_all(data_dir).map_err(io_error)?;
    match std::fs::read_to_string(&layout_path) {
        Ok(text) => {
            let count = parse_log_count(&text).ok_or_else(|| LayoutError::Malformed {
                path: layout_path.display().to_string(),
            })?;
            if let Some(requested) = requested
                && requested != count
            {
                tracing::warn!(
                    requested,
                    count,
                    "the data directory was initialised with another log count; keeping it"
                );
            }
            Ok(count)
        }
        Err(error) if error.kind() == io::ErrorKind::NotFound => {
            let count = requested
                .unwrap_or_else(|| {
                    std::thread::available_parallelism()
                        .map(|n| n.get())
                        .unwrap_or(1)
                })
                .max(1);
            let text = format!(
                "# Cairn storage node data directory. Do not edit.\nformat = {LAYOUT_FORMAT_VERSION}\nlogs = {count}\n"
            );
            let temporary = data_dir.join(format!("{LAYOUT_FILE}.tmp"));
            let write = || -> io::Result<()> {
                std::fs::write(&temporary, text)?;
                std::fs::File::open(&temporary)?.sync_all()?;
                std::fs::rename(&temporary, &layout_path)?;
                std::fs::File::open(data_dir)?.sync_all()
            };
            write().map_err(io_error)?;
            Ok(count)
        }
        Err(error) => Err(io_error(error)),
    }
}

/// The `logs = N` value of a layout file, if it has a valid one.
pub fn parse_log_count(text: &str) -> Option<usize> {
    text.lines()
        .find_map(|line| line.strip_prefix("logs = "))
        .and_then(|value| value.trim().parse::<usize>().ok())
        .filter(|count| *count > 0)
}

/// Directory of log `index`.
pub fn log_dir(data_dir: &Path, index: usize) -> PathBuf {
    data_dir.join(format!("core-{index}"))
}

/// The log that holds `shard_id` in a directory of `logs` logs.
pub fn owning_log(shard_id: &ShardId, logs: usize) -> usize {
    (shard_id.stable_hash() % logs as u64) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn initialises_once_and_keeps_the_count() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(log_count(dir.path(), Some(3)).unwrap(), 3);
        assert_eq!(
            log_count(dir.path(), Some(5)).unwrap(),
            3,
            "the first count stays"
        );
        assert_eq!(log_count(dir.path(), None).unwrap(), 3);
        let text = std::fs::read_to_string(dir.path().join(LAYOUT_FILE)).unwrap();
        assert_eq!(
            text,
            "# Cairn storage node data directory. Do not edit.\nformat = 1\nlogs = 3\n"
        );
        std::fs::write(dir.path().join(LAYOUT_FILE), "logs = zero\n").unwrap();
        assert!(matches!(
            log_count(dir.path(), None),
            Err(LayoutError::Malformed { .. })
        ));
        assert_eq!(log_dir(dir.path(), 2), dir.path().join("core-2"));
        assert_eq!(
            owning_log(&ShardId([0; 32]), 3),
            (0x0c82_1078_4d8a_f5a5u64 % 3) as usize
        );
    }
}
