//! Every replica stops and starts again from its LMDB directory: votes, logs, snapshots and the
//! committed index come back, a leader is elected, and every acknowledged write is still there
//! (some of it only in snapshots, since the low threshold purged the log behind them).

mod common;

use std::time::Duration;

use cairn_raft::{GroupId, RaftTiming};
use common::{Cluster, fast_timing, get, metrics, put};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whole_cluster_restarts_from_disk() {
    common::init_tracing();
    let timing = RaftTiming {
        snapshot_after_log_entries: 15,
        log_entries_kept_after_snapshot: 2,
        ..fast_timing()
    };
    let mut cluster = Cluster::start(3, 2, timing).await;
    let client = cluster.client();
    let keys: Vec<String> = (0..40).map(|index| format!("key-{index:02}")).collect();
    for key in &keys {
        put(&client, key).await;
    }
    let snapshotted = cluster
        .nodes
        .values()
        .any(|node| metrics(node, GroupId::partition(0)).snapshot.is_some());
    assert!(snapshotted, "the threshold should have produced a snapshot");
    // A replica that checkpointed reports what the checkpoint wrote.
    let checkpointed = cluster.nodes.values().any(|node| {
        node.status().iter().any(|status| {
            status.group == GroupId::partition(0)
                && status.checkpoint_records_written > 0
                && status.checkpoint_micros >= status.checkpoint_locked_micros
        })
    });
    assert!(checkpointed, "no replica reports a checkpoint");

    let terms_before: Vec<u64> = cluster
        .nodes
        .values()
        .map(|node| metrics(node, GroupId::partition(0)).current_term)
        .collect();
    for node_id in [1, 2, 3] {
        cluster.stop(node_id).await;
    }
    for node_id in [1, 2, 3] {
        cluster.restart(node_id).await;
    }
    // Votes were persisted: no replica restarts in an older term than it had.
    for (node, term_before) in cluster.nodes.values().zip(terms_before) {
        assert!(metrics(node, GroupId::partition(0)).current_term >= term_before);
    }
    for group in GroupId::all(2) {
        cluster
            .wait_for_leader(group, Duration::from_secs(10))
            .await;
    }
    let client = cluster.client();
    for key in &keys {
        if get(&client, key).await.is_none() {
            let group = client.partition_of(common::BUCKET, key);
            for node in cluster.nodes.values() {
                eprintln!(
                    "node {} has {key}: {} status {:?}",
                    node.node_id(),
                    common::local_get(node, group, key).is_some(),
                    node.status()
                        .into_iter()
                        .find(|status| status.group == group)
                );
            }
            panic!("{key} lost across restart");
        }
    }
    put(&client, "after-restart").await;
    cluster.shutdown().await;
}
