//! Group commit (the leader's proposer): a client batch becomes one log entry, every command
//! gets its own answer, batches past the caps are split in order, and a leader change while
//! writes are queued loses no acknowledged write and applies none twice.

mod common;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use cairn_meta_state::{Command, ListVersionsRequest, Query, Response, VersionId};
use cairn_raft::GroupId;
use cairn_raft::proposer::MAX_BATCH_COMMANDS;
use common::{BUCKET, Cluster, commit, fast_timing, get, metrics, prepare, put, try_put};

fn last_log_index(cluster: &Cluster, node_id: u64, group: GroupId) -> u64 {
    metrics(&cluster.nodes[&node_id], group)
        .last_log_index
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_batch_is_one_log_entry_with_one_answer_per_command() {
    common::init_tracing();
    let cluster = Cluster::start(1, 1, fast_timing()).await;
    let client = cluster.client();
    let group = GroupId::partition(0);
    cluster
        .wait_for_leader(group, Duration::from_secs(10))
        .await;
    put(&client, "warm-up").await;

    let keys: Vec<String> = (0..64).map(|index| format!("batch/{index:02}")).collect();
    let before = last_log_index(&cluster, 1, group);
    let prepared = client
        .write_many(
            keys.iter()
                .map(|key| prepare(key, &format!("token-{key}")))
                .collect(),
        )
        .await
        .expect("prepare batch");
    assert_eq!(last_log_index(&cluster, 1, group), before + 1);
    let mut version_ids = BTreeSet::new();
    let mut commits = Vec::new();
    for (key, answer) in keys.iter().zip(prepared) {
        match answer.expect("answered").result {
            Ok(Response::Prepared {
                record,
                retried: false,
            }) => {
                assert_eq!(&record.key, key);
                assert_eq!(record.idempotency_token, format!("token-{key}"));
                version_ids.insert(record.version_id);
                commits.push(commit(key, &format!("token-{key}"), record.version_id));
            }
            other => panic!("prepare {key}: {other:?}"),
        }
    }
    assert_eq!(version_ids.len(), keys.len(), "version ids collide");
    // One refused command in the middle of a batch does not affect its neighbours.
    commits.insert(10, commit("batch/none", "token-none", VersionId(999_999)));
    let committed = client.write_many(commits).await.expect("commit batch");
    assert_eq!(last_log_index(&cluster, 1, group), before + 2);
    for (position, answer) in committed.into_iter().enumerate() {
        let result = answer.expect("answered").result;
        if position == 10 {
            assert!(result.is_err(), "{result:?}");
        } else {
            assert!(
                matches!(result, Ok(Response::Committed { retried: false, .. })),
                "{result:?}"
            );
        }
    }
    for key in &keys {
        assert!(get(&client, key).await.is_some(), "{key} missing");
    }
    // Batches are the leader's to build: one sent by a client is refused and changes nothing.
    let before = last_log_index(&cluster, 1, group);
    let refused = client
        .write_to(
            group,
            Command::Batch(vec![prepare("smuggled", "token-smuggled")]),
        )
        .await;
    assert!(
        matches!(refused, Err(cairn_raft::ClientError::Rejected(_))),
        "{refused:?}"
    );
    let refused = client
        .write_batch_to(group, &[Command::Batch(Vec::new())])
        .await;
    assert!(
        matches!(refused, Err(cairn_raft::ClientError::Rejected(_))),
        "{refused:?}"
    );
    assert_eq!(last_log_index(&cluster, 1, group), before);

    // Past the command cap, a batch is split into consecutive entries, answered in order.
    let many: Vec<String> = (0..MAX_BATCH_COMMANDS + 40)
        .map(|index| format!("many/{index:03}"))
        .collect();
    let mut commands: Vec<Command> = Vec::new();
    for key in &many {
        commands.push(prepare(key, &format!("token-{key}")));
    }
    let before = last_log_index(&cluster, 1, group);
    let answers = client.write_many(commands).await.expect("large batch");
    assert_eq!(last_log_index(&cluster, 1, group), before + 2);
    for (key, answer) in many.iter().zip(answers) {
        assert!(
            matches!(answer.expect("answered").result, Ok(Response::Prepared { record, .. }) if &record.key == key)
        );
    }
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writes_through_a_leader_change_are_kept_once() {
    common::init_tracing();
    let mut cluster = Cluster::start(3, 1, fast_timing()).await;
    let group = GroupId::partition(0);
    let leader = cluster
        .wait_for_leader(group, Duration::from_secs(10))
        .await;
    let client = Arc::new(cluster.client());
    put(&client, "warm-up").await;
    let entries_before = last_log_index(&cluster, leader, group);

    let stop = Arc::new(AtomicBool::new(false));
    let mut writers = tokio::task::JoinSet::new();
    for writer in 0..24 {
        let client = Arc::clone(&client);
        let stop = Arc::clone(&stop);
        writers.spawn(async move {
            let mut acknowledged = Vec::new();
            let mut sequence = 0;
            while !stop.load(Ordering::SeqCst) && sequence < 400 {
                let key = format!("stream/{writer:02}/{sequence:04}");
                sequence += 1;
                if try_put(&client, &key).await {
                    acknowledged.push(key);
                }
            }
            acknowledged
        });
    }
    // Let writes queue up on the leader, then take it away mid-stream.
    while last_log_index(&cluster, leader, group) < entries_before + 20 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    cluster.stop(leader).await;
    let new_leader = cluster
        .wait_for_leader(group, Duration::from_secs(15))
        .await;
    assert_ne!(new_leader, leader);
    let entries_at_change = last_log_index(&cluster, new_leader, group);
    while last_log_index(&cluster, new_leader, group) < entries_at_change + 20 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop.store(true, Ordering::SeqCst);
    let mut acknowledged = Vec::new();
    while let Some(result) = writers.join_next().await {
        acknowledged.extend(result.expect("writer task"));
    }
    assert!(acknowledged.len() > 40, "{} writes", acknowledged.len());

    // Every acknowledged write is there, exactly once: one committed version per key, and no
    // PREPARING version of it left behind (a PrepareWrite applied twice would leave one).
    let acknowledged_keys: BTreeSet<&String> = acknowledged.iter().collect();
    for key in &acknowledged {
        assert!(get(&client, key).await.is_some(), "acknowledged {key} lost");
    }
    let mut versions_per_key = std::collections::BTreeMap::<String, usize>::new();
    let mut key_marker = None;
    loop {
        let page = client
            .list_versions(ListVersionsRequest {
                bucket: BUCKET.to_owned(),
                prefix: "stream/".to_owned(),
                key_marker: key_marker.clone(),
                max_keys: 1000,
                ..Default::default()
            })
            .await
            .expect("list versions")
            .expect("listed");
        for version in &page.versions {
            *versions_per_key.entry(version.key.clone()).or_default() += 1;
        }
        if !page.is_truncated {
            break;
        }
        key_marker = page.next_key_marker.clone();
    }
    for key in &acknowledged_keys {
        assert_eq!(versions_per_key.get(*key), Some(&1), "{key}");
    }
    let preparing = client
        .read_from(
            group,
            Query::ListStalePreparing {
                created_before_ms: u64::MAX,
                limit: 10_000,
            },
        )
        .await
        .expect("read");
    let Ok(Response::Objects(preparing)) = preparing else {
        panic!("unexpected {preparing:?}");
    };
    for record in preparing {
        assert!(
            !acknowledged_keys.contains(&record.key),
            "{} left PREPARING",
            record.key
        );
    }
    // The writes after the change still commit through the new leader.
    assert!(try_put(&client, "after-change").await);
    cluster.shutdown().await;
}
