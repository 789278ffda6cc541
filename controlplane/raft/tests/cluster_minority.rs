//! A replica left without its quorum refuses writes and reads (the read-index check needs a
//! quorum, so it cannot serve possibly stale state), and the group serves again once the other
//! replicas are back.

mod common;

use std::time::Duration;

use cairn_raft::{ClientError, GroupId, MetaClient, MetaClientConfig};
use common::{BUCKET, Cluster, fast_timing, get, prepare, put};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replica_without_quorum_refuses_reads_and_writes() {
    common::init_tracing();
    let mut cluster = Cluster::start(3, 1, fast_timing()).await;
    let client = cluster.client();
    let group = GroupId::partition(0);
    put(&client, "kept").await;

    // The client checks its layout on first use; it does so while the cluster is whole, so that
    // what follows tests the lone replica's answers and not the layout check.
    let mut impatient = MetaClientConfig::new(cluster.peers(), cluster.partition_count);
    impatient.attempt_timeout_ms = 800;
    impatient.operation_timeout_ms = 2_000;
    let impatient = MetaClient::new(impatient);
    impatient.verify_layout().await.expect("layout");

    let leader = cluster.wait_for_leader(group, Duration::from_secs(5)).await;
    let others: Vec<u64> = cluster
        .nodes
        .keys()
        .copied()
        .filter(|&node_id| node_id != leader)
        .collect();
    for &node_id in &others {
        cluster.stop(node_id).await;
    }

    let read = impatient
        .read(cairn_meta_state::Query::GetObject {
            bucket: BUCKET.to_owned(),
            key: "kept".to_owned(),
            version: cairn_meta_state::VersionSelector::Current,
        })
        .await;
    assert!(
        matches!(read, Err(ClientError::Unavailable { .. })),
        "a lone replica answered a read: {read:?}"
    );
    let write = impatient.write(prepare("refused", "token-refused")).await;
    assert!(
        matches!(write, Err(ClientError::Unavailable { .. })),
        "a lone replica acknowledged a write: {write:?}"
    );

    for &node_id in &others {
        cluster.restart(node_id).await;
    }
    assert!(get(&client, "kept").await.is_some());
    put(&client, "after-heal").await;
    assert!(get(&client, "after-heal").await.is_some());
    cluster.shutdown().await;
}
