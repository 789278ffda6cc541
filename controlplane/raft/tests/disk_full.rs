//! A group's storage on a full file system: an LMDB write refused with ENOSPC waits for space
//! and then completes, instead of failing (which would stop the openraft group for good).
//! Mounts a tmpfs, so it needs root, like the black-box disk-full tests (CI runs as root).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use cairn_meta_state::Role;
use cairn_raft::store::{DEFAULT_MAP_SIZE_BYTES, open_group_storage};
use cairn_raft::types::Vote;
use openraft::storage::RaftLogStorage;

/// Writes a file until the file system refuses a byte more.
fn fill(path: &Path) -> PathBuf {
    let filler_path = path.join("filler");
    let mut filler = std::fs::File::create(&filler_path).unwrap();
    let mut chunk = vec![0x5au8; 1 << 20];
    while !chunk.is_empty() {
        if filler.write_all(&chunk).is_err() {
            let half = chunk.len() / 2;
            chunk.truncate(half);
        }
    }
    filler_path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_on_a_full_disk_waits_for_space_and_then_completes() {
    let disk = cairn_tests::SmallFileSystem::mount(16);
    let group = disk.path().join("group-0");
    let (mut log_store, _state_machine) =
        open_group_storage(&group, Role::Combined, DEFAULT_MAP_SIZE_BYTES).unwrap();
    log_store.save_vote(&Vote::new(1, 1)).await.unwrap();

    let filler = fill(disk.path());
    // Every vote is a transaction, and LMDB writes copies of the pages it changes: some write
    // soon needs a page the full file system cannot give. It must wait, not fail.
    let mut writer = log_store.clone();
    let writes = tokio::spawn(async move {
        for term in 2..200u64 {
            writer.save_vote(&Vote::new(term, 1)).await?;
        }
        Ok::<(), cairn_raft::types::StorageError>(())
    });
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        !writes.is_finished(),
        "199 LMDB transactions on a full file system all found room, or one failed: {:?}",
        if writes.is_finished() {
            Some(writes.await)
        } else {
            None
        }
    );

    std::fs::remove_file(&filler).unwrap();
    let started = Instant::now();
    tokio::time::timeout(Duration::from_secs(20), writes)
        .await
        .expect("the writes did not resume once space returned")
        .unwrap()
        .expect("a write failed instead of waiting for space");
    assert!(started.elapsed() < Duration::from_secs(20));
    assert_eq!(
        log_store.read_vote().await.unwrap(),
        Some(Vote::new(199, 1))
    );
}
