//! Black-box test of a network partition that isolates one AZ, with real network namespaces: one
//! per AZ, joined to a hub bridge by veth pairs, every process on its own 10.213.AZ.N address
//! (see az_cluster.rs). The cluster is `cairn cluster init`'s default shape (3 meta replicas in
//! az1..az3, 12 storage nodes in 4 AZs of 3, EC 6+3); gateway 1 sits in az1, gateway 2 and the
//! worker in az2.
//!
//! `tc netem loss 100%` on both ends of az1's veth cuts az1 (meta replica 1, storage nodes 1, 5,
//! 9, gateway 1) off from everything else while a client uploads through gateway 2:
//!
//! - the minority stops accepting writes: a PUT through gateway 1, from inside az1, is refused
//!   (503: its meta replica cannot reach a quorum and its 3 nodes cannot hold a stripe);
//! - the majority goes on: uploads through gateway 2 keep being acknowledged;
//! - after the partition heals, everything converges: every acknowledged upload reads back
//!   exactly through both gateways, and every block of every object is back at k + m pieces,
//!   ≤ m per AZ, with no stale piece left on az1's nodes.
//!
//! Namespaces need root and a kernel that allows them: without them the test says so and passes
//! without running (it never runs half a scenario). The namespaces are deleted when the test ends,
//! whichever way it ends.

#[path = "az_cluster.rs"]
mod az_cluster;

use std::time::{Duration, Instant};

use az_cluster::{Cluster, Namespaces, finish, line_count, start_streams, wait_for_lines};

#[test]
fn an_az_cut_off_by_a_partition_stops_writing_while_the_majority_goes_on_and_all_converges() {
    // Declared first so it is dropped last: the processes die before their namespaces go.
    let namespaces = match Namespaces::create() {
        Ok(namespaces) => namespaces,
        Err(reason) => {
            eprintln!("SKIPPED: network namespaces are not available here: {reason}");
            return;
        }
    };
    let cluster = Cluster::start(Some(&namespaces));
    let work = cluster.dir.path().to_owned();
    let fixed = work.join("fixed.manifest").display().to_string();
    cluster.run_load(0, &["put", "split-fixed", "6", &fixed]);

    // Uploads through both gateways; the one through gateway 1 (az1) is cut off by the partition
    // (its client sits in the hub) and only counts what it got acknowledged.
    let stop = work.join("stop");
    let (manifests, streams) = start_streams(&cluster, "split-stream", &stop);
    for manifest in &manifests {
        wait_for_lines(manifest, 5, Duration::from_secs(60), "before the partition");
    }
    namespaces.partition(1);
    let cut_at = Instant::now();
    // The majority side goes on.
    let majority_before = line_count(&manifests[1]);
    wait_for_lines(
        &manifests[1],
        majority_before + 15,
        Duration::from_secs(120),
        "through gateway 2 with az1 cut off",
    );
    eprintln!(
        "15 more uploads through the majority's gateway {:.1} s after the cut",
        cut_at.elapsed().as_secs_f64()
    );
    // The minority does not accept a write: a client inside az1 gets a 503 from gateway 1.
    let answer = cluster.put_once(
        0,
        Some(&namespaces.of_az(1)),
        "split-stream",
        "minority",
        100_000,
    );
    assert_eq!(
        answer["status"], 503,
        "the minority accepted a write: {answer}"
    );
    assert_eq!(answer["code"], "ServiceUnavailable", "{answer}");
    eprintln!("minority PUT: {answer}");

    namespaces.heal(1);
    let healed_at = Instant::now();
    std::fs::write(&stop, b"").unwrap();
    for (gateway, stream) in streams.into_iter().enumerate() {
        let summary = finish(stream, &format!("upload stream through gateway {gateway}"));
        eprintln!("gateway {gateway}: {}", summary.trim());
    }
    // Everything acknowledged on either side reads back exactly, through both gateways.
    for gateway in 0..2 {
        cluster.run_load(gateway, &["verify", "split-fixed", &fixed]);
        for manifest in &manifests {
            cluster.run_load(
                gateway,
                &["verify", "split-stream", &manifest.display().to_string()],
            );
        }
    }
    // Redundancy is whole again and az1 holds nothing stale.
    cluster.wait_for_full_redundancy(true, Duration::from_secs(180), "after the partition");
    eprintln!(
        "converged {:.1} s after the partition healed",
        healed_at.elapsed().as_secs_f64()
    );
    drop(cluster);
    drop(namespaces);
}
