//! Three MetaNodes over real TCP: writes replicate to every replica, the leader's node is shut
//! down, a new leader serves within a few seconds, and no acknowledged write is lost; the merged
//! ListObjects pages through every partition in S3 order.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use cairn_meta_state::ListObjectsRequest;
use cairn_raft::GroupId;
use common::{BUCKET, Cluster, fast_timing, get, local_get, put, try_put};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_loss_elects_a_new_leader_and_keeps_acknowledged_writes() {
    common::init_tracing();
    let partition_count = 2;
    let mut cluster = Cluster::start(3, partition_count, fast_timing()).await;
    let client = cluster.client();

    let mut acknowledged = Vec::new();
    for index in 0..30 {
        let key = format!("before/{index:03}");
        put(&client, &key).await;
        acknowledged.push(key);
    }

    // Every replica applies every write (they are followers too, so poll briefly).
    let deadline = Instant::now() + Duration::from_secs(5);
    for key in &acknowledged {
        let group = client.partition_of(BUCKET, key);
        for (node_id, node) in &cluster.nodes {
            while local_get(node, group, key).is_none() {
                assert!(Instant::now() < deadline, "{key} not on node {node_id}");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }

    // A stream of writes runs across the leader loss; every write it saw acknowledged must
    // survive.
    let stream_client = Arc::new(cluster.client());
    let stop_stream = Arc::new(AtomicBool::new(false));
    let mut writers = tokio::task::JoinSet::new();
    for writer in 0..4 {
        let client = Arc::clone(&stream_client);
        let stop = Arc::clone(&stop_stream);
        writers.spawn(async move {
            let mut acknowledged = Vec::new();
            let mut sequence = 0;
            while !stop.load(Ordering::SeqCst) {
                let key = format!("stream/{writer}/{sequence:04}");
                sequence += 1;
                if try_put(&client, &key).await {
                    acknowledged.push(key);
                }
            }
            acknowledged
        });
    }
    tokio::time::sleep(Duration::from_millis(200)).await;

    // Shut down the node leading the first partition.
    let victim_group = GroupId::partition(0);
    let victim = cluster
        .wait_for_leader(victim_group, Duration::from_secs(5))
        .await;
    cluster.stop(victim).await;
    let stopped_at = Instant::now();

    // The client rides through the election: its first write after the loss succeeds once a
    // new leader exists.
    let key = "after/first-in-victim-partition";
    let mut probe = 0;
    let mut key_in_victim = key.to_owned();
    while client.partition_of(BUCKET, &key_in_victim) != victim_group {
        probe += 1;
        key_in_victim = format!("{key}-{probe}");
    }
    put(&client, &key_in_victim).await;
    let recovery = stopped_at.elapsed();
    assert!(
        recovery < Duration::from_secs(5),
        "first write after leader loss took {recovery:?}"
    );
    acknowledged.push(key_in_victim);
    let new_leader = cluster
        .wait_for_leader(victim_group, Duration::from_secs(5))
        .await;
    assert_ne!(new_leader, victim);

    for index in 0..20 {
        let key = format!("after/{index:03}");
        put(&client, &key).await;
        acknowledged.push(key);
    }
    stop_stream.store(true, Ordering::SeqCst);
    let mut streamed = 0;
    while let Some(result) = writers.join_next().await {
        let keys = result.expect("writer task");
        streamed += keys.len();
        acknowledged.extend(keys);
    }
    assert!(
        streamed > 20,
        "the write stream made little progress: {streamed}"
    );

    // Linearizable reads see every acknowledged write.
    for key in &acknowledged {
        assert!(get(&client, key).await.is_some(), "acknowledged {key} lost");
    }

    // List everything in pages of 7 across both partitions: S3 order, no gaps, no repeats.
    let mut listed = Vec::new();
    let mut continuation_token = None;
    loop {
        let page = client
            .list_objects(ListObjectsRequest {
                bucket: BUCKET.to_owned(),
                max_keys: 7,
                continuation_token: continuation_token.clone(),
                ..ListObjectsRequest::default()
            })
            .await
            .expect("list")
            .expect("list page");
        assert!(page.contents.len() <= 7);
        listed.extend(page.contents.iter().map(|object| object.key.clone()));
        if !page.is_truncated {
            break;
        }
        continuation_token = page.next_continuation_token;
        assert!(continuation_token.is_some());
    }
    // Pages are in strict S3 order with no repeats; every acknowledged key is listed. A stream
    // write whose acknowledgement was lost may be listed without being acknowledged.
    assert!(
        listed.windows(2).all(|pair| pair[0] < pair[1]),
        "listing out of order"
    );
    let listed_set: std::collections::BTreeSet<&String> = listed.iter().collect();
    for key in &acknowledged {
        assert!(listed_set.contains(key), "acknowledged {key} not listed");
    }
    let acknowledged_set: std::collections::BTreeSet<&String> = acknowledged.iter().collect();
    assert!(
        listed
            .iter()
            .all(|key| key.starts_with("stream/") || acknowledged_set.contains(key))
    );

    // With a delimiter, prefixes present in both partitions appear once.
    let page = client
        .list_objects(ListObjectsRequest {
            bucket: BUCKET.to_owned(),
            delimiter: "/".to_owned(),
            max_keys: 100,
            ..ListObjectsRequest::default()
        })
        .await
        .expect("list")
        .expect("list page");
    assert_eq!(page.common_prefixes, vec!["after/", "before/", "stream/"]);
    assert!(page.contents.is_empty() && !page.is_truncated);

    cluster.shutdown().await;
}
