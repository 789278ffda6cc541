//! Rough commit-rate probe (ignored by default; not a benchmark): sequential and concurrent
//! PrepareWrite+CommitWrite pairs on a local 3-replica cluster with fsync on.
//! Run: `cargo test -p cairn-raft --release --test commit_rate -- --ignored --nocapture`.

mod common;

use std::sync::Arc;
use std::time::Instant;

use common::{Cluster, fast_timing, put};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "measurement, not a check"]
async fn commit_rate_probe() {
    let cluster = Cluster::start(3, 4, fast_timing()).await;
    let client = Arc::new(cluster.client());
    put(&client, "warm-up").await;

    let pairs = 200;
    let started = Instant::now();
    for index in 0..pairs {
        put(&client, &format!("sequential/{index}")).await;
    }
    let elapsed = started.elapsed();
    println!(
        "sequential: {pairs} pairs in {elapsed:?} = {:.0} pairs/s",
        f64::from(pairs) / elapsed.as_secs_f64()
    );

    let tasks_count = 32;
    let pairs_per_task = 25;
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for task in 0..tasks_count {
        let client = Arc::clone(&client);
        tasks.spawn(async move {
            for index in 0..pairs_per_task {
                put(&client, &format!("concurrent/{task}/{index}")).await;
            }
        });
    }
    while let Some(result) = tasks.join_next().await {
        result.expect("task");
    }
    let elapsed = started.elapsed();
    let total = tasks_count * pairs_per_task;
    println!(
        "{tasks_count} concurrent writers over 4 partitions: {total} pairs in {elapsed:?} = {:.0} pairs/s",
        f64::from(total) / elapsed.as_secs_f64()
    );
    cluster.shutdown().await;
}
