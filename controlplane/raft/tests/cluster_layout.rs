//! The partition-map group records the cluster layout at bootstrap; a node restarted with another
//! partition count and clients configured with another partition count or other zones are
//! refused with a message naming the difference, and the rest of the cluster keeps serving.

mod common;

use std::time::Duration;

use cairn_raft::{ClientError, GroupId, LayoutStatus, MetaClient, MetaNode};
use common::{BUCKET, Cluster, fast_timing, get, prepare, put};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mismatched_nodes_and_clients_are_refused() {
    common::init_tracing();
    let mut cluster = Cluster::start(3, 2, fast_timing()).await;
    for node in cluster.nodes.values() {
        let status = tokio::time::timeout(Duration::from_secs(10), node.layout_checked())
            .await
            .expect("layout checked in time");
        assert_eq!(status, LayoutStatus::Verified, "node {}", node.node_id());
    }
    let client = cluster.client();
    put(&client, "before").await;

    // A client that believes in 3 partitions would route keys elsewhere: refused before any
    // request reaches a partition, and it stays refused.
    let mut wrong_partitions = cluster.client_config();
    wrong_partitions.partition_count = 3;
    let wrong_partitions = MetaClient::new(wrong_partitions);
    for _ in 0..2 {
        match wrong_partitions
            .write(prepare("wrong", "token-wrong"))
            .await
        {
            Err(ClientError::Rejected(message)) => assert!(
                message.contains("partition count (--partitions): configured 3, recorded 2"),
                "{message}"
            ),
            other => panic!("a client with 3 partitions was not refused: {other:?}"),
        }
    }
    assert!(get(&client, "wrong").await.is_none());

    // Zones are part of the layout too (they decide placement).
    let mut zoned = cluster.client_config();
    zoned.zones = cluster
        .peers()
        .keys()
        .map(|&node_id| (node_id, format!("az{node_id}")))
        .collect();
    let zoned = MetaClient::new(zoned);
    match zoned.read(cairn_meta_state::Query::ListNodes).await {
        Err(ClientError::Rejected(message)) => {
            assert!(message.contains("meta nodes and zones"), "{message}")
        }
        other => panic!("a client with other zones was not refused: {other:?}"),
    }

    // Node 3 comes back with --partitions 3: it refuses to serve, names the setting, and cuts
    // itself off; the other two keep the cluster going.
    cluster.stop(3).await;
    let listener = tokio::net::TcpListener::bind(cluster.addresses[&3])
        .await
        .expect("rebind");
    let mut config = cluster.config(3);
    config.partition_count = 3;
    let misconfigured = MetaNode::start_with_listener(config, listener)
        .await
        .expect("start");
    let status = tokio::time::timeout(Duration::from_secs(15), misconfigured.layout_checked())
        .await
        .expect("layout checked in time");
    match status {
        LayoutStatus::Refused(message) => assert!(
            message.contains("partition count (--partitions): configured 3, recorded 2"),
            "{message}"
        ),
        other => panic!("node started with 3 partitions was not refused: {other:?}"),
    }
    // A client pinned to the refused node gets the node's refusal, not an answer.
    let mut pinned = cluster.client_config();
    pinned.dial_only = Some([3].into_iter().collect());
    pinned.operation_timeout_ms = 2_000;
    let pinned = MetaClient::new(pinned);
    let answer = pinned
        .read_from(
            GroupId::partition(0),
            cairn_meta_state::Query::GetObject {
                bucket: BUCKET.to_owned(),
                key: "before".to_owned(),
                version: cairn_meta_state::VersionSelector::Current,
            },
        )
        .await;
    assert!(
        matches!(&answer, Err(ClientError::Rejected(message)) if message.contains("partition count")),
        "refused node answered {answer:?}"
    );

    put(&client, "after").await;
    assert!(get(&client, "after").await.is_some());
    assert!(get(&client, "before").await.is_some());
    misconfigured.shutdown().await;
    cluster.shutdown().await;
}
