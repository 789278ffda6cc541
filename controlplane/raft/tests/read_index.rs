//! Read-index checks shared by concurrent reads (`cairn_raft::read_index`): a burst of reads on
//! one group costs fewer leadership checks than reads, and sharing never lets a read miss a
//! write acknowledged before it began.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use cairn_raft::GroupId;
use cairn_raft::read_index::ReadIndexStats;
use common::{Cluster, fast_timing, get, put};

fn read_index_stats(cluster: &Cluster, node_id: u64, group: GroupId) -> ReadIndexStats {
    cluster.nodes[&node_id]
        .status()
        .into_iter()
        .find(|status| status.group == group)
        .expect("hosted group")
        .read_index
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_reads_share_checks_and_see_every_acknowledged_write() {
    common::init_tracing();
    let cluster = Cluster::start(3, 1, fast_timing()).await;
    let group = GroupId::partition(0);
    let leader = cluster
        .wait_for_leader(group, Duration::from_secs(10))
        .await;
    let client = Arc::new(cluster.client());
    put(&client, "warm-up").await;
    assert!(get(&client, "warm-up").await.is_some());

    // A burst: 64 reads in flight at once share checks.
    let before = read_index_stats(&cluster, leader, group);
    let reads = (0..64).map(|_| {
        let client = Arc::clone(&client);
        tokio::spawn(async move { get(&client, "warm-up").await.is_some() })
    });
    for read in futures::future::join_all(reads).await {
        assert!(read.expect("read task"), "a read missed the key");
    }
    let after = read_index_stats(&cluster, leader, group);
    let burst_reads = after.reads - before.reads;
    let burst_checks = after.checks - before.checks;
    assert_eq!(burst_reads, 64, "{before:?} → {after:?}");
    assert!(
        burst_checks < burst_reads,
        "every read ran its own check: {burst_checks} checks for {burst_reads} reads"
    );

    // Writers and readers at once: a read that begins after a write was acknowledged finds it,
    // whichever shared check answers it.
    let acknowledged: Arc<Mutex<Vec<String>>> = Arc::new(Mutex::new(Vec::new()));
    let writers = (0..4).map(|writer| {
        let client = Arc::clone(&client);
        let acknowledged = Arc::clone(&acknowledged);
        tokio::spawn(async move {
            for index in 0..25 {
                let key = format!("w{writer}/{index:02}");
                put(&client, &key).await;
                acknowledged.lock().unwrap().push(key);
            }
        })
    });
    let writers = futures::future::join_all(writers);
    let readers = (0..16).map(|_| {
        let client = Arc::clone(&client);
        let acknowledged = Arc::clone(&acknowledged);
        tokio::spawn(async move {
            let mut checked = 0;
            while checked < 40 {
                let newest = acknowledged.lock().unwrap().last().cloned();
                let Some(key) = newest else {
                    tokio::task::yield_now().await;
                    continue;
                };
                assert!(
                    get(&client, &key).await.is_some(),
                    "{key} was acknowledged before the read began, and the read missed it"
                );
                checked += 1;
            }
        })
    });
    let (written, read) = tokio::join!(writers, futures::future::join_all(readers));
    for writer in written {
        writer.expect("writer task");
    }
    for reader in read {
        reader.expect("reader task");
    }
    let end = read_index_stats(&cluster, leader, group);
    assert!(end.reads >= after.reads + 16 * 40, "{after:?} → {end:?}");
    assert!(end.checks < end.reads, "{end:?}");
    cluster.shutdown().await;
}
