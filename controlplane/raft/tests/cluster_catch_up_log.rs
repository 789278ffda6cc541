//! A follower that was down while writes went on catches up from the leader's log when it comes
//! back (no snapshot is involved: the snapshot threshold is far away), and its restart reopens
//! the LMDB log and state it had.

mod common;

use std::time::Duration;

use cairn_raft::GroupId;
use common::{
    Cluster, applied_index, fast_timing, follower_of, local_get, metrics, put, wait_applied,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarted_follower_catches_up_from_the_log() {
    common::init_tracing();
    let mut cluster = Cluster::start(3, 1, fast_timing()).await;
    let client = cluster.client();
    let group = GroupId::partition(0);

    for index in 0..10 {
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
    cluster.stop(follower).await;

    for index in 0..20 {
        put(&client, &format!("late/{index:02}")).await;
    }
    let leader = cluster.wait_for_leader(group, Duration::from_secs(5)).await;
    let target = applied_index(&cluster.nodes[&leader], group);

    cluster.restart(follower).await;
    let node = &cluster.nodes[&follower];
    wait_applied(node, group, target, Duration::from_secs(10)).await;
    for index in 0..10 {
        assert!(local_get(node, group, &format!("early/{index:02}")).is_some());
    }
    for index in 0..20 {
        assert!(local_get(node, group, &format!("late/{index:02}")).is_some());
    }
    let follower_metrics = metrics(node, group);
    assert_eq!(
        follower_metrics.snapshot, None,
        "the log path must not need a snapshot"
    );
    cluster.shutdown().await;
}
