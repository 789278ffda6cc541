//! A leader cut off from the other replicas (network partition, injected in the transport) keeps
//! running but can neither acknowledge writes nor serve reads: the majority elects a new leader
//! and overwrites a key, and the cut-off replica never returns the old value. After healing it
//! converges to the majority's state.

mod common;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use cairn_raft::{ClientError, GroupId, MetaClient, MetaClientConfig};
use common::{BUCKET, Cluster, fast_timing, get, local_get, prepare, put, put_with_token};

/// A client that dials only `node_ids` (placement still covers the whole cluster).
fn client_for(cluster: &Cluster, node_ids: &[u64], impatient: bool) -> MetaClient {
    let mut config = MetaClientConfig::new(cluster.peers(), cluster.partition_count);
    config.dial_only = Some(node_ids.iter().copied().collect::<BTreeSet<u64>>());
    if impatient {
        config.attempt_timeout_ms = 800;
        config.operation_timeout_ms = 2_000;
    }
    MetaClient::new(config)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cut_off_leader_serves_no_stale_reads_and_converges_after_healing() {
    common::init_tracing();
    let cluster = Cluster::start(3, 1, fast_timing()).await;
    let group = GroupId::partition(0);
    let first = put(&cluster.client(), "k").await;

    let old_leader = cluster.wait_for_leader(group, Duration::from_secs(5)).await;
    let majority: Vec<u64> = cluster
        .nodes
        .keys()
        .copied()
        .filter(|&node_id| node_id != old_leader)
        .collect();
    // Both clients check the layout while the cluster is whole.
    let majority_client = client_for(&cluster, &majority, false);
    majority_client.verify_layout().await.expect("layout");
    let minority_client = client_for(&cluster, &[old_leader], true);
    minority_client.verify_layout().await.expect("layout");
    cluster.nodes[&old_leader].set_isolated_from_peers(true);

    // The majority elects a leader of its own and takes a write.
    let started = Instant::now();
    let second = put_with_token(&majority_client, "k", "token-k-second").await;
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_ne!(second.version_id, first.version_id);

    // The cut-off replica still believes it leads, but refuses to answer from its stale state.
    let read = minority_client
        .read(cairn_meta_state::Query::GetObject {
            bucket: BUCKET.to_owned(),
            key: "k".to_owned(),
            version: cairn_meta_state::VersionSelector::Current,
        })
        .await;
    assert!(
        matches!(read, Err(ClientError::Unavailable { .. })),
        "cut-off replica answered {read:?}"
    );
    let write = minority_client.write(prepare("k", "token-minority")).await;
    assert!(
        matches!(write, Err(ClientError::Unavailable { .. })),
        "cut-off replica acknowledged {write:?}"
    );
    assert_eq!(
        local_get(&cluster.nodes[&old_leader], group, "k").map(|record| record.version_id),
        Some(first.version_id),
        "the cut-off replica cannot have learned the new version"
    );

    // Heal: the old leader learns of the newer term and catches up.
    cluster.nodes[&old_leader].set_isolated_from_peers(false);
    let deadline = Instant::now() + Duration::from_secs(10);
    while local_get(&cluster.nodes[&old_leader], group, "k").map(|record| record.version_id)
        != Some(second.version_id)
    {
        assert!(Instant::now() < deadline, "old leader did not converge");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let full_client = cluster.client();
    assert_eq!(
        get(&full_client, "k").await.map(|record| record.version_id),
        Some(second.version_id)
    );
    cluster.shutdown().await;
}
