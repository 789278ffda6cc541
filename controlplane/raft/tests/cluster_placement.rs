//! Six meta nodes in three availability zones: every group (bucket service, node registry, each
//! partition) lives on exactly three nodes in three distinct zones, bootstrapped with exactly
//! those three voters; nodes host nothing else; the client reaches every group and reads back what
//! it wrote.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use cairn_meta_state::Response;
use cairn_meta_state::{Acl, Command, CreateBucket, NodeId as StorageNodeId, Query, RegisterNode};
use cairn_raft::{GroupId, REPLICAS_PER_GROUP};
use common::{BUCKET, Cluster, fast_timing, get, put};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_group_lives_on_three_nodes_in_three_zones() {
    common::init_tracing();
    let partition_count = 6;
    let cluster = Cluster::start_in_zones(
        &["az1", "az2", "az3", "az1", "az2", "az3"],
        partition_count,
        fast_timing(),
    )
    .await;
    let client = cluster.client();
    let placement = client.placement().clone();

    let mut groups_per_node: BTreeMap<u64, usize> = BTreeMap::new();
    for group in GroupId::all(partition_count) {
        let hosting: BTreeSet<u64> = cluster
            .nodes
            .iter()
            .filter(|(_, node)| node.group(group).is_some())
            .map(|(&node_id, _)| node_id)
            .collect();
        assert_eq!(hosting.len(), REPLICAS_PER_GROUP, "{group} on {hosting:?}");
        assert_eq!(
            hosting,
            placement.replicas(group).iter().copied().collect(),
            "{group}: nodes and client disagree"
        );
        let zones: BTreeSet<&str> = hosting
            .iter()
            .map(|node_id| cluster.zones[node_id].as_str())
            .collect();
        assert_eq!(zones.len(), 3, "{group} on {hosting:?} spans {zones:?}");
        for node_id in &hosting {
            *groups_per_node.entry(*node_id).or_default() += 1;
        }

        let leader = cluster
            .wait_for_leader(group, Duration::from_secs(10))
            .await;
        assert!(hosting.contains(&leader));
        let voters: BTreeSet<u64> = common::metrics(&cluster.nodes[&leader], group)
            .membership_config
            .membership()
            .voter_ids()
            .collect();
        assert_eq!(voters, hosting, "{group} bootstrapped with other voters");
    }
    // Every node hosts something: 8 groups × 3 replicas over 6 nodes.
    assert_eq!(groups_per_node.len(), 6, "{groups_per_node:?}");

    // Writes and reads reach every kind of group through the client.
    let mut partitions_written = BTreeSet::new();
    let mut index = 0;
    while partitions_written.len() < partition_count as usize {
        let key = format!("spread/{index:03}");
        partitions_written.insert(client.partition_of(BUCKET, &key));
        put(&client, &key).await;
        assert!(get(&client, &key).await.is_some(), "{key} not read back");
        index += 1;
    }
    let created = client
        .write(Command::CreateBucket(CreateBucket {
            bucket: "zoned-bucket".to_owned(),
            owner: "owner".to_owned(),
            primary_region: "local".to_owned(),
            ec_scheme: "isal-cauchy:4+2".to_owned(),
            acl: Acl::default(),
            now_ms: 1,
            attributes: Default::default(),
        }))
        .await
        .expect("create bucket");
    assert!(created.is_ok(), "{created:?}");
    let registered = client
        .write(Command::RegisterNode(RegisterNode {
            node_id: StorageNodeId(7),
            address: "10.0.0.7:7100".to_owned(),
            availability_zone: "az2".to_owned(),
            capacity_bytes: 1 << 40,
            now_ms: 1,
        }))
        .await
        .expect("register node");
    assert!(registered.is_ok(), "{registered:?}");
    assert!(matches!(
        client
            .read(Query::GetBucket {
                bucket: "zoned-bucket".to_owned()
            })
            .await
            .expect("read bucket"),
        Ok(Response::Bucket(_))
    ));
    assert!(matches!(
        client.read(Query::ListNodes).await.expect("list nodes"),
        Ok(Response::Nodes(ref nodes)) if nodes.len() == 1
    ));
    // The node registry is not the bucket service: the bucket service holds no nodes.
    let misrouted = client
        .read_from(GroupId::BUCKET_SERVICE, Query::ListNodes)
        .await
        .expect("answer");
    assert!(misrouted.is_err(), "bucket service answered {misrouted:?}");
    cluster.shutdown().await;
}
