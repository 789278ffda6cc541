//! The region's version tag is partition state set through the log: the first leader's
//! proposer puts `SetVersionTag` in front of its first entry, every replica and every offline
//! replay of the log then creates the same version ids, and a later leader configured for
//! another region does not change them (its tag is refused and logged).

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use cairn_raft::GroupId;
use cairn_raft::store::read_replica_state;
use common::{Cluster, fast_timing, local_get, put};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn version_ids_carry_the_first_leaders_tag_on_every_replica_and_replay() {
    common::init_tracing();
    // Three replicas configured for three regions: whichever leads first sets the tag.
    let tags = BTreeMap::from([(1, 0x57u8), (2, 0x58), (3, 0x59)]);
    let mut cluster = Cluster::start_tagged(&["", "", ""], 1, fast_timing(), tags.clone()).await;
    let group = GroupId::partition(0);
    let first_leader = cluster
        .wait_for_leader(group, Duration::from_secs(10))
        .await;
    let client = cluster.client();
    let mut records = Vec::new();
    for index in 0..5 {
        records.push(put(&client, &format!("before-{index}")).await);
    }
    let tag = records[0].version_id.region_tag();
    assert_ne!(tag, 0, "the first entry set a tag");
    assert!(tags.values().any(|configured| *configured == tag));
    assert!(
        records
            .iter()
            .all(|record| record.version_id.region_tag() == tag)
    );

    // A new leader, configured with another tag, keeps the partition's.
    cluster.stop(first_leader).await;
    let second_leader = cluster
        .wait_for_leader(group, Duration::from_secs(10))
        .await;
    assert_ne!(tags[&second_leader], tag);
    let client = cluster.client();
    for index in 0..5 {
        let record = put(&client, &format!("after-{index}")).await;
        assert_eq!(record.version_id.region_tag(), tag, "{record:?}");
        records.push(record);
    }
    cluster.restart(first_leader).await;
    // Every replica holds the same ids once it caught up.
    for record in &records {
        for node in cluster.nodes.values() {
            let deadline = std::time::Instant::now() + Duration::from_secs(10);
            loop {
                let found = local_get(node, group, &record.key);
                if let Some(found) = found {
                    assert_eq!(
                        found.version_id,
                        record.version_id,
                        "node {}",
                        node.node_id()
                    );
                    break;
                }
                assert!(
                    std::time::Instant::now() < deadline,
                    "node {} lacks {}",
                    node.node_id(),
                    record.key
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
    // And so does an offline replay of each replica's own log and snapshot.
    // The data directories outlive the nodes (taken before the cluster is dropped).
    let data = std::mem::take(&mut cluster.dirs);
    let role = group.role(1);
    cluster.shutdown().await;
    for dir in data.values() {
        let dir = dir.path().join(format!("group-{}", group.0));
        let state = read_replica_state(&dir, role).expect("replica state");
        assert_eq!(state.version_tag(), tag);
        for record in &records {
            let answer = state.query(&cairn_meta_state::Query::GetObject {
                bucket: common::BUCKET.to_owned(),
                key: record.key.clone(),
                version: cairn_meta_state::VersionSelector::Current,
            });
            match answer {
                Ok(cairn_meta_state::Response::Object(found)) => {
                    assert_eq!(found.version_id, record.version_id)
                }
                other => panic!("{} in {}: {other:?}", record.key, dir.display()),
            }
        }
    }
}
