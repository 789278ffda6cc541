//! The metadata disk's reserve: client writes are refused while the file system that holds a
//! node's LMDB files has less free space than the reserve.
//!
//! # Model
//!
//! A replica whose disk fills up cannot append, and openraft stops a group for good on a storage
//! error; the store therefore waits for space rather than fail (`store::write_until_space`), but
//! a waiting group serves nothing, reads included. The reserve keeps it from getting there: below
//! it, the node's proposers answer new client writes at once with
//! [`MetaError::MetadataDiskFull`] (S3's 503 ServiceUnavailable at the gateway) instead of
//! proposing them, so the log stops growing while there is still room for what keeps the cluster
//! alive: heartbeats, registrations, reads, and the writes that shrink state (aborts, purges,
//! suspects resolved, replication entries resolved). Entries replicated from a leader are never
//! refused: a follower's log must follow its leader's. This mirrors the storage nodes, which
//! keep headroom under their shard logs.
//!
//! The free space is read with statvfs at most once per [`CHECK_INTERVAL`], because the check
//! sits on the write path. Writes admitted within that second still fit in the reserve unless
//! something writes 64 MiB in a second; if it does, the store waits for space instead of
//! failing (see above).

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use cairn_meta_state::{Command, MetaError};

/// Free bytes below which client writes are refused, by default.
pub const DEFAULT_RESERVE_BYTES: u64 = 64 << 20;

/// How often the free space is read again.
pub const CHECK_INTERVAL: Duration = Duration::from_secs(1);

pub struct DiskReserve {
    path: PathBuf,
    reserve_bytes: u64,
    /// When the free space was last read, and what it was (`None`: unreadable).
    last_check: Mutex<Option<(Instant, Option<u64>)>>,
}

impl DiskReserve {
    pub fn new(path: PathBuf, reserve_bytes: u64) -> DiskReserve {
        DiskReserve {
            path,
            reserve_bytes,
            last_check: Mutex::new(None),
        }
    }

    /// The free bytes when they are below the reserve; `None` when there is room (or the file
    /// system cannot be read, which must not stop writes by itself).
    pub fn shortfall(&self) -> Option<u64> {
        let mut last_check = self
            .last_check
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        let free_bytes = match *last_check {
            Some((checked_at, free_bytes)) if checked_at.elapsed() < CHECK_INTERVAL => free_bytes,
            previous => {
                let was_short = previous
                    .and_then(|(_, free_bytes)| free_bytes)
                    .is_some_and(|free| free < self.reserve_bytes);
                let free_bytes = available_bytes(&self.path);
                *last_check = Some((Instant::now(), free_bytes));
                let is_short = free_bytes.is_some_and(|free| free < self.reserve_bytes);
                if is_short && !was_short {
                    tracing::warn!(
                        path = %self.path.display(),
                        free_bytes = free_bytes.unwrap_or(0),
                        reserve_bytes = self.reserve_bytes,
                        "metadata disk below its reserve: client writes are refused"
                    );
                } else if was_short && !is_short {
                    tracing::info!(
                        path = %self.path.display(),
                        "metadata disk above its reserve again: client writes are accepted"
                    );
                }
                free_bytes
            }
        };
        free_bytes.filter(|free| *free < self.reserve_bytes)
    }

    /// The refusal of `command` while `free_bytes` are left, or `None` when it is admitted.
    pub fn refusal(command: &Command, free_bytes: u64) -> Option<MetaError> {
        (!admitted_when_short(command)).then_some(MetaError::MetadataDiskFull { free_bytes })
    }
}

/// Bytes an unprivileged writer can still allocate on the file system holding `path` (statvfs);
/// `None` when it cannot be read. The storage-node heartbeat reports the same figure.
pub fn available_bytes(path: &std::path::Path) -> Option<u64> {
    let stat = nix::sys::statvfs::statvfs(path).ok()?;
    Some(stat.blocks_available() * stat.fragment_size())
}

/// Whether a command goes through while the disk is below its reserve: what keeps the cluster
/// running, reads, and what only removes state.
fn admitted_when_short(command: &Command) -> bool {
    match command {
        Command::Heartbeat { .. }
        | Command::RegisterNode(_)
        | Command::ExpireNodes { .. }
        | Command::Read(_)
        | Command::AbortWrite(_)
        | Command::AbortMultipartUpload(_)
        | Command::PurgeGarbage { .. }
        | Command::ReportSuspect { .. }
        | Command::ResolveSuspects { .. }
        | Command::ResolveReplication { .. } => true,
        Command::Batch(commands) => commands.iter().all(admitted_when_short),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn below_the_reserve_only_upkeep_reads_and_removals_are_admitted() {
        let refused = Command::DeleteBucket {
            bucket: "b".to_owned(),
        };
        assert_eq!(
            DiskReserve::refusal(&refused, 7),
            Some(MetaError::MetadataDiskFull { free_bytes: 7 })
        );
        let purge = Command::PurgeGarbage {
            garbage_ids: Vec::new(),
        };
        assert_eq!(DiskReserve::refusal(&purge, 7), None);
        assert_eq!(
            DiskReserve::refusal(&Command::Batch(vec![purge.clone(), purge.clone()]), 7),
            None
        );
        assert!(DiskReserve::refusal(&Command::Batch(vec![purge, refused]), 7).is_some());
    }

    #[test]
    fn the_data_directory_file_system_reports_available_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let available = available_bytes(dir.path()).unwrap();
        assert!(available > 0);
        assert_eq!(available_bytes(&dir.path().join("absent")), None);
    }

    #[test]
    fn the_reserve_compares_with_the_file_system_free_space() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(DiskReserve::new(dir.path().to_owned(), 0).shortfall(), None);
        let free = DiskReserve::new(dir.path().to_owned(), u64::MAX)
            .shortfall()
            .expect("every file system has less than u64::MAX bytes free");
        assert!(free > 0);
        // Unreadable (no such path): writes are not stopped by that alone.
        assert_eq!(
            DiskReserve::new(dir.path().join("missing"), u64::MAX).shortfall(),
            None
        );
    }
}
