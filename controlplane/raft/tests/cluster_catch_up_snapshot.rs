//! A follower that was down while the leader snapshotted and purged the entries it missed can
//! only catch up by InstallSnapshot (chunked: the chunk size is far below the snapshot size);
//! afterwards it holds every write and serves as a replica again.

mod common;

use std::time::{Duration, Instant};

use cairn_raft::{GroupId, RaftTiming};
use common::{
    Cluster, applied_index, fast_timing, follower_of, local_get, metrics, put, wait_applied,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarted_follower_catches_up_by_snapshot_after_purge() {
    common::init_tracing();
    let timing = RaftTiming {
        snapshot_after_log_entries: 20,
        log_entries_kept_after_snapshot: 0,
        snapshot_chunk_size_bytes: 512,
        ..fast_timing()
    };
    let mut cluster = Cluster::start(3, 1, timing).await;
    let client = cluster.client();
    let group = GroupId::partition(0);

    for index in 0..5 {
        put(&client, &format!("early/{index:02}")).await;
    }
    let leader = cluster.wait_for_leader(group, Duration::from_secs(5)).await;
    let follower = follower_of(&cluster, leader);
    let leader_applied = applied_index(&cluster.nodes[&leader], group);
    wait_applied(
        &cluster.nodes[&follower],
        group,
        leader_applied,
        Duration::from_secs(5),
    )
    .await;
    let follower_last_log = metrics(&cluster.nodes[&follower], group)
        .last_log_index
        .unwrap_or(0);
    cluster.stop(follower).await;

    for index in 0..40 {
        put(&client, &format!("late/{index:02}")).await;
    }
    // Wait until the leader has purged past what the follower holds: the log cannot serve it.
    let started = Instant::now();
    let leader = loop {
        let leader = cluster.wait_for_leader(group, Duration::from_secs(5)).await;
        let purged = metrics(&cluster.nodes[&leader], group)
            .purged
            .map_or(0, |log_id| log_id.index);
        if purged > follower_last_log {
            break leader;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "leader purged only up to {purged}, follower holds {follower_last_log}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let target = applied_index(&cluster.nodes[&leader], group);

    cluster.restart(follower).await;
    let node = &cluster.nodes[&follower];
    wait_applied(node, group, target, Duration::from_secs(15)).await;
    let snapshot_index = metrics(node, group)
        .snapshot
        .map_or(0, |log_id| log_id.index);
    assert!(
        snapshot_index > follower_last_log,
        "follower's snapshot {snapshot_index} does not cover the purged entries after {follower_last_log}"
    );
    for index in 0..5 {
        assert!(local_get(node, group, &format!("early/{index:02}")).is_some());
    }
    for index in 0..40 {
        assert!(local_get(node, group, &format!("late/{index:02}")).is_some());
    }

    // The installed snapshot is durable: a second restart reloads it from LMDB at once, before
    // any message from the leader could have arrived.
    cluster.stop(follower).await;
    cluster.restart(follower).await;
    let handle = cluster.nodes[&follower].group(group).expect("group");
    assert!(handle.reader.last_applied_index() >= snapshot_index);
    assert!(local_get(&cluster.nodes[&follower], group, "early/00").is_some());
    cluster.shutdown().await;
}
