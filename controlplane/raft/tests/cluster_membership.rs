//! Membership changes of one group: a fresh node joins as a learner and catches up, is promoted
//! to voter while an old voter is removed, and the group keeps serving with the old voter gone.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use cairn_raft::GroupId;
use common::{Cluster, applied_index, fast_timing, local_get, metrics, put, wait_applied};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn learner_joins_is_promoted_and_an_old_voter_leaves() {
    common::init_tracing();
    let mut cluster = Cluster::start(3, 1, fast_timing()).await;
    let client = cluster.client();
    let group = GroupId::partition(0);
    for index in 0..10 {
        put(&client, &format!("before/{index:02}")).await;
    }

    let new_node = 4;
    let new_address = cluster.start_joining(new_node).await;
    let leader = cluster.wait_for_leader(group, Duration::from_secs(5)).await;
    cluster.nodes[&leader]
        .add_learner(group, new_node, &new_address.to_string())
        .await
        .expect("add learner");
    let target = applied_index(&cluster.nodes[&leader], group);
    wait_applied(
        &cluster.nodes[&new_node],
        group,
        target,
        Duration::from_secs(10),
    )
    .await;
    assert!(local_get(&cluster.nodes[&new_node], group, "before/00").is_some());

    // Replace a follower by the learner.
    let leaving = *cluster
        .nodes
        .keys()
        .find(|&&node_id| node_id != leader && node_id != new_node)
        .expect("a follower");
    let voters: BTreeSet<u64> = [1, 2, 3, new_node]
        .into_iter()
        .filter(|&node_id| node_id != leaving)
        .collect();
    cluster.nodes[&leader]
        .change_membership(group, voters.clone())
        .await
        .expect("change membership");
    let membership = metrics(&cluster.nodes[&leader], group).membership_config;
    let current_voters: BTreeSet<u64> = membership.membership().voter_ids().collect();
    assert_eq!(current_voters, voters);
    assert!(
        !membership
            .membership()
            .nodes()
            .any(|(&node_id, _)| node_id == leaving),
        "removed voter still a member"
    );

    let status = cluster.nodes[&leader]
        .status()
        .into_iter()
        .find(|status| status.group == group)
        .expect("status of the group");
    assert!(status.is_leader);
    assert_eq!(status.voters, voters);
    assert!(status.learners.is_empty());

    // The group commits without the removed node.
    cluster.stop(leaving).await;
    for index in 0..10 {
        put(&client, &format!("after/{index:02}")).await;
    }
    let leader = cluster.wait_for_leader(group, Duration::from_secs(5)).await;
    let target = applied_index(&cluster.nodes[&leader], group);
    wait_applied(
        &cluster.nodes[&new_node],
        group,
        target,
        Duration::from_secs(5),
    )
    .await;
    assert!(local_get(&cluster.nodes[&new_node], group, "after/09").is_some());
    cluster.shutdown().await;
}
